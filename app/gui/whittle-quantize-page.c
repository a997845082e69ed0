/* whittle-quantize-page.c — see whittle-quantize-page.h. */
#include "config.h"

#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "backend/devices.h"
#include "eval/eval.h"
#include "gguf/gguf-types.h"
#include "library/library.h"
#include "quantize/quantize.h"
#include "session/session.h"
#include "tokenizer/tokenizer.h"
#include "whittle-application.h"
#include "whittle-quality-chart.h"
#include "whittle-quantize-page.h"

/* The types offered, best quality first, with their published quality figure: the perplexity
 * increase of Llama-3-8B over F16 listed for each type by llama.cpp's quantize tool
 * (tools/quantize/quantize.cpp, QUANT_OPTIONS; "+0.4685 ppl @ Llama-3-8B" for Q4_0). A negative
 * figure means none was published for that model. */
static const struct {
  const char *name;
  double ppl_increase;
} offered_types[] = {
    {"F16", 0},         {"BF16", 0},        {"Q8_0", 0.0026},   {"Q6_K", 0.0217},
    {"Q5_K_M", 0.0569}, {"Q5_K_S", 0.1049}, {"Q5_1", 0.1062},   {"Q5_0", 0.1316},
    {"Q4_K_M", 0.1754}, {"Q4_K_S", 0.2689}, {"IQ4_XS", -1},     {"IQ4_NL", -1},
    {"Q4_1", 0.4511},   {"Q4_0", 0.4685},   {"Q3_K_L", 0.5562}, {"Q3_K_M", 0.6569},
    {"Q3_K_S", 1.6321}, {"Q2_K", 3.5199},   {"IQ3_XXS", -1},    {"IQ2_XS", -1},
};

typedef struct {
  gint ftype;
  guint64 size;  /* from the dry run; 0 when it failed */
  char *problem; /* why it cannot be chosen, or NULL */
  GtkCheckButton *check;
} TypeRow;

struct _WhittleQuantizePage {
  AdwBin parent_instance;

  char *source;
  guint64 source_size;
  gboolean requantize;
  TypeRow rows[G_N_ELEMENTS(offered_types)];
  int selected; /* index into rows, -1 none */
  char *imatrix;
  char *output;
  char *error;
  guint64 output_size;
  wh_job *job;
  wh_job *eval_job;
  char *calibration_text;    /* text to compute an importance matrix from, or NULL */
  char *computed_imatrix;    /* where the computed one goes */
  gboolean quantize_pending; /* the matrix is done, the quantization about to start */
  char *results_text;        /* size before -> after, without the measurements */
  double ppl, base_ppl, kld, tokens_per_second;
  wh_job_queue *scan_queue; /* the page's own: listing the Library is not a user job */
  wh_job *scan_job;         /* listing the Library's models for the source step */
  guint n_library_sources;

  /* template children */
  GtkStack *steps;
  GtkLabel *source_label;
  GtkLabel *source_warning;
  GtkListBox *library_list;
  GtkLabel *type_intro;
  GtkListBox *type_list;
  GtkCheckButton *imatrix_none;
  GtkCheckButton *imatrix_file;
  GtkCheckButton *imatrix_compute;
  GtkLabel *text_label;
  GtkLabel *imatrix_label;
  AdwStatusPage *run_page;
  GtkProgressBar *run_progress;
  GtkLabel *run_label;
  AdwStatusPage *results_page;
  WhittleQualityChart *quality_chart;
  GtkActionBar *nav_bar;
  GtkButton *next_button;
};

G_DEFINE_FINAL_TYPE(WhittleQuantizePage, whittle_quantize_page, ADW_TYPE_BIN)

static void start_eval(WhittleQuantizePage *self, wh_job_queue *queue);
static void show_results(WhittleQuantizePage *self, const char *measured);

/* --- helpers -------------------------------------------------------------------------------- */

static WhittleApplication *
app_of(WhittleQuantizePage *self)
{
  GtkRoot *root = gtk_widget_get_root(GTK_WIDGET(self));
  GtkApplication *app = GTK_IS_WINDOW(root) ? gtk_window_get_application(GTK_WINDOW(root)) : NULL;
  return WHITTLE_IS_APPLICATION(app) ? WHITTLE_APPLICATION(app) : NULL;
}

static void
update_nav(WhittleQuantizePage *self)
{
  if (!self->steps) /* the radio group toggles while the template is torn down */
    return;
  const char *step = gtk_stack_get_visible_child_name(self->steps);
  gboolean running = self->job != NULL;
  gboolean show = g_strcmp0(step, "run") != 0 && g_strcmp0(step, "results") != 0;
  gtk_widget_set_visible(GTK_WIDGET(self->nav_bar), show);
  gtk_widget_action_set_enabled(GTK_WIDGET(self), "quantize.back",
                                !running && g_strcmp0(step, "source") != 0);
  gboolean can_next = FALSE;
  if (g_strcmp0(step, "source") == 0)
    can_next = self->source != NULL;
  else if (g_strcmp0(step, "type") == 0)
    can_next = self->selected >= 0;
  else if (g_strcmp0(step, "imatrix") == 0)
    can_next = (!gtk_check_button_get_active(self->imatrix_file) || self->imatrix) &&
               (!gtk_check_button_get_active(self->imatrix_compute) || self->calibration_text);
  gtk_widget_action_set_enabled(GTK_WIDGET(self), "quantize.next", can_next && !running);
  gtk_button_set_label(self->next_button,
                       g_strcmp0(step, "imatrix") == 0 ? _("_Quantize") : _("_Next"));
  gtk_widget_action_set_enabled(GTK_WIDGET(self), "quantize.cancel", running);
}

static void
show_step(WhittleQuantizePage *self, const char *step)
{
  gtk_stack_set_visible_child_name(self->steps, step);
  update_nav(self);
}

static char *
fit_text(guint64 size)
{
  g_autoptr(GPtrArray) fits = g_ptr_array_new_with_free_func(g_free);
  wh_device_list *devs = wh_devices_enumerate();
  for (guint i = 0; devs && i < devs->n; i++) {
    const wh_device *d = &devs->devices[i];
    if (d->free_known && size < d->free)
      g_ptr_array_add(fits, g_strdup(wh_device_is_gpu(d) ? d->name : _("RAM")));
  }
  wh_device_list_free(devs);
  if (fits->len == 0)
    return g_strdup(_("too large for this machine’s free memory"));
  g_ptr_array_add(fits, NULL);
  g_autofree char *where = g_strjoinv(_(", "), (char **)fits->pdata);
  /* Translators: %s lists where the weights fit, e.g. “RAM, NVIDIA GeForce RTX 3060” */
  return g_strdup_printf(_("weights fit in %s"), where);
}

