/* whittle-library-page.c — see whittle-library-page.h. */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "whittle-application.h"
#include "whittle-fit.h"
#include "whittle-format.h"
#include "whittle-library-page.h"
#include "whittle-preferences-window.h"

struct _WhittleLibraryPage {
  AdwBin parent_instance;

  wh_job_queue *queue; /* the page's own queue: scans and deletes are not user jobs */
  wh_job *scan_job;
  wh_job *delete_job;
  gboolean rescan;    /* another scan was asked for while one ran */
  gboolean scanned;   /* a scan finished at least once */
  GPtrArray *entries; /* wh_library_entry* of the last scan */
  GPtrArray *rows;    /* AdwActionRow* (borrowed), parallel to the shown entries */
  GtkNativeDialog *chooser;
  GHashTable *fit_jobs; /* wh_job* (owned ref) → entry id (owned) */
  GHashTable *badges;   /* entry id → FitBadge* of the last scan */
  gboolean connected;   /* to the app's downloads and settings */

  /* template children */
  GtkSearchEntry *filter_entry;
  GtkStack *stack;
  GtkSpinner *spinner;
  GtkBox *groups_box;
};

G_DEFINE_FINAL_TYPE(WhittleLibraryPage, whittle_library_page, ADW_TYPE_BIN)

static WhittleApplication *
get_app(void)
{
  GApplication *app = g_application_get_default();
  return WHITTLE_IS_APPLICATION(app) ? WHITTLE_APPLICATION(app) : NULL;
}

static const wh_library_entry *
entry_by_id(WhittleLibraryPage *self, const char *id)
{
  for (guint i = 0; self->entries && i < self->entries->len; i++) {
    const wh_library_entry *e = self->entries->pdata[i];
    if (g_strcmp0(e->id, id) == 0)
      return e;
  }
  return NULL;
}

/* --- Fit badges: the planner on each model's header, in jobs ------------------------- */

typedef struct {
  char *text;
  const char *css;
} FitBadge;

static void
fit_badge_free(FitBadge *b)
{
  g_free(b->text);
  g_free(b);
}

typedef struct {
  char *path;
  WhittleFitSettings fs;
} LocalFitArgs;

static void
local_fit_args_free(LocalFitArgs *a)
{
  g_free(a->path);
  whittle_fit_settings_clear(&a->fs);
  g_free(a);
}

static gboolean
run_local_fit(wh_job *job, gpointer user_data, GError **error)
{
  LocalFitArgs *a = user_data;
  wh_gguf *g = wh_gguf_open(a->path, error); /* maps the file: only the header is read */
  return g != NULL && whittle_fit_run(job, g, &a->fs, error);
}

static GtkWidget *
row_for_id(WhittleLibraryPage *self, const char *id)
{
  for (guint i = 0; i < self->rows->len; i++)
    if (g_strcmp0(g_object_get_data(G_OBJECT(self->rows->pdata[i]), "entry-id"), id) == 0)
      return self->rows->pdata[i];
  return NULL;
}

static void
on_fit_notify(wh_job *job, gpointer user_data)
{
  WhittleLibraryPage *self = user_data;
  const char *id = g_hash_table_lookup(self->fit_jobs, job);
  if (id == NULL || !wh_job_is_finished(job))
    return;
  FitBadge *b = g_new0(FitBadge, 1);
  if (wh_job_get_state(job) == WH_JOB_SUCCEEDED) {
    b->text = whittle_fit_badge_text(wh_job_get_result(job), &b->css);
  } else {
    b->text = g_strdup(_("Fit unknown"));
    b->css = "warning";
  }
  GtkWidget *row = row_for_id(self, id);
  if (row)
    whittle_fit_badge_apply(g_object_get_data(G_OBJECT(row), "badge"), b->text, b->css);
  g_hash_table_replace(self->badges, g_strdup(id), b);
  g_hash_table_remove(self->fit_jobs, job); /* frees id and the job reference */
}

static void
cancel_fits(WhittleLibraryPage *self)
{
  GHashTableIter it;
  gpointer job;
  g_hash_table_iter_init(&it, self->fit_jobs);
  while (g_hash_table_iter_next(&it, &job, NULL))
    wh_job_cancel(job);
  g_hash_table_remove_all(self->fit_jobs);
}

