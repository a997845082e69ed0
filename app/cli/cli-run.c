/* cli-run.c — `whittle-cli run`: stream a completion of a prompt.
 *
 * The completion goes to stdout as it is generated (whole UTF-8 characters only); the prompt
 * is not echoed. Timing (time to first token, prompt and generation speed) goes to stderr at
 * the end. --temp 0 is greedy. Generation stops at N tokens or an end-of-generation token;
 * a full context shifts (the older half is dropped).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli-util.h"
#include "model/model.h"
#include "planner/planner.h"
#include "sample/sample.h"
#include "tokenizer/tokenizer.h"

static int run_run(int argc, char **argv);

const wh_cli_command wh_cli_command_run = {
    .name = "run",
    .summary = "Generate a completion of a prompt",
    .usage = "-m MODEL -p PROMPT [-n N] [--temp T] [--seed S] [--top-k K] [--top-p P] "
             "[--min-p P] [--repeat-penalty R] [-t THREADS] [-c CTX]",
    .description = "Streams the completion to stdout; prints time to first token and tokens/s\n"
                   "to stderr. --temp 0 is greedy decoding.",
    .run = run_run,
};

static void
print_memory(const wh_context *ctx, gboolean json)
{
  wh_memory_plan planned, alloc;
  wh_context_get_memory(ctx, &planned, &alloc);
  if (json) {
    /* The planner's printer: the same object as `plan --json`. */
    wh_plan plan;
    wh_plan_from_context(ctx, NULL, &plan);
    g_autoptr(GString) s = g_string_new(NULL);
    wh_plan_append_json(&plan, s);
    printf("%s\n", s->str);
    return;
  }
  fprintf(stderr,
          "memory (allocated / planned, bytes):\n"
          "  weights  %" G_GUINT64_FORMAT " / %" G_GUINT64_FORMAT " (mapped)\n"
          "  kv_cache %" G_GUINT64_FORMAT " / %" G_GUINT64_FORMAT "\n"
          "  compute  %" G_GUINT64_FORMAT " / %" G_GUINT64_FORMAT "\n"
          "  output   %" G_GUINT64_FORMAT " / %" G_GUINT64_FORMAT "\n"
          "  overhead %" G_GUINT64_FORMAT " / %" G_GUINT64_FORMAT "\n"
          "  total    %" G_GUINT64_FORMAT " / %" G_GUINT64_FORMAT "\n",
          alloc.weights, planned.weights, alloc.kv_cache, planned.kv_cache, alloc.compute,
          planned.compute, alloc.output, planned.output, alloc.overhead, planned.overhead,
          alloc.total, planned.total);
}

