/**
 * Load faults in real headless Chromium (real IndexedDB, Web Locks, a slowed local hub):
 *  - cancel: Cancel next to the progress bar stops a slow hub download; the chunks stored so far are valid,
 *    and the app goes on (the demo loads and chats);
 *  - quota: with the origin's quota shrunk over CDP, a hub load completes uncached and says storage is full;
 *  - two tabs: a second tab of the app sees the other-tab notice; loading the same model in both at once
 *    leaves one consistent cache entry that loads with the hub gone.
 */
import path from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { sharedModelsDir, startHubServer, type HubServer } from '../scripts/hub-server';
import { openApp, sendAndWait, setSampling, waitForModel } from './chat-helpers';

const REPOS = { 'local/stories260k': path.join(sharedModelsDir(), 'stories260k'), 'local/byte-llama-12l': path.join(sharedModelsDir(), 'byte-llama-12l') };
const GOLDEN_START = ', there was a little girl named Lily.';

/** Open the model panel and start loading a hub id through the "any model" field. */
async function startHubLoad(page: Page, repo: string): Promise<void> {
  await page.click('#tab-model');
  await page.fill('#model-id-input', repo);
  await page.click('#model-id-load');
}

/** Every cached manifest of the page's origin with the chunks it claims, each checked against its record's length. */
async function cacheState(page: Page): Promise<Array<{ key: string; claimed: number; bad: number; complete: boolean }>> {
  return page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const r = indexedDB.open('kvtab-weights');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const all = await new Promise<Map<string, unknown>>((resolve) => {
      const out = new Map<string, unknown>();
      const cursor = db.transaction('chunks').objectStore('chunks').openCursor();
      cursor.onsuccess = () => {
        const c = cursor.result;
        if (!c) return resolve(out);
        out.set(String(c.key), c.value);
        c.continue();
      };
    });
    db.close();
    type Entry = { size: number; checksums: (number | null)[] };
    return [...all.entries()]
      .filter(([k]) => k.startsWith('manifest|'))
      .map(([k, v]) => {
        const m = v as { key: string; chunkBytes: number; files: Record<string, Entry> };
        let claimed = 0;
        let bad = 0;
        let complete = true;
        for (const [file, e] of Object.entries(m.files)) {
          e.checksums.forEach((c, i) => {
            if (c === null) return void (complete = false);
            claimed++;
            const rec = all.get(`chunk|${m.key}|${file}|${i}`) as Uint8Array | undefined;
            const want = Math.min(e.size, (i + 1) * m.chunkBytes) - i * m.chunkBytes;
            if (!rec || rec.byteLength !== want) bad++;
          });
        }
        return { key: k.slice('manifest|'.length), claimed, bad, complete };
      });
  });
}

async function chatGolden(page: Page): Promise<void> {
  await setSampling(page, { temperature: 0, maxTokens: 12 });
  const r = await sendAndWait(page, 'Once upon a time');
  await expect(r.locator('.msg-body')).toContainText(GOLDEN_START.slice(0, 20));
}

