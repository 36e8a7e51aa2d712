/**
 * The JSON document of `npm run bench:kv-peer` and its markdown: a protocol paragraph, one table per text and
 * window size, and llama.cpp's logged KV allocations next to the bytes the block sizes give.
 */
import type { WindowStats } from '../../src/engine/divergence';
import type { KvAllocation } from './alloc-probe';
import type { PeerConfig } from './configs';

/** One scored row of a text's table. */
export interface PeerRow {
  config: string;
  role: PeerConfig['role'] | 'sanity';
  key: string;
  value: string;
  flashAttention: boolean | null;
  rotation: boolean | null;
  /** Per window size n: KV bytes held at n, ratio to fp16, and the statistics over all n and the last quarter. */
  windows: Record<string, { bytes: number; xFp16: number; all: WindowStats; lastQuarter: WindowStats }>;
  /** Wall time of the N-token teacher-forced run (ms). */
  ms?: number;
  /** llama.cpp only: llama_state_get_size after N tokens, and probabilities that read 0 (log clamped). */
  stateSizeAfterN?: number;
  zeroProbs?: number;
}

/** bench/results/kv-peer.json. */
export interface KvPeerReport {
  date: string;
  commit: string;
  dirty: boolean;
  dirtyPaths: string[];
  command: string;
  machine: { cpu: string; cores: number; platform: string; node: string };
  model: { name: string; gguf: string; layers: number; kvHeads: number; headDim: number; vocab: number; bos: number };
  protocol: { n: number; windows: number[]; scored: string; lastQuarter: string; klDirection: string; logits: string; logFloor: number };
  llamaCpp: {
    nodeLlamaCpp: string;
    release: string;
    binary: string;
    contextRequested: number;
    contextActual: number;
    batchSize: number;
    threads: number;
    options: Record<string, unknown>;
  };
  texts: Array<{ name: string; source: string; ids: number; firstIds: number[]; ourTokenizerMatches: boolean; llamaTokenizerMatches: boolean; rows: PeerRow[] }>;
  allocations: Array<{ config: string; byContext: KvAllocation[] }>;
}

