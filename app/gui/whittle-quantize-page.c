/* whittle-quantize-page.c — see whittle-quantize-page.h. */
#include "config.h"

#include "whittle-quantize-page.h"

struct _WhittleQuantizePage {
  AdwBin parent_instance;
};

G_DEFINE_FINAL_TYPE(WhittleQuantizePage, whittle_quantize_page, ADW_TYPE_BIN)

static void
whittle_quantize_page_dispose(GObject *object)
{
  gtk_widget_dispose_template(GTK_WIDGET(object), WHITTLE_TYPE_QUANTIZE_PAGE);
  G_OBJECT_CLASS(whittle_quantize_page_parent_class)->dispose(object);
}

static void
whittle_quantize_page_class_init(WhittleQuantizePageClass *klass)
{
  G_OBJECT_CLASS(klass)->dispose = whittle_quantize_page_dispose;
  gtk_widget_class_set_template_from_resource(
      GTK_WIDGET_CLASS(klass), "/io/github/whittle/Whittle/whittle-quantize-page.ui");
}

static void
whittle_quantize_page_init(WhittleQuantizePage *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
}
