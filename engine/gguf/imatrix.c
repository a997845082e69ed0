/* imatrix.c — importance-matrix files, GGUF and legacy .dat (contract in imatrix.h). */
#include "config.h"

#include "imatrix.h"

#include "gguf-writer.h"
#include "gguf.h"

#include <math.h>
#include <string.h>

G_DEFINE_QUARK(wh-imatrix-error-quark, wh_imatrix_error)

struct wh_imatrix {
  gboolean legacy;
  GArray *entries;   /* wh_imatrix_entry, sorted by name */
  GHashTable *index; /* name -> entry index + 1 */
  GPtrArray *allocs;
  gint64 chunk_count;
  gint64 chunk_size;
  char *dataset;
};

static wh_imatrix *
imatrix_new(void)
{
  wh_imatrix *im = g_new0(wh_imatrix, 1);
  im->entries = g_array_new(FALSE, TRUE, sizeof(wh_imatrix_entry));
  im->index = g_hash_table_new(g_str_hash, g_str_equal);
  im->allocs = g_ptr_array_new_with_free_func(g_free);
  im->chunk_count = -1;
  im->chunk_size = -1;
  return im;
}

void
wh_imatrix_free(wh_imatrix *im)
{
  if (im == NULL)
    return;
  g_array_unref(im->entries);
  g_hash_table_unref(im->index);
  g_ptr_array_unref(im->allocs);
  g_free(im->dataset);
  g_free(im);
}

static gpointer
keep(wh_imatrix *im, gpointer p)
{
  g_ptr_array_add(im->allocs, p);
  return p;
}

static gint
entry_cmp(gconstpointer a, gconstpointer b)
{
  return strcmp(((const wh_imatrix_entry *)a)->name, ((const wh_imatrix_entry *)b)->name);
}

/* Sorts and indexes; fails on a duplicate name. */
static gboolean
finish_index(wh_imatrix *im, const char *name, GError **error)
{
  g_array_sort(im->entries, entry_cmp);
  for (guint i = 0; i < im->entries->len; i++) {
    const wh_imatrix_entry *e = &g_array_index(im->entries, wh_imatrix_entry, i);
    if (g_hash_table_contains(im->index, e->name)) {
      g_set_error(error, WH_IMATRIX_ERROR, WH_IMATRIX_ERROR_FORMAT,
                  "%s: the imatrix has two entries for '%s'", name, e->name);
      return FALSE;
    }
    g_hash_table_insert(im->index, (gpointer)e->name, GUINT_TO_POINTER(i + 1));
  }
  return TRUE;
}

static float
ld_f32(const guint8 *p)
{
  guint32 u;
  float f;
  memcpy(&u, p, 4);
  u = GUINT32_FROM_LE(u);
  memcpy(&f, &u, 4);
  return f;
}

static gint32
ld_i32(const guint8 *p)
{
  guint32 u;
  memcpy(&u, p, 4);
  return (gint32)GUINT32_FROM_LE(u);
}

static gboolean G_GNUC_PRINTF(3, 4)
    format_fail(GError **error, const char *name, const char *format, ...)
{
  va_list ap;
  va_start(ap, format);
  char *msg = g_strdup_vprintf(format, ap);
  va_end(ap);
  g_set_error(error, WH_IMATRIX_ERROR, WH_IMATRIX_ERROR_FORMAT, "%s: %s", name, msg);
  g_free(msg);
  return FALSE;
}

/* ------------------------------------------------------------------------------------- */
/* GGUF form */