static int
run_run(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_run;
  g_autofree char *model_path = NULL, *prompt = NULL;
  g_auto(wh_cli_run_options) ro = {0};
  gint32 ngl = 0;
  int n_predict = 128, n_ctx = 0;
  wh_cli_sampling sampling;
  wh_cli_sampling_init(&sampling);
  gboolean report_memory = FALSE, json = FALSE;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "GGUF model file", "MODEL"},
      {"prompt", 'p', 0, G_OPTION_ARG_STRING, &prompt, "Prompt text", "PROMPT"},
      {"n-predict", 'n', 0, G_OPTION_ARG_INT, &n_predict, "Tokens to generate (default 128)", "N"},
      {"ctx-size", 'c', 0, G_OPTION_ARG_INT, &n_ctx, "Context size (default: min(train, 4096))",
       "CTX"},
      {"report-memory", 0, 0, G_OPTION_ARG_NONE, &report_memory,
       "Print the memory allocated per component", NULL},
      {"json", 0, 0, G_OPTION_ARG_NONE, &json, "With --report-memory: one JSON object on stdout",
       NULL},
      {NULL},
  };
  g_autofree GOptionEntry *run_entries = wh_cli_run_add_entries(entries, &ro);
  g_autofree GOptionEntry *all_entries = wh_cli_sampling_add_entries(run_entries, &sampling);
  if (!wh_cli_parse_options(cmd, all_entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument “%s”", argv[1]);
  if (!model_path || !prompt)
    return wh_cli_usage_error(cmd, "-m MODEL and -p PROMPT are required");
  if (n_predict < 0 || n_ctx < 0)
    return wh_cli_usage_error(cmd, "-n and -c must not be negative");
  if (!wh_cli_sampling_check(cmd, &sampling))
    return WH_CLI_EXIT_USAGE;
  wh_context_params cp = wh_context_default_params();
  cp.n_ctx = (guint32)n_ctx;
  cp.n_threads = ro.n_threads;
  if (!wh_cli_run_options_check(cmd, &ro, &cp.kv_type, &ngl))
    return WH_CLI_EXIT_USAGE;

  wh_sampler_params sp = wh_cli_sampling_params(&sampling);

  g_autoptr(GError) error = NULL;
  wh_model_params mp = wh_model_default_params();
  mp.n_threads = ro.n_threads;
  wh_model *model = wh_model_load(model_path, &mp, &error);
  if (!model)
    return wh_cli_fail(cmd, error);
  wh_tokenizer *tok = wh_tokenizer_new_from_gguf(wh_model_get_gguf(model), &error);
  wh_context *ctx = NULL;
  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  if (tok && wh_tokenizer_tokenize(tok, prompt, strlen(prompt), TRUE, TRUE, ids, &error) >= 0) {
    if (ids->len == 0)
      g_set_error(&error, WH_MODEL_ERROR, WH_MODEL_ERROR_CONTEXT, "the prompt has no tokens");
    else if (wh_cli_gpu_params(ngl, ro.device, wh_model_get_hparams(model), &cp, &error))
      ctx = wh_context_new(model, &cp, &error);
  }
  if (ctx)
    wh_cli_gpu_report(ctx);
  if (!ctx) {
    wh_tokenizer_free(tok);
    wh_model_free(model);
    return wh_cli_fail(cmd, error);
  }
  if (report_memory)
    print_memory(ctx, json);

  wh_sampler *sampler = wh_sampler_new(&sp);
  wh_detokenizer *detok = wh_detokenizer_new(tok, FALSE);
  g_autoptr(GString) piece = g_string_new(NULL);
  for (guint i = 0; i < ids->len; i++)
    wh_sampler_accept(sampler, g_array_index(ids, gint32, i));

  const guint32 n_vocab = wh_model_n_vocab(model);
  gint64 t0 = g_get_monotonic_time(), t_first = 0, t_prompt = 0;
  int n_gen = 0;
  const float *logits = wh_context_decode(ctx, (const gint32 *)ids->data, ids->len, FALSE, &error);
  t_prompt = g_get_monotonic_time();
  while (logits && n_gen < n_predict) {
    gint32 next = wh_sampler_sample(sampler, logits, (int)n_vocab);
    if (n_gen == 0)
      t_first = g_get_monotonic_time();
    if (wh_tokenizer_is_eog(tok, next))
      break;
    wh_sampler_accept(sampler, next);
    n_gen++;
    g_string_truncate(piece, 0);
    if (!json && wh_detokenizer_push(detok, next, piece) > 0) {
      fwrite(piece->str, 1, piece->len, stdout);
      fflush(stdout);
    }
    if (n_gen == n_predict)
      break;
    logits = wh_context_decode(ctx, &next, 1, FALSE, &error);
  }
  gint64 t_end = g_get_monotonic_time();
  g_string_truncate(piece, 0);
  if (!json && wh_detokenizer_flush(detok, piece) > 0)
    fwrite(piece->str, 1, piece->len, stdout);
  if (!json)
    printf("\n");
  fflush(stdout);

  int status = WH_CLI_EXIT_OK;
  if (!logits) {
    status = wh_cli_fail(cmd, error);
  } else {
    double prompt_s = (t_prompt - t0) / 1e6, gen_s = (t_end - t_prompt) / 1e6;
    fprintf(stderr,
            "prompt: %u tokens in %.3f s (%.1f tokens/s); time to first token %.1f ms\n"
            "generation: %d tokens in %.3f s (%.2f tokens/s); seed %" G_GUINT64_FORMAT "\n",
            ids->len, prompt_s, prompt_s > 0 ? ids->len / prompt_s : 0.0,
            (t_first ? t_first - t0 : t_end - t0) / 1e3, n_gen, gen_s,
            gen_s > 0 ? n_gen / gen_s : 0.0, wh_sampler_get_seed(sampler));
  }
  wh_detokenizer_free(detok);
  wh_sampler_free(sampler);
  wh_context_free(ctx);
  wh_tokenizer_free(tok);
  wh_model_free(model);
  return status;
}
