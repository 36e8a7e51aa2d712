/**
 * The offline app shell's page side: registers the service worker that vite-plugin-pwa builds (Workbox
 * generateSW, vite.config.ts), which precaches the whole built app (index.html, every JS chunk including the
 * engine worker, the CSS and the demo model), so after one visit the app opens with no network.
 *
 * registerType 'prompt': a new build's service worker installs in the background and then waits. The page
 * shows "A new version of kvtab is ready — Reload"; the button tells the waiting worker to take over and
 * reloads the page into the new build (`updateSW(true)`). Nothing is swapped under a running chat otherwise.
 *
 * `<html data-build>` carries the build's stamp (env KVTAB_BUILD_STAMP at build time), and `data-offline-ready`
 * turns "true" once the first service worker has precached everything. Called from src/main.ts in production
 * builds only (the dev server serves no service worker).
 */
import { registerSW } from 'virtual:pwa-register';
import { el } from './dom';

/** The notice's words, before its Reload button. */
export const UPDATE_TEXT = 'A new version of kvtab is ready —';

/** Register the service worker and show the update notice when a new build is waiting. */
export function startAppUpdates(): void {
  const html = document.documentElement;
  html.dataset.build = __KVTAB_BUILD__;
  if (!('serviceWorker' in navigator)) return;

  const button = el('button', { id: 'app-update-reload', type: 'button', className: 'banner-action', textContent: 'Reload' });
  const notice = el('div', { id: 'app-update', className: 'banner update', role: 'status', hidden: true }, el('span', {}, UPDATE_TEXT), ' ', button);
  document.body.append(notice);

  const updateSW = registerSW({
    onNeedRefresh() {
      button.disabled = false;
      notice.hidden = false;
    },
    onOfflineReady() {
      html.dataset.offlineReady = 'true';
    },
    onRegisterError(err: unknown) {
      console.warn('kvtab: the service worker did not register; the app works, but not offline.', err);
    },
  });
  button.onclick = () => {
    button.disabled = true;
    void updateSW(true);
  };
}