static void
clear_rows(WhittleQuantizePage *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->type_list))))
    gtk_list_box_remove(self->type_list, child);
  for (guint i = 0; i < G_N_ELEMENTS(self->rows); i++) {
    g_clear_pointer(&self->rows[i].problem, g_free);
    self->rows[i].size = 0;
    self->rows[i].check = NULL;
  }
  self->selected = -1;
}

static void
on_type_toggled(GtkCheckButton *check, WhittleQuantizePage *self)
{
  if (!gtk_check_button_get_active(check))
    return;
  self->selected = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(check), "index"));
  update_nav(self);
}

/* Dry runs of every offered type: exact sizes, or why a type is not possible. */
static void
fill_types(WhittleQuantizePage *self)
{
  clear_rows(self);
  GtkCheckButton *group = NULL;
  for (guint i = 0; i < G_N_ELEMENTS(offered_types); i++) {
    TypeRow *r = &self->rows[i];
    r->ftype = wh_ftype_from_name(offered_types[i].name);
    if (r->ftype < 0)
      continue;
    wh_quantize_params p = wh_quantize_default_params();
    p.ftype = r->ftype;
    p.allow_requantize = self->requantize;
    p.imatrix_path = self->imatrix;
    p.dry_run = TRUE;
    g_autoptr(GError) error = NULL;
    wh_quantize_plan *plan = wh_quantize_plan_new(self->source, &p, &error);
    if (plan) {
      r->size = wh_quantize_plan_file_size(plan);
      wh_quantize_plan_free(plan);
    } else {
      r->problem =
          g_error_matches(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_NEEDS_IMATRIX)
              ? g_strdup(_("needs an importance matrix (choose one in the next step first)"))
              : g_strdup(error->message);
    }

    GtkWidget *row = adw_action_row_new();
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), offered_types[i].name);
    g_autofree char *subtitle = NULL;
    if (r->problem) {
      subtitle = g_strdup(r->problem);
    } else {
      g_autofree char *size = g_format_size(r->size);
      g_autofree char *fit = fit_text(r->size);
      double pct = self->source_size ? 100.0 * (double)r->size / (double)self->source_size : 0;
      double q = offered_types[i].ppl_increase;
      g_autofree char *quality =
          q < 0    ? g_strdup(_("no published figure"))
          : q == 0 ? g_strdup(_("lossless"))
                   /* Translators: published perplexity increase, e.g. “+0.1754 perplexity” */
                   : g_strdup_printf(_("+%.4f perplexity"), q);
      /* Translators: size · percent of the source · quality · fit */
      subtitle = g_strdup_printf(_("%s (%.0f%% of the source) · %s · %s"), size, pct, quality, fit);
    }
    adw_action_row_set_subtitle(ADW_ACTION_ROW(row), subtitle);
    GtkWidget *check = gtk_check_button_new();
    gtk_check_button_set_group(GTK_CHECK_BUTTON(check), group);
    if (!group)
      group = GTK_CHECK_BUTTON(check);
    gtk_widget_set_valign(check, GTK_ALIGN_CENTER);
    gtk_accessible_update_property(GTK_ACCESSIBLE(check), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                   offered_types[i].name, -1);
    g_object_set_data(G_OBJECT(check), "index", GINT_TO_POINTER(i));
    g_signal_connect_object(check, "toggled", G_CALLBACK(on_type_toggled), self, 0);
    adw_action_row_add_prefix(ADW_ACTION_ROW(row), check);
    adw_action_row_set_activatable_widget(ADW_ACTION_ROW(row), check);
    gtk_widget_set_sensitive(row, r->problem == NULL);
    r->check = GTK_CHECK_BUTTON(check);
    gtk_list_box_append(self->type_list, row);
  }
}

/* --- steps ---------------------------------------------------------------------------------- */

gboolean
whittle_quantize_page_open_file(WhittleQuantizePage *self, const char *path, GError **error)
{
  g_return_val_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self) && path, FALSE);
  if (self->job)
    return FALSE;
  /* Plans for two types say whether the file can be read and whether it is already
   * quantized (a tensor already in the target type is only copied, so one type is not
   * enough to tell). */
  wh_quantize_params p = wh_quantize_default_params();
  p.dry_run = TRUE;
  g_autoptr(GError) local = NULL;
  wh_quantize_plan *plan = NULL;
  const char *probes[] = {"Q4_0", "Q8_0"};
  for (guint i = 0; i < G_N_ELEMENTS(probes) && !local; i++) {
    p.ftype = wh_ftype_from_name(probes[i]);
    wh_quantize_plan_free(plan);
    plan = wh_quantize_plan_new(path, &p, &local);
  }
  gboolean requantize = FALSE;
  if (!plan && g_error_matches(local, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_REQUANTIZE)) {
    requantize = TRUE;
    g_clear_error(&local);
    p.allow_requantize = TRUE;
    plan = wh_quantize_plan_new(path, &p, &local);
  }
  g_autofree char *base = g_path_get_basename(path);
  if (!plan) {
    /* Translators: %s is a file name, then the reason */
    g_autofree char *text =
        g_strdup_printf(_("“%s” cannot be quantized: %s"), base, local->message);
    gtk_label_set_label(self->source_label, text);
    g_free(self->error);
    self->error = g_strdup(local->message);
    g_propagate_error(error, g_steal_pointer(&local));
    show_step(self, "source");
    return FALSE;
  }
  self->source_size = wh_quantize_plan_input_size(plan);
  wh_quantize_plan_free(plan);
  g_free(self->source);
  self->source = g_strdup(path);
  g_clear_pointer(&self->error, g_free);
  self->requantize = requantize;
  g_autofree char *size = g_format_size(self->source_size);
  /* Translators: a file name and its size */
  g_autofree char *text = g_strdup_printf(_("%s (%s)"), base, size);
  gtk_label_set_label(self->source_label, text);
  gtk_label_set_label(self->source_warning,
                      _("This model is already quantized. Quantizing it again goes through F32 "
                        "and loses more quality than starting from F16 or BF16."));
  gtk_widget_set_visible(GTK_WIDGET(self->source_warning), requantize);
  /* Translators: %s is a file name and size */
  g_autofree char *intro = g_strdup_printf(_("Source: %s. Sizes are exact (a dry run)."), text);
  gtk_label_set_label(self->type_intro, intro);
  fill_types(self);
  show_step(self, "type");
  return TRUE;
}

const char *
whittle_quantize_page_get_step(WhittleQuantizePage *self)
{
  g_return_val_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self), NULL);
  return gtk_stack_get_visible_child_name(self->steps);
}

static int
find_type(WhittleQuantizePage *self, const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS(offered_types); i++)
    if (g_ascii_strcasecmp(offered_types[i].name, name) == 0 && self->rows[i].check)
      return (int)i;
  return -1;
}

