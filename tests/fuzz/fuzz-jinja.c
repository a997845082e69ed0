/* fuzz-jinja.c — the chat-template interpreter on arbitrary template text.
 *
 * Each input is a template: it is parsed and, when it parses, rendered with tight limits
 * against a conversation that exercises the tool-calling paths too (tools, tool_calls,
 * tool results, a system message). Whatever the input, this must not crash, hang, leak or
 * grow without bound. Seeds: the 35 shared templates plus hand-made hostile cases.
 */
#include "config.h"

#include <string.h>

#include "chat/chat.h"
#include "chat/jinja.h"
#include "fuzz-main.h"
#include "wh-test-util.h"

static const char context_json[] =
    "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_generation_prompt\": true,"
    " \"enable_thinking\": true,"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\","
    "   \"description\": \"Weather for a city\", \"parameters\": {\"type\": \"object\","
    "   \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City\"},"
    "   \"days\": {\"type\": \"integer\", \"enum\": [1, 2, 3]}}, \"required\": [\"city\"]}}}],"
    " \"messages\": ["
    "  {\"role\": \"system\", \"content\": \"Be brief.\"},"
    "  {\"role\": \"user\", \"content\": \"Weather in Zürich? <think>x</think>\"},"
    "  {\"role\": \"assistant\", \"content\": \"\", \"reasoning_content\": \"hm\","
    "   \"tool_calls\": [{\"id\": \"call00001\", \"type\": \"function\", \"function\":"
    "   {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\", \"days\": 2}}}]},"
    "  {\"role\": \"tool\", \"tool_call_id\": \"call00001\", \"name\": \"get_weather\","
    "   \"content\": \"{\\\"temp\\\": 3.5}\"},"
    "  {\"role\": \"assistant\", \"content\": \"3.5 °C\"},"
    "  {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"thanks\"}]}]}";

static JsonObject *
fuzz_context(void)
{
  static JsonObject *ctx;
  if (!ctx) {
    JsonParser *p = json_parser_new();
    if (!json_parser_load_from_data(p, context_json, -1, NULL))
      g_error("fuzz-jinja: bad built-in context");
    ctx = json_object_ref(json_node_get_object(json_parser_get_root(p)));
    g_object_unref(p);
  }
  return ctx;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  GError *error = NULL;
  wh_jinja_template *t = wh_jinja_parse((const char *)data, size, &error);
  if (!t) {
    g_assert(error && error->domain == WH_CHAT_ERROR);
    g_assert(strstr(error->message, "line ") != NULL);
    g_error_free(error);
    return 0;
  }
  wh_jinja_limits lim = {.max_depth = 16, .max_steps = 20000, .max_output = 256 * 1024};
  char *out = wh_jinja_render(t, fuzz_context(), 1763798400, &lim, &error);
  if (out) {
    g_assert(strlen(out) <= lim.max_output);
    g_free(out);
  } else {
    g_assert(error && error->domain == WH_CHAT_ERROR);
    g_error_free(error);
  }
  wh_jinja_free(t);
  return 0;
}

static const char *const hand_made[] = {
    "{% for i in range(1000000000) %}x{% endfor %}",
    "{% for a in range(1000) %}{% for b in range(1000) %}{{ a * b }}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s|length }}",
    "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me }}",
    "{% set l = [] %}{{ l.append(l) }}{{ l }}{{ l|tojson }}{{ l == l }}",
    "{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = [ns.l, ns.l] %}"
    "{% endfor %}{{ ns.l }}{{ ns.l|tojson }}{{ ns.l == [ns.l] }}",
    "{% set ns = namespace(l=1) %}{% for i in range(20000) %}{% set ns.l = [ns.l] %}"
    "{% endfor %}{{ ns.l|length }}",
    "{{ 'x' * 100000000 }}{{ [1] * 3 }}",
    "{{ ((((((((((((((((((((((((((((((1)))))))))))))))))))))))))))))) }}",
    "{{ '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
    "]]]]]]]]]]]'|from_json }}",
    "{{ messages[::-1]|map(attribute='role')|join(', ') }}{{ tools|tojson(indent=2) }}"
    "{% for m in messages if m.role != 'system' %}{{ loop.index }}/{{ loop.length }}"
    "{{ loop.previtem.role }}{% endfor %}{{ raise_exception('boom') }}",
    "{%- set x = 'a b  c'.split() -%}{{ x|unique|list|length }}{{ '{}-{}'.format(1, 'z') }}"
    "{{ -9223372036854775807 - 1 }}{{ (-9223372036854775807 - 1) // -1 }}{{ 7 % -1 }}",
    "{% for a, b in [[1], 'xyz', {'k': 1}, [1, 2]] %}{{ a }}{% endfor %}",
    "{% if %}",
    "{{",
    "{% for %}{% endfor",
    "{# never closed",
    "{{ 'unterminated }}",
    "{% set a %}{% for x in 'abc' %}{{ x|upper }}{% else %}e{% endfor %}{% endset %}{{ a }}",
    "{{ strftime_now('%Y-%m-%d %b %A %j %%') }}{{ 1.5e300 * 1e300 }}{{ 1/3 }}{{ 10 ** 30 }}",
};

static int
cmp_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

void
wh_fuzz_collect_seeds(GPtrArray *seeds)
{
  g_autofree char *dir = wh_test_shared_path("chat-templates");
  GDir *d = g_dir_open(dir, 0, NULL);
  if (d) {
    const char *name;
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    while ((name = g_dir_read_name(d)))
      if (g_str_has_suffix(name, ".jinja"))
        g_ptr_array_add(names, g_strdup(name));
    g_dir_close(d);
    g_ptr_array_sort(names, cmp_names);
    for (guint i = 0; i < names->len; i++) {
      g_autofree char *path = g_build_filename(dir, names->pdata[i], NULL);
      char *text;
      gsize len;
      if (g_file_get_contents(path, &text, &len, NULL))
        g_ptr_array_add(seeds, g_bytes_new_take(text, len));
    }
    g_ptr_array_unref(names);
  }
  for (guint i = 0; i < G_N_ELEMENTS(hand_made); i++)
    g_ptr_array_add(seeds, g_bytes_new_static(hand_made[i], strlen(hand_made[i])));
}
