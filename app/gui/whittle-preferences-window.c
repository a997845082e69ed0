/* whittle-preferences-window.c — see whittle-preferences-window.h. */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "backend/devices.h"
#include "hub/hub-token.h"
#include "whittle-application.h"
#include "whittle-preferences-window.h"

struct _WhittlePreferencesWindow {
  AdwPreferencesWindow parent_instance;

  GSettings *settings;
  GtkNativeDialog *chooser;
  gboolean syncing; /* set while widgets are updated from the settings */

  /* template children */
  GtkSwitch *auto_threads_switch;
  AdwActionRow *threads_row;
  GtkAdjustment *threads_adjustment;
  GtkAdjustment *context_adjustment;
  GtkListBox *folders_list;
  AdwComboRow *kv_row;
  AdwComboRow *gpu_row;
  AdwComboRow *offload_row;
  GtkStringList *gpu_list;
  AdwEntryRow *token_row;
  AdwActionRow *token_status_row;
  GtkWidget *remove_token_button;
  GCancellable *cancellable; /* token and device lookups in threads */
};

G_DEFINE_FINAL_TYPE(WhittlePreferencesWindow, whittle_preferences_window,
                    ADW_TYPE_PREFERENCES_WINDOW)

/* --- Threads: one key, 0 = automatic ------------------------------------- */

static void
sync_threads(WhittlePreferencesWindow *self)
{
  int threads = g_settings_get_int(self->settings, "threads");

  self->syncing = TRUE;
  gtk_switch_set_active(self->auto_threads_switch, threads == 0);
  gtk_widget_set_sensitive(GTK_WIDGET(self->threads_row), threads != 0);
  gtk_adjustment_set_value(self->threads_adjustment,
                           threads > 0 ? threads : (double)g_get_num_processors());
  self->syncing = FALSE;
}

static void
on_auto_threads_changed(WhittlePreferencesWindow *self)
{
  if (self->syncing)
    return;
  gboolean automatic = gtk_switch_get_active(self->auto_threads_switch);
  int threads = automatic ? 0 : (int)gtk_adjustment_get_value(self->threads_adjustment);
  g_settings_set_int(self->settings, "threads", threads);
}

static void
on_threads_value_changed(WhittlePreferencesWindow *self)
{
  if (self->syncing || gtk_switch_get_active(self->auto_threads_switch))
    return;
  g_settings_set_int(self->settings, "threads",
                     (int)gtk_adjustment_get_value(self->threads_adjustment));
}

/* --- Library folders ----------------------------------------------------- */

static void
remove_folder(WhittlePreferencesWindow *self, const char *path)
{
  g_auto(GStrv) folders = g_settings_get_strv(self->settings, "library-folders");
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new();

  for (guint i = 0; folders[i]; i++)
    if (g_strcmp0(folders[i], path) != 0)
      g_strv_builder_add(builder, folders[i]);
  g_auto(GStrv) kept = g_strv_builder_end(builder);
  g_settings_set_strv(self->settings, "library-folders", (const char *const *)kept);
}

static void
on_remove_folder_clicked(GtkButton *button, WhittlePreferencesWindow *self)
{
  remove_folder(self, g_object_get_data(G_OBJECT(button), "path"));
}

