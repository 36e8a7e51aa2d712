/**
 * The fused decode step (shaders/decode_fused.wgsl) against the separate-kernel path and the CPU reference, on
 * random small models: the presets (q/k/v biases, q/k norms, GQA 3, MHA) and random shapes, a 7-layer model
 * whose step takes two dispatches (6 layer slots, then 1), f32 and f16, with and without subgroups.
 * Per case, after the same prefill: logits of every one-token step vs the CPU reference, the K/V the fused
 * steps write vs what the separate kernels write, and greedy ids (queued decodeGreedy) equal on both paths.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/device';
import { fusedGeometry } from '../../src/kernels/fused-decode';
import { FullKvCache } from '../../src/kv/full-cache';
import type { LlamaModel } from '../../src/model/llama';
import { f16ToF32 } from '../../src/reference/ggml-blocks';
import { loadReferenceModel } from '../../src/reference/load-node';
import { mulberry32 } from '../../src/reference/mulberry32';
import { hubSpec, useScratchHub } from '../helpers/hub';
import { randomConfigs, writeRandomModel, type RandomModelOptions } from '../helpers/random-model';

/** Logits of fused steps vs the CPU reference (f32 / f16 weights and KV), as tests/model-forward.test.ts. */
const LOGIT_TOL = { f32: 1e-3, f16: 5e-2 };
/** K/V written by the fused step vs the separate kernels (maxScaledDiff): f32 rounding order, or about two f16 steps. */
const KV_TOL = { f32: 1e-4, f16: 2e-3 };
const PREFILL = 9;
const STEPS = 12;

/** Random shapes that fit: head dims and widths multiples of 4 where the kernel needs them. */
function randomShapes(n: number): RandomModelOptions[] {
  return Array.from({ length: n }, (_, i) => {
    const rand = mulberry32(9100 + 7919 * i);
    const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
    const [numHeads, numKvHeads] = pick([[4, 2], [6, 3], [8, 4], [4, 4], [8, 1]]);
    const headDim = pick([8, 12, 16]);
    return {
      architecture: pick(['llama', 'qwen2', 'qwen3', 'mistral'] as const), hiddenSize: pick([32, 48, 64]), numLayers: 1 + Math.floor(rand() * 4),
      numHeads, numKvHeads, headDim, intermediateSize: 4 * (8 + Math.floor(rand() * 40)), vocabSize: 96 + Math.floor(rand() * 200), seed: 100 + i,
      tieEmbeddings: rand() < 0.5,
    };
  });
}

const CASES: Array<[string, RandomModelOptions]> = [
  ...Object.entries(randomConfigs).map(([name, o]) => [name, o] as [string, RandomModelOptions]),
  ...randomShapes(3).map((o, i) => [`random ${i} (${o.architecture} L${o.numLayers} H${o.numHeads}/${o.numKvHeads} d${o.headDim})`, o] as [string, RandomModelOptions]),
  ['llama 7 layers (two dispatches)', { architecture: 'llama', hiddenSize: 32, numLayers: 7, numHeads: 4, numKvHeads: 2, intermediateSize: 64, vocabSize: 128, seed: 7 }],
];

/** Cases run under the forced GPU schedule too: paired attention (4/2 heads, d 8, two dispatches), odd GQA, mistral. */
const HARDWARE_CASES = ['llama 7 layers (two dispatches)', 'llamaGqa3', 'mistral'];

describe('fused decode geometry', () => {
  const software = { softwareAdapter: true, maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256, maxStorageBuffersPerShaderStage: 8 };
  const stories = { hiddenSize: 64, intermediateSize: 172, numLayers: 5, numHeads: 8, numKvHeads: 4, headDim: 8, vocabSize: 512, rmsEps: 1e-5 };

  it('stories260k: 4 invocations and one attention task per head on CPU adapters (256 and 32 elsewhere), 2 layers per dispatch under 8 storage bindings, 5 under 16', () => {
    expect(fusedGeometry(stories, software)).toMatchObject({ workgroupSize: 4, partialsPerHead: 1, layerSlots: 2 });
    expect(fusedGeometry(stories, { ...software, maxStorageBuffersPerShaderStage: 16 })?.layerSlots).toBe(5);
    expect(fusedGeometry(stories, { ...software, softwareAdapter: false })).toMatchObject({ workgroupSize: 256, partialsPerHead: 32 });
  });

  it('shapes that do not fit are refused', () => {
    expect(fusedGeometry(stories, { ...software, maxComputeWorkgroupStorageSize: 1024 })).toBeNull();
    expect(fusedGeometry({ ...stories, intermediateSize: 170 }, software)).toBeNull();
    expect(fusedGeometry({ ...stories, hiddenSize: 60, numHeads: 10, headDim: 6 }, software)).toBeNull();
    expect(fusedGeometry({ ...stories, headDim: 512 }, software)).toBeNull();
    expect(fusedGeometry(stories, { ...software, maxStorageBuffersPerShaderStage: 5 })).toBeNull();
  });

  it('shared memory stays within the limit', () => {
    for (const limit of [16384, 32768]) {
      const g = fusedGeometry({ ...stories, hiddenSize: 256, intermediateSize: 512, numHeads: 4, numKvHeads: 2, headDim: 64 }, { ...software, maxComputeWorkgroupStorageSize: limit })!;
      expect((g.shared.total + 2 * g.workgroupSize + 4) * 4).toBeLessThanOrEqual(limit);
    }
  });
});

