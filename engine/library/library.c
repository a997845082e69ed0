/* library.c — the local model library (see library.h for the contract).
 *
 * Implementation note
 * -------------------
 * A scan runs in three steps:
 *  1. discovery: every source yields "found" records (one per model file: the path as found,
 *     its canonical path, size, mtime and what the source knows: repo, revision, display
 *     name). A canonical path seen before is dropped, so the first source wins;
 *  2. grouping: records of one folder are grouped into models — shards of a split model by
 *     their common prefix, projector files attached to every model of the folder;
 *  3. description: each group's header metadata comes from the cache when every shard's
 *     (canonical path, size, mtime) is unchanged, else from wh_gguf_open() (mmap + header
 *     parse; tensor data are never read).
 * The lock protects the folder list, the metadata cache and the download index; it is never
 * held while a file is opened or parsed.
 */
#include "config.h"

#include "library/library.h"

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/gguf-types.h"
#include "gguf/gguf.h"

G_DEFINE_QUARK(wh - library - error - quark, wh_library_error)

#define MANIFEST_MAX_BYTES (1u << 20)
#define STATE_MAX_BYTES (64u << 20)
#define OLLAMA_MODEL_MEDIA "application/vnd.ollama.image.model"
#define OLLAMA_PROJECTOR_MEDIA "application/vnd.ollama.image.projector"

/* Header facts of one model (all shards), cached by the shards' identity. */
typedef struct {
  char *architecture;
  char *model_name;
  char *quant;     /* ftype name, NULL when general.file_type is absent/unknown */
  char *main_type; /* the tensor type holding most bytes of the 2-D weights ("F32") */
  guint64 n_params;
  gint file_type;
  guint64 context_length;
  char *error;
} meta;

struct wh_library {
  GMutex lock;
  char *hf_hub_dir; /* NULL: skipped */
  char *ollama_dir; /* NULL: skipped */
  GPtrArray *lmstudio_dirs;
  GPtrArray *folders;
  guint max_depth;
  char *index_path;
  char *cache_path;
  gboolean no_cache;
  wh_library_progress_func progress;
  gpointer progress_data;
  GHashTable *cache; /* key → meta* */
  gboolean cache_loaded;
  guint hits, misses;
};

/* One model file found by a source. */
typedef struct {
  char *path;  /* as found */
  char *real;  /* canonical */
  char *group; /* grouping key: the folder (or the manifest for Ollama) */
  wh_library_source source;
  char *repo_id, *revision, *name;
  char *mmproj;  /* Ollama: the projector blob, NULL otherwise */
  char *missing; /* why the file cannot be used (Ollama blob missing), or NULL */
  guint64 size;
  gint64 mtime, mtime_ns;
  gboolean is_projector;
} found;

/* --- small helpers ------------------------------------------------------------------------- */

const char *
wh_library_source_to_string(wh_library_source source)
{
  switch (source) {
  case WH_LIBRARY_SOURCE_WHITTLE:
    return "whittle";
  case WH_LIBRARY_SOURCE_HF_CACHE:
    return "hf-cache";
  case WH_LIBRARY_SOURCE_OLLAMA:
    return "ollama";
  case WH_LIBRARY_SOURCE_LMSTUDIO:
    return "lmstudio";
  case WH_LIBRARY_SOURCE_FOLDER:
    return "folder";
  }
  return "unknown";
}

const char *
wh_library_source_to_label(wh_library_source source)
{
  switch (source) {
  case WH_LIBRARY_SOURCE_WHITTLE:
    return "Whittle";
  case WH_LIBRARY_SOURCE_HF_CACHE:
    return "Hugging Face cache";
  case WH_LIBRARY_SOURCE_OLLAMA:
    return "Ollama";
  case WH_LIBRARY_SOURCE_LMSTUDIO:
    return "LM Studio";
  case WH_LIBRARY_SOURCE_FOLDER:
    return "Folder";
  }
  return "Unknown";
}

static void
meta_free(meta *m)
{
  if (!m)
    return;
  g_free(m->architecture);
  g_free(m->model_name);
  g_free(m->quant);
  g_free(m->main_type);
  g_free(m->error);
  g_free(m);
}

static meta *
meta_copy(const meta *m)
{
  meta *c = g_new0(meta, 1);
  c->architecture = g_strdup(m->architecture);
  c->model_name = g_strdup(m->model_name);
  c->quant = g_strdup(m->quant);
  c->main_type = g_strdup(m->main_type);
  c->n_params = m->n_params;
  c->file_type = m->file_type;
  c->context_length = m->context_length;
  c->error = g_strdup(m->error);
  return c;
}

static void
found_free(found *f)
{
  if (!f)
    return;
  g_free(f->path);
  g_free(f->real);
  g_free(f->group);
  g_free(f->repo_id);
  g_free(f->revision);
  g_free(f->name);
  g_free(f->mmproj);
  g_free(f->missing);
  g_free(f);
}

static gboolean
has_gguf_suffix(const char *name)
{
  gsize n = strlen(name);
  return n > 5 && g_ascii_strcasecmp(name + n - 5, ".gguf") == 0;
}

static gboolean
is_projector_name(const char *name)
{
  g_autofree char *lower = g_ascii_strdown(name, -1);
  return strstr(lower, "mmproj") != NULL;
}

static char *
canonical(const char *path)
{
  char *r = realpath(path, NULL);
  char *out = g_strdup(r ? r : path);
  free(r);
  return out;
}

/* The base name of @path without ".gguf" (and without the split suffix when @split_prefix). */
static char *
display_name(const char *path)
{
  g_autofree char *base = g_path_get_basename(path);
  g_autofree char *prefix = NULL;
  if (wh_gguf_split_parse(base, &prefix, NULL, NULL))
    return g_steal_pointer(&prefix);
  gsize n = strlen(base);
  if (has_gguf_suffix(base))
    base[n - 5] = '\0';
  return g_steal_pointer(&base);
}

/* --- construction -------------------------------------------------------------------------- */

void
wh_library_default_params(wh_library_params *params)
{
  memset(params, 0, sizeof *params);
}

static char *
default_hf_home(void)
{
  const char *env = g_getenv("HF_HOME");
  if (env && *env)
    return g_strdup(env);
  const char *xdg = g_getenv("XDG_CACHE_HOME");
  if (xdg && *xdg)
    return g_build_filename(xdg, "huggingface", NULL);
  return g_build_filename(g_get_home_dir(), ".cache", "huggingface", NULL);
}

