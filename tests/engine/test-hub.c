/* test-hub.c — the hub client against a local hub look-alike on 127.0.0.1 (in-process
 * SoupServer, tests/hub-server/hub-server.c) serving real GGUF files from the shared data.
 * `test-hub --serve ROOT ...` runs the same server standalone (for the CLI tests). */
#include "config.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub/hub-token.h"
#include "hub/hub.h"
#include "wh-test-util.h"

#include "../hub-server/hub-server.c"

typedef struct {
  char *tmp; /* served root and cache */
  char *root;
  char *home;
  wh_test_hub *server;
  wh_hub *hub;
  char *q4k_path; /* the shared file served as org/model-GGUF/model-Q4_K_M.gguf */
  char *q4k_sha;
} fixture;

static const char *
shared_model(const char *rel)
{
  static char buf[4096];
  g_autofree char *p = wh_test_shared_path(rel);
  g_strlcpy(buf, p, sizeof buf);
  return buf;
}

static gboolean
link_into(const char *root, const char *rel_dst, const char *src)
{
  g_autofree char *dst = g_build_filename(root, rel_dst, NULL);
  g_autofree char *dir = g_path_get_dirname(dst);
  g_mkdir_with_parents(dir, 0755);
  return symlink(src, dst) == 0;
}

static char *
sha256_of(const char *path)
{
  g_autofree char *data = NULL;
  gsize len;
  if (!g_file_get_contents(path, &data, &len, NULL))
    return NULL;
  return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
}

static wh_hub *
make_hub(fixture *f, const char *token, guint timeout)
{
  wh_hub_config cfg;
  wh_hub_default_config(&cfg);
  cfg.endpoint = wh_test_hub_url(f->server);
  cfg.home = f->home;
  cfg.token = token;
  cfg.no_token = token == NULL;
  cfg.offline = 0;
  cfg.timeout_seconds = timeout ? timeout : 5;
  cfg.retry_base_seconds = 0.05;
  cfg.retry_max_seconds = 1.5;
  cfg.max_retries = 4;
  g_autoptr(GError) error = NULL;
  wh_hub *hub = wh_hub_new(&cfg, &error);
  g_assert_no_error(error);
  return hub;
}

static void
setup(fixture *f, gconstpointer data)
{
  memset(f, 0, sizeof *f);
  g_autofree char *probe = wh_test_shared_file_or_skip("reference/models/synth-llama-Q4_K_M.gguf");
  if (!probe)
    return;
  f->tmp = wh_test_make_tmpdir();
  f->root = g_build_filename(f->tmp, "served", NULL);
  f->home = g_build_filename(f->tmp, "hf-home", NULL);
  f->q4k_path = g_strdup(probe);
  f->q4k_sha = sha256_of(probe);
  g_assert_true(link_into(f->root, "org/model-GGUF/model-Q4_K_M.gguf", probe));
  g_assert_true(link_into(f->root, "org/model-GGUF/model-Q8_0.gguf",
                          shared_model("reference/models/synth-llama-Q8_0.gguf")));
  g_assert_true(link_into(f->root, "org/model-GGUF/split/model-F16-00001-of-00002.gguf",
                          shared_model("reference/models/synth-llama-F16.gguf")));
  g_assert_true(link_into(f->root, "org/model-GGUF/split/model-F16-00002-of-00002.gguf",
                          shared_model("reference/models/synth-qwen2-F16.gguf")));
  g_assert_true(link_into(f->root, "org/model-GGUF/mmproj-model-f16.gguf",
                          shared_model("models/stories260K.gguf")));
  g_autofree char *readme = g_build_filename(f->root, "org/model-GGUF/README.md", NULL);
  g_file_set_contents(readme, "# a model\n", -1, NULL);
  g_assert_true(link_into(f->root, "org/stories-GGUF/stories260K-Q8_0.gguf",
                          shared_model("reference/models/stories260K-Q8_0.gguf")));
  g_assert_true(link_into(f->root, "other/plain/config.json.gguf",
                          shared_model("reference/models/stories260K-Q4_0.gguf")));
  g_assert_true(link_into(f->root, "gated/secret-GGUF/secret-Q4_0.gguf",
                          shared_model("reference/models/stories260K-Q4_0.gguf")));
  g_autoptr(GError) error = NULL;
  f->server = wh_test_hub_start(f->root, &error);
  g_assert_no_error(error);
  f->hub = make_hub(f, "hf_good", 0);
}

static void
teardown(fixture *f, gconstpointer data)
{
  if (!f->tmp)
    return;
  wh_hub_free(f->hub);
  wh_test_hub_stop(f->server);
  wh_test_rmdir_r(f->tmp);
  g_free(f->tmp);
  g_free(f->root);
  g_free(f->home);
  g_free(f->q4k_path);
  g_free(f->q4k_sha);
}

/* --- pure functions -------------------------------------------------------------------------- */

static void
test_validate(void)
{
  const char *good_files[] = {"a.gguf", "dir/sub/model-Q4_K_M.gguf", "x..y.gguf", NULL};
  const char *bad_files[] = {"",    "/etc/passwd", "../x.gguf", "a/../../b", "a//b",
                             "./a", "a\\b",        "a\nb.gguf", "a\x7f",     NULL};
  for (int i = 0; good_files[i]; i++)
    g_assert_true(wh_hub_validate_filename(good_files[i], NULL));
  for (int i = 0; bad_files[i]; i++) {
    g_autoptr(GError) e = NULL;
    g_assert_false(wh_hub_validate_filename(bad_files[i], &e));
    g_assert_error(e, WH_HUB_ERROR, WH_HUB_ERROR_INVALID);
  }
  g_assert_true(wh_hub_validate_repo_id("ggml-org/gemma-3-1b-it-GGUF", NULL));
  g_assert_false(wh_hub_validate_repo_id("..//x", NULL));
  g_assert_false(wh_hub_validate_repo_id("a/b/c", NULL));
  g_assert_false(wh_hub_validate_repo_id("a/..", NULL));
  g_assert_false(wh_hub_validate_repo_id("noslash", NULL));
  g_assert_false(wh_hub_validate_revision("../main", NULL));
  g_assert_true(wh_hub_validate_revision("refs/pr/1", NULL));
  g_autofree char *folder = wh_hub_repo_folder_name("org/name");
  g_assert_cmpstr(folder, ==, "models--org--name");
}

static void
test_quant_labels(void)
{
  struct {
    const char *name, *label;
  } cases[] = {
      {"Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"},
      {"llama-2-7b.Q5_K_S.gguf", "Q5_K_S"},
      {"qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf", "Q4_K_M"},
      {"gemma-3-27b-it-IQ2_XXS.gguf", "IQ2_XXS"},
      {"Model-UD-Q4_K_XL.gguf", "UD-Q4_K_XL"},
      {"mmproj-model-f16.gguf", "F16"},
      {"model-bf16.gguf", "BF16"},
      {"phi-4-Q8_0.gguf", "Q8_0"},
      {"ggml-model-tq1_0.gguf", "TQ1_0"},
      {"gpt-oss-20b-MXFP4.gguf", "MXFP4"},
      {"model.gguf", NULL},
      {"Qwen3-4B.gguf", NULL},
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *l = wh_hub_parse_quant_label(cases[i].name);
    g_assert_cmpstr(l, ==, cases[i].label);
  }
}

static wh_hub_file *
mkfile(const char *path, guint64 size)
{
  wh_hub_file *f = g_new0(wh_hub_file, 1);
  f->path = g_strdup(path);
  f->size = size;
  wh_hub_file_classify(f);
  return f;
}

