/**
 * Eviction in place on the GPU (Node + Dawn): the compaction kernel (shaders/kv_compact.wgsl) per layout, the
 * RoPE positions that survive it, and the saliency that chooses what goes (lib/saliency_rows.wgsl).
 *
 * With one decoder layer a token's K/V depend only on its id and position, so a fresh cache prefilled with the
 * kept tokens at their original positions holds exactly the rows an evicted cache kept: the logits of the
 * steps after the eviction must agree. With more layers (full), the CPU reference evicts the same rows.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planKeep } from '../../src/engine/eviction-plan';
import { Engine } from '../../src/engine/engine';
import { BufferGroup } from '../../src/gpu/buffers';
import { FullKvCache } from '../../src/kv/full-cache';
import type { ZipKvCache } from '../../src/kv/zip-cache';
import { loadReferenceModel } from '../../src/reference/load-node';
import type { KvModeSpec } from '../../src/worker/api';
import { DirSource } from '../helpers/dir-source';
import { attentionPartials, nodeGpu, randomArray, useKernelHarness } from '../helpers/gpu';
import { maxAbsDiff } from '../helpers/mode-rig';
import { writeRandomModel, type RandomModelOptions } from '../helpers/random-model';
import { Recorder } from '../../src/gpu/plan';

const ONE_LAYER: RandomModelOptions = {
  architecture: 'llama', hiddenSize: 64, numLayers: 1, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 128, vocabSize: 256, seed: 11, maxPositions: 512,
};
const TWO_LAYERS: RandomModelOptions = { ...ONE_LAYER, numLayers: 2, seed: 12 };
const CHUNK = 32;
const N = 160;
const NEXT = [7, 99, 3, 200, 41];

/** Deterministic token ids in [4, vocab). */
function tokenIds(n: number, seed: number, vocab: number): number[] {
  return Array.from(randomArray(n, seed, 1), (x) => 4 + Math.floor(((x + 1) / 2) * (vocab - 5)));
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'kvtab-evict-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function loadRandom(name: string, opts: RandomModelOptions, kvDtype: 'f32' | 'f16' = 'f32'): Promise<{ engine: Engine; dir: string }> {
  const dir = path.join(root, name);
  await writeRandomModel(dir, opts);
  const engine = new Engine(nodeGpu());
  await engine.load(new DirSource(dir), { weightDtype: 'f32', kvDtype, prefillChunk: CHUNK });
  return { engine, dir };
}

/** Feed `ids` in chunks of CHUNK, the last few as single decode steps (so rings and flushes are exercised). */
async function feed(engine: Engine, ids: readonly number[]): Promise<void> {
  const model = engine.model!;
  const tail = Math.min(5, ids.length);
  for (let i = 0; i < ids.length - tail; i += CHUNK) await model.forward(ids.slice(i, Math.min(i + CHUNK, ids.length - tail)), 'none');
  for (const id of ids.slice(ids.length - tail)) await model.forward([id], 'none');
}

/** Logits of each NEXT token fed one step at a time. */
async function nextLogits(engine: Engine): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const id of NEXT) out.push((await engine.model!.forward([id], 'last-logits')).logits!);
  return out;
}

const worstOf = (a: Float32Array[], b: Float32Array[]) => Math.max(...a.map((x, i) => maxAbsDiff(x, b[i])));

/** Kept positions: sinks, a protected stretch in the middle (so kept runs are not contiguous), then the newest. */
const guarded = (p: number) => p >= 50 && p < 58;