guint64
whittle_quantize_page_get_planned_size(WhittleQuantizePage *self, const char *ftype_name)
{
  g_return_val_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self), 0);
  int i = find_type(self, ftype_name);
  return i >= 0 ? self->rows[i].size : 0;
}

gboolean
whittle_quantize_page_select_type(WhittleQuantizePage *self, const char *ftype_name)
{
  g_return_val_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self), FALSE);
  int i = find_type(self, ftype_name);
  if (i < 0 || self->rows[i].problem)
    return FALSE;
  gtk_check_button_set_active(self->rows[i].check, TRUE);
  self->selected = i;
  update_nav(self);
  return TRUE;
}

void
whittle_quantize_page_set_imatrix(WhittleQuantizePage *self, const char *path)
{
  g_return_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self));
  g_free(self->imatrix);
  self->imatrix = g_strdup(path);
  g_autofree char *base = path ? g_path_get_basename(path) : NULL;
  gtk_label_set_label(self->imatrix_label, base ? base : "");
  gtk_check_button_set_active(path ? self->imatrix_file : self->imatrix_none, TRUE);
  /* Sizes and the types that need one change with it. */
  if (self->source && !self->job) {
    int selected = self->selected;
    fill_types(self);
    if (selected >= 0 && !self->rows[selected].problem) {
      gtk_check_button_set_active(self->rows[selected].check, TRUE);
      self->selected = selected;
    }
  }
  update_nav(self);
}

void
whittle_quantize_page_set_calibration_text(WhittleQuantizePage *self, const char *path)
{
  g_return_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self));
  g_free(self->calibration_text);
  self->calibration_text = g_strdup(path);
  g_autofree char *base = path ? g_path_get_basename(path) : NULL;
  gtk_label_set_label(self->text_label, base ? base : "");
  if (path)
    gtk_check_button_set_active(self->imatrix_compute, TRUE);
  update_nav(self);
}

/* Whittle's own folder for quantized models (never next to the source: shared or read-only
 * folders stay untouched). */
static char *
output_path_for(WhittleQuantizePage *self, const char *type_name)
{
  g_autofree char *base = g_path_get_basename(self->source);
  if (g_str_has_suffix(base, ".gguf"))
    base[strlen(base) - 5] = '\0';
  g_autofree char *name = g_strdup_printf("%s-%s.gguf", base, type_name);
  g_autofree char *own = g_build_filename(g_get_user_data_dir(), "whittle", "quantized", NULL);
  return g_build_filename(own, name, NULL);
}

typedef struct {
  char *input, *output, *imatrix;
  wh_quantize_params params;
  wh_job *job;
  wh_quantize_result result;
} RunData;

static void
run_data_free(gpointer data)
{
  RunData *d = data;
  g_free(d->input);
  g_free(d->output);
  g_free(d->imatrix);
  g_free(d);
}

static void
on_run_progress(const wh_quantize_progress *p, gpointer data)
{
  RunData *d = data;
  char status[200];
  g_snprintf(status, sizeof status, "%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " %s",
             p->tensor_index + 1, p->n_tensors, p->tensor_name);
  wh_job_set_progress(d->job, p->bytes_done, p->bytes_total, status);
}

static gboolean
on_run_abort(gpointer data)
{
  return wh_job_is_cancelled(((RunData *)data)->job);
}

static gboolean
run_job(wh_job *job, gpointer data, GError **error)
{
  RunData *d = data;
  d->job = job;
  return wh_quantize_file(d->input, d->output, &d->params, &d->result, error);
}

/* The output folder is Whittle's own: make sure the Library lists it. */
static void
add_output_folder_to_library(WhittleQuantizePage *self)
{
  WhittleApplication *app = app_of(self);
  GSettings *settings = app ? whittle_application_get_settings(app) : NULL;
  g_autofree char *dir = g_path_get_dirname(self->output);
  g_autofree char *own = g_build_filename(g_get_user_data_dir(), "whittle", "quantized", NULL);
  if (!settings || g_strcmp0(dir, own) != 0)
    return;
  g_auto(GStrv) folders = g_settings_get_strv(settings, "library-folders");
  if (g_strv_contains((const char *const *)folders, dir))
    return;
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  g_strv_builder_addv(b, (const char **)folders);
  g_strv_builder_add(b, dir);
  g_auto(GStrv) updated = g_strv_builder_end(b);
  g_settings_set_strv(settings, "library-folders", (const char *const *)updated);
}

/* The types with a published figure and a planned size, this run's type highlighted. */
static void
fill_chart(WhittleQuantizePage *self)
{
  const char *names[G_N_ELEMENTS(offered_types)];
  double sizes[G_N_ELEMENTS(offered_types)], losses[G_N_ELEMENTS(offered_types)];
  guint n = 0;
  int highlight = -1;
  for (guint i = 0; i < G_N_ELEMENTS(offered_types); i++) {
    if (offered_types[i].ppl_increase < 0 || self->rows[i].size == 0 || !self->source_size)
      continue;
    if ((int)i == self->selected)
      highlight = (int)n;
    names[n] = offered_types[i].name;
    sizes[n] = (double)self->rows[i].size / (double)self->source_size;
    losses[n] = offered_types[i].ppl_increase;
    n++;
  }
  whittle_quality_chart_set_points(self->quality_chart, names, sizes, losses, n, highlight);
}

static void
on_run_notify(wh_job *job, gpointer user_data)
{
  WhittleQuantizePage *self = user_data;
  if (job != self->job)
    return;
  wh_job_progress p;
  wh_job_get_progress(job, &p);
  if (!wh_job_is_finished(job)) {
    gtk_progress_bar_set_fraction(self->run_progress, p.fraction > 0 ? p.fraction : 0);
    g_autofree char *rate = wh_job_progress_format(&p, TRUE);
    /* Translators: tensor n/N and its name, then rate and time left */
    g_autofree char *text = g_strdup_printf(_("Tensor %s\n%s"), p.status, rate ? rate : "");
    gtk_label_set_label(self->run_label, text);
    return;
  }
  RunData *d = wh_job_get_result(job);
  (void)d;
  wh_job_state state = wh_job_get_state(job);
  g_clear_pointer(&self->job, wh_job_unref);
  if (state == WH_JOB_SUCCEEDED) {
    GStatBuf st;
    self->output_size = g_stat(self->output, &st) == 0 ? (guint64)st.st_size : 0;
    g_autofree char *before = g_format_size(self->source_size);
    g_autofree char *after = g_format_size(self->output_size);
    g_autofree char *base = g_path_get_basename(self->output);
    /* Translators: file name, size before → after, seconds */
    g_autofree char *text = g_strdup_printf(
        _("%s\n%s → %s (%.0f%%) in %.1f s"), base, before, after,
        self->source_size ? 100.0 * self->output_size / self->source_size : 0.0, p.elapsed_seconds);
    g_free(self->results_text);
    self->results_text = g_steal_pointer(&text);
    fill_chart(self);
    add_output_folder_to_library(self);
    show_step(self, "results");
    WhittleApplication *app = app_of(self);
    if (app && whittle_application_get_job_queue(app))
      start_eval(self, whittle_application_get_job_queue(app));
    else
      show_results(self, "");
  } else {
    const GError *e = wh_job_get_error(job);
    g_free(self->error);
    self->error = g_strdup(state == WH_JOB_CANCELLED ? _("Cancelled: nothing was written.")
                           : e                       ? e->message
                                                     : _("The quantization failed."));
    gtk_label_set_label(self->type_intro, self->error);
    show_step(self, "type");
  }
  g_object_unref(self); /* the run's reference */
}

