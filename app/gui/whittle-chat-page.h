/* whittle-chat-page.h — the Chat page of the main window.
 *
 * For now an AdwStatusPage that says in plain words what will live here.
 */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define WHITTLE_TYPE_CHAT_PAGE (whittle_chat_page_get_type())
G_DECLARE_FINAL_TYPE(WhittleChatPage, whittle_chat_page, WHITTLE, CHAT_PAGE, AdwBin)

G_END_DECLS
