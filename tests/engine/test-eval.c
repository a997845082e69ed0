/* test-eval.c — perplexity, KL divergence, saved logits and imatrix (engine/eval).
 *
 * A few chunks each, so the binary stays quick under the sanitizers. The whole-text checks
 * (stories260K 3.5554, the full synth-llama imatrix against the reference's, our own
 * quantizations) live in test-eval-slow.c.
 */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "test-eval-util.h"

typedef struct {
  guint32 calls, last_done, n_chunks;
  guint32 stop_after; /* 0 = never */
} progress_log;

static void
on_progress(guint32 done, guint32 n_chunks, double ppl, gpointer user_data)
{
  progress_log *p = user_data;
  g_assert_cmpuint(done, ==, p->last_done + 1);
  g_assert_true(isfinite(ppl) && ppl >= 1.0);
  p->calls++;
  p->last_done = done;
  p->n_chunks = n_chunks;
}

static gboolean
on_continue(gpointer user_data)
{
  progress_log *p = user_data;
  return p->stop_after == 0 || p->last_done < p->stop_after;
}

/* Progress after every chunk, in order; the chunk count honours max_chunks. */
static void
test_perplexity_progress(void)
{
  loaded l;
  if (!load(STORIES, EVAL_TXT, &l))
    return;
  wh_eval_params p = test_params();
  p.n_ctx = 128;
  p.max_chunks = 6;
  progress_log log = {0};
  p.progress = on_progress;
  p.should_continue = on_continue;
  p.user_data = &log;
  wh_eval_result r;
  g_autoptr(GError) error = NULL;
  g_assert_true(wh_eval_perplexity(l.model, toks(&l), l.ids->len, l.bos, &p, &r, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(r.n_chunks, ==, 6);
  g_assert_cmpuint(r.n_scored, ==, 6 * 63);
  g_assert_true(r.ppl > 1.0 && r.ppl < 10.0 && r.ppl_err > 0.0);
  g_assert_false(r.has_kld);
  g_assert_cmpuint(log.calls, ==, 6);
  g_assert_cmpuint(log.n_chunks, ==, 6);
  unload(&l);
}

static void
test_perplexity_errors(void)
{
  loaded l;
  if (!load(STORIES, EVAL_TXT, &l))
    return;
  wh_eval_params p = test_params();
  wh_eval_result r;
  g_autoptr(GError) error = NULL;
  /* too little text for one chunk */
  p.n_ctx = 128;
  g_assert_false(wh_eval_perplexity(l.model, toks(&l), 100, l.bos, &p, &r, &error));
  g_assert_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_INPUT);
  g_clear_error(&error);
  /* cancelled after two chunks while saving logits: nothing is left on disk */
  g_autofree char *dir = wh_test_make_tmpdir();
  g_autofree char *path = g_build_filename(dir, "cancelled.logits", NULL);
  progress_log log = {.stop_after = 2};
  p.progress = on_progress;
  p.should_continue = on_continue;
  p.user_data = &log;
  p.save_logits_path = path;
  g_assert_false(wh_eval_perplexity(l.model, toks(&l), l.ids->len, l.bos, &p, &r, &error));
  g_assert_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_CANCELLED);
  g_assert_cmpuint(log.last_done, ==, 2);
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  g_assert_null(g_dir_read_name(d));
  wh_test_rmdir_r(dir);
  unload(&l);
}

/* Runs the first @n_chunks chunks and saves the logits to @path. */
static wh_eval_result
save_logits(const loaded *l, guint32 n_ctx, guint32 n_chunks, const char *path)
{
  wh_eval_params p = test_params();
  p.n_ctx = n_ctx;
  p.max_chunks = n_chunks;
  p.save_logits_path = path;
  wh_eval_result r;
  g_autoptr(GError) error = NULL;
  g_assert_true(wh_eval_perplexity(l->model, toks(l), l->ids->len, l->bos, &p, &r, &error));
  g_assert_no_error(error);
  return r;
}

