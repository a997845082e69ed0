/* kv_store.cu — appends the batch's keys or values to the KV cache:
 * cache row (pos0 + t) = src[t][0..n) converted to the cache type. pos0 is a launch
 * parameter here (the Vulkan twin reads it from its step block so that a recorded command
 * buffer serves every position; CUDA launches each step afresh).
 * Shapes: src rows at src + t*ld floats; cache rows of row_bytes bytes at dst.
 * Block layout: blockIdx.x = block of WG elements, blockIdx.y = token.
 *
 * Instantiated per cache type: kv_store<T>. F16 (round to nearest even) and F32 are the
 * Vulkan twin's; Q8_0 and Q4_0 exist only here: thread i then quantizes block i of 32 values
 * with the reference quantizers of block-formats.md 5.2, so the cache holds the CPU's bytes:
 *   Q8_0: amax = max |x|; d = amax / 127; id = d != 0 ? 1/d : 0; q = roundf(x * id)
 *   Q4_0: max = the first element of largest magnitude; d = max / -8; id as above;
 *         q = min(15, trunc(x * id + 8.5))  (the product rounded before the add: no FMA)
 * The per-block stores are __host__ __device__ (tests run them on the CPU, host.cu).
 */
#include "dequant.cuh"

#define WG 256

template <int T> struct kvq;

template <> struct kvq<WH_CU_F32> {
  static WH_HD void store(const float *x, uint8_t *blk)
  {
    *(float *)blk = x[0];
  }
};

template <> struct kvq<WH_CU_F16> {
  static WH_HD void store(const float *x, uint8_t *blk)
  {
    *(uint16_t *)blk = (uint16_t)f32_to_f16(x[0]);
  }
};

template <> struct kvq<WH_CU_Q8_0> {
  static WH_HD void store(const float *x, uint8_t *blk)
  {
    float amax = 0.0f;
    for (uint j = 0; j < 32; j++)
      amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *(uint16_t *)blk = (uint16_t)f32_to_f16(d);
    for (uint j = 0; j < 32; j++)
      blk[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
  }
};

/* x * y rounded to F32 on its own, so the compiler cannot fuse it with a following add */
WH_HD float
mul_rn(float x, float y)
{
#ifdef __CUDA_ARCH__
  return __fmul_rn(x, y);
#else
  volatile float p = x * y;
  return p;
#endif
}

template <> struct kvq<WH_CU_Q4_0> {
  static WH_HD void store(const float *x, uint8_t *blk)
  {
    float amax = 0.0f, max = 0.0f;
    for (uint j = 0; j < 32; j++) {
      if (amax < fabsf(x[j])) {
        amax = fabsf(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *(uint16_t *)blk = (uint16_t)f32_to_f16(d);
    for (uint j = 0; j < 16; j++) {
      const uint q0 = min(15u, (uint)(mul_rn(x[j], id) + 8.5f));
      const uint q1 = min(15u, (uint)(mul_rn(x[j + 16], id) + 8.5f));
      blk[2 + j] = (uint8_t)(q0 | (q1 << 4));
    }
  }
};

template <int T>
__global__ void
__launch_bounds__(WG) kv_store(const wh_cu_kv_store_params pc)
{
  typedef deq<T> D;
  const uint i = blockIdx.x * WG + threadIdx.x; /* element (F16/F32) or block of QK */
  const uint t = blockIdx.y;
  if (i >= pc.n / D::QK)
    return;
  const float *src = pc.src + uint64_t(t) * pc.ld + uint64_t(i) * D::QK;
  uint8_t *row = pc.dst + uint64_t(pc.pos0 + t) * pc.row_bytes;
  kvq<T>::store(src, row + uint64_t(i) * D::BLOCK_BYTES);
}

namespace {
struct launch_kv_store {
  template <int T> static int run(cudaStream_t s, wh_cu_kv_store_params p, uint32_t n_tokens)
  {
    if (p.n % deq<T>::QK != 0)
      return (int)cudaErrorInvalidValue;
    kv_store<T><<<dim3(n_blocks(p.n / deq<T>::QK, WG), n_tokens), WG, 0, s>>>(p);
    return launch_status();
  }
};

/* One row on the host (wh_cu_host_kv_store_row). */
struct host_kv_store {
  template <int T> static int run(const float *src, uint8_t *dst, int64_t n)
  {
    if (n < 0 || n % deq<T>::QK != 0)
      return -1;
    for (int64_t b = 0; b < n / deq<T>::QK; b++)
      kvq<T>::store(src + b * deq<T>::QK, dst + b * deq<T>::BLOCK_BYTES);
    return 0;
  }
};
} // namespace

extern "C" int
wh_cu_kv_store(wh_cu_stream *s, int kv_type, const wh_cu_kv_store_params *p, uint32_t n_tokens)
{
  if (n_tokens == 0 || p->n == 0)
    return 0;
  return dispatch_kv_type<launch_kv_store>(kv_type, (cudaStream_t)s, *p, n_tokens);
}

extern "C" int
wh_cu_host_kv_store_row(int kv_type, const float *src, void *dst, int64_t n)
{
  return dispatch_kv_type<host_kv_store>(kv_type, src, (uint8_t *)dst, n) == 0 ? 0 : -1;
}
