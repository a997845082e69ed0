/* jinja.c — a Jinja2 interpreter for chat templates.
 *
 * Three stages: a lexer that applies whitespace control at the source level (the `-`
 * markers, trim_blocks, lstrip_blocks) and yields text + tag tokens; a recursive-descent
 * parser to an AST of `node`s; an evaluator over refcounted `val`s with Python/Jinja2
 * semantics (truthiness, str()/repr() of values, json.dumps for tojson, Python string
 * methods). Every node remembers its line and column for error messages.
 *
 * Memory: values are refcounted. Cycles can only appear through mutation (namespace
 * attribute set, list.append) or macro closures; mutated containers are recorded in the
 * render context and emptied at the end of the render, and scopes captured by a macro live
 * until the render ends, so every render frees everything it allocated.
 *
 * Bounds: parser nesting depth, macro recursion depth, a step budget (loop iterations,
 * calls and bytes of string work) and a size cap on any string and on the output.
 */
#include "config.h"

#include "chat/jinja.h"
#include "chat/chat.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PARSE_MAX_DEPTH 200
#define EVAL_MAX_DEPTH 4000 /* eval + exec frames, across macro calls */

/* ------------------------------------------------------------------------------------ */
/* Values                                                                               */

typedef enum {
  V_UNDEF,
  V_NONE,
  V_BOOL,
  V_INT,
  V_FLOAT,
  V_STR,
  V_LIST,
  V_DICT,
  V_NS,
  V_MACRO,
  V_FUNC,
} vtype;

typedef struct val val;
typedef struct scope scope;
typedef struct node node;

struct val {
  vtype t;
  int refs; /* < 0: immortal singleton */
  gboolean in_arena;
  gboolean tuple; /* V_LIST made as a Python tuple (items() pairs, `(a, b)`): repr only */
  val *next_free; /* link in the queue of containers being freed */
  union {
    gboolean b;
    gint64 i;
    double f;
    struct {
      char *s;
      gsize n;
    } s;
    GPtrArray *list; /* val*, owned */
    struct {
      GPtrArray *keys; /* val*, owned */
      GPtrArray *vals; /* val*, owned */
    } d;               /* V_DICT and V_NS */
    struct {
      node *def;
      scope *closure;
    } m;
    struct {
      const char *name;
      val *self; /* bound object, or NULL for a global function */
    } fn;
  };
};

static val v_undef_s = {.t = V_UNDEF, .refs = -1};
static val v_none_s = {.t = V_NONE, .refs = -1};
static val v_true_s = {.t = V_BOOL, .refs = -1, .b = TRUE};
static val v_false_s = {.t = V_BOOL, .refs = -1, .b = FALSE};
#define V_UNDEFINED (&v_undef_s)
#define V_NONEV (&v_none_s)

static val *
val_ref(val *v)
{
  if (v && v->refs >= 0)
    v->refs++;
  return v;
}

/* Containers are freed iteratively (a queue, not recursion), so a list nested a million
 * levels deep by a loop cannot overflow the stack when it goes. */
static _Thread_local val *free_queue;
static _Thread_local gboolean freeing;

static void val_free(val *v);

static void
val_unref(val *v)
{
  if (!v || v->refs < 0)
    return;
  if (--v->refs > 0)
    return;
  gboolean container = v->t == V_LIST || v->t == V_DICT || v->t == V_NS || v->t == V_FUNC;
  if (!container) {
    val_free(v);
    return;
  }
  v->next_free = free_queue; /* an intrusive stack of containers waiting to go */
  free_queue = v;
  if (freeing) /* inside an outer free: that loop picks it up */
    return;
  freeing = TRUE;
  while (free_queue) {
    val *x = free_queue;
    free_queue = x->next_free;
    val_free(x);
  }
  freeing = FALSE;
}

static void
val_free(val *v)
{
  switch (v->t) {
  case V_STR:
    g_free(v->s.s);
    break;
  case V_LIST:
    g_ptr_array_unref(v->list);
    break;
  case V_DICT:
  case V_NS:
    g_ptr_array_unref(v->d.keys);
    g_ptr_array_unref(v->d.vals);
    break;
  case V_FUNC:
    val_unref(v->fn.self);
    break;
  default:
    break;
  }
  g_free(v);
}

static val *
val_new(vtype t)
{
  val *v = g_new0(val, 1);
  v->t = t;
  v->refs = 1;
  return v;
}

static val *
v_bool(gboolean b)
{
  return b ? &v_true_s : &v_false_s;
}

/* Small integers are immortal and shared (loop counters, range()). */
#define SMALL_INT_MAX 1024
static val small_ints[SMALL_INT_MAX + 1];
static gsize small_ints_ready;

static val *
v_int(gint64 i)
{
  if (i >= 0 && i <= SMALL_INT_MAX) {
    if (g_once_init_enter(&small_ints_ready)) {
      for (int k = 0; k <= SMALL_INT_MAX; k++) {
        small_ints[k].t = V_INT;
        small_ints[k].refs = -1;
        small_ints[k].i = k;
      }
      g_once_init_leave(&small_ints_ready, 1);
    }
    return &small_ints[i];
  }
  val *v = val_new(V_INT);
  v->i = i;
  return v;
}

static val *
v_float(double f)
{
  val *v = val_new(V_FLOAT);
  v->f = f;
  return v;
}

/* Takes ownership of @s (NUL-terminated, @n bytes). */
static val *
v_str_take(char *s, gsize n)
{
  val *v = val_new(V_STR);
  v->s.s = s;
  v->s.n = n;
  return v;
}

static val *
v_str_len(const char *s, gsize n)
{
  return v_str_take(g_strndup(s, n), n);
}

static val *
v_str(const char *s)
{
  return v_str_len(s, strlen(s));
}

static val *
v_gstring(GString *g)
{
  gsize n = g->len;
  return v_str_take(g_string_free(g, FALSE), n);
}

static val *
v_list_new(void)
{
  val *v = val_new(V_LIST);
  v->list = g_ptr_array_new_with_free_func((GDestroyNotify)val_unref);
  return v;
}

static val *
v_dict_new(vtype t)
{
  val *v = val_new(t);
  v->d.keys = g_ptr_array_new_with_free_func((GDestroyNotify)val_unref);
  v->d.vals = g_ptr_array_new_with_free_func((GDestroyNotify)val_unref);
  return v;
}

static gboolean
is_num(const val *v)
{
  return v->t == V_INT || v->t == V_FLOAT || v->t == V_BOOL;
}

static double
num_f(const val *v)
{
  return v->t == V_FLOAT ? v->f : v->t == V_INT ? (double)v->i : (double)v->b;
}

static gint64
num_i(const val *v)
{
  return v->t == V_INT ? v->i : v->t == V_BOOL ? v->b : (gint64)v->f;
}

static gboolean val_eq(const val *a, const val *b);

/* Index of key @k in dict @d, or -1. Keys compare with Python equality. */
static int
dict_find(const val *d, const val *k)
{
  for (guint i = 0; i < d->d.keys->len; i++)
    if (val_eq(g_ptr_array_index(d->d.keys, i), k))
      return (int)i;
  return -1;
}

static int
dict_find_str(const val *d, const char *k)
{
  gsize n = strlen(k);
  for (guint i = 0; i < d->d.keys->len; i++) {
    const val *key = g_ptr_array_index(d->d.keys, i);
    if (key->t == V_STR && key->s.n == n && memcmp(key->s.s, k, n) == 0)
      return (int)i;
  }
  return -1;
}

/* Sets @k to @v (both taken). */
static void
dict_set(val *d, val *k, val *v)
{
  int i = dict_find(d, k);
  if (i >= 0) {
    val_unref(k);
    val_unref(g_ptr_array_index(d->d.vals, i));
    g_ptr_array_index(d->d.vals, i) = v;
    return;
  }
  g_ptr_array_add(d->d.keys, k);
  g_ptr_array_add(d->d.vals, v);
}

static val *
dict_get_str(const val *d, const char *k)
{
  int i = dict_find_str(d, k);
  return i >= 0 ? g_ptr_array_index(d->d.vals, i) : NULL;
}

/* Python equality. @budget bounds the nodes visited (values shared many times over can make
 * a structure exponentially large); an exhausted budget or excessive depth compares unequal. */
static gboolean
val_eq_r(const val *a, const val *b, gint64 *budget, int depth)
{
  if (a == b)
    return TRUE;
  if (--*budget < 0 || depth > 100)
    return FALSE;
  if (is_num(a) && is_num(b)) {
    if (a->t != V_FLOAT && b->t != V_FLOAT)
      return num_i(a) == num_i(b);
    return num_f(a) == num_f(b);
  }
  if (a->t != b->t)
    return FALSE;
  switch (a->t) {
  case V_UNDEF:
  case V_NONE:
    return TRUE;
  case V_STR:
    return a->s.n == b->s.n && memcmp(a->s.s, b->s.s, a->s.n) == 0;
  case V_LIST:
    if (a->list->len != b->list->len)
      return FALSE;
    for (guint i = 0; i < a->list->len; i++)
      if (!val_eq_r(g_ptr_array_index(a->list, i), g_ptr_array_index(b->list, i), budget,
                    depth + 1))
        return FALSE;
    return TRUE;
  case V_DICT:
    if (a->d.keys->len != b->d.keys->len)
      return FALSE;
    for (guint i = 0; i < a->d.keys->len; i++) {
      int j = dict_find(b, g_ptr_array_index(a->d.keys, i));
      if (j < 0 || !val_eq_r(g_ptr_array_index(a->d.vals, i), g_ptr_array_index(b->d.vals, j),
                             budget, depth + 1))
        return FALSE;
    }
    return TRUE;
  default:
    return FALSE;
  }
}

static gboolean
val_eq(const val *a, const val *b)
{
  gint64 budget = 1000000;
  return val_eq_r(a, b, &budget, 0);
}

static gboolean
val_truthy(const val *v)
{
  switch (v->t) {
  case V_UNDEF:
  case V_NONE:
    return FALSE;
  case V_BOOL:
    return v->b;
  case V_INT:
    return v->i != 0;
  case V_FLOAT:
    return v->f != 0.0;
  case V_STR:
    return v->s.n > 0;
  case V_LIST:
    return v->list->len > 0;
  case V_DICT:
    return v->d.keys->len > 0;
  default:
    return TRUE;
  }
}

static const char *
type_name(const val *v)
{
  static const char *const names[] = {"undefined", "NoneType", "bool",    "int",
                                      "float",     "str",      "list",    "dict",
                                      "namespace", "macro",    "function"};
  return names[v->t];
}

/* Python repr() of a float. */
static void
append_float(GString *out, double f, gboolean json)
{
  if (isnan(f)) {
    g_string_append(out, json ? "NaN" : "nan");
    return;
  }
  if (isinf(f)) {
    g_string_append(out, f < 0 ? "-" : "");
    g_string_append(out, json ? "Infinity" : "inf");
    return;
  }
  char buf[64];
  int prec = 1;
  for (; prec <= 17; prec++) {
    g_snprintf(buf, sizeof buf, "%.*e", prec - 1, f);
    if (g_ascii_strtod(buf, NULL) == f)
      break;
  }
  /* buf = [-]d.ddde[+-]XX: split into digits and exponent. */
  char digits[32];
  int nd = 0, exp10 = 0;
  gboolean neg = buf[0] == '-';
  const char *p = buf + (neg ? 1 : 0);
  for (; *p && *p != 'e'; p++)
    if (g_ascii_isdigit(*p) && nd < 30)
      digits[nd++] = *p;
  if (*p == 'e')
    exp10 = atoi(p + 1);
  while (nd > 1 && digits[nd - 1] == '0')
    nd--;
  digits[nd] = 0;
  if (neg)
    g_string_append_c(out, '-');
  if (exp10 >= -4 && exp10 < 16) {
    if (exp10 < 0) {
      g_string_append(out, "0.");
      for (int i = 0; i < -exp10 - 1; i++)
        g_string_append_c(out, '0');
      g_string_append(out, digits);
    } else {
      for (int i = 0; i <= exp10; i++)
        g_string_append_c(out, i < nd ? digits[i] : '0');
      g_string_append_c(out, '.');
      if (nd > exp10 + 1)
        g_string_append(out, digits + exp10 + 1);
      else
        g_string_append_c(out, '0');
    }
  } else {
    g_string_append_c(out, digits[0]);
    if (nd > 1) {
      g_string_append_c(out, '.');
      g_string_append(out, digits + 1);
    }
    g_string_append_printf(out, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
  }
}

/* str()/repr()/json output of containers stops descending once the buffer passes this many
 * bytes (set per render from the output limit); the caller's size check then fails. */
static _Thread_local gsize str_cap = (gsize)64 << 20;

static void val_repr_d(GString *out, const val *v, int depth);
static void val_str_d(GString *out, const val *v, int depth);
#define val_str(out, v) val_str_d(out, v, 0)
#define val_repr(out, v) val_repr_d(out, v, 0)

/* Python str(). */
static void
val_str_d(GString *out, const val *v, int depth)
{
  if ((v->t == V_LIST || v->t == V_DICT || v->t == V_NS) && (depth > 64 || out->len > str_cap)) {
    g_string_append(out, "[...]");
    return;
  }
  switch (v->t) {
  case V_UNDEF:
    break;
  case V_NONE:
    g_string_append(out, "None");
    break;
  case V_BOOL:
    g_string_append(out, v->b ? "True" : "False");
    break;
  case V_INT:
    g_string_append_printf(out, "%" G_GINT64_FORMAT, v->i);
    break;
  case V_FLOAT:
    append_float(out, v->f, FALSE);
    break;
  case V_STR:
    g_string_append_len(out, v->s.s, v->s.n);
    break;
  case V_LIST:
    g_string_append_c(out, v->tuple ? '(' : '[');
    for (guint i = 0; i < v->list->len; i++) {
      if (i)
        g_string_append(out, ", ");
      val_repr_d(out, g_ptr_array_index(v->list, i), depth + 1);
    }
    if (v->tuple && v->list->len == 1)
      g_string_append_c(out, ',');
    g_string_append_c(out, v->tuple ? ')' : ']');
    break;
  case V_DICT:
  case V_NS:
    g_string_append(out, v->t == V_NS ? "<Namespace {" : "{");
    for (guint i = 0; i < v->d.keys->len; i++) {
      if (i)
        g_string_append(out, ", ");
      val_repr_d(out, g_ptr_array_index(v->d.keys, i), depth + 1);
      g_string_append(out, ": ");
      val_repr_d(out, g_ptr_array_index(v->d.vals, i), depth + 1);
    }
    g_string_append(out, v->t == V_NS ? "}>" : "}");
    break;
  case V_MACRO:
    g_string_append(out, "<Macro>");
    break;
  case V_FUNC:
    g_string_append_printf(out, "<function %s>", v->fn.name);
    break;
  }
}

/* Python repr(). */
static void
val_repr_d(GString *out, const val *v, int depth)
{
  if (v->t == V_UNDEF) {
    g_string_append(out, "Undefined");
    return;
  }
  if (v->t != V_STR) {
    val_str_d(out, v, depth);
    return;
  }
  gboolean has_sq = memchr(v->s.s, '\'', v->s.n) != NULL;
  gboolean has_dq = memchr(v->s.s, '"', v->s.n) != NULL;
  char q = has_sq && !has_dq ? '"' : '\'';
  g_string_append_c(out, q);
  for (gsize i = 0; i < v->s.n; i++) {
    unsigned char c = (unsigned char)v->s.s[i];
    if (c == '\\')
      g_string_append(out, "\\\\");
    else if (c == (unsigned char)q)
      g_string_append_printf(out, "\\%c", q);
    else if (c == '\n')
      g_string_append(out, "\\n");
    else if (c == '\r')
      g_string_append(out, "\\r");
    else if (c == '\t')
      g_string_append(out, "\\t");
    else if (c < 0x20 || c == 0x7f)
      g_string_append_printf(out, "\\x%02x", c);
    else
      g_string_append_c(out, (char)c);
  }
  g_string_append_c(out, q);
}

/* json.dumps string escaping. */
static void
json_escape(GString *out, const char *s, gsize n, gboolean ascii)
{
  g_string_append_c(out, '"');
  const char *end = s + n;
  while (s < end) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x80) {
      switch (c) {
      case '"':
        g_string_append(out, "\\\"");
        break;
      case '\\':
        g_string_append(out, "\\\\");
        break;
      case '\n':
        g_string_append(out, "\\n");
        break;
      case '\r':
        g_string_append(out, "\\r");
        break;
      case '\t':
        g_string_append(out, "\\t");
        break;
      case '\b':
        g_string_append(out, "\\b");
        break;
      case '\f':
        g_string_append(out, "\\f");
        break;
      default:
        if (c < 0x20 || (ascii && c == 0x7f))
          g_string_append_printf(out, "\\u%04x", c);
        else
          g_string_append_c(out, (char)c);
      }
      s++;
      continue;
    }
    const char *next = g_utf8_next_char(s);
    if (ascii) {
      gunichar u = g_utf8_get_char(s);
      if (u >= 0x10000) {
        u -= 0x10000;
        g_string_append_printf(out, "\\u%04x\\u%04x", 0xd800 + (u >> 10), 0xdc00 + (u & 0x3ff));
      } else {
        g_string_append_printf(out, "\\u%04x", u);
      }
    } else {
      g_string_append_len(out, s, next - s);
    }
    s = next;
  }
  g_string_append_c(out, '"');
}

typedef struct {
  int indent; /* < 0: none */
  gboolean ascii;
  gboolean sort_keys;
  const char *item_sep;
  const char *key_sep;
} json_opts;

static void
json_newline(GString *out, const json_opts *o, int level)
{
  g_string_append_c(out, '\n');
  for (int i = 0; i < o->indent * level; i++)
    g_string_append_c(out, ' ');
}

static int
key_cmp(gconstpointer a, gconstpointer b, gpointer user_data)
{
  const val *d = user_data;
  const val *ka = g_ptr_array_index(d->d.keys, *(const guint *)a);
  const val *kb = g_ptr_array_index(d->d.keys, *(const guint *)b);
  if (ka->t == V_STR && kb->t == V_STR) {
    int c = memcmp(ka->s.s, kb->s.s, MIN(ka->s.n, kb->s.n));
    return c ? c : (ka->s.n > kb->s.n) - (ka->s.n < kb->s.n);
  }
  return 0;
}

/* json.dumps(v, ensure_ascii, indent, separators, sort_keys). Depth is bounded by the caller
 * (values cannot nest deeper than the containers the render built). */
