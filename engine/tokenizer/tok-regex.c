/* tok-regex.c — backtracking regex evaluation for pre-tokenizer patterns (see tok-regex.h).
 *
 * The pattern is parsed into a small tree and compiled to a program for a backtracking
 * machine (CLASS, SPLIT with a preferred branch, JMP, END, LOOK/NLOOK, MATCH), the classic
 * construction: alternatives and greedy loops become SPLITs whose first branch is tried
 * first, counted repetition is unrolled. Execution keeps an explicit stack of backtrack
 * points, so long runs cost memory, not C stack.
 */
#include "config.h"

#include "tok-regex.h"
#include "tok-unicode.h"

#include <string.h>

/* Subject symbols: code points, with placeholders above every decodable value. */
#define PH_BASE 0x200000u
enum { PH_LETTER, PH_NUMBER, PH_PUNCT, PH_MARK, PH_SYMBOL, PH_OTHER, PH_COUNT };

typedef struct {
  guint64 ascii[2];
  guint8 ph;      /* placeholder bits */
  GArray *ranges; /* guint32 pairs, inclusive, for symbols in [0x80, PH_BASE) */
  gboolean neg;
} rx_class;

enum { OP_CLASS, OP_SPLIT, OP_JMP, OP_END, OP_LOOK, OP_NLOOK, OP_MATCH };

typedef struct {
  guint8 op;
  gint32 x, y; /* CLASS: x = class index; SPLIT: preferred x, then y; JMP: x; LOOK: y = after */
} rx_inst;

struct wh_regex {
  gboolean category;
  GArray *classes; /* rx_class */
  GArray *prog;    /* rx_inst */
};

/* --- classes ----------------------------------------------------------------------------- */

static void
cls_add_range(rx_class *c, guint32 lo, guint32 hi)
{
  for (guint32 v = lo; v <= hi && v < 128; v++)
    c->ascii[v >> 6] |= G_GUINT64_CONSTANT(1) << (v & 63);
  if (hi >= 128) {
    guint32 r[2] = {MAX(lo, 128u), MIN(hi, PH_BASE - 1)};
    g_array_append_vals(c->ranges, r, 2);
  }
}

static void
cls_add_ph(rx_class *c, int ph)
{
  c->ph |= 1u << ph;
}

/* Everything not in the ASCII set @ascii: all other ASCII, all non-ASCII, all placeholders. */
static void
cls_add_complement_ascii(rx_class *c, const guint64 ascii[2])
{
  c->ascii[0] |= ~ascii[0];
  c->ascii[1] |= ~ascii[1];
  cls_add_range(c, 0x80, PH_BASE - 1);
  c->ph |= (1u << PH_COUNT) - 1;
}

static gboolean
cls_match(const rx_class *c, guint32 s)
{
  gboolean hit;
  if (s < 128) {
    hit = (c->ascii[s >> 6] >> (s & 63)) & 1;
  } else if (s >= PH_BASE) {
    hit = (c->ph >> (s - PH_BASE)) & 1;
  } else {
    hit = FALSE;
    const guint32 *r = (const guint32 *)c->ranges->data;
    for (guint i = 0; i + 1 < c->ranges->len && !hit; i += 2)
      hit = s >= r[i] && s <= r[i + 1];
  }
  return hit != c->neg;
}

/* --- parsing ----------------------------------------------------------------------------- */

typedef enum { N_CLASS, N_CAT, N_ALT, N_REPEAT, N_LOOK, N_NLOOK, N_END } node_kind;

typedef struct rx_node {
  node_kind kind;
  GPtrArray *kids;     /* CAT, ALT */
  struct rx_node *kid; /* REPEAT, LOOK */
  gint cls;
  gint min, max; /* max -1 = unbounded */
} rx_node;

typedef struct {
  const char *p, *end, *start;
  wh_regex *re;
  char *error;
  GPtrArray *all; /* every node, for freeing */
} parser;

static rx_node *
new_node(parser *ps, node_kind k)
{
  rx_node *n = g_new0(rx_node, 1);
  n->kind = k;
  if (k == N_CAT || k == N_ALT)
    n->kids = g_ptr_array_new();
  g_ptr_array_add(ps->all, n);
  return n;
}

