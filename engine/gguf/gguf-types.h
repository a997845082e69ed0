/* gguf-types.h — ggml tensor type ids and their traits.
 *
 * The table follows gguf-container.md §3 / block-formats.md §3. Removed ids (4, 5, 31–33,
 * 36–38) and ids >= WH_TYPE_COUNT have no traits: wh_type_get_traits() returns NULL and
 * wh_type_is_valid() FALSE for them. Everything here is pure data: thread-safe.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  WH_TYPE_INVALID = -1, /* returned by wh_type_from_name(); makes the enum signed */
  WH_TYPE_F32 = 0,
  WH_TYPE_F16 = 1,
  WH_TYPE_Q4_0 = 2,
  WH_TYPE_Q4_1 = 3,
  WH_TYPE_Q5_0 = 6,
  WH_TYPE_Q5_1 = 7,
  WH_TYPE_Q8_0 = 8,
  WH_TYPE_Q8_1 = 9,
  WH_TYPE_Q2_K = 10,
  WH_TYPE_Q3_K = 11,
  WH_TYPE_Q4_K = 12,
  WH_TYPE_Q5_K = 13,
  WH_TYPE_Q6_K = 14,
  WH_TYPE_Q8_K = 15,
  WH_TYPE_IQ2_XXS = 16,
  WH_TYPE_IQ2_XS = 17,
  WH_TYPE_IQ3_XXS = 18,
  WH_TYPE_IQ1_S = 19,
  WH_TYPE_IQ4_NL = 20,
  WH_TYPE_IQ3_S = 21,
  WH_TYPE_IQ2_S = 22,
  WH_TYPE_IQ4_XS = 23,
  WH_TYPE_I8 = 24,
  WH_TYPE_I16 = 25,
  WH_TYPE_I32 = 26,
  WH_TYPE_I64 = 27,
  WH_TYPE_F64 = 28,
  WH_TYPE_IQ1_M = 29,
  WH_TYPE_BF16 = 30,
  WH_TYPE_TQ1_0 = 34,
  WH_TYPE_TQ2_0 = 35,
  WH_TYPE_MXFP4 = 39,
  WH_TYPE_NVFP4 = 40, /* recent (block-formats.md appendix A) */
  WH_TYPE_Q1_0 = 41,  /* recent */
  WH_TYPE_Q2_0 = 42,  /* recent */
  WH_TYPE_COUNT       /* one past the last id; not a type */
} wh_type;

typedef struct {
  const char *name;   /* "Q4_K" */
  guint32 block_size; /* elements per block (QK); 1 for plain types */
  guint32 type_size;  /* bytes per block */
  gboolean quantized; /* block-quantized (everything except F32/F16/BF16/F64/I*) */
} wh_type_traits;

/* Traits of @type, or NULL for a removed or unknown id. Static data, never freed. */
const wh_type_traits *wh_type_get_traits(wh_type type);

/* TRUE when @id is a type id a file may use (in range and not removed). */
gboolean wh_type_is_valid(guint32 id);

/* Type name ("Q4_K"), or "?" for an invalid id. Never NULL. */
const char *wh_type_name(wh_type type);

/* "Q4_K" / "q4_k" -> WH_TYPE_Q4_K; WH_TYPE_INVALID (-1) when unknown or NULL. */
wh_type wh_type_from_name(const char *name);

/* Bytes taken by @n_elements elements of @type. @n_elements must be a multiple of the
 * type's block size; returns 0 for an invalid type, a non-multiple or on overflow. */
guint64 wh_type_row_size(wh_type type, guint64 n_elements);

/* Bits per weight of @type (type_size * 8 / block_size); 0 for an invalid type. */
double wh_type_bits_per_weight(wh_type type);

/* --- file types (general.file_type; ftype-mixes.md) ------------------------------------ */

/* Name of ftype @id ("Q4_K_M", "ALL_F32", ...), or NULL for an unknown id. */
const char *wh_ftype_name(guint32 id);
/* Id of an ftype name (case-insensitive; "F32" is accepted for ALL_F32); -1 if unknown. */
gint wh_ftype_from_name(const char *name);
/* The ftype's base tensor type (Q4_K for Q4_K_M); WH_TYPE_INVALID for an unknown id. */
wh_type wh_ftype_base_type(guint32 id);

G_END_DECLS
