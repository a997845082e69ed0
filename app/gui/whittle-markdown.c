/* whittle-markdown.c — see whittle-markdown.h. */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "whittle-markdown.h"

static gboolean
blocks_equal(const WhittleMarkdownBlock *a, const WhittleMarkdownBlock *b)
{
  return a->kind == b->kind && a->level == b->level && g_strcmp0(a->marker, b->marker) == 0 &&
         g_strcmp0(a->text, b->text) == 0;
}

/* --- The view ------------------------------------------------------------ */

struct _WhittleMarkdownView {
  AdwBin parent_instance;

  GtkBox *box;
  char *markdown;
  char *base_uri;
  GPtrArray *blocks;  /* WhittleMarkdownBlock*, parallel to widgets */
  GPtrArray *widgets; /* GtkWidget* (borrowed: children of box) */
};

G_DEFINE_FINAL_TYPE(WhittleMarkdownView, whittle_markdown_view, ADW_TYPE_BIN)

static GtkWidget *
make_label(const char *markup)
{
  GtkWidget *label = gtk_label_new(NULL);
  gtk_label_set_markup(GTK_LABEL(label), markup);
  gtk_label_set_wrap(GTK_LABEL(label), TRUE);
  gtk_label_set_wrap_mode(GTK_LABEL(label), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_xalign(GTK_LABEL(label), 0);
  gtk_widget_set_hexpand(label, TRUE);
  return label;
}

static void
on_copy_code_clicked(GtkButton *button, gpointer user_data)
{
  const char *code = g_object_get_data(G_OBJECT(button), "code");
  gdk_clipboard_set_text(gtk_widget_get_clipboard(GTK_WIDGET(button)), code);
  gtk_widget_set_tooltip_text(GTK_WIDGET(button), _("Copied"));
}

static GtkWidget *
make_code_block(const WhittleMarkdownBlock *b)
{
  GtkWidget *frame = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
  gtk_widget_add_css_class(frame, "card");

  GtkWidget *header = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_widget_set_margin_start(header, 12);
  gtk_widget_set_margin_end(header, 4);
  gtk_widget_set_margin_top(header, 4);
  GtkWidget *lang = gtk_label_new(b->marker ? b->marker : _("Code"));
  gtk_label_set_xalign(GTK_LABEL(lang), 0);
  gtk_widget_set_hexpand(lang, TRUE);
  gtk_widget_add_css_class(lang, "caption");
  gtk_widget_add_css_class(lang, "dim-label");
  gtk_box_append(GTK_BOX(header), lang);

  GtkWidget *copy = gtk_button_new_from_icon_name("edit-copy-symbolic");
  gtk_widget_add_css_class(copy, "flat");
  gtk_widget_set_tooltip_text(copy, _("Copy Code"));
  gtk_accessible_update_property(GTK_ACCESSIBLE(copy), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                 _("Copy Code"), -1);
  g_object_set_data_full(G_OBJECT(copy), "code", g_strdup(b->text), g_free);
  g_signal_connect(copy, "clicked", G_CALLBACK(on_copy_code_clicked), NULL);
  gtk_box_append(GTK_BOX(header), copy);
  gtk_box_append(GTK_BOX(frame), header);

  GtkWidget *label = gtk_label_new(b->text);
  gtk_label_set_xalign(GTK_LABEL(label), 0);
  gtk_label_set_selectable(GTK_LABEL(label), TRUE);
  gtk_widget_add_css_class(label, "monospace");
  gtk_widget_set_margin_start(label, 12);
  gtk_widget_set_margin_end(label, 12);
  gtk_widget_set_margin_bottom(label, 10);
  GtkWidget *scroller = gtk_scrolled_window_new();
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroller), GTK_POLICY_AUTOMATIC,
                                 GTK_POLICY_NEVER);
  gtk_scrolled_window_set_propagate_natural_height(GTK_SCROLLED_WINDOW(scroller), TRUE);
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroller), label);
  gtk_box_append(GTK_BOX(frame), scroller);
  return frame;
}