static void
sync_folders(WhittlePreferencesWindow *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->folders_list))))
    gtk_list_box_remove(self->folders_list, child);

  g_auto(GStrv) folders = g_settings_get_strv(self->settings, "library-folders");
  for (guint i = 0; folders[i]; i++) {
    g_autoptr(GFile) file = g_file_new_for_path(folders[i]);
    g_autofree char *name = g_file_get_basename(file);

    GtkWidget *row = adw_action_row_new();
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), name);
    adw_preferences_row_set_use_markup(ADW_PREFERENCES_ROW(row), FALSE);
    adw_action_row_set_subtitle(ADW_ACTION_ROW(row), folders[i]);
    adw_action_row_add_prefix(ADW_ACTION_ROW(row), gtk_image_new_from_icon_name("folder-symbolic"));

    GtkWidget *remove = gtk_button_new_from_icon_name("user-trash-symbolic");
    gtk_widget_set_valign(remove, GTK_ALIGN_CENTER);
    gtk_widget_add_css_class(remove, "flat");
    gtk_widget_set_tooltip_text(remove, _("Remove From the Library"));
    g_autofree char *label = g_strdup_printf(_("Remove %s from the Library"), name);
    gtk_accessible_update_property(GTK_ACCESSIBLE(remove), GTK_ACCESSIBLE_PROPERTY_LABEL, label,
                                   -1);
    g_object_set_data_full(G_OBJECT(remove), "path", g_strdup(folders[i]), g_free);
    g_signal_connect(remove, "clicked", G_CALLBACK(on_remove_folder_clicked), self);
    adw_action_row_add_suffix(ADW_ACTION_ROW(row), remove);

    gtk_list_box_append(self->folders_list, row);
  }

  if (folders[0] == NULL) {
    GtkWidget *row = adw_action_row_new();
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), _("No extra folders"));
    adw_action_row_set_subtitle(ADW_ACTION_ROW(row),
                                _("Add a folder that holds GGUF files to see them in the Library"));
    gtk_widget_add_css_class(row, "dim-label");
    gtk_list_box_append(self->folders_list, row);
  }
}

void
whittle_preferences_window_add_folder(WhittlePreferencesWindow *self, const char *path)
{
  g_return_if_fail(WHITTLE_IS_PREFERENCES_WINDOW(self));
  whittle_preferences_add_library_folder(self->settings, path);
}

void
whittle_preferences_add_library_folder(GSettings *settings, const char *path)
{
  g_return_if_fail(G_IS_SETTINGS(settings));
  g_return_if_fail(path != NULL);

  g_auto(GStrv) folders = g_settings_get_strv(settings, "library-folders");
  if (g_strv_contains((const char *const *)folders, path))
    return;

  g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
  g_strv_builder_addv(builder, (const char **)folders);
  g_strv_builder_add(builder, path);
  g_auto(GStrv) updated = g_strv_builder_end(builder);
  g_settings_set_strv(settings, "library-folders", (const char *const *)updated);
}

static void
on_chooser_response(GtkNativeDialog *dialog, int response, WhittlePreferencesWindow *self)
{
  if (response == GTK_RESPONSE_ACCEPT) {
    g_autoptr(GFile) folder = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
    g_autofree char *path = folder ? g_file_get_path(folder) : NULL;
    if (path)
      whittle_preferences_window_add_folder(self, path);
    else
      adw_preferences_window_add_toast(
          ADW_PREFERENCES_WINDOW(self),
          adw_toast_new(_("That folder is not on this computer. Choose a local folder.")));
  }
  g_clear_object(&self->chooser);
}

static void
on_add_folder_clicked(WhittlePreferencesWindow *self)
{
  if (self->chooser)
    return;
  GtkFileChooserNative *chooser =
      gtk_file_chooser_native_new(_("Add a Folder to the Library"), GTK_WINDOW(self),
                                  GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Add"), _("_Cancel"));
  self->chooser = GTK_NATIVE_DIALOG(chooser);
  gtk_native_dialog_set_modal(self->chooser, TRUE);
  g_signal_connect(chooser, "response", G_CALLBACK(on_chooser_response), self);
  gtk_native_dialog_show(self->chooser);
}

/* --- KV cache type --------------------------------------------------------- */

static const char *const kv_types[] = {"f16", "q8_0", "q4_0"};

static void
sync_kv(WhittlePreferencesWindow *self)
{
  g_autofree char *kv = g_settings_get_string(self->settings, "default-kv-type");
  self->syncing = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS(kv_types); i++)
    if (g_strcmp0(kv, kv_types[i]) == 0)
      adw_combo_row_set_selected(self->kv_row, i);
  self->syncing = FALSE;
}

static void
on_kv_selected(WhittlePreferencesWindow *self)
{
  guint i = adw_combo_row_get_selected(self->kv_row);
  if (!self->syncing && i < G_N_ELEMENTS(kv_types))
    g_settings_set_string(self->settings, "default-kv-type", kv_types[i]);
}

void
whittle_preferences_window_set_kv_type(WhittlePreferencesWindow *self, const char *kv_type)
{
  g_return_if_fail(WHITTLE_IS_PREFERENCES_WINDOW(self));
  for (guint i = 0; i < G_N_ELEMENTS(kv_types); i++)
    if (g_strcmp0(kv_type, kv_types[i]) == 0)
      adw_combo_row_set_selected(self->kv_row, i);
}

