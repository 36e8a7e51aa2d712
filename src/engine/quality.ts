/**
 * KV-compression quality measurements (docs/kv-compression.md, "Measuring quality"), shared by the Node
 * harness and the in-browser one (run inside the worker): perplexity with chunked prefill over the
 * compressed past, greedy continuations (also used for passkey retrieval), and allocated bytes.
 * Every measurement starts from an empty cache that the caller built for it.
 */
import type { KvCache, KvShape } from '../kv/types';
import { fp16BaselineBytes } from '../kv/types';
import type { LlamaModel } from '../model/llama';
import type { ChatTokenizer } from '../model/tokenizer';
import type { EngineStats, QualityKvBytes, QualityResult, QualityTask } from '../worker/api';

/** −log softmax(logits)[target] of one row, accumulated in f64. */
export function rowNll(logits: Float32Array, offset: number, vocab: number, target: number): number {
  let max = -Infinity;
  for (let j = 0; j < vocab; j++) max = Math.max(max, logits[offset + j]);
  let sum = 0;
  for (let j = 0; j < vocab; j++) sum += Math.exp(logits[offset + j] - max);
  return Math.log(sum) + max - logits[offset + target];
}

/** KV bytes from engine stats (real allocation sizes). */
function statsBytes(stats: EngineStats): QualityKvBytes {
  const components: Record<string, number> = {};
  for (const l of stats.kvLayers) for (const [k, v] of Object.entries(l.components)) components[k] = (components[k] ?? 0) + v;
  return { tokens: stats.tokensHeld, kvBytes: stats.kvBytes, fp16Bytes: stats.kvFp16EquivalentBytes, components };
}

/** Empty the cache and size its allocation for exactly `tokens` positions, so its bytes are the cost of N tokens. */
function freshCache(model: LlamaModel, tokens: number): void {
  if (tokens > model.config.maxPositions) throw new RangeError(`${tokens} tokens exceed the context of ${model.config.maxPositions}`);
  model.kv.reset();
  model.kv.reserve(tokens);
}

/**
 * Perplexity over `ids` = N + 1 tokens (BOS first): the model reads the first N in steps of maxStepTokens, each
 * attending to the (compressed) cache of the earlier steps plus itself, and the logits at i predict ids[i + 1],
 * so N tokens are scored and the cache ends holding N. ppl = exp(mean NLL).
 */
export async function measurePerplexity(model: LlamaModel, ids: number[]): Promise<{ predicted: number; nll: number }> {
  const vocab = model.config.vocabSize;
  const n = ids.length - 1;
  if (n < 1) throw new RangeError('perplexity needs at least 2 tokens');
  freshCache(model, n);
  let nll = 0;
  for (let p0 = 0; p0 < n; p0 += model.maxStepTokens) {
    const chunk = ids.slice(p0, Math.min(n, p0 + model.maxStepTokens));
    const { logits } = await model.forward(chunk, 'all-logits');
    if (!logits) throw new Error('an all-logits step returned no logits');
    for (let r = 0; r < chunk.length; r++) nll += rowNll(logits, r * vocab, vocab, ids[p0 + r + 1]);
  }
  if (model.kv.length !== n) throw new Error(`the cache holds ${model.kv.length} tokens after ${n}`);
  return { predicted: n, nll: nll / n };
}

/**
 * Index of the largest of logits[offset .. offset + vocab) (the first on ties, like the argmax kernel) and its
 * margin over the runner-up.
 */
function rowTop(logits: Float32Array, offset: number, vocab: number): { best: number; margin: number } {
  let best = 0;
  for (let j = 1; j < vocab; j++) if (logits[offset + j] > logits[offset + best]) best = j;
  let second = -Infinity;
  for (let j = 0; j < vocab; j++) if (j !== best) second = Math.max(second, logits[offset + j]);
  return { best, margin: logits[offset + best] - second };
}

/**
 * Teacher-forced top-1: the model reads `ids` in steps of maxStepTokens and each position's next-token argmax
 * is recorded, so top1[i] is the prediction after ids[0..i] (compared with another engine's, position by position).
 */
export async function teacherForcedTop1(model: LlamaModel, ids: number[]): Promise<{ top1: number[]; margin: number[] }> {
  const vocab = model.config.vocabSize;
  freshCache(model, ids.length);
  const top1: number[] = [];
  const margin: number[] = [];
  for (let p0 = 0; p0 < ids.length; p0 += model.maxStepTokens) {
    const chunk = ids.slice(p0, p0 + model.maxStepTokens);
    const { logits } = await model.forward(chunk, 'all-logits');
    if (!logits) throw new Error('an all-logits step returned no logits');
    for (let r = 0; r < chunk.length; r++) {
      const t = rowTop(logits, r * vocab, vocab);
      top1.push(t.best);
      margin.push(t.margin);
    }
  }
  return { top1, margin };
}

/**
 * Greedy continuation as the engine's generate loop runs it: prefill in chunks of maxStepTokens (the last
 * one reads the argmax), then one token per step. Returns `newTokens` ids; EOS does not stop it.
 */
export async function greedyContinuation(model: LlamaModel, promptIds: number[], newTokens: number): Promise<number[]> {
  freshCache(model, promptIds.length + newTokens);
  let next = -1;
  for (let p0 = 0; p0 < promptIds.length; p0 += model.maxStepTokens) {
    const chunk = promptIds.slice(p0, p0 + model.maxStepTokens);
    const last = p0 + chunk.length >= promptIds.length;
    next = (await model.forward(chunk, last ? 'token' : 'none')).nextToken;
  }
  const out = [next];
  while (out.length < newTokens) out.push((await model.forward([out[out.length - 1]], 'token')).nextToken);
  return out;
}

/** Allocated bytes of `cache` once reserved to `tokens` positions; the cache is destroyed afterwards. */
export function measureAllocation(cache: KvCache, shape: KvShape, tokens: number): QualityKvBytes {
  try {
    cache.reserve(tokens);
    const components: Record<string, number> = {};
    let kvBytes = 0;
    for (const l of cache.layerStats()) {
      kvBytes += l.total;
      for (const [k, v] of Object.entries(l.components)) components[k] = (components[k] ?? 0) + v;
    }
    return { tokens, kvBytes, fp16Bytes: fp16BaselineBytes(shape, tokens), components };
  } finally {
    cache.destroy();
  }
}

/** Run a perplexity, top-1 or greedy task on `model`, whose cache was just built for the task's mode. */
export async function runQualityTask(
  model: LlamaModel,
  tokenizer: ChatTokenizer,
  task: Exclude<QualityTask, { kind: 'bytes' }>,
  stats: () => EngineStats,
): Promise<QualityResult> {
  const t0 = performance.now();
  if (task.kind === 'perplexity') {
    const { predicted, nll } = await measurePerplexity(model, task.ids);
    const ms = performance.now() - t0;
    return { kind: 'perplexity', tokens: task.ids.length - 1, predicted, nll, ppl: Math.exp(nll), ms, kv: statsBytes(stats()) };
  }
  if (task.kind === 'top1') {
    const { top1, margin } = await teacherForcedTop1(model, task.ids);
    return { kind: 'top1', top1, margin, ms: performance.now() - t0, kv: statsBytes(stats()) };
  }
  const tokenIds = await greedyContinuation(model, task.promptIds, task.newTokens);
  const ms = performance.now() - t0;
  return { kind: 'greedy', tokenIds, text: tokenizer.decode(tokenIds), ms, kv: statsBytes(stats()) };
}
