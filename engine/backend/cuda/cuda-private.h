/* cuda-private.h — the CUDA backend: device, offloaded layers, forward pass.
 *
 * Design note
 * -----------
 * Twin of the Vulkan backend (engine/backend/vulkan/vk-private.h): one wh_cuda_device per
 * context that offloads layers (the chosen CUDA device, by name or "cuda:N", else the first;
 * one non-blocking stream), and one wh_cuda_forward holding that context's side of the
 * per-device memory rule of model.h: the weights of the offloaded layers (every "blk.N."
 * tensor of them, plus output_norm/output and a copy of a tied embedding when the output layer
 * is offloaded), their KV cache, the GPU compute block of wh_model_compute_layout(), and the
 * logits buffer with the output layer; exactly the planned bytes, recorded in
 * ctx->allocated_gpu.
 * Kernels live in *.cu (nvcc), one file per kernel named after its Vulkan shader twin; this
 * file is plain C and calls them through cuda-kernels.h.
 * A step moves activations across the boundary once each way: the residual stream x of the
 * batch is uploaded before the first offloaded layer, and either x comes back (CPU output
 * layer) or only the wanted logits rows do.
 * Without CUDA (a build without -Dcuda=enabled, no NVIDIA driver, no device) every entry point
 * fails with a GError that says so plainly, and callers fall back to the CPU or Vulkan.
 * Weight types the kernels do not read (grid i-quants, TQ*, MXFP4, BF16...) make
 * wh_cuda_forward_new() fail with UNSUPPORTED naming the tensor: the caller keeps those
 * layers on the CPU.
 *
 * Thread-safety: a device and a forward are used by one thread at a time (their context's).
 * wh_cuda_probe() may be called from any thread.
 */
#pragma once

#include <glib.h>

#include "gguf/gguf-types.h"
#include "model/model-private.h"

G_BEGIN_DECLS

#define WH_CUDA_ERROR (wh_cuda_error_quark())
GQuark wh_cuda_error_quark(void);

typedef enum {
  WH_CUDA_ERROR_NOT_BUILT,   /* this build has no CUDA backend (-Dcuda=enabled) */
  WH_CUDA_ERROR_NO_DEVICE,   /* no NVIDIA driver, no CUDA device, or none matches the name */
  WH_CUDA_ERROR_NO_MEMORY,   /* the device is out of memory */
  WH_CUDA_ERROR_UNSUPPORTED, /* a tensor or KV cache type the kernels do not read */
  WH_CUDA_ERROR_FAILED,      /* any other CUDA failure (the cudaError_t is named) */
} wh_cuda_error;

/* Whether this build has the CUDA backend. */
gboolean wh_cuda_is_built(void);

/* Counts the CUDA devices. Returns the count (> 0), or 0 with @error NOT_BUILT or NO_DEVICE
 * ("no CUDA device: <the runtime's reason>") when there is none. */
guint wh_cuda_probe(GError **error);

/* Whether the kernels read weights of @type (matmul, embedding rows). */
gboolean wh_cuda_type_supported(wh_type type);

typedef struct wh_cuda_device wh_cuda_device;

/* Opens the CUDA device whose name contains @name (case-insensitive; "cuda:N" = ordinal N;
 * NULL or "" = the first). Errors: NOT_BUILT, NO_DEVICE (listing the devices there are). */
wh_cuda_device *wh_cuda_device_open(const char *name, GError **error);
void wh_cuda_device_free(wh_cuda_device *dev); /* NULL-safe; waits for the stream */
const char *wh_cuda_device_name(const wh_cuda_device *dev);
/* Total and free device memory in bytes (cudaMemGetInfo). */
gboolean wh_cuda_device_memory(wh_cuda_device *dev, guint64 *total, guint64 *free_bytes,
                               GError **error);

typedef struct wh_cuda_forward wh_cuda_forward;

/* Lowers cp->n_gpu_layers to what the CUDA backend can run for @model (KV type, tensor types,
 * head sizes; 0 when the build has no CUDA backend). Returns a newly allocated sentence saying
 * what stays on the CPU and why, or NULL when nothing changed. Pure (no device). The twin of
 * wh_vk_clamp_layers(); unlike Vulkan, CUDA also keeps q8_0 and q4_0 KV caches. */
char *wh_cuda_clamp_layers(const wh_model *model, wh_context_params *cp);

/* Takes the GPU side of @ctx's plan (ctx->lay.split: layers [first_gpu_layer, n_layer), the
 * output layer when gpu_output) onto @dev (owned by the forward from now on, also on
 * failure): allocates the planned blocks, uploads the weights through a page-locked staging
 * buffer (freed before returning), and records the allocation in ctx->allocated_gpu.
 * ctx->params must have been clamped by wh_cuda_clamp_layers().
 * Errors: UNSUPPORTED (weight or KV type, naming the tensor), NO_MEMORY (naming the block and
 * its size), FAILED. */
wh_cuda_forward *wh_cuda_forward_new(wh_context *ctx, wh_cuda_device *dev, GError **error);
void wh_cuda_forward_free(wh_cuda_forward *fw); /* NULL-safe; zeroes ctx->allocated_gpu */
const char *wh_cuda_forward_device_name(const wh_cuda_forward *fw);

/* Runs layers [il_begin, n_layer) of @batch on the GPU, starting from the residual stream in
 * the CPU's compute block (and the RoPE tables the embed phase wrote there). With the output
 * layer on the GPU, writes the wanted logits rows to ctx->logits; otherwise leaves the
 * resulting residual stream in the CPU's compute block. */
gboolean wh_cuda_forward_layers(wh_cuda_forward *fw, const wh_batch *batch, guint32 il_begin,
                                GError **error);

/* Context shift for the GPU layers' cache: moves cells [from, from + n_move) to @to and
 * re-rotates their keys by @delta positions (as wh_cpu_rope_shift() does on the CPU). */
gboolean wh_cuda_forward_shift(wh_cuda_forward *fw, guint32 to, guint32 from, guint32 n_move,
                               gint64 delta, GError **error);

G_END_DECLS
