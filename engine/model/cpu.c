/* cpu.c — the CPU backend: the forward pass of spec/architectures.md in F32.
 *
 * Layout of one step (n = tokens in the batch, all buffers in the context's
 * compute block, row-major, one row per token):
 *   x    [n, d]        residual stream
 *   h    [n, d]        normed input of the next matmul
 *   qkv  [n, W]        W = H*Dk | Hkv*Dk | Hkv*Dv (q, k, v side by side)
 *   attn [n, H*Dv]     attention output (heads concatenated)
 *   tmp  [n, d]        output of attn_output / ffn_down
 *   ff   [n, 2F]       gate | up, then act(gate)*up in the first half
 * Every stage is one run of the thread pool; a run is a barrier, so stages
 * never overlap. Matmuls hand out chunks of ~256 KiB of weight rows from an
 * atomic counter and attention hands out (token, KV head) pairs the same way,
 * both in dynamic pool runs (a preempted worker is skipped, not waited for);
 * per-token stages split tokens, and run inline when there is one token.
 * Decoding one token, work that would leave the other threads waiting on
 * thread 0 is spread instead: each attention item does its own KV head's
 * norms, RoPE and cache stores (qk_heads()), and the FFN activation is split
 * by 256-value blocks that each thread also quantizes for ffn_down.
 * Every output element is computed whole by one thread, in the same order
 * whatever the thread count, so results are bit-identical across thread
 * counts. Single-token decoding streams every weight once: its speed is
 * bounded by memory bandwidth, or on 2 cores with a fast memory bus by the
 * Q4_K/Q6_K kernels (whittle-cli bench and bench kernels print how close).
 */
#include "config.h"

#include "model/cpu-attn.h"
#include "model/model-private.h"
#include "quant/quant.h"

#include <math.h>
#include <string.h>

/* --- small helpers ------------------------------------------------------------------- */

static float *
cbuf(wh_context *ctx, guint64 off)
{
  return (float *)(ctx->compute + off);
}

static guint8 *
thread_scratch(wh_context *ctx, int ith)
{
  return ctx->compute + ctx->lay.off_thread + (guint64)ith * ctx->lay.thread_stride;
}

/* y[i] = w[i] * x[i] / sqrt(mean(x^2) + eps), n values. y may alias x. */
static void
rms_norm(float *y, const float *x, const float *w, gsize n, float eps)
{
  double ss = 0.0;
  for (gsize i = 0; i < n; i++)
    ss += (double)x[i] * x[i];
  float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
  for (gsize i = 0; i < n; i++)
    y[i] = x[i] * scale * w[i];
}

static const float *
fdata(const wh_gguf_tensor *t)
{
  return t ? (const float *)t->data : NULL;
}

/* --- matmul -------------------------------------------------------------------------- */

/* y[t][r] = W[r] . x[t] (+ bias[r]) for t < n_tokens, r < W->ne[1].
 * Weights of a quantized type multiply activations quantized to their
 * vec-dot type (Q8_0 / Q8_1 / Q8_K), like the reference; F32/F16/BF16
 * weights are converted to F32 and multiply F32 activations. */
typedef struct {
  const wh_gguf_tensor *w;
  const float *x;
  guint64 ldx; /* floats between token rows of x */
  float *y;
  guint64 ldy;
  const float *bias;
  wh_type act_type; /* wh_quant_vec_dot_type(w->type) */
} mm_op;

typedef struct {
  wh_context *ctx;
  guint32 n_tokens;
  int n_ops;
  mm_op ops[3];
  /* the ops of one run: all share x and act_type */
  int first, last;
  /* work stealing within a run: the rows of ops [first, last) are cut into work items of
   * chunk_rows rows that threads take in order (next_chunk, atomic), so a thread that the OS
   * preempts delays the run by at most one item; a row is always computed whole by one
   * thread, so results do not depend on the thread count. */
  guint64 total_rows, chunk_rows;
  gint next_chunk;
  gboolean act_ready; /* the next mm_run()'s first group finds its input quantized in qact */
} mm_job;

/* Quantizes x (token rows) to the run's activation type, into qact. */
static void
mm_quant_worker(int ith, int nth, void *data)
{
  mm_job *job = data;
  const mm_op *op = &job->ops[job->first];
  const guint64 K = op->w->ne[0];
  const gsize qrow = wh_quant_row_bytes(op->act_type, (gint64)K);
  guint8 *qact = job->ctx->compute + job->ctx->lay.off_qact;
  gsize b, e;
  wh_threadpool_split(job->n_tokens, ith, nth, &b, &e);
  for (gsize t = b; t < e; t++)
    wh_quant_quantize_activations(op->act_type, op->x + t * op->ldx, qact + t * qrow, (gint64)K);
}

