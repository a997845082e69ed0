/* fuzz-imatrix.c — the imatrix loader (GGUF form and legacy .dat) on arbitrary bytes. */
#include "config.h"

#include "fuzz-main.h"
#include "gguf/imatrix.h"
#include "wh-test-util.h"

#include <string.h>

static double sink;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  GBytes *bytes = g_bytes_new_static(data, size);
  GError *error = NULL;
  wh_imatrix *im = wh_imatrix_load_bytes(bytes, "fuzz.imatrix", &error);
  g_bytes_unref(bytes);
  if (im == NULL) {
    g_assert_nonnull(error);
    g_assert_true(error->message[0] != '\0');
    g_error_free(error);
    return 0;
  }
  for (guint i = 0; i < wh_imatrix_n_entries(im); i++) {
    const wh_imatrix_entry *e = wh_imatrix_get_entry(im, i);
    g_assert_true(wh_imatrix_find(im, e->name) == e);
    guint64 n = e->n_cols * e->n_mat;
    sink += e->importance[0] + e->importance[n - 1];
    if (e->counts)
      sink += e->counts[e->n_mat - 1] + e->in_sum2[n - 1];
  }
  const char *ds = wh_imatrix_dataset(im);
  sink += ds ? strlen(ds) : 0;
  wh_imatrix_free(im);
  return 0;
}

static void
put_i32(GByteArray *b, gint32 v)
{
  guint32 u = GUINT32_TO_LE((guint32)v);
  g_byte_array_append(b, (const guint8 *)&u, 4);
}

/* A legacy .dat: 2 entries, trailer with chunk count and dataset name. */
static GBytes *
hand_made_dat(void)
{
  GByteArray *b = g_byte_array_new();
  put_i32(b, 2);
  const char *names[] = {"blk.0.attn_q.weight", "blk.0.ffn_up.weight"};
  for (guint i = 0; i < 2; i++) {
    put_i32(b, (gint32)strlen(names[i]));
    g_byte_array_append(b, (const guint8 *)names[i], (guint)strlen(names[i]));
    put_i32(b, 3);
    put_i32(b, 8);
    for (guint k = 0; k < 8; k++) {
      float f = 0.5f * (float)(k + i);
      g_byte_array_append(b, (const guint8 *)&f, 4);
    }
  }
  put_i32(b, 10);
  put_i32(b, 5);
  g_byte_array_append(b, (const guint8 *)"c.txt", 5);
  return g_byte_array_free_to_bytes(b);
}

void
wh_fuzz_collect_seeds(GPtrArray *seeds)
{
  char *path = wh_test_shared_path("reference/synth-llama.imatrix.gguf");
  char *contents;
  gsize len;
  if (g_file_get_contents(path, &contents, &len, NULL))
    g_ptr_array_add(seeds, g_bytes_new_take(contents, len));
  g_free(path);
  g_ptr_array_add(seeds, hand_made_dat());
}
