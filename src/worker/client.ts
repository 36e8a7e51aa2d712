/**
 * Main-thread side of the engine worker: starts the worker and wraps it in a typed comlink proxy.
 * comlink alone would leave a call pending forever when its worker dies, so every call also waits on the
 * worker's `error` and `messageerror` events: a crash rejects every pending call with WorkerCrashedError, and
 * later calls fail fast with it until `restart()` starts a fresh worker (which has no model loaded).
 */
import * as Comlink from 'comlink';
import { WorkerCrashedError } from '../errors';
import type { EngineApi } from './api';

/** What the client needs of a Worker (a real one in the browser, a fake one in Node tests). */
export type WorkerLike = Comlink.Endpoint & Pick<Worker, 'terminate' | 'dispatchEvent'>;

/** A typed handle to the engine running in its worker. */
export interface EngineClient {
  /** The engine's API; always forwards to the current worker. */
  readonly api: Comlink.Remote<EngineApi>;
  /** The error the worker crashed with, or null while it runs. */
  readonly crashed: WorkerCrashedError | null;
  /** Hear crashes (after the pending calls were rejected); returns an unsubscribe function. */
  onCrash(listener: (err: WorkerCrashedError) => void): () => void;
  /** Replace the worker by a fresh one (terminating the old one if it still runs); load the model again after it. */
  restart(): void;
  /** Test hook: terminate the worker and fire its `error` event, as a worker that died. */
  crashForTest(): void;
  terminate(): void;
}

/** The words of a crash: what happened, that the chat is kept, and what to do. */
export function crashMessage(cause: string): string {
  return `The engine stopped unexpectedly (${cause}). Your chat is kept. Press Restart engine to load the model again.`;
}

function describeEvent(e: Event): string {
  if (e.type === 'messageerror') return 'a message from the engine could not be read';
  const message = (e as ErrorEvent).message;
  return message ? `worker error: ${message}` : 'the engine worker died';
}

/** Wrap workers made by `spawn` (called now and on each restart) into one client. */
export function createEngineClient(spawn: () => WorkerLike): EngineClient {
  let worker: WorkerLike;
  let remote: Comlink.Remote<EngineApi>;
  let crashed: WorkerCrashedError | null = null;
  const pending = new Set<(err: WorkerCrashedError) => void>();
  const listeners = new Set<(err: WorkerCrashedError) => void>();

  /** Stop the current worker and reject what waits on it; `notify`: tell the listeners (a crash, not a request). */
  const stop = (err: WorkerCrashedError, notify: boolean) => {
    if (crashed) return;
    crashed = err;
    worker.removeEventListener('error', onEvent);
    worker.removeEventListener('messageerror', onEvent);
    if (!notify) remote[Comlink.releaseProxy]();
    worker.terminate();
    for (const reject of [...pending]) reject(err);
    pending.clear();
    if (notify) for (const l of [...listeners]) l(err);
  };
  const onEvent = (e: Event) => stop(new WorkerCrashedError(crashMessage(describeEvent(e))), true);

  const start = () => {
    worker = spawn();
    remote = Comlink.wrap<EngineApi>(worker);
    worker.addEventListener('error', onEvent);
    worker.addEventListener('messageerror', onEvent);
    crashed = null;
  };
  start();

  const call = (method: string, args: unknown[]): Promise<unknown> => {
    if (crashed) return Promise.reject(crashed);
    return new Promise((resolve, reject) => {
      const fail = (err: WorkerCrashedError) => reject(err);
      pending.add(fail);
      const fn = (remote as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[method];
      fn(...args).then(
        (v) => {
          pending.delete(fail);
          resolve(v);
        },
        (e) => {
          pending.delete(fail);
          reject(e);
        },
      );
    });
  };
  // Only method calls: `then` stays undefined so that the API object itself is not mistaken for a promise.
  const api = new Proxy({} as Comlink.Remote<EngineApi>, {
    get: (_, prop) => (typeof prop !== 'string' || prop === 'then' ? undefined : (...args: unknown[]) => call(prop, args)),
  });

  return {
    api,
    get crashed() {
      return crashed;
    },
    onCrash(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    restart() {
      stop(new WorkerCrashedError(crashMessage('the engine was restarted')), false);
      start();
    },
    crashForTest() {
      const w = worker;
      w.terminate();
      const message = 'terminated by the test hook';
      w.dispatchEvent(typeof ErrorEvent === 'function' ? new ErrorEvent('error', { message }) : Object.assign(new Event('error'), { message }));
    },
    terminate() {
      stop(new WorkerCrashedError(crashMessage('the page closed the engine')), false);
    },
  };
}

/** Start the engine worker. */
export function startEngineWorker(): EngineClient {
  return createEngineClient(() => new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module', name: 'engine' }));
}

/** Wrap a callback so it can be passed to the worker. */
export const callback = <T extends (...args: never[]) => unknown>(fn: T): T => Comlink.proxy(fn);
