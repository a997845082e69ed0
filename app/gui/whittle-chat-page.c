/* whittle-chat-page.c — see whittle-chat-page.h. */
#include "config.h"

#include "whittle-chat-page.h"

struct _WhittleChatPage {
  AdwBin parent_instance;
};

G_DEFINE_FINAL_TYPE(WhittleChatPage, whittle_chat_page, ADW_TYPE_BIN)

static void
whittle_chat_page_dispose(GObject *object)
{
  gtk_widget_dispose_template(GTK_WIDGET(object), WHITTLE_TYPE_CHAT_PAGE);
  G_OBJECT_CLASS(whittle_chat_page_parent_class)->dispose(object);
}

static void
whittle_chat_page_class_init(WhittleChatPageClass *klass)
{
  G_OBJECT_CLASS(klass)->dispose = whittle_chat_page_dispose;
  gtk_widget_class_set_template_from_resource(GTK_WIDGET_CLASS(klass),
                                              "/io/github/whittle/Whittle/whittle-chat-page.ui");
}

static void
whittle_chat_page_init(WhittleChatPage *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
}
