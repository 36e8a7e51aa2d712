// FullKvCache attention + KV append (shaders/attention_full, lib/attention_rows, kv_full_append.wgsl), in both schedules, against the CPU reference.
import { describe, expect, it } from 'vitest';
import { FullKvCache } from '../../src/kv/full-cache';
import { flatDispatch } from '../../src/gpu/plan';
import { f16BitsToF32 } from '../../src/model/safetensors';
import { attention } from '../../src/reference/kernels';
import { attentionPartials, useKernelHarness, randomArray, type KernelHarness } from '../helpers/gpu';
import { deviceVariants, expectClose, F16_LOOSE_TOL, F16_TIGHT_TOL, F32_TOL, nanBuffer, roundF16, type NamedVariant } from './fixtures';

/** Read `n` kvt values (f32 or f16) back as f32. */
async function readKv(h: KernelHarness, buffer: GPUBuffer, n: number, dtype: 'f32' | 'f16'): Promise<Float32Array> {
  if (dtype === 'f32') return h.readF32(buffer, n);
  const words = await h.readU32(buffer, Math.ceil(n / 2));
  return Float32Array.from(new Uint16Array(words.buffer, 0, n), f16BitsToF32);
}

// Both attention schedules: barrier-free (CPU adapters) and cooperative workgroups (GPUs).
for (const schedule of ['software', 'hardware'] as const) describe(`full-precision KV cache attention vs reference (${schedule} schedule)`, () => {
  const h = useKernelHarness({ schedule });
  let seed = 500;

  /**
   * Feed `chunks` token counts through one layer of a FullKvCache (each chunk at pos0 = tokens so far) and compare
   * every chunk's output with reference attention, then the cache contents with the K/V fed in.
   */
  async function check(v: NamedVariant, H: number, Hk: number, d: number, chunks: number[], scoreScale = 2): Promise<void> {
    const S = chunks.reduce((a, b) => a + b, 0);
    const q = randomArray(S * H * d, seed++, scoreScale);
    const k = randomArray(S * Hk * d, seed++, scoreScale);
    const vv = randomArray(S * Hk * d, seed++, 3);
    const kRef = v.dtype === 'f16' ? roundF16(k) : k;
    const vRef = v.dtype === 'f16' ? roundF16(vv) : vv;
    // Small blocks make the cache grow (and copy its rows) between chunks; layer 1 of 2 catches layer mix-ups.
    const cache = new FullKvCache(h.gpu.device, { numLayers: 2, numHeads: H, numKvHeads: Hk, headDim: d, maxTokens: 4096 }, { dtype: v.dtype, blockTokens: 8 });
    try {
      let pos0 = 0;
      for (const T of chunks) {
        cache.reserve(pos0 + T);
        const rows = (n: number, a: Float32Array) => h.upload(a.slice(pos0 * n, (pos0 + T) * n));
        const io = { q: rows(H * d, q), k: rows(Hk * d, k), v: rows(Hk * d, vv), out: nanBuffer(h, T * H * d), partials: attentionPartials(h, H, d), tokens: T, pos0 };
        await h.run(v.variant, (rec) => cache.recordAttention(rec, 1, io), pos0, T);
        cache.commit(T);
        const got = await h.readF32(io.out, T * H * d);
        const qT = q.slice(pos0 * H * d, (pos0 + T) * H * d);
        const shape = `H=${H} Hk=${Hk} d=${d} pos0=${pos0} T=${T}${scoreScale !== 2 ? ` qk×${scoreScale}` : ''}`;
        const kernel = `attention kv=${v.dtype}`;
        expectClose(kernel, shape, got, attention(qT, kRef, vRef, pos0, T, H, Hk, d), v.dtype === 'f32' ? F32_TOL : F16_TIGHT_TOL);
        if (v.dtype === 'f16') expectClose(`${kernel} vs f32`, shape, got, attention(qT, k, vv, pos0, T, H, Hk, d), F16_LOOSE_TOL);
        pos0 += T;
      }
      expect(cache.length).toBe(S);
      // The appended (and, on growth, copied) rows must be exactly the fresh K/V in kvt.
      const { k: kBuf, v: vBuf } = (cache as unknown as { buffers: Array<{ k: GPUBuffer; v: GPUBuffer }> }).buffers[1];
      const n = S * Hk * d;
      expectClose(`kv append (cache) ${v.dtype}`, `H=${H} Hk=${Hk} d=${d} S=${S} K`, await readKv(h, kBuf, n, v.dtype), kRef, 0);
      expectClose(`kv append (cache) ${v.dtype}`, `H=${H} Hk=${Hk} d=${d} S=${S} V`, await readKv(h, vBuf, n, v.dtype), vRef, 0);
    } finally {
      cache.destroy();
    }
  }

  // Prefill, a chunk at pos0 > 0 (crossing the 64-key tile), then decode steps.
  const chunked = [5, 37, 1, 1];
  const gqa: Array<[number, number, number]> = [
    [2, 2, 8], // ratio 1
    [4, 2, 64], // ratio 2
    [6, 2, 128], // ratio 3
    [3, 1, 8], // ratio 3
    [4, 4, 128], // ratio 1
    [4, 2, 8], // ratio 2
  ];

  it('GQA ratios 1, 2, 3 and head dims 8, 64, 128: chunked prefill with pos0 > 0, then decode', async () => {
    for (const v of deviceVariants(h)) {
      for (const [H, Hk, d] of gqa) await check(v, H, Hk, d, chunked);
    }
  });

  it('decode from an empty cache and across several key tiles', async () => {
    for (const v of deviceVariants(h)) {
      await check(v, 2, 1, 64, [1, 1, 1]);
      await check(v, 3, 1, 128, [64, 1, 66, 1]);
      await check(v, 2, 2, 256, [37, 1]); // the largest head dim the kernel supports
      await check(v, 3, 3, 96, [5, 1]);
    }
  });

  it('peaked softmax (large scores) over many keys', async () => {
    for (const v of deviceVariants(h)) await check(v, 4, 2, 64, [70, 37, 1], 6);
  });
});

