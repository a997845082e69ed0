/* quant.c — scalar conversions, type facts and the dequantizers (contract in quant.h).
 *
 * Implementation notes
 * --------------------
 * Every dequantizer follows block-formats.md section 4 literally: one block at a time, fields
 * read byte-wise (little-endian, any alignment), values computed in binary32 in the spec's
 * grouping. All intermediate products there are exact, so the result is the correctly rounded
 * value the reference produces. Codes are always masked to their table's range, so corrupted
 * blocks decode to garbage but never read out of bounds.
 */
#include "config.h"

#include "quant/quant-private.h"

#if (defined(__x86_64__) || defined(__i386__)) && !defined(WH_QUANT_NO_SIMD)
#include <immintrin.h>
#define WH_QUANT_F16C 1
#else
#define WH_QUANT_F16C 0
#endif

G_DEFINE_QUARK(wh - quant - error - quark, wh_quant_error)

/* ---- Scalar conversions ------------------------------------------------------------------- */

static inline float
bits_to_f32(guint32 u)
{
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static inline guint32
f32_to_bits(float f)
{
  guint32 u;
  memcpy(&u, &f, sizeof u);
  return u;
}

float
wh_fp16_to_fp32(guint16 h)
{
  guint32 sign = (guint32)(h & 0x8000) << 16;
  guint32 e = (h >> 10) & 0x1f;
  guint32 m = h & 0x3ff;
  if (e == 0) {
    /* zero / subnormal: m * 2^-24, exact in binary32 */
    float v = (float)m * 0x1p-24f;
    return bits_to_f32(f32_to_bits(v) | sign);
  }
  if (e == 31)
    return bits_to_f32(sign | 0x7f800000u | (m << 13));
  return bits_to_f32(sign | ((e + 112) << 23) | (m << 13));
}

guint16
wh_fp32_to_fp16(float f)
{
  guint32 u = f32_to_bits(f);
  guint16 sign = (guint16)((u >> 16) & 0x8000);
  guint32 a = u & 0x7fffffffu;
  if (a > 0x7f800000u) /* NaN */
    return sign | 0x7e00;
  if (a >= 0x477ff000u) /* >= 65520 (and inf) rounds to inf */
    return sign | 0x7c00;
  if (a >= 0x38800000u) { /* normal fp16 range: rebias, round the 13 dropped bits to even */
    guint32 r = a - (112u << 23);
    guint32 h = r >> 13;
    guint32 rem = r & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
      h++;
    return (guint16)(sign | h);
  }
  /* subnormal or zero: |f| * 2^24 is exact; rint (ties to even) gives the code 0..1024 (1024 is
   * the smallest normal, which is its correct encoding). */
  float v = nearbyintf(bits_to_f32(a) * 0x1p24f);
  return (guint16)(sign | (guint16)v);
}

float
wh_bf16_to_fp32(guint16 h)
{
  return bits_to_f32((guint32)h << 16);
}

guint16
wh_fp32_to_bf16(float f)
{
  guint32 u = f32_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (guint16)((u >> 16) | 0x0040);
  return (guint16)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

/* ---- Type facts ----------------------------------------------------------------------------- */

typedef struct {
  guint16 block;
  guint16 bytes;
} type_shape;

/* block-formats.md section 3; zero entries are ids we do not handle here. */
static const type_shape type_shapes[WH_TYPE_COUNT] = {
    [WH_TYPE_F32] = {1, 4},        [WH_TYPE_F16] = {1, 2},        [WH_TYPE_Q4_0] = {32, 18},
    [WH_TYPE_Q4_1] = {32, 20},     [WH_TYPE_Q5_0] = {32, 22},     [WH_TYPE_Q5_1] = {32, 24},
    [WH_TYPE_Q8_0] = {32, 34},     [WH_TYPE_Q8_1] = {32, 36},     [WH_TYPE_Q2_K] = {256, 84},
    [WH_TYPE_Q3_K] = {256, 110},   [WH_TYPE_Q4_K] = {256, 144},   [WH_TYPE_Q5_K] = {256, 176},
    [WH_TYPE_Q6_K] = {256, 210},   [WH_TYPE_Q8_K] = {256, 292},   [WH_TYPE_IQ2_XXS] = {256, 66},
    [WH_TYPE_IQ2_XS] = {256, 74},  [WH_TYPE_IQ3_XXS] = {256, 98}, [WH_TYPE_IQ1_S] = {256, 50},
    [WH_TYPE_IQ4_NL] = {32, 18},   [WH_TYPE_IQ3_S] = {256, 110},  [WH_TYPE_IQ2_S] = {256, 82},
    [WH_TYPE_IQ4_XS] = {256, 136}, [WH_TYPE_I8] = {1, 1},         [WH_TYPE_I16] = {1, 2},
    [WH_TYPE_I32] = {1, 4},        [WH_TYPE_I64] = {1, 8},        [WH_TYPE_F64] = {1, 8},
    [WH_TYPE_IQ1_M] = {256, 56},   [WH_TYPE_BF16] = {1, 2},       [WH_TYPE_TQ1_0] = {256, 54},
    [WH_TYPE_TQ2_0] = {256, 66},   [WH_TYPE_MXFP4] = {32, 17},    [WH_TYPE_NVFP4] = {64, 36},
    [WH_TYPE_Q1_0] = {128, 18},    [WH_TYPE_Q2_0] = {64, 18},
};

guint32
wh_quant_block_size(wh_type type)
{
  if ((guint)type >= WH_TYPE_COUNT)
    return 0;
  return type_shapes[type].block;
}

guint32
wh_quant_block_bytes(wh_type type)
{
  if ((guint)type >= WH_TYPE_COUNT)
    return 0;
  return type_shapes[type].bytes;
}

gsize
wh_quant_row_bytes(wh_type type, gint64 n)
{
  guint32 qk = wh_quant_block_size(type);
  if (qk == 0 || n < 0 || n % qk != 0)
    return 0;
  return (gsize)(n / qk) * type_shapes[type].bytes;
}

gboolean
wh_quant_type_can_dequantize(wh_type type)
{
  switch (type) {
  case WH_TYPE_I8:
  case WH_TYPE_I16:
  case WH_TYPE_I32:
  case WH_TYPE_I64:
  case WH_TYPE_F64:
    return FALSE;
  default:
    return wh_quant_block_size(type) != 0;
  }
}

/* ---- Dequantizers: one block each; @x points at the block, @y at its block_size outputs. ---- */

static void
dq_q4_0(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  const guint8 *qs = x + 2;
  for (int j = 0; j < 16; j++) {
    y[j] = (float)((qs[j] & 15) - 8) * d;
    y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
  }
}

static void
dq_q4_1(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  float m = wh_quant_rd_fp16(x + 2);
  const guint8 *qs = x + 4;
  for (int j = 0; j < 16; j++) {
    y[j] = (float)(qs[j] & 15) * d + m;
    y[j + 16] = (float)(qs[j] >> 4) * d + m;
  }
}

static void
dq_q5_0(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  guint32 qh = wh_quant_rd32(x + 2);
  const guint8 *qs = x + 6;
  for (int j = 0; j < 16; j++) {
    int q0 = (qs[j] & 15) | (int)(((qh >> j) & 1) << 4);
    int q1 = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
    y[j] = (float)(q0 - 16) * d;
    y[j + 16] = (float)(q1 - 16) * d;
  }
}

static void
dq_q5_1(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  float m = wh_quant_rd_fp16(x + 2);
  guint32 qh = wh_quant_rd32(x + 4);
  const guint8 *qs = x + 8;
  for (int j = 0; j < 16; j++) {
    int q0 = (qs[j] & 15) | (int)(((qh >> j) & 1) << 4);
    int q1 = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
    y[j] = (float)q0 * d + m;
    y[j + 16] = (float)q1 * d + m;
  }
}

static void
dq_q8_0(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  const gint8 *qs = (const gint8 *)(x + 2);
  for (int j = 0; j < 32; j++)
    y[j] = (float)qs[j] * d;
}

static void
dq_q8_1(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  const gint8 *qs = (const gint8 *)(x + 4);
  for (int j = 0; j < 32; j++)
    y[j] = (float)qs[j] * d;
}

static void
dq_q8_k(const guint8 *x, float *y)
{
  float d = bits_to_f32(wh_quant_rd32(x));
  const gint8 *qs = (const gint8 *)(x + 4);
  for (int j = 0; j < 256; j++)
    y[j] = d * (float)qs[j];
}

/* Loops follow the layout: element 128h + 32s + l is bits 2s of qs[32h + l]; its 16-element
 * sub-block is 8h + 2s + l/16. */
static void
dq_q2_k(const guint8 *x, float *y)
{
  const guint8 *scales = x;
  const guint8 *qs = x + 16;
  float d = wh_quant_rd_fp16(x + 80);
  float dmin = wh_quant_rd_fp16(x + 82);
  for (int h = 0; h < 2; h++)
    for (int s = 0; s < 4; s++)
      for (int half = 0; half < 2; half++) {
        guint8 sc = scales[8 * h + 2 * s + half];
        float dl = d * (float)(sc & 15);
        float ml = dmin * (float)(sc >> 4);
        for (int l = 16 * half; l < 16 * half + 16; l++)
          y[128 * h + 32 * s + l] = dl * (float)((qs[32 * h + l] >> (2 * s)) & 3) - ml;
      }
}

/* 6-bit signed scale of Q3_K sub-block k (4.9). */
static inline int
q3k_scale(const guint8 *scales, int k)
{
  int low = k < 8 ? (scales[k] & 15) : (scales[k - 8] >> 4);
  int high = (scales[8 + (k % 4)] >> (2 * (k / 4))) & 3;
  return (low | (high << 4)) - 32;
}

static void
dq_q3_k(const guint8 *x, float *y)
{
  const guint8 *hmask = x;
  const guint8 *qs = x + 32;
  const guint8 *scales = x + 96;
  float d = wh_quant_rd_fp16(x + 108);
  for (int h = 0; h < 2; h++)
    for (int s = 0; s < 4; s++)
      for (int half = 0; half < 2; half++) {
        float dl = d * (float)q3k_scale(scales, 8 * h + 2 * s + half);
        for (int l = 16 * half; l < 16 * half + 16; l++) {
          int lo = (qs[32 * h + l] >> (2 * s)) & 3;
          int q = ((hmask[l] >> (4 * h + s)) & 1) ? lo : lo - 4; /* element 128h+32s+l */
          y[128 * h + 32 * s + l] = dl * (float)q;
        }
      }
}

/* 6-bit scale and min codes of Q4_K/Q5_K sub-block j (4.10). */
static inline void
q4k_scale_min(const guint8 *S, int j, int *sc, int *m)
{
  if (j < 4) {
    *sc = S[j] & 63;
    *m = S[j + 4] & 63;
  } else {
    *sc = (S[j + 4] & 15) | ((S[j - 4] >> 6) << 4);
    *m = (S[j + 4] >> 4) | ((S[j] >> 6) << 4);
  }
}

static void
dq_q4_k(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  float dmin = wh_quant_rd_fp16(x + 2);
  const guint8 *S = x + 4;
  const guint8 *qs = x + 16;
  for (int j = 0; j < 8; j++) {
    int sc, m;
    q4k_scale_min(S, j, &sc, &m);
    float dl = d * (float)sc;
    float ml = dmin * (float)m;
    const guint8 *q = qs + 32 * (j / 2);
    int shift = (j % 2) * 4;
    for (int l = 0; l < 32; l++)
      y[32 * j + l] = dl * (float)((q[l] >> shift) & 15) - ml;
  }
}

static void
dq_q5_k(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  float dmin = wh_quant_rd_fp16(x + 2);
  const guint8 *S = x + 4;
  const guint8 *qh = x + 16;
  const guint8 *qs = x + 48;
  for (int j = 0; j < 8; j++) {
    int sc, m;
    q4k_scale_min(S, j, &sc, &m);
    float dl = d * (float)sc;
    float ml = dmin * (float)m;
    const guint8 *q = qs + 32 * (j / 2);
    int shift = (j % 2) * 4;
    for (int l = 0; l < 32; l++) {
      int v = ((q[l] >> shift) & 15) | (((qh[l] >> j) & 1) << 4);
      y[32 * j + l] = dl * (float)v - ml;
    }
  }
}

static void
dq_q6_k(const guint8 *x, float *y)
{
  const guint8 *ql = x;
  const guint8 *qh = x + 128;
  const gint8 *scales = (const gint8 *)(x + 192);
  float d = wh_quant_rd_fp16(x + 208);
  for (int h = 0; h < 2; h++)
    for (int t = 0; t < 4; t++) {
      const guint8 *lp = ql + 64 * h + 32 * (t & 1);
      int shift = (t & 2) ? 4 : 0;
      for (int half = 0; half < 2; half++) {
        float dl = d * (float)scales[8 * h + 2 * t + half];
        for (int l = 16 * half; l < 16 * half + 16; l++) {
          int q = (((lp[l] >> shift) & 15) | (((qh[32 * h + l] >> (2 * t)) & 3) << 4)) - 32;
          y[128 * h + 32 * t + l] = dl * (float)q;
        }
      }
    }
}

/* i-quant sign rule (section 2): negate element j when (sign & kmask[j]) != 0. */
static inline float
iq_signed(float v, guint8 sign, int j)
{
  return (sign & kmask_iq2xs[j]) ? -v : v;
}

static void
dq_iq2_xxs(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  for (int g = 0; g < 8; g++) {
    guint32 A = wh_quant_rd32(x + 2 + 8 * g);
    guint32 B = wh_quant_rd32(x + 6 + 8 * g);
    float db = (d * (0.5f + (float)(B >> 28))) * 0.25f;
    for (int l = 0; l < 4; l++) {
      guint64 G = iq2xxs_grid[(A >> (8 * l)) & 255];
      guint8 sign = ksigns_iq2xs[(B >> (7 * l)) & 127];
      for (int j = 0; j < 8; j++)
        y[32 * g + 8 * l + j] = iq_signed(db * (float)wh_quant_grid_byte64(G, j), sign, j);
    }
  }
}

static void
dq_iq2_xs(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  const guint8 *qs = x + 2;
  const guint8 *scales = x + 66;
  for (int g = 0; g < 8; g++) {
    for (int l = 0; l < 4; l++) {
      guint16 v = wh_quant_rd16(qs + 2 * (4 * g + l));
      guint64 G = iq2xs_grid[v & 511];
      guint8 sign = ksigns_iq2xs[v >> 9];
      int s = l < 2 ? (scales[g] & 15) : (scales[g] >> 4);
      float db = (d * (0.5f + (float)s)) * 0.25f;
      for (int j = 0; j < 8; j++)
        y[32 * g + 8 * l + j] = iq_signed(db * (float)wh_quant_grid_byte64(G, j), sign, j);
    }
  }
}

static void
dq_iq2_s(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  const guint8 *qs = x + 2;
  const guint8 *signs = x + 34;
  const guint8 *qh = x + 66;
  const guint8 *scales = x + 74;
  for (int g = 0; g < 8; g++) {
    for (int l = 0; l < 4; l++) {
      int idx = qs[4 * g + l] | (((qh[g] >> (2 * l)) & 3) << 8);
      guint64 G = iq2s_grid[idx];
      guint8 sign = signs[4 * g + l];
      int s = l < 2 ? (scales[g] & 15) : (scales[g] >> 4);
      float db = (d * (0.5f + (float)s)) * 0.25f;
      for (int j = 0; j < 8; j++)
        y[32 * g + 8 * l + j] = iq_signed(db * (float)wh_quant_grid_byte64(G, j), sign, j);
    }
  }
}

static void
dq_iq3_xxs(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  const guint8 *qs = x + 2;
  for (int g = 0; g < 8; g++) {
    guint32 W = wh_quant_rd32(x + 66 + 4 * g);
    float db = (d * (0.5f + (float)(W >> 28))) * 0.5f;
    for (int l = 0; l < 4; l++) {
      guint8 sign = ksigns_iq2xs[(W >> (7 * l)) & 127];
      guint32 G1 = iq3xxs_grid[qs[8 * g + 2 * l]];
      guint32 G2 = iq3xxs_grid[qs[8 * g + 2 * l + 1]];
      for (int j = 0; j < 4; j++) {
        y[32 * g + 8 * l + j] = iq_signed(db * (float)wh_quant_grid_byte32(G1, j), sign, j);
        y[32 * g + 8 * l + j + 4] = iq_signed(db * (float)wh_quant_grid_byte32(G2, j), sign, j + 4);
      }
    }
  }
}

static void
dq_iq3_s(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  const guint8 *qs = x + 2;
  const guint8 *qh = x + 66;
  const guint8 *signs = x + 74;
  const guint8 *scales = x + 106;
  for (int g = 0; g < 8; g++) {
    int s = (g % 2) ? (scales[g / 2] >> 4) : (scales[g / 2] & 15);
    float db = d * (float)(1 + 2 * s);
    for (int l = 0; l < 4; l++) {
      int i1 = qs[8 * g + 2 * l] | (((qh[g] >> (2 * l)) & 1) << 8);
      int i2 = qs[8 * g + 2 * l + 1] | (((qh[g] >> (2 * l + 1)) & 1) << 8);
      guint32 G1 = iq3s_grid[i1];
      guint32 G2 = iq3s_grid[i2];
      guint8 sign = signs[4 * g + l];
      for (int j = 0; j < 4; j++) {
        y[32 * g + 8 * l + j] = iq_signed(db * (float)wh_quant_grid_byte32(G1, j), sign, j);
        y[32 * g + 8 * l + j + 4] = iq_signed(db * (float)wh_quant_grid_byte32(G2, j), sign, j + 4);
      }
    }
  }
}

static inline float
iq1_value(guint64 G, int j)
{
  return (float)(gint8)wh_quant_grid_byte64(G, j);
}

static void
dq_iq1_s(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  const guint8 *qs = x + 2;
  for (int g = 0; g < 8; g++) {
    guint16 H = wh_quant_rd16(x + 34 + 2 * g);
    float dl = d * (float)(2 * ((H >> 12) & 7) + 1);
    float delta = (H & 0x8000) ? -0.125f : 0.125f;
    for (int l = 0; l < 4; l++) {
      int idx = qs[4 * g + l] | (((H >> (3 * l)) & 7) << 8);
      guint64 G = iq1s_grid[idx];
      for (int j = 0; j < 8; j++)
        y[32 * g + 8 * l + j] = dl * (iq1_value(G, j) + delta);
    }
  }
}

static void
dq_iq1_m(const guint8 *x, float *y)
{
  const guint8 *qs = x;
  const guint8 *qh = x + 32;
  guint16 sc[4];
  for (int i = 0; i < 4; i++)
    sc[i] = wh_quant_rd16(x + 48 + 2 * i);
  guint16 D = (guint16)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) |
                        (sc[3] & 0xf000));
  float d = wh_fp16_to_fp32(D);
  for (int g = 0; g < 8; g++) {
    guint16 w = sc[g / 2];
    int o = 6 * (g % 2);
    float dl1 = d * (float)(2 * ((w >> o) & 7) + 1);
    float dl2 = d * (float)(2 * ((w >> (o + 3)) & 7) + 1);
    for (int l = 0; l < 4; l++) {
      guint8 Q = qh[2 * g + l / 2];
      int nib = (l % 2) ? (Q >> 4) : (Q & 15);
      int idx = qs[4 * g + l] | ((nib & 7) << 8);
      float delta = (nib & 8) ? -0.125f : 0.125f;
      float dl = l < 2 ? dl1 : dl2;
      guint64 G = iq1s_grid[idx];
      for (int j = 0; j < 8; j++)
        y[32 * g + 8 * l + j] = dl * (iq1_value(G, j) + delta);
    }
  }
}

