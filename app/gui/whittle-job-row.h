/* whittle-job-row.h — one row of the jobs popover.
 *
 * Shows a WhittleJobItem: title, progress bar, progress text (rate, ETA,
 * status), a Cancel button while the job has not ended, and the error
 * message of a failed job. Follows the item's property changes.
 * Downloads of the app's WhittleDownloads also get Pause (running), Resume
 * (paused) or Retry (failed with a network, server or checksum error), and
 * a button for the fix an error needs: "Add a Token…" (401: opens the
 * preferences), "Request Access…" (403: opens the model page), "Free Disk
 * Space…" (opens the cache folder).
 */
#pragma once

#include <gtk/gtk.h>

#include "whittle-job-item.h"

G_BEGIN_DECLS

#define WHITTLE_TYPE_JOB_ROW (whittle_job_row_get_type())
G_DECLARE_FINAL_TYPE(WhittleJobRow, whittle_job_row, WHITTLE, JOB_ROW, GtkListBoxRow)

GtkWidget *whittle_job_row_new(WhittleJobItem *item);

/* The item shown (owned by the row). */
WhittleJobItem *whittle_job_row_get_item(WhittleJobRow *self);

/* What the row displays right now (owned by the row's labels), for tests:
 * the progress text, the error text (NULL when the error label is hidden),
 * the progress bar's fraction, and whether Cancel is shown. */
const char *whittle_job_row_get_progress_text(WhittleJobRow *self);
const char *whittle_job_row_get_error_text(WhittleJobRow *self);
double whittle_job_row_get_fraction(WhittleJobRow *self);
gboolean whittle_job_row_get_can_cancel(WhittleJobRow *self);
gboolean whittle_job_row_get_can_pause(WhittleJobRow *self);
gboolean whittle_job_row_get_can_resume(WhittleJobRow *self);
/* The label of the fix button ("_Add a Token…"), NULL when hidden. */
const char *whittle_job_row_get_fix_label(WhittleJobRow *self);
/* Clicks Pause / Resume (for tests: the buttons' own handlers). */
void whittle_job_row_pause(WhittleJobRow *self);
void whittle_job_row_resume(WhittleJobRow *self);

G_END_DECLS
