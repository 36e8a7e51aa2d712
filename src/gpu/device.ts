/**
 * Device acquisition: adapter limits and features are read once here and nowhere else.
 */
import { DeviceLostError, WebGpuUnavailableError } from '../errors';
import { setAllocationLimits } from './buffers';
import { trackedBytes } from './buffers';
import type { AdapterSummary } from '../worker/api';

/** Spec-default limits, used when an adapter reports nothing larger. */
const SPEC_DEFAULT_MAX_BUFFER = 256 * 1024 * 1024;
const SPEC_DEFAULT_MAX_STORAGE_BINDING = 128 * 1024 * 1024;

/** What the engine may rely on, decided once at device creation. */
export interface GpuCaps {
  f16: boolean;
  subgroups: boolean;
  timestampQuery: boolean;
  /** A CPU implementation (SwiftShader, lavapipe/llvmpipe, a fallback adapter): kernels avoid barriers there. */
  softwareAdapter: boolean;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupsPerDimension: number;
  /** Storage buffers one shader stage may bind (the fused decode kernel binds two per layer it runs); 8 when absent. */
  maxStorageBuffersPerShaderStage?: number;
  /**
   * Estimated memory the GPU may give this tab, when anything hints at it (a lower limit set at acquisition, or
   * the browser's coarse navigator.deviceMemory); the memory plan keeps weights + activations + KV under it.
   */
  memoryBytes?: number;
}

/** Limits lower than the adapter's, enforced by the engine (a smaller GPU simulated in tests, or a user's cap). */
export interface DeviceLimitOverrides {
  maxBufferSize?: number;
  maxStorageBufferBindingSize?: number;
  /** GPU memory to plan for (replaces the device memory estimate). */
  memoryBytes?: number;
}

/** Options for {@link acquireDevice}. */
export interface DeviceOptions {
  /** Allow shader-f16 when the adapter has it (default true). */
  allowF16?: boolean;
  /** Allow subgroup operations when the adapter has them (default true). */
  allowSubgroups?: boolean;
  /**
   * Kernel schedules: 'auto' (default) picks the barrier-free ones on CPU adapters and the cooperative ones
   * elsewhere; 'software' / 'hardware' force one (tests run both on any adapter).
   */
  schedule?: 'auto' | 'software' | 'hardware';
  /**
   * Lower limits than the adapter's. WebGPU never gives a device less than the spec defaults, so these are
   * enforced by the engine: the plan and every BufferGroup allocation check against them.
   */
  limits?: DeviceLimitOverrides;
  /** Called once if the device is lost without us destroying it. */
  onLost?: (error: DeviceLostError) => void;
}

/** The engine's device: owned by the engine, destroyed with it. */
export class GpuContext {
  private destroyed = false;

  constructor(
    readonly device: GPUDevice,
    readonly caps: GpuCaps,
    readonly adapterDescription: string,
  ) {}

  /** Adapter facts for the UI and benchmark records. */
  summary(): AdapterSummary {
    return {
      description: this.adapterDescription,
      f16: this.caps.f16,
      subgroups: this.caps.subgroups,
      timestampQuery: this.caps.timestampQuery,
      maxBufferSize: this.caps.maxBufferSize,
      maxStorageBufferBindingSize: this.caps.maxStorageBufferBindingSize,
    };
  }

  /** Bytes its owners' BufferGroups hold on this device now. */
  get trackedBytes(): number {
    return trackedBytes(this.device);
  }

  /** True once destroy() ran; a loss after that is expected, not an error. */
  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** Release the device. Safe to call twice. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.device.destroy();
  }
}

/** Resolve the WebGPU entry point of this environment, or explain what is missing. */
export function getGpu(gpu?: GPU): GPU {
  const found = gpu ?? (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!found) {
    throw new WebGpuUnavailableError(
      'WebGPU is not available in this browser. Use a recent Chrome or Edge (113+), or Safari/Firefox with WebGPU enabled; ' +
        'on Linux, start Chrome with --enable-unsafe-webgpu.',
    );
  }
  return found;
}

function describe(adapter: GPUAdapter): string {
  const info = adapter.info;
  if (!info) return 'unknown adapter';
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length > 0);
  return parts.length ? parts.join(' / ') : 'unknown adapter';
}

