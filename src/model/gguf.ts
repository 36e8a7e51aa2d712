/**
 * The GGUF container (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): a streaming header
 * parser with strict bounds checks. Pure: no DOM, no GPU. Assumes a little-endian file, as every GGUF in
 * the wild is.
 *
 * Layout: magic "GGUF", u32 version, tensor count, kv count, the kv pairs, the tensor infos, padding to
 * `general.alignment` (default 32), then the data section. Versions 2 and 3 use u64 for every count,
 * length and dimension; version 1 uses u32 for them (offsets are u64 in all versions).
 *
 * Why not `@huggingface/gguf`: it pulls the file itself, by HTTP range requests on a URL (or a local path
 * in Node), into a growing buffer. Our bytes come from a ReadableStream through the IndexedDB chunk cache
 * or from a File and must be read once, in order, while they download. It also throws plain `Error`s
 * with no advice. So this parser reads from our own sequential reader (ByteStreamReader) and raises
 * ModelFormatError / UnsupportedDtypeError; tests still use the npm package as a cross-check.
 */
import { ModelFormatError, UnsupportedDtypeError } from '../errors';
import { BLOCK, GGML_TYPE_IDS, isBlockType, type GgmlTypeName } from '../gpu/block-types';

/** Sequential exact reads; ByteStreamReader implements it. `read` must throw ModelFormatError at end of input. */
export interface GgufByteReader {
  read(n: number): Promise<Uint8Array>;
  readonly position: number;
}

/** Metadata value types, indexed by their GGUF type id. */
export const GGUF_VALUE_TYPES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'] as const;
export type GgufValueType = (typeof GGUF_VALUE_TYPES)[number];
/** A parsed metadata value. 64-bit integers are numbers when safe, bigints otherwise. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** Bytes per element of the fixed-size value types. */
export const GGUF_SCALAR_BYTES: Partial<Record<GgufValueType, number>> = {
  u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, u64: 8, i64: 8, f64: 8,
};

/** Block size (elements) and bytes of the ggml types the engine does not read, so their tensors can be sized (ggml.h). */
const OTHER_GGML_TYPES: Record<number, [name: string, blockElems: number, blockBytes: number]> = {
  9: ['q8_1', 32, 36], 10: ['q2_k', 256, 84], 11: ['q3_k', 256, 110], 15: ['q8_k', 256, 292],
  16: ['iq2_xxs', 256, 66], 17: ['iq2_xs', 256, 74], 18: ['iq3_xxs', 256, 98], 19: ['iq1_s', 256, 50],
  20: ['iq4_nl', 32, 18], 21: ['iq3_s', 256, 110], 22: ['iq2_s', 256, 82], 23: ['iq4_xs', 256, 136],
  24: ['i8', 1, 1], 25: ['i16', 1, 2], 26: ['i32', 1, 4], 27: ['i64', 1, 8], 28: ['f64', 1, 8], 29: ['iq1_m', 256, 56],
  34: ['tq1_0', 256, 54], 35: ['tq2_0', 256, 66], 39: ['mxfp4', 32, 17],
};

/** Block size (elements) and bytes per block of every ggml type: the engine's own from src/gpu/block-types.ts. */
export const GGML_TYPES: Record<number, { name: string; blockElems: number; blockBytes: number }> = {
  ...Object.fromEntries(
    Object.entries(GGML_TYPE_IDS).map(([name, id]) => {
      const t = name as GgmlTypeName;
      const shape = isBlockType(t) ? BLOCK[t] : { elems: 1, bytes: t === 'f32' ? 4 : 2 }; // f32, f16, bf16
      return [id, { name, blockElems: shape.elems, blockBytes: shape.bytes }];
    }),
  ),
  ...Object.fromEntries(Object.entries(OTHER_GGML_TYPES).map(([id, [name, blockElems, blockBytes]]) => [id, { name, blockElems, blockBytes }])),
};

/** One tensor's info. `dims` is ggml order: dims[0] is the contiguous (column) dimension. */
export interface GgufTensorInfo {
  name: string;
  dims: number[];
  typeId: number;
  /** The engine's name for the type, or null when the engine cannot read it (e.g. q2_k, iq4_xs). */
  typeName: GgmlTypeName | null;
  /** ggml's name for the type, known or not to the engine (for messages). */
  ggmlType: string;
  /** Byte offset relative to the data section start. */
  offset: number;
  byteSize: number;
  elements: number;
}

