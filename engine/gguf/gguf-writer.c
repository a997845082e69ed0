/* gguf-writer.c — the streaming GGUF writer (contract in gguf-writer.h).
 *
 * Implementation notes
 * --------------------
 * Each KV is kept as its encoded bytes (u32 type tag + value, little-endian), so writing is
 * a copy and copying a KV from a source file is a memcpy of its raw bytes. Tensor data goes
 * through a 1 MiB buffer to a file descriptor from g_mkstemp_full() in the destination
 * folder; finish() fsyncs and renames. Offsets are computed at begin() from the alignment in
 * effect then (the general.alignment key, default 32).
 */
#include "config.h"

#include "gguf-writer.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE (1u << 20)

typedef struct {
  char *key;
  GByteArray *enc; /* u32 type + value */
} wkv;

typedef struct {
  char *name;
  wh_type type;
  guint32 n_dims;
  guint64 ne[4];
  guint64 n_bytes;
  guint64 offset;
} wtensor;

struct wh_gguf_writer {
  GPtrArray *kvs;       /* wkv*, in order */
  GHashTable *kv_index; /* key -> wkv* */
  GArray *tensors;      /* wtensor */
  GHashTable *tensor_names;

  /* writing */
  gboolean begun, finished, failed;
  char *path, *tmp_path;
  int fd;
  guint8 *buf;
  gsize buf_len;
  guint32 alignment;
  guint64 cur;         /* current tensor */
  guint64 cur_written; /* bytes of it written */
};

static void
wkv_free(gpointer p)
{
  wkv *kv = p;
  g_free(kv->key);
  g_byte_array_unref(kv->enc);
  g_free(kv);
}

wh_gguf_writer *
wh_gguf_writer_new(void)
{
  wh_gguf_writer *w = g_new0(wh_gguf_writer, 1);
  w->kvs = g_ptr_array_new_with_free_func(wkv_free);
  w->kv_index = g_hash_table_new(g_str_hash, g_str_equal);
  w->tensors = g_array_new(FALSE, TRUE, sizeof(wtensor));
  w->tensor_names = g_hash_table_new(g_str_hash, g_str_equal);
  w->fd = -1;
  w->alignment = WH_GGUF_DEFAULT_ALIGNMENT;
  return w;
}

void
wh_gguf_writer_free(wh_gguf_writer *w)
{
  if (w == NULL)
    return;
  wh_gguf_writer_abort(w);
  for (guint i = 0; i < w->tensors->len; i++)
    g_free(g_array_index(w->tensors, wtensor, i).name);
  g_array_unref(w->tensors);
  g_hash_table_unref(w->tensor_names);
  g_hash_table_unref(w->kv_index);
  g_ptr_array_unref(w->kvs);
  g_free(w->path);
  g_free(w->tmp_path);
  g_free(w->buf);
  g_free(w);
}

/* ------------------------------------------------------------------------------------- */
/* metadata */

static void
put_u32(GByteArray *b, guint32 v)
{
  v = GUINT32_TO_LE(v);
  g_byte_array_append(b, (const guint8 *)&v, 4);
}

static void
put_u64(GByteArray *b, guint64 v)
{
  v = GUINT64_TO_LE(v);
  g_byte_array_append(b, (const guint8 *)&v, 8);
}

static void
put_str(GByteArray *b, const char *s, gsize len)
{
  put_u64(b, len);
  g_byte_array_append(b, (const guint8 *)s, (guint)len);
}

