/* test-chat-gpu.c — the Chat page offloads layers to a GPU, and says where the model runs.
 *
 * With the GPU Offload preference on Automatic (the default), stories260K is loaded through
 * win.open-chat: where a GPU is present the session gets the planner's automatic layer count
 * on it and the status line says "N of M layers on <GPU>" (a Vulkan device that runs on the
 * processor, lavapipe, is used once it is the preferred GPU: Automatic alone keeps the CPU and
 * says why); the greedy reply equals `whittle-cli run --temp 0 --ngl N --device <the same
 * device>` (the same backend: CPU and Vulkan may round differently). A conversation's own GPU
 * layers (the settings popover) reload the model with that many layers, are saved with the
 * conversation (a new one keeps the loaded model's; showing one with other layers reloads),
 * and the reply again equals run with them. With the preference Off (set
 * through the Preferences window) the model runs on the CPU, the page says why, and the reply
 * equals plain `whittle-cli run --temp 0`. Without any GPU the page says that instead.
 * Layers the GPU cannot run (a q8_0 KV cache on Vulkan) stay on the CPU with the engine's reason.
 * A conversation database from before the GPU column opens with it (Automatic). Screenshot:
 * chat-gpu.
 */
#include "config.h"

#include <sqlite3.h>
#include <string.h>

#include "app-test-util.h"
#include "backend/devices.h"
#include "planner/planner.h"
#include "wh-test-util.h"
#include "whittle-chat-page.h"
#include "whittle-preferences-window.h"

static WhittleApplication *app;
static WhittleWindow *window;
static WhittleChatPage *page;
static char *tmp_dir;
static char *model_path;
static const char *cli_path;
static wh_device_list *devices;
static const wh_device *gpu;      /* the best GPU of this machine, or NULL */
static gint64 first_conversation; /* set to 2 GPU layers */

static wh_session *
session(void)
{
  return whittle_chat_page_get_session(page);
}

/* The context's device name the page chose ("vulkan:N", "cuda:N" or ""). */
static const char *
session_device(void)
{
  return wh_context_get_params(wh_session_get_context(session()))->device;
}

/* Sends @text in a new conversation with temperature 0 and returns the reply (owned by the
 * page's branch). */
static const char *
greedy_reply(const char *text)
{
  whittle_chat_page_set_sampling(page, 0, 24);
  g_assert_true(whittle_chat_page_send(page, text));
  g_assert_true(wh_app_test_wait(wh_app_test_chat_loaded, page, 60));
  g_assert_true(wh_app_test_wait(wh_app_test_chat_idle, page, 60));
  GPtrArray *branch = whittle_chat_page_get_branch(page);
  g_assert_cmpuint(branch->len, >=, 2);
  const WhittleStoredMessage *last = branch->pdata[branch->len - 1];
  g_assert_cmpstr(last->role, ==, "assistant");
  g_assert_cmpuint(strlen(last->content), >, 0);
  return last->content;
}

/* What `whittle-cli run --temp 0` answers to the one user message @text with the GPU layers
 * and device the page's session uses. */
static char *
cli_reply_like_session(const char *text)
{
  wh_chat_message msg = {"user", text};
  return wh_app_test_cli_greedy_reply_like(cli_path, model_path, session(), &msg, 1, 24);
}

static guint32
model_layers(void)
{
  return wh_model_get_hparams(wh_session_get_model(session()))->n_layer + 1;
}

/* The planner's automatic layer count for the model on @gpu, as the page is to ask for. */
static int
planned_layers(void)
{
  const wh_model_hparams *hp = wh_model_get_hparams(wh_session_get_model(session()));
  wh_planner_params pp = wh_planner_default_params();
  pp.n_ctx = wh_session_get_n_ctx(session());
  pp.n_gpu_layers = WH_PLANNER_NGL_AUTO;
  pp.device = session_device();
  wh_plan plan;
  g_autoptr(GError) error = NULL;
  g_assert_true(wh_planner_compute(hp, devices, &pp, &plan, &error));
  g_assert_no_error(error);
  return (int)plan.n_gpu_layers;
}