/** True for CPU implementations of WebGPU, which run a workgroup's invocations as a few SIMD threads. */
export function isSoftwareAdapter(adapter: GPUAdapter): boolean {
  const info = adapter.info as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined;
  if (!info) return false;
  if (info.isFallbackAdapter) return true;
  return /swiftshader|llvmpipe|lavapipe|software|cpu/i.test([info.vendor, info.architecture, info.device, info.description].join(' '));
}

function lowered(limit: number, override: number | undefined): number {
  return override !== undefined && override > 0 ? Math.min(limit, override) : limit;
}

/**
 * Half of navigator.deviceMemory (GiB of RAM, rounded down and capped at 8 by browsers) as a coarse bound on the GPU
 * memory a tab can use; WebGPU exposes no VRAM size. Absent in Node and in browsers that hide it.
 */
function browserMemoryEstimate(): number | undefined {
  const gib = (globalThis.navigator as (Navigator & { deviceMemory?: number }) | undefined)?.deviceMemory;
  // Half of it: the OS, the browser and other tabs share that memory (and integrated GPUs share it too).
  return typeof gib === 'number' && gib > 0 ? (gib * 2 ** 30) / 2 : undefined;
}

/** Request an adapter and a device with the adapter's real buffer limits and the features we use. */
export async function acquireDevice(gpuEntry?: GPU, options: DeviceOptions = {}): Promise<GpuContext> {
  const gpu = getGpu(gpuEntry);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new WebGpuUnavailableError(
      'WebGPU is present but no GPU adapter was found. Update your graphics driver, or enable hardware acceleration in the browser settings.',
    );
  }
  const has = (f: string) => adapter.features.has(f as GPUFeatureName);
  const f16 = (options.allowF16 ?? true) && has('shader-f16');
  const subgroups = (options.allowSubgroups ?? true) && has('subgroups');
  const timestampQuery = has('timestamp-query');
  const requiredFeatures: GPUFeatureName[] = [];
  if (f16) requiredFeatures.push('shader-f16');
  if (subgroups) requiredFeatures.push('subgroups' as GPUFeatureName);
  if (timestampQuery) requiredFeatures.push('timestamp-query');

  const lim = adapter.limits;
  const maxBufferSize = Math.max(SPEC_DEFAULT_MAX_BUFFER, lim.maxBufferSize);
  const maxStorageBufferBindingSize = Math.min(maxBufferSize, Math.max(SPEC_DEFAULT_MAX_STORAGE_BINDING, lim.maxStorageBufferBindingSize));
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxBufferSize,
      maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: lim.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: lim.maxComputeInvocationsPerWorkgroup,
      maxStorageBuffersPerShaderStage: lim.maxStorageBuffersPerShaderStage,
    },
  });
  const caps: GpuCaps = {
    f16,
    subgroups,
    timestampQuery,
    softwareAdapter: options.schedule === 'software' || (options.schedule !== 'hardware' && isSoftwareAdapter(adapter)),
    maxBufferSize: lowered(maxBufferSize, options.limits?.maxBufferSize),
    maxStorageBufferBindingSize: lowered(maxStorageBufferBindingSize, options.limits?.maxStorageBufferBindingSize),
    maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: device.limits.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
    maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage,
  };
  caps.maxStorageBufferBindingSize = Math.min(caps.maxStorageBufferBindingSize, caps.maxBufferSize);
  const memoryBytes = options.limits?.memoryBytes ?? browserMemoryEstimate();
  if (memoryBytes !== undefined) caps.memoryBytes = memoryBytes;
  setAllocationLimits(device, { maxBufferSize: caps.maxBufferSize, maxStorageBufferBindingSize: caps.maxStorageBufferBindingSize });
  const context = new GpuContext(device, caps, describe(adapter));
  void device.lost.then((info) => {
    if (context.isDestroyed) return;
    options.onLost?.(
      new DeviceLostError(
        `The GPU device was lost (${info.reason}: ${info.message}). Your chat is kept; reload the model to continue.`,
      ),
    );
  });
  return context;
}