wh_library *
wh_library_new(const wh_library_params *params)
{
  wh_library_params defaults;
  if (!params) {
    wh_library_default_params(&defaults);
    params = &defaults;
  }
  wh_library *lib = g_new0(wh_library, 1);
  g_mutex_init(&lib->lock);
  if (!params->hf_home) {
    g_autofree char *home = default_hf_home();
    lib->hf_hub_dir = g_build_filename(home, "hub", NULL);
  } else if (*params->hf_home) {
    lib->hf_hub_dir = g_build_filename(params->hf_home, "hub", NULL);
  }
  if (!params->ollama_models) {
    const char *env = g_getenv("OLLAMA_MODELS");
    lib->ollama_dir =
        env && *env ? g_strdup(env) : g_build_filename(g_get_home_dir(), ".ollama", "models", NULL);
  } else if (*params->ollama_models) {
    lib->ollama_dir = g_strdup(params->ollama_models);
  }
  lib->lmstudio_dirs = g_ptr_array_new_with_free_func(g_free);
  if (!params->lmstudio_dirs) {
    g_ptr_array_add(lib->lmstudio_dirs,
                    g_build_filename(g_get_home_dir(), ".lmstudio", "models", NULL));
    g_ptr_array_add(lib->lmstudio_dirs,
                    g_build_filename(g_get_home_dir(), ".cache", "lm-studio", "models", NULL));
  } else {
    for (guint i = 0; params->lmstudio_dirs[i]; i++)
      if (*params->lmstudio_dirs[i])
        g_ptr_array_add(lib->lmstudio_dirs, g_strdup(params->lmstudio_dirs[i]));
  }
  lib->folders = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; params->folders && params->folders[i]; i++)
    if (*params->folders[i])
      g_ptr_array_add(lib->folders, g_strdup(params->folders[i]));
  lib->max_depth = params->max_depth ? params->max_depth : 8;
  g_autofree char *data_dir = params->data_dir
                                  ? g_strdup(params->data_dir)
                                  : g_build_filename(g_get_user_data_dir(), "whittle", NULL);
  g_autofree char *cache_dir = params->cache_dir
                                   ? g_strdup(params->cache_dir)
                                   : g_build_filename(g_get_user_cache_dir(), "whittle", NULL);
  lib->index_path = g_build_filename(data_dir, "downloads.json", NULL);
  lib->cache_path = g_build_filename(cache_dir, "library-cache.json", NULL);
  lib->no_cache = params->no_cache;
  lib->progress = params->progress;
  lib->progress_data = params->progress_data;
  lib->cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)meta_free);
  return lib;
}

void
wh_library_free(wh_library *lib)
{
  if (!lib)
    return;
  g_free(lib->hf_hub_dir);
  g_free(lib->ollama_dir);
  g_ptr_array_unref(lib->lmstudio_dirs);
  g_ptr_array_unref(lib->folders);
  g_free(lib->index_path);
  g_free(lib->cache_path);
  g_hash_table_unref(lib->cache);
  g_mutex_clear(&lib->lock);
  g_free(lib);
}

void
wh_library_add_folder(wh_library *lib, const char *folder)
{
  g_return_if_fail(folder && *folder);
  g_mutex_lock(&lib->lock);
  gboolean have = FALSE;
  for (guint i = 0; i < lib->folders->len && !have; i++)
    have = strcmp(lib->folders->pdata[i], folder) == 0;
  if (!have)
    g_ptr_array_add(lib->folders, g_strdup(folder));
  g_mutex_unlock(&lib->lock);
}

void
wh_library_remove_folder(wh_library *lib, const char *folder)
{
  g_mutex_lock(&lib->lock);
  for (guint i = 0; i < lib->folders->len; i++)
    if (strcmp(lib->folders->pdata[i], folder) == 0)
      g_ptr_array_remove_index(lib->folders, i--);
  g_mutex_unlock(&lib->lock);
}

const char *
wh_library_get_hf_hub_dir(wh_library *lib)
{
  return lib->hf_hub_dir;
}

const char *
wh_library_get_index_path(wh_library *lib)
{
  return lib->index_path;
}

void
wh_library_get_cache_stats(wh_library *lib, guint *hits, guint *misses)
{
  g_mutex_lock(&lib->lock);
  if (hits)
    *hits = lib->hits;
  if (misses)
    *misses = lib->misses;
  g_mutex_unlock(&lib->lock);
}

/* --- entries ------------------------------------------------------------------------------- */

void
wh_library_entry_free(wh_library_entry *e)
{
  if (!e)
    return;
  g_free(e->id);
  g_free(e->name);
  g_free(e->repo_id);
  g_free(e->revision);
  g_strfreev(e->paths);
  g_strfreev(e->mmproj_paths);
  g_free(e->architecture);
  g_free(e->model_name);
  g_free(e->quant);
  g_free(e->error);
  g_free(e);
}

wh_library_entry *
wh_library_entry_copy(const wh_library_entry *e)
{
  wh_library_entry *c = g_new0(wh_library_entry, 1);
  *c = *e;
  c->id = g_strdup(e->id);
  c->name = g_strdup(e->name);
  c->repo_id = g_strdup(e->repo_id);
  c->revision = g_strdup(e->revision);
  c->paths = g_strdupv(e->paths);
  c->mmproj_paths = g_strdupv(e->mmproj_paths);
  c->architecture = g_strdup(e->architecture);
  c->model_name = g_strdup(e->model_name);
  c->quant = g_strdup(e->quant);
  c->error = g_strdup(e->error);
  return c;
}

static void
json_add_string_or_null(JsonBuilder *b, const char *key, const char *value)
{
  json_builder_set_member_name(b, key);
  if (value)
    json_builder_add_string_value(b, value);
  else
    json_builder_add_null_value(b);
}

static void
json_add_strv(JsonBuilder *b, const char *key, char **v)
{
  json_builder_set_member_name(b, key);
  json_builder_begin_array(b);
  for (guint i = 0; v && v[i]; i++)
    json_builder_add_string_value(b, v[i]);
  json_builder_end_array(b);
}

JsonNode *
wh_library_entry_to_json(const wh_library_entry *e)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_add_string_or_null(b, "id", e->id);
  json_add_string_or_null(b, "name", e->name);
  json_add_string_or_null(b, "source", wh_library_source_to_string(e->source));
  json_add_string_or_null(b, "repo_id", e->repo_id);
  json_add_string_or_null(b, "revision", e->revision);
  json_add_strv(b, "paths", e->paths);
  json_add_strv(b, "mmproj_paths", e->mmproj_paths);
  json_builder_set_member_name(b, "n_shards");
  json_builder_add_int_value(b, e->n_shards);
  json_builder_set_member_name(b, "complete");
  json_builder_add_boolean_value(b, e->complete);
  json_builder_set_member_name(b, "is_projector");
  json_builder_add_boolean_value(b, e->is_projector);
  json_builder_set_member_name(b, "deletable");
  json_builder_add_boolean_value(b, e->deletable);
  json_add_string_or_null(b, "architecture", e->architecture);
  json_add_string_or_null(b, "model_name", e->model_name);
  json_builder_set_member_name(b, "n_params");
  if (e->n_params)
    json_builder_add_int_value(b, (gint64)e->n_params);
  else
    json_builder_add_null_value(b);
  json_builder_set_member_name(b, "file_type");
  if (e->file_type >= 0)
    json_builder_add_int_value(b, e->file_type);
  else
    json_builder_add_null_value(b);
  json_add_string_or_null(b, "quant", e->quant);
  json_builder_set_member_name(b, "context_length");
  if (e->context_length)
    json_builder_add_int_value(b, (gint64)e->context_length);
  else
    json_builder_add_null_value(b);
  json_builder_set_member_name(b, "size");
  json_builder_add_int_value(b, (gint64)e->size);
  json_builder_set_member_name(b, "mtime");
  json_builder_add_int_value(b, e->mtime);
  json_add_string_or_null(b, "error", e->error);
  json_builder_end_object(b);
  return json_builder_get_root(b);
}

/* --- JSON state files ---------------------------------------------------------------------- */