static void
test_automatic(void)
{
  g_assert_true(g_str_has_prefix(g_get_user_data_dir(), tmp_dir)); /* isolated */
  g_autofree char *mode =
      g_settings_get_string(whittle_application_get_settings(app), "gpu-offload");
  g_assert_cmpstr(mode, ==, "auto"); /* the default */
  gtk_widget_activate_action(GTK_WIDGET(window), "win.open-chat", "s", model_path);
  g_assert_true(whittle_chat_page_is_loading(page)); /* planning, then loading */
  g_assert_true(wh_app_test_wait(wh_app_test_chat_loaded, page, 60));
  g_assert_null(whittle_chat_page_get_load_error(page));
  const char *note = whittle_chat_page_get_device_note(page);
  const char *status = whittle_chat_page_get_status(page);
  g_test_message("device note: %s; status: %s", note, status);

  if (!gpu) {
    g_assert_cmpint(wh_session_get_n_gpu_layers(session()), ==, 0);
    g_assert_cmpstr(note, ==, "Running on the CPU: no graphics card was found.");
    g_assert_cmpstr(status, ==, "Ready · CPU only: no graphics card was found");
    return;
  }
  if (gpu->kind == WH_DEVICE_KIND_CPU_VULKAN) {
    /* Only a Vulkan device that runs on the processor (lavapipe): Automatic keeps the CPU
     * code, says why, and uses the device once it is the preferred GPU. */
    g_assert_cmpint(wh_session_get_n_gpu_layers(session()), ==, 0);
    g_autofree char *why = g_strdup_printf(
        "the only Vulkan device, %s, runs on the processor and is not faster (choose it as "
        "Preferred GPU to use it anyway)",
        gpu->name);
    g_autofree char *want_note = g_strdup_printf("Running on the CPU: %s.", why);
    g_autofree char *want_cpu = g_strdup_printf("Ready · CPU only: %s", why);
    g_assert_cmpstr(note, ==, want_note);
    g_assert_cmpstr(status, ==, want_cpu);
    g_settings_set_string(whittle_application_get_settings(app), "preferred-gpu", gpu->name);
    gtk_widget_activate_action(GTK_WIDGET(window), "win.open-chat", "s", model_path);
    g_assert_true(wh_app_test_wait(wh_app_test_chat_loaded, page, 60));
    note = whittle_chat_page_get_device_note(page);
    status = whittle_chat_page_get_status(page);
    g_test_message("preferred GPU: device note: %s; status: %s", note, status);
  }
  /* The planner's count on this machine's best GPU, named by API and index. */
  g_autofree char *want_device =
      g_strdup_printf("%s:%u", gpu->api == WH_DEVICE_API_CUDA ? "cuda" : "vulkan", gpu->index);
  g_assert_cmpstr(session_device(), ==, want_device);
  int n = wh_session_get_n_gpu_layers_requested(session());
  g_assert_cmpint(n, ==, planned_layers());
  g_assert_cmpint(n, ==, (int)model_layers()); /* a 260K model fits whole */
  g_assert_cmpint(wh_session_get_n_gpu_layers(session()), ==, n);
  const wh_session_device *devs = NULL;
  g_assert_cmpuint(wh_session_get_devices(session(), &devs), ==, 2);
  g_assert_cmpstr(devs[1].name, ==, gpu->name);
  g_autofree char *want_status =
      g_strdup_printf("Ready · %d of %u layers on %s", n, model_layers(), gpu->name);
  g_assert_cmpstr(status, ==, want_status);
  g_assert_cmpstr(note, ==, wh_session_get_device_note(session()));

  const char *reply = greedy_reply("Once upon a time");
  g_autofree char *want = cli_reply_like_session("Once upon a time");
  g_test_message("reply on %s: %s", session_device(), reply);
  g_assert_cmpstr(reply, ==, want);
  wh_app_test_check_accessible_names(GTK_WIDGET(page));
  wh_app_test_screenshot(GTK_WIDGET(window), "chat-gpu");
}

/* The conversation's own GPU layers: saved with it, and the model is loaded again with them
 * (part on the GPU, the rest on the CPU). */