static void
dq_iq4_nl(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  const guint8 *qs = x + 2;
  for (int j = 0; j < 16; j++) {
    y[j] = d * (float)kvalues_iq4nl[qs[j] & 15];
    y[j + 16] = d * (float)kvalues_iq4nl[qs[j] >> 4];
  }
}

static void
dq_iq4_xs(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  guint16 scales_h = wh_quant_rd16(x + 2);
  const guint8 *scales_l = x + 4;
  const guint8 *qs = x + 8;
  for (int b = 0; b < 8; b++) {
    int ls = ((scales_l[b / 2] >> (4 * (b % 2))) & 15) | (((scales_h >> (2 * b)) & 3) << 4);
    float dl = d * (float)(ls - 32);
    for (int j = 0; j < 16; j++) {
      y[32 * b + j] = dl * (float)kvalues_iq4nl[qs[16 * b + j] & 15];
      y[32 * b + j + 16] = dl * (float)kvalues_iq4nl[qs[16 * b + j] >> 4];
    }
  }
}

/* Base-3 digit n of a TQ1_0 byte (4.23). */
static inline int
tq1_trit(guint8 B, int n)
{
  static const guint8 pow3[5] = {1, 3, 9, 27, 81};
  guint8 q = (guint8)(B * pow3[n]);
  return (q * 3) >> 8;
}

