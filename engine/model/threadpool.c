/* threadpool.c — persistent workers with a spin-then-sleep start signal.
 *
 * A run publishes (fn, data) and bumps `generation` (G). Workers watch
 * `generation`: they spin on it for WH_SPIN_ITERS polls, then sleep on `cond`.
 * The wake-up is lock-free when nobody sleeps: a worker registers in
 * `n_sleeping` (under the mutex) before re-checking `generation`, and the
 * runner checks `n_sleeping` after bumping `generation`; with sequentially
 * consistent atomics one of the two sees the other, so a wake-up is never lost.
 *
 * Who runs generation G: every worker i has a claim word `claim[i]`, equal to
 * G - 1 when G starts. The worker takes G with a CAS G-1 -> G, runs fn and
 * stores G in `done[i]`. In a dynamic run, the runner, once its own fn call
 * has returned (all work handed out), excuses the workers that have not
 * started with the same CAS; it then waits only for the workers that won the
 * CAS. An excused worker sees claim[i] == G, skips G and goes back to waiting.
 * So a worker the OS has preempted costs a dynamic run nothing, and fn/data
 * are never read for a generation the worker did not win (the runner cannot
 * start G+1 before that worker's done[i] == G).
 */
#include "config.h"

#include "model/threadpool.h"

#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>

#define WH_SPIN_ITERS 20000
#define WH_MAX_THREADS 256

#if defined(__x86_64__) || defined(__i386__)
#define wh_cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define wh_cpu_relax() __asm__ __volatile__("yield")
#else
#define wh_cpu_relax() ((void)0)
#endif

typedef struct {
  wh_threadpool *pool;
  int ith;
  /* own cache line: written by this worker (and the runner's CAS) only */
  alignas(64) atomic_uint claim; /* last generation taken or excused */
  atomic_uint done;              /* last generation finished */
} worker_arg;

struct wh_threadpool {
  int n_threads;
  GThread **threads;
  worker_arg *args;

  wh_threadpool_func fn;
  void *data;

  alignas(64) atomic_uint generation;
  atomic_int n_sleeping;
  atomic_bool stop;

  GMutex mutex;
  GCond cond;
};

static gpointer
worker_main(gpointer user_data)
{
  worker_arg *arg = user_data;
  wh_threadpool *pool = arg->pool;
  unsigned seen = 0;

  for (;;) {
    unsigned gen = atomic_load(&pool->generation);
    for (int spin = 0; gen == seen && spin < WH_SPIN_ITERS; spin++) {
      wh_cpu_relax();
      gen = atomic_load(&pool->generation);
    }
    if (gen == seen) {
      g_mutex_lock(&pool->mutex);
      atomic_fetch_add(&pool->n_sleeping, 1);
      while ((gen = atomic_load(&pool->generation)) == seen && !atomic_load(&pool->stop))
        g_cond_wait(&pool->cond, &pool->mutex);
      atomic_fetch_sub(&pool->n_sleeping, 1);
      g_mutex_unlock(&pool->mutex);
    }
    if (atomic_load(&pool->stop))
      return NULL;
    seen = gen;
    /* take generation gen unless the runner excused us (or it is already over) */
    unsigned expected = gen - 1;
    if (!atomic_compare_exchange_strong(&arg->claim, &expected, gen))
      continue;
    pool->fn(arg->ith, pool->n_threads, pool->data);
    atomic_store(&arg->done, gen);
  }
}

wh_threadpool *
wh_threadpool_new(int n_threads)
{
  wh_threadpool *pool = g_new0(wh_threadpool, 1);
  pool->n_threads = CLAMP(n_threads, 1, WH_MAX_THREADS);
  g_mutex_init(&pool->mutex);
  g_cond_init(&pool->cond);
  pool->threads = g_new0(GThread *, pool->n_threads);
  pool->args = g_aligned_alloc0(pool->n_threads, sizeof(worker_arg), 64);
  for (int i = 1; i < pool->n_threads; i++) {
    pool->args[i].pool = pool;
    pool->args[i].ith = i;
    pool->threads[i] = g_thread_new("wh-compute", worker_main, &pool->args[i]);
  }
  return pool;
}

void
wh_threadpool_free(wh_threadpool *pool)
{
  if (!pool)
    return;
  g_mutex_lock(&pool->mutex);
  atomic_store(&pool->stop, 1);
  g_cond_broadcast(&pool->cond);
  g_mutex_unlock(&pool->mutex);
  for (int i = 1; i < pool->n_threads; i++)
    g_thread_join(pool->threads[i]);
  g_mutex_clear(&pool->mutex);
  g_cond_clear(&pool->cond);
  g_free(pool->threads);
  g_aligned_free(pool->args);
  g_free(pool);
}

int
wh_threadpool_size(const wh_threadpool *pool)
{
  return pool->n_threads;
}

/* Publishes a run and calls fn on the calling thread; returns its generation. */
static unsigned
run_start(wh_threadpool *pool, wh_threadpool_func fn, void *data)
{
  pool->fn = fn;
  pool->data = data;
  unsigned gen = atomic_fetch_add(&pool->generation, 1) + 1;
  if (atomic_load(&pool->n_sleeping) > 0) {
    g_mutex_lock(&pool->mutex);
    g_cond_broadcast(&pool->cond);
    g_mutex_unlock(&pool->mutex);
  }
  fn(0, pool->n_threads, data);
  return gen;
}

/* Waits until the worker of @arg has finished generation @gen. */
static void
wait_done(worker_arg *arg, unsigned gen)
{
  for (unsigned spin = 0; atomic_load(&arg->done) != gen; spin++) {
    if (spin < WH_SPIN_ITERS)
      wh_cpu_relax();
    else
      sched_yield();
  }
}

void
wh_threadpool_run(wh_threadpool *pool, wh_threadpool_func fn, void *data)
{
  if (pool->n_threads == 1) {
    fn(0, 1, data);
    return;
  }
  unsigned gen = run_start(pool, fn, data);
  for (int i = 1; i < pool->n_threads; i++)
    wait_done(&pool->args[i], gen);
}

void
wh_threadpool_run_dynamic(wh_threadpool *pool, wh_threadpool_func fn, void *data)
{
  if (pool->n_threads == 1) {
    fn(0, 1, data);
    return;
  }
  unsigned gen = run_start(pool, fn, data);
  for (int i = 1; i < pool->n_threads; i++) {
    unsigned expected = gen - 1;
    if (!atomic_compare_exchange_strong(&pool->args[i].claim, &expected, gen))
      wait_done(&pool->args[i], gen); /* it took the run: wait for it */
  }
}
