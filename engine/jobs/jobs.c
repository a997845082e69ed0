/* jobs.c — the in-process job queue (contract and design note in jobs.h).
 *
 * Implementation notes
 * --------------------
 * Two GThreadPools: one for I/O jobs (max_io threads) and one for compute
 * jobs (one thread, so compute jobs run one at a time in submission order).
 * Each job has its own mutex guarding its state and progress; the queue's
 * mutex guards the list of live jobs and the active count. Lock order:
 * queue → job (never the other way round).
 *
 * Notifications: a change marks the job pending and, if it was not yet, adds
 * it to the queue's pending list, then wakes the queue's context outside
 * every lock. One GSource per queue, attached once when the queue is made,
 * takes the list and for each job clears the mark under the job's lock,
 * then calls the job's notify and the queue's observer without holding any
 * lock. The terminal state is written before its notification is scheduled
 * and nothing changes afterwards, so the last callback always sees the
 * terminal state.
 *
 * Why not an idle source per notification: attaching a source takes the
 * context's lock and wakes the context's thread while holding it. A waking
 * UI thread preempts a compute thread under SCHED_IDLE at once, then blocks
 * on the lock that thread still holds, until that thread gets a CPU again,
 * which under load took up to ~9 ms (bench-mainloop: the main thread asleep
 * in g_main_context_check()). Now a worker holds only short locks with no
 * system call inside, and wakes the context (g_main_context_wakeup(), no
 * lock) after releasing them.
 */
#include "config.h"

#include "jobs.h"

#include <glib/gi18n.h>
#include <math.h>
#ifdef __linux__
#include <errno.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

G_DEFINE_QUARK(wh - jobs - error - quark, wh_jobs_error)

#define WH_JOBS_MAX_IO 16

/* Worker threads of the queue's own taking jobs from one GAsyncQueue in order, joined by
 * wh_job_queue_free(). Not a GThreadPool: its threads are never joined (a surplus idle one
 * exits on its own), and one still ending when the process exits shows up as a leak under
 * LeakSanitizer; nor GLib's shared threads, which would keep a compute job's niceness or
 * SCHED_IDLE and serve GTask with it. */
typedef struct {
  wh_job_queue *queue;
  GAsyncQueue *jobs;
  GThread *threads[WH_JOBS_MAX_IO];
  guint n_threads;
} job_lane;

struct wh_job_queue {
  GMutex lock;
  GCond idle_cond;
  GMainContext *context;
  job_lane io;      /* max_io threads: I/O jobs side by side */
  job_lane compute; /* one thread: compute jobs one at a time, in submission order */
  GPtrArray *jobs;  /* owned refs to jobs whose last notification is pending */
  guint n_active;
  guint64 next_id;
  gboolean shutting_down;
  wh_job_notify_func observer;
  gpointer observer_data;
  int compute_nice;      /* niceness of compute jobs' threads (0: leave as is) */
  gboolean compute_idle; /* compute jobs' threads under SCHED_IDLE */

  /* Notifications (see the implementation notes). Lock order: job → notify_lock. */
  GSource *notifier;         /* attached to context, dispatches notify_pending */
  GMutex notify_lock;        /* guards notify_pending */
  GPtrArray *notify_pending; /* owned refs, in the order they were first scheduled */
  gint n_pending;            /* notify_pending->len, read without the lock */
};

struct wh_job {
  gint ref_count;
  guint64 id;
  wh_job_kind kind;
  char *title;
  wh_job_queue *queue; /* NULL once the queue is freed */

  wh_job_func func;
  gpointer user_data;
  GDestroyNotify destroy;
  wh_job_notify_func notify;
  gpointer notify_data;
  GCancellable *cancellable;

  GMutex lock;
  GCond done_cond;
  wh_job_state state;
  gboolean counted_inactive; /* n_active already decremented for this job */
  gboolean user_data_freed;
  gboolean terminal_delivered; /* the terminal notification has run */
  GError *error;
  gpointer result;
  GDestroyNotify result_destroy;

  /* progress */
  double fraction;
  guint64 done, total;
  double rate, eta;
  char status[256];
  gint64 start_time, end_time;
  gint64 rate_time;  /* time of the last rate sample */
  guint64 rate_done; /* done at that sample */
  gboolean bytes_unit;

  gboolean notify_queued; /* in queue->notify_pending (under lock) */

