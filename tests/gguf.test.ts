/**
 * GGUF: the shared stories260k files (v3 and v1) against the safetensors weights, a cross-check with
 * @huggingface/gguf, writer round trips (byte-identical rewrites included), config mapping, and every bad input.
 */
import { readFileSync } from 'node:fs';
import { gguf as hfGguf } from '@huggingface/gguf';
import { describe, expect, it } from 'vitest';
import { ModelFormatError, UnsupportedArchitectureError, UnsupportedDtypeError } from '../src/errors';
import { ByteStreamReader } from '../src/model/byte-reader';
import { parseModelConfig } from '../src/model/config';
import { assertSupportedTensorTypes, readGgufHeader, type GgufHeader, type GgufValue } from '../src/model/gguf';
import {
  applyQkInterleave, configFromGguf, GGUF_ROPE_FREQS, ggufNameOfHfTensor, hfNameOfGgufTensor, llama3RopeFreqs,
  qkRowsGgufToHf, qkRowsHfToGguf, undoQkInterleave,
} from '../src/model/gguf-config';
import { gv, llamaMetadataFromConfig, tokenizerMetadataFromHf, writeGguf, type GgufTypedValue } from '../src/model/gguf-write';
import { parseSafetensorsHeader, readHeaderLength } from '../src/model/safetensors';

const DIR = '/work/shared/models/stories260k';
const V3 = readFileSync(`${DIR}/stories260k-f32-v3.gguf`);
const V1 = readFileSync(`${DIR}/stories260k-f32-ggufv1.gguf`);
const json = (f: string) => JSON.parse(readFileSync(`${DIR}/${f}`, 'utf8'));

/** Parse through a ByteStreamReader fed in `chunk`-byte pieces, as a download arrives. */
async function parse(bytes: Uint8Array, fileSize: number | null = bytes.length, chunk = 4093): Promise<GgufHeader> {
  let at = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  });
  return readGgufHeader(new ByteStreamReader(body, 'test.gguf'), fileSize, 'test.gguf');
}

const dataOf = (bytes: Uint8Array, h: GgufHeader, name: string) => {
  const t = h.tensors.find((x) => x.name === name)!;
  return bytes.subarray(h.dataStart + t.offset, h.dataStart + t.offset + t.byteSize);
};

/** The safetensors tensors of stories260k by name. */
function safetensors(): Map<string, Uint8Array> {
  const st = readFileSync(`${DIR}/model.safetensors`);
  const n = readHeaderLength(st.subarray(0, 8));
  const h = parseSafetensorsHeader(st.subarray(8, 8 + n), st.length, 'model.safetensors');
  return new Map(h.tensors.map((t) => [t.name, st.subarray(h.dataStart + t.begin, h.dataStart + t.end)]));
}

/** A parsed header's metadata as the writer's typed list, in file order. */
function typedMetadata(h: GgufHeader): Array<[string, GgufTypedValue]> {
  return [...h.metadata].map(([k, v]) => {
    const t = h.metadataTypes.get(k)!;
    if (t.startsWith('array:')) return [k, gv.arr(t.slice(6) as 'u8', v as Array<number | string>)];
    return [k, { type: t, value: v } as GgufTypedValue];
  });
}

