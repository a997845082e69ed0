/* model.c — hyper-parameters, tensor binding, and the memory plan.
 *
 * Everything here follows shared/spec/architectures.md sections 3-10: which
 * keys each architecture reads, their defaults, and the tensors it needs.
 */
#include "config.h"

#include "model/model-private.h"
#include "quant/quant.h"

#include <math.h>
#include <string.h>

G_DEFINE_QUARK(wh - model - error - quark, wh_model_error)

/* --- metadata helpers ---------------------------------------------------------------- */

static gboolean
get_u32(const wh_gguf *g, const char *arch, const char *key, guint32 *out, gboolean required,
        GError **error)
{
  g_autofree char *full = g_strdup_printf("%s.%s", arch, key);
  guint64 v;
  if (!wh_gguf_get_uint(g, full, &v)) {
    if (required || wh_gguf_find_key(g, full) >= 0) {
      g_set_error(error, WH_MODEL_ERROR,
                  required ? WH_MODEL_ERROR_MISSING_KEY : WH_MODEL_ERROR_BAD_VALUE,
                  "%s: metadata key “%s” is %s (an unsigned integer is required)", wh_gguf_path(g),
                  full, wh_gguf_find_key(g, full) >= 0 ? "not an unsigned integer" : "missing");
      return FALSE;
    }
    return TRUE; /* keep the default */
  }
  if (v > G_MAXUINT32) {
    g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_BAD_VALUE,
                "%s: metadata key “%s” = %" G_GUINT64_FORMAT " is too large", wh_gguf_path(g), full,
                v);
    return FALSE;
  }
  *out = (guint32)v;
  return TRUE;
}

static gboolean
get_f32(const wh_gguf *g, const char *arch, const char *key, float *out, gboolean required,
        GError **error)
{
  g_autofree char *full = g_strdup_printf("%s.%s", arch, key);
  double v;
  if (!wh_gguf_get_float(g, full, &v)) {
    if (required) {
      g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_MISSING_KEY,
                  "%s: required metadata key “%s” is missing or not a number", wh_gguf_path(g),
                  full);
      return FALSE;
    }
    return TRUE;
  }
  *out = (float)v;
  return TRUE;
}

/* A u32 or a per-layer array of u32 (spec section 3). */
static gboolean
get_per_layer(const wh_gguf *g, const char *arch, const char *key, guint32 n_layer, guint32 *out,
              guint32 def, GError **error)
{
  g_autofree char *full = g_strdup_printf("%s.%s", arch, key);
  wh_gguf_array a;
  for (guint32 i = 0; i < n_layer; i++)
    out[i] = def;
  if (wh_gguf_get_array(g, full, &a)) {
    if (a.n != n_layer) {
      g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_BAD_VALUE,
                  "%s: “%s” has %" G_GUINT64_FORMAT " entries but the model has %u layers",
                  wh_gguf_path(g), full, a.n, n_layer);
      return FALSE;
    }
    for (guint32 i = 0; i < n_layer; i++) {
      gint64 v = wh_gguf_array_get_int(&a, i);
      if (v < 0 || v > G_MAXUINT32) {
        g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_BAD_VALUE,
                    "%s: “%s”[%u] = %" G_GINT64_FORMAT " is out of range", wh_gguf_path(g), full, i,
                    v);
        return FALSE;
      }
      out[i] = (guint32)v;
    }
    return TRUE;
  }
  guint32 v = def;
  if (!get_u32(g, arch, key, &v, FALSE, error))
    return FALSE;
  for (guint32 i = 0; i < n_layer; i++)
    out[i] = v;
  return TRUE;
}

static gboolean
bad_value(GError **error, const wh_gguf *g, const char *what)
{
  g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_BAD_VALUE, "%s: %s", wh_gguf_path(g), what);
  return FALSE;
}

/* Sliding-window layer pattern (gemma2/gemma3): a u32 period P (layer N
 * slides iff N mod P < P - 1; P = 0: all slide) or a per-layer bool array. */
static gboolean
read_swa_pattern(const wh_gguf *g, wh_model_hparams *hp, guint32 def_period, GError **error)
{
  g_autofree char *key = g_strdup_printf("%s.attention.sliding_window_pattern", hp->arch_name);
  wh_gguf_array a;
  if (wh_gguf_get_array(g, key, &a)) {
    if (a.n != hp->n_layer) {
      g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_BAD_VALUE,
                  "%s: “%s” has %" G_GUINT64_FORMAT " entries but the model has %u layers",
                  wh_gguf_path(g), key, a.n, hp->n_layer);
      return FALSE;
    }
    for (guint32 i = 0; i < hp->n_layer; i++)
      hp->swa_layer[i] = wh_gguf_array_get_int(&a, i) != 0;
    return TRUE;
  }
  guint32 period = def_period;
  if (!get_u32(g, hp->arch_name, "attention.sliding_window_pattern", &period, FALSE, error))
    return FALSE;
  for (guint32 i = 0; i < hp->n_layer; i++)
    hp->swa_layer[i] = period == 0 || i % period < period - 1;
  return TRUE;
}

