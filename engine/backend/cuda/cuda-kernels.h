/* cuda-kernels.h — the C interface of the CUDA kernels (*.cu) and of the CUDA runtime.
 *
 * Design note
 * -----------
 * Included by nvcc-compiled C++ (the kernels) and by cuda.c (the backend, plain C built by
 * the project's C compiler), so it uses plain C types only: no GLib, no CUDA headers. Every
 * kernel takes one parameter struct (the twin of the push-constant block of the Vulkan shader
 * with the same name, engine/backend/vulkan/shaders/<name>.comp) holding device pointers and
 * shapes, and is launched asynchronously on a stream. Functions return a CUDA error code:
 * 0 is success, anything else names itself through wh_cu_error_name/_string().
 *
 * Type ids are the GGUF ids (gguf-types.h); cuda.c checks at compile time that they agree.
 *
 * Thread-safety: the runtime functions may be called from any thread; a stream and the
 * buffers its kernels use belong to one thread at a time.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Weight / KV cache element types the kernels read (= the wh_type ids). */
enum {
  WH_CU_F32 = 0,
  WH_CU_F16 = 1,
  WH_CU_Q4_0 = 2,
  WH_CU_Q4_1 = 3,
  WH_CU_Q5_0 = 6,
  WH_CU_Q5_1 = 7,
  WH_CU_Q8_0 = 8,
  WH_CU_Q8_1 = 9, /* activation rounding only (quantize_act) */
  WH_CU_Q2_K = 10,
  WH_CU_Q3_K = 11,
  WH_CU_Q4_K = 12,
  WH_CU_Q5_K = 13,
  WH_CU_Q6_K = 14,
  WH_CU_Q8_K = 15, /* activation rounding only (quantize_act) */
  WH_CU_IQ4_NL = 20,
  WH_CU_IQ4_XS = 23,
};

/* 1 when the kernels read weights of @type (mul_mat, get_rows), else 0. */
int wh_cu_type_supported(int type);
/* 1 when @type can be a KV cache row type (F32, F16, Q8_0, Q4_0), else 0. */
int wh_cu_kv_type_supported(int type);

/* ---- runtime -------------------------------------------------------------------------------- */

typedef struct wh_cu_stream wh_cu_stream; /* a cudaStream_t */

const char *wh_cu_error_name(int err);   /* "cudaErrorNoDevice" */
const char *wh_cu_error_string(int err); /* "no CUDA-capable device is detected" */
/* 1 when @err means "no driver or no device" (the backend is simply unavailable), else 0. */
int wh_cu_error_is_no_device(int err);

int wh_cu_device_count(int *n);
/* Name (NUL-terminated, truncated to @name_len), memory and compute capability of @dev. */
int wh_cu_device_props(int dev, char *name, size_t name_len, size_t *total_mem, int *cc_major,
                       int *cc_minor, int *n_multiprocessors);
int wh_cu_set_device(int dev);
int wh_cu_mem_info(size_t *free_bytes, size_t *total_bytes);
int wh_cu_malloc(void **ptr, size_t bytes);
int wh_cu_free(void *ptr); /* NULL-safe */
/* Page-locked host memory for staging uploads. */
int wh_cu_host_alloc(void **ptr, size_t bytes);
int wh_cu_host_free(void *ptr); /* NULL-safe */
int wh_cu_stream_new(wh_cu_stream **stream);
int wh_cu_stream_free(wh_cu_stream *stream); /* NULL-safe */
int wh_cu_stream_sync(wh_cu_stream *stream);
/* Asynchronous copies on @stream (host memory should be page-locked to overlap). */
int wh_cu_upload(void *dst_dev, const void *src_host, size_t bytes, wh_cu_stream *stream);
int wh_cu_download(void *dst_host, const void *src_dev, size_t bytes, wh_cu_stream *stream);
int wh_cu_copy_device(void *dst_dev, const void *src_dev, size_t bytes, wh_cu_stream *stream);

/* ---- kernels (one .cu file each; the Vulkan shader of the same name is the twin) ---------- */
/* Each parameter struct mirrors the push constants of shaders/<name>.comp field by field
 * (device pointers where the shader has uint64 addresses); counts that the Vulkan side puts in
 * its dispatch size are launcher arguments here too. Where the Vulkan shader reads the step
 * position from its I/O block, the CUDA kernel takes pos0 as a parameter. */

/* get_rows.cu (CUDA only: the embedding stays on the CPU; used to read cached keys back for
 * a context shift): x[t] = dequant(table row ids[t]) * scale, t < n_tokens (ids NULL: row
 * first_row + t). */
typedef struct {
  const uint8_t *table;
  const int32_t *ids;
  float *x;
  uint32_t d;         /* elements per row */
  uint32_t row_bytes; /* bytes per table row */
  uint32_t n_tokens;
  uint32_t ldx;
  uint32_t first_row;
  float scale;
} wh_cu_get_rows_params;
int wh_cu_get_rows(wh_cu_stream *s, int type, const wh_cu_get_rows_params *p);

