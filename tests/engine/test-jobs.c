/* test-jobs.c — the job queue: ordering, concurrency, cancel at any point,
 * errors, coalesced notifications on the main context, many jobs at once. */
#include "config.h"

#include "jobs/jobs.h"
#include "wh-test-util.h"

#ifdef __linux__
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* --- Fixture: a private main context, flushed by iterate_until() ---------- */

typedef struct {
  GMainContext *ctx;
  wh_job_queue *queue;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  f->ctx = g_main_context_new();
  g_main_context_push_thread_default(f->ctx);
  f->queue = wh_job_queue_new(f->ctx, GPOINTER_TO_UINT(data));
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  wh_job_queue_free(f->queue);
  while (g_main_context_iteration(f->ctx, FALSE))
    ;
  g_main_context_pop_thread_default(f->ctx);
  g_main_context_unref(f->ctx);
}

/* Iterates the context until @done is TRUE or 10 s pass. */
static void
iterate_until(Fixture *f, gboolean *done)
{
  gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
  while (!*done && g_get_monotonic_time() < end)
    g_main_context_iteration(f->ctx, FALSE), g_usleep(200);
  g_assert_true(*done);
}

static void
flush(Fixture *f)
{
  wh_job_queue_wait_idle(f->queue);
  for (int i = 0; i < 50; i++) {
    while (g_main_context_iteration(f->ctx, FALSE))
      ;
    g_usleep(100);
  }
}

/* --- Job functions -------------------------------------------------------- */

typedef struct {
  GMutex lock;
  GArray *order; /* ids in the order their functions started */
  gint running;  /* compute jobs running right now */
  gint max_running;
  gint io_running;
  gint io_max_running;
} Shared;

typedef struct {
  Shared *shared;
  int tag;
  int steps;
  int sleep_us;
  gboolean fail;
  gboolean ignore_cancel;
  gboolean *destroyed;
  GCond *gate_cond; /* when set, the job waits until *gate is TRUE */
  GMutex *gate_lock;
  gboolean *gate;
  gboolean *started;
} Work;

static gboolean
work_func(wh_job *job, gpointer user_data, GError **error)
{
  Work *w = user_data;
  gboolean io = wh_job_kind_is_io(wh_job_get_kind(job));

  if (w->shared) {
    g_mutex_lock(&w->shared->lock);
    g_array_append_val(w->shared->order, w->tag);
    if (io) {
      w->shared->io_running++;
      w->shared->io_max_running = MAX(w->shared->io_max_running, w->shared->io_running);
    } else {
      w->shared->running++;
      w->shared->max_running = MAX(w->shared->max_running, w->shared->running);
    }
    g_mutex_unlock(&w->shared->lock);
  }
  if (w->started)
    g_atomic_int_set(w->started, TRUE);
  if (w->gate) {
    g_mutex_lock(w->gate_lock);
    while (!*w->gate)
      g_cond_wait(w->gate_cond, w->gate_lock);
    g_mutex_unlock(w->gate_lock);
  }

  gboolean ok = TRUE;
  for (int i = 0; i < w->steps; i++) {
    if (!w->ignore_cancel && wh_job_is_cancelled(job)) {
      ok = FALSE;
      break;
    }
    wh_job_set_progress(job, (guint64)(i + 1) * 1000, (guint64)w->steps * 1000, "working");
    if (w->sleep_us)
      g_usleep(w->sleep_us);
  }

  if (w->shared) {
    g_mutex_lock(&w->shared->lock);
    if (io)
      w->shared->io_running--;
    else
      w->shared->running--;
    g_mutex_unlock(&w->shared->lock);
  }
  if (ok && w->fail) {
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOSPC, "disk full while writing tag %d", w->tag);
    return FALSE;
  }
  if (ok)
    wh_job_set_result(job, g_strdup_printf("result %d", w->tag), g_free);
  return ok;
}

static void
work_free(gpointer data)
{
  Work *w = data;
  if (w->destroyed)
    *w->destroyed = TRUE;
  g_free(w);
}

static Work *
work_new(Shared *shared, int tag, int steps, int sleep_us)
{
  Work *w = g_new0(Work, 1);
  w->shared = shared;
  w->tag = tag;
  w->steps = steps;
  w->sleep_us = sleep_us;
  return w;
}

typedef struct {
  int calls;
  int terminal_calls;
  wh_job_state last_state;
  gboolean done;
  GThread *thread;
  double last_fraction;
  gboolean fraction_went_down;
} NotifyLog;

