/**
 * (4) A tiny KV memory budget: chatting past it escalates the mode (auto) and then keeps attention sinks plus a
 * recent window; the chat says so, the reply completes, the cache stays inside the budget, and nothing errors.
 * Also: a budget too small for any window, and a prompt longer than the model's context.
 */
import { expect, test } from '@playwright/test';
import { finished, loadDemo, meterState, openApp, phoneShots, send, sendAndWait, setField, setSampling, shot } from './chat-helpers';

test('a tiny budget: auto escalation, then sinks + recent window, with notices and no error', async ({ page }) => {
  await openApp(page);
  await loadDemo(page);
  await setSampling(page, { temperature: 0, maxTokens: 160 });

  await page.click('#tab-compression');
  await page.check('#budget-enabled');
  await setField(page, '#budget-mib', '0.03'); // 31,457 B: 24 tokens of f32 K/V in full mode
  await expect(page.locator('#budget-auto')).toBeChecked();
  await expect(page.locator('#meter-budget')).toHaveText('budget 30.7 KiB');

  const r = await send(page, 'Once upon a time');
  await finished(r);
  await expect(r).toHaveAttribute('data-finish', 'length');
  await expect(r.locator('.msg-meta')).toContainText('160 tokens');
  const notices = page.locator('#messages .msg.notice');
  await expect(notices.filter({ hasText: 'Switched to' })).toContainText(/this turn needs up to 165 tokens of KV cache, more than full fits in 30\.7 KiB\. Switched to \S+/);
  // The slides of one reply share one notice.
  const windows = notices.filter({ hasText: 'attention sinks' });
  await expect(windows).toHaveCount(1);
  await expect(windows).toContainText(/dropped from the cache.*This happened \d+ times during this reply/);
  await expect(page.locator('#messages .msg.notice[data-level="error"]')).toHaveCount(0);
  // The transcript keeps the whole reply; only the cache forgot.
  await expect(r.locator('.msg-body')).toContainText(', there was a little girl named Lily.');
  const state = await meterState(page);
  expect(state.bytes).toBeGreaterThan(0);
  expect(state.bytes).toBeLessThanOrEqual(0.03 * 2 ** 20);
  expect(state.mode).not.toBe('full');
  // The settings panel follows the escalation.
  await expect(page.locator(`input[name="kv-mode"]:checked`)).not.toHaveAttribute('value', 'full');
  await shot(page, 'budget-window');

  // Chat past it again: another turn in the window, still no error.
  const again = await sendAndWait(page, ' The next day,');
  await expect(again).toHaveAttribute('data-status', 'done');
  await expect(page.locator('#messages .msg.notice[data-level="error"]')).toHaveCount(0);
  expect((await meterState(page)).bytes).toBeLessThanOrEqual(0.03 * 2 ** 20);
  await phoneShots(page, 'budget-window');
});

test('a budget too small for any window says what to do, and the app stays usable', async ({ page }) => {
  await openApp(page);
  await loadDemo(page);
  await setSampling(page, { temperature: 0, maxTokens: 8 });
  await page.click('#tab-compression');
  await page.check('#budget-enabled');
  await setField(page, '#budget-mib', '0.001');
  const r = await send(page, 'Once upon a time');
  await expect(r).toHaveAttribute('data-status', 'error');
  await expect(page.locator('#messages .msg.notice[data-level="error"]')).toContainText('Raise the memory budget');
  await page.uncheck('#budget-enabled');
  const ok = await sendAndWait(page, 'Once upon a time');
  await expect(ok.locator('.msg-body')).toContainText(', there was a little girl');
});

test('a prompt longer than the context: sinks + recent window, a clear notice, and a reply', async ({ page }) => {
  await openApp(page);
  await loadDemo(page);
  await setSampling(page, { temperature: 0, maxTokens: 12 });
  const long = Array.from({ length: 90 }, (_, i) => `Tom and Sue went to the park on day ${i + 1}.`).join(' ');
  const r = await sendAndWait(page, long);
  await expect(r).toHaveAttribute('data-status', 'done');
  await expect(r.locator('.msg-meta')).toContainText('12 tokens');
  const notice = page.locator('#messages .msg.notice', { hasText: "longer than the model's context (512 tokens)" });
  await expect(notice).toContainText(/before this reply: the cache now keeps the first 4 tokens \(attention sinks\) and the latest 252; \d+ tokens in between were dropped/);
  // The whole message stays in the transcript.
  await expect(page.locator('#messages .msg.user .msg-body')).toHaveText(long);
  await expect(page.locator('#messages .msg.notice[data-level="error"]')).toHaveCount(0);
  await shot(page, 'long-prompt-window');
});
