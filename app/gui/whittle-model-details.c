/* whittle-model-details.c — see whittle-model-details.h. */
#include "config.h"

#include <glib/gi18n.h>

#include "whittle-fit.h"
#include "whittle-format.h"
#include "whittle-model-details.h"

typedef struct {
  char *quant;      /* may be NULL */
  char *name;       /* variant name (path without split suffix) */
  GPtrArray *files; /* char*: shards then projectors */
  guint64 size;     /* all files */
  GtkWidget *row;   /* AdwActionRow (owned by files_list) */
  GtkLabel *badge;
  GtkButton *download;
  char *badge_text;
  wh_job *fit_job;
  gboolean done;   /* every file downloaded: the button opens the Library */
  gboolean cached; /* every file was already in the hub cache when the details opened */
} Variant;

struct _WhittleModelDetails {
  AdwBin parent_instance;

  WhittleApplication *app; /* borrowed (outlives the window) */
  wh_job_queue *queue;     /* borrowed from the Browse page */
  char *repo_id;
  char *web_uri;
  wh_job *info_job;
  wh_job *card_job;
  GPtrArray *variants; /* Variant* */
  char *filter_quant;
  guint64 filter_max;
  gboolean show_all;
  GtkWidget *hidden_row;
  gulong downloads_handler;
  GCancellable *cancellable; /* the cache check thread; cancelled when another model shows */

  /* template children */
  GtkLabel *title_label;
  GtkSpinner *spinner;
  GtkStack *stack;
  AdwStatusPage *error_page;
  GtkLabel *summary_label;
  GtkWidget *gated_box;
  GtkLabel *gated_label;
  GtkWidget *token_button;
  GtkWidget *access_button;
  GtkListBox *files_list;
  WhittleMarkdownView *card_view;
  GtkLabel *card_status;
};

G_DEFINE_FINAL_TYPE(WhittleModelDetails, whittle_model_details, ADW_TYPE_BIN)

