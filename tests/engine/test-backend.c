/* test-backend.c — the Vulkan backend against the CPU path.
 *
 * Kernels: each compute kernel runs on real data from the shared files and is compared with
 * the CPU's arithmetic (exact dequantization from the quant module, double-precision
 * reference sums). Tolerances: products and norms are F32 sums in another order than the
 * reference, so |gpu - ref| <= 1e-5 * (sum of |terms|) + 1e-6; the F16 KV store is exact.
 * Whole models: for every shared model, logits with n_gpu_layers = 0, half the layers and
 * all layers + output agree with the reference within the tolerances of shared/README.md
 * (F16: max rel diff <= 2e-3 and argmax except near-ties; quantized: argmax >= 94%, mean
 * KLD <= 3e-3, over all four prompts), and with the CPU path (reported). The normal suite
 * runs a subset (see main()); test-backend-models.c, in the engine-slow suite, builds this
 * file with WH_BACKEND_SWEEP for every model on all four prompts.
 * Without a Vulkan device (or in a build without the backend) every test is skipped with a
 * plain message.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "backend/vulkan/vk-private.h"
#include "model/model-private.h"
#include "quant/quant.h"
#include "sample/sample.h"
#include "wh-test-util.h"

static wh_vk_device *
device_or_skip(void)
{
  GError *error = NULL;
  wh_vk_device *dev = wh_vk_device_open(NULL, &error);
  if (!dev) {
    g_test_skip_printf("no Vulkan device to test on: %s", error->message);
    g_error_free(error);
  }
  return dev;
}

#if defined(WH_HAVE_VULKAN) && !defined(WH_BACKEND_SWEEP)

static wh_gguf *
open_shared_or_skip(const char *rel)
{
  g_autofree char *path = wh_test_shared_file_or_skip(rel);
  if (!path)
    return NULL;
  GError *error = NULL;
  wh_gguf *g = wh_gguf_open(path, &error);
  g_assert_no_error(error);
  return g;
}

/* The device and a shared file, or FALSE when either is missing (the test is skipped). */
static gboolean
open_both(const char *rel, wh_vk_device **dev, wh_gguf **g)
{
  *dev = device_or_skip();
  *g = *dev ? open_shared_or_skip(rel) : NULL;
  if (*dev && !*g)
    wh_vk_device_free(*dev);
  return *g != NULL;
}

/* A host-visible buffer holding a copy of @src (or zeros). */
static void
host_buf(wh_vk_device *dev, gsize bytes, const void *src, wh_vk_buffer *b)
{
  GError *error = NULL;
  g_assert_true(wh_vk_buffer_alloc(dev, bytes, TRUE, b, &error));
  g_assert_no_error(error);
  if (src)
    memcpy(b->map, src, bytes);
  else
    memset(b->map, 0, bytes);
}

static void
run(wh_vk_device *dev, gboolean (*record)(wh_vk_device *, VkCommandBuffer, gpointer, GError **),
    gpointer data)
{
  GError *error = NULL;
  VkCommandBuffer cmd = wh_vk_cmd_new(dev, &error);
  g_assert_no_error(error);
  wh_vk_cmd_begin(dev, cmd);
  g_assert_true(record(dev, cmd, data, &error));
  g_assert_no_error(error);
  g_assert_true(wh_vk_cmd_end(dev, cmd, &error));
  g_assert_true(wh_vk_submit_wait(dev, cmd, &error));
  g_assert_no_error(error);
  wh_vk_cmd_free(dev, cmd);
}

static void
assert_close(double got, double want, double scale, const char *what, guint i)
{
  const double tol = 1e-5 * scale + 1e-6;
  if (fabs(got - want) > tol)
    g_error("%s[%u]: GPU %.9g, CPU %.9g (|diff| %.3g > %.3g)", what, i, got, want, fabs(got - want),
            tol);
}

/* --- mul_mat ----------------------------------------------------------------------------- */

typedef struct {
  wh_type type;
  wh_vk_pc_mul_mat pc;
} mm_rec;

static gboolean
rec_mm(wh_vk_device *dev, VkCommandBuffer cmd, gpointer data, GError **error)
{
  mm_rec *r = data;
  return wh_vk_op_mul_mat(dev, cmd, r->type, &r->pc, error);
}

/* W = the q.<TYPE> tensor of quant-reference.gguf ([16 rows][1024], quantized by the
 * reference; F32 uses dq.Q8_0), x = rows of its F32 input, for 1, 11 and 16 tokens. */
