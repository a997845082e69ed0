/* cuda-emu.c — a host emulation of the CUDA runtime and kernels, for test-backend-cuda-emu.
 *
 * No machine here has an NVIDIA GPU, so the CUDA backend's host side (cuda.c: device choice,
 * the planned device blocks, weight uploads, the order, offsets and strides of every kernel
 * launch, the context shift) would never run. This file defines the functions of
 * cuda-kernels.h that cuda.c calls, with "device memory" in host RAM and each kernel as a
 * plain loop over its parameter struct written from the kernel's header comment (weights
 * through the quant module, sums in double). Linked before the engine library, these
 * definitions take the place of the nvcc objects, so the whole-model tests of
 * test-backend-cuda.c exercise cuda.c end to end against the CPU path. They say nothing about
 * the kernels themselves: those run where a CUDA device exists.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "backend/cuda/cuda-kernels.h"
#include "quant/quant.h"

/* ---- runtime: one device, memory in host RAM, synchronous copies ---------------------- */

const char *
wh_cu_error_name(int err)
{
  return err ? "cudaErrorEmulation" : "cudaSuccess";
}

const char *
wh_cu_error_string(int err)
{
  return err ? "emulated kernel failure" : "no error";
}

int
wh_cu_error_is_no_device(int err)
{
  return 0;
}

int
wh_cu_device_count(int *n)
{
  *n = 1;
  return 0;
}

int
wh_cu_device_props(int dev, char *name, size_t name_len, size_t *total_mem, int *cc_major,
                   int *cc_minor, int *n_multiprocessors)
{
  if (dev != 0)
    return 101; /* cudaErrorInvalidDevice */
  g_strlcpy(name, "Emulated CUDA device (host)", name_len);
  *total_mem = (size_t)1 << 32;
  *cc_major = 7;
  *cc_minor = 5;
  *n_multiprocessors = 1;
  return 0;
}

int
wh_cu_set_device(int dev)
{
  return dev == 0 ? 0 : 101;
}

int
wh_cu_mem_info(size_t *free_bytes, size_t *total_bytes)
{
  *free_bytes = *total_bytes = (size_t)1 << 32;
  return 0;
}

int
wh_cu_malloc(void **ptr, size_t bytes)
{
  /* garbage, as cudaMalloc gives: a kernel that reads what it never wrote shows up */
  *ptr = bytes ? g_aligned_alloc(1, bytes, 256) : NULL;
  if (*ptr)
    memset(*ptr, 0xA5, bytes);
  return 0;
}

int
wh_cu_free(void *ptr)
{
  g_aligned_free(ptr);
  return 0;
}

int
wh_cu_host_alloc(void **ptr, size_t bytes)
{
  *ptr = bytes ? g_malloc(bytes) : NULL;
  return 0;
}

int
wh_cu_host_free(void *ptr)
{
  g_free(ptr);
  return 0;
}

int
wh_cu_stream_new(wh_cu_stream **stream)
{
  *stream = (wh_cu_stream *)g_malloc(1);
  return 0;
}

int
wh_cu_stream_free(wh_cu_stream *stream)
{
  g_free(stream);
  return 0;
}

int
wh_cu_stream_sync(wh_cu_stream *stream)
{
  return 0;
}

int
wh_cu_upload(void *dst_dev, const void *src_host, size_t bytes, wh_cu_stream *stream)
{
  memcpy(dst_dev, src_host, bytes);
  return 0;
}

int
wh_cu_download(void *dst_host, const void *src_dev, size_t bytes, wh_cu_stream *stream)
{
  memcpy(dst_host, src_dev, bytes);
  return 0;
}

int
wh_cu_copy_device(void *dst_dev, const void *src_dev, size_t bytes, wh_cu_stream *stream)
{
  /* cudaMemcpy does not allow overlap: the emulation refuses it too */
  const guint8 *d = dst_dev, *s = src_dev;
  if (bytes && d < s + bytes && s < d + bytes)
    return 1;
  memcpy(dst_dev, src_dev, bytes);
  return 0;
}

/* ---- kernels ---------------------------------------------------------------------------- */