enum { BACK, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
variant_free(Variant *v)
{
  if (v->fit_job) {
    wh_job_cancel(v->fit_job);
    wh_job_unref(v->fit_job);
  }
  g_free(v->quant);
  g_free(v->name);
  g_ptr_array_unref(v->files);
  g_free(v->badge_text);
  g_free(v);
}

static void
update_busy(WhittleModelDetails *self)
{
  gboolean busy = whittle_model_details_is_busy(self);
  gtk_spinner_set_spinning(self->spinner, busy);
  gtk_widget_set_visible(GTK_WIDGET(self->spinner), busy);
}

/* --- Fit badges: remote header → hyper-parameters → planner (in a job) ---------------- */

typedef struct {
  wh_hub *hub;
  char *repo_id, *filename;
  WhittleFitSettings fs;
} FitArgs;

static void
fit_args_free(FitArgs *a)
{
  g_free(a->repo_id);
  g_free(a->filename);
  whittle_fit_settings_clear(&a->fs);
  g_free(a);
}

/* The job: the remote header (a few Range requests), then the planner. */
static gboolean
run_fit(wh_job *job, gpointer user_data, GError **error)
{
  FitArgs *a = user_data;
  wh_job_set_fraction(job, -1, _("Reading the file header"));
  wh_gguf *g = wh_hub_read_gguf_header(a->hub, a->repo_id, NULL, a->filename, NULL,
                                       wh_job_get_cancellable(job), error);
  return g != NULL && whittle_fit_run(job, g, &a->fs, error);
}

static Variant *
variant_for_fit_job(WhittleModelDetails *self, wh_job *job)
{
  for (guint i = 0; self->variants && i < self->variants->len; i++) {
    Variant *v = self->variants->pdata[i];
    if (v->fit_job == job)
      return v;
  }
  return NULL;
}

static void
set_badge(Variant *v, const char *text, const char *css)
{
  g_free(v->badge_text);
  v->badge_text = g_strdup(text);
  whittle_fit_badge_apply(v->badge, text, css);
}

static void
on_fit_notify(wh_job *job, gpointer user_data)
{
  WhittleModelDetails *self = user_data;
  Variant *v = variant_for_fit_job(self, job);
  if (v == NULL || !wh_job_is_finished(job))
    return;

  if (wh_job_get_state(job) == WH_JOB_SUCCEEDED) {
    const char *css = NULL;
    g_autofree char *text = whittle_fit_badge_text(wh_job_get_result(job), &css);
    set_badge(v, text, css);
  } else if (wh_job_get_state(job) == WH_JOB_FAILED) {
    const GError *e = wh_job_get_error(job);
    gboolean locked = e && (g_error_matches(e, WH_HUB_ERROR, WH_HUB_ERROR_AUTH) ||
                            g_error_matches(e, WH_HUB_ERROR, WH_HUB_ERROR_FORBIDDEN));
    /* Gated files cannot be read before access is granted. */
    set_badge(v, locked ? _("Needs access") : _("Fit unknown"), "warning");
    gtk_widget_set_tooltip_text(GTK_WIDGET(v->badge), e ? e->message : NULL);
  }
  g_clear_pointer(&v->fit_job, wh_job_unref);
  update_busy(self);
}

static void
start_fit(WhittleModelDetails *self, Variant *v)
{
  wh_hub *hub = whittle_application_get_hub(self->app);
  GSettings *settings = whittle_application_get_settings(self->app);
  FitArgs *a = g_new0(FitArgs, 1);
  a->hub = hub;
  a->repo_id = g_strdup(self->repo_id);
  a->filename = g_strdup(v->files->pdata[0]);
  whittle_fit_settings_load(&a->fs, settings);
  g_autofree char *title = g_strdup_printf(_("Checking %s"), v->name);
  v->fit_job = wh_job_queue_submit(self->queue, WH_JOB_DOWNLOAD, title, run_fit, a,
                                   (GDestroyNotify)fit_args_free, on_fit_notify, self);
}

/* --- Download buttons ---------------------------------------------------------------- */

static void
sync_download_button(WhittleModelDetails *self, Variant *v)
{
  WhittleDownloads *downloads = whittle_application_get_downloads(self->app);
  guint running = 0, done = 0, failed = 0;
  for (guint i = 0; downloads && i < v->files->len; i++) {
    wh_job *job = whittle_downloads_find(downloads, self->repo_id, NULL, v->files->pdata[i]);
    switch (job ? whittle_downloads_get_state(downloads, job) : WHITTLE_DOWNLOAD_NONE) {
    case WHITTLE_DOWNLOAD_RUNNING:
      running++;
      break;
    case WHITTLE_DOWNLOAD_DONE:
      done++;
      break;
    case WHITTLE_DOWNLOAD_FAILED:
    case WHITTLE_DOWNLOAD_PAUSED:
      failed++;
      break;
    case WHITTLE_DOWNLOAD_NONE:
      break;
    }
  }
  GtkButton *b = v->download;
  const char *label = _("_Download");
  gboolean sensitive = downloads != NULL;
  v->done = done == v->files->len || v->cached;
  if (v->done) {
    label = _("Open in _Library");
  } else if (running > 0) {
    label = _("Downloading…");
    sensitive = FALSE;
  } else if (failed > 0) {
    label = _("_Resume Download");
  }
  gtk_button_set_label(b, label);
  gtk_widget_set_sensitive(GTK_WIDGET(b), sensitive);
  if (done == v->files->len) {
    gtk_widget_remove_css_class(GTK_WIDGET(b), "suggested-action");
  }
  /* "Download m-Q4_K_M.gguf": the label without its mnemonic underscore, and the file. */
  GString *a11y = g_string_new(NULL);
  for (const char *p = label; *p; p++)
    if (*p != '_')
      g_string_append_c(a11y, *p);
  g_string_append_printf(a11y, " %s", v->name);
  gtk_accessible_update_property(GTK_ACCESSIBLE(b), GTK_ACCESSIBLE_PROPERTY_LABEL, a11y->str, -1);
  g_string_free(a11y, TRUE);
}

static void
sync_download_buttons(WhittleModelDetails *self)
{
  for (guint i = 0; self->variants && i < self->variants->len; i++)
    sync_download_button(self, self->variants->pdata[i]);
}

static void
on_download_clicked(GtkButton *button, WhittleModelDetails *self)
{
  Variant *v = g_object_get_data(G_OBJECT(button), "variant");
  WhittleDownloads *downloads = whittle_application_get_downloads(self->app);
  if (v == NULL || downloads == NULL)
    return;
  if (v->done) {
    gtk_widget_activate_action(GTK_WIDGET(self), "win.show-page", "s", "library");
    return;
  }
  for (guint i = 0; i < v->files->len; i++)
    whittle_downloads_start(downloads, self->repo_id, NULL, v->files->pdata[i]);
  sync_download_button(self, v);
}

/* --- Variants -------------------------------------------------------------------------- */

static gboolean
variant_matches(WhittleModelDetails *self, Variant *v)
{
  if (self->filter_quant && g_ascii_strcasecmp(self->filter_quant, v->quant ? v->quant : "") != 0)
    return FALSE;
  return self->filter_max == 0 || v->size <= self->filter_max;
}

static void on_show_all_activated(GtkListBoxRow *row, WhittleModelDetails *self);

static void
apply_filter(WhittleModelDetails *self)
{
  guint hidden = 0;
  for (guint i = 0; self->variants && i < self->variants->len; i++) {
    Variant *v = self->variants->pdata[i];
    gboolean show = self->show_all || variant_matches(self, v);
    gtk_widget_set_visible(v->row, show);
    hidden += !show;
  }
  if (self->hidden_row) {
    gtk_list_box_remove(self->files_list, self->hidden_row);
    self->hidden_row = NULL;
  }
  if (hidden > 0) {
    GtkWidget *row = adw_action_row_new();
    g_autofree char *title =
        g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "Show %u more file hidden by your filters",
                                    "Show %u more files hidden by your filters", hidden),
                        hidden);
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), title);
    gtk_list_box_row_set_activatable(GTK_LIST_BOX_ROW(row), TRUE);
    g_signal_connect(row, "activate", G_CALLBACK(on_show_all_activated), self);
    gtk_list_box_append(self->files_list, row);
    self->hidden_row = row;
  }
}

