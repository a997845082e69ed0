/* quant-iq-search.c — encoders for the grid i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S,
 * IQ3_XXS, IQ3_S).
 *
 * Design note
 * -----------
 * Owns: wh_quant_iq_quantize_rows() (declared in quant-private.h, dispatched to by quant.c).
 * The reference's encoders for these types are not specified (block-formats.md 5.10); any
 * encoder that writes valid indices decodes correctly. This one is a weighted least-squares
 * search of our own:
 *  1. Per super-block of 256: element weights (imatrix · sqrt(sigma² + x²), or a default built
 *     from x² without imatrix) and, for the magnitude grids, the sign of every element (with the
 *     even-parity rule of IQ2_XXS/IQ2_XS/IQ3_XXS settled by giving the cheapest element the
 *     wrong sign).
 *  2. Per scale unit (sub-block of 16 or 32): several candidate scales; at each, every group of
 *     8 (or 4) values is snapped to its nearest allowed grid point under the weighted squared
 *     error (see "neighbour maps"), then the scale is refitted by least squares; the best wins.
 *  3. The super-block scale is chosen so the sub-block scales fit the 3/4-bit scale codes; then
 *     every sub-block is re-assigned at its quantized scale, trying neighbouring scale codes,
 *     and the super-block scale is refitted while that lowers the weighted error.
 * Neighbour maps: per grid, every point of the full lattice (each element rounded to its
 * nearest allowed value: 3^8, 8^4 or 3^8 points) lists the grid entries closest to it. Built
 * once per process (g_once), immutable afterwards, never freed (static lifetime).
 * Promises: valid blocks for any input (non-finite inputs give unspecified values but every
 * index is in range); deterministic; thread-safe (no mutable global state, no allocation per
 * call after the maps exist).
 * Does not: reproduce the reference's bytes (no spec for that), or validate its arguments
 * beyond what quant-private.h says the caller leaves to it.
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "quant/quant-private.h"

/* ---- Grids and their neighbour maps ---------------------------------------------------------- */

typedef enum {
  GRID_IQ2XXS,
  GRID_IQ2XS,
  GRID_IQ2S,
  GRID_IQ3XXS,
  GRID_IQ3S,
  GRID_IQ1S,
  N_GRIDS
} grid_id;

typedef struct {
  int n_grid;     /* entries */
  int width;      /* elements per entry: 8 or 4 */
  int n_levels;   /* distinct element values (3 or 8) */
  int n_lattice;  /* n_levels ^ width */
  float level[8]; /* the distinct element values, ascending (grid units) */
  float thr[7];   /* midpoints between consecutive levels */
  float lut_lo;   /* half-step buckets of [lut_lo, lut_hi] -> nearest level index */
  float lut_hi;
  guint8 lut[160];
  float *val;      /* n_grid × width element values */
  guint32 *nb_off; /* n_lattice + 1 offsets into nb */
  guint16 *nb;     /* per lattice point: candidate entries, nearest first */
} iq_grid;

/* How far beyond the nearest entry (in squared level steps) a lattice point's list reaches, and
 * its length cap. Larger lists find better points for skewed weights but cost time. */
#define NB_MARGIN 2.0f
#define NB_CAP 24
#define NB_CAP_IQ1 16 /* IQ1 snaps every slot twice (both delta signs): shorter lists */

static guint8
grid_raw_byte(grid_id id, int e, int j)
{
  switch (id) {
  case GRID_IQ2XXS:
    return wh_quant_grid_byte64(iq2xxs_grid[e], j);
  case GRID_IQ2XS:
    return wh_quant_grid_byte64(iq2xs_grid[e], j);
  case GRID_IQ2S:
    return wh_quant_grid_byte64(iq2s_grid[e], j);
  case GRID_IQ3XXS:
    return wh_quant_grid_byte32(iq3xxs_grid[e], j);
  case GRID_IQ3S:
    return wh_quant_grid_byte32(iq3s_grid[e], j);
  case GRID_IQ1S:
  default:
    return wh_quant_grid_byte64(iq1s_grid[e], j);
  }
}

typedef struct {
  float d2;
  guint16 e;
} nb_cand;

static int
nb_cand_cmp(const void *pa, const void *pb)
{
  const nb_cand *a = pa, *b = pb;
  if (a->d2 != b->d2)
    return a->d2 < b->d2 ? -1 : 1;
  return (int)a->e - (int)b->e;
}