/* Reads a JSON object file; NULL (no error) when it does not exist. */
static JsonNode *
read_json_file(const char *path, GError **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  GError *e = NULL;
  if (!g_file_get_contents(path, &data, &len, &e)) {
    if (g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
      g_error_free(e);
      return NULL;
    }
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_IO, "%s", e->message);
    g_error_free(e);
    return NULL;
  }
  if (len > STATE_MAX_BYTES) {
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_CORRUPT,
                "%s is unreasonably large (%" G_GSIZE_FORMAT " bytes)", path, len);
    return NULL;
  }
  g_autoptr(JsonParser) p = json_parser_new_immutable();
  if (!json_parser_load_from_data(p, data, (gssize)len, &e)) {
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_CORRUPT, "%s is not valid JSON: %s", path,
                e->message);
    g_error_free(e);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(p);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_CORRUPT, "%s is not a JSON object", path);
    return NULL;
  }
  return json_node_copy(root);
}

/* Writes @root to @path through a temporary file in the same folder (created if needed). */
static gboolean
write_json_file(const char *path, JsonNode *root, GError **error)
{
  g_autofree char *dir = g_path_get_dirname(path);
  if (g_mkdir_with_parents(dir, 0700) != 0) {
    int err = errno;
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_IO, "cannot create %s: %s", dir,
                g_strerror(err));
    return FALSE;
  }
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_root(gen, root);
  json_generator_set_pretty(gen, TRUE);
  gsize len = 0;
  g_autofree char *data = json_generator_to_data(gen, &len);
  GError *e = NULL;
  if (!g_file_set_contents_full(path, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                &e)) {
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_IO, "%s", e->message);
    g_error_free(e);
    return FALSE;
  }
  return TRUE;
}

static const char *
obj_string(JsonObject *o, const char *key)
{
  JsonNode *n = json_object_get_member(o, key);
  if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string(n);
}

static gint64
obj_int(JsonObject *o, const char *key, gint64 fallback)
{
  JsonNode *n = json_object_get_member(o, key);
  if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
    return fallback;
  return json_node_get_int(n);
}

/* The download index: records { repo_id, commit, filename, path, time }. Caller holds the lock.
 * Returns a new array of JsonObject* (refs); an unreadable index is treated as empty but
 * reported through @error when given. */
static GPtrArray *
index_load(wh_library *lib, GError **error)
{
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
  g_autoptr(JsonNode) root = read_json_file(lib->index_path, error);
  if (!root)
    return out;
  JsonNode *dl = json_object_get_member(json_node_get_object(root), "downloads");
  if (!dl || !JSON_NODE_HOLDS_ARRAY(dl))
    return out;
  JsonArray *a = json_node_get_array(dl);
  for (guint i = 0; i < json_array_get_length(a); i++) {
    JsonNode *n = json_array_get_element(a, i);
    if (!JSON_NODE_HOLDS_OBJECT(n))
      continue;
    JsonObject *o = json_node_get_object(n);
    if (!obj_string(o, "path") || !g_path_is_absolute(obj_string(o, "path")))
      continue;
    g_ptr_array_add(out, json_object_ref(o));
  }
  return out;
}

/* Another process (the CLI while the app runs) may update the index at the same time: a
 * read-modify-write holds an exclusive lock on downloads.json.lock. Returns the descriptor,
 * or -1 when the lock file cannot be made (then only the in-process lock protects). */
static int
index_lock(wh_library *lib)
{
  g_autofree char *dir = g_path_get_dirname(lib->index_path);
  g_mkdir_with_parents(dir, 0700);
  g_autofree char *path = g_strconcat(lib->index_path, ".lock", NULL);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  while (fd >= 0 && flock(fd, LOCK_EX) != 0 && errno == EINTR) {
  }
  return fd;
}

static void
index_unlock(int fd)
{
  if (fd >= 0)
    close(fd); /* releases the flock */
}

/* index_load() for a read-modify-write: NULL with @error (prefixed by @what) when the index
 * exists but cannot be read, so that it is never overwritten and its records lost. */
static GPtrArray *
index_load_for_update(wh_library *lib, const char *what, GError **error)
{
  GError *load_error = NULL;
  GPtrArray *recs = index_load(lib, &load_error);
  if (load_error) {
    g_ptr_array_unref(recs);
    g_propagate_prefixed_error(error, load_error, "%s", what);
    return NULL;
  }
  return recs;
}

static gboolean
index_save(wh_library *lib, GPtrArray *records, GError **error)
{
  g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);
  JsonObject *o = json_object_new();
  json_object_set_int_member(o, "version", 1);
  JsonArray *a = json_array_new();
  for (guint i = 0; i < records->len; i++)
    json_array_add_object_element(a, json_object_ref(records->pdata[i]));
  json_object_set_array_member(o, "downloads", a);
  json_node_take_object(root, o);
  return write_json_file(lib->index_path, root, error);
}

/* The set of recorded snapshot paths. Caller holds the lock. */
static GHashTable *
index_paths(wh_library *lib)
{
  GHashTable *set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GPtrArray) recs = index_load(lib, NULL);
  for (guint i = 0; i < recs->len; i++)
    g_hash_table_add(set, g_strdup(obj_string(recs->pdata[i], "path")));
  return set;
}

gboolean
wh_library_record_download(wh_library *lib, const char *repo_id, const char *commit,
                           const char *filename, const char *snapshot_path, GError **error)
{
  if (!repo_id || !commit || !filename || !snapshot_path || !g_path_is_absolute(snapshot_path)) {
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_INVALID,
                "a download record needs the repository, commit, file name and the absolute "
                "path of the snapshot entry");
    return FALSE;
  }
  g_mutex_lock(&lib->lock);
  int lock_fd = index_lock(lib);
  g_autoptr(GPtrArray) recs = index_load_for_update(lib, "cannot record the download: ", error);
  gboolean ok = recs != NULL;
  if (ok) {
    for (guint i = 0; i < recs->len; i++)
      if (strcmp(obj_string(recs->pdata[i], "path"), snapshot_path) == 0)
        g_ptr_array_remove_index(recs, i--);
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "repo_id", repo_id);
    json_object_set_string_member(o, "commit", commit);
    json_object_set_string_member(o, "filename", filename);
    json_object_set_string_member(o, "path", snapshot_path);
    json_object_set_int_member(o, "time", g_get_real_time() / G_USEC_PER_SEC);
    g_ptr_array_add(recs, o);
    ok = index_save(lib, recs, error);
  }
  index_unlock(lock_fd);
  g_mutex_unlock(&lib->lock);
  return ok;
}

gboolean
wh_library_is_own_download(wh_library *lib, const char *path)
{
  g_mutex_lock(&lib->lock);
  GHashTable *set = index_paths(lib);
  gboolean own = g_hash_table_contains(set, path);
  g_hash_table_unref(set);
  g_mutex_unlock(&lib->lock);
  return own;
}

/* --- the metadata cache -------------------------------------------------------------------- */

