/**
 * Engine.measureQuality (src/engine/quality.ts), the measurements behind `npm run eval`, on stories260k in f32:
 * perplexity equals the CPU reference's on the same chunks, greedy reproduces the golden ids, and the bytes
 * task sizes a cache exactly as a run of the same length allocates it.
 */
import { describe, expect, it } from 'vitest';
import { loadReferenceModel } from '../../src/reference/load-node';
import type { KvModeSpec, QualityResult } from '../../src/worker/api';
import { GOLDEN, sharedModel, useLoadedEngine } from '../helpers/hub';

const CHUNK = 64;

/** Perplexity on the CPU reference with the same protocol: read ids[0..n) in chunks, score ids[1..n]. */
async function referencePerplexity(ids: number[]): Promise<number> {
  const { config, model } = await loadReferenceModel(sharedModel('stories260k'));
  const V = config.vocabSize;
  const n = ids.length - 1;
  let nll = 0;
  for (let p0 = 0; p0 < n; p0 += CHUNK) {
    const chunk = ids.slice(p0, Math.min(n, p0 + CHUNK));
    const logits = model.forward(chunk);
    for (let r = 0; r < chunk.length; r++) {
      let max = -Infinity;
      for (let j = 0; j < V; j++) max = Math.max(max, logits[r * V + j]);
      let sum = 0;
      for (let j = 0; j < V; j++) sum += Math.exp(logits[r * V + j] - max);
      nll += Math.log(sum) + max - logits[r * V + ids[p0 + r + 1]];
    }
  }
  return Math.exp(nll / n);
}

function expectKind<K extends QualityResult['kind']>(r: QualityResult, kind: K): Extract<QualityResult, { kind: K }> {
  expect(r.kind).toBe(kind);
  return r as Extract<QualityResult, { kind: K }>;
}

