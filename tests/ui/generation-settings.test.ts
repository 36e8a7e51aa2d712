/**
 * The "use the model's recommended sampling" setting: what generateParams sends with it on and off, the values
 * the generation panel shows as in effect, and settings stored by versions without it (fake-indexeddb).
 */
import 'fake-indexeddb/auto';
import { createStore, set } from 'idb-keyval';
import { describe, expect, it } from 'vitest';
import { ENGINE_GENERATION_DEFAULTS, withGenerationDefaults } from '../../src/model/generation-config';
import { defaultSettings, generateParams, samplingInEffect, SettingsStore, withDefaults } from '../../src/ui/settings/settings-store';
import type { GenerationDefaults } from '../../src/worker/api';

const qwen: GenerationDefaults = { temperature: 0.7, topP: 0.8, topK: 20, repetitionPenalty: 1.05, source: 'generation_config.json' };

describe('model sampling defaults toggle', () => {
  it('is on at first visit: temperature, top-p and top-k are left to the model; max tokens and seed stay the user\'s', () => {
    const s = defaultSettings();
    expect(s.sampling.useModelDefaults).toBe(true);
    s.sampling.seed = 9;
    const p = generateParams(s, true);
    expect(p.temperature).toBeUndefined();
    expect(p.topP).toBeUndefined();
    expect(p.topK).toBeUndefined();
    expect(p).toMatchObject({ maxNewTokens: 256, seed: 9 });
    // What the engine then samples with: the model's values.
    expect(withGenerationDefaults(p, qwen)).toMatchObject({ temperature: 0.7, topP: 0.8, topK: 20, repetitionPenalty: 1.05, maxNewTokens: 256 });
  });

  it('off: the user\'s own values are sent, and win over the model\'s', () => {
    const s = defaultSettings();
    Object.assign(s.sampling, { useModelDefaults: false, temperature: 1.1, topP: 0.5, topK: 3 });
    const p = generateParams(s, false);
    expect(p).toMatchObject({ temperature: 1.1, topP: 0.5, topK: 3 });
    expect(withGenerationDefaults(p, qwen)).toMatchObject({ temperature: 1.1, topP: 0.5, topK: 3 });
    // Custom greedy really is greedy on a model that recommends sampling.
    Object.assign(s.sampling, { temperature: 0, topP: 1, topK: 0 });
    expect(withGenerationDefaults(generateParams(s, false), qwen)).toMatchObject({ temperature: 0, topP: 1, topK: 0 });
  });

  it('shows the values in effect and where they come from', () => {
    const on = defaultSettings().sampling;
    expect(samplingInEffect(on, qwen)).toEqual({ temperature: 0.7, topP: 0.8, topK: 20, repetitionPenalty: 1.05, source: 'model' });
    expect(samplingInEffect(on, ENGINE_GENERATION_DEFAULTS)).toEqual({ temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1, source: 'engine' });
    expect(samplingInEffect(on, null)).toMatchObject({ temperature: 0, source: 'engine' });
    const off = { ...on, useModelDefaults: false, temperature: 0.9 };
    expect(samplingInEffect(off, qwen)).toEqual({ temperature: 0.9, topP: 1, topK: 0, repetitionPenalty: 1.05, source: 'custom' });
  });

  it('settings stored before the toggle existed load: old greedy defaults follow the model, changed values stay custom', () => {
    const old = (sampling: Record<string, unknown>) => withDefaults({ sampling } as never).sampling;
    expect(old({ temperature: 0, topP: 1, topK: 0, maxTokens: 400, seed: null })).toMatchObject({ useModelDefaults: true, maxTokens: 400 });
    expect(old({ temperature: 0.7, topP: 1, topK: 0, maxTokens: 256, seed: 3 })).toMatchObject({ useModelDefaults: false, temperature: 0.7, seed: 3 });
    expect(old({ temperature: 0, topP: 0.9, topK: 0, maxTokens: 256, seed: null }).useModelDefaults).toBe(false);
    expect(withDefaults(undefined).sampling.useModelDefaults).toBe(true);
    expect(withDefaults({} as never).sampling.useModelDefaults).toBe(true);
    // A stored choice is kept either way.
    expect(old({ useModelDefaults: false, temperature: 0, topP: 1, topK: 0 }).useModelDefaults).toBe(false);
    expect(old({ useModelDefaults: true, temperature: 0.7 })).toMatchObject({ useModelDefaults: true, temperature: 0.7 });
  });

  it('round-trips through the settings store, and an old record from IndexedDB loads', async () => {
    const store = createStore('kvtab-settings-test', 'settings');
    await set('app', { systemPrompt: 'Hi', sampling: { temperature: 0.5, topP: 1, topK: 0, maxTokens: 64, seed: null } }, store);
    const settings = new SettingsStore(store);
    const loaded = await settings.load();
    expect(loaded.systemPrompt).toBe('Hi');
    expect(loaded.sampling).toEqual({ useModelDefaults: false, temperature: 0.5, topP: 1, topK: 0, maxTokens: 64, seed: null });
    loaded.sampling.useModelDefaults = true;
    await settings.save(loaded);
    expect((await settings.load()).sampling.useModelDefaults).toBe(true);
  });
});