/* Caller holds the lock. */
static void
cache_load(wh_library *lib)
{
  if (lib->cache_loaded || lib->no_cache)
    return;
  lib->cache_loaded = TRUE;
  g_autoptr(JsonNode) root = read_json_file(lib->cache_path, NULL);
  if (!root)
    return;
  JsonObject *ro = json_node_get_object(root);
  if (obj_int(ro, "version", 0) != 1)
    return;
  JsonNode *en = json_object_get_member(ro, "entries");
  if (!en || !JSON_NODE_HOLDS_ARRAY(en))
    return;
  JsonArray *a = json_node_get_array(en);
  for (guint i = 0; i < json_array_get_length(a); i++) {
    JsonNode *n = json_array_get_element(a, i);
    if (!JSON_NODE_HOLDS_OBJECT(n))
      continue;
    JsonObject *o = json_node_get_object(n);
    const char *key = obj_string(o, "key");
    if (!key)
      continue;
    meta *m = g_new0(meta, 1);
    m->architecture = g_strdup(obj_string(o, "architecture"));
    m->model_name = g_strdup(obj_string(o, "model_name"));
    m->quant = g_strdup(obj_string(o, "quant"));
    m->main_type = g_strdup(obj_string(o, "main_type"));
    m->error = g_strdup(obj_string(o, "error"));
    m->n_params = (guint64)MAX(0, obj_int(o, "n_params", 0));
    m->file_type = (gint)obj_int(o, "file_type", -1);
    m->context_length = (guint64)MAX(0, obj_int(o, "context_length", 0));
    g_hash_table_replace(lib->cache, g_strdup(key), m);
  }
}

/* Keeps only the keys in @used and writes the cache file. Caller holds the lock. */
static void
cache_save(wh_library *lib, GHashTable *used)
{
  if (lib->no_cache)
    return;
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init(&it, lib->cache);
  while (g_hash_table_iter_next(&it, &k, NULL))
    if (!g_hash_table_contains(used, k))
      g_hash_table_iter_remove(&it);
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "version");
  json_builder_add_int_value(b, 1);
  json_builder_set_member_name(b, "entries");
  json_builder_begin_array(b);
  g_hash_table_iter_init(&it, lib->cache);
  while (g_hash_table_iter_next(&it, &k, &v)) {
    meta *m = v;
    json_builder_begin_object(b);
    json_add_string_or_null(b, "key", k);
    json_add_string_or_null(b, "architecture", m->architecture);
    json_add_string_or_null(b, "model_name", m->model_name);
    json_add_string_or_null(b, "quant", m->quant);
    json_add_string_or_null(b, "main_type", m->main_type);
    json_add_string_or_null(b, "error", m->error);
    json_builder_set_member_name(b, "n_params");
    json_builder_add_int_value(b, (gint64)m->n_params);
    json_builder_set_member_name(b, "file_type");
    json_builder_add_int_value(b, m->file_type);
    json_builder_set_member_name(b, "context_length");
    json_builder_add_int_value(b, (gint64)m->context_length);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  /* A cache that cannot be written only costs speed on the next scan. */
  write_json_file(lib->cache_path, root, NULL);
}

/* Reads the header facts of a model whose first shard is @path. @split: open all shards. */
static meta *
read_meta(const char *path, gboolean split)
{
  meta *m = g_new0(meta, 1);
  m->file_type = -1;
  GError *e = NULL;
  wh_gguf *g = wh_gguf_open_full(path, split ? WH_GGUF_OPEN_DEFAULT : WH_GGUF_OPEN_NO_SPLITS, &e);
  if (!g) {
    m->error = g_strdup(e->message);
    g_error_free(e);
    return m;
  }
  const char *arch = wh_gguf_get_architecture(g);
  m->architecture = g_strdup(arch);
  m->model_name = g_strdup(wh_gguf_get_string(g, "general.name"));
  guint64 ft = 0;
  if (wh_gguf_get_uint(g, "general.file_type", &ft) && ft <= G_MAXINT32) {
    m->file_type = (gint)ft;
    const char *fn = wh_ftype_name((guint32)ft);
    if (fn)
      m->quant = g_strdup(strcmp(fn, "ALL_F32") == 0 ? "F32" : fn);
  }
  if (arch) {
    g_autofree char *key = g_strdup_printf("%s.context_length", arch);
    wh_gguf_get_uint(g, key, &m->context_length);
  }
  /* Parameters, and the type that holds most bytes of the matrices (for files that do not
   * say their file type). */
  guint64 bytes_by_type[WH_TYPE_COUNT] = {0};
  for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) {
    const wh_gguf_tensor *t = wh_gguf_get_tensor(g, i);
    m->n_params += t->n_elements;
    if (t->n_dims >= 2 && (guint)t->type < WH_TYPE_COUNT)
      bytes_by_type[t->type] += t->n_bytes;
  }
  guint best = 0;
  for (guint k = 1; k < WH_TYPE_COUNT; k++)
    if (bytes_by_type[k] > bytes_by_type[best])
      best = k;
  if (bytes_by_type[best])
    m->main_type = g_strdup(wh_type_name((wh_type)best));
  wh_gguf_close(g);
  return m;
}

/* --- discovery ----------------------------------------------------------------------------- */

typedef struct {
  wh_library *lib;
  GPtrArray *found; /* found* */
  GHashTable *seen; /* canonical paths already listed */
  GCancellable *cancellable;
} scan_ctx;

/* Fills size/mtime/real of @f from the file (following links); FALSE when it is not a regular
 * file (dangling link, folder, ...). */
static gboolean
found_stat(found *f)
{
  struct stat st;
  if (stat(f->path, &st) != 0 || !S_ISREG(st.st_mode))
    return FALSE;
  f->size = (guint64)st.st_size;
  f->mtime = (gint64)st.st_mtim.tv_sec;
  f->mtime_ns = (gint64)st.st_mtim.tv_nsec;
  f->real = canonical(f->path);
  return TRUE;
}

/* Takes @f into the scan unless its canonical file was listed already. */
static void
found_add(scan_ctx *c, found *f)
{
  if (f->real && g_hash_table_contains(c->seen, f->real)) {
    found_free(f);
    return;
  }
  if (f->real)
    g_hash_table_add(c->seen, g_strdup(f->real));
  g_ptr_array_add(c->found, f);
}

static void
discover_hf(scan_ctx *c, const char *hub_dir)
{
  g_autoptr(GPtrArray) files = wh_hub_cache_list(NULL, hub_dir, NULL);
  for (guint i = 0; i < files->len; i++) {
    wh_hub_cached_file *cf = files->pdata[i];
    g_autofree char *base = g_path_get_basename(cf->filename);
    if (!has_gguf_suffix(base))
      continue;
    found *f = g_new0(found, 1);
    f->path = g_strdup(cf->path);
    if (!found_stat(f)) {
      found_free(f);
      continue;
    }
    f->group = g_path_get_dirname(cf->path);
    f->source = WH_LIBRARY_SOURCE_HF_CACHE;
    f->repo_id = g_strdup(cf->repo_id);
    f->revision = g_strdup(cf->commit);
    f->is_projector = is_projector_name(base);
    found_add(c, f);
  }
}

static gboolean
valid_sha256_hex(const char *s)
{
  if (strlen(s) != 64)
    return FALSE;
  for (int i = 0; i < 64; i++)
    if (!g_ascii_isxdigit(s[i]))
      return FALSE;
  return TRUE;
}

