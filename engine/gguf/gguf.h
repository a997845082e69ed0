/* gguf.h — reading GGUF v3 model files (spec: shared/spec/gguf-container.md).
 *
 * Design note
 * -----------
 * Owns: the GGUF container — header, key/value metadata, tensor directory, data section —
 * for single files and split models (`<prefix>-00001-of-0000N.gguf`). Writing lives in
 * gguf-writer.h, importance-matrix files in imatrix.h, type traits in gguf-types.h.
 * Promises:
 *  - wh_gguf_open() maps the file(s) read-only and validates every count, length, type,
 *    offset and size against the file size before using it (spec §4), with overflow-checked
 *    arithmetic. A truncated, corrupt or hostile file gives a GError in WH_GGUF_ERROR naming
 *    the file, the field and its byte offset; never a crash and never an allocation larger
 *    than the file justifies.
 *  - Tensor data is zero-copy: wh_gguf_tensor.data points into the mapping.
 *  - Every value type is read, including empty arrays and nested arrays (arrays of arrays,
 *    which llama.cpp rejects but gguf-py writes; nesting deeper than 8 is refused).
 *  - Tensor offsets must follow the reference packing (each tensor at the running sum of the
 *    aligned sizes before it), as llama.cpp requires.
 *  - Lookups by key and by tensor name are hash lookups; string arrays (vocabularies of
 *    ~150k tokens) are indexed once at open, O(n), so element access is O(1).
 *  - A wh_gguf is immutable after open: every getter may be called from any thread.
 *    All pointers it hands out stay valid until wh_gguf_close().
 * Does not: interpret metadata for a model (that is the model module's job), check tensor
 * contents for NaN/Inf, or write anything.
 */
#pragma once

#include <glib.h>
#include "gguf/gguf-types.h"

G_BEGIN_DECLS

#define WH_GGUF_ERROR (wh_gguf_error_quark())
GQuark wh_gguf_error_quark(void);

typedef enum {
  WH_GGUF_ERROR_IO,        /* cannot open/map/read/write the file */
  WH_GGUF_ERROR_NOT_GGUF,  /* bad magic */
  WH_GGUF_ERROR_VERSION,   /* unsupported version or byte order */
  WH_GGUF_ERROR_TRUNCATED, /* a field runs past the end of the file */
  WH_GGUF_ERROR_CORRUPT,   /* an invalid value (type, count, offset, duplicate, ...) */
  WH_GGUF_ERROR_SPLIT,     /* split model: missing or inconsistent shard */
  WH_GGUF_ERROR_INVALID,   /* bad argument to a writer/reader function */
  WH_GGUF_ERROR_CANCELLED, /* the caller aborted */
} wh_gguf_error;

/* The GGUF default data alignment. */
#define WH_GGUF_DEFAULT_ALIGNMENT 32
/* Longest tensor name (bytes) llama.cpp accepts. */
#define WH_GGUF_MAX_NAME 63

typedef struct wh_gguf wh_gguf; /* immutable after open: all getters are thread-safe */

typedef enum {
  WH_GGUF_UINT8 = 0,
  WH_GGUF_INT8,
  WH_GGUF_UINT16,
  WH_GGUF_INT16,
  WH_GGUF_UINT32,
  WH_GGUF_INT32,
  WH_GGUF_FLOAT32,
  WH_GGUF_BOOL,
  WH_GGUF_STRING,
  WH_GGUF_ARRAY,
  WH_GGUF_UINT64,
  WH_GGUF_INT64,
  WH_GGUF_FLOAT64,
  WH_GGUF_N_VALUE_TYPES
} wh_gguf_value_type;

typedef struct {
  const char *name; /* NUL-terminated, owned by the wh_gguf */
  wh_type type;
  guint32 n_dims; /* as stored in the file (0..4) */
  guint64 ne[4];  /* ne[0] = row length; unused dimensions are 1 */
  guint64 n_elements;
  guint64 n_bytes;
  guint64 offset;     /* in its file's data section */
  const guint8 *data; /* mmap'd bytes, valid while the wh_gguf is open; aligned to the file's
                       * alignment (>= 32) for files, as aligned as the buffer for
                       * wh_gguf_open_bytes() */
  guint split_index;  /* which shard holds it (0 for a single file) */
} wh_gguf_tensor;

