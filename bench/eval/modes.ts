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

/** The quantized modes again with the Hadamard rotation before quantization (src/kv/rotated-cache.ts). */
export const ROTATED_MODES: EvalMode[] = [
  { label: 'int8+rot', spec: { mode: 'int8', rotate: true } },
  { label: 'kivi-4+rot', spec: { mode: 'kivi', bits: 4, rotate: true } },
  { label: 'kivi-2+rot', spec: { mode: 'kivi', bits: 2, rotate: true } },
  { label: 'zip+rot', spec: { mode: 'zip', rotate: true } },
  { label: 'merge+kivi-2+rot', spec: { mode: 'merge+kivi', bits: 2, rotate: true } },
];

/**
 * The bytes-against-KL frontier on the main judge: the levers that move bytes most (docs/kv-compression.md
 * and the byte table of the report), each with and without rotation where it quantizes. Defaults: G = 32,
 * R = 64; merge S = L/2 = 6, γ = 0.05, t = 0.6.
 */
export const FRONTIER: EvalMode[] = [
  { label: 'kivi-2 R=32', spec: { mode: 'kivi', bits: 2, residual: 32 } },
  { label: 'kivi-2 R=32 +rot', spec: { mode: 'kivi', bits: 2, residual: 32, rotate: true } },
  { label: 'kivi-2 G=64 +rot', spec: { mode: 'kivi', bits: 2, groupSize: 64, rotate: true } },
  { label: 'kivi-2 G=16 R=16 +rot', spec: { mode: 'kivi', bits: 2, groupSize: 16, residual: 16, rotate: true } },
  { label: 'kivi-4 R=32 +rot', spec: { mode: 'kivi', bits: 4, residual: 32, rotate: true } },
  { label: 'zip R=32 +rot', spec: { mode: 'zip', residual: 32, rotate: true } },
  { label: 'merge+kivi-2 γ=0 R=32', spec: { mode: 'merge+kivi', bits: 2, retention: 0, residual: 32 } },
  { label: 'merge+kivi-2 γ=0 R=32 +rot', spec: { mode: 'merge+kivi', bits: 2, retention: 0, residual: 32, rotate: true } },
  { label: 'merge+kivi-2 S=8 γ=0 R=32 +rot', spec: { mode: 'merge+kivi', bits: 2, startLayer: 8, retention: 0, residual: 32, rotate: true } },
  { label: 'merge+kivi-2 S=2 γ=0 R=32 +rot', spec: { mode: 'merge+kivi', bits: 2, startLayer: 2, retention: 0, residual: 32, rotate: true } },
  { label: 'merge+kivi-2 S=0 γ=0 R=32 +rot', spec: { mode: 'merge+kivi', bits: 2, startLayer: 0, retention: 0, residual: 32, rotate: true } },
  { label: 'merge+kivi-4 γ=0 R=32 +rot', spec: { mode: 'merge+kivi', bits: 4, retention: 0, residual: 32, rotate: true } },
];

/** Main and rotated modes picked by `--modes a,b` (labels; all when null); full is always included as the reference. */
export function selectModes(list: string | null): EvalMode[] {
  const all = [...EVAL_MODES, ...ROTATED_MODES];
  if (!list) return all;
  const wanted = new Set(list.split(',').map((s) => s.trim()).filter(Boolean));
  const known = new Set(all.map((m) => m.label));
  const unknown = [...wanted].filter((w) => !known.has(w));
  if (unknown.length) throw new Error(`Unknown mode(s) ${unknown.join(', ')}; known: ${[...known].join(', ')}.`);
  return all.filter((m) => m.label === 'full' || wanted.has(m.label));
}
