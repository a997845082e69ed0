/* test-window.c — the Whittle window, driven in-process under a real display.
 *
 * Opens the application's window (schema from the build dir, in-memory
 * settings), switches to every page through win.show-page, renders each to
 * a PNG and checks it is not blank, opens and closes Preferences, About and
 * the shortcuts window, runs real jobs on the engine's job queue through the
 * app.test-job hook and reads the rows of the jobs popover, checks the
 * accessible labels of icon-only buttons, and that the window size is saved.
 *
 * Runs with G_DEBUG=fatal-criticals (set by meson): any GTK critical fails.
 * Without a display every test is skipped.
 */
#include "config.h"

#include <adwaita.h>
#include <string.h>

#include "whittle-application.h"
#include "whittle-browse-page.h"
#include "whittle-chat-page.h"
#include "whittle-job-row.h"
#include "whittle-jobs-button.h"
#include "whittle-library-page.h"
#include "whittle-planner-page.h"
#include "whittle-preferences-window.h"
#include "whittle-quantize-page.h"
#include "whittle-window.h"
#include "app-test-util.h"
#include "wh-test-util.h"

static WhittleApplication *app;
static WhittleWindow *window;
static char *screenshot_dir;

typedef gboolean (*Condition)(gpointer data);

/* Iterates the main loop until @cond holds or @seconds pass. */
static gboolean
wait_until(Condition cond, gpointer data, double seconds)
{
  gint64 end = g_get_monotonic_time() + (gint64)(seconds * G_USEC_PER_SEC);
  while (!cond(data)) {
    if (g_get_monotonic_time() > end)
      return FALSE;
    if (!g_main_context_iteration(NULL, FALSE))
      g_usleep(2000);
  }
  return TRUE;
}

/* Lets GTK lay out and paint for a while. */
static void
settle(double seconds)
{
  gint64 end = g_get_monotonic_time() + (gint64)(seconds * G_USEC_PER_SEC);
  while (g_get_monotonic_time() < end)
    if (!g_main_context_iteration(NULL, FALSE))
      g_usleep(2000);
}

/* Mapped and laid out. */
static gboolean
widget_is_mapped(gpointer data)
{
  return gtk_widget_get_mapped(GTK_WIDGET(data)) && gtk_widget_get_width(GTK_WIDGET(data)) > 0;
}

/* --- Screenshots ---------------------------------------------------------- */

typedef struct {
  double variance; /* of the luminance, 0..255² */
  guint distinct;  /* distinct colours among a sample, capped */
  guint32 checksum;
} ImageStats;

/* Renders @widget to @name.png in the screenshot dir and returns
 * statistics about its pixels. A toplevel renders with its own frame; any
 * other widget over an opaque @background (may be NULL for toplevels). */
static ImageStats
render_png_over(GtkWidget *widget, const GdkRGBA *background, const char *name)
{
  ImageStats stats = {0};
  int width = gtk_widget_get_width(widget);
  int height = gtk_widget_get_height(widget);
  g_assert_cmpint(width, >, 0);
  g_assert_cmpint(height, >, 0);

  /* The paintable shows what the widget drew last: attach it, then let
   * GTK draw a fresh frame. */
  g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new(widget);
  gtk_widget_queue_draw(widget);
  settle(0.15);
  GtkSnapshot *snapshot = gtk_snapshot_new();
  if (background)
    gtk_snapshot_append_color(snapshot, background, &GRAPHENE_RECT_INIT(0, 0, width, height));
  gdk_paintable_snapshot(paintable, snapshot, width, height);
  g_autoptr(GskRenderNode) node = gtk_snapshot_free_to_node(snapshot);
  g_assert_nonnull(node);

  GskRenderer *renderer = gtk_native_get_renderer(gtk_widget_get_native(widget));
  g_assert_nonnull(renderer);
  graphene_rect_t bounds = GRAPHENE_RECT_INIT(0, 0, width, height);
  g_autoptr(GdkTexture) texture = gsk_renderer_render_texture(renderer, node, &bounds);
  g_assert_nonnull(texture);

  g_autofree char *file = g_strdup_printf("%s.png", name);
  g_autofree char *path = g_build_filename(screenshot_dir, file, NULL);
  g_assert_true(gdk_texture_save_to_png(texture, path));
  g_test_message("screenshot: %s (%d×%d)", path, width, height);

  int tw = gdk_texture_get_width(texture), th = gdk_texture_get_height(texture);
  gsize stride = (gsize)tw * 4;
  g_autofree guchar *pixels = g_malloc(stride * th);
  gdk_texture_download(texture, pixels, stride);

  /* Luminance mean and variance over every pixel (premultiplied BGRA on a
   * little-endian machine; the channel order does not matter much here). */
  double sum = 0, sum2 = 0;
  g_autoptr(GHashTable) colours = g_hash_table_new(g_direct_hash, g_direct_equal);
  guint32 checksum = 2166136261u;
  for (int y = 0; y < th; y++) {
    const guchar *row = pixels + (gsize)y * stride;
    for (int x = 0; x < tw; x++) {
      const guchar *p = row + x * 4;
      double lum = 0.0722 * p[0] + 0.7152 * p[1] + 0.2126 * p[2];
      sum += lum;
      sum2 += lum * lum;
      guint32 rgba = (guint32)p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 | (guint32)p[3] << 24;
      checksum = (checksum ^ rgba) * 16777619u;
      if (g_hash_table_size(colours) < 4096)
        g_hash_table_add(colours, GUINT_TO_POINTER(rgba + 1));
    }
  }
  double n = (double)tw * th;
  stats.variance = sum2 / n - (sum / n) * (sum / n);
  stats.distinct = g_hash_table_size(colours);
  stats.checksum = checksum;
  g_test_message("%s: luminance variance %.1f, %u colours", name, stats.variance, stats.distinct);
  return stats;
}

