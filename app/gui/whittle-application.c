/* whittle-application.c — see whittle-application.h. */
#include "config.h"

#include <glib/gi18n.h>

#include "whittle-application.h"
#include "whittle-downloads.h"
#include "hub/hub-token.h"
#include "whittle-preferences-window.h"
#include "whittle-window.h"

struct _WhittleApplication {
  AdwApplication parent_instance;

  GSettings *settings;
  wh_job_queue *queue;
  GListStore *jobs;      /* WhittleJobItem, newest first */
  GHashTable *job_items; /* wh_job* → WhittleJobItem* (borrowed from jobs) */
  guint n_active;
  wh_hub *hub; /* NULL when HF_ENDPOINT is unusable */
  wh_library *library;
  WhittleDownloads *downloads; /* NULL without a hub */
  char **library_folders;      /* as last applied to the library */
};

G_DEFINE_FINAL_TYPE(WhittleApplication, whittle_application, ADW_TYPE_APPLICATION)

enum { PROP_0, PROP_N_ACTIVE, N_PROPS };
static GParamSpec *props[N_PROPS];

enum { JOB_FINISHED, N_SIGNALS };
static guint signals[N_SIGNALS];

/* --- Jobs ---------------------------------------------------------------- */

static void
set_n_active(WhittleApplication *self, guint n)
{
  if (self->n_active == n)
    return;
  self->n_active = n;
  g_object_notify_by_pspec(G_OBJECT(self), props[PROP_N_ACTIVE]);
}

static void
recount_active(WhittleApplication *self)
{
  guint n = 0, n_items = g_list_model_get_n_items(G_LIST_MODEL(self->jobs));
  for (guint i = 0; i < n_items; i++) {
    g_autoptr(WhittleJobItem) item = g_list_model_get_item(G_LIST_MODEL(self->jobs), i);
    if (!whittle_job_item_get_finished(item))
      n++;
  }
  set_n_active(self, n);

  /* Clear Finished is only useful when something finished. */
  GAction *clear = g_action_map_lookup_action(G_ACTION_MAP(self), "clear-jobs");
  if (clear)
    g_simple_action_set_enabled(G_SIMPLE_ACTION(clear), n < n_items);
}

/* Queue observer: runs on the main context for every change of every job. */
static void
on_job_changed(wh_job *job, gpointer user_data)
{
  WhittleApplication *self = user_data;
  WhittleJobItem *item = g_hash_table_lookup(self->job_items, job);
  gboolean was_finished = item != NULL && whittle_job_item_get_finished(item);

  if (item == NULL) {
    g_autoptr(WhittleJobItem) created = whittle_job_item_new(job);
    item = created;
    g_hash_table_insert(self->job_items, job, created);
    g_list_store_insert(self->jobs, 0, created);
  } else {
    whittle_job_item_update(item);
  }
  recount_active(self);

  if (!was_finished && whittle_job_item_get_finished(item))
    g_signal_emit(self, signals[JOB_FINISHED], 0, item);
}

void
whittle_application_clear_finished_jobs(WhittleApplication *self)
{
  g_return_if_fail(WHITTLE_IS_APPLICATION(self));

  guint i = 0;
  while (i < g_list_model_get_n_items(G_LIST_MODEL(self->jobs))) {
    g_autoptr(WhittleJobItem) item = g_list_model_get_item(G_LIST_MODEL(self->jobs), i);
    if (whittle_job_item_get_finished(item)) {
      g_hash_table_remove(self->job_items, whittle_job_item_get_job(item));
      g_list_store_remove(self->jobs, i);
    } else {
      i++;
    }
  }
  recount_active(self);
}

void
whittle_application_forget_job(WhittleApplication *self, wh_job *job)
{
  g_return_if_fail(WHITTLE_IS_APPLICATION(self));
  WhittleJobItem *item = g_hash_table_lookup(self->job_items, job);
  guint pos;
  if (item == NULL)
    return;
  if (g_list_store_find(self->jobs, item, &pos))
    g_list_store_remove(self->jobs, pos); /* drops the last reference after the lookup */
  g_hash_table_remove(self->job_items, job);
  recount_active(self);
}

