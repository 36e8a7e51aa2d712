/**
 * Golden greedy text in real headless Chromium (SwiftShader WebGPU): the app loads stories260k over HTTP from
 * the local hub through the model manager, and each prompt (a new chat; stories260k has no chat template, so
 * the chat continues the text) streams exactly the golden ids and text.
 */
import { expect, test } from '@playwright/test';
import { loadHubModel, openApp, reply, send, setField, setSampling, shot } from './chat-helpers';

const GOLDEN = [
  {
    prompt: 'Once upon a time',
    ids: '432,383,286,261,376,298,315,421,395,317,426,338,401,396,267,337,410,408,419,292,411,322,265,282,295,433,426,385,328,432,358,394,261,370,432,352,266,268,388,426,338,391,266,267,337,335,312,432,398,312,286,267,414,270,333,415,426,13,438,310',
    text: ', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily',
  },
  {
    prompt: 'Tom and Sue went to the',
    ids: '282,295,433,426,342,394,261,370,268,414,444,335,261,370,268,414,444,426,342,391,266,267,337,335,312,426,342,391,266,267,337,335,265,268,414,444,426,342,391,266',
    text: 'park. They saw a big box with a big box. They wanted to play with it. They wanted to play with the box. They wanted',
  },
];

test('golden stories260k text through the app and the worker', async ({ page }) => {
  await openApp(page);
  await loadHubModel(page, 'local/stories260k');
  await expect(page.locator('#load-progress')).toHaveJSProperty('value', 1);
  await page.click('#tab-generation');
  await page.selectOption('#output-format', 'text');

  for (const g of GOLDEN) {
    await page.click('#new-chat');
    await setSampling(page, { temperature: 0, maxTokens: g.ids.split(',').length });
    const r = await send(page, g.prompt);
    // Streaming: the first words are on screen before the reply is complete.
    await expect(r.locator('.msg-body')).not.toBeEmpty({ timeout: 60_000 });
    await expect(r).toHaveAttribute('data-finish', 'length', { timeout: 120_000 });
    await expect(r).toHaveAttribute('data-token-ids', g.ids);
    expect(await reply(page, 0).locator('.msg-body').textContent()).toBe(g.text);
  }
  await setField(page, '#max-tokens', '256');
  await shot(page, 'golden');
});
