/* test-eval-slow.c — whole-text evaluation checks (engine-slow, skipped under the sanitizers):
 * stories260K's perplexity 3.5554 on eval.txt, the imatrix of synth-llama-F16 on all of
 * calib.txt against the reference's (cosine > 0.999, same IQ2_XS error), and our own Q8_0 / Q5_1 /
 * Q4_0 quantizations of stories260K score no worse than the reference's on eval.txt (chunks of 128
 * tokens): the figures in ../shared/README.md are 3.5561, 3.6220 and 3.7539 (this engine gives the
 * reference's own files 3.5554..3.5561, 3.6215 and 3.7535, depending on the dot kernels' summation
 * order). Two whole-text sweeps per type, so it is in engine-slow.
 */
#include "config.h"

#include "gguf/gguf-types.h"
#include "quantize/quantize.h"
#include "test-eval-util.h"

/* The reference figure for stories260K F32 on the whole text. */
static void
test_perplexity_stories(void)
{
  loaded l;
  if (!load(STORIES, EVAL_TXT, &l))
    return;
  wh_eval_params p = test_params();
  p.n_ctx = 128;
  wh_eval_result r;
  g_autoptr(GError) error = NULL;
  g_assert_true(wh_eval_perplexity(l.model, toks(&l), l.ids->len, l.bos, &p, &r, &error));
  g_assert_no_error(error);
  g_test_message("stories260K eval.txt -c 128: PPL = %.4f +/- %.5f over %u chunks", r.ppl,
                 r.ppl_err, r.n_chunks);
  g_assert_cmpuint(r.n_chunks, ==, l.ids->len / 128);
  g_assert_cmpuint(r.n_scored, ==, (guint64)r.n_chunks * 63);
  g_assert_cmpfloat_with_epsilon(r.ppl, 3.5554, 0.002);
  g_assert_true(r.ppl_err > 0.0 && r.ppl_err < 0.1);
  unload(&l);
}

/* Our imatrix of synth-llama-F16 on calib.txt against the reference's, and both driving the
 * IQ2_XS quantizer. */
static void
test_imatrix_synth(void)
{
  imatrix_run run;
  if (!imatrix_run_start(&run, 0, FALSE))
    return;
  g_assert_cmpint(wh_imatrix_chunk_count(run.ours), ==, wh_imatrix_chunk_count(run.ref));
  g_assert_cmpuint(wh_imatrix_n_entries(run.ours), ==, wh_imatrix_n_entries(run.ref));
  g_assert_cmpfloat(imatrix_run_compare(&run, wh_imatrix_get_entry(run.ref, 0)->counts[0]), >,
                    0.999);
  /* IQ2_XS of blk.1.ffn_down with each importance vector, measured with the reference's */
  const wh_gguf *g = wh_model_get_gguf(run.l.model);
  const wh_gguf_tensor *t = wh_gguf_find_tensor(g, "blk.1.ffn_down.weight");
  g_assert_nonnull(t);
  const guint64 cols = t->ne[0], rows = t->ne[1];
  float *w = g_new(float, (gsize)(cols * rows));
  for (guint64 rr = 0; rr < rows; rr++)
    wh_quant_dequantize_row(t->type, t->data + rr * wh_quant_row_bytes(t->type, (gint64)cols),
                            w + rr * cols, (gint64)cols);
  const float *qw_ref = wh_imatrix_find(run.ref, t->name)->importance;
  const float *qw_ours = wh_imatrix_find(run.ours, t->name)->importance;
  const double e_ref = weighted_error(WH_TYPE_IQ2_XS, w, rows, cols, qw_ref, qw_ref);
  const double e_ours = weighted_error(WH_TYPE_IQ2_XS, w, rows, cols, qw_ours, qw_ref);
  g_test_message("IQ2_XS %s: weighted rmse %.5f with our imatrix, %.5f with the reference's",
                 t->name, e_ours, e_ref);
  g_assert_cmpfloat(e_ours, <=, 1.01 * e_ref);
  g_free(w);

  imatrix_run_end(&run);
}

