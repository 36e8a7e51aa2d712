/**
 * `npm run bench:kv-peer`: a peer row for the KV-compression tables. llama.cpp's own KV cache types (F16, Q8_0,
 * Q4_0, mixed) on byte-llama-12l's F32 GGUF, teacher-forced over the first N = 1024 tokens of the two `npm run
 * eval` texts, scored with the shared metric math (src/engine/divergence.ts) against llama.cpp's F16-KV flash-
 * attention run: ppl and its delta over all N and the last quarter, KL(F16 ‖ config) mean and p99, top-1
 * agreement, at N = 512 (the same run's prefix; attention is causal) and N = 1024; and the KV bytes per type.
 *
 * llama.cpp runs through tools/llama-oracle (node-llama-cpp 3.21.1, CPU prebuilt): batches of 64 tokens with the
 * next-token distribution at every position. A sanity row compares our CPU reference (src/reference, f32 KV) with
 * llama.cpp's F16 reference on the same ids. Writes bench/results/kv-peer.{json,md}.
 * Flags: --threads T (default 1), --out DIR, --no-alloc (skip the allocation probes).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureGguf } from '../scripts/gguf-models';
import { sharedModelsDir, startHubServer } from '../scripts/hub-server';
import { allAndLastQuarter, emptyScores, logSoftmaxRow, scorePosition, type PositionScores } from '../src/engine/divergence';
import { HubSource } from '../src/model/source';
import { loadTokenizer } from '../src/model/tokenizer';
import { loadReferenceModel } from '../src/reference/load-node';
import { openOracle } from '../tools/llama-oracle/oracle.mjs';
import { draculaBody, firstTokens } from './eval/text';
import { probeAllocation, type KvAllocation } from './kv-peer/alloc-probe';
import { CONFIGS, fp16Bytes, kvBytes, REFERENCE, SHAPE, type PeerConfig } from './kv-peer/configs';
import { kvPeerMarkdown, type KvPeerReport, type PeerRow } from './kv-peer/report';
import { git } from './git';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const option = (n: string, fallback: string) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : fallback);
const OUT_DIR = path.resolve(ROOT, option('out', 'bench/results'));
const THREADS = Number(option('threads', '1'));
const MODEL = 'byte-llama-12l';
const BOS = 256;
const N = 1024;
const WINDOWS = [512, 1024];
const BATCH = 64;
/** node-llama-cpp keeps one cell free (it context-shifts on the contextSize-th token): ask for N + 1. */
const CONTEXT = N + 1;
/** Probabilities below f32's smallest denormal read 0; their log is clamped here (the count is reported). */
const LOG_FLOOR = Math.log(1.401298464324817e-45);
const OURS = 'ours: CPU reference (src/reference), f32 KV';
const log = (m: string) => process.stderr.write(`[kv-peer] ${m}\n`);

/** One evaluation text: its first N + 1 ids (BOS, then UTF-8 bytes). */
interface TextCase {
  name: string;
  source: string;
  ids: number[];
  /** Whether our tokenizer (tokenizer.json) and llama.cpp's (the GGUF's) give the same N + 1 ids. */
  ourTokenizerMatches: boolean;
  llamaTokenizerMatches: boolean;
}

/** ids = [BOS, ...UTF-8 bytes of text] (byte-level vocab: id = byte), the first N + 1. */
function byteIds(text: string): number[] {
  return [BOS, ...new TextEncoder().encode(text.slice(0, 2 * N))].slice(0, N + 1);
}

const same = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

async function loadTexts(): Promise<{ cases: TextCase[]; prefixes: string[] }> {
  const dracula = draculaBody(path.join(sharedModelsDir(), '..', 'eval', 'dracula.txt'));
  const lincolnFile = path.join(ROOT, 'bench', 'eval-texts', 'lincoln-annual-messages-1861-1864.txt');
  const lincoln = fs.readFileSync(lincolnFile, 'utf8');
  const texts = [
    { name: 'dracula', source: 'shared/eval/dracula.txt, CRLF→LF, from the line after "*** START OF" (bench/eval/text.ts draculaBody)', text: dracula },
    { name: 'lincoln', source: 'bench/eval-texts/lincoln-annual-messages-1861-1864.txt from its start', text: lincoln },
  ];
  const hub = await startHubServer({ repos: { [`local/${MODEL}`]: path.join(sharedModelsDir(), MODEL) } });
  try {
    const tok = await loadTokenizer(new HubSource(`local/${MODEL}`, hub.baseUrl));
    const cases = texts.map((t) => {
      const ids = byteIds(t.text);
      return { name: t.name, source: t.source, ids, ourTokenizerMatches: same(ids, firstTokens(tok, t.text, N + 1)), llamaTokenizerMatches: false };
    });
    return { cases, prefixes: texts.map((t) => t.text.slice(0, 2 * N)) };
  } finally {
    await hub.close();
  }
}