describe('stories260k GGUF files', () => {
  it('parse v3 and v1 with the same metadata and tensor list', async () => {
    const [h3, h1] = [await parse(V3), await parse(V1, V1.length, 7)];
    expect(h3.version).toBe(3);
    expect(h1.version).toBe(1);
    for (const h of [h3, h1]) {
      expect(h.alignment).toBe(32);
      expect(h.metadata.get('general.architecture')).toBe('llama');
      expect(h.metadata.get('llama.embedding_length')).toBe(64);
      expect(h.metadata.get('llama.attention.head_count_kv')).toBe(4);
      expect(h.metadataTypes.get('llama.attention.layer_norm_rms_epsilon')).toBe('f32');
      expect((h.metadata.get('tokenizer.ggml.tokens') as string[]).slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
      expect(h.metadataTypes.get('tokenizer.ggml.token_type')).toBe('array:i32');
      expect(h.tensors).toHaveLength(48);
      expect(h.tensors[0]).toMatchObject({ name: 'token_embd.weight', dims: [64, 512], typeId: 0, typeName: 'f32', offset: 0, byteSize: 131072 });
      expect(h.tensors.find((t) => t.name === 'blk.4.ffn_down.weight')!.dims).toEqual([172, 64]);
      expect(h.dataStart % 32).toBe(0);
      expect(h.dataStart + h.tensors.reduce((a, t) => Math.max(a, t.offset + t.byteSize), 0)).toBe(h === h3 ? V3.length : V1.length);
    }
    expect([...h1.metadata.keys()]).toEqual([...h3.metadata.keys()].filter((k) => k !== 'general.alignment'));
    expect(h1.tensors.map((t) => [t.name, t.dims, t.offset])).toEqual(h3.tensors.map((t) => [t.name, t.dims, t.offset]));
    for (const t of h3.tensors) expect(Buffer.compare(dataOf(V1, h1, t.name), dataOf(V3, h3, t.name))).toBe(0);
  });

  it('holds the safetensors weights, q/k in interleaved-pair order', async () => {
    const h = await parse(V3);
    const hf = safetensors();
    const headDim = 8;
    for (const t of h.tensors) {
      const name = hfNameOfGgufTensor(t.name)!;
      expect(name, t.name).toBeTruthy();
      let bytes = dataOf(V3, h, t.name);
      if (/attn_[qk]\.weight$/.test(t.name)) {
        expect(Buffer.compare(bytes, hf.get(name)!)).not.toBe(0);
        bytes = qkRowsGgufToHf(bytes, t.dims[0] * 4, headDim);
      }
      expect(Buffer.compare(bytes, hf.get(name)!), t.name).toBe(0);
    }
    expect(hf.size).toBe(h.tensors.length);
  });

  it('maps to the same ModelConfig as config.json', async () => {
    const want = parseModelConfig(json('config.json'));
    for (const h of [await parse(V3), await parse(V1)]) {
      expect(configFromGguf(h.metadata, h.tensors.map((t) => t.name))).toEqual(want);
    }
  });

  it('agrees with @huggingface/gguf', async () => {
    for (const [bytes, mine] of [[V3, await parse(V3)], [V1, await parse(V1)]] as const) {
      const fakeFetch = (async (_url: unknown, init?: RequestInit) => {
        const [a, b] = /bytes=(\d+)-(\d+)/.exec(new Headers(init?.headers).get('Range')!)!.slice(1).map(Number);
        const body = bytes.subarray(a, Math.min(b + 1, bytes.length));
        return new Response(body, { status: 206, headers: { 'content-range': `bytes ${a}-${a + body.length - 1}/${bytes.length}` } });
      }) as typeof fetch;
      const ref = await hfGguf('https://hub.invalid/x.gguf', { fetch: fakeFetch });
      expect(Number(ref.tensorDataOffset)).toBe(mine.dataStart);
      expect(ref.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype, Number(t.offset)])).toEqual(
        mine.tensors.map((t) => [t.name, t.dims, t.typeId, t.offset]),
      );
      for (const [k, v] of mine.metadata) expect(ref.metadata[k as keyof typeof ref.metadata], k).toEqual(v);
    }
  });
});

