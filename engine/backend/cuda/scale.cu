/* scale.cu — x[i] = s * x[i], or with cap > 0 the soft-cap x[i] = cap * tanh(x[i] / cap)
 * (gemma's final logit soft-capping), for i < n.
 * Block layout: as add.cu (WG threads, one element each, y splits long runs).
 */
#include "common.cuh"

#define WG 256

__global__ void
__launch_bounds__(WG) scale(const wh_cu_scale_params pc)
{
  const uint i = (blockIdx.x + blockIdx.y * 65535) * WG + threadIdx.x;
  if (i >= pc.n)
    return;
  float *x = pc.x;
  x[i] = pc.cap > 0.0f ? pc.cap * tanhf(x[i] / pc.cap) : pc.s * x[i];
}

extern "C" int
wh_cu_scale(wh_cu_stream *s, const wh_cu_scale_params *p)
{
  if (p->n == 0)
    return 0;
  scale<<<grid_1d(p->n, WG), WG, 0, (cudaStream_t)s>>>(*p);
  return launch_status();
}
