/* whittle-fit.c — see whittle-fit.h. */
#include "config.h"

#include <glib/gi18n.h>

#include "whittle-fit.h"

void
whittle_fit_settings_load(WhittleFitSettings *fs, GSettings *settings)
{
  fs->n_ctx = settings ? g_settings_get_uint(settings, "default-context-length") : 4096;
  fs->kv_type = WH_KV_F16;
  fs->device = NULL;
  if (settings) {
    g_autofree char *kv = g_settings_get_string(settings, "default-kv-type");
    wh_kv_type t;
    if (wh_kv_type_from_name(kv, &t))
      fs->kv_type = t;
    char *device = g_settings_get_string(settings, "preferred-gpu");
    if (*device)
      fs->device = device;
    else
      g_free(device);
  }
}

void
whittle_fit_settings_clear(WhittleFitSettings *fs)
{
  g_clear_pointer(&fs->device, g_free);
}

static wh_device_list *
machine_devices(void)
{
  static gsize once = 0;
  static wh_device_list *devices;
  if (g_once_init_enter(&once)) {
    devices = wh_devices_enumerate();
    g_once_init_leave(&once, 1);
  }
  return devices;
}

wh_plan *
whittle_fit_plan(const wh_gguf *g, const WhittleFitSettings *fs, GError **error)
{
  g_autofree wh_model_hparams *hp = g_new0(wh_model_hparams, 1); /* large: not on the stack */
  if (!wh_model_hparams_from_gguf(g, hp, error))
    return NULL;

  wh_device_list *devices = machine_devices();
  wh_planner_params params = wh_planner_default_params();
  params.n_ctx = MIN(fs->n_ctx, hp->n_ctx_train ? hp->n_ctx_train : fs->n_ctx);
  params.kv_type = fs->kv_type;
  params.device = fs->device;
  /* A preferred GPU that is not there (unplugged) falls back to the best one. */
  if (params.device && wh_device_list_find_gpu(devices, params.device, NULL) == NULL)
    params.device = NULL;
  gboolean has_gpu = wh_device_list_find_gpu(devices, params.device, NULL) != NULL;
  params.n_gpu_layers = has_gpu ? WH_PLANNER_NGL_AUTO : 0;

  wh_plan *plan = g_new0(wh_plan, 1);
  if (!wh_planner_compute(hp, devices, &params, plan, error)) {
    g_free(plan);
    return NULL;
  }
  return plan;
}

gboolean
whittle_fit_run(wh_job *job, wh_gguf *g, const WhittleFitSettings *fs, GError **error)
{
  wh_plan *plan = whittle_fit_plan(g, fs, error);
  wh_gguf_close(g);
  if (plan == NULL)
    return FALSE;
  wh_job_set_result(job, plan, g_free);
  return TRUE;
}

char *
whittle_fit_badge_text(const wh_plan *plan, const char **css)
{
  if (plan->verdict == WH_PLAN_NO) {
    *css = "error";
    return g_strdup(_("Too large"));
  }
  if (plan->verdict == WH_PLAN_PARTIAL) {
    *css = "accent";
    /* Translators: a fit badge, e.g. "Partial offload · 24/32 layers" */
    return g_strdup_printf(_("Partial offload · %u/%u layers"),
                           MIN(plan->n_gpu_layers, plan->n_layer), plan->n_layer);
  }
  if (plan->n_devices > 1 && plan->n_gpu_layers > 0) {
    *css = "success";
    return g_strdup(_("Fits on GPU"));
  }
  g_autofree char *size = g_format_size(plan->devices[0].mem.total);
  *css = "dim-label";
  /* Translators: a fit badge, e.g. "CPU only · needs 11 GB RAM" */
  return g_strdup_printf(_("CPU only · needs %s RAM"), size);
}

void
whittle_fit_badge_apply(GtkLabel *label, const char *text, const char *css)
{
  static const char *const classes[] = {"error", "accent", "success", "dim-label", "warning"};
  gtk_label_set_label(label, text);
  for (gsize i = 0; i < G_N_ELEMENTS(classes); i++)
    gtk_widget_remove_css_class(GTK_WIDGET(label), classes[i]);
  if (css)
    gtk_widget_add_css_class(GTK_WIDGET(label), css);
  gtk_widget_set_visible(GTK_WIDGET(label), TRUE);
}
