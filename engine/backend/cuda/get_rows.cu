/* get_rows.cu — x[t] = dequant(table row ids[t]) * scale (ids NULL: rows first_row + t).
 * CUDA only (no Vulkan twin): the context shift reads cached keys back as F32 with it to
 * re-rotate them, and it can look up embedding rows (the embedding stays on the CPU today).
 *
 * Instantiated once per table type: get_rows<T> (see dequant.cuh).
 *
 * Shapes: table [n_rows][d] stored as rows of d/QK blocks (row_bytes each);
 *         ids [n_tokens] int32 or NULL; x [n_tokens][d] F32 with ldx floats between rows.
 * Block layout: one block of WG threads per (token t = blockIdx.y, chunk of WG elements
 * blockIdx.x); each thread dequantizes one element.
 */
#include "dequant.cuh"

#define WG 256

template <int T>
__global__ void
__launch_bounds__(WG) get_rows(const wh_cu_get_rows_params pc)
{
  typedef deq<T> D;
  const uint t = blockIdx.y;
  const uint i = blockIdx.x * WG + threadIdx.x;
  if (i >= pc.d)
    return;
  const uint64_t src_row = pc.ids != nullptr ? uint64_t(pc.ids[t]) : uint64_t(pc.first_row) + t;
  const uint8_t *row = pc.table + src_row * pc.row_bytes;
  const float v = D::dequant(row + uint64_t(i / D::QK) * D::BLOCK_BYTES, i % D::QK);
  pc.x[uint64_t(t) * pc.ldx + i] = pc.scale != 1.0f ? v * pc.scale : v;
}

namespace {
struct launch_get_rows {
  template <int T> static int run(cudaStream_t s, wh_cu_get_rows_params p)
  {
    dim3 grid(n_blocks(p.d, WG), p.n_tokens);
    get_rows<T><<<grid, WG, 0, s>>>(p);
    return launch_status();
  }
};
} // namespace

extern "C" int
wh_cu_get_rows(wh_cu_stream *s, int type, const wh_cu_get_rows_params *p)
{
  if (p->n_tokens == 0 || p->d == 0)
    return 0;
  return dispatch_type<launch_get_rows>(type, (cudaStream_t)s, *p);
}
