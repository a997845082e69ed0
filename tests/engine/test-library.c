/* test-library.c — the local model library on fake HF cache / Ollama / LM Studio / folder trees
 * built in a temporary folder from the shared GGUF files (symlinks and small copies), every
 * field checked against the GGUF's own header, split grouping, projectors, corrupt files,
 * the metadata cache, the download index and the delete rules. */
#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/gguf-types.h"
#include "gguf/gguf-writer.h"
#include "gguf/gguf.h"
#include "library/library.h"
#include "wh-test-util.h"

#define COMMIT_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define COMMIT_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define COMMIT_C "cccccccccccccccccccccccccccccccccccccccc"

typedef struct {
  char *tmp;
  char *hf_home, *hub, *ollama, *lms, *folder, *data, *cache;
  const char *lms_dirs[2];
  const char *folders[2];
  char *own_path;    /* snapshot entry of the Whittle download */
  char *own_path2;   /* the same blob in a second snapshot (also Whittle's) */
  char *other_path;  /* HF cache file from another tool */
  char *split_first; /* first shard of the split model in the HF cache */
  char *ollama_blob;
} fixture;

static char *
shared(const char *rel)
{
  char *p = wh_test_shared_path(rel);
  if (!g_file_test(p, G_FILE_TEST_IS_REGULAR)) {
    g_free(p);
    return NULL;
  }
  return p;
}

static void
mkdirs(const char *path)
{
  g_assert_cmpint(g_mkdir_with_parents(path, 0755), ==, 0);
}

static void
symlink_or_die(const char *target, const char *link)
{
  g_autofree char *dir = g_path_get_dirname(link);
  mkdirs(dir);
  g_assert_cmpint(symlink(target, link), ==, 0);
}

static void
copy_or_die(const char *from, const char *to)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(from, &data, &len, NULL));
  g_autofree char *dir = g_path_get_dirname(to);
  mkdirs(dir);
  g_assert_true(g_file_set_contents(to, data, (gssize)len, NULL));
}

/* Adds @filename to snapshot @commit of @repo_folder as the HF cache does: the snapshot entry
 * is a relative link to blobs/@etag; the blob is @blob_target (a link to a shared file) or a
 * copy of @copy_from. Returns the snapshot path. */
static char *
hf_add(fixture *f, const char *repo_folder, const char *commit, const char *filename,
       const char *etag, const char *blob_target, const char *copy_from)
{
  g_autofree char *blob = g_build_filename(f->hub, repo_folder, "blobs", etag, NULL);
  if (!g_file_test(blob, G_FILE_TEST_EXISTS)) {
    if (blob_target)
      symlink_or_die(blob_target, blob);
    else
      copy_or_die(copy_from, blob);
  }
  char *snap = g_build_filename(f->hub, repo_folder, "snapshots", commit, filename, NULL);
  int depth = 0;
  for (const char *p = filename; *p; p++)
    depth += *p == '/';
  GString *rel = g_string_new("../../");
  for (int i = 0; i < depth; i++)
    g_string_append(rel, "../");
  g_string_append_printf(rel, "blobs/%s", etag);
  symlink_or_die(rel->str, snap);
  g_string_free(rel, TRUE);
  g_autofree char *ref = g_build_filename(f->hub, repo_folder, "refs", "main", NULL);
  g_autofree char *refdir = g_path_get_dirname(ref);
  mkdirs(refdir);
  g_assert_true(g_file_set_contents(ref, commit, -1, NULL));
  return snap;
}

/* Writes @src split into @count shards named <prefix>-0000k-of-0000N.gguf (all tensors). */
static void
write_split(const char *src_path, const char *prefix, guint count)
{
  GError *error = NULL;
  wh_gguf *src = wh_gguf_open(src_path, &error);
  g_assert_no_error(error);
  guint64 n = wh_gguf_n_tensors(src);
  for (guint s = 0; s < count; s++) {
    wh_gguf_writer *w = wh_gguf_writer_new();
    if (s == 0)
      g_assert_true(wh_gguf_writer_copy_kvs(w, src, NULL, &error));
    wh_gguf_writer_set_uint16(w, "split.no", (guint16)s);
    wh_gguf_writer_set_uint16(w, "split.count", (guint16)count);
    wh_gguf_writer_set_int32(w, "split.tensors.count", (gint32)n);
    guint64 lo = n * s / count, hi = n * (s + 1) / count;
    for (guint64 i = lo; i < hi; i++) {
      const wh_gguf_tensor *t = wh_gguf_get_tensor(src, i);
      g_assert_true(wh_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, &error));
    }
    g_autofree char *sp = wh_gguf_split_path(prefix, s, count);
    g_assert_true(wh_gguf_writer_begin(w, sp, &error));
    for (guint64 i = lo; i < hi; i++) {
      const wh_gguf_tensor *t = wh_gguf_get_tensor(src, i);
      g_assert_true(wh_gguf_writer_write(w, t->data, t->n_bytes, &error));
    }
    g_assert_true(wh_gguf_writer_finish(w, &error));
    g_assert_no_error(error);
    wh_gguf_writer_free(w);
  }
  wh_gguf_close(src);
}

