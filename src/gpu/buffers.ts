/**
 * GPU buffer ownership and byte tracking. Each owner (weights, KV cache, activations) holds one
 * BufferGroup; its `bytes` is the sum of real allocated sizes, which is what the cache meter shows.
 */
import { GpuOutOfMemoryError } from '../errors';

/** WebGPU usage bits (spec constants; spelled out so this module loads before any GPU globals exist). */
export const Usage = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200 } as const;

/** Storage buffers that are read and written by kernels and copied around. */
export const STORAGE_USAGE = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST;

/** Live bytes of every BufferGroup, by device (a leak shows as bytes left after their owners were freed). */
const liveByDevice = new WeakMap<GPUDevice, { bytes: number }>();
let liveTotal = 0;

function track(device: GPUDevice, delta: number): void {
  let entry = liveByDevice.get(device);
  if (!entry) liveByDevice.set(device, (entry = { bytes: 0 }));
  entry.bytes += delta;
  liveTotal += delta;
}

/** Bytes held by live BufferGroup buffers on `device`, or on every device of this realm when omitted. */
export function trackedBytes(device?: GPUDevice): number {
  return device ? (liveByDevice.get(device)?.bytes ?? 0) : liveTotal;
}

/** The allocation limits BufferGroup enforces on a device: its own, or lower ones set at acquisition (tests, plans). */
export interface AllocationLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

const deviceLimits = new WeakMap<GPUDevice, AllocationLimits>();

/** Enforce `limits` (at most the device's own) on every BufferGroup allocation on `device`. */
export function setAllocationLimits(device: GPUDevice, limits: AllocationLimits): void {
  deviceLimits.set(device, limits);
}

/** The limits allocations on `device` are checked against. */
export function allocationLimits(device: GPUDevice): AllocationLimits {
  return deviceLimits.get(device) ?? { maxBufferSize: device.limits?.maxBufferSize ?? Infinity, maxStorageBufferBindingSize: device.limits?.maxStorageBufferBindingSize ?? Infinity };
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** A set of buffers with one owner. */
export class BufferGroup {
  private readonly buffers = new Map<GPUBuffer, string>();
  private allocated = 0;

  constructor(
    private readonly device: GPUDevice,
    readonly owner: string,
  ) {}

  /** Bytes currently allocated by this owner. */
  get bytes(): number {
    return this.allocated;
  }

  /** Allocate a storage buffer of `size` bytes (rounded up to 4). */
  create(label: string, size: number, usage: number = STORAGE_USAGE): GPUBuffer {
    const bytes = Math.max(4, Math.ceil(size / 4) * 4);
    // A buffer over a limit would be an invalid (error) buffer that kernels read as garbage: refuse it here.
    const limits = allocationLimits(this.device);
    const limit = usage & Usage.STORAGE ? Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize) : limits.maxBufferSize;
    if (bytes > limit) {
      throw new GpuOutOfMemoryError(
        `${this.owner} ${label} needs one ${mib(bytes)} buffer, over this GPU's ${mib(limit)} ${usage & Usage.STORAGE ? 'storage binding' : 'buffer'} limit. ` +
          'Try a shorter context, a stronger KV compression mode, or a smaller model.',
      );
    }
    let buffer: GPUBuffer;
    try {
      buffer = this.device.createBuffer({ label: `${this.owner}:${label}`, size: bytes, usage });
    } catch (err) {
      throw new GpuOutOfMemoryError(
        `Could not allocate ${mib(bytes)} for ${this.owner} ${label}: ${(err as Error).message}. ` +
          'Try a smaller model, a stronger KV compression mode, or a shorter context.',
      );
    }
    this.buffers.set(buffer, label);
    this.allocated += buffer.size;
    track(this.device, buffer.size);
    return buffer;
  }

  /** Allocate and fill a buffer from CPU data. */
  upload(label: string, data: ArrayBufferView, usage: number = STORAGE_USAGE): GPUBuffer {
    const buffer = this.create(label, data.byteLength, usage);
    writeAligned(this.device, buffer, 0, data);
    return buffer;
  }

  /** Free one buffer early (e.g. when a cache grows into a new allocation). */
  release(buffer: GPUBuffer): void {
    if (!this.buffers.delete(buffer)) return;
    this.allocated -= buffer.size;
    track(this.device, -buffer.size);
    buffer.destroy();
  }

  /** Real size of every live buffer, by label. */
  sizes(): Array<{ label: string; bytes: number }> {
    return [...this.buffers].map(([b, label]) => ({ label, bytes: b.size }));
  }

  /** Free every buffer. Safe to call twice. */
  destroy(): void {
    for (const b of this.buffers.keys()) b.destroy();
    this.buffers.clear();
    track(this.device, -this.allocated);
    this.allocated = 0;
  }
}

/** queue.writeBuffer needs a multiple-of-4 size; pad the tail when a view is not. */
export function writeAligned(device: GPUDevice, buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
  const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  const whole = bytes.byteLength & ~3;
  if (whole > 0) device.queue.writeBuffer(buffer, offset, bytes, 0, whole);
  if (whole < bytes.byteLength) {
    const tail = new Uint8Array(4);
    tail.set(bytes.subarray(whole));
    device.queue.writeBuffer(buffer, offset + whole, tail);
  }
}
