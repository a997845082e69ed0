/* test-browse.c — Browse, model details, downloads and Library, end to end, in-process.
 *
 * Starts the local hub look-alike (tests/hub-server) on 127.0.0.1 serving shared models in
 * a few repositories, points the app at it (HF_ENDPOINT, HF_HOME, XDG dirs and HOME in a
 * temporary folder; no keyring), and does what a new user would: search → results (paged
 * through the Link header) → open a model → variants with fit badges (checked against the
 * planner on the same file) and the rendered card → download a GGUF (pause and resume on
 * the way; sha256 equal to the source) → it appears in the Library as Whittle's own →
 * Chat switches pages → delete with the confirmation dialog. Also: a download persisted in
 * the settings resumes in a new WhittleDownloads ("app restart"), error and filter states,
 * keyboard navigation and accessible roles and labels. Screenshots of each step go to
 * $WHITTLE_SCREENSHOT_DIR.
 */
#include "config.h"

#include <adwaita.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../hub-server/hub-server.h"
#include "app-test-util.h"
#include "planner/planner.h"
#include "wh-test-util.h"
#include "whittle-application.h"
#include "whittle-browse-page.h"
#include "whittle-job-row.h"
#include "whittle-library-page.h"
#include "whittle-preferences-window.h"
#include "whittle-window.h"

static WhittleApplication *app;
static WhittleWindow *window;
static wh_test_hub *server;
static char *tmp_dir;
static const char *q4_src; /* shared file served as org/m-GGUF/m-Q4_K_M.gguf */
static const char *f16_src;

#define N_TINY 33 /* repositories besides org/m-GGUF and gated/locked-GGUF: more than a page */

typedef WhAppCondition Condition;

/* --- Main-loop latency probe ------------------------------------------------------------
 * A high-priority 5 ms timeout notes the longest gap between its runs: how long the main
 * loop was unable to serve it (input and redraws wait the same). A figure, printed, never
 * asserted; run `meson test app-browse -v` on a quiet machine to read it. */

static guint probe_id;
static gint64 probe_last, probe_max;

static gboolean
probe_tick(gpointer data)
{
  gint64 now = g_get_monotonic_time();
  if (probe_last)
    probe_max = MAX(probe_max, now - probe_last);
  probe_last = now;
  return G_SOURCE_CONTINUE;
}

static void
probe_start(void)
{
  probe_last = probe_max = 0;
  probe_id = g_timeout_add_full(G_PRIORITY_HIGH, 5, probe_tick, NULL, NULL);
}

static void
probe_report(const char *what)
{
  g_clear_handle_id(&probe_id, g_source_remove);
  g_test_message("figure: longest main-loop stall while %s: %.1f ms", what,
                 MAX(probe_max - 5000, 0) / 1000.0);
}

static GtkWidget *
page_named(const char *name)
{
  return adw_view_stack_get_child_by_name(whittle_window_get_view_stack(window), name);
}

static void
show_page(const char *name)
{
  g_action_group_activate_action(G_ACTION_GROUP(window), "show-page", g_variant_new_string(name));
  wh_app_test_settle(0.2);
}

static char *
sha256_of(const char *path)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(path, &data, &len, NULL));
  return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
}

/* --- Search ---------------------------------------------------------------------------- */

static GtkWidget *find_descendant(GtkWidget *root, GType type);

static gboolean
browse_settled(gpointer page)
{
  return !whittle_browse_page_is_searching(page) &&
         g_strcmp0(whittle_browse_page_get_state(page), "loading") != 0;
}

static guint
n_rows(GtkListBox *list)
{
  guint n = 0;
  while (gtk_list_box_get_row_at_index(list, n))
    n++;
  return n;
}

static const char *
row_title(GtkListBox *list, guint i)
{
  return adw_preferences_row_get_title(ADW_PREFERENCES_ROW(gtk_list_box_get_row_at_index(list, i)));
}

static void
test_search(void)
{
  WhittleBrowsePage *page = WHITTLE_BROWSE_PAGE(page_named("browse"));
  GtkListBox *list = whittle_browse_page_get_results(page);
  show_page("browse");
  g_assert_cmpstr(whittle_browse_page_get_state(page), ==, "empty");

  /* The welcome page's example searches run a search (none of the test repositories is a
   * Llama, so it finds nothing). */
  GtkWidget *results =
      gtk_widget_get_ancestor(GTK_WIDGET(whittle_browse_page_get_results(page)), GTK_TYPE_STACK);
  GtkWidget *welcome = gtk_stack_get_child_by_name(GTK_STACK(results), "empty");
  GtkWidget *example = find_descendant(welcome, GTK_TYPE_BUTTON);
  g_assert_nonnull(example);
  g_assert_cmpstr(gtk_button_get_label(GTK_BUTTON(example)), ==, "Llama");
  g_signal_emit_by_name(example, "clicked");
  g_assert_true(wh_app_test_wait(browse_settled, page, 20));
  g_assert_cmpstr(whittle_browse_page_get_state(page), ==, "error");
  g_assert_cmpstr(adw_status_page_get_title(whittle_browse_page_get_status_page(page)), ==,
                  "No Models Found");
  GtkWidget *entry = find_descendant(GTK_WIDGET(page), GTK_TYPE_SEARCH_ENTRY);
  g_assert_cmpstr(gtk_editable_get_text(GTK_EDITABLE(entry)), ==, "Llama");

  probe_start();
  whittle_browse_page_search(page, "GGUF");
  g_assert_true(wh_app_test_wait(browse_settled, page, 20));
  probe_report("searching (30 result rows)");
  g_assert_cmpstr(whittle_browse_page_get_state(page), ==, "results");
  /* One page of 30, sorted by downloads: the biggest repository first. */
  g_assert_cmpuint(n_rows(list), ==, 30);
  g_assert_cmpstr(row_title(list, 0), ==, "org/m-GGUF");
  g_assert_true(whittle_browse_page_has_more(page));
  wh_app_test_screenshot(GTK_WIDGET(window), "browse-results");

  /* Infinite scroll: reaching the end of the list loads the next page (Link header). */
  GtkScrolledWindow *scroller =
      GTK_SCROLLED_WINDOW(gtk_widget_get_ancestor(GTK_WIDGET(list), GTK_TYPE_SCROLLED_WINDOW));
  GtkAdjustment *vadj = gtk_scrolled_window_get_vadjustment(scroller);
  wh_app_test_settle(0.3); /* laid out: the adjustment knows the height */
  gtk_adjustment_set_value(vadj, gtk_adjustment_get_upper(vadj));
  g_assert_true(whittle_browse_page_is_searching(page));
  g_assert_true(wh_app_test_wait(browse_settled, page, 20));
  g_assert_cmpuint(n_rows(list), ==, N_TINY + 2);
  g_assert_false(whittle_browse_page_has_more(page));

  /* The gated repository has the lock. */
  gboolean saw_gated = FALSE;
  for (guint i = 0; i < n_rows(list); i++)
    saw_gated |= g_strcmp0(row_title(list, i), "gated/locked-GGUF") == 0;
  g_assert_true(saw_gated);
}

