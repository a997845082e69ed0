#version 450
/* rope.comp — rotary position embedding of the heads of one projection, in place.
 *
 * Shapes: token t's heads start at v + t*ld floats; head h at + h*head_dim; the first
 * n_rot elements of a head rotate as n_rot/2 pairs: NORMAL pairs (2i, 2i+1), NEOX pairs
 * (i, i + n_rot/2). cos/sin come from the batch's table filled on the CPU with the same
 * double-precision angles and scaling (linear, YaRN, LongRoPE, magnitude factor) as the
 * CPU path: cos of pair i of token t at tab[t*n_pairs + i], sin at tab[(nb + t)*n_pairs + i].
 * Workgroup layout: one thread per pair; gl_WorkGroupID.x = head, gl_WorkGroupID.y = token.
 */
#include "common.glsl"

#define WG 64
layout(local_size_x = WG) in;

layout(push_constant) uniform Params {
  uint64_t v;
  uint64_t tab;
  uint ld;
  uint head_dim;
  uint n_pairs;
  uint nb; /* rows of the cos table (batch capacity) */
  uint neox;
} pc;

void main()
{
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
  Floats v = Floats(pc.v), tab = Floats(pc.tab);
  for (uint i = gl_LocalInvocationID.x; i < pc.n_pairs; i += WG) {
    const uint base = t * pc.ld + h * pc.head_dim;
    const uint i0 = base + (pc.neox != 0 ? i : 2 * i);
    const uint i1 = base + (pc.neox != 0 ? i + pc.n_pairs : 2 * i + 1);
    const float c = tab.v[t * pc.n_pairs + i], s = tab.v[(pc.nb + t) * pc.n_pairs + i];
    const float a = v.v[i0], b = v.v[i1];
    v.v[i0] = a * c - b * s;
    v.v[i1] = a * s + b * c;
  }
}