/* Appends @n host-order scalars of @type as little-endian. */
static void
put_scalars(GByteArray *b, wh_gguf_value_type type, const void *src, guint64 n)
{
  gsize sz = wh_gguf_value_type_size(type);
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
  if (type == WH_GGUF_BOOL) {
    for (guint64 i = 0; i < n; i++) {
      guint8 v = ((const guint8 *)src)[i] != 0;
      g_byte_array_append(b, &v, 1);
    }
  } else {
    g_byte_array_append(b, src, (guint)(sz * n));
  }
#else
  for (guint64 i = 0; i < n; i++) {
    const guint8 *e = (const guint8 *)src + i * sz;
    guint8 tmp[8];
    for (gsize k = 0; k < sz; k++)
      tmp[k] = e[sz - 1 - k];
    if (type == WH_GGUF_BOOL)
      tmp[0] = tmp[0] != 0;
    g_byte_array_append(b, tmp, (guint)sz);
  }
#endif
}

/* Takes @enc. Replaces in place or appends. */
static void
set_encoded(wh_gguf_writer *w, const char *key, GByteArray *enc)
{
  if (key == NULL || key[0] == '\0' || w->begun) {
    g_byte_array_unref(enc);
    g_return_if_fail(key != NULL && key[0] != '\0');
    g_return_if_fail(!w->begun);
    return;
  }
  wkv *kv = g_hash_table_lookup(w->kv_index, key);
  if (kv) {
    g_byte_array_unref(kv->enc);
    kv->enc = enc;
    return;
  }
  kv = g_new0(wkv, 1);
  kv->key = g_strdup(key);
  kv->enc = enc;
  g_ptr_array_add(w->kvs, kv);
  g_hash_table_insert(w->kv_index, kv->key, kv);
}

static void
set_scalar(wh_gguf_writer *w, const char *key, wh_gguf_value_type type, const void *v)
{
  GByteArray *b = g_byte_array_new();
  put_u32(b, type);
  put_scalars(b, type, v, 1);
  set_encoded(w, key, b);
}

void
wh_gguf_writer_set_uint8(wh_gguf_writer *w, const char *key, guint8 v)
{
  set_scalar(w, key, WH_GGUF_UINT8, &v);
}

void
wh_gguf_writer_set_int8(wh_gguf_writer *w, const char *key, gint8 v)
{
  set_scalar(w, key, WH_GGUF_INT8, &v);
}

void
wh_gguf_writer_set_uint16(wh_gguf_writer *w, const char *key, guint16 v)
{
  set_scalar(w, key, WH_GGUF_UINT16, &v);
}

void
wh_gguf_writer_set_int16(wh_gguf_writer *w, const char *key, gint16 v)
{
  set_scalar(w, key, WH_GGUF_INT16, &v);
}

void
wh_gguf_writer_set_uint32(wh_gguf_writer *w, const char *key, guint32 v)
{
  set_scalar(w, key, WH_GGUF_UINT32, &v);
}

void
wh_gguf_writer_set_int32(wh_gguf_writer *w, const char *key, gint32 v)
{
  set_scalar(w, key, WH_GGUF_INT32, &v);
}

void
wh_gguf_writer_set_uint64(wh_gguf_writer *w, const char *key, guint64 v)
{
  set_scalar(w, key, WH_GGUF_UINT64, &v);
}

void
wh_gguf_writer_set_int64(wh_gguf_writer *w, const char *key, gint64 v)
{
  set_scalar(w, key, WH_GGUF_INT64, &v);
}

void
wh_gguf_writer_set_float32(wh_gguf_writer *w, const char *key, float v)
{
  set_scalar(w, key, WH_GGUF_FLOAT32, &v);
}

void
wh_gguf_writer_set_float64(wh_gguf_writer *w, const char *key, double v)
{
  set_scalar(w, key, WH_GGUF_FLOAT64, &v);
}

void
wh_gguf_writer_set_bool(wh_gguf_writer *w, const char *key, gboolean v)
{
  guint8 b = v != 0;
  set_scalar(w, key, WH_GGUF_BOOL, &b);
}

void
wh_gguf_writer_set_string(wh_gguf_writer *w, const char *key, const char *v)
{
  g_return_if_fail(v != NULL);
  GByteArray *b = g_byte_array_new();
  put_u32(b, WH_GGUF_STRING);
  put_str(b, v, strlen(v));
  set_encoded(w, key, b);
}

