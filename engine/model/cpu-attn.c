/* cpu-attn.c — the inner loops of CPU attention over an F16 KV cache.
 *
 * One work item of attn_worker() (cpu.c) is the ng query heads that share one KV head,
 * against nj cached positions. The K and V slices of that head sit at a constant stride in
 * the cache (one cache row per position holds every KV head). The two loops here are:
 *   scores[hh * ld + j] = scale * dot(q[hh], K[j])   (hh < ng, j < nj, dk values each)
 *   out[hh * dv + i]    = sum_j  a[hh * ld + j] * V[j][i]   (i < dv, j ascending)
 * The portable C loops are the reference. The AVX2 + F16C path (x86-64, picked at run time)
 * does the same arithmetic in the same order with 8 lanes: a dot keeps the 8 partial sums
 * of the portable loop (lane k sums the elements i = k mod 8, multiply then add, no FMA) and
 * adds them in the same tree; a value sum adds a * V[j][i] for j ascending per element. So
 * both paths give the same floats bit for bit (test: model /model/attn-simd), and the SIMD
 * path is only a speed choice. Before it, attention was converted row by row into a buffer
 * and run in SSE2 scalar code: ~8% of a 256-token decode step of a 1B model, and the larger
 * part of a step at a few thousand tokens of context.
 *
 * Both loops prefetch the slice WH_ATTN_PREFETCH positions ahead (wh_attn_prefetch()): the
 * 2 * dk bytes every cache row are a stride the hardware prefetcher does not follow across
 * pages (an F16 row conversion waiting on DRAM was 12% of a 256-token decode, 1% with it).
 *
 * The softmax of the scores and the SiLU of the FFN use wh_cpu_exp(), an exp of our own
 * (range reduction by ln 2 in two parts, a degree-7 polynomial, the exponent put in with
 * integer adds: within 2 ulp of expf() over the float range, 0 below -87.3) written once as
 * scalar C and once with 8 lanes, the same float operations in the same order, so again
 * every level gives the same bits. libm's expf() one value at a time was ~3% of a decode
 * step (a softmax per head, 5632 SiLUs per layer).
 */
#include "config.h"

#include "quant/quant-simd.h"

#include "model/cpu-attn.h"
#include "quant/quant.h"

#include <math.h>
#include <string.h>

#define WH_ATTN_X86 WH_SIMD_X86

float
wh_cpu_dot_f32(const float *a, const float *b, gsize n)
{
  float s[8] = {0};
  gsize i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++)
      s[k] += a[i + k] * b[i + k];
  for (; i < n; i++)
    s[i & 7] += a[i] * b[i];
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

void
wh_attn_prefetch(const guint8 *p, gsize bytes)
{
  const guintptr end = (guintptr)p + bytes;
  for (guintptr a = (guintptr)p & ~(guintptr)63; a < end; a += 64)
    __builtin_prefetch((const void *)a, 0, 3);
}

static void
scores_portable(const float *q, guint32 ng, guint32 dk, const guint8 *k, gsize stride, guint32 nj,
                float scale, float *scores, gsize ld, float *buf)
{
  for (guint32 j = 0; j < nj; j++) {
    if (j + WH_ATTN_PREFETCH < nj)
      wh_attn_prefetch(k + (gsize)(j + WH_ATTN_PREFETCH) * stride, 2 * (gsize)dk);
    wh_quant_fp16_to_fp32_row(k + (gsize)j * stride, buf, dk);
    for (guint32 hh = 0; hh < ng; hh++)
      scores[hh * ld + j] = wh_cpu_dot_f32(q + (gsize)hh * dk, buf, dk) * scale;
  }
}

static void
values_portable(const float *a, gsize ld, guint32 ng, guint32 dv, const guint8 *v, gsize stride,
                guint32 nj, float *out, float *buf)
{
  memset(out, 0, sizeof(float) * ng * dv);
  for (guint32 j = 0; j < nj; j++) {
    if (j + WH_ATTN_PREFETCH < nj)
      wh_attn_prefetch(v + (gsize)(j + WH_ATTN_PREFETCH) * stride, 2 * (gsize)dv);
    wh_quant_fp16_to_fp32_row(v + (gsize)j * stride, buf, dv);
    for (guint32 hh = 0; hh < ng; hh++) {
      const float w = a[hh * ld + j];
      float *o = out + (gsize)hh * dv;
      for (guint32 i = 0; i < dv; i++)
        o[i] += w * buf[i];
    }
  }
}

/* wh_cpu_exp() constants: ln 2 = LN2_HI + LN2_LO with LN2_HI exact in 16 bits (n * LN2_HI
 * exact for |n| < 2^8), 1/k! Horner coefficients. */
#define EXP_LOG2E 1.44269504088896341f
#define EXP_LN2_HI 0.693145751953125f
#define EXP_LN2_LO 1.42860682030941723e-6f
#define EXP_MAX 88.7228317f    /* above: inf */
#define EXP_MIN (-87.3365479f) /* below: 0 (e^x would be subnormal) */
#define EXP_ROUND 12582912.0f  /* 1.5 * 2^23: adding it rounds to an integer (ties to even) */