/* --- measuring the result ------------------------------------------------------------------ */

/* The short text the result is measured on (written for this purpose; plain English that small
 * story models know). */
static const char eval_text[] =
    "Once upon a time, there was a little girl named Lily. She loved to play in the park with "
    "her red ball. One day, the sun was warm and the sky was blue. Lily ran to the big tree and "
    "saw a small bird. The bird was sad because it could not find its mom. Lily said, \"Do not "
    "be sad, little bird. I will help you.\" She looked under the bench and behind the slide. "
    "Then she heard a sound from the flowers. It was the mom bird! The little bird was happy "
    "and sang a song. Lily smiled and went home to tell her mom about her day. Her mom gave her "
    "a big hug and a cookie. The next day, Lily and her friend Tom went back to the park. They "
    "played with the ball and ran on the grass. Tom fell down and hurt his knee. Lily helped "
    "him up and said, \"You are brave.\" Tom smiled, and they played until it was time to go "
    "home. At night, Lily looked at the stars from her window. She thought about the bird and "
    "her friend, and she fell asleep with a happy heart.";

typedef struct {
  char *source, *output, *logits_path;
  wh_job *job;
  double ppl, base_ppl, kld, tokens_per_second;
} EvalData;

static void
eval_data_free(gpointer data)
{
  EvalData *d = data;
  if (d->logits_path)
    g_unlink(d->logits_path);
  g_free(d->source);
  g_free(d->output);
  g_free(d->logits_path);
  g_free(d);
}

static gboolean
eval_continue(gpointer data)
{
  return !wh_job_is_cancelled(((EvalData *)data)->job);
}

/* Loads the model at @path and tokenizes @text with it (BOS as the vocabulary asks) into @ids;
 * @bos receives the token that starts each evaluation chunk (-1: none). */
static wh_model *
load_and_tokenize(const char *path, const char *text, gsize len, GArray *ids, gint32 *bos,
                  GError **error)
{
  wh_model_params mp = wh_model_default_params();
  wh_model *model = wh_model_load(path, &mp, error);
  if (!model)
    return NULL;
  wh_tokenizer *tok = wh_tokenizer_new_from_gguf(wh_model_get_gguf(model), error);
  gboolean ok = tok && wh_tokenizer_tokenize(tok, text, len, TRUE, FALSE, ids, error) >= 0;
  *bos = ok && wh_tokenizer_add_bos(tok) ? wh_tokenizer_bos(tok) : -1;
  wh_tokenizer_free(tok);
  if (!ok)
    g_clear_pointer(&model, wh_model_free);
  return model;
}

/* Perplexity of the model at @path on the text (saving its log-probs to @save, or against
 * @base). */
static gboolean
eval_one(EvalData *d, const char *path, const char *save, const wh_eval_logits *base, double *ppl,
         double *kld, GError **error)
{
  gint32 bos = -1;
  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  wh_model *model = load_and_tokenize(path, eval_text, strlen(eval_text), ids, &bos, error);
  if (!model)
    return FALSE;
  gboolean ok = TRUE;
  {
    wh_eval_params ep = wh_eval_default_params();
    /* Two chunks at least; a multiple of 4 tokens, at most 128. */
    ep.n_ctx = MIN(128u, (ids->len / 2) & ~3u);
    ep.save_logits_path = save;
    ep.base = base;
    ep.should_continue = eval_continue;
    ep.user_data = d;
    wh_eval_result r;
    ok = ep.n_ctx >= 8 &&
         wh_eval_perplexity(model, (const gint32 *)ids->data, ids->len, bos, &ep, &r, error);
    if (ok) {
      *ppl = r.ppl;
      if (kld)
        *kld = r.has_kld ? r.kld_mean : -1;
    }
  }
  wh_model_free(model);
  return ok;
}

static gboolean
eval_job_run(wh_job *job, gpointer data, GError **error)
{
  EvalData *d = data;
  d->job = job;
  wh_job_set_fraction(job, 0.1, _("Perplexity of the source"));
  if (!eval_one(d, d->source, d->logits_path, NULL, &d->base_ppl, NULL, error))
    return FALSE;
  wh_eval_logits *base = wh_eval_logits_open(d->logits_path, error);
  if (!base)
    return FALSE;
  wh_job_set_fraction(job, 0.5, _("Perplexity and KL divergence of the result"));
  gboolean ok = eval_one(d, d->output, NULL, base, &d->ppl, &d->kld, error);
  wh_eval_logits_free(base);
  if (!ok || wh_job_is_cancelled(job))
    return FALSE;
  /* Generation speed: 32 tokens of a reply. */
  wh_job_set_fraction(job, 0.8, _("Generation speed"));
  wh_session_params sp = wh_session_default_params();
  g_autoptr(wh_session) session = wh_session_new(d->output, &sp, error);
  if (!session || !wh_session_add_message(session, WH_SESSION_ROLE_USER, "Once upon a time", error))
    return FALSE;
  wh_session_generate_params gp = wh_session_generate_default_params();
  gp.max_tokens = 32;
  gp.ignore_eog = TRUE;
  wh_session_stats stats = {0};
  if (!wh_session_generate(session, &gp, NULL, NULL, NULL, &stats, error))
    return FALSE;
  d->tokens_per_second = stats.generation_tokens_per_second;
  double *figures = g_new(double, 4);
  figures[0] = d->ppl;
  figures[1] = d->base_ppl;
  figures[2] = d->kld;
  figures[3] = d->tokens_per_second;
  wh_job_set_result(job, figures, g_free);
  return TRUE;
}

static void
show_results(WhittleQuantizePage *self, const char *measured)
{
  g_autofree char *text = g_strdup_printf("%s\n%s", self->results_text, measured);
  adw_status_page_set_description(self->results_page, text);
}

