/* whittle-downloads.c — see whittle-downloads.h. */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "whittle-downloads.h"

typedef struct {
  char *repo_id;
  char *revision; /* never NULL ("main") */
  char *filename;
  wh_job *job; /* current job (owned ref), NULL while paused after a restart */
  WhittleDownloadState state;
  gboolean pausing;    /* the cancel in flight is a pause */
  gboolean forgetting; /* the cancel in flight is whittle_downloads_cancel() */
} Entry;

struct _WhittleDownloads {
  GObject parent_instance;

  GSettings *settings;
  wh_hub *hub;
  wh_library *library;
  wh_job_queue *queue;
  WhittleDownloadsForgetFunc forget;
  gpointer forget_data;
  GPtrArray *entries; /* Entry*, in the order started */
};

G_DEFINE_FINAL_TYPE(WhittleDownloads, whittle_downloads, G_TYPE_OBJECT)

enum { CHANGED, DOWNLOAD_FINISHED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
entry_free(Entry *e)
{
  g_free(e->repo_id);
  g_free(e->revision);
  g_free(e->filename);
  g_clear_pointer(&e->job, wh_job_unref);
  g_free(e);
}

static Entry *
find_by_job(WhittleDownloads *self, wh_job *job)
{
  for (guint i = 0; i < self->entries->len; i++) {
    Entry *e = self->entries->pdata[i];
    if (e->job == job && job != NULL)
      return e;
  }
  return NULL;
}

static Entry *
find_by_file(WhittleDownloads *self, const char *repo_id, const char *revision,
             const char *filename)
{
  for (guint i = 0; i < self->entries->len; i++) {
    Entry *e = self->entries->pdata[i];
    if (g_strcmp0(e->repo_id, repo_id) == 0 &&
        g_strcmp0(e->revision, revision ? revision : "main") == 0 &&
        g_strcmp0(e->filename, filename) == 0)
      return e;
  }
  return NULL;
}

/* Writes the unfinished downloads to the settings. */
static void
save(WhittleDownloads *self)
{
  if (self->settings == NULL)
    return;
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("a(sss)"));
  for (guint i = 0; i < self->entries->len; i++) {
    Entry *e = self->entries->pdata[i];
    if (e->state != WHITTLE_DOWNLOAD_DONE)
      g_variant_builder_add(&b, "(sss)", e->repo_id, e->revision, e->filename);
  }
  g_settings_set_value(self->settings, "downloads", g_variant_builder_end(&b));
}

static void
on_job_notify(wh_job *job, gpointer user_data)
{
  WhittleDownloads *self = user_data;
  Entry *e = find_by_job(self, job);
  if (e == NULL || !wh_job_is_finished(job))
    return;

  switch (wh_job_get_state(job)) {
  case WH_JOB_SUCCEEDED: {
    e->state = WHITTLE_DOWNLOAD_DONE;
    save(self);
    const wh_hub_download_result *r = wh_job_get_result(job);
    g_signal_emit(self, signals[CHANGED], 0, job);
    g_signal_emit(self, signals[DOWNLOAD_FINISHED], 0, e->repo_id, e->filename, r ? r->path : NULL);
    return;
  }
  case WH_JOB_FAILED:
    e->state = WHITTLE_DOWNLOAD_FAILED;
    break;
  case WH_JOB_CANCELLED:
    if (!e->forgetting) {
      /* Paused, or stopped by someone else (closing the app cancels every job): keep it
       * in the list, so it continues at the next start. */
      e->state = WHITTLE_DOWNLOAD_PAUSED;
      e->pausing = FALSE;
    } else {
      /* Cancelled for good: forget it (keep the job alive for the signal). */
      wh_job_ref(job);
      g_ptr_array_remove(self->entries, e);
      save(self);
      g_signal_emit(self, signals[CHANGED], 0, job);
      wh_job_unref(job);
      return;
    }
    break;
  case WH_JOB_QUEUED:
  case WH_JOB_RUNNING:
    return;
  }
  save(self);
  g_signal_emit(self, signals[CHANGED], 0, job);
}

typedef struct {
  wh_hub *hub;
  wh_library *library;
  char *repo_id, *revision, *filename;
  wh_job *job; /* borrowed: set while the job function runs */
} DownloadArgs;

