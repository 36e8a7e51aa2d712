/**
 * GGUF models in the real app (headless Chromium, SwiftShader WebGPU, real IndexedDB, the engine Worker): a
 * repo of .gguf files on a local hub lists its files with sizes and quantization; picking one downloads it
 * with a moving progress bar, and the chat streams the golden stories260k text (config, tokenizer and weights
 * all from the file). After a reload with the hub stopped, the cached file loads from IndexedDB with no
 * request and gives the golden text again. The GGUF v1 file gives it too, and a quantized (Q8_0) file loads
 * with its blocks kept on the GPU.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { sharedModelsDir, startHubServer, type HubServer } from '../scripts/hub-server';
import { ensureGguf } from '../scripts/gguf-models';
import { reply, send, setSampling, shot } from './chat-helpers';
import { GOLDEN } from './fixtures/golden';

const STORIES = path.join(sharedModelsDir(), 'stories260k');
const [{ ids: GOLDEN_IDS, text: GOLDEN_TEXT }] = GOLDEN;
const REPO = 'local/stories260k-gguf';

async function showModelTab(page: Page): Promise<void> {
  await page.click('#tab-model');
  await expect(page.locator('#model-manager')).toBeVisible();
}

async function goldenReply(page: Page): Promise<void> {
  await page.click('#new-chat');
  await page.click('#tab-generation');
  await page.selectOption('#output-format', 'text');
  await setSampling(page, { temperature: 0, maxTokens: GOLDEN_IDS.split(',').length });
  const r = await send(page, 'Once upon a time');
  await expect(r).toHaveAttribute('data-finish', 'length', { timeout: 120_000 });
  await expect(r).toHaveAttribute('data-token-ids', GOLDEN_IDS);
  expect(await reply(page, 0).locator('.msg-body').textContent()).toBe(GOLDEN_TEXT);
}

/** Every GET of a .gguf file the page or its worker starts. */
function watchGgufRequests(page: Page): string[] {
  const seen: string[] = [];
  page.context().on('request', (r) => {
    if (r.method() === 'GET' && /\.gguf(\?|$)/.test(r.url())) seen.push(r.url());
  });
  return seen;
}

