/* common.glsl — what every Whittle compute shader includes.
 *
 * Buffers are reached through buffer device addresses: every kernel takes
 * its pointers (uint64 device addresses) and its shapes in one push-constant
 * block, so there are no descriptor sets to manage and a kernel reads like
 * its CUDA twin (engine/backend/cuda/, same kernel names and structure).
 *
 * Types of buffer element views:
 *   Bytes   raw bytes (quantized blocks; blocks are 2-byte aligned, so they
 *           are read byte by byte or as 16-bit halves)
 *   Halfs   16-bit words (F16 weights, F16 KV cache)
 *   Floats  F32 activations, F32 weights, norms and biases
 */
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#extension GL_EXT_shader_8bit_storage : require
#extension GL_EXT_shader_16bit_storage : require

layout(buffer_reference, std430, buffer_reference_align = 2) readonly buffer Bytes {
  uint8_t v[];
};
layout(buffer_reference, std430, buffer_reference_align = 2) buffer Halfs {
  uint16_t v[];
};
layout(buffer_reference, std430, buffer_reference_align = 4) buffer Floats {
  float v[];
};

/* Byte @i after address @a. */
uint rd8(uint64_t a, uint i)
{
  return uint(Bytes(a).v[i]);
}

/* The 16-bit word at byte offset @i (even) after @a. */
uint rd16(uint64_t a, uint i)
{
  return uint(Halfs(a).v[i >> 1]);
}

/* The F16 value at byte offset @i (even) after @a, as a float. */
float rdf16(uint64_t a, uint i)
{
  return unpackHalf2x16(rd16(a, i)).x;
}

/* A 32-bit little-endian word at byte offset @i (even) after @a. */
uint rd32(uint64_t a, uint i)
{
  return rd16(a, i) | (rd16(a, i + 2) << 16);
}