static void
dq_tq1_0(const guint8 *x, float *y)
{
  const guint8 *qs = x;
  const guint8 *qh = x + 48;
  float d = wh_quant_rd_fp16(x + 52);
  for (int n = 0; n < 5; n++)
    for (int m = 0; m < 32; m++)
      y[32 * n + m] = (float)(tq1_trit(qs[m], n) - 1) * d;
  for (int n = 0; n < 5; n++)
    for (int m = 0; m < 16; m++)
      y[160 + 16 * n + m] = (float)(tq1_trit(qs[32 + m], n) - 1) * d;
  for (int n = 0; n < 4; n++)
    for (int m = 0; m < 4; m++)
      y[240 + 4 * n + m] = (float)(tq1_trit(qh[m], n) - 1) * d;
}

static void
dq_tq2_0(const guint8 *x, float *y)
{
  const guint8 *qs = x;
  float d = wh_quant_rd_fp16(x + 64);
  for (int c = 0; c < 2; c++)
    for (int n = 0; n < 4; n++)
      for (int m = 0; m < 32; m++)
        y[128 * c + 32 * n + m] = (float)(((qs[32 * c + m] >> (2 * n)) & 3) - 1) * d;
}

/* E8M0 exponent byte -> 2^(e-128) (1.4). */
static inline float
mxfp4_scale(guint8 e)
{
  if (e == 0)
    return bits_to_f32(0x00200000u);
  if (e == 1)
    return bits_to_f32(0x00400000u);
  return bits_to_f32((guint32)(e - 1) << 23);
}