static void
log_notify(wh_job *job, gpointer data)
{
  NotifyLog *log = data;
  wh_job_progress p;
  wh_job_get_progress(job, &p);
  log->calls++;
  log->thread = g_thread_self();
  if (p.fraction >= 0) {
    if (p.fraction + 1e-9 < log->last_fraction)
      log->fraction_went_down = TRUE;
    log->last_fraction = p.fraction;
  }
  log->last_state = p.state;
  if (wh_job_is_finished(job)) {
    log->terminal_calls++;
    log->done = TRUE;
  }
}

/* --- Tests ------------------------------------------------------------------ */

static void
test_success(Fixture *f, gconstpointer data)
{
  NotifyLog log = {0};
  gboolean destroyed = FALSE;
  Work *w = work_new(NULL, 7, 20, 100);
  w->destroyed = &destroyed;

  wh_job *job = wh_job_queue_submit(f->queue, WH_JOB_QUANTIZE, "Quantizing test.gguf", work_func, w,
                                    work_free, log_notify, &log);
  g_assert_cmpstr(wh_job_get_title(job), ==, "Quantizing test.gguf");
  g_assert_cmpint(wh_job_get_kind(job), ==, WH_JOB_QUANTIZE);
  iterate_until(f, &log.done);

  g_assert_cmpint(wh_job_get_state(job), ==, WH_JOB_SUCCEEDED);
  g_assert_null(wh_job_get_error(job));
  g_assert_cmpstr(wh_job_get_result(job), ==, "result 7");
  g_assert_cmpint(log.terminal_calls, ==, 1);
  g_assert_cmpint(log.last_state, ==, WH_JOB_SUCCEEDED);
  g_assert_false(log.fraction_went_down);
  g_assert_true(log.thread == g_thread_self()); /* delivered on our context */
  g_assert_true(destroyed);                     /* user data freed after the last notify */

  wh_job_progress p;
  wh_job_get_progress(job, &p);
  g_assert_cmpfloat(p.fraction, ==, 1.0);
  g_assert_cmpuint(p.done, ==, 20000);
  g_assert_cmpuint(p.total, ==, 20000);
  g_assert_cmpstr(p.status, ==, "working");
  wh_job_unref(job);
  g_assert_cmpuint(wh_job_queue_n_active(f->queue), ==, 0);
}

static void
test_error(Fixture *f, gconstpointer data)
{
  NotifyLog log = {0};
  Work *w = work_new(NULL, 3, 2, 0);
  w->fail = TRUE;
  wh_job *job = wh_job_queue_submit(f->queue, WH_JOB_DOWNLOAD, "Downloading", work_func, w,
                                    work_free, log_notify, &log);
  iterate_until(f, &log.done);
  g_assert_cmpint(wh_job_get_state(job), ==, WH_JOB_FAILED);
  const GError *e = wh_job_get_error(job);
  g_assert_error(e, G_FILE_ERROR, G_FILE_ERROR_NOSPC);
  g_assert_cmpstr(e->message, ==, "disk full while writing tag 3");
  g_assert_null(wh_job_get_result(job));
  g_assert_cmpint(log.terminal_calls, ==, 1);
  wh_job_unref(job);
}

static gboolean
fail_silently(wh_job *job, gpointer user_data, GError **error)
{
  return FALSE;
}

static void
test_error_without_message(Fixture *f, gconstpointer data)
{
  wh_job *job = wh_job_queue_submit(f->queue, WH_JOB_EVALUATE, "Evaluating", fail_silently, NULL,
                                    NULL, NULL, NULL);
  g_assert_cmpint(wh_job_wait(job), ==, WH_JOB_FAILED);
  const GError *e = wh_job_get_error(job);
  g_assert_error(e, WH_JOBS_ERROR, WH_JOBS_ERROR_FAILED);
  g_assert_nonnull(strstr(e->message, "Evaluating"));
  wh_job_unref(job);
  flush(f);
}

