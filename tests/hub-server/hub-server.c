/* hub-server.c — the local hub look-alike (see hub-server.h). Test code: simple over fast. */
#include "config.h"

#include "hub-server.h"

#include "hub/hub.h"

#include <gio/gio.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <string.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "gguf/gguf.h"

struct wh_test_hub {
  char *root;
  char *url, *cdn_url;
  GThread *thread;
  GMainContext *ctx;
  GMainLoop *loop;
  SoupServer *api, *cdn;
  GMutex lock;
  wh_test_hub_faults faults;
  wh_test_hub_stats stats;
  GHashTable *sha_cache; /* "path:size:mtime" → sha256 */
  GHashTable *cdn_map;   /* sha256 → absolute path */
  GCond ready;
  gboolean started;
};

typedef struct {
  char *path; /* relative */
  char *abs;
  guint64 size;
  char *sha256; /* for .gguf (LFS) */
  char *sha1;   /* git blob id */
} file_entry;

/* Gives the calling server thread the niceness the faults ask for (server_nice). */
static void
apply_server_nice(wh_test_hub *h)
{
#ifdef __linux__
  g_mutex_lock(&h->lock);
  const int nice = h->faults.server_nice;
  g_mutex_unlock(&h->lock);
  const id_t tid = (id_t)syscall(SYS_gettid);
  if (nice != 0 && getpriority(PRIO_PROCESS, tid) != nice)
    setpriority(PRIO_PROCESS, tid, nice);
#else
  (void)h;
#endif
}

static void
file_entry_free(file_entry *f)
{
  g_free(f->path);
  g_free(f->abs);
  g_free(f->sha256);
  g_free(f->sha1);
  g_free(f);
}

char *
wh_test_hub_commit(const char *repo_id)
{
  return g_compute_checksum_for_string(G_CHECKSUM_SHA1, repo_id, -1);
}

static char *
hash_file(wh_test_hub *h, const char *abs, GChecksumType type, guint64 size)
{
  struct stat st;
  if (stat(abs, &st) != 0)
    return NULL;
  g_autofree char *key =
      g_strdup_printf("%d:%s:%" G_GUINT64_FORMAT ":%ld", (int)type, abs, size, (long)st.st_mtime);
  g_mutex_lock(&h->lock);
  char *cached = g_strdup(g_hash_table_lookup(h->sha_cache, key));
  g_mutex_unlock(&h->lock);
  if (cached)
    return cached;
  g_autofree char *data = NULL;
  gsize len;
  if (!g_file_get_contents(abs, &data, &len, NULL))
    return NULL;
  GChecksum *ck = g_checksum_new(type);
  if (type == G_CHECKSUM_SHA1) {
    char hdr[48];
    int n = g_snprintf(hdr, sizeof hdr, "blob %" G_GSIZE_FORMAT, len);
    g_checksum_update(ck, (const guchar *)hdr, n + 1);
  }
  g_checksum_update(ck, (const guchar *)data, len);
  char *hex = g_strdup(g_checksum_get_string(ck));
  g_checksum_free(ck);
  g_mutex_lock(&h->lock);
  g_hash_table_replace(h->sha_cache, g_strdup(key), g_strdup(hex));
  if (type == G_CHECKSUM_SHA256)
    g_hash_table_replace(h->cdn_map, g_strdup(hex), g_strdup(abs));
  g_mutex_unlock(&h->lock);
  return hex;
}

static void
collect_files(wh_test_hub *h, const char *base, const char *rel, GPtrArray *out)
{
  g_autofree char *dir = rel ? g_build_filename(base, rel, NULL) : g_strdup(base);
  GDir *d = g_dir_open(dir, 0, NULL);
  if (!d)
    return;
  const char *name;
  while ((name = g_dir_read_name(d))) {
    g_autofree char *abs = g_build_filename(dir, name, NULL);
    g_autofree char *r = rel ? g_strconcat(rel, "/", name, NULL) : g_strdup(name);
    struct stat st;
    if (stat(abs, &st) != 0)
      continue;
    if (S_ISDIR(st.st_mode)) {
      collect_files(h, base, r, out);
      continue;
    }
    file_entry *f = g_new0(file_entry, 1);
    f->path = g_steal_pointer(&r);
    f->abs = g_steal_pointer(&abs);
    f->size = (guint64)st.st_size;
    if (g_str_has_suffix(name, ".gguf"))
      f->sha256 = hash_file(h, f->abs, G_CHECKSUM_SHA256, f->size);
    f->sha1 = hash_file(h, f->abs, G_CHECKSUM_SHA1, f->size);
    g_ptr_array_add(out, f);
  }
  g_dir_close(d);
}

static int
cmp_entry(gconstpointer a, gconstpointer b)
{
  return strcmp((*(file_entry *const *)a)->path, (*(file_entry *const *)b)->path);
}

static GPtrArray *
repo_files(wh_test_hub *h, const char *repo_id)
{
  g_autofree char *base = g_build_filename(h->root, repo_id, NULL);
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)file_entry_free);
  collect_files(h, base, NULL, out);
  g_ptr_array_sort(out, cmp_entry);
  return out;
}