/* Rows [begin, end) of the concatenated ops [first, last) of @job, on thread @ith. */
static void
mm_rows(mm_job *job, int ith, guint64 begin, guint64 end)
{
  float *rowbuf = (float *)(thread_scratch(job->ctx, ith) + job->ctx->lay.th_row);
  const guint8 *qact = job->ctx->compute + job->ctx->lay.off_qact;

  guint64 base = 0;
  for (int o = job->first; o < job->last && base < end; o++) {
    const mm_op *op = &job->ops[o];
    const guint64 rows = op->w->ne[1], K = op->w->ne[0];
    const guint64 r0 = MAX(begin, base), r1 = MIN(end, base + rows);
    const gsize row_bytes = wh_quant_row_bytes(op->w->type, (gint64)K);
    const gsize qrow = wh_quant_row_bytes(op->act_type, (gint64)K);
    const wh_quant_vec_dot_fn dot = wh_quant_vec_dot_resolve(op->w->type);
    const wh_quant_vec_dot_rows_fn dot_rows =
        op->act_type != WH_TYPE_F32 ? wh_quant_vec_dot_rows_resolve(op->w->type) : NULL;
    if (dot_rows && job->n_tokens > 1) {
      /* batches with a multi-row kernel: blocks of 32 rows (~36 KiB of Q4_K at 2048, from L2),
       * the multi-row kernel over the block for each token in turn (each output the per-row
       * kernel's, bit for bit, so a batch gives what token-by-token decoding gives) */
      const wh_quant_vec_dot_rows_tokens_fn dot_rt =
          wh_quant_vec_dot_rows_tokens_resolve(op->w->type);
      for (guint64 g0 = r0; g0 < r1; g0 += 32) {
        const guint64 n = MIN((guint64)32, r1 - g0);
        const guint8 *src = op->w->data + (g0 - base) * row_bytes;
        if (dot_rt) /* two tokens at a time share the weight unpacking */
          dot_rt(src, row_bytes, qact, qrow, (gint64)K, op->y + (g0 - base), op->ldy, (gint64)n,
                 job->n_tokens);
        for (guint32 t = 0; t < job->n_tokens; t++) {
          float *y = op->y + t * op->ldy + (g0 - base);
          if (!dot_rt)
            dot_rows(src, row_bytes, qact + t * qrow, (gint64)K, y, (gint64)n);
          if (op->bias)
            for (guint64 i = 0; i < n; i++)
              y[i] += op->bias[g0 - base + i];
        }
      }
      base += rows;
      continue;
    }
    if (op->act_type != WH_TYPE_F32 && job->n_tokens > 1) {
      /* batches (prompts): blocks of rows that fit L1 (~16 KiB), each token against the whole
       * block, so an activation row is read from L2 once per block instead of once per weight
       * row; every (row, token) dot is the same call as below */
      const guint64 blk = MAX((guint64)1, ((guint64)16 << 10) / row_bytes);
      for (guint64 g0 = r0; g0 < r1; g0 += blk) {
        const guint64 g1 = MIN(g0 + blk, r1);
        for (guint32 t = 0; t < job->n_tokens; t++) {
          const guint8 *a = qact + t * qrow;
          for (guint64 g = g0; g < g1; g++) {
            const guint64 r = g - base;
            const guint8 *src = op->w->data + r * row_bytes;
            op->y[t * op->ldy + r] =
                (dot ? dot(src, a, (gint64)K) : wh_quant_vec_dot(op->w->type, src, a, (gint64)K)) +
                (op->bias ? op->bias[r] : 0.0f);
          }
        }
      }
      base += rows;
      continue;
    }
    if (dot_rows) {
      /* decoding (one token): the multi-row kernel walks several rows in step over the one
       * activation row; each output equals the per-row kernel's bit for bit */
      float *y = op->y + (r0 - base);
      dot_rows(op->w->data + (r0 - base) * row_bytes, row_bytes, qact, (gint64)K, y,
               (gint64)(r1 - r0));
      if (op->bias)
        for (guint64 g = r0; g < r1; g++)
          op->y[g - base] += op->bias[g - base];
      base += rows;
      continue;
    }
    for (guint64 g = r0; g < r1; g++) {
      const guint64 r = g - base;
      const guint8 *src = op->w->data + r * row_bytes;
      const float b = op->bias ? op->bias[r] : 0.0f;
      if (op->act_type != WH_TYPE_F32) {
        for (guint32 t = 0; t < job->n_tokens; t++)
          op->y[t * op->ldy + r] =
              (dot ? dot(src, qact + t * qrow, (gint64)K)
                   : wh_quant_vec_dot(op->w->type, src, qact + t * qrow, (gint64)K)) +
              b;
        continue;
      }
      /* F16/BF16 rows are converted once and reused for every token of the batch */
      const float *wrow = (const float *)src;
      if (op->w->type != WH_TYPE_F32) {
        wh_quant_dequantize_row(op->w->type, src, rowbuf, (gint64)K);
        wrow = rowbuf;
      }
      for (guint32 t = 0; t < job->n_tokens; t++)
        op->y[t * op->ldy + r] = wh_cpu_dot_f32(wrow, op->x + t * op->ldx, K) + b;
    }
    base += rows;
  }
}

