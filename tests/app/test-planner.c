/* test-planner.c — the Planner page, driven as a person would, against the planner itself.
 *
 * Opens shared models on the page (as the Library's "Plan Memory…" does, through
 * win.open-planner), moves the controls and checks that what the page shows is exactly
 * what wh_planner_compute() says for the same settings, that the verdict banner follows
 * (fits / partial offload / does not fit), that "Fit Automatically" finds settings that
 * fit, and that the chart, the legend and every control have accessible names. Devices
 * are given to the page as a fixed list (a CPU and a GPU with chosen free memory), so the
 * verdicts do not depend on this machine. Screenshots: planner-model, planner-partial,
 * planner-too-large.
 */
#include "config.h"

#include <string.h>

#include "app-test-util.h"
#include "backend/vulkan/vk.h"
#include "wh-test-util.h"
#include "whittle-memory-chart.h"
#include "whittle-planner-page.h"

/* devices.h has no autoptr cleanup: a local alias gets one. */
typedef wh_device_list DevList;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DevList, wh_device_list_free)

static WhittleApplication *app;
static WhittleWindow *window;
static WhittlePlannerPage *page;
static char *tmp_dir;

static gboolean
is_planner_page(GtkWidget *w, gconstpointer data)
{
  (void)data;
  return WHITTLE_IS_PLANNER_PAGE(w);
}

static gboolean
page_ready(gpointer data)
{
  return whittle_planner_page_is_ready(data);
}

static wh_model_hparams *
hparams_of(const char *path)
{
  g_autoptr(GError) error = NULL;
  wh_gguf *g = wh_gguf_open(path, &error);
  g_assert_no_error(error);
  wh_model_hparams *hp = g_new0(wh_model_hparams, 1);
  g_assert_true(wh_model_hparams_from_gguf(g, hp, &error));
  g_assert_no_error(error);
  wh_gguf_close(g);
  return hp;
}

/* A CPU with @cpu_free bytes free and a discrete GPU with @gpu_free (0: no GPU). */
static wh_device_list *
devices(guint64 cpu_free, guint64 gpu_free)
{
  wh_device_list *list = wh_device_list_new();
  wh_device cpu = {.api = WH_DEVICE_API_HOST, .kind = WH_DEVICE_KIND_CPU};
  g_strlcpy(cpu.name, "CPU", sizeof cpu.name);
  cpu.total = cpu.free = cpu_free;
  cpu.free_known = TRUE;
  wh_device_list_add(list, &cpu);
  if (gpu_free) {
    wh_device gpu = {.api = WH_DEVICE_API_VULKAN, .kind = WH_DEVICE_KIND_DISCRETE_GPU};
    g_strlcpy(gpu.name, "Test GPU", sizeof gpu.name);
    gpu.total = gpu.free = gpu_free;
    gpu.free_known = TRUE;
    wh_device_list_add(list, &gpu);
  }
  return list;
}

/* What the planner says for these settings, computed independently of the page. */
static void
expect_plan(const wh_model_hparams *hp, const wh_device_list *devs, guint32 n_ctx, wh_kv_type kv,
            gint32 ngl, wh_plan *out)
{
  wh_planner_params p = wh_planner_default_params();
  p.n_ctx = n_ctx;
  p.kv_type = kv;
  p.n_gpu_layers = ngl;
  p.device = devs->n > 1 ? devs->devices[1].name : NULL;
  g_autoptr(GError) error = NULL;
  g_assert_true(wh_planner_compute(hp, devs, &p, out, &error));
  g_assert_no_error(error);
}

static void
assert_same_plan(const wh_plan *shown, const wh_plan *want)
{
  g_assert_nonnull(shown);
  g_assert_cmpint(shown->verdict, ==, want->verdict);
  g_assert_cmpuint(shown->n_ctx, ==, want->n_ctx);
  g_assert_cmpuint(shown->n_gpu_layers, ==, want->n_gpu_layers);
  g_assert_cmpint(shown->kv_type, ==, want->kv_type);
  g_assert_cmpuint(shown->n_devices, ==, want->n_devices);
  for (guint i = 0; i < want->n_devices; i++) {
    const wh_memory_plan *a = &shown->devices[i].mem, *b = &want->devices[i].mem;
    g_assert_cmpuint(a->weights, ==, b->weights);
    g_assert_cmpuint(a->kv_cache, ==, b->kv_cache);
    g_assert_cmpuint(a->compute, ==, b->compute);
    g_assert_cmpuint(a->output, ==, b->output);
    g_assert_cmpuint(a->overhead, ==, b->overhead);
    g_assert_cmpuint(a->total, ==, b->total);
  }
}

