/* whittle-job-row.c — see whittle-job-row.h. */
#include "config.h"

#include <glib/gi18n.h>

#include "whittle-application.h"
#include "whittle-job-row.h"

struct _WhittleJobRow {
  GtkListBoxRow parent_instance;

  WhittleJobItem *item;

  /* template children */
  GtkImage *state_icon;
  GtkLabel *title_label;
  GtkButton *cancel_button;
  GtkButton *pause_button;
  GtkButton *resume_button;
  GtkButton *fix_button;
  GtkProgressBar *progress_bar;
  GtkInscription *progress_label;
  GtkLabel *error_label;

  /* What the state-dependent widgets show (sync_row() only touches them when one changes). */
  int synced_state; /* wh_job_state, -1 before the first sync */
  int synced_download_state;
  char *synced_error;
  char *synced_description; /* the accessible label */
};

G_DEFINE_FINAL_TYPE(WhittleJobRow, whittle_job_row, GTK_TYPE_LIST_BOX_ROW)

static const char *
icon_for(WhittleJobItem *item)
{
  switch (whittle_job_item_get_state(item)) {
  case WH_JOB_SUCCEEDED:
    return "emblem-ok-symbolic";
  case WH_JOB_FAILED:
    return "dialog-error-symbolic";
  case WH_JOB_CANCELLED:
    return "process-stop-symbolic";
  case WH_JOB_QUEUED:
  case WH_JOB_RUNNING:
    break;
  }
  return wh_job_kind_is_io(wh_job_get_kind(whittle_job_item_get_job(item)))
             ? "folder-download-symbolic"
             : "system-run-symbolic";
}

static WhittleDownloads *
get_downloads(void)
{
  GApplication *app = g_application_get_default();
  return WHITTLE_IS_APPLICATION(app) ? whittle_application_get_downloads(WHITTLE_APPLICATION(app))
                                     : NULL;
}

typedef enum { FIX_NONE, FIX_RETRY, FIX_TOKEN, FIX_ACCESS, FIX_SPACE } Fix;

/* What the user can do about a failed download. */
static Fix
fix_for(const GError *error)
{
  if (error == NULL || error->domain != WH_HUB_ERROR)
    return FIX_RETRY;
  switch (error->code) {
  case WH_HUB_ERROR_AUTH:
    return FIX_TOKEN;
  case WH_HUB_ERROR_FORBIDDEN:
    return FIX_ACCESS;
  case WH_HUB_ERROR_NO_SPACE:
    return FIX_SPACE;
  case WH_HUB_ERROR_INVALID:
  case WH_HUB_ERROR_NOT_FOUND:
    return FIX_NONE;
  default:
    return FIX_RETRY;
  }
}

/* Pause / Resume / Retry and the fix button of a download in state @ds. */
static void
sync_download_controls(WhittleJobRow *self, WhittleDownloadState ds)
{
  wh_job *job = whittle_job_item_get_job(self->item);
  gboolean failed = ds == WHITTLE_DOWNLOAD_FAILED;
  Fix fix = failed ? fix_for(wh_job_get_error(job)) : FIX_NONE;

  gtk_widget_set_visible(GTK_WIDGET(self->pause_button), ds == WHITTLE_DOWNLOAD_RUNNING);
  gtk_widget_set_visible(GTK_WIDGET(self->resume_button),
                         ds == WHITTLE_DOWNLOAD_PAUSED || (failed && fix != FIX_NONE));
  const char *resume = failed ? _("Retry") : _("Resume");
  /* only on a change: a new tooltip on a visible widget costs an X round trip */
  const char *tip = gtk_widget_get_tooltip_text(GTK_WIDGET(self->resume_button));
  if (g_strcmp0(tip, resume) != 0) {
    gtk_widget_set_tooltip_text(GTK_WIDGET(self->resume_button), resume);
    gtk_accessible_update_property(GTK_ACCESSIBLE(self->resume_button),
                                   GTK_ACCESSIBLE_PROPERTY_LABEL, resume, -1);
    gtk_button_set_icon_name(self->resume_button,
                             failed ? "view-refresh-symbolic" : "media-playback-start-symbolic");
  }
  /* A paused or failed download can still be dropped. */
  if (ds == WHITTLE_DOWNLOAD_PAUSED || failed)
    gtk_widget_set_visible(GTK_WIDGET(self->cancel_button), TRUE);

  const char *fix_label = NULL;
  switch (fix) {
  case FIX_TOKEN:
    fix_label = _("_Add a Token…");
    break;
  case FIX_ACCESS:
    fix_label = _("_Request Access…");
    break;
  case FIX_SPACE:
    fix_label = _("_Free Disk Space…");
    break;
  case FIX_RETRY:
  case FIX_NONE:
    break;
  }
  gtk_widget_set_visible(GTK_WIDGET(self->fix_button), fix_label != NULL);
  if (fix_label)
    gtk_button_set_label(self->fix_button, fix_label);
  g_object_set_data(G_OBJECT(self->fix_button), "fix", GINT_TO_POINTER(fix));
}

