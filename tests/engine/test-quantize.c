/* test-quantize.c — the file quantizer against the reference quantizations in
 * shared/reference/models: the per-tensor type plan for every reference ftype, real runs
 * (types, size, metadata and tensor bytes), and the refusals, overrides, cancel and threads. */
#include "config.h"

#include "gguf/gguf-writer.h"
#include "gguf/gguf.h"
#include "quant/quant.h"
#include "quantize/quantize.h"
#include "wh-test-util.h"

#include <glib/gstdio.h>
#include <string.h>

/* A reference file: its ftype, its source and whether it was made with the imatrix. */
typedef struct {
  char *path;
  char *source;
  gint ftype;
  gboolean imat;
} ref_file;

static void
ref_file_clear(gpointer p)
{
  ref_file *r = p;
  g_free(r->path);
  g_free(r->source);
}

/* Every quantized reference model, with the F16/F32 file it was made from. */
static GArray *
reference_files(void)
{
  GArray *refs = g_array_new(FALSE, TRUE, sizeof(ref_file));
  g_array_set_clear_func(refs, ref_file_clear);
  char *dir = wh_test_shared_path("reference/models");
  GDir *d = g_dir_open(dir, 0, NULL);
  if (d == NULL) {
    g_free(dir);
    return refs;
  }
  const char *name;
  while ((name = g_dir_read_name(d))) {
    const char *prefix = NULL, *source = NULL;
    if (g_str_has_prefix(name, "synth-llama-")) {
      prefix = "synth-llama-";
      source = "reference/models/synth-llama-F16.gguf";
    } else if (g_str_has_prefix(name, "stories260K-")) {
      prefix = "stories260K-";
      source = "models/stories260K.gguf";
    } else {
      continue;
    }
    char *tag = g_strndup(name + strlen(prefix), strlen(name) - strlen(prefix) - 5);
    gboolean imat = g_str_has_suffix(tag, "-imat");
    if (imat)
      tag[strlen(tag) - 5] = 0;
    gint ftype = wh_ftype_from_name(tag);
    g_assert_cmpint(ftype, >=, 0);
    if (ftype != 1) { /* not the F16 source itself */
      ref_file r = {g_build_filename(dir, name, NULL), wh_test_shared_path(source), ftype, imat};
      g_array_append_val(refs, r);
    }
    g_free(tag);
  }
  g_dir_close(d);
  g_free(dir);
  return refs;
}

static wh_quantize_params
params_for(const ref_file *r, char **imatrix_path)
{
  wh_quantize_params p = wh_quantize_default_params();
  p.ftype = r->ftype;
  *imatrix_path = r->imat ? wh_test_shared_path("reference/synth-llama.imatrix.gguf") : NULL;
  p.imatrix_path = *imatrix_path;
  p.n_threads = 2;
  return p;
}

static double
rel_diff(guint64 a, guint64 b)
{
  return (a > b ? (double)(a - b) : (double)(b - a)) / (double)b;
}

