/* context.c — KV cache, planned allocation, and the decode loop.
 *
 * The KV cache is linear: cell i holds the token at position i of the
 * sequence, so masks compare cell indexes. A context shift moves cells down
 * and re-rotates their keys, keeping that invariant.
 */
#include "config.h"

#include "model/model-private.h"
#include "backend/cuda/cuda.h"
#include "backend/vulkan/vk.h"

#include <string.h>

void wh_cpu_rope_shift(wh_context *ctx, guint32 from, guint32 to, gint64 delta);

wh_context_params
wh_context_default_params(void)
{
  wh_context_params p = {
      .n_ctx = 0,
      .n_batch = 512,
      .kv_type = WH_KV_F16,
      .n_threads = 0,
      .n_gpu_layers = 0,
      .device = "",
  };
  return p;
}

static guint8 *
planned_alloc(guint64 bytes, guint64 *record)
{
  *record += bytes;
  return bytes ? g_aligned_alloc(1, bytes, 64) : NULL;
}

wh_context *
wh_context_new(wh_model *model, const wh_context_params *params, GError **error)
{
  wh_context_params cp = params ? *params : wh_context_default_params();
  if (cp.n_ctx == 0)
    cp.n_ctx = MIN(model->hp.n_ctx_train ? model->hp.n_ctx_train : 4096, 4096);
  if (cp.n_batch == 0)
    cp.n_batch = 512;
  cp.n_batch = MIN(cp.n_batch, cp.n_ctx);
  if (cp.n_threads <= 0)
    cp.n_threads = model->params.n_threads;

  /* GPU layers the backend cannot run stay on the CPU (the note says which, why); device
   * "cuda" / "cuda:N" picks the CUDA backend, anything else Vulkan */
  const gboolean cuda = wh_cuda_device_requested(cp.device);
  char *gpu_note = cuda ? wh_cuda_context_prepare(model, &cp) : wh_vk_clamp_layers(model, &cp);

  wh_context *ctx = g_new0(wh_context, 1);
  ctx->model = model;
  ctx->params = cp;
  ctx->gpu_note = gpu_note;
  ctx->backend = &wh_backend_cpu;
  if (!wh_model_compute_layout(&model->hp, &cp, &ctx->lay, error)) {
    g_free(ctx->gpu_note);
    g_free(ctx);
    return NULL;
  }
  const wh_memory_plan *plan = &ctx->lay.plan;
  /* Mapped, not copied: the file bytes of the tensors the CPU side reads (the offloaded
   * layers' tensors are only read once, to upload them; see the device rule in model.h). */
  ctx->allocated.weights = plan->weights;
  ctx->allocated.overhead = sizeof(wh_context);
  ctx->kv = planned_alloc(plan->kv_cache, &ctx->allocated.kv_cache);
  ctx->compute = planned_alloc(plan->compute, &ctx->allocated.compute);
  ctx->logits = (float *)planned_alloc(plan->output, &ctx->allocated.output);
  ctx->overhead = planned_alloc(ctx->lay.overhead_block, &ctx->allocated.overhead);
  ctx->allocated.total = ctx->allocated.weights + ctx->allocated.kv_cache + ctx->allocated.compute +
                         ctx->allocated.output + ctx->allocated.overhead;

  ctx->tokens = (gint32 *)(ctx->overhead + ctx->lay.off_ov_tokens);
  ctx->rope_freq[0] = (double *)(ctx->overhead + ctx->lay.off_ov_rope);
  ctx->rope_freq[1] = ctx->rope_freq[0] + ctx->lay.n_pairs;
  wh_model_rope_freqs(model, &cp, FALSE, ctx->rope_freq[0], &ctx->rope_mscale[0]);
  wh_model_rope_freqs(model, &cp, TRUE, ctx->rope_freq[1], &ctx->rope_mscale[1]);

  ctx->pool = wh_threadpool_new(cp.n_threads);
  if (cp.n_gpu_layers > 0 &&
      !(cuda ? wh_cuda_context_init(ctx, error) : wh_vk_context_init(ctx, error))) {
    wh_context_free(ctx);
    return NULL;
  }
  return ctx;
}

