/* quant-dot.c — vector dot products of weight rows with (quantized) activations.
 *
 * Implementation notes
 * --------------------
 * The forward pass multiplies a weight row of type W by an activation vector that was first
 * quantized the way the reference does (wh_quant_vec_dot_type(): Q8_0, Q8_1, Q8_K or plain F32),
 * so that the results land next to the reference's (8-bit activations are part of its
 * numerics). Block formats: block-formats.md section 4; activation quantizers: section 5.2/5.3.
 *
 * Portable path: integer products per (sub-)block, exactly as the formats suggest (grid
 * i-quants: integer sums per group, whose scales are odd integers over powers of two), one float
 * scale per block or super-block.
 *
 * AVX2 path (x86-64, picked once at run time with __builtin_cpu_supports): F32, F16 (F16C),
 * BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4, IQ4_XS, Q2_K..Q6_K and the grid i-quants
 * (TQ1_0/TQ2_0: portable integer kernels only). The Q8_K-activated kernels sum the integer
 * products of a whole super-block in vector registers and then apply exactly the portable
 * path's float arithmetic, so they return bit-identical results; the others accumulate per-lane
 * floats and differ from the portable path only by summation order (tests bound it).
 *
 * AVX-512 path (F/BW/VL + VNNI, cpuid at run time) for the types a Q4_K_M / Q8_0 decode spends
 * its time in: Q4_K and Q6_K in 512-bit registers (maddubs, then VNNI dpwssd against int16
 * scale vectors: same integers, same epilogue, bit-identical), Q8_0 and Q4_0 with 256-bit
 * dpbusd. wh_quant_vec_dot_at() runs a chosen level so tests compare every level the CPU has;
 * wh_quant_vec_dot_resolve() hands a matmul the kernel once instead of dispatching per row.
 * Cache-warm single-thread figures on the development machine (EPYC, Zen 4): Q4_K 16 GB/s of
 * weights, Q6_K 26, Q8_0 34, Q4_0 13 (AVX2: 14, 14, 30, 12).
 * Matmuls (decode: one activation row, thousands of weight rows; prompts: the same kernels
 * once per token over blocks of rows) use the 4-row AVX-512 Q4_K, Q6_K and Q8_0 kernels of
 * wh_quant_vec_dot_rows_resolve(): the activation row prepared once per call (Q4_K: half
 * swaps and paired bsums; Q8_0: -128 x sums of 4 for unsigned weights), scale unpacking and the
 * float epilogue shared by 4 rows, dpbusd + pack + one dpwssd per 128 weights, software
 * prefetch into L2 two row groups ahead; per row bit-identical to the single-row kernels.
 * On Zen 4 these are bound by the one 512-bit shuffle/multiply op per cycle (dpbusd, dpwssd,
 * pack, vpshufb, vpermw, shifts, lane moves; and/or/add go twice as fast), so a change is
 * judged by how many of those it removes. `whittle-cli bench kernels` measures them: Q4_K
 * ~28 GB/s cache-warm on one thread, Q6_K ~33, Q8_0 ~48; streaming from DRAM on 2 threads
 * 85-98% of a plain read of the same rows.
 *
 * NEON path (aarch64): Q4_0, Q8_0, Q4_K, Q6_K with SDOT when the target has it; compile-checked
 * only (no Arm hardware here).
 */
#include "config.h"

/* No implicit FMA contraction: the SIMD k-quant kernels share the portable float epilogue and
 * must round exactly like it. */
#include "quant/quant-simd.h"

#include "quant/quant-private.h"

#define WH_QUANT_X86 WH_SIMD_X86

/* 64-bit Arm: NEON is always there (compile-checked with aarch64-linux-gnu-gcc
 * -march=armv8.2-a; not run on Arm hardware here). */
#if defined(__aarch64__) && defined(__ARM_NEON) && !defined(WH_QUANT_NO_SIMD)
#define WH_QUANT_NEON 1
#include <arm_neon.h>
#else
#define WH_QUANT_NEON 0
#endif

/* ---- Activation types ----------------------------------------------------------------------- */

wh_type
wh_quant_vec_dot_type(wh_type wtype)
{
  switch (wtype) {
  case WH_TYPE_F32:
  case WH_TYPE_F16:
  case WH_TYPE_BF16:
    return WH_TYPE_F32;
  case WH_TYPE_Q4_0:
  case WH_TYPE_Q5_0:
  case WH_TYPE_Q8_0:
  case WH_TYPE_IQ4_NL:
  case WH_TYPE_MXFP4:
    return WH_TYPE_Q8_0;
  case WH_TYPE_Q4_1:
  case WH_TYPE_Q5_1:
    return WH_TYPE_Q8_1;
  case WH_TYPE_Q2_K:
  case WH_TYPE_Q3_K:
  case WH_TYPE_Q4_K:
  case WH_TYPE_Q5_K:
  case WH_TYPE_Q6_K:
  case WH_TYPE_IQ2_XXS:
  case WH_TYPE_IQ2_XS:
  case WH_TYPE_IQ2_S:
  case WH_TYPE_IQ3_XXS:
  case WH_TYPE_IQ3_S:
  case WH_TYPE_IQ1_S:
  case WH_TYPE_IQ1_M:
  case WH_TYPE_IQ4_XS:
  case WH_TYPE_TQ1_0:
  case WH_TYPE_TQ2_0:
    return WH_TYPE_Q8_K;
  default:
    return (wh_type)-1;
  }
}

/* Q8_0 / Q8_1 activations. Not the file quantizer of block-formats.md 5.2: the reference's CPU
 * path scales by id = 127 / amax (5.2: 1 / (amax / 127), an ulp off now and then) and rounds
 * half to even (5.2: half away from zero). Both matter more than it seems: activations still on
 * a quantization lattice (the token embedding row of a Q4_1/Q5_1 file right after RMSNorm) put
 * many x * id on or within an ulp of a rounding boundary. With the 5.2 rule the synth-llama-Q4_1
 * and -Q5_1 logits at position 0 differ from the reference by KLD 7e-4 / 2e-3; with this one by
 * 2e-13 (found with the reference logits as a black box). d = amax / 127 and
 * s = fp16(d * sum qs) as in 5.2. Q8_K activations follow 5.3 exactly (already a 1e-13 match). */
static void
quantize_act_q8(const float *x, void *dst, gint64 n, gboolean with_sum)
{
  const int bytes = with_sum ? 36 : 34;
  guint8 *y = dst;
  for (gint64 b = 0; b < n / 32; b++, x += 32, y += bytes) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
      amax = MAX(amax, fabsf(x[j]));
    float d = amax / 127.0f;
    float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    gint8 *qs = (gint8 *)(y + (with_sum ? 4 : 2));
    int sum = 0;
    for (int j = 0; j < 32; j++) {
      qs[j] = (gint8)wh_quant_nearest_int(x[j] * id); /* |x * id| <= 127: exact RNE */
      sum += qs[j];
    }
    wh_quant_wr16(y, wh_fp32_to_fp16(d));
    if (with_sum)
      wh_quant_wr16(y + 2, wh_fp32_to_fp16((float)sum * d));
  }
}

void
wh_quant_quantize_activations(wh_type act_type, const float *src, void *dst, gint64 n)
{
  g_return_if_fail(act_type == WH_TYPE_F32 || act_type == WH_TYPE_Q8_0 ||
                   act_type == WH_TYPE_Q8_1 || act_type == WH_TYPE_Q8_K);
  if (n == 0)
    return;
  if (act_type == WH_TYPE_F32) {
    memcpy(dst, src, (gsize)n * sizeof(float));
    return;
  }
  if (act_type == WH_TYPE_Q8_0 || act_type == WH_TYPE_Q8_1) {
    quantize_act_q8(src, dst, n, act_type == WH_TYPE_Q8_1);
    return;
  }
  g_autoptr(GError) error = NULL;
  if (wh_quant_quantize_rows(act_type, src, dst, 1, n, NULL, &error) == 0)
    g_critical("wh_quant_quantize_activations: %s", error->message);
}

/* ---- Portable kernels ----------------------------------------------------------------------- */
/* Each takes @nb blocks of the weight type at @x and the matching activation blocks at @y. */

static inline float
rd_f32(const guint8 *p)
{
  float f;
  guint32 u = wh_quant_rd32(p);
  memcpy(&f, &u, sizeof f);
  return f;
}

/* Q4_0 (18 B) x Q8_0 (34 B), 32 elements per block. */
static float
dot_q4_0_q8_0(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 18, y += 34) {
    const gint8 *q8 = (const gint8 *)(y + 2);
    int sumi = 0;
    for (int j = 0; j < 16; j++) {
      sumi += ((x[2 + j] & 15) - 8) * q8[j];
      sumi += ((x[2 + j] >> 4) - 8) * q8[j + 16];
    }
    sumf += (float)sumi * (wh_quant_rd_fp16(x) * wh_quant_rd_fp16(y));
  }
  return sumf;
}

/* Q5_0 (22 B) x Q8_0. */
static float
dot_q5_0_q8_0(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 22, y += 34) {
    const gint8 *q8 = (const gint8 *)(y + 2);
    guint32 qh = wh_quant_rd32(x + 2);
    int sumi = 0;
    for (int j = 0; j < 16; j++) {
      int q0 = (x[6 + j] & 15) | (int)(((qh >> j) & 1) << 4);
      int q1 = (x[6 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
      sumi += (q0 - 16) * q8[j] + (q1 - 16) * q8[j + 16];
    }
    sumf += (float)sumi * (wh_quant_rd_fp16(x) * wh_quant_rd_fp16(y));
  }
  return sumf;
}

/* Q8_0 x Q8_0. */
static float
dot_q8_0_q8_0(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 34, y += 34) {
    const gint8 *qx = (const gint8 *)(x + 2), *qy = (const gint8 *)(y + 2);
    int sumi = 0;
    for (int j = 0; j < 32; j++)
      sumi += qx[j] * qy[j];
    sumf += (float)sumi * (wh_quant_rd_fp16(x) * wh_quant_rd_fp16(y));
  }
  return sumf;
}

/* IQ4_NL (18 B) x Q8_0. */
static float
dot_iq4_nl_q8_0(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 18, y += 34) {
    const gint8 *q8 = (const gint8 *)(y + 2);
    int sumi = 0;
    for (int j = 0; j < 16; j++)
      sumi += kvalues_iq4nl[x[2 + j] & 15] * q8[j] + kvalues_iq4nl[x[2 + j] >> 4] * q8[j + 16];
    sumf += (float)sumi * (wh_quant_rd_fp16(x) * wh_quant_rd_fp16(y));
  }
  return sumf;
}

/* MXFP4 (17 B) x Q8_0: the E8M0 scale (halved, 1.4) times the int8 dot of doubled values. */
static float
dot_mxfp4_q8_0(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 17, y += 34) {
    const gint8 *q8 = (const gint8 *)(y + 2);
    int sumi = 0;
    for (int j = 0; j < 16; j++)
      sumi += kvalues_fp4[x[1 + j] & 15] * q8[j] + kvalues_fp4[x[1 + j] >> 4] * q8[j + 16];
    guint8 e = x[0];
    guint32 sb = e == 0 ? 0x00200000u : e == 1 ? 0x00400000u : (guint32)(e - 1) << 23;
    float s;
    memcpy(&s, &sb, sizeof s);
    sumf += (float)sumi * (s * wh_quant_rd_fp16(y));
  }
  return sumf;
}

/* Q4_1 (20 B) / Q5_1 (24 B) x Q8_1 (36 B): d*d8*sum(q*q8) + m*s8. */
static float
dot_q4_1_q8_1(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 20, y += 36) {
    const gint8 *q8 = (const gint8 *)(y + 4);
    int sumi = 0;
    for (int j = 0; j < 16; j++)
      sumi += (x[4 + j] & 15) * q8[j] + (x[4 + j] >> 4) * q8[j + 16];
    sumf += (float)sumi * (wh_quant_rd_fp16(x) * wh_quant_rd_fp16(y)) +
            wh_quant_rd_fp16(x + 2) * wh_quant_rd_fp16(y + 2);
  }
  return sumf;
}

static float
dot_q5_1_q8_1(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 24, y += 36) {
    const gint8 *q8 = (const gint8 *)(y + 4);
    guint32 qh = wh_quant_rd32(x + 4);
    int sumi = 0;
    for (int j = 0; j < 16; j++) {
      int q0 = (x[8 + j] & 15) | (int)(((qh >> j) & 1) << 4);
      int q1 = (x[8 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
      sumi += q0 * q8[j] + q1 * q8[j + 16];
    }
    sumf += (float)sumi * (wh_quant_rd_fp16(x) * wh_quant_rd_fp16(y)) +
            wh_quant_rd_fp16(x + 2) * wh_quant_rd_fp16(y + 2);
  }
  return sumf;
}

/* Q8_K activation block: d (f32) at 0, qs at 4, bsums (i16 x 16) at 260. */
#define Q8K_BYTES 292

static inline int
q8k_bsum(const guint8 *y, int k)
{
  return (gint16)wh_quant_rd16(y + 260 + 2 * k);
}

/* Q2_K (84 B) x Q8_K. Loops follow the layout (4.8): element e = 128h + 32s + l takes bits 2s of
 * qs[32h + l]; its 16-element sub-block is k = 8h + 2s + l/16. */
static float
dot_q2_k_q8_k(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 84, y += Q8K_BYTES) {
    const guint8 *sc = x, *qs = x + 16;
    const gint8 *q8 = (const gint8 *)(y + 4);
    int summs = 0, sumi = 0;
    for (int k = 0; k < 16; k++)
      summs += (sc[k] >> 4) * q8k_bsum(y, k);
    for (int h = 0; h < 2; h++)
      for (int s = 0; s < 4; s++)
        for (int half = 0; half < 2; half++) {
          const guint8 *q = qs + 32 * h + 16 * half;
          const gint8 *a = q8 + 128 * h + 32 * s + 16 * half;
          int acc = 0;
          for (int l = 0; l < 16; l++)
            acc += ((q[l] >> (2 * s)) & 3) * a[l];
          sumi += (sc[8 * h + 2 * s + half] & 15) * acc;
        }
    float dy = rd_f32(y);
    sumf +=
        dy * wh_quant_rd_fp16(x + 80) * (float)sumi - dy * wh_quant_rd_fp16(x + 82) * (float)summs;
  }
  return sumf;
}

/* Q3_K (110 B) x Q8_K. Same walk as Q2_K; the high bit of element 128h + 32s + l is bit 4h + s
 * of hmask[l] (4.9). */
static float
dot_q3_k_q8_k(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 110, y += Q8K_BYTES) {
    const guint8 *hmask = x, *qs = x + 32, *scales = x + 96;
    const gint8 *q8 = (const gint8 *)(y + 4);
    int sumi = 0;
    for (int h = 0; h < 2; h++)
      for (int s = 0; s < 4; s++)
        for (int half = 0; half < 2; half++) {
          int k = 8 * h + 2 * s + half;
          int low = k < 8 ? (scales[k] & 15) : (scales[k - 8] >> 4);
          int high = (scales[8 + (k % 4)] >> (2 * (k / 4))) & 3;
          int sc = (low | (high << 4)) - 32;
          int bit = 4 * h + s;
          int acc = 0;
          for (int l = 16 * half; l < 16 * half + 16; l++) {
            int lo = (qs[32 * h + l] >> (2 * s)) & 3;
            int q = ((hmask[l] >> bit) & 1) ? lo : lo - 4;
            acc += q * q8[128 * h + 32 * s + l];
          }
          sumi += sc * acc;
        }
    sumf += wh_quant_rd_fp16(x + 108) * rd_f32(y) * (float)sumi;
  }
  return sumf;
}

static inline void
k_scale_min(const guint8 *S, int j, int *sc, int *m)
{
  if (j < 4) {
    *sc = S[j] & 63;
    *m = S[j + 4] & 63;
  } else {
    *sc = (S[j + 4] & 15) | ((S[j - 4] >> 6) << 4);
    *m = (S[j + 4] >> 4) | ((S[j] >> 6) << 4);
  }
}