static GtkWidget *
find_descendant(GtkWidget *root, GType type)
{
  return wh_app_test_find(root, wh_app_test_is_type, GSIZE_TO_POINTER(type));
}

/* Filters the hub does not know are applied here; errors become a status page. */
static void
test_filters_and_errors(void)
{
  WhittleBrowsePage *page = WHITTLE_BROWSE_PAGE(page_named("browse"));
  GtkListBox *list = whittle_browse_page_get_results(page);
  GtkWidget *filters = find_descendant(GTK_WIDGET(page), GTK_TYPE_MENU_BUTTON);
  g_assert_nonnull(filters);
  GtkPopover *popover = gtk_menu_button_get_popover(GTK_MENU_BUTTON(filters));
  /* The parameters dropdown is the first in the filter popover's grid. */
  GtkDropDown *params = GTK_DROP_DOWN(find_descendant(GTK_WIDGET(popover), GTK_TYPE_DROP_DOWN));
  g_assert_nonnull(params);

  gtk_drop_down_set_selected(params, 1); /* up to 1B */
  g_assert_true(wh_app_test_wait(browse_settled, page, 20));
  g_assert_cmpstr(whittle_browse_page_get_state(page), ==, "results");
  g_assert_cmpuint(n_rows(list), >, 0);
  for (guint i = 0; i < n_rows(list); i++)
    g_assert_nonnull(strstr(row_title(list, i), "260K")); /* org/m-GGUF says no size */
  gtk_drop_down_set_selected(params, 0);
  g_assert_true(wh_app_test_wait(browse_settled, page, 20));

  /* The hub answers garbage: a status page with the reason, and Try Again works. */
  wh_test_hub_faults faults = {0};
  faults.bad_json = TRUE;
  wh_test_hub_set_faults(server, &faults);
  whittle_browse_page_search(page, "m-GGUF");
  g_assert_true(wh_app_test_wait(browse_settled, page, 30));
  g_assert_cmpstr(whittle_browse_page_get_state(page), ==, "error");
  AdwStatusPage *status = whittle_browse_page_get_status_page(page);
  g_assert_nonnull(status);
  g_test_message("error page: %s — %s", adw_status_page_get_title(status),
                 adw_status_page_get_description(status));
  g_assert_nonnull(adw_status_page_get_description(status));
  wh_app_test_screenshot(GTK_WIDGET(window), "browse-error");
  memset(&faults, 0, sizeof faults);
  wh_test_hub_set_faults(server, &faults);
  GtkWidget *retry = find_descendant(GTK_WIDGET(status), GTK_TYPE_BUTTON);
  g_assert_nonnull(retry);
  g_signal_emit_by_name(retry, "clicked");
  g_assert_true(wh_app_test_wait(browse_settled, page, 20));
  g_assert_cmpstr(whittle_browse_page_get_state(page), ==, "results");
  g_assert_cmpstr(row_title(list, 0), ==, "org/m-GGUF");

  /* Nothing found. */
  whittle_browse_page_search(page, "no-such-model-anywhere");
  g_assert_true(wh_app_test_wait(browse_settled, page, 20));
  g_assert_cmpstr(whittle_browse_page_get_state(page), ==, "error");
  g_assert_cmpstr(adw_status_page_get_title(status), ==, "No Models Found");
}

/* --- Details ---------------------------------------------------------------------------- */

static gboolean
details_idle(gpointer details)
{
  return !whittle_model_details_is_busy(details);
}

