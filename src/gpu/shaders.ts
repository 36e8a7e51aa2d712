/**
 * Every WGSL file, imported as text by Vite (`?raw`), under the name pipelines are keyed by.
 */
import argmax from '../../shaders/argmax.wgsl?raw';
import attentionCombine from '../../shaders/attention_combine.wgsl?raw';
import attentionFull from '../../shaders/attention_full.wgsl?raw';
import attentionMerged from '../../shaders/attention_merged.wgsl?raw';
import attentionQuant from '../../shaders/attention_quant.wgsl?raw';
import attentionZip from '../../shaders/attention_zip.wgsl?raw';
import decodeFused from '../../shaders/decode_fused.wgsl?raw';
import elementwise from '../../shaders/elementwise.wgsl?raw';
import embed from '../../shaders/embed.wgsl?raw';
import gemv from '../../shaders/gemv.wgsl?raw';
import hadamard from '../../shaders/hadamard.wgsl?raw';
import kvCompact from '../../shaders/kv_compact.wgsl?raw';
import kvFullAppend from '../../shaders/kv_full_append.wgsl?raw';
import kvMerge from '../../shaders/kv_merge.wgsl?raw';
import kvQuantAppend from '../../shaders/kv_quant_append.wgsl?raw';
import kvZipAppend from '../../shaders/kv_zip_append.wgsl?raw';
import attentionCommon from '../../shaders/lib/attention_common.wgsl?raw';
import attentionRows from '../../shaders/lib/attention_rows.wgsl?raw';
import f16 from '../../shaders/lib/f16.wgsl?raw';
import finite from '../../shaders/lib/finite.wgsl?raw';
import fusedAttention from '../../shaders/lib/fused_attention.wgsl?raw';
import ggmlBlocks from '../../shaders/lib/ggml_blocks.wgsl?raw';
import kvQuant from '../../shaders/lib/kv_quant.wgsl?raw';
import kvQuantRows from '../../shaders/lib/kv_quant_rows.wgsl?raw';
import quantMath from '../../shaders/lib/quant_math.wgsl?raw';
import reduce from '../../shaders/lib/reduce.wgsl?raw';
import saliencyRows from '../../shaders/lib/saliency_rows.wgsl?raw';
import ropeAngle from '../../shaders/lib/rope_angle.wgsl?raw';
import slerp from '../../shaders/lib/slerp.wgsl?raw';
import step from '../../shaders/lib/step.wgsl?raw';
import trig from '../../shaders/lib/trig.wgsl?raw';
import zipLayout from '../../shaders/lib/zip_layout.wgsl?raw';
import matmul from '../../shaders/matmul.wgsl?raw';
import minTerm from '../../shaders/min_term.wgsl?raw';
import qkvSplit from '../../shaders/qkv_split.wgsl?raw';
import rmsnorm from '../../shaders/rmsnorm.wgsl?raw';
import rope from '../../shaders/rope.wgsl?raw';
import roundInput from '../../shaders/round_input.wgsl?raw';

/** Kernel files, one kernel family each. */
export const SHADERS = {
  argmax,
  attention_combine: attentionCombine,
  attention_full: attentionFull,
  attention_merged: attentionMerged,
  attention_quant: attentionQuant,
  attention_zip: attentionZip,
  decode_fused: decodeFused,
  elementwise,
  embed,
  gemv,
  hadamard,
  kv_compact: kvCompact,
  kv_full_append: kvFullAppend,
  kv_merge: kvMerge,
  kv_quant_append: kvQuantAppend,
  kv_zip_append: kvZipAppend,
  matmul,
  min_term: minTerm,
  qkv_split: qkvSplit,
  rmsnorm,
  rope,
  round_input: roundInput,
} as const;

/** Library files for `#include NAME`. */
export const SHADER_LIBRARIES: Record<string, string> = {
  attention_common: attentionCommon,
  attention_rows: attentionRows,
  f16,
  finite,
  fused_attention: fusedAttention,
  ggml_blocks: ggmlBlocks,
  kv_quant: kvQuant,
  kv_quant_rows: kvQuantRows,
  quant_math: quantMath,
  reduce,
  saliency_rows: saliencyRows,
  rope_angle: ropeAngle,
  slerp,
  step,
  trig,
  zip_layout: zipLayout,
};

/** Name of a kernel file. */
export type ShaderName = keyof typeof SHADERS;
