/* test-quant.c — tensor element types against the reference oracle.
 *
 * Data: ../shared/spec/format-tables.gguf (lookup tables) and
 * ../shared/reference/quant-reference.gguf (16 x 1024 input, importance vector, the reference's
 * quantization q[_imat].T of every type and its dequantization dq[_imat].T, error figures).
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/quant.h"
#include "quant/quant-tables.h"
#include "wh-test-util.h"

#define REF_FILE "reference/quant-reference.gguf"

static wh_gguf *
open_shared(const char *relative)
{
  g_autofree char *path = wh_test_shared_file_or_skip(relative);
  if (!path)
    return NULL;
  g_autoptr(GError) error = NULL;
  wh_gguf *g = wh_gguf_open(path, &error);
  g_assert_no_error(error);
  g_assert_nonnull(g);
  return g;
}

static const float *
f32_tensor(wh_gguf *g, const char *name, guint64 expect_n)
{
  const wh_gguf_tensor *t = wh_gguf_find_tensor(g, name);
  g_assert_nonnull(t);
  g_assert_cmpint(t->type, ==, WH_TYPE_F32);
  g_assert_cmpuint(t->n_elements, ==, expect_n);
  return (const float *)t->data;
}

/* ---- Tables -------------------------------------------------------------------------------- */

typedef struct {
  const char *name;
  const void *table;
  guint n;
  guint bytes; /* per entry */
} embedded_table;

static void
test_tables(void)
{
  wh_gguf *g = open_shared("spec/format-tables.gguf");
  if (!g)
    return;
  const embedded_table tables[] = {
      {"kmask_iq2xs", kmask_iq2xs, G_N_ELEMENTS(kmask_iq2xs), 1},
      {"ksigns_iq2xs", ksigns_iq2xs, G_N_ELEMENTS(ksigns_iq2xs), 1},
      {"iq2xxs_grid", iq2xxs_grid, G_N_ELEMENTS(iq2xxs_grid), 8},
      {"iq2xs_grid", iq2xs_grid, G_N_ELEMENTS(iq2xs_grid), 8},
      {"iq2s_grid", iq2s_grid, G_N_ELEMENTS(iq2s_grid), 8},
      {"iq3xxs_grid", iq3xxs_grid, G_N_ELEMENTS(iq3xxs_grid), 4},
      {"iq3s_grid", iq3s_grid, G_N_ELEMENTS(iq3s_grid), 4},
      {"iq1s_grid", iq1s_grid, G_N_ELEMENTS(iq1s_grid), 8},
      {"kvalues_iq4nl", kvalues_iq4nl, G_N_ELEMENTS(kvalues_iq4nl), 1},
      {"kvalues_fp4", kvalues_fp4, G_N_ELEMENTS(kvalues_fp4), 1},
  };
  /* Every tensor of the file is embedded, and nothing else. */
  g_assert_cmpuint(wh_gguf_n_tensors(g), ==, G_N_ELEMENTS(tables));
  for (guint i = 0; i < G_N_ELEMENTS(tables); i++) {
    const wh_gguf_tensor *t = wh_gguf_find_tensor(g, tables[i].name);
    g_assert_nonnull(t);
    g_assert_cmpuint(t->n_elements, ==, tables[i].n);
    g_assert_cmpuint(t->n_bytes, ==, (guint64)tables[i].n * tables[i].bytes);
    /* Little-endian host: the stored bit patterns equal the in-memory arrays. */
    for (guint k = 0; k < tables[i].n; k++) {
      guint64 file_v = 0, ours = 0;
      memcpy(&file_v, t->data + (gsize)k * tables[i].bytes, tables[i].bytes);
      memcpy(&ours, (const guint8 *)tables[i].table + (gsize)k * tables[i].bytes, tables[i].bytes);
      if (file_v != ours)
        g_error("table %s entry %u: file 0x%" G_GINT64_MODIFIER "x, embedded 0x%" G_GINT64_MODIFIER
                "x",
                tables[i].name, k, file_v, ours);
    }
  }
  wh_gguf_close(g);
}

/* ---- Scalar conversions -------------------------------------------------------------------- */

