/** Shared setup for the per-kernel GPU-vs-CPU-reference tests: variants, weights, f16 rounding, error logging. */
import { expect } from 'vitest';
import type { ShaderVariant } from '../../src/gpu/shader-assembly';
import type { WeightMatrix } from '../../src/gpu/tensor';
import { encodeF16Bits, f16BitsToF32 } from '../../src/model/safetensors';
import { relativeMaxError, type KernelHarness } from '../helpers/gpu';

/** f32 storage: max abs error relative to the output scale. */
export const F32_TOL = 1e-4;
/** f16 storage, against a reference computed on the same f16-rounded inputs (only f32 arithmetic order differs). */
export const F16_TIGHT_TOL = 1e-4;
/** f16 storage, against the unrounded f32 reference (f16 keeps ~11 bits). */
export const F16_LOOSE_TOL = 1e-2;

/** A labelled shader variant. */
export interface NamedVariant {
  label: string;
  variant: ShaderVariant;
  dtype: 'f32' | 'f16';
}

/** The variants this device can run: f32 and (with shader-f16) f16 storage, each with/without subgroups if asked. */
export function deviceVariants(h: KernelHarness, withSubgroups = false): NamedVariant[] {
  const out: NamedVariant[] = [];
  const dtypes: Array<'f32' | 'f16'> = h.gpu.caps.f16 ? ['f32', 'f16'] : ['f32'];
  const sgs = withSubgroups && h.gpu.caps.subgroups ? [false, true] : [false];
  for (const dtype of dtypes) {
    for (const subgroups of sgs) {
      out.push({ label: `${dtype}${subgroups ? '+sg' : ''}`, dtype, variant: { weight: dtype, kv: dtype, subgroups } });
    }
  }
  return out;
}

/** Values as they read back after f16 storage (round to nearest even). */
export function roundF16(a: Float32Array): Float32Array {
  return Float32Array.from(encodeF16Bits(a), f16BitsToF32);
}

/** `data` [rows, cols] as a WeightMatrix in `dtype`, split by rows into parts of the given row counts. */
export function uploadWeight(
  h: KernelHarness,
  name: string,
  data: Float32Array,
  rows: number,
  cols: number,
  dtype: 'f32' | 'f16',
  partRows: number[] = [rows],
): WeightMatrix {
  if (partRows.reduce((a, b) => a + b, 0) !== rows) throw new Error(`parts ${partRows} do not sum to ${rows}`);
  const stored = dtype === 'f16' ? encodeF16Bits(data) : data;
  let rowStart = 0;
  const parts = partRows.map((n) => {
    const part = { buffer: h.upload(stored.slice(rowStart * cols, (rowStart + n) * cols)), rowStart, rows: n };
    rowStart += n;
    return part;
  });
  return { name, rows, cols, dtype, parts };
}

/** An f32 output buffer of n values pre-filled with NaN, so anything a kernel fails to write fails the comparison. */
export function nanBuffer(h: KernelHarness, n: number): GPUBuffer {
  return h.upload(new Float32Array(n).fill(Number.NaN));
}

/** Compare, log the measured error (grep the output for `[kernel-error]`) and assert it is within `tol`. */
export function expectClose(kernel: string, shape: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): number {
  expect(got.length).toBe(want.length);
  const err = relativeMaxError(got, want);
  console.log(`[kernel-error] ${kernel.padEnd(24)} | ${shape.padEnd(44)} | ${err.toExponential(2)} (tol ${tol})`);
  expect(err, `${kernel} ${shape}`).toBeLessThanOrEqual(tol);
  return err;
}
