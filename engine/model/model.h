/* model.h — loading a llama-family GGUF model and running its forward pass.
 *
 * Design note
 * -----------
 * Owns: the model (hyper-parameters read from `<arch>.*` keys, the tensor
 * table pointing into the mmap'd GGUF file) and contexts (KV cache, compute
 * scratch, logits buffer, compute thread pool). Architectures: llama, qwen2,
 * qwen3, phi3, gemma2, gemma3, exactly as shared/spec/architectures.md says.
 * Promises:
 *  - Weights are never copied on the CPU: matmuls read the mapping directly.
 *  - Every byte a model or context allocates is first computed by
 *    wh_model_memory_plan(), a pure function of the hyper-parameters and the
 *    context parameters, and then allocated exactly as planned; the bytes
 *    actually allocated are recorded per component (wh_context_get_memory()),
 *    so the planner can show the same numbers without loading anything.
 *  - Feeding a prompt in one batch, in chunks or one token at a time gives
 *    the same logits (up to float rounding); results do not depend on the
 *    thread count.
 *  - Devices (the per-device memory rule): a context runs on the CPU, or
 *    on the CPU and one GPU device with cp->n_gpu_layers = g > 0 offloaded.
 *    Layers are offloaded from the last one down: layers
 *    [n_layer - min(g, n_layer), n_layer) run on the GPU; with
 *    g = n_layer + 1 (or more) the output layer (output norm + output matrix)
 *    runs there too. The token embedding always stays on the CPU (a tied
 *    output matrix is copied to the GPU when the output layer goes there).
 *    The GPU holds the weights of its layers, their KV cache, its own compute
 *    scratch, and an output (logits) buffer when it runs the output layer.
 *    The CPU keeps everything else: the weights of the other layers and the
 *    embedding (mapped, not copied), the other layers' KV cache, its compute
 *    block (unchanged: it can run any layer), the host logits buffer (always)
 *    and the fixed overhead. With g = 0 the CPU numbers are exactly those of
 *    a CPU-only context. wh_model_memory_plan_devices() computes both sides;
 *    a GPU backend allocates exactly its side and records it in the
 *    context (wh_context_get_device_memory()). Upload staging buffers are
 *    transient (freed when loading ends) and are not part of the plan.
 *  - Activations are F32. Quantized weights use the 8-bit activation
 *    kernels of the quant module (Q8_0/Q8_1/Q8_K, as the reference does);
 *    F16/BF16/F32 weights are converted to F32 exactly.
 * Does not: tokenize (tokenizer module), sample (sample module), or keep
 * chat history (session module).
 *
 * Thread-safety: a wh_model is immutable after load and may be shared by
 * several contexts on several threads. A wh_context is used by one thread at
 * a time (it drives its own compute threads internally).
 */
#pragma once

#include <gio/gio.h>
#include "gguf/gguf.h"

G_BEGIN_DECLS

#define WH_MODEL_ERROR (wh_model_error_quark())
GQuark wh_model_error_quark(void);

typedef enum {
  WH_MODEL_ERROR_UNSUPPORTED_ARCH, /* general.architecture is not one we run */
  WH_MODEL_ERROR_MISSING_KEY,      /* a required metadata key is absent */
  WH_MODEL_ERROR_BAD_VALUE,        /* a metadata value is out of range / inconsistent */
  WH_MODEL_ERROR_MISSING_TENSOR,   /* a required tensor is absent */
  WH_MODEL_ERROR_BAD_TENSOR,       /* wrong shape or unsupported type */
  WH_MODEL_ERROR_CONTEXT,          /* bad context parameters / request */
  WH_MODEL_ERROR_CANCELLED,        /* the abort callback said stop */
} wh_model_error;

typedef enum {
  WH_ARCH_LLAMA,
  WH_ARCH_QWEN2,
  WH_ARCH_QWEN3,
  WH_ARCH_PHI3,
  WH_ARCH_GEMMA2,
  WH_ARCH_GEMMA3,
} wh_arch;

typedef enum {
  WH_ROPE_NORMAL, /* interleaved pairs (2i, 2i+1) */
  WH_ROPE_NEOX,   /* halves (i, i + n_rot/2) */
} wh_rope_type;

typedef enum {
  WH_ROPE_SCALING_NONE,
  WH_ROPE_SCALING_LINEAR,
  WH_ROPE_SCALING_YARN,
  WH_ROPE_SCALING_LONGROPE,
} wh_rope_scaling;

