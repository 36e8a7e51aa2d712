/**
 * Headless Chromium with WebGPU for the Playwright tests and the benchmarks (shared/docs/testing.md):
 * the system Chromium, never a downloaded one, with the flags that enable WebGPU on SwiftShader and keep
 * the browser off the network. `withAppInChromium` serves a built app with `vite preview` next to a local
 * hub and hands a launched browser to the caller, closing all three afterwards.
 */
import net from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type Page } from '@playwright/test';
import { preview } from 'vite';
import { startHubServer, type HubServer } from './hub-server';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** WebGPU without a GPU (SwiftShader), no sandbox (containers), and no background network traffic. */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface ChromiumApp {
  browser: Browser;
  /** The built app, served by `vite preview`. */
  appUrl: string;
  hub: HubServer;
}

/** Serve the app built in `outDir` and the hub `repos`, launch headless Chromium, run `use`, then close everything. */
export async function withAppInChromium<T>(root: string, outDir: string, repos: Record<string, string>, use: (app: ChromiumApp) => Promise<T>): Promise<T> {
  const hub = await startHubServer({ repos });
  const port = await freePort();
  const server = await preview({ configFile: path.join(root, 'vite.config.ts'), logLevel: 'warn', build: { outDir }, preview: { port, strictPort: true } });
  try {
    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--headless', ...CHROMIUM_FLAGS] });
    try {
      return await use({ browser, appUrl: `http://127.0.0.1:${port}/`, hub });
    } finally {
      await browser.close();
    }
  } finally {
    await new Promise<void>((resolve) => server.httpServer.close(() => resolve()));
    await hub.close();
  }
}

/**
 * Open one of the page's modes (bench, eval) and wait for its status element `selector`, which holds JSON and
 * a `data-status`: `ok` gives the parsed JSON; any other status throws the page's `{ error }`.
 */
export async function openPageMode<T>(page: Page, url: string, selector: string, ok: string, timeoutMs: number): Promise<T> {
  await page.goto(url);
  const status = page.locator(`${selector}[data-status]`);
  await status.waitFor({ timeout: timeoutMs });
  const text = (await status.textContent()) ?? '';
  if ((await status.getAttribute('data-status')) !== ok) throw new Error((JSON.parse(text) as { error: string }).error);
  return JSON.parse(text) as T;
}

/** `p`, or an error naming `what` when it takes longer than `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms / 1000} s`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