gboolean
wh_model_hparams_from_gguf(const wh_gguf *g, wh_model_hparams *hp, GError **error)
{
  memset(hp, 0, sizeof(*hp));
  const char *arch = wh_gguf_get_architecture(g);
  static const struct {
    const char *name;
    wh_arch arch;
  } archs[] = {
      {"llama", WH_ARCH_LLAMA}, {"qwen2", WH_ARCH_QWEN2},   {"qwen3", WH_ARCH_QWEN3},
      {"phi3", WH_ARCH_PHI3},   {"gemma2", WH_ARCH_GEMMA2}, {"gemma3", WH_ARCH_GEMMA3},
  };
  if (!arch) {
    g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_MISSING_KEY,
                "%s: metadata key “general.architecture” is missing: not a model file?",
                wh_gguf_path(g));
    return FALSE;
  }
  gboolean found = FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS(archs); i++) {
    if (strcmp(arch, archs[i].name) == 0) {
      hp->arch = archs[i].arch;
      g_strlcpy(hp->arch_name, arch, sizeof(hp->arch_name));
      found = TRUE;
    }
  }
  if (!found) {
    g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_UNSUPPORTED_ARCH,
                "%s: architecture “%s” is not supported (supported: llama, qwen2, qwen3, phi3, "
                "gemma2, gemma3)",
                wh_gguf_path(g), arch);
    return FALSE;
  }
  const char *a = hp->arch_name;

  guint64 expert_count = 0;
  g_autofree char *expert_key = g_strdup_printf("%s.expert_count", a);
  if (wh_gguf_get_uint(g, expert_key, &expert_count) && expert_count > 0) {
    g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_UNSUPPORTED_ARCH,
                "%s: mixture-of-experts models (%s = %" G_GUINT64_FORMAT ") are not supported yet",
                wh_gguf_path(g), expert_key, expert_count);
    return FALSE;
  }

  if (!get_u32(g, a, "context_length", &hp->n_ctx_train, TRUE, error) ||
      !get_u32(g, a, "embedding_length", &hp->n_embd, TRUE, error) ||
      !get_u32(g, a, "block_count", &hp->n_layer, TRUE, error))
    return FALSE;
  if (hp->n_layer == 0 || hp->n_layer > WH_MODEL_MAX_LAYERS)
    return bad_value(error, g, "block_count must be between 1 and 512");
  if (hp->n_embd == 0 || hp->n_embd > (1u << 20))
    return bad_value(error, g, "embedding_length is 0 or implausibly large");

  if (!get_per_layer(g, a, "feed_forward_length", hp->n_layer, hp->n_ff, 0, error) ||
      !get_per_layer(g, a, "attention.head_count", hp->n_layer, hp->n_head, 0, error))
    return FALSE;
  {
    /* head_count_kv defaults to head_count, layer by layer */
    g_autofree char *kvkey = g_strdup_printf("%s.attention.head_count_kv", a);
    if (wh_gguf_find_key(g, kvkey) >= 0) {
      if (!get_per_layer(g, a, "attention.head_count_kv", hp->n_layer, hp->n_head_kv, 0, error))
        return FALSE;
    } else {
      memcpy(hp->n_head_kv, hp->n_head, sizeof(guint32) * hp->n_layer);
    }
  }
  for (guint32 i = 0; i < hp->n_layer; i++) {
    if (hp->n_head[i] == 0 || hp->n_head_kv[i] == 0 || hp->n_head[i] % hp->n_head_kv[i] != 0 ||
        hp->n_ff[i] == 0 || hp->n_head[i] > 4096 || hp->n_ff[i] > (1u << 24)) {
      g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_BAD_VALUE,
                  "%s: layer %u has head_count %u, head_count_kv %u, feed_forward_length %u: "
                  "all must be positive and head_count a multiple of head_count_kv",
                  wh_gguf_path(g), i, hp->n_head[i], hp->n_head_kv[i], hp->n_ff[i]);
      return FALSE;
    }
    hp->n_head_max = MAX(hp->n_head_max, hp->n_head[i]);
    hp->n_head_kv_max = MAX(hp->n_head_kv_max, hp->n_head_kv[i]);
    hp->n_ff_max = MAX(hp->n_ff_max, hp->n_ff[i]);
  }

  hp->head_dim_k = hp->head_dim_v = hp->n_embd / hp->n_head[0];
  if (!get_u32(g, a, "attention.key_length", &hp->head_dim_k, FALSE, error) ||
      !get_u32(g, a, "attention.value_length", &hp->head_dim_v, FALSE, error))
    return FALSE;
  if (hp->head_dim_k == 0 || hp->head_dim_v == 0 || hp->head_dim_k > 4096 || hp->head_dim_v > 4096)
    return bad_value(error, g, "attention key/value head size is 0 or implausibly large");
  hp->n_rot = hp->head_dim_k;
  if (!get_u32(g, a, "rope.dimension_count", &hp->n_rot, FALSE, error))
    return FALSE;
  if (hp->n_rot == 0 || hp->n_rot > hp->head_dim_k || hp->n_rot % 2 != 0)
    return bad_value(error, g, "rope.dimension_count must be even and at most the key head size");
  if ((hp->arch == WH_ARCH_LLAMA || hp->arch == WH_ARCH_QWEN2 || hp->arch == WH_ARCH_QWEN3) &&
      hp->n_rot != hp->head_dim_k)
    return bad_value(error, g, "this architecture requires rope.dimension_count == key_length");

  if (!get_f32(g, a, "attention.layer_norm_rms_epsilon", &hp->eps, TRUE, error))
    return FALSE;

  /* RoPE (spec 2.3, 2.4) */
  hp->rope_type = hp->arch == WH_ARCH_LLAMA ? WH_ROPE_NORMAL : WH_ROPE_NEOX;
  hp->rope_base = 10000.0f;
  if (!get_f32(g, a, "rope.freq_base", &hp->rope_base, FALSE, error))
    return FALSE;
  hp->rope_scaling = WH_ROPE_SCALING_LINEAR;
  {
    g_autofree char *key = g_strdup_printf("%s.rope.scaling.type", a);
    const char *type = wh_gguf_get_string(g, key);
    if (type) {
      if (strcmp(type, "none") == 0)
        hp->rope_scaling = WH_ROPE_SCALING_NONE;
      else if (strcmp(type, "linear") == 0)
        hp->rope_scaling = WH_ROPE_SCALING_LINEAR;
      else if (strcmp(type, "yarn") == 0)
        hp->rope_scaling = WH_ROPE_SCALING_YARN;
      else if (strcmp(type, "longrope") == 0)
        hp->rope_scaling = WH_ROPE_SCALING_LONGROPE;
      else {
        g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_BAD_VALUE,
                    "%s: “%s” = “%s” is not a known RoPE scaling (none, linear, yarn, longrope)",
                    wh_gguf_path(g), key, type);
        return FALSE;
      }
    }
  }
  float factor = 0.0f;
  if (!get_f32(g, a, "rope.scale_linear", &factor, FALSE, error) ||
      !get_f32(g, a, "rope.scaling.factor", &factor, FALSE, error))
    return FALSE;
  hp->rope_freq_scale = factor > 0.0f ? 1.0f / factor : 1.0f;
  if (hp->rope_scaling == WH_ROPE_SCALING_NONE)
    hp->rope_freq_scale = 1.0f;
  hp->n_ctx_orig = hp->n_ctx_train;
  hp->rope_attn_factor = 1.0f;
  if (!get_u32(g, a, "rope.scaling.original_context_length", &hp->n_ctx_orig, FALSE, error) ||
      !get_f32(g, a, "rope.scaling.attn_factor", &hp->rope_attn_factor, FALSE, error))
    return FALSE;
  hp->rope_base_swa = hp->rope_base;

  hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim_k);
  hp->embd_scale = 1.0f;

  switch (hp->arch) {
  case WH_ARCH_LLAMA:
  case WH_ARCH_QWEN2:
  case WH_ARCH_PHI3: /* the reference disables phi3's sliding window */
    break;
  case WH_ARCH_QWEN3:
    hp->has_qk_norm = TRUE;
    break;
  case WH_ARCH_GEMMA2:
    hp->has_post_norms = TRUE;
    hp->ffn_gelu = TRUE;
    hp->embd_scale = sqrtf((float)hp->n_embd);
    hp->n_swa = 4096;
    hp->attn_softcap = 50.0f;
    hp->final_softcap = 30.0f;
    if (!get_u32(g, a, "attention.sliding_window", &hp->n_swa, FALSE, error) ||
        !get_f32(g, a, "attn_logit_softcapping", &hp->attn_softcap, FALSE, error) ||
        !get_f32(g, a, "final_logit_softcapping", &hp->final_softcap, FALSE, error) ||
        !get_f32(g, a, "rope.freq_base_swa", &hp->rope_base_swa, FALSE, error) ||
        !read_swa_pattern(g, hp, 2, error))
      return FALSE;
    if (hp->n_layer == 46)
      hp->attn_scale = 1.0f / sqrtf((float)hp->n_embd / (float)hp->n_head[0]);
    break;
  case WH_ARCH_GEMMA3:
    hp->has_post_norms = TRUE;
    hp->has_qk_norm = TRUE;
    hp->ffn_gelu = TRUE;
    hp->embd_scale = sqrtf((float)hp->n_embd);
    hp->rope_base_swa = 10000.0f;
    if (!get_u32(g, a, "attention.sliding_window", &hp->n_swa, FALSE, error) ||
        !get_f32(g, a, "final_logit_softcapping", &hp->final_softcap, FALSE, error) ||
        !get_f32(g, a, "rope.freq_base_swa", &hp->rope_base_swa, FALSE, error) ||
        !read_swa_pattern(g, hp, 6, error))
      return FALSE;
    if (hp->n_layer == 62)
      hp->attn_scale = 1.0f / sqrtf((float)hp->n_embd / (float)hp->n_head[0]);
    break;
  }
  if (hp->n_swa == 0)
    memset(hp->swa_layer, 0, sizeof(hp->swa_layer));

  wh_gguf_array toks;
  if (!wh_gguf_get_array(g, "tokenizer.ggml.tokens", &toks) || toks.n == 0 || toks.n > G_MAXINT32) {
    g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_MISSING_KEY,
                "%s: the vocabulary (metadata key “tokenizer.ggml.tokens”) is missing or empty",
                wh_gguf_path(g));
    return FALSE;
  }
  hp->n_vocab = (guint32)toks.n;

  guint64 id;
  hp->bos_id = hp->eos_id = G_MAXUINT32;
  if (wh_gguf_get_uint(g, "tokenizer.ggml.bos_token_id", &id) && id < hp->n_vocab)
    hp->bos_id = (guint32)id;
  if (wh_gguf_get_uint(g, "tokenizer.ggml.eos_token_id", &id) && id < hp->n_vocab)
    hp->eos_id = (guint32)id;

  hp->tied_output = TRUE;
  hp->weight_bytes = 0;
  memset(hp->layer_bytes, 0, sizeof(hp->layer_bytes));
  memset(hp->layer_matrix_types, 0, sizeof(hp->layer_matrix_types));
  memset(hp->layer_vector_types, 0, sizeof(hp->layer_vector_types));
  hp->output_matrix_types = hp->output_vector_types = 0;
  hp->output_bytes = hp->embd_bytes = hp->other_bytes = 0;
  wh_model_hparams_add_tensors(hp, g);
  return TRUE;
}

