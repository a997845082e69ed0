/* cli-logits.c — `whittle-cli logits`: the logits after every position of a prompt.
 *
 * Contract: tokenizes TEXT with BOS and special tokens parsed (or takes --tokens), prints the
 * ids space-separated on stdout, and writes n_tokens rows of n_vocab little-endian float32
 * logits to OUT (one fresh context, the whole prompt in one batch).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli-util.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

static int run_logits(int argc, char **argv);

const wh_cli_command wh_cli_command_logits = {
    .name = "logits",
    .summary = "Write the logits after every position of a prompt",
    .usage = "-m MODEL (-p TEXT | --tokens \"1 2 3\") -o OUT",
    .description =
        "Tokenizes TEXT (BOS added, special tokens parsed), prints the token ids on\n"
        "stdout and writes n_tokens rows of n_vocab little-endian float32 logits to OUT.",
    .run = run_logits,
};

/* Parses "1 2 3" (spaces, tabs or commas) into @out. */
static gboolean
parse_token_list(const char *text, GArray *out, GError **error)
{
  g_auto(GStrv) parts = g_strsplit_set(text, " \t\n,", -1);
  for (char **p = parts; *p; p++) {
    if (**p == '\0')
      continue;
    gint64 v;
    if (!g_ascii_string_to_signed(*p, 10, 0, G_MAXINT32, &v, error)) {
      g_prefix_error(error, "--tokens: ");
      return FALSE;
    }
    gint32 id = (gint32)v;
    g_array_append_val(out, id);
  }
  return TRUE;
}

static int
run_logits(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_logits;
  g_autofree char *model_path = NULL, *prompt = NULL, *out_path = NULL, *tokens_text = NULL;
  g_auto(wh_cli_run_options) ro = {0};
  gint32 ngl = 0;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "GGUF model file", "MODEL"},
      {"prompt", 'p', 0, G_OPTION_ARG_STRING, &prompt, "Prompt text", "TEXT"},
      {"tokens", 0, 0, G_OPTION_ARG_STRING, &tokens_text, "Token ids instead of text", "\"1 2 3\""},
      {"output", 'o', 0, G_OPTION_ARG_FILENAME, &out_path, "Output file (raw float32)", "OUT"},
      {NULL},
  };
  g_autofree GOptionEntry *all_entries = wh_cli_run_add_entries(entries, &ro);
  if (!wh_cli_parse_options(cmd, all_entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument “%s”", argv[1]);
  if (!model_path || !out_path)
    return wh_cli_usage_error(cmd, "-m MODEL and -o OUT are required");
  if (!prompt == !tokens_text)
    return wh_cli_usage_error(cmd, "give exactly one of -p TEXT and --tokens");
  wh_context_params cp = wh_context_default_params();
  if (!wh_cli_run_options_check(cmd, &ro, &cp.kv_type, &ngl))
    return WH_CLI_EXIT_USAGE;

  g_autoptr(GError) error = NULL;
  wh_model_params mp = wh_model_default_params();
  mp.n_threads = ro.n_threads;
  wh_model *model = wh_model_load(model_path, &mp, &error);
  if (!model)
    return wh_cli_fail(cmd, error);

  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  gboolean ok;
  if (tokens_text) {
    ok = parse_token_list(tokens_text, ids, &error);
  } else {
    wh_tokenizer *tok = wh_tokenizer_new_from_gguf(wh_model_get_gguf(model), &error);
    ok = tok && wh_tokenizer_tokenize(tok, prompt, strlen(prompt), TRUE, TRUE, ids, &error) >= 0;
    wh_tokenizer_free(tok);
  }
  if (ok && ids->len == 0) {
    g_set_error(&error, WH_MODEL_ERROR, WH_MODEL_ERROR_CONTEXT, "the prompt has no tokens");
    ok = FALSE;
  }
  if (!ok) {
    wh_model_free(model);
    return wh_cli_fail(cmd, error);
  }

  for (guint i = 0; i < ids->len; i++)
    printf("%s%d", i ? " " : "", g_array_index(ids, gint32, i));
  printf("\n");
  fflush(stdout);

  cp.n_ctx = MAX(ids->len, 16u);
  cp.n_batch = ids->len;
  wh_context *ctx = NULL;
  if (wh_cli_gpu_params(ngl, ro.device, wh_model_get_hparams(model), &cp, &error))
    ctx = wh_context_new(model, &cp, &error);
  if (ctx)
    wh_cli_gpu_report(ctx);
  const float *logits =
      ctx ? wh_context_decode(ctx, (const gint32 *)ids->data, ids->len, TRUE, &error) : NULL;
  if (logits) {
    const gsize n = (gsize)ids->len * wh_model_n_vocab(model);
    guint32 *le = g_new(guint32, n);
    for (gsize i = 0; i < n; i++) {
      guint32 bits;
      memcpy(&bits, &logits[i], sizeof(bits));
      le[i] = GUINT32_TO_LE(bits);
    }
    ok = g_file_set_contents(out_path, (const char *)le, (gssize)(n * sizeof(guint32)), &error);
    g_free(le);
  } else {
    ok = FALSE;
  }
  wh_context_free(ctx);
  wh_model_free(model);
  return ok ? WH_CLI_EXIT_OK : wh_cli_fail(cmd, error);
}
