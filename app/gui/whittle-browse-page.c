/* whittle-browse-page.c — see whittle-browse-page.h. */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "whittle-browse-page.h"
#include "whittle-format.h"
#include "whittle-model-details.h"

/* How many pages to fetch in a row when client-side filters hide every result of one. */
#define MAX_EMPTY_PAGES 5

struct _WhittleBrowsePage {
  AdwBin parent_instance;

  wh_job_queue *queue; /* the page's own queue for API reads (not shown as jobs) */
  wh_job *search_job;
  char *next_url;
  guint n_results;   /* rows shown */
  guint empty_pages; /* consecutive pages whose results were all filtered out */
  gboolean ready;    /* the template is built */
  guint add_source;  /* idle adding the rows of search_job's page */
  guint add_index;   /* next result of that page to add */
  guint add_before;  /* rows shown before that page */

  /* template children */
  AdwLeaflet *leaflet; /* the bin's child */
  GtkSearchEntry *search_entry;
  GtkDropDown *sort_dropdown;
  GtkSwitch *gguf_switch;
  GtkDropDown *params_dropdown;
  GtkDropDown *quant_dropdown;
  GtkDropDown *size_dropdown;
  GtkDropDown *license_dropdown;
  GtkEntry *author_entry;
  GtkLabel *filter_summary;
  GtkStack *results_stack;
  GtkSpinner *loading_spinner;
  GtkWidget *slow_label;
  guint slow_source; /* shows slow_label when a search takes long (retries, rate limits) */
  AdwStatusPage *error_page;
  GtkListBox *results_list;
  GtkButton *more_button;
  GtkSpinner *more_spinner;
  WhittleModelDetails *details;
};

G_DEFINE_FINAL_TYPE(WhittleBrowsePage, whittle_browse_page, ADW_TYPE_BIN)

static WhittleApplication *
get_app(void)
{
  GApplication *app = g_application_get_default();
  return WHITTLE_IS_APPLICATION(app) ? WHITTLE_APPLICATION(app) : NULL;
}

/* --- Filters ------------------------------------------------------------------------- */

static const char *const sort_keys[] = {"downloads", "trendingScore", "lastModified", "likes"};
/* Parameter ranges of the dropdown, in parameters: [min, max). */
static const guint64 param_ranges[][2] = {
    {0, G_MAXUINT64},
    {0, 1000000001ull},
    {1000000001ull, 4000000001ull},
    {4000000001ull, 9000000001ull},
    {9000000001ull, 16000000001ull},
    {16000000001ull, 40000000001ull},
    {40000000001ull, G_MAXUINT64},
};
static const guint64 size_limits[] = {
    0, 1000000000ull, 4000000000ull, 8000000000ull, 16000000000ull, 32000000000ull};

static char *
selected_string(GtkDropDown *dd)
{
  guint i = gtk_drop_down_get_selected(dd);
  if (i == 0 || i == GTK_INVALID_LIST_POSITION)
    return NULL;
  return g_strdup(gtk_string_list_get_string(GTK_STRING_LIST(gtk_drop_down_get_model(dd)), i));
}

static gboolean
result_passes(WhittleBrowsePage *self, const wh_hub_model_summary *m)
{
  guint range = gtk_drop_down_get_selected(self->params_dropdown);
  if (range > 0 && range < G_N_ELEMENTS(param_ranges)) {
    guint64 n = whittle_parse_params_from_name(m->id);
    if (n == 0 || n < param_ranges[range][0] || n >= param_ranges[range][1])
      return FALSE;
  }
  return TRUE;
}

static void
update_filter_summary(WhittleBrowsePage *self)
{
  GPtrArray *parts = g_ptr_array_new_with_free_func(g_free);
  if (gtk_switch_get_active(self->gguf_switch))
    g_ptr_array_add(parts, g_strdup(_("GGUF only")));
  guint range = gtk_drop_down_get_selected(self->params_dropdown);
  if (range > 0) {
    g_autofree char *r = g_strdup(gtk_string_list_get_string(
        GTK_STRING_LIST(gtk_drop_down_get_model(self->params_dropdown)), range));
    g_ptr_array_add(parts, g_strdup_printf(_("%s parameters"), r));
  }
  g_autofree char *quant = selected_string(self->quant_dropdown);
  if (quant)
    g_ptr_array_add(parts, g_strdup_printf(_("%s files"), quant));
  g_autofree char *size = selected_string(self->size_dropdown);
  if (size)
    g_ptr_array_add(parts, g_strdup_printf(_("files up to %s"), size));
  g_autofree char *lic = selected_string(self->license_dropdown);
  if (lic)
    g_ptr_array_add(parts, g_strdup_printf(_("licence %s"), lic));
  const char *author = gtk_editable_get_text(GTK_EDITABLE(self->author_entry));
  if (author && *author)
    g_ptr_array_add(parts, g_strdup_printf(_("by %s"), author));
  g_ptr_array_add(parts, NULL);
  g_autofree char *joined = g_strjoinv(" · ", (char **)parts->pdata);
  g_ptr_array_unref(parts);
  gtk_label_set_label(self->filter_summary, joined);
}

