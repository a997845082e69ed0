/* whittle-markdown-parse.c — see whittle-markdown-parse.h. */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "whittle-markdown-parse.h"

/* --- Block parser -------------------------------------------------------- */

void
whittle_markdown_block_free(WhittleMarkdownBlock *block)
{
  if (block == NULL)
    return;
  g_free(block->marker);
  g_free(block->text);
  g_free(block);
}

static WhittleMarkdownBlock *
block_new(WhittleMarkdownKind kind, int level, const char *marker, const char *text)
{
  WhittleMarkdownBlock *b = g_new0(WhittleMarkdownBlock, 1);
  b->kind = kind;
  b->level = level;
  b->marker = g_strdup(marker);
  b->text = g_strdup(text ? text : "");
  return b;
}

static gsize
leading_spaces(const char *line)
{
  gsize n = 0;
  while (line[n] == ' ' || line[n] == '\t')
    n++;
  return n;
}

static gboolean
is_blank(const char *line)
{
  return line[leading_spaces(line)] == '\0';
}

/* "```lang" or "~~~": returns the fence length (>= 3) and its character. */
static gsize
fence_length(const char *line, char *fence_char)
{
  const char *p = line + leading_spaces(line);
  if (p - line > 3 || (*p != '`' && *p != '~'))
    return 0;
  gsize n = 0;
  while (p[n] == *p)
    n++;
  if (n < 3)
    return 0;
  *fence_char = *p;
  return n;
}

/* A thematic break: three or more of the same '-', '*' or '_', spaces allowed. */
static gboolean
is_rule(const char *line)
{
  const char *p = line + leading_spaces(line);
  char c = *p;
  guint n = 0;
  if (c != '-' && c != '*' && c != '_')
    return FALSE;
  for (; *p; p++) {
    if (*p == c)
      n++;
    else if (*p != ' ' && *p != '\t')
      return FALSE;
  }
  return n >= 3;
}

/* "=====" or "-----" under a paragraph line (setext heading): 1 or 2, else 0. */
static int
setext_level(const char *line)
{
  const char *p = line + leading_spaces(line);
  char c = *p;
  if (c != '=' && c != '-')
    return 0;
  while (*p == c)
    p++;
  return is_blank(p) ? (c == '=' ? 1 : 2) : 0;
}

/* "- item", "* item", "+ item", "12. item", "3) item". Sets the marker and where the text
 * starts; returns FALSE when the line is not a list item. */
static gboolean
parse_list_item(const char *line, gsize *indent, char **marker, const char **text)
{
  gsize sp = leading_spaces(line);
  const char *p = line + sp;
  if ((*p == '-' || *p == '*' || *p == '+') && (p[1] == ' ' || p[1] == '\t')) {
    *marker = g_strdup("•");
    p += 2;
  } else if (g_ascii_isdigit(*p)) {
    const char *q = p;
    while (g_ascii_isdigit(*q) && q - p < 9)
      q++;
    if ((*q != '.' && *q != ')') || (q[1] != ' ' && q[1] != '\t'))
      return FALSE;
    *marker = g_strdup_printf("%.*s.", (int)(q - p), p);
    p = q + 2;
  } else {
    return FALSE;
  }
  *indent = sp;
  *text = p + leading_spaces(p);
  return TRUE;
}

static gboolean
is_table_line(const char *line)
{
  return line[leading_spaces(line)] == '|';
}

/* "|---|:--:|" */
static gboolean
is_table_separator(const char *line)
{
  gboolean dash = FALSE;
  for (const char *p = line; *p; p++) {
    if (*p == '-')
      dash = TRUE;
    else if (*p != '|' && *p != ':' && *p != ' ' && *p != '\t')
      return FALSE;
  }
  return dash;
}