static ImageStats
render_png(GtkWidget *widget, const char *name)
{
  return render_png_over(widget, NULL, name);
}

static void
assert_not_blank(ImageStats stats)
{
  /* A blank or single-colour surface has a variance near 0 and a handful of
   * colours; a page with an icon and text has hundreds. */
  g_assert_cmpfloat(stats.variance, >, 50.0);
  g_assert_cmpuint(stats.distinct, >, 32);
}

/* --- Pages ---------------------------------------------------------------- */

static const struct {
  const char *name;
  const char *accel;
  GType (*get_type)(void);
} pages[] = {
    {"browse", "<Control>1", whittle_browse_page_get_type},
    {"library", "<Control>2", whittle_library_page_get_type},
    {"quantize", "<Control>3", whittle_quantize_page_get_type},
    {"chat", "<Control>4", whittle_chat_page_get_type},
    {"planner", "<Control>5", whittle_planner_page_get_type},
};

static gboolean
stack_shows(gpointer name)
{
  AdwViewStack *stack = whittle_window_get_view_stack(window);
  return g_strcmp0(adw_view_stack_get_visible_child_name(stack), name) == 0;
}

static void
test_pages(void)
{
  AdwViewStack *stack = whittle_window_get_view_stack(window);
  guint32 checksums[G_N_ELEMENTS(pages)];

  /* The default size (GTK may take a few pixels off for the window frame). */
  int dw = 0, dh = 0;
  gtk_window_get_default_size(GTK_WINDOW(window), &dw, &dh);
  g_assert_cmpint(dw, ==, 1100);
  g_assert_cmpint(dh, ==, 720);
  g_assert_cmpint(gtk_widget_get_width(GTK_WIDGET(window)), >, 1000);
  g_assert_cmpint(gtk_widget_get_height(GTK_WIDGET(window)), >, 650);

  /* Go through them backwards, so the first switch is a real change. */
  for (int i = G_N_ELEMENTS(pages) - 1; i >= 0; i--) {
    g_action_group_activate_action(G_ACTION_GROUP(window), "show-page",
                                   g_variant_new_string(pages[i].name));
    g_assert_true(wait_until(stack_shows, (gpointer)pages[i].name, 15));

    GtkWidget *child = adw_view_stack_get_visible_child(stack);
    g_assert_true(G_TYPE_CHECK_INSTANCE_TYPE(child, pages[i].get_type()));
    g_assert_true(gtk_widget_get_mapped(child));

    /* The action's state follows the page. */
    g_autoptr(GVariant) state =
        g_action_group_get_action_state(G_ACTION_GROUP(window), "show-page");
    g_assert_cmpstr(g_variant_get_string(state, NULL), ==, pages[i].name);

    /* Ctrl+N is bound to it. */
    g_autofree char *detailed = g_strdup_printf("win.show-page::%s", pages[i].name);
    g_auto(GStrv) accels = gtk_application_get_accels_for_action(GTK_APPLICATION(app), detailed);
    g_assert_true(g_strv_contains((const char *const *)accels, pages[i].accel));

    settle(0.3);
    ImageStats stats = render_png(GTK_WIDGET(window), pages[i].name);
    assert_not_blank(stats);
    checksums[i] = stats.checksum;
  }
  for (guint i = 0; i < G_N_ELEMENTS(pages); i++)
    for (guint j = i + 1; j < G_N_ELEMENTS(pages); j++)
      g_assert_cmpuint(checksums[i], !=, checksums[j]);
}

/* --- Dialogs -------------------------------------------------------------- */

