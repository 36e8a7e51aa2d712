/**
 * Pure weight-cache logic: CRC-32, chunk spans, missing runs (what a resumed download asks for), stored
 * byte counts and the "loadable offline" rule.
 */
import { describe, expect, it } from 'vitest';
import {
  chunkSpan,
  isModelComplete,
  manifestBytes,
  missingRun,
  newFileEntry,
  newManifest,
  requiredWeightFiles,
  shardsOfIndex,
  storedFileBytes,
} from '../../src/storage/chunks';
import { crc32 } from '../../src/storage/crc32';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('crc32', () => {
  it('matches the standard check values', () => {
    expect(crc32(bytes('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(bytes('The quick brown fox jumps over the lazy dog'))).toBe(0x414fa339);
  });

  it('continues over split input and notices a flipped bit', () => {
    const data = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 131 + 7) & 255);
    const whole = crc32(data);
    expect(crc32(data.subarray(3_333), crc32(data.subarray(0, 3_333)))).toBe(whole);
    const damaged = data.slice();
    damaged[5_000] ^= 1;
    expect(crc32(damaged)).not.toBe(whole);
  });
});

describe('chunk arithmetic', () => {
  it('splits a file into equal chunks with a short last one', () => {
    const e = newFileEntry(10, 4);
    expect(e.checksums).toEqual([null, null, null]);
    expect([0, 1, 2].map((i) => chunkSpan(e, 4, i))).toEqual([
      { start: 0, end: 4 },
      { start: 4, end: 8 },
      { start: 8, end: 10 },
    ]);
    expect(() => chunkSpan(e, 4, 3)).toThrow(RangeError);
    expect(newFileEntry(8, 4).checksums.length).toBe(2);
    expect(newFileEntry(0, 4).checksums.length).toBe(0);
    expect(() => newFileEntry(-1, 4)).toThrow(RangeError);
  });

  it('finds the runs of missing chunks a resumed download fetches', () => {
    const e = newFileEntry(40, 4); // 10 chunks
    expect(missingRun(e)).toEqual({ first: 0, end: 10 });
    for (const i of [0, 1, 2, 6]) e.checksums[i] = 1;
    expect(missingRun(e)).toEqual({ first: 3, end: 6 });
    expect(missingRun(e, 6)).toEqual({ first: 7, end: 10 });
    e.checksums.fill(1);
    expect(missingRun(e)).toBeNull();
  });

  it('counts stored bytes, including a short last chunk', () => {
    const e = newFileEntry(10, 4);
    expect(storedFileBytes(e, 4)).toBe(0);
    e.checksums[2] = 7;
    expect(storedFileBytes(e, 4)).toBe(2);
    e.checksums[0] = 7;
    expect(storedFileBytes(e, 4)).toBe(6);
  });
});

describe('manifest', () => {
  const origin = { kind: 'hub' as const, repo: 'org/m', baseUrl: 'http://h', revision: 'main' };
  const full = (size: number, chunk: number) => {
    const e = newFileEntry(size, chunk);
    e.checksums.fill(1);
    return e;
  };

  it('is complete only with config, tokenizer and every weight file stored', () => {
    const m = newManifest('k', 'org/m', origin, 4);
    expect(isModelComplete(m)).toBe(false);
    m.files['config.json'] = full(5, 4);
    m.files['tokenizer.json'] = full(9, 4);
    m.files['model.safetensors'] = full(12, 4);
    expect(requiredWeightFiles(m)).toBeNull(); // the index was never asked about
    expect(isModelComplete(m)).toBe(false);
    m.absent.push('model.safetensors.index.json');
    expect(isModelComplete(m)).toBe(true);
    m.files['model.safetensors'].checksums[1] = null;
    expect(isModelComplete(m)).toBe(false);
    expect(manifestBytes(m)).toEqual({ stored: 5 + 9 + 8, total: 5 + 9 + 12 });
  });

  it('needs every shard of a sharded model', () => {
    const m = newManifest('k', 'org/m', origin, 4);
    m.files['config.json'] = full(5, 4);
    m.files['tokenizer.json'] = full(9, 4);
    m.weightFiles = ['a.safetensors', 'b.safetensors'];
    m.files['a.safetensors'] = full(4, 4);
    expect(isModelComplete(m)).toBe(false);
    m.files['b.safetensors'] = full(4, 4);
    expect(isModelComplete(m)).toBe(true);
  });

  it('reads shard names from an index and rejects what is not one', () => {
    const index = JSON.stringify({ weight_map: { x: 'b.safetensors', y: 'a.safetensors', z: 'b.safetensors' } });
    expect(shardsOfIndex(index)).toEqual(['a.safetensors', 'b.safetensors']);
    expect(shardsOfIndex('{not json')).toBeNull();
    expect(shardsOfIndex('{"weight_map": {"x": 3}}')).toBeNull();
    expect(shardsOfIndex('{}')).toBeNull();
  });

  it('rejects a nonsensical chunk size', () => {
    expect(() => newManifest('k', 'l', origin, 0)).toThrow(RangeError);
  });
});
