#version 450
/* mul_mat.comp — y[t][r] = W[r] . x[t] (+ bias[r]): matrix-vector (n_tokens = 1) and
 * matrix-matrix products of a weight matrix of any supported type with F32 activations.
 *
 * Compiled once per weight type: glslc -DTYPE_<NAME> (see dequant.glsl).
 *
 * Shapes: W [rows][K] stored as rows of K/QK blocks (row_bytes each);
 *         x [n_tokens][K] F32 with ldx floats between token rows;
 *         y [n_tokens][rows] F32 with ldy floats between token rows; bias [rows] F32 or 0.
 * Workgroup layout: one workgroup of WG threads per (weight row, tile of up to TILE tokens).
 *   WG = specialization constant 0, set by the host to the device's subgroup size (8 on
 *   lavapipe, 32 on NVIDIA, 64 on AMD), so a row is normally one subgroup and its sums need
 *   no barrier (barriers are costly on CPU-based devices)
 *   gl_WorkGroupID.x + gl_WorkGroupID.z * row_split = weight row r (z splits huge row counts)
 *   gl_WorkGroupID.y = token tile: tokens TILE*y .. TILE*y + TILE - 1
 * Each thread walks the elements k = tid, tid + WG, ... of row r, dequantizes each once
 * and multiplies it with the TILE activations; subgroupAdd sums the partial sums (and, when a
 * workgroup spans several subgroups, shared memory combines them).
 * Summation order: per-thread strided partial sums, then the subgroup sum (differs from the
 * CPU's eight-lane order; both are F32).
 */
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "common.glsl"
#include "dequant.glsl"

#define TILE 8
#define MAX_SUBGROUPS 64
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Params {
  uint64_t w;    /* weight rows */
  uint64_t x;    /* activations */
  uint64_t y;    /* output */
  uint64_t bias; /* 0 = none */
  uint K;        /* elements per row (multiple of QK) */
  uint rows;
  uint n_tokens;
  uint ldx;
  uint ldy;
  uint row_bytes;
  uint row_split; /* rows per z slice of the grid */
} pc;

shared float partial[TILE][MAX_SUBGROUPS];

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint r = gl_WorkGroupID.x + gl_WorkGroupID.z * pc.row_split;
  const uint t0 = gl_WorkGroupID.y * TILE;
  const uint nt = min(TILE, pc.n_tokens - t0);
  if (r >= pc.rows)
    return; /* whole workgroup leaves together: r is uniform */

  const uint64_t row = pc.w + uint64_t(r) * pc.row_bytes;
  Floats x = Floats(pc.x);
  float acc[TILE];
  for (uint t = 0; t < TILE; t++)
    acc[t] = 0.0;

  for (uint k = tid; k < pc.K; k += gl_WorkGroupSize.x) {
    const float wk = dequant(row + uint64_t(k / QK) * BLOCK_BYTES, k % QK);
    for (uint t = 0; t < nt; t++)
      acc[t] += wk * x.v[(t0 + t) * pc.ldx + k];
  }

  for (uint t = 0; t < TILE; t++)
    acc[t] = subgroupAdd(acc[t]);
  if (gl_NumSubgroups > 1) { /* uniform: every thread takes the same branch */
    if (subgroupElect())
      for (uint t = 0; t < TILE; t++)
        partial[t][gl_SubgroupID] = acc[t];
    barrier();
    for (uint t = 0; t < TILE; t++) {
      acc[t] = 0.0;
      for (uint s = 0; s < gl_NumSubgroups; s++)
        acc[t] += partial[t][s];
    }
  }
  if (tid < nt) {
    const float b = pc.bias != 0 ? Floats(pc.bias).v[r] : 0.0;
    float v = acc[0];
    for (uint t = 1; t < TILE; t++) /* acc[tid] with a constant index */
      v = t == tid ? acc[t] : v;
    Floats(pc.y).v[(t0 + tid) * pc.ldy + r] = v + b;
  }
}