static void
test_grouping(void)
{
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func((GDestroyNotify)wh_hub_file_free);
  g_ptr_array_add(files, mkfile("README.md", 10));
  g_ptr_array_add(files, mkfile("m-Q4_K_M.gguf", 100));
  g_ptr_array_add(files, mkfile("big/m-Q8_0-00002-of-00003.gguf", 20));
  g_ptr_array_add(files, mkfile("big/m-Q8_0-00001-of-00003.gguf", 10));
  g_ptr_array_add(files, mkfile("big/m-Q8_0-00003-of-00003.gguf", 30));
  g_ptr_array_add(files, mkfile("mmproj-m-f16.gguf", 5));
  g_ptr_array_add(files, mkfile("half/h-Q2_K-00001-of-00002.gguf", 7));
  g_autoptr(GPtrArray) groups = wh_hub_group_gguf_files(files);
  g_assert_cmpuint(groups->len, ==, 3);
  wh_hub_gguf_group *g0 = groups->pdata[0];
  g_assert_cmpstr(g0->name, ==, "big/m-Q8_0.gguf");
  g_assert_cmpstr(g0->quant, ==, "Q8_0");
  g_assert_cmpuint(g0->files->len, ==, 3);
  g_assert_cmpuint(g0->total_size, ==, 60);
  g_assert_true(g0->complete);
  g_assert_cmpuint(((wh_hub_file *)g0->files->pdata[0])->split_index, ==, 1);
  g_assert_cmpuint(((wh_hub_file *)g0->files->pdata[2])->split_index, ==, 3);
  g_assert_cmpuint(g0->mmproj->len, ==, 0);
  wh_hub_gguf_group *g1 = groups->pdata[1];
  g_assert_false(g1->complete);
  wh_hub_gguf_group *g2 = groups->pdata[2];
  g_assert_cmpstr(g2->name, ==, "m-Q4_K_M.gguf");
  g_assert_cmpuint(g2->mmproj->len, ==, 1);
  g_assert_true(((wh_hub_file *)g2->mmproj->pdata[0])->is_mmproj);
  g_assert_true(wh_hub_find_quant(groups, "q4_k_m") == g2);
  g_assert_null(wh_hub_find_quant(groups, "F16"));
}

static void
test_header_end(void)
{
  g_autofree char *path = wh_test_shared_file_or_skip("models/stories260K.gguf");
  if (!path)
    return;
  g_autoptr(GError) error = NULL;
  wh_gguf *g = wh_gguf_open(path, &error);
  g_assert_no_error(error);
  g_autofree char *data = NULL;
  gsize len;
  g_assert_true(g_file_get_contents(path, &data, &len, NULL));
  gint64 end = wh_hub_gguf_header_end((const guint8 *)data, len, &error);
  g_assert_no_error(error);
  /* The tensor data start is the end of the infos, aligned. */
  guint32 al = wh_gguf_alignment(g);
  g_assert_cmpuint(((guint64)end + al - 1) / al * al, ==, wh_gguf_data_offset(g, 0));
  for (gint64 cut = 0; cut < end; cut += 1 + cut / 3)
    g_assert_cmpint(wh_hub_gguf_header_end((const guint8 *)data, (gsize)cut, NULL), ==, 0);
  g_assert_cmpint(wh_hub_gguf_header_end((const guint8 *)"GGML1234", 8, NULL), ==, -1);
  wh_gguf_close(g);
}

/* --- API ------------------------------------------------------------------------------------- */

static void
test_param_count(void)
{
  const struct {
    const char *text;
    guint64 value;
  } good[] = {{"7B", 7000000000},
              {"1.5b", 1500000000},
              {"500M", 500000000},
              {"260K", 260000},
              {" 3000000 ", 3000000},
              {"0", 0},
              {"2T", G_GUINT64_CONSTANT(2000000000000)}};
  for (guint i = 0; i < G_N_ELEMENTS(good); i++) {
    guint64 v = 1;
    g_assert_true(wh_hub_parse_param_count(good[i].text, &v, NULL));
    g_assert_cmpuint(v, ==, good[i].value);
  }
  const char *bad[] = {"", "B", "-1B", "1.5", "7X", "1e9", "7 B B", "99999999T", NULL};
  for (guint i = 0; bad[i]; i++) {
    g_autoptr(GError) error = NULL;
    guint64 v = 0;
    g_assert_false(wh_hub_parse_param_count(bad[i], &v, &error));
    g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_INVALID);
  }
  const struct {
    guint64 value;
    const char *text;
  } fmt[] = {{7000000000, "7B"}, {500000000, "500M"}, {1500000000, "1500M"},
             {0, "0"},           {1234, "1234"},      {260000, "260K"}};
  for (guint i = 0; i < G_N_ELEMENTS(fmt); i++) {
    g_autofree char *t = wh_hub_format_param_count(fmt[i].value);
    g_assert_cmpstr(t, ==, fmt[i].text);
    guint64 back = 1;
    g_assert_true(wh_hub_parse_param_count(t, &back, NULL));
    g_assert_cmpuint(back, ==, fmt[i].value);
  }
}