/** A parsed, validated GGUF header. */
export interface GgufHeader {
  version: 1 | 2 | 3;
  metadata: Map<string, GgufValue>;
  /** Each key's type: a scalar type, or `array:<element type>`. */
  metadataTypes: Map<string, string>;
  /** In file order. */
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute file offset of the data section. The reader stops at the end of the tensor infos, before the padding. */
  dataStart: number;
}

/** The default data alignment when `general.alignment` is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** Headers above this size are rejected: real ones (a 256k-token vocabulary included) are a few tens of MB. */
export const GGUF_MAX_HEADER_BYTES = 256 * 1024 * 1024;
/** GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4;
const MAX_NESTING = 4;

const ENGINE_TYPE_NAMES = new Map<number, GgmlTypeName>(
  Object.entries(GGML_TYPE_IDS).map(([name, id]) => [id, name as GgmlTypeName]),
);
const MAGIC = [0x47, 0x47, 0x55, 0x46]; // "GGUF"
const UTF8 = new TextDecoder('utf-8', { fatal: true });
const REDOWNLOAD = 'The file is corrupt or not a GGUF file; delete it from the cache and download it again, or pick another file.';

/** Parses one header, tracking the byte budget that every length is checked against before it is read. */
class HeaderParser {
  private readonly limit: number;
  private sizeBytes = 8;
  private version: 1 | 2 | 3 = 3;

  constructor(
    private readonly reader: GgufByteReader,
    private readonly fileSize: number | null,
    private readonly file: string,
  ) {
    this.limit = Math.min(GGUF_MAX_HEADER_BYTES, fileSize ?? Infinity);
  }

  private fail(what: string, advice = REDOWNLOAD): ModelFormatError {
    return new ModelFormatError(`${this.file}: ${what} (at byte ${this.reader.position}). ${advice}`);
  }

  /** Bytes the header may still use: up to the end of the file, or the header size cap. */
  private get budget(): number {
    return this.limit - this.reader.position;
  }

  private describeLimit(): string {
    return this.fileSize !== null && this.fileSize <= GGUF_MAX_HEADER_BYTES
      ? `the file has only ${Math.max(0, this.budget)} bytes left`
      : `a GGUF header may use at most ${GGUF_MAX_HEADER_BYTES} bytes`;
  }

  /** Throw unless `count` items of at least `minBytes` each fit in what is left of the header. */
  private checkFits(count: number, minBytes: number, what: string): void {
    if (count * minBytes > this.budget) {
      throw this.fail(`${what} is ${count}, which needs at least ${count * minBytes} bytes, but ${this.describeLimit()}`);
    }
  }