describe('writeGguf', () => {
  it('rewrites both shared files byte for byte', async () => {
    for (const [bytes, version] of [[V3, 3], [V1, 1]] as const) {
      const h = await parse(bytes);
      const tensors = h.tensors.map((t) => ({ name: t.name, dims: t.dims, typeId: t.typeId, data: dataOf(bytes, h, t.name) }));
      const out = writeGguf({ version, metadata: typedMetadata(h), tensors });
      expect(Buffer.compare(out, bytes)).toBe(0);
    }
  });

  it('round-trips every value type, quantized tensors and a custom alignment in v1, v2 and v3', async () => {
    const metadata: Array<[string, GgufTypedValue]> = [
      ['t.u8', { type: 'u8', value: 255 }], ['t.i8', { type: 'i8', value: -128 }], ['t.u16', { type: 'u16', value: 65535 }],
      ['t.i16', { type: 'i16', value: -32768 }], ['t.u32', gv.u32(4294967295)], ['t.i32', gv.i32(-5)], ['t.f32', gv.f32(0.5)],
      ['t.bool', gv.bool(true)], ['t.str', gv.str('héllo ▁ 🎉')], ['t.u64', gv.u64(2n ** 60n)], ['t.i64', { type: 'i64', value: -7 }],
      ['t.f64', { type: 'f64', value: Math.PI }], ['t.arr', gv.arr('string', ['a', '', 'ü'])], ['t.farr', gv.arr('f32', [1.5, -2])],
      ['t.empty', gv.arr('i32', [])],
    ];
    const q4k = new Uint8Array(2 * 144).map((_, i) => i * 7);
    const f16 = new Uint8Array(2 * 3 * 2).map((_, i) => i);
    const tensors = [{ name: 'a.q4k', dims: [256, 2], typeId: 12, data: q4k }, { name: 'b.f16', dims: [3, 2], typeId: 1, data: f16 }];
    for (const version of [1, 2, 3] as const) {
      const bytes = writeGguf({ version, alignment: 64, metadata, tensors });
      const h = await parse(bytes, bytes.length, 5);
      expect(h.version).toBe(version);
      expect(h.alignment).toBe(64);
      for (const [k, tv] of metadata) {
        expect(h.metadata.get(k), k).toEqual(tv.type === 'array' ? Array.from(tv.value) : tv.value);
        expect(h.metadataTypes.get(k)).toBe(tv.type === 'array' ? `array:${tv.itemType}` : tv.type);
      }
      expect(h.tensors.map((t) => [t.name, t.typeName, t.offset % 64])).toEqual([['a.q4k', 'q4_k', 0], ['b.f16', 'f16', 0]]);
      expect(Buffer.compare(dataOf(bytes, h, 'a.q4k'), q4k)).toBe(0);
      expect(Buffer.compare(dataOf(bytes, h, 'b.f16'), f16)).toBe(0);
    }
  });

  it('rejects what llama.cpp would reject', () => {
    const t = (over: object) => writeGguf({ metadata: [], tensors: [{ name: 'x', dims: [32], typeId: 0, data: new Uint8Array(128), ...over }] });
    expect(() => t({ data: new Uint8Array(4) })).toThrow(/need 128 bytes/);
    expect(() => t({ typeId: 8, dims: [31] })).toThrow(/block size 32/);
    expect(() => t({ name: 'n'.repeat(64) })).toThrow(/longer than 63/);
    expect(() => writeGguf({ metadata: [['k', gv.u32(1)], ['k', gv.u32(2)]], tensors: [] })).toThrow(/twice/);
    expect(() => writeGguf({ metadata: [['k', gv.u32(1.5)]], tensors: [] })).toThrow(ModelFormatError);
  });

  it('writes stories260k from the HF files with the keys llama.cpp reads, and the same tensor bytes', async () => {
    const ref = await parse(V3);
    const hf = safetensors();
    const config = json('config.json');
    const metadata = [
      ...llamaMetadataFromConfig(config, { name: 'tinyllamas-stories-260k' }),
      ...tokenizerMetadataFromHf(json('tokenizer.json'), json('tokenizer_config.json'), { vocabSize: config.vocab_size }),
    ];
    const tensors = ref.tensors.map((t) => {
      const hfName = hfNameOfGgufTensor(t.name)!;
      expect(ggufNameOfHfTensor(hfName)).toBe(t.name);
      let data = hf.get(hfName)!;
      if (/attn_[qk]\.weight$/.test(t.name)) data = qkRowsHfToGguf(data, t.dims[0] * 4, 8);
      return { name: t.name, dims: t.dims, typeId: 0, data };
    });
    const bytes = writeGguf({ metadata, tensors });
    const h = await parse(bytes);
    for (const [k, v] of ref.metadata) {
      if (k === 'llama.tensor_data_layout' || k === 'tokenizer.ggml.padding_token_id') continue; // llama2.c export extras
      if (k !== 'general.alignment') expect(h.metadataTypes.get(k), k).toBe(ref.metadataTypes.get(k));
      if (k !== 'general.alignment') expect(h.metadata.get(k), k).toEqual(v);
    }
    for (const t of ref.tensors) expect(Buffer.compare(dataOf(bytes, h, t.name), dataOf(V3, ref, t.name)), t.name).toBe(0);
    expect(h.metadata.get('tokenizer.ggml.add_bos_token')).toBe(true);
    expect(configFromGguf(h.metadata, h.tensors.map((t) => t.name))).toEqual(parseModelConfig(config));
  });
});