test.describe('load faults', () => {
  let hub: HubServer | null = null;
  test.afterEach(async () => {
    await hub?.close();
    hub = null;
  });

  test('fault: cancel — Cancel during a slow hub download stops the load, keeps valid chunks, and the app loads the demo and chats', async ({ page }) => {
    hub = await startHubServer({ repos: REPOS, bytesPerSecond: 3 * 2 ** 20 });
    await openApp(page, hub.baseUrl);
    await startHubLoad(page, 'local/byte-llama-12l');
    const cancel = page.locator('#load-cancel');
    await expect(cancel).toBeVisible({ timeout: 30_000 });
    await expect(page.locator('#load-progress-text')).toContainText(/Downloading.*MiB \//, { timeout: 30_000 });
    await expect.poll(async () => Number(await page.locator('#load-progress').evaluate((p) => (p as HTMLProgressElement).value)), { timeout: 30_000 }).toBeGreaterThan(0.15);
    await cancel.click();
    await expect(page.locator('#load-progress-text')).toContainText('Loading local/byte-llama-12l was cancelled', { timeout: 30_000 });
    await expect(cancel).toBeHidden();
    await expect(page.locator('#model-error')).toBeHidden();
    await expect(page.locator('#model-status')).toHaveAttribute('data-state', 'none'); // a cancel is no error
    await page.screenshot({ path: 'e2e/screenshots/faults-load-cancelled.png' });
    const entry = (await cacheState(page)).find((m) => m.key.includes('byte-llama-12l'));
    expect(entry).toMatchObject({ bad: 0, complete: false });
    expect(entry!.claimed).toBeGreaterThan(2);
    await expect(page.locator('#cache-list li[data-complete="false"]', { hasText: 'local/byte-llama-12l' })).toHaveCount(1);

    await page.click('#demo-load');
    await waitForModel(page);
    await chatGolden(page);
  });

  test('fault: quota — with the origin quota shrunk over CDP, a hub load completes uncached and the model manager says storage is full', async ({ page, context }) => {
    hub = await startHubServer({ repos: REPOS });
    await openApp(page, hub.baseUrl);
    const cdp = await context.newCDPSession(page);
    const origin = new URL(page.url()).origin;
    await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 400 * 1024 });
    await startHubLoad(page, 'local/stories260k');
    await waitForModel(page);
    await page.click('#tab-model');
    const notice = page.locator('#model-storage-notice');
    await expect(notice).toBeVisible();
    await expect(notice).toHaveText('Browser storage is full: this model was loaded without caching; it will download again next time.');
    await expect(page.locator('#model-error')).toBeHidden();
    await page.screenshot({ path: 'e2e/screenshots/faults-load-quota.png' });
    for (const m of await cacheState(page)) expect(m).toMatchObject({ bad: 0, complete: false });
    await chatGolden(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin });
  });

  test('fault: two tabs — a second tab sees the other-tab notice; both loading one model leave a consistent cache that loads offline', async ({ context }) => {
    hub = await startHubServer({ repos: REPOS, bytesPerSecond: 1 * 2 ** 20 });
    const first = await context.newPage();
    await openApp(first, hub.baseUrl);
    await first.click('#tab-model');
    await first.click('#demo-load');
    await waitForModel(first);

    const second = await context.newPage();
    await openApp(second, hub.baseUrl);
    await startHubLoad(second, 'local/stories260k');
    const notice = second.locator('#tab-notice');
    await expect(notice).toBeVisible();
    await expect(notice).toContainText('kvtab is open in another tab; loading here would use a second copy of the model in GPU memory.');
    await expect(second.locator('#load-progress-text')).toHaveText('Nothing was loaded.');
    await second.screenshot({ path: 'e2e/screenshots/faults-two-tabs-notice.png' });

    // Both tabs download the same model at once (the slow hub makes the downloads overlap).
    await startHubLoad(first, 'local/stories260k');
    await second.click('#tab-load-anyway');
    await expect(notice).toBeHidden();
    await waitForModel(second);
    await expect(first.locator('#load-progress-text')).toContainText('Loaded local/stories260k', { timeout: 90_000 });
    await expect(second.locator('#load-progress-text')).toContainText('Loaded local/stories260k', { timeout: 90_000 });
    const entries = (await cacheState(second)).filter((m) => m.key.includes('stories260k'));
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ bad: 0, complete: true });

    // With the hub gone, a reloaded tab loads the model from the cache (past the notice: the first tab still holds the engine).
    await hub.close();
    hub = null;
    await second.reload();
    await second.click('#tab-model');
    await second.locator('#cache-list li', { hasText: 'local/stories260k' }).locator('button', { hasText: 'Load' }).click();
    await expect(notice).toBeVisible();
    await second.click('#tab-load-anyway');
    await waitForModel(second);
    await expect(second.locator('#load-progress-text')).toContainText('from the cache, no download');
    await chatGolden(second);
  });
});