/* Compute jobs run one at a time in submission order; I/O jobs overlap. */
static void
test_ordering_and_concurrency(Fixture *f, gconstpointer data)
{
  Shared shared = {0};
  g_mutex_init(&shared.lock);
  shared.order = g_array_new(FALSE, FALSE, sizeof(int));
  GPtrArray *jobs = g_ptr_array_new_with_free_func((GDestroyNotify)wh_job_unref);

  for (int i = 0; i < 8; i++)
    g_ptr_array_add(jobs, wh_job_queue_submit(f->queue, WH_JOB_QUANTIZE, "c", work_func,
                                              work_new(&shared, i, 5, 500), work_free, NULL, NULL));
  for (int i = 0; i < 6; i++)
    g_ptr_array_add(jobs, wh_job_queue_submit(f->queue, WH_JOB_DOWNLOAD, "io", work_func,
                                              work_new(&shared, 100 + i, 20, 2000), work_free, NULL,
                                              NULL));
  flush(f);

  g_assert_cmpint(shared.max_running, ==, 1);
  g_assert_cmpint(shared.io_max_running, >=, 2);
  g_assert_cmpint(shared.io_max_running, <=, 3); /* max_io of this fixture */
  int next_compute = 0;
  for (guint i = 0; i < shared.order->len; i++) {
    int tag = g_array_index(shared.order, int, i);
    if (tag < 100)
      g_assert_cmpint(tag, ==, next_compute++);
  }
  g_assert_cmpint(next_compute, ==, 8);
  for (guint i = 0; i < jobs->len; i++)
    g_assert_cmpint(wh_job_get_state(jobs->pdata[i]), ==, WH_JOB_SUCCEEDED);
  g_ptr_array_unref(jobs);
  g_array_unref(shared.order);
  g_mutex_clear(&shared.lock);
}

/* Cancel a job that is still queued behind a running compute job: it ends
 * at once, never runs, and the running one is unaffected. */
static void
test_cancel_queued(Fixture *f, gconstpointer data)
{
  GMutex gate_lock;
  GCond gate_cond;
  gboolean gate = FALSE, started = FALSE, second_started = FALSE;
  NotifyLog log2 = {0};
  g_mutex_init(&gate_lock);
  g_cond_init(&gate_cond);

  Work *w1 = work_new(NULL, 1, 1, 0);
  w1->gate = &gate;
  w1->gate_lock = &gate_lock;
  w1->gate_cond = &gate_cond;
  w1->started = &started;
  wh_job *j1 =
      wh_job_queue_submit(f->queue, WH_JOB_QUANTIZE, "first", work_func, w1, work_free, NULL, NULL);
  Work *w2 = work_new(NULL, 2, 1, 0);
  w2->started = &second_started;
  wh_job *j2 = wh_job_queue_submit(f->queue, WH_JOB_QUANTIZE, "second", work_func, w2, work_free,
                                   log_notify, &log2);
  while (!g_atomic_int_get(&started))
    g_usleep(100);

  g_assert_cmpint(wh_job_get_state(j2), ==, WH_JOB_QUEUED);
  wh_job_cancel(j2);
  wh_job_cancel(j2); /* idempotent */
  g_assert_cmpint(wh_job_get_state(j2), ==, WH_JOB_CANCELLED);
  g_assert_error(wh_job_get_error(j2), G_IO_ERROR, G_IO_ERROR_CANCELLED);
  iterate_until(f, &log2.done);
  g_assert_cmpint(log2.terminal_calls, ==, 1);

  g_mutex_lock(&gate_lock);
  gate = TRUE;
  g_cond_broadcast(&gate_cond);
  g_mutex_unlock(&gate_lock);
  g_assert_cmpint(wh_job_wait(j1), ==, WH_JOB_SUCCEEDED);
  flush(f);
  g_assert_false(second_started);
  g_assert_cmpint(log2.terminal_calls, ==, 1);
  wh_job_unref(j1);
  wh_job_unref(j2);
  g_mutex_clear(&gate_lock);
  g_cond_clear(&gate_cond);
}

/* Cancel at many points during a running job. */
static void
test_cancel_running(Fixture *f, gconstpointer data)
{
  for (int delay = 0; delay < 4000; delay += 250) {
    NotifyLog log = {0};
    gboolean destroyed = FALSE;
    Work *w = work_new(NULL, delay, 100000, 20);
    w->destroyed = &destroyed;
    wh_job *job = wh_job_queue_submit(f->queue, WH_JOB_GENERATE, "gen", work_func, w, work_free,
                                      log_notify, &log);
    g_usleep(delay);
    wh_job_cancel(job);
    wh_job_state s = wh_job_wait(job);
    g_assert_cmpint(s, ==, WH_JOB_CANCELLED);
    g_assert_error(wh_job_get_error(job), G_IO_ERROR, G_IO_ERROR_CANCELLED);
    iterate_until(f, &log.done);
    g_assert_cmpint(log.terminal_calls, ==, 1);
    g_assert_cmpint(log.last_state, ==, WH_JOB_CANCELLED);
    g_assert_true(destroyed);
    g_assert_true(g_cancellable_is_cancelled(wh_job_get_cancellable(job)));
    wh_job_unref(job);
  }
  g_assert_cmpuint(wh_job_queue_n_active(f->queue), ==, 0);
}

