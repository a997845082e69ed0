/* chat.c — the public chat-template API: variables as HF passes them, the system-folding
 * rule, the cases.json driver and the built-in fallback formats. The interpreter itself is
 * jinja.c. */
#include "config.h"

#include "chat/chat.h"
#include "chat/jinja.h"

#include <string.h>

G_DEFINE_QUARK(wh - chat - error - quark, wh_chat_error)

struct wh_chat_template {
  wh_jinja_template *jinja;
};

wh_chat_render_params
wh_chat_render_default_params(void)
{
  wh_chat_render_params p = {
      .add_generation_prompt = TRUE,
      .enable_thinking = TRUE,
      .bos_token = "",
      .eos_token = "",
      .now = -1,
      .fallback = WH_CHAT_FORMAT_CHATML,
  };
  return p;
}

wh_chat_template *
wh_chat_template_new(const char *source, GError **error)
{
  g_return_val_if_fail(source != NULL, NULL);
  wh_jinja_template *j = wh_jinja_parse(source, strlen(source), error);
  if (!j)
    return NULL;
  wh_chat_template *t = g_new0(wh_chat_template, 1);
  t->jinja = j;
  return t;
}

void
wh_chat_template_free(wh_chat_template *tmpl)
{
  if (!tmpl)
    return;
  wh_jinja_free(tmpl->jinja);
  g_free(tmpl);
}

gint64
wh_chat_parse_time(const char *iso8601)
{
  if (!iso8601)
    return -1;
  GDateTime *dt = g_date_time_new_from_iso8601(iso8601, NULL);
  if (!dt) {
    GTimeZone *utc = g_time_zone_new_utc();
    dt = g_date_time_new_from_iso8601(iso8601, utc); /* no zone given: UTC */
    g_time_zone_unref(utc);
  }
  if (!dt)
    return -1;
  gint64 t = g_date_time_to_unix(dt);
  g_date_time_unref(dt);
  return t;
}

static JsonNode *
parse_json(const char *text, const char *what, GError **error)
{
  JsonParser *p = json_parser_new();
  GError *e = NULL;
  JsonNode *root = NULL;
  if (json_parser_load_from_data(p, text, -1, &e))
    root = json_node_copy(json_parser_get_root(p));
  else
    g_set_error(error, WH_CHAT_ERROR, WH_CHAT_ERROR_INPUT, "%s is not valid JSON: %s", what,
                e->message);
  g_clear_error(&e);
  g_object_unref(p);
  return root;
}

/* The variables a template sees, as transformers' apply_chat_template passes them. */
static JsonObject *
make_context(JsonArray *messages, const wh_chat_render_params *p, GError **error)
{
  JsonObject *o = json_object_new();
  if (p->extra_context_json) {
    JsonNode *extra = parse_json(p->extra_context_json, "the extra context", error);
    if (!extra) {
      json_object_unref(o);
      return NULL;
    }
    if (!JSON_NODE_HOLDS_OBJECT(extra)) {
      json_node_unref(extra);
      json_object_unref(o);
      g_set_error(error, WH_CHAT_ERROR, WH_CHAT_ERROR_INPUT,
                  "the extra context must be a JSON object");
      return NULL;
    }
    JsonObject *eo = json_node_get_object(extra);
    GList *members = json_object_get_members(eo);
    for (GList *m = members; m; m = m->next)
      json_object_set_member(o, m->data, json_node_copy(json_object_get_member(eo, m->data)));
    g_list_free(members);
    json_node_unref(extra);
  }
  if (p->tools_json) {
    JsonNode *tools = parse_json(p->tools_json, "the tools list", error);
    if (!tools) {
      json_object_unref(o);
      return NULL;
    }
    json_object_set_member(o, "tools", tools);
  }
  json_object_set_array_member(o, "messages", json_array_ref(messages));
  /* The reference renderer of the shared expected files leaves add_generation_prompt
   * undefined when it is false; templates that default it with `is defined` (rwkv-world
   * defaults it to true) depend on that. */
  if (p->add_generation_prompt)
    json_object_set_boolean_member(o, "add_generation_prompt", TRUE);
  if (!json_object_has_member(o, "enable_thinking"))
    json_object_set_boolean_member(o, "enable_thinking", p->enable_thinking);
  json_object_set_string_member(o, "bos_token", p->bos_token ? p->bos_token : "");
  json_object_set_string_member(o, "eos_token", p->eos_token ? p->eos_token : "");
  return o;
}

static char *
render_once(wh_chat_template *tmpl, JsonArray *messages, const wh_chat_render_params *p,
            GError **error)
{
  JsonObject *ctx = make_context(messages, p, error);
  if (!ctx)
    return NULL;
  gint64 now = p->now >= 0 ? p->now : g_get_real_time() / G_USEC_PER_SEC;
  char *out = wh_jinja_render(tmpl->jinja, ctx, now, NULL, error);
  json_object_unref(ctx);
  return out;
}

