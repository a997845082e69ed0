/* quant.h — tensor element types: dequantization, reference quantization, dot products.
 *
 * Design note
 * -----------
 * Owns: the byte layout of every GGUF tensor type (block-formats.md section 4), the lookup
 * tables they are defined with (compiled in, see quant-tables.h), the reference quantizers of
 * section 5 (simple types, k-quants, IQ4_NL/IQ4_XS, TQ1_0/TQ2_0, MXFP4, F16, BF16) and the
 * dispatch to the grid i-quant quantizers (quant-iq-search.c, another file), plus the vector dot
 * products the forward pass multiplies weight rows with.
 * Promises:
 *  - Dequantization is bit-exact with the reference for every type it accepts: every output
 *    float is the correctly rounded value of the spec's expression.
 *  - The section-5 quantizers reproduce the reference's bytes (strict binary32, sequential sums,
 *    no FMA contraction in this module; the SSE2 candidate searches run each candidate's exact
 *    scalar arithmetic in one lane). Build with -DWH_QUANT_NO_SIMD for the plain scalar code.
 *  - Dot products: activations are quantized the way the reference's CPU backend does, and the
 *    integer parts of every dot are exact, so a quantized model's matmuls land on the reference's
 *    numbers up to float summation order (synth-llama-* position-0 logits: KLD <= 4e-13). SIMD
 *    kernels (AVX2/FMA/F16C, chosen at run time) keep a portable twin the tests compare against.
 *  - Everything is pure computation on caller-owned buffers: all functions are thread-safe and
 *    may run concurrently on different rows.
 * Does not: read files, allocate per call in the hot paths, know tensor names or ftype mixes
 * (that is engine/quantize), or check block contents unless asked (wh_quant_validate_row());
 * garbage in gives garbage out, never a crash: every code is masked to its table's range.
 */
#pragma once

#include <glib.h>

#include "gguf/gguf-types.h"

G_BEGIN_DECLS

#define WH_QUANT_ERROR (wh_quant_error_quark())
GQuark wh_quant_error_quark(void);

typedef enum {
  WH_QUANT_ERROR_UNSUPPORTED,   /* no quantizer (or dequantizer) for this type */
  WH_QUANT_ERROR_NEEDS_IMATRIX, /* the type refuses to quantize without an importance vector */
  WH_QUANT_ERROR_BAD_SHAPE,     /* n_per_row is not a positive multiple of the block size */
} wh_quant_error;

/* ---- Scalar conversions (block-formats.md 1.1-1.3) ------------------------------------------ */

/* Exact fp16 -> fp32 (subnormals, inf and NaN preserved). */
float wh_fp16_to_fp32(guint16 h);
/* fp32 -> fp16, round to nearest even with correctly rounded subnormals; |x| >= 65520 -> inf;
 * NaN -> 0x7E00 with the input's sign. */
guint16 wh_fp32_to_fp16(float f);
/* bf16 -> fp32: the bits become the high half. */
float wh_bf16_to_fp32(guint16 h);
/* fp32 -> bf16, round to nearest even; NaN keeps sign and top payload, quiet bit forced. */
guint16 wh_fp32_to_bf16(float f);

/* ---- Type facts ----------------------------------------------------------------------------- */

/* Elements per block of @type (1 for plain types), or 0 for an id this module does not know. */
guint32 wh_quant_block_size(wh_type type);
/* Bytes per block of @type, or 0 for an unknown id. */
guint32 wh_quant_block_bytes(wh_type type);
/* Bytes of a row of @n elements: (n / block) * bytes. 0 when @n is not a multiple of the block
 * size or the type is unknown. */
gsize wh_quant_row_bytes(wh_type type, gint64 n);

/* TRUE when wh_quant_dequantize_row() handles @type: F32, F16, BF16 and every block type of
 * block-formats.md section 4 and appendix A except Q8_1 (the reference defines no dequantizer
 * for it; we still decode it: y = qs * d), i.e. everything but the integer types and F64. */
gboolean wh_quant_type_can_dequantize(wh_type type);

/* ---- Dequantization ------------------------------------------------------------------------- */

