/* whittle-planner-page.c — see whittle-planner-page.h. */
#include "config.h"

#include <glib/gi18n.h>
#include <math.h>

#include "gguf/gguf.h"
#include "whittle-application.h"
#include "whittle-memory-chart.h"
#include "whittle-planner-page.h"

struct _WhittlePlannerPage {
  AdwBin parent_instance;

  GtkStack *stack; /* the AdwBin child (not bound: see DESIGN.md) */
  AdwStatusPage *status_page;
  AdwComboRow *model_row;
  AdwActionRow *model_info_row;
  GtkWidget *verdict_box;
  GtkImage *verdict_icon;
  GtkLabel *verdict_label;
  GtkButton *fit_button;
  WhittleMemoryChart *chart;
  GtkGrid *legend;
  GtkScale *ctx_scale;
  GtkLabel *ctx_label;
  GtkScale *ngl_scale;
  GtkLabel *ngl_label;
  AdwActionRow *ngl_row;
  GtkSwitch *auto_switch;
  AdwComboRow *kv_row;
  AdwComboRow *device_row;
  GtkSwitch *mmap_switch;

  wh_job_queue *queue; /* the page's own: freeing it in dispose ends every notification */
  wh_job *header_job;  /* reading the header being planned */
  wh_job *devices_job; /* enumerating devices */
  wh_job *scan_job;    /* listing library models for the chooser */

  wh_model_hparams *hp; /* the model planned, NULL before one is chosen */
  char *model_title;    /* shown in the model row */
  char *model_path;     /* local file, or NULL for a remote header */
  wh_device_list *devices;
  GPtrArray *library_paths; /* char*: the chooser's models, index i + 1 in its list */

  gboolean has_plan;
  wh_plan plan;
  char *verdict_text;
  guint updating; /* > 0 while controls are set from code */
};

G_DEFINE_FINAL_TYPE(WhittlePlannerPage, whittle_planner_page, ADW_TYPE_BIN)

enum { PROP_0, PROP_READY, N_PROPS };
static GParamSpec *props[N_PROPS];

static const wh_kv_type kv_types[] = {WH_KV_F16, WH_KV_Q8_0, WH_KV_Q4_0};

static WhittleApplication *
get_app(void)
{
  GApplication *app = g_application_get_default();
  return WHITTLE_IS_APPLICATION(app) ? WHITTLE_APPLICATION(app) : NULL;
}

/* --- context length on a logarithmic scale ----------------------------------------------- */

static guint32
ctx_max(WhittlePlannerPage *self)
{
  return self->hp && self->hp->n_ctx_train ? self->hp->n_ctx_train : 4096;
}

static guint32
ctx_min(WhittlePlannerPage *self)
{
  return MIN(256u, ctx_max(self));
}

/* Scale value (log2 tokens) → tokens: multiples of 256 from 512 up, as people choose them. */
static guint32
ctx_from_value(WhittlePlannerPage *self, double v)
{
  double n = exp2(v);
  guint32 t = n >= 512 ? (guint32)(round(n / 256.0) * 256.0) : (guint32)round(n);
  return CLAMP(t, ctx_min(self), ctx_max(self));
}

static guint32
current_ctx(WhittlePlannerPage *self)
{
  return ctx_from_value(self, gtk_range_get_value(GTK_RANGE(self->ctx_scale)));
}

/* --- the plan ---------------------------------------------------------------------------- */

static const wh_device *
selected_gpu(WhittlePlannerPage *self)
{
  if (self->devices == NULL)
    return NULL;
  guint sel = adw_combo_row_get_selected(self->device_row);
  guint k = 0;
  for (guint i = 0; i < self->devices->n; i++) {
    const wh_device *d = &self->devices->devices[i];
    if (d->api == WH_DEVICE_API_HOST)
      continue;
    if (k++ == sel)
      return d;
  }
  return NULL;
}

