/**
 * UI entry: starts the engine worker and mounts the app (or the benchmark mode, `?bench=...`, or the
 * quality-evaluation mode, `?eval=...`).
 * The main thread never touches the GPU.
 */
import { isBenchMode, runBenchMode } from './ui/bench-mode';
import { isEvalMode, runEvalMode } from './ui/eval-mode';
import { mountApp } from './ui/app';
import { startEngineWorker } from './worker/client';

const root = document.getElementById('app') as HTMLElement;
const query = new URLSearchParams(location.search);
if (isBenchMode(query)) void runBenchMode(root, startEngineWorker(), query);
else if (isEvalMode(query)) void runEvalMode(root, startEngineWorker(), query);
else {
  void mountApp(root, startEngineWorker()).catch((err) => {
    root.textContent = `The app failed to start: ${(err as Error).message ?? String(err)}`;
    console.error(err);
  });
}