/* Cancelling a finished job changes nothing. */
static void
test_cancel_after_finish(Fixture *f, gconstpointer data)
{
  NotifyLog log = {0};
  wh_job *job = wh_job_queue_submit(f->queue, WH_JOB_LOAD, "load", work_func,
                                    work_new(NULL, 1, 3, 0), work_free, log_notify, &log);
  iterate_until(f, &log.done);
  wh_job_cancel(job);
  flush(f);
  g_assert_cmpint(wh_job_get_state(job), ==, WH_JOB_SUCCEEDED);
  g_assert_cmpint(log.terminal_calls, ==, 1);
  wh_job_unref(job);
}

/* A job that reports progress a million times costs few main-loop
 * callbacks: one idle source per job, coalesced. */
static void
test_coalescing(Fixture *f, gconstpointer data)
{
  NotifyLog log = {0};
  Work *w = work_new(NULL, 1, 200000, 0);
  wh_job *job = wh_job_queue_submit(f->queue, WH_JOB_IMATRIX, "imatrix", work_func, w, work_free,
                                    log_notify, &log);
  /* Do not iterate while it runs: every report lands on one pending idle. */
  g_assert_cmpint(wh_job_wait(job), ==, WH_JOB_SUCCEEDED);
  iterate_until(f, &log.done);
  g_assert_cmpint(log.calls, <=, 3);
  g_assert_cmpint(log.terminal_calls, ==, 1);
  wh_job_unref(job);
}

typedef struct {
  int changes;
  GHashTable *finished;
} ObserverLog;

static void
observer(wh_job *job, gpointer data)
{
  ObserverLog *o = data;
  o->changes++;
  if (wh_job_is_finished(job))
    g_hash_table_add(o->finished, GUINT_TO_POINTER((guint)wh_job_get_id(job)));
}

/* Many jobs at once, some failing, some cancelled, with an observer. */
static void
test_many(Fixture *f, gconstpointer data)
{
  ObserverLog o = {0, g_hash_table_new(NULL, NULL)};
  wh_job_queue_set_observer(f->queue, observer, &o);
  GPtrArray *jobs = g_ptr_array_new_with_free_func((GDestroyNotify)wh_job_unref);
  const int n = 300;
  for (int i = 0; i < n; i++) {
    Work *w = work_new(NULL, i, 10, i % 7 == 0 ? 100 : 0);
    w->fail = (i % 5 == 0);
    wh_job_kind kind = (i % 3 == 0) ? WH_JOB_DOWNLOAD : WH_JOB_EVALUATE;
    g_ptr_array_add(
        jobs, wh_job_queue_submit(f->queue, kind, "many", work_func, w, work_free, NULL, NULL));
  }
  for (int i = 0; i < n; i += 11)
    wh_job_cancel(jobs->pdata[i]);
  flush(f);

  int ok = 0, failed = 0, cancelled = 0;
  for (int i = 0; i < n; i++) {
    wh_job_state s = wh_job_get_state(jobs->pdata[i]);
    ok += s == WH_JOB_SUCCEEDED;
    failed += s == WH_JOB_FAILED;
    cancelled += s == WH_JOB_CANCELLED;
    if (s == WH_JOB_FAILED)
      g_assert_true(i % 5 == 0);
    if (s == WH_JOB_CANCELLED)
      g_assert_true(i % 11 == 0);
  }
  g_assert_cmpint(ok + failed + cancelled, ==, n);
  g_assert_cmpint(failed, >, 0);
  g_assert_cmpint(cancelled, >, 0);
  g_assert_cmpuint(g_hash_table_size(o.finished), ==, (guint)n);
  g_assert_cmpuint(wh_job_queue_n_active(f->queue), ==, 0);
  wh_job_queue_set_observer(f->queue, NULL, NULL);
  g_ptr_array_unref(jobs);
  g_hash_table_unref(o.finished);
}

