/**
 * (4) A tiny KV memory budget: chatting past it escalates the mode (auto) and then evicts in place, keeping
 * attention sinks plus a recent window; the chat says so, the reply completes, the cache stays inside the
 * budget, and nothing errors. A chat with a system prompt keeps it (and the role markers) through saliency
 * evictions, and no turn re-prefills what the cache kept. Also: a budget too small for any window, and a
 * prompt longer than the model's context.
 */
import { expect, test, type Page } from '@playwright/test';
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
  await expect(windows).toContainText(/evicted \d+ tokens in place \(window\).*attention sinks.*nothing was re-read.*This happened \d+ times during this reply/);
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

/** A number from the cache meter's data attributes (written when the meter draws). */
async function meterNumber(page: Page, name: string): Promise<number> {
  return Number(await page.locator('#cache-meter').getAttribute(`data-${name}`));
}

test('a budget chat past the limit keeps the system prompt, evicts in place by saliency, and never re-prefills', async ({ page }) => {
  await openApp(page);
  await loadDemo(page);
  await setSampling(page, { temperature: 0, maxTokens: 100 });
  // The demo model has no chat template: the plain "System: … User: … Assistant:" chat format.
  await page.selectOption('#prompt-format', 'chat');
  await page.fill('#system-prompt', 'Tom is a big dog who likes the park.');
  await page.locator('#system-prompt').dispatchEvent('change');

  await page.click('#tab-compression');
  await page.check('#budget-enabled');
  await setField(page, '#budget-mib', '0.1'); // 104,857 B: 80 tokens of f32 K/V (and saliency scores) in full mode
  await page.uncheck('#budget-auto');
  await page.selectOption('#budget-eviction', 'saliency');

  const r = await sendAndWait(page, 'Once upon a time');
  await expect(r).toHaveAttribute('data-status', 'done');
  const notice = page.locator('#messages .msg.notice', { hasText: 'in place' });
  await expect(notice).toHaveCount(1);
  await expect(notice).toContainText(/evicted \d+ tokens in place \(saliency\); system prompt and role markers kept \(\d+ tokens\)/);
  await expect(page.locator('#messages .msg.notice[data-level="error"]')).toHaveCount(0);
  // The model still sees the system prompt: every protected position is held.
  await expect.poll(() => meterNumber(page, 'protected-tokens')).toBeGreaterThan(10);
  expect(await meterNumber(page, 'protected-held')).toBe(await meterNumber(page, 'protected-tokens'));
  const state = await meterState(page);
  expect(state.bytes).toBeLessThanOrEqual(0.1 * 2 ** 20);
  expect(state.tokens).toBeLessThanOrEqual(80);
  // Positions went on past the limit (nothing was renumbered by a re-prefill).
  expect(await meterNumber(page, 'next-position')).toBeGreaterThan(100);
  const prefilled = await meterNumber(page, 'prefill-tokens');
  await shot(page, 'budget-evict-in-place');

  // The next turn: only its new tokens go through prefill, not a re-prefill of the kept window.
  const again = await sendAndWait(page, 'The next day,');
  await expect(again).toHaveAttribute('data-status', 'done');
  await expect.poll(() => meterNumber(page, 'prefill-tokens')).toBeGreaterThan(prefilled);
  // New this turn: the reply's last token (sampled, never fed) and "\nUser: The next day,\nAssistant:", about 20
  // tokens in this 512-token vocabulary; a re-prefill of the kept window would add its 60 tokens again.
  const added = (await meterNumber(page, 'prefill-tokens')) - prefilled;
  expect(added).toBeLessThanOrEqual(30);
  expect(added).toBeLessThan((await meterState(page)).tokens);
  expect(await meterNumber(page, 'protected-held')).toBe(await meterNumber(page, 'protected-tokens'));
  await expect(page.locator('#messages .msg.notice[data-level="error"]')).toHaveCount(0);
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