const kib = (b: number) => `${Number.isInteger(b / 1024) ? b / 1024 : (b / 1024).toFixed(1)} KiB`;
const pct = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(2)}%`;
const kl = (x: number) => (x === 0 ? '0' : x >= 0.01 ? x.toFixed(4) : x.toExponential(2));

function table(rows: PeerRow[], n: number): string[] {
  const out = [
    '| config | bytes | ×fp16 (fp16 ÷ bytes) | ppl all | Δ% all | ppl last q | Δ% last q | KL mean | KL p99 | KL mean last q | KL p99 last q | top-1 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const w = r.windows[String(n)];
    const name = r.role === 'reference' ? `**${r.config}** (reference)` : r.config;
    out.push(
      `| ${name} | ${kib(w.bytes)} | ${(1 / w.xFp16).toFixed(2)}× | ${w.all.ppl.toFixed(4)} | ${pct(w.all.deltaPct)} | ${w.lastQuarter.ppl.toFixed(4)} | ${pct(w.lastQuarter.deltaPct)} | ${kl(w.all.klMean)} | ${kl(w.all.klP99)} | ${kl(w.lastQuarter.klMean)} | ${kl(w.lastQuarter.klP99)} | ${(100 * w.all.top1).toFixed(1)}% |`,
    );
  }
  return out;
}

function allocationTable(r: KvPeerReport): string[] {
  if (r.allocations.length === 0) return ['(allocation probes skipped: --no-alloc)'];
  const cells = r.allocations[0].byContext.map((a) => `${a.requested} → ${a.cells} cells`);
  const out = [
    `| config | rotation K/V (log) | ${cells.map((c) => `llama.cpp KV buffer, ctx ${c}`).join(' | ')} | block-size bytes at 512 / 1024 | llama_state_get_size after ${r.protocol.n} tokens (Dracula) |`,
    `|---|---|${cells.map(() => '---:').join('|')}|---:|---:|`,
  ];
  const dracula = r.texts[0].rows;
  for (const a of r.allocations) {
    const row = dracula.find((x) => x.config === a.config);
    const first = a.byContext[0];
    const rot = first.rotK === null ? '?' : `${first.rotK ? 'on' : 'off'} / ${first.rotV ? 'on' : 'off'}`;
    const bytes = row ? `${kib(row.windows['512'].bytes)} / ${kib(row.windows['1024'].bytes)}` : '—';
    const state = row?.stateSizeAfterN != null ? `${row.stateSizeAfterN.toLocaleString('en-US')} B` : '—';
    out.push(`| ${a.config} | ${rot} | ${a.byContext.map((b) => `${b.totalMiB.toFixed(2)} MiB (K ${b.keyType} ${b.keyMiB.toFixed(2)}, V ${b.valueType} ${b.valueMiB.toFixed(2)})`).join(' | ')} | ${bytes} | ${state} |`);
  }
  return out;
}

/** The markdown report. */
export function kvPeerMarkdown(r: KvPeerReport): string {
  const l = r.llamaCpp;
  const short = r.commit.slice(0, 7);
  const lines: string[] = [
    `# KV-cache peer: llama.cpp's own KV cache types on ${r.model.name}`,
    '',
    `Run ${r.date} at commit \`${short}\`${r.dirty ? ` (working tree dirty: ${r.dirtyPaths.length} paths, other agents' work in progress)` : ''}; \`${r.command}\`; ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.platform}, Node ${r.machine.node}. ` +
      `llama.cpp ${l.release} through node-llama-cpp ${l.nodeLlamaCpp} (${l.binary}), ${l.threads} thread(s), model \`${r.model.gguf}\` (f32 weights). ` +
      `Context: ${l.contextRequested} requested → n_ctx ${l.contextActual} (node-llama-cpp keeps one cell free and context-shifts on the n_ctx-th token, so n_ctx = ${r.protocol.n} cannot hold ${r.protocol.n} evaluated tokens; llama.cpp rounds n_ctx up to a multiple of 256). ` +
      `Batches of ${l.batchSize} tokens (n_batch = n_ubatch = ${l.batchSize}), logits at every position; flash attention on in every row except the two "(no FA)" ones. ` +
      `Ids: ${r.model.bos} (BOS) then the UTF-8 bytes of the text (byte-level vocab, id = byte); our tokenizer (tokenizer.json via bench/eval/text.ts firstTokens) and llama.cpp's tokenizer (the GGUF's) give the same ${r.protocol.n + 1} ids on both texts: ${r.texts.every((t) => t.ourTokenizerMatches && t.llamaTokenizerMatches) ? 'yes' : 'NO, see kv-peer.json'}. ` +
      `ids[0..${r.protocol.n}) are fed and position i is scored against ids[i + 1]; N = 512 is the first 512 positions of the same run (attention is causal). ` +
      `Metrics: src/engine/divergence.ts; Δ% is ppl against the reference row's ppl on the same positions; ${r.protocol.klDirection}; top-1 = argmax agreement with the reference; last q = positions [3N/4, N). ` +
      `llama.cpp's distributions are the log of node-llama-cpp's full-vocabulary f32 softmax of the raw logits (equal to the logits up to a per-row constant and f32 rounding).`,
    '',
    `Bytes: ggml block sizes (f32 4 B, f16 2 B, q8_0 34 B per 32, q4_0 18 B per 32 elements) × (K + V) × ${r.model.layers} layers × ${r.model.kvHeads} KV heads × head dim ${r.model.headDim} × N; ×fp16 = (2 × ${r.model.layers} × ${r.model.kvHeads} × ${r.model.headDim} × N × 2 B) ÷ bytes, as in quality.md. ` +
      `llama.cpp quantizes every token it stores, the current batch's own K/V included (it writes the batch into the cache, then attends to the cache), whereas our chunked protocol attends to the current chunk at full precision. ` +
      'With flash attention llama.cpp casts an F32 cache to F16 before attending (llama-graph.cpp, build_attn_mha), so "f32 (FA)" stores f32 but computes exactly the reference (KL 0 at every position); "f32 (no FA)" is its full-precision path. ' +
      `This llama.cpp release Hadamard-rotates each 64-wide head slice of a quantized K and V before storing it (log: attn_rot_k / attn_rot_v = 1; llama.cpp PR 21038); the "no rotation" rows turn that off with LLAMA_ATTN_ROT_DISABLE=1, as older releases stored K/V.`,
    '',
    `Sanity row "${r.texts[0].rows.at(-1)?.config}": our CPU reference model on the same ids in chunks of ${l.batchSize}, f32 weights and f32 K/V, against llama.cpp's f16 reference — not the WebGPU engine: the engine's quality tasks return argmax ids (top1) or scores against our own reference mode (divergence), not logits, so an engine-vs-llama.cpp KL needs a new task kind in bench/eval (not done here). Its bytes are our f32 K/V.`,
    '',
  ];
  for (const t of r.texts) {
    for (const n of r.protocol.windows) {
      lines.push(`## ${t.name}, N = ${n}`, '', ...table(t.rows, n), '');
    }
  }
  lines.push(
    '## KV allocation as llama.cpp logs it',
    '',
    `llama.cpp allocates K/V for every cell of its context (n_ctx), not for the N tokens held: a context of 1024 cells holds exactly the block-size bytes of N = 1024, and the run's own context (${l.contextActual} cells) holds ${l.contextActual}/1024 of that. ` +
      'The Hadamard matrices of the rotation (one 64 × 64 f32 per size) live in host memory outside the KV buffer. ' +
      `llama_state_get_size after N tokens is the serialized state: the ${r.protocol.n} used cells (K/V rows plus per-cell position and sequence ids) and the output buffer, so it is a little above the block-size bytes.`,
    '',
    ...allocationTable(r),
    '',
  );
  return lines.join('\n');
}