static void
set_verdict(WhittlePlannerPage *self, const char *icon, const char *css, const char *text)
{
  static const char *const classes[] = {"success", "warning", "error"};
  for (guint i = 0; i < G_N_ELEMENTS(classes); i++)
    gtk_widget_remove_css_class(self->verdict_box, classes[i]);
  if (css)
    gtk_widget_add_css_class(self->verdict_box, css);
  gtk_image_set_from_icon_name(self->verdict_icon, icon);
  gtk_label_set_text(self->verdict_label, text);
  g_free(self->verdict_text);
  self->verdict_text = g_strdup(text);
  gtk_accessible_update_property(GTK_ACCESSIBLE(self->verdict_label),
                                 GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, text, -1);
}

static void
add_legend_cell(GtkGrid *grid, const char *text, int col, int row, gboolean numeric,
                const GdkRGBA *swatch)
{
  GtkWidget *label = gtk_label_new(text);
  gtk_label_set_xalign(GTK_LABEL(label), numeric ? 1.f : 0.f);
  if (numeric)
    gtk_widget_add_css_class(label, "numeric");
  if (swatch) {
    /* A small square of the category's colour before the name. */
    char hex[8];
    g_snprintf(hex, sizeof hex, "#%02x%02x%02x", (guint)(swatch->red * 255.f + .5f),
               (guint)(swatch->green * 255.f + .5f), (guint)(swatch->blue * 255.f + .5f));
    g_autofree char *markup =
        g_markup_printf_escaped("<span foreground=\"%s\">■</span> %s", hex, text);
    gtk_label_set_markup(GTK_LABEL(label), markup);
  }
  gtk_grid_attach(grid, label, col, row, 1, 1);
}

/* The legend: a column per device, a row per category, exact bytes in each cell. */
static void
update_legend(WhittlePlannerPage *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->legend))))
    gtk_grid_remove(self->legend, child);
  if (!self->has_plan)
    return;
  const wh_plan *p = &self->plan;
  for (guint i = 0; i < p->n_devices; i++)
    add_legend_cell(self->legend, p->devices[i].device.name, (int)i + 1, 0, TRUE, NULL);
  for (WhittleMemoryCategory c = 0; c < WHITTLE_MEMORY_N_CATEGORIES; c++) {
    guint64 any = 0;
    for (guint i = 0; i < p->n_devices; i++)
      any |= whittle_memory_chart_category_bytes(p, i, c);
    if (c == WHITTLE_MEMORY_OVERFLOW && any == 0)
      continue;
    add_legend_cell(self->legend, whittle_memory_chart_category_name(c), 0, (int)c + 1, FALSE,
                    whittle_memory_chart_category_color(c));
    for (guint i = 0; i < p->n_devices; i++) {
      g_autofree char *size = g_format_size(whittle_memory_chart_category_bytes(p, i, c));
      add_legend_cell(self->legend, size, (int)i + 1, (int)c + 1, TRUE, NULL);
    }
  }
}

static void
update_labels(WhittlePlannerPage *self)
{
  g_autofree char *ctx = g_strdup_printf("%u", current_ctx(self));
  gtk_label_set_text(self->ctx_label, ctx);
  guint32 ngl = self->has_plan ? self->plan.n_gpu_layers
                               : (guint32)gtk_range_get_value(GTK_RANGE(self->ngl_scale));
  guint32 n_max = self->hp ? self->hp->n_layer + 1 : 0;
  /* Translators: GPU layers out of all layers (the output layer counts as one). */
  g_autofree char *ngl_text = g_strdup_printf(_("%u / %u"), ngl, n_max);
  gtk_label_set_text(self->ngl_label, ngl_text);
}

static void recompute_full(WhittlePlannerPage *self, gboolean force_auto);

static void
recompute(WhittlePlannerPage *self)
{
  recompute_full(self, FALSE);
}

/* @force_auto: plan with auto GPU layers whatever the switch says (Fit Automatically; with
 * no GPU, auto still finds the longest context that fits). */