static gboolean
toplevel_gone(gpointer data)
{
  return !wh_app_test_toplevel_shown(data);
}

/* Activates @action on @group, waits for a mapped toplevel of @type, renders
 * it, runs @check on it, closes it and waits until it is gone. */
static void
open_and_close(GActionGroup *group, const char *action, GType type, const char *shot,
               void (*check)(GtkWindow *))
{
  WhAppFindWindow find = {type, NULL};
  g_action_group_activate_action(group, action, NULL);
  g_assert_true(wait_until(wh_app_test_toplevel_shown, &find, 15));
  g_assert_true(gtk_window_get_transient_for(find.found) == GTK_WINDOW(window));
  settle(0.3);
  assert_not_blank(render_png(GTK_WIDGET(find.found), shot));
  if (check)
    check(find.found);
  gtk_window_close(find.found);
  g_assert_true(wait_until(toplevel_gone, &find, 15));
}

typedef gboolean (*WidgetMatch)(GtkWidget *widget, gconstpointer data);

/* Depth-first search of @root's descendants for the first match. */
static GtkWidget *
find_widget(GtkWidget *root, WidgetMatch match, gconstpointer data)
{
  for (GtkWidget *c = gtk_widget_get_first_child(root); c; c = gtk_widget_get_next_sibling(c)) {
    if (match(c, data))
      return c;
    GtkWidget *found = find_widget(c, match, data);
    if (found)
      return found;
  }
  return NULL;
}

static gboolean
is_type(GtkWidget *widget, gconstpointer type)
{
  return G_TYPE_CHECK_INSTANCE_TYPE(widget, GPOINTER_TO_SIZE(type));
}

static gboolean
is_row_titled(GtkWidget *widget, gconstpointer title)
{
  return ADW_IS_ACTION_ROW(widget) &&
         g_strcmp0(adw_preferences_row_get_title(ADW_PREFERENCES_ROW(widget)), title) == 0;
}

static gboolean
is_threads_spin(GtkWidget *widget, gconstpointer data)
{
  return GTK_IS_SPIN_BUTTON(widget) &&
         gtk_adjustment_get_upper(gtk_spin_button_get_adjustment(GTK_SPIN_BUTTON(widget))) == 1024;
}

static void
check_preferences(GtkWindow *w)
{
  GSettings *settings = whittle_application_get_settings(app);
  WhittlePreferencesWindow *prefs = WHITTLE_PREFERENCES_WINDOW(w);
  g_autofree char *folder = g_build_filename(g_get_tmp_dir(), "whittle-test-models", NULL);

  /* Threads: the switch is "automatic" (0); turning it off stores the
   * spin button's number, and changing the number stores it. */
  GtkSwitch *automatic =
      GTK_SWITCH(find_widget(GTK_WIDGET(w), is_type, GSIZE_TO_POINTER(GTK_TYPE_SWITCH)));
  GtkSpinButton *threads = GTK_SPIN_BUTTON(find_widget(GTK_WIDGET(w), is_threads_spin, NULL));
  g_assert_nonnull(automatic);
  g_assert_nonnull(threads);
  g_assert_cmpint(g_settings_get_int(settings, "threads"), ==, 0);
  g_assert_true(gtk_switch_get_active(automatic));
  gtk_switch_set_active(automatic, FALSE);
  g_assert_cmpint(g_settings_get_int(settings, "threads"), ==,
                  gtk_spin_button_get_value_as_int(threads));
  gtk_spin_button_set_value(threads, 3);
  g_assert_cmpint(g_settings_get_int(settings, "threads"), ==, 3);
  g_settings_set_int(settings, "threads", 0); /* and back from the settings side */
  g_assert_true(gtk_switch_get_active(automatic));
  /* While automatic, the greyed-out number shows what automatic means. */
  g_assert_cmpint(gtk_spin_button_get_value_as_int(threads), ==, (int)g_get_num_processors());
  g_assert_false(gtk_widget_is_sensitive(GTK_WIDGET(threads)));

  /* Library folders: added once, shown as a row, removed by its button. */
  g_settings_reset(settings, "library-folders");
  g_assert_nonnull(find_widget(GTK_WIDGET(w), is_row_titled, "No extra folders"));
  whittle_preferences_window_add_folder(prefs, folder);
  whittle_preferences_window_add_folder(prefs, folder); /* no duplicates */
  g_auto(GStrv) folders = g_settings_get_strv(settings, "library-folders");
  g_assert_cmpuint(g_strv_length(folders), ==, 1);
  g_assert_cmpstr(folders[0], ==, folder);
  settle(0.1);
  GtkWidget *row = find_widget(GTK_WIDGET(w), is_row_titled, "whittle-test-models");
  g_assert_nonnull(row);
  g_assert_null(find_widget(GTK_WIDGET(w), is_row_titled, "No extra folders"));
  GtkWidget *remove = find_widget(row, is_type, GSIZE_TO_POINTER(GTK_TYPE_BUTTON));
  g_assert_nonnull(remove);
  g_signal_emit_by_name(remove, "clicked");
  g_auto(GStrv) after = g_settings_get_strv(settings, "library-folders");
  g_assert_cmpuint(g_strv_length(after), ==, 0);
  g_assert_nonnull(find_widget(GTK_WIDGET(w), is_row_titled, "No extra folders"));
}

