/* gguf.c — the GGUF reader (contract in gguf.h, format in gguf-container.md).
 *
 * Implementation notes
 * --------------------
 * One pass over the mapped bytes with a cursor (struct parser). Every read goes through
 * need(), which checks the bytes left before touching them; all size arithmetic is
 * overflow-checked; counts are bounded by the bytes left before anything is allocated for
 * them. Messages are only formatted on failure, so the success path costs no string work.
 *
 * Values point into the mapping (raw bytes) and, for strings, into NUL-terminated copies:
 * a scalar string gets its own copy, a string array one arena holding all its elements
 * back to back plus an (n+1)-entry offset table (two passes: validate and measure, then
 * copy — O(total bytes)). Numeric arrays are not copied.
 *
 * A split model is a wh_gguf whose `parts` holds one single-file wh_gguf per shard; its
 * metadata tables are borrowed from part 0 and its tensor table is the concatenation.
 */
#include "config.h"

#include "gguf.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

G_DEFINE_QUARK(wh-gguf-error-quark, wh_gguf_error)

#define MAX_STRING_LEN (G_GUINT64_CONSTANT(1) << 30)
#define MAX_ARRAY_LEN (G_GUINT64_CONSTANT(1) << 30)
#define MAX_NESTING 8
#define MIN_KV_BYTES (8 + 1 + 4 + 1)
#define MIN_TENSOR_BYTES (8 + 4 + 4 + 8)

struct wh_gguf_value {
  guint8 type;       /* wh_gguf_value_type */
  guint8 elem_type;  /* arrays: element type */
  const guint8 *raw; /* encoding in the file, after the type tag */
  gsize raw_len;
  union {
    guint64 u;
    gint64 i;
    double f;
    struct {
      const char *s; /* NUL-terminated copy */
      gsize len;
    } str;
    struct {
      guint64 n;
      const guint8 *elems;            /* fixed-size elements in the mapping */
      const char *arena;              /* string arrays: NUL-terminated copies, back to back */
      const guint64 *offsets;         /* string arrays: n + 1 offsets into arena */
      struct wh_gguf_value *children; /* arrays of arrays */
    } arr;
  };
};

struct wh_gguf {
  char *path;
  guint32 version;
  guint32 alignment;
  /* single file */
  GMappedFile *mapped;
  GBytes *bytes;
  const guint8 *base;
  guint64 size;
  guint64 data_start;
  /* split model: one single-file wh_gguf per shard (NULL for a single file) */
  GPtrArray *parts;

  guint64 n_kv;
  char **keys;           /* borrowed from parts[0] for a split model */
  wh_gguf_value *values; /* same */
  GHashTable *key_index; /* key -> index + 1; same */

  guint64 n_tensors;
  wh_gguf_tensor *tensors;
  GHashTable *tensor_index; /* name -> index + 1 */

  GPtrArray *allocs; /* everything else we allocated */
};

/* ------------------------------------------------------------------------------------- */
/* type tables */

static const char *const value_type_names[WH_GGUF_N_VALUE_TYPES] = {
    "UINT8", "INT8",   "UINT16", "INT16",  "UINT32", "INT32",   "FLOAT32",
    "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64",  "FLOAT64",
};
static const guint8 value_type_sizes[WH_GGUF_N_VALUE_TYPES] = {
    1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8,
};

const char *
wh_gguf_value_type_name(wh_gguf_value_type type)
{
  return (guint)type < WH_GGUF_N_VALUE_TYPES ? value_type_names[type] : "?";
}

gsize
wh_gguf_value_type_size(wh_gguf_value_type type)
{
  return (guint)type < WH_GGUF_N_VALUE_TYPES ? value_type_sizes[type] : 0;
}

/* ------------------------------------------------------------------------------------- */
/* little-endian loads (unaligned) */

static inline guint16
ld_u16(const guint8 *p)
{
  guint16 v;
  memcpy(&v, p, 2);
  return GUINT16_FROM_LE(v);
}

static inline guint32
ld_u32(const guint8 *p)
{
  guint32 v;
  memcpy(&v, p, 4);
  return GUINT32_FROM_LE(v);
}

static inline guint64
ld_u64(const guint8 *p)
{
  guint64 v;
  memcpy(&v, p, 8);
  return GUINT64_FROM_LE(v);
}

