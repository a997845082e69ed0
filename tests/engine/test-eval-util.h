/* test-eval-util.h — what test-eval.c and test-eval-slow.c share: loading a shared model with
 * its tokenized text, one-thread parameters, and imatrix comparisons. Header-only (static
 * inline), included by the two test programs. */
#pragma once

#include <math.h>
#include <string.h>

#include "eval/eval.h"
#include "gguf/imatrix.h"
#include "model/model.h"
#include "quant/quant.h"
#include "tokenizer/tokenizer.h"
#include "wh-test-util.h"

#define STORIES "models/stories260K.gguf"
#define STORIES_Q4_0 "reference/models/stories260K-Q4_0.gguf"
#define SYNTH_F16 "reference/models/synth-llama-F16.gguf"
#define EVAL_TXT "reference/eval.txt"
#define CALIB_TXT "reference/calib.txt"
#define SHARED_IMATRIX "reference/synth-llama.imatrix.gguf"

/* A model with its tokenized text. */
typedef struct {
  wh_model *model;
  GArray *ids;
  gint32 bos;
} loaded;

static inline gboolean
load(const char *model_rel, const char *text_rel, loaded *out)
{
  g_autofree char *mp = wh_test_shared_file_or_skip(model_rel);
  g_autofree char *tp = mp ? wh_test_shared_file_or_skip(text_rel) : NULL;
  if (!mp || !tp)
    return FALSE;
  g_autoptr(GError) error = NULL;
  out->model = wh_model_load(mp, NULL, &error);
  g_assert_no_error(error);
  g_autofree char *text = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(tp, &text, &len, &error));
  wh_tokenizer *tok = wh_tokenizer_new_from_gguf(wh_model_get_gguf(out->model), &error);
  g_assert_no_error(error);
  out->ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  g_assert_cmpint(wh_tokenizer_tokenize(tok, text, len, TRUE, FALSE, out->ids, &error), >=, 0);
  g_assert_no_error(error);
  out->bos = wh_tokenizer_add_bos(tok) ? wh_tokenizer_bos(tok) : -1;
  wh_tokenizer_free(tok);
  return TRUE;
}

static inline void
unload(loaded *l)
{
  wh_model_free(l->model);
  g_array_unref(l->ids);
}

static inline const gint32 *
toks(const loaded *l)
{
  return (const gint32 *)l->ids->data;
}

/* Default parameters on one thread: these models are tiny, and one thread beats the pool's
 * barriers on a busy machine (results do not depend on the thread count). */
static inline wh_eval_params
test_params(void)
{
  wh_eval_params p = wh_eval_default_params();
  p.n_threads = 1;
  return p;
}

static inline double
cosine(const float *a, const float *b, guint64 n)
{
  double ab = 0, aa = 0, bb = 0;
  for (guint64 i = 0; i < n; i++) {
    ab += (double)a[i] * b[i];
    aa += (double)a[i] * a[i];
    bb += (double)b[i] * b[i];
  }
  return ab / sqrt(aa * bb);
}

/* Weighted RMS error of quantizing @w (rows x cols) to @type with importance @qw_quant,
 * weighted by @qw_measure. */
static inline double
weighted_error(wh_type type, const float *w, guint64 rows, guint64 cols, const float *qw_quant,
               const float *qw_measure)
{
  const gsize rb = wh_quant_row_bytes(type, (gint64)cols);
  guint8 *q = g_malloc(rb * rows);
  float *y = g_new(float, cols);
  g_autoptr(GError) error = NULL;
  g_assert_cmpuint(wh_quant_quantize_rows(type, w, q, (gint64)rows, (gint64)cols, qw_quant, &error),
                   ==, rb * rows);
  g_assert_no_error(error);
  double se = 0.0;
  for (guint64 r = 0; r < rows; r++) {
    wh_quant_dequantize_row(type, q + r * rb, y, (gint64)cols);
    for (guint64 c = 0; c < cols; c++) {
      const double d = (double)w[r * cols + c] - y[c];
      se += qw_measure[c] * d * d;
    }
  }
  g_free(q);
  g_free(y);
  return sqrt(se / (double)(rows * cols));
}

/* An imatrix run of synth-llama-F16 on calib.txt (chunks of 128) next to the reference's. */
typedef struct {
  loaded l;
  char *dir;
  wh_imatrix *ours, *ref;
  wh_eval_result r;
} imatrix_run;

/* Runs the first @max_chunks chunks (0 = all), also collecting output.weight when
 * @with_output, checks the file's metadata, and loads both imatrices. FALSE (test skipped)
 * when the shared data is missing. */
static inline gboolean
imatrix_run_start(imatrix_run *run, guint32 max_chunks, gboolean with_output)
{
  memset(run, 0, sizeof *run);
  g_autofree char *ref_path = wh_test_shared_file_or_skip(SHARED_IMATRIX);
  if (!ref_path || !load(SYNTH_F16, CALIB_TXT, &run->l))
    return FALSE;
  run->dir = wh_test_make_tmpdir();
  g_autofree char *path = g_build_filename(run->dir, "synth.imatrix.gguf", NULL);
  wh_eval_params p = test_params();
  p.n_ctx = 128;
  p.max_chunks = max_chunks;
  p.imatrix_output = with_output;
  const char *datasets[] = {"calib.txt", NULL};
  g_autoptr(GError) error = NULL;
  g_assert_true(wh_eval_imatrix(run->l.model, toks(&run->l), run->l.ids->len, run->l.bos, &p, path,
                                datasets, &run->r, &error));
  g_assert_no_error(error);
  run->ours = wh_imatrix_load(path, &error);
  g_assert_no_error(error);
  run->ref = wh_imatrix_load(ref_path, &error);
  g_assert_no_error(error);
  g_test_message("synth-llama-F16 calib.txt: %u chunks, PPL %.2f", run->r.n_chunks, run->r.ppl);
  g_assert_cmpint(wh_imatrix_chunk_count(run->ours), ==, run->r.n_chunks);
  g_assert_cmpint(wh_imatrix_chunk_size(run->ours), ==, 128);
  g_assert_cmpstr(wh_imatrix_dataset(run->ours), ==, "calib.txt");
  return TRUE;
}

/* Every reference entry exists in ours with the same shape and @count tokens; returns the
 * worst per-tensor cosine similarity of the sums. */
static inline double
imatrix_run_compare(const imatrix_run *run, float count)
{
  double worst = 1.0;
  for (guint i = 0; i < wh_imatrix_n_entries(run->ref); i++) {
    const wh_imatrix_entry *re = wh_imatrix_get_entry(run->ref, i);
    const wh_imatrix_entry *oe = wh_imatrix_find(run->ours, re->name);
    g_assert_nonnull(oe);
    g_assert_cmpuint(oe->n_cols, ==, re->n_cols);
    g_assert_cmpuint(oe->n_mat, ==, re->n_mat);
    g_assert_cmpfloat(oe->counts[0], ==, count);
    worst = MIN(worst, cosine(oe->in_sum2, re->in_sum2, re->n_cols));
  }
  g_test_message("worst per-tensor cosine similarity to the reference %.6f", worst);
  return worst;
}

static inline void
imatrix_run_end(imatrix_run *run)
{
  wh_imatrix_free(run->ours);
  wh_imatrix_free(run->ref);
  wh_test_rmdir_r(run->dir);
  g_free(run->dir);
  unload(&run->l);
}
