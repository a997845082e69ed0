/* test-session.c — multi-turn chat sessions: KV prefix reuse against a fresh context, async
 * generation and cancellation through the job queue, stop strings, regenerate, edit, the
 * prompt window when the context fills, statistics, and load errors.
 *
 * Models: stories260K (no chat template: the built-in ChatML format) and synth-gemma2-F16 with
 * the shared Gemma 2 template as an override (a real template that writes bos_token and
 * rejects the system role, so the system text is folded into the first user message).
 */
#include "config.h"

#include <string.h>

#include "session/session.h"
#include "wh-test-util.h"

#define STORIES "models/stories260K.gguf"
#define GEMMA2 "reference/models/synth-gemma2-F16.gguf"
#define GEMMA2_TEMPLATE "chat-templates/google-gemma-2-2b-it.jinja"

static wh_sampler_params
greedy(void)
{
  wh_sampler_params sp = wh_sampler_default_params();
  sp.temperature = 0;
  sp.seed = 42;
  return sp;
}

/* A greedy session on shared model @rel with @p (one compute thread: tiny models run fastest
 * on one); NULL (test skipped) when the model is missing. */
static wh_session *
open_with(const char *rel, wh_session_params *p)
{
  g_autofree char *path = wh_test_shared_file_or_skip(rel);
  if (!path)
    return NULL;
  p->context.n_threads = 1;
  g_autoptr(GError) error = NULL;
  wh_session *s = wh_session_new(path, p, &error);
  g_assert_no_error(error);
  g_assert_nonnull(s);
  wh_sampler_params sp = greedy();
  g_assert_true(wh_session_set_sampler_params(s, &sp, &error));
  return s;
}

static wh_session *
open_session(const char *rel, const char *template_rel, guint32 n_ctx)
{
  g_autofree char *tmpl = NULL;
  if (template_rel) {
    g_autofree char *tpath = wh_test_shared_file_or_skip(template_rel);
    if (!tpath)
      return NULL;
    g_assert_true(g_file_get_contents(tpath, &tmpl, NULL, NULL));
  }
  wh_session_params p = wh_session_default_params();
  p.context.n_ctx = n_ctx;
  p.chat_template = tmpl;
  return open_with(rel, &p);
}

static void
collect_text(wh_session *s, const char *text, gsize len, gpointer user_data)
{
  (void)s;
  g_assert_cmpuint(strlen(text), ==, len);
  g_assert_true(g_utf8_validate(text, (gssize)len, NULL)); /* never half a character */
  g_string_append_len(user_data, text, (gssize)len);
}

static char *
last_message(wh_session *s, wh_session_role *role, wh_session_stop_reason *stop)
{
  guint n = wh_session_get_n_messages(s);
  g_assert_cmpuint(n, >, 0);
  return wh_session_dup_message(s, n - 1, role, stop);
}

/* Generates one reply, checks the streamed text is the stored reply, returns it. */
static char *
turn(wh_session *s, const char *user, int max_tokens, const char *const *stops,
     wh_session_stats *st)
{
  g_autoptr(GError) error = NULL;
  if (user)
    g_assert_true(wh_session_add_message(s, WH_SESSION_ROLE_USER, user, &error));
  wh_session_generate_params gp = wh_session_generate_default_params();
  gp.max_tokens = max_tokens;
  gp.stop = stops;
  g_autoptr(GString) streamed = g_string_new(NULL);
  gboolean ok = wh_session_generate(s, &gp, collect_text, streamed, NULL, st, &error);
  g_assert_no_error(error);
  g_assert_true(ok);
  wh_session_role role;
  char *reply = last_message(s, &role, NULL);
  g_assert_cmpint(role, ==, WH_SESSION_ROLE_ASSISTANT);
  g_assert_cmpstr(reply, ==, streamed->str);
  return reply;
}

/* The independent reference: a fresh context fed the whole rendered prompt, greedy, stopping
 * at EOG or @max_tokens, the text cut at the first stop string. */
static char *
fresh_greedy(wh_session *s, const char *prompt, int max_tokens, const char *const *stops,
             GArray **ids_out)
{
  wh_model *model = wh_session_get_model(s);
  const wh_tokenizer *tok = wh_session_get_tokenizer(s);
  g_autoptr(GError) error = NULL;
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  g_assert_cmpint(wh_tokenizer_tokenize(tok, prompt, strlen(prompt), FALSE, TRUE, ids, &error), >=,
                  0);
  gint32 bos = wh_tokenizer_bos(tok);
  if (wh_tokenizer_add_bos(tok) && (ids->len == 0 || g_array_index(ids, gint32, 0) != bos))
    g_array_prepend_val(ids, bos);
  wh_context_params cp = wh_context_default_params();
  cp.n_ctx = wh_session_get_n_ctx(s);
  cp.n_threads = 1;
  wh_context *ctx = wh_context_new(model, &cp, &error);
  g_assert_no_error(error);
  const float *logits = wh_context_decode(ctx, (const gint32 *)ids->data, ids->len, FALSE, &error);
  g_assert_no_error(error);
  GString *text = g_string_new(NULL);
  wh_detokenizer *d = wh_detokenizer_new(tok, FALSE);
  for (int i = 0; i < max_tokens; i++) {
    gint32 next = wh_sample_argmax(logits, (int)wh_model_n_vocab(model));
    if (wh_tokenizer_is_eog(tok, next))
      break;
    wh_detokenizer_push(d, next, text);
    if (i + 1 == max_tokens)
      break;
    logits = wh_context_decode(ctx, &next, 1, FALSE, &error);
    g_assert_no_error(error);
  }
  wh_detokenizer_flush(d, text);
  wh_detokenizer_free(d);
  wh_context_free(ctx);
  for (guint i = 0; stops && stops[i]; i++) {
    const char *at = strstr(text->str, stops[i]);
    if (at)
      g_string_truncate(text, (gsize)(at - text->str));
  }
  if (ids_out)
    *ids_out = ids;
  else
    g_array_unref(ids);
  return g_string_free(text, FALSE);
}

