/* eval.c — perplexity, KL divergence, saved logits and importance matrices (see eval.h). */
#include "config.h"

#include "eval/eval.h"

#include "gguf/imatrix.h"
#include "quant/quant.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK(wh - eval - error - quark, wh_eval_error)

#define LOGITS_MAGIC "WHLOGITS"
#define LOGITS_HEADER_BYTES 32u
#define LOGITS_VERSION 1u
#define LOGITS_ENC_F16 1u
#define F16_LOWEST (-65504.0f)
/* The reference skips dense multiplications with fewer token rows than this. */
#define IMATRIX_MIN_ROWS 16u

const double wh_eval_kld_levels[WH_EVAL_KLD_N_LEVELS] = {
    1.0, 0.999, 0.99, 0.95, 0.90, 0.50, 0.10, 0.05, 0.01, 0.001, 0.0,
};

/* --- saved logits: reader ------------------------------------------------------------- */

struct wh_eval_logits {
  GBytes *bytes;
  const guint8 *rows; /* first scored row */
  gint32 *tokens;     /* copied out: the mapping need not be 4-byte aligned */
  guint32 n_vocab, n_ctx, n_chunks, rows_per_chunk;
};

static guint32
rd_u32(const guint8 *p)
{
  guint32 v;
  memcpy(&v, p, 4);
  return GUINT32_FROM_LE(v);
}

static guint16
rd_u16(const guint8 *p)
{
  guint16 v;
  memcpy(&v, p, 2);
  return GUINT16_FROM_LE(v);
}

static guint32
scored_rows(guint32 n_ctx)
{
  return n_ctx - 1 - n_ctx / 2;
}

wh_eval_logits *
wh_eval_logits_new_from_bytes(GBytes *bytes, const char *name, GError **error)
{
  gsize size = 0;
  const guint8 *d = g_bytes_get_data(bytes, &size);
  if (!name)
    name = "saved logits";
#define FAIL(...)                                                                                  \
  do {                                                                                             \
    g_set_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_FORMAT, __VA_ARGS__);                          \
    return NULL;                                                                                   \
  } while (0)
  if (size < LOGITS_HEADER_BYTES || memcmp(d, LOGITS_MAGIC, 8) != 0)
    FAIL("%s is not a Whittle saved-logits file (no “" LOGITS_MAGIC "” header): save it with "
         "`whittle-cli perplexity --save-logits`",
         name);
  const guint32 version = rd_u32(d + 8), n_vocab = rd_u32(d + 12), n_ctx = rd_u32(d + 16),
                n_chunks = rd_u32(d + 20), enc = rd_u32(d + 24), reserved = rd_u32(d + 28);
  if (version != LOGITS_VERSION)
    FAIL("%s: saved-logits version %u is not supported (this build reads version %u)", name,
         version, LOGITS_VERSION);
  if (enc != LOGITS_ENC_F16 || reserved != 0)
    FAIL("%s: unknown value encoding %u (reserved field %u)", name, enc, reserved);
  if (n_vocab == 0 || n_ctx < 4 || n_chunks == 0)
    FAIL("%s: header says n_vocab %u, n_ctx %u, n_chunks %u (need n_vocab >= 1, n_ctx >= 4, "
         "n_chunks >= 1)",
         name, n_vocab, n_ctx, n_chunks);
  /* every product below is checked against the size before it can overflow */
  const guint64 body = size - LOGITS_HEADER_BYTES;
  const guint64 n_tok = (guint64)n_chunks * n_ctx;
  const guint64 row_bytes = 2ull * n_vocab;
  const guint64 n_rows = (guint64)n_chunks * scored_rows(n_ctx);
  if (n_tok > body / 4 || n_rows > (body - 4 * n_tok) / row_bytes ||
      4 * n_tok + n_rows * row_bytes != body)
    FAIL("%s: %" G_GSIZE_FORMAT " bytes, but a file of %u chunks of %u tokens over %u vocabulary "
         "entries has a different size (truncated or damaged?)",
         name, size, n_chunks, n_ctx, n_vocab);
  const guint8 *tok = d + LOGITS_HEADER_BYTES;
  for (guint64 i = 0; i < n_tok; i++) {
    const guint32 t = rd_u32(tok + 4 * i);
    if (t >= n_vocab)
      FAIL("%s: token %" G_GUINT64_FORMAT " has id %d, outside the vocabulary (0..%u)", name, i,
           (gint32)t, n_vocab - 1);
  }
  const guint8 *rows = tok + 4 * n_tok;
  for (guint64 i = 0; i < n_rows * n_vocab; i++)
    if ((rd_u16(rows + 2 * i) & 0x7c00u) == 0x7c00u)
      FAIL("%s: log-probability %" G_GUINT64_FORMAT " of row %" G_GUINT64_FORMAT
           " is infinite or NaN",
           name, i % n_vocab, i / n_vocab);
