/* cli-synth.c — `whittle-cli synth`: a random-weight F16 llama model of any size.
 *
 * For benchmarks (quantize, load, generate) at realistic sizes without downloading anything.
 * The vocabulary (all tokenizer.* keys) comes from a GGUF file; weights are uniform random
 * with variance 1/row_length so activations stay O(1); norms are 1. Deterministic for a given
 * --seed. Streamed through the GGUF writer: memory stays small whatever the size.
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
    .summary = "Generate a random-weight F16 model (for benchmarks)",
    .usage = "--vocab FILE -o OUT.gguf [--arch llama] [--n-embd N] [--n-layer N] [--n-ff N] "
             "[--n-head N] [--n-head-kv N]",
    .description =
        "Writes a llama-architecture model with random F16 weights (F32 norms) and the "
        "vocabulary of FILE (any GGUF with tokenizer.* keys, e.g. a model or a vocab-only file). "
        "Defaults: n-embd 2048, n-layer 16, n-ff 5632, n-head 32, n-head-kv 8, n-ctx 4096, "
        "seed 1. The weights have variance 1/row length so activations stay of order 1.",
    .run = run_synth,
};

typedef struct {
  char name[64];
  guint32 n_dims;
  guint64 ne[2];
  wh_type type;
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
      if (t->type == WH_TYPE_F32) { /* norms */
        for (guint64 j = 0; j < k; j++)
          buf32[j] = 1.0f;
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

static void add(GArray *ts, wh_type type, guint64 ne0, guint64 ne1, const char *fmt, ...)
    G_GNUC_PRINTF(5, 6);

static void
add(GArray *ts, wh_type type, guint64 ne0, guint64 ne1, const char *fmt, ...)
{
  synth_tensor t = {{0}, ne1 ? 2 : 1, {ne0, ne1 ? ne1 : 1}, type};
  va_list ap;
  va_start(ap, fmt);
  g_vsnprintf(t.name, sizeof t.name, fmt, ap);
  va_end(ap);
  g_array_append_val(ts, t);
}

static int
run_synth(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_synth;
  g_autofree char *arch = NULL, *vocab = NULL, *out = NULL, *name = NULL;
  gint n_embd = 2048, n_layer = 16, n_ff = 5632, n_head = 32, n_head_kv = 8, n_ctx = 4096;
  gint64 seed = 1;
  gboolean quiet = FALSE;
  GOptionEntry entries[] = {
      {"arch", 0, 0, G_OPTION_ARG_STRING, &arch, "Architecture (llama)", "ARCH"},
      {"n-embd", 0, 0, G_OPTION_ARG_INT, &n_embd, "Embedding length", "N"},
      {"n-layer", 0, 0, G_OPTION_ARG_INT, &n_layer, "Number of layers", "N"},
      {"n-ff", 0, 0, G_OPTION_ARG_INT, &n_ff, "Feed-forward length", "N"},
      {"n-head", 0, 0, G_OPTION_ARG_INT, &n_head, "Attention heads", "N"},
      {"n-head-kv", 0, 0, G_OPTION_ARG_INT, &n_head_kv, "Key/value heads", "N"},
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
  if (arch && strcmp(arch, "llama") != 0)
    return wh_cli_usage_error(cmd, "--arch: only 'llama' is supported");
  if (!vocab || !out)
    return wh_cli_usage_error(cmd, "--vocab FILE and -o OUT.gguf are required");
  if (n_embd <= 0 || n_layer <= 0 || n_ff <= 0 || n_head <= 0 || n_head_kv <= 0 || n_ctx <= 0)
    return wh_cli_usage_error(cmd, "sizes must be positive");
  if (n_layer > 512)
    return wh_cli_usage_error(cmd, "--n-layer must be at most 512");
  if (n_embd % n_head != 0 || n_head % n_head_kv != 0 || (n_embd / n_head) % 2 != 0)
    return wh_cli_usage_error(cmd, "n-embd must be a multiple of n-head with an even head "
                                   "size, and n-head a multiple of n-head-kv");

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
  guint64 n_vocab = tokens.n;
  guint64 head_dim = (guint64)(n_embd / n_head), kv = head_dim * (guint64)n_head_kv;

  wh_gguf_writer *w = wh_gguf_writer_new();
  wh_gguf_writer_set_string(w, "general.architecture", "llama");
  wh_gguf_writer_set_string(w, "general.name", name ? name : "whittle synthetic model");
  wh_gguf_writer_set_uint32(w, "llama.context_length", (guint32)n_ctx);
  wh_gguf_writer_set_uint32(w, "llama.embedding_length", (guint32)n_embd);
  wh_gguf_writer_set_uint32(w, "llama.block_count", (guint32)n_layer);
  wh_gguf_writer_set_uint32(w, "llama.feed_forward_length", (guint32)n_ff);
  wh_gguf_writer_set_uint32(w, "llama.attention.head_count", (guint32)n_head);
  wh_gguf_writer_set_uint32(w, "llama.attention.head_count_kv", (guint32)n_head_kv);
  wh_gguf_writer_set_float32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  wh_gguf_writer_set_float32(w, "llama.rope.freq_base", 10000.0f);
  wh_gguf_writer_set_uint32(w, "llama.rope.dimension_count", (guint32)head_dim);
  wh_gguf_writer_set_uint32(w, "general.file_type", 1);
  for (guint64 i = 0; i < wh_gguf_n_kv(v); i++) {
    const char *key = wh_gguf_kv_key(v, i);
    if (g_str_has_prefix(key, "tokenizer.") &&
        !wh_gguf_writer_set_value(w, key, wh_gguf_kv_value(v, i), &error))
      break;
  }

  /* the order the reference writes: non-layer tensors, then each layer by name */
  GArray *ts = g_array_new(FALSE, TRUE, sizeof(synth_tensor));
  add(ts, WH_TYPE_F16, (guint64)n_embd, n_vocab, "output.weight");
  add(ts, WH_TYPE_F32, (guint64)n_embd, 0, "output_norm.weight");
  add(ts, WH_TYPE_F16, (guint64)n_embd, n_vocab, "token_embd.weight");
  for (gint l = 0; l < n_layer; l++) {
    add(ts, WH_TYPE_F16, (guint64)n_embd, kv, "blk.%d.attn_k.weight", l);
    add(ts, WH_TYPE_F32, (guint64)n_embd, 0, "blk.%d.attn_norm.weight", l);
    add(ts, WH_TYPE_F16, (guint64)n_embd, (guint64)n_embd, "blk.%d.attn_output.weight", l);
    add(ts, WH_TYPE_F16, (guint64)n_embd, (guint64)n_embd, "blk.%d.attn_q.weight", l);
    add(ts, WH_TYPE_F16, (guint64)n_embd, kv, "blk.%d.attn_v.weight", l);
    add(ts, WH_TYPE_F16, (guint64)n_ff, (guint64)n_embd, "blk.%d.ffn_down.weight", l);
    add(ts, WH_TYPE_F16, (guint64)n_embd, (guint64)n_ff, "blk.%d.ffn_gate.weight", l);
    add(ts, WH_TYPE_F32, (guint64)n_embd, 0, "blk.%d.ffn_norm.weight", l);
    add(ts, WH_TYPE_F16, (guint64)n_embd, (guint64)n_ff, "blk.%d.ffn_up.weight", l);
  }
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
            "%s: llama, %" G_GUINT64_FORMAT " tensor bytes, vocabulary of %" G_GUINT64_FORMAT
            " tokens\n",
            out, r.total_bytes, n_vocab);
  return WH_CLI_EXIT_OK;
}
