/* cli-util.h — what every whittle-cli subcommand shares.
 *
 * A subcommand lives in cli-<name>.c and defines
 *   const wh_cli_command wh_cli_command_<name> = { ... };
 * The dispatcher (whittle-cli.c) lists it when the file exists.
 *
 * Conventions every command keeps:
 *  - results on stdout (machine-readable with --json where offered),
 *    progress and diagnostics on stderr;
 *  - exit 0 on success, 1 on a failure of the work (with a one-line
 *    "whittle-cli NAME: <message>" on stderr), 2 on a usage error (one-line
 *    error, then the usage);
 *  - long work goes through the job queue (wh_cli_run_job), so Ctrl+C
 *    cancels cleanly and progress looks the same everywhere.
 */
#pragma once

#include <glib.h>
#include <stdio.h>
#include "jobs/jobs.h"

G_BEGIN_DECLS

#define WH_CLI_EXIT_OK 0
#define WH_CLI_EXIT_FAILURE 1
#define WH_CLI_EXIT_USAGE 2

typedef struct {
  const char *name;      /* "inspect" */
  const char *summary;   /* one line for `whittle-cli --help` */
  const char *usage;     /* "FILE [--json]": what follows the command name */
  const char *description; /* longer text for `whittle-cli help NAME`, may be NULL */
  int (*run)(int argc, char **argv); /* argv[0] is the command name */
} wh_cli_command;

/* Parses the command's options with GOption. On a bad option prints a
 * one-line error plus the usage to stderr and returns FALSE (caller exits
 * WH_CLI_EXIT_USAGE). --help prints the full help and exits 0. */
gboolean wh_cli_parse_options(const wh_cli_command *cmd, GOptionEntry *entries,
                              int *argc, char ***argv);

/* Prints "whittle-cli NAME: MESSAGE" plus the usage line; returns
 * WH_CLI_EXIT_USAGE. */
int wh_cli_usage_error(const wh_cli_command *cmd, const char *format, ...)
    G_GNUC_PRINTF(2, 3);

/* Prints "whittle-cli NAME: MESSAGE" for @error and returns
 * WH_CLI_EXIT_FAILURE. */
int wh_cli_fail(const wh_cli_command *cmd, const GError *error);

/* Prints the usage block of @cmd to @out. */
void wh_cli_print_usage(const wh_cli_command *cmd, FILE *out);

/* Runs @func as a job on a private queue, showing progress on stderr (one
 * updating line on a terminal, a plain line per second otherwise, nothing
 * with quiet), cancelling on SIGINT/SIGTERM. Returns TRUE on success; on
 * failure or cancel sets @error. Results travel through @user_data.
 * @bytes: progress units are bytes. */
gboolean wh_cli_run_job(wh_job_kind kind, const char *title, wh_job_func func,
                        gpointer user_data, gboolean bytes, gboolean quiet,
                        GError **error);

/* Progress line helpers for commands that report progress themselves. */
void wh_cli_progress_print(const char *title, const wh_job_progress *p,
                           gboolean bytes);
void wh_cli_progress_end(void);

/* TRUE when stderr is a terminal. */
gboolean wh_cli_stderr_is_tty(void);

G_END_DECLS
