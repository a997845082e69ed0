/* cli-search.c — `whittle-cli search TEXT [--filter gguf] [--sort downloads] [--limit N]
 * [--json]`: models on the Hugging Face hub (or $HF_ENDPOINT). */
#include "config.h"

#include <json-glib/json-glib.h>
#include <stdio.h>

#include "cli-util.h"
#include "hub/hub-token.h"
#include "hub/hub.h"

static int run_search(int argc, char **argv);

const wh_cli_command wh_cli_command_search = {
    .name = "search",
    .summary = "Search models on the Hugging Face hub",
    .usage = "[TEXT] [--filter TAG] [--author ORG] [--min-params N] [--max-params N] [--sort KEY] "
             "[--asc] [--limit N] [--json]",
    .description =
        "Lists models whose id contains TEXT, most downloaded first by default. --filter keeps "
        "models with a tag (gguf for files Whittle can run; several separated by commas), "
        "--sort orders by downloads, likes, trendingScore, lastModified or createdAt "
        "(descending unless --asc). --min-params / --max-params keep models whose parameter "
        "count is in the range (written like 500M, 1.5B, 8B). Honours HF_ENDPOINT, HF_TOKEN, "
        "HF_HOME and HF_HUB_OFFLINE. "
        "--json prints a JSON array of models.",
    .run = run_search,
};

static void
print_json(wh_hub_search_result *r)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_array(b);
  for (guint i = 0; i < r->models->len; i++) {
    wh_hub_model_summary *m = r->models->pdata[i];
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "id");
    json_builder_add_string_value(b, m->id);
    json_builder_set_member_name(b, "author");
    json_builder_add_string_value(b, m->author);
    json_builder_set_member_name(b, "downloads");
    json_builder_add_int_value(b, (gint64)m->downloads);
    json_builder_set_member_name(b, "likes");
    json_builder_add_int_value(b, (gint64)m->likes);
    json_builder_set_member_name(b, "pipeline_tag");
    json_builder_add_string_value(b, m->pipeline_tag);
    json_builder_set_member_name(b, "last_modified");
    json_builder_add_string_value(b, m->last_modified);
    json_builder_set_member_name(b, "gated");
    json_builder_add_string_value(b, m->gated);
    json_builder_set_member_name(b, "tags");
    json_builder_begin_array(b);
    for (char **t = m->tags; *t; t++)
      json_builder_add_string_value(b, *t);
    json_builder_end_array(b);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  wh_cli_print_json_builder(b);
}

static int
run_search(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_search;
  gboolean json = FALSE, asc = FALSE;
  char *filter = NULL, *author = NULL, *sort = NULL, *min_p = NULL, *max_p = NULL;
  int limit = 20;
  GOptionEntry entries[] = {
      {"filter", 0, 0, G_OPTION_ARG_STRING, &filter, "Keep models with this tag (e.g. gguf)",
       "TAG"},
      {"author", 0, 0, G_OPTION_ARG_STRING, &author, "Only models of this user or organisation",
       "ORG"},
      {"min-params", 0, 0, G_OPTION_ARG_STRING, &min_p, "At least this many parameters (e.g. 1B)",
       "N"},
      {"max-params", 0, 0, G_OPTION_ARG_STRING, &max_p, "At most this many parameters (e.g. 8B)",
       "N"},
      {"sort", 0, 0, G_OPTION_ARG_STRING, &sort,
       "downloads (default), likes, trendingScore, lastModified, createdAt", "KEY"},
      {"asc", 0, 0, G_OPTION_ARG_NONE, &asc, "Ascending order", NULL},
      {"limit", 0, 0, G_OPTION_ARG_INT, &limit, "How many models (default 20)", "N"},
      {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print a JSON array", NULL},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  g_autofree char *min_s = min_p, *max_s = max_p;
  g_autofree char *filter_s = filter, *author_s = author, *sort_s = sort;
  if (argc > 2)
    return wh_cli_usage_error(cmd, "unexpected argument '%s' (quote a search of several words)",
                              argv[2]);
  if (limit <= 0 || limit > 1000)
    return wh_cli_usage_error(cmd, "--limit must be between 1 and 1000");
  wh_hub_search_query q = {0};
  g_autoptr(GError) perr = NULL;
  if (min_s && !wh_hub_parse_param_count(min_s, &q.min_params, &perr))
    return wh_cli_usage_error(cmd, "--min-params: %s", perr->message);
  if (max_s && !wh_hub_parse_param_count(max_s, &q.max_params, &perr))
    return wh_cli_usage_error(cmd, "--max-params: %s", perr->message);
  if (max_s && q.max_params == 0)
    return wh_cli_usage_error(cmd, "--max-params must be more than 0");
  if (q.max_params && q.min_params > q.max_params)
    return wh_cli_usage_error(cmd, "--min-params is larger than --max-params");
  q.search = argc > 1 ? argv[1] : NULL;
  q.filter = filter;
  q.author = author;
  q.sort = sort ? sort : "downloads";
  q.direction = asc ? 1 : -1;
  q.limit = (guint)limit;
  g_autoptr(GError) error = NULL;
  wh_hub *hub = wh_hub_new(NULL, &error);
  if (hub)
    wh_hub_use_stored_token(hub, NULL); /* the keyring's token, if `login` stored one */
  g_autoptr(wh_hub_search_result) r = hub ? wh_hub_search(hub, &q, NULL, &error) : NULL;
  wh_hub_free(hub);
  if (!r)
    return wh_cli_fail(cmd, error);
  if (json) {
    print_json(r);
  } else if (r->models->len == 0) {
    fprintf(stderr, "no models found\n");
  } else {
    printf("%-56s %12s %8s  %s\n", "MODEL", "DOWNLOADS", "LIKES", "UPDATED");
    for (guint i = 0; i < r->models->len; i++) {
      wh_hub_model_summary *m = r->models->pdata[i];
      printf("%-56s %12" G_GUINT64_FORMAT " %8" G_GUINT64_FORMAT "  %.10s%s\n", m->id, m->downloads,
             m->likes, m->last_modified ? m->last_modified : "-",
             m->gated ? "  (gated: request access on the model page)" : "");
    }
  }
  return fflush(stdout) == 0 ? WH_CLI_EXIT_OK : WH_CLI_EXIT_FAILURE;
}
