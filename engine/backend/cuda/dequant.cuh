/* dequant.cuh — element j of one quantized block, for a weight (or KV cache)
 * type T. Twin of engine/backend/vulkan/shaders/dequant.glsl, where each
 * shader is compiled per type with -DTYPE_<NAME>; here each type is a
 * specialization of deq<T>, and a kernel is a template instantiated per type.
 * Exact dequantization as shared/spec/block-formats.md defines it (the same
 * rules as the CPU's engine/quant/quant.c): no activation quantization
 * happens on the GPU, so products are F32 weights x F32 activations.
 *
 * Each deq<T> defines: QK (elements per block), BLOCK_BYTES, and
 *   float dequant(const uint8_t *blk, uint j)   blk = address of the block, j < QK
 */
#pragma once

#include "common.cuh"

template <int T> struct deq;

template <> struct deq<WH_CU_F32> {
  static constexpr uint QK = 1, BLOCK_BYTES = 4;
  static WH_HD float dequant(const uint8_t *blk, uint j)
  {
    return *(const float *)blk;
  }
};

template <> struct deq<WH_CU_F16> {
  static constexpr uint QK = 1, BLOCK_BYTES = 2;
  static WH_HD float dequant(const uint8_t *blk, uint j)
  {
    return rdf16(blk, 0);
  }
};

/* d f16 | qs[16]: element j<16 is low nibble of qs[j], j>=16 the high nibble of qs[j-16] */
template <> struct deq<WH_CU_Q4_0> {
  static constexpr uint QK = 32, BLOCK_BYTES = 18;
  static WH_HD float dequant(const uint8_t *blk, uint j)
  {
    uint q = (rd8(blk, 2 + (j & 15)) >> ((j >> 4) * 4)) & 15;
    return rdf16(blk, 0) * (float(q) - 8.0f);
  }
};

/* d f16 | m f16 | qs[16] */
template <> struct deq<WH_CU_Q4_1> {
  static constexpr uint QK = 32, BLOCK_BYTES = 20;
  static WH_HD float dequant(const uint8_t *blk, uint j)
  {
    uint q = (rd8(blk, 4 + (j & 15)) >> ((j >> 4) * 4)) & 15;
    return rdf16(blk, 0) * float(q) + rdf16(blk, 2);
  }
};

/* d f16 | qh u32 (bit j = 5th bit of element j) | qs[16] */
template <> struct deq<WH_CU_Q5_0> {
  static constexpr uint QK = 32, BLOCK_BYTES = 22;
  static WH_HD float dequant(const uint8_t *blk, uint j)
  {
    uint q = (rd8(blk, 6 + (j & 15)) >> ((j >> 4) * 4)) & 15;
    q |= ((rd32(blk, 2) >> j) & 1) << 4;
    return rdf16(blk, 0) * (float(q) - 16.0f);
  }
};

/* d f16 | m f16 | qh u32 | qs[16] */
template <> struct deq<WH_CU_Q5_1> {
  static constexpr uint QK = 32, BLOCK_BYTES = 24;
  static WH_HD float dequant(const uint8_t *blk, uint j)
  {
    uint q = (rd8(blk, 8 + (j & 15)) >> ((j >> 4) * 4)) & 15;
    q |= ((rd32(blk, 4) >> j) & 1) << 4;
    return rdf16(blk, 0) * float(q) + rdf16(blk, 2);
  }
};

/* d f16 | qs[32] int8 */
template <> struct deq<WH_CU_Q8_0> {
  static constexpr uint QK = 32, BLOCK_BYTES = 34;
  static WH_HD float dequant(const uint8_t *blk, uint j)
  {
    int q = int(rd8(blk, 2 + j) << 24) >> 24;
    return rdf16(blk, 0) * float(q);
  }
};

/* scales[16] (low nibble scale, high nibble min) | qs[64] | d f16 | dmin f16.
 * Element j = 128h + 32s + l: bits 2s of qs[32h + l]; sub-block 8h + 2s + l/16. */