/* A model against its own saved logits: KLD ~ 0, same top token, the same perplexity. */
static void
test_kld_self(void)
{
  loaded l;
  if (!load(STORIES, EVAL_TXT, &l))
    return;
  g_autofree char *dir = wh_test_make_tmpdir();
  g_autofree char *path = g_build_filename(dir, "base.logits", NULL);
  const wh_eval_result saved = save_logits(&l, 128, 8, path);
  /* the file: header, tokens, rows; no temporary left behind */
  GStatBuf sb;
  g_assert_cmpint(g_stat(path, &sb), ==, 0);
  g_assert_cmpuint(sb.st_size, ==, 32 + 8 * 128 * 4 + (guint64)8 * 63 * 512 * 2);
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  g_assert_cmpstr(g_dir_read_name(d), ==, "base.logits");
  g_assert_null(g_dir_read_name(d));

  g_autoptr(GError) error = NULL;
  wh_eval_logits *base = wh_eval_logits_open(path, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(wh_eval_logits_n_vocab(base), ==, 512);
  g_assert_cmpuint(wh_eval_logits_n_ctx(base), ==, 128);
  g_assert_cmpuint(wh_eval_logits_n_chunks(base), ==, 8);
  g_assert_cmpuint(wh_eval_logits_rows_per_chunk(base), ==, 63);
  g_assert_cmpmem(wh_eval_logits_tokens(base), 8 * 128 * 4, toks(&l), 8 * 128 * 4);

  wh_eval_params p = test_params();
  p.base = base; /* n_ctx taken from the file; the text is longer than the base: 8 chunks */
  wh_eval_result r;
  g_assert_true(wh_eval_perplexity(l.model, toks(&l), l.ids->len, l.bos, &p, &r, &error));
  g_assert_no_error(error);
  g_test_message("self: KLD %.3g +/- %.3g, max %.3g, same top %.4f, PPL %.4f vs base %.4f",
                 r.kld_mean, r.kld_err, r.kld_percentile[WH_EVAL_KLD_MAX], r.same_top, r.ppl,
                 r.base_ppl);
  g_assert_true(r.has_kld);
  g_assert_cmpuint(r.n_chunks, ==, 8);
  g_assert_cmpfloat(fabs(r.kld_mean), <, 1e-5);
  g_assert_cmpfloat(r.kld_percentile[WH_EVAL_KLD_MAX], <, 1e-4);
  g_assert_cmpfloat(r.same_top, >=, 0.995);
  g_assert_cmpfloat(fabs(r.dp_mean), <, 1e-4);
  g_assert_cmpfloat(r.dp_rms, <, 1e-3);
  g_assert_cmpfloat_with_epsilon(r.ppl, saved.ppl, 1e-9);
  g_assert_cmpfloat_with_epsilon(r.base_ppl, r.ppl, 1e-3 * r.ppl);
  /* percentiles are ordered */
  for (int k = 1; k < WH_EVAL_KLD_N_LEVELS; k++)
    g_assert_cmpfloat(r.kld_percentile[k], <=, r.kld_percentile[k - 1]);

  /* a different chunk size or text is refused */
  p.n_ctx = 64;
  g_assert_false(wh_eval_perplexity(l.model, toks(&l), l.ids->len, l.bos, &p, &r, &error));
  g_assert_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_MISMATCH);
  g_clear_error(&error);
  p.n_ctx = 0;
  g_assert_false(wh_eval_perplexity(l.model, toks(&l) + 1, l.ids->len - 1, l.bos, &p, &r, &error));
  g_assert_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_MISMATCH);
  g_clear_error(&error);

  wh_eval_logits_free(base);
  wh_test_rmdir_r(dir);
  unload(&l);
}

/* log-softmax of @n logits, in double. */
static void
log_softmax(const float *v, guint32 n, double *out)
{
  double mx = v[0], s = 0.0;
  for (guint32 i = 1; i < n; i++)
    mx = MAX(mx, v[i]);
  for (guint32 i = 0; i < n; i++)
    s += exp(v[i] - mx);
  for (guint32 i = 0; i < n; i++)
    out[i] = v[i] - mx - log(s);
}

/* Q4_0 against the F32 base: KLD > 0, and the mean over the first chunk equals a direct
 * computation from both models' exact logits. */
