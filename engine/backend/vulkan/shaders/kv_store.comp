#version 450
/* kv_store.comp — appends the batch's keys or values to the KV cache:
 * cache row (pos0 + t) = src[t][0..n) converted to the cache type (F16 by default,
 * F32 with -DKV_F32). pos0 is read from the step block (the first uint at @step), so a
 * recorded command buffer serves every position.
 * Shapes: src rows at src + t*ld floats; cache rows of row_bytes bytes at dst.
 * Workgroup layout: gl_WorkGroupID.x = block of WG elements, gl_WorkGroupID.y = token.
 */
#include "common.glsl"

#define WG 256
layout(local_size_x = WG) in;

layout(push_constant) uniform Params {
  uint64_t src;
  uint64_t dst;
  uint64_t step;
  uint n;
  uint ld;
  uint row_bytes;
} pc;

layout(buffer_reference, std430, buffer_reference_align = 4) readonly buffer Uints {
  uint v[];
};

void main()
{
  const uint i = gl_WorkGroupID.x * WG + gl_LocalInvocationID.x;
  const uint t = gl_WorkGroupID.y;
  if (i >= pc.n)
    return;
  const uint pos0 = Uints(pc.step).v[0];
  const float f = Floats(pc.src).v[t * pc.ld + i];
  const uint64_t row = pc.dst + uint64_t(pos0 + t) * pc.row_bytes;
#if defined(KV_F32)
  Floats(row).v[i] = f;
#else
  Halfs(row).v[i] = uint16_t(packHalf2x16(vec2(f, 0.0)) & 0xffff);
#endif
}