static void
on_eval_notify(wh_job *job, gpointer user_data)
{
  WhittleQuantizePage *self = user_data;
  if (job != self->eval_job || !wh_job_is_finished(job))
    return;
  wh_job_state state = wh_job_get_state(job);
  const double *figures = wh_job_get_result(job); /* ppl, base_ppl, kld, tokens/s */
  if (state == WH_JOB_SUCCEEDED && figures) {
    self->ppl = figures[0];
    self->base_ppl = figures[1];
    self->kld = figures[2];
    self->tokens_per_second = figures[3];
  }
  g_clear_pointer(&self->eval_job, wh_job_unref);
  if (state == WH_JOB_SUCCEEDED) {
    /* Translators: measurements of the quantized model against its source */
    g_autofree char *line = g_strdup_printf(
        _("Perplexity on a short text %.3f (source %.3f) · KL divergence %.4f · %.0f tokens/s"),
        self->ppl, self->base_ppl, self->kld, self->tokens_per_second);
    show_results(self, line);
  } else {
    const GError *e = wh_job_get_error(job);
    /* Translators: %s says why the measurement failed */
    g_autofree char *line =
        g_strdup_printf(_("Could not measure the quality: %s"), e ? e->message : _("cancelled"));
    show_results(self, line);
  }
  g_object_unref(self);
}

static void
start_eval(WhittleQuantizePage *self, wh_job_queue *queue)
{
  EvalData *d = g_new0(EvalData, 1);
  d->source = g_strdup(self->source);
  d->output = g_strdup(self->output);
  d->logits_path = g_build_filename(g_get_tmp_dir(), "whittle-quantize-XXXXXX.logits", NULL);
  int fd = g_mkstemp(d->logits_path);
  if (fd >= 0)
    close(fd);
  g_autofree char *base = g_path_get_basename(self->output);
  /* Translators: %s is a model file name */
  g_autofree char *title = g_strdup_printf(_("Measuring %s"), base);
  self->eval_job = wh_job_queue_submit(queue, WH_JOB_EVALUATE, title, eval_job_run, d,
                                       eval_data_free, on_eval_notify, g_object_ref(self));
  show_results(self, _("Measuring perplexity, KL divergence and speed…"));
}

/* --- computing an importance matrix first ---------------------------------------------------- */

typedef struct {
  char *source, *text_path, *output;
  wh_job *job;
} ImatrixData;

static void
imatrix_data_free(gpointer data)
{
  ImatrixData *d = data;
  g_free(d->source);
  g_free(d->text_path);
  g_free(d->output);
  g_free(d);
}

static void
on_imatrix_progress(guint32 done, guint32 n_chunks, double ppl, gpointer data)
{
  (void)ppl;
  ImatrixData *d = data;
  /* Translators: progress of the importance matrix, e.g. “chunk 3/10” */
  g_autofree char *status = g_strdup_printf(_("chunk %u/%u"), done, n_chunks);
  wh_job_set_progress(d->job, done, n_chunks, status);
}

static gboolean
imatrix_continue(gpointer data)
{
  return !wh_job_is_cancelled(((ImatrixData *)data)->job);
}

static gboolean
imatrix_job_run(wh_job *job, gpointer data, GError **error)
{
  ImatrixData *d = data;
  d->job = job;
  g_autofree char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents(d->text_path, &text, &len, error))
    return FALSE;
  gint32 bos = -1;
  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  wh_model *model = load_and_tokenize(d->source, text, len, ids, &bos, error);
  if (!model)
    return FALSE;
  wh_eval_params ep = wh_eval_default_params();
  /* 512 tokens per chunk, or the whole text when it is shorter. */
  ep.n_ctx = MIN(512u, ids->len & ~3u);
  ep.progress = on_imatrix_progress;
  ep.should_continue = imatrix_continue;
  ep.user_data = d;
  g_autofree char *name = g_path_get_basename(d->text_path);
  const char *datasets[] = {name, NULL};
  gboolean ok = ep.n_ctx >= 8;
  if (!ok)
    g_set_error(error, WH_EVAL_ERROR, WH_EVAL_ERROR_INPUT,
                _("“%s” is too short to compute an importance matrix: use a few thousand words."),
                name);
  else
    ok = wh_eval_imatrix(model, (const gint32 *)ids->data, ids->len, bos, &ep, d->output, datasets,
                         NULL, error);
  wh_model_free(model);
  return ok;
}

static gboolean start_quantize_job(WhittleQuantizePage *self, wh_job_queue *queue,
                                   const char *imatrix);

static gboolean
start_quantize_later(gpointer data)
{
  WhittleQuantizePage *self = data;
  self->quantize_pending = FALSE;
  WhittleApplication *app = app_of(self);
  wh_job_queue *queue = app ? whittle_application_get_job_queue(app) : NULL;
  if (queue && self->steps)
    start_quantize_job(self, queue, self->computed_imatrix);
  return G_SOURCE_REMOVE;
}

static void
on_imatrix_notify(wh_job *job, gpointer user_data)
{
  WhittleQuantizePage *self = user_data;
  if (job != self->job)
    return;
  wh_job_progress p;
  wh_job_get_progress(job, &p);
  if (!wh_job_is_finished(job)) {
    gtk_progress_bar_set_fraction(self->run_progress, p.fraction > 0 ? p.fraction : 0);
    /* Translators: %s is “chunk n/N” */
    g_autofree char *text = g_strdup_printf(_("Computing the importance matrix: %s"), p.status);
    gtk_label_set_label(self->run_label, text);
    return;
  }
  wh_job_state state = wh_job_get_state(job);
  const GError *e = wh_job_get_error(job);
  g_clear_pointer(&self->job, wh_job_unref);
  WhittleApplication *app = app_of(self);
  wh_job_queue *queue = app ? whittle_application_get_job_queue(app) : NULL;
  if (state == WH_JOB_SUCCEEDED && queue) {
    /* Not from inside the queue's notification: submit once it has returned. */
    self->quantize_pending = TRUE;
    g_idle_add_full(G_PRIORITY_DEFAULT, start_quantize_later, g_object_ref(self), g_object_unref);
  } else {
    g_free(self->error);
    self->error = g_strdup(state == WH_JOB_CANCELLED ? _("Cancelled: nothing was written.")
                           : e                       ? e->message
                                                     : _("The importance matrix failed."));
    gtk_label_set_label(self->type_intro, self->error);
    show_step(self, "type");
  }
  g_object_unref(self); /* the job's reference */
}

