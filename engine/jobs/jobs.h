/* jobs.h — the in-process job queue.
 *
 * Design note
 * -----------
 * Owns: the worker threads that run every long operation of the engine
 * (download, convert, quantize, imatrix, load, generate, evaluate).
 * Promises:
 *  - A job runs its function once, on a worker thread, and ends in exactly
 *    one terminal state: SUCCEEDED, FAILED (with a GError) or CANCELLED.
 *  - I/O jobs (download) run side by side, up to max_io at once. Compute jobs
 *    (everything else) run one at a time, in submission order, so they do not
 *    fight over the cores (they use the compute pool themselves).
 *  - Progress reported from the worker is stored under a lock and delivered
 *    to the queue's GMainContext by the queue's one GSource, at most one
 *    pending notification per job (coalesced): a job that reports a million
 *    times per second costs the main loop one callback per iteration at most.
 *    A worker never takes the context's lock (it wakes the context after
 *    releasing its own), so a worker under SCHED_IDLE cannot stall the
 *    context's thread. The terminal notification is always delivered, and
 *    always last.
 *  - Cancelling is safe at any point, from any thread, any number of times:
 *    a queued job is cancelled without running; a running job sees its
 *    GCancellable fire and wh_job_is_cancelled() become TRUE.
 * Does not: know anything about GTK, or about what a job does.
 *
 * Thread-safety: every function here may be called from any thread, except
 * where noted. Callbacks (wh_job_notify_func) run on the queue's main context.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define WH_JOBS_ERROR (wh_jobs_error_quark())
GQuark wh_jobs_error_quark(void);

typedef enum {
  WH_JOBS_ERROR_CANCELLED, /* the job was cancelled (also G_IO_ERROR_CANCELLED) */
  WH_JOBS_ERROR_SHUTDOWN,  /* the queue was shut down before the job ran */
  WH_JOBS_ERROR_FAILED,    /* the job function failed without setting an error */
} wh_jobs_error;

typedef enum {
  WH_JOB_DOWNLOAD,
  WH_JOB_CONVERT,
  WH_JOB_QUANTIZE,
  WH_JOB_IMATRIX,
  WH_JOB_LOAD,
  WH_JOB_GENERATE,
  WH_JOB_EVALUATE,
} wh_job_kind;

typedef enum {
  WH_JOB_QUEUED,
  WH_JOB_RUNNING,
  WH_JOB_SUCCEEDED,
  WH_JOB_FAILED,
  WH_JOB_CANCELLED,
} wh_job_state;

typedef struct wh_job_queue wh_job_queue;
typedef struct wh_job wh_job;

/* A snapshot of a job's progress, filled by wh_job_get_progress(). */
typedef struct {
  wh_job_state state;
  double fraction;    /* 0..1; negative when unknown */
  guint64 done;       /* units done (bytes for I/O, elements/tensors otherwise) */
  guint64 total;      /* 0 when unknown */
  double rate;        /* units per second, smoothed; 0 when unknown */
  double eta_seconds; /* negative when unknown */
  double elapsed_seconds;
  char status[256]; /* last status line, NUL-terminated */
} wh_job_progress;

/* Runs on a worker thread. Return TRUE on success; on failure return FALSE
 * and set @error. Check wh_job_is_cancelled() between units of work and
 * return FALSE (error may be left unset) when it is TRUE. */
typedef gboolean (*wh_job_func)(wh_job *job, gpointer user_data, GError **error);

/* Runs on the queue's main context whenever the job changed (progress,
 * state). Coalesced: several changes may arrive as one call. Inside the
 * callback the getters (state, progress, error) answer from a snapshot taken
 * when the notification was dispatched, so exactly one call sees a terminal
 * state, and it is the last call. */
typedef void (*wh_job_notify_func)(wh_job *job, gpointer user_data);

/* Creates a queue delivering notifications on @context (NULL: the thread
 * default context of the caller at creation time). @max_io = how many I/O
 * jobs run at once (0: a default of 4; at most 16), each on a thread of the queue's own
 * (joined by wh_job_queue_free()). Returns a new queue; free with
 * wh_job_queue_free(). */
wh_job_queue *wh_job_queue_new(GMainContext *context, guint max_io);

/* Cancels every job, waits for the workers to finish, and frees the queue.
 * Jobs still referenced by the caller stay valid (refcounted) but will never
 * notify again. Must not be called from a job function. */
void wh_job_queue_free(wh_job_queue *queue);

