/**
 * A recorded sequence of dispatches for one step shape. Plans are built once per (token count, cache
 * generation) and replayed every step: the only per-step GPU write is the 16-byte Step uniform.
 */
import { BufferGroup } from './buffers';
import type { GpuCaps } from './device';
import type { PipelineCache } from './pipelines';
import type { ShaderVariant } from './shader-assembly';
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

/** Everything a kernel needs to record a dispatch into a plan. */
export class Recorder {
  readonly entries: PlanEntry[] = [];
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

  /** Finish recording. */
  finish(tokens: number): Plan {
    return new Plan(tokens, this.entries, this.owner);
  }
}

/** A replayable list of dispatches for steps of `tokens` tokens. */
export class Plan {
  constructor(
    readonly tokens: number,
    private readonly entries: PlanEntry[],
    private readonly owner: BufferGroup,
  ) {}

  /** Number of recorded entries. */
  get length(): number {
    return this.entries.length;
  }

  /** Encode every entry into one compute pass. */
  encode(pass: GPUComputePassEncoder): void {
    for (const e of this.entries) {
      if (typeof e === 'function') {
        e(pass);
        continue;
      }
      pass.setPipeline(e.pipeline);
      pass.setBindGroup(0, e.bindGroup);
      pass.dispatchWorkgroups(e.workgroups[0], e.workgroups[1], e.workgroups[2]);
    }
  }

  /** Free the plan's uniform pages. Safe to call twice. */
  destroy(): void {
    this.owner.destroy();
  }
}

/** Split a flat 1-D dispatch of `groups` workgroups over x and y; returns the x extent as row stride. */
export function flatDispatch(groups: number, maxPerDim: number): { workgroups: [number, number, number]; groupsPerRow: number } {
  if (groups <= maxPerDim) return { workgroups: [Math.max(groups, 0), 1, 1], groupsPerRow: Math.max(groups, 1) };
  const rows = Math.ceil(groups / maxPerDim);
  const perRow = Math.ceil(groups / rows);
  return { workgroups: [perRow, rows, 1], groupsPerRow: perRow };
}