/* The min part of Q4_K/Q5_K: sum over sub-blocks of m_j * (sum of its 32 activations). */
static inline int
k_mins_dot(const guint8 *S, const guint8 *y)
{
  int summs = 0;
  for (int j = 0; j < 8; j++) {
    int sc, m;
    k_scale_min(S, j, &sc, &m);
    summs += m * (q8k_bsum(y, 2 * j) + q8k_bsum(y, 2 * j + 1));
  }
  return summs;
}

/* Float epilogue shared by the portable and AVX2 Q4_K/Q5_K kernels (keeps them identical). */
static inline float
k_affine_epilogue(const guint8 *x, const guint8 *y, int sumi, int summs)
{
  float dy = rd_f32(y);
  return dy * wh_quant_rd_fp16(x) * (float)sumi - dy * wh_quant_rd_fp16(x + 2) * (float)summs;
}

/* Integer part of one Q4_K super-block: sum_j sc_j * sum_l q * q8. */
static inline int
q4_k_block_sumi(const guint8 *x, const gint8 *q8)
{
  const guint8 *qs = x + 16;
  int sumi = 0;
  for (int j = 0; j < 8; j++) {
    int sc, m;
    k_scale_min(x + 4, j, &sc, &m);
    const guint8 *q = qs + 32 * (j / 2);
    int shift = (j % 2) * 4;
    int s = 0;
    for (int l = 0; l < 32; l++)
      s += ((q[l] >> shift) & 15) * q8[32 * j + l];
    sumi += sc * s;
  }
  return sumi;
}

static float
dot_q4_k_q8_k(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 144, y += Q8K_BYTES)
    sumf +=
        k_affine_epilogue(x, y, q4_k_block_sumi(x, (const gint8 *)(y + 4)), k_mins_dot(x + 4, y));
  return sumf;
}

static float
dot_q5_k_q8_k(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 176, y += Q8K_BYTES) {
    const guint8 *qh = x + 16, *qs = x + 48;
    const gint8 *q8 = (const gint8 *)(y + 4);
    int sumi = 0;
    for (int j = 0; j < 8; j++) {
      int sc, m;
      k_scale_min(x + 4, j, &sc, &m);
      const guint8 *q = qs + 32 * (j / 2);
      int shift = (j % 2) * 4;
      int s = 0;
      for (int l = 0; l < 32; l++)
        s += (((q[l] >> shift) & 15) | (((qh[l] >> j) & 1) << 4)) * q8[32 * j + l];
      sumi += sc * s;
    }
    sumf += k_affine_epilogue(x, y, sumi, k_mins_dot(x + 4, y));
  }
  return sumf;
}

/* Integer part of one Q6_K super-block: sum_k sc_k * sum (q - 32) * q8. Element
 * 128h + 32t + l (4.12): low nibble of ql[64h + 32(t&1) + l] (high nibble when t >= 2), high
 * 2 bits = bits 2t of qh[32h + l]; sub-block k = 8h + 2t + l/16. */
static inline int
q6_k_block_sumi(const guint8 *x, const gint8 *q8)
{
  const guint8 *ql = x, *qh = x + 128;
  const gint8 *scales = (const gint8 *)(x + 192);
  int sumi = 0;
  for (int h = 0; h < 2; h++)
    for (int t = 0; t < 4; t++) {
      const guint8 *lp = ql + 64 * h + 32 * (t & 1);
      int shift = (t & 2) ? 4 : 0;
      for (int half = 0; half < 2; half++) {
        int acc = 0;
        for (int l = 16 * half; l < 16 * half + 16; l++) {
          int q = (((lp[l] >> shift) & 15) | (((qh[32 * h + l] >> (2 * t)) & 3) << 4)) - 32;
          acc += q * q8[128 * h + 32 * t + l];
        }
        sumi += scales[8 * h + 2 * t + half] * acc;
      }
    }
  return sumi;
}

static float
dot_q6_k_q8_k(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 210, y += Q8K_BYTES)
    sumf +=
        wh_quant_rd_fp16(x + 208) * rd_f32(y) * (float)q6_k_block_sumi(x, (const gint8 *)(y + 4));
  return sumf;
}

/* IQ4_XS (136 B) x Q8_K. */
static float
dot_iq4_xs_q8_k(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 136, y += Q8K_BYTES) {
    guint16 scales_h = wh_quant_rd16(x + 2);
    const guint8 *scales_l = x + 4, *qs = x + 8;
    const gint8 *q8 = (const gint8 *)(y + 4);
    int sumi = 0;
    for (int sb = 0; sb < 8; sb++) {
      int ls = ((scales_l[sb / 2] >> (4 * (sb % 2))) & 15) | (((scales_h >> (2 * sb)) & 3) << 4);
      int s = 0;
      for (int j = 0; j < 16; j++)
        s += kvalues_iq4nl[qs[16 * sb + j] & 15] * q8[32 * sb + j] +
             kvalues_iq4nl[qs[16 * sb + j] >> 4] * q8[32 * sb + j + 16];
      sumi += (ls - 32) * s;
    }
    sumf += wh_quant_rd_fp16(x) * rd_f32(y) * (float)sumi;
  }
  return sumf;
}

/* TQ2_0 (66 B) x Q8_K: element 128c + 32n + m is bits 2n of qs[32c + m], value t - 1. */
static float
dot_tq2_0_q8_k(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 66, y += Q8K_BYTES) {
    const gint8 *q8 = (const gint8 *)(y + 4);
    int sumi = 0;
    for (int c = 0; c < 2; c++)
      for (int n = 0; n < 4; n++)
        for (int m = 0; m < 32; m++)
          sumi += (((x[32 * c + m] >> (2 * n)) & 3) - 1) * q8[128 * c + 32 * n + m];
    sumf += wh_quant_rd_fp16(x + 64) * rd_f32(y) * (float)sumi;
  }
  return sumf;
}

/* ---- Grid i-quants and TQ1_0 x Q8_K: integer sums per group, one float scale per super-block.
 * Group scales are odd integers over a power of two ((0.5 + s) / 4 = (2s + 1) / 8, ...), so the
 * integer total times one float constant is the exact dot of the dequantized values. */

/* Dot of 8 grid magnitudes (bytes of @G) with signs from @sign (section 2 rule) and 8 int8. */
static inline int
grid8_dot(guint64 G, guint8 sign, const gint8 *q8)
{
  int s = 0;
  for (int j = 0; j < 8; j++) {
    int v = (int)((G >> (8 * j)) & 255) * q8[j];
    s += (sign & kmask_iq2xs[j]) ? -v : v;
  }
  return s;
}

/* Same for two IQ3 grid entries of 4 magnitudes each. */
static inline int
grid4x2_dot(guint32 G1, guint32 G2, guint8 sign, const gint8 *q8)
{
  return grid8_dot((guint64)G1 | ((guint64)G2 << 32), sign, q8);
}

static float
dot_iq2_xxs_q8_k(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 66, y += Q8K_BYTES) {
    const gint8 *q8 = (const gint8 *)(y + 4);
    int total = 0;
    for (int g = 0; g < 8; g++) {
      guint32 A = wh_quant_rd32(x + 2 + 8 * g), B = wh_quant_rd32(x + 6 + 8 * g);
      int sumi = 0;
      for (int l = 0; l < 4; l++)
        sumi += grid8_dot(iq2xxs_grid[(A >> (8 * l)) & 255], ksigns_iq2xs[(B >> (7 * l)) & 127],
                          q8 + 32 * g + 8 * l);
      total += (2 * (int)(B >> 28) + 1) * sumi;
    }
    sumf += wh_quant_rd_fp16(x) * rd_f32(y) * 0.125f * (float)total;
  }
  return sumf;
}

static float
dot_iq2_xs_q8_k(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 74, y += Q8K_BYTES) {
    const gint8 *q8 = (const gint8 *)(y + 4);
    const guint8 *scales = x + 66;
    int total = 0;
    for (int g = 0; g < 8; g++)
      for (int l = 0; l < 4; l++) {
        guint16 v = wh_quant_rd16(x + 2 + 2 * (4 * g + l));
        int s = l < 2 ? (scales[g] & 15) : (scales[g] >> 4);
        total +=
            (2 * s + 1) * grid8_dot(iq2xs_grid[v & 511], ksigns_iq2xs[v >> 9], q8 + 32 * g + 8 * l);
      }
    sumf += wh_quant_rd_fp16(x) * rd_f32(y) * 0.125f * (float)total;
  }
  return sumf;
}

static float
dot_iq2_s_q8_k(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 82, y += Q8K_BYTES) {
    const gint8 *q8 = (const gint8 *)(y + 4);
    const guint8 *qs = x + 2, *signs = x + 34, *qh = x + 66, *scales = x + 74;
    int total = 0;
    for (int g = 0; g < 8; g++)
      for (int l = 0; l < 4; l++) {
        int idx = qs[4 * g + l] | (((qh[g] >> (2 * l)) & 3) << 8);
        int s = l < 2 ? (scales[g] & 15) : (scales[g] >> 4);
        total += (2 * s + 1) * grid8_dot(iq2s_grid[idx], signs[4 * g + l], q8 + 32 * g + 8 * l);
      }
    sumf += wh_quant_rd_fp16(x) * rd_f32(y) * 0.125f * (float)total;
  }
  return sumf;
}

static float
dot_iq3_xxs_q8_k(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 98, y += Q8K_BYTES) {
    const gint8 *q8 = (const gint8 *)(y + 4);
    const guint8 *qs = x + 2;
    int total = 0;
    for (int g = 0; g < 8; g++) {
      guint32 W = wh_quant_rd32(x + 66 + 4 * g);
      int sumi = 0;
      for (int l = 0; l < 4; l++)
        sumi += grid4x2_dot(iq3xxs_grid[qs[8 * g + 2 * l]], iq3xxs_grid[qs[8 * g + 2 * l + 1]],
                            ksigns_iq2xs[(W >> (7 * l)) & 127], q8 + 32 * g + 8 * l);
      total += (2 * (int)(W >> 28) + 1) * sumi;
    }
    sumf += wh_quant_rd_fp16(x) * rd_f32(y) * 0.25f * (float)total;
  }
  return sumf;
}

static float
dot_iq3_s_q8_k(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 110, y += Q8K_BYTES) {
    const gint8 *q8 = (const gint8 *)(y + 4);
    const guint8 *qs = x + 2, *qh = x + 66, *signs = x + 74, *scales = x + 106;
    int total = 0;
    for (int g = 0; g < 8; g++) {
      int s = (g % 2) ? (scales[g / 2] >> 4) : (scales[g / 2] & 15);
      int sumi = 0;
      for (int l = 0; l < 4; l++) {
        int i1 = qs[8 * g + 2 * l] | (((qh[g] >> (2 * l)) & 1) << 8);
        int i2 = qs[8 * g + 2 * l + 1] | (((qh[g] >> (2 * l + 1)) & 1) << 8);
        sumi += grid4x2_dot(iq3s_grid[i1], iq3s_grid[i2], signs[4 * g + l], q8 + 32 * g + 8 * l);
      }
      total += (1 + 2 * s) * sumi;
    }
    sumf += wh_quant_rd_fp16(x) * rd_f32(y) * (float)total;
  }
  return sumf;
}

/* Sum of 8 signed grid values (iq1s_grid bytes are int8) times 8 int8. */
static inline int
grid8s_dot(guint64 G, const gint8 *q8)
{
  int s = 0;
  for (int j = 0; j < 8; j++)
    s += (gint8)((G >> (8 * j)) & 255) * q8[j];
  return s;
}

/* IQ1_S: y = d (2s + 1) (G + delta), delta = +-1/8 per group of 32; the delta part uses the
 * activation sums: 8 * dot = (2s + 1) * (8 * sum G q8 +- sum q8). */
static float
dot_iq1_s_q8_k(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 50, y += Q8K_BYTES) {
    const gint8 *q8 = (const gint8 *)(y + 4);
    const guint8 *qs = x + 2;
    int total = 0;
    for (int g = 0; g < 8; g++) {
      guint16 H = wh_quant_rd16(x + 34 + 2 * g);
      int sumi = 0;
      for (int l = 0; l < 4; l++)
        sumi +=
            grid8s_dot(iq1s_grid[qs[4 * g + l] | (((H >> (3 * l)) & 7) << 8)], q8 + 32 * g + 8 * l);
      int sumq8 = q8k_bsum(y, 2 * g) + q8k_bsum(y, 2 * g + 1);
      total += (2 * ((H >> 12) & 7) + 1) * (8 * sumi + ((H & 0x8000) ? -sumq8 : sumq8));
    }
    sumf += wh_quant_rd_fp16(x) * rd_f32(y) * 0.125f * (float)total;
  }
  return sumf;
}

/* IQ1_M: as IQ1_S with a delta per 8 elements and two 3-bit scales per group. */
static float
dot_iq1_m_q8_k(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 56, y += Q8K_BYTES) {
    const gint8 *q8 = (const gint8 *)(y + 4);
    const guint8 *qs = x, *qh = x + 32;
    guint16 sc[4];
    for (int i = 0; i < 4; i++)
      sc[i] = wh_quant_rd16(x + 48 + 2 * i);
    guint16 D = (guint16)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) |
                          (sc[3] & 0xf000));
    int total = 0;
    for (int g = 0; g < 8; g++) {
      int o = 6 * (g % 2);
      for (int l = 0; l < 4; l++) {
        int s = l < 2 ? (sc[g / 2] >> o) & 7 : (sc[g / 2] >> (o + 3)) & 7;
        guint8 Q = qh[2 * g + l / 2];
        int nib = (l % 2) ? (Q >> 4) : (Q & 15);
        const gint8 *a = q8 + 32 * g + 8 * l;
        int sumq8 = 0;
        for (int j = 0; j < 8; j++)
          sumq8 += a[j];
        int dot = grid8s_dot(iq1s_grid[qs[4 * g + l] | ((nib & 7) << 8)], a);
        total += (2 * s + 1) * (8 * dot + ((nib & 8) ? -sumq8 : sumq8));
      }
    }
    sumf += wh_fp16_to_fp32(D) * rd_f32(y) * 0.125f * (float)total;
  }
  return sumf;
}

/* TQ1_0: base-3 digits (4.23) times int8, (t - 1) in {-1, 0, 1}. */
static float
dot_tq1_0_q8_k(const guint8 *x, const guint8 *y, gint64 nb)
{
  static const guint8 pow3[5] = {1, 3, 9, 27, 81};
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 54, y += Q8K_BYTES) {
    const gint8 *q8 = (const gint8 *)(y + 4);
    int sumi = 0;
    for (int n = 0; n < 5; n++) {
      for (int m = 0; m < 32; m++)
        sumi += ((((guint8)(x[m] * pow3[n]) * 3) >> 8) - 1) * q8[32 * n + m];
      for (int m = 0; m < 16; m++)
        sumi += ((((guint8)(x[32 + m] * pow3[n]) * 3) >> 8) - 1) * q8[160 + 16 * n + m];
    }
    for (int n = 0; n < 4; n++)
      for (int m = 0; m < 4; m++)
        sumi += ((((guint8)(x[48 + m] * pow3[n]) * 3) >> 8) - 1) * q8[240 + 4 * n + m];
    sumf += wh_quant_rd_fp16(x + 52) * rd_f32(y) * (float)sumi;
  }
  return sumf;
}

/* Any other Q8_K-activated type (grid i-quants, TQ1_0): dequantize a super-block, float dot. */
static float
dot_generic_q8_k(wh_type wtype, const guint8 *x, const guint8 *y, gint64 nb)
{
  float w[WH_QK_K];
  guint32 bytes = wh_quant_block_bytes(wtype);
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += bytes, y += Q8K_BYTES) {
    const gint8 *q8 = (const gint8 *)(y + 4);
    wh_quant_dequantize_row(wtype, x, w, WH_QK_K);
    float s = 0.0f;
    for (int j = 0; j < WH_QK_K; j++)
      s += w[j] * (float)q8[j];
    sumf += s * rd_f32(y);
  }
  return sumf;
}