static void
free_node(gpointer p)
{
  rx_node *n = p;
  if (n->kids)
    g_ptr_array_free(n->kids, TRUE);
  g_free(n);
}

static gint
new_class(parser *ps)
{
  rx_class c = {{0, 0}, 0, g_array_new(FALSE, FALSE, sizeof(guint32)), FALSE};
  g_array_append_val(ps->re->classes, c);
  return (gint)ps->re->classes->len - 1;
}

static rx_class *
class_at(parser *ps, gint i)
{
  return &g_array_index(ps->re->classes, rx_class, i);
}

static void
fail(parser *ps, const char *msg)
{
  if (!ps->error)
    ps->error = g_strdup_printf("%s at offset %d", msg, (int)(ps->p - ps->start));
}

static guint32
next_char(parser *ps)
{
  gsize adv;
  guint32 c = wh_uc_decode_one((const guint8 *)ps->p, ps->end - ps->p, &adv);
  ps->p += adv;
  return c;
}

static const guint64 ws_ascii[2] = {
    (1ull << 9) | (1ull << 10) | (1ull << 11) | (1ull << 12) | (1ull << 13) | (1ull << 32), 0};
static const guint64 digit_ascii[2] = {0x03FF000000000000ull, 0};
static const guint64 word_ascii[2] = {0x03FF000000000000ull, 0x07FFFFFE87FFFFFEull};

/* Adds the meaning of the escape after a backslash to class @c; returns FALSE for an
 * escape that stands for a single literal character (*lit is set). */
static gboolean
escape_into(parser *ps, rx_class *c, guint32 *lit)
{
  if (ps->p >= ps->end) {
    fail(ps, "dangling backslash");
    return TRUE;
  }
  char e = *ps->p++;
  switch (e) {
  case 's':
    c->ascii[0] |= ws_ascii[0];
    return TRUE;
  case 'S':
    cls_add_complement_ascii(c, ws_ascii);
    return TRUE;
  case 'd':
    c->ascii[0] |= digit_ascii[0];
    return TRUE;
  case 'D':
    cls_add_complement_ascii(c, digit_ascii);
    return TRUE;
  case 'w':
    c->ascii[0] |= word_ascii[0];
    c->ascii[1] |= word_ascii[1];
    return TRUE;
  case 'W':
    cls_add_complement_ascii(c, word_ascii);
    return TRUE;
  case 'r':
    *lit = '\r';
    return FALSE;
  case 'n':
    *lit = '\n';
    return FALSE;
  case 't':
    *lit = '\t';
    return FALSE;
  case 'v':
    *lit = '\v';
    return FALSE;
  case 'f':
    *lit = '\f';
    return FALSE;
  case 'p': {
    const char *close = memchr(ps->p, '}', ps->end - ps->p);
    if (*ps->p != '{' || !close) {
      fail(ps, "bad \\p");
      return TRUE;
    }
    g_autofree char *name = g_strndup(ps->p + 1, close - ps->p - 1);
    ps->p = close + 1;
    if (!ps->re->category) {
      fail(ps, "\\p{..} in a code-point pattern");
      return TRUE;
    }
    if (name[0] == 'L' && (name[1] == '\0' || strchr("ultmo", name[1])) &&
        (name[1] == '\0' || name[2] == '\0')) {
      cls_add_range(c, 'A', 'Z');
      cls_add_range(c, 'a', 'z');
      cls_add_ph(c, PH_LETTER);
    } else if (strcmp(name, "N") == 0) {
      cls_add_range(c, '0', '9');
      cls_add_ph(c, PH_NUMBER);
    } else if (strcmp(name, "P") == 0) {
      static const char punct[] = "!\"#%&'()*,-./:;?@[\\]_{}";
      for (const char *q = punct; *q; q++)
        cls_add_range(c, (guint8)*q, (guint8)*q);
      cls_add_ph(c, PH_PUNCT);
    } else if (strcmp(name, "S") == 0) {
      static const char sym[] = "$+<=>^`|~";
      for (const char *q = sym; *q; q++)
        cls_add_range(c, (guint8)*q, (guint8)*q);
      cls_add_ph(c, PH_SYMBOL);
    } else if (strcmp(name, "M") == 0) {
      cls_add_ph(c, PH_MARK);
    } else {
      fail(ps, "unsupported \\p{..} class");
    }
    return TRUE;
  }
  default:
    if (g_ascii_isalnum(e)) {
      fail(ps, "unsupported escape");
      return TRUE;
    }
    *lit = (guint8)e;
    return FALSE;
  }
}