void
wh_model_hparams_add_tensors(wh_model_hparams *hp, const wh_gguf *g)
{
  if (wh_gguf_find_tensor(g, "output.weight"))
    hp->tied_output = FALSE;
  for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) {
    const wh_gguf_tensor *t = wh_gguf_get_tensor(g, i);
    hp->weight_bytes += t->n_bytes;
    /* wh_gguf validates types: every id is below WH_TYPE_COUNT (40) */
    const guint64 bit = G_GUINT64_CONSTANT(1) << MIN((guint)t->type, 63u);
    const gboolean matrix = t->n_dims >= 2;
    char *end = NULL;
    guint64 il;
    if (g_str_has_prefix(t->name, "blk.") &&
        (il = g_ascii_strtoull(t->name + 4, &end, 10),
         end != t->name + 4 && *end == '.' && il < hp->n_layer)) {
      hp->layer_bytes[il] += t->n_bytes;
      *(matrix ? &hp->layer_matrix_types[il] : &hp->layer_vector_types[il]) |= bit;
    } else if (g_str_has_prefix(t->name, "output_norm.") || g_str_has_prefix(t->name, "output.")) {
      hp->output_bytes += t->n_bytes;
      *(matrix ? &hp->output_matrix_types : &hp->output_vector_types) |= bit;
    } else if (strcmp(t->name, "token_embd.weight") == 0) {
      hp->embd_bytes += t->n_bytes;
      if (hp->tied_output)
        hp->output_matrix_types |= bit;
    } else {
      hp->other_bytes += t->n_bytes;
    }
  }
}

