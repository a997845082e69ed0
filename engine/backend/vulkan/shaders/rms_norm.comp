#version 450
/* rms_norm.comp — y = w * x / sqrt(mean(x^2) + eps) over rows of n floats.
 *
 * Rows are (token t, head h): x row at x + t*ldx_t + h*ldx_h floats, y row at
 * y + t*ldy_t + h*ldy_h (y may equal x: in place). Used for the attention/FFN/output norms
 * (one head of n = n_embd), the gemma post-norms, and the per-head Q/K norms (qwen3, gemma3:
 * n = head dim, heads side by side).
 * Workgroup layout: one workgroup of WG threads per row; gl_WorkGroupID.x = head,
 * gl_WorkGroupID.y = token. Sum of squares: strided partial sums then a tree (F32).
 */
#include "common.glsl"

#define WG 64
layout(local_size_x = WG) in;
#include "reduce.glsl"

layout(push_constant) uniform Params {
  uint64_t x;
  uint64_t y;
  uint64_t w; /* n F32 weights */
  uint n;
  uint ldx_t, ldx_h;
  uint ldy_t, ldy_h;
  float eps;
} pc;

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
  Floats x = Floats(pc.x), y = Floats(pc.y), w = Floats(pc.w);
  const uint xo = t * pc.ldx_t + h * pc.ldx_h, yo = t * pc.ldy_t + h * pc.ldy_h;

  float ss = 0.0;
  for (uint i = tid; i < pc.n; i += WG)
    ss += x.v[xo + i] * x.v[xo + i];
  const float scale = inversesqrt(wg_sum(ss) / float(pc.n) + pc.eps);
  for (uint i = tid; i < pc.n; i += WG)
    y.v[yo + i] = x.v[xo + i] * scale * w.v[i];
}