static gboolean
val_json(GString *out, const val *v, const json_opts *o, int level)
{
  if (level > 200 || out->len > str_cap)
    return FALSE;
  switch (v->t) {
  case V_UNDEF:
  case V_NONE:
    g_string_append(out, "null");
    return TRUE;
  case V_BOOL:
    g_string_append(out, v->b ? "true" : "false");
    return TRUE;
  case V_INT:
    g_string_append_printf(out, "%" G_GINT64_FORMAT, v->i);
    return TRUE;
  case V_FLOAT:
    append_float(out, v->f, TRUE);
    return TRUE;
  case V_STR:
    json_escape(out, v->s.s, v->s.n, o->ascii);
    return TRUE;
  case V_LIST:
    g_string_append_c(out, '[');
    if (v->list->len == 0) {
      g_string_append_c(out, ']');
      return TRUE;
    }
    for (guint i = 0; i < v->list->len; i++) {
      if (i)
        g_string_append(out, o->item_sep);
      if (o->indent >= 0)
        json_newline(out, o, level + 1);
      if (!val_json(out, g_ptr_array_index(v->list, i), o, level + 1))
        return FALSE;
    }
    if (o->indent >= 0)
      json_newline(out, o, level);
    g_string_append_c(out, ']');
    return TRUE;
  case V_DICT:
  case V_NS: {
    g_string_append_c(out, '{');
    guint n = v->d.keys->len;
    if (n == 0) {
      g_string_append_c(out, '}');
      return TRUE;
    }
    guint *order = g_new(guint, n);
    for (guint i = 0; i < n; i++)
      order[i] = i;
    if (o->sort_keys)
      g_qsort_with_data(order, n, sizeof(guint), key_cmp, (gpointer)v);
    for (guint j = 0; j < n; j++) {
      guint i = order[j];
      if (j)
        g_string_append(out, o->item_sep);
      if (o->indent >= 0)
        json_newline(out, o, level + 1);
      const val *k = g_ptr_array_index(v->d.keys, i);
      if (k->t == V_STR) {
        json_escape(out, k->s.s, k->s.n, o->ascii);
      } else {
        GString *tmp = g_string_new(NULL);
        if (k->t == V_NONE)
          g_string_append(tmp, "null");
        else if (k->t == V_BOOL)
          g_string_append(tmp, k->b ? "true" : "false");
        else
          val_str(tmp, k);
        json_escape(out, tmp->str, tmp->len, o->ascii);
        g_string_free(tmp, TRUE);
      }
      g_string_append(out, o->key_sep);
      if (!val_json(out, g_ptr_array_index(v->d.vals, i), o, level + 1)) {
        g_free(order);
        return FALSE;
      }
    }
    g_free(order);
    if (o->indent >= 0)
      json_newline(out, o, level);
    g_string_append_c(out, '}');
    return TRUE;
  }
  default:
    g_string_append(out, "null");
    return TRUE;
  }
}

static val *
val_from_json(JsonNode *n, int depth)
{
  if (!n || depth > 200)
    return V_NONEV;
  switch (json_node_get_node_type(n)) {
  case JSON_NODE_NULL:
    return V_NONEV;
  case JSON_NODE_VALUE: {
    GType t = json_node_get_value_type(n);
    if (t == G_TYPE_BOOLEAN)
      return v_bool(json_node_get_boolean(n));
    if (t == G_TYPE_INT64 || t == G_TYPE_INT)
      return v_int(json_node_get_int(n));
    if (t == G_TYPE_DOUBLE || t == G_TYPE_FLOAT)
      return v_float(json_node_get_double(n));
    if (t == G_TYPE_STRING)
      return v_str(json_node_get_string(n));
    return V_NONEV;
  }
  case JSON_NODE_ARRAY: {
    val *l = v_list_new();
    JsonArray *a = json_node_get_array(n);
    for (guint i = 0; i < json_array_get_length(a); i++)
      g_ptr_array_add(l->list, val_from_json(json_array_get_element(a, i), depth + 1));
    return l;
  }
  case JSON_NODE_OBJECT: {
    val *d = v_dict_new(V_DICT);
    JsonObject *o = json_node_get_object(n);
    GList *members = json_object_get_members(o); /* insertion order */
    for (GList *m = members; m; m = m->next) {   /* JSON object members are unique */
      g_ptr_array_add(d->d.keys, v_str(m->data));
      g_ptr_array_add(d->d.vals, val_from_json(json_object_get_member(o, m->data), depth + 1));
    }
    g_list_free(members);
    return d;
  }
  }
  return V_NONEV;
}

/* ------------------------------------------------------------------------------------ */
/* Lexer                                                                                */

typedef enum {
  T_TEXT,
  T_VBEGIN,
  T_VEND,
  T_BBEGIN,
  T_BEND,
  T_NAME,
  T_STR,
  T_INT,
  T_FLOAT,
  T_OP,
  T_EOF,
} ttype;

typedef struct {
  ttype t;
  int line, col;
  char *s; /* TEXT, NAME, STR, OP */
  gsize n;
  gint64 i;
  double f;
} tok;

typedef struct {
  const char *src;
  gsize len;
  GArray *line_starts; /* gsize */
  GArray *toks;        /* tok */
  GError **error;
} lexer;

static void
pos_linecol(GArray *line_starts, gsize off, int *line, int *col)
{
  guint lo = 0, hi = line_starts->len;
  while (hi - lo > 1) {
    guint mid = (lo + hi) / 2;
    if (g_array_index(line_starts, gsize, mid) <= off)
      lo = mid;
    else
      hi = mid;
  }
  *line = (int)lo + 1;
  *col = (int)(off - g_array_index(line_starts, gsize, lo)) + 1;
}

static void
lex_push(lexer *lx, ttype t, gsize off, const char *s, gsize n)
{
  tok tk = {.t = t};
  pos_linecol(lx->line_starts, off, &tk.line, &tk.col);
  if (s) {
    tk.s = g_strndup(s, n);
    tk.n = n;
  }
  g_array_append_val(lx->toks, tk);
}

static gboolean
lex_fail(lexer *lx, gsize off, const char *msg)
{
  int line, col;
  pos_linecol(lx->line_starts, off, &line, &col);
  g_set_error(lx->error, WH_CHAT_ERROR, WH_CHAT_ERROR_SYNTAX,
              "template syntax error at line %d, column %d: %s", line, col, msg);
  return FALSE;
}

