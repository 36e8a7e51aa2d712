/** safetensors: writer/parser round trips, f16/bf16 bit exactness, every validation error, and the real stories260k file. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelFormatError, UnsupportedDtypeError } from '../src/errors';
import { parseModelConfig } from '../src/model/config';
import {
  bf16BitsToF32,
  convertTensor,
  decodeToF32,
  encodeBF16Bits,
  encodeF16Bits,
  encodeSafetensors,
  f16BitsToF32,
  parseSafetensorsHeader,
  readHeaderLength,
  type SafetensorsDtype,
} from '../src/model/safetensors';
import { requiredTensorShapes } from '../src/reference/forward';
import { TOKENIZER_SOURCE } from './helpers/random-model';

const STORIES = TOKENIZER_SOURCE; // the stories260k folder

/** Parse a whole in-memory file the way the loaders do. */
function parseFile(bytes: Uint8Array, fileSize: number | null = bytes.length, name = 'test.safetensors') {
  const n = readHeaderLength(bytes.subarray(0, 8));
  return parseSafetensorsHeader(bytes.subarray(8, 8 + n), fileSize, name);
}

function headerBytes(obj: unknown): Uint8Array {
  return new TextEncoder().encode(typeof obj === 'string' ? obj : JSON.stringify(obj));
}

const f16 = (x: number, clampToF16Range = true) => encodeF16Bits(new Float32Array([x]), { clampToF16Range })[0];

describe('writer -> parser round trip', () => {
  const values = new Float32Array([0, 1, -2, 0.5, 3.25, -1024, 0.0078125, 96]); // exact in all three dtypes
  for (const dtype of ['F32', 'F16', 'BF16'] as SafetensorsDtype[]) {
    it(`${dtype}: names, shapes, offsets, metadata and values survive`, () => {
      const file = encodeSafetensors(
        [
          { name: 'b.weight', dtype, shape: [2, 4], data: values },
          { name: 'a.bias', dtype, shape: [3], data: values.subarray(0, 3) },
          { name: 'empty', dtype, shape: [0, 5], data: new Float32Array(0) },
        ],
        { format: 'pt' },
      );
      const n = readHeaderLength(file.subarray(0, 8));
      expect((8 + n) % 8).toBe(0);
      const h = parseFile(file);
      expect(h.metadata).toEqual({ format: 'pt' });
      expect(h.dataStart).toBe(8 + n);
      expect(h.tensors.map((t) => t.name)).toEqual(['b.weight', 'a.bias', 'empty']);
      const size = dtype === 'F32' ? 4 : 2;
      expect(h.tensors[0]).toMatchObject({ dtype, shape: [2, 4], begin: 0, end: 8 * size });
      expect(h.tensors[1]).toMatchObject({ begin: 8 * size, end: 11 * size });
      const b = h.tensors[0];
      expect(Array.from(decodeToF32(dtype, file.subarray(h.dataStart + b.begin, h.dataStart + b.end)))).toEqual(Array.from(values));
      expect(file.length).toBe(h.dataStart + 11 * size);
    });
  }

  it('random values come back as their nearest f16 / bf16', () => {
    const data = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i * 12.9898) * 40);
    for (const dtype of ['F16', 'BF16'] as const) {
      const file = encodeSafetensors([{ name: 'x', dtype, shape: [1000], data }]);
      const h = parseFile(file);
      const back = decodeToF32(dtype, file.subarray(h.dataStart));
      const relTol = dtype === 'F16' ? 2 ** -11 : 2 ** -8;
      for (let i = 0; i < data.length; i++) expect(Math.abs(back[i] - data[i])).toBeLessThanOrEqual(Math.abs(data[i]) * relTol + 1e-7);
    }
  });

  it('tensors come back sorted by offset even when the header lists them otherwise', () => {
    const header = headerBytes({
      z: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      a: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
      m: { dtype: 'F16', shape: [2], data_offsets: [12, 16] },
    });
    const h = parseSafetensorsHeader(header, null, 'f');
    expect(h.tensors.map((t) => t.name)).toEqual(['z', 'a', 'm']);
    const reordered = headerBytes({
      a: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
      z: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
    });
    expect(parseSafetensorsHeader(reordered, null, 'f').tensors.map((t) => t.name)).toEqual(['z', 'a']);
  });
});