static void
mm_worker(int ith, int nth, void *data)
{
  mm_job *job = data;
  (void)nth;
  for (;;) {
    const guint64 begin = (guint64)g_atomic_int_add(&job->next_chunk, 1) * job->chunk_rows;
    if (begin >= job->total_rows)
      break;
    mm_rows(job, ith, begin, MIN(begin + job->chunk_rows, job->total_rows));
  }
}

/* Work items of ~256 KiB of weights times tokens (a few dozen per matmul of a 1B model, so the
 * atomic is cheap next to the work), and at least 4 per thread for balance. Decoding one token,
 * ~1 MiB and at least 2 per thread: every item starts with rows the kernel's prefetch has not
 * asked for yet, and on a 1B Q4_K_M model these larger items took ~5% less matmul time (odd
 * tokens against even ones in the same runs, 3 runs; 128 KiB items took 14% more). */
static void
mm_plan_chunks(mm_job *job)
{
  const int nth = wh_threadpool_size(job->ctx->pool);
  guint64 total = 0;
  for (int o = job->first; o < job->last; o++)
    total += job->ops[o].w->ne[1];
  const mm_op *op = &job->ops[job->first];
  const guint64 work_per_row =
      (guint64)wh_quant_row_bytes(op->w->type, (gint64)op->w->ne[0]) * MAX(job->n_tokens, 1);
  const gboolean decode = job->n_tokens == 1;
  guint64 chunk = MAX((guint64)1, ((guint64)(decode ? 1024 : 256) << 10) / MAX(work_per_row, 1));
  if (!decode)
    chunk = MAX(chunk, 32); /* room for the row blocks of mm_rows() */
  chunk = MIN(chunk, MAX((guint64)1, total / ((decode ? 2 : 4) * (guint64)nth)));
  if (chunk > 8)
    chunk &= ~(guint64)7; /* whole groups of the multi-row decode kernels (4 rows) */
  job->total_rows = total;
  job->chunk_rows = chunk;
  job->next_chunk = 0;
}

static void
mm_add(mm_job *job, const wh_gguf_tensor *w, const float *x, guint64 ldx, float *y, guint64 ldy,
       const wh_gguf_tensor *bias)
{
  g_assert(job->n_ops < (int)G_N_ELEMENTS(job->ops));
  job->ops[job->n_ops++] = (mm_op){w, x, ldx, y, ldy, fdata(bias), wh_quant_vec_dot_type(w->type)};
}

/* Runs the added ops: consecutive ops with the same input and activation
 * type share one quantization of the input and one pool run. */
static void
mm_run(mm_job *job)
{
  if (G_UNLIKELY(job->ctx->mm_observer != NULL))
    for (int o = 0; o < job->n_ops; o++)
      job->ctx->mm_observer(job->ops[o].w, job->ops[o].x, job->ops[o].ldx, job->n_tokens,
                            job->ctx->mm_observer_data);
  for (int first = 0; first < job->n_ops;) {
    int last = first + 1;
    while (last < job->n_ops && job->ops[last].act_type == job->ops[first].act_type &&
           job->ops[last].x == job->ops[first].x && job->ops[last].ldx == job->ops[first].ldx)
      last++;
    job->first = first;
    job->last = last;
    if (job->ops[first].act_type != WH_TYPE_F32 && !(first == 0 && job->act_ready)) {
      if (job->n_tokens == 1)
        mm_quant_worker(0, 1, job);
      else
        wh_threadpool_run(job->ctx->pool, mm_quant_worker, job);
    }
    mm_plan_chunks(job);
    wh_threadpool_run_dynamic(job->ctx->pool, mm_worker, job);
    first = last;
  }
  job->n_ops = 0;
  job->act_ready = FALSE;
}

/* --- KV cache rows ------------------------------------------------------------------- */

/* Stores @n floats as one cache row of @type. */
static void
kv_store(wh_kv_type type, guint8 *dst, const float *src, guint32 n)
{
  switch (type) {
  case WH_KV_F32:
    memcpy(dst, src, n * sizeof(float));
    break;
  case WH_KV_F16:
    for (guint32 i = 0; i < n; i++)
      ((guint16 *)dst)[i] = wh_fp32_to_fp16(src[i]);
    break;
  case WH_KV_Q8_0:
    wh_quant_quantize_rows(WH_TYPE_Q8_0, src, dst, 1, n, NULL, NULL);
    break;
  case WH_KV_Q4_0:
    wh_quant_quantize_rows(WH_TYPE_Q4_0, src, dst, 1, n, NULL, NULL);
    break;
  }
}

/* Elements [off, off+n) of a cache row of @row_len elements, as floats.
 * May return a pointer into the row (F32) or into @buf (which must hold
 * row_len floats for the block types). */
