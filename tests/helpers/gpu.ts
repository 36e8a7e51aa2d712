/**
 * WebGPU in Node through Dawn (`webgpu` package), for kernel and model tests. VK_ICD_FILENAMES selects
 * lavapipe or SwiftShader (scripts/with-lavapipe.sh).
 */
import { MAX_SPLITS, SPLIT_MAX_TOKENS } from '../../src/kv/row-attention';
import { afterAll, beforeAll } from 'vitest';
import { create, globals } from 'webgpu';
import { BufferGroup, Usage } from '../../src/gpu/buffers';
import { acquireDevice, type DeviceOptions, type GpuContext } from '../../src/gpu/device';
import { PipelineCache } from '../../src/gpu/pipelines';
import { Recorder } from '../../src/gpu/plan';
import type { ShaderVariant } from '../../src/gpu/shader-assembly';
import { StepUniform } from '../../src/gpu/uniforms';

Object.assign(globalThis, globals);
let entry: GPU | null = null;

/** The process-wide Dawn GPU entry point. */
export function nodeGpu(): GPU {
  entry ??= create([]) as unknown as GPU;
  return entry;
}

/** A device plus the pieces kernel tests need. */
export interface KernelHarness {
  gpu: GpuContext;
  pipelines: PipelineCache;
  buffers: BufferGroup;
  step: StepUniform;
  /** Record kernels with `record`, run them once with the given step values, and wait. */
  run(variant: ShaderVariant, record: (rec: Recorder) => void, pos0?: number, tokens?: number): Promise<void>;
  upload(data: Float32Array | Uint32Array | Uint16Array): GPUBuffer;
  empty(bytes: number): GPUBuffer;
  readF32(buffer: GPUBuffer, count: number): Promise<Float32Array>;
  readU32(buffer: GPUBuffer, count: number): Promise<Uint32Array>;
  destroy(): void;
}

/** Open a device and a harness around it. */
export async function kernelHarness(options: DeviceOptions = {}): Promise<KernelHarness> {
  const gpu = await acquireDevice(nodeGpu(), options);
  const device = gpu.device;
  const pipelines = new PipelineCache(device);
  const buffers = new BufferGroup(device, 'test');
  const step = new StepUniform(device, buffers);
  async function read(buffer: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    const staging = device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: Usage.MAP_READ | Usage.COPY_DST });
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, 0, staging, 0, staging.size);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(1);
    const out = staging.getMappedRange().slice(0, bytes);
    staging.destroy();
    return out;
  }
  return {
    gpu,
    pipelines,
    buffers,
    step,
    async run(variant, record, pos0 = 0, tokens = 1) {
      device.pushErrorScope('validation');
      const rec = new Recorder(device, pipelines, gpu.caps, variant, step, new BufferGroup(device, 'plan'));
      record(rec);
      const plan = rec.finish(tokens);
      step.write(pos0, tokens);
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      plan.encode(pass);
      pass.end();
      device.queue.submit([enc.finish()]);
      const err = await device.popErrorScope();
      await pipelines.checkCompilation();
      if (err) throw new Error(`GPU validation error: ${err.message}`);
      await device.queue.onSubmittedWorkDone();
      plan.destroy();
    },
    upload: (data) => buffers.upload('data', data),
    empty: (bytes) => buffers.create('empty', bytes),
    readF32: async (b, n) => new Float32Array(await read(b, n * 4)),
    readU32: async (b, n) => new Uint32Array(await read(b, n * 4)),
    destroy() {
      buffers.destroy();
      gpu.destroy();
    },
  };
}

/** A harness opened before the enclosing suite's tests and destroyed after them (fields filled by beforeAll). */
export function useKernelHarness(options: DeviceOptions = {}): KernelHarness {
  const h = {} as KernelHarness;
  beforeAll(async () => {
    Object.assign(h, await kernelHarness(options));
  });
  afterAll(() => h.destroy?.());
  return h;
}

/** Scratch for split-K decode attention (AttentionIO.partials) of a layer with `heads` query heads of size `headDim`. */
export function attentionPartials(h: KernelHarness, heads: number, headDim: number): GPUBuffer {
  return h.empty(SPLIT_MAX_TOKENS * heads * MAX_SPLITS * (2 + headDim) * 4);
}

/** Deterministic pseudo-random numbers in [-scale, scale). */
export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296 - 0.5) * 2 * scale;
  }
  return out;
}

/** max |a − b| / max(1, max |b|): the error relative to the output scale. */
export function relativeMaxError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0;
  let scale = 1;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / scale;
}
