/**
 * The app's replies go through the library's public API, the same path other apps use: a chat prompt through
 * `engine.chat.completions.create`, a plain continuation through `engine.completions.create`, both streamed.
 * This adapter maps the app's GenerateParams to the request (the budget through `engine.kv.setBudget`) and the
 * chunks back to the token and context callbacks the chat view already has.
 */
import type { KvtabEngine } from '../../lib/engine';
import type { ChatCompletionChunk, Completion, SamplingParams } from '../../lib/types';
import type { ChatMessage, ContextEvent, GenerateParams, GenerateResult, TokenEvent } from '../../worker/api';

/** The request fields for GenerateParams (unset fields stay unset: the model's defaults apply). */
export function samplingOf(p: GenerateParams): SamplingParams {
  const req: SamplingParams = { stream: true, stream_options: { include_usage: true, include_kv_stats: !!p.streamStats } };
  if (p.maxNewTokens !== undefined) req.max_tokens = p.maxNewTokens;
  if (p.temperature !== undefined) req.temperature = p.temperature;
  if (p.topP !== undefined) req.top_p = p.topP;
  if (p.topK !== undefined) req.top_k = p.topK;
  if (p.repetitionPenalty !== undefined) req.repetition_penalty = p.repetitionPenalty;
  if (p.seed !== undefined) req.seed = p.seed;
  if (p.stop?.length) req.stop = p.stop;
  return req;
}

/** Stream a reply to `input`: `onToken` per generated token (stats when asked), `onContext` per event; resolves with the result. */
export async function streamReply(
  engine: KvtabEngine,
  input: string | ChatMessage[],
  params: GenerateParams,
  onToken: (t: TokenEvent) => void,
  onContext: (e: ContextEvent) => void,
): Promise<GenerateResult> {
  engine.kv.setBudget(params.kvBudget ?? null);
  const req = samplingOf(params);
  const stream = typeof input === 'string' ? await engine.completions.create({ ...req, prompt: input, stream: true }) : await engine.chat.completions.create({ ...req, messages: input, stream: true });
  let index = 0;
  let reply = '';
  for await (const chunk of stream as AsyncIterable<ChatCompletionChunk | Completion>) {
    for (const e of chunk.kv?.events ?? []) onContext(e);
    const choice = chunk.choices[0];
    const text = 'delta' in choice ? (choice.delta.content ?? '') : choice.text;
    if (chunk.usage) {
      if (text) onToken({ tokenId: -1, text, index });
      reply += text;
      const u = chunk.usage;
      return {
        text: reply,
        tokenIds: u.extra.token_ids,
        promptTokens: u.prompt_tokens,
        finishReason: u.extra.finish,
        prefillMs: u.extra.prefill_tokens_per_s > 0 ? (1000 * u.prompt_tokens) / u.extra.prefill_tokens_per_s : 0,
        decodeMs: u.extra.decode_tokens_per_s > 0 ? (1000 * u.completion_tokens) / u.extra.decode_tokens_per_s : 0,
        prefillTokensPerSecond: u.extra.prefill_tokens_per_s,
        decodeTokensPerSecond: u.extra.decode_tokens_per_s,
      };
    }
    // Chunks carry no token ids: the index stands in (non-negative marks a generated token, −1 held-back text).
    onToken({ tokenId: index, text, index, ...(chunk.kv?.stats ? { stats: chunk.kv.stats } : {}) });
    reply += text;
    index++;
  }
  throw new Error('The reply ended without its last chunk.');
}