static void
test_mul_mat(gconstpointer data)
{
  const wh_type type = (wh_type)GPOINTER_TO_INT(data);
  wh_vk_device *dev;
  wh_gguf *g;
  if (!open_both("reference/quant-reference.gguf", &dev, &g))
    return;
  g_autofree char *wname =
      type == WH_TYPE_F32 ? g_strdup("dq.Q8_0") : g_strdup_printf("q.%s", wh_type_name(type));
  const wh_gguf_tensor *w = wh_gguf_find_tensor(g, wname);
  const wh_gguf_tensor *in = wh_gguf_find_tensor(g, "input");
  g_assert_nonnull(w);
  g_assert_nonnull(in);
  g_assert_cmpint(w->type, ==, type);
  const guint32 K = (guint32)w->ne[0], rows = (guint32)w->ne[1];
  const gsize row_bytes = wh_quant_row_bytes(type, K);
  const float *x = (const float *)in->data;
  g_autofree float *wf = g_new(float, (gsize)rows *K);
  wh_quant_dequantize_row(type, w->data, wf, (gint64)rows * K);

  GError *error = NULL;
  wh_vk_buffer wb, xb, yb, bb;
  g_assert_true(wh_vk_buffer_alloc(dev, w->n_bytes, FALSE, &wb, &error)); /* device-local */
  g_assert_true(wh_vk_upload(dev, &wb, 0, w->data, w->n_bytes, &error));
  g_assert_no_error(error);
  host_buf(dev, in->n_bytes, x, &xb);
  host_buf(dev, 16ull * rows * 4, NULL, &yb);
  g_autofree float *bias = g_new(float, rows);
  for (guint32 r = 0; r < rows; r++)
    bias[r] = x[r] * 0.5f; /* any real numbers */
  host_buf(dev, rows * 4ull, bias, &bb);

  static const guint32 token_counts[] = {1, 11, 16};
  for (gsize c = 0; c < G_N_ELEMENTS(token_counts); c++) {
    const guint32 n = token_counts[c];
    const gboolean with_bias = c == 1;
    mm_rec rec = {type,
                  {.w = wb.addr,
                   .x = xb.addr,
                   .y = yb.addr,
                   .bias = with_bias ? bb.addr : 0,
                   .K = K,
                   .rows = rows,
                   .n_tokens = n,
                   .ldx = K,
                   .ldy = rows,
                   .row_bytes = (guint32)row_bytes}};
    memset(yb.map, 0, yb.size);
    run(dev, rec_mm, &rec);
    const float *y = (const float *)yb.map;
    for (guint32 t = 0; t < n; t++)
      for (guint32 r = 0; r < rows; r++) {
        double s = with_bias ? bias[r] : 0.0, mag = fabs(s);
        for (guint32 k = 0; k < K; k++) {
          s += (double)wf[(gsize)r * K + k] * x[(gsize)t * K + k];
          mag += fabs((double)wf[(gsize)r * K + k] * x[(gsize)t * K + k]);
        }
        assert_close(y[t * rows + r], s, mag, wname, t * rows + r);
      }
  }
  wh_vk_buffer_free(dev, &wb);
  wh_vk_buffer_free(dev, &xb);
  wh_vk_buffer_free(dev, &yb);
  wh_vk_buffer_free(dev, &bb);
  wh_gguf_close(g);
  wh_vk_device_free(dev);
}

/* --- quantize_act ----------------------------------------------------------------------- */

typedef struct {
  wh_type act;
  wh_vk_pc_quantize_act pc;
  guint32 K, n;
} qa_rec;

static gboolean
rec_qa(wh_vk_device *dev, VkCommandBuffer cmd, gpointer data, GError **error)
{
  qa_rec *r = data;
  return wh_vk_op_quantize_act(dev, cmd, r->act, &r->pc, r->K, r->n, error);
}

/* The 16 rows of quant-reference.gguf's input rounded to Q8_0, Q8_1 and Q8_K blocks by the
 * GPU equal the CPU's blocks (wh_quant_quantize_activations, dequantized): every value, but
 * for the odd code one step away where x / d lands within float rounding of a half, and
 * scales a bit apart (the GPU's division need not be correctly rounded). */
static void
test_quantize_act(gconstpointer data)
{
  const wh_type act = (wh_type)GPOINTER_TO_INT(data);
  wh_vk_device *dev;
  wh_gguf *g;
  if (!open_both("reference/quant-reference.gguf", &dev, &g))
    return;
  const wh_gguf_tensor *in = wh_gguf_find_tensor(g, "input");
  const guint32 K = (guint32)in->ne[0], n = (guint32)in->ne[1];
  const float *x = (const float *)in->data;
  wh_vk_buffer xb, yb;
  host_buf(dev, 4ull * n * K, x, &xb);
  host_buf(dev, 4ull * n * K, NULL, &yb);
  qa_rec r = {act, {xb.addr, yb.addr, K, K}, K, n};
  run(dev, rec_qa, &r);
  const gsize qrow = wh_quant_row_bytes(act, K);
  g_autofree guint8 *q = g_malloc(qrow);
  g_autofree float *want = g_new(float, K);
  guint off_by_one = 0;
  for (guint32 t = 0; t < n; t++) {
    wh_quant_quantize_activations(act, x + (gsize)t * K, q, K);
    wh_quant_dequantize_row(act, q, want, K);
    for (guint32 k = 0; k < K; k++) {
      const float got = ((const float *)yb.map)[t * K + k];
      if (fabsf(got - want[k]) <= 1e-6f * fabsf(want[k])) /* the same code; the scale may */
        continue;                                         /* differ in the last bit */
      const guint32 qb = act == WH_TYPE_Q8_K ? 256 : 32;
      float amax = 0;
      for (guint32 j = k / qb * qb; j < k / qb * qb + qb; j++)
        amax = MAX(amax, fabsf(x[(gsize)t * K + j]));
      g_assert_cmpfloat(fabs(got - want[k]), <=, amax / 127 * 1.01);
      off_by_one++;
    }
  }
  g_test_message("%s: %u of %u values one step away from the CPU's", wh_type_name(act), off_by_one,
                 n * K);
  g_assert_cmpuint(off_by_one, <=, n * K / 1000);
  wh_vk_buffer_free(dev, &xb);
  wh_vk_buffer_free(dev, &yb);
  wh_gguf_close(g);
  wh_vk_device_free(dev);
}

/* --- per-token kernels on a model's real tensors --------------------------------------- */

