// Library: the per-step uniform every plan reads (src/gpu/uniforms.ts StepUniform writes it once a step):
// pos0 = absolute position of the step's first token, kv_len = pos0 + tokens, tokens = the step's token count.
struct Step { pos0: u32, kv_len: u32, tokens: u32, _pad: u32 }