  /* While a notification is being delivered, the getters called from the
   * delivering thread answer from this snapshot, so a callback never sees
   * a terminal state before the (single) terminal notification. */
  GThread *dispatch_thread;
  wh_job_progress snapshot;
};

static void schedule_notify(wh_job *job);

/* --- Small helpers -------------------------------------------------------- */

const char *
wh_job_kind_to_string(wh_job_kind kind)
{
  switch (kind) {
  case WH_JOB_DOWNLOAD:
    return "download";
  case WH_JOB_CONVERT:
    return "convert";
  case WH_JOB_QUANTIZE:
    return "quantize";
  case WH_JOB_IMATRIX:
    return "imatrix";
  case WH_JOB_LOAD:
    return "load";
  case WH_JOB_GENERATE:
    return "generate";
  case WH_JOB_EVALUATE:
    return "evaluate";
  }
  return "unknown";
}

gboolean
wh_job_kind_is_io(wh_job_kind kind)
{
  return kind == WH_JOB_DOWNLOAD;
}

static gboolean
state_is_terminal(wh_job_state s)
{
  return s == WH_JOB_SUCCEEDED || s == WH_JOB_FAILED || s == WH_JOB_CANCELLED;
}

/* Marks @job inactive in its queue exactly once (queue lock taken here). */
static void
job_mark_inactive(wh_job *job, wh_job_queue *queue)
{
  if (!queue)
    return;
  g_mutex_lock(&queue->lock);
  g_mutex_lock(&job->lock);
  gboolean first = !job->counted_inactive;
  job->counted_inactive = TRUE;
  g_mutex_unlock(&job->lock);
  if (first) {
    g_assert(queue->n_active > 0);
    queue->n_active--;
    if (queue->n_active == 0)
      g_cond_broadcast(&queue->idle_cond);
  }
  g_mutex_unlock(&queue->lock);
}

/* Sets the terminal state. Caller holds job->lock. Takes ownership of @error. */
static void
job_finish_locked(wh_job *job, wh_job_state state, GError *error)
{
  g_assert(!state_is_terminal(job->state));
  job->state = state;
  job->error = error;
  job->end_time = g_get_monotonic_time();
  if (state == WH_JOB_SUCCEEDED) {
    job->fraction = 1.0;
    if (job->total)
      job->done = job->total;
    job->eta = 0;
  }
  g_cond_broadcast(&job->done_cond);
}

static GError *
cancelled_error(void)
{
  return g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, _("Cancelled"));
}

/* --- Refcounting ---------------------------------------------------------- */

wh_job *
wh_job_ref(wh_job *job)
{
  g_return_val_if_fail(job != NULL, NULL);
  g_atomic_int_inc(&job->ref_count);
  return job;
}

static void
job_free_user_data(wh_job *job)
{
  /* Called once, on the context thread or at queue teardown. */
  if (job->user_data_freed)
    return;
  job->user_data_freed = TRUE;
  if (job->destroy)
    job->destroy(job->user_data);
  job->user_data = NULL;
}

void
wh_job_unref(wh_job *job)
{
  if (!job)
    return;
  if (!g_atomic_int_dec_and_test(&job->ref_count))
    return;
  job_free_user_data(job);
  if (job->result_destroy && job->result)
    job->result_destroy(job->result);
  g_clear_error(&job->error);
  g_clear_object(&job->cancellable);
  g_free(job->title);
  g_mutex_clear(&job->lock);
  g_cond_clear(&job->done_cond);
  g_free(job);
}

/* --- Notification ---------------------------------------------------------- */

static void fill_progress_locked(wh_job *job, wh_job_progress *out);

/* TRUE when the caller is inside this job's notification callbacks. Caller
 * holds job->lock. */
static gboolean
in_dispatch_locked(wh_job *job)
{
  return job->dispatch_thread == g_thread_self();
}