/* A metadata value (scalar, string or array). Opaque; owned by its wh_gguf. */
typedef struct wh_gguf_value wh_gguf_value;

/* An array value, filled by wh_gguf_get_array() / wh_gguf_value_get_array(). Only valid
 * while its wh_gguf is open. */
typedef struct {
  wh_gguf_value_type type; /* element type */
  guint64 n;               /* element count */
  const void *data;        /* private: the array value */
  const guint8 *raw;       /* fixed-size element types: the n little-endian elements in
                            * the mapping (not necessarily aligned); NULL for STRING and
                            * ARRAY elements */
} wh_gguf_array;

/* --- opening --------------------------------------------------------------------------- */

typedef enum {
  WH_GGUF_OPEN_DEFAULT = 0,
  WH_GGUF_OPEN_NO_SPLITS = 1 << 0, /* open just this file, even if it is a shard */
} wh_gguf_open_flags;

/* Opens @path (mmap). When the file declares `split.count` > 1 the whole split model is
 * opened: the shards are found by name (`<prefix>-NNNNN-of-MMMMM.gguf`), any shard path
 * works as the starting point; metadata comes from the first shard and the tensors of all
 * shards are listed in shard order. Returns NULL and sets @error on failure. */
wh_gguf *wh_gguf_open(const char *path, GError **error);
wh_gguf *wh_gguf_open_full(const char *path, wh_gguf_open_flags flags, GError **error);

/* Parses a GGUF held in memory (no split handling). Takes a reference on @bytes, which must
 * stay unchanged. @name is used in error messages (may be NULL). */
wh_gguf *wh_gguf_open_bytes(GBytes *bytes, const char *name, GError **error);

void wh_gguf_close(wh_gguf *gguf); /* NULL-safe */

/* --- file facts ------------------------------------------------------------------------ */

const char *wh_gguf_path(const wh_gguf *g);                 /* path as opened (first shard) */
guint32 wh_gguf_version(const wh_gguf *g);                  /* 2 or 3 */
guint32 wh_gguf_alignment(const wh_gguf *g);                /* general.alignment or 32 */
guint wh_gguf_n_splits(const wh_gguf *g);                   /* 1 for a single file */
guint64 wh_gguf_data_offset(const wh_gguf *g, guint split); /* data_start of a shard */
guint64 wh_gguf_file_size(const wh_gguf *g, guint split);   /* size of a shard */
guint64 wh_gguf_total_size(const wh_gguf *g);               /* all shards */

/* --- tensors --------------------------------------------------------------------------- */

guint64 wh_gguf_n_tensors(const wh_gguf *g);
const wh_gguf_tensor *wh_gguf_get_tensor(const wh_gguf *g, guint64 i); /* NULL if out of range */
const wh_gguf_tensor *wh_gguf_find_tensor(const wh_gguf *g, const char *name); /* NULL if none */
gint64 wh_gguf_find_tensor_index(const wh_gguf *g, const char *name);          /* -1 if none */

/* Hint that @t's bytes will not be read again soon (streaming tools call it after each
 * tensor): drops their pages from the process's resident set; the page cache keeps them and
 * t->data stays valid (a later read just faults them back in). No-op for wh_gguf_open_bytes().
 * Thread-safe. */
void wh_gguf_tensor_release(const wh_gguf *g, const wh_gguf_tensor *t);

/* Checks @t's contents as the reference's optional data check does (gguf-container.md §4.10,
 * block-formats.md §5.11): no Inf/NaN in F32/F16/BF16/F64 elements, in the fp16 scale fields
 * of block types (IQ1_M: its reassembled super-scale) or in Q8_K's f32 scale, and no MXFP4
 * exponent of 255. Reads every byte of the tensor. On failure sets @error (WH_GGUF_ERROR_CORRUPT)
 * naming the tensor and the element or block. Thread-safe. */
gboolean wh_gguf_check_tensor_data(const wh_gguf_tensor *t, GError **error);

/* --- metadata by key ------------------------------------------------------------------- */