void
wh_gguf_writer_set_array(wh_gguf_writer *w, const char *key, wh_gguf_value_type type,
                         const void *elements, guint64 n)
{
  g_return_if_fail(wh_gguf_value_type_size(type) != 0);
  g_return_if_fail(n == 0 || elements != NULL);
  GByteArray *b = g_byte_array_new();
  put_u32(b, WH_GGUF_ARRAY);
  put_u32(b, type);
  put_u64(b, n);
  put_scalars(b, type, elements, n);
  set_encoded(w, key, b);
}

void
wh_gguf_writer_set_string_array(wh_gguf_writer *w, const char *key, const char *const *strings,
                                const gsize *lens, guint64 n)
{
  g_return_if_fail(n == 0 || strings != NULL);
  GByteArray *b = g_byte_array_new();
  put_u32(b, WH_GGUF_ARRAY);
  put_u32(b, WH_GGUF_STRING);
  put_u64(b, n);
  for (guint64 i = 0; i < n; i++)
    put_str(b, strings[i], lens ? lens[i] : strlen(strings[i]));
  set_encoded(w, key, b);
}

gboolean
wh_gguf_writer_set_value(wh_gguf_writer *w, const char *key, const wh_gguf_value *v, GError **error)
{
  g_return_val_if_fail(v != NULL, FALSE);
  wh_gguf_value_type type = wh_gguf_value_get_type(v);
  wh_gguf_array a;
  if (wh_gguf_value_get_array(v, &a) && a.type == WH_GGUF_ARRAY) {
    g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID,
                "metadata key '%s' is a nested array, which llama.cpp cannot load; leave it out",
                key);
    return FALSE;
  }
  gsize len;
  const guint8 *raw = wh_gguf_value_get_raw(v, &len);
  GByteArray *b = g_byte_array_sized_new((guint)len + 4);
  put_u32(b, type);
  g_byte_array_append(b, raw, (guint)len);
  set_encoded(w, key, b);
  return TRUE;
}

gboolean
wh_gguf_writer_copy_kvs(wh_gguf_writer *w, const wh_gguf *src, const char *const *skip_prefixes,
                        GError **error)
{
  for (guint64 i = 0; i < wh_gguf_n_kv(src); i++) {
    const char *key = wh_gguf_kv_key(src, i);
    gboolean skip = FALSE;
    for (const char *const *sp = skip_prefixes; sp && *sp && !skip; sp++)
      skip = g_str_has_prefix(key, *sp);
    if (!skip && !wh_gguf_writer_set_value(w, key, wh_gguf_kv_value(src, i), error))
      return FALSE;
  }
  return TRUE;
}

gboolean
wh_gguf_writer_remove_key(wh_gguf_writer *w, const char *key)
{
  g_return_val_if_fail(!w->begun, FALSE);
  wkv *kv = g_hash_table_lookup(w->kv_index, key);
  if (kv == NULL)
    return FALSE;
  g_hash_table_remove(w->kv_index, key);
  g_ptr_array_remove(w->kvs, kv); /* frees it */
  return TRUE;
}

gboolean
wh_gguf_writer_has_key(const wh_gguf_writer *w, const char *key)
{
  return g_hash_table_contains(w->kv_index, key);
}

guint64
wh_gguf_writer_n_kv(const wh_gguf_writer *w)
{
  return w->kvs->len;
}

/* ------------------------------------------------------------------------------------- */
/* tensors */

