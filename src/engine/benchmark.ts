/**
 * Speed measurement shared by the Node benchmark and the in-browser one (run inside the worker):
 * prefill tokens/s for an N-token prompt, and decode tokens/s for the steps that end at position N;
 * and the per-KV-mode comparison (decode tokens/s and attention GPU time of every mode at each context).
 */
import type { GpuContext } from '../gpu/device';
import { queuedDecodeSteps } from './generation';
import { PassTimer, type TimedPass } from '../gpu/timestamps';
import type { LlamaModel } from '../model/llama';
import type { DecodeProfile, KvModeBenchRequest, KvModeBenchResult, KvModeSpec, KvModeSpeedSample, SpeedRow } from '../worker/api';

/**
 * The KV modes `npm run bench` compares, in order; the first is the baseline the others are divided by.
 * Adding a mode is one line here.
 */
export const BENCH_KV_MODES: Array<{ label: string; spec: KvModeSpec }> = [
  { label: 'full', spec: { mode: 'full' } },
  { label: 'int8', spec: { mode: 'int8' } },
  { label: 'kivi-4', spec: { mode: 'kivi', bits: 4 } },
  { label: 'kivi-2', spec: { mode: 'kivi', bits: 2 } },
  { label: 'merge', spec: { mode: 'merge' } },
  { label: 'merge+kivi', spec: { mode: 'merge+kivi' } },
  { label: 'zip', spec: { mode: 'zip' } },
];

/** Extra copies of each attention dispatch in a 'cpu-repeat' profiled step. */
const CPU_REPEAT_EXTRA = 3;

const now = () => performance.now();

/** Deterministic token ids in [3, vocab) to feed the model. */
export function benchmarkTokens(n: number, vocab: number, seed = 7): number[] {
  const out: number[] = [];
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out.push(3 + (s % Math.max(1, vocab - 3)));
  }
  return out;
}

async function prefill(model: LlamaModel, ids: number[], readLast: boolean): Promise<void> {
  for (let i = 0; i < ids.length; i += model.maxStepTokens) {
    const chunk = ids.slice(i, i + model.maxStepTokens);
    const last = i + chunk.length >= ids.length;
    await model.forward(chunk, last && readLast ? 'token' : 'none');
  }
  await model.sync();
}

/** The kernel family of a dispatch label: its first word ("linear", "attention_full", …). */
export function kernelFamily(label: string): string {
  return label.split(' ')[0];
}

/**
 * Decode profile at the cache's current length: dispatches per step, GPU time per kernel family from
 * timestamp-query (each dispatch in its own timed pass; these steps are not counted as plain decode),
 * and the mean host time of `plain` plain steps. The profiled steps append to the cache like any step.
 */
async function profileDecode(model: LlamaModel, gpu: GpuContext | null, ids: number[]): Promise<DecodeProfile> {
  const profile: DecodeProfile = {
    dispatchesPerStep: model.dispatchesPerStep(1),
    gpuMsByFamily: {},
    gpuMsPerStep: NaN,
    host: { encodeMs: 0, submitMs: 0, waitMs: 0, readbackMs: 0 },
  };
  if (gpu?.caps.timestampQuery && ids.length > 2) {
    // One plain step first: a new cache size may need new pipelines (split counts), compiled on first use.
    await model.forward([ids[0]], 'token');
    ids = ids.slice(1);
    const timer = new PassTimer(gpu.device);
    const timed = ids.slice(0, Math.ceil(ids.length / 2));
    model.profile = { kind: 'timestamps', timer, each: true };
    try {
      let total = 0;
      for (const id of timed) {
        await model.forward([id], 'token');
        for (const p of await timer.read()) {
          const fam = kernelFamily(p.label);
          profile.gpuMsByFamily[fam] = (profile.gpuMsByFamily[fam] ?? 0) + p.ms / timed.length;
          total += p.ms / timed.length;
        }
      }
      profile.gpuMsPerStep = total;
    } finally {
      model.profile = null;
      timer.destroy();
    }
    ids = ids.slice(timed.length);
  }
  for (const id of ids) {
    await model.forward([id], 'token');
    const t = model.lastStepTimes;
    profile.host.encodeMs += t.encodeMs / ids.length;
    profile.host.submitMs += t.submitMs / ids.length;
    profile.host.waitMs += t.waitMs / ids.length;
    profile.host.readbackMs += t.readbackMs / ids.length;
  }
  return profile;
}