static const float exp_poly[8] = {1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24,
                                  1.0f / 6,    0.5f,       1.0f,       1.0f};

float
wh_cpu_exp(float x)
{
  if (x != x)
    return x;
  if (x > EXP_MAX)
    return INFINITY;
  if (x < EXP_MIN)
    return 0.0f;
  const float n = (x * EXP_LOG2E + EXP_ROUND) - EXP_ROUND;
  const float r = (x - n * EXP_LN2_HI) - n * EXP_LN2_LO;
  float p = exp_poly[0];
  for (int i = 1; i < 8; i++)
    p = p * r + exp_poly[i];
  /* p * 2^n: n in [-126, 128]; 2^n as two factors so that n = 128 (x near EXP_MAX, p < 1)
   * does not overflow the exponent field */
  const gint32 h = (gint32)n / 2;
  guint32 b1 = (guint32)(127 + h) << 23, b2 = (guint32)(127 + (gint32)n - h) << 23;
  float f1, f2;
  memcpy(&f1, &b1, 4);
  memcpy(&f2, &b2, 4);
  return (p * f1) * f2;
}

/* s[j] = wh_cpu_exp(s[j] - mx), j < n */
static void
exp_sub_portable(float *s, guint32 n, float mx)
{
  for (guint32 j = 0; j < n; j++)
    s[j] = wh_cpu_exp(s[j] - mx);
}

static void
silu_mul_portable(float *gate, const float *up, gsize n)
{
  for (gsize i = 0; i < n; i++)
    gate[i] = gate[i] / (1.0f + wh_cpu_exp(-gate[i])) * up[i];
}

#if WH_ATTN_X86
#define WH_ATTN_AVX2 __attribute__((target("avx2,f16c")))

/* ((s0+s4)+(s1+s5))+((s2+s6)+(s3+s7)) of the 8 lanes, as wh_cpu_dot_f32(). */
WH_ATTN_AVX2 static inline float
hsum8_tree(__m256 s)
{
  const __m128 x = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  const __m128 h = _mm_hadd_ps(x, x); /* [x0+x1, x2+x3, ...] */
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

/* wh_cpu_exp() on 8 lanes: the same operations (NaN lanes come back NaN). */
WH_ATTN_AVX2 static inline __m256
exp8(__m256 x)
{
  const __m256 n = _mm256_sub_ps(
      _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E)), _mm256_set1_ps(EXP_ROUND)),
      _mm256_set1_ps(EXP_ROUND));
  const __m256 r = _mm256_sub_ps(_mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(EXP_LN2_HI))),
                                 _mm256_mul_ps(n, _mm256_set1_ps(EXP_LN2_LO)));
  __m256 p = _mm256_set1_ps(exp_poly[0]);
  for (int i = 1; i < 8; i++)
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(exp_poly[i]));
  /* n is garbage in lanes outside the range; they are replaced below */
  const __m256i ni = _mm256_cvttps_epi32(
      _mm256_min_ps(_mm256_max_ps(n, _mm256_set1_ps(-126.0f)), _mm256_set1_ps(128.0f)));
  /* h = n / 2 truncated toward zero, as the scalar (gint32)n / 2 */
  const __m256i h = _mm256_srai_epi32(_mm256_add_epi32(ni, _mm256_srli_epi32(ni, 31)), 1);
  const __m256i b1 = _mm256_slli_epi32(_mm256_add_epi32(h, _mm256_set1_epi32(127)), 23);
  const __m256i b2 =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, h), _mm256_set1_epi32(127)), 23);
  __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(b1)), _mm256_castsi256_ps(b2));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY),
                       _mm256_cmp_ps(x, _mm256_set1_ps(EXP_MAX), _CMP_GT_OQ));
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(),
                       _mm256_cmp_ps(x, _mm256_set1_ps(EXP_MIN), _CMP_LT_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

WH_ATTN_AVX2 static void
exp_sub_avx2(float *s, guint32 n, float mx)
{
  const __m256 m = _mm256_set1_ps(mx);
  guint32 j = 0;
  for (; j + 8 <= n; j += 8)
    _mm256_storeu_ps(s + j, exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), m)));
  exp_sub_portable(s + j, n - j, mx);
}

WH_ATTN_AVX2 static void
silu_mul_avx2(float *gate, const float *up, gsize n)
{
  gsize i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = exp8(_mm256_xor_ps(g, _mm256_set1_ps(-0.0f)));
    _mm256_storeu_ps(gate + i,
                     _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)),
                                   _mm256_loadu_ps(up + i)));
  }
  silu_mul_portable(gate + i, up + i, n - i);
}

/* dk % 8 == 0: K[j] is widened to floats once (in @buf, L1) and dotted with every query head
 * of the group; one 8-lane accumulator per dot, as the 8 partial sums of wh_cpu_dot_f32(). */