static const float *
kv_load(wh_kv_type type, const guint8 *row, guint32 row_len, guint32 off, guint32 n, float *buf)
{
  switch (type) {
  case WH_KV_F32:
    return (const float *)row + off;
  case WH_KV_F16:
    /* F16C where the CPU has it, no per-call checks (a table lookup per element was ~8% of a
     * decode step, wh_quant_dequantize_row() with its checks still ~7%) */
    wh_quant_fp16_to_fp32_row(row + 2 * (gsize)off, buf, n);
    return buf;
  case WH_KV_Q8_0:
  case WH_KV_Q4_0: {
    wh_type t = type == WH_KV_Q8_0 ? WH_TYPE_Q8_0 : WH_TYPE_Q4_0;
    if (off % 32 == 0 && n % 32 == 0) {
      wh_quant_dequantize_row(t, row + wh_kv_type_row_size(type, off), buf, n);
      return buf;
    }
    wh_quant_dequantize_row(t, row, buf, row_len);
    return buf + off;
  }
  }
  return buf;
}

/* The bytes of a cache row that hold values [off, off + n) (whole blocks of 32 for Q8_0 / Q4_0),
 * prefetched for attention WH_ATTN_PREFETCH cells ahead (see cpu-attn.c). */
static void
kv_prefetch(wh_kv_type type, const guint8 *row, guint32 off, guint32 n)
{
  const guint32 blk = type == WH_KV_Q8_0 || type == WH_KV_Q4_0 ? 32 : 1;
  const gsize b = wh_kv_type_row_size(type, off / blk * blk);
  wh_attn_prefetch(row + b, wh_kv_type_row_size(type, (off + n + blk - 1) / blk * blk) - b);
}

/* --- per-token stages ---------------------------------------------------------------- */

typedef struct {
  wh_context *ctx;
  const wh_batch *batch;
  guint32 il;
  /* residual stage */
  const wh_gguf_tensor *post_norm; /* NULL: x += tmp; else x += rms_norm(tmp, post_norm) */
  gboolean add_tmp;                /* FALSE: only norm x into h */
  const wh_gguf_tensor *next_norm; /* h = rms_norm(x, next_norm) */
  guint32 t_begin;                 /* first token row to produce h for */
  gint next_item;                  /* attention: next (token, KV head) item to take (atomic) */
  gboolean fuse_qk;                /* attention items do qk_heads() first (qk_fusable()) */
  gboolean act_split; /* FFN activation decoding one token on >1 threads: split by 256-element */
  wh_type act_qtype;  /* blocks, quantized to act_qtype for ffn_down (F32: not quantized) */
} stage_job;

static void
embed_worker(int ith, int nth, void *data)
{
  stage_job *job = data;
  wh_context *ctx = job->ctx;
  const wh_model *m = ctx->model;
  const guint32 d = m->hp.n_embd;
  gsize b, e;
  wh_threadpool_split(job->batch->n_tokens, ith, nth, &b, &e);
  const gsize row_bytes = wh_quant_row_bytes(m->tok_embd->type, d);
  for (gsize t = b; t < e; t++) {
    float *x = cbuf(ctx, ctx->lay.off_x) + t * d;
    const guint8 *src = m->tok_embd->data + (guint64)job->batch->tokens[t] * row_bytes;
    wh_quant_dequantize_row(m->tok_embd->type, src, x, d);
    if (m->hp.embd_scale != 1.0f)
      for (guint32 i = 0; i < d; i++)
        x[i] *= m->hp.embd_scale;
  }

  /* RoPE tables for this batch: [config][token][pair] cos, then sin. */
  const guint32 np = ctx->lay.n_pairs, nb = ctx->lay.nb;
  float *rope = cbuf(ctx, ctx->lay.off_rope);
  for (int c = 0; c < 2; c++) {
    for (gsize t = b; t < e; t++) {
      double p = (double)(job->batch->pos0 + t);
      float *cs = rope + ((gsize)c * 2 * nb + t) * np;
      float *sn = cs + (gsize)nb * np;
      for (guint32 i = 0; i < np; i++) {
        double theta = p * ctx->rope_freq[c][i];
        cs[i] = (float)cos(theta) * ctx->rope_mscale[c];
        sn[i] = (float)sin(theta) * ctx->rope_mscale[c];
      }
    }
  }
}

static void
rope_apply(float *v, const float *cs, const float *sn, guint32 n_rot, wh_rope_type type)
{
  const guint32 np = n_rot / 2;
  for (guint32 i = 0; i < np; i++) {
    guint32 i0 = type == WH_ROPE_NORMAL ? 2 * i : i;
    guint32 i1 = type == WH_ROPE_NORMAL ? 2 * i + 1 : i + np;
    float a = v[i0], b = v[i1];
    v[i0] = a * cs[i] - b * sn[i];
    v[i1] = a * sn[i] + b * cs[i];
  }
}