/** Measure prefill and decode speed at each context length. The cache is reset before and after. */
export async function measureSpeed(model: LlamaModel, contexts: number[], decodeTokens: number, gpu: GpuContext | null = null): Promise<SpeedRow[]> {
  const rows: SpeedRow[] = [];
  const vocab = model.config.vocabSize;
  // Warm-up: compile every pipeline the measured steps use.
  model.kv.reset();
  await prefill(model, benchmarkTokens(Math.min(model.maxStepTokens + 1, model.config.maxPositions - 1), vocab), true);
  for (const context of contexts) {
    const ids = benchmarkTokens(context, vocab);
    model.kv.reset();
    const t0 = now();
    await prefill(model, ids, true);
    const prefillMs = now() - t0;

    // Profile steps first (they also append), then the timed decode steps that end at the context.
    const steps = Math.min(decodeTokens, context - 1);
    const profiled = Math.min(8, context - steps - 1);
    model.kv.reset();
    await prefill(model, ids.slice(0, context - steps - profiled), true);
    const profile = await profileDecode(model, gpu, ids.slice(context - steps - profiled, context - steps));
    // Decode as the generate loop does on a full cache: greedy steps queued queuedDecodeSteps(model) at a time.
    const queued = model.kv.canRewind ? queuedDecodeSteps(model) : 1;
    const t1 = now();
    for (let i = context - steps; i < context; i += queued) {
      const n = Math.min(queued, context - i);
      if (n > 1) await model.decodeGreedy(ids[i], n);
      else await model.forward([ids[i]], 'token');
    }
    const decodeMs = now() - t1;
    rows.push({
      kvMode: model.kv.mode,
      context,
      prefillMs,
      decodeMs,
      decodeTokens: steps,
      prefillTokensPerSecond: (context * 1000) / prefillMs,
      decodeTokensPerSecond: (steps * 1000) / decodeMs,
      ...profile,
      bytesPerStep: { weights: model.weights.decodeBytesPerStep, kv: model.kv.bytesReadPerStep() },
    });
  }
  model.kv.reset();
  return rows;
}

async function prefillRange(model: LlamaModel, ids: number[], from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += model.maxStepTokens) await model.forward(ids.slice(i, Math.min(to, i + model.maxStepTokens)), 'none');
  await model.sync();
}

/** Split a profiled step's passes into attention kernels, cache writes (the rest of the section) and everything else. */
function splitPasses(passes: TimedPass[]): { attentionMs: number; cacheWriteMs: number; otherGpuMs: number } {
  const out = { attentionMs: 0, cacheWriteMs: 0, otherGpuMs: 0 };
  for (const p of passes) {
    if (p.section !== 'attention') out.otherGpuMs += p.ms;
    else if (p.label.startsWith('attention')) out.attentionMs += p.ms;
    else out.cacheWriteMs += p.ms;
  }
  return out;
}

/**
 * For each round, each mode (interleaved, so every mode sees the same machine load) and each context C in
 * increasing order: prefill up to C − 2S on one growing cache, run S profiled decode steps, then S plain
 * decode steps ending at C, timed for tokens/s. The cache is reserved to the largest context first, so no
 * growth happens inside a measurement. `useMode` replaces the model's cache with an empty one of a mode.
 */