void
wh_context_free(wh_context *ctx)
{
  if (!ctx)
    return;
  wh_vk_context_free(ctx);
  wh_cuda_context_free(ctx);
  g_free(ctx->gpu_note);
  wh_threadpool_free(ctx->pool);
  g_aligned_free(ctx->kv);
  g_aligned_free(ctx->compute);
  g_aligned_free(ctx->logits);
  g_aligned_free(ctx->overhead);
  g_free(ctx);
}

guint32
wh_context_n_past(const wh_context *ctx)
{
  return ctx->n_past;
}

guint32
wh_context_n_ctx(const wh_context *ctx)
{
  return ctx->params.n_ctx;
}

const wh_context_params *
wh_context_get_params(const wh_context *ctx)
{
  return &ctx->params;
}

const gint32 *
wh_context_get_tokens(const wh_context *ctx)
{
  return ctx->tokens;
}

void
wh_context_clear(wh_context *ctx)
{
  ctx->n_past = 0;
  ctx->n_logits = 0;
}

void
wh_context_truncate(wh_context *ctx, guint32 n_keep)
{
  ctx->n_past = MIN(ctx->n_past, n_keep);
}

void
wh_context_shift(wh_context *ctx, guint32 n_keep, guint32 n_discard)
{
  const wh_model_hparams *hp = &ctx->model->hp;
  n_keep = MIN(n_keep, ctx->n_past);
  n_discard = MIN(n_discard, ctx->n_past - n_keep);
  if (n_discard == 0)
    return;
  const guint32 from = n_keep + n_discard, n_move = ctx->n_past - from;
  const guint32 g0 = ctx->vk || ctx->cuda ? ctx->lay.split.first_gpu_layer : hp->n_layer;
  for (guint32 il = 0; il < g0; il++) {
    memmove(wh_context_k_cell(ctx, il, n_keep), wh_context_k_cell(ctx, il, from),
            n_move * ctx->lay.kv_row_k[il]);
    memmove(wh_context_v_cell(ctx, il, n_keep), wh_context_v_cell(ctx, il, from),
            n_move * ctx->lay.kv_row_v[il]);
  }
  memmove(ctx->tokens + n_keep, ctx->tokens + from, n_move * sizeof(gint32));
  wh_cpu_rope_shift(ctx, n_keep, n_keep + n_move, -(gint64)n_discard);
  g_autoptr(GError) error = NULL;
  if (ctx->vk && !wh_vk_context_shift(ctx, n_keep, from, n_move, -(gint64)n_discard, &error))
    g_warning("context shift on the GPU failed: %s", error->message);
  if (ctx->cuda && !wh_cuda_context_shift(ctx, n_keep, from, n_move, -(gint64)n_discard, &error))
    g_warning("context shift on the CUDA device failed: %s", error->message);
  ctx->n_past -= n_discard;
}

