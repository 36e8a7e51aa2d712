/**
 * A ModelSource that serves a real config and tokenizer with random weights of the real shapes,
 * synthesized as a safetensors stream (never held whole in memory). Speed does not depend on weight
 * values, so benchmarks at real shapes run where real weights cannot be downloaded.
 */
import { ModelFileMissingError } from '../errors';
import { parseModelConfig } from './config';
import type { ModelFileStream, ModelSource } from './source';
import { EMBED_TOKENS, FINAL_NORM, LM_HEAD, layerTensorNames } from './tensor-names';

type Shape = [number] | [number, number];

/** Tensor names and shapes a Llama-family config implies, in file order. */
export function impliedTensorShapes(rawConfig: Record<string, unknown>): Array<[string, Shape]> {
  const c = parseModelConfig(rawConfig);
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const out: Array<[string, Shape]> = [[EMBED_TOKENS, [c.vocabSize, c.hiddenSize]]];
  for (let i = 0; i < c.numLayers; i++) {
    const n = layerTensorNames(i);
    out.push([n.attnNorm, [c.hiddenSize]], [n.wq, [q, c.hiddenSize]], [n.wk, [kv, c.hiddenSize]], [n.wv, [kv, c.hiddenSize]], [n.wo, [c.hiddenSize, q]]);
    if (c.qkvBias) out.push([n.bq, [q]], [n.bk, [kv]], [n.bv, [kv]]);
    if (c.qkNorm) out.push([n.qNorm, [c.headDim]], [n.kNorm, [c.headDim]]);
    out.push([n.ffnNorm, [c.hiddenSize]], [n.wGate, [c.intermediateSize, c.hiddenSize]], [n.wUp, [c.intermediateSize, c.hiddenSize]], [n.wDown, [c.hiddenSize, c.intermediateSize]]);
  }
  out.push([FINAL_NORM, [c.hiddenSize]]);
  if (!c.tieEmbeddings) out.push([LM_HEAD, [c.vocabSize, c.hiddenSize]]);
  return out;
}

/** Serves `files` as given (config.json, tokenizer files) and a random `model.safetensors` in F16. */
export class RandomWeightsSource implements ModelSource {
  readonly label: string;

  constructor(
    name: string,
    private readonly files: Record<string, string>,
    private readonly seed = 1,
  ) {
    this.label = `${name} (random weights)`;
  }

  async text(file: string): Promise<string> {
    const t = this.files[file];
    if (t === undefined) throw new ModelFileMissingError(`${file} of ${this.label} does not exist.`);
    return t;
  }

  async has(file: string): Promise<boolean> {
    return file === 'model.safetensors' || file in this.files;
  }

  async stream(file: string): Promise<ModelFileStream> {
    if (file !== 'model.safetensors') return { size: NaN, body: new Blob([await this.text(file)]).stream() };
    const shapes = impliedTensorShapes(JSON.parse(this.files['config.json']));
    const header: Record<string, unknown> = {};
    let offset = 0;
    for (const [name, shape] of shapes) {
      const bytes = shape.reduce((a, b) => a * b, 1) * 2;
      header[name] = { dtype: 'F16', shape, data_offsets: [offset, offset + bytes] };
      offset += bytes;
    }
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8);
    const head = new Uint8Array(8 + json.length);
    new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
    head.set(new TextEncoder().encode(json), 8);
    const dataBytes = offset;
    let sent = 0;
    let state = this.seed >>> 0 || 1;
    const chunkBytes = 1 << 20;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(head);
      },
      pull(controller) {
        if (sent >= dataBytes) {
          controller.close();
          return;
        }
        const n = Math.min(chunkBytes, dataBytes - sent);
        const halfs = new Uint16Array(n / 2);
        for (let i = 0; i < halfs.length; i++) {
          state ^= state << 13;
          state ^= state >>> 17;
          state ^= state << 5;
          // Small random f16 values: sign, exponent 2^-8..2^-5, random mantissa.
          halfs[i] = ((state & 1) << 15) | ((7 + ((state >>> 1) & 3)) << 10) | ((state >>> 3) & 0x3ff);
        }
        controller.enqueue(new Uint8Array(halfs.buffer));
        sent += n;
      },
    });
    return { size: head.byteLength + dataBytes, body };
  }
}