static void
on_pause_clicked(WhittleJobRow *self)
{
  WhittleDownloads *downloads = get_downloads();
  if (downloads)
    whittle_downloads_pause(downloads, whittle_job_item_get_job(self->item));
}

static void
on_resume_clicked(WhittleJobRow *self)
{
  WhittleDownloads *downloads = get_downloads();
  if (downloads)
    whittle_downloads_resume(downloads, whittle_job_item_get_job(self->item));
}

static void
on_fix_clicked(WhittleJobRow *self)
{
  GtkWidget *widget = GTK_WIDGET(self);
  GtkWindow *window = GTK_WINDOW(gtk_widget_get_root(widget));
  WhittleDownloads *downloads = get_downloads();
  wh_job *job = whittle_job_item_get_job(self->item);
  GApplication *app = g_application_get_default();

  switch (GPOINTER_TO_INT(g_object_get_data(G_OBJECT(self->fix_button), "fix"))) {
  case FIX_TOKEN:
    g_action_group_activate_action(G_ACTION_GROUP(app), "preferences", NULL);
    break;
  case FIX_ACCESS: {
    wh_hub *hub = whittle_application_get_hub(WHITTLE_APPLICATION(app));
    const char *repo = downloads ? whittle_downloads_get_repo_id(downloads, job) : NULL;
    if (hub && repo) {
      g_autofree char *uri = g_strdup_printf("%s/%s", wh_hub_get_endpoint(hub), repo);
      gtk_show_uri(window, uri, GDK_CURRENT_TIME);
    }
    break;
  }
  case FIX_SPACE: {
    wh_hub *hub = whittle_application_get_hub(WHITTLE_APPLICATION(app));
    if (hub) {
      g_autoptr(GFile) dir = g_file_new_for_path(wh_hub_get_cache_dir(hub));
      g_autofree char *uri = g_file_get_uri(dir);
      gtk_show_uri(window, uri, GDK_CURRENT_TIME);
    }
    break;
  }
  default:
    break;
  }
}

static WhittleDownloadState
get_download_state(WhittleJobRow *self)
{
  WhittleDownloads *downloads = get_downloads();
  return downloads ? whittle_downloads_get_state(downloads, whittle_job_item_get_job(self->item))
                   : WHITTLE_DOWNLOAD_NONE;
}

/* Brings every widget in line with the item, touching only what changed.
 *
 * Progress arrives several times a second while the jobs popover is open, and anything that
 * queues a resize inside the popover (a GtkLabel's new text, an image or button icon set again,
 * a widget shown) relayouts the whole window, the popover's parent, and re-presents the popover:
 * synchronous X round trips in every such frame, slow when the display server waits for a CPU.
 * So the progress text is a GtkInscription (its size does not depend on its text: a new text
 * only redraws it), the bar's fraction only reallocates the bar, and the state-dependent
 * widgets are set when the state, the download state or the error changes. */
