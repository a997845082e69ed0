/* cli-files.c — `whittle-cli files REPO [--revision R] [--json]`: the files of a model
 * repository with size, sha256 and quant label, GGUF variants grouped (split shards,
 * projectors). */
#include "config.h"

#include <json-glib/json-glib.h>
#include <stdio.h>

#include "cli-util.h"
#include "hub/hub-token.h"
#include "hub/hub.h"

static int run_files(int argc, char **argv);

const wh_cli_command wh_cli_command_files = {
    .name = "files",
    .summary = "List the files of a Hugging Face model repository",
    .usage = "REPO [--revision R] [--json]",
    .description =
        "Prints every file of REPO (ORGANISATION/NAME) with its size, sha256 (for LFS files) "
        "and quant label, then the GGUF variants you can pull with `whittle-cli pull "
        "REPO:QUANT` (split files grouped, projector files listed with their model). --json "
        "prints {\"files\": [...], \"variants\": [...]}.",
    .run = run_files,
};

static void
add_file(JsonBuilder *b, wh_hub_file *f)
{
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "path");
  json_builder_add_string_value(b, f->path);
  json_builder_set_member_name(b, "size");
  json_builder_add_int_value(b, (gint64)f->size);
  json_builder_set_member_name(b, "sha256");
  json_builder_add_string_value(b, f->sha256);
  json_builder_set_member_name(b, "quant");
  json_builder_add_string_value(b, f->quant);
  json_builder_set_member_name(b, "gguf");
  json_builder_add_boolean_value(b, f->is_gguf);
  json_builder_set_member_name(b, "mmproj");
  json_builder_add_boolean_value(b, f->is_mmproj);
  if (f->split_count) {
    json_builder_set_member_name(b, "split_index");
    json_builder_add_int_value(b, f->split_index);
    json_builder_set_member_name(b, "split_count");
    json_builder_add_int_value(b, f->split_count);
  }
  json_builder_end_object(b);
}

static void
print_json(const char *repo, const char *rev, GPtrArray *files, GPtrArray *groups)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "repo");
  json_builder_add_string_value(b, repo);
  json_builder_set_member_name(b, "revision");
  json_builder_add_string_value(b, rev);
  json_builder_set_member_name(b, "files");
  json_builder_begin_array(b);
  for (guint i = 0; i < files->len; i++)
    add_file(b, files->pdata[i]);
  json_builder_end_array(b);
  json_builder_set_member_name(b, "variants");
  json_builder_begin_array(b);
  for (guint i = 0; i < groups->len; i++) {
    wh_hub_gguf_group *g = groups->pdata[i];
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, g->name);
    json_builder_set_member_name(b, "quant");
    json_builder_add_string_value(b, g->quant);
    json_builder_set_member_name(b, "total_size");
    json_builder_add_int_value(b, (gint64)g->total_size);
    json_builder_set_member_name(b, "complete");
    json_builder_add_boolean_value(b, g->complete);
    json_builder_set_member_name(b, "files");
    json_builder_begin_array(b);
    for (guint k = 0; k < g->files->len; k++)
      json_builder_add_string_value(b, ((wh_hub_file *)g->files->pdata[k])->path);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "mmproj");
    json_builder_begin_array(b);
    for (guint k = 0; k < g->mmproj->len; k++)
      json_builder_add_string_value(b, ((wh_hub_file *)g->mmproj->pdata[k])->path);
    json_builder_end_array(b);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  wh_cli_print_json_builder(b);
}

static int
run_files(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_files;
  gboolean json = FALSE;
  char *revision = NULL;
  GOptionEntry entries[] = {
      {"revision", 'r', 0, G_OPTION_ARG_STRING, &revision, "Branch, tag or commit (default main)",
       "R"},
      {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc < 2)
    return wh_cli_usage_error(cmd, "missing REPO");
  if (argc > 2)
    return wh_cli_usage_error(cmd, "unexpected argument '%s'", argv[2]);
  g_autofree char *rev = revision ? revision : g_strdup("main");
  g_autoptr(GError) error = NULL;
  wh_hub *hub = wh_hub_new(NULL, &error);
  if (hub)
    wh_hub_use_stored_token(hub, NULL); /* the keyring's token, if `login` stored one */
  g_autoptr(GPtrArray) files = hub ? wh_hub_list_files(hub, argv[1], rev, NULL, &error) : NULL;
  wh_hub_free(hub);
  if (!files)
    return wh_cli_fail(cmd, error);
  g_autoptr(GPtrArray) groups = wh_hub_group_gguf_files(files);
  if (json) {
    print_json(argv[1], rev, files, groups);
    return fflush(stdout) == 0 ? WH_CLI_EXIT_OK : WH_CLI_EXIT_FAILURE;
  }
  printf("%10s  %-10s  %-64s  %s\n", "SIZE", "QUANT", "SHA256", "FILE");
  for (guint i = 0; i < files->len; i++) {
    wh_hub_file *f = files->pdata[i];
    g_autofree char *size = wh_hub_format_size(f->size);
    printf("%10s  %-10s  %-64s  %s\n", size, f->quant ? f->quant : "-", f->sha256 ? f->sha256 : "-",
           f->path);
  }
  if (groups->len) {
    printf("\nGGUF variants (whittle-cli pull %s:QUANT):\n", argv[1]);
    for (guint i = 0; i < groups->len; i++) {
      wh_hub_gguf_group *g = groups->pdata[i];
      g_autofree char *size = wh_hub_format_size(g->total_size);
      printf("  %-10s %10s  %s", g->quant ? g->quant : "-", size, g->name);
      if (g->files->len > 1)
        printf("  (%u parts%s)", g->files->len, g->complete ? "" : ", some missing");
      if (g->mmproj->len)
        printf("  + projector %s", ((wh_hub_file *)g->mmproj->pdata[0])->path);
      printf("\n");
    }
  }
  return fflush(stdout) == 0 ? WH_CLI_EXIT_OK : WH_CLI_EXIT_FAILURE;
}