/* The first type in @types that @ok refuses (for matrices) or that is not F32 (vectors;
 * @ok NULL), or -1. */
static int
refused_type(guint64 types, gboolean (*ok)(wh_type type))
{
  for (int t = 0; t < 64; t++)
    if ((types >> t) & 1 && (ok ? !ok((wh_type)t) : t != WH_TYPE_F32))
      return t;
  return -1;
}

guint32
wh_model_hparams_gpu_layers(const wh_model_hparams *hp, const wh_gpu_caps *caps, wh_kv_type kv_type,
                            guint32 n_gpu_layers, char *note, gsize note_size)
{
  if (note_size)
    note[0] = 0;
  const guint32 want = MIN(n_gpu_layers, hp->n_layer + 1);
  if (want == 0)
    return 0;
  if (!caps) {
    if (note_size)
      g_snprintf(note, note_size,
                 "this build has no backend for that GPU: all layers run on "
                 "the CPU");
    return 0;
  }
  if (!caps->quantized_kv && kv_type != WH_KV_F16 && kv_type != WH_KV_F32) {
    if (note_size)
      g_snprintf(note, note_size,
                 "the %s backend keeps a %s KV cache on the CPU only: all layers run on the "
                 "CPU (use an f16 KV cache to offload)",
                 caps->backend, wh_kv_type_name(kv_type));
    return 0;
  }
  if (caps->max_head_dim &&
      (hp->head_dim_k > caps->max_head_dim || hp->head_dim_v > caps->max_head_dim)) {
    if (note_size)
      g_snprintf(note, note_size,
                 "the %s attention kernel handles heads of up to %u values, this model's are "
                 "%u/%u: all layers run on the CPU",
                 caps->backend, caps->max_head_dim, hp->head_dim_k, hp->head_dim_v);
    return 0;
  }
  guint32 n = want;
  if (n > hp->n_layer) {
    int bad = refused_type(hp->output_matrix_types, caps->matrix_ok);
    if (bad < 0)
      bad = refused_type(hp->output_vector_types, NULL);
    if (bad >= 0) {
      n = hp->n_layer;
      if (note_size)
        g_snprintf(note, note_size,
                   "the output layer stays on the CPU: the %s backend has no kernel for its %s "
                   "tensors",
                   caps->backend, wh_type_name((wh_type)bad));
    }
  }
  for (guint32 k = 0; k < MIN(n, hp->n_layer); k++) {
    const guint32 il = hp->n_layer - 1 - k;
    int bad = refused_type(hp->layer_matrix_types[il], caps->matrix_ok);
    if (bad < 0)
      bad = refused_type(hp->layer_vector_types[il], NULL);
    if (bad >= 0) {
      if (note_size)
        g_snprintf(note, note_size,
                   "%u of the %u layers asked for run on the GPU: layer %u and below stay on "
                   "the CPU because the %s backend has no kernel for its %s tensors",
                   k, want, il, caps->backend, wh_type_name((wh_type)bad));
      return k;
    }
  }
  return n;
}

/* --- memory plan --------------------------------------------------------------------- */

const char *
wh_kv_type_name(wh_kv_type type)
{
  switch (type) {
  case WH_KV_F16:
    return "f16";
  case WH_KV_Q8_0:
    return "q8_0";
  case WH_KV_Q4_0:
    return "q4_0";
  case WH_KV_F32:
    return "f32";
  }
  return "?";
}