static const char *
msg_string(JsonObject *m, const char *key)
{
  JsonNode *n = json_object_get_member(m, key);
  if (n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
    return json_node_get_string(n);
  return NULL;
}

/* The conversation with a leading system message folded into the first user message
 * ("SYSTEM\nUSER"); NULL when there is no leading system message with text content. */
static JsonArray *
fold_system(JsonArray *messages)
{
  guint n = json_array_get_length(messages);
  if (n == 0)
    return NULL;
  JsonNode *first = json_array_get_element(messages, 0);
  if (!JSON_NODE_HOLDS_OBJECT(first))
    return NULL;
  JsonObject *sys = json_node_get_object(first);
  const char *role = msg_string(sys, "role"), *text = msg_string(sys, "content");
  if (!role || strcmp(role, "system") != 0 || !text)
    return NULL;
  JsonArray *out = json_array_new();
  gboolean folded = FALSE;
  for (guint i = 1; i < n; i++) {
    JsonNode *el = json_array_get_element(messages, i);
    JsonObject *m = JSON_NODE_HOLDS_OBJECT(el) ? json_node_get_object(el) : NULL;
    const char *r = m ? msg_string(m, "role") : NULL;
    const char *c = m ? msg_string(m, "content") : NULL;
    if (!folded && r && c && strcmp(r, "user") == 0) {
      JsonNode *copy = json_node_copy(el);
      char *joined = g_strconcat(text, "\n", c, NULL);
      json_object_set_string_member(json_node_get_object(copy), "content", joined);
      g_free(joined);
      json_array_add_element(out, copy);
      folded = TRUE;
      continue;
    }
    json_array_add_element(out, json_node_copy(el));
  }
  if (!folded) { /* no user message: the system text becomes one */
    JsonObject *u = json_object_new();
    json_object_set_string_member(u, "role", "user");
    json_object_set_string_member(u, "content", text);
    JsonArray *with = json_array_new();
    json_array_add_object_element(with, u);
    for (guint i = 0; i < json_array_get_length(out); i++)
      json_array_add_element(with, json_node_copy(json_array_get_element(out, i)));
    json_array_unref(out);
    out = with;
  }
  return out;
}

char *
wh_chat_template_render_json(wh_chat_template *tmpl, JsonArray *messages,
                             const wh_chat_render_params *p, wh_chat_format *used, GError **error)
{
  g_return_val_if_fail(tmpl && messages, NULL);
  wh_chat_render_params dp = wh_chat_render_default_params();
  if (!p)
    p = &dp;
  GError *e = NULL;
  char *out = render_once(tmpl, messages, p, &e);
  if (out) {
    if (used)
      *used = WH_CHAT_FORMAT_TEMPLATE;
    return out;
  }
  /* A template that rejects the system role (raises, or trips over it) gets the system
   * text folded into the first user message. Limit errors are not retried. */
  JsonArray *folded = NULL;
  if (g_error_matches(e, WH_CHAT_ERROR, WH_CHAT_ERROR_RAISED) ||
      g_error_matches(e, WH_CHAT_ERROR, WH_CHAT_ERROR_RUNTIME))
    folded = fold_system(messages);
  if (!folded) {
    g_propagate_error(error, e);
    return NULL;
  }
  GError *e2 = NULL;
  out = render_once(tmpl, folded, p, &e2);
  json_array_unref(folded);
  if (!out) { /* report the original complaint: it is the one about the real input */
    g_error_free(e2);
    g_propagate_error(error, e);
    return NULL;
  }
  g_error_free(e);
  if (used)
    *used = WH_CHAT_FORMAT_TEMPLATE_FOLDED;
  return out;
}

static JsonArray *
messages_to_json(const wh_chat_message *msgs, gsize n)
{
  JsonArray *a = json_array_new();
  for (gsize i = 0; i < n; i++) {
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "role", msgs[i].role ? msgs[i].role : "user");
    json_object_set_string_member(o, "content", msgs[i].content ? msgs[i].content : "");
    json_array_add_object_element(a, o);
  }
  return a;
}

char *
wh_chat_template_render(wh_chat_template *tmpl, const wh_chat_message *msgs, gsize n,
                        const wh_chat_render_params *p, GError **error)
{
  g_return_val_if_fail(tmpl && (msgs || n == 0), NULL);
  JsonArray *a = messages_to_json(msgs, n);
  char *out = wh_chat_template_render_json(tmpl, a, p, NULL, error);
  json_array_unref(a);
  return out;
}

