/* session.c — multi-turn chat: history, prompt window, KV prefix reuse, generation.
 *
 * Implementation note
 * -------------------
 * A turn is: snapshot the history (under the lock) -> render the prompt window (the system
 * prompt plus messages[window_start..]) -> tokenize -> if it does not fit with room for the
 * reply, move window_start to a later user message and try again -> keep the longest common
 * prefix of the cached tokens (at least one token is always recomputed, since the logits of
 * the last prompt token are needed) -> prefill the rest in n_batch chunks, checking for
 * cancellation between chunks -> sample, detokenize (streaming), match stop strings, emit the
 * text that can no longer become part of a stop string -> append the reply to the history.
 *
 * Locking: `lock` guards the history, the system prompt, the sampler parameters, `busy`,
 * the running job and the statistics. The context, tokenizer and template are touched only by
 * whoever holds `busy` (the owner thread, or the worker of the running job), so the forward
 * pass runs without the lock.
 */
#include "config.h"

#include "session/session.h"

#include <string.h>

G_DEFINE_QUARK(wh - session - error - quark, wh_session_error)

typedef struct {
  wh_session_role role;
  char *text;
  wh_session_stop_reason stop;
} session_msg;

struct wh_session {
  gint ref_count;
  GMutex lock;

  wh_model *model;
  gboolean owns_model;
  char *path, *name;
  wh_context *ctx;
  wh_tokenizer *tok;
  wh_chat_template *tmpl; /* NULL: built-in fallback */
  wh_chat_format format;
  char *fallback_why;
  wh_chat_format fallback;
  char *bos_text, *eos_text;

  int n_gpu_requested;
  wh_session_device devices[WH_SESSION_MAX_DEVICES];
  guint n_devices;
  char *device_note;

  /* Guarded by lock. */
  char *system;
  GPtrArray *msgs; /* session_msg */
  wh_sampler_params sparams;
  guint64 n_generations;
  gboolean busy;
  wh_job *job;
  wh_session_stats last_stats;
  guint32 n_ctx_used;

  /* Owned by the busy holder. */
  guint window_start; /* first message of the prompt window */
  guint32 n_keep;     /* tokens kept by a context shift (system prompt); 0 = not computed */
};

static void
msg_free(gpointer p)
{
  session_msg *m = p;
  g_free(m->text);
  g_free(m);
}

const char *
wh_session_role_to_string(wh_session_role role)
{
  switch (role) {
  case WH_SESSION_ROLE_SYSTEM:
    return "system";
  case WH_SESSION_ROLE_USER:
    return "user";
  case WH_SESSION_ROLE_ASSISTANT:
    return "assistant";
  }
  return "user";
}

const char *
wh_session_stop_reason_to_string(wh_session_stop_reason r)
{
  static const char *const names[] = {"none",       "eog",       "stop-string",
                                      "max-tokens", "cancelled", "error"};
  return (guint)r < G_N_ELEMENTS(names) ? names[r] : "none";
}

wh_session_params
wh_session_default_params(void)
{
  wh_session_params p = {0};
  p.context = wh_context_default_params();
  p.n_gpu_layers = 0;
  p.fallback = WH_CHAT_FORMAT_CHATML;
  return p;
}

wh_session_generate_params
wh_session_generate_default_params(void)
{
  wh_session_generate_params p = {0};
  p.max_tokens = 512;
  return p;
}

/* --- creation ------------------------------------------------------------------------------ */

static char *
token_text_or_empty(const wh_tokenizer *tok, gint32 id)
{
  gsize len = 0;
  const char *t = id == WH_TOKEN_NONE ? NULL : wh_tokenizer_token_text(tok, id, &len);
  return t ? g_strndup(t, len) : g_strdup("");
}

/* Parses the template and renders a small conversation once, so a template that cannot run
 * is noticed at load time and the built-in format is used instead. */
static void
setup_template(wh_session *s, const char *source)
{
  g_autoptr(GError) e = NULL;
  s->format = s->fallback;
  if (!source || !*source) {
    s->fallback_why = g_strdup("the model has no chat template");
    return;
  }
  s->tmpl = wh_chat_template_new(source, &e);
  if (s->tmpl) {
    const wh_chat_message trial[] = {{"system", "You are helpful."},
                                     {"user", "Hello"},
                                     {"assistant", "Hi"},
                                     {"user", "How are you?"}};
    wh_chat_render_params rp = wh_chat_render_default_params();
    rp.bos_token = s->bos_text;
    rp.eos_token = s->eos_text;
    char *out = wh_chat_template_render(s->tmpl, trial, G_N_ELEMENTS(trial), &rp, &e);
    if (out) {
      g_free(out);
      s->format = WH_CHAT_FORMAT_TEMPLATE;
      return;
    }
    g_clear_pointer(&s->tmpl, wh_chat_template_free);
  }
  s->fallback_why = g_strdup_printf("the model's chat template cannot be used (%s)", e->message);
}

/* Fills the device list and the note from what the context actually placed: the CPU runs
 * the layers the GPU does not (the output layer counts as one). */
static void
setup_devices(wh_session *s)
{
  const wh_model_hparams *hp = wh_model_get_hparams(s->model);
  const guint32 all = hp->n_layer + 1;
  const guint32 on_gpu = MIN(wh_context_get_params(s->ctx)->n_gpu_layers, all);
  wh_memory_plan_devices mem;
  wh_context_get_device_memory(s->ctx, NULL, &mem);
  wh_session_device *d = &s->devices[0];
  g_strlcpy(d->name, "CPU", sizeof d->name);
  g_strlcpy(d->kind, "cpu", sizeof d->kind);
  d->n_layers = all - on_gpu;
  d->weight_bytes = on_gpu ? mem.dev[WH_PLAN_CPU].weights : hp->weight_bytes;
  s->n_devices = 1;
  const char *gpu = wh_context_get_gpu_device(s->ctx);
  /* The context's reason, as a clause of our sentence (no final period). */
  g_autofree char *why = g_strdup(wh_context_get_gpu_note(s->ctx));
  if (why)
    g_strchomp(why);
  if (why && *why && why[strlen(why) - 1] == '.')
    why[strlen(why) - 1] = '\0';
  if (on_gpu > 0) {
    d = &s->devices[s->n_devices++];
    g_strlcpy(d->name, gpu && *gpu ? gpu : "GPU", sizeof d->name);
    g_strlcpy(d->kind,
              g_ascii_strncasecmp(wh_context_get_params(s->ctx)->device, "cuda", 4) == 0 ? "cuda"
                                                                                         : "vulkan",
              sizeof d->kind);
    d->n_layers = on_gpu;
    d->weight_bytes = mem.dev[WH_PLAN_GPU].weights;
  }
  if (on_gpu == 0 && s->n_gpu_requested == 0)
    s->device_note = g_strdup("Running on the CPU.");
  else if (on_gpu == 0)
    s->device_note = g_strdup_printf("Running on the CPU: %s.", why ? why : "no GPU was found");
  else if (on_gpu < all)
    s->device_note = g_strdup_printf("%u of %u layers run on %s, the rest on the CPU%s%s.", on_gpu,
                                     all, s->devices[1].name, why ? ": " : "", why ? why : "");
  else
    s->device_note = g_strdup_printf("Running on %s (all %u layers).", s->devices[1].name, all);
}