static inline float
ld_f32(const guint8 *p)
{
  guint32 u = ld_u32(p);
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static inline double
ld_f64(const guint8 *p)
{
  guint64 u = ld_u64(p);
  double f;
  memcpy(&f, &u, 8);
  return f;
}

/* ------------------------------------------------------------------------------------- */
/* the parser */

typedef struct {
  wh_gguf *g;
  const guint8 *base;
  guint64 size;
  guint64 pos;
  const char *name; /* for messages */
  GError **error;
} parser;

static gboolean G_GNUC_PRINTF(4, 5)
    fail(parser *p, guint64 offset, int code, const char *format, ...)
{
  va_list ap;
  va_start(ap, format);
  char *msg = g_strdup_vprintf(format, ap);
  va_end(ap);
  g_set_error(p->error, WH_GGUF_ERROR, code, "%s: at offset %" G_GUINT64_FORMAT ": %s", p->name,
              offset, msg);
  g_free(msg);
  return FALSE;
}

static inline guint64
remaining(const parser *p)
{
  return p->size - p->pos;
}

/* Fails with a "truncated" message naming @what when fewer than @n bytes are left. */
static gboolean
need(parser *p, guint64 n, const char *what, const char *owner)
{
  if (n <= remaining(p))
    return TRUE;
  return fail(p, p->pos, WH_GGUF_ERROR_TRUNCATED,
              "%s%s%s needs %" G_GUINT64_FORMAT " bytes but the file ends after %" G_GUINT64_FORMAT
              " (file size %" G_GUINT64_FORMAT "): the file is truncated or corrupt; download "
              "or convert it again",
              what, owner ? " of " : "", owner ? owner : "", n, remaining(p), p->size);
}

static gpointer
keep(wh_gguf *g, gpointer mem)
{
  g_ptr_array_add(g->allocs, mem);
  return mem;
}

/* Reads a string's length and checks it; on success *len is the length and p->pos is at the
 * first byte. */
static gboolean
read_string_len(parser *p, guint64 *len, const char *what, const char *owner)
{
  if (!need(p, 8, what, owner))
    return FALSE;
  guint64 n = ld_u64(p->base + p->pos);
  if (n > MAX_STRING_LEN)
    return fail(p, p->pos, WH_GGUF_ERROR_CORRUPT,
                "%s%s%s has length %" G_GUINT64_FORMAT ", above the 1 GiB limit: the file is "
                "corrupt",
                what, owner ? " of " : "", owner ? owner : "", n);
  p->pos += 8;
  if (!need(p, n, what, owner))
    return FALSE;
  *len = n;
  return TRUE;
}

static char *
copy_string(wh_gguf *g, const guint8 *src, guint64 len)
{
  char *s = g_malloc(len + 1);
  memcpy(s, src, len);
  s[len] = '\0';
  return keep(g, s);
}

static gboolean parse_value(parser *p, wh_gguf_value *v, guint32 type, guint depth,
                            const char *owner);

/* Array body (after the u32 element type and u64 count were read). */
static gboolean
parse_array_body(parser *p, wh_gguf_value *v, guint32 et, guint64 n, guint depth, const char *owner)
{
  guint64 count_pos = p->pos - 8;
  if (et >= WH_GGUF_N_VALUE_TYPES)
    return fail(p, count_pos - 4, WH_GGUF_ERROR_CORRUPT,
                "array element type %u of %s is not a GGUF value type (0-12): the file is corrupt",
                et, owner);
  if (n > MAX_ARRAY_LEN)
    return fail(p, count_pos, WH_GGUF_ERROR_CORRUPT,
                "array of %s has %" G_GUINT64_FORMAT " elements, above the 2^30 limit: the file "
                "is corrupt",
                owner, n);
  v->elem_type = (guint8)et;
  v->arr.n = n;
  guint64 min_elem = et == WH_GGUF_STRING ? 8 : et == WH_GGUF_ARRAY ? 12 : value_type_sizes[et];
  if (n * min_elem > remaining(p))
    return fail(p, count_pos, WH_GGUF_ERROR_TRUNCATED,
                "array of %s declares %" G_GUINT64_FORMAT
                " %s elements (at least %" G_GUINT64_FORMAT " bytes) but only %" G_GUINT64_FORMAT
                " bytes are left: the file is truncated or "
                "corrupt",
                owner, n, value_type_names[et], n * min_elem, remaining(p));

  if (et == WH_GGUF_STRING) {
    /* pass 1: validate and measure */
    guint64 start = p->pos, total = 0;
    for (guint64 i = 0; i < n; i++) {
      guint64 len;
      if (!need(p, 8, "string length in array", owner))
        return FALSE;
      len = ld_u64(p->base + p->pos);
      if (len > MAX_STRING_LEN || len > remaining(p) - 8)
        return fail(p, p->pos,
                    len > MAX_STRING_LEN ? WH_GGUF_ERROR_CORRUPT : WH_GGUF_ERROR_TRUNCATED,
                    "string %" G_GUINT64_FORMAT " of array %s has length %" G_GUINT64_FORMAT
                    " but only %" G_GUINT64_FORMAT " bytes are left: the file is truncated or "
                    "corrupt",
                    i, owner, len, remaining(p) - 8);
      p->pos += 8 + len;
      total += len + 1;
    }
    /* pass 2: copy into one arena; total <= file size + n, n <= file size / 8 */
    char *arena = keep(p->g, g_malloc(total ? total : 1));
    guint64 *offsets = keep(p->g, g_new(guint64, n + 1));
    const guint8 *q = p->base + start;
    guint64 o = 0;
    for (guint64 i = 0; i < n; i++) {
      guint64 len = ld_u64(q);
      offsets[i] = o;
      memcpy(arena + o, q + 8, len);
      arena[o + len] = '\0';
      o += len + 1;
      q += 8 + len;
    }
    offsets[n] = o;
    v->arr.arena = arena;
    v->arr.offsets = offsets;
  } else if (et == WH_GGUF_ARRAY) {
    if (depth >= MAX_NESTING)
      return fail(p, count_pos, WH_GGUF_ERROR_CORRUPT,
                  "arrays in %s are nested more than %d deep: the file is corrupt", owner,
                  MAX_NESTING);
    wh_gguf_value *children = keep(p->g, g_new0(wh_gguf_value, n ? n : 1));
    for (guint64 i = 0; i < n; i++)
      if (!parse_value(p, &children[i], WH_GGUF_ARRAY, depth + 1, owner))
        return FALSE;
    v->arr.children = children;
  } else {
    v->arr.elems = p->base + p->pos;
    p->pos += n * min_elem;
  }
  return TRUE;
}

/* A value of @type at p->pos (no type tag). */
static gboolean
parse_value(parser *p, wh_gguf_value *v, guint32 type, guint depth, const char *owner)
{
  guint64 start = p->pos;
  v->type = (guint8)type;
  switch (type) {
  case WH_GGUF_UINT8:
  case WH_GGUF_INT8:
  case WH_GGUF_UINT16:
  case WH_GGUF_INT16:
  case WH_GGUF_UINT32:
  case WH_GGUF_INT32:
  case WH_GGUF_FLOAT32:
  case WH_GGUF_BOOL:
  case WH_GGUF_UINT64:
  case WH_GGUF_INT64:
  case WH_GGUF_FLOAT64: {
    gsize sz = value_type_sizes[type];
    if (!need(p, sz, "value", owner))
      return FALSE;
    const guint8 *q = p->base + p->pos;
    switch (type) {
    case WH_GGUF_UINT8:
      v->u = q[0];
      break;
    case WH_GGUF_INT8:
      v->i = (gint8)q[0];
      break;
    case WH_GGUF_UINT16:
      v->u = ld_u16(q);
      break;
    case WH_GGUF_INT16:
      v->i = (gint16)ld_u16(q);
      break;
    case WH_GGUF_UINT32:
      v->u = ld_u32(q);
      break;
    case WH_GGUF_INT32:
      v->i = (gint32)ld_u32(q);
      break;
    case WH_GGUF_FLOAT32:
      v->f = ld_f32(q);
      break;
    case WH_GGUF_BOOL:
      v->u = q[0] != 0;
      break;
    case WH_GGUF_UINT64:
      v->u = ld_u64(q);
      break;
    case WH_GGUF_INT64:
      v->i = (gint64)ld_u64(q);
      break;
    default:
      v->f = ld_f64(q);
      break;
    }
    p->pos += sz;
    break;
  }
  case WH_GGUF_STRING: {
    guint64 len;
    if (!read_string_len(p, &len, "string value", owner))
      return FALSE;
    v->str.s = copy_string(p->g, p->base + p->pos, len);
    v->str.len = len;
    p->pos += len;
    break;
  }
  case WH_GGUF_ARRAY: {
    if (!need(p, 12, "array header", owner))
      return FALSE;
    guint32 et = ld_u32(p->base + p->pos);
    guint64 n = ld_u64(p->base + p->pos + 4);
    p->pos += 12;
    if (!parse_array_body(p, v, et, n, depth, owner))
      return FALSE;
    break;
  }
  default:
    return fail(p, p->pos - 4, WH_GGUF_ERROR_CORRUPT,
                "value type %u of %s is not a GGUF value type (0-12): the file is corrupt", type,
                owner);
  }
  v->raw = p->base + start;
  v->raw_len = p->pos - start;
  return TRUE;
}

static guint64
align_up(guint64 x, guint64 a)
{
  return (x + a - 1) / a * a;
}

static gboolean
parse_file(wh_gguf *g, GError **error)
{
  parser pp = {g, g->base, g->size, 0, g->path, error};
  parser *p = &pp;

  /* header */
  if (g->size < 4 || memcmp(g->base, "GGUF", 4) != 0)
    return fail(p, 0, WH_GGUF_ERROR_NOT_GGUF, "not a GGUF file (the first bytes are not \"GGUF\")");
  if (!need(p, 24, "header", NULL))
    return FALSE;
  guint32 version = ld_u32(g->base + 4);
  if ((version & 0xFFFF) == 0 && version != 0)
    return fail(p, 4, WH_GGUF_ERROR_VERSION,
                "version field 0x%08x means the file was written with the other byte order "
                "(endianness mismatch); use a little-endian GGUF",
                version);
  if (version < 2 || version > 3)
    return fail(p, 4, WH_GGUF_ERROR_VERSION, "GGUF version %u is not supported (only 2 and 3); %s",
                version,
                version < 2 ? "convert the model again with a current tool"
                            : "this file needs a newer Whittle");
  g->version = version;
  guint64 n_tensors = ld_u64(g->base + 8);
  guint64 n_kv = ld_u64(g->base + 16);
  p->pos = 24;
  if (n_tensors > (guint64)G_MAXINT64 || n_tensors > remaining(p) / MIN_TENSOR_BYTES)
    return fail(p, 8, WH_GGUF_ERROR_CORRUPT,
                "tensor count %" G_GUINT64_FORMAT " cannot fit in a file of %" G_GUINT64_FORMAT
                " bytes: the file is corrupt or truncated",
                n_tensors, g->size);
  if (n_kv > (guint64)G_MAXINT64 || n_kv > remaining(p) / MIN_KV_BYTES)
    return fail(p, 16, WH_GGUF_ERROR_CORRUPT,
                "metadata key count %" G_GUINT64_FORMAT
                " cannot fit in a file of %" G_GUINT64_FORMAT
                " bytes: the file is corrupt or truncated",
                n_kv, g->size);

  /* key/value records */
  g->n_kv = n_kv;
  g->keys = keep(g, g_new0(char *, n_kv ? n_kv : 1));
  g->values = keep(g, g_new0(wh_gguf_value, n_kv ? n_kv : 1));
  g->key_index = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint64 i = 0; i < n_kv; i++) {
    guint64 rec = p->pos, len;
    char owner[48];
    g_snprintf(owner, sizeof owner, "metadata key #%" G_GUINT64_FORMAT, i);
    if (!read_string_len(p, &len, "key", owner))
      return FALSE;
    if (len == 0)
      return fail(p, rec, WH_GGUF_ERROR_CORRUPT, "%s is empty: the file is corrupt", owner);
    if (memchr(p->base + p->pos, 0, len) != NULL)
      return fail(p, rec, WH_GGUF_ERROR_CORRUPT, "%s contains a NUL byte: the file is corrupt",
                  owner);
    char *key = copy_string(g, p->base + p->pos, len);
    p->pos += len;
    if (g_hash_table_contains(g->key_index, key))
      return fail(p, rec, WH_GGUF_ERROR_CORRUPT,
                  "metadata key '%s' occurs twice: the file is corrupt", key);
    g->keys[i] = key;
    g_hash_table_insert(g->key_index, key, GSIZE_TO_POINTER((gsize)i + 1));
    if (!need(p, 4, "value type", key))
      return FALSE;
    guint32 type = ld_u32(p->base + p->pos);
    p->pos += 4;
    if (!parse_value(p, &g->values[i], type, 0, key))
      return FALSE;
  }

  /* alignment */
  g->alignment = WH_GGUF_DEFAULT_ALIGNMENT;
  gpointer ai = g_hash_table_lookup(g->key_index, "general.alignment");
  if (ai) {
    const wh_gguf_value *v = &g->values[GPOINTER_TO_SIZE(ai) - 1];
    if (v->type != WH_GGUF_UINT32)
      return fail(p, (guint64)(v->raw - g->base), WH_GGUF_ERROR_CORRUPT,
                  "general.alignment has type %s; it must be UINT32: the file is corrupt",
                  value_type_names[v->type]);
    if (v->u == 0 || (v->u & (v->u - 1)) != 0)
      return fail(p, (guint64)(v->raw - g->base), WH_GGUF_ERROR_CORRUPT,
                  "general.alignment is %" G_GUINT64_FORMAT ", not a power of two: the file is "
                  "corrupt",
                  v->u);
    g->alignment = (guint32)v->u;
  }

  /* tensor directory; offsets must be the running sum of the padded sizes */
  guint64 expect = 0;
  g->n_tensors = n_tensors;
  g->tensors = keep(g, g_new0(wh_gguf_tensor, n_tensors ? n_tensors : 1));
  g->tensor_index = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint64 i = 0; i < n_tensors; i++) {
    wh_gguf_tensor *t = &g->tensors[i];
    guint64 rec = p->pos, len;
    char owner[48];
    g_snprintf(owner, sizeof owner, "tensor #%" G_GUINT64_FORMAT, i);
    if (!read_string_len(p, &len, "name", owner))
      return FALSE;
    if (len > WH_GGUF_MAX_NAME)
      return fail(p, rec, WH_GGUF_ERROR_CORRUPT,
                  "the name of %s is %" G_GUINT64_FORMAT " bytes long (at most 63 allowed)", owner,
                  len);
    if (memchr(p->base + p->pos, 0, len) != NULL)
      return fail(p, rec, WH_GGUF_ERROR_CORRUPT, "the name of %s contains a NUL byte", owner);
    t->name = copy_string(g, p->base + p->pos, len);
    p->pos += len;
    if (g_hash_table_contains(g->tensor_index, t->name))
      return fail(p, rec, WH_GGUF_ERROR_CORRUPT,
                  "tensor name '%s' occurs twice: the file is corrupt", t->name);
    g_hash_table_insert(g->tensor_index, (gpointer)t->name, GSIZE_TO_POINTER((gsize)i + 1));
    if (!need(p, 4, "dimension count", t->name))
      return FALSE;
    t->n_dims = ld_u32(p->base + p->pos);
    if (t->n_dims > 4)
      return fail(p, p->pos, WH_GGUF_ERROR_CORRUPT,
                  "tensor '%s' has %u dimensions (at most 4): the file is corrupt", t->name,
                  t->n_dims);
    p->pos += 4;
    if (!need(p, 8 * (guint64)t->n_dims + 12, "shape, type and offset", t->name))
      return FALSE;
    guint64 nel = 1;
    for (guint d = 0; d < 4; d++) {
      guint64 ne = 1;
      if (d < t->n_dims) {
        ne = ld_u64(p->base + p->pos);
        if (ne > (guint64)G_MAXINT64)
          return fail(p, p->pos, WH_GGUF_ERROR_CORRUPT,
                      "dimension %u of tensor '%s' is negative: the file is corrupt", d, t->name);
        p->pos += 8;
      }
      if (ne != 0 && nel > (guint64)G_MAXINT64 / ne)
        return fail(p, p->pos - 8, WH_GGUF_ERROR_CORRUPT,
                    "the element count of tensor '%s' overflows: the file is corrupt", t->name);
      t->ne[d] = ne;
      nel *= ne;
    }
    t->n_elements = nel;
    guint32 type = ld_u32(p->base + p->pos);
    const wh_type_traits *tr = wh_type_get_traits((wh_type)type);
    if (tr == NULL)
      return fail(p, p->pos, WH_GGUF_ERROR_CORRUPT, "tensor '%s' has type id %d, which is %s",
                  t->name, (gint32)type,
                  (type >= 4 && type < WH_TYPE_COUNT)
                      ? "a removed type (re-convert the model with a current tool)"
                      : "unknown (corrupt file, or it needs a newer Whittle)");
    t->type = (wh_type)type;
    if (t->ne[0] % tr->block_size != 0)
      return fail(p, p->pos, WH_GGUF_ERROR_CORRUPT,
                  "tensor '%s': row length %" G_GUINT64_FORMAT " is not a multiple of the %s "
                  "block size %u",
                  t->name, t->ne[0], tr->name, tr->block_size);
    p->pos += 4;
    /* nel <= INT64_MAX and type_size/block_size <= 36 / 1 so do it in two checked steps */
    guint64 row = wh_type_row_size(t->type, t->ne[0]);
    guint64 rows = t->ne[0] ? nel / t->ne[0] : 0;
    if (t->ne[0] != 0 && rows != 0 && row > G_MAXUINT64 / rows)
      return fail(p, p->pos - 4, WH_GGUF_ERROR_CORRUPT,
                  "the byte size of tensor '%s' overflows: the file is corrupt", t->name);
    t->n_bytes = row * rows;
    if (t->n_bytes > G_MAXSIZE)
      return fail(p, p->pos - 4, WH_GGUF_ERROR_CORRUPT,
                  "tensor '%s' is too large for this machine's address space", t->name);
    t->offset = ld_u64(p->base + p->pos);
    if (t->offset != expect)
      return fail(p, p->pos, WH_GGUF_ERROR_CORRUPT,
                  "tensor '%s' has data offset %" G_GUINT64_FORMAT " but %" G_GUINT64_FORMAT
                  " was expected (tensors must be packed in order at %u-byte alignment): the "
                  "file is corrupt",
                  t->name, t->offset, expect, g->alignment);
    p->pos += 8;
    /* the running sum stays below 2^63 + 2^32: n_bytes is checked against the file below,
     * but bound it here already so the sum cannot wrap */
    if (t->n_bytes > G_MAXINT64 || expect > G_MAXINT64 - align_up(t->n_bytes, g->alignment))
      return fail(p, p->pos - 8, WH_GGUF_ERROR_CORRUPT,
                  "the data of tensor '%s' is too large: the file is corrupt", t->name);
    expect += align_up(t->n_bytes, g->alignment);
  }

  /* data section: packed, aligned, in bounds */
  guint64 end_info = p->pos;
  if (end_info > G_MAXUINT64 - g->alignment)
    return fail(p, end_info, WH_GGUF_ERROR_CORRUPT, "directory end overflows");
  g->data_start = align_up(end_info, g->alignment);
  for (guint64 i = 0; i < n_tensors; i++) {
    wh_gguf_tensor *t = &g->tensors[i];
    if (t->offset > g->size || g->data_start > g->size - t->offset ||
        t->n_bytes > g->size - t->offset - g->data_start)
      return fail(p, end_info, WH_GGUF_ERROR_TRUNCATED,
                  "the data of tensor '%s' (%" G_GUINT64_FORMAT " bytes at %" G_GUINT64_FORMAT
                  ") is not within the file (size %" G_GUINT64_FORMAT "): the file is truncated; "
                  "download it again",
                  t->name, t->n_bytes, g->data_start + t->offset, g->size);
    t->data = g->base + g->data_start + t->offset;
  }
  return TRUE;
}

