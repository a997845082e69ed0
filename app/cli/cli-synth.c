/* cli-synth.c — `whittle-cli synth`: a random-weight F16 model of any size and architecture.
 *
 * For benchmarks (quantize, load, generate) at realistic sizes without downloading anything,
 * and for tests that need a model of each architecture of spec/architectures.md: llama, qwen2
 * (q/k/v biases), qwen3 (per-head q/k norms, explicit key/value length), phi3 (fused attn_qkv,
 * fused gate|up ffn_up), gemma2 (post-norms, soft-capping keys, sliding window, tied output) and
 * gemma3 (post-norms, q/k norms, sliding window). The tensor names, shapes and metadata keys are
 * the ones the shared synth-<arch>-F16.gguf files carry.
 * The vocabulary (all tokenizer.* keys) comes from a GGUF file; weights are uniform random
 * with variance 1/row_length so activations stay O(1); norms are 1 (gemma's "+1" included);
 * biases are uniform in [-0.1, 0.1]. Deterministic for a given --seed. Streamed through the
 * GGUF writer: memory stays small whatever the size.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli-util.h"
#include "gguf/gguf-writer.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

#define SLICE_ELEMENTS (1u << 20)

static int run_synth(int argc, char **argv);

const wh_cli_command wh_cli_command_synth = {
    .name = "synth",
    .summary = "Generate a random-weight F16 model (for benchmarks and tests)",
    .usage = "--vocab FILE -o OUT.gguf [--arch ARCH] [--n-embd N] [--n-layer N] [--n-ff N] "
             "[--n-head N] [--n-head-kv N] [--head-dim N] [--n-swa N]",
    .description =
        "Writes a model of architecture ARCH (llama, qwen2, qwen3, phi3, gemma2, gemma3; default "
        "llama) with random F16 weights (F32 norms and biases) and the vocabulary of FILE (any "
        "GGUF with tokenizer.* keys, e.g. a model or a vocab-only file). Each architecture gets "
        "its own tensors and keys: q/k/v biases (qwen2), q/k norms (qwen3, gemma3), fused qkv "
        "and gate|up (phi3), post-norms, soft-capping and a sliding window (gemma2, gemma3). "
        "Defaults: n-embd 2048, n-layer 16, n-ff 5632, n-head 32, n-head-kv 8, head-dim "
        "n-embd/n-head, n-swa 4096 (gemma), n-ctx 4096, seed 1. The weights have variance 1/row "
        "length so activations stay of order 1. A ~1B-parameter llama is the default size, e.g. "
        "--vocab ggml-vocab-llama-spm.gguf.",
    .run = run_synth,
};

typedef enum { SYNTH_MATRIX, SYNTH_NORM, SYNTH_BIAS } synth_kind;

typedef struct {
  char name[64];
  guint32 n_dims;
  guint64 ne[2];
  wh_type type;
  synth_kind kind;
} synth_tensor;

typedef struct {
  wh_gguf_writer *writer;
  GArray *tensors;
  guint64 seed;
  guint64 total_bytes;
} synth_run;

/* xorshift64* — fast, good enough for weights */
static inline guint64
next_rand(guint64 *s)
{
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * G_GUINT64_CONSTANT(2685821657736338717);
}

static gboolean
synth_job(wh_job *job, gpointer data, GError **error)
{
  synth_run *r = data;
  guint16 *buf16 = g_new(guint16, SLICE_ELEMENTS);
  float *buf32 = g_new(float, SLICE_ELEMENTS);
  guint64 done = 0;
  gboolean ok = TRUE;
  for (guint i = 0; i < r->tensors->len && ok; i++) {
    const synth_tensor *t = &g_array_index(r->tensors, synth_tensor, i);
    guint64 n = t->ne[0] * (t->n_dims > 1 ? t->ne[1] : 1);
    guint64 state = (r->seed + 1) * G_GUINT64_CONSTANT(0x9E3779B97F4A7C15) + i * 7919 + 1;
    /* uniform in [-a, a] has variance a^2 / 3 = 1 / row length */
    float a = sqrtf(3.0f / (float)t->ne[0]);
    for (guint64 o = 0; o < n && ok; o += SLICE_ELEMENTS) {
      if (wh_job_is_cancelled(job)) {
        wh_gguf_writer_abort(r->writer);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
        ok = FALSE;
        break;
      }
      guint64 k = MIN((guint64)SLICE_ELEMENTS, n - o);
      if (t->type == WH_TYPE_F32) { /* norms: 1, biases: uniform in [-0.1, 0.1] */
        for (guint64 j = 0; j < k; j++)
          buf32[j] = t->kind == SYNTH_NORM
                         ? 1.0f
                         : ((float)(next_rand(&state) >> 40) * (1.0f / 16777216.0f) - 0.5f) * 0.2f;
        ok = wh_gguf_writer_write(r->writer, buf32, k * 4, error);
        done += k * 4;
      } else {
        for (guint64 j = 0; j < k; j++) {
          float u = (float)(next_rand(&state) >> 40) * (1.0f / 16777216.0f); /* [0, 1) */
          buf16[j] = wh_fp32_to_fp16((2.0f * u - 1.0f) * a);
        }
        ok = wh_gguf_writer_write(r->writer, buf16, k * 2, error);
        done += k * 2;
      }
      wh_job_set_progress(job, done, r->total_bytes, t->name);
    }
  }
  if (ok)
    ok = wh_gguf_writer_finish(r->writer, error);
  g_free(buf16);
  g_free(buf32);
  return ok;
}

