/**
 * A recorded sequence of dispatches for one step shape. Plans are built once per (token count, cache
 * generation) and replayed every step: the only per-step GPU write is the 16-byte Step uniform.
 */
import { BufferGroup } from './buffers';
import type { GpuCaps } from './device';
import type { PipelineCache } from './pipelines';
import type { ShaderVariant } from './shader-assembly';
import type { PassTimer } from './timestamps';
import { UniformArena, type StepUniform, type UniformSlot } from './uniforms';

/** One compute dispatch with everything bound. */
export interface Dispatch {
  label: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
}

/** A plan entry: a fixed dispatch, or a callback for work whose shape changes every step. */
export type PlanEntry = Dispatch | ((pass: GPUComputePassEncoder) => void);

/** A binding: a whole buffer, or a uniform slot. */
export type Binding = GPUBuffer | UniformSlot;

/** A named run of plan entries [start, end), e.g. one layer's attention and cache append. */
export interface PlanSection {
  name: string;
  start: number;
  end: number;
}

/**
 * How a step is encoded when it is profiled (benchmarks only; a plain step is one compute pass):
 * - 'timestamps': every entry inside a section gets its own pass and the runs between sections one pass
 *   each, all with timestamp writes of `timer`; with `each`, every entry gets its own pass (the per-kernel
 *   profile of `npm run bench`);
 * - 'repeat': dispatches inside sections whose label starts with `labelPrefix` are encoded `times` times
 *   (only for read-only kernels such as attention, whose repeats rewrite the same output), so their cost
 *   can be measured from the CPU without timestamp-query.
 */
export type StepProfile = { kind: 'timestamps'; timer: PassTimer; each?: boolean } | { kind: 'repeat'; labelPrefix: string; times: number };

/** Everything a kernel needs to record a dispatch into a plan. */
export class Recorder {
  readonly entries: PlanEntry[] = [];
  readonly sections: PlanSection[] = [];
  readonly uniforms: UniformArena;

  constructor(
    readonly device: GPUDevice,
    readonly pipelines: PipelineCache,
    readonly caps: GpuCaps,
    readonly variant: ShaderVariant,
    readonly step: StepUniform,
    readonly owner: BufferGroup,
  ) {
    this.uniforms = new UniformArena(device, owner);
  }

  /** Bind buffers by binding index and append a dispatch. */
  dispatch(label: string, pipeline: GPUComputePipeline, bindings: Record<number, Binding>, workgroups: [number, number, number]): void {
    const entries: GPUBindGroupEntry[] = Object.entries(bindings).map(([binding, b]) => ({
      binding: Number(binding),
      resource: 'buffer' in b ? { buffer: b.buffer, offset: b.offset, size: b.size } : { buffer: b },
    }));
    const bindGroup = this.device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries });
    const max = this.caps.maxComputeWorkgroupsPerDimension;
    if (workgroups.some((n) => n > max)) throw new Error(`${label}: dispatch ${workgroups.join('x')} exceeds ${max} per dimension`);
    if (workgroups.some((n) => n === 0)) return;
    this.entries.push({ label, pipeline, bindGroup, workgroups });
  }

  /** Append work that is encoded fresh each step. */
  dynamic(encode: (pass: GPUComputePassEncoder) => void): void {
    this.entries.push(encode);
  }

  /** Record what `record` appends as one named section, which profiled steps time separately. */
  section(name: string, record: () => void): void {
    const start = this.entries.length;
    record();
    this.sections.push({ name, start, end: this.entries.length });
  }

  /** Finish recording. */
  finish(tokens: number): Plan {
    return new Plan(tokens, this.entries, this.owner, this.sections);
  }
}

/** A replayable list of dispatches for steps of `tokens` tokens. */
export class Plan {
  constructor(
    readonly tokens: number,
    private readonly entries: PlanEntry[],
    private readonly owner: BufferGroup,
    private readonly sections: PlanSection[] = [],
  ) {}

  /** Number of recorded entries: the compute dispatches one replay issues. */
  get length(): number {
    return this.entries.length;
  }

  /** Encode every entry into one compute pass. */
  encode(pass: GPUComputePassEncoder): void {
    for (const e of this.entries) encodeEntry(pass, e);
  }

  /** Encode the step into `encoder`: one compute pass, or the passes of a profile (see StepProfile). */
  encodeStep(encoder: GPUCommandEncoder, profile: StepProfile | null = null): void {
    if (profile?.kind === 'timestamps') return this.encodeTimed(encoder, profile.timer, profile.each ?? false);
    const pass = encoder.beginComputePass({ label: 'forward' });
    if (!profile) this.encode(pass);
    else {
      this.entries.forEach((e, i) => {
        const repeats = typeof e !== 'function' && this.sectionOf(i) && e.label.startsWith(profile.labelPrefix) ? profile.times : 1;
        for (let r = 0; r < repeats; r++) encodeEntry(pass, e);
      });
    }
    pass.end();
  }

  private sectionOf(index: number): PlanSection | undefined {
    return this.sections.find((s) => index >= s.start && index < s.end);
  }

  /** One pass per entry inside sections and per run of entries between them, each with timestamp writes. */
  private encodeTimed(encoder: GPUCommandEncoder, timer: PassTimer, each: boolean): void {
    const passes: Array<{ label: string; section: string | null; entries: PlanEntry[] }> = [];
    this.entries.forEach((e, i) => {
      const section = this.sectionOf(i);
      const last = passes[passes.length - 1];
      if (each) passes.push({ label: typeof e === 'function' ? 'dynamic' : e.label, section: section?.name ?? null, entries: [e] });
      else if (!section && last && last.section === null) last.entries.push(e);
      else passes.push({ label: section ? (typeof e === 'function' ? 'dynamic' : e.label) : 'between', section: section?.name ?? null, entries: [e] });
    });
    timer.beginStep(passes.length);
    for (const p of passes) {
      const pass = encoder.beginComputePass(timer.passDescriptor(p.label, p.section));
      for (const e of p.entries) encodeEntry(pass, e);
      pass.end();
    }
    timer.resolve(encoder);
  }

  /** Free the plan's uniform pages. Safe to call twice. */
  destroy(): void {
    this.owner.destroy();
  }
}

function encodeEntry(pass: GPUComputePassEncoder, e: PlanEntry): void {
  if (typeof e === 'function') return e(pass);
  pass.setPipeline(e.pipeline);
  pass.setBindGroup(0, e.bindGroup);
  pass.dispatchWorkgroups(e.workgroups[0], e.workgroups[1], e.workgroups[2]);
}

/** Split a flat 1-D dispatch of `groups` workgroups over x and y; returns the x extent as row stride. */
export function flatDispatch(groups: number, maxPerDim: number): { workgroups: [number, number, number]; groupsPerRow: number } {
  if (groups <= maxPerDim) return { workgroups: [Math.max(groups, 0), 1, 1], groupsPerRow: Math.max(groups, 1) };
  const rows = Math.ceil(groups / maxPerDim);
  const perRow = Math.ceil(groups / rows);
  return { workgroups: [perRow, rows, 1], groupsPerRow: perRow };
}
