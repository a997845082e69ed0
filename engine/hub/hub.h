/* hub.h — the Hugging Face Hub client: search, model info, file lists, remote GGUF headers
 * and downloads that never lose a byte.
 *
 * Design note
 * -----------
 * Owns: every HTTP conversation with a Hugging Face compatible hub (libsoup 3, JSON through
 * json-glib), the token, and the writing side of the Hugging Face cache layout
 * ($HF_HOME/hub/models--org--name/{blobs,refs,snapshots}) shared with huggingface_hub.
 * Promises:
 *  - Blocking functions for the CLI and worker threads, and *_async variants that run them as
 *    jobs on a wh_job_queue (progress, cancel) for the GUI. Every blocking function takes a
 *    GCancellable and may be called from any thread; a wh_hub is thread-safe.
 *  - Downloads: HEAD on the resolve URL without following redirects (X-Repo-Commit,
 *    X-Linked-Etag, X-Linked-Size), the CDN is fetched without the Authorization header (the
 *    token is only ever sent to the endpoint's own host and port, and never logged), large
 *    files in parallel Range segments, resume across restarts and crashes (state persisted
 *    next to blobs/<etag>.incomplete, written after an fdatasync of the data), sha256 while
 *    streaming checked against the LFS oid before the rename into blobs/, retries with
 *    backoff on timeouts, 5xx and 429 (Retry-After honoured), a 200 answer to a Range request
 *    restarts the file from byte 0, an upstream change (etag differs) is detected and
 *    explained, free space checked before and while writing.
 *  - Hostile input: repository ids and file names are validated before any path is built
 *    (no "..", no absolute paths, no control characters, no backslashes); bodies are read
 *    only up to the expected length; JSON answers are capped and type-checked; redirects are
 *    limited. Nothing is ever written outside $HF_HOME/hub.
 *  - Errors in WH_HUB_ERROR with plain-language messages that say what to do.
 * Does not: keep a library of local models (engine/library does, from wh_hub_cache_list()).
 * The token's storage (Secret Service, HF_TOKEN, token file) is hub-token.h; front ends hand
 * the stored token to a client with wh_hub_use_stored_token() / wh_hub_set_token().
 */
#pragma once

#include <gio/gio.h>
#include "gguf/gguf.h"
#include "jobs/jobs.h"

G_BEGIN_DECLS

#define WH_HUB_ERROR (wh_hub_error_quark())
GQuark wh_hub_error_quark(void);

typedef enum {
  WH_HUB_ERROR_INVALID,   /* bad argument: repo id, file name, revision */
  WH_HUB_ERROR_OFFLINE,   /* HF_HUB_OFFLINE is set and the answer is not in the cache */
  WH_HUB_ERROR_NETWORK,   /* connection failed, timed out, retries exhausted */
  WH_HUB_ERROR_AUTH,      /* 401: sign in with a token */
  WH_HUB_ERROR_FORBIDDEN, /* 403: request access on the model page */
  WH_HUB_ERROR_NOT_FOUND, /* 404: no such repository, revision or file */
  WH_HUB_ERROR_SERVER,    /* unexpected status, malformed answer, redirect loop */
  WH_HUB_ERROR_PROTOCOL,  /* invalid JSON, lying sizes, headers missing */
  WH_HUB_ERROR_CHECKSUM,  /* sha256 mismatch after retries */
  WH_HUB_ERROR_CHANGED,   /* the file changed upstream while downloading */
  WH_HUB_ERROR_NO_SPACE,  /* not enough disk space */
  WH_HUB_ERROR_IO,        /* local file system error */
  WH_HUB_ERROR_CANCELLED, /* the caller cancelled */
  WH_HUB_ERROR_TLS,       /* the server's TLS certificate is not trusted (nothing was sent) */
} wh_hub_error;

/* --- configuration ---------------------------------------------------------------------- */

/* Returns free bytes available to an unprivileged writer in @dir, or -1 (errno set). For
 * tests that simulate a full disk. */
typedef gint64 (*wh_hub_free_space_func)(const char *dir, gpointer user_data);

typedef struct {
  const char *endpoint;      /* NULL: $HF_ENDPOINT or https://huggingface.co */
  const char *home;          /* NULL: $HF_HOME or ~/.cache/huggingface */
  const char *token;         /* NULL: $HF_TOKEN, else the file $HF_HOME/token (if any) */
  gboolean no_token;         /* TRUE: do not read a token from the environment or disk */
  int offline;               /* -1: $HF_HUB_OFFLINE; 0/1 force */
  guint timeout_seconds;     /* I/O inactivity timeout, 0: 30 s */
  double retry_base_seconds; /* first backoff delay, doubled per retry; 0: 1 s */
  double retry_max_seconds;  /* longest single wait (also caps Retry-After); 0: 60 s */
  guint max_retries;         /* consecutive failures without progress before giving up; 0: 8 */
  wh_hub_free_space_func free_space; /* NULL: statvfs */
  gpointer free_space_data;
} wh_hub_config;