wh_session *
wh_session_new_for_model(wh_model *model, const wh_session_params *params, GError **error)
{
  g_return_val_if_fail(model != NULL, NULL);
  wh_session_params dp = wh_session_default_params();
  if (!params)
    params = &dp;
  if (params->n_gpu_layers < 0) {
    g_set_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_INVALID,
                "%d GPU layers asked for: give a count (or WH_SESSION_NGL_ALL); resolve “auto” "
                "with the planner first",
                params->n_gpu_layers);
    return NULL;
  }
  const wh_gguf *g = wh_model_get_gguf(model);
  wh_tokenizer *tok = wh_tokenizer_new_from_gguf(g, error);
  if (!tok)
    return NULL;
  wh_context_params cp = params->context;
  if (params->n_gpu_layers > 0)
    cp.n_gpu_layers = MIN((guint32)params->n_gpu_layers, wh_model_get_hparams(model)->n_layer + 1);
  wh_context *ctx = wh_context_new(model, &cp, error);
  if (!ctx) {
    wh_tokenizer_free(tok);
    return NULL;
  }
  wh_session *s = g_new0(wh_session, 1);
  s->ref_count = 1;
  g_mutex_init(&s->lock);
  s->model = model;
  s->ctx = ctx;
  s->tok = tok;
  s->fallback =
      params->fallback == WH_CHAT_FORMAT_PLAIN ? WH_CHAT_FORMAT_PLAIN : WH_CHAT_FORMAT_CHATML;
  s->bos_text = token_text_or_empty(tok, wh_tokenizer_bos(tok));
  s->eos_text = token_text_or_empty(tok, wh_tokenizer_eos(tok));
  const char *gname = wh_gguf_get_string(g, "general.name");
  const char *gpath = wh_gguf_path(g);
  s->name = gname && *gname ? g_strdup(gname)
            : gpath         ? g_path_get_basename(gpath)
                            : g_strdup("model");
  setup_template(s, params->chat_template ? params->chat_template
                                          : wh_gguf_get_string(g, "tokenizer.chat_template"));
  s->n_gpu_requested = (int)MIN(cp.n_gpu_layers, wh_model_get_hparams(model)->n_layer + 1);
  setup_devices(s);
  s->msgs = g_ptr_array_new_with_free_func(msg_free);
  s->sparams = wh_sampler_default_params();
  if (s->sparams.seed == WH_SAMPLER_SEED_RANDOM)
    s->sparams.seed = g_random_int();
  return s;
}

typedef struct {
  const wh_session_params *params;
  wh_job *job;
} load_progress;

static void
load_report(double fraction, gpointer user_data)
{
  load_progress *lp = user_data;
  if (lp->job)
    wh_job_set_fraction(lp->job, fraction, NULL);
  else if (lp->params->progress)
    lp->params->progress(fraction, lp->params->user_data);
}

static gboolean
load_continue(gpointer user_data)
{
  load_progress *lp = user_data;
  if (lp->job)
    return !wh_job_is_cancelled(lp->job);
  return !lp->params->should_continue || lp->params->should_continue(lp->params->user_data);
}

static wh_session *
session_load(const char *path, const wh_session_params *params, wh_job *job, GError **error)
{
  wh_session_params dp = wh_session_default_params();
  if (!params)
    params = &dp;
  if (!path || !g_file_test(path, G_FILE_TEST_EXISTS)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                "Model file “%s” does not exist: check the path, or download the model first",
                path ? path : "(none)");
    return NULL;
  }
  load_progress lp = {params, job};
  wh_model_params mp = wh_model_default_params();
  mp.n_threads = params->context.n_threads;
  mp.progress = load_report;
  mp.should_continue = load_continue;
  mp.user_data = &lp;
  GError *e = NULL;
  wh_model *model = wh_model_load(path, &mp, &e);
  if (!model) {
    if (g_error_matches(e, WH_MODEL_ERROR, WH_MODEL_ERROR_CANCELLED) || !load_continue(&lp)) {
      g_clear_error(&e);
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Loading “%s” was cancelled", path);
    } else {
      g_propagate_prefixed_error(error, e, "Cannot load “%s”: ", path);
    }
    return NULL;
  }
  wh_session *s = wh_session_new_for_model(model, params, &e);
  if (!s) {
    wh_model_free(model);
    g_propagate_prefixed_error(error, e, "Cannot use “%s”: ", path);
    return NULL;
  }
  s->owns_model = TRUE;
  s->path = g_strdup(path);
  if (!load_continue(&lp)) {
    wh_session_unref(s);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Loading “%s” was cancelled", path);
    return NULL;
  }
  return s;
}

wh_session *
wh_session_new(const char *path, const wh_session_params *params, GError **error)
{
  return session_load(path, params, NULL, error);
}

typedef struct {
  char *path;
  wh_session_params params;
  char *chat_template;
} load_job_data;

typedef struct {
  wh_session *session; /* taken by wh_session_load_finish() */
} load_result;

static void
load_result_free(gpointer p)
{
  load_result *r = p;
  wh_session_unref(r->session);
  g_free(r);
}

static void
load_job_data_free(gpointer p)
{
  load_job_data *d = p;
  g_free(d->path);
  g_free(d->chat_template);
  g_free(d);
}

static gboolean
load_job_run(wh_job *job, gpointer user_data, GError **error)
{
  load_job_data *d = user_data;
  wh_session *s = session_load(d->path, &d->params, job, error);
  if (!s)
    return FALSE;
  load_result *r = g_new0(load_result, 1);
  r->session = s;
  wh_job_set_result(job, r, load_result_free);
  return TRUE;
}

