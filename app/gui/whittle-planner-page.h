/* whittle-planner-page.h — the Planner page of the main window.
 *
 * For now an AdwStatusPage that says in plain words what will live here.
 */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define WHITTLE_TYPE_PLANNER_PAGE (whittle_planner_page_get_type())
G_DECLARE_FINAL_TYPE(WhittlePlannerPage, whittle_planner_page, WHITTLE, PLANNER_PAGE, AdwBin)

G_END_DECLS
