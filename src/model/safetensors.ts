/**
 * The safetensors format: header parsing with strict validation, dtype conversion (F32/F16/BF16 to
 * f32 or f16 bits) and a small writer used by tests and benchmarks to synthesize models.
 * Pure: no DOM, no GPU. Assumes a little-endian host, as every browser and Node platform is.
 *
 * File layout: u64 LE header length N, then N bytes of JSON, then the data section. Each tensor's
 * `data_offsets` are [begin, end) byte offsets relative to the start of the data section.
 */
import { ModelFormatError, UnsupportedDtypeError } from '../errors';

/** Element types this loader converts. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

/** One tensor's header entry. `begin`/`end` are byte offsets relative to the data section start. */
export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** A parsed, validated header. `dataStart` is the absolute file offset of the data section. */
export interface SafetensorsHeader {
  tensors: TensorInfo[];
  dataStart: number;
  metadata: Record<string, string>;
}

/** Bytes per element of each supported dtype. */
export const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** Headers above this size are rejected: real ones are well under 10 MB even for huge models. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const SUPPORTED = Object.keys(DTYPE_BYTES).join(', ');

/** Read the u64 little-endian header length from a file's first 8 bytes. */
export function readHeaderLength(first8: Uint8Array): number {
  if (first8.length < 8) {
    throw new ModelFormatError(
      `safetensors file is only ${first8.length} bytes long; it is truncated or not a safetensors file. Re-download it.`,
    );
  }
  const view = new DataView(first8.buffer, first8.byteOffset, 8);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  // 2^53 - 1 is 0x1fffff in the high word; anything above is not a safe integer.
  const n = hi > 0x1fffff ? Number.POSITIVE_INFINITY : hi * 2 ** 32 + lo;
  if (n > MAX_HEADER_BYTES) {
    const shown = Number.isFinite(n) ? `${n} bytes` : 'more than 2^53 bytes';
    throw new ModelFormatError(
      `safetensors header length is ${shown} (limit ${MAX_HEADER_BYTES}); this is not a safetensors file or it is corrupt.`,
    );
  }
  if (n < 2) throw new ModelFormatError(`safetensors header length is ${n} bytes; the file is corrupt.`);
  return n;
}

function isSupportedDtype(d: string): d is SafetensorsDtype {
  return Object.prototype.hasOwnProperty.call(DTYPE_BYTES, d);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Parse and validate a header's JSON bytes. `fileSize` (when known) lets truncation be caught up front. */
export function parseSafetensorsHeader(headerJson: Uint8Array, fileSize: number | null, fileName: string): SafetensorsHeader {
  const bad = (what: string) => new ModelFormatError(`${fileName}: ${what}`);
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerJson));
  } catch (err) {
    throw bad(`the safetensors header is not valid JSON (${(err as Error).message}). The file is corrupt; re-download it.`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw bad('the safetensors header is not a JSON object. The file is corrupt; re-download it.');
  }
  const dataStart = 8 + headerJson.length;
  const metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw bad('"__metadata__" is not an object.');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') throw bad(`"__metadata__.${k}" is not a string.`);
        metadata[k] = v;
      }
      continue;
    }
    tensors.push(parseEntry(name, entry, fileName));
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let prev: TensorInfo | null = null; // the non-empty tensor reaching furthest so far
  for (const cur of tensors) {
    if (cur.end === cur.begin) continue; // empty tensors occupy no bytes
    if (prev && cur.begin < prev.end) {
      throw bad(
        `tensors "${prev.name}" [${prev.begin}, ${prev.end}) and "${cur.name}" [${cur.begin}, ${cur.end}) overlap. ` +
          'The header is corrupt; re-download the file.',
      );
    }
    prev = cur;
  }
  if (fileSize !== null) {
    const last = tensors.reduce<TensorInfo | null>((m, t) => (m === null || t.end > m.end ? t : m), null);
    const needed = dataStart + (last?.end ?? 0);
    if (needed > fileSize) {
      const who = last ? `tensor "${last.name}" ends at byte ${needed}` : `the header ends at byte ${dataStart}`;
      throw bad(`the file is truncated: ${who} but the file has only ${fileSize} bytes. The download is incomplete; re-download it.`);
    }
  }
  return { tensors, dataStart, metadata };
}

