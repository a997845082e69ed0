/* whittle-window.c — see whittle-window.h. */
#include "config.h"

#include <glib/gi18n.h>

#include "whittle-browse-page.h"
#include "whittle-chat-page.h"
#include "whittle-library-page.h"
#include "whittle-planner-page.h"
#include "whittle-quantize-page.h"
#include "whittle-window.h"

struct _WhittleWindow {
  AdwApplicationWindow parent_instance;

  GSettings *settings;
  GCancellable *cancellable;
  char *last_toast_title;
  gboolean close_confirmed; /* the user chose to stop running jobs */
  AdwMessageDialog *confirm_close;

  /* template children */
  AdwToastOverlay *toast_overlay;
  AdwViewStack *stack;
  WhittleJobsButton *jobs_button;
  WhittlePlannerPage *planner_page;
};

G_DEFINE_FINAL_TYPE(WhittleWindow, whittle_window, ADW_TYPE_APPLICATION_WINDOW)

static void
save_window_state(WhittleWindow *self)
{
  if (self->settings == NULL)
    return;

  int width = 0, height = 0;
  gtk_window_get_default_size(GTK_WINDOW(self), &width, &height);
  gboolean maximized = gtk_window_is_maximized(GTK_WINDOW(self));

  g_settings_delay(self->settings);
  if (!maximized && width > 0 && height > 0) {
    g_settings_set_int(self->settings, "window-width", width);
    g_settings_set_int(self->settings, "window-height", height);
  }
  g_settings_set_boolean(self->settings, "window-maximized", maximized);
  g_settings_apply(self->settings);
}

static gboolean
close_later(gpointer data)
{
  gtk_window_close(GTK_WINDOW(data));
  return G_SOURCE_REMOVE;
}

static void
on_confirm_close_response(AdwMessageDialog *dialog, const char *response, WhittleWindow *self)
{
  self->confirm_close = NULL;
  if (g_strcmp0(response, "stop") != 0)
    return;

  WhittleApplication *app = WHITTLE_APPLICATION(gtk_window_get_application(GTK_WINDOW(self)));
  GListModel *jobs = whittle_application_get_jobs(app);
  for (guint i = 0; i < g_list_model_get_n_items(jobs); i++) {
    g_autoptr(WhittleJobItem) item = g_list_model_get_item(jobs, i);
    whittle_job_item_cancel(item);
  }
  self->close_confirmed = TRUE;
  /* Close once the dialog is gone: it is transient for this window and
   * still inside its own response handling. */
  g_idle_add_full(G_PRIORITY_DEFAULT, close_later, g_object_ref(self), g_object_unref);
}

