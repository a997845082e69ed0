/* add.cu — x[i] += y[i] for i < n (the residual additions; token rows are contiguous,
 * so [n_tokens][n_embd] is one run of n = n_tokens * n_embd floats).
 * Block layout: WG threads, one element each; blockIdx.x + blockIdx.y * 65535
 * = block of WG elements (y splits very long runs).
 */
#include "common.cuh"

#define WG 256

__global__ void
__launch_bounds__(WG) add(const wh_cu_add_params pc)
{
  const uint i = (blockIdx.x + blockIdx.y * 65535) * WG + threadIdx.x;
  if (i < pc.n)
    pc.x[i] += pc.y[i];
}

extern "C" int
wh_cu_add(wh_cu_stream *s, const wh_cu_add_params *p)
{
  if (p->n == 0)
    return 0;
  add<<<grid_1d(p->n, WG), WG, 0, (cudaStream_t)s>>>(*p);
  return launch_status();
}