static wh_gguf *
gguf_new(const char *path)
{
  wh_gguf *g = g_new0(wh_gguf, 1);
  g->path = g_strdup(path ? path : "(memory)");
  g->allocs = g_ptr_array_new_with_free_func(g_free);
  return g;
}

void
wh_gguf_close(wh_gguf *g)
{
  if (g == NULL)
    return;
  if (g->parts) {
    g_ptr_array_unref(g->parts); /* owns the shards, whose tables we borrowed */
  } else if (g->key_index) {
    g_hash_table_unref(g->key_index);
  }
  if (g->tensor_index)
    g_hash_table_unref(g->tensor_index);
  if (g->mapped)
    g_mapped_file_unref(g->mapped);
  if (g->bytes)
    g_bytes_unref(g->bytes);
  g_ptr_array_unref(g->allocs);
  g_free(g->path);
  g_free(g);
}

static wh_gguf *
open_single(const char *path, GError **error)
{
  GError *local = NULL;
  GMappedFile *mf = g_mapped_file_new(path, FALSE, &local);
  if (mf == NULL) {
    g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_IO, "%s", local->message);
    g_error_free(local);
    return NULL;
  }
  wh_gguf *g = gguf_new(path);
  g->mapped = mf;
  g->base = (const guint8 *)g_mapped_file_get_contents(mf);
  g->size = g_mapped_file_get_length(mf);
  if (!parse_file(g, error)) {
    wh_gguf_close(g);
    return NULL;
  }
  return g;
}

