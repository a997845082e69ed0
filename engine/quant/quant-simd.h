/* quant-simd.h — included first (after config.h) by the files with SIMD kernels (quant-dot.c,
 * model/cpu-attn.c): no implicit FMA contraction, because their SIMD and portable paths must
 * round alike (explicit FMA intrinsics are unaffected); WH_SIMD_X86 is 1 where the x86 SIMD
 * paths are compiled (with <immintrin.h>), 0 elsewhere or with -DWH_QUANT_NO_SIMD. */
#pragma once

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

#if (defined(__x86_64__) || defined(__i386__)) && !defined(WH_QUANT_NO_SIMD)
#define WH_SIMD_X86 1
#include <immintrin.h>
#else
#define WH_SIMD_X86 0
#endif