static GPtrArray *
list_repos(wh_test_hub *h)
{
  GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
  GDir *d = g_dir_open(h->root, 0, NULL);
  const char *org;
  while (d && (org = g_dir_read_name(d))) {
    g_autofree char *od = g_build_filename(h->root, org, NULL);
    GDir *e = g_dir_open(od, 0, NULL);
    const char *name;
    while (e && (name = g_dir_read_name(e)))
      g_ptr_array_add(out, g_strdup_printf("%s/%s", org, name));
    if (e)
      g_dir_close(e);
  }
  if (d)
    g_dir_close(d);
  g_ptr_array_sort(out, (GCompareFunc)g_strcmp0);
  return out;
}

static gboolean
repo_exists(wh_test_hub *h, const char *repo_id)
{
  g_autofree char *p = g_build_filename(h->root, repo_id, NULL);
  return strstr(repo_id, "..") == NULL && g_file_test(p, G_FILE_TEST_IS_DIR);
}

static void
respond_json(SoupServerMessage *msg, JsonBuilder *b)
{
  g_autoptr(JsonGenerator) gen = json_generator_new();
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  json_generator_set_root(gen, root);
  gsize len;
  char *s = json_generator_to_data(gen, &len);
  soup_server_message_set_status(msg, 200, NULL);
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE, s, len);
}

static void
respond_error(SoupServerMessage *msg, guint status, const char *text)
{
  g_autofree char *body = g_strdup_printf("{\"error\":\"%s\"}", text);
  soup_server_message_set_status(msg, status, NULL);
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "X-Error-Message",
                               text);
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, body, strlen(body));
}

static guint64
repo_downloads(GPtrArray *files)
{
  guint64 d = 0;
  for (guint i = 0; i < files->len; i++)
    d += ((file_entry *)files->pdata[i])->size / 1000;
  return d;
}

static gboolean
repo_has_gguf(GPtrArray *files)
{
  for (guint i = 0; i < files->len; i++)
    if (((file_entry *)files->pdata[i])->sha256)
      return TRUE;
  return FALSE;
}

static void
add_common(JsonBuilder *b, const char *repo_id, GPtrArray *files)
{
  g_autofree char *author = g_strndup(repo_id, strcspn(repo_id, "/"));
  json_builder_set_member_name(b, "_id");
  json_builder_add_string_value(b, "0123456789abcdef01234567");
  json_builder_set_member_name(b, "id");
  json_builder_add_string_value(b, repo_id);
  json_builder_set_member_name(b, "modelId");
  json_builder_add_string_value(b, repo_id);
  json_builder_set_member_name(b, "author");
  json_builder_add_string_value(b, author);
  json_builder_set_member_name(b, "gated");
  if (g_str_has_prefix(repo_id, "gated/"))
    json_builder_add_string_value(b, "manual");
  else
    json_builder_add_boolean_value(b, FALSE);
  json_builder_set_member_name(b, "private");
  json_builder_add_boolean_value(b, FALSE);
  json_builder_set_member_name(b, "downloads");
  json_builder_add_int_value(b, (gint64)repo_downloads(files));
  json_builder_set_member_name(b, "likes");
  json_builder_add_int_value(b, (gint64)files->len);
  json_builder_set_member_name(b, "lastModified");
  json_builder_add_string_value(b, "2025-01-02T03:04:05.000Z");
  json_builder_set_member_name(b, "createdAt");
  json_builder_add_string_value(b, "2024-01-02T03:04:05.000Z");
  json_builder_set_member_name(b, "library_name");
  json_builder_add_string_value(b, repo_has_gguf(files) ? "gguf" : "transformers");
  json_builder_set_member_name(b, "pipeline_tag");
  json_builder_add_string_value(b, "text-generation");
  json_builder_set_member_name(b, "tags");
  json_builder_begin_array(b);
  if (repo_has_gguf(files))
    json_builder_add_string_value(b, "gguf");
  json_builder_add_string_value(b, "text-generation");
  json_builder_end_array(b);
}

typedef struct {
  char *repo;
  guint64 downloads;
} search_hit;

static int
cmp_hits_desc(gconstpointer a, gconstpointer b)
{
  const search_hit *x = a, *y = b;
  return x->downloads < y->downloads   ? 1
         : x->downloads > y->downloads ? -1
                                       : strcmp(x->repo, y->repo);
}

/* The first model file of a repo (what the hub's "gguf" summary describes), opened, or NULL. */
static wh_gguf *
first_model_gguf(GPtrArray *files)
{
  for (guint i = 0; i < files->len; i++) {
    file_entry *f = files->pdata[i];
    if (!f->sha256 || strstr(f->path, "mmproj"))
      continue;
    wh_gguf *g = wh_gguf_open_full(f->abs, WH_GGUF_OPEN_NO_SPLITS, NULL);
    if (g)
      return g;
  }
  return NULL;
}

static guint64
gguf_param_total(const wh_gguf *g)
{
  guint64 total = 0;
  for (guint64 t = 0; t < wh_gguf_n_tensors(g); t++)
    total += wh_gguf_get_tensor(g, t)->n_elements;
  return total;
}

/* Parameters of a repo as the hub counts them: the tensors of its first model file. */
static guint64
repo_param_total(GPtrArray *files)
{
  wh_gguf *g = first_model_gguf(files);
  guint64 total = g ? gguf_param_total(g) : 0;
  wh_gguf_close(g);
  return total;
}

