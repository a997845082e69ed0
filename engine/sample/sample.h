/* sample.h — choosing the next token from a vector of logits.
 *
 * Design note
 * -----------
 * Owns: the sampling chain (penalties -> top-k -> top-p -> min-p ->
 * temperature -> draw), the recent-token history the penalties look at, and
 * a private random generator.
 * Promises:
 *  - Deterministic: the same params (same seed), the same logits and the
 *    same accepted tokens give the same choices, on every machine.
 *  - temperature <= 0 is greedy (argmax after penalties; lowest id wins ties).
 *  - Nothing is allocated per call once the candidate buffer has grown to
 *    the vocabulary size (first call).
 * Does not: stop generation (stop strings, EOS and max tokens belong to the
 * caller), or modify the caller's logits.
 *
 * Thread-safety: a sampler is used by one thread at a time.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Seed value that asks for a random seed (drawn from g_random at creation). */
#define WH_SAMPLER_SEED_RANDOM G_MAXUINT64

typedef struct {
  float temperature;       /* <= 0: greedy. Default 0.8 */
  int top_k;               /* keep the k most likely; <= 0 disables. Default 40 */
  float top_p;             /* nucleus mass; >= 1 disables. Default 0.95 */
  float min_p;             /* keep p >= min_p * p_max; <= 0 disables. Default 0.05 */
  float repeat_penalty;    /* divides positive / multiplies negative logits of recent
                            * tokens; 1 disables. Default 1.0 */
  float frequency_penalty; /* subtracted once per occurrence in the window. Default 0 */
  float presence_penalty;  /* subtracted once if present in the window. Default 0 */
  int penalty_last_n;      /* window of recent tokens for the penalties; 0 disables,
                            * -1 means all accepted tokens. Default 64 */
  guint64 seed;            /* WH_SAMPLER_SEED_RANDOM or a fixed seed. Default random */
} wh_sampler_params;

typedef struct wh_sampler wh_sampler;

wh_sampler_params wh_sampler_default_params(void);

/* A new sampler. Never fails; free with wh_sampler_free(). */
wh_sampler *wh_sampler_new(const wh_sampler_params *params);
void wh_sampler_free(wh_sampler *sampler);

/* The seed actually used (the drawn one for WH_SAMPLER_SEED_RANDOM). */
guint64 wh_sampler_get_seed(const wh_sampler *sampler);

/* Picks a token id in [0, n_vocab) from @logits (not modified). Does not
 * record it: call wh_sampler_accept() with the token actually used. */
gint32 wh_sampler_sample(wh_sampler *sampler, const float *logits, int n_vocab);

/* Records @token in the penalty history (prompt tokens may be accepted too,
 * as the reference does for the penalty window). */
void wh_sampler_accept(wh_sampler *sampler, gint32 token);

/* Forgets the history and restarts the random sequence from the seed. */
void wh_sampler_reset(wh_sampler *sampler);

/* Index of the largest value of @v[0..n) (lowest index on ties). */
int wh_sample_argmax(const float *v, int n);

G_END_DECLS
