/**
 * KV-compression quality measurements (docs/kv-compression.md, "Measuring quality"), shared by the Node
 * harness and the in-browser one (run inside the worker): perplexity with chunked prefill over the
 * compressed past, greedy continuations (also used for passkey retrieval), and allocated bytes.
 * Every measurement starts from an empty cache that the caller built for it.
 */
import type { KvCache, KvShape } from '../kv/types';
import { fp16BaselineBytes } from '../kv/types';
import { allocationOf } from '../kv/sizing';
import type { LlamaModel } from '../model/llama';
import type { ChatTokenizer } from '../model/tokenizer';
import type { ContextEvent, EngineStats, EvictionPolicy, KvModeSpec, QualityKvBytes, QualityResult, QualityTask } from '../worker/api';
import { CacheContents } from './cache-contents';
import { CacheWindow } from './cache-window';
import { DEFAULT_SINK_TOKENS } from './context-window';
import { emptyScores, logSoftmaxRow, scorePosition, type PositionScores } from './divergence';

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
  return { tokens: stats.tokensHeld, kvBytes: stats.kvBytes, fp16Bytes: stats.kvFp16EquivalentBytes, components: stats.kvComponents };
}

/** Empty the cache and size its allocation for exactly `tokens` positions, so its bytes are the cost of N tokens. */
function freshCache(model: LlamaModel, tokens: number): void {
  if (tokens > model.config.maxPositions) throw new RangeError(`${tokens} tokens exceed the context of ${model.config.maxPositions}`);
  model.kv.reset();
  model.kv.reserve(tokens);
}

/**
 * Teacher-forced logits: the model reads ids[0..n) in steps of maxStepTokens, each attending to the (compressed)
 * cache of the earlier steps plus itself; row i (f32 [n, vocab]) is the next-token logits after ids[0..i]. Without
 * `window` the cache is reserved to exactly n; with it, the cache may evict around each chunk (evictingLogits).
 */
export async function teacherForcedLogits(model: LlamaModel, ids: readonly number[], n = ids.length, window?: ChunkWindow): Promise<Float32Array> {
  const vocab = model.config.vocabSize;
  if (window) model.kv.reset();
  else freshCache(model, n);
  const out = new Float32Array(n * vocab);
  for (let p0 = 0; p0 < n; p0 += model.maxStepTokens) {
    const chunk = ids.slice(p0, Math.min(n, p0 + model.maxStepTokens));
    await window?.beforeChunk(chunk.length);
    const { logits } = await model.forward(chunk, 'all-logits');
    if (!logits) throw new Error('an all-logits step returned no logits');
    window?.afterChunk(chunk);
    out.set(logits.subarray(0, chunk.length * vocab), p0 * vocab);
  }
  if (!window && model.kv.length !== n) throw new Error(`the cache holds ${model.kv.length} tokens after ${n}`);
  return out;
}

/** What an evicting read does around each chunk: make room before it, record its tokens after it. */
interface ChunkWindow {
  beforeChunk(tokens: number): Promise<void>;
  afterChunk(ids: readonly number[]): void;
}

/**
 * Perplexity over `ids` = N + 1 tokens (BOS first): the logits at i predict ids[i + 1], so N tokens are scored
 * and the cache ends holding N. ppl = exp(mean NLL).
 */
export async function measurePerplexity(model: LlamaModel, ids: number[]): Promise<{ predicted: number; nll: number }> {
  const vocab = model.config.vocabSize;
  const n = ids.length - 1;
  if (n < 1) throw new RangeError('perplexity needs at least 2 tokens');
  const logits = await teacherForcedLogits(model, ids, n);
  let nll = 0;
  for (let i = 0; i < n; i++) nll += rowNll(logits, i * vocab, vocab, ids[i + 1]);
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

/** Teacher-forced top-1: top1[i] is the argmax after ids[0..i] (compared with another engine's, position by position). */
export async function teacherForcedTop1(model: LlamaModel, ids: number[]): Promise<{ top1: number[]; margin: number[] }> {
  const vocab = model.config.vocabSize;
  const logits = await teacherForcedLogits(model, ids);
  const top1: number[] = [];
  const margin: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const t = rowTop(logits, i * vocab, vocab);
    top1.push(t.best);
    margin.push(t.margin);
  }
  return { top1, margin };
}

/**
 * Scores of `logits` against `reference` (both f32 [n, vocab] from teacherForcedLogits over the same ids):
 * position i predicts ids[i + 1].
 */
