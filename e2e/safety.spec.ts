/**
 * (6) A model output containing HTML (`<img src=x onerror=...>`, `<script>`) is shown as text and never runs:
 *     a hand-built model (e2e/fixtures/fixed-reply-model.ts) replies with exactly that, served by its own hub.
 * (7c) With navigator.gpu hidden, the app says clearly that WebGPU is missing and stays usable.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { startHubServer, type HubServer } from '../scripts/hub-server';
import { loadHubModel, openApp, sendAndWait, setField, shot } from './chat-helpers';
import { writeFixedReplyModel } from './fixtures/fixed-reply-model';

const PAYLOAD = `<img src=x onerror="window.__xss='img';document.title='pwned'"> **bold** <script>window.__xss='script'</script> [x](javascript:window.__xss='link')`;

test.describe('model output is never executed', () => {
  let hub: HubServer;
  let dir: string;
  test.beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvtab-fixed-reply-'));
    await writeFixedReplyModel(dir, PAYLOAD);
    hub = await startHubServer({ repos: { 'local/fixed-reply': dir } });
  });
  test.afterAll(async () => {
    await hub?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const format of ['markdown', 'text'] as const) {
    test(`an <img onerror> reply is shown as text (${format})`, async ({ page }) => {
      const dialogs: string[] = [];
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      await openApp(page, hub.baseUrl);
      const title = await page.title();
      await loadHubModel(page, 'local/fixed-reply');
      await page.click('#tab-generation');
      await page.selectOption('#output-format', format);
      await setField(page, '#max-tokens', '8');
      const r = await sendAndWait(page, 'Say something dangerous.');
      const body = r.locator('.msg-body');
      if (format === 'text') await expect(body).toHaveText(PAYLOAD);
      else {
        await expect(body).toContainText(`<img src=x onerror="window.__xss='img';document.title='pwned'">`);
        await expect(body).toContainText(`<script>window.__xss='script'</script>`);
        await expect(body.locator('strong')).toHaveText('bold');
      }
      // No element came from the model's text, no handler ran, no javascript: link exists.
      await expect(page.locator('#messages img, #messages script, #messages iframe')).toHaveCount(0);
      await expect(page.locator('#messages a')).toHaveCount(0);
      await page.waitForTimeout(500);
      expect(await page.evaluate(() => (window as unknown as { __xss?: string }).__xss)).toBeUndefined();
      expect(await page.title()).toBe(title);
      expect(dialogs).toEqual([]);
      // After a reload the stored reply renders the same way.
      await page.reload();
      await expect(page.locator('#messages .msg.assistant .msg-body')).toContainText('<img src=x onerror=');
      await expect(page.locator('#messages img, #messages script')).toHaveCount(0);
      expect(await page.evaluate(() => (window as unknown as { __xss?: string }).__xss)).toBeUndefined();
      await shot(page, `safety-html-as-text-${format}`);
    });
  }
});

test('without WebGPU the app says so and stays usable', async ({ page }) => {
  await page.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
  });
  await openApp(page);
  const warning = page.locator('#gpu-warning');
  await expect(warning).toBeVisible();
  await expect(warning).toContainText('WebGPU is not available in this browser');
  await expect(warning).toContainText('saved chats');
  // Sending without a model explains what to do; chats, settings and tabs keep working.
  await page.fill('#chat-input', 'Hello?');
  await page.click('#send');
  await expect(page.locator('#messages .msg.notice').last()).toContainText('No model is loaded');
  await page.click('#new-chat');
  await page.click('#tab-compression');
  await page.check('#kv-mode-kivi');
  await expect(page.locator('#kv-status')).toContainText('will be used when a model loads');
  await page.click('#tab-generation');
  await setField(page, '#temperature', '0.7');
  await expect(page.locator('#temperature')).toHaveValue('0.7');
  // A chat holding only the app's notice is not kept in the history.
  await expect(page.locator('#chat-list .chat-item')).toHaveCount(0);
  await shot(page, 'no-webgpu');
});