/* num_parameters=min:X[,max:Y] (the hub's range syntax); FALSE when absent or malformed. */
static gboolean
parse_param_range(const char *s, guint64 *lo, guint64 *hi)
{
  *lo = 0;
  *hi = G_MAXUINT64;
  if (!s)
    return FALSE;
  g_auto(GStrv) parts = g_strsplit(s, ",", -1);
  for (guint i = 0; parts[i]; i++) {
    if (g_str_has_prefix(parts[i], "min:"))
      wh_hub_parse_param_count(parts[i] + 4, lo, NULL);
    else if (g_str_has_prefix(parts[i], "max:"))
      wh_hub_parse_param_count(parts[i] + 4, hi, NULL);
  }
  return TRUE;
}

static void
handle_search(wh_test_hub *h, SoupServerMessage *msg, GHashTable *query)
{
  const char *search = query ? g_hash_table_lookup(query, "search") : NULL;
  const char *author = query ? g_hash_table_lookup(query, "author") : NULL;
  const char *filter = query ? g_hash_table_lookup(query, "filter") : NULL;
  const char *sort = query ? g_hash_table_lookup(query, "sort") : NULL;
  const char *dir = query ? g_hash_table_lookup(query, "direction") : NULL;
  const char *limit_s = query ? g_hash_table_lookup(query, "limit") : NULL;
  const char *cursor_s = query ? g_hash_table_lookup(query, "cursor") : NULL;
  guint64 min_params = 0, max_params = G_MAXUINT64;
  gboolean ranged = parse_param_range(query ? g_hash_table_lookup(query, "num_parameters") : NULL,
                                      &min_params, &max_params);
  guint limit = limit_s ? (guint)atoi(limit_s) : 1000;
  guint cursor = cursor_s ? (guint)atoi(cursor_s) : 0;
  g_autoptr(GPtrArray) repos = list_repos(h);
  GArray *hits = g_array_new(FALSE, FALSE, sizeof(search_hit));
  for (guint i = 0; i < repos->len; i++) {
    const char *id = repos->pdata[i];
    g_autofree char *lid = g_ascii_strdown(id, -1);
    g_autofree char *ls = search ? g_ascii_strdown(search, -1) : NULL;
    if (ls && !strstr(lid, ls))
      continue;
    if (author && !g_str_has_prefix(id, author))
      continue;
    g_autoptr(GPtrArray) files = repo_files(h, id);
    if (filter && strcmp(filter, "gguf") == 0 && !repo_has_gguf(files))
      continue;
    if (ranged) {
      guint64 n = repo_param_total(files);
      if (n == 0 || n < min_params || n > max_params)
        continue;
    }
    search_hit hit = {g_strdup(id), repo_downloads(files)};
    g_array_append_val(hits, hit);
  }
  if (sort && strcmp(sort, "downloads") == 0) {
    g_array_sort(hits, cmp_hits_desc);
    if (dir && strcmp(dir, "1") == 0)
      for (guint i = 0; i < hits->len / 2; i++) {
        search_hit t = g_array_index(hits, search_hit, i);
        g_array_index(hits, search_hit, i) = g_array_index(hits, search_hit, hits->len - 1 - i);
        g_array_index(hits, search_hit, hits->len - 1 - i) = t;
      }
  }
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_array(b);
  for (guint i = cursor; i < hits->len && i < cursor + limit; i++) {
    search_hit *hit = &g_array_index(hits, search_hit, i);
    g_autoptr(GPtrArray) files = repo_files(h, hit->repo);
    json_builder_begin_object(b);
    add_common(b, hit->repo, files);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  if (cursor + limit < hits->len) {
    /* Keep every parameter, move the cursor. */
    GString *next = g_string_new(NULL);
    g_string_append_printf(next, "<%s/api/models?", h->url);
    GHashTableIter it;
    gpointer k, v;
    gboolean first = TRUE;
    if (query) {
      g_hash_table_iter_init(&it, query);
      while (g_hash_table_iter_next(&it, &k, &v)) {
        if (strcmp(k, "cursor") == 0)
          continue;
        g_autofree char *ev = g_uri_escape_string(v, NULL, FALSE);
        g_string_append_printf(next, "%s%s=%s", first ? "" : "&", (char *)k, ev);
        first = FALSE;
      }
    }
    g_string_append_printf(next, "%scursor=%u>; rel=\"next\"", first ? "" : "&", cursor + limit);
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Link", next->str);
    g_string_free(next, TRUE);
  }
  for (guint i = 0; i < hits->len; i++)
    g_free(g_array_index(hits, search_hit, i).repo);
  g_array_free(hits, TRUE);
  respond_json(msg, b);
}

static void
add_lfs(JsonBuilder *b, file_entry *f, const char *key)
{
  json_builder_set_member_name(b, "lfs");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, key);
  json_builder_add_string_value(b, f->sha256);
  json_builder_set_member_name(b, "size");
  json_builder_add_int_value(b, (gint64)f->size);
  json_builder_set_member_name(b, "pointerSize");
  json_builder_add_int_value(b, 135);
  json_builder_end_object(b);
}