static void
on_show_all_activated(GtkListBoxRow *row, WhittleModelDetails *self)
{
  self->show_all = TRUE;
  apply_filter(self);
}

static void
on_files_row_activated(GtkListBox *list, GtkListBoxRow *row, WhittleModelDetails *self)
{
  if (GTK_WIDGET(row) == self->hidden_row)
    on_show_all_activated(row, self);
}

static void
add_variant(WhittleModelDetails *self, const wh_hub_gguf_group *g)
{
  Variant *v = g_new0(Variant, 1);
  v->quant = g_strdup(g->quant);
  v->name = g_strdup(g->name);
  v->files = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < g->files->len; i++) {
    const wh_hub_file *f = g->files->pdata[i];
    g_ptr_array_add(v->files, g_strdup(f->path));
    v->size += f->size;
  }
  for (guint i = 0; g->mmproj && i < g->mmproj->len; i++) {
    const wh_hub_file *f = g->mmproj->pdata[i];
    g_ptr_array_add(v->files, g_strdup(f->path));
    v->size += f->size;
  }

  GtkWidget *row = adw_action_row_new();
  adw_preferences_row_set_use_markup(ADW_PREFERENCES_ROW(row), FALSE);
  adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), g->quant ? g->quant : g->name);
  g_autofree char *size = g_format_size(v->size);
  GString *sub = g_string_new(NULL);
  g_string_append_printf(sub, "%s · %s", g->name, size);
  if (g->files->len > 1) {
    g_autofree char *n_parts = g_strdup_printf(
        g_dngettext(GETTEXT_PACKAGE, "%u part", "%u parts", g->files->len), g->files->len);
    g_string_append_printf(sub, " · %s", n_parts);
  }
  if (g->mmproj && g->mmproj->len > 0)
    g_string_append_printf(sub, " · %s", _("with image projector"));
  if (!g->complete)
    g_string_append_printf(sub, " · %s", _("some parts are missing"));
  g_autofree char *subtitle = g_string_free(sub, FALSE);
  adw_action_row_set_subtitle(ADW_ACTION_ROW(row), subtitle);

  GtkWidget *badge = gtk_label_new(_("Checking fit…"));
  gtk_widget_set_valign(badge, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class(badge, "caption-heading");
  gtk_widget_add_css_class(badge, "dim-label");
  adw_action_row_add_suffix(ADW_ACTION_ROW(row), badge);

  GtkWidget *button = gtk_button_new_with_mnemonic(_("_Download"));
  gtk_widget_set_valign(button, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class(button, "suggested-action");
  g_object_set_data(G_OBJECT(button), "variant", v);
  g_signal_connect(button, "clicked", G_CALLBACK(on_download_clicked), self);
  adw_action_row_add_suffix(ADW_ACTION_ROW(row), button);

  v->row = row;
  v->badge = GTK_LABEL(badge);
  v->download = GTK_BUTTON(button);
  gtk_list_box_append(self->files_list, row);
  g_ptr_array_add(self->variants, v);
  sync_download_button(self, v);
  start_fit(self, v);
}

/* --- Already downloaded? (stat calls, in a thread) ------------------------------------ */

typedef struct {
  char *repo_id;
  GPtrArray *paths; /* per variant: char** of snapshot paths (NULL-terminated) */
  GArray *cached;   /* gboolean per variant */
} CachedCheck;

static void
cached_check_free(CachedCheck *c)
{
  g_free(c->repo_id);
  g_ptr_array_unref(c->paths);
  g_array_unref(c->cached);
  g_free(c);
}

static void
cached_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  CachedCheck *c = data;
  for (guint i = 0; i < c->paths->len; i++) {
    gboolean all = TRUE;
    for (char **p = c->paths->pdata[i]; *p && all; p++)
      all = g_file_test(*p, G_FILE_TEST_EXISTS); /* follows the snapshot link to the blob */
    g_array_append_val(c->cached, all);
  }
  g_task_return_boolean(task, TRUE);
}