static void
dispatch_notify(wh_job *job)
{
  wh_job_queue *queue;
  gboolean terminal;

  g_mutex_lock(&job->lock);
  job->notify_queued = FALSE;
  if (job->terminal_delivered) {
    /* A late schedule after the terminal notification already ran (the
     * worker publishes the state before it schedules): nothing new. */
    g_mutex_unlock(&job->lock);
    return;
  }
  queue = job->queue;
  terminal = state_is_terminal(job->state);
  job->terminal_delivered = terminal;
  fill_progress_locked(job, &job->snapshot);
  job->dispatch_thread = g_thread_self();
  g_mutex_unlock(&job->lock);

  if (job->notify)
    job->notify(job, job->notify_data);
  if (queue && queue->observer)
    queue->observer(job, queue->observer_data);

  g_mutex_lock(&job->lock);
  job->dispatch_thread = NULL;
  g_mutex_unlock(&job->lock);

  if (terminal && queue) {
    /* Last notification delivered: free the user data and drop the
     * queue's reference. */
    job_free_user_data(job);
    g_mutex_lock(&queue->lock);
    g_ptr_array_remove(queue->jobs, job); /* the pending list still holds a ref */
    g_mutex_unlock(&queue->lock);
  }
}

static void
schedule_notify(wh_job *job)
{
  GMainContext *wake = NULL;
  g_mutex_lock(&job->lock);
  if (job->queue && !job->notify_queued) {
    wh_job_queue *queue = job->queue;
    job->notify_queued = TRUE;
    g_mutex_lock(&queue->notify_lock);
    g_ptr_array_add(queue->notify_pending, wh_job_ref(job));
    g_atomic_int_set(&queue->n_pending, (gint)queue->notify_pending->len);
    g_mutex_unlock(&queue->notify_lock);
    wake = g_main_context_ref(queue->context);
  }
  g_mutex_unlock(&job->lock);
  /* Outside every lock: the wakeup may hand this CPU to the context's thread at once. */
  if (wake) {
    g_main_context_wakeup(wake);
    g_main_context_unref(wake);
  }
}

/* The queue's notifier: a GSource ready while jobs wait in notify_pending. */
typedef struct {
  GSource source;
  wh_job_queue *queue;
} notifier_source;

static gboolean
notifier_prepare(GSource *source, gint *timeout)
{
  *timeout = -1;
  return g_atomic_int_get(&((notifier_source *)source)->queue->n_pending) > 0;
}

static gboolean
notifier_check(GSource *source)
{
  return g_atomic_int_get(&((notifier_source *)source)->queue->n_pending) > 0;
}

static gboolean
notifier_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
  wh_job_queue *queue = ((notifier_source *)source)->queue;
  g_mutex_lock(&queue->notify_lock);
  GPtrArray *jobs = queue->notify_pending;
  queue->notify_pending = g_ptr_array_new_with_free_func((GDestroyNotify)wh_job_unref);
  g_atomic_int_set(&queue->n_pending, 0);
  g_mutex_unlock(&queue->notify_lock);
  for (guint i = 0; i < jobs->len; i++)
    dispatch_notify(jobs->pdata[i]);
  g_ptr_array_unref(jobs);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs notifier_funcs = {
    notifier_prepare, notifier_check, notifier_dispatch, NULL, NULL, NULL};

/* --- Workers --------------------------------------------------------------- */

/* Raises the calling thread's niceness to @nice (threads of a GThreadPool are reused: once
 * raised it stays, which is what the queue wants). */
static void
thread_set_nice(int nice)
{
#ifdef __linux__
  if (nice <= 0)
    return;
  pid_t tid = (pid_t)syscall(SYS_gettid);
  errno = 0;
  int now = getpriority(PRIO_PROCESS, (id_t)tid);
  if (errno == 0 && now < nice)
    (void)setpriority(PRIO_PROCESS, (id_t)tid, nice);
#else
  (void)nice;
#endif
}

/* Puts the calling thread under SCHED_IDLE (Linux): it runs only when no thread of a normal
 * policy wants the CPU it is on, and a waking normal thread takes that CPU at once instead of
 * waiting for a scheduler slice. Threads it starts inherit the policy. One-way for an
 * unprivileged thread (going back needs CAP_SYS_NICE), which is why the compute thread is
 * the queue's own: it never serves other work. Returns FALSE where unavailable. */
static gboolean
thread_set_sched_idle(void)
{
#if defined(__linux__) && defined(SCHED_IDLE)
  if (sched_getscheduler(0) == SCHED_IDLE)
    return TRUE;
  struct sched_param param = {0};
  return sched_setscheduler(0, SCHED_IDLE, &param) == 0;
#else
  return FALSE;
#endif
}

