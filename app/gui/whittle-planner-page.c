/* whittle-planner-page.c — see whittle-planner-page.h. */
#include "config.h"

#include "whittle-planner-page.h"

struct _WhittlePlannerPage {
  AdwBin parent_instance;
};

G_DEFINE_FINAL_TYPE(WhittlePlannerPage, whittle_planner_page, ADW_TYPE_BIN)

static void
whittle_planner_page_dispose(GObject *object)
{
  gtk_widget_dispose_template(GTK_WIDGET(object), WHITTLE_TYPE_PLANNER_PAGE);
  G_OBJECT_CLASS(whittle_planner_page_parent_class)->dispose(object);
}

static void
whittle_planner_page_class_init(WhittlePlannerPageClass *klass)
{
  G_OBJECT_CLASS(klass)->dispose = whittle_planner_page_dispose;
  gtk_widget_class_set_template_from_resource(GTK_WIDGET_CLASS(klass),
                                              "/io/github/whittle/Whittle/whittle-planner-page.ui");
}

static void
whittle_planner_page_init(WhittlePlannerPage *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
}