gboolean
wh_library_parse_ollama_manifest(const char *data, gsize len, char **model_sha256,
                                 char **projector_sha256, guint64 *model_size, GError **error)
{
  *model_sha256 = NULL;
  if (projector_sha256)
    *projector_sha256 = NULL;
  if (model_size)
    *model_size = 0;
  if (len > MANIFEST_MAX_BYTES) {
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_CORRUPT,
                "the manifest is too large (%" G_GSIZE_FORMAT " bytes)", len);
    return FALSE;
  }
  g_autoptr(JsonParser) p = json_parser_new_immutable();
  GError *e = NULL;
  if (!json_parser_load_from_data(p, data, (gssize)len, &e)) {
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_CORRUPT,
                "the manifest is not valid JSON: %s", e->message);
    g_error_free(e);
    return FALSE;
  }
  JsonNode *root = json_parser_get_root(p);
  JsonNode *layers = root && JSON_NODE_HOLDS_OBJECT(root)
                         ? json_object_get_member(json_node_get_object(root), "layers")
                         : NULL;
  if (!layers || !JSON_NODE_HOLDS_ARRAY(layers)) {
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_CORRUPT,
                "the manifest has no \"layers\" array");
    return FALSE;
  }
  JsonArray *a = json_node_get_array(layers);
  g_autofree char *model = NULL, *projector = NULL;
  guint64 size = 0;
  for (guint i = 0; i < json_array_get_length(a); i++) {
    JsonNode *n = json_array_get_element(a, i);
    if (!JSON_NODE_HOLDS_OBJECT(n))
      continue;
    JsonObject *o = json_node_get_object(n);
    const char *media = obj_string(o, "mediaType");
    gboolean is_model = media && strcmp(media, OLLAMA_MODEL_MEDIA) == 0;
    gboolean is_proj = media && strcmp(media, OLLAMA_PROJECTOR_MEDIA) == 0;
    if (!is_model && !is_proj)
      continue;
    const char *digest = obj_string(o, "digest");
    if (!digest || !g_str_has_prefix(digest, "sha256:") || !valid_sha256_hex(digest + 7)) {
      g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_CORRUPT,
                  "layer %u of the manifest has no valid \"sha256:<64 hex digits>\" digest", i);
      return FALSE;
    }
    if (is_model && !model) {
      model = g_ascii_strdown(digest + 7, -1);
      size = (guint64)MAX(0, obj_int(o, "size", 0));
    } else if (is_proj && !projector) {
      projector = g_ascii_strdown(digest + 7, -1);
    }
  }
  if (!model) {
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_CORRUPT,
                "the manifest has no model layer (mediaType %s)", OLLAMA_MODEL_MEDIA);
    return FALSE;
  }
  *model_sha256 = g_steal_pointer(&model);
  if (projector_sha256)
    *projector_sha256 = g_steal_pointer(&projector);
  if (model_size)
    *model_size = size;
  return TRUE;
}

static int
cmp_strings(gconstpointer a, gconstpointer b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* manifests/<registry>/<ns>/<model>/<tag>: one entry per tag file. */
static void
discover_ollama_manifest(scan_ctx *c, const char *root, const char *manifest, char **parts)
{
  const char *registry = parts[0], *ns = parts[1], *model = parts[2], *tag = parts[3];
  found *f = g_new0(found, 1);
  f->source = WH_LIBRARY_SOURCE_OLLAMA;
  f->group = g_strdup(manifest);
  f->revision = g_strdup(tag);
  gboolean default_registry = strcmp(registry, "registry.ollama.ai") == 0;
  f->repo_id = default_registry ? g_strdup_printf("%s/%s", ns, model)
                                : g_strdup_printf("%s/%s/%s", registry, ns, model);
  if (default_registry && strcmp(ns, "library") == 0)
    f->name = g_strdup_printf("%s:%s", model, tag);
  else
    f->name = g_strdup_printf("%s:%s", f->repo_id, tag);
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autofree char *sha = NULL, *proj = NULL;
  GError *e = NULL;
  struct stat st;
  if (stat(manifest, &st) != 0 || st.st_size > (off_t)MANIFEST_MAX_BYTES) {
    f->missing = g_strdup_printf("%s: the manifest cannot be read or is too large", manifest);
  } else if (!g_file_get_contents(manifest, &data, &len, &e) ||
             !wh_library_parse_ollama_manifest(data, len, &sha, &proj, NULL, &e)) {
    f->missing = g_strdup_printf("%s: %s", manifest, e->message);
    g_error_free(e);
  }
  if (sha) {
    g_autofree char *blob = g_strdup_printf("sha256-%s", sha);
    f->path = g_build_filename(root, "blobs", blob, NULL);
    if (!found_stat(f))
      f->missing = g_strdup_printf("the model blob %s named by the manifest %s is missing; "
                                   "run `ollama pull %s` again",
                                   f->path, manifest, f->name);
    if (proj) {
      g_autofree char *pblob = g_strdup_printf("sha256-%s", proj);
      f->mmproj = g_build_filename(root, "blobs", pblob, NULL);
    }
  }
  if (!f->path)
    f->path = g_strdup(manifest);
  found_add(c, f);
}

static void
discover_ollama(scan_ctx *c, const char *root)
{
  g_autofree char *mdir = g_build_filename(root, "manifests", NULL);
  /* Four fixed levels: registry, namespace, model, tag. */
  g_autoptr(GPtrArray) level = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(level, g_strdup(""));
  for (int depth = 0; depth < 4; depth++) {
    g_autoptr(GPtrArray) next = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < level->len; i++) {
      g_autofree char *dir = g_build_filename(mdir, level->pdata[i], NULL);
      GDir *d = g_dir_open(dir, 0, NULL);
      const char *name;
      while (d && (name = g_dir_read_name(d))) {
        if (name[0] == '.')
          continue;
        g_ptr_array_add(next, g_build_filename(level->pdata[i], name, NULL));
      }
      if (d)
        g_dir_close(d);
    }
    g_ptr_array_sort(next, cmp_strings);
    g_ptr_array_unref(level);
    level = g_steal_pointer(&next);
  }
  for (guint i = 0; i < level->len && !g_cancellable_is_cancelled(c->cancellable); i++) {
    g_autofree char *manifest = g_build_filename(mdir, level->pdata[i], NULL);
    if (!g_file_test(manifest, G_FILE_TEST_IS_REGULAR))
      continue;
    g_auto(GStrv) parts = g_strsplit(level->pdata[i], G_DIR_SEPARATOR_S, 4);
    if (g_strv_length(parts) == 4)
      discover_ollama_manifest(c, root, manifest, parts);
  }
}

typedef struct {
  dev_t dev;
  ino_t ino;
} dir_id;

static guint
dir_id_hash(gconstpointer p)
{
  const dir_id *d = p;
  return (guint)d->ino ^ (guint)(d->dev * 2654435761u);
}

static gboolean
dir_id_equal(gconstpointer a, gconstpointer b)
{
  const dir_id *x = a, *y = b;
  return x->dev == y->dev && x->ino == y->ino;
}

/* Walks @dir down to @depth levels, adding *.gguf files. @rel is the path below the source's
 * root (for the LM Studio publisher/repo). @visited holds the folders entered (by device and
 * inode), so a symlink loop is walked once. */
