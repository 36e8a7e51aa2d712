/**
 * Compute pipelines, cached under readable keys such as `matmul_tiled:main|wf16_kvf16_sg|HAS_BIAS=1`.
 */
import { assembleShader, variantKey, type ShaderVariant } from './shader-assembly';
import { SHADER_LIBRARIES, SHADERS, type ShaderName } from './shaders';

/** Which kernel, entry point, variant and override constants a pipeline is built from. */
export interface PipelineSpec {
  shader: ShaderName;
  entry?: string;
  variant: ShaderVariant;
  overrides?: Record<string, number | boolean>;
}

/** Builds each pipeline once and reports WGSL compile errors with the kernel's name. */
export class PipelineCache {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pendingChecks: Array<Promise<void>> = [];

  constructor(private readonly device: GPUDevice) {}

  /** Number of distinct pipelines built so far. */
  get size(): number {
    return this.pipelines.size;
  }

  /** The pipeline for a spec, built on first use. */
  get(spec: PipelineSpec): GPUComputePipeline {
    const entry = spec.entry ?? 'main';
    const overrides = Object.entries(spec.overrides ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${Number(v)}`)
      .join(',');
    const key = `${spec.shader}:${entry}|${variantKey(spec.variant)}|${overrides}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const module = this.module(spec.shader, spec.variant);
      const constants: Record<string, number> = {};
      for (const [k, v] of Object.entries(spec.overrides ?? {})) constants[k] = Number(v);
      pipeline = this.device.createComputePipeline({
        label: key,
        layout: 'auto',
        compute: { module, entryPoint: entry, constants },
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  private module(shader: ShaderName, variant: ShaderVariant): GPUShaderModule {
    const key = `${shader}|${variantKey(variant)}`;
    let module = this.modules.get(key);
    if (!module) {
      const code = assembleShader(SHADERS[shader], variant, SHADER_LIBRARIES);
      module = this.device.createShaderModule({ label: key, code });
      this.modules.set(key, module);
      const check = module.getCompilationInfo?.().then((info) => {
        const errors = info.messages.filter((m) => m.type === 'error');
        if (errors.length) {
          const text = errors.map((m) => `${key}:${m.lineNum}:${m.linePos} ${m.message}`).join('\n');
          throw new Error(`WGSL compile error\n${text}`);
        }
      });
      if (check) this.pendingChecks.push(check);
    }
    return module;
  }

  /** Await the compilation reports of every module built so far; throws on the first WGSL error. */
  async checkCompilation(): Promise<void> {
    const checks = this.pendingChecks.splice(0);
    await Promise.all(checks);
  }
}
