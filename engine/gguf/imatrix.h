/* imatrix.h — importance-matrix files (gguf-container.md §8).
 *
 * Design note
 * -----------
 * Owns: loading imatrix files in both forms — the GGUF form (`<name>.in_sum2` /
 * `<name>.counts` tensor pairs plus `imatrix.*` keys) and the legacy `.dat` stream — into
 * per-tensor importance vectors for the quantizer.
 * Promises: wh_imatrix_load() tries GGUF first and falls back to `.dat`; every length is
 * checked against the file size; the result is immutable (thread-safe getters). For the GGUF
 * form, importance[e*n_cols + c] = in_sum2[c,e] / counts[e] (1 when counts[e] = 0), counts
 * rounded to integers; for `.dat`, importance = values / ncall (values when ncall = 0).
 * Does not: compute imatrices (the eval module does) or merge files.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define WH_IMATRIX_ERROR (wh_imatrix_error_quark())
GQuark wh_imatrix_error_quark(void);

typedef enum {
  WH_IMATRIX_ERROR_IO,
  WH_IMATRIX_ERROR_FORMAT, /* neither a valid GGUF imatrix nor a valid .dat */
} wh_imatrix_error;

typedef struct wh_imatrix wh_imatrix;

typedef struct {
  const char *name;        /* weight tensor name, e.g. "blk.0.attn_q.weight" */
  guint64 n_cols;          /* ne[0] of the weight */
  guint64 n_mat;           /* 1, or the number of experts */
  const float *importance; /* n_cols * n_mat values */
  const float *in_sum2;    /* GGUF form: the raw sums (n_cols * n_mat); NULL for .dat */
  const float *counts;     /* GGUF form: per matrix token counts (n_mat), rounded; NULL for .dat */
  gint64 ncall;            /* .dat form: ncall; GGUF form: -1 */
} wh_imatrix_entry;

wh_imatrix *wh_imatrix_load(const char *path, GError **error);
/* Same from memory; @name is used in messages (may be NULL). */
wh_imatrix *wh_imatrix_load_bytes(GBytes *bytes, const char *name, GError **error);
void wh_imatrix_free(wh_imatrix *im); /* NULL-safe */

gboolean wh_imatrix_is_legacy(const wh_imatrix *im); /* TRUE for the .dat form */
guint wh_imatrix_n_entries(const wh_imatrix *im);
const wh_imatrix_entry *wh_imatrix_get_entry(const wh_imatrix *im, guint i); /* name order */
const wh_imatrix_entry *wh_imatrix_find(const wh_imatrix *im, const char *tensor_name);
/* Chunks processed (imatrix.chunk_count / .dat last_chunk); -1 if unknown. */
gint64 wh_imatrix_chunk_count(const wh_imatrix *im);
/* Tokens per chunk (imatrix.chunk_size); -1 if unknown (.dat). */
gint64 wh_imatrix_chunk_size(const wh_imatrix *im);
/* First dataset name, or NULL. */
const char *wh_imatrix_dataset(const wh_imatrix *im);

/* Writes a GGUF imatrix file (§8.1) from accumulated sums: for each entry (any order; they
 * are written in ascending name order) in_sum2 (n_cols x n_mat floats) and counts (n_mat
 * floats, token counts) must be set; importance and ncall are ignored. @datasets is a
 * NULL-terminated list of calibration file names (may be empty, not NULL). The file is written
 * through the GGUF writer: temporary file, renamed on success. */
gboolean wh_imatrix_save_gguf(const char *path, const wh_imatrix_entry *entries, guint n_entries,
                              const char *const *datasets, guint32 chunk_count, guint32 chunk_size,
                              GError **error);

G_END_DECLS