  private async bytes(n: number): Promise<DataView> {
    const b = await this.reader.read(n);
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  private async u32(): Promise<number> {
    return (await this.bytes(4)).getUint32(0, true);
  }

  /** A u64 that must be a safe integer (a count, length, dimension or offset). */
  private async u64(what: string): Promise<number> {
    const v = await this.bytes(8);
    const lo = v.getUint32(0, true);
    const hi = v.getUint32(4, true);
    if (hi > 0x1fffff) throw this.fail(`${what} is ${(BigInt(hi) << 32n) | BigInt(lo)}, beyond any real file`);
    return hi * 2 ** 32 + lo;
  }

  /** A count or length: u32 in version 1, u64 after. */
  private size(what: string): Promise<number> {
    return this.version === 1 ? this.u32() : this.u64(what);
  }

  private async string(what: string): Promise<string> {
    const n = await this.size(`the length of ${what}`);
    if (n > this.budget) throw this.fail(`${what} claims ${n} bytes, but ${this.describeLimit()}`);
    const b = await this.reader.read(n);
    try {
      return UTF8.decode(b);
    } catch {
      throw this.fail(`${what} is not valid UTF-8`);
    }
  }

  private valueType(id: number, what: string): GgufValueType {
    const t = GGUF_VALUE_TYPES[id];
    if (t === undefined) throw this.fail(`${what} has value type ${id}, which GGUF does not define (0 to 12)`);
    return t;
  }

  private async value(type: GgufValueType, what: string, depth: number): Promise<{ value: GgufValue; type: string }> {
    if (type === 'string') return { value: await this.string(what), type };
    if (type !== 'array') {
      const v = await this.bytes(GGUF_SCALAR_BYTES[type]!);
      return { value: scalarAt(v, 0, type), type };
    }
    if (depth >= MAX_NESTING) throw this.fail(`${what} nests arrays more than ${MAX_NESTING} deep`);
    const itemType = this.valueType(await this.u32(), `an element of ${what}`);
    const n = await this.size(`the length of ${what}`);
    const elemBytes = GGUF_SCALAR_BYTES[itemType];
    // A string costs at least its length field; an array at least its type and length fields.
    this.checkFits(n, elemBytes ?? (itemType === 'string' ? this.sizeBytes : 4 + this.sizeBytes), `the element count of ${what}`);
    const out: GgufValue[] = new Array(n);
    if (elemBytes !== undefined) {
      const v = await this.bytes(n * elemBytes);
      for (let i = 0; i < n; i++) out[i] = scalarAt(v, i * elemBytes, itemType);
    } else {
      for (let i = 0; i < n; i++) out[i] = (await this.value(itemType, `element ${i} of ${what}`, depth + 1)).value;
    }
    return { value: out, type: `array:${itemType}` };
  }

  async parse(): Promise<GgufHeader> {
    const head = await this.bytes(8);
    for (let i = 0; i < 4; i++) {
      if (head.getUint8(i) !== MAGIC[i]) {
        const got = Array.from({ length: 4 }, (_, j) => head.getUint8(j).toString(16).padStart(2, '0')).join(' ');
        throw this.fail(`the file starts with bytes ${got}, not the GGUF magic "GGUF" (47 47 55 46)`,
          'It is not a GGUF file: pick a .gguf file, or re-download it if it should be one.');
      }
    }
    const version = head.getUint32(4, true);
    if (version !== 1 && version !== 2 && version !== 3) {
      const swapped = ((version & 0xff) << 24) | ((version & 0xff00) << 8) | ((version >>> 8) & 0xff00) | (version >>> 24);
      const hint = swapped >= 1 && swapped <= 3 ? ' It looks like a big-endian GGUF, which browsers cannot use.' : '';
      throw this.fail(`GGUF version ${version} is not supported (supported: 1, 2, 3).${hint}`,
        'Pick a file converted by a current llama.cpp (GGUF v3).');
    }
    this.version = version;
    this.sizeBytes = version === 1 ? 4 : 8;
    const tensorCount = await this.size('the tensor count');
    const kvCount = await this.size('the metadata key count');
    // The smallest kv: empty key, type, one-byte value; the smallest tensor info: empty name, n_dims, type, offset.
    this.checkFits(kvCount, this.sizeBytes + 4 + 1, 'the metadata key count');
    this.checkFits(tensorCount, this.sizeBytes + 4 + 4 + 8, 'the tensor count');

    const metadata = new Map<string, GgufValue>();
    const metadataTypes = new Map<string, string>();
    for (let i = 0; i < kvCount; i++) {
      const key = await this.string(`metadata key ${i}`);
      if (metadata.has(key)) throw this.fail(`metadata key "${key}" appears twice`);
      const type = this.valueType(await this.u32(), `metadata "${key}"`);
      const { value, type: typeName } = await this.value(type, `metadata "${key}"`, 0);
      metadata.set(key, value);
      metadataTypes.set(key, typeName);
    }
    const alignment = this.alignment(metadata.get('general.alignment'));

    const tensors: GgufTensorInfo[] = [];
    const names = new Set<string>();
    for (let i = 0; i < tensorCount; i++) tensors.push(await this.tensorInfo(i, names, alignment));
    const headerEnd = this.reader.position;
    const dataStart = Math.ceil(headerEnd / alignment) * alignment;
    this.checkLayout(tensors, dataStart);
    return { version, metadata, metadataTypes, tensors, alignment, dataStart };
  }

  private alignment(v: GgufValue | undefined): number {
    if (v === undefined) return GGUF_DEFAULT_ALIGNMENT;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || (v & (v - 1)) !== 0 || v > 1 << 30) {
      throw this.fail(`general.alignment is ${String(v)}; it must be a power of two`);
    }
    return v;
  }

