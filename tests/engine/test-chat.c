/* test-chat.c — chat templates: the 35 shared templates byte-exact, Jinja2 semantics,
 * error positions, the system-folding rule, the fallback formats and the limits that keep
 * hostile templates bounded. */
#include "config.h"

#include <string.h>

#include "chat/chat.h"
#include "chat/jinja.h"
#include "wh-test-util.h"

#define SEP "\n__chat_template_case__\n"

/* The shared .expected files print the date 2026-11-22 (cases.json and the README say
 * 2025-11-22; the reference evidently used its own clock), so the date is injected here. */
#define EXPECTED_NOW "2026-11-22T08:00:00Z"

static char *
read_shared(const char *rel, gsize *len)
{
  g_autofree char *path = wh_test_shared_file_or_skip(rel);
  if (!path)
    return NULL;
  char *text = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_true(g_file_get_contents(path, &text, len, &error));
  g_assert_no_error(error);
  return text;
}

/* One line of @s around byte @off, for a readable failure message. */
static char *
line_at(const char *s, gsize off, int *line_no)
{
  gsize st = off, en = off;
  while (st > 0 && s[st - 1] != '\n')
    st--;
  while (s[en] && s[en] != '\n')
    en++;
  *line_no = 1;
  for (gsize i = 0; i < st; i++)
    if (s[i] == '\n')
      (*line_no)++;
  return g_strndup(s + st, en - st);
}

/* Compares rendered cases with the expected file; on a mismatch describes the first
 * difference (case number, line, both lines). Returns NULL when equal. */
static char *
describe_mismatch(const char *got, const char *want)
{
  if (strcmp(got, want) == 0)
    return NULL;
  gsize off = 0;
  while (got[off] && got[off] == want[off])
    off++;
  int case_no = 1;
  for (const char *p = want; (p = strstr(p, SEP)) && (gsize)(p - want) < off; p += strlen(SEP))
    case_no++;
  int lw, lg;
  g_autofree char *wl = line_at(want, off, &lw);
  g_autofree char *gl = line_at(got, off, &lg);
  return g_strdup_printf("case %d, first difference at byte %" G_GSIZE_FORMAT
                         " (line %d):\n  expected: %s\n  rendered: %s",
                         case_no, off, lw, wl, gl);
}

