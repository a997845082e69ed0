/* whittle-markdown.h — Markdown for model cards and chat messages.
 *
 * Design note
 * -----------
 * For guib (chat): use WhittleMarkdownView for an assistant message and call
 * whittle_markdown_view_set_markdown() again with the whole text as tokens stream in;
 * blocks that did not change keep their widgets, so only the last block is rebuilt.
 * whittle_markdown_inline_to_markup() turns one line into Pango markup if you need a label.
 *
 * Owns: a small block parser (headings, paragraphs, bullet and numbered lists with nesting,
 * fenced code blocks, block quotes, rules, pipe tables; a YAML front matter block at the
 * very start is skipped, as Hugging Face model cards carry one) and an inline converter to
 * Pango markup (**bold**, *italic*, `code`, ~~strike~~, [links](url), <autolinks>, bare
 * http(s) URLs, images shown as their alt text linking to the image, backslash escapes;
 * HTML tags are dropped, the five XML entities and &nbsp; are decoded).
 * Promises: the markup it produces always parses (everything from the source is escaped);
 * links are only made for http, https and mailto targets (relative targets are resolved
 * against the view's base URI when one is set, otherwise shown as plain text). Code blocks
 * are monospace, selectable and have a Copy button. Nothing here blocks or does I/O.
 * Does not: render raw HTML, images or math.
 */
#pragma once

#include <adwaita.h>

#include "whittle-markdown-parse.h"

G_BEGIN_DECLS

#define WHITTLE_TYPE_MARKDOWN_VIEW (whittle_markdown_view_get_type())
G_DECLARE_FINAL_TYPE(WhittleMarkdownView, whittle_markdown_view, WHITTLE, MARKDOWN_VIEW, AdwBin)

GtkWidget *whittle_markdown_view_new(void);
/* Shows @markdown (NULL: nothing). Cheap to call repeatedly with a growing text. */
void whittle_markdown_view_set_markdown(WhittleMarkdownView *self, const char *markdown);
const char *whittle_markdown_view_get_markdown(WhittleMarkdownView *self);
/* Base for relative links, e.g. "https://huggingface.co/org/name/blob/main". */
void whittle_markdown_view_set_base_uri(WhittleMarkdownView *self, const char *base_uri);
/* Number of block widgets shown (for tests). */
guint whittle_markdown_view_get_n_blocks(WhittleMarkdownView *self);

G_END_DECLS
