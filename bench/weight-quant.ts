/**
 * `npm run bench:weight-quant`: which block format on-load quantization should use, measured at equal bytes.
 * For each model (byte-llama-12l, stories260k), the CPU reference forward (src/reference) reads 512 tokens
 * (byte-llama: held-out Dracula; stories260k: a story sampled from its own weights) with weights quantized on load and dequantized exactly as the kernels read them, against the
 * f32 weights: perplexity, KL(f32 ‖ quantized) of each position's next-token distribution (mean and p99), and
 * top-1 agreement; plus the quantizer's time per weight (JS, in the worker at load). Candidates:
 *   q8: Q8_0 (8.5 bits/weight);
 *   q4: Q4_0 and Q4_K (both 4.5 bits/weight), Q4_1 (5) and Q5_0 (5.5) for scale, and Q4_K_M-style mixes that
 *       give llama.cpp's more-bits matrices (output / tied embedding, use_more_bits v/down) 6 or 8 bits; the row
 *       marked `(q4 on load)` is the one src/model/on-load-quant.ts picks, typed by onLoadQuantType itself.
 * Matrices whose rows are not whole blocks stay f16 (byte-llama's down_proj, 688 columns), as on load.
 * Writes bench/results/weight-quant.{json,md}.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedModelsDir } from '../scripts/hub-server';
import { startHubServer } from '../scripts/hub-server';
import { BLOCK, type GgmlTypeName, type QuantType } from '../src/gpu/block-types';
import { HubSource } from '../src/model/source';
import { loadTokenizer } from '../src/model/tokenizer';
import { ReferenceModel } from '../src/reference/forward';
import { loadReferenceModel } from '../src/reference/load-node';
import { draculaBody, firstTokens } from './eval/text';
import { sampledText } from './gguf/agreement';
import { roundTripWeights } from './gguf/llama-activations';
import { isSensitiveMatrix, onLoadQuantType } from '../src/model/on-load-quant';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const N = 512;
/** Each candidate: block types in order of preference (a matrix takes the first its rows fit). */
const CANDIDATES: Array<{ label: string; types: QuantType[]; sensitive?: QuantType[]; onLoad?: boolean }> = [
  { label: 'Q8_0', types: ['q8_0'] },
  { label: 'Q4_0', types: ['q4_0'] },
  { label: 'Q4_K, else Q4_0', types: ['q4_k', 'q4_0'] },
  { label: 'Q4_1', types: ['q4_1'] },
  { label: 'Q5_0', types: ['q5_0'] },
  { label: 'mix: Q4_K/Q4_0, sensitive Q6_K/Q5_0 (q4 on load)', types: [], onLoad: true },
  { label: "mix: Q4_K/Q4_0, sensitive Q6_K/Q8_0 (llama.cpp's fallback)", types: ['q4_k', 'q4_0'], sensitive: ['q6_k', 'q8_0'] },
  { label: 'mix: Q4_K/Q4_0, sensitive Q8_0', types: ['q4_k', 'q4_0'], sensitive: ['q8_0'] },
];

interface Row {
  model: string;
  format: string;
  bitsPerWeight: number;
  /** Share of matrix weights in the format (the rest stay f16: rows not whole blocks). */
  quantizedShare: number;
  ppl: number;
  pplDeltaPct: number;
  klMean: number;
  klP99: number;
  top1: number;
  quantizeNsPerWeight: number;
}

function logSoftmax(l: Float32Array, o: number, v: number): Float64Array {
  let max = -Infinity;
  for (let j = 0; j < v; j++) max = Math.max(max, l[o + j]);
  let z = 0;
  for (let j = 0; j < v; j++) z += Math.exp(l[o + j] - max);
  const out = new Float64Array(v);
  for (let j = 0; j < v; j++) out[j] = l[o + j] - max - Math.log(z);
  return out;
}

