/* cli-perplexity.c — `whittle-cli perplexity`: perplexity of a text, the reference way, and KL
 * divergence against the saved logits of a base model.
 *
 * The method (chunks of N tokens, BOS first, the second half scored) and the saved-logits
 * format live in the eval module (engine/eval/eval.h); this file parses options, tokenizes
 * the text and prints. The last line is always `PPL = <value> +/- <error>`.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli-eval.h"
#include "tokenizer/tokenizer.h"

static int run_perplexity(int argc, char **argv);

const wh_cli_command wh_cli_command_perplexity = {
    .name = "perplexity",
    .summary = "Measure the perplexity of a model on a text",
    .usage = "-m MODEL -f TEXT [-c N] [-t THREADS] [--chunks N] [--save-logits FILE] "
             "[--kl-divergence FILE]",
    .description = "Chunks of N tokens (default 512), BOS first, the second half of each chunk\n"
                   "scored. Ends with the line `PPL = <value> +/- <error>`.\n"
                   "--save-logits FILE keeps the scored log-probabilities of this (base) model;\n"
                   "--kl-divergence FILE compares this model against them (same text and -c) and\n"
                   "prints the KL divergence statistics and how often the top token agrees.",
    .run = run_perplexity,
};

/* --- shared with cli-imatrix.c (cli-eval.h) ---------------------------------------------- */

static gboolean
eval_continue(gpointer user_data)
{
  wh_cli_eval *ev = user_data;
  return !wh_job_is_cancelled(ev->job);
}

static void
eval_progress(guint32 done, guint32 n_chunks, double ppl, gpointer user_data)
{
  wh_cli_eval *ev = user_data;
  fprintf(stderr, "[%u]%.4f%s", done, ppl, done == n_chunks ? "\n" : ",");
  wh_job_set_progress(ev->job, done, n_chunks, NULL);
}

static gboolean
eval_job(wh_job *job, gpointer user_data, GError **error)
{
  wh_cli_eval *ev = user_data;
  ev->job = job;
  return ev->func(ev, error);
}

gboolean
wh_cli_eval_load(wh_cli_eval *ev, const char *model_path, const char *text_path, int n_threads,
                 GError **error)
{
  memset(ev, 0, sizeof *ev);
  ev->ep = wh_eval_default_params();
  ev->ep.n_threads = n_threads;
  ev->ep.progress = eval_progress;
  ev->ep.should_continue = eval_continue;
  ev->ep.user_data = ev;
  g_autofree char *text = NULL;
  gsize text_len = 0;
  if (!g_file_get_contents(text_path, &text, &text_len, error))
    return FALSE;
  wh_model_params mp = wh_model_default_params();
  mp.n_threads = n_threads;
  if (!(ev->model = wh_model_load(model_path, &mp, error)))
    return FALSE;
  wh_tokenizer *tok = wh_tokenizer_new_from_gguf(wh_model_get_gguf(ev->model), error);
  if (!tok)
    return FALSE;
  ev->ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  const gboolean ok = wh_tokenizer_tokenize(tok, text, text_len, TRUE, FALSE, ev->ids, error) >= 0;
  ev->bos = wh_tokenizer_add_bos(tok) ? wh_tokenizer_bos(tok) : -1;
  wh_tokenizer_free(tok);
  return ok;
}

gboolean
wh_cli_eval_run(wh_cli_eval *ev, const char *title, guint32 n_ctx, GError **error)
{
  guint32 n_chunks = ev->ids->len / n_ctx;
  if (ev->ep.max_chunks > 0)
    n_chunks = MIN(n_chunks, ev->ep.max_chunks);
  fprintf(stderr, "%s: %u tokens, %u chunks of %u\n", title, ev->ids->len, n_chunks, n_ctx);
  return wh_cli_run_job(WH_JOB_EVALUATE, title, eval_job, ev, FALSE, TRUE, error);
}

void
wh_cli_eval_clear(wh_cli_eval *ev)
{
  wh_model_free(ev->model);
  if (ev->ids)
    g_array_unref(ev->ids);
  memset(ev, 0, sizeof *ev);
}

/* --- perplexity ------------------------------------------------------------------------ */

static gboolean
ppl_run(wh_cli_eval *ev, GError **error)
{
  return wh_eval_perplexity(ev->model, (const gint32 *)ev->ids->data, ev->ids->len, ev->bos,
                            &ev->ep, &ev->result, error);
}

