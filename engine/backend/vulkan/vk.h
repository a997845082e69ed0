/* vk.h — the Vulkan backend as the model's context sees it.
 *
 * Design note
 * -----------
 * A context with n_gpu_layers > 0 owns one wh_vk_ctx: the device, the
 * weights of its offloaded layers (and of the output layer when it runs
 * there) uploaded as raw blocks, their KV cache, the GPU compute scratch,
 * a host-visible I/O block and, with the output layer, a host-visible
 * logits buffer; every size is the one wh_model_memory_plan_devices()
 * gives for the GPU, and what was allocated is recorded in
 * ctx->allocated_gpu.
 * A step runs the CPU layers first; then one command buffer uploads the
 * residual stream (one transfer at the CPU -> GPU boundary), runs the GPU
 * layers (and the output layer), and brings back either the residual
 * stream or the logits (one transfer back). Command buffers are recorded
 * once per step shape (tokens in the batch, first logit row) and reused:
 * the position lives in the I/O block, not in the commands.
 * Not on the GPU (kept on the CPU, and said so in the context's note):
 * KV cache types q8_0/q4_0, and layers whose weights have a type without a
 * kernel (see wh_vk_type_supported()); offloading then starts above the
 * highest such layer.
 *
 * Thread-safety: the context's thread only.
 */
#pragma once

#include "model/model-private.h"

G_BEGIN_DECLS

/* Lowers cp->n_gpu_layers to what the backend can run for @model (KV type, tensor types,
 * head sizes; 0 when the build has no Vulkan backend). Returns a newly allocated sentence
 * saying what stays on the CPU and why, or NULL when nothing changed. Pure (no device). */
char *wh_vk_clamp_layers(const wh_model *model, wh_context_params *cp);
/* What the Vulkan backend runs (for wh_model_hparams_gpu_layers(): the planner asks it too),
 * or NULL when the build has no Vulkan backend. Static data. */
const wh_gpu_caps *wh_vk_gpu_caps(void);

/* Opens the device (cp.device), allocates the GPU side of ctx->lay.split and uploads the
 * weights. Errors: WH_VK_ERROR_* (no device, no memory, ...). */
gboolean wh_vk_context_init(wh_context *ctx, GError **error);
void wh_vk_context_free(wh_context *ctx); /* NULL-safe ctx->vk */

/* Runs layers [il_begin, n_layer) of @batch on the GPU, starting from the residual stream
 * in the CPU's compute block (and the RoPE tables the embed phase wrote there). With the
 * output layer on the GPU, writes the logits rows to ctx->logits; otherwise leaves the
 * resulting residual stream in the CPU's compute block. */
gboolean wh_vk_context_layers(wh_context *ctx, const wh_batch *batch, guint32 il_begin,
                              GError **error);

/* Context shift for the GPU layers' cache: moves cells [from, from + n_move) to @to and
 * re-rotates their keys by @delta positions (as wh_cpu_rope_shift() does on the CPU). */
gboolean wh_vk_context_shift(wh_context *ctx, guint32 to, guint32 from, guint32 n_move,
                             gint64 delta, GError **error);

/* The name of the device the context runs its GPU layers on ("" without one). */
const char *wh_vk_context_device_name(const wh_context *ctx);

G_END_DECLS