static const char *const chatml_stops[] = {"<|im_end|>", "<|im_start|>", NULL};

static void
check_stats(const wh_session_stats *st, int max_tokens)
{
  g_assert_cmpuint(st->prompt_tokens, >, 0);
  g_assert_cmpuint(st->reused_tokens + st->prefill_tokens, ==, st->prompt_tokens);
  g_assert_cmpuint(st->prefill_tokens, >=, 1);
  g_assert_cmpuint(st->generated_tokens, <=, (guint)max_tokens);
  g_assert_cmpuint(st->n_ctx_used, <=, st->prompt_tokens + st->generated_tokens);
  g_assert_cmpuint(st->n_ctx_used + 1, >=, st->prompt_tokens + st->generated_tokens);
  g_assert_cmpuint(st->n_ctx_used, <=, st->n_ctx);
  g_assert_cmpfloat(st->time_to_first_token_ms, >, 0);
  g_assert_cmpfloat(st->prompt_tokens_per_second, >, 0);
  if (st->generated_tokens > 1)
    g_assert_cmpfloat(st->generation_tokens_per_second, >, 0);
  if (st->stop_reason == WH_SESSION_STOP_MAX_TOKENS)
    g_assert_cmpuint(st->generated_tokens, ==, (guint)max_tokens);
}

/* Turn 2 reuses the whole of turn 1's prompt from the cache and still answers exactly like a
 * fresh context fed the whole conversation. */
static void
test_prefix_reuse_stories(void)
{
  g_autoptr(wh_session) s = open_session(STORIES, NULL, 512);
  if (!s)
    return;
  const char *why = NULL;
  g_assert_cmpint(wh_session_get_chat_format(s, &why), ==, WH_CHAT_FORMAT_CHATML);
  g_assert_nonnull(strstr(why, "no chat template"));
  /* 403 407 261 378 (the reference ids of this prompt, BOS not counted) */
  g_assert_cmpint(wh_session_count_tokens(s, "Once upon a time"), ==, 4);
  g_autoptr(GError) error = NULL;
  g_assert_true(wh_session_set_system_prompt(s, "You tell short stories.", &error));

  wh_session_stats st1, st2, st3;
  g_autofree char *r1 = turn(s, "Once upon a time", 24, NULL, &st1);
  check_stats(&st1, 24);
  g_assert_cmpuint(st1.reused_tokens, ==, 0);
  g_assert_cmpuint(st1.generated_tokens, >, 0);

  g_assert_true(wh_session_add_message(s, WH_SESSION_ROLE_USER, "Lily went to the park.", &error));
  g_autofree char *prompt2 = wh_session_render_prompt(s, &error);
  g_assert_nonnull(strstr(prompt2, r1));
  g_autofree char *r2 = turn(s, NULL, 24, NULL, &st2);
  check_stats(&st2, 24);
  g_test_message("turn 1: %u prompt tokens; turn 2: %u prompt, %u reused, %u prefilled",
                 st1.prompt_tokens, st2.prompt_tokens, st2.reused_tokens, st2.prefill_tokens);
  g_assert_cmpuint(st2.reused_tokens, >=, st1.prompt_tokens);
  g_autofree char *want2 = fresh_greedy(s, prompt2, 24, chatml_stops, NULL);
  g_assert_cmpstr(r2, ==, want2);

  /* A third turn keeps going the same way. */
  g_assert_true(wh_session_add_message(s, WH_SESSION_ROLE_USER, "The end?", &error));
  g_autofree char *prompt3 = wh_session_render_prompt(s, &error);
  g_autofree char *r3 = turn(s, NULL, 16, NULL, &st3);
  g_assert_cmpuint(st3.reused_tokens, >=, st2.prompt_tokens);
  g_autofree char *want3 = fresh_greedy(s, prompt3, 16, chatml_stops, NULL);
  g_assert_cmpstr(r3, ==, want3);
  g_assert_cmpuint(wh_session_get_n_messages(s), ==, 6);
  g_assert_cmpuint(wh_session_get_n_ctx_used(s), ==, st3.n_ctx_used);
}