static void
run_job(wh_job *job, wh_job_queue *queue)
{
  GError *error = NULL;
  gboolean ok;

  g_mutex_lock(&job->lock);
  if (job->state != WH_JOB_QUEUED) {
    /* Cancelled while queued: already finished and notified. */
    g_mutex_unlock(&job->lock);
    wh_job_unref(job);
    return;
  }
  if (g_cancellable_is_cancelled(job->cancellable)) {
    job_finish_locked(job, WH_JOB_CANCELLED, cancelled_error());
    g_mutex_unlock(&job->lock);
    job_mark_inactive(job, queue);
    schedule_notify(job);
    wh_job_unref(job);
    return;
  }
  job->state = WH_JOB_RUNNING;
  job->start_time = job->rate_time = g_get_monotonic_time();
  g_mutex_unlock(&job->lock);
  schedule_notify(job);

  if (!wh_job_kind_is_io(job->kind)) {
    g_mutex_lock(&queue->lock);
    int nice = queue->compute_nice;
    gboolean idle = queue->compute_idle;
    g_mutex_unlock(&queue->lock);
    /* The niceness too: it is what stays if SCHED_IDLE is refused, and what a kernel that
     * treats the thread as normal again would use. */
    thread_set_nice(nice);
    if (idle)
      (void)thread_set_sched_idle();
  }

  ok = job->func(job, job->user_data, &error);

  g_mutex_lock(&job->lock);
  if (ok) {
    g_clear_error(&error);
    job_finish_locked(job, WH_JOB_SUCCEEDED, NULL);
  } else if (g_cancellable_is_cancelled(job->cancellable) ||
             (error && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))) {
    g_clear_error(&error);
    job_finish_locked(job, WH_JOB_CANCELLED, cancelled_error());
  } else {
    if (!error)
      error = g_error_new(WH_JOBS_ERROR, WH_JOBS_ERROR_FAILED, _("“%s” failed without saying why"),
                          job->title);
    job_finish_locked(job, WH_JOB_FAILED, error);
  }
  g_mutex_unlock(&job->lock);
  job_mark_inactive(job, queue);
  schedule_notify(job);
  wh_job_unref(job);
}

/* --- Queue ----------------------------------------------------------------- */

/* A lane's thread: runs jobs until it pops the lane itself (the stop mark lane_stop() pushes
 * once per thread after the last job). */
static gpointer
lane_main(gpointer data)
{
  job_lane *lane = data;
  for (;;) {
    gpointer item = g_async_queue_pop(lane->jobs);
    if (item == (gpointer)lane)
      return NULL;
    run_job(item, lane->queue);
  }
}

static void
lane_start(job_lane *lane, wh_job_queue *q, guint n, const char *name)
{
  lane->queue = q;
  lane->jobs = g_async_queue_new();
  lane->n_threads = CLAMP(n, 1u, (guint)WH_JOBS_MAX_IO);
  for (guint i = 0; i < lane->n_threads; i++)
    lane->threads[i] = g_thread_new(name, lane_main, lane);
}

/* Runs what is still queued (cancelled jobs finish at once), then joins the threads. */
static void
lane_stop(job_lane *lane)
{
  for (guint i = 0; i < lane->n_threads; i++)
    g_async_queue_push(lane->jobs, lane);
  for (guint i = 0; i < lane->n_threads; i++)
    g_thread_join(lane->threads[i]);
  g_async_queue_unref(lane->jobs);
}

wh_job_queue *
wh_job_queue_new(GMainContext *context, guint max_io)
{
  wh_job_queue *q = g_new0(wh_job_queue, 1);
  g_mutex_init(&q->lock);
  g_cond_init(&q->idle_cond);
  q->context = context ? g_main_context_ref(context) : g_main_context_ref_thread_default();
  q->jobs = g_ptr_array_new_with_free_func((GDestroyNotify)wh_job_unref);
  q->next_id = 1;
  g_mutex_init(&q->notify_lock);
  q->notify_pending = g_ptr_array_new_with_free_func((GDestroyNotify)wh_job_unref);
  q->notifier = g_source_new(&notifier_funcs, sizeof(notifier_source));
  ((notifier_source *)q->notifier)->queue = q;
  /* Above GTK's redraw priority: a spinning widget that redraws every frame must not starve
   * progress (already coalesced per job). */
  g_source_set_priority(q->notifier, G_PRIORITY_HIGH_IDLE + 10);
  g_source_set_static_name(q->notifier, "[whittle] job notify");
  g_source_attach(q->notifier, q->context);
  lane_start(&q->io, q, max_io ? max_io : 4, "wh-jobs-io");
  lane_start(&q->compute, q, 1, "wh-jobs-compute");
  return q;
}