static gboolean
is_ws(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Lexes one tag's inside from @pos; returns the offset after the closing delimiter, or 0 on
 * error. @block: `%}` closes, else `}}`. Sets *@strip_after when the tag ends with `-`. */
static gsize
lex_tag(lexer *lx, gsize pos, gboolean block, gboolean *strip_after, gboolean *plus_after)
{
  const char *s = lx->src;
  gsize n = lx->len;
  int depth = 0;
  char closer = block ? '%' : '}';
  *strip_after = FALSE;
  *plus_after = FALSE;
  for (;;) {
    while (pos < n && is_ws(s[pos]))
      pos++;
    if (pos >= n)
      return lex_fail(lx, pos,
                      block ? "unclosed tag: expected '%}'" : "unclosed '{{': expected '}}'"),
             0;
    if (depth == 0) {
      if ((s[pos] == '-' || s[pos] == '+') && pos + 2 < n && s[pos + 1] == closer &&
          s[pos + 2] == '}') {
        *strip_after = s[pos] == '-';
        *plus_after = s[pos] == '+';
        lex_push(lx, block ? T_BEND : T_VEND, pos, NULL, 0);
        return pos + 3;
      }
      if (s[pos] == closer && pos + 1 < n && s[pos + 1] == '}') {
        lex_push(lx, block ? T_BEND : T_VEND, pos, NULL, 0);
        return pos + 2;
      }
    }
    char c = s[pos];
    if (g_ascii_isalpha(c) || c == '_') {
      gsize st = pos;
      while (pos < n && (g_ascii_isalnum(s[pos]) || s[pos] == '_'))
        pos++;
      lex_push(lx, T_NAME, st, s + st, pos - st);
      continue;
    }
    if (g_ascii_isdigit(c)) {
      gsize st = pos;
      gboolean is_float = FALSE;
      while (pos < n && (g_ascii_isdigit(s[pos]) || s[pos] == '_'))
        pos++;
      if (pos + 1 < n && s[pos] == '.' && g_ascii_isdigit(s[pos + 1])) {
        is_float = TRUE;
        pos++;
        while (pos < n && (g_ascii_isdigit(s[pos]) || s[pos] == '_'))
          pos++;
      }
      if (pos < n && (s[pos] == 'e' || s[pos] == 'E')) {
        gsize q = pos + 1;
        if (q < n && (s[q] == '+' || s[q] == '-'))
          q++;
        if (q < n && g_ascii_isdigit(s[q])) {
          is_float = TRUE;
          pos = q;
          while (pos < n && g_ascii_isdigit(s[pos]))
            pos++;
        }
      }
      GString *num = g_string_new(NULL);
      for (gsize i = st; i < pos; i++)
        if (s[i] != '_')
          g_string_append_c(num, s[i]);
      lex_push(lx, is_float ? T_FLOAT : T_INT, st, NULL, 0);
      tok *tk = &g_array_index(lx->toks, tok, lx->toks->len - 1);
      if (is_float) {
        tk->f = g_ascii_strtod(num->str, NULL);
      } else {
        errno = 0;
        tk->i = g_ascii_strtoll(num->str, NULL, 10);
        if (errno) {
          g_string_free(num, TRUE);
          return lex_fail(lx, st, "integer literal out of range"), 0;
        }
      }
      g_string_free(num, TRUE);
      continue;
    }
    if (c == '\'' || c == '"') {
      gsize st = pos++;
      GString *str = g_string_new(NULL);
      while (pos < n && s[pos] != c) {
        if (s[pos] == '\\' && pos + 1 < n) {
          char e = s[pos + 1];
          pos += 2;
          switch (e) {
          case 'n':
            g_string_append_c(str, '\n');
            break;
          case 't':
            g_string_append_c(str, '\t');
            break;
          case 'r':
            g_string_append_c(str, '\r');
            break;
          case '0':
            g_string_append_c(str, '\0');
            break;
          case 'b':
            g_string_append_c(str, '\b');
            break;
          case 'f':
            g_string_append_c(str, '\f');
            break;
          case 'v':
            g_string_append_c(str, '\v');
            break;
          case 'a':
            g_string_append_c(str, '\a');
            break;
          case '\\':
            g_string_append_c(str, '\\');
            break;
          case '\'':
            g_string_append_c(str, '\'');
            break;
          case '"':
            g_string_append_c(str, '"');
            break;
          case '\n':
            break;
          case 'x':
          case 'u':
          case 'U': {
            int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            gunichar u = 0;
            int k = 0;
            for (; k < digits && pos < n && g_ascii_isxdigit(s[pos]); k++, pos++)
              u = u * 16 + (gunichar)g_ascii_xdigit_value(s[pos]);
            if (k != digits || !g_unichar_validate(u)) {
              g_string_free(str, TRUE);
              return lex_fail(lx, pos, "bad escape sequence in string literal"), 0;
            }
            g_string_append_unichar(str, u);
            break;
          }
          default:
            g_string_append_c(str, '\\');
            g_string_append_c(str, e);
          }
          continue;
        }
        g_string_append_c(str, s[pos]);
        pos++;
      }
      if (pos >= n) {
        g_string_free(str, TRUE);
        return lex_fail(lx, st, "unterminated string literal"), 0;
      }
      pos++;
      lex_push(lx, T_STR, st, str->str, str->len);
      g_string_free(str, TRUE);
      continue;
    }
    static const char *const ops2[] = {"==", "!=", "<=", ">=", "//", "**"};
    gboolean found = FALSE;
    for (guint k = 0; k < G_N_ELEMENTS(ops2); k++)
      if (pos + 1 < n && s[pos] == ops2[k][0] && s[pos + 1] == ops2[k][1]) {
        lex_push(lx, T_OP, pos, ops2[k], 2);
        pos += 2;
        found = TRUE;
        break;
      }
    if (found)
      continue;
    if (strchr("+-*/%~|.,:()[]{}<>=!", c) && c) {
      if (c == '(' || c == '[' || c == '{')
        depth++;
      else if (c == ')' || c == ']' || c == '}') {
        if (depth == 0)
          return lex_fail(lx, pos, "unbalanced closing bracket"), 0;
        depth--;
      }
      lex_push(lx, T_OP, pos, s + pos, 1);
      pos++;
      continue;
    }
    return lex_fail(lx, pos, "unexpected character"), 0;
  }
}

static gboolean
lex(lexer *lx)
{
  const char *s = lx->src;
  gsize n = lx->len;
  gsize pos = 0;
  gboolean strip_next = FALSE;
  while (pos <= n) {
    /* Find the next tag opener. */
    gsize k = pos;
    int kind = 0; /* 1 var, 2 block, 3 comment */
    for (; k + 1 < n; k++) {
      if (s[k] != '{')
        continue;
      if (s[k + 1] == '{') {
        kind = 1;
        break;
      }
      if (s[k + 1] == '%') {
        kind = 2;
        break;
      }
      if (s[k + 1] == '#') {
        kind = 3;
        break;
      }
    }
    if (!kind)
      k = n;
    gsize ts = pos, te = k;
    if (strip_next)
      while (ts < te && is_ws(s[ts]))
        ts++;
    char mod = kind && k + 2 < n ? s[k + 2] : 0;
    if (kind && mod == '-') {
      while (te > ts && is_ws(s[te - 1]))
        te--;
    } else if ((kind == 2 || kind == 3) && mod != '+') {
      /* lstrip_blocks: drop spaces/tabs between the line start and the tag. */
      gsize j = k;
      while (j > ts && (s[j - 1] == ' ' || s[j - 1] == '\t'))
        j--;
      if (j == 0 || s[j - 1] == '\n')
        te = j;
    }
    if (te > ts)
      lex_push(lx, T_TEXT, ts, s + ts, te - ts);
    if (!kind)
      break;
    gsize after = k + 2 + ((mod == '-' || mod == '+') ? 1 : 0);
    gboolean strip_after = FALSE, plus_after = FALSE;
    if (kind == 3) {
      gsize e = after;
      while (e + 1 < n && !(s[e] == '#' && s[e + 1] == '}'))
        e++;
      if (e + 1 >= n)
        return lex_fail(lx, k, "unclosed comment: expected '#}'");
      strip_after = e > after && s[e - 1] == '-';
      plus_after = e > after && s[e - 1] == '+';
      pos = e + 2;
    } else {
      lex_push(lx, kind == 1 ? T_VBEGIN : T_BBEGIN, k, NULL, 0);
      pos = lex_tag(lx, after, kind == 2, &strip_after, &plus_after);
      if (!pos)
        return FALSE;
    }
    strip_next = strip_after;
    /* trim_blocks: the first newline after a block or comment tag goes. */
    if (kind != 1 && !strip_after && !plus_after) {
      if (pos < n && s[pos] == '\n')
        pos++;
      else if (pos + 1 < n && s[pos] == '\r' && s[pos + 1] == '\n')
        pos += 2;
    }
  }
  lex_push(lx, T_EOF, n, NULL, 0);
  return TRUE;
}

/* ------------------------------------------------------------------------------------ */
/* AST                                                                                  */

typedef enum {
  /* statements */
  N_TEXT,
  N_OUT,
  N_IF,
  N_FOR,
  N_SET,
  N_SETBLOCK,
  N_MACRO,
  N_BREAK,
  N_CONTINUE,
  N_BODY,
  /* expressions */
  N_LIT,
  N_NAME,
  N_LIST,
  N_DICT,
  N_ATTR,
  N_INDEX,
  N_SLICE,
  N_CALL,
  N_FILTER,
  N_TEST,
  N_BIN,
  N_NOT,
  N_NEG,
  N_POS,
  N_COND,
  N_AND,
  N_OR,
} nkind;

struct node {
  nkind k;
  int line, col;
  char *str; /* TEXT, NAME, ATTR, FILTER/TEST name, MACRO name, BIN op */
  gsize n;   /* TEXT length */
  val *lit;  /* LIT */
  node *a, *b, *c, *d;
  GPtrArray *kids;  /* body / list items / positional args / dict keys */
  GPtrArray *kids2; /* else body / kwarg values / dict values / macro defaults */
  GPtrArray *names; /* for targets / kwarg names / macro params (char*) */
  gboolean neg;     /* TEST: `is not`; LIST: a tuple */
  gboolean own_lit; /* LIT: lit was allocated by the parser (and is made immortal) */
};

static void
node_free(node *nd)
{
  if (!nd)
    return;
  g_free(nd->str);
  if (nd->own_lit) {
    nd->lit->refs = 1;
    val_unref(nd->lit);
  }
  node_free(nd->a);
  node_free(nd->b);
  node_free(nd->c);
  node_free(nd->d);
  if (nd->kids)
    g_ptr_array_unref(nd->kids);
  if (nd->kids2)
    g_ptr_array_unref(nd->kids2);
  if (nd->names)
    g_ptr_array_unref(nd->names);
  g_free(nd);
}

/* Literals live in the AST, which concurrent renders share: they are made immortal (refcount
 * never touched while rendering) and freed with their node. */
static void
set_lit(node *nd, val *v)
{
  if (v->refs >= 0) {
    v->refs = -1;
    nd->own_lit = TRUE;
  }
  nd->lit = v;
}

static GPtrArray *
node_array(void)
{
  return g_ptr_array_new_with_free_func((GDestroyNotify)node_free);
}

/* ------------------------------------------------------------------------------------ */
/* Parser                                                                               */

typedef struct {
  tok *t;
  guint n, i;
  int depth;
  GError **error;
} parser;

static node *
node_new(nkind k, const tok *at)
{
  node *nd = g_new0(node, 1);
  nd->k = k;
  nd->line = at->line;
  nd->col = at->col;
  return nd;
}

static tok *
peek(parser *p)
{
  return &p->t[p->i];
}

static tok *
peek2(parser *p)
{
  return &p->t[p->i + 1 < p->n ? p->i + 1 : p->i];
}

static gboolean
is_op(const tok *t, const char *op)
{
  return t->t == T_OP && strcmp(t->s, op) == 0;
}

static gboolean
is_name(const tok *t, const char *nm)
{
  return t->t == T_NAME && strcmp(t->s, nm) == 0;
}

static const char *
tok_desc(const tok *t)
{
  switch (t->t) {
  case T_TEXT:
    return "text";
  case T_VBEGIN:
    return "'{{'";
  case T_VEND:
    return "'}}'";
  case T_BBEGIN:
    return "'{%'";
  case T_BEND:
    return "'%}'";
  case T_EOF:
    return "end of template";
  case T_STR:
    return "a string";
  case T_INT:
  case T_FLOAT:
    return "a number";
  default:
    return t->s;
  }
}

static void *pfail(parser *p, const tok *at, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void *
pfail(parser *p, const tok *at, const char *fmt, ...)
{
  if (p->error && *p->error)
    return NULL;
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(p->error, WH_CHAT_ERROR, WH_CHAT_ERROR_SYNTAX,
              "template syntax error at line %d, column %d: %s", at->line, at->col, msg);
  g_free(msg);
  return NULL;
}

static gboolean
expect_op(parser *p, const char *op)
{
  if (!is_op(peek(p), op)) {
    pfail(p, peek(p), "expected '%s', got %s", op, tok_desc(peek(p)));
    return FALSE;
  }
  p->i++;
  return TRUE;
}

static gboolean
expect_t(parser *p, ttype t, const char *what)
{
  if (peek(p)->t != t) {
    pfail(p, peek(p), "expected %s, got %s", what, tok_desc(peek(p)));
    return FALSE;
  }
  p->i++;
  return TRUE;
}

static node *parse_expr(parser *p);
static gboolean chain_deeper(parser *p, node **a);
static node *parse_or(parser *p);
static node *parse_unary(parser *p, gboolean with_filter);
static node *parse_primary(parser *p);
static node *parse_postfix(parser *p, node *nd);

/* Call arguments after '(' up to ')': positional into kids, keyword into names/kids2. */
static gboolean
parse_args(parser *p, node *call)
{
  call->kids = node_array();
  call->kids2 = node_array();
  call->names = g_ptr_array_new_with_free_func(g_free);
  if (!expect_op(p, "("))
    return FALSE;
  while (!is_op(peek(p), ")")) {
    if (call->kids->len + call->kids2->len > 0 && !expect_op(p, ","))
      return FALSE;
    if (is_op(peek(p), ")"))
      break;
    if (peek(p)->t == T_NAME && is_op(peek2(p), "=")) {
      g_ptr_array_add(call->names, g_strdup(peek(p)->s));
      p->i += 2;
      node *v = parse_expr(p);
      if (!v)
        return FALSE;
      g_ptr_array_add(call->kids2, v);
    } else {
      if (call->kids2->len)
        return pfail(p, peek(p), "positional argument after keyword argument"), FALSE;
      node *v = parse_expr(p);
      if (!v)
        return FALSE;
      g_ptr_array_add(call->kids, v);
    }
  }
  p->i++;
  return TRUE;
}

static node *
parse_expr(parser *p)
{
  int base = p->depth;
  if (++p->depth > PARSE_MAX_DEPTH) {
    p->depth--;
    return pfail(p, peek(p), "expression nested too deeply");
  }
  node *a = parse_or(p);
  while (a && is_name(peek(p), "if")) {
    node *c = node_new(N_COND, peek(p));
    p->i++;
    c->a = a;
    c->b = parse_or(p);
    if (!c->b) {
      node_free(c);
      a = NULL;
      break;
    }
    if (is_name(peek(p), "else")) { /* `a if x else b if y else c` nests to the right */
      p->i++;
      c->c = parse_expr(p);
      if (!c->c) {
        node_free(c);
        a = NULL;
        break;
      }
    }
    a = c;
    if (!chain_deeper(p, &a))
      return NULL;
  }
  p->depth = base;
  return a;
}

static node *parse_and(parser *p);
static node *parse_not(parser *p);
static node *parse_compare(parser *p);
static node *parse_math1(parser *p);
static node *parse_concat(parser *p);
static node *parse_math2(parser *p);
static node *parse_pow(parser *p);

/* Left-deep chains (a + b + c ..., x.y.z ..., x|f|g ...) deepen the tree without recursing
 * in the parser: count them against the same depth budget so evaluation stays shallow. */
static gboolean
chain_deeper(parser *p, node **a)
{
  if (++p->depth <= PARSE_MAX_DEPTH)
    return TRUE;
  pfail(p, peek(p), "expression nested too deeply");
  node_free(*a);
  *a = NULL;
  return FALSE;
}

static node *
mk_bin(nkind k, const tok *at, const char *op, node *a, node *b)
{
  node *nd = node_new(k, at);
  nd->str = g_strdup(op);
  nd->a = a;
  nd->b = b;
  return nd;
}

/* The left-associative binary levels, loosest first: or, and, (not), comparisons, + -, ~,
 * * / // %, **. Each is "operand (op operand)*" (parse_left_assoc()). */
typedef struct {
  node *(*operand)(parser *p);
  nkind kind;             /* of the nodes built: N_OR, N_AND or N_BIN */
  const char *const *ops; /* the level's operators (NULL-terminated) */
  gboolean words;         /* ops are names (or, and), not operator tokens */
  gboolean membership;    /* also `in` and `not in` (comparisons) */
} bin_level;

/* The operator of @lv at the cursor, stepped over, or NULL. */
static const char *
level_op(parser *p, const bin_level *lv)
{
  tok *t = peek(p);
  for (gsize i = 0; lv->ops[i]; i++)
    if (lv->words ? is_name(t, lv->ops[i]) : is_op(t, lv->ops[i])) {
      p->i++;
      return t->s;
    }
  if (lv->membership && is_name(t, "in")) {
    p->i++;
    return "in";
  }
  if (lv->membership && is_name(t, "not") && is_name(peek2(p), "in")) {
    p->i += 2;
    return "notin";
  }
  return NULL;
}

static node *
parse_left_assoc(parser *p, const bin_level *lv)
{
  int base = p->depth;
  node *a = lv->operand(p);
  while (a) {
    tok *t = peek(p);
    const char *op = level_op(p, lv);
    if (!op)
      break;
    node *b = lv->operand(p);
    if (!b)
      return node_free(a), NULL;
    a = mk_bin(lv->kind, t, op, a, b);
    if (!chain_deeper(p, &a))
      return NULL;
  }
  p->depth = base;
  return a;
}

static node *
parse_unary_filtered(parser *p)
{
  return parse_unary(p, TRUE);
}

static const char *const ops_or[] = {"or", NULL}, *const ops_and[] = {"and", NULL};
static const char *const ops_cmp[] = {"==", "!=", "<", ">", "<=", ">=", NULL};
static const char *const ops_add[] = {"+", "-", NULL}, *const ops_concat[] = {"~", NULL};
static const char *const ops_mul[] = {"*", "/", "//", "%", NULL}, *const ops_pow[] = {"**", NULL};
static const bin_level lv_or = {parse_and, N_OR, ops_or, TRUE, FALSE};
static const bin_level lv_and = {parse_not, N_AND, ops_and, TRUE, FALSE};
static const bin_level lv_cmp = {parse_math1, N_BIN, ops_cmp, FALSE, TRUE};
static const bin_level lv_add = {parse_concat, N_BIN, ops_add, FALSE, FALSE};
static const bin_level lv_concat = {parse_math2, N_BIN, ops_concat, FALSE, FALSE};
static const bin_level lv_mul = {parse_pow, N_BIN, ops_mul, FALSE, FALSE};
static const bin_level lv_pow = {parse_unary_filtered, N_BIN, ops_pow, FALSE, FALSE};

static node *
parse_or(parser *p)
{
  return parse_left_assoc(p, &lv_or);
}

static node *
parse_and(parser *p)
{
  return parse_left_assoc(p, &lv_and);
}

static node *
parse_not(parser *p)
{
  if (is_name(peek(p), "not")) {
    if (++p->depth > PARSE_MAX_DEPTH) {
      p->depth--;
      return pfail(p, peek(p), "expression nested too deeply");
    }
    node *nd = node_new(N_NOT, peek(p));
    p->i++;
    nd->a = parse_not(p);
    p->depth--;
    if (!nd->a)
      return node_free(nd), NULL;
    return nd;
  }
  return parse_compare(p);
}

static node *
parse_compare(parser *p)
{
  return parse_left_assoc(p, &lv_cmp);
}

static node *
parse_math1(parser *p)
{
  return parse_left_assoc(p, &lv_add);
}

static node *
parse_concat(parser *p)
{
  return parse_left_assoc(p, &lv_concat);
}

static node *
parse_math2(parser *p)
{
  return parse_left_assoc(p, &lv_mul);
}

static node *
parse_pow(parser *p)
{
  return parse_left_assoc(p, &lv_pow);
}

static gboolean
test_arg_starts(const tok *t)
{
  if (t->t == T_STR || t->t == T_INT || t->t == T_FLOAT)
    return TRUE;
  if (t->t == T_NAME)
    return strcmp(t->s, "else") && strcmp(t->s, "or") && strcmp(t->s, "and") &&
           strcmp(t->s, "if") && strcmp(t->s, "in") && strcmp(t->s, "not") && strcmp(t->s, "is");
  return is_op(t, "(") || is_op(t, "[") || is_op(t, "{");
}

static node *
parse_filter_expr(parser *p, node *nd)
{
  int base = p->depth;
  while (nd) {
    tok *t = peek(p);
    if (is_op(t, "|")) {
      p->i++;
      if (peek(p)->t != T_NAME)
        return node_free(nd), pfail(p, peek(p), "expected a filter name after '|'");
      node *f = node_new(N_FILTER, peek(p));
      f->str = g_strdup(peek(p)->s);
      p->i++;
      f->a = nd;
      nd = f;
      if (is_op(peek(p), "(")) {
        if (!parse_args(p, f))
          return node_free(nd), NULL;
      }
    } else if (is_name(t, "is")) {
      p->i++;
      node *f = node_new(N_TEST, t);
      f->a = nd;
      nd = f;
      if (is_name(peek(p), "not")) {
        f->neg = TRUE;
        p->i++;
      }
      if (peek(p)->t != T_NAME)
        return node_free(nd), pfail(p, peek(p), "expected a test name after 'is'");
      f->str = g_strdup(peek(p)->s);
      p->i++;
      if (is_op(peek(p), "(")) {
        if (!parse_args(p, f))
          return node_free(nd), NULL;
      } else if (test_arg_starts(peek(p))) {
        f->kids = node_array();
        node *arg = parse_primary(p);
        if (arg)
          arg = parse_postfix(p, arg);
        if (!arg)
          return node_free(nd), NULL;
        g_ptr_array_add(f->kids, arg);
      }
    } else if (is_op(t, "(")) {
      node *c = node_new(N_CALL, t);
      c->line = nd->line; /* errors point at what is called */
      c->col = nd->col;
      c->a = nd;
      nd = c;
      if (!parse_args(p, c))
        return node_free(nd), NULL;
    } else {
      break;
    }
    if (nd && !chain_deeper(p, &nd))
      return NULL;
  }
  p->depth = base;
  return nd;
}

static node *
parse_unary(parser *p, gboolean with_filter)
{
  tok *t = peek(p);
  node *nd;
  if (is_op(t, "-") || is_op(t, "+")) {
    if (++p->depth > PARSE_MAX_DEPTH) {
      p->depth--;
      return pfail(p, t, "expression nested too deeply");
    }
    p->i++;
    nd = node_new(is_op(t, "-") ? N_NEG : N_POS, t);
    nd->a = parse_unary(p, FALSE);
    p->depth--;
    if (!nd->a)
      return node_free(nd), NULL;
  } else {
    nd = parse_primary(p);
  }
  nd = parse_postfix(p, nd);
  if (with_filter)
    nd = parse_filter_expr(p, nd);
  return nd;
}

static node *
parse_postfix(parser *p, node *nd)
{
  int base = p->depth;
  while (nd) {
    tok *t = peek(p);
    if (is_op(t, ".")) {
      p->i++;
      tok *nm = peek(p);
      if (nm->t == T_NAME) {
        node *a = node_new(N_ATTR, nm);
        a->a = nd;
        a->str = g_strdup(nm->s);
        p->i++;
        nd = a;
      } else if (nm->t == T_INT) {
        node *a = node_new(N_INDEX, nm);
        a->a = nd;
        a->b = node_new(N_LIT, nm);
        set_lit(a->b, v_int(nm->i));
        p->i++;
        nd = a;
      } else {
        return node_free(nd), pfail(p, nm, "expected an attribute name after '.'");
      }
    } else if (is_op(t, "[")) {
      p->i++;
      node *parts[3] = {NULL, NULL, NULL};
      int np = 0;
      gboolean slice = FALSE;
      for (;;) {
        if (is_op(peek(p), ":")) {
          slice = TRUE;
          p->i++;
          if (++np > 2)
            break;
          continue;
        }
        if (is_op(peek(p), "]"))
          break;
        if (parts[np]) {
          pfail(p, peek(p), "expected ']' or ':'");
          break;
        }
        parts[np] = parse_expr(p);
        if (!parts[np])
          break;
      }
      if (!is_op(peek(p), "]") || np > 2 || (!slice && !parts[0])) {
        for (int k = 0; k < 3; k++)
          node_free(parts[k]);
        node_free(nd);
        return pfail(p, peek(p), "bad subscript: expected ']'");
      }
      p->i++;
      node *x = node_new(slice ? N_SLICE : N_INDEX, t);
      x->a = nd;
      x->b = parts[0];
      x->c = parts[1];
      x->d = parts[2];
      nd = x;
    } else if (is_op(t, "(")) {
      node *c = node_new(N_CALL, t);
      c->line = nd->line; /* errors point at what is called */
      c->col = nd->col;
      c->a = nd;
      nd = c;
      if (!parse_args(p, c))
        return node_free(nd), NULL;
    } else {
      break;
    }
    if (nd && !chain_deeper(p, &nd))
      return NULL;
  }
  p->depth = base;
  return nd;
}

static node *
parse_primary(parser *p)
{
  tok *t = peek(p);
  node *nd;
  switch (t->t) {
  case T_NAME:
    p->i++;
    nd = node_new(N_LIT, t);
    if (!strcmp(t->s, "true") || !strcmp(t->s, "True"))
      set_lit(nd, v_bool(TRUE));
    else if (!strcmp(t->s, "false") || !strcmp(t->s, "False"))
      set_lit(nd, v_bool(FALSE));
    else if (!strcmp(t->s, "none") || !strcmp(t->s, "None"))
      set_lit(nd, V_NONEV);
    else {
      nd->k = N_NAME;
      nd->str = g_strdup(t->s);
    }
    return nd;
  case T_STR: {
    GString *s = g_string_new_len(t->s, t->n);
    p->i++;
    while (peek(p)->t == T_STR) { /* implicit concatenation of adjacent literals */
      g_string_append_len(s, peek(p)->s, peek(p)->n);
      p->i++;
    }
    nd = node_new(N_LIT, t);
    set_lit(nd, v_gstring(s));
    return nd;
  }
  case T_INT:
    p->i++;
    nd = node_new(N_LIT, t);
    set_lit(nd, v_int(t->i));
    return nd;
  case T_FLOAT:
    p->i++;
    nd = node_new(N_LIT, t);
    set_lit(nd, v_float(t->f));
    return nd;
  default:
    break;
  }
  if (is_op(t, "(") || is_op(t, "[")) {
    gboolean paren = is_op(t, "(");
    const char *close = paren ? ")" : "]";
    p->i++;
    nd = node_new(N_LIST, t);
    nd->kids = node_array();
    gboolean comma = FALSE;
    while (!is_op(peek(p), close)) {
      if (nd->kids->len) {
        if (!expect_op(p, ","))
          return node_free(nd), NULL;
        comma = TRUE;
        if (is_op(peek(p), close))
          break;
      }
      node *e = parse_expr(p);
      if (!e)
        return node_free(nd), NULL;
      g_ptr_array_add(nd->kids, e);
    }
    p->i++;
    nd->neg = paren;                             /* a tuple */
    if (paren && nd->kids->len == 1 && !comma) { /* plain parentheses */
      node *inner = g_ptr_array_steal_index(nd->kids, 0);
      node_free(nd);
      return inner;
    }
    return nd;
  }
  if (is_op(t, "{")) {
    p->i++;
    nd = node_new(N_DICT, t);
    nd->kids = node_array();
    nd->kids2 = node_array();
    while (!is_op(peek(p), "}")) {
      if (nd->kids->len) {
        if (!expect_op(p, ","))
          return node_free(nd), NULL;
        if (is_op(peek(p), "}"))
          break;
      }
      node *k = parse_expr(p);
      if (!k)
        return node_free(nd), NULL;
      g_ptr_array_add(nd->kids, k);
      if (!expect_op(p, ":"))
        return node_free(nd), NULL;
      node *v = parse_expr(p);
      if (!v)
        return node_free(nd), NULL;
      g_ptr_array_add(nd->kids2, v);
    }
    p->i++;
    return nd;
  }
  return pfail(p, t, "unexpected %s in expression", tok_desc(t));
}

/* Parses statements until a `{% NAME` with NAME in @ends (left unconsumed: p->i points at
 * the name token) or, when @ends is NULL, the end of the template. */
static node *parse_stmt(parser *p);

static gboolean
at_end_tag(parser *p, const char *const *ends)
{
  if (peek(p)->t != T_BBEGIN || !ends)
    return FALSE;
  tok *nm = peek2(p);
  if (nm->t != T_NAME)
    return FALSE;
  for (int i = 0; ends[i]; i++)
    if (!strcmp(nm->s, ends[i]))
      return TRUE;
  return FALSE;
}

static GPtrArray *
parse_body(parser *p, const char *const *ends, const tok *opener)
{
  if (++p->depth > PARSE_MAX_DEPTH) {
    p->depth--;
    return pfail(p, peek(p), "blocks nested too deeply");
  }
  GPtrArray *body = node_array();
  for (;;) {
    tok *t = peek(p);
    if (t->t == T_EOF) {
      if (ends) {
        int last = 0;
        while (ends[last + 1])
          last++;
        pfail(p, t,
              "unexpected end of template: the '%s' at line %d, column %d is never closed "
              "(expected '{%% %s %%}')",
              opener->s, opener->line, opener->col, ends[last]);
        g_ptr_array_unref(body);
        body = NULL;
      }
      break;
    }
    if (at_end_tag(p, ends)) {
      p->i++; /* at the name */
      break;
    }
    node *st = parse_stmt(p);
    if (!st) {
      g_ptr_array_unref(body);
      body = NULL;
      break;
    }
    g_ptr_array_add(body, st);
  }
  p->depth--;
  return body;
}

/* Consumes NAME %} of an end tag (p->i at NAME). */
static gboolean
end_tag(parser *p)
{
  p->i++;
  return expect_t(p, T_BEND, "'%}'");
}

static node *
parse_if_rest(parser *p, tok *at)
{
  /* p->i after `if`/`elif` */
  static const char *const ends[] = {"elif", "else", "endif", NULL};
  node *nd = node_new(N_IF, at);
  nd->a = parse_expr(p);
  if (!nd->a || !expect_t(p, T_BEND, "'%}'"))
    return node_free(nd), NULL;
  nd->kids = parse_body(p, ends, at);
  if (!nd->kids)
    return node_free(nd), NULL;
  tok *kw = peek(p);
  if (!strcmp(kw->s, "elif")) {
    p->i++;
    node *sub = parse_if_rest(p, kw);
    if (!sub)
      return node_free(nd), NULL;
    nd->kids2 = node_array();
    g_ptr_array_add(nd->kids2, sub);
    return nd;
  }
  if (!strcmp(kw->s, "else")) {
    static const char *const ends2[] = {"endif", NULL};
    if (!end_tag(p))
      return node_free(nd), NULL;
    nd->kids2 = parse_body(p, ends2, at);
    if (!nd->kids2)
      return node_free(nd), NULL;
  }
  if (!end_tag(p))
    return node_free(nd), NULL;
  return nd;
}

/* A set/for target: NAME, NAME.attr, or NAME, NAME, ... */
static GPtrArray *
parse_names(parser *p)
{
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  gboolean paren = is_op(peek(p), "(");
  if (paren)
    p->i++;
  for (;;) {
    if (peek(p)->t != T_NAME) {
      pfail(p, peek(p), "expected a variable name, got %s", tok_desc(peek(p)));
      g_ptr_array_unref(names);
      return NULL;
    }
    g_ptr_array_add(names, g_strdup(peek(p)->s));
    p->i++;
    if (!is_op(peek(p), ","))
      break;
    p->i++;
  }
  if (paren && !expect_op(p, ")")) {
    g_ptr_array_unref(names);
    return NULL;
  }
  return names;
}

static node *
parse_stmt(parser *p)
{
  tok *t = peek(p);
  if (t->t == T_TEXT) {
    p->i++;
    node *nd = node_new(N_TEXT, t);
    nd->str = g_strndup(t->s, t->n);
    nd->n = t->n;
    return nd;
  }
  if (t->t == T_VBEGIN) {
    p->i++;
    node *nd = node_new(N_OUT, t);
    nd->a = parse_expr(p);
    if (!nd->a || !expect_t(p, T_VEND, "'}}'"))
      return node_free(nd), NULL;
    return nd;
  }
  if (t->t != T_BBEGIN)
    return pfail(p, t, "unexpected %s", tok_desc(t));
  p->i++;
  tok *kw = peek(p);
  if (kw->t != T_NAME)
    return pfail(p, kw, "expected a statement name after '{%%'");
  p->i++;
  const char *k = kw->s;
  if (!strcmp(k, "if"))
    return parse_if_rest(p, kw);
  if (!strcmp(k, "for")) {
    static const char *const ends[] = {"else", "endfor", NULL};
    static const char *const ends2[] = {"endfor", NULL};
    node *nd = node_new(N_FOR, kw);
    nd->names = parse_names(p);
    if (!nd->names)
      return node_free(nd), NULL;
    if (!is_name(peek(p), "in"))
      return node_free(nd), pfail(p, peek(p), "expected 'in' in for loop");
    p->i++;
    nd->a = parse_or(p);
    if (!nd->a)
      return node_free(nd), NULL;
    if (is_name(peek(p), "if")) {
      p->i++;
      nd->b = parse_or(p);
      if (!nd->b)
        return node_free(nd), NULL;
    }
    if (is_name(peek(p), "recursive"))
      return node_free(nd), pfail(p, peek(p), "recursive loops are not supported");
    if (!expect_t(p, T_BEND, "'%}'"))
      return node_free(nd), NULL;
    nd->kids = parse_body(p, ends, kw);
    if (!nd->kids)
      return node_free(nd), NULL;
    if (!strcmp(peek(p)->s, "else")) {
      if (!end_tag(p))
        return node_free(nd), NULL;
      nd->kids2 = parse_body(p, ends2, kw);
      if (!nd->kids2)
        return node_free(nd), NULL;
    }
    if (!end_tag(p))
      return node_free(nd), NULL;
    return nd;
  }
  if (!strcmp(k, "set")) {
    node *nd = node_new(N_SET, kw);
    if (peek(p)->t != T_NAME)
      return node_free(nd), pfail(p, peek(p), "expected a variable name after 'set'");
    if (is_op(peek2(p), ".")) {
      nd->str = g_strdup(peek(p)->s); /* namespace variable */
      p->i += 2;
      if (peek(p)->t != T_NAME)
        return node_free(nd), pfail(p, peek(p), "expected an attribute name");
      nd->names = g_ptr_array_new_with_free_func(g_free);
      g_ptr_array_add(nd->names, g_strdup(peek(p)->s));
      p->i++;
    } else {
      nd->names = parse_names(p);
      if (!nd->names)
        return node_free(nd), NULL;
    }
    if (is_op(peek(p), "=")) {
      p->i++;
      nd->a = parse_expr(p);
      if (nd->a && is_op(peek(p), ",")) { /* set a = x, y */
        node *l = node_new(N_LIST, peek(p));
        l->kids = node_array();
        g_ptr_array_add(l->kids, nd->a);
        nd->a = l;
        while (is_op(peek(p), ",")) {
          p->i++;
          node *e = parse_expr(p);
          if (!e)
            return node_free(nd), NULL;
          g_ptr_array_add(l->kids, e);
        }
      }
      if (!nd->a || !expect_t(p, T_BEND, "'%}'"))
        return node_free(nd), NULL;
      return nd;
    }
    static const char *const ends[] = {"endset", NULL};
    nd->k = N_SETBLOCK;
    if (nd->str || nd->names->len != 1)
      return node_free(nd), pfail(p, peek(p), "a block set takes one plain variable name");
    if (is_op(peek(p), "|")) { /* {% set x | filter %} */
      node *holder = node_new(N_LIT, peek(p));
      set_lit(holder, V_UNDEFINED);
      nd->a = parse_filter_expr(p, holder);
      if (!nd->a)
        return node_free(nd), NULL;
    }
    if (!expect_t(p, T_BEND, "'%}'"))
      return node_free(nd), NULL;
    nd->kids = parse_body(p, ends, kw);
    if (!nd->kids || !end_tag(p))
      return node_free(nd), NULL;
    return nd;
  }
  if (!strcmp(k, "macro")) {
    static const char *const ends[] = {"endmacro", NULL};
    node *nd = node_new(N_MACRO, kw);
    if (peek(p)->t != T_NAME)
      return node_free(nd), pfail(p, peek(p), "expected a macro name");
    nd->str = g_strdup(peek(p)->s);
    p->i++;
    nd->names = g_ptr_array_new_with_free_func(g_free);
    nd->kids2 = g_ptr_array_new_with_free_func((GDestroyNotify)node_free);
    if (!expect_op(p, "("))
      return node_free(nd), NULL;
    while (!is_op(peek(p), ")")) {
      if (nd->names->len && !expect_op(p, ","))
        return node_free(nd), NULL;
      if (peek(p)->t != T_NAME)
        return node_free(nd), pfail(p, peek(p), "expected a parameter name");
      g_ptr_array_add(nd->names, g_strdup(peek(p)->s));
      p->i++;
      node *def = NULL;
      if (is_op(peek(p), "=")) {
        p->i++;
        def = parse_expr(p);
        if (!def)
          return node_free(nd), NULL;
      }
      g_ptr_array_add(nd->kids2, def);
    }
    p->i++;
    if (!expect_t(p, T_BEND, "'%}'"))
      return node_free(nd), NULL;
    nd->kids = parse_body(p, ends, kw);
    if (!nd->kids)
      return node_free(nd), NULL;
    p->i++;
    if (peek(p)->t == T_NAME) /* {% endmacro name %} */
      p->i++;
    if (!expect_t(p, T_BEND, "'%}'"))
      return node_free(nd), NULL;
    return nd;
  }
  if (!strcmp(k, "break") || !strcmp(k, "continue")) {
    node *nd = node_new(!strcmp(k, "break") ? N_BREAK : N_CONTINUE, kw);
    if (!expect_t(p, T_BEND, "'%}'"))
      return node_free(nd), NULL;
    return nd;
  }
  if (!strcmp(k, "generation")) { /* HF's assistant-mask marker: renders its body */
    static const char *const ends[] = {"endgeneration", NULL};
    node *nd = node_new(N_BODY, kw);
    if (!expect_t(p, T_BEND, "'%}'"))
      return node_free(nd), NULL;
    nd->kids = parse_body(p, ends, kw);
    if (!nd->kids || !end_tag(p))
      return node_free(nd), NULL;
    return nd;
  }
  return pfail(p, kw, "unknown or unsupported statement '%s'", k);
}

/* ------------------------------------------------------------------------------------ */
/* Template                                                                             */

struct wh_jinja_template {
  GPtrArray *body;
};

void
wh_jinja_free(wh_jinja_template *t)
{
  if (!t)
    return;
  if (t->body)
    g_ptr_array_unref(t->body);
  g_free(t);
}

wh_jinja_template *
wh_jinja_parse(const char *source, gsize len, GError **error)
{
  const char *bad = NULL;
  if (!g_utf8_validate(source, (gssize)len, &bad)) {
    gsize off = bad ? (gsize)(bad - source) : 0;
    int line = 1, col = 1;
    for (gsize i = 0; i < off; i++, col++)
      if (source[i] == '\n')
        line++, col = 0;
    g_set_error(error, WH_CHAT_ERROR, WH_CHAT_ERROR_SYNTAX,
                "template syntax error at line %d, column %d: not valid UTF-8 (or contains a "
                "NUL byte)",
                line, col);
    return NULL;
  }
  /* keep_trailing_newline=False: one trailing newline of the source is dropped. */
  if (len > 0 && source[len - 1] == '\n') {
    len--;
    if (len > 0 && source[len - 1] == '\r')
      len--;
  }
  lexer lx = {.src = source, .len = len, .error = error};
  lx.line_starts = g_array_new(FALSE, FALSE, sizeof(gsize));
  gsize zero = 0;
  g_array_append_val(lx.line_starts, zero);
  for (gsize i = 0; i < len; i++)
    if (source[i] == '\n') {
      gsize st = i + 1;
      g_array_append_val(lx.line_starts, st);
    }
  lx.toks = g_array_new(FALSE, TRUE, sizeof(tok));
  wh_jinja_template *t = NULL;
  if (lex(&lx)) {
    parser p = {.t = (tok *)(void *)lx.toks->data, .n = lx.toks->len, .error = error};
    GPtrArray *body = parse_body(&p, NULL, NULL);
    if (body) {
      t = g_new0(wh_jinja_template, 1);
      t->body = body;
    }
  }
  for (guint i = 0; i < lx.toks->len; i++)
    g_free(g_array_index(lx.toks, tok, i).s);
  g_array_unref(lx.toks);
  g_array_unref(lx.line_starts);
  return t;
}

/* ------------------------------------------------------------------------------------ */
/* Evaluator                                                                            */

struct scope {
  scope *parent;
  val *vars; /* V_DICT */
  gboolean captured;
};

typedef struct {
  GError *err;
  GString *out;
  guint64 steps;
  guint depth;
  guint rec; /* eval/exec frames on the stack */
  wh_jinja_limits lim;
  gint64 now;
  GPtrArray *arena;       /* mutated containers, emptied at the end */
  GPtrArray *kept_scopes; /* scopes captured by macros */
  scope *globals;
} ctx;

typedef enum { XR_OK, XR_ERR, XR_BREAK, XR_CONTINUE } xres;

static void *efail(ctx *c, const node *at, int code, const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static void *
efail(ctx *c, const node *at, int code, const char *fmt, ...)
{
  if (c->err)
    return NULL;
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  if (code == WH_CHAT_ERROR_RAISED)
    c->err =
        g_error_new(WH_CHAT_ERROR, code, "template raised an exception at line %d, column %d: %s",
                    at->line, at->col, msg);
  else
    c->err = g_error_new(WH_CHAT_ERROR, code, "template error at line %d, column %d: %s", at->line,
                         at->col, msg);
  g_free(msg);
  return NULL;
}

/* Charges @units of work; fails when the budget is spent. */
static gboolean
charge(ctx *c, const node *at, guint64 units)
{
  c->steps += units;
  if (c->steps > c->lim.max_steps) {
    efail(c, at, WH_CHAT_ERROR_LIMIT,
          "the template ran too long (over %" G_GUINT64_FORMAT " steps); is it looping?",
          c->lim.max_steps);
    return FALSE;
  }
  return TRUE;
}

static gboolean
size_ok(ctx *c, const node *at, gsize n)
{
  if (n > c->lim.max_output) {
    efail(c, at, WH_CHAT_ERROR_LIMIT, "a string or the output grew past %" G_GSIZE_FORMAT " bytes",
          c->lim.max_output);
    return FALSE;
  }
  return TRUE;
}

static void
arena_add(ctx *c, val *v)
{
  if (v->refs < 0 || v->in_arena)
    return;
  v->in_arena = TRUE;
  g_ptr_array_add(c->arena, val_ref(v));
}

static scope *
scope_push(scope *parent)
{
  scope *s = g_new0(scope, 1);
  s->parent = parent;
  s->vars = v_dict_new(V_DICT);
  return s;
}

static void
scope_pop(ctx *c, scope *s)
{
  if (s->captured) {
    g_ptr_array_add(c->kept_scopes, s);
    return;
  }
  val_unref(s->vars);
  g_free(s);
}

static val *
scope_lookup(scope *s, const char *name)
{
  for (; s; s = s->parent) {
    val *v = dict_get_str(s->vars, name);
    if (v)
      return v;
  }
  return NULL;
}

static void
scope_set(scope *s, const char *name, val *v /* taken */)
{
  int i = dict_find_str(s->vars, name);
  if (i >= 0) {
    val_unref(g_ptr_array_index(s->vars->d.vals, i));
    g_ptr_array_index(s->vars->d.vals, i) = v;
    return;
  }
  g_ptr_array_add(s->vars->d.keys, v_str(name));
  g_ptr_array_add(s->vars->d.vals, v);
}

/* The keys of the `loop` object: immortal, so building it allocates only the values. */
#define LOOP_KEY(n)                                                                                \
  {                                                                                                \
    .t = V_STR, .refs = -1, .s = {(char *)n, sizeof n - 1 }                                        \
  }
static val loop_keys[] = {
    LOOP_KEY("index"),  LOOP_KEY("index0"),   LOOP_KEY("revindex"), LOOP_KEY("revindex0"),
    LOOP_KEY("first"),  LOOP_KEY("last"),     LOOP_KEY("length"),   LOOP_KEY("depth"),
    LOOP_KEY("depth0"), LOOP_KEY("previtem"), LOOP_KEY("nextitem"),
};

static val *eval(ctx *c, scope *s, node *nd);
static xres exec_body(ctx *c, scope *s, GPtrArray *body);

static gboolean
out_append(ctx *c, const node *at, const char *s, gsize n)
{
  g_string_append_len(c->out, s, n);
  return size_ok(c, at, c->out->len);
}

/* Renders a value as str() into a new string value. */
static val *
to_str_val(val *v)
{
  if (v->t == V_STR)
    return val_ref(v);
  GString *g = g_string_new(NULL);
  val_str(g, v);
  return v_gstring(g);
}

/* ---- UTF-8 helpers ---- */

static gsize
u8_len(const val *s)
{
  return (gsize)g_utf8_strlen(s->s.s, (gssize)s->s.n);
}

static gboolean
py_space(gunichar u)
{
  return (u >= 9 && u <= 13) || (u >= 0x1c && u <= 0x20) || u == 0x85 || u == 0xa0 || u == 0x1680 ||
         (u >= 0x2000 && u <= 0x200a) || u == 0x2028 || u == 0x2029 || u == 0x202f || u == 0x205f ||
         u == 0x3000;
}

static gboolean
in_chars(gunichar u, const val *chars)
{
  if (!chars)
    return py_space(u);
  for (const char *p = chars->s.s; p < chars->s.s + chars->s.n; p = g_utf8_next_char(p))
    if (g_utf8_get_char(p) == u)
      return TRUE;
  return FALSE;
}

/* str.strip / lstrip / rstrip with optional @chars (NULL = whitespace). */
static val *
str_strip(const val *s, const val *chars, gboolean left, gboolean right)
{
  const char *b = s->s.s, *e = s->s.s + s->s.n;
  if (left)
    while (b < e && in_chars(g_utf8_get_char(b), chars))
      b = g_utf8_next_char(b);
  if (right)
    while (e > b) {
      const char *prev = g_utf8_prev_char(e);
      if (!in_chars(g_utf8_get_char(prev), chars))
        break;
      e = prev;
    }
  return v_str_len(b, (gsize)(e - b));
}

static const char *
memfind(const char *h, gsize hn, const char *nd, gsize nn)
{
  if (nn == 0)
    return h;
  if (nn > hn)
    return NULL;
  for (const char *p = h; p + nn <= h + hn; p++) {
    p = memchr(p, nd[0], (gsize)(h + hn - p));
    if (!p || p + nn > h + hn)
      return NULL;
    if (memcmp(p, nd, nn) == 0)
      return p;
  }
  return NULL;
}

static val *
str_replace(ctx *c, const node *at, const val *s, const val *old, const val *new_, gint64 count)
{
  GString *g = g_string_new(NULL);
  if (old->s.n == 0) {
    gint64 done = 0;
    const char *p = s->s.s, *e = s->s.s + s->s.n;
    for (;;) {
      if (count < 0 || done < count) {
        g_string_append_len(g, new_->s.s, new_->s.n);
        done++;
      }
      if (p >= e)
        break;
      const char *nx = g_utf8_next_char(p);
      g_string_append_len(g, p, nx - p);
      p = nx;
      if (!size_ok(c, at, g->len))
        return g_string_free(g, TRUE), NULL;
    }
  } else {
    const char *p = s->s.s, *e = s->s.s + s->s.n;
    gint64 done = 0;
    while (p < e && (count < 0 || done < count)) {
      const char *f = memfind(p, (gsize)(e - p), old->s.s, old->s.n);
      if (!f)
        break;
      g_string_append_len(g, p, f - p);
      g_string_append_len(g, new_->s.s, new_->s.n);
      p = f + old->s.n;
      done++;
      if (!size_ok(c, at, g->len))
        return g_string_free(g, TRUE), NULL;
    }
    g_string_append_len(g, p, e - p);
  }
  if (!size_ok(c, at, g->len) || !charge(c, at, g->len / 64))
    return g_string_free(g, TRUE), NULL;
  return v_gstring(g);
}

static val *
str_split(const val *s, const val *sep, gint64 maxsplit)
{
  val *l = v_list_new();
  const char *p = s->s.s, *e = s->s.s + s->s.n;
  if (!sep) { /* split on runs of whitespace, dropping empties */
    gint64 done = 0;
    while (p < e) {
      while (p < e && py_space(g_utf8_get_char(p)))
        p = g_utf8_next_char(p);
      if (p >= e)
        break;
      if (maxsplit >= 0 && done >= maxsplit) {
        const char *end = e;
        while (end > p && py_space(g_utf8_get_char(g_utf8_prev_char(end))))
          end = g_utf8_prev_char(end);
        g_ptr_array_add(l->list, v_str_len(p, (gsize)(end - p)));
        break;
      }
      const char *st = p;
      while (p < e && !py_space(g_utf8_get_char(p)))
        p = g_utf8_next_char(p);
      g_ptr_array_add(l->list, v_str_len(st, (gsize)(p - st)));
      done++;
    }
    return l;
  }
  gint64 done = 0;
  for (;;) {
    const char *f =
        (maxsplit < 0 || done < maxsplit) ? memfind(p, (gsize)(e - p), sep->s.s, sep->s.n) : NULL;
    if (!f) {
      g_ptr_array_add(l->list, v_str_len(p, (gsize)(e - p)));
      break;
    }
    g_ptr_array_add(l->list, v_str_len(p, (gsize)(f - p)));
    p = f + sep->s.n;
    done++;
  }
  return l;
}

static val *
str_case(const val *s, int mode /* 0 lower 1 upper 2 title 3 capitalize */)
{
  if (mode == 0) {
    char *r = g_utf8_strdown(s->s.s, (gssize)s->s.n);
    return v_str_take(r, strlen(r));
  }
  if (mode == 1) {
    char *r = g_utf8_strup(s->s.s, (gssize)s->s.n);
    return v_str_take(r, strlen(r));
  }
  GString *g = g_string_new(NULL);
  gboolean prev_cased = FALSE, first = TRUE;
  for (const char *p = s->s.s; p < s->s.s + s->s.n; p = g_utf8_next_char(p)) {
    gunichar u = g_utf8_get_char(p);
    gunichar o;
    if (mode == 2)
      o = prev_cased ? g_unichar_tolower(u) : g_unichar_toupper(u);
    else
      o = first ? g_unichar_toupper(u) : g_unichar_tolower(u);
    g_string_append_unichar(g, o);
    prev_cased = g_unichar_isalpha(u);
    first = FALSE;
  }
  return v_gstring(g);
}

/* Python-style index normalisation; returns FALSE when out of range. */
static gboolean
norm_index(gint64 *i, gint64 n)
{
  if (*i < 0)
    *i += n;
  return *i >= 0 && *i < n;
}

static val *
slice_val(ctx *c, const node *at, val *obj, val *vstart, val *vstop, val *vstep)
{
  gint64 step = vstep && vstep->t != V_NONE && vstep->t != V_UNDEF ? num_i(vstep) : 1;
  if (step == 0)
    return efail(c, at, WH_CHAT_ERROR_RUNTIME, "slice step cannot be zero");
  gint64 n;
  if (obj->t == V_LIST)
    n = obj->list->len;
  else if (obj->t == V_STR)
    n = (gint64)u8_len(obj);
  else
    return efail(c, at, WH_CHAT_ERROR_RUNTIME, "cannot slice a %s", type_name(obj));
  gint64 start, stop;
  gboolean has_start = vstart && vstart->t != V_NONE && vstart->t != V_UNDEF;
  gboolean has_stop = vstop && vstop->t != V_NONE && vstop->t != V_UNDEF;
  if ((has_start && !is_num(vstart)) || (has_stop && !is_num(vstop)) ||
      (vstep && vstep->t != V_NONE && vstep->t != V_UNDEF && !is_num(vstep)))
    return efail(c, at, WH_CHAT_ERROR_RUNTIME, "slice indices must be integers");
  if (step > 0) {
    start = has_start ? num_i(vstart) : 0;
    stop = has_stop ? num_i(vstop) : n;
    if (start < 0)
      start = MAX(start + n, 0);
    if (stop < 0)
      stop = MAX(stop + n, 0);
    start = MIN(start, n);
    stop = MIN(stop, n);
  } else {
    start = has_start ? num_i(vstart) : n - 1;
    stop = has_stop ? num_i(vstop) : -1 - n;
    if (start < 0)
      start = MAX(start + n, -1);
    else
      start = MIN(start, n - 1);
    if (stop < 0)
      stop = MAX(stop + n, -1);
    else
      stop = MIN(stop, n - 1);
  }
  if (!charge(c, at, (guint64)n / 16))
    return NULL;
  if (obj->t == V_LIST) {
    val *l = v_list_new();
    for (gint64 i = start; step > 0 ? i < stop : i > stop; i += step)
      g_ptr_array_add(l->list, val_ref(g_ptr_array_index(obj->list, i)));
    return l;
  }
  /* strings: index code points */
  const char **cps = g_new(const char *, n + 1);
  gint64 k = 0;
  for (const char *p = obj->s.s; k < n; p = g_utf8_next_char(p))
    cps[k++] = p;
  cps[n] = obj->s.s + obj->s.n;
  GString *g = g_string_new(NULL);
  for (gint64 i = start; step > 0 ? i < stop : i > stop; i += step)
    g_string_append_len(g, cps[i], cps[i + 1] - cps[i]);
  g_free(cps);
  return v_gstring(g);
}

/* obj[key] / obj.key. Returns a new reference; undefined when missing. */
static val *
get_item(val *obj, val *key)
{
  if (obj->t == V_DICT || obj->t == V_NS) {
    int i = dict_find(obj, key);
    return i >= 0 ? val_ref(g_ptr_array_index(obj->d.vals, i)) : V_UNDEFINED;
  }
  if (obj->t == V_LIST && (key->t == V_INT || key->t == V_BOOL)) {
    gint64 i = num_i(key);
    if (!norm_index(&i, obj->list->len))
      return V_UNDEFINED;
    return val_ref(g_ptr_array_index(obj->list, i));
  }
  if (obj->t == V_STR && (key->t == V_INT || key->t == V_BOOL)) {
    gint64 i = num_i(key);
    if (!norm_index(&i, (gint64)u8_len(obj)))
      return V_UNDEFINED;
    const char *p = g_utf8_offset_to_pointer(obj->s.s, (glong)i);
    return v_str_len(p, (gsize)(g_utf8_next_char(p) - p));
  }
  return V_UNDEFINED;
}

static const char *const str_methods[] = {
    "strip",   "lstrip",  "rstrip",     "split",        "rsplit",       "startswith", "endswith",
    "replace", "upper",   "lower",      "title",        "capitalize",   "find",       "rfind",
    "count",   "format",  "join",       "isdigit",      "isalpha",      "isalnum",    "isspace",
    "islower", "isupper", "splitlines", "removeprefix", "removesuffix", "index",      NULL};
static const char *const dict_methods[] = {"get", "items", "keys", "values", NULL};
static const char *const list_methods[] = {"append", "pop", "index", "count", NULL};

static const char *
find_name(const char *const *list, const char *name)
{
  for (int i = 0; list[i]; i++)
    if (!strcmp(list[i], name))
      return list[i];
  return NULL;
}

static val *
v_func(const char *name, val *self)
{
  val *f = val_new(V_FUNC);
  f->fn.name = name;
  f->fn.self = val_ref(self);
  return f;
}

static val *
get_attr(val *obj, const char *name)
{
  const char *m = NULL;
  if (obj->t == V_DICT || obj->t == V_NS) {
    /* `d.name` is getattr first, as in Jinja2: dict methods win over keys. */
    if (obj->t == V_DICT && (m = find_name(dict_methods, name)))
      return v_func(m, obj);
    val *v = dict_get_str(obj, name);
    return v ? val_ref(v) : V_UNDEFINED;
  }
  if (obj->t == V_STR && (m = find_name(str_methods, name)))
    return v_func(m, obj);
  if (obj->t == V_LIST && (m = find_name(list_methods, name)))
    return v_func(m, obj);
  return V_UNDEFINED;
}

/* ---- calls ---- */

typedef struct {
  GPtrArray *pos; /* val* */
  GPtrArray *kwn; /* const char* */
  GPtrArray *kwv; /* val* */
} args;

static void
args_clear(args *a)
{
  if (a->pos)
    g_ptr_array_unref(a->pos);
  if (a->kwn)
    g_ptr_array_unref(a->kwn);
  if (a->kwv)
    g_ptr_array_unref(a->kwv);
}

static gboolean
eval_args(ctx *c, scope *s, node *call, args *a, val *first)
{
  a->pos = g_ptr_array_new_with_free_func((GDestroyNotify)val_unref);
  a->kwn = g_ptr_array_new();
  a->kwv = g_ptr_array_new_with_free_func((GDestroyNotify)val_unref);
  if (first)
    g_ptr_array_add(a->pos, val_ref(first));
  if (call->kids)
    for (guint i = 0; i < call->kids->len; i++) {
      val *v = eval(c, s, g_ptr_array_index(call->kids, i));
      if (!v)
        return FALSE;
      g_ptr_array_add(a->pos, v);
    }
  if (call->kids2)
    for (guint i = 0; i < call->kids2->len; i++) {
      val *v = eval(c, s, g_ptr_array_index(call->kids2, i));
      if (!v)
        return FALSE;
      g_ptr_array_add(a->kwn, g_ptr_array_index(call->names, i));
      g_ptr_array_add(a->kwv, v);
    }
  return TRUE;
}

/* Argument @i by position or by keyword @name; NULL when absent. Borrowed. */
static val *
arg(const args *a, guint i, const char *name)
{
  if (i < a->pos->len)
    return g_ptr_array_index(a->pos, i);
  if (name)
    for (guint k = 0; k < a->kwn->len; k++)
      if (!strcmp(g_ptr_array_index(a->kwn, k), name))
        return g_ptr_array_index(a->kwv, k);
  return NULL;
}

static val *
need_str(ctx *c, const node *at, val *v, const char *what)
{
  if (!v || v->t != V_STR)
    return efail(c, at, WH_CHAT_ERROR_RUNTIME, "%s must be a string, not %s", what,
                 v ? type_name(v) : "missing");
  return v;
}

static val *call_macro(ctx *c, const node *at, val *m, args *a);
static val *apply_filter(ctx *c, const node *at, const char *name, args *a);
static int apply_test(ctx *c, const node *at, const char *name, val *v, args *a, guint first);

static void
append_strftime(GString *g, const char *fmt, gint64 now)
{
  static const char *const mon[] = {"January",   "February", "March",    "April",
                                    "May",       "June",     "July",     "August",
                                    "September", "October",  "November", "December"};
  static const char *const wday[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                     "Friday", "Saturday", "Sunday"};
  GDateTime *dt = g_date_time_new_from_unix_utc(now);
  if (!dt)
    return;
  for (const char *p = fmt; *p; p++) {
    if (*p != '%' || !p[1]) {
      g_string_append_c(g, *p);
      continue;
    }
    p++;
    int m = g_date_time_get_month(dt) - 1, w = g_date_time_get_day_of_week(dt) - 1;
    switch (*p) {
    case 'Y':
      g_string_append_printf(g, "%d", g_date_time_get_year(dt));
      break;
    case 'y':
      g_string_append_printf(g, "%02d", g_date_time_get_year(dt) % 100);
      break;
    case 'm':
      g_string_append_printf(g, "%02d", m + 1);
      break;
    case 'd':
      g_string_append_printf(g, "%02d", g_date_time_get_day_of_month(dt));
      break;
    case 'e':
      g_string_append_printf(g, "%2d", g_date_time_get_day_of_month(dt));
      break;
    case 'j':
      g_string_append_printf(g, "%03d", g_date_time_get_day_of_year(dt));
      break;
    case 'H':
      g_string_append_printf(g, "%02d", g_date_time_get_hour(dt));
      break;
    case 'I':
      g_string_append_printf(g, "%02d", (g_date_time_get_hour(dt) + 11) % 12 + 1);
      break;
    case 'M':
      g_string_append_printf(g, "%02d", g_date_time_get_minute(dt));
      break;
    case 'S':
      g_string_append_printf(g, "%02d", g_date_time_get_second(dt));
      break;
    case 'p':
      g_string_append(g, g_date_time_get_hour(dt) < 12 ? "AM" : "PM");
      break;
    case 'b':
      g_string_append_len(g, mon[m], 3);
      break;
    case 'B':
      g_string_append(g, mon[m]);
      break;
    case 'a':
      g_string_append_len(g, wday[w], 3);
      break;
    case 'A':
      g_string_append(g, wday[w]);
      break;
    case 'Z':
      g_string_append(g, "UTC");
      break;
    case 'z':
      g_string_append(g, "+0000");
      break;
    case '%':
      g_string_append_c(g, '%');
      break;
    default:
      g_string_append_c(g, '%');
      g_string_append_c(g, *p);
    }
  }
  g_date_time_unref(dt);
}

/* str.format with {} / {0} / {name} fields (format specs are ignored). */
static val *
str_format(ctx *c, const node *at, const val *fmt, args *a)
{
  GString *g = g_string_new(NULL);
  guint auto_i = 0;
  const char *p = fmt->s.s, *e = fmt->s.s + fmt->s.n;
  while (p < e) {
    if (*p == '{' && p + 1 < e && p[1] == '{') {
      g_string_append_c(g, '{');
      p += 2;
      continue;
    }
    if (*p == '}' && p + 1 < e && p[1] == '}') {
      g_string_append_c(g, '}');
      p += 2;
      continue;
    }
    if (*p != '{') {
      g_string_append_c(g, *p++);
      continue;
    }
    const char *q = memchr(p, '}', (gsize)(e - p));
    if (!q) {
      g_string_free(g, TRUE);
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "str.format: unmatched '{'");
    }
    char *field = g_strndup(p + 1, (gsize)(q - p - 1));
    char *colon = strchr(field, ':');
    if (colon)
      *colon = 0;
    val *v = NULL;
    if (!field[0])
      v = arg(a, auto_i++, NULL);
    else if (g_ascii_isdigit(field[0]))
      v = arg(a, (guint)atoi(field), NULL);
    else
      v = arg(a, G_MAXUINT, field);
    g_free(field);
    if (!v) {
      g_string_free(g, TRUE);
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "str.format: missing argument");
    }
    val_str(g, v);
    p = q + 1;
  }
  if (!size_ok(c, at, g->len))
    return g_string_free(g, TRUE), NULL;
  return v_gstring(g);
}

static val *
call_method(ctx *c, const node *at, val *self, const char *m, args *a)
{
  val *a0 = arg(a, 0, NULL), *a1 = arg(a, 1, NULL);
  if (self->t == V_STR) {
    if (!charge(c, at, self->s.n / 64))
      return NULL;
    if (!strcmp(m, "strip") || !strcmp(m, "lstrip") || !strcmp(m, "rstrip")) {
      val *chars = a0 && a0->t != V_NONE ? need_str(c, at, a0, "strip() argument") : NULL;
      if (a0 && a0->t != V_NONE && !chars)
        return NULL;
      return str_strip(self, chars, m[0] != 'r', m[0] != 'l');
    }
    if (!strcmp(m, "split") || !strcmp(m, "rsplit")) {
      val *sep = arg(a, 0, "sep");
      val *mx = arg(a, 1, "maxsplit");
      if (sep && sep->t == V_NONE)
        sep = NULL;
      if (sep && (sep->t != V_STR || sep->s.n == 0))
        return efail(c, at, WH_CHAT_ERROR_RUNTIME,
                     "split(): separator must be a non-empty "
                     "string");
      gint64 maxsplit = mx && is_num(mx) ? num_i(mx) : -1;
      if (m[0] == 'r' && maxsplit >= 0 && sep) {
        /* rsplit with a limit: split fully, then re-join the leading pieces. */
        val *all = str_split(self, sep, -1);
        if ((gint64)all->list->len - 1 <= maxsplit)
          return all;
        guint keep = all->list->len - (guint)maxsplit;
        GString *head = g_string_new(NULL);
        for (guint i = 0; i < keep; i++) {
          if (i)
            g_string_append_len(head, sep->s.s, sep->s.n);
          val *piece = g_ptr_array_index(all->list, i);
          g_string_append_len(head, piece->s.s, piece->s.n);
        }
        val *l = v_list_new();
        g_ptr_array_add(l->list, v_gstring(head));
        for (guint i = keep; i < all->list->len; i++)
          g_ptr_array_add(l->list, val_ref(g_ptr_array_index(all->list, i)));
        val_unref(all);
        return l;
      }
      return str_split(self, sep, maxsplit);
    }
    if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
      if (!a0)
        return efail(c, at, WH_CHAT_ERROR_RUNTIME, "%s() takes an argument", m);
      gboolean ends = m[0] == 'e';
      guint n = a0->t == V_LIST ? a0->list->len : 1;
      for (guint i = 0; i < n; i++) {
        val *x = a0->t == V_LIST ? g_ptr_array_index(a0->list, i) : a0;
        if (!need_str(c, at, x, "startswith/endswith argument"))
          return NULL;
        if (x->s.n <= self->s.n &&
            memcmp(self->s.s + (ends ? self->s.n - x->s.n : 0), x->s.s, x->s.n) == 0)
          return v_bool(TRUE);
      }
      return v_bool(FALSE);
    }
    if (!strcmp(m, "replace")) {
      if (!need_str(c, at, a0, "replace() argument") || !need_str(c, at, a1, "replace() argument"))
        return NULL;
      val *cnt = arg(a, 2, "count");
      return str_replace(c, at, self, a0, a1, cnt && is_num(cnt) ? num_i(cnt) : -1);
    }
    if (!strcmp(m, "upper"))
      return str_case(self, 1);
    if (!strcmp(m, "lower"))
      return str_case(self, 0);
    if (!strcmp(m, "title"))
      return str_case(self, 2);
    if (!strcmp(m, "capitalize"))
      return str_case(self, 3);
    if (!strcmp(m, "find") || !strcmp(m, "rfind") || !strcmp(m, "index") || !strcmp(m, "count")) {
      if (!need_str(c, at, a0, "argument"))
        return NULL;
      if (!strcmp(m, "count")) {
        gint64 cnt = 0;
        if (a0->s.n == 0)
          return v_int((gint64)u8_len(self) + 1);
        const char *p = self->s.s, *e = self->s.s + self->s.n;
        const char *f;
        while ((f = memfind(p, (gsize)(e - p), a0->s.s, a0->s.n))) {
          cnt++;
          p = f + a0->s.n;
        }
        return v_int(cnt);
      }
      const char *f = NULL;
      if (m[0] == 'r') {
        for (const char *p = self->s.s;
             (p = memfind(p, (gsize)(self->s.s + self->s.n - p), a0->s.s, a0->s.n)); p++) {
          f = p;
          if (p >= self->s.s + self->s.n)
            break;
        }
      } else {
        f = memfind(self->s.s, self->s.n, a0->s.s, a0->s.n);
      }
      if (!f && !strcmp(m, "index"))
        return efail(c, at, WH_CHAT_ERROR_RUNTIME, "substring not found");
      return v_int(f ? g_utf8_pointer_to_offset(self->s.s, f) : -1);
    }
    if (!strcmp(m, "format"))
      return str_format(c, at, self, a);
    if (!strcmp(m, "join")) {
      if (!a0 || a0->t != V_LIST)
        return efail(c, at, WH_CHAT_ERROR_RUNTIME, "join() takes a list");
      GString *g = g_string_new(NULL);
      for (guint i = 0; i < a0->list->len; i++) {
        if (i)
          g_string_append_len(g, self->s.s, self->s.n);
        val_str(g, g_ptr_array_index(a0->list, i));
        if (!size_ok(c, at, g->len))
          return g_string_free(g, TRUE), NULL;
      }
      return v_gstring(g);
    }
    if (g_str_has_prefix(m, "is")) {
      if (self->s.n == 0)
        return v_bool(FALSE);
      gboolean any_cased = FALSE;
      for (const char *p = self->s.s; p < self->s.s + self->s.n; p = g_utf8_next_char(p)) {
        gunichar u = g_utf8_get_char(p);
        gboolean ok = TRUE;
        if (!strcmp(m, "isdigit"))
          ok = g_unichar_isdigit(u);
        else if (!strcmp(m, "isalpha"))
          ok = g_unichar_isalpha(u);
        else if (!strcmp(m, "isalnum"))
          ok = g_unichar_isalnum(u);
        else if (!strcmp(m, "isspace"))
          ok = py_space(u);
        else if (!strcmp(m, "islower")) {
          ok = !g_unichar_isupper(u);
          any_cased |= g_unichar_islower(u);
        } else if (!strcmp(m, "isupper")) {
          ok = !g_unichar_islower(u);
          any_cased |= g_unichar_isupper(u);
        }
        if (!ok)
          return v_bool(FALSE);
      }
      if (!strcmp(m, "islower") || !strcmp(m, "isupper"))
        return v_bool(any_cased);
      return v_bool(TRUE);
    }
    if (!strcmp(m, "splitlines")) {
      val *l = v_list_new();
      const char *p = self->s.s, *e = self->s.s + self->s.n;
      while (p < e) {
        const char *st = p;
        while (p < e && *p != '\n' && *p != '\r')
          p++;
        g_ptr_array_add(l->list, v_str_len(st, (gsize)(p - st)));
        if (p < e && *p == '\r' && p + 1 < e && p[1] == '\n')
          p++;
        if (p < e)
          p++;
      }
      return l;
    }
    if (!strcmp(m, "removeprefix") || !strcmp(m, "removesuffix")) {
      if (!need_str(c, at, a0, "argument"))
        return NULL;
      gboolean suf = m[6] == 's';
      if (a0->s.n <= self->s.n &&
          memcmp(self->s.s + (suf ? self->s.n - a0->s.n : 0), a0->s.s, a0->s.n) == 0)
        return v_str_len(self->s.s + (suf ? 0 : a0->s.n), self->s.n - a0->s.n);
      return val_ref(self);
    }
  }
  if (self->t == V_DICT) {
    if (!strcmp(m, "get")) {
      if (!a0)
        return efail(c, at, WH_CHAT_ERROR_RUNTIME, "get() takes a key");
      int i = dict_find(self, a0);
      if (i >= 0)
        return val_ref(g_ptr_array_index(self->d.vals, i));
      return a1 ? val_ref(a1) : V_NONEV;
    }
    val *l = v_list_new();
    for (guint i = 0; i < self->d.keys->len; i++) {
      val *k = g_ptr_array_index(self->d.keys, i), *v = g_ptr_array_index(self->d.vals, i);
      if (!strcmp(m, "keys"))
        g_ptr_array_add(l->list, val_ref(k));
      else if (!strcmp(m, "values"))
        g_ptr_array_add(l->list, val_ref(v));
      else {
        val *pair = v_list_new();
        pair->tuple = TRUE;
        g_ptr_array_add(pair->list, val_ref(k));
        g_ptr_array_add(pair->list, val_ref(v));
        g_ptr_array_add(l->list, pair);
      }
    }
    return l;
  }
  if (self->t == V_LIST) {
    if (!strcmp(m, "append")) {
      if (!a0)
        return efail(c, at, WH_CHAT_ERROR_RUNTIME, "append() takes an argument");
      if (self->list->len >= c->lim.max_output / 8)
        return efail(c, at, WH_CHAT_ERROR_LIMIT, "list grew too long");
      arena_add(c, self);
      g_ptr_array_add(self->list, val_ref(a0));
      return V_NONEV;
    }
    if (!strcmp(m, "pop")) {
      gint64 i = a0 && is_num(a0) ? num_i(a0) : -1;
      if (!norm_index(&i, self->list->len))
        return efail(c, at, WH_CHAT_ERROR_RUNTIME, "pop index out of range");
      return g_ptr_array_steal_index(self->list, (guint)i);
    }
    if (!strcmp(m, "index") || !strcmp(m, "count")) {
      gint64 cnt = 0;
      for (guint i = 0; i < self->list->len; i++)
        if (a0 && val_eq(g_ptr_array_index(self->list, i), a0)) {
          if (m[0] == 'i')
            return v_int(i);
          cnt++;
        }
      if (m[0] == 'i')
        return efail(c, at, WH_CHAT_ERROR_RUNTIME, "value is not in list");
      return v_int(cnt);
    }
  }
  return efail(c, at, WH_CHAT_ERROR_RUNTIME, "unsupported method %s.%s()", type_name(self), m);
}

