/* model-private.h — the model and context internals shared by the model
 * module's files and its backends. Not a public header.
 */
#pragma once

#include "model/model.h"
#include "model/threadpool.h"
#include "model/backend.h"

G_BEGIN_DECLS

/* Weight tensors of one layer; optional ones are NULL when absent. */
typedef struct {
  const wh_gguf_tensor *attn_norm;
  const wh_gguf_tensor *wq, *wk, *wv, *wqkv;
  const wh_gguf_tensor *bq, *bk, *bv, *bqkv;
  const wh_gguf_tensor *q_norm, *k_norm;
  const wh_gguf_tensor *wo, *bo;
  const wh_gguf_tensor *post_attn_norm;
  const wh_gguf_tensor *ffn_norm;
  const wh_gguf_tensor *ffn_gate, *ffn_up, *ffn_down; /* phi3: ffn_up is fused [d, 2F] */
  const wh_gguf_tensor *b_gate, *b_up, *b_down;
  const wh_gguf_tensor *post_ffn_norm;
} wh_layer_weights;

struct wh_model {
  wh_gguf *gguf;
  wh_model_params params;
  wh_model_hparams hp;
  const wh_gguf_tensor *tok_embd;
  const wh_gguf_tensor *output_norm;
  const wh_gguf_tensor *output;                 /* tok_embd when tied */
  const wh_gguf_tensor *output_bias;            /* qwen2, optional */
  const wh_gguf_tensor *rope_freqs;             /* llama rope_freqs.weight, optional */
  const wh_gguf_tensor *rope_long, *rope_short; /* LongRoPE factors, optional */
  wh_layer_weights *layers;
};

/* Offsets (bytes) of every buffer inside the compute block, and the sizes of
 * every component. Computed by wh_model_compute_layout(), the one function both the
 * memory plan and the allocation use. */
typedef struct {
  guint32 nb;        /* n_batch */
  guint32 qkv_width; /* H*Dk + Hkv*Dk + Hkv*Dv (max over layers) */
  guint32 ff_width;  /* 2 * F max */
  guint32 k_max;     /* widest matmul input */
  guint32 n_group;   /* query heads per KV head (max) */
  guint32 n_pairs;   /* n_rot / 2 */
  guint64 kv_row_k[WH_MODEL_MAX_LAYERS], kv_row_v[WH_MODEL_MAX_LAYERS]; /* bytes per cell */
  guint64 kv_layer_off[WH_MODEL_MAX_LAYERS]; /* offset of layer's K block in its device's KV
                                              * block (CPU below split.first_gpu_layer, else
                                              * the GPU's) */
  guint64 qact_row;                          /* bytes per row of 8-bit-quantized activations */
  /* compute block */
  guint64 off_x, off_h, off_qkv, off_attn, off_tmp, off_ff, off_qact, off_rope, off_pos;
  guint64 off_thread;                                 /* per-thread scratch starts here */
  guint64 thread_stride;                              /* bytes per thread */
  guint64 th_scores, th_row, th_kv;                   /* offsets inside one thread's scratch */
  guint64 off_ov_tokens, off_ov_rope, overhead_block; /* the overhead block */
  wh_memory_plan plan;                                /* the CPU side (= split.dev[WH_PLAN_CPU]) */
  wh_memory_plan_devices split;                       /* both devices */
} wh_model_layout;

gboolean wh_model_compute_layout(const wh_model_hparams *hp, const wh_context_params *cp,
                                 wh_model_layout *lay, GError **error);

struct wh_context {
  wh_model *model;
  wh_context_params params;
  wh_model_layout lay;
  wh_threadpool *pool;
  const wh_backend *backend;

  guint8 *kv;       /* per layer: K cells then V cells */
  guint8 *overhead; /* token ids, RoPE frequencies */
  guint8 *compute;
  float *logits;        /* n_batch x n_vocab */
  gint32 *tokens;       /* n_ctx token ids in the cache (overhead block) */
  double *rope_freq[2]; /* per pair angle multiplier: [0] global, [1] sliding layers */
  float rope_mscale[2];
  guint32 n_past;
  guint32 n_logits; /* rows valid in logits */

  wh_memory_plan allocated;     /* CPU side */
  wh_memory_plan allocated_gpu; /* recorded by the GPU backend (all zero without one) */
  struct wh_vk_ctx *vk;         /* Vulkan backend state with GPU layers, else NULL */
  struct wh_cuda_forward *cuda; /* CUDA backend state with GPU layers (device "cuda[:N]") */
  char *gpu_note;               /* why fewer GPU layers than asked for run there, or NULL */

  wh_matmul_observer mm_observer; /* NULL unless set (wh_context_set_matmul_observer()) */
  gpointer mm_observer_data;
};

static inline guint8 *
wh_context_k_cell(wh_context *ctx, guint32 il, guint32 cell)
{
  return ctx->kv + ctx->lay.kv_layer_off[il] + (guint64)cell * ctx->lay.kv_row_k[il];
}

static inline guint8 *
wh_context_v_cell(wh_context *ctx, guint32 il, guint32 cell)
{
  return ctx->kv + ctx->lay.kv_layer_off[il] + (guint64)ctx->params.n_ctx * ctx->lay.kv_row_k[il] +
         (guint64)cell * ctx->lay.kv_row_v[il];
}

/* RoPE: the angle multiplier of pair i for layer il (theta = p * freq[i]),
 * and the magnitude factor. Filled per context (cp->n_ctx picks LongRoPE
 * factors). */
void wh_model_rope_freqs(const wh_model *model, const wh_context_params *cp, gboolean swa,
                         double *freq, float *mscale);

/* The GPU backends' shared offload rule, wh_model_hparams_gpu_layers() on @model: lowers
 * cp->n_gpu_layers to what a backend with @caps runs and returns the note (newly allocated),
 * or NULL when every layer asked for can go. */
char *wh_model_clamp_gpu_layers(const wh_model *model, wh_context_params *cp,
                                const wh_gpu_caps *caps);

G_END_DECLS
