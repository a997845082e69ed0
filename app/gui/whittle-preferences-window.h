/* whittle-preferences-window.h — the Preferences window.
 *
 * Design note
 * -----------
 * Edits the app's GSettings directly (no Apply button): threads (0 = one
 * per core, "threads" key), default context length ("default-context-
 * length"), and the extra library folders ("library-folders", a list of
 * absolute paths; added with a folder chooser, removed per row), the KV
 * cache type of new conversations ("default-kv-type": f16, q8_0, q4_0) and
 * the preferred GPU ("preferred-gpu", "" = automatic; the list comes from
 * engine/backend/devices.h, enumerated in a thread) and the Chat page's GPU
 * offload ("gpu-offload": auto = as many layers as the planner fits, off).
 * Hugging Face token: a masked AdwPasswordEntryRow; Apply stores it in the
 * keyring (hub-token.h; the token file when no Secret Service runs), "Remove
 * Token" clears it; a row says where the token in use comes from. Keyring
 * calls run in threads; the app's hub is told to reload the token after.
 * Owns: a reference to the settings, the open folder chooser, if any, and a
 * GCancellable for its threads (cancelled when the window goes).
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
/* The same on @settings, for the Library page's "Add Folder…". */
void whittle_preferences_add_library_folder(GSettings *settings, const char *path);

/* The KV cache type shown ("f16", "q8_0", "q4_0"); setting it updates the settings. */
void whittle_preferences_window_set_kv_type(WhittlePreferencesWindow *self, const char *kv_type);
char *whittle_preferences_window_get_kv_type(WhittlePreferencesWindow *self);

G_END_DECLS