static val *
call_global(ctx *c, const node *at, const char *name, args *a)
{
  if (!strcmp(name, "raise_exception")) {
    val *msg = arg(a, 0, NULL);
    GString *g = g_string_new(NULL);
    if (msg)
      val_str(g, msg);
    efail(c, at, WH_CHAT_ERROR_RAISED, "%s", g->str);
    g_string_free(g, TRUE);
    return NULL;
  }
  if (!strcmp(name, "range")) {
    gint64 start = 0, stop, step = 1;
    for (guint i = 0; i < a->pos->len; i++)
      if (!is_num(g_ptr_array_index(a->pos, i)))
        return efail(c, at, WH_CHAT_ERROR_RUNTIME, "range() takes integers");
    if (a->pos->len == 1) {
      stop = num_i(g_ptr_array_index(a->pos, 0));
    } else if (a->pos->len >= 2) {
      start = num_i(g_ptr_array_index(a->pos, 0));
      stop = num_i(g_ptr_array_index(a->pos, 1));
      if (a->pos->len >= 3)
        step = num_i(g_ptr_array_index(a->pos, 2));
    } else {
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "range() takes 1 to 3 arguments");
    }
    if (step == 0)
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "range() step must not be zero");
    double count = ceil(((double)stop - (double)start) / (double)step);
    if (count > (double)(c->lim.max_steps - MIN(c->steps, c->lim.max_steps)))
      return efail(c, at, WH_CHAT_ERROR_LIMIT, "range() too long");
    val *l = v_list_new();
    for (gint64 i = start; step > 0 ? i < stop : i > stop; i += step)
      g_ptr_array_add(l->list, v_int(i));
    return l;
  }
  if (!strcmp(name, "namespace") || !strcmp(name, "dict")) {
    val *d = v_dict_new(name[0] == 'n' ? V_NS : V_DICT);
    val *init = arg(a, 0, NULL);
    if (init && (init->t == V_DICT || init->t == V_NS))
      for (guint i = 0; i < init->d.keys->len; i++)
        dict_set(d, val_ref(g_ptr_array_index(init->d.keys, i)),
                 val_ref(g_ptr_array_index(init->d.vals, i)));
    for (guint i = 0; i < a->kwn->len; i++)
      dict_set(d, v_str(g_ptr_array_index(a->kwn, i)), val_ref(g_ptr_array_index(a->kwv, i)));
    return d;
  }
  if (!strcmp(name, "strftime_now")) {
    val *fmt = need_str(c, at, arg(a, 0, NULL), "strftime_now() format");
    if (!fmt)
      return NULL;
    GString *g = g_string_new(NULL);
    append_strftime(g, fmt->s.s, c->now);
    return v_gstring(g);
  }
  return efail(c, at, WH_CHAT_ERROR_RUNTIME, "unknown function %s()", name);
}