static void
recompute_full(WhittlePlannerPage *self, gboolean force_auto)
{
  if (self->hp == NULL || self->devices == NULL) {
    self->has_plan = FALSE;
    return;
  }
  const wh_device *gpu = selected_gpu(self);
  wh_planner_params params = wh_planner_default_params();
  params.n_ctx = current_ctx(self);
  params.kv_type = kv_types[MIN(adw_combo_row_get_selected(self->kv_row), 2u)];
  params.mmap = gtk_switch_get_active(self->mmap_switch);
  params.device = gpu ? gpu->name : NULL;
  if (force_auto)
    params.n_gpu_layers = WH_PLANNER_NGL_AUTO;
  else if (gpu == NULL)
    params.n_gpu_layers = 0;
  else if (gtk_switch_get_active(self->auto_switch))
    params.n_gpu_layers = WH_PLANNER_NGL_AUTO;
  else
    params.n_gpu_layers = (gint32)gtk_range_get_value(GTK_RANGE(self->ngl_scale));

  g_autoptr(GError) error = NULL;
  self->has_plan = wh_planner_compute(self->hp, self->devices, &params, &self->plan, &error);
  if (!self->has_plan) {
    whittle_memory_chart_set_plan(self->chart, NULL);
    update_legend(self);
    set_verdict(self, "dialog-error-symbolic", "error", error->message);
    update_labels(self);
    return;
  }

  const wh_plan *p = &self->plan;
  if (p->is_auto && gpu) { /* show what auto chose on the slider */
    self->updating++;
    gtk_range_set_value(GTK_RANGE(self->ngl_scale), p->n_gpu_layers);
    self->updating--;
  }
  whittle_memory_chart_set_plan(self->chart, p);
  update_legend(self);
  update_labels(self);

  g_autofree char *text = NULL;
  guint32 all = p->n_layer + 1;
  if (p->verdict == WH_PLAN_NO) {
    if (p->is_auto && p->max_n_ctx > 0)
      text = g_strdup_printf(_("Doesn’t fit at this context length — it fits with up to %u "
                               "tokens of context"),
                             p->max_n_ctx);
    else
      text = g_strdup(_("Doesn’t fit — try a smaller quantization such as Q4_K_M, a shorter "
                        "context or a Q8_0 KV cache"));
    set_verdict(self, "dialog-error-symbolic", "error", text);
  } else if (p->verdict == WH_PLAN_PARTIAL) {
    text = g_strdup_printf(_("Partial offload: %u of %u layers on the GPU, the rest on the CPU"),
                           p->n_gpu_layers, all);
    set_verdict(self, "dialog-warning-symbolic", "warning", text);
  } else if (p->n_gpu_layers > 0) {
    text = g_strdup(_("Fits entirely on the GPU"));
    set_verdict(self, "emblem-ok-symbolic", "success", text);
  } else {
    text = gpu ? g_strdup(_("Fits in system memory, running on the CPU only"))
               : g_strdup(_("Fits in system memory — no GPU found, so the CPU runs it"));
    set_verdict(self, "emblem-ok-symbolic", "success", text);
  }
  if (p->gpu_note[0]) {
    /* The GPU's backend holds layers back (a weight or KV type it has no kernels for): the
     * engine's sentence says which and why, as loading will. */
    g_autofree char *note = g_strdup(p->gpu_note);
    note[0] = g_ascii_toupper(note[0]);
    g_autofree char *more = g_strdup_printf("%s. %s.", text, note);
    g_free(text);
    text = g_steal_pointer(&more);
    if (p->verdict == WH_PLAN_NO)
      set_verdict(self, "dialog-error-symbolic", "error", text);
    else
      set_verdict(self, "dialog-warning-symbolic", "warning", text);
  }
  if (p->mapped_exceeds_ram) {
    g_autofree char *more = g_strconcat(
        text, " ", _("(the weights are larger than free RAM: they will be re-read from disk)"),
        NULL);
    set_verdict(self, "dialog-warning-symbolic", "warning", more);
  }
}

static void
on_control_changed(WhittlePlannerPage *self)
{
  if (self->updating)
    return;
  recompute(self);
}