static void
forget_job(wh_job *job, gpointer user_data)
{
  whittle_application_forget_job(user_data, job);
}

/* Keeps the library's user folders equal to the preferences. */
static void
sync_library_folders(WhittleApplication *self)
{
  g_auto(GStrv) folders = g_settings_get_strv(self->settings, "library-folders");
  for (guint i = 0; folders[i]; i++)
    wh_library_add_folder(self->library, folders[i]);
  g_auto(GStrv) old = g_strdupv(self->library_folders);
  for (guint i = 0; old && old[i]; i++)
    if (!g_strv_contains((const char *const *)folders, old[i]))
      wh_library_remove_folder(self->library, old[i]);
  g_strfreev(self->library_folders);
  self->library_folders = g_strdupv(folders);
}

/* The token: looked up in a thread (D-Bus may be slow); the hub keeps what wh_hub_new()
 * found (HF_TOKEN, token file) until then. Not a user job: no row in the
 * jobs popover. The app holds a reference until the thread is done, so the hub outlives it. */
static void
load_token_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  WhittleApplication *self = source;
  /* Keyring, then HF_TOKEN, then the token file: after a change in the preferences the
   * token may be in any of them (the file when no keyring runs), or gone. */
  g_autoptr(wh_hub_token_info) info =
      wh_hub_token_load(wh_hub_get_endpoint(self->hub), NULL, cancellable);
  wh_hub_set_token(self->hub, info->token);
  g_task_return_boolean(task, TRUE);
}

void
whittle_application_reload_token(WhittleApplication *self)
{
  g_return_if_fail(WHITTLE_IS_APPLICATION(self));
  if (self->hub == NULL)
    return;
  g_autoptr(GTask) task = g_task_new(self, NULL, NULL, NULL);
  g_task_set_source_tag(task, whittle_application_reload_token);
  g_application_hold(G_APPLICATION(self)); /* released when the task is done */
  g_task_run_in_thread(task, load_token_thread);
  g_signal_connect_swapped(task, "notify::completed", G_CALLBACK(g_application_release), self);
}

typedef struct {
  gboolean fail;
  guint step_ms;
} TestJob;

/* The dummy job behind app.test-job: 20 steps of step_ms (30 ms for the
 * action), 1 MiB each. */
static gboolean
run_test_job(wh_job *job, gpointer user_data, GError **error)
{
  const TestJob *test = user_data;
  const guint steps = 20;
  const guint64 chunk = 1024 * 1024;

  for (guint i = 1; i <= steps; i++) {
    if (wh_job_is_cancelled(job))
      return FALSE;
    g_usleep(test->step_ms * 1000);
    g_autofree char *status = g_strdup_printf(_("Step %u of %u"), i, steps);
    wh_job_set_progress(job, i * chunk, steps * chunk, status);
    if (test->fail && i == steps / 2) {
      g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                          _("The test job failed on purpose half-way. Nothing to fix: "
                            "this only checks that errors reach the jobs list."));
      return FALSE;
    }
  }
  return TRUE;
}

wh_job *
whittle_application_submit_test_job(WhittleApplication *self, gboolean fail, guint step_ms)
{
  g_return_val_if_fail(WHITTLE_IS_APPLICATION(self), NULL);
  g_return_val_if_fail(self->queue != NULL, NULL);

  TestJob *test = g_new0(TestJob, 1);
  test->fail = fail;
  test->step_ms = step_ms ? step_ms : 30;
  return wh_job_queue_submit(self->queue, WH_JOB_DOWNLOAD,
                             fail ? _("Test download that fails") : _("Test download"),
                             run_test_job, test, g_free, NULL, NULL);
}

/* --- Actions ------------------------------------------------------------- */

