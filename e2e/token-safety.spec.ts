/**
 * Token safety in the real app (issue #12, item 4): a `?hub=` link to a plain-http hub, with an access token
 * entered, sends the hub no Authorization header (the load goes on without it and says so) and the model
 * manager warns about plain http. A hub the user allowed and trusted gets the token, but a redirect to another
 * host does not carry it (Chromium drops it). The Content-Security-Policy of index.html reports no violation
 * while a model loads and a chat runs.
 */
import { expect, test, type Page } from '@playwright/test';
import { defaultRepos, startHubServer, type HubServer } from '../scripts/hub-server';
import { HUB, finished, loadDemo, openApp, send, setSampling, shot } from './chat-helpers';

type Seen = { server: string; method: string; url: string; auth?: string };

/** Open the hub settings and enter a token (and, optionally, the allowed token hosts). */
async function enterToken(page: Page, token: string, hosts?: string): Promise<void> {
  await page.click('#tab-model');
  await page.locator('.mm-any summary').click();
  await page.fill('#hub-token', token);
  if (hosts !== undefined) {
    await page.fill('#token-hosts', hosts);
    await page.locator('#token-hosts').dispatchEvent('change');
  }
}

async function loadRepo(page: Page, repo: string): Promise<void> {
  await page.fill('#model-id-input', repo);
  await page.click('#model-id-load');
  // The status still reads 'ready' for the previous model until the new load starts: wait for this repo's name.
  await expect(page.locator('#model-status')).toContainText(repo, { timeout: 150_000 });
  await expect(page.locator('#model-status')).toHaveAttribute('data-state', 'ready', { timeout: 150_000 });
}

test.describe('token safety', () => {
  const seen: Seen[] = [];
  let cdn: HubServer;
  let front: HubServer;
  test.beforeAll(async () => {
    const repos = defaultRepos();
    const log = (server: string) => (r: { method: string; url: string; headers: Record<string, unknown> }) =>
      seen.push({ server, method: r.method, url: r.url, auth: r.headers.authorization as string | undefined });
    cdn = await startHubServer({ repos, onRequest: log('cdn') });
    front = await startHubServer({ repos, redirectTo: cdn.baseUrl, onRequest: log('front') });
  });
  test.afterAll(async () => {
    await cdn?.close();
    await front?.close();
  });
  test.beforeEach(() => void (seen.length = 0));

  test('fault: token host from a ?hub= http link gets no Authorization header; the plain-http warning shows', async ({ page }) => {
    await openApp(page, cdn.baseUrl);
    await expect(page.locator('#hub-http-warning')).toBeVisible();
    await expect(page.locator('#hub-http-warning')).toContainText('plain http');
    await expect(page.locator('#hub-link-notice')).toBeVisible();
    await enterToken(page, 'hf_secret_e2e', `http://${new URL(cdn.baseUrl).host}`); // allowed, but from a link
    await loadRepo(page, 'local/stories260k');
    await expect(page.locator('#token-notice')).toBeVisible();
    await expect(page.locator('#token-notice')).toContainText('came from a link');
    await shot(page, 'token-safety-link');
    const gets = seen.filter((s) => s.method !== 'OPTIONS');
    expect(gets.some((s) => s.url.includes('/resolve/main/model.safetensors'))).toBe(true);
    expect(gets.filter((s) => s.auth !== undefined)).toEqual([]);
  });

  test('fault: token host allowed and trusted gets the token, a redirect to another host does not', async ({ page }) => {
    await openApp(page, front.baseUrl);
    await enterToken(page, 'hf_secret_e2e', front.baseUrl);
    await page.click('#hub-trust');
    await expect(page.locator('#hub-link-notice')).toBeHidden();
    await loadRepo(page, 'local/stories260k');
    await expect(page.locator('#token-notice')).toBeHidden();
    const gets = seen.filter((s) => s.method !== 'OPTIONS');
    // The load's own requests (the catalog's size probes of other repos never carry the token).
    const fronts = gets.filter((s) => s.server === 'front' && s.url.includes('local/stories260k'));
    const cdns = gets.filter((s) => s.server === 'cdn');
    expect(fronts.length).toBeGreaterThan(0);
    expect(fronts.every((s) => s.auth === 'Bearer hf_secret_e2e')).toBe(true);
    expect(cdns.some((s) => s.url.includes('/resolve/main/model.safetensors'))).toBe(true);
    expect(cdns.filter((s) => s.auth !== undefined)).toEqual([]);
  });

  test('fault: token host policy page: the Content-Security-Policy reports no violation during a load and a chat', async ({ page }) => {
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(`console: ${m.text()}`);
    });
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        const list = ((window as unknown as { __csp?: string[] }).__csp ??= []);
        list.push(`${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    await openApp(page, HUB);
    expect(await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content')).toContain("script-src 'self'");
    await loadDemo(page);
    await setSampling(page, { temperature: 0, maxTokens: 12 });
    const r = await send(page, 'Once upon a time');
    await finished(r);
    await page.click('#tab-model');
    await loadRepo(page, 'local/stories260k');
    await finished(await send(page, 'Tom and Sue'));
    const reported = await page.evaluate(() => (window as unknown as { __csp?: string[] }).__csp ?? []);
    expect([...reported, ...violations]).toEqual([]);
    // The listener works: a fetch the policy forbids is reported.
    await page.evaluate(() => fetch('http://192.0.2.1/x').catch(() => null));
    await expect.poll(() => page.evaluate(() => ((window as unknown as { __csp?: string[] }).__csp ?? []).join(' '))).toContain('connect-src');
  });
});