static void
dq_mxfp4(const guint8 *x, float *y)
{
  float s = mxfp4_scale(x[0]);
  const guint8 *qs = x + 1;
  for (int j = 0; j < 16; j++) {
    y[j] = (float)kvalues_fp4[qs[j] & 15] * s;
    y[j + 16] = (float)kvalues_fp4[qs[j] >> 4] * s;
  }
}

/* UE4M3 byte -> halved scale (1.5). */
static inline float
ue4m3_half(guint8 v)
{
  if (v == 0x00 || v == 0x7f)
    return 0.0f;
  int E = (v >> 3) & 15, M = v & 7;
  float raw = E == 0 ? (float)M * 0x1p-9f : (1.0f + (float)M / 8.0f) * ldexpf(1.0f, E - 7);
  return raw * 0.5f;
}

static void
dq_nvfp4(const guint8 *x, float *y)
{
  const guint8 *qs = x + 4;
  for (int s = 0; s < 4; s++) {
    float u = ue4m3_half(x[s]);
    for (int j = 0; j < 8; j++) {
      y[16 * s + j] = (float)kvalues_fp4[qs[8 * s + j] & 15] * u;
      y[16 * s + 8 + j] = (float)kvalues_fp4[qs[8 * s + j] >> 4] * u;
    }
  }
}

