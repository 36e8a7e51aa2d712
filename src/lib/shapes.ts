/**
 * Reply pieces → OpenAI shapes: `chat.completion.chunk`s / a `chat.completion`, and `text_completion`s.
 * Every chunk carries the `kv` extension; the last one carries finish_reason and usage. One chunk per
 * generated token, so a consumer can count them.
 */
import type { EngineStats, FinishReason, GenerateResult } from '../worker/api';
import type { ReplyPiece } from './reply';
import type { ChatCompletion, ChatCompletionChunk, ChatFinishReason, Completion, CompletionUsage, KvChunkInfo } from './types';

/** Identifies the engine build in `system_fingerprint`. */
export const FINGERPRINT = 'kvtab';

/** What every response of one request shares. */
export interface ReplyMeta {
  id: string;
  created: number;
  model: string;
  /** Put full EngineStats in each chunk's kv.stats. */
  fullStats: boolean;
}

export function newMeta(prefix: 'chatcmpl' | 'cmpl', model: string, fullStats: boolean): ReplyMeta {
  const id = `${prefix}-${crypto.randomUUID?.() ?? Math.random().toString(36).slice(2)}`;
  return { id, created: Math.floor(Date.now() / 1000), model, fullStats };
}

/** OpenAI's reason for the engine's. */
export function finishReasonOf(reason: FinishReason): ChatFinishReason {
  if (reason === 'abort') return 'abort';
  if (reason === 'length' || reason === 'context') return 'length';
  return 'stop';
}

export function kvInfo(stats: EngineStats, meta: ReplyMeta, events: ReplyPiece['events']): KvChunkInfo {
  const info: KvChunkInfo = { mode: stats.kvMode, tokens: stats.tokensHeld, bytes: stats.kvBytes, fp16_bytes: stats.kvFp16EquivalentBytes, ratio: stats.kvCompressionRatio };
  if (events.length) info.events = events;
  if (meta.fullStats) info.stats = stats;
  return info;
}

export function usageOf(result: GenerateResult, firstTokenMs: number, totalMs: number): CompletionUsage {
  return {
    prompt_tokens: result.promptTokens,
    completion_tokens: result.tokenIds.length,
    total_tokens: result.promptTokens + result.tokenIds.length,
    extra: {
      prefill_tokens_per_s: result.prefillTokensPerSecond,
      decode_tokens_per_s: result.decodeTokensPerSecond,
      time_to_first_token_s: firstTokenMs / 1000,
      e2e_latency_s: totalMs / 1000,
      finish: result.finishReason,
      token_ids: result.tokenIds,
    },
  };
}

/** One streamed step of a reply, before it takes a chunk's shape: a token's text, or the end. */
type Step =
  | { kind: 'token'; text: string; first: boolean; kv?: KvChunkInfo }
  | { kind: 'done'; tail: string; first: boolean; finish: ChatFinishReason; usage: CompletionUsage; kv: KvChunkInfo };

/**
 * The steps of a reply: one per generated token (its text may be empty while a character is incomplete), then
 * the end with any text the stop-string check held back (and the events that came with it).
 */
async function* steps(pieces: AsyncIterable<ReplyPiece>, meta: ReplyMeta): AsyncGenerator<Step> {
  let first = true;
  let tail = '';
  const carried: ReplyPiece['events'] = [];
  for await (const p of pieces) {
    if (p.kind === 'done') {
      yield { kind: 'done', tail, first, finish: finishReasonOf(p.result.finishReason), usage: usageOf(p.result, p.firstTokenMs, p.totalMs), kv: kvInfo(p.stats, meta, [...carried, ...p.events]) };
    } else if (p.token.tokenId < 0) {
      tail += p.token.text;
      carried.push(...p.events);
    } else {
      yield { kind: 'token', text: p.token.text, first, ...(p.token.stats ? { kv: kvInfo(p.token.stats, meta, p.events) } : {}) };
      first = false;
    }
  }
}

/** The chat chunks of a reply: one per generated token (the first also carries the role), then the finish chunk. */
export async function* chatChunks(pieces: AsyncIterable<ReplyPiece>, meta: ReplyMeta): AsyncGenerator<ChatCompletionChunk> {
  const base = { id: meta.id, object: 'chat.completion.chunk' as const, created: meta.created, model: meta.model, system_fingerprint: FINGERPRINT };
  for await (const s of steps(pieces, meta)) {
    const text = s.kind === 'token' ? s.text : s.tail;
    const delta = s.first ? { role: 'assistant' as const, content: text } : text || s.kind === 'token' ? { content: text } : {};
    const finish = s.kind === 'done' ? s.finish : null;
    const chunk: ChatCompletionChunk = { ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
    if (s.kind === 'done') chunk.usage = s.usage;
    if (s.kv) chunk.kv = s.kv;
    yield chunk;
  }
}

/** The text-completion chunks of a reply, one per generated token, then the finish chunk. */
export async function* textChunks(pieces: AsyncIterable<ReplyPiece>, meta: ReplyMeta): AsyncGenerator<Completion> {
  const base = { id: meta.id, object: 'text_completion' as const, created: meta.created, model: meta.model, system_fingerprint: FINGERPRINT };
  for await (const s of steps(pieces, meta)) {
    const chunk: Completion = { ...base, choices: [{ index: 0, text: s.kind === 'token' ? s.text : s.tail, logprobs: null, finish_reason: s.kind === 'done' ? s.finish : null }] };
    if (s.kind === 'done') chunk.usage = s.usage;
    if (s.kv) chunk.kv = s.kv;
    yield chunk;
  }
}

/** Read a whole reply: its last piece (the result's text is the reply) and every context event. */
async function collect(pieces: AsyncIterable<ReplyPiece>): Promise<{ text: string; done: Extract<ReplyPiece, { kind: 'done' }>; events: ReplyPiece['events'] }> {
  const events: ReplyPiece['events'] = [];
  for await (const p of pieces) {
    events.push(...p.events);
    if (p.kind === 'done') return { text: p.result.text, done: p, events };
  }
  throw new Error('The reply ended without a result.');
}

/** What a whole reply (stream: false) shares with its kind: ids, usage, the kv extension. */
async function whole<T extends 'chat.completion' | 'text_completion'>(pieces: AsyncIterable<ReplyPiece>, meta: ReplyMeta, object: T) {
  const { text, done, events } = await collect(pieces);
  const base = { id: meta.id, object, created: meta.created, model: meta.model, system_fingerprint: FINGERPRINT };
  return { text, base, finish: finishReasonOf(done.result.finishReason), usage: usageOf(done.result, done.firstTokenMs, done.totalMs), kv: kvInfo(done.stats, meta, events) };
}

export async function chatCompletion(pieces: AsyncIterable<ReplyPiece>, meta: ReplyMeta): Promise<ChatCompletion> {
  const { text, base, finish, usage, kv } = await whole(pieces, meta, 'chat.completion');
  return { ...base, choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: finish }], usage, kv };
}

export async function textCompletion(pieces: AsyncIterable<ReplyPiece>, meta: ReplyMeta): Promise<Completion> {
  const { text, base, finish, usage, kv } = await whole(pieces, meta, 'text_completion');
  return { ...base, choices: [{ index: 0, text, logprobs: null, finish_reason: finish }], usage, kv };
}