gboolean
wh_kv_type_from_name(const char *name, wh_kv_type *out)
{
  static const wh_kv_type all[] = {WH_KV_F16, WH_KV_Q8_0, WH_KV_Q4_0, WH_KV_F32};
  for (gsize i = 0; name && i < G_N_ELEMENTS(all); i++) {
    if (g_ascii_strcasecmp(name, wh_kv_type_name(all[i])) == 0) {
      *out = all[i];
      return TRUE;
    }
  }
  return FALSE;
}

guint64
wh_kv_type_row_size(wh_kv_type type, guint64 n)
{
  switch (type) {
  case WH_KV_F16:
    return 2 * n;
  case WH_KV_F32:
    return 4 * n;
  case WH_KV_Q8_0:
    return n % 32 ? 0 : n / 32 * 34;
  case WH_KV_Q4_0:
    return n % 32 ? 0 : n / 32 * 18;
  }
  return 0;
}

#define WH_ALIGN 64
static guint64
align_up(guint64 v)
{
  return (v + WH_ALIGN - 1) & ~(guint64)(WH_ALIGN - 1);
}

/* Carves `bytes` from a block whose current size is *top; returns the offset. */
static guint64
carve(guint64 *top, guint64 bytes)
{
  guint64 off = *top;
  *top = align_up(*top + bytes);
  return off;
}

/* The GPU device's compute scratch: the residual stream and every activation of a batch
 * (x, h, qkv, attention output, FFN tmp and gate/up, and a matmul input rounded as the
 * CPU's 8-bit activation blocks hold it) in F32 in device memory (attention
 * keeps a running softmax: no score buffer), then the host-visible I/O block: a 16-byte step
 * block (position), the residual stream in/out and the cos/sin tables of both RoPE
 * configurations; each buffer 64-byte aligned, both blocks start at 0. GPU backends allocate
 * exactly this (engine/backend/vulkan/vk-forward.c, compute_layout()); a backend that needs
 * a different layout changes this function (and nothing else). */
static guint64
gpu_compute_bytes(const wh_model_hparams *hp, const wh_context_params *cp,
                  const wh_model_layout *lay)
{
  (void)cp;
  const guint64 nb = lay->nb, d = hp->n_embd;
  guint64 top = 0;
  carve(&top, nb * d * 4);                                        /* x */
  carve(&top, nb * d * 4);                                        /* h */
  carve(&top, nb * lay->qkv_width * 4);                           /* q, k, v */
  carve(&top, nb * (guint64)hp->n_head_max * hp->head_dim_v * 4); /* attention output */
  carve(&top, nb * d * 4);                                        /* tmp */
  carve(&top, nb * lay->ff_width * 4);                            /* gate, up */
  carve(&top, nb * (guint64)lay->k_max * 4);                      /* rounded activations */
  guint64 io = 0;
  carve(&io, 16);                            /* step block */
  carve(&io, nb * d * 4);                    /* x in/out */
  carve(&io, 2 * 2 * nb * lay->n_pairs * 4); /* RoPE cos/sin */
  return top + io;
}