static void
dq_q1_0(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  const guint8 *qs = x + 2;
  for (int e = 0; e < 128; e++)
    y[e] = ((qs[e / 8] >> (e % 8)) & 1) ? d : -d;
}

static void
dq_q2_0(const guint8 *x, float *y)
{
  float d = wh_quant_rd_fp16(x);
  const guint8 *qs = x + 2;
  for (int e = 0; e < 64; e++)
    y[e] = (float)(((qs[e / 4] >> (2 * (e % 4))) & 3) - 1) * d;
}

#if WH_QUANT_F16C
/* F16 row -> F32 with the F16C instruction (exact, like 1.1), 8 at a time. Groups holding a NaN
 * take the scalar path: the instruction sets the quiet bit, 1.1 keeps the payload as is. */
__attribute__((target("avx,f16c"))) static void
fp16_row_f16c(const guint8 *x, float *y, gint64 n)
{
  gint64 i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128((const __m128i *)(x + 2 * i));
    __m128i a = _mm_and_si128(h, _mm_set1_epi16(0x7fff));
    if (_mm_movemask_epi8(_mm_cmpgt_epi16(a, _mm_set1_epi16(0x7c00)))) {
      for (int j = 0; j < 8; j++)
        y[i + j] = wh_fp16_to_fp32(wh_quant_rd16(x + 2 * (i + j)));
      continue;
    }
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; i++)
    y[i] = wh_fp16_to_fp32(wh_quant_rd16(x + 2 * i));
}