/** log of llama.cpp's probability rows, clamped at LOG_FLOOR; also the number of zeros. */
function logRows(p: Float32Array): { rows: Float64Array; zeros: number } {
  const rows = new Float64Array(p.length);
  let zeros = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] > 0) rows[i] = Math.log(p[i]);
    else {
      rows[i] = LOG_FLOOR;
      zeros++;
    }
  }
  return { rows, zeros };
}

/** Per-position scores of candidate rows against reference rows (both logits or log-probs, N × vocab). */
function scoreRows(ref: ArrayLike<number>, cand: ArrayLike<number>, ids: number[], vocab: number): PositionScores {
  const s = emptyScores();
  for (let i = 0; i < N; i++) scorePosition(s, logSoftmaxRow(ref, i * vocab, vocab), logSoftmaxRow(cand, i * vocab, vocab), ids[i + 1]);
  return s;
}

function windowsOf(s: PositionScores, bytes: (n: number) => number): PeerRow['windows'] {
  return Object.fromEntries(WINDOWS.map((n) => [String(n), { bytes: bytes(n), xFp16: bytes(n) / fp16Bytes(n), ...allAndLastQuarter(s, n) }]));
}

interface LlamaRun {
  vocab: number;
  contextSize: number;
  batchSize: number;
  release: string;
  perText: Array<{ rows: Float64Array; zeros: number; ms: number; stateSize: number }>;
}

/** One llama.cpp context of a configuration; every text teacher-forced in it (history cleared between). */
async function runLlama(gguf: string, c: PeerConfig, cases: TextCase[], prefixes: string[]): Promise<LlamaRun> {
  const oracle = await openOracle(gguf, {
    contextSize: CONTEXT,
    batchSize: BATCH,
    threads: THREADS,
    flashAttention: c.flashAttention,
    kvCacheKeyType: c.key,
    kvCacheValueType: c.value,
    kvRotation: c.rotation,
  });
  try {
    if (oracle.kvCacheKeyType !== c.key || oracle.kvCacheValueType !== c.value) throw new Error(`${c.name}: llama.cpp context has K ${oracle.kvCacheKeyType}, V ${oracle.kvCacheValueType}`);
    if (oracle.flashAttention !== c.flashAttention) throw new Error(`${c.name}: flash attention is ${oracle.flashAttention}`);
    if (c.name === REFERENCE) cases.forEach((t, i) => (t.llamaTokenizerMatches = same(t.ids, oracle.tokenize(prefixes[i], { addBos: true }).slice(0, N + 1))));
    const perText: LlamaRun['perText'] = [];
    for (const t of cases) {
      const t0 = performance.now();
      const probs = await oracle.teacherForcedProbs(t.ids.slice(0, N));
      const ms = performance.now() - t0;
      perText.push({ ...logRows(probs), ms, stateSize: oracle.stateSize() });
      log(`${c.name} ${t.name}: ${(ms / 1000).toFixed(2)} s`);
    }
    return { vocab: oracle.vocabSize, contextSize: oracle.contextSize, batchSize: oracle.batchSize, release: oracle.llamaCppRelease, perText };
  } finally {
    await oracle.close();
  }
}

/** Our CPU reference's logits (f32 weights and KV), fed in chunks of BATCH like the engine's prefill. */
async function referenceLogits(cases: TextCase[]): Promise<{ logits: Float32Array[]; ms: number[] }> {
  const { config, model } = await loadReferenceModel(path.join(sharedModelsDir(), MODEL));
  const V = config.vocabSize;
  const logits: Float32Array[] = [];
  const ms: number[] = [];
  for (const t of cases) {
    const t0 = performance.now();
    model.reset();
    const out = new Float32Array(N * V);
    for (let c = 0; c < N; c += BATCH) out.set(model.forward(t.ids.slice(c, Math.min(N, c + BATCH))), c * V);
    logits.push(out);
    ms.push(performance.now() - t0);
    log(`${OURS} ${t.name}: ${(ms.at(-1)! / 1000).toFixed(1)} s`);
  }
  return { logits, ms };
}

