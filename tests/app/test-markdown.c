/* test-markdown.c — the Markdown renderer of model cards and chat messages.
 *
 * The parser and the inline converter are pure functions: checked on hand-written cases and
 * on every model card-like Markdown file of the shared data (the markup must always parse).
 * The view (needs a display) is checked for its incremental updates.
 */
#include "config.h"

#include <adwaita.h>
#include <string.h>

#include "wh-test-util.h"
#include "whittle-markdown.h"

static gboolean have_display;

static char *
md(const char *text)
{
  return whittle_markdown_inline_to_markup(text, "https://example.org/org/m/blob/main");
}

/* The markup must be accepted by Pango and give back @plain as text. */
static void
assert_markup(const char *markup, const char *plain)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  /* GtkLabel accepts <a>, Pango does not: replace it for the check. */
  g_autoptr(GRegex) re = g_regex_new("<a href=\"[^\"]*\">|</a>", 0, 0, NULL);
  g_autofree char *no_links = g_regex_replace_literal(re, markup, -1, 0, "", 0, NULL);
  g_assert_true(pango_parse_markup(no_links, -1, 0, NULL, &text, NULL, &error));
  g_assert_no_error(error);
  if (plain)
    g_assert_cmpstr(text, ==, plain);
}

static void
test_inline(void)
{
  static const struct {
    const char *in, *markup, *plain;
  } cases[] = {
      {"plain & <simple>", "plain &amp; ", "plain & "},
      {"**bold** and *it* and ***both***", "<b>bold</b> and <i>it</i> and <b><i>both</i></b>",
       "bold and it and both"},
      {"__b__ _i_ snake_case_name", "<b>b</b> <i>i</i> snake_case_name", "b i snake_case_name"},
      {"`a*b*c` and ``x ` y``", "<tt>a*b*c</tt> and <tt>x ` y</tt>", "a*b*c and x ` y"},
      {"[site](https://a.org/x?q=1&r=2)", "<a href=\"https://a.org/x?q=1&amp;r=2\">site</a>",
       "site"},
      {"[lic](LICENSE)", "<a href=\"https://example.org/org/m/blob/main/LICENSE\">lic</a>", "lic"},
      {"[bad](javascript:alert(1))", "bad", "bad"},
      {"see https://hf.co/x.", "see <a href=\"https://hf.co/x\">https://hf.co/x</a>.",
       "see https://hf.co/x."},
      {"<https://a.org>", "<a href=\"https://a.org\">https://a.org</a>", "https://a.org"},
      {"x<br/>y <div align=\"center\">z</div>", "x\ny z", "x\ny z"},
      {"\\*not\\* 2 * 3 * 4", "*not* 2 * 3 * 4", "*not* 2 * 3 * 4"},
      {"~~old~~ &amp; &lt;new&gt; a&nbsp;b", "<s>old</s> &amp; &lt;new&gt; a\u00a0b",
       "old & <new> a\u00a0b"},
      {"![logo](img.png) ![](x.png)", NULL, NULL},
      {"**unclosed and *half", "**unclosed and *half", "**unclosed and *half"},
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *out = md(cases[i].in);
    g_test_message("%s → %s", cases[i].in, out);
    if (cases[i].markup)
      g_assert_cmpstr(out, ==, cases[i].markup);
    assert_markup(out, cases[i].plain);
  }
  /* Images become links to the image, named by their alt text. */
  g_autofree char *img = md("![logo](img.png)");
  g_assert_cmpstr(img, ==, "<a href=\"https://example.org/org/m/blob/main/img.png\">logo</a>");
  /* Without a base, relative links stay text. */
  g_autofree char *rel = whittle_markdown_inline_to_markup("[lic](LICENSE)", NULL);
  g_assert_cmpstr(rel, ==, "lic");
  /* Invalid UTF-8 is repaired, never passed on. */
  g_autofree char *bad = md("a\xff\xfe b");
  assert_markup(bad, NULL);
  g_assert_true(g_utf8_validate(bad, -1, NULL));
}