static void
handle_info(wh_test_hub *h, SoupServerMessage *msg, const char *repo_id, const char *rev)
{
  g_autofree char *commit = wh_test_hub_commit(repo_id);
  if (rev && strcmp(rev, "main") != 0 && strcmp(rev, commit) != 0) {
    respond_error(msg, 404, "Revision Not Found");
    return;
  }
  g_autoptr(GPtrArray) files = repo_files(h, repo_id);
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  add_common(b, repo_id, files);
  json_builder_set_member_name(b, "sha");
  json_builder_add_string_value(b, commit);
  json_builder_set_member_name(b, "disabled");
  json_builder_add_boolean_value(b, FALSE);
  /* The gguf summary, from the first model file, read with the real reader. */
  wh_gguf *g = first_model_gguf(files);
  if (g) {
    guint64 total = gguf_param_total(g), ctx = 0;
    const char *arch = wh_gguf_get_architecture(g);
    g_autofree char *key = g_strdup_printf("%s.context_length", arch ? arch : "");
    wh_gguf_get_uint(g, key, &ctx);
    json_builder_set_member_name(b, "gguf");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "total");
    json_builder_add_int_value(b, (gint64)total);
    json_builder_set_member_name(b, "architecture");
    json_builder_add_string_value(b, arch ? arch : "");
    json_builder_set_member_name(b, "context_length");
    json_builder_add_int_value(b, (gint64)ctx);
    json_builder_end_object(b);
    wh_gguf_close(g);
  }
  json_builder_set_member_name(b, "siblings");
  json_builder_begin_array(b);
  guint64 used = 0;
  for (guint i = 0; i < files->len; i++) {
    file_entry *f = files->pdata[i];
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "rfilename");
    json_builder_add_string_value(b, f->path);
    json_builder_set_member_name(b, "size");
    json_builder_add_int_value(b, (gint64)f->size);
    json_builder_set_member_name(b, "blobId");
    json_builder_add_string_value(b, f->sha1);
    if (f->sha256)
      add_lfs(b, f, "sha256");
    json_builder_end_object(b);
    used += f->size;
  }
  json_builder_end_array(b);
  json_builder_set_member_name(b, "usedStorage");
  json_builder_add_int_value(b, (gint64)used);
  json_builder_end_object(b);
  respond_json(msg, b);
}

static void
handle_tree(wh_test_hub *h, SoupServerMessage *msg, const char *repo_id, const char *rev,
            GHashTable *query)
{
  g_autofree char *commit = wh_test_hub_commit(repo_id);
  if (strcmp(rev, "main") != 0 && strcmp(rev, commit) != 0) {
    respond_error(msg, 404, "Revision Not Found");
    return;
  }
  g_mutex_lock(&h->lock);
  guint page = h->faults.tree_page ? h->faults.tree_page : 1000;
  gboolean evil = h->faults.evil_tree;
  g_mutex_unlock(&h->lock);
  const char *cursor_s = query ? g_hash_table_lookup(query, "cursor") : NULL;
  guint cursor = cursor_s ? (guint)atoi(cursor_s) : 0;
  g_autoptr(GPtrArray) files = repo_files(h, repo_id);
  /* Entries: directories (once) and files, in path order. */
  g_autoptr(GPtrArray) entries = g_ptr_array_new();
  g_autoptr(GHashTable) dirs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < files->len; i++) {
    file_entry *f = files->pdata[i];
    const char *slash = strrchr(f->path, '/');
    if (slash) {
      char *d = g_strndup(f->path, (gsize)(slash - f->path));
      if (!g_hash_table_contains(dirs, d)) {
        g_hash_table_add(dirs, d);
        g_ptr_array_add(entries, d); /* a char*: marked by not being a file_entry */
      } else {
        g_free(d);
      }
    }
    g_ptr_array_add(entries, f);
  }
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_array(b);
  for (guint i = cursor; i < entries->len && i < cursor + page; i++) {
    gpointer e = entries->pdata[i];
    json_builder_begin_object(b);
    if (g_hash_table_contains(dirs, e)) {
      json_builder_set_member_name(b, "type");
      json_builder_add_string_value(b, "directory");
      json_builder_set_member_name(b, "oid");
      json_builder_add_string_value(b, "0000000000000000000000000000000000000000");
      json_builder_set_member_name(b, "size");
      json_builder_add_int_value(b, 0);
      json_builder_set_member_name(b, "path");
      json_builder_add_string_value(b, e);
    } else {
      file_entry *f = e;
      json_builder_set_member_name(b, "type");
      json_builder_add_string_value(b, "file");
      json_builder_set_member_name(b, "oid");
      json_builder_add_string_value(b, f->sha1);
      json_builder_set_member_name(b, "size");
      json_builder_add_int_value(b, (gint64)f->size);
      json_builder_set_member_name(b, "path");
      json_builder_add_string_value(b, f->path);
      if (f->sha256)
        add_lfs(b, f, "oid");
    }
    json_builder_end_object(b);
  }
  if (evil) {
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, "file");
    json_builder_set_member_name(b, "path");
    json_builder_add_string_value(b, "../../escape.gguf");
    json_builder_set_member_name(b, "size");
    json_builder_add_int_value(b, 10);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  if (cursor + page < entries->len) {
    g_autofree char *link = g_strdup_printf("<%s/api/models/%s/tree/%s?recursive=true&cursor=%u>; "
                                            "rel=\"next\"",
                                            h->url, repo_id, rev, cursor + page);
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Link", link);
  }
  respond_json(msg, b);
}

/* --- raw bodies on a stolen connection ---------------------------------------------------- */

typedef enum { RAW_FILE, RAW_ENDLESS } raw_kind;

typedef struct {
  wh_test_hub *hub;
  GIOStream *io;
  raw_kind kind;
  char *abs;
  guint64 size;
  char *etag;
  gboolean has_range;
  guint64 r_start, r_end; /* inclusive */
  /* faults taken for this answer */
  gboolean drop, stall, s429, s500, corrupt, ignore_range, wrong_range, change_etag, endless;
  gboolean rl429;
  guint stall_ms, rate;
} raw_job;