static const char *const global_funcs[] = {"raise_exception", "range", "namespace", "dict",
                                           "strftime_now",    NULL};

static val *
eval_call(ctx *c, scope *s, node *nd)
{
  val *fn = eval(c, s, nd->a);
  if (!fn)
    return NULL;
  args a = {0};
  val *r = NULL;
  if (!charge(c, nd, 1) || !eval_args(c, s, nd, &a, NULL))
    goto out;
  if (fn->t == V_MACRO)
    r = call_macro(c, nd, fn, &a);
  else if (fn->t == V_FUNC && fn->fn.self)
    r = call_method(c, nd, fn->fn.self, fn->fn.name, &a);
  else if (fn->t == V_FUNC)
    r = call_global(c, nd, fn->fn.name, &a);
  else if (fn->t == V_UNDEF && nd->a->k == N_NAME)
    r = efail(c, nd, WH_CHAT_ERROR_RUNTIME, "'%s' is undefined", nd->a->str);
  else if (fn->t == V_UNDEF && nd->a->k == N_ATTR)
    r = efail(c, nd, WH_CHAT_ERROR_RUNTIME, "no method or attribute '%s'", nd->a->str);
  else
    r = efail(c, nd, WH_CHAT_ERROR_RUNTIME, "a %s is not callable", type_name(fn));
out:
  args_clear(&a);
  val_unref(fn);
  return r;
}