static void
check_literal(parser *ps, guint32 c)
{
  if (c >= 0x80 && ps->re->category)
    fail(ps, "non-ASCII literal in a category pattern");
}

static rx_node *parse_alt(parser *ps);

static rx_node *
parse_class(parser *ps)
{
  rx_node *n = new_node(ps, N_CLASS);
  n->cls = new_class(ps);
  gboolean neg = FALSE;
  if (ps->p < ps->end && *ps->p == '^') {
    neg = TRUE;
    ps->p++;
  }
  while (ps->p < ps->end && *ps->p != ']' && !ps->error) { /* ECMAScript: `[]` is empty */
    guint32 lo;
    if (*ps->p == '\\') {
      ps->p++;
      if (escape_into(ps, class_at(ps, n->cls), &lo))
        continue;
    } else {
      lo = next_char(ps);
    }
    guint32 hi = lo;
    if (ps->p + 1 < ps->end && *ps->p == '-' && ps->p[1] != ']') {
      ps->p++;
      if (*ps->p == '\\') {
        ps->p++;
        rx_class tmp = {{0, 0}, 0, NULL, FALSE};
        if (escape_into(ps, &tmp, &hi)) {
          fail(ps, "class escape as a range end");
          break;
        }
      } else {
        hi = next_char(ps);
      }
    }
    check_literal(ps, lo);
    check_literal(ps, hi);
    if (hi < lo)
      fail(ps, "reversed range");
    else
      cls_add_range(class_at(ps, n->cls), lo, hi);
  }
  if (ps->p >= ps->end)
    fail(ps, "unterminated [");
  else
    ps->p++;
  class_at(ps, n->cls)->neg = neg;
  return n;
}

static gboolean
parse_int(parser *ps, gint *out)
{
  if (ps->p >= ps->end || !g_ascii_isdigit(*ps->p))
    return FALSE;
  gint v = 0;
  while (ps->p < ps->end && g_ascii_isdigit(*ps->p) && v < 100000)
    v = v * 10 + (*ps->p++ - '0');
  *out = v;
  return TRUE;
}

static rx_node *
parse_atom(parser *ps)
{
  char c = *ps->p;
  if (c == '(') {
    ps->p++;
    node_kind look = N_CAT;
    if (ps->end - ps->p >= 2 && ps->p[0] == '?') {
      if (ps->p[1] == ':')
        look = N_CAT;
      else if (ps->p[1] == '=')
        look = N_LOOK;
      else if (ps->p[1] == '!')
        look = N_NLOOK;
      else
        fail(ps, "unsupported group");
      ps->p += 2;
    }
    rx_node *inner = parse_alt(ps);
    if (ps->p >= ps->end || *ps->p != ')')
      fail(ps, "missing )");
    else
      ps->p++;
    if (look == N_CAT)
      return inner;
    rx_node *n = new_node(ps, look);
    n->kid = inner;
    return n;
  }
  if (c == '[') {
    ps->p++;
    return parse_class(ps);
  }
  if (c == '$') {
    ps->p++;
    return new_node(ps, N_END);
  }
  rx_node *n = new_node(ps, N_CLASS);
  n->cls = new_class(ps);
  rx_class *k = class_at(ps, n->cls);
  if (c == '.') {
    ps->p++;
    k->neg = TRUE;
    cls_add_range(k, '\n', '\n');
    cls_add_range(k, '\r', '\r');
    return n;
  }
  if (c == '^' || c == ')' || c == '*' || c == '+' || c == '?' || c == '|') {
    fail(ps, "unsupported or misplaced operator");
    ps->p++;
    return n;
  }
  guint32 lit;
  if (c == '\\') {
    ps->p++;
    if (escape_into(ps, k, &lit))
      return n;
  } else {
    lit = next_char(ps);
  }
  check_literal(ps, lit);
  cls_add_range(k, lit, lit);
  return n;
}