/* F32 row -> F16 with F16C, round to nearest even (exactly 1.2, subnormals and overflow to inf
 * included); groups holding a NaN take the scalar path (1.2 wants 0x7E00 with the sign). */
__attribute__((target("avx,f16c"))) static void
fp16_from_f32_row_f16c(const float *x, guint8 *y, gint64 n)
{
  gint64 i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) {
      for (int j = 0; j < 8; j++)
        wh_quant_wr16(y + 2 * (i + j), wh_fp32_to_fp16(x[i + j]));
      continue;
    }
    _mm_storeu_si128((__m128i *)(y + 2 * i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; i++)
    wh_quant_wr16(y + 2 * i, wh_fp32_to_fp16(x[i]));
}

static gboolean
cpu_has_f16c(void)
{
  static gsize once = 0;
  static gboolean has = FALSE;
  if (g_once_init_enter(&once)) {
    has = __builtin_cpu_supports("avx") && wh_quant_cpu_f16c_bit();
    g_once_init_leave(&once, 1);
  }
  return has;
}
#endif

typedef void (*dq_block_func)(const guint8 *x, float *y);

static dq_block_func
dq_block_func_for(wh_type type)
{
  switch (type) {
  case WH_TYPE_Q4_0:
    return dq_q4_0;
  case WH_TYPE_Q4_1:
    return dq_q4_1;
  case WH_TYPE_Q5_0:
    return dq_q5_0;
  case WH_TYPE_Q5_1:
    return dq_q5_1;
  case WH_TYPE_Q8_0:
    return dq_q8_0;
  case WH_TYPE_Q8_1:
    return dq_q8_1;
  case WH_TYPE_Q2_K:
    return dq_q2_k;
  case WH_TYPE_Q3_K:
    return dq_q3_k;
  case WH_TYPE_Q4_K:
    return dq_q4_k;
  case WH_TYPE_Q5_K:
    return dq_q5_k;
  case WH_TYPE_Q6_K:
    return dq_q6_k;
  case WH_TYPE_Q8_K:
    return dq_q8_k;
  case WH_TYPE_IQ2_XXS:
    return dq_iq2_xxs;
  case WH_TYPE_IQ2_XS:
    return dq_iq2_xs;
  case WH_TYPE_IQ3_XXS:
    return dq_iq3_xxs;
  case WH_TYPE_IQ1_S:
    return dq_iq1_s;
  case WH_TYPE_IQ4_NL:
    return dq_iq4_nl;
  case WH_TYPE_IQ3_S:
    return dq_iq3_s;
  case WH_TYPE_IQ2_S:
    return dq_iq2_s;
  case WH_TYPE_IQ4_XS:
    return dq_iq4_xs;
  case WH_TYPE_IQ1_M:
    return dq_iq1_m;
  case WH_TYPE_TQ1_0:
    return dq_tq1_0;
  case WH_TYPE_TQ2_0:
    return dq_tq2_0;
  case WH_TYPE_MXFP4:
    return dq_mxfp4;
  case WH_TYPE_NVFP4:
    return dq_nvfp4;
  case WH_TYPE_Q1_0:
    return dq_q1_0;
  case WH_TYPE_Q2_0:
    return dq_q2_0;
  default:
    return NULL;
  }
}