gboolean
whittle_quantize_page_start(WhittleQuantizePage *self)
{
  g_return_val_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self), FALSE);
  WhittleApplication *app = app_of(self);
  wh_job_queue *queue = app ? whittle_application_get_job_queue(app) : NULL;
  if (self->job || self->selected < 0 || !self->source || !queue)
    return FALSE;
  if (!gtk_check_button_get_active(self->imatrix_compute))
    return start_quantize_job(
        self, queue, gtk_check_button_get_active(self->imatrix_file) ? self->imatrix : NULL);
  if (!self->calibration_text)
    return FALSE;
  /* First the importance matrix, beside the output; then the quantization with it. */
  ImatrixData *d = g_new0(ImatrixData, 1);
  d->source = g_strdup(self->source);
  d->text_path = g_strdup(self->calibration_text);
  g_autofree char *base = g_path_get_basename(self->source);
  if (g_str_has_suffix(base, ".gguf"))
    base[strlen(base) - 5] = '\0';
  g_autofree char *own = g_build_filename(g_get_user_data_dir(), "whittle", "quantized", NULL);
  g_mkdir_with_parents(own, 0755);
  g_autofree char *name = g_strdup_printf("%s.imatrix.gguf", base);
  d->output = g_build_filename(own, name, NULL);
  g_free(self->computed_imatrix);
  self->computed_imatrix = g_strdup(d->output);
  /* Translators: %s is a model file name */
  g_autofree char *title = g_strdup_printf(_("Importance matrix of %s"), base);
  adw_status_page_set_title(self->run_page, title);
  gtk_progress_bar_set_fraction(self->run_progress, 0);
  gtk_label_set_label(self->run_label, "");
  self->job = wh_job_queue_submit(queue, WH_JOB_IMATRIX, title, imatrix_job_run, d,
                                  imatrix_data_free, on_imatrix_notify, g_object_ref(self));
  show_step(self, "run");
  return TRUE;
}

static gboolean
start_quantize_job(WhittleQuantizePage *self, wh_job_queue *queue, const char *imatrix)
{
  const char *type_name = offered_types[self->selected].name;
  g_free(self->output);
  self->output = output_path_for(self, type_name);
  g_autofree char *dir = g_path_get_dirname(self->output);
  g_mkdir_with_parents(dir, 0755);
  self->output_size = 0;

  RunData *d = g_new0(RunData, 1);
  d->input = g_strdup(self->source);
  d->output = g_strdup(self->output);
  d->imatrix = g_strdup(imatrix);
  d->params = wh_quantize_default_params();
  d->params.ftype = self->rows[self->selected].ftype;
  d->params.allow_requantize = self->requantize;
  d->params.imatrix_path = d->imatrix;
  d->params.progress = on_run_progress;
  d->params.abort = on_run_abort;
  d->params.user_data = d;
  g_autofree char *base = g_path_get_basename(self->source);
  /* Translators: “Quantizing model.gguf to Q4_K_M” */
  g_autofree char *title = g_strdup_printf(_("Quantizing %s to %s"), base, type_name);
  adw_status_page_set_title(self->run_page, title);
  gtk_progress_bar_set_fraction(self->run_progress, 0);
  gtk_label_set_label(self->run_label, "");
  self->job = wh_job_queue_submit(queue, WH_JOB_QUANTIZE, title, run_job, d, run_data_free,
                                  on_run_notify, g_object_ref(self));
  show_step(self, "run");
  return TRUE;
}

gboolean
whittle_quantize_page_is_running(WhittleQuantizePage *self)
{
  g_return_val_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self), FALSE);
  return self->job != NULL || self->quantize_pending;
}

void
whittle_quantize_page_cancel(WhittleQuantizePage *self)
{
  g_return_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self));
  if (self->job)
    wh_job_cancel(self->job);
}

const char *
whittle_quantize_page_get_output_path(WhittleQuantizePage *self)
{
  g_return_val_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self), NULL);
  return self->output;
}

const char *
whittle_quantize_page_get_error(WhittleQuantizePage *self)
{
  g_return_val_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self), NULL);
  return self->error;
}

gboolean
whittle_quantize_page_is_measuring(WhittleQuantizePage *self)
{
  g_return_val_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self), FALSE);
  return self->eval_job != NULL;
}

gboolean
whittle_quantize_page_get_measurements(WhittleQuantizePage *self, double *ppl, double *base_ppl,
                                       double *kld, double *tokens_per_second)
{
  g_return_val_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self), FALSE);
  *ppl = self->ppl;
  *base_ppl = self->base_ppl;
  *kld = self->kld;
  *tokens_per_second = self->tokens_per_second;
  return self->ppl > 0;
}

guint64
whittle_quantize_page_get_output_size(WhittleQuantizePage *self)
{
  g_return_val_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self), 0);
  return self->output_size;
}

/* --- actions -------------------------------------------------------------------------------- */

static void
on_file_chosen(GtkNativeDialog *dialog, int response, WhittleQuantizePage *self)
{
  if (response == GTK_RESPONSE_ACCEPT) {
    g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
    g_autofree char *path = file ? g_file_get_path(file) : NULL;
    if (path && g_object_get_data(G_OBJECT(dialog), "text"))
      whittle_quantize_page_set_calibration_text(self, path);
    else if (path && g_object_get_data(G_OBJECT(dialog), "imatrix"))
      whittle_quantize_page_set_imatrix(self, path);
    else if (path)
      whittle_quantize_page_open_file(self, path, NULL);
  }
  g_object_unref(dialog);
}

static void
choose_file(WhittleQuantizePage *self, gboolean imatrix)
{
  GtkRoot *root = gtk_widget_get_root(GTK_WIDGET(self));
  GtkFileChooserNative *dialog = gtk_file_chooser_native_new(
      imatrix ? _("Choose an Importance Matrix") : _("Choose a Model to Quantize"),
      GTK_IS_WINDOW(root) ? GTK_WINDOW(root) : NULL, GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"),
      _("_Cancel"));
  g_autoptr(GtkFileFilter) filter = gtk_file_filter_new();
  gtk_file_filter_set_name(filter, imatrix ? _("Importance Matrices") : _("GGUF Models"));
  gtk_file_filter_add_pattern(filter, "*.gguf");
  if (imatrix)
    gtk_file_filter_add_pattern(filter, "*.dat");
  gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(dialog), filter);
  if (imatrix)
    g_object_set_data(G_OBJECT(dialog), "imatrix", GINT_TO_POINTER(1));
  gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(dialog), TRUE);
  g_signal_connect_object(dialog, "response", G_CALLBACK(on_file_chosen), self, 0);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(dialog));
}

static void
action_choose_source(GtkWidget *widget, const char *name, GVariant *param)
{
  (void)name, (void)param;
  choose_file(WHITTLE_QUANTIZE_PAGE(widget), FALSE);
}

static void
action_choose_imatrix(GtkWidget *widget, const char *name, GVariant *param)
{
  (void)name, (void)param;
  choose_file(WHITTLE_QUANTIZE_PAGE(widget), TRUE);
}