/* Freeing the queue with jobs running and queued: everything ends, user
 * data is freed, job references held by the caller stay valid. */
static void
test_free_while_busy(void)
{
  GMainContext *ctx = g_main_context_new();
  wh_job_queue *q = wh_job_queue_new(ctx, 2);
  gboolean destroyed[6] = {0};
  wh_job *jobs[6];
  for (int i = 0; i < 6; i++) {
    Work *w = work_new(NULL, i, 1000000, 10);
    w->destroyed = &destroyed[i];
    jobs[i] = wh_job_queue_submit(q, i < 3 ? WH_JOB_DOWNLOAD : WH_JOB_CONVERT, "busy", work_func, w,
                                  work_free, NULL, NULL);
  }
  g_usleep(2000);
  wh_job_queue_free(q);
  for (int i = 0; i < 6; i++) {
    g_assert_cmpint(wh_job_get_state(jobs[i]), ==, WH_JOB_CANCELLED);
    g_assert_true(destroyed[i]);
    wh_job_unref(jobs[i]);
  }
  while (g_main_context_iteration(ctx, FALSE))
    ;
  g_main_context_unref(ctx);
}

#ifdef __linux__
/* Reads the niceness of the thread the job runs on. */
static gboolean
read_nice(wh_job *job, gpointer user_data, GError **error)
{
  (void)job;
  (void)error;
  *(int *)user_data = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
  return TRUE;
}
#endif

/* Compute jobs of a queue with a compute niceness run at that niceness (the app leaves the
 * CPU to its UI thread); I/O jobs are left alone. */
static void
test_compute_nice(void)
{
#ifdef __linux__
  GMainContext *ctx = g_main_context_new();
  wh_job_queue *q = wh_job_queue_new(ctx, 2);
  int base = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
  int io_nice = -100, compute_nice = -100;
  wh_job *io = wh_job_queue_submit(q, WH_JOB_DOWNLOAD, "io", read_nice, &io_nice, NULL, NULL, NULL);
  g_assert_cmpint(wh_job_wait(io), ==, WH_JOB_SUCCEEDED);
  wh_job_queue_set_compute_nice(q, 10);
  wh_job *c = wh_job_queue_submit(q, WH_JOB_QUANTIZE, "compute", read_nice, &compute_nice, NULL,
                                  NULL, NULL);
  g_assert_cmpint(wh_job_wait(c), ==, WH_JOB_SUCCEEDED);
  g_assert_cmpint(io_nice, ==, base);
  g_assert_cmpint(compute_nice, ==, MAX(base, 10));
  wh_job_unref(io);
  wh_job_unref(c);
  wh_job_queue_free(q);
  while (g_main_context_iteration(ctx, FALSE))
    ;
  g_main_context_unref(ctx);
#else
  g_test_skip("thread niceness is only set on Linux");
#endif
}

#ifdef __linux__
static void
read_policy_task(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  *(int *)task_data = sched_getscheduler(0);
  g_task_return_boolean(task, TRUE);
}

/* Reads the scheduling policy of the thread the job runs on. */
static gboolean
read_policy(wh_job *job, gpointer user_data, GError **error)
{
  (void)job;
  (void)error;
  *(int *)user_data = sched_getscheduler(0);
  return TRUE;
}
#endif

/* Compute jobs of a queue set to idle run under SCHED_IDLE (they give a core back at once to
 * the UI thread); I/O jobs, before and after, keep the normal policy: the compute pool's
 * thread never serves them. */
