#version 450
/* glu.comp — the gated FFN activation in place: ff[t][i] = act(ff[t][i]) * ff[t][F + i]
 * for i < F, where each token row of ff holds gate | up (2F floats).
 * act = SiLU (SwiGLU: llama, qwen, phi3) or the tanh GELU (GeGLU: gemma), chosen by gelu.
 * Workgroup layout: gl_WorkGroupID.x = block of WG elements of the row, gl_WorkGroupID.y = token.
 */
#include "common.glsl"

#define WG 256
layout(local_size_x = WG) in;

layout(push_constant) uniform Params {
  uint64_t ff;
  uint F;
  uint gelu;
} pc;

float gelu_tanh(float u)
{
  if (u >= 10.0)
    return u;
  if (u <= -10.0)
    return 0.0;
  const float c = 0.7978845608028654; /* sqrt(2/pi) */
  return 0.5 * u * (1.0 + tanh(c * (u + 0.044715 * u * u * u)));
}

float silu(float u)
{
  return u / (1.0 + exp(-u));
}

void main()
{
  const uint i = gl_WorkGroupID.x * WG + gl_LocalInvocationID.x;
  if (i >= pc.F)
    return;
  Floats ff = Floats(pc.ff);
  const uint o = gl_WorkGroupID.y * 2 * pc.F;
  const float g = ff.v[o + i];
  ff.v[o + i] = (pc.gelu != 0 ? gelu_tanh(g) : silu(g)) * ff.v[o + pc.F + i];
}
