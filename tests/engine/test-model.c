/* test-model.c — the forward pass against the reference logits.
 *
 * Oracle: shared/reference/logits/<model>.logits.gguf (token ids, logits
 * after every position, greedy continuations), computed by the reference
 * implementation with a fresh context per prompt. Tolerances are those of
 * shared/README.md.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "model/cpu-attn.h"
#include "model/model-private.h"
#include "sample/sample.h"
#include "wh-test-util.h"

typedef struct {
  double max_rel; /* max over positions of max|diff| / (1 + max|ref|) */
  guint n_pos;
  guint argmax_same;
  guint argmax_bad; /* mismatches outside near-ties */
  double kld_sum;
} agreement;

/* Reads prompt @i of a logits file: token ids (newly allocated) and the
 * logits tensor. */
static gint32 *
ref_prompt(wh_gguf *ref, int i, guint32 *n_tokens, const float **logits, guint32 n_vocab)
{
  char key[64];
  g_snprintf(key, sizeof(key), "reference.prompt.%d.tokens", i);
  wh_gguf_array a;
  g_assert_true(wh_gguf_get_array(ref, key, &a));
  gint32 *tokens = g_new(gint32, a.n);
  for (guint64 j = 0; j < a.n; j++)
    tokens[j] = (gint32)wh_gguf_array_get_int(&a, j);
  *n_tokens = (guint32)a.n;
  g_snprintf(key, sizeof(key), "logits.%d", i);
  const wh_gguf_tensor *t = wh_gguf_find_tensor(ref, key);
  g_assert_nonnull(t);
  g_assert_cmpint(t->type, ==, WH_TYPE_F32);
  g_assert_cmpuint(t->ne[0], ==, n_vocab);
  g_assert_cmpuint(t->ne[1], ==, a.n);
  *logits = (const float *)t->data;
  return tokens;
}

static double
log_sum_exp(const float *v, guint32 n)
{
  double mx = v[0];
  for (guint32 i = 1; i < n; i++)
    mx = MAX(mx, v[i]);
  double s = 0;
  for (guint32 i = 0; i < n; i++)
    s += exp(v[i] - mx);
  return mx + log(s);
}

static void
compare_row(agreement *ag, const float *ref, const float *mine, guint32 V)
{
  double maxdiff = 0, maxabs = 0;
  for (guint32 j = 0; j < V; j++) {
    maxdiff = MAX(maxdiff, fabs((double)mine[j] - ref[j]));
    maxabs = MAX(maxabs, fabs((double)ref[j]));
  }
  ag->max_rel = MAX(ag->max_rel, maxdiff / (1.0 + maxabs));
  int ra = wh_sample_argmax(ref, (int)V), ma = wh_sample_argmax(mine, (int)V);
  ag->n_pos++;
  if (ra == ma) {
    ag->argmax_same++;
  } else {
    /* near-tie: the reference's two best differ by less than the bound */
    float second = -INFINITY;
    for (guint32 j = 0; j < V; j++)
      if ((int)j != ra)
        second = MAX(second, ref[j]);
    if (ref[ra] - second >= 2e-3 * (1.0 + maxabs))
      ag->argmax_bad++;
  }
  /* KL(ref || mine) over the softmax */
  double lr = log_sum_exp(ref, V), lm = log_sum_exp(mine, V), kl = 0;
  for (guint32 j = 0; j < V; j++) {
    double lp = ref[j] - lr, lq = mine[j] - lm;
    kl += exp(lp) * (lp - lq);
  }
  ag->kld_sum += kl;
}