/* --- Results ------------------------------------------------------------------------- */

static GtkWidget *
make_stat(const char *icon, const char *text, const char *a11y)
{
  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 4);
  gtk_widget_set_valign(box, GTK_ALIGN_CENTER);
  GtkWidget *image = gtk_image_new_from_icon_name(icon);
  gtk_accessible_update_property(GTK_ACCESSIBLE(image), GTK_ACCESSIBLE_PROPERTY_LABEL, a11y, -1);
  gtk_box_append(GTK_BOX(box), image);
  GtkWidget *label = gtk_label_new(text);
  gtk_widget_add_css_class(label, "numeric");
  gtk_box_append(GTK_BOX(box), label);
  gtk_widget_add_css_class(box, "dim-label");
  gtk_widget_set_tooltip_text(box, a11y);
  return box;
}

static void
add_result_row(WhittleBrowsePage *self, const wh_hub_model_summary *m)
{
  GtkWidget *row = adw_action_row_new();
  adw_preferences_row_set_use_markup(ADW_PREFERENCES_ROW(row), FALSE);
  adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), m->id);
  gtk_list_box_row_set_activatable(GTK_LIST_BOX_ROW(row), TRUE);
  g_object_set_data_full(G_OBJECT(row), "repo-id", g_strdup(m->id), g_free);

  GPtrArray *parts = g_ptr_array_new_with_free_func(g_free);
  if (m->author)
    g_ptr_array_add(parts, g_strdup(m->author));
  guint64 n = whittle_parse_params_from_name(m->id);
  if (n) {
    g_autofree char *p = whittle_format_params(n);
    g_ptr_array_add(parts, g_strdup_printf(_("%s parameters"), p));
  }
  g_autofree char *age = whittle_format_age(m->last_modified, 0);
  if (age)
    g_ptr_array_add(parts, g_strdup_printf(_("updated %s"), age));
  g_ptr_array_add(parts, NULL);
  g_autofree char *subtitle = g_strjoinv(" · ", (char **)parts->pdata);
  g_ptr_array_unref(parts);
  adw_action_row_set_subtitle(ADW_ACTION_ROW(row), subtitle);

  g_autofree char *downloads = whittle_format_count(m->downloads);
  g_autofree char *dl_a11y = g_strdup_printf(_("%s downloads"), downloads);
  adw_action_row_add_suffix(ADW_ACTION_ROW(row),
                            make_stat("folder-download-symbolic", downloads, dl_a11y));
  g_autofree char *likes = whittle_format_count(m->likes);
  g_autofree char *likes_a11y = g_strdup_printf(_("%s likes"), likes);
  adw_action_row_add_suffix(ADW_ACTION_ROW(row), make_stat("starred-symbolic", likes, likes_a11y));
  if (m->gated) {
    GtkWidget *lock = gtk_image_new_from_icon_name("system-lock-screen-symbolic");
    gtk_widget_set_tooltip_text(lock, _("Needs approval from the authors"));
    gtk_accessible_update_property(GTK_ACCESSIBLE(lock), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                   _("Needs approval from the authors"), -1);
    adw_action_row_add_suffix(ADW_ACTION_ROW(row), lock);
  }
  adw_action_row_add_suffix(ADW_ACTION_ROW(row), gtk_image_new_from_icon_name("go-next-symbolic"));
  gtk_list_box_append(self->results_list, row);
  self->n_results++;
}

static void
clear_results(WhittleBrowsePage *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->results_list))))
    gtk_list_box_remove(self->results_list, child);
  self->n_results = 0;
  self->empty_pages = 0;
  g_clear_pointer(&self->next_url, g_free);
}

