/* cli-list.c — `whittle-cli list [--json] [--folder DIR ...]`: the local model library (every
 * GGUF in the Hugging Face cache, Ollama's store, LM Studio's folder and the folders given). */
#include "config.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli-util.h"
#include "library/library.h"

static int run_list(int argc, char **argv);
static int run_rm(int argc, char **argv);

const wh_cli_command wh_cli_command_list = {
    .name = "list",
    .summary = "List the GGUF models on this machine (the library)",
    .usage = "[--json] [--folder DIR ...] [--quiet]",
    .description =
        "Lists, in place, the models found in the Hugging Face cache ($HF_HOME/hub; the ones "
        "`whittle-cli pull` fetched show as source whittle), Ollama's store ($OLLAMA_MODELS or "
        "~/.ollama/models), LM Studio's models folder and every --folder DIR (searched "
        "recursively). Architecture, parameters, quant type and context length come from each "
        "file's GGUF header; a file that cannot be read is listed with the reason. --json "
        "prints a JSON array of objects.",
    .run = run_list,
};

const wh_cli_command wh_cli_command_rm = {
    .name = "rm",
    .summary = "Delete a model Whittle downloaded (frees its disk space)",
    .usage = "MODEL [--yes] [--folder DIR ...]",
    .description =
        "Deletes MODEL (a name, path or id as `whittle-cli list` shows it) when Whittle "
        "downloaded it: its snapshot entries go, and the file itself when no other snapshot "
        "of the repository uses it. Models of Ollama, LM Studio, other Hugging Face tools or "
        "your own folders are never deleted: the command says which tool owns them. Asks "
        "first unless --yes is given.",
    .run = run_rm,
};

typedef struct {
  wh_library *lib;
  wh_job *job;
  GPtrArray *entries;
} list_state;

static void
on_progress(guint done, guint total, const char *status, gpointer data)
{
  list_state *s = data;
  if (s->job)
    wh_job_set_progress(s->job, done, total, status);
}

static gboolean
list_job(wh_job *job, gpointer data, GError **error)
{
  list_state *s = data;
  s->job = job;
  s->entries = wh_library_scan(s->lib, wh_job_get_cancellable(job), error);
  return s->entries != NULL;
}

/* "1.2B", "260K", "15M" (or "-"). */
static char *
format_params(guint64 n)
{
  if (!n)
    return g_strdup("-");
  if (n >= G_GUINT64_CONSTANT(1000000000))
    return g_strdup_printf("%.1fB", n / 1e9);
  if (n >= 1000000)
    return g_strdup_printf("%.1fM", n / 1e6);
  if (n >= 1000)
    return g_strdup_printf("%.0fK", n / 1e3);
  return g_strdup_printf("%" G_GUINT64_FORMAT, n);
}

static void
print_json(GPtrArray *entries)
{
  g_autoptr(JsonNode) root = json_node_new(JSON_NODE_ARRAY);
  JsonArray *a = json_array_new();
  for (guint i = 0; i < entries->len; i++)
    json_array_add_element(a, wh_library_entry_to_json(entries->pdata[i]));
  json_node_take_array(root, a);
  wh_cli_print_json(root);
}

static void
print_table(GPtrArray *entries)
{
  printf("%-44s %-9s %-8s %7s %-8s %8s %10s\n", "NAME", "SOURCE", "ARCH", "PARAMS", "QUANT", "CTX",
         "SIZE");
  for (guint i = 0; i < entries->len; i++) {
    wh_library_entry *e = entries->pdata[i];
    g_autofree char *params = format_params(e->n_params);
    g_autofree char *size = wh_hub_format_size(e->size);
    g_autofree char *ctx = e->context_length
                               ? g_strdup_printf("%" G_GUINT64_FORMAT, e->context_length)
                               : g_strdup("-");
    g_autofree char *name = e->n_shards > 1 ? g_strdup_printf("%s (%u parts)", e->name, e->n_shards)
                            : e->is_projector ? g_strdup_printf("%s (projector)", e->name)
                                              : g_strdup(e->name);
    printf("%-44s %-9s %-8s %7s %-8s %8s %10s\n", name, wh_library_source_to_string(e->source),
           e->architecture ? e->architecture : "-", params, e->quant ? e->quant : "-", ctx, size);
    if (e->error)
      printf("    ! %s\n", e->error);
  }
}