/* x (+)= tmp (post-normed), then h = rms_norm(x, next_norm). */
static void
residual_worker(int ith, int nth, void *data)
{
  stage_job *job = data;
  wh_context *ctx = job->ctx;
  const wh_model_hparams *hp = &ctx->model->hp;
  const guint32 d = hp->n_embd;
  gsize b, e;
  wh_threadpool_split(job->batch->n_tokens, ith, nth, &b, &e);
  for (gsize t = b; t < e; t++) {
    float *x = cbuf(ctx, ctx->lay.off_x) + t * d;
    float *tmp = cbuf(ctx, ctx->lay.off_tmp) + t * d;
    if (job->add_tmp) {
      if (job->post_norm)
        rms_norm(tmp, tmp, fdata(job->post_norm), d, hp->eps);
      for (guint32 i = 0; i < d; i++)
        x[i] += tmp[i];
    }
    if (job->next_norm && t >= job->t_begin)
      rms_norm(cbuf(ctx, ctx->lay.off_h) + t * d, x, fdata(job->next_norm), d, hp->eps);
  }
}

/* Token t of the batch: q/k norms and RoPE of query heads [g0 * ng, g1 * ng) and KV heads
 * [g0, g1), and the K and V of KV heads [g0, g1) stored in the token's cache cell. Per head
 * the same operations whatever the head range, so a range gives the floats of the whole. */
static void
qk_heads(stage_job *job, gsize t, guint32 g0, guint32 g1)
{
  wh_context *ctx = job->ctx;
  const wh_model_hparams *hp = &ctx->model->hp;
  const wh_layer_weights *L = &ctx->model->layers[job->il];
  const guint32 H = hp->n_head[job->il], Hkv = hp->n_head_kv[job->il], ng = H / Hkv;
  const guint32 dk = hp->head_dim_k, dv = hp->head_dim_v, W = ctx->lay.qkv_width;
  const guint32 np = ctx->lay.n_pairs, nb = ctx->lay.nb;
  const int c = hp->swa_layer[job->il] ? 1 : 0;
  float *q = cbuf(ctx, ctx->lay.off_qkv) + t * W;
  float *k = q + H * dk;
  float *v = k + Hkv * dk;
  const float *cs = cbuf(ctx, ctx->lay.off_rope) + ((gsize)c * 2 * nb + t) * np;
  const float *sn = cs + (gsize)nb * np;
  for (guint32 h = g0 * ng; h < g1 * ng; h++) {
    if (L->q_norm)
      rms_norm(q + h * dk, q + h * dk, fdata(L->q_norm), dk, hp->eps);
    rope_apply(q + h * dk, cs, sn, hp->n_rot, hp->rope_type);
  }
  for (guint32 h = g0; h < g1; h++) {
    if (L->k_norm)
      rms_norm(k + h * dk, k + h * dk, fdata(L->k_norm), dk, hp->eps);
    rope_apply(k + h * dk, cs, sn, hp->n_rot, hp->rope_type);
  }
  const guint32 cell = job->batch->pos0 + (guint32)t;
  const wh_kv_type kvt = ctx->params.kv_type;
  /* the head offsets are whole blocks (qk_fusable()), so their bytes are a row's of that size */
  kv_store(kvt, wh_context_k_cell(ctx, job->il, cell) + wh_kv_type_row_size(kvt, g0 * dk),
           k + g0 * dk, (g1 - g0) * dk);
  kv_store(kvt, wh_context_v_cell(ctx, job->il, cell) + wh_kv_type_row_size(kvt, g0 * dv),
           v + g0 * dv, (g1 - g0) * dv);
}

/* Norms, RoPE and cache stores of every head of every token (a batch). */
static void
qk_worker(int ith, int nth, void *data)
{
  stage_job *job = data;
  const wh_model_hparams *hp = &job->ctx->model->hp;
  gsize b, e;
  wh_threadpool_split(job->batch->n_tokens, ith, nth, &b, &e);
  for (gsize t = b; t < e; t++)
    qk_heads(job, t, 0, hp->n_head_kv[job->il]);
}

/* Decoding one token, attention items (one per KV head) also do qk_heads() for their own head
 * instead of thread 0 doing every head before the run while the others wait (~2-3% of a decode
 * step of a 1B model). Needs each head's cache slice to start on a block: dk and dv multiples
 * of 32 for the block KV types. */
static gboolean
qk_fusable(wh_context *ctx, const wh_batch *batch)
{
  const wh_model_hparams *hp = &ctx->model->hp;
  const gboolean blocks = ctx->params.kv_type == WH_KV_Q8_0 || ctx->params.kv_type == WH_KV_Q4_0;
  return batch->n_tokens == 1 &&
         (!blocks || (hp->head_dim_k % 32 == 0 && hp->head_dim_v % 32 == 0));
}

/* --- attention ----------------------------------------------------------------------- */

/* Softmax of @ng rows of @nj scores, @ld apart, in place. */
static void
softmax_rows(float *scores, gsize ld, guint32 ng, guint32 nj)
{
  for (guint32 hh = 0; hh < ng; hh++) {
    float *s = scores + (gsize)hh * ld;
    wh_cpu_softmax_exp(WH_QUANT_SIMD_AVX512, s, nj);
    double sum = 0.0;
    for (guint32 j = 0; j < nj; j++)
      sum += s[j];
    float inv = (float)(1.0 / sum);
    for (guint32 j = 0; j < nj; j++)
      s[j] *= inv;
  }
}