void
wh_quant_dequantize_row(wh_type type, const void *src, float *dst, gint64 n)
{
  g_return_if_fail(wh_quant_type_can_dequantize(type));
  guint32 qk = wh_quant_block_size(type);
  g_return_if_fail(n >= 0 && n % qk == 0);
  g_return_if_fail(n == 0 || (src != NULL && dst != NULL));
  const guint8 *x = src;

  /* Plain types: one element per "block". */
  switch (type) {
  case WH_TYPE_F32:
    memcpy(dst, src, (gsize)n * sizeof(float));
    return;
  case WH_TYPE_F16:
#if WH_QUANT_F16C
    if (cpu_has_f16c()) {
      fp16_row_f16c(x, dst, n);
      return;
    }
#endif
    for (gint64 i = 0; i < n; i++)
      dst[i] = wh_fp16_to_fp32(wh_quant_rd16(x + 2 * i));
    return;
  case WH_TYPE_BF16:
    for (gint64 i = 0; i < n; i++)
      dst[i] = wh_bf16_to_fp32(wh_quant_rd16(x + 2 * i));
    return;
  default:
    break;
  }

  dq_block_func f = dq_block_func_for(type);
  guint32 bytes = wh_quant_block_bytes(type);
  for (gint64 b = 0; b < n / qk; b++)
    f(x + b * bytes, dst + b * qk);
}