/* F32 / F16 / BF16 weights x F32 activations. */
static float
dot_plain_f32(wh_type wtype, const guint8 *x, const float *a, gint64 n)
{
  float sumf = 0.0f;
  for (gint64 i = 0; i < n; i++) {
    float w;
    if (wtype == WH_TYPE_F32)
      w = rd_f32(x + 4 * i);
    else if (wtype == WH_TYPE_F16)
      w = wh_fp16_to_fp32(wh_quant_rd16(x + 2 * i));
    else
      w = wh_bf16_to_fp32(wh_quant_rd16(x + 2 * i));
    sumf += w * a[i];
  }
  return sumf;
}

float
wh_quant_vec_dot_portable(wh_type wtype, const void *wrow, const void *act, gint64 n)
{
  wh_type at = wh_quant_vec_dot_type(wtype);
  g_return_val_if_fail(at != (wh_type)-1, 0.0f);
  guint32 qk = wh_quant_block_size(wtype);
  g_return_val_if_fail(n >= 0 && n % qk == 0 && n % wh_quant_block_size(at) == 0, 0.0f);
  const guint8 *x = wrow, *y = act;
  gint64 nb = n / qk;
  switch (wtype) {
  case WH_TYPE_F32:
  case WH_TYPE_F16:
  case WH_TYPE_BF16:
    return dot_plain_f32(wtype, x, act, n);
  case WH_TYPE_Q4_0:
    return dot_q4_0_q8_0(x, y, nb);
  case WH_TYPE_Q5_0:
    return dot_q5_0_q8_0(x, y, nb);
  case WH_TYPE_Q8_0:
    return dot_q8_0_q8_0(x, y, nb);
  case WH_TYPE_IQ4_NL:
    return dot_iq4_nl_q8_0(x, y, nb);
  case WH_TYPE_MXFP4:
    return dot_mxfp4_q8_0(x, y, nb);
  case WH_TYPE_Q4_1:
    return dot_q4_1_q8_1(x, y, nb);
  case WH_TYPE_Q5_1:
    return dot_q5_1_q8_1(x, y, nb);
  case WH_TYPE_Q2_K:
    return dot_q2_k_q8_k(x, y, nb);
  case WH_TYPE_Q3_K:
    return dot_q3_k_q8_k(x, y, nb);
  case WH_TYPE_Q4_K:
    return dot_q4_k_q8_k(x, y, nb);
  case WH_TYPE_Q5_K:
    return dot_q5_k_q8_k(x, y, nb);
  case WH_TYPE_Q6_K:
    return dot_q6_k_q8_k(x, y, nb);
  case WH_TYPE_IQ4_XS:
    return dot_iq4_xs_q8_k(x, y, nb);
  case WH_TYPE_TQ2_0:
    return dot_tq2_0_q8_k(x, y, nb);
  case WH_TYPE_TQ1_0:
    return dot_tq1_0_q8_k(x, y, nb);
  case WH_TYPE_IQ2_XXS:
    return dot_iq2_xxs_q8_k(x, y, nb);
  case WH_TYPE_IQ2_XS:
    return dot_iq2_xs_q8_k(x, y, nb);
  case WH_TYPE_IQ2_S:
    return dot_iq2_s_q8_k(x, y, nb);
  case WH_TYPE_IQ3_XXS:
    return dot_iq3_xxs_q8_k(x, y, nb);
  case WH_TYPE_IQ3_S:
    return dot_iq3_s_q8_k(x, y, nb);
  case WH_TYPE_IQ1_S:
    return dot_iq1_s_q8_k(x, y, nb);
  case WH_TYPE_IQ1_M:
    return dot_iq1_m_q8_k(x, y, nb);
  default:
    return dot_generic_q8_k(wtype, x, y, nb);
  }
}

/* ---- AVX2 kernels --------------------------------------------------------------------------- */

#if WH_QUANT_X86
#define WH_AVX2 __attribute__((target("avx2,fma,f16c")))

WH_AVX2 static inline float
hsum_ps(__m256 v)
{
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

WH_AVX2 static inline int
hsum_epi32(__m256i v)
{
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

/* 32 int8 x 32 int8 -> 8 int32 partial sums (|a|,|b| <= 128 with b != -128: no saturation). */
WH_AVX2 static inline __m256i
dot_i8_i8(__m256i a, __m256i b)
{
  __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* 16 bytes of packed nibbles -> 32 bytes: low nibbles (elements 0-15), then high (16-31). */
WH_AVX2 static inline __m256i
unpack_nibbles32(const guint8 *p)
{
  __m128i v = _mm_loadu_si128((const __m128i *)p);
  __m128i lo = _mm_and_si128(v, _mm_set1_epi8(15));
  __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(15));
  return _mm256_set_m128i(hi, lo);
}

/* fp16 field at @p -> float with the F16C instruction (exact, same value as
 * wh_quant_rd_fp16(), without the function call per block). */
WH_AVX2 static inline float
fp16_f16c(const guint8 *p)
{
  return _cvtsh_ss(wh_quant_rd16(p));
}

/* The 12 scale bytes of a Q4_K/Q5_K super-block -> bytes 0-7 = sc_j, bytes 8-15 = m_j, the
 * same values as k_scale_min() (6 bits each). With a = S[0..3], b = S[4..7], c = S[8..11] as
 * 32-bit words, the four output words are a & 0x3f.., (c & 0x0f..) | top 2 bits of a's bytes
 * << 4, b & 0x3f.., (c >> 4 & 0x0f..) | top 2 bits of b's bytes << 4. All in vector registers
 * (a store + reload would stall store forwarding, general-purpose inserts are slow). Reads 16
 * bytes at @S: callers pass the scales inside a larger block. */
WH_AVX2 static inline __m128i
k_scales_unpack(const guint8 *S)
{
  const __m128i v = _mm_loadu_si128((const __m128i *)S);
  const __m128i acbc = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));
  const __m128i aabb = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0));
  const __m128i low = _mm_and_si128(_mm_srlv_epi32(acbc, _mm_set_epi32(4, 0, 0, 0)),
                                    _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
  const __m128i top =
      _mm_and_si128(_mm_srli_epi32(aabb, 2), _mm_set_epi32(0x30303030, 0, 0x30303030, 0));
  return _mm_or_si128(low, top);
}

/* The Q4_K/Q5_K block result from the integer partial sums @acc (4 int32 lanes summing to
 * sumi) and the unpacked scales @scm (k_scales_unpack: mins in bytes 8-15): sumi and the min
 * sum are reduced together and k_affine_epilogue() runs on [d, dmin] in one vector, with the
 * same products in the same order, so the result is bit-identical to it. */
WH_AVX2 static inline float
k_affine_epilogue_avx2(const guint8 *x, const guint8 *y, __m128i acc, __m128i scm)
{
  const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)(y + 260)),
                                    _mm_loadu_si128((const __m128i *)(y + 276)));
  const __m128i p = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(scm, 8)), bs);
  __m128i r = _mm_hadd_epi32(acc, p);
  r = _mm_hadd_epi32(r, r); /* [sumi, summs, sumi, summs] */
  const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128((int)wh_quant_rd32(x))); /* d, dmin */
  const __m128 t = _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(rd_f32(y)), dd), _mm_cvtepi32_ps(r));
  return _mm_cvtss_f32(t) - _mm_cvtss_f32(_mm_shuffle_ps(t, t, 1));
}

/* Scale j of @sc16 (8 int16 broadcast to both 128-bit halves) in every int16 lane. */
#define WH_SCALE16(sc16, j)                                                                        \
  _mm256_shuffle_epi8((sc16), _mm256_set1_epi16((short)(0x0100 + 0x0202 * (j))))

/* Q4_0 x Q8_0: per block, int8 products -> 8 int32 lanes -> float, scaled by d4*d8. */
WH_AVX2 static float
dot_q4_0_q8_0_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  /* two blocks per step into two accumulators: the fmadd chains overlap */
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const __m256i off = _mm256_set1_epi8(8);
  gint64 b = 0;
  for (; b + 2 <= nb; b += 2, x += 36, y += 68) {
    __m256i qx0 = _mm256_sub_epi8(unpack_nibbles32(x + 2), off);
    __m256i qx1 = _mm256_sub_epi8(unpack_nibbles32(x + 20), off);
    __m256i qy0 = _mm256_loadu_si256((const __m256i *)(y + 2));
    __m256i qy1 = _mm256_loadu_si256((const __m256i *)(y + 36));
    __m256 d0 = _mm256_set1_ps(fp16_f16c(x) * fp16_f16c(y));
    __m256 d1 = _mm256_set1_ps(fp16_f16c(x + 18) * fp16_f16c(y + 34));
    acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(dot_i8_i8(qx0, qy0)), acc0);
    acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(dot_i8_i8(qx1, qy1)), acc1);
  }
  for (; b < nb; b++, x += 18, y += 34) {
    __m256i qx = _mm256_sub_epi8(unpack_nibbles32(x + 2), off);
    __m256i qy = _mm256_loadu_si256((const __m256i *)(y + 2));
    __m256 d = _mm256_set1_ps(fp16_f16c(x) * fp16_f16c(y));
    acc0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_i8(qx, qy)), acc0);
  }
  return hsum_ps(_mm256_add_ps(acc0, acc1));
}

WH_AVX2 static float
dot_q8_0_q8_0_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  /* two blocks per step into two accumulators: the fmadd chains overlap */
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  gint64 b = 0;
  for (; b + 2 <= nb; b += 2, x += 68, y += 68) {
    __m256i qx0 = _mm256_loadu_si256((const __m256i *)(x + 2));
    __m256i qx1 = _mm256_loadu_si256((const __m256i *)(x + 36));
    __m256i qy0 = _mm256_loadu_si256((const __m256i *)(y + 2));
    __m256i qy1 = _mm256_loadu_si256((const __m256i *)(y + 36));
    __m256 d0 = _mm256_set1_ps(fp16_f16c(x) * fp16_f16c(y));
    __m256 d1 = _mm256_set1_ps(fp16_f16c(x + 34) * fp16_f16c(y + 34));
    acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(dot_i8_i8(qx0, qy0)), acc0);
    acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(dot_i8_i8(qx1, qy1)), acc1);
  }
  for (; b < nb; b++, x += 34, y += 34) {
    __m256i qx = _mm256_loadu_si256((const __m256i *)(x + 2));
    __m256i qy = _mm256_loadu_si256((const __m256i *)(y + 2));
    __m256 d = _mm256_set1_ps(fp16_f16c(x) * fp16_f16c(y));
    acc0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_i8(qx, qy)), acc0);
  }
  return hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* Q4_K x Q8_K: per super-block, 4 chunks of 64 elements = 32 bytes of qs (low nibbles:
 * sub-block 2c, high: 2c+1); unsigned 4-bit x int8 via maddubs, scaled per sub-block with madd.
 * The integer sum equals q4_k_block_sumi(), then the portable float epilogue. */
WH_AVX2 static float
dot_q4_k_q8_k_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  const __m256i m4 = _mm256_set1_epi8(15);
  for (gint64 b = 0; b < nb; b++, x += 144, y += Q8K_BYTES) {
    const guint8 *qs = x + 16;
    const guint8 *q8 = y + 4;
    /* software prefetch ~1.5 KiB ahead, as in the AVX-512 kernel */
    _mm_prefetch((const char *)(x + 1536), _MM_HINT_T0);
    _mm_prefetch((const char *)(x + 1600), _MM_HINT_T0);
    _mm_prefetch((const char *)(x + 1664), _MM_HINT_T0);
    const __m128i scm = k_scales_unpack(x + 4);
    const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scm));
    __m256i acc = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
      __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
      __m256i lo = _mm256_and_si256(q, m4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      __m256i y0 = _mm256_loadu_si256((const __m256i *)(q8 + 64 * c));
      __m256i y1 = _mm256_loadu_si256((const __m256i *)(q8 + 64 * c + 32));
      __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), WH_SCALE16(sc16, 2 * c));
      __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), WH_SCALE16(sc16, 2 * c + 1));
      acc = _mm256_add_epi32(acc, _mm256_add_epi32(p0, p1));
    }
    sumf += k_affine_epilogue_avx2(
        x, y, _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1)), scm);
  }
  return sumf;
}

/* Q6_K x Q8_K: chunks (h, t) of 32 elements; unsigned 6-bit code u = q + 32 via maddubs, the
 * -32 offset folded in through the bsums: sum (u - 32) q8 = sum u q8 - 32 * bsum. Two sub-blocks
 * of 16 per chunk, scaled with one madd (low/high 128-bit halves). Same integers as
 * q6_k_block_sumi(), same float epilogue. */
WH_AVX2 static float
dot_q6_k_q8_k_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
  for (gint64 b = 0; b < nb; b++, x += 210, y += Q8K_BYTES) {
    const guint8 *ql = x, *qh = x + 128;
    const guint8 *q8 = y + 4;
    /* the 16 int8 scales as int16: sub-blocks 0-7 and 8-15, each broadcast to both halves */
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)(x + 192));
    const __m128i sclo = _mm_cvtepi8_epi16(sc8), schi = _mm_cvtepi8_epi16(_mm_srli_si128(sc8, 8));
    __m256i acc = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
      const __m256i sc16 = _mm256_broadcastsi128_si256(h ? schi : sclo);
      __m256i vqh = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
      __m256i ql0 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h));
      __m256i ql1 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h + 32));
      for (int t = 0; t < 4; t++) {
        __m256i src = (t & 1) ? ql1 : ql0;
        __m256i low =
            (t & 2) ? _mm256_and_si256(_mm256_srli_epi16(src, 4), m4) : _mm256_and_si256(src, m4);
        /* bits 2t, 2t+1 of qh moved to bits 4, 5 */
        __m256i high = _mm256_and_si256(t < 2 ? _mm256_slli_epi16(vqh, 4 - 2 * t)
                                              : _mm256_srli_epi16(vqh, 2 * t - 4),
                                        _mm256_slli_epi16(m2, 4));
        __m256i u = _mm256_or_si256(low, high);
        __m256i vy = _mm256_loadu_si256((const __m256i *)(q8 + 128 * h + 32 * t));
        /* sub-blocks 2t (low 128 bits) and 2t+1 (high) of this half */
        __m256i sc =
            _mm256_permute2x128_si256(WH_SCALE16(sc16, 2 * t), WH_SCALE16(sc16, 2 * t + 1), 0x30);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, vy), sc));
      }
    }
    /* offset = sum_k scale_k * bsum_k */
    __m128i o = _mm_add_epi32(_mm_madd_epi16(sclo, _mm_loadu_si128((const __m128i *)(y + 260))),
                              _mm_madd_epi16(schi, _mm_loadu_si128((const __m128i *)(y + 276))));
    o = _mm_add_epi32(o, _mm_shuffle_epi32(o, _MM_SHUFFLE(1, 0, 3, 2)));
    o = _mm_add_epi32(o, _mm_shuffle_epi32(o, _MM_SHUFFLE(2, 3, 0, 1)));
    int sumi = hsum_epi32(acc) - 32 * _mm_cvtsi128_si32(o);
    sumf += fp16_f16c(x + 208) * rd_f32(y) * (float)sumi;
  }
  return sumf;
}

/* 32 bits at @p -> 32 bytes, byte i = 0xFF when bit i is set, else 0 (the 5th bits of
 * Q5_0/Q5_1: bit e of qh belongs to element e). */
WH_AVX2 static inline __m256i
bytes_from_bits32(const guint8 *p)
{
  guint32 bits32 = wh_quant_rd32(p);
  /* byte i of the result starts as byte i/8 of bits32 ... */
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                         0x0101010101010101LL, 0x0000000000000000LL);
  __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits32), shuf);
  /* ... then every bit but bit i%8 is forced on: all ones iff that bit was set */
  bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfeLL));
  return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

/* 32 unsigned bytes x 32 int8 -> 8 int32 partial sums (u <= 127 -> no saturation). */
WH_AVX2 static inline __m256i
dot_u8_i8(__m256i u, __m256i b)
{
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, b), _mm256_set1_epi16(1));
}