static void
sync_row(WhittleJobRow *self)
{
  WhittleJobItem *item = self->item;
  const char *error = whittle_job_item_get_error_message(item);
  wh_job_state state = whittle_job_item_get_state(item);
  WhittleDownloadState ds = get_download_state(self);

  double fraction = whittle_job_item_get_fraction(item);
  if (gtk_progress_bar_get_fraction(self->progress_bar) != fraction)
    gtk_progress_bar_set_fraction(self->progress_bar, fraction);
  const char *progress =
      ds == WHITTLE_DOWNLOAD_PAUSED ? _("Paused") : whittle_job_item_get_progress_text(item);
  if (g_strcmp0(gtk_inscription_get_text(self->progress_label), progress) != 0)
    gtk_inscription_set_text(self->progress_label, progress);

  /* Screen readers: "Test download: Finished". */
  g_autofree char *description =
      g_strdup_printf("%s: %s", whittle_job_item_get_title(item), error ? error : progress);
  if (g_strcmp0(description, self->synced_description) != 0) {
    gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL, description,
                                   -1);
    g_free(self->synced_description);
    self->synced_description = g_steal_pointer(&description);
  }

  if ((int)state == self->synced_state && (int)ds == self->synced_download_state &&
      g_strcmp0(error, self->synced_error) == 0)
    return;
  self->synced_state = (int)state;
  self->synced_download_state = (int)ds;
  g_free(self->synced_error);
  self->synced_error = g_strdup(error);

  gboolean finished = whittle_job_item_get_finished(item);
  gtk_label_set_label(self->error_label, error ? error : "");
  gtk_widget_set_visible(GTK_WIDGET(self->error_label), error != NULL);
  gtk_widget_set_visible(GTK_WIDGET(self->cancel_button), !finished);
  gtk_image_set_from_icon_name(self->state_icon, icon_for(item));
  sync_download_controls(self, ds);

  GtkWidget *bar = GTK_WIDGET(self->progress_bar);
  if (state == WH_JOB_FAILED)
    gtk_widget_add_css_class(bar, "error");
  else
    gtk_widget_remove_css_class(bar, "error");
  if (state == WH_JOB_SUCCEEDED)
    gtk_widget_add_css_class(bar, "success");
  else
    gtk_widget_remove_css_class(bar, "success");
}

static void
on_item_notify(WhittleJobRow *self)
{
  sync_row(self);
}

static void
on_cancel_clicked(WhittleJobRow *self)
{
  WhittleDownloads *downloads = get_downloads();
  wh_job *job = whittle_job_item_get_job(self->item);
  if (downloads && whittle_downloads_get_state(downloads, job) != WHITTLE_DOWNLOAD_NONE) {
    whittle_downloads_cancel(downloads, job); /* forgets it too */
    if (whittle_job_item_get_finished(self->item))
      gtk_widget_set_visible(GTK_WIDGET(self->cancel_button), FALSE);
    sync_row(self);
    return;
  }
  whittle_job_item_cancel(self->item);
}

static void
whittle_job_row_dispose(GObject *object)
{
  WhittleJobRow *self = WHITTLE_JOB_ROW(object);

  if (self->item)
    g_signal_handlers_disconnect_by_data(self->item, self);
  g_clear_object(&self->item);
  g_clear_pointer(&self->synced_error, g_free);
  g_clear_pointer(&self->synced_description, g_free);
  gtk_widget_dispose_template(GTK_WIDGET(self), WHITTLE_TYPE_JOB_ROW);
  G_OBJECT_CLASS(whittle_job_row_parent_class)->dispose(object);
}