static gboolean
write_all(GOutputStream *out, const void *data, gsize len)
{
  return g_output_stream_write_all(out, data, len, NULL, NULL, NULL);
}

static gpointer
raw_thread(gpointer data)
{
  raw_job *j = data;
  apply_server_nice(j->hub);
  GOutputStream *out = g_io_stream_get_output_stream(j->io);
  GString *hd = g_string_new(NULL);
  if (j->kind == RAW_ENDLESS) {
    g_string_append(hd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        "Connection: close\r\n\r\n[");
    write_all(out, hd->str, hd->len);
    char junk[65536];
    memset(junk, ' ', sizeof junk);
    while (write_all(out, junk, sizeof junk)) {
    }
    goto done;
  }
  if (j->rl429) {
    g_string_append(hd, "HTTP/1.1 429 Too Many Requests\r\n"
                        "RateLimit: \"resolvers\";r=0;t=1\r\n"
                        "RateLimit-Policy: \"fixed window\";\"resolvers\";q=5000;w=300\r\n"
                        "Content-Length: 0\r\nConnection: close\r\n\r\n");
    write_all(out, hd->str, hd->len);
    goto done;
  }
  if (j->s429 || j->s500) {
    g_string_append_printf(hd, "HTTP/1.1 %s\r\n%sContent-Length: 0\r\nConnection: close\r\n\r\n",
                           j->s429 ? "429 Too Many Requests" : "500 Internal Server Error",
                           j->s429 ? "Retry-After: 1\r\n" : "");
    write_all(out, hd->str, hd->len);
    goto done;
  }
  guint64 start = 0, end = j->size; /* [start, end) */
  gboolean partial = j->has_range && !j->ignore_range;
  if (partial) {
    if (j->r_start >= j->size) {
      g_string_append_printf(hd,
                             "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes "
                             "*/%" G_GUINT64_FORMAT "\r\nContent-Length: 0\r\n"
                             "Connection: close\r\n\r\n",
                             j->size);
      write_all(out, hd->str, hd->len);
      goto done;
    }
    start = j->r_start;
    end = MIN(j->r_end + 1, j->size);
  }
  g_string_append_printf(hd, "HTTP/1.1 %s\r\n", partial ? "206 Partial Content" : "200 OK");
  if (!j->endless)
    g_string_append_printf(hd, "Content-Length: %" G_GUINT64_FORMAT "\r\n", end - start);
  if (partial)
    g_string_append_printf(hd,
                           "Content-Range: bytes %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT
                           "/%" G_GUINT64_FORMAT "\r\n",
                           start, end - 1, j->wrong_range ? j->size + 4096 : j->size);
  if (j->etag)
    g_string_append_printf(hd, "ETag: \"%s\"\r\n",
                           j->change_etag
                               ? "1111111111111111111111111111111111111111111111111111111111111111"
                               : j->etag);
  g_string_append(hd, "Accept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\n"
                      "Connection: close\r\n\r\n");
  if (!write_all(out, hd->str, hd->len))
    goto done;
  {
    GFile *f = g_file_new_for_path(j->abs);
    GFileInputStream *in = g_file_read(f, NULL, NULL);
    g_object_unref(f);
    if (!in)
      goto done;
    g_seekable_seek(G_SEEKABLE(in), (goffset)start, G_SEEK_SET, NULL, NULL);
    guint64 pos = start, half = start + (end - start) / 2;
    char buf[32768];
    gboolean corrupted = FALSE;
    gint64 t0 = g_get_monotonic_time();
    while (pos < end) {
      gsize want = (gsize)MIN((guint64)sizeof buf, end - pos);
      if ((j->drop || j->stall) && pos < half)
        want = (gsize)MIN((guint64)want, half - pos);
      if ((j->drop || j->stall) && pos >= half && half > start) {
        if (j->stall)
          g_usleep((gulong)j->stall_ms * 1000);
        break;
      }
      gssize n = g_input_stream_read(G_INPUT_STREAM(in), buf, want, NULL, NULL);
      if (n <= 0)
        break;
      if (j->corrupt && !corrupted) {
        buf[n / 2] ^= 0x5a;
        corrupted = TRUE;
      }
      if (!write_all(out, buf, (gsize)n))
        break;
      pos += (guint64)n;
      if (j->rate) {
        gint64 due = t0 + (gint64)((double)(pos - start) * 1e6 / j->rate);
        gint64 now = g_get_monotonic_time();
        if (due > now)
          g_usleep((gulong)(due - now));
      }
    }
    g_object_unref(in);
    /* Then junk until the client hangs up (capped at 1 GiB so a client that never stops
     * reading ends the test by failing its checksum instead of hanging). */
    if (j->endless && pos == end) {
      memset(buf, 0x42, sizeof buf);
      for (guint64 sent = 0; sent < (1u << 30) && write_all(out, buf, sizeof buf);)
        sent += sizeof buf;
    }
  }
done:
  g_string_free(hd, TRUE);
  g_io_stream_close(j->io, NULL, NULL);
  g_object_unref(j->io);
  g_free(j->abs);
  g_free(j->etag);
  g_free(j);
  return NULL;
}

static gboolean
take_fault(guint *counter)
{
  if (*counter) {
    (*counter)--;
    return TRUE;
  }
  return FALSE;
}

