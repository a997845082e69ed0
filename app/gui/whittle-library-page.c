/* whittle-library-page.c — see whittle-library-page.h. */
#include "config.h"

#include "whittle-library-page.h"

struct _WhittleLibraryPage {
  AdwBin parent_instance;
};

G_DEFINE_FINAL_TYPE(WhittleLibraryPage, whittle_library_page, ADW_TYPE_BIN)

static void
whittle_library_page_dispose(GObject *object)
{
  gtk_widget_dispose_template(GTK_WIDGET(object), WHITTLE_TYPE_LIBRARY_PAGE);
  G_OBJECT_CLASS(whittle_library_page_parent_class)->dispose(object);
}

static void
whittle_library_page_class_init(WhittleLibraryPageClass *klass)
{
  G_OBJECT_CLASS(klass)->dispose = whittle_library_page_dispose;
  gtk_widget_class_set_template_from_resource(GTK_WIDGET_CLASS(klass),
                                              "/io/github/whittle/Whittle/whittle-library-page.ui");
}

static void
whittle_library_page_init(WhittleLibraryPage *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
}
