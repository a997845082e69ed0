/* test-threadpool.c — the compute pool: every run is a barrier, static runs call every thread
 * index exactly once, dynamic runs hand out every work item exactly once even when workers are
 * excused, and both kinds interleave safely (thousands of back-to-back runs, more threads than
 * cores so workers get preempted, and sleeping workers woken again). */
#include "config.h"

#include "model/threadpool.h"

#include <glib.h>

enum { N_ITEMS = 257 };

typedef struct {
  gint calls[16];      /* fn calls per thread index in this run */
  gint items[N_ITEMS]; /* times each work item was done */
  gint next;           /* next work item (dynamic runs) */
  gint n_items;
} run_data;

static void
static_fn(int ith, int nth, void *data)
{
  run_data *d = data;
  g_assert_cmpint(nth, <=, 16);
  g_atomic_int_inc(&d->calls[ith]);
  /* a little work so that threads overlap */
  gsize b, e;
  wh_threadpool_split((gsize)d->n_items, ith, nth, &b, &e);
  for (gsize i = b; i < e; i++)
    g_atomic_int_inc(&d->items[i]);
}

static void
dynamic_fn(int ith, int nth, void *data)
{
  run_data *d = data;
  g_assert_cmpint(nth, <=, 16);
  g_atomic_int_inc(&d->calls[ith]);
  for (;;) {
    gint i = g_atomic_int_add(&d->next, 1);
    if (i >= d->n_items)
      break;
    g_atomic_int_inc(&d->items[i]);
  }
}

static void
check_pool(int n_threads, int n_runs)
{
  wh_threadpool *pool = wh_threadpool_new(n_threads);
  g_assert_cmpint(wh_threadpool_size(pool), ==, n_threads);
  gint64 excused = 0;
  for (int r = 0; r < n_runs; r++) {
    run_data d = {.n_items = 1 + r % N_ITEMS};
    const gboolean dynamic = r % 3 != 0;
    if (dynamic)
      wh_threadpool_run_dynamic(pool, dynamic_fn, &d);
    else
      wh_threadpool_run(pool, static_fn, &d);
    /* after the call returns nothing touches d any more: the counts are final */
    for (int i = 0; i < d.n_items; i++)
      g_assert_cmpint(d.items[i], ==, 1);
    for (int i = d.n_items; i < N_ITEMS; i++)
      g_assert_cmpint(d.items[i], ==, 0);
    g_assert_cmpint(d.calls[0], ==, 1); /* the caller always takes part */
    for (int t = 1; t < n_threads; t++) {
      if (dynamic)
        g_assert_cmpint(d.calls[t], <=, 1);
      else
        g_assert_cmpint(d.calls[t], ==, 1);
      excused += d.calls[t] == 0;
    }
    if (r % 1000 == 999)
      g_usleep(20000); /* let the workers fall asleep, then wake them again */
  }
  g_test_message("%d threads: %" G_GINT64_FORMAT " worker calls excused in %d runs", n_threads,
                 excused, n_runs);
  wh_threadpool_free(pool);
}

static void
test_single(void)
{
  check_pool(1, 100);
}

static void
test_two(void)
{
  check_pool(2, 3000);
}

static void
test_oversubscribed(void)
{
  check_pool(6, 1500);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/threadpool/single", test_single);
  g_test_add_func("/threadpool/two", test_two);
  g_test_add_func("/threadpool/oversubscribed", test_oversubscribed);
  return g_test_run();
}
