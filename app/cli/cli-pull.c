/* cli-pull.c — `whittle-cli pull REPO FILE` / `whittle-cli pull REPO:QUANT`: download into
 * the Hugging Face cache ($HF_HOME/hub), resumable, verified. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli-util.h"
#include "hub/hub-token.h"
#include "hub/hub.h"
#include "library/library.h"

static int run_pull(int argc, char **argv);

const wh_cli_command wh_cli_command_pull = {
    .name = "pull",
    .summary = "Download a model file from the Hugging Face hub (resumable, verified)",
    .usage = "REPO FILE | REPO:QUANT [--revision R] [--segments N] [--quiet]",
    .description =
        "Downloads FILE of REPO, or every part of the GGUF variant with quant label QUANT "
        "(see `whittle-cli files REPO`), into the Hugging Face cache shared with other tools "
        "($HF_HOME/hub). Large files come in parallel segments; the sha256 is checked before "
        "the file is put in place. Interrupted (Ctrl+C, crash, lost network)? Run the same "
        "command again: it continues where it stopped. Prints the path of each file.",
    .run = run_pull,
};

typedef struct {
  wh_hub *hub;
  wh_library *lib;
  const char *repo;
  GPtrArray *files; /* char* */
  GArray *sizes;    /* guint64 per file, 0 when unknown */
  wh_hub_download_params params;
  GPtrArray *paths; /* out */
  GPtrArray *notices;
  wh_job *job;
  guint64 before; /* bytes of earlier files */
  guint64 total;
} pull_state;

static void
on_progress(guint64 done, guint64 total, const char *status, gpointer data)
{
  pull_state *s = data;
  guint64 all = s->total ? s->total : total;
  wh_job_set_progress(s->job, s->before + done, all, status);
}

static gboolean
pull_job(wh_job *job, gpointer data, GError **error)
{
  pull_state *s = data;
  s->job = job;
  s->params.progress = on_progress;
  s->params.progress_data = s;
  for (guint i = 0; i < s->files->len; i++) {
    wh_hub_download_result *r = wh_hub_download(s->hub, s->repo, s->files->pdata[i], &s->params,
                                                wh_job_get_cancellable(job), error);
    if (!r)
      return FALSE;
    g_ptr_array_add(s->paths, g_strdup(r->path));
    /* Recorded so the library lists it as Whittle's own (and offers to delete it). */
    g_autoptr(GError) record_error = NULL;
    if (!wh_library_record_download(s->lib, s->repo, r->commit, s->files->pdata[i], r->path,
                                    &record_error))
      g_ptr_array_add(s->notices, g_strdup_printf("the library will not list %s as a Whittle "
                                                  "download: %s",
                                                  r->path, record_error->message));
    if (r->notice)
      g_ptr_array_add(s->notices, g_strdup(r->notice));
    s->before += r->size;
    wh_hub_download_result_free(r);
  }
  return TRUE;
}