static void
start_fits(WhittleLibraryPage *self)
{
  WhittleApplication *app = get_app();
  GSettings *settings = app ? whittle_application_get_settings(app) : NULL;
  cancel_fits(self);
  g_hash_table_remove_all(self->badges);
  for (guint i = 0; self->entries && i < self->entries->len; i++) {
    const wh_library_entry *e = self->entries->pdata[i];
    if (e->error || e->is_projector || !e->complete)
      continue;
    LocalFitArgs *a = g_new0(LocalFitArgs, 1);
    a->path = g_strdup(e->paths[0]);
    whittle_fit_settings_load(&a->fs, settings);
    g_autofree char *title = g_strdup_printf(_("Checking %s"), e->name);
    wh_job *job = wh_job_queue_submit(self->queue, WH_JOB_EVALUATE, title, run_local_fit, a,
                                      (GDestroyNotify)local_fit_args_free, on_fit_notify, self);
    g_hash_table_insert(self->fit_jobs, job, g_strdup(e->id));
  }
}

/* --- Rows ------------------------------------------------------------------------------ */

static char *
describe(const wh_library_entry *e)
{
  GPtrArray *parts = g_ptr_array_new_with_free_func(g_free);
  if (e->error)
    g_ptr_array_add(parts, g_strdup_printf(_("Cannot be read: %s"), e->error));
  if (e->architecture)
    g_ptr_array_add(parts, g_strdup(e->architecture));
  if (e->n_params) {
    g_autofree char *p = whittle_format_params(e->n_params);
    g_ptr_array_add(parts, g_strdup_printf(_("%s parameters"), p));
  }
  if (e->quant)
    g_ptr_array_add(parts, g_strdup(e->quant));
  if (e->context_length)
    g_ptr_array_add(parts, g_strdup_printf(_("context %" G_GUINT64_FORMAT), e->context_length));
  g_ptr_array_add(parts, g_format_size(e->size));
  if (e->n_shards > 1)
    g_ptr_array_add(
        parts, g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "%u part", "%u parts", e->n_shards),
                               e->n_shards));
  if (!e->complete)
    g_ptr_array_add(parts, g_strdup(_("some parts are missing")));
  if (e->mmproj_paths && e->mmproj_paths[0])
    g_ptr_array_add(parts, g_strdup(_("with image projector")));
  g_ptr_array_add(parts, NULL);
  char *text = g_strjoinv(" · ", (char **)parts->pdata);
  g_ptr_array_unref(parts);
  return text;
}