#undef FAIL

  wh_eval_logits *l = g_new0(wh_eval_logits, 1);
  l->bytes = g_bytes_ref(bytes);
  l->n_vocab = n_vocab;
  l->n_ctx = n_ctx;
  l->n_chunks = n_chunks;
  l->rows_per_chunk = scored_rows(n_ctx);
  l->tokens = g_new(gint32, n_tok);
  for (guint64 i = 0; i < n_tok; i++)
    l->tokens[i] = (gint32)rd_u32(tok + 4 * i);
  l->rows = rows;
  return l;
}

wh_eval_logits *
wh_eval_logits_open(const char *path, GError **error)
{
  GError *e = NULL;
  GMappedFile *mf = g_mapped_file_new(path, FALSE, &e);
  if (!mf) {
    g_set_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_IO, "cannot open saved logits: %s", e->message);
    g_error_free(e);
    return NULL;
  }
  GBytes *b = g_mapped_file_get_bytes(mf);
  g_mapped_file_unref(mf);
  wh_eval_logits *l = wh_eval_logits_new_from_bytes(b, path, error);
  g_bytes_unref(b);
  return l;
}

void
wh_eval_logits_free(wh_eval_logits *l)
{
  if (!l)
    return;
  g_bytes_unref(l->bytes);
  g_free(l->tokens);
  g_free(l);
}

guint32
wh_eval_logits_n_vocab(const wh_eval_logits *l)
{
  return l->n_vocab;
}

guint32
wh_eval_logits_n_ctx(const wh_eval_logits *l)
{
  return l->n_ctx;
}

guint32
wh_eval_logits_n_chunks(const wh_eval_logits *l)
{
  return l->n_chunks;
}

guint32
wh_eval_logits_rows_per_chunk(const wh_eval_logits *l)
{
  return l->rows_per_chunk;
}

const gint32 *
wh_eval_logits_tokens(const wh_eval_logits *l)
{
  return l->tokens;
}

void
wh_eval_logits_get_row(const wh_eval_logits *l, guint32 chunk, guint32 row, float *out)
{
  g_return_if_fail(chunk < l->n_chunks && row < l->rows_per_chunk);
  const guint8 *p =
      l->rows + ((guint64)chunk * l->rows_per_chunk + row) * 2ull * (guint64)l->n_vocab;
  for (guint32 i = 0; i < l->n_vocab; i++)
    out[i] = wh_fp16_to_fp32(rd_u16(p + 2ull * i));
}

/* --- the chunk loop ------------------------------------------------------------------- */

wh_eval_params
wh_eval_default_params(void)
{
  wh_eval_params p = {
      .n_ctx = 0,
      .kv_type = WH_KV_F16,
  };
  return p;
}

typedef struct {
  const wh_eval_params *p;
  const gint32 *tokens; /* text tokens */
  guint32 n_ctx, n_chunks, n_vocab;
  /* perplexity */
  double nll, nll2;
  guint64 count;
  /* saved-logits sink */
  FILE *sink;
  char *sink_tmp;
  guint16 *row16;
  /* KL divergence */
  double *kld; /* one per scored position */
  double base_nll, base_nll2;
  double dp, dp2; /* sums of Δp and Δp² */
  guint64 same_top;
  float *base_row;
  /* imatrix */
  GHashTable *im; /* const wh_gguf_tensor * -> im_entry */
} run_state;