static char *
sha256_of_file(const char *path)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(path, &data, &len, NULL));
  return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
}

static void
write_ollama_manifest(fixture *f, const char *registry, const char *ns, const char *model,
                      const char *tag, const char *json)
{
  g_autofree char *p = g_build_filename(f->ollama, "manifests", registry, ns, model, tag, NULL);
  g_autofree char *dir = g_path_get_dirname(p);
  mkdirs(dir);
  g_assert_true(g_file_set_contents(p, json, -1, NULL));
}

/* Builds every source. Returns FALSE (test skipped) when shared files are missing. */
static gboolean
fixture_setup(fixture *f)
{
  memset(f, 0, sizeof *f);
  g_autofree char *stories = shared("models/stories260K.gguf");
  g_autofree char *q4km = shared("reference/models/synth-llama-Q4_K_M.gguf");
  g_autofree char *f16 = shared("reference/models/synth-llama-F16.gguf");
  g_autofree char *q8 = shared("reference/models/synth-llama-Q8_0.gguf");
  g_autofree char *qwen3 = shared("reference/models/synth-qwen3-F16.gguf");
  g_autofree char *phi3 = shared("reference/models/synth-phi3-F16.gguf");
  g_autofree char *qwen2 = shared("reference/models/synth-qwen2-F16.gguf");
  g_autofree char *gemma2 = shared("reference/models/synth-gemma2-F16.gguf");
  if (!stories || !q4km || !f16 || !q8 || !qwen3 || !phi3 || !qwen2 || !gemma2) {
    g_test_skip("shared test data missing: ../shared/models and ../shared/reference/models");
    return FALSE;
  }
  f->tmp = wh_test_make_tmpdir();
  f->hf_home = g_build_filename(f->tmp, "hf", NULL);
  f->hub = g_build_filename(f->hf_home, "hub", NULL);
  f->ollama = g_build_filename(f->tmp, "ollama", NULL);
  f->lms = g_build_filename(f->tmp, "lmstudio", NULL);
  f->folder = g_build_filename(f->tmp, "mine", NULL);
  f->data = g_build_filename(f->tmp, "data", NULL);
  f->cache = g_build_filename(f->tmp, "cache", NULL);
  f->lms_dirs[0] = f->lms;
  f->folders[0] = f->folder;

  /* HF cache: a Whittle download (a copy, so delete can remove the blob) present in two
   * snapshots, another tool's file, a split model with a projector, a partial download. */
  f->own_path = hf_add(f, "models--org--tiny", COMMIT_A, "stories260K.gguf", "e1", NULL, stories);
  f->own_path2 = hf_add(f, "models--org--tiny", COMMIT_B, "stories260K.gguf", "e1", NULL, NULL);
  f->other_path =
      hf_add(f, "models--other--synth", COMMIT_A, "sub/synth-llama-Q4_K_M.gguf", "e2", q4km, NULL);
  g_autofree char *split_dir = g_build_filename(f->tmp, "splitsrc", NULL);
  mkdirs(split_dir);
  g_autofree char *split_prefix = g_build_filename(split_dir, "synth-F16", NULL);
  write_split(f16, split_prefix, 3);
  for (guint s = 0; s < 3; s++) {
    g_autofree char *shard = wh_gguf_split_path(split_prefix, s, 3);
    g_autofree char *name = wh_gguf_split_path("synth-F16", s, 3);
    g_autofree char *etag = g_strdup_printf("s%u", s);
    char *snap = hf_add(f, "models--org--split", COMMIT_C, name, etag, shard, NULL);
    if (s == 0)
      f->split_first = snap;
    else
      g_free(snap);
  }
  g_free(hf_add(f, "models--org--split", COMMIT_C, "mmproj-synth-F16.gguf", "p1", qwen2, NULL));
  /* Hostile: folder links back up inside a snapshot (two per level would be 2^depth walks
   * if followed). */
  g_autofree char *snapc =
      g_build_filename(f->hub, "models--org--split", "snapshots", COMMIT_C, NULL);
  g_autofree char *loop1 = g_build_filename(snapc, "loop1", NULL);
  g_autofree char *loop2 = g_build_filename(snapc, "loop2", NULL);
  symlink_or_die(".", loop1);
  symlink_or_die("..", loop2);
  /* A partial download: the snapshot link dangles (blob still .incomplete). */
  g_autofree char *dangling =
      g_build_filename(f->hub, "models--org--partial", "snapshots", COMMIT_A, "x.gguf", NULL);
  symlink_or_die("../../blobs/nothing", dangling);

  /* Ollama: a model with a projector, a manifest whose blob is missing, a corrupt manifest,
   * a model from another registry. */
  g_autofree char *q8sha = sha256_of_file(q8);
  g_autofree char *gsha = sha256_of_file(gemma2);
  g_autofree char *b1 = g_strdup_printf("sha256-%s", q8sha);
  f->ollama_blob = g_build_filename(f->ollama, "blobs", b1, NULL);
  symlink_or_die(q8, f->ollama_blob);
  g_autofree char *m1 = g_strdup_printf(
      "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
      "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":"
      "\"sha256:%064d\",\"size\":10},\"layers\":["
      "{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:%s\",\"size\":1},"
      "{\"mediaType\":\"application/vnd.ollama.image.projector\",\"digest\":\"sha256:%s\","
      "\"size\":2},"
      "{\"mediaType\":\"application/vnd.ollama.image.template\",\"digest\":\"sha256:%064d\","
      "\"size\":3}]}",
      0, q8sha, gsha, 0);
  write_ollama_manifest(f, "registry.ollama.ai", "library", "tinyllama", "q8", m1);
  g_autofree char *b2 = g_strdup_printf("sha256-%s", gsha);
  g_autofree char *blob2 = g_build_filename(f->ollama, "blobs", b2, NULL);
  symlink_or_die(gemma2, blob2);
  g_autofree char *m2 = g_strdup_printf(
      "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":"
      "\"sha256:%064d\",\"size\":5}]}",
      7);
  write_ollama_manifest(f, "registry.ollama.ai", "library", "gone", "latest", m2);
  write_ollama_manifest(f, "registry.ollama.ai", "someone", "broken", "v1", "{\"layers\": [");

  /* LM Studio: publisher/repo/file. */
  g_autofree char *lp = g_build_filename(f->lms, "pub", "repo-GGUF", "synth-qwen3-F16.gguf", NULL);
  symlink_or_die(qwen3, lp);

  /* A user folder: a nested model, a corrupt file, a link back to the folder (a loop), a link
   * to a file already listed from the HF cache (listed once), a model below the depth limit,
   * a hidden folder. */
  g_autofree char *fp = g_build_filename(f->folder, "a", "b", "synth-phi3-F16.gguf", NULL);
  symlink_or_die(phi3, fp);
  g_autofree char *bad = g_build_filename(f->folder, "corrupt.gguf", NULL);
  g_assert_true(g_file_set_contents(bad, "GGUF\3\0\0\0garbage", 16, NULL));
  g_autofree char *loop = g_build_filename(f->folder, "a", "loop", NULL);
  symlink_or_die(f->folder, loop);
  g_autofree char *dup = g_build_filename(f->folder, "again.gguf", NULL);
  symlink_or_die(f->other_path, dup);
  g_autofree char *deep =
      g_build_filename(f->folder, "1", "2", "3", "4", "5", "6", "7", "8", "9", "d.gguf", NULL);
  symlink_or_die(stories, deep);
  g_autofree char *hidden = g_build_filename(f->folder, ".hidden", "h.gguf", NULL);
  symlink_or_die(stories, hidden);
  return TRUE;
}

