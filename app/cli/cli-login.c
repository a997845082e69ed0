/* cli-login.c — `whittle-cli login [--token-stdin]` and `whittle-cli logout`: the Hugging Face
 * token in the Secret Service (keyring), or in $HF_HOME/token when no keyring is reachable. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli-util.h"
#include "hub/hub-token.h"

static int run_login(int argc, char **argv);
static int run_logout(int argc, char **argv);

const wh_cli_command wh_cli_command_login = {
    .name = "login",
    .summary = "Store your Hugging Face access token (in the keyring)",
    .usage = "[--token-stdin] [--no-file]",
    .description =
        "Asks for a Hugging Face access token (create one at "
        "https://huggingface.co/settings/tokens; read access is enough) and stores it in your "
        "keyring through the Secret Service, for the hub in HF_ENDPOINT. search, files and pull "
        "then use it for gated and private models. When no keyring is reachable the token is "
        "saved to $HF_HOME/token (readable only by you, shared with other Hugging Face tools) "
        "and the command says so; --no-file refuses that fallback. --token-stdin reads the "
        "token from the first line of standard input instead of asking. The token is never "
        "printed.",
    .run = run_login,
};

const wh_cli_command wh_cli_command_logout = {
    .name = "logout",
    .summary = "Remove the stored Hugging Face token",
    .usage = "[--keep-file]",
    .description = "Removes the token of the hub in HF_ENDPOINT from your keyring, and the token "
                   "file $HF_HOME/token unless --keep-file is given.",
    .run = run_logout,
};

/* Reads one line from @in without the line break; NULL at end of input. Wiped by the caller. */
static char *
read_line(FILE *in)
{
  GString *s = g_string_new(NULL);
  int c;
  while ((c = fgetc(in)) != EOF && c != '\n')
    if (s->len < 4096)
      g_string_append_c(s, (char)c);
  if (c == EOF && s->len == 0) {
    g_string_free(s, TRUE);
    return NULL;
  }
  if (s->len && s->str[s->len - 1] == '\r')
    g_string_truncate(s, s->len - 1);
  return g_string_free(s, FALSE);
}

static char *
ask_token(void)
{
  struct termios old, quiet;
  gboolean tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
  fprintf(stderr, "Hugging Face token (not shown): ");
  fflush(stderr);
  if (tty) {
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  char *t = read_line(stdin);
  if (tty)
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
  fprintf(stderr, "\n");
  return t;
}

static int
run_login(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_login;
  gboolean from_stdin = FALSE, no_file = FALSE;
  GOptionEntry entries[] = {
      {"token-stdin", 0, 0, G_OPTION_ARG_NONE, &from_stdin, "Read the token from standard input",
       NULL},
      {"no-file", 0, 0, G_OPTION_ARG_NONE, &no_file,
       "Fail instead of saving to $HF_HOME/token when no keyring is reachable", NULL},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument (never put the token on the command "
                                   "line: other users can see it; use --token-stdin)");
  if (!from_stdin && !isatty(STDIN_FILENO))
    return wh_cli_usage_error(cmd, "standard input is not a terminal: use --token-stdin");
  char *token = from_stdin ? read_line(stdin) : ask_token();
  if (token)
    g_strstrip(token);
  g_autoptr(GError) error = NULL;
  g_autofree char *notice = NULL;
  wh_hub_token_source where = WH_HUB_TOKEN_FROM_NONE;
  gboolean ok =
      token && wh_hub_token_store(NULL, NULL, token, !no_file, &where, &notice, NULL, &error);
  if (token) {
    memset(token, 0, strlen(token));
    g_free(token);
  } else {
    g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "no token given");
  }
  if (!ok)
    return wh_cli_fail(cmd, error);
  fprintf(stderr, "%s\n", notice);
  return WH_CLI_EXIT_OK;
}

static int
run_logout(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_logout;
  gboolean keep_file = FALSE;
  GOptionEntry entries[] = {
      {"keep-file", 0, 0, G_OPTION_ARG_NONE, &keep_file, "Leave $HF_HOME/token in place", NULL},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument '%s'", argv[1]);
  g_autoptr(GError) error = NULL;
  g_autofree char *notice = NULL;
  if (!wh_hub_token_clear(NULL, NULL, !keep_file, &notice, NULL, &error))
    return wh_cli_fail(cmd, error);
  fprintf(stderr, "%s\n", notice);
  return WH_CLI_EXIT_OK;
}