static void
grid_build(iq_grid *g, grid_id id)
{
  static const int n_entries[N_GRIDS] = {
      WH_QUANT_TABLE_IQ2XXS_GRID_LEN, WH_QUANT_TABLE_IQ2XS_GRID_LEN, WH_QUANT_TABLE_IQ2S_GRID_LEN,
      WH_QUANT_TABLE_IQ3XXS_GRID_LEN, WH_QUANT_TABLE_IQ3S_GRID_LEN,  WH_QUANT_TABLE_IQ1S_GRID_LEN,
  };
  g->n_grid = n_entries[id];
  g->width = (id == GRID_IQ3XXS || id == GRID_IQ3S) ? 4 : 8;
  g->val = g_new(float, (gsize)g->n_grid * g->width);

  /* Element values (IQ1_S entries are signed bytes) and the set of distinct values. */
  gboolean seen[256] = {FALSE};
  for (int e = 0; e < g->n_grid; e++)
    for (int j = 0; j < g->width; j++) {
      guint8 b = grid_raw_byte(id, e, j);
      int v = id == GRID_IQ1S ? (int)(gint8)b : (int)b;
      g->val[e * g->width + j] = (float)v;
      seen[v + 128] = TRUE;
    }
  g->n_levels = 0;
  for (int v = 0; v < 256; v++)
    if (seen[v] && g->n_levels < 8)
      g->level[g->n_levels++] = (float)(v - 128);
  for (int k = 0; k + 1 < g->n_levels; k++)
    g->thr[k] = 0.5f * (g->level[k] + g->level[k + 1]);
  /* Bucket b holds [lut_lo + b/2, lut_lo + (b+1)/2); every threshold is a bucket edge (the
   * levels are integers), so the bucket decides the level (a tie goes up). */
  g->lut_lo = g->level[0] - 1.0f;
  g->lut_hi = g->level[g->n_levels - 1] + 1.0f;
  int nb_buckets = (int)((g->lut_hi - g->lut_lo) * 2.0f) + 1;
  g_assert(nb_buckets <= (int)sizeof g->lut);
  for (int bk = 0; bk < nb_buckets; bk++) {
    float mid = g->lut_lo + 0.5f * (float)bk + 0.25f;
    int l = 0;
    for (int k = 0; k + 1 < g->n_levels; k++)
      l += mid > g->thr[k];
    g->lut[bk] = (guint8)l;
  }

  g->n_lattice = 1;
  for (int j = 0; j < g->width; j++)
    g->n_lattice *= g->n_levels;

  /* Neighbour lists: squared distance in units of the first level step. */
  float step = g->level[1] - g->level[0];
  float inv_step2 = 1.0f / (step * step);
  nb_cand *c = g_new(nb_cand, g->n_grid);
  GArray *nb = g_array_sized_new(FALSE, FALSE, sizeof(guint16), (guint)g->n_lattice * 4);
  g->nb_off = g_new(guint32, (gsize)g->n_lattice + 1);
  for (int p = 0; p < g->n_lattice; p++) {
    float pv[8];
    int q = p;
    for (int j = 0; j < g->width; j++) {
      pv[j] = g->level[q % g->n_levels];
      q /= g->n_levels;
    }
    float dmin = INFINITY;
    for (int e = 0; e < g->n_grid; e++) {
      const float *v = g->val + e * g->width;
      float d2 = 0.0f;
      for (int j = 0; j < g->width; j++)
        d2 += (pv[j] - v[j]) * (pv[j] - v[j]);
      d2 *= inv_step2;
      if (d2 < dmin)
        dmin = d2;
      c[e].d2 = d2;
    }
    /* An exact hit is optimal whatever the weights (the error is separable per element). */
    float limit = dmin == 0.0f ? 0.0f : dmin + NB_MARGIN;
    int nc = 0;
    for (int e = 0; e < g->n_grid; e++)
      if (c[e].d2 <= limit)
        c[nc++] = (nb_cand){c[e].d2, (guint16)e};
    qsort(c, (gsize)nc, sizeof(nb_cand), nb_cand_cmp);
    g->nb_off[p] = nb->len;
    int cap = id == GRID_IQ1S ? NB_CAP_IQ1 : NB_CAP;
    for (int k = 0; k < nc && k < cap; k++)
      g_array_append_val(nb, c[k].e);
  }
  g->nb_off[g->n_lattice] = nb->len;
  g->nb = (guint16 *)(void *)g_array_free(nb, FALSE);
  g_free(c);
}

/* The grid @id with its neighbour map, built on first use (thread-safe, g_once). */
static const iq_grid *
grid_get(grid_id id)
{
  static iq_grid grids[N_GRIDS];
  static gsize done[N_GRIDS];
  if (g_once_init_enter(&done[id])) {
    grid_build(&grids[id], id);
    g_once_init_leave(&done[id], 1);
  }
  return &grids[id];
}

/* Lattice point of the targets @t (grid units): each element rounded to its nearest level,
 * through the half-step bucket table (every threshold is a multiple of 1/2). The clamp comes
 * first and sends NaN to bucket 0 and the index is always in range. */
static inline int
lattice_index(const iq_grid *g, const float *t)
{
  int idx = 0, mul = 1;
  for (int j = 0; j < g->width; j++) {
    float c = t[j] > g->lut_lo ? t[j] : g->lut_lo; /* NaN -> lut_lo */
    c = c < g->lut_hi ? c : g->lut_hi;
    idx += g->lut[(int)((c - g->lut_lo) * 2.0f)] * mul;
    mul *= g->n_levels;
  }
  return idx;
}

/* Weighted squared distance of a slot of 8 (or 4) targets to one entry: independent lanes,
 * then a fixed pairwise sum (vectorizes; deterministic). */
