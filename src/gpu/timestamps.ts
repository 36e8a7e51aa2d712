/**
 * GPU pass timing with `timestamp-query`, for benchmarks only. One PassTimer owns a timestamp query set
 * (two queries per compute pass: beginning and end) and the buffers its results are resolved into and
 * read back from. A profiled step encodes each pass with `passDescriptor`, then `resolve`, and after the
 * submission `read` returns every pass's GPU duration. Normal runs never create one and pay nothing.
 */
import { BufferGroup, Usage } from './buffers';

/** GPU duration of one compute pass of a profiled step. */
export interface TimedPass {
  /** The pass: a dispatch label inside a recorded section, or 'between' for the work outside sections. */
  label: string;
  /** The Recorder section the pass belongs to, or null outside sections. */
  section: string | null;
  /** End minus beginning timestamp, in milliseconds. */
  ms: number;
}

const BYTES_PER_QUERY = 8;

/** Owner of a timestamp query set and its resolve and readback buffers. */
export class PassTimer {
  private readonly owner: BufferGroup;
  private querySet: GPUQuerySet | null = null;
  private resolveBuffer: GPUBuffer | null = null /* u64 [2 · capacity] timestamps in ns */;
  private readbackBuffer: GPUBuffer | null = null /* u64 [2 · capacity], MAP_READ copy of resolveBuffer */;
  private capacity = 0;
  private passes: Array<{ label: string; section: string | null }> = [];
  private resolved: Array<{ label: string; section: string | null }> = [];
  private reading = false;

  /** Needs a device created with the 'timestamp-query' feature. */
  constructor(
    private readonly device: GPUDevice,
    initialPasses = 128,
  ) {
    this.owner = new BufferGroup(device, 'pass-timer');
    this.grow(initialPasses);
  }

  private grow(passes: number): void {
    this.querySet?.destroy();
    if (this.resolveBuffer) this.owner.release(this.resolveBuffer);
    if (this.readbackBuffer) this.owner.release(this.readbackBuffer);
    this.capacity = passes;
    this.querySet = this.device.createQuerySet({ label: 'pass-timer', type: 'timestamp', count: 2 * passes });
    this.resolveBuffer = this.owner.create('resolve', 2 * passes * BYTES_PER_QUERY, Usage.QUERY_RESOLVE | Usage.COPY_SRC);
    this.readbackBuffer = this.owner.create('readback', 2 * passes * BYTES_PER_QUERY, Usage.MAP_READ | Usage.COPY_DST);
  }

  /** Start encoding a step of up to `passes` timed passes (grows the query set when needed). */
  beginStep(passes: number): void {
    if (this.reading) throw new Error('PassTimer: the previous step is still being read.');
    if (passes > this.capacity) this.grow(Math.max(passes, this.capacity * 2));
    this.passes = [];
  }

  /** The descriptor of the next compute pass, writing its beginning and end timestamps. */
  passDescriptor(label: string, section: string | null): GPUComputePassDescriptor {
    const i = this.passes.length;
    if (i >= this.capacity) throw new RangeError(`PassTimer: more than the ${this.capacity} passes announced by beginStep.`);
    this.passes.push({ label, section });
    return {
      label,
      timestampWrites: { querySet: this.querySet as GPUQuerySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
    };
  }

  /** Encode the resolve of this step's timestamps and their copy to the readback buffer (after the last pass). */
  resolve(encoder: GPUCommandEncoder): void {
    const count = 2 * this.passes.length;
    if (count === 0) return;
    encoder.resolveQuerySet(this.querySet as GPUQuerySet, 0, count, this.resolveBuffer as GPUBuffer, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer as GPUBuffer, 0, this.readbackBuffer as GPUBuffer, 0, count * BYTES_PER_QUERY);
    this.resolved = this.passes;
  }

  /** GPU durations of the passes of the last resolved step (waits for that step to finish). */
  async read(): Promise<TimedPass[]> {
    const passes = this.resolved;
    if (passes.length === 0) return [];
    const buffer = this.readbackBuffer as GPUBuffer;
    const bytes = 2 * passes.length * BYTES_PER_QUERY;
    this.reading = true;
    try {
      await buffer.mapAsync(1 /* GPUMapMode.READ */, 0, bytes);
      const t = new BigInt64Array(buffer.getMappedRange(0, bytes).slice(0));
      buffer.unmap();
      return passes.map((p, i) => ({ ...p, ms: Number(t[2 * i + 1] - t[2 * i]) / 1e6 }));
    } finally {
      this.reading = false;
    }
  }

  /** Free the query set and buffers. Safe to call twice. */
  destroy(): void {
    this.querySet?.destroy();
    this.querySet = null;
    this.owner.destroy();
    this.resolveBuffer = null;
    this.readbackBuffer = null;
    this.capacity = 0;
  }
}