static WhittleMemoryChart *
chart(void)
{
  return WHITTLE_MEMORY_CHART(wh_app_test_find(GTK_WIDGET(page), wh_app_test_is_type,
                                               GSIZE_TO_POINTER(WHITTLE_TYPE_MEMORY_CHART)));
}

static void
open_model(const char *path)
{
  gtk_widget_activate_action(GTK_WIDGET(window), "win.open-planner", "s", path);
  /* The page switched and reads the header in a job. */
  AdwViewStack *stack = whittle_window_get_view_stack(window);
  g_assert_cmpstr(adw_view_stack_get_visible_child_name(stack), ==, "planner");
  g_assert_true(wh_app_test_wait(page_ready, page, 20));
}

/* stories260K on a CPU-only machine: fits, and every figure is the planner's. */
static void
test_cpu_only(void)
{
  g_autofree char *path = wh_test_shared_file_or_skip("models/stories260K.gguf");
  if (!path)
    return;
  whittle_planner_page_set_devices(page, devices(8ull << 30, 0));
  open_model(path);
  g_autofree wh_model_hparams *hp = hparams_of(path);
  g_autoptr(DevList) devs = devices(8ull << 30, 0);

  wh_plan want;
  const wh_plan *shown = whittle_planner_page_get_plan(page);
  expect_plan(hp, devs, shown->n_ctx, WH_KV_F16, 0, &want);
  assert_same_plan(shown, &want);
  g_assert_cmpint(shown->verdict, ==, WH_PLAN_FITS);
  g_assert_nonnull(strstr(whittle_planner_page_get_verdict_text(page), "no GPU found"));
  /* The chart shows that very plan. */
  assert_same_plan(whittle_memory_chart_get_plan(chart()), &want);

  /* Context and KV type: the plan follows the controls live. */
  whittle_planner_page_set_context(page, 256);
  shown = whittle_planner_page_get_plan(page);
  g_assert_cmpuint(shown->n_ctx, ==, 256);
  guint64 kv_f16 = shown->devices[0].mem.kv_cache;
  expect_plan(hp, devs, 256, WH_KV_F16, 0, &want);
  assert_same_plan(shown, &want);
  whittle_planner_page_set_kv_type(page, WH_KV_Q8_0);
  shown = whittle_planner_page_get_plan(page);
  expect_plan(hp, devs, 256, WH_KV_Q8_0, 0, &want);
  assert_same_plan(shown, &want);
  g_assert_cmpuint(shown->devices[0].mem.kv_cache, <, kv_f16);
  whittle_planner_page_set_kv_type(page, WH_KV_F16);

  /* Accessibility: the chart is an image whose name carries the numbers. */
  WhittleMemoryChart *c = chart();
  g_assert_cmpint(gtk_accessible_get_accessible_role(GTK_ACCESSIBLE(c)), ==,
                  GTK_ACCESSIBLE_ROLE_IMG);
  g_assert_true(gtk_test_accessible_has_property(GTK_ACCESSIBLE(c), GTK_ACCESSIBLE_PROPERTY_LABEL));
  guint n = wh_app_test_check_accessible_names(GTK_WIDGET(page));
  g_test_message("%u controls with accessible names", n);
  g_assert_cmpuint(n, >=, 8);
  wh_app_test_screenshot(GTK_WIDGET(window), "planner-model");
}

/* synth-llama-F16 with a GPU that holds about half of it: auto chooses a partial offload,
 * never more than fits, and one more layer would not fit. */