/* Sliders and rows follow the model and the devices. */
static void
setup_controls(WhittlePlannerPage *self)
{
  self->updating++;
  const wh_device *gpu = selected_gpu(self);
  gboolean has_gpu = gpu != NULL;
  double lo = log2((double)ctx_min(self)), hi = log2((double)ctx_max(self));
  gtk_range_set_range(GTK_RANGE(self->ctx_scale), lo, MAX(hi, lo + 0.01));
  gtk_range_set_increments(GTK_RANGE(self->ctx_scale), 0.05, 1.0);
  gtk_scale_clear_marks(self->ctx_scale);
  for (guint32 t = 256; t <= ctx_max(self); t *= 2)
    gtk_scale_add_mark(self->ctx_scale, log2((double)t), GTK_POS_BOTTOM, NULL);
  guint32 want = 4096;
  WhittleApplication *app = get_app();
  GSettings *settings = app ? whittle_application_get_settings(app) : NULL;
  if (settings)
    want = g_settings_get_uint(settings, "default-context-length");
  want = CLAMP(want, ctx_min(self), ctx_max(self));
  gtk_range_set_value(GTK_RANGE(self->ctx_scale), log2((double)want));

  guint32 n_max = self->hp ? self->hp->n_layer + 1 : 1;
  gtk_range_set_range(GTK_RANGE(self->ngl_scale), 0, n_max);
  gtk_range_set_increments(GTK_RANGE(self->ngl_scale), 1, 4);
  gtk_widget_set_sensitive(GTK_WIDGET(self->ngl_scale),
                           has_gpu && !gtk_switch_get_active(self->auto_switch));
  gtk_widget_set_sensitive(GTK_WIDGET(self->auto_switch), has_gpu);
  gtk_widget_set_sensitive(GTK_WIDGET(self->device_row), has_gpu);
  if (!has_gpu) {
    gtk_switch_set_active(self->auto_switch, FALSE);
    gtk_range_set_value(GTK_RANGE(self->ngl_scale), 0);
    adw_action_row_set_subtitle(self->ngl_row, _("No GPU found: every layer runs on the CPU"));
  } else {
    adw_action_row_set_subtitle(self->ngl_row,
                                _("Layers run on the GPU from the last one down; the last step "
                                  "is the output layer"));
  }
  self->updating--;
}

static void
show_model(WhittlePlannerPage *self)
{
  gboolean ready = self->hp != NULL;
  if (ready) {
    adw_action_row_set_subtitle(self->model_info_row, self->model_title);
    setup_controls(self);
    recompute(self);
  }
  gtk_stack_set_visible_child_name(self->stack, ready ? "plan" : "empty");
  g_object_notify_by_pspec(G_OBJECT(self), props[PROP_READY]);
}

/* --- jobs: a header, the devices, the library -------------------------------------------- */

typedef struct {
  char *path;
  char *title;
  wh_model_hparams *hp;
} HeaderTask;

static void
header_task_free(gpointer p)
{
  HeaderTask *t = p;
  g_free(t->path);
  g_free(t->title);
  g_free(t->hp);
  g_free(t);
}

static gboolean
read_header_job(wh_job *job, gpointer user_data, GError **error)
{
  HeaderTask *t = user_data;
  wh_gguf *g = wh_gguf_open(t->path, error);
  if (g == NULL)
    return FALSE;
  t->hp = g_new0(wh_model_hparams, 1);
  gboolean ok = wh_model_hparams_from_gguf(g, t->hp, error);
  const char *name = wh_gguf_get_string(g, "general.name");
  g_autofree char *base = g_path_get_basename(t->path);
  t->title = name && *name ? g_strdup_printf("%s — %s", name, base) : g_strdup(base);
  wh_gguf_close(g);
  wh_job_set_result(job, t, NULL); /* freed as the job's user data */
  return ok;
}

static void
take_hparams(WhittlePlannerPage *self, wh_model_hparams *hp, const char *title)
{
  g_free(self->hp);
  self->hp = hp;
  g_free(self->model_title);
  self->model_title = g_strdup(title);
  show_model(self);
}

static void
show_error(WhittlePlannerPage *self, const char *what, const GError *error)
{
  g_autofree char *msg = g_strdup_printf("%s: %s", what, error ? error->message : _("cancelled"));
  if (self->hp) {
    set_verdict(self, "dialog-error-symbolic", "error", msg);
  } else {
    adw_status_page_set_description(self->status_page, msg);
    gtk_stack_set_visible_child_name(self->stack, "empty");
  }
}

