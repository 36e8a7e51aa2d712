/**
 * Shared steps of the chat app's e2e specs: open the app against the local hub, load a model through the
 * model manager, set sampling, send a message and wait for the reply, save screenshots.
 */
import { expect, type Locator, type Page } from '@playwright/test';

/** The local hub's base URL (playwright.config.ts). */
export const HUB = process.env.HUB_URL as string;

/** Open the app with the hub URL preset. */
export async function openApp(page: Page, hub: string = HUB): Promise<void> {
  await page.goto(`/?hub=${encodeURIComponent(hub)}`);
  await expect(page.locator('#chat-input')).toBeVisible();
}

/** Wait until a model is loaded (the header says so). */
export async function waitForModel(page: Page): Promise<void> {
  await expect(page.locator('#model-status')).toHaveAttribute('data-state', 'ready', { timeout: 150_000 });
}

/** Load a hub model by id through the model manager. */
export async function loadHubModel(page: Page, repo: string): Promise<void> {
  await page.click('#tab-model');
  await page.fill('#model-id-input', repo);
  await page.click('#model-id-load');
  await waitForModel(page);
}

/** Load the offline demo (stories260k shipped under public/). */
export async function loadDemo(page: Page): Promise<void> {
  await page.click('#tab-model');
  await page.click('#demo-load');
  await waitForModel(page);
}

/** Type into a settings input and commit it (settings apply on `change`). */
export async function setField(page: Page, selector: string, value: string): Promise<void> {
  const input = page.locator(selector);
  await input.fill(value);
  await input.dispatchEvent('change');
}

/** Set sampling parameters on the Generation tab. */
export async function setSampling(page: Page, s: { temperature?: number; maxTokens?: number; seed?: number; topK?: number; topP?: number }): Promise<void> {
  await page.click('#tab-generation');
  if (s.temperature !== undefined) await setField(page, '#temperature', String(s.temperature));
  if (s.topP !== undefined) await setField(page, '#top-p', String(s.topP));
  if (s.topK !== undefined) await setField(page, '#top-k', String(s.topK));
  if (s.maxTokens !== undefined) await setField(page, '#max-tokens', String(s.maxTokens));
  if (s.seed !== undefined) await setField(page, '#seed', String(s.seed));
}

/** The n-th reply of the open chat. */
export function reply(page: Page, index: number): Locator {
  return page.locator('#messages .msg.assistant').nth(index);
}

/** Send a message; returns the reply (streaming). */
export async function send(page: Page, text: string): Promise<Locator> {
  const before = await page.locator('#messages .msg.assistant').count();
  await page.fill('#chat-input', text);
  await page.click('#send');
  const r = reply(page, before);
  await expect(r).toBeVisible();
  return r;
}

/** Wait until a reply is finished (done or stopped). */
export async function finished(r: Locator, timeout = 150_000): Promise<void> {
  await expect(r).toHaveAttribute('data-status', /^(done|stopped)$/, { timeout });
}

/** Send a message and wait for the whole reply. */
export async function sendAndWait(page: Page, text: string): Promise<Locator> {
  const r = await send(page, text);
  await finished(r);
  return r;
}

/** The cache meter's numbers, from its data attributes. */
export async function meterState(page: Page): Promise<{ bytes: number; tokens: number; mode: string; updates: number }> {
  const m = page.locator('#cache-meter');
  return {
    bytes: Number(await m.getAttribute('data-bytes')),
    tokens: Number(await m.getAttribute('data-tokens')),
    mode: (await m.getAttribute('data-mode')) ?? '',
    updates: Number(await m.getAttribute('data-updates')),
  };
}

/** Save a screenshot artifact to e2e/screenshots/. */
export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `e2e/screenshots/${name}.png` });
}

/** Screenshots at the phone size (390×844): the chat, the chats list and the settings; restores the viewport. */
export async function phoneShots(page: Page, name: string): Promise<void> {
  const desktop = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, `${name}-phone-chat`);
  await page.click('#view-chats');
  await shot(page, `${name}-phone-chats`);
  await page.click('#view-settings');
  await shot(page, `${name}-phone-settings`);
  await page.click('#view-chat');
  if (desktop) await page.setViewportSize(desktop);
}

/** What a mid-reply trigger does in the page (crash and lose-device need `?test-hooks`). */
export type MidReplyAction = 'stop' | 'crash' | 'lose-device' | 'reload';

/**
 * Arm a trigger in the page for the next reply (call it before sending): in the callback of the DOM change that first shows `when` in
 * the newest reply (text it contains, or more than that many characters), `action` runs in the page: click
 * Stop, crash the worker, lose the GPU device or reload. Playwright's own checks look a few times a second, and
 * at ~1000 tok/s a whole reply can end between two looks, so an action meant for the middle of a reply is taken
 * there. The reply's shown text (innerText) at that moment is kept in sessionStorage, so it outlives a reload;
 * `midReplyText` reads it.
 */
export async function armMidReply(page: Page, when: string | number, action: MidReplyAction): Promise<void> {
  await page.evaluate(
    ({ when, action }) => {
      sessionStorage.removeItem('midReplyText');
      const messages = document.querySelector('#messages') as HTMLElement;
      const replies = () => messages.querySelectorAll<HTMLElement>('.msg.assistant .msg-body');
      const before = replies().length;
      const observer = new MutationObserver(() => {
        const bodies = replies();
        const body = bodies.length > before ? bodies[bodies.length - 1] : null;
        const text = body?.textContent ?? '';
        if (!(typeof when === 'string' ? text.includes(when) : text.trim().length > when)) return;
        observer.disconnect();
        sessionStorage.setItem('midReplyText', (body as HTMLElement).innerText.trim());
        const hooks = (window as unknown as { __kvtabTest?: { crashWorker(): void; loseDevice(): Promise<void> } }).__kvtabTest;
        if (action === 'stop') (document.querySelector('#stop') as HTMLButtonElement).click();
        else if (action === 'crash') hooks?.crashWorker();
        else if (action === 'lose-device') void hooks?.loseDevice();
        else location.reload();
      });
      observer.observe(messages, { childList: true, characterData: true, subtree: true });
    },
    { when, action },
  );
}

/** The reply's shown text when the armed trigger fired (waits for it). */
export async function midReplyText(page: Page, timeout = 60_000): Promise<string> {
  await expect.poll(() => page.evaluate(() => sessionStorage.getItem('midReplyText') !== null), { timeout }).toBe(true);
  return (await page.evaluate(() => sessionStorage.getItem('midReplyText'))) as string;
}