typedef struct {
  const char *ftype;
  double reference; /* ../shared/README.md */
} ppl_case;

/* Perplexity of @model_path on @text (chunks of 128). */
static double
perplexity(const char *model_path, const char *text, gsize len)
{
  g_autoptr(GError) error = NULL;
  wh_model *model = wh_model_load(model_path, NULL, &error);
  g_assert_no_error(error);
  wh_tokenizer *tok = wh_tokenizer_new_from_gguf(wh_model_get_gguf(model), &error);
  g_assert_no_error(error);
  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  g_assert_cmpint(wh_tokenizer_tokenize(tok, text, len, TRUE, FALSE, ids, &error), >=, 0);
  wh_eval_params p = wh_eval_default_params();
  p.n_ctx = 128;
  p.n_threads = 1; /* a 260K model: one thread beats barriers on a busy machine */
  wh_eval_result r;
  g_assert_true(wh_eval_perplexity(model, (const gint32 *)ids->data, ids->len,
                                   wh_tokenizer_bos(tok), &p, &r, &error));
  g_assert_no_error(error);
  wh_tokenizer_free(tok);
  wh_model_free(model);
  return r.ppl;
}

static void
test_own_quantizations(gconstpointer data)
{
  const ppl_case *c = data;
  g_autofree char *model = wh_test_shared_file_or_skip("models/stories260K.gguf");
  g_autofree char *text_path = model ? wh_test_shared_file_or_skip("reference/eval.txt") : NULL;
  if (!text_path)
    return;
  g_autofree char *text = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(text_path, &text, &len, NULL));
  g_autofree char *dir = wh_test_make_tmpdir();
  g_autofree char *name = g_strdup_printf("stories260K-%s.gguf", c->ftype);
  g_autofree char *out = g_build_filename(dir, name, NULL);
  wh_quantize_params qp = wh_quantize_default_params();
  qp.ftype = wh_ftype_from_name(c->ftype);
  qp.n_threads = 1;
  g_autoptr(GError) error = NULL;
  g_assert_true(wh_quantize_file(model, out, &qp, NULL, &error));
  g_assert_no_error(error);
  const double ppl = perplexity(out, text, len);
  /* the reference's own file of that type, through the same engine */
  g_autofree char *ref_rel = g_strdup_printf("reference/models/stories260K-%s.gguf", c->ftype);
  g_autofree char *ref_file = wh_test_shared_file_or_skip(ref_rel);
  if (!ref_file)
    return;
  const double ref_ppl = perplexity(ref_file, text, len);
  g_test_message("stories260K %s: PPL %.4f ours, %.4f the reference's file, %.4f published",
                 c->ftype, ppl, ref_ppl, c->reference);
  /* no worse than the reference's quantization under the same arithmetic */
  g_assert_cmpfloat(ppl, <=, ref_ppl + 1e-4);
  /* and no worse than the published figure, up to the engine's own distance from the
   * reference arithmetic (~5e-4 on these files; the F32 figure is reproduced within 2e-3) */
  g_assert_cmpfloat(ppl, <=, c->reference + 1e-3);
  /* a quantization, not a copy of the F32 model */
  g_assert_true(!g_str_equal(c->ftype, "Q4_0") || ppl > 3.5554 + 0.05);
  wh_test_rmdir_r(dir);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/eval-slow/perplexity/stories260K", test_perplexity_stories);
  g_test_add_func("/eval-slow/imatrix/synth-llama", test_imatrix_synth);
  static const ppl_case cases[] = {
      {"Q8_0", 3.5561},
      {"Q5_1", 3.6220},
      {"Q4_0", 3.7539},
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *path = g_strdup_printf("/eval-slow/own-quantization/%s", cases[i].ftype);
    g_test_add_data_func(path, &cases[i], test_own_quantizations);
  }
  return g_test_run();
}