/* Splits a pipe-table row into trimmed cells (a "\|" stays in its cell). */
static GPtrArray *
table_cells(const char *line)
{
  GPtrArray *cells = g_ptr_array_new_with_free_func(g_free);
  const char *p = line + leading_spaces(line);
  if (*p == '|')
    p++;
  GString *cell = g_string_new(NULL);
  for (; *p; p++) {
    if (*p == '\\' && p[1] == '|') {
      g_string_append_c(cell, '|');
      p++;
    } else if (*p == '|') {
      g_ptr_array_add(cells, g_strstrip(g_strdup(cell->str)));
      g_string_truncate(cell, 0);
    } else {
      g_string_append_c(cell, *p);
    }
  }
  g_autofree char *last = g_strstrip(g_string_free(cell, FALSE));
  if (*last)
    g_ptr_array_add(cells, g_steal_pointer(&last));
  return cells;
}

/* Lines of a table, columns padded to the widest cell (counted in characters). */
static char *
format_table(GPtrArray *rows)
{
  g_autoptr(GArray) widths = g_array_new(FALSE, TRUE, sizeof(glong));
  for (guint r = 0; r < rows->len; r++) {
    GPtrArray *cells = rows->pdata[r];
    if (cells->len > widths->len)
      g_array_set_size(widths, cells->len);
    for (guint c = 0; c < cells->len; c++) {
      glong w = g_utf8_strlen(cells->pdata[c], -1);
      if (w > g_array_index(widths, glong, c))
        g_array_index(widths, glong, c) = w;
    }
  }
  GString *out = g_string_new(NULL);
  for (guint r = 0; r < rows->len; r++) {
    GPtrArray *cells = rows->pdata[r];
    if (r > 0)
      g_string_append_c(out, '\n');
    for (guint c = 0; c < cells->len; c++) {
      const char *cell = cells->pdata[c];
      g_string_append(out, cell);
      if (c + 1 < cells->len) {
        glong pad = g_array_index(widths, glong, c) - g_utf8_strlen(cell, -1) + 2;
        for (glong i = 0; i < pad; i++)
          g_string_append_c(out, ' ');
      }
    }
    if (r == 0) { /* underline the header row */
      g_string_append_c(out, '\n');
      glong total = 0;
      for (guint c = 0; c < widths->len; c++)
        total += g_array_index(widths, glong, c) + (c + 1 < widths->len ? 2 : 0);
      for (glong i = 0; i < total; i++)
        g_string_append(out, "─");
    }
  }
  return g_string_free(out, FALSE);
}

/* Whether @text has anything left to show once HTML tags are dropped. */
static gboolean
has_visible_text(const char *text)
{
  gboolean in_tag = FALSE;
  for (const char *p = text; *p; p++) {
    if (*p == '<' && (g_ascii_isalpha(p[1]) || p[1] == '/' || p[1] == '!'))
      in_tag = TRUE;
    else if (in_tag && *p == '>')
      in_tag = FALSE;
    else if (!in_tag && !g_ascii_isspace(*p))
      return TRUE;
  }
  return FALSE;
}

typedef struct {
  GPtrArray *blocks;
  GString *para; /* open paragraph, quote or list item text */
  WhittleMarkdownKind para_kind;
  int para_level;
  char *para_marker;
} Parser;

static void
flush(Parser *ps)
{
  if (ps->para->len > 0 && has_visible_text(ps->para->str))
    g_ptr_array_add(ps->blocks,
                    block_new(ps->para_kind, ps->para_level, ps->para_marker, ps->para->str));
  g_string_truncate(ps->para, 0);
  g_clear_pointer(&ps->para_marker, g_free);
  ps->para_kind = WHITTLE_MD_PARAGRAPH;
  ps->para_level = 0;
}

/* Appends one source line to the open block: a hard break when the previous line ended
 * with two spaces or a backslash, else a space. */
static void
append_text(Parser *ps, const char *text)
{
  if (ps->para->len > 0) {
    gsize len = ps->para->len;
    if (ps->para->str[len - 1] == '\\') {
      g_string_truncate(ps->para, len - 1);
      g_string_append_c(ps->para, '\n');
    } else if (len >= 2 && ps->para->str[len - 1] == ' ' && ps->para->str[len - 2] == ' ') {
      g_string_truncate(ps->para, len - 2);
      g_string_append_c(ps->para, '\n');
    } else {
      g_string_append_c(ps->para, ' ');
    }
  }
  g_string_append(ps->para, text);
}

