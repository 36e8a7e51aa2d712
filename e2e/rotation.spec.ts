/**
 * The Compression tab's "Rotate before quantizing (Hadamard)" checkbox with the offline demo model: offered for
 * the quantized modes only, applied to the current chat (same tokens, the meter's mode gains "+rot"), kept per
 * mode across a reload, and the chat goes on in the rotated mode.
 */
import { expect, test } from '@playwright/test';
import { loadDemo, meterState, openApp, sendAndWait, setSampling, shot } from './chat-helpers';

test('rotation checkbox: applied mid-chat as kivi-4+rot, persisted, the chat goes on', async ({ page }) => {
  await openApp(page);
  await loadDemo(page);
  await setSampling(page, { temperature: 0, maxTokens: 30 });
  await sendAndWait(page, 'Once upon a time');
  const full = await meterState(page);

  await page.click('#tab-compression');
  await expect(page.locator('#kv-rotate')).toHaveCount(0); // full precision has nothing to quantize
  await page.check('#kv-mode-merge');
  await expect(page.locator('#kv-rotate')).toHaveCount(0);
  // One switch at a time: the engine refuses a second while it re-fills the cache.
  await expect(page.locator('#cache-meter')).toHaveAttribute('data-mode', 'merge', { timeout: 60_000 });
  await page.check('#kv-mode-kivi');
  await expect(page.locator('#cache-meter')).toHaveAttribute('data-mode', 'kivi-4', { timeout: 60_000 });
  const plain = await meterState(page);
  await expect(page.locator('#kv-rotate')).not.toBeChecked();
  await page.check('#kv-rotate');
  await expect(page.locator('#cache-meter')).toHaveAttribute('data-mode', 'kivi-4+rot', { timeout: 60_000 });
  await expect(page.locator('#kv-status')).toContainText('Applied kivi-4+rot');
  const rotated = await meterState(page);
  expect(rotated.tokens).toBe(full.tokens);
  // The sign vectors: numKvHeads × headDim f32 on top of the same layout.
  expect(rotated.bytes).toBeGreaterThan(plain.bytes);
  expect(rotated.bytes).toBeLessThan(plain.bytes + 4096);
  await shot(page, 'compression-rotation');

  // Per mode: int8 has its own checkbox, off.
  await page.check('#kv-mode-int8');
  await expect(page.locator('#kv-rotate')).not.toBeChecked();
  await expect(page.locator('#cache-meter')).toHaveAttribute('data-mode', 'int8', { timeout: 60_000 });
  await page.check('#kv-mode-kivi');
  await expect(page.locator('#kv-rotate')).toBeChecked();
  await expect(page.locator('#cache-meter')).toHaveAttribute('data-mode', 'kivi-4+rot', { timeout: 60_000 });

  const next = await sendAndWait(page, 'The dog');
  await expect(next.locator('.msg-meta')).toContainText('KV kivi-4+rot');
  await expect(page.locator('#messages .msg.notice[data-level="error"]')).toHaveCount(0);

  await page.reload();
  await page.click('#tab-compression');
  await expect(page.locator('#kv-mode-kivi')).toBeChecked();
  await expect(page.locator('#kv-rotate')).toBeChecked();
});