static inline float
slot_err8(const float *t, const float *w, const float *v)
{
  float a[8];
  for (int j = 0; j < 8; j++) {
    float d = t[j] - v[j];
    a[j] = w[j] * d * d;
  }
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

static inline float
slot_err4(const float *t, const float *w, const float *v)
{
  float a[4];
  for (int j = 0; j < 4; j++) {
    float d = t[j] - v[j];
    a[j] = w[j] * d * d;
  }
  return (a[0] + a[1]) + (a[2] + a[3]);
}

/* Best entry for one slot of g->width targets @t (grid units) under weights @w: the candidate
 * of the targets' lattice point minimizing sum w (t - v)^2 (first minimum wins). */
static inline int
grid_best(const iq_grid *g, const float *t, const float *w)
{
  int p = lattice_index(g, t);
  guint32 b = g->nb_off[p], e = g->nb_off[p + 1];
  int best_e = g->nb[b];
  if (e - b == 1)
    return best_e;
  float best = INFINITY;
  if (g->width == 8) {
    for (guint32 k = b; k < e; k++) {
      float err = slot_err8(t, w, g->val + g->nb[k] * 8);
      if (err < best) {
        best = err;
        best_e = g->nb[k];
      }
    }
  } else {
    for (guint32 k = b; k < e; k++) {
      float err = slot_err4(t, w, g->val + g->nb[k] * 4);
      if (err < best) {
        best = err;
        best_e = g->nb[k];
      }
    }
  }
  return best_e;
}

/* ---- Element weights ------------------------------------------------------------------------- */

/* Weights of one super-block of 256 values, sigma² = 2·mean(x²) of the block.
 * With an importance vector: qw^0.6 · (sigma² + x²)^0.25. The importance is an estimate from a
 * finite calibration run, so it is tempered rather than trusted fully, and larger values get a
 * mild extra weight (their error dominates the output's). On the reference test matrix this
 * beats the reference's encoder on both the plain and the importance-weighted RMS error, where
 * qw alone wins only the latter and x-only weights only the former.
 * Without: sigma² + x² (the error on large values matters most, small ones are not ignored).
 * Falls back to the default when the importance weights sum to zero (or are not finite). */
static void
block_weights(const float *x, const float *qw, float *w)
{
  float sumx2 = 0.0f;
  for (int i = 0; i < WH_QK_K; i++)
    sumx2 += x[i] * x[i];
  float sigma2 = sumx2 * (2.0f / WH_QK_K);
  if (qw) {
    float sw = 0.0f;
    for (int i = 0; i < WH_QK_K; i++) {
      float qi = qw[i] > 0.0f ? powf(qw[i], 0.6f) : 0.0f;
      w[i] = qi * sqrtf(sqrtf(sigma2 + x[i] * x[i]));
      sw += w[i];
    }
    if (sw > 0.0f && sw < INFINITY)
      return;
  }
  for (int i = 0; i < WH_QK_K; i++)
    w[i] = sigma2 + x[i] * x[i];
}

/* ---- Magnitude grids: IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S --------------------------------- */

typedef struct {
  grid_id grid;
  int sub;         /* elements per scale code: 16 or 32 */
  gboolean parity; /* sign bytes must have an even number of set bits (7-bit sign index) */
  float fmul[16];  /* sub-block scale = d · fmul[code] */
} mag_params;

/* Slots of 8 elements per block (width 8) or 4 (width 4): at most 64. */
typedef struct {
  float a[WH_QK_K]; /* signed magnitude targets: |x| or -|x| where the sign had to be wrong */
  float w[WH_QK_K];
  guint8 sign[32]; /* stored sign byte per group of 8 */
  guint16 idx[64]; /* grid entry per slot */
  int code[16];    /* scale code per sub-block */
  float d;         /* super-block scale as stored (fp16 value) */
} mag_block;

/* Assigns grid entries to the @n targets @a at scale @s > 0; returns sum w·a·v and sum w·v². */
static void
mag_assign(const iq_grid *g, const float *a, const float *w, int n, float s, guint16 *idx,
           float *sqx, float *sq2)
{
  float inv = 1.0f / s, t[8], qx = 0.0f, q2 = 0.0f;
  /* One slot of g->width targets per iteration. */
  for (int o = 0, k = 0; o < n; o += g->width, k++) {
    for (int j = 0; j < g->width; j++)
      t[j] = a[o + j] * inv;
    int e = grid_best(g, t, w + o);
    idx[k] = (guint16)e;
    const float *v = g->val + e * g->width;
    for (int j = 0; j < g->width; j++) {
      float wv = w[o + j] * v[j];
      qx += wv * a[o + j];
      q2 += wv * v[j];
    }
  }
  *sqx = qx;
  *sq2 = q2;
}

/* Search effort of the magnitude grids (tuned on quant-reference.gguf for error vs. time):
 * MAG_NSTEP candidate sub-block scales from MAG_LO to MAG_HI times (largest |x| / top level);
 * MAG_NSTART starting super-block scales, each MAG_START_STEP below the previous. */
#define MAG_NSTART 2
#define MAG_START_STEP 0.04f
#define MAG_LO 0.7f
#define MAG_HI 1.26f
#define MAG_NSTEP 8

/* Best continuous scale for one sub-block (least squares after snapping at several candidate
 * scales). Returns 0 for an all-zero sub-block. */
static float
mag_search_scale(const iq_grid *g, const float *a, const float *w, int n)
{
  float amax = 0.0f;
  for (int i = 0; i < n; i++)
    if (a[i] > amax)
      amax = a[i];
  if (!(amax > 1e-30f))
    return 0.0f;
  float top = g->level[g->n_levels - 1];
  guint16 idx[8];
  float best_score = 0.0f, best_s = amax / top;
  for (int k = 0; k < MAG_NSTEP; k++) {
    float s = amax / top * (MAG_LO + (MAG_HI - MAG_LO) / (MAG_NSTEP - 1) * (float)k);
    float qx, q2;
    mag_assign(g, a, w, n, s, idx, &qx, &q2);
    if (q2 > 0.0f && qx > 0.0f && qx * qx > best_score * q2) {
      best_score = qx * qx / q2;
      best_s = qx / q2;
    }
  }
  /* Re-snap at the refitted scale while that helps. */
  for (int it = 0; it < 2; it++) {
    float qx, q2;
    mag_assign(g, a, w, n, best_s, idx, &qx, &q2);
    if (!(q2 > 0.0f && qx > 0.0f && qx * qx > best_score * q2))
      break;
    best_score = qx * qx / q2;
    best_s = qx / q2;
  }
  return best_s;
}

/* Nearest scale code: the code c minimizing |ratio - fmul[c]| (NaN -> 0). */
static int
nearest_code(const float *fmul, int n_codes, float ratio)
{
  int best = 0;
  float bd = fabsf(ratio - fmul[0]);
  for (int c = 1; c < n_codes; c++) {
    float dd = fabsf(ratio - fmul[c]);
    if (dd < bd) {
      bd = dd;
      best = c;
    }
  }
  return best;
}

/* Fixes signs (and the parity rule) of one super-block into @b->a / @b->sign. Where a group of
 * 8 has an odd number of negative values one element must keep the wrong sign: the one whose
 * error grows least, estimated at the sub-block's nominal scale (largest value on the top
 * level): w·((|x| + s·g0)² − (|x| − s·g)²), g0 = smallest level, g = the level nearest |x|/s. */
static void
mag_signs(const iq_grid *g, const float *x, const mag_params *pp, mag_block *b)
{
  float top = g->level[g->n_levels - 1], g0 = g->level[0];
  for (int gi = 0; gi < 32; gi++) {
    const float *xg = x + 8 * gi;
    float *ag = b->a + 8 * gi;
    const float *wg = b->w + 8 * gi;
    guint8 sb = 0;
    int nneg = 0;
    for (int j = 0; j < 8; j++) {
      ag[j] = fabsf(xg[j]);
      if (xg[j] < 0.0f) {
        sb |= (guint8)(1u << j);
        nneg++;
      }
    }
    if (pp->parity && (nneg & 1)) {
      const float *xs = x + (8 * gi / pp->sub) * pp->sub;
      float amax = 0.0f;
      for (int i = 0; i < pp->sub; i++)
        amax = MAX(amax, fabsf(xs[i]));
      float s = amax / top;
      int jm = 0;
      float cm = INFINITY;
      for (int j = 0; j < 8; j++) {
        float q = g0;
        for (int k = 0; k + 1 < g->n_levels; k++)
          if (ag[j] > s * g->thr[k])
            q = g->level[k + 1];
        float e_wrong = ag[j] + s * g0, e_right = ag[j] - s * q;
        float cj = wg[j] * (e_wrong * e_wrong - e_right * e_right);
        if (cj < cm) {
          cm = cj;
          jm = j;
        }
      }
      sb ^= (guint8)(1u << jm);
      ag[jm] = -ag[jm];
    }
    b->sign[gi] = sb;
  }
}

/* Assigns every sub-block at the stored scale @d, trying codes around the best fit of @sc.
 * Fills b->code/b->idx and returns the weighted error; @num / @den get the least-squares terms
 * for refitting d. */
static float
mag_assign_all(const iq_grid *g, const mag_params *pp, mag_block *b, const float *sc, float d,
               float *num, float *den)
{
  int nsub = WH_QK_K / pp->sub, slots = pp->sub / g->width;
  float err_tot = 0.0f, nu = 0.0f, de = 0.0f;
  for (int s = 0; s < nsub; s++) {
    const float *a = b->a + s * pp->sub, *w = b->w + s * pp->sub;
    float sw2 = 0.0f;
    for (int i = 0; i < pp->sub; i++)
      sw2 += w[i] * a[i] * a[i];
    int c0 = d > 0.0f ? nearest_code(pp->fmul, 16, sc[s] / d) : 0;
    float best = INFINITY, bqx = 0.0f, bq2 = 0.0f;
    int bc = c0;
    guint16 idx[8];
    /* The nearest code and its neighbour on the ratio's side. */
    int c1 = c0;
    if (d > 0.0f)
      c1 = sc[s] / d > pp->fmul[c0] ? MIN(c0 + 1, 15) : MAX(c0 - 1, 0);
    for (int c = MIN(c0, c1); c <= MAX(c0, c1); c++) {
      float ds = d * pp->fmul[c], qx, q2, err;
      if (ds > 0.0f) {
        mag_assign(g, a, w, pp->sub, ds, idx, &qx, &q2);
        err = sw2 - 2.0f * ds * qx + ds * ds * q2;
      } else {
        memset(idx, 0, sizeof idx);
        qx = q2 = 0.0f;
        err = sw2;
      }
      if (err < best || (c == c0 && !(best < INFINITY))) {
        best = err;
        bc = c;
        bqx = qx;
        bq2 = q2;
        memcpy(b->idx + s * slots, idx, sizeof(guint16) * slots);
      }
    }
    b->code[s] = bc;
    err_tot += best;
    nu += pp->fmul[bc] * bqx;
    de += pp->fmul[bc] * pp->fmul[bc] * bq2;
  }
  *num = nu;
  *den = de;
  return err_tot;
}

/* Rounds a super-block scale to the fp16 the block stores (finite: clamped to 65504). */
static float
store_scale(float d, guint16 *bits)
{
  if (!(d > 0.0f))
    d = 0.0f;
  if (d > 65504.0f)
    d = 65504.0f;
  *bits = wh_fp32_to_fp16(d);
  return wh_fp16_to_fp32(*bits);
}

/* Quantizes one super-block into @b (codes, indices, signs, d). */
static void
mag_quantize_block(const mag_params *pp, const float *x, const float *qw, mag_block *b,
                   guint16 *dbits)
{
  const iq_grid *g = grid_get(pp->grid);
  int nsub = WH_QK_K / pp->sub;
  float sc[16];

  block_weights(x, qw, b->w);
  mag_signs(g, x, pp, b);
  float scmax = 0.0f;
  for (int s = 0; s < nsub; s++) {
    sc[s] = mag_search_scale(g, b->a + s * pp->sub, b->w + s * pp->sub, pp->sub);
    if (sc[s] > scmax)
      scmax = sc[s];
  }
  if (!(scmax > 0.0f)) {
    memset(b->idx, 0, sizeof b->idx);
    memset(b->code, 0, sizeof b->code);
    b->d = store_scale(0.0f, dbits);
    return;
  }

  /* Start with the largest sub-block scale at (or a little above) the top code; from each start
   * refit d while the error drops; keep the best. */
  guint16 bits, best_idx[64], best_bits = 0;
  int best_code[16];
  float best_d = 0.0f, best_err = INFINITY;
  for (int start = 0; start < MAG_NSTART; start++) {
    float d = store_scale(scmax / pp->fmul[15] * (1.0f - MAG_START_STEP * (float)start), &bits);
    float prev = INFINITY;
    for (int it = 0; it < 3; it++) {
      float num, den;
      float err = mag_assign_all(g, pp, b, sc, d, &num, &den);
      if (!(err < prev))
        break;
      prev = err;
      if (err < best_err) {
        best_err = err;
        best_bits = bits;
        memcpy(best_idx, b->idx, sizeof b->idx);
        memcpy(best_code, b->code, sizeof b->code);
        best_d = d;
      }
      if (!(den > 0.0f && num > 0.0f))
        break;
      float dn = store_scale(num / den, &bits);
      if (dn == d)
        break;
      d = dn;
    }
  }
  if (!(best_err < INFINITY)) {
    memset(best_idx, 0, sizeof best_idx);
    memset(best_code, 0, sizeof best_code);
  }
  memcpy(b->idx, best_idx, sizeof b->idx);
  memcpy(b->code, best_code, sizeof b->code);
  b->d = best_d;
  *dbits = best_bits;
}

static void
mag_params_init(mag_params *p, wh_type type)
{
  switch (type) {
  case WH_TYPE_IQ2_XXS:
    *p = (mag_params){GRID_IQ2XXS, 32, TRUE, {0}};
    break;
  case WH_TYPE_IQ2_XS:
    *p = (mag_params){GRID_IQ2XS, 16, TRUE, {0}};
    break;
  case WH_TYPE_IQ2_S:
    *p = (mag_params){GRID_IQ2S, 16, FALSE, {0}};
    break;
  case WH_TYPE_IQ3_XXS:
    *p = (mag_params){GRID_IQ3XXS, 32, TRUE, {0}};
    break;
  case WH_TYPE_IQ3_S:
  default:
    *p = (mag_params){GRID_IQ3S, 32, FALSE, {0}};
    break;
  }
  for (int c = 0; c < 16; c++) {
    if (type == WH_TYPE_IQ3_S)
      p->fmul[c] = (float)(1 + 2 * c);
    else if (type == WH_TYPE_IQ3_XXS)
      p->fmul[c] = (0.5f + (float)c) * 0.5f;
    else
      p->fmul[c] = (0.5f + (float)c) * 0.25f;
  }
}

/* Writes one super-block of a magnitude type (layouts: block-formats.md 4.14-4.18). */
static void
mag_write_block(wh_type type, const mag_block *b, guint16 dbits, guint8 *out)
{
  wh_quant_wr16(out, dbits);
  switch (type) {
  case WH_TYPE_IQ2_XXS:
    /* 8 groups of 32: A = four 8-bit grid indices, B = four 7-bit sign indices | code << 28. */
    for (int gi = 0; gi < 8; gi++) {
      guint32 A = 0, B = (guint32)b->code[gi] << 28;
      for (int l = 0; l < 4; l++) {
        A |= (guint32)(b->idx[4 * gi + l] & 255) << (8 * l);
        B |= (guint32)(b->sign[4 * gi + l] & 127) << (7 * l);
      }
      wh_quant_wr32(out + 2 + 8 * gi, A);
      wh_quant_wr32(out + 6 + 8 * gi, B);
    }
    break;
  case WH_TYPE_IQ2_XS:
    /* qs[32]: 9-bit index | 7-bit sign index << 9; scales[8]: codes of two sub-blocks of 16. */
    for (int k = 0; k < 32; k++)
      wh_quant_wr16(out + 2 + 2 * k,
                    (guint16)((b->idx[k] & 511) | ((guint32)(b->sign[k] & 127) << 9)));
    for (int gi = 0; gi < 8; gi++)
      out[66 + gi] = (guint8)(b->code[2 * gi] | (b->code[2 * gi + 1] << 4));
    break;
  case WH_TYPE_IQ2_S:
    /* qs[32] low index bits, signs[32], qh[8] high 2 bits per slot, scales[8]. */
    for (int gi = 0; gi < 8; gi++) {
      guint8 qh = 0;
      for (int l = 0; l < 4; l++) {
        int k = 4 * gi + l;
        out[2 + k] = (guint8)(b->idx[k] & 255);
        out[34 + k] = b->sign[k];
        qh |= (guint8)(((b->idx[k] >> 8) & 3) << (2 * l));
      }
      out[66 + gi] = qh;
      out[74 + gi] = (guint8)(b->code[2 * gi] | (b->code[2 * gi + 1] << 4));
    }
    break;
  case WH_TYPE_IQ3_XXS:
    /* qs[64]: 8-bit index per 4 values; ss[8]: four 7-bit sign indices | code << 28. */
    for (int k = 0; k < 64; k++)
      out[2 + k] = (guint8)(b->idx[k] & 255);
    for (int gi = 0; gi < 8; gi++) {
      guint32 W = (guint32)b->code[gi] << 28;
      for (int l = 0; l < 4; l++)
        W |= (guint32)(b->sign[4 * gi + l] & 127) << (7 * l);
      wh_quant_wr32(out + 66 + 4 * gi, W);
    }
    break;
  case WH_TYPE_IQ3_S:
  default:
    /* qs[64] low index bits, qh[8] 9th bits, signs[32], scales[4] (two codes per byte). */
    for (int gi = 0; gi < 8; gi++) {
      guint8 qh = 0;
      for (int h = 0; h < 8; h++) {
        int k = 8 * gi + h;
        out[2 + k] = (guint8)(b->idx[k] & 255);
        qh |= (guint8)(((b->idx[k] >> 8) & 1) << h);
      }
      out[66 + gi] = qh;
    }
    memcpy(out + 74, b->sign, 32);
    for (int k = 0; k < 4; k++)
      out[106 + k] = (guint8)(b->code[2 * k] | (b->code[2 * k + 1] << 4));
    break;
  }
}

/* ---- Ternary grid with offset: IQ1_S, IQ1_M -------------------------------------------------- */

typedef struct {
  int sub;             /* elements per scale code: 32 (IQ1_S) or 16 (IQ1_M) */
  gboolean slot_delta; /* one delta sign per slot of 8 (IQ1_M) instead of per sub-block */
} iq1_params;

typedef struct {
  float w[WH_QK_K];
  guint16 idx[32]; /* grid entry per slot of 8 */
  guint8 dneg[32]; /* delta is -1/8 for this slot */
  int code[16];    /* 3-bit scale code per sub-block */
} iq1_block;

#define IQ1_DELTA 0.125f

/* Snaps one slot of 8 values @x at scale @dl > 0 with delta sign @neg; returns the entry and
 * the slot's sum w·x·v, sum w·v² (v = G + delta). */
static inline int
iq1_slot(const iq_grid *g, const float *x, const float *w, float dl, gboolean neg, float *sqx,
         float *sq2)
{
  float delta = neg ? -IQ1_DELTA : IQ1_DELTA, inv = 1.0f / dl, t[8];
  for (int j = 0; j < 8; j++)
    t[j] = x[j] * inv - delta;
  int e = grid_best(g, t, w);
  const float *v = g->val + e * 8;
  float qx = 0.0f, q2 = 0.0f;
  for (int j = 0; j < 8; j++) {
    float vj = v[j] + delta, wv = w[j] * vj;
    qx += wv * x[j];
    q2 += wv * vj;
  }
  *sqx = qx;
  *sq2 = q2;
  return e;
}

/* Assigns one sub-block of p->sub values at scale @dl, choosing the delta sign(s) with the
 * least error at that scale. Returns the error; fills idx/dneg and the least-squares sums. */
static float
iq1_assign(const iq_grid *g, const iq1_params *p, const float *x, const float *w, float sw2,
           float dl, guint16 *idx, guint8 *dneg, float *sqx, float *sq2)
{
  int slots = p->sub / 8;
  float qx = 0.0f, q2 = 0.0f;
  if (p->slot_delta) {
    for (int k = 0; k < slots; k++) {
      float ax, a2, bx, b2;
      int ea = iq1_slot(g, x + 8 * k, w + 8 * k, dl, FALSE, &ax, &a2);
      int eb = iq1_slot(g, x + 8 * k, w + 8 * k, dl, TRUE, &bx, &b2);
      /* Compare -2·dl·qx + dl²·q2 (the slot's error minus its constant part). */
      if (dl * b2 - 2.0f * bx < dl * a2 - 2.0f * ax) {
        idx[k] = (guint16)eb;
        dneg[k] = 1;
        qx += bx;
        q2 += b2;
      } else {
        idx[k] = (guint16)ea;
        dneg[k] = 0;
        qx += ax;
        q2 += a2;
      }
    }
  } else {
    float best = INFINITY;
    for (int neg = 0; neg < 2; neg++) {
      float tx = 0.0f, t2 = 0.0f;
      guint16 ti[4];
      for (int k = 0; k < slots; k++) {
        float sx, s2;
        ti[k] = (guint16)iq1_slot(g, x + 8 * k, w + 8 * k, dl, neg, &sx, &s2);
        tx += sx;
        t2 += s2;
      }
      float err = dl * dl * t2 - 2.0f * dl * tx;
      if (err < best || neg == 0) {
        best = err;
        qx = tx;
        q2 = t2;
        for (int k = 0; k < slots; k++) {
          idx[k] = ti[k];
          dneg[k] = (guint8)neg;
        }
      }
    }
  }
  *sqx = qx;
  *sq2 = q2;
  return sw2 - 2.0f * dl * qx + dl * dl * q2;
}

/* IQ1 candidate sub-block scales: IQ1_NSTEP from IQ1_LO to IQ1_HI times the largest |x| (a
 * ternary code fits best well below the peak). */
#define IQ1_NSTEP 5
#define IQ1_LO 0.3f
#define IQ1_HI 0.7f

static float
iq1_search_scale(const iq_grid *g, const iq1_params *p, const float *x, const float *w, float sw2)
{
  float amax = 0.0f;
  for (int i = 0; i < p->sub; i++)
    if (fabsf(x[i]) > amax)
      amax = fabsf(x[i]);
  if (!(amax > 1e-30f))
    return 0.0f;
  guint16 idx[4];
  guint8 dn[4];
  float best_score = 0.0f, best_s = amax / (1.0f + IQ1_DELTA);
  for (int k = 0; k < IQ1_NSTEP; k++) {
    float dl = amax * (IQ1_LO + (IQ1_HI - IQ1_LO) / (IQ1_NSTEP - 1) * (float)k);
    float qx, q2;
    iq1_assign(g, p, x, w, sw2, dl, idx, dn, &qx, &q2);
    if (q2 > 0.0f && qx > 0.0f && qx * qx > best_score * q2) {
      best_score = qx * qx / q2;
      best_s = qx / q2;
    }
  }
  for (int it = 0; it < 2; it++) {
    float qx, q2;
    iq1_assign(g, p, x, w, sw2, best_s, idx, dn, &qx, &q2);
    if (!(q2 > 0.0f && qx > 0.0f && qx * qx > best_score * q2))
      break;
    best_score = qx * qx / q2;
    best_s = qx / q2;
  }
  return best_s;
}

static float
iq1_assign_all(const iq_grid *g, const iq1_params *p, const float *x, iq1_block *b, const float *sc,
               float d, float *num, float *den)
{
  static const float fmul[8] = {1, 3, 5, 7, 9, 11, 13, 15};
  int nsub = WH_QK_K / p->sub, slots = p->sub / 8;
  float err_tot = 0.0f, nu = 0.0f, de = 0.0f;
  for (int s = 0; s < nsub; s++) {
    const float *xs = x + s * p->sub, *w = b->w + s * p->sub;
    float sw2 = 0.0f;
    for (int i = 0; i < p->sub; i++)
      sw2 += w[i] * xs[i] * xs[i];
    int c0 = d > 0.0f ? nearest_code(fmul, 8, sc[s] / d) : 0;
    float best = INFINITY, bqx = 0.0f, bq2 = 0.0f;
    int bc = c0;
    int c1 = c0;
    if (d > 0.0f)
      c1 = sc[s] / d > fmul[c0] ? MIN(c0 + 1, 7) : MAX(c0 - 1, 0);
    for (int c = MIN(c0, c1); c <= MAX(c0, c1); c++) {
      float dl = d * fmul[c], qx = 0.0f, q2 = 0.0f, err;
      guint16 idx[4] = {0};
      guint8 dn[4] = {0};
      if (dl > 0.0f)
        err = iq1_assign(g, p, xs, w, sw2, dl, idx, dn, &qx, &q2);
      else
        err = sw2;
      if (err < best || (c == c0 && !(best < INFINITY))) {
        best = err;
        bc = c;
        bqx = qx;
        bq2 = q2;
        memcpy(b->idx + s * slots, idx, sizeof(guint16) * slots);
        memcpy(b->dneg + s * slots, dn, (gsize)slots);
      }
    }
    b->code[s] = bc;
    err_tot += best;
    nu += fmul[bc] * bqx;
    de += fmul[bc] * fmul[bc] * bq2;
  }
  *num = nu;
  *den = de;
  return err_tot;
}

static void
iq1_quantize_block(const iq1_params *p, const float *x, const float *qw, iq1_block *b,
                   guint16 *dbits)
{
  const iq_grid *g = grid_get(GRID_IQ1S);
  int nsub = WH_QK_K / p->sub;
  float sc[16], scmax = 0.0f;

  block_weights(x, qw, b->w);
  for (int s = 0; s < nsub; s++) {
    const float *xs = x + s * p->sub, *w = b->w + s * p->sub;
    float sw2 = 0.0f;
    for (int i = 0; i < p->sub; i++)
      sw2 += w[i] * xs[i] * xs[i];
    sc[s] = iq1_search_scale(g, p, xs, w, sw2);
    if (sc[s] > scmax)
      scmax = sc[s];
  }
  memset(b->idx, 0, sizeof b->idx);
  memset(b->dneg, 0, sizeof b->dneg);
  memset(b->code, 0, sizeof b->code);
  if (!(scmax > 0.0f)) {
    store_scale(0.0f, dbits);
    return;
  }
  guint16 bits;
  float d = store_scale(scmax / 15.0f, &bits);
  iq1_block best_b;
  float best_err = INFINITY;
  guint16 best_bits = bits;
  for (int it = 0; it < 3; it++) {
    float num, den;
    float err = iq1_assign_all(g, p, x, b, sc, d, &num, &den);
    if (!(err < best_err))
      break;
    best_err = err;
    best_bits = bits;
    memcpy(best_b.idx, b->idx, sizeof b->idx);
    memcpy(best_b.dneg, b->dneg, sizeof b->dneg);
    memcpy(best_b.code, b->code, sizeof b->code);
    if (!(den > 0.0f && num > 0.0f))
      break;
    float dn = store_scale(num / den, &bits);
    if (dn == d)
      break;
    d = dn;
  }
  memcpy(b->idx, best_b.idx, sizeof b->idx);
  memcpy(b->dneg, best_b.dneg, sizeof b->dneg);
  memcpy(b->code, best_b.code, sizeof b->code);
  *dbits = best_bits;
}

/* Writes one IQ1_S (4.19) or IQ1_M (4.20) super-block. */
static void
iq1_write_block(wh_type type, const iq1_block *b, guint16 dbits, guint8 *out)
{
  if (type == WH_TYPE_IQ1_S) {
    /* d, qs[32] low index bits, qh[8]: 4 × 3 high bits | code << 12 | delta sign << 15. */
    wh_quant_wr16(out, dbits);
    for (int gi = 0; gi < 8; gi++) {
      guint32 H = ((guint32)b->code[gi] << 12) | ((guint32)(b->dneg[4 * gi] & 1) << 15);
      for (int l = 0; l < 4; l++) {
        out[2 + 4 * gi + l] = (guint8)(b->idx[4 * gi + l] & 255);
        H |= (guint32)((b->idx[4 * gi + l] >> 8) & 7) << (3 * l);
      }
      wh_quant_wr16(out + 34 + 2 * gi, (guint16)H);
    }
    return;
  }
  /* IQ1_M: qs[32], qh[16] (a nibble per slot: 3 high bits | delta sign << 3), sc[4]: two
   * 3-bit codes per group of 32, twice per u16, and nibble i of the fp16 scale in bits 12-15. */
  for (int k = 0; k < 32; k++)
    out[k] = (guint8)(b->idx[k] & 255);
  for (int k = 0; k < 16; k++) {
    int lo = ((b->idx[2 * k] >> 8) & 7) | ((b->dneg[2 * k] & 1) << 3);
    int hi = ((b->idx[2 * k + 1] >> 8) & 7) | ((b->dneg[2 * k + 1] & 1) << 3);
    out[32 + k] = (guint8)(lo | (hi << 4));
  }
  for (int i = 0; i < 4; i++) {
    guint32 v = (guint32)b->code[4 * i] | ((guint32)b->code[4 * i + 1] << 3) |
                ((guint32)b->code[4 * i + 2] << 6) | ((guint32)b->code[4 * i + 3] << 9) |
                ((guint32)((dbits >> (4 * i)) & 15) << 12);
    wh_quant_wr16(out + 48 + 2 * i, (guint16)v);
  }
}

/* ---- Entry point ----------------------------------------------------------------------------- */

gsize
wh_quant_iq_quantize_rows(wh_type type, const float *src, void *dst, gint64 nrows, gint64 n_per_row,
                          const float *imatrix, GError **error)
{
  gboolean is_iq1 = type == WH_TYPE_IQ1_S || type == WH_TYPE_IQ1_M;
  switch (type) {
  case WH_TYPE_IQ1_S:
  case WH_TYPE_IQ1_M:
  case WH_TYPE_IQ2_XXS:
  case WH_TYPE_IQ2_XS:
  case WH_TYPE_IQ2_S:
  case WH_TYPE_IQ3_XXS:
  case WH_TYPE_IQ3_S:
    break;
  default:
    g_set_error(error, WH_QUANT_ERROR, WH_QUANT_ERROR_UNSUPPORTED,
                "the grid i-quant encoder cannot produce type %s", wh_type_name(type));
    return 0;
  }
  if (!imatrix && (type == WH_TYPE_IQ1_S || type == WH_TYPE_IQ2_XXS || type == WH_TYPE_IQ2_XS)) {
    g_set_error(error, WH_QUANT_ERROR, WH_QUANT_ERROR_NEEDS_IMATRIX,
                "quantizing to %s needs an importance matrix: compute one (whittle-cli imatrix) "
                "and pass it, or pick a type that works without (IQ2_S, IQ3_XXS, IQ3_S, IQ1_M)",
                wh_type_name(type));
    return 0;
  }
  if (n_per_row <= 0 || n_per_row % WH_QK_K != 0 || nrows < 0) {
    g_set_error(error, WH_QUANT_ERROR, WH_QUANT_ERROR_BAD_SHAPE,
                "%s needs rows of a positive multiple of %d values, got %" G_GINT64_FORMAT,
                wh_type_name(type), WH_QK_K, n_per_row);
    return 0;
  }

  gsize bpb = wh_quant_block_bytes(type), row_bytes = wh_quant_row_bytes(type, n_per_row);
  gint64 nblk = n_per_row / WH_QK_K;
  guint8 *out = dst;
  if (is_iq1) {
    iq1_params p = {type == WH_TYPE_IQ1_S ? 32 : 16, type == WH_TYPE_IQ1_M};
    iq1_block b;
    for (gint64 r = 0; r < nrows; r++)
      for (gint64 k = 0; k < nblk; k++) {
        const float *x = src + r * n_per_row + k * WH_QK_K;
        guint16 dbits;
        iq1_quantize_block(&p, x, imatrix ? imatrix + k * WH_QK_K : NULL, &b, &dbits);
        iq1_write_block(type, &b, dbits, out + r * row_bytes + k * bpb);
      }
  } else {
    mag_params p;
    mag_params_init(&p, type);
    mag_block b;
    for (gint64 r = 0; r < nrows; r++)
      for (gint64 k = 0; k < nblk; k++) {
        const float *x = src + r * n_per_row + k * WH_QK_K;
        guint16 dbits;
        mag_quantize_block(&p, x, imatrix ? imatrix + k * WH_QK_K : NULL, &b, &dbits);
        mag_write_block(type, &b, dbits, out + r * row_bytes + k * bpb);
      }
  }
  return (gsize)nrows * row_bytes;
}