static int
run_list(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_list;
  gboolean json = FALSE, quiet = FALSE;
  char **folders = NULL;
  GOptionEntry entries[] = {
      {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print a JSON array of objects", NULL},
      {"folder", 'f', 0, G_OPTION_ARG_FILENAME_ARRAY, &folders,
       "Also search this folder (repeat for several)", "DIR"},
      {"quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress line", NULL},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  g_auto(GStrv) dirs = folders;
  if (argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument '%s' (use --folder DIR)", argv[1]);
  for (guint i = 0; dirs && dirs[i]; i++) {
    if (!g_file_test(dirs[i], G_FILE_TEST_IS_DIR))
      return wh_cli_usage_error(cmd, "--folder %s: no such folder", dirs[i]);
    char *abs = g_canonicalize_filename(dirs[i], NULL); /* paths in the list are absolute */
    g_free(dirs[i]);
    dirs[i] = abs;
  }
  list_state s = {0};
  wh_library_params p;
  wh_library_default_params(&p);
  p.folders = (const char *const *)dirs;
  p.progress = on_progress;
  p.progress_data = &s;
  s.lib = wh_library_new(&p);
  g_autoptr(GError) error = NULL;
  int rc = WH_CLI_EXIT_OK;
  if (!wh_cli_run_job(WH_JOB_DOWNLOAD, "Scanning the model library", list_job, &s, FALSE,
                      quiet || json, &error)) {
    rc = wh_cli_fail(cmd, error);
  } else {
    if (json)
      print_json(s.entries);
    else if (s.entries->len == 0)
      fprintf(stderr, "no models found (looked in the Hugging Face cache, Ollama and LM Studio; "
                      "add a folder with --folder DIR)\n");
    else
      print_table(s.entries);
    if (fflush(stdout) != 0)
      rc = WH_CLI_EXIT_FAILURE;
  }
  if (s.entries)
    g_ptr_array_unref(s.entries);
  wh_library_free(s.lib);
  return rc;
}

/* The entries MODEL designates: by name, by id (canonical path) or by any of their paths. */
static GPtrArray *
find_entries(GPtrArray *entries, const char *model)
{
  g_autofree char *canon = g_canonicalize_filename(model, NULL);
  GPtrArray *hits = g_ptr_array_new();
  for (guint i = 0; i < entries->len; i++) {
    wh_library_entry *e = entries->pdata[i];
    gboolean hit = strcmp(e->name, model) == 0 || strcmp(e->id, canon) == 0;
    for (guint k = 0; !hit && e->paths[k]; k++)
      hit = strcmp(e->paths[k], model) == 0 || strcmp(e->paths[k], canon) == 0;
    if (hit)
      g_ptr_array_add(hits, e);
  }
  return hits;
}

static gboolean
confirm(const wh_library_entry *e)
{
  g_autofree char *size = wh_hub_format_size(e->size);
  fprintf(stderr, "Delete %s (%s, %s)? [y/N] ", e->name, size, e->repo_id ? e->repo_id : "");
  fflush(stderr);
  char line[16] = "";
  if (!fgets(line, sizeof line, stdin))
    return FALSE;
  return line[0] == 'y' || line[0] == 'Y';
}

static int
run_rm(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_rm;
  gboolean yes = FALSE;
  char **folders = NULL;
  GOptionEntry entries[] = {
      {"yes", 'y', 0, G_OPTION_ARG_NONE, &yes, "Do not ask", NULL},
      {"folder", 'f', 0, G_OPTION_ARG_FILENAME_ARRAY, &folders,
       "Also search this folder (to name a model found there)", "DIR"},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  g_auto(GStrv) dirs = folders;
  if (argc < 2)
    return wh_cli_usage_error(cmd, "missing MODEL (see `whittle-cli list`)");
  if (argc > 2)
    return wh_cli_usage_error(cmd, "unexpected argument '%s'", argv[2]);
  if (!yes && !isatty(STDIN_FILENO))
    return wh_cli_usage_error(cmd, "standard input is not a terminal: add --yes to delete");
  wh_library_params p;
  wh_library_default_params(&p);
  p.folders = (const char *const *)dirs;
  wh_library *lib = wh_library_new(&p);
  g_autoptr(GError) error = NULL;
  int rc = WH_CLI_EXIT_OK;
  GPtrArray *all = wh_library_scan(lib, NULL, &error);
  g_autoptr(GPtrArray) hits = all ? find_entries(all, argv[1]) : NULL;
  if (!all) {
    rc = wh_cli_fail(cmd, error);
  } else if (hits->len == 0) {
    g_set_error(&error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_NOT_FOUND,
                "no model named %s in the library (see `whittle-cli list`)", argv[1]);
    rc = wh_cli_fail(cmd, error);
  } else if (hits->len > 1) {
    GString *ids = g_string_new(NULL);
    for (guint i = 0; i < hits->len; i++)
      g_string_append_printf(ids, "\n  %s", ((wh_library_entry *)hits->pdata[i])->id);
    g_set_error(&error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_INVALID,
                "%u models are named %s; give the path of the one to delete:%s", hits->len, argv[1],
                ids->str);
    g_string_free(ids, TRUE);
    rc = wh_cli_fail(cmd, error);
  } else {
    wh_library_entry *e = hits->pdata[0];
    if (e->deletable && !yes && !confirm(e)) {
      fprintf(stderr, "nothing deleted\n");
    } else if (!wh_library_delete(lib, e, &error)) {
      rc = wh_cli_fail(cmd, error);
    } else {
      g_autofree char *size = wh_hub_format_size(e->size);
      fprintf(stderr, "deleted %s (%s)\n", e->name, size);
    }
  }
  if (all)
    g_ptr_array_unref(all);
  wh_library_free(lib);
  return rc;
}
