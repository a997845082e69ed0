/* whittle-browse-page.c — see whittle-browse-page.h. */
#include "config.h"

#include "whittle-browse-page.h"

struct _WhittleBrowsePage {
  AdwBin parent_instance;
};

G_DEFINE_FINAL_TYPE(WhittleBrowsePage, whittle_browse_page, ADW_TYPE_BIN)

static void
whittle_browse_page_dispose(GObject *object)
{
  gtk_widget_dispose_template(GTK_WIDGET(object), WHITTLE_TYPE_BROWSE_PAGE);
  G_OBJECT_CLASS(whittle_browse_page_parent_class)->dispose(object);
}

static void
whittle_browse_page_class_init(WhittleBrowsePageClass *klass)
{
  G_OBJECT_CLASS(klass)->dispose = whittle_browse_page_dispose;
  gtk_widget_class_set_template_from_resource(GTK_WIDGET_CLASS(klass),
                                              "/io/github/whittle/Whittle/whittle-browse-page.ui");
}

static void
whittle_browse_page_init(WhittleBrowsePage *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
}