WH_ATTN_AVX2 static void
scores_avx2(const float *q, guint32 ng, guint32 dk, const guint8 *k, gsize stride, guint32 nj,
            float scale, float *scores, gsize ld, float *buf)
{
  for (guint32 j = 0; j < nj; j++) {
    if (j + WH_ATTN_PREFETCH < nj)
      wh_attn_prefetch(k + (gsize)(j + WH_ATTN_PREFETCH) * stride, 2 * (gsize)dk);
    const guint8 *kj = k + (gsize)j * stride;
    for (guint32 i = 0; i < dk; i += 8)
      _mm256_storeu_ps(buf + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kj + 2 * i))));
    for (guint32 hh = 0; hh < ng; hh++) {
      const float *qh = q + (gsize)hh * dk;
      __m256 s = _mm256_setzero_ps();
      for (guint32 i = 0; i < dk; i += 8)
        s = _mm256_add_ps(s, _mm256_mul_ps(_mm256_loadu_ps(qh + i), _mm256_loadu_ps(buf + i)));
      scores[hh * ld + j] = hsum8_tree(s) * scale;
    }
  }
}

/* dv % 16 == 0: columns [c, c + 16) of up to 4 heads at a time stay in 8 registers while j
 * runs over every position (ascending, as the portable loop adds them). */
WH_ATTN_AVX2 static void
values_avx2(const float *a, gsize ld, guint32 ng, guint32 dv, const guint8 *v, gsize stride,
            guint32 nj, float *out)
{
  for (guint32 h0 = 0; h0 < ng; h0 += 4) {
    const guint32 nh = MIN(4u, ng - h0);
    for (guint32 c = 0; c < dv; c += 16) {
      __m256 acc[4][2];
      for (guint32 hh = 0; hh < 4; hh++)
        acc[hh][0] = acc[hh][1] = _mm256_setzero_ps();
      const guint8 *vc = v + 2 * (gsize)c;
      for (guint32 j = 0; j < nj; j++) {
        if (c == 0 && j + WH_ATTN_PREFETCH < nj)
          wh_attn_prefetch(v + (gsize)(j + WH_ATTN_PREFETCH) * stride, 2 * (gsize)dv);
        const __m128i raw0 = _mm_loadu_si128((const __m128i *)(vc + (gsize)j * stride));
        const __m128i raw1 = _mm_loadu_si128((const __m128i *)(vc + (gsize)j * stride + 16));
        const __m256 v0 = _mm256_cvtph_ps(raw0), v1 = _mm256_cvtph_ps(raw1);
        for (guint32 hh = 0; hh < nh; hh++) {
          const __m256 w = _mm256_set1_ps(a[(h0 + hh) * ld + j]);
          acc[hh][0] = _mm256_add_ps(acc[hh][0], _mm256_mul_ps(w, v0));
          acc[hh][1] = _mm256_add_ps(acc[hh][1], _mm256_mul_ps(w, v1));
        }
      }
      for (guint32 hh = 0; hh < nh; hh++) {
        _mm256_storeu_ps(out + (gsize)(h0 + hh) * dv + c, acc[hh][0]);
        _mm256_storeu_ps(out + (gsize)(h0 + hh) * dv + c + 8, acc[hh][1]);
      }
    }
  }
}
#endif

static gboolean
use_simd(wh_quant_simd level, guint32 d, guint32 multiple)
{
#if WH_ATTN_X86
  return level >= WH_QUANT_SIMD_AVX2 && wh_quant_simd_level() >= WH_QUANT_SIMD_AVX2 &&
         d % multiple == 0;
#else
  (void)level, (void)d, (void)multiple;
  return FALSE;
#endif
}

void
wh_attn_scores_f16(wh_quant_simd level, const float *q, guint32 ng, guint32 dk, const guint8 *k,
                   gsize stride, guint32 nj, float scale, float *scores, gsize ld, float *buf)
{
#if WH_ATTN_X86
  if (use_simd(level, dk, 8)) {
    scores_avx2(q, ng, dk, k, stride, nj, scale, scores, ld, buf);
    return;
  }
#endif
  (void)use_simd;
  scores_portable(q, ng, dk, k, stride, nj, scale, scores, ld, buf);
}

void
wh_attn_values_f16(wh_quant_simd level, const float *a, gsize ld, guint32 ng, guint32 dv,
                   const guint8 *v, gsize stride, guint32 nj, float *out, float *buf)
{
#if WH_ATTN_X86
  if (use_simd(level, dv, 16)) {
    values_avx2(a, ld, ng, dv, v, stride, nj, out);
    return;
  }
#endif
  values_portable(a, ld, ng, dv, v, stride, nj, out, buf);
}

void
wh_cpu_softmax_exp(wh_quant_simd level, float *s, guint32 n)
{
  float mx = -INFINITY;
  for (guint32 j = 0; j < n; j++)
    mx = MAX(mx, s[j]);
#if WH_ATTN_X86
  if (use_simd(level, 8, 8)) {
    exp_sub_avx2(s, n, mx);
    return;
  }
#endif
  exp_sub_portable(s, n, mx);
}

void
wh_cpu_silu_mul(wh_quant_simd level, float *gate, const float *up, gsize n)
{
#if WH_ATTN_X86
  if (use_simd(level, 8, 8)) {
    silu_mul_avx2(gate, up, n);
    return;
  }
#endif
  silu_mul_portable(gate, up, n);
}
