/**
 * Issue #12 (3): the engine worker dies (window.__kvtabTest.crashWorker(), behind `?test-hooks`: terminate the
 * worker and fire its error event). The reply in flight ends with its text so far, the chat is kept (also in
 * IndexedDB, across a reload), the banner offers Restart engine, and the restart loads the model again (a hub
 * model from the IndexedDB cache, with no download) and replies.
 */
import { expect, test, type Page } from '@playwright/test';
import { armMidReply, finished, HUB, loadDemo, loadHubModel, midReplyText, reply, send, sendAndWait, setSampling, shot, waitForModel } from './chat-helpers';

const CRASH_TEXT = 'The engine stopped unexpectedly. Your chat is kept.';

/** Open the app with the test hooks on. */
async function openWithHooks(page: Page): Promise<void> {
  await page.goto(`/?hub=${encodeURIComponent(HUB)}&test-hooks`);
  await expect(page.locator('#chat-input')).toBeVisible();
}

/** A reply's text as shown (innerText keeps the line breaks that textContent drops). */
async function shown(page: Page, index: number): Promise<string> {
  return (await reply(page, index).locator('.msg-body').innerText()).trim();
}

async function crashWorker(page: Page): Promise<void> {
  await page.evaluate(() => (window as unknown as { __kvtabTest: { crashWorker(): void } }).__kvtabTest.crashWorker());
}

/** The crash banner is up, the header says the engine stopped. */
async function expectCrashShown(page: Page): Promise<void> {
  const banner = page.locator('#engine-crashed');
  await expect(banner).toBeVisible();
  await expect(banner).toContainText(CRASH_TEXT);
  await expect(banner.locator('#restart-engine')).toHaveText('Restart engine');
  await expect(page.locator('#model-status')).toHaveAttribute('data-state', 'error');
}

test('fault: worker crash mid-generation keeps the partial reply and the chat; Restart engine reloads the demo and replies', async ({ page }) => {
  await openWithHooks(page);
  await loadDemo(page);
  await setSampling(page, { temperature: 0, maxTokens: 40 });
  const first = await sendAndWait(page, 'Tom and Sue went to the');
  const firstText = (await first.locator('.msg-body').innerText()).trim();
  expect(firstText.length).toBeGreaterThan(20);

  await setSampling(page, { maxTokens: 400 });
  // The worker is crashed in the page as soon as these words are drawn (armMidReply: the reply is faster than Playwright's looks).
  await armMidReply(page, 'She loved to play', 'crash');
  const r = await send(page, 'Once upon a time');
  const atCrash = await midReplyText(page);

  await expectCrashShown(page);
  await expect(r).toHaveAttribute('data-status', 'error');
  const partial = (await r.locator('.msg-body').innerText()).trim();
  expect(partial).toContain('She loved to play');
  expect(partial.startsWith(atCrash)).toBe(true);
  await expect(page.locator('#messages .msg.notice[data-level="error"]').last()).toContainText('The engine stopped unexpectedly');
  // The history is all there: both user messages and the first reply, word for word.
  await expect(page.locator('#messages .msg.user .msg-body')).toHaveText(['Tom and Sue went to the', 'Once upon a time']);
  expect(await shown(page, 0)).toBe(firstText);
  await shot(page, 'faults-worker-crashed');

  // Restart: a fresh worker loads the demo again, and a new reply generates.
  await page.click('#restart-engine');
  await waitForModel(page);
  await expect(page.locator('#engine-crashed')).toBeHidden();
  await expect(page.locator('#load-progress-text')).toContainText('Loaded stories260k (offline demo)');
  await expect(page.locator('#messages .msg.notice').last()).toContainText('loaded again. The conversation is kept');
  await setSampling(page, { maxTokens: 20 });
  const next = await sendAndWait(page, 'Lily went to the');
  expect((await next.locator('.msg-body').innerText()).trim().length).toBeGreaterThan(10);
  expect(await shown(page, 1)).toBe(partial);
  await shot(page, 'faults-worker-restarted');

  // The chat survives a reload (IndexedDB), partial reply included.
  await page.reload();
  await expect(page.locator('#messages .msg.user .msg-body')).toHaveText(['Tom and Sue went to the', 'Once upon a time', 'Lily went to the']);
  expect(await shown(page, 0)).toBe(firstText);
  expect(await shown(page, 1)).toBe(partial);
  await expect(reply(page, 1)).toHaveAttribute('data-status', 'error');
});

test('fault: worker crash while idle; Restart engine reloads a hub model from the IndexedDB cache with no download', async ({ page }) => {
  await openWithHooks(page);
  await loadHubModel(page, 'local/stories260k');
  await setSampling(page, { temperature: 0, maxTokens: 30 });
  await sendAndWait(page, 'Once upon a time');
  await crashWorker(page);
  await expectCrashShown(page);
  // Calls fail fast while the engine is down: sending says no model is loaded, nothing hangs.
  await page.fill('#chat-input', 'Tom and Sue went to the');
  await page.click('#send');
  await expect(page.locator('#messages .msg.notice').last()).toContainText('No model is loaded');

  const weights: string[] = [];
  page.context().on('request', (q) => {
    if (/\.safetensors(\?|$)/.test(q.url())) weights.push(q.url());
  });
  await page.click('#restart-engine');
  await waitForModel(page);
  await expect(page.locator('#load-progress-text')).toContainText('from the cache, no download');
  expect(weights).toEqual([]);
  const next = await sendAndWait(page, 'Tom and Sue went to the');
  await finished(next);
  expect((await next.locator('.msg-body').innerText()).trim().length).toBeGreaterThan(10);
});