static void
on_cached_checked(GObject *source, GAsyncResult *result, gpointer user_data)
{
  WhittleModelDetails *self = WHITTLE_MODEL_DETAILS(source);
  CachedCheck *c = g_task_get_task_data(G_TASK(result));
  if (!g_task_propagate_boolean(G_TASK(result), NULL) || self->variants == NULL ||
      g_strcmp0(c->repo_id, self->repo_id) != 0 || c->cached->len != self->variants->len)
    return; /* another model is shown by now */
  for (guint i = 0; i < self->variants->len; i++) {
    Variant *v = self->variants->pdata[i];
    v->cached = g_array_index(c->cached, gboolean, i);
    sync_download_button(self, v);
  }
}

/* Files of the commit shown that are already in the hub cache (from an earlier download,
 * or another tool) need no Download: their button opens the Library. */
static void
check_cached(WhittleModelDetails *self, const char *commit)
{
  wh_hub *hub = whittle_application_get_hub(self->app);
  if (hub == NULL || commit == NULL || !wh_hub_validate_revision(commit, NULL))
    return;
  g_autofree char *folder = wh_hub_repo_folder_name(self->repo_id);
  CachedCheck *c = g_new0(CachedCheck, 1);
  c->repo_id = g_strdup(self->repo_id);
  c->paths = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
  c->cached = g_array_new(FALSE, FALSE, sizeof(gboolean));
  for (guint i = 0; i < self->variants->len; i++) {
    Variant *v = self->variants->pdata[i];
    char **paths = g_new0(char *, v->files->len + 1);
    for (guint j = 0; j < v->files->len; j++)
      paths[j] = g_build_filename(wh_hub_get_cache_dir(hub), folder, "snapshots", commit,
                                  (const char *)v->files->pdata[j], NULL);
    g_ptr_array_add(c->paths, paths);
  }
  g_autoptr(GTask) task = g_task_new(self, self->cancellable, on_cached_checked, NULL);
  g_task_set_task_data(task, c, (GDestroyNotify)cached_check_free);
  g_task_run_in_thread(task, cached_thread);
}

