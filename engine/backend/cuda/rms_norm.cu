/* rms_norm.cu — y = w * x / sqrt(mean(x^2) + eps) over rows of n floats.
 *
 * Rows are (token t, head h): x row at x + t*ldx_t + h*ldx_h floats, y row at
 * y + t*ldy_t + h*ldy_h (y may equal x: in place). Used for the attention/FFN/output norms
 * (one head of n = n_embd), the gemma post-norms, and the per-head Q/K norms (qwen3, gemma3:
 * n = head dim, heads side by side).
 * Block layout: one block of WG threads per row; blockIdx.x = head,
 * blockIdx.y = token. Sum of squares: strided partial sums then a tree (F32).
 */
#include "reduce.cuh"

#define WG 64

__global__ void
__launch_bounds__(WG) rms_norm(const wh_cu_rms_norm_params pc)
{
  const uint tid = threadIdx.x;
  const uint h = blockIdx.x, t = blockIdx.y;
  const float *x = pc.x, *w = pc.w;
  float *y = pc.y;
  const uint64_t xo = uint64_t(t) * pc.ldx_t + h * pc.ldx_h,
                 yo = uint64_t(t) * pc.ldy_t + h * pc.ldy_h;

  float ss = 0.0f;
  for (uint i = tid; i < pc.n; i += WG)
    ss += x[xo + i] * x[xo + i];
  const float scale = rsqrtf(wg_sum<WG>(ss) / float(pc.n) + pc.eps);
  for (uint i = tid; i < pc.n; i += WG)
    y[yo + i] = x[xo + i] * scale * w[i];
}

extern "C" int
wh_cu_rms_norm(wh_cu_stream *s, const wh_cu_rms_norm_params *p, uint32_t n_heads, uint32_t n_tokens)
{
  if (n_heads == 0 || n_tokens == 0)
    return 0;
  rms_norm<<<dim3(n_heads, n_tokens), WG, 0, (cudaStream_t)s>>>(*p);
  return launch_status();
}
