/**
 * Golden greedy text in real headless Chromium (SwiftShader WebGPU): the app loads stories260k over HTTP from
 * the local hub through the model manager, and each prompt (a new chat; stories260k has no chat template, so
 * the chat continues the text) streams exactly the golden ids and text.
 */
import { expect, test } from '@playwright/test';
import { loadHubModel, openApp, reply, send, setField, setSampling, shot } from './chat-helpers';
import { GOLDEN } from './fixtures/golden';


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