static void
test_search(fixture *f, gconstpointer data)
{
  if (!f->tmp)
    return;
  wh_hub_search_query q = {0};
  q.filter = "gguf";
  q.sort = "downloads";
  q.limit = 2;
  g_autoptr(GError) error = NULL;
  g_autoptr(wh_hub_search_result) r = wh_hub_search(f->hub, &q, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(r->models->len, ==, 2);
  g_assert_nonnull(r->next_url);
  wh_hub_model_summary *m0 = r->models->pdata[0], *m1 = r->models->pdata[1];
  g_assert_cmpstr(m0->id, ==, "org/model-GGUF"); /* the largest: most "downloads" */
  g_assert_cmpuint(m0->downloads, >=, m1->downloads);
  g_assert_true(g_strv_contains((const char *const *)m0->tags, "gguf"));
  g_autoptr(wh_hub_search_result) r2 = wh_hub_search_next(f->hub, r->next_url, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(r2->models->len, ==, 2);
  g_assert_null(r2->next_url);
  gboolean saw_gated = FALSE;
  for (guint i = 0; i < r2->models->len; i++) {
    wh_hub_model_summary *m = r2->models->pdata[i];
    g_assert_cmpstr(m->id, !=, m0->id);
    if (!strcmp(m->id, "gated/secret-GGUF"))
      saw_gated = g_strcmp0(m->gated, "manual") == 0;
  }
  g_assert_true(saw_gated);
  /* Text search, and the User-Agent names Whittle. */
  q.search = "STORIES";
  q.limit = 10;
  g_autoptr(wh_hub_search_result) r3 = wh_hub_search(f->hub, &q, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(r3->models->len, ==, 1);
  wh_test_hub_stats st;
  wh_test_hub_get_stats(f->server, &st);
  g_assert_true(g_str_has_prefix(st.last_user_agent, "Whittle/" PACKAGE_VERSION));
  g_free(st.last_user_agent);
  /* Parameter range, sent as the hub's num_parameters=min:..,max:.. (stories260K has 293K
   * parameters, the synth llama ~3.4M). */
  wh_hub_search_query pq = {0};
  pq.limit = 50;
  pq.max_params = 1000000;
  g_autoptr(wh_hub_search_result) small = wh_hub_search(f->hub, &pq, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(small->models->len, >=, 1);
  gboolean saw_stories = FALSE;
  for (guint i = 0; i < small->models->len; i++) {
    wh_hub_model_summary *m = small->models->pdata[i];
    g_assert_cmpstr(m->id, !=, "org/model-GGUF");
    saw_stories |= strcmp(m->id, "org/stories-GGUF") == 0;
  }
  g_assert_true(saw_stories);
  pq.max_params = 0;
  pq.min_params = 1000000;
  g_autoptr(wh_hub_search_result) big = wh_hub_search(f->hub, &pq, NULL, &error);
  g_assert_no_error(error);
  gboolean saw_model = FALSE;
  for (guint i = 0; i < big->models->len; i++) {
    wh_hub_model_summary *m = big->models->pdata[i];
    g_assert_cmpstr(m->id, !=, "org/stories-GGUF");
    saw_model |= strcmp(m->id, "org/model-GGUF") == 0;
  }
  g_assert_true(saw_model);
  /* A next page on another host is refused. */
  g_autoptr(wh_hub_search_result) r4 =
      wh_hub_search_next(f->hub, "http://example.invalid/api/models?cursor=2", NULL, &error);
  g_assert_null(r4);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_INVALID);
}

static void
test_model_info(fixture *f, gconstpointer data)
{
  if (!f->tmp)
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(wh_hub_model_info) info =
      wh_hub_model_info_get(f->hub, "org/model-GGUF", NULL, NULL, &error);
  g_assert_no_error(error);
  g_autofree char *commit = wh_test_hub_commit("org/model-GGUF");
  g_assert_cmpstr(info->sha, ==, commit);
  g_assert_null(info->gated);
  g_assert_cmpstr(info->gguf.architecture, ==, "llama");
  g_assert_cmpuint(info->gguf.total, >, 1000000);
  g_assert_cmpuint(info->files->len, ==, 6);
  gboolean found = FALSE;
  for (guint i = 0; i < info->files->len; i++) {
    wh_hub_file *x = info->files->pdata[i];
    if (!strcmp(x->path, "model-Q4_K_M.gguf")) {
      found = TRUE;
      g_assert_cmpstr(x->sha256, ==, f->q4k_sha);
      struct stat st;
      g_assert_cmpint(stat(f->q4k_path, &st), ==, 0);
      g_assert_cmpuint(x->size, ==, (guint64)st.st_size);
      g_assert_cmpstr(x->quant, ==, "Q4_K_M");
    }
    if (!strcmp(x->path, "README.md"))
      g_assert_null(x->sha256);
  }
  g_assert_true(found);
  g_autoptr(wh_hub_model_info) gated =
      wh_hub_model_info_get(f->hub, "gated/secret-GGUF", "main", NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(gated->gated, ==, "manual");
  g_autoptr(wh_hub_model_info) none =
      wh_hub_model_info_get(f->hub, "org/model-GGUF", "nosuchbranch", NULL, &error);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(error->message, "org/model-GGUF"));
}

static void
test_tree(fixture *f, gconstpointer data)
{
  if (!f->tmp)
    return;
  wh_test_hub_faults flt = {0};
  flt.tree_page = 2; /* exercise the Link pagination */
  wh_test_hub_set_faults(f->server, &flt);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) files = wh_hub_list_files(f->hub, "org/model-GGUF", NULL, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(files->len, ==, 6);
  g_autoptr(GPtrArray) groups = wh_hub_group_gguf_files(files);
  g_assert_cmpuint(groups->len, ==, 3);
  wh_hub_gguf_group *split = wh_hub_find_quant(groups, "F16");
  g_assert_nonnull(split);
  g_assert_cmpuint(split->files->len, ==, 2);
  g_assert_true(split->complete);
  wh_hub_gguf_group *q4 = wh_hub_find_quant(groups, "Q4_K_M");
  g_assert_cmpuint(q4->mmproj->len, ==, 1);
  /* A tree naming a file outside the repository is refused as a whole. */
  flt.evil_tree = TRUE;
  wh_test_hub_set_faults(f->server, &flt);
  g_autoptr(GPtrArray) evil = wh_hub_list_files(f->hub, "org/model-GGUF", NULL, NULL, &error);
  g_assert_null(evil);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL);
  g_assert_nonnull(strstr(error->message, "unsafe"));
}

static void
test_bad_answers(fixture *f, gconstpointer data)
{
  if (!f->tmp)
    return;
  wh_test_hub_faults flt = {0};
  flt.bad_json = TRUE;
  wh_test_hub_set_faults(f->server, &flt);
  g_autoptr(GError) error = NULL;
  wh_hub_model_info *info = wh_hub_model_info_get(f->hub, "org/model-GGUF", NULL, NULL, &error);
  g_assert_null(info);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL);
  g_assert_nonnull(strstr(error->message, "not valid JSON"));
  g_clear_error(&error);
  flt.bad_json = FALSE;
  flt.endless_json = TRUE;
  wh_test_hub_set_faults(f->server, &flt);
  info = wh_hub_model_info_get(f->hub, "org/model-GGUF", NULL, NULL, &error);
  g_assert_null(info);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL);
  g_assert_nonnull(strstr(error->message, "larger than"));
  g_clear_error(&error);
  /* A redirect loop between two API URLs. */
  flt.endless_json = FALSE;
  flt.api_redirect_loop = TRUE;
  wh_test_hub_set_faults(f->server, &flt);
  info = wh_hub_model_info_get(f->hub, "org/model-GGUF", NULL, NULL, &error);
  g_assert_null(info);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_SERVER);
  g_assert_nonnull(strstr(error->message, "redirect loop"));
  g_clear_error(&error);
  flt.api_redirect_loop = FALSE;
  /* A redirect loop on resolve. */
  flt.endless_json = FALSE;
  flt.redirect_loop = TRUE;
  wh_test_hub_set_faults(f->server, &flt);
  wh_hub_download_result *r =
      wh_hub_download(f->hub, "org/model-GGUF", "model-Q4_K_M.gguf", NULL, NULL, &error);
  g_assert_null(r);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_SERVER);
  g_assert_nonnull(strstr(error->message, "redirect"));
  g_clear_error(&error);
  /* Hostile names (parent folders, absolute paths, control characters, backslashes) never
   * reach the network or the disk. */
  wh_test_hub_stats before, after;
  wh_test_hub_get_stats(f->server, &before);
  g_free(before.last_user_agent);
  const char *evil[] = {"../../../etc/passwd", "/etc/passwd",     "a/../../b.gguf",
                        "a\001b.gguf",         "a\nb.gguf",       "..\\x.gguf",
                        "sub/\x1b[31m.gguf",   "model.gguf\r\nX", NULL};
  for (guint i = 0; evil[i]; i++) {
    r = wh_hub_download(f->hub, "org/model-GGUF", evil[i], NULL, NULL, &error);
    g_assert_null(r);
    g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_INVALID);
    g_clear_error(&error);
  }
  r = wh_hub_download(f->hub, "../x", "a.gguf", NULL, NULL, &error);
  g_assert_null(r);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_INVALID);
  g_clear_error(&error);
  wh_test_hub_get_stats(f->server, &after);
  g_free(after.last_user_agent);
  g_assert_cmpuint(after.api_requests, ==, before.api_requests);
  g_assert_cmpuint(after.cdn_requests, ==, before.cdn_requests);
  g_autofree char *escaped = g_build_filename(f->tmp, "etc", NULL);
  g_assert_false(g_file_test(escaped, G_FILE_TEST_EXISTS));
  g_assert_false(g_file_test("/etc/passwd.incomplete", G_FILE_TEST_EXISTS));

  /* An endless body (no Content-Length, junk after the file): only the announced bytes are
   * read and written, the checksum holds, and the download ends. */
  flt.redirect_loop = FALSE;
  flt.endless_body = 1;
  wh_test_hub_set_faults(f->server, &flt);
  gint64 t0 = g_get_monotonic_time();
  r = wh_hub_download(f->hub, "org/model-GGUF", "model-Q4_K_M.gguf", NULL, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpfloat((g_get_monotonic_time() - t0) / 1e6, <, 60.0);
  struct stat st;
  g_assert_cmpint(stat(r->blob_path, &st), ==, 0);
  g_assert_cmpuint((guint64)st.st_size, ==, r->size);
  g_autofree char *got = sha256_of(r->path);
  g_assert_cmpstr(got, ==, f->q4k_sha);
  wh_hub_download_result_free(r);
}

