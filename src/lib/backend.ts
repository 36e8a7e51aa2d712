/**
 * Where the library's engine runs: in its own Web Worker (the default in browsers; the page stays responsive)
 * or in the calling thread (Node, or a worker of the caller's own). Both look the same to the rest of the
 * library: the EngineApi with every method returning a promise, and a way to pass callbacks to it.
 * Errors come back as the named classes of src/errors.ts (a worker's comlink keeps only name and message).
 */
import * as Errors from '../errors';
import { createEngineClient, type EngineClient, type WorkerLike, callback } from '../worker/client';
import type { EngineApi } from '../worker/api';

/** The EngineApi with every method async, as the worker proxy exposes it. */
export type AsyncEngineApi = { [K in keyof EngineApi]: (...args: Parameters<EngineApi[K]>) => Promise<Awaited<ReturnType<EngineApi[K]>>> };

/** Where the engine runs. */
export interface Backend {
  readonly api: AsyncEngineApi;
  /** Wrap a callback so it can be passed to `api` (comlink proxy for a worker; itself in-thread). */
  callback<T extends (...args: never[]) => unknown>(fn: T): T;
  /** The worker client (crash events, restart), when the engine runs in a worker. */
  readonly client: EngineClient | null;
  terminate(): void;
}

/** How `createEngine` runs the engine. */
export interface BackendOptions {
  /**
   * true (default where Worker exists): start the library's engine worker. A Worker, or a function that makes
   * one: use it (it must run `Comlink.expose(new Engine())`, as src/worker/engine.worker.ts does). false: run
   * the engine in this thread.
   */
  worker?: boolean | WorkerLike | (() => WorkerLike);
  /** The WebGPU entry point for an in-thread engine (default navigator.gpu); Node passes the `webgpu` package's. */
  gpu?: GPU;
}

type ErrorClass = new (message: string) => Errors.EngineError;
const CLASSES: Record<string, ErrorClass> = Object.fromEntries(
  (Object.values(Errors) as unknown[])
    .filter((v): v is ErrorClass => typeof v === 'function' && (v as { prototype?: unknown }).prototype instanceof Errors.EngineError)
    .map((C) => [new C('').name, C]),
);

/** The error as its named class (errors from a worker arrive as plain Errors that keep their name). */
export function asEngineError(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof Errors.EngineError) return err;
  const C = CLASSES[err.name];
  if (!C) return err;
  const typed = Object.create(C.prototype) as Errors.EngineError;
  Object.assign(typed, err, { name: err.name, message: err.message, stack: err.stack });
  return typed;
}

export function retyped(api: AsyncEngineApi): AsyncEngineApi {
  return new Proxy(api, {
    get(target, prop) {
      const fn = (target as unknown as Record<string | symbol, unknown>)[prop];
      if (typeof fn !== 'function') return fn;
      return (...args: unknown[]) =>
        Promise.resolve()
          .then(() => (fn as (...a: unknown[]) => unknown).apply(target, args))
          .catch((err: unknown) => {
            throw asEngineError(err);
          });
    },
  });
}

/** Start the library's own engine worker (bundled next to the library by Vite). */
function spawnLibraryWorker(): WorkerLike {
  return new Worker(new URL('../worker/engine.worker.ts', import.meta.url), { type: 'module', name: 'kvtab-engine' });
}

/** A backend on a worker: the library's own (`true`), one given, or one made by a function. */
export function workerBackend(worker: true | WorkerLike | (() => WorkerLike)): Backend {
  const spawn = worker === true ? spawnLibraryWorker : typeof worker === 'function' ? worker : () => worker;
  return backendOfClient(createEngineClient(spawn));
}

/** A backend over an existing worker client (the app's, which also handles its crashes and restarts). */
export function backendOfClient(client: EngineClient): Backend {
  return { api: retyped(client.api as unknown as AsyncEngineApi), callback, client, terminate: () => client.terminate() };
}
