/** Hugging Face tensor names for Llama-family decoders. */

/** Names of the per-layer tensors of layer `i`. Bias and q/k-norm names exist only when the config asks for them. */
export function layerTensorNames(i: number) {
  const p = `model.layers.${i}.`;
  return {
    attnNorm: `${p}input_layernorm.weight`,
    wq: `${p}self_attn.q_proj.weight`,
    wk: `${p}self_attn.k_proj.weight`,
    wv: `${p}self_attn.v_proj.weight`,
    wo: `${p}self_attn.o_proj.weight`,
    bq: `${p}self_attn.q_proj.bias`,
    bk: `${p}self_attn.k_proj.bias`,
    bv: `${p}self_attn.v_proj.bias`,
    qNorm: `${p}self_attn.q_norm.weight`,
    kNorm: `${p}self_attn.k_norm.weight`,
    ffnNorm: `${p}post_attention_layernorm.weight`,
    wGate: `${p}mlp.gate_proj.weight`,
    wUp: `${p}mlp.up_proj.weight`,
    wDown: `${p}mlp.down_proj.weight`,
  };
}

export const EMBED_TOKENS = 'model.embed_tokens.weight';
export const FINAL_NORM = 'model.norm.weight';
export const LM_HEAD = 'lm_head.weight';
