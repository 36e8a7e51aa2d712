/**
 * Attention over the layouts read a row at a time (every includer of shaders/lib/attention_rows.wgsl): which
 * entry point a step takes (split-K for decode, one query per invocation on CPU adapters, cooperative
 * workgroups elsewhere), with its bindings and dispatch size.
 */
import type { Binding, Recorder } from '../gpu/plan';
import type { ShaderVariant } from '../gpu/shader-assembly';
import type { ShaderName } from '../gpu/shaders';
import { f32 } from '../gpu/uniforms';
import type { SaliencyTracker } from './saliency';
import type { AttentionIO } from './types';

/** Decode steps of at most this many tokens split their keys (split-K); longer steps already have T × heads queries. */
export const SPLIT_MAX_TOKENS = 2;
/** Most key splits per query; the activations' partials buffer holds SPLIT_MAX_TOKENS × heads × MAX_SPLITS × (2 + d). */
export const MAX_SPLITS = 64;
/** Keys per split aimed at when the cache is full: more splits than that add combine work without parallelism. */
const KEYS_PER_SPLIT = 32;

/** What a layout's attention kernel (an includer of lib/attention_rows.wgsl) is recorded with. */
export interface RowAttention {
  label: string;
  shader: ShaderName;
  variant: ShaderVariant;
  /** The layout's own bindings; AttnParams is added at `paramsBinding` and io.out at `outBinding`. */
  bindings: Record<number, Binding>;
  paramsBinding: number;
  outBinding: number;
  io: AttentionIO;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Positions the cache can hold now: the split count is chosen from it once per plan. */
  capacity: number;
  /** Whether the layout may split keys (not zip, whose saliency needs each query's whole softmax). */
  canSplit: boolean;
  /**
   * Score saliency after the attention (lib/saliency_rows.wgsl): `reads` lists the layout bindings its
   * row_score uses (entry points bind exactly what they use).
   */
  saliency?: { tracker: SaliencyTracker; layer: number; reads: number[] } | null;
}

/**
 * Record attention over a row-read layout. Decode steps split the keys over up to MAX_SPLITS invocations
 * per query and merge them (main_split + attention_combine.wgsl); other steps run one workgroup per query:
 * barrier-free, one query per invocation on CPU adapters (main_serial), cooperative elsewhere (main).
 */
export function recordRowAttention(rec: Recorder, a: RowAttention): void {
  // WGSL AttnParams (lib/attention_common.wgsl).
  const attnParams = rec.uniforms.struct({ tokens: a.io.tokens, heads: a.heads, kv_heads: a.kvHeads, head_dim: a.headDim, scale: f32(1 / Math.sqrt(a.headDim)) });
  recordAttend(rec, a, attnParams);
  const s = a.saliency;
  if (s) {
    const reads = Object.fromEntries(s.reads.map((b) => [b, a.bindings[b]]));
    s.tracker.record(rec, s.layer, a.io, a.shader, reads, a.paramsBinding, attnParams);
  }
}

function recordAttend(rec: Recorder, a: RowAttention, attnParams: Binding): void {
  const T = a.io.tokens;
  const bindings = { ...a.bindings, [a.paramsBinding]: attnParams };
  const splits = Math.min(MAX_SPLITS, Math.ceil(a.capacity / KEYS_PER_SPLIT));
  if (a.canSplit && T <= SPLIT_MAX_TOKENS && splits > 1) {
    const attend = rec.pipelines.get({ shader: a.shader, entry: 'main_split', variant: a.variant, overrides: { SPLITS: splits } });
    // main_split writes the partials instead of out (lib/attention_rows.wgsl binding 15).
    rec.dispatch(a.label, attend, { ...bindings, 15: a.io.partials }, [Math.ceil((T * a.heads * splits) / 64), 1, 1]);
    const combine = rec.pipelines.get({ shader: 'attention_combine', variant: rec.variant });
    const params = rec.uniforms.struct({ tokens: T, heads: a.heads, head_dim: a.headDim, splits });
    rec.dispatch(`attention_combine ${a.label}`, combine, { 0: params, 1: a.io.partials, 2: a.io.out }, [Math.ceil((T * a.heads * a.headDim) / 64), 1, 1]);
    return;
  }
  if (rec.caps.softwareAdapter) {
    const attend = rec.pipelines.get({ shader: a.shader, entry: 'main_serial', variant: a.variant });
    rec.dispatch(a.label, attend, { ...bindings, [a.outBinding]: a.io.out }, [Math.ceil((T * a.heads) / 64), 1, 1]);
    return;
  }
  const attend = rec.pipelines.get({ shader: a.shader, entry: 'main', variant: a.variant });
  rec.dispatch(a.label, attend, { ...bindings, [a.outBinding]: a.io.out }, [a.heads, T, 1]);
}
