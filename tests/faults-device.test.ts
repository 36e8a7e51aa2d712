/**
 * Device loss recovery (Node + Dawn, fake-indexeddb): an unexpected `device.lost` (the engine's test hook
 * destroys the device behind its back) reloads the model on a fresh device from the IndexedDB weight cache
 * (no request reaches the hub), refills the KV cache with the chat's tokens in the same mode, and the golden
 * stories260k text generates again; a reply in flight ends with DeviceLostError, keeping its tokens so far.
 */
import 'fake-indexeddb/auto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHubServer, type HubServer } from '../scripts/hub-server';
import { RECOVERED_TEXT } from '../src/engine/device-recovery';
import type { DeviceRecoveryEvent } from '../src/worker/api';
import { GOLDEN, hubSpec, nodeEngine, sharedModel, startTestHub } from './helpers/hub';

async function until(check: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('fault: device lost', () => {
  const engine = nodeEngine();
  const events: DeviceRecoveryEvent[] = [];
  let hub: HubServer;
  let requests = 0;

  beforeAll(async () => {
    hub = await startHubServer({ repos: { 'local/stories260k': sharedModel('stories260k') }, onRequest: () => requests++ });
    await engine.load({ kind: 'hub', repo: 'local/stories260k', baseUrl: hub.baseUrl, cache: true }, { weightDtype: 'f32', kvDtype: 'f32' });
    engine.watchDevice((e) => events.push(e));
  });
  afterAll(async () => {
    await engine.unload();
    await hub?.close();
  });

  it('fault: device lost while idle: reloaded from the weight cache, cache refilled, golden text again', async () => {
    const g = GOLDEN.onceUponATime;
    const first = await engine.generate(g.prompt, { maxNewTokens: 12 });
    expect(first.tokenIds).toEqual(g.ids.slice(0, 12));
    const before = engine.stats();
    const weightsBefore = before.weightBytes;
    const requestsBefore = requests;
    events.length = 0;

    engine.debugLoseDevice();
    await until(() => events.length > 0);
    expect(events[0]).toEqual({ kind: 'recovered', message: RECOVERED_TEXT, tokensRestored: before.tokensHeld, kvMode: before.kvMode });
    expect(requests).toBe(requestsBefore); // every byte came from IndexedDB
    const after = engine.stats();
    expect(after).toMatchObject({ loaded: true, kvMode: before.kvMode, tokensHeld: before.tokensHeld, weightBytes: weightsBefore });
    expect(after.kvPositions).toEqual(before.kvPositions);

    // The same prompt again reuses the restored prefix; the text is the golden one.
    const again = await engine.generate(g.prompt, { maxNewTokens: g.ids.length });
    expect(again.tokenIds).toEqual(g.ids);
  });

  it('fault: device lost mid-generation: the reply ends with DeviceLostError, its tokens kept; then it generates again', async () => {
    const g = GOLDEN.tomAndSue;
    const streamed: number[] = [];
    events.length = 0;
    const reply = engine.generate(g.prompt, { maxNewTokens: 200, stopAtEos: false }, (t) => {
      if (t.tokenId >= 0) streamed.push(t.tokenId);
      if (streamed.length === 5) engine.debugLoseDevice();
    });
    const err = await reply.then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.name).toBe('DeviceLostError');
    expect(err?.message).toMatch(/reply stopped here and its text so far is kept/);
    expect(streamed.length).toBeGreaterThanOrEqual(5);
    expect(streamed).toEqual(g.ids.slice(0, streamed.length));

    await until(() => events.length > 0);
    expect(events[0]).toMatchObject({ kind: 'recovered', message: RECOVERED_TEXT });
    const next = await engine.generate(g.prompt, { maxNewTokens: g.ids.length });
    expect(next.tokenIds).toEqual(g.ids);
  });

  it('fault: device lost in int8 mode: the cache comes back in int8 holding the same positions', async () => {
    const g = GOLDEN.onceUponATime;
    await engine.setKvMode({ mode: 'int8' });
    const first = await engine.generate(g.prompt, { maxNewTokens: 16 });
    const before = engine.stats();
    expect(before.kvMode).toMatch(/int8/);
    events.length = 0;
    engine.debugLoseDevice();
    await until(() => events.length > 0);
    expect(events[0]).toMatchObject({ kind: 'recovered', tokensRestored: before.tokensHeld, kvMode: before.kvMode });
    expect(engine.stats()).toMatchObject({ kvMode: before.kvMode, tokensHeld: before.tokensHeld, kvBytes: before.kvBytes });
    // Continuing the same text from the restored int8 cache gives what the int8 cache gave before the loss.
    const again = await engine.generate(g.prompt, { maxNewTokens: 16 });
    expect(again.tokenIds).toEqual(first.tokenIds);
    await engine.setKvMode({ mode: 'full' });
  });
});

describe('fault: device lost, model source gone', () => {
  const engine = nodeEngine();
  afterAll(async () => engine.unload());

  it('fault: device lost when the model cannot be read again: the recovery reports it, the chat gets the error, a new load works', async () => {
    const events: DeviceRecoveryEvent[] = [];
    engine.watchDevice((e) => events.push(e));
    const gone = await startTestHub();
    await engine.load(hubSpec(gone, 'local/stories260k'), { weightDtype: 'f32', kvDtype: 'f32' }); // no weight cache
    await engine.generate(GOLDEN.onceUponATime.prompt, { maxNewTokens: 4 });
    await gone.close();
    engine.debugLoseDevice();
    await until(() => events.length > 0);
    expect(events[0].kind).toBe('failed');
    expect(events[0].message).toMatch(/could not be reloaded: .*Load it again in the Model panel; your chat is kept\./);
    expect(engine.stats().loaded).toBe(false);
    await expect(engine.generate('Once upon a time', { maxNewTokens: 4 })).rejects.toMatchObject({ name: 'DeviceLostError' });

    const hub = await startTestHub();
    try {
      await engine.load(hubSpec(hub, 'local/stories260k'), { weightDtype: 'f32', kvDtype: 'f32' });
      const g = GOLDEN.onceUponATime;
      expect((await engine.generate(g.prompt, { maxNewTokens: g.ids.length })).tokenIds).toEqual(g.ids);
    } finally {
      await hub.close();
    }
  });

  it('fault: device lost, then unloaded during the recovery: the engine ends unloaded with no bytes left and nothing reported', async () => {
    const events: DeviceRecoveryEvent[] = [];
    engine.watchDevice((e) => events.push(e));
    const hub = await startTestHub();
    try {
      await engine.load(hubSpec(hub, 'local/stories260k'), { weightDtype: 'f32', kvDtype: 'f32' });
      const reply = engine.generate(GOLDEN.tomAndSue.prompt, { maxNewTokens: 200, stopAtEos: false }, (t) => {
        if (t.tokenId >= 0 && t.index === 2) engine.debugLoseDevice();
      });
      await expect(reply).rejects.toMatchObject({ name: 'DeviceLostError' });
      await engine.unload();
      await new Promise((r) => setTimeout(r, 300));
      expect(events).toEqual([]);
      expect(engine.stats()).toMatchObject({ loaded: false, trackedBytes: 0 });
    } finally {
      await hub.close();
    }
  });
});