char *
whittle_preferences_window_get_kv_type(WhittlePreferencesWindow *self)
{
  g_return_val_if_fail(WHITTLE_IS_PREFERENCES_WINDOW(self), NULL);
  guint i = adw_combo_row_get_selected(self->kv_row);
  return g_strdup(i < G_N_ELEMENTS(kv_types) ? kv_types[i] : NULL);
}

/* --- GPU offload: "auto" / "off" ------------------------------------------- */

static const char *const offload_modes[] = {"auto", "off"};

static void
sync_offload(WhittlePreferencesWindow *self)
{
  g_autofree char *mode = g_settings_get_string(self->settings, "gpu-offload");
  self->syncing = TRUE;
  adw_combo_row_set_selected(self->offload_row, g_strcmp0(mode, "off") == 0 ? 1 : 0);
  self->syncing = FALSE;
}

static void
on_offload_selected(WhittlePreferencesWindow *self)
{
  guint i = adw_combo_row_get_selected(self->offload_row);
  if (!self->syncing && i < G_N_ELEMENTS(offload_modes))
    g_settings_set_string(self->settings, "gpu-offload", offload_modes[i]);
}

/* --- Preferred GPU: the devices are enumerated in a thread (driver start-up) ---- */

static void
devices_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  wh_device_list *list = wh_devices_enumerate();
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < list->n; i++)
    if (wh_device_is_gpu(&list->devices[i]))
      g_ptr_array_add(names, g_strdup(list->devices[i].name));
  wh_device_list_free(list);
  g_task_return_pointer(task, names, (GDestroyNotify)g_ptr_array_unref);
}

static void
on_gpu_selected(WhittlePreferencesWindow *self)
{
  guint i = adw_combo_row_get_selected(self->gpu_row);
  if (self->syncing || i == GTK_INVALID_LIST_POSITION)
    return;
  g_settings_set_string(self->settings, "preferred-gpu",
                        i == 0 ? "" : gtk_string_list_get_string(self->gpu_list, i));
}

static void
on_devices_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GPtrArray) names = g_task_propagate_pointer(G_TASK(result), NULL);
  if (names == NULL) /* cancelled: the window is gone */
    return;
  WhittlePreferencesWindow *self = user_data;
  g_autofree char *preferred = g_settings_get_string(self->settings, "preferred-gpu");
  self->syncing = TRUE;
  for (guint i = 0; i < names->len; i++) {
    gtk_string_list_append(self->gpu_list, names->pdata[i]);
    if (g_strcmp0(preferred, names->pdata[i]) == 0)
      adw_combo_row_set_selected(self->gpu_row, i + 1);
  }
  if (*preferred && adw_combo_row_get_selected(self->gpu_row) == 0) {
    /* The preferred card is not here now: keep the setting, show it. */
    gtk_string_list_append(self->gpu_list, preferred);
    adw_combo_row_set_selected(self->gpu_row, names->len + 1);
  }
  if (names->len == 0)
    adw_action_row_set_subtitle(ADW_ACTION_ROW(self->gpu_row),
                                _("No graphics card found: models run on the processor"));
  self->syncing = FALSE;
}

/* --- Hugging Face token: keyring access in threads ---------------------------- */

static const char *
endpoint(void)
{
  GApplication *app = g_application_get_default();
  wh_hub *hub =
      WHITTLE_IS_APPLICATION(app) ? whittle_application_get_hub(WHITTLE_APPLICATION(app)) : NULL;
  return hub ? wh_hub_get_endpoint(hub) : NULL;
}

static void
token_load_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  g_task_return_pointer(task, wh_hub_token_load(data, NULL, cancellable),
                        (GDestroyNotify)wh_hub_token_info_free);
}