async function main(): Promise<void> {
  const started = new Date().toISOString();
  const commit = git(['rev-parse', 'HEAD']);
  const dirtyPaths = git(['status', '--porcelain']).split('\n').filter((l) => l.trim());
  const { file: gguf } = await ensureGguf(path.join(ROOT, '.cache', 'gguf'), MODEL, 'F32');
  const { cases, prefixes } = await loadTexts();

  const runs = new Map<string, LlamaRun>();
  for (const c of CONFIGS) runs.set(c.name, await runLlama(gguf, c, cases, prefixes));
  const ref = runs.get(REFERENCE)!;
  const ours = await referenceLogits(cases);
  const V = ref.vocab;

  const texts = cases.map((t, ti) => {
    const refRows = ref.perText[ti].rows;
    const rows: PeerRow[] = CONFIGS.map((c) => {
      const r = runs.get(c.name)!.perText[ti];
      const s = scoreRows(refRows, r.rows, t.ids, V);
      return {
        config: c.name,
        role: c.role,
        key: c.key,
        value: c.value,
        flashAttention: c.flashAttention,
        rotation: c.rotation,
        windows: windowsOf(s, (n) => kvBytes(c.key, c.value, n)),
        ms: r.ms,
        stateSizeAfterN: r.stateSize,
        zeroProbs: r.zeros,
      };
    });
    const s = scoreRows(refRows, ours.logits[ti], t.ids, V);
    rows.push({ config: OURS, role: 'sanity', key: 'F32', value: 'F32', flashAttention: null, rotation: null, windows: windowsOf(s, (n) => kvBytes('F32', 'F32', n)), ms: ours.ms[ti] });
    return { name: t.name, source: t.source, ids: N + 1, firstIds: t.ids.slice(0, 16), ourTokenizerMatches: t.ourTokenizerMatches, llamaTokenizerMatches: t.llamaTokenizerMatches, rows };
  });

  const allocations: Array<{ config: string; byContext: KvAllocation[] }> = [];
  if (!argv.includes('--no-alloc')) {
    for (const c of CONFIGS) {
      allocations.push({ config: c.name, byContext: [512, 1024, CONTEXT].map((cells) => probeAllocation(gguf, cells, c)) });
      log(`allocation ${c.name}: ${allocations.at(-1)!.byContext.map((a) => `${a.cells} cells ${a.totalMiB} MiB`).join(', ')}`);
    }
  }

  const nlcVersion = (JSON.parse(fs.readFileSync(path.join(ROOT, 'tools', 'llama-oracle', 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8')) as { version: string }).version;
  const report: KvPeerReport = {
    date: started,
    commit,
    dirty: dirtyPaths.length > 0,
    dirtyPaths,
    command: 'npm run bench:kv-peer',
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, platform: `${os.platform()} ${os.arch()}`, node: process.version },
    model: { name: MODEL, gguf: path.relative(ROOT, gguf), ...SHAPE, vocab: V, bos: BOS },
    protocol: {
      n: N,
      windows: WINDOWS,
      scored: 'position i scores the prediction of ids[i + 1] after ids[0..i], i = 0 … n − 1; ids[0..N) fed, ids[1..N] scored',
      lastQuarter: 'positions [3n/4, n)',
      klDirection: `KL(${REFERENCE} ‖ row), natural log`,
      logits: 'llama.cpp: log of node-llama-cpp\'s full-vocab f32 softmax of the raw logits (sampleToken with probabilities, greedy sampler); ours: raw logits. Both through logSoftmaxRow (src/engine/divergence.ts) in f64.',
      logFloor: LOG_FLOOR,
    },
    llamaCpp: {
      nodeLlamaCpp: nlcVersion,
      release: ref.release,
      binary: '@node-llama-cpp/linux-x64 prebuilt, CPU only (ggml picks a CPU-specific libggml-cpu-<arch>.so at run time)',
      contextRequested: CONTEXT,
      contextActual: ref.contextSize,
      batchSize: ref.batchSize,
      threads: THREADS,
      options: {
        getLlama: { gpu: false, build: 'never', skipDownload: true, usePrebuiltBinaries: true, progressLogs: false, logLevel: 'error' },
        loadModel: { gpuLayers: 0, useMmap: false },
        createContext: {
          contextSize: CONTEXT,
          batchSize: BATCH,
          threads: { ideal: THREADS, min: THREADS },
          flashAttention: '<per row>',
          experimentalKvCacheKeyType: '<per row>',
          experimentalKvCacheValueType: '<per row>',
          sequences: 1,
        },
        evaluate: 'sequence.controlledEvaluate(ids.map((t) => [t, { generateNext: { probabilities: true, options: { temperature: 0 } } }]))',
        noRotationRows: 'LLAMA_ATTN_ROT_DISABLE=1 in the environment while the context is created',
      },
    },
    texts,
    allocations,
  };
  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUT_DIR, 'kv-peer.json'), `${JSON.stringify(report, null, 2)}\n`);
  fs.writeFileSync(path.join(OUT_DIR, 'kv-peer.md'), kvPeerMarkdown(report));
  log(`wrote ${path.relative(ROOT, OUT_DIR)}/kv-peer.{json,md}`);
}

main().catch((e: unknown) => {
  log(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});
