/* cli-chat.c — `whittle-cli chat`: an interactive chat on stdin/stdout.
 *
 * Each input line is a user message; the reply streams to stdout (whole UTF-8 characters),
 * followed by a newline. Lines starting with '/' are commands: /exit, /reset, /regen,
 * /system TEXT, /help. End of input ends the chat, so piped input works (tests drive it that
 * way). The conversation runs on an engine session (engine/session): the prompt is rendered
 * with the model's chat template every turn and the KV cache is reused for the common prefix.
 * Loading and every reply are jobs on a job queue; Ctrl+C while a reply streams stops that
 * reply (it is kept, marked stopped), Ctrl+C at the prompt ends the program.
 */
#include "config.h"

#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli-util.h"
#include "planner/planner.h"
#include "session/session.h"

static int run_chat(int argc, char **argv);

const wh_cli_command wh_cli_command_chat = {
    .name = "chat",
    .summary = "Chat with a model (interactive, or lines from a pipe)",
    .usage = "-m MODEL [--system TEXT] [--temp T] [--seed S] [-n N] [-c CTX] [--ngl N|all|auto] "
             "[--device NAME] "
             "[--stats] [--stop TEXT]... [--chat-template FILE] [--save-prompt FILE]",
    .description =
        "Reads one user message per line from stdin and streams each reply to stdout.\n"
        "Commands: /exit, /reset (forget the conversation), /regen (answer the last\n"
        "message again), /system TEXT (set the system prompt), /help. Ctrl+C stops the\n"
        "current reply; at the prompt it quits. --stats prints prompt tokens (and how\n"
        "many were reused from the cache), time to first token, tokens/s and context use\n"
        "to stderr after each reply. --temp 0 is greedy decoding.",
    .run = run_chat,
};

typedef struct {
  GMainLoop *loop;
  wh_job *job;
  gboolean stopped_by_user;
} chat_loop;

static void
on_load_notify(wh_job *job, gpointer user_data)
{
  chat_loop *cl = user_data;
  wh_job_progress p;
  wh_job_get_progress(job, &p);
  if (wh_cli_stderr_is_tty())
    wh_cli_progress_print(wh_job_get_title(job), &p, FALSE);
  if (wh_job_is_finished(job)) {
    if (wh_cli_stderr_is_tty())
      wh_cli_progress_end();
    g_main_loop_quit(cl->loop);
  }
}

static gboolean
on_sigint(gpointer user_data)
{
  chat_loop *cl = user_data;
  if (cl->job) {
    cl->stopped_by_user = TRUE;
    wh_job_cancel(cl->job);
  }
  return G_SOURCE_CONTINUE;
}

/* Runs the main loop until @cl->job ends; SIGINT cancels the job meanwhile. */
static void
wait_job(chat_loop *cl, GMainContext *mc)
{
  GSource *sig = g_unix_signal_source_new(SIGINT);
  g_source_set_callback(sig, on_sigint, cl, NULL);
  g_source_attach(sig, mc);
  g_main_loop_run(cl->loop);
  /* Without a signal source, SIGINT is back to its default: it ends the program. */
  g_source_destroy(sig);
  g_source_unref(sig);
}

static void
on_text(wh_session *s, const char *text, gsize len, gpointer user_data)
{
  (void)s;
  (void)user_data;
  fwrite(text, 1, len, stdout);
  fflush(stdout);
}

static void
on_done(wh_session *s, wh_job *job, gpointer user_data)
{
  (void)s;
  (void)job;
  chat_loop *cl = user_data;
  g_main_loop_quit(cl->loop);
}

static void
print_stats(const wh_session_stats *st)
{
  fprintf(stderr,
          "prompt: %u tokens (%u reused, %u new) in %.3f s (%.1f tokens/s); first token after "
          "%.1f ms\n"
          "reply: %u tokens in %.3f s (%.2f tokens/s); stop: %s; context %u/%u%s\n",
          st->prompt_tokens, st->reused_tokens, st->prefill_tokens, st->prompt_seconds,
          st->prompt_tokens_per_second, st->time_to_first_token_ms, st->generated_tokens,
          st->generation_seconds, st->generation_tokens_per_second,
          wh_session_stop_reason_to_string(st->stop_reason), st->n_ctx_used, st->n_ctx,
          st->dropped_messages ? " (older messages left out)" : "");
}

/* Generates a reply (or regenerates the last one). Returns FALSE on a failure that is not a
 * user's stop. */