static void
fixture_teardown(fixture *f)
{
  if (f->tmp)
    wh_test_rmdir_r(f->tmp);
  g_free(f->tmp);
  g_free(f->hf_home);
  g_free(f->hub);
  g_free(f->ollama);
  g_free(f->lms);
  g_free(f->folder);
  g_free(f->data);
  g_free(f->cache);
  g_free(f->own_path);
  g_free(f->own_path2);
  g_free(f->other_path);
  g_free(f->split_first);
  g_free(f->ollama_blob);
}

static wh_library *
fixture_library(fixture *f, gboolean no_cache)
{
  wh_library_params p;
  wh_library_default_params(&p);
  p.hf_home = f->hf_home;
  p.ollama_models = f->ollama;
  p.lmstudio_dirs = f->lms_dirs;
  p.folders = f->folders;
  p.data_dir = f->data;
  p.cache_dir = f->cache;
  p.no_cache = no_cache;
  return wh_library_new(&p);
}

static wh_library_entry *
find_entry(GPtrArray *entries, const char *name)
{
  for (guint i = 0; i < entries->len; i++) {
    wh_library_entry *e = entries->pdata[i];
    if (strcmp(e->name, name) == 0)
      return e;
  }
  return NULL;
}

/* Every header field of @e equals what the GGUF itself says. */
static void
assert_matches_header(const wh_library_entry *e)
{
  g_assert_null(e->error);
  GError *error = NULL;
  wh_gguf *g = wh_gguf_open(e->paths[0], &error);
  g_assert_no_error(error);
  g_assert_cmpstr(e->architecture, ==, wh_gguf_get_architecture(g));
  g_assert_cmpstr(e->model_name, ==, wh_gguf_get_string(g, "general.name"));
  guint64 ft = 0;
  if (wh_gguf_get_uint(g, "general.file_type", &ft)) {
    g_assert_cmpint(e->file_type, ==, (gint)ft);
    const char *name = wh_ftype_name((guint32)ft);
    g_assert_nonnull(e->quant);
    if (strcmp(name, "ALL_F32") != 0)
      g_assert_cmpstr(e->quant, ==, name);
  } else {
    g_assert_cmpint(e->file_type, ==, -1);
    /* No declared file type: the name's label, else the type of most matrix bytes. */
    g_autofree char *label = wh_hub_parse_quant_label(e->paths[0]);
    if (label) {
      g_assert_cmpstr(e->quant, ==, label);
    } else {
      GHashTable *bytes = g_hash_table_new(g_str_hash, g_str_equal);
      const char *best = NULL;
      guint64 best_bytes = 0;
      for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) {
        const wh_gguf_tensor *t = wh_gguf_get_tensor(g, i);
        if (t->n_dims < 2)
          continue;
        const char *name = wh_type_name(t->type);
        guint64 b = GPOINTER_TO_SIZE(g_hash_table_lookup(bytes, name)) + t->n_bytes;
        g_hash_table_insert(bytes, (gpointer)name, GSIZE_TO_POINTER(b));
        if (b > best_bytes) {
          best_bytes = b;
          best = name;
        }
      }
      g_hash_table_unref(bytes);
      g_assert_nonnull(best);
      g_assert_cmpstr(e->quant, ==, best);
    }
  }
  g_autofree char *ckey = g_strdup_printf("%s.context_length", wh_gguf_get_architecture(g));
  guint64 ctx = 0;
  g_assert_true(wh_gguf_get_uint(g, ckey, &ctx));
  g_assert_cmpuint(e->context_length, ==, ctx);
  g_assert_cmpuint(ctx, >, 0);
  guint64 params = 0;
  for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++)
    params += wh_gguf_get_tensor(g, i)->n_elements;
  g_assert_cmpuint(e->n_params, ==, params);
  g_assert_cmpuint(e->size, ==, wh_gguf_total_size(g));
  wh_gguf_close(g);
  struct stat st;
  g_assert_cmpint(stat(e->paths[0], &st), ==, 0);
  g_assert_cmpint(e->mtime, >=, (gint64)st.st_mtime);
}