static void
check_about(GtkWindow *w)
{
  g_autofree char *name = NULL, *version = NULL;
  g_object_get(w, "application-name", &name, "version", &version, NULL);
  g_assert_cmpstr(name, ==, "Whittle");
  g_assert_cmpstr(version, ==, PACKAGE_VERSION);
}

static void
test_dialogs(void)
{
  open_and_close(G_ACTION_GROUP(app), "preferences", WHITTLE_TYPE_PREFERENCES_WINDOW, "preferences",
                 check_preferences);
  open_and_close(G_ACTION_GROUP(app), "about", ADW_TYPE_ABOUT_WINDOW, "about", check_about);
  open_and_close(G_ACTION_GROUP(window), "show-help-overlay", GTK_TYPE_SHORTCUTS_WINDOW,
                 "shortcuts", NULL);

  g_auto(GStrv) prefs =
      gtk_application_get_accels_for_action(GTK_APPLICATION(app), "app.preferences");
  g_assert_true(g_strv_contains((const char *const *)prefs, "<Control>comma"));
  g_auto(GStrv) quit = gtk_application_get_accels_for_action(GTK_APPLICATION(app), "app.quit");
  g_assert_true(g_strv_contains((const char *const *)quit, "<Control>q"));
}

/* --- Jobs ----------------------------------------------------------------- */

static WhittleJobRow *
find_row(const char *title)
{
  GtkListBox *list = whittle_jobs_button_get_list_box(whittle_window_get_jobs_button(window));
  for (int i = 0;; i++) {
    GtkListBoxRow *row = gtk_list_box_get_row_at_index(list, i);
    if (row == NULL)
      return NULL;
    WhittleJobItem *item = whittle_job_row_get_item(WHITTLE_JOB_ROW(row));
    if (g_strcmp0(whittle_job_item_get_title(item), title) == 0)
      return WHITTLE_JOB_ROW(row);
  }
}

static guint
n_rows(void)
{
  GtkListBox *list = whittle_jobs_button_get_list_box(whittle_window_get_jobs_button(window));
  guint n = 0;
  while (gtk_list_box_get_row_at_index(list, n))
    n++;
  return n;
}

typedef struct {
  const char *title;
  gboolean saw_progress; /* a row mid-way: 0 < fraction < 1 with a rate text */
  guint max_active;
} Watch;

static gboolean
row_finished(gpointer data)
{
  Watch *watch = data;
  WhittleJobsButton *button = whittle_window_get_jobs_button(window);
  watch->max_active = MAX(watch->max_active, whittle_jobs_button_get_n_active(button));

  WhittleJobRow *row = find_row(watch->title);
  if (row == NULL)
    return FALSE;
  double f = whittle_job_row_get_fraction(row);
  const char *text = whittle_job_row_get_progress_text(row);
  if (g_getenv("WHITTLE_TEST_VERBOSE"))
    g_printerr("%s: %.3f %s [%d]\n", watch->title, f, text,
               whittle_job_item_get_state(whittle_job_row_get_item(row)));
  if (f > 0.0 && f < 1.0 && strstr(text, " of ") && whittle_job_row_get_can_cancel(row))
    watch->saw_progress = TRUE;
  return whittle_job_item_get_finished(whittle_job_row_get_item(row));
}

/* TRUE once the watched row was seen mid-way, or it finished. */
static gboolean
row_in_progress(gpointer data)
{
  Watch *watch = data;
  return row_finished(watch) || watch->saw_progress;
}

static gboolean
popover_visible(gpointer data)
{
  return gtk_widget_get_visible(GTK_WIDGET(data)) && gtk_widget_get_mapped(GTK_WIDGET(data));
}

static GtkButton *
find_button_in(GtkWidget *widget)
{
  for (GtkWidget *c = gtk_widget_get_first_child(widget); c; c = gtk_widget_get_next_sibling(c)) {
    if (GTK_IS_BUTTON(c) && gtk_widget_get_visible(c))
      return GTK_BUTTON(c);
    GtkButton *b = find_button_in(c);
    if (b)
      return b;
  }
  return NULL;
}

static gboolean
queue_idle(gpointer data)
{
  return whittle_application_get_n_active(app) == 0;
}