static rx_node *
parse_seq(parser *ps)
{
  rx_node *cat = new_node(ps, N_CAT);
  while (ps->p < ps->end && *ps->p != '|' && *ps->p != ')' && !ps->error) {
    rx_node *a = parse_atom(ps);
    for (;;) {
      gint min, max;
      const char *save = ps->p;
      if (ps->p < ps->end && *ps->p == '*') {
        min = 0, max = -1;
        ps->p++;
      } else if (ps->p < ps->end && *ps->p == '+') {
        min = 1, max = -1;
        ps->p++;
      } else if (ps->p < ps->end && *ps->p == '?') {
        min = 0, max = 1;
        ps->p++;
      } else if (ps->p < ps->end && *ps->p == '{') {
        ps->p++;
        if (!parse_int(ps, &min)) {
          ps->p = save;
          break;
        }
        max = min;
        if (ps->p < ps->end && *ps->p == ',') {
          ps->p++;
          if (!parse_int(ps, &max))
            max = -1;
        }
        if (ps->p >= ps->end || *ps->p != '}' || (max >= 0 && max < min) || min > 1024 ||
            max > 1024) {
          fail(ps, "bad {n,m}");
          break;
        }
        ps->p++;
      } else {
        break;
      }
      if (ps->p < ps->end && *ps->p == '?')
        fail(ps, "lazy quantifiers are not supported");
      rx_node *r = new_node(ps, N_REPEAT);
      r->kid = a;
      r->min = min;
      r->max = max;
      a = r;
    }
    g_ptr_array_add(cat->kids, a);
  }
  return cat;
}

static rx_node *
parse_alt(parser *ps)
{
  rx_node *alt = new_node(ps, N_ALT);
  g_ptr_array_add(alt->kids, parse_seq(ps));
  while (ps->p < ps->end && *ps->p == '|' && !ps->error) {
    ps->p++;
    g_ptr_array_add(alt->kids, parse_seq(ps));
  }
  return alt->kids->len == 1 ? alt->kids->pdata[0] : alt;
}

/* TRUE when @n can match the empty string (lookaheads and $ consume nothing). */
static gboolean
nullable(const rx_node *n)
{
  switch (n->kind) {
  case N_CLASS:
    return FALSE;
  case N_CAT:
    for (guint i = 0; i < n->kids->len; i++)
      if (!nullable(n->kids->pdata[i]))
        return FALSE;
    return TRUE;
  case N_ALT:
    for (guint i = 0; i < n->kids->len; i++)
      if (nullable(n->kids->pdata[i]))
        return TRUE;
    return FALSE;
  case N_REPEAT:
    return n->min == 0 || nullable(n->kid);
  default:
    return TRUE;
  }
}

/* An unbounded loop whose body can match nothing would spin forever in the backtracking
 * machine; no pre-tokenizer pattern has one, so such patterns are refused. */
static gboolean
has_empty_loop(const rx_node *n)
{
  if (n->kind == N_REPEAT && n->max < 0 && nullable(n->kid))
    return TRUE;
  if (n->kids)
    for (guint i = 0; i < n->kids->len; i++)
      if (has_empty_loop(n->kids->pdata[i]))
        return TRUE;
  return n->kid && has_empty_loop(n->kid);
}

/* --- code generation --------------------------------------------------------------------- */

static gint32
emit_inst(wh_regex *re, guint8 op, gint32 x, gint32 y)
{
  rx_inst in = {op, x, y};
  g_array_append_val(re->prog, in);
  return (gint32)re->prog->len - 1;
}

static rx_inst *
inst_at(wh_regex *re, gint32 pc)
{
  return &g_array_index(re->prog, rx_inst, pc);
}