GPtrArray *
whittle_markdown_parse(const char *text)
{
  Parser ps = {g_ptr_array_new_with_free_func((GDestroyNotify)whittle_markdown_block_free),
               g_string_new(NULL), WHITTLE_MD_PARAGRAPH, 0, NULL};
  if (text == NULL)
    text = "";
  /* Invalid UTF-8 (a file in another encoding, or a streamed reply cut inside a character)
   * becomes U+FFFD: every block's text is valid for GTK. */
  g_autofree char *normalized = g_utf8_make_valid(text, -1);
  /* CRLF and lone CR become LF; tabs stay (leading_spaces counts them as one). */
  {
    char *w = normalized;
    for (const char *r = normalized; *r; r++) {
      if (*r == '\r') {
        if (r[1] != '\n')
          *w++ = '\n';
      } else {
        *w++ = *r;
      }
    }
    *w = '\0';
  }
  g_auto(GStrv) lines = g_strsplit(normalized, "\n", -1);
  guint n = g_strv_length(lines);
  guint i = 0;

  /* YAML front matter ("---" ... "---" at the very top), as on Hugging Face cards. */
  if (n > 0 && g_strcmp0(g_strchomp(lines[0]), "---") == 0) {
    for (guint j = 1; j < n; j++) {
      if (strcmp(lines[j], "---") == 0 || strcmp(lines[j], "...") == 0) {
        i = j + 1;
        break;
      }
    }
  }

  for (; i < n; i++) {
    const char *line = lines[i];
    char fence_char = 0;
    gsize fence = fence_length(line, &fence_char);

    if (fence) {
      flush(&ps);
      const char *info = line + leading_spaces(line) + fence;
      g_autofree char *lang = g_strstrip(g_strdup(info));
      GString *code = g_string_new(NULL);
      for (i++; i < n; i++) {
        char c2 = 0;
        gsize f2 = fence_length(lines[i], &c2);
        if (f2 >= fence && c2 == fence_char && is_blank(lines[i] + leading_spaces(lines[i]) + f2))
          break;
        if (code->len)
          g_string_append_c(code, '\n');
        g_string_append(code, lines[i]);
      }
      g_ptr_array_add(ps.blocks, block_new(WHITTLE_MD_CODE, 0, *lang ? lang : NULL, code->str));
      g_string_free(code, TRUE);
      continue;
    }
    if (is_blank(line)) {
      flush(&ps);
      continue;
    }
    const char *p = line + leading_spaces(line);
    if (*p == '#') {
      int level = 0;
      while (p[level] == '#')
        level++;
      if (level <= 6 && (p[level] == ' ' || p[level] == '\t' || p[level] == '\0')) {
        flush(&ps);
        g_autofree char *title = g_strstrip(g_strdup(p + level));
        gsize len = strlen(title); /* "## Title ##" */
        while (len > 0 && title[len - 1] == '#')
          title[--len] = '\0';
        g_strchomp(title);
        g_ptr_array_add(ps.blocks, block_new(WHITTLE_MD_HEADING, level, NULL, title));
        continue;
      }
    }
    if (ps.para->len > 0 && ps.para_kind == WHITTLE_MD_PARAGRAPH && setext_level(line)) {
      g_autofree char *title = g_strdup(ps.para->str);
      g_string_truncate(ps.para, 0);
      g_ptr_array_add(ps.blocks, block_new(WHITTLE_MD_HEADING, setext_level(line), NULL, title));
      continue;
    }
    if (is_rule(line)) {
      flush(&ps);
      g_ptr_array_add(ps.blocks, block_new(WHITTLE_MD_RULE, 0, NULL, NULL));
      continue;
    }
    if (*p == '>') {
      if (ps.para_kind != WHITTLE_MD_QUOTE)
        flush(&ps);
      ps.para_kind = WHITTLE_MD_QUOTE;
      while (*p == '>' || *p == ' ')
        p++;
      if (*p)
        append_text(&ps, p);
      else
        g_string_append(ps.para, ps.para->len ? "\\" : ""); /* "> " alone: a break */
      continue;
    }
    gsize indent = 0;
    char *marker = NULL;
    const char *item_text = NULL;
    if (parse_list_item(line, &indent, &marker, &item_text)) {
      flush(&ps);
      ps.para_kind = WHITTLE_MD_LIST_ITEM;
      ps.para_level = (int)MIN(indent / 2, 6);
      ps.para_marker = marker;
      g_string_append(ps.para, item_text);
      continue;
    }
    if (is_table_line(line)) {
      flush(&ps);
      g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
      for (; i < n && is_table_line(lines[i]); i++)
        if (!is_table_separator(lines[i]))
          g_ptr_array_add(rows, table_cells(lines[i]));
      i--;
      g_autofree char *table = format_table(rows);
      g_ptr_array_add(ps.blocks, block_new(WHITTLE_MD_TABLE, 0, NULL, table));
      continue;
    }
    /* A lazy continuation line of a list item or quote joins it; anything else is part of
     * the paragraph. */
    append_text(&ps, p);
  }
  flush(&ps);
  g_string_free(ps.para, TRUE);
  return ps.blocks;
}