typedef struct {
  int kind;
  wh_vk_pc_rms_norm norm;
  guint32 n_heads, n_tokens;
  wh_vk_pc_rope rope;
  wh_vk_pc_glu glu;
  wh_vk_pc_add add;
  wh_vk_pc_scale scale;
  wh_vk_pc_kv_store kv;
} small_rec;

enum { K_NORM, K_ROPE, K_GLU, K_ADD, K_SCALE, K_KV };

static gboolean
rec_small(wh_vk_device *dev, VkCommandBuffer cmd, gpointer data, GError **error)
{
  small_rec *r = data;
  switch (r->kind) {
  case K_NORM:
    return wh_vk_op_rms_norm(dev, cmd, &r->norm, r->n_heads, r->n_tokens, error);
  case K_ROPE:
    return wh_vk_op_rope(dev, cmd, &r->rope, r->n_heads, r->n_tokens, error);
  case K_GLU:
    return wh_vk_op_glu(dev, cmd, &r->glu, r->n_tokens, error);
  case K_ADD:
    return wh_vk_op_add(dev, cmd, &r->add, error);
  case K_SCALE:
    return wh_vk_op_scale(dev, cmd, &r->scale, error);
  default:
    return wh_vk_op_kv_store(dev, cmd, FALSE, &r->kv, r->n_tokens, error);
  }
}

/* Activations: the token embedding rows of synth-qwen3-F16 (d = 256) for 7 tokens, the
 * norm weights of its layer 0 (attn_norm, and q_norm for per-head rows of 64). */
static void
test_small_kernels(void)
{
  wh_vk_device *dev;
  wh_gguf *g;
  if (!open_both("reference/models/synth-qwen3-F16.gguf", &dev, &g))
    return;
  const wh_gguf_tensor *emb = wh_gguf_find_tensor(g, "token_embd.weight");
  const wh_gguf_tensor *nw = wh_gguf_find_tensor(g, "blk.0.attn_norm.weight");
  const wh_gguf_tensor *qn = wh_gguf_find_tensor(g, "blk.0.attn_q_norm.weight");
  g_assert_nonnull(emb);
  g_assert_nonnull(nw);
  g_assert_nonnull(qn);
  const guint32 d = (guint32)emb->ne[0], n = 7, hd = (guint32)qn->ne[0], nh = d / hd;
  g_autofree float *x = g_new(float, (gsize)n *d);
  for (guint32 t = 0; t < n; t++) /* tokens 3, 10, 17, ... */
    wh_quant_dequantize_row(emb->type, emb->data + (gsize)(3 + 7 * t) * d * 2, x + (gsize)t * d, d);
  const float *w = (const float *)nw->data, *wq = (const float *)qn->data;
  const float eps = 1e-6f;
  wh_vk_buffer xb, yb, wb, qb, tb;
  host_buf(dev, 4ull * n * d, x, &xb);
  host_buf(dev, 8ull * n * d, NULL, &yb);
  host_buf(dev, 4ull * d, w, &wb);
  host_buf(dev, 4ull * hd, wq, &qb);

  /* rms_norm: whole rows into y, then per-head rows in place */
  small_rec r = {.kind = K_NORM, .n_heads = 1, .n_tokens = n};
  r.norm = (wh_vk_pc_rms_norm){xb.addr, yb.addr, wb.addr, d, d, d, d, d, eps};
  run(dev, rec_small, &r);
  for (guint32 t = 0; t < n; t++) {
    double ss = 0;
    for (guint32 i = 0; i < d; i++)
      ss += (double)x[t * d + i] * x[t * d + i];
    const double sc = 1.0 / sqrt(ss / d + eps);
    for (guint32 i = 0; i < d; i++)
      assert_close(((float *)yb.map)[t * d + i], x[t * d + i] * sc * w[i],
                   fabs(x[t * d + i] * sc * w[i]) * 4, "rms_norm", t * d + i);
  }
  r.norm = (wh_vk_pc_rms_norm){xb.addr, xb.addr, qb.addr, hd, d, hd, d, hd, eps};
  r.n_heads = nh;
  run(dev, rec_small, &r);
  for (guint32 t = 0; t < n; t++)
    for (guint32 h = 0; h < nh; h++) {
      const float *v = x + t * d + h * hd;
      double ss = 0;
      for (guint32 i = 0; i < hd; i++)
        ss += (double)v[i] * v[i];
      const double sc = 1.0 / sqrt(ss / hd + eps);
      for (guint32 i = 0; i < hd; i++)
        assert_close(((float *)xb.map)[t * d + h * hd + i], v[i] * sc * wq[i],
                     fabs(v[i] * sc * wq[i]) * 4, "rms_norm/heads", t * d + h * hd + i);
    }

  /* rope, normal and neox, on the original rows: cos/sin of pos * base^(-2i/n_rot) */
  const guint32 n_rot = hd, np = n_rot / 2, nb = 8;
  g_autofree float *tab = g_new0(float, 2 * nb * np);
  for (guint32 t = 0; t < n; t++)
    for (guint32 i = 0; i < np; i++) {
      const double th = (5.0 + t) * pow(10000.0, -2.0 * i / n_rot);
      tab[t * np + i] = (float)cos(th);
      tab[(nb + t) * np + i] = (float)sin(th);
    }
  host_buf(dev, 4ull * 2 * nb * np, tab, &tb);
  for (int neox = 0; neox < 2; neox++) {
    memcpy(xb.map, x, 4ull * n * d);
    r = (small_rec){.kind = K_ROPE, .n_heads = nh, .n_tokens = n};
    r.rope = (wh_vk_pc_rope){xb.addr, tb.addr, d, hd, np, nb, (guint32)neox};
    run(dev, rec_small, &r);
    for (guint32 t = 0; t < n; t++)
      for (guint32 h = 0; h < nh; h++)
        for (guint32 i = 0; i < np; i++) {
          const guint32 i0 = t * d + h * hd + (neox ? i : 2 * i);
          const guint32 i1 = t * d + h * hd + (neox ? i + np : 2 * i + 1);
          const float c = tab[t * np + i], s = tab[(nb + t) * np + i];
          const float a = x[i0], b = x[i1];
          assert_close(((float *)xb.map)[i0], a * c - b * s, fabs(a) + fabs(b), "rope", i0);
          assert_close(((float *)xb.map)[i1], a * s + b * c, fabs(a) + fabs(b), "rope", i1);
        }
  }

  /* glu: rows of 2F = d (gate | up), SiLU then the tanh GELU */
  const guint32 F = d / 2;
  for (int gelu = 0; gelu < 2; gelu++) {
    memcpy(xb.map, x, 4ull * n * d);
    r = (small_rec){.kind = K_GLU, .n_tokens = n};
    r.glu = (wh_vk_pc_glu){xb.addr, F, (guint32)gelu};
    run(dev, rec_small, &r);
    for (guint32 t = 0; t < n; t++)
      for (guint32 i = 0; i < F; i++) {
        const double u = x[t * d + i], up = x[t * d + F + i];
        const double a = gelu
                             ? 0.5 * u * (1 + tanh(0.7978845608028654 * (u + 0.044715 * u * u * u)))
                             : u / (1 + exp(-u));
        assert_close(((float *)xb.map)[t * d + i], a * up, fabs(a * up) * 8, "glu", t * d + i);
      }
  }

  /* add, scale (soft-cap) */
  memcpy(xb.map, x, 4ull * n * d);
  memcpy(yb.map, x + d, 4ull * (n - 1) * d);
  r = (small_rec){.kind = K_ADD, .add = {xb.addr, yb.addr, (n - 1) * d}};
  run(dev, rec_small, &r);
  for (guint32 i = 0; i < (n - 1) * d; i++)
    g_assert_cmpfloat(((float *)xb.map)[i], ==, x[i] + x[d + i]);
  memcpy(xb.map, x, 4ull * n * d);
  r = (small_rec){.kind = K_SCALE, .scale = {xb.addr, n * d, 1.0f, 0.05f}};
  run(dev, rec_small, &r);
  for (guint32 i = 0; i < n * d; i++)
    assert_close(((float *)xb.map)[i], 0.05 * tanh(x[i] / 0.05), 0.05, "softcap", i);

  /* kv_store: rows to F16 cache cells pos0 .. pos0 + n - 1 (pos0 from the step block) */
  wh_vk_buffer cb, sb;
  const guint32 pos0 = 5, step[4] = {pos0, n, 0, 0};
  host_buf(dev, 2ull * (pos0 + n) * d, NULL, &cb);
  host_buf(dev, sizeof(step), step, &sb);
  memcpy(xb.map, x, 4ull * n * d);
  r = (small_rec){.kind = K_KV, .n_tokens = n, .kv = {xb.addr, cb.addr, sb.addr, d, d, 2 * d}};
  run(dev, rec_small, &r);
  const guint16 *cache = (const guint16 *)cb.map;
  for (guint32 i = 0; i < pos0 * d; i++)
    g_assert_cmpuint(cache[i], ==, 0);
  for (guint32 i = 0; i < n * d; i++)
    g_assert_cmpuint(cache[pos0 * d + i], ==, wh_fp32_to_fp16(x[i]));

  wh_vk_buffer_free(dev, &cb);
  wh_vk_buffer_free(dev, &sb);
  wh_vk_buffer_free(dev, &xb);
  wh_vk_buffer_free(dev, &yb);
  wh_vk_buffer_free(dev, &wb);
  wh_vk_buffer_free(dev, &qb);
  wh_vk_buffer_free(dev, &tb);
  wh_gguf_close(g);
  wh_vk_device_free(dev);
}

