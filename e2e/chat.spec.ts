/**
 * The chat flow in real Chromium (SwiftShader WebGPU):
 * (3) two turns with byte-llama-12l (ChatML, not instruction-tuned: the flow is judged, not the answers), then
 *     kivi 2-bit mid-chat: the conversation stays, the meter's total drops, and the chat goes on in kivi-2;
 * stop within a step, regenerate, edit-and-resend and new chat with the offline demo model.
 */
import { expect, test } from '@playwright/test';
import { armMidReply, finished, loadDemo, loadHubModel, meterState, midReplyText, openApp, phoneShots, reply, send, sendAndWait, setSampling, shot } from './chat-helpers';

test('two turns with byte-llama-12l, then kivi 2-bit mid-chat: conversation kept, meter total drops', async ({ page }) => {
  await openApp(page);
  await loadHubModel(page, 'local/byte-llama-12l');
  // Greedy byte-llama answers with indentation (it read books, not chats); sampling gives words.
  await setSampling(page, { temperature: 0.8, seed: 1, maxTokens: 20 });

  const first = await sendAndWait(page, 'Hello! Tell me about the sea.');
  const second = await sendAndWait(page, 'What did the captain say?');
  const transcript = await page.locator('#messages .msg:not(.notice) .msg-body').allTextContents();
  expect(transcript).toHaveLength(4);
  for (const r of [first, second]) await expect(r.locator('.msg-meta')).toContainText(/20 tokens · [\d.]+ tok\/s · max tokens reached · KV full/);
  expect(transcript[1].trim().length + transcript[3].trim().length).toBeGreaterThan(0);
  const full = await meterState(page);
  expect(full.mode).toBe('full');
  expect(full.tokens).toBeGreaterThan(40);
  // The meter was updated with every streamed token of both replies (plus loads and turn ends).
  expect(full.updates).toBeGreaterThanOrEqual(2 * 10);
  await shot(page, 'chat-two-turns');

  await page.click('#tab-compression');
  await page.check('#kv-mode-kivi');
  await expect(page.locator('#cache-meter')).toHaveAttribute('data-mode', 'kivi-4', { timeout: 60_000 });
  await page.selectOption('#kv-bits', '2');
  await expect(page.locator('#cache-meter')).toHaveAttribute('data-mode', 'kivi-2', { timeout: 60_000 });
  const kivi2 = await meterState(page);
  expect(kivi2.tokens).toBe(full.tokens);
  expect(kivi2.bytes).toBeLessThan(full.bytes);
  await expect(page.locator('#kv-status')).toContainText('Applied kivi-2');
  await expect(page.locator('#messages .msg.notice').last()).toContainText('to kivi-2');
  // Nothing of the conversation changed.
  expect(await page.locator('#messages .msg:not(.notice) .msg-body').allTextContents()).toEqual(transcript);

  const third = await sendAndWait(page, 'And then?');
  await expect(third.locator('.msg-meta')).toContainText('KV kivi-2');
  await expect(page.locator('#messages .msg.notice[data-level="error"]')).toHaveCount(0);
  await shot(page, 'chat-kivi2');
  await phoneShots(page, 'chat-kivi2');
});

test('stop within a step, regenerate, edit-and-resend, new chat (offline demo)', async ({ page }) => {
  await openApp(page);
  await loadDemo(page);
  // 500 tokens: decoding is fast enough that 200 can finish before the click lands.
  await setSampling(page, { temperature: 0, maxTokens: 500 });

  // Stop is clicked in the page as soon as these words are drawn (armMidReply: the reply is faster than Playwright's looks).
  await armMidReply(page, 'there was a little girl', 'stop');
  const r = await send(page, 'Once upon a time');
  const atClick = await midReplyText(page);
  await finished(r, 10_000);
  await expect(r).toHaveAttribute('data-status', 'stopped');
  const stoppedText = (await r.locator('.msg-body').textContent()) ?? '';
  expect(stoppedText.length).toBeLessThan(600);
  // Nothing shown before the click was taken back.
  expect((await r.locator('.msg-body').innerText()).trim().startsWith(atClick)).toBe(true);
  await expect(r.locator('.msg-meta')).toContainText('stopped');

  await r.locator('.regenerate').click();
  const again = reply(page, 0);
  await finished(again);
  await expect(again).toHaveAttribute('data-finish', 'length');
  await expect(again.locator('.msg-body')).toContainText(', there was a little girl named Lily.');
  expect(await page.locator('#messages .msg.assistant').count()).toBe(1);

  await page.locator('#messages .msg.user .edit').click();
  await page.fill('#messages .msg.user .edit-input', 'Tom and Sue went to the');
  await setSampling(page, { maxTokens: 40 });
  await page.locator('#messages .msg.user .edit-send').click();
  const edited = reply(page, 0);
  await finished(edited);
  await expect(page.locator('#messages .msg.user .msg-body')).toHaveText('Tom and Sue went to the');
  await expect(edited.locator('.msg-body')).toHaveText('park. They saw a big box with a big box. They wanted to play with it. They wanted to play with the box. They wanted');
  await expect(page.locator('#chat-list .chat-item')).toHaveCount(1);
  await expect(page.locator('#chat-title')).toHaveText('Tom and Sue went to the');

  await page.click('#new-chat');
  await expect(page.locator('#messages .msg')).toHaveCount(0);
  await sendAndWait(page, 'Once upon a time');
  await expect(page.locator('#chat-list .chat-item')).toHaveCount(2);
  await page.locator('#chat-list .chat-open', { hasText: 'Tom and Sue' }).click();
  await expect(page.locator('#messages .msg.assistant .msg-body')).toContainText('park. They saw');
  await shot(page, 'chat-actions');
});