/* --- Model card ------------------------------------------------------------------------ */

typedef struct {
  wh_hub *hub;
  char *repo_id;
} CardArgs;

static void
card_args_free(CardArgs *a)
{
  g_free(a->repo_id);
  g_free(a);
}

/* Fetches README.md into the hub cache (as huggingface_hub does) and reads it. */
static gboolean
run_card(wh_job *job, gpointer user_data, GError **error)
{
  CardArgs *a = user_data;
  wh_hub_download_params params;
  wh_hub_download_default_params(&params);
  g_autoptr(wh_hub_download_result) r =
      wh_hub_download(a->hub, a->repo_id, "README.md", &params, wh_job_get_cancellable(job), error);
  if (r == NULL)
    return FALSE;
  char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents(r->path, &text, &len, error))
    return FALSE;
  if (len > 4 * 1024 * 1024) /* a card, not a book: keep the first 4 MiB */
    text[4 * 1024 * 1024] = '\0';
  wh_job_set_result(job, text, g_free);
  return TRUE;
}

static void
on_card_notify(wh_job *job, gpointer user_data)
{
  WhittleModelDetails *self = user_data;
  if (job != self->card_job || !wh_job_is_finished(job))
    return;
  if (wh_job_get_state(job) == WH_JOB_SUCCEEDED) {
    whittle_markdown_view_set_markdown(self->card_view, wh_job_get_result(job));
    gtk_widget_set_visible(GTK_WIDGET(self->card_status), FALSE);
  } else if (wh_job_get_state(job) == WH_JOB_FAILED) {
    const GError *e = wh_job_get_error(job);
    g_autofree char *text =
        g_strdup_printf(_("The model card could not be read: %s"), e ? e->message : "");
    gtk_label_set_label(self->card_status, text);
    gtk_widget_set_visible(GTK_WIDGET(self->card_status), TRUE);
  }
  g_clear_pointer(&self->card_job, wh_job_unref);
  update_busy(self);
}

/* --- Model info ------------------------------------------------------------------------- */