/* ---- Validation (5.11) ---------------------------------------------------------------------- */

static inline gboolean
fp16_bad(const guint8 *p)
{
  return (wh_quant_rd16(p) & 0x7c00) == 0x7c00; /* exponent all ones: Inf or NaN */
}

/* Offsets of the fp16 scale fields of one block of @type; returns how many (0-2). */
static int
fp16_scale_fields(wh_type type, int *off)
{
  switch (type) {
  case WH_TYPE_Q4_0:
  case WH_TYPE_Q5_0:
  case WH_TYPE_Q8_0:
  case WH_TYPE_Q8_1:
  case WH_TYPE_IQ2_XXS:
  case WH_TYPE_IQ2_XS:
  case WH_TYPE_IQ2_S:
  case WH_TYPE_IQ3_XXS:
  case WH_TYPE_IQ3_S:
  case WH_TYPE_IQ1_S:
  case WH_TYPE_IQ4_NL:
  case WH_TYPE_IQ4_XS:
  case WH_TYPE_Q1_0:
  case WH_TYPE_Q2_0:
    off[0] = 0;
    return 1;
  case WH_TYPE_Q4_1:
  case WH_TYPE_Q5_1:
  case WH_TYPE_Q4_K:
  case WH_TYPE_Q5_K:
    off[0] = 0;
    off[1] = 2;
    return 2;
  case WH_TYPE_Q2_K:
    off[0] = 80;
    off[1] = 82;
    return 2;
  case WH_TYPE_Q3_K:
    off[0] = 108;
    return 1;
  case WH_TYPE_Q6_K:
    off[0] = 208;
    return 1;
  case WH_TYPE_TQ1_0:
    off[0] = 52;
    return 1;
  case WH_TYPE_TQ2_0:
    off[0] = 64;
    return 1;
  default:
    return 0;
  }
}

static gboolean
validate_block(wh_type type, const guint8 *x)
{
  int off[2];
  int nf = fp16_scale_fields(type, off);
  for (int i = 0; i < nf; i++)
    if (fp16_bad(x + off[i]))
      return FALSE;
  switch (type) {
  case WH_TYPE_F32:
  case WH_TYPE_Q8_K:
    return (wh_quant_rd32(x) & 0x7f800000u) != 0x7f800000u;
  case WH_TYPE_F64: {
    guint64 hi = wh_quant_rd32(x + 4);
    return (hi & 0x7ff00000u) != 0x7ff00000u;
  }
  case WH_TYPE_F16:
    return !fp16_bad(x);
  case WH_TYPE_BF16:
    return (wh_quant_rd16(x) & 0x7f80) != 0x7f80;
  case WH_TYPE_IQ1_M: {
    guint16 sc[4];
    for (int i = 0; i < 4; i++)
      sc[i] = wh_quant_rd16(x + 48 + 2 * i);
    guint16 D = (guint16)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) |
                          (sc[3] & 0xf000));
    return (D & 0x7c00) != 0x7c00;
  }
  case WH_TYPE_MXFP4:
    return x[0] != 255;
  default:
    return TRUE;
  }
}

gboolean
wh_quant_validate_row(wh_type type, const void *src, gint64 n, gint64 *bad_element)
{
  guint32 qk = wh_quant_block_size(type);
  if (qk == 0 || n < 0 || n % qk != 0) {
    if (bad_element)
      *bad_element = -1;
    return FALSE;
  }
  guint32 bytes = wh_quant_block_bytes(type);
  const guint8 *x = src;
  for (gint64 b = 0; b < n / qk; b++) {
    if (!validate_block(type, x + b * bytes)) {
      if (bad_element)
        *bad_element = b * qk;
      return FALSE;
    }
  }
  return TRUE;
}

void
wh_quant_fp32_to_fp16_row(const float *x, void *dst, gint64 n)
{
  guint8 *y = dst;
#if WH_QUANT_F16C
  if (cpu_has_f16c()) {
    fp16_from_f32_row_f16c(x, y, n);
    return;
  }
#endif
  for (gint64 i = 0; i < n; i++)
    wh_quant_wr16(y + 2 * i, wh_fp32_to_fp16(x[i]));
}
