/**
 * Keeping a chat inside the KV memory budget and the model's context.
 *
 * 1. Auto escalation: when the tokens a turn needs would not fit the budget in the user's mode, move along
 *    full → int8 → kivi-4 → zip → kivi-2 → merge+kivi to the first mode where they fit (or the one holding most),
 *    carrying the user's parameters (G, R, merge settings) into it where they apply; when the user's mode fits
 *    again (a new chat, a shorter prompt) step back down to it.
 * 2. Eviction (src/engine/cache-window.ts): when the cache reaches its token limit it drops tokens, keeping the
 *    attention sinks, the protected tokens and the most recent or the most salient ones, in place on the GPU
 *    where the layout can (kept keys keep their positions), otherwise by re-prefilling the kept tokens.
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
/** After a slide that re-prefills, the cache keeps this fraction of its limit, so slides happen every (1 − f) · limit tokens. */
export const KEEP_FRACTION_AFTER_SLIDE = 0.5;
/** After an eviction in place (no re-prefill to amortize) the cache keeps this fraction of its limit. */
export const KEEP_FRACTION_IN_PLACE = 0.75;

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

/** Parameters of each mode that mean the same in another mode (bits are a rung's identity and are not carried). */
const CARRIED: Record<KvModeSpec['mode'], readonly string[]> = {
  full: [],
  int8: ['groupSize', 'residual'],
  kivi: ['groupSize', 'residual'],
  zip: ['groupSize', 'residual'],
  merge: ['startLayer', 't', 'retention', 'residual'],
  'merge+kivi': ['groupSize', 'residual', 'startLayer', 't', 'retention'],
};

/** Whether two specs are the same mode with the same parameters (absent = default). */
export function sameSpec(a: KvModeSpec, b: KvModeSpec): boolean {
  const norm = (s: KvModeSpec) => JSON.stringify(Object.entries(s).filter(([, v]) => v !== undefined && v !== false).sort(([x], [y]) => x.localeCompare(y)));
  return norm(a) === norm(b);
}

/**
 * The ladder rung `rung` with the user's parameters carried in where they apply: the user's own mode (same
 * mode and bits) is the user's spec itself; other rungs take its G, R and merge settings (and rotation).
 */
export function carryParams(user: KvModeSpec, rung: KvModeSpec): KvModeSpec {
  const bits = (s: KvModeSpec) => ('bits' in s ? s.bits : undefined) ?? (s.mode === 'kivi' ? 4 : s.mode === 'merge+kivi' ? 2 : undefined);
  if (user.mode === rung.mode && bits(user) === bits(rung)) return user;
  const from = user as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = { ...rung };
  for (const key of [...CARRIED[rung.mode], 'rotate']) {
    if ((CARRIED[user.mode].includes(key) || key === 'rotate') && from[key] !== undefined) out[key] = from[key];
  }
  return out as unknown as KvModeSpec;
}

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
 * already capped at the model's context `maxContext`), starting from the user's mode `user` (the cache is in
 * `current`, which differs after an escalation). Without a budget the limit is the context.
 */
export function planBudget(
  current: KvModeSpec,
  neededTokens: number,
  maxContext: number,
  budget: KvBudget | undefined,
  estimate: KvBytesEstimator,
  user: KvModeSpec = current,
): BudgetPlan {
  const change = (to: KvModeSpec, limit: number, kind: 'escalate' | 'step-down'): ContextEvent[] => {
    if (sameSpec(to, current)) return [];
    const base = { fromMode: modeLabel(current), toMode: modeLabel(to), spec: to, neededTokens, limitTokens: limit };
    return kind === 'escalate' ? [{ kind, ...base, budgetBytes: budget?.bytes ?? 0 }] : [{ kind, ...base, budgetBytes: budget?.bytes ?? null }];
  };
  if (!budget) return { spec: user, limitTokens: maxContext, events: change(user, maxContext, 'step-down') };
  if (!(budget.bytes > 0)) throw new RangeError(`The KV budget must be a positive number of bytes, got ${budget.bytes}.`);
  const limitOf = (spec: KvModeSpec) => tokenLimitForBudget((t) => estimate(spec, t), budget.bytes, maxContext);
  let spec = user;
  let limit = limitOf(user);
  let events = change(user, limit, 'step-down');
  if (limit < neededTokens && budget.autoEscalate) {
    // Only modes that hold more tokens in the budget than the user's count as stronger; a rung that cannot be
    // built with the user's parameters (limit 0) is tried with its defaults.
    const userLimit = limit;
    const stronger = ESCALATION_LADDER.map((rung) => {
      const carried = carryParams(user, rung);
      const carriedLimit = limitOf(carried);
      return carriedLimit > 0 ? { spec: carried, limit: carriedLimit } : { spec: rung, limit: limitOf(rung) };
    }).filter((c) => c.limit > userLimit);
    const pick = stronger.find((c) => c.limit >= neededTokens) ?? stronger.sort((a, b) => b.limit - a.limit)[0];
    if (pick) {
      spec = pick.spec;
      limit = pick.limit;
      events = change(pick.spec, pick.limit, limitOf(current) > pick.limit ? 'step-down' : 'escalate');
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