gboolean
wh_model_compute_layout(const wh_model_hparams *hp, const wh_context_params *cp,
                        wh_model_layout *lay, GError **error)
{
  memset(lay, 0, sizeof(*lay));
  if (cp->n_ctx == 0 || cp->n_batch == 0 || cp->n_threads <= 0 || cp->n_ctx > (1u << 24) ||
      cp->n_batch > (1u << 16)) {
    g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_CONTEXT,
                "context size %u, batch size %u and thread count %d must be positive "
                "(context at most 16M tokens, batch at most 65536)",
                cp->n_ctx, cp->n_batch, cp->n_threads);
    return FALSE;
  }
  const guint64 nb = MIN(cp->n_batch, cp->n_ctx);
  const guint64 d = hp->n_embd, dk = hp->head_dim_k, dv = hp->head_dim_v;
  lay->nb = (guint32)nb;

  /* Device split (model.h, the device rule). */
  wh_memory_plan_devices *split = &lay->split;
  split->n_gpu_layers = MIN(cp->n_gpu_layers, hp->n_layer + 1);
  split->first_gpu_layer = hp->n_layer - MIN(split->n_gpu_layers, hp->n_layer);
  split->gpu_output = split->n_gpu_layers > hp->n_layer;

  /* KV cache: per layer n_ctx cells of K then n_ctx cells of V; layers below first_gpu_layer
   * in the CPU block, the others in the GPU block (offsets relative to their block). */
  guint64 kv = 0, kv_gpu = 0;
  for (guint32 il = 0; il < hp->n_layer; il++) {
    lay->kv_row_k[il] = wh_kv_type_row_size(cp->kv_type, hp->n_head_kv[il] * dk);
    lay->kv_row_v[il] = wh_kv_type_row_size(cp->kv_type, hp->n_head_kv[il] * dv);
    if (lay->kv_row_k[il] == 0 || lay->kv_row_v[il] == 0) {
      g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_CONTEXT,
                  "KV cache type %s needs rows that are a multiple of 32 values, but layer %u "
                  "has %u KV heads of %" G_GUINT64_FORMAT " values: use f16",
                  wh_kv_type_name(cp->kv_type), il, hp->n_head_kv[il], dk);
      return FALSE;
    }
    guint64 *blk = il < split->first_gpu_layer ? &kv : &kv_gpu;
    lay->kv_layer_off[il] = *blk;
    *blk = align_up(*blk + cp->n_ctx * (lay->kv_row_k[il] + lay->kv_row_v[il]));
  }

  /* Compute block. */
  guint64 qkv_w = 0;
  for (guint32 il = 0; il < hp->n_layer; il++) {
    qkv_w = MAX(qkv_w, hp->n_head[il] * dk + hp->n_head_kv[il] * (dk + dv));
    lay->n_group = MAX(lay->n_group, hp->n_head[il] / hp->n_head_kv[il]);
  }
  lay->qkv_width = (guint32)qkv_w;
  lay->ff_width = 2 * hp->n_ff_max;
  guint64 attn_w = hp->n_head_max * dv;
  lay->k_max = (guint32)MAX(MAX(d, attn_w), hp->n_ff_max);
  lay->n_pairs = hp->n_rot / 2;
  /* 8-bit activations: at most 292 bytes per 256 values (Q8_K; Q8_0 and Q8_1
   * take 272 and 288). */
  lay->qact_row = (lay->k_max + 255) / 256 * 292;

  guint64 top = 0;
  lay->off_x = carve(&top, nb * d * 4);
  lay->off_h = carve(&top, nb * d * 4);
  lay->off_qkv = carve(&top, nb * qkv_w * 4);
  lay->off_attn = carve(&top, nb * attn_w * 4);
  lay->off_tmp = carve(&top, nb * d * 4);
  lay->off_ff = carve(&top, nb * lay->ff_width * 4);
  lay->off_qact = carve(&top, nb * lay->qact_row);
  /* cos and sin for both RoPE configurations (global, sliding) */
  lay->off_rope = carve(&top, 2 * 2 * nb * lay->n_pairs * 4);
  lay->off_pos = carve(&top, nb * 4);
  lay->off_thread = top;
  /* Per thread: attention scores for the heads of one group over the whole
   * cache, a dequantized weight row, and K/V rows (whole rows: a quantized
   * cache row is dequantized entirely). */
  guint64 t = 0;
  lay->th_scores = carve(&t, (guint64)lay->n_group * cp->n_ctx * 4);
  lay->th_row = carve(&t, (guint64)lay->k_max * 4);
  lay->th_kv = carve(&t, (hp->n_head_kv_max * MAX(dk, dv) + (guint64)lay->n_group * dv) * 4);
  lay->thread_stride = t;
  top += t * (guint64)cp->n_threads;

  /* Weights: the GPU holds its layers' tensors and, with the output layer, the output norm
   * and matrix (a copy of the embedding when tied); the CPU keeps the rest mapped. */
  guint64 w_gpu = 0;
  for (guint32 il = split->first_gpu_layer; il < hp->n_layer; il++)
    w_gpu += hp->layer_bytes[il];
  guint64 w_cpu = hp->weight_bytes - w_gpu;
  if (split->gpu_output) {
    w_gpu += hp->output_bytes + (hp->tied_output ? hp->embd_bytes : 0);
    w_cpu -= hp->output_bytes;
  }
  lay->plan.weights = w_cpu;
  lay->plan.kv_cache = kv;
  lay->plan.compute = top;
  lay->plan.output = nb * hp->n_vocab * 4;
  guint64 ov = 0;
  lay->off_ov_tokens = carve(&ov, (guint64)cp->n_ctx * sizeof(gint32));
  lay->off_ov_rope = carve(&ov, 2 * (guint64)lay->n_pairs * sizeof(double));
  lay->overhead_block = ov;
  lay->plan.overhead = sizeof(wh_context) + ov;
  lay->plan.total = lay->plan.weights + lay->plan.kv_cache + lay->plan.compute + lay->plan.output +
                    lay->plan.overhead;
  split->dev[WH_PLAN_CPU] = lay->plan;

  wh_memory_plan *gpu = &split->dev[WH_PLAN_GPU];
  memset(gpu, 0, sizeof(*gpu));
  if (split->n_gpu_layers > 0) {
    gpu->weights = w_gpu;
    gpu->kv_cache = kv_gpu;
    gpu->compute = gpu_compute_bytes(hp, cp, lay);
    gpu->output = split->gpu_output ? nb * hp->n_vocab * 4 : 0;
    gpu->overhead = 0;
    gpu->total = gpu->weights + gpu->kv_cache + gpu->compute + gpu->output + gpu->overhead;
  }
  return TRUE;
}

gboolean
wh_model_memory_plan_devices(const wh_model_hparams *hp, const wh_context_params *cp,
                             wh_memory_plan_devices *out, GError **error)
{
  wh_model_layout lay;
  if (!wh_model_compute_layout(hp, cp, &lay, error))
    return FALSE;
  *out = lay.split;
  return TRUE;
}

gboolean
wh_model_memory_plan(const wh_model_hparams *hp, const wh_context_params *cp, wh_memory_plan *out,
                     GError **error)
{
  wh_model_layout lay;
  if (!wh_model_compute_layout(hp, cp, &lay, error))
    return FALSE;
  *out = lay.plan;
  return TRUE;
}

/* --- RoPE frequencies (spec 2.3, 2.4) ------------------------------------------------- */

