/**
 * The generate loop: reuse the cached prefix, prefill the rest of the prompt in chunks, then decode one
 * token per step until EOS, a stop string, the token limit, the context limit or an abort. A cache at its
 * limit evicts (src/engine/cache-window.ts) before the step that would not fit.
 */
import { NonFiniteLogitsError } from '../errors';
import type { LlamaModel, QueuedGreedy, StepOutput } from '../model/llama';
import { IncrementalDecoder, type ChatTokenizer } from '../model/tokenizer';
import type { ContextEvent, EvictionPolicy, FinishReason, GenerateParams, GenerateResult, TokenEvent } from '../worker/api';
import type { CacheContents, PositionRange } from './cache-contents';
import { CacheWindow, windowPromptIds } from './cache-window';
import { DEFAULT_SINK_TOKENS } from './context-window';
import { allFinite, normalizeSamplingParams, Sampler } from './sampler';
import { StopStringMatcher } from './stop-strings';

/** Everything one generation needs. `contents` (what the cache holds) is updated in place. */
export interface GenerationRequest {
  model: LlamaModel;
  tokenizer: ChatTokenizer;
  contents: CacheContents;
  promptIds: number[];
  /** Token ranges of the prompt an eviction keeps (system prompt, role markers). */
  protectedRanges?: PositionRange[];
  params: GenerateParams;
  onToken?: (t: TokenEvent) => void;
  shouldStop: () => boolean;
  /** Most tokens the cache may hold (the memory budget's limit); default and upper bound: the model's context. */
  limitTokens?: number;
  /** Attention-sink tokens an eviction keeps (default 4). */
  sinkTokens?: number;
  /** Which tokens an eviction keeps (default 'window'). */
  eviction?: EvictionPolicy;
  /** Hears each window change as it happens. */
  onContext?: (e: ContextEvent) => void;
  /** Counts prompt tokens dispatched in prefill steps. */
  onPrefill?: (tokens: number) => void;
}

const now = () => performance.now();

/**
 * Greedy steps queued on the GPU before the CPU looks at their tokens, on caches that can roll back: EOS,
 * stop strings, the token limit and an abort are seen up to this many steps late, and the cache is then cut
 * back to where the non-queued loop would have left it.
 */
export const QUEUED_DECODE_STEPS = 8;
/**
 * Steps queued per wait where the model runs the fused decode step (small models, ~1 ms a step): the wait
 * costs as much as a step or more there, and 32 steps stay a few tens of milliseconds of stop latency.
 */
export const FUSED_QUEUED_DECODE_STEPS = 32;
/**
 * The fused path queues the longer batches only after this many tokens of a reply: the first ones reach the
 * screen 8 at a time, so a short reply still streams word by word and the first words come sooner.
 */
export const FUSED_RAMP_TOKENS = 64;

/**
 * Greedy steps queued per wait for this model (on caches that can roll back), `generated` tokens into the reply
 * (default: past the ramp, the steady state the benchmark measures).
 */
