/**
 * The engine in the calling thread (Node with the `webgpu` package, or inside a worker of the caller's own).
 * Its own module, imported only by createEngine (src/lib/index.ts), so a bundle that runs the engine in a worker
 * (the app) never references the engine from its main thread.
 */
import type { Engine } from '../engine/engine';
import { retyped, type AsyncEngineApi, type Backend } from './backend';

/** A backend that runs the engine in this thread (loaded on demand, so worker-mode bundles leave the engine out). */
export async function inThreadBackend(gpu?: GPU): Promise<Backend> {
  const { Engine: EngineClass } = await import('../engine/engine');
  const engine: Engine = new EngineClass(gpu);
  return { api: retyped(engine as unknown as AsyncEngineApi), callback: (fn) => fn, client: null, terminate: () => void engine.unload() };
}