static void
test_remote_header(fixture *f, gconstpointer data)
{
  if (!f->tmp)
    return;
  g_autoptr(GError) error = NULL;
  guint64 fetched = 0;
  wh_gguf *remote = wh_hub_read_gguf_header(f->hub, "org/model-GGUF", NULL, "model-Q4_K_M.gguf",
                                            &fetched, NULL, &error);
  g_assert_no_error(error);
  wh_gguf *local = wh_gguf_open(f->q4k_path, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(wh_gguf_n_kv(remote), ==, wh_gguf_n_kv(local));
  g_assert_cmpuint(wh_gguf_n_tensors(remote), ==, wh_gguf_n_tensors(local));
  g_assert_cmpuint(wh_gguf_total_size(remote), ==, wh_gguf_total_size(local));
  g_assert_cmpuint(fetched, <, wh_gguf_total_size(local) / 4); /* only the header came */
  for (guint64 i = 0; i < wh_gguf_n_tensors(local); i++) {
    const wh_gguf_tensor *a = wh_gguf_get_tensor(remote, i), *b = wh_gguf_get_tensor(local, i);
    g_assert_cmpstr(a->name, ==, b->name);
    g_assert_cmpuint(a->type, ==, b->type);
    g_assert_cmpuint(a->n_bytes, ==, b->n_bytes);
  }
  g_assert_cmpstr(wh_gguf_get_architecture(remote), ==, "llama");
  wh_gguf_close(remote);
  wh_gguf_close(local);
  /* Through a server that ignores Range: still only a prefix is kept. */
  wh_test_hub_faults flt = {0};
  flt.ignore_range = 5;
  wh_test_hub_set_faults(f->server, &flt);
  remote = wh_hub_read_gguf_header(f->hub, "org/stories-GGUF", NULL, "stories260K-Q8_0.gguf", NULL,
                                   NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(wh_gguf_n_tensors(remote), >, 0);
  wh_gguf_close(remote);
}

/* --- downloads ----------------------------------------------------------------------------- */

static void
check_cached(fixture *f, wh_hub_download_result *r, const char *repo, const char *file,
             const char *src)
{
  g_autofree char *want = sha256_of(src);
  g_autofree char *got = sha256_of(r->path);
  g_assert_cmpstr(got, ==, want);
  g_autofree char *commit = wh_test_hub_commit(repo);
  g_assert_cmpstr(r->commit, ==, commit);
  g_autofree char *folder = wh_hub_repo_folder_name(repo);
  g_autofree char *snap = g_build_filename(f->home, "hub", folder, "snapshots", commit, file, NULL);
  g_assert_cmpstr(r->path, ==, snap);
  g_assert_true(g_file_test(snap, G_FILE_TEST_IS_SYMLINK));
  g_autofree char *target = g_file_read_link(snap, NULL);
  g_assert_true(g_str_has_prefix(target, "../"));
  g_assert_nonnull(strstr(target, "blobs/"));
  g_autofree char *ref = g_build_filename(f->home, "hub", folder, "refs", "main", NULL);
  g_autofree char *refc = NULL;
  g_assert_true(g_file_get_contents(ref, &refc, NULL, NULL));
  g_assert_cmpstr(refc, ==, commit);
  g_autofree char *part = g_strconcat(r->blob_path, ".incomplete", NULL);
  g_assert_false(g_file_test(part, G_FILE_TEST_EXISTS));
}

static wh_hub_download_result *
pull(fixture *f, const char *repo, const char *file, guint segments, GError **error)
{
  wh_hub_download_params p;
  wh_hub_download_default_params(&p);
  p.n_segments = segments;
  p.segment_threshold = 1; /* segment even small files when asked */
  return wh_hub_download(f->hub, repo, file, &p, NULL, error);
}

static void
test_download_single(fixture *f, gconstpointer data)
{
  if (!f->tmp)
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(wh_hub_download_result) r = pull(f, "org/model-GGUF", "model-Q4_K_M.gguf", 1, &error);
  g_assert_no_error(error);
  check_cached(f, r, "org/model-GGUF", "model-Q4_K_M.gguf", f->q4k_path);
  g_assert_cmpstr(r->etag, ==, f->q4k_sha);
  g_assert_false(r->was_cached);
  wh_test_hub_stats st;
  wh_test_hub_get_stats(f->server, &st);
  g_free(st.last_user_agent);
  g_assert_cmpuint(st.auth_on_cdn, ==, 0); /* the token never went to the CDN */
  g_assert_cmpuint(st.cdn_requests, ==, 1);
  /* Again: nothing fetched. */
  g_autoptr(wh_hub_download_result) r2 = pull(f, "org/model-GGUF", "model-Q4_K_M.gguf", 1, &error);
  g_assert_no_error(error);
  g_assert_true(r2->was_cached);
  wh_test_hub_get_stats(f->server, &st);
  g_free(st.last_user_agent);
  g_assert_cmpuint(st.cdn_requests, ==, 1);
  /* A plain (non-LFS) file is checked with its git blob id. */
  g_autoptr(wh_hub_download_result) r3 = pull(f, "org/model-GGUF", "README.md", 1, &error);
  g_assert_no_error(error);
  g_autofree char *readme = NULL;
  g_assert_true(g_file_get_contents(r3->path, &readme, NULL, NULL));
  g_assert_cmpstr(readme, ==, "# a model\n");
  /* A file in a sub-folder: the link climbs one more level. */
  g_autoptr(wh_hub_download_result) r4 =
      pull(f, "org/model-GGUF", "split/model-F16-00002-of-00002.gguf", 1, &error);
  g_assert_no_error(error);
  check_cached(f, r4, "org/model-GGUF", "split/model-F16-00002-of-00002.gguf",
               shared_model("reference/models/synth-qwen2-F16.gguf"));
  /* The cache listing sees all three, with the ref. */
  g_autoptr(GPtrArray) list = wh_hub_cache_list(f->hub, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(list->len, ==, 3);
  wh_hub_cached_file *c0 = list->pdata[0];
  g_assert_cmpstr(c0->repo_id, ==, "org/model-GGUF");
  g_assert_cmpuint(c0->refs->len, ==, 1);
  g_assert_cmpstr(c0->refs->pdata[0], ==, "main");
  /* Offline: the cached file is found, an uncached one is a clear error. */
  wh_hub_config cfg;
  wh_hub_default_config(&cfg);
  cfg.endpoint = wh_test_hub_url(f->server);
  cfg.home = f->home;
  cfg.offline = 1;
  cfg.no_token = TRUE;
  wh_hub *off = wh_hub_new(&cfg, &error);
  g_autoptr(wh_hub_download_result) r5 =
      wh_hub_download(off, "org/model-GGUF", "model-Q4_K_M.gguf", NULL, NULL, &error);
  g_assert_no_error(error);
  g_assert_true(r5->was_cached);
  g_assert_cmpstr(r5->path, ==, r->path);
  wh_hub_download_result *r6 =
      wh_hub_download(off, "org/model-GGUF", "model-Q8_0.gguf", NULL, NULL, &error);
  g_assert_null(r6);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_OFFLINE);
  wh_hub_free(off);
}

typedef struct {
  GCancellable *cancel;
  guint64 stop_at;
  guint64 last_done;
  guint calls;
} cancel_at;

static void
cancel_progress(guint64 done, guint64 total, const char *status, gpointer data)
{
  cancel_at *c = data;
  c->calls++;
  c->last_done = done;
  if (c->stop_at && done >= c->stop_at)
    g_cancellable_cancel(c->cancel);
}

static void
test_download_segments_resume(fixture *f, gconstpointer data)
{
  if (!f->tmp)
    return;
  const char *file = "split/model-F16-00001-of-00002.gguf"; /* 6.8 MB */
  const char *src = shared_model("reference/models/synth-llama-F16.gguf");
  wh_test_hub_faults flt = {0};
  flt.rate = 1u << 20; /* 4 MB/s over 4 segments: slow enough to interrupt */
  wh_test_hub_set_faults(f->server, &flt);
  cancel_at c = {g_cancellable_new(), 1u << 20, 0, 0};
  wh_hub_download_params p;
  wh_hub_download_default_params(&p);
  p.n_segments = 4;
  p.segment_threshold = 1;
  p.progress = cancel_progress;
  p.progress_data = &c;
  g_autoptr(GError) error = NULL;
  wh_hub_download_result *r = wh_hub_download(f->hub, "org/model-GGUF", file, &p, c.cancel, &error);
  g_assert_null(r);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_CANCELLED);
  g_clear_error(&error);
  g_autofree char *sha = sha256_of(src);
  g_autofree char *folder = wh_hub_repo_folder_name("org/model-GGUF");
  g_autofree char *state =
      g_strdup_printf("%s/hub/%s/blobs/%s.incomplete.whittle", f->home, folder, sha);
  g_autofree char *st = NULL;
  g_assert_true(g_file_get_contents(state, &st, NULL, NULL));
  g_assert_nonnull(strstr(st, "segments="));
  g_assert_nonnull(strchr(strstr(st, "segments="), ';')); /* several segments */
  /* Resume, with faults on the way: a drop, a stall, a 429 and a 500. */
  wh_test_hub_stats s0;
  wh_test_hub_get_stats(f->server, &s0);
  g_free(s0.last_user_agent);
  flt.rate = 0;
  flt.drop = 1;
  flt.stall = 1;
  flt.stall_ms = 2500;
  flt.status_429 = 1;
  flt.status_500 = 1;
  wh_test_hub_set_faults(f->server, &flt);
  g_object_unref(c.cancel);
  c.cancel = g_cancellable_new();
  c.stop_at = 0;
  wh_hub_free(f->hub);
  f->hub = make_hub(f, "hf_good", 1); /* 1 s inactivity timeout: the stall is noticed */
  r = wh_hub_download(f->hub, "org/model-GGUF", file, &p, c.cancel, &error);
  g_assert_no_error(error);
  g_assert_true(r->resumed);
  check_cached(f, r, "org/model-GGUF", file, src);
  g_assert_false(g_file_test(state, G_FILE_TEST_EXISTS));
  g_assert_cmpuint(c.last_done, ==, r->size);
  wh_test_hub_stats s1;
  wh_test_hub_get_stats(f->server, &s1);
  g_free(s1.last_user_agent);
  g_assert_cmpuint(s1.cdn_requests - s0.cdn_requests, >=, 4 + 4); /* segments + 4 faults */
  g_assert_cmpuint(s1.auth_on_cdn, ==, 0);
  wh_hub_download_result_free(r);
  g_object_unref(c.cancel);
}

static void
test_download_corrupt_and_range(fixture *f, gconstpointer data)
{
  if (!f->tmp)
    return;
  g_autoptr(GError) error = NULL;
  wh_test_hub_faults flt = {0};
  flt.corrupt = 1;
  wh_test_hub_set_faults(f->server, &flt);
  wh_hub_download_params p;
  wh_hub_download_default_params(&p);
  g_autoptr(wh_hub_download_result) r =
      wh_hub_download(f->hub, "org/model-GGUF", "model-Q4_K_M.gguf", &p, NULL, &error);
  g_assert_no_error(error);
  check_cached(f, r, "org/model-GGUF", "model-Q4_K_M.gguf", f->q4k_path);
  g_assert_nonnull(r->notice); /* says it arrived corrupted and was fetched again */
  g_assert_nonnull(strstr(r->notice, "corrupted"));
  /* Corrupted every time: a checksum error, nothing left in blobs/. */
  flt.corrupt = 100;
  wh_test_hub_set_faults(f->server, &flt);
  wh_hub_download_result *bad =
      wh_hub_download(f->hub, "org/model-GGUF", "model-Q8_0.gguf", &p, NULL, &error);
  g_assert_null(bad);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_CHECKSUM);
  g_clear_error(&error);
  g_autofree char *folder = wh_hub_repo_folder_name("org/model-GGUF");
  g_autofree char *sha8 = sha256_of(shared_model("reference/models/synth-llama-Q8_0.gguf"));
  g_autofree char *blob = g_strdup_printf("%s/hub/%s/blobs/%s", f->home, folder, sha8);
  g_assert_false(g_file_test(blob, G_FILE_TEST_EXISTS));
  /* A server that answers 200 to Range requests: restart from byte 0 as one stream. */
  flt.corrupt = 0;
  flt.ignore_range = 1;
  wh_test_hub_set_faults(f->server, &flt);
  p.n_segments = 3;
  p.segment_threshold = 1;
  g_autoptr(wh_hub_download_result) r2 =
      wh_hub_download(f->hub, "org/model-GGUF", "model-Q8_0.gguf", &p, NULL, &error);
  g_assert_no_error(error);
  check_cached(f, r2, "org/model-GGUF", "model-Q8_0.gguf",
               shared_model("reference/models/synth-llama-Q8_0.gguf"));
}