static guint32
bits(float f)
{
  guint32 u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static float
from_bits(guint32 u)
{
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static void
test_fp16(void)
{
  /* Every non-NaN fp16 value round-trips exactly, and fp16->fp32 matches the value formula. */
  for (guint h = 0; h < 65536; h++) {
    float f = wh_fp16_to_fp32((guint16)h);
    guint e = (h >> 10) & 31, m = h & 1023;
    if (e == 31 && m != 0) {
      g_assert_true(isnan(f));
      g_assert_cmphex(bits(f), ==, ((h & 0x8000u) << 16) | 0x7f800000u | (m << 13));
      g_assert_cmphex(wh_fp32_to_fp16(f), ==, (h & 0x8000u) | 0x7e00u);
      continue;
    }
    double expect = e == 0 ? ldexp(m, -24) : e == 31 ? INFINITY : ldexp(1024 + m, (int)e - 25);
    if (h & 0x8000)
      expect = -expect;
    g_assert_true((double)f == expect);
    g_assert_cmphex(wh_fp32_to_fp16(f), ==, h);
  }
  /* The row dequantizer (F16C where the CPU has it) agrees bit for bit, NaN payloads included. */
  guint16 *all = g_new(guint16, 65536 + 3);
  float *row = g_new(float, 65536 + 3);
  for (guint h = 0; h < 65536 + 3; h++)
    all[h] = (guint16)(h * 40503u); /* a permutation, so NaNs land inside 8-wide groups */
  wh_quant_dequantize_row(WH_TYPE_F16, all, row, 65536 + 3);
  for (guint h = 0; h < 65536 + 3; h++)
    g_assert_cmphex(bits(row[h]), ==, bits(wh_fp16_to_fp32(all[h])));
  /* ... and so does the row quantizer to F16 (F16C where available), on every fp32 pattern of
   * a sweep that covers subnormal results, ties, overflow, Inf and NaN. */
  enum { SWEEP = 1 << 16 };
  float *fs = g_new(float, SWEEP + 5);
  guint16 *h16 = g_new(guint16, SWEEP + 5);
  for (guint i = 0; i < SWEEP + 5; i++)
    fs[i] = from_bits((guint32)i * 65537u + (i & 1 ? 0x1000u : 0u));
  g_autoptr(GError) error = NULL;
  g_assert_cmpuint(wh_quant_quantize_rows(WH_TYPE_F16, fs, h16, 1, SWEEP + 5, NULL, &error), ==,
                   2 * (SWEEP + 5));
  for (guint i = 0; i < SWEEP + 5; i++)
    if (h16[i] != wh_fp32_to_fp16(fs[i]))
      g_error("F16 row of 0x%08x: 0x%04x, scalar 0x%04x", bits(fs[i]), h16[i],
              wh_fp32_to_fp16(fs[i]));
  g_free(fs);
  g_free(h16);
  g_free(all);
  g_free(row);
  /* Rounding: ties to even, subnormals correctly rounded, overflow to inf. */
  g_assert_cmphex(wh_fp32_to_fp16(65520.0f), ==, 0x7c00);
  g_assert_cmphex(wh_fp32_to_fp16(nextafterf(65520.0f, 0.0f)), ==, 0x7bff);
  g_assert_cmphex(wh_fp32_to_fp16(-1e9f), ==, 0xfc00);
  g_assert_cmphex(wh_fp32_to_fp16(0x1p-25f), ==, 0x0000);
  g_assert_cmphex(wh_fp32_to_fp16(nextafterf(0x1p-25f, 1.0f)), ==, 0x0001);
  g_assert_cmphex(wh_fp32_to_fp16(-0x1p-25f), ==, 0x8000);
  g_assert_cmphex(wh_fp32_to_fp16(3.0f * 0x1p-25f), ==, 0x0002); /* 1.5 ulp -> even (2) */
  g_assert_cmphex(wh_fp32_to_fp16(1.0f + 0x1p-11f), ==, 0x3c00); /* tie -> even */
  g_assert_cmphex(wh_fp32_to_fp16(1.0f + 3 * 0x1p-11f), ==, 0x3c02);
  g_assert_cmphex(wh_fp32_to_fp16(nextafterf(0x1p-14f, 0.0f)), ==, 0x0400);
  g_assert_cmphex(wh_fp32_to_fp16(from_bits(0xffc00001u)), ==, 0xfe00);
  /* Every fp32 in a sweep rounds to the nearest fp16 (checked against the neighbours). */
  for (guint32 u = 0x33000000u; u < 0x477ff000u; u += 4099) {
    float f = from_bits(u);
    guint16 h = wh_fp32_to_fp16(f);
    double v = wh_fp16_to_fp32(h);
    double err = fabs(v - f);
    if (h > 0)
      g_assert_true(err <= fabs((double)wh_fp16_to_fp32(h - 1) - f));
    if (h < 0x7bff)
      g_assert_true(err <= fabs((double)wh_fp16_to_fp32(h + 1) - f));
  }
}

static void
test_bf16(void)
{
  for (guint h = 0; h < 65536; h++) {
    float f = wh_bf16_to_fp32((guint16)h);
    g_assert_cmphex(bits(f), ==, h << 16);
    if (!isnan(f))
      g_assert_cmphex(wh_fp32_to_bf16(f), ==, h);
  }
  g_assert_cmphex(wh_fp32_to_bf16(from_bits(0x3f808000u)), ==, 0x3f80); /* tie -> even */
  g_assert_cmphex(wh_fp32_to_bf16(from_bits(0x3f818000u)), ==, 0x3f82);
  g_assert_cmphex(wh_fp32_to_bf16(from_bits(0x3f808001u)), ==, 0x3f81);
  g_assert_cmphex(wh_fp32_to_bf16(from_bits(0x7f7fffffu)), ==, 0x7f80); /* rounds to inf */
  g_assert_cmphex(wh_fp32_to_bf16(from_bits(0x7f800001u)), ==, 0x7fc0); /* NaN: quiet */
  g_assert_cmphex(wh_fp32_to_bf16(from_bits(0xff812345u)), ==, 0xffc1);
  g_assert_cmphex(wh_fp32_to_bf16(from_bits(0x00018000u)), ==, 0x0002); /* subnormal */
}

/* ---- Dequantization against the reference -------------------------------------------------- */

static const wh_type ref_types[] = {
    WH_TYPE_F16,     WH_TYPE_BF16,   WH_TYPE_Q4_0,    WH_TYPE_Q4_1,  WH_TYPE_Q5_0,   WH_TYPE_Q5_1,
    WH_TYPE_Q8_0,    WH_TYPE_Q2_K,   WH_TYPE_Q3_K,    WH_TYPE_Q4_K,  WH_TYPE_Q5_K,   WH_TYPE_Q6_K,
    WH_TYPE_IQ2_XXS, WH_TYPE_IQ2_XS, WH_TYPE_IQ3_XXS, WH_TYPE_IQ1_S, WH_TYPE_IQ4_NL, WH_TYPE_IQ3_S,
    WH_TYPE_IQ2_S,   WH_TYPE_IQ4_XS, WH_TYPE_IQ1_M,   WH_TYPE_TQ1_0, WH_TYPE_TQ2_0,  WH_TYPE_MXFP4,
};

static void
test_dequantize_reference(void)
{
  wh_gguf *g = open_shared(REF_FILE);
  if (!g)
    return;
  const guint64 N = 16 * 1024;
  float *out = g_new(float, N);
  guint n_checked = 0;
  for (guint i = 0; i < G_N_ELEMENTS(ref_types); i++) {
    wh_type type = ref_types[i];
    g_assert_true(wh_quant_type_can_dequantize(type));
    for (int imat = 0; imat < 2; imat++) {
      g_autofree char *qname = g_strdup_printf("%s.%s", imat ? "q_imat" : "q", wh_type_name(type));
      g_autofree char *dqname =
          g_strdup_printf("%s.%s", imat ? "dq_imat" : "dq", wh_type_name(type));
      const wh_gguf_tensor *q = wh_gguf_find_tensor(g, qname);
      if (!q) {
        /* only the imatrix-only types lack the plain form */
        g_assert_false(imat);
        g_assert_true(wh_quant_type_requires_imatrix(type));
        continue;
      }
      g_assert_cmpint(q->type, ==, type);
      g_assert_cmpuint(q->n_bytes, ==, 16 * wh_quant_row_bytes(type, 1024));
      const float *dq = f32_tensor(g, dqname, N);
      memset(out, 0xff, N * sizeof(float));
      /* row by row, as a model loader would */
      for (int r = 0; r < 16; r++)
        wh_quant_dequantize_row(type, q->data + r * wh_quant_row_bytes(type, 1024), out + r * 1024,
                                1024);
      for (guint64 k = 0; k < N; k++)
        if (bits(out[k]) != bits(dq[k]))
          g_error("%s element %" G_GUINT64_FORMAT ": got %.9g (0x%08x), reference %.9g (0x%08x)",
                  qname, k, out[k], bits(out[k]), dq[k], bits(dq[k]));
      n_checked++;
    }
  }
  g_assert_cmpuint(n_checked, ==, 2 * G_N_ELEMENTS(ref_types) - 3);
  g_free(out);
  wh_gguf_close(g);
}

/* ---- Validation (5.11) and robustness on arbitrary bytes ---------------------------------- */

static void
test_validate(void)
{
  wh_gguf *g = open_shared(REF_FILE);
  if (!g)
    return;
  /* Every reference tensor is clean. */
  for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) {
    const wh_gguf_tensor *t = wh_gguf_get_tensor(g, i);
    gint64 bad = 7;
    if (!wh_quant_validate_row(t->type, t->data, (gint64)t->n_elements, &bad))
      g_error("%s: reported invalid at element %" G_GINT64_FORMAT, t->name, bad);
  }
  /* A poisoned scale field / element / exponent in the third block is found there. */
  static const struct {
    wh_type type;
    int offset; /* byte offset within the block */
    guint8 b0, b1;
  } poison[] = {
      {WH_TYPE_Q4_0, 0, 0x00, 0x7c},  {WH_TYPE_Q4_1, 2, 0x01, 0xfc}, {WH_TYPE_Q2_K, 82, 0, 0x7e},
      {WH_TYPE_Q3_K, 108, 0, 0x7c},   {WH_TYPE_Q4_K, 2, 0, 0xfc},    {WH_TYPE_Q6_K, 208, 0, 0x7c},
      {WH_TYPE_TQ1_0, 52, 0, 0x7c},   {WH_TYPE_TQ2_0, 64, 0, 0x7c},  {WH_TYPE_IQ4_XS, 0, 0, 0x7c},
      {WH_TYPE_MXFP4, 0, 0xff, 0x00}, {WH_TYPE_IQ1_M, 0, 0, 0},      {WH_TYPE_F16, 0, 0, 0x7c},
      {WH_TYPE_BF16, 0, 0x80, 0x7f},
  };
  for (guint i = 0; i < G_N_ELEMENTS(poison); i++) {
    wh_type type = poison[i].type;
    g_autofree char *name = g_strdup_printf("q.%s", wh_type_name(type));
    const wh_gguf_tensor *t = wh_gguf_find_tensor(g, name);
    g_assert_nonnull(t);
    guint32 bb = wh_quant_block_bytes(type), qk = wh_quant_block_size(type);
    guint8 *copy = g_memdup2(t->data, 4 * bb);
    g_assert_true(wh_quant_validate_row(type, copy, 4 * qk, NULL));
    if (type == WH_TYPE_IQ1_M) {
      /* the fp16 bits' nibbles 2 and 3 are the top nibbles of sc[2] and sc[3]: exponent 31 */
      copy[2 * bb + 53] |= 0xf0;
      copy[2 * bb + 55] = (guint8)((copy[2 * bb + 55] & 0x0f) | 0x70);
    } else {
      copy[2 * bb + poison[i].offset] = poison[i].b0;
      if (bb > 1 && type != WH_TYPE_MXFP4)
        copy[2 * bb + poison[i].offset + 1] = poison[i].b1;
    }
    gint64 bad = -7;
    if (wh_quant_validate_row(type, copy, 4 * qk, &bad))
      g_error("%s: poisoned block not detected", wh_type_name(type));
    g_assert_cmpint(bad, ==, 2 * qk);
    g_free(copy);
  }
  float f[3] = {1.0f, INFINITY, 2.0f};
  gint64 bad = -7;
  g_assert_false(wh_quant_validate_row(WH_TYPE_F32, f, 3, &bad));
  g_assert_cmpint(bad, ==, 1);
  g_assert_false(wh_quant_validate_row(WH_TYPE_Q4_0, f, 3, &bad));
  g_assert_cmpint(bad, ==, -1);
  wh_gguf_close(g);
}

/* Arbitrary bytes (a hostile or corrupt file) dequantize and dot without reading out of
 * bounds (ASan) or tripping UBSan, for every type. */
static void
test_random_bytes(void)
{
  enum { N = 512 };
  guint8 *bytes = g_malloc(N * 8);
  float *y = g_new(float, N);
  float act_f[N];
  GRand *rand = g_rand_new_with_seed(7);
  for (guint32 id = 0; id < WH_TYPE_COUNT; id++) {
    wh_type type = (wh_type)id;
    if (!wh_quant_type_can_dequantize(type) || N % wh_quant_block_size(type) != 0)
      continue;
    for (int rep = 0; rep < 4; rep++) {
      gsize nb = wh_quant_row_bytes(type, N);
      /* exact-size allocation so ASan sees any overrun */
      guint8 *row = g_malloc(nb);
      for (gsize i = 0; i < nb; i++)
        row[i] = (guint8)g_rand_int(rand);
      wh_quant_dequantize_row(type, row, y, N);
      wh_quant_validate_row(type, row, N, NULL);
      wh_type at = wh_quant_vec_dot_type(type);
      if (at != (wh_type)-1) {
        for (int i = 0; i < N; i++)
          act_f[i] = (float)g_rand_double_range(rand, -1, 1);
        wh_quant_quantize_activations(at, act_f, bytes, N);
        (void)wh_quant_vec_dot(type, row, at == WH_TYPE_F32 ? (void *)act_f : bytes, N);
        (void)wh_quant_vec_dot_portable(type, row, at == WH_TYPE_F32 ? (void *)act_f : bytes, N);
      }
      g_free(row);
    }
  }
  g_rand_free(rand);
  g_free(bytes);
  g_free(y);
}

/* ---- Quantization against the reference ---------------------------------------------------- */

/* Types whose quantizer the spec states byte-exact (block-formats.md appendix B). */
static const wh_type exact_types[] = {
    WH_TYPE_F16,    WH_TYPE_BF16,   WH_TYPE_Q4_0,  WH_TYPE_Q4_1,  WH_TYPE_Q5_0,  WH_TYPE_Q5_1,
    WH_TYPE_Q8_0,   WH_TYPE_Q2_K,   WH_TYPE_Q3_K,  WH_TYPE_Q4_K,  WH_TYPE_Q5_K,  WH_TYPE_Q6_K,
    WH_TYPE_IQ4_NL, WH_TYPE_IQ4_XS, WH_TYPE_TQ1_0, WH_TYPE_TQ2_0, WH_TYPE_MXFP4,
};

/* RMS error and importance-weighted RMS error (the reference's definition, see the file's
 * reference.note: each squared error weighted by its column's importance, averaged over all
 * elements). */
static void
errors(const float *x, const float *y, const float *imatrix, gint64 nrows, gint64 ncols,
       double *rmse, double *wrmse)
{
  double s = 0, ws = 0;
  for (gint64 r = 0; r < nrows; r++)
    for (gint64 c = 0; c < ncols; c++) {
      double e = (double)x[r * ncols + c] - (double)y[r * ncols + c];
      s += e * e;
      ws += imatrix[c] * e * e;
    }
  *rmse = sqrt(s / (double)(nrows * ncols));
  *wrmse = sqrt(ws / (double)(nrows * ncols));
}

/* Quantizes the reference input to @type and checks the error figures (and the bytes when
 * @exact). */
static void
check_quantize(wh_gguf *g, wh_type type, gboolean with_imatrix, gboolean exact)
{
  const float *x = f32_tensor(g, "input", 16 * 1024);
  const float *imatrix = f32_tensor(g, "imatrix", 1024);
  const char *name = wh_type_name(type);
  const char *suffix = with_imatrix ? "_imat" : "";
  g_autofree char *qname = g_strdup_printf("q%s.%s", suffix, name);
  const wh_gguf_tensor *ref = wh_gguf_find_tensor(g, qname);
  g_assert_nonnull(ref);

  gsize row_bytes = wh_quant_row_bytes(type, 1024);
  guint8 *q = g_malloc(16 * row_bytes);
  float *y = g_new(float, 16 * 1024);
  g_autoptr(GError) error = NULL;
  gsize n = wh_quant_quantize_rows(type, x, q, 16, 1024, with_imatrix ? imatrix : NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(n, ==, 16 * row_bytes);

  if (exact) {
    for (gsize k = 0; k < n; k++)
      if (q[k] != ref->data[k])
        g_error("%s: byte %" G_GSIZE_FORMAT " (row %" G_GSIZE_FORMAT ", block %" G_GSIZE_FORMAT
                ", offset %" G_GSIZE_FORMAT ") is 0x%02x, reference 0x%02x",
                qname, k, k / row_bytes, (k % row_bytes) / wh_quant_block_bytes(type),
                (k % row_bytes) % wh_quant_block_bytes(type), q[k], ref->data[k]);
  }

  for (int r = 0; r < 16; r++)
    wh_quant_dequantize_row(type, q + r * row_bytes, y + r * 1024, 1024);
  double rmse, wrmse, ref_rmse, ref_wrmse;
  errors(x, y, imatrix, 16, 1024, &rmse, &wrmse);
  g_autofree char *k1 = g_strdup_printf("reference.rmse%s.%s", suffix, name);
  g_autofree char *k2 = g_strdup_printf("reference.wrmse%s.%s", suffix, name);
  g_assert_true(wh_gguf_get_float(g, k1, &ref_rmse));
  g_assert_true(wh_gguf_get_float(g, k2, &ref_wrmse));
  if (g_test_verbose())
    g_test_message("%s: rmse %.9g (reference %.9g), wrmse %.9g (reference %.9g)", qname, rmse,
                   ref_rmse, wrmse, ref_wrmse);
  /* The metadata holds 9 significant digits. */
  g_assert_cmpfloat(rmse, <=, ref_rmse * (1 + 1e-7));
  g_assert_cmpfloat(wrmse, <=, ref_wrmse * (1 + 1e-7));
  g_free(q);
  g_free(y);
}

static void
test_quantize_reference(void)
{
  wh_gguf *g = open_shared(REF_FILE);
  if (!g)
    return;
  for (guint i = 0; i < G_N_ELEMENTS(exact_types); i++) {
    g_assert_true(wh_quant_type_can_quantize(exact_types[i]));
    g_assert_false(wh_quant_type_requires_imatrix(exact_types[i]));
    check_quantize(g, exact_types[i], FALSE, TRUE);
    check_quantize(g, exact_types[i], TRUE, TRUE);
  }
  wh_gguf_close(g);
}

/* The grid i-quants: quantized by quant-iq-search.c when it is built in; otherwise the
 * dispatcher must refuse them cleanly. */
static void
test_quantize_grid_iquants(void)
{
  wh_gguf *g = open_shared(REF_FILE);
  if (!g)
    return;
  static const wh_type grid[] = {WH_TYPE_IQ1_S, WH_TYPE_IQ1_M,   WH_TYPE_IQ2_XXS, WH_TYPE_IQ2_XS,
                                 WH_TYPE_IQ2_S, WH_TYPE_IQ3_XXS, WH_TYPE_IQ3_S};
  const float *x = f32_tensor(g, "input", 16 * 1024);
  for (guint i = 0; i < G_N_ELEMENTS(grid); i++) {
    wh_type type = grid[i];
    guint8 *q = g_malloc(16 * wh_quant_row_bytes(type, 1024));
    g_autoptr(GError) error = NULL;
    if (!wh_quant_type_can_quantize(type)) {
      g_assert_cmpuint(wh_quant_quantize_rows(type, x, q, 16, 1024, NULL, &error), ==, 0);
      g_assert_error(error, WH_QUANT_ERROR, WH_QUANT_ERROR_UNSUPPORTED);
      g_free(q);
      continue;
    }
    if (wh_quant_type_requires_imatrix(type)) {
      g_assert_cmpuint(wh_quant_quantize_rows(type, x, q, 16, 1024, NULL, &error), ==, 0);
      g_assert_error(error, WH_QUANT_ERROR, WH_QUANT_ERROR_NEEDS_IMATRIX);
    } else {
      check_quantize(g, type, FALSE, FALSE);
    }
    check_quantize(g, type, TRUE, FALSE);
    g_free(q);
  }
  wh_gguf_close(g);
}

static void
test_quantize_errors(void)
{
  float x[512] = {0};
  guint8 out[1024];
  g_autoptr(GError) error = NULL;
  g_assert_cmpuint(wh_quant_quantize_rows(WH_TYPE_Q4_K, x, out, 1, 100, NULL, &error), ==, 0);
  g_assert_error(error, WH_QUANT_ERROR, WH_QUANT_ERROR_BAD_SHAPE);
  g_clear_error(&error);
  g_assert_cmpuint(wh_quant_quantize_rows(WH_TYPE_Q4_0, x, out, 1, 0, NULL, &error), ==, 0);
  g_assert_error(error, WH_QUANT_ERROR, WH_QUANT_ERROR_BAD_SHAPE);
  g_clear_error(&error);
  g_assert_cmpuint(wh_quant_quantize_rows(WH_TYPE_IQ2_XXS, x, out, 1, 256, NULL, &error), ==, 0);
  g_assert_true(error != NULL && error->domain == WH_QUANT_ERROR);
  g_clear_error(&error);
  g_assert_cmpuint(wh_quant_quantize_rows(WH_TYPE_I32, x, out, 1, 256, NULL, &error), ==, 0);
  g_assert_error(error, WH_QUANT_ERROR, WH_QUANT_ERROR_UNSUPPORTED);
  g_clear_error(&error);
  g_assert_true(wh_quant_type_requires_imatrix(WH_TYPE_IQ1_S));
  g_assert_false(wh_quant_type_requires_imatrix(WH_TYPE_IQ1_M));
  g_assert_false(wh_quant_type_can_dequantize(WH_TYPE_I8));
  g_assert_cmpuint(wh_quant_row_bytes(WH_TYPE_Q4_K, 512), ==, 288);
  g_assert_cmpuint(wh_quant_row_bytes(WH_TYPE_Q4_K, 500), ==, 0);
}

/* ---- Types without reference tensors: Q8_1, Q8_K ------------------------------------------- */

static void
test_quantize_q8_1_q8_k(void)
{
  wh_gguf *g = open_shared(REF_FILE);
  if (!g)
    return;
  const float *x = f32_tensor(g, "input", 16 * 1024);
  float y[1024];
  guint8 q[36 * 32 + 292 * 4];
  g_autoptr(GError) error = NULL;
  for (int r = 0; r < 16; r++) {
    const float *xr = x + r * 1024;
    /* Q8_1: same codes and d as Q8_0, plus s = fp16(sum(qs) * d). */
    guint8 q80[34 * 32];
    g_assert_cmpuint(wh_quant_quantize_rows(WH_TYPE_Q8_1, xr, q, 1, 1024, NULL, &error), ==,
                     36 * 32);
    g_assert_cmpuint(wh_quant_quantize_rows(WH_TYPE_Q8_0, xr, q80, 1, 1024, NULL, &error), ==,
                     34 * 32);
    for (int b = 0; b < 32; b++) {
      const guint8 *b1 = q + 36 * b, *b0 = q80 + 34 * b;
      g_assert_cmpmem(b1, 2, b0, 2);
      g_assert_cmpmem(b1 + 4, 32, b0 + 2, 32);
      int sum = 0;
      for (int j = 0; j < 32; j++)
        sum += (gint8)b1[4 + j];
      float amax = 0.0f;
      for (int j = 0; j < 32; j++)
        amax = MAX(amax, fabsf(xr[32 * b + j]));
      float d = amax / 127.0f; /* the unrounded scale (block-formats.md 5.2) */
      g_assert_cmphex(b1[2] | (b1[3] << 8), ==, wh_fp32_to_fp16((float)sum * d));
    }
    /* Q8_K: error bounded by half a step; bsums are the group sums. */
    g_assert_cmpuint(wh_quant_quantize_rows(WH_TYPE_Q8_K, xr, q, 1, 1024, NULL, &error), ==,
                     292 * 4);
    wh_quant_dequantize_row(WH_TYPE_Q8_K, q, y, 1024);
    for (int b = 0; b < 4; b++) {
      const guint8 *blk = q + 292 * b;
      float d;
      memcpy(&d, blk, 4);
      for (int k = 0; k < 16; k++) {
        int sum = 0;
        for (int j = 0; j < 16; j++)
          sum += (gint8)blk[4 + 16 * k + j];
        g_assert_cmpint(sum, ==, (gint16)(blk[260 + 2 * k] | (blk[261 + 2 * k] << 8)));
      }
      for (int j = 0; j < 256; j++)
        g_assert_cmpfloat(fabsf(y[256 * b + j] - xr[256 * b + j]), <=, fabsf(d) * 0.5001f);
    }
  }
  wh_gguf_close(g);
}

/* ---- Edge rows ----------------------------------------------------------------------------- */

static void
test_edge_rows(void)
{
  enum { N = 512 };
  static const wh_type types[] = {
      WH_TYPE_F16,    WH_TYPE_BF16,    WH_TYPE_Q4_0,   WH_TYPE_Q4_1,  WH_TYPE_Q5_0,
      WH_TYPE_Q5_1,   WH_TYPE_Q8_0,    WH_TYPE_Q8_1,   WH_TYPE_Q8_K,  WH_TYPE_Q2_K,
      WH_TYPE_Q3_K,   WH_TYPE_Q4_K,    WH_TYPE_Q5_K,   WH_TYPE_Q6_K,  WH_TYPE_IQ4_NL,
      WH_TYPE_IQ4_XS, WH_TYPE_TQ1_0,   WH_TYPE_TQ2_0,  WH_TYPE_MXFP4, WH_TYPE_IQ1_S,
      WH_TYPE_IQ1_M,  WH_TYPE_IQ2_XXS, WH_TYPE_IQ2_XS, WH_TYPE_IQ2_S, WH_TYPE_IQ3_XXS,
      WH_TYPE_IQ3_S,
  };
  const char *kinds[] = {"zero",      "constant", "huge",     "tiny",
                         "subnormal", "spike",    "negative", "non-finite"};
  float *x = g_new(float, N);
  float *y = g_new(float, N);
  float imatrix[N];
  guint8 *q = g_malloc(N * 4);
  GRand *rand = g_rand_new_with_seed(1234);
  for (int i = 0; i < N; i++)
    imatrix[i] = (float)g_rand_double_range(rand, 0.0, 4.0);
  imatrix[7] = 0.0f;
  for (guint k = 0; k < G_N_ELEMENTS(kinds); k++) {
    for (int i = 0; i < N; i++) {
      double u = g_rand_double_range(rand, -1.0, 1.0);
      switch (k) {
      case 0:
        x[i] = 0.0f;
        break;
      case 1:
        x[i] = 0.75f;
        break;
      case 2:
        x[i] = (float)(u * 60000.0);
        break; /* stays finite in every fp16 scale */
      case 3:
        x[i] = (float)(u * 1e-20);
        break;
      case 4:
        x[i] = (float)(u * 1e-39);
        break;
      case 5:
        x[i] = i == 77 ? 3000.0f : (float)(u * 0.01);
        break;
      case 6:
        x[i] = (float)(-1.0 - fabs(u));
        break;
      default:
        x[i] = i % 97 == 3 ? NAN : i % 89 == 5 ? -INFINITY : (float)u;
        break;
      }
    }
    for (guint t = 0; t < G_N_ELEMENTS(types); t++) {
      wh_type type = types[t];
      if (!wh_quant_type_can_quantize(type))
        continue;
      for (int with_imat = 0; with_imat < 2; with_imat++) {
        if (!with_imat && wh_quant_type_requires_imatrix(type))
          continue;
        g_autoptr(GError) error = NULL;
        gsize n = wh_quant_quantize_rows(type, x, q, 1, N, with_imat ? imatrix : NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(n, ==, wh_quant_row_bytes(type, N));
        wh_quant_dequantize_row(type, q, y, N);
        if (k == 7)
          continue; /* non-finite input: only memory safety is promised (ASan checks it) */
        double amax = 0, err = 0;
        for (int i = 0; i < N; i++) {
          if (!isfinite(y[i]))
            g_error("%s %s row (imatrix %d): element %d dequantizes to %g", wh_type_name(type),
                    kinds[k], with_imat, i, y[i]);
          amax = MAX(amax, fabs(x[i]));
          err = MAX(err, fabs((double)y[i] - x[i]));
        }
        /* No type may make an error larger than the row's magnitude (plus a little rounding) */
        g_assert_cmpfloat(err, <=, amax * 1.01 + 1e-30);
        if (k == 0)
          g_assert_cmpfloat(err, ==, 0.0);
      }
    }
  }
  g_rand_free(rand);
  g_free(x);
  g_free(y);
  g_free(q);
}

/* ---- Dot products -------------------------------------------------------------------------- */

static void
test_vec_dot_types(void)
{
  g_assert_cmpint(wh_quant_vec_dot_type(WH_TYPE_F16), ==, WH_TYPE_F32);
  g_assert_cmpint(wh_quant_vec_dot_type(WH_TYPE_BF16), ==, WH_TYPE_F32);
  g_assert_cmpint(wh_quant_vec_dot_type(WH_TYPE_Q4_0), ==, WH_TYPE_Q8_0);
  g_assert_cmpint(wh_quant_vec_dot_type(WH_TYPE_Q5_0), ==, WH_TYPE_Q8_0);
  g_assert_cmpint(wh_quant_vec_dot_type(WH_TYPE_IQ4_NL), ==, WH_TYPE_Q8_0);
  g_assert_cmpint(wh_quant_vec_dot_type(WH_TYPE_Q4_1), ==, WH_TYPE_Q8_1);
  g_assert_cmpint(wh_quant_vec_dot_type(WH_TYPE_Q5_1), ==, WH_TYPE_Q8_1);
  g_assert_cmpint(wh_quant_vec_dot_type(WH_TYPE_Q4_K), ==, WH_TYPE_Q8_K);
  g_assert_cmpint(wh_quant_vec_dot_type(WH_TYPE_IQ2_XXS), ==, WH_TYPE_Q8_K);
  g_assert_cmpint(wh_quant_vec_dot_type(WH_TYPE_I32), ==, -1);
}

/* Activation quantization (Q8_0/Q8_1): id = 127/amax, ties to even; agrees with the file
 * quantizer except on rare boundary cases. */
static void
test_activations(void)
{
  float x[64];
  guint8 q[2 * 36];
  /* amax = 254 gives id = 0.5 exactly: odd x land on ties k + 0.5, which go to even. */
  for (int j = 0; j < 64; j++)
    x[j] = (float)(2 * (j % 32) - 31) * (j % 32 == 0 ? 254.0f / 31.0f : 1.0f);
  x[0] = -254.0f;
  x[32] = 254.0f;
  wh_quant_quantize_activations(WH_TYPE_Q8_0, x, q, 64);
  for (int b = 0; b < 2; b++) {
    const gint8 *qs = (const gint8 *)(q + 34 * b + 2);
    g_assert_cmphex(q[34 * b] | (q[34 * b + 1] << 8), ==, wh_fp32_to_fp16(254.0f / 127.0f));
    g_assert_cmpint(qs[0], ==, b ? 127 : -127);
    for (int j = 1; j < 32; j++) {
      float t = x[32 * b + j] * 0.5f; /* k + 0.5 */
      int even = (int)floorf(t);
      if (even % 2)
        even++;
      g_assert_cmpint(qs[j], ==, even);
    }
  }
  guint8 q80[2 * 34];
  memcpy(q80, q, sizeof q80);
  wh_quant_quantize_activations(WH_TYPE_Q8_1, x, q, 64);
  for (int b = 0; b < 2; b++) {
    const gint8 *qs = (const gint8 *)(q + 36 * b + 4);
    int sum = 0;
    for (int j = 0; j < 32; j++)
      sum += qs[j];
    g_assert_cmpmem(qs, 32, q80 + 34 * b + 2, 32); /* same codes and d as Q8_0 */
    g_assert_cmpmem(q + 36 * b, 2, q80 + 34 * b, 2);
    g_assert_cmphex(q[36 * b + 2] | (q[36 * b + 3] << 8), ==,
                    wh_fp32_to_fp16((float)sum * (254.0f / 127.0f)));
  }
  /* On generic data the codes equal the file quantizer's nearly everywhere. */
  GRand *rand = g_rand_new_with_seed(3);
  enum { N = 4096 };
  float *v = g_new(float, N);
  guint8 *a = g_malloc(34 * N / 32), *f = g_malloc(34 * N / 32);
  for (int i = 0; i < N; i++)
    v[i] = (float)g_rand_double_range(rand, -3, 3);
  wh_quant_quantize_activations(WH_TYPE_Q8_0, v, a, N);
  g_autoptr(GError) error = NULL;
  g_assert_cmpuint(wh_quant_quantize_rows(WH_TYPE_Q8_0, v, f, 1, N, NULL, &error), ==, 34 * N / 32);
  int differ = 0;
  for (int i = 0; i < 34 * N / 32; i++)
    differ += a[i] != f[i];
  g_assert_cmpint(differ, <, N / 200);
  g_free(v);
  g_free(a);
  g_free(f);
  g_rand_free(rand);
}

/* Weight rows of every type (the reference's own quantizations, F32 = the input), activations
 * = a random vector quantized with wh_quant_quantize_activations(). Checks:
 *  - the portable dot equals the double-precision dot of the dequantized operands up to float
 *    rounding (for Q8_1 activations, up to the fp16 rounding of the stored block sum s);
 *  - wh_quant_vec_dot() (SIMD where available) equals the portable path up to summation order,
 *    bit for bit for the k-quant kernels. */
static void
test_vec_dot_reference(void)
{
  wh_gguf *g = open_shared(REF_FILE);
  if (!g)
    return;
  enum { N = 1024 };
  static const char *const names[] = {
      "input",         "q.F16",       "q.BF16",      "q.Q4_0",  "q.Q4_1",       "q.Q5_0",
      "q.Q5_1",        "q.Q8_0",      "q.Q2_K",      "q.Q3_K",  "q.Q4_K",       "q.Q5_K",
      "q.Q6_K",        "q.IQ4_NL",    "q.IQ4_XS",    "q.TQ1_0", "q.TQ2_0",      "q.MXFP4",
      "q.IQ1_M",       "q.IQ2_S",     "q.IQ3_XXS",   "q.IQ3_S", "q_imat.IQ1_S", "q_imat.IQ2_XXS",
      "q_imat.IQ2_XS", "q_imat.Q4_K", "q_imat.Q6_K",
  };
  float a[N], wf[N], af[N];
  float act_f[N]; /* large enough for every activation type (F32 is the largest) */
  guint8 *act = (guint8 *)act_f;
  GRand *rand = g_rand_new_with_seed(42);
  for (guint t = 0; t < G_N_ELEMENTS(names); t++) {
    const wh_gguf_tensor *wt = wh_gguf_find_tensor(g, names[t]);
    g_assert_nonnull(wt);
    wh_type type = wt->type;
    wh_type at = wh_quant_vec_dot_type(type);
    g_assert_cmpint(at, !=, -1);
    gsize row_bytes = wh_quant_row_bytes(type, N);
    for (int r = 0; r < 16; r++) {
      /* all-zero (row 8) and huge (row 11) weight rows included */
      for (int i = 0; i < N; i++)
        a[i] = (float)g_rand_double_range(rand, -2.0, 2.0);
      const guint8 *w = wt->data + r * row_bytes;
      wh_quant_quantize_activations(at, a, act, N);
      wh_quant_dequantize_row(type, w, wf, N);
      if (at == WH_TYPE_F32)
        memcpy(af, a, sizeof af);
      else
        wh_quant_dequantize_row(at, act, af, N);
      double exact = 0, mag = 0, slack = 0;
      for (int i = 0; i < N; i++) {
        exact += (double)wf[i] * af[i];
        mag += fabs((double)wf[i] * af[i]);
      }
      if (at == WH_TYPE_Q8_1) {
        /* the min term uses s = fp16(d * sum qs): allow its rounding */
        gsize wb = wh_quant_block_bytes(type);
        for (int b = 0; b < N / 32; b++) {
          double m = wh_fp16_to_fp32((guint16)(w[wb * b + 2] | (w[wb * b + 3] << 8)));
          double sd = wh_fp16_to_fp32((guint16)(act[36 * b + 2] | (act[36 * b + 3] << 8)));
          double d8 = wh_fp16_to_fp32((guint16)(act[36 * b] | (act[36 * b + 1] << 8)));
          slack += fabs(m) * (fabs(sd) * 0x1p-10 + d8 * 32 * 0x1p-10);
        }
      }
      float portable = wh_quant_vec_dot_portable(type, w, act, N);
      g_assert_true(isfinite(portable));
      if (fabs(portable - exact) > 2e-6 * mag + slack + 1e-30)
        g_error("%s row %d: portable dot %.9g, exact %.9g (magnitude %.3g)", names[t], r, portable,
                exact, mag);
      /* every SIMD level this CPU runs (AVX2, AVX-512), and the resolved kernel */
      for (wh_quant_simd lv = WH_QUANT_SIMD_AVX2; lv <= wh_quant_simd_level(); lv++) {
        float fast = wh_quant_vec_dot_at(lv, type, w, act, N);
        g_assert_true(isfinite(fast));
        if (fabs((double)fast - portable) > 2e-6 * mag + 1e-30)
          g_error("%s row %d: SIMD level %d dot %.9g, portable %.9g", names[t], r, lv, fast,
                  portable);
        if (at == WH_TYPE_Q8_K) /* the Q8_K kernels share the portable float epilogue */
          g_assert_cmphex(bits(fast), ==, bits(portable));
      }
      float best = wh_quant_vec_dot(type, w, act, N);
      wh_quant_vec_dot_fn fn = wh_quant_vec_dot_resolve(type);
      if (fn)
        g_assert_cmphex(bits(fn(w, act, N)), ==, bits(best));
    }
    /* the multi-row kernel: runs of 16 and 7 rows (4-row groups and a tail) against one
     * activation, every output bit-identical to the per-row kernel */
    wh_quant_vec_dot_rows_fn rows_fn = wh_quant_vec_dot_rows_resolve(type);
    if (rows_fn) {
      wh_quant_vec_dot_fn fn = wh_quant_vec_dot_resolve(type);
      g_assert_nonnull(fn);
      float out[16];
      for (int first = 0; first < 2; first++) {
        const gint64 nrows = first ? 7 : 16;
        const guint8 *w = wt->data + first * row_bytes;
        rows_fn(w, row_bytes, act, N, out, nrows);
        for (gint64 r = 0; r < nrows; r++)
          g_assert_cmphex(bits(out[r]), ==, bits(fn(w + r * row_bytes, act, N)));
      }
    }
    if (g_test_verbose())
      g_test_message("%s: SIMD %s (level %d)", names[t],
                     wh_quant_vec_dot_has_simd(type) ? "yes" : "no", wh_quant_simd_level());
  }
  /* Row lengths that are not a multiple of the SIMD width (tails) for the plain types. */
  const float *x = f32_tensor(g, "input", 16 * 1024);
  guint16 h[N];
  for (int n = 1; n < 40; n += 3) {
    for (int k = 0; k < 3; k++) {
      wh_type type = k == 0 ? WH_TYPE_F32 : k == 1 ? WH_TYPE_F16 : WH_TYPE_BF16;
      const void *w = x + 5 * 1024;
      if (k > 0) {
        for (int i = 0; i < n; i++)
          h[i] = k == 1 ? wh_fp32_to_fp16(x[5 * 1024 + i]) : wh_fp32_to_bf16(x[5 * 1024 + i]);
        w = h;
      }
      float p = wh_quant_vec_dot_portable(type, w, x + 3 * 1024, n);
      float f = wh_quant_vec_dot(type, w, x + 3 * 1024, n);
      double mag = 0;
      for (int i = 0; i < n; i++)
        mag += fabs((double)x[5 * 1024 + i] * x[3 * 1024 + i]);
      g_assert_cmpfloat(fabs((double)p - f), <=, 2e-6 * mag);
    }
  }
  g_rand_free(rand);
  wh_gguf_close(g);
}

/* wh_quant_fp16_to_fp32_row() (F16C where the CPU has it) equals wh_fp16_to_fp32() bit for bit
 * on every fp16 value but the signalling NaNs, at every length (tails), at odd offsets. */
static void
test_fp16_row(void)
{
  guint16 *h = g_new(guint16, 65536 + 16);
  float *f = g_new(float, 65536 + 16);
  for (guint32 i = 0; i < 65536; i++) {
    const gboolean snan = (i & 0x7c00) == 0x7c00 && (i & 0x03ff) != 0 && !(i & 0x0200);
    h[i] = snan ? (guint16)0x7e00 : (guint16)i;
  }
  wh_quant_fp16_to_fp32_row(h, f, 65536);
  for (guint32 i = 0; i < 65536; i++)
    g_assert_cmphex(bits(f[i]), ==, bits(wh_fp16_to_fp32(h[i])));
  for (gint64 n = 0; n < 40; n++) {
    memset(f, 0xff, sizeof(float) * 48);
    wh_quant_fp16_to_fp32_row(h + 15000 + 2 * n + 1, f, n);
    for (gint64 i = 0; i < n; i++)
      g_assert_cmphex(bits(f[i]), ==, bits(wh_fp16_to_fp32(h[15000 + 2 * n + 1 + i])));
    g_assert_cmphex(bits(f[n]), ==, 0xffffffffu); /* nothing written past n */
  }
  g_free(h);
  g_free(f);
}

/* Multi-row (and rows x tokens) kernels on rows of an odd number of blocks (Q8_0: the tail
 * block after the block pairs) and rows at a stride wider than a row: bit-identical to the
 * per-row kernel. */
static void
test_vec_dot_rows_tail(void)
{
  const wh_type types[] = {WH_TYPE_Q8_0, WH_TYPE_Q4_K, WH_TYPE_Q6_K};
  GRand *rand = g_rand_new_with_seed(3);
  for (guint t = 0; t < G_N_ELEMENTS(types); t++) {
    wh_quant_vec_dot_rows_fn rows_fn = wh_quant_vec_dot_rows_resolve(types[t]);
    if (!rows_fn)
      continue;
    wh_quant_vec_dot_fn fn = wh_quant_vec_dot_resolve(types[t]);
    const gint64 n = types[t] == WH_TYPE_Q8_0 ? 32 * 7 : 256 * 3;
    const gsize row = wh_quant_row_bytes(types[t], n), stride = row + 40;
    const gint64 nrows = 11;
    float *x = g_new(float, n *nrows);
    for (gint64 i = 0; i < n * nrows; i++)
      x[i] = (float)g_rand_double_range(rand, -3.0, 3.0);
    guint8 *w = g_malloc0(stride * nrows);
    for (gint64 r = 0; r < nrows; r++)
      g_assert_cmpuint(
          wh_quant_quantize_rows(types[t], x + r * n, w + r * stride, 1, n, NULL, NULL), ==, row);
    const wh_type at = wh_quant_vec_dot_type(types[t]);
    guint8 *act = g_malloc(wh_quant_row_bytes(at, n));
    wh_quant_quantize_activations(at, x, act, n);
    float out[11];
    rows_fn(w, stride, act, n, out, nrows);
    for (gint64 r = 0; r < nrows; r++)
      g_assert_cmphex(bits(out[r]), ==, bits(fn(w + r * stride, act, n)));
    /* rows x tokens: 5 tokens (two pairs and one more), the rows' own values as activations */
    wh_quant_vec_dot_rows_tokens_fn rt_fn = wh_quant_vec_dot_rows_tokens_resolve(types[t]);
    if (rt_fn) {
      const gsize arow = wh_quant_row_bytes(at, n);
      guint8 *acts = g_malloc(arow * 5);
      for (int k = 0; k < 5; k++)
        wh_quant_quantize_activations(at, x + (gsize)k * n, acts + k * arow, n);
      float o5[5 * 13];
      rt_fn(w, stride, acts, arow, n, o5, 13, nrows, 5);
      for (int k = 0; k < 5; k++)
        for (gint64 r = 0; r < nrows; r++)
          g_assert_cmphex(bits(o5[k * 13 + r]), ==, bits(fn(w + r * stride, acts + k * arow, n)));
      g_free(acts);
    }
    g_free(act);
    g_free(w);
    g_free(x);
  }
  g_rand_free(rand);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/quant/tables", test_tables);
  g_test_add_func("/quant/fp16", test_fp16);
  g_test_add_func("/quant/fp16-row", test_fp16_row);
  g_test_add_func("/quant/bf16", test_bf16);
  g_test_add_func("/quant/dequantize/reference", test_dequantize_reference);
  g_test_add_func("/quant/dequantize/validate", test_validate);
  g_test_add_func("/quant/dequantize/random-bytes", test_random_bytes);
  g_test_add_func("/quant/quantize/reference", test_quantize_reference);
  g_test_add_func("/quant/quantize/grid-iquants", test_quantize_grid_iquants);
  g_test_add_func("/quant/quantize/errors", test_quantize_errors);
  g_test_add_func("/quant/quantize/q8-1-q8-k", test_quantize_q8_1_q8_k);
  g_test_add_func("/quant/quantize/edge-rows", test_edge_rows);
  g_test_add_func("/quant/vec-dot/types", test_vec_dot_types);
  g_test_add_func("/quant/vec-dot/rows-tail", test_vec_dot_rows_tail);
  g_test_add_func("/quant/vec-dot/activations", test_activations);
  g_test_add_func("/quant/vec-dot/reference", test_vec_dot_reference);
  return g_test_run();
}
