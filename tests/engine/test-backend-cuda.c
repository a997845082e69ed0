/* test-backend-cuda.c — the CUDA backend.
 *
 * Everywhere (also without a GPU, as in CI):
 *  - probe/open: without a driver or device (or in a build without CUDA) the backend says
 *    "no CUDA device: <why>" with the right error code, and a context asked for CUDA layers
 *    falls back to the CPU with a note instead of failing.
 *  - clamp: wh_cuda_clamp_layers() keeps layers whose weight types have kernels and stops at
 *    the first layer (from the top) with a type that has none, naming the tensor.
 *  - host runs of the device code (builds with CUDA): the decoders the kernels read weights
 *    and the KV cache with (deq<T>::dequant, __host__ __device__) dequantize every reference
 *    tensor of quant-reference.gguf bit for bit like the quant module, and the KV cache
 *    quantizers write the quant module's bytes.
 * With a CUDA device: whole-model logits with n_gpu_layers = 0, half the layers and all
 * layers + output agree with the CPU path within the tolerances of shared/README.md (F16/F32
 * weights: max |diff| <= 2e-3 * (1 + max |logit|); quantized weights: mean KLD <= 3e-3 and
 * argmax >= 94%, since the CPU multiplies 8-bit activations and the GPU F32 ones), and the
 * device holds exactly the planned bytes. Without a device these tests are skipped and say so.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "backend/cuda/cuda-private.h"
#include "model/model-private.h"
#include "quant/quant.h"
#include "wh-test-util.h"

#ifdef WH_HAVE_CUDA
#include "backend/cuda/cuda-kernels.h"
#endif

/* test-backend-cuda-emu is this file linked with cuda-emu.c (a host emulation of the CUDA
 * runtime and kernels): the whole-model tests then run the backend's host side (cuda.c)
 * without a GPU. The host runs of the device code need the real kernel objects, so they are
 * left out there. */
#if defined(WH_HAVE_CUDA) && !defined(WH_CUDA_EMU)
#define WH_TEST_DEVICE_CODE 1
#endif

static wh_model *
load_shared_or_skip(const char *rel)
{
  g_autofree char *path = wh_test_shared_file_or_skip(rel);
  if (!path)
    return NULL;
  GError *error = NULL;
  wh_model_params mp = wh_model_default_params();
  mp.n_threads = 2;
  wh_model *m = wh_model_load(path, &mp, &error);
  g_assert_no_error(error);
  return m;
}

/* --- everywhere ----------------------------------------------------------------------- */