/* --- attention ----------------------------------------------------------------------------- */

typedef struct {
  wh_vk_pc_attn pc;
  guint32 n;
} attn_rec;

static gboolean
rec_attn(wh_vk_device *dev, VkCommandBuffer cmd, gpointer data, GError **error)
{
  attn_rec *r = data;
  return wh_vk_op_attn(dev, cmd, FALSE, &r->pc, r->n, error);
}

/* q, K, V from the token embedding of synth-gemma2-F16 (real values, d = 256): H = 4 query
 * heads over Hkv = 2 KV heads of 64, a cache of 150 cells (more than one 64-key chunk),
 * 3 tokens at positions 147..149; plain causal, sliding window 40, and soft-capping 0.5. */
static void
test_attn(void)
{
  wh_vk_device *dev;
  wh_gguf *g;
  if (!open_both("reference/models/synth-gemma2-F16.gguf", &dev, &g))
    return;
  const wh_gguf_tensor *emb = wh_gguf_find_tensor(g, "token_embd.weight");
  const guint32 d = (guint32)emb->ne[0], H = 4, Hkv = 2, dk = 64, n_cells = 150, n = 3;
  const guint32 pos0 = n_cells - n, W = H * dk + 2 * Hkv * dk;
  g_assert_cmpuint(d, ==, 256);
  /* the cache: row j = embedding row j (first 128 values K, next 128 V), F16 */
  g_autofree guint16 *kc = g_new(guint16, (gsize)n_cells * Hkv * dk);
  g_autofree guint16 *vc = g_new(guint16, (gsize)n_cells * Hkv * dk);
  g_autofree float *row = g_new(float, d);
  for (guint32 j = 0; j < n_cells; j++) {
    wh_quant_dequantize_row(emb->type, emb->data + (gsize)j * d * 2, row, d);
    for (guint32 i = 0; i < Hkv * dk; i++) {
      kc[j * Hkv * dk + i] = wh_fp32_to_fp16(row[i] * 4);
      vc[j * Hkv * dk + i] = wh_fp32_to_fp16(row[Hkv * dk + i]);
    }
  }
  g_autofree float *qkv = g_new0(float, (gsize)n *W);
  for (guint32 t = 0; t < n; t++) {
    wh_quant_dequantize_row(emb->type, emb->data + (gsize)(200 + t) * d * 2, row, d);
    for (guint32 i = 0; i < H * dk; i++)
      qkv[t * W + i] = row[i] * 4;
  }
  wh_vk_buffer qb, ob, kb, vb, sb;
  const guint32 step[4] = {pos0, n, 0, 0};
  host_buf(dev, 4ull * n * W, qkv, &qb);
  host_buf(dev, 4ull * n * H * dk, NULL, &ob);
  host_buf(dev, 2ull * n_cells * Hkv * dk, kc, &kb);
  host_buf(dev, 2ull * n_cells * Hkv * dk, vc, &vb);
  host_buf(dev, sizeof(step), step, &sb);

  const struct {
    guint32 n_swa;
    float softcap;
  } cases[] = {{0, 0.0f}, {40, 0.0f}, {0, 0.5f}};
  const float scale = 0.125f;
  for (gsize c = 0; c < G_N_ELEMENTS(cases); c++) {
    attn_rec r = {{.qkv = qb.addr,
                   .out = ob.addr,
                   .k = kb.addr,
                   .v = vb.addr,
                   .step = sb.addr,
                   .ldq = W,
                   .ldo = H * dk,
                   .H = H,
                   .Hkv = Hkv,
                   .dk = dk,
                   .dv = dk,
                   .row_k = Hkv * dk * 2,
                   .row_v = Hkv * dk * 2,
                   .n_swa = cases[c].n_swa,
                   .scale = scale,
                   .softcap = cases[c].softcap},
                  n};
    run(dev, rec_attn, &r);
    for (guint32 t = 0; t < n; t++)
      for (guint32 h = 0; h < H; h++) {
        const guint32 gkv = h / (H / Hkv), p = pos0 + t;
        const guint32 j0 = cases[c].n_swa && p + 1 > cases[c].n_swa ? p + 1 - cases[c].n_swa : 0;
        double z[150], mx = -INFINITY, sum = 0;
        for (guint32 j = j0; j <= p; j++) {
          double s = 0;
          for (guint32 i = 0; i < dk; i++)
            s += (double)qkv[t * W + h * dk + i] * wh_fp16_to_fp32(kc[j * Hkv * dk + gkv * dk + i]);
          s *= scale;
          if (cases[c].softcap > 0)
            s = cases[c].softcap * tanh(s / cases[c].softcap);
          z[j] = s;
          mx = MAX(mx, s);
        }
        for (guint32 j = j0; j <= p; j++)
          sum += exp(z[j] - mx);
        for (guint32 i = 0; i < dk; i++) {
          double o = 0, mag = 0;
          for (guint32 j = j0; j <= p; j++) {
            const double a =
                exp(z[j] - mx) / sum * wh_fp16_to_fp32(vc[j * Hkv * dk + gkv * dk + i]);
            o += a;
            mag += fabs(a);
          }
          assert_close(((float *)ob.map)[t * H * dk + h * dk + i], o, mag * 10, "attn",
                       (guint32)c * 10000 + t * H * dk + h * dk + i);
        }
      }
  }
  wh_vk_buffer_free(dev, &qb);
  wh_vk_buffer_free(dev, &ob);
  wh_vk_buffer_free(dev, &kb);
  wh_vk_buffer_free(dev, &vb);
  wh_vk_buffer_free(dev, &sb);
  wh_gguf_close(g);
  wh_vk_device_free(dev);
}

