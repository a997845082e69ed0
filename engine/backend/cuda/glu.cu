/* glu.cu — the gated FFN activation in place: ff[t][i] = act(ff[t][i]) * ff[t][F + i]
 * for i < F, where each token row of ff holds gate | up (2F floats).
 * act = SiLU (SwiGLU: llama, qwen, phi3) or the tanh GELU (GeGLU: gemma), chosen by gelu.
 * Block layout: blockIdx.x = block of WG elements of the row, blockIdx.y = token.
 */
#include "common.cuh"

#define WG 256

WH_HD float
gelu_tanh(float u)
{
  if (u >= 10.0f)
    return u;
  if (u <= -10.0f)
    return 0.0f;
  const float c = 0.7978845608028654f; /* sqrt(2/pi) */
  return 0.5f * u * (1.0f + tanhf(c * (u + 0.044715f * u * u * u)));
}

WH_HD float
silu(float u)
{
  return u / (1.0f + expf(-u));
}

__global__ void
__launch_bounds__(WG) glu(const wh_cu_glu_params pc)
{
  const uint i = blockIdx.x * WG + threadIdx.x;
  if (i >= pc.F)
    return;
  float *ff = pc.ff;
  const uint64_t o = uint64_t(blockIdx.y) * 2 * pc.F;
  const float g = ff[o + i];
  ff[o + i] = (pc.gelu != 0 ? gelu_tanh(g) : silu(g)) * ff[o + pc.F + i];
}

extern "C" int
wh_cu_glu(wh_cu_stream *s, const wh_cu_glu_params *p, uint32_t n_tokens)
{
  if (p->F == 0 || n_tokens == 0)
    return 0;
  glu<<<dim3(n_blocks(p->F, WG), n_tokens), WG, 0, (cudaStream_t)s>>>(*p);
  return launch_status();
}

/* The activation on the host (tests compare it with the CPU backend's formula). */
extern "C" float
wh_cu_host_glu(int gelu, float gate, float up)
{
  return (gelu ? gelu_tanh(gate) : silu(gate)) * up;
}