static void
serve_raw(wh_test_hub *h, SoupServerMessage *msg, raw_kind kind, const char *abs, guint64 size,
          const char *etag, gboolean count_cdn)
{
  raw_job *j = g_new0(raw_job, 1);
  j->hub = h;
  j->kind = kind;
  j->abs = g_strdup(abs);
  j->size = size;
  j->etag = g_strdup(etag);
  SoupMessageHeaders *rq = soup_server_message_get_request_headers(msg);
  SoupRange *ranges = NULL;
  int n = 0;
  if (kind == RAW_FILE && soup_message_headers_get_ranges(rq, (goffset)size, &ranges, &n) &&
      n >= 1) {
    j->has_range = TRUE;
    j->r_start = (guint64)ranges[0].start;
    j->r_end = (guint64)ranges[0].end;
    soup_message_headers_free_ranges(rq, ranges);
  } else if (kind == RAW_FILE && soup_message_headers_get_one(rq, "Range")) {
    /* Unsatisfiable (past the end). */
    j->has_range = TRUE;
    j->r_start = size;
    j->r_end = size;
  }
  g_mutex_lock(&h->lock);
  if (kind == RAW_FILE && count_cdn) {
    h->stats.cdn_requests++;
    if (j->has_range)
      h->stats.range_requests++;
    if (soup_message_headers_get_one(rq, "Authorization"))
      h->stats.auth_on_cdn++;
  }
  if (kind == RAW_FILE) {
    wh_test_hub_faults *f = &h->faults;
    j->rl429 = take_fault(&f->ratelimit_429);
    j->s429 = !j->rl429 && take_fault(&f->status_429);
    j->s500 = !j->s429 && take_fault(&f->status_500);
    if (!j->s429 && !j->s500) {
      j->drop = take_fault(&f->drop);
      j->stall = !j->drop && take_fault(&f->stall);
      j->corrupt = take_fault(&f->corrupt);
      j->ignore_range = j->has_range && j->r_start > 0 && take_fault(&f->ignore_range);
      j->wrong_range = j->has_range && take_fault(&f->wrong_range);
      j->change_etag = take_fault(&f->change_etag);
      j->endless = take_fault(&f->endless_body);
    }
    j->stall_ms = f->stall_ms ? f->stall_ms : 3000;
    j->rate = f->rate;
  }
  g_mutex_unlock(&h->lock);
  j->io = soup_server_message_steal_connection(msg);
  g_thread_unref(g_thread_new("hub-server-raw", raw_thread, j));
}

static void
handle_resolve(wh_test_hub *h, SoupServerMessage *msg, const char *repo_id, const char *rev,
               const char *path)
{
  SoupMessageHeaders *rq = soup_server_message_get_request_headers(msg);
  SoupMessageHeaders *rs = soup_server_message_get_response_headers(msg);
  g_mutex_lock(&h->lock);
  wh_test_hub_faults f = h->faults;
  g_mutex_unlock(&h->lock);
  if (f.redirect_loop) {
    soup_server_message_set_redirect(msg, 302, g_uri_get_path(soup_server_message_get_uri(msg)));
    return;
  }
  g_autofree char *commit = wh_test_hub_commit(repo_id);
  if (strcmp(rev, "main") != 0 && strcmp(rev, commit) != 0) {
    respond_error(msg, 404, "Revision Not Found");
    return;
  }
  if (g_str_has_prefix(repo_id, "gated/")) {
    const char *auth = soup_message_headers_get_one(rq, "Authorization");
    if (!auth) {
      respond_error(msg, 401, "Access to model is restricted. You must be authenticated.");
      return;
    }
    if (strcmp(auth, "Bearer hf_good") != 0) {
      respond_error(msg, 403, "Access to model is restricted and you are not in the list.");
      return;
    }
  }
  g_autoptr(GPtrArray) files = repo_files(h, repo_id);
  file_entry *fe = NULL;
  for (guint i = 0; i < files->len; i++)
    if (strcmp(((file_entry *)files->pdata[i])->path, path) == 0)
      fe = files->pdata[i];
  if (!fe) {
    soup_message_headers_replace(rs, "X-Error-Code", "EntryNotFound");
    respond_error(msg, 404, "Entry not found");
    return;
  }
  soup_message_headers_replace(rs, "X-Repo-Commit", commit);
  if (fe->sha256) {
    g_autofree char *etag = g_strdup_printf("\"%s\"", fe->sha256);
    g_autofree char *size =
        g_strdup_printf("%" G_GUINT64_FORMAT, fe->size + (f.lie_size ? 4096 : 0));
    g_autofree char *loc = g_strdup_printf("%s/cdn/%s?X-Amz-Signature=abc", h->cdn_url, fe->sha256);
    soup_message_headers_replace(rs, "X-Linked-Etag", etag);
    soup_message_headers_replace(rs, "X-Linked-Size", size);
    soup_message_headers_replace(rs, "ETag", etag);
    soup_server_message_set_redirect(msg, 302, loc);
    return;
  }
  g_autofree char *etag = g_strdup_printf("\"%s\"", fe->sha1);
  if (soup_server_message_get_method(msg) == SOUP_METHOD_HEAD ||
      strcmp(soup_server_message_get_method(msg), "HEAD") == 0) {
    soup_message_headers_replace(rs, "ETag", etag);
    soup_server_message_set_status(msg, 200, NULL);
    soup_message_headers_set_content_length(rs, (goffset)fe->size);
    return;
  }
  serve_raw(h, msg, RAW_FILE, fe->abs, fe->size, fe->sha1, TRUE);
}