char *
wh_chat_template_render_cases(wh_chat_template *tmpl, const char *cases_json, gssize len,
                              gint64 now_override, GError **error)
{
  g_return_val_if_fail(tmpl && cases_json, NULL);
  JsonParser *jp = json_parser_new();
  GError *e = NULL;
  if (!json_parser_load_from_data(jp, cases_json, len, &e)) {
    g_set_error(error, WH_CHAT_ERROR, WH_CHAT_ERROR_INPUT, "cases file is not valid JSON: %s",
                e->message);
    g_error_free(e);
    g_object_unref(jp);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(jp);
  JsonObject *doc = root && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
  JsonNode *cases_n = doc ? json_object_get_member(doc, "cases") : NULL;
  if (!cases_n || !JSON_NODE_HOLDS_ARRAY(cases_n)) {
    g_set_error(error, WH_CHAT_ERROR, WH_CHAT_ERROR_INPUT,
                "cases file: expected an object with a \"cases\" array");
    g_object_unref(jp);
    return NULL;
  }
  wh_chat_render_params p = wh_chat_render_default_params();
  const char *sep = msg_string(doc, "separator");
  if (!sep)
    sep = "\n__chat_template_case__\n";
  p.bos_token = msg_string(doc, "bos_token") ? msg_string(doc, "bos_token") : "";
  p.eos_token = msg_string(doc, "eos_token") ? msg_string(doc, "eos_token") : "";
  p.now = now_override >= 0 ? now_override : wh_chat_parse_time(msg_string(doc, "now"));
  JsonArray *cases = json_node_get_array(cases_n);
  GString *out = g_string_new(NULL);
  for (guint i = 0; i < json_array_get_length(cases); i++) {
    JsonNode *cn = json_array_get_element(cases, i);
    JsonObject *co = JSON_NODE_HOLDS_OBJECT(cn) ? json_node_get_object(cn) : NULL;
    JsonNode *mn = co ? json_object_get_member(co, "messages") : NULL;
    if (!mn || !JSON_NODE_HOLDS_ARRAY(mn)) {
      g_set_error(error, WH_CHAT_ERROR, WH_CHAT_ERROR_INPUT,
                  "cases file: case %u has no \"messages\" array", i + 1);
      g_string_free(out, TRUE);
      g_object_unref(jp);
      return NULL;
    }
    p.add_generation_prompt =
        json_object_get_boolean_member_with_default(co, "add_generation_prompt", TRUE);
    GError *ce = NULL;
    char *r = wh_chat_template_render_json(tmpl, json_node_get_array(mn), &p, NULL, &ce);
    if (!r) {
      g_set_error(error, ce->domain, ce->code, "case %u: %s", i + 1, ce->message);
      g_error_free(ce);
      g_string_free(out, TRUE);
      g_object_unref(jp);
      return NULL;
    }
    g_string_append(out, r);
    g_string_append(out, sep);
    g_free(r);
  }
  g_object_unref(jp);
  return g_string_free(out, FALSE);
}

char *
wh_chat_render_builtin(wh_chat_format format, const wh_chat_message *msgs, gsize n,
                       gboolean add_generation_prompt)
{
  GString *g = g_string_new(NULL);
  for (gsize i = 0; i < n; i++) {
    const char *role = msgs[i].role ? msgs[i].role : "user";
    const char *text = msgs[i].content ? msgs[i].content : "";
    if (format == WH_CHAT_FORMAT_PLAIN) {
      const char *label = !strcmp(role, "system")      ? "System"
                          : !strcmp(role, "assistant") ? "Assistant"
                          : !strcmp(role, "tool")      ? "Tool"
                                                       : "User";
      g_string_append_printf(g, "%s: %s\n\n", label, text);
    } else {
      g_string_append_printf(g, "<|im_start|>%s\n%s<|im_end|>\n", role, text);
    }
  }
  if (add_generation_prompt)
    g_string_append(g, format == WH_CHAT_FORMAT_PLAIN ? "Assistant:" : "<|im_start|>assistant\n");
  return g_string_free(g, FALSE);
}

char *
wh_chat_render_with_fallback(const char *template_source, const wh_chat_message *msgs, gsize n,
                             const wh_chat_render_params *p, wh_chat_format *used, char **why)
{
  wh_chat_render_params dp = wh_chat_render_default_params();
  if (!p)
    p = &dp;
  wh_chat_format fb =
      p->fallback == WH_CHAT_FORMAT_PLAIN ? WH_CHAT_FORMAT_PLAIN : WH_CHAT_FORMAT_CHATML;
  if (why)
    *why = NULL;
  if (!template_source || !*template_source) {
    if (why)
      *why = g_strdup("the model has no chat template");
  } else {
    GError *e = NULL;
    wh_chat_template *t = wh_chat_template_new(template_source, &e);
    if (t) {
      JsonArray *a = messages_to_json(msgs, n);
      wh_chat_format f = WH_CHAT_FORMAT_TEMPLATE;
      char *out = wh_chat_template_render_json(t, a, p, &f, &e);
      json_array_unref(a);
      wh_chat_template_free(t);
      if (out) {
        if (used)
          *used = f;
        return out;
      }
    }
    if (why)
      *why = g_strdup_printf("the model's chat template cannot be used (%s)", e->message);
    g_error_free(e);
  }
  if (used)
    *used = fb;
  return wh_chat_render_builtin(fb, msgs, n, p->add_generation_prompt);
}