static const char card[] = "---\n"
                           "license: apache-2.0\n"
                           "tags: [gguf]\n"
                           "---\n"
                           "# Model *card*\n"
                           "\n"
                           "Intro line one\n"
                           "line two.  \n"
                           "After a hard break.\n"
                           "\n"
                           "Setext Title\n"
                           "------------\n"
                           "- item one\n"
                           "  continued\n"
                           "- item two\n"
                           "  1. nested\n"
                           "\n"
                           "```sh\n"
                           "whittle-cli pull org/m\n"
                           "# not a heading\n"
                           "```\n"
                           "> quoted **text**\n"
                           "\n"
                           "***\n"
                           "| Quant | Size |\n"
                           "|:--|--:|\n"
                           "| Q4_K_M | 4.1 GB |\n"
                           "<p align=\"center\"><img src=\"x.png\"></p>\n";

static void
test_blocks(void)
{
  g_autoptr(GPtrArray) blocks = whittle_markdown_parse(card);
  static const struct {
    WhittleMarkdownKind kind;
    int level;
    const char *marker, *text;
  } want[] = {
      {WHITTLE_MD_HEADING, 1, NULL, "Model *card*"},
      {WHITTLE_MD_PARAGRAPH, 0, NULL, "Intro line one line two.\nAfter a hard break."},
      {WHITTLE_MD_HEADING, 2, NULL, "Setext Title"},
      {WHITTLE_MD_LIST_ITEM, 0, "•", "item one continued"},
      {WHITTLE_MD_LIST_ITEM, 0, "•", "item two"},
      {WHITTLE_MD_LIST_ITEM, 1, "1.", "nested"},
      {WHITTLE_MD_CODE, 0, "sh", "whittle-cli pull org/m\n# not a heading"},
      {WHITTLE_MD_QUOTE, 0, NULL, "quoted **text**"},
      {WHITTLE_MD_RULE, 0, NULL, ""},
      {WHITTLE_MD_TABLE, 0, NULL, "Quant   Size\n──────────────\nQ4_K_M  4.1 GB"},
  };
  for (guint i = 0; i < blocks->len; i++) {
    WhittleMarkdownBlock *b = blocks->pdata[i];
    g_test_message("block %u: kind %d level %d marker %s: %s", i, b->kind, b->level, b->marker,
                   b->text);
  }
  /* The trailing HTML-only paragraph has nothing to show and is dropped. */
  g_assert_cmpuint(blocks->len, ==, G_N_ELEMENTS(want));
  for (guint i = 0; i < G_N_ELEMENTS(want); i++) {
    WhittleMarkdownBlock *b = blocks->pdata[i];
    g_assert_cmpint(b->kind, ==, want[i].kind);
    g_assert_cmpint(b->level, ==, want[i].level);
    g_assert_cmpstr(b->marker, ==, want[i].marker);
    g_assert_cmpstr(b->text, ==, want[i].text);
  }

  /* An unterminated fence runs to the end (streaming chat). */
  g_autoptr(GPtrArray) open = whittle_markdown_parse("text\n```\ncode so far");
  g_assert_cmpuint(open->len, ==, 2);
  g_assert_cmpint(((WhittleMarkdownBlock *)open->pdata[1])->kind, ==, WHITTLE_MD_CODE);
  g_assert_cmpstr(((WhittleMarkdownBlock *)open->pdata[1])->text, ==, "code so far");

  /* A reply streamed so far may end inside a UTF-8 character: every block stays valid. */
  g_autoptr(GPtrArray) cut = whittle_markdown_parse("```\nprint('\xc3");
  g_assert_cmpuint(cut->len, ==, 1);
  g_assert_true(g_utf8_validate(((WhittleMarkdownBlock *)cut->pdata[0])->text, -1, NULL));

  g_autoptr(GPtrArray) none = whittle_markdown_parse(NULL);
  g_assert_cmpuint(none->len, ==, 0);
  g_autoptr(GPtrArray) crlf = whittle_markdown_parse("# T\r\n\r\npara\r\n");
  g_assert_cmpuint(crlf->len, ==, 2);
  g_assert_cmpstr(((WhittleMarkdownBlock *)crlf->pdata[1])->text, ==, "para");
}

