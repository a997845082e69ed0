/* gguf-writer.h — writing GGUF v3 files that llama.cpp loads (gguf-container.md §2, §5).
 *
 * Design note
 * -----------
 * Owns: serialising metadata and a tensor directory, then streaming tensor data.
 * Promises:
 *  - Streaming: the caller declares all tensors (name, type, shape) first, then calls
 *    wh_gguf_writer_begin(), then hands the bytes of each tensor in directory order, in
 *    as many wh_gguf_writer_write() pieces as it likes. Only the metadata is held in memory.
 *  - Layout exactly as the reference writer: version 3, KVs in insertion order, tensors packed
 *    in directory order at aligned offsets with zero padding (also after the last tensor). A
 *    file without tensors ends right after its metadata (as gguf-py writes it).
 *  - Metadata copied from a source file is copied byte for byte (wh_gguf_writer_copy_kvs()),
 *    so a copy of a file with the same tensors is identical to it. Setting a key that exists
 *    replaces its value in place (its position is kept).
 *  - The file is written as a temporary file in the destination folder and renamed over
 *    @path only by a successful wh_gguf_writer_finish(); on any error, on
 *    wh_gguf_writer_abort() or when the writer is freed unfinished, the temporary is removed
 *    and @path is left untouched.
 * Does not: emit nested arrays itself (llama.cpp rejects them; copying one from a source file
 * is refused with an error), check that keys have the types llama.cpp expects, or convert
 * tensor data.
 * Thread-safety: a writer is used by one thread at a time.
 */
#pragma once

#include <gio/gio.h>
#include "gguf/gguf.h"

G_BEGIN_DECLS

typedef struct wh_gguf_writer wh_gguf_writer;

wh_gguf_writer *wh_gguf_writer_new(void);
/* Aborts (removes the temporary file) if begun and not finished. NULL-safe. */
void wh_gguf_writer_free(wh_gguf_writer *w);

/* --- metadata (before begin) ----------------------------------------------------------- */
/* Keys must be non-empty; each setter replaces an existing key's value in place. */
void wh_gguf_writer_set_uint8(wh_gguf_writer *w, const char *key, guint8 v);
void wh_gguf_writer_set_int8(wh_gguf_writer *w, const char *key, gint8 v);
void wh_gguf_writer_set_uint16(wh_gguf_writer *w, const char *key, guint16 v);
void wh_gguf_writer_set_int16(wh_gguf_writer *w, const char *key, gint16 v);
void wh_gguf_writer_set_uint32(wh_gguf_writer *w, const char *key, guint32 v);
void wh_gguf_writer_set_int32(wh_gguf_writer *w, const char *key, gint32 v);
void wh_gguf_writer_set_uint64(wh_gguf_writer *w, const char *key, guint64 v);
void wh_gguf_writer_set_int64(wh_gguf_writer *w, const char *key, gint64 v);
void wh_gguf_writer_set_float32(wh_gguf_writer *w, const char *key, float v);
void wh_gguf_writer_set_float64(wh_gguf_writer *w, const char *key, double v);
void wh_gguf_writer_set_bool(wh_gguf_writer *w, const char *key, gboolean v);
void wh_gguf_writer_set_string(wh_gguf_writer *w, const char *key, const char *v);
/* Array of @n fixed-size elements of @type (not STRING/ARRAY), given in host order. */
void wh_gguf_writer_set_array(wh_gguf_writer *w, const char *key, wh_gguf_value_type type,
                              const void *elements, guint64 n);
/* Array of @n strings. @lens may be NULL (then each string is NUL-terminated). */
void wh_gguf_writer_set_string_array(wh_gguf_writer *w, const char *key, const char *const *strings,
                                     const gsize *lens, guint64 n);
/* Copies @v (a value of another open file) under @key. FALSE for nested arrays. */
gboolean wh_gguf_writer_set_value(wh_gguf_writer *w, const char *key, const wh_gguf_value *v,
                                  GError **error);
/* Copies every KV of @src in order (use remove/set afterwards to edit). Keys in
 * @skip_prefixes (NULL-terminated, may be NULL) are left out, e.g. {"split.", NULL}. */
gboolean wh_gguf_writer_copy_kvs(wh_gguf_writer *w, const wh_gguf *src,
                                 const char *const *skip_prefixes, GError **error);
/* Removes @key; FALSE if it was not set. */
gboolean wh_gguf_writer_remove_key(wh_gguf_writer *w, const char *key);
gboolean wh_gguf_writer_has_key(const wh_gguf_writer *w, const char *key);
guint64 wh_gguf_writer_n_kv(const wh_gguf_writer *w);

/* --- tensors (before begin) ------------------------------------------------------------ */
/* Declares the next tensor. @ne has @n_dims entries (0..4), written as given: pass the
 * minimal n_dims (last dimension != 1, at least 1) to match the reference writer. Fails on a bad
 * name (empty, > 63 bytes, duplicate), type or shape (row length not a multiple of the block size).
 */
gboolean wh_gguf_writer_add_tensor(wh_gguf_writer *w, const char *name, wh_type type,
                                   guint32 n_dims, const guint64 *ne, GError **error);
guint64 wh_gguf_writer_n_tensors(const wh_gguf_writer *w);
/* Size of the file that will be written (header, metadata, directory, padded data). Valid
 * once all KVs and tensors are declared. */
guint64 wh_gguf_writer_file_size(const wh_gguf_writer *w);

/* --- writing --------------------------------------------------------------------------- */
/* Sets the alignment (power of two; default 32). Writes general.alignment only when it
 * differs from 32. Call before begin. */
gboolean wh_gguf_writer_set_alignment(wh_gguf_writer *w, guint32 alignment, GError **error);

/* Creates the temporary file next to @path and writes header, metadata and directory. */
gboolean wh_gguf_writer_begin(wh_gguf_writer *w, const char *path, GError **error);
/* Appends @size bytes of tensor data. Pieces fill the tensors in directory order; when a
 * tensor is complete its padding is written. Writing past the last tensor is an error. */
gboolean wh_gguf_writer_write(wh_gguf_writer *w, const void *data, gsize size, GError **error);
/* Index of the tensor the next wh_gguf_writer_write() bytes go to (= n_tensors when done). */
guint64 wh_gguf_writer_current_tensor(const wh_gguf_writer *w);
/* Checks that every tensor got all its bytes, flushes, syncs and renames into place. */
gboolean wh_gguf_writer_finish(wh_gguf_writer *w, GError **error);
/* Stops and removes the temporary file. Safe at any point, idempotent. */
void wh_gguf_writer_abort(wh_gguf_writer *w);

G_END_DECLS