/* A real template from the shared set: BOS written by the template is not doubled, the
 * system prompt is folded, prefix reuse and fresh-context equality hold. */
static void
test_template_gemma2(void)
{
  g_autoptr(wh_session) s = open_session(GEMMA2, GEMMA2_TEMPLATE, 256);
  if (!s)
    return;
  const char *why = NULL;
  g_assert_cmpint(wh_session_get_chat_format(s, &why), ==, WH_CHAT_FORMAT_TEMPLATE);
  g_assert_null(why);
  g_autoptr(GError) error = NULL;
  g_assert_true(wh_session_set_system_prompt(s, "Be brief.", &error));
  g_assert_true(wh_session_add_message(s, WH_SESSION_ROLE_USER, "Hello there", &error));
  g_autofree char *prompt = wh_session_render_prompt(s, &error);
  g_assert_no_error(error);
  g_assert_true(g_str_has_prefix(prompt, "<s><start_of_turn>user\nBe brief.\nHello there"));
  g_assert_true(g_str_has_suffix(prompt, "<start_of_turn>model\n"));

  wh_session_stats st1, st2;
  g_autofree char *r1 = turn(s, NULL, 12, NULL, &st1);
  check_stats(&st1, 12);
  GArray *ids = NULL;
  g_autofree char *want1 = fresh_greedy(s, prompt, 12, NULL, &ids);
  g_assert_cmpstr(r1, ==, want1);
  gint32 bos = wh_tokenizer_bos(wh_session_get_tokenizer(s));
  g_assert_cmpint(g_array_index(ids, gint32, 0), ==, bos);
  g_assert_cmpint(g_array_index(ids, gint32, 1), !=, bos); /* "<s>" of the template is the BOS */
  g_assert_cmpuint(st1.prompt_tokens, ==, ids->len);
  g_array_unref(ids);

  g_assert_true(wh_session_add_message(s, WH_SESSION_ROLE_USER, "And then?", &error));
  g_autofree char *prompt2 = wh_session_render_prompt(s, &error);
  g_autofree char *r2 = turn(s, NULL, 12, NULL, &st2);
  g_test_message("gemma2 template: turn 1 %u tokens; turn 2 %u, %u reused", st1.prompt_tokens,
                 st2.prompt_tokens, st2.reused_tokens);
  g_assert_cmpuint(st2.reused_tokens, >=, st1.prompt_tokens);
  g_autofree char *want2 = fresh_greedy(s, prompt2, 12, NULL, NULL);
  g_assert_cmpstr(r2, ==, want2);
}

/* A random model emits byte tokens that form no character: the streamed text and the stored
 * reply are still valid UTF-8 (collect_text checks every piece). */
static void
test_utf8_random_model(void)
{
  g_autoptr(wh_session) s = open_session("reference/models/synth-llama-F16.gguf", NULL, 512);
  if (!s)
    return;
  wh_session_stats st;
  g_autofree char *r = turn(s, "Tell me a story about a cat.", 48, NULL, &st);
  g_assert_true(g_utf8_validate(r, -1, NULL));
  g_assert_cmpuint(st.generated_tokens, >, 0);
  g_autofree char *r2 = turn(s, "And then?", 48, NULL, &st);
  g_assert_true(g_utf8_validate(r2, -1, NULL));
  /* This model does produce such bytes within these 96 tokens (else the test proves nothing). */
  g_assert_true(strstr(r, "\xef\xbf\xbd") || strstr(r2, "\xef\xbf\xbd"));
}

/* A template that refuses some conversations: two user messages in a row are merged for a
 * template that insists on alternating roles (Gemma 2), and a conversation the template
 * still refuses is rendered in the built-in format for that turn only. */
static void
test_template_refusals(void)
{
  g_autoptr(wh_session) s = open_session(GEMMA2, GEMMA2_TEMPLATE, 256);
  if (!s)
    return;
  g_autoptr(GError) error = NULL;
  g_assert_true(wh_session_add_message(s, WH_SESSION_ROLE_USER, "First", &error));
  g_assert_true(wh_session_add_message(s, WH_SESSION_ROLE_USER, "Second", &error));
  g_autofree char *prompt = wh_session_render_prompt(s, &error);
  g_assert_cmpstr(prompt, ==,
                  "<s><start_of_turn>user\nFirst\n\nSecond<end_of_turn>\n<start_of_turn>model\n");
  wh_session_stats st;
  g_autofree char *r = turn(s, NULL, 6, NULL, &st);
  g_assert_cmpuint(st.generated_tokens, >, 0);

  wh_session_params p = wh_session_default_params();
  p.context.n_ctx = 256;
  p.chat_template = "{% for m in messages %}{% if 'boom' in m['content'] %}"
                    "{{ raise_exception('no boom here') }}{% endif %}"
                    "[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
                    "{% if add_generation_prompt %}[assistant] {% endif %}";
  g_autoptr(wh_session) b = open_with(STORIES, &p);
  if (!b)
    return;
  g_assert_cmpint(wh_session_get_chat_format(b, NULL), ==, WH_CHAT_FORMAT_TEMPLATE);
  g_assert_true(wh_session_add_message(b, WH_SESSION_ROLE_USER, "calm", &error));
  g_autofree char *calm = wh_session_render_prompt(b, &error);
  g_assert_cmpstr(calm, ==, "[user] calm\n[assistant] ");
  g_assert_true(wh_session_edit_message(b, 0, "boom", &error));
  g_autofree char *boom = wh_session_render_prompt(b, &error);
  g_assert_cmpstr(boom, ==, "<|im_start|>user\nboom<|im_end|>\n<|im_start|>assistant\n");
  g_autofree char *rb = turn(b, NULL, 24, NULL, &st);
  g_assert_null(strstr(rb, "<|im_end|>")); /* the built-in format's stop strings apply */
  g_autofree char *want = fresh_greedy(b, boom, 24, chatml_stops, NULL);
  g_assert_cmpstr(rb, ==, want);
}

