/* cli-util.c — option parsing, errors, progress and job running shared by
 * every whittle-cli subcommand (see cli-util.h). */
#include "config.h"

#include "cli-util.h"
#include "planner/planner.h"

#include <glib-unix.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

gboolean
wh_cli_stderr_is_tty(void)
{
  static int tty = -1;
  if (tty < 0)
    tty = isatty(STDERR_FILENO) ? 1 : 0;
  return tty == 1;
}

void
wh_cli_print_usage(const wh_cli_command *cmd, FILE *out)
{
  fprintf(out, "Usage: whittle-cli %s %s\n", cmd->name, cmd->usage ? cmd->usage : "");
}

int
wh_cli_usage_error(const wh_cli_command *cmd, const char *format, ...)
{
  va_list ap;
  va_start(ap, format);
  g_autofree char *msg = g_strdup_vprintf(format, ap);
  va_end(ap);
  wh_cli_progress_end();
  fprintf(stderr, "whittle-cli %s: %s\n", cmd->name, msg);
  wh_cli_print_usage(cmd, stderr);
  fprintf(stderr, "Run 'whittle-cli help %s' for details.\n", cmd->name);
  return WH_CLI_EXIT_USAGE;
}

int
wh_cli_fail(const wh_cli_command *cmd, const GError *error)
{
  wh_cli_progress_end();
  fprintf(stderr, "whittle-cli %s: %s\n", cmd->name, error ? error->message : "failed");
  return WH_CLI_EXIT_FAILURE;
}

gboolean
wh_cli_parse_options(const wh_cli_command *cmd, GOptionEntry *entries, int *argc, char ***argv)
{
  g_autofree char *param = g_strdup_printf("%s — %s", cmd->usage ? cmd->usage : "", cmd->summary);
  g_autoptr(GOptionContext) ctx = g_option_context_new(param);
  g_autofree char *prgname = g_strdup_printf("whittle-cli %s", cmd->name);
  g_autoptr(GError) error = NULL;

  g_set_prgname(prgname);
  if (entries)
    g_option_context_add_main_entries(ctx, entries, NULL);
  if (cmd->description)
    g_option_context_set_description(ctx, cmd->description);
  /* Keep "--" so commands can take arguments that look like options. */
  g_option_context_set_strict_posix(ctx, FALSE);
  if (!g_option_context_parse(ctx, argc, argv, &error)) {
    wh_cli_usage_error(cmd, "%s", error->message);
    return FALSE;
  }
  return TRUE;
}

/* --- Progress ------------------------------------------------------------ */

static gboolean progress_line_open = FALSE;
static gint64 progress_last_plain = 0;

void
wh_cli_print_json(JsonNode *root)
{
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_root(gen, root);
  json_generator_set_pretty(gen, TRUE);
  gsize len = 0;
  g_autofree char *text = json_generator_to_data(gen, &len);
  fwrite(text, 1, len, stdout);
  fputc('\n', stdout);
}

void
wh_cli_print_json_builder(JsonBuilder *builder)
{
  g_autoptr(JsonNode) root = json_builder_get_root(builder);
  wh_cli_print_json(root);
}

void
wh_cli_progress_print(const char *title, const wh_job_progress *p, gboolean bytes)
{
  g_autofree char *text = wh_job_progress_format(p, bytes);

  if (wh_cli_stderr_is_tty()) {
    /* One line, rewritten in place; \033[K clears what a longer line left. */
    fprintf(stderr, "\r%s: %s\033[K", title, text);
    progress_line_open = TRUE;
  } else {
    gint64 now = g_get_monotonic_time();
    if (now - progress_last_plain < G_USEC_PER_SEC)
      return;
    progress_last_plain = now;
    fprintf(stderr, "%s: %s\n", title, text);
  }
  fflush(stderr);
}

void
wh_cli_progress_end(void)
{
  if (progress_line_open) {
    fputc('\n', stderr);
    fflush(stderr);
    progress_line_open = FALSE;
  }
}

/* --- Running a job ------------------------------------------------------- */

typedef struct {
  GMainLoop *loop;
  wh_job *job;
  const char *title;
  gboolean bytes;
  gboolean quiet;
} run_state;

static void
run_notify(wh_job *job, gpointer user_data)
{
  run_state *st = user_data;
  wh_job_progress p;

  wh_job_get_progress(job, &p);
  if (!st->quiet && p.state == WH_JOB_RUNNING)
    wh_cli_progress_print(st->title, &p, st->bytes);
  if (wh_job_is_finished(job)) {
    if (!st->quiet && p.state == WH_JOB_SUCCEEDED) {
      p.fraction = 1.0;
      if (p.total)
        p.done = p.total;
      progress_last_plain = 0;
      wh_cli_progress_print(st->title, &p, st->bytes);
    }
    wh_cli_progress_end();
    g_main_loop_quit(st->loop);
  }
}

