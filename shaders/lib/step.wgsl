// Library: the per-step uniform every plan reads (src/gpu/uniforms.ts StepUniform writes it once a step):
// pos0 = cache slot of the step's first token (the cache holds slots [0, pos0) before it), kv_len = pos0 + tokens,
// tokens = the step's token count, rope_pos0 = RoPE position of the first token: pos0 until the cache evicts
// tokens in place, then more (kept keys keep the phase of their original positions; src/kv/eviction.ts).
struct Step { pos0: u32, kv_len: u32, tokens: u32, rope_pos0: u32 }
