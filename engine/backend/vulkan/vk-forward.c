/* vk-forward.c — the forward pass of the offloaded layers on a Vulkan device.
 *
 * Mirrors engine/model/cpu.c stage by stage (same buffers, same order of operations), with
 * one kernel dispatch per stage (vk-device.c records them). GPU memory (sizes from
 * wh_model_memory_plan_devices(), model.c):
 *   weights   one device-local buffer per offloaded layer holding all its "blk.N." tensors,
 *             raw blocks as in the file, each at a 16-byte aligned offset; one more for the
 *             output layer (output_norm, output, bias; the token embedding when tied)
 *   kv_cache  one device-local buffer; layer il's K cells then V cells at lay.kv_layer_off[il]
 *   compute   device-local activations x, h, qkv, attn, tmp, ff, qact (a matmul input
 *             rounded to 8-bit activation blocks) ([nb][...] F32, 64-byte aligned) + the
 *             host-visible I/O block: step (pos0), x in/out, RoPE cos/sin
 *   output    host-visible logits [nb][n_vocab] F32 (only with the output layer)
 * Buffers in the compute block are laid out by compute_layout() below with the same
 * carving rule as model.c's gpu_compute_bytes(); context init checks the totals agree.
 */
#include "config.h"

#include "backend/vulkan/vk.h"
#include "backend/vulkan/vk-private.h"
#include "quant/quant.h"

#include <math.h>
#include <string.h>

#define TENSOR_ALIGN 16
#define CARVE_ALIGN 64
#define N_CMD_CACHE 4

/* Offsets of the GPU compute buffers (bytes). */
typedef struct {
  guint64 x, h, qkv, attn, tmp, ff, qact, device_bytes;
  guint64 step, io_x, rope, io_bytes;
} vk_compute_layout;

typedef struct {
  guint32 n_tokens, first_logit;
  VkCommandBuffer cmd;
  guint64 last_use;
} cmd_slot;

struct wh_vk_ctx {
  wh_vk_device *dev;
  guint32 il0; /* first GPU layer */
  gboolean gpu_output;
  wh_vk_buffer *layer_w; /* per layer (index il - il0) */
  wh_vk_buffer out_w;
  wh_vk_buffer kv, compute, io, logits;
  vk_compute_layout cl;
  GHashTable *addr; /* const wh_gguf_tensor * -> device address (guint64 *) */
  cmd_slot cmds[N_CMD_CACHE];
  guint64 n_steps;
  /* while recording: what the qact buffer holds (input address and activation type; 0 =
   * nothing valid), so matmuls sharing an input round it once */
  guint64 qact_src;
  wh_type qact_type;
};

typedef struct wh_vk_ctx wh_vk_ctx;

static guint64
carve(guint64 *top, guint64 bytes)
{
  guint64 off = *top;
  *top = (*top + bytes + CARVE_ALIGN - 1) & ~(guint64)(CARVE_ALIGN - 1);
  return off;
}

/* The same buffers, sizes and order as model.c's gpu_compute_bytes(). */
static void
compute_layout(const wh_model_hparams *hp, const wh_model_layout *lay, vk_compute_layout *cl)
{
  const guint64 nb = lay->nb, d = hp->n_embd;
  guint64 top = 0;
  cl->x = carve(&top, nb * d * 4);
  cl->h = carve(&top, nb * d * 4);
  cl->qkv = carve(&top, nb * lay->qkv_width * 4);
  cl->attn = carve(&top, nb * (guint64)hp->n_head_max * hp->head_dim_v * 4);
  cl->tmp = carve(&top, nb * d * 4);
  cl->ff = carve(&top, nb * lay->ff_width * 4);
  cl->qact = carve(&top, nb * (guint64)lay->k_max * 4);
  cl->device_bytes = top;
  top = 0;
  cl->step = carve(&top, 16);
  cl->io_x = carve(&top, nb * d * 4);
  cl->rope = carve(&top, 2 * 2 * nb * lay->n_pairs * 4);
  cl->io_bytes = top;
}