/* Q5_0 x Q8_0: code = nibble | 16 * bit, minus 16. */
WH_AVX2 static float
dot_q5_0_q8_0_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  __m256 acc = _mm256_setzero_ps();
  for (gint64 b = 0; b < nb; b++, x += 22, y += 34) {
    __m256i hi = _mm256_and_si256(bytes_from_bits32(x + 2), _mm256_set1_epi8(16));
    __m256i qx =
        _mm256_sub_epi8(_mm256_or_si256(unpack_nibbles32(x + 6), hi), _mm256_set1_epi8(16));
    __m256i qy = _mm256_loadu_si256((const __m256i *)(y + 2));
    __m256 d = _mm256_set1_ps(wh_quant_rd_fp16(x) * wh_quant_rd_fp16(y));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_i8(qx, qy)), acc);
  }
  return hsum_ps(acc);
}

/* Q4_1 / Q5_1 x Q8_1: d*d8 * sum(q*q8) in vector lanes, m*s8 summed apart. */
WH_AVX2 static float
dot_q4_1_q8_1_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  __m256 acc = _mm256_setzero_ps();
  float summs = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 20, y += 36) {
    __m256i qy = _mm256_loadu_si256((const __m256i *)(y + 4));
    __m256 d = _mm256_set1_ps(wh_quant_rd_fp16(x) * wh_quant_rd_fp16(y));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8_i8(unpack_nibbles32(x + 4), qy)), acc);
    summs += wh_quant_rd_fp16(x + 2) * wh_quant_rd_fp16(y + 2);
  }
  return hsum_ps(acc) + summs;
}

WH_AVX2 static float
dot_q5_1_q8_1_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  __m256 acc = _mm256_setzero_ps();
  float summs = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 24, y += 36) {
    __m256i hi = _mm256_and_si256(bytes_from_bits32(x + 4), _mm256_set1_epi8(16));
    __m256i qx = _mm256_or_si256(unpack_nibbles32(x + 8), hi);
    __m256i qy = _mm256_loadu_si256((const __m256i *)(y + 4));
    __m256 d = _mm256_set1_ps(wh_quant_rd_fp16(x) * wh_quant_rd_fp16(y));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8_i8(qx, qy)), acc);
    summs += wh_quant_rd_fp16(x + 2) * wh_quant_rd_fp16(y + 2);
  }
  return hsum_ps(acc) + summs;
}

/* kvalues_iq4nl in both 128-bit lanes, for _mm256_shuffle_epi8 lookups of 4-bit codes. */
WH_AVX2 static inline __m256i
iq4nl_table(void)
{
  __m128i t = _mm_loadu_si128((const __m128i *)kvalues_iq4nl);
  return _mm256_set_m128i(t, t);
}

/* IQ4_NL x Q8_0: codes looked up with a byte shuffle, then as Q8_0. */
WH_AVX2 static float
dot_iq4_nl_q8_0_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  const __m256i table = iq4nl_table();
  __m256 acc = _mm256_setzero_ps();
  for (gint64 b = 0; b < nb; b++, x += 18, y += 34) {
    __m256i qx = _mm256_shuffle_epi8(table, unpack_nibbles32(x + 2));
    __m256i qy = _mm256_loadu_si256((const __m256i *)(y + 2));
    __m256 d = _mm256_set1_ps(wh_quant_rd_fp16(x) * wh_quant_rd_fp16(y));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_i8(qx, qy)), acc);
  }
  return hsum_ps(acc);
}

/* MXFP4 x Q8_0: doubled E2M1 values looked up like IQ4_NL, scaled by the halved E8M0 power. */
WH_AVX2 static float
dot_mxfp4_q8_0_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  __m128i t = _mm_loadu_si128((const __m128i *)kvalues_fp4);
  const __m256i table = _mm256_set_m128i(t, t);
  __m256 acc = _mm256_setzero_ps();
  for (gint64 b = 0; b < nb; b++, x += 17, y += 34) {
    __m256i qx = _mm256_shuffle_epi8(table, unpack_nibbles32(x + 1));
    __m256i qy = _mm256_loadu_si256((const __m256i *)(y + 2));
    guint8 e = x[0];
    guint32 sb = e == 0 ? 0x00200000u : e == 1 ? 0x00400000u : (guint32)(e - 1) << 23;
    float s;
    memcpy(&s, &sb, sizeof s);
    __m256 d = _mm256_set1_ps(s * wh_quant_rd_fp16(y));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_i8(qx, qy)), acc);
  }
  return hsum_ps(acc);
}

/* IQ4_XS x Q8_K: per sub-block of 32 (16 bytes of codes), int products scaled by ls - 32 and
 * summed as integers; same float epilogue as the portable kernel (bit-identical). */
WH_AVX2 static float
dot_iq4_xs_q8_k_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  const __m256i table = iq4nl_table();
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 136, y += Q8K_BYTES) {
    guint16 scales_h = wh_quant_rd16(x + 2);
    const guint8 *scales_l = x + 4, *qs = x + 8, *q8 = y + 4;
    __m256i acc = _mm256_setzero_si256();
    for (int sb = 0; sb < 8; sb++) {
      int ls = ((scales_l[sb / 2] >> (4 * (sb % 2))) & 15) | (((scales_h >> (2 * sb)) & 3) << 4);
      __m256i qx = _mm256_shuffle_epi8(table, unpack_nibbles32(qs + 16 * sb));
      __m256i qy = _mm256_loadu_si256((const __m256i *)(q8 + 32 * sb));
      acc =
          _mm256_add_epi32(acc, _mm256_mullo_epi32(dot_i8_i8(qx, qy), _mm256_set1_epi32(ls - 32)));
    }
    sumf += wh_quant_rd_fp16(x) * rd_f32(y) * (float)hsum_epi32(acc);
  }
  return sumf;
}

/* Q5_K x Q8_K: as Q4_K, plus the 5th bit of sub-block j = bit j of qh[l]. */
WH_AVX2 static float
dot_q5_k_q8_k_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  const __m256i m4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
  for (gint64 b = 0; b < nb; b++, x += 176, y += Q8K_BYTES) {
    const guint8 *qs = x + 48;
    const guint8 *q8 = y + 4;
    __m256i vqh = _mm256_loadu_si256((const __m256i *)(x + 16));
    __m256i acc = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
      int sc0, sc1, m;
      k_scale_min(x + 4, 2 * c, &sc0, &m);
      k_scale_min(x + 4, 2 * c + 1, &sc1, &m);
      __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
      __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(vqh, 2 * c), one);
      __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(vqh, 2 * c + 1), one);
      __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_slli_epi16(h0, 4));
      __m256i hi =
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), _mm256_slli_epi16(h1, 4));
      __m256i y0 = _mm256_loadu_si256((const __m256i *)(q8 + 64 * c));
      __m256i y1 = _mm256_loadu_si256((const __m256i *)(q8 + 64 * c + 32));
      __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), _mm256_set1_epi16((short)sc0));
      __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), _mm256_set1_epi16((short)sc1));
      acc = _mm256_add_epi32(acc, _mm256_add_epi32(p0, p1));
    }
    sumf += k_affine_epilogue(x, y, hsum_epi32(acc), k_mins_dot(x + 4, y));
  }
  return sumf;
}

/* Q2_K x Q8_K: for each half h (32 bytes of qs) and shift s, the 2-bit codes of elements
 * 128h + 32s + l; the two 16-element sub-blocks 8h + 2s (+1) are the 128-bit halves, scaled with
 * one madd. Same integers and float epilogue as dot_q2_k_q8_k(): bit-identical. */
WH_AVX2 static float
dot_q2_k_q8_k_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  const __m256i m3 = _mm256_set1_epi8(3);
  for (gint64 b = 0; b < nb; b++, x += 84, y += Q8K_BYTES) {
    const guint8 *sc = x, *qs = x + 16, *q8 = y + 4;
    __m256i acc = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
      __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
      for (int s = 0; s < 4; s++) {
        __m256i u = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3);
        __m256i vy = _mm256_loadu_si256((const __m256i *)(q8 + 128 * h + 32 * s));
        int k = 8 * h + 2 * s;
        __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[k + 1] & 15), _mm_set1_epi16(sc[k] & 15));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, vy), scv));
      }
    }
    int summs = 0;
    for (int k = 0; k < 16; k++)
      summs += (sc[k] >> 4) * q8k_bsum(y, k);
    float dy = rd_f32(y);
    sumf += dy * wh_quant_rd_fp16(x + 80) * (float)hsum_epi32(acc) -
            dy * wh_quant_rd_fp16(x + 82) * (float)summs;
  }
  return sumf;
}

/* Q3_K x Q8_K: unsigned u = low 2 bits + 4 * high bit (0..7) = q + 4; the -4 is folded in
 * through the bsums: sum q*q8 = sum u*q8 - 4 * bsum. Walk as Q2_K; the high bit of element
 * 128h + 32s + l is bit 4h + s of hmask[l]. Bit-identical to dot_q3_k_q8_k(). */
WH_AVX2 static float
dot_q3_k_q8_k_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
  for (gint64 b = 0; b < nb; b++, x += 110, y += Q8K_BYTES) {
    const guint8 *qs = x + 32, *scales = x + 96, *q8 = y + 4;
    int sc[16];
    int offset = 0;
    for (int k = 0; k < 16; k++) {
      int low = k < 8 ? (scales[k] & 15) : (scales[k - 8] >> 4);
      int high = (scales[8 + (k % 4)] >> (2 * (k / 4))) & 3;
      sc[k] = (low | (high << 4)) - 32;
      offset += sc[k] * q8k_bsum(y, k);
    }
    __m256i hm = _mm256_loadu_si256((const __m256i *)x);
    __m256i acc = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
      __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
      for (int s = 0; s < 4; s++) {
        __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3);
        __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + s), one);
        __m256i u = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 2));
        __m256i vy = _mm256_loadu_si256((const __m256i *)(q8 + 128 * h + 32 * s));
        int k = 8 * h + 2 * s;
        __m256i scv =
            _mm256_set_m128i(_mm_set1_epi16((short)sc[k + 1]), _mm_set1_epi16((short)sc[k]));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, vy), scv));
      }
    }
    int sumi = hsum_epi32(acc) - 4 * offset;
    sumf += wh_quant_rd_fp16(x + 108) * rd_f32(y) * (float)sumi;
  }
  return sumf;
}

/* ---- Grid i-quants: 32 elements (4 sub-groups of 8) per vector. The 32 magnitudes come from 4
 * (or 8) grid entries, the signs from a 32-bit word (bit 8l + j = sign of element j of sub-group
 * l, since kmask_iq2xs[j] = 1 << j): v = (g ^ m) - m with m = 0xFF where negative. Integer
 * totals and the float epilogue are those of the portable kernels: bit-identical results. */

/* Signed magnitudes of 32 elements: grid bytes @g with the signs of @signs32. */
WH_AVX2 static inline __m256i
apply_signs32(__m256i g, guint32 signs32)
{
  guint8 b[4];
  wh_quant_wr32(b, signs32);
  __m256i m = bytes_from_bits32(b);
  return _mm256_sub_epi8(_mm256_xor_si256(g, m), m);
}

/* 4 sign indices (7 bits each) -> the 4 expanded sign bytes as one word. */
static inline guint32
ksigns4(guint32 W)
{
  return (guint32)ksigns_iq2xs[W & 127] | ((guint32)ksigns_iq2xs[(W >> 7) & 127] << 8) |
         ((guint32)ksigns_iq2xs[(W >> 14) & 127] << 16) |
         ((guint32)ksigns_iq2xs[(W >> 21) & 127] << 24);
}

WH_AVX2 static float
dot_iq2_xxs_q8_k_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 66, y += Q8K_BYTES) {
    const guint8 *q8 = y + 4;
    __m256i acc = _mm256_setzero_si256();
    for (int g = 0; g < 8; g++) {
      guint32 A = wh_quant_rd32(x + 2 + 8 * g), B = wh_quant_rd32(x + 6 + 8 * g);
      __m256i gv = _mm256_set_epi64x(
          (long long)iq2xxs_grid[A >> 24], (long long)iq2xxs_grid[(A >> 16) & 255],
          (long long)iq2xxs_grid[(A >> 8) & 255], (long long)iq2xxs_grid[A & 255]);
      __m256i v = apply_signs32(gv, ksigns4(B));
      __m256i p = dot_i8_i8(v, _mm256_loadu_si256((const __m256i *)(q8 + 32 * g)));
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(p, _mm256_set1_epi32(2 * (int)(B >> 28) + 1)));
    }
    sumf += wh_quant_rd_fp16(x) * rd_f32(y) * 0.125f * (float)hsum_epi32(acc);
  }
  return sumf;
}

/* Scale factors (2s + 1) of the two halves of a group: low nibble for elements 0-15 (int32
 * lanes 0-3), high nibble for 16-31 (lanes 4-7). */
WH_AVX2 static inline __m256i
half_scales(guint8 sc)
{
  return _mm256_set_m128i(_mm_set1_epi32(2 * (sc >> 4) + 1), _mm_set1_epi32(2 * (sc & 15) + 1));
}

WH_AVX2 static float
dot_iq2_xs_q8_k_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 74, y += Q8K_BYTES) {
    const guint8 *q8 = y + 4, *scales = x + 66;
    __m256i acc = _mm256_setzero_si256();
    for (int g = 0; g < 8; g++) {
      guint16 v[4];
      guint32 signs = 0;
      for (int l = 0; l < 4; l++) {
        v[l] = wh_quant_rd16(x + 2 + 2 * (4 * g + l));
        signs |= (guint32)ksigns_iq2xs[v[l] >> 9] << (8 * l);
      }
      __m256i gv =
          _mm256_set_epi64x((long long)iq2xs_grid[v[3] & 511], (long long)iq2xs_grid[v[2] & 511],
                            (long long)iq2xs_grid[v[1] & 511], (long long)iq2xs_grid[v[0] & 511]);
      __m256i p =
          dot_i8_i8(apply_signs32(gv, signs), _mm256_loadu_si256((const __m256i *)(q8 + 32 * g)));
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(p, half_scales(scales[g])));
    }
    sumf += wh_quant_rd_fp16(x) * rd_f32(y) * 0.125f * (float)hsum_epi32(acc);
  }
  return sumf;
}

WH_AVX2 static float
dot_iq2_s_q8_k_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 82, y += Q8K_BYTES) {
    const guint8 *q8 = y + 4, *qs = x + 2, *signs = x + 34, *qh = x + 66, *scales = x + 74;
    __m256i acc = _mm256_setzero_si256();
    for (int g = 0; g < 8; g++) {
      int idx[4];
      for (int l = 0; l < 4; l++)
        idx[l] = qs[4 * g + l] | (((qh[g] >> (2 * l)) & 3) << 8);
      __m256i gv = _mm256_set_epi64x((long long)iq2s_grid[idx[3]], (long long)iq2s_grid[idx[2]],
                                     (long long)iq2s_grid[idx[1]], (long long)iq2s_grid[idx[0]]);
      __m256i p = dot_i8_i8(apply_signs32(gv, wh_quant_rd32(signs + 4 * g)),
                            _mm256_loadu_si256((const __m256i *)(q8 + 32 * g)));
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(p, half_scales(scales[g])));
    }
    sumf += wh_quant_rd_fp16(x) * rd_f32(y) * 0.125f * (float)hsum_epi32(acc);
  }
  return sumf;
}

WH_AVX2 static float
dot_iq3_xxs_q8_k_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 98, y += Q8K_BYTES) {
    const guint8 *q8 = y + 4, *qs = x + 2;
    __m256i acc = _mm256_setzero_si256();
    for (int g = 0; g < 8; g++) {
      guint32 W = wh_quant_rd32(x + 66 + 4 * g);
      const guint8 *q = qs + 8 * g;
      __m256i gv =
          _mm256_set_epi32((int)iq3xxs_grid[q[7]], (int)iq3xxs_grid[q[6]], (int)iq3xxs_grid[q[5]],
                           (int)iq3xxs_grid[q[4]], (int)iq3xxs_grid[q[3]], (int)iq3xxs_grid[q[2]],
                           (int)iq3xxs_grid[q[1]], (int)iq3xxs_grid[q[0]]);
      __m256i p = dot_i8_i8(apply_signs32(gv, ksigns4(W)),
                            _mm256_loadu_si256((const __m256i *)(q8 + 32 * g)));
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(p, _mm256_set1_epi32(2 * (int)(W >> 28) + 1)));
    }
    sumf += wh_quant_rd_fp16(x) * rd_f32(y) * 0.25f * (float)hsum_epi32(acc);
  }
  return sumf;
}

