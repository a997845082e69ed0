/* test-chat.c — the Chat page with a real model, driven as a person would.
 *
 * Loads stories260K through win.open-chat (as the Library's Chat button does), sends a
 * message with temperature 0 and checks that the streamed reply equals `whittle-cli run
 * --temp 0` on the prompt a fresh session renders for the same conversation; stops a long
 * reply (the partial reply is kept and stored); regenerates (a second version of the reply,
 * identical when greedy, both kept); edits the user message (a branch; the arrows switch
 * back); searches the sidebar; exports Markdown and JSON; then restarts the application over
 * the same data folder and finds the same conversation, which goes on with the model loaded
 * again. Screenshots: chat-reply, chat-branches, chat-restored.
 */
#include "config.h"

#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#include "app-test-util.h"
#include "wh-test-util.h"
#include "whittle-chat-page.h"
#include "whittle-preferences-window.h"

static WhittleApplication *app;
static WhittleWindow *window;
static WhittleChatPage *page;
static char *tmp_dir;
static char *model_path;
static const char *cli_path;

static gboolean
reply_started(gpointer data)
{
  return strlen(whittle_chat_page_get_reply_text(data)) > 8;
}

static void
start_app(void)
{
  window = wh_app_test_start(&app, 1000, 760);
  page = WHITTLE_CHAT_PAGE(wh_app_test_find(GTK_WIDGET(window), wh_app_test_is_type,
                                            GSIZE_TO_POINTER(WHITTLE_TYPE_CHAT_PAGE)));
  g_assert_nonnull(page);
  adw_view_stack_set_visible_child_name(whittle_window_get_view_stack(window), "chat");
}

static void
stop_app(void)
{
  gtk_window_destroy(GTK_WINDOW(window));
  wh_app_test_settle(0.2);
  g_clear_object(&app);
  window = NULL;
  page = NULL;
}

static const WhittleStoredMessage *
message(guint i)
{
  GPtrArray *branch = whittle_chat_page_get_branch(page);
  g_assert_cmpuint(i, <, branch->len);
  return branch->pdata[i];
}

/* The greedy completion `whittle-cli run` gives for the prompt a fresh session renders for
 * @n user/assistant messages @msgs (24 tokens at most, as the page is set to). */
static char *
cli_reply_for(const wh_chat_message *msgs, gsize n)
{
  return wh_app_test_cli_greedy_reply(cli_path, model_path, msgs, n, 24);
}

static void
test_greedy_reply(void)
{
  g_assert_true(g_str_has_prefix(g_get_user_data_dir(), tmp_dir)); /* isolated */
  /* On the CPU, like `run` without --ngl (test-chat-gpu compares GPU replies with run on the
   * same GPU): the preference, which stays for the restarted application too. */
  g_settings_set_string(whittle_application_get_settings(app), "gpu-offload", "off");
  gtk_widget_activate_action(GTK_WIDGET(window), "win.open-chat", "s", model_path);
  g_assert_true(whittle_chat_page_is_loading(page));
  g_assert_true(wh_app_test_wait(wh_app_test_chat_loaded, page, 60));
  g_assert_null(whittle_chat_page_get_load_error(page));
  /* Where it runs, in words, and why. */
  const char *note = whittle_chat_page_get_device_note(page);
  g_test_message("device note: %s", note);
  g_assert_cmpstr(note, ==, "Running on the CPU: GPU offload is off in the Preferences.");
  g_assert_cmpint(wh_session_get_n_gpu_layers(whittle_chat_page_get_session(page)), ==, 0);

  whittle_chat_page_set_sampling(page, 0, 24);
  g_assert_true(whittle_chat_page_send(page, "Once upon a time"));
  g_assert_true(whittle_chat_page_is_generating(page));
  g_assert_true(wh_app_test_wait(wh_app_test_chat_idle, page, 60));

  GPtrArray *branch = whittle_chat_page_get_branch(page);
  g_assert_cmpuint(branch->len, ==, 2);
  g_assert_cmpstr(message(0)->role, ==, "user");
  g_assert_cmpstr(message(1)->role, ==, "assistant");
  g_assert_cmpstr(message(1)->content, ==, whittle_chat_page_get_reply_text(page));
  g_test_message("reply: %s", message(1)->content);
  g_assert_cmpuint(strlen(message(1)->content), >, 0);

  wh_chat_message msgs[] = {{"user", "Once upon a time"}};
  g_autofree char *want = cli_reply_for(msgs, 1);
  g_assert_cmpstr(message(1)->content, ==, want);
  /* The status line says how fast and why it ended. */
  g_assert_nonnull(strstr(whittle_chat_page_get_status(page), "tokens/s"));
  g_assert_cmpuint(whittle_chat_page_get_n_listed(page), ==, 1);
  wh_app_test_check_accessible_names(GTK_WIDGET(page));
  wh_app_test_screenshot(GTK_WIDGET(window), "chat-reply");
}