static gboolean
load_gguf(wh_imatrix *im, const wh_gguf *g, const char *name, GError **error)
{
  static const char *const required[] = {"imatrix.datasets", "imatrix.chunk_count",
                                         "imatrix.chunk_size"};
  for (guint i = 0; i < G_N_ELEMENTS(required); i++)
    if (wh_gguf_find_key(g, required[i]) < 0)
      return format_fail(error, name,
                         "GGUF file without the '%s' key: not an importance matrix (compute one "
                         "with 'whittle-cli imatrix')",
                         required[i]);
  guint64 u;
  if (!wh_gguf_get_uint(g, "imatrix.chunk_count", &u) || u > G_MAXINT64)
    return format_fail(error, name, "imatrix.chunk_count is not a non-negative integer");
  im->chunk_count = (gint64)u;
  if (!wh_gguf_get_uint(g, "imatrix.chunk_size", &u) || u > G_MAXINT64)
    return format_fail(error, name, "imatrix.chunk_size is not a non-negative integer");
  im->chunk_size = (gint64)u;
  wh_gguf_array ds;
  if (!wh_gguf_get_array(g, "imatrix.datasets", &ds) || ds.type != WH_GGUF_STRING)
    return format_fail(error, name, "imatrix.datasets is not an array of strings");
  if (ds.n > 0)
    im->dataset = g_strdup(wh_gguf_array_get_string(&ds, 0, NULL));

  for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) {
    const wh_gguf_tensor *t = wh_gguf_get_tensor(g, i);
    if (g_str_has_suffix(t->name, ".counts")) {
      char *base = g_strndup(t->name, strlen(t->name) - strlen(".counts"));
      char *sn = g_strconcat(base, ".in_sum2", NULL);
      gboolean paired = wh_gguf_find_tensor(g, sn) != NULL;
      g_free(sn);
      g_free(base);
      if (!paired)
        return format_fail(error, name, "tensor '%s' has no matching .in_sum2 tensor", t->name);
      continue;
    }
    if (!g_str_has_suffix(t->name, ".in_sum2"))
      continue; /* not ours: ignore */
    gsize blen = strlen(t->name) - strlen(".in_sum2");
    char *base = keep(im, g_strndup(t->name, blen));
    char *cn = g_strconcat(base, ".counts", NULL);
    const wh_gguf_tensor *c = wh_gguf_find_tensor(g, cn);
    g_free(cn);
    if (c == NULL)
      return format_fail(error, name, "tensor '%s' has no matching .counts tensor", t->name);
    if (t->type != WH_TYPE_F32 || c->type != WH_TYPE_F32)
      return format_fail(error, name, "imatrix tensors of '%s' must be F32", base);
    guint64 n_cols = t->ne[0], n_mat = t->ne[1];
    if (t->ne[2] != 1 || t->ne[3] != 1 || n_cols == 0 || n_mat == 0 || c->n_elements != n_mat)
      return format_fail(error, name,
                         "imatrix tensors of '%s' have inconsistent shapes ([%" G_GUINT64_FORMAT
                         ", %" G_GUINT64_FORMAT "] sums, %" G_GUINT64_FORMAT " counts)",
                         base, n_cols, n_mat, c->n_elements);
    /* n_cols * n_mat * 4 <= file size, so these allocations are bounded by the file */
    guint64 n = n_cols * n_mat;
    float *sums = keep(im, g_new(float, n));
    float *counts = keep(im, g_new(float, n_mat));
    float *imp = keep(im, g_new(float, n));
    for (guint64 e = 0; e < n_mat; e++) {
      float cnt = ld_f32(c->data + 4 * e);
      if (!isfinite(cnt) || cnt < 0)
        return format_fail(error, name, "'%s' has an invalid count %g", base, (double)cnt);
      counts[e] = nearbyintf(cnt);
      for (guint64 k = 0; k < n_cols; k++) {
        guint64 j = e * n_cols + k;
        sums[j] = ld_f32(t->data + 4 * j);
        imp[j] = counts[e] > 0 ? sums[j] / counts[e] : 1.0f;
      }
    }
    wh_imatrix_entry ent = {base, n_cols, n_mat, imp, sums, counts, -1};
    g_array_append_val(im->entries, ent);
  }
  return finish_index(im, name, error);
}

/* ------------------------------------------------------------------------------------- */
/* legacy .dat form */

