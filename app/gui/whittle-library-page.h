/* whittle-library-page.h — the Library page of the main window.
 *
 * For now an AdwStatusPage that says in plain words what will live here.
 */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define WHITTLE_TYPE_LIBRARY_PAGE (whittle_library_page_get_type())
G_DECLARE_FINAL_TYPE(WhittleLibraryPage, whittle_library_page, WHITTLE, LIBRARY_PAGE, AdwBin)

G_END_DECLS