#endif /* WH_HAVE_VULKAN */

/* --- whole models ---------------------------------------------------------------------- */

typedef struct {
  double max_rel; /* vs the reference: max over positions of max|diff| / (1 + max|ref|) */
  guint n_pos, argmax_same, argmax_bad;
  double kld_sum;
  double max_rel_cpu; /* vs our CPU path */
} agreement;

static double
log_sum_exp(const float *v, guint32 n)
{
  double mx = v[0], s = 0;
  for (guint32 i = 1; i < n; i++)
    mx = MAX(mx, v[i]);
  for (guint32 i = 0; i < n; i++)
    s += exp(v[i] - mx);
  return mx + log(s);
}

static void
compare_row(agreement *ag, const float *ref, const float *mine, const float *cpu, guint32 V)
{
  double maxdiff = 0, maxabs = 0, cpudiff = 0;
  for (guint32 j = 0; j < V; j++) {
    maxdiff = MAX(maxdiff, fabs((double)mine[j] - ref[j]));
    cpudiff = MAX(cpudiff, fabs((double)mine[j] - cpu[j]));
    maxabs = MAX(maxabs, fabs((double)ref[j]));
  }
  ag->max_rel = MAX(ag->max_rel, maxdiff / (1.0 + maxabs));
  ag->max_rel_cpu = MAX(ag->max_rel_cpu, cpudiff / (1.0 + maxabs));
  const int ra = wh_sample_argmax(ref, (int)V), ma = wh_sample_argmax(mine, (int)V);
  ag->n_pos++;
  if (ra == ma) {
    ag->argmax_same++;
  } else {
    float second = -INFINITY;
    for (guint32 j = 0; j < V; j++)
      if ((int)j != ra)
        second = MAX(second, ref[j]);
    if (ref[ra] - second >= 2e-3 * (1.0 + maxabs))
      ag->argmax_bad++;
  }
  const double lr = log_sum_exp(ref, V), lm = log_sum_exp(mine, V);
  double kl = 0;
  for (guint32 j = 0; j < V; j++) {
    const double lp = ref[j] - lr, lq = mine[j] - lm;
    kl += exp(lp) * (lp - lq);
  }
  ag->kld_sum += kl;
}