/* One (token, KV head) pair per work item: the n_group query heads sharing
 * that KV head, against every visible cached key (causal, sliding window). */
static void
attn_worker(int ith, int nth, void *data)
{
  stage_job *job = data;
  wh_context *ctx = job->ctx;
  const wh_model_hparams *hp = &ctx->model->hp;
  const guint32 il = job->il;
  const guint32 H = hp->n_head[il], Hkv = hp->n_head_kv[il], ng = H / Hkv;
  const guint32 dk = hp->head_dim_k, dv = hp->head_dim_v, W = ctx->lay.qkv_width;
  const guint32 n_ctx = ctx->params.n_ctx;
  const gboolean swa = hp->swa_layer[il];
  const wh_kv_type kvt = ctx->params.kv_type;
  guint8 *scratch = thread_scratch(ctx, ith);
  float *scores = (float *)(scratch + ctx->lay.th_scores);
  float *kvbuf = (float *)(scratch + ctx->lay.th_kv);
  float *acc = kvbuf + (gsize)ctx->model->hp.n_head_kv_max * MAX(dk, dv);

  /* items are taken from a shared counter (a dynamic pool run): the result of an item does
   * not depend on which thread computes it */
  const gsize n_items = (gsize)job->batch->n_tokens * Hkv;
  (void)nth;
  for (gsize item; (item = (gsize)g_atomic_int_add(&job->next_item, 1)) < n_items;) {
    const guint32 t = (guint32)(item / Hkv), g = (guint32)(item % Hkv);
    const guint32 p = job->batch->pos0 + t;
    const guint32 j0 = swa && p + 1 > hp->n_swa ? p + 1 - hp->n_swa : 0;
    const guint32 nj = p + 1 - j0;
    const float *q = cbuf(ctx, ctx->lay.off_qkv) + (gsize)t * W + (gsize)g * ng * dk;
    if (job->fuse_qk)
      qk_heads(job, t, g, g + 1);

    float *out = cbuf(ctx, ctx->lay.off_attn) + (gsize)t * H * dv + (gsize)g * ng * dv;
    if (kvt == WH_KV_F16) {
      /* cpu-attn.c: the F16 slices straight from the cache, SIMD where the CPU has it */
      wh_attn_scores_f16(WH_QUANT_SIMD_AVX512, q, ng, dk,
                         wh_context_k_cell(ctx, il, j0) + 2 * (gsize)g * dk, ctx->lay.kv_row_k[il],
                         nj, hp->attn_scale, scores, n_ctx, kvbuf);
    } else {
      for (guint32 j = 0; j < nj; j++) {
        if (j + WH_ATTN_PREFETCH < nj)
          kv_prefetch(kvt, wh_context_k_cell(ctx, il, j0 + j + WH_ATTN_PREFETCH), g * dk, dk);
        const float *k =
            kv_load(kvt, wh_context_k_cell(ctx, il, j0 + j), Hkv * dk, g * dk, dk, kvbuf);
        for (guint32 hh = 0; hh < ng; hh++)
          scores[(gsize)hh * n_ctx + j] = wh_cpu_dot_f32(q + hh * dk, k, dk) * hp->attn_scale;
      }
    }
    if (hp->attn_softcap > 0.0f)
      for (guint32 hh = 0; hh < ng; hh++)
        for (guint32 j = 0; j < nj; j++) {
          float *z = &scores[(gsize)hh * n_ctx + j];
          *z = hp->attn_softcap * tanhf(*z / hp->attn_softcap);
        }
    softmax_rows(scores, n_ctx, ng, nj);
    if (kvt == WH_KV_F16) {
      wh_attn_values_f16(WH_QUANT_SIMD_AVX512, scores, n_ctx, ng, dv,
                         wh_context_v_cell(ctx, il, j0) + 2 * (gsize)g * dv, ctx->lay.kv_row_v[il],
                         nj, out, kvbuf);
      continue;
    }
    memset(acc, 0, sizeof(float) * ng * dv);
    for (guint32 j = 0; j < nj; j++) {
      if (j + WH_ATTN_PREFETCH < nj)
        kv_prefetch(kvt, wh_context_v_cell(ctx, il, j0 + j + WH_ATTN_PREFETCH), g * dv, dv);
      const float *v =
          kv_load(kvt, wh_context_v_cell(ctx, il, j0 + j), Hkv * dv, g * dv, dv, kvbuf);
      for (guint32 hh = 0; hh < ng; hh++) {
        const float a = scores[(gsize)hh * n_ctx + j];
        float *o = acc + hh * dv;
        for (guint32 i = 0; i < dv; i++)
          o[i] += a * v[i];
      }
    }
    memcpy(out, acc, sizeof(float) * ng * dv);
  }
}

/* --- FFN activation ------------------------------------------------------------------ */

