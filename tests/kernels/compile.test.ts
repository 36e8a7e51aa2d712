import { describe, expect, it } from 'vitest';
import { SHADERS, type ShaderName } from '../../src/gpu/shaders';
import { useKernelHarness } from '../helpers/gpu';

const ENTRIES: Record<ShaderName, string[]> = {
  argmax: ['main', 'main_serial'],
  attention_combine: ['main'],
  attention_full: ['main', 'main_serial', 'main_split', 'saliency_stats', 'saliency_accumulate'],
  attention_merged: ['main', 'main_serial', 'main_split'],
  attention_quant: ['main', 'main_serial', 'main_split', 'saliency_stats', 'saliency_accumulate'],
  attention_zip: ['main', 'main_serial', 'saliency_stats', 'saliency_accumulate'],
  decode_fused: ['main'],
  elementwise: ['add_inplace', 'swiglu'],
  embed: ['main'],
  kv_compact: ['main'],
  kv_full_append: ['main'],
  kv_merge: ['ring_write', 'merge_flush', 'retain_select'],
  kv_quant_append: ['scales_token', 'scales_channel', 'pack_codes', 'ring_append'],
  kv_zip_append: ['probe_scores', 'select_salient', 'key_scales', 'value_channel_scales', 'value_token_scales', 'pack_codes', 'ring_append'],
  gemv: ['gemv_rows', 'gemv_coop'],
  hadamard: ['forward', 'inverse'],
  matmul: ['tiled'],
  min_term: ['main'],
  qkv_split: ['main'],
  rmsnorm: ['main'],
  rope: ['main'],
  round_input: ['main'],
};

describe('every WGSL kernel compiles in every variant', () => {
  const h = useKernelHarness();

  for (const f16 of [false, true]) {
    for (const subgroups of [false, true]) {
      it(`f16=${f16} subgroups=${subgroups}`, async () => {
        if ((f16 && !h.gpu.caps.f16) || (subgroups && !h.gpu.caps.subgroups)) return;
        const variant = { weight: f16 ? 'f16' : 'f32', kv: f16 ? 'f16' : 'f32', subgroups } as const;
        for (const name of Object.keys(SHADERS) as ShaderName[]) {
          for (const entry of ENTRIES[name]) h.pipelines.get({ shader: name, entry, variant });
        }
        h.pipelines.get({ shader: 'rmsnorm', variant: { ...variant, flags: { IN_PLACE: true } } });
        h.pipelines.get({ shader: 'round_input', variant: { ...variant, flags: { Q8_1: true } }, overrides: { MODE: 0 } });
        await expect(h.pipelines.checkCompilation()).resolves.toBeUndefined();
      });
    }
  }
});