static void
api_handler(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
            gpointer data)
{
  wh_test_hub *h = data;
  apply_server_nice(h);
  g_mutex_lock(&h->lock);
  h->stats.api_requests++;
  g_free(h->stats.last_user_agent);
  h->stats.last_user_agent = g_strdup(
      soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "User-Agent"));
  wh_test_hub_faults f = h->faults;
  g_mutex_unlock(&h->lock);
  g_auto(GStrv) parts = g_strsplit(path + 1, "/", -1);
  guint n = g_strv_length(parts);
  if (n >= 2 && strcmp(parts[0], "api") == 0 && strcmp(parts[1], "models") == 0) {
    if (f.api_redirect_loop) {
      /* Two URLs sending to each other (a loop a same-URL check would miss). */
      const char *q = soup_server_message_get_uri(msg)
                          ? g_uri_get_query(soup_server_message_get_uri(msg))
                          : NULL;
      g_autofree char *to = g_strdup_printf("%s?%s", path, q && strcmp(q, "a") == 0 ? "b" : "a");
      soup_server_message_set_redirect(msg, 302, to);
      return;
    }
    if (f.bad_json) {
      soup_server_message_set_status(msg, 200, NULL);
      soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_STATIC,
                                       "{\"id\": [unterminated", 20);
      return;
    }
    if (f.endless_json) {
      serve_raw(h, msg, RAW_ENDLESS, NULL, 0, NULL, FALSE);
      return;
    }
    if (n == 2) {
      handle_search(h, msg, query);
      return;
    }
    if (n < 4) {
      respond_error(msg, 404, "Not Found");
      return;
    }
    g_autofree char *repo = g_strdup_printf("%s/%s", parts[2], parts[3]);
    if (!repo_exists(h, repo)) {
      respond_error(msg, 401, "Repository not found"); /* what the hub answers */
      return;
    }
    if (n == 4)
      handle_info(h, msg, repo, NULL);
    else if (n == 6 && strcmp(parts[4], "revision") == 0)
      handle_info(h, msg, repo, parts[5]);
    else if (n >= 6 && strcmp(parts[4], "tree") == 0)
      handle_tree(h, msg, repo, parts[5], query);
    else
      respond_error(msg, 404, "Not Found");
    return;
  }
  if (n >= 5 && strcmp(parts[2], "resolve") == 0) {
    g_autofree char *repo = g_strdup_printf("%s/%s", parts[0], parts[1]);
    if (!repo_exists(h, repo)) {
      respond_error(msg, 401, "Repository not found");
      return;
    }
    g_autofree char *file = g_strjoinv("/", parts + 4);
    handle_resolve(h, msg, repo, parts[3], file);
    return;
  }
  respond_error(msg, 404, "Not Found");
}

static void
cdn_handler(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
            gpointer data)
{
  wh_test_hub *h = data;
  apply_server_nice(h);
  if (!g_str_has_prefix(path, "/cdn/")) {
    soup_server_message_set_status(msg, 404, NULL);
    return;
  }
  g_mutex_lock(&h->lock);
  char *abs = g_strdup(g_hash_table_lookup(h->cdn_map, path + 5));
  g_mutex_unlock(&h->lock);
  struct stat st;
  if (!abs || stat(abs, &st) != 0) {
    g_free(abs);
    soup_server_message_set_status(msg, 404, NULL);
    return;
  }
  serve_raw(h, msg, RAW_FILE, abs, (guint64)st.st_size, path + 5, TRUE);
  g_free(abs);
}

static gpointer
server_thread(gpointer data)
{
  wh_test_hub *h = data;
  g_main_context_push_thread_default(h->ctx);
  h->api = soup_server_new("server-header", "hub-server", NULL);
  h->cdn = soup_server_new("server-header", "cdn-server", NULL);
  soup_server_add_handler(h->api, NULL, api_handler, h, NULL);
  soup_server_add_handler(h->cdn, NULL, cdn_handler, h, NULL);
  GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  GSocketAddress *a1 = g_inet_socket_address_new(lo, 0);
  GSocketAddress *a2 = g_inet_socket_address_new(lo, 0);
  gboolean ok = soup_server_listen(h->api, a1, 0, NULL) && soup_server_listen(h->cdn, a2, 0, NULL);
  g_object_unref(a1);
  g_object_unref(a2);
  g_object_unref(lo);
  if (ok) {
    GSList *u1 = soup_server_get_uris(h->api), *u2 = soup_server_get_uris(h->cdn);
    h->url = g_strdup_printf("http://127.0.0.1:%d", g_uri_get_port(u1->data));
    h->cdn_url = g_strdup_printf("http://127.0.0.1:%d", g_uri_get_port(u2->data));
    g_slist_free_full(u1, (GDestroyNotify)g_uri_unref);
    g_slist_free_full(u2, (GDestroyNotify)g_uri_unref);
  }
  g_mutex_lock(&h->lock);
  h->started = TRUE;
  g_cond_broadcast(&h->ready);
  g_mutex_unlock(&h->lock);
  if (ok)
    g_main_loop_run(h->loop);
  soup_server_disconnect(h->api);
  soup_server_disconnect(h->cdn);
  g_clear_object(&h->api);
  g_clear_object(&h->cdn);
  g_main_context_pop_thread_default(h->ctx);
  return NULL;
}