static void
show_error(WhittleBrowsePage *self, const GError *e)
{
  const char *title = _("Search Failed");
  const char *icon = "dialog-error-symbolic";
  g_autofree char *description = g_strdup(e ? e->message : NULL);

  if (e && (g_error_matches(e, WH_HUB_ERROR, WH_HUB_ERROR_OFFLINE) ||
            g_error_matches(e, WH_HUB_ERROR, WH_HUB_ERROR_NETWORK))) {
    title = _("You’re Offline");
    icon = "network-offline-symbolic";
    g_free(description);
    description = g_strdup_printf(
        _("Hugging Face cannot be reached, but your Library still works. (%s)"), e->message);
  }
  if (e && e->message && (strstr(e->message, "429") || strstr(e->message, "Too Many"))) {
    title = _("Hugging Face Asked Us to Slow Down");
    icon = "preferences-system-time-symbolic";
    g_free(description);
    description = g_strdup(_("Too many searches in a short time. Wait a minute, then try again."));
  }
  adw_status_page_set_title(self->error_page, title);
  adw_status_page_set_icon_name(self->error_page, icon);
  /* The description is markup: the messages carry URLs with "&". */
  g_autofree char *escaped = description ? g_markup_escape_text(description, -1) : NULL;
  adw_status_page_set_description(self->error_page, escaped);
  gtk_stack_set_visible_child_name(self->results_stack, "error");
}

static void fetch_more(WhittleBrowsePage *self);

/* The page of results is shown: what comes next. */
static void
finish_page(WhittleBrowsePage *self)
{
  const wh_hub_search_result *r = wh_job_get_result(self->search_job);
  g_free(self->next_url);
  self->next_url = g_strdup(r->next_url);
  self->empty_pages = self->n_results == self->add_before ? self->empty_pages + 1 : 0;
  g_clear_pointer(&self->search_job, wh_job_unref);

  gtk_widget_set_visible(GTK_WIDGET(self->more_button), self->next_url != NULL);
  if (self->n_results == 0 && self->next_url && self->empty_pages < MAX_EMPTY_PAGES) {
    fetch_more(self); /* everything on this page was filtered out: keep looking */
    return;
  }
  if (self->n_results == 0) {
    adw_status_page_set_title(self->error_page, _("No Models Found"));
    adw_status_page_set_icon_name(self->error_page, "system-search-symbolic");
    adw_status_page_set_description(self->error_page, _("Try other words, or loosen the filters."));
    gtk_stack_set_visible_child_name(self->results_stack, "error");
  } else {
    gtk_stack_set_visible_child_name(self->results_stack, "results");
  }
}

#define ROWS_PER_ITERATION 6

static gboolean
add_rows_step(gpointer data)
{
  WhittleBrowsePage *self = data;
  const wh_hub_search_result *r = wh_job_get_result(self->search_job);
  for (guint n = 0; self->add_index < r->models->len && n < ROWS_PER_ITERATION;) {
    const wh_hub_model_summary *m = r->models->pdata[self->add_index++];
    if (result_passes(self, m)) {
      add_result_row(self, m);
      n++;
    }
  }
  if (self->n_results > 0)
    gtk_stack_set_visible_child_name(self->results_stack, "results");
  if (self->add_index < r->models->len)
    return G_SOURCE_CONTINUE;
  self->add_source = 0;
  finish_page(self);
  return G_SOURCE_REMOVE;
}

static void
on_search_notify(wh_job *job, gpointer user_data)
{
  WhittleBrowsePage *self = user_data;
  if (job != self->search_job || !wh_job_is_finished(job))
    return;

  gtk_widget_set_visible(GTK_WIDGET(self->more_spinner), FALSE);
  gtk_spinner_set_spinning(self->more_spinner, FALSE);
  gtk_spinner_set_spinning(self->loading_spinner, FALSE);
  g_clear_handle_id(&self->slow_source, g_source_remove);
  gtk_widget_set_visible(self->slow_label, FALSE);
  wh_job_state state = wh_job_get_state(job);
  if (state == WH_JOB_SUCCEEDED) {
    /* Rows are built a few per main-loop iteration, below redraw priority, so a page of
     * results never holds up a frame; the job stays current until they are all there. */
    self->add_index = 0;
    self->add_before = self->n_results;
    self->add_source = g_idle_add(add_rows_step, self);
    return;
  }
  if (state == WH_JOB_FAILED) {
    if (self->n_results == 0) {
      show_error(self, wh_job_get_error(job));
    } else {
      /* Keep what is shown; the button retries the next page. */
      gtk_widget_set_visible(GTK_WIDGET(self->more_button), self->next_url != NULL);
      gtk_widget_set_tooltip_text(GTK_WIDGET(self->more_button),
                                  wh_job_get_error(job) ? wh_job_get_error(job)->message : NULL);
    }
  }
  g_clear_pointer(&self->search_job, wh_job_unref);
}