wh_gguf *
wh_gguf_open_bytes(GBytes *bytes, const char *name, GError **error)
{
  g_return_val_if_fail(bytes != NULL, NULL);
  wh_gguf *g = gguf_new(name);
  g->bytes = g_bytes_ref(bytes);
  gsize size;
  g->base = g_bytes_get_data(bytes, &size);
  g->size = size;
  if (!parse_file(g, error)) {
    wh_gguf_close(g);
    return NULL;
  }
  return g;
}

/* ------------------------------------------------------------------------------------- */
/* split models */

char *
wh_gguf_split_path(const char *prefix, guint index, guint count)
{
  return g_strdup_printf("%s-%05u-of-%05u.gguf", prefix, index + 1, count);
}

gboolean
wh_gguf_split_parse(const char *path, char **prefix, guint *index, guint *count)
{
  /* "-NNNNN-of-MMMMM.gguf" is 20 bytes */
  gsize len = path ? strlen(path) : 0;
  if (len < 20)
    return FALSE;
  const char *s = path + len - 20;
  if (s[0] != '-' || memcmp(s + 6, "-of-", 4) != 0 || memcmp(s + 15, ".gguf", 5) != 0)
    return FALSE;
  guint a = 0, b = 0;
  for (int i = 1; i <= 5; i++) {
    if (!g_ascii_isdigit(s[i]) || !g_ascii_isdigit(s[i + 9]))
      return FALSE;
    a = a * 10 + (guint)(s[i] - '0');
    b = b * 10 + (guint)(s[i + 9] - '0');
  }
  if (a < 1 || b < 1 || a > b)
    return FALSE;
  if (prefix)
    *prefix = g_strndup(path, len - 20);
  if (index)
    *index = a - 1;
  if (count)
    *count = b;
  return TRUE;
}