static void
test_scan_sources(void)
{
  fixture f;
  if (!fixture_setup(&f))
    return;
  wh_library *lib = fixture_library(&f, TRUE);
  GError *error = NULL;
  GPtrArray *entries = wh_library_scan(lib, NULL, &error);
  g_assert_no_error(error);
  for (guint i = 0; i < entries->len; i++) {
    wh_library_entry *e = entries->pdata[i];
    g_test_message("%-10s %-40s %s", wh_library_source_to_string(e->source), e->name,
                   e->error ? e->error : "");
  }
  /* HF: own download in two snapshots (two entries: one per snapshot folder... but the same
   * blob, so the second is the same file and listed once), the other tool's file, the split. */
  wh_library_entry *own = find_entry(entries, "stories260K");
  g_assert_nonnull(own);
  g_assert_cmpint(own->source, ==, WH_LIBRARY_SOURCE_HF_CACHE); /* not recorded yet */
  g_assert_false(own->deletable);
  g_assert_cmpstr(own->repo_id, ==, "org/tiny");
  assert_matches_header(own);

  wh_library_entry *other = find_entry(entries, "synth-llama-Q4_K_M");
  g_assert_nonnull(other);
  g_assert_cmpint(other->source, ==, WH_LIBRARY_SOURCE_HF_CACHE);
  g_assert_cmpstr(other->repo_id, ==, "other/synth");
  g_assert_cmpstr(other->revision, ==, COMMIT_A);
  g_assert_cmpstr(other->paths[0], ==, f.other_path);
  g_assert_cmpstr(other->quant, ==, "Q4_K_M");
  assert_matches_header(other);

  wh_library_entry *split = find_entry(entries, "synth-F16");
  g_assert_nonnull(split);
  g_assert_cmpuint(split->n_shards, ==, 3);
  g_assert_cmpuint(g_strv_length(split->paths), ==, 3);
  g_assert_true(split->complete);
  g_assert_cmpstr(split->paths[0], ==, f.split_first);
  g_assert_nonnull(split->mmproj_paths);
  g_assert_cmpuint(g_strv_length(split->mmproj_paths), ==, 1);
  g_assert_true(g_str_has_suffix(split->mmproj_paths[0], "mmproj-synth-F16.gguf"));
  assert_matches_header(split); /* wh_gguf_open opens all shards: params and size of all */
  g_assert_null(find_entry(entries, "mmproj-synth-F16"));
  g_assert_null(find_entry(entries, "x"));

  /* Ollama */
  wh_library_entry *ol = find_entry(entries, "tinyllama:q8");
  g_assert_nonnull(ol);
  g_assert_cmpint(ol->source, ==, WH_LIBRARY_SOURCE_OLLAMA);
  g_assert_cmpstr(ol->repo_id, ==, "library/tinyllama");
  g_assert_cmpstr(ol->revision, ==, "q8");
  g_assert_cmpstr(ol->paths[0], ==, f.ollama_blob);
  g_assert_nonnull(ol->mmproj_paths);
  g_assert_true(g_file_test(ol->mmproj_paths[0], G_FILE_TEST_IS_REGULAR));
  assert_matches_header(ol);
  wh_library_entry *gone = find_entry(entries, "gone:latest");
  g_assert_nonnull(gone);
  g_assert_nonnull(gone->error);
  g_assert_nonnull(strstr(gone->error, "missing"));
  g_assert_false(gone->complete);
  wh_library_entry *broken = find_entry(entries, "someone/broken:v1");
  g_assert_nonnull(broken);
  g_assert_nonnull(broken->error);
  g_assert_nonnull(strstr(broken->error, "JSON"));

  /* LM Studio */
  wh_library_entry *lm = find_entry(entries, "synth-qwen3-F16");
  g_assert_nonnull(lm);
  g_assert_cmpint(lm->source, ==, WH_LIBRARY_SOURCE_LMSTUDIO);
  g_assert_cmpstr(lm->repo_id, ==, "pub/repo-GGUF");
  assert_matches_header(lm);

  /* Folder: nested model found, loop walked once, the duplicate of the HF file not listed
   * again, the corrupt file listed with its error, too deep / hidden not listed. */
  wh_library_entry *phi = find_entry(entries, "synth-phi3-F16");
  g_assert_nonnull(phi);
  g_assert_cmpint(phi->source, ==, WH_LIBRARY_SOURCE_FOLDER);
  g_assert_null(phi->repo_id);
  assert_matches_header(phi);
  wh_library_entry *bad = find_entry(entries, "corrupt");
  g_assert_nonnull(bad);
  g_assert_nonnull(bad->error);
  g_assert_null(bad->architecture);
  g_assert_cmpuint(bad->size, ==, 16);
  g_assert_null(find_entry(entries, "again"));
  g_assert_null(find_entry(entries, "d"));
  g_assert_null(find_entry(entries, "h"));
  guint n_phi = 0;
  for (guint i = 0; i < entries->len; i++)
    n_phi += strcmp(((wh_library_entry *)entries->pdata[i])->name, "synth-phi3-F16") == 0;
  g_assert_cmpuint(n_phi, ==, 1);
  /* stories260K: one HF entry (two snapshots of one blob are one file on disk). */
  g_assert_cmpuint(entries->len, ==, 9);

  /* Sorted by source, then name. */
  for (guint i = 1; i < entries->len; i++) {
    wh_library_entry *a = entries->pdata[i - 1], *b = entries->pdata[i];
    g_assert_cmpint(a->source, <=, b->source);
  }
  /* JSON has every key. */
  JsonNode *node = wh_library_entry_to_json(split);
  JsonObject *o = json_node_get_object(node);
  g_assert_cmpstr(json_object_get_string_member(o, "source"), ==, "hf-cache");
  g_assert_cmpint(json_object_get_int_member(o, "n_params"), ==, (gint64)split->n_params);
  g_assert_cmpint(json_array_get_length(json_object_get_array_member(o, "paths")), ==, 3);
  g_assert_true(json_object_has_member(o, "error"));
  json_node_unref(node);
  /* A copy is deep and equal. */
  wh_library_entry *copy = wh_library_entry_copy(split);
  g_assert_cmpstr(copy->paths[2], ==, split->paths[2]);
  g_assert_true(copy->paths != split->paths);
  wh_library_entry_free(copy);

  g_ptr_array_unref(entries);
  wh_library_free(lib);
  fixture_teardown(&f);
}