/* Regenerate gives the same greedy reply, reusing the whole prompt; edit truncates. */
static void
test_regenerate_edit(void)
{
  g_autoptr(wh_session) s = open_session(STORIES, NULL, 512);
  if (!s)
    return;
  g_autoptr(GError) error = NULL;
  wh_session_stats st, st2;
  g_autofree char *r1 = turn(s, "Tom had a red ball", 20, NULL, &st);
  g_autoptr(GString) streamed = g_string_new(NULL);
  wh_session_generate_params gp = wh_session_generate_default_params();
  gp.max_tokens = 20;
  g_assert_true(wh_session_regenerate(s, &gp, collect_text, streamed, NULL, &st2, &error));
  g_assert_cmpstr(streamed->str, ==, r1);
  g_assert_cmpuint(wh_session_get_n_messages(s), ==, 2);
  g_assert_cmpuint(st2.prompt_tokens, ==, st.prompt_tokens);
  g_assert_cmpuint(st2.reused_tokens, ==, st.prompt_tokens - 1);
  g_assert_cmpuint(st2.seed, ==, st.seed + 1);

  /* Regenerate needs a reply to replace. */
  g_assert_true(wh_session_add_message(s, WH_SESSION_ROLE_USER, "More", &error));
  g_assert_false(wh_session_remove_last_reply(s, &error));
  g_assert_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_NO_PROMPT);
  g_clear_error(&error);

  /* Editing the first message drops everything after it; the answer is to the new text. */
  g_assert_true(wh_session_edit_message(s, 0, "Sue had a big dog", &error));
  g_assert_cmpuint(wh_session_get_n_messages(s), ==, 1);
  g_autofree char *prompt = wh_session_render_prompt(s, &error);
  g_assert_nonnull(strstr(prompt, "Sue had a big dog"));
  g_assert_null(strstr(prompt, "Tom"));
  g_autofree char *r2 = turn(s, NULL, 20, NULL, &st);
  g_autofree char *want = fresh_greedy(s, prompt, 20, chatml_stops, NULL);
  g_assert_cmpstr(r2, ==, want);
  g_assert_false(wh_session_edit_message(s, 7, "x", &error));
  g_assert_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_INVALID);
  g_clear_error(&error);

  /* Restoring a stored conversation (what the app does when switching branch): the system
   * message becomes the system prompt and the reply answers the restored history. */
  const wh_chat_message restored[] = {{"system", "Short stories only."},
                                      {"user", "Tom had a red ball"},
                                      {"assistant", "He threw it high."},
                                      {"user", "Where did it land?"}};
  g_assert_true(wh_session_set_messages(s, restored, G_N_ELEMENTS(restored), &error));
  g_assert_cmpuint(wh_session_get_n_messages(s), ==, 3);
  g_autofree char *sys = wh_session_dup_system_prompt(s);
  g_assert_cmpstr(sys, ==, "Short stories only.");
  g_autofree char *prompt3 = wh_session_render_prompt(s, &error);
  g_assert_true(g_str_has_prefix(prompt3, "<|im_start|>system\nShort stories only.<|im_end|>\n"
                                          "<|im_start|>user\nTom had a red ball<|im_end|>\n"
                                          "<|im_start|>assistant\nHe threw it high.<|im_end|>\n"));
  g_autofree char *r3 = turn(s, NULL, 20, NULL, &st);
  g_autofree char *want3 = fresh_greedy(s, prompt3, 20, chatml_stops, NULL);
  g_assert_cmpstr(r3, ==, want3);
  const wh_chat_message misplaced[] = {{"user", "hi"}, {"system", "late"}};
  g_assert_false(wh_session_set_messages(s, misplaced, 2, &error));
  g_assert_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_cmpuint(wh_session_get_n_messages(s), ==, 4); /* unchanged */
  g_assert_true(wh_session_truncate(s, 2, &error));      /* ends with a reply */

  /* Generating with nothing to answer. */
  g_assert_false(wh_session_generate(s, &gp, NULL, NULL, NULL, NULL, &error));
  g_assert_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_NO_PROMPT);
  g_clear_error(&error);
  g_assert_true(wh_session_reset(s, &error));
  g_assert_cmpuint(wh_session_get_n_messages(s), ==, 0);
  g_assert_false(wh_session_generate(s, &gp, NULL, NULL, NULL, NULL, &error));
  g_assert_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_NO_PROMPT);
}