static void
on_token_loaded(GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(wh_hub_token_info) info = g_task_propagate_pointer(G_TASK(result), NULL);
  if (info == NULL)
    return;
  WhittlePreferencesWindow *self = user_data;
  const char *text;
  switch (info->source) {
  case WH_HUB_TOKEN_FROM_KEYRING:
    text = _("Stored in your keyring");
    break;
  case WH_HUB_TOKEN_FROM_ENV:
    text = _("From the HF_TOKEN environment variable (cannot be removed here)");
    break;
  case WH_HUB_TOKEN_FROM_FILE:
    text = _("From the Hugging Face token file");
    break;
  case WH_HUB_TOKEN_FROM_NONE:
  default:
    text = _("None: only public models can be downloaded");
    break;
  }
  g_autofree char *subtitle =
      info->notice ? g_strdup_printf("%s. %s", text, info->notice) : g_strdup(text);
  adw_action_row_set_subtitle(self->token_status_row, subtitle);
  gtk_widget_set_sensitive(self->remove_token_button, info->source == WH_HUB_TOKEN_FROM_KEYRING ||
                                                          info->source == WH_HUB_TOKEN_FROM_FILE);
}

static void
load_token_status(WhittlePreferencesWindow *self)
{
  g_autoptr(GTask) task = g_task_new(NULL, self->cancellable, on_token_loaded, self);
  g_task_set_task_data(task, g_strdup(endpoint()), g_free);
  g_task_run_in_thread(task, token_load_thread);
}

typedef struct {
  char *endpoint;
  char *token; /* NULL: remove */
} TokenChange;

static void
token_change_free(TokenChange *c)
{
  g_free(c->endpoint);
  if (c->token)
    memset(c->token, 0, strlen(c->token)); /* do not leave copies around */
  g_free(c->token);
  g_free(c);
}

static void
token_change_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  TokenChange *c = data;
  GError *error = NULL;
  char *notice = NULL;
  gboolean ok = c->token
                    ? wh_hub_token_store(c->endpoint, NULL, c->token, TRUE, NULL, &notice,
                                         cancellable, &error)
                    : wh_hub_token_clear(c->endpoint, NULL, TRUE, &notice, cancellable, &error);
  if (!ok)
    g_task_return_error(task, error);
  else
    g_task_return_pointer(task, notice ? notice : g_strdup(""), g_free);
}

static void
on_token_changed(GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *notice = g_task_propagate_pointer(G_TASK(result), &error);
  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  WhittlePreferencesWindow *self = user_data;
  GApplication *app = g_application_get_default();
  if (WHITTLE_IS_APPLICATION(app))
    whittle_application_reload_token(WHITTLE_APPLICATION(app));
  const char *text = error ? error->message : (notice && *notice ? notice : _("Token saved"));
  adw_preferences_window_add_toast(ADW_PREFERENCES_WINDOW(self), adw_toast_new(text));
  load_token_status(self);
}

static void
change_token(WhittlePreferencesWindow *self, const char *token)
{
  TokenChange *c = g_new0(TokenChange, 1);
  c->endpoint = g_strdup(endpoint());
  c->token = g_strdup(token);
  g_autoptr(GTask) task = g_task_new(NULL, self->cancellable, on_token_changed, self);
  g_task_set_task_data(task, c, (GDestroyNotify)token_change_free);
  g_task_run_in_thread(task, token_change_thread);
}

static void
on_token_apply(WhittlePreferencesWindow *self)
{
  const char *token = gtk_editable_get_text(GTK_EDITABLE(self->token_row));
  g_autoptr(GError) error = NULL;
  if (!wh_hub_token_validate(token, &error)) {
    adw_preferences_window_add_toast(ADW_PREFERENCES_WINDOW(self), adw_toast_new(error->message));
    return;
  }
  change_token(self, token);
  gtk_editable_set_text(GTK_EDITABLE(self->token_row), "");
}

static void
on_remove_token_clicked(WhittlePreferencesWindow *self)
{
  change_token(self, NULL);
}

/* --- GObject ------------------------------------------------------------- */

static void
whittle_preferences_window_dispose(GObject *object)
{
  WhittlePreferencesWindow *self = WHITTLE_PREFERENCES_WINDOW(object);

  if (self->chooser) {
    g_signal_handlers_disconnect_by_data(self->chooser, self);
    gtk_native_dialog_destroy(self->chooser);
    g_clear_object(&self->chooser);
  }
  if (self->cancellable)
    g_cancellable_cancel(self->cancellable);
  g_clear_object(&self->cancellable);
  if (self->settings)
    g_signal_handlers_disconnect_by_data(self->settings, self);
  g_clear_object(&self->settings);
  gtk_widget_dispose_template(GTK_WIDGET(self), WHITTLE_TYPE_PREFERENCES_WINDOW);
  G_OBJECT_CLASS(whittle_preferences_window_parent_class)->dispose(object);
}

