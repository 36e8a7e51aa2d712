/**
 * The library build (`npm run build:lib`, dist-lib/) in real headless Chromium: its engine runs in its own worker,
 * the official `openai` client talks to it through `engineFetch`, and examples/minimal.html works as shipped.
 * The repo root is served by a static server, so the page imports /dist-lib/kvtab.js and
 * /node_modules/openai/index.mjs (the client has no dependencies) as any app would; models come from the local hub.
 */
import { execSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, test } from '@playwright/test';
import { HUB } from './chat-helpers';
import { GOLDEN } from './fixtures/golden';
import { startStaticServer, type StaticServer } from './fixtures/static-server';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
let site: StaticServer;

test.beforeAll(async () => {
  execSync('npx vite build -c vite.lib.config.ts && npx tsc -p tsconfig.lib.json', { cwd: ROOT, stdio: 'pipe' });
  site = await startStaticServer(ROOT);
});
test.afterAll(async () => site?.close());

/** In the page: the library loaded with `repo` from the hub, and an openai client over it (window.kv). */
async function openLibrary(page: import('@playwright/test').Page, repo: string): Promise<void> {
  await page.goto(`${site.baseUrl}/e2e/fixtures/lib-page.html`);
  await page.evaluate(
    async ({ hub, repo }) => {
      const libUrl = '/dist-lib/kvtab.js';
      const openaiUrl = '/node_modules/openai/index.mjs';
      const lib = await import(libUrl);
      const { default: OpenAI } = await import(openaiUrl);
      const engine = lib.createEngine();
      await engine.load(repo, { hubUrl: hub });
      const client = new OpenAI({ fetch: lib.engineFetch(engine), baseURL: `${location.origin}/v1`, apiKey: 'unused', dangerouslyAllowBrowser: true, maxRetries: 0 });
      (window as unknown as { kv: unknown }).kv = { lib, engine, client };
    },
    { hub: HUB, repo },
  );
}

test('library in Chromium: the openai client streams the golden stories260k completion; max_tokens, stop, abort and errors', async ({ page }) => {
  await openLibrary(page, 'local/stories260k');
  const g = GOLDEN[0];
  const n = g.ids.split(',').length;
  const out = await page.evaluate(
    async ({ prompt, n, text }) => {
      const { client } = (window as unknown as { kv: { client: any } }).kv;
      const model = 'local/stories260k';
      const models = (await client.models.list()).data.map((m: { id: string }) => m.id);
      const stream = await client.completions.create({ model, prompt, max_tokens: n, temperature: 0, stream: true });
      const pieces: string[] = [];
      let last: any = null;
      for await (const chunk of stream) {
        pieces.push(chunk.choices[0].text);
        last = chunk;
      }
      const whole = await client.completions.create({ model, prompt, max_tokens: 7, temperature: 0 });
      const stop = text.slice(40, 46);
      const stopped = await client.completions.create({ model, prompt, max_tokens: n, temperature: 0, stop: [stop] });
      const controller = new AbortController();
      const aborted = await client.completions.create({ model, prompt, max_tokens: 300, temperature: 0, stream: true }, { signal: controller.signal });
      let seen = 0;
      for await (const _ of aborted) if (++seen === 3) controller.abort();
      const after = await client.completions.create({ model, prompt, max_tokens: 5, temperature: 0 });
      let error: unknown = null;
      try {
        await client.completions.create({ model: 'org/not-loaded', prompt, max_tokens: 2 });
      } catch (e) {
        const err = e as { status: number; code: string; type: string; constructor: { name: string } };
        error = { status: err.status, code: err.code, type: err.type, cls: err.constructor.name };
      }
      // An error thrown in the worker arrives as its named class, with OpenAI's type and code.
      const { engine, lib } = (window as unknown as { kv: { engine: any; lib: any } }).kv;
      engine.kv.setBudget(64);
      let budgetError: unknown = null;
      try {
        await engine.completions.create({ prompt, max_tokens: 2 });
      } catch (e) {
        const err = e as { name: string; code: string; type: string };
        budgetError = { name: err.name, cls: e instanceof lib.KvBudgetTooSmallError, base: e instanceof lib.EngineError, code: err.code, type: err.type };
      }
      engine.kv.setBudget(null);
      return {
        budgetError,
        models,
        text: pieces.join(''),
        first7: pieces.slice(0, 7).join(''),
        finish: last.choices[0].finish_reason,
        ids: last.usage.extra.token_ids.join(','),
        kv: last.kv,
        whole: { text: whole.choices[0].text, tokens: whole.usage.completion_tokens, finish: whole.choices[0].finish_reason },
        stopped: { text: stopped.choices[0].text, finish: stopped.choices[0].finish_reason, stop },
        seen,
        after: after.choices[0].text,
        first5: pieces.slice(0, 5).join(''),
        error,
      };
    },
    { prompt: g.prompt, n, text: g.text },
  );
  expect(out.models).toEqual(['local/stories260k']);
  expect(out.text).toBe(g.text);
  expect(out.ids).toBe(g.ids);
  expect(out.finish).toBe('length');
  expect(out.kv.mode).toBe('full');
  expect(out.kv.bytes).toBeGreaterThan(0);
  expect(out.whole).toEqual({ text: out.first7, tokens: 7, finish: 'length' });
  expect(out.stopped.text).toBe(g.text.slice(0, g.text.indexOf(out.stopped.stop)));
  expect(out.stopped.finish).toBe('stop');
  expect(out.seen).toBeLessThan(300);
  expect(out.after).toBe(out.first5);
  expect(out.budgetError).toEqual({ name: 'KvBudgetTooSmallError', cls: true, base: true, code: 'kv_budget_too_small', type: 'invalid_request_error' });
  expect(out.error).toEqual({ status: 404, code: 'model_not_found', type: 'not_found_error', cls: 'NotFoundError' });
});