WH_AVX2 static float
dot_iq3_s_q8_k_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 110, y += Q8K_BYTES) {
    const guint8 *q8 = y + 4, *qs = x + 2, *qh = x + 66, *signs = x + 74, *scales = x + 106;
    __m256i acc = _mm256_setzero_si256();
    for (int g = 0; g < 8; g++) {
      int s = (g % 2) ? (scales[g / 2] >> 4) : (scales[g / 2] & 15);
      guint32 e[8];
      for (int k = 0; k < 8; k++)
        e[k] = iq3s_grid[qs[8 * g + k] | (((qh[g] >> k) & 1) << 8)];
      __m256i gv = _mm256_set_epi32((int)e[7], (int)e[6], (int)e[5], (int)e[4], (int)e[3],
                                    (int)e[2], (int)e[1], (int)e[0]);
      __m256i p = dot_i8_i8(apply_signs32(gv, wh_quant_rd32(signs + 4 * g)),
                            _mm256_loadu_si256((const __m256i *)(q8 + 32 * g)));
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(p, _mm256_set1_epi32(1 + 2 * s)));
    }
    sumf += wh_quant_rd_fp16(x) * rd_f32(y) * (float)hsum_epi32(acc);
  }
  return sumf;
}

/* IQ1_S: signed grid values (int8 -1/0/1) straight from 4 grid entries; the +-1/8 delta of the
 * group enters through the bsums, as in the portable kernel. */
WH_AVX2 static float
dot_iq1_s_q8_k_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  for (gint64 b = 0; b < nb; b++, x += 50, y += Q8K_BYTES) {
    const guint8 *q8 = y + 4, *qs = x + 2;
    __m256i acc = _mm256_setzero_si256();
    int delta_total = 0;
    for (int g = 0; g < 8; g++) {
      guint16 H = wh_quant_rd16(x + 34 + 2 * g);
      int idx[4];
      for (int l = 0; l < 4; l++)
        idx[l] = qs[4 * g + l] | (((H >> (3 * l)) & 7) << 8);
      __m256i gv = _mm256_set_epi64x((long long)iq1s_grid[idx[3]], (long long)iq1s_grid[idx[2]],
                                     (long long)iq1s_grid[idx[1]], (long long)iq1s_grid[idx[0]]);
      __m256i p = dot_i8_i8(gv, _mm256_loadu_si256((const __m256i *)(q8 + 32 * g)));
      int sc = 2 * ((H >> 12) & 7) + 1;
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(p, _mm256_set1_epi32(8 * sc)));
      int sumq8 = q8k_bsum(y, 2 * g) + q8k_bsum(y, 2 * g + 1);
      delta_total += sc * ((H & 0x8000) ? -sumq8 : sumq8);
    }
    int total = hsum_epi32(acc) + delta_total;
    sumf += wh_quant_rd_fp16(x) * rd_f32(y) * 0.125f * (float)total;
  }
  return sumf;
}

/* IQ1_M: scales per half group (int32 lanes 0-3 / 4-7), delta per 8 elements (lane pairs
 * 2l, 2l+1); the sums of 8 activations come from maddubs with ones. */
WH_AVX2 static float
dot_iq1_m_q8_k_avx2(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  const __m256i ones8 = _mm256_set1_epi8(1);
  for (gint64 b = 0; b < nb; b++, x += 56, y += Q8K_BYTES) {
    const guint8 *q8 = y + 4, *qs = x, *qh = x + 32;
    guint16 sc[4];
    for (int i = 0; i < 4; i++)
      sc[i] = wh_quant_rd16(x + 48 + 2 * i);
    guint16 D = (guint16)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) |
                          (sc[3] & 0xf000));
    __m256i acc = _mm256_setzero_si256();
    for (int g = 0; g < 8; g++) {
      int o = 6 * (g % 2);
      int s1 = 2 * ((sc[g / 2] >> o) & 7) + 1, s2 = 2 * ((sc[g / 2] >> (o + 3)) & 7) + 1;
      int idx[4], dl[4];
      for (int l = 0; l < 4; l++) {
        guint8 Q = qh[2 * g + l / 2];
        int nib = (l % 2) ? (Q >> 4) : (Q & 15);
        idx[l] = qs[4 * g + l] | ((nib & 7) << 8);
        dl[l] = (nib & 8) ? -1 : 1;
      }
      __m256i gv = _mm256_set_epi64x((long long)iq1s_grid[idx[3]], (long long)iq1s_grid[idx[2]],
                                     (long long)iq1s_grid[idx[1]], (long long)iq1s_grid[idx[0]]);
      __m256i vy = _mm256_loadu_si256((const __m256i *)(q8 + 32 * g));
      __m256i p = dot_i8_i8(gv, vy);
      __m256i s8 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, vy), _mm256_set1_epi16(1));
      __m256i dv = _mm256_set_epi32(dl[3], dl[3], dl[2], dl[2], dl[1], dl[1], dl[0], dl[0]);
      __m256i t = _mm256_add_epi32(_mm256_slli_epi32(p, 3), _mm256_mullo_epi32(s8, dv));
      __m256i scv = _mm256_set_m128i(_mm_set1_epi32(s2), _mm_set1_epi32(s1));
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(t, scv));
    }
    sumf += wh_fp16_to_fp32(D) * rd_f32(y) * 0.125f * (float)hsum_epi32(acc);
  }
  return sumf;
}

WH_AVX2 static float
dot_f32_avx2(const guint8 *x, const float *a, gint64 n)
{
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  gint64 i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 =
        _mm256_fmadd_ps(_mm256_loadu_ps((const float *)(x + 4 * i)), _mm256_loadu_ps(a + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps((const float *)(x + 4 * i + 32)),
                           _mm256_loadu_ps(a + i + 8), acc1);
  }
  float s = hsum_ps(_mm256_add_ps(acc0, acc1));
  for (; i < n; i++)
    s += rd_f32(x + 4 * i) * a[i];
  return s;
}

WH_AVX2 static float
dot_f16_avx2(const guint8 *x, const float *a, gint64 n)
{
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  gint64 i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + 2 * i)));
    __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + 2 * i + 16)));
    acc0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(a + i), acc0);
    acc1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(a + i + 8), acc1);
  }
  float s = hsum_ps(_mm256_add_ps(acc0, acc1));
  for (; i < n; i++)
    s += wh_fp16_to_fp32(wh_quant_rd16(x + 2 * i)) * a[i];
  return s;
}

WH_AVX2 static float
dot_bf16_avx2(const guint8 *x, const float *a, gint64 n)
{
  __m256 acc = _mm256_setzero_ps();
  gint64 i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i w16 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + 2 * i)));
    __m256 w = _mm256_castsi256_ps(_mm256_slli_epi32(w16, 16));
    acc = _mm256_fmadd_ps(w, _mm256_loadu_ps(a + i), acc);
  }
  float s = hsum_ps(acc);
  for (; i < n; i++)
    s += wh_bf16_to_fp32(wh_quant_rd16(x + 2 * i)) * a[i];
  return s;
}

static int
cpu_has_avx2(void)
{
  static gsize once = 0;
  static int has = 0;
  if (g_once_init_enter(&once)) {
    has =
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && wh_quant_cpu_f16c_bit();
    g_once_init_leave(&once, 1);
  }
  return has;
}

/* ---- AVX-512 kernels (F, BW, VL, VNNI; picked at run time) --------------------------------- */

#define WH_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

/* 32 int8 x 32 int8 -> 8 int32 partial sums with one VNNI instruction: |a| (unsigned) times b
 * with a's sign moved onto it (b != -128: no overflow). */
WH_AVX512 static inline __m256i
dot_i8_i8_vnni(__m256i a, __m256i b)
{
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(a, a),
                             _mm256_sign_epi8(b, a));
}

/* Q8_0 x Q8_0, 256-bit VNNI: as the AVX2 kernel with dpbusd for maddubs + madd. */
WH_AVX512 static float
dot_q8_0_q8_0_avx512(const guint8 *x, const guint8 *y, gint64 nb)
{
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  gint64 b = 0;
  for (; b + 2 <= nb; b += 2, x += 68, y += 68) {
    __m256i qx0 = _mm256_loadu_si256((const __m256i *)(x + 2));
    __m256i qx1 = _mm256_loadu_si256((const __m256i *)(x + 36));
    __m256i qy0 = _mm256_loadu_si256((const __m256i *)(y + 2));
    __m256i qy1 = _mm256_loadu_si256((const __m256i *)(y + 36));
    __m256 d0 = _mm256_set1_ps(fp16_f16c(x) * fp16_f16c(y));
    __m256 d1 = _mm256_set1_ps(fp16_f16c(x + 34) * fp16_f16c(y + 34));
    acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(dot_i8_i8_vnni(qx0, qy0)), acc0);
    acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(dot_i8_i8_vnni(qx1, qy1)), acc1);
  }
  for (; b < nb; b++, x += 34, y += 34) {
    __m256i qx = _mm256_loadu_si256((const __m256i *)(x + 2));
    __m256i qy = _mm256_loadu_si256((const __m256i *)(y + 2));
    __m256 d = _mm256_set1_ps(fp16_f16c(x) * fp16_f16c(y));
    acc0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_i8_vnni(qx, qy)), acc0);
  }
  return hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* Q4_0 x Q8_0, 256-bit VNNI: the unsigned nibbles go straight into dpbusd, the -8 offset comes
 * back as -8 * sum(y) (a second dpbusd with all-ones): sum (q - 8) y = sum q y - 8 sum y. */
WH_AVX512 static float
dot_q4_0_q8_0_avx512(const guint8 *x, const guint8 *y, gint64 nb)
{
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi8(1);
  gint64 b = 0;
  for (; b < nb; b++, x += 18, y += 34) {
    __m256i qx = unpack_nibbles32(x + 2);
    __m256i qy = _mm256_loadu_si256((const __m256i *)(y + 2));
    __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), qx, qy);
    __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, qy);
    __m256i v = _mm256_sub_epi32(p, _mm256_slli_epi32(s, 3));
    __m256 d = _mm256_set1_ps(fp16_f16c(x) * fp16_f16c(y));
    if (b & 1)
      acc1 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(v), acc1);
    else
      acc0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(v), acc0);
  }
  return hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* Q4_K x Q8_K, 512-bit: 64 bytes of qs per step = chunks 2k and 2k+1; their low nibbles are
 * sub-blocks 4k and 4k+2, the high nibbles 4k+1 and 4k+3. The Q8_K bytes of those sub-blocks
 * are gathered into matching 256-bit halves (shuffle_i64x2), multiplied with maddubs and scaled
 * and summed with one VNNI dpwssd against int16 scale vectors (vpermw from the 8 scales).
 * Integers equal q4_k_block_sumi(); same float epilogue as the AVX2 and portable kernels. */
WH_AVX512 static float
dot_q4_k_q8_k_avx512(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  const __m512i m4 = _mm512_set1_epi8(15);
  /* int16 lane -> scale index: lanes 0-15 one sub-block, 16-31 the other */
#define WH_IDX2(a, b)                                                                              \
  _mm512_set_epi16(b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, a, a, a, a, a, a, a, a, a, a,   \
                   a, a, a, a, a, a)
  const __m512i i02 = WH_IDX2(0, 2), i13 = WH_IDX2(1, 3), i46 = WH_IDX2(4, 6), i57 = WH_IDX2(5, 7);
#undef WH_IDX2
  for (gint64 b = 0; b < nb; b++, x += 144, y += Q8K_BYTES) {
    const guint8 *qs = x + 16, *q8 = y + 4;
    /* the weights stream from DRAM: ask for the lines ~1.5 KiB ahead (192 bytes per 144-byte
     * block, so every line), further than the hardware prefetcher runs (12 -> 10 GB/s from
     * DRAM without) */
    _mm_prefetch((const char *)(x + 1536), _MM_HINT_T0);
    _mm_prefetch((const char *)(x + 1600), _MM_HINT_T0);
    _mm_prefetch((const char *)(x + 1664), _MM_HINT_T0);
    const __m128i scm = k_scales_unpack(x + 4);
    const __m512i sc = _mm512_castsi128_si512(_mm_cvtepu8_epi16(scm));
    __m512i acc = _mm512_setzero_si512();
    for (int k = 0; k < 2; k++) {
      __m512i q = _mm512_loadu_si512((const void *)(qs + 64 * k));
      __m512i lo = _mm512_and_si512(q, m4);
      __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
      __m512i ya = _mm512_loadu_si512((const void *)(q8 + 128 * k));
      __m512i yb = _mm512_loadu_si512((const void *)(q8 + 128 * k + 64));
      __m512i ylo = _mm512_shuffle_i64x2(ya, yb, _MM_SHUFFLE(1, 0, 1, 0));
      __m512i yhi = _mm512_shuffle_i64x2(ya, yb, _MM_SHUFFLE(3, 2, 3, 2));
      __m512i slo = _mm512_permutexvar_epi16(k ? i46 : i02, sc);
      __m512i shi = _mm512_permutexvar_epi16(k ? i57 : i13, sc);
      acc = _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(lo, ylo), slo);
      acc = _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(hi, yhi), shi);
    }
    const __m256i a256 =
        _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
    sumf += k_affine_epilogue_avx2(
        x, y, _mm_add_epi32(_mm256_castsi256_si128(a256), _mm256_extracti128_si256(a256, 1)), scm);
  }
  return sumf;
}

/* Constants of the AVX-512 Q6_K kernels: the per-256-bit-half shift counts that move the 2 high
 * bits of qh to bits 4, 5 (left 4 / 2 for t = 0 / 1, right 0 / 2 for t = 2 / 3) and the vpermw
 * indices of the scales of group g (int16 lanes 8i..8i+7 -> sub-block 4g + i). */
WH_AVX512 static inline void
q6_k_avx512_consts(__m512i *sl, __m512i *sr, __m512i idx[4])
{
  *sl = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
  *sr = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
  for (int g = 0; idx && g < 4; g++) {
    short v[32];
    for (int l = 0; l < 32; l++)
      v[l] = (short)(4 * g + l / 8);
    idx[g] = _mm512_loadu_si512((const void *)v);
  }
}

/* Q6_K x Q8_K, 512-bit: for each half h, chunks t = 0,1 (and 2,3) in one register: the 64
 * bytes ql[64h ..] give the low nibbles (t = 0,1) or high nibbles (t = 2,3); the 2 high bits of
 * qh[32h ..] (broadcast to both halves) move to bits 4,5 with per-half shift counts. Sub-blocks
 * of 16 map to int16 lanes 0-7, 8-15, 16-23, 24-31; scales via vpermw, summed with dpwssd.
 * Same integers as q6_k_block_sumi() (the -32 through the bsums), same float epilogue. */
WH_AVX512 static float
dot_q6_k_q8_k_avx512(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
  __m512i sl, sr, idx[4];
  q6_k_avx512_consts(&sl, &sr, idx);
  for (gint64 b = 0; b < nb; b++, x += 210, y += Q8K_BYTES) {
    const guint8 *ql = x, *qh = x + 128, *q8 = y + 4;
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)(x + 192));
    const __m512i sc = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(sc8));
    __m512i acc = _mm512_setzero_si512();
    for (int h = 0; h < 2; h++) {
      __m512i vqh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qh + 32 * h)));
      __m512i src = _mm512_loadu_si512((const void *)(ql + 64 * h));
      /* t = 0,1 */
      __m512i u01 = _mm512_or_si512(_mm512_and_si512(src, m4),
                                    _mm512_and_si512(_mm512_sllv_epi16(vqh, sl), m30));
      /* t = 2,3 */
      __m512i u23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(src, 4), m4),
                                    _mm512_and_si512(_mm512_srlv_epi16(vqh, sr), m30));
      __m512i y01 = _mm512_loadu_si512((const void *)(q8 + 128 * h));
      __m512i y23 = _mm512_loadu_si512((const void *)(q8 + 128 * h + 64));
      acc = _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(u01, y01),
                                _mm512_permutexvar_epi16(idx[2 * h], sc));
      acc = _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(u23, y23),
                                _mm512_permutexvar_epi16(idx[2 * h + 1], sc));
    }
    const __m128i sclo = _mm_cvtepi8_epi16(sc8), schi = _mm_cvtepi8_epi16(_mm_srli_si128(sc8, 8));
    __m128i o = _mm_add_epi32(_mm_madd_epi16(sclo, _mm_loadu_si128((const __m128i *)(y + 260))),
                              _mm_madd_epi16(schi, _mm_loadu_si128((const __m128i *)(y + 276))));
    o = _mm_add_epi32(o, _mm_shuffle_epi32(o, _MM_SHUFFLE(1, 0, 3, 2)));
    o = _mm_add_epi32(o, _mm_shuffle_epi32(o, _MM_SHUFFLE(2, 3, 0, 1)));
    int sumi = _mm512_reduce_add_epi32(acc) - 32 * _mm_cvtsi128_si32(o);
    sumf += fp16_f16c(x + 208) * rd_f32(y) * (float)sumi;
  }
  return sumf;
}