static void
test_jobs(void)
{
  WhittleJobsButton *button = whittle_window_get_jobs_button(window);
  GtkMenuButton *menu_button = whittle_jobs_button_get_menu_button(button);
  GtkPopover *popover = gtk_menu_button_get_popover(menu_button);

  g_assert_cmpuint(n_rows(), ==, 0);
  g_assert_cmpuint(whittle_jobs_button_get_n_active(button), ==, 0);
  g_assert_false(g_action_group_get_action_enabled(G_ACTION_GROUP(app), "clear-jobs"));
  g_autofree char *toast_before = g_strdup(whittle_window_get_last_toast_title(window));

  /* Under a loaded Xvfb the first popup request can be lost (the dialogs of the previous
   * test are still going away): ask again, as a person would click again. */
  gboolean shown = FALSE;
  for (int attempt = 0; attempt < 3 && !shown; attempt++) {
    gtk_menu_button_popup(menu_button);
    shown = wait_until(popover_visible, popover, 5);
  }
  g_assert_true(shown);

  /* A job that succeeds and one that fails half-way, side by side. */
  g_assert_true(g_action_group_has_action(G_ACTION_GROUP(app), "test-job"));
  g_action_group_activate_action(G_ACTION_GROUP(app), "test-job", g_variant_new_boolean(FALSE));
  g_action_group_activate_action(G_ACTION_GROUP(app), "test-job", g_variant_new_boolean(TRUE));

  Watch ok = {"Test download", FALSE, 0};
  Watch bad = {"Test download that fails", FALSE, 0};
  g_assert_true(wait_until(row_finished, &ok, 20));
  g_assert_true(wait_until(row_finished, &bad, 20));
  g_assert_true(ok.saw_progress);
  g_assert_cmpuint(ok.max_active, >=, 1);
  g_assert_cmpuint(n_rows(), ==, 2);
  g_assert_true(g_action_group_get_action_enabled(G_ACTION_GROUP(app), "clear-jobs"));

  WhittleJobRow *ok_row = find_row("Test download");
  g_assert_cmpint(whittle_job_item_get_state(whittle_job_row_get_item(ok_row)), ==,
                  WH_JOB_SUCCEEDED);
  g_assert_cmpfloat(whittle_job_row_get_fraction(ok_row), ==, 1.0);
  g_assert_true(g_str_has_prefix(whittle_job_row_get_progress_text(ok_row), "Finished"));
  g_assert_null(whittle_job_row_get_error_text(ok_row));
  g_assert_false(whittle_job_row_get_can_cancel(ok_row));

  WhittleJobRow *bad_row = find_row("Test download that fails");
  g_assert_cmpint(whittle_job_item_get_state(whittle_job_row_get_item(bad_row)), ==, WH_JOB_FAILED);
  g_assert_nonnull(whittle_job_row_get_error_text(bad_row));
  g_assert_nonnull(strstr(whittle_job_row_get_error_text(bad_row), "failed on purpose"));
  g_assert_cmpstr(whittle_job_row_get_progress_text(bad_row), ==, "Failed");
  g_assert_false(whittle_job_row_get_can_cancel(bad_row));

  g_assert_true(wait_until(queue_idle, NULL, 15));
  g_assert_cmpuint(whittle_jobs_button_get_n_active(button), ==, 0);
  /* The open popover shows how they ended: no toast on top of it. */
  g_assert_cmpstr(whittle_window_get_last_toast_title(window), ==, toast_before);

  /* A third one, cancelled from its row's Cancel button. */
  wh_job *job = whittle_application_submit_test_job(app, FALSE, 250);
  WhittleJobRow *row = NULL;
  gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
  while (g_get_monotonic_time() < end) {
    g_main_context_iteration(NULL, FALSE);
    GtkListBox *list = whittle_jobs_button_get_list_box(button);
    GtkListBoxRow *first = gtk_list_box_get_row_at_index(list, 0); /* newest first */
    if (first &&
        whittle_job_item_get_job(whittle_job_row_get_item(WHITTLE_JOB_ROW(first))) == job &&
        whittle_job_row_get_can_cancel(WHITTLE_JOB_ROW(first))) {
      row = WHITTLE_JOB_ROW(first);
      break;
    }
  }
  g_assert_nonnull(row);
  g_assert_cmpuint(whittle_jobs_button_get_n_active(button), ==, 1);
  if (g_getenv("WHITTLE_TEST_VERBOSE"))
    g_printerr("popover visible %d mapped %d\n", gtk_widget_get_visible(GTK_WIDGET(popover)),
               gtk_widget_get_mapped(GTK_WIDGET(popover)));
  g_assert_true(popover_visible(popover));
  settle(0.2);
  assert_not_blank(render_png(GTK_WIDGET(popover), "jobs"));

  GtkButton *cancel = find_button_in(GTK_WIDGET(row));
  g_assert_nonnull(cancel);
  g_signal_emit_by_name(cancel, "clicked");
  g_assert_cmpint(wh_job_wait(job), ==, WH_JOB_CANCELLED);
  g_assert_true(wait_until(queue_idle, NULL, 15));
  settle(0.1);
  g_assert_cmpstr(whittle_job_row_get_progress_text(row), ==, "Cancelled");
  g_assert_false(whittle_job_row_get_can_cancel(row));
  g_assert_null(whittle_job_row_get_error_text(row));
  wh_job_unref(job);

  /* Clear Finished empties the list. */
  g_action_group_activate_action(G_ACTION_GROUP(app), "clear-jobs", NULL);
  settle(0.05);
  g_assert_cmpuint(n_rows(), ==, 0);
  g_assert_false(g_action_group_get_action_enabled(G_ACTION_GROUP(app), "clear-jobs"));

  gtk_popover_popdown(popover);
  settle(0.1);

  /* With the popover closed, a job's end comes as a toast (the failing one with Details). */
  g_assert_false(gtk_widget_get_visible(GTK_WIDGET(popover)));
  wh_job *quiet = whittle_application_submit_test_job(app, TRUE, 5);
  g_assert_cmpint(wh_job_wait(quiet), ==, WH_JOB_FAILED);
  wh_job_unref(quiet);
  g_assert_true(wait_until(queue_idle, NULL, 15));
  settle(0.1);
  const char *toast = whittle_window_get_last_toast_title(window);
  g_assert_nonnull(toast);
  g_assert_true(g_str_has_prefix(toast, "Failed: Test download"));
  g_action_group_activate_action(G_ACTION_GROUP(app), "clear-jobs", NULL);
  settle(0.05);
}