static void
test_shared_templates(void)
{
  gsize cases_len = 0;
  g_autofree char *cases = read_shared("chat-templates/cases.json", &cases_len);
  if (!cases)
    return;
  g_autofree char *dir = wh_test_shared_path("chat-templates");
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  g_assert_nonnull(d);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  const char *name;
  while ((name = g_dir_read_name(d)))
    if (g_str_has_suffix(name, ".jinja"))
      g_ptr_array_add(names, g_strndup(name, strlen(name) - strlen(".jinja")));
  g_assert_cmpuint(names->len, ==, 35);
  gint64 now = wh_chat_parse_time(EXPECTED_NOW);
  g_assert_cmpint(now, >, 0);
  guint pass = 0;
  for (guint i = 0; i < names->len; i++) {
    const char *model = names->pdata[i];
    g_autofree char *jrel = g_strdup_printf("chat-templates/%s.jinja", model);
    g_autofree char *erel = g_strdup_printf("chat-templates/%s.expected", model);
    g_autofree char *src = read_shared(jrel, NULL);
    g_autofree char *want = read_shared(erel, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(wh_chat_template) t = wh_chat_template_new(src, &error);
    if (!t) {
      g_test_message("%s: does not parse: %s", model, error->message);
      continue;
    }
    g_autofree char *got = wh_chat_template_render_cases(t, cases, (gssize)cases_len, now, &error);
    if (!got) {
      g_test_message("%s: does not render: %s", model, error->message);
      continue;
    }
    g_autofree char *why = describe_mismatch(got, want);
    if (why) {
      g_test_message("%s: output differs from %s.expected: %s", model, model, why);
      continue;
    }
    pass++;
  }
  g_test_message("%u of %u shared templates render byte-exactly", pass, names->len);
  g_assert_cmpuint(pass, ==, names->len);
}

/* Templates whose output was checked against Jinja2 3.1 configured as Hugging Face
 * renders chat templates (trim_blocks, lstrip_blocks, loopcontrols, json.dumps tojson),
 * with the variables of semantics_context below and strftime_now at 2025-11-22. */
static const struct {
  const char *src, *want;
} semantics[] = {
    {"A\n  {% if true %}\n    B\n  {% endif %}\nC", "A\n    B\nC"},
    {"{% for m in messages %}  {{- m.role -}}  {% endfor %}|", "systemuserassistant|"},
    {"{{ 'x' }}  {% if 1 %}y{% endif %}\n z", "x  y z"},
    {"{%- for m in messages if m.role != 'system' %}{{ loop.index }}/{{ loop.length }}:{{ m.c"
     "ontent }}{{ ',' if not loop.last }}{% endfor %}",
     "1/2:Hi,2/2:Yo"},
    {"{% for x in [1,2,3] %}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.previ"
     "tem }}{{ loop.nextitem }};{% endfor %}",
     "03True2;12False13;21False2;"},
    {"{% for x in [] %}a{% else %}empty{% endfor %}", "empty"},
    {"{% set x = 1 %}{% for i in [1,2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}", "231"},
    {"{% set ns = namespace(n=0) %}{% for i in range(5) %}{% set ns.n = ns.n + i %}{% endfor "
     "%}{{ ns.n }}",
     "10"},
    {"{% if true %}{% set y = 5 %}{% endif %}{{ y }}", "5"},
    {"{{ d|tojson }} {{ d|dictsort }} {{ d|items|list }} {{ tools|tojson(indent=2) }}",
     "{\"b\": 2, \"a\": 1, \"C\": 3} [('a', 1), ('b', 2), ('C', 3)] [('b', 2), ('a', 1), ('C'"
     ", 3)] [\n  {\n    \"name\": \"f\",\n    \"args\": {\n      \"x\": 1,\n      \"\303\251\""
     ": [\n        1.5,\n        null,\n        true\n      ]\n    }\n  }\n]"},
    {"{{ tools|tojson(ensure_ascii=True) }}{{ 'a\"b\\n\303\251'|tojson }}",
     "[{\"name\": \"f\", \"args\": {\"x\": 1, \"\\u00e9\": [1.5, null, true]}}]\"a\\\"b\\n\303"
     "\251\""},
    {"{{ d }} {{ [1, 'a', none, true, 1.0, 2.5e-7, 1e22, 0.1] }} {{ none }} {{ 7 / 2 }} {{ 7 "
     "// 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }}",
     "{'b': 2, 'a': 1, 'C': 3} [1, 'a', None, True, 1.0, 2.5e-07, 1e+22, 0.1] None 3.5 3 -4 2"
     " 1024"},
    {"{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(', ') }"
     "}|{{ messages|rejectattr('role', 'in', ['system'])|list|length }}",
     "Hi|2"},
    {"{{ undefined_thing|default('dflt') }}{{ ''|default('e', true) }}{{ none|default('n') }}",
     "dflteNone"},
    {"{{ ['b', 'A', 'a', 'B']|unique|list }}{{ ['b','A','c']|sort }}{{ [3,1,2]|max }}{{ '42'|"
     "int + 1 }}{{ '3.7'|int }}{{ 'x'|int }}",
     "['b', 'A']['A', 'b', 'c']34330"},
    {"{{ '  hi  '|trim }}|{{ 'Hello World'|replace('o', '0') }}|{{ 'ab'|upper }}{{ 'hello wor"
     "ld'|title }}{{ 'hELLO'|capitalize }}",
     "hi|Hell0 W0rld|ABHello WorldHello"},
    {"{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a-b-c'.split('-', 1) }}{{ 'xxhixx'.s"
     "trip('x') }}{{ 'hi'.startswith(('h', 'z')) }}{{ 'abc'.endswith('bc') }}",
     "['a', 'b', '', 'c']['a', 'b']['a', 'b-c']hiTrueTrue"},
    {"{{ 'h\303\251llo'[1:3] }}{{ 'abc'[::-1] }}{{ [1,2,3,4][1:] }}{{ [1,2,3][-1] }}{{ 'abc'["
     "-1] }}{{ [1,2,3,4,5][::2] }}",
     "\303\251lcba[2, 3, 4]3c[1, 3, 5]"},
    {"{{ 'b' in 'abc' }}{{ 2 in [1,2] }}{{ 'a' in d }}{{ 'z' not in d }}", "TrueTrueTrueTrue"},
    {"{{ x is defined }}{{ d is mapping }}{{ 'a' is string }}{{ 1 is number }}{{ [1] is seque"
     "nce }}{{ none is none }}{{ 3 is odd }}{{ 4 is divisibleby 2 }}{{ true is boolean }}{{ d"
     " is iterable }}",
     "FalseTrueTrueTrueTrueTrueTrueTrueTrueTrue"},
    {"{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ gr"
     "eet('Bob') }} {{ greet('Al', greeting='Hi') }}",
     "Hello, Bob! Hi, Al!"},
    {"{% set s %}  block {{ 1 + 1 }}{% endset %}[{{ s }}]", "[  block 2]"},
    {"{{ 'yes' if 0 else 'no' }}{{ 'a' ~ 1 ~ none }}{{ 1 if false }}.", "noa1None."},
    {"{{ '{} and {}'.format('a', 1) }}{{ '{0}{name}'.format('x', name='y') }}", "a and 1xy"},
    {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d.get('a') }}{{ d.get('zz', '"
     "none!') }}{{ d.keys()|list }}",
     "b=2;a=1;C=3;1none!['b', 'a', 'C']"},
    {"{{ messages[0]['content'] }}{{ messages[0].role }}{{ messages|length }}{{ messages|firs"
     "t|tojson }}{{ (messages|last).content }}",
     "Ssystem3{\"role\": \"system\", \"content\": \"S\"}Yo"},
    {"{{ strftime_now('%Y-%m-%d') }} {{ strftime_now('%d %b %Y') }}", "2025-11-22 22 Nov 2025"},
    {"{%- for i in range(3) -%}\n  {%- if i == 1 %}{% continue %}{% endif -%}\n  {{ i }}\n{%-"
     " endfor %}",
     "02"},
    {"{% for i in range(10) %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}", "012"},
    {"{{ 1 == 1.0 }}{{ true == 1 }}{{ 'a' < 'b' }}{{ [1,2] == [1,2] }}{{ 0.1 + 0.2 }}{{ 3 * '"
     "ab' }}{{ [0] * 3 }}",
     "TrueTrueTrueTrue0.30000000000000004ababab[0, 0, 0]"},
    {"{# comment #}\n{% if true %}\nX\n{% endif %}\n{# c2 #}\nY", "X\nY"},
    {"  {%+ if true %}keep{% endif %}", "  keep"},
    {"{{ 'a\nb'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}", "a\n  b|  a\n  b"},
    {"{{ [1,2,3,4,5]|batch(2)|list }}{{ 'a b c'|wordcount }}{{ -3|abs }}{{ 2.567|round(1) }}{"
     "{ [1,2]|reverse|list }}",
     "[[1, 2], [3, 4], [5]]332.6[2, 1]"},
    {"{{ 'abc'|list }}{{ {'x': 1}|list }}{{ 'Hello'|length }}{{ 'Hello'|lower }}{{ 'a<b'|e }}",
     "['a', 'b', 'c']['x']5helloa&lt;b"},
    {"{% set s | trim | upper %}  block {{ 1 + 1 }} {% endset %}[{{ s }}]", "[BLOCK 2]"},
    {"{{ 1 if false else 2 if false else 3 }}{{ 'a' if true else 'b' if true else 'c' }}", "3a"},
    {"{{ '%s=%d' % ('x', 3) }}{{ '%s!' % 'hi' }}{{ [1, 2] < [1, 3] }}{{ (1, 2) }}{{ (1,) }}",
     "x=3hi!True(1, 2)(1,)"},
    {"{{ nothing is iterable }}{{ nothing is sequence }}{{ nothing is mapping }}{{ nothing|le"
     "ngth }}{{ nothing|items|list }}",
     "TrueTrueFalse0[]"},
    {"{{ 'keep' }}\n", "keep"},
    {"{% for x in [1, 2] %}{% set y = (y | default(0)) + x %}{{ y }}{% endfor %}[{{ y }}]", "12[]"},
    {"{% for k, v in d|dictsort %}{{ k }}{{ v }}{% endfor %}{{ d|dictsort(reverse=true)|first"
     " }}",
     "a1b2C3('C', 3)"},
    {"{{ [3, 1, 2]|sort(reverse=true) }}{{ messages|sort(attribute='role')|map(attribute='rol"
     "e')|join(',') }}",
     "[3, 2, 1]assistant,system,user"},
    {"{{ 'Hello'.replace('l', 'L', 1) }}{{ 'a b c'.rsplit(' ', 1) }}{{ 'abc'.find('c') }}{{ '"
     "x'.join(['1', '2']) }}",
     "HeLlo['a b', 'c']21x2"},
    {"{{ messages|selectattr('content')|list|length }}{{ [0, 1, '', 'a', none]|select|list }}"
     "{{ [1, 2, 3, 4]|reject('odd')|list }}",
     "3[1, 'a'][2, 4]"},
};

static const char semantics_context[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", "
    "\"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Yo\"}], \"d\": {\"b\": 2, "
    "\"a\": 1, \"C\": 3}, \"tools\": [{\"name\": \"f\", \"args\": {\"x\": 1, \"\\u00e9\": "
    "[1.5, null, true]}}]}";

static JsonObject *
parse_object(const char *json)
{
  g_autoptr(JsonParser) p = json_parser_new();
  g_autoptr(GError) error = NULL;
  g_assert_true(json_parser_load_from_data(p, json, -1, &error));
  return json_object_ref(json_node_get_object(json_parser_get_root(p)));
}

static char *
render_src(const char *src, JsonObject *ctx, const wh_jinja_limits *lim, GError **error)
{
  wh_jinja_template *t = wh_jinja_parse(src, strlen(src), error);
  if (!t)
    return NULL;
  char *out = wh_jinja_render(t, ctx, wh_chat_parse_time("2025-11-22T08:00:00Z"), lim, error);
  wh_jinja_free(t);
  return out;
}

static void
test_semantics(void)
{
  JsonObject *ctx = parse_object(semantics_context);
  guint bad = 0;
  for (guint i = 0; i < G_N_ELEMENTS(semantics); i++) {
    g_autoptr(GError) error = NULL;
    g_autofree char *out = render_src(semantics[i].src, ctx, NULL, &error);
    if (!out) {
      g_test_message("template %u %s\n  failed: %s", i, semantics[i].src, error->message);
      bad++;
    } else if (strcmp(out, semantics[i].want) != 0) {
      g_test_message("template %u %s\n  expected: [%s]\n  rendered: [%s]", i, semantics[i].src,
                     semantics[i].want, out);
      bad++;
    }
  }
  json_object_unref(ctx);
  g_assert_cmpuint(bad, ==, 0);
}

/* Tool-calling conversations: the outputs below were checked against Jinja2 3.1 configured
 * as Hugging Face renders chat templates (strftime_now at 2025-11-22). They exercise tojson
 * on tool schemas, tool calls with dict and JSON-string arguments, and tool results. */
static const char tool_contexts[] =
    "[{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_generation_prompt\": true, \"ena"
    "ble_thinking\": true, \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get"
    "_weather\", \"description\": \"Get the weather\", \"parameters\": {\"type\": \"object\", "
    "\"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit"
    "\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"]}, \"days\": {\"type\": \"integer\"}, "
    "\"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}}, \"required\": [\"cit"
    "y\"]}}}], \"messages\": [{\"role\": \"system\", \"content\": \"You are helpful.\"}, {\"ro"
    "le\": \"user\", \"content\": \"Weather in Z\303\274rich?\"}, {\"role\": \"assistant\", \""
    "content\": \"\", \"tool_calls\": [{\"id\": \"call12345\", \"type\": \"function\", \"funct"
    "ion\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Z\303\274rich\", \"days\":"
    " 2}}}]}, {\"role\": \"tool\", \"tool_call_id\": \"call12345\", \"name\": \"get_weather\","
    " \"content\": \"{\\\"temp\\\": 3.5}\"}, {\"role\": \"assistant\", \"content\": \"It is 3."
    "5 \302\260C.\"}, {\"role\": \"user\", \"content\": \"Thanks\"}]}, {\"bos_token\": \"<s>\""
    ", \"eos_token\": \"</s>\", \"add_generation_prompt\": true, \"tools\": [{\"type\": \"func"
    "tion\", \"function\": {\"name\": \"search\", \"description\": \"Search\", \"parameters\":"
    " {\"type\": \"object\", \"properties\": {\"q\": {\"type\": \"string\"}}, \"required\": [\""
    "q\"]}}}], \"messages\": [{\"role\": \"user\", \"content\": \"Find cats\"}, {\"role\": \"a"
    "ssistant\", \"content\": null, \"tool_calls\": [{\"id\": \"abcdefghi\", \"type\": \"funct"
    "ion\", \"function\": {\"name\": \"search\", \"arguments\": \"{\\\"q\\\": \\\"cats\\\"}\"}"
    "}]}, {\"role\": \"tool\", \"tool_call_id\": \"abcdefghi\", \"content\": \"many cats\"}]}]";

static const struct {
  const char *model;
  guint context;
  const char *want;
} tool_renders[] = {
    {"Qwen-Qwen2.5-7B-Instruct", 0,
     "<|im_start|>system\n"
     "You are helpful.\n"
     "\n"
     "# Tools\n"
     "\n"
     "You may call one or more functions to assist with the user query.\n"
     "\n"
     "You are provided with function signatures within <tools></tools> XML tags:\n"
     "<tools>\n"
     "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get"
     " the weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type"
     "\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\""
     ": [\"c\", \"f\"]}, \"days\": {\"type\": \"integer\"}, \"tags\": {\"type\": \"array\", \"i"
     "tems\": {\"type\": \"string\"}}}, \"required\": [\"city\"]}}}\n"
     "</tools>\n"
     "\n"
     "For each function call, return a json object with function name and arguments within <too"
     "l_call></tool_call> XML tags:\n"
     "<tool_call>\n"
     "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
     "</tool_call><|im_end|>\n"
     "<|im_start|>user\n"
     "Weather in Z\303\274rich?<|im_end|>\n"
     "<|im_start|>assistant\n"
     "<tool_call>\n"
     "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Z\303\274rich\", \"days\": 2}}\n"
     "</tool_call><|im_end|>\n"
     "<|im_start|>user\n"
     "<tool_response>\n"
     "{\"temp\": 3.5}\n"
     "</tool_response><|im_end|>\n"
     "<|im_start|>assistant\n"
     "It is 3.5 \302\260C.<|im_end|>\n"
     "<|im_start|>user\n"
     "Thanks<|im_end|>\n"
     "<|im_start|>assistant\n"},
    {"Qwen-Qwen2.5-7B-Instruct", 1,
     "<|im_start|>system\n"
     "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n"
     "\n"
     "# Tools\n"
     "\n"
     "You may call one or more functions to assist with the user query.\n"
     "\n"
     "You are provided with function signatures within <tools></tools> XML tags:\n"
     "<tools>\n"
     "{\"type\": \"function\", \"function\": {\"name\": \"search\", \"description\": \"Search\""
     ", \"parameters\": {\"type\": \"object\", \"properties\": {\"q\": {\"type\": \"string\"}},"
     " \"required\": [\"q\"]}}}\n"
     "</tools>\n"
     "\n"
     "For each function call, return a json object with function name and arguments within <too"
     "l_call></tool_call> XML tags:\n"
     "<tool_call>\n"
     "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
     "</tool_call><|im_end|>\n"
     "<|im_start|>user\n"
     "Find cats<|im_end|>\n"
     "<|im_start|>assistant\n"
     "<tool_call>\n"
     "{\"name\": \"search\", \"arguments\": \"{\\\"q\\\": \\\"cats\\\"}\"}\n"
     "</tool_call><|im_end|>\n"
     "<|im_start|>user\n"
     "<tool_response>\n"
     "many cats\n"
     "</tool_response><|im_end|>\n"
     "<|im_start|>assistant\n"},
    {"meta-llama-Llama-3.2-3B-Instruct", 0,
     "<s><|start_header_id|>system<|end_header_id|>\n"
     "\n"
     "Environment: ipython\n"
     "Cutting Knowledge Date: December 2023\n"
     "Today Date: 22 Nov 2025\n"
     "\n"
     "You are helpful.<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
     "\n"
     "Given the following functions, please respond with a JSON for a function call with its pr"
     "oper arguments that best answers the given prompt.\n"
     "\n"
     "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument na"
     "me and its value}.Do not use variables.\n"
     "\n"
     "{\n"
     "    \"type\": \"function\",\n"
     "    \"function\": {\n"
     "        \"name\": \"get_weather\",\n"
     "        \"description\": \"Get the weather\",\n"
     "        \"parameters\": {\n"
     "            \"type\": \"object\",\n"
     "            \"properties\": {\n"
     "                \"city\": {\n"
     "                    \"type\": \"string\",\n"
     "                    \"description\": \"City name\"\n"
     "                },\n"
     "                \"unit\": {\n"
     "                    \"type\": \"string\",\n"
     "                    \"enum\": [\n"
     "                        \"c\",\n"
     "                        \"f\"\n"
     "                    ]\n"
     "                },\n"
     "                \"days\": {\n"
     "                    \"type\": \"integer\"\n"
     "                },\n"
     "                \"tags\": {\n"
     "                    \"type\": \"array\",\n"
     "                    \"items\": {\n"
     "                        \"type\": \"string\"\n"
     "                    }\n"
     "                }\n"
     "            },\n"
     "            \"required\": [\n"
     "                \"city\"\n"
     "            ]\n"
     "        }\n"
     "    }\n"
     "}\n"
     "\n"
     "Weather in Z\303\274rich?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
     "\n"
     "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Z\303\274rich\", \"days\": 2}}<|"
     "eot_id|><|start_header_id|>ipython<|end_header_id|>\n"
     "\n"
     "\"{\\\"temp\\\": 3.5}\"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
     "\n"
     "It is 3.5 \302\260C.<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
     "\n"
     "Thanks<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
     "\n"},
    {"meta-llama-Llama-3.2-3B-Instruct", 1,
     "<s><|start_header_id|>system<|end_header_id|>\n"
     "\n"
     "Environment: ipython\n"
     "Cutting Knowledge Date: December 2023\n"
     "Today Date: 22 Nov 2025\n"
     "\n"
     "<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
     "\n"
     "Given the following functions, please respond with a JSON for a function call with its pr"
     "oper arguments that best answers the given prompt.\n"
     "\n"
     "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument na"
     "me and its value}.Do not use variables.\n"
     "\n"
     "{\n"
     "    \"type\": \"function\",\n"
     "    \"function\": {\n"
     "        \"name\": \"search\",\n"
     "        \"description\": \"Search\",\n"
     "        \"parameters\": {\n"
     "            \"type\": \"object\",\n"
     "            \"properties\": {\n"
     "                \"q\": {\n"
     "                    \"type\": \"string\"\n"
     "                }\n"
     "            },\n"
     "            \"required\": [\n"
     "                \"q\"\n"
     "            ]\n"
     "        }\n"
     "    }\n"
     "}\n"
     "\n"
     "Find cats<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
     "\n"
     "{\"name\": \"search\", \"parameters\": \"{\\\"q\\\": \\\"cats\\\"}\"}<|eot_id|><|start_he"
     "ader_id|>ipython<|end_header_id|>\n"
     "\n"
     "\"many cats\"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
     "\n"},
    {"mistralai-Mistral-Nemo-Instruct-2407", 0,
     "<s>[INST]Weather in Z\303\274rich?[/INST][TOOL_CALLS][{\"name\": \"get_weather\", \"argum"
     "ents\": {\"city\": \"Z\303\274rich\", \"days\": 2}, \"id\": \"call12345\"}]</s>[TOOL_RESU"
     "LTS]{\"content\": {\"temp\": 3.5}, \"call_id\": \"call12345\"}[/TOOL_RESULTS]It is 3.5 \302"
     "\260C.</s>[AVAILABLE_TOOLS][{\"type\": \"function\", \"function\": {\"name\": \"get_weath"
     "er\", \"description\": \"Get the weather\", \"parameters\": {\"type\": \"object\", \"prop"
     "erties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\""
     "type\": \"string\", \"enum\": [\"c\", \"f\"]}, \"days\": {\"type\": \"integer\"}, \"tags\""
     ": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}}, \"required\": [\"city\"]}}}]"
     "[/AVAILABLE_TOOLS][INST]You are helpful.\n"
     "\n"
     "Thanks[/INST]"},
    {"mistralai-Mistral-Nemo-Instruct-2407", 1,
     "<s>[AVAILABLE_TOOLS][{\"type\": \"function\", \"function\": {\"name\": \"search\", \"desc"
     "ription\": \"Search\", \"parameters\": {\"type\": \"object\", \"properties\": {\"q\": {\""
     "type\": \"string\"}}, \"required\": [\"q\"]}}}][/AVAILABLE_TOOLS][INST]Find cats[/INST][T"
     "OOL_CALLS][{\"name\": \"search\", \"arguments\": \"{\\\"q\\\": \\\"cats\\\"}\", \"id\": \""
     "abcdefghi\"}]</s>[TOOL_RESULTS]{\"content\": many cats, \"call_id\": \"abcdefghi\"}[/TOOL"
     "_RESULTS]"},
    {"google-gemma-4-31B-it", 0,
     "<s><|turn>system\n"
     "<|think|>\n"
     "You are helpful.<|tool>declaration:get_weather{description:<|\"|>Get the weather<|\"|>,pa"
     "rameters:{properties:{city:{description:<|\"|>City name<|\"|>,type:<|\"|>STRING<|\"|>},da"
     "ys:{type:<|\"|>INTEGER<|\"|>},tags:{items:{type:<|\"|>STRING<|\"|>},type:<|\"|>ARRAY<|\"|"
     ">},unit:{enum:[<|\"|>c<|\"|>,<|\"|>f<|\"|>],type:<|\"|>STRING<|\"|>}},required:[<|\"|>cit"
     "y<|\"|>],type:<|\"|>OBJECT<|\"|>}}<tool|><turn|>\n"
     "<|turn>user\n"
     "Weather in Z\303\274rich?<turn|>\n"
     "<|turn>model\n"
     "<|tool_call>call:get_weather{city:<|\"|>Z\303\274rich<|\"|>,days:2}<tool_call|><|tool_res"
     "ponse>response:get_weather{value:<|\"|>{\"temp\": 3.5}<|\"|>}<tool_response|>It is 3.5 \302"
     "\260C.<turn|>\n"
     "<|turn>user\n"
     "Thanks<turn|>\n"
     "<|turn>model\n"},
    {"google-gemma-4-31B-it", 1,
     "<s><|turn>system\n"
     "<|tool>declaration:search{description:<|\"|>Search<|\"|>,parameters:{properties:{q:{type:"
     "<|\"|>STRING<|\"|>}},required:[<|\"|>q<|\"|>],type:<|\"|>OBJECT<|\"|>}}<tool|><turn|>\n"
     "<|turn>user\n"
     "Find cats<turn|>\n"
     "<|turn>model\n"
     "<|tool_call>call:search{{\"q\": \"cats\"}}<tool_call|><|tool_response>response:search{val"
     "ue:<|\"|>many cats<|\"|>}<tool_response|>"},
};

static void
test_tool_calls(void)
{
  g_autoptr(JsonParser) jp = json_parser_new();
  g_autoptr(GError) error = NULL;
  g_assert_true(json_parser_load_from_data(jp, tool_contexts, -1, &error));
  JsonArray *contexts = json_node_get_array(json_parser_get_root(jp));
  for (guint i = 0; i < G_N_ELEMENTS(tool_renders); i++) {
    g_autofree char *rel = g_strdup_printf("chat-templates/%s.jinja", tool_renders[i].model);
    g_autofree char *src = read_shared(rel, NULL);
    if (!src)
      return;
    JsonObject *ctx = json_array_get_object_element(contexts, tool_renders[i].context);
    g_autoptr(wh_chat_template) t = wh_chat_template_new(src, &error);
    g_assert_no_error(error);
    wh_chat_render_params p = wh_chat_render_default_params();
    p.bos_token = json_object_get_string_member(ctx, "bos_token");
    p.eos_token = json_object_get_string_member(ctx, "eos_token");
    p.add_generation_prompt = json_object_get_boolean_member(ctx, "add_generation_prompt");
    p.enable_thinking = json_object_get_boolean_member_with_default(ctx, "enable_thinking", FALSE);
    p.now = wh_chat_parse_time("2025-11-22T08:00:00Z");
    g_autofree char *tools = json_to_string(json_object_get_member(ctx, "tools"), FALSE);
    p.tools_json = tools;
    wh_chat_format used = WH_CHAT_FORMAT_CHATML;
    g_autofree char *out = wh_chat_template_render_json(
        t, json_object_get_array_member(ctx, "messages"), &p, &used, &error);
    g_assert_no_error(error);
    g_assert_cmpint(used, ==, WH_CHAT_FORMAT_TEMPLATE);
    g_autofree char *why = describe_mismatch(out, tool_renders[i].want);
    if (why)
      g_error("%s, conversation %u: %s", tool_renders[i].model, tool_renders[i].context, why);
  }
}

static void
test_syntax_errors(void)
{
  static const struct {
    const char *src, *where, *what;
  } cases[] = {
      {"Hello\n{{ name }", "line 2, column 9", "unbalanced"},
      {"{% if x %}\nyes\n", "line 2, column 4", "the 'if' at line 1, column 4 is never closed"},
      {"a\nb\n  {{ 1 + }}", "line 3, column 10", "unexpected '}}'"},
      {"{% frobnicate %}", "line 1, column 4", "frobnicate"},
      {"{{ 'abc }}", "line 1, column 4", "unterminated string"},
      {"x {# never", "line 1, column 3", "unclosed comment"},
      {"{% for x in y %}{% endif %}", "line 1, column 20", "endif"},
      {"{% for x in y %}{{ x }}", "line 1, column 24", "expected '{% endfor %}'"},
      {"{{ a b }}", "line 1, column 6", "expected '}}'"},
      {"ok\n\n   {% set %}", "line 3, column 11", "variable name"},
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(wh_chat_template) t = wh_chat_template_new(cases[i].src, &error);
    g_assert_null(t);
    g_assert_error(error, WH_CHAT_ERROR, WH_CHAT_ERROR_SYNTAX);
    if (!strstr(error->message, cases[i].where) || !strstr(error->message, cases[i].what))
      g_error("template %u: wanted '%s' and '%s' in: %s", i, cases[i].where, cases[i].what,
              error->message);
  }
  /* Not UTF-8. */
  g_autoptr(GError) error = NULL;
  g_assert_null(wh_chat_template_new("ok\n\xff{{ x }}", &error));
  g_assert_error(error, WH_CHAT_ERROR, WH_CHAT_ERROR_SYNTAX);
  g_assert_nonnull(strstr(error->message, "line 2, column 1"));
}

static void
test_runtime_errors(void)
{
  static const struct {
    const char *src;
    int code;
    const char *where, *what;
  } cases[] = {
      {"line1\n{{ raise_exception('nope: ' ~ 42) }}", WH_CHAT_ERROR_RAISED, "line 2, column 4",
       "nope: 42"},
      {"{{ 1 + 'a' }}", WH_CHAT_ERROR_RUNTIME, "line 1, column 6", "int and str"},
      {"\n  {{ x|nosuch }}", WH_CHAT_ERROR_RUNTIME, "line 2, column 8", "unknown filter 'nosuch'"},
      {"{{ 1 // 0 }}", WH_CHAT_ERROR_RUNTIME, "line 1, column 6", "division by zero"},
      {"{% set x = 3 %}{% for i in x %}{% endfor %}", WH_CHAT_ERROR_RUNTIME, "line 1, column 28",
       "not iterable"},
      {"{{ nofunc() }}", WH_CHAT_ERROR_RUNTIME, "line 1, column 4", "'nofunc' is undefined"},
      {"{% set x = 1 %}{% set x.y = 2 %}", WH_CHAT_ERROR_RUNTIME, "line 1, column 19",
       "not a namespace"},
      {"{% for a, b in [[1, 2, 3]] %}{% endfor %}", WH_CHAT_ERROR_RUNTIME, "line 1, column 4",
       "cannot unpack 3 values into 2 names"},
  };
  JsonObject *ctx = parse_object("{}");
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    g_autofree char *out = render_src(cases[i].src, ctx, NULL, &error);
    g_assert_null(out);
    g_assert_error(error, WH_CHAT_ERROR, cases[i].code);
    if (!strstr(error->message, cases[i].where) || !strstr(error->message, cases[i].what))
      g_error("template %u: wanted '%s' and '%s' in: %s", i, cases[i].where, cases[i].what,
              error->message);
  }
  json_object_unref(ctx);
}