static void
test_kld_quantized(void)
{
  loaded f32, q;
  if (!load(STORIES, EVAL_TXT, &f32))
    return;
  if (!load(STORIES_Q4_0, EVAL_TXT, &q)) {
    unload(&f32);
    return;
  }
  g_assert_cmpmem(toks(&f32), f32.ids->len * 4, toks(&q), q.ids->len * 4);
  g_autofree char *dir = wh_test_make_tmpdir();
  g_autofree char *path = g_build_filename(dir, "f32.logits", NULL);
  const guint32 N = 128, V = 512, C = 3;
  save_logits(&f32, N, C, path);
  g_autoptr(GError) error = NULL;
  wh_eval_logits *base = wh_eval_logits_open(path, &error);
  g_assert_no_error(error);
  wh_eval_params p = test_params();
  p.base = base;
  wh_eval_result r;
  g_assert_true(wh_eval_perplexity(q.model, toks(&q), q.ids->len, q.bos, &p, &r, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(r.n_scored, ==, C * 63);

  /* direct: fresh context per chunk, BOS first, KL(f32 || q4_0) over rows 64..126 */
  wh_context_params cp = wh_context_default_params();
  cp.n_ctx = cp.n_batch = N;
  cp.n_threads = 1;
  wh_context *cf = wh_context_new(f32.model, &cp, &error);
  g_assert_no_error(error);
  wh_context *cq = wh_context_new(q.model, &cp, &error);
  g_assert_no_error(error);
  double *lf = g_new(double, V), *lq = g_new(double, V), sum = 0.0, mx = 0.0, dp = 0.0;
  float *stored = g_new(float, V);
  gint32 chunk[128];
  for (guint32 c = 0; c < C; c++) {
    memcpy(chunk, toks(&f32) + c * N, sizeof chunk);
    chunk[0] = f32.bos;
    const float *a = wh_context_decode(cf, chunk, N, TRUE, &error);
    g_assert_no_error(error);
    float *fa = g_memdup2(a, (gsize)N * V * sizeof(float));
    const float *b = wh_context_decode(cq, chunk, N, TRUE, &error);
    g_assert_no_error(error);
    for (guint32 j = N / 2; j + 1 < N; j++) {
      log_softmax(fa + j * V, V, lf);
      log_softmax(b + j * V, V, lq);
      double kl = 0.0;
      for (guint32 i = 0; i < V; i++)
        kl += exp(lf[i]) * (lf[i] - lq[i]);
      sum += kl;
      mx = MAX(mx, kl);
      const gint32 next = toks(&f32)[c * N + j + 1];
      dp += exp(lq[next]) - exp(lf[next]);
      /* the stored row is the F32 log-softmax to half precision */
      wh_eval_logits_get_row(base, c, j - N / 2, stored);
      for (guint32 i = 0; i < V; i++)
        g_assert_cmpfloat(fabs(stored[i] - lf[i]), <=, 1e-3 * fabs(lf[i]) + 1e-6);
    }
    wh_context_clear(cf);
    wh_context_clear(cq);
    g_free(fa);
  }
  const double direct = sum / (C * 63);
  g_test_message("Q4_0 vs F32: KLD %.6f (direct %.6f), max %.5f (direct %.5f), same top %.3f",
                 r.kld_mean, direct, r.kld_percentile[WH_EVAL_KLD_MAX], mx, r.same_top);
  g_assert_cmpfloat(r.kld_mean, >, 1e-4);
  g_assert_cmpfloat(fabs(r.kld_mean - direct), <, 0.01 * direct);
  g_assert_cmpfloat(fabs(r.kld_percentile[WH_EVAL_KLD_MAX] - mx), <, 0.01 * mx);
  g_test_message("mean dp %.5f (direct %.5f)", r.dp_mean, dp / (C * 63));
  g_assert_cmpfloat(fabs(r.dp_mean - dp / (C * 63)), <, 1e-5);
  g_assert_cmpfloat(r.dp_rms, >, fabs(r.dp_mean));
  g_assert_cmpfloat(r.same_top, <, 1.0);
  g_assert_cmpfloat(r.same_top, >, 0.5);
  g_free(lf);
  g_free(lq);
  g_free(stored);
  wh_context_free(cf);
  wh_context_free(cq);
  wh_eval_logits_free(base);
  wh_test_rmdir_r(dir);
  unload(&f32);
  unload(&q);
}

/* Every damaged variant of a valid file is refused with a format error. */
static void
test_logits_format(void)
{
  loaded l;
  if (!load(STORIES, EVAL_TXT, &l))
    return;
  g_autofree char *dir = wh_test_make_tmpdir();
  g_autofree char *path = g_build_filename(dir, "base.logits", NULL);
  save_logits(&l, 16, 2, path);
  g_autofree guint8 *data = NULL;
  gsize size = 0;
  g_autoptr(GError) error = NULL;
  g_assert_true(g_file_get_contents(path, (char **)&data, &size, &error));
  g_assert_cmpuint(size, ==, 32 + 2 * 16 * 4 + 2 * 7 * 512 * 2);
  struct {
    const char *what;
    gsize offset; /* byte to change, or the new size when truncating */
    guint8 value;
    gboolean truncate;
    const char *expect; /* in the message */
  } cases[] = {
      {"magic", 0, 'X', FALSE, "WHLOGITS"},
      {"version", 8, 2, FALSE, "version 2"},
      {"n_vocab", 13, 0, FALSE, "n_vocab 0"}, /* 512 -> 0 */
      {"n_ctx", 16, 2, FALSE, "n_ctx 2"},     /* 16 -> 2 */
      {"n_chunks", 20, 3, FALSE, "different size"},
      {"encoding", 24, 7, FALSE, "encoding 7"},
      {"token id", 32 + 3, 0x7f, FALSE, "outside the vocabulary"},
      {"NaN log-prob", 32 + 2 * 16 * 4 + 101, 0x7e, FALSE, "NaN"},
      {"truncated", 100, 0, TRUE, "different size"},
      {"short header", 20, 0, TRUE, "header"},
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    guint8 *copy = g_memdup2(data, size);
    gsize n = size;
    if (cases[i].truncate)
      n = cases[i].offset;
    else
      copy[cases[i].offset] = cases[i].value;
    GBytes *b = g_bytes_new_take(copy, n);
    wh_eval_logits *bad = wh_eval_logits_new_from_bytes(b, cases[i].what, &error);
    g_test_message("%s: %s", cases[i].what, error ? error->message : "(accepted)");
    g_assert_null(bad);
    g_assert_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_FORMAT);
    g_assert_nonnull(strstr(error->message, cases[i].expect));
    g_clear_error(&error);
    g_bytes_unref(b);
  }
  g_assert_null(wh_eval_logits_open("/nonexistent/x.logits", &error));
  g_assert_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_IO);
  g_clear_error(&error);
  /* an unwritable target leaves nothing behind and says so */
  wh_eval_params p = test_params();
  p.n_ctx = 16;
  p.max_chunks = 1;
  p.save_logits_path = "/nonexistent/dir/x.logits";
  g_assert_false(wh_eval_perplexity(l.model, toks(&l), l.ids->len, l.bos, &p, NULL, &error));
  g_assert_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_IO);
  wh_test_rmdir_r(dir);
  unload(&l);
}