export function queuedDecodeSteps(model: Pick<LlamaModel, 'usesFusedDecode'>, generated = Infinity): number {
  return model.usesFusedDecode() && generated >= FUSED_RAMP_TOKENS ? FUSED_QUEUED_DECODE_STEPS : QUEUED_DECODE_STEPS;
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Run one generation to completion. */
export async function runGeneration(req: GenerationRequest): Promise<GenerateResult> {
  const { model, tokenizer, contents } = req;
  const params = normalizeSamplingParams(req.params);
  const sampler = new Sampler(params);
  const maxContext = model.config.maxPositions;
  const limit = Math.min(req.limitTokens ?? maxContext, maxContext);
  const sinks = req.sinkTokens ?? DEFAULT_SINK_TOKENS;
  const events: ContextEvent[] = [];
  const report = (e: ContextEvent) => {
    events.push(e);
    req.onContext?.(e);
  };
  if (req.promptIds.length === 0) throw new RangeError('The prompt is empty.');
  const window = new CacheWindow({
    model, contents, limit, maxContext, sinks, policy: req.eviction ?? 'window', report, shouldStop: req.shouldStop, onPrefill: req.onPrefill ?? (() => {}),
  });
  // What the cache holds is a prefix of the chat's token stream (kept positions only, after evictions).
  if (!contents.matches(model.kv)) {
    model.kv.reset();
    contents.clear();
  }
  let promptIds = req.promptIds;
  let ranges = req.protectedRanges ?? [];
  // A prompt whose positions would pass the context, or longer than a limit its layout cannot evict in place
  // under, is windowed before its prefill (positions restart at 0).
  const inPlace = model.kv.evictionRules() !== null;
  if (promptIds.length >= maxContext || (!inPlace && promptIds.length >= limit)) {
    const windowed = windowPromptIds(promptIds, ranges, { limit, maxContext, sinks, reason: promptIds.length >= maxContext ? 'positions' : 'layout' });
    report(windowed.event);
    promptIds = windowed.ids;
    ranges = windowed.ranges;
  }

  // Keep the cached K/V of the longest shared prefix; the last prompt token is always recomputed for its logits.
  let keep = Math.min(commonPrefixLength(contents.ids, promptIds), promptIds.length - 1);
  if (model.kv.truncate(contents.slotsBelow(keep), keep)) contents.cut(keep);
  else {
    model.kv.reset();
    contents.clear();
    keep = 0;
  }
  contents.protect(ranges);

  const read = sampler.isGreedy ? 'token' : 'last-logits';
  const prefillStart = now();
  const prefilled = await window.prefill(promptIds.slice(keep), 'prompt', read);
  const prefillMs = now() - prefillStart;
  if (!prefilled) {
    // Stopped during prefill: nothing generated; the cache holds the chunks done so far.
    return { text: '', tokenIds: [], promptTokens: req.promptIds.length, finishReason: 'abort', prefillMs, decodeMs: 0, prefillTokensPerSecond: 0, decodeTokensPerSecond: 0, contextEvents: events };
  }
  let out: StepOutput = prefilled;

  const generated: number[] = [];
  // A NaN/Inf in the logits comes back as an id outside the vocabulary: the GPU argmax reports it as
  // NON_FINITE_TOKEN, and sampled decoding checks the logits it read (-1).
  const vocab = model.config.vocabSize;
  const pick = (o: StepOutput) => {
    if (sampler.isGreedy) return o.nextToken;
    const logits = o.logits as Float32Array;
    return allFinite(logits) ? sampler.sample(logits, [...promptIds, ...generated]) : -1;
  };
  const decoder = new IncrementalDecoder(tokenizer);
  const stops = new StopStringMatcher(params.stop);
  const eos = new Set(tokenizer.eosTokenIds);
  let text = '';
  let finishReason: FinishReason = 'length';
  const decodeStart = now();
  // What the last onToken call returned: across a worker boundary (comlink) a promise that settles once the page
  // handled that event. Events travel on their own port, so the result could overtake them; it waits for the last.
  let delivered: unknown;
  let next = pick(out);
  // Tokens the GPU already chose ahead (queued greedy steps); all but the last of them are in the cache.
  let ahead: number[] = [];
  // The batch queued after `ahead`'s (from its last token, on the GPU) before `ahead` was looked at; its steps
  // are in the cache, its tokens not yet read.
  let pending: QueuedGreedy | null = null;
  const queued = sampler.isGreedy && model.kv.canRewind;
  /** Steps of the next queued batch once `after` more tokens are out: the token limit and the room bound it. */
  const batchSteps = (after: number) => {
    const room = Math.min(limit - model.kv.length, maxContext - model.kv.nextPosition);
    return Math.min(queuedDecodeSteps(model, generated.length + after), params.maxNewTokens - generated.length - after, room);
  };
  for (;;) {
    if (!(next >= 0 && next < vocab)) {
      // Stop cleanly: the text so far has been delivered, and the engine resets the cache the NaN went into.
      await delivered;
      throw new NonFiniteLogitsError(generated.length + 1);
    }
    if (params.stopAtEos && eos.has(next)) {
      finishReason = 'eos';
      break;
    }
    generated.push(next);
    const fed = stops.push(decoder.push(next));
    text += fed.emit;
    delivered = req.onToken?.({ tokenId: next, text: fed.emit, index: generated.length - 1 });
    if (fed.stopped) {
      finishReason = 'stop';
      break;
    }
    if (generated.length >= params.maxNewTokens) break;
    if (req.shouldStop()) {
      finishReason = 'abort';
      break;
    }
    if (ahead.length > 0) {
      next = ahead.shift() as number;
      continue;
    }
    let batch = pending;
    pending = null;
    if (!batch) {
      // The cache is full: evict (in place where the layout can) and go on.
      if (!(await window.makeRoom(1, 'decode'))) {
        finishReason = 'abort';
        break;
      }
      const steps = queued ? batchSteps(0) : 1;
      if (steps >= 2) batch = await model.queueGreedy(next, steps);
    }
    if (batch) {
      ahead = await batch.tokens();
      contents.push([next, ...ahead.slice(0, -1)]);
      // Queue the batch after this one now, so the GPU runs while these tokens are handled: only where it needs
      // no eviction and no cache growth first (the steps the loop would queue after them anyway).
      const following = req.shouldStop() ? 0 : batchSteps(ahead.length);
      if (following >= 2 && model.kv.length + following <= model.kv.allocatedTokens) pending = await model.queueGreedy(null, following);
      next = ahead.shift() as number;
      continue;
    }
    out = await model.forward([next], read);
    contents.push([next]);
    next = pick(out);
  }
  // Queued steps past the stop: the token the loop stopped at and those before the last of `ahead` were
  // fed already, ahead.length tokens more than the one-step loop feeds, and a pending batch's steps after
  // them (not in `contents`); cut them off. The pending batch is waited for, so its readback is free again.
  const unread = pending?.steps ?? 0;
  if (pending) await pending.tokens();
  if (ahead.length + unread > 0 && model.kv.truncate(model.kv.length - ahead.length - unread)) contents.dropLast(ahead.length);
  if (finishReason !== 'stop') {
    // Bytes the decoder held back (an unfinished UTF-8 sequence) still pass through the stop matcher.
    const tail = stops.push(decoder.flush());
    const rest = tail.emit + (tail.stopped ? '' : stops.flush());
    if (rest) {
      text += rest;
      delivered = req.onToken?.({ tokenId: -1, text: rest, index: generated.length });
    }
  }
  const decodeMs = now() - decodeStart;
  await delivered;
  const prefilledTokens = promptIds.length - keep;
  return {
    text,
    tokenIds: generated,
    promptTokens: req.promptIds.length,
    finishReason,
    prefillMs,
    decodeMs,
    prefillTokensPerSecond: prefillMs > 0 ? (prefilledTokens * 1000) / prefillMs : 0,
    decodeTokensPerSecond: decodeMs > 0 && generated.length > 1 ? ((generated.length - 1) * 1000) / decodeMs : 0,
    contextEvents: events,
  };
}
