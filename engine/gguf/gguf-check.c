/* gguf-check.c — the optional tensor data check (contract in gguf.h). */
#include "config.h"

#include "gguf.h"

#include <string.h>

static inline guint16
ld16(const guint8 *p)
{
  return (guint16)(p[0] | (p[1] << 8));
}

static inline guint32
ld32(const guint8 *p)
{
  return (guint32)p[0] | ((guint32)p[1] << 8) | ((guint32)p[2] << 16) | ((guint32)p[3] << 24);
}

/* Inf and NaN have an all-ones exponent. */
static inline gboolean
f16_bad(guint16 h)
{
  return (h & 0x7C00) == 0x7C00;
}

static gboolean
fail(GError **error, const wh_gguf_tensor *t, const char *what, guint64 index)
{
  g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_CORRUPT,
              "tensor '%s' (%s): %s %" G_GUINT64_FORMAT " is Inf or NaN: the file is damaged; "
              "download or convert it again",
              t->name, wh_type_name(t->type), what, index);
  return FALSE;
}

gboolean
wh_gguf_check_tensor_data(const wh_gguf_tensor *t, GError **error)
{
  const wh_type_traits *tr = wh_type_get_traits(t->type);
  if (tr == NULL || t->n_bytes == 0)
    return TRUE;
  const guint8 *d = t->data;
  guint64 n_blocks = t->n_bytes / tr->type_size;

  /* plain float types: every element */
  switch (t->type) {
  case WH_TYPE_F32:
    for (guint64 i = 0; i < t->n_elements; i++)
      if ((ld32(d + 4 * i) & 0x7F800000u) == 0x7F800000u)
        return fail(error, t, "element", i);
    return TRUE;
  case WH_TYPE_F16:
    for (guint64 i = 0; i < t->n_elements; i++)
      if (f16_bad(ld16(d + 2 * i)))
        return fail(error, t, "element", i);
    return TRUE;
  case WH_TYPE_BF16:
    for (guint64 i = 0; i < t->n_elements; i++)
      if ((ld16(d + 2 * i) & 0x7F80) == 0x7F80)
        return fail(error, t, "element", i);
    return TRUE;
  case WH_TYPE_F64:
    for (guint64 i = 0; i < t->n_elements; i++)
      if ((ld32(d + 8 * i + 4) & 0x7FF00000u) == 0x7FF00000u)
        return fail(error, t, "element", i);
    return TRUE;
  default:
    break;
  }

  /* block types: byte offsets of the fp16 scale fields (block-formats.md section 4) */
  int offs[2] = {-1, -1};
  switch (t->type) {
  case WH_TYPE_Q4_0:
  case WH_TYPE_Q5_0:
  case WH_TYPE_Q8_0:
  case WH_TYPE_IQ2_XXS:
  case WH_TYPE_IQ2_XS:
  case WH_TYPE_IQ2_S:
  case WH_TYPE_IQ3_XXS:
  case WH_TYPE_IQ3_S:
  case WH_TYPE_IQ1_S:
  case WH_TYPE_IQ4_NL:
  case WH_TYPE_IQ4_XS:
  case WH_TYPE_Q1_0:
  case WH_TYPE_Q2_0:
    offs[0] = 0;
    break;
  case WH_TYPE_Q4_1:
  case WH_TYPE_Q5_1:
  case WH_TYPE_Q8_1:
  case WH_TYPE_Q4_K:
  case WH_TYPE_Q5_K:
    offs[0] = 0;
    offs[1] = 2;
    break;
  case WH_TYPE_Q2_K:
    offs[0] = 80;
    offs[1] = 82;
    break;
  case WH_TYPE_Q3_K:
    offs[0] = 108;
    break;
  case WH_TYPE_Q6_K:
    offs[0] = 208;
    break;
  case WH_TYPE_TQ1_0:
    offs[0] = 52;
    break;
  case WH_TYPE_TQ2_0:
    offs[0] = 64;
    break;
  case WH_TYPE_Q8_K:
    for (guint64 b = 0; b < n_blocks; b++)
      if ((ld32(d + b * tr->type_size) & 0x7F800000u) == 0x7F800000u)
        return fail(error, t, "the scale of block", b);
    return TRUE;
  case WH_TYPE_IQ1_M:
    /* the super-scale's nibbles are the top nibbles of the four u16 at offset 48 */
    for (guint64 b = 0; b < n_blocks; b++) {
      const guint8 *sc = d + b * tr->type_size + 48;
      guint16 h = (guint16)((ld16(sc) >> 12) | ((ld16(sc + 2) >> 8) & 0x00F0) |
                            ((ld16(sc + 4) >> 4) & 0x0F00) | (ld16(sc + 6) & 0xF000));
      if (f16_bad(h))
        return fail(error, t, "the scale of block", b);
    }
    return TRUE;
  case WH_TYPE_MXFP4:
    for (guint64 b = 0; b < n_blocks; b++)
      if (d[b * tr->type_size] == 255) {
        g_set_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_CORRUPT,
                    "tensor '%s' (MXFP4): block %" G_GUINT64_FORMAT " has the invalid exponent "
                    "255: the file is damaged; download or convert it again",
                    t->name, b);
        return FALSE;
      }
    return TRUE;
  default:
    return TRUE; /* integer types, NVFP4: nothing to check */
  }
  for (guint64 b = 0; b < n_blocks; b++) {
    const guint8 *blk = d + b * tr->type_size;
    if (f16_bad(ld16(blk + offs[0])) || (offs[1] >= 0 && f16_bad(ld16(blk + offs[1]))))
      return fail(error, t, "a scale of block", b);
  }
  return TRUE;
}