describe('f16 and bf16 bits', () => {
  it('encodes known bit patterns exactly', () => {
    expect(f16(1)).toBe(0x3c00);
    expect(f16(-2)).toBe(0xc000);
    expect(f16(0)).toBe(0x0000);
    expect(f16(-0)).toBe(0x8000);
    expect(f16(65504)).toBe(0x7bff);
    expect(f16(2 ** -14)).toBe(0x0400); // smallest normal
    expect(f16(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f16(-(2 ** -24))).toBe(0x8001);
    expect(f16(1023 * 2 ** -24)).toBe(0x03ff); // largest subnormal
    expect(f16(0.333333333)).toBe(0x3555);
    expect(f16(Infinity)).toBe(0x7c00);
    expect(f16(-Infinity)).toBe(0xfc00);
    const nan = f16(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x03ff).not.toBe(0);
  });

  it('rounds ties to even, in normals and subnormals', () => {
    expect(f16(1 + 2 ** -11)).toBe(0x3c00); // halfway 0x3c00/0x3c01 -> even 0x3c00
    expect(f16(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway 0x3c01/0x3c02 -> even 0x3c02
    expect(f16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just above halfway rounds up
    expect(f16(2 ** -25)).toBe(0x0000); // half the smallest subnormal -> even 0
    expect(f16(2 ** -25 * 1.0001)).toBe(0x0001);
    expect(f16(3 * 2 ** -25)).toBe(0x0002); // halfway 1/2 -> even 2
    expect(f16(2 ** -26)).toBe(0x0000);
    expect(f16(2047 * 2 ** -25)).toBe(0x0400); // rounds up out of the subnormals into the smallest normal
  });

  it('overflows to inf per IEEE, or clamps to ±65504 by default', () => {
    expect(f16(65519)).toBe(0x7bff); // below the halfway point to inf
    expect(f16(65520, false)).toBe(0x7c00); // tie rounds to even: inf
    expect(f16(65520)).toBe(0x7bff);
    expect(f16(1e6, false)).toBe(0x7c00);
    expect(f16(1e6)).toBe(0x7bff);
    expect(f16(-1e6)).toBe(0xfbff);
    expect(f16(3e38, false)).toBe(0x7c00);
    expect(f16(Infinity)).toBe(0x7c00); // true infinities are not clamped
  });

  it('decodes bits and round-trips every one of the 65536 f16 patterns', () => {
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0x8000)).toBe(-0);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    const all = new Uint16Array(65536).map((_, i) => i);
    const asF32 = decodeToF32('F16', new Uint8Array(all.buffer));
    const back = encodeF16Bits(asF32, { clampToF16Range: false });
    const wrong: number[] = [];
    for (let i = 0; i < 65536; i++) {
      const ok = Number.isNaN(asF32[i]) ? Number.isNaN(f16BitsToF32(back[i])) : back[i] === i;
      if (!ok) wrong.push(i);
    }
    expect(wrong).toEqual([]);
  });

  it('bf16: decodes, and encodes with round-to-nearest-even', () => {
    expect(bf16BitsToF32(0x3f80)).toBe(1);
    expect(bf16BitsToF32(0xc040)).toBe(-3);
    expect(bf16BitsToF32(0x7f80)).toBe(Infinity);
    expect(bf16BitsToF32(0x7fc0)).toBeNaN();
    const enc = (x: number) => encodeBF16Bits(new Float32Array([x]))[0];
    expect(enc(1)).toBe(0x3f80);
    expect(enc(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(enc(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie -> even
    expect(enc(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(Number.isNaN(bf16BitsToF32(enc(NaN)))).toBe(true);
  });
});

describe('convertTensor', () => {
  const values = new Float32Array([1.5, -2, 70000, 2 ** -30]);
  const raw = (dtype: SafetensorsDtype) => {
    const f = encodeSafetensors([{ name: 'x', dtype, shape: [4], data: values }]);
    return f.slice(f.length - (dtype === 'F32' ? 16 : 8));
  };

  it('F32 -> f32 is a view when aligned and a copy when not', () => {
    const aligned = raw('F32');
    const view = convertTensor('F32', aligned, 'f32') as Float32Array;
    expect(view.buffer).toBe(aligned.buffer);
    expect(Array.from(view)).toEqual(Array.from(values));
    const shifted = new Uint8Array(17);
    shifted.set(aligned, 1);
    const copy = convertTensor('F32', shifted.subarray(1), 'f32') as Float32Array;
    expect(copy.buffer).not.toBe(shifted.buffer);
    expect(Array.from(copy)).toEqual(Array.from(values));
  });

  it('F16 -> f16 copies bits, also from odd offsets', () => {
    const bytes = raw('F16');
    const shifted = new Uint8Array(9);
    shifted.set(bytes, 1);
    const out = convertTensor('F16', shifted.subarray(1), 'f16');
    expect(out).toBeInstanceOf(Uint16Array);
    expect(Array.from(out)).toEqual(Array.from(encodeF16Bits(values)));
    expect(Array.from(decodeToF32('F16', shifted.subarray(1)))).toEqual(Array.from(convertTensor('F16', bytes, 'f32')));
  });

  it('BF16 and F32 -> f16 go through f32 and clamp out-of-range weights', () => {
    const fromBf16 = convertTensor('BF16', raw('BF16'), 'f16') as Uint16Array;
    expect(f16BitsToF32(fromBf16[0])).toBe(1.5);
    expect(f16BitsToF32(fromBf16[2])).toBe(65504); // 70000 is past the f16 range
    const fromF32 = convertTensor('F32', raw('F32'), 'f16') as Uint16Array;
    expect(Array.from(fromF32)).toEqual([0x3e00, 0xc000, 0x7bff, 0x0000]);
  });

  it('rejects byte counts that are not whole elements', () => {
    expect(() => convertTensor('F32', new Uint8Array(6), 'f32')).toThrow(ModelFormatError);
  });
});

describe('validation errors', () => {
  const ok = { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } };

  it('absurd or short header lengths', () => {
    const len = (lo: number, hi: number) => {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setUint32(0, lo, true);
      new DataView(b.buffer).setUint32(4, hi, true);
      return b;
    };
    expect(readHeaderLength(len(4096, 0))).toBe(4096);
    expect(() => readHeaderLength(len(200 * 1024 * 1024, 0))).toThrow(/not a safetensors file/);
    expect(() => readHeaderLength(len(0, 1))).toThrow(ModelFormatError);
    expect(() => readHeaderLength(len(0xffffffff, 0xffffffff))).toThrow(/2\^53/);
    expect(() => readHeaderLength(new Uint8Array(5))).toThrow(/truncated/);
    expect(() => readHeaderLength(new TextEncoder().encode('<!DOCTYPE html>'))).toThrow(ModelFormatError);
  });

  it('bad JSON, and JSON that is not an object', () => {
    expect(() => parseSafetensorsHeader(headerBytes('{"w": {'), null, 'model.safetensors')).toThrow(
      /model\.safetensors: the safetensors header is not valid JSON/,
    );
    expect(() => parseSafetensorsHeader(new Uint8Array([0x7b, 0xff, 0x7d]), null, 'f')).toThrow(ModelFormatError);
    expect(() => parseSafetensorsHeader(headerBytes([1, 2]), null, 'f')).toThrow(/not a JSON object/);
    expect(() => parseSafetensorsHeader(headerBytes({ w: 5 }), null, 'f')).toThrow(/"w".*not an object/);
    expect(() => parseSafetensorsHeader(headerBytes({ __metadata__: { a: 1 } }), null, 'f')).toThrow(/__metadata__\.a/);
  });

  it.each(['I8', 'U8', 'F64', 'I64', 'F8_E4M3', 'BOOL'])('unsupported dtype %s names the tensor and the supported ones', (dtype) => {
    const h = headerBytes({ 'model.layers.0.mlp.up_proj.weight': { dtype, shape: [4], data_offsets: [0, 4] } });
    let err: unknown;
    try {
      parseSafetensorsHeader(h, null, 'shard.safetensors');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsupportedDtypeError);
    expect((err as Error).name).toBe('UnsupportedDtypeError');
    expect((err as Error).message).toMatch(/shard\.safetensors.*model\.layers\.0\.mlp\.up_proj\.weight.*F32, F16, BF16/);
  });

  it.each([
    [[16, 0]],
    [[0]],
    [[0, 16, 32]],
    [['0', 16]],
    [[-4, 12]],
    [[0.5, 16.5]],
    [null],
  ])('data_offsets %j are rejected', (offsets) => {
    const h = headerBytes({ w: { dtype: 'F32', shape: [2, 2], data_offsets: offsets } });
    expect(() => parseSafetensorsHeader(h, null, 'f')).toThrow(/tensor "w" has data_offsets/);
  });

  it('bad shapes are rejected', () => {
    for (const shape of [[-1, 4], [2.5], 'big', null]) {
      const h = headerBytes({ w: { dtype: 'F32', shape, data_offsets: [0, 16] } });
      expect(() => parseSafetensorsHeader(h, null, 'f')).toThrow(/tensor "w" has shape/);
    }
  });

  it('a header lying about sizes is caught', () => {
    const h = headerBytes({ 'lm_head.weight': { dtype: 'F16', shape: [2, 3], data_offsets: [0, 24] } });
    expect(() => parseSafetensorsHeader(h, null, 'f')).toThrow(/"lm_head\.weight".*spans 24 bytes.*needs 12.*lies about sizes/);
  });

  it('overlapping tensors are caught, even past an empty tensor', () => {
    const h = headerBytes({ ...ok, v: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } });
    expect(() => parseSafetensorsHeader(h, null, 'f')).toThrow(/"w".*"v".*overlap/);
    const h2 = headerBytes({
      ...ok,
      e: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
      v: { dtype: 'F32', shape: [2], data_offsets: [12, 20] },
    });
    expect(() => parseSafetensorsHeader(h2, null, 'f')).toThrow(/overlap/);
    const adjacent = headerBytes({ ...ok, v: { dtype: 'F32', shape: [2], data_offsets: [16, 24] } });
    expect(parseSafetensorsHeader(adjacent, null, 'f').tensors).toHaveLength(2);
  });

  it('a truncated file is reported as incomplete, naming the tensor', () => {
    const file = encodeSafetensors([
      { name: 'a', dtype: 'F32', shape: [4], data: new Float32Array(4) },
      { name: 'model.norm.weight', dtype: 'F32', shape: [4], data: new Float32Array(4) },
    ]);
    expect(() => parseFile(file.subarray(0, file.length - 1), file.length - 1, 'model.safetensors')).toThrow(
      /model\.safetensors: the file is truncated: tensor "model\.norm\.weight".*re-download/,
    );
    expect(parseFile(file, file.length).tensors).toHaveLength(2);
    expect(parseFile(file, null).tensors).toHaveLength(2); // size unknown: no check
    const headerOnly = headerBytes({});
    expect(() => parseSafetensorsHeader(headerOnly, 4, 'f')).toThrow(/truncated/);
  });

  it('the writer refuses data that does not fit the shape', () => {
    expect(() => encodeSafetensors([{ name: 'x', dtype: 'F32', shape: [3], data: new Float32Array(4) }])).toThrow(/needs 3 values/);
  });
});

describe('real stories260k model.safetensors', () => {
  it('has exactly the tensors its config implies, with matching shapes', () => {
    const bytes = new Uint8Array(readFileSync(path.join(STORIES, 'model.safetensors')));
    const config = parseModelConfig(JSON.parse(readFileSync(path.join(STORIES, 'config.json'), 'utf8')));
    const h = parseFile(bytes, bytes.length, 'model.safetensors');
    const want = requiredTensorShapes(config);
    expect(h.tensors.length).toBe(want.size);
    expect(want.size).toBe(1 + 5 * 9 + 1 + 1);
    for (const t of h.tensors) {
      expect(t.dtype).toBe('F32');
      expect(t.shape, t.name).toEqual(want.get(t.name));
    }
    const byName = new Map(h.tensors.map((t) => [t.name, t]));
    expect(byName.get('model.embed_tokens.weight')!.shape).toEqual([512, 64]);
    expect(byName.get('model.layers.4.self_attn.k_proj.weight')!.shape).toEqual([32, 64]);
    expect(byName.get('model.layers.0.mlp.gate_proj.weight')!.shape).toEqual([172, 64]);
    const last = h.tensors[h.tensors.length - 1];
    expect(h.dataStart + last.end).toBe(bytes.length);
    const norm = byName.get('model.norm.weight')!;
    const values = decodeToF32('F32', bytes.subarray(h.dataStart + norm.begin, h.dataStart + norm.end));
    expect(values.every(Number.isFinite)).toBe(true);
  });
});
