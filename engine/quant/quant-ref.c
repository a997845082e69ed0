/* quant-ref.c — the reference quantizers (block-formats.md section 5) and their dispatcher.
 *
 * Implementation notes
 * --------------------
 * Reproducing the reference's bytes needs strict binary32 arithmetic: sums are sequential in
 * index order, products and sums are grouped exactly as the spec writes them (the comments
 * repeat the grouping where it matters) and nothing may be contracted into an FMA — hence the
 * pragma below, which holds even if the engine is built with -march=native. rint() is
 * wh_quant_nearest_int() (the reference's 1.5 * 2^23 trick: ties to even for |v| < 2^22);
 * roundf()/lroundf() round ties away from zero.
 *
 * The candidate-scale searches (SYM, AFFINE, IQ4) are the hot loops: 15-37 candidates, each a
 * pass over 16-32 elements. On x86-64 they run four candidates at a time in SSE2 lanes, every
 * lane doing exactly its candidate's scalar operations (IEEE binary32 per lane, sums in index
 * order), and the acceptance tests then run in candidate order as the spec says. The plain
 * scalar loops are kept under #else (-DWH_QUANT_NO_SIMD builds them on x86 too); both produce
 * the same bytes (checked on 400 random rows x 11 types and on the reference file).
 *
 * Every quantizer works on one row of n_per_row elements (a multiple of its block size):
 * quantize_row_<type>(x, y, n, qw) with qw = the importance vector or NULL.
 */
#include "config.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

#include <float.h>

#include "quant/quant-private.h"

#if defined(__SSE2__) && !defined(WH_QUANT_NO_SIMD)
#define WH_QUANT_SSE2 1
#include <emmintrin.h>
#else
#define WH_QUANT_SSE2 0
#endif

/* ---- Shared helpers (5.1) ------------------------------------------------------------------ */

static inline int
clampi(int v, int lo, int hi)
{
  return v < lo ? lo : (v > hi ? hi : v);
}