describe('kv_full_append writes only rows pos0 .. pos0 + T - 1', () => {
  const h = useKernelHarness();
  let seed = 600;

  /** Append T rows of `rowElems` at pos0 into a cache of `capacity` rows pre-filled with 7.0. */
  async function check(v: NamedVariant, rowElems: number, capacity: number, pos0: number, T: number): Promise<void> {
    const kNew = randomArray(T * rowElems, seed++, 3);
    const vNew = randomArray(T * rowElems, seed++, 3);
    const fill = (): GPUBuffer =>
      v.dtype === 'f16' ? h.upload(new Uint16Array(capacity * rowElems).fill(0x4700)) : h.upload(new Float32Array(capacity * rowElems).fill(7));
    const kCache = fill();
    const vCache = fill();
    const kBuf = h.upload(kNew);
    const vBuf = h.upload(vNew);
    await h.run(
      v.variant,
      (rec) => {
        // Same bindings and geometry as FullKvCache.recordAttention.
        const pipeline = rec.pipelines.get({ shader: 'kv_full_append', variant: rec.variant });
        const { workgroups, groupsPerRow } = flatDispatch(Math.ceil((T * rowElems) / 64), rec.caps.maxComputeWorkgroupsPerDimension);
        const params = rec.uniforms.alloc([rowElems, groupsPerRow * 64, 0, 0]);
        rec.dispatch('kv append', pipeline, { 0: params, 1: rec.step.buffer, 2: kBuf, 3: vBuf, 4: kCache, 5: vCache }, workgroups);
      },
      pos0,
      T,
    );
    for (const [name, fresh, buffer] of [['K', kNew, kCache], ['V', vNew, vCache]] as const) {
      const want = new Float32Array(capacity * rowElems).fill(7);
      want.set(v.dtype === 'f16' ? roundF16(fresh) : fresh, pos0 * rowElems);
      const got = await readKv(h, buffer, capacity * rowElems, v.dtype);
      expectClose(`kv append ${v.dtype}`, `row=${rowElems} cap=${capacity} pos0=${pos0} T=${T} ${name}`, got, want, 0);
    }
  }

  it('odd row sizes, pos0 > 0, decode and chunk', async () => {
    for (const v of deviceVariants(h)) {
      await check(v, 3 * 8, 50, 11, 5); // 120 values: not a multiple of the workgroup
      await check(v, 2 * 64, 50, 49, 1); // decode into the last row
      await check(v, 1 * 128, 64, 0, 37);
      await check(v, 3 * 96, 40, 3, 37);
    }
  });

  it('2-D dispatch above 65,535 workgroups', async () => {
    // 16,400 × 256 values = 65,600 workgroups of 64.
    await check(deviceVariants(h)[0], 256, 16_410, 7, 16_400);
  });
});