static void
action_quit(GSimpleAction *action, GVariant *param, gpointer user_data)
{
  GApplication *app = user_data;
  /* Close windows one by one so each saves its state (and asks first when
   * jobs run); the application ends with its last window. */
  GList *windows = gtk_application_get_windows(GTK_APPLICATION(app));
  if (windows == NULL)
    g_application_quit(app);
  while (windows) {
    GtkWindow *window = windows->data;
    windows = windows->next;
    gtk_window_close(window);
  }
}

static void
action_preferences(GSimpleAction *action, GVariant *param, gpointer user_data)
{
  WhittleApplication *self = user_data;
  GtkWindow *parent = gtk_application_get_active_window(GTK_APPLICATION(self));
  WhittlePreferencesWindow *prefs = whittle_preferences_window_new(self->settings);

  gtk_window_set_transient_for(GTK_WINDOW(prefs), parent);
  gtk_window_present(GTK_WINDOW(prefs));
}

static void
action_help(GSimpleAction *action, GVariant *param, gpointer user_data)
{
  GtkWindow *parent = gtk_application_get_active_window(GTK_APPLICATION(user_data));
  gtk_show_uri(parent, "help:whittle", GDK_CURRENT_TIME);
}

static void
action_about(GSimpleAction *action, GVariant *param, gpointer user_data)
{
  GtkWindow *parent = gtk_application_get_active_window(GTK_APPLICATION(user_data));
  const char *developers[] = {"The Whittle developers", NULL};

  GtkWidget *about = g_object_new(
      ADW_TYPE_ABOUT_WINDOW, "transient-for", parent, "modal", TRUE, "application-name",
      _("Whittle"), "application-icon", APPLICATION_ID, "developer-name",
      _("The Whittle developers"), "version", PACKAGE_VERSION, "comments",
      _("Download, shrink and chat with language models on your own computer."), "website",
      "https://github.com/whittle/whittle", "issue-url",
      "https://github.com/whittle/whittle/issues", "license-type", GTK_LICENSE_GPL_3_0, "copyright",
      "© 2026 The Whittle developers", "developers", developers,
      /* Translators: put your names here, one per line */
      "translator-credits", _("translator-credits"), NULL);
  gtk_window_present(GTK_WINDOW(about));
}

static void
action_test_job(GSimpleAction *action, GVariant *param, gpointer user_data)
{
  wh_job *job = whittle_application_submit_test_job(user_data, g_variant_get_boolean(param), 0);
  wh_job_unref(job);
}

static void
action_clear_jobs(GSimpleAction *action, GVariant *param, gpointer user_data)
{
  whittle_application_clear_finished_jobs(user_data);
}

static const GActionEntry app_actions[] = {
    {.name = "clear-jobs", .activate = action_clear_jobs},
    {.name = "quit", .activate = action_quit},
    {.name = "preferences", .activate = action_preferences},
    {.name = "help", .activate = action_help},
    {.name = "about", .activate = action_about},
};

/* --- GApplication -------------------------------------------------------- */

