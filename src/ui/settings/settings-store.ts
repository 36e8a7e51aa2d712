/**
 * The app's settings (system prompt, sampling, output format, compression, memory budget, live meter),
 * persisted in IndexedDB through idb-keyval, and how they become engine parameters.
 */
import { createStore, get, set, type UseStore } from 'idb-keyval';
import type { EvictionPolicy, GenerateParams, KvBudget, WeightChoice } from '../../worker/api';
import { defaultKvSettings, KV_MODES, type KvSettings } from './kv-modes';

/** Sampling parameters as the user sets them. */
export interface SamplingSettings {
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

/** First-visit settings: greedy decoding, so the offline demo reproduces the model's golden text. */
export function defaultSettings(): AppSettings {
  return {
    systemPrompt: '',
    sampling: { temperature: 0, topP: 1, topK: 0, maxTokens: 256, seed: null },
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
export const CHAT_STOP_STRINGS = ['<|im_end|>', '<|im_start|>', '<|eot_id|>', '<|end|>', '</s>'];

/** Engine parameters for one reply. */
export function generateParams(s: AppSettings, chatTemplate: boolean): GenerateParams {
  const params: GenerateParams = {
    maxNewTokens: s.sampling.maxTokens,
    temperature: s.sampling.temperature,
    topP: s.sampling.topP,
    topK: s.sampling.topK,
    streamStats: s.liveMeter,
  };
  if (s.sampling.seed !== null) params.seed = s.sampling.seed;
  if (chatTemplate) params.stop = CHAT_STOP_STRINGS;
  const budget = budgetOf(s);
  if (budget) params.kvBudget = budget;
  return params;
}

/** The memory budget in engine terms, or undefined when off. */
export function budgetOf(s: AppSettings): KvBudget | undefined {
  if (!s.budget.enabled || !(s.budget.mib > 0)) return undefined;
  return { bytes: Math.round(s.budget.mib * 2 ** 20), autoEscalate: s.budget.auto, eviction: s.budget.eviction };
}

/** Merge stored settings over the defaults (fields added later get their defaults). */
function withDefaults(stored: Partial<AppSettings> | undefined): AppSettings {
  const d = defaultSettings();
  if (!stored) return d;
  const kv = stored.kv && KV_MODES.includes(stored.kv.mode) ? { mode: stored.kv.mode, params: { ...d.kv.params, ...stored.kv.params } } : d.kv;
  return {
    ...d,
    ...stored,
    sampling: { ...d.sampling, ...stored.sampling },
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
