/* eval.h — measuring a model on a text: perplexity, KL divergence against saved base logits,
 * and importance matrices (imatrix) for the quantizer.
 *
 * Design note
 * -----------
 * Owns: the reference evaluation method and the saved-logits file format.
 *  - Chunks: the token stream (tokenized with BOS by the caller) is cut into
 *    floor(n_tokens / n_ctx) chunks of n_ctx tokens (at most max_chunks); each chunk runs in a
 *    fresh KV cache with its first token replaced by BOS (when the model has one), in one batch.
 *  - Perplexity scores the second half of each chunk: the log-probability of text token j+1
 *    from the logits at position j, for j in [n_ctx/2, n_ctx-1). PPL = exp(mean NLL); its
 *    error is the standard error of the mean NLL carried through exp.
 *  - KL divergence compares the softmax of every scored position with the base model's
 *    (saved by an earlier run): KL(base || this) = sum_i p_base(i) (log p_base(i) - log p(i)).
 *    Mean (with standard error), maximum, percentiles and minimum over positions, and how
 *    often both models put the same token on top.
 *  - Importance matrices: for every matmul weight whose name starts with "blk." (and
 *    output.weight on request), the sum over all tokens of every chunk of the squared F32 input
 *    activation per input column, and the number of token rows (gguf-container.md §8);
 *    multiplications with fewer than 16 token rows are skipped, as the reference does.
 *    Collected through the model context's matmul observer; written with wh_imatrix_save_gguf().
 *
 * Saved-logits file (".logits", version 1; all little-endian):
 *    offset 0   8 bytes  magic "WHLOGITS"
 *           8   u32      version = 1
 *          12   u32      n_vocab
 *          16   u32      n_ctx (tokens per chunk, >= 4)
 *          20   u32      n_chunks (>= 1)
 *          24   u32      encoding = 1: IEEE half-precision log-softmax values
 *          28   u32      reserved, 0
 *          32   i32      tokens[n_chunks * n_ctx]: the text tokens of every chunk (as in the
 *                        text, i.e. before the first one is replaced by BOS)
 *          then for each chunk, for each scored position j in [n_ctx/2, n_ctx-1):
 *                 u16    logprob[n_vocab]: log softmax of the logits at j, as fp16 (finite)
 *    The file size is exactly that; anything else is refused. Half precision keeps log-probs
 *    near 0 (the tokens that carry the probability mass) to 2^-11 relative, so the KLD of a
 *    model against its own saved logits is below 1e-5; readers renormalise each row.
 *
 * Promises: results do not depend on the thread count beyond float rounding; files are written
 * to a temporary name beside the target and renamed on success (removed on failure/cancel);
 * the logits reader checks every size and value before use, so arbitrary bytes are safe.
 * Does not: tokenize (the caller passes tokens), or use GPU layers (matmul observers are CPU).
 *
 * Thread-safety: the functions may run on any thread; callbacks run on that thread. A
 * wh_eval_logits is immutable (getters thread-safe).
 */
#pragma once

#include <glib.h>
#include "model/model.h"

G_BEGIN_DECLS

#define WH_EVAL_ERROR (wh_eval_error_quark())
GQuark wh_eval_error_quark(void);

typedef enum {
  WH_EVAL_ERROR_IO,        /* reading or writing a file failed */
  WH_EVAL_ERROR_FORMAT,    /* a saved-logits file is malformed */
  WH_EVAL_ERROR_MISMATCH,  /* base logits do not fit this model / text / chunk size */
  WH_EVAL_ERROR_INPUT,     /* bad parameters or too little text */
  WH_EVAL_ERROR_CANCELLED, /* should_continue returned FALSE */
} wh_eval_error;

/* --- saved logits -------------------------------------------------------------------- */

typedef struct wh_eval_logits wh_eval_logits;

/* Maps and validates a saved-logits file (format in the design note). */
wh_eval_logits *wh_eval_logits_open(const char *path, GError **error);
/* Same from memory (the bytes are referenced); @name is used in messages (may be NULL). */
wh_eval_logits *wh_eval_logits_new_from_bytes(GBytes *bytes, const char *name, GError **error);
void wh_eval_logits_free(wh_eval_logits *l); /* NULL-safe */

guint32 wh_eval_logits_n_vocab(const wh_eval_logits *l);
guint32 wh_eval_logits_n_ctx(const wh_eval_logits *l);
guint32 wh_eval_logits_n_chunks(const wh_eval_logits *l);
/* Scored rows per chunk: n_ctx - 1 - n_ctx/2. */
guint32 wh_eval_logits_rows_per_chunk(const wh_eval_logits *l);
/* n_chunks * n_ctx text tokens (owned by @l). */
const gint32 *wh_eval_logits_tokens(const wh_eval_logits *l);
/* Writes the n_vocab log-probabilities of scored row @row (0-based, < rows_per_chunk) of chunk
 * @chunk into @out, as stored (not renormalised). */