test.describe('GGUF repos', () => {
  let hub: HubServer | null = null;
  let dir = '';
  test.beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvtab-gguf-e2e-'));
    fs.copyFileSync(path.join(STORIES, 'stories260k-f32-v3.gguf'), path.join(dir, 'stories260k-F32.gguf'));
    fs.copyFileSync(path.join(STORIES, 'stories260k-f32-ggufv1.gguf'), path.join(dir, 'stories260k-F32-v1.gguf'));
    const q8 = await ensureGguf(path.join(dir, 'written'), 'stories260k', 'Q8_0');
    fs.copyFileSync(q8.file, path.join(dir, 'stories260k-Q8_0.gguf'));
    fs.rmSync(path.join(dir, 'written'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'README.md'), 'GGUF files of stories260k');
    const good = fs.readFileSync(path.join(STORIES, 'stories260k-f32-v3.gguf'));
    fs.writeFileSync(path.join(dir, 'broken-truncated.gguf'), good.subarray(0, Math.floor(good.length * 0.6)));
  });
  test.beforeEach(async () => {
    hub = await startHubServer({ repos: { [REPO]: dir } });
  });
  test.afterEach(async () => {
    await hub?.close();
    hub = null;
  });
  test.afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('pick a file, progress to 100%, golden chat; offline reload loads it from IndexedDB', async ({ page }) => {
    await page.goto(`/?hub=${encodeURIComponent(hub!.baseUrl)}`);
    await showModelTab(page);
    await page.evaluate(() => {
      const w = window as unknown as { progressTexts: string[] };
      w.progressTexts = [];
      const target = document.querySelector('#load-progress-text') as HTMLElement;
      new MutationObserver(() => w.progressTexts.push(target.textContent ?? '')).observe(target, { childList: true, characterData: true, subtree: true });
    });
    await page.fill('#model-id-input', REPO);
    await page.click('#model-id-load');
    const files = page.locator('#gguf-files li');
    await expect(files).toHaveCount(4);
    await expect(page.locator('#model-id-info')).toContainText('4 GGUF files');
    const f32 = page.locator('#gguf-files li', { hasText: 'stories260k-F32.gguf' });
    await expect(f32).toContainText('F32');
    await expect(f32).toContainText('1.1 MiB');
    await expect(page.locator('#gguf-files li', { hasText: 'stories260k-Q8_0.gguf' })).toContainText('Q8_0');
    await shot(page, 'gguf-picker');

    const downloads = watchGgufRequests(page);
    await f32.locator('button').click();
    await expect(page.locator('#load-progress-text')).toContainText(`Loaded ${REPO}/stories260k-F32.gguf`, { timeout: 90_000 });
    await expect(page.locator('#load-progress')).toHaveJSProperty('value', 1);
    expect(downloads).toEqual([`${hub!.baseUrl}/${REPO}/resolve/main/stories260k-F32.gguf`]);
    const texts = await page.evaluate(() => (window as unknown as { progressTexts: string[] }).progressTexts);
    const percents = texts.flatMap((t) => [...t.matchAll(/\((\d+(?:\.\d)?)%\)/g)].map((m) => Number(m[1])));
    expect(Math.max(...percents)).toBe(100);
    expect(texts.at(-1)).toMatch(/llama, 5 layers, f32 weights \(1\.1 MiB\).*1\.1 MiB downloaded/);
    await expect(page.locator('#meter-weights')).toContainText('weights 1.1');
    await goldenReply(page);
    await shot(page, 'gguf-golden');

    await hub!.close();
    hub = null;
    await page.reload();
    await showModelTab(page);
    const cached = page.locator('#cache-list li[data-complete="true"]', { hasText: 'stories260k-F32.gguf' });
    await expect(cached).toContainText('loads offline');
    const offline = watchGgufRequests(page);
    await cached.locator('button', { hasText: 'Load' }).click();
    await expect(page.locator('#load-progress-text')).toContainText('from the cache, no download', { timeout: 60_000 });
    expect(offline).toEqual([]);
    await goldenReply(page);
  });

  test('a truncated GGUF file: a named error in the page, and the worker then loads a good file', async ({ page }) => {
    await page.goto(`/?hub=${encodeURIComponent(hub!.baseUrl)}`);
    await showModelTab(page);
    await page.fill('#model-id-input', `${REPO}/broken-truncated.gguf`);
    await page.click('#model-id-load');
    await expect(page.locator('#model-error')).toBeVisible({ timeout: 60_000 });
    await expect(page.locator('#model-error')).toHaveAttribute('data-error-name', 'ModelFormatError');
    await expect(page.locator('#model-error')).toContainText(/truncated|ends at byte/);
    await page.fill('#model-id-input', `${REPO}/stories260k-F32.gguf`);
    await page.click('#model-id-load');
    await expect(page.locator('#load-progress-text')).toContainText(`Loaded ${REPO}/stories260k-F32.gguf`, { timeout: 90_000 });
    await goldenReply(page);
  });

  test('weight storage q8 in the model manager: the demo loads as Q8_0 blocks, kept after a reload, and still gives the golden text', async ({ page }) => {
    await page.goto('/');
    await showModelTab(page);
    await page.selectOption('#weight-dtype', 'q8');
    await page.click('#demo-load');
    await expect(page.locator('#load-progress-text')).toContainText(/Loaded stories260k \(offline demo\): llama, 5 layers, q8_0\+f32 weights \(463\.7 KiB\)/, { timeout: 90_000 });
    await expect(page.locator('#meter-weights')).toContainText(/weights 463\.7 KiB/);
    await goldenReply(page);
    await page.reload();
    await showModelTab(page);
    await expect(page.locator('#weight-dtype')).toHaveValue('q8');
  });

  test('the GGUF v1 file gives the golden text; a Q8_0 file loads with its blocks on the GPU', async ({ page }) => {
    await page.goto(`/?hub=${encodeURIComponent(hub!.baseUrl)}`);
    await showModelTab(page);
    await page.fill('#model-id-input', `${REPO}/stories260k-F32-v1.gguf`);
    await page.click('#model-id-load');
    await expect(page.locator('#load-progress-text')).toContainText(`Loaded ${REPO}/stories260k-F32-v1.gguf`, { timeout: 90_000 });
    await goldenReply(page);

    await showModelTab(page);
    await page.fill('#model-id-input', `${REPO}:stories260k-Q8_0.gguf`);
    await page.click('#model-id-load');
    await expect(page.locator('#load-progress-text')).toContainText(/Loaded .*stories260k-Q8_0\.gguf: llama, 5 layers, q8_0\+f32 weights/, { timeout: 90_000 });
    const r = await send(page, 'Once upon a time');
    await expect(r).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
    expect((await r.locator('.msg-body').textContent())?.length).toBeGreaterThan(20);
  });
});
