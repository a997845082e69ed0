/* dequant.glsl — element j of one quantized block, for the weight type the
 * shader is compiled for (glslc -DTYPE_<NAME>). Exact dequantization as
 * shared/spec/block-formats.md defines it (the same rules as the CPU's
 * engine/quant/quant.c): no activation quantization happens on the GPU, so
 * products are F32 weights x F32 activations.
 *
 * Defines: QK (elements per block), BLOCK_BYTES, and
 *   float dequant(uint64_t blk, uint j)   blk = address of the block, j < QK
 */

#if defined(TYPE_F32)
#define QK 1
#define BLOCK_BYTES 4
float dequant(uint64_t blk, uint j)
{
  return Floats(blk).v[0];
}

#elif defined(TYPE_F16)
#define QK 1
#define BLOCK_BYTES 2
float dequant(uint64_t blk, uint j)
{
  return rdf16(blk, 0);
}

#elif defined(TYPE_Q4_0)
/* d f16 | qs[16]: element j<16 is low nibble of qs[j], j>=16 the high nibble of qs[j-16] */
#define QK 32
#define BLOCK_BYTES 18
float dequant(uint64_t blk, uint j)
{
  uint q = (rd8(blk, 2 + (j & 15)) >> ((j >> 4) * 4)) & 15;
  return rdf16(blk, 0) * (float(q) - 8.0);
}

#elif defined(TYPE_Q4_1)
/* d f16 | m f16 | qs[16] */
#define QK 32
#define BLOCK_BYTES 20
float dequant(uint64_t blk, uint j)
{
  uint q = (rd8(blk, 4 + (j & 15)) >> ((j >> 4) * 4)) & 15;
  return rdf16(blk, 0) * float(q) + rdf16(blk, 2);
}

#elif defined(TYPE_Q5_0)
/* d f16 | qh u32 (bit j = 5th bit of element j) | qs[16] */
#define QK 32
#define BLOCK_BYTES 22
float dequant(uint64_t blk, uint j)
{
  uint q = (rd8(blk, 6 + (j & 15)) >> ((j >> 4) * 4)) & 15;
  q |= ((rd32(blk, 2) >> j) & 1) << 4;
  return rdf16(blk, 0) * (float(q) - 16.0);
}

#elif defined(TYPE_Q5_1)
/* d f16 | m f16 | qh u32 | qs[16] */
#define QK 32
#define BLOCK_BYTES 24
float dequant(uint64_t blk, uint j)
{
  uint q = (rd8(blk, 8 + (j & 15)) >> ((j >> 4) * 4)) & 15;
  q |= ((rd32(blk, 4) >> j) & 1) << 4;
  return rdf16(blk, 0) * float(q) + rdf16(blk, 2);
}

#elif defined(TYPE_Q8_0)
/* d f16 | qs[32] int8 */
#define QK 32
#define BLOCK_BYTES 34
float dequant(uint64_t blk, uint j)
{
  int q = int(rd8(blk, 2 + j) << 24) >> 24;
  return rdf16(blk, 0) * float(q);
}

#elif defined(TYPE_Q2_K)
/* scales[16] (low nibble scale, high nibble min) | qs[64] | d f16 | dmin f16.
 * Element j = 128h + 32s + l: bits 2s of qs[32h + l]; sub-block 8h + 2s + l/16. */
#define QK 256
#define BLOCK_BYTES 84
float dequant(uint64_t blk, uint j)
{
  uint h = j >> 7, s = (j >> 5) & 3, l = j & 31;
  uint sc = rd8(blk, 8 * h + 2 * s + (l >> 4));
  uint q = (rd8(blk, 16 + 32 * h + l) >> (2 * s)) & 3;
  return rdf16(blk, 80) * float(sc & 15) * float(q) - rdf16(blk, 82) * float(sc >> 4);
}

#elif defined(TYPE_Q3_K)
/* hmask[32] | qs[64] | scales[12] (6-bit signed, packed) | d f16.
 * Element j = 128h + 32s + l: low 2 bits from qs[32h + l] >> 2s, high bit
 * (set = no offset, clear = -4) from hmask[l] bit 4h + s; sub-block 8h + 2s + l/16. */