typedef struct {
  wh_hub *hub;
  char *next_url;
} NextArgs;

static void
next_args_free(NextArgs *a)
{
  g_free(a->next_url);
  g_free(a);
}

static gboolean
run_search_next(wh_job *job, gpointer user_data, GError **error)
{
  NextArgs *a = user_data;
  wh_hub_search_result *r =
      wh_hub_search_next(a->hub, a->next_url, wh_job_get_cancellable(job), error);
  if (r == NULL)
    return FALSE;
  wh_job_set_result(job, r, (GDestroyNotify)wh_hub_search_result_free);
  return TRUE;
}

static gboolean
on_search_slow(gpointer data)
{
  WhittleBrowsePage *self = data;
  self->slow_source = 0;
  gtk_widget_set_visible(self->slow_label, TRUE);
  return G_SOURCE_REMOVE;
}

static void
cancel_search(WhittleBrowsePage *self)
{
  g_clear_handle_id(&self->slow_source, g_source_remove);
  gtk_widget_set_visible(self->slow_label, FALSE);
  g_clear_handle_id(&self->add_source, g_source_remove);
  if (self->search_job) {
    wh_job_cancel(self->search_job);
    g_clear_pointer(&self->search_job, wh_job_unref);
  }
}

static void
fetch_more(WhittleBrowsePage *self)
{
  WhittleApplication *app = get_app();
  wh_hub *hub = app ? whittle_application_get_hub(app) : NULL;
  if (self->search_job || self->next_url == NULL || hub == NULL)
    return;
  NextArgs *a = g_new0(NextArgs, 1);
  a->hub = hub;
  a->next_url = g_strdup(self->next_url);
  self->search_job =
      wh_job_queue_submit(self->queue, WH_JOB_DOWNLOAD, _("Searching"), run_search_next, a,
                          (GDestroyNotify)next_args_free, on_search_notify, self);
  gtk_widget_set_visible(GTK_WIDGET(self->more_button), FALSE);
  gtk_widget_set_visible(GTK_WIDGET(self->more_spinner), TRUE);
  gtk_spinner_set_spinning(self->more_spinner, TRUE);
}

/* Starts a new search from the entry and filters. */
static void
run_search(WhittleBrowsePage *self)
{
  WhittleApplication *app = get_app();
  wh_hub *hub = app ? whittle_application_get_hub(app) : NULL;
  const char *text = gtk_editable_get_text(GTK_EDITABLE(self->search_entry));

  cancel_search(self);
  clear_results(self);
  update_filter_summary(self);
  if (hub == NULL) {
    g_autoptr(GError) e = g_error_new_literal(
        WH_HUB_ERROR, WH_HUB_ERROR_INVALID,
        _("Hugging Face is not available: HF_ENDPOINT is not a usable address."));
    show_error(self, e);
    return;
  }

  g_autofree char *license = selected_string(self->license_dropdown);
  g_autofree char *filter = NULL;
  gboolean gguf = gtk_switch_get_active(self->gguf_switch);
  if (gguf && license)
    filter = g_strdup_printf("gguf,license:%s", license);
  else if (gguf)
    filter = g_strdup("gguf");
  else if (license)
    filter = g_strdup_printf("license:%s", license);
  const char *author = gtk_editable_get_text(GTK_EDITABLE(self->author_entry));
  guint sort = gtk_drop_down_get_selected(self->sort_dropdown);

  wh_hub_search_query q = {0};
  q.search = text && *text ? text : NULL;
  q.author = author && *author ? author : NULL;
  q.filter = filter;
  q.sort = sort < G_N_ELEMENTS(sort_keys) ? sort_keys[sort] : "downloads";
  q.direction = -1;
  q.limit = 30;
  self->search_job = wh_hub_search_async(hub, self->queue, &q, on_search_notify, self);
  gtk_stack_set_visible_child_name(self->results_stack, "loading");
  gtk_spinner_set_spinning(self->loading_spinner, TRUE);
  /* The hub waits and retries on its own (timeouts, 5xx, 429 with Retry-After): say so. */
  self->slow_source = g_timeout_add_seconds(4, on_search_slow, self);
}

