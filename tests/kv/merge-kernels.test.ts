/**
 * The merged-pair layout on the GPU against its CPU reference: attention outputs of both layers of a pair,
 * and the stored state itself (slot map, f16 norms, directions, retained originals) decoded on the CPU
 * and compared with the reference's restored rows, over prefill chunks and decode steps.
 */
import { describe, expect, it } from 'vitest';
import { FullKvCache } from '../../src/kv/full-cache';
import { MergedKvCache, type MergeOptions } from '../../src/kv/merge-cache';
import { quantFormat } from '../../src/kv/quant-format';
import { f16BitsToF32 } from '../../src/model/safetensors';
import { attention } from '../../src/reference/kernels';
import { MergeReferenceKv } from '../../src/reference/kv-merge';
import { FullReferenceKv } from '../../src/reference/kv-reference';
import { attentionPartials, useKernelHarness, randomArray, relativeMaxError } from '../helpers/gpu';

interface Case {
  name: string;
  heads: number;
  kvHeads: number;
  headDim: number;
  options: (E: number) => MergeOptions;
  steps: number[];
  layers?: number;
}

/** KIVI format of merged directions: b-bit keys per channel over G-token blocks, values per token, R-block flush. */
const kiviDirections = (E: number, bits: 2 | 4, group: number, residual: number) =>
  quantFormat({ rowElems: E, keyBits: bits, valueBits: bits, keyGrouping: 'channel', group, residual, valueFlush: 'block' });

const CASES: Case[] = [
  { name: 'merge R=16 γ=0.25 GQA 2 d=8', heads: 8, kvHeads: 4, headDim: 8, options: () => ({ startLayer: 0, t: 0.6, retention: 0.25, residual: 16 }), steps: [20, 1, 1, 13, 1] },
  { name: 'merge R=32 γ=0.05 GQA 3 d=64', heads: 3, kvHeads: 1, headDim: 64, options: () => ({ startLayer: 0, t: 0.6, retention: 0.05, residual: 32 }), steps: [40, 1, 30, 1] },
  { name: 'merge R=16 γ=0.1 GQA 1 d=128', heads: 2, kvHeads: 2, headDim: 128, options: () => ({ startLayer: 0, t: 0.6, retention: 0.1, residual: 16 }), steps: [21, 1, 1, 12] },
  { name: 'merge R=16 γ=0.05 GQA 4 d=64', heads: 4, kvHeads: 1, headDim: 64, options: () => ({ startLayer: 0, t: 0.6, retention: 0.05, residual: 16 }), steps: [17, 1, 16, 1] },
  {
    name: 'merge+kivi-4 G=16 R=32 GQA 1 d=128',
    heads: 2,
    kvHeads: 2,
    headDim: 128,
    options: (E) => ({ startLayer: 0, t: 0.6, retention: 0.05, residual: 32, directionFormat: kiviDirections(E, 4, 16, 32) }),
    steps: [33, 1, 31, 1],
  },
  {
    name: 'merge+kivi-2 G=8 R=16 GQA 3 d=64',
    heads: 3,
    kvHeads: 1,
    headDim: 64,
    options: (E) => ({ startLayer: 0, t: 0.6, retention: 0.1, residual: 16, directionFormat: kiviDirections(E, 2, 8, 16) }),
    steps: [18, 1, 15, 1],
  },
  {
    name: 'merge+kivi-2 G=16 R=32 GQA 4 d=8',
    heads: 8,
    kvHeads: 2,
    headDim: 8,
    options: (E) => ({ startLayer: 0, t: 0.6, retention: 0.1, residual: 32, directionFormat: kiviDirections(E, 2, 16, 32) }),
    steps: [40, 1, 30, 1],
  },
  {
    name: 'merge+kivi-4 G=16 R=32 S=1 over 5 layers (base layer 0, pairs 1+2 and 3+4)',
    heads: 8,
    kvHeads: 4,
    headDim: 8,
    layers: 5,
    options: (E) => ({ startLayer: 1, t: 0.6, retention: 0.05, residual: 32, directionFormat: kiviDirections(E, 4, 16, 32) }),
    steps: [48, 48, 1, 7],
  },
];