static const wh_chat_message conversation[] = {
    {"system", "You are terse."},
    {"user", "Hi"},
    {"assistant", "Hello."},
    {"user", "Bye"},
};

static void
test_system_folding(void)
{
  g_autofree char *src = read_shared("chat-templates/google-gemma-2-2b-it.jinja", NULL);
  if (!src)
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(wh_chat_template) t = wh_chat_template_new(src, &error);
  g_assert_no_error(error);
  wh_chat_render_params p = wh_chat_render_default_params();
  p.bos_token = "<s>";
  /* Without the system message it renders as is. */
  g_autofree char *plain = wh_chat_template_render(t, conversation + 1, 3, &p, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(plain, ==,
                  "<s><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello."
                  "<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
  /* The template raises on a system message: its text joins the first user message. */
  g_autofree char *folded = wh_chat_template_render(t, conversation, 4, &p, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(folded, ==,
                  "<s><start_of_turn>user\nYou are terse.\nHi<end_of_turn>\n<start_of_turn>model\n"
                  "Hello.<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n"
                  "<start_of_turn>model\n");
  wh_chat_format used = WH_CHAT_FORMAT_CHATML;
  g_autofree char *via = wh_chat_render_with_fallback(src, conversation, 4, &p, &used, NULL);
  g_assert_cmpint(used, ==, WH_CHAT_FORMAT_TEMPLATE_FOLDED);
  g_assert_cmpstr(via, ==, folded);
  /* A system message alone becomes the user message. */
  g_autofree char *alone = wh_chat_template_render(t, conversation, 1, &p, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(alone, ==,
                  "<s><start_of_turn>user\nYou are terse.<end_of_turn>\n<start_of_turn>model\n");
  /* A template that accepts system messages is used as is. */
  g_autofree char *qsrc = read_shared("chat-templates/Qwen-Qwen2.5-7B-Instruct.jinja", NULL);
  g_autofree char *q = wh_chat_render_with_fallback(qsrc, conversation, 2, &p, &used, NULL);
  g_assert_cmpint(used, ==, WH_CHAT_FORMAT_TEMPLATE);
  g_assert_cmpstr(q, ==,
                  "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                  "<|im_start|>assistant\n");
  /* A template that raises for another reason still fails, with the template's message. */
  g_autoptr(wh_chat_template) bad = wh_chat_template_new(
      "{% if messages|length > 1 %}{{ raise_exception('one message only') }}{% endif %}x", &error);
  g_assert_no_error(error);
  g_autofree char *none = wh_chat_template_render(bad, conversation + 1, 3, &p, &error);
  g_assert_null(none);
  g_assert_error(error, WH_CHAT_ERROR, WH_CHAT_ERROR_RAISED);
  g_assert_nonnull(strstr(error->message, "one message only"));
}

static void
test_fallback(void)
{
  wh_chat_render_params p = wh_chat_render_default_params();
  wh_chat_format used = WH_CHAT_FORMAT_TEMPLATE;
  g_autofree char *why = NULL;
  g_autofree char *chatml = wh_chat_render_with_fallback(NULL, conversation, 2, &p, &used, &why);
  g_assert_cmpint(used, ==, WH_CHAT_FORMAT_CHATML);
  g_assert_nonnull(why);
  g_assert_cmpstr(chatml, ==,
                  "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                  "<|im_start|>assistant\n");
  g_clear_pointer(&why, g_free);
  p.fallback = WH_CHAT_FORMAT_PLAIN;
  p.add_generation_prompt = TRUE;
  g_autofree char *plain = wh_chat_render_with_fallback("{% for m in messages %}{{ m.content }",
                                                        conversation, 4, &p, &used, &why);
  g_assert_cmpint(used, ==, WH_CHAT_FORMAT_PLAIN);
  g_assert_cmpstr(plain, ==,
                  "System: You are terse.\n\nUser: Hi\n\nAssistant: Hello.\n\nUser: Bye\n\n"
                  "Assistant:");
  g_assert_nonnull(why);
  g_assert_nonnull(strstr(why, "line 1, column"));
  g_clear_pointer(&why, g_free);
  /* A template that fails at render time falls back too. */
  g_autofree char *rt = wh_chat_render_with_fallback("{{ messages[0].content + 1 }}",
                                                     conversation + 1, 1, &p, &used, &why);
  g_assert_cmpint(used, ==, WH_CHAT_FORMAT_PLAIN);
  g_assert_cmpstr(rt, ==, "User: Hi\n\nAssistant:");
  g_assert_nonnull(why);
  g_clear_pointer(&why, g_free);
  /* A working template: no reason given. */
  g_autofree char *ok = wh_chat_render_with_fallback(
      "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}", conversation, 2, &p,
      &used, &why);
  g_assert_cmpint(used, ==, WH_CHAT_FORMAT_TEMPLATE);
  g_assert_null(why);
  g_assert_cmpstr(ok, ==, "[system]You are terse.[user]Hi");
}

static void
test_now_and_params(void)
{
  wh_chat_render_params p = wh_chat_render_default_params();
  p.now = wh_chat_parse_time("2024-02-29T23:59:59Z");
  p.eos_token = "</s>";
  p.tools_json = "[{\"name\": \"clock\"}]";
  p.extra_context_json = "{\"who\": \"Ada\", \"enable_thinking\": false}";
  g_autoptr(GError) error = NULL;
  g_autoptr(wh_chat_template) t = wh_chat_template_new(
      "{{ strftime_now('%d %b %Y %H:%M') }}|{{ tools|map(attribute='name')|join }}|{{ who }}|"
      "{{ enable_thinking }}|{{ add_generation_prompt }}|{{ eos_token }}",
      &error);
  g_assert_no_error(error);
  g_autofree char *out = wh_chat_template_render(t, conversation, 1, &p, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(out, ==, "29 Feb 2024 23:59|clock|Ada|False|True|</s>");
  /* add_generation_prompt false is left undefined, as the reference renderer does. */
  p.add_generation_prompt = FALSE;
  g_autoptr(wh_chat_template) t2 =
      wh_chat_template_new("{{ add_generation_prompt is defined }}", &error);
  g_autofree char *out2 = wh_chat_template_render(t2, conversation, 1, &p, &error);
  g_assert_cmpstr(out2, ==, "False");
  /* The date reaches real templates. */
  g_autofree char *src = read_shared("chat-templates/meta-llama-Llama-3.2-3B-Instruct.jinja", NULL);
  if (!src)
    return;
  g_autoptr(wh_chat_template) llama = wh_chat_template_new(src, &error);
  g_assert_no_error(error);
  p = wh_chat_render_default_params();
  p.now = wh_chat_parse_time("2025-11-22T08:00:00Z");
  g_autofree char *l = wh_chat_template_render(llama, conversation + 1, 1, &p, &error);
  g_assert_no_error(error);
  g_assert_nonnull(strstr(l, "Today Date: 22 Nov 2025\n"));
  /* Bad JSON parameters are input errors. */
  p.tools_json = "[oops";
  g_autofree char *bad = wh_chat_template_render(llama, conversation + 1, 1, &p, &error);
  g_assert_null(bad);
  g_assert_error(error, WH_CHAT_ERROR, WH_CHAT_ERROR_INPUT);
}

static void
test_cases_driver(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(wh_chat_template) t = wh_chat_template_new(
      "{{ bos_token }}{% for m in messages %}{{ m.role[0] }}:{{ m.content }};{% endfor %}"
      "{% if add_generation_prompt %}>{% endif %}",
      &error);
  g_assert_no_error(error);
  const char *doc =
      "{\"separator\": \"|SEP|\", \"bos_token\": \"B\", \"cases\": ["
      "{\"add_generation_prompt\": true, \"messages\": [{\"role\": \"user\", \"content\": \"a\"}]},"
      "{\"add_generation_prompt\": false, \"messages\": [{\"role\": \"user\", \"content\": \"b\"},"
      " {\"role\": \"assistant\", \"content\": \"c\"}]}]}";
  g_autofree char *out = wh_chat_template_render_cases(t, doc, -1, -1, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(out, ==, "Bu:a;>|SEP|Bu:b;a:c;|SEP|");
  g_autofree char *bad = wh_chat_template_render_cases(t, "{\"cases\": 3}", -1, -1, &error);
  g_assert_null(bad);
  g_assert_error(error, WH_CHAT_ERROR, WH_CHAT_ERROR_INPUT);
}

static void
test_limits(void)
{
  static const struct {
    const char *src;
    int code; /* -1: must render */
  } cases[] = {
      {"{% for i in range(1000000000) %}x{% endfor %}", WH_CHAT_ERROR_LIMIT},
      {"{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
       WH_CHAT_ERROR_LIMIT},
      {"{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", WH_CHAT_ERROR_LIMIT},
      {"{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
       "{% endfor %}",
       WH_CHAT_ERROR_LIMIT},
      {"{{ 'x' * 100000000 }}", WH_CHAT_ERROR_LIMIT},
      {"{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
       "{% endfor %}{{ ns.l|tojson }}",
       WH_CHAT_ERROR_LIMIT},
      {"{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
       "{% endfor %}{{ ns.l }}",
       WH_CHAT_ERROR_LIMIT},
      {"{% set ns = namespace(l=1) %}{% for i in range(20000) %}{% set ns.l = [ns.l] %}"
       "{% endfor %}{{ ns.l|length }}",
       -1},
      {"{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me.me is defined }}", -1},
      {"{% set l = [] %}{{ l.append(l) }}{{ l|length }}", -1},
  };
  JsonObject *ctx = parse_object("{}");
  wh_jinja_limits lim = {.max_depth = 32, .max_steps = 100000, .max_output = 1 << 20};
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    gint64 t0 = g_get_monotonic_time();
    g_autofree char *out = render_src(cases[i].src, ctx, &lim, &error);
    gint64 ms = (g_get_monotonic_time() - t0) / 1000;
    if (cases[i].code < 0) {
      g_assert_no_error(error);
      g_assert_nonnull(out);
    } else {
      g_assert_null(out);
      g_assert_error(error, WH_CHAT_ERROR, cases[i].code);
      g_assert_nonnull(strstr(error->message, "line 1, column"));
    }
    g_test_message("limit case %u: %" G_GINT64_FORMAT " ms", i, ms);
  }
  json_object_unref(ctx);
  /* Nesting that would exhaust the stack is refused at parse time. */
  static const char *const pieces[][5] = {
      /* prefix, repeated, middle, repeated after, suffix */
      {"{{ ", "(", "1", ")", " }}"},    {"{{ ", "[", "1", "]", " }}"},
      {"{{ 1", " + 1", "", "", " }}"},  {"{{ x", ".a", "", "", " }}"},
      {"{{ x", "|trim", "", "", " }}"}, {"{{ ", "not ", "1", "", " }}"},
      {"{{ ", "- ", "1", "", " }}"},    {"", "{% if 1 %}", "", "{% endif %}", ""},
      {"{{ 1", " if 1", "", "", " }}"}, {"{{ f", "()", "", "", " }}"},
      {"{{ x", "[0]", "", "", " }}"},   {"", "{% for x in y %}", "", "{% endfor %}", ""},
  };
  for (guint i = 0; i < G_N_ELEMENTS(pieces); i++) {
    GString *g = g_string_new(pieces[i][0]);
    for (int k = 0; k < 50000; k++)
      g_string_append(g, pieces[i][1]);
    g_string_append(g, pieces[i][2]);
    for (int k = 0; k < 50000; k++)
      g_string_append(g, pieces[i][3]);
    g_string_append(g, pieces[i][4]);
    g_autoptr(GError) error = NULL;
    g_autoptr(wh_chat_template) t = wh_chat_template_new(g->str, &error);
    g_assert_null(t);
    g_assert_error(error, WH_CHAT_ERROR, WH_CHAT_ERROR_SYNTAX);
    if (!strstr(error->message, "too deeply"))
      g_error("nesting case %u: %s", i, error->message);
    g_string_free(g, TRUE);
  }
}

typedef struct {
  wh_chat_template *t;
  const char *cases;
  const char *want;
  gboolean ok;
} thread_job;

static gpointer
render_in_thread(gpointer data)
{
  thread_job *j = data;
  j->ok = TRUE;
  for (int i = 0; i < 20 && j->ok; i++) {
    g_autoptr(GError) error = NULL;
    g_autofree char *out =
        wh_chat_template_render_cases(j->t, j->cases, -1, wh_chat_parse_time(EXPECTED_NOW), &error);
    j->ok = out && strcmp(out, j->want) == 0;
  }
  return NULL;
}

/* One parsed template rendered from several threads at once gives the same text. */
static void
test_threads(void)
{
  g_autofree char *cases = read_shared("chat-templates/cases.json", NULL);
  g_autofree char *src = read_shared("chat-templates/google-gemma-4-31B-it.jinja", NULL);
  g_autofree char *want = read_shared("chat-templates/google-gemma-4-31B-it.expected", NULL);
  if (!cases || !src || !want)
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(wh_chat_template) t = wh_chat_template_new(src, &error);
  g_assert_no_error(error);
  thread_job jobs[4];
  GThread *threads[4];
  for (int i = 0; i < 4; i++) {
    jobs[i] = (thread_job){.t = t, .cases = cases, .want = want};
    threads[i] = g_thread_new("render", render_in_thread, &jobs[i]);
  }
  for (int i = 0; i < 4; i++) {
    g_thread_join(threads[i]);
    g_assert_true(jobs[i].ok);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/chat/shared-templates", test_shared_templates);
  g_test_add_func("/chat/jinja-semantics", test_semantics);
  g_test_add_func("/chat/tool-calls", test_tool_calls);
  g_test_add_func("/chat/syntax-errors", test_syntax_errors);
  g_test_add_func("/chat/runtime-errors", test_runtime_errors);
  g_test_add_func("/chat/system-folding", test_system_folding);
  g_test_add_func("/chat/fallback", test_fallback);
  g_test_add_func("/chat/now-and-params", test_now_and_params);
  g_test_add_func("/chat/cases-driver", test_cases_driver);
  g_test_add_func("/chat/limits", test_limits);
  g_test_add_func("/chat/threads", test_threads);
  return g_test_run();
}
