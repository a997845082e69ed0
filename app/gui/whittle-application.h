/* whittle-application.h — the Whittle GUI application.
 *
 * Design note
 * -----------
 * Owns: the GSettings of the app, the one wh_job_queue of the process and
 * the list of jobs the jobs popover shows (a GListModel of WhittleJobItem,
 * newest first), app-wide actions (preferences, shortcuts, help, about,
 * quit) and their accelerators.
 * Promises: the job queue exists between startup and shutdown and delivers
 * its notifications on the default main context; every job submitted to it
 * appears in the jobs model on its first notification and stays there, with
 * its final state, until "Clear Finished".
 * Signals: "job-finished" (WhittleJobItem *item) once per job, when its
 * item reaches a terminal state (windows show a toast).
 * Does not: build page content (the window and pages do).
 *
 * Test hook: with WHITTLE_TEST_HOOKS=1 in the environment the hidden action
 * app.test-job(b) submits a short dummy download that reports progress and
 * succeeds (FALSE) or fails on purpose half-way (TRUE).
 */
#pragma once

#include <adwaita.h>

#include "hub/hub.h"
#include "jobs/jobs.h"
#include "whittle-downloads.h"
#include "whittle-job-item.h"

G_BEGIN_DECLS

#define WHITTLE_TYPE_APPLICATION (whittle_application_get_type())
G_DECLARE_FINAL_TYPE(WhittleApplication, whittle_application, WHITTLE, APPLICATION, AdwApplication)

WhittleApplication *whittle_application_new(GApplicationFlags flags);

/* Checks that the settings schema can be found; on failure returns FALSE
 * with a message that says how to run the app uninstalled. */
gboolean whittle_application_check_schema(GError **error);

/* The app's settings (schema io.github.whittle.Whittle), from startup on
 * (NULL before). Owned by the app. */
GSettings *whittle_application_get_settings(WhittleApplication *self);

/* The job queue (NULL before startup and after shutdown). Owned by the app. */
wh_job_queue *whittle_application_get_job_queue(WhittleApplication *self);

/* A GListModel of WhittleJobItem, newest first. Owned by the app. */
GListModel *whittle_application_get_jobs(WhittleApplication *self);

/* Number of jobs queued or running ("n-active" property). */
guint whittle_application_get_n_active(WhittleApplication *self);

/* The app's Hugging Face client (thread-safe, owned by the app) and its downloads, from
 * startup to shutdown; NULL when $HF_ENDPOINT is not a usable URL. */
wh_hub *whittle_application_get_hub(WhittleApplication *self);
WhittleDownloads *whittle_application_get_downloads(WhittleApplication *self);

/* The library of local models (thread-safe, owned by the app; its user folders follow the
 * "library-folders" setting), from startup to shutdown. */
wh_library *whittle_application_get_library(WhittleApplication *self);

/* Asks the Secret Service for the Hugging Face token again (in a job) and hands it to the
 * hub; after the token was stored or removed in the preferences. */
void whittle_application_reload_token(WhittleApplication *self);

/* Removes @job's item from the jobs model (a download replaced it with a new job). */
void whittle_application_forget_job(WhittleApplication *self, wh_job *job);

/* Removes the finished jobs from the jobs model. */
void whittle_application_clear_finished_jobs(WhittleApplication *self);

/* Submits the dummy test job (see above): 20 steps of @step_ms each (0:
 * 30 ms, as the action does). Returns a new reference. */
wh_job *whittle_application_submit_test_job(WhittleApplication *self, gboolean fail, guint step_ms);

G_END_DECLS