/* The verdict the planner gives @path on this machine, as the badge's first words. */
static const char *
expected_badge_prefix(const char *path, guint *n_layer)
{
  g_autoptr(GError) error = NULL;
  wh_gguf *g = wh_gguf_open(path, &error);
  g_assert_no_error(error);
  wh_model_hparams *hp = g_new0(wh_model_hparams, 1);
  g_assert_true(wh_model_hparams_from_gguf(g, hp, &error));
  wh_device_list *devices = wh_devices_enumerate();
  wh_planner_params params = wh_planner_default_params();
  params.n_ctx = MIN(4096, hp->n_ctx_train);
  gboolean gpu = wh_device_list_find_gpu(devices, NULL, NULL) != NULL;
  params.n_gpu_layers = gpu ? WH_PLANNER_NGL_AUTO : 0;
  wh_plan plan;
  g_assert_true(wh_planner_compute(hp, devices, &params, &plan, &error));
  *n_layer = plan.n_layer;
  wh_device_list_free(devices);
  g_free(hp);
  wh_gguf_close(g);
  if (plan.verdict == WH_PLAN_NO)
    return "Too large";
  if (plan.verdict == WH_PLAN_PARTIAL)
    return "Partial offload · ";
  return plan.n_devices > 1 && plan.n_gpu_layers > 0 ? "Fits on GPU" : "CPU only · needs ";
}

static void
test_details(void)
{
  WhittleBrowsePage *page = WHITTLE_BROWSE_PAGE(page_named("browse"));
  GtkListBox *list = whittle_browse_page_get_results(page);
  WhittleModelDetails *details = whittle_browse_page_get_details(page);

  whittle_browse_page_search(page, "m-GGUF");
  g_assert_true(wh_app_test_wait(browse_settled, page, 20));
  g_assert_cmpuint(n_rows(list), ==, 1);
  /* Activate the first result as a user would. */
  g_signal_emit_by_name(list, "row-activated", gtk_list_box_get_row_at_index(list, 0));
  g_assert_cmpstr(whittle_model_details_get_repo_id(details), ==, "org/m-GGUF");
  probe_start();
  g_assert_true(wh_app_test_wait(details_idle, details, 30));
  probe_report("loading details, card and fit badges");

  /* Two variants, sorted by name: F16 and Q4_K_M, each with its planner badge. */
  g_assert_cmpuint(whittle_model_details_get_n_variants(details), ==, 2);
  const char *srcs[] = {f16_src, q4_src};
  const char *quants[] = {"F16", "Q4_K_M"};
  for (guint i = 0; i < 2; i++) {
    g_assert_cmpstr(whittle_model_details_get_variant_quant(details, i), ==, quants[i]);
    guint n_layer = 0;
    const char *want = expected_badge_prefix(srcs[i], &n_layer);
    const char *badge = whittle_model_details_get_variant_badge(details, i);
    g_test_message("%s: %s (planner: %s…)", quants[i], badge, want);
    g_assert_nonnull(badge);
    g_assert_true(g_str_has_prefix(badge, want));
    GtkButton *button = whittle_model_details_get_variant_button(details, i);
    g_assert_cmpstr(gtk_button_get_label(button), ==, "_Download");
    g_autofree char *label = g_strdup_printf("Download m-%s.gguf", quants[i]);
    gtk_test_accessible_assert_property(GTK_ACCESSIBLE(button), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                        label);
  }
  /* The card: our README's five blocks (heading, paragraph, two items, code). */
  g_assert_cmpuint(whittle_markdown_view_get_n_blocks(whittle_model_details_get_card_view(details)),
                   ==, 5);
  wh_app_test_screenshot(GTK_WIDGET(window), "model-details");
  /* The quant filter hides the other variants behind a "Show … more" row. */
  whittle_model_details_set_filter(details, "Q4_K_M", 0);
  GtkWidget *f16_row = gtk_widget_get_ancestor(
      GTK_WIDGET(whittle_model_details_get_variant_button(details, 0)), ADW_TYPE_ACTION_ROW);
  GtkWidget *q4_row = gtk_widget_get_ancestor(
      GTK_WIDGET(whittle_model_details_get_variant_button(details, 1)), ADW_TYPE_ACTION_ROW);
  g_assert_false(gtk_widget_get_visible(f16_row));
  g_assert_true(gtk_widget_get_visible(q4_row));
  GtkWidget *show_all = gtk_widget_get_next_sibling(q4_row);
  g_assert_nonnull(show_all);
  g_assert_cmpstr(adw_preferences_row_get_title(ADW_PREFERENCES_ROW(show_all)), ==,
                  "Show 1 more file hidden by your filters");
  g_signal_emit_by_name(gtk_widget_get_parent(show_all), "row-activated", show_all);
  g_assert_true(gtk_widget_get_visible(f16_row));
  /* A size limit below the F16 file hides it too. */
  whittle_model_details_set_filter(details, NULL, 4000000);
  g_assert_false(gtk_widget_get_visible(f16_row));
  whittle_model_details_set_filter(details, NULL, 0);
  g_assert_true(gtk_widget_get_visible(f16_row));

  /* The back button and the code block's Copy button at least. */
  g_assert_cmpuint(wh_app_test_check_accessible_names(GTK_WIDGET(details)), >=, 2);
}

/* --- Downloads ---------------------------------------------------------------------------- */

typedef struct {
  WhittleModelDetails *details;
  guint index;
  const char *label;
} ButtonWait;

static gboolean
button_says(gpointer data)
{
  ButtonWait *w = data;
  return g_strcmp0(
             gtk_button_get_label(whittle_model_details_get_variant_button(w->details, w->index)),
             w->label) == 0;
}

static WhittleJobRow *
download_row(const char *title)
{
  GtkListBox *box = whittle_jobs_button_get_list_box(whittle_window_get_jobs_button(window));
  for (guint i = 0; gtk_list_box_get_row_at_index(box, i); i++) {
    WhittleJobRow *row = WHITTLE_JOB_ROW(gtk_list_box_get_row_at_index(box, i));
    if (g_strcmp0(whittle_job_item_get_title(whittle_job_row_get_item(row)), title) == 0)
      return row;
  }
  return NULL;
}

