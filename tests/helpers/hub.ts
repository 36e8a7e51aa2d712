/**
 * Test fixtures: a hub-like HTTP server over the shared models and temporary model folders, and a
 * Node engine that loads from it through the real loading code.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultRepos, sharedModelsDir, startHubServer, type HubServer } from '../../scripts/hub-server';
import { afterAll, beforeAll } from 'vitest';
import { Engine } from '../../src/engine/engine';
import type { LoadOptions } from '../../src/worker/api';
import type { ModelSourceSpec } from '../../src/model/source';
import { nodeGpu } from './gpu';

/** Start a hub server serving every shared model as `local/<name>`. */
export async function startTestHub(): Promise<HubServer> {
  return startHubServer({ repos: defaultRepos() });
}

/** A source spec for a repo on the test hub. */
export function hubSpec(hub: HubServer, repo: string): ModelSourceSpec {
  return { kind: 'hub', repo, baseUrl: hub.baseUrl };
}

/** A fresh engine on the Node Dawn device. */
export function nodeEngine(): Engine {
  return new Engine(nodeGpu());
}

/** A Node engine and a test hub started before the enclosing suite's tests; after them the engine is unloaded and the hub closed. */
export function useHubEngine(): { readonly engine: Engine; readonly hub: HubServer } {
  const engine = nodeEngine();
  let hub: HubServer | null = null;
  beforeAll(async () => {
    hub = await startTestHub();
  });
  afterAll(async () => {
    await engine.unload();
    await hub?.close();
  });
  return {
    engine,
    get hub() {
      if (!hub) throw new Error('the test hub starts in beforeAll');
      return hub;
    },
  };
}

/**
 * A Node engine with `repo` loaded from a test hub before the enclosing suite's tests, unloaded after them.
 * Read `.engine` inside tests (it is set by beforeAll).
 */
export function useLoadedEngine(repo: string, options: LoadOptions): { engine: Engine; hub: HubServer } {
  const ctx = {} as { engine: Engine; hub: HubServer };
  beforeAll(async () => {
    ctx.hub = await startTestHub();
    ctx.engine = nodeEngine();
    await ctx.engine.load(hubSpec(ctx.hub, repo), options);
  });
  afterAll(async () => {
    await ctx.engine?.unload();
    await ctx.hub?.close();
  });
  return ctx;
}

/**
 * A scratch folder, an empty test hub (tests add repos with `hub.setRepo`) and a Node engine, made before the
 * enclosing suite's tests and removed after them. Read the fields inside tests.
 */
export function useScratchHub(prefix: string): { readonly root: string; readonly hub: HubServer; readonly engine: Engine } {
  const ctx = {} as { root: string; hub: HubServer; engine: Engine };
  beforeAll(async () => {
    ctx.root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    ctx.hub = await startHubServer({ repos: {} });
    ctx.engine = nodeEngine();
  });
  afterAll(async () => {
    await ctx.engine?.unload();
    await ctx.hub?.close();
    if (ctx.root) fs.rmSync(ctx.root, { recursive: true, force: true });
  });
  return ctx;
}

/** Path of a shared model folder. */
export function sharedModel(name: string): string {
  return path.join(sharedModelsDir(), name);
}

/** Copy a shared model into a temp folder so a test can damage it. */
export function copyModel(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `kvtab-${name}-`));
  for (const f of fs.readdirSync(sharedModel(name))) fs.copyFileSync(path.join(sharedModel(name), f), path.join(dir, f));
  return dir;
}

/** Golden greedy ids from shared/models/README.md. */
export const GOLDEN = {
  onceUponATime: {
    prompt: 'Once upon a time',
    promptIds: [1, 403, 407, 261, 378],
    ids: [
      432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433,
      426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267,
      414, 270, 333, 415, 426, 13, 438, 310,
    ],
  },
  tomAndSue: {
    prompt: 'Tom and Sue went to the',
    promptIds: [1, 274, 287, 269, 301, 425, 411, 263, 377, 267, 265],
    ids: [
      282, 295, 433, 426, 342, 394, 261, 370, 268, 414, 444, 335, 261, 370, 268, 414, 444, 426, 342, 391, 266, 267, 337, 335, 312, 426,
      342, 391, 266, 267, 337, 335, 265, 268, 414, 444, 426, 342, 391, 266,
    ],
  },
};