guint64 wh_gguf_n_kv(const wh_gguf *g);
const char *wh_gguf_kv_key(const wh_gguf *g, guint64 i);
wh_gguf_value_type wh_gguf_kv_type(const wh_gguf *g, guint64 i);
const wh_gguf_value *wh_gguf_kv_value(const wh_gguf *g, guint64 i); /* NULL if out of range */
gint64 wh_gguf_find_key(const wh_gguf *g, const char *key);         /* -1 if absent */
const wh_gguf_value *wh_gguf_find_value(const wh_gguf *g, const char *key); /* NULL if absent */

/* The getters below return FALSE (and leave *out alone) when the key is absent or its
 * value does not fit the request. */
/* Any unsigned type, or a signed type holding a non-negative value. */
gboolean wh_gguf_get_uint(const wh_gguf *g, const char *key, guint64 *out);
/* Any integer type whose value fits in gint64. */
gboolean wh_gguf_get_int(const wh_gguf *g, const char *key, gint64 *out);
/* FLOAT32/FLOAT64 and integer types. */
gboolean wh_gguf_get_float(const wh_gguf *g, const char *key, double *out);
/* BOOL only. */
gboolean wh_gguf_get_bool(const wh_gguf *g, const char *key, gboolean *out);
/* NUL-terminated copy owned by g; NULL if absent or not a string. */
const char *wh_gguf_get_string(const wh_gguf *g, const char *key);
gboolean wh_gguf_get_array(const wh_gguf *g, const char *key, wh_gguf_array *out);
const char *wh_gguf_get_architecture(const wh_gguf *g); /* general.architecture or NULL */

/* --- metadata values (same rules as the by-key getters) -------------------------------- */

wh_gguf_value_type wh_gguf_value_get_type(const wh_gguf_value *v);
gboolean wh_gguf_value_get_uint(const wh_gguf_value *v, guint64 *out);
gboolean wh_gguf_value_get_int(const wh_gguf_value *v, gint64 *out);
gboolean wh_gguf_value_get_float(const wh_gguf_value *v, double *out);
gboolean wh_gguf_value_get_bool(const wh_gguf_value *v, gboolean *out);
/* String values: NUL-terminated, *len (may be NULL) = byte length (embedded NULs kept). */
const char *wh_gguf_value_get_string(const wh_gguf_value *v, gsize *len);
gboolean wh_gguf_value_get_array(const wh_gguf_value *v, wh_gguf_array *out);
/* The value's exact encoding in the file (type tag excluded) — what a writer copies. */
const guint8 *wh_gguf_value_get_raw(const wh_gguf_value *v, gsize *len);

/* --- array elements -------------------------------------------------------------------- */
/* Out-of-range indexes and mismatched element types give NULL / 0 / 0.0. */

/* STRING arrays: NUL-terminated copy owned by the wh_gguf; *len (may be NULL) = length. */
const char *wh_gguf_array_get_string(const wh_gguf_array *a, guint64 i, gsize *len);
/* Integer and BOOL elements (UINT64 values above G_MAXINT64 come out negative). */
gint64 wh_gguf_array_get_int(const wh_gguf_array *a, guint64 i);
/* FLOAT32/FLOAT64 and integer elements. */
double wh_gguf_array_get_float(const wh_gguf_array *a, guint64 i);
/* ARRAY elements (nested arrays, rare): fills *out, FALSE when not an array of arrays. */
gboolean wh_gguf_array_get_array(const wh_gguf_array *a, guint64 i, wh_gguf_array *out);

/* --- helpers --------------------------------------------------------------------------- */

/* "UINT32", "ARRAY", ...; "?" for an invalid id. */
const char *wh_gguf_value_type_name(wh_gguf_value_type type);
/* Encoded size of one scalar of @type (0 for STRING/ARRAY/invalid). */
gsize wh_gguf_value_type_size(wh_gguf_value_type type);

/* Split naming: "<prefix>-%05u-of-%05u.gguf" (@index is 0-based). Newly allocated. */
char *wh_gguf_split_path(const char *prefix, guint index, guint count);
/* If @path names a shard, returns TRUE with the prefix (newly allocated), 0-based index and
 * count; otherwise FALSE. */
gboolean wh_gguf_split_parse(const char *path, char **prefix, guint *index, guint *count);

G_END_DECLS