static void
action_choose_text(GtkWidget *widget, const char *name, GVariant *param)
{
  (void)name, (void)param;
  WhittleQuantizePage *self = WHITTLE_QUANTIZE_PAGE(widget);
  GtkRoot *root = gtk_widget_get_root(widget);
  GtkFileChooserNative *dialog =
      gtk_file_chooser_native_new(_("Choose a Text"), GTK_IS_WINDOW(root) ? GTK_WINDOW(root) : NULL,
                                  GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"), _("_Cancel"));
  g_object_set_data(G_OBJECT(dialog), "text", GINT_TO_POINTER(1));
  gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(dialog), TRUE);
  g_signal_connect_object(dialog, "response", G_CALLBACK(on_file_chosen), self, 0);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(dialog));
}

static void
action_back(GtkWidget *widget, const char *name, GVariant *param)
{
  (void)name, (void)param;
  WhittleQuantizePage *self = WHITTLE_QUANTIZE_PAGE(widget);
  const char *step = gtk_stack_get_visible_child_name(self->steps);
  show_step(self, g_strcmp0(step, "imatrix") == 0 ? "type" : "source");
}

static void
action_next(GtkWidget *widget, const char *name, GVariant *param)
{
  (void)name, (void)param;
  WhittleQuantizePage *self = WHITTLE_QUANTIZE_PAGE(widget);
  const char *step = gtk_stack_get_visible_child_name(self->steps);
  if (g_strcmp0(step, "source") == 0 && self->source)
    show_step(self, "type");
  else if (g_strcmp0(step, "type") == 0)
    show_step(self, "imatrix");
  else if (g_strcmp0(step, "imatrix") == 0)
    whittle_quantize_page_start(self);
}

static void
on_cancel_response(AdwMessageDialog *dialog, const char *response, WhittleQuantizePage *self)
{
  (void)dialog;
  if (g_strcmp0(response, "stop") == 0)
    whittle_quantize_page_cancel(self);
}

/* Cancel asks first: the work done so far is thrown away. */
static void
action_cancel(GtkWidget *widget, const char *name, GVariant *param)
{
  (void)name, (void)param;
  WhittleQuantizePage *self = WHITTLE_QUANTIZE_PAGE(widget);
  GtkRoot *root = gtk_widget_get_root(widget);
  GtkWidget *dialog =
      adw_message_dialog_new(GTK_IS_WINDOW(root) ? GTK_WINDOW(root) : NULL, _("Stop Quantizing?"),
                             _("The work done so far is thrown away and nothing is written."));
  adw_message_dialog_add_responses(ADW_MESSAGE_DIALOG(dialog), "continue", _("_Keep Going"), "stop",
                                   _("_Stop"), NULL);
  adw_message_dialog_set_response_appearance(ADW_MESSAGE_DIALOG(dialog), "stop",
                                             ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_default_response(ADW_MESSAGE_DIALOG(dialog), "continue");
  adw_message_dialog_set_close_response(ADW_MESSAGE_DIALOG(dialog), "continue");
  g_signal_connect_object(dialog, "response", G_CALLBACK(on_cancel_response), self, 0);
  gtk_window_present(GTK_WINDOW(dialog));
}

static void
action_chat(GtkWidget *widget, const char *name, GVariant *param)
{
  (void)name, (void)param;
  WhittleQuantizePage *self = WHITTLE_QUANTIZE_PAGE(widget);
  if (self->output)
    gtk_widget_activate_action(widget, "win.open-chat", "s", self->output);
}

static void
action_show_library(GtkWidget *widget, const char *name, GVariant *param)
{
  (void)name, (void)param;
  gtk_widget_activate_action(widget, "win.show-page", "s", "library");
}

static void
action_restart(GtkWidget *widget, const char *name, GVariant *param)
{
  (void)name, (void)param;
  show_step(WHITTLE_QUANTIZE_PAGE(widget), "source");
  whittle_quantize_page_refresh_library(WHITTLE_QUANTIZE_PAGE(widget));
}

static void
on_imatrix_toggled(GtkCheckButton *check, WhittleQuantizePage *self)
{
  (void)check;
  update_nav(self);
}

/* --- the source step's Library list ---------------------------------------------------------- */

static gboolean
is_float_type(const char *quant)
{
  return quant && (g_ascii_strcasecmp(quant, "F32") == 0 || g_ascii_strcasecmp(quant, "F16") == 0 ||
                   g_ascii_strcasecmp(quant, "BF16") == 0);
}

/* Float sources first, then the quantized ones; by name within each. */
static int
compare_sources(gconstpointer a, gconstpointer b)
{
  const wh_library_entry *x = *(const wh_library_entry *const *)a;
  const wh_library_entry *y = *(const wh_library_entry *const *)b;
  gboolean fx = is_float_type(x->quant), fy = is_float_type(y->quant);
  if (fx != fy)
    return fx ? -1 : 1;
  return g_utf8_collate(x->name, y->name);
}

static void
on_library_row_activated(GtkListBox *list, GtkListBoxRow *row, WhittleQuantizePage *self)
{
  (void)list;
  const char *path = g_object_get_data(G_OBJECT(row), "path");
  if (path && !self->job)
    whittle_quantize_page_open_file(self, path, NULL);
}

static GtkWidget *
library_row(const wh_library_entry *e)
{
  gboolean quantized = !is_float_type(e->quant);
  const char *type = e->quant ? e->quant : _("unknown type");
  g_autofree char *size = g_format_size(e->size);
  GtkWidget *row = adw_action_row_new();
  adw_preferences_row_set_use_markup(ADW_PREFERENCES_ROW(row), FALSE);
  adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), e->name);
  g_autofree char *subtitle =
      quantized
          /* Translators: a Library model in the Quantize wizard: type · size · warning */
          ? g_strdup_printf(_("%s · %s · already quantized: shrinking it again loses more quality"),
                            type, size)
          /* Translators: a Library model in the Quantize wizard: type · size */
          : g_strdup_printf(_("%s · %s"), type, size);
  adw_action_row_set_subtitle(ADW_ACTION_ROW(row), subtitle);
  if (quantized) {
    GtkWidget *icon = gtk_image_new_from_icon_name("dialog-warning-symbolic");
    gtk_widget_set_tooltip_text(icon, _("Already quantized"));
    gtk_widget_add_css_class(icon, "warning");
    adw_action_row_add_suffix(ADW_ACTION_ROW(row), icon);
  }
  adw_action_row_add_suffix(ADW_ACTION_ROW(row), gtk_image_new_from_icon_name("go-next-symbolic"));
  gtk_list_box_row_set_activatable(GTK_LIST_BOX_ROW(row), TRUE);
  /* Translators: the spoken name of a Library row in the Quantize wizard: name, type, size */
  g_autofree char *label =
      quantized ? g_strdup_printf(_("%s, %s, %s, already quantized"), e->name, type, size)
                : g_strdup_printf(_("%s, %s, %s"), e->name, type, size);
  gtk_accessible_update_property(GTK_ACCESSIBLE(row), GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);
  g_object_set_data_full(G_OBJECT(row), "path", g_strdup(e->paths[0]), g_free);
  return row;
}

