/* bench-mainloop.c — how long the GUI's main loop goes without polling while a download, a
 * quantization and a generation run at once (issue 7's quality bar: every gap < 16 ms).
 *
 * Design note
 * -----------
 * The program starts a WhittleApplication and its window exactly as the GUI tests do
 * (tests/app/app-test-util: a temporary home, the memory settings backend, no keyring) and the
 * local hub look-alike (tests/hub-server) serving one GGUF file at a limited rate, opens the
 * jobs popover (its rows update and the jobs button's spinner animates), then submits on the
 * app's job queue, all at the same time:
 *  1. a download of the served file through the app's WhittleDownloads;
 *  2. a WH_JOB_QUANTIZE job converting an F16 model to Q4_K_M in the temporary folder;
 *  3. a session load (wh_session_load_async) followed by a generation of N tokens
 *     (wh_session_generate_async) whose text pieces arrive on the main loop.
 * The local hub's threads run at niceness 19: they stand in for Hugging Face's servers, whose
 * CPU time is not taken from the user's machine.
 * The queue runs the download beside the compute jobs; compute jobs (quantize, load, generate)
 * run one after the other by design (jobs.h), each on every core.
 *
 * What is measured: the default main context's poll function is replaced by one that wraps
 * g_poll() and timestamps the moment poll returns and the moment the next poll starts. Between
 * the two the loop is dispatching (idle, timeout and fd sources, GDK events, the frame clock's
 * layout and paint) and cannot see any new event: that interval is the "gap between
 * iterations" a user feels as a stall. Time spent blocked inside poll is not a gap (the loop
 * is free then). The frame clock's "after-paint" signal counts frames actually drawn.
 *
 * Finding the culprit: a watchdog thread looks at the loop every 2 ms; while a gap is longer
 * than 6 ms it interrupts the main thread with SIGPROF every ~2 ms, whose handler records the
 * stack (backtrace()) and the name of the GSource being dispatched. For the longest gaps over
 * 16 ms the samples are printed afterwards (symbols need -rdynamic; addresses of static
 * functions are printed as binary(+offset), which bench-mainloop.sh turns into names with
 * addr2line). Where each such gap's time went comes from Linux's schedstat: the main thread on
 * a CPU, waiting for one (other threads had the cores), or asleep (waiting for the X server,
 * which has its own on-CPU / waiting figures); the CPU time of the machine, this process, the
 * X server and everything else while the jobs ran, and of each of the process's threads with
 * its policy and niceness (read every 100 ms by a thread under SCHED_IDLE, so the bookkeeping
 * does not take a core from the main thread), say who competed for the cores.
 *
 * The frame clock's phases are timed too (layout: measure, allocate, re-present popups; paint:
 * snapshot, render, hand the picture to the X server), and the job rows' text changes counted.
 *
 * The download: the hub look-alike limits each connection, and the app fetches a large file in
 * 4 parallel Range segments, so each connection gets a quarter of --rate (the download as a
 * whole runs at --rate and lasts about 9 s with bench-mainloop.sh's 25 MiB/s).
 *
 * Output: jobs finished, duration, iterations, frames, longest gap, 99th and 99.9th percentile
 * gaps, the number of gaps over 16 ms and what the samples were doing (app code on the stack,
 * waiting for the X server, drawing), each long gap's frames (when each began in the gap, its
 * layout and paint times), the main thread's time waiting for a CPU over the whole run, and the
 * longest gap's breakdown even when it is under 16 ms; --json prints the figures as one JSON
 * object. Variants
 * for finding causes: --idle S (no jobs, spinner animating: the baseline), --no-popover,
 * --threads N (compute threads), --nice-workers N (every other thread reniced),
 * --no-sched-idle (compute jobs only niced), --generate-only (the chat speed on an idle
 * desktop, with --model and --tokens), --gap-log FILE (gap times to line up with perf),
 * --show-over MS (the samples of every gap over MS, not only over 16 ms).
 * A benchmark, not a test: it asserts nothing about the figures.
 */
#include "config.h"

#include <adwaita.h>
#include <errno.h>
#include <fcntl.h>
#include <execinfo.h>
#include <glib/gstdio.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../app/app-test-util.h"
#include "../hub-server/hub-server.h"
#include "gguf/gguf-types.h"
#include "jobs/jobs.h"
#include "quantize/quantize.h"
#include "session/session.h"
#include "wh-test-util.h"
#include "whittle-application.h"
#include "whittle-downloads.h"
#include "whittle-jobs-button.h"
#include "whittle-window.h"

#define STALL_US 16000
#define SAMPLE_AFTER_US 6000
#define MAX_SAMPLES 512
#define MAX_FRAMES 48
#define DOWNLOAD_SEGMENTS 4 /* wh_hub_download_params.n_segments = 0: 4 (hub.h) */

/* --- Gap measurement (main thread writes, the watchdog reads) --------------------------- */

static GPollFunc real_poll;
static GArray *gaps;               /* gint64 µs, one per iteration */
static GArray *gap_starts;         /* gint64: the poll return that began each gap */
static gint64 last_return;         /* when poll last returned; 0 before the first poll */
static volatile gint64 busy_since; /* = last_return while dispatching, 0 while polling */
static volatile gboolean watchdog_stop;
static pthread_t main_thread;

typedef struct {
  gint64 gap_start; /* busy_since when sampled: which gap it belongs to */
  gint64 at;        /* µs into the gap */
  int n_frames;
  void *frames[MAX_FRAMES];
  char source[64];
} Sample;

static Sample samples[MAX_SAMPLES];
/* --show-over: the gaps whose samples are printed (default: those over 16 ms), and from how
 * far into a gap the watchdog samples. */
static gint64 show_over_us = STALL_US, sample_after_us = SAMPLE_AFTER_US;
static volatile gint n_samples;

/* Where a gap's time went, from Linux's schedstat (/proc/.../schedstat: ns spent on a CPU, ns
 * spent runnable but waiting for one): the main thread's and the X server's. A gap that is
 * mostly "waiting for a CPU" is the scheduler giving the core to other threads; a gap that is
 * mostly "on a CPU" is work of the loop; the rest the main thread slept (X round trips while
 * the X server itself waited or worked). */
typedef struct {
  gint64 run_ns, wait_ns;
} SchedStat;

typedef struct {
  gint64 main_run_us, main_wait_us; /* main thread during the gap */
  gint64 x_run_us, x_wait_us;       /* X server's main thread during the gap */
} GapSched;

static int main_sched_fd = -1, x_sched_fd = -1;
static int x_server_pid;
static gint64 t0; /* when measuring began */
static SchedStat main_at_return, x_at_return;
static GArray *gap_sched; /* GapSched, one per gap */

static SchedStat
read_schedstat(int fd)
{
  SchedStat s = {0};
  char buf[128];
  ssize_t n = fd >= 0 ? pread(fd, buf, sizeof buf - 1, 0) : -1;
  if (n > 0) {
    buf[n] = '\0';
    long long run = 0, wait = 0;
    if (sscanf(buf, "%lld %lld", &run, &wait) == 2) {
      s.run_ns = run;
      s.wait_ns = wait;
    }
  }
  return s;
}