static void
on_header_notify(wh_job *job, gpointer user_data)
{
  WhittlePlannerPage *self = user_data;
  if (job != self->header_job || !wh_job_is_finished(job))
    return;
  if (wh_job_get_state(job) == WH_JOB_SUCCEEDED) {
    HeaderTask *t = wh_job_get_result(job);
    take_hparams(self, g_steal_pointer(&t->hp), t->title);
  } else if (wh_job_get_state(job) == WH_JOB_FAILED) {
    show_error(self, _("Could not read the model"), wh_job_get_error(job));
  }
  g_clear_pointer(&self->header_job, wh_job_unref);
}

void
whittle_planner_page_open_file(WhittlePlannerPage *self, const char *path)
{
  g_return_if_fail(WHITTLE_IS_PLANNER_PAGE(self) && path != NULL);
  if (self->header_job)
    wh_job_cancel(self->header_job);
  g_clear_pointer(&self->header_job, wh_job_unref);
  g_free(self->model_path);
  self->model_path = g_strdup(path);

  /* Select the model in the chooser when it is there. */
  self->updating++;
  guint sel = 0;
  for (guint i = 0; self->library_paths && i < self->library_paths->len; i++)
    if (g_strcmp0(self->library_paths->pdata[i], path) == 0)
      sel = i + 1;
  adw_combo_row_set_selected(self->model_row, sel);
  self->updating--;

  HeaderTask *t = g_new0(HeaderTask, 1);
  t->path = g_strdup(path);
  g_autofree char *base = g_path_get_basename(path);
  g_autofree char *title = g_strdup_printf(_("Reading %s"), base);
  self->header_job = wh_job_queue_submit(self->queue, WH_JOB_LOAD, title, read_header_job, t,
                                         header_task_free, on_header_notify, self);
}

static void
on_remote_notify(wh_job *job, gpointer user_data)
{
  WhittlePlannerPage *self = user_data;
  if (job != self->header_job || !wh_job_is_finished(job))
    return;
  if (wh_job_get_state(job) == WH_JOB_SUCCEEDED) {
    const wh_gguf *g = wh_job_get_result(job);
    wh_model_hparams *hp = g_new0(wh_model_hparams, 1);
    g_autoptr(GError) error = NULL;
    if (wh_model_hparams_from_gguf(g, hp, &error)) {
      take_hparams(self, hp, wh_job_get_title(job));
    } else {
      g_free(hp);
      show_error(self, _("Could not plan the remote model"), error);
    }
  } else if (wh_job_get_state(job) == WH_JOB_FAILED) {
    show_error(self, _("Could not read the remote model"), wh_job_get_error(job));
  }
  g_clear_pointer(&self->header_job, wh_job_unref);
}

void
whittle_planner_page_open_remote(WhittlePlannerPage *self, const char *repo_id,
                                 const char *filename)
{
  g_return_if_fail(WHITTLE_IS_PLANNER_PAGE(self));
  WhittleApplication *app = get_app();
  wh_hub *hub = app ? whittle_application_get_hub(app) : NULL;
  if (hub == NULL) {
    show_error(self, _("Could not read the remote model"), NULL);
    return;
  }
  if (self->header_job)
    wh_job_cancel(self->header_job);
  g_clear_pointer(&self->header_job, wh_job_unref);
  g_clear_pointer(&self->model_path, g_free);
  self->header_job = wh_hub_read_gguf_header_async(hub, self->queue, repo_id, NULL, filename,
                                                   on_remote_notify, self);
}

static gboolean
devices_job(wh_job *job, gpointer user_data, GError **error)
{
  (void)user_data;
  (void)error;
  wh_job_set_result(job, wh_devices_enumerate(), (GDestroyNotify)wh_device_list_free);
  return TRUE;
}

static void
fill_device_row(WhittlePlannerPage *self)
{
  GtkStringList *names = gtk_string_list_new(NULL);
  guint preferred = 0, k = 0;
  WhittleApplication *app = get_app();
  GSettings *settings = app ? whittle_application_get_settings(app) : NULL;
  g_autofree char *want = settings ? g_settings_get_string(settings, "preferred-gpu") : NULL;
  for (guint i = 0; i < self->devices->n; i++) {
    const wh_device *d = &self->devices->devices[i];
    if (d->api == WH_DEVICE_API_HOST)
      continue;
    if (want && *want && g_strcmp0(want, d->name) == 0)
      preferred = k;
    gtk_string_list_append(names, d->name);
    k++;
  }
  if (k == 0)
    gtk_string_list_append(names, _("None found"));
  self->updating++;
  adw_combo_row_set_model(self->device_row, G_LIST_MODEL(names));
  adw_combo_row_set_selected(self->device_row, preferred);
  self->updating--;
  g_object_unref(names);
}

