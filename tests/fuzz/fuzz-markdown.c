/* fuzz-markdown.c — the Markdown parser and inline converter of model cards and chat
 * messages (app/gui/whittle-markdown-parse.c) on arbitrary text.
 *
 * Each input is parsed into blocks; every block's text goes through the inline converter,
 * and the markup must be valid UTF-8 that Pango accepts (links removed first: GtkLabel
 * handles <a>, Pango does not). Seeds: the Markdown files of the shared data and hand-made
 * nesting, fences, tables, links and entity cases.
 */
#include "config.h"

#include <pango/pango.h>
#include <string.h>

#include "fuzz-main.h"
#include "wh-test-util.h"
#include "whittle-markdown-parse.h"

static void
check_markup(const char *markup)
{
  if (!g_utf8_validate(markup, -1, NULL))
    g_error("inline markup is not UTF-8");
  /* Drop <a href="..."> and </a>: Pango's parser does not know them. */
  GString *plain = g_string_new(NULL);
  for (const char *p = markup; *p;) {
    if (g_str_has_prefix(p, "<a href=\"")) {
      const char *end = strstr(p, "\">");
      if (end == NULL)
        g_error("unterminated link in markup");
      p = end + 2;
    } else if (g_str_has_prefix(p, "</a>")) {
      p += 4;
    } else {
      g_string_append_c(plain, *p++);
    }
  }
  GError *error = NULL;
  if (!pango_parse_markup(plain->str, -1, 0, NULL, NULL, NULL, &error))
    g_error("invalid markup (%s): %s", error->message, markup);
  g_string_free(plain, TRUE);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = g_strndup((const char *)data, size);
  GPtrArray *blocks = whittle_markdown_parse(text);
  for (guint i = 0; i < blocks->len; i++) {
    WhittleMarkdownBlock *b = blocks->pdata[i];
    if (!g_utf8_validate(b->text, -1, NULL) || (b->marker && !g_utf8_validate(b->marker, -1, NULL)))
      g_error("block %u is not valid UTF-8", i);
    if (b->kind == WHITTLE_MD_CODE || b->kind == WHITTLE_MD_TABLE || b->kind == WHITTLE_MD_RULE)
      continue;
    char *markup = whittle_markdown_inline_to_markup(b->text, i % 2 ? "https://h.example/x" : NULL);
    check_markup(markup);
    g_free(markup);
  }
  g_ptr_array_unref(blocks);
  g_free(text);
  return 0;
}

static void
add_dir(GPtrArray *seeds, const char *dir, int depth)
{
  GDir *d = depth < 4 ? g_dir_open(dir, 0, NULL) : NULL;
  const char *name;
  while (d && (name = g_dir_read_name(d))) {
    char *path = g_build_filename(dir, name, NULL);
    char *contents = NULL;
    gsize len = 0;
    if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK))
      add_dir(seeds, path, depth + 1);
    else if (g_str_has_suffix(name, ".md") && g_file_get_contents(path, &contents, &len, NULL))
      g_ptr_array_add(seeds, g_bytes_new_take(contents, MIN(len, 65536)));
    g_free(path);
  }
  if (d)
    g_dir_close(d);
}

void
wh_fuzz_collect_seeds(GPtrArray *seeds)
{
  static const char *const cases[] = {
      "# H\n\ntext **b *i* b** `c` [l](http://x \"t\") ![a](i.png) <b>x</b> &amp;&nbsp;&#39;",
      "---\nyaml: 1\n---\n- a\n  - b\n    1. c\n> q\n> \n***\n| a | b |\n|--|--|\n| 1 | \\| |",
      "```py\ncode\n~~~\n```\n````\nx\n````\n~~~\nunterminated",
      "**********************************************************************",
      "[[[[[[[[[[[[[[[[[[[[](((((((((((((((((((((((((((((((((((((",
      "_a_b_c_ __d__ ~~e~~ ~f~ <https://a.b/c?d=1&e=2> http://x.y/z). \\*x\\*",
      "Title\n=====\nSub\n---\n\n<div>\n<img src=x>\n</div>\n\r\n\r\rtext\\\nbreak  \nline",
      "\xff\xfe"
      "bad utf8 **\xc3\x28**",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
    g_ptr_array_add(seeds, g_bytes_new_static(cases[i], strlen(cases[i])));
  char *root = wh_test_shared_path(".");
  add_dir(seeds, root, 0);
  g_free(root);
}
