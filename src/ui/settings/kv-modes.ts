/**
 * The compression modes the settings panel offers: their parameters, one-line explanations, defaults, and
 * the KvModeSpec each choice becomes. Pure (no DOM), so the mapping is tested in Node.
 */
import { INT8_DEFAULTS, KIVI_DEFAULTS, MERGE_DEFAULTS, ZIP_DEFAULTS } from '../../kv/factory';
import type { KvModeSpec } from '../../worker/api';

/** Modes shown in the panel. */
export const KV_MODES = ['full', 'int8', 'kivi', 'zip', 'merge', 'merge+kivi'] as const;
/** One mode of the panel. */
export type KvModeChoice = (typeof KV_MODES)[number];

/** Every parameter any mode has. */
export interface ModeParams {
  bits?: 2 | 4;
  groupSize?: number;
  residual?: number;
  /** null = the default, half the layers. */
  startLayer?: number | null;
  t?: number;
  retention?: number;
  salientFraction?: number;
  /** Hadamard rotation before quantizing (the quantized modes). */
  rotate?: boolean;
}
/** A parameter name. */
export type ParamName = keyof ModeParams;

/** The compression part of the settings: the chosen mode and, per mode, its last parameters. */
export interface KvSettings {
  mode: KvModeChoice;
  params: Record<KvModeChoice, ModeParams>;
}

/** What the panel says about a mode. */
export interface ModeInfo {
  label: string;
  explain: string;
  params: ParamName[];
}

/** Mode labels, explanations and which parameters apply. */
export const MODE_INFO: Record<KvModeChoice, ModeInfo> = {
  full: { label: 'full', explain: 'Every key and value at full precision (f16, or f32 where the GPU lacks f16): exact, and the largest.', params: [] },
  int8: { label: 'int8', explain: '8-bit codes with one scale per group of G channels of a token: about half of fp16, nearly lossless.', params: ['groupSize', 'residual', 'rotate'] },
  kivi: { label: 'kivi', explain: 'KIVI: keys per channel, values per token, at 4 or 2 bits; the newest R tokens stay exact (3.2× to 5.3× smaller).', params: ['bits', 'groupSize', 'residual', 'rotate'] },
  zip: { label: 'zip', explain: 'ZipCache: the most-attended (salient) tokens keep 4 bits, the rest get 2; saliency is fixed per block.', params: ['salientFraction', 'groupSize', 'residual', 'rotate'] },
  merge: { label: 'merge', explain: 'MiniCache: from layer S on, layer pairs share one direction per token plus two norms; the most different γ stay unmerged.', params: ['startLayer', 't', 'retention', 'residual'] },
  'merge+kivi': { label: 'merge+kivi', explain: 'MiniCache merge with KIVI-quantized directions, KIVI below layer S: the strongest compression here.', params: ['bits', 'startLayer', 't', 'retention', 'groupSize', 'residual', 'rotate'] },
};

/** How the panel edits a parameter. */
export interface ParamInfo {
  label: string;
  explain: string;
  kind: 'select' | 'number' | 'check';
  options?: number[];
  min?: number;
  max?: number;
  step?: number;
}

/** Parameter labels, explanations and inputs. */
export const PARAM_INFO: Record<ParamName, ParamInfo> = {
  bits: { label: 'Bits', explain: 'Bits per quantized code: 4 keeps quality, 2 saves the most.', kind: 'select', options: [4, 2] },
  groupSize: { label: 'Group G', explain: 'Values sharing one scale and minimum (tokens per key block, channels per value group).', kind: 'select', options: [32, 64, 128] },
  residual: { label: 'Residual R', explain: 'Newest tokens kept at full precision before they are quantized or merged (a multiple of G).', kind: 'number', min: 0, max: 512, step: 32 },
  startLayer: { label: 'Merge start layer S', explain: 'First merged layer; layers below it keep their own cache. Empty = half the layers.', kind: 'number', min: 0, max: 200, step: 1 },
  t: { label: 'SLERP t', explain: 'Interpolation weight between the two layers of a pair (MiniCache uses 0.6).', kind: 'number', min: 0, max: 1, step: 0.05 },
  retention: { label: 'Retention γ', explain: 'Fraction of each block’s most different tokens kept unmerged in both layers.', kind: 'number', min: 0, max: 1, step: 0.01 },
  salientFraction: { label: 'Salient fraction', explain: 'Share of tokens judged salient by normalized attention; they keep 4 bits.', kind: 'number', min: 0, max: 1, step: 0.05 },
  rotate: {
    label: 'Rotate before quantizing (Hadamard)',
    explain: 'Rotates each head’s keys, values and queries by a seeded random Hadamard transform so outlier channels spread out before quantizing; attention itself is unchanged.',
    kind: 'check',
  },
};