void
whittle_planner_page_set_devices(WhittlePlannerPage *self, wh_device_list *devices)
{
  g_return_if_fail(WHITTLE_IS_PLANNER_PAGE(self) && devices != NULL);
  wh_device_list_free(self->devices);
  self->devices = devices;
  fill_device_row(self);
  if (self->hp) {
    setup_controls(self);
    recompute(self);
  }
}

static void
on_devices_notify(wh_job *job, gpointer user_data)
{
  WhittlePlannerPage *self = user_data;
  if (job != self->devices_job || !wh_job_is_finished(job))
    return;
  if (wh_job_get_state(job) == WH_JOB_SUCCEEDED && self->devices == NULL) {
    /* Take the list over from the job. */
    wh_device_list *list = wh_job_get_result(job);
    wh_device_list *copy = wh_device_list_new();
    for (guint i = 0; i < list->n; i++)
      wh_device_list_add(copy, &list->devices[i]);
    whittle_planner_page_set_devices(self, copy);
  }
  g_clear_pointer(&self->devices_job, wh_job_unref);
}

static void
on_scan_notify(wh_job *job, gpointer user_data)
{
  WhittlePlannerPage *self = user_data;
  if (job != self->scan_job || !wh_job_is_finished(job))
    return;
  if (wh_job_get_state(job) == WH_JOB_SUCCEEDED) {
    GPtrArray *entries = wh_job_get_result(job);
    GtkStringList *names = gtk_string_list_new(NULL);
    gtk_string_list_append(names, _("Choose a model…"));
    g_clear_pointer(&self->library_paths, g_ptr_array_unref);
    self->library_paths = g_ptr_array_new_with_free_func(g_free);
    guint sel = 0;
    for (guint i = 0; i < entries->len; i++) {
      const wh_library_entry *e = entries->pdata[i];
      if (e->is_projector || e->error || !e->complete || e->paths == NULL || !e->paths[0])
        continue;
      g_autofree char *label =
          e->quant ? g_strdup_printf("%s (%s)", e->name, e->quant) : g_strdup(e->name);
      gtk_string_list_append(names, label);
      g_ptr_array_add(self->library_paths, g_strdup(e->paths[0]));
      if (g_strcmp0(e->paths[0], self->model_path) == 0)
        sel = self->library_paths->len;
    }
    self->updating++;
    adw_combo_row_set_model(self->model_row, G_LIST_MODEL(names));
    adw_combo_row_set_selected(self->model_row, sel);
    self->updating--;
    g_object_unref(names);
  }
  g_clear_pointer(&self->scan_job, wh_job_unref);
}

static void
on_model_selected(WhittlePlannerPage *self)
{
  if (self->updating)
    return;
  guint sel = adw_combo_row_get_selected(self->model_row);
  if (sel == 0 || self->library_paths == NULL || sel > self->library_paths->len)
    return;
  whittle_planner_page_open_file(self, self->library_paths->pdata[sel - 1]);
}

static void
on_map(WhittlePlannerPage *self)
{
  if (self->devices == NULL && self->devices_job == NULL)
    self->devices_job = wh_job_queue_submit(self->queue, WH_JOB_LOAD, _("Finding GPUs"),
                                            devices_job, NULL, NULL, on_devices_notify, self);
  WhittleApplication *app = get_app();
  wh_library *lib = app ? whittle_application_get_library(app) : NULL;
  if (lib && self->scan_job == NULL)
    self->scan_job = wh_library_scan_async(lib, self->queue, on_scan_notify, self);
}

/* --- actions ----------------------------------------------------------------------------- */

static void
on_file_chosen(GtkNativeDialog *dialog, int response, gpointer user_data)
{
  WhittlePlannerPage *self = user_data;
  if (response == GTK_RESPONSE_ACCEPT) {
    g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
    g_autofree char *path = file ? g_file_get_path(file) : NULL;
    if (path)
      whittle_planner_page_open_file(self, path);
  }
  g_object_unref(dialog);
  g_object_unref(self);
}

