/* cli-perplexity.c — `whittle-cli perplexity`: perplexity of a text, the reference way.
 *
 * Method (as the reference tool): tokenize the whole text with BOS, cut it into
 * floor(n_tokens / N) chunks of N tokens, put BOS in place of each chunk's first token, run
 * each chunk in a fresh cache, and score the second half: the log-probability of token j+1
 * from the logits at j, for j in [N/2, N-1). PPL = exp(mean negative log-likelihood); the
 * error is the standard error of the mean carried through exp.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli-util.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

static int run_perplexity(int argc, char **argv);

const wh_cli_command wh_cli_command_perplexity = {
    .name = "perplexity",
    .summary = "Measure the perplexity of a model on a text",
    .usage = "-m MODEL -f TEXT [-c N] [-t THREADS]",
    .description = "Chunks of N tokens (default 512), BOS first, the second half of each chunk\n"
                   "scored. Ends with the line `PPL = <value> +/- <error>`.",
    .run = run_perplexity,
};

typedef struct {
  wh_model *model;
  const gint32 *tokens;
  guint32 n_tokens;
  guint32 n_chunk_tokens;
  gint32 bos;
  wh_context_params cp;
  /* results */
  double nll, nll2;
  guint64 count;
  guint32 n_chunks;
} ppl_state;

/* -log softmax(logits)[target], in double. */
static double
neg_log_prob(const float *logits, guint32 n_vocab, gint32 target)
{
  float mx = logits[0];
  for (guint32 i = 1; i < n_vocab; i++)
    mx = MAX(mx, logits[i]);
  double sum = 0.0;
  for (guint32 i = 0; i < n_vocab; i++)
    sum += exp((double)logits[i] - mx);
  return log(sum) - ((double)logits[target] - mx);
}

static gboolean
ppl_job(wh_job *job, gpointer user_data, GError **error)
{
  ppl_state *st = user_data;
  const guint32 N = st->n_chunk_tokens, V = wh_model_n_vocab(st->model);
  wh_context *ctx = wh_context_new(st->model, &st->cp, error);
  if (!ctx)
    return FALSE;
  gint32 *chunk = g_new(gint32, N);
  gboolean ok = TRUE;
  for (guint32 c = 0; c < st->n_chunks && ok; c++) {
    if (wh_job_is_cancelled(job)) {
      ok = FALSE;
      break;
    }
    memcpy(chunk, st->tokens + (gsize)c * N, N * sizeof(gint32));
    if (st->bos >= 0)
      chunk[0] = st->bos;
    wh_context_clear(ctx);
    const float *logits = wh_context_decode(ctx, chunk, N, TRUE, error);
    if (!logits) {
      ok = FALSE;
      break;
    }
    /* targets come from the text, not the BOS-patched chunk */
    const gint32 *text = st->tokens + (gsize)c * N;
    for (guint32 j = N / 2; j + 1 < N; j++) {
      double v = neg_log_prob(logits + (gsize)j * V, V, text[j + 1]);
      st->nll += v;
      st->nll2 += v * v;
      st->count++;
    }
    fprintf(stderr, "[%u]%.4f%s", c + 1, exp(st->nll / st->count),
            c + 1 == st->n_chunks ? "\n" : ",");
    wh_job_set_progress(job, c + 1, st->n_chunks, NULL);
  }
  g_free(chunk);
  wh_context_free(ctx);
  return ok;
}

static int
run_perplexity(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_perplexity;
  g_autofree char *model_path = NULL, *text_path = NULL, *kv_name = NULL;
  int n_ctx = 512, n_threads = 0;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "GGUF model file", "MODEL"},
      {"file", 'f', 0, G_OPTION_ARG_FILENAME, &text_path, "Text file to score", "TEXT"},
      {"ctx-size", 'c', 0, G_OPTION_ARG_INT, &n_ctx, "Tokens per chunk (default 512)", "N"},
      {"threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "Compute threads (default: all cores)",
       "N"},
      {"kv-type", 0, 0, G_OPTION_ARG_STRING, &kv_name,
       "KV cache type: f16 (default), q8_0, q4_0, f32", "TYPE"},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument “%s”", argv[1]);
  if (!model_path || !text_path)
    return wh_cli_usage_error(cmd, "-m MODEL and -f TEXT are required");
  if (n_ctx < 4)
    return wh_cli_usage_error(cmd, "-c must be at least 4");
  ppl_state st = {0};
  st.cp = wh_context_default_params();
  if (kv_name && !wh_kv_type_from_name(kv_name, &st.cp.kv_type))
    return wh_cli_usage_error(cmd, "unknown KV cache type “%s”", kv_name);

  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  gsize text_len = 0;
  if (!g_file_get_contents(text_path, &text, &text_len, &error))
    return wh_cli_fail(cmd, error);
  wh_model_params mp = wh_model_default_params();
  mp.n_threads = n_threads;
  wh_model *model = wh_model_load(model_path, &mp, &error);
  if (!model)
    return wh_cli_fail(cmd, error);
  wh_tokenizer *tok = wh_tokenizer_new_from_gguf(wh_model_get_gguf(model), &error);
  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  gboolean ok = tok && wh_tokenizer_tokenize(tok, text, text_len, TRUE, FALSE, ids, &error) >= 0;
  if (ok) {
    st.model = model;
    st.tokens = (const gint32 *)ids->data;
    st.n_tokens = ids->len;
    st.n_chunk_tokens = (guint32)n_ctx;
    st.n_chunks = ids->len / (guint32)n_ctx;
    st.bos = wh_tokenizer_add_bos(tok) ? wh_tokenizer_bos(tok) : -1;
    st.cp.n_ctx = st.cp.n_batch = (guint32)n_ctx;
    st.cp.n_threads = n_threads;
    if (st.n_chunks == 0) {
      g_set_error(&error, WH_MODEL_ERROR, WH_MODEL_ERROR_CONTEXT,
                  "%s has %u tokens, fewer than one chunk of %d: use a smaller -c", text_path,
                  ids->len, n_ctx);
      ok = FALSE;
    }
  }
  if (ok) {
    fprintf(stderr, "perplexity: %u tokens, %u chunks of %d\n", ids->len, st.n_chunks, n_ctx);
    ok = wh_cli_run_job(WH_JOB_EVALUATE, "perplexity", ppl_job, &st, FALSE, TRUE, &error);
  }
  wh_tokenizer_free(tok);
  wh_model_free(model);
  if (!ok)
    return wh_cli_fail(cmd, error);

  double mean = st.nll / st.count, ppl = exp(mean), err = 0.0;
  double var = st.nll2 / st.count - mean * mean;
  if (var > 0 && st.count > 1)
    err = ppl * sqrt(var / (st.count - 1));
  printf("PPL = %.4f +/- %.5f\n", ppl, err);
  return fflush(stdout) == 0 ? WH_CLI_EXIT_OK : WH_CLI_EXIT_FAILURE;
}
