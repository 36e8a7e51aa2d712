/**
 * Kernel-level KV-mode benchmark in Node through Dawn: only the KV part of a decode step (each layer's
 * attention kernel and cache writes), without the rest of the model, so many repetitions are cheap and the
 * ratios between modes are less exposed to CPU contention than whole-model decode. For every mode of
 * BENCH_KV_MODES: a cache of the byte-llama-12l attention shapes with 4 layers (so merged modes have one
 * merged pair over two base layers, the same proportion as 12 layers) is filled with random rows in steps of
 * 128 up to C − N, then N decode steps ending at C are timed pass by pass with timestamp-query. Modes are
 * interleaved per round; the result is the median over rounds of each mode's mean per step.
 * Prints one JSON object on stdout. Built by vite into dist-bench/attention-kernels.js:
 *   node dist-bench/attention-kernels.js [--contexts 512,2048] [--steps 16] [--rounds 3] [--modes full,int8,...]
 */
import { MAX_SPLITS, SPLIT_MAX_TOKENS } from '../src/kv/row-attention';
import { create, globals } from 'webgpu';
import { BufferGroup } from '../src/gpu/buffers';
import { acquireDevice, type GpuContext } from '../src/gpu/device';
import { PipelineCache } from '../src/gpu/pipelines';
import { Recorder, type Plan } from '../src/gpu/plan';
import type { ShaderVariant } from '../src/gpu/shader-assembly';
import { PassTimer, type TimedPass } from '../src/gpu/timestamps';
import { StepUniform } from '../src/gpu/uniforms';
import { BENCH_KV_MODES } from '../src/engine/benchmark';
import { createKvCache, fullPrecisionKvDtype } from '../src/kv/factory';
import type { KvCache, KvShape } from '../src/kv/types';

/** byte-llama-12l attention shapes (config.json of /work/shared/models/byte-llama-12l), 4 layers. */
const SHAPE: KvShape = { numLayers: 4, numHeads: 4, numKvHeads: 2, headDim: 64, maxTokens: 2048, maxStepTokens: 128 };

/** Dawn's entry point (unquantized timestamps), module-level so it outlives the devices it created. */
let dawnEntry: GPU | null = null;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function randomRows(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

/** One mode's step at (pos0, T): record (cached per T), run, and optionally time. */
class KvStepper {
  private readonly plans = new Map<number, Plan>();
  private readonly io;

  constructor(
    private readonly gpu: GpuContext,
    private readonly pipelines: PipelineCache,
    private readonly variant: ShaderVariant,
    private readonly step: StepUniform,
    buffers: BufferGroup,
    readonly cache: KvCache,
  ) {
    const T = SHAPE.maxStepTokens as number;
    const E = SHAPE.numKvHeads * SHAPE.headDim;
    const Q = SHAPE.numHeads * SHAPE.headDim;
    this.io = {
      q: buffers.upload('q', randomRows(T * Q, 1)) /* f32 [T, heads, headDim] */,
      k: buffers.upload('k', randomRows(T * E, 2)) /* f32 [T, kvHeads, headDim] */,
      v: buffers.upload('v', randomRows(T * E, 3)) /* f32 [T, kvHeads, headDim] */,
      out: buffers.create('out', T * Q * 4) /* f32 [T, heads, headDim] */,
      partials: buffers.create('partials', SPLIT_MAX_TOKENS * SHAPE.numHeads * MAX_SPLITS * (2 + SHAPE.headDim) * 4),
    };
  }

  async run(T: number, timer: PassTimer | null): Promise<TimedPass[]> {
    const pos0 = this.cache.length;
    this.cache.reserve(pos0 + T);
    let plan = this.plans.get(T);
    if (!plan) {
      const rec = new Recorder(this.gpu.device, this.pipelines, this.gpu.caps, this.variant, this.step, new BufferGroup(this.gpu.device, 'plan'));
      for (let l = 0; l < SHAPE.numLayers; l++) rec.section('attention', () => this.cache.recordAttention(rec, l, { ...this.io, tokens: T, pos0 }));
      plan = rec.finish(T);
      this.plans.set(T, plan);
    }
    this.step.write(pos0, T);
    const encoder = this.gpu.device.createCommandEncoder();
    plan.encodeStep(encoder, timer ? { kind: 'timestamps', timer } : null);
    this.gpu.device.queue.submit([encoder.finish()]);
    this.cache.commit(T);
    return timer ? timer.read() : [];
  }

  destroy(): void {
    for (const p of this.plans.values()) p.destroy();
    this.cache.destroy();
  }
}

async function main() {
  Object.assign(globalThis, globals);
  const contexts = arg('contexts', '512,2048').split(',').map(Number);
  const steps = Number(arg('steps', '16'));
  const rounds = Number(arg('rounds', '3'));
  const labels = arg('modes', BENCH_KV_MODES.map((m) => m.label).join(',')).split(',');
  const modes = BENCH_KV_MODES.filter((m) => labels.includes(m.label));
  dawnEntry = create(['disable-dawn-features=timestamp_quantization']) as unknown as GPU;
  const gpu = await acquireDevice(dawnEntry);
  if (!gpu.caps.timestampQuery) throw new Error('This benchmark needs timestamp-query.');
  const pipelines = new PipelineCache(gpu.device);
  const buffers = new BufferGroup(gpu.device, 'attention-kernels');
  const step = new StepUniform(gpu.device, buffers);
  const kvDtype = fullPrecisionKvDtype(gpu.caps);
  const variant: ShaderVariant = { weight: gpu.caps.f16 ? 'f16' : 'f32', kv: kvDtype, subgroups: gpu.caps.subgroups };
  const timer = new PassTimer(gpu.device);
  const samples: Array<{ mode: string; round: number; context: number; kvMs: number; attentionMs: number }> = [];
  for (let round = 0; round < rounds; round++) {
    for (const { label, spec } of modes) {
      for (const context of contexts) {
        const stepper = new KvStepper(gpu, pipelines, variant, step, buffers, createKvCache(gpu.device, gpu.caps, SHAPE, spec, kvDtype));
        stepper.cache.reserve(context);
        while (stepper.cache.length < context - steps) await stepper.run(Math.min(128, context - steps - stepper.cache.length), null);
        await gpu.device.queue.onSubmittedWorkDone();
        let kvMs = 0;
        let attentionMs = 0;
        for (let i = 0; i < steps; i++) {
          for (const p of await stepper.run(1, timer)) {
            kvMs += p.ms;
            if (p.label.startsWith('attention')) attentionMs += p.ms;
          }
        }
        samples.push({ mode: label, round, context, kvMs: kvMs / steps, attentionMs: attentionMs / steps });
        process.stderr.write(
          `round ${round + 1} ${label} @${context}: attention ${(attentionMs / steps).toFixed(3)} ms/step, KV part ${(kvMs / steps).toFixed(3)} ms/step (${SHAPE.numLayers} layers)\n`,
        );
        stepper.destroy();
      }
    }
  }
  timer.destroy();
  buffers.destroy();
  gpu.destroy();
  process.stdout.write(JSON.stringify({ adapter: gpu.adapterDescription, shape: SHAPE, steps, rounds, samples }) + '\n');
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
