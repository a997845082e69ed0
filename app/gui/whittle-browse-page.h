/* whittle-browse-page.h — search Hugging Face, open a model, download its files.
 *
 * Design note
 * -----------
 * Owns: an AdwLeaflet with the search view (entry with a 300 ms typing delay, sort, a
 * filters popover: GGUF only, parameters, quant type, largest file, licence, author) and
 * the model details (WhittleModelDetails) pushed on it; its own wh_job_queue for the API
 * reads (search pages, model info, headers, cards: they are not user jobs, so they do not
 * appear in the jobs popover; downloads go to the app's queue through WhittleDownloads).
 * Promises: the main loop never waits for the network; a new search cancels the previous
 * one and late answers are ignored; infinite scroll follows the Link header (edge of the
 * list or "Show More Results"); offline, rate-limited, error and empty states are an
 * AdwStatusPage that says what to do. Filters the hub does not know (parameter range from
 * the model name) are applied to the results here; quant type and largest file apply to
 * the files of the details.
 * Keyboard: Ctrl+F focuses the search entry; typing anywhere on the page starts a search;
 * Enter in the entry moves to the first result; in the details, Alt+Left, the back mouse
 * button, a swipe or the back button return to the results.
 */
#pragma once

#include <adwaita.h>

#include "whittle-model-details.h"

G_BEGIN_DECLS

#define WHITTLE_TYPE_BROWSE_PAGE (whittle_browse_page_get_type())
G_DECLARE_FINAL_TYPE(WhittleBrowsePage, whittle_browse_page, WHITTLE, BROWSE_PAGE, AdwBin)

/* Sets the search text and searches at once. */
void whittle_browse_page_search(WhittleBrowsePage *self, const char *text);
/* Pushes the details of @repo_id. */
void whittle_browse_page_open_model(WhittleBrowsePage *self, const char *repo_id);
/* Shortcut handler (Ctrl+F). */
gboolean whittle_browse_page_focus_search(GtkWidget *widget, GVariant *args, gpointer user_data);

/* For tests. */
gboolean whittle_browse_page_is_searching(WhittleBrowsePage *self);
GtkListBox *whittle_browse_page_get_results(WhittleBrowsePage *self);
/* "empty", "loading", "error" or "results". */
const char *whittle_browse_page_get_state(WhittleBrowsePage *self);
gboolean whittle_browse_page_has_more(WhittleBrowsePage *self);
void whittle_browse_page_load_more(WhittleBrowsePage *self);
WhittleModelDetails *whittle_browse_page_get_details(WhittleBrowsePage *self);
/* The status page of the "error" state (errors, offline, rate limited, nothing found). */
AdwStatusPage *whittle_browse_page_get_status_page(WhittleBrowsePage *self);

G_END_DECLS