/* mul_mat.cu: y[t][r] = W[r] . x[t] (+ bias[r]), F32 activations, any supported weight type. */
typedef struct {
  const uint8_t *w;
  const float *x;
  float *y;
  const float *bias; /* NULL = none */
  uint32_t K;        /* elements per row (multiple of the block size) */
  uint32_t rows;
  uint32_t n_tokens;
  uint32_t ldx;
  uint32_t ldy;
  uint32_t row_bytes;
  uint32_t row_split; /* rows per z slice of the grid (filled by the launcher) */
} wh_cu_mul_mat_params;
int wh_cu_mul_mat(wh_cu_stream *s, int type, const wh_cu_mul_mat_params *p);

/* quantize_act.cu: y[t][k] = x[t][k] rounded as the CPU's 8-bit activations of @act_type
 * (Q8_0/Q8_1: blocks of 32; Q8_K: blocks of 256) see it; K a multiple of the block. */
typedef struct {
  const float *x;
  float *y;
  uint32_t ldx;
  uint32_t ldy;
} wh_cu_quantize_act_params;
int wh_cu_quantize_act(wh_cu_stream *s, int act_type, const wh_cu_quantize_act_params *p,
                       uint32_t K, uint32_t n_tokens);

/* rms_norm.cu: y = w * x / sqrt(mean(x^2) + eps) over rows (t, h) of n floats at
 * x + t*ldx_t + h*ldx_h (y likewise; y may equal x). */
typedef struct {
  const float *x;
  float *y;
  const float *w;
  uint32_t n;
  uint32_t ldx_t, ldx_h;
  uint32_t ldy_t, ldy_h;
  float eps;
} wh_cu_rms_norm_params;
int wh_cu_rms_norm(wh_cu_stream *s, const wh_cu_rms_norm_params *p, uint32_t n_heads,
                   uint32_t n_tokens);

/* add.cu: x[i] += y[i], i < n (contiguous token rows). */
typedef struct {
  float *x;
  const float *y;
  uint32_t n;
} wh_cu_add_params;
int wh_cu_add(wh_cu_stream *s, const wh_cu_add_params *p);

/* scale.cu: x[i] = s * x[i], or cap * tanh(x[i] / cap) when cap > 0, i < n. */
typedef struct {
  float *x;
  uint32_t n;
  float s;
  float cap;
} wh_cu_scale_params;
int wh_cu_scale(wh_cu_stream *s, const wh_cu_scale_params *p);

/* glu.cu: ff[t][i] = act(ff[t][i]) * ff[t][F + i], i < F, rows of 2F floats;
 * act = SiLU, or the tanh GELU when gelu != 0. */
typedef struct {
  float *ff;
  uint32_t F;
  uint32_t gelu;
} wh_cu_glu_params;
int wh_cu_glu(wh_cu_stream *s, const wh_cu_glu_params *p, uint32_t n_tokens);

/* rope.cu: rotates the n_pairs pairs of every head (t, h) at v + t*ld + h*head_dim: NORMAL
 * (2i, 2i+1), NEOX (i, i + n_pairs); cos at tab[t*n_pairs + i], sin at
 * tab[(nb + t)*n_pairs + i]. */
typedef struct {
  float *v;
  const float *tab;
  uint32_t ld;
  uint32_t head_dim;
  uint32_t n_pairs;
  uint32_t nb; /* rows of the cos table (batch capacity) */
  uint32_t neox;
} wh_cu_rope_params;
int wh_cu_rope(wh_cu_stream *s, const wh_cu_rope_params *p, uint32_t n_heads, uint32_t n_tokens);

/* kv_store.cu: cache row (pos0 + t) <- src[t][0..n) converted to the cache type (F32, F16,
 * Q8_0, Q4_0 with the reference quantizers: the CPU's bytes). */
typedef struct {
  const float *src;
  uint8_t *dst;
  uint32_t pos0;
  uint32_t n;
  uint32_t ld;
  uint32_t row_bytes;
} wh_cu_kv_store_params;
int wh_cu_kv_store(wh_cu_stream *s, int kv_type, const wh_cu_kv_store_params *p, uint32_t n_tokens);

/* attn.cu: for token t (position pos0 + t) and query head h < H, softmax over the visible
 * cached keys (causal; the last n_swa when n_swa > 0; z = scale * q.k, soft-capped when
 * softcap > 0) of the values, into out_ + t*ldo + h*dv. Query head h reads KV head
 * h / (H / Hkv). dk, dv <= 256. */
typedef struct {
  const float *qkv;
  float *out_;
  const uint8_t *k;
  const uint8_t *v;
  uint32_t pos0;
  uint32_t ldq, ldo;
  uint32_t H, Hkv, dk, dv;
  uint32_t row_k, row_v; /* bytes per cache row */
  uint32_t n_swa;
  float scale;
  float softcap;
} wh_cu_attn_params;
int wh_cu_attn(wh_cu_stream *s, int kv_type, const wh_cu_attn_params *p, uint32_t n_tokens);

/* ---- host runs of the device code (host.cu) -------------------------------------------- */
/* The decoders and the KV quantizers are __host__ __device__ functions; these run them on the
 * CPU so tests check their bit layouts on any machine, GPU or not. Return 0, or -1 for an
 * unsupported type / a length that is not a whole number of blocks. */
int wh_cu_host_dequantize_row(int type, const void *src, float *dst, int64_t n);
int wh_cu_host_kv_store_row(int kv_type, const float *src, void *dst, int64_t n);
/* The activation of glu.cu, on the host: act(gate) * up. */
float wh_cu_host_glu(int gelu, float gate, float up);

#ifdef __cplusplus
}
#endif
