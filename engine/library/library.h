/* library.h — the local model library: every GGUF on this machine, listed in place.
 *
 * Design note
 * -----------
 * Owns: finding local models and describing them from their GGUF headers, the small index of
 * the files Whittle itself downloaded ($XDG_DATA_HOME/whittle/downloads.json), a cache of
 * header metadata ($XDG_CACHE_HOME/whittle/library-cache.json) and deleting Whittle's own
 * downloads.
 * Sources, scanned in this order (a file reached twice, e.g. through a symlink or a user folder
 * that contains another source, is listed once, under the first source):
 *  1. the Hugging Face cache: $HF_HOME/hub/models--org--name/snapshots/<rev>/.../NAME.gguf
 *     (snapshot links resolved to blobs/). Files recorded in the download index are reported
 *     as WH_LIBRARY_SOURCE_WHITTLE, the others as WH_LIBRARY_SOURCE_HF_CACHE;
 *  2. Ollama's store: $OLLAMA_MODELS or ~/.ollama/models: manifests/<registry>/<ns>/<model>/<tag>
 *     (JSON) → the layer with mediaType application/vnd.ollama.image.model (and the projector
 *     layer, application/vnd.ollama.image.projector) → blobs/sha256-<hex>;
 *  3. LM Studio: ~/.lmstudio/models and ~/.cache/lm-studio/models, <publisher>/<repo>/NAME.gguf;
 *  4. folders the user added: searched recursively down to a bounded depth; symlinked folders
 *     are followed once (loops are detected by device and inode).
 * Split files (<prefix>-0000k-of-0000N.gguf) in one folder are one entry; projector files
 * ("mmproj" in the name) are attached to the models of their folder (listed alone when the
 * folder holds no model).
 * Promises:
 *  - Files are never copied, moved or written; only the GGUF header is parsed (wh_gguf_open
 *    maps the file, tensor data are never touched).
 *  - A file that cannot be read or is not a valid GGUF still appears, with @error set.
 *  - Metadata is cached by (path, size, mtime): a rescan of an unchanged library opens no file.
 *  - wh_library_delete() removes only what Whittle downloaded, and refuses everything else with
 *    a message that says which tool owns the file.
 *  - Index and cache are written to a temporary file in the same folder, then renamed.
 *  - A wh_library is thread-safe: scans, records and deletes may run from any thread at once.
 * Does not: download (engine/hub does), watch folders for changes, or know about GTK.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include "hub/hub.h"
#include "jobs/jobs.h"

G_BEGIN_DECLS

#define WH_LIBRARY_ERROR (wh_library_error_quark())
GQuark wh_library_error_quark(void);

typedef enum {
  WH_LIBRARY_ERROR_INVALID,   /* bad argument */
  WH_LIBRARY_ERROR_NOT_OURS,  /* delete refused: the model was not downloaded by Whittle */
  WH_LIBRARY_ERROR_NOT_FOUND, /* the entry's files are gone */
  WH_LIBRARY_ERROR_CORRUPT,   /* the index or a manifest is not valid JSON of the right shape */
  WH_LIBRARY_ERROR_IO,        /* local file system error */
  WH_LIBRARY_ERROR_CANCELLED, /* the caller cancelled */
} wh_library_error;

typedef enum {
  WH_LIBRARY_SOURCE_WHITTLE,  /* downloaded by Whittle into the Hugging Face cache */
  WH_LIBRARY_SOURCE_HF_CACHE, /* the Hugging Face cache, put there by another tool */
  WH_LIBRARY_SOURCE_OLLAMA,
  WH_LIBRARY_SOURCE_LMSTUDIO,
  WH_LIBRARY_SOURCE_FOLDER, /* a folder the user added */
} wh_library_source;

/* "whittle", "hf-cache", "ollama", "lmstudio", "folder" (stable, used in JSON). */
const char *wh_library_source_to_string(wh_library_source source);
/* "Whittle", "Hugging Face cache", "Ollama", "LM Studio", "Folder" (for people). */
const char *wh_library_source_to_label(wh_library_source source);

/* --- configuration ---------------------------------------------------------------------- */

typedef void (*wh_library_progress_func)(guint done, guint total, const char *status,
                                         gpointer user_data);

typedef struct {
  /* Where to look. NULL: the default (environment, then home); "" (or an empty array):
   * skip that source. */
  const char *hf_home;              /* $HF_HOME, else ~/.cache/huggingface */
  const char *ollama_models;        /* $OLLAMA_MODELS, else ~/.ollama/models */
  const char *const *lmstudio_dirs; /* ~/.lmstudio/models, ~/.cache/lm-studio/models */
  const char *const *folders;       /* user-added folders; NULL: none */
  guint max_depth;                  /* folder recursion depth, 0: 8 */
  /* Where Whittle keeps its own state. NULL: $XDG_DATA_HOME/whittle and
   * $XDG_CACHE_HOME/whittle. */
  const char *data_dir;              /* downloads.json */
  const char *cache_dir;             /* library-cache.json */
  gboolean no_cache;                 /* neither read nor write the metadata cache file */
  wh_library_progress_func progress; /* scan progress (files examined), calling thread */
  gpointer progress_data;
} wh_library_params;

void wh_library_default_params(wh_library_params *params);

typedef struct wh_library wh_library;

/* Creates a library with @params (NULL: defaults); strings are copied. Never fails (missing
 * folders are simply empty sources). Free with wh_library_free(). */
wh_library *wh_library_new(const wh_library_params *params);
/* Must not be called while a scan job on it is running. NULL-safe. */
void wh_library_free(wh_library *lib);

/* Adds / removes a user folder (also possible through params.folders). Thread-safe. */
void wh_library_add_folder(wh_library *lib, const char *folder);
void wh_library_remove_folder(wh_library *lib, const char *folder);