void
wh_model_rope_freqs(const wh_model *model, const wh_context_params *cp, gboolean swa, double *freq,
                    float *mscale)
{
  const wh_model_hparams *hp = &model->hp;
  const guint32 n_pairs = hp->n_rot / 2;
  double base = swa ? hp->rope_base_swa : hp->rope_base;
  double s = hp->rope_freq_scale;
  /* gemma3 sliding layers: no frequency scaling */
  if (swa && hp->arch == WH_ARCH_GEMMA3)
    s = 1.0;

  const wh_gguf_tensor *ff = NULL;
  if (hp->arch == WH_ARCH_LLAMA && model->rope_freqs)
    ff = model->rope_freqs;
  if ((hp->arch == WH_ARCH_PHI3 ||
       (hp->arch == WH_ARCH_LLAMA && hp->rope_scaling == WH_ROPE_SCALING_LONGROPE)) &&
      model->rope_long && model->rope_short)
    ff = cp->n_ctx > hp->n_ctx_orig ? model->rope_long : model->rope_short;

  double low = 0, high = 0;
  gboolean yarn = hp->rope_scaling == WH_ROPE_SCALING_YARN && s != 1.0;
  if (yarn) {
    double n_rot = hp->n_rot;
    double corr_fast = n_rot * log(hp->n_ctx_orig / (32.0 * 2.0 * G_PI)) / (2.0 * log(base));
    double corr_slow = n_rot * log(hp->n_ctx_orig / (1.0 * 2.0 * G_PI)) / (2.0 * log(base));
    low = MAX(0.0, floor(corr_fast));
    high = MIN(n_rot - 1.0, ceil(corr_slow));
  }
  *mscale = hp->rope_attn_factor;
  if (yarn)
    *mscale = (float)(hp->rope_attn_factor * (1.0 + 0.1 * log(1.0 / s)));

  for (guint32 i = 0; i < n_pairs; i++) {
    double ext = pow(base, -2.0 * i / hp->n_rot);
    if (ff)
      ext /= ((const float *)ff->data)[i];
    if (yarn) {
      double r = (i - low) / MAX(0.001, high - low);
      double ramp = 1.0 - CLAMP(r, 0.0, 1.0);
      freq[i] = s * ext * (1.0 - ramp) + ext * ramp;
    } else {
      freq[i] = s * ext;
    }
  }
}

/* --- loading ------------------------------------------------------------------------- */

wh_model_params
wh_model_default_params(void)
{
  wh_model_params p = {0};
  p.n_threads = 0;
  return p;
}

typedef struct {
  const wh_gguf *g;
  GError **error;
  gboolean failed;
} binder;

/* Looks up "blk.<il>.<name>" (or just @name when il < 0) and checks its shape:
 * ne0 and ne1 (ne1 = 0: a vector). Optional tensors may be absent (NULL). */
static const wh_gguf_tensor *
bind(binder *b, gboolean required, guint64 ne0, guint64 ne1, const char *base, int il)
{
  if (b->failed)
    return NULL;
  char name[96];
  if (il < 0)
    g_strlcpy(name, base, sizeof(name));
  else
    g_snprintf(name, sizeof(name), "blk.%d.%s", il, base);
  const wh_gguf_tensor *t = wh_gguf_find_tensor(b->g, name);
  if (!t) {
    if (required) {
      g_set_error(b->error, WH_MODEL_ERROR, WH_MODEL_ERROR_MISSING_TENSOR,
                  "%s: required tensor “%s” is missing", wh_gguf_path(b->g), name);
      b->failed = TRUE;
    }
    return NULL;
  }
  guint64 want1 = ne1 ? ne1 : 1;
  if (t->ne[0] != ne0 || t->ne[1] != want1 || t->ne[2] != 1 || t->ne[3] != 1) {
    g_set_error(b->error, WH_MODEL_ERROR, WH_MODEL_ERROR_BAD_TENSOR,
                "%s: tensor “%s” has shape [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                ", %" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "], expected [%" G_GUINT64_FORMAT
                ", %" G_GUINT64_FORMAT "]",
                wh_gguf_path(b->g), name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], ne0, want1);
    b->failed = TRUE;
    return NULL;
  }
  /* Vectors (norms, biases, rope factors) are F32; matrices any type we can read. */
  gboolean ok = ne1 == 0 ? t->type == WH_TYPE_F32
                         : wh_quant_type_can_dequantize(t->type) &&
                               wh_quant_vec_dot_type(t->type) != (wh_type)-1;
  if (!ok) {
    g_set_error(b->error, WH_MODEL_ERROR, WH_MODEL_ERROR_BAD_TENSOR,
                "%s: tensor “%s” has type %s, which %s", wh_gguf_path(b->g), name,
                wh_type_name(t->type),
                ne1 == 0 ? "is not F32 (norm weights and biases must be F32)"
                         : "this engine cannot compute with");
    b->failed = TRUE;
    return NULL;
  }
  return t;
}

