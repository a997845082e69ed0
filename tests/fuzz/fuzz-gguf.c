/* fuzz-gguf.c — the GGUF reader on arbitrary bytes: open, then touch every key, value, array
 * element and tensor byte range it hands out. */
#include "config.h"

#include "fuzz-main.h"
#include "gguf/gguf-writer.h"
#include "gguf/gguf.h"
#include "wh-test-util.h"

#include <string.h>

static guint64 sink;

static void
touch_array(const wh_gguf_array *a, guint depth)
{
  for (guint64 i = 0; i < a->n; i++) {
    if (a->type == WH_GGUF_STRING) {
      gsize len;
      const char *s = wh_gguf_array_get_string(a, i, &len);
      sink += len + (guint8)s[len] + (len ? (guint8)s[0] : 0);
    } else if (a->type == WH_GGUF_ARRAY) {
      wh_gguf_array inner;
      if (wh_gguf_array_get_array(a, i, &inner) && depth < 16)
        touch_array(&inner, depth + 1);
    } else {
      sink += (guint64)wh_gguf_array_get_int(a, i) + (guint64)wh_gguf_array_get_float(a, i);
    }
  }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  GBytes *bytes = g_bytes_new_static(data, size);
  GError *error = NULL;
  wh_gguf *g = wh_gguf_open_bytes(bytes, "fuzz.gguf", &error);
  g_bytes_unref(bytes);
  if (g == NULL) {
    g_assert_nonnull(error);
    g_assert_true(error->message[0] != '\0');
    g_error_free(error);
    return 0;
  }
  for (guint64 i = 0; i < wh_gguf_n_kv(g); i++) {
    const char *key = wh_gguf_kv_key(g, i);
    g_assert_cmpint(wh_gguf_find_key(g, key), ==, (gint64)i);
    const wh_gguf_value *v = wh_gguf_kv_value(g, i);
    gsize raw_len;
    const guint8 *raw = wh_gguf_value_get_raw(v, &raw_len);
    g_assert_true(raw >= data && raw + raw_len <= data + size);
    guint64 u;
    gint64 s;
    double f;
    gboolean b;
    sink += wh_gguf_value_get_uint(v, &u) + wh_gguf_value_get_int(v, &s) +
            wh_gguf_value_get_float(v, &f) + wh_gguf_value_get_bool(v, &b);
    const char *str = wh_gguf_value_get_string(v, &raw_len);
    if (str)
      sink += (guint8)str[raw_len];
    wh_gguf_array a;
    if (wh_gguf_value_get_array(v, &a))
      touch_array(&a, 0);
  }
  for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) {
    const wh_gguf_tensor *t = wh_gguf_get_tensor(g, i);
    g_assert_true(wh_gguf_find_tensor(g, t->name) == t);
    g_assert_true(t->data >= data && t->data + t->n_bytes <= data + size);
    if (t->n_bytes)
      sink += t->data[0] + t->data[t->n_bytes - 1];
  }
  /* what a writer makes of it: copying every KV and declaring every tensor must either work
   * or fail cleanly (nested arrays), and give a consistent size */
  wh_gguf_writer *w = wh_gguf_writer_new();
  GError *werr = NULL;
  if (wh_gguf_writer_copy_kvs(w, g, NULL, &werr)) {
    gboolean all = TRUE;
    for (guint64 i = 0; i < wh_gguf_n_tensors(g) && all; i++) {
      const wh_gguf_tensor *t = wh_gguf_get_tensor(g, i);
      all = wh_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, &werr);
    }
    if (all && !wh_gguf_writer_has_key(w, "general.alignment"))
      g_assert_cmpuint(wh_gguf_writer_file_size(w), <=, size + 32);
  }
  g_clear_error(&werr);
  wh_gguf_writer_free(w);
  wh_gguf_close(g);
  return 0;
}

static void
put(GByteArray *b, const void *p, gsize n)
{
  g_byte_array_append(b, p, (guint)n);
}

static void
put_u32(GByteArray *b, guint32 v)
{
  v = GUINT32_TO_LE(v);
  put(b, &v, 4);
}

static void
put_u64(GByteArray *b, guint64 v)
{
  v = GUINT64_TO_LE(v);
  put(b, &v, 8);
}

static void
put_str(GByteArray *b, const char *s)
{
  put_u64(b, strlen(s));
  put(b, s, strlen(s));
}

/* A tiny GGUF with every value type, a string array, a nested array and two tensors. */
static GBytes *
hand_made(guint32 alignment)
{
  GByteArray *b = g_byte_array_new();
  put(b, "GGUF", 4);
  put_u32(b, 3);
  put_u64(b, 2);
  put_u64(b, 15);
  for (guint t = 0; t <= 12; t++) {
    if (t == WH_GGUF_STRING || t == WH_GGUF_ARRAY)
      continue;
    char key[16];
    g_snprintf(key, sizeof key, "v.%u", t);
    put_str(b, key);
    put_u32(b, t);
    guint64 v = 0x0102030405060708ull;
    put(b, &v, wh_gguf_value_type_size(t));
  }
  put_str(b, "general.alignment");
  put_u32(b, WH_GGUF_UINT32);
  put_u32(b, alignment);
  put_str(b, "s");
  put_u32(b, WH_GGUF_STRING);
  put_str(b, "text");
  put_str(b, "tokens");
  put_u32(b, WH_GGUF_ARRAY);
  put_u32(b, WH_GGUF_STRING);
  put_u64(b, 3);
  put_str(b, "a");
  put_str(b, "");
  put_str(b, "<s>");
  put_str(b, "nested");
  put_u32(b, WH_GGUF_ARRAY);
  put_u32(b, WH_GGUF_ARRAY);
  put_u64(b, 1);
  put_u32(b, WH_GGUF_INT16);
  put_u64(b, 2);
  put_u32(b, 0xffff0001u);
  put_str(b, "q");
  put_u32(b, 2);
  put_u64(b, 32);
  put_u64(b, 1);
  put_u32(b, WH_TYPE_Q4_0);
  put_u64(b, 0);
  put_str(b, "f");
  put_u32(b, 1);
  put_u64(b, 3);
  put_u32(b, WH_TYPE_F16);
  put_u64(b, (18 + alignment - 1) / alignment * alignment);
  static const guint8 zeros[256];
  put(b, zeros, (alignment - b->len % alignment) % alignment);
  put(b, zeros, (18 + alignment - 1) / alignment * alignment);
  put(b, zeros, 6);
  return g_byte_array_free_to_bytes(b);
}

void
wh_fuzz_collect_seeds(GPtrArray *seeds)
{
  const char *files[] = {"spec/format-tables.gguf", "reference/synth-llama.imatrix.gguf",
                         "reference/models/stories260K-Q4_0.gguf"};
  for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
    char *path = wh_test_shared_path(files[i]);
    char *contents;
    gsize len;
    if (g_file_get_contents(path, &contents, &len, NULL))
      g_ptr_array_add(seeds, g_bytes_new_take(contents, len));
    g_free(path);
  }
  g_ptr_array_add(seeds, hand_made(32));
  g_ptr_array_add(seeds, hand_made(64));
  g_ptr_array_add(seeds, g_bytes_new_static("GGUF\3\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 24));
}