static void
on_search_changed(WhittleBrowsePage *self)
{
  const char *text = gtk_editable_get_text(GTK_EDITABLE(self->search_entry));
  if (text == NULL || *text == '\0') {
    /* Cleared: back to the welcome page. */
    cancel_search(self);
    clear_results(self);
    gtk_stack_set_visible_child_name(self->results_stack, "empty");
    return;
  }
  run_search(self);
}

static void
on_search_activate(WhittleBrowsePage *self)
{
  /* Enter: search now (the entry already waited for typing to pause otherwise), then move
   * to the first result. */
  GtkListBoxRow *first = gtk_list_box_get_row_at_index(self->results_list, 0);
  if (first && self->search_job == NULL)
    gtk_widget_grab_focus(GTK_WIDGET(first));
}

static void
on_filters_changed(WhittleBrowsePage *self)
{
  if (!self->ready)
    return; /* still building the template */
  const char *quant = NULL;
  g_autofree char *q = selected_string(self->quant_dropdown);
  quant = q;
  guint size = gtk_drop_down_get_selected(self->size_dropdown);
  whittle_model_details_set_filter(self->details, quant,
                                   size < G_N_ELEMENTS(size_limits) ? size_limits[size] : 0);
  update_filter_summary(self);
  /* Before the first search the page shows its welcome; filters apply to the next one. */
  if (g_strcmp0(gtk_stack_get_visible_child_name(self->results_stack), "empty") != 0)
    run_search(self);
}

static void
on_author_changed(WhittleBrowsePage *self)
{
  update_filter_summary(self);
}

/* An example search of the welcome page: the button's label is the search text. */
static void
on_example_clicked(WhittleBrowsePage *self, GtkButton *button)
{
  whittle_browse_page_search(self, gtk_button_get_label(button));
  gtk_widget_grab_focus(GTK_WIDGET(self->search_entry));
}

static void
on_retry_clicked(WhittleBrowsePage *self)
{
  run_search(self);
}

static void
on_more_clicked(WhittleBrowsePage *self)
{
  fetch_more(self);
}

static void
on_edge_reached(WhittleBrowsePage *self, GtkPositionType pos)
{
  if (pos == GTK_POS_BOTTOM)
    fetch_more(self);
}

static void
on_result_activated(WhittleBrowsePage *self, GtkListBoxRow *row)
{
  const char *repo_id = g_object_get_data(G_OBJECT(row), "repo-id");
  if (repo_id)
    whittle_browse_page_open_model(self, repo_id);
}

static void
on_details_back(WhittleBrowsePage *self)
{
  adw_leaflet_navigate(self->leaflet, ADW_NAVIGATION_DIRECTION_BACK);
}

/* --- GObject ------------------------------------------------------------------------- */

static void
whittle_browse_page_dispose(GObject *object)
{
  WhittleBrowsePage *self = WHITTLE_BROWSE_PAGE(object);

  /* The queue first: after it, no job notifies this page or the details any more. */
  g_clear_handle_id(&self->add_source, g_source_remove);
  g_clear_handle_id(&self->slow_source, g_source_remove);
  g_clear_pointer(&self->search_job, wh_job_unref);
  g_clear_pointer(&self->queue, wh_job_queue_free);
  g_clear_pointer(&self->next_url, g_free);
  gtk_widget_dispose_template(GTK_WIDGET(object), WHITTLE_TYPE_BROWSE_PAGE);
  G_OBJECT_CLASS(whittle_browse_page_parent_class)->dispose(object);
}

