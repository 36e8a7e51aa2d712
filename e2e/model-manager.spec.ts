/**
 * The model manager in real headless Chromium (SwiftShader WebGPU, real IndexedDB):
 *  (1) first visit: the offline demo button, then the golden stories260k text streams into the chat;
 *  (2) a download through the manager from a local hub: the bar reaches 100%; after a reload with the hub
 *      server stopped the model loads from IndexedDB;
 *  (7a) an invalid id, a missing repo and an unsupported architecture each give a clear message before any
 *      weight request, and the app stays usable;
 *  (7b) a corrupt and a truncated cached chunk each give a named error with a working "delete and download again";
 *  plus a local folder import that lands in the cache.
 * Each test starts its own hub server (scripts/hub-server.ts) on a free port, so it can stop it.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { sharedModelsDir, startHubServer, type HubServer } from '../scripts/hub-server';
import { GOLDEN } from './fixtures/golden';

const STORIES = path.join(sharedModelsDir(), 'stories260k');
const [{ ids: GOLDEN_IDS, text: GOLDEN_TEXT }] = GOLDEN;
/** The app's page. */
const APP_PAGE = '/';

const shot = (page: Page, name: string) => page.screenshot({ path: `e2e/screenshots/${name}.png`, fullPage: false });

/** Bring the model manager into view (phones show one view at a time; the panel has tabs). */
async function showModelManager(page: Page): Promise<void> {
  await page.waitForSelector('#model-manager', { state: 'attached' });
  if (!(await page.locator('#model-manager').isVisible())) {
    if (await page.locator('#view-settings').isVisible()) await page.click('#view-settings');
    if (await page.locator('#tab-model').isVisible()) await page.click('#tab-model');
  }
  await expect(page.locator('#model-manager')).toBeVisible();
}

async function openApp(page: Page, hub?: HubServer): Promise<void> {
  await page.goto(hub ? `${APP_PAGE}?hub=${encodeURIComponent(hub.baseUrl)}` : APP_PAGE);
  await showModelManager(page);
}

/** Every weight download (GET of a .safetensors file) the page or its worker starts; HEAD size probes are not downloads. */
function watchWeightRequests(page: Page): string[] {
  const seen: string[] = [];
  page.context().on('request', (r) => {
    if (r.method() === 'GET' && /\.safetensors(\?|$)/.test(r.url())) seen.push(r.url());
  });
  return seen;
}

/** Replace one IndexedDB chunk record: flip a byte ('corrupt') or keep only its first 1000 bytes ('truncate'). */
async function damageChunk(page: Page, key: string, how: 'corrupt' | 'truncate'): Promise<void> {
  await page.evaluate(
    async ({ key, how }) => {
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const r = indexedDB.open('kvtab-weights');
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
      const tx = db.transaction('chunks', 'readwrite');
      const store = tx.objectStore('chunks');
      const bytes = await new Promise<Uint8Array>((resolve) => {
        const r = store.get(key);
        r.onsuccess = () => resolve(r.result as Uint8Array);
      });
      if (!bytes) throw new Error(`no record ${key}`);
      if (how === 'corrupt') {
        const copy = bytes.slice();
        copy[4321] ^= 0xff;
        store.put(copy, key);
      } else store.put(bytes.slice(0, 1000), key);
      await new Promise((done) => (tx.oncomplete = done));
      db.close();
    },
    { key, how },
  );
}

/**
 * A front for a hub server that logs every request and cuts the first whole-file download of
 * model.safetensors after `cutAfter` bytes (the connection drops, as on a flaky network).
 */