static void
test_per_chat_layers(void)
{
  if (!gpu) {
    g_test_skip("no GPU device: nothing to offload");
    return;
  }
  gint64 id = whittle_chat_page_get_conversation(page);
  g_assert_cmpint(id, >, 0);
  first_conversation = id;
  whittle_chat_page_set_gpu_layers(page, 2);
  g_assert_true(whittle_chat_page_is_loading(page)); /* reloading with 2 layers */
  g_assert_true(wh_app_test_wait(wh_app_test_chat_loaded, page, 60));
  g_autoptr(WhittleConversation) c =
      whittle_conversation_store_get(whittle_chat_page_get_store(page), id, NULL);
  g_assert_cmpint(c->gpu_layers, ==, 2);
  g_assert_cmpint(wh_session_get_n_gpu_layers_requested(session()), ==, 2);
  g_assert_cmpint(wh_session_get_n_gpu_layers(session()), ==, 2);
  g_autofree char *want_status =
      g_strdup_printf("Ready · 2 of %u layers on %s", model_layers(), gpu->name);
  g_assert_cmpstr(whittle_chat_page_get_status(page), ==, want_status);

  /* A new conversation keeps the loaded model's layers: nothing to reload. */
  whittle_chat_page_new_conversation(page);
  g_assert_false(whittle_chat_page_is_loading(page));
  whittle_chat_page_set_gpu_layers(page, 2);
  g_assert_false(whittle_chat_page_is_loading(page));
  const char *reply = greedy_reply("The dog ran to the park.");
  g_autofree char *want = cli_reply_like_session("The dog ran to the park.");
  g_assert_cmpstr(reply, ==, want);
  g_autoptr(WhittleConversation) c2 = whittle_conversation_store_get(
      whittle_chat_page_get_store(page), whittle_chat_page_get_conversation(page), NULL);
  g_assert_cmpint(c2->gpu_layers, ==, 2);

  /* The first conversation, shown again, brings back its setting. */
  whittle_chat_page_select_conversation(page, id);
  g_autoptr(WhittleConversation) c3 =
      whittle_conversation_store_get(whittle_chat_page_get_store(page), id, NULL);
  g_assert_cmpint(c3->gpu_layers, ==, 2);
}

static gboolean
is_offload_row(GtkWidget *w, gconstpointer data)
{
  (void)data;
  return ADW_IS_COMBO_ROW(w) &&
         g_strcmp0(adw_preferences_row_get_title(ADW_PREFERENCES_ROW(w)), "GPU _Offload") == 0;
}

/* GPU Offload: Off in the Preferences → the CPU, and the page says why. */
static void
test_offload_off(void)
{
  GSettings *settings = whittle_application_get_settings(app);
  WhittlePreferencesWindow *prefs = whittle_preferences_window_new(settings);
  AdwComboRow *row = ADW_COMBO_ROW(wh_app_test_find(GTK_WIDGET(prefs), is_offload_row, NULL));
  g_assert_nonnull(row);
  g_assert_cmpuint(adw_combo_row_get_selected(row), ==, 0); /* Automatic */
  adw_combo_row_set_selected(row, 1);                       /* Off */
  g_autofree char *mode = g_settings_get_string(settings, "gpu-offload");
  g_assert_cmpstr(mode, ==, "off");
  gtk_window_destroy(GTK_WINDOW(prefs));

  /* A new conversation with automatic layers: the model loads again, on the CPU. */
  whittle_chat_page_new_conversation(page);
  whittle_chat_page_set_gpu_layers(page, -1);
  g_assert_true(whittle_chat_page_is_loading(page));
  g_assert_true(wh_app_test_wait(wh_app_test_chat_loaded, page, 60));
  g_assert_cmpint(wh_session_get_n_gpu_layers(session()), ==, 0);
  g_assert_cmpstr(whittle_chat_page_get_device_note(page), ==,
                  "Running on the CPU: GPU offload is off in the Preferences.");
  g_assert_cmpstr(whittle_chat_page_get_status(page), ==,
                  "Ready · CPU only: GPU offload is off in the Preferences");
  const char *reply = greedy_reply("Once upon a time");
  wh_chat_message msg = {"user", "Once upon a time"};
  g_autofree char *want = wh_app_test_cli_greedy_reply(cli_path, model_path, &msg, 1, 24);
  g_assert_cmpstr(reply, ==, want);

  /* A conversation's own count still wins over Off. */
  if (gpu) {
    whittle_chat_page_set_gpu_layers(page, 1);
    g_assert_true(wh_app_test_wait(wh_app_test_chat_loaded, page, 60));
    g_assert_cmpint(wh_session_get_n_gpu_layers(session()), ==, 1);
  }
  /* And 0 is the CPU, with that reason. */
  whittle_chat_page_set_gpu_layers(page, 0);
  g_assert_true(wh_app_test_wait(wh_app_test_chat_loaded, page, 60));
  g_assert_cmpint(wh_session_get_n_gpu_layers(session()), ==, 0);
  g_assert_cmpstr(whittle_chat_page_get_device_note(page), ==,
                  "Running on the CPU: this chat’s GPU layers are set to 0.");
  /* Showing the first conversation again loads the model with its 2 layers. */
  if (gpu) {
    whittle_chat_page_select_conversation(page, first_conversation);
    g_assert_true(whittle_chat_page_is_loading(page));
    g_assert_true(wh_app_test_wait(wh_app_test_chat_loaded, page, 60));
    g_assert_cmpint(wh_session_get_n_gpu_layers(session()), ==, 2);
  }
  g_settings_reset(settings, "gpu-offload");
}

