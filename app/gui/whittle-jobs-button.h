/* whittle-jobs-button.h — the header-bar button that opens the jobs list.
 *
 * Design note
 * -----------
 * Shows a download icon when nothing runs, and a spinner with the number of
 * active jobs ("n-active") while something does. Its popover lists the
 * items of "model" (WhittleJobItem) as WhittleJobRow rows, with a
 * placeholder when empty and a Clear Finished button (app.clear-jobs).
 * While the list is on screen, items added to the model enter it one per frame (several new
 * rows in one frame cost it more than a frame's time); otherwise at once. The spinner is a
 * WhittleSpinner, which turns without relayouts.
 * Owns: nothing but its widgets; the model belongs to the application.
 */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define WHITTLE_TYPE_JOBS_BUTTON (whittle_jobs_button_get_type())
G_DECLARE_FINAL_TYPE(WhittleJobsButton, whittle_jobs_button, WHITTLE, JOBS_BUTTON, AdwBin)

/* @model: a GListModel of WhittleJobItem (or NULL). */
void whittle_jobs_button_set_model(WhittleJobsButton *self, GListModel *model);
void whittle_jobs_button_set_n_active(WhittleJobsButton *self, guint n_active);
guint whittle_jobs_button_get_n_active(WhittleJobsButton *self);

/* For tests. Owned by the button. */
GtkMenuButton *whittle_jobs_button_get_menu_button(WhittleJobsButton *self);
GtkListBox *whittle_jobs_button_get_list_box(WhittleJobsButton *self);

G_END_DECLS