/* --- which layers can go --------------------------------------------------------------- */

/* No kernels for quantized KV caches; the attention kernel's head limit is its shared-memory
 * row of 256 values. */
static const wh_gpu_caps vk_caps = {"Vulkan", wh_vk_type_supported, FALSE, 256};

const wh_gpu_caps *
wh_vk_gpu_caps(void)
{
  return &vk_caps;
}

char *
wh_vk_clamp_layers(const wh_model *model, wh_context_params *cp)
{
  return wh_model_clamp_gpu_layers(model, cp, &vk_caps);
}

/* --- init ------------------------------------------------------------------------------ */

/* Uploads every tensor whose name starts with one of @prefixes (NULL-terminated) into one new
 * buffer, recording their addresses. */
static gboolean
upload_tensors(wh_context *ctx, const char *const *prefixes, wh_vk_buffer *buf, GError **error)
{
  wh_vk_ctx *vk = ctx->vk;
  const wh_gguf *g = ctx->model->gguf;
  const guint64 n = wh_gguf_n_tensors(g);
  guint64 total = 0;
  for (int pass = 0; pass < 2; pass++) {
    guint64 off = 0;
    for (guint64 i = 0; i < n; i++) {
      const wh_gguf_tensor *t = wh_gguf_get_tensor(g, i);
      gboolean match = FALSE;
      for (const char *const *p = prefixes; *p && !match; p++)
        match = g_str_has_prefix(t->name, *p) || strcmp(t->name, *p) == 0;
      if (!match)
        continue;
      if (pass == 1) {
        if (!wh_vk_upload(vk->dev, buf, off, t->data, t->n_bytes, error))
          return FALSE;
        guint64 *a = g_new(guint64, 1);
        *a = buf->addr + off;
        g_hash_table_insert(vk->addr, (gpointer)t, a);
      }
      off = (off + t->n_bytes + TENSOR_ALIGN - 1) & ~(guint64)(TENSOR_ALIGN - 1);
    }
    if (pass == 0) {
      total = off;
      if (!wh_vk_buffer_alloc(vk->dev, total, FALSE, buf, error))
        return FALSE;
    }
  }
  return TRUE;
}

gboolean
wh_vk_context_init(wh_context *ctx, GError **error)
{
  const wh_model_hparams *hp = &ctx->model->hp;
  const wh_memory_plan_devices *split = &ctx->lay.split;
  const wh_memory_plan *plan = &split->dev[WH_PLAN_GPU];
  wh_vk_ctx *vk = g_new0(wh_vk_ctx, 1);
  ctx->vk = vk;
  vk->il0 = split->first_gpu_layer;
  vk->gpu_output = split->gpu_output;
  vk->addr = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
  compute_layout(hp, &ctx->lay, &vk->cl);
  if (vk->cl.device_bytes + vk->cl.io_bytes != plan->compute) {
    g_set_error(error, WH_VK_ERROR, WH_VK_ERROR_FAILED,
                "internal: the Vulkan compute layout (%" G_GUINT64_FORMAT
                " bytes) differs from the memory plan (%" G_GUINT64_FORMAT " bytes)",
                vk->cl.device_bytes + vk->cl.io_bytes, plan->compute);
    return FALSE;
  }

  vk->dev = wh_vk_device_open(ctx->params.device, error);
  if (!vk->dev)
    return FALSE;

  wh_memory_plan *rec = &ctx->allocated_gpu;
  memset(rec, 0, sizeof(*rec));
  const guint32 n_gpu = hp->n_layer - vk->il0;
  vk->layer_w = g_new0(wh_vk_buffer, MAX(n_gpu, 1));
  for (guint32 il = vk->il0; il < hp->n_layer; il++) {
    g_autofree char *prefix = g_strdup_printf("blk.%u.", il);
    const char *prefixes[] = {prefix, NULL};
    if (!upload_tensors(ctx, prefixes, &vk->layer_w[il - vk->il0], error))
      return FALSE;
    rec->weights += vk->layer_w[il - vk->il0].memory;
  }
  if (vk->gpu_output) {
    const char *prefixes[] = {"output_norm.", "output.",
                              hp->tied_output ? "token_embd.weight" : NULL, NULL};
    if (!upload_tensors(ctx, prefixes, &vk->out_w, error))
      return FALSE;
    rec->weights += vk->out_w.memory;
  }
  if (plan->kv_cache && !wh_vk_buffer_alloc(vk->dev, plan->kv_cache, FALSE, &vk->kv, error))
    return FALSE;
  rec->kv_cache = vk->kv.memory;
  if (!wh_vk_buffer_alloc(vk->dev, vk->cl.device_bytes, FALSE, &vk->compute, error) ||
      !wh_vk_buffer_alloc(vk->dev, vk->cl.io_bytes, TRUE, &vk->io, error))
    return FALSE;
  rec->compute = vk->compute.memory + vk->io.memory;
  if (plan->output && !wh_vk_buffer_alloc(vk->dev, plan->output, TRUE, &vk->logits, error))
    return FALSE;
  rec->output = vk->logits.memory;
  rec->total = rec->weights + rec->kv_cache + rec->compute + rec->output + rec->overhead;
  return TRUE;
}