static const char *model_names[] = {
    "synth-llama-F16",
    "synth-qwen2-F16",
    "synth-qwen3-F16",
    "synth-phi3-F16",
    "synth-gemma2-F16",
    "synth-gemma3-F16",
    "stories260K",
    "synth-llama-Q8_0",
    "synth-llama-Q4_0",
    "synth-llama-Q4_1",
    "synth-llama-Q5_0",
    "synth-llama-Q5_1",
    "synth-llama-Q2_K",
    "synth-llama-Q3_K_M",
    "synth-llama-Q4_K_S",
    "synth-llama-Q4_K_M",
    "synth-llama-Q5_K_M",
    "synth-llama-Q6_K",
    "synth-llama-IQ4_NL",
    "synth-llama-IQ4_XS",
    "synth-llama-Q2_K_S-imat",
    "synth-llama-Q4_K_M-imat",
    "synth-llama-IQ1_S-imat",
    "synth-llama-IQ1_M-imat",
    "synth-llama-IQ2_XXS-imat",
    "synth-llama-IQ2_XS-imat",
    "synth-llama-IQ2_S-imat",
    "synth-llama-IQ3_XXS-imat",
    "synth-llama-IQ3_S-imat",
};

#ifdef WH_BACKEND_SWEEP
static const gboolean sweep = TRUE;
#else
static const gboolean sweep = FALSE;
#endif

/* Logits of all positions of @n tokens with @ngl layers on the GPU (a fresh context). */
static float *
model_logits(wh_model *model, guint32 ngl, const gint32 *tokens, guint32 n, guint32 *ngl_used,
             char **note)
{
  GError *error = NULL;
  wh_context_params cp = wh_context_default_params();
  cp.n_ctx = 256;
  cp.n_batch = 256;
  cp.n_gpu_layers = ngl;
  wh_context *ctx = wh_context_new(model, &cp, &error);
  g_assert_no_error(error);
  *ngl_used = wh_context_get_params(ctx)->n_gpu_layers;
  if (note)
    *note = g_strdup(wh_context_get_gpu_note(ctx));
  if (ngl > 0 && *ngl_used == 0) { /* all on the CPU: the caller has those logits */
    wh_context_free(ctx);
    return NULL;
  }
  if (ngl > 0 && *ngl_used > 0) {
    /* planned == measured on the GPU, per component (within 1%) */
    wh_memory_plan_devices planned, measured;
    wh_context_get_device_memory(ctx, &planned, &measured);
    const guint64 *p = &planned.dev[WH_PLAN_GPU].weights, *m = &measured.dev[WH_PLAN_GPU].weights;
    for (int i = 0; i < 6; i++)
      g_assert_cmpfloat(fabs((double)m[i] - (double)p[i]), <=, 0.01 * (double)p[i]);
    g_assert_cmpuint(planned.dev[WH_PLAN_GPU].total, >, 0);
  }
  const float *out = wh_context_decode(ctx, tokens, n, TRUE, &error);
  g_assert_no_error(error);
  float *copy = g_memdup2(out, (gsize)n * wh_model_n_vocab(model) * 4);
  wh_context_free(ctx);
  return copy;
}

