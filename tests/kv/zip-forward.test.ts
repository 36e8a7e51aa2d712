/**
 * The `zip` KV mode end to end on stories260k: GPU logits at every position (chunked prefill that freezes
 * blocks mid-chunk, then decode steps that complete more) against the CPU reference model run with the zip
 * reference cache; exact byte accounting (layer components = real buffers, formula within block rounding);
 * and the allocation compared with full, kivi-2 and kivi-4 at equal token counts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createKvCache, zipFormatFor } from '../../src/kv/factory';
import type { KvShape } from '../../src/kv/types';
import type { ZipKvCache } from '../../src/kv/zip-cache';
import { zipQuantizedCount } from '../../src/kv/zip-format';
import { zipFormulaCacheBytes } from '../helpers/doc-formulas';
import { zipLocate, ZipReferenceKv } from '../../src/reference/kv-zip';
import type { KvModeSpec } from '../../src/worker/api';
import { useKernelHarness } from '../helpers/gpu';
import { sharedModel } from '../helpers/hub';
import { compareModeForward, stories260kModeRig } from '../helpers/mode-rig';

type ZipSpec = Extract<KvModeSpec, { mode: 'zip' }>;
const MODES: ZipSpec[] = [
  { mode: 'zip' },
  { mode: 'zip', salientFraction: 0.25, groupSize: 16, residual: 32 },
  { mode: 'zip', salientFraction: 0.6, highBits: 8, lowBits: 4, groupSize: 8, residual: 48 },
];
const PREFILL = [48, 48, 48, 48, 7];
const DECODE = 30;
const CHUNK = 48;

describe('zip KV mode on stories260k', () => {
  const rig = stories260kModeRig(CHUNK, PREFILL.reduce((a, b) => a + b, 0) + DECODE);

  for (const spec of MODES) {
    it(`${JSON.stringify(spec)}: logits match the reference run with the zip reference cache; bytes add up`, async () => {
      const { engine, shape } = rig;
      const stats0 = await engine.setKvMode(spec);
      expect(stats0.kvMode).toBe('zip');
      const model = engine.model!;
      const format = zipFormatFor(shape, spec);
      const refKv = new ZipReferenceKv(shape.numLayers, format, shape.numHeads);
      const { worst, vsFull, pos } = await compareModeForward(rig, refKv, PREFILL, DECODE);
      // The frozen blocks of every layer: saliency selection must agree exactly; codes and scales up to rare
      // rounding-boundary flips, since the GPU's K/V differ from the CPU model's by f32 rounding (~1e-6).
      const kv = model.kv as unknown as ZipKvCache;
      const blocks = zipQuantizedCount(format, pos) / format.residual;
      let maskDiffs = 0;
      let wordDiffs = 0;
      for (let l = 0; l < shape.numLayers; l++) {
        const gpu = await kv.readLayer(l);
        const want = refKv.layers[l];
        for (let b = 0; b < blocks; b++) {
          for (let g = 0; g < format.kvHeads; g++) {
            for (let i = 0; i < format.residual; i++) if (zipLocate(format, gpu.meta, b, g, i).salient !== zipLocate(format, want.meta, b, g, i).salient) maskDiffs++;
          }
        }
        for (let i = 0; i < blocks * format.codeWords; i++) if (gpu.codes[i] !== want.codes[i] >>> 0) wordDiffs++;
        for (let i = 0; i < blocks * format.metaWords; i++) if (gpu.meta[i] !== want.meta[i] >>> 0) wordDiffs++;
      }
      const words = shape.numLayers * blocks * (format.codeWords + format.metaWords);
      const stats = engine.stats();
      const buffers = model.kv.bufferSizes();
      const real = buffers.reduce((a, b) => a + b.bytes, 0);
      const formula = zipFormulaCacheBytes(format, shape.numLayers, shape.numHeads, CHUNK, pos, 4);
      const allocated = (model.kv as unknown as { allocatedTokens: number }).allocatedTokens;
      // Block rounding: code streams are padded to whole words per (block, tensor, head, subset); the shared scratch to 4·L bytes.
      const slack = shape.numLayers * ((allocated / format.residual) * 2 * shape.numKvHeads * 2 * 4 + 4);
      const atCapacity = zipFormulaCacheBytes(format, shape.numLayers, shape.numHeads, CHUNK, allocated, 4);
      console.log(
        `${JSON.stringify(spec)}: |logits − zip reference| ${worst.toExponential(2)}, vs full reference ${vsFull.toExponential(2)}; ` +
          `KV ${real} B for ${pos} tokens (${allocated} allocated; formula ${Math.round(formula)} B at ${pos}, ${Math.round(atCapacity)} B at ${allocated}), ` +
          `${(stats.kvFp16EquivalentBytes / stats.kvBytes).toFixed(2)}× vs fp16; salient flags differing ${maskDiffs}, ` +
          `packed words differing ${wordDiffs}/${words}`,
      );
      expect(maskDiffs).toBe(0);
      expect(wordDiffs).toBeLessThanOrEqual(0.01 * words);
      // As for merge+kivi in modes-forward.test.ts: within 1e-3, or within 0.2% of the mode's own deviation from
      // full precision, since a flipped code is amplified by stories260k (finer steps at 8/4 bits flip more often).
      expect(worst).toBeLessThanOrEqual(Math.max(1e-3, 2e-3 * vsFull));
      expect(vsFull).toBeGreaterThan(10 * worst); // the mode really changes what attention reads
      expect(stats.tokensHeld).toBe(pos);
      expect(stats.kvBytes).toBe(real);
      expect(stats.kvLayers.reduce((a, l) => a + l.total, 0)).toBe(real);
      for (const l of stats.kvLayers) expect(Object.values(l.components).reduce((a, x) => a + x, 0)).toBe(l.total);
      expect(real).toBeGreaterThanOrEqual(formula);
      expect(real).toBeGreaterThanOrEqual(atCapacity);
      expect(real).toBeLessThanOrEqual(atCapacity + slack);
      expect(stats.kvFp16EquivalentBytes).toBe(2 * shape.numLayers * shape.numKvHeads * shape.headDim * pos * 2);
    });
  }
});

describe('zip allocation vs full and KIVI at equal token counts', () => {
  const h = useKernelHarness({ allowF16: false });

  const allocated = (shape: KvShape, spec: KvModeSpec, tokens: number, dtype: 'f32' | 'f16') => {
    const cache = createKvCache(h.gpu.device, h.gpu.caps, shape, spec, dtype);
    cache.reserve(tokens);
    const bytes = cache.bufferSizes().reduce((a, b) => a + b.bytes, 0);
    expect(cache.layerStats().reduce((a, l) => a + l.total, 0)).toBe(bytes);
    cache.destroy();
    return bytes;
  };

  const SHAPES: Array<[string, string, number, 'f32' | 'f16', boolean]> = [
    // [model, label, tokens, ring dtype, assert the KIVI ordering]
    ['stories260k', 'stories260k (d = 8) at 229 tokens', 229, 'f32', false],
    ['stories260k', 'stories260k at its 512-token maximum', 512, 'f32', true],
    ['smollm2-135m-shape', 'SmolLM2-135M shape (30 layers, Hk = 3, d = 64) at 1024 tokens', 1024, 'f16', true],
    ['smollm2-135m-shape', 'SmolLM2-135M shape at 4096 tokens', 4096, 'f16', true],
  ];
  for (const [model, label, tokens, dtype, ordered] of SHAPES) {
    it(label, () => {
      const c = JSON.parse(fs.readFileSync(path.join(sharedModel(model), 'config.json'), 'utf8'));
      const shape: KvShape = {
        numLayers: c.num_hidden_layers,
        numHeads: c.num_attention_heads,
        numKvHeads: c.num_key_value_heads,
        headDim: c.hidden_size / c.num_attention_heads,
        maxTokens: c.max_position_embeddings,
        maxStepTokens: CHUNK,
      };
      const bytes = {
        full: allocated(shape, { mode: 'full' }, tokens, dtype),
        kivi2: allocated(shape, { mode: 'kivi', bits: 2 }, tokens, dtype),
        kivi4: allocated(shape, { mode: 'kivi', bits: 4 }, tokens, dtype),
        zip: allocated(shape, { mode: 'zip' }, tokens, dtype),
      };
      const fp16 = 2 * shape.numLayers * shape.numKvHeads * shape.headDim * tokens * 2;
      // The formula at the allocated capacity, up to word padding of the code streams and the scratch.
      const zipCache = createKvCache(h.gpu.device, h.gpu.caps, shape, { mode: 'zip' }, dtype) as ZipKvCache;
      zipCache.reserve(tokens);
      const format = zipFormatFor(shape, { mode: 'zip' });
      const atCapacity = zipFormulaCacheBytes(format, shape.numLayers, shape.numHeads, CHUNK, zipCache.allocatedTokens, dtype === 'f16' ? 2 : 4);
      const slack = shape.numLayers * ((zipCache.allocatedTokens / format.residual) * 2 * shape.numKvHeads * 2 * 4 + 4);
      zipCache.destroy();
      expect(bytes.zip).toBeGreaterThanOrEqual(atCapacity);
      expect(bytes.zip).toBeLessThanOrEqual(atCapacity + slack);
      console.log(
        `${label}: ` + Object.entries(bytes).map(([k, b]) => `${k} ${b} B (${(fp16 / b).toFixed(2)}× vs fp16)`).join(', '),
      );
      expect(bytes.zip).toBeLessThan(bytes.full);
      if (ordered) {
        expect(bytes.zip).toBeGreaterThan(bytes.kivi2);
        expect(bytes.zip).toBeLessThan(bytes.kivi4);
      }
    });
  }
});