static void
download_args_free(DownloadArgs *a)
{
  g_free(a->repo_id);
  g_free(a->revision);
  g_free(a->filename);
  g_free(a);
}

static void
on_download_progress(guint64 done, guint64 total, const char *status, gpointer user_data)
{
  DownloadArgs *a = user_data;
  wh_job_set_progress(a->job, done, total, status);
}

/* The job: the hub download (resumes partial files), then the record in the library's
 * index of Whittle's own downloads (so the Library may delete it later). */
static gboolean
run_download(wh_job *job, gpointer user_data, GError **error)
{
  DownloadArgs *a = user_data;
  wh_hub_download_params params;
  wh_hub_download_default_params(&params);
  params.revision = a->revision;
  params.progress = on_download_progress;
  params.progress_data = a;
  a->job = job;
  wh_hub_download_result *r =
      wh_hub_download(a->hub, a->repo_id, a->filename, &params, wh_job_get_cancellable(job), error);
  if (r == NULL)
    return FALSE;
  wh_job_set_result(job, r, (GDestroyNotify)wh_hub_download_result_free);
  if (a->library) {
    g_autoptr(GError) local = NULL;
    if (!wh_library_record_download(a->library, a->repo_id, r->commit, a->filename, r->path,
                                    &local))
      g_warning("The download of %s could not be recorded: %s", a->filename, local->message);
  }
  return TRUE;
}

static void
submit(WhittleDownloads *self, Entry *e)
{
  DownloadArgs *a = g_new0(DownloadArgs, 1);
  a->hub = self->hub;
  a->library = self->library;
  a->repo_id = g_strdup(e->repo_id);
  a->revision = g_strdup(e->revision);
  a->filename = g_strdup(e->filename);
  const char *base = strrchr(e->filename, '/');
  /* Translators: a job title, %s is a file name */
  g_autofree char *title = g_strdup_printf(_("Downloading %s"), base ? base + 1 : e->filename);

  wh_job *old = e->job;
  e->job = wh_job_queue_submit(self->queue, WH_JOB_DOWNLOAD, title, run_download, a,
                               (GDestroyNotify)download_args_free, on_job_notify, self);
  e->state = WHITTLE_DOWNLOAD_RUNNING;
  e->pausing = FALSE;
  e->forgetting = FALSE;
  if (old) {
    if (self->forget)
      self->forget(old, self->forget_data);
    wh_job_unref(old);
  }
  save(self);
  g_signal_emit(self, signals[CHANGED], 0, e->job);
}

wh_job *
whittle_downloads_start(WhittleDownloads *self, const char *repo_id, const char *revision,
                        const char *filename)
{
  g_return_val_if_fail(WHITTLE_IS_DOWNLOADS(self), NULL);
  g_return_val_if_fail(repo_id != NULL && filename != NULL, NULL);

  Entry *e = find_by_file(self, repo_id, revision, filename);
  if (e && e->state == WHITTLE_DOWNLOAD_RUNNING)
    return e->job;
  if (e == NULL) {
    e = g_new0(Entry, 1);
    e->repo_id = g_strdup(repo_id);
    e->revision = g_strdup(revision ? revision : "main");
    e->filename = g_strdup(filename);
    g_ptr_array_add(self->entries, e);
  }
  submit(self, e);
  return e->job;
}

guint
whittle_downloads_restore(WhittleDownloads *self)
{
  g_return_val_if_fail(WHITTLE_IS_DOWNLOADS(self), 0);
  if (self->settings == NULL)
    return 0;

  g_autoptr(GVariant) list = g_settings_get_value(self->settings, "downloads");
  GVariantIter iter;
  const char *repo, *rev, *file;
  guint n = 0;
  g_variant_iter_init(&iter, list);
  while (g_variant_iter_next(&iter, "(&s&s&s)", &repo, &rev, &file)) {
    /* The settings may have been edited by hand: the hub refuses bad names with a clear
     * error, but do not even try with those. */
    if (!wh_hub_validate_repo_id(repo, NULL) || !wh_hub_validate_filename(file, NULL) ||
        !wh_hub_validate_revision(rev, NULL))
      continue;
    whittle_downloads_start(self, repo, rev, file);
    n++;
  }
  return n;
}