static float
gelu_tanh(float u)
{
  if (u >= 10.0f)
    return u;
  if (u <= -10.0f)
    return 0.0f;
  const float c = 0.7978845608028654f; /* sqrt(2/pi) */
  return 0.5f * u * (1.0f + tanhf(c * (u + 0.044715f * u * u * u)));
}

static void
act_range(const wh_model_hparams *hp, float *gate, const float *up, gsize b, gsize e)
{
  if (hp->ffn_gelu)
    for (gsize i = b; i < e; i++)
      gate[i] = gelu_tanh(gate[i]) * up[i];
  else
    wh_cpu_silu_mul(WH_QUANT_SIMD_AVX512, gate + b, up + b, e - b);
}

/* gate = act(gate) * up. Tokens split over threads; or, with act_split (one token), the
 * blocks of 256 values, each quantized for ffn_down by the thread that made it (the 5632
 * expf + quantization of a 1B model were ~3% of a decode step on thread 0 alone). */
static void
act_worker(int ith, int nth, void *data)
{
  stage_job *job = data;
  wh_context *ctx = job->ctx;
  const wh_model_hparams *hp = &ctx->model->hp;
  const guint32 F = hp->n_ff[job->il];
  gsize b, e;
  if (job->act_split) {
    float *gate = cbuf(ctx, ctx->lay.off_ff);
    wh_threadpool_split((F + 255) / 256, ith, nth, &b, &e);
    b = MIN(b * 256, F), e = MIN(e * 256, F);
    act_range(hp, gate, gate + F, b, e);
    if (job->act_qtype != WH_TYPE_F32 && e > b)
      wh_quant_quantize_activations(job->act_qtype, gate + b,
                                    ctx->compute + ctx->lay.off_qact +
                                        wh_quant_row_bytes(job->act_qtype, (gint64)b),
                                    (gint64)(e - b));
    return;
  }
  wh_threadpool_split(job->batch->n_tokens, ith, nth, &b, &e);
  for (gsize t = b; t < e; t++) {
    float *gate = cbuf(ctx, ctx->lay.off_ff) + t * 2 * F;
    act_range(hp, gate, gate + F, 0, F);
  }
}

static void
softcap_worker(int ith, int nth, void *data)
{
  stage_job *job = data;
  wh_context *ctx = job->ctx;
  const float c = ctx->model->hp.final_softcap;
  const guint32 V = ctx->model->hp.n_vocab;
  gsize b, e;
  wh_threadpool_split((gsize)(job->batch->n_tokens - job->t_begin) * V, ith, nth, &b, &e);
  for (gsize i = b; i < e; i++)
    ctx->logits[i] = c * tanhf(ctx->logits[i] / c);
}

/* --- the backend --------------------------------------------------------------------- */

/* Runs a per-token (or per-item) stage: on the pool, or inline on the calling thread when
 * there is a single item (decoding one token), which saves a barrier. */
static void
stage_run(wh_context *ctx, wh_threadpool_func fn, stage_job *job, gsize n_items)
{
  if (n_items <= 1)
    fn(0, 1, job);
  else
    wh_threadpool_run(ctx->pool, fn, job);
}

static void
cpu_embed(wh_context *ctx, const wh_batch *batch)
{
  stage_job job = {.ctx = ctx, .batch = batch};
  stage_run(ctx, embed_worker, &job, batch->n_tokens);
}