wh_job *
wh_session_load_async(const char *path, const wh_session_params *params, wh_job_queue *queue,
                      wh_job_notify_func notify, gpointer user_data)
{
  g_return_val_if_fail(queue != NULL, NULL);
  load_job_data *d = g_new0(load_job_data, 1);
  d->path = g_strdup(path);
  d->params = params ? *params : wh_session_default_params();
  d->chat_template = g_strdup(d->params.chat_template);
  d->params.chat_template = d->chat_template;
  d->params.progress = NULL;
  d->params.should_continue = NULL;
  g_autofree char *base = path ? g_path_get_basename(path) : g_strdup("model");
  g_autofree char *title = g_strdup_printf("Loading %s", base);
  return wh_job_queue_submit(queue, WH_JOB_LOAD, title, load_job_run, d, load_job_data_free, notify,
                             user_data);
}

wh_session *
wh_session_load_finish(wh_job *job, GError **error)
{
  g_return_val_if_fail(job != NULL, NULL);
  wh_job_state st = wh_job_get_state(job);
  if (st != WH_JOB_SUCCEEDED) {
    const GError *e = wh_job_get_error(job);
    if (e)
      g_set_error_literal(error, e->domain, e->code, e->message);
    else
      g_set_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_INVALID,
                  "The load job has not finished yet");
    return NULL;
  }
  load_result *r = wh_job_get_result(job);
  if (!r || !r->session) {
    g_set_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_INVALID,
                "The session of this load job was already taken");
    return NULL;
  }
  return g_steal_pointer(&r->session);
}

wh_session *
wh_session_ref(wh_session *session)
{
  g_return_val_if_fail(session != NULL, NULL);
  g_atomic_int_inc(&session->ref_count);
  return session;
}

void
wh_session_unref(wh_session *s)
{
  if (!s || !g_atomic_int_dec_and_test(&s->ref_count))
    return;
  g_clear_pointer(&s->job, wh_job_unref);
  wh_context_free(s->ctx);
  wh_tokenizer_free(s->tok);
  if (s->tmpl)
    wh_chat_template_free(s->tmpl);
  if (s->owns_model)
    wh_model_free(s->model);
  g_ptr_array_unref(s->msgs);
  g_free(s->path);
  g_free(s->name);
  g_free(s->fallback_why);
  g_free(s->bos_text);
  g_free(s->eos_text);
  g_free(s->device_note);
  g_free(s->system);
  g_mutex_clear(&s->lock);
  g_free(s);
}

/* --- getters ------------------------------------------------------------------------------- */

wh_model *
wh_session_get_model(wh_session *s)
{
  return s->model;
}

const wh_tokenizer *
wh_session_get_tokenizer(wh_session *s)
{
  return s->tok;
}

const wh_context *
wh_session_get_context(wh_session *s)
{
  return s->ctx;
}

const char *
wh_session_get_model_path(wh_session *s)
{
  return s->path;
}

const char *
wh_session_get_model_name(wh_session *s)
{
  return s->name;
}

wh_chat_format
wh_session_get_chat_format(wh_session *s, const char **why)
{
  if (why)
    *why = s->fallback_why;
  return s->format;
}

guint
wh_session_get_devices(wh_session *s, const wh_session_device **devices)
{
  if (devices)
    *devices = s->devices;
  return s->n_devices;
}

int
wh_session_get_n_gpu_layers_requested(wh_session *s)
{
  return s->n_gpu_requested;
}

int
wh_session_get_n_gpu_layers(wh_session *s)
{
  int n = 0;
  for (guint i = 0; i < s->n_devices; i++)
    if (strcmp(s->devices[i].kind, "cpu") != 0)
      n += (int)s->devices[i].n_layers;
  return n;
}

const char *
wh_session_get_device_note(wh_session *s)
{
  return s->device_note;
}

guint32
wh_session_get_n_ctx(wh_session *s)
{
  return wh_context_n_ctx(s->ctx);
}

guint32
wh_session_get_n_ctx_used(wh_session *s)
{
  g_mutex_lock(&s->lock);
  guint32 n = s->n_ctx_used;
  g_mutex_unlock(&s->lock);
  return n;
}

void
wh_session_get_last_stats(wh_session *s, wh_session_stats *out)
{
  g_mutex_lock(&s->lock);
  *out = s->last_stats;
  g_mutex_unlock(&s->lock);
}

gboolean
wh_session_is_busy(wh_session *s)
{
  g_mutex_lock(&s->lock);
  gboolean b = s->busy;
  g_mutex_unlock(&s->lock);
  return b;
}

void
wh_session_cancel(wh_session *s)
{
  g_mutex_lock(&s->lock);
  wh_job *job = s->job ? wh_job_ref(s->job) : NULL;
  g_mutex_unlock(&s->lock);
  if (job) {
    wh_job_cancel(job);
    wh_job_unref(job);
  }
}

gint
wh_session_count_tokens(wh_session *s, const char *text)
{
  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  return wh_tokenizer_tokenize(s->tok, text, strlen(text), FALSE, TRUE, ids, NULL);
}

/* --- conversation -------------------------------------------------------------------------- */

/* Takes the lock and fails when busy; on TRUE the caller holds the lock. */
static gboolean
lock_idle(wh_session *s, GError **error)
{
  g_mutex_lock(&s->lock);
  if (s->busy) {
    g_mutex_unlock(&s->lock);
    g_set_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_BUSY,
                "A reply is being generated: stop it or wait until it is done");
    return FALSE;
  }
  return TRUE;
}

gboolean
wh_session_set_system_prompt(wh_session *s, const char *text, GError **error)
{
  if (!lock_idle(s, error))
    return FALSE;
  g_free(s->system);
  s->system = text && *text ? g_strdup(text) : NULL;
  s->n_keep = 0;
  g_mutex_unlock(&s->lock);
  return TRUE;
}

char *
wh_session_dup_system_prompt(wh_session *s)
{
  g_mutex_lock(&s->lock);
  char *t = g_strdup(s->system);
  g_mutex_unlock(&s->lock);
  return t;
}

gboolean
wh_session_set_sampler_params(wh_session *s, const wh_sampler_params *params, GError **error)
{
  if (!lock_idle(s, error))
    return FALSE;
  s->sparams = *params;
  if (s->sparams.seed == WH_SAMPLER_SEED_RANDOM)
    s->sparams.seed = g_random_int();
  s->n_generations = 0;
  g_mutex_unlock(&s->lock);
  return TRUE;
}