/* Runs this queue's compute jobs (and the threads they start, such as a model's
 * compute threads, which inherit it) at the scheduling niceness @nice (0..19; Linux
 * only, elsewhere a no-op). An interactive app sets 10 so that a quantization or a
 * generation using every core leaves the UI thread and the display server the CPU they
 * need for each frame. Applies to jobs that start after the call; a worker thread's
 * niceness is only ever raised (lowering it needs privileges). Any thread. */
void wh_job_queue_set_compute_nice(wh_job_queue *queue, int nice);

/* With @idle, this queue's compute jobs (and the threads they start) run under the SCHED_IDLE
 * policy (Linux only, elsewhere a no-op; the compute niceness still applies): they use every
 * core nobody else wants, and any normal thread that wakes up (the UI thread for a frame, the
 * display server, a download) takes the core back at once instead of waiting up to a
 * scheduler slice, as it may behind merely niced threads. On an idle desktop the jobs run at
 * full speed. One-way for the queue's compute thread (an unprivileged thread cannot leave
 * SCHED_IDLE): applies to jobs that start after the call and stays. Any thread. */
void wh_job_queue_set_compute_idle(wh_job_queue *queue, gboolean idle);

/* Called on the queue's context for every change of every job (after the
 * job's own notify). For lists of jobs such as the GUI's jobs popover.
 * One observer per queue; NULL removes it. */
void wh_job_queue_set_observer(wh_job_queue *queue, wh_job_notify_func func, gpointer user_data);

/* Submits a job. @title is a human-readable label ("Downloading x.gguf").
 * @func runs on a worker with @user_data; @destroy (may be NULL) frees
 * @user_data after the job ended and its last notification was delivered.
 * @notify (may be NULL) runs on the queue's context. Returns a new reference
 * to the job (free with wh_job_unref()). */
wh_job *wh_job_queue_submit(wh_job_queue *queue, wh_job_kind kind, const char *title,
                            wh_job_func func, gpointer user_data, GDestroyNotify destroy,
                            wh_job_notify_func notify, gpointer notify_data);

/* Number of jobs not yet ended (queued + running). */
guint wh_job_queue_n_active(wh_job_queue *queue);

/* Blocks the calling thread until every submitted job has ended. Does not
 * iterate the main context: for CLI and tests, which then iterate it to
 * flush notifications. */
void wh_job_queue_wait_idle(wh_job_queue *queue);

wh_job *wh_job_ref(wh_job *job);
void wh_job_unref(wh_job *job);

/* Identity. Returned strings are owned by the job and live as long as it. */
guint64 wh_job_get_id(wh_job *job);
wh_job_kind wh_job_get_kind(wh_job *job);
const char *wh_job_get_title(wh_job *job);
const char *wh_job_kind_to_string(wh_job_kind kind);
gboolean wh_job_kind_is_io(wh_job_kind kind);

/* State and results (any thread). */
wh_job_state wh_job_get_state(wh_job *job);
gboolean wh_job_is_finished(wh_job *job);
void wh_job_get_progress(wh_job *job, wh_job_progress *out);
/* The error of a FAILED or CANCELLED job (owned by the job), else NULL. */
const GError *wh_job_get_error(wh_job *job);
/* The result pointer set by the job function, owned by the job. */
gpointer wh_job_get_result(wh_job *job);
/* Blocks until the job has ended; returns its terminal state. */
wh_job_state wh_job_wait(wh_job *job);

/* Cancels the job (any thread, any time, idempotent). */
void wh_job_cancel(wh_job *job);
/* The job's GCancellable (owned by the job), for passing to GIO calls. */
GCancellable *wh_job_get_cancellable(wh_job *job);

/* --- For job functions (worker thread) ----------------------------------- */

gboolean wh_job_is_cancelled(wh_job *job);
/* Reports progress: @done of @total units (total 0 = unknown). Rate and ETA
 * are derived and smoothed. @status may be NULL to keep the previous one. */
void wh_job_set_progress(wh_job *job, guint64 done, guint64 total, const char *status);
/* Reports a fraction directly (for work not measured in units). */
void wh_job_set_fraction(wh_job *job, double fraction, const char *status);
/* Hands a result to the job; @destroy frees it when the job is freed. */
void wh_job_set_result(wh_job *job, gpointer result, GDestroyNotify destroy);

/* Formats "1.2 GB of 4.0 GB · 35.1 MB/s · 1 min 10 s left" style text into
 * a newly allocated string (for CLI and GUI alike). */
char *wh_job_progress_format(const wh_job_progress *progress, gboolean bytes);

G_END_DECLS
