/* whittle-browse-page.h — the Browse page of the main window.
 *
 * For now an AdwStatusPage that says in plain words what will live here.
 */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define WHITTLE_TYPE_BROWSE_PAGE (whittle_browse_page_get_type())
G_DECLARE_FINAL_TYPE(WhittleBrowsePage, whittle_browse_page, WHITTLE, BROWSE_PAGE, AdwBin)

G_END_DECLS