static gboolean
bind_tensors(wh_model *m, GError **error)
{
  const wh_model_hparams *hp = &m->hp;
  binder b = {m->gguf, error, FALSE};
  const guint64 d = hp->n_embd, V = hp->n_vocab, dk = hp->head_dim_k, dv = hp->head_dim_v;

  m->tok_embd = bind(&b, TRUE, d, V, "token_embd.weight", -1);
  m->output_norm = bind(&b, TRUE, d, 0, "output_norm.weight", -1);
  m->output = hp->arch == WH_ARCH_GEMMA2 ? NULL : bind(&b, FALSE, d, V, "output.weight", -1);
  if (!m->output)
    m->output = m->tok_embd;
  if (hp->arch == WH_ARCH_QWEN2)
    m->output_bias = bind(&b, FALSE, V, 0, "output.bias", -1);
  if (hp->arch == WH_ARCH_LLAMA)
    m->rope_freqs = bind(&b, FALSE, hp->n_rot / 2, 0, "rope_freqs.weight", -1);
  if (hp->arch == WH_ARCH_PHI3 || hp->arch == WH_ARCH_LLAMA) {
    m->rope_long = bind(&b, FALSE, hp->n_rot / 2, 0, "rope_factors_long.weight", -1);
    m->rope_short = bind(&b, FALSE, hp->n_rot / 2, 0, "rope_factors_short.weight", -1);
  }

  m->layers = g_new0(wh_layer_weights, hp->n_layer);
  for (guint32 il = 0; il < hp->n_layer && !b.failed; il++) {
    wh_layer_weights *L = &m->layers[il];
    const int i = (int)il;
    const guint64 H = hp->n_head[il], Hkv = hp->n_head_kv[il], F = hp->n_ff[il];
    const guint64 qkv = H * dk + Hkv * dk + Hkv * dv;
    L->attn_norm = bind(&b, TRUE, d, 0, "attn_norm.weight", i);
    L->wqkv = bind(&b, FALSE, d, qkv, "attn_qkv.weight", i);
    if (L->wqkv) {
      L->bqkv = bind(&b, FALSE, qkv, 0, "attn_qkv.bias", i);
    } else {
      L->wq = bind(&b, TRUE, d, H * dk, "attn_q.weight", i);
      L->wk = bind(&b, TRUE, d, Hkv * dk, "attn_k.weight", i);
      L->wv = bind(&b, TRUE, d, Hkv * dv, "attn_v.weight", i);
      L->bq = bind(&b, hp->arch == WH_ARCH_QWEN2, H * dk, 0, "attn_q.bias", i);
      L->bk = bind(&b, hp->arch == WH_ARCH_QWEN2, Hkv * dk, 0, "attn_k.bias", i);
      L->bv = bind(&b, hp->arch == WH_ARCH_QWEN2, Hkv * dv, 0, "attn_v.bias", i);
    }
    if (hp->has_qk_norm) {
      L->q_norm = bind(&b, TRUE, dk, 0, "attn_q_norm.weight", i);
      L->k_norm = bind(&b, TRUE, dk, 0, "attn_k_norm.weight", i);
    }
    L->wo = bind(&b, TRUE, H * dv, d, "attn_output.weight", i);
    if (hp->arch == WH_ARCH_LLAMA)
      L->bo = bind(&b, FALSE, d, 0, "attn_output.bias", i);
    L->ffn_norm = bind(&b, TRUE, d, 0, "ffn_norm.weight", i);
    if (hp->arch == WH_ARCH_PHI3) {
      L->ffn_up = bind(&b, TRUE, d, 2 * F, "ffn_up.weight", i);
    } else {
      L->ffn_gate = bind(&b, TRUE, d, F, "ffn_gate.weight", i);
      L->ffn_up = bind(&b, TRUE, d, F, "ffn_up.weight", i);
    }
    L->ffn_down = bind(&b, TRUE, F, d, "ffn_down.weight", i);
    if (hp->arch == WH_ARCH_LLAMA) {
      L->b_gate = bind(&b, FALSE, F, 0, "ffn_gate.bias", i);
      L->b_up = bind(&b, FALSE, F, 0, "ffn_up.bias", i);
      L->b_down = bind(&b, FALSE, d, 0, "ffn_down.bias", i);
    }
    if (hp->has_post_norms) {
      L->post_attn_norm = bind(&b, TRUE, d, 0, "post_attention_norm.weight", i);
      L->post_ffn_norm = bind(&b, TRUE, d, 0, "post_ffw_norm.weight", i);
    }
  }
  return !b.failed;
}

wh_model *
wh_model_load(const char *path, const wh_model_params *params, GError **error)
{
  wh_model_params p = params ? *params : wh_model_default_params();
  if (p.should_continue && !p.should_continue(p.user_data)) {
    g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_CANCELLED, "loading %s was cancelled", path);
    return NULL;
  }
  wh_gguf *g = wh_gguf_open(path, error);
  if (!g)
    return NULL;
  wh_model *m = g_new0(wh_model, 1);
  m->gguf = g;
  m->params = p;
  if (m->params.n_threads <= 0)
    m->params.n_threads = (int)MAX(1u, g_get_num_processors());
  if (p.progress)
    p.progress(0.0, p.user_data);
  if (!wh_model_hparams_from_gguf(g, &m->hp, error) || !bind_tensors(m, error)) {
    wh_model_free(m);
    return NULL;
  }
  if (p.should_continue && !p.should_continue(p.user_data)) {
    g_set_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_CANCELLED, "loading %s was cancelled", path);
    wh_model_free(m);
    return NULL;
  }
  if (p.progress)
    p.progress(1.0, p.user_data);
  return m;
}

void
wh_model_free(wh_model *model)
{
  if (!model)
    return;
  g_free(model->layers);
  wh_gguf_close(model->gguf);
  g_free(model);
}

const wh_model_hparams *
wh_model_get_hparams(const wh_model *model)
{
  return &model->hp;
}

const wh_gguf *
wh_model_get_gguf(const wh_model *model)
{
  return model->gguf;
}

guint32
wh_model_n_vocab(const wh_model *model)
{
  return model->hp.n_vocab;
}

int
wh_model_default_threads(const wh_model *model)
{
  return model->params.n_threads;
}