static gboolean
row_running_with_progress(gpointer title)
{
  WhittleJobRow *row = download_row(title);
  return row && whittle_job_row_get_can_pause(row) && whittle_job_row_get_fraction(row) > 0.05;
}

static gboolean
row_paused(gpointer title)
{
  WhittleJobRow *row = download_row(title);
  return row && whittle_job_row_get_can_resume(row) && !whittle_job_row_get_can_pause(row);
}

static guint
n_persisted(void)
{
  g_autoptr(GVariant) v = g_settings_get_value(whittle_application_get_settings(app), "downloads");
  return (guint)g_variant_n_children(v);
}

static gboolean
widget_shown(gpointer widget)
{
  return gtk_widget_get_mapped(widget) && gtk_widget_get_width(widget) > 0;
}

static void
test_download(void)
{
  WhittleBrowsePage *page = WHITTLE_BROWSE_PAGE(page_named("browse"));
  WhittleModelDetails *details = whittle_browse_page_get_details(page);
  WhittleDownloads *downloads = whittle_application_get_downloads(app);
  const char *title = "Downloading m-Q4_K_M.gguf";

  /* Slow enough to pause half-way. */
  wh_test_hub_faults faults = {0};
  faults.rate = 400000;
  wh_test_hub_set_faults(server, &faults);

  g_signal_emit_by_name(whittle_model_details_get_variant_button(details, 1), "clicked");
  ButtonWait downloading = {details, 1, "Downloading…"};
  g_assert_true(wh_app_test_wait(button_says, &downloading, 5));
  g_assert_cmpuint(n_persisted(), ==, 1);
  g_assert_true(wh_app_test_wait(row_running_with_progress, (gpointer)title, 20));

  /* The jobs popover with the running download. */
  GtkMenuButton *jobs = whittle_jobs_button_get_menu_button(whittle_window_get_jobs_button(window));
  gtk_menu_button_popup(jobs);
  GtkWidget *popover = GTK_WIDGET(gtk_menu_button_get_popover(jobs));
  g_assert_true(wh_app_test_wait(widget_shown, popover, 10));
  wh_app_test_screenshot(popover, "downloads");
  probe_start(); /* from here: progress rows, pause, resume, completion (no screenshots) */
  WhittleJobRow *row = download_row(title);
  gtk_test_accessible_assert_role(GTK_ACCESSIBLE(row), GTK_ACCESSIBLE_ROLE_LIST_ITEM);
  g_assert_cmpuint(wh_app_test_check_accessible_names(GTK_WIDGET(row)), >=, 2); /* Pause, Cancel */

  /* Pause: the job ends, the row offers Resume, the download is still persisted. */
  whittle_job_row_pause(row);
  g_assert_true(wh_app_test_wait(row_paused, (gpointer)title, 20));
  g_assert_cmpuint(n_persisted(), ==, 1);
  ButtonWait resumable = {details, 1, "_Resume Download"};
  g_assert_true(wh_app_test_wait(button_says, &resumable, 5));

  /* Resume: a new job continues the partial file to the end. */
  faults.rate = 0;
  wh_test_hub_set_faults(server, &faults);
  whittle_job_row_resume(download_row(title));
  ButtonWait done = {details, 1, "Open in _Library"};
  g_assert_true(wh_app_test_wait(button_says, &done, 30));
  gtk_popover_popdown(gtk_menu_button_get_popover(
      whittle_jobs_button_get_menu_button(whittle_window_get_jobs_button(window))));
  g_assert_cmpuint(n_persisted(), ==, 0);
  probe_report("downloading (pause, resume)");
  /* Exactly one row for the file: the paused job's row was replaced. */
  GtkListBox *box = whittle_jobs_button_get_list_box(whittle_window_get_jobs_button(window));
  guint n_same = 0;
  for (guint i = 0; gtk_list_box_get_row_at_index(box, i); i++)
    n_same += download_row(title) == WHITTLE_JOB_ROW(gtk_list_box_get_row_at_index(box, i));
  g_assert_cmpuint(n_same, ==, 1);

  wh_job *job = whittle_downloads_find(downloads, "org/m-GGUF", NULL, "m-Q4_K_M.gguf");
  g_assert_nonnull(job);
  g_assert_cmpint(whittle_downloads_get_state(downloads, job), ==, WHITTLE_DOWNLOAD_DONE);
  const wh_hub_download_result *r = wh_job_get_result(job);
  g_autofree char *got = sha256_of(r->path);
  g_autofree char *want = sha256_of(q4_src);
  g_assert_cmpstr(got, ==, want);
  g_assert_true(r->resumed);
}

static gboolean
row_failed_with_fix(gpointer data)
{
  const char **want = data; /* title, fix label */
  WhittleJobRow *row = download_row(want[0]);
  return row && whittle_job_row_get_fix_label(row) &&
         g_strcmp0(whittle_job_row_get_fix_label(row), want[1]) == 0 &&
         whittle_job_row_get_can_resume(row);
}

/* A gated model: guidance in the details, then each refusal offers its fix, and Retry
 * works once the token is good. */
