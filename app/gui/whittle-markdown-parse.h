/* whittle-markdown-parse.h — the Markdown parser of WhittleMarkdownView (GLib only).
 *
 * Design note
 * -----------
 * Split from the view so the fuzz target (tests/fuzz/fuzz-markdown.c) builds without GTK.
 * See whittle-markdown.h for what is supported. Pure functions, any thread; the markup
 * produced always parses (everything taken from the source is escaped), and the work is
 * bounded (inline emphasis nests at most 8 deep).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  WHITTLE_MD_PARAGRAPH,
  WHITTLE_MD_HEADING,   /* level = 1..6 */
  WHITTLE_MD_LIST_ITEM, /* level = nesting depth from 0; marker = "•" or "3." */
  WHITTLE_MD_CODE,      /* text = the code, verbatim; marker = the info string or NULL */
  WHITTLE_MD_QUOTE,
  WHITTLE_MD_RULE,
  WHITTLE_MD_TABLE, /* text = the table lines, columns aligned, verbatim cells */
} WhittleMarkdownKind;

typedef struct {
  WhittleMarkdownKind kind;
  int level;
  char *marker;
  char *text; /* inline Markdown (paragraphs, headings, items, quotes) or verbatim */
} WhittleMarkdownBlock;

void whittle_markdown_block_free(WhittleMarkdownBlock *block);

/* Splits @text (UTF-8, may be NULL) into blocks. Returns a GPtrArray of
 * WhittleMarkdownBlock* that owns them. Pure function, any thread. */
GPtrArray *whittle_markdown_parse(const char *text);

/* Converts one run of inline Markdown into Pango markup (newly allocated). Relative link
 * targets are joined to @base_uri (may be NULL: shown as text). Any thread. */
char *whittle_markdown_inline_to_markup(const char *text, const char *base_uri);

G_END_DECLS