void wh_eval_logits_get_row(const wh_eval_logits *l, guint32 chunk, guint32 row, float *out);

/* --- perplexity, KL divergence, imatrix ---------------------------------------------- */

/* After each chunk: chunks done, chunks in all, perplexity so far. */
typedef void (*wh_eval_progress_func)(guint32 done, guint32 n_chunks, double ppl,
                                      gpointer user_data);
/* Polled between chunks; FALSE stops the run (WH_EVAL_ERROR_CANCELLED). */
typedef gboolean (*wh_eval_continue_func)(gpointer user_data);

typedef struct {
  guint32 n_ctx;      /* tokens per chunk; 0 = 512 (or the base logits' n_ctx) */
  guint32 max_chunks; /* 0 = every whole chunk of the text */
  int n_threads;      /* 0 = the model's default */
  wh_kv_type kv_type; /* KV cache type (F16 by default) */
  /* perplexity only */
  guint32 n_gpu_layers; /* layers on the GPU (model.h, wh_context_params); imatrix: CPU only */
  const char *device;   /* GPU device name, NULL or "" = the first */
  const char *save_logits_path; /* write the scored rows' log-softmax here, or NULL */
  const wh_eval_logits *base;   /* compute KL divergence against these, or NULL */
  /* imatrix only */
  gboolean imatrix_output;               /* also collect output.weight */
  wh_eval_progress_func progress;        /* may be NULL */
  wh_eval_continue_func should_continue; /* may be NULL */
  gpointer user_data;
} wh_eval_params;

wh_eval_params wh_eval_default_params(void);

/* Indexes of wh_eval_result.kld_percentile (the levels the reference prints). */
enum {
  WH_EVAL_KLD_MAX,  /* 100% */
  WH_EVAL_KLD_P999, /* 99.9% */
  WH_EVAL_KLD_P99,
  WH_EVAL_KLD_P95,
  WH_EVAL_KLD_P90,
  WH_EVAL_KLD_MEDIAN,
  WH_EVAL_KLD_P10,
  WH_EVAL_KLD_P5,
  WH_EVAL_KLD_P1,
  WH_EVAL_KLD_P01, /* 0.1% */
  WH_EVAL_KLD_MIN,
  WH_EVAL_KLD_N_LEVELS,
};

/* Percentile level (0..1) of each WH_EVAL_KLD_* index. */
extern const double wh_eval_kld_levels[WH_EVAL_KLD_N_LEVELS];

typedef struct {
  guint32 n_ctx, n_chunks;
  guint64 n_scored;    /* positions scored */
  double ppl, ppl_err; /* PPL = exp(mean NLL) +/- error */
  double nll_mean;
  /* with base logits */
  gboolean has_kld;
  double base_ppl, base_ppl_err; /* the base model's perplexity, from its saved log-probs */
  double kld_mean, kld_err;
  double kld_percentile[WH_EVAL_KLD_N_LEVELS];
  double same_top, same_top_err; /* fraction of positions with the same argmax, and its error */
  /* Δp = p(next text token) here minus in the base, over the scored positions */
  double dp_mean, dp_err, dp_rms;
} wh_eval_result;

/* Perplexity of @model on @tokens (a text tokenized with BOS), with optional saving of the
 * scored log-probabilities and optional KL divergence against @params->base (whose tokens must
 * equal the chunks of @tokens, and whose n_vocab must equal the model's; at most its n_chunks
 * are scored). @bos replaces the first token of each chunk (-1: none). Fills @result.
 * Errors: WH_EVAL_ERROR_INPUT (fewer tokens than one chunk), _MISMATCH, _IO, _CANCELLED, or the
 * model's errors. */
gboolean wh_eval_perplexity(wh_model *model, const gint32 *tokens, guint32 n_tokens, gint32 bos,
                            const wh_eval_params *params, wh_eval_result *result, GError **error);

/* Importance matrix of @model on the calibration @tokens (chunks as above; every token of a
 * chunk is accumulated), written to @out_path as a GGUF imatrix with @datasets (a
 * NULL-terminated list of calibration file names) and chunk_count/chunk_size. @result (may be
 * NULL) receives the perplexity of the same run (no KLD). Errors as wh_eval_perplexity(), and
 * the imatrix writer's. */
gboolean wh_eval_imatrix(wh_model *model, const gint32 *tokens, guint32 n_tokens, gint32 bos,
                         const wh_eval_params *params, const char *out_path,
                         const char *const *datasets, wh_eval_result *result, GError **error);

G_END_DECLS
