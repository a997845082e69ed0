/* test-e2e.c — issue 7's whole journey through the real window, in-process.
 *
 * A local hub look-alike (tests/hub-server) serves stories260K as org/stories-GGUF. Then, as a
 * new user would: Browse → search → model details with a fit badge → Download → it appears
 * in the Library → Plan (the Planner shows a verdict for it) → Quantize it to Q4_0 through
 * the wizard (Library's Quantize…) → "Chat with It" → a greedy reply equal to `whittle-cli
 * run --temp 0` on the same rendered prompt with the Q4_0 file (and the GPU layers and
 * device the chat chose) → a new application object over the same data folder shows the
 * conversation again, and the quantized model is listed in the Library. Every step goes through the
 * pages (no step is done on the engine behind their back). Screenshots: e2e-1-search …
 * e2e-8-restarted.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "../hub-server/hub-server.h"
#include "app-test-util.h"
#include "wh-test-util.h"
#include "whittle-browse-page.h"
#include "whittle-chat-page.h"
#include "whittle-library-page.h"
#include "whittle-model-details.h"
#include "whittle-planner-page.h"
#include "whittle-quantize-page.h"

static WhittleApplication *app;
static WhittleWindow *window;
static wh_test_hub *server;
static char *tmp_dir;
static const char *cli_path;

static GtkWidget *
page_named(const char *name)
{
  return adw_view_stack_get_child_by_name(whittle_window_get_view_stack(window), name);
}

static const char *
visible_page(void)
{
  return adw_view_stack_get_visible_child_name(whittle_window_get_view_stack(window));
}

static gboolean
search_done(gpointer page)
{
  return !whittle_browse_page_is_searching(page) &&
         g_strcmp0(whittle_browse_page_get_state(page), "loading") != 0;
}

static gboolean
details_idle(gpointer details)
{
  return !whittle_model_details_is_busy(details) &&
         whittle_model_details_get_n_variants(details) > 0;
}

static gboolean
download_done(gpointer details)
{
  return g_strcmp0(gtk_button_get_label(whittle_model_details_get_variant_button(details, 0)),
                   "Open in _Library") == 0;
}

static gboolean
library_idle(gpointer page)
{
  return !whittle_library_page_is_scanning(page);
}

static int
find_entry(WhittleLibraryPage *page, const char *filename)
{
  for (guint i = 0; i < whittle_library_page_get_n_models(page); i++) {
    const wh_library_entry *e = whittle_library_page_get_entry(page, i);
    if (e && g_str_has_suffix(e->paths[0], filename))
      return (int)i;
  }
  return -1;
}

static gboolean
planner_ready(gpointer page)
{
  return whittle_planner_page_is_ready(page) && whittle_planner_page_get_plan(page);
}

static gboolean
quantize_done(gpointer page)
{
  return !whittle_quantize_page_is_running(page);
}

static void
test_journey(void)
{
  g_assert_true(g_str_has_prefix(g_get_user_data_dir(), tmp_dir));
  /* 1. Browse: search, then the model's details with a fit badge. */
  adw_view_stack_set_visible_child_name(whittle_window_get_view_stack(window), "browse");
  WhittleBrowsePage *browse = WHITTLE_BROWSE_PAGE(page_named("browse"));
  whittle_browse_page_search(browse, "stories");
  g_assert_true(wh_app_test_wait(search_done, browse, 30));
  g_assert_cmpstr(whittle_browse_page_get_state(browse), ==, "results");
  g_assert_nonnull(gtk_list_box_get_row_at_index(whittle_browse_page_get_results(browse), 0));
  wh_app_test_screenshot(GTK_WIDGET(window), "e2e-1-search");

  whittle_browse_page_open_model(browse, "org/stories-GGUF");
  WhittleModelDetails *details = whittle_browse_page_get_details(browse);
  g_assert_true(wh_app_test_wait(details_idle, details, 30));
  g_assert_cmpuint(whittle_model_details_get_n_variants(details), ==, 1);
  const char *badge = whittle_model_details_get_variant_badge(details, 0);
  g_test_message("fit badge: %s", badge);
  g_assert_nonnull(badge);
  g_assert_cmpstr(badge, !=, "");
  wh_app_test_screenshot(GTK_WIDGET(window), "e2e-2-details");

  /* 2. Download it. */
  g_signal_emit_by_name(whittle_model_details_get_variant_button(details, 0), "clicked");
  g_assert_true(wh_app_test_wait(download_done, details, 60));

  /* 3. The Library lists it as Whittle's own. */
  adw_view_stack_set_visible_child_name(whittle_window_get_view_stack(window), "library");
  WhittleLibraryPage *library = WHITTLE_LIBRARY_PAGE(page_named("library"));
  whittle_library_page_refresh(library);
  g_assert_true(wh_app_test_wait(library_idle, library, 30));
  int i = find_entry(library, "stories260K.gguf");
  g_assert_cmpint(i, >=, 0);
  wh_library_entry *e = wh_library_entry_copy(whittle_library_page_get_entry(library, (guint)i));
  g_assert_cmpint(e->source, ==, WH_LIBRARY_SOURCE_WHITTLE);
  wh_app_test_screenshot(GTK_WIDGET(window), "e2e-3-library");

  /* 4. Plan it: the Planner shows a verdict for this file. */
  gtk_widget_activate_action(GTK_WIDGET(library), "library.plan", "s", e->id);
  wh_app_test_settle(0.2);
  g_assert_cmpstr(visible_page(), ==, "planner");
  WhittlePlannerPage *planner = WHITTLE_PLANNER_PAGE(page_named("planner"));
  g_assert_true(wh_app_test_wait(planner_ready, planner, 30));
  g_test_message("plan: %s", whittle_planner_page_get_verdict_text(planner));
  g_assert_cmpstr(whittle_planner_page_get_verdict_text(planner), !=, "");
  wh_app_test_screenshot(GTK_WIDGET(window), "e2e-4-plan");

  /* 5. Quantize it to Q4_0 through the wizard. */
  gtk_widget_activate_action(GTK_WIDGET(library), "library.quantize", "s", e->id);
  wh_app_test_settle(0.2);
  g_assert_cmpstr(visible_page(), ==, "quantize");
  WhittleQuantizePage *quantize = WHITTLE_QUANTIZE_PAGE(page_named("quantize"));
  g_assert_cmpstr(whittle_quantize_page_get_step(quantize), ==, "type");
  g_assert_true(whittle_quantize_page_select_type(quantize, "Q4_0"));
  gtk_widget_activate_action(GTK_WIDGET(quantize), "quantize.next", NULL);
  gtk_widget_activate_action(GTK_WIDGET(quantize), "quantize.next", NULL); /* Quantize */
  g_assert_true(wh_app_test_wait(quantize_done, quantize, 60));
  g_assert_cmpstr(whittle_quantize_page_get_step(quantize), ==, "results");
  g_autofree char *q4 = g_strdup(whittle_quantize_page_get_output_path(quantize));
  g_assert_cmpuint(whittle_quantize_page_get_output_size(quantize), ==,
                   whittle_quantize_page_get_planned_size(quantize, "Q4_0"));
  wh_app_test_screenshot(GTK_WIDGET(window), "e2e-5-quantized");

  /* 6. Chat with it: a greedy reply equal to whittle-cli run on the Q4_0 file, with the GPU
   * layers the planner chose (GPU Offload is Automatic by default). */
  gtk_widget_activate_action(GTK_WIDGET(quantize), "quantize.chat", NULL);
  g_assert_cmpstr(visible_page(), ==, "chat");
  WhittleChatPage *chat = WHITTLE_CHAT_PAGE(page_named("chat"));
  g_assert_true(wh_app_test_wait(wh_app_test_chat_loaded, chat, 60));
  g_assert_cmpstr(wh_session_get_model_path(whittle_chat_page_get_session(chat)), ==, q4);
  whittle_chat_page_set_sampling(chat, 0, 24);
  g_assert_true(whittle_chat_page_send(chat, "Once upon a time"));
  g_assert_true(wh_app_test_wait(wh_app_test_chat_idle, chat, 60));
  GPtrArray *branch = whittle_chat_page_get_branch(chat);
  g_assert_cmpuint(branch->len, ==, 2);
  wh_chat_message msg = {"user", "Once upon a time"};
  /* With the GPU layers and device the chat chose (lavapipe counts as a GPU): run on the same
   * backend gives the same tokens. */
  wh_session *session = whittle_chat_page_get_session(chat);
  g_test_message("chat: %d GPU layers, device “%s”: %s",
                 wh_session_get_n_gpu_layers_requested(session),
                 wh_context_get_params(wh_session_get_context(session))->device,
                 whittle_chat_page_get_status(chat));
  g_autofree char *want = wh_app_test_cli_greedy_reply_like(cli_path, q4, session, &msg, 1, 24);
  const WhittleStoredMessage *reply = branch->pdata[1];
  g_test_message("reply: %s", reply->content);
  g_assert_cmpstr(reply->content, ==, want);
  gint64 conversation = whittle_chat_page_get_conversation(chat);
  wh_app_test_screenshot(GTK_WIDGET(window), "e2e-6-chat");

  /* 7. Restart: a new application object over the same folders. */
  gtk_window_destroy(GTK_WINDOW(window));
  wh_app_test_settle(0.2);
  g_clear_object(&app);
  g_test_expect_message("GLib", G_LOG_LEVEL_WARNING, "*g_set_application_name*");
  window = wh_app_test_start(&app, 1100, 760);
  g_test_assert_expected_messages();
  adw_view_stack_set_visible_child_name(whittle_window_get_view_stack(window), "chat");
  chat = WHITTLE_CHAT_PAGE(page_named("chat"));
  g_assert_cmpint(whittle_chat_page_get_conversation(chat), ==, conversation);
  branch = whittle_chat_page_get_branch(chat);
  g_assert_cmpuint(branch->len, ==, 2);
  g_assert_cmpstr(((WhittleStoredMessage *)branch->pdata[1])->content, ==, want);
  wh_app_test_screenshot(GTK_WIDGET(window), "e2e-7-restarted");

  /* The quantized model is in the Library of the new app too. */
  adw_view_stack_set_visible_child_name(whittle_window_get_view_stack(window), "library");
  library = WHITTLE_LIBRARY_PAGE(page_named("library"));
  whittle_library_page_refresh(library);
  g_assert_true(wh_app_test_wait(library_idle, library, 30));
  g_assert_cmpint(find_entry(library, "stories260K-Q4_0.gguf"), >=, 0);
  g_assert_cmpint(find_entry(library, "/stories260K.gguf"), >=, 0);
  wh_app_test_screenshot(GTK_WIDGET(window), "e2e-8-library");
  wh_library_entry_free(e);
}