/** Default parameters per mode (the factory's defaults). */
export function defaultKvSettings(): KvSettings {
  return {
    mode: 'full',
    params: {
      full: {},
      int8: { groupSize: INT8_DEFAULTS.groupSize, residual: INT8_DEFAULTS.residual },
      kivi: { bits: 4, groupSize: KIVI_DEFAULTS.groupSize, residual: KIVI_DEFAULTS.residual },
      zip: { salientFraction: ZIP_DEFAULTS.salientFraction, groupSize: ZIP_DEFAULTS.groupSize, residual: ZIP_DEFAULTS.residual },
      merge: { startLayer: null, t: MERGE_DEFAULTS.t, retention: MERGE_DEFAULTS.retention, residual: MERGE_DEFAULTS.residual },
      'merge+kivi': { bits: 2, startLayer: null, t: MERGE_DEFAULTS.t, retention: MERGE_DEFAULTS.retention, groupSize: KIVI_DEFAULTS.groupSize, residual: KIVI_DEFAULTS.residual },
    },
  };
}

/** The engine's spec for the chosen mode and its parameters. */
export function kvSpecFromSettings(s: KvSettings): KvModeSpec {
  const p = s.params[s.mode] ?? {};
  const startLayer = p.startLayer ?? undefined;
  const rotate = p.rotate ? true : undefined;
  switch (s.mode) {
    case 'full':
      return { mode: 'full' };
    case 'int8':
      return { mode: 'int8', groupSize: p.groupSize, residual: p.residual, rotate };
    case 'kivi':
      return { mode: 'kivi', bits: p.bits, groupSize: p.groupSize, residual: p.residual, rotate };
    case 'merge':
      return { mode: 'merge', startLayer, t: p.t, retention: p.retention, residual: p.residual };
    case 'merge+kivi':
      return { mode: 'merge+kivi', bits: p.bits, startLayer, t: p.t, retention: p.retention, groupSize: p.groupSize, residual: p.residual, rotate };
    case 'zip':
      return { mode: 'zip', salientFraction: p.salientFraction, groupSize: p.groupSize, residual: p.residual, rotate };
  }
}

/** Settings that select `spec` (after an auto escalation), keeping the other modes' parameters. */
export function kvSettingsFromSpec(spec: KvModeSpec, base: KvSettings): KvSettings {
  const mode = spec.mode as KvModeChoice;
  if (!KV_MODES.includes(mode)) return base;
  const { mode: _mode, ...given } = spec as KvModeSpec & ModeParams;
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
  return { mode, params: { ...base.params, [mode]: { ...base.params[mode], ...defined } } };
}

/** A short name for a spec, as the caches name themselves: `kivi-2`, `merge+kivi-2`, `full`, `kivi-4+rot`. */
export function specName(spec: KvModeSpec): string {
  const bits = (spec as { bits?: number }).bits;
  const rot = spec.rotate ? '+rot' : '';
  if (spec.mode === 'kivi') return `kivi-${bits ?? 4}${rot}`;
  if (spec.mode === 'merge+kivi') return `merge+kivi-${bits ?? 2}${rot}`;
  return `${spec.mode}${rot}`;
}
