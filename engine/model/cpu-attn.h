/* cpu-attn.h — attention inner loops over an F16 KV cache, and the exp of softmax and SiLU
 * (CPU backend, private).
 *
 * Slices: K[j] = @k + j * @stride (dk fp16 values), V[j] = @v + j * @stride (dv fp16 values).
 * @level: the highest instruction-set level to use (WH_QUANT_SIMD_AVX2 and up pick the AVX2 +
 * F16C path on x86-64 CPUs that have it, WH_QUANT_SIMD_NONE the portable loops); every level
 * gives the same floats bit for bit. @buf: scratch of at least MAX(dk, dv) floats. Reentrant:
 * no state, any thread.
 */
#pragma once

#include <glib.h>

#include "quant/quant.h"

G_BEGIN_DECLS

/* Cache positions ahead of the one in use whose slices attention prefetches (cpu.c's loops over
 * the Q8_0 / Q4_0 / F32 caches too). */
#define WH_ATTN_PREFETCH 8

/* Prefetches (into every cache level) the lines of [@p, @p + @bytes). */
void wh_attn_prefetch(const guint8 *p, gsize bytes);

/* Dot product of two F32 vectors: 8 partial sums (lane k sums the elements i = k mod 8, no
 * FMA), added as ((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7)); the compiler vectorises it,
 * and the AVX2 loops below keep this order. */
float wh_cpu_dot_f32(const float *a, const float *b, gsize n);

/* scores[hh * ld + j] = scale * dot(q + hh * dk, K[j]) for hh < ng, j < nj. */
void wh_attn_scores_f16(wh_quant_simd level, const float *q, guint32 ng, guint32 dk,
                        const guint8 *k, gsize stride, guint32 nj, float scale, float *scores,
                        gsize ld, float *buf);

/* out[hh * dv + i] = sum over j ascending of a[hh * ld + j] * V[j][i], for hh < ng, i < dv
 * (out is overwritten). */
void wh_attn_values_f16(wh_quant_simd level, const float *a, gsize ld, guint32 ng, guint32 dv,
                        const guint8 *v, gsize stride, guint32 nj, float *out, float *buf);

/* e^x within 2 ulp of expf(); +inf above 88.72, 0 below -87.34 (no subnormal results), NaN for
 * NaN. The SIMD loops below compute exactly this, lane by lane. */
float wh_cpu_exp(float x);

/* s[j] = wh_cpu_exp(s[j] - max(s)) for j < n (the exponentials of a softmax; the caller sums
 * and scales). */
void wh_cpu_softmax_exp(wh_quant_simd level, float *s, guint32 n);

/* gate[i] = gate[i] / (1 + wh_cpu_exp(-gate[i])) * up[i] (SiLU(gate) * up), i < n. */
void wh_cpu_silu_mul(wh_quant_simd level, float *gate, const float *up, gsize n);

G_END_DECLS