static void
test_download_lies(fixture *f, gconstpointer data)
{
  if (!f->tmp)
    return;
  g_autoptr(GError) error = NULL;
  wh_test_hub_faults flt = {0};
  flt.lie_size = TRUE;
  wh_test_hub_set_faults(f->server, &flt);
  wh_hub_download_result *r =
      wh_hub_download(f->hub, "org/stories-GGUF", "stories260K-Q8_0.gguf", NULL, NULL, &error);
  g_assert_null(r);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_PROTOCOL);
  g_clear_error(&error);
  /* The CDN changes the file under us: detected, explained, fetched again. */
  flt.lie_size = FALSE;
  flt.change_etag = 1;
  wh_test_hub_set_faults(f->server, &flt);
  r = wh_hub_download(f->hub, "org/stories-GGUF", "stories260K-Q8_0.gguf", NULL, NULL, &error);
  g_assert_no_error(error);
  g_assert_nonnull(r->notice);
  g_assert_nonnull(strstr(r->notice, "changed"));
  check_cached(f, r, "org/stories-GGUF", "stories260K-Q8_0.gguf",
               shared_model("reference/models/stories260K-Q8_0.gguf"));
  wh_hub_download_result_free(r);
  /* A partial download of an older version of the same file is discarded, with a note. */
  g_autofree char *folder = wh_hub_repo_folder_name("org/model-GGUF");
  g_autofree char *blobs = g_strdup_printf("%s/hub/%s/blobs", f->home, folder);
  g_mkdir_with_parents(blobs, 0755);
  const char *old = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  g_autofree char *op = g_strdup_printf("%s/%s.incomplete", blobs, old);
  g_autofree char *os = g_strdup_printf("%s.whittle", op);
  g_file_set_contents(op, "partial", -1, NULL);
  g_autofree char *ost = g_strdup_printf("[download]\netag=%s\nsize=100\nrepo=org/model-GGUF\n"
                                         "file=model-Q4_K_M.gguf\nsegments=0:100:7\n",
                                         old);
  g_file_set_contents(os, ost, -1, NULL);
  r = wh_hub_download(f->hub, "org/model-GGUF", "model-Q4_K_M.gguf", NULL, NULL, &error);
  g_assert_no_error(error);
  g_assert_nonnull(r->notice);
  g_assert_nonnull(strstr(r->notice, "changed on the hub"));
  g_assert_false(g_file_test(op, G_FILE_TEST_EXISTS));
  g_assert_false(g_file_test(os, G_FILE_TEST_EXISTS));
  wh_hub_download_result_free(r);
}