static void
test_split_incomplete(void)
{
  fixture f;
  if (!fixture_setup(&f))
    return;
  /* Remove part 2 of 3: the model is still listed, incomplete, with a message naming it. */
  g_autofree char *dir = g_path_get_dirname(f.split_first);
  g_autofree char *p2 = g_build_filename(dir, "synth-F16-00002-of-00003.gguf", NULL);
  g_assert_cmpint(g_unlink(p2), ==, 0);
  wh_library *lib = fixture_library(&f, TRUE);
  GPtrArray *entries = wh_library_scan(lib, NULL, NULL);
  wh_library_entry *split = find_entry(entries, "synth-F16");
  g_assert_nonnull(split);
  g_assert_false(split->complete);
  g_assert_cmpuint(split->n_shards, ==, 3);
  g_assert_cmpuint(g_strv_length(split->paths), ==, 2);
  g_assert_nonnull(split->error);
  g_assert_nonnull(strstr(split->error, "part(s) 2 missing"));
  g_assert_cmpstr(split->architecture, ==, "llama");
  g_ptr_array_unref(entries);
  wh_library_free(lib);
  fixture_teardown(&f);
}

static void
test_cache(void)
{
  fixture f;
  if (!fixture_setup(&f))
    return;
  wh_library *lib = fixture_library(&f, FALSE);
  GPtrArray *a = wh_library_scan(lib, NULL, NULL);
  guint hits = 0, misses = 0;
  wh_library_get_cache_stats(lib, &hits, &misses);
  g_assert_cmpuint(hits, ==, 0);
  guint readable = misses;
  g_assert_cmpuint(readable, >, 5);
  /* A rescan opens nothing. */
  GPtrArray *b = wh_library_scan(lib, NULL, NULL);
  wh_library_get_cache_stats(lib, &hits, &misses);
  g_assert_cmpuint(misses, ==, readable);
  g_assert_cmpuint(hits, ==, readable);
  g_assert_cmpuint(a->len, ==, b->len);
  for (guint i = 0; i < a->len; i++) {
    JsonNode *x = wh_library_entry_to_json(a->pdata[i]);
    JsonNode *y = wh_library_entry_to_json(b->pdata[i]);
    g_assert_true(json_node_equal(x, y));
    json_node_unref(x);
    json_node_unref(y);
  }
  wh_library_free(lib);
  /* A new library (a new process) reads the cache file. */
  lib = fixture_library(&f, FALSE);
  GPtrArray *c = wh_library_scan(lib, NULL, NULL);
  wh_library_get_cache_stats(lib, &hits, &misses);
  g_assert_cmpuint(misses, ==, 0);
  g_assert_cmpuint(hits, ==, readable);
  for (guint i = 0; i < a->len; i++) {
    JsonNode *x = wh_library_entry_to_json(a->pdata[i]);
    JsonNode *y = wh_library_entry_to_json(c->pdata[i]);
    g_assert_true(json_node_equal(x, y));
    json_node_unref(x);
    json_node_unref(y);
  }
  /* A changed file (new mtime) is read again: exactly one miss. */
  g_autofree char *bad = g_build_filename(f.folder, "corrupt.gguf", NULL);
  g_assert_true(g_file_set_contents(bad, "GGUF\3\0\0\0garbage!", 17, NULL));
  GPtrArray *d = wh_library_scan(lib, NULL, NULL);
  guint hits2 = 0, misses2 = 0;
  wh_library_get_cache_stats(lib, &hits2, &misses2);
  g_assert_cmpuint(misses2, ==, 1);
  g_assert_cmpuint(find_entry(d, "corrupt")->size, ==, 17);
  g_ptr_array_unref(a);
  g_ptr_array_unref(b);
  g_ptr_array_unref(c);
  g_ptr_array_unref(d);
  wh_library_free(lib);
  fixture_teardown(&f);
}

