/**
 * The generate loop: reuse the cached prefix, prefill the rest of the prompt in chunks, then decode one
 * token per step until EOS, a stop string, the token limit, the context limit or an abort.
 */
import { ContextOverflowError } from '../errors';
import type { LlamaModel, StepOutput } from '../model/llama';
import { IncrementalDecoder, type ChatTokenizer } from '../model/tokenizer';
import type { FinishReason, GenerateParams, GenerateResult, TokenEvent } from '../worker/api';
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
}

const now = () => performance.now();

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Run one generation to completion. */
export async function runGeneration(req: GenerationRequest): Promise<GenerateResult> {
  const { model, tokenizer, history, promptIds } = req;
  const params = normalizeSamplingParams(req.params);
  const sampler = new Sampler(params);
  const maxContext = model.config.maxPositions;
  if (promptIds.length === 0) throw new RangeError('The prompt is empty.');
  if (promptIds.length >= maxContext) {
    throw new ContextOverflowError(
      `The prompt is ${promptIds.length} tokens but this model's context holds ${maxContext}. ` +
        'Shorten the message, start a new chat, or enable a memory budget that keeps a recent window.',
    );
  }

  // Keep the cached K/V of the longest shared prefix; the last prompt token is always recomputed for its logits.
  let keep = Math.min(commonPrefixLength(history, promptIds), promptIds.length - 1);
  if (!model.kv.truncate(keep)) {
    model.kv.reset();
    keep = 0;
  }
  history.length = keep;

  const read = sampler.isGreedy ? 'token' : 'last-logits';
  const prefillStart = now();
  let out: StepOutput = { nextToken: -1 };
  for (let i = keep; i < promptIds.length; i += model.maxStepTokens) {
    const chunk = promptIds.slice(i, i + model.maxStepTokens);
    const isLast = i + chunk.length >= promptIds.length;
    out = await model.forward(chunk, isLast ? read : 'none');
    history.push(...chunk);
  }
  const prefillMs = now() - prefillStart;

  const generated: number[] = [];
  const pick = (o: StepOutput) => (sampler.isGreedy ? o.nextToken : sampler.sample(o.logits as Float32Array, [...promptIds, ...generated]));
  const decoder = new IncrementalDecoder(tokenizer);
  const stops = new StopStringMatcher(params.stop);
  const eos = new Set(tokenizer.eosTokenIds);
  let text = '';
  let finishReason: FinishReason = 'length';
  const decodeStart = now();
  let next = pick(out);
  for (;;) {
    if (params.stopAtEos && eos.has(next)) {
      finishReason = 'eos';
      break;
    }
    generated.push(next);
    const fed = stops.push(decoder.push(next));
    text += fed.emit;
    req.onToken?.({ tokenId: next, text: fed.emit, index: generated.length - 1 });
    if (fed.stopped) {
      finishReason = 'stop';
      break;
    }
    if (generated.length >= params.maxNewTokens) break;
    if (req.shouldStop()) {
      finishReason = 'abort';
      break;
    }
    if (model.kv.length + 1 > maxContext) {
      finishReason = 'context';
      break;
    }
    out = await model.forward([next], read);
    history.push(next);
    next = pick(out);
  }
  if (finishReason !== 'stop') {
    // Bytes the decoder held back (an unfinished UTF-8 sequence) still pass through the stop matcher.
    const tail = stops.push(decoder.flush());
    const rest = tail.emit + (tail.stopped ? '' : stops.flush());
    if (rest) {
      text += rest;
      req.onToken?.({ tokenId: -1, text: rest, index: generated.length });
    }
  }
  const decodeMs = now() - decodeStart;
  const prefilled = promptIds.length - keep;
  return {
    text,
    tokenIds: generated,
    promptTokens: promptIds.length,
    finishReason,
    prefillMs,
    decodeMs,
    prefillTokensPerSecond: prefillMs > 0 ? (prefilled * 1000) / prefillMs : 0,
    decodeTokensPerSecond: decodeMs > 0 && generated.length > 1 ? ((generated.length - 1) * 1000) / decodeMs : 0,
  };
}