const float *
wh_context_decode(wh_context *ctx, const gint32 *tokens, guint32 n, gboolean want_all_logits,
                  GError **error)
{
  const wh_model_hparams *hp = &ctx->model->hp;
  const guint32 n_ctx = ctx->params.n_ctx, nb = ctx->lay.nb;
  if (n == 0) {
    g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_CONTEXT, "decode called with no tokens");
    return NULL;
  }
  for (guint32 i = 0; i < n; i++) {
    if (tokens[i] < 0 || (guint32)tokens[i] >= hp->n_vocab) {
      g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_CONTEXT,
                  "token %u of the input has id %d, outside the vocabulary (0..%u)", i, tokens[i],
                  hp->n_vocab - 1);
      return NULL;
    }
  }
  if (want_all_logits && n > nb) {
    g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_CONTEXT,
                "logits for all %u tokens were asked for, but the batch size is %u: "
                "create the context with a larger n_batch",
                n, nb);
    return NULL;
  }
  if (n > n_ctx) {
    g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_CONTEXT,
                "%u tokens do not fit in a context of %u tokens", n, n_ctx);
    return NULL;
  }
  if (ctx->n_past + n > n_ctx) {
    /* Context shift: keep the first token (BOS), drop the older half of the rest (or more
     * if the new tokens need it). */
    const guint32 n_keep = MIN(1u, ctx->n_past);
    guint32 n_discard = MAX((ctx->n_past - n_keep) / 2, ctx->n_past + n - n_ctx);
    if (n_discard > ctx->n_past - n_keep) {
      g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_CONTEXT,
                  "%u tokens do not fit in a context of %u tokens after keeping %u", n, n_ctx,
                  n_keep);
      return NULL;
    }
    wh_context_shift(ctx, n_keep, n_discard);
  }

  for (guint32 off = 0; off < n; off += nb) {
    const guint32 m = MIN(nb, n - off);
    const gboolean last = off + m == n;
    wh_batch batch = {
        .tokens = tokens + off,
        .n_tokens = m,
        .pos0 = ctx->n_past,
        .first_logit = want_all_logits ? 0 : (last ? m - 1 : m),
    };
    /* layers [0, g0) on the CPU, [g0, n_layer) (and maybe the output) on the GPU */
    const guint32 g0 = ctx->vk || ctx->cuda ? ctx->lay.split.first_gpu_layer : hp->n_layer;
    ctx->backend->embed(ctx, &batch);
    ctx->backend->layers(ctx, &batch, 0, g0);
    if (ctx->vk && !wh_vk_context_layers(ctx, &batch, g0, error))
      return NULL;
    if (ctx->cuda && !wh_cuda_context_layers(ctx, &batch, g0, error))
      return NULL;
    if (batch.first_logit < m && !((ctx->vk || ctx->cuda) && ctx->lay.split.gpu_output))
      ctx->backend->output(ctx, &batch);
    memcpy(ctx->tokens + ctx->n_past, tokens + off, m * sizeof(gint32));
    ctx->n_past += m;
  }
  ctx->n_logits = want_all_logits ? n : 1;
  return ctx->logits;
}

void
wh_context_get_device_memory(const wh_context *ctx, wh_memory_plan_devices *planned,
                             wh_memory_plan_devices *allocated)
{
  if (planned)
    *planned = ctx->lay.split;
  if (allocated) {
    *allocated = ctx->lay.split;
    allocated->dev[WH_PLAN_CPU] = ctx->allocated;
    allocated->dev[WH_PLAN_GPU] = ctx->allocated_gpu;
  }
}

void
wh_context_set_matmul_observer(wh_context *ctx, wh_matmul_observer fn, gpointer user_data)
{
  ctx->mm_observer = fn;
  ctx->mm_observer_data = fn ? user_data : NULL;
}

void
wh_context_get_memory(const wh_context *ctx, wh_memory_plan *planned, wh_memory_plan *allocated)
{
  if (planned)
    *planned = ctx->lay.plan;
  if (allocated)
    *allocated = ctx->allocated;
}

const char *
wh_context_get_gpu_note(const wh_context *ctx)
{
  return ctx->gpu_note;
}

const char *
wh_context_get_gpu_device(const wh_context *ctx)
{
  return ctx->cuda ? wh_cuda_context_device_name(ctx) : wh_vk_context_device_name(ctx);
}

/* --- which layers a GPU backend can take (shared by Vulkan and CUDA) -------------------- */

char *
wh_model_clamp_gpu_layers(const wh_model *model, wh_context_params *cp, const wh_gpu_caps *caps)
{
  char note[256];
  cp->n_gpu_layers = wh_model_hparams_gpu_layers(&model->hp, caps, cp->kv_type, cp->n_gpu_layers,
                                                 note, sizeof note);
  return note[0] ? g_strdup(note) : NULL;
}