template <> struct deq<WH_CU_Q2_K> {
  static constexpr uint QK = 256, BLOCK_BYTES = 84;
  static WH_HD float dequant(const uint8_t *blk, uint j)
  {
    uint h = j >> 7, s = (j >> 5) & 3, l = j & 31;
    uint sc = rd8(blk, 8 * h + 2 * s + (l >> 4));
    uint q = (rd8(blk, 16 + 32 * h + l) >> (2 * s)) & 3;
    return rdf16(blk, 80) * float(sc & 15) * float(q) - rdf16(blk, 82) * float(sc >> 4);
  }
};

/* hmask[32] | qs[64] | scales[12] (6-bit signed, packed) | d f16.
 * Element j = 128h + 32s + l: low 2 bits from qs[32h + l] >> 2s, high bit
 * (set = no offset, clear = -4) from hmask[l] bit 4h + s; sub-block 8h + 2s + l/16. */
template <> struct deq<WH_CU_Q3_K> {
  static constexpr uint QK = 256, BLOCK_BYTES = 110;
  static WH_HD float dequant(const uint8_t *blk, uint j)
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
};

/* d f16 | dmin f16 | scales[12] (6-bit scale and min of 8 sub-blocks) | [Q5_K: qh[32]] | qs[128].
 * Element j = 32 sb + l: nibble (sb & 1) of qs[32 (sb / 2) + l]; Q5_K adds bit sb of qh[l]. */
template <int T> struct deq_k45 {
  static constexpr uint QK = 256, BLOCK_BYTES = T == WH_CU_Q4_K ? 144 : 176;
  static constexpr uint QS_OFF = T == WH_CU_Q4_K ? 16 : 48;
  static WH_HD float dequant(const uint8_t *blk, uint j)
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
    if (T == WH_CU_Q5_K)
      q |= ((rd8(blk, 16 + l) >> sb) & 1) << 4;
    return rdf16(blk, 0) * float(sc) * float(q) - rdf16(blk, 2) * float(m);
  }
};
template <> struct deq<WH_CU_Q4_K> : deq_k45<WH_CU_Q4_K> {
};
template <> struct deq<WH_CU_Q5_K> : deq_k45<WH_CU_Q5_K> {
};

/* ql[128] | qh[64] | scales[16] int8 | d f16.
 * Element j = 128h + 32t + l: low nibble (t < 2) or high nibble (t >= 2) of
 * ql[64h + 32(t & 1) + l], 2 high bits from qh[32h + l] >> 2t, minus 32;
 * scale scales[8h + 2t + l/16]. */
template <> struct deq<WH_CU_Q6_K> {
  static constexpr uint QK = 256, BLOCK_BYTES = 210;
  static WH_HD float dequant(const uint8_t *blk, uint j)
  {
    uint h = j >> 7, t = (j >> 5) & 3, l = j & 31;
    uint lo = (rd8(blk, 64 * h + 32 * (t & 1) + l) >> ((t & 2) != 0 ? 4 : 0)) & 15;
    uint hi = (rd8(blk, 128 + 32 * h + l) >> (2 * t)) & 3;
    int q = int(lo | (hi << 4)) - 32;
    int sc = int(rd8(blk, 192 + 8 * h + 2 * t + (l >> 4)) << 24) >> 24;
    return rdf16(blk, 208) * float(sc) * float(q);
  }
};

/* The 16 non-linear IQ4 levels (shared/spec/block-formats.md). */
WH_HD float
iq4_level(uint q)
{
  switch (q & 15) {
  case 0:
    return -127.0f;
  case 1:
    return -104.0f;
  case 2:
    return -83.0f;
  case 3:
    return -65.0f;
  case 4:
    return -49.0f;
  case 5:
    return -35.0f;
  case 6:
    return -22.0f;
  case 7:
    return -10.0f;
  case 8:
    return 1.0f;
  case 9:
    return 13.0f;
  case 10:
    return 25.0f;
  case 11:
    return 38.0f;
  case 12:
    return 53.0f;
  case 13:
    return 69.0f;
  case 14:
    return 89.0f;
  default:
    return 113.0f;
  }
}

