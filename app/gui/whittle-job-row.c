/* whittle-job-row.c — see whittle-job-row.h. */
#include "config.h"

#include <glib/gi18n.h>

#include "whittle-job-row.h"

struct _WhittleJobRow {
  GtkListBoxRow parent_instance;

  WhittleJobItem *item;

  /* template children */
  GtkImage *state_icon;
  GtkLabel *title_label;
  GtkButton *cancel_button;
  GtkProgressBar *progress_bar;
  GtkLabel *progress_label;
  GtkLabel *error_label;
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

/* Brings every widget in line with the item. */
static void
sync_row(WhittleJobRow *self)
{
  WhittleJobItem *item = self->item;
  const char *error = whittle_job_item_get_error_message(item);
  gboolean finished = whittle_job_item_get_finished(item);
  wh_job_state state = whittle_job_item_get_state(item);

  gtk_label_set_label(self->title_label, whittle_job_item_get_title(item));
  gtk_progress_bar_set_fraction(self->progress_bar, whittle_job_item_get_fraction(item));
  gtk_label_set_label(self->progress_label, whittle_job_item_get_progress_text(item));
  gtk_label_set_label(self->error_label, error ? error : "");
  gtk_widget_set_visible(GTK_WIDGET(self->error_label), error != NULL);
  gtk_widget_set_visible(GTK_WIDGET(self->cancel_button), !finished);
  gtk_image_set_from_icon_name(self->state_icon, icon_for(item));

  GtkWidget *bar = GTK_WIDGET(self->progress_bar);
  if (state == WH_JOB_FAILED)
    gtk_widget_add_css_class(bar, "error");
  else
    gtk_widget_remove_css_class(bar, "error");
  if (state == WH_JOB_SUCCEEDED)
    gtk_widget_add_css_class(bar, "success");
  else
    gtk_widget_remove_css_class(bar, "success");

  /* Screen readers: "Test download: Finished". */
  g_autofree char *description =
      g_strdup_printf("%s: %s", whittle_job_item_get_title(item),
                      error ? error : whittle_job_item_get_progress_text(item));
  gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL, description,
                                 -1);
}

static void
on_item_notify(WhittleJobRow *self)
{
  sync_row(self);
}

static void
on_cancel_clicked(WhittleJobRow *self)
{
  whittle_job_item_cancel(self->item);
}

static void
whittle_job_row_dispose(GObject *object)
{
  WhittleJobRow *self = WHITTLE_JOB_ROW(object);

  if (self->item)
    g_signal_handlers_disconnect_by_data(self->item, self);
  g_clear_object(&self->item);
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
  gtk_widget_class_bind_template_child(widget_class, WhittleJobRow, progress_bar);
  gtk_widget_class_bind_template_child(widget_class, WhittleJobRow, progress_label);
  gtk_widget_class_bind_template_child(widget_class, WhittleJobRow, error_label);
  gtk_widget_class_bind_template_callback(widget_class, on_cancel_clicked);
}

static void
whittle_job_row_init(WhittleJobRow *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
}

GtkWidget *
whittle_job_row_new(WhittleJobItem *item)
{
  g_return_val_if_fail(WHITTLE_IS_JOB_ITEM(item), NULL);

  WhittleJobRow *self = g_object_new(WHITTLE_TYPE_JOB_ROW, NULL);
  self->item = g_object_ref(item);
  g_signal_connect_swapped(item, "notify", G_CALLBACK(on_item_notify), self);
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
  return gtk_label_get_label(self->progress_label);
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