export function divergenceScores(reference: Float32Array, logits: Float32Array, vocab: number, ids: readonly number[]): PositionScores {
  const n = ids.length - 1;
  const scores = emptyScores();
  for (let i = 0; i < n; i++) scorePosition(scores, logSoftmaxRow(reference, i * vocab, vocab), logSoftmaxRow(logits, i * vocab, vocab), ids[i + 1]);
  return scores;
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
    const { total, components } = allocationOf(cache);
    return { tokens, kvBytes: total, fp16Bytes: fp16BaselineBytes(shape, tokens), components };
  } finally {
    cache.destroy();
  }
}

/** Run a perplexity, top-1 or greedy task on `model`, whose cache was just built for the task's mode. */
export async function runQualityTask(
  model: LlamaModel,
  tokenizer: ChatTokenizer,
  task: Exclude<QualityTask, { kind: 'bytes' | 'divergence' }>,
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

/** The reference logits of the last divergence task, reused while its ids and reference mode repeat. */
export interface ReferenceMemo {
  key: string;
  logits: Float32Array;
}

/** How the divergence task's mode cache is built: capped at `cap` slots, with saliency tracking for eviction. */
export interface ModeCacheOptions {
  cap?: number;
  saliency?: boolean;
}

/**
 * A divergence task: teacher-forced logits under the reference mode (default full; taken from `memo` when the
 * same ids and reference were run last), then under the task's mode, scored position by position. With
 * `evict`, the mode's cache is capped at limitTokens slots and evicts before each chunk that would not fit
 * (src/engine/cache-window.ts, the generate loop's own eviction), so the score is what eviction costs.
 * `useMode` builds a fresh cache of a mode on the model.
 */
export async function runDivergenceTask(
  model: LlamaModel,
  task: Extract<QualityTask, { kind: 'divergence' }>,
  useMode: (spec: KvModeSpec, options?: ModeCacheOptions) => void,
  stats: () => EngineStats,
  memo: { current: ReferenceMemo | null },
): Promise<QualityResult> {
  const n = task.ids.length - 1;
  if (n < 1) throw new RangeError('a divergence task needs at least 2 tokens');
  const reference = task.reference ?? { mode: 'full' };
  const key = `${JSON.stringify(reference)}|${task.ids.join(',')}`;
  if (memo.current?.key !== key) {
    memo.current = null;
    useMode(reference);
    memo.current = { key, logits: await teacherForcedLogits(model, task.ids, n) };
  }
  const t0 = performance.now();
  const events: ContextEvent[] = [];
  let logits: Float32Array;
  if (task.evict) {
    useMode(task.kvMode, { cap: task.evict.limitTokens, saliency: task.evict.policy === 'saliency' });
    logits = await evictingLogits(model, task.ids, n, task.evict, (e) => events.push(e));
  } else {
    useMode(task.kvMode);
    logits = await teacherForcedLogits(model, task.ids, n);
  }
  const ms = performance.now() - t0;
  const scores = divergenceScores(memo.current.logits, logits, model.config.vocabSize, task.ids);
  return { kind: 'divergence', tokens: n, scores, ms, kv: statsBytes(stats()), ...(task.evict ? { events } : {}) };
}

/**
 * Teacher-forced logits (f32 [n, vocab]) under a cache limited to `limitTokens` slots: before each chunk of
 * maxStepTokens that would not fit, the cache evicts (sinks and, with 'saliency', the most-attended slots kept;
 * in place where the layout can, else by re-prefilling what it keeps), exactly as a budgeted chat does.
 */
export function evictingLogits(
  model: LlamaModel,
  ids: readonly number[],
  n: number,
  evict: { limitTokens: number; policy: EvictionPolicy; sinks?: number },
  report: (e: ContextEvent) => void,
): Promise<Float32Array> {
  const contents = new CacheContents();
  const window = new CacheWindow({
    model, contents, limit: evict.limitTokens, maxContext: model.config.maxPositions, sinks: evict.sinks ?? DEFAULT_SINK_TOKENS, policy: evict.policy, report, shouldStop: () => false, onPrefill: () => {},
  });
  return teacherForcedLogits(model, ids, n, {
    beforeChunk: async (tokens) => {
      if (!(await window.makeRoom(tokens, 'prompt'))) throw new Error('eviction stopped');
    },
    afterChunk: (chunk) => contents.push(chunk),
  });
}
