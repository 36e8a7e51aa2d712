/**
 * Main-thread side of the engine worker: starts the worker and wraps it in a typed comlink proxy.
 */
import * as Comlink from 'comlink';
import type { EngineApi } from './api';

/** A typed handle to the engine running in its worker. */
export interface EngineClient {
  api: Comlink.Remote<EngineApi>;
  terminate(): void;
}

/** Start the engine worker. */
export function startEngineWorker(): EngineClient {
  const worker = new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module', name: 'engine' });
  const api = Comlink.wrap<EngineApi>(worker);
  return {
    api,
    terminate() {
      api[Comlink.releaseProxy]();
      worker.terminate();
    },
  };
}

/** Wrap a callback so it can be passed to the worker. */
export const callback = <T extends (...args: never[]) => unknown>(fn: T): T => Comlink.proxy(fn);