/* Runs all four prompts of @model_rel against @logits_rel. */
static gboolean
run_reference(const char *model_rel, const char *logits_rel, wh_kv_type kv, agreement *ag)
{
  g_autofree char *mpath = wh_test_shared_file_or_skip(model_rel);
  if (!mpath)
    return FALSE;
  g_autofree char *lpath = wh_test_shared_file_or_skip(logits_rel);
  if (!lpath)
    return FALSE;
  GError *error = NULL;
  wh_model_params mp = wh_model_default_params();
  mp.n_threads = 2;
  wh_model *model = wh_model_load(mpath, &mp, &error);
  g_assert_no_error(error);
  wh_gguf *ref = wh_gguf_open(lpath, &error);
  g_assert_no_error(error);
  wh_context_params cp = wh_context_default_params();
  cp.n_ctx = 256;
  cp.n_batch = 256;
  cp.kv_type = kv;
  wh_context *ctx = wh_context_new(model, &cp, &error);
  g_assert_no_error(error);
  const guint32 V = wh_model_n_vocab(model);
  memset(ag, 0, sizeof(*ag));
  for (int i = 0; i < 4; i++) {
    guint32 n;
    const float *reflog;
    g_autofree gint32 *tokens = ref_prompt(ref, i, &n, &reflog, V);
    wh_context_clear(ctx);
    const float *out = wh_context_decode(ctx, tokens, n, TRUE, &error);
    g_assert_no_error(error);
    for (guint32 t = 0; t < n; t++)
      compare_row(ag, reflog + (gsize)t * V, out + (gsize)t * V, V);
  }
  wh_context_free(ctx);
  wh_gguf_close(ref);
  wh_model_free(model);
  return TRUE;
}

static void
test_f16_model(gconstpointer data)
{
  const char *name = data;
  g_autofree char *mrel = g_str_equal(name, "stories260K")
                              ? g_strdup("models/stories260K.gguf")
                              : g_strdup_printf("reference/models/%s.gguf", name);
  g_autofree char *lrel = g_strdup_printf("reference/logits/%s.logits.gguf", name);
  agreement ag;
  if (!run_reference(mrel, lrel, WH_KV_F16, &ag))
    return;
  g_test_message("%s: max rel diff %.3g, argmax %u/%u (bad %u), mean KLD %.3g", name, ag.max_rel,
                 ag.argmax_same, ag.n_pos, ag.argmax_bad, ag.kld_sum / ag.n_pos);
  g_assert_cmpuint(ag.n_pos, ==, 206);
  g_assert_cmpfloat(ag.max_rel, <=, 2e-3);
  g_assert_cmpuint(ag.argmax_bad, ==, 0);
}

static void
test_quant_model(gconstpointer data)
{
  const char *type = data;
  g_autofree char *mrel = g_strdup_printf("reference/models/synth-llama-%s.gguf", type);
  g_autofree char *lrel = g_strdup_printf("reference/logits/synth-llama-%s.logits.gguf", type);
  agreement ag;
  if (!run_reference(mrel, lrel, WH_KV_F16, &ag))
    return;
  double kld = ag.kld_sum / ag.n_pos, agree = (double)ag.argmax_same / ag.n_pos;
  g_test_message("synth-llama-%s: argmax agreement %.2f%%, mean KLD %.3g, max rel diff %.3g", type,
                 100 * agree, kld, ag.max_rel);
  g_assert_cmpuint(ag.n_pos, ==, 206);
  g_assert_cmpfloat(agree, >=, 0.94);
  g_assert_cmpfloat(kld, <=, 3e-3);
}

/* Greedy continuation of stories260K equals the reference's 32 tokens, for
 * all four prompts, decoding one token at a time. */
static void
test_stories_greedy(void)
{
  g_autofree char *mpath = wh_test_shared_file_or_skip("models/stories260K.gguf");
  if (!mpath)
    return;
  g_autofree char *lpath = wh_test_shared_file_or_skip("reference/logits/stories260K.logits.gguf");
  if (!lpath)
    return;
  GError *error = NULL;
  wh_model *model = wh_model_load(mpath, NULL, &error);
  g_assert_no_error(error);
  wh_gguf *ref = wh_gguf_open(lpath, &error);
  g_assert_no_error(error);
  wh_context_params cp = wh_context_default_params();
  cp.n_ctx = 256;
  cp.n_threads = 2;
  wh_context *ctx = wh_context_new(model, &cp, &error);
  g_assert_no_error(error);
  const guint32 V = wh_model_n_vocab(model);
  for (int i = 0; i < 4; i++) {
    guint32 n;
    const float *reflog;
    g_autofree gint32 *tokens = ref_prompt(ref, i, &n, &reflog, V);
    char key[64];
    g_snprintf(key, sizeof(key), "reference.prompt.%d.greedy", i);
    wh_gguf_array greedy;
    g_assert_true(wh_gguf_get_array(ref, key, &greedy));
    g_assert_cmpuint(greedy.n, ==, 32);
    wh_context_clear(ctx);
    const float *out = wh_context_decode(ctx, tokens, n, FALSE, &error);
    g_assert_no_error(error);
    for (int k = 0; k < 32; k++) {
      gint32 next = wh_sample_argmax(out, (int)V);
      g_assert_cmpint(next, ==, wh_gguf_array_get_int(&greedy, (guint64)k));
      out = wh_context_decode(ctx, &next, 1, FALSE, &error);
      g_assert_no_error(error);
    }
  }
  wh_context_free(ctx);
  wh_gguf_close(ref);
  wh_model_free(model);
}