/* The resolved folders in use (owned by @lib, valid until the next call that changes them). */
const char *wh_library_get_hf_hub_dir(wh_library *lib); /* $HF_HOME/hub or NULL if skipped */
const char *wh_library_get_index_path(wh_library *lib); /* .../downloads.json */

/* --- entries ----------------------------------------------------------------------------- */

typedef struct {
  char *id;   /* stable key (the canonical path of the first file) */
  char *name; /* for display: "Llama-3.2-1B-Instruct-Q4_K_M", "llama3.2:1b" */
  wh_library_source source;
  char *repo_id;         /* "org/name" (HF), "library/llama3.2" (Ollama), "publisher/repo" (LM
                          * Studio); NULL for user folders */
  char *revision;        /* HF snapshot commit, Ollama tag; NULL otherwise */
  char **paths;          /* NULL-terminated, the files in shard order, as found (the snapshot link
                          * for the HF cache, the blob for Ollama); at least one */
  char **mmproj_paths;   /* NULL-terminated projector files that belong to this model, or NULL */
  guint n_shards;        /* split count declared by the name (1 for a single file) */
  gboolean complete;     /* every shard present */
  gboolean is_projector; /* the entry is a projector file alone */
  gboolean deletable;    /* downloaded by Whittle: wh_library_delete() works */

  /* From the GGUF header (0/NULL when unknown or unreadable). */
  char *architecture;     /* general.architecture */
  char *model_name;       /* general.name, may be NULL */
  guint64 n_params;       /* sum of the tensors' element counts, all shards */
  gint file_type;         /* general.file_type, -1 when absent */
  char *quant;            /* ftype name ("Q4_K_M"), else the label in the file name, else
                           * the tensor type holding most matrix bytes ("F32"), else NULL */
  guint64 context_length; /* <arch>.context_length */

  guint64 size; /* bytes on disk of all shards (resolved targets, projectors excluded) */
  gint64 mtime; /* newest modification time of the shards, Unix seconds */
  char *error;  /* NULL, or why the header could not be read (the entry is still listed) */
} wh_library_entry;

void wh_library_entry_free(wh_library_entry *entry);
wh_library_entry *wh_library_entry_copy(const wh_library_entry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(wh_library_entry, wh_library_entry_free)

/* The entry as a JSON object (keys: id, name, source, repo_id, revision, paths, mmproj_paths,
 * n_shards, complete, deletable, architecture, model_name, n_params, file_type, quant,
 * context_length, size, mtime, error; absent values are null). New floating-free node. */
JsonNode *wh_library_entry_to_json(const wh_library_entry *entry);

/* --- scanning ------------------------------------------------------------------------------ */

/* Scans every source (blocking). Returns wh_library_entry*s (owned by the array), sorted by
 * source, then name; an empty array when nothing is found. Fails only when cancelled
 * (WH_LIBRARY_ERROR_CANCELLED): unreadable folders are skipped, unreadable files become
 * entries with @error. Any thread. */
GPtrArray *wh_library_scan(wh_library *lib, GCancellable *cancellable, GError **error);

/* Submits the scan as a WH_JOB_DOWNLOAD (I/O) job on @queue and returns it (free with
 * wh_job_unref()). Progress: files examined of files found. The result (owned by the job) is
 * the GPtrArray of wh_library_entry* of wh_library_scan(). @lib must outlive the job. */
wh_job *wh_library_scan_async(wh_library *lib, wh_job_queue *queue, wh_job_notify_func notify,
                              gpointer notify_data);

/* How many header reads the last scans served from the cache / had to open (for tests and
 * the "rescans are fast" promise). */
void wh_library_get_cache_stats(wh_library *lib, guint *hits, guint *misses);

/* --- Whittle's downloads ------------------------------------------------------------------ */

/* Records that Whittle downloaded @filename of @repo_id into the HF cache: @snapshot_path is
 * the snapshots/<commit>/<filename> entry (wh_hub_download_result.path), @commit its
 * revision. Call after every successful download (CLI pull and GUI). The index is rewritten
 * with temp+rename; recording the same path twice keeps one record. */
gboolean wh_library_record_download(wh_library *lib, const char *repo_id, const char *commit,
                                    const char *filename, const char *snapshot_path,
                                    GError **error);

/* TRUE when @path (a snapshot entry) is in the download index. */
gboolean wh_library_is_own_download(wh_library *lib, const char *path);

/* Deletes a model Whittle downloaded: for each file of @entry (shards and projectors Whittle
 * downloaded), removes the snapshot link, and the blob when no other snapshot of that repo
 * refers to it; then empty snapshot folders; then drops the records from the index.
 * Refuses (WH_LIBRARY_ERROR_NOT_OURS) any entry that is not deletable, saying which tool
 * owns it. Any thread. */
gboolean wh_library_delete(wh_library *lib, const wh_library_entry *entry, GError **error);

/* --- parsers (exposed for the fuzzer and tests) ------------------------------------------- */

/* Parses an Ollama image manifest. Returns TRUE with the model layer digest as 64 lowercase
 * hex characters in *@model_sha256 (newly allocated) and the projector's in *@projector_sha256
 * (newly allocated, NULL when there is none; the argument may be NULL), and the layer size
 * in *@model_size (may be NULL). FALSE with WH_LIBRARY_ERROR_CORRUPT when the JSON is
 * invalid, has no model layer, or a digest is not "sha256:<64 hex>". */
gboolean wh_library_parse_ollama_manifest(const char *data, gsize len, char **model_sha256,
                                          char **projector_sha256, guint64 *model_size,
                                          GError **error);

G_END_DECLS