static int
run_pull(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_pull;
  char *revision = NULL;
  int segments = 0;
  gboolean quiet = FALSE;
  GOptionEntry entries[] = {
      {"revision", 'r', 0, G_OPTION_ARG_STRING, &revision, "Branch, tag or commit (default main)",
       "R"},
      {"segments", 0, 0, G_OPTION_ARG_INT, &segments,
       "Parallel segments (default: 4 for files of 32 MiB or more)", "N"},
      {"quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress line", NULL},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  g_autofree char *rev = revision;
  if (argc < 2)
    return wh_cli_usage_error(cmd, "missing REPO FILE or REPO:QUANT");
  if (argc > 3)
    return wh_cli_usage_error(cmd, "unexpected argument '%s'", argv[3]);
  if (segments < 0 || segments > 16)
    return wh_cli_usage_error(cmd, "--segments must be between 1 and 16");
  g_autofree char *repo = NULL;
  g_autofree char *quant = NULL;
  const char *colon = strchr(argv[1], ':');
  if (argc == 2) {
    if (!colon)
      return wh_cli_usage_error(cmd, "give a FILE or write REPO:QUANT (e.g. org/model:Q4_K_M)");
    repo = g_strndup(argv[1], (gsize)(colon - argv[1]));
    quant = g_strdup(colon + 1);
    if (!*quant)
      return wh_cli_usage_error(cmd, "empty QUANT after ':'");
  } else {
    if (colon)
      return wh_cli_usage_error(cmd, "give either REPO FILE or REPO:QUANT, not both");
    repo = g_strdup(argv[1]);
  }
  g_autoptr(GError) error = NULL;
  g_autofree char *title = NULL;
  wh_hub *hub = wh_hub_new(NULL, &error);
  if (!hub)
    return wh_cli_fail(cmd, error);
  wh_hub_use_stored_token(hub, NULL); /* the keyring's token, if `login` stored one */
  pull_state s = {0};
  s.hub = hub;
  s.lib = wh_library_new(NULL);
  s.repo = repo;
  s.files = g_ptr_array_new_with_free_func(g_free);
  s.paths = g_ptr_array_new_with_free_func(g_free);
  s.notices = g_ptr_array_new_with_free_func(g_free);
  wh_hub_download_default_params(&s.params);
  s.params.revision = rev;
  s.params.n_segments = (guint)segments;
  if (segments > 0)
    s.params.segment_threshold = 1; /* asked for: segment any file of 1 MiB or more */
  int rc = WH_CLI_EXIT_OK;
  GPtrArray *files = NULL, *groups = NULL;
  if (quant) {
    files = wh_hub_list_files(hub, repo, rev, NULL, &error);
    if (!files) {
      rc = wh_cli_fail(cmd, error);
      goto out;
    }
    groups = wh_hub_group_gguf_files(files);
    wh_hub_gguf_group *g = wh_hub_find_quant(groups, quant);
    if (!g) {
      GString *have = g_string_new(NULL);
      for (guint i = 0; i < groups->len; i++) {
        wh_hub_gguf_group *x = groups->pdata[i];
        if (x->quant && !strstr(have->str, x->quant))
          g_string_append_printf(have, "%s%s", have->len ? ", " : "", x->quant);
      }
      g_set_error(&error, WH_HUB_ERROR, WH_HUB_ERROR_NOT_FOUND,
                  "%s has no GGUF file with quant %s (available: %s)", repo, quant,
                  have->len ? have->str : "none");
      g_string_free(have, TRUE);
      rc = wh_cli_fail(cmd, error);
      goto out;
    }
    if (!g->complete) {
      g_set_error(&error, WH_HUB_ERROR, WH_HUB_ERROR_NOT_FOUND,
                  "%s: some parts of the split model %s are missing from the repository", repo,
                  g->name);
      rc = wh_cli_fail(cmd, error);
      goto out;
    }
    for (guint i = 0; i < g->files->len; i++) {
      wh_hub_file *f = g->files->pdata[i];
      g_ptr_array_add(s.files, g_strdup(f->path));
      s.total += f->size;
    }
  } else {
    g_ptr_array_add(s.files, g_strdup(argv[2]));
  }
  title = g_strdup_printf("Downloading %s", quant ? argv[1] : argv[2]);
  if (!wh_cli_run_job(WH_JOB_DOWNLOAD, title, pull_job, &s, TRUE, quiet, &error)) {
    rc = wh_cli_fail(cmd, error);
    goto out;
  }
  for (guint i = 0; i < s.notices->len; i++)
    fprintf(stderr, "note: %s\n", (char *)s.notices->pdata[i]);
  for (guint i = 0; i < s.paths->len; i++)
    printf("%s\n", (char *)s.paths->pdata[i]);
  if (fflush(stdout) != 0)
    rc = WH_CLI_EXIT_FAILURE;
out:
  if (groups)
    g_ptr_array_unref(groups);
  if (files)
    g_ptr_array_unref(files);
  g_ptr_array_unref(s.files);
  g_ptr_array_unref(s.paths);
  g_ptr_array_unref(s.notices);
  wh_library_free(s.lib);
  wh_hub_free(hub);
  return rc;
}