async function flakyFront(hub: HubServer, cutAfter: number): Promise<{ baseUrl: string; log: string[]; close(): Promise<void> }> {
  const log: string[] = [];
  let cut = false;
  const server = http.createServer((req, res) => {
    log.push(`${req.method} ${req.url} ${req.headers.range ?? ''}`.trim());
    const upstream = http.request(hub.baseUrl + req.url, { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (cut || req.method !== 'GET' || req.headers.range || !req.url?.endsWith('model.safetensors')) return void up.pipe(res);
      cut = true;
      let sent = 0;
      up.on('data', (d: Buffer) => {
        if (sent + d.length <= cutAfter) {
          sent += d.length;
          res.write(d);
          return;
        }
        res.write(d.subarray(0, cutAfter - sent), () => res.destroy());
        up.destroy();
      });
    });
    req.pipe(upstream);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    close: () => new Promise<void>((done) => {
      server.close(() => done());
      server.closeAllConnections();
    }),
  };
}

/** Download stories260k through the "any model" field and wait for it to load. */
async function downloadStories(page: Page): Promise<void> {
  await page.fill('#model-id-input', 'local/stories260k');
  await page.click('#model-id-load');
  await expect(page.locator('#load-progress-text')).toContainText('Loaded local/stories260k', { timeout: 90_000 });
}

test.describe('model manager', () => {
  let hub: HubServer | null = null;
  test.beforeEach(async () => {
    hub = await startHubServer({ repos: { 'local/stories260k': STORIES } });
  });
  test.afterEach(async () => {
    await hub?.close();
    hub = null;
  });

  test('(2) download with a moving progress bar; after a reload with the hub stopped it loads from IndexedDB', async ({ page }) => {
    await openApp(page, hub!);
    // Record every text the progress line shows (a MutationObserver sees each one, however fast the load).
    await page.evaluate(() => {
      const w = window as unknown as { progressTexts: string[] };
      w.progressTexts = [];
      const target = document.querySelector('#load-progress-text') as HTMLElement;
      new MutationObserver(() => w.progressTexts.push(target.textContent ?? '')).observe(target, { childList: true, characterData: true, subtree: true });
    });
    const downloads = watchWeightRequests(page);
    await downloadStories(page);
    await expect(page.locator('#load-progress')).toHaveJSProperty('value', 1);
    expect(downloads).toEqual([`${hub!.baseUrl}/local/stories260k/resolve/main/model.safetensors`]); // the worker's fetch is seen
    const texts = await page.evaluate(() => (window as unknown as { progressTexts: string[] }).progressTexts);
    const percents = texts.flatMap((t) => [...t.matchAll(/\((\d+(?:\.\d)?)%\)/g)].map((m) => Number(m[1])));
    expect(texts.some((t) => t.startsWith('Downloading and uploading to the GPU: model.safetensors'))).toBe(true);
    expect(percents.length).toBeGreaterThan(0);
    expect(Math.max(...percents)).toBe(100);
    expect(texts.at(-1)).toMatch(/Loaded local\/stories260k: llama, 5 layers.*1\.1 MiB downloaded/);
    const cached = page.locator('#cache-list li[data-complete="true"]', { hasText: 'local/stories260k' });
    await expect(cached).toContainText('1.1 MiB');
    await expect(cached).toContainText('loads offline');
    await expect(page.locator('#storage-estimate')).toContainText(/Site storage: .* used of .* available/);
    await shot(page, 'model-manager-downloaded');

    await hub!.close();
    hub = null;
    await page.reload();
    await showModelManager(page);
    const weightRequests = watchWeightRequests(page);
    await page.locator('#cache-list li', { hasText: 'local/stories260k' }).locator('button', { hasText: 'Load' }).click();
    await expect(page.locator('#load-progress-text')).toContainText('Loaded local/stories260k', { timeout: 60_000 });
    await expect(page.locator('#load-progress-text')).toContainText('from the cache, no download');
    await expect(page.locator('#load-progress')).toHaveJSProperty('value', 1);
    await expect(page.locator('#model-error')).toBeHidden();
    expect(weightRequests).toEqual([]);
    await shot(page, 'model-manager-offline-reload');

    await page.setViewportSize({ width: 390, height: 844 });
    await showModelManager(page);
    await page.locator('#demo-load').scrollIntoViewIfNeeded();
    await shot(page, 'model-manager-phone');
    await page.locator('#model-catalog').scrollIntoViewIfNeeded();
    await shot(page, 'model-manager-phone-catalog');
  });

  test('(7a) invalid, missing and unsupported model ids: clear messages, no weight request, app usable', async ({ page }) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt2-'));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_embd: 768, n_layer: 12 }));
    fs.copyFileSync(path.join(STORIES, 'model.safetensors'), path.join(dir, 'model.safetensors'));
    hub!.setRepo('openai-community/gpt2', dir);
    const weightRequests = watchWeightRequests(page);
    await openApp(page, hub!);
    const error = page.locator('#model-error');

    await page.fill('#model-id-input', 'not a model id!');
    await page.click('#model-id-load');
    await expect(error).toBeVisible();
    await expect(error).toContainText('is not a model id');

    await page.fill('#model-id-input', 'local/does-not-exist');
    await page.click('#model-id-load');
    await expect(error).toContainText('There is no model "local/does-not-exist"');

    await page.fill('#model-id-input', 'openai-community/gpt2');
    await page.click('#model-id-load');
    await expect(error).toContainText('UnsupportedArchitectureError: Model type "gpt2" is not supported');
    await expect(page.locator('#load-progress-text')).toHaveText('Nothing was downloaded.');
    await shot(page, 'model-manager-unsupported');
    expect(weightRequests).toEqual([]);
    await expect(page.locator('#cache-list li[data-key]')).toHaveCount(0);

    // Still usable: the next load works.
    await downloadStories(page);
    await expect(error).toBeHidden();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const how of ['corrupt', 'truncate'] as const) {
    test(`(7b) a ${how === 'corrupt' ? 'corrupt' : 'truncated'} cached chunk: named error, then "delete and download again" repairs it`, async ({ page }) => {
      await openApp(page, hub!);
      await downloadStories(page);
      const key = `chunk|hub:${hub!.baseUrl}/local/stories260k@main|model.safetensors|0`;
      await damageChunk(page, key, how);

      await page.locator('#cache-list li', { hasText: 'local/stories260k' }).locator('button', { hasText: 'Load' }).click();
      const error = page.locator('#model-error');
      await expect(error).toBeVisible({ timeout: 60_000 });
      await expect(error).toHaveAttribute('data-error-name', 'CacheCorruptError');
      await expect(error).toContainText(how === 'corrupt' ? 'chunk 1 of 1 of model.safetensors failed its checksum' : 'is truncated: chunk 1 of 1 of model.safetensors holds 1000 bytes');
      await expect(error).toContainText('Delete the cached copy and download it again.');
      await expect(page.locator('#load-progress-text')).toContainText('failed');
      await shot(page, `model-manager-${how}-chunk`);

      await page.click('#model-error-action');
      await expect(page.locator('#load-progress-text')).toContainText('Loaded local/stories260k', { timeout: 90_000 });
      await expect(page.locator('#load-progress-text')).toContainText('1.1 MiB downloaded');
      await expect(error).toBeHidden();
      await expect(page.locator('#cache-list li[data-complete="true"]', { hasText: 'local/stories260k' })).toHaveCount(1);
    });
  }

  test('a download cut off mid-file resumes after a reload with one Range request for the missing chunks', async ({ page }) => {
    hub!.setRepo('local/byte-llama-12l', path.join(sharedModelsDir(), 'byte-llama-12l'));
    const size = fs.statSync(path.join(sharedModelsDir(), 'byte-llama-12l', 'model.safetensors')).size;
    const MiB = 2 ** 20;
    const front = await flakyFront(hub!, 10 * MiB); // two whole 4 MiB chunks arrive, the third breaks off
    try {
      await page.goto(`${APP_PAGE}?hub=${encodeURIComponent(front.baseUrl)}`);
      await showModelManager(page);
      await page.fill('#model-id-input', 'local/byte-llama-12l');
      await page.click('#model-id-load');
      const error = page.locator('#model-error');
      await expect(error).toHaveAttribute('data-error-name', 'DownloadInterruptedError', { timeout: 90_000 });
      await expect(error).toContainText('load again to resume');
      await expect(page.locator('#model-error-action')).toHaveText('Resume the download');
      const partial = page.locator('#cache-list li[data-complete="false"]', { hasText: 'local/byte-llama-12l' });
      await expect(partial).toContainText(/8\.0 MiB of 33\.5 MiB/);
      await shot(page, 'model-manager-interrupted');

      await page.reload();
      await showModelManager(page);
      await page.locator('#cache-list li', { hasText: 'local/byte-llama-12l' }).locator('button', { hasText: 'Resume' }).click();
      await expect(page.locator('#load-progress-text')).toContainText('Loaded local/byte-llama-12l', { timeout: 120_000 });
      await expect(page.locator('#load-progress-text')).toContainText('25.5 MiB downloaded');
      const weightGets = front.log.filter((l) => l.startsWith('GET /local/byte-llama-12l/resolve/main/model.safetensors'));
      expect(weightGets).toEqual(['GET /local/byte-llama-12l/resolve/main/model.safetensors', `GET /local/byte-llama-12l/resolve/main/model.safetensors bytes=${8 * MiB}-${size - 1}`]);
      await expect(page.locator('#cache-list li[data-complete="true"]', { hasText: 'local/byte-llama-12l' })).toContainText('33.5 MiB');
    } finally {
      await front.close();
    }
  });

  test('a local folder imports into the cache and loads again after a reload', async ({ page }) => {
    await openApp(page);
    await page.setInputFiles('#import-folder', STORIES);
    await expect(page.locator('#load-progress-text')).toContainText('Loaded stories260k', { timeout: 90_000 });
    const item = page.locator('#cache-list li', { hasText: 'imported folder' });
    await expect(item).toHaveAttribute('data-complete', 'true');
    await page.reload();
    await showModelManager(page);
    await page.locator('#cache-list li', { hasText: 'imported folder' }).locator('button', { hasText: 'Load' }).click();
    await expect(page.locator('#load-progress-text')).toContainText('from the cache, no download', { timeout: 60_000 });
    await expect(page.locator('#storage-estimate')).toContainText('Models: 1.1 MiB.');

    await page.locator('#cache-list li', { hasText: 'imported folder' }).locator('button', { hasText: 'Delete' }).click();
    await expect(page.locator('#cache-list li[data-key]')).toHaveCount(0);
    await expect(page.locator('#storage-estimate')).toContainText('Models: 0 B.');
    const records = await page.evaluate(
      () =>
        new Promise<number>((resolve) => {
          const open = indexedDB.open('kvtab-weights');
          open.onsuccess = () => {
            const count = open.result.transaction('chunks').objectStore('chunks').count();
            count.onsuccess = () => resolve(count.result);
          };
        }),
    );
    expect(records).toBe(0);
  });
});

test('(1) first visit: the offline demo streams the golden stories260k text', async ({ page }) => {
  await page.route(/^https?:\/\/(?!127\.0\.0\.1)/, (route) => route.abort()); // no network beyond the app itself
  await openApp(page);
  await page.click('#demo-load');
  await expect(page.locator('#load-progress-text')).toContainText('Loaded stories260k (offline demo)', { timeout: 60_000 });
  await expect(page.locator('#load-progress-text')).toContainText('shipped with the app');

  // Greedy, plain-text rendering: the golden continuation of "Once upon a time" (60 tokens) starts the reply.
  // 200 tokens, so that the reply spans enough frames to show it streaming at ~1000 tok/s (60 take ~4 frames).
  if (await page.locator('#view-settings').isVisible()) await page.click('#view-settings');
  await page.click('#tab-generation');
  await page.fill('#temperature', '0');
  await page.fill('#max-tokens', '200');
  await page.selectOption('#output-format', 'text');
  await page.locator('#max-tokens').dispatchEvent('change');
  if (await page.locator('#view-chat').isVisible()) await page.click('#view-chat');

  await page.evaluate(() => {
    const w = window as unknown as { lengths: number[] };
    w.lengths = [];
    new MutationObserver(() => {
      const body = document.querySelector('.msg.assistant');
      if (body) w.lengths.push((body.querySelector('.msg-body')?.textContent ?? '').length);
    }).observe(document.querySelector('#messages') as HTMLElement, { childList: true, characterData: true, subtree: true });
  });
  await page.fill('#chat-input', 'Once upon a time');
  await page.click('#send');
  const message = page.locator('.msg.assistant').last();
  await expect(message).toHaveAttribute('data-finish', 'length', { timeout: 120_000 });
  expect((await message.getAttribute('data-token-ids'))?.split(',').slice(0, 60).join(',')).toBe(GOLDEN_IDS);
  const text = (await message.locator('.msg-body').textContent()) ?? '';
  expect(text.startsWith(GOLDEN_TEXT)).toBe(true);
  const lengths = await page.evaluate(() => (window as unknown as { lengths: number[] }).lengths);
  expect(new Set(lengths.filter((n) => n > 0 && n < text.length)).size).toBeGreaterThan(5); // it streamed
  await shot(page, 'offline-demo-golden');
});
