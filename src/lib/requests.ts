/**
 * OpenAI request fields → the engine's input and GenerateParams. Unset sampling fields stay unset, so the
 * engine applies the model's generation_config.json defaults. Bad fields are InvalidRequestErrors naming the field.
 */
import { InvalidRequestError } from '../errors';
import type { ChatMessage, GenerateParams, KvBudget } from '../worker/api';
import type { ChatCompletionCreateParams, ChatCompletionMessageParam, SamplingParams } from './types';

/** Stop strings for chat prompts: the common end-of-turn markers (they end the reply if the model writes them as text). */
export const CHAT_STOP_STRINGS = ['<|im_end|>', '<|im_start|>', '<|eot_id|>', '<|end|>', '</s>'];

const ROLES = { system: 'system', developer: 'system', user: 'user', assistant: 'assistant' } as const;

function messageText(m: ChatCompletionMessageParam, i: number): string {
  if (typeof m.content === 'string') return m.content;
  if (Array.isArray(m.content)) {
    return m.content
      .map((part, j) => {
        if (part?.type !== 'text' || typeof part.text !== 'string') throw new InvalidRequestError(`messages[${i}].content[${j}]: only text parts are supported.`, `messages[${i}].content`);
        return part.text;
      })
      .join('');
  }
  throw new InvalidRequestError(`messages[${i}].content must be a string or an array of text parts.`, `messages[${i}].content`);
}

/** The conversation as the engine takes it. */
export function chatMessages(req: Pick<ChatCompletionCreateParams, 'messages'>): ChatMessage[] {
  if (!Array.isArray(req.messages) || req.messages.length === 0) throw new InvalidRequestError('messages must be a non-empty array.', 'messages');
  return req.messages.map((m, i) => {
    const role = ROLES[m?.role as keyof typeof ROLES];
    if (!role) throw new InvalidRequestError(`messages[${i}].role must be system, developer, user or assistant (got ${String(m?.role)}).`, `messages[${i}].role`);
    return { role, content: messageText(m, i) };
  });
}

function optionalNumber(req: SamplingParams, field: keyof SamplingParams, min: number, max: number, integer = false): number | undefined {
  const v = req[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new InvalidRequestError(`${field} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max} (got ${String(v)}).`, field);
  }
  return v;
}

function stopStrings(stop: SamplingParams['stop']): string[] {
  if (stop === undefined || stop === null) return [];
  const list = typeof stop === 'string' ? [stop] : stop;
  if (!Array.isArray(list) || list.some((s) => typeof s !== 'string' || s === '')) throw new InvalidRequestError('stop must be a non-empty string or an array of them.', 'stop');
  return list;
}

/**
 * GenerateParams for a request. `chatStops`: add the end-of-turn markers (chat prompts). The budget is the
 * engine's current one (kv.setBudget). Stats stream with every token, for the chunks' kv field.
 */
export function generateParamsOf(req: SamplingParams, chatStops: boolean, budget: KvBudget | null): GenerateParams {
  if (req.n !== undefined && req.n !== null && req.n !== 1) throw new InvalidRequestError(`n: one reply per request is supported (got ${String(req.n)}).`, 'n');
  const maxTokens = optionalNumber(req, 'max_tokens', 1, 1 << 20, true) ?? optionalNumber(req, 'max_completion_tokens', 1, 1 << 20, true);
  const params: GenerateParams = { streamStats: true };
  if (maxTokens !== undefined) params.maxNewTokens = maxTokens;
  const temperature = optionalNumber(req, 'temperature', 0, 2);
  if (temperature !== undefined) params.temperature = temperature;
  const topP = optionalNumber(req, 'top_p', 0, 1);
  if (topP !== undefined) params.topP = topP;
  const topK = optionalNumber(req, 'top_k', 0, 1 << 20, true);
  if (topK !== undefined) params.topK = topK;
  const penalty = optionalNumber(req, 'repetition_penalty', 0.01, 10);
  if (penalty !== undefined) params.repetitionPenalty = penalty;
  const seed = optionalNumber(req, 'seed', -(2 ** 53), 2 ** 53, true);
  if (seed !== undefined) params.seed = seed;
  const stop = [...stopStrings(req.stop), ...(chatStops ? CHAT_STOP_STRINGS : [])];
  if (stop.length) params.stop = [...new Set(stop)];
  if (budget) params.kvBudget = budget;
  return params;
}
