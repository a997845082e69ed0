/* test-sample.c — the sampling chain: greedy, truncations, penalties,
 * temperature and seeded determinism. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "sample/sample.h"
#include "wh-test-util.h"

static wh_sampler_params
plain_params(void)
{
  wh_sampler_params p = wh_sampler_default_params();
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 1234;
  return p;
}

static void
test_greedy(void)
{
  const float logits[6] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f, -7.0f};
  float copy[6];
  memcpy(copy, logits, sizeof(copy));
  wh_sampler_params p = plain_params();
  p.temperature = 0.0f;
  wh_sampler *s = wh_sampler_new(&p);
  for (int i = 0; i < 5; i++)
    g_assert_cmpint(wh_sampler_sample(s, logits, 6), ==, 1);   /* lowest id wins the tie */
  g_assert_cmpmem(copy, sizeof(copy), logits, sizeof(logits)); /* not modified */
  g_assert_cmpint(wh_sample_argmax(logits, 6), ==, 1);
  wh_sampler_free(s);

  /* top_k = 1 is greedy at any temperature */
  p = plain_params();
  p.top_k = 1;
  p.temperature = 5.0f;
  s = wh_sampler_new(&p);
  for (int i = 0; i < 20; i++)
    g_assert_cmpint(wh_sampler_sample(s, logits, 6), ==, 1);
  wh_sampler_free(s);
}

/* Draw frequencies follow softmax(logits / T). */
static void
test_distribution(void)
{
  const float logits[4] = {1.0f, 0.0f, -1.0f, 0.5f};
  const float temps[2] = {1.0f, 0.5f};
  for (int k = 0; k < 2; k++) {
    wh_sampler_params p = plain_params();
    p.temperature = temps[k];
    wh_sampler *s = wh_sampler_new(&p);
    int counts[4] = {0};
    const int N = 40000;
    for (int i = 0; i < N; i++)
      counts[wh_sampler_sample(s, logits, 4)]++;
    double z = 0;
    for (int i = 0; i < 4; i++)
      z += exp(logits[i] / temps[k]);
    for (int i = 0; i < 4; i++) {
      double expect = exp(logits[i] / temps[k]) / z;
      double sd = sqrt(expect * (1 - expect) / N);
      g_assert_cmpfloat(fabs((double)counts[i] / N - expect), <, 5 * sd + 1e-9);
    }
    wh_sampler_free(s);
  }
}

static void
test_seed(void)
{
  float logits[50];
  for (int i = 0; i < 50; i++)
    logits[i] = (float)sin(i * 0.7) * 2.0f;
  wh_sampler_params p = plain_params();
  gint32 a[64], b[64], c[64];
  wh_sampler *s1 = wh_sampler_new(&p), *s2 = wh_sampler_new(&p);
  p.seed = 99;
  wh_sampler *s3 = wh_sampler_new(&p);
  for (int i = 0; i < 64; i++) {
    a[i] = wh_sampler_sample(s1, logits, 50);
    b[i] = wh_sampler_sample(s2, logits, 50);
    c[i] = wh_sampler_sample(s3, logits, 50);
  }
  g_assert_cmpmem(a, sizeof(a), b, sizeof(b));
  g_assert_true(memcmp(a, c, sizeof(a)) != 0);
  /* reset restarts the sequence */
  wh_sampler_reset(s1);
  for (int i = 0; i < 64; i++)
    g_assert_cmpint(wh_sampler_sample(s1, logits, 50), ==, a[i]);
  g_assert_cmpuint(wh_sampler_get_seed(s1), ==, 1234);
  wh_sampler_free(s1);
  wh_sampler_free(s2);
  wh_sampler_free(s3);
}

/* Collects which tokens a sampler can produce in many draws. */
static void
support(const wh_sampler_params *p, const float *logits, int n, gboolean *seen)
{
  wh_sampler *s = wh_sampler_new(p);
  memset(seen, 0, sizeof(gboolean) * n);
  for (int i = 0; i < 5000; i++)
    seen[wh_sampler_sample(s, logits, n)] = TRUE;
  wh_sampler_free(s);
}

