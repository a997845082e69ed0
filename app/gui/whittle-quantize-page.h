/* whittle-quantize-page.h — the Quantize page of the main window.
 *
 * For now an AdwStatusPage that says in plain words what will live here.
 */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define WHITTLE_TYPE_QUANTIZE_PAGE (whittle_quantize_page_get_type())
G_DECLARE_FINAL_TYPE(WhittleQuantizePage, whittle_quantize_page, WHITTLE, QUANTIZE_PAGE, AdwBin)

G_END_DECLS