/* The Xvfb serving $DISPLAY (xvfb-run starts it with the display as an argument), or -1. */
static int
open_x_server_schedstat(void)
{
  const char *display = g_getenv("DISPLAY");
  g_autoptr(GDir) dir = g_dir_open("/proc", 0, NULL);
  const char *name;
  while (display && dir && (name = g_dir_read_name(dir))) {
    if (!g_ascii_isdigit(name[0]))
      continue;
    g_autofree char *comm_path = g_build_filename("/proc", name, "comm", NULL);
    g_autofree char *comm = NULL;
    if (!g_file_get_contents(comm_path, &comm, NULL, NULL) || !g_str_has_prefix(comm, "Xvfb"))
      continue;
    g_autofree char *cmd_path = g_build_filename("/proc", name, "cmdline", NULL);
    g_autofree char *cmd = NULL;
    gsize len = 0;
    if (!g_file_get_contents(cmd_path, &cmd, &len, NULL))
      continue;
    for (gsize i = 0; i < len; i += strlen(cmd + i) + 1)
      if (strcmp(cmd + i, display) == 0) {
        g_autofree char *path = g_build_filename("/proc", name, "schedstat", NULL);
        x_server_pid = atoi(name);
        return open(path, O_RDONLY | O_CLOEXEC);
      }
  }
  return -1;
}

/* CPU seconds: every CPU of the machine busy (from /proc/stat), this process, the X server. */
typedef struct {
  double machine_s, self_s, x_s;
} CpuUse;

static double
proc_cpu_seconds(const char *stat_path)
{
  g_autofree char *stat = NULL;
  if (!g_file_get_contents(stat_path, &stat, NULL, NULL) || !strrchr(stat, ')'))
    return 0;
  g_auto(GStrv) f = g_strsplit(strrchr(stat, ')') + 2, " ", -1);
  if (g_strv_length(f) < 13)
    return 0;
  return (g_ascii_strtod(f[11], NULL) + g_ascii_strtod(f[12], NULL)) / sysconf(_SC_CLK_TCK);
}

static CpuUse
cpu_use_now(void)
{
  CpuUse u = {0};
  g_autofree char *stat = NULL;
  if (g_file_get_contents("/proc/stat", &stat, NULL, NULL) && g_str_has_prefix(stat, "cpu ")) {
    /* user nice system idle iowait irq softirq steal: busy = all but idle and iowait */
    g_auto(GStrv) f = g_strsplit_set(stat + 4, " \n", 12);
    double busy = 0;
    int k = 0;
    for (int i = 0; f[i] && k < 8; i++) {
      if (!f[i][0])
        continue;
      if (k != 3 && k != 4)
        busy += g_ascii_strtod(f[i], NULL);
      k++;
    }
    u.machine_s = busy / sysconf(_SC_CLK_TCK);
  }
  u.self_s = proc_cpu_seconds("/proc/self/stat");
  if (x_server_pid > 0) {
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", x_server_pid);
    u.x_s = proc_cpu_seconds(path);
  }
  return u;
}

static gint
timed_poll(GPollFD *fds, guint nfds, gint timeout)
{
  gint64 enter = g_get_monotonic_time();
  if (last_return) {
    gint64 gap = enter - last_return;
    g_array_append_val(gaps, gap);
    g_array_append_val(gap_starts, last_return);
    SchedStat m = read_schedstat(main_sched_fd), x = read_schedstat(x_sched_fd);
    GapSched gs = {
        (m.run_ns - main_at_return.run_ns) / 1000, (m.wait_ns - main_at_return.wait_ns) / 1000,
        (x.run_ns - x_at_return.run_ns) / 1000, (x.wait_ns - x_at_return.wait_ns) / 1000};
    g_array_append_val(gap_sched, gs);
  }
  g_atomic_pointer_set((gpointer *)&busy_since, NULL);
  gint r = real_poll(fds, nfds, timeout);
  last_return = g_get_monotonic_time();
  main_at_return = read_schedstat(main_sched_fd);
  x_at_return = read_schedstat(x_sched_fd);
  g_atomic_pointer_set((gpointer *)&busy_since, GSIZE_TO_POINTER((gsize)last_return));
  return r;
}

/* SIGPROF handler: records the main thread's stack and the source being dispatched. Only
 * async-signal-tolerant work: backtrace() was called once before (it loads libgcc). */
static void
on_sample_signal(int sig)
{
  (void)sig;
  int i = g_atomic_int_add(&n_samples, 1);
  if (i >= MAX_SAMPLES)
    return;
  Sample *s = &samples[i];
  s->gap_start = (gint64)GPOINTER_TO_SIZE(g_atomic_pointer_get((gpointer *)&busy_since));
  s->at = g_get_monotonic_time() - s->gap_start;
  s->n_frames = backtrace(s->frames, MAX_FRAMES);
  GSource *src = g_main_current_source();
  const char *name = src ? g_source_get_name(src) : NULL;
  if (src && !name)
    name = "(unnamed source)";
  gsize k = 0;
  for (; name && name[k] && k + 1 < sizeof s->source; k++)
    s->source[k] = name[k];
  s->source[k] = '\0';
}

/* --nice-workers: every thread of the process but the main thread gets nice @nice_workers (what
 * the job queue's workers could do for themselves), looked up every 100 ms as workers come. */
static int nice_workers;
static pid_t main_tid;

static void
renice_workers(void)
{
  g_autoptr(GDir) dir = g_dir_open("/proc/self/task", 0, NULL);
  const char *name;
  while (dir && (name = g_dir_read_name(dir))) {
    pid_t tid = (pid_t)atoi(name);
    if (tid != main_tid && getpriority(PRIO_PROCESS, (id_t)tid) != nice_workers)
      setpriority(PRIO_PROCESS, (id_t)tid, nice_workers);
  }
}

/* The process's threads as last seen (thread_watch() looks every 100 ms, so short-lived
 * threads such as a quantization's are caught too): name, policy, niceness, CPU time. */
typedef struct {
  char comm[32];
  int policy, nice;
  double cpu_s, base_s; /* CPU time, and what it was when measuring began */
} ThreadSeen;

static GHashTable *threads_seen; /* tid -> ThreadSeen*; thread_watch()'s until it stops */