static gboolean
is_gpu_layers_box(GtkWidget *w, gconstpointer data)
{
  (void)data;
  if (!GTK_IS_SPIN_BUTTON(w))
    return FALSE;
  g_autofree char *mismatch = gtk_test_accessible_check_property(
      GTK_ACCESSIBLE(w), GTK_ACCESSIBLE_PROPERTY_LABEL, "GPU layers");
  return mismatch == NULL;
}

/* The settings popover's GPU layers box: “Auto” for automatic, typed numbers and “auto”
 * taken back, at most the model's layers + 1. */
static void
test_layers_box(void)
{
  GtkSpinButton *spin =
      GTK_SPIN_BUTTON(wh_app_test_find(GTK_WIDGET(page), is_gpu_layers_box, NULL));
  g_assert_nonnull(spin);
  whittle_chat_page_set_gpu_layers(page, -1);
  g_assert_true(wh_app_test_wait(wh_app_test_chat_loaded, page, 60));
  g_assert_cmpstr(gtk_editable_get_text(GTK_EDITABLE(spin)), ==, "Auto");
  g_assert_cmpfloat(gtk_adjustment_get_upper(gtk_spin_button_get_adjustment(spin)), ==,
                    model_layers());
  gtk_editable_set_text(GTK_EDITABLE(spin), "3");
  gtk_spin_button_update(spin);
  g_assert_cmpint(gtk_spin_button_get_value_as_int(spin), ==, 3);
  gtk_editable_set_text(GTK_EDITABLE(spin), "99");
  gtk_spin_button_update(spin);
  g_assert_cmpint(gtk_spin_button_get_value_as_int(spin), ==, (int)model_layers());
  gtk_editable_set_text(GTK_EDITABLE(spin), "auto");
  gtk_spin_button_update(spin);
  g_assert_cmpint(gtk_spin_button_get_value_as_int(spin), ==, -1);
  g_assert_cmpstr(gtk_editable_get_text(GTK_EDITABLE(spin)), ==, "Auto");
}

/* Layers asked for that the GPU cannot run stay on the CPU, and the page gives the engine's
 * reason: here a q8_0 KV cache (the Preferences' conversation memory), which Vulkan does not
 * hold. */
static void
test_engine_reason(void)
{
  if (!gpu || gpu->api != WH_DEVICE_API_VULKAN) {
    g_test_skip("needs a Vulkan device");
    return;
  }
  GSettings *settings = whittle_application_get_settings(app);
  g_settings_set_string(settings, "default-kv-type", "q8_0");
  whittle_chat_page_set_gpu_layers(page, 3);
  g_assert_true(wh_app_test_wait(wh_app_test_chat_loaded, page, 60));
  g_assert_cmpint(wh_session_get_n_gpu_layers_requested(session()), ==, 3);
  g_assert_cmpint(wh_session_get_n_gpu_layers(session()), ==, 0);
  const char *why = wh_context_get_gpu_note(wh_session_get_context(session()));
  g_assert_nonnull(why);
  g_test_message("status: %s", whittle_chat_page_get_status(page));
  g_assert_true(g_str_has_prefix(whittle_chat_page_get_status(page), "Ready · CPU only: "));
  g_assert_nonnull(strstr(whittle_chat_page_get_status(page), "q8_0"));
  g_assert_cmpstr(whittle_chat_page_get_device_note(page), ==,
                  wh_session_get_device_note(session()));
  g_assert_true(g_str_has_prefix(whittle_chat_page_get_device_note(page), "Running on the CPU: "));

  /* Automatic: the planner already knows, and its note is the reason. */
  whittle_chat_page_set_gpu_layers(page, -1);
  g_assert_true(wh_app_test_wait(wh_app_test_chat_loaded, page, 60));
  g_assert_cmpint(wh_session_get_n_gpu_layers_requested(session()), ==, 0);
  wh_planner_params pp = wh_planner_default_params();
  pp.n_ctx = wh_session_get_n_ctx(session());
  pp.kv_type = WH_KV_Q8_0;
  pp.n_gpu_layers = WH_PLANNER_NGL_AUTO;
  pp.device = gpu->name;
  wh_plan plan;
  g_assert_true(wh_planner_compute(wh_model_get_hparams(wh_session_get_model(session())), devices,
                                   &pp, &plan, NULL));
  g_assert_cmpuint(plan.n_gpu_layers, ==, 0);
  g_autofree char *want = g_strdup_printf("Ready · CPU only: %s", plan.gpu_note);
  if (g_str_has_suffix(want, "."))
    want[strlen(want) - 1] = '\0';
  g_assert_cmpstr(whittle_chat_page_get_status(page), ==, want);
  g_settings_reset(settings, "default-kv-type");
  whittle_chat_page_open_model(page, model_path);
  g_assert_true(wh_app_test_wait(wh_app_test_chat_loaded, page, 60));
}