/* Dequantizes @n elements (a multiple of the type's block size) from @src to @dst.
 * @src holds n / block_size consecutive blocks (no alignment required). Types that cannot be
 * dequantized (see above) or a bad @n write nothing and log a critical. Thread-safe. */
void wh_quant_dequantize_row(wh_type type, const void *src, float *dst, gint64 n);

/* Checks @n elements of @type at @src the way the reference's optional data check does
 * (block-formats.md 5.11): F32/F16/BF16 elements that are Inf or NaN; fp16 scale fields (d, and
 * m/dmin where present; IQ1_M's reassembled super-scale) that are Inf or NaN; a Q8_K d that is
 * not finite; an MXFP4 exponent byte of 255. Types without such fields (integers, F64 aside from
 * Inf/NaN, which is checked) always pass. Returns TRUE when the row is clean; otherwise FALSE
 * and, when @bad_element is not NULL, the index of the first element of the first bad block.
 * @n must be a multiple of the block size (FALSE with *bad_element = -1 otherwise). Thread-safe. */
gboolean wh_quant_validate_row(wh_type type, const void *src, gint64 n, gint64 *bad_element);

/* ---- Quantization --------------------------------------------------------------------------- */

/* TRUE when wh_quant_quantize_rows() can produce @type (given an imatrix where required). For
 * the grid i-quants this is TRUE only when their quantizer is built in (quant-iq-search.c). */
gboolean wh_quant_type_can_quantize(wh_type type);

/* TRUE for the types that refuse to quantize without an importance vector (IQ2_XXS, IQ2_XS,
 * IQ1_S). */
gboolean wh_quant_type_requires_imatrix(wh_type type);

/* Quantizes @nrows rows of @n_per_row floats from @src into @dst (rows of
 * wh_quant_row_bytes(type, n_per_row) bytes, back to back), with an optional importance vector
 * @imatrix of @n_per_row floats (NULL = none; types that ignore it say so in the spec).
 * Returns the bytes written, or 0 and sets @error (WH_QUANT_ERROR_*: the type needs an imatrix,
 * there is no quantizer for it, or n_per_row is not a positive multiple of the block size).
 * Non-finite inputs are not rejected; the output is then unspecified but the call is memory
 * safe. Thread-safe: disjoint calls may run in parallel (split a tensor by rows). */
gsize wh_quant_quantize_rows(wh_type type, const float *src, void *dst, gint64 nrows,
                             gint64 n_per_row, const float *imatrix, GError **error);

/* ---- Dot products for inference ------------------------------------------------------------- */

/* The type activations are quantized to before wh_quant_vec_dot() with a weight row of @wtype,
 * as the reference does: Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL/MXFP4, Q8_1 for Q4_1/Q5_1, Q8_K for the
 * k-quants, i-quants (except IQ4_NL) and TQ*, F32 for F32/F16/BF16. Returns (wh_type)-1 for a
 * type without a dot product. */
wh_type wh_quant_vec_dot_type(wh_type wtype);

/* Quantizes @n activations (a multiple of the block size of @act_type) to @act_type into @dst
 * (wh_quant_row_bytes(act_type, n) bytes), the way the reference's CPU backend does: Q8_K per
 * block-formats.md 5.3; Q8_0/Q8_1 like 5.2 but with id = 127/amax and round-half-even (what the
 * reference's logits show; see quant-dot.c). For WH_TYPE_F32 it copies. Thread-safe. */
void wh_quant_quantize_activations(wh_type act_type, const float *src, void *dst, gint64 n);

/* Dot product of a weight row @wrow of @wtype (@n elements) with activations @act already in
 * wh_quant_vec_dot_type(wtype) form (for F32/F16/BF16 weights: plain floats). Uses the AVX2
 * path where the CPU has it (picked once at run time), the portable path otherwise.
 * Thread-safe. */
float wh_quant_vec_dot(wh_type wtype, const void *wrow, const void *act, gint64 n);

/* The portable C path of wh_quant_vec_dot(), always available (tests compare against it). */
float wh_quant_vec_dot_portable(wh_type wtype, const void *wrow, const void *act, gint64 n);

