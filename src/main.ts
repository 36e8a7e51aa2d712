/**
 * UI entry: starts the engine worker and mounts the view (or the benchmark mode, `?bench=...`).
 * The main thread never touches the GPU.
 */
import { isBenchMode, runBenchMode } from './ui/bench-mode';
import { mountBasicView } from './ui/basic-view';
import { startEngineWorker } from './worker/client';

const root = document.getElementById('app') as HTMLElement;
const query = new URLSearchParams(location.search);
if (isBenchMode(query)) void runBenchMode(root, startEngineWorker(), query);
else mountBasicView(root, startEngineWorker());
