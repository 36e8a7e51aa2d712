/**
 * The three quality measurements of docs/kv-compression.md ("Measuring quality"), driven through the loaded
 * model's step API so every mode sees exactly the same chunking: perplexity with chunked prefill over the
 * compressed past, greedy continuations, and passkey retrieval. Each call starts from an empty cache.
 */
import type { Engine } from '../../src/engine/engine';
import type { LlamaModel } from '../../src/model/llama';
import type { EngineStats } from '../../src/worker/api';

/** Bytes held by the cache, as EngineStats reports them, plus derived views. */
export interface KvBytes {
  tokensHeld: number;
  /** stats().kvBytes: real allocated bytes (the allocation is reserved to exactly N tokens first). */
  kvBytes: number;
  /** stats().kvFp16EquivalentBytes: 2 × L × Hk × d × N × 2. */
  fp16Bytes: number;
  /** fp16Bytes / kvBytes. */
  ratio: number;
  /** kvBytes with the full-precision parts (full cache, residual ring) counted at 2 bytes per element. */
  kvBytesF16Storage: number;
  ratioF16Storage: number;
  components: Record<string, number>;
}

export interface PerplexityResult extends KvBytes {
  tokens: number;
  predicted: number;
  nll: number;
  ppl: number;
  ms: number;
}

function model(engine: Engine): LlamaModel {
  const m = engine.model;
  if (!m) throw new Error('no model loaded');
  return m;
}

/** Empty the cache and size its allocation for exactly `tokens` positions, so kvBytes is the cost of N tokens. */
function freshCache(m: LlamaModel, tokens: number): void {
  m.kv.reset();
  m.kv.reserve(tokens);
}

/** Byte accounting from engine stats. `fpElementBytes` is the element size of the full-precision parts. */
export function kvBytes(stats: EngineStats, fpElementBytes: 2 | 4): KvBytes {
  const components: Record<string, number> = {};
  for (const l of stats.kvLayers) for (const [k, v] of Object.entries(l.components)) components[k] = (components[k] ?? 0) + v;
  const fpBytes = (components.full ?? 0) + (components.residual ?? 0);
  const kvBytesF16Storage = stats.kvBytes - (fpElementBytes === 4 ? fpBytes / 2 : 0);
  return {
    tokensHeld: stats.tokensHeld,
    kvBytes: stats.kvBytes,
    fp16Bytes: stats.kvFp16EquivalentBytes,
    ratio: stats.kvFp16EquivalentBytes / stats.kvBytes,
    kvBytesF16Storage,
    ratioF16Storage: stats.kvFp16EquivalentBytes / kvBytesF16Storage,
    components,
  };
}

/** Σ −log softmax(logits)[target] in f64 for one row. */
function rowNll(logits: Float32Array, offset: number, vocab: number, target: number): number {
  let max = -Infinity;
  for (let j = 0; j < vocab; j++) max = Math.max(max, logits[offset + j]);
  let sum = 0;
  for (let j = 0; j < vocab; j++) sum += Math.exp(logits[offset + j] - max);
  return Math.log(sum) + max - logits[offset + target];
}

/**
 * Perplexity of `ids` (BOS first): chunks of maxStepTokens, each attending to the (compressed) cache of the
 * earlier chunks plus itself; token i+1 is predicted from the logits at i. ppl = exp(mean NLL).
 */
export async function perplexity(engine: Engine, ids: number[], fpElementBytes: 2 | 4): Promise<PerplexityResult> {
  const m = model(engine);
  const vocab = m.config.vocabSize;
  const started = performance.now();
  freshCache(m, ids.length);
  let nll = 0;
  let predicted = 0;
  for (let p0 = 0; p0 < ids.length; p0 += m.maxStepTokens) {
    const chunk = ids.slice(p0, p0 + m.maxStepTokens);
    const { logits } = await m.forward(chunk, 'all-logits');
    if (!logits) throw new Error('all-logits step returned no logits');
    for (let r = 0; r < chunk.length && p0 + r + 1 < ids.length; r++) {
      nll += rowNll(logits, r * vocab, vocab, ids[p0 + r + 1]);
      predicted++;
    }
  }
  const bytes = kvBytes(engine.stats(), fpElementBytes);
  if (bytes.tokensHeld !== ids.length) throw new Error(`cache holds ${bytes.tokensHeld} tokens after ${ids.length}`);
  return { tokens: ids.length, predicted, nll: nll / predicted, ppl: Math.exp(nll / predicted), ms: performance.now() - started, ...bytes };
}

/**
 * Greedy continuation as the engine's generate loop does it: prefill in chunks of maxStepTokens (the last one
 * reads the argmax), then one token per step. Returns the `newTokens` generated ids (EOS does not stop it).
 */
export async function greedy(engine: Engine, promptIds: number[], newTokens: number): Promise<number[]> {
  const m = model(engine);
  const total = promptIds.length + newTokens;
  if (total > m.config.maxPositions) throw new Error(`prompt + ${newTokens} tokens exceed the context of ${m.config.maxPositions}`);
  freshCache(m, total);
  let next = -1;
  for (let p0 = 0; p0 < promptIds.length; p0 += m.maxStepTokens) {
    const chunk = promptIds.slice(p0, p0 + m.maxStepTokens);
    const last = p0 + chunk.length >= promptIds.length;
    next = (await m.forward(chunk, last ? 'token' : 'none')).nextToken;
  }
  const out = [next];
  while (out.length < newTokens) out.push((await m.forward([out[out.length - 1]], 'token')).nextToken);
  return out;
}

/** Agreement of a continuation with the reference one. */
export interface Agreement {
  /** Fraction of positions with the same token. */
  agreement: number;
  /** First position (0-based) where the tokens differ; null when all agree. */
  firstDivergence: number | null;
}

export function agreement(reference: number[], tokens: number[]): Agreement {
  let same = 0;
  let first: number | null = null;
  for (let i = 0; i < reference.length; i++) {
    if (reference[i] === tokens[i]) same++;
    else if (first === null) first = i;
  }
  return { agreement: same / reference.length, firstDivergence: first };
}