void
wh_vk_context_free(wh_context *ctx)
{
  wh_vk_ctx *vk = ctx->vk;
  if (!vk)
    return;
  if (vk->dev) {
    for (int i = 0; i < N_CMD_CACHE; i++)
      wh_vk_cmd_free(vk->dev, vk->cmds[i].cmd);
    if (vk->layer_w)
      for (guint32 il = vk->il0; il < ctx->model->hp.n_layer; il++)
        wh_vk_buffer_free(vk->dev, &vk->layer_w[il - vk->il0]);
    wh_vk_buffer_free(vk->dev, &vk->out_w);
    wh_vk_buffer_free(vk->dev, &vk->kv);
    wh_vk_buffer_free(vk->dev, &vk->compute);
    wh_vk_buffer_free(vk->dev, &vk->io);
    wh_vk_buffer_free(vk->dev, &vk->logits);
    wh_vk_device_free(vk->dev);
  }
  g_free(vk->layer_w);
  g_hash_table_destroy(vk->addr);
  g_free(vk);
  ctx->vk = NULL;
}

const char *
wh_vk_context_device_name(const wh_context *ctx)
{
  return ctx->vk && ctx->vk->dev ? wh_vk_device_name(ctx->vk->dev) : "";
}

/* --- recording a step ------------------------------------------------------------------ */

static guint64
taddr(wh_vk_ctx *vk, const wh_gguf_tensor *t)
{
  if (!t)
    return 0;
  guint64 *a = g_hash_table_lookup(vk->addr, t);
  g_assert(a); /* every tensor of a GPU layer was uploaded */
  return *a;
}

/* Records y = W x (+ bias) for @n tokens; x, y are device addresses, strides in floats.
 * Like the CPU path, weights of a quantized type multiply the input rounded to their 8-bit
 * activation type (Q8_0, Q8_1 or Q8_K; rounded once per input and type, into qact). */
static gboolean
rec_mul_mat(wh_vk_ctx *vk, VkCommandBuffer cmd, const wh_gguf_tensor *w, guint64 x, guint32 ldx,
            guint64 y, guint32 ldy, const wh_gguf_tensor *bias, guint32 n, GError **error)
{
  const wh_type act = wh_quant_vec_dot_type(w->type);
  if (act != WH_TYPE_F32) {
    const guint64 qact = vk->compute.addr + vk->cl.qact;
    if (vk->qact_src != x || vk->qact_type != act) {
      wh_vk_pc_quantize_act qa = {.x = x, .y = qact, .ldx = ldx, .ldy = (guint32)w->ne[0]};
      if (!wh_vk_op_quantize_act(vk->dev, cmd, act, &qa, (guint32)w->ne[0], n, error))
        return FALSE;
      vk->qact_src = x;
      vk->qact_type = act;
    }
    x = qact;
    ldx = (guint32)w->ne[0];
  }
  wh_vk_pc_mul_mat pc = {
      .w = taddr(vk, w),
      .x = x,
      .y = y,
      .bias = taddr(vk, bias),
      .K = (guint32)w->ne[0],
      .rows = (guint32)w->ne[1],
      .n_tokens = n,
      .ldx = ldx,
      .ldy = ldy,
      .row_bytes = (guint32)wh_quant_row_bytes(w->type, (gint64)w->ne[0]),
  };
  return wh_vk_op_mul_mat(vk->dev, cmd, w->type, &pc, error);
}

