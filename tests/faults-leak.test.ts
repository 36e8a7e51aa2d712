/**
 * No leaks (Node + Dawn, fake-indexeddb): 50 load/unload cycles and 50 KV-mode switches mid-chat bring the
 * bytes every BufferGroup tracks (weights, KV, activations, plans) and the IndexedDB records back to their
 * baseline. stories260k, so 50 of each stay well under a minute on lavapipe.
 */
import 'fake-indexeddb/auto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHubServer, type HubServer } from '../scripts/hub-server';
import { trackedBytes } from '../src/gpu/buffers';
import type { ModelSourceSpec } from '../src/model/source';
import type { KvModeSpec, LoadOptions } from '../src/worker/api';
import { GOLDEN, nodeEngine, sharedModel } from './helpers/hub';
import { idbRecordCounts } from './helpers/idb-records';

const CYCLES = 50;

describe('fault: leak', () => {
  const engine = nodeEngine();
  let hub: HubServer;
  let spec: ModelSourceSpec;
  const options: LoadOptions = { weightDtype: 'f32', kvDtype: 'f32' };

  beforeAll(async () => {
    hub = await startHubServer({ repos: { 'local/stories260k': sharedModel('stories260k') } });
    spec = { kind: 'hub', repo: 'local/stories260k', baseUrl: hub.baseUrl, cache: true };
  });
  afterAll(async () => {
    await engine.unload();
    await hub?.close();
  });

  it(`fault: leak: ${CYCLES} load/unload cycles return tracked GPU bytes and IndexedDB records to baseline`, async () => {
    const baseBytes = trackedBytes();
    // The first load fills the weight cache; later loads read it and must add no records.
    await engine.load(spec, options);
    const loadedBytes = trackedBytes();
    expect(loadedBytes).toBeGreaterThan(baseBytes);
    await engine.generate(GOLDEN.onceUponATime.prompt, { maxNewTokens: 4 });
    await engine.unload();
    expect(trackedBytes()).toBe(baseBytes);
    const baseRecords = await idbRecordCounts();
    expect(Object.values(baseRecords).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);

    for (let i = 0; i < CYCLES; i++) {
      await engine.load(spec, options);
      expect(trackedBytes()).toBe(loadedBytes);
      await engine.unload();
      expect(trackedBytes()).toBe(baseBytes);
    }
    expect(engine.stats()).toMatchObject({ loaded: false, trackedBytes: baseBytes });
    expect(await idbRecordCounts()).toEqual(baseRecords);
  });

  it(`fault: leak: ${CYCLES} KV-mode switches mid-chat return tracked GPU bytes to baseline`, async () => {
    await engine.load(spec, options);
    const g = GOLDEN.onceUponATime;
    await engine.generate(g.prompt, { maxNewTokens: 20 });
    // The baseline is the full cache refilled by a switch (plans are recorded per step size, so a switch's
    // refill steps are what the last switch back to full records again).
    await engine.setKvMode({ mode: 'full' });
    const base = engine.stats();
    const baseBytes = trackedBytes();
    expect(base.trackedBytes).toBe(baseBytes);
    const modes: KvModeSpec[] = [{ mode: 'int8' }, { mode: 'kivi', bits: 4 }, { mode: 'zip' }, { mode: 'merge', startLayer: 2 }, { mode: 'int8', rotate: true }];
    for (let i = 0; i < CYCLES; i++) {
      const spec = i === CYCLES - 1 ? { mode: 'full' as const } : modes[i % modes.length];
      const s = await engine.setKvMode(spec);
      expect(s.tokensHeld).toBe(base.tokensHeld);
    }
    const after = engine.stats();
    expect(after.kvMode).toBe(base.kvMode);
    expect(after.kvBytes).toBe(base.kvBytes);
    expect(trackedBytes()).toBe(baseBytes);
    // The conversation went through every mode and still continues.
    const next = await engine.generate(g.prompt, { maxNewTokens: 24 });
    expect(next.tokenIds.length).toBe(24);
  });
});