/* A few chunks of synth-llama-F16: the reference's tensor set, exact counts, shared inputs
 * giving identical sums, output.weight on request, and already close to the reference's. */
static void
test_imatrix_quick(void)
{
  imatrix_run run;
  if (!imatrix_run_start(&run, 4, TRUE))
    return;
  g_assert_cmpuint(run.r.n_chunks, ==, 4);
  /* the reference's entries plus output.weight */
  g_assert_cmpuint(wh_imatrix_n_entries(run.ours), ==, wh_imatrix_n_entries(run.ref) + 1);
  /* 4 of 178 chunks: 0.93 measured; the full run is > 0.999 */
  g_assert_cmpfloat(imatrix_run_compare(&run, 4 * 128), >, 0.9);
  const wh_imatrix_entry *out = wh_imatrix_find(run.ours, "output.weight");
  g_assert_nonnull(out);
  g_assert_cmpuint(out->n_cols, ==, 256);
  g_assert_cmpfloat(out->counts[0], ==, 4 * 128);
  /* q, k and v read the same normed input: identical sums; the FFN input differs */
  const wh_imatrix_entry *q = wh_imatrix_find(run.ours, "blk.2.attn_q.weight");
  const wh_imatrix_entry *k = wh_imatrix_find(run.ours, "blk.2.attn_k.weight");
  const wh_imatrix_entry *v = wh_imatrix_find(run.ours, "blk.2.attn_v.weight");
  const wh_imatrix_entry *up = wh_imatrix_find(run.ours, "blk.2.ffn_up.weight");
  g_assert_cmpmem(q->in_sum2, 256 * 4, k->in_sum2, 256 * 4);
  g_assert_cmpmem(q->in_sum2, 256 * 4, v->in_sum2, 256 * 4);
  g_assert_true(memcmp(q->in_sum2, up->in_sum2, 256 * 4) != 0);
  imatrix_run_end(&run);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/eval/perplexity/progress", test_perplexity_progress);
  g_test_add_func("/eval/perplexity/errors", test_perplexity_errors);
  g_test_add_func("/eval/kld/self", test_kld_self);
  g_test_add_func("/eval/kld/quantized", test_kld_quantized);
  g_test_add_func("/eval/logits/format", test_logits_format);
  g_test_add_func("/eval/imatrix/quick", test_imatrix_quick);
  return g_test_run();
}