/* Fills the CDN map up front (the CDN may be asked before any API request). */
static void
index_all(wh_test_hub *h)
{
  g_autoptr(GPtrArray) repos = list_repos(h);
  for (guint i = 0; i < repos->len; i++) {
    g_autoptr(GPtrArray) files = repo_files(h, repos->pdata[i]);
  }
}

wh_test_hub *
wh_test_hub_start(const char *root, GError **error)
{
  wh_test_hub *h = g_new0(wh_test_hub, 1);
  h->root = g_strdup(root);
  g_mutex_init(&h->lock);
  g_cond_init(&h->ready);
  h->sha_cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  h->cdn_map = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  index_all(h);
  h->ctx = g_main_context_new();
  h->loop = g_main_loop_new(h->ctx, FALSE);
  h->thread = g_thread_new("hub-server", server_thread, h);
  g_mutex_lock(&h->lock);
  while (!h->started)
    g_cond_wait(&h->ready, &h->lock);
  g_mutex_unlock(&h->lock);
  if (!h->url) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "hub-server: cannot listen on 127.0.0.1");
    wh_test_hub_stop(h);
    return NULL;
  }
  return h;
}

static gboolean
quit_cb(gpointer data)
{
  g_main_loop_quit(data);
  return G_SOURCE_REMOVE;
}

void
wh_test_hub_stop(wh_test_hub *h)
{
  if (!h)
    return;
  GSource *s = g_idle_source_new();
  g_source_set_callback(s, quit_cb, h->loop, NULL);
  g_source_attach(s, h->ctx);
  g_source_unref(s);
  g_thread_join(h->thread);
  g_main_loop_unref(h->loop);
  g_main_context_unref(h->ctx);
  g_hash_table_unref(h->sha_cache);
  g_hash_table_unref(h->cdn_map);
  g_free(h->stats.last_user_agent);
  g_free(h->root);
  g_free(h->url);
  g_free(h->cdn_url);
  g_mutex_clear(&h->lock);
  g_cond_clear(&h->ready);
  g_free(h);
}

const char *
wh_test_hub_url(wh_test_hub *h)
{
  return h->url;
}

void
wh_test_hub_set_faults(wh_test_hub *h, const wh_test_hub_faults *f)
{
  g_mutex_lock(&h->lock);
  if (f)
    h->faults = *f;
  else
    memset(&h->faults, 0, sizeof h->faults);
  g_mutex_unlock(&h->lock);
}

void
wh_test_hub_get_stats(wh_test_hub *h, wh_test_hub_stats *out)
{
  g_mutex_lock(&h->lock);
  *out = h->stats;
  out->last_user_agent = g_strdup(h->stats.last_user_agent);
  g_mutex_unlock(&h->lock);
}

/* --- standalone mode ------------------------------------------------------------------------ */

static gboolean
on_term(gpointer data)
{
  g_main_loop_quit(data);
  return G_SOURCE_REMOVE;
}

int
wh_test_hub_serve_main(int argc, char **argv)
{
  /* ROOT [--port-file FILE] [--rate BYTES_PER_S] [--fault NAME=N]... */
  if (argc < 2) {
    g_printerr("usage: %s ROOT [--port-file FILE] [--rate N] [--fault NAME=N]...\n", argv[0]);
    return 2;
  }
  wh_test_hub_faults f = {0};
  const char *port_file = NULL;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--port-file") == 0)
      port_file = argv[i + 1];
    else if (strcmp(argv[i], "--rate") == 0)
      f.rate = (guint)atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--fault") == 0) {
      const char *eq = strchr(argv[i + 1], '=');
      guint v = eq ? (guint)atoi(eq + 1) : 1;
      g_autofree char *name =
          eq ? g_strndup(argv[i + 1], (gsize)(eq - argv[i + 1])) : g_strdup(argv[i + 1]);
      if (!strcmp(name, "drop"))
        f.drop = v;
      else if (!strcmp(name, "stall"))
        f.stall = v;
      else if (!strcmp(name, "429"))
        f.status_429 = v;
      else if (!strcmp(name, "500"))
        f.status_500 = v;
      else if (!strcmp(name, "corrupt"))
        f.corrupt = v;
      else if (!strcmp(name, "ignore-range"))
        f.ignore_range = v;
      else if (!strcmp(name, "endless"))
        f.endless_body = v;
      else if (!strcmp(name, "stall-ms"))
        f.stall_ms = v;
    }
  }
  g_autoptr(GError) error = NULL;
  wh_test_hub *h = wh_test_hub_start(argv[1], &error);
  if (!h) {
    g_printerr("%s\n", error->message);
    return 1;
  }
  wh_test_hub_set_faults(h, &f);
  if (port_file) {
    g_autofree char *tmp = g_strconcat(port_file, ".tmp", NULL);
    g_file_set_contents(tmp, h->url, -1, NULL);
    rename(tmp, port_file);
  }
  g_print("%s\n", h->url);
  GMainLoop *loop = g_main_loop_new(NULL, FALSE);
  g_unix_signal_add(SIGTERM, on_term, loop);
  g_unix_signal_add(SIGINT, on_term, loop);
  g_main_loop_run(loop);
  g_main_loop_unref(loop);
  wh_test_hub_stop(h);
  return 0;
}