static void
test_compute_idle(void)
{
#ifdef __linux__
  GMainContext *ctx = g_main_context_new();
  wh_job_queue *q = wh_job_queue_new(ctx, 2);
  wh_job_queue_set_compute_idle(q, TRUE);
  int io_before = -1, compute = -1, io_after = -1;
  wh_job *io =
      wh_job_queue_submit(q, WH_JOB_DOWNLOAD, "io", read_policy, &io_before, NULL, NULL, NULL);
  g_assert_cmpint(wh_job_wait(io), ==, WH_JOB_SUCCEEDED);
  wh_job *c =
      wh_job_queue_submit(q, WH_JOB_QUANTIZE, "compute", read_policy, &compute, NULL, NULL, NULL);
  g_assert_cmpint(wh_job_wait(c), ==, WH_JOB_SUCCEEDED);
  wh_job *io2 =
      wh_job_queue_submit(q, WH_JOB_DOWNLOAD, "io", read_policy, &io_after, NULL, NULL, NULL);
  g_assert_cmpint(wh_job_wait(io2), ==, WH_JOB_SUCCEEDED);
  g_assert_cmpint(io_before, ==, SCHED_OTHER);
  g_assert_cmpint(compute, ==, SCHED_IDLE);
  g_assert_cmpint(io_after, ==, SCHED_OTHER);
  wh_job_unref(io);
  wh_job_unref(c);
  wh_job_unref(io2);
  wh_job_queue_free(q);
  /* GLib's shared threads (GTask's pool) never got the idle policy either. */
  int shared = -1;
  g_autoptr(GTask) task = g_task_new(NULL, NULL, NULL, NULL);
  g_task_set_task_data(task, &shared, NULL);
  g_task_run_in_thread_sync(task, read_policy_task);
  g_assert_cmpint(shared, ==, SCHED_OTHER);
  while (g_main_context_iteration(ctx, FALSE))
    ;
  g_main_context_unref(ctx);
#else
  g_test_skip("scheduling policies are only set on Linux");
#endif
}

static void
test_progress_format(void)
{
  wh_job_progress p = {0};
  p.state = WH_JOB_RUNNING;
  p.fraction = 0.5;
  p.done = 2000000000;
  p.total = 4000000000;
  p.rate = 35100000;
  p.eta_seconds = 70;
  g_strlcpy(p.status, "blk.3.attn_q.weight", sizeof p.status);
  g_autofree char *s = wh_job_progress_format(&p, TRUE);
  /* g_format_size() puts a no-break space between number and unit. */
  g_assert_cmpstr(s, ==,
                  " 50% · 2.0\u00a0GB of 4.0\u00a0GB · 35.1\u00a0MB/s · 1 min 10 s left · "
                  "blk.3.attn_q.weight");

  wh_job_progress q = {0};
  q.state = WH_JOB_RUNNING;
  q.fraction = -1;
  q.done = 12;
  q.total = 0;
  q.eta_seconds = -1;
  g_autofree char *t = wh_job_progress_format(&q, FALSE);
  g_assert_cmpstr(t, ==, "12");
}

/* Rate and ETA are derived from progress over time. */
static void
test_rate_eta(Fixture *f, gconstpointer data)
{
  NotifyLog log = {0};
  Work *w = work_new(NULL, 1, 60, 10000); /* 60 steps × 10 ms */
  wh_job *job = wh_job_queue_submit(f->queue, WH_JOB_DOWNLOAD, "rate", work_func, w, work_free,
                                    log_notify, &log);
  g_usleep(400000);
  wh_job_progress p;
  wh_job_get_progress(job, &p);
  g_assert_cmpint(p.state, ==, WH_JOB_RUNNING);
  g_assert_cmpfloat(p.rate, >, 10000.0); /* ~100 000 units/s nominal */
  g_assert_cmpfloat(p.rate, <, 1000000.0);
  g_assert_cmpfloat(p.eta_seconds, >=, 0.0);
  g_assert_cmpfloat(p.elapsed_seconds, >, 0.2);
  iterate_until(f, &log.done);
  wh_job_unref(job);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, func, max_io)                                                                    \
  g_test_add(path, Fixture, GUINT_TO_POINTER(max_io), fixture_setup, func, fixture_teardown)
  ADD("/jobs/success", test_success, 3);
  ADD("/jobs/error", test_error, 3);
  ADD("/jobs/error-without-message", test_error_without_message, 3);
  ADD("/jobs/ordering-and-concurrency", test_ordering_and_concurrency, 3);
  ADD("/jobs/cancel-queued", test_cancel_queued, 3);
  ADD("/jobs/cancel-running", test_cancel_running, 3);
  ADD("/jobs/cancel-after-finish", test_cancel_after_finish, 3);
  ADD("/jobs/coalescing", test_coalescing, 3);
  ADD("/jobs/many", test_many, 4);
  ADD("/jobs/rate-eta", test_rate_eta, 3);
  g_test_add_func("/jobs/free-while-busy", test_free_while_busy);
  g_test_add_func("/jobs/progress-format", test_progress_format);
  g_test_add_func("/jobs/compute-nice", test_compute_nice);
  g_test_add_func("/jobs/compute-idle", test_compute_idle);
  return g_test_run();
}