static void
on_library_scan_notify(wh_job *job, gpointer user_data)
{
  WhittleQuantizePage *self = user_data;
  if (job != self->scan_job || !wh_job_is_finished(job))
    return;
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->library_list))))
    gtk_list_box_remove(self->library_list, child);
  GPtrArray *entries = wh_job_get_state(job) == WH_JOB_SUCCEEDED ? wh_job_get_result(job) : NULL;
  g_autoptr(GPtrArray) sources = g_ptr_array_new();
  for (guint i = 0; entries && i < entries->len; i++) {
    const wh_library_entry *e = entries->pdata[i];
    if (!e->is_projector && e->complete && !e->error)
      g_ptr_array_add(sources, (gpointer)e);
  }
  g_ptr_array_sort(sources, compare_sources);
  for (guint i = 0; i < sources->len; i++)
    gtk_list_box_append(self->library_list, library_row(sources->pdata[i]));
  self->n_library_sources = sources->len;
  if (sources->len == 0) {
    GtkWidget *empty = adw_action_row_new();
    adw_preferences_row_set_title(ADW_PREFERENCES_ROW(empty), _("No models in the Library yet"));
    adw_action_row_set_subtitle(ADW_ACTION_ROW(empty),
                                _("Download one in Browse, or open a GGUF file"));
    gtk_list_box_row_set_activatable(GTK_LIST_BOX_ROW(empty), FALSE);
    gtk_widget_add_css_class(empty, "dim-label");
    gtk_list_box_append(self->library_list, empty);
  }
  g_clear_pointer(&self->scan_job, wh_job_unref);
}

void
whittle_quantize_page_refresh_library(WhittleQuantizePage *self)
{
  g_return_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self));
  WhittleApplication *app = app_of(self);
  wh_library *lib = app ? whittle_application_get_library(app) : NULL;
  if (!lib || self->scan_job)
    return;
  if (!self->scan_queue)
    self->scan_queue = wh_job_queue_new(NULL, 1);
  /* No reference for the notification: the queue goes (and with it every notification)
   * when the page is disposed. */
  self->scan_job = wh_library_scan_async(lib, self->scan_queue, on_library_scan_notify, self);
}

gboolean
whittle_quantize_page_is_listing_library(WhittleQuantizePage *self)
{
  g_return_val_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self), FALSE);
  return self->scan_job != NULL;
}

guint
whittle_quantize_page_get_n_library_sources(WhittleQuantizePage *self)
{
  g_return_val_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self), 0);
  return self->n_library_sources;
}

GtkWidget *
whittle_quantize_page_get_library_row(WhittleQuantizePage *self, guint index)
{
  g_return_val_if_fail(WHITTLE_IS_QUANTIZE_PAGE(self), NULL);
  if (index >= self->n_library_sources)
    return NULL;
  return GTK_WIDGET(gtk_list_box_get_row_at_index(self->library_list, (int)index));
}

static void
on_map(WhittleQuantizePage *self)
{
  if (g_strcmp0(gtk_stack_get_visible_child_name(self->steps), "source") == 0)
    whittle_quantize_page_refresh_library(self);
}

/* --- life cycle ----------------------------------------------------------------------------- */

static void
whittle_quantize_page_dispose(GObject *object)
{
  WhittleQuantizePage *self = WHITTLE_QUANTIZE_PAGE(object);
  if (self->job)
    wh_job_cancel(self->job);
  g_clear_pointer(&self->job, wh_job_unref);
  if (self->eval_job)
    wh_job_cancel(self->eval_job);
  g_clear_pointer(&self->eval_job, wh_job_unref);
  if (self->scan_job)
    wh_job_cancel(self->scan_job);
  g_clear_pointer(&self->scan_job, wh_job_unref);
  g_clear_pointer(&self->scan_queue, wh_job_queue_free); /* no notification after this */
  gtk_widget_dispose_template(GTK_WIDGET(object), WHITTLE_TYPE_QUANTIZE_PAGE);
  G_OBJECT_CLASS(whittle_quantize_page_parent_class)->dispose(object);
}

static void
whittle_quantize_page_finalize(GObject *object)
{
  WhittleQuantizePage *self = WHITTLE_QUANTIZE_PAGE(object);
  for (guint i = 0; i < G_N_ELEMENTS(self->rows); i++)
    g_free(self->rows[i].problem);
  g_free(self->source);
  g_free(self->imatrix);
  g_free(self->output);
  g_free(self->error);
  g_free(self->results_text);
  g_free(self->calibration_text);
  g_free(self->computed_imatrix);
  G_OBJECT_CLASS(whittle_quantize_page_parent_class)->finalize(object);
}

static void
whittle_quantize_page_class_init(WhittleQuantizePageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
  object_class->dispose = whittle_quantize_page_dispose;
  object_class->finalize = whittle_quantize_page_finalize;
  g_type_ensure(WHITTLE_TYPE_QUALITY_CHART);
  gtk_widget_class_set_template_from_resource(
      widget_class, "/io/github/whittle/Whittle/whittle-quantize-page.ui");
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, steps);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, source_label);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, source_warning);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, library_list);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, type_intro);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, type_list);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, imatrix_none);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, imatrix_file);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, imatrix_label);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, imatrix_compute);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, text_label);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, run_page);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, run_progress);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, run_label);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, results_page);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, quality_chart);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, nav_bar);
  gtk_widget_class_bind_template_child(widget_class, WhittleQuantizePage, next_button);
  gtk_widget_class_install_action(widget_class, "quantize.choose-source", NULL,
                                  action_choose_source);
  gtk_widget_class_install_action(widget_class, "quantize.choose-imatrix", NULL,
                                  action_choose_imatrix);
  gtk_widget_class_install_action(widget_class, "quantize.choose-text", NULL, action_choose_text);
  gtk_widget_class_install_action(widget_class, "quantize.back", NULL, action_back);
  gtk_widget_class_install_action(widget_class, "quantize.next", NULL, action_next);
  gtk_widget_class_install_action(widget_class, "quantize.cancel", NULL, action_cancel);
  gtk_widget_class_install_action(widget_class, "quantize.chat", NULL, action_chat);
  gtk_widget_class_install_action(widget_class, "quantize.show-library", NULL, action_show_library);
  gtk_widget_class_install_action(widget_class, "quantize.restart", NULL, action_restart);
}

static void
whittle_quantize_page_init(WhittleQuantizePage *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
  self->selected = -1;
  g_signal_connect_object(self->imatrix_file, "toggled", G_CALLBACK(on_imatrix_toggled), self, 0);
  g_signal_connect_object(self->library_list, "row-activated", G_CALLBACK(on_library_row_activated),
                          self, 0);
  g_signal_connect(self, "map", G_CALLBACK(on_map), NULL);
  update_nav(self);
}