/* --- Inline converter ---------------------------------------------------- */

#define MAX_DEPTH 8

typedef struct {
  const char *base_uri;
  gboolean in_link;
} Inline;

static void convert_inline(GString *out, const char *s, gsize len, Inline *ctx, int depth);

static void
append_escaped(GString *out, const char *s, gssize len)
{
  g_autofree char *esc = g_markup_escape_text(s, len);
  g_string_append(out, esc);
}

/* The link target Pango may open, newly allocated, or NULL. */
static char *
resolve_link(const char *target, const char *base_uri)
{
  g_autofree char *t = g_strstrip(g_strdup(target));
  if (*t == '<' && t[strlen(t) - 1] == '>') { /* [x](<url with spaces>) */
    t[strlen(t) - 1] = '\0';
    memmove(t, t + 1, strlen(t));
  }
  char *space = strpbrk(t, " \t"); /* [x](url "title") */
  if (space)
    *space = '\0';
  if (*t == '\0' || *t == '#')
    return NULL;
  if (g_str_has_prefix(t, "http://") || g_str_has_prefix(t, "https://") ||
      g_str_has_prefix(t, "mailto:"))
    return g_steal_pointer(&t);
  if (strchr(t, ':') != NULL || base_uri == NULL || *base_uri == '\0')
    return NULL; /* other schemes (javascript:, file:) are never links */
  const char *rel = t;
  while (g_str_has_prefix(rel, "./"))
    rel += 2;
  while (*rel == '/')
    rel++;
  return g_strdup_printf("%s/%s", base_uri, rel);
}

/* Finds the closing delimiter run of exactly @n @c characters in @s[from..len), not
 * preceded by whitespace. Returns its offset or -1. */
static gssize
find_closing(const char *s, gsize from, gsize len, char c, gsize n)
{
  for (gsize i = from; i + n <= len; i++) {
    if (s[i] == '\\') {
      i++;
      continue;
    }
    if (s[i] == '`') { /* code spans hide delimiters */
      gsize j = i;
      while (j < len && s[j] == '`')
        j++;
      gsize run = j - i;
      const char *close = NULL;
      for (gsize k = j; k + run <= len; k++)
        if (memcmp(s + k, s + i, run) == 0) {
          close = s + k;
          break;
        }
      if (close)
        i = (gsize)(close - s) + run - 1;
      continue;
    }
    if (s[i] != c)
      continue;
    gsize j = i;
    while (j < len && s[j] == c)
      j++;
    if (j - i == n && i > from && !g_ascii_isspace(s[i - 1]) &&
        (c != '_' || j >= len || !g_ascii_isalnum(s[j])))
      return (gssize)i;
    i = j - 1;
  }
  return -1;
}