static void
print_kld(const wh_eval_result *r)
{
  static const char *const labels[WH_EVAL_KLD_N_LEVELS] = {
      "Maximum KLD", "99.9%   KLD", "99.0%   KLD", "95.0%   KLD", "90.0%   KLD", "Median  KLD",
      "10.0%   KLD", " 5.0%   KLD", " 1.0%   KLD", " 0.1%   KLD", "Minimum KLD",
  };
  printf("====== KL divergence statistics (%" G_GUINT64_FORMAT " positions) ======\n", r->n_scored);
  printf("Mean PPL(base) : %10.6f +/- %10.6f\n", r->base_ppl, r->base_ppl_err);
  printf("Mean PPL(Q)    : %10.6f +/- %10.6f\n", r->ppl, r->ppl_err);
  printf("Mean    KLD: %10.6f +/- %10.6f\n", r->kld_mean, r->kld_err);
  for (int k = 0; k < WH_EVAL_KLD_N_LEVELS; k++)
    printf("%s: %10.6f\n", labels[k], r->kld_percentile[k]);
  printf("Mean    dp : %8.4f +/- %7.4f %%\n", 100.0 * r->dp_mean, 100.0 * r->dp_err);
  printf("RMS     dp : %8.4f %%\n", 100.0 * r->dp_rms);
  printf("Same top p : %7.3f +/- %5.3f %%\n", 100.0 * r->same_top, 100.0 * r->same_top_err);
}

static int
run_perplexity(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_perplexity;
  g_autofree char *model_path = NULL, *text_path = NULL;
  g_autofree char *save_path = NULL, *base_path = NULL;
  g_auto(wh_cli_run_options) ro = {0};
  gint32 ngl = 0;
  int n_ctx = 0, max_chunks = 0;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "GGUF model file", "MODEL"},
      {"file", 'f', 0, G_OPTION_ARG_FILENAME, &text_path, "Text file to score", "TEXT"},
      {"ctx-size", 'c', 0, G_OPTION_ARG_INT, &n_ctx,
       "Tokens per chunk (default 512, or the base logits' size)", "N"},
      {"chunks", 0, 0, G_OPTION_ARG_INT, &max_chunks, "Score at most N chunks (default: all)", "N"},
      {"save-logits", 0, 0, G_OPTION_ARG_FILENAME, &save_path,
       "Save the scored log-probabilities (base model) to FILE", "FILE"},
      {"kl-divergence", 0, 0, G_OPTION_ARG_FILENAME, &base_path,
       "Compare against base logits saved in FILE", "FILE"},
      {NULL},
  };
  g_autofree GOptionEntry *all_entries = wh_cli_run_add_entries(entries, &ro);
  if (!wh_cli_parse_options(cmd, all_entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument “%s”", argv[1]);
  if (!model_path || !text_path)
    return wh_cli_usage_error(cmd, "-m MODEL and -f TEXT are required");
  if (n_ctx != 0 && n_ctx < 4)
    return wh_cli_usage_error(cmd, "-c must be at least 4");
  if (max_chunks < 0)
    return wh_cli_usage_error(cmd, "--chunks must not be negative");
  wh_kv_type kv_type = WH_KV_F16;
  if (!wh_cli_run_options_check(cmd, &ro, &kv_type, &ngl))
    return WH_CLI_EXIT_USAGE;

  g_autoptr(GError) error = NULL;
  wh_eval_logits *base = NULL;
  if (base_path && !(base = wh_eval_logits_open(base_path, &error)))
    return wh_cli_fail(cmd, error);
  wh_cli_eval ev;
  gboolean ok = wh_cli_eval_load(&ev, model_path, text_path, ro.n_threads, &error);
  if (ok) {
    ev.ep.kv_type = kv_type;
    ev.ep.n_ctx = (guint32)n_ctx;
    ev.ep.max_chunks = (guint32)max_chunks;
    ev.ep.save_logits_path = save_path;
    ev.ep.base = base;
    ev.func = ppl_run;
    const guint32 N = n_ctx ? (guint32)n_ctx : base ? wh_eval_logits_n_ctx(base) : 512;
    wh_context_params cp = wh_context_default_params();
    cp.n_ctx = cp.n_batch = N;
    cp.kv_type = kv_type;
    ok = wh_cli_gpu_params(ngl, ro.device, wh_model_get_hparams(ev.model), &cp, &error);
    ev.ep.n_gpu_layers = cp.n_gpu_layers;
    ev.ep.device = ro.device;
    ok = ok && wh_cli_eval_run(&ev, "perplexity", N, &error);
  }
  const wh_eval_result r = ev.result;
  wh_cli_eval_clear(&ev);
  wh_eval_logits_free(base);
  if (!ok)
    return wh_cli_fail(cmd, error);

  if (r.has_kld)
    print_kld(&r);
  printf("PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_err);
  return fflush(stdout) == 0 ? WH_CLI_EXIT_OK : WH_CLI_EXIT_FAILURE;
}
