/**
 * Issue #12 (2, 8): the engine's GPU device is lost (window.__kvtabTest.loseDevice(), behind `?test-hooks`:
 * device.destroy() behind the engine's back). The engine reloads the model from the IndexedDB weight cache (no
 * weight request), refills the KV cache with the chat's tokens, and the chat says so; a reply in flight ends
 * with its text so far and a DeviceLostError notice; the next message replies without a page reload.
 * Leaks: load cycles and KV-mode switches bring the meter's tracked GPU bytes, the IndexedDB records and
 * navigator.storage.estimate() back to their baseline (50 of each, as in Node).
 */
import { expect, test, type Page } from '@playwright/test';
import { idbRecordCounts } from '../tests/helpers/idb-records';
import { armMidReply, HUB, midReplyText, reply, send, sendAndWait, setSampling, shot, waitForModel } from './chat-helpers';

const RECOVERED_TEXT = 'The GPU was reset; the model was reloaded and the conversation restored.';
const CYCLES = 50;

async function openWithHooks(page: Page): Promise<void> {
  await page.goto(`/?hub=${encodeURIComponent(HUB)}&test-hooks`);
  await expect(page.locator('#chat-input')).toBeVisible();
}

async function loseDevice(page: Page): Promise<void> {
  await page.evaluate(() => (window as unknown as { __kvtabTest: { loseDevice(): Promise<void> } }).__kvtabTest.loseDevice());
}

/** Load a hub model through the model manager and wait until the meter has heard of this load. */
async function loadHub(page: Page, repo: string): Promise<void> {
  const meter = page.locator('#cache-meter');
  const updates = Number(await meter.getAttribute('data-updates'));
  await page.click('#tab-model');
  await page.fill('#model-id-input', repo);
  await page.click('#model-id-load');
  await expect.poll(async () => Number(await meter.getAttribute('data-updates')), { timeout: 150_000 }).toBeGreaterThan(updates);
  await waitForModel(page);
}

/** Weight file requests from now on. */
function watchWeights(page: Page): string[] {
  const weights: string[] = [];
  page.context().on('request', (q) => {
    if (/\.safetensors(\?|$)/.test(q.url())) weights.push(q.url());
  });
  return weights;
}

const trackedBytes = async (page: Page) => Number(await page.locator('#cache-meter').getAttribute('data-tracked-bytes'));

/** Records in every IndexedDB store of the page's origin, and the storage estimate's usage. */
async function storageState(page: Page): Promise<{ records: Record<string, number>; usage: number }> {
  const records = await page.evaluate(idbRecordCounts);
  return { records, usage: await page.evaluate(async () => (await navigator.storage.estimate()).usage ?? 0) };
}

test('fault: device lost mid-generation: the partial reply and the chat are kept, the note shows, a new reply generates', async ({ page }) => {
  await openWithHooks(page);
  await loadHub(page, 'local/stories260k');
  await setSampling(page, { temperature: 0, maxTokens: 30 });
  const first = await sendAndWait(page, 'Tom and Sue went to the');
  const firstText = (await first.locator('.msg-body').innerText()).trim();

  await setSampling(page, { maxTokens: 400 });
  const weights = watchWeights(page);
  // The device is lost in the page as soon as 20 characters are drawn (armMidReply: the reply is faster than Playwright's looks).
  await armMidReply(page, 20, 'lose-device');
  const r = await send(page, 'Once upon a time');
  const atLoss = await midReplyText(page);

  await expect(r).toHaveAttribute('data-status', 'error', { timeout: 60_000 });
  const partial = (await r.locator('.msg-body').innerText()).trim();
  expect(partial.length).toBeGreaterThan(20);
  expect(partial.startsWith(atLoss)).toBe(true);
  await expect(page.locator('#messages .msg.notice[data-level="error"]').last()).toContainText('its text so far is kept');
  await expect(page.locator('#messages .msg.notice').last()).toContainText(RECOVERED_TEXT, { timeout: 120_000 });
  expect(weights).toEqual([]); // reloaded from the IndexedDB cache
  await expect(page.locator('#messages .msg.user .msg-body')).toHaveText(['Tom and Sue went to the', 'Once upon a time']);
  expect((await reply(page, 0).locator('.msg-body').innerText()).trim()).toBe(firstText);
  await shot(page, 'faults-device-lost-mid-reply');

  await setSampling(page, { maxTokens: 20 });
  const next = await sendAndWait(page, 'Lily went to the');
  expect((await next.locator('.msg-body').innerText()).trim().length).toBeGreaterThan(10);
  expect((await reply(page, 1).locator('.msg-body').innerText()).trim()).toBe(partial);
});

