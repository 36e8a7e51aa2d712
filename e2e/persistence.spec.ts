/**
 * (5) Chats persist in IndexedDB: a reload in the middle of a reply restores the history, including every
 * word of the reply that was already on screen, and the list of chats.
 */
import { expect, test } from '@playwright/test';
import { armMidReply, finished, loadDemo, midReplyText, openApp, send, sendAndWait, setField, setSampling, shot, waitForModel } from './chat-helpers';

test('reload mid-chat: the history and the partial reply are restored', async ({ page }) => {
  await openApp(page);
  await loadDemo(page);
  await setSampling(page, { temperature: 0, maxTokens: 40 });
  await sendAndWait(page, 'Tom and Sue went to the');
  await page.click('#new-chat');
  await setSampling(page, { maxTokens: 400 });
  // The page reloads itself as soon as these words are drawn (armMidReply: the reply is faster than Playwright's looks).
  const reloaded = page.waitForEvent('load');
  await armMidReply(page, 'She loved to play', 'reload');
  await send(page, 'Once upon a time');
  await reloaded;
  const shown = await midReplyText(page);
  expect(shown).toContain('She loved to play');
  await expect(page.locator('#chat-list .chat-item')).toHaveCount(2);
  await expect(page.locator('#chat-title')).toHaveText('Once upon a time');
  await expect(page.locator('#messages .msg.user .msg-body')).toHaveText('Once upon a time');
  const restored = page.locator('#messages .msg.assistant');
  await expect(restored).toHaveAttribute('data-status', 'interrupted');
  await expect(restored.locator('.msg-meta')).toContainText('interrupted by a reload');
  const restoredText = (await restored.locator('.msg-body').innerText()).trim();
  expect(restoredText.startsWith(shown)).toBe(true);
  await shot(page, 'persistence-restored');

  // The other chat is there too, and settings survived the reload.
  await page.locator('#chat-list .chat-open', { hasText: 'Tom and Sue' }).click();
  await expect(page.locator('#messages .msg.assistant .msg-body')).toHaveText(
    'park. They saw a big box with a big box. They wanted to play with it. They wanted to play with the box. They wanted',
  );
  await page.click('#tab-generation');
  await expect(page.locator('#max-tokens')).toHaveValue('400');

  // One click loads the last model again, and the restored chat goes on.
  await page.locator('#chat-list .chat-open', { hasText: 'Once upon a time' }).click();
  await setField(page, '#max-tokens', '30');
  await page.click('#reload-last-model');
  await waitForModel(page);
  await page.locator('#messages .msg.assistant .regenerate').click();
  const regenerated = page.locator('#messages .msg.assistant');
  await finished(regenerated);
  await expect(regenerated.locator('.msg-body')).toContainText(', there was a little girl named Lily.');
});