static void
test_gated(void)
{
  WhittleBrowsePage *page = WHITTLE_BROWSE_PAGE(page_named("browse"));
  WhittleModelDetails *details = whittle_browse_page_get_details(page);
  wh_hub *hub = whittle_application_get_hub(app);
  const char *title = "Downloading locked-Q8_0.gguf";

  whittle_browse_page_open_model(page, "gated/locked-GGUF");
  g_assert_true(wh_app_test_wait(details_idle, details, 30));
  g_assert_cmpuint(whittle_model_details_get_n_variants(details), ==, 1);
  /* Its header cannot be read without access. */
  g_assert_cmpstr(whittle_model_details_get_variant_badge(details, 0), ==, "Needs access");
  wh_app_test_screenshot(GTK_WIDGET(window), "model-gated");

  g_signal_emit_by_name(whittle_model_details_get_variant_button(details, 0), "clicked");
  const char *want_token[] = {title, "_Add a Token…"};
  g_assert_true(wh_app_test_wait(row_failed_with_fix, want_token, 30));
  WhittleJobRow *row = download_row(title);
  g_assert_nonnull(strstr(whittle_job_row_get_error_text(row), "token"));

  wh_hub_set_token(hub, "hf_bad");
  whittle_job_row_resume(row);
  const char *want_access[] = {title, "_Request Access…"};
  g_assert_true(wh_app_test_wait(row_failed_with_fix, want_access, 30));

  wh_hub_set_token(hub, "hf_good");
  whittle_job_row_resume(download_row(title));
  ButtonWait done = {details, 0, "Open in _Library"};
  g_assert_true(wh_app_test_wait(button_says, &done, 30));
  wh_hub_set_token(hub, NULL);
}

/* A download listed in the settings continues in a new WhittleDownloads, as after a
 * restart of the app. */
static void
on_restored_finished(WhittleDownloads *d, const char *repo, const char *file, const char *path,
                     gpointer data)
{
  *(char **)data = g_strdup(path);
}

static gboolean
string_set(gpointer data)
{
  return *(char **)data != NULL;
}

static gboolean
download_paused(gpointer downloads)
{
  wh_job *job = g_object_get_data(G_OBJECT(downloads), "job");
  return whittle_downloads_get_state(downloads, job) == WHITTLE_DOWNLOAD_PAUSED;
}

static void
test_restart_resumes(void)
{
  GSettings *settings = whittle_application_get_settings(app);
  wh_hub *hub = whittle_application_get_hub(app);
  wh_job_queue *queue = whittle_application_get_job_queue(app);
  g_settings_set_value(settings, "downloads",
                       g_variant_new_parsed("[('org/m-GGUF', 'main', 'm-F16.gguf'), "
                                            "('../evil', 'main', 'x.gguf')]"));
  WhittleDownloads *restarted =
      whittle_downloads_new(settings, hub, whittle_application_get_library(app), queue, NULL, NULL);
  char *path = NULL;
  g_signal_connect(restarted, "download-finished", G_CALLBACK(on_restored_finished), &path);
  /* The hostile entry is skipped; the good one runs. */
  g_assert_cmpuint(whittle_downloads_restore(restarted), ==, 1);
  g_assert_true(wh_app_test_wait(string_set, &path, 30));
  g_autofree char *got = sha256_of(path);
  g_autofree char *want = sha256_of(f16_src);
  g_assert_cmpstr(got, ==, want);
  g_assert_cmpuint(whittle_downloads_get_n_pending(restarted), ==, 0);
  g_free(path);

  /* A job cancelled from outside (closing the app cancels every job) stays listed; the
   * row's Cancel (whittle_downloads_cancel) forgets it. */
  wh_test_hub_faults faults = {0};
  faults.rate = 200000;
  wh_test_hub_set_faults(server, &faults);
  wh_job *job = whittle_downloads_start(restarted, "gated/locked-GGUF", NULL, "locked-Q8_0.gguf");
  wh_hub_set_token(hub, "hf_good");
  wh_job_cancel(job);
  g_object_set_data(G_OBJECT(restarted), "job", job);
  g_assert_true(wh_app_test_wait(download_paused, restarted, 20));
  g_assert_cmpuint(n_persisted(), ==, 1);
  whittle_downloads_cancel(restarted, job);
  g_assert_cmpuint(n_persisted(), ==, 0);
  wh_hub_set_token(hub, NULL);
  memset(&faults, 0, sizeof faults);
  wh_test_hub_set_faults(server, &faults);
  g_object_unref(restarted);
  g_settings_reset(settings, "downloads");
  /* The app's own downloads did not fetch m-F16.gguf, but it is in the cache now: its
   * details offer "Open in Library" instead of a download. */
  WhittleBrowsePage *page = WHITTLE_BROWSE_PAGE(page_named("browse"));
  WhittleModelDetails *details = whittle_browse_page_get_details(page);
  whittle_browse_page_open_model(page, "org/m-GGUF");
  g_assert_true(wh_app_test_wait(details_idle, details, 30));
  ButtonWait in_cache = {details, 0, "Open in _Library"};
  g_assert_true(wh_app_test_wait(button_says, &in_cache, 10));

  GListModel *jobs = whittle_application_get_jobs(app);
  g_assert_cmpuint(g_list_model_get_n_items(jobs), >, 0);
  whittle_application_clear_finished_jobs(app);
}

/* --- Library ---------------------------------------------------------------------------- */

static gboolean
entry_gone(gpointer page)
{
  return wh_app_test_library_idle(page) && wh_app_test_library_find(page, "m-Q4_K_M.gguf") < 0;
}

static gboolean
folder_listed(gpointer page)
{
  return wh_app_test_library_idle(page) && wh_app_test_library_find(page, "mine-Q4_0.gguf") >= 0;
}