void wh_hub_default_config(wh_hub_config *cfg);

typedef struct wh_hub wh_hub;

/* Creates a client from @cfg (NULL: defaults + environment). Returns NULL and sets @error
 * when the endpoint is not an http(s) URL. Free with wh_hub_free(). Thread-safe. */
wh_hub *wh_hub_new(const wh_hub_config *cfg, GError **error);
void wh_hub_free(wh_hub *hub);

/* Replaces the token (NULL or "" removes it). The GUI calls this with the Secret Service
 * token. The token is copied, never logged, sent only to the endpoint host. */
void wh_hub_set_token(wh_hub *hub, const char *token);
gboolean wh_hub_has_token(wh_hub *hub);
const char *wh_hub_get_endpoint(wh_hub *hub);  /* no trailing slash */
const char *wh_hub_get_cache_dir(wh_hub *hub); /* $HF_HOME/hub */
gboolean wh_hub_is_offline(wh_hub *hub);
/* "Whittle/0.1.0 (+https://...; glib/2.74)": what every request sends as User-Agent. */
const char *wh_hub_get_user_agent(wh_hub *hub);

/* Validation used everywhere (exposed for the GUI and tests). A repo id is "org/name" with
 * [A-Za-z0-9._-] parts, no "..", no leading "." or "-". A file name is a relative path of
 * non-empty components, no "." or "..", no control characters, no backslash, < 4096 bytes. */
gboolean wh_hub_validate_repo_id(const char *repo_id, GError **error);
gboolean wh_hub_validate_filename(const char *filename, GError **error);
gboolean wh_hub_validate_revision(const char *revision, GError **error);

/* --- search ------------------------------------------------------------------------------ */

typedef struct {
  const char *search;       /* free text, may be NULL */
  const char *author;       /* may be NULL */
  const char *filter;       /* tag filter, e.g. "gguf" (comma-separated for several) */
  const char *pipeline_tag; /* e.g. "text-generation" */
  const char *sort;         /* downloads, likes, trendingScore, lastModified, createdAt */
  int direction;            /* -1 descending (default when sort is set), 1 ascending */
  guint limit;              /* results per page, 0: 20 (capped at 1000) */
  gboolean full;            /* ask for the full model objects (siblings ...) */
  guint64 min_params;       /* parameter range (num_parameters=min:..,max:..), 0: no bound */
  guint64 max_params;
} wh_hub_search_query;

typedef struct {
  char *id;            /* "org/name" */
  char *author;        /* may be NULL */
  char *pipeline_tag;  /* may be NULL */
  char *library_name;  /* may be NULL */
  char *last_modified; /* ISO 8601, may be NULL */
  char **tags;         /* NULL-terminated, never NULL */
  guint64 downloads;
  guint64 likes;
  char *gated; /* NULL (not gated), "auto" or "manual" */
  gboolean is_private;
} wh_hub_model_summary;

typedef struct {
  GPtrArray *models; /* of wh_hub_model_summary* (owned) */
  char *next_url;    /* the Link rel="next" URL for the next page, or NULL */
} wh_hub_search_result;

