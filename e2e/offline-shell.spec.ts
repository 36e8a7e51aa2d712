/**
 * The offline app shell (vite-plugin-pwa's Workbox service worker, src/ui/app-update.ts), against servers the
 * tests can stop: the built app (`dist/`, which playwright.config.ts's webServer has just built) served by
 * e2e/fixtures/static-server.ts, and a local hub (scripts/hub-server.ts).
 *   (a) after one visit, with both servers stopped, the page reloads, a hub model cached in IndexedDB loads and
 *       chats, and so does the offline demo run on that visit (cached by the service worker when first used);
 *   (b) a new build on the server is installed in the background; the next visit shows "A new version of kvtab
 *       is ready — Reload", and Reload puts the new build in control;
 *   (c) the offline demo fetches only the app's own assets and the demo model's files under /models/ (nothing
 *       cross-origin, no .wasm), and once it has run under the service worker, nothing reaches the network.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test, type Page, type Request } from '@playwright/test';
import { defaultRepos, startHubServer, type HubServer } from '../scripts/hub-server';
import { finished, loadHubModel, send, setSampling, shot } from './chat-helpers';
import { startStaticServer, type StaticServer } from './fixtures/static-server';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = path.join(REPO_ROOT, 'dist');
const DEMO_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'];

let app: StaticServer | null = null;
let hub: HubServer | null = null;

test.beforeAll(() => {
  expect(fs.existsSync(path.join(DIST, 'sw.js')), 'dist/sw.js: the build (playwright webServer) writes the service worker').toBe(true);
});
test.afterEach(async () => {
  await app?.close();
  await hub?.close();
  app = null;
  hub = null;
});

/** Open the app and wait until its service worker is active and controls the page (clientsClaim; a reload if not). */
async function openControlled(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await expect(page.locator('#chat-input')).toBeVisible();
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
  });
  if (!(await page.evaluate(() => !!navigator.serviceWorker.controller))) await page.reload();
  await expect(page.locator('#chat-input')).toBeVisible();
  await expect.poll(() => page.evaluate(() => navigator.serviceWorker.controller?.state ?? null)).toBe('activated');
}

/** A short greedy reply that must finish. */
async function chatOnce(page: Page, text: string): Promise<string> {
  await setSampling(page, { temperature: 0, maxTokens: 16 });
  const r = await send(page, text);
  await finished(r, 120_000);
  await expect(r).toHaveAttribute('data-status', 'done');
  const body = (await r.locator('.msg-body').innerText()).trim();
  expect(body.length).toBeGreaterThan(0);
  return body;
}

test('offline: after one visit the app opens and generates with both servers stopped', async ({ page }) => {
  app = await startStaticServer(DIST);
  hub = await startHubServer({ repos: defaultRepos() });
  const url = `${app.baseUrl}/?hub=${encodeURIComponent(hub.baseUrl)}`;
  await openControlled(page, url);

  // A hub model, downloaded once, lands in the IndexedDB weight cache.
  await loadHubModel(page, 'local/stories260k');
  await expect(page.locator('#load-progress-text')).toContainText('Loaded local/stories260k');
  const online = await chatOnce(page, 'Once upon a time');
  // The demo, run once online, is cached by the service worker as it loads.
  await page.click('#tab-model');
  await page.click('#demo-load');
  await expect(page.locator('#load-progress-text')).toContainText('Loaded stories260k (offline demo)', { timeout: 60_000 });

  // Both servers gone: the service worker serves the app, IndexedDB the weights.
  await app.close();
  await hub.close();
  app = null;
  hub = null;
  await page.reload();
  await expect(page.locator('#chat-input')).toBeVisible();
  await expect(page.locator('#model-status')).toHaveAttribute('data-state', 'none');
  expect(await page.evaluate(() => !!navigator.serviceWorker.controller)).toBe(true);
  await page.click('#tab-model');
  const cached = page.locator('#cache-list li', { hasText: 'local/stories260k' });
  await cached.locator('button', { hasText: 'Load' }).click();
  await expect(page.locator('#load-progress-text')).toContainText('from the cache, no download', { timeout: 60_000 });
  await expect(page.locator('#model-status')).toHaveAttribute('data-state', 'ready');
  await page.click('#new-chat');
  expect(await chatOnce(page, 'Once upon a time')).toBe(online);

  // The demo model shipped with the app comes from the service worker's cache.
  await page.click('#tab-model');
  await page.click('#demo-load');
  await expect(page.locator('#load-progress-text')).toContainText('Loaded stories260k (offline demo)', { timeout: 60_000 });
  await page.click('#new-chat');
  expect(await chatOnce(page, 'Once upon a time')).toBe(online); // the same weights
  await shot(page, 'offline-shell-offline');
});