static void
test_delete_rules(void)
{
  fixture f;
  if (!fixture_setup(&f))
    return;
  wh_library *lib = fixture_library(&f, TRUE);
  GError *error = NULL;
  g_assert_true(wh_library_record_download(lib, "org/tiny", COMMIT_A, "stories260K.gguf",
                                           f.own_path, &error));
  g_assert_no_error(error);
  /* Recording twice keeps one record. */
  g_assert_true(wh_library_record_download(lib, "org/tiny", COMMIT_A, "stories260K.gguf",
                                           f.own_path, &error));
  g_assert_true(wh_library_record_download(lib, "org/tiny", COMMIT_B, "stories260K.gguf",
                                           f.own_path2, &error));
  g_assert_true(wh_library_is_own_download(lib, f.own_path));
  g_assert_false(wh_library_is_own_download(lib, f.other_path));
  g_autofree char *index = NULL;
  g_assert_true(g_file_get_contents(wh_library_get_index_path(lib), &index, NULL, NULL));
  g_assert_nonnull(strstr(index, COMMIT_A));
  g_assert_null(strstr(strstr(index, f.own_path) + 1, f.own_path)); /* once */

  GPtrArray *entries = wh_library_scan(lib, NULL, &error);
  wh_library_entry *own = find_entry(entries, "stories260K");
  g_assert_nonnull(own);
  g_assert_cmpint(own->source, ==, WH_LIBRARY_SOURCE_WHITTLE);
  g_assert_true(own->deletable);

  /* Others are refused, nothing removed. */
  const char *refused[] = {"synth-llama-Q4_K_M", "tinyllama:q8", "synth-qwen3-F16",
                           "synth-phi3-F16", "synth-F16"};
  const char *owner_words[] = {"Hugging Face", "Ollama", "LM Studio", "folder", "Hugging Face"};
  for (guint i = 0; i < G_N_ELEMENTS(refused); i++) {
    wh_library_entry *e = find_entry(entries, refused[i]);
    g_assert_nonnull(e);
    g_assert_false(e->deletable);
    g_assert_false(wh_library_delete(lib, e, &error));
    g_assert_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_NOT_OURS);
    g_assert_nonnull(strstr(error->message, "not downloaded by Whittle"));
    g_assert_nonnull(strstr(error->message, owner_words[i]));
    g_clear_error(&error);
    g_assert_true(g_file_test(e->paths[0], G_FILE_TEST_IS_REGULAR));
  }
  /* A forged entry claiming to be Whittle's but not in the index is refused too. */
  wh_library_entry *forged = wh_library_entry_copy(find_entry(entries, "synth-llama-Q4_K_M"));
  forged->source = WH_LIBRARY_SOURCE_WHITTLE;
  g_assert_false(wh_library_delete(lib, forged, &error));
  g_assert_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_NOT_OURS);
  g_clear_error(&error);
  g_assert_true(g_file_test(forged->paths[0], G_FILE_TEST_IS_REGULAR));
  wh_library_entry_free(forged);

  /* Deleting snapshot A keeps the blob (snapshot B still refers to it). */
  g_autofree char *blob = g_build_filename(f.hub, "models--org--tiny", "blobs", "e1", NULL);
  g_assert_cmpstr(own->paths[0], ==, f.own_path);
  g_assert_true(wh_library_delete(lib, own, &error));
  g_assert_no_error(error);
  struct stat st;
  g_assert_cmpint(lstat(f.own_path, &st), !=, 0);
  g_assert_true(g_file_test(blob, G_FILE_TEST_IS_REGULAR));
  g_autofree char *snap_a = g_path_get_dirname(f.own_path);
  g_assert_false(g_file_test(snap_a, G_FILE_TEST_EXISTS)); /* empty snapshot folder removed */
  g_assert_false(wh_library_is_own_download(lib, f.own_path));
  g_assert_true(wh_library_is_own_download(lib, f.own_path2));
  g_ptr_array_unref(entries);

  /* The rescan lists the file from snapshot B; deleting it removes the blob too. */
  entries = wh_library_scan(lib, NULL, &error);
  own = find_entry(entries, "stories260K");
  g_assert_nonnull(own);
  g_assert_cmpstr(own->paths[0], ==, f.own_path2);
  g_assert_true(own->deletable);
  g_assert_true(wh_library_delete(lib, own, &error));
  g_assert_no_error(error);
  g_assert_false(g_file_test(blob, G_FILE_TEST_EXISTS));
  g_assert_false(wh_library_is_own_download(lib, f.own_path2));
  /* Deleting again: the records are gone, refused. */
  g_assert_false(wh_library_delete(lib, own, &error));
  g_assert_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_NOT_OURS);
  g_clear_error(&error);
  g_ptr_array_unref(entries);
  entries = wh_library_scan(lib, NULL, &error);
  g_assert_null(find_entry(entries, "stories260K"));
  /* The other files are all still there. */
  g_assert_nonnull(find_entry(entries, "synth-llama-Q4_K_M"));
  g_assert_nonnull(find_entry(entries, "synth-F16"));
  g_ptr_array_unref(entries);

  /* A corrupt index is never overwritten (its records would be lost). */
  g_assert_true(g_file_set_contents(wh_library_get_index_path(lib), "{not json", -1, NULL));
  g_assert_false(wh_library_record_download(lib, "org/tiny", COMMIT_A, "stories260K.gguf",
                                            f.own_path, &error));
  g_assert_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_CORRUPT);
  g_clear_error(&error);
  g_autofree char *after = NULL;
  g_assert_true(g_file_get_contents(wh_library_get_index_path(lib), &after, NULL, NULL));
  g_assert_cmpstr(after, ==, "{not json");
  wh_library_free(lib);
  fixture_teardown(&f);
}