static void
whittle_preferences_window_class_init(WhittlePreferencesWindowClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  G_OBJECT_CLASS(klass)->dispose = whittle_preferences_window_dispose;

  gtk_widget_class_set_template_from_resource(
      widget_class, "/io/github/whittle/Whittle/whittle-preferences-window.ui");
  gtk_widget_class_bind_template_child(widget_class, WhittlePreferencesWindow, auto_threads_switch);
  gtk_widget_class_bind_template_child(widget_class, WhittlePreferencesWindow, threads_row);
  gtk_widget_class_bind_template_child(widget_class, WhittlePreferencesWindow, threads_adjustment);
  gtk_widget_class_bind_template_child(widget_class, WhittlePreferencesWindow, context_adjustment);
  gtk_widget_class_bind_template_child(widget_class, WhittlePreferencesWindow, folders_list);
  gtk_widget_class_bind_template_child(widget_class, WhittlePreferencesWindow, kv_row);
  gtk_widget_class_bind_template_child(widget_class, WhittlePreferencesWindow, gpu_row);
  gtk_widget_class_bind_template_child(widget_class, WhittlePreferencesWindow, gpu_list);
  gtk_widget_class_bind_template_child(widget_class, WhittlePreferencesWindow, offload_row);
  gtk_widget_class_bind_template_child(widget_class, WhittlePreferencesWindow, token_row);
  gtk_widget_class_bind_template_child(widget_class, WhittlePreferencesWindow, token_status_row);
  gtk_widget_class_bind_template_child(widget_class, WhittlePreferencesWindow, remove_token_button);
  gtk_widget_class_bind_template_callback(widget_class, on_add_folder_clicked);
  gtk_widget_class_bind_template_callback(widget_class, on_token_apply);
  gtk_widget_class_bind_template_callback(widget_class, on_remove_token_clicked);
}

static void
whittle_preferences_window_init(WhittlePreferencesWindow *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
}

WhittlePreferencesWindow *
whittle_preferences_window_new(GSettings *settings)
{
  g_return_val_if_fail(G_IS_SETTINGS(settings), NULL);

  WhittlePreferencesWindow *self = g_object_new(WHITTLE_TYPE_PREFERENCES_WINDOW, NULL);
  self->settings = g_object_ref(settings);

  sync_threads(self);
  sync_folders(self);
  g_signal_connect_swapped(settings, "changed::threads", G_CALLBACK(sync_threads), self);
  g_signal_connect_swapped(settings, "changed::library-folders", G_CALLBACK(sync_folders), self);
  g_signal_connect_swapped(self->auto_threads_switch, "notify::active",
                           G_CALLBACK(on_auto_threads_changed), self);
  g_signal_connect_swapped(self->threads_adjustment, "value-changed",
                           G_CALLBACK(on_threads_value_changed), self);
  g_settings_bind(settings, "default-context-length", self->context_adjustment, "value",
                  G_SETTINGS_BIND_DEFAULT);

  sync_kv(self);
  g_signal_connect_swapped(settings, "changed::default-kv-type", G_CALLBACK(sync_kv), self);
  g_signal_connect_swapped(self->kv_row, "notify::selected", G_CALLBACK(on_kv_selected), self);
  g_signal_connect_swapped(self->gpu_row, "notify::selected", G_CALLBACK(on_gpu_selected), self);
  sync_offload(self);
  g_signal_connect_swapped(settings, "changed::gpu-offload", G_CALLBACK(sync_offload), self);
  g_signal_connect_swapped(self->offload_row, "notify::selected", G_CALLBACK(on_offload_selected),
                           self);

  self->cancellable = g_cancellable_new();
  g_autoptr(GTask) devices = g_task_new(NULL, self->cancellable, on_devices_done, self);
  g_task_run_in_thread(devices, devices_thread);
  load_token_status(self);
  return self;
}