static void
test_model(gconstpointer data)
{
  const char *name = data;
  GError *error = NULL;
  wh_vk_device *dev = device_or_skip();
  if (!dev)
    return;
  wh_vk_device_free(dev);
  g_autofree char *mrel = g_str_equal(name, "stories260K")
                              ? g_strdup("models/stories260K.gguf")
                              : g_strdup_printf("reference/models/%s.gguf", name);
  g_autofree char *lrel = g_strdup_printf("reference/logits/%s.logits.gguf", name);
  g_autofree char *mpath = wh_test_shared_file_or_skip(mrel);
  g_autofree char *lpath = mpath ? wh_test_shared_file_or_skip(lrel) : NULL;
  if (!lpath)
    return;
  wh_model_params mp = wh_model_default_params();
  mp.n_threads = 2;
  wh_model *model = wh_model_load(mpath, &mp, &error);
  g_assert_no_error(error);
  wh_gguf *ref = wh_gguf_open(lpath, &error);
  g_assert_no_error(error);
  const guint32 V = wh_model_n_vocab(model), L = wh_model_get_hparams(model)->n_layer;
  const gboolean quantized = strstr(name, "F16") == NULL && !g_str_equal(name, "stories260K");
  const guint32 ngls[] = {0, L / 2, L + 1};

  agreement ags[G_N_ELEMENTS(ngls)] = {{0}};
  guint32 used[G_N_ELEMENTS(ngls)] = {0};
  char *notes[G_N_ELEMENTS(ngls)] = {NULL};
  /* the F16 files: the first prompt (all four with -m slow); the quantized ones: all four
   * prompts (206 positions), since their tolerance is a rate over positions */
  const int n_prompts = sweep || quantized ? 4 : 1;
  for (int i = 0; i < n_prompts; i++) {
    char key[64];
    g_snprintf(key, sizeof(key), "reference.prompt.%d.tokens", i);
    wh_gguf_array a;
    g_assert_true(wh_gguf_get_array(ref, key, &a));
    g_autofree gint32 *tokens = g_new(gint32, a.n);
    for (guint64 j = 0; j < a.n; j++)
      tokens[j] = (gint32)wh_gguf_array_get_int(&a, j);
    g_snprintf(key, sizeof(key), "logits.%d", i);
    const wh_gguf_tensor *t = wh_gguf_find_tensor(ref, key);
    g_assert_nonnull(t);
    const float *reflog = (const float *)t->data;
    g_autofree float *cpu = model_logits(model, 0, tokens, (guint32)a.n, &used[0], NULL);
    for (gsize k = 0; k < G_N_ELEMENTS(ngls); k++) {
      g_autofree float *gpu = ngls[k] == 0 ? NULL /* NULL: all layers ran on the CPU */
                                           : model_logits(model, ngls[k], tokens, (guint32)a.n,
                                                          &used[k], notes[k] ? NULL : &notes[k]);
      for (guint32 p = 0; p < a.n; p++)
        compare_row(&ags[k], reflog + (gsize)p * V, (gpu ? gpu : cpu) + (gsize)p * V,
                    cpu + (gsize)p * V, V);
    }
  }
  for (gsize k = 0; k < G_N_ELEMENTS(ngls); k++) {
    const agreement ag = ags[k];
    const char *note = notes[k];
    const double kld = ag.kld_sum / ag.n_pos, agree = (double)ag.argmax_same / ag.n_pos;
    g_test_message("%s ngl %u (%u on the GPU): max rel diff %.3g (vs CPU %.3g), argmax %.2f%% "
                   "(bad %u), mean KLD %.3g%s%s",
                   name, ngls[k], used[k], ag.max_rel, ag.max_rel_cpu, 100 * agree, ag.argmax_bad,
                   kld, note ? "; " : "", note ? note : "");
    if (quantized) {
      g_assert_cmpfloat(agree, >=, 0.94);
      g_assert_cmpfloat(kld, <=, 3e-3);
    } else {
      g_assert_cmpfloat(ag.max_rel, <=, 2e-3);
      g_assert_cmpuint(ag.argmax_bad, ==, 0);
    }
    /* every layer asked for ran on the GPU, except in the grid i-quant files (no kernels
     * for IQ1/IQ2/IQ3: those layers stay on the CPU, and the note says so) */
    const gboolean grid_iquant =
        strstr(name, "-IQ1") || strstr(name, "-IQ2") || strstr(name, "-IQ3");
    if (grid_iquant && ngls[k] > 0)
      g_assert_nonnull(note);
    else
      g_assert_cmpuint(used[k], ==, MIN(ngls[k], L + 1));
    g_free(notes[k]);
  }
  wh_gguf_close(ref);
  wh_model_free(model);
}

#ifndef WH_BACKEND_SWEEP

static wh_model *
load_or_skip(const char *rel)
{
  g_autofree char *path = wh_test_shared_file_or_skip(rel);
  if (!path)
    return NULL;
  GError *error = NULL;
  wh_model_params mp = wh_model_default_params();
  mp.n_threads = 2;
  wh_model *model = wh_model_load(path, &mp, &error);
  g_assert_no_error(error);
  return model;
}

static wh_context *
small_ctx(wh_model *model, guint32 ngl, wh_kv_type kv, const char *device, GError **error)
{
  wh_context_params cp = wh_context_default_params();
  cp.n_ctx = 32;
  cp.n_batch = 8;
  cp.kv_type = kv;
  cp.n_gpu_layers = ngl;
  g_strlcpy(cp.device, device, sizeof(cp.device));
  return wh_context_new(model, &cp, error);
}

/* Decoding in chunks and then token by token past the end of a 32-token cache (so the
 * context shifts, moving and re-rotating the GPU layers' cached keys) gives the CPU's
 * logits at every step, with half and with all layers on the GPU; for a normal-RoPE model
 * and a NEOX one with sliding-window layers. */