static gboolean
load_dat(wh_imatrix *im, const guint8 *d, gsize size, const char *name, GError **error)
{
  gsize pos = 0;
#define NEED(n, what)                                                                              \
  do {                                                                                             \
    if ((guint64)(n) > size - pos)                                                                 \
      return format_fail(error, name,                                                              \
                         "not a GGUF file, and as a legacy .dat imatrix it is truncated at "       \
                         "offset %" G_GSIZE_FORMAT " (%s)",                                        \
                         pos, what);                                                               \
  } while (0)
  NEED(4, "entry count");
  gint32 n_entries = ld_i32(d);
  pos = 4;
  /* each entry needs at least 4 + 1 + 4 + 4 + 4 bytes */
  if (n_entries < 1 || (guint64)n_entries > (size - pos) / 17)
    return format_fail(error, name,
                       "neither a GGUF file nor a legacy .dat imatrix (entry count %d does not "
                       "fit the file)",
                       n_entries);
  for (gint32 i = 0; i < n_entries; i++) {
    NEED(4, "name length");
    gint32 nl = ld_i32(d + pos);
    pos += 4;
    if (nl < 1)
      return format_fail(error, name, "legacy imatrix entry %d has name length %d", i, nl);
    NEED(nl, "name");
    char *ename = keep(im, g_strndup((const char *)d + pos, (gsize)nl));
    if (strlen(ename) != (gsize)nl)
      return format_fail(error, name, "legacy imatrix entry %d has a NUL byte in its name", i);
    pos += (gsize)nl;
    NEED(8, "ncall and value count");
    gint32 ncall = ld_i32(d + pos);
    gint32 nval = ld_i32(d + pos + 4);
    pos += 8;
    if (nval < 1)
      return format_fail(error, name, "legacy imatrix entry '%s' has %d values", ename, nval);
    NEED((guint64)nval * 4, "values");
    float *imp = keep(im, g_new(float, nval));
    for (gint32 k = 0; k < nval; k++) {
      float v = ld_f32(d + pos + 4 * (gsize)k);
      imp[k] = ncall > 0 ? v / (float)ncall : v;
    }
    pos += (gsize)nval * 4;
    wh_imatrix_entry ent = {ename, (guint64)nval, 1, imp, NULL, NULL, ncall};
    g_array_append_val(im->entries, ent);
  }
  if (size - pos >= 4) {
    im->chunk_count = ld_i32(d + pos);
    pos += 4;
    if (size - pos >= 4) {
      gint32 dl = ld_i32(d + pos);
      pos += 4;
      if (dl < 0)
        return format_fail(error, name, "legacy imatrix dataset name length %d", dl);
      NEED(dl, "dataset name");
      im->dataset = g_strndup((const char *)d + pos, (gsize)dl);
      pos += (gsize)dl;
    }
  }
  if (pos != size)
    return format_fail(error, name,
                       "legacy .dat imatrix has %" G_GSIZE_FORMAT " unexpected bytes at its end",
                       size - pos);
#undef NEED
  im->legacy = TRUE;
  return finish_index(im, name, error);
}

/* ------------------------------------------------------------------------------------- */

wh_imatrix *
wh_imatrix_load_bytes(GBytes *bytes, const char *name, GError **error)
{
  gsize size;
  const guint8 *d = g_bytes_get_data(bytes, &size);
  if (name == NULL)
    name = "(memory)";
  wh_imatrix *im = imatrix_new();
  gboolean ok;
  if (size >= 4 && memcmp(d, "GGUF", 4) == 0) {
    GError *local = NULL;
    wh_gguf *g = wh_gguf_open_bytes(bytes, name, &local);
    if (g == NULL) {
      g_set_error(error, WH_IMATRIX_ERROR, WH_IMATRIX_ERROR_FORMAT, "%s", local->message);
      g_error_free(local);
      ok = FALSE;
    } else {
      ok = load_gguf(im, g, name, error);
      wh_gguf_close(g);
    }
  } else {
    ok = load_dat(im, d, size, name, error);
  }
  if (!ok) {
    wh_imatrix_free(im);
    return NULL;
  }
  return im;
}

wh_imatrix *
wh_imatrix_load(const char *path, GError **error)
{
  GError *local = NULL;
  GMappedFile *mf = g_mapped_file_new(path, FALSE, &local);
  if (mf == NULL) {
    g_set_error(error, WH_IMATRIX_ERROR, WH_IMATRIX_ERROR_IO, "%s", local->message);
    g_error_free(local);
    return NULL;
  }
  GBytes *b = g_mapped_file_get_bytes(mf);
  g_mapped_file_unref(mf);
  wh_imatrix *im = wh_imatrix_load_bytes(b, path, error);
  g_bytes_unref(b);
  return im;
}

gboolean
wh_imatrix_is_legacy(const wh_imatrix *im)
{
  return im->legacy;
}

guint
wh_imatrix_n_entries(const wh_imatrix *im)
{
  return im->entries->len;
}

const wh_imatrix_entry *
wh_imatrix_get_entry(const wh_imatrix *im, guint i)
{
  return i < im->entries->len ? &g_array_index(im->entries, wh_imatrix_entry, i) : NULL;
}

const wh_imatrix_entry *
wh_imatrix_find(const wh_imatrix *im, const char *tensor_name)
{
  gpointer v = tensor_name ? g_hash_table_lookup(im->index, tensor_name) : NULL;
  return v ? &g_array_index(im->entries, wh_imatrix_entry, GPOINTER_TO_UINT(v) - 1) : NULL;
}

