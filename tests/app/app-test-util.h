/* app-test-util.h — what every GUI test needs: an app + window in a temporary home, main-loop
 * waiting, and screenshots that are checked not to be blank.
 *
 * The app tests run under xvfb-run with the memory settings backend (tests/app/meson.build).
 * Screenshots go to $WHITTLE_SCREENSHOT_DIR (tests/app/screenshot.sh copies them into
 * data/screenshots/).
 */
#pragma once

#include <adwaita.h>

#include "session/session.h"
#include "whittle-application.h"
#include "whittle-chat-page.h"
#include "whittle-library-page.h"
#include "whittle-window.h"

G_BEGIN_DECLS

typedef gboolean (*WhAppCondition)(gpointer data);

/* TRUE when a display is there and GTK initialised (call after g_test_init). */
gboolean wh_app_test_init_display(void);

/* Points HOME, XDG_DATA_HOME, XDG_CACHE_HOME, HF_HOME, OLLAMA_MODELS into @tmp_dir (created
 * by the caller) and turns off the keyring and any HF token, so the app reads and writes
 * nothing else. */
void wh_app_test_isolate(const char *tmp_dir);

/* Creates, registers and activates a WhittleApplication and returns its window, mapped and
 * sized @width x @height. The app is returned in *@app (a reference the caller drops). */
WhittleWindow *wh_app_test_start(WhittleApplication **app, int width, int height);

/* Iterates the default main context until @cond is TRUE or @seconds passed. */
gboolean wh_app_test_wait(WhAppCondition cond, gpointer data, double seconds);
/* Iterates the default main context for @seconds. */
void wh_app_test_settle(double seconds);
/* The longest single main-loop iteration seen while waiting, in microseconds. */
gint64 wh_app_test_longest_iteration(void);

/* Renders @widget to $WHITTLE_SCREENSHOT_DIR/@name.png and asserts it is not blank. */
void wh_app_test_screenshot(GtkWidget *widget, const char *name);

/* The first descendant of @root (depth first) for which @match is TRUE, or NULL. */
GtkWidget *wh_app_test_find(GtkWidget *root, gboolean (*match)(GtkWidget *w, gconstpointer d),
                            gconstpointer data);
/* Matchers: by GType (pass GSIZE_TO_POINTER(type)); a GtkButton with this label. */
gboolean wh_app_test_is_type(GtkWidget *w, gconstpointer type);
gboolean wh_app_test_is_button_labelled(GtkWidget *w, gconstpointer label);

/* A mapped toplevel window of @type (a dialog, say), or NULL. */
GtkWindow *wh_app_test_find_toplevel(GType type);
/* A WhAppCondition for waiting on a toplevel: @data is a WhAppFindWindow whose @found is set to
 * wh_app_test_find_toplevel(@type). */
typedef struct {
  GType type;
  GtkWindow *found;
} WhAppFindWindow;
gboolean wh_app_test_toplevel_shown(gpointer data);

/* WhAppConditions on a WhittleLibraryPage: not scanning. */
gboolean wh_app_test_library_idle(gpointer page);
/* The index of the library entry whose first file ends with @filename, or -1. */
int wh_app_test_library_find(WhittleLibraryPage *page, const char *filename);

/* Asserts that every button, switch, scale, entry and combo row below @root has an
 * accessible name (a label, a tooltip, a GtkAccessible label or a row title). Returns the
 * number of widgets checked. */
guint wh_app_test_check_accessible_names(GtkWidget *root);

/* What `@cli run -m @model --temp 0 -n @n_predict` prints for the prompt a fresh session on
 * @model renders for the @n messages @msgs (the chat's own rendering), without run's final
 * newline. Asserts that everything works. Newly allocated. For comparing the Chat page's
 * greedy replies with the command line. */
char *wh_app_test_cli_greedy_reply(const char *cli, const char *model, const wh_chat_message *msgs,
                                   gsize n, int n_predict);
/* Conditions for wh_app_test_wait() on a WhittleChatPage: a model is loaded and none is loading;
 * no reply is being generated. */
gboolean wh_app_test_chat_loaded(gpointer page);
gboolean wh_app_test_chat_idle(gpointer page);
/* The same with the GPU layers and device @session (the Chat page's) was loaded with:
 * `run --temp 0 --ngl N --device D`, so a reply on a GPU is compared on the same backend. */
char *wh_app_test_cli_greedy_reply_like(const char *cli, const char *model, wh_session *session,
                                        const wh_chat_message *msgs, gsize n, int n_predict);
/* The same with run's sampling options @args (NULL-terminated, e.g. "--temp", "0.9", ...)
 * instead of --temp 0. */
char *wh_app_test_cli_reply(const char *cli, const char *model, const wh_chat_message *msgs,
                            gsize n, int n_predict, const char *const *args);

G_END_DECLS