static val *
call_macro(ctx *c, const node *at, val *m, args *a)
{
  node *def = m->m.def;
  if (c->depth >= c->lim.max_depth)
    return efail(c, at, WH_CHAT_ERROR_LIMIT, "macro recursion deeper than %u", c->lim.max_depth);
  scope *s = scope_push(m->m.closure);
  for (guint i = 0; i < def->names->len; i++) {
    const char *pn = g_ptr_array_index(def->names, i);
    val *v = arg(a, i, pn);
    if (v) {
      scope_set(s, pn, val_ref(v));
    } else if (g_ptr_array_index(def->kids2, i)) {
      v = eval(c, s, g_ptr_array_index(def->kids2, i));
      if (!v) {
        scope_pop(c, s);
        return NULL;
      }
      scope_set(s, pn, v);
    } else {
      scope_set(s, pn, V_UNDEFINED);
    }
  }
  GString *saved = c->out;
  c->out = g_string_new(NULL);
  c->depth++;
  xres r = exec_body(c, s, def->kids);
  c->depth--;
  GString *res = c->out;
  c->out = saved;
  scope_pop(c, s);
  if (r == XR_ERR) {
    g_string_free(res, TRUE);
    return NULL;
  }
  return v_gstring(res);
}

/* ---- binary operators ---- */

/* Python's printf-style `str % args` for %s %r %d %i %f %%; a tuple supplies several
 * arguments, anything else one. */
static val *
str_percent(ctx *c, const node *at, const val *fmt, val *args_v)
{
  GString *g = g_string_new(NULL);
  guint next = 0;
  gboolean many = args_v->t == V_LIST && args_v->tuple;
  const char *p = fmt->s.s, *e = fmt->s.s + fmt->s.n;
  while (p < e) {
    if (*p != '%') {
      g_string_append_c(g, *p++);
      continue;
    }
    if (p + 1 >= e) {
      g_string_free(g, TRUE);
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "incomplete format");
    }
    char k = p[1];
    p += 2;
    if (k == '%') {
      g_string_append_c(g, '%');
      continue;
    }
    val *x = NULL;
    if (many)
      x = next < args_v->list->len ? g_ptr_array_index(args_v->list, next) : NULL;
    else
      x = next == 0 ? args_v : NULL;
    next++;
    if (!x) {
      g_string_free(g, TRUE);
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "not enough arguments for format string");
    }
    if (k == 's')
      val_str(g, x);
    else if (k == 'r')
      val_repr(g, x);
    else if ((k == 'd' || k == 'i') && is_num(x))
      g_string_append_printf(g, "%" G_GINT64_FORMAT, num_i(x));
    else if (k == 'f' && is_num(x))
      g_string_append_printf(g, "%f", num_f(x));
    else {
      g_string_free(g, TRUE);
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "unsupported format %%%c for a %s", k,
                   type_name(x));
    }
    if (!size_ok(c, at, g->len))
      return g_string_free(g, TRUE), NULL;
  }
  return v_gstring(g);
}

static val *
binop(ctx *c, const node *at, const char *op, val *a, val *b)
{
  if (!strcmp(op, "==") || !strcmp(op, "!="))
    return v_bool(val_eq(a, b) == (op[0] == '='));
  if (!strcmp(op, "in") || !strcmp(op, "notin")) {
    gboolean neg = op[0] == 'n', found = FALSE;
    if (b->t == V_STR) {
      if (a->t != V_STR)
        return efail(c, at, WH_CHAT_ERROR_RUNTIME, "'in <string>' requires a string, not %s",
                     type_name(a));
      if (!charge(c, at, b->s.n / 64))
        return NULL;
      found = memfind(b->s.s, b->s.n, a->s.s, a->s.n) != NULL;
    } else if (b->t == V_LIST) {
      for (guint i = 0; i < b->list->len && !found; i++)
        found = val_eq(a, g_ptr_array_index(b->list, i));
    } else if (b->t == V_DICT || b->t == V_NS) {
      found = dict_find(b, a) >= 0;
    } else if (b->t == V_UNDEF) {
      found = FALSE;
    } else {
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "argument of type %s is not iterable",
                   type_name(b));
    }
    return v_bool(found != neg);
  }
  if (!strcmp(op, "~")) {
    GString *g = g_string_new(NULL);
    val_str(g, a);
    val_str(g, b);
    if (!size_ok(c, at, g->len) || !charge(c, at, g->len / 64))
      return g_string_free(g, TRUE), NULL;
    return v_gstring(g);
  }
  if (op[0] == '<' || op[0] == '>') {
    int cmp;
    if (a->t == V_LIST && b->t == V_LIST) { /* lexicographic, as Python */
      guint i = 0;
      while (i < a->list->len && i < b->list->len &&
             val_eq(g_ptr_array_index(a->list, i), g_ptr_array_index(b->list, i)))
        i++;
      if (i < a->list->len && i < b->list->len)
        return binop(c, at, op, g_ptr_array_index(a->list, i), g_ptr_array_index(b->list, i));
      gint64 la = a->list->len, lb = b->list->len;
      cmp = (la > lb) - (la < lb);
    } else if (is_num(a) && is_num(b)) {
      double x = num_f(a), y = num_f(b);
      if (a->t != V_FLOAT && b->t != V_FLOAT)
        cmp = (num_i(a) > num_i(b)) - (num_i(a) < num_i(b));
      else
        cmp = (x > y) - (x < y);
    } else if (a->t == V_STR && b->t == V_STR) {
      int r = memcmp(a->s.s, b->s.s, MIN(a->s.n, b->s.n));
      cmp = r ? (r > 0) - (r < 0) : (a->s.n > b->s.n) - (a->s.n < b->s.n);
    } else {
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "'%s' not supported between %s and %s", op,
                   type_name(a), type_name(b));
    }
    gboolean r = !strcmp(op, "<")    ? cmp < 0
                 : !strcmp(op, ">")  ? cmp > 0
                 : !strcmp(op, "<=") ? cmp <= 0
                                     : cmp >= 0;
    return v_bool(r);
  }
  if (!strcmp(op, "+") && a->t == V_STR && b->t == V_STR) {
    if (!size_ok(c, at, a->s.n + b->s.n) || !charge(c, at, (a->s.n + b->s.n) / 64))
      return NULL;
    char *r = g_malloc(a->s.n + b->s.n + 1);
    memcpy(r, a->s.s, a->s.n);
    memcpy(r + a->s.n, b->s.s, b->s.n);
    r[a->s.n + b->s.n] = 0;
    return v_str_take(r, a->s.n + b->s.n);
  }
  if (!strcmp(op, "+") && a->t == V_LIST && b->t == V_LIST) {
    if (!size_ok(c, at, 8 * (a->list->len + b->list->len)) ||
        !charge(c, at, (a->list->len + b->list->len) / 16))
      return NULL;
    val *l = v_list_new();
    for (guint i = 0; i < a->list->len; i++)
      g_ptr_array_add(l->list, val_ref(g_ptr_array_index(a->list, i)));
    for (guint i = 0; i < b->list->len; i++)
      g_ptr_array_add(l->list, val_ref(g_ptr_array_index(b->list, i)));
    return l;
  }
  if (!strcmp(op, "*") && ((a->t == V_STR && (b->t == V_INT || b->t == V_BOOL)) ||
                           (b->t == V_STR && (a->t == V_INT || a->t == V_BOOL)))) {
    val *sv = a->t == V_STR ? a : b;
    gint64 k = num_i(a->t == V_STR ? b : a);
    if (k <= 0)
      return v_str("");
    if ((double)sv->s.n * (double)k > (double)c->lim.max_output)
      return size_ok(c, at, c->lim.max_output + 1), NULL;
    GString *g = g_string_new(NULL);
    for (gint64 i = 0; i < k; i++)
      g_string_append_len(g, sv->s.s, sv->s.n);
    return v_gstring(g);
  }
  if (!strcmp(op, "*") && ((a->t == V_LIST && (b->t == V_INT || b->t == V_BOOL)) ||
                           (b->t == V_LIST && (a->t == V_INT || a->t == V_BOOL)))) {
    val *lv = a->t == V_LIST ? a : b;
    gint64 k = num_i(a->t == V_LIST ? b : a);
    val *l = v_list_new();
    if (k <= 0)
      return l;
    if ((double)lv->list->len * (double)k * 8 > (double)c->lim.max_output ||
        !charge(c, at, (guint64)(lv->list->len * (guint64)k) / 16)) {
      val_unref(l);
      return size_ok(c, at, c->lim.max_output + 1), NULL;
    }
    for (gint64 i = 0; i < k; i++)
      for (guint j = 0; j < lv->list->len; j++)
        g_ptr_array_add(l->list, val_ref(g_ptr_array_index(lv->list, j)));
    return l;
  }
  if (!strcmp(op, "%") && a->t == V_STR)
    return str_percent(c, at, a, b);
  if (!is_num(a) || !is_num(b))
    return efail(c, at, WH_CHAT_ERROR_RUNTIME, "unsupported operand types for %s: %s and %s", op,
                 type_name(a), type_name(b));
  gboolean ints = a->t != V_FLOAT && b->t != V_FLOAT;
  gint64 x = num_i(a), y = num_i(b), r;
  double fx = num_f(a), fy = num_f(b);
  switch (op[0]) {
  case '+':
    if (ints && !__builtin_add_overflow(x, y, &r))
      return v_int(r);
    return v_float(fx + fy);
  case '-':
    if (ints && !__builtin_sub_overflow(x, y, &r))
      return v_int(r);
    return v_float(fx - fy);
  case '*':
    if (op[1] == '*') {
      if (ints && y >= 0) {
        double pf = pow(fx, fy);
        if (fabs(pf) < 9e18) {
          gint64 acc = 1;
          for (gint64 i = 0; i < y && i < 64; i++)
            acc *= x;
          return v_int(acc);
        }
      }
      return v_float(pow(fx, fy));
    }
    if (ints && !__builtin_mul_overflow(x, y, &r))
      return v_int(r);
    return v_float(fx * fy);
  case '/':
    if (op[1] == '/') {
      if (ints) {
        if (y == 0)
          return efail(c, at, WH_CHAT_ERROR_RUNTIME, "integer division by zero");
        if (x == G_MININT64 && y == -1)
          return v_float(-(double)x);
        gint64 q = x / y;
        if ((x % y != 0) && ((x < 0) != (y < 0)))
          q--;
        return v_int(q);
      }
      if (fy == 0)
        return efail(c, at, WH_CHAT_ERROR_RUNTIME, "float division by zero");
      return v_float(floor(fx / fy));
    }
    if (fy == 0)
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "division by zero");
    return v_float(fx / fy);
  case '%':
    if (ints) {
      if (y == 0)
        return efail(c, at, WH_CHAT_ERROR_RUNTIME, "integer modulo by zero");
      if (y == -1)
        return v_int(0);
      gint64 m = x % y;
      if (m != 0 && ((m < 0) != (y < 0)))
        m += y;
      return v_int(m);
    }
    if (fy == 0)
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "float modulo by zero");
    {
      double m = fmod(fx, fy);
      if (m != 0 && ((m < 0) != (fy < 0)))
        m += fy;
      return v_float(m);
    }
  }
  return efail(c, at, WH_CHAT_ERROR_RUNTIME, "unknown operator %s", op);
}

static val *eval_inner(ctx *c, scope *s, node *nd);

/* Every evaluation and statement frame counts against EVAL_MAX_DEPTH, so macro recursion
 * times expression depth cannot exhaust the stack. */
static val *
eval(ctx *c, scope *s, node *nd)
{
  if (c->err)
    return NULL;
  if (++c->rec > EVAL_MAX_DEPTH) {
    c->rec--;
    return efail(c, nd, WH_CHAT_ERROR_LIMIT, "template nests too deeply");
  }
  val *r = eval_inner(c, s, nd);
  c->rec--;
  return r;
}

static val *
eval_inner(ctx *c, scope *s, node *nd)
{
  switch (nd->k) {
  case N_LIT:
    return val_ref(nd->lit);
  case N_NAME: {
    val *v = scope_lookup(s, nd->str);
    if (v)
      return val_ref(v);
    const char *g = find_name(global_funcs, nd->str);
    if (g)
      return v_func(g, NULL);
    return V_UNDEFINED;
  }
  case N_LIST: {
    val *l = v_list_new();
    l->tuple = nd->neg;
    for (guint i = 0; i < nd->kids->len; i++) {
      val *v = eval(c, s, g_ptr_array_index(nd->kids, i));
      if (!v)
        return val_unref(l), NULL;
      g_ptr_array_add(l->list, v);
    }
    return l;
  }
  case N_DICT: {
    val *d = v_dict_new(V_DICT);
    for (guint i = 0; i < nd->kids->len; i++) {
      val *k = eval(c, s, g_ptr_array_index(nd->kids, i));
      val *v = k ? eval(c, s, g_ptr_array_index(nd->kids2, i)) : NULL;
      if (!v) {
        val_unref(k);
        return val_unref(d), NULL;
      }
      dict_set(d, k, v);
    }
    return d;
  }
  case N_ATTR: {
    val *o = eval(c, s, nd->a);
    if (!o)
      return NULL;
    val *r = get_attr(o, nd->str);
    val_unref(o);
    return r;
  }
  case N_INDEX: {
    val *o = eval(c, s, nd->a);
    val *k = o ? eval(c, s, nd->b) : NULL;
    if (!k)
      return val_unref(o), NULL;
    val *r = get_item(o, k);
    if (r->t == V_UNDEF && k->t == V_STR)
      r = get_attr(o, k->s.s);
    val_unref(o);
    val_unref(k);
    return r;
  }
  case N_SLICE: {
    val *o = eval(c, s, nd->a);
    val *parts[3] = {NULL, NULL, NULL};
    node *pn[3] = {nd->b, nd->c, nd->d};
    val *r = NULL;
    if (!o)
      return NULL;
    for (int i = 0; i < 3; i++)
      if (pn[i] && !(parts[i] = eval(c, s, pn[i])))
        goto slice_out;
    r = slice_val(c, nd, o, parts[0], parts[1], parts[2]);
  slice_out:
    for (int i = 0; i < 3; i++)
      val_unref(parts[i]);
    val_unref(o);
    return r;
  }
  case N_CALL:
    return eval_call(c, s, nd);
  case N_FILTER: {
    val *v = eval(c, s, nd->a);
    if (!v)
      return NULL;
    args a = {0};
    val *r = NULL;
    if (eval_args(c, s, nd, &a, v))
      r = apply_filter(c, nd, nd->str, &a);
    args_clear(&a);
    val_unref(v);
    return r;
  }
  case N_TEST: {
    val *v = eval(c, s, nd->a);
    if (!v)
      return NULL;
    args a = {0};
    int r = -1;
    if (eval_args(c, s, nd, &a, NULL))
      r = apply_test(c, nd, nd->str, v, &a, 0);
    args_clear(&a);
    val_unref(v);
    if (r < 0)
      return NULL;
    return v_bool(nd->neg ? !r : r);
  }
  case N_BIN: {
    val *a = eval(c, s, nd->a);
    val *b = a ? eval(c, s, nd->b) : NULL;
    val *r = b ? binop(c, nd, nd->str, a, b) : NULL;
    val_unref(a);
    val_unref(b);
    return r;
  }
  case N_AND:
  case N_OR: {
    val *a = eval(c, s, nd->a);
    if (!a)
      return NULL;
    gboolean t = val_truthy(a);
    if ((nd->k == N_AND) != t)
      return a;
    val_unref(a);
    return eval(c, s, nd->b);
  }
  case N_NOT: {
    val *a = eval(c, s, nd->a);
    if (!a)
      return NULL;
    gboolean t = val_truthy(a);
    val_unref(a);
    return v_bool(!t);
  }
  case N_NEG:
  case N_POS: {
    val *a = eval(c, s, nd->a);
    if (!a)
      return NULL;
    val *r;
    if (!is_num(a))
      r = efail(c, nd, WH_CHAT_ERROR_RUNTIME, "bad operand type for unary %c: %s",
                nd->k == N_NEG ? '-' : '+', type_name(a));
    else if (nd->k == N_POS)
      r = a->t == V_FLOAT ? v_float(a->f) : v_int(num_i(a));
    else if (a->t == V_FLOAT)
      r = v_float(-a->f);
    else if (num_i(a) == G_MININT64)
      r = v_float(-(double)num_i(a));
    else
      r = v_int(-num_i(a));
    val_unref(a);
    return r;
  }
  case N_COND: {
    val *cond = eval(c, s, nd->b);
    if (!cond)
      return NULL;
    gboolean t = val_truthy(cond);
    val_unref(cond);
    if (t)
      return eval(c, s, nd->a);
    return nd->c ? eval(c, s, nd->c) : V_UNDEFINED;
  }
  default:
    return efail(c, nd, WH_CHAT_ERROR_RUNTIME, "not an expression");
  }
}

