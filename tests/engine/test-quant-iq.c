/* test-quant-iq.c — the grid i-quant encoders (quant-iq-search.c) against the reference's
 * error figures.
 *
 * Data: ../shared/reference/quant-reference.gguf — `input` (16 x 1024 F32), `imatrix` (1024
 * per-column importances), the reference's dequantized results dq[_imat].T and its figures
 * reference.rmse[_imat].T / reference.wrmse[_imat].T, where
 *   rmse  = sqrt(sum (x - y)^2 / N),  wrmse = sqrt(sum imatrix[col] · (x - y)^2 / N)
 * over all N = 16384 elements (checked against dq.T: that is how the figures were made).
 * Our encoder is not the reference's (block-formats.md 5.10 leaves it open), so the bar is its
 * error: ours must be no worse, overall and (with 5% slack) row by row. Dequantization is the
 * quant module's (bit-exact, tested in test-quant.c).
 *
 * Run with -m perf for a single-thread throughput figure (WH_IQ_BENCH_ROWS rows of 4096,
 * default 256; 4096 for the full 4096 x 4096 matrix).
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/quant-private.h"
#include "quant/quant.h"
#include "wh-test-util.h"

#define REF_FILE "reference/quant-reference.gguf"
#define REF_ROWS 16
#define REF_COLS 1024
#define REF_N (REF_ROWS * REF_COLS)

static const wh_type iq_types[] = {
    WH_TYPE_IQ1_S, WH_TYPE_IQ1_M,   WH_TYPE_IQ2_XXS, WH_TYPE_IQ2_XS,
    WH_TYPE_IQ2_S, WH_TYPE_IQ3_XXS, WH_TYPE_IQ3_S,
};

/* ---- Helpers --------------------------------------------------------------------------------- */

typedef struct {
  wh_gguf *g;
  float *input;   /* REF_N, owned copy */
  float *imatrix; /* REF_COLS, owned copy */
} ref_data;

static float *
copy_f32_tensor(wh_gguf *g, const char *name, guint64 expect_n)
{
  const wh_gguf_tensor *t = wh_gguf_find_tensor(g, name);
  g_assert_nonnull(t);
  g_assert_cmpint(t->type, ==, WH_TYPE_F32);
  g_assert_cmpuint(t->n_elements, ==, expect_n);
  float *out = g_new(float, expect_n);
  memcpy(out, t->data, expect_n * sizeof(float));
  return out;
}

/* Opens the oracle; FALSE (test skipped) when the shared data is missing. */
static gboolean
ref_open(ref_data *r)
{
  g_autofree char *path = wh_test_shared_file_or_skip(REF_FILE);
  if (!path)
    return FALSE;
  g_autoptr(GError) error = NULL;
  r->g = wh_gguf_open(path, &error);
  g_assert_no_error(error);
  r->input = copy_f32_tensor(r->g, "input", REF_N);
  r->imatrix = copy_f32_tensor(r->g, "imatrix", REF_COLS);
  return TRUE;
}

static void
ref_close(ref_data *r)
{
  g_free(r->input);
  g_free(r->imatrix);
  wh_gguf_close(r->g);
}

static gboolean
type_needs_imatrix(wh_type t)
{
  return t == WH_TYPE_IQ1_S || t == WH_TYPE_IQ2_XXS || t == WH_TYPE_IQ2_XS;
}

/* Quantizes @nrows x @ncols with the encoder under test and dequantizes back into @out.
 * Returns the quantized bytes (caller frees). */
