/* cuda.h — the CUDA backend as the model's context sees it.
 *
 * Design note
 * -----------
 * The twin of engine/backend/vulkan/vk.h. A context whose device is "cuda" or "cuda:N"
 * (wh_context_params.device) and that offloads layers owns one wh_cuda_forward (ctx->cuda):
 * the device, the weights of its offloaded layers (and of the output layer when it runs
 * there), their KV cache, the GPU compute block and, with the output layer, a logits buffer;
 * every size is the one wh_model_memory_plan_devices() gives for the GPU, and what was
 * allocated is recorded in ctx->allocated_gpu (cuda-private.h has the details).
 * A step runs the CPU layers first; then the residual stream goes up once, the GPU layers
 * (and the output layer) run on one stream, and either the residual stream or the logits
 * come back once.
 * Not on the GPU (kept on the CPU, and said so in the context's note): layers whose weights
 * have a type without a kernel (see wh_cuda_type_supported()); offloading then starts above
 * the highest such layer. Without CUDA (no driver, no device, or a build without
 * -Dcuda=enabled) a context asked for CUDA layers runs them all on the CPU, and its note
 * says "no CUDA device: ..." with the reason.
 *
 * Thread-safety: the context's thread only.
 */
#pragma once

#include "model/model-private.h"

G_BEGIN_DECLS

/* Whether @device names the CUDA backend: "cuda" (the first CUDA device) or "cuda:N". */
gboolean wh_cuda_device_requested(const char *device);

/* Lowers cp->n_gpu_layers to what the CUDA backend can run for @model on this machine: 0 with
 * a "no CUDA device: ..." note when there is none, else wh_cuda_clamp_layers(). Returns a
 * newly allocated sentence saying what stays on the CPU and why, or NULL. */
char *wh_cuda_context_prepare(const wh_model *model, wh_context_params *cp);
/* What the CUDA backend runs (for wh_model_hparams_gpu_layers(): the planner asks it too), or
 * NULL when the build has no CUDA backend. Static data. */
const wh_gpu_caps *wh_cuda_gpu_caps(void);

/* Opens the device (cp.device), allocates the GPU side of ctx->lay.split and uploads the
 * weights into ctx->cuda. Errors: WH_CUDA_ERROR_*. */
gboolean wh_cuda_context_init(wh_context *ctx, GError **error);
void wh_cuda_context_free(wh_context *ctx); /* NULL-safe ctx->cuda */

/* As wh_cuda_forward_layers() / wh_cuda_forward_shift() on ctx->cuda. */
gboolean wh_cuda_context_layers(wh_context *ctx, const wh_batch *batch, guint32 il_begin,
                                GError **error);
gboolean wh_cuda_context_shift(wh_context *ctx, guint32 to, guint32 from, guint32 n_move,
                               gint64 delta, GError **error);

/* The name of the CUDA device the context runs its GPU layers on ("" without one). */
const char *wh_cuda_context_device_name(const wh_context *ctx);

G_END_DECLS
