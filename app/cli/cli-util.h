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
#include <json-glib/json-glib.h>
#include <stdio.h>
#include "jobs/jobs.h"
#include "model/model.h"
#include "sample/sample.h"

G_BEGIN_DECLS

#define WH_CLI_EXIT_OK 0
#define WH_CLI_EXIT_FAILURE 1
#define WH_CLI_EXIT_USAGE 2

typedef struct {
  const char *name;                  /* "inspect" */
  const char *summary;               /* one line for `whittle-cli --help` */
  const char *usage;                 /* "FILE [--json]": what follows the command name */
  const char *description;           /* longer text for `whittle-cli help NAME`, may be NULL */
  int (*run)(int argc, char **argv); /* argv[0] is the command name */
} wh_cli_command;

/* Sampling options shared by the commands that generate (run, chat): --temp, --seed,
 * --top-k, --top-p, --min-p, --repeat-penalty, with the same defaults and help everywhere. */
typedef struct {
  double temp, top_p, min_p, repeat_penalty;
  int top_k;
  gint64 seed; /* < 0: random */
} wh_cli_sampling;

void wh_cli_sampling_init(wh_cli_sampling *s);
/* A newly allocated, NULL-terminated copy of @entries followed by the sampling entries that
 * write into @s (free with g_free; the strings are not copied). */
GOptionEntry *wh_cli_sampling_add_entries(const GOptionEntry *entries, wh_cli_sampling *s);
/* FALSE with a usage message for values out of range (--top-k < 0). */
gboolean wh_cli_sampling_check(const wh_cli_command *cmd, const wh_cli_sampling *s);
wh_sampler_params wh_cli_sampling_params(const wh_cli_sampling *s);

/* Options of the commands that run a model (run, chat, logits, perplexity): -t/--threads,
 * --kv-type, --ngl and --device, with the same help everywhere. The strings are owned by the
 * struct (free with wh_cli_run_options_clear()). */
typedef struct {
  int n_threads; /* 0 = all cores */
  char *kv_type; /* NULL = the default (f16) */
  char *ngl;     /* NULL = 0 */
  char *device;  /* NULL = the first GPU */
} wh_cli_run_options;

/* A newly allocated, NULL-terminated copy of @entries followed by the entries that write into
 * @o (free with g_free). */
GOptionEntry *wh_cli_run_add_entries(const GOptionEntry *entries, wh_cli_run_options *o);
/* Checks and converts the values: the KV type into @kv_type (left alone when not given), --ngl
 * into @ngl (a count, G_MAXINT32 for all, or WH_PLANNER_NGL_AUTO). Prints a usage error and
 * returns FALSE for a bad value. */
gboolean wh_cli_run_options_check(const wh_cli_command *cmd, const wh_cli_run_options *o,
                                  wh_kv_type *kv_type, gint32 *ngl);
void wh_cli_run_options_clear(wh_cli_run_options *o);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(wh_cli_run_options, wh_cli_run_options_clear)

/* Parses the command's options with GOption. On a bad option prints a
 * one-line error plus the usage to stderr and returns FALSE (caller exits
 * WH_CLI_EXIT_USAGE). --help prints the full help and exits 0. */
gboolean wh_cli_parse_options(const wh_cli_command *cmd, GOptionEntry *entries, int *argc,
                              char ***argv);

/* Prints "whittle-cli NAME: MESSAGE" plus the usage line; returns
 * WH_CLI_EXIT_USAGE. */
int wh_cli_usage_error(const wh_cli_command *cmd, const char *format, ...) G_GNUC_PRINTF(2, 3);

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
gboolean wh_cli_run_job(wh_job_kind kind, const char *title, wh_job_func func, gpointer user_data,
                        gboolean bytes, gboolean quiet, GError **error);

/* Prints @root (a JSON document built by a command's --json output) pretty-printed on stdout,
 * followed by a newline. Does not take @root. */
void wh_cli_print_json(JsonNode *root);
/* The same for the document built so far in @builder (ended: every object/array closed). */
void wh_cli_print_json_builder(JsonBuilder *builder);

/* Progress line helpers for commands that report progress themselves. */
void wh_cli_progress_print(const char *title, const wh_job_progress *p, gboolean bytes);
void wh_cli_progress_end(void);

/* TRUE when stderr is a terminal. */
gboolean wh_cli_stderr_is_tty(void);

/* --ngl N|auto and --device NAME (run, logits, perplexity). Checks @ngl before anything is
 * loaded: NULL or a count >= 0, or "auto" (*out = -1). Returns FALSE for anything else. */
gboolean wh_cli_parse_ngl(const char *ngl, gint32 *out);
/* Fills n_gpu_layers and device of @cp for a model with hyper-parameters @hp: a count as
 * given; auto = the most layers the memory planner finds room for on the GPU (0, with a
 * line on stderr saying why, when there is no GPU or it has no room). Returns FALSE with
 * @error when the named device does not exist. */
gboolean wh_cli_gpu_params(gint32 ngl, const char *device, const wh_model_hparams *hp,
                           wh_context_params *cp, GError **error);
/* After the context exists: one stderr line when fewer layers than asked for run on the
 * GPU (the context's note), nothing otherwise. */
void wh_cli_gpu_report(const wh_context *ctx);

G_END_DECLS
