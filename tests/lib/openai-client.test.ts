/**
 * The library through the official `openai` client (Node + Dawn): `engineFetch(createEngine(...))` serves
 * /v1/chat/completions, /v1/completions and /v1/models. stories260k's golden greedy text must come through a
 * streamed completion exactly; byte-llama-12l's ChatML chat through the client must equal the engine's own reply.
 */
import OpenAI, { APIUserAbortError, BadRequestError, NotFoundError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine';
import { loadTokenizer, type ChatTokenizer } from '../../src/model/tokenizer';
import { CHAT_STOP_STRINGS, createEngine, engineFetch, type KvtabEngine } from '../../src/lib';
import type { HubServer } from '../../scripts/hub-server';
import { DirSource } from '../helpers/dir-source';
import { nodeGpu } from '../helpers/gpu';
import { GOLDEN, sharedModel, startTestHub } from '../helpers/hub';

const golden = GOLDEN.onceUponATime;
let hub: HubServer;
beforeAll(async () => {
  hub = await startTestHub();
});
afterAll(async () => hub?.close());

function clientOf(engine: KvtabEngine): OpenAI {
  return new OpenAI({ fetch: engineFetch(engine), baseURL: 'http://kvtab.local/v1', apiKey: 'unused', dangerouslyAllowBrowser: true, maxRetries: 0 });
}

describe('openai client → engineFetch, stories260k (f32)', () => {
  const model = 'local/stories260k';
  let engine: KvtabEngine;
  let client: OpenAI;
  let tokenizer: ChatTokenizer;
  beforeAll(async () => {
    engine = createEngine({ worker: false, gpu: nodeGpu() });
    await engine.load(model, { hubUrl: hub.baseUrl, weightDtype: 'f32', kvDtype: 'f32' });
    client = clientOf(engine);
    tokenizer = await loadTokenizer(new DirSource(sharedModel('stories260k')));
  });
  afterAll(async () => engine?.unload());

  it('models.list names the loaded model', async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual([model]);
    expect((await client.models.retrieve(model)).id).toBe(model);
  });

  it('a streamed completion is the golden greedy text, with usage and the kv extension on the last chunk', async () => {
    const stream = await client.completions.create({ model, prompt: golden.prompt, max_tokens: golden.ids.length, temperature: 0, stream: true });
    let text = '';
    const chunks: OpenAI.Completion[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices[0]?.text ?? '';
    }
    expect(text).toBe(tokenizer.decode(golden.ids));
    const last = chunks.at(-1) as OpenAI.Completion & { usage: { extra: { token_ids: number[] } }; kv: { bytes: number; ratio: number; tokens: number } };
    expect(last.choices[0].finish_reason).toBe('length');
    expect(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).toBe(true);
    expect(last.usage.completion_tokens).toBe(golden.ids.length);
    expect(last.usage.prompt_tokens).toBe(golden.promptIds.length);
    expect(last.usage.extra.token_ids).toEqual(golden.ids);
    expect(last.kv.tokens).toBe(golden.promptIds.length + golden.ids.length - 1);
    expect(last.kv.bytes).toBeGreaterThan(0);
    expect(last.kv.ratio).toBeGreaterThan(0);
    expect(chunks.every((c) => c.object === 'text_completion' && c.id === chunks[0].id)).toBe(true);
  });

  it('the same completion not streamed; max_tokens limits it', async () => {
    const whole = await client.completions.create({ model, prompt: golden.prompt, max_tokens: golden.ids.length, temperature: 0 });
    expect(whole.choices[0].text).toBe(tokenizer.decode(golden.ids));
    const short = await client.completions.create({ model, prompt: golden.prompt, max_tokens: 7, temperature: 0 });
    expect(short.usage?.completion_tokens).toBe(7);
    expect(short.choices[0].finish_reason).toBe('length');
    expect(short.choices[0].text).toBe(tokenizer.decode(golden.ids.slice(0, 7)));
  });

  it('a stop string ends the reply before it, with finish_reason stop', async () => {
    const full = tokenizer.decode(golden.ids);
    const stop = full.slice(40, 46);
    const cut = full.indexOf(stop);
    expect(cut).toBeGreaterThan(0);
    const res = await client.completions.create({ model, prompt: golden.prompt, max_tokens: golden.ids.length, temperature: 0, stop: [stop] });
    expect(res.choices[0].text).toBe(full.slice(0, cut));
    expect(res.choices[0].finish_reason).toBe('stop');
  });

  it('abort mid-stream: the stream ends (openai ends an aborted stream quietly), the engine stops early, the next request is golden', async () => {
    const controller = new AbortController();
    const stream = await client.completions.create({ model, prompt: golden.prompt, max_tokens: 400, temperature: 0, stream: true }, { signal: controller.signal });
    let seen = 0;
    for await (const _ of stream) if (++seen === 3) controller.abort();
    expect(seen).toBeLessThan(400);
    // The engine stopped before its 400 tokens: the cache holds fewer than the prompt plus 400.
    expect((await engine.kv.stats()).tokensHeld).toBeLessThan(golden.promptIds.length + 399);
    const after = await client.completions.create({ model, prompt: golden.prompt, max_tokens: 10, temperature: 0 });
    expect(after.choices[0].text).toBe(tokenizer.decode(golden.ids.slice(0, 10)));
  });

  it('an aborted request that was not streamed rejects with APIUserAbortError', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(client.completions.create({ model, prompt: golden.prompt, max_tokens: 10 }, { signal: controller.signal })).rejects.toBeInstanceOf(APIUserAbortError);
  });

  it('the library stream stopped by its controller ends with finish_reason abort and fewer tokens', async () => {
    const stream = await engine.completions.create({ prompt: golden.prompt, max_tokens: 400, temperature: 0, stream: true });
    const chunks = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      if (chunks.length === 2) stream.controller.abort();
    }
    const last = chunks.at(-1);
    expect(last?.choices[0].finish_reason).toBe('abort');
    expect(last?.usage?.extra.finish).toBe('abort');
    expect(last?.usage?.completion_tokens).toBeLessThan(400);
  });

  it('errors are OpenAI errors with type, code and param', async () => {
    const wrong = client.completions.create({ model: 'org/other', prompt: 'x', max_tokens: 2 });
    await expect(wrong).rejects.toBeInstanceOf(NotFoundError);
    await expect(wrong).rejects.toMatchObject({ status: 404, code: 'model_not_found', type: 'not_found_error' });
    const two = client.completions.create({ model, prompt: 'x', n: 2 });
    await expect(two).rejects.toBeInstanceOf(BadRequestError);
    await expect(two).rejects.toMatchObject({ status: 400, code: 'invalid_value', param: 'n' });
    await expect(client.completions.create({ model, prompt: 'x', temperature: -1 })).rejects.toMatchObject({ status: 400, param: 'temperature' });
  });

  it('a KV budget too small for any window is KvBudgetTooSmallError (400 kv_budget_too_small); the engine stays usable', async () => {
    engine.kv.setBudget(64);
    try {
      await expect(engine.completions.create({ prompt: golden.prompt, max_tokens: 2 })).rejects.toMatchObject({ name: 'KvBudgetTooSmallError', code: 'kv_budget_too_small', type: 'invalid_request_error' });
      await expect(client.completions.create({ model, prompt: golden.prompt, max_tokens: 2 })).rejects.toMatchObject({ status: 400, code: 'kv_budget_too_small' });
    } finally {
      engine.kv.setBudget(null);
    }
    const ok = await client.completions.create({ model, prompt: golden.prompt, max_tokens: 3, temperature: 0 });
    expect(ok.choices[0].text).toBe(tokenizer.decode(golden.ids.slice(0, 3)));
  });

  it('a load during a streamed reply stops the reply (finish_reason abort), then loads; the next reply is golden', async () => {
    const stream = await engine.completions.create({ prompt: golden.prompt, max_tokens: 400, temperature: 0, stream: true });
    const chunks = [];
    let loading: Promise<unknown> | null = null;
    for await (const chunk of stream) {
      chunks.push(chunk);
      if (chunks.length === 2) loading = engine.load(model, { hubUrl: hub.baseUrl, weightDtype: 'f32', kvDtype: 'f32' });
    }
    await loading;
    expect(chunks.at(-1)?.choices[0].finish_reason).toBe('abort');
    expect(chunks.at(-1)?.usage?.completion_tokens).toBeLessThan(400);
    expect(engine.modelId).toBe(model);
    const after = await client.completions.create({ model, prompt: golden.prompt, max_tokens: 10, temperature: 0 });
    expect(after.choices[0].text).toBe(tokenizer.decode(golden.ids.slice(0, 10)));
  });

  it('concurrent requests queue instead of failing', async () => {
    const [a, b] = await Promise.all([
      client.completions.create({ model, prompt: golden.prompt, max_tokens: 12, temperature: 0 }),
      client.completions.create({ model, prompt: golden.prompt, max_tokens: 12, temperature: 0 }),
    ]);
    expect(a.choices[0].text).toBe(tokenizer.decode(golden.ids.slice(0, 12)));
    expect(b.choices[0].text).toBe(a.choices[0].text);
  });
});