WhittleDownloadState
whittle_downloads_get_state(WhittleDownloads *self, wh_job *job)
{
  g_return_val_if_fail(WHITTLE_IS_DOWNLOADS(self), WHITTLE_DOWNLOAD_NONE);
  Entry *e = find_by_job(self, job);
  return e ? e->state : WHITTLE_DOWNLOAD_NONE;
}

wh_job *
whittle_downloads_find(WhittleDownloads *self, const char *repo_id, const char *revision,
                       const char *filename)
{
  g_return_val_if_fail(WHITTLE_IS_DOWNLOADS(self), NULL);
  Entry *e = find_by_file(self, repo_id, revision, filename);
  return e ? e->job : NULL;
}

const char *
whittle_downloads_get_repo_id(WhittleDownloads *self, wh_job *job)
{
  g_return_val_if_fail(WHITTLE_IS_DOWNLOADS(self), NULL);
  Entry *e = find_by_job(self, job);
  return e ? e->repo_id : NULL;
}

void
whittle_downloads_pause(WhittleDownloads *self, wh_job *job)
{
  g_return_if_fail(WHITTLE_IS_DOWNLOADS(self));
  Entry *e = find_by_job(self, job);
  if (e == NULL || e->state != WHITTLE_DOWNLOAD_RUNNING)
    return;
  e->pausing = TRUE;
  wh_job_cancel(job);
}

wh_job *
whittle_downloads_resume(WhittleDownloads *self, wh_job *job)
{
  g_return_val_if_fail(WHITTLE_IS_DOWNLOADS(self), NULL);
  Entry *e = find_by_job(self, job);
  if (e == NULL || (e->state != WHITTLE_DOWNLOAD_PAUSED && e->state != WHITTLE_DOWNLOAD_FAILED))
    return NULL;
  submit(self, e);
  return e->job;
}

void
whittle_downloads_cancel(WhittleDownloads *self, wh_job *job)
{
  g_return_if_fail(WHITTLE_IS_DOWNLOADS(self));
  Entry *e = find_by_job(self, job);
  if (e == NULL)
    return;
  if (e->state == WHITTLE_DOWNLOAD_RUNNING) {
    e->pausing = FALSE;
    e->forgetting = TRUE;
    wh_job_cancel(job); /* the notification forgets it */
    return;
  }
  wh_job_ref(job);
  g_ptr_array_remove(self->entries, e);
  save(self);
  g_signal_emit(self, signals[CHANGED], 0, job);
  wh_job_unref(job);
}

guint
whittle_downloads_get_n_pending(WhittleDownloads *self)
{
  g_return_val_if_fail(WHITTLE_IS_DOWNLOADS(self), 0);
  guint n = 0;
  for (guint i = 0; i < self->entries->len; i++)
    if (((Entry *)self->entries->pdata[i])->state != WHITTLE_DOWNLOAD_DONE)
      n++;
  return n;
}

static void
whittle_downloads_finalize(GObject *object)
{
  WhittleDownloads *self = WHITTLE_DOWNLOADS(object);
  g_ptr_array_unref(self->entries);
  g_clear_object(&self->settings);
  G_OBJECT_CLASS(whittle_downloads_parent_class)->finalize(object);
}

static void
whittle_downloads_class_init(WhittleDownloadsClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = whittle_downloads_finalize;

  signals[CHANGED] = g_signal_new("changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                  NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[DOWNLOAD_FINISHED] =
      g_signal_new("download-finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                   NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
}

static void
whittle_downloads_init(WhittleDownloads *self)
{
  self->entries = g_ptr_array_new_with_free_func((GDestroyNotify)entry_free);
}

WhittleDownloads *
whittle_downloads_new(GSettings *settings, wh_hub *hub, wh_library *library, wh_job_queue *queue,
                      WhittleDownloadsForgetFunc forget, gpointer forget_data)
{
  g_return_val_if_fail(hub != NULL && queue != NULL, NULL);
  WhittleDownloads *self = g_object_new(WHITTLE_TYPE_DOWNLOADS, NULL);
  self->settings = settings ? g_object_ref(settings) : NULL;
  self->hub = hub;
  self->library = library;
  self->queue = queue;
  self->forget = forget;
  self->forget_data = forget_data;
  return self;
}