void
wh_session_get_sampler_params(wh_session *s, wh_sampler_params *out)
{
  g_mutex_lock(&s->lock);
  *out = s->sparams;
  g_mutex_unlock(&s->lock);
}

static void
append_msg_locked(wh_session *s, wh_session_role role, const char *text,
                  wh_session_stop_reason stop)
{
  session_msg *m = g_new0(session_msg, 1);
  m->role = role;
  m->text = g_strdup(text ? text : "");
  m->stop = stop;
  g_ptr_array_add(s->msgs, m);
}

/* Removes messages from @n_keep on; the prompt window restarts when it no longer begins inside
 * the history. */
static void
truncate_locked(wh_session *s, guint n_keep)
{
  if (n_keep < s->msgs->len)
    g_ptr_array_set_size(s->msgs, n_keep);
  if (s->window_start >= s->msgs->len)
    s->window_start = 0;
}

gboolean
wh_session_add_message(wh_session *s, wh_session_role role, const char *text, GError **error)
{
  if (role != WH_SESSION_ROLE_USER && role != WH_SESSION_ROLE_ASSISTANT) {
    g_set_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_INVALID,
                "Only user and assistant messages go into the history; use "
                "wh_session_set_system_prompt() for the system prompt");
    return FALSE;
  }
  if (!text) {
    g_set_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_INVALID, "The message has no text");
    return FALSE;
  }
  if (!lock_idle(s, error))
    return FALSE;
  append_msg_locked(s, role, text, WH_SESSION_STOP_NONE);
  g_mutex_unlock(&s->lock);
  return TRUE;
}

gboolean
wh_session_set_messages(wh_session *s, const wh_chat_message *messages, gsize n, GError **error)
{
  for (gsize i = 0; i < n; i++) {
    const char *r = messages[i].role ? messages[i].role : "";
    gboolean ok = !strcmp(r, "user") || !strcmp(r, "assistant") || (i == 0 && !strcmp(r, "system"));
    if (!ok) {
      g_set_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_INVALID,
                  "Message %" G_GSIZE_FORMAT " has the role “%s”: only a leading system message, "
                  "then user and assistant messages are accepted",
                  i, r);
      return FALSE;
    }
  }
  if (!lock_idle(s, error))
    return FALSE;
  g_ptr_array_set_size(s->msgs, 0);
  s->window_start = 0;
  for (gsize i = 0; i < n; i++) {
    if (!strcmp(messages[i].role, "system")) {
      g_free(s->system);
      s->system =
          messages[i].content && *messages[i].content ? g_strdup(messages[i].content) : NULL;
      s->n_keep = 0;
      continue;
    }
    append_msg_locked(
        s, !strcmp(messages[i].role, "user") ? WH_SESSION_ROLE_USER : WH_SESSION_ROLE_ASSISTANT,
        messages[i].content, WH_SESSION_STOP_NONE);
  }
  g_mutex_unlock(&s->lock);
  return TRUE;
}

gboolean
wh_session_edit_message(wh_session *s, guint index, const char *text, GError **error)
{
  if (!lock_idle(s, error))
    return FALSE;
  if (index >= s->msgs->len || !text) {
    g_mutex_unlock(&s->lock);
    g_set_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_INVALID,
                "There is no message %u to edit (the conversation has %u)", index, s->msgs->len);
    return FALSE;
  }
  session_msg *m = g_ptr_array_index(s->msgs, index);
  g_free(m->text);
  m->text = g_strdup(text);
  m->stop = WH_SESSION_STOP_NONE;
  truncate_locked(s, index + 1);
  if (s->window_start > index)
    s->window_start = 0;
  g_mutex_unlock(&s->lock);
  return TRUE;
}

gboolean
wh_session_truncate(wh_session *s, guint n_keep, GError **error)
{
  if (!lock_idle(s, error))
    return FALSE;
  truncate_locked(s, n_keep);
  g_mutex_unlock(&s->lock);
  return TRUE;
}

gboolean
wh_session_remove_last_reply(wh_session *s, GError **error)
{
  if (!lock_idle(s, error))
    return FALSE;
  guint n = s->msgs->len;
  if (n == 0 ||
      ((session_msg *)g_ptr_array_index(s->msgs, n - 1))->role != WH_SESSION_ROLE_ASSISTANT) {
    g_mutex_unlock(&s->lock);
    g_set_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_NO_PROMPT,
                "The conversation does not end with a reply to regenerate");
    return FALSE;
  }
  truncate_locked(s, n - 1);
  g_mutex_unlock(&s->lock);
  return TRUE;
}

gboolean
wh_session_reset(wh_session *s, GError **error)
{
  return wh_session_truncate(s, 0, error);
}

guint
wh_session_get_n_messages(wh_session *s)
{
  g_mutex_lock(&s->lock);
  guint n = s->msgs->len;
  g_mutex_unlock(&s->lock);
  return n;
}

char *
wh_session_dup_message(wh_session *s, guint index, wh_session_role *role,
                       wh_session_stop_reason *stop)
{
  char *text = NULL;
  g_mutex_lock(&s->lock);
  if (index < s->msgs->len) {
    session_msg *m = g_ptr_array_index(s->msgs, index);
    text = g_strdup(m->text);
    if (role)
      *role = m->role;
    if (stop)
      *stop = m->stop;
  }
  g_mutex_unlock(&s->lock);
  return text;
}

/* --- prompt -------------------------------------------------------------------------------- */

/* A copy of the conversation for rendering: system prompt first (if any), then every message.
 * Strings are copied so the snapshot stays valid whatever the owner does next. */
typedef struct {
  wh_chat_message *msgs; /* [0] is the system message when has_system */
  gsize n;
  gboolean has_system;
  GPtrArray *strings;
} convo;

static void
convo_take(wh_session *s, convo *c)
{
  g_mutex_lock(&s->lock);
  c->strings = g_ptr_array_new_with_free_func(g_free);
  c->msgs = g_new0(wh_chat_message, s->msgs->len + 1);
  c->n = 0;
  c->has_system = s->system != NULL;
  if (c->has_system) {
    char *t = g_strdup(s->system);
    g_ptr_array_add(c->strings, t);
    c->msgs[c->n++] = (wh_chat_message){"system", t};
  }
  for (guint i = 0; i < s->msgs->len; i++) {
    session_msg *m = g_ptr_array_index(s->msgs, i);
    char *t = g_strdup(m->text);
    g_ptr_array_add(c->strings, t);
    c->msgs[c->n++] = (wh_chat_message){wh_session_role_to_string(m->role), t};
  }
  g_mutex_unlock(&s->lock);
}

