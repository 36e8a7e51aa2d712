/**
 * UI entry: starts the engine worker and mounts the app on the library's engine (src/lib) over it (or the benchmark mode, `?bench=...`, or the
 * quality-evaluation mode, `?eval=...`).
 * The main thread never touches the GPU. Dev builds, or `?test-hooks` in the URL, expose `window.__kvtabTest`
 * for e2e fault tests (crashWorker: the engine worker dies as in a crash; loseDevice: the engine's GPU device is
 * destroyed behind its back, as a driver reset would).
 */
import { isBenchMode, runBenchMode } from './ui/bench-mode';
import { isEvalMode, runEvalMode } from './ui/eval-mode';
import { mountApp } from './ui/app';
import { backendOfClient } from './lib/backend';
import { engineOn } from './lib/engine';
import { startEngineWorker } from './worker/client';

const root = document.getElementById('app') as HTMLElement;
const query = new URLSearchParams(location.search);
if (import.meta.env.PROD && !isBenchMode(query) && !isEvalMode(query)) void import('./ui/app-update').then((m) => m.startAppUpdates()); // offline shell + update notice
if (isBenchMode(query)) void runBenchMode(root, startEngineWorker(), query);
else if (isEvalMode(query)) void runEvalMode(root, startEngineWorker(), query);
else {
  const client = startEngineWorker();
  if (import.meta.env.DEV || query.has('test-hooks')) {
    (window as unknown as { __kvtabTest: object }).__kvtabTest = { crashWorker: () => client.crashForTest(), loseDevice: () => client.api.debugLoseDevice() };
  }
  void mountApp(root, engineOn(backendOfClient(client))).catch((err) => {
    root.textContent = `The app failed to start: ${(err as Error).message ?? String(err)}`;
    console.error(err);
  });
}