describe('openai client → engineFetch, byte-llama-12l chat (ChatML)', () => {
  const model = 'local/byte-llama-12l';
  const messages = [
    { role: 'system' as const, content: 'You are a helpful assistant.' },
    { role: 'user' as const, content: 'Tell me a story about a cat.' },
  ];
  let engine: KvtabEngine;
  let client: OpenAI;
  let expected: { text: string; ids: number[] };
  beforeAll(async () => {
    const direct = new Engine(nodeGpu());
    await direct.load({ kind: 'hub', repo: model, baseUrl: hub.baseUrl });
    const r = await direct.generate(messages, { maxNewTokens: 24, temperature: 0, stop: CHAT_STOP_STRINGS });
    expected = { text: r.text, ids: r.tokenIds };
    await direct.unload();
    engine = createEngine({ worker: false, gpu: nodeGpu() });
    await engine.load(model, { hubUrl: hub.baseUrl });
    client = clientOf(engine);
  });
  afterAll(async () => engine?.unload());

  it('a streamed chat completion equals the engine reply to the same messages; chunks are OpenAI-shaped', async () => {
    const stream = await client.chat.completions.create({ model, messages, max_tokens: 24, temperature: 0, stream: true });
    let text = '';
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    expect(expected.ids.length).toBeGreaterThan(0);
    expect(text).toBe(expected.text);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    const last = chunks.at(-1) as OpenAI.ChatCompletionChunk & { kv: { mode: string; ratio: number } };
    expect(['stop', 'length']).toContain(last.choices[0].finish_reason);
    expect(last.usage?.completion_tokens).toBe(expected.ids.length);
    expect(last.kv.mode).toBe('full');
  });

  it('not streamed: a chat.completion with the same text; text parts read as text', async () => {
    const res = await client.chat.completions.create({
      model,
      messages: [messages[0], { role: 'user', content: [{ type: 'text', text: 'Tell me a story ' }, { type: 'text', text: 'about a cat.' }] }],
      max_tokens: 24,
      temperature: 0,
    });
    expect(res.object).toBe('chat.completion');
    expect(res.choices[0].message).toMatchObject({ role: 'assistant', content: expected.text });
  });

  it('abort during a reply that is not streamed: APIUserAbortError, and the engine stopped within a few tokens', async () => {
    const controller = new AbortController();
    const pending = client.chat.completions.create({ model, messages, max_tokens: 400, temperature: 0 }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 300);
    await expect(pending).rejects.toBeInstanceOf(APIUserAbortError);
    const stats = await engine.kv.stats();
    const done = await client.chat.completions.create({ model, messages, max_tokens: 4, temperature: 0 });
    expect(stats.tokensHeld).toBeLessThan((done.usage?.prompt_tokens ?? 0) + 399);
    expect(done.choices[0].message.content).toBe(expected.text.slice(0, done.choices[0].message.content?.length));
  });

  it('kv.setMode mid-chat: the next reply streams in kivi-2 with fewer bytes per token', async () => {
    const before = await client.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0 });
    const fullKv = (before as unknown as { kv: { bytes: number; tokens: number } }).kv;
    await engine.kv.setMode('kivi-2');
    const after = (await client.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0 })) as unknown as { kv: { mode: string; bytes: number; tokens: number; ratio: number } };
    expect(after.kv.mode).toBe('kivi-2');
    expect(after.kv.bytes / after.kv.tokens).toBeLessThan(fullKv.bytes / fullKv.tokens);
    await engine.kv.setMode({ mode: 'full' });
  });
});