static void
convo_clear(convo *c)
{
  g_free(c->msgs);
  g_ptr_array_unref(c->strings);
}

/* Joins runs of messages with the same role ("A\n\nB"): what a template that insists on
 * alternating roles gets when the history has two user messages in a row (a reply that
 * failed, or restored history). The texts go to @keep. Returns the new count. */
static gsize
merge_same_roles(wh_chat_message *w, gsize n, GPtrArray *keep)
{
  gsize out = 0;
  for (gsize i = 0; i < n; i++) {
    if (out > 0 && !strcmp(w[out - 1].role, w[i].role) && strcmp(w[i].role, "system") != 0) {
      char *joined = g_strconcat(w[out - 1].content, "\n\n", w[i].content, NULL);
      g_ptr_array_add(keep, joined);
      w[out - 1].content = joined;
    } else {
      w[out++] = w[i];
    }
  }
  return out;
}

/* Renders the system message (if any) plus history messages [from, end) with the generation
 * prompt: the model's template, then the template on the conversation with same-role runs
 * merged, then the built-in format. @used (may be NULL) says which format it was. */
static char *
render_window(wh_session *s, const convo *c, guint from, gboolean add_gen, wh_chat_format *used)
{
  guint sys = c->has_system ? 1 : 0;
  gsize n_hist = c->n - sys;
  gsize n = sys + (from < n_hist ? n_hist - from : 0);
  g_autofree wh_chat_message *w = g_new0(wh_chat_message, n + 1);
  if (sys)
    w[0] = c->msgs[0];
  for (gsize i = sys; i < n; i++)
    w[i] = c->msgs[sys + from + (i - sys)];
  if (used)
    *used = s->fallback;
  if (s->tmpl) {
    wh_chat_render_params rp = wh_chat_render_default_params();
    rp.bos_token = s->bos_text;
    rp.eos_token = s->eos_text;
    rp.add_generation_prompt = add_gen;
    char *out = wh_chat_template_render(s->tmpl, w, n, &rp, NULL);
    if (!out) {
      g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func(g_free);
      g_autofree wh_chat_message *merged = g_memdup2(w, (n + 1) * sizeof *w);
      gsize m = merge_same_roles(merged, n, keep);
      if (m < n)
        out = wh_chat_template_render(s->tmpl, merged, m, &rp, NULL);
    }
    if (out) {
      if (used)
        *used = WH_CHAT_FORMAT_TEMPLATE;
      return out;
    }
  }
  return wh_chat_render_builtin(s->fallback, w, n, add_gen);
}

/* Tokenizes a rendered prompt: special tokens parsed, BOS added when the vocabulary wants it
 * and the text did not already start with it. */
static gboolean
tokenize_prompt(wh_session *s, const char *text, GArray *ids, GError **error)
{
  g_array_set_size(ids, 0);
  if (wh_tokenizer_tokenize(s->tok, text, strlen(text), FALSE, TRUE, ids, error) < 0)
    return FALSE;
  gint32 bos = wh_tokenizer_bos(s->tok);
  if (wh_tokenizer_add_bos(s->tok) && bos != WH_TOKEN_NONE &&
      (ids->len == 0 || g_array_index(ids, gint32, 0) != bos))
    g_array_prepend_val(ids, bos);
  return TRUE;
}

static gboolean prepare_prompt(wh_session *s, const convo *c, guint *window, GArray *ids,
                               char **text_out, wh_chat_format *used, GError **error);

char *
wh_session_render_prompt(wh_session *s, GError **error)
{
  convo c;
  convo_take(s, &c);
  g_mutex_lock(&s->lock);
  guint window = s->window_start;
  g_mutex_unlock(&s->lock);
  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  char *out = NULL;
  prepare_prompt(s, &c, &window, ids, &out, NULL, error);
  convo_clear(&c);
  return out;
}

static guint32
common_prefix(const gint32 *a, guint32 na, const gint32 *b, guint32 nb)
{
  guint32 i = 0;
  while (i < na && i < nb && a[i] == b[i])
    i++;
  return i;
}

/* Tokens a context shift keeps: what two conversations that differ only after the system
 * prompt share (BOS, system message, the start of the user header). */
static guint32
compute_n_keep(wh_session *s, const convo *c)
{
  wh_chat_message m[2];
  guint n = 0;
  if (c->has_system)
    m[n++] = c->msgs[0];
  g_autoptr(GArray) a = g_array_new(FALSE, FALSE, sizeof(gint32));
  g_autoptr(GArray) b = g_array_new(FALSE, FALSE, sizeof(gint32));
  convo ca = {m, n + 1, c->has_system, NULL};
  m[n] = (wh_chat_message){"user", "A"};
  g_autofree char *ta = render_window(s, &ca, 0, FALSE, NULL);
  m[n] = (wh_chat_message){"user", "Z"};
  g_autofree char *tb = render_window(s, &ca, 0, FALSE, NULL);
  if (!tokenize_prompt(s, ta, a, NULL) || !tokenize_prompt(s, tb, b, NULL))
    return 1;
  guint32 k = common_prefix((gint32 *)a->data, a->len, (gint32 *)b->data, b->len);
  guint32 limit = wh_context_n_ctx(s->ctx) / 2;
  return MAX(1, MIN(k, limit));
}

/* --- generation ---------------------------------------------------------------------------- */

/* Where a turn's text goes: the sync caller's callback, or the async job's pending buffer;
 * progress (may be NULL) hears of each prefill chunk and each generated token. */
typedef struct {
  void (*emit)(gpointer data, const char *text, gsize len);
  void (*progress)(gpointer data, guint64 done, guint64 total, const char *status);
  gpointer data;
  GCancellable *cancellable;
} turn_sink;

/* Length of the longest suffix of @buf[0..len) that is a proper prefix of a stop string. */
static gsize
stop_hold_back(const char *buf, gsize len, char **stops)
{
  gsize hold = 0;
  for (guint i = 0; stops[i]; i++) {
    gsize sl = strlen(stops[i]);
    for (gsize k = MIN(sl - 1, len); k > hold; k--)
      if (memcmp(buf + len - k, stops[i], k) == 0) {
        hold = k;
        break;
      }
  }
  return hold;
}