describe('Engine.measureQuality, stories260k', () => {
  // Golden story continuation as text ids: a deterministic, in-domain sequence of 66 tokens (BOS first).
  const ids = [...GOLDEN.onceUponATime.promptIds, ...GOLDEN.onceUponATime.ids, ...GOLDEN.tomAndSue.promptIds.slice(1), ...GOLDEN.tomAndSue.ids];

  const ctx = useLoadedEngine('local/stories260k', { allLogits: true, prefillChunk: CHUNK, weightDtype: 'f32', kvDtype: 'f32' });

  it('perplexity with the full cache equals the CPU reference over the same chunks', async () => {
    const r = expectKind(await ctx.engine.measureQuality({ kind: 'perplexity', kvMode: { mode: 'full' }, ids }), 'perplexity');
    expect(r.tokens).toBe(ids.length - 1);
    expect(r.predicted).toBe(ids.length - 1);
    expect(r.kv.tokens).toBe(ids.length - 1);
    const cfg = { L: 5, Hk: 4, d: 8 };
    expect(r.kv.fp16Bytes).toBe(2 * cfg.L * cfg.Hk * cfg.d * (ids.length - 1) * 2);
    const reference = await referencePerplexity(ids);
    expect(Math.abs(r.ppl / reference - 1)).toBeLessThan(1e-4);
    // The golden continuation is the model's own greedy text, so it is far more likely than uniform (vocab 512).
    expect(r.ppl).toBeLessThan(10);
  });

  it('greedy reproduces the golden continuation and decodes it', async () => {
    const { promptIds, ids: golden } = GOLDEN.onceUponATime;
    const r = expectKind(await ctx.engine.measureQuality({ kind: 'greedy', kvMode: { mode: 'full' }, promptIds, newTokens: golden.length }), 'greedy');
    expect(r.tokenIds).toEqual(golden);
    expect(r.text.startsWith(', there was a little girl named Lily.')).toBe(true);
  });

  it('sizes a cache as a run of the same length allocates it, in every mode', async () => {
    const modes: KvModeSpec[] = [{ mode: 'full' }, { mode: 'int8' }, { mode: 'kivi', bits: 2 }, { mode: 'merge' }, { mode: 'merge+kivi', bits: 4 }, { mode: 'zip' }];
    const n = 130;
    for (const kvMode of modes) {
      const run = expectKind(await ctx.engine.measureQuality({ kind: 'perplexity', kvMode, ids: ids.concat(ids).concat(ids).slice(0, n + 1) }), 'perplexity');
      const sized = expectKind(await ctx.engine.measureQuality({ kind: 'bytes', kvMode, tokens: n, kvDtype: 'f32' }), 'bytes');
      expect(sized.kv.kvBytes, kvMode.mode).toBe(run.kv.kvBytes);
      expect(sized.kv.fp16Bytes).toBe(run.kv.fp16Bytes);
      const half = expectKind(await ctx.engine.measureQuality({ kind: 'bytes', kvMode, tokens: n, kvDtype: 'f16' }), 'bytes');
      if (kvMode.mode === 'full') expect(half.kv.kvBytes).toBe(sized.kv.kvBytes / 2);
      else expect(half.kv.kvBytes).toBeLessThanOrEqual(sized.kv.kvBytes);
    }
    // The ctx.engine is usable afterwards: a chat generation starts from an empty history.
    const g = await ctx.engine.generate('Once upon a time', { maxNewTokens: 4 });
    expect(g.tokenIds.length).toBe(4);
  });
  it('divergence of full against full is zero, and a 2-bit cache scores the same NLL as its perplexity task', async () => {
    const same = expectKind(await ctx.engine.measureQuality({ kind: 'divergence', kvMode: { mode: 'full' }, ids }), 'divergence');
    expect(same.tokens).toBe(ids.length - 1);
    expect(same.scores.kl).toHaveLength(ids.length - 1);
    expect(Math.max(...same.scores.kl)).toBeLessThan(1e-9);
    expect(same.scores.top1.every((t) => t === 1)).toBe(true);
    expect(same.scores.nll).toEqual(same.scores.nllRef);

    const kivi: KvModeSpec = { mode: 'kivi', bits: 2, groupSize: 8, residual: 8 };
    const d = expectKind(await ctx.engine.measureQuality({ kind: 'divergence', kvMode: kivi, ids }), 'divergence');
    const p = expectKind(await ctx.engine.measureQuality({ kind: 'perplexity', kvMode: kivi, ids }), 'perplexity');
    const meanNll = d.scores.nll.reduce((s, x) => s + x, 0) / d.tokens;
    expect(Math.abs(meanNll - p.nll)).toBeLessThan(1e-6);
    // The reference row is full's NLL; 2-bit codes over a tiny head dim move the distribution measurably.
    const full = expectKind(await ctx.engine.measureQuality({ kind: 'perplexity', kvMode: { mode: 'full' }, ids }), 'perplexity');
    expect(Math.abs(d.scores.nllRef.reduce((s, x) => s + x, 0) / d.tokens - full.nll)).toBeLessThan(1e-6);
    const klMean = d.scores.kl.reduce((s, x) => s + x, 0) / d.tokens;
    expect(klMean).toBeGreaterThan(1e-4);
    // Positions inside the first residual window see only exact keys and values: no divergence there.
    expect(Math.max(...d.scores.kl.slice(0, 8))).toBeLessThan(1e-6);
    expect(d.kv.kvBytes).toBeLessThan(full.kv.kvBytes);
  });
  it('divergence under an evicting cache: exact until the first eviction, then what eviction costs, in place', async () => {
    const long = [...ids, ...ids.slice(1), ...ids.slice(1), ...ids.slice(1)].slice(0, 257); // 256 scored positions
    for (const policy of ['window', 'saliency'] as const) {
      const r = expectKind(await ctx.engine.measureQuality({ kind: 'divergence', kvMode: { mode: 'full' }, ids: long, evict: { limitTokens: 128, policy } }), 'divergence');
      expect(r.tokens).toBe(256);
      const windows = (r.events ?? []).filter((e) => e.kind === 'window');
      expect(windows.length, policy).toBeGreaterThan(0);
      expect(windows.every((e) => e.kind === 'window' && e.inPlace), policy).toBe(true);
      // Chunks 0 and 1 (positions < 128) fit: full precision over everything, as the reference.
      expect(Math.max(...r.scores.kl.slice(0, 128)), policy).toBeLessThan(1e-6);
      // Afterwards the cache has forgotten tokens: the distributions move.
      expect(r.scores.kl.slice(128).reduce((a, b) => a + b, 0) / 128, policy).toBeGreaterThan(1e-4);
      expect(r.kv.tokens, policy).toBeLessThanOrEqual(128);
    }
  });
});