void wh_hub_search_result_free(wh_hub_search_result *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(wh_hub_search_result, wh_hub_search_result_free)

/* Parameter counts as the hub writes them: "7B", "1.5B", "500M", "260K", "3000000" (case-
 * insensitive K/M/B/T suffixes, decimals allowed with a suffix). FALSE with
 * WH_HUB_ERROR_INVALID on anything else (negative, empty, garbage, overflow). */
gboolean wh_hub_parse_param_count(const char *text, guint64 *out, GError **error);
/* The inverse for query strings: "7B", "500M", "260K" when exact, else the plain number.
 * Newly allocated. */
char *wh_hub_format_param_count(guint64 n);

/* One page of results. */
wh_hub_search_result *wh_hub_search(wh_hub *hub, const wh_hub_search_query *query,
                                    GCancellable *cancellable, GError **error);
/* The page at @next_url (from a previous result; must be on the endpoint's host). */
wh_hub_search_result *wh_hub_search_next(wh_hub *hub, const char *next_url,
                                         GCancellable *cancellable, GError **error);

/* --- model info and files ---------------------------------------------------------------- */

typedef struct {
  char *path;    /* "sub/dir/model-Q4_K_M.gguf" (validated) */
  guint64 size;  /* bytes (the LFS size for LFS files) */
  char *sha256;  /* the LFS oid (64 lowercase hex), NULL for plain git files */
  char *blob_id; /* git blob id, may be NULL */
  /* Derived from the name: */
  gboolean is_gguf;
  gboolean is_mmproj; /* a multimodal projector ("mmproj" in the name) */
  char *quant;        /* "Q4_K_M", "IQ2_XXS", "F16", "BF16" ...; NULL when not recognised */
  guint split_index;  /* 1-based shard number, 0 when not split */
  guint split_count;  /* 0 when not split */
} wh_hub_file;

void wh_hub_file_free(wh_hub_file *f);

/* GGUF summary the hub computes ("gguf" object of the model info); zero when absent. */
typedef struct {
  guint64 total; /* parameters */
  char *architecture;
  guint64 context_length;
  char *chat_template;
} wh_hub_gguf_summary;

typedef struct {
  char *id;
  char *sha;   /* commit of the revision asked for */
  char *gated; /* NULL, "auto" or "manual" */
  gboolean is_private;
  gboolean disabled;
  guint64 downloads, likes;
  char *pipeline_tag, *library_name, *last_modified;
  char **tags; /* NULL-terminated, never NULL */
  wh_hub_gguf_summary gguf;
  GPtrArray *files; /* of wh_hub_file* from "siblings" (owned); unsafe names are dropped */
  guint n_rejected; /* siblings dropped because their name was unsafe */
} wh_hub_model_info;

void wh_hub_model_info_free(wh_hub_model_info *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(wh_hub_model_info, wh_hub_model_info_free)

/* GET /api/models/{repo}[/revision/{rev}]?blobs=true. @revision NULL: the default branch. */
wh_hub_model_info *wh_hub_model_info_get(wh_hub *hub, const char *repo_id, const char *revision,
                                         GCancellable *cancellable, GError **error);

/* GET /api/models/{repo}/tree/{rev}?recursive=true (all pages). Returns wh_hub_file*s
 * (owned by the array), directories left out, unsafe names refused with an error. */
GPtrArray *wh_hub_list_files(wh_hub *hub, const char *repo_id, const char *revision,
                             GCancellable *cancellable, GError **error);

/* Fills the derived fields (is_gguf, is_mmproj, quant, split) of @f from f->path. */
void wh_hub_file_classify(wh_hub_file *f);
/* The quant label in a GGUF file name ("Llama-3-8B.Q4_K_M.gguf" → "Q4_K_M"), newly
 * allocated, NULL when none is recognised. */
char *wh_hub_parse_quant_label(const char *filename);

/* One downloadable model variant: the shards of a (possibly split) GGUF plus the projector
 * files found in the same folder. */
typedef struct {
  char *name;         /* the path without the split suffix, e.g. "dir/model-Q4_K_M.gguf" */
  char *quant;        /* may be NULL */
  GPtrArray *files;   /* wh_hub_file* (borrowed from the list given), shard order */
  GPtrArray *mmproj;  /* wh_hub_file* (borrowed), projectors in the same folder */
  guint64 total_size; /* of files */
  gboolean complete;  /* all split_count shards present */
} wh_hub_gguf_group;

void wh_hub_gguf_group_free(wh_hub_gguf_group *g);

/* Groups the GGUF files of @files (borrowed; keep @files alive) into variants, sorted by
 * name. Projector files are not variants of their own (they are listed in each group of
 * their folder) unless the folder holds nothing else. Returns wh_hub_gguf_group*s. */
GPtrArray *wh_hub_group_gguf_files(GPtrArray *files);

/* The group whose quant label equals @quant (case-insensitive), NULL if none. When several
 * match, the one with the shortest name. */
wh_hub_gguf_group *wh_hub_find_quant(GPtrArray *groups, const char *quant);

/* Parsers of the JSON answers, as used by the functions above (for the fuzzer, tests and
 * answers cached by the caller). @repo_id is only used in messages. Same results and
 * errors as the network variants. */
wh_hub_model_info *wh_hub_model_info_parse(const char *data, gsize len, const char *repo_id,
                                           GError **error);
GPtrArray *wh_hub_tree_parse(const char *data, gsize len, const char *repo_id, GError **error);
wh_hub_search_result *wh_hub_search_result_parse(const char *data, gsize len, GError **error);

/* --- remote GGUF header ------------------------------------------------------------------ */

/* Reads only the header of a remote GGUF with growing Range requests (64 KiB, doubling, up
 * to 256 MiB) until the tensor infos are complete, and opens it with the GGUF reader
 * (tensor data are not available: wh_gguf_tensor.data points at zeros). The shard is opened
 * alone (no split handling). *@header_bytes (may be NULL) = bytes fetched. Free with
 * wh_gguf_close(). */
wh_gguf *wh_hub_read_gguf_header(wh_hub *hub, const char *repo_id, const char *revision,
                                 const char *filename, guint64 *header_bytes,
                                 GCancellable *cancellable, GError **error);

/* Scans @len bytes that start a GGUF file. Returns the offset just past the tensor infos
 * when they are all within @len; 0 when more bytes are needed; -1 with @error when the
 * bytes can never be a GGUF header. Exposed for the fuzzer and tests. */
gint64 wh_hub_gguf_header_end(const guint8 *data, gsize len, GError **error);

/* --- downloads --------------------------------------------------------------------------- */

typedef void (*wh_hub_progress_func)(guint64 done, guint64 total, const char *status,
                                     gpointer user_data);

typedef struct {
  const char *revision;          /* NULL: "main" */
  const char *expected_sha256;   /* NULL: the LFS oid from the etag (when it is one) */
  guint n_segments;              /* parallel Range segments for large files; 0: 4 */
  guint64 segment_threshold;     /* files at least this large use segments; 0: 32 MiB */
  wh_hub_progress_func progress; /* called from the calling thread, ~5 times a second */
  gpointer progress_data;
} wh_hub_download_params;

void wh_hub_download_default_params(wh_hub_download_params *p);

typedef struct {
  char *path;      /* snapshots/<commit>/<filename> (a symlink into blobs/) */
  char *blob_path; /* blobs/<etag> */
  char *commit;
  char *etag;
  guint64 size;
  gboolean was_cached; /* already complete, nothing fetched */
  gboolean resumed;    /* continued a partial download */
  char *notice;        /* plain-language note (e.g. upstream change detected), or NULL */
} wh_hub_download_result;

void wh_hub_download_result_free(wh_hub_download_result *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(wh_hub_download_result, wh_hub_download_result_free)

/* Downloads @filename of @repo_id into the cache (blocking). Safe to call again after any
 * interruption (crash, SIGKILL, cancel, network loss): it continues where it stopped. Two
 * processes downloading the same file at once: the second fails with a clear message
 * (an advisory lock on the partial file). */
wh_hub_download_result *wh_hub_download(wh_hub *hub, const char *repo_id, const char *filename,
                                        const wh_hub_download_params *params,
                                        GCancellable *cancellable, GError **error);

/* --- the local cache --------------------------------------------------------------------- */

typedef struct {
  char *repo_id;   /* "org/name" */
  char *commit;    /* snapshot folder name */
  char *filename;  /* path inside the snapshot */
  char *path;      /* absolute path of the snapshot entry */
  char *blob_path; /* resolved blob, or NULL when the link is dangling */
  guint64 size;    /* of the blob */
  GPtrArray *refs; /* char*: names in refs/ that point at this commit ("main") */
} wh_hub_cached_file;

void wh_hub_cached_file_free(wh_hub_cached_file *f);

/* Lists every file of every model snapshot under @cache_dir (NULL: the hub's cache dir,
 * requires @hub) — complete files only, partial downloads are not listed. Returns
 * wh_hub_cached_file*s sorted by repo, commit, filename; an empty array when there is no
 * cache. */
GPtrArray *wh_hub_cache_list(wh_hub *hub, const char *cache_dir, GError **error);

/* The cache folder name of a repo: "models--org--name". Newly allocated. */
char *wh_hub_repo_folder_name(const char *repo_id);

/* --- asynchronous variants (GUI) --------------------------------------------------------- */
/* Each submits a WH_JOB_DOWNLOAD job on @queue and returns it (free with wh_job_unref()).
 * The result is available with wh_job_get_result() once the job SUCCEEDED, owned by the
 * job: wh_hub_search_result*, wh_hub_model_info*, GPtrArray* of wh_hub_file*, wh_gguf*,
 * wh_hub_download_result*. Arguments are copied; @hub must outlive the job. */
wh_job *wh_hub_search_async(wh_hub *hub, wh_job_queue *queue, const wh_hub_search_query *query,
                            wh_job_notify_func notify, gpointer notify_data);
wh_job *wh_hub_model_info_async(wh_hub *hub, wh_job_queue *queue, const char *repo_id,
                                const char *revision, wh_job_notify_func notify,
                                gpointer notify_data);
wh_job *wh_hub_list_files_async(wh_hub *hub, wh_job_queue *queue, const char *repo_id,
                                const char *revision, wh_job_notify_func notify,
                                gpointer notify_data);
wh_job *wh_hub_read_gguf_header_async(wh_hub *hub, wh_job_queue *queue, const char *repo_id,
                                      const char *revision, const char *filename,
                                      wh_job_notify_func notify, gpointer notify_data);
/* Progress is reported in bytes through the job. @params->progress is ignored. */
wh_job *wh_hub_download_async(wh_hub *hub, wh_job_queue *queue, const char *repo_id,
                              const char *filename, const wh_hub_download_params *params,
                              wh_job_notify_func notify, gpointer notify_data);

/* Human-readable byte count ("1.5 GB"), newly allocated. */
char *wh_hub_format_size(guint64 bytes);

G_END_DECLS