static void
whittle_application_startup(GApplication *app)
{
  WhittleApplication *self = WHITTLE_APPLICATION(app);

  G_APPLICATION_CLASS(whittle_application_parent_class)->startup(app);

  g_set_application_name(_("Whittle"));
  self->settings = g_settings_new(BASE_APPLICATION_ID);
  gtk_window_set_default_icon_name(APPLICATION_ID);

  g_action_map_add_action_entries(G_ACTION_MAP(app), app_actions, G_N_ELEMENTS(app_actions), app);
  if (g_strcmp0(g_getenv("WHITTLE_TEST_HOOKS"), "1") == 0) {
    g_autoptr(GSimpleAction) test = g_simple_action_new("test-job", G_VARIANT_TYPE_BOOLEAN);
    g_signal_connect(test, "activate", G_CALLBACK(action_test_job), app);
    g_action_map_add_action(G_ACTION_MAP(app), G_ACTION(test));
  }

  const struct {
    const char *action;
    const char *accels[2];
  } accels[] = {
      {"app.quit", {"<Control>q", NULL}},
      {"app.preferences", {"<Control>comma", NULL}},
      {"app.help", {"F1", NULL}},
      {"win.show-page::browse", {"<Control>1", NULL}},
      {"win.show-page::library", {"<Control>2", NULL}},
      {"win.show-page::quantize", {"<Control>3", NULL}},
      {"win.show-page::chat", {"<Control>4", NULL}},
      {"win.show-page::planner", {"<Control>5", NULL}},
  };
  for (gsize i = 0; i < G_N_ELEMENTS(accels); i++)
    gtk_application_set_accels_for_action(GTK_APPLICATION(app), accels[i].action, accels[i].accels);

  g_simple_action_set_enabled(
      G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(app), "clear-jobs")), FALSE);

  self->queue = wh_job_queue_new(NULL, 0);
  /* Compute jobs use every core: at niceness 10 they leave the UI thread and the display
   * server what they need for each frame (tests/bench/bench-mainloop.sh measured p99
   * main-loop gaps of ~21-25 ms instead of ~40-70 ms on a loaded machine). */
  wh_job_queue_set_compute_nice(self->queue, 10);
  /* And under SCHED_IDLE: a niced worker still keeps its core until its slice ends when the
   * UI thread wakes for a frame (bench-mainloop: the main thread waited for a CPU for about
   * half of every gap over 16 ms); an idle-policy one gives it up at once. */
  wh_job_queue_set_compute_idle(self->queue, TRUE);
  wh_job_queue_set_observer(self->queue, on_job_changed, self);

  /* The library of local models, with the folders of the preferences. */
  wh_library_params lp;
  wh_library_default_params(&lp);
  g_auto(GStrv) folders = g_settings_get_strv(self->settings, "library-folders");
  lp.folders = (const char *const *)folders;
  self->library = wh_library_new(&lp);
  self->library_folders = g_strdupv(folders);
  g_signal_connect_swapped(self->settings, "changed::library-folders",
                           G_CALLBACK(sync_library_folders), self);

  /* One hub client for the app (thread-safe); downloads continue from the last run. */
  g_autoptr(GError) error = NULL;
  self->hub = wh_hub_new(NULL, &error);
  if (self->hub == NULL) {
    g_warning("Hugging Face is not available: %s", error->message);
  } else {
    self->downloads = whittle_downloads_new(self->settings, self->hub, self->library, self->queue,
                                            forget_job, self);
    whittle_downloads_restore(self->downloads);
    whittle_application_reload_token(self);
  }
}

static void
whittle_application_shutdown(GApplication *app)
{
  WhittleApplication *self = WHITTLE_APPLICATION(app);

  if (self->queue) {
    wh_job_queue_set_observer(self->queue, NULL, NULL);
    g_clear_pointer(&self->queue, wh_job_queue_free);
  }
  /* After the queue: no job of theirs runs or notifies any more. */
  g_clear_object(&self->downloads);
  g_clear_pointer(&self->hub, wh_hub_free);
  g_clear_pointer(&self->library, wh_library_free);
  G_APPLICATION_CLASS(whittle_application_parent_class)->shutdown(app);
}

static void
whittle_application_activate(GApplication *app)
{
  GtkWindow *window = gtk_application_get_active_window(GTK_APPLICATION(app));

  if (window == NULL)
    window = GTK_WINDOW(whittle_window_new(WHITTLE_APPLICATION(app)));
  gtk_window_present(window);
}

static int
whittle_application_handle_local_options(GApplication *app, GVariantDict *options)
{
  if (g_variant_dict_contains(options, "version")) {
    g_print("whittle %s\n", PACKAGE_VERSION);
    return 0;
  }
  return -1;
}

