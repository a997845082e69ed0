/* threadpool.h — the persistent compute pool every forward pass runs on.
 *
 * Design note
 * -----------
 * Owns: n_threads - 1 worker threads, created once by wh_threadpool_new() and
 * kept until wh_threadpool_free(). The calling thread is worker 0.
 * Promises:
 *  - wh_threadpool_run(pool, fn, data) calls fn(ith, nth, data) once for every
 *    ith in [0, nth) (nth = the pool size), concurrently, and returns when all
 *    calls have returned: every run is a full barrier.
 *  - wh_threadpool_run_dynamic() is the same for self-scheduling work, except
 *    that workers which have not started when the caller's share is done are
 *    skipped (robust to preemption on a loaded machine).
 *  - Workers spin for a short while after a run (a matmul is usually followed
 *    by another within microseconds) and then sleep on a condition variable,
 *    so an idle pool costs no CPU.
 *  - No allocation after wh_threadpool_new(): runs are safe in hot loops.
 * Does not: queue work (one run at a time, from one thread), or know what the
 * work is.
 *
 * Thread-safety: a pool is driven by one thread at a time; fn must be
 * thread-safe for distinct ith.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct wh_threadpool wh_threadpool;

/* Called once per thread index. nth is the same for every call of a run. */
typedef void (*wh_threadpool_func)(int ith, int nth, void *data);

/* Creates a pool of @n_threads (clamped to 1..256) including the caller.
 * Never fails (GLib aborts if a thread cannot be created). */
wh_threadpool *wh_threadpool_new(int n_threads);
void wh_threadpool_free(wh_threadpool *pool);

int wh_threadpool_size(const wh_threadpool *pool);

/* Runs @fn on every thread of the pool and waits for all of them. */
void wh_threadpool_run(wh_threadpool *pool, wh_threadpool_func fn, void *data);

/* Like wh_threadpool_run() for work that threads take from a shared queue
 * (an atomic counter in @data): fn(0, nth, data) on the calling thread must
 * complete all the work that no other thread has taken. Once that call
 * returns, workers that have not started yet are excused (never call fn for
 * this run) and only those already inside fn are waited for, so a worker that
 * the OS has preempted does not hold up the run. Every call that does happen
 * gets a distinct ith. */
void wh_threadpool_run_dynamic(wh_threadpool *pool, wh_threadpool_func fn, void *data);

/* Splits [0, n) into nth nearly equal contiguous parts; part ith is
 * [*begin, *end). Parts differ in size by at most one. */
static inline void
wh_threadpool_split(gsize n, int ith, int nth, gsize *begin, gsize *end)
{
  gsize per = n / (gsize)nth, extra = n % (gsize)nth;
  gsize i = (gsize)ith;
  *begin = i * per + MIN(i, extra);
  *end = *begin + per + (i < extra ? 1 : 0);
}

G_END_DECLS