export async function measureKvModeSpeed(
  model: LlamaModel,
  gpu: GpuContext,
  request: KvModeBenchRequest,
  useMode: (spec: KvModeSpec) => void,
  log: (line: string) => void = () => {},
): Promise<KvModeBenchResult> {
  const S = request.decodeTokens;
  const contexts = [...request.contexts].sort((a, b) => a - b);
  const maxContext = contexts[contexts.length - 1];
  if (!(S >= 1) || contexts[0] < 2 * S + 1 || maxContext > model.config.maxPositions) {
    throw new RangeError(`Contexts must lie in ${2 * S + 1}..${model.config.maxPositions} for ${S} decode steps; got ${contexts.join(', ')}.`);
  }
  const wanted = request.timing ?? 'auto';
  const timing: KvModeBenchResult['timing'] = wanted === 'none' ? 'none' : wanted === 'auto' && gpu.caps.timestampQuery ? 'timestamps' : 'cpu-repeat';
  const timer = timing === 'timestamps' ? new PassTimer(gpu.device) : null;
  const ids = benchmarkTokens(maxContext, model.config.vocabSize);
  const samples: KvModeSpeedSample[] = [];
  try {
    for (let round = 0; round < request.repeats; round++) {
      for (const { label, spec } of request.modes) {
        useMode(spec);
        model.kv.reserve(maxContext);
        // Warm-up: compile this mode's pipelines (matrix kernels differ for steps of 1–2 and of 3+ tokens).
        await prefillRange(model, ids, 0, 3);
        await model.forward([ids[0]], 'token');
        model.kv.reset();
        let pos = 0;
        for (const context of contexts) {
          const start = context - 2 * S;
          const prefilled = start - pos;
          const t0 = now();
          await prefillRange(model, ids, pos, start);
          const prefillMs = now() - t0;
          // S profiled steps.
          const sum = { attentionMs: 0, cacheWriteMs: 0, otherGpuMs: 0 };
          let profiledWallMs = 0;
          model.profile = timer ? { kind: 'timestamps', timer } : timing === 'cpu-repeat' ? { kind: 'repeat', labelPrefix: 'attention', times: 1 + CPU_REPEAT_EXTRA } : null;
          try {
            for (let i = start; i < start + S; i++) {
              const t = now();
              await model.forward([ids[i]], 'token');
              profiledWallMs += now() - t;
              if (timer) {
                const split = splitPasses(await timer.read());
                sum.attentionMs += split.attentionMs;
                sum.cacheWriteMs += split.cacheWriteMs;
                sum.otherGpuMs += split.otherGpuMs;
              }
            }
          } finally {
            model.profile = null;
          }
          // S plain steps ending at the context length.
          const t1 = now();
          for (let i = start + S; i < context; i++) await model.forward([ids[i]], 'token');
          const decodeMs = now() - t1;
          pos = context;
          const sample: KvModeSpeedSample = {
            mode: label,
            round,
            context,
            decodeTokens: S,
            decodeMs,
            decodeTokensPerSecond: (S * 1000) / decodeMs,
            prefillTokensPerSecond: (prefilled * 1000) / prefillMs,
            attentionMs: timer ? sum.attentionMs / S : timing === 'cpu-repeat' ? (profiledWallMs - decodeMs) / S / CPU_REPEAT_EXTRA : NaN,
            cacheWriteMs: timer ? sum.cacheWriteMs / S : NaN,
            otherGpuMs: timer ? sum.otherGpuMs / S : NaN,
          };
          samples.push(sample);
          log(
            `round ${round + 1} ${label} @${context}: decode ${sample.decodeTokensPerSecond.toFixed(2)} tok/s, ` +
              `attention ${sample.attentionMs.toFixed(3)} ms/step (${timing}), cache writes ${sample.cacheWriteMs.toFixed(3)}, other ${sample.otherGpuMs.toFixed(3)}, ` +
              `prefill ${sample.prefillTokensPerSecond.toFixed(1)} tok/s`,
          );
        }
        model.kv.reset();
      }
    }
  } finally {
    model.profile = null;
    timer?.destroy();
  }
  return { timing, samples };
}