static void
look_at_threads(void)
{
  g_autoptr(GDir) dir = g_dir_open("/proc/self/task", 0, NULL);
  const char *name;
  while (dir && (name = g_dir_read_name(dir))) {
    g_autofree char *path = g_build_filename("/proc/self/task", name, "stat", NULL);
    g_autofree char *stat = NULL;
    if (!g_file_get_contents(path, &stat, NULL, NULL))
      continue;
    /* "tid (comm) S ..." — comm may hold spaces: fields count from the last ')'. */
    char *open = strchr(stat, '('), *close = strrchr(stat, ')');
    if (!open || !close)
      continue;
    g_auto(GStrv) f = g_strsplit(close + 2, " ", -1);
    if (g_strv_length(f) < 39)
      continue;
    /* f[0] is field 3 (state): utime 14, stime 15, nice 19, policy 41. */
    ThreadSeen *t = g_hash_table_lookup(threads_seen, GINT_TO_POINTER(atoi(name)));
    if (!t) {
      t = g_new0(ThreadSeen, 1);
      g_hash_table_insert(threads_seen, GINT_TO_POINTER(atoi(name)), t);
    }
    g_strlcpy(t->comm, open + 1, MIN(sizeof t->comm, (gsize)(close - open)));
    t->cpu_s = (g_ascii_strtod(f[11], NULL) + g_ascii_strtod(f[12], NULL)) / sysconf(_SC_CLK_TCK);
    t->nice = atoi(f[16]);
    t->policy = atoi(f[38]);
  }
}

static int
cmp_thread_cpu(gconstpointer a, gconstpointer b)
{
  const ThreadSeen *x = *(ThreadSeen *const *)a, *y = *(ThreadSeen *const *)b;
  return (x->cpu_s < y->cpu_s) - (x->cpu_s > y->cpu_s);
}

/* The CPU the threads used while measuring, summed over threads of the same name, policy and
 * niceness (a quantization starts a team per tensor), busiest first (> 10 ms). */
static void
print_threads(void)
{
  g_autoptr(GHashTable) groups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init(&it, threads_seen);
  while (g_hash_table_iter_next(&it, NULL, &value)) {
    const ThreadSeen *t = value;
    char *key = g_strdup_printf("%s|%d|%d", t->comm, t->policy, t->nice);
    ThreadSeen *g = g_hash_table_lookup(groups, key);
    if (!g) {
      g = g_new0(ThreadSeen, 1);
      *g = *t;
      g->cpu_s = 0;
      g->base_s = 0; /* the number of threads */
      g_hash_table_insert(groups, key, g);
    } else
      g_free(key);
    g->cpu_s += t->cpu_s - t->base_s;
    g->base_s += 1;
  }
  g_autoptr(GPtrArray) list = g_ptr_array_new();
  g_hash_table_iter_init(&it, groups);
  while (g_hash_table_iter_next(&it, NULL, &value))
    g_ptr_array_add(list, value);
  g_ptr_array_sort(list, cmp_thread_cpu);
  g_print("threads (CPU):  ");
  for (guint i = 0; i < list->len; i++) {
    const ThreadSeen *g = list->pdata[i];
    if (g->cpu_s < 0.01)
      break;
    g_autofree char *name =
        g->base_s > 1 ? g_strdup_printf("%s x%.0f", g->comm, g->base_s) : g_strdup(g->comm);
    const char *policy = g->policy == 5   ? "SCHED_IDLE"
                         : g->policy == 3 ? "SCHED_BATCH"
                         : g->policy      ? "real-time"
                                          : "normal";
    g_print(" %s %.2f s (%s, nice %d);", name, g->cpu_s, policy, g->nice);
  }
  g_print("\n");
}

/* Every 100 ms: the threads' CPU times (and --nice-workers). Reading /proc for each of ~40
 * threads takes ~1 ms, which at normal priority delayed the main thread when both cores were
 * busy: this bookkeeping runs under SCHED_IDLE, so any other thread takes the core at once. */
static gpointer
thread_watch(gpointer data)
{
  (void)data;
#ifdef SCHED_IDLE
  struct sched_param param = {0};
  sched_setscheduler(0, SCHED_IDLE, &param);
#endif
  gint64 last = 0;
  while (!g_atomic_int_get(&watchdog_stop)) {
    g_usleep(10000);
    if (g_get_monotonic_time() - last < 100000)
      continue;
    if (nice_workers)
      renice_workers();
    look_at_threads();
    last = g_get_monotonic_time();
  }
  return NULL;
}

/* Wakes every 2 ms, at normal priority: under SCHED_IDLE (tried) its samples came late, one
 * per gap at its very end, while the gaps were no shorter. */
static gpointer
watchdog(gpointer data)
{
  (void)data;
  gint64 sampled_gap = 0, last_sample = 0;
  while (!g_atomic_int_get(&watchdog_stop)) {
    g_usleep(2000);
    gint64 since = (gint64)GPOINTER_TO_SIZE(g_atomic_pointer_get((gpointer *)&busy_since));
    gint64 now = g_get_monotonic_time();
    /* From 6 ms on, every ~2 ms: the samples of a gap that ends up over 16 ms then show its
     * beginning too (only those gaps' samples are printed). */
    if (!since || now - since < sample_after_us)
      continue;
    if (since != sampled_gap || now - last_sample >= 2000) {
      sampled_gap = since;
      last_sample = now;
      pthread_kill(main_thread, SIGPROF);
    }
  }
  return NULL;
}

static int
cmp_gint64(const void *a, const void *b)
{
  gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
  return (x > y) - (x < y);
}

/* --- Jobs --------------------------------------------------------------------------------- */

typedef struct {
  char *input, *output;
  guint n_threads;
  wh_job *job;
  gboolean ok;
  char *error;
  double seconds;
} Quantize;

static void
quantize_progress(const wh_quantize_progress *p, gpointer user_data)
{
  Quantize *q = user_data;
  wh_job_set_progress(q->job, p->bytes_done, p->bytes_total, p->tensor_name);
}

static gboolean
quantize_abort(gpointer user_data)
{
  Quantize *q = user_data;
  return wh_job_is_cancelled(q->job);
}

static gboolean
run_quantize(wh_job *job, gpointer user_data, GError **error)
{
  Quantize *q = user_data;
  q->job = job;
  wh_quantize_params params = wh_quantize_default_params();
  params.ftype = wh_ftype_from_name("Q4_K_M");
  params.n_threads = q->n_threads;
  params.progress = quantize_progress;
  params.abort = quantize_abort;
  params.user_data = q;
  wh_quantize_result result = {0};
  gboolean ok = wh_quantize_file(q->input, q->output, &params, &result, error);
  q->seconds = result.seconds;
  return ok;
}

typedef struct {
  wh_job_queue *queue;
  wh_session *session;
  wh_job *load_job, *gen_job;
  int max_tokens;
  guint pieces;
  gsize bytes;
  gboolean done, ok;
  char *error;
  wh_session_stats stats;
} Generate;

static void
on_text(wh_session *session, const char *text, gsize len, gpointer user_data)
{
  (void)session;
  (void)text;
  Generate *g = user_data;
  g->pieces++;
  g->bytes += len;
}

static void
on_generated(wh_session *session, wh_job *job, gpointer user_data)
{
  Generate *g = user_data;
  g_autoptr(GError) error = NULL;
  g->ok = wh_session_generate_finish(session, job, &g->stats, &error);
  if (!g->ok)
    g->error = g_strdup(error ? error->message : "generation failed");
  g->done = TRUE;
}