describe('GGUF config mapping', () => {
  const base = (arch: string, extra: Record<string, GgufValue> = {}) =>
    new Map<string, GgufValue>(Object.entries({
      'general.architecture': arch, [`${arch}.embedding_length`]: 128, [`${arch}.feed_forward_length`]: 256,
      [`${arch}.block_count`]: 2, [`${arch}.attention.head_count`]: 4, [`${arch}.attention.head_count_kv`]: 2,
      [`${arch}.context_length`]: 1024, [`${arch}.attention.layer_norm_rms_epsilon`]: 1e-6, [`${arch}.rope.freq_base`]: 1e6,
      'tokenizer.ggml.tokens': ['a', 'b', 'c'], 'tokenizer.ggml.eos_token_id': 2, 'tokenizer.ggml.eot_token_id': 1, ...extra,
    }));

  it('reads qwen2 (tied, q/k/v bias) and qwen3 (q/k norm, key_length)', () => {
    const q2 = configFromGguf(base('qwen2'), ['token_embd.weight', 'blk.0.attn_q.bias']);
    expect(q2).toMatchObject({ architecture: 'qwen2', headDim: 32, vocabSize: 3, tieEmbeddings: true, qkvBias: true, qkNorm: false, ropeTheta: 1e6, eosTokenIds: [2, 1], bosTokenId: null });
    const q3 = configFromGguf(base('qwen3', { 'qwen3.attention.key_length': 64, 'qwen3.vocab_size': 10 }), ['output.weight']);
    expect(q3).toMatchObject({ architecture: 'qwen3', headDim: 64, vocabSize: 10, tieEmbeddings: false, qkvBias: false, qkNorm: true });
    expect(configFromGguf(base('llama', { 'llama.attention.head_count': [4, 4] }), [])).toMatchObject({ numHeads: 4, qkvBias: false });
  });

  it('names unsupported architectures and variants', () => {
    expect(() => configFromGguf(base('gemma2'), [])).toThrow(UnsupportedArchitectureError);
    expect(() => configFromGguf(base('gemma2'), [])).toThrow(/"gemma2" is not supported/);
    expect(() => configFromGguf(base('llama', { 'llama.expert_count': 8 }), [])).toThrow(/mixture-of-experts/);
    expect(() => configFromGguf(base('llama', { 'llama.rope.scaling.type': 'yarn' }), [])).toThrow(/"yarn"/);
    expect(() => configFromGguf(base('llama', { 'llama.attention.head_count': [4, 8] }), [])).toThrow(/differs between layers/);
    expect(() => configFromGguf(base('llama', { 'llama.rope.dimension_count': 16 }), [])).toThrow(/partial RoPE/);
    const noCtx = base('llama');
    noCtx.delete('llama.context_length');
    expect(() => configFromGguf(noCtx, [])).toThrow(ModelFormatError);
  });

  it('recovers Llama 3.1 and 3.2 RoPE scaling from rope_freqs', () => {
    for (const factor of [8, 32]) {
      const scaling = { type: 'llama3' as const, factor, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 };
      const meta = base('llama', { 'llama.embedding_length': 512, 'llama.rope.freq_base': 500000 });
      const ropeFreqs = new Float32Array(llama3RopeFreqs(128, 500000, scaling));
      expect(configFromGguf(meta, [GGUF_ROPE_FREQS], { ropeFreqs }).ropeScaling).toEqual(scaling);
      expect(() => configFromGguf(meta, [GGUF_ROPE_FREQS])).toThrow(/must pass their values/);
    }
  });

  it('maps tensor names both ways and permutes q/k rows', () => {
    expect(hfNameOfGgufTensor('blk.3.attn_k_norm.weight')).toBe('model.layers.3.self_attn.k_norm.weight');
    expect(hfNameOfGgufTensor('blk.0.ffn_gate.weight')).toBe('model.layers.0.mlp.gate_proj.weight');
    expect(hfNameOfGgufTensor('output.weight')).toBe('lm_head.weight');
    expect(hfNameOfGgufTensor('rope_freqs.weight')).toBeNull();
    expect(ggufNameOfHfTensor('model.layers.7.self_attn.v_proj.bias')).toBe('blk.7.attn_v.bias');
    expect(ggufNameOfHfTensor('model.norm.weight')).toBe('output_norm.weight');
    // head dim 8: GGUF row 2i+j holds HF row j*4+i
    expect(Array.from({ length: 8 }, (_, r) => undoQkInterleave(r, 8))).toEqual([0, 4, 1, 5, 2, 6, 3, 7]);
    for (let r = 0; r < 64; r++) expect(undoQkInterleave(applyQkInterleave(r, 16), 16)).toBe(r);
  });
});