/* KV cache element types. */
typedef enum {
  WH_KV_F16,
  WH_KV_Q8_0,
  WH_KV_Q4_0,
  WH_KV_F32,
} wh_kv_type;

#define WH_MODEL_MAX_LAYERS 512

/* Everything the forward pass and the memory plan need to know about a
 * model, read from GGUF metadata and the tensor directory only (so it can be
 * built from a remote header too). Plain data. */
typedef struct {
  wh_arch arch;
  char arch_name[16];
  guint32 n_ctx_train;
  guint32 n_embd;
  guint32 n_layer;
  guint32 n_vocab;
  guint32 n_head[WH_MODEL_MAX_LAYERS];     /* per layer */
  guint32 n_head_kv[WH_MODEL_MAX_LAYERS];  /* per layer */
  guint32 n_ff[WH_MODEL_MAX_LAYERS];       /* per layer */
  gboolean swa_layer[WH_MODEL_MAX_LAYERS]; /* layer uses the sliding window */
  guint32 n_head_max, n_head_kv_max, n_ff_max;
  guint32 head_dim_k, head_dim_v; /* Dk, Dv */
  guint32 n_rot;
  guint32 n_swa; /* sliding window (0 = none) */
  float eps;
  float rope_base, rope_base_swa;
  wh_rope_type rope_type;
  wh_rope_scaling rope_scaling;
  float rope_freq_scale; /* s = 1/factor (1 = none) */
  float rope_attn_factor;
  guint32 n_ctx_orig;
  float attn_scale;        /* multiplies q.k */
  float attn_softcap;      /* 0 = none */
  float final_softcap;     /* 0 = none */
  float embd_scale;        /* 1, or sqrt(d) for gemma */
  gboolean has_post_norms; /* gemma2/3 post-attention / post-FFN norms */
  gboolean has_qk_norm;    /* qwen3, gemma3 */
  gboolean ffn_gelu;       /* GeGLU (gemma) instead of SwiGLU */
  gboolean tied_output;    /* no output.weight: the embedding is the output head */
  guint64 weight_bytes;    /* sum of the tensor bytes the model uses */
  /* weight_bytes split by where the tensors belong (tensor names): "blk.N." tensors of
   * layer N; the output layer = output_norm + output (+ bias), the embedding when tied
   * is counted in embd_bytes only; everything else (token embedding, RoPE factors). */
  guint64 layer_bytes[WH_MODEL_MAX_LAYERS];
  guint64 output_bytes;   /* output_norm.*, output.* (not the tied embedding) */
  guint64 embd_bytes;     /* token_embd.weight */
  guint64 other_bytes;    /* the rest (rope factors, unknown tensors) */
  guint32 bos_id, eos_id; /* -1 (G_MAXUINT32) when unknown */
  /* Tensor types by place, one bit (1 << type) per wh_type present: matrices (2 or more
   * dimensions) and vectors of each layer, and of the output layer (output_norm, output,
   * or the token embedding when it is the output head). What a GPU backend checks before
   * taking a layer (wh_model_hparams_gpu_layers()). */
  guint64 layer_matrix_types[WH_MODEL_MAX_LAYERS];
  guint64 layer_vector_types[WH_MODEL_MAX_LAYERS];
  guint64 output_matrix_types, output_vector_types;
} wh_model_hparams;

/* What a GPU backend can run, for choosing the layers that go there. */
typedef struct {
  const char *backend;                 /* "Vulkan", "CUDA": named in notes */
  gboolean (*matrix_ok)(wh_type type); /* weight types its matrix kernels read */
  gboolean quantized_kv;               /* runs q8_0 / q4_0 KV caches */
  guint32 max_head_dim;                /* largest attention head (Dk, Dv) its kernel takes */
} wh_gpu_caps;

/* How many of @n_gpu_layers (layers from the last one down; n_layer + 1 adds the output
 * layer; more is clamped) a backend with @caps can run for a model with @hp and a KV cache of
 * @kv_type: all of them, or fewer when a layer has a matrix of a type the backend has no
 * kernel for or a vector that is not F32 (offloading then starts above that layer), or 0 for
 * a KV type or head size it does not take. @caps NULL: a build without that backend (0).
 * Writes into @note (@note_size bytes, may be 0) a sentence saying what stays on the CPU and
 * why, or "" when every layer asked for can go. Pure; the planner and the backends both use it,
 * so a plan shows what loading will do. */
