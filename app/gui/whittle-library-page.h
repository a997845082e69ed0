/* whittle-library-page.h — every model on this computer.
 *
 * Design note
 * -----------
 * Owns: the Library page: a filter entry, Refresh and "Add Folder…", and one boxed list per
 * source (Whittle downloads, Hugging Face cache, Ollama, LM Studio, folders) from the app's
 * wh_library (scanned on the page's own job queue: scans and deletes are not user jobs).
 * Each row: name; architecture · parameters · quant · context · size; a fit badge from the
 * planner on the file's header for this machine (whittle-fit.h, in a job); "Chat" and a menu with
 * Quantize…, Plan Memory…, Show in Files and, for Whittle's own downloads only, Delete…
 * (an AdwMessageDialog says how much space it frees).
 * TRUE from whittle_library_page_is_scanning() also covers the badges being worked out.
 * Promises: the first visit scans; a finished download, a changed folder list and Refresh
 * (F5, Ctrl+R) scan again. Chat / Quantize / Plan activate win.open-chat(s),
 * win.open-quantize(s), win.open-planner(s) with the model's first file path (the pages
 * that receive them select the model), falling back to win.show-page when the window has no
 * such action. Show in Files asks org.freedesktop.FileManager1 (D-Bus) to select the file
 * and opens its folder when no file manager answers. Ctrl+F focuses the filter.
 * Does not: scan on the main loop, or delete anything the library does not own.
 */
#pragma once

#include <adwaita.h>

#include "library/library.h"

G_BEGIN_DECLS

#define WHITTLE_TYPE_LIBRARY_PAGE (whittle_library_page_get_type())
G_DECLARE_FINAL_TYPE(WhittleLibraryPage, whittle_library_page, WHITTLE, LIBRARY_PAGE, AdwBin)

/* Scans again (queued after a scan that is running). */
void whittle_library_page_refresh(WhittleLibraryPage *self);
/* Shortcut handler (Ctrl+F). */
gboolean whittle_library_page_focus_filter(GtkWidget *widget, GVariant *args, gpointer user_data);

/* For tests: TRUE until the first scan finished and while a scan or delete runs. */
gboolean whittle_library_page_is_scanning(WhittleLibraryPage *self);
guint whittle_library_page_get_n_models(WhittleLibraryPage *self);
GtkWidget *whittle_library_page_get_row(WhittleLibraryPage *self, guint index);
const wh_library_entry *whittle_library_page_get_entry(WhittleLibraryPage *self, guint index);
/* The fit badge text of the @index-th row, NULL while it is being worked out. */
const char *whittle_library_page_get_badge(WhittleLibraryPage *self, guint index);

G_END_DECLS
