/* fuzz-hub-json.c — the hub client's parsers on arbitrary bytes: model info, file tree and
 * search answers (JSON), the GGUF header walker used by the remote header read, and the file
 * name checks and quant labels derived from names found in those answers. */
#include "config.h"

#include "fuzz-main.h"
#include "hub/hub.h"
#include "wh-test-util.h"

#include <string.h>

static guint64 sink;

static void
touch_files(GPtrArray *files)
{
  for (guint i = 0; i < files->len; i++) {
    wh_hub_file *f = files->pdata[i];
    /* Every name that got through must be a safe relative path. */
    g_assert_true(wh_hub_validate_filename(f->path, NULL));
    g_assert_true(f->path[0] != '/' && !g_str_has_prefix(f->path, "../") &&
                  !strstr(f->path, "/../") && !g_str_has_suffix(f->path, "/..") &&
                  strcmp(f->path, "..") != 0);
    sink += f->size + (f->quant ? strlen(f->quant) : 0) + f->split_index;
  }
  GPtrArray *groups = wh_hub_group_gguf_files(files);
  for (guint i = 0; i < groups->len; i++) {
    wh_hub_gguf_group *g = groups->pdata[i];
    sink += g->total_size + g->files->len + g->mmproj->len + strlen(g->name);
  }
  if (groups->len)
    sink += (guintptr)wh_hub_find_quant(groups, "Q4_K_M");
  g_ptr_array_unref(groups);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *text = (const char *)data;
  wh_hub_model_info *info = wh_hub_model_info_parse(text, size, "fuzz/model", NULL);
  if (info) {
    touch_files(info->files);
    sink += info->gguf.total + info->downloads + g_strv_length(info->tags);
    wh_hub_model_info_free(info);
  }
  GPtrArray *tree = wh_hub_tree_parse(text, size, "fuzz/model", NULL);
  if (tree) {
    touch_files(tree);
    g_ptr_array_unref(tree);
  }
  wh_hub_search_result *sr = wh_hub_search_result_parse(text, size, NULL);
  if (sr) {
    for (guint i = 0; i < sr->models->len; i++) {
      wh_hub_model_summary *m = sr->models->pdata[i];
      g_assert_true(wh_hub_validate_repo_id(m->id, NULL));
      sink += m->downloads + strlen(m->id);
    }
    wh_hub_search_result_free(sr);
  }
  gint64 end = wh_hub_gguf_header_end(data, size, NULL);
  g_assert_true(end <= (gint64)size);
  sink += (guint64)end;
  /* Names: NUL-terminated copy, capped. */
  char *name = g_strndup(text, MIN(size, (size_t)512));
  if (wh_hub_validate_filename(name, NULL)) {
    char *label = wh_hub_parse_quant_label(name);
    sink += label ? strlen(label) : 0;
    g_free(label);
  }
  sink += wh_hub_validate_repo_id(name, NULL);
  g_free(name);
  return 0;
}

static void
add_string(GPtrArray *seeds, const char *s)
{
  g_ptr_array_add(seeds, g_bytes_new(s, strlen(s)));
}

void
wh_fuzz_collect_seeds(GPtrArray *seeds)
{
  add_string(
      seeds,
      "{\"_id\":\"x\",\"id\":\"org/m-GGUF\",\"sha\":\"0123456789abcdef0123456789abcdef01234567\","
      "\"gated\":\"manual\",\"private\":false,\"downloads\":12,\"likes\":3,\"tags\":[\"gguf\"],"
      "\"gguf\":{\"total\":1000,\"architecture\":\"llama\",\"context_length\":4096},"
      "\"siblings\":[{\"rfilename\":\"m-Q4_K_M.gguf\",\"size\":10,\"blobId\":\"ab\","
      "\"lfs\":{\"sha256\":\"0185e032541d0f19369be794fd2a0f0c52029c8e67183b55f8de10cff2b3c75d\","
      "\"size\":2000,\"pointerSize\":135}},{\"rfilename\":\"big/m-Q8_0-00001-of-00002.gguf\"},"
      "{\"rfilename\":\"big/m-Q8_0-00002-of-00002.gguf\"},{\"rfilename\":\"mmproj-f16.gguf\"},"
      "{\"rfilename\":\"../../etc/passwd\"},{\"rfilename\":\"/abs.gguf\"}]}");
  add_string(
      seeds,
      "[{\"type\":\"directory\",\"oid\":\"0\",\"size\":0,\"path\":\"big\"},"
      "{\"type\":\"file\",\"oid\":\"ab\",\"size\":5,\"path\":\"big/a-IQ2_XXS.gguf\","
      "\"lfs\":{\"oid\":\"0185e032541d0f19369be794fd2a0f0c52029c8e67183b55f8de10cff2b3c75d\","
      "\"size\":5,\"pointerSize\":135}},{\"type\":\"file\",\"path\":\"README.md\",\"size\":-4}]");
  add_string(seeds, "[{\"type\":\"file\",\"path\":\"a\\u0001b.gguf\",\"size\":1e30}]");
  add_string(seeds,
             "[{\"id\":\"org/a\",\"downloads\":5,\"likes\":1.5,\"tags\":[1,\"x\"],\"gated\":true},"
             "{\"id\":\"../evil\"},{\"modelId\":\"org/b\"},3,null]");
  add_string(seeds, "{\"id\": [unterminated");
  add_string(seeds, "model-UD-Q4_K_XL-00001-of-00003.gguf");
  g_autofree char *path = wh_test_shared_path("models/stories260K.gguf");
  g_autofree char *contents = NULL;
  gsize len;
  if (g_file_get_contents(path, &contents, &len, NULL))
    g_ptr_array_add(seeds, g_bytes_new(contents, MIN(len, (gsize)16384)));
}