/* Position of the first stop string in @buf at or after @from - (longest stop - 1), or -1. */
static gssize
stop_find(const char *buf, gsize len, char **stops, gsize from)
{
  gssize best = -1;
  for (guint i = 0; stops[i]; i++) {
    gsize sl = strlen(stops[i]);
    gsize start = from >= sl ? from - sl + 1 : 0;
    for (gsize p = start; p + sl <= len; p++)
      if (memcmp(buf + p, stops[i], sl) == 0) {
        if (best < 0 || (gssize)p < best)
          best = (gssize)p;
        break;
      }
  }
  return best;
}

/* The caller's stop strings plus the end-of-turn markers of the built-in formats. */
static char **
build_stops(wh_chat_format format, const char *const *user)
{
  GPtrArray *a = g_ptr_array_new();
  for (guint i = 0; user && user[i]; i++)
    if (*user[i])
      g_ptr_array_add(a, g_strdup(user[i]));
  if (format == WH_CHAT_FORMAT_CHATML) {
    g_ptr_array_add(a, g_strdup("<|im_end|>"));
    g_ptr_array_add(a, g_strdup("<|im_start|>"));
  } else if (format == WH_CHAT_FORMAT_PLAIN) {
    g_ptr_array_add(a, g_strdup("\nUser:"));
    g_ptr_array_add(a, g_strdup("\nSystem:"));
  }
  g_ptr_array_add(a, NULL);
  return (char **)g_ptr_array_free(a, FALSE);
}

/* Replaces what the detokenizer appended after @from by valid UTF-8: byte tokens that form
 * no character (random or confused models emit them) become U+FFFD. The detokenizer holds
 * back an unfinished character, so a valid one is never split between two calls. */
static void
sanitize_tail(GString *s, gsize from)
{
  if (g_utf8_validate(s->str + from, (gssize)(s->len - from), NULL))
    return;
  char *valid = g_utf8_make_valid(s->str + from, (gssize)(s->len - from));
  g_string_truncate(s, from);
  g_string_append(s, valid);
  g_free(valid);
}

static gboolean
check_cancel(GCancellable *c, GError **error)
{
  return !g_cancellable_set_error_if_cancelled(c, error);
}

/* Finds the prompt window: starting at *@window, drops the oldest messages (moving to the next
 * user message) until the rendered prompt leaves a quarter of the context for the reply, or
 * only the last user message is left and still fits. Sets @ids to the prompt tokens and
 * *@window to the first history message of the window. */
static gboolean
prepare_prompt(wh_session *s, const convo *c, guint *window, GArray *ids, char **text_out,
               wh_chat_format *used, GError **error)
{
  guint32 n_ctx = wh_context_n_ctx(s->ctx), reserve = n_ctx / 4;
  guint sys = c->has_system ? 1 : 0;
  guint n_hist = (guint)(c->n - sys);
  guint last_user = 0;
  for (guint i = 0; i < n_hist; i++)
    if (!strcmp(c->msgs[sys + i].role, "user"))
      last_user = i;
  if (*window > last_user)
    *window = 0;
  for (;;) {
    g_autofree char *text = render_window(s, c, *window, TRUE, used);
    if (!tokenize_prompt(s, text, ids, error))
      return FALSE;
    guint next = *window + 1;
    while (next <= last_user && strcmp(c->msgs[sys + next].role, "user") != 0)
      next++;
    if (ids->len + reserve <= n_ctx || (next > last_user && ids->len < n_ctx)) {
      if (text_out)
        *text_out = g_steal_pointer(&text);
      return TRUE;
    }
    if (next > last_user) {
      g_set_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_CONTEXT_FULL,
                  "The prompt needs %u tokens but the context holds %u: shorten the message "
                  "or the system prompt, or load the model with a larger context",
                  ids->len, n_ctx);
      return FALSE;
    }
    *window = next;
  }
}

/* Makes room for @n more tokens by dropping half of what follows the kept prefix. */
static guint32
make_room(wh_session *s, guint32 n)
{
  guint32 n_ctx = wh_context_n_ctx(s->ctx), n_past = wh_context_n_past(s->ctx);
  if (n_past + n <= n_ctx)
    return 0;
  guint32 keep = MIN(s->n_keep, n_past);
  guint32 discard = MAX((n_past - keep) / 2, n_past + n - n_ctx);
  discard = MIN(discard, n_past - keep);
  wh_context_shift(s->ctx, keep, discard);
  return discard;
}

/* Publishes the cache fill for wh_session_get_n_ctx_used() while a reply runs. */
static void
publish_n_ctx_used(wh_session *s)
{
  guint32 n = wh_context_n_past(s->ctx);
  g_mutex_lock(&s->lock);
  s->n_ctx_used = n;
  g_mutex_unlock(&s->lock);
}

/* One turn on the thread that holds `busy`. Appends the reply to the history in every case
 * where a turn started; returns FALSE with @error for cancel and failures. */
