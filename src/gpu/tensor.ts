/**
 * Weight tensors on the GPU. A matrix larger than one storage binding is split by rows into parts;
 * kernels dispatch once per part.
 */

import type { InputRounding, WeightDtype } from './block-types';

/** Rows [rowStart, rowStart + rows) of a matrix, in one buffer. */
export interface WeightPart {
  buffer: GPUBuffer;
  rowStart: number;
  rows: number;
}

/**
 * A weight of shape [rows, cols] (a vector is [1, n]), in storage dtype `dtype`: f32/f16 elements, or
 * ggml blocks (rowBytes(dtype, cols) bytes per row, buffers padded to whole words).
 */
export interface WeightMatrix {
  name: string;
  rows: number;
  cols: number;
  dtype: WeightDtype;
  parts: WeightPart[];
  /**
   * Round the input of a product with this weight first, as llama.cpp does for the weight's type in the file
   * (GGUF files loaded with llama.cpp numerics; src/kernels/linear.ts). Absent: products take f32 inputs.
   */
  inputRounding?: InputRounding;
}

/** Split `rows` into ranges of at most `maxRowsPerPart` rows. */
export function splitRows(rows: number, cols: number, bytesPerElement: number, maxBindingBytes: number): Array<[number, number]> {
  const maxRows = Math.max(1, Math.floor(maxBindingBytes / (cols * bytesPerElement)));
  const ranges: Array<[number, number]> = [];
  for (let start = 0; start < rows; start += maxRows) ranges.push([start, Math.min(maxRows, rows - start)]);
  return ranges;
}

/** The single buffer of a weight that is never split (norm weights, biases). */
export function vectorBuffer(w: WeightMatrix): GPUBuffer {
  if (w.parts.length !== 1) throw new Error(`${w.name} is split; expected a single buffer`);
  return w.parts[0].buffer;
}