// f16 K/V rows are compacted as u32 words too (two elements a word); f16 runs where the adapter has shader-f16.
for (const kvDtype of ['f32', 'f16'] as const) describe(`eviction in place = a fresh cache holding the kept tokens at their positions (one layer, ${kvDtype} K/V)`, () => {
  let engine: Engine;
  beforeAll(async () => {
    ({ engine } = await loadRandom(`one-layer-${kvDtype}`, ONE_LAYER, kvDtype));
  });
  afterAll(async () => engine?.unload());

  const MODES: Array<[KvModeSpec, number]> = [
    [{ mode: 'full' }, 1e-4],
    [{ mode: 'int8' }, 1e-3],
    [{ mode: 'int8', residual: 32 }, 1e-3],
    [{ mode: 'kivi', bits: 4, groupSize: 16, residual: 32 }, 1e-3],
    [{ mode: 'kivi', bits: 2, groupSize: 16, residual: 32 }, 1e-3],
  ];

  // With an f16 ring, KIVI quantizes a key block from f16 ring rows or f32 fresh rows depending on how the
  // tokens were chunked when the block flushed, so only f32 runs compare it with a differently fed cache.
  for (const [spec, tol] of MODES.filter(([m]) => kvDtype === 'f32' || m.mode !== 'kivi')) {
    it(`${JSON.stringify(spec)}`, async () => {
      const ids = tokenIds(N, 31, ONE_LAYER.vocabSize);
      const model = engine.model!;
      // A: feed everything, evict in place, go on.
      await engine.setKvMode(spec);
      await feed(engine, ids);
      const rules = model.kv.evictionRules();
      expect(rules).not.toBeNull();
      const plan = planKeep({ positions: ids.map((_, p) => p), isProtected: guarded, keep: 80, sinks: 4, recent: 8, rules: rules!, policy: 'window' })!;
      expect(plan.dropped % rules!.multiple).toBe(0);
      model.evict(plan.keep);
      expect(model.kv.length).toBe(plan.keep.length);
      expect(model.kv.nextPosition).toBe(N);
      const evicted = await nextLogits(engine);
      expect(model.kv.nextPosition).toBe(N + NEXT.length);

      // B: a fresh cache prefilled run by run with the kept tokens at their original positions.
      await engine.setKvMode(spec);
      const kv = model.kv;
      let run = 0;
      while (run < plan.keep.length) {
        let end = run + 1;
        while (end < plan.keep.length && plan.keep[end] === plan.keep[end - 1] + 1) end++;
        expect(kv.truncate(kv.length, plan.keep[run])).toBe(true);
        const runIds = plan.keep.slice(run, end).map((p) => ids[p]);
        for (let i = 0; i < runIds.length; i += CHUNK) await model.forward(runIds.slice(i, i + CHUNK), 'none');
        run = end;
      }
      expect(kv.truncate(kv.length, N)).toBe(true);
      const fresh = await nextLogits(engine);

      // C (control): nothing evicted, so the test can tell.
      await engine.setKvMode(spec);
      await feed(engine, ids);
      const whole = await nextLogits(engine);

      const diff = worstOf(evicted, fresh);
      const control = worstOf(evicted, whole);
      console.log(`[evict] ${JSON.stringify(spec)}: kept ${plan.keep.length}/${N}, |evicted − fresh| ${diff.toExponential(2)}, |evicted − not evicted| ${control.toExponential(2)}`);
      expect(diff).toBeLessThanOrEqual(tol);
      expect(control).toBeGreaterThan(20 * Math.max(diff, tol / 10));
    });
  }

  it('zip drops whole frozen blocks: codes and block metadata move with their blocks, the ring stays', async () => {
    // zip's salient selection depends on the queries that saw a block, so a fresh cache fed differently would
    // quantize differently; the compaction itself is checked on the packed state instead.
    const spec: KvModeSpec = { mode: 'zip', groupSize: 16, residual: 32 };
    const ids = tokenIds(N, 33, ONE_LAYER.vocabSize);
    const model = engine.model!;
    await engine.setKvMode(spec);
    await feed(engine, ids);
    const zip = model.kv as ZipKvCache;
    const before = await zip.readLayer(0);
    const rules = zip.evictionRules();
    expect(rules).toEqual({ block: 32, multiple: 32, frontier: 160 });
    const plan = planKeep({ positions: ids.map((_, p) => p), isProtected: guarded, keep: 100, sinks: 4, recent: 8, rules, policy: 'window' })!;
    const blocks = plan.keep.filter((s) => s % 32 === 0).map((s) => s / 32);
    // Block 0 holds the sinks, block 1 protected positions 50-57, block 4 the recent ones: blocks 2 and 3 go.
    expect(blocks).toEqual([0, 1, 4]);
    model.evict(plan.keep);
    const after = await zip.readLayer(0);
    const { codeWords, metaWords } = zip.format;
    blocks.forEach((b, i) => {
      expect(after.codes.subarray(i * codeWords, (i + 1) * codeWords)).toEqual(before.codes.subarray(b * codeWords, (b + 1) * codeWords));
      expect(after.meta.subarray(i * metaWords, (i + 1) * metaWords)).toEqual(before.meta.subarray(b * metaWords, (b + 1) * metaWords));
    });
    expect(after.saliency).toEqual(before.saliency);
    const logits = await nextLogits(engine);
    expect(logits.every((l) => l.every(Number.isFinite))).toBe(true);
  });

  it('merged layouts do not evict in place', async () => {
    await engine.setKvMode({ mode: 'merge', startLayer: 0 });
    expect(engine.model!.kv.evictionRules()).toBeNull();
  });
});

