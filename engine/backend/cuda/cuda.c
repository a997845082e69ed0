/* cuda.c — the CUDA backend's host side: device selection, the offloaded layers' memory,
 * weight uploads, and the forward pass as a sequence of kernel launches on one stream.
 *
 * See cuda-private.h for the design note. The layer loop below is the CPU backend's
 * (engine/model/cpu.c, cpu_layers) stage for stage; each stage is one kernel of *.cu:
 *   rms_norm -> mul_mat (q|k|v) -> rms_norm (q/k norms) -> rope -> kv_store -> attn ->
 *   mul_mat (wo) -> rms_norm (post norm) -> add -> rms_norm -> mul_mat (gate|up) -> glu ->
 *   mul_mat (down) -> rms_norm (post norm) -> add
 * where every mul_mat of a quantized weight first rounds its input with quantize_act.
 * GPU compute block (wh_model_compute_layout's gpu_compute_bytes, the same carve order):
 *   x [nb, d] | h [nb, d] | qkv [nb, W] | attn [nb, H*Dv] | tmp [nb, d] | ff [nb, 2F] |
 *   qact [nb, k_max] (rounded matmul inputs) | then Vulkan's host-visible I/O block:
 *   step (unused here) | x in/out (unused here) | rope [2 configs][cos|sin][nb][n_pairs]
 */
#include "config.h"

#include "backend/cuda/cuda.h"
#include "backend/cuda/cuda-private.h"
#include "model/model-private.h"
#include "quant/quant.h"

#include <dlfcn.h>
#include <math.h>
#include <string.h>

G_DEFINE_QUARK(wh - cuda - error - quark, wh_cuda_error)

/* --- the context's view (cuda.h) --------------------------------------------------------- */

gboolean
wh_cuda_device_requested(const char *device)
{
  return device && g_ascii_strncasecmp(device, "cuda", 4) == 0 &&
         (device[4] == '\0' || device[4] == ':');
}

char *
wh_cuda_context_prepare(const wh_model *model, wh_context_params *cp)
{
  if (cp->n_gpu_layers == 0)
    return NULL;
  GError *error = NULL;
  if (wh_cuda_probe(&error) == 0) {
    cp->n_gpu_layers = 0;
    char *note = g_strdup_printf("%s: all layers run on the CPU", error->message);
    g_error_free(error);
    return note;
  }
  return wh_cuda_clamp_layers(model, cp);
}

gboolean
wh_cuda_context_init(wh_context *ctx, GError **error)
{
  const char *name = ctx->params.device;
  wh_cuda_device *dev =
      wh_cuda_device_open(g_ascii_strcasecmp(name, "cuda") == 0 ? NULL : name, error);
  if (!dev)
    return FALSE;
  ctx->cuda = wh_cuda_forward_new(ctx, dev, error);
  return ctx->cuda != NULL;
}

void
wh_cuda_context_free(wh_context *ctx)
{
  wh_cuda_forward_free(ctx->cuda);
  ctx->cuda = NULL;
}

gboolean
wh_cuda_context_layers(wh_context *ctx, const wh_batch *batch, guint32 il_begin, GError **error)
{
  return wh_cuda_forward_layers(ctx->cuda, batch, il_begin, error);
}

gboolean
wh_cuda_context_shift(wh_context *ctx, guint32 to, guint32 from, guint32 n_move, gint64 delta,
                      GError **error)
{
  return wh_cuda_forward_shift(ctx->cuda, to, from, n_move, delta, error);
}

const char *
wh_cuda_context_device_name(const wh_context *ctx)
{
  return ctx->cuda ? wh_cuda_forward_device_name(ctx->cuda) : "";
}

#ifdef WH_HAVE_CUDA

#include "backend/cuda/cuda-kernels.h"

G_STATIC_ASSERT((int)WH_CU_F32 == (int)WH_TYPE_F32 && (int)WH_CU_F16 == (int)WH_TYPE_F16);
G_STATIC_ASSERT((int)WH_CU_Q4_0 == (int)WH_TYPE_Q4_0 && (int)WH_CU_Q4_1 == (int)WH_TYPE_Q4_1);
G_STATIC_ASSERT((int)WH_CU_Q5_0 == (int)WH_TYPE_Q5_0 && (int)WH_CU_Q5_1 == (int)WH_TYPE_Q5_1);
G_STATIC_ASSERT((int)WH_CU_Q8_0 == (int)WH_TYPE_Q8_0 && (int)WH_CU_Q2_K == (int)WH_TYPE_Q2_K);
G_STATIC_ASSERT((int)WH_CU_Q3_K == (int)WH_TYPE_Q3_K && (int)WH_CU_Q4_K == (int)WH_TYPE_Q4_K);
G_STATIC_ASSERT((int)WH_CU_Q5_K == (int)WH_TYPE_Q5_K && (int)WH_CU_Q6_K == (int)WH_TYPE_Q6_K);
G_STATIC_ASSERT((int)WH_CU_Q8_1 == (int)WH_TYPE_Q8_1 && (int)WH_CU_Q8_K == (int)WH_TYPE_Q8_K);
G_STATIC_ASSERT((int)WH_CU_IQ4_NL == (int)WH_TYPE_IQ4_NL &&
                (int)WH_CU_IQ4_XS == (int)WH_TYPE_IQ4_XS);

