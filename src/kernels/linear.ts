/**
 * y[T, N] = x[T, K] · Wᵀ (+ b): a fused GEMV for decode steps (shaders/gemv.wgsl), a tiled matmul for
 * prefill chunks (shaders/matmul.wgsl). The decode GEMV also takes the RMSNorm before it, several weights
 * side by side (q, k, v), the SwiGLU after gate/up and the residual add; prefill runs those as their own
 * kernels around the tiled matmul. Weights in ggml block formats are read in place and dequantized in the
 * kernels (weightVariant); their bias and norm gain stay in the model's float type.
 * A weight with `inputRounding` (GGUF files with llama.cpp numerics) has its input rounded in place first, as
 * llama.cpp's CPU back end does (src/kernels/input-rounding.ts); the norm is then its own kernel before it.
 * Products over Q8_1-rounded input (q4_1 / q5_1 weights) then add llama.cpp's min term (min-term.ts), so their
 * SwiGLU is not fused into the GEMV.
 */
import { isQuant, type WeightDtype } from '../gpu/block-types';
import { f32 } from '../gpu/uniforms';
import type { Recorder } from '../gpu/plan';
import { vectorBuffer, type WeightMatrix } from '../gpu/tensor';
import { roundInputInPlace } from './input-rounding';
import { addMinTerm } from './min-term';
import { rmsNorm } from './norm';
import { checkBlockRows, swiglu, weightVariant } from './pointwise';

/** Where the output goes and what is added to it. */
export interface LinearEpilogue {
  /** y += x·Wᵀ instead of y = x·Wᵀ (a residual connection). */
  residual?: boolean;
  /** First output column written (default 0): several weights can fill one row side by side. */
  colStart?: number;
  /** Columns of a row of y (default: W's rows). */
  nTotal?: number;
}

/** An input row set that is RMS-normalized before the product: y = (rmsnorm(x) ⊙ gain)·Wᵀ. */
export interface NormedInput {
  x: GPUBuffer /* f32 [*, K] */;
  gain: WeightMatrix /* [1, K] */;
  eps: number;
  /** f32 [T, K]: the normed rows, for steps that run the norm as its own kernel (prefill). */
  scratch: GPUBuffer;
  /** First row of x read (default 0): the final norm reads only the last row of a chunk. */
  row?: number;
}

/** Decode GEMV schedule for this adapter: one row per invocation on CPU adapters, cooperative elsewhere. */
function gemvEntry(rec: Recorder): 'gemv_rows' | 'gemv_coop' {
  return rec.caps.softwareAdapter ? 'gemv_rows' : 'gemv_coop';
}

/** Rows per workgroup of gemv_coop. */
const COOP_ROWS = 4;
/** Rows (one per invocation) per workgroup of gemv_rows. */
const ROWS_PER_WORKGROUP = 64;

/** Decode steps take the GEMV; weights fused into one dispatch must share a storage dtype (one shader variant). */
function usesGemv(tokens: number, weights: WeightMatrix[]): boolean {
  return tokens <= 2 && weights.every((w) => w.cols % 4 === 0 && w.dtype === weights[0].dtype);
}

interface GemvCall {
  x: GPUBuffer;
  xRow: number;
  norm?: { gain: WeightMatrix; eps: number };
  /** One entry per segment: [buffer, rows]. */
  segments: Array<[GPUBuffer, number]>;
  /** Storage dtype of every segment. */
  dtype: WeightDtype;
  k: number;
  swiglu: boolean;
  bias?: WeightMatrix;
  y: GPUBuffer;
  colStart: number;
  nTotal: number;
  residual: boolean;
  label: string;
}

function recordGemv(rec: Recorder, tokens: number, c: GemvCall): void {
  const entry = gemvEntry(rec);
  const overrides: Record<string, number | boolean> = {
    HAS_BIAS: Boolean(c.bias), HAS_NORM: Boolean(c.norm), RESIDUAL: c.residual, SWIGLU: c.swiglu, ROWS: COOP_ROWS, ROWS_WG: ROWS_PER_WORKGROUP,
  };
  // Block decoders are compiled only for the weight buffers read (each copy costs CPU adapters seconds).
  if (isQuant(c.dtype)) overrides.SEGMENTS = c.segments.length;
  const pipeline = rec.pipelines.get({ shader: 'gemv', entry, variant: weightVariant(rec.variant, c.dtype), overrides });
  const rows = c.segments.map(([, n]) => n);
  const outRows = c.swiglu ? rows[0] : rows.reduce((a, b) => a + b, 0);
  const params = rec.uniforms.struct({
    tokens, k: c.k, rows0: rows[0], rows1: rows[1] ?? 0, rows2: rows[2] ?? 0, col_start: c.colStart, n_total: c.nTotal, x_row: c.xRow, eps: f32(c.norm?.eps ?? 0),
  });
  const groups = Math.ceil(outRows / (entry === 'gemv_rows' ? ROWS_PER_WORKGROUP : COOP_ROWS));
  const max = rec.caps.maxComputeWorkgroupsPerDimension;
  const w0 = c.segments[0][0];
  rec.dispatch(
    c.label,
    pipeline,
    {
      0: params,
      1: c.x,
      2: w0,
      3: c.bias ? vectorBuffer(c.bias) : w0,
      4: c.y,
      5: c.segments[1]?.[0] ?? w0,
      6: c.segments[2]?.[0] ?? w0,
      7: c.norm ? vectorBuffer(c.norm.gain) : w0,
    },
    [Math.min(groups, max), tokens, Math.ceil(groups / max)],
  );
}