static GtkWidget *
make_block_widget(WhittleMarkdownView *self, const WhittleMarkdownBlock *b)
{
  switch (b->kind) {
  case WHITTLE_MD_HEADING: {
    g_autofree char *markup = whittle_markdown_inline_to_markup(b->text, self->base_uri);
    GtkWidget *label = make_label(markup);
    static const char *classes[] = {"title-1", "title-2", "title-3",
                                    "title-4", "heading", "heading"};
    gtk_widget_add_css_class(label, classes[CLAMP(b->level, 1, 6) - 1]);
    gtk_widget_set_margin_top(label, b->level <= 2 ? 12 : 6);
    gtk_accessible_update_property(GTK_ACCESSIBLE(label), GTK_ACCESSIBLE_PROPERTY_LEVEL, b->level,
                                   -1);
    return label;
  }
  case WHITTLE_MD_LIST_ITEM: {
    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    gtk_widget_set_margin_start(row, 6 + 18 * b->level);
    GtkWidget *marker = gtk_label_new(b->marker);
    gtk_label_set_yalign(GTK_LABEL(marker), 0);
    gtk_widget_set_valign(marker, GTK_ALIGN_START);
    gtk_widget_add_css_class(marker, "dim-label");
    gtk_widget_add_css_class(marker, "numeric");
    gtk_box_append(GTK_BOX(row), marker);
    g_autofree char *markup = whittle_markdown_inline_to_markup(b->text, self->base_uri);
    gtk_box_append(GTK_BOX(row), make_label(markup));
    return row;
  }
  case WHITTLE_MD_CODE:
    return make_code_block(b);
  case WHITTLE_MD_QUOTE: {
    g_autofree char *inner = whittle_markdown_inline_to_markup(b->text, self->base_uri);
    g_autofree char *markup = g_strdup_printf("<i>%s</i>", inner);
    GtkWidget *label = make_label(markup);
    gtk_widget_add_css_class(label, "dim-label");
    gtk_widget_set_margin_start(label, 18);
    return label;
  }
  case WHITTLE_MD_RULE:
    return gtk_separator_new(GTK_ORIENTATION_HORIZONTAL);
  case WHITTLE_MD_TABLE: {
    GtkWidget *label = gtk_label_new(b->text);
    gtk_label_set_xalign(GTK_LABEL(label), 0);
    gtk_label_set_selectable(GTK_LABEL(label), TRUE);
    gtk_widget_add_css_class(label, "monospace");
    GtkWidget *scroller = gtk_scrolled_window_new();
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroller), GTK_POLICY_AUTOMATIC,
                                   GTK_POLICY_NEVER);
    gtk_scrolled_window_set_propagate_natural_height(GTK_SCROLLED_WINDOW(scroller), TRUE);
    gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroller), label);
    return scroller;
  }
  case WHITTLE_MD_PARAGRAPH:
    break;
  }
  g_autofree char *markup = whittle_markdown_inline_to_markup(b->text, self->base_uri);
  return make_label(markup);
}

static void
rebuild(WhittleMarkdownView *self, gboolean keep_unchanged)
{
  g_autoptr(GPtrArray) blocks = whittle_markdown_parse(self->markdown);
  guint keep = 0;
  if (keep_unchanged)
    while (keep < blocks->len && keep < self->blocks->len &&
           blocks_equal(blocks->pdata[keep], self->blocks->pdata[keep]))
      keep++;

  while (self->widgets->len > keep) {
    GtkWidget *w = g_ptr_array_steal_index(self->widgets, self->widgets->len - 1);
    gtk_box_remove(self->box, w);
  }
  g_ptr_array_set_size(self->blocks, keep);
  for (guint i = keep; i < blocks->len; i++) {
    WhittleMarkdownBlock *b = blocks->pdata[i];
    GtkWidget *w = make_block_widget(self, b);
    gtk_box_append(self->box, w);
    g_ptr_array_add(self->widgets, w);
  }
  /* Move the new blocks over (the kept ones are equal). */
  for (guint i = keep; i < blocks->len; i++)
    g_ptr_array_add(self->blocks, g_steal_pointer(&blocks->pdata[i]));
}

void
whittle_markdown_view_set_markdown(WhittleMarkdownView *self, const char *markdown)
{
  g_return_if_fail(WHITTLE_IS_MARKDOWN_VIEW(self));
  if (g_strcmp0(self->markdown, markdown) == 0)
    return;
  g_free(self->markdown);
  self->markdown = g_strdup(markdown);
  rebuild(self, TRUE);
}

const char *
whittle_markdown_view_get_markdown(WhittleMarkdownView *self)
{
  g_return_val_if_fail(WHITTLE_IS_MARKDOWN_VIEW(self), NULL);
  return self->markdown;
}

void
whittle_markdown_view_set_base_uri(WhittleMarkdownView *self, const char *base_uri)
{
  g_return_if_fail(WHITTLE_IS_MARKDOWN_VIEW(self));
  if (g_strcmp0(self->base_uri, base_uri) == 0)
    return;
  g_free(self->base_uri);
  self->base_uri = g_strdup(base_uri);
  rebuild(self, FALSE);
}

guint
whittle_markdown_view_get_n_blocks(WhittleMarkdownView *self)
{
  g_return_val_if_fail(WHITTLE_IS_MARKDOWN_VIEW(self), 0);
  return self->widgets->len;
}

static void
whittle_markdown_view_finalize(GObject *object)
{
  WhittleMarkdownView *self = WHITTLE_MARKDOWN_VIEW(object);
  g_free(self->markdown);
  g_free(self->base_uri);
  g_ptr_array_unref(self->blocks);
  g_ptr_array_unref(self->widgets);
  G_OBJECT_CLASS(whittle_markdown_view_parent_class)->finalize(object);
}

static void
whittle_markdown_view_class_init(WhittleMarkdownViewClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = whittle_markdown_view_finalize;
  gtk_widget_class_set_accessible_role(GTK_WIDGET_CLASS(klass), GTK_ACCESSIBLE_ROLE_GROUP);
}

static void
whittle_markdown_view_init(WhittleMarkdownView *self)
{
  self->blocks = g_ptr_array_new_with_free_func((GDestroyNotify)whittle_markdown_block_free);
  self->widgets = g_ptr_array_new();
  self->box = GTK_BOX(gtk_box_new(GTK_ORIENTATION_VERTICAL, 10));
  adw_bin_set_child(ADW_BIN(self), GTK_WIDGET(self->box));
}

GtkWidget *
whittle_markdown_view_new(void)
{
  return g_object_new(WHITTLE_TYPE_MARKDOWN_VIEW, NULL);
}