static gboolean split_fail(GError **error, const char *path, const char *format, ...)
    G_GNUC_PRINTF(3, 4);

static gboolean
split_fail(GError **error, const char *path, const char *format, ...)
{
  va_list ap;
  va_start(ap, format);
  char *msg = g_strdup_vprintf(format, ap);
  va_end(ap);
  g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_SPLIT, "%s: %s", path, msg);
  g_free(msg);
  return FALSE;
}

static wh_gguf *
open_split(wh_gguf *first_opened, guint count, GError **error)
{
  char *prefix = NULL;
  guint index = 0, name_count = 0;
  const char *path = first_opened->path;
  if (!wh_gguf_split_parse(path, &prefix, &index, &name_count)) {
    split_fail(error, path,
               "the file is shard of a split model (split.count = %u) but its name does not end "
               "in -NNNNN-of-MMMMM.gguf; rename the shards as they were published",
               count);
    wh_gguf_close(first_opened);
    return NULL;
  }
  if (name_count != count) {
    split_fail(error, path, "the name says %u shards but split.count is %u", name_count, count);
    wh_gguf_close(first_opened);
    g_free(prefix);
    return NULL;
  }

  wh_gguf *g = gguf_new(NULL);
  g->parts = g_ptr_array_new_with_free_func((GDestroyNotify)wh_gguf_close);
  gboolean ok = TRUE;
  for (guint i = 0; i < count && ok; i++) {
    wh_gguf *part;
    if (i == index) {
      part = first_opened;
      first_opened = NULL;
    } else {
      char *sp = wh_gguf_split_path(prefix, i, count);
      GError *local = NULL;
      part = open_single(sp, &local);
      if (part == NULL) {
        split_fail(error, path, "cannot open shard %u of %u: %s", i + 1, count, local->message);
        g_error_free(local);
        g_free(sp);
        ok = FALSE;
        break;
      }
      g_free(sp);
    }
    g_ptr_array_add(g->parts, part);
    guint64 no = G_MAXUINT64;
    if (!wh_gguf_get_uint(part, "split.no", &no) || no != i)
      ok = split_fail(error, part->path, "shard %u of %u does not carry split.no = %u", i + 1,
                      count, i);
  }
  wh_gguf_close(first_opened);
  g_free(prefix);
  if (!ok) {
    wh_gguf_close(g);
    return NULL;
  }

  wh_gguf *p0 = g->parts->pdata[0];
  g_free(g->path);
  g->path = g_strdup(p0->path);
  g->version = p0->version;
  g->alignment = p0->alignment;
  g->n_kv = p0->n_kv;
  g->keys = p0->keys;
  g->values = p0->values;
  g->key_index = p0->key_index;

  guint64 total = 0;
  for (guint i = 0; i < count; i++)
    total += ((wh_gguf *)g->parts->pdata[i])->n_tensors;
  g->tensors = keep(g, g_new0(wh_gguf_tensor, total ? total : 1));
  g->tensor_index = g_hash_table_new(g_str_hash, g_str_equal);
  guint64 k = 0;
  for (guint i = 0; i < count; i++) {
    wh_gguf *part = g->parts->pdata[i];
    for (guint64 j = 0; j < part->n_tensors; j++, k++) {
      g->tensors[k] = part->tensors[j];
      g->tensors[k].split_index = i;
      if (g_hash_table_contains(g->tensor_index, g->tensors[k].name)) {
        split_fail(error, part->path, "tensor '%s' occurs in two shards", g->tensors[k].name);
        wh_gguf_close(g);
        return NULL;
      }
      g_hash_table_insert(g->tensor_index, (gpointer)g->tensors[k].name,
                          GSIZE_TO_POINTER((gsize)k + 1));
    }
  }
  g->n_tensors = total;
  gint64 declared;
  if (wh_gguf_get_int(g, "split.tensors.count", &declared) && (guint64)declared != total) {
    split_fail(error, g->path,
               "split.tensors.count is %" G_GINT64_FORMAT " but the shards hold %" G_GUINT64_FORMAT
               " tensors",
               declared, total);
    wh_gguf_close(g);
    return NULL;
  }
  return g;
}