int
wh_cu_get_rows(wh_cu_stream *s, int type, const wh_cu_get_rows_params *p)
{
  for (uint32_t t = 0; t < p->n_tokens; t++) {
    const uint64_t row = p->ids ? (uint64_t)p->ids[t] : (uint64_t)p->first_row + t;
    float *x = p->x + (uint64_t)t * p->ldx;
    wh_quant_dequantize_row(type, p->table + row * p->row_bytes, x, p->d);
    if (p->scale != 1.0f)
      for (uint32_t i = 0; i < p->d; i++)
        x[i] *= p->scale;
  }
  return 0;
}

int
wh_cu_mul_mat(wh_cu_stream *s, int type, const wh_cu_mul_mat_params *p)
{
  float *w = g_new(float, p->K);
  for (uint32_t r = 0; r < p->rows; r++) {
    wh_quant_dequantize_row(type, p->w + (uint64_t)r * p->row_bytes, w, p->K);
    for (uint32_t t = 0; t < p->n_tokens; t++) {
      const float *x = p->x + (uint64_t)t * p->ldx;
      double acc = 0.0;
      for (uint32_t k = 0; k < p->K; k++)
        acc += (double)w[k] * x[k];
      p->y[(uint64_t)t * p->ldy + r] = (float)acc + (p->bias ? p->bias[r] : 0.0f);
    }
  }
  g_free(w);
  return 0;
}

int
wh_cu_rms_norm(wh_cu_stream *s, const wh_cu_rms_norm_params *p, uint32_t n_heads, uint32_t n_tokens)
{
  for (uint32_t t = 0; t < n_tokens; t++)
    for (uint32_t h = 0; h < n_heads; h++) {
      const float *x = p->x + (uint64_t)t * p->ldx_t + (uint64_t)h * p->ldx_h;
      float *y = p->y + (uint64_t)t * p->ldy_t + (uint64_t)h * p->ldy_h;
      double ss = 0.0;
      for (uint32_t i = 0; i < p->n; i++)
        ss += (double)x[i] * x[i];
      const float scale = (float)(1.0 / sqrt(ss / p->n + p->eps));
      for (uint32_t i = 0; i < p->n; i++)
        y[i] = x[i] * scale * p->w[i];
    }
  return 0;
}

int
wh_cu_add(wh_cu_stream *s, const wh_cu_add_params *p)
{
  for (uint32_t i = 0; i < p->n; i++)
    p->x[i] += p->y[i];
  return 0;
}

int
wh_cu_scale(wh_cu_stream *s, const wh_cu_scale_params *p)
{
  for (uint32_t i = 0; i < p->n; i++)
    p->x[i] = p->cap > 0.0f ? p->cap * tanhf(p->x[i] / p->cap) : p->s * p->x[i];
  return 0;
}

int
wh_cu_glu(wh_cu_stream *s, const wh_cu_glu_params *p, uint32_t n_tokens)
{
  for (uint32_t t = 0; t < n_tokens; t++) {
    float *ff = p->ff + (uint64_t)t * 2 * p->F;
    for (uint32_t i = 0; i < p->F; i++) {
      const float u = ff[i];
      float a;
      if (!p->gelu)
        a = u / (1.0f + expf(-u));
      else if (u >= 10.0f)
        a = u;
      else if (u <= -10.0f)
        a = 0.0f;
      else
        a = 0.5f * u * (1.0f + tanhf(0.7978845608028654f * (u + 0.044715f * u * u * u)));
      ff[i] = a * ff[p->F + i];
    }
  }
  return 0;
}

int
wh_cu_rope(wh_cu_stream *s, const wh_cu_rope_params *p, uint32_t n_heads, uint32_t n_tokens)
{
  for (uint32_t t = 0; t < n_tokens; t++)
    for (uint32_t h = 0; h < n_heads; h++) {
      float *v = p->v + (uint64_t)t * p->ld + (uint64_t)h * p->head_dim;
      for (uint32_t i = 0; i < p->n_pairs; i++) {
        const uint32_t i0 = p->neox ? i : 2 * i, i1 = p->neox ? i + p->n_pairs : 2 * i + 1;
        const float c = p->tab[(uint64_t)t * p->n_pairs + i];
        const float sn = p->tab[(uint64_t)(p->nb + t) * p->n_pairs + i];
        const float a = v[i0], b = v[i1];
        v[i0] = a * c - b * sn;
        v[i1] = a * sn + b * c;
      }
    }
  return 0;
}