/* y rows = rms_norm(x rows) * w, @n_heads rows of @len per token. */
static gboolean
rec_norm(wh_context *ctx, VkCommandBuffer cmd, guint64 x, guint32 ldx, guint64 y, guint32 ldy,
         const wh_gguf_tensor *w, guint32 len, guint32 n_heads, guint32 n, GError **error)
{
  ctx->vk->qact_src = 0; /* h is rewritten */
  wh_vk_pc_rms_norm pc = {
      .x = x,
      .y = y,
      .w = taddr(ctx->vk, w),
      .n = len,
      .ldx_t = ldx,
      .ldx_h = len,
      .ldy_t = ldy,
      .ldy_h = len,
      .eps = ctx->model->hp.eps,
  };
  return wh_vk_op_rms_norm(ctx->vk->dev, cmd, &pc, n_heads, n, error);
}

static gboolean
rec_add(wh_vk_ctx *vk, VkCommandBuffer cmd, guint64 x, guint64 y, guint32 n, GError **error)
{
  wh_vk_pc_add pc = {.x = x, .y = y, .n = n};
  return wh_vk_op_add(vk->dev, cmd, &pc, error);
}

/* One layer, as cpu_layers() does it. */
static gboolean
rec_layer(wh_context *ctx, VkCommandBuffer cmd, guint32 il, guint32 n, GError **error)
{
  wh_vk_ctx *vk = ctx->vk;
  const wh_model_hparams *hp = &ctx->model->hp;
  const wh_layer_weights *L = &ctx->model->layers[il];
  const guint32 d = hp->n_embd, W = ctx->lay.qkv_width, dk = hp->head_dim_k, dv = hp->head_dim_v;
  const guint32 H = hp->n_head[il], Hkv = hp->n_head_kv[il], F = hp->n_ff[il];
  const guint64 base = vk->compute.addr;
  const guint64 x = base + vk->cl.x, h = base + vk->cl.h, qkv = base + vk->cl.qkv,
                attn = base + vk->cl.attn, tmp = base + vk->cl.tmp, ff = base + vk->cl.ff;
  const guint64 q = qkv, k = qkv + 4ull * H * dk, v = qkv + 4ull * (H + Hkv) * dk;
  const gboolean kv_f32 = ctx->params.kv_type == WH_KV_F32;
  const guint64 kcache = vk->kv.addr + ctx->lay.kv_layer_off[il];
  const guint64 vcache = kcache + (guint64)ctx->params.n_ctx * ctx->lay.kv_row_k[il];

  /* h = attn_norm(x); q | k | v */
  if (!rec_norm(ctx, cmd, x, d, h, d, L->attn_norm, d, 1, n, error))
    return FALSE;
  if (L->wqkv) {
    if (!rec_mul_mat(vk, cmd, L->wqkv, h, d, qkv, W, L->bqkv, n, error))
      return FALSE;
  } else if (!rec_mul_mat(vk, cmd, L->wq, h, d, q, W, L->bq, n, error) ||
             !rec_mul_mat(vk, cmd, L->wk, h, d, k, W, L->bk, n, error) ||
             !rec_mul_mat(vk, cmd, L->wv, h, d, v, W, L->bv, n, error)) {
    return FALSE;
  }

  /* Q/K norms, RoPE, K/V append */
  if (L->q_norm && !rec_norm(ctx, cmd, q, W, q, W, L->q_norm, dk, H, n, error))
    return FALSE;
  if (L->k_norm && !rec_norm(ctx, cmd, k, W, k, W, L->k_norm, dk, Hkv, n, error))
    return FALSE;
  const guint32 c = hp->swa_layer[il] ? 1 : 0, np = ctx->lay.n_pairs, nb = ctx->lay.nb;
  wh_vk_pc_rope rope = {
      .v = q,
      .tab = vk->io.addr + vk->cl.rope + 4ull * c * 2 * nb * np,
      .ld = W,
      .head_dim = dk,
      .n_pairs = hp->n_rot / 2,
      .nb = nb,
      .neox = hp->rope_type == WH_ROPE_NEOX,
  };
  if (!wh_vk_op_rope(vk->dev, cmd, &rope, H, n, error))
    return FALSE;
  rope.v = k;
  if (!wh_vk_op_rope(vk->dev, cmd, &rope, Hkv, n, error))
    return FALSE;
  wh_vk_pc_kv_store st = {.src = k,
                          .dst = kcache,
                          .step = vk->io.addr + vk->cl.step,
                          .n = Hkv * dk,
                          .ld = W,
                          .row_bytes = (guint32)ctx->lay.kv_row_k[il]};
  if (!wh_vk_op_kv_store(vk->dev, cmd, kv_f32, &st, n, error))
    return FALSE;
  st.src = v;
  st.dst = vcache;
  st.n = Hkv * dv;
  st.row_bytes = (guint32)ctx->lay.kv_row_v[il];
  if (!wh_vk_op_kv_store(vk->dev, cmd, kv_f32, &st, n, error))
    return FALSE;

  /* attention, output projection */
  wh_vk_pc_attn at = {
      .qkv = qkv,
      .out = attn,
      .k = kcache,
      .v = vcache,
      .step = vk->io.addr + vk->cl.step,
      .ldq = W,
      .ldo = H * dv,
      .H = H,
      .Hkv = Hkv,
      .dk = dk,
      .dv = dv,
      .row_k = (guint32)ctx->lay.kv_row_k[il],
      .row_v = (guint32)ctx->lay.kv_row_v[il],
      .n_swa = hp->swa_layer[il] ? hp->n_swa : 0,
      .scale = hp->attn_scale,
      .softcap = hp->attn_softcap,
  };
  vk->qact_src = 0;
  if (!wh_vk_op_attn(vk->dev, cmd, kv_f32, &at, n, error) ||
      !rec_mul_mat(vk, cmd, L->wo, attn, H * dv, tmp, d, L->bo, n, error))
    return FALSE;

  /* x += post_attn_norm(tmp); h = ffn_norm(x) */
  if (L->post_attn_norm && !rec_norm(ctx, cmd, tmp, d, tmp, d, L->post_attn_norm, d, 1, n, error))
    return FALSE;
  if (!rec_add(vk, cmd, x, tmp, n * d, error) ||
      !rec_norm(ctx, cmd, x, d, h, d, L->ffn_norm, d, 1, n, error))
    return FALSE;

  /* FFN */
  if (L->ffn_gate) {
    if (!rec_mul_mat(vk, cmd, L->ffn_gate, h, d, ff, 2 * F, L->b_gate, n, error) ||
        !rec_mul_mat(vk, cmd, L->ffn_up, h, d, ff + 4ull * F, 2 * F, L->b_up, n, error))
      return FALSE;
  } else if (!rec_mul_mat(vk, cmd, L->ffn_up, h, d, ff, 2 * F, L->b_up, n, error)) {
    return FALSE; /* phi3: fused gate | up */
  }
  wh_vk_pc_glu glu = {.ff = ff, .F = F, .gelu = hp->ffn_gelu};
  vk->qact_src = 0;
  if (!wh_vk_op_glu(vk->dev, cmd, &glu, n, error) ||
      !rec_mul_mat(vk, cmd, L->ffn_down, ff, 2 * F, tmp, d, L->b_down, n, error))
    return FALSE;

  /* x += post_ffw_norm(tmp) */
  if (L->post_ffn_norm && !rec_norm(ctx, cmd, tmp, d, tmp, d, L->post_ffn_norm, d, 1, n, error))
    return FALSE;
  return rec_add(vk, cmd, x, tmp, n * d, error);
}

