/* test-quantize.c — the Quantize wizard, driven as a person would, against the quantizer.
 *
 * Opens stories260K through win.open-quantize (as the Library's Quantize button does), checks
 * that every size in the type table is exactly what a wh_quantize dry run says, that a
 * quantized source is marked for requantizing, and that types needing an importance matrix
 * cannot be chosen without one; quantizes to Q4_0 through Next / Quantize, and checks that
 * the output has the planned size, is Q4_0 and loads and generates; cancels a larger run
 * and finds nothing written. The source step lists the Library's models (a user folder here):
 * float ones first, quantized ones marked, rows named for screen readers and opened with the
 * keyboard as the file itself would be. Screenshots: quantize-source, quantize-types,
 * quantize-results.
 */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "app-test-util.h"
#include "gguf/gguf.h"
#include "gguf/imatrix.h"
#include "model/model.h"
#include "quantize/quantize.h"
#include "wh-test-util.h"
#include "whittle-preferences-window.h"
#include "whittle-quality-chart.h"
#include "whittle-quantize-page.h"

static WhittleApplication *app;
static WhittleWindow *window;
static WhittleQuantizePage *page;
static char *tmp_dir;

static gboolean
is_quantize_page(GtkWidget *w, gconstpointer data)
{
  (void)data;
  return WHITTLE_IS_QUANTIZE_PAGE(w);
}

static gboolean
run_done(gpointer data)
{
  return !whittle_quantize_page_is_running(data);
}

static gboolean
measured(gpointer data)
{
  return !whittle_quantize_page_is_measuring(data);
}

static guint64
dry_run_size(const char *path, const char *type, gboolean requantize)
{
  wh_quantize_params p = wh_quantize_default_params();
  p.ftype = wh_ftype_from_name(type);
  p.allow_requantize = requantize;
  p.dry_run = TRUE;
  g_autoptr(GError) error = NULL;
  wh_quantize_plan *plan = wh_quantize_plan_new(path, &p, &error);
  g_assert_no_error(error);
  guint64 size = wh_quantize_plan_file_size(plan);
  wh_quantize_plan_free(plan);
  return size;
}

static gboolean
library_listed(gpointer data)
{
  return !whittle_quantize_page_is_listing_library(data);
}

/* The spoken name the source step gives a Library file: name, type, size[, already
 * quantized]. */
static char *
source_label(const char *name, const char *type, const char *target, gboolean quantized)
{
  GStatBuf st;
  g_assert_cmpint(g_stat(target, &st), ==, 0);
  g_autofree char *size = g_format_size((guint64)st.st_size);
  return g_strdup_printf("%s, %s, %s%s", name, type, size, quantized ? ", already quantized" : "");
}

/* The source step lists the Library: float sources first, then the quantized ones (marked);
 * a row opens its file with the keyboard. */
