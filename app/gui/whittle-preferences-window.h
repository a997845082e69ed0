/* whittle-preferences-window.h — the Preferences window.
 *
 * Design note
 * -----------
 * Edits the app's GSettings directly (no Apply button): threads (0 = one
 * per core, "threads" key), default context length ("default-context-
 * length"), and the extra library folders ("library-folders", a list of
 * absolute paths; added with a folder chooser, removed per row).
 * Owns: a reference to the settings and the open folder chooser, if any.
 */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define WHITTLE_TYPE_PREFERENCES_WINDOW (whittle_preferences_window_get_type())
G_DECLARE_FINAL_TYPE(WhittlePreferencesWindow, whittle_preferences_window, WHITTLE,
                     PREFERENCES_WINDOW, AdwPreferencesWindow)

WhittlePreferencesWindow *whittle_preferences_window_new(GSettings *settings);

/* Adds @path to the library folders (no-op when already there). */
void whittle_preferences_window_add_folder(WhittlePreferencesWindow *self, const char *path);

G_END_DECLS
