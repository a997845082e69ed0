/* whittle-downloads.h — the downloads of the app: start, pause, resume, retry, persisted.
 *
 * Design note
 * -----------
 * Owns: one entry per file being downloaded from the hub (repo, revision, file name), the
 * job that currently runs it on the app's job queue (wh_hub_download, then the record in the
 * library's index of Whittle's downloads; the jobs popover shows it like any job), and the list of
 * unfinished downloads in GSettings ("downloads", a(sss): repo, revision, file), so they continue
 * when the app starts again. Promises:
 *  - Pausing cancels the job and keeps the partial file (the hub continues it where it
 *    stopped); resuming and retrying submit a new job for the same file and drop the old
 *    job's row from the jobs list. whittle_downloads_cancel() forgets the download (the
 *    partial file stays in the hub cache, so starting it again later still continues); a
 *    job cancelled any other way (closing the app cancels every job) counts as paused and
 *    stays in the settings.
 *  - whittle_downloads_restore() resumes every persisted download (call once at startup).
 *  - Signals, on the main thread: "changed" (wh_job *job) when a download's state changed;
 *    "download-finished" (const char *repo_id, const char *filename, const char *path) after
 *    a file landed in the cache (the Library refreshes, the Browse page says "Open in
 *    Library").
 * Does not: talk to the hub itself beyond submitting jobs; decide what to download (Browse).
 * Main thread only.
 */
#pragma once

#include <gio/gio.h>

#include "hub/hub.h"
#include "jobs/jobs.h"
#include "library/library.h"

G_BEGIN_DECLS

typedef enum {
  WHITTLE_DOWNLOAD_NONE,    /* not a download of this list */
  WHITTLE_DOWNLOAD_RUNNING, /* queued or running */
  WHITTLE_DOWNLOAD_PAUSED,
  WHITTLE_DOWNLOAD_FAILED,
  WHITTLE_DOWNLOAD_DONE,
} WhittleDownloadState;

#define WHITTLE_TYPE_DOWNLOADS (whittle_downloads_get_type())
G_DECLARE_FINAL_TYPE(WhittleDownloads, whittle_downloads, WHITTLE, DOWNLOADS, GObject)

/* @settings (may be NULL: nothing persisted), @hub, @library (may be NULL: downloads are not
 * recorded as Whittle's own) and @queue are borrowed and must outlive
 * the object's jobs (the app frees the queue first). @forget (may be NULL) is called with a
 * job whose row should leave the jobs list (it was replaced by a new job). */
typedef void (*WhittleDownloadsForgetFunc)(wh_job *job, gpointer user_data);
WhittleDownloads *whittle_downloads_new(GSettings *settings, wh_hub *hub, wh_library *library,
                                        wh_job_queue *queue, WhittleDownloadsForgetFunc forget,
                                        gpointer forget_data);

/* Starts (or, when it is already in the list and not running, resumes) the download of
 * @filename of @repo_id at @revision (NULL: main). Returns the job (borrowed). */
wh_job *whittle_downloads_start(WhittleDownloads *self, const char *repo_id, const char *revision,
                                const char *filename);

/* Resumes every download listed in the settings. Returns how many were started. */
guint whittle_downloads_restore(WhittleDownloads *self);

/* State of the download run by @job (WHITTLE_DOWNLOAD_NONE for other jobs and for jobs
 * replaced by a newer one). */
WhittleDownloadState whittle_downloads_get_state(WhittleDownloads *self, wh_job *job);
/* The current job of a file (borrowed), or NULL when it is not in the list. */
wh_job *whittle_downloads_find(WhittleDownloads *self, const char *repo_id, const char *revision,
                               const char *filename);
/* Repo id of @job's download (borrowed), NULL when @job is not one. */
const char *whittle_downloads_get_repo_id(WhittleDownloads *self, wh_job *job);

void whittle_downloads_pause(WhittleDownloads *self, wh_job *job);
/* Resume a paused one or retry a failed one; returns the new job (borrowed) or NULL. */
wh_job *whittle_downloads_resume(WhittleDownloads *self, wh_job *job);
/* Stops and forgets the download. */
void whittle_downloads_cancel(WhittleDownloads *self, wh_job *job);

/* Number of downloads in the list that are not done. */
guint whittle_downloads_get_n_pending(WhittleDownloads *self);

G_END_DECLS
