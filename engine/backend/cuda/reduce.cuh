/* reduce.cuh — block-wide sum and max over a shared array of WG floats
 * (WG a power of two). Twin of engine/backend/vulkan/shaders/reduce.glsl.
 * Every thread must call them (they contain barriers); every thread gets
 * the result. */
#pragma once

#include "common.cuh"

template <uint WG>
__device__ float
wg_sum(float v)
{
  __shared__ float red[WG];
  const uint tid = threadIdx.x;
  red[tid] = v;
  __syncthreads();
  for (uint s = WG / 2; s > 0; s >>= 1) {
    if (tid < s)
      red[tid] += red[tid + s];
    __syncthreads();
  }
  const float r = red[0];
  __syncthreads();
  return r;
}

template <uint WG>
__device__ float
wg_max(float v)
{
  __shared__ float red[WG];
  const uint tid = threadIdx.x;
  red[tid] = v;
  __syncthreads();
  for (uint s = WG / 2; s > 0; s >>= 1) {
    if (tid < s)
      red[tid] = fmaxf(red[tid], red[tid + s]);
    __syncthreads();
  }
  const float r = red[0];
  __syncthreads();
  return r;
}
