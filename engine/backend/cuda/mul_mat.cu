/* mul_mat.cu — y[t][r] = W[r] . x[t] (+ bias[r]): matrix-vector (n_tokens = 1) and
 * matrix-matrix products of a weight matrix of any supported type with F32 activations.
 *
 * Instantiated once per weight type: mul_mat<T> (see dequant.cuh).
 *
 * Shapes: W [rows][K] stored as rows of K/QK blocks (row_bytes each);
 *         x [n_tokens][K] F32 with ldx floats between token rows;
 *         y [n_tokens][rows] F32 with ldy floats between token rows; bias [rows] F32 or NULL.
 * Block layout: one block of WG threads per (weight row, tile of up to TILE tokens).
 *   blockIdx.x + blockIdx.z * row_split = weight row r (z splits huge row counts)
 *   blockIdx.y = token tile: tokens TILE*y .. TILE*y + TILE - 1
 * Each thread walks the elements k = tid, tid + WG, ... of row r, dequantizes each once
 * and multiplies it with the TILE activations; a shared-memory tree sums the WG partial sums.
 * Summation order: per-thread strided partial sums, then the tree (differs from the CPU's
 * eight-lane order; both are F32).
 */
#include "dequant.cuh"

#define WG 64
#define TILE 8

template <int T>
__global__ void
__launch_bounds__(WG) mul_mat(const wh_cu_mul_mat_params pc)
{
  typedef deq<T> D;
  __shared__ float partial[TILE][WG];

  const uint tid = threadIdx.x;
  const uint r = blockIdx.x + blockIdx.z * pc.row_split;
  const uint t0 = blockIdx.y * TILE;
  const uint nt = min(TILE, pc.n_tokens - t0);
  if (r >= pc.rows)
    return; /* whole block leaves together: r is uniform */

  const uint8_t *row = pc.w + uint64_t(r) * pc.row_bytes;
  const float *x = pc.x;
  float acc[TILE];
  for (uint t = 0; t < TILE; t++)
    acc[t] = 0.0f;

  for (uint k = tid; k < pc.K; k += WG) {
    const float wk = D::dequant(row + uint64_t(k / D::QK) * D::BLOCK_BYTES, k % D::QK);
    for (uint t = 0; t < nt; t++)
      acc[t] += wk * x[uint64_t(t0 + t) * pc.ldx + k];
  }

  for (uint t = 0; t < TILE; t++)
    partial[t][tid] = acc[t];
  __syncthreads();
  for (uint s = WG / 2; s > 0; s >>= 1) {
    if (tid < s)
      for (uint t = 0; t < nt; t++)
        partial[t][tid] += partial[t][tid + s];
    __syncthreads();
  }
  if (tid < nt) {
    const float b = pc.bias != nullptr ? pc.bias[r] : 0.0f;
    pc.y[uint64_t(t0 + tid) * pc.ldy + r] = partial[tid][0] + b;
  }
}

namespace {
struct launch_mul_mat {
  template <int T> static int run(cudaStream_t s, wh_cu_mul_mat_params p)
  {
    /* grid.x may be large on CUDA, but the row split keeps the same grid as the Vulkan twin */
    const uint max_x = 65535;
    p.row_split = min(p.rows, max_x);
    dim3 grid(p.row_split, n_blocks(p.n_tokens, TILE), n_blocks(p.rows, p.row_split));
    mul_mat<T><<<grid, WG, 0, s>>>(p);
    return launch_status();
  }
};
} // namespace

extern "C" int
wh_cu_mul_mat(wh_cu_stream *s, int type, const wh_cu_mul_mat_params *p)
{
  if (p->rows == 0 || p->n_tokens == 0)
    return 0;
  return dispatch_type<launch_mul_mat>(type, (cudaStream_t)s, *p);
}