test('fault: device lost while idle: the note shows, the cache holds the chat again, a new reply generates', async ({ page }) => {
  await openWithHooks(page);
  await loadHub(page, 'local/stories260k');
  await setSampling(page, { temperature: 0, maxTokens: 30 });
  await sendAndWait(page, 'Once upon a time');
  const meter = page.locator('#cache-meter');
  const tokens = await meter.getAttribute('data-tokens');
  const ranges = await meter.getAttribute('data-held-ranges');
  const weights = watchWeights(page);

  await loseDevice(page);
  await expect(page.locator('#messages .msg.notice').last()).toContainText(RECOVERED_TEXT, { timeout: 120_000 });
  await expect(page.locator('#messages .msg.notice[data-level="error"]')).toHaveCount(0);
  expect(weights).toEqual([]);
  await expect(meter).toHaveAttribute('data-tokens', tokens as string);
  await expect(meter).toHaveAttribute('data-held-ranges', ranges as string);
  // The fresh load refilled exactly the held tokens.
  await expect(meter).toHaveAttribute('data-prefill-tokens', tokens as string);
  await expect(page.locator('#model-status')).toHaveAttribute('data-state', 'ready');

  const next = await sendAndWait(page, 'Tom and Sue went to the');
  expect((await next.locator('.msg-body').innerText()).trim().length).toBeGreaterThan(10);
  await shot(page, 'faults-device-lost-idle');
});

test(`fault: leak: ${CYCLES} load cycles and ${CYCLES} KV-mode switches return the meter's tracked bytes, IndexedDB records and storage.estimate() to baseline`, async ({ page }) => {
  test.setTimeout(600_000);
  await openWithHooks(page);
  await loadHub(page, 'local/stories260k');
  const loaded = await trackedBytes(page);
  expect(loaded).toBeGreaterThan(0);
  const base = await storageState(page);
  expect(Object.values(base.records).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  for (let i = 0; i < CYCLES; i++) {
    await loadHub(page, 'local/stories260k');
    await expect.poll(() => trackedBytes(page)).toBe(loaded);
  }
  const after = await storageState(page);
  expect(after.records).toEqual(base.records);
  expect(after.usage).toBeLessThanOrEqual(base.usage);

  await setSampling(page, { temperature: 0, maxTokens: 20 });
  await sendAndWait(page, 'Once upon a time');
  const meter = page.locator('#cache-meter');
  await page.click('#tab-compression');
  const switchTo = async (id: string, mode: string) => {
    await page.check(`#kv-mode-${id}`);
    await expect(meter).toHaveAttribute('data-mode', mode, { timeout: 60_000 });
    await expect(page.locator('#kv-status')).toContainText(`Applied ${mode}`, { timeout: 60_000 });
  };
  // The baseline is the full cache refilled by a switch (the refill records its own step plans).
  await switchTo('int8', 'int8');
  await switchTo('full', 'full');
  const chatBytes = await trackedBytes(page);
  const tokens = await meter.getAttribute('data-tokens');
  const modes: Array<[string, string]> = [['int8', 'int8'], ['kivi', 'kivi-4'], ['zip', 'zip'], ['merge', 'merge'], ['full', 'full']];
  for (let i = 0; i < CYCLES; i++) await switchTo(...modes[i % modes.length]);
  await expect(meter).toHaveAttribute('data-mode', 'full');
  await expect(meter).toHaveAttribute('data-tokens', tokens as string);
  await expect.poll(() => trackedBytes(page)).toBe(chatBytes);
  expect((await storageState(page)).records['kvtab-weights/chunks']).toBe(base.records['kvtab-weights/chunks']);
});