/* Loads @rel and returns a context with @threads threads and @kv cache. */
static wh_context *
open_ctx(const char *rel, int threads, wh_kv_type kv, guint32 n_ctx, guint32 n_batch,
         wh_model **model)
{
  g_autofree char *path = wh_test_shared_file_or_skip(rel);
  if (!path)
    return NULL;
  GError *error = NULL;
  *model = wh_model_load(path, NULL, &error);
  g_assert_no_error(error);
  wh_context_params cp = wh_context_default_params();
  cp.n_ctx = n_ctx;
  cp.n_batch = n_batch;
  cp.n_threads = threads;
  cp.kv_type = kv;
  wh_context *ctx = wh_context_new(*model, &cp, &error);
  g_assert_no_error(error);
  return ctx;
}

static gint32 *
long_prompt(guint32 *n)
{
  g_autofree char *lpath =
      wh_test_shared_file_or_skip("reference/logits/synth-gemma2-F16.logits.gguf");
  if (!lpath)
    return NULL;
  GError *error = NULL;
  wh_gguf *ref = wh_gguf_open(lpath, &error);
  g_assert_no_error(error);
  const float *unused;
  gint32 *tokens = ref_prompt(ref, 3, n, &unused, 512);
  wh_gguf_close(ref);
  return tokens;
}

static void incremental_one(const char *file, int threads, wh_kv_type kv, const gint32 *tokens,
                            guint32 n);

static void
test_incremental(gconstpointer data)
{
  wh_kv_type kv = GPOINTER_TO_INT(data);
  guint32 n;
  g_autofree gint32 *tokens = long_prompt(&n);
  if (!tokens)
    return;
  /* gemma2 (F16 weights, sliding window, soft-capping) on 1 thread; llama Q4_K_M on 2 (the
   * multi-row kernels, split FFN activation and per-head RoPE of the decode path) */
  static const char *const files[] = {"reference/models/synth-gemma2-F16.gguf",
                                      "reference/models/synth-llama-Q4_K_M.gguf"};
  for (guint f = 0; f < G_N_ELEMENTS(files); f++)
    incremental_one(files[f], (int)f + 1, kv, tokens, n);
}

/* Prefill in one batch == 70-token batch then single tokens == truncate to a prefix and
 * continue, bit for bit; exercises the sliding window (167 > 64 tokens). */
static void
incremental_one(const char *file, int threads, wh_kv_type kv, const gint32 *tokens, guint32 n)
{
  wh_model *model;
  wh_context *ctx = open_ctx(file, threads, kv, 256, 256, &model);
  if (!ctx)
    return;
  GError *error = NULL;
  const guint32 V = wh_model_n_vocab(model);
  const float *out = wh_context_decode(ctx, tokens, n, TRUE, &error);
  g_assert_no_error(error);
  float *batched = g_memdup2(out, sizeof(float) * n * V);

  double maxdiff = 0;
  for (int pass = 0; pass < 2; pass++) {
    /* pass 0: a 70-token batch, then single tokens; pass 1: keep a 99-token prefix of the
     * full cache and continue from there */
    const guint32 start = pass == 0 ? 70 : 100;
    if (pass == 0)
      wh_context_clear(ctx);
    else
      wh_context_truncate(ctx, start - 1);
    out = pass == 0 ? wh_context_decode(ctx, tokens, start, FALSE, &error)
                    : wh_context_decode(ctx, tokens + start - 1, 1, FALSE, &error);
    g_assert_no_error(error);
    for (guint32 j = 0; j < V; j++)
      maxdiff = MAX(maxdiff, fabs(out[j] - batched[(gsize)(start - 1) * V + j]));
    for (guint32 t = start; t < n; t++) {
      out = wh_context_decode(ctx, tokens + t, 1, FALSE, &error);
      g_assert_no_error(error);
      for (guint32 j = 0; j < V; j++)
        maxdiff = MAX(maxdiff, fabs(out[j] - batched[(gsize)t * V + j]));
    }
    g_assert_cmpuint(wh_context_n_past(ctx), ==, n);
  }
  g_test_message("%s, kv %s: incremental vs batched max diff %.3g", file, wh_kv_type_name(kv),
                 maxdiff);
  g_assert_cmpfloat(maxdiff, ==, 0.0);
  g_free(batched);
  wh_context_free(ctx);
  wh_model_free(model);
}