static void
walk_folder(scan_ctx *c, wh_library_source source, const char *dir, const char *rel, guint depth,
            GHashTable *visited)
{
  if (g_cancellable_is_cancelled(c->cancellable))
    return;
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return;
  dir_id id = {st.st_dev, st.st_ino};
  if (g_hash_table_contains(visited, &id))
    return;
  g_hash_table_add(visited, g_memdup2(&id, sizeof id));
  GDir *d = g_dir_open(dir, 0, NULL);
  if (!d)
    return;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  const char *name;
  while ((name = g_dir_read_name(d)))
    g_ptr_array_add(names, g_strdup(name));
  g_dir_close(d);
  for (guint i = 0; i < names->len; i++) {
    const char *n = names->pdata[i];
    g_autofree char *p = g_build_filename(dir, n, NULL);
    g_autofree char *r = rel ? g_build_filename(rel, n, NULL) : g_strdup(n);
    struct stat fst;
    if (stat(p, &fst) != 0)
      continue;
    if (S_ISDIR(fst.st_mode)) {
      if (n[0] != '.' && depth > 1)
        walk_folder(c, source, p, r, depth - 1, visited);
      continue;
    }
    if (!S_ISREG(fst.st_mode) || !has_gguf_suffix(n))
      continue;
    found *f = g_new0(found, 1);
    f->path = g_strdup(p);
    if (!found_stat(f)) {
      found_free(f);
      continue;
    }
    f->group = g_strdup(dir);
    f->source = source;
    f->is_projector = is_projector_name(n);
    if (source == WH_LIBRARY_SOURCE_LMSTUDIO) {
      g_auto(GStrv) parts = g_strsplit(r, G_DIR_SEPARATOR_S, -1);
      if (g_strv_length(parts) >= 3)
        f->repo_id = g_strdup_printf("%s/%s", parts[0], parts[1]);
    }
    found_add(c, f);
  }
}

static void
discover_folder(scan_ctx *c, wh_library_source source, const char *dir, guint depth)
{
  GHashTable *visited = g_hash_table_new_full(dir_id_hash, dir_id_equal, g_free, NULL);
  walk_folder(c, source, dir, NULL, depth, visited);
  g_hash_table_unref(visited);
}

/* --- grouping and description -------------------------------------------------------------- */

typedef struct {
  GPtrArray *shards;     /* found* (borrowed), shard order */
  GPtrArray *projectors; /* found* (borrowed) */
  guint n_shards;
  gboolean complete;
  gboolean is_projector;
} group;

static void
group_free(group *g)
{
  g_ptr_array_unref(g->shards);
  g_ptr_array_unref(g->projectors);
  g_free(g);
}

static group *
group_new(void)
{
  group *g = g_new0(group, 1);
  g->shards = g_ptr_array_new();
  g->projectors = g_ptr_array_new();
  g->n_shards = 1;
  g->complete = TRUE;
  return g;
}

static int
cmp_found_path(gconstpointer a, gconstpointer b)
{
  const found *x = *(found *const *)a, *y = *(found *const *)b;
  return strcmp(x->path, y->path);
}

/* Groups the records of one folder (@files, same group key) into models. */
static void
group_folder(GPtrArray *files, GPtrArray *out)
{
  g_ptr_array_sort(files, cmp_found_path);
  g_autoptr(GPtrArray) projectors = g_ptr_array_new();
  GPtrArray *mine = g_ptr_array_new();
  g_autoptr(GHashTable) splits = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < files->len; i++) {
    found *f = files->pdata[i];
    if (f->is_projector) {
      g_ptr_array_add(projectors, f);
      continue;
    }
    g_autofree char *prefix = NULL;
    guint index = 0, count = 0;
    if (f->source != WH_LIBRARY_SOURCE_OLLAMA &&
        wh_gguf_split_parse(f->path, &prefix, &index, &count) && count > 1) {
      group *g = g_hash_table_lookup(splits, prefix);
      if (!g) {
        g = group_new();
        g->n_shards = count;
        g_hash_table_insert(splits, g_strdup(prefix), g);
        g_ptr_array_add(mine, g);
      }
      /* Shards arrive in path order, which is shard order for one prefix. */
      g_ptr_array_add(g->shards, f);
      continue;
    }
    group *g = group_new();
    g_ptr_array_add(g->shards, f);
    g_ptr_array_add(mine, g);
  }
  for (guint i = 0; i < mine->len; i++) {
    group *g = mine->pdata[i];
    if (g->n_shards > 1) {
      /* Complete when every index 1..N is present once and the counts agree. */
      guint seen = 0;
      gboolean ok = TRUE;
      for (guint k = 0; k < g->shards->len; k++) {
        found *f = g->shards->pdata[k];
        guint index = 0, count = 0;
        wh_gguf_split_parse(f->path, NULL, &index, &count);
        if (count != g->n_shards || index != seen)
          ok = FALSE;
        seen++;
      }
      g->complete = ok && seen == g->n_shards;
    }
    for (guint k = 0; k < projectors->len; k++)
      g_ptr_array_add(g->projectors, projectors->pdata[k]);
  }
  if (mine->len == 0) {
    for (guint k = 0; k < projectors->len; k++) {
      group *g = group_new();
      g->is_projector = TRUE;
      g_ptr_array_add(g->shards, projectors->pdata[k]);
      g_ptr_array_add(mine, g);
    }
  }
  for (guint i = 0; i < mine->len; i++)
    g_ptr_array_add(out, mine->pdata[i]);
  g_ptr_array_unref(mine);
}

static char *
group_cache_key(const group *g)
{
  GString *k = g_string_new(NULL);
  for (guint i = 0; i < g->shards->len; i++) {
    const found *f = g->shards->pdata[i];
    g_string_append_printf(k,
                           "%s%s\t%" G_GUINT64_FORMAT "\t%" G_GINT64_FORMAT ".%09" G_GINT64_FORMAT,
                           i ? "\n" : "", f->real, f->size, f->mtime, f->mtime_ns);
  }
  return g_string_free(k, FALSE);
}