/* ---- Multi-row AVX-512 kernels: 4 weight rows against one activation row ------------------- */

/* A decode matmul dots thousands of weight rows with one activation row. These kernels walk 4
 * rows in step, block by block: the activation loads (and Q4_K's half swaps) are shared, the
 * int32 lane sums of the 4 rows are reduced together (three hadds instead of four reductions)
 * and the float epilogue runs on the 4 rows in one 128-bit vector. Per lane it is exactly the
 * single-row kernel's arithmetic (same integers, same products in the same order), so every
 * output is bit-identical to it and grouping never changes results. The rows stream from DRAM
 * as 4 interleaved streams, which the hardware prefetcher does not follow (without software
 * prefetch: ~20% of a plain read): every block step prefetches its share of the group after the
 * next one into L2 (2 groups = 8 * stride bytes ahead, ~9 KiB for a 2048-wide Q4_K row). */

/* [sum(a0), sum(a1), sum(a2), sum(a3)] of four vectors of 16 int32. */
WH_AVX512 static inline __m128i
hsum4_epi32_512(__m512i a0, __m512i a1, __m512i a2, __m512i a3)
{
  const __m256i b0 = _mm256_add_epi32(_mm512_castsi512_si256(a0), _mm512_extracti64x4_epi64(a0, 1));
  const __m256i b1 = _mm256_add_epi32(_mm512_castsi512_si256(a1), _mm512_extracti64x4_epi64(a1, 1));
  const __m256i b2 = _mm256_add_epi32(_mm512_castsi512_si256(a2), _mm512_extracti64x4_epi64(a2, 1));
  const __m256i b3 = _mm256_add_epi32(_mm512_castsi512_si256(a3), _mm512_extracti64x4_epi64(a3, 1));
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(b0, b1), _mm256_hadd_epi32(b2, b3));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* [sum(a0), sum(a1), sum(a2), sum(a3)] of four vectors of 4 int32. */
WH_AVX512 static inline __m128i
hsum4_epi32_128(__m128i a0, __m128i a1, __m128i a2, __m128i a3)
{
  return _mm_hadd_epi32(_mm_hadd_epi32(a0, a1), _mm_hadd_epi32(a2, a3));
}

/* Prefetches @lines (a constant) cache lines from @p on into L2 (T1: the L2 tracks far more
 * outstanding misses than L1, and the lines are needed a few KiB later, not next). */
#define WH_PREFETCH_LINES_L2(p, lines)                                                             \
  do {                                                                                             \
    _Pragma("GCC unroll 16") for (int pf_ = 0; pf_ < (lines); pf_++)                               \
        _mm_prefetch((const char *)(p) + 64 * pf_, _MM_HINT_T1);                                   \
  } while (0)

/* Every 128-bit lane of @v = lane @r of @v (r = 0..3). */
WH_AVX512 static inline __m512i
lane_broadcast(__m512i v, int r)
{
  switch (r) {
  case 0:
    return _mm512_shuffle_i32x4(v, v, 0x00);
  case 1:
    return _mm512_shuffle_i32x4(v, v, 0x55);
  case 2:
    return _mm512_shuffle_i32x4(v, v, 0xaa);
  default:
    return _mm512_shuffle_i32x4(v, v, 0xff);
  }
}

/* Pieces of the Q4_K 4-row kernels (always inlined, so their constants are hoisted out of the
 * block loops). The 16-byte block heads (d, dmin, 12 scale bytes) of the 4 rows in the four
 * 128-bit lanes of one register; @scm gets k_scales_unpack() per lane (bytes 0-7 = sc_j,
 * 8-15 = m_j of that lane's row, with the words one dword further on). */
WH_AVX512 static inline __attribute__((always_inline)) __m512i
q4k_heads(const guint8 *x, gsize stride, __m512i *scm)
{
  const __m512i low_mask = _mm512_set4_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f);
  const __m512i top_mask = _mm512_set4_epi32(0x30303030, 0, 0x30303030, 0);
  const __m512i low_shift = _mm512_set4_epi32(4, 0, 0, 0);
  __m512i head = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)x));
  head = _mm512_inserti32x4(head, _mm_loadu_si128((const __m128i *)(x + stride)), 1);
  head = _mm512_inserti32x4(head, _mm_loadu_si128((const __m128i *)(x + 2 * stride)), 2);
  head = _mm512_inserti32x4(head, _mm_loadu_si128((const __m128i *)(x + 3 * stride)), 3);
  const __m512i acbc = _mm512_shuffle_epi32(head, (_MM_PERM_ENUM)_MM_SHUFFLE(3, 2, 3, 1));
  const __m512i aabb = _mm512_shuffle_epi32(head, (_MM_PERM_ENUM)_MM_SHUFFLE(2, 2, 1, 1));
  *scm = _mm512_or_si512(_mm512_and_si512(_mm512_srlv_epi32(acbc, low_shift), low_mask),
                         _mm512_and_si512(_mm512_srli_epi32(aabb, 2), top_mask));
  return head;
}

/* The summs of the 4 rows against one prepared activation block @pb: m_j (int16) x bsum pairs,
 * each lane summed, lanes gathered. */
WH_AVX512 static inline __attribute__((always_inline)) __m128i
q4k_summs(__m512i scm, const guint8 *pb)
{
  /* vpshufb control: the mins (bytes 8-15 of a lane) zero-extended to 8 int16 */
  const __m512i cmins =
      _mm512_set4_epi64((long long)0x800f800e800d800cLL, (long long)0x800b800a80098008LL,
                        (long long)0x800f800e800d800cLL, (long long)0x800b800a80098008LL);
  const __m512i first_dwords =
      _mm512_setr_epi32(0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12);
  __m512i ms =
      _mm512_madd_epi16(_mm512_shuffle_epi8(scm, cmins),
                        _mm512_broadcast_i32x4(_mm_load_si128((const __m128i *)(pb + 256))));
  ms = _mm512_add_epi32(ms, _mm512_shuffle_epi32(ms, (_MM_PERM_ENUM)_MM_SHUFFLE(1, 0, 3, 2)));
  ms = _mm512_add_epi32(ms, _mm512_shuffle_epi32(ms, (_MM_PERM_ENUM)_MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_castsi512_si128(_mm512_permutexvar_epi32(first_dwords, ms));
}

/* d * dy * sumi - dmin * dy * summs of the 4 rows, as the single-row kernel's epilogue. */
WH_AVX512 static inline __attribute__((always_inline)) __m128
q4k_epilogue(__m512i head, const guint8 *pb, __m128i sumi, __m128i summs)
{
  const __m512i first_dwords =
      _mm512_setr_epi32(0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12);
  /* [d0, dmin0, d1, dmin1, ...] (dword 0 of each lane) -> d of the 4 rows, dmin of the 4 */
  const __m256 dd = _mm256_permutevar8x32_ps(
      _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi32(first_dwords, head))),
      _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
  const __m128 dy = _mm_set1_ps(rd_f32(pb + 272));
  const __m128 t0 = _mm_mul_ps(_mm_mul_ps(dy, _mm256_castps256_ps128(dd)), _mm_cvtepi32_ps(sumi));
  const __m128 t1 =
      _mm_mul_ps(_mm_mul_ps(dy, _mm256_extractf128_ps(dd, 1)), _mm_cvtepi32_ps(summs));
  return _mm_sub_ps(t0, t1);
}

/* A Q8_K activation row rearranged for dot4_q4_k_q8_k_avx512(), Q4K_PREP_BYTES per block
 * (64-byte aligned): for k = 0, 1 the 64 values of the low nibbles' sub-blocks 4k and 4k+2
 * (at 128k) and of the high nibbles' 4k+1 and 4k+3 (at 128k + 64); the 8 sums of 32 values
 * as int16 at 256 (|sum| <= 32 * 128); the block's scale d at 272. */
#define Q4K_PREP_BYTES 320

WH_AVX512 static void
q4k_prep_act(const guint8 *y, gint64 nb, guint8 *prep)
{
  for (gint64 b = 0; b < nb; b++, y += Q8K_BYTES, prep += Q4K_PREP_BYTES) {
    const guint8 *q8 = y + 4;
    for (int k = 0; k < 2; k++) {
      const __m512i ya = _mm512_loadu_si512((const void *)(q8 + 128 * k));
      const __m512i yb = _mm512_loadu_si512((const void *)(q8 + 128 * k + 64));
      _mm512_store_si512((void *)(prep + 128 * k),
                         _mm512_shuffle_i64x2(ya, yb, _MM_SHUFFLE(1, 0, 1, 0)));
      _mm512_store_si512((void *)(prep + 128 * k + 64),
                         _mm512_shuffle_i64x2(ya, yb, _MM_SHUFFLE(3, 2, 3, 2)));
    }
    _mm_store_si128((__m128i *)(prep + 256),
                    _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)(y + 260)),
                                   _mm_loadu_si128((const __m128i *)(y + 276))));
    memcpy(prep + 272, y, 4);
  }
}

/* vpshufb control for dot4_q4_k_q8_k_avx512(): int16 word w of 128-bit lane L takes scale byte
 * 4k + 2 * (L >= 2) + (w >= 4) of its lane (zero-extended). */
WH_AVX512 static inline __m512i
q4k_pack_scale_ctrl(int k)
{
  guint8 v[64];
  for (int l = 0; l < 64; l++) {
    const int lane = l / 16, w = (l % 16) / 2;
    v[l] = (l & 1) ? 0x80 : (guint8)(4 * k + 2 * (lane >= 2) + (w >= 4));
  }
  return _mm512_loadu_si512((const void *)v);
}

/* Q4_K x Q8_K, rows x, x + stride, x + 2 stride, x + 3 stride -> out[0..3]. Same integers and
 * epilogue as dot_q4_k_q8_k_avx512() per row. The 16-byte block heads (d, dmin, 12 scale bytes)
 * of the 4 rows sit in the four 128-bit lanes of one register, so the 6-bit scales and mins of
 * all 4 rows are unpacked together (k_scales_unpack() with the words one dword further on),
 * the mins are dotted with the bsums together, and each row's int16 scale vectors come from
 * one lane broadcast plus in-lane vpshufb (no cross-lane vpermw).
 * Per 64 weights: VNNI dpbusd sums 4 nibble x int8 products per int32 lane (|sum| <= 4 * 15 *
 * 128 fits an int16); the low- and high-nibble results of a 64-byte load are packed into one
 * int16 vector (words 0-3 of a lane from one sub-block, 4-7 from the other) and dpwssd applies
 * the 6-bit scales: 3 multiply-port instructions per 128 weights instead of maddubs + dpwssd
 * twice (4), and one scale shuffle instead of two (~10% more rows/s from L2 on Zen 4; the
 * integer sums, hence the floats, are unchanged). */
WH_AVX512 static void
dot4_q4_k_q8_k_avx512(const guint8 *x, gsize stride, const guint8 *py, gint64 nb, float *out)
{
  const __m512i m4 = _mm512_set1_epi8(15);
  const __m512i ck0 = q4k_pack_scale_ctrl(0), ck1 = q4k_pack_scale_ctrl(1);
  /* the group of 4 rows after the next (4 * stride = nb * 576 bytes for contiguous rows): 9
   * lines per block step, into L2 (streaming from DRAM with 2 threads: 52-60% of a plain read
   * of the same rows with T0 one group ahead, 73-77% with this) */
  const guint8 *pf = x + 8 * stride;
  __m128 sumf = _mm_setzero_ps();
  for (gint64 b = 0; b < nb; b++, x += 144, py += Q4K_PREP_BYTES, pf += 576) {
    WH_PREFETCH_LINES_L2(pf, 9);
    /* activations of chunk pair k: sub-blocks 4k and 4k+2 (low nibbles), 4k+1 and 4k+3 (high),
     * laid out so by q4k_prep_act() */
    __m512i ylo[2], yhi[2];
    for (int k = 0; k < 2; k++) {
      ylo[k] = _mm512_load_si512((const void *)(py + 128 * k));
      yhi[k] = _mm512_load_si512((const void *)(py + 128 * k + 64));
    }
    __m512i scm;
    const __m512i head = q4k_heads(x, stride, &scm);
    const __m128i summs = q4k_summs(scm, py);
    __m512i acc[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
      const guint8 *qs = x + r * stride + 16;
      /* every lane = row r's unpacked scales */
      const __m512i sc = lane_broadcast(scm, r);
      __m512i a = _mm512_setzero_si512();
      for (int k = 0; k < 2; k++) {
        const __m512i q = _mm512_loadu_si512((const void *)(qs + 64 * k));
        const __m512i lo = _mm512_and_si512(q, m4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
        /* 4-product sums (|s| <= 4 * 15 * 128, an int16), packed: words 0-3 of a lane from
         * the low nibbles' sub-block, 4-7 from the high nibbles' */
        const __m512i p =
            _mm512_packs_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, ylo[k]),
                               _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi, yhi[k]));
        a = _mm512_dpwssd_epi32(a, p, _mm512_shuffle_epi8(sc, k ? ck1 : ck0));
      }
      acc[r] = a;
    }
    const __m128i sumi = hsum4_epi32_512(acc[0], acc[1], acc[2], acc[3]);
    sumf = _mm_add_ps(sumf, q4k_epilogue(head, py, sumi, summs));
  }
  _mm_storeu_ps(out, sumf);
}

/* Q4_K x Q8_K, 4 rows x 2 activation rows (prompt tokens) -> out0[0..3], out1[0..3]: per
 * (row, token) exactly dot4_q4_k_q8_k_avx512()'s integers and float epilogue; the nibble
 * unpacking, the scale vectors and the block heads are made once for both tokens. */
WH_AVX512 static void
dot4x2_q4_k_q8_k_avx512(const guint8 *x, gsize stride, const guint8 *py0, const guint8 *py1,
                        gint64 nb, float *out0, float *out1)
{
  const __m512i m4 = _mm512_set1_epi8(15);
  const __m512i ck0 = q4k_pack_scale_ctrl(0), ck1 = q4k_pack_scale_ctrl(1);
  __m128 sumf[2] = {_mm_setzero_ps(), _mm_setzero_ps()};
  for (gint64 b = 0; b < nb; b++, x += 144) {
    __m512i scm;
    const __m512i head = q4k_heads(x, stride, &scm);
    const guint8 *pb[2] = {py0 + b * Q4K_PREP_BYTES, py1 + b * Q4K_PREP_BYTES};
    __m512i acc[2][4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
      const guint8 *qs = x + r * stride + 16;
      const __m512i sc = lane_broadcast(scm, r);
      acc[0][r] = acc[1][r] = _mm512_setzero_si512();
      for (int k = 0; k < 2; k++) {
        const __m512i q = _mm512_loadu_si512((const void *)(qs + 64 * k));
        const __m512i lo = _mm512_and_si512(q, m4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
        const __m512i s = _mm512_shuffle_epi8(sc, k ? ck1 : ck0);
        for (int t = 0; t < 2; t++) {
          const __m512i p = _mm512_packs_epi32(
              _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo,
                                  _mm512_load_si512((const void *)(pb[t] + 128 * k))),
              _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi,
                                  _mm512_load_si512((const void *)(pb[t] + 128 * k + 64))));
          acc[t][r] = _mm512_dpwssd_epi32(acc[t][r], p, s);
        }
      }
    }
    for (int t = 0; t < 2; t++) {
      const __m128i sumi = hsum4_epi32_512(acc[t][0], acc[t][1], acc[t][2], acc[t][3]);
      sumf[t] = _mm_add_ps(sumf[t], q4k_epilogue(head, pb[t], sumi, q4k_summs(scm, pb[t])));
    }
  }
  _mm_storeu_ps(out0, sumf[0]);
  _mm_storeu_ps(out1, sumf[1]);
}