gboolean
wh_gguf_writer_add_tensor(wh_gguf_writer *w, const char *name, wh_type type, guint32 n_dims,
                          const guint64 *ne, GError **error)
{
  g_return_val_if_fail(!w->begun, FALSE);
  gsize len = name ? strlen(name) : 0;
  if (len == 0 || len > WH_GGUF_MAX_NAME) {
    g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID,
                "tensor name '%s' must be 1 to %d bytes long", name ? name : "", WH_GGUF_MAX_NAME);
    return FALSE;
  }
  if (g_hash_table_contains(w->tensor_names, name)) {
    g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID, "tensor '%s' was added twice", name);
    return FALSE;
  }
  const wh_type_traits *tr = wh_type_get_traits(type);
  if (tr == NULL) {
    g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID, "tensor '%s': invalid type id %d",
                name, (int)type);
    return FALSE;
  }
  if (n_dims > 4 || (n_dims > 0 && ne == NULL)) {
    g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID,
                "tensor '%s': %u dimensions (at most 4)", name, n_dims);
    return FALSE;
  }
  wtensor t = {0};
  t.type = type;
  t.n_dims = n_dims;
  guint64 nel = 1;
  for (guint d = 0; d < 4; d++) {
    t.ne[d] = d < n_dims ? ne[d] : 1;
    if (t.ne[d] > (guint64)G_MAXINT64 || (t.ne[d] && nel > (guint64)G_MAXINT64 / t.ne[d])) {
      g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID,
                  "tensor '%s': the shape is too large", name);
      return FALSE;
    }
    nel *= t.ne[d];
  }
  if (t.ne[0] % tr->block_size != 0) {
    g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID,
                "tensor '%s': row length %" G_GUINT64_FORMAT " is not a multiple of the %s block "
                "size %u",
                name, t.ne[0], tr->name, tr->block_size);
    return FALSE;
  }
  guint64 row = wh_type_row_size(type, t.ne[0]);
  guint64 rows = t.ne[0] ? nel / t.ne[0] : 0;
  if (rows && row > G_MAXUINT64 / 2 / rows) {
    g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID, "tensor '%s' is too large", name);
    return FALSE;
  }
  t.n_bytes = row * rows;
  t.name = g_strdup(name);
  g_array_append_val(w->tensors, t);
  g_hash_table_add(w->tensor_names, t.name);
  return TRUE;
}

guint64
wh_gguf_writer_n_tensors(const wh_gguf_writer *w)
{
  return w->tensors->len;
}

static guint64
align_up(guint64 x, guint64 a)
{
  return (x + a - 1) / a * a;
}

/* The alignment in effect: general.alignment if set (validated), else 32. */
static gboolean
effective_alignment(const wh_gguf_writer *w, guint32 *out, GError **error)
{
  wkv *kv = g_hash_table_lookup(w->kv_index, "general.alignment");
  if (kv == NULL) {
    *out = WH_GGUF_DEFAULT_ALIGNMENT;
    return TRUE;
  }
  guint32 type, v = 0;
  memcpy(&type, kv->enc->data, 4);
  type = GUINT32_FROM_LE(type);
  if (type == WH_GGUF_UINT32 && kv->enc->len == 8) {
    memcpy(&v, kv->enc->data + 4, 4);
    v = GUINT32_FROM_LE(v);
  }
  if (type != WH_GGUF_UINT32 || v == 0 || (v & (v - 1)) != 0) {
    g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID,
                "general.alignment must be a UINT32 power of two");
    return FALSE;
  }
  *out = v;
  return TRUE;
}

gboolean
wh_gguf_writer_set_alignment(wh_gguf_writer *w, guint32 alignment, GError **error)
{
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID, "alignment %u is not a power of two",
                alignment);
    return FALSE;
  }
  if (alignment != WH_GGUF_DEFAULT_ALIGNMENT ||
      g_hash_table_contains(w->kv_index, "general.alignment"))
    wh_gguf_writer_set_uint32(w, "general.alignment", alignment);
  return TRUE;
}

/* Header + KVs + tensor infos (unpadded). */
static guint64
directory_size(const wh_gguf_writer *w)
{
  guint64 s = 24;
  for (guint i = 0; i < w->kvs->len; i++) {
    const wkv *kv = w->kvs->pdata[i];
    s += 8 + strlen(kv->key) + kv->enc->len;
  }
  for (guint i = 0; i < w->tensors->len; i++) {
    const wtensor *t = &g_array_index(w->tensors, wtensor, i);
    s += 8 + strlen(t->name) + 4 + 8 * (guint64)t->n_dims + 4 + 8;
  }
  return s;
}