static void
action_open_file(GtkWidget *widget, const char *action_name, GVariant *param)
{
  (void)action_name;
  (void)param;
  GtkRoot *root = gtk_widget_get_root(widget);
  GtkFileChooserNative *dialog = gtk_file_chooser_native_new(
      _("Open GGUF File"), GTK_IS_WINDOW(root) ? GTK_WINDOW(root) : NULL,
      GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"), _("_Cancel"));
  GtkFileFilter *filter = gtk_file_filter_new();
  gtk_file_filter_set_name(filter, _("GGUF models"));
  gtk_file_filter_add_pattern(filter, "*.gguf");
  gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(dialog), filter);
  g_object_unref(filter);
  g_signal_connect(dialog, "response", G_CALLBACK(on_file_chosen), g_object_ref(widget));
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(dialog));
}

static void
on_fit_clicked(WhittlePlannerPage *self)
{
  whittle_planner_page_fit(self);
}

void
whittle_planner_page_fit(WhittlePlannerPage *self)
{
  g_return_if_fail(WHITTLE_IS_PLANNER_PAGE(self));
  if (self->hp == NULL)
    return;
  self->updating++;
  if (selected_gpu(self))
    gtk_switch_set_active(self->auto_switch, TRUE);
  gtk_widget_set_sensitive(GTK_WIDGET(self->ngl_scale), FALSE);
  self->updating--;
  recompute_full(self, TRUE);
  /* Auto could not fit even at 0 layers... the context has to shrink. */
  if (self->has_plan && self->plan.verdict == WH_PLAN_NO && self->plan.max_n_ctx > 0) {
    self->updating++;
    gtk_range_set_value(GTK_RANGE(self->ctx_scale), log2((double)self->plan.max_n_ctx));
    self->updating--;
    recompute(self);
  }
}

static void
on_auto_changed(WhittlePlannerPage *self)
{
  gtk_widget_set_sensitive(GTK_WIDGET(self->ngl_scale),
                           selected_gpu(self) && !gtk_switch_get_active(self->auto_switch));
  on_control_changed(self);
}

/* --- test-facing setters ----------------------------------------------------------------- */

gboolean
whittle_planner_page_is_ready(WhittlePlannerPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_PLANNER_PAGE(self), FALSE);
  return self->hp != NULL && self->devices != NULL && self->has_plan && self->header_job == NULL;
}

const wh_plan *
whittle_planner_page_get_plan(WhittlePlannerPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_PLANNER_PAGE(self), NULL);
  return self->has_plan ? &self->plan : NULL;
}

const char *
whittle_planner_page_get_verdict_text(WhittlePlannerPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_PLANNER_PAGE(self), NULL);
  return self->verdict_text ? self->verdict_text : "";
}

void
whittle_planner_page_set_context(WhittlePlannerPage *self, guint32 n_ctx)
{
  g_return_if_fail(WHITTLE_IS_PLANNER_PAGE(self));
  gtk_range_set_value(GTK_RANGE(self->ctx_scale), log2((double)MAX(n_ctx, 1u)));
}

void
whittle_planner_page_set_gpu_layers(WhittlePlannerPage *self, gint32 n_gpu_layers)
{
  g_return_if_fail(WHITTLE_IS_PLANNER_PAGE(self));
  if (n_gpu_layers == WH_PLANNER_NGL_AUTO) {
    gtk_switch_set_active(self->auto_switch, TRUE);
    return;
  }
  self->updating++;
  gtk_switch_set_active(self->auto_switch, FALSE);
  self->updating--;
  gtk_widget_set_sensitive(GTK_WIDGET(self->ngl_scale), selected_gpu(self) != NULL);
  gtk_range_set_value(GTK_RANGE(self->ngl_scale), n_gpu_layers);
  recompute(self);
}