gint64
wh_imatrix_chunk_count(const wh_imatrix *im)
{
  return im->chunk_count;
}

gint64
wh_imatrix_chunk_size(const wh_imatrix *im)
{
  return im->chunk_size;
}

const char *
wh_imatrix_dataset(const wh_imatrix *im)
{
  return im->dataset;
}

/* ------------------------------------------------------------------------------------- */
/* writing */

static gint
entry_ptr_cmp(gconstpointer a, gconstpointer b)
{
  const wh_imatrix_entry *ea = *(const wh_imatrix_entry *const *)a;
  const wh_imatrix_entry *eb = *(const wh_imatrix_entry *const *)b;
  return strcmp(ea->name, eb->name);
}

gboolean
wh_imatrix_save_gguf(const char *path, const wh_imatrix_entry *entries, guint n_entries,
                     const char *const *datasets, guint32 chunk_count, guint32 chunk_size,
                     GError **error)
{
  g_return_val_if_fail(path != NULL && datasets != NULL, FALSE);
  g_return_val_if_fail(n_entries == 0 || entries != NULL, FALSE);
  GPtrArray *sorted = g_ptr_array_sized_new(n_entries);
  for (guint i = 0; i < n_entries; i++) {
    const wh_imatrix_entry *e = &entries[i];
    if (e->name == NULL || e->in_sum2 == NULL || e->counts == NULL || e->n_cols == 0 ||
        e->n_mat == 0 || strlen(e->name) + strlen(".in_sum2") > 63) {
      g_set_error(error, WH_IMATRIX_ERROR, WH_IMATRIX_ERROR_FORMAT,
                  "%s: imatrix entry %u (%s) has no sums, no counts, no shape or too long a "
                  "name",
                  path, i, e->name ? e->name : "unnamed");
      g_ptr_array_unref(sorted);
      return FALSE;
    }
    g_ptr_array_add(sorted, (gpointer)e);
  }
  g_ptr_array_sort(sorted, entry_ptr_cmp);

  wh_gguf_writer *w = wh_gguf_writer_new();
  wh_gguf_writer_set_string(w, "general.type", "imatrix");
  wh_gguf_writer_set_string_array(w, "imatrix.datasets", datasets, NULL,
                                  g_strv_length((char **)datasets));
  wh_gguf_writer_set_uint32(w, "imatrix.chunk_count", chunk_count);
  wh_gguf_writer_set_uint32(w, "imatrix.chunk_size", chunk_size);
  gboolean ok = TRUE;
  for (guint i = 0; i < sorted->len && ok; i++) {
    const wh_imatrix_entry *e = sorted->pdata[i];
    /* an ordinary matrix is written 1-D: [n_cols] and [1] */
    guint32 nd = e->n_mat > 1 ? 2 : 1;
    guint64 ne_sums[2] = {e->n_cols, e->n_mat}, ne_counts[2] = {1, e->n_mat};
    char *sn = g_strconcat(e->name, ".in_sum2", NULL);
    char *cn = g_strconcat(e->name, ".counts", NULL);
    ok = wh_gguf_writer_add_tensor(w, sn, WH_TYPE_F32, nd, ne_sums, error) &&
         wh_gguf_writer_add_tensor(w, cn, WH_TYPE_F32, nd, ne_counts, error);
    g_free(sn);
    g_free(cn);
  }
  ok = ok && wh_gguf_writer_begin(w, path, error);
  for (guint i = 0; i < sorted->len && ok; i++) {
    const wh_imatrix_entry *e = sorted->pdata[i];
    ok = wh_gguf_writer_write(w, e->in_sum2, e->n_cols * e->n_mat * sizeof(float), error) &&
         wh_gguf_writer_write(w, e->counts, e->n_mat * sizeof(float), error);
  }
  ok = ok && wh_gguf_writer_finish(w, error);
  if (!ok && error && *error && (*error)->domain == WH_GGUF_ERROR &&
      (*error)->code == WH_GGUF_ERROR_INVALID) {
    /* a duplicate name or a bad shape: report it in our domain */
    GError *e = *error;
    *error = NULL;
    g_set_error(error, WH_IMATRIX_ERROR, WH_IMATRIX_ERROR_FORMAT, "%s: %s", path, e->message);
    g_error_free(e);
  }
  wh_gguf_writer_free(w);
  g_ptr_array_unref(sorted);
  return ok;
}