static void
gen(wh_regex *re, const rx_node *n)
{
  switch (n->kind) {
  case N_CLASS:
    emit_inst(re, OP_CLASS, n->cls, 0);
    break;
  case N_END:
    emit_inst(re, OP_END, 0, 0);
    break;
  case N_CAT:
    for (guint i = 0; i < n->kids->len; i++)
      gen(re, n->kids->pdata[i]);
    break;
  case N_ALT: {
    g_autoptr(GArray) jumps = g_array_new(FALSE, FALSE, sizeof(gint32));
    for (guint i = 0; i < n->kids->len; i++) {
      if (i + 1 < n->kids->len) {
        gint32 split = emit_inst(re, OP_SPLIT, 0, 0);
        inst_at(re, split)->x = split + 1;
        gen(re, n->kids->pdata[i]);
        gint32 j = emit_inst(re, OP_JMP, 0, 0);
        g_array_append_val(jumps, j);
        inst_at(re, split)->y = (gint32)re->prog->len;
      } else {
        gen(re, n->kids->pdata[i]);
      }
    }
    for (guint i = 0; i < jumps->len; i++)
      inst_at(re, g_array_index(jumps, gint32, i))->x = (gint32)re->prog->len;
    break;
  }
  case N_REPEAT: {
    for (gint i = 0; i < n->min; i++)
      gen(re, n->kid);
    if (n->max < 0) {
      gint32 loop = emit_inst(re, OP_SPLIT, 0, 0);
      inst_at(re, loop)->x = loop + 1;
      gen(re, n->kid);
      emit_inst(re, OP_JMP, loop, 0);
      inst_at(re, loop)->y = (gint32)re->prog->len;
    } else {
      g_autoptr(GArray) splits = g_array_new(FALSE, FALSE, sizeof(gint32));
      for (gint i = n->min; i < n->max; i++) {
        gint32 s = emit_inst(re, OP_SPLIT, 0, 0);
        inst_at(re, s)->x = s + 1;
        g_array_append_val(splits, s);
        gen(re, n->kid);
      }
      for (guint i = 0; i < splits->len; i++)
        inst_at(re, g_array_index(splits, gint32, i))->y = (gint32)re->prog->len;
    }
    break;
  }
  case N_LOOK:
  case N_NLOOK: {
    gint32 l = emit_inst(re, n->kind == N_LOOK ? OP_LOOK : OP_NLOOK, 0, 0);
    gen(re, n->kid);
    emit_inst(re, OP_MATCH, 0, 0);
    inst_at(re, l)->y = (gint32)re->prog->len;
    break;
  }
  }
}

static gboolean
pattern_is_category(const char *p)
{
  static const char *const cats[] = {"\\p{N}",  "\\p{L}",  "\\p{P}",  "\\p{M}",  "\\p{S}",
                                     "\\p{Lu}", "\\p{Ll}", "\\p{Lt}", "\\p{Lm}", "\\p{Lo}"};
  for (gsize i = 0; i < G_N_ELEMENTS(cats); i++)
    if (strstr(p, cats[i]))
      return TRUE;
  return FALSE;
}

void
wh_regex_free(wh_regex *re)
{
  if (re == NULL)
    return;
  for (guint i = 0; i < re->classes->len; i++)
    g_array_free(g_array_index(re->classes, rx_class, i).ranges, TRUE);
  g_array_free(re->classes, TRUE);
  g_array_free(re->prog, TRUE);
  g_free(re);
}

wh_regex *
wh_regex_compile(const char *pattern, char **error_message)
{
  wh_regex *re = g_new0(wh_regex, 1);
  re->category = pattern_is_category(pattern);
  re->classes = g_array_new(FALSE, FALSE, sizeof(rx_class));
  re->prog = g_array_new(FALSE, FALSE, sizeof(rx_inst));
  parser ps = {pattern, pattern + strlen(pattern),
               pattern, re,
               NULL,    g_ptr_array_new_with_free_func(free_node)};
  rx_node *root = parse_alt(&ps);
  if (!ps.error && ps.p != ps.end)
    fail(&ps, "unbalanced )");
  if (!ps.error && has_empty_loop(root))
    fail(&ps, "a repeated group that can match nothing");
  if (!ps.error) {
    gen(re, root);
    emit_inst(re, OP_MATCH, 0, 0);
  }
  g_ptr_array_free(ps.all, TRUE);
  if (ps.error) {
    if (error_message)
      *error_message = ps.error;
    else
      g_free(ps.error);
    wh_regex_free(re);
    return NULL;
  }
  return re;
}