const scratch = useScratchHub('kvtab-fused-');

/** Every layer's K and V rows [0, tokens) of the model's full cache, as f32. */
async function readKv(model: LlamaModel, tokens: number, f16: boolean): Promise<Float32Array[]> {
  // The model's device (private: only this test reads cache buffers back).
  const device = (model as unknown as { gpu: GpuContext }).gpu.device;
  const layers = (model.kv as FullKvCache).fusedLayers()!;
  const rowElems = model.config.numKvHeads * model.config.headDim;
  const bytes = tokens * rowElems * (f16 ? 2 : 4);
  const out: Float32Array[] = [];
  for (const b of layers.flatMap((l) => [l.k, l.v])) {
    const staging = device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(b, 0, staging, 0, staging.size);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const raw = staging.getMappedRange().slice(0, bytes);
    staging.destroy();
    out.push(f16 ? Float32Array.from(new Uint16Array(raw), f16ToF32) : new Float32Array(raw));
  }
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** max |a − b| / max(1, |b|): absolute below 1, relative above (f16 rounding steps grow with the value). */
function maxScaledDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return m;
}

/** Prefill, then STEPS one-token steps of `ids` (logits each), then a queued greedy run; cache contents after. */
async function run(model: LlamaModel, ids: number[], fused: boolean, f16: boolean) {
  model.fusedDecode = fused;
  model.kv.reset();
  await model.forward(ids.slice(0, PREFILL), 'none');
  const logits: Float32Array[] = [];
  const tokens: number[] = [];
  for (let i = PREFILL; i < PREFILL + STEPS; i++) {
    const out = await model.forward([ids[i]], 'last-logits');
    logits.push(out.logits!);
    tokens.push(out.nextToken);
  }
  const kv = await readKv(model, PREFILL + STEPS, f16);
  const dispatches = model.dispatchesPerStep(1);
  const greedy = await model.decodeGreedy(ids[PREFILL + STEPS], 8);
  return { logits, tokens, kv, dispatches, greedy };
}

let served = 0;
// The adapter's own schedule in every dtype and subgroup setting, and the GPU schedule (256 invocations, attention
// split PART_P ways per head) forced on this CPU adapter for f32.
describe.each([
  ['f32', false, 'auto'],
  ['f32', true, 'auto'],
  ['f16', false, 'auto'],
  ['f16', true, 'auto'],
  ['f32', false, 'hardware'],
] as const)('fused decode vs separate kernels and the CPU reference (%s, subgroups %s, %s schedule)', (dtype, subgroups, kernelSchedule) => {
  it.each(kernelSchedule === 'auto' ? CASES : CASES.filter(([label]) => HARDWARE_CASES.includes(label)))('%s', async (_label, opts) => {
    const repo = `random/fused${served++}`;
    const dir = path.join(scratch.root, repo);
    await writeRandomModel(dir, opts);
    scratch.hub.setRepo(repo, dir);
    const info = await scratch.engine.load(hubSpec(scratch.hub, repo), { weightDtype: dtype, kvDtype: dtype === 'f16' ? 'auto' : 'f32', useSubgroups: subgroups, prefillChunk: 16, kernelSchedule });
    if (dtype === 'f16' && !info.adapter.f16) return;
    if (subgroups && !info.adapter.subgroups) return;
    const model = scratch.engine.model!;
    const f16 = dtype === 'f16';
    const rand = mulberry32(opts.seed ?? 0);
    const ids = Array.from({ length: PREFILL + STEPS + 1 }, () => Math.floor(rand() * opts.vocabSize));

    const fused = await run(model, ids, true, f16);
    const separate = await run(model, ids, false, f16);
    const geometry = fusedGeometry(model.config, (model as unknown as { gpu: GpuContext }).gpu.caps)!;
    expect(fused.dispatches, 'the fused path is taken').toBe(Math.ceil(opts.numLayers / geometry.layerSlots));
    expect(separate.dispatches).toBeGreaterThan(6 * opts.numLayers);

    const reference = (await loadReferenceModel(dir)).model.forward(ids.slice(0, PREFILL + STEPS));
    const V = opts.vocabSize;
    let logitDiff = 0;
    fused.logits.forEach((row, i) => { logitDiff = Math.max(logitDiff, maxAbsDiff(row, reference.subarray((PREFILL + i) * V, (PREFILL + i + 1) * V))); });
    let kvDiff = 0;
    fused.kv.forEach((layer, i) => { kvDiff = Math.max(kvDiff, maxScaledDiff(layer, separate.kv[i])); });
    console.log(`${_label} ${dtype}${subgroups ? ' sg' : ''}: ${fused.dispatches} dispatch(es)/step vs ${separate.dispatches}; max |logits − reference| ${logitDiff.toExponential(2)}, max |K/V fused − separate| ${kvDiff.toExponential(2)}`);
    expect(logitDiff).toBeLessThanOrEqual(LOGIT_TOL[dtype]);
    expect(kvDiff).toBeLessThanOrEqual(KV_TOL[dtype]);
    expect(fused.tokens).toEqual(separate.tokens);
    expect(fused.greedy).toEqual(separate.greedy);
  });
});
