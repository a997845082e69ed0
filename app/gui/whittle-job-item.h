/* whittle-job-item.h — one engine job seen from the GTK side.
 *
 * Design note
 * -----------
 * Owns: a reference to a wh_job and a copy of its last observed state as
 * GObject properties, so list rows can bind to them.
 * Promises: properties change only in whittle_job_item_update(), which the
 * application calls from the job queue's observer on the main thread; each
 * changed property is notified once per update.
 * Does not: run or schedule anything; cancelling forwards to the engine.
 */
#pragma once

#include <glib-object.h>

#include "jobs/jobs.h"

G_BEGIN_DECLS

#define WHITTLE_TYPE_JOB_ITEM (whittle_job_item_get_type())
G_DECLARE_FINAL_TYPE(WhittleJobItem, whittle_job_item, WHITTLE, JOB_ITEM, GObject)

/* Returns a new item holding a reference to @job, already updated. */
WhittleJobItem *whittle_job_item_new(wh_job *job);

/* Re-reads the job (main thread; from the queue observer) and notifies the
 * properties that changed. */
void whittle_job_item_update(WhittleJobItem *self);

wh_job *whittle_job_item_get_job(WhittleJobItem *self);
const char *whittle_job_item_get_title(WhittleJobItem *self);
wh_job_state whittle_job_item_get_state(WhittleJobItem *self);
gboolean whittle_job_item_get_finished(WhittleJobItem *self);
double whittle_job_item_get_fraction(WhittleJobItem *self);
/* "40% · 1.2 MB of 3.0 MB · 2.1 MB/s · 1 s left · step 4", "Finished", … */
const char *whittle_job_item_get_progress_text(WhittleJobItem *self);
/* The error message of a failed job, else NULL. */
const char *whittle_job_item_get_error_message(WhittleJobItem *self);

/* Asks the engine to cancel the job (idempotent). */
void whittle_job_item_cancel(WhittleJobItem *self);

G_END_DECLS