describe('eviction in place in a two-layer model matches the CPU reference evicting the same rows (full)', () => {
  it('saliency-chosen rows, then decode at the original positions', async () => {
    const { engine, dir } = await loadRandom('two-layers', TWO_LAYERS);
    try {
      const ref = await loadReferenceModel(dir);
      const ids = tokenIds(N, 32, TWO_LAYERS.vocabSize);
      const model = engine.model!;
      await feed(engine, ids);
      ref.model.reset();
      ref.model.forward(ids);
      // Scattered rows: every third position past the sinks goes.
      const keep = ids.map((_, p) => p).filter((p) => p < 4 || p % 3 !== 0 || p >= N - 8);
      model.evict(keep);
      ref.model.evict(keep);
      let worst = 0;
      for (const id of NEXT) {
        const got = (await model.forward([id], 'last-logits')).logits!;
        worst = Math.max(worst, maxAbsDiff(got, ref.model.forward([id])));
      }
      console.log(`[evict] two layers, full: |GPU − reference| ${worst.toExponential(2)} after keeping ${keep.length}/${N}`);
      expect(worst).toBeLessThanOrEqual(1e-3);
    } finally {
      await engine.unload();
    }
  });
});

describe('saliency (lib/saliency_rows.wgsl) on a constructed case', () => {
  const h = useKernelHarness({ schedule: 'software' });

  it('scores the keys every query attends to highest, matches the CPU, and is compacted with the rows', async () => {
    const H = 2;
    const Hk = 1;
    const d = 8;
    const T = 24;
    const salient = [6, 11, 17];
    // Every query is the same unit vector u; salient keys are 4u, the rest small noise orthogonal-ish to u.
    const u = Float32Array.from({ length: d }, (_, c) => (c === 0 ? 1 : 0));
    const q = new Float32Array(T * H * d);
    for (let i = 0; i < T * H; i++) q.set(u, i * d);
    const k = randomArray(T * Hk * d, 7, 0.2);
    for (let j = 0; j < T; j++) k[j * d] = salient.includes(j) ? 4 : 0.1 * k[j * d];
    const v = randomArray(T * Hk * d, 8, 1);
    const shape = { numLayers: 1, numHeads: H, numKvHeads: Hk, headDim: d, maxTokens: 64 };
    const cache = new FullKvCache(h.gpu.device, shape, { dtype: 'f32', saliency: true });
    try {
      cache.reserve(T);
      const variant = { weight: 'f32', kv: 'f32', subgroups: false } as const;
      const io = { q: h.upload(q), k: h.upload(k), v: h.upload(v), out: h.empty(T * H * d * 4), partials: attentionPartials(h, H, d), tokens: T, pos0: 0 };
      await h.run(variant, (rec) => cache.recordAttention(rec, 0, io), 0, T);
      cache.commit(T);
      const got = (await cache.readSaliency())!;

      // CPU: the last 8 queries (probes) over keys 0 ..= t; weight per slot / queries that saw it.
      const want = new Float32Array(T);
      const seen = new Float32Array(T);
      for (let t = T - 8; t < T; t++) {
        const s = Array.from({ length: t + 1 }, (_, j) => (k[j * d] * q[t * H * d]) / Math.sqrt(d));
        const m = Math.max(...s);
        const z = s.reduce((a, x) => a + Math.exp(x - m), 0);
        for (let j = 0; j <= t; j++) {
          want[j] += (H * Math.exp(s[j] - m)) / z;
          seen[j] += H;
        }
      }
      for (let j = 0; j < T; j++) want[j] /= Math.max(1, seen[j]);
      expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(1e-5);

      const plan = planKeep({ positions: [...Array(T).keys()], isProtected: () => false, keep: 12, sinks: 4, recent: 4, rules: cache.evictionRules(), policy: 'saliency', saliency: got })!;
      expect(plan.policy).toBe('saliency');
      for (const j of salient) expect(plan.keep).toContain(j);
      const window = planKeep({ positions: [...Array(T).keys()], isProtected: () => false, keep: 12, sinks: 4, recent: 4, rules: cache.evictionRules(), policy: 'window' })!;
      expect(salient.filter((j) => window.keep.includes(j)).length).toBeLessThan(salient.length);

      // Evict: the saliency rows move with their slots.
      const rec = new Recorder(h.gpu.device, h.pipelines, h.gpu.caps, variant, h.step, new BufferGroup(h.gpu.device, 'evict'));
      cache.evict(rec, plan.keep);
      const evictPlan = rec.finish(0);
      const enc = h.gpu.device.createCommandEncoder();
      evictPlan.encodeStep(enc);
      h.gpu.device.queue.submit([enc.finish()]);
      evictPlan.destroy();
      expect(cache.length).toBe(plan.keep.length);
      expect(cache.nextPosition).toBe(T);
      const moved = (await cache.readSaliency())!;
      expect(maxAbsDiff(moved, Float32Array.from(plan.keep, (j) => got[j]))).toBe(0);
    } finally {
      cache.destroy();
    }
  });
});