static void add(GArray *ts, synth_kind kind, guint64 ne0, guint64 ne1, const char *fmt, ...)
    G_GNUC_PRINTF(5, 6);

/* Appends a tensor: a matrix [ne0, ne1] (F16), or a vector [ne0] (F32 norm or bias, ne1 0). */
static void
add(GArray *ts, synth_kind kind, guint64 ne0, guint64 ne1, const char *fmt, ...)
{
  synth_tensor t = {{0},
                    ne1 ? 2 : 1,
                    {ne0, ne1 ? ne1 : 1},
                    kind == SYNTH_MATRIX ? WH_TYPE_F16 : WH_TYPE_F32,
                    kind};
  va_list ap;
  va_start(ap, fmt);
  g_vsnprintf(t.name, sizeof t.name, fmt, ap);
  va_end(ap);
  g_array_append_val(ts, t);
}

static int
compare_names(gconstpointer a, gconstpointer b)
{
  return strcmp(((const synth_tensor *)a)->name, ((const synth_tensor *)b)->name);
}

static const char *const synth_archs[] = {"llama", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"};

/* Appends the tensors of layer @l of @arch, sorted by name as the reference writes them. */
static void
add_layer(GArray *ts, const char *arch, gint l, guint64 d, guint64 q_width, guint64 kv_width,
          guint64 head_dim, guint64 ff)
{
  const gboolean gemma = g_str_has_prefix(arch, "gemma"), phi3 = strcmp(arch, "phi3") == 0;
  GArray *lt = g_array_new(FALSE, TRUE, sizeof(synth_tensor));
  add(lt, SYNTH_NORM, d, 0, "blk.%d.attn_norm.weight", l);
  if (phi3) {
    add(lt, SYNTH_MATRIX, d, q_width + 2 * kv_width, "blk.%d.attn_qkv.weight", l);
  } else {
    add(lt, SYNTH_MATRIX, d, q_width, "blk.%d.attn_q.weight", l);
    add(lt, SYNTH_MATRIX, d, kv_width, "blk.%d.attn_k.weight", l);
    add(lt, SYNTH_MATRIX, d, kv_width, "blk.%d.attn_v.weight", l);
  }
  if (strcmp(arch, "qwen2") == 0) {
    add(lt, SYNTH_BIAS, q_width, 0, "blk.%d.attn_q.bias", l);
    add(lt, SYNTH_BIAS, kv_width, 0, "blk.%d.attn_k.bias", l);
    add(lt, SYNTH_BIAS, kv_width, 0, "blk.%d.attn_v.bias", l);
  }
  if (strcmp(arch, "qwen3") == 0 || strcmp(arch, "gemma3") == 0) {
    add(lt, SYNTH_NORM, head_dim, 0, "blk.%d.attn_q_norm.weight", l);
    add(lt, SYNTH_NORM, head_dim, 0, "blk.%d.attn_k_norm.weight", l);
  }
  add(lt, SYNTH_MATRIX, q_width, d, "blk.%d.attn_output.weight", l);
  add(lt, SYNTH_NORM, d, 0, "blk.%d.ffn_norm.weight", l);
  if (phi3) {
    add(lt, SYNTH_MATRIX, d, 2 * ff, "blk.%d.ffn_up.weight", l);
  } else {
    add(lt, SYNTH_MATRIX, d, ff, "blk.%d.ffn_gate.weight", l);
    add(lt, SYNTH_MATRIX, d, ff, "blk.%d.ffn_up.weight", l);
  }
  add(lt, SYNTH_MATRIX, ff, d, "blk.%d.ffn_down.weight", l);
  if (gemma) {
    add(lt, SYNTH_NORM, d, 0, "blk.%d.post_attention_norm.weight", l);
    add(lt, SYNTH_NORM, d, 0, "blk.%d.post_ffw_norm.weight", l);
  }
  g_array_sort(lt, compare_names);
  g_array_append_vals(ts, lt->data, lt->len);
  g_array_unref(lt);
}

static void
set_u32(wh_gguf_writer *w, const char *arch, const char *key, guint32 v)
{
  g_autofree char *k = g_strdup_printf("%s.%s", arch, key);
  wh_gguf_writer_set_uint32(w, k, v);
}

static void
set_f32(wh_gguf_writer *w, const char *arch, const char *key, float v)
{
  g_autofree char *k = g_strdup_printf("%s.%s", arch, key);
  wh_gguf_writer_set_float32(w, k, v);
}

static int
run_synth(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_synth;
  g_autofree char *arch = NULL, *vocab = NULL, *out = NULL, *name = NULL;
  gint n_embd = 2048, n_layer = 16, n_ff = 5632, n_head = 32, n_head_kv = 8, n_ctx = 4096;
  gint head_dim_opt = 0, n_swa = 4096;
  gint64 seed = 1;
  gboolean quiet = FALSE;
  GOptionEntry entries[] = {
      {"arch", 0, 0, G_OPTION_ARG_STRING, &arch,
       "Architecture: llama, qwen2, qwen3, phi3, gemma2, gemma3", "ARCH"},
      {"n-embd", 0, 0, G_OPTION_ARG_INT, &n_embd, "Embedding length", "N"},
      {"n-layer", 0, 0, G_OPTION_ARG_INT, &n_layer, "Number of layers", "N"},
      {"n-ff", 0, 0, G_OPTION_ARG_INT, &n_ff, "Feed-forward length", "N"},
      {"n-head", 0, 0, G_OPTION_ARG_INT, &n_head, "Attention heads", "N"},
      {"n-head-kv", 0, 0, G_OPTION_ARG_INT, &n_head_kv, "Key/value heads", "N"},
      {"head-dim", 0, 0, G_OPTION_ARG_INT, &head_dim_opt,
       "Key/value head size (default n-embd/n-head)", "N"},
      {"n-swa", 0, 0, G_OPTION_ARG_INT, &n_swa, "Sliding window of gemma2/gemma3", "N"},
      {"n-ctx", 0, 0, G_OPTION_ARG_INT, &n_ctx, "Training context length", "N"},
      {"vocab", 0, 0, G_OPTION_ARG_FILENAME, &vocab, "GGUF file to take the vocabulary from",
       "FILE"},
      {"seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Random seed", "N"},
      {"name", 0, 0, G_OPTION_ARG_STRING, &name, "general.name", "TEXT"},
      {"output", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Output file", "OUT.gguf"},
      {"quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress output", NULL},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument '%s'", argv[1]);
  if (!arch)
    arch = g_strdup("llama");
  gboolean known = FALSE;
  for (guint i = 0; i < G_N_ELEMENTS(synth_archs); i++)
    known = known || strcmp(arch, synth_archs[i]) == 0;
  if (!known)
    return wh_cli_usage_error(cmd,
                              "--arch: '%s' is not one of llama, qwen2, qwen3, phi3, "
                              "gemma2, gemma3",
                              arch);
  if (!vocab || !out)
    return wh_cli_usage_error(cmd, "--vocab FILE and -o OUT.gguf are required");
  if (n_embd <= 0 || n_layer <= 0 || n_ff <= 0 || n_head <= 0 || n_head_kv <= 0 || n_ctx <= 0 ||
      head_dim_opt < 0 || n_swa <= 0)
    return wh_cli_usage_error(cmd, "sizes must be positive");
  if (n_layer > 512)
    return wh_cli_usage_error(cmd, "--n-layer must be at most 512");
  if ((head_dim_opt == 0 && n_embd % n_head != 0) || n_head % n_head_kv != 0)
    return wh_cli_usage_error(cmd, "n-embd must be a multiple of n-head (or give --head-dim), "
                                   "and n-head a multiple of n-head-kv");
  const guint64 head_dim = head_dim_opt ? (guint64)head_dim_opt : (guint64)(n_embd / n_head);
  if (head_dim % 2 != 0)
    return wh_cli_usage_error(cmd, "the head size must be even (RoPE rotates pairs)");

  GError *error = NULL;
  wh_gguf *v = wh_gguf_open(vocab, &error);
  if (v == NULL) {
    int rc = wh_cli_fail(cmd, error);
    g_error_free(error);
    return rc;
  }
  wh_gguf_array tokens;
  if (!wh_gguf_get_array(v, "tokenizer.ggml.tokens", &tokens) || tokens.n == 0) {
    wh_gguf_close(v);
    g_set_error(&error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID,
                "%s has no tokenizer.ggml.tokens: use a model or vocabulary GGUF", vocab);
    int rc = wh_cli_fail(cmd, error);
    g_error_free(error);
    return rc;
  }
  const guint64 n_vocab = tokens.n, d = (guint64)n_embd;
  const guint64 q_width = head_dim * (guint64)n_head, kv_width = head_dim * (guint64)n_head_kv;
  const gboolean gemma = g_str_has_prefix(arch, "gemma");

  wh_gguf_writer *w = wh_gguf_writer_new();
  wh_gguf_writer_set_string(w, "general.architecture", arch);
  wh_gguf_writer_set_string(w, "general.name", name ? name : "whittle synthetic model");
  set_u32(w, arch, "context_length", (guint32)n_ctx);
  set_u32(w, arch, "embedding_length", (guint32)n_embd);
  set_u32(w, arch, "block_count", (guint32)n_layer);
  set_u32(w, arch, "feed_forward_length", (guint32)n_ff);
  set_u32(w, arch, "attention.head_count", (guint32)n_head);
  set_u32(w, arch, "attention.head_count_kv", (guint32)n_head_kv);
  set_f32(w, arch, "attention.layer_norm_rms_epsilon", gemma ? 1e-6f : 1e-5f);
  set_f32(w, arch, "rope.freq_base", 10000.0f);
  if (strcmp(arch, "llama") == 0 || strcmp(arch, "phi3") == 0)
    set_u32(w, arch, "rope.dimension_count", (guint32)head_dim);
  if (strcmp(arch, "qwen3") == 0 || gemma || head_dim_opt) {
    set_u32(w, arch, "attention.key_length", (guint32)head_dim);
    set_u32(w, arch, "attention.value_length", (guint32)head_dim);
  }
  if (strcmp(arch, "gemma2") == 0) {
    set_f32(w, arch, "attn_logit_softcapping", 50.0f);
    set_f32(w, arch, "final_logit_softcapping", 30.0f);
  }
  if (gemma)
    set_u32(w, arch, "attention.sliding_window", (guint32)n_swa);
  wh_gguf_writer_set_uint32(w, "general.quantization_version", 2);
  wh_gguf_writer_set_uint32(w, "general.file_type", 1);
  for (guint64 i = 0; i < wh_gguf_n_kv(v); i++) {
    const char *key = wh_gguf_kv_key(v, i);
    if (g_str_has_prefix(key, "tokenizer.") &&
        !wh_gguf_writer_set_value(w, key, wh_gguf_kv_value(v, i), &error))
      break;
  }

  /* the order the reference writes: non-layer tensors, then each layer by name; gemma2 has no
   * output.weight (the output head is always the token embedding) */
  GArray *ts = g_array_new(FALSE, TRUE, sizeof(synth_tensor));
  if (strcmp(arch, "gemma2") != 0)
    add(ts, SYNTH_MATRIX, d, n_vocab, "output.weight");
  add(ts, SYNTH_NORM, d, 0, "output_norm.weight");
  add(ts, SYNTH_MATRIX, d, n_vocab, "token_embd.weight");
  for (gint l = 0; l < n_layer; l++)
    add_layer(ts, arch, l, d, q_width, kv_width, head_dim, (guint64)n_ff);
  synth_run r = {w, ts, (guint64)seed, 0};
  for (guint i = 0; i < ts->len && error == NULL; i++) {
    const synth_tensor *t = &g_array_index(ts, synth_tensor, i);
    if (wh_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, &error))
      r.total_bytes += wh_type_row_size(t->type, t->ne[0]) * t->ne[1];
  }
  gboolean ok = error == NULL && wh_gguf_writer_begin(w, out, &error);
  if (ok)
    ok = wh_cli_run_job(WH_JOB_CONVERT, "Writing a synthetic model", synth_job, &r, TRUE, quiet,
                        &error);
  wh_gguf_writer_free(w);
  g_array_unref(ts);
  wh_gguf_close(v);
  if (!ok) {
    int rc = wh_cli_fail(cmd, error);
    g_error_free(error);
    return rc;
  }
  if (!quiet)
    fprintf(stderr,
            "%s: %s, %" G_GUINT64_FORMAT " tensor bytes, vocabulary of %" G_GUINT64_FORMAT
            " tokens\n",
            out, arch, r.total_bytes, n_vocab);
  return WH_CLI_EXIT_OK;
}