static void
test_library(void)
{
  WhittleLibraryPage *page = WHITTLE_LIBRARY_PAGE(page_named("library"));
  show_page("library");
  whittle_library_page_refresh(page);
  g_assert_true(wh_app_test_wait(wh_app_test_library_idle, page, 30));

  int i = wh_app_test_library_find(page, "m-Q4_K_M.gguf");
  g_assert_cmpint(i, >=, 0);
  const wh_library_entry *e = whittle_library_page_get_entry(page, (guint)i);
  g_assert_cmpint(e->source, ==, WH_LIBRARY_SOURCE_WHITTLE);
  g_assert_true(e->deletable);
  g_assert_cmpstr(e->repo_id, ==, "org/m-GGUF");
  g_assert_cmpstr(e->quant, ==, "Q4_K_M");
  g_assert_cmpstr(e->architecture, ==, "llama");
  /* The fit badge equals the planner's verdict on the file. */
  guint n_layer = 0;
  const char *want_badge = expected_badge_prefix(q4_src, &n_layer);
  g_test_message("library badge: %s", whittle_library_page_get_badge(page, (guint)i));
  g_assert_true(g_str_has_prefix(whittle_library_page_get_badge(page, (guint)i), want_badge));
  GtkWidget *row = whittle_library_page_get_row(page, (guint)i);
  const char *subtitle = adw_action_row_get_subtitle(ADW_ACTION_ROW(row));
  g_test_message("library row: %s — %s", adw_preferences_row_get_title(ADW_PREFERENCES_ROW(row)),
                 subtitle);
  g_assert_nonnull(strstr(subtitle, "llama"));
  g_assert_nonnull(strstr(subtitle, "Q4_K_M"));
  wh_app_test_screenshot(GTK_WIDGET(window), "library-models");
  /* Refresh and one "more actions" menu button per model at least. */
  g_assert_cmpuint(wh_app_test_check_accessible_names(GTK_WIDGET(page)), >=,
                   1 + whittle_library_page_get_n_models(page));

  /* Chat: the window moves to the Chat page (win.open-chat, or show-page). */
  gtk_widget_activate_action(GTK_WIDGET(page), "library.chat", "s", e->id);
  wh_app_test_settle(0.3);
  g_assert_cmpstr(adw_view_stack_get_visible_child_name(whittle_window_get_view_stack(window)), ==,
                  "chat");
  /* Plan: the Planner page (win.open-planner selects the model there). */
  gtk_widget_activate_action(GTK_WIDGET(page), "library.plan", "s", e->id);
  wh_app_test_settle(0.3);
  g_assert_cmpstr(adw_view_stack_get_visible_child_name(whittle_window_get_view_stack(window)), ==,
                  "planner");
  show_page("library");

  /* Delete asks first, then removes the file from the cache. */
  g_autofree char *path = g_strdup(e->paths[0]);
  g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
  gtk_widget_activate_action(GTK_WIDGET(page), "library.delete", "s", e->id);
  WhAppFindWindow find = {ADW_TYPE_MESSAGE_DIALOG, NULL};
  g_assert_true(wh_app_test_wait(wh_app_test_toplevel_shown, &find, 10));
  g_assert_nonnull(strstr(adw_message_dialog_get_body(ADW_MESSAGE_DIALOG(find.found)), "frees"));
  wh_app_test_screenshot(GTK_WIDGET(find.found), "library-delete");
  adw_message_dialog_response(ADW_MESSAGE_DIALOG(find.found), "delete");
  g_assert_true(wh_app_test_wait(entry_gone, page, 30));
  g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));

  /* Adding a folder (as "Add Folder…" does) scans again by itself; its models are listed
   * in place and cannot be deleted from here. */
  g_autofree char *folder = g_build_filename(tmp_dir, "my-models", NULL);
  g_assert_cmpint(g_mkdir_with_parents(folder, 0755), ==, 0);
  g_autofree char *mine = g_build_filename(folder, "mine-Q4_0.gguf", NULL);
  g_autofree char *src = wh_test_shared_path("reference/models/stories260K-Q4_0.gguf");
  g_assert_cmpint(symlink(src, mine), ==, 0);
  whittle_preferences_add_library_folder(whittle_application_get_settings(app), folder);
  g_assert_true(wh_app_test_wait(folder_listed, page, 30));
  const wh_library_entry *f =
      whittle_library_page_get_entry(page, (guint)wh_app_test_library_find(page, "mine-Q4_0.gguf"));
  g_assert_cmpint(f->source, ==, WH_LIBRARY_SOURCE_FOLDER);
  g_assert_false(f->deletable);
  g_settings_reset(whittle_application_get_settings(app), "library-folders");
}

/* --- Keyboard and accessibility --------------------------------------------------------- */

/* Tabs through @root from its first focusable widget; returns the widgets reached. */
static GPtrArray *
tab_through(GtkWidget *root, guint max)
{
  GPtrArray *seen = g_ptr_array_new();
  gtk_root_set_focus(GTK_ROOT(window), NULL); /* start from the page's first control */
  gtk_widget_child_focus(root, GTK_DIR_TAB_FORWARD);
  for (guint i = 0; i < max; i++) {
    GtkWidget *focus = gtk_root_get_focus(GTK_ROOT(window));
    if (focus == NULL || !gtk_widget_is_ancestor(focus, root))
      break;
    g_ptr_array_add(seen, focus);
    if (!gtk_widget_child_focus(root, GTK_DIR_TAB_FORWARD))
      break;
  }
  return seen;
}