static void
cpu_layers(wh_context *ctx, const wh_batch *batch, guint32 il_begin, guint32 il_end)
{
  const wh_model *m = ctx->model;
  const wh_model_hparams *hp = &m->hp;
  const guint32 d = hp->n_embd, W = ctx->lay.qkv_width, dk = hp->head_dim_k;
  float *h = cbuf(ctx, ctx->lay.off_h), *qkv = cbuf(ctx, ctx->lay.off_qkv);
  float *attn = cbuf(ctx, ctx->lay.off_attn), *tmp = cbuf(ctx, ctx->lay.off_tmp);
  float *ff = cbuf(ctx, ctx->lay.off_ff);
  mm_job mm = {.ctx = ctx, .n_tokens = batch->n_tokens};

  for (guint32 il = il_begin; il < il_end; il++) {
    const wh_layer_weights *L = &m->layers[il];
    const guint32 H = hp->n_head[il], Hkv = hp->n_head_kv[il], F = hp->n_ff[il];
    stage_job st = {.ctx = ctx, .batch = batch, .il = il};

    /* h = attn_norm(x) */
    st.next_norm = L->attn_norm;
    stage_run(ctx, residual_worker, &st, batch->n_tokens);

    /* q | k | v */
    if (L->wqkv) {
      mm_add(&mm, L->wqkv, h, d, qkv, W, L->bqkv);
    } else {
      mm_add(&mm, L->wq, h, d, qkv, W, L->bq);
      mm_add(&mm, L->wk, h, d, qkv + H * dk, W, L->bk);
      mm_add(&mm, L->wv, h, d, qkv + (H + Hkv) * dk, W, L->bv);
    }
    mm_run(&mm);
    st.fuse_qk = qk_fusable(ctx, batch);
    if (!st.fuse_qk)
      stage_run(ctx, qk_worker, &st, batch->n_tokens);
    if ((gsize)batch->n_tokens * Hkv > 1)
      wh_threadpool_run_dynamic(ctx->pool, attn_worker, &st);
    else
      attn_worker(0, 1, &st);
    mm_add(&mm, L->wo, attn, (guint64)H * hp->head_dim_v, tmp, d, L->bo);
    mm_run(&mm);

    /* x += post_attn_norm(tmp); h = ffn_norm(x) */
    st.add_tmp = TRUE;
    st.post_norm = L->post_attn_norm;
    st.next_norm = L->ffn_norm;
    stage_run(ctx, residual_worker, &st, batch->n_tokens);

    if (L->ffn_gate) {
      mm_add(&mm, L->ffn_gate, h, d, ff, 2 * F, L->b_gate);
      mm_add(&mm, L->ffn_up, h, d, ff + F, 2 * F, L->b_up);
    } else {
      mm_add(&mm, L->ffn_up, h, d, ff, 2 * F, L->b_up); /* phi3: fused gate | up */
    }
    mm_run(&mm);
    const wh_type down_act = wh_quant_vec_dot_type(L->ffn_down->type);
    if (batch->n_tokens == 1 && wh_threadpool_size(ctx->pool) > 1) {
      st.act_split = TRUE;
      st.act_qtype = down_act;
      wh_threadpool_run(ctx->pool, act_worker, &st);
      st.act_split = FALSE;
      mm.act_ready = down_act != WH_TYPE_F32;
    } else {
      stage_run(ctx, act_worker, &st, batch->n_tokens);
    }
    mm_add(&mm, L->ffn_down, ff, 2 * F, tmp, d, L->b_down);
    mm_run(&mm);

    /* x += post_ffw_norm(tmp) */
    st.post_norm = L->post_ffn_norm;
    st.next_norm = NULL;
    stage_run(ctx, residual_worker, &st, batch->n_tokens);
  }
}

static void
cpu_output(wh_context *ctx, const wh_batch *batch)
{
  const wh_model *m = ctx->model;
  const guint32 d = m->hp.n_embd, V = m->hp.n_vocab;
  stage_job st = {
      .ctx = ctx, .batch = batch, .next_norm = m->output_norm, .t_begin = batch->first_logit};
  stage_run(ctx, residual_worker, &st, batch->n_tokens);
  mm_job mm = {.ctx = ctx, .n_tokens = batch->n_tokens - batch->first_logit};
  mm_add(&mm, m->output, cbuf(ctx, ctx->lay.off_h) + (gsize)batch->first_logit * d, d, ctx->logits,
         V, m->output_bias);
  mm_run(&mm);
  if (m->hp.final_softcap > 0.0f)
    wh_threadpool_run(ctx->pool, softcap_worker, &st);
}

const wh_backend wh_backend_cpu = {
    .name = "cpu",
    .embed = cpu_embed,
    .layers = cpu_layers,
    .output = cpu_output,
};

/* Re-rotates the keys of cells [from, to) by @delta positions (context
 * shift). RoPE angles are linear in the position, so rotating by the angle
 * of the difference moves a key from position p to p + delta. */
void wh_cpu_rope_shift(wh_context *ctx, guint32 from, guint32 to, gint64 delta);

void
wh_cpu_rope_shift(wh_context *ctx, guint32 from, guint32 to, gint64 delta)
{
  const wh_model_hparams *hp = &ctx->model->hp;
  const guint32 dk = hp->head_dim_k, np = hp->n_rot / 2;
  const guint32 n_cpu = ctx->vk || ctx->cuda ? ctx->lay.split.first_gpu_layer : hp->n_layer;
  float *row = (float *)(thread_scratch(ctx, 0) + ctx->lay.th_kv);
  float *cs = (float *)(thread_scratch(ctx, 0) + ctx->lay.th_row);
  float *sn = cs + np;
  for (int c = 0; c < 2; c++) {
    for (guint32 i = 0; i < np; i++) {
      double theta = (double)delta * ctx->rope_freq[c][i];
      cs[i] = (float)cos(theta);
      sn[i] = (float)sin(theta);
    }
    for (guint32 il = 0; il < n_cpu; il++) { /* GPU layers: wh_vk/cuda_context_shift() */
      if ((hp->swa_layer[il] ? 1 : 0) != c)
        continue;
      const guint32 n = hp->n_head_kv[il] * dk;
      for (guint32 cell = from; cell < to; cell++) {
        guint8 *dst = wh_context_k_cell(ctx, il, cell);
        const float *k = kv_load(ctx->params.kv_type, dst, n, 0, n, row);
        if (k != row)
          memcpy(row, k, n * sizeof(float));
        for (guint32 h = 0; h < hp->n_head_kv[il]; h++)
          rope_apply(row + h * dk, cs, sn, hp->n_rot, hp->rope_type);
        kv_store(ctx->params.kv_type, dst, row, n);
      }
    }
  }
}