static GtkWidget *
make_row(WhittleLibraryPage *self, const wh_library_entry *e)
{
  GtkWidget *row = adw_action_row_new();
  adw_preferences_row_set_use_markup(ADW_PREFERENCES_ROW(row), FALSE);
  adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), e->name);
  g_autofree char *subtitle = describe(e);
  adw_action_row_set_subtitle(ADW_ACTION_ROW(row), subtitle);
  adw_action_row_set_subtitle_lines(ADW_ACTION_ROW(row), 2);
  gtk_widget_set_tooltip_text(row, e->paths[0]);
  g_object_set_data_full(G_OBJECT(row), "entry-id", g_strdup(e->id), g_free);

  GVariant *target = g_variant_new_string(e->id);
  g_variant_ref_sink(target);

  /* The fit badge: known from this scan, or coming from its job. */
  GtkWidget *badge = gtk_label_new(NULL);
  gtk_widget_set_valign(badge, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class(badge, "caption-heading");
  const FitBadge *known = g_hash_table_lookup(self->badges, e->id);
  if (known)
    whittle_fit_badge_apply(GTK_LABEL(badge), known->text, known->css);
  else
    gtk_widget_set_visible(badge, FALSE);
  g_object_set_data(G_OBJECT(row), "badge", badge);
  adw_action_row_add_suffix(ADW_ACTION_ROW(row), badge);

  GtkWidget *chat = gtk_button_new_with_mnemonic(_("_Chat"));
  gtk_widget_set_valign(chat, GTK_ALIGN_CENTER);
  gtk_actionable_set_action_name(GTK_ACTIONABLE(chat), "library.chat");
  gtk_actionable_set_action_target_value(GTK_ACTIONABLE(chat), target);
  g_autofree char *chat_a11y = g_strdup_printf(_("Chat with %s"), e->name);
  gtk_accessible_update_property(GTK_ACCESSIBLE(chat), GTK_ACCESSIBLE_PROPERTY_LABEL, chat_a11y,
                                 -1);
  gtk_widget_set_sensitive(chat, e->error == NULL && !e->is_projector);
  adw_action_row_add_suffix(ADW_ACTION_ROW(row), chat);

  g_autoptr(GMenu) menu = g_menu_new();
  g_autoptr(GMenu) section = g_menu_new();
  static const struct {
    const char *label, *action;
  } items[] = {
      {N_("_Quantize…"), "library.quantize"},
      {N_("_Plan Memory…"), "library.plan"},
      {N_("_Show in Files"), "library.show"},
  };
  for (gsize i = 0; i < G_N_ELEMENTS(items); i++) {
    g_autoptr(GMenuItem) item = g_menu_item_new(_(items[i].label), NULL);
    g_menu_item_set_action_and_target_value(item, items[i].action, target);
    g_menu_append_item(menu, item);
  }
  if (e->deletable) {
    g_autoptr(GMenuItem) item = g_menu_item_new(_("_Delete…"), NULL);
    g_menu_item_set_action_and_target_value(item, "library.delete", target);
    g_menu_append_item(section, item);
    g_menu_append_section(menu, NULL, G_MENU_MODEL(section));
  }
  GtkWidget *more = gtk_menu_button_new();
  gtk_menu_button_set_icon_name(GTK_MENU_BUTTON(more), "view-more-symbolic");
  gtk_menu_button_set_menu_model(GTK_MENU_BUTTON(more), G_MENU_MODEL(menu));
  gtk_widget_set_valign(more, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class(more, "flat");
  gtk_widget_set_tooltip_text(more, _("More Actions"));
  g_autofree char *more_a11y = g_strdup_printf(_("More actions for %s"), e->name);
  gtk_accessible_update_property(GTK_ACCESSIBLE(more), GTK_ACCESSIBLE_PROPERTY_LABEL, more_a11y,
                                 -1);
  adw_action_row_add_suffix(ADW_ACTION_ROW(row), more);
  g_variant_unref(target);
  return row;
}

static gboolean
entry_matches(const wh_library_entry *e, const char *filter)
{
  if (filter == NULL || *filter == '\0')
    return TRUE;
  g_autofree char *needle = g_utf8_casefold(filter, -1);
  const char *fields[] = {e->name, e->repo_id, e->architecture, e->quant, e->model_name};
  for (gsize i = 0; i < G_N_ELEMENTS(fields); i++) {
    if (fields[i] == NULL)
      continue;
    g_autofree char *hay = g_utf8_casefold(fields[i], -1);
    if (strstr(hay, needle))
      return TRUE;
  }
  return FALSE;
}

/* Groups by source (the scan sorts by source, then name). */
static void
show_entries(WhittleLibraryPage *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->groups_box))))
    gtk_box_remove(self->groups_box, child);
  g_ptr_array_set_size(self->rows, 0);

  const char *filter = gtk_editable_get_text(GTK_EDITABLE(self->filter_entry));
  AdwPreferencesGroup *group = NULL;
  int group_source = -1;
  for (guint i = 0; self->entries && i < self->entries->len; i++) {
    const wh_library_entry *e = self->entries->pdata[i];
    if (!entry_matches(e, filter))
      continue;
    if ((int)e->source != group_source) {
      group = ADW_PREFERENCES_GROUP(adw_preferences_group_new());
      adw_preferences_group_set_title(group, _(wh_library_source_to_label(e->source)));
      gtk_box_append(self->groups_box, GTK_WIDGET(group));
      group_source = (int)e->source;
    }
    GtkWidget *row = make_row(self, e);
    adw_preferences_group_add(group, row);
    g_ptr_array_add(self->rows, row);
  }
  if (self->rows->len > 0) {
    gtk_stack_set_visible_child_name(self->stack, "models");
  } else if (self->entries && self->entries->len > 0) {
    /* Everything filtered out: say so in the list area. */
    AdwPreferencesGroup *none = ADW_PREFERENCES_GROUP(adw_preferences_group_new());
    GtkWidget *row = adw_action_row_new();
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), _("No model matches the filter"));
    adw_preferences_group_add(none, row);
    gtk_box_append(self->groups_box, GTK_WIDGET(none));
    gtk_stack_set_visible_child_name(self->stack, "models");
  } else {
    gtk_stack_set_visible_child_name(self->stack, "empty");
  }
}