static void
test_auth(fixture *f, gconstpointer data)
{
  if (!f->tmp)
    return;
  g_autoptr(GError) error = NULL;
  wh_hub *anon = make_hub(f, NULL, 0);
  wh_hub_download_result *r =
      wh_hub_download(anon, "gated/secret-GGUF", "secret-Q4_0.gguf", NULL, NULL, &error);
  g_assert_null(r);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_AUTH);
  g_assert_nonnull(strstr(error->message, "sign in"));
  g_assert_nonnull(strstr(error->message, "token"));
  g_clear_error(&error);
  wh_hub_set_token(anon, "hf_other");
  r = wh_hub_download(anon, "gated/secret-GGUF", "secret-Q4_0.gguf", NULL, NULL, &error);
  g_assert_null(r);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_FORBIDDEN);
  g_assert_nonnull(strstr(error->message, "request access"));
  g_assert_null(strstr(error->message, "hf_other")); /* the token is never shown */
  g_clear_error(&error);
  wh_hub_set_token(anon, "hf_good");
  r = wh_hub_download(anon, "gated/secret-GGUF", "secret-Q4_0.gguf", NULL, NULL, &error);
  g_assert_no_error(error);
  wh_hub_download_result_free(r);
  wh_hub_free(anon);
  /* Missing file: 404 in words. */
  r = wh_hub_download(f->hub, "org/model-GGUF", "nope.gguf", NULL, NULL, &error);
  g_assert_null(r);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_NOT_FOUND);
}

static void
test_retry_after_and_token_file(fixture *f, gconstpointer data)
{
  if (!f->tmp)
    return;
  /* 429 with Retry-After: 1 is honoured even though our own backoff would be 50 ms. */
  wh_test_hub_faults flt = {0};
  flt.status_429 = 1;
  wh_test_hub_set_faults(f->server, &flt);
  g_autoptr(GError) error = NULL;
  gint64 t0 = g_get_monotonic_time();
  wh_hub_download_result *r =
      wh_hub_download(f->hub, "org/stories-GGUF", "stories260K-Q8_0.gguf", NULL, NULL, &error);
  double elapsed = (g_get_monotonic_time() - t0) / 1e6;
  g_assert_no_error(error);
  g_assert_cmpfloat(elapsed, >=, 0.95);
  wh_hub_download_result_free(r);
  /* The hub's own form, RateLimit: "resolvers";r=0;t=1 without Retry-After, is honoured too. */
  flt.status_429 = 0;
  flt.ratelimit_429 = 1;
  wh_test_hub_set_faults(f->server, &flt);
  t0 = g_get_monotonic_time();
  r = wh_hub_download(f->hub, "org/model-GGUF", "model-Q8_0.gguf", NULL, NULL, &error);
  elapsed = (g_get_monotonic_time() - t0) / 1e6;
  g_assert_no_error(error);
  g_assert_cmpfloat(elapsed, >=, 0.95);
  wh_hub_download_result_free(r);
  /* The token comes from $HF_HOME/token when HF_TOKEN is not set. */
  g_autofree char *old = g_strdup(g_getenv("HF_TOKEN"));
  g_unsetenv("HF_TOKEN");
  g_unsetenv("HF_TOKEN_PATH");
  g_mkdir_with_parents(f->home, 0755);
  g_autofree char *tf = g_build_filename(f->home, "token", NULL);
  g_file_set_contents(tf, "hf_good\n", -1, NULL);
  wh_hub_config cfg;
  wh_hub_default_config(&cfg);
  cfg.endpoint = wh_test_hub_url(f->server);
  cfg.home = f->home;
  cfg.offline = 0;
  wh_hub *hub = wh_hub_new(&cfg, &error);
  g_assert_true(wh_hub_has_token(hub));
  r = wh_hub_download(hub, "gated/secret-GGUF", "secret-Q4_0.gguf", NULL, NULL, &error);
  g_assert_no_error(error);
  wh_hub_download_result_free(r);
  wh_hub_free(hub);
  /* A token with a line break would inject a header: refused (no token set). */
  hub = wh_hub_new(&cfg, &error);
  wh_hub_set_token(hub, "hf_good\r\nX-Evil: 1");
  g_assert_false(wh_hub_has_token(hub));
  wh_hub_free(hub);
  if (old)
    g_setenv("HF_TOKEN", old, TRUE);
}

static gint64
tiny_disk(const char *dir, gpointer data)
{
  return *(gint64 *)data;
}

static void
test_full_disk(fixture *f, gconstpointer data)
{
  if (!f->tmp)
    return;
  gint64 free_bytes = 1000;
  wh_hub_config cfg;
  wh_hub_default_config(&cfg);
  cfg.endpoint = wh_test_hub_url(f->server);
  cfg.home = f->home;
  cfg.no_token = TRUE;
  cfg.offline = 0;
  cfg.free_space = tiny_disk;
  cfg.free_space_data = &free_bytes;
  g_autoptr(GError) error = NULL;
  wh_hub *hub = wh_hub_new(&cfg, &error);
  wh_hub_download_result *r =
      wh_hub_download(hub, "org/model-GGUF", "model-Q4_K_M.gguf", NULL, NULL, &error);
  g_assert_null(r);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_NO_SPACE);
  g_assert_nonnull(strstr(error->message, "not enough disk space: need 2.1 MB, have 1.0 kB in"));
  wh_hub_free(hub);
}

/* --- jobs --------------------------------------------------------------------------------------
 */

typedef struct {
  guint notifies;
  gboolean saw_bytes;
} notify_count;

static void
on_notify(wh_job *job, gpointer data)
{
  notify_count *n = data;
  n->notifies++;
  wh_job_progress p;
  wh_job_get_progress(job, &p);
  if (p.total > 0 && p.done > 0)
    n->saw_bytes = TRUE;
}

static void
test_async(fixture *f, gconstpointer data)
{
  if (!f->tmp)
    return;
  GMainContext *ctx = g_main_context_new();
  g_main_context_push_thread_default(ctx);
  wh_job_queue *q = wh_job_queue_new(ctx, 2);
  notify_count n = {0};
  wh_job *info = wh_hub_model_info_async(f->hub, q, "org/model-GGUF", NULL, NULL, NULL);
  wh_job *dl = wh_hub_download_async(f->hub, q, "org/stories-GGUF", "stories260K-Q8_0.gguf", NULL,
                                     on_notify, &n);
  while (!wh_job_is_finished(dl) || !wh_job_is_finished(info) || wh_job_queue_n_active(q))
    g_main_context_iteration(ctx, TRUE);
  while (g_main_context_iteration(ctx, FALSE)) {
  }
  g_assert_cmpint(wh_job_get_state(info), ==, WH_JOB_SUCCEEDED);
  wh_hub_model_info *mi = wh_job_get_result(info);
  g_assert_cmpuint(mi->files->len, ==, 6);
  g_assert_cmpint(wh_job_get_state(dl), ==, WH_JOB_SUCCEEDED);
  wh_hub_download_result *r = wh_job_get_result(dl);
  g_autofree char *got = sha256_of(r->path);
  g_autofree char *want = sha256_of(shared_model("reference/models/stories260K-Q8_0.gguf"));
  g_assert_cmpstr(got, ==, want);
  g_assert_cmpuint(n.notifies, >=, 1);
  /* Cancelling a slow download leaves a resumable partial file. */
  wh_test_hub_faults flt = {0};
  flt.rate = 1u << 20;
  wh_test_hub_set_faults(f->server, &flt);
  wh_job *slow =
      wh_hub_download_async(f->hub, q, "org/model-GGUF", "model-Q4_K_M.gguf", NULL, NULL, NULL);
  g_usleep(300000);
  wh_job_cancel(slow);
  while (!wh_job_is_finished(slow))
    g_main_context_iteration(ctx, TRUE);
  g_assert_cmpint(wh_job_get_state(slow), ==, WH_JOB_CANCELLED);
  wh_job_unref(slow);
  wh_job_unref(info);
  wh_job_unref(dl);
  wh_job_queue_free(q);
  g_main_context_pop_thread_default(ctx);
  g_main_context_unref(ctx);
}