/* 1 thread and 3 threads give the same logits, bit for bit, for a batch and for single-token
 * decoding: F16 weights (F32 path) and Q4_K_M (the Q4_K/Q6_K kernels, whose matmul rows
 * threads take as work items in any order). */
static void
test_threads(void)
{
  guint32 n;
  g_autofree gint32 *tokens = long_prompt(&n);
  if (!tokens)
    return;
  static const char *const files[] = {"reference/models/synth-qwen3-F16.gguf",
                                      "reference/models/synth-llama-Q4_K_M.gguf"};
  for (guint f = 0; f < G_N_ELEMENTS(files); f++) {
    float *res[2];
    const int threads[2] = {1, 3};
    wh_model *model = NULL;
    for (int k = 0; k < 2; k++) {
      wh_context *ctx = open_ctx(files[f], threads[k], WH_KV_F16, 256, 256, &model);
      if (!ctx)
        return;
      /* the prompt but its last 4 tokens as a batch, then those one at a time (the decode
       * path: 4-row kernels, attention items with their own RoPE, the split FFN activation) */
      GError *error = NULL;
      const gsize V = wh_model_n_vocab(model);
      res[k] = g_new(float, n *V);
      const float *out = wh_context_decode(ctx, tokens, n - 4, TRUE, &error);
      g_assert_no_error(error);
      memcpy(res[k], out, sizeof(float) * (n - 4) * V);
      for (guint32 i = n - 4; i < n; i++) {
        out = wh_context_decode(ctx, tokens + i, 1, TRUE, &error);
        g_assert_no_error(error);
        memcpy(res[k] + i * V, out, sizeof(float) * V);
      }
      wh_context_free(ctx);
      if (k == 0)
        wh_model_free(model);
    }
    const gsize bytes = sizeof(float) * n * wh_model_n_vocab(model);
    g_assert_cmpmem(res[0], bytes, res[1], bytes);
    g_free(res[0]);
    g_free(res[1]);
    wh_model_free(model);
  }
}

/* The memory plan is what the context allocates, component by component,
 * and it is a pure function of the hyper-parameters. */
static void
test_memory_plan(void)
{
  const wh_kv_type kvs[] = {WH_KV_F16, WH_KV_Q8_0, WH_KV_Q4_0, WH_KV_F32};
  for (gsize k = 0; k < G_N_ELEMENTS(kvs); k++) {
    wh_model *model;
    wh_context *ctx =
        open_ctx("reference/models/synth-llama-Q4_K_M.gguf", 2, kvs[k], 256, 64, &model);
    if (!ctx)
      return;
    wh_memory_plan planned, alloc, pure;
    wh_context_get_memory(ctx, &planned, &alloc);
    g_assert_true(
        wh_model_memory_plan(wh_model_get_hparams(model), wh_context_get_params(ctx), &pure, NULL));
    g_assert_cmpmem(&planned, sizeof(planned), &alloc, sizeof(alloc));
    g_assert_cmpmem(&planned, sizeof(planned), &pure, sizeof(pure));
    /* KV: 4 layers x 256 cells x (K + V) of 2 heads x 64 values */
    guint64 row = wh_kv_type_row_size(kvs[k], 128);
    g_assert_cmpuint(planned.kv_cache, ==, 4 * 256 * 2 * row);
    g_assert_cmpuint(planned.output, ==, 64 * 512 * 4);
    g_assert_cmpuint(planned.weights, >, 0);
    g_test_message("kv %s: weights %" G_GUINT64_FORMAT " kv %" G_GUINT64_FORMAT
                   " compute %" G_GUINT64_FORMAT " output %" G_GUINT64_FORMAT,
                   wh_kv_type_name(kvs[k]), planned.weights, planned.kv_cache, planned.compute,
                   planned.output);
    wh_context_free(ctx);
    wh_model_free(model);
  }
}