/* --- Scanning -------------------------------------------------------------------------- */

static void start_scan(WhittleLibraryPage *self);

static void
on_scan_notify(wh_job *job, gpointer user_data)
{
  WhittleLibraryPage *self = user_data;
  if (job != self->scan_job || !wh_job_is_finished(job))
    return;
  if (wh_job_get_state(job) == WH_JOB_SUCCEEDED) {
    GPtrArray *found = wh_job_get_result(job);
    g_clear_pointer(&self->entries, g_ptr_array_unref);
    self->entries = g_ptr_array_new_with_free_func((GDestroyNotify)wh_library_entry_free);
    for (guint i = 0; i < found->len; i++)
      g_ptr_array_add(self->entries, wh_library_entry_copy(found->pdata[i]));
    self->scanned = TRUE;
    show_entries(self);
    start_fits(self);
  }
  gtk_spinner_set_spinning(self->spinner, FALSE);
  g_clear_pointer(&self->scan_job, wh_job_unref);
  if (self->rescan) {
    self->rescan = FALSE;
    start_scan(self);
  }
}

static void
start_scan(WhittleLibraryPage *self)
{
  WhittleApplication *app = get_app();
  wh_library *lib = app ? whittle_application_get_library(app) : NULL;
  if (lib == NULL)
    return;
  if (self->scan_job) {
    self->rescan = TRUE;
    return;
  }
  self->scan_job = wh_library_scan_async(lib, self->queue, on_scan_notify, self);
  if (!self->scanned) {
    gtk_stack_set_visible_child_name(self->stack, "loading");
    gtk_spinner_set_spinning(self->spinner, TRUE);
  }
}

static void
on_download_finished(WhittleLibraryPage *self)
{
  start_scan(self);
}

/* --- Actions --------------------------------------------------------------------------- */

/* Switches to @page with the model selected: win.open-<page>(s) takes the path (the Chat,
 * Quantize and Planner pages implement it); falls back to just showing the page. */
static void
open_with(WhittleLibraryPage *self, const char *action, const char *page, const char *id)
{
  const wh_library_entry *e = entry_by_id(self, id);
  if (e == NULL)
    return;
  g_autofree char *name = g_strdup_printf("win.%s", action);
  if (!gtk_widget_activate_action(GTK_WIDGET(self), name, "s", e->paths[0]))
    gtk_widget_activate_action(GTK_WIDGET(self), "win.show-page", "s", page);
}

static void
action_chat(GtkWidget *widget, const char *action_name, GVariant *param)
{
  open_with(WHITTLE_LIBRARY_PAGE(widget), "open-chat", "chat", g_variant_get_string(param, NULL));
}

static void
action_quantize(GtkWidget *widget, const char *action_name, GVariant *param)
{
  open_with(WHITTLE_LIBRARY_PAGE(widget), "open-quantize", "quantize",
            g_variant_get_string(param, NULL));
}

static void
action_plan(GtkWidget *widget, const char *action_name, GVariant *param)
{
  open_with(WHITTLE_LIBRARY_PAGE(widget), "open-planner", "planner",
            g_variant_get_string(param, NULL));
}

typedef struct {
  GtkWindow *window; /* strong ref */
  char *folder_uri;
} ShowData;

static void
on_show_items_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
  ShowData *d = user_data;
  g_autoptr(GVariant) ret = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, NULL);
  if (ret == NULL) /* no file manager on the bus: open the folder instead */
    gtk_show_uri(d->window, d->folder_uri, GDK_CURRENT_TIME);
  g_object_unref(d->window);
  g_free(d->folder_uri);
  g_free(d);
}

