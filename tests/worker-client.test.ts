/**
 * Issue #12 (3): the worker client (src/worker/client.ts) against a fake Worker in Node (a MessageChannel with
 * a comlink-exposed fake engine on the far side): a crash rejects every pending call with WorkerCrashedError,
 * later calls fail fast until restart(), and restart() spawns a fresh worker.
 */
import * as Comlink from 'comlink';
import { describe, expect, it } from 'vitest';
import { EngineBusyError, WorkerCrashedError } from '../src/errors';
import { createEngineClient } from '../src/worker/client';

/** A fake engine: `stats` answers, `generate` never returns (a reply in flight), `abort` throws a named error. */
function fakeEngine(id: number) {
  return {
    stats: () => ({ loaded: false, worker: id }),
    generate: () => new Promise(() => {}),
    load: () => new Promise(() => {}),
    abort: () => {
      throw new EngineBusyError('busy');
    },
  };
}

/** A Worker stand-in: messages go through a MessageChannel to a comlink-exposed fake engine. */
class FakeWorker extends EventTarget {
  terminated = false;
  private readonly port: MessagePort;
  constructor(id: number) {
    super();
    const { port1, port2 } = new MessageChannel();
    Comlink.expose(fakeEngine(id), port2);
    this.port = port1;
    port1.addEventListener('message', (e) => {
      if (!this.terminated) this.dispatchEvent(new MessageEvent('message', { data: (e as MessageEvent).data }));
    });
    port1.start();
  }
  postMessage(message: unknown, transfer: Transferable[] = []): void {
    if (!this.terminated) this.port.postMessage(message, transfer);
  }
  terminate(): void {
    this.terminated = true;
    this.port.close();
  }
}

function setup() {
  const workers: FakeWorker[] = [];
  const client = createEngineClient(() => {
    const w = new FakeWorker(workers.length);
    workers.push(w);
    return w;
  });
  const crashes: WorkerCrashedError[] = [];
  client.onCrash((e) => crashes.push(e));
  // The fake's API differs from EngineApi; call it through a loose view.
  const api = client.api as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  return { client, api, workers, crashes };
}

/** Settle a promise into its error (or fail if it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => expect.unreachable('should have rejected'),
    (e) => e,
  );
}

describe('worker client', () => {
  it('forwards calls and passes the engine’s own errors through', async () => {
    const { api, crashes } = setup();
    expect(await api.stats()).toEqual({ loaded: false, worker: 0 });
    const err = await rejection(api.abort());
    expect((err as Error).name).toBe('EngineBusyError');
    expect(crashes).toHaveLength(0);
  });

  it('fault: worker crash (error event) rejects every pending call with WorkerCrashedError', async () => {
    const { client, api, workers, crashes } = setup();
    const generating = rejection(api.generate('Once', {}));
    const loading = rejection(api.load({}));
    await new Promise((r) => setTimeout(r, 20));
    workers[0].dispatchEvent(new Event('error'));
    const [a, b] = await Promise.all([generating, loading]);
    expect(a).toBeInstanceOf(WorkerCrashedError);
    expect(b).toBe(a);
    expect((a as Error).message).toMatch(/The engine stopped unexpectedly .*Your chat is kept\. Press Restart engine/);
    expect(workers[0].terminated).toBe(true);
    expect(crashes).toEqual([a]);
    expect(client.crashed).toBe(a);
  });

  it('fault: worker crash (messageerror) is a crash too, and later calls fail fast until restart()', async () => {
    const { client, api, workers, crashes } = setup();
    workers[0].dispatchEvent(new Event('messageerror'));
    expect(crashes).toHaveLength(1);
    expect(crashes[0].message).toMatch(/could not be read/);
    // Fails at once (no worker to wait for), with the same error.
    const t0 = performance.now();
    expect(await rejection(api.stats())).toBe(crashes[0]);
    expect(performance.now() - t0).toBeLessThan(50);
    client.restart();
    expect(workers).toHaveLength(2);
    expect(client.crashed).toBeNull();
    expect(await api.stats()).toEqual({ loaded: false, worker: 1 });
    expect(crashes).toHaveLength(1);
  });

  it('fault: worker crash through the test hook (terminate + error event) rejects a generation in flight', async () => {
    const { client, api, workers, crashes } = setup();
    const generating = rejection(api.generate('Once', {}));
    client.crashForTest();
    expect(await generating).toBeInstanceOf(WorkerCrashedError);
    expect(workers[0].terminated).toBe(true);
    expect(crashes[0].message).toMatch(/terminated by the test hook/);
  });

  it('restart() of a running worker rejects its pending calls without reporting a crash', async () => {
    const { client, api, workers, crashes } = setup();
    const generating = rejection(api.generate('Once', {}));
    client.restart();
    expect(await generating).toBeInstanceOf(WorkerCrashedError);
    expect(workers[0].terminated).toBe(true);
    expect(crashes).toHaveLength(0);
    expect(await api.stats()).toEqual({ loaded: false, worker: 1 });
  });
});