static gboolean
reply(wh_session *s, wh_job_queue *q, GMainContext *mc, const wh_session_generate_params *gp,
      gboolean regen, gboolean stats, const char *save_prompt, GError **error)
{
  chat_loop cl = {0};
  if (regen && !wh_session_remove_last_reply(s, error))
    return FALSE;
  if (save_prompt) {
    g_autofree char *prompt = wh_session_render_prompt(s, error);
    if (!prompt || !g_file_set_contents(save_prompt, prompt, -1, error))
      return FALSE;
  }
  cl.loop = g_main_loop_new(mc, FALSE);
  cl.job = wh_session_generate_async(s, q, gp, on_text, on_done, &cl, NULL, error);
  if (!cl.job) {
    g_main_loop_unref(cl.loop);
    return FALSE;
  }
  wait_job(&cl, mc);
  wh_session_stats st;
  g_autoptr(GError) e = NULL;
  gboolean ok = wh_session_generate_finish(s, cl.job, &st, &e);
  if (st.stop_reason != WH_SESSION_STOP_NONE) /* a reply was written (maybe empty) */
    printf("\n");
  fflush(stdout);
  if (!ok && g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    fprintf(stderr, "[reply stopped]\n");
    ok = TRUE;
  } else if (!ok) {
    g_propagate_error(error, g_steal_pointer(&e));
  }
  if (stats && st.prompt_tokens > 0)
    print_stats(&st);
  wh_job_unref(cl.job);
  g_main_loop_unref(cl.loop);
  return ok;
}

/* --ngl auto: reads the model's header and lets the memory planner choose (wh_cli_gpu_params()
 * fills params->context.n_gpu_layers). FALSE with @error when the header cannot be read or a
 * named device does not exist. */
static gboolean
resolve_auto_ngl(const char *path, wh_session_params *params, GError **error)
{
  wh_gguf *g = wh_gguf_open(path, error);
  if (!g)
    return FALSE;
  wh_model_hparams *hp = g_new0(wh_model_hparams, 1);
  gboolean ok =
      wh_model_hparams_from_gguf(g, hp, error) &&
      wh_cli_gpu_params(WH_PLANNER_NGL_AUTO, params->context.device, hp, &params->context, error);
  wh_gguf_close(g);
  g_free(hp);
  params->n_gpu_layers = 0; /* the context's count */
  return ok;
}

static void
print_help(void)
{
  fprintf(stderr, "Type a message and press Enter. Commands:\n"
                  "  /exit           end the chat (also Ctrl+D)\n"
                  "  /reset          forget the conversation\n"
                  "  /regen          answer the last message again\n"
                  "  /system TEXT    set the system prompt (empty: none)\n"
                  "Ctrl+C stops a reply while it is written.\n");
}