static gboolean
run_turn(wh_session *s, const wh_session_generate_params *gp, turn_sink *sink, wh_session_stats *st,
         GError **error)
{
  gint64 t0 = g_get_monotonic_time();
  memset(st, 0, sizeof *st);
  st->n_ctx = wh_context_n_ctx(s->ctx);
  convo c;
  convo_take(s, &c);
  if (c.n == (gsize)(c.has_system ? 1 : 0) || strcmp(c.msgs[c.n - 1].role, "user") != 0) {
    convo_clear(&c);
    g_set_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_NO_PROMPT,
                "There is no user message to answer: add one first");
    return FALSE;
  }
  if (s->n_keep == 0)
    s->n_keep = compute_n_keep(s, &c);

  const guint32 n_ctx = st->n_ctx;
  guint32 max_tokens = gp->max_tokens > 0 ? (guint32)gp->max_tokens : n_ctx;
  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  wh_chat_format used = s->format;
  gboolean ok = prepare_prompt(s, &c, &s->window_start, ids, NULL, &used, error);
  convo_clear(&c);
  if (!ok)
    return FALSE;
  /* The caller's stop strings, plus the end-of-turn markers when a built-in format was used. */
  g_auto(GStrv) stops = build_stops(used, gp->stop);
  st->dropped_messages = s->window_start;
  st->prompt_tokens = ids->len;

  /* Prefix reuse: keep what matches, but always recompute the last prompt token. */
  const gint32 *p = (const gint32 *)ids->data;
  guint32 keep =
      common_prefix(wh_context_get_tokens(s->ctx), wh_context_n_past(s->ctx), p, ids->len);
  if (keep >= ids->len)
    keep = ids->len - 1;
  wh_context_truncate(s->ctx, keep);
  st->reused_tokens = keep;
  st->prefill_tokens = ids->len - keep;

  wh_sampler_params sp;
  g_mutex_lock(&s->lock);
  sp = s->sparams;
  sp.seed = s->sparams.seed + s->n_generations++;
  g_mutex_unlock(&s->lock);
  st->seed = sp.seed;
  wh_sampler *sampler = wh_sampler_new(&sp);
  for (guint i = 0; i < ids->len; i++)
    wh_sampler_accept(sampler, p[i]);

  const guint32 n_batch = wh_context_get_params(s->ctx)->n_batch;
  const float *logits = NULL;
  GError *e = NULL;
  for (guint32 i = keep; i < ids->len && !e;) {
    guint32 n = MIN(n_batch, ids->len - i);
    if (check_cancel(sink->cancellable, &e)) {
      st->shifted_tokens += make_room(s, n);
      logits = wh_context_decode(s->ctx, p + i, n, FALSE, &e);
    }
    i += n;
    if (sink->progress)
      sink->progress(sink->data, i - keep, ids->len - keep, "Reading the prompt");
  }
  publish_n_ctx_used(s);
  gint64 t_prompt = g_get_monotonic_time();
  st->prompt_seconds = (t_prompt - t0) / 1e6;
  st->prompt_tokens_per_second =
      st->prompt_seconds > 0 ? st->prefill_tokens / st->prompt_seconds : 0;

  /* Generation. */
  wh_detokenizer *detok = wh_detokenizer_new(s->tok, FALSE);
  GString *reply = g_string_new(NULL);
  gsize emitted = 0;
  wh_session_stop_reason reason = WH_SESSION_STOP_MAX_TOKENS;
  const int n_vocab = (int)wh_model_n_vocab(s->model);
  gint64 t_first = 0;
  gboolean done = e != NULL;
  if (e)
    reason = g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? WH_SESSION_STOP_CANCELLED
                                                                  : WH_SESSION_STOP_ERROR;
  while (!done && st->generated_tokens < max_tokens) {
    gint32 next = wh_sampler_sample(sampler, logits, n_vocab);
    if (!t_first) {
      t_first = g_get_monotonic_time();
      st->time_to_first_token_ms = (t_first - t0) / 1e3;
    }
    if (!gp->ignore_eog && wh_tokenizer_is_eog(s->tok, next)) {
      reason = WH_SESSION_STOP_EOG;
      break;
    }
    wh_sampler_accept(sampler, next);
    st->generated_tokens++;
    gsize before = reply->len;
    wh_detokenizer_push(detok, next, reply);
    sanitize_tail(reply, before);
    gssize at = stop_find(reply->str, reply->len, stops, before);
    if (at >= 0) {
      g_string_truncate(reply, (gsize)at);
      reason = WH_SESSION_STOP_STRING;
      done = TRUE;
    } else {
      gsize safe = reply->len - stop_hold_back(reply->str, reply->len, stops);
      if (safe > emitted) {
        sink->emit(sink->data, reply->str + emitted, safe - emitted);
        emitted = safe;
      }
    }
    if (sink->progress)
      sink->progress(sink->data, st->generated_tokens, max_tokens,
                     st->generated_tokens == 1 ? "Writing the reply" : NULL);
    if (done || st->generated_tokens >= max_tokens)
      break;
    if (!check_cancel(sink->cancellable, &e)) {
      reason = WH_SESSION_STOP_CANCELLED;
      break;
    }
    st->shifted_tokens += make_room(s, 1);
    logits = wh_context_decode(s->ctx, &next, 1, FALSE, &e);
    if (!logits) {
      reason = WH_SESSION_STOP_ERROR;
      break;
    }
    publish_n_ctx_used(s);
  }
  if (reason != WH_SESSION_STOP_STRING) {
    gsize before = reply->len;
    wh_detokenizer_flush(detok, reply);
    sanitize_tail(reply, before);
    /* A stop-string prefix held back at the end is reply text after all. */
    gssize at = stop_find(reply->str, reply->len, stops, emitted);
    if (at >= 0) {
      g_string_truncate(reply, (gsize)at);
      if (reason != WH_SESSION_STOP_CANCELLED && reason != WH_SESSION_STOP_ERROR)
        reason = WH_SESSION_STOP_STRING;
    }
  }
  if (reply->len > emitted)
    sink->emit(sink->data, reply->str + emitted, reply->len - emitted);
  gint64 t_end = g_get_monotonic_time();
  if (t_first && st->generated_tokens > 1) {
    st->generation_seconds = (t_end - t_first) / 1e6;
    st->generation_tokens_per_second =
        st->generation_seconds > 0 ? (st->generated_tokens - 1) / st->generation_seconds : 0;
  }
  st->stop_reason = reason;
  st->n_ctx_used = wh_context_n_past(s->ctx);
  wh_detokenizer_free(detok);
  wh_sampler_free(sampler);

  g_mutex_lock(&s->lock);
  append_msg_locked(s, WH_SESSION_ROLE_ASSISTANT, reply->str, reason);
  s->last_stats = *st;
  s->n_ctx_used = st->n_ctx_used;
  g_mutex_unlock(&s->lock);
  g_string_free(reply, TRUE);
  if (e) {
    g_propagate_error(error, e);
    return FALSE;
  }
  return TRUE;
}

/* Claims `busy`; FALSE with BUSY or NO_PROMPT when a turn cannot start. */
static gboolean
claim(wh_session *s, GError **error)
{
  if (!lock_idle(s, error))
    return FALSE;
  guint n = s->msgs->len;
  if (n == 0 || ((session_msg *)g_ptr_array_index(s->msgs, n - 1))->role != WH_SESSION_ROLE_USER) {
    g_mutex_unlock(&s->lock);
    g_set_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_NO_PROMPT,
                "There is no user message to answer: add one first");
    return FALSE;
  }
  s->busy = TRUE;
  g_mutex_unlock(&s->lock);
  return TRUE;
}

static void
release(wh_session *s)
{
  g_mutex_lock(&s->lock);
  s->busy = FALSE;
  g_clear_pointer(&s->job, wh_job_unref);
  g_mutex_unlock(&s->lock);
}

typedef struct {
  wh_session *session;
  wh_session_text_func on_text;
  gpointer user_data;
} sync_sink;

static void
sync_emit(gpointer data, const char *text, gsize len)
{
  sync_sink *ss = data;
  if (!ss->on_text)
    return;
  g_autofree char *t = g_strndup(text, len);
  ss->on_text(ss->session, t, len, ss->user_data);
}