typedef struct {
  guint notifications;
  gboolean finished;
} async_state;

static void
on_scan_notify(wh_job *job, gpointer data)
{
  async_state *s = data;
  s->notifications++;
  if (wh_job_is_finished(job))
    s->finished = TRUE;
}

static void
test_scan_async(void)
{
  fixture f;
  if (!fixture_setup(&f))
    return;
  wh_library *lib = fixture_library(&f, TRUE);
  GPtrArray *sync = wh_library_scan(lib, NULL, NULL);
  wh_job_queue *q = wh_job_queue_new(NULL, 0);
  async_state s = {0};
  wh_job *job = wh_library_scan_async(lib, q, on_scan_notify, &s);
  g_assert_cmpint(wh_job_wait(job), ==, WH_JOB_SUCCEEDED);
  while (!s.finished)
    g_main_context_iteration(NULL, TRUE);
  GPtrArray *res = wh_job_get_result(job);
  g_assert_nonnull(res);
  g_assert_cmpuint(res->len, ==, sync->len);
  for (guint i = 0; i < res->len; i++)
    g_assert_cmpstr(((wh_library_entry *)res->pdata[i])->id, ==,
                    ((wh_library_entry *)sync->pdata[i])->id);
  wh_job_progress p;
  wh_job_get_progress(job, &p);
  g_assert_cmpuint(p.done, ==, res->len);
  wh_job_unref(job);

  /* Cancelled through its GCancellable: fails with CANCELLED, no result. */
  GCancellable *c = g_cancellable_new();
  g_cancellable_cancel(c);
  GError *error = NULL;
  g_assert_null(wh_library_scan(lib, c, &error));
  g_assert_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_CANCELLED);
  g_clear_error(&error);
  g_object_unref(c);
  wh_job_queue_free(q);
  g_ptr_array_unref(sync);
  wh_library_free(lib);
  fixture_teardown(&f);
}

