/* host.cu — the device decoders, run on the CPU.
 *
 * deq<T>::dequant (dequant.cuh) is __host__ __device__: this file runs it over whole rows on
 * the host, so tests/engine/test-backend-cuda.c checks every bit layout the kernels read
 * against the quant module, bit for bit, on machines without a GPU (like CI).
 */
#include "dequant.cuh"

namespace {
struct host_dequantize {
  template <int T> static int run(const uint8_t *src, float *dst, int64_t n)
  {
    if (n < 0 || n % deq<T>::QK != 0)
      return -1;
    for (int64_t k = 0; k < n; k++)
      dst[k] = dequant_row_elem<T>(src, (uint)k);
    return 0;
  }
};
} // namespace

extern "C" int
wh_cu_type_supported(int type)
{
  switch (type) {
  case WH_CU_F32:
  case WH_CU_F16:
  case WH_CU_Q4_0:
  case WH_CU_Q4_1:
  case WH_CU_Q5_0:
  case WH_CU_Q5_1:
  case WH_CU_Q8_0:
  case WH_CU_Q2_K:
  case WH_CU_Q3_K:
  case WH_CU_Q4_K:
  case WH_CU_Q5_K:
  case WH_CU_Q6_K:
  case WH_CU_IQ4_NL:
  case WH_CU_IQ4_XS:
    return 1;
  default:
    return 0;
  }
}

extern "C" int
wh_cu_kv_type_supported(int type)
{
  return type == WH_CU_F32 || type == WH_CU_F16 || type == WH_CU_Q8_0 || type == WH_CU_Q4_0;
}

extern "C" int
wh_cu_host_dequantize_row(int type, const void *src, float *dst, int64_t n)
{
  const int r = dispatch_type<host_dequantize>(type, (const uint8_t *)src, dst, n);
  return r == 0 ? 0 : -1;
}