/* The whole GPU part of a step of @n tokens: upload x, layers, output or download x. */
static gboolean
record_step(wh_context *ctx, VkCommandBuffer cmd, guint32 n, guint32 first_logit, GError **error)
{
  wh_vk_ctx *vk = ctx->vk;
  const wh_model *m = ctx->model;
  const guint32 d = m->hp.n_embd, V = m->hp.n_vocab;
  const guint64 x = vk->compute.addr + vk->cl.x, h = vk->compute.addr + vk->cl.h;

  vk->qact_src = 0;
  wh_vk_cmd_begin(vk->dev, cmd);
  wh_vk_cmd_copy(vk->dev, cmd, &vk->io, vk->cl.io_x, &vk->compute, vk->cl.x, 4ull * n * d);
  wh_vk_cmd_barrier(vk->dev, cmd);
  for (guint32 il = vk->il0; il < m->hp.n_layer; il++)
    if (!rec_layer(ctx, cmd, il, n, error))
      return FALSE;
  if (vk->gpu_output) {
    if (first_logit < n) {
      const guint32 rows = n - first_logit;
      const guint64 off = 4ull * first_logit * d;
      if (!rec_norm(ctx, cmd, x + off, d, h + off, d, m->output_norm, d, 1, rows, error) ||
          !rec_mul_mat(vk, cmd, m->output, h + off, d, vk->logits.addr, V, m->output_bias, rows,
                       error))
        return FALSE;
      if (m->hp.final_softcap > 0.0f) {
        wh_vk_pc_scale sc = {
            .x = vk->logits.addr, .n = rows * V, .s = 1.0f, .cap = m->hp.final_softcap};
        if (!wh_vk_op_scale(vk->dev, cmd, &sc, error))
          return FALSE;
      }
    }
  } else {
    wh_vk_cmd_copy(vk->dev, cmd, &vk->compute, vk->cl.x, &vk->io, vk->cl.io_x, 4ull * n * d);
    wh_vk_cmd_barrier(vk->dev, cmd);
  }
  return wh_vk_cmd_end(vk->dev, cmd, error);
}