/* First-largest-magnitude: signed value of the first element of largest |x|; *amax = |max|. */
static float
first_largest(const float *x, int n, float *amax_out)
{
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < n; i++) {
    float ax = fabsf(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  *amax_out = amax;
  return max;
}

/* SYM(n, nmax, x, w) -> scale; codes L in [0, 2*nmax-1]. @w NULL means weights x^2. */
static float
sym_quant(int n, int nmax, const float *x, const float *w, guint8 *L)
{
  float amax;
  float max = first_largest(x, n, &amax);
  if (amax < 1e-15f) {
    memset(L, 0, (gsize)n);
    return 0.0f;
  }
  float iscale = (float)-nmax / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < n; i++) {
    int l = clampi(wh_quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = (guint8)(l + nmax);
    float wi = w ? w[i] : x[i] * x[i];
    sumlx += (wi * x[i]) * (float)l;
    suml2 += (wi * (float)l) * (float)l;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
#if WH_QUANT_SSE2
  /* The 18 candidates are independent (only the acceptance test depends on the previous ones):
   * their sums are computed four lanes at a time, each lane with exactly the scalar arithmetic,
   * then accepted in order as below. */
  static const int cand[20] = {-9, -8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9};
  const __m128 magic = _mm_set1_ps(12582912.0f);
  const __m128 vlo = _mm_set1_ps((float)-nmax), vhi = _mm_set1_ps((float)(nmax - 1));
  for (int c = 0; c < 18; c += 4) {
    float isc[4], slx[4], sl2[4];
    for (int k = 0; k < 4; k++)
      isc[k] = -((float)nmax + 0.1f * (float)cand[c + k]) / max;
    __m128 vis = _mm_loadu_ps(isc), vslx = _mm_setzero_ps(), vsl2 = _mm_setzero_ps();
    for (int i = 0; i < n; i++) {
      __m128 t = _mm_mul_ps(vis, _mm_set1_ps(x[i]));
      __m128 l = _mm_sub_ps(_mm_add_ps(t, magic), magic); /* rint, |t| < 2^22 */
      l = _mm_min_ps(_mm_max_ps(l, vlo), vhi);
      float wi = w ? w[i] : x[i] * x[i];
      vslx = _mm_add_ps(vslx, _mm_mul_ps(_mm_set1_ps(wi * x[i]), l));
      vsl2 = _mm_add_ps(vsl2, _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(wi), l), l));
    }
    _mm_storeu_ps(slx, vslx);
    _mm_storeu_ps(sl2, vsl2);
    for (int k = 0; k < 4 && c + k < 18; k++) {
      if (sl2[k] > 0.0f && slx[k] * slx[k] > best * sl2[k]) {
        for (int i = 0; i < n; i++) {
          int l = clampi(wh_quant_nearest_int(isc[k] * x[i]), -nmax, nmax - 1);
          L[i] = (guint8)(l + nmax);
        }
        scale = slx[k] / sl2[k];
        best = scale * slx[k];
      }
    }
  }
#else
  for (int is = -9; is <= 9; is++) {
    if (is == 0)
      continue;
    iscale = -((float)nmax + 0.1f * (float)is) / max;
    sumlx = suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
      int l = clampi(wh_quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
      float wi = w ? w[i] : x[i] * x[i];
      sumlx += (wi * x[i]) * (float)l;
      suml2 += (wi * (float)l) * (float)l;
    }
    if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; i++) {
        int l = clampi(wh_quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (guint8)(l + nmax);
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
#endif
  return scale;
}

/* Q3SEARCH(x[16]) -> scale; codes L in [0, 7] (Q3_K without imatrix, nmax = 4). */
static float
q3_search(const float *x, guint8 *L_out)
{
  enum { N = 16 };
  float amax;
  float max = first_largest(x, N, &amax);
  if (amax < 1e-15f) {
    memset(L_out, 0, N);
    return 0.0f;
  }
  int L[N];
  float w[N];
  float iscale = -4.0f / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < N; i++) {
    L[i] = clampi(wh_quant_nearest_int(iscale * x[i]), -4, 3);
    w[i] = x[i] * x[i];
    sumlx += (w[i] * x[i]) * (float)L[i];
    suml2 += (w[i] * (float)L[i]) * (float)L[i];
  }
  for (int pass = 0; pass < 5; pass++) {
    int changed = 0;
    for (int i = 0; i < N; i++) {
      float slx = sumlx - (w[i] * x[i]) * (float)L[i];
      if (slx > 0.0f) {
        float sl2 = suml2 - (w[i] * (float)L[i]) * (float)L[i];
        int nl = clampi(wh_quant_nearest_int((x[i] * sl2) / slx), -4, 3);
        if (nl != L[i]) {
          slx = slx + (w[i] * x[i]) * (float)nl;
          sl2 = sl2 + (w[i] * (float)nl) * (float)nl;
          if (sl2 > 0.0f && (slx * slx) * suml2 > (sumlx * sumlx) * sl2) {
            L[i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed)
      break;
  }
  for (int i = 0; i < N; i++)
    L_out[i] = (guint8)(L[i] + 4);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* AFFINE(n, nmax, x, w, rmin, rdelta, nstep, use_mad) -> scale, *mn (>= 0); codes L in
 * [0, nmax]. @Laux is scratch of n bytes. */
static float
affine_quant(int n, int nmax, const float *x, const float *w, float rmin, float rdelta, int nstep,
             gboolean use_mad, guint8 *L, guint8 *Laux, float *mn)
{
  float min = x[0], max = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; i++) {
    if (x[i] < min)
      min = x[i];
    if (x[i] > max)
      max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0.0f)
    min = 0.0f;
  if (max == min) {
    memset(L, 0, (gsize)n);
    *mn = -min;
    return 0.0f;
  }
  float iscale = (float)nmax / (max - min);
  float scale = 1.0f / iscale;
  float best = 0.0f;
  for (int i = 0; i < n; i++) {
    int l = clampi(wh_quant_nearest_int(iscale * (x[i] - min)), 0, nmax);
    L[i] = (guint8)l;
    float diff = (scale * (float)l + min) - x[i];
    float err = use_mad ? fabsf(diff) : diff * diff;
    best += w[i] * err;
  }
#if WH_QUANT_SSE2
  /* Candidates four at a time, one per SSE lane: each lane performs exactly the scalar
   * operations of its candidate (per-lane IEEE binary32, sums in index order), so the choice is
   * identical. Candidates depend on each other only through the running min: when a candidate
   * is accepted with a different min, the later lanes are discarded and recomputed. */
  float lv[4 * 32]; /* n <= 32: the codes of each lane, as floats */
  const __m128 magic = _mm_set1_ps(12582912.0f), vzero = _mm_setzero_ps();
  const __m128 vnmax = _mm_set1_ps((float)nmax);
  const __m128 absmask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
  g_assert(n <= 32);
  for (int is = 0; is <= nstep;) {
    int nl = MIN(4, nstep + 1 - is);
    float isc[4], sl[4], sl2[4], sxl[4], D[4], sc[4], mnv[4], err[4];
    for (int k = 0; k < 4; k++)
      isc[k] = ((rmin + rdelta * (float)(is + MIN(k, nl - 1))) + (float)nmax) / (max - min);
    __m128 vis = _mm_loadu_ps(isc);
    __m128 s_l = vzero, s_l2 = vzero, s_xl = vzero;
    for (int i = 0; i < n; i++) {
      /* l = clamp(rint(iscale * (x - min)), 0, nmax); rint by the 1.5*2^23 trick in float */
      __m128 t = _mm_mul_ps(vis, _mm_set1_ps(x[i] - min));
      __m128 l = _mm_sub_ps(_mm_add_ps(t, magic), magic);
      l = _mm_min_ps(_mm_max_ps(l, vzero), vnmax);
      _mm_storeu_ps(lv + 4 * i, l);
      __m128 wl = _mm_mul_ps(_mm_set1_ps(w[i]), l);
      s_l = _mm_add_ps(s_l, wl);
      s_l2 = _mm_add_ps(s_l2, _mm_mul_ps(wl, l));
      s_xl = _mm_add_ps(s_xl, _mm_mul_ps(wl, _mm_set1_ps(x[i])));
    }
    _mm_storeu_ps(sl, s_l);
    _mm_storeu_ps(sl2, s_l2);
    _mm_storeu_ps(sxl, s_xl);
    for (int k = 0; k < 4; k++) {
      D[k] = sum_w * sl2[k] - sl[k] * sl[k];
      sc[k] = mnv[k] = 0.0f;
      if (D[k] > 0.0f) {
        sc[k] = (sum_w * sxl[k] - sum_x * sl[k]) / D[k];
        mnv[k] = (sl2[k] * sum_x - sl[k] * sxl[k]) / D[k];
        if (mnv[k] > 0.0f) {
          mnv[k] = 0.0f;
          sc[k] = sxl[k] / sl2[k];
        }
      }
    }
    __m128 vsc = _mm_loadu_ps(sc), vmn = _mm_loadu_ps(mnv), verr = vzero;
    for (int i = 0; i < n; i++) {
      __m128 diff =
          _mm_sub_ps(_mm_add_ps(_mm_mul_ps(vsc, _mm_loadu_ps(lv + 4 * i)), vmn), _mm_set1_ps(x[i]));
      __m128 e = use_mad ? _mm_and_ps(diff, absmask) : _mm_mul_ps(diff, diff);
      verr = _mm_add_ps(verr, _mm_mul_ps(_mm_set1_ps(w[i]), e));
    }
    _mm_storeu_ps(err, verr);
    int next = is + nl;
    for (int k = 0; k < nl; k++) {
      if (D[k] > 0.0f && err[k] < best) {
        for (int i = 0; i < n; i++)
          L[i] = (guint8)lv[4 * i + k];
        best = err[k];
        scale = sc[k];
        gboolean min_changed = memcmp(&min, &mnv[k], sizeof min) != 0;
        min = mnv[k];
        if (min_changed) {
          next = is + k + 1;
          break;
        }
      }
    }
    is = next;
  }
#else
  for (int is = 0; is <= nstep; is++) {
    iscale = ((rmin + rdelta * (float)is) + (float)nmax) / (max - min);
    float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
    for (int i = 0; i < n; i++) {
      int l = clampi(wh_quant_nearest_int(iscale * (x[i] - min)), 0, nmax);
      Laux[i] = (guint8)l;
      float wl = w[i] * (float)l;
      sum_l += wl;
      sum_l2 += wl * (float)l;
      sum_xl += wl * x[i];
    }
    float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0.0f) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0.0f) {
        this_min = 0.0f;
        this_scale = sum_xl / sum_l2;
      }
      float err = 0.0f;
      for (int i = 0; i < n; i++) {
        float diff = (this_scale * (float)Laux[i] + this_min) - x[i];
        err += w[i] * (use_mad ? fabsf(diff) : diff * diff);
      }
      if (err < best) {
        memcpy(L, Laux, (gsize)n);
        best = err;
        scale = this_scale;
        min = this_min;
      }
    }
  }
#endif
  *mn = -min;
  return scale;
}

/* POSSCALE(n, nmax, x, w) -> scale; codes L in [0, nmax] (n <= 16). */
static float
posscale_quant(int n, int nmax, const float *x, const float *w, guint8 *L_out)
{
  int L[16];
  float max = 0.0f;
  for (int i = 0; i < n; i++)
    if (x[i] > max)
      max = x[i];
  if (max < 1e-15f) {
    memset(L_out, 0, (gsize)n);
    return 0.0f;
  }
  float iscale = (float)nmax / max;
  float scale = 1.0f / iscale;
  float best = 0.0f;
  for (int i = 0; i < n; i++) {
    L[i] = wh_quant_nearest_int(iscale * x[i]);
    float diff = x[i] - scale * (float)L[i];
    best += (w[i] * diff) * diff;
  }
  for (int is = -4; is <= 4; is++) {
    if (is == 0)
      continue;
    float iscale_is = (0.1f * (float)is + (float)nmax) / max;
    float scale_is = 1.0f / iscale_is;
    float mse = 0.0f;
    for (int i = 0; i < n; i++) {
      int l = MIN(nmax, wh_quant_nearest_int(iscale_is * x[i]));
      float diff = x[i] - scale_is * (float)l;
      mse += (w[i] * diff) * diff;
    }
    if (mse < best) {
      best = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < n; i++) {
    L[i] = MIN(nmax, wh_quant_nearest_int(iscale * x[i]));
    sumlx += (w[i] * x[i]) * (float)L[i];
    suml2 += (w[i] * (float)L[i]) * (float)L[i];
  }
  for (int pass = 0; pass < 5; pass++) {
    int changed = 0;
    for (int i = 0; i < n; i++) {
      float slx = sumlx - (w[i] * x[i]) * (float)L[i];
      float sl2 = suml2 - (w[i] * (float)L[i]) * (float)L[i];
      if (slx > 0.0f && sl2 > 0.0f) {
        int nl = MIN(nmax, wh_quant_nearest_int((x[i] * sl2) / slx));
        if (nl != L[i]) {
          slx += (w[i] * x[i]) * (float)nl;
          sl2 += (w[i] * (float)nl) * (float)nl;
          if ((slx * slx) * suml2 > (sumlx * sumlx) * sl2) {
            L[i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed)
      break;
  }
  for (int i = 0; i < n; i++)
    L_out[i] = (guint8)clampi(L[i], 0, 255);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Weights qw*sqrt(sigma2 + x^2) of @n elements. */
static void
imatrix_weights(const float *x, const float *qw, float sigma2, int n, float *w)
{
  for (int i = 0; i < n; i++)
    w[i] = qw[i] * sqrtf(sigma2 + x[i] * x[i]);
}

static float
sum_squares(const float *x, gint64 n)
{
  float s = 0.0f;
  for (gint64 i = 0; i < n; i++)
    s += x[i] * x[i];
  return s;
}

/* ---- Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 (5.2) ---------------------------------------------- */

static void
pack_q4(guint8 *qs, const guint8 *q)
{
  for (int j = 0; j < 16; j++)
    qs[j] = (guint8)(q[j] | (q[j + 16] << 4));
}

static void
pack_q5(guint8 *qh_p, guint8 *qs, const guint8 *q)
{
  guint32 qh = 0;
  for (int j = 0; j < 16; j++)
    qs[j] = (guint8)((q[j] & 15) | ((q[j + 16] & 15) << 4));
  for (int e = 0; e < 32; e++)
    qh |= (guint32)((q[e] >> 4) & 1) << e;
  wh_quant_wr32(qh_p, qh);
}

/* Q4_0 (nmax 8, 18-byte blocks) and Q5_0 (nmax 16, 22-byte blocks). */
static void
quantize_row_sym_0(const float *x, guint8 *y, gint64 n, const float *qw, int nmax)
{
  const int bytes = nmax == 8 ? 18 : 22;
  float sigma2 = qw ? sum_squares(x, n) / (float)n : 0.0f;
  for (gint64 b = 0; b < n / 32; b++, x += 32, y += bytes) {
    guint8 q[32];
    if (qw) {
      float w[32];
      imatrix_weights(x, qw + 32 * b, sigma2, 32, w);
      float scale = sym_quant(32, nmax, x, w, q);
      wh_quant_wr16(y, wh_fp32_to_fp16(scale));
    } else {
      float amax;
      float max = first_largest(x, 32, &amax);
      float d = max / (float)-nmax;
      float id = d != 0.0f ? 1.0f / d : 0.0f;
      wh_quant_wr16(y, wh_fp32_to_fp16(d));
      for (int j = 0; j < 32; j++)
        q[j] = (guint8)MIN(2 * nmax - 1, (int)(x[j] * id + ((float)nmax + 0.5f)));
    }
    if (nmax == 8)
      pack_q4(y + 2, q);
    else
      pack_q5(y + 2, y + 6, q);
  }
}

/* Q4_1 (nmax 15, 20-byte blocks) and Q5_1 (nmax 31, 24-byte blocks). */
static void
quantize_row_affine_1(const float *x, guint8 *y, gint64 n, const float *qw, int nmax)
{
  const int bytes = nmax == 15 ? 20 : 24;
  float sigma2 = qw ? sum_squares(x, n) / (float)n : 0.0f;
  for (gint64 b = 0; b < n / 32; b++, x += 32, y += bytes) {
    guint8 q[32];
    if (qw) {
      float w[32];
      guint8 aux[32];
      float mn;
      imatrix_weights(x, qw + 32 * b, sigma2, 32, w);
      float scale = affine_quant(32, nmax, x, w, -0.9f, 0.05f, 36, FALSE, q, aux, &mn);
      wh_quant_wr16(y, wh_fp32_to_fp16(scale));
      wh_quant_wr16(y + 2, wh_fp32_to_fp16(-mn));
    } else {
      float min = FLT_MAX, max = -FLT_MAX;
      for (int j = 0; j < 32; j++) {
        if (x[j] < min)
          min = x[j];
        if (x[j] > max)
          max = x[j];
      }
      float d = (max - min) / (float)nmax;
      float id = d != 0.0f ? 1.0f / d : 0.0f;
      wh_quant_wr16(y, wh_fp32_to_fp16(d));
      wh_quant_wr16(y + 2, wh_fp32_to_fp16(min));
      for (int j = 0; j < 32; j++)
        q[j] = (guint8)MIN(nmax, (int)((x[j] - min) * id + 0.5f));
    }
    if (nmax == 15)
      pack_q4(y + 4, q);
    else
      pack_q5(y + 4, y + 8, q);
  }
}

/* Q8_0 (34-byte blocks) and, with @with_sum, Q8_1 (36-byte blocks). Imatrix ignored. */
static void
quantize_row_q8(const float *x, guint8 *y, gint64 n, gboolean with_sum)
{
  const int bytes = with_sum ? 36 : 34;
  for (gint64 b = 0; b < n / 32; b++, x += 32, y += bytes) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
      amax = MAX(amax, fabsf(x[j]));
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    gint8 *qs = (gint8 *)(y + (with_sum ? 4 : 2));
    int sum = 0;
    for (int j = 0; j < 32; j++) {
      qs[j] = (gint8)roundf(x[j] * id);
      sum += qs[j];
    }
    wh_quant_wr16(y, wh_fp32_to_fp16(d));
    if (with_sum)
      wh_quant_wr16(y + 2, wh_fp32_to_fp16((float)sum * d));
  }
}

/* ---- Q8_K (5.3) ----------------------------------------------------------------------------- */

static void
quantize_row_q8_k(const float *x, guint8 *y, gint64 n)
{
  for (gint64 b = 0; b < n / 256; b++, x += 256, y += 292) {
    float amax;
    float max = first_largest(x, 256, &amax);
    gint8 *qs = (gint8 *)(y + 4);
    if (amax == 0.0f) {
      memset(y, 0, 292);
      continue;
    }
    float iscale = -127.0f / max;
    for (int j = 0; j < 256; j++)
      qs[j] = (gint8)MIN(127, wh_quant_nearest_int(iscale * x[j]));
    for (int k = 0; k < 16; k++) {
      int s = 0;
      for (int j = 0; j < 16; j++)
        s += qs[16 * k + j];
      wh_quant_wr16(y + 260 + 2 * k, (guint16)(gint16)s);
    }
    float d = 1.0f / iscale;
    guint32 u;
    memcpy(&u, &d, sizeof u);
    wh_quant_wr32(y, u);
  }
}

/* ---- Q2_K (5.4) ----------------------------------------------------------------------------- */

/* Packs 256 2-bit codes per 4.8: code of e = 128h + 32s + l goes to bits 2s of qs[32h + l]. */
static void
pack_2bit(guint8 *qs, const guint8 *q)
{
  memset(qs, 0, 64);
  for (int e = 0; e < 256; e++) {
    int h = e / 128, s = (e % 128) / 32, l = e % 32;
    qs[32 * h + l] |= (guint8)((q[e] & 3) << (2 * s));
  }
}

static void
quantize_row_q2_k(const float *x, guint8 *y, gint64 n, const float *qw)
{
  for (gint64 b = 0; b < n / 256; b++, x += 256, y += 84) {
    guint8 L[256], aux[16];
    float scales[16], mins[16], w[16], sw[16];
    guint8 *sc = y;
    float sigma2 = qw ? sum_squares(x, 256) / 256.0f : 0.0f;
    for (int k = 0; k < 16; k++) {
      const float *xk = x + 16 * k;
      if (qw) {
        imatrix_weights(xk, qw + 256 * b + 16 * k, sigma2, 16, w);
        float s = 0.0f;
        for (int i = 0; i < 16; i++)
          s += w[i];
        sw[k] = s;
        scales[k] = affine_quant(16, 3, xk, w, -0.9f, 0.05f, 36, FALSE, L + 16 * k, aux, &mins[k]);
      } else {
        for (int i = 0; i < 16; i++)
          w[i] = fabsf(xk[i]);
        scales[k] = affine_quant(16, 3, xk, w, -0.5f, 0.1f, 15, TRUE, L + 16 * k, aux, &mins[k]);
      }
    }
    if (qw) {
      guint8 Ls[16], Lm[16];
      float dsc = posscale_quant(16, 15, scales, sw, Ls);
      float dmn = posscale_quant(16, 15, mins, sw, Lm);
      for (int k = 0; k < 16; k++)
        sc[k] = (guint8)(Ls[k] | (Lm[k] << 4));
      wh_quant_wr16(y + 80, wh_fp32_to_fp16(dsc));
      wh_quant_wr16(y + 82, wh_fp32_to_fp16(dmn));
    } else {
      float max_scale = 0.0f, max_min = 0.0f;
      for (int k = 0; k < 16; k++) {
        if (scales[k] > max_scale)
          max_scale = scales[k];
        if (mins[k] > max_min)
          max_min = mins[k];
      }
      if (max_scale > 0.0f) {
        float iscale = 15.0f / max_scale;
        for (int k = 0; k < 16; k++)
          sc[k] = (guint8)wh_quant_nearest_int(iscale * scales[k]);
        wh_quant_wr16(y + 80, wh_fp32_to_fp16(max_scale / 15.0f));
      } else {
        memset(sc, 0, 16);
        wh_quant_wr16(y + 80, 0);
      }
      if (max_min > 0.0f) {
        float iscale = 15.0f / max_min;
        for (int k = 0; k < 16; k++)
          sc[k] |= (guint8)((guint)wh_quant_nearest_int(iscale * mins[k]) << 4);
        wh_quant_wr16(y + 82, wh_fp32_to_fp16(max_min / 15.0f));
      } else {
        wh_quant_wr16(y + 82, 0);
      }
    }
    float d = wh_quant_rd_fp16(y + 80);
    float dmin = wh_quant_rd_fp16(y + 82);
    for (int k = 0; k < 16; k++) {
      float dk = d * (float)(sc[k] & 15);
      if (dk == 0.0f)
        continue;
      float mk = dmin * (float)(sc[k] >> 4);
      for (int i = 0; i < 16; i++)
        L[16 * k + i] = (guint8)clampi(wh_quant_nearest_int((x[16 * k + i] + mk) / dk), 0, 3);
    }
    pack_2bit(y + 16, L);
  }
}

/* ---- Q3_K (5.5) ----------------------------------------------------------------------------- */

static void
quantize_row_q3_k(const float *x, guint8 *y, gint64 n, const float *qw)
{
  for (gint64 b = 0; b < n / 256; b++, x += 256, y += 110) {
    guint8 L[256];
    float scales[16], w[16], sw[16];
    guint8 *sc = y + 96;
    float sigma2 = qw ? 2.0f * sum_squares(x, 256) / 256.0f : 0.0f;
    for (int k = 0; k < 16; k++) {
      const float *xk = x + 16 * k;
      if (qw) {
        imatrix_weights(xk, qw + 256 * b + 16 * k, sigma2, 16, w);
        float s = 0.0f;
        for (int i = 0; i < 16; i++)
          s += w[i];
        sw[k] = s;
        scales[k] = sym_quant(16, 4, xk, w, L + 16 * k);
      } else {
        scales[k] = q3_search(xk, L + 16 * k);
      }
    }
    int ls[16];
    gboolean write_scales = TRUE;
    memset(sc, 0, 12);
    if (qw) {
      guint8 Ls[16];
      float dblk = sym_quant(16, 32, scales, sw, Ls);
      for (int k = 0; k < 16; k++)
        ls[k] = Ls[k];
      wh_quant_wr16(y + 108, wh_fp32_to_fp16(dblk));
    } else {
      float amax = 0.0f, max_scale = 0.0f;
      for (int k = 0; k < 16; k++) {
        if (fabsf(scales[k]) > amax) {
          amax = fabsf(scales[k]);
          max_scale = scales[k];
        }
      }
      if (max_scale != 0.0f) {
        float iscale = -32.0f / max_scale;
        for (int k = 0; k < 16; k++)
          ls[k] = clampi(wh_quant_nearest_int(iscale * scales[k]), -32, 31) + 32;
        wh_quant_wr16(y + 108, wh_fp32_to_fp16(1.0f / iscale));
      } else {
        write_scales = FALSE; /* all-zero block: scale bytes stay 0, d = 0 */
        wh_quant_wr16(y + 108, 0);
      }
    }
    if (write_scales) {
      for (int k = 0; k < 16; k++) {
        int l = ls[k];
        if (k < 8)
          sc[k] |= (guint8)(l & 15);
        else
          sc[k - 8] |= (guint8)((l & 15) << 4);
        sc[8 + (k % 4)] |= (guint8)((l >> 4) << (2 * (k / 4)));
      }
    }
    float d = wh_quant_rd_fp16(y + 108);
    for (int k = 0; k < 16; k++) {
      int low = k < 8 ? (sc[k] & 15) : (sc[k - 8] >> 4);
      int high = (sc[8 + (k % 4)] >> (2 * (k / 4))) & 3;
      float dk = d * (float)((low | (high << 4)) - 32);
      if (dk == 0.0f)
        continue;
      for (int i = 0; i < 16; i++)
        L[16 * k + i] = (guint8)(clampi(wh_quant_nearest_int(x[16 * k + i] / dk), -4, 3) + 4);
    }
    guint8 *hmask = y;
    memset(hmask, 0, 32);
    for (int e = 0; e < 256; e++) {
      if (L[e] > 3) {
        hmask[e % 32] |= (guint8)(1 << (e / 32));
        L[e] -= 4;
      }
    }
    pack_2bit(y + 32, L);
  }
}

/* ---- Q4_K and Q5_K (5.6) -------------------------------------------------------------------- */

/* Packs 8 six-bit scale codes and 8 min codes into 12 bytes (inverse of 4.10). */
static void
pack_k_scales(guint8 *S, const guint8 *ls, const guint8 *lm)
{
  memset(S, 0, 12);
  for (int j = 0; j < 8; j++) {
    if (j < 4) {
      S[j] = ls[j];
      S[j + 4] = lm[j];
    } else {
      S[j + 4] = (guint8)((ls[j] & 15) | ((lm[j] & 15) << 4));
      S[j - 4] |= (guint8)((ls[j] >> 4) << 6);
      S[j] |= (guint8)((lm[j] >> 4) << 6);
    }
  }
}

static void
quantize_row_q45_k(const float *x, guint8 *y, gint64 n, const float *qw, int nmax)
{
  const int bytes = nmax == 15 ? 144 : 176;
  for (gint64 b = 0; b < n / 256; b++, x += 256, y += bytes) {
    guint8 L[256], aux[32], ls[8], lm[8];
    float scales[8], mins[8], w[32], sw[8];
    float sigma2 = qw ? 2.0f * sum_squares(x, 256) / 256.0f : 0.0f;
    for (int j = 0; j < 8; j++) {
      const float *xj = x + 32 * j;
      if (qw) {
        imatrix_weights(xj, qw + 256 * b + 32 * j, sigma2, 32, w);
        float s = 0.0f;
        for (int i = 0; i < 32; i++)
          s += w[i];
        sw[j] = s;
        scales[j] =
            affine_quant(32, nmax, xj, w, -0.9f, 0.05f, 36, FALSE, L + 32 * j, aux, &mins[j]);
      } else {
        float sum_x2 = 0.0f;
        for (int i = 0; i < 32; i++)
          sum_x2 += xj[i] * xj[i];
        float av_x = sqrtf(sum_x2 / 32.0f);
        for (int i = 0; i < 32; i++)
          w[i] = av_x + fabsf(xj[i]);
        scales[j] =
            nmax == 15
                ? affine_quant(32, 15, xj, w, -1.0f, 0.1f, 20, FALSE, L + 32 * j, aux, &mins[j])
                : affine_quant(32, 31, xj, w, -0.5f, 0.1f, 15, FALSE, L + 32 * j, aux, &mins[j]);
      }
    }
    float d, dmin;
    if (qw) {
      d = posscale_quant(8, 63, scales, sw, ls);
      dmin = posscale_quant(8, 63, mins, sw, lm);
    } else {
      float max_scale = 0.0f, max_min = 0.0f;
      for (int j = 0; j < 8; j++) {
        if (scales[j] > max_scale)
          max_scale = scales[j];
        if (mins[j] > max_min)
          max_min = mins[j];
      }
      float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
      float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
      for (int j = 0; j < 8; j++) {
        ls[j] = (guint8)MIN(63, (guint8)wh_quant_nearest_int(inv_scale * scales[j]));
        lm[j] = (guint8)MIN(63, (guint8)wh_quant_nearest_int(inv_min * mins[j]));
      }
      d = max_scale / 63.0f;
      dmin = max_min / 63.0f;
    }
    wh_quant_wr16(y, wh_fp32_to_fp16(d));
    wh_quant_wr16(y + 2, wh_fp32_to_fp16(dmin));
    pack_k_scales(y + 4, ls, lm);
    float df = wh_quant_rd_fp16(y);
    float dminf = wh_quant_rd_fp16(y + 2);
    for (int j = 0; j < 8; j++) {
      float dj = df * (float)ls[j];
      if (dj == 0.0f)
        continue;
      float mj = dminf * (float)lm[j];
      for (int i = 0; i < 32; i++)
        L[32 * j + i] = (guint8)clampi(wh_quant_nearest_int((x[32 * j + i] + mj) / dj), 0, nmax);
    }
    guint8 *qs = y + (nmax == 15 ? 16 : 48);
    if (nmax == 31) {
      guint8 *qh = y + 16;
      memset(qh, 0, 32);
      for (int e = 0; e < 256; e++) {
        if (L[e] > 15) {
          qh[e % 32] |= (guint8)(1 << (e / 32));
          L[e] -= 16;
        }
      }
    }
    for (int c = 0; c < 4; c++)
      for (int l = 0; l < 32; l++)
        qs[32 * c + l] = (guint8)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
  }
}

/* ---- Q6_K (5.7) ----------------------------------------------------------------------------- */

static void
quantize_row_q6_k(const float *x, guint8 *y, gint64 n, const float *qw)
{
  for (gint64 b = 0; b < n / 256; b++, x += 256, y += 210) {
    guint8 L[256];
    float scales[16];
    float amax = 0.0f, max_scale = 0.0f;
    for (int k = 0; k < 16; k++) {
      scales[k] = sym_quant(16, 32, x + 16 * k, qw ? qw + 256 * b + 16 * k : NULL, L + 16 * k);
      if (fabsf(scales[k]) > amax) {
        amax = fabsf(scales[k]);
        max_scale = scales[k];
      }
    }
    if (fabsf(max_scale) < 1e-15f) {
      memset(y, 0, 210);
      continue;
    }
    float iscale = -128.0f / max_scale;
    wh_quant_wr16(y + 208, wh_fp32_to_fp16(1.0f / iscale));
    gint8 *sc = (gint8 *)(y + 192);
    for (int k = 0; k < 16; k++)
      sc[k] = (gint8)MIN(127, wh_quant_nearest_int(iscale * scales[k]));
    float d = wh_quant_rd_fp16(y + 208);
    for (int k = 0; k < 16; k++) {
      float dk = d * (float)sc[k];
      if (dk == 0.0f)
        continue;
      for (int i = 0; i < 16; i++)
        L[16 * k + i] = (guint8)(clampi(wh_quant_nearest_int(x[16 * k + i] / dk), -32, 31) + 32);
    }
    guint8 *ql = y, *qh = y + 128;
    memset(ql, 0, 192);
    for (int e = 0; e < 256; e++) {
      int h = e / 128, t = (e % 128) / 32, l = e % 32;
      int q = L[e];
      guint8 *p = ql + 64 * h + ((t & 1) ? 32 : 0) + l;
      *p |= (guint8)((q & 15) << ((t & 2) ? 4 : 0));
      qh[32 * h + l] |= (guint8)((q >> 4) << (2 * t));
    }
  }
}

/* ---- IQ4_NL and IQ4_XS (5.8) ---------------------------------------------------------------- */

/* nearest(a) of 5.8 over the value table @v (kvalues_iq4nl as floats, strictly increasing).
 * k = number of v[1..14] <= a, so v[k] <= a < v[k+1] inside the range. Branch-free (the
 * compiler vectorizes the count): this runs 16 x 32 times per sub-block. NaN gives code 1. */
static inline int
iq4_nearest(const float *v, float a)
{
  /* No special case for the ends: a <= v[0] gives k = 0 and a - v[0] <= 0 < v[1] - a -> 0;
   * a >= v[15] gives k = 14 and v[15] - a <= 0 < a - v[14] -> 15, as 5.8 says. */
  int k = 0;
  for (int i = 1; i < 15; i++)
    k += a >= v[i];
  return (a - v[k]) < (v[k + 1] - a) ? k : k + 1;
}

/* Best scale of one 32-element sub-block with weights @w (5.8 step 2). */
static float
iq4_subblock_scale(const float *v, const float *x, const float *w)
{
  float amax;
  float max = first_largest(x, 32, &amax);
  if (amax < 1e-15f)
    return 0.0f;
#if WH_QUANT_SSE2
  /* 16 candidate scales (the initial one, then t = -7..7), four lanes at a time, each lane with
   * the scalar arithmetic; accepted in order afterwards. nearest() per lane without a gather:
   * lower = largest v[i] (i <= 14) <= a, else v[0]; upper = smallest v[i] (i >= 1) > a, else
   * v[15] -- the same v[k], v[k+1] as iq4_nearest() -- then the same tie-break. */
  float ids[16], sqx[16], sq2[16];
  ids[0] = 1.0f / (-max / v[0]);
  for (int t = -7; t <= 7; t++)
    ids[t + 8] = ((float)t + v[0]) / max;
  for (int c = 0; c < 16; c += 4) {
    __m128 vid = _mm_loadu_ps(ids + c), vqx = _mm_setzero_ps(), vq2 = _mm_setzero_ps();
    for (int j = 0; j < 32; j++) {
      __m128 a = _mm_mul_ps(vid, _mm_set1_ps(x[j]));
      __m128 lower = _mm_set1_ps(v[0]), upper = _mm_set1_ps(v[15]);
      for (int i = 1; i < 15; i++) {
        __m128 vi = _mm_set1_ps(v[i]);
        __m128 ge = _mm_cmpge_ps(a, vi);
        lower = _mm_or_ps(_mm_and_ps(ge, vi), _mm_andnot_ps(ge, lower));
      }
      for (int i = 14; i >= 1; i--) {
        __m128 vi = _mm_set1_ps(v[i]);
        __m128 lt = _mm_cmplt_ps(a, vi);
        upper = _mm_or_ps(_mm_and_ps(lt, vi), _mm_andnot_ps(lt, upper));
      }
      __m128 pick_lower = _mm_cmplt_ps(_mm_sub_ps(a, lower), _mm_sub_ps(upper, a));
      __m128 q = _mm_or_ps(_mm_and_ps(pick_lower, lower), _mm_andnot_ps(pick_lower, upper));
      __m128 wq = _mm_mul_ps(_mm_set1_ps(w[j]), q);
      vqx = _mm_add_ps(vqx, _mm_mul_ps(wq, _mm_set1_ps(x[j])));
      vq2 = _mm_add_ps(vq2, _mm_mul_ps(wq, q));
    }
    _mm_storeu_ps(sqx + c, vqx);
    _mm_storeu_ps(sq2 + c, vq2);
  }
  float d = sq2[0] > 0.0f ? sqx[0] / sq2[0] : 0.0f;
  float best = d * sqx[0];
  for (int c = 1; c < 16; c++) {
    if (sq2[c] > 0.0f && sqx[c] * sqx[c] > best * sq2[c]) {
      d = sqx[c] / sq2[c];
      best = d * sqx[c];
    }
  }
#else
  float d = -max / v[0];
  float id = 1.0f / d;
  float sumqx = 0.0f, sumq2 = 0.0f;
  for (int j = 0; j < 32; j++) {
    float q = v[iq4_nearest(v, id * x[j])];
    sumqx += (w[j] * q) * x[j];
    sumq2 += (w[j] * q) * q;
  }
  d = sumq2 > 0.0f ? sumqx / sumq2 : 0.0f;
  float best = d * sumqx;
  for (int t = -7; t <= 7; t++) {
    id = ((float)t + v[0]) / max; /* integer numerator t + v[0], exact in float */
    sumqx = sumq2 = 0.0f;
    for (int j = 0; j < 32; j++) {
      float q = v[iq4_nearest(v, id * x[j])];
      sumqx += (w[j] * q) * x[j];
      sumq2 += (w[j] * q) * q;
    }
    if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
#endif
  return d;
}

static void
pack_iq4_codes(const float *v, guint8 *qs, const float *x, float id)
{
  for (int j = 0; j < 16; j++)
    qs[j] = (guint8)(iq4_nearest(v, id * x[j]) | (iq4_nearest(v, id * x[j + 16]) << 4));
}

static void
quantize_row_iq4(const float *x, guint8 *y, gint64 n, const float *qw, gboolean xs)
{
  const int S = xs ? 256 : 32;
  const int bytes = xs ? 136 : 18;
  float v[16];
  for (int i = 0; i < 16; i++)
    v[i] = (float)kvalues_iq4nl[i];
  for (gint64 b = 0; b < n / S; b++, x += S, y += bytes) {
    float sigma2 = sum_squares(x, S) * (2.0f / (float)S);
    float scales[8], w[32];
    float amax = 0.0f, max_scale = 0.0f;
    for (int sb = 0; sb < S / 32; sb++) {
      const float *xs_ = x + 32 * sb;
      if (qw)
        imatrix_weights(xs_, qw + (gint64)S * b + 32 * sb, sigma2, 32, w);
      else
        for (int j = 0; j < 32; j++)
          w[j] = xs_[j] * xs_[j];
      scales[sb] = iq4_subblock_scale(v, xs_, w);
      if (fabsf(scales[sb]) > amax) {
        amax = fabsf(scales[sb]);
        max_scale = scales[sb];
      }
    }
    if (!xs) {
      wh_quant_wr16(y, wh_fp32_to_fp16(scales[0]));
      float id = scales[0] != 0.0f ? 1.0f / scales[0] : 0.0f;
      pack_iq4_codes(v, y + 2, x, id);
      continue;
    }
    float d = -max_scale / 32.0f;
    wh_quant_wr16(y, wh_fp32_to_fp16(d));
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    guint16 scales_h = 0;
    guint8 *scales_l = y + 4;
    memset(scales_l, 0, 4);
    for (int sb = 0; sb < 8; sb++) {
      int l = clampi(wh_quant_nearest_int(id * scales[sb]), -32, 31);
      float dl = d * (float)l;
      float idl = dl != 0.0f ? 1.0f / dl : 0.0f;
      pack_iq4_codes(v, y + 8 + 16 * sb, x + 32 * sb, idl);
      int ls = l + 32;
      scales_l[sb / 2] |= (guint8)((ls & 15) << (4 * (sb % 2)));
      scales_h |= (guint16)((ls >> 4) << (2 * sb));
    }
    wh_quant_wr16(y + 2, scales_h);
  }
}

/* ---- TQ1_0, TQ2_0, MXFP4 (5.9) -------------------------------------------------------------- */

static void
ternary_codes(const float *x, guint8 *t, guint8 *d_field)
{
  float d = 0.0f;
  for (int j = 0; j < 256; j++)
    d = MAX(d, fabsf(x[j]));
  float id = d != 0.0f ? 1.0f / d : 0.0f;
  wh_quant_wr16(d_field, wh_fp32_to_fp16(d));
  for (int j = 0; j < 256; j++)
    t[j] = (guint8)(lroundf(x[j] * id) + 1);
}

static void
quantize_row_tq2_0(const float *x, guint8 *y, gint64 n)
{
  for (gint64 b = 0; b < n / 256; b++, x += 256, y += 66) {
    guint8 t[256];
    ternary_codes(x, t, y + 64);
    memset(y, 0, 64);
    for (int e = 0; e < 256; e++) {
      int c = e / 128, nn = (e % 128) / 32, m = e % 32;
      y[32 * c + m] |= (guint8)(t[e] << (2 * nn));
    }
  }
}

static guint8
tq1_pack(const guint8 *digits, int count)
{
  int N = 0;
  for (int i = 0; i < 5; i++)
    N = N * 3 + (i < count ? digits[i] : 0);
  return (guint8)((N * 256 + 242) / 243);
}

static void
quantize_row_tq1_0(const float *x, guint8 *y, gint64 n)
{
  for (gint64 b = 0; b < n / 256; b++, x += 256, y += 54) {
    guint8 t[256], dg[5];
    ternary_codes(x, t, y + 52);
    for (int m = 0; m < 32; m++) {
      for (int k = 0; k < 5; k++)
        dg[k] = t[32 * k + m];
      y[m] = tq1_pack(dg, 5);
    }
    for (int m = 0; m < 16; m++) {
      for (int k = 0; k < 5; k++)
        dg[k] = t[160 + 16 * k + m];
      y[32 + m] = tq1_pack(dg, 5);
    }
    for (int m = 0; m < 4; m++) {
      for (int k = 0; k < 4; k++)
        dg[k] = t[240 + 4 * k + m];
      y[48 + m] = tq1_pack(dg, 4);
    }
  }
}

static void
quantize_row_mxfp4(const float *x, guint8 *y, gint64 n)
{
  for (gint64 b = 0; b < n / 32; b++, x += 32, y += 17) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
      amax = MAX(amax, fabsf(x[j]));
    int e = 0;
    if (amax > 0.0f) {
      /* correctly rounded binary32 log2: double log2 then one rounding */
      float lg = (float)log2((double)amax);
      e = (int)floorf(lg) - 2 + 127;
      if (e < 0)
        e = 0; /* amax < 2^-125: the reference wraps (5.9); we clamp */
    }
    y[0] = (guint8)e;
    guint32 sbits = e == 0 ? 0x00200000u : e == 1 ? 0x00400000u : (guint32)(e - 1) << 23;
    float s;
    memcpy(&s, &sbits, sizeof s);
    guint8 q[32];
    for (int j = 0; j < 32; j++) {
      int best_i = 0;
      float best_err = fabsf((float)kvalues_fp4[0] * s - x[j]);
      for (int i = 1; i < 16; i++) {
        float err = fabsf((float)kvalues_fp4[i] * s - x[j]);
        if (err < best_err) {
          best_err = err;
          best_i = i;
        }
      }
      q[j] = (guint8)best_i;
    }
    pack_q4(y + 1, q);
  }
}

/* ---- Dispatcher ----------------------------------------------------------------------------- */

static gboolean
is_grid_iquant(wh_type type)
{
  switch (type) {
  case WH_TYPE_IQ1_S:
  case WH_TYPE_IQ1_M:
  case WH_TYPE_IQ2_XXS:
  case WH_TYPE_IQ2_XS:
  case WH_TYPE_IQ2_S:
  case WH_TYPE_IQ3_XXS:
  case WH_TYPE_IQ3_S:
    return TRUE;
  default:
    return FALSE;
  }
}

gboolean
wh_quant_type_requires_imatrix(wh_type type)
{
  return type == WH_TYPE_IQ2_XXS || type == WH_TYPE_IQ2_XS || type == WH_TYPE_IQ1_S;
}

gboolean
wh_quant_type_can_quantize(wh_type type)
{
  switch (type) {
  case WH_TYPE_F32:
  case WH_TYPE_F16:
  case WH_TYPE_BF16:
  case WH_TYPE_Q4_0:
  case WH_TYPE_Q4_1:
  case WH_TYPE_Q5_0:
  case WH_TYPE_Q5_1:
  case WH_TYPE_Q8_0:
  case WH_TYPE_Q8_1:
  case WH_TYPE_Q8_K:
  case WH_TYPE_Q2_K:
  case WH_TYPE_Q3_K:
  case WH_TYPE_Q4_K:
  case WH_TYPE_Q5_K:
  case WH_TYPE_Q6_K:
  case WH_TYPE_IQ4_NL:
  case WH_TYPE_IQ4_XS:
  case WH_TYPE_TQ1_0:
  case WH_TYPE_TQ2_0:
  case WH_TYPE_MXFP4:
    return TRUE;
  default:
#ifdef WH_HAVE_IQ_SEARCH
    return is_grid_iquant(type);
#else
    return FALSE;
#endif
  }
}

/* One row of @n floats -> @y. The type is known to be supported and n a multiple. */
static void
quantize_row(wh_type type, const float *x, guint8 *y, gint64 n, const float *qw)
{
  switch (type) {
  case WH_TYPE_F32:
    memcpy(y, x, (gsize)n * sizeof(float));
    break;
  case WH_TYPE_F16:
    wh_quant_fp32_to_fp16_row(x, y, n);
    break;
  case WH_TYPE_BF16:
    for (gint64 i = 0; i < n; i++)
      wh_quant_wr16(y + 2 * i, wh_fp32_to_bf16(x[i]));
    break;
  case WH_TYPE_Q4_0:
    quantize_row_sym_0(x, y, n, qw, 8);
    break;
  case WH_TYPE_Q5_0:
    quantize_row_sym_0(x, y, n, qw, 16);
    break;
  case WH_TYPE_Q4_1:
    quantize_row_affine_1(x, y, n, qw, 15);
    break;
  case WH_TYPE_Q5_1:
    quantize_row_affine_1(x, y, n, qw, 31);
    break;
  case WH_TYPE_Q8_0:
    quantize_row_q8(x, y, n, FALSE);
    break;
  case WH_TYPE_Q8_1:
    quantize_row_q8(x, y, n, TRUE);
    break;
  case WH_TYPE_Q8_K:
    quantize_row_q8_k(x, y, n);
    break;
  case WH_TYPE_Q2_K:
    quantize_row_q2_k(x, y, n, qw);
    break;
  case WH_TYPE_Q3_K:
    quantize_row_q3_k(x, y, n, qw);
    break;
  case WH_TYPE_Q4_K:
    quantize_row_q45_k(x, y, n, qw, 15);
    break;
  case WH_TYPE_Q5_K:
    quantize_row_q45_k(x, y, n, qw, 31);
    break;
  case WH_TYPE_Q6_K:
    quantize_row_q6_k(x, y, n, qw);
    break;
  case WH_TYPE_IQ4_NL:
    quantize_row_iq4(x, y, n, qw, FALSE);
    break;
  case WH_TYPE_IQ4_XS:
    quantize_row_iq4(x, y, n, qw, TRUE);
    break;
  case WH_TYPE_TQ1_0:
    quantize_row_tq1_0(x, y, n);
    break;
  case WH_TYPE_TQ2_0:
    quantize_row_tq2_0(x, y, n);
    break;
  case WH_TYPE_MXFP4:
    quantize_row_mxfp4(x, y, n);
    break;
  default:
    g_assert_not_reached();
  }
}

gsize
wh_quant_quantize_rows(wh_type type, const float *src, void *dst, gint64 nrows, gint64 n_per_row,
                       const float *imatrix, GError **error)
{
  g_return_val_if_fail(error == NULL || *error == NULL, 0);
  guint32 qk = wh_quant_block_size(type);
  if (!wh_quant_type_can_quantize(type)) {
    g_set_error(error, WH_QUANT_ERROR, WH_QUANT_ERROR_UNSUPPORTED,
                is_grid_iquant(type)
                    ? "No quantizer yet for tensor type %s (grid i-quant search not built in); "
                      "choose another type"
                    : "Cannot quantize to tensor type %s; choose another type",
                wh_type_name(type));
    return 0;
  }
  if (n_per_row <= 0 || n_per_row % qk != 0 || nrows < 0) {
    g_set_error(error, WH_QUANT_ERROR, WH_QUANT_ERROR_BAD_SHAPE,
                "Cannot quantize %" G_GINT64_FORMAT " rows of %" G_GINT64_FORMAT
                " elements to %s: the row length must be a positive multiple of %u",
                nrows, n_per_row, wh_type_name(type), qk);
    return 0;
  }
  if (wh_quant_type_requires_imatrix(type) && imatrix == NULL) {
    g_set_error(error, WH_QUANT_ERROR, WH_QUANT_ERROR_NEEDS_IMATRIX,
                "Tensor type %s needs an importance matrix; pass one (--imatrix) or choose "
                "another type",
                wh_type_name(type));
    return 0;
  }
  if (is_grid_iquant(type)) {
#ifdef WH_HAVE_IQ_SEARCH
    return wh_quant_iq_quantize_rows(type, src, dst, nrows, n_per_row, imatrix, error);
#else
    g_assert_not_reached();
#endif
  }
  gsize row_bytes = wh_quant_row_bytes(type, n_per_row);
  guint8 *y = dst;
  for (gint64 r = 0; r < nrows; r++)
    quantize_row(type, src + r * n_per_row, y + (gsize)r * row_bytes, n_per_row, imatrix);
  return (gsize)nrows * row_bytes;
}