/* ---- filters ---- */

static int
sort_cmp(const val *a, const val *b, gboolean case_sensitive)
{
  if (is_num(a) && is_num(b)) {
    double x = num_f(a), y = num_f(b);
    return (x > y) - (x < y);
  }
  if (a->t == V_STR && b->t == V_STR) {
    if (!case_sensitive) {
      char *x = g_utf8_strdown(a->s.s, (gssize)a->s.n), *y = g_utf8_strdown(b->s.s, (gssize)b->s.n);
      int r = strcmp(x, y);
      g_free(x);
      g_free(y);
      return (r > 0) - (r < 0);
    }
    int r = memcmp(a->s.s, b->s.s, MIN(a->s.n, b->s.n));
    return r ? (r > 0) - (r < 0) : (a->s.n > b->s.n) - (a->s.n < b->s.n);
  }
  return (int)a->t - (int)b->t;
}

typedef struct {
  const char *attr;
  gboolean cs, rev, by_value;
} sort_opts;

static val *
attr_path(val *v, const char *path)
{
  /* "a.b" dotted attribute lookup; numbers index lists. */
  val *cur = val_ref(v);
  char **parts = g_strsplit(path, ".", -1);
  for (int i = 0; parts[i]; i++) {
    val *next;
    if (g_ascii_isdigit(parts[i][0]) && cur->t == V_LIST) {
      val *k = v_int(g_ascii_strtoll(parts[i], NULL, 10));
      next = get_item(cur, k);
      val_unref(k);
    } else {
      next = get_attr(cur, parts[i]);
    }
    val_unref(cur);
    cur = next;
  }
  g_strfreev(parts);
  return cur;
}

static int
sort_item_cmp(gconstpointer pa, gconstpointer pb, gpointer ud)
{
  const sort_opts *o = ud;
  val *a = *(val *const *)pa, *b = *(val *const *)pb;
  int r;
  if (o->attr) {
    val *x = attr_path(a, o->attr), *y = attr_path(b, o->attr);
    r = sort_cmp(x, y, o->cs);
    val_unref(x);
    val_unref(y);
  } else if (a->t == V_LIST && b->t == V_LIST && a->list->len == 2 && b->list->len == 2) {
    /* dictsort pairs */
    int idx = o->by_value ? 1 : 0;
    r = sort_cmp(g_ptr_array_index(a->list, idx), g_ptr_array_index(b->list, idx), o->cs);
  } else {
    r = sort_cmp(a, b, o->cs);
  }
  return o->rev ? -r : r;
}

/* An iterable as a list (new reference): lists as is, dict keys, string characters. */
static val *
as_list(ctx *c, const node *at, val *v)
{
  if (v->t == V_LIST)
    return val_ref(v);
  val *l = v_list_new();
  if (v->t == V_DICT || v->t == V_NS) {
    for (guint i = 0; i < v->d.keys->len; i++)
      g_ptr_array_add(l->list, val_ref(g_ptr_array_index(v->d.keys, i)));
  } else if (v->t == V_STR) {
    for (const char *p = v->s.s; p < v->s.s + v->s.n; p = g_utf8_next_char(p))
      g_ptr_array_add(l->list, v_str_len(p, (gsize)(g_utf8_next_char(p) - p)));
  } else if (v->t != V_UNDEF) {
    val_unref(l);
    return efail(c, at, WH_CHAT_ERROR_RUNTIME, "a %s is not iterable", type_name(v));
  }
  return l;
}

static val *
html_escape(const val *s)
{
  GString *g = g_string_new(NULL);
  for (gsize i = 0; i < s->s.n; i++) {
    char ch = s->s.s[i];
    switch (ch) {
    case '&':
      g_string_append(g, "&amp;");
      break;
    case '<':
      g_string_append(g, "&lt;");
      break;
    case '>':
      g_string_append(g, "&gt;");
      break;
    case '"':
      g_string_append(g, "&#34;");
      break;
    case '\'':
      g_string_append(g, "&#39;");
      break;
    default:
      g_string_append_c(g, ch);
    }
  }
  return v_gstring(g);
}

static gboolean
kw_bool(const args *a, guint pos, const char *name, gboolean dflt)
{
  val *v = arg(a, pos, name);
  return v ? val_truthy(v) : dflt;
}

/* select / reject / selectattr / rejectattr */
static val *
filter_select(ctx *c, const node *at, args *a, gboolean by_attr, gboolean keep)
{
  val *seq = as_list(c, at, g_ptr_array_index(a->pos, 0));
  if (!seq)
    return NULL;
  val *attr = by_attr ? need_str(c, at, arg(a, 1, NULL), "attribute name") : NULL;
  if (by_attr && !attr)
    return val_unref(seq), NULL;
  guint ti = by_attr ? 2 : 1;
  val *test = arg(a, ti, NULL);
  if (test && !need_str(c, at, test, "test name"))
    return val_unref(seq), NULL;
  val *out = v_list_new();
  for (guint i = 0; i < seq->list->len; i++) {
    val *item = g_ptr_array_index(seq->list, i);
    val *x = by_attr ? attr_path(item, attr->s.s) : val_ref(item);
    int r;
    if (test)
      r = apply_test(c, at, test->s.s, x, a, ti + 1);
    else
      r = val_truthy(x);
    val_unref(x);
    if (r < 0) {
      val_unref(out);
      val_unref(seq);
      return NULL;
    }
    if ((r != 0) == keep)
      g_ptr_array_add(out->list, val_ref(item));
  }
  val_unref(seq);
  return out;
}

static val *
apply_filter(ctx *c, const node *at, const char *f, args *a)
{
  val *v = g_ptr_array_index(a->pos, 0);
  val *a1 = arg(a, 1, NULL), *a2 = arg(a, 2, NULL);
  if (!charge(c, at, 1))
    return NULL;
  if (!strcmp(f, "safe"))
    return val_ref(v);
  if (!strcmp(f, "default") || !strcmp(f, "d")) {
    val *dv = arg(a, 1, "default_value");
    gboolean boolean = kw_bool(a, 2, "boolean", FALSE);
    if (v->t == V_UNDEF || (boolean && !val_truthy(v)))
      return dv ? val_ref(dv) : v_str("");
    return val_ref(v);
  }
  if (!strcmp(f, "length") || !strcmp(f, "count")) {
    switch (v->t) {
    case V_STR:
      return v_int((gint64)u8_len(v));
    case V_LIST:
      return v_int(v->list->len);
    case V_DICT:
    case V_NS:
      return v_int(v->d.keys->len);
    case V_UNDEF:
      return v_int(0);
    default:
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "object of type %s has no length", type_name(v));
    }
  }
  if (!strcmp(f, "string"))
    return to_str_val(v);
  if (!strcmp(f, "tojson")) {
    json_opts o = {.indent = -1, .item_sep = ", ", .key_sep = ": "};
    val *ind = arg(a, 1, "indent");
    if (ind && is_num(ind))
      o.indent = (int)CLAMP(num_i(ind), 0, 64);
    if (o.indent >= 0)
      o.item_sep = ",";
    o.ascii = kw_bool(a, G_MAXUINT, "ensure_ascii", FALSE);
    o.sort_keys = kw_bool(a, G_MAXUINT, "sort_keys", FALSE);
    val *seps = arg(a, G_MAXUINT, "separators");
    char *isep = NULL, *ksep = NULL;
    if (seps && seps->t == V_LIST && seps->list->len == 2) {
      val *x = g_ptr_array_index(seps->list, 0), *y = g_ptr_array_index(seps->list, 1);
      if (x->t == V_STR && y->t == V_STR) {
        o.item_sep = isep = g_strndup(x->s.s, x->s.n);
        o.key_sep = ksep = g_strndup(y->s.s, y->s.n);
      }
    }
    GString *g = g_string_new(NULL);
    gboolean ok = val_json(g, v, &o, 0);
    g_free(isep);
    g_free(ksep);
    if (!ok) {
      g_string_free(g, TRUE);
      return efail(c, at, WH_CHAT_ERROR_LIMIT, "tojson: value nested too deeply or too large");
    }
    if (!size_ok(c, at, g->len) || !charge(c, at, g->len / 64))
      return g_string_free(g, TRUE), NULL;
    return v_gstring(g);
  }
  if (!strcmp(f, "from_json")) {
    if (!need_str(c, at, v, "from_json input"))
      return NULL;
    int nest = 0, max_nest = 0;
    gboolean in_str = FALSE;
    for (gsize i = 0; i < v->s.n; i++) { /* the JSON parser recurses: bound the nesting */
      char ch = v->s.s[i];
      if (in_str) {
        if (ch == '\\')
          i++;
        else if (ch == '"')
          in_str = FALSE;
      } else if (ch == '"') {
        in_str = TRUE;
      } else if (ch == '[' || ch == '{') {
        max_nest = MAX(max_nest, ++nest);
      } else if (ch == ']' || ch == '}') {
        nest--;
      }
    }
    if (max_nest > 200)
      return efail(c, at, WH_CHAT_ERROR_LIMIT, "from_json: input nested too deeply");
    JsonParser *jp = json_parser_new();
    GError *e = NULL;
    val *r = NULL;
    if (json_parser_load_from_data(jp, v->s.s, (gssize)v->s.n, &e))
      r = val_from_json(json_parser_get_root(jp), 0);
    else
      r = efail(c, at, WH_CHAT_ERROR_RUNTIME, "from_json: %s", e->message);
    g_clear_error(&e);
    g_object_unref(jp);
    return r;
  }
  if (!strcmp(f, "trim") || !strcmp(f, "upper") || !strcmp(f, "lower") || !strcmp(f, "title") ||
      !strcmp(f, "capitalize") || !strcmp(f, "replace") || !strcmp(f, "e") ||
      !strcmp(f, "escape") || !strcmp(f, "indent")) {
    val *sv = to_str_val(v);
    val *r = NULL;
    if (!charge(c, at, sv->s.n / 64)) {
      val_unref(sv);
      return NULL;
    }
    if (!strcmp(f, "trim")) {
      val *chars = a1 && a1->t == V_STR ? a1 : NULL;
      r = str_strip(sv, chars, TRUE, TRUE);
    } else if (!strcmp(f, "upper"))
      r = str_case(sv, 1);
    else if (!strcmp(f, "lower"))
      r = str_case(sv, 0);
    else if (!strcmp(f, "title"))
      r = str_case(sv, 2);
    else if (!strcmp(f, "capitalize"))
      r = str_case(sv, 3);
    else if (!strcmp(f, "e") || !strcmp(f, "escape"))
      r = html_escape(sv);
    else if (!strcmp(f, "replace")) {
      val *x = a1 ? to_str_val(a1) : NULL, *y = a2 ? to_str_val(a2) : NULL;
      val *cnt = arg(a, 3, "count");
      if (x && y)
        r = str_replace(c, at, sv, x, y, cnt && is_num(cnt) ? num_i(cnt) : -1);
      else
        efail(c, at, WH_CHAT_ERROR_RUNTIME, "replace needs two arguments");
      val_unref(x);
      val_unref(y);
    } else { /* indent(width=4, first=False, blank=False) */
      val *w = arg(a, 1, "width");
      gboolean first = kw_bool(a, 2, "first", FALSE), blank = kw_bool(a, 3, "blank", FALSE);
      GString *pad = g_string_new(NULL);
      if (w && w->t == V_STR)
        g_string_append_len(pad, w->s.s, w->s.n);
      else
        for (gint64 i = 0; i < CLAMP(w && is_num(w) ? num_i(w) : 4, 0, 256); i++)
          g_string_append_c(pad, ' ');
      GString *g = g_string_new(NULL);
      const char *p = sv->s.s, *e = sv->s.s + sv->s.n;
      gboolean line0 = TRUE;
      while (p <= e) {
        const char *nl = memchr(p, '\n', (gsize)(e - p));
        const char *le = nl ? nl : e;
        if ((line0 ? first : TRUE) && (blank || le > p))
          g_string_append_len(g, pad->str, pad->len);
        g_string_append_len(g, p, le - p);
        if (!nl)
          break;
        g_string_append_c(g, '\n');
        p = nl + 1;
        line0 = FALSE;
        if (!size_ok(c, at, g->len))
          break;
      }
      g_string_free(pad, TRUE);
      if (!c->err)
        r = v_gstring(g);
      else
        g_string_free(g, TRUE);
    }
    val_unref(sv);
    return r;
  }
  if (!strcmp(f, "int")) {
    if (v->t == V_STR) {
      char *end = NULL;
      char *tmp = g_strstrip(g_strndup(v->s.s, v->s.n));
      errno = 0;
      gint64 i = g_ascii_strtoll(tmp, &end, 10);
      if (end && *end == 0 && tmp[0] && !errno) {
        g_free(tmp);
        return v_int(i);
      }
      double d = g_ascii_strtod(tmp, &end);
      gboolean ok = end && *end == 0 && tmp[0] && isfinite(d) && fabs(d) < 9e18;
      g_free(tmp);
      if (ok)
        return v_int((gint64)d);
      return a1 ? val_ref(a1) : v_int(0);
    }
    if (v->t == V_FLOAT && isfinite(v->f) && fabs(v->f) < 9e18)
      return v_int((gint64)v->f);
    if (v->t == V_INT || v->t == V_BOOL)
      return v_int(num_i(v));
    return a1 ? val_ref(a1) : v_int(0);
  }
  if (!strcmp(f, "float")) {
    if (v->t == V_STR) {
      char *end = NULL;
      char *tmp = g_strstrip(g_strndup(v->s.s, v->s.n));
      double d = g_ascii_strtod(tmp, &end);
      gboolean ok = end && *end == 0 && tmp[0];
      g_free(tmp);
      return ok ? v_float(d) : a1 ? val_ref(a1) : v_float(0);
    }
    if (is_num(v))
      return v_float(num_f(v));
    return a1 ? val_ref(a1) : v_float(0);
  }
  if (!strcmp(f, "abs")) {
    if (v->t == V_FLOAT)
      return v_float(fabs(v->f));
    if (is_num(v))
      return num_i(v) == G_MININT64 ? v_float(-(double)G_MININT64) : v_int(ABS(num_i(v)));
    return efail(c, at, WH_CHAT_ERROR_RUNTIME, "abs of a %s", type_name(v));
  }
  if (!strcmp(f, "round")) {
    if (!is_num(v))
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "round of a %s", type_name(v));
    gint64 prec = a1 && is_num(a1) ? CLAMP(num_i(a1), -20, 20) : 0;
    val *meth = arg(a, 2, "method");
    double m = pow(10.0, (double)prec), x = num_f(v) * m;
    if (meth && meth->t == V_STR && !strcmp(meth->s.s, "floor"))
      x = floor(x);
    else if (meth && meth->t == V_STR && !strcmp(meth->s.s, "ceil"))
      x = ceil(x);
    else
      x = round(x);
    return v_float(x / m);
  }
  if (!strcmp(f, "bool"))
    return v_bool(val_truthy(v));
  if (!strcmp(f, "list"))
    return as_list(c, at, v);
  if (!strcmp(f, "items") || !strcmp(f, "dictsort")) {
    if (v->t == V_UNDEF)
      return v_list_new();
    if (v->t != V_DICT && v->t != V_NS)
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "%s expects a mapping, got %s", f, type_name(v));
    val *l = v_list_new();
    for (guint i = 0; i < v->d.keys->len; i++) {
      val *pair = v_list_new();
      pair->tuple = TRUE;
      g_ptr_array_add(pair->list, val_ref(g_ptr_array_index(v->d.keys, i)));
      g_ptr_array_add(pair->list, val_ref(g_ptr_array_index(v->d.vals, i)));
      g_ptr_array_add(l->list, pair);
    }
    if (f[0] == 'd') {
      val *by = arg(a, 2, "by");
      sort_opts o = {.cs = kw_bool(a, 1, "case_sensitive", FALSE),
                     .rev = kw_bool(a, 3, "reverse", FALSE),
                     .by_value = by && by->t == V_STR && !strcmp(by->s.s, "value")};
      g_qsort_with_data(l->list->pdata, (gint)l->list->len, sizeof(gpointer), sort_item_cmp, &o);
    }
    return l;
  }
  if (!strcmp(f, "join")) {
    val *l = as_list(c, at, v);
    if (!l)
      return NULL;
    val *sep = arg(a, 1, "d");
    val *attr = arg(a, 2, "attribute");
    GString *g = g_string_new(NULL);
    for (guint i = 0; i < l->list->len; i++) {
      if (i && sep)
        val_str(g, sep);
      val *item = g_ptr_array_index(l->list, i);
      if (attr && attr->t == V_STR) {
        val *x = attr_path(item, attr->s.s);
        val_str(g, x);
        val_unref(x);
      } else {
        val_str(g, item);
      }
      if (!size_ok(c, at, g->len)) {
        g_string_free(g, TRUE);
        val_unref(l);
        return NULL;
      }
    }
    val_unref(l);
    return v_gstring(g);
  }
  if (!strcmp(f, "first") || !strcmp(f, "last")) {
    val *l = as_list(c, at, v);
    if (!l)
      return NULL;
    val *r = l->list->len ? val_ref(g_ptr_array_index(l->list, f[0] == 'f' ? 0 : l->list->len - 1))
                          : V_UNDEFINED;
    val_unref(l);
    return r;
  }
  if (!strcmp(f, "reverse")) {
    if (v->t == V_STR) {
      val *step = v_int(-1);
      val *r = slice_val(c, at, v, NULL, NULL, step);
      val_unref(step);
      return r;
    }
    val *l = as_list(c, at, v);
    if (!l)
      return NULL;
    val *r = v_list_new();
    for (guint i = l->list->len; i > 0; i--)
      g_ptr_array_add(r->list, val_ref(g_ptr_array_index(l->list, i - 1)));
    val_unref(l);
    return r;
  }
  if (!strcmp(f, "sort") || !strcmp(f, "unique") || !strcmp(f, "min") || !strcmp(f, "max")) {
    val *l = as_list(c, at, v);
    if (!l)
      return NULL;
    val *attr = arg(a, G_MAXUINT, "attribute");
    sort_opts o = {.attr = attr && attr->t == V_STR ? attr->s.s : NULL,
                   .cs = kw_bool(a, G_MAXUINT, "case_sensitive", FALSE)};
    val *r = NULL;
    if (!strcmp(f, "sort")) {
      o.rev = kw_bool(a, 1, "reverse", FALSE);
      o.cs = kw_bool(a, 2, "case_sensitive", FALSE);
      r = v_list_new();
      for (guint i = 0; i < l->list->len; i++)
        g_ptr_array_add(r->list, val_ref(g_ptr_array_index(l->list, i)));
      if (!charge(c, at, r->list->len)) {
        val_unref(r);
        val_unref(l);
        return NULL;
      }
      g_qsort_with_data(r->list->pdata, (gint)r->list->len, sizeof(gpointer), sort_item_cmp, &o);
    } else if (!strcmp(f, "unique")) {
      r = v_list_new();
      if (!charge(c, at, (guint64)l->list->len * l->list->len / 16)) {
        val_unref(r);
        val_unref(l);
        return NULL;
      }
      for (guint i = 0; i < l->list->len; i++) {
        val *x = g_ptr_array_index(l->list, i);
        gboolean seen = FALSE;
        for (guint j = 0; j < r->list->len && !seen; j++) {
          val *y = g_ptr_array_index(r->list, j);
          if (x->t == V_STR && y->t == V_STR && !o.cs)
            seen = sort_cmp(x, y, FALSE) == 0;
          else
            seen = val_eq(x, y);
        }
        if (!seen)
          g_ptr_array_add(r->list, val_ref(x));
      }
    } else {
      if (l->list->len == 0) {
        val_unref(l);
        return V_UNDEFINED;
      }
      val *best = g_ptr_array_index(l->list, 0);
      for (guint i = 1; i < l->list->len; i++) {
        val *x = g_ptr_array_index(l->list, i);
        gconstpointer px = &x, pb = &best;
        int cmp = sort_item_cmp(px, pb, &o);
        if (f[1] == 'i' ? cmp < 0 : cmp > 0)
          best = x;
      }
      r = val_ref(best);
    }
    val_unref(l);
    return r;
  }
  if (!strcmp(f, "map")) {
    val *l = as_list(c, at, v);
    if (!l)
      return NULL;
    val *attr = arg(a, G_MAXUINT, "attribute");
    val *dflt = arg(a, G_MAXUINT, "default");
    val *r = v_list_new();
    for (guint i = 0; i < l->list->len; i++) {
      val *item = g_ptr_array_index(l->list, i);
      val *x;
      if (attr && attr->t == V_STR) {
        x = attr_path(item, attr->s.s);
        if (x->t == V_UNDEF && dflt)
          x = val_ref(dflt);
      } else if (a1 && a1->t == V_STR) {
        args sub = {g_ptr_array_new(), g_ptr_array_new(), g_ptr_array_new()};
        g_ptr_array_add(sub.pos, item);
        for (guint k = 2; k < a->pos->len; k++)
          g_ptr_array_add(sub.pos, g_ptr_array_index(a->pos, k));
        x = apply_filter(c, at, a1->s.s, &sub);
        args_clear(&sub);
      } else {
        x = val_ref(item);
      }
      if (!x) {
        val_unref(r);
        val_unref(l);
        return NULL;
      }
      g_ptr_array_add(r->list, x);
    }
    val_unref(l);
    return r;
  }
  if (!strcmp(f, "select") || !strcmp(f, "reject"))
    return filter_select(c, at, a, FALSE, f[0] == 's');
  if (!strcmp(f, "selectattr") || !strcmp(f, "rejectattr"))
    return filter_select(c, at, a, TRUE, f[0] == 's');
  if (!strcmp(f, "attr")) {
    if (!need_str(c, at, a1, "attribute name"))
      return NULL;
    return get_attr(v, a1->s.s);
  }
  if (!strcmp(f, "sum")) {
    val *l = as_list(c, at, v);
    if (!l)
      return NULL;
    val *attr = arg(a, 1, "attribute");
    val *start = arg(a, 2, "start");
    val *acc = start ? val_ref(start) : v_int(0);
    for (guint i = 0; i < l->list->len && acc; i++) {
      val *x = attr && attr->t == V_STR ? attr_path(g_ptr_array_index(l->list, i), attr->s.s)
                                        : val_ref(g_ptr_array_index(l->list, i));
      val *n = binop(c, at, "+", acc, x);
      val_unref(x);
      val_unref(acc);
      acc = n;
    }
    val_unref(l);
    return acc;
  }
  if (!strcmp(f, "batch")) {
    val *l = as_list(c, at, v);
    if (!l)
      return NULL;
    gint64 n = a1 && is_num(a1) ? num_i(a1) : 0;
    if (n <= 0) {
      val_unref(l);
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "batch size must be positive");
    }
    val *r = v_list_new(), *cur = NULL;
    for (guint i = 0; i < l->list->len; i++) {
      if (!cur || (gint64)cur->list->len == n) {
        cur = v_list_new();
        g_ptr_array_add(r->list, cur);
      }
      g_ptr_array_add(cur->list, val_ref(g_ptr_array_index(l->list, i)));
    }
    if (cur && a2)
      while ((gint64)cur->list->len < n)
        g_ptr_array_add(cur->list, val_ref(a2));
    val_unref(l);
    return r;
  }
  if (!strcmp(f, "wordcount")) {
    if (!need_str(c, at, v, "wordcount input"))
      return NULL;
    val *l = str_split(v, NULL, -1);
    val *r = v_int(l->list->len);
    val_unref(l);
    return r;
  }
  return efail(c, at, WH_CHAT_ERROR_RUNTIME, "unknown filter '%s'", f);
}

