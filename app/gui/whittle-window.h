/* whittle-window.h — the main window: header bar, five pages, jobs button.
 *
 * Design note
 * -----------
 * Owns: the view stack with the pages (browse, library, quantize, chat,
 * planner), the jobs button (fed by the application's jobs model), a
 * GCancellable for the window's own async work (cancelled when the window
 * goes away), and saving its size and maximized state to GSettings.
 * Asks before closing while jobs run (closing quits, which stops them).
 * Shows a toast when a job succeeds or fails ("Details" opens the jobs
 * popover: win.show-jobs).
 * Promises: win.show-page(s) switches to the page of that name (Ctrl+1…5):
 * browse, library, quantize, chat, planner. The action's state is the name
 * of the visible page.
 * Does not: own jobs (the application does) or page content.
 */
#pragma once

#include <adwaita.h>

#include "whittle-application.h"
#include "whittle-jobs-button.h"

G_BEGIN_DECLS

#define WHITTLE_TYPE_WINDOW (whittle_window_get_type())
G_DECLARE_FINAL_TYPE(WhittleWindow, whittle_window, WHITTLE, WINDOW, AdwApplicationWindow)

WhittleWindow *whittle_window_new(WhittleApplication *app);

/* Cancelled when the window is destroyed; owned by the window. */
GCancellable *whittle_window_get_cancellable(WhittleWindow *self);

/* For tests and cross-page navigation. Owned by the window. */
AdwViewStack *whittle_window_get_view_stack(WhittleWindow *self);
WhittleJobsButton *whittle_window_get_jobs_button(WhittleWindow *self);

/* The title of the last toast shown (NULL if none yet), for tests. */
const char *whittle_window_get_last_toast_title(WhittleWindow *self);

G_END_DECLS
