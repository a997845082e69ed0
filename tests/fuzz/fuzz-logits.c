/* fuzz-logits.c — the saved-logits reader of the eval module (perplexity --save-logits files)
 * on arbitrary bytes: every accepted file must be readable row by row. */
#include "config.h"

#include "eval/eval.h"
#include "fuzz-main.h"
#include "quant/quant.h"

#include <math.h>
#include <string.h>

static double sink;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  GBytes *bytes = g_bytes_new_static(data, size);
  GError *error = NULL;
  wh_eval_logits *l = wh_eval_logits_new_from_bytes(bytes, "fuzz.logits", &error);
  g_bytes_unref(bytes);
  if (l == NULL) {
    g_assert_nonnull(error);
    g_assert_true(error->message[0] != '\0');
    g_error_free(error);
    return 0;
  }
  const guint32 V = wh_eval_logits_n_vocab(l), C = wh_eval_logits_n_chunks(l);
  const guint32 R = wh_eval_logits_rows_per_chunk(l), N = wh_eval_logits_n_ctx(l);
  g_assert_cmpuint(R, ==, N - 1 - N / 2);
  const gint32 *tok = wh_eval_logits_tokens(l);
  for (guint64 i = 0; i < (guint64)C * N; i++) {
    g_assert_true(tok[i] >= 0 && (guint32)tok[i] < V);
    sink += tok[i];
  }
  float *row = g_new(float, V);
  for (guint32 c = 0; c < C; c++)
    for (guint32 r = 0; r < R; r++) {
      wh_eval_logits_get_row(l, c, r, row);
      for (guint32 i = 0; i < V; i++) {
        g_assert_true(isfinite(row[i]));
        sink += row[i];
      }
    }
  g_free(row);
  wh_eval_logits_free(l);
  return 0;
}

static void
put_u32(GByteArray *b, guint32 v)
{
  guint32 u = GUINT32_TO_LE(v);
  g_byte_array_append(b, (const guint8 *)&u, 4);
}

/* A valid file: @n_chunks chunks of @n_ctx tokens over a vocabulary of @n_vocab. */
static GBytes *
hand_made(guint32 n_vocab, guint32 n_ctx, guint32 n_chunks)
{
  GByteArray *b = g_byte_array_new();
  g_byte_array_append(b, (const guint8 *)"WHLOGITS", 8);
  const guint32 hdr[] = {1, n_vocab, n_ctx, n_chunks, 1, 0};
  for (guint i = 0; i < G_N_ELEMENTS(hdr); i++)
    put_u32(b, hdr[i]);
  for (guint32 i = 0; i < n_chunks * n_ctx; i++)
    put_u32(b, (i * 7) % n_vocab);
  for (guint32 i = 0; i < n_chunks * (n_ctx - 1 - n_ctx / 2) * n_vocab; i++) {
    guint16 h = GUINT16_TO_LE(wh_fp32_to_fp16(-0.25f * (float)(i % 13)));
    g_byte_array_append(b, (const guint8 *)&h, 2);
  }
  return g_byte_array_free_to_bytes(b);
}

void
wh_fuzz_collect_seeds(GPtrArray *seeds)
{
  g_ptr_array_add(seeds, hand_made(8, 4, 2));
  g_ptr_array_add(seeds, hand_made(5, 7, 1));
  g_ptr_array_add(seeds, hand_made(1, 16, 3));
}