describe('GGUF bad input', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const find = (b: Uint8Array, s: string) => Buffer.from(b).indexOf(Buffer.from(enc(s)));
  const setU64 = (b: Uint8Array, at: number, v: bigint) => new DataView(b.buffer, b.byteOffset).setBigUint64(at, v, true);
  const setU32 = (b: Uint8Array, at: number, v: number) => new DataView(b.buffer, b.byteOffset).setUint32(at, v, true);
  const sample = () => writeGguf({
    metadata: [['general.architecture', gv.str('llama')], ['a.str', gv.str('hello')], ['a.arr', gv.arr('u32', [1, 2, 3])]],
    tensors: [
      { name: 'tensor.one', dims: [8, 2], typeId: 0, data: new Uint8Array(64) },
      { name: 'tensor.two', dims: [8], typeId: 0, data: new Uint8Array(32) },
    ],
  });
  /** Offsets of tensor.two's info fields: n_dims, dims[0], type, offset. */
  const two = (b: Uint8Array) => { const at = find(b, 'tensor.two') + 10; return { nDims: at, type: at + 12, offset: at + 16 }; };
  const advice = /download it again|re-download|pick another|Pick a/i;

  async function rejects(bytes: Uint8Array, cls: typeof ModelFormatError, msg: RegExp, fileSize: number | null = bytes.length) {
    const err = await parse(bytes, fileSize).then(() => null, (e: Error) => e);
    expect(err, `expected ${msg}`).toBeInstanceOf(cls);
    expect(err!.message).toMatch(msg);
    expect(err!.message).toMatch(cls === UnsupportedDtypeError ? /Pick a GGUF/ : advice);
  }

  it('parses the untouched sample', async () => {
    expect((await parse(sample())).tensors.map((t) => t.name)).toEqual(['tensor.one', 'tensor.two']);
  });

  it('rejects truncated files, at several points', async () => {
    const b = sample();
    for (const cut of [0, 3, 8, 20, find(b, 'hello') + 2, find(b, 'tensor.two') + 3, two(b).offset + 4]) {
      await rejects(b.slice(0, cut), ModelFormatError, /truncated|has only/, null);
      await rejects(b.slice(0, cut), ModelFormatError, /truncated|has only/);
    }
    await rejects(b.slice(0, b.length - 16), ModelFormatError, /"tensor.two" ends at byte \d+, but the file has only \d+ bytes/);
  });

  it('rejects wrong magic and unsupported versions', async () => {
    const b = sample();
    b[0] = 0x47 ^ 1;
    await rejects(b, ModelFormatError, /not the GGUF magic/);
    for (const [v, msg] of [[4, /version 4 is not supported/], [0, /version 0/], [0x03000000, /big-endian/]] as const) {
      const c = sample();
      setU32(c, 4, v);
      await rejects(c, ModelFormatError, msg);
    }
  });

  it('rejects absurd counts and lengths before allocating', async () => {
    const cases: Array<[(b: Uint8Array) => void, RegExp, number | null]> = [
      [(b) => setU64(b, 8, 2n ** 40n), /tensor count is 1099511627776/, null],
      [(b) => setU64(b, 16, 2n ** 40n), /metadata key count is 1099511627776/, null],
      [(b) => setU64(b, find(b, 'hello') - 8, 10n ** 9n), /"a\.str" claims 1000000000 bytes, but the file has only \d+ bytes left/, 0],
      [(b) => setU64(b, find(b, 'hello') - 8, 2n ** 40n), /claims 1099511627776 bytes, but a GGUF header may use at most/, null],
      [(b) => setU64(b, find(b, 'hello') - 8, 2n ** 62n), /beyond any real file/, null],
      [(b) => setU64(b, find(b, 'a.arr') + 13, 2n ** 40n), /element count of metadata "a\.arr" is 1099511627776/, null],
      [(b) => setU32(b, find(b, 'a.str') + 5, 13), /value type 13/, 0],
      [(b) => setU32(b, two(b).nDims, 5), /"tensor.two" has 5 dimensions/, 0],
      [(b) => setU64(b, two(b).offset, 1024n), /"tensor.two" ends at byte \d+, but the file has only/, 0],
      [(b) => setU64(b, two(b).offset, 0n), /"tensor.one" \[0, 64\) and "tensor.two" \[0, 32\) overlap/, 0],
      [(b) => setU64(b, two(b).offset, 4n), /not a multiple of the alignment 32/, 0],
      [(b) => b.set(enc('a.arr'), find(b, 'a.str')), /"a\.arr" appears twice/, 0],
    ];
    for (const [patch, msg, size] of cases) {
      const b = sample();
      patch(b);
      await rejects(b, ModelFormatError, msg, size === 0 ? b.length : size);
    }
  });

  it('rejects a bad alignment', async () => {
    const b = writeGguf({ alignment: 64, metadata: [], tensors: [] });
    setU32(b, find(b, 'general.alignment') + 21, 3);
    await rejects(b, ModelFormatError, /general\.alignment is 3; it must be a power of two/);
  });

  it('names unknown and unsupported tensor types', async () => {
    const b = sample();
    setU32(b, two(b).type, 99);
    await rejects(b, UnsupportedDtypeError, /tensor "tensor\.two" has ggml type id 99/);
    const q2k = writeGguf({ metadata: [], tensors: [{ name: 'w', dims: [256], typeId: 10, data: new Uint8Array(84) }] });
    const h = await parse(q2k);
    expect(h.tensors[0]).toMatchObject({ typeName: null, ggmlType: 'q2_k', byteSize: 84 });
    expect(() => assertSupportedTensorTypes(h, 'm.gguf')).toThrow(UnsupportedDtypeError);
    expect(() => assertSupportedTensorTypes(h, 'm.gguf')).toThrow(/"w" \(q2_k, type id 10\)/);
  });
});