#define WH_CUDA_ALIGN 64
#define WH_CUDA_STAGING (32u << 20) /* bytes of page-locked staging for weight uploads */

struct wh_cuda_device {
  int ordinal;
  char name[256];
  wh_cu_stream *stream;
};

/* Sets @error from a failed CUDA call; FALSE when @err is not success. */
static gboolean
cu_ok(int err, const char *what, GError **error)
{
  if (err == 0)
    return TRUE;
  int code = WH_CUDA_ERROR_FAILED;
  if (wh_cu_error_is_no_device(err))
    code = WH_CUDA_ERROR_NO_DEVICE;
  else if (g_strcmp0(wh_cu_error_name(err), "cudaErrorMemoryAllocation") == 0)
    code = WH_CUDA_ERROR_NO_MEMORY;
  g_set_error(error, WH_CUDA_ERROR, code, "CUDA %s failed: %s (%s)", what, wh_cu_error_string(err),
              wh_cu_error_name(err));
  return FALSE;
}

gboolean
wh_cuda_is_built(void)
{
  return TRUE;
}

guint
wh_cuda_probe(GError **error)
{
  int n = 0;
  const int err = wh_cu_device_count(&n);
  if (err != 0) {
    /* The runtime says "driver version is insufficient" also when there is no driver at all. */
    void *driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (driver)
      dlclose(driver);
    g_set_error(error, WH_CUDA_ERROR, WH_CUDA_ERROR_NO_DEVICE, "no CUDA device: %s (%s)",
                driver ? wh_cu_error_string(err)
                       : "no NVIDIA driver (libcuda.so.1 is not installed)",
                wh_cu_error_name(err));
    return 0;
  }
  if (n <= 0) {
    g_set_error(error, WH_CUDA_ERROR, WH_CUDA_ERROR_NO_DEVICE,
                "no CUDA device: the NVIDIA driver reports none");
    return 0;
  }
  return (guint)n;
}

gboolean
wh_cuda_type_supported(wh_type type)
{
  return wh_cu_type_supported((int)type) != 0;
}

/* "cuda:N" -> N; -1 when @name is not of that form. */
static int
parse_ordinal(const char *name)
{
  if (g_ascii_strncasecmp(name, "cuda:", 5) != 0 || name[5] == '\0')
    return -1;
  char *end = NULL;
  guint64 v = g_ascii_strtoull(name + 5, &end, 10);
  return *end == '\0' && v < G_MAXINT ? (int)v : -1;
}

wh_cuda_device *
wh_cuda_device_open(const char *name, GError **error)
{
  const guint n = wh_cuda_probe(error);
  if (n == 0)
    return NULL;
  const gboolean any = name == NULL || name[0] == '\0';
  const int want = any ? -1 : parse_ordinal(name);
  char *needle = any ? NULL : g_utf8_casefold(name, -1);
  GString *seen = g_string_new(NULL);
  int found = -1;
  char found_name[256] = "";
  for (guint i = 0; i < n && found < 0; i++) {
    char dev_name[256];
    size_t total;
    int major, minor, n_sm;
    if (!cu_ok(wh_cu_device_props((int)i, dev_name, sizeof dev_name, &total, &major, &minor, &n_sm),
               "device query", error))
      goto out;
    g_string_append_printf(seen, "%s\"%s\" (cuda:%u)", seen->len ? ", " : "", dev_name, i);
    char *folded = g_utf8_casefold(dev_name, -1);
    if (any || want == (int)i || (want < 0 && strstr(folded, needle) != NULL)) {
      found = (int)i;
      g_strlcpy(found_name, dev_name, sizeof found_name);
    }
    g_free(folded);
  }
  if (found < 0) {
    g_set_error(error, WH_CUDA_ERROR, WH_CUDA_ERROR_NO_DEVICE,
                "no CUDA device matches \"%s\"; the CUDA devices here are: %s", name, seen->str);
    goto out;
  }

  wh_cuda_device *dev = g_new0(wh_cuda_device, 1);
  dev->ordinal = found;
  g_strlcpy(dev->name, found_name, sizeof dev->name);
  if (!cu_ok(wh_cu_set_device(found), "device selection", error) ||
      !cu_ok(wh_cu_stream_new(&dev->stream), "stream creation", error)) {
    g_free(dev);
    goto out;
  }
  g_free(needle);
  g_string_free(seen, TRUE);
  return dev;

out:
  g_free(needle);
  g_string_free(seen, TRUE);
  return NULL;
}

void
wh_cuda_device_free(wh_cuda_device *dev)
{
  if (!dev)
    return;
  wh_cu_set_device(dev->ordinal);
  wh_cu_stream_sync(dev->stream);
  wh_cu_stream_free(dev->stream);
  g_free(dev);
}

