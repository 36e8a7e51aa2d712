/**
 * The app's settings (system prompt, sampling, output format, compression, memory budget, live meter),
 * persisted in IndexedDB through idb-keyval, and how they become engine parameters.
 */
import { createStore, get, set, type UseStore } from 'idb-keyval';
import type { EvictionPolicy, GenerateParams, GenerationDefaults, KvBudget, WeightChoice } from '../../worker/api';
import { defaultKvSettings, KV_MODES, type KvSettings } from './kv-modes';
import { CHAT_STOP_STRINGS } from '../../lib/requests';

/** Sampling parameters as the user sets them. */
export interface SamplingSettings {
  /**
   * Use the loaded model's recommended sampling (its generation_config.json, ModelInfo.generationDefaults) for
   * temperature, top-p and top-k instead of the values below, which are kept for when this is off.
   */
  useModelDefaults: boolean;
  /** 0 = greedy. */
  temperature: number;
  /** 1 = off. */
  topP: number;
  /** 0 = off. */
  topK: number;
  maxTokens: number;
  /** null = a new random seed per reply. */
  seed: number | null;
}

/** Everything the settings panel holds. */
export interface AppSettings {
  systemPrompt: string;
  sampling: SamplingSettings;
  /** auto: the chat template when the model has one, else plain text continuation. */
  promptFormat: 'auto' | 'chat' | 'completion';
  outputFormat: 'markdown' | 'text';
  kv: KvSettings;
  /** `eviction`: which tokens a full cache drops (KvBudget.eviction). */
  budget: { enabled: boolean; mib: number; auto: boolean; eviction: EvictionPolicy };
  /** Stream cache statistics with every token (the live meter). */
  liveMeter: boolean;
  /** Weight storage on the GPU for the next load (on-load quantization with q8 / q4). */
  weights: WeightChoice;
  /** GPU memory the weights may take, in MiB (null: no limit); `auto` storage quantizes to fit it. */
  weightLimitMiB: number | null;
}

/**
 * First-visit settings: the model's recommended sampling (greedy for models without one, so the offline demo
 * reproduces its golden text); the custom values start greedy.
 */
export function defaultSettings(): AppSettings {
  return {
    systemPrompt: '',
    sampling: { useModelDefaults: true, temperature: 0, topP: 1, topK: 0, maxTokens: 256, seed: null },
    promptFormat: 'auto',
    outputFormat: 'markdown',
    kv: defaultKvSettings(),
    budget: { enabled: false, mib: 64, auto: true, eviction: 'window' },
    liveMeter: true,
    weights: 'auto',
    weightLimitMiB: null,
  };
}

/** Stop strings of common chat templates, so a reply ends at its end-of-turn marker even when it is not EOS. */
export { CHAT_STOP_STRINGS };

/**
 * Engine parameters for one reply. With `sampling.useModelDefaults`, temperature, top-p and top-k are left
 * undefined so the engine applies the model's generation defaults; the repetition penalty always is the model's.
 */
export function generateParams(s: AppSettings, chatTemplate: boolean): GenerateParams {
  const params: GenerateParams = { maxNewTokens: s.sampling.maxTokens };
  if (!s.sampling.useModelDefaults) Object.assign(params, { temperature: s.sampling.temperature, topP: s.sampling.topP, topK: s.sampling.topK });
  params.streamStats = s.liveMeter;
  if (s.sampling.seed !== null) params.seed = s.sampling.seed;
  if (chatTemplate) params.stop = CHAT_STOP_STRINGS;
  const budget = budgetOf(s);
  if (budget) params.kvBudget = budget;
  return params;
}

/** The sampling a reply gets, and from where, as the generation panel shows it. */
export interface SamplingInEffect {
  temperature: number;
  topP: number;
  topK: number;
  repetitionPenalty: number;
  /** 'model': the loaded model's generation_config.json; 'engine': greedy, the model has none (or none is loaded); 'custom': the user's values. */
  source: 'model' | 'engine' | 'custom';
}

/** What generateParams' reply samples with, given the loaded model's defaults (null: no model loaded yet). */
export function samplingInEffect(s: SamplingSettings, defaults: GenerationDefaults | null): SamplingInEffect {
  const repetitionPenalty = defaults?.repetitionPenalty ?? 1;
  if (!s.useModelDefaults) return { temperature: s.temperature, topP: s.topP, topK: s.topK, repetitionPenalty, source: 'custom' };
  if (!defaults) return { temperature: 0, topP: 1, topK: 0, repetitionPenalty, source: 'engine' };
  const { temperature, topP, topK } = defaults;
  return { temperature, topP, topK, repetitionPenalty, source: defaults.source === 'generation_config.json' ? 'model' : 'engine' };
}

/** Sampling stored by a version without `useModelDefaults`: values other than the old greedy defaults were the user's choice. */
function storedSampling(d: SamplingSettings, stored: Partial<SamplingSettings> | undefined): SamplingSettings {
  const merged = { ...d, ...stored };
  if (typeof stored?.useModelDefaults === 'boolean') return merged;
  const changed = merged.temperature !== 0 || merged.topP !== 1 || merged.topK !== 0;
  return { ...merged, useModelDefaults: !changed };
}

/** The memory budget in engine terms, or undefined when off. */
export function budgetOf(s: AppSettings): KvBudget | undefined {
  if (!s.budget.enabled || !(s.budget.mib > 0)) return undefined;
  return { bytes: Math.round(s.budget.mib * 2 ** 20), autoEscalate: s.budget.auto, eviction: s.budget.eviction };
}

/** Merge stored settings over the defaults (fields added later get their defaults). */
export function withDefaults(stored: Partial<AppSettings> | undefined): AppSettings {
  const d = defaultSettings();
  if (!stored) return d;
  const kv = stored.kv && KV_MODES.includes(stored.kv.mode) ? { mode: stored.kv.mode, params: { ...d.kv.params, ...stored.kv.params } } : d.kv;
  return {
    ...d,
    ...stored,
    sampling: storedSampling(d.sampling, stored.sampling),
    budget: { ...d.budget, ...stored.budget },
    kv,
    weights: (['auto', 'f32', 'f16', 'q8', 'q4'] as const).find((w) => w === stored.weights) ?? d.weights,
    weightLimitMiB: typeof stored.weightLimitMiB === 'number' && stored.weightLimitMiB > 0 ? stored.weightLimitMiB : null,
  };
}

/** Settings persistence. */
export class SettingsStore {
  private readonly store: UseStore;

  constructor(store?: UseStore) {
    this.store = store ?? createStore('kvtab-settings', 'settings');
  }

  /** The stored settings over the defaults. */
  async load(): Promise<AppSettings> {
    try {
      return withDefaults(await get<Partial<AppSettings>>('app', this.store));
    } catch {
      return defaultSettings();
    }
  }

  /** Store the settings. */
  async save(s: AppSettings): Promise<void> {
    await set('app', s, this.store);
  }
}