/* A second turn answers the whole conversation, like run on its rendered prompt. */
static void
test_second_turn(void)
{
  g_assert_true(whittle_chat_page_send(page, "Lily went to the park."));
  g_assert_true(wh_app_test_wait(wh_app_test_chat_idle, page, 60));
  g_assert_cmpuint(whittle_chat_page_get_branch(page)->len, ==, 4);
  wh_chat_message msgs[] = {{"user", message(0)->content},
                            {"assistant", message(1)->content},
                            {"user", message(2)->content}};
  g_autofree char *want = cli_reply_for(msgs, 3);
  g_assert_cmpstr(message(3)->content, ==, want);
}

static void
test_regenerate_and_edit(void)
{
  g_autofree char *first = g_strdup(message(3)->content);
  g_assert_true(whittle_chat_page_regenerate(page));
  g_assert_true(wh_app_test_wait(wh_app_test_chat_idle, page, 60));
  /* Greedy: the same text, now as version 2 of 2 (both kept in the store). */
  g_assert_cmpuint(whittle_chat_page_get_branch(page)->len, ==, 4);
  g_assert_cmpstr(message(3)->content, ==, first);
  g_assert_cmpuint(message(3)->n_branches, ==, 2);
  g_assert_cmpuint(message(3)->branch_index, ==, 1);

  /* Editing the second user message makes a branch of it, answered anew. */
  g_assert_true(whittle_chat_page_edit_message(page, 2, "Tom found a red ball."));
  g_assert_true(wh_app_test_wait(wh_app_test_chat_idle, page, 60));
  g_assert_cmpuint(whittle_chat_page_get_branch(page)->len, ==, 4);
  g_assert_cmpstr(message(2)->content, ==, "Tom found a red ball.");
  g_assert_cmpuint(message(2)->n_branches, ==, 2);
  wh_chat_message msgs[] = {{"user", message(0)->content},
                            {"assistant", message(1)->content},
                            {"user", "Tom found a red ball."}};
  g_autofree char *want = cli_reply_for(msgs, 3);
  g_assert_cmpstr(message(3)->content, ==, want);
  wh_app_test_screenshot(GTK_WIDGET(window), "chat-branches");

  /* Back to the first version: its replies are still there. */
  g_assert_true(whittle_chat_page_switch_branch(page, 2, -1));
  g_assert_cmpstr(message(2)->content, ==, "Lily went to the park.");
  g_assert_cmpstr(message(3)->content, ==, first);
  g_assert_false(whittle_chat_page_switch_branch(page, 2, -1)); /* no version before the first */
  /* And forward again: the session follows (the next reply continues this branch). */
  g_assert_true(whittle_chat_page_switch_branch(page, 2, 1));
  g_assert_cmpstr(message(2)->content, ==, "Tom found a red ball.");
  g_assert_cmpuint(wh_session_get_n_messages(whittle_chat_page_get_session(page)), ==, 4);
}

static void
test_stop(void)
{
  whittle_chat_page_set_sampling(page, 0, 4000);
  g_assert_true(whittle_chat_page_send(page, "The sun was warm."));
  g_assert_true(wh_app_test_wait(reply_started, page, 60));
  g_assert_true(whittle_chat_page_is_generating(page));
  gtk_widget_activate_action(GTK_WIDGET(page), "chat.stop", NULL);
  g_assert_true(wh_app_test_wait(wh_app_test_chat_idle, page, 30));
  /* The partial reply is kept, in the page and in the store. */
  g_assert_cmpuint(whittle_chat_page_get_branch(page)->len, ==, 6);
  g_assert_cmpstr(message(5)->role, ==, "assistant");
  g_assert_cmpuint(strlen(message(5)->content), >, 0);
  g_assert_nonnull(strstr(whittle_chat_page_get_status(page), "cancelled"));
  g_autoptr(GPtrArray) stored = whittle_conversation_store_get_branch(
      whittle_chat_page_get_store(page), whittle_chat_page_get_conversation(page), NULL);
  g_assert_cmpuint(stored->len, ==, 6);
  g_assert_cmpstr(((WhittleStoredMessage *)stored->pdata[5])->content, ==, message(5)->content);
  whittle_chat_page_set_sampling(page, 0, 24);
}

/* The settings popover: every sampling setting reaches the session and the store, and a
 * seeded reply equals `whittle-cli run` with the same options on the same prompt. */