/* log(sum_i exp(v[i])) in double, and the argmax of @v (length @n). */
static double
log_sum_exp(const float *v, guint32 n, guint32 *argmax)
{
  guint32 am = 0;
  for (guint32 i = 1; i < n; i++)
    if (v[i] > v[am])
      am = i;
  const double mx = v[am];
  double sum = 0.0;
  for (guint32 i = 0; i < n; i++)
    sum += exp((double)v[i] - mx);
  if (argmax)
    *argmax = am;
  return mx + log(sum);
}

static gboolean
sink_write(run_state *st, const void *data, gsize bytes, GError **error)
{
  if (fwrite(data, 1, bytes, st->sink) == bytes)
    return TRUE;
  g_set_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_IO, "cannot write saved logits to %s: %s",
              st->sink_tmp, g_strerror(errno));
  return FALSE;
}

static gboolean
sink_open(run_state *st, GError **error)
{
  const char *path = st->p->save_logits_path;
  st->sink_tmp = g_strdup_printf("%s.XXXXXX", path);
  int fd = g_mkstemp(st->sink_tmp);
  if (fd < 0 || !(st->sink = fdopen(fd, "wb"))) {
    g_set_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_IO,
                "cannot create a temporary file beside %s: %s (is the folder writable?)", path,
                g_strerror(errno));
    if (fd >= 0)
      close(fd);
    g_clear_pointer(&st->sink_tmp, g_free);
    return FALSE;
  }
  fchmod(fd, 0644);
  guint8 hdr[LOGITS_HEADER_BYTES] = {0};
  const guint32 fields[6] = {LOGITS_VERSION, st->n_vocab,    st->n_ctx,
                             st->n_chunks,   LOGITS_ENC_F16, 0};
  memcpy(hdr, LOGITS_MAGIC, 8);
  for (int i = 0; i < 6; i++) {
    const guint32 v = GUINT32_TO_LE(fields[i]);
    memcpy(hdr + 8 + 4 * i, &v, 4);
  }
  if (!sink_write(st, hdr, sizeof hdr, error))
    return FALSE;
  for (guint64 i = 0; i < (guint64)st->n_chunks * st->n_ctx; i++) {
    const guint32 v = GUINT32_TO_LE((guint32)st->tokens[i]);
    if (!sink_write(st, &v, 4, error))
      return FALSE;
  }
  st->row16 = g_new(guint16, st->n_vocab);
  return TRUE;
}

/* Closes the sink; on success renames it into place, otherwise removes it. */
static gboolean
sink_close(run_state *st, gboolean ok, GError **error)
{
  if (!st->sink)
    return ok;
  const char *path = st->p->save_logits_path;
  if (ok && (fflush(st->sink) != 0 || fsync(fileno(st->sink)) != 0)) {
    g_set_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_IO, "cannot write saved logits to %s: %s",
                st->sink_tmp, g_strerror(errno));
    ok = FALSE;
  }
  if (fclose(st->sink) != 0 && ok) {
    g_set_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_IO, "cannot close %s: %s", st->sink_tmp,
                g_strerror(errno));
    ok = FALSE;
  }
  st->sink = NULL;
  if (ok && g_rename(st->sink_tmp, path) != 0) {
    g_set_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_IO, "cannot rename %s to %s: %s", st->sink_tmp,
                path, g_strerror(errno));
    ok = FALSE;
  }
  if (!ok)
    g_unlink(st->sink_tmp);
  return ok;
}

/* Scores the second half of chunk @c from its @logits (n_ctx rows of n_vocab): NLL, and
 * optionally the saved row and the KL divergence against the base row. */