/* Q6_K x Q8_K, 4 rows -> out[0..3]. Per row the integers of dot_q6_k_q8_k_avx512(), summed as
 * in dot4_q4_k_q8_k_avx512() (dpbusd, pack, one dpwssd per 128 weights), same epilogue. */
WH_AVX512 static void
dot4_q6_k_q8_k_avx512(const guint8 *x, gsize stride, const guint8 *y, gint64 nb, float *out)
{
  const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
  __m512i sl, sr;
  q6_k_avx512_consts(&sl, &sr, NULL); /* the scales are picked by sidx below */
  /* vpermw indexes, half h: int16 words 0-3 of 128-bit lane L take scale 8h + L of the row,
   * words 4-7 scale 8h + 4 + L, to match the packed sums below */
  __m512i sidx[2];
  for (int h = 0; h < 2; h++) {
    short v[32];
    for (int w = 0; w < 32; w++)
      v[w] = (short)(8 * h + (w % 8) / 4 * 4 + w / 8);
    sidx[h] = _mm512_loadu_si512((const void *)v);
  }
  /* the group of 4 rows after the next: 840 bytes per block step, 14 lines (a little overlap),
   * into L2 (2 threads streaming: 51-62% of a plain read with T0 one group ahead, 79-91%) */
  const guint8 *pf = x + 8 * stride;
  __m128 sumf = _mm_setzero_ps();
  for (gint64 b = 0; b < nb; b++, x += 210, y += Q8K_BYTES, pf += 840) {
    const guint8 *q8 = y + 4;
    WH_PREFETCH_LINES_L2(pf, 14);
    const __m512i y01[2] = {_mm512_loadu_si512((const void *)q8),
                            _mm512_loadu_si512((const void *)(q8 + 128))};
    const __m512i y23[2] = {_mm512_loadu_si512((const void *)(q8 + 64)),
                            _mm512_loadu_si512((const void *)(q8 + 192))};
    const __m256i bs = _mm256_loadu_si256((const __m256i *)(y + 260));
    __m512i acc[4];
    __m128i offs[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
      const guint8 *ql = x + r * stride, *qh = ql + 128;
      /* the 16 scales as int16; offs = scales x bsums (the -32 of every value) */
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(ql + 192)));
      const __m256i o = _mm256_madd_epi16(sc16, bs);
      offs[r] = _mm_add_epi32(_mm256_castsi256_si128(o), _mm256_extracti128_si256(o, 1));
      const __m512i sc = _mm512_castsi256_si512(sc16);
      __m512i a = _mm512_setzero_si512();
      for (int h = 0; h < 2; h++) {
        const __m512i vqh =
            _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qh + 32 * h)));
        const __m512i src = _mm512_loadu_si512((const void *)(ql + 64 * h));
        const __m512i u01 = _mm512_or_si512(_mm512_and_si512(src, m4),
                                            _mm512_and_si512(_mm512_sllv_epi16(vqh, sl), m30));
        const __m512i u23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(src, 4), m4),
                                            _mm512_and_si512(_mm512_srlv_epi16(vqh, sr), m30));
        /* dpbusd: 4-product sums per int32 lane, |sum| <= 4 * 63 * 128 (an int16); lane L of
         * u01 is sub-block 8h + L, of u23 8h + 4 + L; packed, words 0-3 / 4-7 of a lane */
        const __m512i p =
            _mm512_packs_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u01, y01[h]),
                               _mm512_dpbusd_epi32(_mm512_setzero_si512(), u23, y23[h]));
        a = _mm512_dpwssd_epi32(a, p, _mm512_permutexvar_epi16(sidx[h], sc));
      }
      acc[r] = a;
    }
    const __m128i sumi =
        _mm_sub_epi32(hsum4_epi32_512(acc[0], acc[1], acc[2], acc[3]),
                      _mm_slli_epi32(hsum4_epi32_128(offs[0], offs[1], offs[2], offs[3]), 5));
    /* d of the 4 rows (fp16 at 208) */
    const __m128 d = _mm_cvtph_ps(
        _mm_setr_epi16((short)wh_quant_rd16(x + 208), (short)wh_quant_rd16(x + stride + 208),
                       (short)wh_quant_rd16(x + 2 * stride + 208),
                       (short)wh_quant_rd16(x + 3 * stride + 208), 0, 0, 0, 0));
    sumf =
        _mm_add_ps(sumf, _mm_mul_ps(_mm_mul_ps(d, _mm_set1_ps(rd_f32(y))), _mm_cvtepi32_ps(sumi)));
  }
  _mm_storeu_ps(out, sumf);
}

static int
cpu_has_avx512(void)
{
  static gsize once = 0;
  static int has = 0;
  if (g_once_init_enter(&once)) {
    has = cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
          __builtin_cpu_supports("avx512vnni");
    g_once_init_leave(&once, 1);
  }
  return has;
}
#endif /* WH_QUANT_X86 */

/* ---- NEON kernels (aarch64) ------------------------------------------------------------------ */

#if WH_QUANT_NEON
/* acc + 16 int8 x 16 int8 products summed into 4 int32 lanes: SDOT where the target has the
 * dot-product extension, else widening multiplies (|products| <= 2^14 fit int16) and pairwise
 * accumulation. */
static inline int32x4_t
neon_dot_s8(int32x4_t acc, int8x16_t a, int8x16_t b)
{
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_s32(acc, a, b);
#else
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
  return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

/* Q8_0 x Q8_0: per block two 16-byte halves, int32 lanes -> float, scaled by d_x * d_y. */
static float
dot_q8_0_q8_0_neon(const guint8 *x, const guint8 *y, gint64 nb)
{
  float32x4_t acc = vdupq_n_f32(0.0f);
  for (gint64 b = 0; b < nb; b++, x += 34, y += 34) {
    int32x4_t s = neon_dot_s8(vdupq_n_s32(0), vld1q_s8((const int8_t *)(x + 2)),
                              vld1q_s8((const int8_t *)(y + 2)));
    s = neon_dot_s8(s, vld1q_s8((const int8_t *)(x + 18)), vld1q_s8((const int8_t *)(y + 18)));
    acc = vmlaq_n_f32(acc, vcvtq_f32_s32(s), wh_quant_rd_fp16(x) * wh_quant_rd_fp16(y));
  }
  return vaddvq_f32(acc);
}

/* Q4_0 x Q8_0: low nibbles are elements 0-15, high nibbles 16-31, each minus 8. */
static float
dot_q4_0_q8_0_neon(const guint8 *x, const guint8 *y, gint64 nb)
{
  float32x4_t acc = vdupq_n_f32(0.0f);
  const uint8x16_t m4 = vdupq_n_u8(15);
  const int8x16_t off = vdupq_n_s8(8);
  for (gint64 b = 0; b < nb; b++, x += 18, y += 34) {
    uint8x16_t q = vld1q_u8(x + 2);
    int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, m4)), off);
    int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), off);
    int32x4_t s = neon_dot_s8(vdupq_n_s32(0), lo, vld1q_s8((const int8_t *)(y + 2)));
    s = neon_dot_s8(s, hi, vld1q_s8((const int8_t *)(y + 18)));
    acc = vmlaq_n_f32(acc, vcvtq_f32_s32(s), wh_quant_rd_fp16(x) * wh_quant_rd_fp16(y));
  }
  return vaddvq_f32(acc);
}

/* Q4_K x Q8_K: chunk c = 32 bytes of qs; low nibbles sub-block 2c, high 2c+1. The integer sum
 * equals q4_k_block_sumi(); the float epilogue is the portable one (same result). */
static float
dot_q4_k_q8_k_neon(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  const uint8x16_t m4 = vdupq_n_u8(15);
  for (gint64 b = 0; b < nb; b++, x += 144, y += Q8K_BYTES) {
    const guint8 *qs = x + 16;
    const gint8 *q8 = (const gint8 *)(y + 4);
    int sumi = 0;
    for (int c = 0; c < 4; c++) {
      int sc0, sc1, m;
      k_scale_min(x + 4, 2 * c, &sc0, &m);
      k_scale_min(x + 4, 2 * c + 1, &sc1, &m);
      uint8x16_t q0 = vld1q_u8(qs + 32 * c), q1 = vld1q_u8(qs + 32 * c + 16);
      int32x4_t lo =
          neon_dot_s8(vdupq_n_s32(0), vreinterpretq_s8_u8(vandq_u8(q0, m4)), vld1q_s8(q8 + 64 * c));
      lo = neon_dot_s8(lo, vreinterpretq_s8_u8(vandq_u8(q1, m4)), vld1q_s8(q8 + 64 * c + 16));
      int32x4_t hi = neon_dot_s8(vdupq_n_s32(0), vreinterpretq_s8_u8(vshrq_n_u8(q0, 4)),
                                 vld1q_s8(q8 + 64 * c + 32));
      hi = neon_dot_s8(hi, vreinterpretq_s8_u8(vshrq_n_u8(q1, 4)), vld1q_s8(q8 + 64 * c + 48));
      sumi += sc0 * vaddvq_s32(lo) + sc1 * vaddvq_s32(hi);
    }
    sumf += k_affine_epilogue(x, y, sumi, k_mins_dot(x + 4, y));
  }
  return sumf;
}

/* Q6_K x Q8_K: 16 elements at a time in the order of q6_k_block_sumi() (chunk (h, t), half),
 * codes q = low 4 bits | 2 high bits << 4, minus 32; one scale per 16. */
static float
dot_q6_k_q8_k_neon(const guint8 *x, const guint8 *y, gint64 nb)
{
  float sumf = 0.0f;
  const uint8x16_t m4 = vdupq_n_u8(15), m3 = vdupq_n_u8(3);
  const int8x16_t off = vdupq_n_s8(32);
  for (gint64 b = 0; b < nb; b++, x += 210, y += Q8K_BYTES) {
    const guint8 *ql = x, *qh = x + 128;
    const gint8 *scales = (const gint8 *)(x + 192);
    const gint8 *q8 = (const gint8 *)(y + 4);
    int sumi = 0;
    for (int h = 0; h < 2; h++)
      for (int t = 0; t < 4; t++)
        for (int half = 0; half < 2; half++) {
          uint8x16_t l = vld1q_u8(ql + 64 * h + 32 * (t & 1) + 16 * half);
          uint8x16_t low = (t & 2) ? vshrq_n_u8(l, 4) : vandq_u8(l, m4);
          uint8x16_t hb = vld1q_u8(qh + 32 * h + 16 * half);
          uint8x16_t high = vshlq_n_u8(vandq_u8(vshlq_u8(hb, vdupq_n_s8((int8_t)(-2 * t))), m3), 4);
          int8x16_t q = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(low, high)), off);
          int32x4_t s = neon_dot_s8(vdupq_n_s32(0), q, vld1q_s8(q8 + 128 * h + 32 * t + 16 * half));
          sumi += scales[8 * h + 2 * t + half] * vaddvq_s32(s);
        }
    sumf += wh_quant_rd_fp16(x + 208) * rd_f32(y) * (float)sumi;
  }
  return sumf;
}
#endif /* WH_QUANT_NEON */

gboolean
wh_quant_vec_dot_has_simd(wh_type wtype)
{
#if WH_QUANT_X86
  switch (wtype) {
  case WH_TYPE_F32:
  case WH_TYPE_F16:
  case WH_TYPE_BF16:
  case WH_TYPE_Q4_0:
  case WH_TYPE_Q4_1:
  case WH_TYPE_Q5_0:
  case WH_TYPE_Q5_1:
  case WH_TYPE_Q8_0:
  case WH_TYPE_IQ4_NL:
  case WH_TYPE_MXFP4:
  case WH_TYPE_IQ4_XS:
  case WH_TYPE_Q2_K:
  case WH_TYPE_Q3_K:
  case WH_TYPE_Q4_K:
  case WH_TYPE_Q5_K:
  case WH_TYPE_Q6_K:
  case WH_TYPE_IQ2_XXS:
  case WH_TYPE_IQ2_XS:
  case WH_TYPE_IQ2_S:
  case WH_TYPE_IQ3_XXS:
  case WH_TYPE_IQ3_S:
  case WH_TYPE_IQ1_S:
  case WH_TYPE_IQ1_M:
    return cpu_has_avx2();
  default:
    return FALSE;
  }
#elif WH_QUANT_NEON
  return wtype == WH_TYPE_Q4_0 || wtype == WH_TYPE_Q8_0 || wtype == WH_TYPE_Q4_K ||
         wtype == WH_TYPE_Q6_K;
#else
  return FALSE;
#endif
}

/* Resolved kernels (wh_quant_vec_dot_resolve): the block-count kernels behind the
 * wh_quant_vec_dot() signature, one per (type, level) that matters for speed. */
#if WH_QUANT_X86
#define WH_VD_WRAP(name, kernel, qk)                                                               \
  static float name(const void *w, const void *a, gint64 n)                                        \
  {                                                                                                \
    return kernel(w, a, n / (qk));                                                                 \
  }
WH_VD_WRAP(vd_q4_k_avx512, dot_q4_k_q8_k_avx512, WH_QK_K)
WH_VD_WRAP(vd_q6_k_avx512, dot_q6_k_q8_k_avx512, WH_QK_K)
WH_VD_WRAP(vd_q8_0_avx512, dot_q8_0_q8_0_avx512, 32)
WH_VD_WRAP(vd_q4_0_avx512, dot_q4_0_q8_0_avx512, 32)
WH_VD_WRAP(vd_q4_k_avx2, dot_q4_k_q8_k_avx2, WH_QK_K)
WH_VD_WRAP(vd_q5_k_avx2, dot_q5_k_q8_k_avx2, WH_QK_K)
WH_VD_WRAP(vd_q6_k_avx2, dot_q6_k_q8_k_avx2, WH_QK_K)
WH_VD_WRAP(vd_iq4_xs_avx2, dot_iq4_xs_q8_k_avx2, WH_QK_K)
WH_VD_WRAP(vd_q8_0_avx2, dot_q8_0_q8_0_avx2, 32)
WH_VD_WRAP(vd_q4_0_avx2, dot_q4_0_q8_0_avx2, 32)
#undef WH_VD_WRAP

/* Multi-row drivers (wh_quant_vec_dot_rows_resolve): groups of 4 rows through the 4-row kernel,
 * the remaining rows through the single-row kernel it is bit-identical with. */
#define WH_VD_ROWS(name, kernel4, kernel1, qk)                                                     \
  static void name(const void *w, gsize stride, const void *a, gint64 n, float *out, gint64 nrows) \
  {                                                                                                \
    const guint8 *x = w;                                                                           \
    gint64 r = 0;                                                                                  \
    for (; r + 4 <= nrows; r += 4)                                                                 \
      kernel4(x + r * stride, stride, a, n / (qk), out + r);                                       \
    for (; r < nrows; r++)                                                                         \
      out[r] = kernel1(x + r * stride, a, n / (qk));                                               \
  }
/* For dot4_q8_0_q8_0_avx512(): per block of the Q8_0 activation row @y, corr[b] = -128 times
 * the sum of each 4 values (8 int32) and dy[b] = its scale as a float. */
WH_AVX512 static void
q8_0_prep_act(const guint8 *y, gint64 nb, __m256i *corr, float *dy)
{
  const __m256i m128 = _mm256_set1_epi8((char)0x80);
  for (gint64 b = 0; b < nb; b++, y += 34) {
    /* dpbusd(0x80 bytes, y) = 128 * sums of 4 */
    const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), m128,
                                          _mm256_loadu_si256((const __m256i *)(y + 2)));
    _mm256_store_si256(corr + b, _mm256_sub_epi32(_mm256_setzero_si256(), s));
    dy[b] = fp16_f16c(y);
  }
}

