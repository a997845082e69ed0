/* whittle-cli.c — the headless front end: a subcommand dispatcher.
 *
 * Every engine capability is reachable from here. Each subcommand is one
 * file, cli-<name>.c (see cli-util.h); this file only knows the table.
 */
#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cli-util.h"

/* The table. A command is listed when meson found its file. */
#define WH_CLI_DECLARE(name) extern const wh_cli_command wh_cli_command_##name;
#ifdef WH_CLI_HAVE_INSPECT
WH_CLI_DECLARE(inspect)
#endif
#ifdef WH_CLI_HAVE_QUANTIZE
WH_CLI_DECLARE(quantize)
#endif
#ifdef WH_CLI_HAVE_CONVERT
WH_CLI_DECLARE(convert)
#endif
#ifdef WH_CLI_HAVE_SYNTH
WH_CLI_DECLARE(synth)
#endif
#ifdef WH_CLI_HAVE_TOKENIZE
WH_CLI_DECLARE(tokenize)
#endif
#ifdef WH_CLI_HAVE_TEMPLATE
WH_CLI_DECLARE(template)
#endif
#ifdef WH_CLI_HAVE_LOGITS
WH_CLI_DECLARE(logits)
#endif
#ifdef WH_CLI_HAVE_RUN
WH_CLI_DECLARE(run)
#endif
#ifdef WH_CLI_HAVE_CHAT
WH_CLI_DECLARE(chat)
#endif
#ifdef WH_CLI_HAVE_PERPLEXITY
WH_CLI_DECLARE(perplexity)
#endif
#ifdef WH_CLI_HAVE_IMATRIX
WH_CLI_DECLARE(imatrix)
#endif
#ifdef WH_CLI_HAVE_BENCH
WH_CLI_DECLARE(bench)
#endif
#ifdef WH_CLI_HAVE_PLAN
WH_CLI_DECLARE(plan)
#endif
#ifdef WH_CLI_HAVE_DEVICES
WH_CLI_DECLARE(devices)
#endif
#ifdef WH_CLI_HAVE_SEARCH
WH_CLI_DECLARE(search)
#endif
#ifdef WH_CLI_HAVE_FILES
WH_CLI_DECLARE(files)
#endif
#ifdef WH_CLI_HAVE_PULL
WH_CLI_DECLARE(pull)
#endif
#ifdef WH_CLI_HAVE_LIST
WH_CLI_DECLARE(list)
WH_CLI_DECLARE(rm)
#endif
#ifdef WH_CLI_HAVE_LOGIN
WH_CLI_DECLARE(login)
WH_CLI_DECLARE(logout)
#endif

static const wh_cli_command *const commands[] = {
#ifdef WH_CLI_HAVE_SEARCH
  &wh_cli_command_search,
#endif
#ifdef WH_CLI_HAVE_FILES
  &wh_cli_command_files,
#endif
#ifdef WH_CLI_HAVE_PULL
  &wh_cli_command_pull,
#endif
#ifdef WH_CLI_HAVE_LIST
  &wh_cli_command_list,
  &wh_cli_command_rm,
#endif
#ifdef WH_CLI_HAVE_LOGIN
  &wh_cli_command_login,
  &wh_cli_command_logout,
#endif
#ifdef WH_CLI_HAVE_INSPECT
  &wh_cli_command_inspect,
#endif
#ifdef WH_CLI_HAVE_PLAN
  &wh_cli_command_plan,
#endif
#ifdef WH_CLI_HAVE_DEVICES
  &wh_cli_command_devices,
#endif
#ifdef WH_CLI_HAVE_QUANTIZE
  &wh_cli_command_quantize,
#endif
#ifdef WH_CLI_HAVE_CONVERT
  &wh_cli_command_convert,
#endif
#ifdef WH_CLI_HAVE_IMATRIX
  &wh_cli_command_imatrix,
#endif
#ifdef WH_CLI_HAVE_RUN
  &wh_cli_command_run,
#endif
#ifdef WH_CLI_HAVE_CHAT
  &wh_cli_command_chat,
#endif
#ifdef WH_CLI_HAVE_TOKENIZE
  &wh_cli_command_tokenize,
#endif
#ifdef WH_CLI_HAVE_TEMPLATE
  &wh_cli_command_template,
#endif
#ifdef WH_CLI_HAVE_LOGITS
  &wh_cli_command_logits,
#endif
#ifdef WH_CLI_HAVE_PERPLEXITY
  &wh_cli_command_perplexity,
#endif
#ifdef WH_CLI_HAVE_BENCH
  &wh_cli_command_bench,
#endif
#ifdef WH_CLI_HAVE_SYNTH
  &wh_cli_command_synth,
#endif
  NULL,
};

static const wh_cli_command *
find_command(const char *name)
{
  for (guint i = 0; commands[i]; i++)
    if (strcmp(commands[i]->name, name) == 0)
      return commands[i];
  return NULL;
}

static void
print_main_usage(FILE *out)
{
  fprintf(out,
          "Usage: whittle-cli COMMAND [OPTIONS…]\n"
          "       whittle-cli help COMMAND\n"
          "       whittle-cli --version\n"
          "\n"
          "Run, shrink and plan language models locally.\n"
          "\n"
          "Commands:\n");
  for (guint i = 0; commands[i]; i++)
    fprintf(out, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
  fprintf(out, "  %-12s %s\n", "help", "Show the help of a command");
  fprintf(out,
          "\n"
          "Progress goes to stderr; results to stdout (--json where offered).\n"
          "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

static int
print_command_help(const char *name)
{
  const wh_cli_command *cmd = find_command(name);
  if (!cmd) {
    fprintf(stderr, "whittle-cli: unknown command '%s'\n", name);
    print_main_usage(stderr);
    return WH_CLI_EXIT_USAGE;
  }
  /* The command's own --help lists its options too. */
  char *argv[] = { (char *)cmd->name, (char *)"--help", NULL };
  return cmd->run(2, argv);
}

int
main(int argc, char **argv)
{
  setlocale(LC_ALL, "");
  bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
  textdomain(GETTEXT_PACKAGE);
  g_set_prgname("whittle-cli");

  if (argc < 2) {
    print_main_usage(stderr);
    return WH_CLI_EXIT_USAGE;
  }

  const char *first = argv[1];
  if (strcmp(first, "--version") == 0 || strcmp(first, "-V") == 0) {
    printf("whittle-cli %s\n", PACKAGE_VERSION);
    return WH_CLI_EXIT_OK;
  }
  if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0) {
    print_main_usage(stdout);
    return WH_CLI_EXIT_OK;
  }
  if (strcmp(first, "help") == 0) {
    if (argc < 3) {
      print_main_usage(stdout);
      return WH_CLI_EXIT_OK;
    }
    return print_command_help(argv[2]);
  }
  if (first[0] == '-') {
    fprintf(stderr, "whittle-cli: unknown option '%s'\n", first);
    print_main_usage(stderr);
    return WH_CLI_EXIT_USAGE;
  }

  const wh_cli_command *cmd = find_command(first);
  if (!cmd) {
    fprintf(stderr, "whittle-cli: unknown command '%s'\n", first);
    print_main_usage(stderr);
    return WH_CLI_EXIT_USAGE;
  }
  return cmd->run(argc - 1, argv + 1);
}