static void
whittle_job_row_class_init(WhittleJobRowClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  G_OBJECT_CLASS(klass)->dispose = whittle_job_row_dispose;

  gtk_widget_class_set_template_from_resource(widget_class,
                                              "/io/github/whittle/Whittle/whittle-job-row.ui");
  gtk_widget_class_bind_template_child(widget_class, WhittleJobRow, state_icon);
  gtk_widget_class_bind_template_child(widget_class, WhittleJobRow, title_label);
  gtk_widget_class_bind_template_child(widget_class, WhittleJobRow, cancel_button);
  gtk_widget_class_bind_template_child(widget_class, WhittleJobRow, pause_button);
  gtk_widget_class_bind_template_child(widget_class, WhittleJobRow, resume_button);
  gtk_widget_class_bind_template_child(widget_class, WhittleJobRow, fix_button);
  gtk_widget_class_bind_template_child(widget_class, WhittleJobRow, progress_bar);
  gtk_widget_class_bind_template_child(widget_class, WhittleJobRow, progress_label);
  gtk_widget_class_bind_template_child(widget_class, WhittleJobRow, error_label);
  gtk_widget_class_bind_template_callback(widget_class, on_cancel_clicked);
  gtk_widget_class_bind_template_callback(widget_class, on_pause_clicked);
  gtk_widget_class_bind_template_callback(widget_class, on_resume_clicked);
  gtk_widget_class_bind_template_callback(widget_class, on_fix_clicked);
}

static void
whittle_job_row_init(WhittleJobRow *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
  self->synced_state = -1;
  self->synced_download_state = -1;
}

GtkWidget *
whittle_job_row_new(WhittleJobItem *item)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ITEM(item), NULL);

  WhittleJobRow *self = g_object_new(WHITTLE_TYPE_JOB_ROW, NULL);
  self->item = g_object_ref(item);
  gtk_label_set_label(self->title_label, whittle_job_item_get_title(item));
  g_signal_connect_swapped(item, "notify", G_CALLBACK(on_item_notify), self);
  /* Paused/failed/forgotten downloads change without a job notification. */
  WhittleDownloads *downloads = get_downloads();
  if (downloads)
    g_signal_connect_object(downloads, "changed", G_CALLBACK(on_item_notify), self,
                            G_CONNECT_SWAPPED);
  sync_row(self);
  return GTK_WIDGET(self);
}

WhittleJobItem *
whittle_job_row_get_item(WhittleJobRow *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ROW(self), NULL);
  return self->item;
}

const char *
whittle_job_row_get_progress_text(WhittleJobRow *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ROW(self), NULL);
  return gtk_inscription_get_text(self->progress_label);
}

const char *
whittle_job_row_get_error_text(WhittleJobRow *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ROW(self), NULL);
  if (!gtk_widget_get_visible(GTK_WIDGET(self->error_label)))
    return NULL;
  return gtk_label_get_label(self->error_label);
}

double
whittle_job_row_get_fraction(WhittleJobRow *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ROW(self), 0.0);
  return gtk_progress_bar_get_fraction(self->progress_bar);
}

gboolean
whittle_job_row_get_can_cancel(WhittleJobRow *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ROW(self), FALSE);
  return gtk_widget_get_visible(GTK_WIDGET(self->cancel_button));
}

gboolean
whittle_job_row_get_can_pause(WhittleJobRow *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ROW(self), FALSE);
  return gtk_widget_get_visible(GTK_WIDGET(self->pause_button));
}

gboolean
whittle_job_row_get_can_resume(WhittleJobRow *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ROW(self), FALSE);
  return gtk_widget_get_visible(GTK_WIDGET(self->resume_button));
}

const char *
whittle_job_row_get_fix_label(WhittleJobRow *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ROW(self), NULL);
  if (!gtk_widget_get_visible(GTK_WIDGET(self->fix_button)))
    return NULL;
  return gtk_button_get_label(self->fix_button);
}

void
whittle_job_row_pause(WhittleJobRow *self)
{
  g_return_if_fail(WHITTLE_IS_JOB_ROW(self));
  g_signal_emit_by_name(self->pause_button, "clicked");
}

void
whittle_job_row_resume(WhittleJobRow *self)
{
  g_return_if_fail(WHITTLE_IS_JOB_ROW(self));
  g_signal_emit_by_name(self->resume_button, "clicked");
}