async function measure(model: string, body: string): Promise<Row[]> {
  const dir = path.join(sharedModelsDir(), model);
  const hub = await startHubServer({ repos: { [`local/${model}`]: dir } });
  const tok = await loadTokenizer(new HubSource(`local/${model}`, hub.baseUrl));
  await hub.close();
  // stories260k cannot read Victorian prose (ppl ≈ 170 on Dracula): it reads a story sampled from its own f32 weights.
  const ids = model === 'stories260k' ? await sampledText(dir, tok.encodeText('Once upon a time'), N + 1) : firstTokens(tok, body, N + 1);
  const { config, tensors } = await loadReferenceModel(dir);
  const V = config.vocabSize;
  const run = (weights: Map<string, Float32Array>) => new ReferenceModel(config, weights).forward(ids.slice(0, N));
  const base = run(tensors);
  const baseLp = Array.from({ length: N }, (_, r) => logSoftmax(base, r * V, V));
  const argmax = (lp: Float64Array) => lp.reduce((b, x, j) => (x > lp[b] ? j : b), 0);
  const nll = (lps: Float64Array[]) => lps.reduce((s, lp, r) => s - lp[ids[r + 1]], 0) / N;
  const basePpl = Math.exp(nll(baseLp));
  const rows: Row[] = [{ model, format: 'f32', bitsPerWeight: 32, quantizedShare: 0, ppl: basePpl, pplDeltaPct: 0, klMean: 0, klP99: 0, top1: 1, quantizeNsPerWeight: 0 }];
  for (const c of CANDIDATES) {
    let quantized = 0;
    let total = 0;
    let ms = 0;
    let bits = 0;
    const typeOf = (name: string, cols: number): GgmlTypeName => {
      if (c.onLoad) return onLoadQuantType('q4', cols, isSensitiveMatrix(name, config)) ?? 'f16';
      const types = c.sensitive && isSensitiveMatrix(name, config) ? c.sensitive : c.types;
      return types.find((ty) => cols % BLOCK[ty].elems === 0) ?? 'f16';
    };
    const { weights: q, types } = roundTripWeights(config, tensors, typeOf, (type, n, took) => {
      ms += took;
      quantized += n;
      bits += (BLOCK[type as QuantType].bytes * 8 * n) / BLOCK[type as QuantType].elems;
    });
    for (const w of types.keys()) total += w.length;
    const out = run(q);
    const kl: number[] = [];
    let agree = 0;
    const lps = Array.from({ length: N }, (_, r) => {
      const lp = logSoftmax(out, r * V, V);
      let k = 0;
      for (let j = 0; j < V; j++) k += Math.exp(baseLp[r][j]) * (baseLp[r][j] - lp[j]);
      kl.push(k);
      if (argmax(lp) === argmax(baseLp[r])) agree++;
      return lp;
    });
    const ppl = Math.exp(nll(lps));
    kl.sort((a, b) => a - b);
    rows.push({
      model,
      format: c.label,
      bitsPerWeight: quantized ? bits / quantized : 16,
      quantizedShare: quantized / total,
      ppl,
      pplDeltaPct: (ppl / basePpl - 1) * 100,
      klMean: kl.reduce((a, b) => a + b, 0) / N,
      klP99: kl[Math.floor(0.99 * (N - 1))],
      top1: agree / N,
      quantizeNsPerWeight: quantized ? (ms * 1e6) / quantized : 0,
    });
  }
  return rows;
}

async function main(): Promise<void> {
  const body = draculaBody(path.join(sharedModelsDir(), '..', 'eval', 'dracula.txt'));
  const rows: Row[] = [];
  for (const model of ['byte-llama-12l', 'stories260k']) rows.push(...(await measure(model, body)));
  let commit = '';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    /* not a checkout */
  }
  const out = path.join(ROOT, 'bench/results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'weight-quant.json'), JSON.stringify({ commit, date: new Date().toISOString(), command: 'npm run bench:weight-quant', tokens: N, rows }, null, 1) + '\n');
  const lines = [
    '# On-load weight quantization: block formats at equal bytes',
    '',
    `Commit ${commit}, ${new Date().toISOString()}. Command: \`npm run bench:weight-quant\`. CPU reference forward over ${N} tokens (BOS first):`,
    'byte-llama-12l reads held-out Dracula, stories260k a story sampled from its f32 weights (T = 1, seeded); weights quantized with the ggml reference quantizers and dequantized as the kernels read them; KL is KL(f32 ‖ quantized) per',
    'position in nats. Matrices whose rows are not whole blocks stay f16 (`quantized share`). Quantize time: JS in one thread, this machine.',
    '`sensitive`: the matrices llama.cpp\'s Q4_K_M gives more bits (the output matrix or tied embedding, and v_proj / down_proj in its',
    'use_more_bits layers), with the first type whose blocks their rows fit. `(q4 on load)` marks the format `weightDtype: \'q4\'` uses.',
    '',
    '| model | format | bits/weight | quantized share | ppl | Δ ppl | KL mean | KL p99 | top-1 vs f32 | quantize ns/weight |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.model} | ${r.format} | ${r.bitsPerWeight.toFixed(2)} | ${(r.quantizedShare * 100).toFixed(0)}% | ${r.ppl.toFixed(4)} | ${r.pplDeltaPct >= 0 ? '+' : ''}${r.pplDeltaPct.toFixed(2)}% | ${r.klMean.toFixed(5)} | ${r.klP99.toFixed(4)} | ${(r.top1 * 100).toFixed(1)}% | ${r.quantizeNsPerWeight.toFixed(0)} |`),
  ];
  fs.writeFileSync(path.join(out, 'weight-quant.md'), lines.join('\n') + '\n');
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