static void
show_info(WhittleModelDetails *self, const wh_hub_model_info *info)
{
  wh_hub *hub = whittle_application_get_hub(self->app);

  /* Summary line. */
  GPtrArray *parts = g_ptr_array_new_with_free_func(g_free);
  if (info->gguf.architecture)
    g_ptr_array_add(parts, g_strdup(info->gguf.architecture));
  guint64 n_params = info->gguf.total ? info->gguf.total : whittle_parse_params_from_name(info->id);
  if (n_params) {
    g_autofree char *p = whittle_format_params(n_params);
    g_ptr_array_add(parts, g_strdup_printf(_("%s parameters"), p));
  }
  if (info->gguf.context_length)
    g_ptr_array_add(parts, g_strdup_printf(_("context %" G_GUINT64_FORMAT " tokens"),
                                           info->gguf.context_length));
  g_autofree char *dl = whittle_format_count(info->downloads);
  g_ptr_array_add(parts, g_strdup_printf(_("%s downloads"), dl));
  g_autofree char *likes = whittle_format_count(info->likes);
  g_ptr_array_add(parts, g_strdup_printf(_("%s likes"), likes));
  g_autofree char *age = whittle_format_age(info->last_modified, 0);
  if (age)
    g_ptr_array_add(parts, g_strdup_printf(_("updated %s"), age));
  for (guint i = 0; info->tags[i]; i++)
    if (g_str_has_prefix(info->tags[i], "license:"))
      g_ptr_array_add(parts, g_strdup_printf(_("licence %s"), info->tags[i] + 8));
  g_ptr_array_add(parts, NULL);
  g_autofree char *summary = g_strjoinv(" · ", (char **)parts->pdata);
  g_ptr_array_unref(parts);
  gtk_label_set_label(self->summary_label, summary);

  /* Gated: what to do, in order. */
  gboolean gated = info->gated != NULL;
  gtk_widget_set_visible(self->gated_box, gated);
  if (gated) {
    gboolean token = hub && wh_hub_has_token(hub);
    gtk_label_set_label(
        self->gated_label,
        token ? _("This model needs approval from its authors. If a download is refused, "
                  "request access on its Hugging Face page with the account of your token.")
              : _("This model needs approval from its authors. Sign in with a Hugging Face "
                  "token (Preferences), then request access on its page."));
    gtk_widget_set_visible(self->token_button, !token);
  }

  /* Files. */
  g_autoptr(GPtrArray) groups = wh_hub_group_gguf_files(info->files);
  for (guint i = 0; i < groups->len; i++)
    add_variant(self, groups->pdata[i]);
  if (groups->len == 0) {
    GtkWidget *row = adw_action_row_new();
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), _("No GGUF files"));
    adw_action_row_set_subtitle(
        ADW_ACTION_ROW(row),
        _("Whittle runs GGUF files. Look for a repository whose name ends in “GGUF”, or "
          "download the original weights and convert them with another tool."));
    gtk_list_box_append(self->files_list, row);
  }
  apply_filter(self);
  check_cached(self, info->sha);

  /* Card. */
  gboolean has_readme = FALSE;
  for (guint i = 0; i < info->files->len; i++)
    if (g_ascii_strcasecmp(((wh_hub_file *)info->files->pdata[i])->path, "README.md") == 0)
      has_readme = TRUE;
  if (has_readme && hub) {
    CardArgs *a = g_new0(CardArgs, 1);
    a->hub = hub;
    a->repo_id = g_strdup(self->repo_id);
    g_autofree char *title = g_strdup_printf(_("Reading the card of %s"), self->repo_id);
    self->card_job = wh_job_queue_submit(self->queue, WH_JOB_DOWNLOAD, title, run_card, a,
                                         (GDestroyNotify)card_args_free, on_card_notify, self);
    gtk_label_set_label(self->card_status, _("Loading the model card…"));
  } else {
    gtk_label_set_label(self->card_status, _("This model has no model card."));
  }
  gtk_widget_set_visible(GTK_WIDGET(self->card_status), TRUE);
  gtk_stack_set_visible_child_name(self->stack, "details");
}

static void
on_info_notify(wh_job *job, gpointer user_data)
{
  WhittleModelDetails *self = user_data;
  if (job != self->info_job || !wh_job_is_finished(job))
    return;
  if (wh_job_get_state(job) == WH_JOB_SUCCEEDED) {
    show_info(self, wh_job_get_result(job));
  } else if (wh_job_get_state(job) == WH_JOB_FAILED) {
    const GError *e = wh_job_get_error(job);
    const char *title = _("Could Not Open This Model");
    if (e && g_error_matches(e, WH_HUB_ERROR, WH_HUB_ERROR_AUTH))
      title = _("Sign In to See This Model");
    else if (e && g_error_matches(e, WH_HUB_ERROR, WH_HUB_ERROR_FORBIDDEN))
      title = _("Request Access to See This Model");
    else if (e && (g_error_matches(e, WH_HUB_ERROR, WH_HUB_ERROR_OFFLINE) ||
                   g_error_matches(e, WH_HUB_ERROR, WH_HUB_ERROR_NETWORK)))
      title = _("You’re Offline");
    adw_status_page_set_title(self->error_page, title);
    g_autofree char *escaped = e ? g_markup_escape_text(e->message, -1) : NULL;
    adw_status_page_set_description(self->error_page, escaped); /* markup */
    gtk_stack_set_visible_child_name(self->stack, "error");
  }
  g_clear_pointer(&self->info_job, wh_job_unref);
  update_busy(self);
}