wh_gguf *
wh_gguf_open_full(const char *path, wh_gguf_open_flags flags, GError **error)
{
  g_return_val_if_fail(path != NULL, NULL);
  wh_gguf *g = open_single(path, error);
  if (g == NULL || (flags & WH_GGUF_OPEN_NO_SPLITS))
    return g;
  guint64 count = 0;
  if (!wh_gguf_get_uint(g, "split.count", &count) || count <= 1)
    return g;
  if (count > 99999) {
    split_fail(error, path, "split.count %" G_GUINT64_FORMAT " is not a valid shard count", count);
    wh_gguf_close(g);
    return NULL;
  }
  return open_split(g, (guint)count, error);
}

wh_gguf *
wh_gguf_open(const char *path, GError **error)
{
  return wh_gguf_open_full(path, WH_GGUF_OPEN_DEFAULT, error);
}

/* ------------------------------------------------------------------------------------- */
/* file facts */

static const wh_gguf *
part_of(const wh_gguf *g, guint split)
{
  if (g->parts)
    return split < g->parts->len ? g->parts->pdata[split] : NULL;
  return split == 0 ? g : NULL;
}

const char *
wh_gguf_path(const wh_gguf *g)
{
  return g->path;
}

guint32
wh_gguf_version(const wh_gguf *g)
{
  return g->version;
}