/* ---- tests: returns 1/0, or -1 on error ---- */

static int
apply_test(ctx *c, const node *at, const char *t, val *v, args *a, guint first)
{
  val *x = first < a->pos->len ? g_ptr_array_index(a->pos, first) : NULL;
  if (!strcmp(t, "defined"))
    return v->t != V_UNDEF;
  if (!strcmp(t, "undefined"))
    return v->t == V_UNDEF;
  if (!strcmp(t, "none"))
    return v->t == V_NONE;
  if (!strcmp(t, "string"))
    return v->t == V_STR;
  if (!strcmp(t, "number"))
    return v->t == V_INT || v->t == V_FLOAT;
  if (!strcmp(t, "integer"))
    return v->t == V_INT;
  if (!strcmp(t, "float"))
    return v->t == V_FLOAT;
  if (!strcmp(t, "boolean"))
    return v->t == V_BOOL;
  if (!strcmp(t, "true"))
    return v->t == V_BOOL && v->b;
  if (!strcmp(t, "false"))
    return v->t == V_BOOL && !v->b;
  if (!strcmp(t, "mapping"))
    return v->t == V_DICT;
  if (!strcmp(t, "sequence") || !strcmp(t, "iterable")) /* Jinja2's Undefined is both */
    return v->t == V_LIST || v->t == V_STR || v->t == V_DICT || v->t == V_UNDEF;
  if (!strcmp(t, "callable"))
    return v->t == V_MACRO || v->t == V_FUNC;
  if (!strcmp(t, "lower") || !strcmp(t, "upper")) {
    if (v->t != V_STR)
      return 0;
    val *r = str_case(v, t[0] == 'l' ? 0 : 1);
    int eq = val_eq(r, v);
    val_unref(r);
    return eq;
  }
  if (!strcmp(t, "odd") || !strcmp(t, "even")) {
    if (!is_num(v))
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "%s test of a %s", t, type_name(v)), -1;
    return (num_i(v) % 2 != 0) == (t[0] == 'o');
  }
  if (!strcmp(t, "divisibleby")) {
    if (!x || !is_num(v) || !is_num(x) || num_i(x) == 0)
      return efail(c, at, WH_CHAT_ERROR_RUNTIME, "divisibleby needs a non-zero number"), -1;
    return num_i(x) == -1 || num_i(v) % num_i(x) == 0;
  }
  if (!x && (!strcmp(t, "equalto") || !strcmp(t, "eq") || !strcmp(t, "==") || !strcmp(t, "ne") ||
             !strcmp(t, "sameas") || !strcmp(t, "in") || !strcmp(t, "lt") || !strcmp(t, "gt") ||
             !strcmp(t, "le") || !strcmp(t, "ge")))
    return efail(c, at, WH_CHAT_ERROR_RUNTIME, "test '%s' takes an argument", t), -1;
  if (!strcmp(t, "equalto") || !strcmp(t, "eq") || !strcmp(t, "=="))
    return val_eq(v, x);
  if (!strcmp(t, "ne"))
    return !val_eq(v, x);
  if (!strcmp(t, "sameas"))
    return v == x || (v->t == x->t &&
                      (v->t == V_NONE || v->t == V_UNDEF || (v->t == V_BOOL && v->b == x->b)));
  if (!strcmp(t, "in") || !strcmp(t, "lt") || !strcmp(t, "gt") || !strcmp(t, "le") ||
      !strcmp(t, "ge")) {
    const char *op = !strcmp(t, "in")   ? "in"
                     : !strcmp(t, "lt") ? "<"
                     : !strcmp(t, "gt") ? ">"
                     : !strcmp(t, "le") ? "<="
                                        : ">=";
    val *r = binop(c, at, op, v, x);
    if (!r)
      return -1;
    int res = val_truthy(r);
    val_unref(r);
    return res;
  }
  return efail(c, at, WH_CHAT_ERROR_RUNTIME, "unknown test '%s'", t), -1;
}

/* ---- statements ---- */

static xres exec_node(ctx *c, scope *s, node *nd);

static xres
exec_body(ctx *c, scope *s, GPtrArray *body)
{
  if (!body)
    return XR_OK;
  for (guint i = 0; i < body->len; i++) {
    xres r = exec_node(c, s, g_ptr_array_index(body, i));
    if (r != XR_OK)
      return r;
  }
  return XR_OK;
}

static gboolean
bind_targets(ctx *c, const node *at, scope *s, GPtrArray *names, val *item)
{
  if (names->len == 1) {
    scope_set(s, g_ptr_array_index(names, 0), val_ref(item));
    return TRUE;
  }
  val *l = item->t == V_LIST ? val_ref(item) : as_list(c, at, item);
  if (!l)
    return FALSE;
  if (l->list->len != names->len) {
    efail(c, at, WH_CHAT_ERROR_RUNTIME, "cannot unpack %u values into %u names", l->list->len,
          names->len);
    val_unref(l);
    return FALSE;
  }
  for (guint i = 0; i < names->len; i++)
    scope_set(s, g_ptr_array_index(names, i), val_ref(g_ptr_array_index(l->list, i)));
  val_unref(l);
  return TRUE;
}

static xres
exec_for(ctx *c, scope *s, node *nd)
{
  val *it = eval(c, s, nd->a);
  if (!it)
    return XR_ERR;
  if (it->t == V_NONE || it->t == V_BOOL || it->t == V_INT || it->t == V_FLOAT) {
    efail(c, nd->a, WH_CHAT_ERROR_RUNTIME, "a %s is not iterable", type_name(it));
    val_unref(it);
    return XR_ERR;
  }
  val *items = as_list(c, nd, it);
  val_unref(it);
  if (!items)
    return XR_ERR;
  scope *ls = scope_push(s);
  xres res = XR_OK;
  if (nd->b) { /* `for x in y if cond`: filter first, so loop.* counts the kept items */
    val *kept = v_list_new();
    for (guint i = 0; i < items->list->len; i++) {
      val *item = g_ptr_array_index(items->list, i);
      if (!charge(c, nd, 1) || !bind_targets(c, nd, ls, nd->names, item)) {
        res = XR_ERR;
        break;
      }
      val *cond = eval(c, ls, nd->b);
      if (!cond) {
        res = XR_ERR;
        break;
      }
      if (val_truthy(cond))
        g_ptr_array_add(kept->list, val_ref(item));
      val_unref(cond);
    }
    val_unref(items);
    items = kept;
  }
  guint n = items->list->len;
  for (guint i = 0; i < n && res == XR_OK; i++) {
    val *item = g_ptr_array_index(items->list, i);
    /* Each iteration starts from the outer variables: sets inside the body do not carry
     * over to the next iteration (nor out of the loop), as in Jinja2. */
    scope *is = scope_push(s);
    if (!charge(c, nd, 1) || !bind_targets(c, nd, is, nd->names, item)) {
      scope_pop(c, is);
      res = XR_ERR;
      break;
    }
    val *loop = v_dict_new(V_DICT);
    val *lv[G_N_ELEMENTS(loop_keys)] = {
        v_int(i + 1),
        v_int(i),
        v_int(n - i),
        v_int(n - i - 1),
        v_bool(i == 0),
        v_bool(i == n - 1),
        v_int(n),
        v_int(1),
        v_int(0),
        i > 0 ? val_ref(g_ptr_array_index(items->list, i - 1)) : V_UNDEFINED,
        i + 1 < n ? val_ref(g_ptr_array_index(items->list, i + 1)) : V_UNDEFINED,
    };
    for (guint k = 0; k < G_N_ELEMENTS(loop_keys); k++) {
      g_ptr_array_add(loop->d.keys, &loop_keys[k]);
      g_ptr_array_add(loop->d.vals, lv[k]);
    }
    scope_set(is, "loop", loop);
    xres r = exec_body(c, is, nd->kids);
    scope_pop(c, is);
    if (r == XR_ERR)
      res = XR_ERR;
    else if (r == XR_BREAK)
      break;
  }
  if (res == XR_OK && n == 0 && nd->kids2)
    res = exec_body(c, s, nd->kids2);
  val_unref(items);
  scope_pop(c, ls);
  return res;
}

static xres exec_inner(ctx *c, scope *s, node *nd);

static xres
exec_node(ctx *c, scope *s, node *nd)
{
  if (c->err)
    return XR_ERR;
  if (++c->rec > EVAL_MAX_DEPTH) {
    c->rec--;
    efail(c, nd, WH_CHAT_ERROR_LIMIT, "template nests too deeply");
    return XR_ERR;
  }
  xres r = exec_inner(c, s, nd);
  c->rec--;
  return r;
}

static xres
exec_inner(ctx *c, scope *s, node *nd)
{
  switch (nd->k) {
  case N_TEXT:
    return out_append(c, nd, nd->str, nd->n) ? XR_OK : XR_ERR;
  case N_OUT: {
    val *v = eval(c, s, nd->a);
    if (!v)
      return XR_ERR;
    gsize before = c->out->len;
    val_str(c->out, v);
    val_unref(v);
    if (!charge(c, nd, (c->out->len - before) / 64) || !size_ok(c, nd, c->out->len))
      return XR_ERR;
    return XR_OK;
  }
  case N_IF: {
    val *v = eval(c, s, nd->a);
    if (!v)
      return XR_ERR;
    gboolean t = val_truthy(v);
    val_unref(v);
    return exec_body(c, s, t ? nd->kids : nd->kids2);
  }
  case N_FOR:
    return exec_for(c, s, nd);
  case N_SET: {
    val *v = eval(c, s, nd->a);
    if (!v)
      return XR_ERR;
    if (nd->str) {
      val *ns = scope_lookup(s, nd->str);
      if (!ns || ns->t != V_NS) {
        val_unref(v);
        efail(c, nd, WH_CHAT_ERROR_RUNTIME, "cannot assign attribute on '%s': not a namespace",
              nd->str);
        return XR_ERR;
      }
      arena_add(c, ns);
      dict_set(ns, v_str(g_ptr_array_index(nd->names, 0)), v);
      return XR_OK;
    }
    gboolean ok = bind_targets(c, nd, s, nd->names, v);
    val_unref(v);
    return ok ? XR_OK : XR_ERR;
  }
  case N_SETBLOCK: {
    GString *saved = c->out;
    c->out = g_string_new(NULL);
    xres r = exec_body(c, s, nd->kids);
    GString *res = c->out;
    c->out = saved;
    if (r == XR_ERR) {
      g_string_free(res, TRUE);
      return XR_ERR;
    }
    val *v = v_gstring(res);
    if (nd->a) { /* {% set x | f | g %}: apply the chain to the body, innermost first
                    (without touching the shared AST: templates render concurrently) */
      GPtrArray *chain = g_ptr_array_new();
      for (node *f = nd->a; f && f->k == N_FILTER; f = f->a)
        g_ptr_array_add(chain, f);
      for (guint j = chain->len; j > 0 && v; j--) {
        node *f = g_ptr_array_index(chain, j - 1);
        args a = {0};
        val *fv = eval_args(c, s, f, &a, v) ? apply_filter(c, f, f->str, &a) : NULL;
        args_clear(&a);
        val_unref(v);
        v = fv;
      }
      g_ptr_array_unref(chain);
      if (!v)
        return XR_ERR;
    }
    scope_set(s, g_ptr_array_index(nd->names, 0), v);
    return XR_OK;
  }
  case N_MACRO: {
    val *m = val_new(V_MACRO);
    m->m.def = nd;
    m->m.closure = s;
    s->captured = TRUE;
    scope_set(s, nd->str, m);
    return XR_OK;
  }
  case N_BREAK:
    return XR_BREAK;
  case N_CONTINUE:
    return XR_CONTINUE;
  case N_BODY:
    return exec_body(c, s, nd->kids);
  default:
    efail(c, nd, WH_CHAT_ERROR_RUNTIME, "not a statement");
    return XR_ERR;
  }
}

char *
wh_jinja_render(wh_jinja_template *t, JsonObject *context, gint64 now_utc,
                const wh_jinja_limits *limits, GError **error)
{
  ctx c = {0};
  c.lim.max_depth = 64;
  c.lim.max_steps = 1000000;
  c.lim.max_output = 16u << 20;
  if (limits) {
    if (limits->max_depth)
      c.lim.max_depth = limits->max_depth;
    if (limits->max_steps)
      c.lim.max_steps = limits->max_steps;
    if (limits->max_output)
      c.lim.max_output = limits->max_output;
  }
  c.now = now_utc;
  gsize saved_cap = str_cap;
  str_cap = c.lim.max_output;
  c.out = g_string_new(NULL);
  c.arena = g_ptr_array_new();
  c.kept_scopes = g_ptr_array_new();
  scope *root = scope_push(NULL);
  if (context) {
    GList *members = json_object_get_members(context);
    for (GList *m = members; m; m = m->next)
      scope_set(root, m->data, val_from_json(json_object_get_member(context, m->data), 0));
    g_list_free(members);
  }
  scope *top = scope_push(root); /* template-level sets shadow the context */
  c.globals = top;
  xres r = exec_body(&c, top, t->body);
  if (r == XR_OK && c.err)
    r = XR_ERR;
  /* Break cycles, then free everything. */
  for (guint i = 0; i < c.arena->len; i++) {
    val *v = g_ptr_array_index(c.arena, i);
    if (v->t == V_LIST)
      g_ptr_array_set_size(v->list, 0);
    else if (v->t == V_DICT || v->t == V_NS) {
      g_ptr_array_set_size(v->d.keys, 0);
      g_ptr_array_set_size(v->d.vals, 0);
    }
  }
  top->captured = FALSE;
  root->captured = FALSE;
  scope_pop(&c, top);
  scope_pop(&c, root);
  for (guint i = 0; i < c.kept_scopes->len; i++) {
    scope *ks = g_ptr_array_index(c.kept_scopes, i);
    g_ptr_array_set_size(ks->vars->d.keys, 0);
    g_ptr_array_set_size(ks->vars->d.vals, 0);
  }
  for (guint i = 0; i < c.kept_scopes->len; i++) {
    scope *ks = g_ptr_array_index(c.kept_scopes, i);
    val_unref(ks->vars);
    g_free(ks);
  }
  g_ptr_array_unref(c.kept_scopes);
  for (guint i = 0; i < c.arena->len; i++)
    val_unref(g_ptr_array_index(c.arena, i));
  g_ptr_array_unref(c.arena);
  str_cap = saved_cap;
  if (r == XR_ERR || c.err) {
    g_string_free(c.out, TRUE);
    if (c.err)
      g_propagate_error(error, c.err);
    else
      g_set_error(error, WH_CHAT_ERROR, WH_CHAT_ERROR_RUNTIME, "template error");
    return NULL;
  }
  /* break/continue outside a loop render nothing more, as in Jinja. */
  return g_string_free(c.out, FALSE);
}
