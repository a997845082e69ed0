#version 450
/* quantize_act.comp — rounds activations the way the CPU's 8-bit activation kernels see them
 * (engine/quant: wh_quant_quantize_activations()), writing the rounded values back as F32, so
 * the products of mul_mat.comp equal the CPU's quantized dot products up to F32 summation
 * order:
 *   Q8_0 / Q8_1 (blocks of 32, default): d = amax / 127, q = round-half-even(x / d),
 *              value = q * fp16(d)                          (weights Q4_0..Q8_0, Q4_1, Q5_1)
 *   Q8_K (-DQ8_K, blocks of 256): m = the first element of largest |x|, s = -127 / m,
 *              q = min(127, round-half-even(s * x)), value = q * (1 / s)  (k- and i-quants)
 * Shapes: x [n_tokens][K] with ldx floats between rows -> y [n_tokens][K] with ldy (K a
 * multiple of the block). Workgroup layout: one workgroup of QB threads (one per element) per
 * (block gl_WorkGroupID.x, token gl_WorkGroupID.y).
 */
#include "common.glsl"

#if defined(Q8_K)
#define QB 256
#else
#define QB 32
#endif
layout(local_size_x = QB) in;

layout(push_constant) uniform Params {
  uint64_t x;
  uint64_t y;
  uint ldx;
  uint ldy;
} pc;

shared float s_abs[QB];
shared uint s_idx[QB];

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint t = gl_WorkGroupID.y, k = gl_WorkGroupID.x * QB + tid;
  const float v = Floats(pc.x).v[t * pc.ldx + k];

  /* largest |x| of the block, and the first index holding it */
  s_abs[tid] = abs(v);
  s_idx[tid] = tid;
  barrier();
  for (uint s = QB / 2; s > 0; s >>= 1) {
    if (tid < s) {
      const float a = s_abs[tid], b = s_abs[tid + s];
      if (b > a || (b == a && s_idx[tid + s] < s_idx[tid])) {
        s_abs[tid] = b;
        s_idx[tid] = s_idx[tid + s];
      }
    }
    barrier();
  }
  const float amax = s_abs[0];
  float r = 0.0;
#if defined(Q8_K)
  if (amax != 0.0) {
    const float m = Floats(pc.x).v[t * pc.ldx + gl_WorkGroupID.x * QB + s_idx[0]];
    const float iscale = -127.0 / m;
    r = min(127.0, roundEven(iscale * v)) * (1.0 / iscale);
  }
#else
  const float d = amax / 127.0;
  const float id = d != 0.0 ? 1.0 / d : 0.0;
  r = roundEven(v * id) * unpackHalf2x16(packHalf2x16(vec2(d, 0.0))).x;
#endif
  Floats(pc.y).v[t * pc.ldy + k] = r;
}