static void
test_truncation(void)
{
  /* probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625 (ids shuffled) */
  const float logits[5] = {logf(0.125f), logf(0.5f), logf(0.0625f), logf(0.25f), logf(0.0625f)};
  gboolean seen[5];
  wh_sampler_params p = plain_params();

  p.top_k = 2;
  support(&p, logits, 5, seen);
  g_assert_true(seen[1] && seen[3] && !seen[0] && !seen[2] && !seen[4]);

  p = plain_params();
  p.top_p = 0.8f; /* 0.5 + 0.25 = 0.75 < 0.8: needs the third */
  support(&p, logits, 5, seen);
  g_assert_true(seen[1] && seen[3] && seen[0] && !seen[2] && !seen[4]);
  p.top_p = 0.7f; /* reached with two */
  support(&p, logits, 5, seen);
  g_assert_true(seen[1] && seen[3] && !seen[0]);

  p = plain_params();
  p.min_p = 0.2f; /* keeps p >= 0.1 */
  support(&p, logits, 5, seen);
  g_assert_true(seen[1] && seen[3] && seen[0] && !seen[2] && !seen[4]);

  p = plain_params(); /* nothing truncated: every token appears */
  support(&p, logits, 5, seen);
  for (int i = 0; i < 5; i++)
    g_assert_true(seen[i]);
}

static void
test_penalties(void)
{
  const float logits[4] = {2.0f, 1.9f, -0.5f, -0.6f};
  wh_sampler_params p = plain_params();
  p.temperature = 0.0f;
  p.repeat_penalty = 1.1f;
  wh_sampler *s = wh_sampler_new(&p);
  g_assert_cmpint(wh_sampler_sample(s, logits, 4), ==, 0);
  wh_sampler_accept(s, 0); /* 2.0 / 1.1 = 1.818 < 1.9 */
  g_assert_cmpint(wh_sampler_sample(s, logits, 4), ==, 1);
  wh_sampler_free(s);

  /* negative logits are multiplied: -0.5 * 1.3 = -0.65 < -0.6 */
  const float neg[2] = {-0.5f, -0.6f};
  p.repeat_penalty = 1.3f;
  s = wh_sampler_new(&p);
  wh_sampler_accept(s, 0);
  g_assert_cmpint(wh_sampler_sample(s, neg, 2), ==, 1);
  wh_sampler_free(s);

  /* frequency: 3 occurrences x 0.05 = 0.15 moves 2.0 below 1.9; presence 0.05 alone
   * (counted once) does not */
  p = plain_params();
  p.temperature = 0.0f;
  p.presence_penalty = 0.05f;
  s = wh_sampler_new(&p);
  for (int i = 0; i < 3; i++)
    wh_sampler_accept(s, 0);
  g_assert_cmpint(wh_sampler_sample(s, logits, 4), ==, 0);
  wh_sampler_free(s);
  p.presence_penalty = 0.0f;
  p.frequency_penalty = 0.05f;
  s = wh_sampler_new(&p);
  for (int i = 0; i < 3; i++)
    wh_sampler_accept(s, 0);
  g_assert_cmpint(wh_sampler_sample(s, logits, 4), ==, 1);
  /* the window: after 64 other tokens, token 0 is forgotten */
  for (int i = 0; i < 64; i++)
    wh_sampler_accept(s, 3);
  g_assert_cmpint(wh_sampler_sample(s, logits, 4), ==, 0);
  wh_sampler_free(s);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/sample/greedy", test_greedy);
  g_test_add_func("/sample/distribution", test_distribution);
  g_test_add_func("/sample/seed", test_seed);
  g_test_add_func("/sample/truncation", test_truncation);
  g_test_add_func("/sample/penalties", test_penalties);
  return g_test_run();
}