static void
test_missing_sources(void)
{
  /* Nothing anywhere: an empty list, no error, nothing written but the cache. */
  g_autofree char *tmp = wh_test_make_tmpdir();
  g_autofree char *none = g_build_filename(tmp, "none", NULL);
  const char *empty[] = {NULL};
  const char *folders[] = {none, NULL};
  wh_library_params p;
  wh_library_default_params(&p);
  p.hf_home = none;
  p.ollama_models = none;
  p.lmstudio_dirs = empty;
  p.folders = folders;
  p.data_dir = tmp;
  p.cache_dir = tmp;
  p.no_cache = TRUE;
  wh_library *lib = wh_library_new(&p);
  GError *error = NULL;
  GPtrArray *e = wh_library_scan(lib, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(e->len, ==, 0);
  g_ptr_array_unref(e);
  /* Bad arguments to record. */
  g_assert_false(wh_library_record_download(lib, "a/b", "c", "f.gguf", "relative/path", &error));
  g_assert_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_INVALID);
  g_clear_error(&error);
  wh_library_free(lib);
  /* Defaults come from the environment (set in main(), before any thread exists). */
  lib = wh_library_new(NULL);
  g_assert_cmpstr(wh_library_get_hf_hub_dir(lib), ==, "/nonexistent/hf/hub");
  wh_library_free(lib);
  wh_test_rmdir_r(tmp);
}

typedef struct {
  const char *dir;
  guint id;
} recorder_arg;

static gpointer
recorder_thread(gpointer data)
{
  recorder_arg *a = data;
  /* A library of its own, as another process (the CLI beside the app) would have. */
  wh_library_params p;
  wh_library_default_params(&p);
  p.data_dir = a->dir;
  p.cache_dir = a->dir;
  wh_library *lib = wh_library_new(&p);
  for (guint i = 0; i < 25; i++) {
    g_autofree char *name = g_strdup_printf("m-%u-%u.gguf", a->id, i);
    g_autofree char *path = g_build_filename(a->dir, "snapshots", "c", name, NULL);
    g_assert_true(wh_library_record_download(lib, "org/m", "c", name, path, NULL));
  }
  wh_library_free(lib);
  return NULL;
}

static void
test_index_concurrent(void)
{
  /* Four writers with separate libraries: the file lock keeps every record. */
  g_autofree char *tmp = wh_test_make_tmpdir();
  recorder_arg args[4];
  GThread *threads[4];
  for (guint t = 0; t < 4; t++) {
    args[t].dir = tmp;
    args[t].id = t;
    threads[t] = g_thread_new("recorder", recorder_thread, &args[t]);
  }
  for (guint t = 0; t < 4; t++)
    g_thread_join(threads[t]);
  wh_library_params p;
  wh_library_default_params(&p);
  p.data_dir = tmp;
  p.cache_dir = tmp;
  wh_library *lib = wh_library_new(&p);
  for (guint t = 0; t < 4; t++)
    for (guint i = 0; i < 25; i++) {
      g_autofree char *name = g_strdup_printf("m-%u-%u.gguf", t, i);
      g_autofree char *path = g_build_filename(tmp, "snapshots", "c", name, NULL);
      g_assert_true(wh_library_is_own_download(lib, path));
    }
  wh_library_free(lib);
  wh_test_rmdir_r(tmp);
}

static void
test_ollama_manifest(void)
{
  const char *digest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  g_autofree char *ok = g_strdup_printf(
      "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.license\",\"digest\":\"x\"},"
      "{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:%s\","
      "\"size\":12345}]}",
      digest);
  char *model = NULL, *proj = NULL;
  guint64 size = 0;
  GError *error = NULL;
  g_assert_true(wh_library_parse_ollama_manifest(ok, strlen(ok), &model, &proj, &size, &error));
  g_assert_no_error(error);
  g_assert_cmpstr(model, ==, digest);
  g_assert_null(proj);
  g_assert_cmpuint(size, ==, 12345);
  g_free(model);
  const char *bad[] = {
      "",
      "[]",
      "{}",
      "{\"layers\":{}}",
      "{\"layers\":[]}",
      "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\"}]}",
      "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:"
      "../../etc/passwd\"}]}",
      "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"md5:"
      "0123456789abcdef0123456789abcdef\"}]}",
      "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:"
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\"}]}",
  };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    model = (char *)"untouched";
    g_assert_false(
        wh_library_parse_ollama_manifest(bad[i], strlen(bad[i]), &model, NULL, NULL, &error));
    g_assert_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_CORRUPT);
    g_assert_null(model);
    g_clear_error(&error);
  }
}

int
main(int argc, char **argv)
{
  g_setenv("HF_HOME", "/nonexistent/hf", TRUE);
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/library/scan-sources", test_scan_sources);
  g_test_add_func("/library/split-incomplete", test_split_incomplete);
  g_test_add_func("/library/cache", test_cache);
  g_test_add_func("/library/delete-rules", test_delete_rules);
  g_test_add_func("/library/scan-async", test_scan_async);
  g_test_add_func("/library/missing-sources", test_missing_sources);
  g_test_add_func("/library/index-concurrent", test_index_concurrent);
  g_test_add_func("/library/ollama-manifest", test_ollama_manifest);
  return g_test_run();
}