/* One block of dot4_q8_0_q8_0_avx512(): the 4 rows' block at @x (rows @stride apart) against
 * the activation block at @y, into @acc; prefetches the 136 bytes at @pf. */
WH_AVX512 static inline __attribute__((always_inline)) void
q8_0_rows_block(__m256 acc[4], const guint8 *x, gsize stride, const guint8 *y, __m256i corr,
                float dy, const guint8 *pf)
{
  const __m256i flip = _mm256_set1_epi8((char)0x80);
  _mm_prefetch((const char *)pf, _MM_HINT_T1);
  _mm_prefetch((const char *)pf + 64, _MM_HINT_T1);
  _mm_prefetch((const char *)pf + 128, _MM_HINT_T1);
  const __m256i qy = _mm256_loadu_si256((const __m256i *)(y + 2));
#pragma GCC unroll 4
  for (int r = 0; r < 4; r++) {
    const guint8 *xr = x + r * stride;
    const __m256i qx = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(xr + 2)), flip);
    const __m256 d = _mm256_set1_ps(fp16_f16c(xr) * dy);
    acc[r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(corr, qx, qy)), acc[r]);
  }
}

/* Q8_0 x Q8_0, rows x, x + stride, ... x + 3 stride -> out[0..3], each row's floats exactly
 * those of dot_q8_0_q8_0_avx512() (blocks paired into two accumulators, d = fp16(x) * fp16(y),
 * one FMA per block). The integers come another way: the weight bytes are made unsigned with
 * xor 0x80 (x + 128, one light op) and dpbusd starts from @corr, -128 times the sum of each
 * group of 4 activation values (made once per activation row), so each lane is sum x * y
 * exactly, without the kernel's two vpsignb per block. */
WH_AVX512 static void
dot4_q8_0_q8_0_avx512(const guint8 *x, gsize stride, const guint8 *y, const __m256i *corr,
                      const float *dy, gint64 nb, float *out)
{
  __m256 acc0[4], acc1[4];
  for (int r = 0; r < 4; r++)
    acc0[r] = acc1[r] = _mm256_setzero_ps();
  /* the group of 4 rows after the next: 4 * 34 bytes per block */
  const guint8 *pf = x + 8 * stride;
  gint64 b = 0;
  for (; b + 2 <= nb; b += 2, x += 68, y += 68, pf += 272) {
    q8_0_rows_block(acc0, x, stride, y, corr[b], dy[b], pf);
    q8_0_rows_block(acc1, x + 34, stride, y + 34, corr[b + 1], dy[b + 1], pf + 136);
  }
  if (b < nb)
    q8_0_rows_block(acc0, x, stride, y, corr[b], dy[b], pf);
  for (int r = 0; r < 4; r++)
    out[r] = hsum_ps(_mm256_add_ps(acc0[r], acc1[r]));
}

/* Q8_0 rows: @corr and the activation scales made once per call (a decode work item is ~250
 * rows), then 4 rows at a time. */
static void
vdr_q8_0_avx512(const void *w, gsize stride, const void *act, gint64 n, float *out, gint64 nrows)
{
  const guint8 *x = w, *y = act;
  const gint64 nb = n / 32;
  gint64 r = 0;
  if (nrows >= 4) {
    /* rows up to 8192 wide on the stack (prompts call this once per token and row block) */
    __m256i stack[256 + 256 / 8];
    __m256i *corr =
        nb > 256 ? g_aligned_alloc((gsize)nb, sizeof(__m256i) + sizeof(float), 32) : stack;
    float *dy = (float *)(corr + nb);
    q8_0_prep_act(y, nb, corr, dy);
    for (; r + 4 <= nrows; r += 4)
      dot4_q8_0_q8_0_avx512(x + r * stride, stride, y, corr, dy, nb, out + r);
    if (corr != stack)
      g_aligned_free(corr);
  }
  for (; r < nrows; r++)
    out[r] = dot_q8_0_q8_0_avx512(x + r * stride, y, nb);
}

/* Q4_K rows: the activation row is rearranged once per call for dot4_q4_k_q8_k_avx512() (a
 * decode work item is ~200 rows), which takes 6 shuffle-port instructions per block out of
 * every 4-row step (the port the kernel is bound by on Zen 4: ~5% more rows/s). */
static void
vdr_q4_k_avx512(const void *w, gsize stride, const void *a, gint64 n, float *out, gint64 nrows)
{
  const guint8 *x = w;
  const gint64 nb = n / WH_QK_K;
  gint64 r = 0;
  if (nrows >= 4) {
    guint8 stack[32 * Q4K_PREP_BYTES + 64];
    guint8 *heap = nb > 32 ? g_malloc((gsize)nb * Q4K_PREP_BYTES + 64) : NULL;
    guint8 *prep = (guint8 *)(((guintptr)(heap ? heap : stack) + 63) & ~(guintptr)63);
    q4k_prep_act(a, nb, prep);
    for (; r + 4 <= nrows; r += 4)
      dot4_q4_k_q8_k_avx512(x + r * stride, stride, prep, nb, out + r);
    g_free(heap);
  }
  for (; r < nrows; r++)
    out[r] = dot_q4_k_q8_k_avx512(x + r * stride, a, nb);
}

/* Q4_K rows x tokens: two tokens' activation rows prepared (on the stack up to 16384 values),
 * then dot4x2_q4_k_q8_k_avx512() over the rows; a last odd token and rows past the last group
 * of 4 as in vdr_q4_k_avx512(). */
static void
vdrt_q4_k_avx512(const void *w, gsize stride, const void *act, gsize act_stride, gint64 n,
                 float *out, gsize ld, gint64 nrows, gint64 ntokens)
{
  const guint8 *x = w, *a = act;
  const gint64 nb = n / WH_QK_K;
  gint64 t = 0;
  if (nb <= 64 && nrows >= 4) {
    guint8 stack[2 * 64 * Q4K_PREP_BYTES + 64];
    guint8 *p0 = (guint8 *)(((guintptr)stack + 63) & ~(guintptr)63), *p1 = p0 + nb * Q4K_PREP_BYTES;
    for (; t + 2 <= ntokens; t += 2) {
      const guint8 *a0 = a + t * act_stride, *a1 = a0 + act_stride;
      float *o0 = out + t * ld, *o1 = o0 + ld;
      q4k_prep_act(a0, nb, p0);
      q4k_prep_act(a1, nb, p1);
      gint64 r = 0;
      for (; r + 4 <= nrows; r += 4)
        dot4x2_q4_k_q8_k_avx512(x + r * stride, stride, p0, p1, nb, o0 + r, o1 + r);
      for (; r < nrows; r++) {
        o0[r] = dot_q4_k_q8_k_avx512(x + r * stride, a0, nb);
        o1[r] = dot_q4_k_q8_k_avx512(x + r * stride, a1, nb);
      }
    }
  }
  for (; t < ntokens; t++)
    vdr_q4_k_avx512(w, stride, a + t * act_stride, n, out + t * ld, nrows);
}

WH_VD_ROWS(vdr_q6_k_avx512, dot4_q6_k_q8_k_avx512, dot_q6_k_q8_k_avx512, WH_QK_K)
#undef WH_VD_ROWS
#endif

#if WH_QUANT_X86
/* n fp16 -> float with F16C, 8 at a time (exact: F16C widens every finite value, inf and quiet
 * NaN exactly; it only quiets signalling NaNs). */
WH_AVX2 static void
fp16_to_fp32_row_f16c(const guint8 *x, float *y, gint64 n)
{
  gint64 i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + 2 * i))));
  for (; i < n; i++)
    y[i] = wh_fp16_to_fp32(wh_quant_rd16(x + 2 * i));
}
#endif

void
wh_quant_fp16_to_fp32_row(const void *src, float *dst, gint64 n)
{
#if WH_QUANT_X86
  if (cpu_has_avx2()) {
    fp16_to_fp32_row_f16c(src, dst, n);
    return;
  }
#endif
  const guint8 *x = src;
  for (gint64 i = 0; i < n; i++)
    dst[i] = wh_fp16_to_fp32(wh_quant_rd16(x + 2 * i));
}

wh_quant_vec_dot_rows_fn
wh_quant_vec_dot_rows_resolve(wh_type wtype)
{
#if WH_QUANT_X86
  if (cpu_has_avx512()) {
    switch (wtype) {
    case WH_TYPE_Q4_K:
      return vdr_q4_k_avx512;
    case WH_TYPE_Q6_K:
      return vdr_q6_k_avx512;
    case WH_TYPE_Q8_0:
      return vdr_q8_0_avx512;
    default:
      break;
    }
  }
#endif
  (void)wtype;
  return NULL;
}

wh_quant_vec_dot_rows_tokens_fn
wh_quant_vec_dot_rows_tokens_resolve(wh_type wtype)
{
#if WH_QUANT_X86
  if (cpu_has_avx512() && wtype == WH_TYPE_Q4_K)
    return vdrt_q4_k_avx512;
#endif
  (void)wtype;
  return NULL;
}

wh_quant_vec_dot_fn
wh_quant_vec_dot_resolve(wh_type wtype)
{
#if WH_QUANT_X86
  if (cpu_has_avx512()) {
    switch (wtype) {
    case WH_TYPE_Q4_K:
      return vd_q4_k_avx512;
    case WH_TYPE_Q6_K:
      return vd_q6_k_avx512;
    case WH_TYPE_Q8_0:
      return vd_q8_0_avx512;
    case WH_TYPE_Q4_0:
      return vd_q4_0_avx512;
    default:
      break;
    }
  }
  if (cpu_has_avx2()) {
    switch (wtype) {
    case WH_TYPE_Q4_K:
      return vd_q4_k_avx2;
    case WH_TYPE_Q5_K:
      return vd_q5_k_avx2;
    case WH_TYPE_Q6_K:
      return vd_q6_k_avx2;
    case WH_TYPE_IQ4_XS:
      return vd_iq4_xs_avx2;
    case WH_TYPE_Q8_0:
      return vd_q8_0_avx2;
    case WH_TYPE_Q4_0:
      return vd_q4_0_avx2;
    default:
      break;
    }
  }
#endif
  (void)wtype;
  return NULL;
}

wh_quant_simd
wh_quant_simd_level(void)
{
#if WH_QUANT_X86
  return cpu_has_avx512() ? WH_QUANT_SIMD_AVX512
         : cpu_has_avx2() ? WH_QUANT_SIMD_AVX2
                          : WH_QUANT_SIMD_NONE;
#elif WH_QUANT_NEON
  return WH_QUANT_SIMD_NEON;
#else
  return WH_QUANT_SIMD_NONE;
#endif
}

float
wh_quant_vec_dot(wh_type wtype, const void *wrow, const void *act, gint64 n)
{
  return wh_quant_vec_dot_at(WH_QUANT_SIMD_AVX512, wtype, wrow, act, n);
}

float
wh_quant_vec_dot_at(wh_quant_simd level, wh_type wtype, const void *wrow, const void *act, gint64 n)
{
#if WH_QUANT_NEON
  if (level >= WH_QUANT_SIMD_NEON) {
    const guint8 *x = wrow, *y = act;
    switch (wtype) {
    case WH_TYPE_Q4_K:
      g_return_val_if_fail(n >= 0 && n % WH_QK_K == 0, 0.0f);
      return dot_q4_k_q8_k_neon(x, y, n / WH_QK_K);
    case WH_TYPE_Q6_K:
      g_return_val_if_fail(n >= 0 && n % WH_QK_K == 0, 0.0f);
      return dot_q6_k_q8_k_neon(x, y, n / WH_QK_K);
    case WH_TYPE_Q8_0:
      g_return_val_if_fail(n >= 0 && n % 32 == 0, 0.0f);
      return dot_q8_0_q8_0_neon(x, y, n / 32);
    case WH_TYPE_Q4_0:
      g_return_val_if_fail(n >= 0 && n % 32 == 0, 0.0f);
      return dot_q4_0_q8_0_neon(x, y, n / 32);
    default:
      break;
    }
  }
#endif
#if WH_QUANT_X86
  if (level >= WH_QUANT_SIMD_AVX512 && cpu_has_avx512()) {
    const guint8 *x = wrow, *y = act;
    switch (wtype) {
    case WH_TYPE_Q4_K:
      g_return_val_if_fail(n >= 0 && n % WH_QK_K == 0, 0.0f);
      return dot_q4_k_q8_k_avx512(x, y, n / WH_QK_K);
    case WH_TYPE_Q6_K:
      g_return_val_if_fail(n >= 0 && n % WH_QK_K == 0, 0.0f);
      return dot_q6_k_q8_k_avx512(x, y, n / WH_QK_K);
    case WH_TYPE_Q8_0:
      g_return_val_if_fail(n >= 0 && n % 32 == 0, 0.0f);
      return dot_q8_0_q8_0_avx512(x, y, n / 32);
    case WH_TYPE_Q4_0:
      g_return_val_if_fail(n >= 0 && n % 32 == 0, 0.0f);
      return dot_q4_0_q8_0_avx512(x, y, n / 32);
    default:
      break;
    }
  }
  if (level >= WH_QUANT_SIMD_AVX2 && wh_quant_vec_dot_has_simd(wtype)) {
    guint32 qk = wh_quant_block_size(wtype);
    g_return_val_if_fail(n >= 0 && n % qk == 0, 0.0f);
    const guint8 *x = wrow, *y = act;
    switch (wtype) {
    case WH_TYPE_F32:
      return dot_f32_avx2(x, act, n);
    case WH_TYPE_F16:
      return dot_f16_avx2(x, act, n);
    case WH_TYPE_BF16:
      return dot_bf16_avx2(x, act, n);
    case WH_TYPE_Q4_0:
      return dot_q4_0_q8_0_avx2(x, y, n / 32);
    case WH_TYPE_Q8_0:
      return dot_q8_0_q8_0_avx2(x, y, n / 32);
    case WH_TYPE_Q5_0:
      return dot_q5_0_q8_0_avx2(x, y, n / 32);
    case WH_TYPE_Q4_1:
      return dot_q4_1_q8_1_avx2(x, y, n / 32);
    case WH_TYPE_Q5_1:
      return dot_q5_1_q8_1_avx2(x, y, n / 32);
    case WH_TYPE_IQ4_NL:
      return dot_iq4_nl_q8_0_avx2(x, y, n / 32);
    case WH_TYPE_MXFP4:
      return dot_mxfp4_q8_0_avx2(x, y, n / 32);
    case WH_TYPE_IQ4_XS:
      return dot_iq4_xs_q8_k_avx2(x, y, n / WH_QK_K);
    case WH_TYPE_Q5_K:
      return dot_q5_k_q8_k_avx2(x, y, n / WH_QK_K);
    case WH_TYPE_Q2_K:
      return dot_q2_k_q8_k_avx2(x, y, n / WH_QK_K);
    case WH_TYPE_Q3_K:
      return dot_q3_k_q8_k_avx2(x, y, n / WH_QK_K);
    case WH_TYPE_IQ2_XXS:
      return dot_iq2_xxs_q8_k_avx2(x, y, n / WH_QK_K);
    case WH_TYPE_IQ2_XS:
      return dot_iq2_xs_q8_k_avx2(x, y, n / WH_QK_K);
    case WH_TYPE_IQ2_S:
      return dot_iq2_s_q8_k_avx2(x, y, n / WH_QK_K);
    case WH_TYPE_IQ3_XXS:
      return dot_iq3_xxs_q8_k_avx2(x, y, n / WH_QK_K);
    case WH_TYPE_IQ3_S:
      return dot_iq3_s_q8_k_avx2(x, y, n / WH_QK_K);
    case WH_TYPE_IQ1_S:
      return dot_iq1_s_q8_k_avx2(x, y, n / WH_QK_K);
    case WH_TYPE_IQ1_M:
      return dot_iq1_m_q8_k_avx2(x, y, n / WH_QK_K);
    case WH_TYPE_Q4_K:
      return dot_q4_k_q8_k_avx2(x, y, n / WH_QK_K);
    case WH_TYPE_Q6_K:
      return dot_q6_k_q8_k_avx2(x, y, n / WH_QK_K);
    default:
      break;
    }
  }
#endif
  return wh_quant_vec_dot_portable(wtype, wrow, act, n);
}
