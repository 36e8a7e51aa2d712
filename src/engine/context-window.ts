/**
 * Keeping a chat inside the KV memory budget and the model's context.
 *
 * 1. Auto escalation: when the tokens a turn needs would not fit the budget in the current mode, move along
 *    full → int8 → kivi-4 → zip → kivi-2 → merge+kivi to the first mode where they fit (or the one holding most).
 * 2. Attention sinks + recent window (StreamingLLM): when even that is not enough, the cache keeps the first
 *    `sinkTokens` tokens plus the most recent ones. The kept tokens are re-prefilled from scratch, so their
 *    positions are contiguous (0 … n−1) and every layout works unchanged; generation then continues.
 *
 * The chat transcript keeps every word: only the cache forgets, and every change is reported as a ContextEvent.
 * Pure functions here; the engine and the generate loop apply them.
 */
import { KvBudgetTooSmallError } from '../errors';
import type { ContextEvent, KvBudget, KvModeSpec } from '../worker/api';

/** Attention-sink tokens kept at the start of the cache (StreamingLLM keeps 4). */
export const DEFAULT_SINK_TOKENS = 4;
/** The smallest window a budget may leave: sinks plus a few dozen recent tokens. */
export const MIN_WINDOW_TOKENS = 32;
/** After a slide the cache keeps this fraction of its limit, so slides happen every (1 − f) · limit tokens. */
export const KEEP_FRACTION_AFTER_SLIDE = 0.5;

/** Bytes a cache of `spec` allocates when it holds `tokens` tokens (its capacity capped at `tokens`). */
export type KvBytesEstimator = (spec: KvModeSpec, tokens: number) => number;

/** Modes tried by auto escalation, weakest compression first. */
export const ESCALATION_LADDER: readonly KvModeSpec[] = [
  { mode: 'full' },
  { mode: 'int8' },
  { mode: 'kivi', bits: 4 },
  { mode: 'zip' },
  { mode: 'kivi', bits: 2 },
  { mode: 'merge+kivi', bits: 2 },
];

/** A short name of a mode spec, as the caches name themselves (`kivi-2`, `merge+kivi-2`, …). */
export function modeLabel(spec: KvModeSpec): string {
  if (spec.mode === 'kivi') return `kivi-${spec.bits ?? 4}`;
  if (spec.mode === 'merge+kivi') return `merge+kivi-${spec.bits ?? 2}`;
  return spec.mode;
}

/** The largest token count in [0, maxTokens] whose estimated bytes fit `budgetBytes` (bytes grow with tokens). */
export function tokenLimitForBudget(bytesAt: (tokens: number) => number, budgetBytes: number, maxTokens: number): number {
  if (bytesAt(maxTokens) <= budgetBytes) return maxTokens;
  let lo = 0; // fits (or is zero)
  let hi = maxTokens; // does not fit
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (bytesAt(mid) <= budgetBytes) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** What a turn will run with: the mode (maybe escalated), the token limit of its cache, and what changed. */
export interface BudgetPlan {
  spec: KvModeSpec;
  limitTokens: number;
  events: ContextEvent[];
}

/**
 * Choose the mode and token limit for a turn that needs `neededTokens` cache positions (prompt + new tokens,
 * already capped at the model's context `maxContext`). Without a budget the limit is the context.
 */
export function planBudget(
  current: KvModeSpec,
  neededTokens: number,
  maxContext: number,
  budget: KvBudget | undefined,
  estimate: KvBytesEstimator,
): BudgetPlan {
  if (!budget) return { spec: current, limitTokens: maxContext, events: [] };
  if (!(budget.bytes > 0)) throw new RangeError(`The KV budget must be a positive number of bytes, got ${budget.bytes}.`);
  const limitOf = (spec: KvModeSpec) => tokenLimitForBudget((t) => estimate(spec, t), budget.bytes, maxContext);
  let spec = current;
  let limit = limitOf(current);
  const events: ContextEvent[] = [];
  if (limit < neededTokens && budget.autoEscalate) {
    // Only modes that hold more tokens in the budget than the current one count as stronger.
    const stronger = ESCALATION_LADDER.map((s) => ({ spec: s, limit: limitOf(s) })).filter((c) => c.limit > limit);
    const pick = stronger.find((c) => c.limit >= neededTokens) ?? stronger.sort((a, b) => b.limit - a.limit)[0];
    if (pick) {
      events.push({
        kind: 'escalate',
        fromMode: modeLabel(current),
        toMode: modeLabel(pick.spec),
        spec: pick.spec,
        neededTokens,
        limitTokens: pick.limit,
        budgetBytes: budget.bytes,
      });
      spec = pick.spec;
      limit = pick.limit;
    }
  }
  const sinks = budget.sinkTokens ?? DEFAULT_SINK_TOKENS;
  if (limit < Math.max(MIN_WINDOW_TOKENS, sinks + 8)) {
    const kib = (budget.bytes / 1024).toFixed(0);
    throw new KvBudgetTooSmallError(
      `A KV budget of ${kib} KiB holds only ${limit} tokens in ${modeLabel(spec)} mode; at least ${Math.max(MIN_WINDOW_TOKENS, sinks + 8)} are needed. ` +
        'Raise the memory budget' + (budget.autoEscalate ? '.' : ', or enable "auto" to move to a stronger compression mode.'),
    );
  }
  return { spec, limitTokens: limit, events };
}

/** The first `sinkTokens` ids plus the most recent ones, `keep` ids in all (the ids themselves when they fit). */
export function sinkAndRecent(ids: readonly number[], sinkTokens: number, keep: number): number[] {
  if (ids.length <= keep) return ids.slice();
  const sinks = Math.min(sinkTokens, keep - 1);
  return [...ids.slice(0, sinks), ...ids.slice(ids.length - (keep - sinks))];
}

/** How many tokens the cache keeps after a slide, for a cache limited to `limitTokens`. */
export function keptAfterSlide(limitTokens: number, sinkTokens: number): number {
  return Math.max(sinkTokens + 1, Math.floor(limitTokens * KEEP_FRACTION_AFTER_SLIDE));
}

/** Why the cache is limited: the memory budget, or (when the budget allows the whole context) the context itself. */
export function windowReason(limitTokens: number, maxContext: number): 'budget' | 'context' {
  return limitTokens < maxContext ? 'budget' : 'context';
}

/**
 * The ids to prefill for a prompt: all of them when they fit under the limit with room for one new token;
 * otherwise sinks + the most recent tokens, and the event saying what was dropped.
 */
export function windowPrompt(
  promptIds: readonly number[],
  limitTokens: number,
  maxContext: number,
  sinkTokens: number,
): { ids: number[]; event?: ContextEvent } {
  if (promptIds.length < limitTokens) return { ids: promptIds.slice() };
  const ids = sinkAndRecent(promptIds, sinkTokens, keptAfterSlide(limitTokens, sinkTokens));
  return {
    ids,
    event: {
      kind: 'window',
      at: 'prompt',
      reason: windowReason(limitTokens, maxContext),
      droppedTokens: promptIds.length - ids.length,
      sinkTokens: Math.min(sinkTokens, ids.length - 1),
      keptTokens: ids.length,
      limitTokens,
    },
  };
}
