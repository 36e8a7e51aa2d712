/**
 * Eviction in place (the layouts' side): a keep list is checked against the layout's EvictionRules, then each
 * buffer region is compacted on the GPU by shaders/kv_compact.wgsl, row i ← row keep[i], in the buffer itself
 * (no second copy, so eviction never allocates more than the small keep lists). Which slots to keep is the
 * engine's choice (src/engine/eviction-plan.ts).
 */
import { flatDispatch, type Recorder } from '../gpu/plan';
import type { EvictionRules } from './types';

/** One buffer region an eviction compacts: rows of `rowWords` u32 words from word `base`, one per slot or per block. */
export interface CompactRegion {
  label: string;
  buffer: GPUBuffer;
  rowWords: number;
  /** First word of the region (default 0). */
  base?: number;
  /** 'slot': row i holds slot i; 'block': row b holds block b (slots b·block … (b+1)·block − 1). */
  rows: 'slot' | 'block';
}

/** Throw a RangeError unless `keep` (ascending slots of a cache holding `held`) obeys `rules`. */
export function checkKeep(keep: readonly number[], held: number, rules: EvictionRules): void {
  for (let i = 0; i < keep.length; i++) {
    if (!Number.isInteger(keep[i]) || keep[i] < 0 || keep[i] >= held || (i > 0 && keep[i] <= keep[i - 1])) {
      throw new RangeError(`eviction: keep list must be ascending slots below ${held}; entry ${i} is ${keep[i]}`);
    }
  }
  const dropped = held - keep.length;
  if (dropped % rules.multiple !== 0) throw new RangeError(`eviction: ${dropped} slots dropped, not a multiple of ${rules.multiple}`);
  const kept = new Set(keep);
  for (let s = rules.frontier; s < held; s++) if (!kept.has(s)) throw new RangeError(`eviction: slot ${s} is in the residual (from ${rules.frontier}) and cannot be dropped`);
  for (let b = 0; b * rules.block < Math.min(rules.frontier, held); b++) {
    const inBlock = Array.from({ length: rules.block }, (_, i) => kept.has(b * rules.block + i));
    if (inBlock.some((k) => k !== inBlock[0])) throw new RangeError(`eviction: block ${b} of ${rules.block} slots is partly kept`);
  }
}

/** The kept blocks of a keep list that keeps whole blocks of `block` slots. */
export function keptBlocks(keep: readonly number[], block: number): number[] {
  return keep.filter((s) => s % block === 0).map((s) => s / block);
}

/**
 * Record the compaction of every region. Keep lists live in buffers of the one-off plan's own group (freed
 * with the plan); rows that stay where they are cost a read of the keep list only.
 */
export function recordCompaction(rec: Recorder, label: string, keep: readonly number[], block: number, regions: readonly CompactRegion[]): void {
  if (keep.length === 0) return;
  const lists = { slot: keep, block: block > 1 ? keptBlocks(keep, block) : keep };
  const uploaded = new Map<'slot' | 'block', GPUBuffer>();
  const pipeline = rec.pipelines.get({ shader: 'kv_compact', variant: rec.variant });
  for (const region of regions) {
    const list = lists[region.rows];
    if (list.every((s, i) => s === i)) continue;
    let buffer = uploaded.get(region.rows);
    if (!buffer) {
      buffer = rec.owner.upload(`${label} keep ${region.rows}s`, Uint32Array.from(list));
      uploaded.set(region.rows, buffer);
    }
    const { workgroups, groupsPerRow } = flatDispatch(Math.ceil(region.rowWords / 64), rec.caps.maxComputeWorkgroupsPerDimension);
    // WGSL Params (kv_compact.wgsl).
    const params = rec.uniforms.struct({ row_words: region.rowWords, kept: list.length, base: region.base ?? 0, row_stride: groupsPerRow * 64 });
    rec.dispatch(`kv_compact ${label} ${region.label}`, pipeline, { 0: params, 1: buffer, 2: region.buffer }, workgroups);
  }
}
