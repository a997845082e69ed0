#version 450
/* add.comp — x[i] += y[i] for i < n (the residual additions; token rows are contiguous,
 * so [n_tokens][n_embd] is one run of n = n_tokens * n_embd floats).
 * Workgroup layout: WG threads, one element each; gl_WorkGroupID.x + gl_WorkGroupID.y * 65535
 * = block of WG elements (y splits very long runs).
 */
#include "common.glsl"

#define WG 256
layout(local_size_x = WG) in;

layout(push_constant) uniform Params {
  uint64_t x;
  uint64_t y;
  uint n;
} pc;

void main()
{
  const uint i = (gl_WorkGroupID.x + gl_WorkGroupID.y * 65535) * WG + gl_LocalInvocationID.x;
  if (i < pc.n)
    Floats(pc.x).v[i] += Floats(pc.y).v[i];
}