#define QK 256
#define BLOCK_BYTES 110
float dequant(uint64_t blk, uint j)
{
  uint h = j >> 7, s = (j >> 5) & 3, l = j & 31;
  uint k = 8 * h + 2 * s + (l >> 4);
  uint low = k < 8 ? (rd8(blk, 96 + k) & 15) : (rd8(blk, 96 + k - 8) >> 4);
  uint high = (rd8(blk, 104 + (k & 3)) >> (2 * (k >> 2))) & 3;
  int sc = int(low | (high << 4)) - 32;
  int q = int((rd8(blk, 32 + 32 * h + l) >> (2 * s)) & 3);
  if (((rd8(blk, l) >> (4 * h + s)) & 1) == 0)
    q -= 4;
  return rdf16(blk, 108) * float(sc) * float(q);
}

#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
/* d f16 | dmin f16 | scales[12] (6-bit scale and min of 8 sub-blocks) | [Q5_K: qh[32]] | qs[128].
 * Element j = 32 sb + l: nibble (sb & 1) of qs[32 (sb / 2) + l]; Q5_K adds bit sb of qh[l]. */
#define QK 256
#if defined(TYPE_Q4_K)
#define BLOCK_BYTES 144
#define QS_OFF 16
#else
#define BLOCK_BYTES 176
#define QS_OFF 48
#endif
float dequant(uint64_t blk, uint j)
{
  uint sb = j >> 5, l = j & 31;
  uint sc, m;
  if (sb < 4) {
    sc = rd8(blk, 4 + sb) & 63;
    m = rd8(blk, 8 + sb) & 63;
  } else {
    sc = (rd8(blk, 8 + sb) & 15) | ((rd8(blk, sb) >> 6) << 4);
    m = (rd8(blk, 8 + sb) >> 4) | ((rd8(blk, 4 + sb) >> 6) << 4);
  }
  uint q = (rd8(blk, QS_OFF + 32 * (sb >> 1) + l) >> (4 * (sb & 1))) & 15;
#if defined(TYPE_Q5_K)
  q |= ((rd8(blk, 16 + l) >> sb) & 1) << 4;
#endif
  return rdf16(blk, 0) * float(sc) * float(q) - rdf16(blk, 2) * float(m);
}

#elif defined(TYPE_Q6_K)
/* ql[128] | qh[64] | scales[16] int8 | d f16.
 * Element j = 128h + 32t + l: low nibble (t < 2) or high nibble (t >= 2) of
 * ql[64h + 32(t & 1) + l], 2 high bits from qh[32h + l] >> 2t, minus 32;
 * scale scales[8h + 2t + l/16]. */
#define QK 256
#define BLOCK_BYTES 210
float dequant(uint64_t blk, uint j)
{
  uint h = j >> 7, t = (j >> 5) & 3, l = j & 31;
  uint lo = (rd8(blk, 64 * h + 32 * (t & 1) + l) >> ((t & 2) != 0 ? 4 : 0)) & 15;
  uint hi = (rd8(blk, 128 + 32 * h + l) >> (2 * t)) & 3;
  int q = int(lo | (hi << 4)) - 32;
  int sc = int(rd8(blk, 192 + 8 * h + 2 * t + (l >> 4)) << 24) >> 24;
  return rdf16(blk, 208) * float(sc) * float(q);
}

#elif defined(TYPE_IQ4_NL) || defined(TYPE_IQ4_XS)
/* The 16 non-linear IQ4 levels (shared/spec/block-formats.md). */
const float iq4_levels[16] = float[16](-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0,
                                       1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
#if defined(TYPE_IQ4_NL)
/* d f16 | qs[16]: nibbles like Q4_0, mapped through the levels */
#define QK 32
#define BLOCK_BYTES 18
float dequant(uint64_t blk, uint j)
{
  uint q = (rd8(blk, 2 + (j & 15)) >> ((j >> 4) * 4)) & 15;
  return rdf16(blk, 0) * iq4_levels[q];
}
#else
/* d f16 | scales_h u16 | scales_l[4] | qs[128]: 8 sub-blocks of 32 laid out like IQ4_NL,
 * 6-bit scale (low nibble from scales_l, 2 high bits from scales_h) minus 32. */
#define QK 256
#define BLOCK_BYTES 136
float dequant(uint64_t blk, uint j)
{
  uint b = j >> 5, i = j & 31;
  uint ls = ((rd8(blk, 4 + (b >> 1)) >> (4 * (b & 1))) & 15) | (((rd16(blk, 2) >> (2 * b)) & 3) << 4);
  uint q = (rd8(blk, 8 + 16 * b + (i & 15)) >> ((i >> 4) * 4)) & 15;
  return rdf16(blk, 0) * float(int(ls) - 32) * iq4_levels[q];
}
#endif

#else
#error "compile with -DTYPE_<name>"
#endif