/* Quantized KV caches stay close to the reference. */
static void
test_kv_types(void)
{
  const wh_kv_type kvs[] = {WH_KV_F32, WH_KV_Q8_0, WH_KV_Q4_0};
  const double max_kld[] = {1e-4, 1e-3, 3e-2};
  for (gsize k = 0; k < G_N_ELEMENTS(kvs); k++) {
    agreement ag;
    if (!run_reference("reference/models/synth-llama-F16.gguf",
                       "reference/logits/synth-llama-F16.logits.gguf", kvs[k], &ag))
      return;
    g_test_message("kv %s: max rel %.3g, argmax %u/%u, mean KLD %.3g", wh_kv_type_name(kvs[k]),
                   ag.max_rel, ag.argmax_same, ag.n_pos, ag.kld_sum / ag.n_pos);
    if (kvs[k] == WH_KV_F32)
      g_assert_cmpfloat(ag.max_rel, <=, 2e-3);
    g_assert_cmpfloat(ag.kld_sum / ag.n_pos, <=, max_kld[k]);
  }
}

/* Context shift: the kept tokens' layer-0 keys are re-rotated to their new
 * positions. Layer 0's keys depend on the token alone, so they must equal the
 * keys a fresh context computes for the shifted sequence. */
static void
test_context_shift(void)
{
  wh_model *model;
  wh_context *a = open_ctx("reference/models/synth-qwen2-F16.gguf", 2, WH_KV_F32, 64, 64, &model);
  if (!a)
    return;
  GError *error = NULL;
  const gint32 tokens[12] = {1, 400, 35, 80, 12, 300, 7, 99, 150, 42, 260, 13};
  const gint32 shifted[9] = {1, 400, 12, 300, 7, 99, 150, 42, 260};
  g_assert_nonnull(wh_context_decode(a, tokens, 11, FALSE, &error));
  wh_context_shift(a, 2, 2);
  g_assert_cmpuint(wh_context_n_past(a), ==, 9);
  g_assert_cmpmem(wh_context_get_tokens(a), sizeof(shifted), shifted, sizeof(shifted));

  wh_context_params cp = *wh_context_get_params(a);
  wh_context *b = wh_context_new(model, &cp, &error);
  g_assert_no_error(error);
  g_assert_nonnull(wh_context_decode(b, shifted, 9, FALSE, &error));
  const guint32 n = 2 * 64;
  for (guint32 cell = 0; cell < 9; cell++) {
    const float *ka = (const float *)wh_context_k_cell(a, 0, cell);
    const float *kb = (const float *)wh_context_k_cell(b, 0, cell);
    for (guint32 i = 0; i < n; i++)
      g_assert_cmpfloat_with_epsilon(ka[i], kb[i], 1e-4 * (1 + fabsf(kb[i])));
  }
  /* decoding continues after a shift, and an overfull decode shifts by itself */
  g_assert_nonnull(wh_context_decode(a, tokens + 11, 1, FALSE, &error));
  g_assert_no_error(error);
  gint32 many[60];
  for (int i = 0; i < 60; i++)
    many[i] = 2 + i;
  g_assert_nonnull(wh_context_decode(a, many, 60, FALSE, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(wh_context_n_past(a), <=, 64);
  g_assert_cmpint(wh_context_get_tokens(a)[0], ==, 1);
  wh_context_free(a);
  wh_context_free(b);
  wh_model_free(model);
}

/* RoPE scaling (spec 2.4), which the test models do not exercise: linear
 * scaling, YaRN's ramp ends and magnitude, and gemma3's unscaled sliding
 * layers with their own base. */
static void
test_rope_scaling(void)
{
  g_autofree char *path = wh_test_shared_file_or_skip("reference/models/synth-gemma3-F16.gguf");
  if (!path)
    return;
  GError *error = NULL;
  wh_model *model = wh_model_load(path, NULL, &error);
  g_assert_no_error(error);
  wh_model_hparams *hp = &model->hp;
  wh_context_params cp = wh_context_default_params();
  cp.n_ctx = 4096;
  const guint32 np = hp->n_rot / 2;
  double freq[256];
  float mscale;

  /* plain: base^(-2i/n_rot) */
  wh_model_rope_freqs(model, &cp, FALSE, freq, &mscale);
  for (guint32 i = 0; i < np; i++)
    g_assert_cmpfloat_with_epsilon(freq[i], pow(10000.0, -2.0 * i / hp->n_rot), 1e-12);
  g_assert_cmpfloat(mscale, ==, 1.0f);

  /* gemma3: linear factor 8 and base 1e6 on global layers only */
  hp->rope_scaling = WH_ROPE_SCALING_LINEAR;
  hp->rope_freq_scale = 0.125f;
  hp->rope_base = 1e6f;
  wh_model_rope_freqs(model, &cp, FALSE, freq, &mscale);
  for (guint32 i = 0; i < np; i++)
    g_assert_cmpfloat_with_epsilon(freq[i], 0.125 * pow(1e6, -2.0 * i / hp->n_rot), 1e-12);
  wh_model_rope_freqs(model, &cp, TRUE, freq, &mscale);
  for (guint32 i = 0; i < np; i++)
    g_assert_cmpfloat_with_epsilon(freq[i], pow(10000.0, -2.0 * i / hp->n_rot), 1e-12);

  /* YaRN, factor 4, n_ctx_orig 2048, base 10000, n_rot 64: low = floor(corr(32)) = 8,
   * high = ceil(corr(1)) = 21; pairs up to low keep the unscaled frequency, pairs from high
   * on take s * ext, and the magnitude is 1 + 0.1 ln 4. */
  hp->rope_scaling = WH_ROPE_SCALING_YARN;
  hp->rope_freq_scale = 0.25f;
  hp->rope_base = 10000.0f;
  hp->n_ctx_orig = 2048;
  g_assert_cmpuint(hp->n_rot, ==, 64);
  wh_model_rope_freqs(model, &cp, FALSE, freq, &mscale);
  g_assert_cmpfloat_with_epsilon(mscale, 1.0 + 0.1 * log(4.0), 1e-6);
  for (guint32 i = 0; i < np; i++) {
    double ext = pow(10000.0, -2.0 * i / 64);
    if (i <= 8)
      g_assert_cmpfloat_with_epsilon(freq[i], ext, 1e-12);
    else if (i >= 21)
      g_assert_cmpfloat_with_epsilon(freq[i], 0.25 * ext, 1e-12);
    else
      g_assert_true(freq[i] < ext && freq[i] > 0.25 * ext);
  }
  wh_model_free(model);
}

static void
test_errors(void)
{
  GError *error = NULL;
  g_autofree char *path = wh_test_shared_file_or_skip("vocab/ggml-vocab-llama-spm.gguf");
  if (!path)
    return;
  /* a vocabulary-only file: no architecture we run, or missing tensors */
  wh_model *m = wh_model_load(path, NULL, &error);
  g_assert_null(m);
  g_assert_nonnull(error);
  g_test_message("%s", error->message);
  g_assert_true(g_str_has_prefix(error->message, path));
  g_clear_error(&error);

  wh_model *model;
  wh_context *ctx = open_ctx("models/stories260K.gguf", 1, WH_KV_F16, 256, 32, &model);
  if (!ctx)
    return;
  const gint32 bad[2] = {1, 512};
  g_assert_null(wh_context_decode(ctx, bad, 2, FALSE, &error));
  g_assert_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_CONTEXT);
  g_clear_error(&error);
  gint32 toomany[40] = {1};
  g_assert_null(wh_context_decode(ctx, toomany, 40, TRUE, &error));
  g_assert_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_CONTEXT);
  g_clear_error(&error);
  wh_context_free(ctx);
  wh_model_free(model);
}