/* Closing the window quits the app, which stops every job: ask first. */
static void
confirm_close(WhittleWindow *self, guint n_active)
{
  if (self->confirm_close) {
    gtk_window_present(GTK_WINDOW(self->confirm_close));
    return;
  }

  g_autofree char *body = g_strdup_printf(
      g_dngettext(GETTEXT_PACKAGE,
                  "%u job is still running. Closing Whittle stops it, and its unfinished work "
                  "is lost.",
                  "%u jobs are still running. Closing Whittle stops them, and their unfinished "
                  "work is lost.",
                  n_active),
      n_active);
  GtkWidget *dialog = adw_message_dialog_new(GTK_WINDOW(self), _("Stop Running Jobs?"), body);
  adw_message_dialog_add_responses(ADW_MESSAGE_DIALOG(dialog), "cancel", _("_Keep Running"), "stop",
                                   _("_Stop and Close"), NULL);
  adw_message_dialog_set_response_appearance(ADW_MESSAGE_DIALOG(dialog), "stop",
                                             ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_default_response(ADW_MESSAGE_DIALOG(dialog), "cancel");
  adw_message_dialog_set_close_response(ADW_MESSAGE_DIALOG(dialog), "cancel");
  g_signal_connect_object(dialog, "response", G_CALLBACK(on_confirm_close_response), self, 0);
  self->confirm_close = ADW_MESSAGE_DIALOG(dialog);
  gtk_window_present(GTK_WINDOW(dialog));
}

static gboolean
whittle_window_close_request(GtkWindow *window)
{
  WhittleWindow *self = WHITTLE_WINDOW(window);
  GtkApplication *app = gtk_window_get_application(window);
  guint n_active = app ? whittle_application_get_n_active(WHITTLE_APPLICATION(app)) : 0;

  if (n_active > 0 && !self->close_confirmed) {
    confirm_close(self, n_active);
    return TRUE; /* keep the window open for now */
  }
  save_window_state(self);
  return GTK_WINDOW_CLASS(whittle_window_parent_class)->close_request(window);
}

static void
action_show_jobs(GtkWidget *widget, const char *action_name, GVariant *param)
{
  WhittleWindow *self = WHITTLE_WINDOW(widget);
  gtk_menu_button_popup(whittle_jobs_button_get_menu_button(self->jobs_button));
}

/* Whether a finished job's end would otherwise go unseen: not while the jobs popover is open
 * (its row shows it, and a toast on top costs a frame of layout for nothing), and not for
 * the Chat page's model loads and replies (the page itself shows them). */
static gboolean
job_end_unseen(WhittleWindow *self, WhittleJobItem *item)
{
  GtkPopover *popover =
      gtk_menu_button_get_popover(whittle_jobs_button_get_menu_button(self->jobs_button));
  if (popover && gtk_widget_get_visible(GTK_WIDGET(popover)))
    return FALSE;
  wh_job *job = whittle_job_item_get_job(item);
  const wh_job_kind kind = job ? wh_job_get_kind(job) : WH_JOB_DOWNLOAD;
  return kind != WH_JOB_LOAD && kind != WH_JOB_GENERATE;
}

/* A toast per finished job whose end would go unseen: short for success, with "Details" for
 * errors. Cancelled jobs need no news: the user asked for it. */
static void
on_job_finished(WhittleApplication *app, WhittleJobItem *item, WhittleWindow *self)
{
  AdwToast *toast = NULL;
  const char *title = whittle_job_item_get_title(item);
  if (!job_end_unseen(self, item))
    return;

  switch (whittle_job_item_get_state(item)) {
  case WH_JOB_SUCCEEDED: {
    /* Translators: %s is a job title such as “Downloading model.gguf” */
    g_autofree char *text = g_strdup_printf(_("Done: %s"), title);
    toast = adw_toast_new(text);
    adw_toast_set_timeout(toast, 3);
    break;
  }
  case WH_JOB_FAILED: {
    /* Translators: %s is a job title such as “Downloading model.gguf” */
    g_autofree char *text = g_strdup_printf(_("Failed: %s"), title);
    toast = adw_toast_new(text);
    adw_toast_set_button_label(toast, _("_Details"));
    adw_toast_set_action_name(toast, "win.show-jobs");
    adw_toast_set_timeout(toast, 0);
    break;
  }
  default:
    return;
  }
  g_free(self->last_toast_title);
  self->last_toast_title = g_strdup(adw_toast_get_title(toast));
  adw_toast_overlay_add_toast(self->toast_overlay, toast);
}

/* Hooks the window to its application: settings, jobs. ("application" is
 * not a construct property, so this cannot live in constructed().) */
static void
setup_for_application(WhittleWindow *self, WhittleApplication *app)
{
  self->settings = g_object_ref(whittle_application_get_settings(app));
  gtk_window_set_default_size(GTK_WINDOW(self), g_settings_get_int(self->settings, "window-width"),
                              g_settings_get_int(self->settings, "window-height"));
  if (g_settings_get_boolean(self->settings, "window-maximized"))
    gtk_window_maximize(GTK_WINDOW(self));

  whittle_jobs_button_set_model(self->jobs_button, whittle_application_get_jobs(app));
  g_object_bind_property(app, "n-active", self->jobs_button, "n-active", G_BINDING_SYNC_CREATE);
  g_signal_connect_object(app, "job-finished", G_CALLBACK(on_job_finished), self, 0);
}

static void
whittle_window_dispose(GObject *object)
{
  WhittleWindow *self = WHITTLE_WINDOW(object);

  if (self->cancellable)
    g_cancellable_cancel(self->cancellable);
  g_clear_object(&self->cancellable);
  g_clear_object(&self->settings);
  g_clear_pointer(&self->last_toast_title, g_free);
  gtk_widget_dispose_template(GTK_WIDGET(self), WHITTLE_TYPE_WINDOW);
  G_OBJECT_CLASS(whittle_window_parent_class)->dispose(object);
}

/* win.open-planner(s): the Planner page with the GGUF at the given path. */
static void
action_open_planner(GtkWidget *widget, const char *action_name, GVariant *param)
{
  (void)action_name;
  WhittleWindow *self = WHITTLE_WINDOW(widget);
  whittle_planner_page_open_file(self->planner_page, g_variant_get_string(param, NULL));
  adw_view_stack_set_visible_child_name(self->stack, "planner");
}

/* win.open-chat(s): the Chat page with the GGUF at the given path loading. */
static void
action_open_chat(GtkWidget *widget, const char *action_name, GVariant *param)
{
  (void)action_name;
  WhittleWindow *self = WHITTLE_WINDOW(widget);
  adw_view_stack_set_visible_child_name(self->stack, "chat");
  whittle_chat_page_open_model(
      WHITTLE_CHAT_PAGE(adw_view_stack_get_child_by_name(self->stack, "chat")),
      g_variant_get_string(param, NULL));
}

/* win.open-quantize(s): the Quantize wizard with the GGUF at the given path as its source. */
static void
action_open_quantize(GtkWidget *widget, const char *action_name, GVariant *param)
{
  (void)action_name;
  WhittleWindow *self = WHITTLE_WINDOW(widget);
  adw_view_stack_set_visible_child_name(self->stack, "quantize");
  whittle_quantize_page_open_file(
      WHITTLE_QUANTIZE_PAGE(adw_view_stack_get_child_by_name(self->stack, "quantize")),
      g_variant_get_string(param, NULL), NULL);
}

static void
whittle_window_class_init(WhittleWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS(klass);

  object_class->dispose = whittle_window_dispose;
  window_class->close_request = whittle_window_close_request;

  /* Types the template instantiates. */
  g_type_ensure(WHITTLE_TYPE_JOBS_BUTTON);
  g_type_ensure(WHITTLE_TYPE_BROWSE_PAGE);
  g_type_ensure(WHITTLE_TYPE_LIBRARY_PAGE);
  g_type_ensure(WHITTLE_TYPE_QUANTIZE_PAGE);
  g_type_ensure(WHITTLE_TYPE_CHAT_PAGE);
  g_type_ensure(WHITTLE_TYPE_PLANNER_PAGE);

  gtk_widget_class_set_template_from_resource(widget_class,
                                              "/io/github/whittle/Whittle/whittle-window.ui");
  gtk_widget_class_bind_template_child(widget_class, WhittleWindow, toast_overlay);
  gtk_widget_class_bind_template_child(widget_class, WhittleWindow, stack);
  gtk_widget_class_install_action(widget_class, "win.show-jobs", NULL, action_show_jobs);
  gtk_widget_class_bind_template_child(widget_class, WhittleWindow, jobs_button);
  gtk_widget_class_bind_template_child(widget_class, WhittleWindow, planner_page);
  gtk_widget_class_install_action(widget_class, "win.open-planner", "s", action_open_planner);
  gtk_widget_class_install_action(widget_class, "win.open-chat", "s", action_open_chat);
  gtk_widget_class_install_action(widget_class, "win.open-quantize", "s", action_open_quantize);
}

static void
whittle_window_init(WhittleWindow *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));

  self->cancellable = g_cancellable_new();

  g_autoptr(GPropertyAction) show_page =
      g_property_action_new("show-page", self->stack, "visible-child-name");
  g_action_map_add_action(G_ACTION_MAP(self), G_ACTION(show_page));

  if (g_strcmp0(PROFILE, "Devel") == 0)
    gtk_widget_add_css_class(GTK_WIDGET(self), "devel");
}

WhittleWindow *
whittle_window_new(WhittleApplication *app)
{
  g_return_val_if_fail(WHITTLE_IS_APPLICATION(app), NULL);

  WhittleWindow *self = g_object_new(WHITTLE_TYPE_WINDOW, "application", app, NULL);
  setup_for_application(self, app);
  return self;
}

GCancellable *
whittle_window_get_cancellable(WhittleWindow *self)
{
  g_return_val_if_fail(WHITTLE_IS_WINDOW(self), NULL);
  return self->cancellable;
}

AdwViewStack *
whittle_window_get_view_stack(WhittleWindow *self)
{
  g_return_val_if_fail(WHITTLE_IS_WINDOW(self), NULL);
  return self->stack;
}

WhittleJobsButton *
whittle_window_get_jobs_button(WhittleWindow *self)
{
  g_return_val_if_fail(WHITTLE_IS_WINDOW(self), NULL);
  return self->jobs_button;
}

const char *
whittle_window_get_last_toast_title(WhittleWindow *self)
{
  g_return_val_if_fail(WHITTLE_IS_WINDOW(self), NULL);
  return self->last_toast_title;
}