static gboolean
reached(GPtrArray *seen, GtkWidget *target)
{
  for (guint i = 0; i < seen->len; i++)
    if (seen->pdata[i] == target || gtk_widget_is_ancestor(seen->pdata[i], target))
      return TRUE;
  return FALSE;
}

static void
test_keyboard(void)
{
  WhittleBrowsePage *browse = WHITTLE_BROWSE_PAGE(page_named("browse"));
  WhittleModelDetails *details = whittle_browse_page_get_details(browse);
  show_page("browse");
  /* Back to the results with the details' back button, then search again. */
  GtkWidget *back = find_descendant(GTK_WIDGET(details), GTK_TYPE_BUTTON);
  g_signal_emit_by_name(back, "clicked");
  whittle_browse_page_search(browse, "GGUF");
  g_assert_true(wh_app_test_wait(browse_settled, browse, 20));
  wh_app_test_settle(0.5);

  GtkListBox *list = whittle_browse_page_get_results(browse);
  GtkWidget *entry = find_descendant(GTK_WIDGET(browse), GTK_TYPE_SEARCH_ENTRY);
  g_autoptr(GPtrArray) seen = tab_through(GTK_WIDGET(browse), 40);
  g_test_message("browse: %u focus stops", seen->len);
  g_assert_true(reached(seen, entry));
  g_assert_true(reached(seen, find_descendant(GTK_WIDGET(browse), GTK_TYPE_DROP_DOWN)));
  g_assert_true(reached(seen, find_descendant(GTK_WIDGET(browse), GTK_TYPE_MENU_BUTTON)));
  g_assert_true(reached(seen, GTK_WIDGET(gtk_list_box_get_row_at_index(list, 0))));

  /* Ctrl+F comes back to the entry. */
  gtk_widget_grab_focus(GTK_WIDGET(gtk_list_box_get_row_at_index(list, 0)));
  whittle_browse_page_focus_search(GTK_WIDGET(browse), NULL, NULL);
  g_assert_true(gtk_widget_is_ancestor(gtk_root_get_focus(GTK_ROOT(window)), entry) ||
                gtk_root_get_focus(GTK_ROOT(window)) == entry);

  /* Roles and names. */
  gtk_test_accessible_assert_role(GTK_ACCESSIBLE(entry), GTK_ACCESSIBLE_ROLE_SEARCH_BOX);
  gtk_test_accessible_assert_property(GTK_ACCESSIBLE(entry), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      "Search models on Hugging Face");
  gtk_test_accessible_assert_role(GTK_ACCESSIBLE(list), GTK_ACCESSIBLE_ROLE_LIST);
  gtk_test_accessible_assert_property(GTK_ACCESSIBLE(list), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      "Search Results");
  gtk_test_accessible_assert_role(GTK_ACCESSIBLE(back), GTK_ACCESSIBLE_ROLE_BUTTON);
  gtk_test_accessible_assert_property(GTK_ACCESSIBLE(back), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      "Back to the Results");

  /* Library: filter, refresh, add folder, then the rows' Chat buttons. */
  WhittleLibraryPage *library = WHITTLE_LIBRARY_PAGE(page_named("library"));
  show_page("library");
  whittle_library_page_refresh(library);
  g_assert_true(wh_app_test_wait(wh_app_test_library_idle, library, 30));
  wh_app_test_settle(0.3);
  g_autoptr(GPtrArray) lib_seen = tab_through(GTK_WIDGET(library), 40);
  g_test_message("library: %u focus stops", lib_seen->len);
  g_assert_true(reached(lib_seen, find_descendant(GTK_WIDGET(library), GTK_TYPE_SEARCH_ENTRY)));
  g_assert_cmpuint(lib_seen->len, >=, 3);
  if (whittle_library_page_get_n_models(library) > 0) {
    GtkWidget *row = whittle_library_page_get_row(library, 0);
    g_assert_true(reached(lib_seen, row) ||
                  reached(lib_seen, find_descendant(row, GTK_TYPE_BUTTON)));
  }
}

/* --- Preferences ------------------------------------------------------------------------- */

static gboolean
is_password_entry(GtkWidget *w, gconstpointer data)
{
  return ADW_IS_PASSWORD_ENTRY_ROW(w);
}

static gboolean
hub_has_token(gpointer hub)
{
  return wh_hub_has_token(hub);
}

static gboolean
hub_has_no_token(gpointer hub)
{
  return !wh_hub_has_token(hub);
}