  private async tensorInfo(i: number, names: Set<string>, alignment: number): Promise<GgufTensorInfo> {
    const name = await this.string(`the name of tensor ${i}`);
    if (names.has(name)) throw this.fail(`tensor "${name}" is listed twice`);
    names.add(name);
    const nDims = await this.u32();
    if (nDims > GGUF_MAX_DIMS) throw this.fail(`tensor "${name}" has ${nDims} dimensions; ggml allows at most ${GGUF_MAX_DIMS}`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(this.version === 1 ? await this.u32() : await this.u64(`dimension ${d} of tensor "${name}"`));
    const typeId = await this.u32();
    const offset = await this.u64(`the data offset of tensor "${name}"`);
    const type = GGML_TYPES[typeId];
    if (type === undefined) {
      throw new UnsupportedDtypeError(
        `${this.file}: tensor "${name}" has ggml type id ${typeId}, which is not a ggml type this loader knows ` +
          `(the engine reads ${Object.keys(GGML_TYPE_IDS).join(', ')}). Pick a GGUF quantized with one of those types.`,
      );
    }
    const elements = dims.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(elements)) throw this.fail(`tensor "${name}" has dims [${dims.join(', ')}], too many elements`);
    if (dims.length > 0 && dims[0] % type.blockElems !== 0) {
      throw this.fail(`tensor "${name}" of type ${type.name} has ${dims[0]} columns, not a multiple of its block size ${type.blockElems}`);
    }
    if (offset % alignment !== 0) throw this.fail(`tensor "${name}" starts at data offset ${offset}, not a multiple of the alignment ${alignment}`);
    const byteSize = (elements / type.blockElems) * type.blockBytes;
    return { name, dims, typeId, typeName: ENGINE_TYPE_NAMES.get(typeId) ?? null, ggmlType: type.name, offset, byteSize, elements };
  }

  /** Tensors must not overlap, and (when the file size is known) must lie inside the file. */
  private checkLayout(tensors: GgufTensorInfo[], dataStart: number): void {
    const sorted = tensors.filter((t) => t.byteSize > 0).sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < sorted.length; i++) {
      const [prev, cur] = [sorted[i - 1], sorted[i]];
      if (cur.offset < prev.offset + prev.byteSize) {
        throw this.fail(`tensors "${prev.name}" [${prev.offset}, ${prev.offset + prev.byteSize}) and "${cur.name}" ` +
          `[${cur.offset}, ${cur.offset + cur.byteSize}) overlap`);
      }
    }
    const last = sorted[sorted.length - 1];
    if (this.fileSize !== null && last && dataStart + last.offset + last.byteSize > this.fileSize) {
      throw new ModelFormatError(
        `${this.file}: tensor "${last.name}" ends at byte ${dataStart + last.offset + last.byteSize}, but the file has only ` +
          `${this.fileSize} bytes: the file is truncated or its header is corrupt. Delete it from the cache and download it again.`,
      );
    }
  }
}

function scalarAt(v: DataView, at: number, type: GgufValueType): GgufValue {
  switch (type) {
    case 'u8': return v.getUint8(at);
    case 'i8': return v.getInt8(at);
    case 'u16': return v.getUint16(at, true);
    case 'i16': return v.getInt16(at, true);
    case 'u32': return v.getUint32(at, true);
    case 'i32': return v.getInt32(at, true);
    case 'f32': return v.getFloat32(at, true);
    case 'f64': return v.getFloat64(at, true);
    case 'bool': return v.getUint8(at) !== 0;
    case 'u64': return safeOrBig(v.getBigUint64(at, true));
    case 'i64': return safeOrBig(v.getBigInt64(at, true));
    default: throw new Error(`not a scalar type: ${type}`);
  }
}

function safeOrBig(b: bigint): number | bigint {
  return b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(b) : b;
}

/**
 * Read and validate a GGUF header from `reader`, which must be at the start of the file. `fileSize`, when
 * known, bounds every length and lets truncation be caught before any tensor is read. On return the reader
 * is at the end of the tensor infos; the data section starts at `dataStart` (skip the padding first).
 */
export async function readGgufHeader(reader: GgufByteReader, fileSize: number | null, file: string): Promise<GgufHeader> {
  return new HeaderParser(reader, fileSize, file).parse();
}

/** Throw UnsupportedDtypeError naming every tensor whose type the engine cannot read. */
export function assertSupportedTensorTypes(header: GgufHeader, file: string): void {
  const bad = header.tensors.filter((t) => t.typeName === null);
  if (bad.length === 0) return;
  const listed = bad.slice(0, 5).map((t) => `"${t.name}" (${t.ggmlType}, type id ${t.typeId})`).join(', ');
  throw new UnsupportedDtypeError(
    `${file}: ${bad.length} tensor(s) use ggml types this engine cannot read: ${listed}${bad.length > 5 ? ', …' : ''}. ` +
      `Supported: ${Object.keys(GGML_TYPE_IDS).join(', ')}. Pick a file quantized with those (e.g. Q4_K_M, Q8_0, F16).`,
  );
}