static wh_library_entry *
describe_group(wh_library *lib, const group *g, GHashTable *own, GHashTable *used)
{
  const found *first = g->shards->pdata[0];
  wh_library_entry *e = g_new0(wh_library_entry, 1);
  e->id = g_strdup(first->real ? first->real : first->path);
  e->source = first->source;
  e->name = first->name ? g_strdup(first->name) : display_name(first->path);
  e->repo_id = g_strdup(first->repo_id);
  e->revision = g_strdup(first->revision);
  e->n_shards = g->n_shards;
  e->complete = g->complete && !first->missing;
  e->is_projector = g->is_projector;
  e->file_type = -1;
  GStrvBuilder *pb = g_strv_builder_new();
  gboolean all_own = e->source == WH_LIBRARY_SOURCE_HF_CACHE;
  for (guint i = 0; i < g->shards->len; i++) {
    const found *f = g->shards->pdata[i];
    g_strv_builder_add(pb, f->path);
    e->size += f->size;
    e->mtime = MAX(e->mtime, f->mtime);
    if (!g_hash_table_contains(own, f->path))
      all_own = FALSE;
  }
  e->paths = g_strv_builder_end(pb);
  g_strv_builder_unref(pb);
  if (g->projectors->len || first->mmproj) {
    GStrvBuilder *mb = g_strv_builder_new();
    if (first->mmproj)
      g_strv_builder_add(mb, first->mmproj);
    for (guint i = 0; i < g->projectors->len; i++)
      g_strv_builder_add(mb, ((found *)g->projectors->pdata[i])->path);
    e->mmproj_paths = g_strv_builder_end(mb);
    g_strv_builder_unref(mb);
  }
  if (all_own) {
    e->source = WH_LIBRARY_SOURCE_WHITTLE;
    e->deletable = TRUE;
  }
  if (first->missing) {
    e->error = g_strdup(first->missing);
    return e;
  }

  g_autofree char *key = group_cache_key(g);
  meta *m = NULL;
  g_mutex_lock(&lib->lock);
  meta *cached = g_hash_table_lookup(lib->cache, key);
  if (cached) {
    m = meta_copy(cached);
    lib->hits++;
  } else {
    lib->misses++;
  }
  g_mutex_unlock(&lib->lock);
  if (!m) {
    if (g->complete) {
      m = read_meta(first->path, g->n_shards > 1);
    } else {
      /* Describe what we have from the first shard present, and say what is missing. */
      m = read_meta(first->path, FALSE);
      m->n_params = 0;
      GString *miss = g_string_new(NULL);
      for (guint k = 0; k < g->n_shards; k++) {
        gboolean have = FALSE;
        for (guint i = 0; i < g->shards->len && !have; i++) {
          guint index = 0;
          wh_gguf_split_parse(((found *)g->shards->pdata[i])->path, NULL, &index, NULL);
          have = index == k;
        }
        if (!have)
          g_string_append_printf(miss, "%s%u", miss->len ? ", " : "", k + 1);
      }
      g_free(m->error);
      m->error =
          g_strdup_printf("split model with %u parts: part(s) %s missing", g->n_shards, miss->str);
      g_string_free(miss, TRUE);
    }
    g_mutex_lock(&lib->lock);
    g_hash_table_replace(lib->cache, g_strdup(key), meta_copy(m));
    g_mutex_unlock(&lib->lock);
  }
  g_hash_table_add(used, g_steal_pointer(&key));
  e->architecture = g_strdup(m->architecture);
  e->model_name = g_strdup(m->model_name);
  e->n_params = m->n_params;
  e->file_type = m->file_type;
  e->context_length = m->context_length;
  e->error = g_strdup(m->error);
  /* The file type the header declares, else the label in the name, else the main type. */
  e->quant = m->quant ? g_strdup(m->quant) : wh_hub_parse_quant_label(first->path);
  if (!e->quant)
    e->quant = g_strdup(m->main_type);
  meta_free(m);
  return e;
}

static int
cmp_entries(gconstpointer a, gconstpointer b)
{
  const wh_library_entry *x = *(wh_library_entry *const *)a;
  const wh_library_entry *y = *(wh_library_entry *const *)b;
  if (x->source != y->source)
    return (int)x->source - (int)y->source;
  int c = g_ascii_strcasecmp(x->name, y->name);
  return c ? c : strcmp(x->id, y->id);
}

typedef void (*scan_progress)(guint done, guint total, const char *status, gpointer data);

static GPtrArray *
scan_impl(wh_library *lib, scan_progress progress, gpointer progress_data,
          GCancellable *cancellable, GError **error)
{
  g_mutex_lock(&lib->lock);
  cache_load(lib);
  g_autoptr(GPtrArray) folders = g_ptr_array_copy(lib->folders, (GCopyFunc)(void *)g_strdup, NULL);
  g_ptr_array_set_free_func(folders, g_free);
  GHashTable *own = index_paths(lib);
  g_mutex_unlock(&lib->lock);

  scan_ctx c = {0};
  c.lib = lib;
  c.found = g_ptr_array_new_with_free_func((GDestroyNotify)found_free);
  c.seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  c.cancellable = cancellable;
  if (progress)
    progress(0, 0, "Looking for models", progress_data);
  if (lib->hf_hub_dir)
    discover_hf(&c, lib->hf_hub_dir);
  if (lib->ollama_dir)
    discover_ollama(&c, lib->ollama_dir);
  for (guint i = 0; i < lib->lmstudio_dirs->len; i++)
    discover_folder(&c, WH_LIBRARY_SOURCE_LMSTUDIO, lib->lmstudio_dirs->pdata[i], 4);
  for (guint i = 0; i < folders->len; i++)
    discover_folder(&c, WH_LIBRARY_SOURCE_FOLDER, folders->pdata[i], lib->max_depth);

  /* Group by folder, in discovery order. */
  g_autoptr(GHashTable) by_group =
      g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)g_ptr_array_unref);
  g_autoptr(GPtrArray) order = g_ptr_array_new();
  for (guint i = 0; i < c.found->len; i++) {
    found *f = c.found->pdata[i];
    GPtrArray *a = g_hash_table_lookup(by_group, f->group);
    if (!a) {
      a = g_ptr_array_new();
      g_hash_table_insert(by_group, f->group, a);
      g_ptr_array_add(order, f->group);
    }
    g_ptr_array_add(a, f);
  }
  g_autoptr(GPtrArray) groups = g_ptr_array_new_with_free_func((GDestroyNotify)group_free);
  for (guint i = 0; i < order->len; i++)
    group_folder(g_hash_table_lookup(by_group, order->pdata[i]), groups);

  GPtrArray *entries = g_ptr_array_new_with_free_func((GDestroyNotify)wh_library_entry_free);
  g_autoptr(GHashTable) used = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  gboolean cancelled = g_cancellable_is_cancelled(cancellable);
  for (guint i = 0; i < groups->len && !cancelled; i++) {
    group *g = groups->pdata[i];
    if (progress) {
      g_autofree char *status = g_strdup_printf("Reading %s", ((found *)g->shards->pdata[0])->path);
      progress(i, groups->len, status, progress_data);
    }
    g_ptr_array_add(entries, describe_group(lib, g, own, used));
    cancelled = g_cancellable_is_cancelled(cancellable);
  }
  g_hash_table_unref(own);
  g_hash_table_unref(c.seen);
  g_ptr_array_unref(groups);
  groups = NULL;
  g_ptr_array_unref(c.found);
  if (cancelled) {
    g_ptr_array_unref(entries);
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_CANCELLED, "the scan was cancelled");
    return NULL;
  }
  g_mutex_lock(&lib->lock);
  cache_save(lib, used);
  g_mutex_unlock(&lib->lock);
  g_ptr_array_sort(entries, cmp_entries);
  if (progress)
    progress(entries->len, entries->len, "Done", progress_data);
  return entries;
}

GPtrArray *
wh_library_scan(wh_library *lib, GCancellable *cancellable, GError **error)
{
  return scan_impl(lib, lib->progress, lib->progress_data, cancellable, error);
}

static void
job_progress(guint done, guint total, const char *status, gpointer data)
{
  wh_job_set_progress(data, done, total, status);
}

static gboolean
scan_job(wh_job *job, gpointer data, GError **error)
{
  GPtrArray *entries = scan_impl(data, job_progress, job, wh_job_get_cancellable(job), error);
  if (!entries)
    return FALSE;
  wh_job_set_result(job, entries, (GDestroyNotify)g_ptr_array_unref);
  return TRUE;
}

wh_job *
wh_library_scan_async(wh_library *lib, wh_job_queue *queue, wh_job_notify_func notify,
                      gpointer notify_data)
{
  return wh_job_queue_submit(queue, WH_JOB_DOWNLOAD, "Scanning the model library", scan_job, lib,
                             NULL, notify, notify_data);
}