static gboolean
score_chunk(run_state *st, guint32 c, const float *logits, GError **error)
{
  const guint32 N = st->n_ctx, V = st->n_vocab;
  const gint32 *text = st->tokens + (gsize)c * N;
  const wh_eval_logits *base = st->p->base;
  for (guint32 j = N / 2; j + 1 < N; j++) {
    const float *row = logits + (gsize)j * V;
    guint32 top = 0;
    const double lse = log_sum_exp(row, V, &top);
    const double v = lse - row[text[j + 1]];
    st->nll += v;
    st->nll2 += v * v;
    if (st->sink) {
      for (guint32 i = 0; i < V; i++)
        st->row16[i] = GUINT16_TO_LE(wh_fp32_to_fp16(MAX((float)(row[i] - lse), F16_LOWEST)));
      if (!sink_write(st, st->row16, (gsize)V * 2, error))
        return FALSE;
    }
    if (base) {
      /* KL(base || this) over the vocabulary, the base row renormalised */
      float *b = st->base_row;
      wh_eval_logits_get_row(base, c, j - N / 2, b);
      guint32 btop = 0;
      const double blse = log_sum_exp(b, V, &btop);
      double kld = 0.0;
      for (guint32 i = 0; i < V; i++) {
        const double lp = (double)b[i] - blse;
        kld += exp(lp) * (lp - ((double)row[i] - lse));
      }
      st->kld[st->count] = kld;
      const double bv = blse - b[text[j + 1]];
      st->base_nll += bv;
      st->base_nll2 += bv * bv;
      const double dp = exp(-v) - exp(-bv);
      st->dp += dp;
      st->dp2 += dp * dp;
      st->same_top += btop == top;
    }
    st->count++;
  }
  return TRUE;
}

/* exp(mean) and the standard error of the mean carried through exp. */
static void
ppl_from_sums(double sum, double sum2, guint64 n, double *ppl, double *err)
{
  const double mean = sum / (double)n, var = sum2 / (double)n - mean * mean;
  *ppl = exp(mean);
  *err = var > 0 && n > 1 ? *ppl * sqrt(var / (double)(n - 1)) : 0.0;
}

static int
cmp_double(gconstpointer a, gconstpointer b)
{
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void
finish_result(run_state *st, wh_eval_result *r)
{
  memset(r, 0, sizeof *r);
  r->n_ctx = st->n_ctx;
  r->n_chunks = st->n_chunks;
  r->n_scored = st->count;
  r->nll_mean = st->nll / (double)st->count;
  ppl_from_sums(st->nll, st->nll2, st->count, &r->ppl, &r->ppl_err);
  if (!st->kld)
    return;
  const guint64 n = st->count;
  r->has_kld = TRUE;
  ppl_from_sums(st->base_nll, st->base_nll2, n, &r->base_ppl, &r->base_ppl_err);
  double sum = 0.0, sum2 = 0.0;
  for (guint64 i = 0; i < n; i++) {
    sum += st->kld[i];
    sum2 += st->kld[i] * st->kld[i];
  }
  r->kld_mean = sum / (double)n;
  const double var = sum2 / (double)n - r->kld_mean * r->kld_mean;
  r->kld_err = var > 0 && n > 1 ? sqrt(var / (double)(n - 1)) : 0.0;
  qsort(st->kld, n, sizeof(double), cmp_double);
  for (int k = 0; k < WH_EVAL_KLD_N_LEVELS; k++) {
    /* linear interpolation between the closest ranks */
    const double pos = wh_eval_kld_levels[k] * (double)(n - 1);
    const guint64 lo = (guint64)floor(pos), hi = MIN(lo + 1, n - 1);
    r->kld_percentile[k] = st->kld[lo] + (pos - (double)lo) * (st->kld[hi] - st->kld[lo]);
  }
  r->dp_mean = st->dp / (double)n;
  r->dp_rms = sqrt(st->dp2 / (double)n);
  const double dvar = st->dp2 / (double)n - r->dp_mean * r->dp_mean;
  r->dp_err = dvar > 0 && n > 1 ? sqrt(dvar / (double)(n - 1)) : 0.0;
  r->same_top = (double)st->same_top / (double)n;
  r->same_top_err = n > 1 ? sqrt(r->same_top * (1.0 - r->same_top) / (double)(n - 1)) : 0.0;
}

/* Validates the parameters against the text (and the base logits) and fills the chunk
 * geometry of @st. */
static gboolean
plan_chunks(run_state *st, wh_model *model, const gint32 *tokens, guint32 n_tokens, GError **error)
{
  const wh_eval_params *p = st->p;
  const wh_eval_logits *base = p->base;
  st->tokens = tokens;
  st->n_vocab = wh_model_n_vocab(model);
  st->n_ctx = p->n_ctx ? p->n_ctx : base ? base->n_ctx : 512;
  if (st->n_ctx < 4) {
    g_set_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_INPUT,
                "chunks of %u tokens are too short: use at least 4", st->n_ctx);
    return FALSE;
  }
  st->n_chunks = n_tokens / st->n_ctx;
  if (p->max_chunks)
    st->n_chunks = MIN(st->n_chunks, p->max_chunks);
  if (st->n_chunks == 0) {
    g_set_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_INPUT,
                "the text has %u tokens, fewer than one chunk of %u: use a smaller context size "
                "or a longer text",
                n_tokens, st->n_ctx);
    return FALSE;
  }
  if (!base)
    return TRUE;
  if (base->n_vocab != st->n_vocab || base->n_ctx != st->n_ctx) {
    g_set_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_MISMATCH,
                "the base logits were saved with a vocabulary of %u and chunks of %u tokens, "
                "but this run has %u and %u: use a model with the same vocabulary and the same "
                "-c as the base run",
                base->n_vocab, base->n_ctx, st->n_vocab, st->n_ctx);
    return FALSE;
  }
  st->n_chunks = MIN(st->n_chunks, base->n_chunks);
  for (guint64 i = 0; i < (guint64)st->n_chunks * st->n_ctx; i++) {
    if (tokens[i] != base->tokens[i]) {
      g_set_error(
          error, WH_EVAL_ERROR, WH_EVAL_ERROR_MISMATCH,
          "the text differs from the one the base logits were saved for (token %" G_GUINT64_FORMAT
          " is %d here, %d there): use the same text file and a model with the same "
          "tokenizer",
          i, tokens[i], base->tokens[i]);
      return FALSE;
    }
  }
  return TRUE;
}

