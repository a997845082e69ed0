#version 450
/* scale.comp — x[i] = s * x[i], or with cap > 0 the soft-cap x[i] = cap * tanh(x[i] / cap)
 * (gemma's final logit soft-capping), for i < n.
 * Workgroup layout: as add.comp (WG threads, one element each, y splits long runs).
 */
#include "common.glsl"

#define WG 256
layout(local_size_x = WG) in;

layout(push_constant) uniform Params {
  uint64_t x;
  uint n;
  float s;
  float cap;
} pc;

void main()
{
  const uint i = (gl_WorkGroupID.x + gl_WorkGroupID.y * 65535) * WG + gl_LocalInvocationID.x;
  if (i >= pc.n)
    return;
  Floats x = Floats(pc.x);
  x.v[i] = pc.cap > 0.0 ? pc.cap * tanh(x.v[i] / pc.cap) : pc.s * x.v[i];
}