static void
clear(WhittleModelDetails *self)
{
  if (self->cancellable)
    g_cancellable_cancel(self->cancellable);
  g_clear_object(&self->cancellable);
  if (self->info_job) {
    wh_job_cancel(self->info_job);
    g_clear_pointer(&self->info_job, wh_job_unref);
  }
  if (self->card_job) {
    wh_job_cancel(self->card_job);
    g_clear_pointer(&self->card_job, wh_job_unref);
  }
  g_clear_pointer(&self->variants, g_ptr_array_unref);
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->files_list))))
    gtk_list_box_remove(self->files_list, child);
  self->hidden_row = NULL;
  self->show_all = FALSE;
  whittle_markdown_view_set_markdown(self->card_view, NULL);
}

void
whittle_model_details_show(WhittleModelDetails *self, WhittleApplication *app, wh_job_queue *queue,
                           const char *repo_id)
{
  g_return_if_fail(WHITTLE_IS_MODEL_DETAILS(self));
  g_return_if_fail(WHITTLE_IS_APPLICATION(app) && queue != NULL && repo_id != NULL);

  clear(self);
  if (self->app != app) {
    WhittleDownloads *downloads = whittle_application_get_downloads(app);
    if (downloads)
      g_signal_connect_object(downloads, "changed", G_CALLBACK(sync_download_buttons), self,
                              G_CONNECT_SWAPPED);
    self->app = app;
  }
  self->queue = queue;
  self->cancellable = g_cancellable_new();
  self->variants = g_ptr_array_new_with_free_func((GDestroyNotify)variant_free);
  g_free(self->repo_id);
  self->repo_id = g_strdup(repo_id);
  gtk_label_set_label(self->title_label, repo_id);
  gtk_widget_set_visible(self->gated_box, FALSE);

  wh_hub *hub = whittle_application_get_hub(app);
  g_free(self->web_uri);
  self->web_uri = hub ? g_strdup_printf("%s/%s", wh_hub_get_endpoint(hub), repo_id) : NULL;
  g_autofree char *base = self->web_uri ? g_strdup_printf("%s/blob/main", self->web_uri) : NULL;
  whittle_markdown_view_set_base_uri(self->card_view, base);

  if (hub == NULL) {
    adw_status_page_set_description(self->error_page,
                                    _("Hugging Face is not available: check HF_ENDPOINT."));
    gtk_stack_set_visible_child_name(self->stack, "error");
    return;
  }
  gtk_stack_set_visible_child_name(self->stack, "loading");
  self->info_job = wh_hub_model_info_async(hub, queue, repo_id, NULL, on_info_notify, self);
  update_busy(self);
}

void
whittle_model_details_set_filter(WhittleModelDetails *self, const char *quant, guint64 max_bytes)
{
  g_return_if_fail(WHITTLE_IS_MODEL_DETAILS(self));
  g_free(self->filter_quant);
  self->filter_quant = g_strdup(quant);
  self->filter_max = max_bytes;
  self->show_all = FALSE;
  apply_filter(self);
}

static void
on_back_clicked(WhittleModelDetails *self)
{
  g_signal_emit(self, signals[BACK], 0);
}

static void
on_web_clicked(WhittleModelDetails *self)
{
  if (self->web_uri)
    gtk_show_uri(GTK_WINDOW(gtk_widget_get_root(GTK_WIDGET(self))), self->web_uri,
                 GDK_CURRENT_TIME);
}

static void
whittle_model_details_dispose(GObject *object)
{
  WhittleModelDetails *self = WHITTLE_MODEL_DETAILS(object);
  if (self->files_list)
    clear(self);
  gtk_widget_dispose_template(GTK_WIDGET(self), WHITTLE_TYPE_MODEL_DETAILS);
  G_OBJECT_CLASS(whittle_model_details_parent_class)->dispose(object);
}

static void
whittle_model_details_finalize(GObject *object)
{
  WhittleModelDetails *self = WHITTLE_MODEL_DETAILS(object);
  g_free(self->repo_id);
  g_free(self->web_uri);
  g_free(self->filter_quant);
  G_OBJECT_CLASS(whittle_model_details_parent_class)->finalize(object);
}