test('library in Chromium: a byte-llama-12l ChatML chat through the openai client equals the library reply', async ({ page }) => {
  await openLibrary(page, 'local/byte-llama-12l');
  const out = await page.evaluate(async () => {
    const { engine, client } = (window as unknown as { kv: { engine: any; client: any } }).kv;
    const messages = [{ role: 'user', content: 'Hi' }];
    const direct = await engine.chat.completions.create({ messages, max_tokens: 6, temperature: 0 });
    const stream = await client.chat.completions.create({ model: 'local/byte-llama-12l', messages, max_tokens: 6, temperature: 0, stream: true });
    let text = '';
    let role = '';
    let last: any = null;
    for await (const chunk of stream) {
      role ||= chunk.choices[0].delta.role ?? '';
      text += chunk.choices[0].delta.content ?? '';
      last = chunk;
    }
    return { direct: direct.choices[0].message.content, text, role, usage: last.usage, object: last.object };
  });
  expect(out.text).toBe(out.direct);
  expect(out.role).toBe('assistant');
  expect(out.object).toBe('chat.completion.chunk');
  // "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n": 3 control tokens and 18 bytes, so the ChatML template ran.
  expect(out.usage.prompt_tokens).toBe(21);
  expect(out.usage.completion_tokens).toBeGreaterThan(0);
});

test('examples/minimal.html streams a reply and the KV cache size from the library build', async ({ page }) => {
  await page.goto(`${site.baseUrl}/examples/minimal.html?hub=${encodeURIComponent(HUB)}&model=local/stories260k`);
  await expect(page.locator('#out')).toHaveText('local/stories260k is ready.', { timeout: 90_000 });
  await page.click('#go');
  await expect(page.locator('#kv')).toHaveText(/^KV full: [\d.]+ KiB, [\d.]+× vs fp16$/, { timeout: 90_000 });
  await expect(page.locator('#out')).not.toHaveText('');
  await expect(page.locator('#out')).not.toContainText('is ready');
});