guint32 wh_model_hparams_gpu_layers(const wh_model_hparams *hp, const wh_gpu_caps *caps,
                                    wh_kv_type kv_type, guint32 n_gpu_layers, char *note,
                                    gsize note_size);

/* Reads the hyper-parameters of @g (metadata and tensor directory only).
 * Errors: WH_MODEL_ERROR_* naming the key. */
gboolean wh_model_hparams_from_gguf(const wh_gguf *g, wh_model_hparams *hp, GError **error);
/* Adds the tensor directory of @g to @hp's weight byte counts (and clears tied_output when
 * @g holds output.weight): for the other shards of a split model whose headers were read one
 * by one (a remote plan); wh_model_hparams_from_gguf() already counts every shard it has. */
void wh_model_hparams_add_tensors(wh_model_hparams *hp, const wh_gguf *g);

/* --- memory plan --------------------------------------------------------------------- */

typedef struct {
  guint32 n_ctx;   /* tokens the KV cache holds */
  guint32 n_batch; /* most tokens one forward step processes (and logits rows kept) */
  wh_kv_type kv_type;
  int n_threads;        /* compute threads (each has its own scratch) */
  guint32 n_gpu_layers; /* layers on the GPU device, from the last one down; n_layer + 1
                         * (or more) also puts the output layer there; 0 = CPU only */
  char device[64];      /* GPU device name (case-insensitive substring); "" = first GPU */
} wh_context_params;

typedef struct {
  guint64 weights; /* mapped weight bytes (CPU: read from the mapping, not copied) */
  guint64 kv_cache;
  guint64 compute;  /* activations and per-thread scratch */
  guint64 output;   /* logits buffer */
  guint64 overhead; /* fixed bookkeeping: tables, RoPE cache, thread pool */
  guint64 total;    /* sum of the above */
} wh_memory_plan;

/* Pure: the bytes a context with @cp on a model with @hp allocates, per
 * component. Never touches memory beyond @out. Returns FALSE (and sets
 * @error) for parameters a context would reject. */
gboolean wh_model_memory_plan(const wh_model_hparams *hp, const wh_context_params *cp,
                              wh_memory_plan *out, GError **error);

/* Where the plan puts things when the context uses a GPU device. */
typedef enum {
  WH_PLAN_CPU = 0,
  WH_PLAN_GPU = 1,
  WH_PLAN_N_DEVICES = 2,
} wh_plan_device;

typedef struct {
  guint32 n_gpu_layers;    /* effective: min(requested, n_layer + 1) */
  guint32 first_gpu_layer; /* layers [first_gpu_layer, n_layer) run on the GPU */
  gboolean gpu_output;     /* the output layer runs on the GPU */
  /* [WH_PLAN_CPU]: what wh_model_memory_plan() returns; [WH_PLAN_GPU]: all zero when
   * n_gpu_layers is 0. dev[].weights on the CPU are mapped file bytes. */
  wh_memory_plan dev[WH_PLAN_N_DEVICES];
} wh_memory_plan_devices;

/* Pure: the bytes a context with @cp allocates on the CPU and on its GPU device, per the
 * device rule of the design note. Same errors as wh_model_memory_plan(). Cheap (a loop over
 * the layers): fine to call on every slider move. */
gboolean wh_model_memory_plan_devices(const wh_model_hparams *hp, const wh_context_params *cp,
                                      wh_memory_plan_devices *out, GError **error);

/* Bytes per KV cache row of @n elements of @type (0 if @n does not fit the
 * type's block size). */
guint64 wh_kv_type_row_size(wh_kv_type type, guint64 n);
const char *wh_kv_type_name(wh_kv_type type); /* "f16", "q8_0", ... */
gboolean wh_kv_type_from_name(const char *name, wh_kv_type *out);

/* --- model --------------------------------------------------------------------------- */

/* Returns FALSE to abort loading. */
typedef gboolean (*wh_model_abort_func)(gpointer user_data);
/* Called with 0..1 while loading. */
typedef void (*wh_model_progress_func)(double fraction, gpointer user_data);

typedef struct {
  int n_threads;                       /* default for contexts; 0 = number of cores */
  wh_model_progress_func progress;     /* may be NULL */
  wh_model_abort_func should_continue; /* may be NULL; FALSE cancels the load */
  gpointer user_data;
} wh_model_params;