/* --- Accessibility -------------------------------------------------------- */

/* An icon-only button: a GtkButton without a text label whose content is an
 * image, or a GtkMenuButton without a label. */
static gboolean
is_icon_only(GtkWidget *w)
{
  if (GTK_IS_MENU_BUTTON(w))
    return gtk_menu_button_get_label(GTK_MENU_BUTTON(w)) == NULL;
  if (GTK_IS_BUTTON(w)) {
    if (gtk_button_get_label(GTK_BUTTON(w)) != NULL && !gtk_button_get_icon_name(GTK_BUTTON(w)))
      return FALSE;
    GtkWidget *child = gtk_button_get_child(GTK_BUTTON(w));
    return gtk_button_get_icon_name(GTK_BUTTON(w)) != NULL || GTK_IS_IMAGE(child);
  }
  return FALSE;
}

static void
check_icon_buttons(GtkWidget *widget, guint *n_checked)
{
  for (GtkWidget *c = gtk_widget_get_first_child(widget); c; c = gtk_widget_get_next_sibling(c)) {
    /* The inner toggle of a GtkMenuButton is covered by the menu button. */
    if (GTK_IS_MENU_BUTTON(widget))
      continue;
    /* libadwaita 1.2's toast close button has neither label nor tooltip:
     * not ours to fix; our toasts carry their text in the title. */
    if (g_strcmp0(G_OBJECT_TYPE_NAME(widget), "AdwToastWidget") == 0)
      continue;
    if (gtk_widget_get_visible(c) && is_icon_only(c)) {
      const char *type = G_OBJECT_TYPE_NAME(c);
      g_test_message("icon-only %s in %s: tooltip “%s”", type,
                     G_OBJECT_TYPE_NAME(gtk_widget_get_parent(c)),
                     gtk_widget_get_tooltip_text(c) ? gtk_widget_get_tooltip_text(c) : "");
      g_assert_true(
          gtk_test_accessible_has_property(GTK_ACCESSIBLE(c), GTK_ACCESSIBLE_PROPERTY_LABEL));
      /* GTK's own window buttons carry a label but no tooltip. */
      if (!gtk_widget_get_ancestor(c, GTK_TYPE_WINDOW_CONTROLS))
        g_assert_nonnull(gtk_widget_get_tooltip_text(c));
      (*n_checked)++;
    }
    check_icon_buttons(c, n_checked);
  }
}