static void
action_show(GtkWidget *widget, const char *action_name, GVariant *param)
{
  WhittleLibraryPage *self = WHITTLE_LIBRARY_PAGE(widget);
  const wh_library_entry *e = entry_by_id(self, g_variant_get_string(param, NULL));
  if (e == NULL)
    return;
  g_autoptr(GFile) file = g_file_new_for_path(e->paths[0]);
  g_autoptr(GFile) parent = g_file_get_parent(file);
  g_autofree char *uri = g_file_get_uri(file);
  ShowData *d = g_new0(ShowData, 1);
  d->window = g_object_ref(GTK_WINDOW(gtk_widget_get_root(widget)));
  d->folder_uri = parent ? g_file_get_uri(parent) : g_strdup(uri);

  GDBusConnection *bus = g_application_get_dbus_connection(g_application_get_default());
  if (bus == NULL) {
    gtk_show_uri(d->window, d->folder_uri, GDK_CURRENT_TIME);
    g_object_unref(d->window);
    g_free(d->folder_uri);
    g_free(d);
    return;
  }
  const char *uris[] = {uri, NULL};
  g_dbus_connection_call(bus, "org.freedesktop.FileManager1", "/org/freedesktop/FileManager1",
                         "org.freedesktop.FileManager1", "ShowItems",
                         g_variant_new("(^ass)", uris, ""), NULL, G_DBUS_CALL_FLAGS_NONE, 5000,
                         NULL, on_show_items_done, d);
}

typedef struct {
  wh_library *lib;
  wh_library_entry *entry;
} DeleteArgs;

static void
delete_args_free(DeleteArgs *a)
{
  wh_library_entry_free(a->entry);
  g_free(a);
}

static gboolean
run_delete(wh_job *job, gpointer user_data, GError **error)
{
  DeleteArgs *a = user_data;
  return wh_library_delete(a->lib, a->entry, error);
}

static void
on_delete_notify(wh_job *job, gpointer user_data)
{
  WhittleLibraryPage *self = user_data;
  if (job != self->delete_job || !wh_job_is_finished(job))
    return;
  if (wh_job_get_state(job) == WH_JOB_FAILED) {
    const GError *e = wh_job_get_error(job);
    GtkWidget *dialog =
        adw_message_dialog_new(GTK_WINDOW(gtk_widget_get_root(GTK_WIDGET(self))),
                               _("The Model Was Not Deleted"), e ? e->message : NULL);
    adw_message_dialog_add_response(ADW_MESSAGE_DIALOG(dialog), "close", _("_Close"));
    gtk_window_present(GTK_WINDOW(dialog));
  }
  g_clear_pointer(&self->delete_job, wh_job_unref);
  start_scan(self);
}

static void
on_delete_response(AdwMessageDialog *dialog, const char *response, WhittleLibraryPage *self)
{
  const char *id = g_object_get_data(G_OBJECT(dialog), "entry-id");
  const wh_library_entry *e = entry_by_id(self, id);
  WhittleApplication *app = get_app();
  if (g_strcmp0(response, "delete") != 0 || e == NULL || app == NULL || self->delete_job)
    return;
  DeleteArgs *a = g_new0(DeleteArgs, 1);
  a->lib = whittle_application_get_library(app);
  a->entry = wh_library_entry_copy(e);
  g_autofree char *title = g_strdup_printf(_("Deleting %s"), e->name);
  self->delete_job = wh_job_queue_submit(self->queue, WH_JOB_DOWNLOAD, title, run_delete, a,
                                         (GDestroyNotify)delete_args_free, on_delete_notify, self);
}