static void
test_sampling_settings(void)
{
  wh_sampler_params p = wh_sampler_default_params();
  p.temperature = 0.9f;
  p.top_k = 5;
  p.top_p = 0.9f;
  p.min_p = 0.1f;
  p.repeat_penalty = 1.1f;
  p.seed = 7;
  whittle_chat_page_set_sampler(page, &p, 24);
  wh_sampler_params got;
  wh_session_get_sampler_params(whittle_chat_page_get_session(page), &got);
  g_assert_cmpfloat_with_epsilon(got.temperature, 0.9, 1e-6);
  g_assert_cmpint(got.top_k, ==, 5);
  g_assert_cmpfloat_with_epsilon(got.top_p, 0.9, 1e-6);
  g_assert_cmpfloat_with_epsilon(got.min_p, 0.1, 1e-6);
  g_assert_cmpfloat_with_epsilon(got.repeat_penalty, 1.1, 1e-6);
  g_assert_cmpuint(got.seed, ==, 7);
  g_autoptr(WhittleConversation) c = whittle_conversation_store_get(
      whittle_chat_page_get_store(page), whittle_chat_page_get_conversation(page), NULL);
  g_assert_cmpint(c->top_k, ==, 5);
  g_assert_cmpint(c->seed, ==, 7);
  g_assert_cmpfloat_with_epsilon(c->repeat_penalty, 1.1, 1e-6);

  g_assert_true(whittle_chat_page_send(page, "The cat sat on the mat."));
  g_assert_true(wh_app_test_wait(wh_app_test_chat_idle, page, 60));
  GPtrArray *branch = whittle_chat_page_get_branch(page);
  g_autofree wh_chat_message *msgs = g_new0(wh_chat_message, branch->len);
  for (guint i = 0; i + 1 < branch->len; i++) {
    msgs[i].role = message(i)->role;
    msgs[i].content = message(i)->content;
  }
  const char *args[] = {"--temp",  "0.9", "--top-k",          "5",   "--top-p", "0.9",
                        "--min-p", "0.1", "--repeat-penalty", "1.1", "--seed",  "7",
                        NULL};
  g_autofree char *want =
      wh_app_test_cli_reply(cli_path, model_path, msgs, branch->len - 1, 24, args);
  g_assert_cmpstr(message(branch->len - 1)->content, ==, want);
  whittle_chat_page_set_sampling(page, 0, 24);
}

static void
test_search_and_export(void)
{
  whittle_chat_page_set_search(page, "red ball");
  g_assert_cmpuint(whittle_chat_page_get_n_listed(page), ==, 1);
  whittle_chat_page_set_search(page, "no conversation says this");
  g_assert_cmpuint(whittle_chat_page_get_n_listed(page), ==, 0);
  whittle_chat_page_set_search(page, "");
  g_assert_cmpuint(whittle_chat_page_get_n_listed(page), ==, 1);

  g_autoptr(GError) error = NULL;
  g_autofree char *md_path = g_build_filename(tmp_dir, "chat.md", NULL);
  g_autofree char *json_path = g_build_filename(tmp_dir, "chat.json", NULL);
  g_assert_true(whittle_chat_page_export(page, "markdown", md_path, &error));
  g_assert_no_error(error);
  g_assert_true(whittle_chat_page_export(page, "json", json_path, &error));
  g_assert_no_error(error);
  g_autofree char *md = NULL;
  g_assert_true(g_file_get_contents(md_path, &md, NULL, NULL));
  g_assert_true(g_str_has_prefix(md, "# Once upon a time\n"));
  g_assert_nonnull(strstr(md, "## User\n\nTom found a red ball.\n"));
  g_assert_nonnull(strstr(md, message(3)->content));

  g_autoptr(JsonParser) parser = json_parser_new();
  g_assert_true(json_parser_load_from_file(parser, json_path, &error));
  g_assert_no_error(error);
  JsonObject *root = json_node_get_object(json_parser_get_root(parser));
  g_assert_cmpstr(json_object_get_string_member(root, "model"), ==, model_path);
  JsonArray *msgs = json_object_get_array_member(root, "messages");
  GPtrArray *branch = whittle_chat_page_get_branch(page);
  g_assert_cmpuint(json_array_get_length(msgs), ==, branch->len);
  for (guint i = 0; i < branch->len; i++) {
    JsonObject *m = json_array_get_object_element(msgs, i);
    g_assert_cmpstr(json_object_get_string_member(m, "role"), ==, message(i)->role);
    g_assert_cmpstr(json_object_get_string_member(m, "content"), ==, message(i)->content);
  }
}

