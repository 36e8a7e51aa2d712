/**
 * UI entry: starts the engine worker and mounts the view. The main thread never touches the GPU.
 */
import { mountBasicView } from './ui/basic-view';
import { startEngineWorker } from './worker/client';

const root = document.getElementById('app') as HTMLElement;
mountBasicView(root, startEngineWorker());