static void
whittle_application_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  WhittleApplication *self = WHITTLE_APPLICATION(object);

  switch (prop_id) {
  case PROP_N_ACTIVE:
    g_value_set_uint(value, self->n_active);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void
whittle_application_dispose(GObject *object)
{
  WhittleApplication *self = WHITTLE_APPLICATION(object);

  if (self->queue) {
    wh_job_queue_set_observer(self->queue, NULL, NULL);
    g_clear_pointer(&self->queue, wh_job_queue_free);
  }
  g_clear_object(&self->downloads);
  g_clear_pointer(&self->hub, wh_hub_free);
  g_clear_pointer(&self->library, wh_library_free);
  g_clear_pointer(&self->library_folders, g_strfreev);
  g_clear_pointer(&self->job_items, g_hash_table_unref);
  g_clear_object(&self->jobs);
  g_clear_object(&self->settings);
  G_OBJECT_CLASS(whittle_application_parent_class)->dispose(object);
}

static void
whittle_application_class_init(WhittleApplicationClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GApplicationClass *app_class = G_APPLICATION_CLASS(klass);

  object_class->dispose = whittle_application_dispose;
  object_class->get_property = whittle_application_get_property;
  app_class->startup = whittle_application_startup;
  app_class->shutdown = whittle_application_shutdown;
  app_class->activate = whittle_application_activate;
  app_class->handle_local_options = whittle_application_handle_local_options;

  props[PROP_N_ACTIVE] = g_param_spec_uint("n-active", NULL, NULL, 0, G_MAXUINT, 0,
                                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties(object_class, N_PROPS, props);

  signals[JOB_FINISHED] = g_signal_new("job-finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
                                       0, NULL, NULL, NULL, G_TYPE_NONE, 1, WHITTLE_TYPE_JOB_ITEM);
}

static void
whittle_application_init(WhittleApplication *self)
{
  g_application_add_main_option(G_APPLICATION(self), "version", 0, G_OPTION_FLAG_NONE,
                                G_OPTION_ARG_NONE, _("Print the version and exit"), NULL);
  self->jobs = g_list_store_new(WHITTLE_TYPE_JOB_ITEM);
  self->job_items = g_hash_table_new(g_direct_hash, g_direct_equal);
}

gboolean
whittle_application_check_schema(GError **error)
{
  GSettingsSchemaSource *source = g_settings_schema_source_get_default();
  g_autoptr(GSettingsSchema) schema =
      source ? g_settings_schema_source_lookup(source, BASE_APPLICATION_ID, TRUE) : NULL;

  if (schema == NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                _("The settings schema %s is not installed. Install Whittle, or run it from "
                  "the build folder with “meson devenv -C _build ./app/gui/whittle”."),
                BASE_APPLICATION_ID);
    return FALSE;
  }
  return TRUE;
}

WhittleApplication *
whittle_application_new(GApplicationFlags flags)
{
  return g_object_new(WHITTLE_TYPE_APPLICATION, "application-id", APPLICATION_ID, "flags", flags,
                      "resource-base-path", "/io/github/whittle/Whittle", NULL);
}

GSettings *
whittle_application_get_settings(WhittleApplication *self)
{
  g_return_val_if_fail(WHITTLE_IS_APPLICATION(self), NULL);
  return self->settings;
}

wh_job_queue *
whittle_application_get_job_queue(WhittleApplication *self)
{
  g_return_val_if_fail(WHITTLE_IS_APPLICATION(self), NULL);
  return self->queue;
}

GListModel *
whittle_application_get_jobs(WhittleApplication *self)
{
  g_return_val_if_fail(WHITTLE_IS_APPLICATION(self), NULL);
  return G_LIST_MODEL(self->jobs);
}

guint
whittle_application_get_n_active(WhittleApplication *self)
{
  g_return_val_if_fail(WHITTLE_IS_APPLICATION(self), 0);
  return self->n_active;
}

wh_hub *
whittle_application_get_hub(WhittleApplication *self)
{
  g_return_val_if_fail(WHITTLE_IS_APPLICATION(self), NULL);
  return self->hub;
}

WhittleDownloads *
whittle_application_get_downloads(WhittleApplication *self)
{
  g_return_val_if_fail(WHITTLE_IS_APPLICATION(self), NULL);
  return self->downloads;
}

wh_library *
whittle_application_get_library(WhittleApplication *self)
{
  g_return_val_if_fail(WHITTLE_IS_APPLICATION(self), NULL);
  return self->library;
}