void
wh_job_queue_free(wh_job_queue *queue)
{
  if (!queue)
    return;

  g_mutex_lock(&queue->lock);
  queue->shutting_down = TRUE;
  g_autoptr(GPtrArray) jobs = g_ptr_array_copy(queue->jobs, (GCopyFunc)wh_job_ref, NULL);
  g_mutex_unlock(&queue->lock);
  g_ptr_array_set_free_func(jobs, (GDestroyNotify)wh_job_unref);

  for (guint i = 0; i < jobs->len; i++)
    wh_job_cancel(jobs->pdata[i]);

  /* Runs whatever is still queued (each finishes as cancelled at once),
   * waits for running jobs to return. */
  lane_stop(&queue->io);
  lane_stop(&queue->compute);

  for (guint i = 0; i < jobs->len; i++) {
    wh_job *job = jobs->pdata[i];
    g_mutex_lock(&job->lock);
    job->queue = NULL;
    job->notify_queued = FALSE;
    g_mutex_unlock(&job->lock);
    job_free_user_data(job);
  }
  /* Notifications still pending are dropped with the notifier. */
  g_source_destroy(queue->notifier);
  g_source_unref(queue->notifier);
  g_ptr_array_unref(queue->notify_pending);
  g_mutex_clear(&queue->notify_lock);

  g_ptr_array_unref(queue->jobs);
  g_main_context_unref(queue->context);
  g_mutex_clear(&queue->lock);
  g_cond_clear(&queue->idle_cond);
  g_free(queue);
}

void
wh_job_queue_set_observer(wh_job_queue *queue, wh_job_notify_func func, gpointer user_data)
{
  g_mutex_lock(&queue->lock);
  queue->observer = func;
  queue->observer_data = user_data;
  g_mutex_unlock(&queue->lock);
}

void
wh_job_queue_set_compute_nice(wh_job_queue *queue, int nice)
{
  g_mutex_lock(&queue->lock);
  queue->compute_nice = CLAMP(nice, 0, 19);
  g_mutex_unlock(&queue->lock);
}

void
wh_job_queue_set_compute_idle(wh_job_queue *queue, gboolean idle)
{
  g_mutex_lock(&queue->lock);
  queue->compute_idle = idle;
  g_mutex_unlock(&queue->lock);
}

wh_job *
wh_job_queue_submit(wh_job_queue *queue, wh_job_kind kind, const char *title, wh_job_func func,
                    gpointer user_data, GDestroyNotify destroy, wh_job_notify_func notify,
                    gpointer notify_data)
{
  g_return_val_if_fail(queue != NULL, NULL);
  g_return_val_if_fail(func != NULL, NULL);

  wh_job *job = g_new0(wh_job, 1);
  job->ref_count = 1;
  job->kind = kind;
  job->title = g_strdup(title ? title : wh_job_kind_to_string(kind));
  job->queue = queue;
  job->func = func;
  job->user_data = user_data;
  job->destroy = destroy;
  job->notify = notify;
  job->notify_data = notify_data;
  job->cancellable = g_cancellable_new();
  g_mutex_init(&job->lock);
  g_cond_init(&job->done_cond);
  job->state = WH_JOB_QUEUED;
  job->fraction = -1;
  job->eta = -1;
  job->bytes_unit = wh_job_kind_is_io(kind);

  g_mutex_lock(&queue->lock);
  job->id = queue->next_id++;
  gboolean shutting_down = queue->shutting_down;
  g_ptr_array_add(queue->jobs, wh_job_ref(job));
  queue->n_active++;
  g_mutex_unlock(&queue->lock);

  if (shutting_down) {
    g_mutex_lock(&job->lock);
    job_finish_locked(job, WH_JOB_CANCELLED,
                      g_error_new_literal(WH_JOBS_ERROR, WH_JOBS_ERROR_SHUTDOWN,
                                          _("The job queue is shutting down")));
    g_mutex_unlock(&job->lock);
    job_mark_inactive(job, queue);
    return job;
  }

  schedule_notify(job); /* observers learn about the queued job */
  g_async_queue_push(wh_job_kind_is_io(kind) ? queue->io.jobs : queue->compute.jobs,
                     wh_job_ref(job));
  return job;
}

guint
wh_job_queue_n_active(wh_job_queue *queue)
{
  g_mutex_lock(&queue->lock);
  guint n = queue->n_active;
  g_mutex_unlock(&queue->lock);
  return n;
}