/* The plan gives the reference's type for every tensor, and its size within 0.1%. */
static void
test_plans(void)
{
  GArray *refs = reference_files();
  if (refs->len == 0) {
    g_test_skip("shared reference models missing");
    g_array_unref(refs);
    return;
  }
  g_assert_cmpuint(refs->len, >=, 25);
  for (guint k = 0; k < refs->len; k++) {
    const ref_file *r = &g_array_index(refs, ref_file, k);
    char *imatrix = NULL;
    wh_quantize_params p = params_for(r, &imatrix);
    GError *error = NULL;
    wh_quantize_plan *plan = wh_quantize_plan_new(r->source, &p, &error);
    g_assert_no_error(error);
    wh_gguf *ref = wh_gguf_open(r->path, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(wh_quantize_plan_n_tensors(plan), ==, wh_gguf_n_tensors(ref));
    guint n_diff = 0;
    for (guint64 i = 0; i < wh_gguf_n_tensors(ref); i++) {
      const wh_gguf_tensor *rt = wh_gguf_get_tensor(ref, i);
      const wh_quantize_tensor_plan *tp = wh_quantize_plan_get(plan, i);
      g_assert_cmpstr(tp->name, ==, rt->name);
      if (tp->dst_type != rt->type) {
        g_test_message("%s: %s is %s, planned %s", r->path, rt->name, wh_type_name(rt->type),
                       wh_type_name(tp->dst_type));
        n_diff++;
      }
      g_assert_cmpuint(tp->dst_bytes, ==, tp->dst_type == rt->type ? rt->n_bytes : tp->dst_bytes);
    }
    g_assert_cmpuint(n_diff, ==, 0);
    guint64 ref_size = wh_gguf_total_size(ref);
    g_assert_cmpfloat(rel_diff(wh_quantize_plan_file_size(plan), ref_size), <=, 0.001);
    wh_gguf_close(ref);
    wh_quantize_plan_free(plan);
    g_free(imatrix);
  }
  g_array_unref(refs);
}

/* Types whose quantizer block-formats.md section 5 specifies exactly: our bytes must be the
 * reference's. */
static gboolean
byte_exact_type(wh_type t)
{
  switch (t) {
  case WH_TYPE_F32:
  case WH_TYPE_F16:
  case WH_TYPE_BF16:
  case WH_TYPE_Q4_0:
  case WH_TYPE_Q4_1:
  case WH_TYPE_Q5_0:
  case WH_TYPE_Q5_1:
  case WH_TYPE_Q8_0:
  case WH_TYPE_Q2_K:
  case WH_TYPE_Q3_K:
  case WH_TYPE_Q4_K:
  case WH_TYPE_Q5_K:
  case WH_TYPE_Q6_K:
  case WH_TYPE_IQ4_NL:
  case WH_TYPE_IQ4_XS:
    return TRUE;
  default:
    return FALSE;
  }
}

/* Real runs: same types, size within 0.1%, same metadata, identical bytes where the quantizer
 * is specified exactly. Files needing a quantizer this build lacks must be refused before any
 * file is created. The IQ ftypes (slow grid searches) only run with -m slow. */
static void
test_quantize_reference(void)
{
  GArray *refs = reference_files();
  if (refs->len == 0) {
    g_test_skip("shared reference models missing");
    g_array_unref(refs);
    return;
  }
  char *tmp = wh_test_make_tmpdir();
  char *out = g_build_filename(tmp, "out.gguf", NULL);
  guint n_run = 0;
  for (guint k = 0; k < refs->len; k++) {
    const ref_file *r = &g_array_index(refs, ref_file, k);
    char *imatrix = NULL;
    wh_quantize_params p = params_for(r, &imatrix);
    GError *error = NULL;
    /* the grid i-quant ftypes take seconds each: only with -m slow */
    const char *fname = wh_ftype_name((guint32)r->ftype);
    if (g_str_has_prefix(fname, "IQ") && !g_test_slow()) {
      g_free(imatrix);
      continue;
    }
    wh_gguf *ref = wh_gguf_open(r->path, &error);
    g_assert_no_error(error);
    gboolean supported = TRUE;
    for (guint64 i = 0; i < wh_gguf_n_tensors(ref); i++) {
      wh_type t = wh_gguf_get_tensor(ref, i)->type;
      supported &= t == WH_TYPE_F32 || wh_quant_type_can_quantize(t);
    }
    if (!supported) {
      /* the refusal comes before any file is created */
      g_assert_false(wh_quantize_file(r->source, out, &p, NULL, &error));
      g_assert_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_UNSUPPORTED);
      g_test_message("%s: skipped (%s)", r->path, error->message);
      g_clear_error(&error);
      g_assert_false(g_file_test(out, G_FILE_TEST_EXISTS));
      wh_gguf_close(ref);
      g_free(imatrix);
      continue;
    }
    wh_quantize_result res;
    gint64 t0 = g_get_monotonic_time();
    g_assert_true(wh_quantize_file(r->source, out, &p, &res, &error));
    g_test_message("%s: %.2f s", r->path, (g_get_monotonic_time() - t0) / 1e6);
    g_assert_no_error(error);
    n_run++;
    wh_gguf *q = wh_gguf_open(out, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(res.output_size, ==, wh_gguf_total_size(q));
    g_assert_cmpfloat(rel_diff(wh_gguf_total_size(q), wh_gguf_total_size(ref)), <=, 0.001);
    /* metadata: same keys in the same order, same values (but the imatrix path) */
    g_assert_cmpuint(wh_gguf_n_kv(q), ==, wh_gguf_n_kv(ref));
    for (guint64 i = 0; i < wh_gguf_n_kv(ref); i++) {
      g_assert_cmpstr(wh_gguf_kv_key(q, i), ==, wh_gguf_kv_key(ref, i));
      if (strcmp(wh_gguf_kv_key(ref, i), "quantize.imatrix.file") == 0)
        continue;
      gsize la, lb;
      const guint8 *a = wh_gguf_value_get_raw(wh_gguf_kv_value(q, i), &la);
      const guint8 *b = wh_gguf_value_get_raw(wh_gguf_kv_value(ref, i), &lb);
      g_assert_cmpint(wh_gguf_kv_type(q, i), ==, wh_gguf_kv_type(ref, i));
      g_assert_cmpmem(a, la, b, lb);
    }
    guint n_same = 0, n_exact = 0;
    for (guint64 i = 0; i < wh_gguf_n_tensors(ref); i++) {
      const wh_gguf_tensor *rt = wh_gguf_get_tensor(ref, i);
      const wh_gguf_tensor *qt = wh_gguf_get_tensor(q, i);
      g_assert_cmpstr(qt->name, ==, rt->name);
      g_assert_cmpint(qt->type, ==, rt->type);
      g_assert_cmpuint(qt->n_bytes, ==, rt->n_bytes);
      gboolean same = memcmp(qt->data, rt->data, rt->n_bytes) == 0;
      n_same += same;
      if (byte_exact_type(rt->type)) {
        n_exact++;
        if (!same)
          g_test_message("%s: %s (%s) differs from the reference", r->path, rt->name,
                         wh_type_name(rt->type));
        g_assert_true(same);
      }
    }
    g_test_message("%s: %u of %" G_GUINT64_FORMAT " tensors byte-identical (%u checked)", r->path,
                   n_same, wh_gguf_n_tensors(ref), n_exact);
    wh_gguf_close(q);
    wh_gguf_close(ref);
    g_unlink(out);
    g_free(imatrix);
  }
  g_assert_cmpuint(n_run, >=, g_test_slow() ? 25 : 16);
  wh_test_rmdir_r(tmp);
  g_free(out);
  g_free(tmp);
  g_array_unref(refs);
}

static void
test_refusals(void)
{
  char *src = wh_test_shared_file_or_skip("reference/models/synth-llama-F16.gguf");
  char *q8 = wh_test_shared_file_or_skip("reference/models/synth-llama-Q8_0.gguf");
  if (!src || !q8)
    return;
  char *tmp = wh_test_make_tmpdir();
  char *out = g_build_filename(tmp, "out.gguf", NULL);
  GError *error = NULL;
  wh_quantize_params p = wh_quantize_default_params();

  /* low-bit ftypes without an importance matrix */
  const char *low[] = {"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "Q2_K_S"};
  for (guint i = 0; i < G_N_ELEMENTS(low); i++) {
    p.ftype = wh_ftype_from_name(low[i]);
    g_assert_false(wh_quantize_file(src, out, &p, NULL, &error));
    g_assert_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_NEEDS_IMATRIX);
    g_assert_nonnull(strstr(error->message, low[i]));
    g_assert_nonnull(strstr(error->message, "--imatrix"));
    g_clear_error(&error);
  }
  /* requantizing */
  p = wh_quantize_default_params();
  p.ftype = wh_ftype_from_name("Q4_0");
  g_assert_false(wh_quantize_file(q8, out, &p, NULL, &error));
  g_assert_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_REQUANTIZE);
  g_assert_nonnull(strstr(error->message, "--allow-requantize"));
  g_clear_error(&error);
  p.allow_requantize = TRUE;
  p.dry_run = TRUE;
  wh_quantize_result res;
  g_assert_true(wh_quantize_file(q8, out, &p, &res, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(res.n_converted, >, 0);
  /* the same type stays as it is without requantizing */
  p.allow_requantize = FALSE;
  p.ftype = wh_ftype_from_name("Q8_0");
  g_assert_true(wh_quantize_file(q8, out, &p, &res, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(res.n_converted, ==, 0); /* every tensor already has its planned type */
  /* bad parameters */
  p = wh_quantize_default_params();
  p.ftype = 4;
  g_assert_false(wh_quantize_file(src, out, &p, NULL, &error));
  g_assert_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_INVALID);
  g_clear_error(&error);
  p.ftype = wh_ftype_from_name("Q4_0");
  const char *bad[] = {"attn_v=Q9_9", NULL};
  p.tensor_types = bad;
  g_assert_false(wh_quantize_file(src, out, &p, NULL, &error));
  g_assert_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_INVALID);
  g_clear_error(&error);
  const char *bad_re[] = {"attn_(v=Q8_0", NULL};
  p.tensor_types = bad_re;
  g_assert_false(wh_quantize_file(src, out, &p, NULL, &error));
  g_assert_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_INVALID);
  g_clear_error(&error);
  /* a type without a quantizer in this build is refused before the file is created */
  if (!wh_quant_type_can_quantize(WH_TYPE_NVFP4)) {
    const char *nv[] = {"attn_q=NVFP4", NULL};
    p.tensor_types = nv;
    wh_quantize_plan *plan = wh_quantize_plan_new(src, &p, &error); /* planning is fine */
    g_assert_no_error(error);
    g_assert_false(wh_quantize_plan_execute(plan, out, &p, &error));
    g_assert_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_UNSUPPORTED);
    g_assert_nonnull(strstr(error->message, "NVFP4"));
    g_clear_error(&error);
    wh_quantize_plan_free(plan);
  }
  /* an imatrix for another model */
  p = wh_quantize_default_params();
  p.ftype = wh_ftype_from_name("Q4_K_M");
  char *imat = wh_test_shared_path("reference/synth-llama.imatrix.gguf");
  p.imatrix_path = imat;
  char *stories = wh_test_shared_path("models/stories260K.gguf");
  g_assert_false(wh_quantize_file(stories, out, &p, NULL, &error));
  g_assert_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_IMATRIX);
  g_assert_nonnull(strstr(error->message, "another model"));
  g_clear_error(&error);
  g_free(stories);
  g_free(imat);
  /* nothing was written by any of these */
  GDir *d = g_dir_open(tmp, 0, NULL);
  g_assert_null(g_dir_read_name(d));
  g_dir_close(d);
  wh_test_rmdir_r(tmp);
  g_free(out);
  g_free(tmp);
  g_free(src);
  g_free(q8);
}