static void
test_preferences(void)
{
  GSettings *settings = whittle_application_get_settings(app);
  WhittlePreferencesWindow *prefs = whittle_preferences_window_new(settings);
  gtk_window_set_transient_for(GTK_WINDOW(prefs), GTK_WINDOW(window));
  gtk_window_present(GTK_WINDOW(prefs));
  g_assert_true(wh_app_test_wait((Condition)gtk_widget_get_mapped, prefs, 10));

  /* The token row is a masked entry with a label. */
  GtkWidget *token = wh_app_test_find(GTK_WIDGET(prefs), is_password_entry, NULL);
  g_assert_nonnull(token);
  g_assert_cmpstr(adw_preferences_row_get_title(ADW_PREFERENCES_ROW(token)), ==,
                  "Hugging Face Token");

  /* Apply stores the token (no keyring in this test: the token file, as huggingface-cli
   * does), clears the field, and the app's hub uses it; Remove Token forgets it. */
  wh_hub *hub = whittle_application_get_hub(app);
  g_autofree char *file = g_build_filename(g_getenv("HF_HOME"), "token", NULL);
  g_assert_false(wh_hub_has_token(hub));
  gtk_editable_set_text(GTK_EDITABLE(token), "hf_good");
  g_signal_emit_by_name(token, "apply");
  g_assert_true(wh_app_test_wait(hub_has_token, hub, 20));
  g_autofree char *stored = NULL;
  g_assert_true(g_file_get_contents(file, &stored, NULL, NULL));
  g_assert_cmpstr(g_strstrip(stored), ==, "hf_good");
  g_assert_cmpstr(gtk_editable_get_text(GTK_EDITABLE(token)), ==, "");
  GtkWidget *remove =
      wh_app_test_find(GTK_WIDGET(prefs), wh_app_test_is_button_labelled, "_Remove Token");
  g_assert_nonnull(remove);
  g_assert_true(wh_app_test_wait((Condition)gtk_widget_is_sensitive, remove, 20));
  g_signal_emit_by_name(remove, "clicked");
  g_assert_true(wh_app_test_wait(hub_has_no_token, hub, 20));
  g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));

  /* KV cache type follows the setting both ways. */
  whittle_preferences_window_set_kv_type(prefs, "q8_0");
  g_autofree char *kv = g_settings_get_string(settings, "default-kv-type");
  g_assert_cmpstr(kv, ==, "q8_0");
  g_settings_reset(settings, "default-kv-type");
  g_autofree char *shown = whittle_preferences_window_get_kv_type(prefs);
  g_assert_cmpstr(shown, ==, "f16");
  wh_app_test_screenshot(GTK_WIDGET(prefs), "preferences-token");
  gtk_window_destroy(GTK_WINDOW(prefs));
  wh_app_test_settle(0.2);
}

/* --- Setup --------------------------------------------------------------------------------- */

static void
link_file(const char *repo, const char *name, const char *target)
{
  g_autofree char *dir = g_build_filename(tmp_dir, "root", repo, NULL);
  g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
  g_autofree char *path = g_build_filename(dir, name, NULL);
  g_assert_cmpint(symlink(target, path), ==, 0);
}

static void
write_file(const char *repo, const char *name, const char *text)
{
  g_autofree char *path = g_build_filename(tmp_dir, "root", repo, name, NULL);
  g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void
skip_all(void)
{
  g_test_skip("no display, or the shared models are missing");
}

int
main(int argc, char **argv)
{
  /* Everything the app reads or writes lives in a temporary folder, set before GTK or GLib
   * caches the user directories. */
  tmp_dir = g_dir_make_tmp("whittle-browse-XXXXXX", NULL);
  wh_app_test_isolate(tmp_dir);
  g_test_init(&argc, &argv, NULL);

  g_autofree char *q4 = wh_test_shared_path("reference/models/synth-llama-Q4_K_M.gguf");
  g_autofree char *f16 = wh_test_shared_path("reference/models/synth-llama-F16.gguf");
  g_autofree char *tiny = wh_test_shared_path("models/stories260K.gguf");
  q4_src = q4;
  f16_src = f16;
  if (!g_file_test(q4, G_FILE_TEST_EXISTS) || !g_file_test(tiny, G_FILE_TEST_EXISTS) ||
      !wh_app_test_init_display()) {
    g_test_add_func("/browse/skip", skip_all);
    return g_test_run();
  }

  /* The repositories: one with two variants and a card, a gated one, many small ones. */
  link_file("org/m-GGUF", "m-Q4_K_M.gguf", q4);
  link_file("org/m-GGUF", "m-F16.gguf", f16);
  write_file("org/m-GGUF", "README.md",
             "---\nlicense: mit\n---\n# Test model\n\nSome **bold** text and "
             "[a link](https://example.org).\n\n- one\n- two\n\n```sh\nwhittle-cli pull "
             "org/m-GGUF\n```\n");
  link_file("gated/locked-GGUF", "locked-Q8_0.gguf", tiny);
  for (int i = 0; i < N_TINY; i++) {
    g_autofree char *repo = g_strdup_printf("org/tiny-260K-%02d-GGUF", i);
    link_file(repo, "tiny-F32.gguf", tiny);
  }
  g_autofree char *root = g_build_filename(tmp_dir, "root", NULL);
  g_autoptr(GError) error = NULL;
  server = wh_test_hub_start(root, &error);
  g_assert_no_error(error);

  /* The hub is ours. */
  g_setenv("HF_ENDPOINT", wh_test_hub_url(server), TRUE);
  window = wh_app_test_start(&app, 1100, 720);

  g_test_add_func("/browse/search", test_search);
  g_test_add_func("/browse/filters-and-errors", test_filters_and_errors);
  g_test_add_func("/browse/details", test_details);
  g_test_add_func("/browse/download", test_download);
  g_test_add_func("/browse/gated", test_gated);
  g_test_add_func("/browse/restart-resumes", test_restart_resumes);
  g_test_add_func("/browse/library", test_library);
  g_test_add_func("/browse/keyboard", test_keyboard);
  g_test_add_func("/browse/preferences", test_preferences);
  int status = g_test_run();

  gtk_window_destroy(GTK_WINDOW(window));
  wh_app_test_settle(0.2);
  g_object_unref(app);
  wh_test_hub_stop(server);
  g_autofree char *rm = g_strdup_printf("rm -rf '%s'", tmp_dir);
  if (system(rm) != 0)
    g_printerr("could not remove %s\n", tmp_dir);
  g_free(tmp_dir);
  return status;
}