gboolean
wh_session_generate(wh_session *s, const wh_session_generate_params *params,
                    wh_session_text_func on_text, gpointer user_data, GCancellable *cancellable,
                    wh_session_stats *stats, GError **error)
{
  g_return_val_if_fail(s != NULL, FALSE);
  wh_session_generate_params dp = wh_session_generate_default_params();
  if (!params)
    params = &dp;
  wh_session_stats st_local;
  if (!stats)
    stats = &st_local;
  memset(stats, 0, sizeof *stats);
  if (!claim(s, error))
    return FALSE;
  sync_sink ss = {s, on_text, user_data};
  turn_sink sink = {sync_emit, NULL, &ss, cancellable};
  gboolean ok = run_turn(s, params, &sink, stats, error);
  release(s);
  return ok;
}

gboolean
wh_session_regenerate(wh_session *s, const wh_session_generate_params *params,
                      wh_session_text_func on_text, gpointer user_data, GCancellable *cancellable,
                      wh_session_stats *stats, GError **error)
{
  return wh_session_remove_last_reply(s, error) &&
         wh_session_generate(s, params, on_text, user_data, cancellable, stats, error);
}

/* --- async generation ---------------------------------------------------------------------- */

typedef struct {
  wh_session *session;
  wh_session_generate_params params;
  char **stops;
  wh_session_text_func on_text;
  wh_session_done_func on_done;
  gpointer user_data;
  GDestroyNotify destroy;
  GMutex lock;
  GString *pending; /* text produced by the worker, not yet delivered */
  gboolean done_called;
} gen_job;

static void
gen_job_free(gpointer p)
{
  gen_job *g = p;
  if (!g->done_called)
    release(g->session); /* the queue went away before the terminal notification */
  if (g->destroy)
    g->destroy(g->user_data);
  g_strfreev(g->stops);
  g_string_free(g->pending, TRUE);
  g_mutex_clear(&g->lock);
  wh_session_unref(g->session);
  g_free(g);
}

typedef struct {
  gen_job *g;
  wh_job *job;
} gen_emit_ctx;

static void
async_emit(gpointer data, const char *text, gsize len)
{
  gen_emit_ctx *ec = data;
  g_mutex_lock(&ec->g->lock);
  g_string_append_len(ec->g->pending, text, (gssize)len);
  g_mutex_unlock(&ec->g->lock);
}

/* Job progress: prompt tokens read, then reply tokens of max_tokens; each report also makes
 * the main context drain the pending text. */
static void
async_progress(gpointer data, guint64 done, guint64 total, const char *status)
{
  gen_emit_ctx *ec = data;
  wh_job_set_progress(ec->job, done, total, status);
}

static gboolean
gen_job_run(wh_job *job, gpointer user_data, GError **error)
{
  gen_job *g = user_data;
  gen_emit_ctx ec = {g, job};
  turn_sink sink = {async_emit, async_progress, &ec, wh_job_get_cancellable(job)};
  wh_session_stats *st = g_new0(wh_session_stats, 1);
  gboolean ok = run_turn(g->session, &g->params, &sink, st, error);
  wh_job_set_result(job, st, g_free);
  return ok;
}

static void
gen_job_notify(wh_job *job, gpointer user_data)
{
  gen_job *g = user_data;
  g_mutex_lock(&g->lock);
  char *text = NULL;
  gsize len = g->pending->len;
  if (len > 0) {
    text = g_strndup(g->pending->str, len);
    g_string_truncate(g->pending, 0);
  }
  g_mutex_unlock(&g->lock);
  if (text && g->on_text)
    g->on_text(g->session, text, len, g->user_data);
  g_free(text);
  if (wh_job_is_finished(job) && !g->done_called) {
    g->done_called = TRUE;
    release(g->session);
    if (g->on_done)
      g->on_done(g->session, job, g->user_data);
  }
}

wh_job *
wh_session_generate_async(wh_session *s, wh_job_queue *queue,
                          const wh_session_generate_params *params, wh_session_text_func on_text,
                          wh_session_done_func on_done, gpointer user_data, GDestroyNotify destroy,
                          GError **error)
{
  g_return_val_if_fail(s != NULL && queue != NULL, NULL);
  if (!claim(s, error))
    return NULL;
  gen_job *g = g_new0(gen_job, 1);
  g->session = wh_session_ref(s);
  g->params = params ? *params : wh_session_generate_default_params();
  g->stops = g_strdupv((char **)g->params.stop); /* NULL stays NULL */
  g->params.stop = (const char *const *)g->stops;
  g->on_text = on_text;
  g->on_done = on_done;
  g->user_data = user_data;
  g->destroy = destroy;
  g_mutex_init(&g->lock);
  g->pending = g_string_new(NULL);
  g_autofree char *title = g_strdup_printf("Generating a reply with %s", s->name);
  /* Hold the lock across submit so s->job is set before the terminal notification can clear
   * it. */
  g_mutex_lock(&s->lock);
  wh_job *job = wh_job_queue_submit(queue, WH_JOB_GENERATE, title, gen_job_run, g, gen_job_free,
                                    gen_job_notify, g);
  s->job = wh_job_ref(job);
  g_mutex_unlock(&s->lock);
  return job;
}

wh_job *
wh_session_regenerate_async(wh_session *s, wh_job_queue *queue,
                            const wh_session_generate_params *params, wh_session_text_func on_text,
                            wh_session_done_func on_done, gpointer user_data,
                            GDestroyNotify destroy, GError **error)
{
  if (!wh_session_remove_last_reply(s, error))
    return NULL;
  return wh_session_generate_async(s, queue, params, on_text, on_done, user_data, destroy, error);
}

gboolean
wh_session_generate_finish(wh_session *s, wh_job *job, wh_session_stats *stats, GError **error)
{
  (void)s;
  const wh_session_stats *st = wh_job_get_result(job);
  if (stats) {
    if (st)
      *stats = *st;
    else
      memset(stats, 0, sizeof *stats);
  }
  switch (wh_job_get_state(job)) {
  case WH_JOB_SUCCEEDED:
    return TRUE;
  case WH_JOB_FAILED:
  case WH_JOB_CANCELLED: {
    const GError *e = wh_job_get_error(job);
    if (e)
      g_set_error_literal(error, e->domain, e->code, e->message);
    else
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Cancelled");
    return FALSE;
  }
  default:
    g_set_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_BUSY,
                "The generation job has not finished yet");
    return FALSE;
  }
}