static void
test_accessibility(void)
{
  guint n = 0;
  check_icon_buttons(GTK_WIDGET(window), &n);

  /* The jobs list with one row, Cancel showing. */
  WhittleJobsButton *button = whittle_window_get_jobs_button(window);
  GtkPopover *popover = gtk_menu_button_get_popover(whittle_jobs_button_get_menu_button(button));
  wh_job *job = whittle_application_submit_test_job(app, FALSE, 250);
  Watch watch = {"Test download", FALSE, 0};
  g_assert_true(wait_until(row_in_progress, &watch, 10));
  g_assert_true(watch.saw_progress); /* so the Cancel button shows */
  guint before = n;
  check_icon_buttons(GTK_WIDGET(popover), &n);
  g_assert_cmpuint(n, ==, before + 1);
  wh_job_cancel(job);
  g_assert_true(wait_until(queue_idle, NULL, 10));
  wh_job_unref(job);
  g_action_group_activate_action(G_ACTION_GROUP(app), "clear-jobs", NULL);

  /* At least the main menu button and the jobs button. */
  g_assert_cmpuint(n, >=, 2);
  gtk_test_accessible_assert_property(GTK_ACCESSIBLE(whittle_jobs_button_get_menu_button(button)),
                                      GTK_ACCESSIBLE_PROPERTY_LABEL, "Jobs");
}

/* --- Narrow window -------------------------------------------------------- */

static gboolean
switcher_bar_revealed(gpointer data)
{
  AdwViewSwitcherBar *bar = data;
  return adw_view_switcher_bar_get_reveal(bar) ==
         GPOINTER_TO_INT(g_object_get_data(G_OBJECT(bar), "expect"));
}

static void
test_narrow(void)
{
  AdwViewSwitcherBar *bar = ADW_VIEW_SWITCHER_BAR(
      find_widget(GTK_WIDGET(window), is_type, GSIZE_TO_POINTER(ADW_TYPE_VIEW_SWITCHER_BAR)));
  g_assert_nonnull(bar);
  g_assert_false(adw_view_switcher_bar_get_reveal(bar));

  /* Phone-sized: the switcher moves from the header to the bottom bar. */
  gtk_window_set_default_size(GTK_WINDOW(window), 400, 640);
  g_object_set_data(G_OBJECT(bar), "expect", GINT_TO_POINTER(TRUE));
  g_assert_true(wait_until(switcher_bar_revealed, bar, 15));
  g_action_group_activate_action(G_ACTION_GROUP(window), "show-page", g_variant_new_string("chat"));
  settle(0.5);
  assert_not_blank(render_png(GTK_WIDGET(window), "narrow"));

  gtk_window_set_default_size(GTK_WINDOW(window), 1100, 720);
  g_object_set_data(G_OBJECT(bar), "expect", GINT_TO_POINTER(FALSE));
  g_assert_true(wait_until(switcher_bar_revealed, bar, 15));
  settle(0.3);
}

/* --- Window state --------------------------------------------------------- */

static gboolean
app_has_no_window(gpointer data)
{
  return gtk_application_get_windows(GTK_APPLICATION(app)) == NULL;
}

static void
test_window_state(void)
{
  GSettings *settings = whittle_application_get_settings(app);

  gtk_window_set_default_size(GTK_WINDOW(window), 900, 600);
  settle(0.3);
  gtk_window_close(GTK_WINDOW(window));
  window = NULL;
  g_assert_true(wait_until(app_has_no_window, NULL, 15));

  g_assert_cmpint(g_settings_get_int(settings, "window-width"), ==, 900);
  g_assert_cmpint(g_settings_get_int(settings, "window-height"), ==, 600);
  g_assert_false(g_settings_get_boolean(settings, "window-maximized"));

  /* A new window opens with the saved size. */
  g_application_activate(G_APPLICATION(app));
  window = WHITTLE_WINDOW(gtk_application_get_active_window(GTK_APPLICATION(app)));
  g_assert_nonnull(window);
  g_assert_true(wait_until(widget_is_mapped, window, 10));
  int w = 0, h = 0;
  gtk_window_get_default_size(GTK_WINDOW(window), &w, &h);
  g_assert_cmpint(w, ==, 900);
  g_assert_cmpint(h, ==, 600);

  g_settings_reset(settings, "window-width");
  g_settings_reset(settings, "window-height");
}

/* --- Closing while jobs run ----------------------------------------------- */

static gboolean
has_n_active(gpointer n)
{
  return whittle_application_get_n_active(app) == GPOINTER_TO_UINT(n);
}

static gboolean
is_button_labelled(GtkWidget *widget, gconstpointer label)
{
  return GTK_IS_BUTTON(widget) && g_strcmp0(gtk_button_get_label(GTK_BUTTON(widget)), label) == 0;
}

/* Clicks the button showing @label, as a user would. */
static void
click_button_labelled(GtkWidget *root, const char *label)
{
  GtkWidget *button = find_widget(root, is_button_labelled, label);
  g_assert_nonnull(button);
  g_signal_emit_by_name(button, "clicked");
}