static void
action_delete(GtkWidget *widget, const char *action_name, GVariant *param)
{
  WhittleLibraryPage *self = WHITTLE_LIBRARY_PAGE(widget);
  const wh_library_entry *e = entry_by_id(self, g_variant_get_string(param, NULL));
  if (e == NULL || !e->deletable)
    return;
  g_autofree char *heading = g_strdup_printf(_("Delete %s?"), e->name);
  g_autofree char *size = g_format_size(e->size);
  g_autofree char *body = g_strdup_printf(
      _("This frees %s of disk space. You can download the model again from Browse."), size);
  GtkWidget *dialog =
      adw_message_dialog_new(GTK_WINDOW(gtk_widget_get_root(widget)), heading, body);
  adw_message_dialog_add_responses(ADW_MESSAGE_DIALOG(dialog), "cancel", _("_Cancel"), "delete",
                                   _("_Delete"), NULL);
  adw_message_dialog_set_response_appearance(ADW_MESSAGE_DIALOG(dialog), "delete",
                                             ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_default_response(ADW_MESSAGE_DIALOG(dialog), "cancel");
  adw_message_dialog_set_close_response(ADW_MESSAGE_DIALOG(dialog), "cancel");
  g_object_set_data_full(G_OBJECT(dialog), "entry-id", g_strdup(e->id), g_free);
  g_signal_connect_object(dialog, "response", G_CALLBACK(on_delete_response), self, 0);
  gtk_window_present(GTK_WINDOW(dialog));
}

/* --- Toolbar --------------------------------------------------------------------------- */

static void
on_filter_changed(WhittleLibraryPage *self)
{
  if (self->scanned)
    show_entries(self);
}

static void
on_refresh_clicked(WhittleLibraryPage *self)
{
  start_scan(self);
}

static void
on_chooser_response(GtkNativeDialog *dialog, int response, WhittleLibraryPage *self)
{
  if (response == GTK_RESPONSE_ACCEPT) {
    g_autoptr(GFile) folder = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
    g_autofree char *path = folder ? g_file_get_path(folder) : NULL;
    WhittleApplication *app = get_app();
    if (path && app) /* the settings change starts a scan */
      whittle_preferences_add_library_folder(whittle_application_get_settings(app), path);
  }
  g_clear_object(&self->chooser);
}

static void
on_add_folder_clicked(WhittleLibraryPage *self)
{
  if (self->chooser)
    return;
  GtkFileChooserNative *chooser = gtk_file_chooser_native_new(
      _("Add a Folder to the Library"), GTK_WINDOW(gtk_widget_get_root(GTK_WIDGET(self))),
      GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Add"), _("_Cancel"));
  self->chooser = GTK_NATIVE_DIALOG(chooser);
  gtk_native_dialog_set_modal(self->chooser, TRUE);
  g_signal_connect(chooser, "response", G_CALLBACK(on_chooser_response), self);
  gtk_native_dialog_show(self->chooser);
}

static void
action_refresh(GtkWidget *widget, const char *action_name, GVariant *param)
{
  start_scan(WHITTLE_LIBRARY_PAGE(widget));
}

/* --- GObject --------------------------------------------------------------------------- */

static void
whittle_library_page_map(GtkWidget *widget)
{
  WhittleLibraryPage *self = WHITTLE_LIBRARY_PAGE(widget);
  GTK_WIDGET_CLASS(whittle_library_page_parent_class)->map(widget);

  WhittleApplication *app = get_app();
  if (app && !self->connected) {
    self->connected = TRUE;
    WhittleDownloads *downloads = whittle_application_get_downloads(app);
    if (downloads)
      g_signal_connect_object(downloads, "download-finished", G_CALLBACK(on_download_finished),
                              self, G_CONNECT_SWAPPED);
    g_signal_connect_object(whittle_application_get_settings(app), "changed::library-folders",
                            G_CALLBACK(on_download_finished), self, G_CONNECT_SWAPPED);
  }
  /* The first visit scans; later visits show what is known (Refresh scans again). */
  if (!self->scanned)
    start_scan(self);
}

static void
whittle_library_page_dispose(GObject *object)
{
  WhittleLibraryPage *self = WHITTLE_LIBRARY_PAGE(object);

  g_clear_pointer(&self->scan_job, wh_job_unref);
  g_clear_pointer(&self->delete_job, wh_job_unref);
  g_clear_pointer(&self->queue, wh_job_queue_free); /* no notification after this */
  g_clear_pointer(&self->fit_jobs, g_hash_table_unref);
  g_clear_pointer(&self->badges, g_hash_table_unref);
  if (self->chooser) {
    g_signal_handlers_disconnect_by_data(self->chooser, self);
    gtk_native_dialog_destroy(self->chooser);
    g_clear_object(&self->chooser);
  }
  g_clear_pointer(&self->entries, g_ptr_array_unref);
  g_clear_pointer(&self->rows, g_ptr_array_unref);
  gtk_widget_dispose_template(GTK_WIDGET(object), WHITTLE_TYPE_LIBRARY_PAGE);
  G_OBJECT_CLASS(whittle_library_page_parent_class)->dispose(object);
}

static void
whittle_library_page_class_init(WhittleLibraryPageClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  G_OBJECT_CLASS(klass)->dispose = whittle_library_page_dispose;
  widget_class->map = whittle_library_page_map;

  gtk_widget_class_set_template_from_resource(widget_class,
                                              "/io/github/whittle/Whittle/whittle-library-page.ui");
  gtk_widget_class_bind_template_child(widget_class, WhittleLibraryPage, filter_entry);
  gtk_widget_class_bind_template_child(widget_class, WhittleLibraryPage, stack);
  gtk_widget_class_bind_template_child(widget_class, WhittleLibraryPage, spinner);
  gtk_widget_class_bind_template_child(widget_class, WhittleLibraryPage, groups_box);
  gtk_widget_class_bind_template_callback(widget_class, on_filter_changed);
  gtk_widget_class_bind_template_callback(widget_class, on_refresh_clicked);
  gtk_widget_class_bind_template_callback(widget_class, on_add_folder_clicked);

  gtk_widget_class_install_action(widget_class, "library.chat", "s", action_chat);
  gtk_widget_class_install_action(widget_class, "library.quantize", "s", action_quantize);
  gtk_widget_class_install_action(widget_class, "library.plan", "s", action_plan);
  gtk_widget_class_install_action(widget_class, "library.show", "s", action_show);
  gtk_widget_class_install_action(widget_class, "library.delete", "s", action_delete);
  gtk_widget_class_install_action(widget_class, "library.refresh", NULL, action_refresh);

  /* Ctrl+F: the filter entry; F5 / Ctrl+R: look again. */
  gtk_widget_class_add_binding(widget_class, GDK_KEY_f, GDK_CONTROL_MASK,
                               (GtkShortcutFunc)whittle_library_page_focus_filter, NULL);
  gtk_widget_class_add_binding_action(widget_class, GDK_KEY_F5, 0, "library.refresh", NULL);
  gtk_widget_class_add_binding_action(widget_class, GDK_KEY_r, GDK_CONTROL_MASK, "library.refresh",
                                      NULL);
}

static void
whittle_library_page_init(WhittleLibraryPage *self)
{
  self->queue = wh_job_queue_new(NULL, 2);
  self->rows = g_ptr_array_new();
  self->fit_jobs =
      g_hash_table_new_full(g_direct_hash, g_direct_equal, (GDestroyNotify)wh_job_unref, g_free);
  self->badges =
      g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)fit_badge_free);
  gtk_widget_init_template(GTK_WIDGET(self));
  gtk_search_entry_set_key_capture_widget(self->filter_entry, GTK_WIDGET(self));
}

