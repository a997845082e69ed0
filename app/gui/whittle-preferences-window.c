/* whittle-preferences-window.c — see whittle-preferences-window.h. */
#include "config.h"

#include <glib/gi18n.h>

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
  g_return_if_fail(path != NULL);

  g_auto(GStrv) folders = g_settings_get_strv(self->settings, "library-folders");
  if (g_strv_contains((const char *const *)folders, path))
    return;

  g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
  g_strv_builder_addv(builder, (const char **)folders);
  g_strv_builder_add(builder, path);
  g_auto(GStrv) updated = g_strv_builder_end(builder);
  g_settings_set_strv(self->settings, "library-folders", (const char *const *)updated);
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
  gtk_widget_class_bind_template_callback(widget_class, on_add_folder_clicked);
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
  return self;
}