const char *
wh_cuda_device_name(const wh_cuda_device *dev)
{
  return dev->name;
}

gboolean
wh_cuda_device_memory(wh_cuda_device *dev, guint64 *total, guint64 *free_bytes, GError **error)
{
  size_t f = 0, t = 0;
  if (!cu_ok(wh_cu_set_device(dev->ordinal), "device selection", error) ||
      !cu_ok(wh_cu_mem_info(&f, &t), "memory query", error))
    return FALSE;
  *total = t;
  *free_bytes = f;
  return TRUE;
}

/* --- which layers can go --------------------------------------------------------------- */

/* CUDA keeps q8_0 / q4_0 KV caches too; the attention kernel takes heads of up to 256. */
static const wh_gpu_caps cuda_caps = {"CUDA", wh_cuda_type_supported, TRUE, 256};

const wh_gpu_caps *
wh_cuda_gpu_caps(void)
{
  return &cuda_caps;
}

char *
wh_cuda_clamp_layers(const wh_model *model, wh_context_params *cp)
{
  return wh_model_clamp_gpu_layers(model, cp, &cuda_caps);
}

/* --- the offloaded layers ------------------------------------------------------------- */

struct wh_cuda_forward {
  wh_context *ctx;
  wh_cuda_device *dev;
  wh_cu_stream *s;
  int kv_type; /* WH_CU_* of the cache rows */

  guint8 *weights; /* one block: F32 tensors first (4-byte aligned), then the rest */
  guint8 *kv;      /* the offloaded layers' cells, at ctx->lay.kv_layer_off[il] */
  guint8 *compute;
  float *logits;       /* with the output layer, else NULL */
  GHashTable *dev_ptr; /* const wh_gguf_tensor * -> its bytes on the device */

  /* compute block views */
  float *x, *h, *qkv, *attn, *tmp, *ff, *qact, *rope;
};

static guint64
carve(guint64 *top, guint64 bytes)
{
  guint64 off = *top;
  *top = (*top + bytes + WH_CUDA_ALIGN - 1) & ~(guint64)(WH_CUDA_ALIGN - 1);
  return off;
}

static int
kv_cu_type(wh_kv_type t)
{
  switch (t) {
  case WH_KV_F32:
    return WH_CU_F32;
  case WH_KV_F16:
    return WH_CU_F16;
  case WH_KV_Q8_0:
    return WH_CU_Q8_0;
  case WH_KV_Q4_0:
    return WH_CU_Q4_0;
  }
  return -1;
}

/* Which tensors the GPU holds (the plan's classification, model.c): "blk.N." of an offloaded
 * layer, and with the output layer output_norm.* / output.* and a tied embedding. */
static gboolean
tensor_on_gpu(const wh_context *ctx, const wh_gguf_tensor *t)
{
  const wh_model_hparams *hp = &ctx->model->hp;
  const wh_memory_plan_devices *split = &ctx->lay.split;
  char *end = NULL;
  if (g_str_has_prefix(t->name, "blk.")) {
    guint64 il = g_ascii_strtoull(t->name + 4, &end, 10);
    return end != t->name + 4 && *end == '.' && il < hp->n_layer && il >= split->first_gpu_layer;
  }
  if (!split->gpu_output)
    return FALSE;
  if (g_str_has_prefix(t->name, "output_norm.") || g_str_has_prefix(t->name, "output."))
    return TRUE;
  return hp->tied_output && strcmp(t->name, "token_embd.weight") == 0;
}