static gboolean
on_signal(gpointer user_data)
{
  run_state *st = user_data;
  if (st->job) {
    wh_cli_progress_end();
    fprintf(stderr, "Cancelling…\n");
    wh_job_cancel(st->job);
  }
  return G_SOURCE_CONTINUE;
}

gboolean
wh_cli_run_job(wh_job_kind kind, const char *title, wh_job_func func, gpointer user_data,
               gboolean bytes, gboolean quiet, GError **error)
{
  g_autoptr(GMainContext) ctx = g_main_context_new();
  run_state st = {0};
  gboolean ok;

  g_main_context_push_thread_default(ctx);
  st.loop = g_main_loop_new(ctx, FALSE);
  st.title = title;
  st.bytes = bytes;
  st.quiet = quiet;

  wh_job_queue *queue = wh_job_queue_new(ctx, 0);
  GSource *sigint = g_unix_signal_source_new(SIGINT);
  GSource *sigterm = g_unix_signal_source_new(SIGTERM);
  g_source_set_callback(sigint, on_signal, &st, NULL);
  g_source_set_callback(sigterm, on_signal, &st, NULL);
  g_source_attach(sigint, ctx);
  g_source_attach(sigterm, ctx);

  st.job = wh_job_queue_submit(queue, kind, title, func, user_data, NULL, run_notify, &st);
  g_main_loop_run(st.loop);

  ok = wh_job_get_state(st.job) == WH_JOB_SUCCEEDED;
  if (!ok) {
    const GError *err = wh_job_get_error(st.job);
    if (err)
      g_propagate_error(error, g_error_copy(err));
    else
      g_set_error_literal(error, WH_JOBS_ERROR, WH_JOBS_ERROR_FAILED, "failed");
  }

  g_source_destroy(sigint);
  g_source_destroy(sigterm);
  g_source_unref(sigint);
  g_source_unref(sigterm);
  wh_job_unref(st.job);
  wh_job_queue_free(queue);
  g_main_loop_unref(st.loop);
  g_main_context_pop_thread_default(ctx);
  return ok;
}

gboolean
wh_cli_parse_ngl(const char *ngl, gint32 *out)
{
  *out = 0;
  if (!ngl)
    return TRUE;
  if (g_ascii_strcasecmp(ngl, "auto") == 0) {
    *out = WH_PLANNER_NGL_AUTO;
    return TRUE;
  }
  guint64 v;
  if (!g_ascii_string_to_unsigned(ngl, 10, 0, G_MAXINT32, &v, NULL))
    return FALSE;
  *out = (gint32)v;
  return TRUE;
}