/* --- execution --------------------------------------------------------------------------- */

typedef struct {
  const wh_regex *re;
  const guint32 *cp;
  const guint8 *fl;
  gsize b;
  GArray *stack; /* backtrack points: gsize pairs (pc, sp) */
} run_ctx;

static inline guint32
symbol_at(const run_ctx *r, gsize i)
{
  guint32 c = r->cp[i];
  if (c < 128)
    return c;
  guint8 f = r->fl[i];
  if (f & WH_UC_WHITESPACE)
    return 0x0B;
  if (!r->re->category)
    return c;
  switch (f & WH_UC_CLASS_MASK) {
  case WH_UC_LETTER:
    return PH_BASE + PH_LETTER;
  case WH_UC_NUMBER:
    return PH_BASE + PH_NUMBER;
  case WH_UC_PUNCT:
    return PH_BASE + PH_PUNCT;
  case WH_UC_MARK:
    return PH_BASE + PH_MARK;
  case WH_UC_SYMBOL:
    return PH_BASE + PH_SYMBOL;
  default:
    return PH_BASE + PH_OTHER;
  }
}

/* Runs from (pc, sp); TRUE with *end at the first MATCH reached in priority order. */
static gboolean
run(run_ctx *r, gint32 pc0, gsize sp0, gsize *end)
{
  const rx_inst *prog = (const rx_inst *)r->re->prog->data;
  const rx_class *classes = (const rx_class *)r->re->classes->data;
  guint base = r->stack->len;
  gsize pt[2] = {(gsize)pc0, sp0};
  g_array_append_vals(r->stack, pt, 2);
  while (r->stack->len > base) {
    gsize *top = &g_array_index(r->stack, gsize, r->stack->len - 2);
    gint32 pc = (gint32)top[0];
    gsize sp = top[1];
    g_array_set_size(r->stack, r->stack->len - 2);
    for (;;) {
      const rx_inst *in = &prog[pc];
      if (in->op == OP_CLASS) {
        if (sp < r->b && cls_match(&classes[in->x], symbol_at(r, sp))) {
          pc++;
          sp++;
          continue;
        }
        break;
      } else if (in->op == OP_SPLIT) {
        gsize alt[2] = {(gsize)in->y, sp};
        g_array_append_vals(r->stack, alt, 2);
        pc = in->x;
      } else if (in->op == OP_JMP) {
        pc = in->x;
      } else if (in->op == OP_END) {
        if (sp != r->b)
          break;
        pc++;
      } else if (in->op == OP_LOOK || in->op == OP_NLOOK) {
        gsize ignored;
        gboolean m = run(r, pc + 1, sp, &ignored);
        prog = (const rx_inst *)r->re->prog->data;
        if (m != (in->op == OP_LOOK))
          break;
        pc = in->y;
      } else { /* OP_MATCH */
        *end = sp;
        g_array_set_size(r->stack, base);
        return TRUE;
      }
    }
  }
  return FALSE;
}

void
wh_regex_split(const wh_regex *re, const guint32 *cp, const guint8 *fl, gsize a, gsize b,
               GArray *ends)
{
  run_ctx r = {re, cp, fl, b, g_array_new(FALSE, FALSE, sizeof(gsize))};
  gsize start = a, p = a;
  while (p < b) {
    gsize e;
    if (!run(&r, 0, p, &e)) {
      p++;
      continue;
    }
    if (e == p) { /* zero-length match: a split point */
      if (p > start) {
        g_array_append_val(ends, p);
        start = p;
      }
      p++;
      continue;
    }
    if (p > start)
      g_array_append_val(ends, p);
    g_array_append_val(ends, e);
    start = p = e;
  }
  if (b > start)
    g_array_append_val(ends, b);
  g_array_free(r.stack, TRUE);
}