static void
test_incremental_shift(gconstpointer data)
{
  const char *rel = data;
  wh_vk_device *dev = device_or_skip();
  if (!dev)
    return;
  wh_vk_device_free(dev);
  wh_model *model = load_or_skip(rel);
  if (!model)
    return;
  GError *error = NULL;
  const guint32 L = wh_model_get_hparams(model)->n_layer, V = wh_model_n_vocab(model);
  const guint32 ngls[] = {L / 2, L + 1};
  for (gsize k = 0; k < G_N_ELEMENTS(ngls); k++) {
    wh_context *cpu = small_ctx(model, 0, WH_KV_F16, "", &error);
    wh_context *gpu = small_ctx(model, ngls[k], WH_KV_F16, "", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(wh_context_get_params(gpu)->n_gpu_layers, ==, ngls[k]);
    gint32 next = 0;
    double worst = 0;
    guint shifts = 0;
    for (guint step = 0; step < 45; step++) {
      const gint32 prompt[11] = {1, 400, 35, 80, 12, 300, 7, 99, 150, 42, 260};
      const gint32 *tok = step == 0 ? prompt : &next;
      const guint32 n = step == 0 ? 11 : 1, past = wh_context_n_past(gpu);
      const float *a = wh_context_decode(cpu, tok, n, FALSE, &error);
      g_assert_no_error(error);
      const float *b = wh_context_decode(gpu, tok, n, FALSE, &error);
      g_assert_no_error(error);
      shifts += wh_context_n_past(gpu) < past + n;
      double maxdiff = 0, maxabs = 0;
      for (guint32 j = 0; j < V; j++) {
        maxdiff = MAX(maxdiff, fabs((double)a[j] - b[j]));
        maxabs = MAX(maxabs, fabs((double)a[j]));
      }
      worst = MAX(worst, maxdiff / (1 + maxabs));
      next = wh_sample_argmax(a, (int)V);
      g_assert_cmpuint(wh_context_n_past(gpu), ==, wh_context_n_past(cpu));
    }
    g_test_message("%s ngl %u: %u context shifts, max rel diff to the CPU %.3g", rel, ngls[k],
                   shifts, worst);
    g_assert_cmpuint(shifts, >=, 1);
    g_assert_cmpfloat(worst, <=, 2e-3);
    wh_context_free(cpu);
    wh_context_free(gpu);
  }
  wh_model_free(model);
}

/* Plain failures: a device name that matches nothing fails context creation with the list
 * of devices; a q8_0 KV cache keeps every layer on the CPU and says why. */
static void
test_errors(void)
{
  wh_vk_device *dev = device_or_skip();
  if (!dev)
    return;
  g_autofree char *name = g_strdup(wh_vk_device_name(dev));
  wh_vk_device_free(dev);
  wh_model *model = load_or_skip("models/stories260K.gguf");
  if (!model)
    return;
  GError *error = NULL;
  g_assert_null(small_ctx(model, 2, WH_KV_F16, "no-such-gpu", &error));
  g_assert_error(error, WH_VK_ERROR, WH_VK_ERROR_NO_DEVICE);
  g_assert_nonnull(strstr(error->message, "no-such-gpu"));
  g_assert_nonnull(strstr(error->message, name));
  g_clear_error(&error);

  wh_context *ctx = small_ctx(model, 2, WH_KV_Q8_0, "", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(wh_context_get_params(ctx)->n_gpu_layers, ==, 0);
  g_assert_nonnull(strstr(wh_context_get_gpu_note(ctx), "q8_0"));
  g_assert_cmpstr(wh_context_get_gpu_device(ctx), ==, "");
  wh_context_free(ctx);

  ctx = small_ctx(model, 3, WH_KV_F16, name, &error); /* by its full name */
  g_assert_no_error(error);
  g_assert_cmpuint(wh_context_get_params(ctx)->n_gpu_layers, ==, 3);
  g_assert_null(wh_context_get_gpu_note(ctx));
  g_assert_cmpstr(wh_context_get_gpu_device(ctx), ==, name);
  wh_context_free(ctx);
  wh_model_free(model);
}

#endif /* !WH_BACKEND_SWEEP */

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#if defined(WH_HAVE_VULKAN) && !defined(WH_BACKEND_SWEEP)
  static const wh_type types[] = {WH_TYPE_F32,    WH_TYPE_F16,   WH_TYPE_Q4_0, WH_TYPE_Q4_1,
                                  WH_TYPE_Q5_0,   WH_TYPE_Q5_1,  WH_TYPE_Q8_0, WH_TYPE_Q2_K,
                                  WH_TYPE_Q3_K,   WH_TYPE_Q4_K,  WH_TYPE_Q5_K, WH_TYPE_Q6_K,
                                  WH_TYPE_IQ4_NL, WH_TYPE_IQ4_XS};
  for (gsize i = 0; i < G_N_ELEMENTS(types); i++) {
    g_autofree char *p = g_strdup_printf("/backend/vulkan/mul_mat/%s", wh_type_name(types[i]));
    g_test_add_data_func(p, GINT_TO_POINTER(types[i]), test_mul_mat);
  }
  static const wh_type acts[] = {WH_TYPE_Q8_0, WH_TYPE_Q8_1, WH_TYPE_Q8_K};
  for (gsize i = 0; i < G_N_ELEMENTS(acts); i++) {
    g_autofree char *p = g_strdup_printf("/backend/vulkan/quantize_act/%s", wh_type_name(acts[i]));
    g_test_add_data_func(p, GINT_TO_POINTER(acts[i]), test_quantize_act);
  }
  g_test_add_func("/backend/vulkan/small-kernels", test_small_kernels);
  g_test_add_func("/backend/vulkan/attn", test_attn);
#endif
#ifndef WH_BACKEND_SWEEP
  g_test_add_data_func("/backend/vulkan/incremental-shift/llama",
                       "reference/models/synth-llama-F16.gguf", test_incremental_shift);
  g_test_add_data_func("/backend/vulkan/incremental-shift/gemma2",
                       "reference/models/synth-gemma2-F16.gguf", test_incremental_shift);
  g_test_add_func("/backend/vulkan/errors", test_errors);
#endif
  /* the normal suite: the six F16 architectures and stories260K (first prompt), a k-quant
   * mix and a grid i-quant file (its layers stay on the CPU, with a note); the sweep binary
   * (test-backend-models.c, engine-slow suite) runs every model on all four prompts */
  for (gsize i = 0; i < G_N_ELEMENTS(model_names); i++) {
    if (!sweep && i > 6 && !g_str_equal(model_names[i], "synth-llama-Q4_K_M") &&
        !g_str_equal(model_names[i], "synth-llama-IQ2_XXS-imat"))
      continue;
    g_autofree char *p = g_strdup_printf("/backend/vulkan/model/%s", model_names[i]);
    g_test_add_data_func(p, model_names[i], test_model);
  }
  return g_test_run();
}