/**
 * Record y = x·Wᵀ (+ bias) for `tokens` rows of x; `epilogue` adds it to y or places it among other columns.
 * With `w.inputRounding`, x is rounded in place first: x is then consumed (its other readers, if any, must take
 * the same rounding). Arguments as product().
 */
export function linear(...args: Parameters<typeof product>): void {
  const [rec, x, w, , tokens] = args;
  if (w.inputRounding) roundInputInPlace(rec, x, w.inputRounding, tokens * w.cols);
  product(...args);
}

/** linear() on an input already as the weight wants it. */
function product(
  rec: Recorder,
  x: GPUBuffer /* f32 [T, K] */,
  w: WeightMatrix /* [N, K] */,
  y: GPUBuffer /* f32 [T, nTotal] */,
  tokens: number,
  bias?: WeightMatrix /* [1, nTotal] */,
  epilogue: LinearEpilogue = {},
): void {
  const colStart = epilogue.colStart ?? 0;
  const nTotal = epilogue.nTotal ?? w.rows;
  const residual = epilogue.residual ?? false;
  checkBlockRows(w);
  if (usesGemv(tokens, [w])) {
    for (const part of w.parts) {
      recordGemv(rec, tokens, {
        x, xRow: 0, segments: [[part.buffer, part.rows]], dtype: w.dtype, k: w.cols, swiglu: false, bias, y,
        colStart: colStart + part.rowStart, nTotal, residual, label: `linear ${w.name}`,
      });
    }
    addMinTerm(rec, w, y, tokens, colStart, nTotal);
    return;
  }
  const pipeline = rec.pipelines.get({ shader: 'matmul', entry: 'tiled', variant: weightVariant(rec.variant, w.dtype), overrides: { HAS_BIAS: Boolean(bias), RESIDUAL: residual } });
  for (const part of w.parts) {
    const params = rec.uniforms.struct({ tokens, k: w.cols, rows: part.rows, row_start: colStart + part.rowStart, n_total: nTotal });
    rec.dispatch(
      `linear ${w.name}`,
      pipeline,
      { 0: params, 1: x, 2: part.buffer, 3: bias ? vectorBuffer(bias) : part.buffer, 4: y },
      [Math.ceil(part.rows / 32), Math.ceil(tokens / 32), 1],
    );
  }
  addMinTerm(rec, w, y, tokens, colStart, nTotal);
}

/** A decode step fuses the norm and every weight into one GEMV when each weight is one buffer. */
function fusable(tokens: number, weights: WeightMatrix[]): boolean {
  return usesGemv(tokens, weights) && (weights.length === 1 || weights.every((w) => w.parts.length === 1));
}

/** Where a GEMV reads its input: rows of x from xRow, RMS-normalized in the GEMV when `norm` is given. */
interface GemvSource {
  x: GPUBuffer;
  xRow: number;
  norm?: { gain: WeightMatrix; eps: number };
}

/**
 * y[:, colStart + Σ previous rows + r] = src · W_sᵀ (+ bias) for weights side by side: one GEMV over all of them
 * in decode steps where each is one buffer (one per part for a single split weight), else one product each
 * (then src must be plain rows from 0).
 */
function projectSideBySide(rec: Recorder, src: GemvSource, weights: WeightMatrix[], y: GPUBuffer, tokens: number, bias: WeightMatrix | undefined, colStart: number, nTotal: number): void {
  if (fusable(tokens, weights)) {
    const dispatches = weights.length === 1
      ? weights[0].parts.map((part) => ({ segments: [[part.buffer, part.rows]] as Array<[GPUBuffer, number]>, colStart: colStart + part.rowStart }))
      : [{ segments: weights.map((w) => [w.parts[0].buffer, w.rows] as [GPUBuffer, number]), colStart }];
    const label = `linear ${weights.map((w) => w.name).join('+')}`;
    for (const d of dispatches) {
      recordGemv(rec, tokens, { ...src, segments: d.segments, dtype: weights[0].dtype, k: weights[0].cols, swiglu: false, bias, y, colStart: d.colStart, nTotal, residual: false, label });
    }
    let c = colStart;
    for (const w of weights) {
      addMinTerm(rec, w, y, tokens, c, nTotal);
      c += w.rows;
    }
    return;
  }
  if (src.norm || src.xRow !== 0) throw new Error('projectSideBySide: unfused products read plain rows from 0');
  let c = colStart;
  for (const w of weights) {
    product(rec, src.x, w, y, tokens, bias, { colStart: c, nTotal });
    c += w.rows;
  }
}