/* The model menu lists the Library's models (a user folder here) and loads the one chosen. */
static gboolean
models_listed(gpointer data)
{
  return !whittle_chat_page_is_listing_models(data);
}

static void
test_model_menu(void)
{
  g_autofree char *folder = g_build_filename(tmp_dir, "my-models", NULL);
  g_assert_cmpint(g_mkdir_with_parents(folder, 0755), ==, 0);
  g_autofree char *link = g_build_filename(folder, "tiny.gguf", NULL);
  g_assert_cmpint(symlink(model_path, link), ==, 0);
  whittle_preferences_add_library_folder(whittle_application_get_settings(app), folder);
  whittle_chat_page_refresh_models(page);
  g_assert_true(wh_app_test_wait(models_listed, page, 30));
  g_assert_cmpuint(whittle_chat_page_get_n_library_models(page), ==, 1);
  whittle_chat_page_choose_library_model(page, 0);
  g_assert_true(whittle_chat_page_is_loading(page));
  g_assert_true(wh_app_test_wait(wh_app_test_chat_loaded, page, 60));
  g_assert_true(g_str_has_suffix(wh_session_get_model_path(whittle_chat_page_get_session(page)),
                                 "tiny.gguf"));
}

/* A new application object over the same data folder shows the same conversation, and it
 * goes on: the model loads again when a message is sent. */
static void
test_restart(void)
{
  gint64 id = whittle_chat_page_get_conversation(page);
  GPtrArray *branch = whittle_chat_page_get_branch(page);
  g_autoptr(GPtrArray) before = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < branch->len; i++)
    g_ptr_array_add(before, g_strdup(message(i)->content));
  stop_app();

  /* A second application object in one process: GLib says so once. */
  g_test_expect_message("GLib", G_LOG_LEVEL_WARNING, "*g_set_application_name*");
  start_app();
  g_test_assert_expected_messages();
  g_assert_cmpint(whittle_chat_page_get_conversation(page), ==, id);
  g_assert_cmpuint(whittle_chat_page_get_branch(page)->len, ==, before->len);
  for (guint i = 0; i < before->len; i++)
    g_assert_cmpstr(message(i)->content, ==, before->pdata[i]);
  g_assert_cmpuint(whittle_chat_page_get_n_listed(page), ==, 1);
  wh_app_test_screenshot(GTK_WIDGET(window), "chat-restored");

  g_assert_null(whittle_chat_page_get_session(page));
  g_assert_true(whittle_chat_page_send(page, "The end."));
  g_assert_true(wh_app_test_wait(wh_app_test_chat_loaded, page, 60));
  g_assert_true(wh_app_test_wait(wh_app_test_chat_idle, page, 60));
  g_assert_cmpuint(whittle_chat_page_get_branch(page)->len, ==, before->len + 2);
  g_assert_cmpstr(message(before->len + 1)->role, ==, "assistant");
}

static void
skip_all(void)
{
  g_test_skip("no display");
}

int
main(int argc, char **argv)
{
  tmp_dir = g_dir_make_tmp("whittle-chat-XXXXXX", NULL);
  wh_app_test_isolate(tmp_dir); /* before any thread exists */
  /* No session bus: the restarted application registers as a plain local instance. (The first
   * one is still exported on a bus while something keeps a reference to it, so a second
   * WhittleApplication in this process could not register there.) */
  g_setenv("DBUS_SESSION_BUS_ADDRESS", "disabled:", TRUE);
  g_test_init(&argc, &argv, NULL);
  cli_path = g_getenv("WHITTLE_CLI");
  model_path = wh_test_shared_path("models/stories260K.gguf");
  if (!wh_app_test_init_display() || !cli_path ||
      !g_file_test(model_path, G_FILE_TEST_IS_REGULAR)) {
    g_test_add_func("/chat/skip", skip_all);
    return g_test_run();
  }
  start_app();

  g_test_add_func("/chat/greedy-reply", test_greedy_reply);
  g_test_add_func("/chat/second-turn", test_second_turn);
  g_test_add_func("/chat/regenerate-and-edit", test_regenerate_and_edit);
  g_test_add_func("/chat/stop", test_stop);
  g_test_add_func("/chat/sampling-settings", test_sampling_settings);
  g_test_add_func("/chat/search-and-export", test_search_and_export);
  g_test_add_func("/chat/model-menu", test_model_menu);
  g_test_add_func("/chat/restart", test_restart);
  int status = g_test_run();

  stop_app();
  wh_test_rmdir_r(tmp_dir);
  g_free(tmp_dir);
  g_free(model_path);
  return status;
}