static void
on_loaded(wh_job *job, gpointer user_data)
{
  Generate *g = user_data;
  if (!wh_job_is_finished(job))
    return;
  g_autoptr(GError) error = NULL;
  g->session = wh_session_load_finish(job, &error);
  if (g->session && wh_session_add_message(g->session, WH_SESSION_ROLE_USER,
                                           "Tell me a story about a little cat.", &error)) {
    wh_sampler_params sp;
    wh_session_get_sampler_params(g->session, &sp);
    sp.temperature = 0;
    wh_session_generate_params gp = wh_session_generate_default_params();
    gp.max_tokens = g->max_tokens;
    gp.ignore_eog = TRUE;
    if (wh_session_set_sampler_params(g->session, &sp, &error))
      g->gen_job = wh_session_generate_async(g->session, g->queue, &gp, on_text, on_generated, g,
                                             NULL, &error);
  }
  if (!g->gen_job) {
    g->error = g_strdup(error ? error->message : "loading failed");
    g->done = TRUE;
  }
}

/* --- How often the jobs popover's rows change their text (each change re-lays out the
 * popover and the window) -------------------------------------------------------------------- */

static guint n_text_changes, n_fraction_changes;

static void
on_item_text(GObject *item, GParamSpec *pspec, gpointer data)
{
  n_text_changes++;
}

static void
on_item_fraction(GObject *item, GParamSpec *pspec, gpointer data)
{
  n_fraction_changes++;
}

static void
on_jobs_changed(GListModel *model, guint position, guint removed, guint added, gpointer data)
{
  for (guint i = position; i < position + added; i++) {
    g_autoptr(GObject) item = g_list_model_get_item(model, i);
    if (!g_object_get_data(item, "bench-counted")) {
      g_object_set_data(item, "bench-counted", GINT_TO_POINTER(1));
      g_signal_connect(item, "notify::progress-text", G_CALLBACK(on_item_text), NULL);
      g_signal_connect(item, "notify::fraction", G_CALLBACK(on_item_fraction), NULL);
    }
  }
}

/* --- Driving the loop ---------------------------------------------------------------------- */

static gboolean
tick(gpointer data)
{
  (void)data;
  return G_SOURCE_CONTINUE;
}

/* Iterates the default context, blocking in poll when nothing is ready (the helpers of the GUI
 * tests sleep outside poll between iterations, which would count as gaps), until @cond is TRUE
 * (NULL: never) or @seconds passed. A 50 ms timeout wakes the loop to look at the clock. */
static gboolean
run_loop(gboolean (*cond)(gpointer), gpointer data, double seconds)
{
  gint64 end = g_get_monotonic_time() + (gint64)(seconds * G_USEC_PER_SEC);
  guint id = g_timeout_add(50, tick, NULL);
  gboolean met = FALSE;
  while (!(met = cond && cond(data)) && g_get_monotonic_time() < end)
    g_main_context_iteration(NULL, TRUE);
  g_source_remove(id);
  return met;
}

/* --- Main ------------------------------------------------------------------------------------ */

typedef struct {
  wh_job *download, *quantize;
  Generate *gen;
} Jobs;

static gboolean
all_done(gpointer data)
{
  Jobs *j = data;
  return (!j->download || wh_job_is_finished(j->download)) &&
         (!j->quantize || wh_job_is_finished(j->quantize)) && j->gen->done;
}

/* Frames of the window's frame clock (the popover's surface shares it): how many, the longest
 * interval between two, and how long the layout phase (before-paint to the end of "layout":
 * measuring, allocating, and re-presenting popups) and the paint phase (snapshot, render,
 * hand the picture to the X server) took. Our handlers are connected after GTK's, so they
 * run when GTK's work of that phase is done. */
static guint n_frames;
static gint64 last_frame, longest_frame, frame_start, layout_end;
static gint64 longest_layout, longest_paint, total_layout, total_paint;

/* Each frame's phases (start, end of layout, end of paint), to print the frames of a long gap. */
typedef struct {
  gint64 start, layout_end, end;
} Frame;
static GArray *frames;

static void
on_before_paint(GdkFrameClock *clock, gpointer data)
{
  frame_start = layout_end = g_get_monotonic_time();
}

static void
on_layout(GdkFrameClock *clock, gpointer data)
{
  layout_end = g_get_monotonic_time();
  longest_layout = MAX(longest_layout, layout_end - frame_start);
  total_layout += layout_end - frame_start;
}

static void
on_after_paint(GdkFrameClock *clock, gpointer data)
{
  gint64 now = g_get_monotonic_time();
  if (last_frame)
    longest_frame = MAX(longest_frame, now - last_frame);
  last_frame = now;
  if (frame_start) {
    longest_paint = MAX(longest_paint, now - layout_end);
    total_paint += now - layout_end;
    if (frames) {
      Frame f = {frame_start, layout_end, now};
      g_array_append_val(frames, f);
    }
  }
  n_frames++;
}

static const char *
job_outcome(wh_job *job)
{
  switch (wh_job_get_state(job)) {
  case WH_JOB_SUCCEEDED:
    return "succeeded";
  case WH_JOB_FAILED:
    return wh_job_get_error(job) ? wh_job_get_error(job)->message : "failed";
  case WH_JOB_CANCELLED:
    return "cancelled";
  default:
    return "unfinished";
  }
}

/* "lib.so(func+0x1) [0x..]" -> "func", or "lib.so+0x1" for a frame without a symbol. */
static char *
frame_name(const char *frame)
{
  const char *open = strchr(frame, '('), *slash = NULL;
  if (!open)
    return g_strdup(frame);
  for (const char *c = frame; c < open; c++)
    if (*c == '/')
      slash = c;
  const char *plus = strchr(open, '+'), *close = strchr(open, ')');
  if (plus && close && plus > open + 1 && plus < close)
    return g_strndup(open + 1, plus - open - 1);
  const char *base = slash ? slash + 1 : frame;
  return g_strdup_printf("%.*s%.*s", (int)(open - base), base,
                         close && plus ? (int)(close - plus) : 0, plus ? plus : "");
}

/* Frames of this binary (the app is linked in statically). */
static gboolean
is_app_frame(const char *frame)
{
  return strstr(frame, "/bench-mainloop(") != NULL;
}

/* How many frames of the sample's stack ran inside the dispatch: the ones above
 * g_main_context_dispatch (the frames below it are the loop that drives the context). */
static int
dispatched_frames(char **names, int n)
{
  for (int f = 2; f < n; f++)
    if (strstr(names[f], "(g_main_context_dispatch+"))
      return f;
  return n;
}

enum { KIND_APP, KIND_XSERVER, KIND_RENDER, KIND_OTHER, N_KINDS };
static const char *const kind_names[N_KINDS] = {"app code", "waiting for the X server",
                                                "drawing (GTK/cairo/pango)", "other"};