guint64
wh_gguf_writer_file_size(const wh_gguf_writer *w)
{
  guint32 a;
  if (!effective_alignment(w, &a, NULL))
    return 0;
  guint64 s = directory_size(w);
  if (w->tensors->len == 0)
    return s;
  s = align_up(s, a);
  for (guint i = 0; i < w->tensors->len; i++)
    s += align_up(g_array_index(w->tensors, wtensor, i).n_bytes, a);
  return s;
}

/* ------------------------------------------------------------------------------------- */
/* writing */

static gboolean
io_fail(wh_gguf_writer *w, int err, const char *what, GError **error)
{
  g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_IO, "%s: cannot %s: %s", w->path, what,
              g_strerror(err));
  wh_gguf_writer_abort(w);
  return FALSE;
}

static gboolean
write_all(wh_gguf_writer *w, const void *data, gsize size, GError **error)
{
  const guint8 *p = data;
  while (size > 0) {
    ssize_t n = write(w->fd, p, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return io_fail(w, errno, "write", error);
    }
    p += n;
    size -= (gsize)n;
  }
  return TRUE;
}

static gboolean
flush_buf(wh_gguf_writer *w, GError **error)
{
  if (w->buf_len == 0)
    return TRUE;
  gsize n = w->buf_len;
  w->buf_len = 0;
  return write_all(w, w->buf, n, error);
}

static gboolean
emit(wh_gguf_writer *w, const void *data, gsize size, GError **error)
{
  if (w->buf_len + size > BUF_SIZE) {
    if (!flush_buf(w, error))
      return FALSE;
    if (size >= BUF_SIZE)
      return write_all(w, data, size, error);
  }
  memcpy(w->buf + w->buf_len, data, size);
  w->buf_len += size;
  return TRUE;
}

static gboolean
emit_zeros(wh_gguf_writer *w, gsize n, GError **error)
{
  static const guint8 zeros[256];
  while (n > 0) {
    gsize k = MIN(n, sizeof zeros);
    if (!emit(w, zeros, k, error))
      return FALSE;
    n -= k;
  }
  return TRUE;
}

/* Moves past completed (and empty) tensors, writing their padding. */
static gboolean
advance(wh_gguf_writer *w, GError **error)
{
  while (w->cur < w->tensors->len) {
    const wtensor *t = &g_array_index(w->tensors, wtensor, w->cur);
    if (w->cur_written < t->n_bytes)
      break;
    if (!emit_zeros(w, align_up(t->n_bytes, w->alignment) - t->n_bytes, error))
      return FALSE;
    w->cur++;
    w->cur_written = 0;
  }
  return TRUE;
}