/* The recorded command buffer for this step shape (recording it when new). */
static VkCommandBuffer
step_commands(wh_context *ctx, guint32 n, guint32 first_logit, GError **error)
{
  wh_vk_ctx *vk = ctx->vk;
  vk->n_steps++;
  cmd_slot *lru = &vk->cmds[0];
  for (int i = 0; i < N_CMD_CACHE; i++) {
    cmd_slot *s = &vk->cmds[i];
    if (s->cmd && s->n_tokens == n && s->first_logit == first_logit) {
      s->last_use = vk->n_steps;
      return s->cmd;
    }
    if (!s->cmd || s->last_use < lru->last_use)
      lru = s;
  }
  if (!lru->cmd) {
    lru->cmd = wh_vk_cmd_new(vk->dev, error);
    if (!lru->cmd)
      return VK_NULL_HANDLE;
  }
  lru->n_tokens = 0; /* invalid until recorded */
  if (!record_step(ctx, lru->cmd, n, first_logit, error))
    return VK_NULL_HANDLE;
  lru->n_tokens = n;
  lru->first_logit = first_logit;
  lru->last_use = vk->n_steps;
  return lru->cmd;
}

gboolean
wh_vk_context_layers(wh_context *ctx, const wh_batch *batch, guint32 il_begin, GError **error)
{
  wh_vk_ctx *vk = ctx->vk;
  const wh_model_hparams *hp = &ctx->model->hp;
  const guint32 n = batch->n_tokens, d = hp->n_embd;
  g_assert(il_begin == vk->il0);
  float *cx = (float *)(ctx->compute + ctx->lay.off_x);

  /* the step block, the residual stream and this batch's RoPE tables */
  guint32 step[4] = {batch->pos0, n, 0, 0};
  memcpy(vk->io.map + vk->cl.step, step, sizeof(step));
  memcpy(vk->io.map + vk->cl.io_x, cx, 4ull * n * d);
  memcpy(vk->io.map + vk->cl.rope, ctx->compute + ctx->lay.off_rope,
         2ull * 2 * ctx->lay.nb * ctx->lay.n_pairs * 4);

  const guint32 first_logit = vk->gpu_output ? batch->first_logit : n;
  VkCommandBuffer cmd = step_commands(ctx, n, first_logit, error);
  if (!cmd || !wh_vk_submit_wait(vk->dev, cmd, error))
    return FALSE;

  if (vk->gpu_output)
    memcpy(ctx->logits, vk->logits.map, 4ull * (n - first_logit) * hp->n_vocab);
  else
    memcpy(cx, vk->io.map + vk->cl.io_x, 4ull * n * d);
  return TRUE;
}