/* What the main thread was doing: app code anywhere on the stack wins, then a round trip to
 * the X server (libxcb/libX11), then drawing. */
static int
classify(char **names, int n)
{
  int kind = KIND_OTHER;
  n = dispatched_frames(names, n);
  for (int f = 2; f < n; f++) {
    if (is_app_frame(names[f]))
      return KIND_APP;
    if (kind > KIND_XSERVER && (strstr(names[f], "libxcb") || strstr(names[f], "libX11")))
      kind = KIND_XSERVER;
    if (kind > KIND_RENDER &&
        (strstr(names[f], "libpixman") || strstr(names[f], "libcairo") ||
         strstr(names[f], "libpango") || strstr(names[f], "(gsk_") || strstr(names[f], "snapshot")))
      kind = KIND_RENDER;
  }
  return kind;
}

static guint kind_counts[N_KINDS];

/* The samples taken during the gap that began at @gap_start: one line each (where, what the
 * innermost frames were), app frames in full (bench-mainloop.sh names them with addr2line),
 * or whole stacks with --stacks. */
/* One gap's time split by schedstat (see GapSched). */
static void
print_gap_sched(const GapSched *gs, gint64 gap_start, gint64 gap_us)
{
  gint64 slept = gap_us - gs->main_run_us - gs->main_wait_us;
  g_print("  gap of %.1f ms at %.2f s: main thread on a CPU %.1f ms, waiting for a CPU %.1f ms, "
          "sleeping "
          "%.1f ms; X server on a CPU %.1f ms, waiting for a CPU %.1f ms\n",
          gap_us / 1000.0, (gap_start - t0) / 1e6, gs->main_run_us / 1000.0,
          gs->main_wait_us / 1000.0, MAX(slept, 0) / 1000.0, gs->x_run_us / 1000.0,
          gs->x_wait_us / 1000.0);
  /* The frames drawn in it: what came before the frame (other sources), its layout, its paint. */
  for (guint i = 0; frames && i < frames->len; i++) {
    const Frame *f = &g_array_index(frames, Frame, i);
    if (f->start >= gap_start && f->start < gap_start + gap_us)
      g_print("    frame at %.1f ms into the gap: layout %.1f ms, paint %.1f ms\n",
              (f->start - gap_start) / 1000.0, (f->layout_end - f->start) / 1000.0,
              (f->end - f->layout_end) / 1000.0);
  }
}

static void
print_samples(gint64 gap_start, gint64 gap_us, gboolean stacks)
{
  (void)gap_us;
  int n = MIN(g_atomic_int_get(&n_samples), MAX_SAMPLES);
  for (int i = 0; i < n; i++) {
    if (samples[i].gap_start != gap_start)
      continue;
    char **names = backtrace_symbols(samples[i].frames, samples[i].n_frames);
    if (!names)
      continue;
    /* Frames 0-1 are the handler and the signal trampoline. */
    int kind = classify(names, samples[i].n_frames);
    GString *leaf = g_string_new(NULL);
    for (int f = 2; f < MIN(samples[i].n_frames, 9); f++) {
      g_autofree char *fn = frame_name(names[f]);
      g_string_append_printf(leaf, "%s%s", f > 2 ? " < " : "", fn);
    }
    g_print("    at %5.1f ms [%s] in %s: %s\n", samples[i].at / 1000.0, kind_names[kind],
            samples[i].source[0] ? samples[i].source : "(no source)", leaf->str);
    g_string_free(leaf, TRUE);
    int in_dispatch = dispatched_frames(names, samples[i].n_frames);
    for (int f = 2; f < samples[i].n_frames; f++)
      if (stacks || (f < in_dispatch && is_app_frame(names[f])))
        g_print("      %s\n", names[f]);
    free(names);
  }
}

/* Every sample with app code on the stack, whichever gap it was taken in. */
static void
print_app_samples(gboolean stacks)
{
  int n = MIN(g_atomic_int_get(&n_samples), MAX_SAMPLES);
  gboolean header = FALSE;
  for (int i = 0; i < n; i++) {
    char **names = backtrace_symbols(samples[i].frames, samples[i].n_frames);
    if (!names)
      continue;
    if (classify(names, samples[i].n_frames) == KIND_APP) {
      if (!header)
        g_print("samples with app code on the stack (any gap > 16 ms):\n");
      header = TRUE;
      int in_dispatch = dispatched_frames(names, samples[i].n_frames);
      g_print("    at %5.1f ms of a gap, in %s:\n", samples[i].at / 1000.0,
              samples[i].source[0] ? samples[i].source : "(no source)");
      for (int f = 2; f < samples[i].n_frames; f++)
        if (stacks || f <= in_dispatch)
          g_print("      %s\n", names[f]);
    }
    free(names);
  }
}

/* Counts every sample by kind (for the summary line). */
static void
count_samples(void)
{
  int n = MIN(g_atomic_int_get(&n_samples), MAX_SAMPLES);
  for (int i = 0; i < n; i++) {
    char **names = backtrace_symbols(samples[i].frames, samples[i].n_frames);
    if (names)
      kind_counts[classify(names, samples[i].n_frames)]++;
    free(names);
  }
}