typedef struct wh_model wh_model;

wh_model_params wh_model_default_params(void);

/* Opens @path, reads the hyper-parameters and binds every tensor (checking
 * names, shapes and types). The weights stay in the mapping. */
wh_model *wh_model_load(const char *path, const wh_model_params *params, GError **error);
void wh_model_free(wh_model *model); /* NULL-safe; contexts must be freed first */

const wh_model_hparams *wh_model_get_hparams(const wh_model *model);
const wh_gguf *wh_model_get_gguf(const wh_model *model); /* owned by the model */
guint32 wh_model_n_vocab(const wh_model *model);
int wh_model_default_threads(const wh_model *model);

/* --- context ------------------------------------------------------------------------- */

typedef struct wh_context wh_context;

/* n_ctx 0 = min(n_ctx_train, 4096); n_batch 512; kv F16; n_threads from the model. */
wh_context_params wh_context_default_params(void);

/* Allocates exactly wh_model_memory_plan(). Zero-valued fields take the
 * defaults. */
wh_context *wh_context_new(wh_model *model, const wh_context_params *params, GError **error);
void wh_context_free(wh_context *ctx); /* NULL-safe */

/* Runs @n tokens (positions n_past .. n_past+n-1) through the model, in
 * steps of at most n_batch tokens, appending them to the KV cache. Returns
 * the logits: with @want_all_logits, n rows of n_vocab floats (then n must
 * be <= n_batch); otherwise one row, for the last token. The pointer is owned
 * by the context and valid until the next decode. When the cache is full the
 * oldest half after the first token is discarded first (context shift, see
 * wh_context_shift()). Returns NULL and sets @error on failure. */
const float *wh_context_decode(wh_context *ctx, const gint32 *tokens, guint32 n,
                               gboolean want_all_logits, GError **error);

/* Tokens in the cache (= position of the next token). */
guint32 wh_context_n_past(const wh_context *ctx);
guint32 wh_context_n_ctx(const wh_context *ctx);
const wh_context_params *wh_context_get_params(const wh_context *ctx);
/* Token ids currently in the cache, in order (n_past of them). */
const gint32 *wh_context_get_tokens(const wh_context *ctx);

/* Empties the cache. */
void wh_context_clear(wh_context *ctx);
/* Keeps the first @n_keep cached tokens and forgets the rest (prefix reuse). */
void wh_context_truncate(wh_context *ctx, guint32 n_keep);
/* Drops @n_discard tokens after the first @n_keep, moving later ones down
 * and re-rotating their keys to their new positions. */
void wh_context_shift(wh_context *ctx, guint32 n_keep, guint32 n_discard);

/* Planned and actually allocated bytes of this context (weights included). */
void wh_context_get_memory(const wh_context *ctx, wh_memory_plan *planned,
                           wh_memory_plan *allocated);
/* Why fewer layers than cp->n_gpu_layers asked for run on the GPU (no Vulkan backend in
 * this build, a KV cache type or tensor type without a GPU kernel), or NULL when all of them
 * do. wh_context_get_params()->n_gpu_layers is the number that runs there. Owned by @ctx. */
const char *wh_context_get_gpu_note(const wh_context *ctx);
/* The name of the GPU device that runs the offloaded layers, or "" when none. */
const char *wh_context_get_gpu_device(const wh_context *ctx);
/* The same per device (CPU and the GPU device, see the design note). Either may be NULL. */
void wh_context_get_device_memory(const wh_context *ctx, wh_memory_plan_devices *planned,
                                  wh_memory_plan_devices *allocated);

/* Matmul observer (importance matrices, see the eval module). When set, the CPU backend calls
 * @fn before each weight matmul, on the thread that called wh_context_decode(), with the
 * weight tensor and its F32 input: @n_tokens rows of w->ne[0] floats, @ldx floats apart
 * (read-only, valid during the call only). The output head is observed too (name
 * "output.weight", or the embedding when tied), for the rows whose logits are computed.
 * Matmuls that another backend runs are not observed. @fn NULL removes the observer; unset,
 * it costs one pointer test per matmul. */
typedef void (*wh_matmul_observer)(const wh_gguf_tensor *w, const float *x, guint64 ldx,
                                   guint32 n_tokens, gpointer user_data);
void wh_context_set_matmul_observer(wh_context *ctx, wh_matmul_observer fn, gpointer user_data);

G_END_DECLS