/* Uploads @n bytes of host memory to @dst through the staging buffer. */
static gboolean
upload_staged(wh_cuda_forward *fw, guint8 *staging, guint8 *dst, const guint8 *src, guint64 n,
              GError **error)
{
  for (guint64 off = 0; off < n; off += WH_CUDA_STAGING) {
    const gsize chunk = (gsize)MIN((guint64)WH_CUDA_STAGING, n - off);
    memcpy(staging, src + off, chunk);
    if (!cu_ok(wh_cu_upload(dst + off, staging, chunk, fw->s), "weight upload", error) ||
        !cu_ok(wh_cu_stream_sync(fw->s), "weight upload", error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
alloc_block(void **ptr, guint64 bytes, const char *what, const wh_cuda_device *dev, GError **error)
{
  const int err = wh_cu_malloc(ptr, bytes);
  if (err == 0)
    return TRUE;
  g_set_error(error, WH_CUDA_ERROR, WH_CUDA_ERROR_NO_MEMORY,
              "CUDA device \"%s\" could not allocate %s (%.1f MiB): %s; offload fewer layers",
              dev->name, what, bytes / 1048576.0, wh_cu_error_string(err));
  return FALSE;
}

wh_cuda_forward *
wh_cuda_forward_new(wh_context *ctx, wh_cuda_device *dev, GError **error)
{
  const wh_model *m = ctx->model;
  const wh_memory_plan *plan = &ctx->lay.split.dev[WH_PLAN_GPU];
  wh_cuda_forward *fw = g_new0(wh_cuda_forward, 1);
  fw->ctx = ctx;
  fw->dev = dev;
  fw->s = dev->stream;
  fw->kv_type = kv_cu_type(ctx->params.kv_type);
  fw->dev_ptr = g_hash_table_new(NULL, NULL);
  guint8 *staging = NULL;

  if (ctx->lay.split.n_gpu_layers == 0) {
    g_set_error(error, WH_CUDA_ERROR, WH_CUDA_ERROR_FAILED,
                "the context offloads no layers (n_gpu_layers = 0)");
    goto fail;
  }
  if (wh_cu_kv_type_supported(fw->kv_type) == 0) {
    g_set_error(error, WH_CUDA_ERROR, WH_CUDA_ERROR_UNSUPPORTED,
                "the CUDA kernels do not read a %s KV cache: use f16, f32, q8_0 or q4_0",
                wh_kv_type_name(ctx->params.kv_type));
    goto fail;
  }
  const wh_gguf *g = m->gguf;
  for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) {
    const wh_gguf_tensor *t = wh_gguf_get_tensor(g, i);
    if (tensor_on_gpu(ctx, t) && !wh_cuda_type_supported(t->type)) {
      g_set_error(error, WH_CUDA_ERROR, WH_CUDA_ERROR_UNSUPPORTED,
                  "tensor %s is of type %s, which the CUDA kernels do not read: keep its layer "
                  "on the CPU (fewer GPU layers)",
                  t->name, wh_type_name(t->type));
      goto fail;
    }
  }
  if (!cu_ok(wh_cu_set_device(dev->ordinal), "device selection", error))
    goto fail;

  /* Exactly the planned blocks. */
  if (!alloc_block((void **)&fw->weights, plan->weights, "the offloaded weights", dev, error) ||
      !alloc_block((void **)&fw->kv, plan->kv_cache, "the KV cache", dev, error) ||
      !alloc_block((void **)&fw->compute, plan->compute, "the compute buffers", dev, error) ||
      !alloc_block((void **)&fw->logits, plan->output, "the logits buffer", dev, error))
    goto fail;

  /* Weights, packed: F32 tensors first so they stay 4-byte aligned; every other tensor is a
   * whole number of 2-byte blocks, which is all the kernels' 16-bit reads need. */
  if (!cu_ok(wh_cu_host_alloc((void **)&staging, WH_CUDA_STAGING), "staging allocation", error))
    goto fail;
  guint64 w_off = 0;
  for (int pass = 0; pass < 2; pass++) {
    for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) {
      const wh_gguf_tensor *t = wh_gguf_get_tensor(g, i);
      if (!tensor_on_gpu(ctx, t) || (t->type == WH_TYPE_F32) != (pass == 0))
        continue;
      if (w_off + t->n_bytes > plan->weights) {
        g_set_error(error, WH_CUDA_ERROR, WH_CUDA_ERROR_FAILED,
                    "the offloaded weights exceed the planned %" G_GUINT64_FORMAT
                    " bytes at tensor %s (a bug: the plan and the backend disagree)",
                    plan->weights, t->name);
        goto fail;
      }
      if (!upload_staged(fw, staging, fw->weights + w_off, t->data, t->n_bytes, error))
        goto fail;
      g_hash_table_insert(fw->dev_ptr, (gpointer)t, fw->weights + w_off);
      w_off += t->n_bytes;
    }
  }
  wh_cu_host_free(staging);
  staging = NULL;

  /* Compute block views, in the plan's order (model.c, gpu_compute_bytes): the device buffers,
   * then what Vulkan keeps host-visible (the step block and the x in/out buffer are unused
   * here: a launch takes the position as a parameter and x goes straight to the device). */
  const wh_model_hparams *hp = &m->hp;
  const guint64 nb = ctx->lay.nb, d = hp->n_embd;
  guint64 top = 0, io = 0;
  fw->x = (float *)(fw->compute + carve(&top, nb * d * 4));
  fw->h = (float *)(fw->compute + carve(&top, nb * d * 4));
  fw->qkv = (float *)(fw->compute + carve(&top, nb * ctx->lay.qkv_width * 4));
  fw->attn =
      (float *)(fw->compute + carve(&top, nb * (guint64)hp->n_head_max * hp->head_dim_v * 4));
  fw->tmp = (float *)(fw->compute + carve(&top, nb * d * 4));
  fw->ff = (float *)(fw->compute + carve(&top, nb * ctx->lay.ff_width * 4));
  fw->qact = (float *)(fw->compute + carve(&top, nb * (guint64)ctx->lay.k_max * 4));
  carve(&io, 16);         /* step block: unused */
  carve(&io, nb * d * 4); /* x in/out: unused */
  fw->rope = (float *)(fw->compute + top + carve(&io, 2 * 2 * nb * ctx->lay.n_pairs * 4));
  if (top + io != plan->compute) {
    g_set_error(error, WH_CUDA_ERROR, WH_CUDA_ERROR_FAILED,
                "the CUDA compute layout (%" G_GUINT64_FORMAT " bytes) differs from the plan "
                "(%" G_GUINT64_FORMAT " bytes): a bug",
                top + io, plan->compute);
    goto fail;
  }

  ctx->allocated_gpu.weights = plan->weights;
  ctx->allocated_gpu.kv_cache = plan->kv_cache;
  ctx->allocated_gpu.compute = plan->compute;
  ctx->allocated_gpu.output = plan->output;
  ctx->allocated_gpu.total = plan->weights + plan->kv_cache + plan->compute + plan->output;
  return fw;

fail:
  wh_cu_host_free(staging);
  wh_cuda_forward_free(fw);
  return NULL;
}

void
wh_cuda_forward_free(wh_cuda_forward *fw)
{
  if (!fw)
    return;
  wh_cu_set_device(fw->dev->ordinal);
  wh_cu_stream_sync(fw->s);
  wh_cu_free(fw->weights);
  wh_cu_free(fw->kv);
  wh_cu_free(fw->compute);
  wh_cu_free(fw->logits);
  memset(&fw->ctx->allocated_gpu, 0, sizeof(fw->ctx->allocated_gpu));
  g_hash_table_unref(fw->dev_ptr);
  wh_cuda_device_free(fw->dev);
  g_free(fw);
}

const char *
wh_cuda_forward_device_name(const wh_cuda_forward *fw)
{
  return fw->dev->name;
}

/* --- the step ------------------------------------------------------------------------- */

/* Device bytes of a weight tensor (NULL for an absent optional one). */
static const guint8 *
dptr(wh_cuda_forward *fw, const wh_gguf_tensor *t)
{
  if (!t)
    return NULL;
  const guint8 *p = g_hash_table_lookup(fw->dev_ptr, t);
  g_assert(p != NULL); /* every tensor of an offloaded layer was uploaded */
  return p;
}

static guint8 *
k_cells(wh_cuda_forward *fw, guint32 il)
{
  return fw->kv + fw->ctx->lay.kv_layer_off[il];
}

static guint8 *
v_cells(wh_cuda_forward *fw, guint32 il)
{
  return k_cells(fw, il) + (guint64)fw->ctx->params.n_ctx * fw->ctx->lay.kv_row_k[il];
}

/* y[t] = W x[t] (+ bias) for n tokens. Like the CPU path, weights of a quantized type
 * multiply the input rounded to their 8-bit activation type (Q8_0, Q8_1 or Q8_K, into qact). */
static int
mul_mat(wh_cuda_forward *fw, const wh_gguf_tensor *w, const float *x, guint32 ldx, float *y,
        guint32 ldy, const wh_gguf_tensor *bias, guint32 n)
{
  const wh_type act = wh_quant_vec_dot_type(w->type);
  if (act != WH_TYPE_F32) {
    const wh_cu_quantize_act_params qa = {
        .x = x, .y = fw->qact, .ldx = ldx, .ldy = (guint32)w->ne[0]};
    const int err = wh_cu_quantize_act(fw->s, (int)act, &qa, (guint32)w->ne[0], n);
    if (err != 0)
      return err;
    x = fw->qact;
    ldx = (guint32)w->ne[0];
  }
  const wh_cu_mul_mat_params p = {
      .w = dptr(fw, w),
      .x = x,
      .y = y,
      .bias = (const float *)dptr(fw, bias),
      .K = (guint32)w->ne[0],
      .rows = (guint32)w->ne[1],
      .n_tokens = n,
      .ldx = ldx,
      .ldy = ldy,
      .row_bytes = (guint32)wh_quant_row_bytes(w->type, (gint64)w->ne[0]),
  };
  return wh_cu_mul_mat(fw->s, (int)w->type, &p);
}

/* rms_norm of n_heads rows of n elements per token (ld between tokens; in place when
 * y == x). */
static int
rms_norm(wh_cuda_forward *fw, float *y, const float *x, guint32 ld, const wh_gguf_tensor *w,
         guint32 n, guint32 n_heads, guint32 n_tokens)
{
  const wh_cu_rms_norm_params p = {
      .x = x,
      .y = y,
      .w = (const float *)dptr(fw, w),
      .n = n,
      .ldx_t = ld,
      .ldx_h = n,
      .ldy_t = ld,
      .ldy_h = n,
      .eps = fw->ctx->model->hp.eps,
  };
  return wh_cu_rms_norm(fw->s, &p, n_heads, n_tokens);
}

static int
add(wh_cuda_forward *fw, float *x, const float *y, guint32 n)
{
  const wh_cu_add_params p = {.x = x, .y = y, .n = n};
  return wh_cu_add(fw->s, &p);
}

/* Rotates n_heads heads per token by the table of configuration @c at @tab (cos rows, then
 * nb sin rows). */
static int
rope(wh_cuda_forward *fw, float *v, guint32 n_heads, guint32 n_tokens, guint32 ld, const float *tab)
{
  const wh_model_hparams *hp = &fw->ctx->model->hp;
  const wh_cu_rope_params p = {
      .v = v,
      .tab = tab,
      .ld = ld,
      .head_dim = hp->head_dim_k,
      .n_pairs = fw->ctx->lay.n_pairs,
      .nb = fw->ctx->lay.nb,
      .neox = hp->rope_type == WH_ROPE_NEOX,
  };
  return wh_cu_rope(fw->s, &p, n_heads, n_tokens);
}

/* Cache rows pos0 .. pos0 + n_tokens - 1 of @cells <- src rows. */
static int
kv_store(wh_cuda_forward *fw, guint8 *cells, guint64 row_bytes, const float *src, guint32 ld,
         guint32 n, guint32 n_tokens, guint32 pos0)
{
  const wh_cu_kv_store_params p = {
      .src = src,
      .dst = cells,
      .pos0 = pos0,
      .n = n,
      .ld = ld,
      .row_bytes = (guint32)row_bytes,
  };
  return wh_cu_kv_store(fw->s, fw->kv_type, &p, n_tokens);
}

/* Runs one stage; on failure sets @error naming the stage and layer. */
#define STAGE(call, what)                                                                          \
  do {                                                                                             \
    const int err_ = (call);                                                                       \
    if (err_ != 0) {                                                                               \
      g_set_error(error, WH_CUDA_ERROR, WH_CUDA_ERROR_FAILED,                                      \
                  "CUDA kernel %s (layer %u) failed: %s (%s)", what, il, wh_cu_error_string(err_), \
                  wh_cu_error_name(err_));                                                         \
      return FALSE;                                                                                \
    }                                                                                              \
  } while (0)

/* The output layer: output norm, output matrix, soft-capping; the wanted logits rows go to
 * ctx->logits. x is on the device. */
static gboolean
run_output(wh_cuda_forward *fw, const wh_batch *batch, GError **error)
{
  wh_context *ctx = fw->ctx;
  const wh_model *m = ctx->model;
  const guint32 d = m->hp.n_embd, V = m->hp.n_vocab;
  const guint32 t0 = batch->first_logit, n = batch->n_tokens - batch->first_logit;
  const guint32 il = m->hp.n_layer; /* for STAGE's message: the output layer */

  STAGE(rms_norm(fw, fw->h + (gsize)t0 * d, fw->x + (gsize)t0 * d, d, m->output_norm, d, 1, n),
        "rms_norm");
  STAGE(mul_mat(fw, m->output, fw->h + (gsize)t0 * d, d, fw->logits, V, m->output_bias, n),
        "mul_mat");
  if (m->hp.final_softcap > 0.0f) {
    const wh_cu_scale_params sp = {
        .x = fw->logits, .n = n * V, .s = 1.0f, .cap = m->hp.final_softcap};
    STAGE(wh_cu_scale(fw->s, &sp), "scale");
  }
  return cu_ok(wh_cu_download(ctx->logits, fw->logits, (gsize)n * V * 4, fw->s), "logits download",
               error);
}

gboolean
wh_cuda_forward_layers(wh_cuda_forward *fw, const wh_batch *batch, guint32 il_begin, GError **error)
{
  wh_context *ctx = fw->ctx;
  const wh_model *m = ctx->model;
  const wh_model_hparams *hp = &m->hp;
  const guint32 n = batch->n_tokens, d = hp->n_embd, W = ctx->lay.qkv_width;
  const guint32 dk = hp->head_dim_k, dv = hp->head_dim_v, nb = ctx->lay.nb, np = ctx->lay.n_pairs;
  guint32 il = il_begin;

  g_return_val_if_fail(il_begin >= ctx->lay.split.first_gpu_layer, FALSE);
  if (!cu_ok(wh_cu_set_device(fw->dev->ordinal), "device selection", error))
    return FALSE;
  /* One transfer in: the residual stream and the batch's rows of the RoPE tables (cos and
   * sin of both configurations, as the embed phase wrote them into the CPU's compute block). */
  if (!cu_ok(wh_cu_upload(fw->x, ctx->compute + ctx->lay.off_x, (gsize)n * d * 4, fw->s),
             "activation upload", error))
    return FALSE;
  const float *host_rope = (const float *)(ctx->compute + ctx->lay.off_rope);
  for (gsize part = 0; part < 4; part++)
    if (!cu_ok(wh_cu_upload(fw->rope + part * nb * np, host_rope + part * nb * np,
                            (gsize)n * np * 4, fw->s),
               "RoPE table upload", error))
      return FALSE;

  for (il = il_begin; il < hp->n_layer; il++) {
    const wh_layer_weights *L = &m->layers[il];
    const guint32 H = hp->n_head[il], Hkv = hp->n_head_kv[il], F = hp->n_ff[il];
    const float *tab = fw->rope + (gsize)(hp->swa_layer[il] ? 1 : 0) * 2 * nb * np;

    /* h = attn_norm(x) */
    STAGE(rms_norm(fw, fw->h, fw->x, d, L->attn_norm, d, 1, n), "rms_norm");
    /* q | k | v */
    if (L->wqkv) {
      STAGE(mul_mat(fw, L->wqkv, fw->h, d, fw->qkv, W, L->bqkv, n), "mul_mat");
    } else {
      STAGE(mul_mat(fw, L->wq, fw->h, d, fw->qkv, W, L->bq, n), "mul_mat");
      STAGE(mul_mat(fw, L->wk, fw->h, d, fw->qkv + H * dk, W, L->bk, n), "mul_mat");
      STAGE(mul_mat(fw, L->wv, fw->h, d, fw->qkv + (H + Hkv) * dk, W, L->bv, n), "mul_mat");
    }
    float *q = fw->qkv, *k = fw->qkv + H * dk, *v = k + Hkv * dk;
    if (L->q_norm)
      STAGE(rms_norm(fw, q, q, W, L->q_norm, dk, H, n), "rms_norm");
    if (L->k_norm)
      STAGE(rms_norm(fw, k, k, W, L->k_norm, dk, Hkv, n), "rms_norm");
    STAGE(rope(fw, q, H, n, W, tab), "rope");
    STAGE(rope(fw, k, Hkv, n, W, tab), "rope");
    STAGE(kv_store(fw, k_cells(fw, il), ctx->lay.kv_row_k[il], k, W, Hkv * dk, n, batch->pos0),
          "kv_store");
    STAGE(kv_store(fw, v_cells(fw, il), ctx->lay.kv_row_v[il], v, W, Hkv * dv, n, batch->pos0),
          "kv_store");
    const wh_cu_attn_params ap = {
        .qkv = q,
        .out_ = fw->attn,
        .k = k_cells(fw, il),
        .v = v_cells(fw, il),
        .pos0 = batch->pos0,
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
    STAGE(wh_cu_attn(fw->s, fw->kv_type, &ap, n), "attn");
    STAGE(mul_mat(fw, L->wo, fw->attn, H * dv, fw->tmp, d, L->bo, n), "mul_mat");

    /* x += post_attn_norm(tmp); h = ffn_norm(x) */
    if (L->post_attn_norm)
      STAGE(rms_norm(fw, fw->tmp, fw->tmp, d, L->post_attn_norm, d, 1, n), "rms_norm");
    STAGE(add(fw, fw->x, fw->tmp, n * d), "add");
    STAGE(rms_norm(fw, fw->h, fw->x, d, L->ffn_norm, d, 1, n), "rms_norm");

    if (L->ffn_gate) {
      STAGE(mul_mat(fw, L->ffn_gate, fw->h, d, fw->ff, 2 * F, L->b_gate, n), "mul_mat");
      STAGE(mul_mat(fw, L->ffn_up, fw->h, d, fw->ff + F, 2 * F, L->b_up, n), "mul_mat");
    } else {
      STAGE(mul_mat(fw, L->ffn_up, fw->h, d, fw->ff, 2 * F, L->b_up, n), "mul_mat"); /* phi3 */
    }
    const wh_cu_glu_params gp = {.ff = fw->ff, .F = F, .gelu = hp->ffn_gelu ? 1 : 0};
    STAGE(wh_cu_glu(fw->s, &gp, n), "glu");
    STAGE(mul_mat(fw, L->ffn_down, fw->ff, 2 * F, fw->tmp, d, L->b_down, n), "mul_mat");

    /* x += post_ffw_norm(tmp) */
    if (L->post_ffn_norm)
      STAGE(rms_norm(fw, fw->tmp, fw->tmp, d, L->post_ffn_norm, d, 1, n), "rms_norm");
    STAGE(add(fw, fw->x, fw->tmp, n * d), "add");
  }

  /* One transfer out: the logits, or the residual stream for the CPU's output layer. */
  if (ctx->lay.split.gpu_output) {
    if (batch->first_logit < n && !run_output(fw, batch, error))
      return FALSE;
  } else if (!cu_ok(wh_cu_download(ctx->compute + ctx->lay.off_x, fw->x, (gsize)n * d * 4, fw->s),
                    "activation download", error)) {
    return FALSE;
  }
  return cu_ok(wh_cu_stream_sync(fw->s), "forward step", error);
}

gboolean
wh_cuda_forward_shift(wh_cuda_forward *fw, guint32 to, guint32 from, guint32 n_move, gint64 delta,
                      GError **error)
{
  wh_context *ctx = fw->ctx;
  const wh_model_hparams *hp = &ctx->model->hp;
  const guint32 dk = hp->head_dim_k, np = ctx->lay.n_pairs, nb = ctx->lay.nb;
  guint32 il = ctx->lay.split.first_gpu_layer;

  if (n_move == 0)
    return TRUE;
  g_return_val_if_fail(to < from, FALSE);
  if (!cu_ok(wh_cu_set_device(fw->dev->ordinal), "device selection", error))
    return FALSE;

  /* The RoPE block gets a table whose every row rotates by @delta (both configurations, no
   * magnitude factor: the keys already carry it), as wh_cpu_rope_shift() computes it. */
  const gsize tab_floats = (gsize)2 * 2 * nb * np;
  float *tab = g_new(float, tab_floats);
  for (int c = 0; c < 2; c++)
    for (guint32 i = 0; i < np; i++) {
      const double theta = (double)delta * ctx->rope_freq[c][i];
      for (guint32 t = 0; t < nb; t++) {
        tab[((gsize)c * 2 * nb + t) * np + i] = (float)cos(theta);
        tab[((gsize)c * 2 * nb + nb + t) * np + i] = (float)sin(theta);
      }
    }
  const gboolean up =
      cu_ok(wh_cu_upload(fw->rope, tab, tab_floats * 4, fw->s), "RoPE table upload", error) &&
      cu_ok(wh_cu_stream_sync(fw->s), "RoPE table upload", error);
  g_free(tab);
  if (!up)
    return FALSE;

  const guint32 gap = from - to;
  for (; il < hp->n_layer; il++) {
    const guint64 rk = ctx->lay.kv_row_k[il], rv = ctx->lay.kv_row_v[il];
    const float *ltab = fw->rope + (gsize)(hp->swa_layer[il] ? 1 : 0) * 2 * nb * np;
    const guint32 Hkv = hp->n_head_kv[il];
    /* Move cells down in chunks of `gap` cells: no chunk overlaps its destination. */
    for (guint32 off = 0; off < n_move; off += gap) {
      const guint32 cnt = MIN(gap, n_move - off);
      STAGE(wh_cu_copy_device(k_cells(fw, il) + (to + off) * rk,
                              k_cells(fw, il) + (from + off) * rk, cnt * rk, fw->s),
            "copy");
      STAGE(wh_cu_copy_device(v_cells(fw, il) + (to + off) * rv,
                              v_cells(fw, il) + (from + off) * rv, cnt * rv, fw->s),
            "copy");
    }
    /* Re-rotate the moved keys, nb cells at a time through the qkv buffer as F32 rows. */
    for (guint32 off = 0; off < n_move; off += nb) {
      const guint32 cnt = MIN(nb, n_move - off);
      const wh_cu_get_rows_params gp = {
          .table = k_cells(fw, il),
          .x = fw->qkv,
          .d = Hkv * dk,
          .row_bytes = (guint32)rk,
          .n_tokens = cnt,
          .ldx = Hkv * dk,
          .first_row = to + off,
          .scale = 1.0f,
      };
      STAGE(wh_cu_get_rows(fw->s, fw->kv_type, &gp), "get_rows");
      STAGE(rope(fw, fw->qkv, Hkv, cnt, Hkv * dk, ltab), "rope");
      STAGE(kv_store(fw, k_cells(fw, il), rk, fw->qkv, Hkv * dk, Hkv * dk, cnt, to + off),
            "kv_store");
    }
  }
  return cu_ok(wh_cu_stream_sync(fw->s), "context shift", error);
}

#else /* !WH_HAVE_CUDA ------------------------------------------------------------------- */

static void
not_built(GError **error)
{
  g_set_error(error, WH_CUDA_ERROR, WH_CUDA_ERROR_NOT_BUILT,
              "no CUDA device: this build has no CUDA backend (configure with -Dcuda=enabled "
              "where nvcc is installed)");
}

gboolean
wh_cuda_is_built(void)
{
  return FALSE;
}

guint
wh_cuda_probe(GError **error)
{
  not_built(error);
  return 0;
}

gboolean
wh_cuda_type_supported(wh_type type)
{
  return FALSE;
}

wh_cuda_device *
wh_cuda_device_open(const char *name, GError **error)
{
  not_built(error);
  return NULL;
}

void
wh_cuda_device_free(wh_cuda_device *dev)
{
}

const char *
wh_cuda_device_name(const wh_cuda_device *dev)
{
  return "";
}

gboolean
wh_cuda_device_memory(wh_cuda_device *dev, guint64 *total, guint64 *free_bytes, GError **error)
{
  not_built(error);
  return FALSE;
}

const wh_gpu_caps *
wh_cuda_gpu_caps(void)
{
  return NULL;
}

char *
wh_cuda_clamp_layers(const wh_model *model, wh_context_params *cp)
{
  if (cp->n_gpu_layers == 0)
    return NULL;
  cp->n_gpu_layers = 0;
  return g_strdup("this build has no CUDA backend (configure with -Dcuda=enabled): all layers "
                  "run on the CPU");
}

wh_cuda_forward *
wh_cuda_forward_new(wh_context *ctx, wh_cuda_device *dev, GError **error)
{
  not_built(error);
  return NULL;
}

void
wh_cuda_forward_free(wh_cuda_forward *fw)
{
}

const char *
wh_cuda_forward_device_name(const wh_cuda_forward *fw)
{
  return "";
}

gboolean
wh_cuda_forward_layers(wh_cuda_forward *fw, const wh_batch *batch, guint32 il_begin, GError **error)
{
  not_built(error);
  return FALSE;
}

gboolean
wh_cuda_forward_shift(wh_cuda_forward *fw, guint32 to, guint32 from, guint32 n_move, gint64 delta,
                      GError **error)
{
  not_built(error);
  return FALSE;
}

#endif