int
main(int argc, char **argv)
{
  gboolean json = FALSE;
  int tokens = 300;
  int rate_kib = 0;
  double timeout = 300, idle = 0;
  gboolean stacks = FALSE, no_popover = FALSE, generate_only = FALSE, no_sched_idle = FALSE;
  int threads = 0;
  double show_over_ms = STALL_US / 1000.0;
  g_autofree char *download_src = NULL, *quantize_src = NULL, *gen_model = NULL;
  g_autofree char *gap_log = NULL;
  const GOptionEntry entries[] = {
      {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print one JSON object", NULL},
      {"download", 0, 0, G_OPTION_ARG_FILENAME, &download_src,
       "GGUF file the hub serves (default: the shared synth-llama-F16)", "FILE"},
      {"rate", 0, 0, G_OPTION_ARG_INT, &rate_kib,
       "Download rate in KiB/s (default: the file in about 8 s)", "KIB"},
      {"quantize", 0, 0, G_OPTION_ARG_FILENAME, &quantize_src,
       "F16 model to quantize to Q4_K_M (default: the shared synth-llama-F16)", "FILE"},
      {"model", 0, 0, G_OPTION_ARG_FILENAME, &gen_model,
       "Model to generate with (default: the shared stories260K)", "FILE"},
      {"nice-workers", 0, 0, G_OPTION_ARG_INT, &nice_workers,
       "Give every thread but the main one this nice value (1-19): workers yield to the UI", "N"},
      {"threads", 0, 0, G_OPTION_ARG_INT, &threads,
       "Threads of the quantization and the generation (default 0: one per CPU)", "N"},
      {"tokens", 0, 0, G_OPTION_ARG_INT, &tokens, "Tokens to generate (default 300)", "N"},
      {"idle", 0, 0, G_OPTION_ARG_DOUBLE, &idle,
       "Run no jobs: measure the same window for SECONDS, the jobs button's spinner "
       "animating (the baseline)",
       "SECONDS"},
      {"generate-only", 0, 0, G_OPTION_ARG_NONE, &generate_only,
       "Only the generation (no download, no quantization): the chat speed of an idle desktop",
       NULL},
      {"no-sched-idle", 0, 0, G_OPTION_ARG_NONE, &no_sched_idle,
       "Compute jobs at niceness 10 only, not under SCHED_IDLE as the app runs them", NULL},
      {"no-popover", 0, 0, G_OPTION_ARG_NONE, &no_popover,
       "Leave the jobs popover closed (only the jobs button's spinner animates)", NULL},
      {"stacks", 0, 0, G_OPTION_ARG_NONE, &stacks, "Print whole stacks of the samples", NULL},
      {"show-over", 0, 0, G_OPTION_ARG_DOUBLE, &show_over_ms,
       "Print the samples of the gaps over MS (default 16; only what is printed changes)", "MS"},
      {"gap-log", 0, 0, G_OPTION_ARG_FILENAME, &gap_log,
       "Write every gap over 8 ms to FILE as 'START_US LENGTH_US' (CLOCK_MONOTONIC, as "
       "`perf record -k CLOCK_MONOTONIC` stamps samples)",
       "FILE"},
      {"timeout", 0, 0, G_OPTION_ARG_DOUBLE, &timeout, "Give up after SECONDS (default 300)",
       "SECONDS"},
      {NULL}};
  g_autoptr(GOptionContext) octx = g_option_context_new("— main-loop gaps under load");
  g_option_context_add_main_entries(octx, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(octx, &argc, &argv, &error)) {
    g_printerr("bench-mainloop: %s\n", error->message);
    return 2;
  }
  show_over_us = (gint64)(MAX(show_over_ms, 1.0) * 1000);
  sample_after_us = MIN(SAMPLE_AFTER_US, show_over_us * 2 / 5);
  if (!download_src)
    download_src = wh_test_shared_path("reference/models/synth-llama-F16.gguf");
  if (!quantize_src)
    quantize_src = wh_test_shared_path("reference/models/synth-llama-F16.gguf");
  if (!gen_model)
    gen_model = wh_test_shared_path("models/stories260K.gguf");
  const char *inputs[] = {download_src, quantize_src, gen_model};
  for (guint i = 0; i < G_N_ELEMENTS(inputs); i++)
    if (!g_file_test(inputs[i], G_FILE_TEST_IS_REGULAR)) {
      g_printerr("bench-mainloop: %s is missing (set WH_SHARED_DIR to the shared data folder, "
                 "or pass the file)\n",
                 inputs[i]);
      return 2;
    }
  if (!wh_app_test_init_display()) {
    g_printerr("bench-mainloop: no display: run it under xvfb-run -a (bench-mainloop.sh does)\n");
    return 2;
  }

  /* The hub serves the file as org/bench-GGUF/bench-F16.gguf. */
  g_autofree char *tmp_dir = g_dir_make_tmp("whittle-bench-mainloop-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *repo = g_build_filename(tmp_dir, "root", "org", "bench-GGUF", NULL);
  g_assert_cmpint(g_mkdir_with_parents(repo, 0755), ==, 0);
  g_autofree char *served = g_build_filename(repo, "bench-F16.gguf", NULL);
  g_autofree char *abs_src = g_canonicalize_filename(download_src, NULL);
  if (symlink(abs_src, served) != 0) {
    g_printerr("bench-mainloop: cannot link %s: %s\n", served, g_strerror(errno));
    return 1;
  }
  GStatBuf st;
  g_assert_cmpint(g_stat(download_src, &st), ==, 0);
  g_autofree char *root = g_build_filename(tmp_dir, "root", NULL);
  wh_test_hub *hub = wh_test_hub_start(root, &error);
  g_assert_no_error(error);
  wh_test_hub_faults faults = {0};
  /* The hub server limits each connection; the app downloads a file of 32 MiB or more in
   * DOWNLOAD_SEGMENTS parallel Range requests (the hub client's default), so each gets its
   * share and the download as a whole runs at the rate asked for. */
  guint64 total_rate =
      rate_kib > 0 ? (guint64)rate_kib * 1024u : MAX((guint64)st.st_size / 8, 65536);
  guint segments = (guint64)st.st_size >= 32 * 1048576ull ? DOWNLOAD_SEGMENTS : 1;
  faults.rate = (guint)MAX(total_rate / segments, 1024);
  /* The local server stands in for Hugging Face: its work is not the user's machine's. */
  faults.server_nice = 19;
  wh_test_hub_set_faults(hub, &faults);

  wh_app_test_isolate(tmp_dir);
  g_setenv("HF_ENDPOINT", wh_test_hub_url(hub), TRUE);
  WhittleApplication *app = NULL;
  WhittleWindow *window = wh_app_test_start(&app, 1100, 720);

  /* The jobs popover open: its rows redraw as the progress moves. */
  GtkMenuButton *jobs_button =
      whittle_jobs_button_get_menu_button(whittle_window_get_jobs_button(window));
  if (!no_popover)
    gtk_menu_button_popup(jobs_button);
  GdkFrameClock *clock = gtk_widget_get_frame_clock(GTK_WIDGET(window));
  g_signal_connect(clock, "before-paint", G_CALLBACK(on_before_paint), NULL);
  g_signal_connect_after(clock, "layout", G_CALLBACK(on_layout), NULL);
  g_signal_connect_after(clock, "after-paint", G_CALLBACK(on_after_paint), NULL);
  wh_app_test_settle(0.5);

  /* Measuring from here on. */
  void *warm[4];
  backtrace(warm, 4); /* loads libgcc outside the signal handler */
  main_thread = pthread_self();
  main_tid = gettid();
  struct sigaction sa = {0};
  sa.sa_handler = on_sample_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPROF, &sa, NULL);
  gaps = g_array_sized_new(FALSE, FALSE, sizeof(gint64), 1 << 16);
  gap_starts = g_array_sized_new(FALSE, FALSE, sizeof(gint64), 1 << 16);
  gap_sched = g_array_sized_new(FALSE, FALSE, sizeof(GapSched), 1 << 16);
  main_sched_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
  x_sched_fd = open_x_server_schedstat();
  real_poll = g_main_context_get_poll_func(NULL);
  g_main_context_set_poll_func(NULL, timed_poll);
  threads_seen = g_hash_table_new_full(NULL, NULL, NULL, g_free);
  look_at_threads();
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init(&it, threads_seen);
  while (g_hash_table_iter_next(&it, NULL, &value))
    ((ThreadSeen *)value)->base_s = ((ThreadSeen *)value)->cpu_s;
  GThread *dog = g_thread_new("bench-watchdog", watchdog, NULL);
  GThread *thread_watcher = g_thread_new("bench-threads", thread_watch, NULL);
  n_frames = 0;
  last_frame = longest_frame = frame_start = 0;
  frames = g_array_sized_new(FALSE, FALSE, sizeof(Frame), 4096);
  longest_layout = longest_paint = total_layout = total_paint = 0;
  t0 = g_get_monotonic_time();
  CpuUse cpu0 = cpu_use_now();

  wh_job_queue *queue = whittle_application_get_job_queue(app);
  g_signal_connect(whittle_application_get_jobs(app), "items-changed", G_CALLBACK(on_jobs_changed),
                   NULL);
  WhittleDownloads *downloads = whittle_application_get_downloads(app);
  Jobs jobs = {0};
  Quantize *q = g_new0(Quantize, 1);
  Generate gen = {.queue = queue, .max_tokens = tokens};
  jobs.gen = &gen;
  gboolean finished = TRUE;
  if (idle > 0) {
    /* The jobs button as when a job runs (spinner animating), but no job. */
    whittle_jobs_button_set_n_active(whittle_window_get_jobs_button(window), 1);
    run_loop(NULL, NULL, idle);
    whittle_jobs_button_set_n_active(whittle_window_get_jobs_button(window), 0);
  } else {
    if (no_sched_idle)
      wh_job_queue_set_compute_idle(queue, FALSE);
    if (!generate_only) {
      jobs.download =
          wh_job_ref(whittle_downloads_start(downloads, "org/bench-GGUF", NULL, "bench-F16.gguf"));
      q->input = g_strdup(quantize_src);
      q->n_threads = (guint)MAX(threads, 0);
      q->output = g_build_filename(tmp_dir, "bench-Q4_K_M.gguf", NULL);
      g_autofree char *qtitle = g_strdup_printf("Quantizing %s to Q4_K_M", q->input);
      jobs.quantize =
          wh_job_queue_submit(queue, WH_JOB_QUANTIZE, qtitle, run_quantize, q, NULL, NULL, NULL);
    }
    wh_session_params sparams = wh_session_default_params();
    if (threads > 0)
      sparams.context.n_threads = threads;
    gen.load_job = wh_session_load_async(gen_model, &sparams, queue, on_loaded, &gen);
    finished = run_loop(all_done, &jobs, timeout);
  }
  gint64 t1 = g_get_monotonic_time();
  CpuUse cpu1 = cpu_use_now();
  run_loop(NULL, NULL, 0.3); /* the last notifications and frames, still measured */
  gint64 t2 = g_get_monotonic_time();

  g_main_context_set_poll_func(NULL, real_poll);
  g_atomic_int_set(&watchdog_stop, TRUE);
  g_thread_join(dog);
  g_thread_join(thread_watcher);
  signal(SIGPROF, SIG_IGN);

  /* Figures. */
  guint n = gaps->len;
  g_autofree gint64 *sorted = g_memdup2(gaps->data, (gsize)n * sizeof(gint64));
  qsort(sorted, n, sizeof(gint64), cmp_gint64);
  gint64 longest = n ? sorted[n - 1] : 0;
  gint64 p99 = n ? sorted[(gsize)((n - 1) * 0.99)] : 0;
  gint64 p999 = n ? sorted[(gsize)((n - 1) * 0.999)] : 0;
  guint over = 0;
  guint n_show = 0;
  for (guint i = 0; i < n; i++) {
    over += sorted[i] > STALL_US;
    n_show += sorted[i] > show_over_us;
  }
  /* Where the time of the gaps over 16 ms went, summed. */
  GapSched stall_sum = {0};
  gint64 stall_us = 0;
  for (guint i = 0; i < n; i++) {
    gint64 g = g_array_index(gaps, gint64, i);
    if (g <= STALL_US)
      continue;
    const GapSched *gs = &g_array_index(gap_sched, GapSched, i);
    stall_us += g;
    stall_sum.main_run_us += gs->main_run_us;
    stall_sum.main_wait_us += gs->main_wait_us;
    stall_sum.x_run_us += gs->x_run_us;
    stall_sum.x_wait_us += gs->x_wait_us;
  }
  guint n_jobs = (jobs.download ? 1 : 0) + (jobs.quantize ? 1 : 0) + (gen.load_job ? 1 : 0);
  guint n_jobs_ok = (jobs.download && wh_job_get_state(jobs.download) == WH_JOB_SUCCEEDED) +
                    (jobs.quantize && wh_job_get_state(jobs.quantize) == WH_JOB_SUCCEEDED) +
                    (gen.ok ? 1 : 0);
  count_samples();
  if (gap_log) {
    GString *log = g_string_new(NULL);
    for (guint i = 0; i < n; i++)
      if (g_array_index(gaps, gint64, i) > 8000)
        g_string_append_printf(log, "%" G_GINT64_FORMAT " %" G_GINT64_FORMAT "\n",
                               g_array_index(gap_starts, gint64, i),
                               g_array_index(gaps, gint64, i));
    if (!g_file_set_contents(gap_log, log->str, (gssize)log->len, &error))
      g_printerr("bench-mainloop: %s\n", error->message);
    g_clear_error(&error);
    g_string_free(log, TRUE);
  }
  double duration = (t2 - t0) / 1e6;

  if (json) {
    g_print("{\"finished\": %s, \"jobs_succeeded\": %u, \"jobs\": %u, \"duration_s\": %.3f, "
            "\"jobs_s\": %.3f, \"iterations\": %u, \"frames\": %u, \"longest_frame_ms\": %.2f, "
            "\"longest_layout_ms\": %.2f, \"longest_paint_ms\": %.2f, \"layout_s\": %.3f, "
            "\"paint_s\": %.3f, \"row_text_changes\": %u, \"row_fraction_changes\": %u, "
            "\"longest_gap_ms\": %.2f, \"p99_gap_ms\": %.3f, \"p999_gap_ms\": %.3f, "
            "\"gaps_over_16ms\": %u, \"stalls_main_run_ms\": %.1f, \"stalls_main_wait_ms\": %.1f, "
            "\"stalls_x_run_ms\": %.1f, \"stalls_x_wait_ms\": %.1f, \"download_bytes\": "
            "%" G_GINT64_FORMAT
            ", \"quantize_s\": %.3f, \"generated_tokens\": %u, \"text_pieces\": %u, "
            "\"stall_samples\": {\"app\": %u, \"x_server\": %u, \"drawing\": %u, \"other\": %u}}\n",
            finished ? "true" : "false", n_jobs_ok, n_jobs, duration, (t1 - t0) / 1e6, n, n_frames,
            longest_frame / 1000.0, longest_layout / 1000.0, longest_paint / 1000.0,
            total_layout / 1e6, total_paint / 1e6, n_text_changes, n_fraction_changes,
            longest / 1000.0, p99 / 1000.0, p999 / 1000.0, over, stall_sum.main_run_us / 1000.0,
            stall_sum.main_wait_us / 1000.0, stall_sum.x_run_us / 1000.0,
            stall_sum.x_wait_us / 1000.0, (gint64)st.st_size, q->seconds,
            gen.stats.generated_tokens, gen.pieces, kind_counts[KIND_APP],
            kind_counts[KIND_XSERVER], kind_counts[KIND_RENDER], kind_counts[KIND_OTHER]);
  } else {
    if (n_jobs == 0)
      g_print("jobs finished:   none run (--idle: the baseline)\n");
    else
      g_print("jobs finished:   %u of %u succeeded%s\n", n_jobs_ok, n_jobs,
              finished ? "" : " (TIMED OUT)");
    if (jobs.download) {
      wh_job_progress dp;
      wh_job_get_progress(jobs.download, &dp);
      g_print("  download:      %s (%.1f MiB at %.0f KiB/s: %.2f s)\n", job_outcome(jobs.download),
              st.st_size / 1048576.0, total_rate / 1024.0, dp.elapsed_seconds);
    }
    if (jobs.quantize)
      g_print("  quantize:      %s (%.2f s)\n", job_outcome(jobs.quantize), q->seconds);
    if (gen.load_job)
      g_print("  generate:      %s (%u tokens in %u pieces, %.1f tokens/s)\n",
              gen.error ? gen.error : (gen.ok ? "succeeded" : "failed"), gen.stats.generated_tokens,
              gen.pieces, gen.stats.generation_tokens_per_second);
    g_print("duration:        %.2f s (jobs %.2f s)\n", duration, (t1 - t0) / 1e6);
    double other_s =
        (cpu1.machine_s - cpu0.machine_s) - (cpu1.self_s - cpu0.self_s) - (cpu1.x_s - cpu0.x_s);
    g_print("CPU (jobs):      %.2f s busy of %.2f s: this process %.2f s, X server %.2f s, "
            "everything else %.2f s\n",
            cpu1.machine_s - cpu0.machine_s, (t1 - t0) / 1e6 * g_get_num_processors(),
            cpu1.self_s - cpu0.self_s, cpu1.x_s - cpu0.x_s, MAX(other_s, 0));
    print_threads();
    g_print("iterations:      %u\n", n);
    g_print("frames drawn:    %u (longest interval %.1f ms)\n", n_frames, longest_frame / 1000.0);
    g_print("job rows:        %u progress text changes, %u fraction changes\n", n_text_changes,
            n_fraction_changes);
    g_print("frame layout:    longest %.1f ms, %.2f s in all\n", longest_layout / 1000.0,
            total_layout / 1e6);
    g_print("frame paint:     longest %.1f ms, %.2f s in all\n", longest_paint / 1000.0,
            total_paint / 1e6);
    g_print("longest gap:     %.2f ms\n", longest / 1000.0);
    g_print("99th pct gap:    %.3f ms\n", p99 / 1000.0);
    g_print("99.9th pct gap:  %.3f ms\n", p999 / 1000.0);
    g_print("gaps > 16 ms:    %u\n", over);
    {
      /* Waiting for a CPU over the whole run: how often the main thread was runnable while
       * other threads had both cores. */
      gint64 wait_all = 0, wait_max = 0;
      guint longest_i = 0;
      for (guint i = 0; i < n; i++) {
        const GapSched *gs = &g_array_index(gap_sched, GapSched, i);
        wait_all += gs->main_wait_us;
        wait_max = MAX(wait_max, gs->main_wait_us);
        if (g_array_index(gaps, gint64, i) > g_array_index(gaps, gint64, longest_i))
          longest_i = i;
      }
      g_print("main waiting:    %.1f ms for a CPU in all gaps, at most %.1f ms in one\n",
              wait_all / 1000.0, wait_max / 1000.0);
      if (n && !n_show) {
        g_print("the longest gap:\n");
        print_gap_sched(&g_array_index(gap_sched, GapSched, longest_i),
                        g_array_index(gap_starts, gint64, longest_i), longest);
      }
    }
    if (over)
      g_print("in those gaps:   %.1f ms in all: main thread on a CPU %.1f ms, waiting for a CPU "
              "%.1f ms, sleeping %.1f ms; X server on a CPU %.1f ms, waiting for a CPU %.1f ms\n",
              stall_us / 1000.0, stall_sum.main_run_us / 1000.0, stall_sum.main_wait_us / 1000.0,
              (stall_us - stall_sum.main_run_us - stall_sum.main_wait_us) / 1000.0,
              stall_sum.x_run_us / 1000.0, stall_sum.x_wait_us / 1000.0);
    g_print("stall samples:   %u app code, %u waiting for the X server, %u drawing, %u other\n",
            kind_counts[KIND_APP], kind_counts[KIND_XSERVER], kind_counts[KIND_RENDER],
            kind_counts[KIND_OTHER]);
    if (n_show) {
      /* Where the longest gaps came from: the samples taken during them. */
      g_print("samples taken during gaps > %.0f ms (longest first, at most 5 gaps):\n",
              show_over_us / 1000.0);
      GArray *order = g_array_new(FALSE, FALSE, sizeof(guint));
      for (guint k = 0; k < 5; k++) {
        gint64 best = show_over_us;
        guint best_i = G_MAXUINT;
        for (guint i = 0; i < n; i++) {
          gint64 g = g_array_index(gaps, gint64, i);
          gboolean taken = FALSE;
          for (guint o = 0; o < order->len; o++)
            taken |= g_array_index(order, guint, o) == i;
          if (g > best && !taken) {
            best = g;
            best_i = i;
          }
        }
        if (best_i == G_MAXUINT)
          break;
        g_array_append_val(order, best_i);
        print_gap_sched(&g_array_index(gap_sched, GapSched, best_i),
                        g_array_index(gap_starts, gint64, best_i), best);
        print_samples(g_array_index(gap_starts, gint64, best_i), best, stacks);
      }
      g_array_free(order, TRUE);
      print_app_samples(stacks);
    }
  }

  /* Tear down as the tests do. */
  gtk_popover_popdown(gtk_menu_button_get_popover(jobs_button));
  run_loop(NULL, NULL, 0.2);
  if (gen.session)
    wh_session_unref(gen.session);
  if (gen.load_job)
    wh_job_unref(gen.load_job);
  if (gen.gen_job)
    wh_job_unref(gen.gen_job);
  g_free(gen.error);
  if (jobs.download)
    wh_job_unref(jobs.download);
  if (jobs.quantize)
    wh_job_unref(jobs.quantize);
  gtk_window_destroy(GTK_WINDOW(window));
  wh_app_test_settle(0.2);
  g_object_unref(app);
  g_free(q->input);
  g_free(q->output);
  g_free(q);
  wh_test_hub_stop(hub);
  wh_test_rmdir_r(tmp_dir);
  g_array_free(gaps, TRUE);
  g_array_free(gap_starts, TRUE);
  g_array_free(gap_sched, TRUE);
  g_clear_pointer(&frames, g_array_unref);
  g_hash_table_unref(threads_seen);
  if (main_sched_fd >= 0)
    close(main_sched_fd);
  if (x_sched_fd >= 0)
    close(x_sched_fd);
  return finished ? 0 : 1;
}
