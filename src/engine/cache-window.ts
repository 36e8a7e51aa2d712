/**
 * Keeping the cache under its token limit during a generation: before a step that would not fit, evict in
 * place (the layout compacts its kept slots on the GPU; kept keys keep their RoPE positions, new tokens go on
 * at increasing positions, nothing is re-prefilled). Only where the layout cannot (merged layouts, or a
 * layout whose rules leave too little to drop), or when the next position would pass the model's context,
 * fall back to re-prefilling the kept tokens at positions 0 … k − 1. Either way the plan (eviction-plan.ts)
 * keeps sinks, protected tokens and recent or salient ones, and a ContextEvent says what happened.
 */
import type { LlamaModel, StepOutput } from '../model/llama';
import type { ContextEvent, EvictionPolicy } from '../worker/api';
import { toRanges, type CacheContents, type PositionRange } from './cache-contents';
import { KEEP_FRACTION_IN_PLACE, keptAfterSlide, windowReason } from './context-window';
import { anySlot, planKeep, type KeepPlan } from './eviction-plan';

/** What the window works on. */
export interface CacheWindowOptions {
  model: LlamaModel;
  contents: CacheContents;
  /** Most slots the cache may hold (the memory budget's limit, at most the context). */
  limit: number;
  /** The model's context: RoPE positions stay below it. */
  maxContext: number;
  sinks: number;
  policy: EvictionPolicy;
  report: (e: ContextEvent) => void;
  shouldStop: () => boolean;
  /** Prefill tokens dispatched (counted for EngineStats.prefillTokensDispatched). */
  onPrefill: (tokens: number) => void;
}

/**
 * Newest slots a plan never drops: of the slots kept besides sinks and protected ones, half for saliency
 * (H2O's recent half), a quarter for the window (which drops oldest first anyway); at least the newest one.
 */
function recentFor(policy: EvictionPolicy, keep: number, pinned: number): number {
  return Math.max(1, Math.floor((keep - pinned) / (policy === 'saliency' ? 2 : 4)));
}

/** Applies evictions to one model's cache and its bookkeeping. */
export class CacheWindow {
  constructor(private readonly o: CacheWindowOptions) {}

  /** Whether `n` more tokens fit under the limit and below the context. */
  fits(n: number): boolean {
    const kv = this.o.model.kv;
    return kv.length + n <= this.o.limit && kv.nextPosition + n <= this.o.maxContext;
  }

  /** Room for `n` more tokens, by eviction in place or else a re-prefill. False when stopped during a re-prefill. */
  async makeRoom(n: number, at: 'prompt' | 'decode'): Promise<boolean> {
    if (this.fits(n)) return true;
    const { model, limit, maxContext } = this.o;
    const kv = model.kv;
    const positionsFull = kv.nextPosition + n > maxContext;
    const rules = positionsFull ? null : kv.evictionRules();
    if (rules) {
      const plan = await this.plan(Math.min(Math.floor(limit * KEEP_FRACTION_IN_PLACE), limit - n), rules);
      if (plan && kv.length - plan.dropped + n <= limit) {
        model.evict(plan.keep);
        this.o.contents.keepSlots(plan.keep);
        this.o.report(this.event(plan, at, true));
        return true;
      }
    }
    const held = this.o.contents.held;
    const plan = await this.plan(Math.min(keptAfterSlide(limit, this.o.sinks), limit - n), anySlot(held));
    const keep = plan?.keep ?? Array.from({ length: held }, (_, i) => i);
    if (!(await this.refill(keep))) return false;
    this.o.report(this.event(plan, at, false, positionsFull ? 'positions' : 'layout', keep.length));
    return true;
  }

  /**
   * Prefill `ids` after what the cache holds, in chunks that each fit (evicting as needed); the last chunk
   * reads `read`. Null when stopped.
   */
  async prefill(ids: readonly number[], at: 'prompt' | 'decode', read: 'none' | 'token' | 'last-logits'): Promise<StepOutput | null> {
    const { model, contents } = this.o;
    let out: StepOutput = { nextToken: -1 };
    for (let i = 0; i < ids.length; ) {
      if (this.o.shouldStop()) return null;
      const want = Math.min(model.maxStepTokens, ids.length - i);
      if (!this.fits(want) && !(await this.makeRoom(want, at))) return null;
      const room = Math.min(this.o.limit - model.kv.length, this.o.maxContext - model.kv.nextPosition);
      const chunk = ids.slice(i, i + Math.max(1, Math.min(want, room)));
      i += chunk.length;
      out = await model.forward(chunk, i >= ids.length ? read : 'none');
      this.o.onPrefill(chunk.length);
      contents.push(chunk);
    }
    return out;
  }