guint32
wh_gguf_alignment(const wh_gguf *g)
{
  return g->alignment;
}

guint
wh_gguf_n_splits(const wh_gguf *g)
{
  return g->parts ? g->parts->len : 1;
}

guint64
wh_gguf_data_offset(const wh_gguf *g, guint split)
{
  const wh_gguf *p = part_of(g, split);
  return p ? p->data_start : 0;
}

guint64
wh_gguf_file_size(const wh_gguf *g, guint split)
{
  const wh_gguf *p = part_of(g, split);
  return p ? p->size : 0;
}

guint64
wh_gguf_total_size(const wh_gguf *g)
{
  guint64 s = 0;
  for (guint i = 0; i < wh_gguf_n_splits(g); i++)
    s += wh_gguf_file_size(g, i);
  return s;
}

/* ------------------------------------------------------------------------------------- */
/* tensors */

guint64
wh_gguf_n_tensors(const wh_gguf *g)
{
  return g->n_tensors;
}

const wh_gguf_tensor *
wh_gguf_get_tensor(const wh_gguf *g, guint64 i)
{
  return i < g->n_tensors ? &g->tensors[i] : NULL;
}

gint64
wh_gguf_find_tensor_index(const wh_gguf *g, const char *name)
{
  gpointer v = name ? g_hash_table_lookup(g->tensor_index, name) : NULL;
  return v ? (gint64)GPOINTER_TO_SIZE(v) - 1 : -1;
}

const wh_gguf_tensor *
wh_gguf_find_tensor(const wh_gguf *g, const char *name)
{
  gint64 i = wh_gguf_find_tensor_index(g, name);
  return i >= 0 ? &g->tensors[i] : NULL;
}

void
wh_gguf_tensor_release(const wh_gguf *g, const wh_gguf_tensor *t)
{
  const wh_gguf *p = part_of(g, t->split_index);
  if (p == NULL || p->mapped == NULL || t->n_bytes == 0)
    return;
  /* only whole pages inside the tensor: neighbours may still be in use */
  guintptr page = (guintptr)sysconf(_SC_PAGESIZE);
  guintptr start = ((guintptr)t->data + page - 1) / page * page;
  guintptr end = ((guintptr)t->data + t->n_bytes) / page * page;
  if (end > start)
    madvise((void *)start, end - start, MADV_DONTNEED);
}

/* ------------------------------------------------------------------------------------- */
/* metadata */

guint64
wh_gguf_n_kv(const wh_gguf *g)
{
  return g->n_kv;
}

const char *
wh_gguf_kv_key(const wh_gguf *g, guint64 i)
{
  return i < g->n_kv ? g->keys[i] : NULL;
}

wh_gguf_value_type
wh_gguf_kv_type(const wh_gguf *g, guint64 i)
{
  return i < g->n_kv ? (wh_gguf_value_type)g->values[i].type : WH_GGUF_N_VALUE_TYPES;
}

const wh_gguf_value *
wh_gguf_kv_value(const wh_gguf *g, guint64 i)
{
  return i < g->n_kv ? &g->values[i] : NULL;
}

gint64
wh_gguf_find_key(const wh_gguf *g, const char *key)
{
  gpointer v = key ? g_hash_table_lookup(g->key_index, key) : NULL;
  return v ? (gint64)GPOINTER_TO_SIZE(v) - 1 : -1;
}

const wh_gguf_value *
wh_gguf_find_value(const wh_gguf *g, const char *key)
{
  gint64 i = wh_gguf_find_key(g, key);
  return i >= 0 ? &g->values[i] : NULL;
}

static gboolean
is_signed_int(guint t)
{
  return t == WH_GGUF_INT8 || t == WH_GGUF_INT16 || t == WH_GGUF_INT32 || t == WH_GGUF_INT64;
}

static gboolean
is_unsigned_int(guint t)
{
  return t == WH_GGUF_UINT8 || t == WH_GGUF_UINT16 || t == WH_GGUF_UINT32 || t == WH_GGUF_UINT64;
}

wh_gguf_value_type
wh_gguf_value_get_type(const wh_gguf_value *v)
{
  return v ? (wh_gguf_value_type)v->type : WH_GGUF_N_VALUE_TYPES;
}

gboolean
wh_gguf_value_get_uint(const wh_gguf_value *v, guint64 *out)
{
  if (v == NULL)
    return FALSE;
  if (is_unsigned_int(v->type)) {
    *out = v->u;
    return TRUE;
  }
  if (is_signed_int(v->type) && v->i >= 0) {
    *out = (guint64)v->i;
    return TRUE;
  }
  return FALSE;
}

gboolean
wh_gguf_value_get_int(const wh_gguf_value *v, gint64 *out)
{
  if (v == NULL)
    return FALSE;
  if (is_signed_int(v->type)) {
    *out = v->i;
    return TRUE;
  }
  if (is_unsigned_int(v->type) && v->u <= (guint64)G_MAXINT64) {
    *out = (gint64)v->u;
    return TRUE;
  }
  return FALSE;
}

