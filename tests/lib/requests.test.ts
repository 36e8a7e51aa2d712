/**
 * The library's pure parts: OpenAI request fields → GenerateParams (unset stays unset, bad fields name
 * themselves), chat messages, KV mode names, errors rehydrated from a worker, and the app's reply request.
 */
import { describe, expect, it } from 'vitest';
import { ContextOverflowError, EngineError, InvalidRequestError, KvBudgetTooSmallError, MemoryPlanError, openAiErrorKind } from '../../src/errors';
import { asEngineError, type Backend } from '../../src/lib/backend';
import { engineOn } from '../../src/lib/engine';
import { errorBody } from '../../src/lib/fetch';
import { parseKvMode } from '../../src/lib/kv-mode';
import { CHAT_STOP_STRINGS, chatMessages, generateParamsOf } from '../../src/lib/requests';
import { finishReasonOf } from '../../src/lib/shapes';
import { samplingOf } from '../../src/ui/chat/reply-stream';

describe('request fields → GenerateParams', () => {
  it('maps OpenAI names and leaves unset fields unset (the model defaults apply)', () => {
    expect(generateParamsOf({}, false, null)).toEqual({ streamStats: true });
    expect(generateParamsOf({ max_tokens: 9, temperature: 0.7, top_p: 0.9, top_k: 40, seed: 3, stop: 'END', repetition_penalty: 1.1 }, false, null)).toEqual({
      streamStats: true,
      maxNewTokens: 9,
      temperature: 0.7,
      topP: 0.9,
      topK: 40,
      seed: 3,
      stop: ['END'],
      repetitionPenalty: 1.1,
    });
    expect(generateParamsOf({ max_completion_tokens: 5, temperature: null }, false, null)).toEqual({ streamStats: true, maxNewTokens: 5 });
  });

  it('chat prompts add the end-of-turn markers once; the budget passes through', () => {
    const budget = { bytes: 1 << 20, autoEscalate: true };
    const p = generateParamsOf({ stop: ['<|im_end|>', 'x'] }, true, budget);
    expect(p.stop).toEqual(['<|im_end|>', 'x', ...CHAT_STOP_STRINGS.filter((s) => s !== '<|im_end|>')]);
    expect(p.kvBudget).toBe(budget);
  });

  it('bad fields are InvalidRequestErrors naming the field', () => {
    const bad = (req: object) => {
      try {
        generateParamsOf(req, false, null);
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidRequestError);
        return (err as InvalidRequestError).param;
      }
      return 'accepted';
    };
    expect(bad({ temperature: 3 })).toBe('temperature');
    expect(bad({ top_p: -0.1 })).toBe('top_p');
    expect(bad({ max_tokens: 1.5 })).toBe('max_tokens');
    expect(bad({ n: 2 })).toBe('n');
    expect(bad({ stop: [''] })).toBe('stop');
    expect(bad({ seed: 'x' })).toBe('seed');
    expect(bad({ n: 1 })).toBe('accepted');
  });

  it('messages: developer reads as system, text parts join, bad roles and parts are refused', () => {
    expect(chatMessages({ messages: [{ role: 'developer', content: 'a' }, { role: 'user', content: [{ type: 'text', text: 'b' }, { type: 'text', text: 'c' }] }] })).toEqual([
      { role: 'system', content: 'a' },
      { role: 'user', content: 'bc' },
    ]);
    expect(() => chatMessages({ messages: [] })).toThrow(InvalidRequestError);
    expect(() => chatMessages({ messages: [{ role: 'tool' as 'user', content: 'x' }] })).toThrow(/messages\[0\]\.role/);
    expect(() => chatMessages({ messages: [{ role: 'user', content: [{ type: 'image_url' } as never] }] })).toThrow(/only text parts/);
  });

  it('the app maps its GenerateParams back to a request, unset fields unset', () => {
    expect(samplingOf({ maxNewTokens: 8, streamStats: true })).toEqual({ stream: true, stream_options: { include_usage: true, include_kv_stats: true }, max_tokens: 8 });
    const req = samplingOf({ temperature: 0.5, topP: 0.8, topK: 3, seed: 1, stop: ['a'], repetitionPenalty: 1.2 });
    expect(generateParamsOf(req, false, null)).toEqual({ streamStats: true, temperature: 0.5, topP: 0.8, topK: 3, seed: 1, stop: ['a'], repetitionPenalty: 1.2 });
  });
});

describe('KV mode names', () => {
  it('round-trip the names the engine reports', () => {
    expect(parseKvMode('full')).toEqual({ mode: 'full' });
    expect(parseKvMode('kivi-2+rot')).toEqual({ mode: 'kivi', bits: 2, rotate: true });
    expect(parseKvMode('merge+kivi-4')).toEqual({ mode: 'merge+kivi', bits: 4 });
    expect(parseKvMode('zip+rot')).toEqual({ mode: 'zip', rotate: true });
    expect(() => parseKvMode('kivi-3')).toThrow(InvalidRequestError);
  });
});

describe('errors', () => {
  it('an error that crossed the worker (name and message only) becomes its class, with type and code', () => {
    const plain = Object.assign(new Error('no room'), { name: 'KvBudgetTooSmallError' });
    const typed = asEngineError(plain) as KvBudgetTooSmallError;
    expect(typed).toBeInstanceOf(KvBudgetTooSmallError);
    expect(typed).toBeInstanceOf(EngineError);
    expect(typed.message).toBe('no room');
    expect(typed.code).toBe('kv_budget_too_small');
    expect(typed.type).toBe('invalid_request_error');
    const other = new TypeError('x');
    expect(asEngineError(other)).toBe(other);
  });

  it('every named error has an OpenAI reading; unknown ones are server errors', () => {
    expect(new ContextOverflowError('x').code).toBe('context_length_exceeded');
    expect(new MemoryPlanError('x', {}).type).toBe('server_error');
    expect(openAiErrorKind('RangeError')).toEqual({ type: 'server_error', code: 'internal_error', status: 500 });
    expect(errorBody(new InvalidRequestError('bad n', 'n'))).toEqual({ status: 400, body: { error: { message: 'bad n', type: 'invalid_request_error', code: 'invalid_value', param: 'n' } } });
  });

  it('finish reasons: the engine reasons in OpenAI terms', () => {
    expect(['eos', 'stop', 'length', 'context', 'abort'].map((r) => finishReasonOf(r as never))).toEqual(['stop', 'stop', 'length', 'length', 'abort']);
  });
});

describe('engineOn', () => {
  it('a backend given as it is (the app passes its worker client) is there at once, before any await', () => {
    const crashListeners: Array<() => void> = [];
    const client = { onCrash: (l: () => void) => (crashListeners.push(l), () => {}) };
    const backend = { api: {}, callback: (f: unknown) => f, client, terminate: () => {} } as unknown as Backend;
    const engine = engineOn(backend);
    expect(engine.client).toBe(client);
    expect(crashListeners).toHaveLength(1);
    expect(engine.model).toBeNull();
  });
});
