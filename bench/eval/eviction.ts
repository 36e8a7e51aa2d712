/**
 * What budget eviction costs, measured like every other row: the divergence task over the same N-token
 * windows, but under a cache capped at L slots that evicts before each chunk that would not fit (in place,
 * the generate loop's own CacheWindow). L is the most slots a mode holds within a byte budget, from the one
 * byte accounting (src/kv/sizing.ts, f16 layout, saliency buffers included), so rows compare at equal bytes:
 * against kivi-2 holding the whole window (4× smaller than fp16), and at 8× smaller than fp16.
 */
import { tokenLimitForBudget } from '../../src/engine/context-window';
import { kvAllocation } from '../../src/kv/sizing';
import type { KvShape } from '../../src/kv/types';
import { fp16BaselineBytes } from '../../src/kv/types';
import type { EvictionPolicy, KvModeSpec } from '../../src/worker/api';
import type { EvalJob } from './jobs';

/** One eviction row: a mode and policy at a byte target. */
interface EvictionCase {
  label: string;
  spec: KvModeSpec;
  policy: EvictionPolicy;
  /** 'kivi-2' = the bytes of kivi-2 holding the whole window; a number = fp16 bytes of the window / that. */
  target: 'kivi-2' | number;
}

export const EVICTION_CASES: EvictionCase[] = [
  { label: 'full evict-window', spec: { mode: 'full' }, policy: 'window', target: 'kivi-2' },
  { label: 'full evict-saliency', spec: { mode: 'full' }, policy: 'saliency', target: 'kivi-2' },
  { label: 'kivi-4+rot evict-saliency', spec: { mode: 'kivi', bits: 4, rotate: true }, policy: 'saliency', target: 'kivi-2' },
  { label: 'full evict-saliency @8×', spec: { mode: 'full' }, policy: 'saliency', target: 8 },
  { label: 'int8+rot evict-saliency @8×', spec: { mode: 'int8', rotate: true }, policy: 'saliency', target: 8 },
  { label: 'kivi-4+rot evict-saliency @8×', spec: { mode: 'kivi', bits: 4, rotate: true }, policy: 'saliency', target: 8 },
  { label: 'kivi-2+rot evict-saliency @8×', spec: { mode: 'kivi', bits: 2, rotate: true }, policy: 'saliency', target: 8 },
  { label: 'kivi-2+rot evict-window @8×', spec: { mode: 'kivi', bits: 2, rotate: true }, policy: 'window', target: 8 },
];

/** Bytes of `spec` capped at `tokens` slots (f16 layout), with the saliency tracker when the policy needs it. */
export function cappedBytes(shape: KvShape, spec: KvModeSpec, tokens: number, policy: EvictionPolicy): number {
  return kvAllocation({ ...shape, maxTokens: tokens }, spec, tokens, 'f16', { saliency: policy === 'saliency' }).total;
}

/** Divergence jobs of every eviction case on each text's window of n tokens; bytes and limits are in the meta. */
export function evictionJobs(model: string, shape: KvShape, n: number, windows: number[], windowIds: Record<string, number[]>): EvalJob[] {
  const fp16 = fp16BaselineBytes(shape, n);
  const kivi2 = kvAllocation(shape, { mode: 'kivi', bits: 2 }, n, 'f16').total;
  const jobs: EvalJob[] = [];
  const cases = EVICTION_CASES.map((c) => {
    const budget = c.target === 'kivi-2' ? kivi2 : Math.floor(fp16 / c.target);
    const limitTokens = tokenLimitForBudget((t) => (t <= 0 ? 0 : cappedBytes(shape, c.spec, t, c.policy)), budget, n);
    return { ...c, budget, limitTokens, kvBytesF16: cappedBytes(shape, c.spec, limitTokens, c.policy) };
  });
  // Text-major, so full's reference logits of a window are computed once.
  for (const [text, ids] of Object.entries(windowIds)) {
    for (const c of cases) {
      jobs.push({
        id: `${model}|div|${text}|${c.label}`,
        meta: { what: 'divergence', mode: c.label, text, n, windows, sweep: false, evict: { limitTokens: c.limitTokens, policy: c.policy, budgetBytes: c.budget, kvBytesF16: c.kvBytesF16 } },
        task: { kind: 'divergence', kvMode: c.spec, ids, evict: { limitTokens: c.limitTokens, policy: c.policy } },
      });
    }
  }
  return jobs;
}
