/**
 * What the engine holds for a loaded model (the Loaded record), and the statistics it reports from it.
 */
import { trackedBytes } from '../gpu/buffers';
import { summedLayers } from '../kv/sizing';
import type { KvShape } from '../kv/types';
import type { ModelConfig } from '../model/config';
import type { LlamaModel } from '../model/llama';
import type { ModelSourceSpec } from '../model/source';
import type { ChatTokenizer } from '../model/tokenizer';
import type { ModelWeights } from '../model/weights';
import type { EngineStats, KvModeSpec, ModelInfo } from '../worker/api';
import type { CacheContents } from './cache-contents';
import type { PromptStructure } from './prompt-structure';

/** A source spec in words, for messages. */
export function describeSpec(spec: ModelSourceSpec): string {
  if (spec.kind === 'hub') return spec.file ? `${spec.repo}/${spec.file}` : spec.repo;
  if (spec.kind === 'url') return spec.label ?? spec.baseUrl;
  if (spec.kind === 'files') return spec.name;
  return spec.key;
}

export interface Loaded {
  config: ModelConfig;
  tokenizer: ChatTokenizer;
  weights: ModelWeights;
  model: LlamaModel;
  info: ModelInfo;
  /** Which tokens of the chat's token stream the cache holds, at which positions. */
  contents: CacheContents;
  /** Finds the protected tokens (system prompt, role markers) of chat prompts. */
  structure: PromptStructure;
  shape: KvShape;
  kvDtype: 'f32' | 'f16';
  /** The mode the cache is in (an escalation changes it). */
  kvMode: KvModeSpec;
  /** The mode the user chose (load, setKvMode): escalation starts from it and steps back down to it. */
  userMode: KvModeSpec;
}

/** Memory and cache statistics of the loaded model (or of none) from real allocation sizes. */
export function engineStats(l: Loaded | null, prefillTokensDispatched: number): EngineStats {
  if (!l) {
    return { loaded: false, kvMode: 'none', tokensHeld: 0, kvBytes: 0, kvFp16EquivalentBytes: 0, kvCompressionRatio: 0, kvComponents: {}, kvLayers: [], weightBytes: 0, activationBytes: 0, prefillTokensDispatched: 0, trackedBytes: trackedBytes() };
  }
  const kvLayers = l.model.kv.layerStats();
  const { total: kvBytes, components: kvComponents } = summedLayers(kvLayers);
  const kvFp16EquivalentBytes = l.model.kv.fp16EquivalentBytes();
  return {
    loaded: true,
    kvMode: l.model.kv.mode,
    tokensHeld: l.model.kv.length,
    kvBytes,
    kvFp16EquivalentBytes,
    kvCompressionRatio: kvBytes > 0 ? kvFp16EquivalentBytes / kvBytes : 0,
    kvComponents,
    kvLayers,
    weightBytes: l.weights.bytes,
    activationBytes: l.model.activationBytes,
    prefillTokensDispatched,
    kvPositions: l.contents.report(),
    trackedBytes: trackedBytes(),
  };
}
