/* jinja.h — the Jinja2 interpreter behind chat templates (internal to engine/chat).
 *
 * Owns: lexing (with HF's trim_blocks + lstrip_blocks configuration), parsing to an
 * AST, evaluating with a small refcounted value type. Promises: never crashes, hangs or
 * grows without bound on any input (parser nesting, macro recursion, loop iterations,
 * string and output sizes are all capped); every error names line and column. Does not:
 * autoescape, sandbox attribute access to host objects (there are none), or load other
 * templates (include/import/extends are syntax errors).
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct wh_jinja_template wh_jinja_template;

/* Limits that keep hostile templates bounded. */
typedef struct {
  guint max_depth;   /* macro recursion depth (default 64) */
  guint64 max_steps; /* loop iterations + calls (default 1,000,000) */
  gsize max_output;  /* bytes of output and of any one string (default 16 MiB) */
} wh_jinja_limits;

/* Parses @source. On a syntax error returns NULL with @error naming line and column
 * (domain WH_CHAT_ERROR, code WH_CHAT_ERROR_SYNTAX). */
wh_jinja_template *wh_jinja_parse(const char *source, gsize len, GError **error);
void wh_jinja_free(wh_jinja_template *t);

/* Renders with the variables of @context (a JSON object; may be NULL). @now_utc is the
 * time strftime_now() formats (seconds since the epoch, UTC). @limits may be NULL.
 * Returns a newly allocated string, or NULL with @error (WH_CHAT_ERROR_RAISED for
 * raise_exception(), WH_CHAT_ERROR_RUNTIME otherwise; both name line and column). */
char *wh_jinja_render(wh_jinja_template *t, JsonObject *context, gint64 now_utc,
                      const wh_jinja_limits *limits, GError **error);

G_END_DECLS