void
wh_job_queue_wait_idle(wh_job_queue *queue)
{
  g_mutex_lock(&queue->lock);
  while (queue->n_active > 0)
    g_cond_wait(&queue->idle_cond, &queue->lock);
  g_mutex_unlock(&queue->lock);
}

/* --- Job accessors --------------------------------------------------------- */

guint64
wh_job_get_id(wh_job *job)
{
  return job->id;
}

wh_job_kind
wh_job_get_kind(wh_job *job)
{
  return job->kind;
}

const char *
wh_job_get_title(wh_job *job)
{
  return job->title;
}

wh_job_state
wh_job_get_state(wh_job *job)
{
  g_mutex_lock(&job->lock);
  wh_job_state s = in_dispatch_locked(job) ? job->snapshot.state : job->state;
  g_mutex_unlock(&job->lock);
  return s;
}

gboolean
wh_job_is_finished(wh_job *job)
{
  return state_is_terminal(wh_job_get_state(job));
}

void
wh_job_get_progress(wh_job *job, wh_job_progress *out)
{
  g_mutex_lock(&job->lock);
  if (in_dispatch_locked(job))
    *out = job->snapshot;
  else
    fill_progress_locked(job, out);
  g_mutex_unlock(&job->lock);
}

static void
fill_progress_locked(wh_job *job, wh_job_progress *out)
{
  out->state = job->state;
  out->fraction = job->fraction;
  out->done = job->done;
  out->total = job->total;
  out->rate = job->rate;
  out->eta_seconds = job->eta;
  if (job->start_time) {
    gint64 end = job->end_time ? job->end_time : g_get_monotonic_time();
    out->elapsed_seconds = (end - job->start_time) / (double)G_USEC_PER_SEC;
  } else {
    out->elapsed_seconds = 0;
  }
  g_strlcpy(out->status, job->status, sizeof out->status);
}

const GError *
wh_job_get_error(wh_job *job)
{
  g_mutex_lock(&job->lock);
  wh_job_state st = in_dispatch_locked(job) ? job->snapshot.state : job->state;
  const GError *e = state_is_terminal(st) ? job->error : NULL;
  g_mutex_unlock(&job->lock);
  return e;
}

gpointer
wh_job_get_result(wh_job *job)
{
  g_mutex_lock(&job->lock);
  gpointer r = job->result;
  g_mutex_unlock(&job->lock);
  return r;
}

wh_job_state
wh_job_wait(wh_job *job)
{
  g_mutex_lock(&job->lock);
  while (!state_is_terminal(job->state))
    g_cond_wait(&job->done_cond, &job->lock);
  wh_job_state s = job->state;
  g_mutex_unlock(&job->lock);
  return s;
}

void
wh_job_cancel(wh_job *job)
{
  g_return_if_fail(job != NULL);
  gboolean was_queued = FALSE;
  wh_job_queue *queue;

  g_mutex_lock(&job->lock);
  queue = job->queue;
  if (job->state == WH_JOB_QUEUED) {
    /* Never started: end it now rather than when a worker reaches it. */
    job_finish_locked(job, WH_JOB_CANCELLED, cancelled_error());
    was_queued = TRUE;
  }
  g_mutex_unlock(&job->lock);

  g_cancellable_cancel(job->cancellable);
  if (was_queued) {
    job_mark_inactive(job, queue);
    schedule_notify(job);
  }
}

GCancellable *
wh_job_get_cancellable(wh_job *job)
{
  return job->cancellable;
}

/* --- Worker-side reporting -------------------------------------------------- */

gboolean
wh_job_is_cancelled(wh_job *job)
{
  return g_cancellable_is_cancelled(job->cancellable);
}

/* Rate is sampled at most every 250 ms and smoothed exponentially, so the
 * ETA does not jitter with bursty I/O. Caller holds job->lock. */
static void
update_rate_locked(wh_job *job)
{
  gint64 now = g_get_monotonic_time();
  double dt = (now - job->rate_time) / (double)G_USEC_PER_SEC;

  if (dt >= 0.25 && job->done >= job->rate_done) {
    double inst = (job->done - job->rate_done) / dt;
    job->rate = job->rate > 0 ? 0.7 * job->rate + 0.3 * inst : inst;
    job->rate_time = now;
    job->rate_done = job->done;
  } else if (job->done < job->rate_done) {
    /* Progress went backwards (a restart): start sampling afresh. */
    job->rate_time = now;
    job->rate_done = job->done;
    job->rate = 0;
  }
  if (job->total && job->rate > 0)
    job->eta = (job->total - MIN(job->done, job->total)) / job->rate;
  else
    job->eta = -1;
}

