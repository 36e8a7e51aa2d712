/**
 * Scratch buffers for one step of up to `maxTokens` tokens, and the staging buffers that read back
 * only what sampling needs (one token id, or one row of logits).
 */
import { BufferGroup, Usage } from '../gpu/buffers';
import type { ModelConfig } from './config';
import { MAX_SPLITS, SPLIT_MAX_TOKENS } from '../kv/row-attention';

/** Most greedy decode steps queued on the GPU before the CPU reads their tokens (LlamaModel.decodeGreedy). */
export const MAX_QUEUED_STEPS = 16;

/** Which logits a step computes. */
export type LogitsMode = 'none' | 'last' | 'all';

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
  readonly tokenRingReadback: GPUBuffer /* u32 [MAX_QUEUED_STEPS], MAP_READ */;
  readonly logitsReadback: GPUBuffer /* f32 [logitRows, vocab], MAP_READ */;

  constructor(
    device: GPUDevice,
    config: ModelConfig,
    readonly maxTokens: number,
    readonly logitRows: number,
  ) {
    this.owner = new BufferGroup(device, 'activations');
    const { hiddenSize, numHeads, numKvHeads, headDim, intermediateSize, vocabSize } = config;
    const f = 4;
    this.ids = this.owner.create('ids', maxTokens * 4);
    this.x = this.owner.create('x', maxTokens * hiddenSize * f);
    this.h = this.owner.create('h', maxTokens * hiddenSize * f);
    this.qkv = this.owner.create('qkv', maxTokens * (numHeads + 2 * numKvHeads) * headDim * f);
    this.q = this.owner.create('q', maxTokens * numHeads * headDim * f);
    this.k = this.owner.create('k', maxTokens * numKvHeads * headDim * f);
    this.v = this.owner.create('v', maxTokens * numKvHeads * headDim * f);
    this.attn = this.owner.create('attn', maxTokens * numHeads * headDim * f);
    this.partials = this.owner.create('attn-partials', SPLIT_MAX_TOKENS * numHeads * MAX_SPLITS * (2 + headDim) * f);
    this.gate = this.owner.create('gate', maxTokens * intermediateSize * f);
    this.up = this.owner.create('up', maxTokens * intermediateSize * f);
    this.logits = this.owner.create('logits', logitRows * vocabSize * f);
    this.token = this.owner.create('token', 4);
    this.tokenReadback = this.owner.create('token-readback', 4, Usage.MAP_READ | Usage.COPY_DST);
    this.tokenRing = this.owner.create('token-ring', MAX_QUEUED_STEPS * 4);
    this.tokenRingReadback = this.owner.create('token-ring-readback', MAX_QUEUED_STEPS * 4, Usage.MAP_READ | Usage.COPY_DST);
    this.logitsReadback = this.owner.create('logits-readback', logitRows * vocabSize * f, Usage.MAP_READ | Usage.COPY_DST);
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
