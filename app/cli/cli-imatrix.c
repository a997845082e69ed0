/* cli-imatrix.c — `whittle-cli imatrix`: compute an importance matrix for the quantizer.
 *
 * Tokenizes the calibration text with BOS, runs it in chunks of N tokens (BOS first, like
 * perplexity) and writes the sums of squared matmul inputs per weight column in the GGUF
 * imatrix format (engine/eval/eval.h, gguf-container.md §8). `quantize --imatrix` reads it.
 */
#include "config.h"

#include <stdio.h>

#include "cli-eval.h"

static int run_imatrix(int argc, char **argv);

const wh_cli_command wh_cli_command_imatrix = {
    .name = "imatrix",
    .summary = "Compute an importance matrix from a calibration text",
    .usage = "-m MODEL -f TEXT -o OUT.gguf [-c N] [--chunks N] [-t THREADS] [--process-output]",
    .description = "Runs TEXT through the model in chunks of N tokens (default 512, BOS first)\n"
                   "and writes, for every blk.* weight matrix, the sum of the squared inputs of\n"
                   "each column and the token count, in the GGUF imatrix format that\n"
                   "`whittle-cli quantize --imatrix` reads. Prints the perplexity of the run.",
    .run = run_imatrix,
};

typedef struct {
  const char *out_path;
  const char *datasets[2];
} imatrix_out;

static gboolean
im_run(wh_cli_eval *ev, GError **error)
{
  const imatrix_out *o = ev->data;
  return wh_eval_imatrix(ev->model, (const gint32 *)ev->ids->data, ev->ids->len, ev->bos, &ev->ep,
                         o->out_path, o->datasets, &ev->result, error);
}

static int
run_imatrix(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_imatrix;
  g_autofree char *model_path = NULL, *text_path = NULL, *out_path = NULL;
  int n_ctx = 512, n_threads = 0, max_chunks = 0;
  gboolean process_output = FALSE;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "GGUF model file", "MODEL"},
      {"file", 'f', 0, G_OPTION_ARG_FILENAME, &text_path, "Calibration text", "TEXT"},
      {"output", 'o', 0, G_OPTION_ARG_FILENAME, &out_path, "Imatrix file to write (GGUF)",
       "OUT.gguf"},
      {"ctx-size", 'c', 0, G_OPTION_ARG_INT, &n_ctx, "Tokens per chunk (default 512)", "N"},
      {"chunks", 0, 0, G_OPTION_ARG_INT, &max_chunks, "Process at most N chunks (default: all)",
       "N"},
      {"threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "Compute threads (default: all cores)",
       "N"},
      {"process-output", 0, 0, G_OPTION_ARG_NONE, &process_output, "Also collect output.weight",
       NULL},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument “%s”", argv[1]);
  if (!model_path || !text_path || !out_path)
    return wh_cli_usage_error(cmd, "-m MODEL, -f TEXT and -o OUT.gguf are required");
  if (n_ctx < 16)
    return wh_cli_usage_error(cmd, "-c must be at least 16 (shorter multiplications are not "
                                   "collected)");
  if (max_chunks < 0)
    return wh_cli_usage_error(cmd, "--chunks must not be negative");

  g_autoptr(GError) error = NULL;
  g_autofree char *dataset = g_path_get_basename(text_path);
  imatrix_out out = {out_path, {dataset, NULL}};
  wh_cli_eval ev;
  gboolean ok = wh_cli_eval_load(&ev, model_path, text_path, n_threads, &error);
  if (ok) {
    ev.ep.n_ctx = (guint32)n_ctx;
    ev.ep.max_chunks = (guint32)max_chunks;
    ev.ep.imatrix_output = process_output;
    ev.func = im_run;
    ev.data = &out;
    ok = wh_cli_eval_run(&ev, "imatrix", (guint32)n_ctx, &error);
  }
  const wh_eval_result r = ev.result;
  wh_cli_eval_clear(&ev);
  if (!ok)
    return wh_cli_fail(cmd, error);
  printf("imatrix: %u chunks of %u tokens written to %s\n", r.n_chunks, r.n_ctx, out_path);
  printf("PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_err);
  return fflush(stdout) == 0 ? WH_CLI_EXIT_OK : WH_CLI_EXIT_FAILURE;
}