/* Runs every chunk through a fresh cache and scores it; @observer (may be NULL) watches the
 * matmuls. */
static gboolean
run_chunks(run_state *st, wh_model *model, gint32 bos, wh_matmul_observer observer, GError **error)
{
  const wh_eval_params *p = st->p;
  wh_context_params cp = wh_context_default_params();
  cp.n_ctx = cp.n_batch = st->n_ctx;
  cp.n_threads = p->n_threads;
  cp.kv_type = p->kv_type;
  if (!observer) { /* GPU layers do not report their matmuls: the imatrix runs on the CPU */
    cp.n_gpu_layers = p->n_gpu_layers;
    g_strlcpy(cp.device, p->device ? p->device : "", sizeof(cp.device));
  }
  wh_context *ctx = wh_context_new(model, &cp, error);
  if (!ctx)
    return FALSE;
  wh_context_set_matmul_observer(ctx, observer, st);
  gboolean ok = TRUE;
  gint32 *chunk = g_new(gint32, st->n_ctx);
  if (p->save_logits_path)
    ok = sink_open(st, error);
  if (p->base) {
    st->kld = g_new(double, (gsize)st->n_chunks *scored_rows(st->n_ctx));
    st->base_row = g_new(float, st->n_vocab);
  }
  for (guint32 c = 0; c < st->n_chunks && ok; c++) {
    if (p->should_continue && !p->should_continue(p->user_data)) {
      g_set_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_CANCELLED, "evaluation cancelled");
      ok = FALSE;
      break;
    }
    memcpy(chunk, st->tokens + (gsize)c * st->n_ctx, st->n_ctx * sizeof(gint32));
    if (bos >= 0)
      chunk[0] = bos;
    wh_context_clear(ctx);
    const float *logits = wh_context_decode(ctx, chunk, st->n_ctx, TRUE, error);
    ok = logits && score_chunk(st, c, logits, error);
    if (ok && p->progress)
      p->progress(c + 1, st->n_chunks, exp(st->nll / (double)st->count), p->user_data);
  }
  ok = sink_close(st, ok, error);
  g_free(chunk);
  wh_context_free(ctx);
  return ok;
}

static void
run_state_clear(run_state *st)
{
  g_free(st->sink_tmp);
  g_free(st->row16);
  g_free(st->kld);
  g_free(st->base_row);
  if (st->im)
    g_hash_table_unref(st->im);
}