void
whittle_planner_page_set_kv_type(WhittlePlannerPage *self, wh_kv_type kv_type)
{
  g_return_if_fail(WHITTLE_IS_PLANNER_PAGE(self));
  for (guint i = 0; i < G_N_ELEMENTS(kv_types); i++)
    if (kv_types[i] == kv_type)
      adw_combo_row_set_selected(self->kv_row, i);
}

/* --- GObject ----------------------------------------------------------------------------- */

static void
whittle_planner_page_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  WhittlePlannerPage *self = WHITTLE_PLANNER_PAGE(object);
  switch (prop_id) {
  case PROP_READY:
    g_value_set_boolean(value, whittle_planner_page_is_ready(self));
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void
whittle_planner_page_dispose(GObject *object)
{
  WhittlePlannerPage *self = WHITTLE_PLANNER_PAGE(object);
  /* Jobs hold `self` as notify data: freeing the page's queue cancels them and ends their
   * notifications. */
  g_clear_pointer(&self->queue, wh_job_queue_free);
  g_clear_pointer(&self->header_job, wh_job_unref);
  g_clear_pointer(&self->devices_job, wh_job_unref);
  g_clear_pointer(&self->scan_job, wh_job_unref);
  gtk_widget_dispose_template(GTK_WIDGET(object), WHITTLE_TYPE_PLANNER_PAGE);
  G_OBJECT_CLASS(whittle_planner_page_parent_class)->dispose(object);
}

static void
whittle_planner_page_finalize(GObject *object)
{
  WhittlePlannerPage *self = WHITTLE_PLANNER_PAGE(object);
  g_free(self->hp);
  g_free(self->model_title);
  g_free(self->model_path);
  g_free(self->verdict_text);
  wh_device_list_free(self->devices);
  g_clear_pointer(&self->library_paths, g_ptr_array_unref);
  G_OBJECT_CLASS(whittle_planner_page_parent_class)->finalize(object);
}

static void
whittle_planner_page_class_init(WhittlePlannerPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
  object_class->dispose = whittle_planner_page_dispose;
  object_class->finalize = whittle_planner_page_finalize;
  object_class->get_property = whittle_planner_page_get_property;

  props[PROP_READY] =
      g_param_spec_boolean("ready", NULL, NULL, FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties(object_class, N_PROPS, props);

  g_type_ensure(WHITTLE_TYPE_MEMORY_CHART);
  gtk_widget_class_set_template_from_resource(widget_class,
                                              "/io/github/whittle/Whittle/whittle-planner-page.ui");
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, status_page);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, model_row);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, model_info_row);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, verdict_box);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, verdict_icon);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, verdict_label);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, fit_button);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, chart);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, legend);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, ctx_scale);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, ctx_label);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, ngl_scale);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, ngl_label);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, ngl_row);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, auto_switch);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, kv_row);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, device_row);
  gtk_widget_class_bind_template_child(widget_class, WhittlePlannerPage, mmap_switch);
  gtk_widget_class_bind_template_callback(widget_class, on_fit_clicked);
  gtk_widget_class_install_action(widget_class, "planner.open-file", NULL, action_open_file);
}

static void
whittle_planner_page_init(WhittlePlannerPage *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
  /* The AdwBin child is not a bound template child (see DESIGN.md, "Pitfall"). */
  self->stack = GTK_STACK(adw_bin_get_child(ADW_BIN(self)));

  self->queue = wh_job_queue_new(NULL, 0);

  g_signal_connect_swapped(self->ctx_scale, "value-changed", G_CALLBACK(on_control_changed), self);
  g_signal_connect_swapped(self->ngl_scale, "value-changed", G_CALLBACK(on_control_changed), self);
  g_signal_connect_swapped(self->auto_switch, "notify::active", G_CALLBACK(on_auto_changed), self);
  g_signal_connect_swapped(self->kv_row, "notify::selected", G_CALLBACK(on_control_changed), self);
  g_signal_connect_swapped(self->device_row, "notify::selected", G_CALLBACK(on_control_changed),
                           self);
  g_signal_connect_swapped(self->mmap_switch, "notify::active", G_CALLBACK(on_control_changed),
                           self);
  g_signal_connect_swapped(self->model_row, "notify::selected", G_CALLBACK(on_model_selected),
                           self);
  g_signal_connect_swapped(self, "map", G_CALLBACK(on_map), self);
}