  private async plan(keep: number, rules: ReturnType<typeof anySlot>): Promise<KeepPlan | null> {
    const { contents, policy } = this.o;
    const saliency = policy === 'saliency' ? await this.o.model.kv.readSaliency() : null;
    const guarded = contents.positions.reduce((n, p, slot) => n + (slot >= this.o.sinks && contents.isProtected(p) ? 1 : 0), 0);
    return planKeep({
      positions: contents.positions,
      isProtected: (p) => contents.isProtected(p),
      keep,
      sinks: this.o.sinks,
      recent: recentFor(policy, keep, this.o.sinks + guarded),
      rules,
      policy,
      saliency,
    });
  }

  /** Re-prefill the slots `keep` from an empty cache at positions 0 … k − 1. */
  private async refill(keep: readonly number[]): Promise<boolean> {
    const { model, contents } = this.o;
    const ids = keep.map((i) => contents.ids[contents.positions[i]]);
    // The kept tokens' protection carries over to their new positions.
    const guarded = toRanges(keep.flatMap((slot, p) => (contents.isProtected(contents.positions[slot]) ? [p] : [])));
    model.kv.reset();
    contents.clear();
    for (let i = 0; i < ids.length; i += model.maxStepTokens) {
      if (this.o.shouldStop()) {
        model.kv.reset();
        contents.clear();
        return false;
      }
      const chunk = ids.slice(i, i + model.maxStepTokens);
      await model.forward(chunk, 'none');
      this.o.onPrefill(chunk.length);
      contents.push(chunk);
    }
    contents.protect(guarded);
    return true;
  }

  private event(plan: KeepPlan | null, at: 'prompt' | 'decode', inPlace: boolean, reprefillBecause?: 'layout' | 'positions', kept?: number): ContextEvent {
    const { limit, maxContext } = this.o;
    return {
      kind: 'window',
      at,
      reason: reprefillBecause === 'positions' ? 'context' : windowReason(limit, maxContext),
      droppedTokens: plan?.dropped ?? 0,
      sinkTokens: plan?.sinksKept ?? Math.min(this.o.sinks, kept ?? 0),
      keptTokens: kept ?? plan?.keep.length ?? 0,
      limitTokens: limit,
      policy: plan?.policy ?? 'window',
      inPlace,
      ...(reprefillBecause ? { reprefillBecause } : {}),
      protectedKept: plan?.protectedKept ?? 0,
      protectedDropped: plan?.protectedDropped ?? 0,
      evictedRanges: plan?.droppedRanges ?? [],
    };
  }
}

/**
 * A prompt that cannot be prefilled as it is (longer than the context, or than a limit the layout cannot
 * evict in place under): the ids to prefill from an empty cache, chosen like an eviction, with its protected
 * ranges mapped to the new indices, and the event. Null when it fits.
 */
export function windowPromptIds(
  promptIds: readonly number[],
  ranges: readonly PositionRange[],
  o: { limit: number; maxContext: number; sinks: number; reason: 'layout' | 'positions' },
): { ids: number[]; ranges: PositionRange[]; event: ContextEvent } {
  const guarded = new Set(ranges.flatMap(([start, end]) => Array.from({ length: end - start }, (_, i) => start + i)));
  const keep = keptAfterSlide(o.limit, o.sinks);
  const plan = planKeep({
    positions: promptIds.map((_, i) => i),
    isProtected: (p) => guarded.has(p),
    keep,
    sinks: o.sinks,
    recent: recentFor('window', keep, o.sinks + [...guarded].filter((p) => p >= o.sinks && p < promptIds.length).length),
    rules: anySlot(promptIds.length),
    policy: 'window',
  });
  const kept = plan?.keep ?? promptIds.map((_, i) => i);
  return {
    ids: kept.map((p) => promptIds[p]),
    ranges: toRanges(kept.flatMap((p, i) => (guarded.has(p) ? [i] : []))),
    event: {
      kind: 'window',
      at: 'prompt',
      reason: o.reason === 'positions' ? 'context' : windowReason(o.limit, o.maxContext),
      droppedTokens: plan?.dropped ?? 0,
      sinkTokens: plan?.sinksKept ?? 0,
      keptTokens: kept.length,
      limitTokens: o.limit,
      policy: 'window',
      inPlace: false,
      reprefillBecause: o.reason,
      protectedKept: plan?.protectedKept ?? 0,
      protectedDropped: plan?.protectedDropped ?? 0,
      evictedRanges: plan?.droppedRanges ?? [],
    },
  };
}