gboolean
wh_eval_perplexity(wh_model *model, const gint32 *tokens, guint32 n_tokens, gint32 bos,
                   const wh_eval_params *params, wh_eval_result *result, GError **error)
{
  const wh_eval_params defaults = wh_eval_default_params();
  run_state st = {.p = params ? params : &defaults};
  gboolean ok =
      plan_chunks(&st, model, tokens, n_tokens, error) && run_chunks(&st, model, bos, NULL, error);
  if (ok && result)
    finish_result(&st, result);
  run_state_clear(&st);
  return ok;
}

/* --- importance matrix ----------------------------------------------------------------- */

typedef struct {
  guint64 n_cols;
  double *sum2; /* n_cols */
  guint64 count;
} im_entry;

static void
im_entry_free(gpointer p)
{
  im_entry *e = p;
  g_free(e->sum2);
  g_free(e);
}

/* Matmul observer: adds the squares of every input row to the weight's column sums.
 * Shapes: x is n_tokens rows of w->ne[0] floats, ldx floats apart. */
static void
im_observe(const wh_gguf_tensor *w, const float *x, guint64 ldx, guint32 n_tokens,
           gpointer user_data)
{
  run_state *st = user_data;
  if (n_tokens < IMATRIX_MIN_ROWS)
    return;
  im_entry *e = g_hash_table_lookup(st->im, w);
  if (!e) {
    if (!g_str_has_prefix(w->name, "blk.") &&
        !(st->p->imatrix_output && strcmp(w->name, "output.weight") == 0))
      return;
    e = g_new0(im_entry, 1);
    e->n_cols = w->ne[0];
    e->sum2 = g_new0(double, e->n_cols);
    g_hash_table_insert(st->im, (gpointer)w, e);
  }
  for (guint32 t = 0; t < n_tokens; t++) {
    const float *row = x + (gsize)t * ldx;
    for (guint64 c = 0; c < e->n_cols; c++)
      e->sum2[c] += (double)row[c] * row[c];
  }
  e->count += n_tokens;
}

gboolean
wh_eval_imatrix(wh_model *model, const gint32 *tokens, guint32 n_tokens, gint32 bos,
                const wh_eval_params *params, const char *out_path, const char *const *datasets,
                wh_eval_result *result, GError **error)
{
  const wh_eval_params defaults = wh_eval_default_params();
  wh_eval_params p = params ? *params : defaults;
  p.save_logits_path = NULL;
  p.base = NULL;
  run_state st = {.p = &p};
  st.im = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, im_entry_free);
  gboolean ok = plan_chunks(&st, model, tokens, n_tokens, error) &&
                run_chunks(&st, model, bos, im_observe, error);
  if (ok && g_hash_table_size(st.im) == 0) {
    g_set_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_INPUT,
                "no weight multiplication was observed: the model has no blk.* matrices on the "
                "CPU, or the chunks are shorter than %u tokens",
                IMATRIX_MIN_ROWS);
    ok = FALSE;
  }
  if (ok) {
    const guint n = g_hash_table_size(st.im);
    wh_imatrix_entry *entries = g_new0(wh_imatrix_entry, n);
    GPtrArray *owned = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter it;
    gpointer key, value;
    guint i = 0;
    g_hash_table_iter_init(&it, st.im);
    while (g_hash_table_iter_next(&it, &key, &value)) {
      const wh_gguf_tensor *w = key;
      const im_entry *e = value;
      float *sums = g_new(float, e->n_cols), *counts = g_new(float, 1);
      for (guint64 c = 0; c < e->n_cols; c++)
        sums[c] = (float)e->sum2[c];
      counts[0] = (float)e->count;
      g_ptr_array_add(owned, sums);
      g_ptr_array_add(owned, counts);
      entries[i++] = (wh_imatrix_entry){
          .name = w->name, .n_cols = e->n_cols, .n_mat = 1, .in_sum2 = sums, .counts = counts};
    }
    ok = wh_imatrix_save_gguf(out_path, entries, n, datasets, st.n_chunks, st.n_ctx, error);
    g_ptr_array_unref(owned);
    g_free(entries);
  }
  if (ok && result)
    finish_result(&st, result);
  run_state_clear(&st);
  return ok;
}