void
wh_job_set_progress(wh_job *job, guint64 done, guint64 total, const char *status)
{
  g_mutex_lock(&job->lock);
  if (state_is_terminal(job->state)) {
    g_mutex_unlock(&job->lock);
    return;
  }
  job->done = done;
  job->total = total;
  job->fraction = total ? MIN(1.0, done / (double)total) : -1;
  if (status)
    g_strlcpy(job->status, status, sizeof job->status);
  update_rate_locked(job);
  g_mutex_unlock(&job->lock);
  schedule_notify(job);
}

void
wh_job_set_fraction(wh_job *job, double fraction, const char *status)
{
  g_mutex_lock(&job->lock);
  if (state_is_terminal(job->state)) {
    g_mutex_unlock(&job->lock);
    return;
  }
  job->fraction = isfinite(fraction) ? CLAMP(fraction, 0.0, 1.0) : -1;
  if (status)
    g_strlcpy(job->status, status, sizeof job->status);
  if (job->fraction > 0 && job->start_time) {
    double elapsed = (g_get_monotonic_time() - job->start_time) / (double)G_USEC_PER_SEC;
    job->eta = elapsed * (1.0 - job->fraction) / job->fraction;
  } else {
    job->eta = -1;
  }
  g_mutex_unlock(&job->lock);
  schedule_notify(job);
}

void
wh_job_set_result(wh_job *job, gpointer result, GDestroyNotify destroy)
{
  g_mutex_lock(&job->lock);
  gpointer old = job->result;
  GDestroyNotify old_destroy = job->result_destroy;
  job->result = result;
  job->result_destroy = destroy;
  g_mutex_unlock(&job->lock);
  if (old && old_destroy && old != result)
    old_destroy(old);
}

/* --- Formatting -------------------------------------------------------------- */

static char *
format_duration(double s)
{
  if (s < 60)
    return g_strdup_printf(_("%d s"), (int)ceil(s));
  if (s < 3600)
    return g_strdup_printf(_("%d min %d s"), (int)(s / 60), (int)fmod(s, 60));
  return g_strdup_printf(_("%d h %d min"), (int)(s / 3600), (int)fmod(s / 60, 60));
}

char *
wh_job_progress_format(const wh_job_progress *p, gboolean bytes)
{
  GString *s = g_string_new(NULL);

  if (p->fraction >= 0)
    g_string_append_printf(s, "%3.0f%%", p->fraction * 100.0);

  if (p->total || p->done) {
    if (s->len)
      g_string_append(s, " · ");
    if (bytes) {
      g_autofree char *d = g_format_size(p->done);
      if (p->total) {
        g_autofree char *t = g_format_size(p->total);
        g_string_append_printf(s, _("%s of %s"), d, t);
      } else {
        g_string_append(s, d);
      }
    } else if (p->total) {
      g_autofree char *d = g_strdup_printf("%" G_GUINT64_FORMAT, p->done);
      g_autofree char *t = g_strdup_printf("%" G_GUINT64_FORMAT, p->total);
      /* Translators: progress count, e.g. "12 of 291" */
      g_string_append_printf(s, _("%s of %s"), d, t);
    } else {
      g_string_append_printf(s, "%" G_GUINT64_FORMAT, p->done);
    }
  }
  if (p->rate > 0) {
    if (s->len)
      g_string_append(s, " · ");
    if (bytes) {
      g_autofree char *r = g_format_size((guint64)p->rate);
      g_string_append_printf(s, _("%s/s"), r);
    } else {
      g_string_append_printf(s, _("%.1f/s"), p->rate);
    }
  }
  if (p->eta_seconds >= 0 && p->state == WH_JOB_RUNNING) {
    g_autofree char *eta = format_duration(p->eta_seconds);
    if (s->len)
      g_string_append(s, " · ");
    g_string_append_printf(s, _("%s left"), eta);
  }
  if (p->status[0]) {
    if (s->len)
      g_string_append(s, " · ");
    g_string_append(s, p->status);
  }
  return g_string_free(s, FALSE);
}