/* --- delete -------------------------------------------------------------------------------- */

/* Where the link @path points, one level deep, with a canonical folder part: the HF cache's
 * "../../blobs/<etag>" becomes "/…/models--org--name/blobs/<etag>" even when the blob itself
 * is a link elsewhere. NULL when @path is not a link. */
static char *
link_target(const char *path)
{
  g_autofree char *t = g_file_read_link(path, NULL);
  if (!t)
    return NULL;
  g_autofree char *dir = g_path_get_dirname(path);
  g_autofree char *abs = g_path_is_absolute(t) ? g_strdup(t) : g_build_filename(dir, t, NULL);
  g_autofree char *tdir = g_path_get_dirname(abs);
  g_autofree char *tbase = g_path_get_basename(abs);
  g_autofree char *real_dir = canonical(tdir);
  return g_build_filename(real_dir, tbase, NULL);
}

/* TRUE when some entry under @dir (recursively) is a link to @blob (see link_target()). */
static gboolean
tree_refers_to(const char *dir, const char *blob, guint depth)
{
  GDir *d = g_dir_open(dir, 0, NULL);
  if (!d)
    return FALSE;
  gboolean hit = FALSE;
  const char *name;
  while (!hit && (name = g_dir_read_name(d))) {
    g_autofree char *p = g_build_filename(dir, name, NULL);
    struct stat st;
    if (lstat(p, &st) != 0)
      continue;
    if (S_ISDIR(st.st_mode)) {
      if (depth < 32)
        hit = tree_refers_to(p, blob, depth + 1);
      continue;
    }
    g_autofree char *target = link_target(p);
    hit = target && strcmp(target, blob) == 0;
  }
  g_dir_close(d);
  return hit;
}

/* The repo folder (…/models--org--name) of a snapshot entry recorded with @commit/@filename,
 * or NULL when @path does not have that shape. */
static char *
repo_dir_of(const char *path, const char *commit, const char *filename)
{
  g_autofree char *tail = g_build_filename("snapshots", commit, filename, NULL);
  gsize n = strlen(path), t = strlen(tail);
  if (n <= t + 1 || strcmp(path + n - t, tail) != 0 || path[n - t - 1] != G_DIR_SEPARATOR)
    return NULL;
  return g_strndup(path, n - t - 1);
}

static gboolean
delete_one(JsonObject *rec, GError **error)
{
  const char *path = obj_string(rec, "path");
  const char *commit = obj_string(rec, "commit");
  const char *filename = obj_string(rec, "filename");
  g_autofree char *repo = commit && filename ? repo_dir_of(path, commit, filename) : NULL;
  if (!repo || strstr(filename, "..") || strstr(commit, "/") || strstr(commit, "..")) {
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_CORRUPT,
                "the download record for %s does not describe a Hugging Face cache entry; "
                "nothing was deleted",
                path);
    return FALSE;
  }
  g_autofree char *blobs = g_build_filename(repo, "blobs", NULL);
  g_autofree char *snaps = g_build_filename(repo, "snapshots", NULL);
  g_autofree char *blobs_real = canonical(blobs);
  g_autofree char *blob = NULL;
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
    g_autofree char *target = link_target(path);
    /* Only a blob of this repo's own blobs/ folder is ours to remove. */
    g_autofree char *parent = target ? g_path_get_dirname(target) : NULL;
    if (parent && strcmp(parent, blobs_real) == 0)
      blob = g_steal_pointer(&target);
  }
  if (unlink(path) != 0 && errno != ENOENT) {
    int err = errno;
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_IO, "cannot remove %s: %s", path,
                g_strerror(err));
    return FALSE;
  }
  if (blob && !tree_refers_to(snaps, blob, 0) && unlink(blob) != 0 && errno != ENOENT) {
    int err = errno;
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_IO, "cannot remove %s: %s", blob,
                g_strerror(err));
    return FALSE;
  }
  /* Empty folders between the file and the snapshot root go too (rmdir fails when not empty). */
  g_autofree char *dir = g_path_get_dirname(path);
  while (g_str_has_prefix(dir, snaps) && strcmp(dir, snaps) != 0 && rmdir(dir) == 0) {
    char *up = g_path_get_dirname(dir);
    g_free(dir);
    dir = up;
  }
  return TRUE;
}

gboolean
wh_library_delete(wh_library *lib, const wh_library_entry *entry, GError **error)
{
  if (!entry || !entry->paths || !entry->paths[0]) {
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_INVALID, "no model to delete");
    return FALSE;
  }
  if (entry->source != WH_LIBRARY_SOURCE_WHITTLE) {
    const char *owner = entry->source == WH_LIBRARY_SOURCE_OLLAMA     ? "Ollama (`ollama rm`)"
                        : entry->source == WH_LIBRARY_SOURCE_LMSTUDIO ? "LM Studio"
                        : entry->source == WH_LIBRARY_SOURCE_HF_CACHE
                            ? "another tool using the Hugging Face cache (`hf cache delete`)"
                            : "you (it is in a folder you added)";
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_NOT_OURS,
                "%s was not downloaded by Whittle, so Whittle will not delete it; it belongs to "
                "%s — remove it there",
                entry->name, owner);
    return FALSE;
  }
  g_mutex_lock(&lib->lock);
  int lock_fd = index_lock(lib);
  g_autoptr(GPtrArray) recs = index_load_for_update(lib, "cannot delete: ", error);
  if (!recs) {
    index_unlock(lock_fd);
    g_mutex_unlock(&lib->lock);
    return FALSE;
  }
  gboolean ok = TRUE;
  /* Every shard must be recorded; projectors only go when recorded too. */
  g_autoptr(GPtrArray) mine = g_ptr_array_new();
  guint n_paths = g_strv_length(entry->paths);
  guint n_shards_own = 0;
  for (guint i = 0; i < recs->len; i++) {
    const char *p = obj_string(recs->pdata[i], "path");
    if (g_strv_contains((const char *const *)entry->paths, p)) {
      g_ptr_array_add(mine, recs->pdata[i]);
      n_shards_own++;
    } else if (entry->mmproj_paths &&
               g_strv_contains((const char *const *)entry->mmproj_paths, p)) {
      g_ptr_array_add(mine, recs->pdata[i]);
    }
  }
  if (n_shards_own < n_paths) {
    g_set_error(error, WH_LIBRARY_ERROR, WH_LIBRARY_ERROR_NOT_OURS,
                "%s is not (or no longer) in Whittle's download records (%s); nothing was "
                "deleted",
                entry->name, lib->index_path);
    index_unlock(lock_fd);
    g_mutex_unlock(&lib->lock);
    return FALSE;
  }
  for (guint i = 0; i < mine->len && ok; i++) {
    ok = delete_one(mine->pdata[i], error);
    if (ok)
      g_ptr_array_remove(recs, mine->pdata[i]);
  }
  /* Save what is left, even after a partial failure, so the index matches the disk. */
  GError *save_error = NULL;
  if (!index_save(lib, recs, &save_error)) {
    if (ok)
      g_propagate_error(error, save_error);
    else
      g_error_free(save_error);
    ok = FALSE;
  }
  index_unlock(lock_fd);
  g_mutex_unlock(&lib->lock);
  return ok;
}