static void
whittle_browse_page_class_init(WhittleBrowsePageClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  G_OBJECT_CLASS(klass)->dispose = whittle_browse_page_dispose;

  g_type_ensure(WHITTLE_TYPE_MODEL_DETAILS);
  gtk_widget_class_set_template_from_resource(widget_class,
                                              "/io/github/whittle/Whittle/whittle-browse-page.ui");
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, search_entry);
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, sort_dropdown);
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, gguf_switch);
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, params_dropdown);
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, quant_dropdown);
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, size_dropdown);
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, license_dropdown);
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, author_entry);
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, filter_summary);
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, results_stack);
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, loading_spinner);
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, slow_label);
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, error_page);
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, results_list);
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, more_button);
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, more_spinner);
  gtk_widget_class_bind_template_child(widget_class, WhittleBrowsePage, details);
  gtk_widget_class_bind_template_callback(widget_class, on_search_changed);
  gtk_widget_class_bind_template_callback(widget_class, on_search_activate);
  gtk_widget_class_bind_template_callback(widget_class, on_filters_changed);
  gtk_widget_class_bind_template_callback(widget_class, on_author_changed);
  gtk_widget_class_bind_template_callback(widget_class, on_retry_clicked);
  gtk_widget_class_bind_template_callback(widget_class, on_example_clicked);
  gtk_widget_class_bind_template_callback(widget_class, on_more_clicked);
  gtk_widget_class_bind_template_callback(widget_class, on_edge_reached);
  gtk_widget_class_bind_template_callback(widget_class, on_result_activated);
  gtk_widget_class_bind_template_callback(widget_class, on_details_back);

  /* Ctrl+F: to the search entry. */
  gtk_widget_class_add_binding(widget_class, GDK_KEY_f, GDK_CONTROL_MASK,
                               (GtkShortcutFunc)whittle_browse_page_focus_search, NULL);
}

static void
whittle_browse_page_init(WhittleBrowsePage *self)
{
  self->queue = wh_job_queue_new(NULL, 4);
  gtk_widget_init_template(GTK_WIDGET(self));
  /* The bin's own child is not a bound template child: AdwBin unparents it itself. */
  self->leaflet = ADW_LEAFLET(adw_bin_get_child(ADW_BIN(self)));
  gtk_search_entry_set_key_capture_widget(self->search_entry, GTK_WIDGET(self));
  gtk_stack_set_visible_child_name(self->results_stack, "empty");
  update_filter_summary(self);
  self->ready = TRUE;
}

gboolean
whittle_browse_page_focus_search(GtkWidget *widget, GVariant *args, gpointer user_data)
{
  WhittleBrowsePage *self = WHITTLE_BROWSE_PAGE(widget);
  if (adw_leaflet_get_visible_child_name(self->leaflet) &&
      g_strcmp0(adw_leaflet_get_visible_child_name(self->leaflet), "search") != 0)
    adw_leaflet_set_visible_child_name(self->leaflet, "search");
  gtk_widget_grab_focus(GTK_WIDGET(self->search_entry));
  return TRUE;
}

void
whittle_browse_page_search(WhittleBrowsePage *self, const char *text)
{
  g_return_if_fail(WHITTLE_IS_BROWSE_PAGE(self));
  gtk_editable_set_text(GTK_EDITABLE(self->search_entry), text ? text : "");
  run_search(self); /* now, without waiting for the typing delay */
}

void
whittle_browse_page_open_model(WhittleBrowsePage *self, const char *repo_id)
{
  g_return_if_fail(WHITTLE_IS_BROWSE_PAGE(self));
  WhittleApplication *app = get_app();
  if (app == NULL)
    return;
  whittle_model_details_show(self->details, app, self->queue, repo_id);
  adw_leaflet_set_visible_child_name(self->leaflet, "details");
}

gboolean
whittle_browse_page_is_searching(WhittleBrowsePage *self)
{
  g_return_val_if_fail(WHITTLE_IS_BROWSE_PAGE(self), FALSE);
  return self->search_job != NULL;
}

GtkListBox *
whittle_browse_page_get_results(WhittleBrowsePage *self)
{
  g_return_val_if_fail(WHITTLE_IS_BROWSE_PAGE(self), NULL);
  return self->results_list;
}

const char *
whittle_browse_page_get_state(WhittleBrowsePage *self)
{
  g_return_val_if_fail(WHITTLE_IS_BROWSE_PAGE(self), NULL);
  return gtk_stack_get_visible_child_name(self->results_stack);
}

gboolean
whittle_browse_page_has_more(WhittleBrowsePage *self)
{
  g_return_val_if_fail(WHITTLE_IS_BROWSE_PAGE(self), FALSE);
  return self->next_url != NULL;
}

void
whittle_browse_page_load_more(WhittleBrowsePage *self)
{
  g_return_if_fail(WHITTLE_IS_BROWSE_PAGE(self));
  fetch_more(self);
}

WhittleModelDetails *
whittle_browse_page_get_details(WhittleBrowsePage *self)
{
  g_return_val_if_fail(WHITTLE_IS_BROWSE_PAGE(self), NULL);
  return self->details;
}

AdwStatusPage *
whittle_browse_page_get_status_page(WhittleBrowsePage *self)
{
  g_return_val_if_fail(WHITTLE_IS_BROWSE_PAGE(self), NULL);
  return self->error_page;
}
