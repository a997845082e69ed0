/* chat.h — chat templates: turn a conversation into the prompt text a model expects.
 *
 * Design note. Owns: a Jinja2 interpreter (the subset real Hugging Face chat templates
 * use, configured as HF renders them: trim_blocks and lstrip_blocks on, no autoescape,
 * tojson with insertion key order and ensure_ascii=False), the rule that folds a system
 * message into the first user message when a template rejects the system role, and a
 * built-in fallback format so chat works when a model has no usable template.
 * Promises: byte-exact output for the templates in ../shared/chat-templates; errors that
 * name line and column; bounded time and memory on hostile templates. Does not: tokenize,
 * or know where a template came from (the caller reads tokenizer.chat_template).
 * Thread-safety: a wh_chat_template is immutable after creation; render it from any
 * number of threads at once.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define WH_CHAT_ERROR (wh_chat_error_quark())
GQuark wh_chat_error_quark(void);

typedef enum {
  WH_CHAT_ERROR_SYNTAX,  /* the template does not parse (message names line:column) */
  WH_CHAT_ERROR_RAISED,  /* the template called raise_exception() */
  WH_CHAT_ERROR_RUNTIME, /* type error, unknown filter, ... at line:column */
  WH_CHAT_ERROR_LIMIT,   /* recursion, iteration or output limit hit */
  WH_CHAT_ERROR_INPUT,   /* malformed conversation / JSON input */
} wh_chat_error_code;

typedef struct wh_chat_template wh_chat_template;

typedef struct {
  const char *role;    /* "system", "user", "assistant", "tool" */
  const char *content; /* UTF-8 */
} wh_chat_message;

/* Which format produced a prompt. */
typedef enum {
  WH_CHAT_FORMAT_TEMPLATE,        /* the model's template, as is */
  WH_CHAT_FORMAT_TEMPLATE_FOLDED, /* the template, with the system text folded into the
                                     first user message because it rejected the system role */
  WH_CHAT_FORMAT_CHATML,          /* built-in <|im_start|>role ... <|im_end|> */
  WH_CHAT_FORMAT_PLAIN,           /* built-in "System:/User:/Assistant:" lines */
} wh_chat_format;

typedef struct {
  gboolean add_generation_prompt; /* default TRUE; when FALSE the variable is left undefined,
                                     as the reference renderer does */
  const char *bos_token;          /* default "" */
  const char *eos_token;          /* default "" */
  const char *tools_json;         /* JSON array passed as `tools`, or NULL (undefined) */
  const char *extra_context_json; /* JSON object whose members become variables, or NULL */
  gboolean enable_thinking;       /* passed as `enable_thinking` (default TRUE, as the
                                     reference renderer of the shared expected files does) */
  gint64 now;                     /* strftime_now() time, Unix seconds UTC; < 0 = now */
  wh_chat_format fallback;        /* used by wh_chat_render_with_fallback(): CHATML (default)
                                     or PLAIN */
} wh_chat_render_params;

wh_chat_render_params wh_chat_render_default_params(void);

/* Parses @source (a Jinja chat template). Returns NULL with WH_CHAT_ERROR_SYNTAX naming
 * "line L, column C" on a syntax error. Free with wh_chat_template_free(). */
wh_chat_template *wh_chat_template_new(const char *source, GError **error);
void wh_chat_template_free(wh_chat_template *tmpl);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(wh_chat_template, wh_chat_template_free)

/* Renders @n messages. If the template raises an exception and the conversation has a
 * leading system message, renders again with the system text folded into the first user
 * message ("SYSTEM\nUSER") and reports WH_CHAT_FORMAT_TEMPLATE_FOLDED in @used (may be
 * NULL). Returns a newly allocated string or NULL with @error. */
char *wh_chat_template_render(wh_chat_template *tmpl, const wh_chat_message *msgs, gsize n,
                              const wh_chat_render_params *p, GError **error);

/* Same, with messages as a JSON array of objects (any extra fields such as tool_calls are
 * passed through to the template). @used may be NULL. */
char *wh_chat_template_render_json(wh_chat_template *tmpl, JsonArray *messages,
                                   const wh_chat_render_params *p, wh_chat_format *used,
                                   GError **error);

/* Renders every case of a cases.json document ({"bos_token", "eos_token", "now",
 * "separator", "cases": [{"add_generation_prompt", "messages"}]}) and returns them each
 * followed by the separator — exactly the layout of the shared .expected files.
 * @now_override >= 0 replaces the document's "now". */
char *wh_chat_template_render_cases(wh_chat_template *tmpl, const char *cases_json, gssize len,
                                    gint64 now_override, GError **error);

/* The built-in formats on their own (never fail). @format is CHATML or PLAIN. */
char *wh_chat_render_builtin(wh_chat_format format, const wh_chat_message *msgs, gsize n,
                             gboolean add_generation_prompt);

/* What chat uses: the model's template when it parses and renders (folding the system
 * message if needed), else the fallback format of @p. @template_source may be NULL (no
 * template). Never returns NULL. @used receives the format, @why (may be NULL) a newly
 * allocated reason when a fallback was used (NULL otherwise). */
char *wh_chat_render_with_fallback(const char *template_source, const wh_chat_message *msgs,
                                   gsize n, const wh_chat_render_params *p, wh_chat_format *used,
                                   char **why);

/* Parses "2025-11-22T08:00:00Z" (ISO 8601) into Unix seconds; -1 when invalid. */
gint64 wh_chat_parse_time(const char *iso8601);

G_END_DECLS