static void
test_probe(void)
{
  GError *error = NULL;
  const guint n = wh_cuda_probe(&error);
  if (n > 0) {
    g_assert_no_error(error);
    wh_cuda_device *dev = wh_cuda_device_open(NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(dev);
    g_assert_cmpstr(wh_cuda_device_name(dev), !=, "");
    guint64 total = 0, free_bytes = 0;
    g_assert_true(wh_cuda_device_memory(dev, &total, &free_bytes, &error));
    g_assert_cmpuint(free_bytes, <=, total);
    wh_cuda_device_free(dev);
    /* a name that matches nothing lists the devices there are */
    g_assert_null(wh_cuda_device_open("no such gpu at all", &error));
    g_assert_error(error, WH_CUDA_ERROR, WH_CUDA_ERROR_NO_DEVICE);
    g_assert_nonnull(strstr(error->message, "cuda:0"));
    g_clear_error(&error);
    return;
  }
  /* No device: a plain message, and the code says why. */
  g_assert_nonnull(error);
  g_assert_true(g_str_has_prefix(error->message, "no CUDA device: "));
  g_assert_error(error, WH_CUDA_ERROR,
                 wh_cuda_is_built() ? WH_CUDA_ERROR_NO_DEVICE : WH_CUDA_ERROR_NOT_BUILT);
  g_test_message("%s", error->message);
  g_clear_error(&error);

  g_assert_null(wh_cuda_device_open(NULL, &error));
  g_assert_true(g_str_has_prefix(error->message, "no CUDA device: "));
  g_clear_error(&error);
  g_assert_null(wh_cuda_device_open("cuda:0", &error));
  g_assert_true(g_str_has_prefix(error->message, "no CUDA device: "));
  g_clear_error(&error);
}

/* A context that asks for CUDA layers where there is no CUDA device runs on the CPU, with the
 * same logits as a CPU-only context, and a note saying why. */
static void
test_fallback(void)
{
  if (wh_cuda_probe(NULL) > 0) {
    g_test_skip("a CUDA device exists: the fallback is not taken here");
    return;
  }
  wh_model *m = load_shared_or_skip("models/stories260K.gguf");
  if (!m)
    return;
  const gint32 tokens[] = {1, 403, 407, 261, 378, 34, 385, 306};
  const guint32 n = G_N_ELEMENTS(tokens), V = wh_model_n_vocab(m);
  GError *error = NULL;

  wh_context_params cp = wh_context_default_params();
  cp.n_ctx = 64;
  wh_context *cpu = wh_context_new(m, &cp, &error);
  g_assert_no_error(error);
  const float *ref = wh_context_decode(cpu, tokens, n, TRUE, &error);
  g_assert_no_error(error);

  cp.n_gpu_layers = 99;
  g_strlcpy(cp.device, "cuda", sizeof cp.device);
  wh_context *ctx = wh_context_new(m, &cp, &error);
  g_assert_no_error(error);
  g_assert_nonnull(ctx);
  g_assert_cmpuint(wh_context_get_params(ctx)->n_gpu_layers, ==, 0);
  const char *note = wh_context_get_gpu_note(ctx);
  g_assert_nonnull(note);
  g_assert_nonnull(strstr(note, "CUDA"));
  g_test_message("note: %s", note);
  const float *got = wh_context_decode(ctx, tokens, n, TRUE, &error);
  g_assert_no_error(error);
  g_assert_cmpmem(got, (gsize)n * V * sizeof(float), ref, (gsize)n * V * sizeof(float));

  wh_context_free(ctx);
  wh_context_free(cpu);
  wh_model_free(m);
}

/* Layers whose weights have no CUDA kernel stay on the CPU, counted from the top. */
static void
test_clamp(void)
{
  if (!wh_cuda_is_built()) {
    wh_context_params cp = wh_context_default_params();
    cp.n_gpu_layers = 5;
    g_autofree char *note = wh_cuda_clamp_layers(NULL, &cp);
    g_assert_cmpuint(cp.n_gpu_layers, ==, 0);
    g_assert_nonnull(strstr(note, "-Dcuda=enabled"));
    return;
  }
  /* Q4_K_M: every type has a kernel */
  wh_model *m = load_shared_or_skip("reference/models/synth-llama-Q4_K_M.gguf");
  if (!m)
    return;
  const guint32 L = wh_model_get_hparams(m)->n_layer;
  wh_context_params cp = wh_context_default_params();
  cp.n_gpu_layers = L + 1;
  g_autofree char *none = wh_cuda_clamp_layers(m, &cp);
  g_assert_null(none);
  g_assert_cmpuint(cp.n_gpu_layers, ==, L + 1);
  wh_model_free(m);

  /* IQ2_XXS: the grid i-quant matrices have no kernel, so nothing goes */
  m = load_shared_or_skip("reference/models/synth-llama-IQ2_XXS-imat.gguf");
  if (!m)
    return;
  cp.n_gpu_layers = L + 1;
  g_autofree char *note = wh_cuda_clamp_layers(m, &cp);
  g_assert_nonnull(note);
  g_test_message("IQ2_XXS: %u layers, note: %s", cp.n_gpu_layers, note);
  g_assert_cmpuint(cp.n_gpu_layers, <, L);
  g_assert_nonnull(strstr(note, "IQ2_XXS"));
  wh_model_free(m);
}

/* --- host runs of the device code ----------------------------------------------------- */

#ifdef WH_TEST_DEVICE_CODE

static wh_gguf *
open_shared_or_skip(const char *rel)
{
  g_autofree char *path = wh_test_shared_file_or_skip(rel);
  if (!path)
    return NULL;
  GError *error = NULL;
  wh_gguf *g = wh_gguf_open(path, &error);
  g_assert_no_error(error);
  return g;
}

static const wh_type kernel_types[] = {
    WH_TYPE_F16,  WH_TYPE_Q4_0,   WH_TYPE_Q4_1,   WH_TYPE_Q5_0, WH_TYPE_Q5_1,
    WH_TYPE_Q8_0, WH_TYPE_Q2_K,   WH_TYPE_Q3_K,   WH_TYPE_Q4_K, WH_TYPE_Q5_K,
    WH_TYPE_Q6_K, WH_TYPE_IQ4_NL, WH_TYPE_IQ4_XS,
};

/* Every reference tensor q.T / q_imat.T of a kernel type: the device decoder, run on the
 * host, gives the quant module's floats bit for bit (and so the reference's dq.T). */
static void
test_host_dequant(void)
{
  wh_gguf *g = open_shared_or_skip("reference/quant-reference.gguf");
  if (!g)
    return;
  guint checked = 0;
  for (gsize k = 0; k < G_N_ELEMENTS(kernel_types); k++) {
    const wh_type type = kernel_types[k];
    g_assert_true(wh_cuda_type_supported(type));
    for (int imat = 0; imat < 2; imat++) {
      g_autofree char *name = g_strdup_printf("%s.%s", imat ? "q_imat" : "q", wh_type_name(type));
      const wh_gguf_tensor *t = wh_gguf_find_tensor(g, name);
      if (!t)
        continue;
      g_assert_cmpint(t->type, ==, type);
      const gint64 n = (gint64)t->ne[0];
      const gsize row_bytes = wh_quant_row_bytes(type, n);
      g_autofree float *want = g_new(float, n);
      g_autofree float *got = g_new(float, n);
      for (guint64 r = 0; r < t->ne[1]; r++) {
        const guint8 *row = t->data + r * row_bytes;
        wh_quant_dequantize_row(type, row, want, n);
        g_assert_cmpint(wh_cu_host_dequantize_row(type, row, got, n), ==, 0);
        for (gint64 i = 0; i < n; i++)
          if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
            g_error("%s row %" G_GUINT64_FORMAT " element %" G_GINT64_FORMAT
                    ": CUDA decoder %.9g, quant module %.9g",
                    name, r, i, got[i], want[i]);
      }
      checked++;
    }
  }
  g_assert_cmpuint(checked, >=, G_N_ELEMENTS(kernel_types));
  /* F32 and types without a kernel */
  const float one = 1.5f;
  float out = 0.0f;
  g_assert_cmpint(wh_cu_host_dequantize_row(WH_TYPE_F32, &one, &out, 1), ==, 0);
  g_assert_cmpfloat(out, ==, 1.5f);
  g_assert_false(wh_cuda_type_supported(WH_TYPE_IQ2_XXS));
  g_assert_cmpint(wh_cu_host_dequantize_row(WH_TYPE_IQ2_XXS, &one, &out, 256), ==, -1);
  g_assert_cmpint(wh_cu_host_dequantize_row(WH_TYPE_Q4_0, &one, &out, 31), ==, -1);
  wh_gguf_close(g);
}

/* The KV cache stores write the CPU's bytes: F16 per element, Q8_0/Q4_0 with the reference
 * quantizers (rows of the reference input: zeros, constants, tiny and huge values). */
static void
test_host_kv_store(void)
{
  wh_gguf *g = open_shared_or_skip("reference/quant-reference.gguf");
  if (!g)
    return;
  const wh_gguf_tensor *in = wh_gguf_find_tensor(g, "input");
  g_assert_nonnull(in);
  g_assert_cmpint(in->type, ==, WH_TYPE_F32);
  const gint64 n = (gint64)in->ne[0];
  const wh_type types[] = {WH_TYPE_F32, WH_TYPE_F16, WH_TYPE_Q8_0, WH_TYPE_Q4_0};
  for (gsize k = 0; k < G_N_ELEMENTS(types); k++) {
    const gsize bytes = wh_quant_row_bytes(types[k], n);
    g_autofree guint8 *want = g_malloc(bytes);
    g_autofree guint8 *got = g_malloc(bytes);
    for (guint64 r = 0; r < in->ne[1]; r++) {
      const float *x = (const float *)in->data + r * n;
      if (types[k] == WH_TYPE_F32)
        memcpy(want, x, bytes);
      else if (types[k] == WH_TYPE_F16)
        for (gint64 i = 0; i < n; i++)
          ((guint16 *)want)[i] = wh_fp32_to_fp16(x[i]);
      else
        wh_quant_quantize_rows(types[k], x, want, 1, n, NULL, NULL);
      g_assert_cmpint(wh_cu_host_kv_store_row(types[k], x, got, n), ==, 0);
      if (memcmp(got, want, bytes) != 0)
        g_error("%s row %" G_GUINT64_FORMAT ": CUDA KV store bytes differ from the quant module",
                wh_type_name(types[k]), r);
    }
  }
  float x[32] = {0};
  guint8 blk[64];
  g_assert_cmpint(wh_cu_host_kv_store_row(WH_TYPE_Q4_K, x, blk, 32), ==, -1);
  wh_gguf_close(g);
}

/* The FFN activations of glu.cu: SiLU and the tanh GELU with the CPU backend's cut-offs. */
static void
test_host_glu(void)
{
  const float us[] = {-12.0f, -3.0f, -0.5f, 0.0f, 0.25f, 1.0f, 4.0f, 9.5f, 11.0f};
  for (gsize i = 0; i < G_N_ELEMENTS(us); i++) {
    const double u = us[i];
    const double silu = u / (1.0 + exp(-u));
    const double gelu =
        u >= 10.0    ? u
        : u <= -10.0 ? 0.0
                     : 0.5 * u * (1.0 + tanh(0.7978845608028654 * (u + 0.044715 * u * u * u)));
    g_assert_cmpfloat_with_epsilon(wh_cu_host_glu(0, us[i], 2.0f), 2.0 * silu,
                                   1e-6 * (1.0 + fabs(silu)));
    g_assert_cmpfloat_with_epsilon(wh_cu_host_glu(1, us[i], -1.0f), -gelu,
                                   1e-6 * (1.0 + fabs(gelu)));
  }
}

#endif /* WH_TEST_DEVICE_CODE */

/* --- with a device -------------------------------------------------------------------- */

static float
max_abs(const float *v, gsize n)
{
  float m = 0.0f;
  for (gsize i = 0; i < n; i++)
    m = MAX(m, fabsf(v[i]));
  return m;
}

/* Row @t of @got vs @ref: F32/F16 weights max |diff| <= 2e-3 * (1 + max |ref|); quantized
 * weights (the CPU multiplies 8-bit activations, the GPU F32 ones) add the KL divergence of
 * the two softmaxes to *kld and count argmax agreement. */
static void
compare_row(const char *rel, guint32 ngl, guint32 t, const float *got, const float *ref, guint32 V,
            gboolean quantized, double *kld, guint *same_argmax)
{
  if (!quantized) {
    const float tol = 2e-3f * (1.0f + max_abs(ref, V));
    for (guint32 i = 0; i < V; i++)
      if (fabsf(got[i] - ref[i]) > tol)
        g_error("%s ngl %u token %u logit %u: CUDA %g, CPU %g", rel, ngl, t, i, got[i], ref[i]);
    return;
  }
  float mr = -INFINITY, mg = -INFINITY;
  guint32 ar = 0, ag = 0;
  for (guint32 i = 0; i < V; i++) {
    if (ref[i] > mr)
      mr = ref[i], ar = i;
    if (got[i] > mg)
      mg = got[i], ag = i;
  }
  double sr = 0.0, sg = 0.0;
  for (guint32 i = 0; i < V; i++) {
    sr += exp((double)ref[i] - mr);
    sg += exp((double)got[i] - mg);
  }
  double k = 0.0;
  for (guint32 i = 0; i < V; i++) {
    const double lp = (double)ref[i] - mr - log(sr), lq = (double)got[i] - mg - log(sg);
    k += exp(lp) * (lp - lq);
  }
  *kld += k;
  *same_argmax += ar == ag;
}

/* Logits of a prompt with n_gpu_layers = 0, half and all + output on the CUDA device vs the
 * CPU-only context, fed in two chunks (the second attends to cached cells). */
static void
check_model(const char *rel, gboolean quantized, wh_kv_type kv_type)
{
  if (wh_cuda_probe(NULL) == 0) {
    GError *error = NULL;
    wh_cuda_probe(&error);
    g_test_skip_printf("%s", error->message);
    g_error_free(error);
    return;
  }
  wh_model *m = load_shared_or_skip(rel);
  if (!m)
    return;
  const wh_model_hparams *hp = wh_model_get_hparams(m);
  /* 40 positions: one argmax flip at a near-tie stays above the 94% of shared/README.md */
  gint32 tokens[40];
  const guint32 n = G_N_ELEMENTS(tokens), V = hp->n_vocab;
  tokens[0] = 1;
  for (guint32 i = 1; i < n; i++)
    tokens[i] = (gint32)(2 + (i * 37 + 11) % (V - 2));
  GError *error = NULL;
  wh_context_params cp = wh_context_default_params();
  cp.n_ctx = 64;
  cp.kv_type = kv_type;
  wh_context *cpu = wh_context_new(m, &cp, &error);
  g_assert_no_error(error);
  const float *ref = wh_context_decode(cpu, tokens, n, TRUE, &error);
  g_assert_no_error(error);

  const guint32 ngls[] = {0, hp->n_layer / 2, hp->n_layer + 1};
  for (gsize k = 0; k < G_N_ELEMENTS(ngls); k++) {
    cp.n_gpu_layers = ngls[k];
    g_strlcpy(cp.device, "cuda", sizeof cp.device);
    wh_context *ctx = wh_context_new(m, &cp, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(wh_context_get_params(ctx)->n_gpu_layers, ==, ngls[k]);
    double kld = 0.0;
    guint same = 0;
    const guint32 chunks[2][2] = {{0, n / 2}, {n / 2, n}};
    for (int c = 0; c < 2; c++) {
      const guint32 t0 = chunks[c][0], t1 = chunks[c][1];
      const float *got = wh_context_decode(ctx, tokens + t0, t1 - t0, TRUE, &error);
      g_assert_no_error(error);
      for (guint32 t = t0; t < t1; t++)
        compare_row(rel, ngls[k], t, got + (gsize)(t - t0) * V, ref + (gsize)t * V, V, quantized,
                    &kld, &same);
    }
    if (quantized) {
      g_test_message("%s ngl %u: mean KLD %.3g, argmax %u/%u", rel, ngls[k], kld / n, same, n);
      g_assert_cmpfloat(kld / n, <=, 3e-3);
      g_assert_cmpfloat((double)same / n, >=, 0.94);
    }
    /* the device holds exactly the plan's bytes */
    wh_memory_plan_devices planned, allocated;
    wh_context_get_device_memory(ctx, &planned, &allocated);
    g_assert_cmpmem(&planned.dev[WH_PLAN_GPU], sizeof(wh_memory_plan), &allocated.dev[WH_PLAN_GPU],
                    sizeof(wh_memory_plan));
    wh_context_free(ctx);
  }
  wh_context_free(cpu);
  wh_model_free(m);
}

/* A context shift moves the CUDA layers' cells and re-rotates their keys like the CPU does:
 * feeding more tokens than the context holds gives the CPU-only context's logits. */
static void
test_model_shift(void)
{
  if (wh_cuda_probe(NULL) == 0) {
    GError *error = NULL;
    wh_cuda_probe(&error);
    g_test_skip_printf("%s", error->message);
    g_error_free(error);
    return;
  }
  wh_model *m = load_shared_or_skip("models/stories260K.gguf");
  if (!m)
    return;
  const guint32 V = wh_model_n_vocab(m), L = wh_model_get_hparams(m)->n_layer;
  GError *error = NULL;
  wh_context_params cp = wh_context_default_params();
  cp.n_ctx = 32;
  cp.n_batch = 8;
  wh_context *cpu = wh_context_new(m, &cp, &error);
  g_assert_no_error(error);
  cp.n_gpu_layers = L / 2 + 1;
  g_strlcpy(cp.device, "cuda", sizeof cp.device);
  wh_context *ctx = wh_context_new(m, &cp, &error);
  g_assert_no_error(error);
  gint32 batch[8];
  for (guint32 step = 0; step < 8; step++) { /* 64 tokens through a 32-token context */
    for (guint32 i = 0; i < G_N_ELEMENTS(batch); i++)
      batch[i] = (gint32)(1 + (step * 37 + i * 11) % (V - 1));
    const float *ref = wh_context_decode(cpu, batch, G_N_ELEMENTS(batch), FALSE, &error);
    g_assert_no_error(error);
    const float *got = wh_context_decode(ctx, batch, G_N_ELEMENTS(batch), FALSE, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(wh_context_n_past(ctx), ==, wh_context_n_past(cpu));
    compare_row("models/stories260K.gguf (shift)", cp.n_gpu_layers, step, got, ref, V, FALSE, NULL,
                NULL);
  }
  wh_context_free(ctx);
  wh_context_free(cpu);
  wh_model_free(m);
}

static void
test_model_stories(void)
{
  check_model("models/stories260K.gguf", FALSE, WH_KV_F16);
}

static void
test_model_synth(gconstpointer arch)
{
  g_autofree char *rel = g_strdup_printf("reference/models/synth-%s-F16.gguf", (const char *)arch);
  check_model(rel, FALSE, WH_KV_F16);
}

static void
test_model_quantized(gconstpointer type)
{
  g_autofree char *rel =
      g_strdup_printf("reference/models/synth-llama-%s.gguf", (const char *)type);
  check_model(rel, TRUE, WH_KV_F16);
}

/* The KV cache types only the CUDA backend keeps on the GPU (q8_0, q4_0), and f32: the CPU
 * context uses the same cache type, so both round K and V alike. */
static void
test_model_kv(gconstpointer kv_name)
{
  wh_kv_type kv;
  g_assert_true(wh_kv_type_from_name(kv_name, &kv));
  check_model("models/stories260K.gguf", FALSE, kv);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/backend-cuda/probe", test_probe);
  g_test_add_func("/backend-cuda/fallback", test_fallback);
  g_test_add_func("/backend-cuda/clamp", test_clamp);
#ifdef WH_TEST_DEVICE_CODE
  g_test_add_func("/backend-cuda/host/dequant", test_host_dequant);
  g_test_add_func("/backend-cuda/host/kv-store", test_host_kv_store);
  g_test_add_func("/backend-cuda/host/glu", test_host_glu);
#endif
  g_test_add_func("/backend-cuda/model/stories260K", test_model_stories);
  g_test_add_func("/backend-cuda/model/shift", test_model_shift);
  static const char *kvs[] = {"f32", "q8_0", "q4_0"};
  for (gsize i = 0; i < G_N_ELEMENTS(kvs); i++) {
    g_autofree char *path = g_strdup_printf("/backend-cuda/model/stories260K-kv-%s", kvs[i]);
    g_test_add_data_func(path, kvs[i], test_model_kv);
  }
  static const char *archs[] = {"llama", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"};
  for (gsize i = 0; i < G_N_ELEMENTS(archs); i++) {
    g_autofree char *path = g_strdup_printf("/backend-cuda/model/synth-%s-F16", archs[i]);
    g_test_add_data_func(path, archs[i], test_model_synth);
  }
  static const char *types[] = {"Q8_0",   "Q4_0",   "Q4_1",   "Q5_0", "Q5_1",   "Q2_K",
                                "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"};
  for (gsize i = 0; i < G_N_ELEMENTS(types); i++) {
    g_autofree char *path = g_strdup_printf("/backend-cuda/model/synth-llama-%s", types[i]);
    g_test_add_data_func(path, types[i], test_model_quantized);
  }
  return g_test_run();
}
