/**
 * Catalog estimates from the configs: parameter counts that match the published model sizes, weight and
 * KV bytes from the same formulas as the engine, and a real size probe against the local hub server.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HubServer } from '../../scripts/hub-server';
import { estimateKvBytes } from '../../src/kv/estimate';
import { parseModelConfig } from '../../src/model/config';
import { CATALOG_KV_MODES, estimateEntry, estimateModel, kvShapeOf, MODEL_CATALOG, probeDownloadBytes } from '../../src/ui/model-catalog';
import { sharedModel, startTestHub } from '../helpers/hub';

describe('model catalog', () => {
  it('lists the six models of the issue, Llama marked gated, every config accepted by the engine', () => {
    expect(MODEL_CATALOG.map((e) => e.repo)).toEqual([
      'HuggingFaceTB/SmolLM2-135M-Instruct',
      'HuggingFaceTB/SmolLM2-360M-Instruct',
      'Qwen/Qwen2.5-0.5B-Instruct',
      'Qwen/Qwen3-0.6B',
      'meta-llama/Llama-3.2-1B-Instruct',
      'TinyLlama/TinyLlama-1.1B-Chat-v1.0',
    ]);
    expect(MODEL_CATALOG.filter((e) => e.gated).map((e) => e.repo)).toEqual(['meta-llama/Llama-3.2-1B-Instruct']);
  });

  it('counts parameters as published (tied embeddings once)', () => {
    const params = Object.fromEntries(MODEL_CATALOG.map((e) => [e.repo, estimateEntry(e).params]));
    expect(params['HuggingFaceTB/SmolLM2-135M-Instruct']).toBe(134_515_008);
    expect(params['HuggingFaceTB/SmolLM2-360M-Instruct']).toBe(361_821_120);
    expect(params['Qwen/Qwen2.5-0.5B-Instruct'] / 1e6).toBeCloseTo(494.0, 0);
    expect(params['meta-llama/Llama-3.2-1B-Instruct'] / 1e9).toBeCloseTo(1.236, 2);
    expect(params['TinyLlama/TinyLlama-1.1B-Chat-v1.0'] / 1e9).toBeCloseTo(1.100, 2);
  });

  it('matches the shared SmolLM2-135M config and its documented KV size', () => {
    const shared = parseModelConfig(JSON.parse(fs.readFileSync(`${sharedModel('smollm2-135m-shape')}/config.json`, 'utf8')));
    const ours = estimateEntry(MODEL_CATALOG[0]);
    expect(estimateModel(shared).params).toBe(ours.params);
    // fp16 KV = 23,040 B per token (shared/models/README.md), at 4,096 tokens.
    expect(ours.kv[0]).toEqual({ label: 'full', bytes: 23_040 * 4096 });
    expect(ours.weightBytesF16).toBe(2 * 134_515_008);
  });

  it('gives every mode, smaller than full, from estimateKvBytes; a 2K model at its context', () => {
    for (const entry of MODEL_CATALOG) {
      const e = estimateEntry(entry);
      expect(e.kv.map((k) => k.label)).toEqual(CATALOG_KV_MODES.map((m) => m.label));
      for (const [i, { spec }] of CATALOG_KV_MODES.entries()) expect(e.kv[i].bytes).toBe(estimateKvBytes(kvShapeOf(e.config), spec, e.kvTokens, 2));
      for (const k of e.kv.slice(1)) expect(k.bytes).toBeLessThan(e.kv[0].bytes);
    }
    expect(estimateEntry(MODEL_CATALOG[5]).kvTokens).toBe(2048);
  });

  describe('download size probe', () => {
    let hub: HubServer;
    beforeAll(async () => {
      hub = await startTestHub();
    });
    afterAll(async () => hub?.close());

    it('reads the real size from the hub, and null when there is none', async () => {
      const size = fs.statSync(`${sharedModel('stories260k')}/model.safetensors`).size;
      expect(await probeDownloadBytes(hub.baseUrl, 'local/stories260k')).toBe(size);
      expect(await probeDownloadBytes(hub.baseUrl, 'local/smollm2-135m-shape')).toBeNull(); // no weights there
      expect(await probeDownloadBytes('http://127.0.0.1:1', 'x/y')).toBeNull();
    });
  });
});
