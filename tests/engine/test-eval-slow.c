/* test-eval-slow.c — our own Q8_0 / Q5_1 / Q4_0 quantizations of stories260K score no worse
 * than the reference's on eval.txt (chunks of 128 tokens): the figures in ../shared/README.md
 * are 3.5561, 3.6220 and 3.7539 (this engine gives the reference's own files 3.5554..3.5561,
 * 3.6215 and 3.7535, depending on the dot kernels' summation order). Two whole-text sweeps per
 * type, so it is in engine-slow.
 */
#include "config.h"

#include <math.h>

#include "eval/eval.h"
#include "gguf/gguf-types.h"
#include "quantize/quantize.h"
#include "tokenizer/tokenizer.h"
#include "wh-test-util.h"

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