gboolean
wh_gguf_writer_begin(wh_gguf_writer *w, const char *path, GError **error)
{
  g_return_val_if_fail(!w->begun, FALSE);
  g_return_val_if_fail(path != NULL, FALSE);
  if (!effective_alignment(w, &w->alignment, error))
    return FALSE;
  w->begun = TRUE;
  w->path = g_strdup(path);
  w->tmp_path = g_strdup_printf("%s.XXXXXX.part", path);
  w->fd = g_mkstemp_full(w->tmp_path, O_WRONLY | O_CLOEXEC, 0666);
  if (w->fd < 0) {
    int err = errno;
    g_clear_pointer(&w->tmp_path, g_free);
    return io_fail(w, err, "create a temporary file in its folder", error);
  }
  w->buf = g_malloc(BUF_SIZE);

  GByteArray *h = g_byte_array_new();
  g_byte_array_append(h, (const guint8 *)"GGUF", 4);
  put_u32(h, 3);
  put_u64(h, w->tensors->len);
  put_u64(h, w->kvs->len);
  for (guint i = 0; i < w->kvs->len; i++) {
    const wkv *kv = w->kvs->pdata[i];
    put_str(h, kv->key, strlen(kv->key));
    g_byte_array_append(h, kv->enc->data, kv->enc->len);
  }
  guint64 off = 0;
  for (guint i = 0; i < w->tensors->len; i++) {
    wtensor *t = &g_array_index(w->tensors, wtensor, i);
    put_str(h, t->name, strlen(t->name));
    put_u32(h, t->n_dims);
    for (guint d = 0; d < t->n_dims; d++)
      put_u64(h, t->ne[d]);
    put_u32(h, t->type);
    t->offset = off;
    put_u64(h, off);
    off += align_up(t->n_bytes, w->alignment);
  }
  guint64 pad = w->tensors->len ? align_up(h->len, w->alignment) - h->len : 0;
  gboolean ok =
      write_all(w, h->data, h->len, error) && emit_zeros(w, pad, error) && advance(w, error);
  g_byte_array_unref(h);
  return ok;
}

gboolean
wh_gguf_writer_write(wh_gguf_writer *w, const void *data, gsize size, GError **error)
{
  g_return_val_if_fail(w->begun, FALSE);
  if (w->failed || w->finished || w->fd < 0) {
    g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID,
                "%s: the writer was aborted or finished", w->path);
    return FALSE;
  }
  const guint8 *p = data;
  while (size > 0) {
    if (w->cur >= w->tensors->len) {
      g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID,
                  "%s: %" G_GSIZE_FORMAT " bytes of data past the last tensor", w->path, size);
      wh_gguf_writer_abort(w);
      return FALSE;
    }
    const wtensor *t = &g_array_index(w->tensors, wtensor, w->cur);
    gsize k = (gsize)MIN((guint64)size, t->n_bytes - w->cur_written);
    if (!emit(w, p, k, error))
      return FALSE;
    w->cur_written += k;
    p += k;
    size -= k;
    if (!advance(w, error))
      return FALSE;
  }
  return TRUE;
}

guint64
wh_gguf_writer_current_tensor(const wh_gguf_writer *w)
{
  return w->cur;
}

gboolean
wh_gguf_writer_finish(wh_gguf_writer *w, GError **error)
{
  g_return_val_if_fail(w->begun, FALSE);
  if (w->failed || w->finished || w->fd < 0) {
    g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID,
                "%s: the writer was aborted or finished", w->path);
    return FALSE;
  }
  if (w->cur < w->tensors->len) {
    const wtensor *t = &g_array_index(w->tensors, wtensor, w->cur);
    g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID,
                "%s: tensor '%s' got %" G_GUINT64_FORMAT " of its %" G_GUINT64_FORMAT
                " bytes; the file was not written",
                w->path, t->name, w->cur_written, t->n_bytes);
    wh_gguf_writer_abort(w);
    return FALSE;
  }
  if (!flush_buf(w, error))
    return FALSE;
  if (fsync(w->fd) != 0 && errno != EINVAL && errno != EROFS)
    return io_fail(w, errno, "sync", error);
  int fd = w->fd;
  w->fd = -1;
  if (close(fd) != 0)
    return io_fail(w, errno, "close", error);
  if (g_rename(w->tmp_path, w->path) != 0)
    return io_fail(w, errno, "rename the temporary file into place", error);
  g_clear_pointer(&w->tmp_path, g_free);
  w->finished = TRUE;
  return TRUE;
}

void
wh_gguf_writer_abort(wh_gguf_writer *w)
{
  if (w == NULL || !w->begun || w->finished)
    return;
  w->failed = TRUE;
  if (w->fd >= 0) {
    close(w->fd);
    w->fd = -1;
  }
  if (w->tmp_path) {
    g_unlink(w->tmp_path);
    g_clear_pointer(&w->tmp_path, g_free);
  }
}