/* --- context shift --------------------------------------------------------------------- */

static float
kv_get(gboolean f32, const guint8 *row, guint32 i)
{
  return f32 ? ((const float *)row)[i] : wh_fp16_to_fp32(((const guint16 *)row)[i]);
}

static void
kv_put(gboolean f32, guint8 *row, guint32 i, float v)
{
  if (f32)
    ((float *)row)[i] = v;
  else
    ((guint16 *)row)[i] = wh_fp32_to_fp16(v);
}

gboolean
wh_vk_context_shift(wh_context *ctx, guint32 to, guint32 from, guint32 n_move, gint64 delta,
                    GError **error)
{
  wh_vk_ctx *vk = ctx->vk;
  const wh_model_hparams *hp = &ctx->model->hp;
  const gboolean f32 = ctx->params.kv_type == WH_KV_F32;
  const guint32 np = hp->n_rot / 2, dk = hp->head_dim_k;
  for (guint32 il = vk->il0; il < hp->n_layer; il++) {
    const guint64 rk = ctx->lay.kv_row_k[il], rv = ctx->lay.kv_row_v[il];
    const guint64 koff = ctx->lay.kv_layer_off[il], voff = koff + ctx->params.n_ctx * rk;
    g_autofree guint8 *kbuf = g_malloc(n_move * rk + 1);
    g_autofree guint8 *vbuf = g_malloc(n_move * rv + 1);
    if (!wh_vk_download(vk->dev, &vk->kv, koff + from * rk, kbuf, n_move * rk, error) ||
        !wh_vk_download(vk->dev, &vk->kv, voff + from * rv, vbuf, n_move * rv, error))
      return FALSE;
    const double *freq = ctx->rope_freq[hp->swa_layer[il] ? 1 : 0];
    for (guint32 cell = 0; cell < n_move; cell++) {
      guint8 *row = kbuf + cell * rk;
      for (guint32 hh = 0; hh < hp->n_head_kv[il]; hh++)
        for (guint32 i = 0; i < np; i++) {
          const guint32 i0 = hh * dk + (hp->rope_type == WH_ROPE_NORMAL ? 2 * i : i);
          const guint32 i1 = hh * dk + (hp->rope_type == WH_ROPE_NORMAL ? 2 * i + 1 : i + np);
          const double theta = (double)delta * freq[i];
          const float cs = (float)cos(theta), sn = (float)sin(theta);
          const float a = kv_get(f32, row, i0), b = kv_get(f32, row, i1);
          kv_put(f32, row, i0, a * cs - b * sn);
          kv_put(f32, row, i1, a * sn + b * cs);
        }
    }
    if (!wh_vk_upload(vk->dev, &vk->kv, koff + to * rk, kbuf, n_move * rk, error) ||
        !wh_vk_upload(vk->dev, &vk->kv, voff + to * rv, vbuf, n_move * rv, error))
      return FALSE;
  }
  return TRUE;
}