function parseEntry(name: string, entry: unknown, fileName: string): TensorInfo {
  const bad = (what: string) => new ModelFormatError(`${fileName}: tensor "${name}" ${what}`);
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw bad('has a header entry that is not an object.');
  const e = entry as Record<string, unknown>;
  const dtype = e['dtype'];
  if (typeof dtype !== 'string') throw bad('has no "dtype".');
  if (!isSupportedDtype(dtype)) {
    throw new UnsupportedDtypeError(
      `${fileName}: tensor "${name}" has dtype ${dtype}, which this loader cannot convert (supported: ${SUPPORTED}). ` +
        'Use an unquantized F32/F16/BF16 export of the model.',
    );
  }
  const shape = e['shape'];
  if (!Array.isArray(shape) || !shape.every(isNonNegInt)) throw bad(`has shape ${JSON.stringify(shape)}, not a list of non-negative integers.`);
  const offs = e['data_offsets'];
  if (!Array.isArray(offs) || offs.length !== 2 || !isNonNegInt(offs[0]) || !isNonNegInt(offs[1]) || offs[0] > offs[1]) {
    throw bad(`has data_offsets ${JSON.stringify(offs)}; expected [begin, end] integers with begin <= end.`);
  }
  const [begin, end] = offs as [number, number];
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  const want = elements * DTYPE_BYTES[dtype];
  if (!Number.isSafeInteger(want) || end - begin !== want) {
    throw bad(
      `spans ${end - begin} bytes but its shape [${shape.join(', ')}] of ${dtype} needs ${want}: the header lies about sizes. ` +
        'The file is corrupt; re-download it.',
    );
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);
let f16Table: Float32Array | null = null;

/** The f32 value of IEEE binary16 bits. */
export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/** The f32 value of bfloat16 bits (the top half of an f32). */
export function bf16BitsToF32(bits: number): number {
  scratchU32[0] = (bits & 0xffff) << 16;
  return scratchF32[0];
}

/** Options for f32 to f16 encoding. */
export interface F16EncodeOptions {
  /**
   * Map finite values beyond the f16 range to ±65504 instead of ±inf (default true). IEEE says overflow
   * gives inf, but a BF16 or F32 weight a little over 65504 would then poison every dot product it meets.
   * Infinities and NaN pass through unchanged either way.
   */
  clampToF16Range?: boolean;
}

/** One f32 bit pattern to f16 bits, rounding to nearest even, with IEEE subnormals, inf and NaN. */
function f32BitsToF16Bits(f: number, clamp: boolean): number {
  const sign = (f >>> 16) & 0x8000;
  const exp = (f >>> 23) & 0xff;
  const mant = f & 0x7fffff;
  if (exp === 0xff) return mant ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 127 + 15;
  if (e >= 31) return sign | (clamp ? 0x7bff : 0x7c00);
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: rounds to (signed) zero
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = m & ((1 << shift) - 1);
    let r = m >>> shift;
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r; // r may reach 0x400, which is exactly the smallest normal
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) r++; // a carry may roll into the exponent, up to inf
  if (r >= 0x7c00) return sign | (clamp ? 0x7bff : 0x7c00);
  return sign | r;
}

/** Encode f32 values as IEEE binary16 bits (round to nearest even). See {@link F16EncodeOptions} for overflow. */
export function encodeF16Bits(src: Float32Array, options: F16EncodeOptions = {}): Uint16Array {
  const clamp = options.clampToF16Range ?? true;
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i], clamp);
  return out;
}

/** Encode f32 values as bfloat16 bits (round to nearest even; NaN stays NaN). */
export function encodeBF16Bits(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) {
    const f = bits[i];
    if ((f & 0x7f800000) === 0x7f800000 && f & 0x7fffff) {
      out[i] = (f >>> 16) | 0x40;
      continue;
    }
    out[i] = (f + 0x7fff + ((f >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** A Uint16Array over `bytes`, copying when the offset is not 2-byte aligned. */
function u16View(bytes: Uint8Array): Uint16Array {
  if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
  return new Uint16Array(bytes.slice().buffer);
}

function checkByteLength(dtype: SafetensorsDtype, bytes: Uint8Array): void {
  if (bytes.length % DTYPE_BYTES[dtype] !== 0) {
    throw new ModelFormatError(`${bytes.length} bytes is not a whole number of ${dtype} elements.`);
  }
}

/**
 * Decode raw tensor bytes to f32. For F32 input at a 4-byte aligned offset the result is a view that
 * aliases `bytes`; otherwise it is a fresh array.
 */
export function decodeToF32(dtype: SafetensorsDtype, bytes: Uint8Array): Float32Array {
  checkByteLength(dtype, bytes);
  switch (dtype) {
    case 'F32':
      if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
      return new Float32Array(bytes.slice().buffer);
    case 'F16': {
      const table = f16DecodeTable();
      const src = u16View(bytes);
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
      return out;
    }
    case 'BF16': {
      const src = u16View(bytes);
      const out = new Uint32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
      return new Float32Array(out.buffer);
    }
    default:
      throw new UnsupportedDtypeError(`dtype ${String(dtype)} is not supported (supported: ${SUPPORTED}).`);
  }
}

function buildF16Table(): Float32Array {
  const t = new Float32Array(65536);
  for (let i = 0; i < 65536; i++) t[i] = f16BitsToF32(i);
  return t;
}

/** f16BitsToF32 of every 16-bit pattern, built once (for per-element decoding in loops). */
export function f16DecodeTable(): Float32Array {
  return (f16Table ??= buildF16Table());
}

/**
 * Convert raw tensor bytes to what the GPU uploader stores: f32 values or f16 bits.
 * Fast paths: F32 to f32 is a view when aligned; F16 to f16 is a plain copy; BF16 to f16 goes through f32.
 */
export function convertTensor(dtype: SafetensorsDtype, bytes: Uint8Array, target: 'f32' | 'f16'): Float32Array | Uint16Array {
  if (target === 'f32') return decodeToF32(dtype, bytes);
  checkByteLength(dtype, bytes);
  if (dtype === 'F16') return new Uint16Array(bytes.slice().buffer);
  return encodeF16Bits(decodeToF32(dtype, bytes));
}

/** A tensor to write: values in f32, stored as `dtype`. */
export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

/** Raw little-endian bytes of `data` stored as `dtype`. */
export function encodeTensorBytes(dtype: SafetensorsDtype, data: Float32Array): Uint8Array {
  const typed = dtype === 'F32' ? data : dtype === 'F16' ? encodeF16Bits(data) : encodeBF16Bits(data);
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}

/** Serialize tensors to a safetensors file, in the given order, header space-padded to 8 bytes like the reference writer. */
export function encodeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header['__metadata__'] = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const elements = t.shape.reduce((a, b) => a * b, 1);
    if (elements !== t.data.length) {
      throw new ModelFormatError(`tensor "${t.name}": shape [${t.shape.join(', ')}] needs ${elements} values, got ${t.data.length}.`);
    }
    if (t.name in header) throw new ModelFormatError(`tensor "${t.name}" is listed twice.`);
    const bytes = encodeTensorBytes(t.dtype, t.data);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    blobs.push(bytes);
    offset += bytes.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const b of blobs) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}
