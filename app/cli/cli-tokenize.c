/* cli-tokenize.c — `whittle-cli tokenize`: token ids of test strings.
 *
 * FILE holds strings separated by the line `__ggml_vocab_test__` (each separator is
 * "\n__ggml_vocab_test__\n", as in the shared .inp files; a separator at the very end of the
 * file closes the last string). Prints one line of space-separated ids per string, by
 * default without BOS and without parsing special tokens, so the output equals the shared
 * .out files byte for byte.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli-util.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

#define SEPARATOR "\n__ggml_vocab_test__\n"

static int run_tokenize(int argc, char **argv);

const wh_cli_command wh_cli_command_tokenize = {
    .name = "tokenize",
    .summary = "Print the token ids of test strings",
    .usage = "-m MODEL -f FILE [--add-special] [--parse-special]",
    .description =
        "FILE holds strings separated by the line __ggml_vocab_test__ (the layout of the "
        "shared .inp files). Prints one line of space-separated token ids per string.\n"
        "By default no BOS/EOS is added and special tokens written in the text are not "
        "recognised; --add-special and --parse-special turn these on.",
    .run = run_tokenize,
};

static int
run_tokenize(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_tokenize;
  g_autofree char *model_path = NULL, *file_path = NULL;
  gboolean add_special = FALSE, parse_special = FALSE;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "GGUF file with a vocabulary", "MODEL"},
      {"file", 'f', 0, G_OPTION_ARG_FILENAME, &file_path, "Strings to tokenize", "FILE"},
      {"add-special", 0, 0, G_OPTION_ARG_NONE, &add_special, "Add BOS/EOS as the model asks", NULL},
      {"parse-special", 0, 0, G_OPTION_ARG_NONE, &parse_special,
       "Recognise control tokens written in the text", NULL},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument '%s'", argv[1]);
  if (!model_path || !file_path)
    return wh_cli_usage_error(cmd, "both -m MODEL and -f FILE are required");

  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  gsize text_len = 0;
  if (!g_file_get_contents(file_path, &text, &text_len, &error))
    return wh_cli_fail(cmd, error);
  wh_gguf *g = wh_gguf_open(model_path, &error);
  if (!g)
    return wh_cli_fail(cmd, error);
  g_autoptr(wh_tokenizer) tok = wh_tokenizer_new_from_gguf(g, &error);
  wh_gguf_close(g);
  if (!tok)
    return wh_cli_fail(cmd, error);

  const gsize sep_len = strlen(SEPARATOR);
  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  GString *line = g_string_new(NULL);
  gsize pos = 0;
  int rc = WH_CLI_EXIT_OK;
  while (pos <= text_len) {
    const char *s = text + pos;
    gsize rest = text_len - pos;
    gsize len = rest, next = text_len + 1;
    for (gsize i = 0; i + sep_len <= rest; i++) {
      if (s[i] == '\n' && memcmp(s + i, SEPARATOR, sep_len) == 0) {
        len = i;
        next = pos + i + sep_len;
        break;
      }
    }
    /* A file that ends with a separator (with or without its final newline) has no empty
     * string after it. */
    if (next > text_len && rest == sep_len - 1 && memcmp(s, SEPARATOR, sep_len - 1) == 0)
      break;
    if (next > text_len && rest == 0 && pos > 0)
      break;
    g_array_set_size(ids, 0);
    if (wh_tokenizer_tokenize(tok, s, len, add_special, parse_special, ids, &error) < 0) {
      rc = wh_cli_fail(cmd, error);
      break;
    }
    g_string_truncate(line, 0);
    for (guint i = 0; i < ids->len; i++)
      g_string_append_printf(line, " %d", g_array_index(ids, gint32, i));
    g_string_append_c(line, '\n');
    fwrite(line->str, 1, line->len, stdout);
    pos = next;
  }
  g_string_free(line, TRUE);
  if (fflush(stdout) != 0 && rc == WH_CLI_EXIT_OK)
    rc = WH_CLI_EXIT_FAILURE;
  return rc;
}
