/* attn.cu — attention of one query head of one token over the KV cache, in one pass
 * with a running (online) softmax.
 *
 * For token t (position p = pos0 + t; pos0 is a launch parameter, the Vulkan twin reads it
 * from its step block) and query head h of KV group g = h / (H / Hkv) (grouped-query
 * attention):
 *   visible keys j0 .. p: causal, and with n_swa > 0 (a sliding-window layer) only the
 *   last n_swa positions (j0 = p + 1 - n_swa when p + 1 > n_swa);
 *   z_j = scale * q . k_j, soft-capped z_j = cap * tanh(z_j / cap) when cap > 0;
 *   out = sum_j softmax(z)_j v_j.
 * Shapes: q at qkv + t*ldq + h*dk floats; cache row j of K at k + j*row_k bytes, this
 * group's head at element g*dk (of the cache type T: F16, F32, and here also Q8_0/Q4_0,
 * read element by element so a block may straddle heads); V likewise with row_v and dv;
 * out at out + t*ldo + h*dv floats. dk, dv <= 256.
 * Block layout: one block of WG threads per (head h = blockIdx.x, token
 * t = blockIdx.y). Keys go in chunks of WG: thread i scores key c0 + i; the chunk's
 * max and sum rescale the running max m, sum l and accumulators; thread i owns output
 * elements i, i + WG, ... (<= DV_MAX / WG of them).
 */
#include "dequant.cuh"
#include "reduce.cuh"

#define WG 64
#define DV_MAX 256

template <int T>
__device__ __forceinline__ float
kv_elem(const uint8_t *row, uint i)
{
  return dequant_row_elem<T>(row, i);
}

template <int T>
__global__ void
__launch_bounds__(WG) attn(const wh_cu_attn_params pc)
{
  __shared__ float qs[DV_MAX];
  __shared__ float ps[WG];

  const uint tid = threadIdx.x;
  const uint h = blockIdx.x, t = blockIdx.y;
  const uint g = h / (pc.H / pc.Hkv);
  const uint p = pc.pos0 + t;
  const uint j0 = pc.n_swa > 0 && p + 1 > pc.n_swa ? p + 1 - pc.n_swa : 0;
  const uint nj = p + 1 - j0;

  for (uint i = tid; i < pc.dk; i += WG)
    qs[i] = pc.qkv[uint64_t(t) * pc.ldq + h * pc.dk + i];
  __syncthreads();

  float m = -INFINITY, l = 0.0f;
  float acc[DV_MAX / WG];
  for (uint e = 0; e < DV_MAX / WG; e++)
    acc[e] = 0.0f;

  for (uint c0 = 0; c0 < nj; c0 += WG) {
    const uint n = min(WG, nj - c0);
    float z = -INFINITY;
    if (tid < n) {
      const uint8_t *krow = pc.k + uint64_t(j0 + c0 + tid) * pc.row_k;
      float s = 0.0f;
      for (uint i = 0; i < pc.dk; i++)
        s += qs[i] * kv_elem<T>(krow, g * pc.dk + i);
      z = s * pc.scale;
      if (pc.softcap > 0.0f)
        z = pc.softcap * tanhf(z / pc.softcap);
    }
    const float m_new = fmaxf(m, wg_max<WG>(z));
    const float e_z = tid < n ? expf(z - m_new) : 0.0f;
    ps[tid] = e_z;
    const float alpha = expf(m - m_new); /* 0 on the first chunk (m = -inf) */
    l = l * alpha + wg_sum<WG>(e_z);     /* wg_sum's barriers also publish ps */
    for (uint e = 0; e < DV_MAX / WG; e++) {
      const uint d = tid + e * WG;
      if (d >= pc.dv)
        break;
      float a = acc[e] * alpha;
      for (uint jj = 0; jj < n; jj++)
        a += ps[jj] * kv_elem<T>(pc.v + uint64_t(j0 + c0 + jj) * pc.row_v, g * pc.dv + d);
      acc[e] = a;
    }
    m = m_new;
    __syncthreads(); /* ps is rewritten by the next chunk */
  }

  for (uint e = 0; e < DV_MAX / WG; e++) {
    const uint d = tid + e * WG;
    if (d < pc.dv)
      pc.out_[uint64_t(t) * pc.ldo + h * pc.dv + d] = acc[e] / l;
  }
}

namespace {
struct launch_attn {
  template <int T> static int run(cudaStream_t s, wh_cu_attn_params p, uint32_t n_tokens)
  {
    attn<T><<<dim3(p.H, n_tokens), WG, 0, s>>>(p);
    return launch_status();
  }
};
} // namespace

extern "C" int
wh_cu_attn(wh_cu_stream *s, int kv_type, const wh_cu_attn_params *p, uint32_t n_tokens)
{
  if (n_tokens == 0 || p->H == 0)
    return 0;
  if (p->dk > DV_MAX || p->dv > DV_MAX || p->Hkv == 0 || p->H % p->Hkv != 0)
    return (int)cudaErrorInvalidValue;
  return dispatch_kv_type<launch_attn>(kv_type, (cudaStream_t)s, *p, n_tokens);
}
