/**
 * What every KV layout shares: one BufferGroup owning its GPU buffers, a capacity that grows in blocks,
 * the count of tokens held, and a generation bumped when buffers are replaced. Layouts add their buffers,
 * kernels (recordAttention) and per-layer byte accounting (layerStats).
 */
import { BufferGroup } from '../gpu/buffers';
import type { Binding, Recorder } from '../gpu/plan';
import { f32 } from '../gpu/uniforms';
import type { ShaderVariant } from '../gpu/shader-assembly';
import type { ShaderName } from '../gpu/shaders';
import type { KvLayerStats } from '../worker/api';
import { fp16BaselineBytes, type AttentionIO, type KvCache, type KvShape } from './types';

export abstract class GrowingKvCache implements KvCache {
  /** Tokens the current allocation holds. */
  protected capacity = 0;
  protected held = 0;
  protected gen = 0;
  protected readonly owner: BufferGroup;

  constructor(
    protected readonly device: GPUDevice,
    protected readonly shape: KvShape,
    readonly mode: string,
  ) {
    this.owner = new BufferGroup(device, `kv-${mode}`);
  }

  get generation(): number {
    return this.gen;
  }

  get length(): number {
    return this.held;
  }

  /** Tokens the current allocation holds. */
  get allocatedTokens(): number {
    return this.capacity;
  }

  abstract reserve(totalTokens: number): void;
  abstract recordAttention(rec: Recorder, layer: number, io: AttentionIO): void;
  abstract layerStats(): KvLayerStats[];

  commit(tokens: number): void {
    this.held += tokens;
  }

  /** Layouts whose steps all run the same kernels keep one key. */
  stepKey(_pos0: number, _tokens: number): string {
    return '';
  }

  get canRewind(): boolean {
    return false;
  }

  /** Quantized blocks, merged pairs and rings cannot be rewound to an arbitrary position; only a no-op cut works. */
  truncate(tokens: number): boolean {
    return tokens >= this.held;
  }

  reset(): void {
    this.held = 0;
  }

  fp16EquivalentBytes(): number {
    return fp16BaselineBytes(this.shape, this.held);
  }

  bytesReadPerStep(): number {
    if (this.capacity === 0) return 0;
    return Math.round((this.owner.bytes * Math.min(this.held, this.capacity)) / this.capacity);
  }

  bufferSizes(): Array<{ label: string; bytes: number }> {
    return this.owner.sizes();
  }

  destroy(): void {
    this.owner.destroy();
    this.capacity = 0;
    this.held = 0;
  }
}

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
  /** The layout's own bindings; the AttnParams uniform is added at `paramsBinding`. */
  bindings: Record<number, Binding>;
  paramsBinding: number;
  io: AttentionIO;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Positions the cache can hold now: the split count is chosen from it once per plan. */
  capacity: number;
  /** Whether the layout may split keys (not zip, whose saliency needs each query's whole softmax). */
  canSplit: boolean;
}

/**
 * Record attention over a row-read layout. Decode steps split the keys over up to MAX_SPLITS invocations
 * per query and merge them (main_split + attention_combine.wgsl); other steps run one workgroup per query:
 * barrier-free, one query per invocation on CPU adapters (main_serial), cooperative elsewhere (main).
 */
export function recordRowAttention(rec: Recorder, a: RowAttention): void {
  const T = a.io.tokens;
  // WGSL AttnParams (lib/attention_common.wgsl).
  const attnParams = rec.uniforms.struct({ tokens: T, heads: a.heads, kv_heads: a.kvHeads, head_dim: a.headDim, scale: f32(1 / Math.sqrt(a.headDim)) });
  a = { ...a, bindings: { ...a.bindings, [a.paramsBinding]: attnParams } };
  const splits = Math.min(MAX_SPLITS, Math.ceil(a.capacity / KEYS_PER_SPLIT));
  if (a.canSplit && T <= SPLIT_MAX_TOKENS && splits > 1) {
    const attend = rec.pipelines.get({ shader: a.shader, entry: 'main_split', variant: a.variant, overrides: { SPLITS: splits } });
    // main_split writes the partials instead of out, so out is not in its layout.
    const bindings = Object.fromEntries(Object.entries(a.bindings).filter(([, b]) => b !== a.io.out));
    rec.dispatch(a.label, attend, { ...bindings, 15: a.io.partials }, [Math.ceil((T * a.heads * splits) / 64), 1, 1]);
    const combine = rec.pipelines.get({ shader: 'attention_combine', variant: rec.variant });
    const params = rec.uniforms.struct({ tokens: T, heads: a.heads, head_dim: a.headDim, splits });
    rec.dispatch(`attention_combine ${a.label}`, combine, { 0: params, 1: a.io.partials, 2: a.io.out }, [Math.ceil((T * a.heads * a.headDim) / 64), 1, 1]);
    return;
  }
  if (rec.caps.softwareAdapter) {
    const attend = rec.pipelines.get({ shader: a.shader, entry: 'main_serial', variant: a.variant });
    rec.dispatch(a.label, attend, a.bindings, [Math.ceil((T * a.heads) / 64), 1, 1]);
    return;
  }
  const attend = rec.pipelines.get({ shader: a.shader, entry: 'main', variant: a.variant });
  rec.dispatch(a.label, attend, a.bindings, [a.heads, T, 1]);
}