static void
test_library_source(void)
{
  g_autofree char *f32 = wh_test_shared_file_or_skip("models/stories260K.gguf");
  g_autofree char *f16 = wh_test_shared_file_or_skip("reference/models/synth-llama-F16.gguf");
  g_autofree char *q8 = wh_test_shared_file_or_skip("reference/models/stories260K-Q8_0.gguf");
  if (!f32 || !f16 || !q8)
    return;
  /* A user folder whose names sort the quantized model first. */
  g_autofree char *folder = g_build_filename(tmp_dir, "my-models", NULL);
  g_assert_cmpint(g_mkdir_with_parents(folder, 0755), ==, 0);
  const char *targets[] = {q8, f16, f32};
  const char *names[] = {"a-tiny-Q8_0", "m-synth", "z-stories"};
  for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
    g_autofree char *file = g_strdup_printf("%s.gguf", names[i]);
    g_autofree char *link = g_build_filename(folder, file, NULL);
    g_assert_cmpint(symlink(targets[i], link), ==, 0);
  }
  whittle_preferences_add_library_folder(whittle_application_get_settings(app), folder);

  adw_view_stack_set_visible_child_name(whittle_window_get_view_stack(window), "quantize");
  gtk_widget_activate_action(GTK_WIDGET(page), "quantize.restart", NULL);
  g_assert_cmpstr(whittle_quantize_page_get_step(page), ==, "source");
  g_assert_true(whittle_quantize_page_is_listing_library(page));
  g_assert_true(wh_app_test_wait(library_listed, page, 30));
  g_assert_cmpuint(whittle_quantize_page_get_n_library_sources(page), ==, 3);
  g_assert_null(whittle_quantize_page_get_library_row(page, 3));

  /* Float first (by name), then quantized; each row is a list item named for screen readers. */
  g_autofree char *want0 = source_label("m-synth", "F16", f16, FALSE);
  g_autofree char *want1 = source_label("z-stories", "F32", f32, FALSE);
  g_autofree char *want2 = source_label("a-tiny-Q8_0", "Q8_0", q8, TRUE);
  const char *want[] = {want0, want1, want2};
  for (guint i = 0; i < G_N_ELEMENTS(want); i++) {
    GtkWidget *row = whittle_quantize_page_get_library_row(page, i);
    g_assert_nonnull(row);
    g_test_message("row %u: %s", i, want[i]);
    gtk_test_accessible_assert_role(GTK_ACCESSIBLE(row), GTK_ACCESSIBLE_ROLE_LIST_ITEM);
    gtk_test_accessible_assert_property(GTK_ACCESSIBLE(row), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                        want[i]);
    g_assert_true(gtk_widget_get_focusable(row));
  }
  wh_app_test_check_accessible_names(GTK_WIDGET(page));
  wh_app_test_screenshot(GTK_WIDGET(window), "quantize-source");

  /* Enter on a float row: its file is the source, the type step shows its exact sizes. */
  GtkWidget *row = whittle_quantize_page_get_library_row(page, 1);
  g_assert_true(gtk_widget_grab_focus(row));
  g_assert_true(gtk_widget_activate(row)); /* what Enter and Space do */
  g_assert_cmpstr(whittle_quantize_page_get_step(page), ==, "type");
  g_assert_cmpuint(whittle_quantize_page_get_planned_size(page, "Q4_0"), ==,
                   dry_run_size(f32, "Q4_0", FALSE));

  /* Back, and the quantized one: requantizing (through F32) is planned for it. */
  gtk_widget_activate_action(GTK_WIDGET(page), "quantize.back", NULL);
  g_assert_cmpstr(whittle_quantize_page_get_step(page), ==, "source");
  g_assert_true(gtk_widget_activate(whittle_quantize_page_get_library_row(page, 2)));
  g_assert_cmpstr(whittle_quantize_page_get_step(page), ==, "type");
  g_assert_cmpuint(whittle_quantize_page_get_planned_size(page, "Q4_0"), ==,
                   dry_run_size(q8, "Q4_0", TRUE));
}