static guint8 *
roundtrip(wh_type type, const float *x, gint64 nrows, gint64 ncols, const float *qw, float *out)
{
  gsize rb = wh_quant_row_bytes(type, ncols);
  guint8 *q = g_malloc0(rb * (gsize)MAX(nrows, 1));
  g_autoptr(GError) error = NULL;
  gsize n = wh_quant_iq_quantize_rows(type, x, q, nrows, ncols, qw, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(n, ==, rb * (gsize)nrows);
  for (gint64 r = 0; r < nrows; r++)
    wh_quant_dequantize_row(type, q + rb * (gsize)r, out + r * ncols, ncols);
  return q;
}

/* rmse and importance-weighted rmse of @y against @x over rows [r0, r1). */
static void
errors(const float *x, const float *y, const float *qw, int r0, int r1, double *rmse, double *wrmse)
{
  double se = 0.0, wse = 0.0;
  for (int i = r0 * REF_COLS; i < r1 * REF_COLS; i++) {
    double d = (double)x[i] - (double)y[i];
    se += d * d;
    wse += (double)qw[i % REF_COLS] * d * d;
  }
  int n = (r1 - r0) * REF_COLS;
  *rmse = sqrt(se / n);
  *wrmse = sqrt(wse / n);
}

static double
ref_figure(wh_gguf *g, const char *what, gboolean imat, wh_type type)
{
  g_autofree char *key =
      g_strdup_printf("reference.%s%s.%s", what, imat ? "_imat" : "", wh_type_name(type));
  double v = -1.0;
  g_assert_true(wh_gguf_get_float(g, key, &v));
  g_assert_cmpfloat(v, >, 0.0);
  return v;
}

/* ---- Thread safety (first: the neighbour maps are built lazily) ------------------------------ */

typedef struct {
  const ref_data *r;
  guint8 *out[G_N_ELEMENTS(iq_types)];
} thread_job;

static gpointer
thread_main(gpointer data)
{
  thread_job *job = data;
  for (guint t = 0; t < G_N_ELEMENTS(iq_types); t++) {
    gsize rb = wh_quant_row_bytes(iq_types[t], REF_COLS);
    job->out[t] = g_malloc(rb * REF_ROWS);
    gsize n = wh_quant_iq_quantize_rows(iq_types[t], job->r->input, job->out[t], REF_ROWS, REF_COLS,
                                        job->r->imatrix, NULL);
    g_assert_cmpuint(n, ==, rb * REF_ROWS);
  }
  return NULL;
}

/* Four threads quantize the same matrix to every type at once (racing on the lazy grid maps);
 * all must agree with each other byte for byte. */
static void
test_threads(void)
{
  ref_data r;
  if (!ref_open(&r))
    return;
  thread_job jobs[4];
  GThread *th[4];
  for (int i = 0; i < 4; i++) {
    jobs[i].r = &r;
    th[i] = g_thread_new("iq-quant", thread_main, &jobs[i]);
  }
  for (int i = 0; i < 4; i++)
    g_thread_join(th[i]);
  for (guint t = 0; t < G_N_ELEMENTS(iq_types); t++) {
    gsize rb = wh_quant_row_bytes(iq_types[t], REF_COLS);
    for (int i = 1; i < 4; i++)
      g_assert_cmpmem(jobs[i].out[t], rb * REF_ROWS, jobs[0].out[t], rb * REF_ROWS);
    for (int i = 0; i < 4; i++)
      g_free(jobs[i].out[t]);
  }
  ref_close(&r);
}

/* ---- Error against the reference ------------------------------------------------------------- */

static void
check_type(const ref_data *r, wh_type type, gboolean imat)
{
  const float *qw = imat ? r->imatrix : NULL;
  g_autofree float *y = g_new(float, REF_N);
  g_autofree guint8 *q = roundtrip(type, r->input, REF_ROWS, REF_COLS, qw, y);
  for (int i = 0; i < REF_N; i++)
    g_assert_true(isfinite(y[i]));

  double rmse, wrmse;
  errors(r->input, y, r->imatrix, 0, REF_ROWS, &rmse, &wrmse);
  double ref_rmse = ref_figure(r->g, "rmse", imat, type);
  double ref_wrmse = ref_figure(r->g, "wrmse", imat, type);
  g_test_message("%-8s %-6s rmse %.4f (reference %.4f)  wrmse %.4f (reference %.4f)",
                 wh_type_name(type), imat ? "imat" : "none", rmse, ref_rmse, wrmse, ref_wrmse);
  g_assert_cmpfloat(rmse, <=, ref_rmse);
  g_assert_cmpfloat(wrmse, <=, ref_wrmse);

  /* Row by row against the reference's own dequantized output: no row type (sparse outliers,
   * one-signed, constant, ...) may be handled clearly worse. */
  g_autofree char *name = g_strdup_printf("dq%s.%s", imat ? "_imat" : "", wh_type_name(type));
  const wh_gguf_tensor *t = wh_gguf_find_tensor(r->g, name);
  g_assert_nonnull(t);
  g_assert_cmpuint(t->n_elements, ==, REF_N);
  g_autofree float *ref = g_new(float, REF_N);
  memcpy(ref, t->data, sizeof(float) * REF_N);
  for (int row = 0; row < REF_ROWS; row++) {
    double a, wa, b, wb;
    errors(r->input, y, r->imatrix, row, row + 1, &a, &wa);
    errors(r->input, ref, r->imatrix, row, row + 1, &b, &wb);
    if (a > 1.05 * b + 1e-7 || wa > 1.05 * wb + 1e-7)
      g_error("%s %s row %d: rmse %g / wrmse %g, reference %g / %g", wh_type_name(type),
              imat ? "imat" : "none", row, a, wa, b, wb);
  }
}

static void
test_reference_error(void)
{
  ref_data r;
  if (!ref_open(&r))
    return;
  for (guint t = 0; t < G_N_ELEMENTS(iq_types); t++) {
    check_type(&r, iq_types[t], TRUE);
    if (!type_needs_imatrix(iq_types[t]))
      check_type(&r, iq_types[t], FALSE);
  }
  ref_close(&r);
}

/* ---- Refusals and argument errors ------------------------------------------------------------ */

static void
test_errors(void)
{
  float x[WH_QK_K] = {0};
  guint8 q[256];
  for (guint t = 0; t < G_N_ELEMENTS(iq_types); t++) {
    wh_type type = iq_types[t];
    g_autoptr(GError) error = NULL;
    gsize n = wh_quant_iq_quantize_rows(type, x, q, 1, WH_QK_K, NULL, &error);
    if (type_needs_imatrix(type)) {
      g_assert_cmpuint(n, ==, 0);
      g_assert_error(error, WH_QUANT_ERROR, WH_QUANT_ERROR_NEEDS_IMATRIX);
      g_assert_nonnull(strstr(error->message, wh_type_name(type)));
      g_clear_error(&error);
      /* The public entry point refuses the same way. */
      g_assert_cmpuint(wh_quant_quantize_rows(type, x, q, 1, WH_QK_K, NULL, &error), ==, 0);
      g_assert_error(error, WH_QUANT_ERROR, WH_QUANT_ERROR_NEEDS_IMATRIX);
    } else {
      g_assert_no_error(error);
      g_assert_cmpuint(n, ==, wh_quant_block_bytes(type));
    }
    g_clear_error(&error);
    g_assert_cmpuint(wh_quant_iq_quantize_rows(type, x, q, 1, 100, x, &error), ==, 0);
    g_assert_error(error, WH_QUANT_ERROR, WH_QUANT_ERROR_BAD_SHAPE);
    g_clear_error(&error);
    /* Zero rows: nothing written, no error. */
    g_assert_cmpuint(wh_quant_iq_quantize_rows(type, x, q, 0, WH_QK_K, x, &error), ==, 0);
    g_assert_no_error(error);
  }
  g_autoptr(GError) error = NULL;
  g_assert_cmpuint(wh_quant_iq_quantize_rows(WH_TYPE_Q4_0, x, q, 1, WH_QK_K, x, &error), ==, 0);
  g_assert_error(error, WH_QUANT_ERROR, WH_QUANT_ERROR_UNSUPPORTED);
}

/* ---- Edge rows ------------------------------------------------------------------------------- */

#define EDGE_COLS 512
#define EDGE_ROWS 10

/* Rows that stress scales: zeros, constants, huge, tiny (down to subnormal), single outlier,
 * all-negative, values beyond fp16 range. */
static void
fill_edge_rows(float *x)
{
  GRand *rand = g_rand_new_with_seed(1234);
  for (int c = 0; c < EDGE_COLS; c++) {
    float g = (float)g_rand_double_range(rand, -1.0, 1.0);
    x[0 * EDGE_COLS + c] = 0.0f;
    x[1 * EDGE_COLS + c] = 0.5f;
    x[2 * EDGE_COLS + c] = -3.0f;
    x[3 * EDGE_COLS + c] = g * 1e4f;
    x[4 * EDGE_COLS + c] = g * 1e-6f;
    x[5 * EDGE_COLS + c] = g * 1e-40f; /* subnormal */
    x[6 * EDGE_COLS + c] = c == 77 ? 50.0f : g * 1e-3f;
    x[7 * EDGE_COLS + c] = -fabsf(g) - 0.1f;
    x[8 * EDGE_COLS + c] = g * 1e30f;
    x[9 * EDGE_COLS + c] = (c % 2) ? 1.0f : -1.0f;
  }
  g_rand_free(rand);
}

static double
row_rms(const float *v, int n)
{
  double s = 0.0;
  for (int i = 0; i < n; i++)
    s += (double)v[i] * v[i];
  return sqrt(s / n);
}

static void
test_edge_rows(void)
{
  g_autofree float *x = g_new(float, EDGE_ROWS *EDGE_COLS);
  g_autofree float *y = g_new(float, EDGE_ROWS *EDGE_COLS);
  g_autofree float *diff = g_new(float, EDGE_COLS);
  g_autofree float *ones = g_new(float, EDGE_COLS);
  g_autofree float *zeros = g_new0(float, EDGE_COLS);
  for (int c = 0; c < EDGE_COLS; c++)
    ones[c] = 1.0f;
  fill_edge_rows(x);

  for (guint t = 0; t < G_N_ELEMENTS(iq_types); t++) {
    wh_type type = iq_types[t];
    const float *weights[3] = {ones, zeros, NULL};
    for (int k = 0; k < 3; k++) {
      if (!weights[k] && type_needs_imatrix(type))
        continue;
      g_autofree guint8 *q = roundtrip(type, x, EDGE_ROWS, EDGE_COLS, weights[k], y);
      for (int i = 0; i < EDGE_ROWS * EDGE_COLS; i++)
        if (!isfinite(y[i]))
          g_error("%s weights %d: element %d (row %d) is %g", wh_type_name(type), k, i,
                  i / EDGE_COLS, y[i]);
      /* Zero in, zero out. */
      for (int c = 0; c < EDGE_COLS; c++)
        g_assert_cmpfloat(y[c], ==, 0.0f);
      /* Rows with a representable range: relative error well below 100% (a real fit, not
       * just finite). */
      const int fitted[] = {1, 2, 3, 7, 9};
      for (guint f = 0; f < G_N_ELEMENTS(fitted); f++) {
        int row = fitted[f];
        for (int c = 0; c < EDGE_COLS; c++)
          diff[c] = x[row * EDGE_COLS + c] - y[row * EDGE_COLS + c];
        double rel = row_rms(diff, EDGE_COLS) / row_rms(x + row * EDGE_COLS, EDGE_COLS);
        if (!(rel < 0.6))
          g_error("%s weights %d row %d: relative rms error %g", wh_type_name(type), k, row, rel);
      }
      /* The outlier row keeps its outlier's sign and most of its size. */
      g_assert_cmpfloat(y[6 * EDGE_COLS + 77], >, 25.0f);
    }
  }
}

/* Non-finite input: the output is unspecified, but quantizing must not crash and the blocks
 * must still decode (every index in range: ASan/UBSan runs check this). */
static void
test_non_finite(void)
{
  float x[2 * WH_QK_K], y[2 * WH_QK_K], qw[2 * WH_QK_K];
  for (int i = 0; i < 2 * WH_QK_K; i++) {
    x[i] = (i % 3 == 0) ? NAN : (i % 3 == 1) ? INFINITY : -1.0f;
    qw[i] = (i % 5 == 0) ? NAN : 1.0f;
  }
  for (guint t = 0; t < G_N_ELEMENTS(iq_types); t++) {
    g_autofree guint8 *q1 = roundtrip(iq_types[t], x, 1, 2 * WH_QK_K, qw, y);
    g_autofree guint8 *q2 = roundtrip(iq_types[t], x, 2, WH_QK_K, qw, y);
  }
}

/* ---- Determinism ----------------------------------------------------------------------------- */

static void
test_deterministic(void)
{
  ref_data r;
  if (!ref_open(&r))
    return;
  for (guint t = 0; t < G_N_ELEMENTS(iq_types); t++) {
    wh_type type = iq_types[t];
    gsize rb = wh_quant_row_bytes(type, REF_COLS);
    g_autofree guint8 *a = g_malloc(rb * REF_ROWS);
    g_autofree guint8 *b = g_malloc(rb * REF_ROWS);
    g_autofree guint8 *c = g_malloc(rb * REF_ROWS);
    g_assert_cmpuint(
        wh_quant_iq_quantize_rows(type, r.input, a, REF_ROWS, REF_COLS, r.imatrix, NULL), ==,
        rb * REF_ROWS);
    g_assert_cmpuint(
        wh_quant_iq_quantize_rows(type, r.input, b, REF_ROWS, REF_COLS, r.imatrix, NULL), ==,
        rb * REF_ROWS);
    g_assert_cmpmem(a, rb * REF_ROWS, b, rb * REF_ROWS);
    /* Row by row (how callers split work across threads) gives the same bytes. */
    for (int row = 0; row < REF_ROWS; row++)
      g_assert_cmpuint(wh_quant_iq_quantize_rows(type, r.input + row * REF_COLS, c + rb * row, 1,
                                                 REF_COLS, r.imatrix, NULL),
                       ==, rb);
    g_assert_cmpmem(a, rb * REF_ROWS, c, rb * REF_ROWS);
    /* And the public entry point dispatches here. */
    g_autoptr(GError) error = NULL;
    memset(c, 0, rb * REF_ROWS);
    g_assert_cmpuint(
        wh_quant_quantize_rows(type, r.input, c, REF_ROWS, REF_COLS, r.imatrix, &error), ==,
        rb * REF_ROWS);
    g_assert_no_error(error);
    g_assert_cmpmem(a, rb * REF_ROWS, c, rb * REF_ROWS);
  }
  ref_close(&r);
}

/* ---- Throughput (-m perf) -------------------------------------------------------------------- */

static void
test_perf(void)
{
  const int cols = 4096;
  int rows = 256;
  const char *env = g_getenv("WH_IQ_BENCH_ROWS");
  if (env && g_ascii_strtoll(env, NULL, 10) > 0)
    rows = (int)g_ascii_strtoll(env, NULL, 10);
  g_autofree float *x = g_new(float, (gsize)rows *cols);
  g_autofree float *qw = g_new(float, cols);
  GRand *rand = g_rand_new_with_seed(7);
  for (gsize i = 0; i < (gsize)rows * cols; i++) {
    /* Gaussian (Box-Muller), the shape of real weight matrices. */
    double u1 = g_rand_double(rand) + 1e-12, u2 = g_rand_double(rand);
    x[i] = (float)(0.02 * sqrt(-2.0 * log(u1)) * cos(2.0 * G_PI * u2));
  }
  for (int c = 0; c < cols; c++)
    qw[c] = (float)g_rand_double_range(rand, 0.01, 4.0);
  g_rand_free(rand);
  for (guint t = 0; t < G_N_ELEMENTS(iq_types); t++) {
    gsize rb = wh_quant_row_bytes(iq_types[t], cols);
    g_autofree guint8 *q = g_malloc(rb * (gsize)rows);
    wh_quant_iq_quantize_rows(iq_types[t], x, q, 1, cols, qw, NULL); /* builds the maps */
    g_test_timer_start();
    wh_quant_iq_quantize_rows(iq_types[t], x, q, rows, cols, qw, NULL);
    double s = g_test_timer_elapsed();
    g_test_minimized_result(s, "%-8s %d x %d: %.2f s, %.1f MB/s of F32 input",
                            wh_type_name(iq_types[t]), rows, cols, s,
                            (double)rows * cols * 4 / s / 1e6);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/quant-iq/threads", test_threads);
  g_test_add_func("/quant-iq/reference-error", test_reference_error);
  g_test_add_func("/quant-iq/errors", test_errors);
  g_test_add_func("/quant-iq/edge-rows", test_edge_rows);
  g_test_add_func("/quant-iq/non-finite", test_non_finite);
  g_test_add_func("/quant-iq/deterministic", test_deterministic);
  if (g_test_perf())
    g_test_add_func("/quant-iq/perf", test_perf);
  return g_test_run();
}
