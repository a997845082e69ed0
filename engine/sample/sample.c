/* sample.c — the sampling chain. See sample.h for the contract.
 *
 * The chain follows the order people know from the reference tools:
 * penalties on the raw logits, then top-k on logits, top-p and min-p on the
 * softmax of the (penalised) logits, then temperature, softmax and one draw.
 * Every step works on a candidate list sorted by logit, descending, so the
 * truncations are prefixes.
 */
#include "config.h"

#include "sample/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  gint32 id;
  float logit;
  float p;
} candidate;

struct wh_sampler {
  wh_sampler_params params;
  guint64 seed;
  guint64 rng;
  candidate *cand;
  int cand_cap;
  GArray *history; /* gint32, oldest first */
};

wh_sampler_params
wh_sampler_default_params(void)
{
  wh_sampler_params p = {
      .temperature = 0.8f,
      .top_k = 40,
      .top_p = 0.95f,
      .min_p = 0.05f,
      .repeat_penalty = 1.0f,
      .frequency_penalty = 0.0f,
      .presence_penalty = 0.0f,
      .penalty_last_n = 64,
      .seed = WH_SAMPLER_SEED_RANDOM,
  };
  return p;
}

/* splitmix64: small, fast, and identical everywhere. */
static guint64
rng_next(guint64 *state)
{
  guint64 z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform double in [0, 1). */
static double
rng_uniform(guint64 *state)
{
  return (double)(rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

wh_sampler *
wh_sampler_new(const wh_sampler_params *params)
{
  wh_sampler *s = g_new0(wh_sampler, 1);
  s->params = params ? *params : wh_sampler_default_params();
  s->seed = s->params.seed;
  if (s->seed == WH_SAMPLER_SEED_RANDOM)
    s->seed = ((guint64)g_random_int() << 32) | g_random_int();
  s->rng = s->seed;
  s->history = g_array_new(FALSE, FALSE, sizeof(gint32));
  return s;
}

void
wh_sampler_free(wh_sampler *sampler)
{
  if (!sampler)
    return;
  g_free(sampler->cand);
  g_array_unref(sampler->history);
  g_free(sampler);
}

guint64
wh_sampler_get_seed(const wh_sampler *sampler)
{
  return sampler->seed;
}

void
wh_sampler_accept(wh_sampler *sampler, gint32 token)
{
  g_array_append_val(sampler->history, token);
  /* Keep the history bounded: only the last penalty_last_n matter. */
  int keep = sampler->params.penalty_last_n;
  if (keep >= 0 && sampler->history->len > (guint)keep + 1024)
    g_array_remove_range(sampler->history, 0, sampler->history->len - (guint)keep);
}

void
wh_sampler_reset(wh_sampler *sampler)
{
  g_array_set_size(sampler->history, 0);
  sampler->rng = sampler->seed;
}

int
wh_sample_argmax(const float *v, int n)
{
  int best = 0;
  for (int i = 1; i < n; i++)
    if (v[i] > v[best])
      best = i;
  return best;
}

static int
cmp_candidate_desc(const void *a, const void *b)
{
  const candidate *x = a, *y = b;
  if (x->logit != y->logit)
    return x->logit > y->logit ? -1 : 1;
  return x->id < y->id ? -1 : (x->id > y->id);
}

/* Moves the k largest candidates (by cmp_candidate_desc) to the front, in
 * order. Quickselect on [0, n), then sorts the prefix. */
static void
select_top_k(candidate *c, int n, int k)
{
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    candidate pivot = c[lo + (hi - lo) / 2];
    int i = lo, j = hi;
    while (i <= j) {
      while (cmp_candidate_desc(&c[i], &pivot) < 0)
        i++;
      while (cmp_candidate_desc(&c[j], &pivot) > 0)
        j--;
      if (i <= j) {
        candidate t = c[i];
        c[i] = c[j];
        c[j] = t;
        i++;
        j--;
      }
    }
    if (k - 1 <= j)
      hi = j;
    else if (k - 1 >= i)
      lo = i;
    else
      break;
  }
  qsort(c, (size_t)k, sizeof(candidate), cmp_candidate_desc);
}

/* Fills p of the first n (sorted) candidates with softmax(logit / temp). */
static void
softmax_sorted(candidate *c, int n, float temp)
{
  double sum = 0.0;
  float max = c[0].logit;
  for (int i = 0; i < n; i++) {
    c[i].p = expf((c[i].logit - max) / temp);
    sum += c[i].p;
  }
  for (int i = 0; i < n; i++)
    c[i].p = (float)(c[i].p / sum);
}

static void
apply_penalties(wh_sampler *s, int n_vocab)
{
  const wh_sampler_params *p = &s->params;
  if (p->penalty_last_n == 0 || s->history->len == 0)
    return;
  if (p->repeat_penalty == 1.0f && p->frequency_penalty == 0.0f && p->presence_penalty == 0.0f)
    return;
  guint n = s->history->len;
  guint start =
      (p->penalty_last_n < 0 || (guint)p->penalty_last_n >= n) ? 0 : n - (guint)p->penalty_last_n;
  const gint32 *h = (const gint32 *)s->history->data;
  /* The candidate list is still in id order here: cand[id].id == id. Count
   * occurrences in the .p field (free until the softmax). */
  for (guint i = start; i < n; i++)
    if (h[i] >= 0 && h[i] < n_vocab)
      s->cand[h[i]].p += 1.0f;
  for (guint i = start; i < n; i++) {
    if (h[i] < 0 || h[i] >= n_vocab)
      continue;
    candidate *c = &s->cand[h[i]];
    if (c->p == 0.0f)
      continue; /* already penalised */
    if (c->logit <= 0.0f)
      c->logit *= p->repeat_penalty;
    else
      c->logit /= p->repeat_penalty;
    c->logit -= c->p * p->frequency_penalty + p->presence_penalty;
    c->p = 0.0f;
  }
}

gint32
wh_sampler_sample(wh_sampler *s, const float *logits, int n_vocab)
{
  g_return_val_if_fail(n_vocab > 0, 0);
  const wh_sampler_params *p = &s->params;

  if (s->cand_cap < n_vocab) {
    g_free(s->cand);
    s->cand = g_new(candidate, n_vocab);
    s->cand_cap = n_vocab;
  }
  for (int i = 0; i < n_vocab; i++) {
    s->cand[i].id = i;
    s->cand[i].logit = logits[i];
    s->cand[i].p = 0.0f;
  }
  apply_penalties(s, n_vocab);

  candidate *c = s->cand;
  int n = n_vocab;

  if (p->temperature <= 0.0f) {
    int best = 0;
    for (int i = 1; i < n; i++)
      if (c[i].logit > c[best].logit)
        best = i;
    return c[best].id;
  }

  if (p->top_k > 0 && p->top_k < n) {
    select_top_k(c, n, p->top_k);
    n = p->top_k;
  } else {
    qsort(c, (size_t)n, sizeof(candidate), cmp_candidate_desc);
  }

  if (p->top_p < 1.0f) {
    softmax_sorted(c, n, 1.0f);
    double cum = 0.0;
    int keep = n;
    for (int i = 0; i < n; i++) {
      cum += c[i].p;
      if (cum >= p->top_p) {
        keep = i + 1;
        break;
      }
    }
    n = keep;
  }

  if (p->min_p > 0.0f) {
    /* p_i >= min_p * p_max  <=>  logit_i >= logit_max + log(min_p) */
    float bound = c[0].logit + logf(p->min_p);
    int keep = 1;
    while (keep < n && c[keep].logit >= bound)
      keep++;
    n = keep;
  }

  softmax_sorted(c, n, p->temperature);
  double r = rng_uniform(&s->rng), cum = 0.0;
  for (int i = 0; i < n; i++) {
    cum += c[i].p;
    if (r < cum)
      return c[i].id;
  }
  return c[n - 1].id;
}