/* d f16 | qs[16]: nibbles like Q4_0, mapped through the levels */
template <> struct deq<WH_CU_IQ4_NL> {
  static constexpr uint QK = 32, BLOCK_BYTES = 18;
  static WH_HD float dequant(const uint8_t *blk, uint j)
  {
    uint q = (rd8(blk, 2 + (j & 15)) >> ((j >> 4) * 4)) & 15;
    return rdf16(blk, 0) * iq4_level(q);
  }
};

/* d f16 | scales_h u16 | scales_l[4] | qs[128]: 8 sub-blocks of 32 laid out like IQ4_NL,
 * 6-bit scale (low nibble from scales_l, 2 high bits from scales_h) minus 32. */
template <> struct deq<WH_CU_IQ4_XS> {
  static constexpr uint QK = 256, BLOCK_BYTES = 136;
  static WH_HD float dequant(const uint8_t *blk, uint j)
  {
    uint b = j >> 5, i = j & 31;
    uint ls =
        ((rd8(blk, 4 + (b >> 1)) >> (4 * (b & 1))) & 15) | (((rd16(blk, 2) >> (2 * b)) & 3) << 4);
    uint q = (rd8(blk, 8 + 16 * b + (i & 15)) >> ((i >> 4) * 4)) & 15;
    return rdf16(blk, 0) * float(int(ls) - 32) * iq4_level(q);
  }
};

/* Element k of a row of type T. */
template <int T>
WH_HD float
dequant_row_elem(const uint8_t *row, uint k)
{
  return deq<T>::dequant(row + (uint64_t)(k / deq<T>::QK) * deq<T>::BLOCK_BYTES, k % deq<T>::QK);
}

/* Calls F::template run<T>(args...) for the weight type @type; cudaErrorNotSupported when the
 * type has no kernel. Every launcher dispatches through this one switch. */
template <typename F, typename... A>
int
dispatch_type(int type, A... args)
{
  switch (type) {
  case WH_CU_F32:
    return F::template run<WH_CU_F32>(args...);
  case WH_CU_F16:
    return F::template run<WH_CU_F16>(args...);
  case WH_CU_Q4_0:
    return F::template run<WH_CU_Q4_0>(args...);
  case WH_CU_Q4_1:
    return F::template run<WH_CU_Q4_1>(args...);
  case WH_CU_Q5_0:
    return F::template run<WH_CU_Q5_0>(args...);
  case WH_CU_Q5_1:
    return F::template run<WH_CU_Q5_1>(args...);
  case WH_CU_Q8_0:
    return F::template run<WH_CU_Q8_0>(args...);
  case WH_CU_Q2_K:
    return F::template run<WH_CU_Q2_K>(args...);
  case WH_CU_Q3_K:
    return F::template run<WH_CU_Q3_K>(args...);
  case WH_CU_Q4_K:
    return F::template run<WH_CU_Q4_K>(args...);
  case WH_CU_Q5_K:
    return F::template run<WH_CU_Q5_K>(args...);
  case WH_CU_Q6_K:
    return F::template run<WH_CU_Q6_K>(args...);
  case WH_CU_IQ4_NL:
    return F::template run<WH_CU_IQ4_NL>(args...);
  case WH_CU_IQ4_XS:
    return F::template run<WH_CU_IQ4_XS>(args...);
  default:
    return (int)cudaErrorNotSupported;
  }
}

/* The same for the KV cache row types. */
template <typename F, typename... A>
int
dispatch_kv_type(int type, A... args)
{
  switch (type) {
  case WH_CU_F32:
    return F::template run<WH_CU_F32>(args...);
  case WH_CU_F16:
    return F::template run<WH_CU_F16>(args...);
  case WH_CU_Q8_0:
    return F::template run<WH_CU_Q8_0>(args...);
  case WH_CU_Q4_0:
    return F::template run<WH_CU_Q4_0>(args...);
  default:
    return (int)cudaErrorNotSupported;
  }
}