/* --- token storage ----------------------------------------------------------------------------
 */

static void
test_token_fallback(void)
{
  g_autofree char *old = g_strdup(g_getenv("HF_TOKEN"));
  g_autofree char *old_off = g_strdup(g_getenv("WH_NO_SECRET_SERVICE"));
  g_unsetenv("HF_TOKEN");
  g_unsetenv("HF_TOKEN_PATH");
  g_setenv("WH_NO_SECRET_SERVICE", "1", TRUE);
  g_autofree char *tmp = wh_test_make_tmpdir();
  g_autofree char *home = g_build_filename(tmp, "hf", NULL);
  g_autofree char *file = g_build_filename(home, "token", NULL);
  const char *ep = "http://127.0.0.1:9/";
  GError *error = NULL;

  /* Malformed tokens are refused without quoting them. */
  const char *bad[] = {"", "hf_a b", "hf_a\r\nX-Evil: 1", "hf_\xc3\xa9"};
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_assert_false(wh_hub_token_validate(bad[i], &error));
    g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_INVALID);
    if (*bad[i])
      g_assert_null(strstr(error->message, bad[i]));
    g_clear_error(&error);
  }
  g_assert_true(wh_hub_token_validate("hf_AbC123", NULL));
  g_assert_false(wh_hub_token_keyring_reachable());

  /* Nothing anywhere: no token, and the notice says why. */
  wh_hub_token_info *info = wh_hub_token_load(ep, home, NULL);
  g_assert_null(info->token);
  g_assert_cmpint(info->source, ==, WH_HUB_TOKEN_FROM_NONE);
  g_assert_false(info->keyring_available);
  g_assert_nonnull(strstr(info->notice, "no Secret Service is reachable"));
  wh_hub_token_info_free(info);

  /* Store without file fallback: refused, nothing written. */
  wh_hub_token_source where = WH_HUB_TOKEN_FROM_KEYRING;
  char *notice = NULL;
  g_assert_false(wh_hub_token_store(ep, home, "hf_secret1", FALSE, &where, &notice, NULL, &error));
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_IO);
  g_assert_nonnull(strstr(error->message, "HF_TOKEN"));
  g_assert_null(strstr(error->message, "hf_secret1"));
  g_clear_error(&error);
  g_assert_cmpint(where, ==, WH_HUB_TOKEN_FROM_NONE);
  g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));

  /* With the fallback: the token file, 0600, the notice names it and not the token. */
  g_assert_true(wh_hub_token_store(ep, home, "hf_secret1", TRUE, &where, &notice, NULL, &error));
  g_assert_no_error(error);
  g_assert_cmpint(where, ==, WH_HUB_TOKEN_FROM_FILE);
  g_assert_nonnull(strstr(notice, file));
  g_assert_nonnull(strstr(notice, "no Secret Service"));
  g_assert_null(strstr(notice, "hf_secret1"));
  g_free(notice);
  struct stat st;
  g_assert_cmpint(stat(file, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 0777, ==, 0600);
  g_autofree char *content = NULL;
  g_assert_true(g_file_get_contents(file, &content, NULL, NULL));
  g_assert_cmpstr(content, ==, "hf_secret1");

  info = wh_hub_token_load(ep, home, NULL);
  g_assert_cmpstr(info->token, ==, "hf_secret1");
  g_assert_cmpint(info->source, ==, WH_HUB_TOKEN_FROM_FILE);
  g_assert_nonnull(strstr(info->notice, file));
  g_assert_null(strstr(info->notice, "hf_secret1"));
  wh_hub_token_info_free(info);

  /* HF_TOKEN comes before the file. */
  g_setenv("HF_TOKEN", "hf_fromenv", TRUE);
  info = wh_hub_token_load(ep, home, NULL);
  g_assert_cmpstr(info->token, ==, "hf_fromenv");
  g_assert_cmpint(info->source, ==, WH_HUB_TOKEN_FROM_ENV);
  g_assert_nonnull(strstr(info->notice, "HF_TOKEN"));
  wh_hub_token_info_free(info);

  /* A hub created now uses HF_TOKEN; with no keyring it is kept. */
  wh_hub_config cfg;
  wh_hub_default_config(&cfg);
  cfg.endpoint = ep;
  cfg.home = home;
  wh_hub *hub = wh_hub_new(&cfg, &error);
  g_assert_cmpint(wh_hub_use_stored_token(hub, NULL), ==, WH_HUB_TOKEN_FROM_ENV);
  g_assert_true(wh_hub_has_token(hub));
  wh_hub_free(hub);

  /* Clear removes the file and reminds that HF_TOKEN is still set. */
  g_assert_true(wh_hub_token_clear(ep, home, TRUE, &notice, NULL, &error));
  g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));
  g_assert_nonnull(strstr(notice, "HF_TOKEN is still set"));
  g_free(notice);
  g_unsetenv("HF_TOKEN");
  info = wh_hub_token_load(ep, home, NULL);
  g_assert_null(info->token);
  wh_hub_token_info_free(info);

  if (old)
    g_setenv("HF_TOKEN", old, TRUE);
  if (old_off)
    g_setenv("WH_NO_SECRET_SERVICE", old_off, TRUE);
  else
    g_unsetenv("WH_NO_SECRET_SERVICE");
  wh_test_rmdir_r(tmp);
}

static void
test_token_keyring(void)
{
  if (!wh_hub_token_keyring_reachable()) {
    g_test_skip("no D-Bus session bus, so no Secret Service: the keyring path is not tested "
                "(the fallback path is, in /hub/token-fallback)");
    return;
  }
  g_autofree char *ep = g_strdup_printf("http://whittle-test-%08x.invalid", g_random_int());
  g_autofree char *tmp = wh_test_make_tmpdir();
  wh_hub_token_info *info = wh_hub_token_load(ep, tmp, NULL);
  gboolean available = info->keyring_available;
  wh_hub_token_info_free(info);
  if (!available) {
    g_test_skip("a session bus but no Secret Service daemon answers: the keyring path is not "
                "tested");
    wh_test_rmdir_r(tmp);
    return;
  }
  GError *error = NULL;
  wh_hub_token_source where = WH_HUB_TOKEN_FROM_NONE;
  g_assert_true(wh_hub_token_store(ep, tmp, "hf_keyring1", FALSE, &where, NULL, NULL, &error));
  g_assert_no_error(error);
  g_assert_cmpint(where, ==, WH_HUB_TOKEN_FROM_KEYRING);
  info = wh_hub_token_load(ep, tmp, NULL);
  g_assert_cmpstr(info->token, ==, "hf_keyring1");
  g_assert_cmpint(info->source, ==, WH_HUB_TOKEN_FROM_KEYRING);
  wh_hub_token_info_free(info);
  g_assert_true(wh_hub_token_clear(ep, tmp, FALSE, NULL, NULL, &error));
  info = wh_hub_token_load(ep, tmp, NULL);
  g_assert_cmpint(info->source, !=, WH_HUB_TOKEN_FROM_KEYRING);
  wh_hub_token_info_free(info);
  wh_test_rmdir_r(tmp);
}

/* --- TLS: a server whose certificate nobody vouches for -------------------------------------
 */

typedef struct {
  GTlsCertificate *cert;
  GMainContext *ctx;
  GMainLoop *loop;
  GMutex lock;
  GCond ready;
  gboolean started;
  guint port;
  gint requests; /* HTTP requests that got through (must stay 0) */
} tls_server;

