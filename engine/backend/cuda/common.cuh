/* common.cuh — what every Whittle CUDA kernel includes.
 *
 * Twin of engine/backend/vulkan/shaders/common.glsl: every kernel takes its
 * pointers (plain device pointers) and its shapes in one parameter struct
 * (cuda-kernels.h), so a kernel reads like its Vulkan twin (same kernel
 * names and structure).
 *
 * Buffer views: quantized blocks are raw bytes (blocks are 2-byte aligned,
 * so they are read byte by byte or as 16-bit halves); F16 weights and F16
 * KV cache are 16-bit words; activations, F32 weights, norms and biases are
 * floats. The readers below are __host__ __device__ so the CPU can run the
 * same decoders in tests (host.cu).
 */
#pragma once

#include <cuda_fp16.h>
#include <stdint.h>

#include "cuda-kernels.h"

typedef unsigned int uint;

#define WH_HD __host__ __device__ __forceinline__

/* Byte @i after address @a. */
WH_HD uint
rd8(const uint8_t *a, uint i)
{
  return a[i];
}

/* The 16-bit word at byte offset @i (even) after @a. */
WH_HD uint
rd16(const uint8_t *a, uint i)
{
  return *(const uint16_t *)(a + i);
}

/* The 32-bit float with bit pattern @u. */
WH_HD float
as_float(uint u)
{
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  union {
    uint u;
    float f;
  } c = {u};
  return c.f;
#endif
}

/* Exact fp16 -> fp32 (block-formats.md 1.1: subnormals, inf and NaN kept). */
WH_HD float
f16_to_f32(uint h)
{
  const uint sign = (h >> 15) & 1, e = (h >> 10) & 31, m = h & 1023;
  float v;
  if (e == 0)
    v = (float)m * 5.9604644775390625e-8f; /* m * 2^-24, exact */
  else if (e == 31)
    v = as_float(0x7f800000u | (m << 13));
  else
    v = as_float(((e + 112) << 23) | (m << 13));
  return sign ? -v : v;
}

/* fp32 -> fp16 bits, round to nearest even (the F16 KV cache and stored block scales). */
WH_HD uint
f32_to_f16(float f)
{
  __half_raw r = __float2half_rn(f);
  return r.x;
}

/* The F16 value at byte offset @i (even) after @a, as a float. */
WH_HD float
rdf16(const uint8_t *a, uint i)
{
  return f16_to_f32(rd16(a, i));
}

/* A 32-bit little-endian word at byte offset @i (even) after @a. */
WH_HD uint
rd32(const uint8_t *a, uint i)
{
  return rd16(a, i) | (rd16(a, i + 2) << 16);
}

/* Grid size for @n items in blocks of @per. */
static inline uint
n_blocks(uint64_t n, uint per)
{
  return (uint)((n + per - 1) / per);
}

/* Grid for @n elements in blocks of @per threads: x up to 65535 blocks, y splits longer runs
 * (block b = blockIdx.x + blockIdx.y * 65535, as the Vulkan twins dispatch). */
static inline dim3
grid_1d(uint64_t n, uint per)
{
  const uint b = n_blocks(n, per);
  return dim3(b < 65535 ? b : 65535, n_blocks(b, 65535));
}

/* The launch error (0 = launched). */
static inline int
launch_status(void)
{
  return (int)cudaGetLastError();
}
