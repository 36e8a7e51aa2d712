/**
 * Which cache slots an eviction keeps. Pure: the engine applies the plan in place (LlamaModel.evict) or, where
 * the layout cannot, re-prefills the kept tokens.
 *
 * Slots are dropped in the layout's units (EvictionRules: aligned blocks, a multiple at a time, never the
 * residual from `frontier` on). Never dropped: the first `sinks` slots (StreamingLLM's attention sinks) and the
 * `recent` newest. Dropped first: unprotected units, oldest first ('window') or lowest normalized saliency
 * first ('saliency': H2O / SnapKV, the mean of the unit's slots); protected units (system prompt, role
 * markers) only when the rest does not free enough, oldest first.
 */
import type { EvictionRules } from '../kv/types';
import type { EvictionPolicy } from '../worker/api';
import { toRanges, type PositionRange } from './cache-contents';

/** What an eviction starts from. */
export interface KeepRequest {
  /** Position of each held slot, ascending. */
  positions: readonly number[];
  isProtected: (position: number) => boolean;
  /** Slots to keep at most; the plan drops at least held − keep (more where units or the multiple ask for it). */
  keep: number;
  sinks: number;
  /** Newest slots never dropped. */
  recent: number;
  rules: EvictionRules;
  policy: EvictionPolicy;
  /** Normalized saliency per slot ('saliency'; without it the plan falls back to 'window'). */
  saliency?: Float32Array | null;
}

/** The slots kept and what went. */
export interface KeepPlan {
  /** Kept slot indices, ascending. */
  keep: number[];
  dropped: number;
  /** Positions dropped, as [start, end) ranges. */
  droppedRanges: PositionRange[];
  sinksKept: number;
  protectedKept: number;
  protectedDropped: number;
  /** The policy that chose (saliency falls back to window when no scores exist). */
  policy: EvictionPolicy;
}

interface Unit {
  first: number;
  size: number;
  guarded: boolean;
  score: number;
}

/**
 * Plan an eviction; null when the rules leave nothing to drop (e.g. the whole evictable part is sinks and
 * recent tokens, or less than one `multiple`).
 */
export function planKeep(r: KeepRequest): KeepPlan | null {
  const held = r.positions.length;
  const { block, multiple } = r.rules;
  const frontier = Math.min(r.rules.frontier, held - Math.min(r.recent, held));
  const policy: EvictionPolicy = r.policy === 'saliency' && r.saliency ? 'saliency' : 'window';
  const units: Unit[] = [];
  for (let first = 0; first + block <= frontier; first += block) {
    if (first < r.sinks) continue; // a unit holding a sink stays
    let guarded = false;
    let score = 0;
    for (let s = first; s < first + block; s++) {
      guarded ||= r.isProtected(r.positions[s]);
      score += policy === 'saliency' ? (r.saliency as Float32Array)[s] : 0;
    }
    units.push({ first, size: block, guarded, score: score / block });
  }
  // Stable sorts: ties (and the whole 'window' order) stay oldest first.
  const byScore = (a: Unit, b: Unit) => a.score - b.score;
  const order = [...units.filter((u) => !u.guarded).sort(byScore), ...units.filter((u) => u.guarded)];
  const want = Math.ceil(Math.max(0, held - r.keep) / multiple) * multiple;
  const chosen: Unit[] = [];
  let dropped = 0;
  for (const u of order) {
    if (dropped >= want) break;
    chosen.push(u);
    dropped += u.size;
  }
  // Short of a whole multiple: give back the last (most valuable) units chosen.
  while (dropped % multiple !== 0) dropped -= (chosen.pop() as Unit).size;
  if (dropped === 0) return null;
  const gone = new Set<number>();
  for (const u of chosen) for (let s = u.first; s < u.first + u.size; s++) gone.add(s);
  const keep: number[] = [];
  for (let s = 0; s < held; s++) if (!gone.has(s)) keep.push(s);
  const protectedDropped = chosen.filter((u) => u.guarded).reduce((n, u) => n + countGuarded(r, u), 0);
  const protectedKept = keep.reduce((n, s) => n + (r.isProtected(r.positions[s]) ? 1 : 0), 0);
  return {
    keep,
    dropped,
    droppedRanges: toRanges([...gone].sort((a, b) => a - b).map((s) => r.positions[s])),
    sinksKept: Math.min(r.sinks, held),
    protectedKept,
    protectedDropped,
    policy,
  };
}

function countGuarded(r: KeepRequest, u: Unit): number {
  let n = 0;
  for (let s = u.first; s < u.first + u.size; s++) if (r.isProtected(r.positions[s])) n++;
  return n;
}

/** Rules under which any slot may go: the re-prefill path keeps whatever it likes. */
export function anySlot(held: number): EvictionRules {
  return { block: 1, multiple: 1, frontier: held };
}
