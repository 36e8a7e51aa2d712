/**
 * Scratch buffers for one step of up to `maxTokens` tokens, and the staging buffers that read back
 * only what sampling needs (one token id, or one row of logits).
 */
import { BufferGroup, Usage } from '../gpu/buffers';
import type { ModelConfig } from './config';
import { MAX_SPLITS, SPLIT_MAX_TOKENS } from '../kv/row-attention';

/** Most greedy decode steps queued on the GPU before the CPU reads their tokens (LlamaModel.decodeGreedy). */
export const MAX_QUEUED_STEPS = 32;

/** Which logits a step computes. */
export type LogitsMode = 'none' | 'last' | 'all';

/** Bytes of each storage activation buffer for steps of up to `maxTokens` tokens (the memory plan reads these too). */
export function activationSizes(config: ModelConfig, maxTokens: number, logitRows: number): Record<'ids' | 'x' | 'h' | 'qkv' | 'q' | 'k' | 'v' | 'attn' | 'partials' | 'gate' | 'up' | 'logits', number> {
  const { hiddenSize, numHeads, numKvHeads, headDim, intermediateSize, vocabSize } = config;
  const f = 4;
  return {
    ids: maxTokens * 4,
    x: maxTokens * hiddenSize * f,
    h: maxTokens * hiddenSize * f,
    qkv: maxTokens * (numHeads + 2 * numKvHeads) * headDim * f,
    q: maxTokens * numHeads * headDim * f,
    k: maxTokens * numKvHeads * headDim * f,
    v: maxTokens * numKvHeads * headDim * f,
    attn: maxTokens * numHeads * headDim * f,
    partials: SPLIT_MAX_TOKENS * numHeads * MAX_SPLITS * (2 + headDim) * f,
    gate: maxTokens * intermediateSize * f,
    up: maxTokens * intermediateSize * f,
    logits: logitRows * vocabSize * f,
  };
}

/** Activation buffers, owned here and destroyed together. */
export class Activations {
  private readonly owner: BufferGroup;
  readonly ids: GPUBuffer /* u32 [maxTokens] */;
  readonly x: GPUBuffer /* f32 [maxTokens, hidden]: the residual stream */;
  readonly h: GPUBuffer /* f32 [maxTokens, hidden]: normed input / block output */;
  readonly qkv: GPUBuffer /* f32 [maxTokens, (heads + 2 · kvHeads) · headDim]: the fused projection */;
  readonly q: GPUBuffer /* f32 [maxTokens, heads, headDim] */;
  readonly k: GPUBuffer /* f32 [maxTokens, kvHeads, headDim] */;
  readonly v: GPUBuffer /* f32 [maxTokens, kvHeads, headDim] */;
  readonly attn: GPUBuffer /* f32 [maxTokens, heads, headDim] */;
  readonly partials: GPUBuffer /* f32 [SPLIT_MAX_TOKENS, heads, MAX_SPLITS, 2 + headDim]: split-K attention */;
  readonly gate: GPUBuffer /* f32 [maxTokens, intermediate] */;
  readonly up: GPUBuffer /* f32 [maxTokens, intermediate] */;
  readonly logits: GPUBuffer /* f32 [logitRows, vocab] */;
  readonly token: GPUBuffer /* u32 [1]: argmax of the last logits row */;
  readonly tokenReadback: GPUBuffer /* u32 [1], MAP_READ */;
  readonly tokenRing: GPUBuffer /* u32 [MAX_QUEUED_STEPS]: the greedy tokens of queued decode steps */;
  /** u32 [MAX_QUEUED_STEPS], MAP_READ, two: a batch of queued steps can be read while the next one runs. */
  readonly tokenRingReadbacks: readonly [GPUBuffer, GPUBuffer];
  readonly stepRing: GPUBuffer /* u32 [MAX_QUEUED_STEPS, 4]: Step values of queued steps, copied into the Step uniform one by one */;
  readonly logitsReadback: GPUBuffer /* f32 [logitRows, vocab], MAP_READ */;

  constructor(
    device: GPUDevice,
    config: ModelConfig,
    readonly maxTokens: number,
    readonly logitRows: number,
  ) {
    this.owner = new BufferGroup(device, 'activations');
    const s = activationSizes(config, maxTokens, logitRows);
    this.ids = this.owner.create('ids', s.ids);
    this.x = this.owner.create('x', s.x);
    this.h = this.owner.create('h', s.h);
    this.qkv = this.owner.create('qkv', s.qkv);
    this.q = this.owner.create('q', s.q);
    this.k = this.owner.create('k', s.k);
    this.v = this.owner.create('v', s.v);
    this.attn = this.owner.create('attn', s.attn);
    this.partials = this.owner.create('attn-partials', s.partials);
    this.gate = this.owner.create('gate', s.gate);
    this.up = this.owner.create('up', s.up);
    this.logits = this.owner.create('logits', s.logits);
    this.token = this.owner.create('token', 4);
    this.tokenReadback = this.owner.create('token-readback', 4, Usage.MAP_READ | Usage.COPY_DST);
    this.tokenRing = this.owner.create('token-ring', MAX_QUEUED_STEPS * 4);
    const readback = (i: number) => this.owner.create(`token-ring-readback-${i}`, MAX_QUEUED_STEPS * 4, Usage.MAP_READ | Usage.COPY_DST);
    this.tokenRingReadbacks = [readback(0), readback(1)];
    this.stepRing = this.owner.create('step-ring', MAX_QUEUED_STEPS * 16, Usage.COPY_SRC | Usage.COPY_DST);
    this.logitsReadback = this.owner.create('logits-readback', s.logits, Usage.MAP_READ | Usage.COPY_DST);
  }

  /** Bytes allocated for activations and staging. */
  get bytes(): number {
    return this.owner.bytes;
  }

  /** Free every buffer. Safe to call twice. */
  destroy(): void {
    this.owner.destroy();
  }
}
