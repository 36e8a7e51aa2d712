/**
 * Golden greedy text in real headless Chromium (SwiftShader WebGPU): the page starts the engine worker,
 * loads stories260k over HTTP from the local hub server, and streams the completion.
 */
import { expect, test } from '@playwright/test';

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

test('golden stories260k text through the page and the worker', async ({ page }) => {
  const hub = process.env.HUB_URL as string;
  await page.goto(`/?hub=${encodeURIComponent(hub)}&model=local/stories260k`);
  await page.click('#load');
  await expect(page.locator('#load-status')).toContainText('Loaded', { timeout: 60_000 });
  await expect(page.locator('#load-progress')).toHaveJSProperty('value', 1);

  for (const g of GOLDEN) {
    await page.fill('#prompt', g.prompt);
    await page.fill('#max-tokens', String(g.ids.split(',').length));
    await page.click('#generate');
    await expect(page.locator('#output')).toHaveAttribute('data-finish', 'length', { timeout: 120_000 });
    await expect(page.locator('#output')).toHaveAttribute('data-token-ids', g.ids);
    expect(await page.locator('#output').textContent()).toBe(g.text);
  }
  await page.screenshot({ path: 'e2e/screenshots/golden.png' });
});
