import { defineConfig } from '@playwright/test';
import { CHROMIUM_FLAGS, CHROMIUM_PATH } from './scripts/chromium-app';

/**
 * E2E tests drive the system Chromium (never a downloaded one) with WebGPU enabled; headless
 * Chromium uses SwiftShader. Two servers start before the tests:
 *   - the built app: `vite build && vite preview` on APP_PORT (default 4173);
 *   - the local hub (scripts/hub-server.ts) on HUB_PORT (default 8788), serving ../shared/models
 *     as `local/<name>`; tests read its base URL from process.env.HUB_URL.
 * Outside CI, servers already listening on those ports are reused.
 */
process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD ??= '1';
const APP_PORT = Number(process.env.APP_PORT ?? 4173);
const HUB_PORT = Number(process.env.HUB_PORT ?? 8788);
process.env.HUB_URL ??= `http://127.0.0.1:${HUB_PORT}`;
const APP_URL = `http://127.0.0.1:${APP_PORT}`;
const CI = !!process.env.CI;

export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results',
  workers: 1,
  fullyParallel: false,
  retries: CI ? 1 : 0,
  timeout: 180_000,
  forbidOnly: CI,
  reporter: CI ? [['list'], ['html', { open: 'never' }]] : [['list']],
  use: {
    baseURL: APP_URL,
    browserName: 'chromium',
    viewport: { width: 1280, height: 800 },
    screenshot: 'on',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: CHROMIUM_PATH,
      args: CHROMIUM_FLAGS,
    },
  },
  webServer: [
    {
      command: `npx vite build && npx vite preview --port ${APP_PORT} --strictPort`,
      url: APP_URL,
      reuseExistingServer: !CI,
      timeout: 240_000,
      stdout: 'pipe',
    },
    {
      command: `npx tsx scripts/hub-server.ts --port ${HUB_PORT}`,
      url: `${process.env.HUB_URL}/`,
      reuseExistingServer: !CI,
      timeout: 60_000,
    },
  ],
});