static void
skip_all(void)
{
  g_test_skip("no display, whittle-cli or shared model");
}

int
main(int argc, char **argv)
{
  /* Everything the app reads or writes lives in a temporary folder, set before GLib caches
   * the user folders (g_test_init, GTK) and before any thread exists. */
  tmp_dir = g_dir_make_tmp("whittle-e2e-XXXXXX", NULL);
  wh_app_test_isolate(tmp_dir);
  /* No session bus: the restarted application registers as a plain local instance. */
  g_setenv("DBUS_SESSION_BUS_ADDRESS", "disabled:", TRUE);
  g_test_init(&argc, &argv, NULL);
  cli_path = g_getenv("WHITTLE_CLI");
  g_autofree char *model = wh_test_shared_path("models/stories260K.gguf");
  if (!cli_path || !g_file_test(model, G_FILE_TEST_EXISTS) || !wh_app_test_init_display()) {
    g_test_add_func("/e2e/skip", skip_all);
    return g_test_run();
  }
  g_autofree char *repo = g_build_filename(tmp_dir, "root", "org", "stories-GGUF", NULL);
  g_assert_cmpint(g_mkdir_with_parents(repo, 0755), ==, 0);
  g_autofree char *link = g_build_filename(repo, "stories260K.gguf", NULL);
  g_assert_cmpint(symlink(model, link), ==, 0);
  g_autofree char *readme = g_build_filename(repo, "README.md", NULL);
  g_assert_true(g_file_set_contents(readme, "# Stories 260K\n\nA tiny story model.\n", -1, NULL));
  g_autofree char *root = g_build_filename(tmp_dir, "root", NULL);
  g_autoptr(GError) error = NULL;
  server = wh_test_hub_start(root, &error);
  g_assert_no_error(error);

  g_setenv("HF_ENDPOINT", wh_test_hub_url(server), TRUE);
  window = wh_app_test_start(&app, 1100, 760);

  g_test_add_func("/e2e/journey", test_journey);
  int status = g_test_run();

  gtk_window_destroy(GTK_WINDOW(window));
  wh_app_test_settle(0.2);
  g_object_unref(app);
  wh_test_hub_stop(server);
  wh_test_rmdir_r(tmp_dir);
  g_free(tmp_dir);
  return status;
}