/* "[text](target)" starting at s[i] == '['. Sets the parts; returns the offset past ')'. */
static gsize
parse_link(const char *s, gsize i, gsize len, gsize *text_start, gsize *text_end,
           gsize *target_start, gsize *target_end)
{
  int nest = 0;
  gsize j = i;
  for (; j < len; j++) {
    if (s[j] == '\\') {
      j++;
      continue;
    }
    if (s[j] == '[')
      nest++;
    else if (s[j] == ']' && --nest == 0)
      break;
  }
  if (j >= len || j + 1 >= len || s[j + 1] != '(')
    return 0;
  gsize k = j + 2;
  int paren = 1;
  for (; k < len; k++) {
    if (s[k] == '(')
      paren++;
    else if (s[k] == ')' && --paren == 0)
      break;
  }
  if (k >= len)
    return 0;
  *text_start = i + 1;
  *text_end = j;
  *target_start = j + 2;
  *target_end = k;
  return k + 1;
}

static void
append_link(GString *out, const char *href, const char *s, gsize start, gsize end, Inline *ctx,
            int depth)
{
  if (href && !ctx->in_link) {
    g_autofree char *esc = g_markup_escape_text(href, -1);
    g_string_append_printf(out, "<a href=\"%s\">", esc);
    ctx->in_link = TRUE;
    convert_inline(out, s + start, end - start, ctx, depth + 1);
    ctx->in_link = FALSE;
    g_string_append(out, "</a>");
  } else {
    convert_inline(out, s + start, end - start, ctx, depth + 1);
  }
}

static const struct {
  const char *name;
  const char *text;
} entities[] = {
    {"&amp;", "&"}, {"&lt;", "<"},   {"&gt;", ">"},        {"&quot;", "\""},
    {"&#39;", "'"}, {"&apos;", "'"}, {"&nbsp;", "\u00a0"},
};