/* A stop string found in the free-running reply ends the reply just before it, and no part
 * of it is ever streamed. */
static void
test_stop_strings(void)
{
  g_autoptr(wh_session) s = open_session(STORIES, NULL, 512);
  if (!s)
    return;
  g_autoptr(GError) error = NULL;
  wh_session_stats st;
  g_autofree char *free_run = turn(s, "Once upon a time", 40, NULL, &st);
  gsize len = strlen(free_run);
  g_assert_cmpuint(len, >, 12);
  /* A stop string taken from the middle of the free-running reply. */
  g_autofree char *stop = g_strndup(free_run + len / 2, 4);
  const char *stops[] = {"never appears in text", stop, NULL};
  g_autofree char *stopped = NULL;
  {
    g_autoptr(GString) streamed = g_string_new(NULL);
    wh_session_generate_params gp = wh_session_generate_default_params();
    gp.max_tokens = 40;
    gp.stop = stops;
    g_assert_true(wh_session_remove_last_reply(s, &error));
    g_assert_true(wh_session_generate(s, &gp, collect_text, streamed, NULL, &st, &error));
    wh_session_stop_reason why;
    stopped = last_message(s, NULL, &why);
    g_assert_cmpstr(stopped, ==, streamed->str);
    g_assert_cmpint(why, ==, WH_SESSION_STOP_STRING);
    g_assert_cmpint(st.stop_reason, ==, WH_SESSION_STOP_STRING);
  }
  const char *at = strstr(free_run, stop);
  g_assert_nonnull(at);
  g_assert_cmpuint(strlen(stopped), ==, (gsize)(at - free_run));
  g_assert_true(strncmp(stopped, free_run, strlen(stopped)) == 0);
  g_assert_null(strstr(stopped, stop));
}

/* --- async --------------------------------------------------------------------------------- */

typedef struct {
  GString *text;
  wh_job *job;
  guint n_pieces;
  gboolean done;
  gboolean cancel_after_first; /* once 1500 bytes have arrived */
  gboolean busy_seen;
  guint32 min_used, max_used; /* wh_session_get_n_ctx_used() seen while streaming */
  GMainLoop *loop;
} async_state;

static void
async_text(wh_session *s, const char *text, gsize len, gpointer user_data)
{
  async_state *a = user_data;
  collect_text(s, text, len, a->text);
  a->n_pieces++;
  guint32 used = wh_session_get_n_ctx_used(s);
  a->min_used = a->n_pieces == 1 ? used : MIN(a->min_used, used);
  a->max_used = MAX(a->max_used, used);
  /* While it runs, the history cannot change. */
  GError *e = NULL;
  a->busy_seen = wh_session_is_busy(s) &&
                 !wh_session_add_message(s, WH_SESSION_ROLE_USER, "no", &e) &&
                 g_error_matches(e, WH_SESSION_ERROR, WH_SESSION_ERROR_BUSY);
  g_clear_error(&e);
  /* Far past the 128-token context, so the cache has been shifted several times. */
  if (a->cancel_after_first && a->text->len > 1500)
    wh_session_cancel(s);
}

static void
async_done(wh_session *s, wh_job *job, gpointer user_data)
{
  async_state *a = user_data;
  g_assert_true(job == a->job);
  g_assert_false(wh_session_is_busy(s));
  a->done = TRUE;
  g_main_loop_quit(a->loop);
}

/* Cancel mid-generation through the job queue: the reply keeps the streamed text and is
 * marked cancelled. The context is small and EOG ignored, so only the cancel (after context
 * shifts) can end it. */
