// embed, addInPlace, swiglu and argmax (shaders/embed, elementwise, argmax.wgsl) against the CPU reference.
import { describe, expect, it } from 'vitest';
import { addInPlace, argmax, embed, NON_FINITE_TOKEN, swiglu } from '../../src/kernels/pointwise';
import { add, argmax as refArgmax, embed as refEmbed, swiglu as refSwiglu } from '../../src/reference/kernels';
import { useKernelHarness, randomArray } from '../helpers/gpu';
import { deviceVariants, expectClose, F16_LOOSE_TOL, F32_TOL, nanBuffer, roundF16, uploadWeight } from './fixtures';

// Both schedules: argmax has a barrier-free one-invocation scan for CPU adapters and a tree for GPUs.
for (const schedule of ['software', 'hardware'] as const) describe(`pointwise kernels vs reference (${schedule} schedule)`, () => {
  const h = useKernelHarness({ schedule });
  let seed = 400;
  const f32Variant = () => deviceVariants(h)[0].variant;

  it('embed gathers rows from whole and row-split tables', async () => {
    // vocab, dim, part row counts, ids (every part boundary, repeats, first and last row), parts in reverse order.
    // Reversing the parts means a part writing a row it does not own is not hidden by the owner's later dispatch.
    const cases: Array<[number, number, number[] | undefined, number[], boolean]> = [
      [300, 72, undefined, [0, 299, 5, 5, 17, 150], false],
      [300, 131, [100, 1, 199], [99, 100, 101, 0, 299, 100, 42, 250, 1], false],
      [300, 131, [100, 1, 199], [99, 100, 101, 0, 299, 100, 42, 250, 1], true],
      [64, 8, [7, 57], Array.from({ length: 37 }, (_, i) => (i * 13) % 64), true],
      [1000, 5, [333, 333, 334], [999, 665, 666, 332, 333, 0], false],
      [1000, 5, [333, 333, 334], [999, 665, 666, 332, 333, 0], true],
    ];
    for (const v of deviceVariants(h)) {
      for (const [V, D, parts, ids, reversed] of cases) {
        const table = randomArray(V * D, seed++, 3);
        const weight = uploadWeight(h, 'embed', table, V, D, v.dtype, parts);
        if (reversed) weight.parts.reverse();
        const idBuf = h.upload(Uint32Array.from(ids));
        const out = nanBuffer(h, ids.length * D);
        await h.run(v.variant, (rec) => embed(rec, idBuf, weight, out, ids.length), 0, ids.length);
        const got = await h.readF32(out, ids.length * D);
        const shape = `V=${V} D=${D} T=${ids.length}${parts ? ` parts=${parts.join('/')}${reversed ? ' reversed' : ''}` : ''}`;
        // A gather is exact: f16 storage must read back exactly the f16-rounded table.
        expectClose(`embed ${v.label}`, shape, got, refEmbed(v.dtype === 'f16' ? roundF16(table) : table, ids, D), 0);
        if (v.dtype === 'f16') expectClose(`embed ${v.label} vs f32`, shape, got, refEmbed(table, ids, D), F16_LOOSE_TOL);
      }
    }
  });

  // 65,535 × 64 + 100 elements needs a 2-D dispatch (flatDispatch) on every adapter.
  const sizes = [5, 64, 131 * 37, 65535 * 64 + 100];

  it('addInPlace', async () => {
    for (const n of sizes) {
      const x = randomArray(n, seed++, 4);
      const y = randomArray(n, seed++, 4);
      const xBuf = h.upload(x);
      const yBuf = h.upload(y);
      await h.run(f32Variant(), (rec) => addInPlace(rec, xBuf, yBuf, n));
      expectClose('add', `n=${n}`, await h.readF32(xBuf, n), add(x, y), F32_TOL);
      // y is read-only for the kernel (toEqual is too slow for millions of elements).
      const yAfter = await h.readF32(yBuf, n);
      expect(yAfter.every((value, i) => value === y[i])).toBe(true);
    }
  });

  it('addInPlace leaves elements past n untouched', async () => {
    const x = randomArray(200, seed++);
    const xBuf = h.upload(x);
    const yBuf = h.upload(randomArray(200, seed++));
    await h.run(f32Variant(), (rec) => addInPlace(rec, xBuf, yBuf, 131));
    expect((await h.readF32(xBuf, 200)).subarray(131)).toEqual(x.subarray(131));
  });

  it('swiglu, including saturated gates', async () => {
    for (const n of sizes) {
      // Gates up to ±40 reach the regions where exp(-g) overflows or silu(g) == g.
      const gate = randomArray(n, seed++, 40);
      const up = randomArray(n, seed++, 2);
      const gBuf = h.upload(gate);
      const uBuf = h.upload(up);
      await h.run(f32Variant(), (rec) => swiglu(rec, gBuf, uBuf, n));
      expectClose('swiglu', `n=${n}`, await h.readF32(gBuf, n), refSwiglu(gate, up), F32_TOL);
    }
    const gate = randomArray(4096, seed++, 1);
    const up = randomArray(4096, seed++, 1);
    const gBuf = h.upload(gate);
    const uBuf = h.upload(up);
    await h.run(f32Variant(), (rec) => swiglu(rec, gBuf, uBuf, 4096));
    expectClose('swiglu', 'n=4096 small gates', await h.readF32(gBuf, 4096), refSwiglu(gate, up), F32_TOL);
  });

  async function gpuArgmax(x: Float32Array, n: number, row: number): Promise<number> {
    const xBuf = h.upload(x);
    const out = h.upload(Uint32Array.of(0xdeadbeef));
    await h.run(f32Variant(), (rec) => argmax(rec, xBuf, n, row, out));
    return (await h.readU32(out, 1))[0];
  }

  it('argmax over one row of a [rows, n] matrix', async () => {
    // rows, n, row read
    const cases: Array<[number, number, number]> = [[1, 1, 0], [1, 5, 0], [3, 131, 2], [5, 257, 1], [2, 49999, 1], [1, 151936, 0]];
    for (const [rows, n, row] of cases) {
      const x = randomArray(rows * n, seed++, 10);
      const want = refArgmax(x.subarray(row * n, (row + 1) * n));
      const got = await gpuArgmax(x, n, row);
      console.log(`[kernel-error] ${'argmax'.padEnd(24)} | rows=${rows} n=${n} row=${row} | got ${got} want ${want}`);
      expect(got, `rows=${rows} n=${n} row=${row}`).toBe(want);
    }
  });

  it('argmax picks the first index on ties and handles all-negative rows', async () => {
    const n = 1000;
    for (const [a, b] of [[3, 700], [700, 701], [0, 999], [255, 256], [511, 767]]) {
      const x = randomArray(n, seed++, 1);
      x[a] = 5;
      x[b] = 5;
      expect(await gpuArgmax(x, n, 0), `tie at ${a}, ${b}`).toBe(refArgmax(x));
      expect(refArgmax(x)).toBe(a);
    }
    const neg = randomArray(300, seed++, 1).map((v) => v - 1e30);
    expect(await gpuArgmax(neg, 300, 0)).toBe(refArgmax(neg));
  });

  it('fault: non-finite logits (NaN, +Inf, -Inf anywhere in the row) make argmax report NON_FINITE_TOKEN', async () => {
    const n = 1000;
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      for (const at of [0, 1, 255, 256, 999]) {
        const x = randomArray(2 * n, seed++, 1);
        x[n + at] = bad;
        expect(await gpuArgmax(x, n, 1), `${bad} at ${at}`).toBe(NON_FINITE_TOKEN);
        // The other row is untouched and finite.
        expect(await gpuArgmax(x, n, 0)).toBe(refArgmax(x.subarray(0, n)));
      }
    }
  });
});