static void
tls_handler(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
            gpointer data)
{
  tls_server *t = data;
  g_atomic_int_inc(&t->requests);
  soup_server_message_set_status(msg, 200, NULL);
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_STATIC, "{}", 2);
}

static gpointer
tls_thread(gpointer data)
{
  tls_server *t = data;
  g_main_context_push_thread_default(t->ctx);
  SoupServer *srv = soup_server_new("tls-certificate", t->cert, NULL);
  soup_server_add_handler(srv, NULL, tls_handler, t, NULL);
  g_autoptr(GError) error = NULL;
  if (soup_server_listen_local(srv, 0, SOUP_SERVER_LISTEN_HTTPS | SOUP_SERVER_LISTEN_IPV4_ONLY,
                               &error)) {
    GSList *uris = soup_server_get_uris(srv);
    if (uris)
      t->port = (guint)g_uri_get_port(uris->data);
    g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
  }
  g_mutex_lock(&t->lock);
  t->started = TRUE;
  g_cond_signal(&t->ready);
  g_mutex_unlock(&t->lock);
  if (t->port)
    g_main_loop_run(t->loop);
  soup_server_disconnect(srv);
  g_object_unref(srv);
  g_main_context_pop_thread_default(t->ctx);
  return NULL;
}

static gboolean
no_regular_files(const char *dir)
{
  GDir *d = g_dir_open(dir, 0, NULL);
  if (!d)
    return TRUE;
  gboolean none = TRUE;
  const char *n;
  while (none && (n = g_dir_read_name(d))) {
    g_autofree char *p = g_build_filename(dir, n, NULL);
    if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
      none = no_regular_files(p);
    else
      none = FALSE;
  }
  g_dir_close(d);
  return none;
}

static void
test_tls_untrusted(void)
{
  g_autofree char *openssl = g_find_program_in_path("openssl");
  if (!openssl) {
    g_test_skip("openssl is not installed: cannot make a self-signed certificate");
    return;
  }
  g_autofree char *tmp = wh_test_make_tmpdir();
  g_autofree char *key = g_build_filename(tmp, "key.pem", NULL);
  g_autofree char *crt = g_build_filename(tmp, "cert.pem", NULL);
  const char *argv[] = {openssl,
                        "req",
                        "-x509",
                        "-newkey",
                        "ec",
                        "-pkeyopt",
                        "ec_paramgen_curve:prime256v1",
                        "-nodes",
                        "-keyout",
                        key,
                        "-out",
                        crt,
                        "-days",
                        "1",
                        "-subj",
                        "/CN=127.0.0.1",
                        "-addext",
                        "subjectAltName=IP:127.0.0.1",
                        NULL};
  gint status = 0;
  g_autoptr(GError) error = NULL;
  if (!g_spawn_sync(NULL, (char **)argv, NULL,
                    G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL,
                    &status, &error) ||
      !g_spawn_check_wait_status(status, NULL)) {
    g_test_skip("openssl could not make a self-signed certificate");
    wh_test_rmdir_r(tmp);
    return;
  }
  tls_server t = {0};
  t.cert = g_tls_certificate_new_from_files(crt, key, &error);
  if (!t.cert) {
    g_autofree char *msg = g_strdup_printf("no TLS backend (glib-networking): %s", error->message);
    g_test_skip(msg);
    wh_test_rmdir_r(tmp);
    return;
  }
  g_mutex_init(&t.lock);
  g_cond_init(&t.ready);
  t.ctx = g_main_context_new();
  t.loop = g_main_loop_new(t.ctx, FALSE);
  GThread *th = g_thread_new("tls-server", tls_thread, &t);
  g_mutex_lock(&t.lock);
  while (!t.started)
    g_cond_wait(&t.ready, &t.lock);
  g_mutex_unlock(&t.lock);
  g_assert_cmpuint(t.port, >, 0);

  g_autofree char *url = g_strdup_printf("https://127.0.0.1:%u", t.port);
  g_autofree char *home = g_build_filename(tmp, "hf", NULL);
  wh_hub_config cfg;
  wh_hub_default_config(&cfg);
  cfg.endpoint = url;
  cfg.home = home;
  cfg.token = "hf_mustnotleak";
  cfg.offline = 0;
  cfg.retry_base_seconds = 0.01;
  wh_hub *hub = wh_hub_new(&cfg, &error);
  g_assert_no_error(error);
  gint64 t0 = g_get_monotonic_time();
  wh_hub_model_info *mi = wh_hub_model_info_get(hub, "org/model-GGUF", NULL, NULL, &error);
  g_assert_null(mi);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_TLS);
  g_assert_nonnull(strstr(error->message, "TLS certificate not trusted"));
  g_assert_nonnull(strstr(error->message, "127.0.0.1"));
  g_assert_null(strstr(error->message, "hf_mustnotleak"));
  g_clear_error(&error);
  wh_hub_download_result *r =
      wh_hub_download(hub, "org/model-GGUF", "model-Q4_K_M.gguf", NULL, NULL, &error);
  g_assert_null(r);
  g_assert_error(error, WH_HUB_ERROR, WH_HUB_ERROR_TLS);
  g_assert_nonnull(strstr(error->message, "TLS certificate not trusted"));
  g_clear_error(&error);
  /* Not retried (a certificate does not get better by waiting), nothing reached the server's
   * HTTP layer, nothing was written. */
  g_assert_cmpfloat((g_get_monotonic_time() - t0) / 1e6, <, 20.0);
  g_assert_cmpint(g_atomic_int_get(&t.requests), ==, 0);
  g_assert_true(no_regular_files(home));
  wh_hub_free(hub);

  g_main_loop_quit(t.loop);
  g_main_context_wakeup(t.ctx);
  g_thread_join(th);
  g_main_loop_unref(t.loop);
  g_main_context_unref(t.ctx);
  g_object_unref(t.cert);
  g_mutex_clear(&t.lock);
  g_cond_clear(&t.ready);
  wh_test_rmdir_r(tmp);
}

int
main(int argc, char **argv)
{
  if (argc >= 2 && strcmp(argv[1], "--serve") == 0)
    return wh_test_hub_serve_main(argc - 1, argv + 1);
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/hub/validate", test_validate);
  g_test_add_func("/hub/quant-labels", test_quant_labels);
  g_test_add_func("/hub/grouping", test_grouping);
  g_test_add_func("/hub/header-end", test_header_end);
  g_test_add_func("/hub/param-count", test_param_count);
  g_test_add_func("/hub/token-fallback", test_token_fallback);
  g_test_add_func("/hub/token-keyring", test_token_keyring);
  g_test_add_func("/hub/tls-untrusted", test_tls_untrusted);
#define ADD(name, fn) g_test_add("/hub/" name, fixture, NULL, setup, fn, teardown)
  ADD("search", test_search);
  ADD("model-info", test_model_info);
  ADD("tree", test_tree);
  ADD("bad-answers", test_bad_answers);
  ADD("remote-header", test_remote_header);
  ADD("download-single", test_download_single);
  ADD("download-segments-resume-faults", test_download_segments_resume);
  ADD("download-corrupt-and-range", test_download_corrupt_and_range);
  ADD("download-lies", test_download_lies);
  ADD("auth", test_auth);
  ADD("retry-after-and-token-file", test_retry_after_and_token_file);
  ADD("full-disk", test_full_disk);
  ADD("async", test_async);
  int status = g_test_run();
  /* LeakSanitizer stops every thread at exit to scan them; a pool thread that is exiting
   * at that very moment can crash its tracer ("Tracer caught signal 11", seen once in the
   * ASan pass). Let the idle pool threads (GTask, resolver, download segments) end first. */
  g_thread_pool_set_max_unused_threads(0);
  g_thread_pool_stop_unused_threads();
  g_usleep(200 * 1000);
  return status;
}