static void
test_overrides(void)
{
  char *src = wh_test_shared_file_or_skip("reference/models/synth-llama-F16.gguf");
  if (!src)
    return;
  GError *error = NULL;
  wh_quantize_params p = wh_quantize_default_params();
  p.ftype = wh_ftype_from_name("Q4_K_M");
  p.pure = TRUE;
  wh_quantize_plan *plan = wh_quantize_plan_new(src, &p, &error);
  g_assert_no_error(error);
  for (guint64 i = 0; i < wh_quantize_plan_n_tensors(plan); i++) {
    const wh_quantize_tensor_plan *tp = wh_quantize_plan_get(plan, i);
    if (tp->n_dims == 1)
      g_assert_false(tp->converted); /* norms keep F32 */
    else if (strcmp(tp->name, "output.weight") == 0)
      g_assert_cmpint(tp->dst_type, ==, WH_TYPE_Q6_K); /* rule 1 still applies */
    else
      g_assert_cmpint(tp->dst_type, ==, WH_TYPE_Q4_K);
  }
  wh_quantize_plan_free(plan);

  const char *pats[] = {"attn_v=Q8_0", "blk\\.[01]\\.ffn_down=q5_k", "ffn_down=IQ4_NL", NULL};
  p = wh_quantize_default_params();
  p.ftype = wh_ftype_from_name("Q4_K_M");
  p.tensor_types = pats;
  p.output_type = WH_TYPE_Q8_0;
  p.token_embd_type = WH_TYPE_F16;
  plan = wh_quantize_plan_new(src, &p, &error);
  g_assert_no_error(error);
  for (guint64 i = 0; i < wh_quantize_plan_n_tensors(plan); i++) {
    const wh_quantize_tensor_plan *tp = wh_quantize_plan_get(plan, i);
    if (strstr(tp->name, "attn_v"))
      g_assert_cmpint(tp->dst_type, ==, WH_TYPE_Q8_0);
    else if (g_str_has_prefix(tp->name, "blk.0.ffn_down") ||
             g_str_has_prefix(tp->name, "blk.1.ffn_down"))
      g_assert_cmpint(tp->dst_type, ==, WH_TYPE_Q5_K);
    else if (strstr(tp->name, "ffn_down"))
      g_assert_cmpint(tp->dst_type, ==, WH_TYPE_IQ4_NL);
    else if (strcmp(tp->name, "output.weight") == 0)
      g_assert_cmpint(tp->dst_type, ==, WH_TYPE_Q8_0);
    else if (strcmp(tp->name, "token_embd.weight") == 0) {
      g_assert_cmpint(tp->dst_type, ==, WH_TYPE_F16);
      g_assert_false(tp->converted);
    }
  }
  wh_quantize_plan_free(plan);

  /* shape fallbacks: stories260K has 64-wide and 172-wide rows */
  char *stories = wh_test_shared_file_or_skip("models/stories260K.gguf");
  p = wh_quantize_default_params();
  p.ftype = wh_ftype_from_name("Q4_K_M");
  plan = wh_quantize_plan_new(stories, &p, &error);
  g_assert_no_error(error);
  guint n_fb = 0;
  for (guint64 i = 0; i < wh_quantize_plan_n_tensors(plan); i++) {
    const wh_quantize_tensor_plan *tp = wh_quantize_plan_get(plan, i);
    if (!tp->converted)
      continue;
    n_fb += tp->fell_back;
    if (tp->ne[0] == 172)
      g_assert_cmpint(tp->dst_type, ==, WH_TYPE_F16); /* no block size divides 172 */
    else if (tp->wanted_type == WH_TYPE_Q4_K)
      g_assert_cmpint(tp->dst_type, ==, WH_TYPE_Q5_0);
    else if (tp->wanted_type == WH_TYPE_Q6_K)
      g_assert_cmpint(tp->dst_type, ==, WH_TYPE_Q8_0);
  }
  g_assert_cmpuint(n_fb, ==, wh_quantize_plan_n_fallbacks(plan));
  /* every 2-D tensor but output.weight, which rule 1 sends to Q8_0 directly (its row is not
   * a multiple of the Q4_K block) */
  g_assert_cmpuint(n_fb, ==, 48 - 11 - 1);
  wh_quantize_plan_free(plan);
  g_free(stories);
  g_free(src);
}

