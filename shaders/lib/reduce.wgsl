// Library: workgroup-wide sum and max of one f32 per invocation, through shared memory.
// Include after declaring `const WG: u32` (the workgroup size, a power of two). Every invocation of
// the workgroup must call these in uniform control flow; each returns the same value to all.
var<workgroup> reduce_scratch: array<f32, WG>;

fn workgroup_sum(v: f32, lid: u32) -> f32 {
  reduce_scratch[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { reduce_scratch[lid] += reduce_scratch[lid + s]; }
    workgroupBarrier();
  }
  let r = reduce_scratch[0];
  workgroupBarrier();
  return r;
}

fn workgroup_max(v: f32, lid: u32) -> f32 {
  reduce_scratch[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { reduce_scratch[lid] = max(reduce_scratch[lid], reduce_scratch[lid + s]); }
    workgroupBarrier();
  }
  let r = reduce_scratch[0];
  workgroupBarrier();
  return r;
}
