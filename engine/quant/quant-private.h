/* quant-private.h — internals shared by the files of engine/quant (not for other modules).
 *
 * The grid i-quant quantizers live in quant-iq-search.c (optional: meson defines
 * WH_HAVE_IQ_SEARCH when that file exists). It implements wh_quant_iq_quantize_rows() for
 * IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS and IQ3_S; quant.c dispatches to it.
 * Block layouts are in block-formats.md section 4; the tables in quant-tables.h.
 */
#pragma once

#include <math.h>
#include <string.h>

#include "quant/quant.h"
#include "quant/quant-tables.h"

G_BEGIN_DECLS

/* Implemented in quant-iq-search.c. Same contract as wh_quant_quantize_rows() (the caller has
 * already checked that @type is one of the seven grid i-quants, that n_per_row is a positive
 * multiple of 256 and that nrows >= 0; it must still refuse IQ2_XXS / IQ2_XS / IQ1_S without an
 * imatrix with WH_QUANT_ERROR_NEEDS_IMATRIX). Returns bytes written or 0 with @error set. */
gsize wh_quant_iq_quantize_rows(wh_type type, const float *src, void *dst, gint64 nrows,
                                gint64 n_per_row, const float *imatrix, GError **error);

/* @n floats -> @n fp16 (little-endian) at @dst, exactly as wh_fp32_to_fp16(); uses F16C when
 * the CPU has it. */
void wh_quant_fp32_to_fp16_row(const float *x, void *dst, gint64 n);

#if (defined(__x86_64__) || defined(__i386__)) && !defined(WH_QUANT_NO_SIMD)
#include <cpuid.h>
/* TRUE when the CPU has F16C (CPUID.1:ECX bit 29). Callers also check AVX, which includes the
 * OS support for the YMM state. (Some compilers' __builtin_cpu_supports lack "f16c".) */
static inline gboolean
wh_quant_cpu_f16c_bit(void)
{
  unsigned int eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
    return FALSE;
  return (ecx >> 29) & 1;
}
#endif

/* Super-block size of the k-quants and i-quants. */
#define WH_QK_K 256

/* ---- Little helpers (static inline: no symbol clashes) -------------------------------------- */

/* Reads a little-endian u16 / u32 at @p (any alignment). */
static inline guint16
wh_quant_rd16(const guint8 *p)
{
  return (guint16)(p[0] | (p[1] << 8));
}

static inline guint32
wh_quant_rd32(const guint8 *p)
{
  return (guint32)p[0] | ((guint32)p[1] << 8) | ((guint32)p[2] << 16) | ((guint32)p[3] << 24);
}

static inline void
wh_quant_wr16(guint8 *p, guint16 v)
{
  p[0] = (guint8)(v & 0xff);
  p[1] = (guint8)(v >> 8);
}

static inline void
wh_quant_wr32(guint8 *p, guint32 v)
{
  p[0] = (guint8)(v & 0xff);
  p[1] = (guint8)((v >> 8) & 0xff);
  p[2] = (guint8)((v >> 16) & 0xff);
  p[3] = (guint8)(v >> 24);
}

/* fp16 field at @p -> float (exact). */
static inline float
wh_quant_rd_fp16(const guint8 *p)
{
  return wh_fp16_to_fp32(wh_quant_rd16(p));
}

/* Round to nearest, ties to even, with the reference's "add 1.5*2^23" trick: exact for
 * |v| < 2^22 (the quantizers only pass such values; anything else, NaN included, yields some
 * int and the callers clamp). Inline bit arithmetic, no libm call. */
static inline int
wh_quant_nearest_int(float v)
{
  float t = v + 12582912.0f;
  gint32 i;
  memcpy(&i, &t, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

/* Byte @j (0-based, little-endian) of a grid entry. */
static inline guint8
wh_quant_grid_byte64(guint64 entry, int j)
{
  return (guint8)((entry >> (8 * j)) & 0xff);
}

static inline guint8
wh_quant_grid_byte32(guint32 entry, int j)
{
  return (guint8)((entry >> (8 * j)) & 0xff);
}

G_END_DECLS