// Both attention schedules: barrier-free (CPU adapters) and cooperative workgroups (GPUs).
for (const schedule of ['software', 'hardware'] as const) describe(`merged KV pairs vs CPU reference (${schedule} schedule)`, () => {
  const h = useKernelHarness({ allowF16: false, schedule });

  for (const c of CASES) {
    it(c.name, async () => {
      const E = c.kvHeads * c.headDim;
      const options = c.options(E);
      const L = c.layers ?? 2;
      const shape = { numLayers: L, numHeads: c.heads, numKvHeads: c.kvHeads, headDim: c.headDim, maxTokens: 512, maxStepTokens: 48 };
      const cache = new MergedKvCache(h.gpu.device, shape, options, 4, (s) => new FullKvCache(h.gpu.device, s, { dtype: 'f32' }), 'test');
      const ref = new MergeReferenceKv(L, c.kvHeads, c.headDim, options, (n) => new FullReferenceKv(n));
      const variant = { weight: 'f32', kv: 'f32', subgroups: false } as const;
      let worst = 0;
      let seed = 5;
      for (const T of c.steps) {
        const pos0 = cache.length;
        cache.reserve(pos0 + T);
        const k0 = randomArray(T * E, seed++, 1);
        const v0 = randomArray(T * E, seed++, 1);
        // Each layer close to the previous in direction, as in the middle of a real network.
        const ks = [k0];
        const vs = [v0];
        for (let l = 1; l < L; l++) {
          ks.push(ks[l - 1].map((x, i) => 1.3 * x + 0.3 * randomArray(1, seed * 1000 + i + l * 7, 1)[0]));
          vs.push(vs[l - 1].map((x, i) => 0.7 * x + 0.3 * randomArray(1, seed * 2000 + i + l * 7, 1)[0]));
        }
        const qs = ks.map((_, l) => randomArray(T * c.heads * c.headDim, seed * 31 + l, 1));
        seed++;
        const partials = attentionPartials(h, c.heads, c.headDim);
        const io = ks.map((_, l) => ({ q: h.upload(qs[l]), k: h.upload(ks[l]), v: h.upload(vs[l]), out: h.empty(qs[l].length * 4), partials, tokens: T, pos0 }));
        await h.run(variant, (rec) => io.forEach((x, l) => cache.recordAttention(rec, l, x)), pos0, T);
        cache.commit(T);
        for (let l = 0; l < L; l++) {
          const rows = ref.attend(l, ks[l], vs[l]);
          const want = attention(qs[l], rows.k, rows.v, pos0, T, c.heads, c.kvHeads, c.headDim);
          const err = relativeMaxError(await h.readF32(io[l].out, qs[l].length), want);
          if (err > 1e-4) console.log(`layer ${l} step at ${pos0}: rel err ${err}`);
          worst = Math.max(worst, err);
        }
      }
      // Stored state: restore every merged row from the GPU buffers and compare with the reference's rows.
      const pair = cache.debugPair(0);
      const n = cache.length;
      const merged = Math.floor(n / options.residual) * options.residual;
      const cap = cache.allocatedTokens;
      const meta = await h.readU32(pair.meta, pair.meta.size / 4);
      const normsOffset = 0;
      const slotsOffset = cap * 2 * c.kvHeads;
      let retainedCount = 0;
      let restoreErr = 0;
      if (!options.directionFormat) {
        const dirs = await h.readF32(pair.dirs, pair.dirs.size / 4);
        const retained = await h.readF32(pair.retained, pair.retained.size / 4);
        for (let p = 0; p < merged; p++) {
          const slot = meta[slotsOffset + p];
          if (slot !== 0xffffffff) retainedCount++;
          for (let layer = 0; layer < 2; layer++) {
            for (let tensor = 0; tensor < 2; tensor++) {
              const want = ref.restoredRow(0, layer, tensor, p);
              for (let e = 0; e < E; e++) {
                const norm = meta[normsOffset + (p * 2 + tensor) * c.kvHeads + Math.floor(e / c.headDim)];
                const nl = f16BitsToF32(layer ? norm >>> 16 : norm & 0xffff);
                const got = slot !== 0xffffffff ? retained[((slot * 2 + layer) * 2 + tensor) * E + e] : nl * dirs[(p * 2 + tensor) * E + e];
                restoreErr = Math.max(restoreErr, Math.abs(got - want[e]));
              }
            }
          }
        }
        expect(retainedCount).toBe((merged / options.residual) * Math.ceil(options.retention * options.residual));
      }
      console.log(`${c.name}: attention rel err ${worst.toExponential(2)}; restored rows max |GPU − reference| ${restoreErr.toExponential(2)}; retained ${retainedCount} of ${merged}`);
      expect(worst).toBeLessThanOrEqual(1e-4);
      expect(restoreErr).toBeLessThanOrEqual(1e-4);
      cache.destroy();
    });
  }
});
