/**
 * The KV modes `npm run eval` compares, in one place. `full` is the reference every other mode is measured
 * against; labels are the names used in the tables and with `--modes`.
 */
import type { KvModeSpec } from '../../src/worker/api';

/** One evaluated mode: a table label and the spec passed to the engine (defaults from src/kv/factory.ts). */
export interface EvalMode {
  label: string;
  spec: KvModeSpec;
}

/** Every mode of the main tables. */
export const EVAL_MODES: EvalMode[] = [
  { label: 'full', spec: { mode: 'full' } },
  { label: 'int8', spec: { mode: 'int8' } },
  { label: 'kivi-4', spec: { mode: 'kivi', bits: 4 } },
  { label: 'kivi-2', spec: { mode: 'kivi', bits: 2 } },
  { label: 'merge', spec: { mode: 'merge' } },
  { label: 'merge+kivi-2', spec: { mode: 'merge+kivi', bits: 2 } },
  { label: 'merge+kivi-4', spec: { mode: 'merge+kivi', bits: 4 } },
  { label: 'zip', spec: { mode: 'zip' } },
];

/**
 * Merge settings tried on byte-llama-12l at N = 512 (perplexity and bytes only), to see what moves quality
 * and size: start layer S, retention γ, SLERP t, bits, group G, block/residual R. Defaults: S = L/2 = 6,
 * γ = 0.05, t = 0.6, 2 bits, G = 32, R = 64.
 */
export const MERGE_SWEEP: EvalMode[] = [
  { label: 'merge S=8', spec: { mode: 'merge', startLayer: 8 } },
  { label: 'merge S=10', spec: { mode: 'merge', startLayer: 10 } },
  { label: 'merge S=4', spec: { mode: 'merge', startLayer: 4 } },
  { label: 'merge γ=0', spec: { mode: 'merge', retention: 0 } },
  { label: 'merge t=0.5', spec: { mode: 'merge', t: 0.5 } },
  { label: 'merge+kivi-2 S=8', spec: { mode: 'merge+kivi', bits: 2, startLayer: 8 } },
  { label: 'merge+kivi-2 S=10', spec: { mode: 'merge+kivi', bits: 2, startLayer: 10 } },
  { label: 'merge+kivi-2 S=2', spec: { mode: 'merge+kivi', bits: 2, startLayer: 2 } },
  { label: 'merge+kivi-2 S=0', spec: { mode: 'merge+kivi', bits: 2, startLayer: 0 } },
  { label: 'merge+kivi-2 γ=0', spec: { mode: 'merge+kivi', bits: 2, retention: 0 } },
  { label: 'merge+kivi-2 γ=0.1', spec: { mode: 'merge+kivi', bits: 2, retention: 0.1 } },
  { label: 'merge+kivi-2 t=0.5', spec: { mode: 'merge+kivi', bits: 2, t: 0.5 } },
  { label: 'merge+kivi-2 G=64', spec: { mode: 'merge+kivi', bits: 2, groupSize: 64 } },
  { label: 'merge+kivi-2 R=32', spec: { mode: 'merge+kivi', bits: 2, residual: 32 } },
  { label: 'merge+kivi-2 S=0 γ=0 R=32', spec: { mode: 'merge+kivi', bits: 2, startLayer: 0, retention: 0, residual: 32 } },
  { label: 'merge+kivi-4 γ=0', spec: { mode: 'merge+kivi', bits: 4, retention: 0 } },
];

/** Modes picked by `--modes a,b` (labels); full is always included as the reference. */
export function selectModes(list: string | null): EvalMode[] {
  if (!list) return EVAL_MODES;
  const wanted = new Set(list.split(',').map((s) => s.trim()).filter(Boolean));
  const known = new Set(EVAL_MODES.map((m) => m.label));
  const unknown = [...wanted].filter((w) => !known.has(w));
  if (unknown.length) throw new Error(`Unknown mode(s) ${unknown.join(', ')}; known: ${[...known].join(', ')}.`);
  return EVAL_MODES.filter((m) => m.label === 'full' || wanted.has(m.label));
}