/** Consecutive runs of weights that share `key` (the weights' order, and so y's columns, kept). */
function runsBy<K>(weights: WeightMatrix[], key: (w: WeightMatrix) => K): WeightMatrix[][] {
  const runs: WeightMatrix[][] = [];
  for (const w of weights) {
    const last = runs[runs.length - 1];
    if (last && key(last[0]) === key(w)) last.push(w);
    else runs.push([w]);
  }
  return runs;
}

/** Runs that take the same input rounding (one run when none rounds): one norm and rounding each. */
const roundingRuns = (weights: WeightMatrix[]) => runsBy(weights, (w) => w.inputRounding);
/** Runs of one dtype (a GEMV pipeline reads one block type). */
const dtypeRuns = (weights: WeightMatrix[]) => runsBy(weights, (w) => w.dtype);

const rowsOf = (weights: WeightMatrix[]) => weights.reduce((n, w) => n + w.rows, 0);

/**
 * y[:, Σ previous rows + r] = (rmsnorm(x) ⊙ gain) · W_sᵀ (+ bias) for weights W_0..W_{n-1} (at most 3) side
 * by side in y's rows: q, k and v of one layer, or the LM head alone. One dispatch in decode steps per run of
 * weights of one dtype (q|k in Q4_K and v in Q6_K of a Q4_K_M layer: two, each normalizing in its prologue);
 * with input rounding, per run of weights that share it: the norm into the scratch rows, the rounding, one
 * GEMV per dtype.
 */
export function normedProjection(
  rec: Recorder,
  input: NormedInput,
  weights: WeightMatrix[],
  y: GPUBuffer /* f32 [T, Σ rows] */,
  tokens: number,
  bias?: WeightMatrix /* [1, Σ rows] */,
): void {
  const nTotal = rowsOf(weights);
  const xRow = input.row ?? 0;
  if (weights.length > 3) throw new RangeError('normedProjection: at most 3 weights');
  weights.forEach(checkBlockRows);
  const byDtype = dtypeRuns(weights);
  if (!weights.some((w) => w.inputRounding) && byDtype.every((run) => fusable(tokens, run))) {
    let colStart = 0;
    for (const run of byDtype) {
      projectSideBySide(rec, { x: input.x, xRow, norm: input }, run, y, tokens, bias, colStart, nTotal);
      colStart += rowsOf(run);
    }
    return;
  }
  let colStart = 0;
  for (const run of roundingRuns(weights)) {
    const rounding = run[0].inputRounding;
    rmsNorm(rec, input.x, input.gain, input.scratch, tokens, input.eps, xRow);
    if (rounding) roundInputInPlace(rec, input.scratch, rounding, tokens * run[0].cols);
    for (const same of dtypeRuns(run)) {
      projectSideBySide(rec, { x: input.scratch, xRow: 0 }, same, y, tokens, bias, colStart, nTotal);
      colStart += rowsOf(same);
    }
  }
}

/**
 * out = silu(h·Wgᵀ) ⊙ (h·Wuᵀ) with h = rmsnorm(x) ⊙ gain: the gated MLP's first half. One dispatch in decode
 * steps (three with input rounding: norm, rounding, GEMV); prefill writes the up projection to `upScratch`
 * (f32 [T, F]) and applies SwiGLU after.
 */
export function gatedProjection(
  rec: Recorder,
  input: NormedInput,
  gate: WeightMatrix /* [F, K] */,
  up: WeightMatrix /* [F, K] */,
  out: GPUBuffer /* f32 [T, F] */,
  tokens: number,
  upScratch: GPUBuffer /* f32 [T, F] */,
): void {
  checkBlockRows(gate);
  checkBlockRows(up);
  const row = input.row ?? 0;
  const same = gate.inputRounding === up.inputRounding;
  if (same && gate.inputRounding !== 'q8_1' && fusable(tokens, [gate, up])) {
    let src: GemvSource = { x: input.x, xRow: row, norm: input };
    if (gate.inputRounding) {
      rmsNorm(rec, input.x, input.gain, input.scratch, tokens, input.eps, row);
      roundInputInPlace(rec, input.scratch, gate.inputRounding, tokens * gate.cols);
      src = { x: input.scratch, xRow: 0 };
    }
    const segments: Array<[GPUBuffer, number]> = [[gate.parts[0].buffer, gate.rows], [up.parts[0].buffer, up.rows]];
    recordGemv(rec, tokens, { ...src, segments, dtype: gate.dtype, k: gate.cols, swiglu: true, y: out, colStart: 0, nTotal: gate.rows, residual: false, label: `linear ${gate.name}+${up.name} swiglu` });
    return;
  }
  rmsNorm(rec, input.x, input.gain, input.scratch, tokens, input.eps, row);
  linear(rec, input.scratch, gate, out, tokens);
  // The scratch rows now hold gate's rounding: up takes them as they are, or normed afresh for its own.
  if (gate.inputRounding && !same) rmsNorm(rec, input.x, input.gain, input.scratch, tokens, input.eps, row);
  (same ? product : linear)(rec, input.scratch, up, upScratch, tokens);
  swiglu(rec, out, upScratch, tokens * gate.rows);
}