gboolean
wh_cli_gpu_params(gint32 ngl, const char *device, const wh_model_hparams *hp, wh_context_params *cp,
                  GError **error)
{
  g_strlcpy(cp->device, device ? device : "", sizeof(cp->device));
  if (ngl != WH_PLANNER_NGL_AUTO) {
    cp->n_gpu_layers = (guint32)ngl;
    return TRUE;
  }
  wh_device_list *devices = wh_devices_enumerate();
  wh_planner_params pp = wh_planner_default_params();
  pp.n_ctx = cp->n_ctx;
  pp.n_batch = cp->n_batch;
  pp.kv_type = cp->kv_type;
  pp.n_threads = cp->n_threads;
  pp.n_gpu_layers = WH_PLANNER_NGL_AUTO;
  pp.device = device;
  g_autoptr(GError) local = NULL;
  wh_plan plan;
  gboolean ok = wh_device_list_find_gpu(devices, device, &local) != NULL;
  if (ok)
    ok = wh_planner_compute(hp, devices, &pp, &plan, &local);
  wh_device_list_free(devices);
  if (!ok && device && *device) {
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  cp->n_gpu_layers = ok ? plan.n_gpu_layers : 0;
  if (!ok)
    fprintf(stderr, "--ngl auto: no GPU device found, running on the CPU\n");
  else if (plan.n_gpu_layers == 0)
    fprintf(stderr, "--ngl auto: the GPU has no room for a layer, running on the CPU\n");
  return TRUE;
}

void
wh_cli_gpu_report(const wh_context *ctx)
{
  const char *note = wh_context_get_gpu_note(ctx);
  if (note)
    fprintf(stderr, "GPU: %s\n", note);
}

/* --- sampling options (run, chat) ---------------------------------------------------------- */

void
wh_cli_sampling_init(wh_cli_sampling *s)
{
  s->temp = 0.8;
  s->top_p = 0.95;
  s->min_p = 0.05;
  s->repeat_penalty = 1.0;
  s->top_k = 40;
  s->seed = -1;
}

/* A new NULL-terminated array: @entries (NULL-terminated) followed by @n_extra of @extra. */
static GOptionEntry *
entries_append(const GOptionEntry *entries, const GOptionEntry *extra, gsize n_extra)
{
  gsize n = 0;
  while (entries[n].long_name)
    n++;
  GOptionEntry *all = g_new0(GOptionEntry, n + n_extra + 1);
  memcpy(all, entries, n * sizeof(GOptionEntry));
  memcpy(all + n, extra, n_extra * sizeof(GOptionEntry));
  return all;
}

GOptionEntry *
wh_cli_sampling_add_entries(const GOptionEntry *entries, wh_cli_sampling *s)
{
  const GOptionEntry sampling[] = {
      {"temp", 0, 0, G_OPTION_ARG_DOUBLE, &s->temp, "Temperature; 0 = greedy (default 0.8)", "T"},
      {"seed", 0, 0, G_OPTION_ARG_INT64, &s->seed, "Random seed (default: random)", "S"},
      {"top-k", 0, 0, G_OPTION_ARG_INT, &s->top_k, "Top-k, 0 = off (default 40)", "K"},
      {"top-p", 0, 0, G_OPTION_ARG_DOUBLE, &s->top_p, "Top-p, 1 = off (default 0.95)", "P"},
      {"min-p", 0, 0, G_OPTION_ARG_DOUBLE, &s->min_p, "Min-p, 0 = off (default 0.05)", "P"},
      {"repeat-penalty", 0, 0, G_OPTION_ARG_DOUBLE, &s->repeat_penalty,
       "Repetition penalty over the last 64 tokens, 1 = off (default 1)", "R"},
  };
  return entries_append(entries, sampling, G_N_ELEMENTS(sampling));
}

GOptionEntry *
wh_cli_run_add_entries(const GOptionEntry *entries, wh_cli_run_options *o)
{
  const GOptionEntry run[] = {
      {"threads", 't', 0, G_OPTION_ARG_INT, &o->n_threads, "Compute threads (default: all cores)",
       "N"},
      {"kv-type", 0, 0, G_OPTION_ARG_STRING, &o->kv_type,
       "KV cache type: f16 (default), q8_0, q4_0, f32", "TYPE"},
      {"ngl", 0, 0, G_OPTION_ARG_STRING, &o->ngl,
       "Layers on the GPU, from the last one down (n_layer + 1 adds the output layer): a count, "
       "all, or auto = as many as fit (default 0)",
       "N|all|auto"},
      {"device", 0, 0, G_OPTION_ARG_STRING, &o->device,
       "GPU device (part of its name, or cuda / cuda:N); default: the first GPU", "NAME"},
  };
  return entries_append(entries, run, G_N_ELEMENTS(run));
}

gboolean
wh_cli_run_options_check(const wh_cli_command *cmd, const wh_cli_run_options *o,
                         wh_kv_type *kv_type, gint32 *ngl)
{
  if (o->n_threads < 0 || o->n_threads > 1024) {
    wh_cli_usage_error(cmd, "-t takes a number of threads from 1 to 1024, or 0 for all cores");
    return FALSE;
  }
  if (o->kv_type && !wh_kv_type_from_name(o->kv_type, kv_type)) {
    wh_cli_usage_error(cmd, "unknown KV cache type “%s” (use f16, q8_0, q4_0 or f32)", o->kv_type);
    return FALSE;
  }
  if (o->ngl && g_ascii_strcasecmp(o->ngl, "all") == 0) {
    *ngl = G_MAXINT32;
    return TRUE;
  }
  if (!wh_cli_parse_ngl(o->ngl, ngl)) {
    wh_cli_usage_error(cmd, "--ngl takes a number of layers, all or auto, not “%s”", o->ngl);
    return FALSE;
  }
  return TRUE;
}

void
wh_cli_run_options_clear(wh_cli_run_options *o)
{
  g_clear_pointer(&o->kv_type, g_free);
  g_clear_pointer(&o->ngl, g_free);
  g_clear_pointer(&o->device, g_free);
}

gboolean
wh_cli_sampling_check(const wh_cli_command *cmd, const wh_cli_sampling *s)
{
  if (s->top_k < 0) {
    wh_cli_usage_error(cmd, "--top-k must not be negative");
    return FALSE;
  }
  return TRUE;
}

wh_sampler_params
wh_cli_sampling_params(const wh_cli_sampling *s)
{
  wh_sampler_params sp = wh_sampler_default_params();
  sp.temperature = (float)s->temp;
  sp.top_k = s->top_k;
  sp.top_p = (float)s->top_p;
  sp.min_p = (float)s->min_p;
  sp.repeat_penalty = (float)s->repeat_penalty;
  if (s->seed >= 0)
    sp.seed = (guint64)s->seed;
  return sp;
}