int
wh_cu_kv_store(wh_cu_stream *s, int kv_type, const wh_cu_kv_store_params *p, uint32_t n_tokens)
{
  for (uint32_t t = 0; t < n_tokens; t++) {
    const float *src = p->src + (uint64_t)t * p->ld;
    uint8_t *row = p->dst + (uint64_t)(p->pos0 + t) * p->row_bytes;
    if (kv_type == WH_CU_F32)
      memcpy(row, src, p->n * sizeof(float));
    else if (kv_type == WH_CU_F16)
      for (uint32_t i = 0; i < p->n; i++)
        ((guint16 *)row)[i] = wh_fp32_to_fp16(src[i]);
    else
      wh_quant_quantize_rows(kv_type, src, row, 1, p->n, NULL, NULL);
  }
  return 0;
}

int
wh_cu_attn(wh_cu_stream *s, int kv_type, const wh_cu_attn_params *p, uint32_t n_tokens)
{
  const uint32_t ng = p->H / p->Hkv;
  const uint32_t nk = p->Hkv * p->dk, nv = p->Hkv * p->dv;
  float *k = g_new(float, nk), *v = g_new(float, nv);
  for (uint32_t t = 0; t < n_tokens; t++) {
    const uint32_t pos = p->pos0 + t;
    const uint32_t j0 = p->n_swa > 0 && pos + 1 > p->n_swa ? pos + 1 - p->n_swa : 0;
    double *z = g_new(double, pos + 1 - j0);
    for (uint32_t h = 0; h < p->H; h++) {
      const uint32_t g = h / ng;
      const float *q = p->qkv + (uint64_t)t * p->ldq + (uint64_t)h * p->dk;
      double mx = -INFINITY;
      for (uint32_t j = j0; j <= pos; j++) {
        wh_quant_dequantize_row(kv_type, p->k + (uint64_t)j * p->row_k, k, nk);
        double dot = 0.0;
        for (uint32_t i = 0; i < p->dk; i++)
          dot += (double)q[i] * k[g * p->dk + i];
        float zf = (float)dot * p->scale;
        if (p->softcap > 0.0f)
          zf = p->softcap * tanhf(zf / p->softcap);
        z[j - j0] = zf;
        mx = MAX(mx, zf);
      }
      double sum = 0.0;
      for (uint32_t j = j0; j <= pos; j++)
        sum += (z[j - j0] = exp(z[j - j0] - mx));
      float *out = p->out_ + (uint64_t)t * p->ldo + (uint64_t)h * p->dv;
      for (uint32_t i = 0; i < p->dv; i++)
        out[i] = 0.0f;
      for (uint32_t j = j0; j <= pos; j++) {
        wh_quant_dequantize_row(kv_type, p->v + (uint64_t)j * p->row_v, v, nv);
        for (uint32_t i = 0; i < p->dv; i++)
          out[i] += (float)(z[j - j0] / sum) * v[g * p->dv + i];
      }
    }
    g_free(z);
  }
  g_free(k);
  g_free(v);
  return 0;
}

int
wh_cu_quantize_act(wh_cu_stream *s, int act_type, const wh_cu_quantize_act_params *p, uint32_t K,
                   uint32_t n_tokens)
{
  const uint32_t qb = act_type == WH_CU_Q8_K ? 256 : 32;
  for (uint32_t t = 0; t < n_tokens; t++)
    for (uint32_t b = 0; b < K / qb; b++) {
      const float *x = p->x + (uint64_t)t * p->ldx + b * qb;
      float *y = p->y + (uint64_t)t * p->ldy + b * qb;
      float amax = 0.0f, m = 0.0f;
      for (uint32_t i = 0; i < qb; i++)
        if (fabsf(x[i]) > amax)
          amax = fabsf(x[i]), m = x[i];
      if (qb == 256) {
        const float iscale = amax != 0.0f ? -127.0f / m : 0.0f;
        for (uint32_t i = 0; i < qb; i++)
          y[i] = amax != 0.0f ? fminf(127.0f, rintf(iscale * x[i])) * (1.0f / iscale) : 0.0f;
      } else {
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        const float dr = wh_fp16_to_fp32(wh_fp32_to_fp16(d));
        for (uint32_t i = 0; i < qb; i++)
          y[i] = rintf(x[i] * id) * dr;
      }
    }
  return 0;
}