/* The AVX2 attention loops over an F16 cache give the portable loops' floats bit for bit:
 * group sizes 1-6 (MHA, GQA, the >4 heads tile), head sizes 64/128/256 and 40 (portable only),
 * 1 to 300 positions, a cache row stride wider than the slice, random values. */
static void
test_attn_simd(void)
{
  if (wh_quant_simd_level() < WH_QUANT_SIMD_AVX2)
    g_test_message("no AVX2 on this CPU: both levels run the portable loops");
  GRand *rand = g_rand_new_with_seed(7);
  const guint32 dims[] = {64, 128, 256, 40}, groups[] = {1, 4, 6}, lens[] = {1, 7, 300};
  for (guint di = 0; di < G_N_ELEMENTS(dims); di++)
    for (guint gi = 0; gi < G_N_ELEMENTS(groups); gi++)
      for (guint li = 0; li < G_N_ELEMENTS(lens); li++) {
        const guint32 d = dims[di], ng = groups[gi], nj = lens[li];
        const gsize stride = 2 * (gsize)d * 3 + 64, ld = nj + 5;
        guint8 *cache = g_malloc(stride * nj);
        for (gsize i = 0; i < stride * nj / 2; i++) {
          guint16 h = wh_fp32_to_fp16((float)g_rand_double_range(rand, -2.0, 2.0));
          memcpy(cache + 2 * i, &h, 2);
        }
        float *q = g_new(float, (gsize)ng *d), *buf = g_new(float, d);
        for (gsize i = 0; i < (gsize)ng * d; i++)
          q[i] = (float)g_rand_double_range(rand, -1.0, 1.0);
        float *sc[2], *out[2];
        for (int k = 0; k < 2; k++) {
          sc[k] = g_new0(float, (gsize)ng *ld);
          out[k] = g_new(float, (gsize)ng *d);
          wh_attn_scores_f16(k ? WH_QUANT_SIMD_AVX512 : WH_QUANT_SIMD_NONE, q, ng, d, cache + 2 * d,
                             stride, nj, 0.125f, sc[k], ld, buf);
        }
        g_assert_cmpmem(sc[0], sizeof(float) * ng * ld, sc[1], sizeof(float) * ng * ld);
        for (gsize i = 0; i < (gsize)ng * ld; i++) /* weights in [0, 1) */
          sc[0][i] = fabsf(sc[0][i]) / (1.0f + fabsf(sc[0][i]));
        for (int k = 0; k < 2; k++)
          wh_attn_values_f16(k ? WH_QUANT_SIMD_AVX512 : WH_QUANT_SIMD_NONE, sc[0], ld, ng, d,
                             cache + 4 * d, stride, nj, out[k], buf);
        g_assert_cmpmem(out[0], sizeof(float) * ng * d, out[1], sizeof(float) * ng * d);
        for (int k = 0; k < 2; k++) {
          g_free(sc[k]);
          g_free(out[k]);
        }
        g_free(q);
        g_free(buf);
        g_free(cache);
      }
  g_rand_free(rand);
}