static void
test_close_with_jobs(void)
{
  wh_job *job = whittle_application_submit_test_job(app, FALSE, 250);
  g_assert_true(wait_until(has_n_active, GUINT_TO_POINTER(1), 15));

  /* Closing asks first; "Keep Running" keeps the window and the job. */
  WhAppFindWindow find = {ADW_TYPE_MESSAGE_DIALOG, NULL};
  g_action_group_activate_action(G_ACTION_GROUP(app), "quit", NULL);
  g_assert_true(wait_until(wh_app_test_toplevel_shown, &find, 15));
  settle(0.2);
  assert_not_blank(render_png(GTK_WIDGET(find.found), "close-confirm"));
  click_button_labelled(GTK_WIDGET(find.found), "_Keep Running");
  g_assert_true(wait_until(toplevel_gone, &find, 15));
  g_assert_true(gtk_widget_get_mapped(GTK_WIDGET(window)));
  g_assert_cmpint(wh_job_get_state(job), ==, WH_JOB_RUNNING);

  /* "Stop and Close" cancels the job and closes the window. */
  gtk_window_close(GTK_WINDOW(window));
  g_assert_true(wait_until(wh_app_test_toplevel_shown, &find, 15));
  click_button_labelled(GTK_WIDGET(find.found), "_Stop and Close");
  g_assert_cmpint(wh_job_wait(job), ==, WH_JOB_CANCELLED);
  window = NULL;
  g_assert_true(wait_until(app_has_no_window, NULL, 15));
  g_assert_true(wait_until(has_n_active, GUINT_TO_POINTER(0), 15));
  wh_job_unref(job);
}

/* --- Main ----------------------------------------------------------------- */

static void
test_skip_no_display(void)
{
  g_test_skip("no display (DISPLAY/WAYLAND_DISPLAY unset): run under xvfb-run");
}

int
main(int argc, char **argv)
{
  /* The app writes (chats, library index, downloads) only into a temporary home. */
  g_autofree char *tmp_home = g_dir_make_tmp("whittle-window-XXXXXX", NULL);
  wh_app_test_isolate(tmp_home);
  g_setenv("GSETTINGS_BACKEND", "memory", TRUE);
  g_setenv("WHITTLE_TEST_HOOKS", "1", TRUE);
  g_test_init(&argc, &argv, NULL);

  if ((!g_getenv("DISPLAY") && !g_getenv("WAYLAND_DISPLAY")) || !gtk_init_check()) {
    g_test_add_func("/app/skip-no-display", test_skip_no_display);
    return g_test_run();
  }

  /* Screenshots in GNOME's own font when it is installed (fonts-cantarell);
   * without a GNOME session GTK would fall back to its plain default. */
  PangoFontMap *fontmap = pango_cairo_font_map_get_default();
  PangoFontFamily **families = NULL;
  int n_families = 0;
  pango_font_map_list_families(fontmap, &families, &n_families);
  for (int i = 0; i < n_families; i++)
    if (g_ascii_strcasecmp(pango_font_family_get_name(families[i]), "Cantarell") == 0)
      g_object_set(gtk_settings_get_default(), "gtk-font-name", "Cantarell 11", NULL);
  g_free(families);

  g_autoptr(GError) error = NULL;
  if (!whittle_application_check_schema(&error)) {
    g_printerr("%s\n", error->message);
    return 1;
  }

  const char *dir = g_getenv("WHITTLE_SCREENSHOT_DIR");
  screenshot_dir = dir ? g_strdup(dir) : g_build_filename(g_get_tmp_dir(), "whittle-shots", NULL);
  g_assert_cmpint(g_mkdir_with_parents(screenshot_dir, 0755), ==, 0);

  app = whittle_application_new(G_APPLICATION_NON_UNIQUE);
  g_assert_true(g_application_register(G_APPLICATION(app), NULL, &error));
  g_assert_no_error(error);
  g_application_activate(G_APPLICATION(app));
  window = WHITTLE_WINDOW(gtk_application_get_active_window(GTK_APPLICATION(app)));
  g_assert_nonnull(window);
  g_assert_true(wait_until(widget_is_mapped, window, 10));

  g_test_add_func("/app/pages", test_pages);
  g_test_add_func("/app/dialogs", test_dialogs);
  g_test_add_func("/app/jobs", test_jobs);
  g_test_add_func("/app/accessibility", test_accessibility);
  g_test_add_func("/app/narrow", test_narrow);
  g_test_add_func("/app/window-state", test_window_state);
  g_test_add_func("/app/close-with-jobs", test_close_with_jobs);
  int status = g_test_run();

  if (window)
    gtk_window_destroy(GTK_WINDOW(window));
  settle(0.1);
  g_object_unref(app);
  g_free(screenshot_dir);
  wh_test_rmdir_r(tmp_home);
  return status;
}