/* A conversation database from before the sampling and GPU columns opens with their defaults,
 * and the GPU layers are saved in it from then on. */
static void
test_store_upgrade(void)
{
  g_autofree char *path = g_build_filename(tmp_dir, "old-chats.db", NULL);
  sqlite3 *db = NULL;
  g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
  const char *old_schema =
      "CREATE TABLE conversations (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL "
      "DEFAULT '', model_path TEXT, system_prompt TEXT, temperature REAL NOT NULL DEFAULT -1, "
      "seed INTEGER NOT NULL DEFAULT -1, max_tokens INTEGER NOT NULL DEFAULT 512, active_leaf "
      "INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL, updated INTEGER NOT NULL);"
      "INSERT INTO conversations (title, created, updated) VALUES ('old one', 1, 1);";
  g_assert_cmpint(sqlite3_exec(db, old_schema, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close(db);

  g_autoptr(GError) error = NULL;
  g_autoptr(WhittleConversationStore) store = whittle_conversation_store_new(path, &error);
  g_assert_no_error(error);
  g_autoptr(WhittleConversation) c = whittle_conversation_store_get(store, 1, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(c->title, ==, "old one");
  g_assert_cmpint(c->gpu_layers, ==, -1); /* automatic */
  g_assert_cmpint(c->top_k, ==, 40);
  g_assert_cmpfloat(c->repeat_penalty, ==, 1.0);
  c->gpu_layers = 7;
  g_assert_true(whittle_conversation_store_update(store, c, &error));
  g_clear_object(&store);
  store = whittle_conversation_store_new(path, &error); /* opening again changes nothing */
  g_assert_no_error(error);
  g_autoptr(WhittleConversation) again = whittle_conversation_store_get(store, 1, &error);
  g_assert_cmpint(again->gpu_layers, ==, 7);
}

static void
skip_all(void)
{
  g_test_skip("no display, whittle-cli or shared model");
}

int
main(int argc, char **argv)
{
  tmp_dir = g_dir_make_tmp("whittle-chat-gpu-XXXXXX", NULL);
  wh_app_test_isolate(tmp_dir); /* before any thread exists */
  g_test_init(&argc, &argv, NULL);
  cli_path = g_getenv("WHITTLE_CLI");
  model_path = wh_test_shared_path("models/stories260K.gguf");
  if (!wh_app_test_init_display() || !cli_path ||
      !g_file_test(model_path, G_FILE_TEST_IS_REGULAR)) {
    g_test_add_func("/chat-gpu/skip", skip_all);
    return g_test_run();
  }
  devices = wh_devices_enumerate();
  gpu = wh_device_list_find_gpu(devices, NULL, NULL);
  window = wh_app_test_start(&app, 1000, 760);
  page = WHITTLE_CHAT_PAGE(wh_app_test_find(GTK_WIDGET(window), wh_app_test_is_type,
                                            GSIZE_TO_POINTER(WHITTLE_TYPE_CHAT_PAGE)));
  g_assert_nonnull(page);
  adw_view_stack_set_visible_child_name(whittle_window_get_view_stack(window), "chat");

  g_test_add_func("/chat-gpu/automatic", test_automatic);
  g_test_add_func("/chat-gpu/per-chat-layers", test_per_chat_layers);
  g_test_add_func("/chat-gpu/offload-off", test_offload_off);
  g_test_add_func("/chat-gpu/layers-box", test_layers_box);
  g_test_add_func("/chat-gpu/engine-reason", test_engine_reason);
  g_test_add_func("/chat-gpu/store-upgrade", test_store_upgrade);
  int status = g_test_run();

  gtk_window_destroy(GTK_WINDOW(window));
  wh_app_test_settle(0.2);
  g_clear_object(&app);
  wh_device_list_free(devices);
  wh_test_rmdir_r(tmp_dir);
  g_free(tmp_dir);
  g_free(model_path);
  return status;
}