static void
test_types_table(void)
{
  g_autofree char *model = wh_test_shared_file_or_skip("models/stories260K.gguf");
  if (!model)
    return;
  g_assert_true(g_str_has_prefix(g_get_user_data_dir(), tmp_dir)); /* isolated */
  gtk_widget_activate_action(GTK_WIDGET(window), "win.open-quantize", "s", model);
  g_assert_cmpstr(whittle_quantize_page_get_step(page), ==, "type");
  g_assert_null(whittle_quantize_page_get_error(page));
  const char *types[] = {"Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "Q2_K"};
  for (guint i = 0; i < G_N_ELEMENTS(types); i++) {
    guint64 shown = whittle_quantize_page_get_planned_size(page, types[i]);
    g_test_message("%s: %" G_GUINT64_FORMAT " bytes", types[i], shown);
    g_assert_cmpuint(shown, ==, dry_run_size(model, types[i], FALSE));
  }
  /* Smaller types make smaller files. */
  g_assert_cmpuint(whittle_quantize_page_get_planned_size(page, "Q4_0"), <,
                   whittle_quantize_page_get_planned_size(page, "Q8_0"));
  /* An i-quant that needs an importance matrix is listed but cannot be chosen. */
  g_assert_false(whittle_quantize_page_select_type(page, "IQ2_XS"));
  g_assert_false(whittle_quantize_page_select_type(page, "NOT_A_TYPE"));
  wh_app_test_check_accessible_names(GTK_WIDGET(page));
  wh_app_test_screenshot(GTK_WIDGET(window), "quantize-types");
}

static void
test_quantize_q4_0(void)
{
  g_autofree char *model = wh_test_shared_file_or_skip("models/stories260K.gguf");
  if (!model)
    return;
  gtk_widget_activate_action(GTK_WIDGET(window), "win.open-quantize", "s", model);
  g_assert_true(whittle_quantize_page_select_type(page, "Q4_0"));
  gtk_widget_activate_action(GTK_WIDGET(page), "quantize.next", NULL);
  g_assert_cmpstr(whittle_quantize_page_get_step(page), ==, "imatrix");
  gtk_widget_activate_action(GTK_WIDGET(page), "quantize.next", NULL); /* Quantize */
  g_assert_true(whittle_quantize_page_is_running(page));
  g_assert_cmpstr(whittle_quantize_page_get_step(page), ==, "run");
  g_assert_true(wh_app_test_wait(run_done, page, 60));
  g_assert_null(whittle_quantize_page_get_error(page));
  g_assert_cmpstr(whittle_quantize_page_get_step(page), ==, "results");

  const char *out = whittle_quantize_page_get_output_path(page);
  g_autofree char *own = g_build_filename(g_get_user_data_dir(), "whittle", "quantized", NULL);
  g_assert_true(g_str_has_prefix(out, own));
  g_assert_cmpuint(whittle_quantize_page_get_output_size(page), ==,
                   dry_run_size(model, "Q4_0", FALSE));

  /* The output is a Q4_0 model that loads and runs. */
  g_autoptr(GError) error = NULL;
  wh_gguf *g = wh_gguf_open(out, &error);
  g_assert_no_error(error);
  guint64 ftype = 0;
  g_assert_true(wh_gguf_get_uint(g, "general.file_type", &ftype));
  g_assert_cmpuint(ftype, ==, (guint64)wh_ftype_from_name("Q4_0"));
  wh_gguf_close(g);
  wh_model_params mp = wh_model_default_params();
  wh_model *m = wh_model_load(out, &mp, &error);
  g_assert_no_error(error);
  g_assert_nonnull(m);
  wh_model_free(m);

  /* The size-vs-quality chart shows the types with a published figure. */
  WhittleQualityChart *chart = WHITTLE_QUALITY_CHART(wh_app_test_find(
      GTK_WIDGET(page), wh_app_test_is_type, GSIZE_TO_POINTER(WHITTLE_TYPE_QUALITY_CHART)));
  g_assert_nonnull(chart);
  g_assert_cmpuint(whittle_quality_chart_get_n_points(chart), >=, 10);
  gtk_test_accessible_assert_role(GTK_ACCESSIBLE(chart), GTK_ACCESSIBLE_ROLE_IMG);

  /* Then the result is measured against its source on a short text. */
  g_assert_true(whittle_quantize_page_is_measuring(page));
  g_assert_true(wh_app_test_wait(measured, page, 60));
  double ppl = 0, base_ppl = 0, kld = 0, tps = 0;
  g_assert_true(whittle_quantize_page_get_measurements(page, &ppl, &base_ppl, &kld, &tps));
  g_test_message("figure: stories260K Q4_0 vs F32 on the built-in text: perplexity %.3f (source "
                 "%.3f), KLD %.4f, %.0f tokens/s",
                 ppl, base_ppl, kld, tps);
  g_assert_cmpfloat(base_ppl, >, 1);
  g_assert_cmpfloat(ppl, >, 1);
  g_assert_cmpfloat(kld, >, 0); /* Q4_0 changes the distribution... */
  g_assert_cmpfloat(kld, <, 1); /* ...but does not ruin it */
  g_assert_cmpfloat(tps, >, 0);

  /* The Library lists Whittle's own folder of quantized models. */
  GSettings *settings = whittle_application_get_settings(app);
  g_auto(GStrv) folders = g_settings_get_strv(settings, "library-folders");
  g_assert_true(g_strv_contains((const char *const *)folders, own));
  wh_app_test_check_accessible_names(GTK_WIDGET(page));
  wh_app_test_screenshot(GTK_WIDGET(window), "quantize-results");
}

/* "Compute one now": an importance matrix of the source on a text, then the quantization
 * with it. */
static void
test_imatrix_compute(void)
{
  g_autofree char *model = wh_test_shared_file_or_skip("models/stories260K.gguf");
  g_autofree char *text = wh_test_shared_file_or_skip("reference/calib.txt");
  if (!model || !text)
    return;
  gtk_widget_activate_action(GTK_WIDGET(window), "win.open-quantize", "s", model);
  g_assert_true(whittle_quantize_page_select_type(page, "Q4_K_M"));
  gtk_widget_activate_action(GTK_WIDGET(page), "quantize.next", NULL);
  whittle_quantize_page_set_calibration_text(page, text);
  gtk_widget_activate_action(GTK_WIDGET(page), "quantize.next", NULL); /* Quantize */
  g_assert_true(whittle_quantize_page_is_running(page));
  g_assert_true(wh_app_test_wait(run_done, page, 120));
  g_assert_null(whittle_quantize_page_get_error(page));
  g_assert_cmpstr(whittle_quantize_page_get_step(page), ==, "results");
  g_assert_true(wh_app_test_wait(measured, page, 60));

  /* The matrix was written beside the output and covers the model's matmul weights. */
  g_autofree char *own = g_build_filename(g_get_user_data_dir(), "whittle", "quantized", NULL);
  g_autofree char *im_path = g_build_filename(own, "stories260K.imatrix.gguf", NULL);
  g_autoptr(GError) error = NULL;
  wh_imatrix *im = wh_imatrix_load(im_path, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(wh_imatrix_n_entries(im), >, 0);
  wh_imatrix_free(im);
  /* The output is what a plan with that matrix says, and some tensors used it. */
  wh_quantize_params p = wh_quantize_default_params();
  p.ftype = wh_ftype_from_name("Q4_K_M");
  p.imatrix_path = im_path;
  p.dry_run = TRUE;
  wh_quantize_plan *plan = wh_quantize_plan_new(model, &p, &error);
  g_assert_no_error(error);
  guint used = 0;
  for (guint64 i = 0; i < wh_quantize_plan_n_tensors(plan); i++)
    used += wh_quantize_plan_get(plan, i)->uses_imatrix;
  g_assert_cmpuint(used, >, 0);
  g_assert_cmpuint(whittle_quantize_page_get_output_size(page), ==,
                   wh_quantize_plan_file_size(plan));
  wh_quantize_plan_free(plan);
  whittle_quantize_page_set_calibration_text(page, NULL);
  whittle_quantize_page_set_imatrix(page, NULL);
}

/* A cancelled run leaves no output and no temporary file. */
static void
test_cancel(void)
{
  g_autofree char *model = wh_test_shared_file_or_skip("reference/models/synth-llama-F16.gguf");
  if (!model)
    return;
  gtk_widget_activate_action(GTK_WIDGET(window), "win.open-quantize", "s", model);
  g_assert_true(whittle_quantize_page_select_type(page, "Q4_K_M"));
  g_assert_true(whittle_quantize_page_start(page));
  /* Cancel asks first; "Stop" cancels. */
  gtk_widget_activate_action(GTK_WIDGET(page), "quantize.cancel", NULL);
  AdwMessageDialog *dialog = NULL;
  GListModel *toplevels = gtk_window_get_toplevels(); /* owned by GTK */
  for (guint i = 0; i < g_list_model_get_n_items(toplevels); i++) {
    g_autoptr(GObject) w = g_list_model_get_item(toplevels, i);
    if (ADW_IS_MESSAGE_DIALOG(w))
      dialog = ADW_MESSAGE_DIALOG(w);
  }
  g_assert_nonnull(dialog);
  g_assert_cmpstr(adw_message_dialog_get_heading(dialog), ==, "Stop Quantizing?");
  adw_message_dialog_response(dialog, "stop");
  g_assert_true(wh_app_test_wait(run_done, page, 60));
  g_assert_cmpstr(whittle_quantize_page_get_step(page), ==, "type");
  g_assert_nonnull(strstr(whittle_quantize_page_get_error(page), "Cancelled"));
  g_assert_false(g_file_test(whittle_quantize_page_get_output_path(page), G_FILE_TEST_EXISTS));
  g_autofree char *own = g_build_filename(g_get_user_data_dir(), "whittle", "quantized", NULL);
  g_autoptr(GDir) dir = g_dir_open(own, 0, NULL);
  const char *name;
  while (dir && (name = g_dir_read_name(dir)))
    g_assert_true(g_str_has_prefix(name, "stories260K")); /* only the earlier outputs */
}

/* An already quantized file is offered with requantizing on. */
static void
test_requantize_source(void)
{
  g_autofree char *model = wh_test_shared_file_or_skip("reference/models/stories260K-Q8_0.gguf");
  if (!model)
    return;
  gtk_widget_activate_action(GTK_WIDGET(window), "win.open-quantize", "s", model);
  g_assert_cmpstr(whittle_quantize_page_get_step(page), ==, "type");
  g_assert_cmpuint(whittle_quantize_page_get_planned_size(page, "Q4_0"), ==,
                   dry_run_size(model, "Q4_0", TRUE));
}

static void
skip_all(void)
{
  g_test_skip("no display");
}

int
main(int argc, char **argv)
{
  tmp_dir = g_dir_make_tmp("whittle-quantize-XXXXXX", NULL);
  wh_app_test_isolate(tmp_dir); /* before any thread exists */
  g_test_init(&argc, &argv, NULL);
  if (!wh_app_test_init_display()) {
    g_test_add_func("/quantize/skip", skip_all);
    return g_test_run();
  }
  window = wh_app_test_start(&app, 1000, 800);
  page = WHITTLE_QUANTIZE_PAGE(wh_app_test_find(GTK_WIDGET(window), is_quantize_page, NULL));
  g_assert_nonnull(page);

  g_test_add_func("/quantize/library-source", test_library_source);
  g_test_add_func("/quantize/types-table", test_types_table);
  g_test_add_func("/quantize/q4_0", test_quantize_q4_0);
  g_test_add_func("/quantize/imatrix-compute", test_imatrix_compute);
  g_test_add_func("/quantize/cancel", test_cancel);
  g_test_add_func("/quantize/requantize-source", test_requantize_source);
  int status = g_test_run();

  gtk_window_destroy(GTK_WINDOW(window));
  wh_app_test_settle(0.2);
  g_object_unref(app);
  wh_test_rmdir_r(tmp_dir);
  g_free(tmp_dir);
  return status;
}