static void
whittle_model_details_class_init(WhittleModelDetailsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  object_class->dispose = whittle_model_details_dispose;
  object_class->finalize = whittle_model_details_finalize;

  signals[BACK] = g_signal_new("back", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                               NULL, G_TYPE_NONE, 0);

  g_type_ensure(WHITTLE_TYPE_MARKDOWN_VIEW);
  gtk_widget_class_set_template_from_resource(
      widget_class, "/io/github/whittle/Whittle/whittle-model-details.ui");
  gtk_widget_class_bind_template_child(widget_class, WhittleModelDetails, title_label);
  gtk_widget_class_bind_template_child(widget_class, WhittleModelDetails, spinner);
  gtk_widget_class_bind_template_child(widget_class, WhittleModelDetails, stack);
  gtk_widget_class_bind_template_child(widget_class, WhittleModelDetails, error_page);
  gtk_widget_class_bind_template_child(widget_class, WhittleModelDetails, summary_label);
  gtk_widget_class_bind_template_child(widget_class, WhittleModelDetails, gated_box);
  gtk_widget_class_bind_template_child(widget_class, WhittleModelDetails, gated_label);
  gtk_widget_class_bind_template_child(widget_class, WhittleModelDetails, token_button);
  gtk_widget_class_bind_template_child(widget_class, WhittleModelDetails, access_button);
  gtk_widget_class_bind_template_child(widget_class, WhittleModelDetails, files_list);
  gtk_widget_class_bind_template_child(widget_class, WhittleModelDetails, card_view);
  gtk_widget_class_bind_template_child(widget_class, WhittleModelDetails, card_status);
  gtk_widget_class_bind_template_callback(widget_class, on_back_clicked);
  gtk_widget_class_bind_template_callback(widget_class, on_web_clicked);
}

static void
whittle_model_details_init(WhittleModelDetails *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
  g_signal_connect(self->files_list, "row-activated", G_CALLBACK(on_files_row_activated), self);
}

const char *
whittle_model_details_get_repo_id(WhittleModelDetails *self)
{
  g_return_val_if_fail(WHITTLE_IS_MODEL_DETAILS(self), NULL);
  return self->repo_id;
}

gboolean
whittle_model_details_is_busy(WhittleModelDetails *self)
{
  g_return_val_if_fail(WHITTLE_IS_MODEL_DETAILS(self), FALSE);
  if (self->info_job || self->card_job)
    return TRUE;
  for (guint i = 0; self->variants && i < self->variants->len; i++)
    if (((Variant *)self->variants->pdata[i])->fit_job)
      return TRUE;
  return FALSE;
}

guint
whittle_model_details_get_n_variants(WhittleModelDetails *self)
{
  g_return_val_if_fail(WHITTLE_IS_MODEL_DETAILS(self), 0);
  return self->variants ? self->variants->len : 0;
}

static Variant *
variant_at(WhittleModelDetails *self, guint index)
{
  if (self->variants == NULL || index >= self->variants->len)
    return NULL;
  return self->variants->pdata[index];
}

const char *
whittle_model_details_get_variant_quant(WhittleModelDetails *self, guint index)
{
  g_return_val_if_fail(WHITTLE_IS_MODEL_DETAILS(self), NULL);
  Variant *v = variant_at(self, index);
  return v ? v->quant : NULL;
}

const char *
whittle_model_details_get_variant_badge(WhittleModelDetails *self, guint index)
{
  g_return_val_if_fail(WHITTLE_IS_MODEL_DETAILS(self), NULL);
  Variant *v = variant_at(self, index);
  return v ? v->badge_text : NULL;
}

GtkButton *
whittle_model_details_get_variant_button(WhittleModelDetails *self, guint index)
{
  g_return_val_if_fail(WHITTLE_IS_MODEL_DETAILS(self), NULL);
  Variant *v = variant_at(self, index);
  return v ? v->download : NULL;
}

WhittleMarkdownView *
whittle_model_details_get_card_view(WhittleModelDetails *self)
{
  g_return_val_if_fail(WHITTLE_IS_MODEL_DETAILS(self), NULL);
  return self->card_view;
}