/* TRUE when wh_quant_vec_dot() uses a SIMD path for @wtype on this CPU. */
gboolean wh_quant_vec_dot_has_simd(wh_type wtype);

/* Instruction-set levels of wh_quant_vec_dot(), in increasing order. */
typedef enum {
  WH_QUANT_SIMD_NONE,   /* portable C */
  WH_QUANT_SIMD_AVX2,   /* AVX2 + FMA + F16C */
  WH_QUANT_SIMD_AVX512, /* AVX-512 F/BW/VL + VNNI (Q4_0, Q8_0, Q4_K, Q6_K; the rest AVX2) */
  WH_QUANT_SIMD_NEON = WH_QUANT_SIMD_AVX2, /* aarch64 (Q4_0, Q8_0, Q4_K, Q6_K) */
} wh_quant_simd;

/* The best level this CPU supports (cpuid, checked once). Thread-safe. */
wh_quant_simd wh_quant_simd_level(void);

/* wh_quant_vec_dot() using no level above @level (lower levels where the CPU lacks it), so
 * tests can compare every path this CPU can run. wh_quant_vec_dot() = the best level. */
float wh_quant_vec_dot_at(wh_quant_simd level, wh_type wtype, const void *wrow, const void *act,
                          gint64 n);

/* The kernel wh_quant_vec_dot() runs for @wtype on this CPU, for callers that dot many rows of
 * one type (a matmul resolves it once instead of dispatching per row). Same results as
 * wh_quant_vec_dot(); @n must be a multiple of the block size (not checked). NULL for types
 * without a dedicated kernel: call wh_quant_vec_dot() for those. Thread-safe. */
typedef float (*wh_quant_vec_dot_fn)(const void *wrow, const void *act, gint64 n);
wh_quant_vec_dot_fn wh_quant_vec_dot_resolve(wh_type wtype);

/* @n fp16 values at @src -> floats at @dst, for hot loops over short rows (an F16 KV cache row
 * of one head): no argument checks, F16C where the CPU has it. Same values as wh_fp16_to_fp32()
 * except that a signalling NaN comes back quiet (wh_fp32_to_fp16() never produces one).
 * Thread-safe. */
void wh_quant_fp16_to_fp32_row(const void *src, float *dst, gint64 n);

/* Dots @nrows weight rows of @wtype (row i at (const guint8 *)wrow + i * row_stride, @n
 * elements each, @n a multiple of the block size) with the one activation row @act (in
 * wh_quant_vec_dot_type() form), writing out[i]. For a decode matmul (many rows, one token):
 * these kernels walk several rows in step and share the activation loads. Every out[i] is
 * bit-identical to wh_quant_vec_dot_resolve(wtype)(row i, act, n), so how rows are grouped never
 * changes results. NULL for types without a multi-row kernel on this CPU (use the per-row
 * kernel). The kernels may prefetch (never load) past the last row. Thread-safe. */
typedef void (*wh_quant_vec_dot_rows_fn)(const void *wrow, gsize row_stride, const void *act,
                                         gint64 n, float *out, gint64 nrows);
wh_quant_vec_dot_rows_fn wh_quant_vec_dot_rows_resolve(wh_type wtype);

/* As a wh_quant_vec_dot_rows_fn, for @ntokens activation rows (token t at (const guint8 *)act +
 * t * act_stride): out[t * ld + i] = row i . token t, each bit-identical to the per-row kernel.
 * For prompts: the weight unpacking is shared by two tokens at a time. NULL for types without
 * one on this CPU (Q4_K with AVX-512 has one; use the rows kernel once per token). Thread-safe. */
typedef void (*wh_quant_vec_dot_rows_tokens_fn)(const void *wrow, gsize row_stride, const void *act,
                                                gsize act_stride, gint64 n, float *out, gsize ld,
                                                gint64 nrows, gint64 ntokens);
wh_quant_vec_dot_rows_tokens_fn wh_quant_vec_dot_rows_tokens_resolve(wh_type wtype);

G_END_DECLS
