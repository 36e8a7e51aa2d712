/**
 * Issue #12 (6b): f32 → f16 K/V stores clamp to ±65504 instead of storing ±Inf (to_kvt, src/gpu/shader-assembly.ts),
 * through the full append (kv_full_append.wgsl) and the quantized layouts' full-precision ring
 * (kv_quant_append.wgsl). Values read back are exactly the CPU reference's f16 rounding (which clamps), and
 * attention over them stays finite. Needs shader-f16 (lavapipe has it; skipped elsewhere).
 */
import { describe, expect, it } from 'vitest';
import { FullKvCache } from '../../src/kv/full-cache';
import { QuantKvCache } from '../../src/kv/quant-cache';
import { quantFormat } from '../../src/kv/quant-format';
import { f16BitsToF32 } from '../../src/model/safetensors';
import { attentionPartials, randomArray, useKernelHarness, type KernelHarness } from '../helpers/gpu';
import { nanBuffer, roundF16 } from '../kernels/fixtures';

const F16_MAX = 65504;
const H = 4;
const HK = 2;
const D = 8;
const E = HK * D;
const T = 4;
const VARIANT = { weight: 'f32', kv: 'f16', subgroups: false } as const;

/** Random K/V rows with out-of-f16-range values spread through them (±1e6, ±7e4, just past the largest f16). */
function hugeRows(seed: number): Float32Array {
  const x = randomArray(T * E, seed, 2);
  const huge = [1e6, -1e6, 7e4, -7e4, 65520, -65520, 1e9, -1e9];
  for (let i = 0; i < huge.length * 3; i++) x[(i * 7 + seed) % x.length] = huge[i % huge.length];
  return x;
}

/** Read `n` f16 values at element offset `at` of `buffer` as f32. */
async function readF16(h: KernelHarness, buffer: GPUBuffer, at: number, n: number): Promise<Float32Array> {
  const words = await h.readU32(buffer, Math.ceil((at + n) / 2));
  return Float32Array.from(new Uint16Array(words.buffer, at * 2, n), f16BitsToF32);
}

/** Stored values are finite, reach ±65504 where the input was beyond it, and equal the reference rounding. */
function expectClamped(label: string, got: Float32Array, input: Float32Array): void {
  expect(got.every(Number.isFinite), `${label}: every stored value finite`).toBe(true);
  expect(Array.from(got)).toEqual(Array.from(roundF16(input)));
  for (let i = 0; i < input.length; i++) if (Math.abs(input[i]) >= F16_MAX) expect(got[i], `${label}[${i}]`).toBe(Math.sign(input[i]) * F16_MAX);
  expect(got.some((x) => x === F16_MAX) && got.some((x) => x === -F16_MAX)).toBe(true);
}

describe('f16 K/V stores clamp to ±65504', () => {
  const h = useKernelHarness({ schedule: 'software' });

  /** q, k, v and the attention I/O for one step of T tokens at pos0 = 0. */
  function stepIo(k: Float32Array, v: Float32Array) {
    const q = randomArray(T * H * D, 3, 1);
    return { q: h.upload(q), k: h.upload(k), v: h.upload(v), out: nanBuffer(h, T * H * D), partials: attentionPartials(h, H, D), tokens: T, pos0: 0 };
  }

  it('fault: non-finite f16 K/V (±1e6 through the full append) is stored as finite ±65504', async (ctx) => {
    if (!h.gpu.caps.f16) ctx.skip();
    const [k, v] = [hugeRows(1), hugeRows(2)];
    const cache = new FullKvCache(h.gpu.device, { numLayers: 1, numHeads: H, numKvHeads: HK, headDim: D, maxTokens: 64 }, { dtype: 'f16', blockTokens: 8 });
    try {
      cache.reserve(T);
      const io = stepIo(k, v);
      await h.run(VARIANT, (rec) => cache.recordAttention(rec, 0, io), 0, T);
      cache.commit(T);
      const { k: kBuf, v: vBuf } = (cache as unknown as { buffers: Array<{ k: GPUBuffer; v: GPUBuffer }> }).buffers[0];
      expectClamped('full K', await readF16(h, kBuf, 0, T * E), k);
      expectClamped('full V', await readF16(h, vBuf, 0, T * E), v);
      expect((await h.readF32(io.out, T * H * D)).every(Number.isFinite), 'attention output finite').toBe(true);
    } finally {
      cache.destroy();
    }
  });

  it('fault: non-finite f16 K/V (±1e6 through the quantized append’s f16 ring) is stored as finite ±65504', async (ctx) => {
    if (!h.gpu.caps.f16) ctx.skip();
    const [k, v] = [hugeRows(3), hugeRows(4)];
    const R = 16;
    const format = quantFormat({ rowElems: E, keyBits: 2, valueBits: 2, keyGrouping: 'channel', group: 8, residual: R });
    const cache = new QuantKvCache(h.gpu.device, { numLayers: 1, numHeads: H, numKvHeads: HK, headDim: D, maxTokens: 64 }, format, 2, 'test');
    try {
      cache.reserve(T);
      const io = stepIo(k, v);
      await h.run(VARIANT, (rec) => cache.recordAttention(rec, 0, io), 0, T);
      cache.commit(T);
      // Ring: kvt [2, R, E], K half then V half; positions 0..T-1 at slots 0..T-1 (nothing flushed yet).
      const ring = cache.debugLayer(0).ring;
      expectClamped('ring K', await readF16(h, ring, 0, T * E), k);
      expectClamped('ring V', await readF16(h, ring, R * E, T * E), v);
      expect((await h.readF32(io.out, T * H * D)).every(Number.isFinite), 'attention output finite').toBe(true);
    } finally {
      cache.destroy();
    }
  });
});