static void
test_async_cancel(void)
{
  g_autoptr(wh_session) s = open_session(STORIES, NULL, 128);
  if (!s)
    return;
  g_autoptr(GError) error = NULL;
  g_assert_true(wh_session_set_system_prompt(s, "Stories.", &error));
  g_assert_true(wh_session_add_message(s, WH_SESSION_ROLE_USER, "Once upon a time", &error));
  GMainContext *mc = g_main_context_new();
  g_main_context_push_thread_default(mc);
  wh_job_queue *q = wh_job_queue_new(mc, 0);
  async_state a = {.text = g_string_new(NULL), .cancel_after_first = TRUE};
  a.loop = g_main_loop_new(mc, FALSE);
  wh_session_generate_params gp = wh_session_generate_default_params();
  gp.max_tokens = 1000000;
  gp.ignore_eog = TRUE;
  a.job = wh_session_generate_async(s, q, &gp, async_text, async_done, &a, NULL, &error);
  g_assert_no_error(error);
  g_assert_true(wh_session_is_busy(s));
  /* A second generation while busy is refused. */
  g_assert_null(wh_session_generate_async(s, q, &gp, NULL, NULL, NULL, NULL, &error));
  g_assert_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_BUSY);
  g_clear_error(&error);
  g_main_loop_run(a.loop);
  g_assert_true(a.done);
  g_assert_true(a.busy_seen);
  /* The live cache fill: past the prompt from the first piece, never past the context. */
  g_assert_cmpuint(a.min_used, >, 20);
  g_assert_cmpuint(a.max_used, <=, 128);
  g_assert_cmpuint(a.max_used, >, a.min_used);
  wh_session_stats st;
  g_assert_false(wh_session_generate_finish(s, a.job, &st, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error(&error);
  g_assert_cmpint(st.stop_reason, ==, WH_SESSION_STOP_CANCELLED);
  g_assert_cmpuint(st.generated_tokens, >, 0);
  g_assert_cmpuint(st.generated_tokens, <, 1000000);
  wh_session_stop_reason why;
  g_autofree char *reply = last_message(s, NULL, &why);
  g_assert_cmpint(why, ==, WH_SESSION_STOP_CANCELLED);
  g_assert_cmpstr(reply, ==, a.text->str);
  g_assert_cmpuint(strlen(reply), >, 1500);
  g_assert_cmpuint(st.shifted_tokens, >, 0);
  g_assert_cmpuint(st.n_ctx_used, <=, 128);
  g_test_message("cancelled after %u tokens (%u pieces delivered, %u tokens shifted out)",
                 st.generated_tokens, a.n_pieces, st.shifted_tokens);
  wh_job_unref(a.job);

  /* An async turn that runs to max_tokens matches the sync one of a fresh session. */
  g_assert_true(wh_session_add_message(s, WH_SESSION_ROLE_USER, "Again", &error));
  g_autofree char *prompt = wh_session_render_prompt(s, &error);
  g_string_truncate(a.text, 0);
  a.cancel_after_first = FALSE;
  a.done = FALSE;
  gp.max_tokens = 10;
  gp.ignore_eog = FALSE;
  a.job = wh_session_generate_async(s, q, &gp, async_text, async_done, &a, NULL, &error);
  g_main_loop_run(a.loop);
  g_assert_true(wh_session_generate_finish(s, a.job, &st, &error));
  g_assert_no_error(error);
  check_stats(&st, 10);
  g_autofree char *want = fresh_greedy(s, prompt, 10, chatml_stops, NULL);
  g_assert_cmpstr(a.text->str, ==, want);
  wh_job_unref(a.job);

  wh_job_queue_free(q);
  g_main_loop_unref(a.loop);
  g_string_free(a.text, TRUE);
  g_main_context_pop_thread_default(mc);
  g_main_context_unref(mc);
}

static void
load_notify(wh_job *job, gpointer user_data)
{
  if (wh_job_is_finished(job))
    g_main_loop_quit(user_data);
}

static gboolean
wait_gate(wh_job *job, gpointer user_data, GError **error)
{
  (void)job;
  (void)error;
  while (!g_atomic_int_get((gint *)user_data))
    g_usleep(1000);
  return TRUE;
}

/* Loading as a job; errors name the file. */
static void
test_load(void)
{
  g_autofree char *path = wh_test_shared_file_or_skip(STORIES);
  if (!path)
    return;
  g_autoptr(GError) error = NULL;
  GMainContext *mc = g_main_context_new();
  g_main_context_push_thread_default(mc);
  GMainLoop *loop = g_main_loop_new(mc, FALSE);
  wh_job_queue *q = wh_job_queue_new(mc, 0);
  wh_job *job = wh_session_load_async(path, NULL, q, load_notify, loop);
  g_main_loop_run(loop);
  wh_session *s = wh_session_load_finish(job, &error);
  g_assert_no_error(error);
  g_assert_nonnull(s);
  g_assert_null(wh_session_load_finish(job, &error)); /* given away once */
  g_assert_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_INVALID);
  g_clear_error(&error);
  wh_job_unref(job);
  g_assert_cmpstr(wh_session_get_model_path(s), ==, path);
  const wh_session_device *dev = NULL;
  g_assert_cmpuint(wh_session_get_devices(s, &dev), ==, 1);
  g_assert_cmpstr(dev[0].kind, ==, "cpu");
  g_assert_cmpuint(dev[0].n_layers, ==, wh_model_get_hparams(wh_session_get_model(s))->n_layer + 1);
  g_assert_cmpint(wh_session_get_n_gpu_layers(s), ==, 0);
  g_assert_nonnull(wh_session_get_device_note(s));
  g_assert_cmpuint(wh_session_get_n_ctx(s), ==, 2048); /* min(train 2048, 4096) */
  g_assert_cmpstr(wh_session_get_device_note(s), ==, "Running on the CPU.");
  wh_session_unref(s);

  /* "auto" (-1) is the planner's to resolve: refused here. */
  wh_session_params neg = wh_session_default_params();
  neg.n_gpu_layers = -1;
  g_assert_null(wh_session_new(path, &neg, &error));
  g_assert_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_INVALID);
  g_assert_nonnull(strstr(error->message, "planner"));
  g_clear_error(&error);

  /* Every layer asked on a GPU: the devices account for all layers, and the note explains
   * any layer the GPU did not take (no backend in this build, no device, ...). */
  wh_session_params gp = wh_session_default_params();
  gp.n_gpu_layers = WH_SESSION_NGL_ALL;
  gp.context.n_ctx = 256;
  s = wh_session_new(path, &gp, &error);
  g_assert_no_error(error);
  guint32 all = wh_model_get_hparams(wh_session_get_model(s))->n_layer + 1;
  g_assert_cmpint(wh_session_get_n_gpu_layers_requested(s), ==, (int)all);
  guint n_dev = wh_session_get_devices(s, &dev);
  guint32 sum = 0;
  for (guint i = 0; i < n_dev; i++)
    sum += dev[i].n_layers;
  g_assert_cmpuint(sum, ==, all);
  const char *note = wh_session_get_device_note(s);
  g_test_message("all layers asked on a GPU: %d of %u layers on a GPU; note: %s",
                 wh_session_get_n_gpu_layers(s), all, note);
  if (wh_session_get_n_gpu_layers(s) == 0) {
    g_assert_cmpuint(n_dev, ==, 1);
    g_assert_true(g_str_has_prefix(note, "Running on the CPU: "));
  } else {
    g_assert_cmpuint(n_dev, ==, 2);
    g_assert_cmpuint(dev[1].n_layers, ==, (guint)wh_session_get_n_gpu_layers(s));
  }
  wh_session_unref(s);

  /* A missing file fails the job with a message naming it. */
  job = wh_session_load_async("/nonexistent/missing.gguf", NULL, q, load_notify, loop);
  g_main_loop_run(loop);
  g_assert_null(wh_session_load_finish(job, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(error->message, "/nonexistent/missing.gguf"));
  g_clear_error(&error);
  wh_job_unref(job);

  /* Cancelled while it waits behind another compute job: no session, a cancelled error. */
  gint gate = 0;
  wh_job *blocker =
      wh_job_queue_submit(q, WH_JOB_EVALUATE, "blocker", wait_gate, &gate, NULL, NULL, NULL);
  job = wh_session_load_async(path, NULL, q, load_notify, loop);
  wh_job_cancel(job);
  g_atomic_int_set(&gate, 1);
  g_main_loop_run(loop);
  wh_job_wait(blocker);
  wh_job_unref(blocker);
  g_assert_cmpint(wh_job_get_state(job), ==, WH_JOB_CANCELLED);
  g_assert_null(wh_session_load_finish(job, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error(&error);
  wh_job_unref(job);

  /* Not a GGUF file: the loader's error, prefixed with the path. */
  g_autofree char *bad = wh_test_shared_file_or_skip("reference/eval.txt");
  if (bad) {
    g_assert_null(wh_session_new(bad, NULL, &error));
    g_assert_nonnull(error);
    g_assert_nonnull(strstr(error->message, bad));
    g_clear_error(&error);
  }
  wh_job_queue_free(q);
  g_main_loop_unref(loop);
  g_main_context_pop_thread_default(mc);
  g_main_context_unref(mc);
}

/* A reply longer than the context: the cache is shifted as it fills, the reply runs to
 * max_tokens, and the tokens of the system prompt stay at the start of the cache. */
static void
test_shift_keeps_system(void)
{
  g_autoptr(wh_session) s = open_session(STORIES, NULL, 128);
  if (!s)
    return;
  g_autoptr(GError) error = NULL;
  g_assert_true(wh_session_set_system_prompt(s, "Tiny tales for small children.", &error));
  g_assert_true(wh_session_add_message(s, WH_SESSION_ROLE_USER, "Once upon a time", &error));
  wh_session_generate_params gp = wh_session_generate_default_params();
  gp.max_tokens = 400;
  gp.ignore_eog = TRUE;
  wh_session_stats st;
  g_autoptr(GString) streamed = g_string_new(NULL);
  g_assert_true(wh_session_generate(s, &gp, collect_text, streamed, NULL, &st, &error));
  g_assert_cmpuint(st.generated_tokens, ==, 400);
  g_assert_cmpint(st.stop_reason, ==, WH_SESSION_STOP_MAX_TOKENS);
  g_assert_cmpuint(st.shifted_tokens, >=, 400 + st.prompt_tokens - 128);
  g_assert_cmpuint(st.n_ctx_used, <=, 128);

  const wh_tokenizer *tok = wh_session_get_tokenizer(s);
  const char *sys = "<|im_start|>system\nTiny tales for small children.<|im_end|>\n";
  g_autoptr(GArray) want = g_array_new(FALSE, FALSE, sizeof(gint32));
  g_assert_cmpint(wh_tokenizer_tokenize(tok, sys, strlen(sys), TRUE, TRUE, want, &error), >, 0);
  const wh_context *ctx = wh_session_get_context(s);
  g_assert_cmpuint(wh_context_n_past(ctx), >, want->len);
  g_assert_cmpmem(wh_context_get_tokens(ctx), want->len * sizeof(gint32), want->data,
                  want->len * sizeof(gint32));
}

/* With every layer on a GPU (when this build and machine have one), reusing the GPU's KV
 * cache across turns answers like a fresh GPU session given the same conversation. */
static void
test_gpu_reuse(void)
{
  wh_session_params p = wh_session_default_params();
  p.n_gpu_layers = WH_SESSION_NGL_ALL;
  p.context.n_ctx = 512;
  g_autoptr(wh_session) s = open_with(STORIES, &p);
  if (!s)
    return;
  if (wh_session_get_n_gpu_layers(s) == 0) {
    g_test_skip(wh_session_get_device_note(s));
    return;
  }
  g_autoptr(GError) error = NULL;
  wh_session_stats st1, st2, st3;
  g_autofree char *r1 = turn(s, "Once upon a time", 24, NULL, &st1);
  g_autofree char *r2 = turn(s, "Lily went to the park.", 24, NULL, &st2);
  g_assert_cmpuint(st2.reused_tokens, >=, st1.prompt_tokens);

  g_autoptr(wh_session) fresh = open_with(STORIES, &p);
  const wh_chat_message convo2[] = {
      {"user", "Once upon a time"}, {"assistant", r1}, {"user", "Lily went to the park."}};
  g_assert_true(wh_session_set_messages(fresh, convo2, G_N_ELEMENTS(convo2), &error));
  g_autofree char *want = turn(fresh, NULL, 24, NULL, &st3);
  g_assert_cmpuint(st3.reused_tokens, ==, 0);
  g_assert_cmpuint(st3.prompt_tokens, ==, st2.prompt_tokens);
  g_assert_cmpstr(r2, ==, want);
}

/* A full context: old messages leave the prompt window (the system prompt stays), replies
 * still match a fresh context on the window, and a message longer than the context is a clear
 * error. */
static void
test_context_full(void)
{
  g_autoptr(wh_session) s = open_session(STORIES, NULL, 128);
  if (!s)
    return;
  g_autoptr(GError) error = NULL;
  g_assert_true(wh_session_set_system_prompt(s, "Tiny tales.", &error));
  const char *users[] = {"Once upon a time there was a cat",
                         "The cat liked fish",
                         "One day the cat saw a bird",
                         "The bird flew away",
                         "The cat was sad",
                         "Then a dog came"};
  wh_session_stats st = {0};
  for (guint i = 0; i < G_N_ELEMENTS(users); i++) {
    g_assert_true(wh_session_add_message(s, WH_SESSION_ROLE_USER, users[i], &error));
    g_autofree char *prompt = wh_session_render_prompt(s, &error);
    g_autofree char *r = turn(s, NULL, 24, NULL, &st);
    g_assert_true(g_str_has_prefix(prompt, "<|im_start|>system\nTiny tales.<|im_end|>\n"));
    g_assert_cmpuint(st.prompt_tokens + MIN(24, 128 / 4), <=, 128);
    g_autofree char *want = fresh_greedy(s, prompt, 24, chatml_stops, NULL);
    g_assert_cmpstr(r, ==, want);
  }
  g_test_message("after %u turns: %u messages dropped from the window, %u tokens in the cache",
                 (guint)G_N_ELEMENTS(users), st.dropped_messages, st.n_ctx_used);
  g_assert_cmpuint(st.dropped_messages, >, 0);
  g_assert_cmpuint(wh_session_get_n_messages(s), ==, 2 * G_N_ELEMENTS(users));

  GString *huge = g_string_new(NULL);
  for (int i = 0; i < 100; i++)
    g_string_append(huge, "the cat sat on the mat ");
  g_assert_true(wh_session_add_message(s, WH_SESSION_ROLE_USER, huge->str, &error));
  g_string_free(huge, TRUE);
  g_assert_false(wh_session_generate(s, NULL, NULL, NULL, NULL, NULL, &error));
  g_assert_error(error, WH_SESSION_ERROR, WH_SESSION_ERROR_CONTEXT_FULL);
  g_assert_nonnull(strstr(error->message, "larger context"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/session/prefix-reuse", test_prefix_reuse_stories);
  g_test_add_func("/session/template-gemma2", test_template_gemma2);
  g_test_add_func("/session/template-refusals", test_template_refusals);
  g_test_add_func("/session/regenerate-edit", test_regenerate_edit);
  g_test_add_func("/session/utf8-random-model", test_utf8_random_model);
  g_test_add_func("/session/stop-strings", test_stop_strings);
  g_test_add_func("/session/async-cancel", test_async_cancel);
  g_test_add_func("/session/load", test_load);
  g_test_add_func("/session/context-full", test_context_full);
  g_test_add_func("/session/shift-keeps-system", test_shift_keeps_system);
  g_test_add_func("/session/gpu-reuse", test_gpu_reuse);
  return g_test_run();
}