gboolean
whittle_library_page_focus_filter(GtkWidget *widget, GVariant *args, gpointer user_data)
{
  gtk_widget_grab_focus(GTK_WIDGET(WHITTLE_LIBRARY_PAGE(widget)->filter_entry));
  return TRUE;
}

void
whittle_library_page_refresh(WhittleLibraryPage *self)
{
  g_return_if_fail(WHITTLE_IS_LIBRARY_PAGE(self));
  start_scan(self);
}

gboolean
whittle_library_page_is_scanning(WhittleLibraryPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_LIBRARY_PAGE(self), FALSE);
  return self->scan_job != NULL || self->delete_job != NULL || !self->scanned ||
         g_hash_table_size(self->fit_jobs) > 0;
}

guint
whittle_library_page_get_n_models(WhittleLibraryPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_LIBRARY_PAGE(self), 0);
  return self->rows->len;
}

GtkWidget *
whittle_library_page_get_row(WhittleLibraryPage *self, guint index)
{
  g_return_val_if_fail(WHITTLE_IS_LIBRARY_PAGE(self), NULL);
  return index < self->rows->len ? self->rows->pdata[index] : NULL;
}

const wh_library_entry *
whittle_library_page_get_entry(WhittleLibraryPage *self, guint index)
{
  g_return_val_if_fail(WHITTLE_IS_LIBRARY_PAGE(self), NULL);
  GtkWidget *row = whittle_library_page_get_row(self, index);
  return row ? entry_by_id(self, g_object_get_data(G_OBJECT(row), "entry-id")) : NULL;
}

const char *
whittle_library_page_get_badge(WhittleLibraryPage *self, guint index)
{
  g_return_val_if_fail(WHITTLE_IS_LIBRARY_PAGE(self), NULL);
  GtkWidget *row = whittle_library_page_get_row(self, index);
  GtkWidget *badge = row ? g_object_get_data(G_OBJECT(row), "badge") : NULL;
  return badge && gtk_widget_get_visible(badge) ? gtk_label_get_label(GTK_LABEL(badge)) : NULL;
}