static gint64
ulp_diff(float a, float b)
{
  gint32 ia, ib;
  memcpy(&ia, &a, 4);
  memcpy(&ib, &b, 4);
  if (ia < 0)
    ia = G_MININT32 - ia;
  if (ib < 0)
    ib = G_MININT32 - ib;
  return ABS((gint64)ia - (gint64)ib);
}

/* wh_cpu_exp() is within 2 ulp of the correctly rounded e^x over its range, exact at the
 * edges; the AVX2 softmax and SiLU loops give the portable loops' bits for random values,
 * signed zeros, infinities, NaN and the range limits. */
static void
test_exp_simd(void)
{
  gint64 worst = 0;
  for (float x = -87.3f; x < 88.7f; x += 0.000731f) {
    const float ref = (float)exp((double)x);
    worst = MAX(worst, ulp_diff(wh_cpu_exp(x), ref));
  }
  g_test_message("wh_cpu_exp: worst %" G_GINT64_FORMAT " ulp", worst);
  g_assert_cmpint(worst, <=, 2);
  g_assert_cmpfloat(wh_cpu_exp(0.0f), ==, 1.0f);
  g_assert_cmpfloat(wh_cpu_exp(-0.0f), ==, 1.0f);
  g_assert_true(isinf(wh_cpu_exp(89.0f)) && wh_cpu_exp(-88.0f) == 0.0f);
  g_assert_true(isnan(wh_cpu_exp(NAN)));

  GRand *rand = g_rand_new_with_seed(11);
  const gsize n = 1003;
  float *v = g_new(float, n), *a[2], *up = g_new(float, n);
  const float special[] = {0.0f,    -0.0f,   INFINITY, -INFINITY, 88.72f, 88.73f,
                           -87.33f, -87.34f, -103.0f,  1e-30f,    30.0f,  -30.0f};
  for (int round = 0; round < 4; round++) {
    const double range = round == 0 ? 1.0 : round == 1 ? 20.0 : 120.0;
    for (gsize i = 0; i < n; i++) {
      v[i] = (float)g_rand_double_range(rand, -range, range);
      up[i] = (float)g_rand_double_range(rand, -2.0, 2.0);
    }
    if (round == 3)
      for (gsize i = 0; i < G_N_ELEMENTS(special); i++)
        v[7 * i + 3] = special[i];
    for (int k = 0; k < 2; k++) {
      const wh_quant_simd level = k ? WH_QUANT_SIMD_AVX512 : WH_QUANT_SIMD_NONE;
      a[k] = g_memdup2(v, sizeof(float) * n);
      wh_cpu_silu_mul(level, a[k], up, n);
    }
    g_assert_cmpmem(a[0], sizeof(float) * n, a[1], sizeof(float) * n);
    for (int k = 0; k < 2; k++) {
      const wh_quant_simd level = k ? WH_QUANT_SIMD_AVX512 : WH_QUANT_SIMD_NONE;
      memcpy(a[k], v, sizeof(float) * n);
      if (round == 3) /* a softmax never sees inf or NaN scores: drop them */
        for (gsize i = 0; i < n; i++)
          if (!isfinite(a[k][i]))
            a[k][i] = 0.0f;
      wh_cpu_softmax_exp(level, a[k], (guint32)n);
    }
    g_assert_cmpmem(a[0], sizeof(float) * n, a[1], sizeof(float) * n);
    g_free(a[0]);
    g_free(a[1]);
  }
  g_free(v);
  g_free(up);
  g_rand_free(rand);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  static const char *f16[] = {"synth-llama-F16", "synth-qwen2-F16",  "synth-qwen3-F16",
                              "synth-phi3-F16",  "synth-gemma2-F16", "synth-gemma3-F16",
                              "stories260K"};
  for (gsize i = 0; i < G_N_ELEMENTS(f16); i++) {
    g_autofree char *p = g_strdup_printf("/model/reference/%s", f16[i]);
    g_test_add_data_func(p, f16[i], test_f16_model);
  }
  static const char *quants[] = {
      "Q8_0",         "Q4_0",       "Q4_1",        "Q5_0",         "Q5_1",        "Q2_K",
      "Q3_K_M",       "Q4_K_S",     "Q4_K_M",      "Q5_K_M",       "Q6_K",        "IQ4_NL",
      "IQ4_XS",       "IQ1_S-imat", "IQ1_M-imat",  "IQ2_XXS-imat", "IQ2_XS-imat", "IQ2_S-imat",
      "IQ3_XXS-imat", "IQ3_S-imat", "Q2_K_S-imat", "Q4_K_M-imat",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(quants); i++) {
    g_autofree char *p = g_strdup_printf("/model/quantized/%s", quants[i]);
    g_test_add_data_func(p, quants[i], test_quant_model);
  }
  g_test_add_func("/model/greedy/stories260K", test_stories_greedy);
  g_test_add_data_func("/model/incremental/f16", GINT_TO_POINTER(WH_KV_F16), test_incremental);
  g_test_add_data_func("/model/incremental/q8_0", GINT_TO_POINTER(WH_KV_Q8_0), test_incremental);
  g_test_add_func("/model/threads", test_threads);
  g_test_add_func("/model/attn-simd", test_attn_simd);
  g_test_add_func("/model/exp-simd", test_exp_simd);
  g_test_add_func("/model/memory-plan", test_memory_plan);
  g_test_add_func("/model/kv-types", test_kv_types);
  g_test_add_func("/model/context-shift", test_context_shift);
  g_test_add_func("/model/errors", test_errors);
  g_test_add_func("/model/rope-scaling", test_rope_scaling);
  return g_test_run();
}