typedef struct {
  guint64 last_done;
  guint64 total;
  guint calls;
  guint abort_after;
} progress_state;

static void
on_progress(const wh_quantize_progress *pr, gpointer data)
{
  progress_state *s = data;
  g_assert_cmpuint(pr->bytes_done, >=, s->last_done);
  g_assert_cmpuint(pr->bytes_done, <=, pr->bytes_total);
  g_assert_cmpuint(pr->tensor_index, <, pr->n_tensors);
  g_assert_nonnull(pr->tensor_name);
  s->last_done = pr->bytes_done;
  s->total = pr->bytes_total;
  s->calls++;
}

static gboolean
on_abort(gpointer data)
{
  progress_state *s = data;
  return s->abort_after && s->calls >= s->abort_after;
}

static void
test_progress_cancel_threads(void)
{
  char *src = wh_test_shared_file_or_skip("reference/models/synth-llama-F16.gguf");
  if (!src)
    return;
  char *tmp = wh_test_make_tmpdir();
  char *out1 = g_build_filename(tmp, "t1.gguf", NULL);
  char *out2 = g_build_filename(tmp, "t2.gguf", NULL);
  GError *error = NULL;
  progress_state s = {0};
  wh_quantize_params p = wh_quantize_default_params();
  p.ftype = wh_ftype_from_name("Q8_0");
  p.progress = on_progress;
  p.abort = on_abort;
  p.user_data = &s;
  p.n_threads = 1;
  g_assert_true(wh_quantize_file(src, out1, &p, NULL, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(s.calls, >=, 39);
  g_assert_cmpuint(s.last_done, ==, s.total);
  p.n_threads = 3;
  memset(&s, 0, sizeof s);
  g_assert_true(wh_quantize_file(src, out2, &p, NULL, &error));
  GBytes *a = NULL, *b = NULL;
  char *da, *db;
  gsize la, lb;
  g_assert_true(g_file_get_contents(out1, &da, &la, NULL));
  g_assert_true(g_file_get_contents(out2, &db, &lb, NULL));
  a = g_bytes_new_take(da, la);
  b = g_bytes_new_take(db, lb);
  g_assert_true(g_bytes_equal(a, b)); /* thread count does not change a byte */
  g_bytes_unref(a);
  g_bytes_unref(b);

  /* cancel in the middle: error, no output, no temporary */
  g_unlink(out2);
  memset(&s, 0, sizeof s);
  s.abort_after = 10;
  g_assert_false(wh_quantize_file(src, out2, &p, NULL, &error));
  g_assert_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_CANCELLED);
  g_clear_error(&error);
  g_assert_false(g_file_test(out2, G_FILE_TEST_EXISTS));
  GDir *d = g_dir_open(tmp, 0, NULL);
  guint n = 0;
  while (g_dir_read_name(d))
    n++;
  g_dir_close(d);
  g_assert_cmpuint(n, ==, 1);

  /* dry run writes nothing */
  p.dry_run = TRUE;
  p.abort = NULL;
  wh_quantize_result res;
  g_assert_true(wh_quantize_file(src, out2, &p, &res, &error));
  g_assert_false(g_file_test(out2, G_FILE_TEST_EXISTS));
  GStatBuf st;
  g_assert_cmpint(g_stat(out1, &st), ==, 0);
  g_assert_cmpuint(res.output_size, ==, (guint64)st.st_size);
  g_assert_cmpuint(res.n_tensors, ==, 39);
  g_assert_cmpuint(res.n_converted, ==, 30);

  wh_test_rmdir_r(tmp);
  g_free(out1);
  g_free(out2);
  g_free(tmp);
  g_free(src);
}

/* A split input gives the same output as the single file (split.* keys dropped). */
static void
test_split_input(void)
{
  char *src = wh_test_shared_file_or_skip("reference/models/synth-llama-F16.gguf");
  if (!src)
    return;
  GError *error = NULL;
  wh_gguf *g = wh_gguf_open(src, &error);
  g_assert_no_error(error);
  char *tmp = wh_test_make_tmpdir();
  char *prefix = g_build_filename(tmp, "split", NULL);
  guint64 n = wh_gguf_n_tensors(g);
  for (guint s = 0; s < 2; s++) {
    wh_gguf_writer *w = wh_gguf_writer_new();
    if (s == 0)
      g_assert_true(wh_gguf_writer_copy_kvs(w, g, NULL, &error));
    wh_gguf_writer_set_uint16(w, "split.no", (guint16)s);
    wh_gguf_writer_set_uint16(w, "split.count", 2);
    wh_gguf_writer_set_int32(w, "split.tensors.count", (gint32)n);
    for (guint64 i = s * n / 2; i < (s + 1) * n / 2; i++) {
      const wh_gguf_tensor *t = wh_gguf_get_tensor(g, i);
      g_assert_true(wh_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, &error));
    }
    char *sp = wh_gguf_split_path(prefix, s, 2);
    g_assert_true(wh_gguf_writer_begin(w, sp, &error));
    for (guint64 i = s * n / 2; i < (s + 1) * n / 2; i++) {
      const wh_gguf_tensor *t = wh_gguf_get_tensor(g, i);
      g_assert_true(wh_gguf_writer_write(w, t->data, t->n_bytes, &error));
    }
    g_assert_true(wh_gguf_writer_finish(w, &error));
    wh_gguf_writer_free(w);
    g_free(sp);
  }
  wh_gguf_close(g);
  wh_quantize_params p = wh_quantize_default_params();
  p.ftype = wh_ftype_from_name("Q8_0");
  char *from_split = g_build_filename(tmp, "a.gguf", NULL);
  char *from_single = g_build_filename(tmp, "b.gguf", NULL);
  char *second = wh_gguf_split_path(prefix, 1, 2);
  g_assert_true(wh_quantize_file(second, from_split, &p, NULL, &error));
  g_assert_no_error(error);
  g_assert_true(wh_quantize_file(src, from_single, &p, NULL, &error));
  char *a, *b;
  gsize la, lb;
  g_assert_true(g_file_get_contents(from_split, &a, &la, NULL));
  g_assert_true(g_file_get_contents(from_single, &b, &lb, NULL));
  g_assert_cmpmem(a, la, b, lb);
  g_free(a);
  g_free(b);
  g_free(second);
  g_free(from_split);
  g_free(from_single);
  g_free(prefix);
  wh_test_rmdir_r(tmp);
  g_free(tmp);
  g_free(src);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/quantize/plans", test_plans);
  g_test_add_func("/quantize/reference", test_quantize_reference);
  g_test_add_func("/quantize/refusals", test_refusals);
  g_test_add_func("/quantize/overrides", test_overrides);
  g_test_add_func("/quantize/progress-cancel-threads", test_progress_cancel_threads);
  g_test_add_func("/quantize/split-input", test_split_input);
  return g_test_run();
}