static void
test_partial_offload(void)
{
  g_autofree char *path = wh_test_shared_file_or_skip("reference/models/synth-llama-F16.gguf");
  if (!path)
    return;
  g_autofree wh_model_hparams *hp = hparams_of(path);
  /* A GPU with room for about half of the layers: between what k and k + 1 layers need
   * (plus the planner's 5% margin). */
  g_autoptr(DevList) big = devices(8ull << 30, 8ull << 30);
  guint32 k = MAX(hp->n_layer / 2, 1u);
  wh_plan at_k, at_k1;
  expect_plan(hp, big, 512, WH_KV_F16, (gint32)k, &at_k);
  expect_plan(hp, big, 512, WH_KV_F16, (gint32)k + 1, &at_k1);
  g_assert_cmpuint(at_k1.devices[1].used, >, at_k.devices[1].used);
  guint64 gpu_free = (guint64)((double)(at_k.devices[1].used + at_k1.devices[1].used) / 2.0 / 0.95);

  whittle_planner_page_set_devices(page, devices(8ull << 30, gpu_free));
  open_model(path);
  whittle_planner_page_set_context(page, 512);
  whittle_planner_page_set_gpu_layers(page, WH_PLANNER_NGL_AUTO);
  const wh_plan *shown = whittle_planner_page_get_plan(page);
  g_autoptr(DevList) devs = devices(8ull << 30, gpu_free);
  wh_plan want;
  expect_plan(hp, devs, 512, WH_KV_F16, WH_PLANNER_NGL_AUTO, &want);
  assert_same_plan(shown, &want);
  g_assert_cmpint(shown->verdict, ==, WH_PLAN_PARTIAL);
  g_assert_cmpuint(shown->n_gpu_layers, ==, k);
  g_assert_nonnull(strstr(whittle_planner_page_get_verdict_text(page), "Partial offload"));
  /* One more layer would not fit. */
  wh_plan more;
  expect_plan(hp, devs, 512, WH_KV_F16, (gint32)shown->n_gpu_layers + 1, &more);
  g_assert_cmpint(more.verdict, ==, WH_PLAN_NO);
  wh_app_test_screenshot(GTK_WIDGET(window), "planner-partial");

  /* Asking for every layer by hand: the GPU overflows and the banner says so. */
  whittle_planner_page_set_gpu_layers(page, (gint32)hp->n_layer + 1);
  shown = whittle_planner_page_get_plan(page);
  g_assert_cmpint(shown->verdict, ==, WH_PLAN_NO);
  g_assert_nonnull(strstr(whittle_planner_page_get_verdict_text(page), "Doesn’t fit"));
  g_assert_cmpuint(whittle_memory_chart_category_bytes(shown, 1, WHITTLE_MEMORY_OVERFLOW), >, 0);

  /* Fit Automatically goes back to what fits. */
  whittle_planner_page_fit(page);
  shown = whittle_planner_page_get_plan(page);
  g_assert_cmpint(shown->verdict, !=, WH_PLAN_NO);
  g_assert_cmpuint(shown->n_gpu_layers, ==, want.n_gpu_layers);
}

/* An IQ2 file on a GPU with room for everything: the Vulkan backend has no kernels for the
 * IQ2 layers, so the plan keeps them on the CPU and the banner says why (as loading would). */
static void
test_backend_limits(void)
{
  g_autofree char *path =
      wh_test_shared_file_or_skip("reference/models/synth-llama-IQ2_XS-imat.gguf");
  if (!path)
    return;
  if (!wh_vk_gpu_caps()) {
    g_test_skip("this build has no Vulkan backend");
    return;
  }
  g_autofree wh_model_hparams *hp = hparams_of(path);
  whittle_planner_page_set_devices(page, devices(8ull << 30, 8ull << 30));
  open_model(path);
  whittle_planner_page_set_context(page, 512);
  whittle_planner_page_set_gpu_layers(page, WH_PLANNER_NGL_AUTO);
  const wh_plan *shown = whittle_planner_page_get_plan(page);
  g_autoptr(DevList) devs = devices(8ull << 30, 8ull << 30);
  wh_plan want;
  expect_plan(hp, devs, 512, WH_KV_F16, WH_PLANNER_NGL_AUTO, &want);
  assert_same_plan(shown, &want);
  g_assert_cmpuint(shown->n_gpu_layers, <, hp->n_layer + 1);
  g_assert_cmpstr(shown->gpu_note, !=, "");
  const char *text = whittle_planner_page_get_verdict_text(page);
  g_assert_nonnull(strstr(text, "IQ2_XS"));
  /* a q8_0 KV cache keeps every layer on the CPU on Vulkan, and the banner says so */
  whittle_planner_page_set_gpu_layers(page, 2);
  whittle_planner_page_set_kv_type(page, WH_KV_Q8_0);
  shown = whittle_planner_page_get_plan(page);
  g_assert_cmpuint(shown->n_gpu_layers, ==, 0);
  g_assert_nonnull(strstr(whittle_planner_page_get_verdict_text(page), "q8_0 KV cache"));
  whittle_planner_page_set_kv_type(page, WH_KV_F16);
}

