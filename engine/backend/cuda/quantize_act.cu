/* quantize_act.cu — rounds activations the way the CPU's 8-bit activation kernels see them
 * (engine/quant: wh_quant_quantize_activations()), writing the rounded values back as F32, so
 * the products of mul_mat.cu equal the CPU's quantized dot products up to F32 summation
 * order:
 *   Q8_0 / Q8_1 (blocks of 32, default): d = amax / 127, q = round-half-even(x / d),
 *              value = q * fp16(d)                          (weights Q4_0..Q8_0, Q4_1, Q5_1)
 *   Q8_K (quantize_act<256>, blocks of 256): m = the first element of largest |x|,
 *              s = -127 / m, q = min(127, round-half-even(s * x)), value = q * (1 / s)
 *              (k- and i-quants)
 * Shapes: x [n_tokens][K] with ldx floats between rows -> y [n_tokens][K] with ldy (K a
 * multiple of the block). Block layout: one block of QB threads (one per element) per
 * (block blockIdx.x, token blockIdx.y).
 */
#include "common.cuh"

template <uint QB>
__global__ void
__launch_bounds__(QB) quantize_act(const wh_cu_quantize_act_params pc)
{
  __shared__ float s_abs[QB];
  __shared__ uint s_idx[QB];

  const uint tid = threadIdx.x;
  const uint t = blockIdx.y, k = blockIdx.x * QB + tid;
  const float v = pc.x[uint64_t(t) * pc.ldx + k];

  /* largest |x| of the block, and the first index holding it */
  s_abs[tid] = fabsf(v);
  s_idx[tid] = tid;
  __syncthreads();
  for (uint s = QB / 2; s > 0; s >>= 1) {
    if (tid < s) {
      const float a = s_abs[tid], b = s_abs[tid + s];
      if (b > a || (b == a && s_idx[tid + s] < s_idx[tid])) {
        s_abs[tid] = b;
        s_idx[tid] = s_idx[tid + s];
      }
    }
    __syncthreads();
  }
  const float amax = s_abs[0];
  float r = 0.0f;
  if (QB == 256) {
    if (amax != 0.0f) {
      const float m = pc.x[uint64_t(t) * pc.ldx + blockIdx.x * QB + s_idx[0]];
      const float iscale = -127.0f / m;
      r = fminf(127.0f, rintf(iscale * v)) * (1.0f / iscale);
    }
  } else {
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    r = rintf(v * id) * f16_to_f32(f32_to_f16(d));
  }
  pc.y[uint64_t(t) * pc.ldy + k] = r;
}

extern "C" int
wh_cu_quantize_act(wh_cu_stream *s, int act_type, const wh_cu_quantize_act_params *p, uint32_t K,
                   uint32_t n_tokens)
{
  if (K == 0 || n_tokens == 0)
    return 0;
  const uint qb = act_type == WH_CU_Q8_K ? 256 : 32;
  if (K % qb != 0 || (act_type != WH_CU_Q8_0 && act_type != WH_CU_Q8_1 && act_type != WH_CU_Q8_K))
    return (int)cudaErrorInvalidValue;
  if (qb == 256)
    quantize_act<256><<<dim3(K / 256, n_tokens), 256, 0, (cudaStream_t)s>>>(*p);
  else
    quantize_act<32><<<dim3(K / 32, n_tokens), 32, 0, (cudaStream_t)s>>>(*p);
  return launch_status();
}