static int
run_chat(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_chat;
  g_autofree char *model_path = NULL, *system = NULL, *template_path = NULL;
  g_autofree char *save_prompt = NULL;
  g_auto(GStrv) stops = NULL;
  g_auto(wh_cli_run_options) ro = {0};
  int n_predict = 512, n_ctx = 0;
  wh_cli_sampling sampling;
  wh_cli_sampling_init(&sampling);
  gboolean stats = FALSE;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "GGUF model file", "MODEL"},
      {"system", 0, 0, G_OPTION_ARG_STRING, &system, "System prompt", "TEXT"},
      {"n-predict", 'n', 0, G_OPTION_ARG_INT, &n_predict,
       "Most tokens per reply; 0 = until the model stops (default 512)", "N"},
      {"ctx-size", 'c', 0, G_OPTION_ARG_INT, &n_ctx, "Context size (default: min(train, 4096))",
       "CTX"},
      {"stop", 0, 0, G_OPTION_ARG_STRING_ARRAY, &stops, "End a reply at TEXT (repeatable)", "TEXT"},
      {"chat-template", 0, 0, G_OPTION_ARG_FILENAME, &template_path,
       "Jinja chat template to use instead of the model's", "FILE"},
      {"save-prompt", 0, 0, G_OPTION_ARG_FILENAME, &save_prompt,
       "Write the rendered prompt of each turn to FILE (overwritten every turn)", "FILE"},
      {"stats", 0, 0, G_OPTION_ARG_NONE, &stats, "Print statistics to stderr after each reply",
       NULL},
      {NULL},
  };
  g_autofree GOptionEntry *run_entries = wh_cli_run_add_entries(entries, &ro);
  g_autofree GOptionEntry *all_entries = wh_cli_sampling_add_entries(run_entries, &sampling);
  if (!wh_cli_parse_options(cmd, all_entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument “%s”", argv[1]);
  if (!model_path)
    return wh_cli_usage_error(cmd, "-m MODEL is required");
  if (n_predict < 0 || n_ctx < 0)
    return wh_cli_usage_error(cmd, "-n and -c must not be negative");
  if (!wh_cli_sampling_check(cmd, &sampling))
    return WH_CLI_EXIT_USAGE;
  gint32 ngl_count = 0; /* a count, G_MAXINT32 = all, or WH_PLANNER_NGL_AUTO */
  g_autoptr(GError) error = NULL;
  wh_session_params params = wh_session_default_params();
  if (!wh_cli_run_options_check(cmd, &ro, &params.context.kv_type, &ngl_count))
    return WH_CLI_EXIT_USAGE;
  params.context.n_ctx = (guint32)n_ctx;
  params.context.n_threads = ro.n_threads;
  if (ro.device)
    g_strlcpy(params.context.device, ro.device, sizeof params.context.device);
  params.n_gpu_layers = ngl_count == G_MAXINT32 ? WH_SESSION_NGL_ALL : MAX(ngl_count, 0);
  if (ngl_count == WH_PLANNER_NGL_AUTO && !resolve_auto_ngl(model_path, &params, &error))
    return wh_cli_fail(cmd, error);
  g_autofree char *template_source = NULL;
  if (template_path && !g_file_get_contents(template_path, &template_source, NULL, &error))
    return wh_cli_fail(cmd, error);
  params.chat_template = template_source;

  wh_sampler_params sp = wh_cli_sampling_params(&sampling);

  g_autoptr(GMainContext) mc = g_main_context_new();
  g_main_context_push_thread_default(mc);
  wh_job_queue *q = wh_job_queue_new(mc, 0);
  chat_loop cl = {0};
  cl.loop = g_main_loop_new(mc, FALSE);
  cl.job = wh_session_load_async(model_path, &params, q, on_load_notify, &cl);
  wait_job(&cl, mc);
  wh_session *s = wh_session_load_finish(cl.job, &error);
  wh_job_unref(cl.job);
  g_main_loop_unref(cl.loop);
  int status = WH_CLI_EXIT_OK;
  if (!s) {
    status = wh_cli_fail(cmd, error);
    goto out;
  }
  wh_session_set_sampler_params(s, &sp, NULL);
  wh_session_set_system_prompt(s, system, NULL);

  gboolean interactive = isatty(STDIN_FILENO);
  if (stats && !interactive)
    fprintf(stderr, "%s\n", wh_session_get_device_note(s));
  if (interactive) {
    const char *why = NULL;
    wh_chat_format f = wh_session_get_chat_format(s, &why);
    fprintf(stderr, "%s · context %u tokens · %s\n", wh_session_get_model_name(s),
            wh_session_get_n_ctx(s), wh_session_get_device_note(s));
    if (f != WH_CHAT_FORMAT_TEMPLATE)
      fprintf(stderr, "Using a built-in chat format: %s.\n", why);
    fprintf(stderr, "Type /help for commands, Ctrl+D to quit.\n");
  }

  wh_session_generate_params gp = wh_session_generate_default_params();
  gp.max_tokens = n_predict;
  gp.stop = (const char *const *)stops;
  char *line = NULL;
  size_t cap = 0;
  for (;;) {
    if (interactive) {
      fputs("> ", stdout);
      fflush(stdout);
    }
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0)
      break;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      line[--n] = '\0';
    if (n == 0)
      continue;
    gboolean ok = TRUE;
    if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) {
      break;
    } else if (!strcmp(line, "/help")) {
      print_help();
    } else if (!strcmp(line, "/reset")) {
      ok = wh_session_reset(s, &error);
    } else if (!strcmp(line, "/regen")) {
      ok = reply(s, q, mc, &gp, TRUE, stats, save_prompt, &error);
    } else if (!strcmp(line, "/system") || g_str_has_prefix(line, "/system ")) {
      ok = wh_session_set_system_prompt(s, line[7] ? line + 8 : NULL, &error);
    } else if (line[0] == '/' && line[1] != '/') {
      fprintf(stderr,
              "Unknown command “%s”: type /help (start a message with // to send a "
              "slash)\n",
              line);
    } else {
      g_autofree char *text = g_utf8_make_valid(line[0] == '/' ? line + 1 : line, -1);
      guint n_before = wh_session_get_n_messages(s);
      ok = wh_session_add_message(s, WH_SESSION_ROLE_USER, text, &error) &&
           reply(s, q, mc, &gp, FALSE, stats, save_prompt, &error);
      /* A message that got no reply at all (too long for the context) leaves the history. */
      if (!ok && wh_session_get_n_messages(s) == n_before + 1)
        wh_session_truncate(s, n_before, NULL);
    }
    if (!ok) {
      /* A failed turn is reported and the chat goes on; the exit status remembers it. */
      fprintf(stderr, "whittle-cli chat: %s\n", error->message);
      g_clear_error(&error);
      status = WH_CLI_EXIT_FAILURE;
    }
  }
  free(line);
  wh_session_unref(s);
out:
  wh_job_queue_free(q);
  g_main_context_pop_thread_default(mc);
  return status;
}