/* A machine too small for the context asked for: Fit Automatically shortens the context to
 * the longest one that fits. */
static void
test_too_large(void)
{
  g_autofree char *path = wh_test_shared_file_or_skip("reference/models/synth-llama-F16.gguf");
  if (!path)
    return;
  g_autofree wh_model_hparams *hp = hparams_of(path);
  /* RAM for the model at a short context but not at the training context. */
  g_autoptr(DevList) roomy = devices(64ull << 30, 0);
  wh_plan small, large;
  guint32 n_max = hp->n_ctx_train;
  expect_plan(hp, roomy, 256, WH_KV_F16, 0, &small);
  expect_plan(hp, roomy, n_max, WH_KV_F16, 0, &large);
  g_assert_cmpuint(large.devices[0].used, >, small.devices[0].used);
  guint64 cpu_free = (small.devices[0].used + large.devices[0].used) / 2;
  cpu_free = (guint64)((double)cpu_free / 0.95);

  whittle_planner_page_set_devices(page, devices(cpu_free, 0));
  open_model(path);
  whittle_planner_page_set_context(page, n_max);
  const wh_plan *shown = whittle_planner_page_get_plan(page);
  g_assert_cmpuint(shown->n_ctx, ==, n_max);
  g_assert_cmpint(shown->verdict, ==, WH_PLAN_NO);
  wh_app_test_screenshot(GTK_WIDGET(window), "planner-too-large");

  whittle_planner_page_fit(page);
  shown = whittle_planner_page_get_plan(page);
  g_assert_cmpint(shown->verdict, ==, WH_PLAN_FITS);
  g_assert_cmpuint(shown->n_ctx, <, n_max);
  g_assert_cmpuint(shown->n_ctx, >=, 256);
}

/* A file that is not a GGUF: a clear error on the page, nothing else changes. */
static void
test_bad_file(void)
{
  g_autofree char *bad = g_build_filename(tmp_dir, "not-a-model.gguf", NULL);
  g_assert_true(g_file_set_contents(bad, "this is not a GGUF file", -1, NULL));
  const wh_plan *before = whittle_planner_page_get_plan(page);
  guint32 n_ctx_before = before ? before->n_ctx : 0;
  gtk_widget_activate_action(GTK_WIDGET(window), "win.open-planner", "s", bad);
  gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
  while (!strstr(whittle_planner_page_get_verdict_text(page), "Could not read") &&
         g_get_monotonic_time() < end)
    wh_app_test_settle(0.05);
  const char *text = whittle_planner_page_get_verdict_text(page);
  g_test_message("bad file: %s", text);
  g_assert_nonnull(strstr(text, "Could not read the model"));
  g_assert_nonnull(strstr(text, "not-a-model.gguf"));
  /* The previous model's plan is still there. */
  if (before)
    g_assert_cmpuint(whittle_planner_page_get_plan(page)->n_ctx, ==, n_ctx_before);
}

static void
skip_all(void)
{
  g_test_skip("no display");
}

int
main(int argc, char **argv)
{
  tmp_dir = g_dir_make_tmp("whittle-planner-XXXXXX", NULL);
  wh_app_test_isolate(tmp_dir); /* before any thread exists */
  g_test_init(&argc, &argv, NULL);
  if (!wh_app_test_init_display()) {
    g_test_add_func("/planner/skip", skip_all);
    return g_test_run();
  }
  window = wh_app_test_start(&app, 1000, 900);
  page = WHITTLE_PLANNER_PAGE(wh_app_test_find(GTK_WIDGET(window), is_planner_page, NULL));
  g_assert_nonnull(page);

  g_test_add_func("/planner/cpu-only", test_cpu_only);
  g_test_add_func("/planner/partial-offload", test_partial_offload);
  g_test_add_func("/planner/too-large", test_too_large);
  g_test_add_func("/planner/backend-limits", test_backend_limits);
  g_test_add_func("/planner/bad-file", test_bad_file);
  int status = g_test_run();

  gtk_window_destroy(GTK_WINDOW(window));
  wh_app_test_settle(0.2);
  g_object_unref(app);
  wh_test_rmdir_r(tmp_dir);
  g_free(tmp_dir);
  return status;
}