gboolean
wh_gguf_value_get_float(const wh_gguf_value *v, double *out)
{
  if (v == NULL)
    return FALSE;
  if (v->type == WH_GGUF_FLOAT32 || v->type == WH_GGUF_FLOAT64)
    *out = v->f;
  else if (is_signed_int(v->type))
    *out = (double)v->i;
  else if (is_unsigned_int(v->type))
    *out = (double)v->u;
  else
    return FALSE;
  return TRUE;
}

gboolean
wh_gguf_value_get_bool(const wh_gguf_value *v, gboolean *out)
{
  if (v == NULL || v->type != WH_GGUF_BOOL)
    return FALSE;
  *out = v->u != 0;
  return TRUE;
}

const char *
wh_gguf_value_get_string(const wh_gguf_value *v, gsize *len)
{
  if (v == NULL || v->type != WH_GGUF_STRING)
    return NULL;
  if (len)
    *len = v->str.len;
  return v->str.s;
}

gboolean
wh_gguf_value_get_array(const wh_gguf_value *v, wh_gguf_array *out)
{
  if (v == NULL || v->type != WH_GGUF_ARRAY)
    return FALSE;
  out->type = (wh_gguf_value_type)v->elem_type;
  out->n = v->arr.n;
  out->data = v;
  out->raw = v->arr.elems;
  return TRUE;
}

const guint8 *
wh_gguf_value_get_raw(const wh_gguf_value *v, gsize *len)
{
  if (v == NULL)
    return NULL;
  if (len)
    *len = v->raw_len;
  return v->raw;
}

gboolean
wh_gguf_get_uint(const wh_gguf *g, const char *key, guint64 *out)
{
  return wh_gguf_value_get_uint(wh_gguf_find_value(g, key), out);
}

gboolean
wh_gguf_get_int(const wh_gguf *g, const char *key, gint64 *out)
{
  return wh_gguf_value_get_int(wh_gguf_find_value(g, key), out);
}

gboolean
wh_gguf_get_float(const wh_gguf *g, const char *key, double *out)
{
  return wh_gguf_value_get_float(wh_gguf_find_value(g, key), out);
}

gboolean
wh_gguf_get_bool(const wh_gguf *g, const char *key, gboolean *out)
{
  return wh_gguf_value_get_bool(wh_gguf_find_value(g, key), out);
}

const char *
wh_gguf_get_string(const wh_gguf *g, const char *key)
{
  return wh_gguf_value_get_string(wh_gguf_find_value(g, key), NULL);
}

gboolean
wh_gguf_get_array(const wh_gguf *g, const char *key, wh_gguf_array *out)
{
  return wh_gguf_value_get_array(wh_gguf_find_value(g, key), out);
}

const char *
wh_gguf_get_architecture(const wh_gguf *g)
{
  return wh_gguf_get_string(g, "general.architecture");
}

/* ------------------------------------------------------------------------------------- */
/* array elements */

const char *
wh_gguf_array_get_string(const wh_gguf_array *a, guint64 i, gsize *len)
{
  const wh_gguf_value *v = a ? a->data : NULL;
  if (v == NULL || v->elem_type != WH_GGUF_STRING || i >= v->arr.n)
    return NULL;
  if (len)
    *len = v->arr.offsets[i + 1] - v->arr.offsets[i] - 1;
  return v->arr.arena + v->arr.offsets[i];
}

gint64
wh_gguf_array_get_int(const wh_gguf_array *a, guint64 i)
{
  const wh_gguf_value *v = a ? a->data : NULL;
  if (v == NULL || i >= v->arr.n)
    return 0;
  const guint8 *q = v->arr.elems;
  switch (v->elem_type) {
  case WH_GGUF_UINT8:
    return q[i];
  case WH_GGUF_INT8:
    return (gint8)q[i];
  case WH_GGUF_BOOL:
    return q[i] != 0;
  case WH_GGUF_UINT16:
    return ld_u16(q + 2 * i);
  case WH_GGUF_INT16:
    return (gint16)ld_u16(q + 2 * i);
  case WH_GGUF_UINT32:
    return ld_u32(q + 4 * i);
  case WH_GGUF_INT32:
    return (gint32)ld_u32(q + 4 * i);
  case WH_GGUF_UINT64:
  case WH_GGUF_INT64:
    return (gint64)ld_u64(q + 8 * i);
  default:
    return 0;
  }
}

double
wh_gguf_array_get_float(const wh_gguf_array *a, guint64 i)
{
  const wh_gguf_value *v = a ? a->data : NULL;
  if (v == NULL || i >= v->arr.n)
    return 0.0;
  switch (v->elem_type) {
  case WH_GGUF_FLOAT32:
    return ld_f32(v->arr.elems + 4 * i);
  case WH_GGUF_FLOAT64:
    return ld_f64(v->arr.elems + 8 * i);
  case WH_GGUF_UINT64:
    return (double)ld_u64(v->arr.elems + 8 * i);
  case WH_GGUF_STRING:
  case WH_GGUF_ARRAY:
    return 0.0;
  default:
    return (double)wh_gguf_array_get_int(a, i);
  }
}

gboolean
wh_gguf_array_get_array(const wh_gguf_array *a, guint64 i, wh_gguf_array *out)
{
  const wh_gguf_value *v = a ? a->data : NULL;
  if (v == NULL || v->elem_type != WH_GGUF_ARRAY || i >= v->arr.n)
    return FALSE;
  return wh_gguf_value_get_array(&v->arr.children[i], out);
}
