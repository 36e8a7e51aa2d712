/**
 * The generate loop: reuse the cached prefix, prefill the rest of the prompt in chunks, then decode one
 * token per step until EOS, a stop string, the token limit, the context limit or an abort.
 */
import type { LlamaModel, StepOutput } from '../model/llama';
import { IncrementalDecoder, type ChatTokenizer } from '../model/tokenizer';
import type { ContextEvent, FinishReason, GenerateParams, GenerateResult, TokenEvent } from '../worker/api';
import { DEFAULT_SINK_TOKENS, keptAfterSlide, sinkAndRecent, windowPrompt, windowReason } from './context-window';
import { normalizeSamplingParams, Sampler } from './sampler';
import { StopStringMatcher } from './stop-strings';

/** Everything one generation needs. `history` (ids the cache holds) is updated in place. */
export interface GenerationRequest {
  model: LlamaModel;
  tokenizer: ChatTokenizer;
  history: number[];
  promptIds: number[];
  params: GenerateParams;
  onToken?: (t: TokenEvent) => void;
  shouldStop: () => boolean;
  /** Most tokens the cache may hold (the memory budget's limit); default and upper bound: the model's context. */
  limitTokens?: number;
  /** Attention-sink tokens kept when the cache slides to a recent window (default 4). */
  sinkTokens?: number;
  /** Hears each window change as it happens. */
  onContext?: (e: ContextEvent) => void;
}

const now = () => performance.now();

/**
 * Greedy steps queued on the GPU before the CPU looks at their tokens, on caches that can roll back: EOS,
 * stop strings, the token limit and an abort are seen up to this many steps late, and the cache is then cut
 * back to where the non-queued loop would have left it.
 */
export const QUEUED_DECODE_STEPS = 8;

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Prefill `ids` after the `keep` ids already cached, in chunks; the last chunk reads `read`. Stops early on abort. */
async function prefill(req: GenerationRequest, ids: readonly number[], keep: number, read: 'none' | 'token' | 'last-logits'): Promise<StepOutput | null> {
  const { model, history } = req;
  let out: StepOutput = { nextToken: -1 };
  for (let i = keep; i < ids.length; i += model.maxStepTokens) {
    if (req.shouldStop()) return null;
    const chunk = ids.slice(i, i + model.maxStepTokens);
    const isLast = i + chunk.length >= ids.length;
    out = await model.forward(chunk, isLast ? read : 'none');
    history.push(...chunk);
  }
  return out;
}

/** Run one generation to completion. */
export async function runGeneration(req: GenerationRequest): Promise<GenerateResult> {
  const { model, tokenizer, history } = req;
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
  // A prompt longer than the cache may hold keeps its sinks and its most recent tokens.
  const windowed = windowPrompt(req.promptIds, limit, maxContext, sinks);
  if (windowed.event) report(windowed.event);
  const promptIds = windowed.ids;

  // Keep the cached K/V of the longest shared prefix; the last prompt token is always recomputed for its logits.
  let keep = Math.min(commonPrefixLength(history, promptIds), promptIds.length - 1);
  if (!model.kv.truncate(keep)) {
    model.kv.reset();
    keep = 0;
  }
  history.length = keep;

  const read = sampler.isGreedy ? 'token' : 'last-logits';
  const prefillStart = now();
  const prefilled = await prefill(req, promptIds, keep, read);
  const prefillMs = now() - prefillStart;
  if (!prefilled) {
    // Stopped during prefill: nothing generated; the cache holds the chunks done so far.
    return { text: '', tokenIds: [], promptTokens: req.promptIds.length, finishReason: 'abort', prefillMs, decodeMs: 0, prefillTokensPerSecond: 0, decodeTokensPerSecond: 0, contextEvents: events };
  }
  let out: StepOutput = prefilled;

  const generated: number[] = [];
  const pick = (o: StepOutput) => (sampler.isGreedy ? o.nextToken : sampler.sample(o.logits as Float32Array, [...promptIds, ...generated]));
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
  const queued = sampler.isGreedy && model.kv.canRewind;
  for (;;) {
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
    if (model.kv.length + 1 > limit) {
      // The cache is full: rebuild it from the sinks and the recent tokens (contiguous positions) and go on.
      const kept = sinkAndRecent(history, sinks, keptAfterSlide(limit, sinks));
      const dropped = history.length - kept.length;
      model.kv.reset();
      history.length = 0;
      if (!(await prefill(req, kept, 0, 'none'))) {
        finishReason = 'abort';
        break;
      }
      report({ kind: 'window', at: 'decode', reason: windowReason(limit, maxContext), droppedTokens: dropped, sinkTokens: Math.min(sinks, kept.length - 1), keptTokens: kept.length, limitTokens: limit });
    }
    const steps = queued ? Math.min(QUEUED_DECODE_STEPS, params.maxNewTokens - generated.length, limit - model.kv.length) : 1;
    if (steps >= 2) {
      ahead = await model.decodeGreedy(next, steps);
      history.push(next, ...ahead.slice(0, -1));
      next = ahead.shift() as number;
      continue;
    }
    out = await model.forward([next], read);
    history.push(next);
    next = pick(out);
  }
  // Queued steps past the stop: the token the loop stopped at and those before the last of `ahead` were
  // fed already, ahead.length tokens more than the one-step loop feeds; cut them off.
  if (ahead.length > 0) {
    const cut = history.length - ahead.length;
    if (model.kv.truncate(cut)) history.length = cut;
  }
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