static void
convert_inline(GString *out, const char *s, gsize len, Inline *ctx, int depth)
{
  if (depth > MAX_DEPTH) {
    append_escaped(out, s, (gssize)len);
    return;
  }
  for (gsize i = 0; i < len;) {
    char c = s[i];

    if (c == '\\' && i + 1 < len && g_ascii_ispunct(s[i + 1])) {
      append_escaped(out, s + i + 1, 1);
      i += 2;
      continue;
    }
    if (c == '\n') {
      g_string_append_c(out, '\n');
      i++;
      continue;
    }
    if (c == '`') {
      gsize j = i;
      while (j < len && s[j] == '`')
        j++;
      gsize run = j - i;
      gssize close = -1;
      for (gsize k = j; k + run <= len; k++) {
        if (memcmp(s + k, s + i, run) == 0 && (k + run == len || s[k + run] != '`')) {
          close = (gssize)k;
          break;
        }
      }
      if (close >= 0) {
        g_autofree char *code = g_strstrip(g_strndup(s + j, (gsize)close - j));
        g_string_append(out, "<tt>");
        append_escaped(out, code, -1);
        g_string_append(out, "</tt>");
        i = (gsize)close + run;
      } else {
        append_escaped(out, s + i, (gssize)run);
        i = j;
      }
      continue;
    }
    if ((c == '[' || (c == '!' && i + 1 < len && s[i + 1] == '['))) {
      gsize at = c == '!' ? i + 1 : i;
      gsize ts, te, us, ue;
      gsize next = parse_link(s, at, len, &ts, &te, &us, &ue);
      if (next) {
        g_autofree char *target = g_strndup(s + us, ue - us);
        g_autofree char *href = resolve_link(target, ctx->base_uri);
        if (c == '!' && te == ts) { /* an image without alt text */
          g_autofree char *label = g_strdup(_("image"));
          if (href && !ctx->in_link) {
            g_autofree char *esc = g_markup_escape_text(href, -1);
            g_string_append_printf(out, "<a href=\"%s\">%s</a>", esc, label);
          }
        } else {
          append_link(out, href, s, ts, te, ctx, depth);
        }
        i = next;
        continue;
      }
    }
    if (c == '<') {
      gsize j = i + 1;
      while (j < len && s[j] != '>' && s[j] != '<' && s[j] != '\n')
        j++;
      if (j < len && s[j] == '>') {
        g_autofree char *inner = g_strndup(s + i + 1, j - i - 1);
        if (g_str_has_prefix(inner, "http://") || g_str_has_prefix(inner, "https://")) {
          g_autofree char *esc = g_markup_escape_text(inner, -1);
          if (ctx->in_link)
            g_string_append(out, esc);
          else
            g_string_append_printf(out, "<a href=\"%s\">%s</a>", esc, esc);
          i = j + 1;
          continue;
        }
        if (g_ascii_isalpha(inner[0]) || inner[0] == '/' || inner[0] == '!') {
          /* An HTML tag: dropped; <br> keeps its line break. */
          if (g_ascii_strncasecmp(inner, "br", 2) == 0 && !g_ascii_isalpha(inner[2]))
            g_string_append_c(out, '\n');
          i = j + 1;
          continue;
        }
      }
    }
    if (c == '&') {
      gboolean decoded = FALSE;
      for (gsize e = 0; e < G_N_ELEMENTS(entities); e++) {
        gsize el = strlen(entities[e].name);
        if (i + el <= len && g_ascii_strncasecmp(s + i, entities[e].name, el) == 0) {
          append_escaped(out, entities[e].text, -1);
          i += el;
          decoded = TRUE;
          break;
        }
      }
      if (decoded)
        continue;
    }
    if ((c == '*' || c == '_' || c == '~') && !(c == '_' && i > 0 && g_ascii_isalnum(s[i - 1]))) {
      gsize j = i;
      while (j < len && s[j] == c)
        j++;
      gsize run = j - i;
      gboolean opens = j < len && !g_ascii_isspace(s[j]);
      if (opens && ((c == '~' && run == 2) || (c != '~' && run <= 3))) {
        gssize close = find_closing(s, j, len, c, run);
        if (close >= 0) {
          const char *open_tag = c == '~' ? "<s>" : run == 1 ? "<i>" : run == 2 ? "<b>" : "<b><i>";
          const char *close_tag = c == '~'   ? "</s>"
                                  : run == 1 ? "</i>"
                                  : run == 2 ? "</b>"
                                             : "</i></b>";
          g_string_append(out, open_tag);
          convert_inline(out, s + j, (gsize)close - j, ctx, depth + 1);
          g_string_append(out, close_tag);
          i = (gsize)close + run;
          continue;
        }
      }
      append_escaped(out, s + i, (gssize)run);
      i = j;
      continue;
    }
    if (c == 'h' && !ctx->in_link && (i == 0 || !g_ascii_isalnum(s[i - 1])) &&
        ((i + 7 < len && strncmp(s + i, "http://", 7) == 0) ||
         (i + 8 < len && strncmp(s + i, "https://", 8) == 0))) {
      gsize j = i;
      while (j < len && !g_ascii_isspace(s[j]) && s[j] != '<' && s[j] != '>' && s[j] != '"')
        j++;
      while (j > i && strchr(".,;:!?)'*_", s[j - 1]))
        j--;
      g_autofree char *url = g_strndup(s + i, j - i);
      g_autofree char *esc = g_markup_escape_text(url, -1);
      g_string_append_printf(out, "<a href=\"%s\">%s</a>", esc, esc);
      i = j;
      continue;
    }
    /* A plain character (a whole UTF-8 sequence). */
    gsize j = i + 1;
    while (j < len && ((guchar)s[j] & 0xC0) == 0x80)
      j++;
    append_escaped(out, s + i, (gssize)(j - i));
    i = j;
  }
}

char *
whittle_markdown_inline_to_markup(const char *text, const char *base_uri)
{
  GString *out = g_string_new(NULL);
  if (text == NULL)
    return g_string_free(out, FALSE);
  g_autofree char *valid = g_utf8_make_valid(text, -1);
  Inline ctx = {base_uri, FALSE};
  convert_inline(out, valid, strlen(valid), &ctx, 0);
  return g_string_free(out, FALSE);
}
