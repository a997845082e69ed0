/* rope.cu — rotary position embedding of the heads of one projection, in place.
 *
 * Shapes: token t's heads start at v + t*ld floats; head h at + h*head_dim; the first
 * n_rot elements of a head rotate as n_rot/2 pairs: NORMAL pairs (2i, 2i+1), NEOX pairs
 * (i, i + n_rot/2). cos/sin come from the batch's table filled on the CPU with the same
 * double-precision angles and scaling (linear, YaRN, LongRoPE, magnitude factor) as the
 * CPU path: cos of pair i of token t at tab[t*n_pairs + i], sin at tab[(nb + t)*n_pairs + i].
 * Block layout: one thread per pair; blockIdx.x = head, blockIdx.y = token.
 */
#include "common.cuh"

#define WG 64

__global__ void
__launch_bounds__(WG) rope(const wh_cu_rope_params pc)
{
  const uint h = blockIdx.x, t = blockIdx.y;
  float *v = pc.v;
  const float *tab = pc.tab;
  for (uint i = threadIdx.x; i < pc.n_pairs; i += WG) {
    const uint64_t base = uint64_t(t) * pc.ld + h * pc.head_dim;
    const uint64_t i0 = base + (pc.neox != 0 ? i : 2 * i);
    const uint64_t i1 = base + (pc.neox != 0 ? i + pc.n_pairs : 2 * i + 1);
    const float c = tab[uint64_t(t) * pc.n_pairs + i],
                s = tab[uint64_t(pc.nb + t) * pc.n_pairs + i];
    const float a = v[i0], b = v[i1];
    v[i0] = a * c - b * s;
    v[i1] = a * s + b * c;
  }
}

extern "C" int
wh_cu_rope(wh_cu_stream *s, const wh_cu_rope_params *p, uint32_t n_heads, uint32_t n_tokens)
{
  if (n_heads == 0 || n_tokens == 0 || p->n_pairs == 0)
    return 0;
  rope<<<dim3(n_heads, n_tokens), WG, 0, (cudaStream_t)s>>>(*p);
  return launch_status();
}