/* Every Markdown file of the shared data (READMEs, design notes) parses into blocks whose
 * markup is valid. */
static void
check_file(const char *path, guint *n_files, guint *n_blocks)
{
  g_autofree char *text = NULL;
  g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
  g_autoptr(GPtrArray) blocks = whittle_markdown_parse(text);
  for (guint i = 0; i < blocks->len; i++) {
    WhittleMarkdownBlock *b = blocks->pdata[i];
    if (b->kind == WHITTLE_MD_CODE || b->kind == WHITTLE_MD_TABLE || b->kind == WHITTLE_MD_RULE)
      continue;
    g_autofree char *markup = md(b->text);
    assert_markup(markup, NULL);
  }
  (*n_files)++;
  *n_blocks += blocks->len;
}

static void
walk(const char *dir, guint *n_files, guint *n_blocks, int depth)
{
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  const char *name;
  if (d == NULL || depth > 4)
    return;
  while ((name = g_dir_read_name(d))) {
    g_autofree char *path = g_build_filename(dir, name, NULL);
    if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK))
      walk(path, n_files, n_blocks, depth + 1);
    else if (g_str_has_suffix(name, ".md"))
      check_file(path, n_files, n_blocks);
  }
}

static void
test_shared_files(void)
{
  g_autofree char *root = wh_test_shared_path(".");
  if (!g_file_test(root, G_FILE_TEST_IS_DIR)) {
    g_test_skip("shared data missing");
    return;
  }
  guint n_files = 0, n_blocks = 0;
  walk(root, &n_files, &n_blocks, 0);
  g_test_message("%u Markdown files, %u blocks", n_files, n_blocks);
  g_assert_cmpuint(n_files, >, 0);
  g_assert_cmpuint(n_blocks, >, n_files);
}

/* Streaming: a growing text keeps the widgets of the unchanged blocks. */
static void
test_view(void)
{
  if (!have_display) {
    g_test_skip("no display");
    return;
  }
  GtkWidget *view = g_object_ref_sink(whittle_markdown_view_new());
  WhittleMarkdownView *mv = WHITTLE_MARKDOWN_VIEW(view);
  whittle_markdown_view_set_markdown(mv, "# Title\n\nFirst para");
  g_assert_cmpuint(whittle_markdown_view_get_n_blocks(mv), ==, 2);
  GtkWidget *first = gtk_widget_get_first_child(gtk_widget_get_first_child(view));
  whittle_markdown_view_set_markdown(mv, "# Title\n\nFirst paragraph.\n\n```c\nint x;");
  g_assert_cmpuint(whittle_markdown_view_get_n_blocks(mv), ==, 3);
  g_assert_true(gtk_widget_get_first_child(gtk_widget_get_first_child(view)) == first);
  g_assert_true(gtk_widget_has_css_class(first, "title-1"));

  /* The code block has a labelled Copy button. */
  GtkWidget *code = gtk_widget_get_last_child(gtk_widget_get_first_child(view));
  g_assert_true(gtk_widget_has_css_class(code, "card"));
  GtkWidget *header = gtk_widget_get_first_child(code);
  GtkWidget *copy = gtk_widget_get_last_child(header);
  g_assert_true(GTK_IS_BUTTON(copy));
  gtk_test_accessible_assert_property(GTK_ACCESSIBLE(copy), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      "Copy Code");
  gtk_test_accessible_assert_role(GTK_ACCESSIBLE(copy), GTK_ACCESSIBLE_ROLE_BUTTON);

  whittle_markdown_view_set_markdown(mv, NULL);
  g_assert_cmpuint(whittle_markdown_view_get_n_blocks(mv), ==, 0);
  g_object_unref(view);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  have_display = g_getenv("DISPLAY") || g_getenv("WAYLAND_DISPLAY");
  if (have_display)
    have_display = gtk_init_check();
  if (have_display)
    adw_init();

  g_test_add_func("/markdown/inline", test_inline);
  g_test_add_func("/markdown/blocks", test_blocks);
  g_test_add_func("/markdown/shared-files", test_shared_files);
  g_test_add_func("/markdown/view", test_view);
  return g_test_run();
}
