#version 450
/* attn.comp — attention of one query head of one token over the KV cache, in one pass
 * with a running (online) softmax.
 *
 * For token t (position p = pos0 + t, pos0 from the step block) and query head h of KV
 * group g = h / (H / Hkv) (grouped-query attention):
 *   visible keys j0 .. p: causal, and with n_swa > 0 (a sliding-window layer) only the
 *   last n_swa positions (j0 = p + 1 - n_swa when p + 1 > n_swa);
 *   z_j = scale * q . k_j, soft-capped z_j = cap * tanh(z_j / cap) when cap > 0;
 *   out = sum_j softmax(z)_j v_j.
 * Shapes: q at qkv + t*ldq + h*dk floats; cache row j of K at k + j*row_k bytes, this
 * group's head at element g*dk (F16, or F32 with -DKV_F32); V likewise with row_v and dv;
 * out at out + t*ldo + h*dv floats. dk, dv <= 256.
 * Workgroup layout: one workgroup of WG threads per (head h = gl_WorkGroupID.x, token
 * t = gl_WorkGroupID.y). Keys go in chunks of WG: thread i scores key c0 + i; the chunk's
 * max and sum rescale the running max m, sum l and accumulators; thread i owns output
 * elements i, i + WG, ... (<= DV_MAX / WG of them).
 */
#include "common.glsl"

#define WG 64
#define DV_MAX 256
layout(local_size_x = WG) in;
#include "reduce.glsl"

layout(push_constant) uniform Params {
  uint64_t qkv;
  uint64_t out_;
  uint64_t k;
  uint64_t v;
  uint64_t step;
  uint ldq, ldo;
  uint H, Hkv, dk, dv;
  uint row_k, row_v; /* bytes per cache row */
  uint n_swa;
  float scale;
  float softcap;
} pc;

layout(buffer_reference, std430, buffer_reference_align = 4) readonly buffer Uints {
  uint v[];
};

shared float qs[DV_MAX];
shared float ps[WG];

float kv_elem(uint64_t row, uint i)
{
#if defined(KV_F32)
  return Floats(row).v[i];
#else
  return rdf16(row, 2 * i);
#endif
}

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
  const uint g = h / (pc.H / pc.Hkv);
  const uint p = Uints(pc.step).v[0] + t;
  const uint j0 = pc.n_swa > 0 && p + 1 > pc.n_swa ? p + 1 - pc.n_swa : 0;
  const uint nj = p + 1 - j0;

  for (uint i = tid; i < pc.dk; i += WG)
    qs[i] = Floats(pc.qkv).v[t * pc.ldq + h * pc.dk + i];
  barrier();

  float m = -1.0 / 0.0, l = 0.0;
  float acc[DV_MAX / WG];
  for (uint e = 0; e < DV_MAX / WG; e++)
    acc[e] = 0.0;

  for (uint c0 = 0; c0 < nj; c0 += WG) {
    const uint n = min(WG, nj - c0);
    float z = -1.0 / 0.0;
    if (tid < n) {
      const uint64_t krow = pc.k + uint64_t(j0 + c0 + tid) * pc.row_k;
      float s = 0.0;
      for (uint i = 0; i < pc.dk; i++)
        s += qs[i] * kv_elem(krow, g * pc.dk + i);
      z = s * pc.scale;
      if (pc.softcap > 0.0)
        z = pc.softcap * tanh(z / pc.softcap);
    }
    const float m_new = max(m, wg_max(z));
    const float e_z = tid < n ? exp(z - m_new) : 0.0;
    ps[tid] = e_z;
    const float alpha = exp(m - m_new); /* 0 on the first chunk (m = -inf) */
    l = l * alpha + wg_sum(e_z);        /* wg_sum's barriers also publish ps */
    for (uint e = 0; e < DV_MAX / WG; e++) {
      const uint d = tid + e * WG;
      if (d >= pc.dv)
        break;
      float a = acc[e] * alpha;
      for (uint jj = 0; jj < n; jj++)
        a += ps[jj] * kv_elem(pc.v + uint64_t(j0 + c0 + jj) * pc.row_v, g * pc.dv + d);
      acc[e] = a;
    }
    m = m_new;
    barrier(); /* ps is rewritten by the next chunk */
  }

  for (uint e = 0; e < DV_MAX / WG; e++) {
    const uint d = tid + e * WG;
    if (d < pc.dv)
      Floats(pc.out_).v[t * pc.ldo + h * pc.dv + d] = acc[e] / l;
  }
}