test('offline: a new build is picked up on the next visit, with a notice', async ({ page }) => {
  test.setTimeout(120_000);
  const buildB = fs.mkdtempSync(path.join(os.tmpdir(), 'kvtab-build-b-'));
  try {
    execFileSync('npx', ['vite', 'build', '--outDir', buildB, '--emptyOutDir', '--logLevel', 'warn'], {
      cwd: REPO_ROOT,
      env: { ...process.env, KVTAB_BUILD_STAMP: 'offline-e2e-B' },
      stdio: 'pipe',
    });
    app = await startStaticServer(DIST);
    await openControlled(page, `${app.baseUrl}/`);
    const stampA = await page.locator('html').getAttribute('data-build');
    expect(stampA).toBeTruthy();
    expect(stampA).not.toBe('offline-e2e-B');
    await expect(page.locator('#app-update')).toBeHidden();

    // Deploy build B; the next visit still opens build A (from the precache) and says B is ready.
    app.setDir(buildB);
    await page.reload();
    await expect(page.locator('#chat-input')).toBeVisible();
    await expect(page.locator('html')).toHaveAttribute('data-build', stampA!);
    const notice = page.locator('#app-update');
    await expect(notice).toBeVisible({ timeout: 30_000 });
    await expect(notice).toHaveText('A new version of kvtab is ready — Reload');
    await shot(page, 'offline-shell-update-notice');

    await notice.getByRole('button', { name: 'Reload' }).click();
    await expect(page.locator('html')).toHaveAttribute('data-build', 'offline-e2e-B', { timeout: 30_000 });
    await expect(page.locator('#chat-input')).toBeVisible();
    await expect(page.locator('#app-update')).toBeHidden();
    const scriptURL = await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())?.waiting?.scriptURL ?? null);
    expect(scriptURL).toBeNull(); // nothing left waiting: B is the active worker
  } finally {
    fs.rmSync(buildB, { recursive: true, force: true });
  }
});

test('offline demo fetches nothing else: only same-origin app assets and /models/, none from the network once the service worker is in control', async ({ page, context }) => {
  app = await startStaticServer(DIST);
  hub = await startHubServer({ repos: defaultRepos() });
  const origin = app.baseUrl;
  const hubUrl = hub.baseUrl;
  const seen: Request[] = [];
  context.on('request', (r) => seen.push(r)); // the page, the engine worker and the service worker

  /** Wait until the page's own start-up traffic (the Model tab's size look-ups on the hub) is over. */
  const settle = async (): Promise<void> => {
    for (let n = -1; n !== seen.length; ) {
      n = seen.length;
      await Promise.all(seen.map((r) => r.response().catch(() => null)));
      await page.waitForTimeout(500);
    }
  };
  /** Run the demo and a reply; return the requests made meanwhile. */
  const runDemo = async (): Promise<Request[]> => {
    await settle();
    const from = seen.length;
    await page.click('#tab-model');
    await page.click('#demo-load');
    await expect(page.locator('#load-progress-text')).toContainText('Loaded stories260k (offline demo)', { timeout: 60_000 });
    await page.click('#new-chat');
    await chatOnce(page, 'Once upon a time');
    return seen.slice(from);
  };
  const allowed = (r: Request): boolean => {
    const u = new URL(r.url());
    if (u.origin !== origin || u.pathname.endsWith('.wasm')) return false;
    if (u.pathname.startsWith('/models/')) return DEMO_FILES.some((f) => u.pathname === `/models/stories260k/${f}`);
    return u.pathname === '/' || u.pathname === '/index.html' || u.pathname === '/sw.js' || /^\/workbox-[\w-]+\.js$/.test(u.pathname) || /^\/assets\/[\w.-]+\.(js|css)$/.test(u.pathname);
  };

  // First visit: the service worker precaches the app and takes control (clientsClaim); the demo's files then
  // come from the server through it, and it caches them.
  await page.goto(`${origin}/?hub=${encodeURIComponent(hubUrl)}`);
  await expect(page.locator('#chat-input')).toBeVisible();
  await expect.poll(() => page.evaluate(() => navigator.serviceWorker.controller?.state ?? null), { timeout: 30_000 }).toBe('activated');
  const first = await runDemo();
  const firstUrls = first.map((r) => r.url());
  expect(firstUrls.filter((u) => new URL(u).pathname.startsWith('/models/')).length).toBeGreaterThan(0);
  expect(first.filter((r) => !allowed(r)).map((r) => r.url())).toEqual([]);
  // Outside the demo run, the only other requests of the visit are the curated list's size look-ups on the hub
  // the ?hub= link names (the Model tab); nothing else cross-origin, and no .wasm anywhere.
  const others = seen.filter((r) => !allowed(r) && !r.url().startsWith(`${hubUrl}/`)).map((r) => r.url());
  expect(others, 'nothing else cross-origin or .wasm during the whole visit').toEqual([]);

  // Next visit: the same demo run is answered entirely by the service worker's cache.
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
  });
  await page.reload();
  await expect(page.locator('#chat-input')).toBeVisible();
  expect(await page.evaluate(() => !!navigator.serviceWorker.controller)).toBe(true);
  const serverBefore = app.requests.length;
  const second = await runDemo();
  expect(second.filter((r) => !allowed(r)).map((r) => r.url())).toEqual([]);
  const modelRequests = second.filter((r) => new URL(r.url()).pathname.startsWith('/models/'));
  expect(modelRequests.length).toBeGreaterThan(0);
  const servedBySw = await Promise.all(modelRequests.map(async (r) => (await r.response())?.fromServiceWorker() ?? false));
  expect(servedBySw.every(Boolean), 'every demo model file came from the service worker').toBe(true);
  // The browser's update check of the service worker script (sw.js and the Workbox runtime it imports, asked
  // for on each registration) is the only traffic the app server may see.
  const reachedServer = app.requests.slice(serverBefore).filter((r) => r.url !== '/sw.js' && !/^\/workbox-[\w-]+\.js$/.test(r.url));
  expect(reachedServer, 'no request of the controlled demo run reached the app server').toEqual([]);
  test.info().annotations.push({
    type: 'requests',
    description: `first visit: ${first.length} during the demo run; controlled: ${second.length} (${modelRequests.length} model files, all from the service worker), 0 to the server besides the service worker update check`,
  });
});
