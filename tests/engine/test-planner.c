/* test-planner.c — devices, the per-device memory plan and the planner.
 *
 *  - planned == allocated per component, for every shared model, contexts 128 and 2048, KV
 *    f16 and q8_0 (CPU; and the GPU side on a real Vulkan device once a GPU backend can
 *    allocate: skipped with a message before that);
 *  - the device split rule (last layers first, output layer with n_layer + 1);
 *  - auto: fits, never leaves a further layer's worth unused, longest context is tight,
 *    against fake devices with a sweep of free memory sizes;
 *  - device lists: names, kinds, meminfo parsing; and the recompute speed (printed).
 */
#include "config.h"

#include <string.h>

#include "backend/devices.h"
#include "backend/vulkan/vk.h"
#include "gguf/gguf-writer.h"
#include "planner/planner.h"
#include "wh-test-util.h"

/* Every model file the test sweeps: the reference models plus stories260K (F32). */
static GPtrArray *
model_paths(void)
{
  GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);
  g_autofree char *dir = wh_test_shared_path("reference/models");
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name(d)))
    if (g_str_has_suffix(name, ".gguf"))
      g_ptr_array_add(paths, g_build_filename(dir, name, NULL));
  g_ptr_array_sort(paths, (GCompareFunc)g_strcmp0);
  char *stories = wh_test_shared_path("models/stories260K.gguf");
  if (g_file_test(stories, G_FILE_TEST_EXISTS))
    g_ptr_array_add(paths, stories);
  else
    g_free(stories);
  return paths;
}

static gboolean
within_1pct(guint64 planned, guint64 measured)
{
  guint64 diff = planned > measured ? planned - measured : measured - planned;
  return diff * 100 <= MAX(planned, measured);
}

static void
assert_same(const char *what, const wh_memory_plan *planned, const wh_memory_plan *measured)
{
  const guint64 *p = (const guint64 *)planned, *m = (const guint64 *)measured;
  static const char *names[] = {"weights", "kv_cache", "compute", "output", "overhead", "total"};
  G_STATIC_ASSERT(sizeof(wh_memory_plan) == 6 * sizeof(guint64));
  for (int i = 0; i < 6; i++) {
    if (!within_1pct(p[i], m[i]))
      g_error("%s: %s planned %" G_GUINT64_FORMAT " but allocated %" G_GUINT64_FORMAT, what,
              names[i], p[i], m[i]);
  }
}

/* A device list with a CPU and (optionally) one GPU of the given free memory. */
static wh_device_list *
fake_devices(guint64 ram_free, guint64 gpu_free, wh_device_kind gpu_kind)
{
  wh_device_list *l = wh_device_list_new();
  wh_device cpu = {.api = WH_DEVICE_API_HOST,
                   .kind = WH_DEVICE_KIND_CPU,
                   .unified = TRUE,
                   .total = ram_free,
                   .free = ram_free,
                   .free_known = TRUE};
  g_strlcpy(cpu.name, "CPU", sizeof(cpu.name));
  wh_device_list_add(l, &cpu);
  if (gpu_free) {
    wh_device gpu = {.api = WH_DEVICE_API_VULKAN,
                     .kind = gpu_kind,
                     .total = gpu_free,
                     .free = gpu_free,
                     .free_known = TRUE,
                     .unified = gpu_kind != WH_DEVICE_KIND_DISCRETE_GPU};
    g_strlcpy(gpu.name, "Fake GPU 9000", sizeof(gpu.name));
    wh_device_list_add(l, &gpu);
  }
  return l;
}

/* The planner's input: hyper-parameters from the file's header alone (no model load). */
static wh_model_hparams *
hparams_of(const char *path)
{
  g_autoptr(GError) error = NULL;
  wh_gguf *g = wh_gguf_open(path, &error);
  g_assert_no_error(error);
  wh_model_hparams *hp = g_new0(wh_model_hparams, 1);
  g_assert_true(wh_model_hparams_from_gguf(g, hp, &error));
  wh_gguf_close(g);
  return hp;
}

static wh_model_hparams *
load_hparams(const char *rel)
{
  g_autofree char *path = wh_test_shared_file_or_skip(rel);
  return path ? hparams_of(path) : NULL;
}

/* A backend that reads every type but @refused. */
static wh_type refused;
static gboolean
all_but_refused(wh_type t)
{
  return t != refused;
}

/* wh_model_hparams_gpu_layers(): the backends' rule from the header alone. A refused matrix
 * type stops offloading at the highest layer that has it (layers above still go), the output
 * layer stays when its own tensors are refused, quantized KV and large heads stop everything,
 * and the notes say which. */
static void
test_gpu_caps(void)
{
  g_autofree wh_model_hparams *hp = load_hparams("reference/models/synth-llama-Q4_K_M.gguf");
  if (!hp)
    return;
  const guint32 L = hp->n_layer, all = L + 1;
  char note[256];
  wh_gpu_caps caps = {"Test", all_but_refused, FALSE, 256};

  refused = WH_TYPE_IQ2_XS; /* not in the file: everything asked for goes */
  g_assert_cmpuint(wh_model_hparams_gpu_layers(hp, &caps, WH_KV_F16, 99, note, sizeof note), ==,
                   all);
  g_assert_cmpstr(note, ==, "");
  g_assert_cmpuint(wh_model_hparams_gpu_layers(hp, &caps, WH_KV_F16, 2, note, sizeof note), ==, 2);
  g_assert_cmpuint(wh_model_hparams_gpu_layers(hp, &caps, WH_KV_F16, 0, note, sizeof note), ==, 0);

  /* The highest layer with a Q6_K matrix (Q4_K_M keeps some attn_v / ffn_down in Q6_K). */
  refused = WH_TYPE_Q6_K;
  const guint64 bit = G_GUINT64_CONSTANT(1) << WH_TYPE_Q6_K;
  int top = -1;
  for (guint32 il = 0; il < L; il++)
    if (hp->layer_matrix_types[il] & bit)
      top = (int)il;
  g_assert_cmpint(top, >=, 0);
  const gboolean output_q6 = (hp->output_matrix_types & bit) != 0;
  const guint32 layers_ok = L - 1 - (guint32)top; /* the layers above it */
  const guint32 got = wh_model_hparams_gpu_layers(hp, &caps, WH_KV_F16, all, note, sizeof note);
  g_assert_cmpuint(got, ==, output_q6 ? MIN(layers_ok, L) : layers_ok);
  g_assert_nonnull(strstr(note, "Q6_K"));
  g_assert_nonnull(strstr(note, "Test backend"));
  /* asking for no more than the layers above it: no note */
  if (layers_ok > 0 && !output_q6) {
    g_assert_cmpuint(
        wh_model_hparams_gpu_layers(hp, &caps, WH_KV_F16, layers_ok, note, sizeof note), ==,
        layers_ok);
    g_assert_cmpstr(note, ==, "");
  }

  refused = WH_TYPE_IQ2_XS;
  g_assert_cmpuint(wh_model_hparams_gpu_layers(hp, &caps, WH_KV_Q8_0, all, note, sizeof note), ==,
                   0);
  g_assert_nonnull(strstr(note, "q8_0"));
  caps.quantized_kv = TRUE;
  g_assert_cmpuint(wh_model_hparams_gpu_layers(hp, &caps, WH_KV_Q4_0, all, note, sizeof note), ==,
                   all);
  caps.max_head_dim = hp->head_dim_k - 1;
  g_assert_cmpuint(wh_model_hparams_gpu_layers(hp, &caps, WH_KV_F16, all, note, sizeof note), ==,
                   0);
  g_assert_nonnull(strstr(note, "heads"));
  /* no backend in this build */
  g_assert_cmpuint(wh_model_hparams_gpu_layers(hp, NULL, WH_KV_F16, all, note, sizeof note), ==, 0);
  g_assert_cmpstr(note, !=, "");

  /* The planner applies it: an IQ2 file on a (fake) Vulkan GPU with room for everything plans
   * what the Vulkan backend runs, and says why. */
  g_autofree wh_model_hparams *iq = load_hparams("reference/models/synth-llama-IQ2_XS-imat.gguf");
  if (!iq)
    return;
  wh_device_list *devs =
      fake_devices(G_MAXUINT64 / 4, G_MAXUINT64 / 4, WH_DEVICE_KIND_DISCRETE_GPU);
  wh_planner_params pp = wh_planner_default_params();
  pp.n_gpu_layers = WH_PLANNER_NGL_AUTO;
  wh_plan plan;
  g_assert_true(wh_planner_compute(iq, devs, &pp, &plan, NULL));
  const guint32 cap =
      wh_model_hparams_gpu_layers(iq, wh_vk_gpu_caps(), WH_KV_F16, iq->n_layer + 1, NULL, 0);
  g_assert_cmpuint(plan.n_gpu_layers, ==, cap);
  g_assert_cmpuint(plan.gpu_layers_max, ==, cap);
  g_assert_cmpuint(cap, <, iq->n_layer + 1);
  g_assert_cmpstr(plan.gpu_note, !=, "");
  pp.n_gpu_layers = 2;
  g_assert_true(wh_planner_compute(iq, devs, &pp, &plan, NULL));
  g_assert_cmpuint(plan.n_gpu_layers, ==, MIN(cap, 2));
  wh_device_list_free(devs);
}

/* Planned bytes (through the planner, from hyper-parameters read without loading) equal
 * the bytes a real context allocates, per component. */
static void
test_planned_equals_allocated(void)
{
  g_autoptr(GPtrArray) paths = model_paths();
  if (paths->len == 0) {
    g_test_skip("no models in ../shared/reference/models");
    return;
  }
  const guint32 ctxs[] = {128, 2048};
  const wh_kv_type kvs[] = {WH_KV_F16, WH_KV_Q8_0};
  wh_device_list *huge = fake_devices(G_MAXUINT64 / 4, 0, WH_DEVICE_KIND_DISCRETE_GPU);
  wh_device_list *real = NULL;
  guint n_checked = 0, n_rejected = 0;
  gboolean gpu_reported = FALSE, gpu_clamp_reported = FALSE;
  guint n_gpu_checked = 0, n_gpu_offloaded = 0;
  for (guint i = 0; i < paths->len; i++) {
    const char *path = paths->pdata[i];
    g_autoptr(GError) error = NULL;
    wh_model_hparams *hp = hparams_of(path);
    /* Every tensor byte belongs to exactly one group of the device split. */
    guint64 sum = hp->output_bytes + hp->embd_bytes + hp->other_bytes;
    for (guint32 il = 0; il < hp->n_layer; il++) {
      g_assert_cmpuint(hp->layer_bytes[il], >, 0);
      sum += hp->layer_bytes[il];
    }
    g_assert_cmpuint(sum, ==, hp->weight_bytes);
    g_assert_cmpuint(hp->embd_bytes, >, 0);

    wh_model_params mp = wh_model_default_params();
    mp.n_threads = 2;
    wh_model *model = wh_model_load(path, &mp, &error);
    g_assert_no_error(error);
    for (gsize c = 0; c < G_N_ELEMENTS(ctxs); c++) {
      for (gsize k = 0; k < G_N_ELEMENTS(kvs); k++) {
        g_autofree char *what =
            g_strdup_printf("%s ctx %u kv %s", path, ctxs[c], wh_kv_type_name(kvs[k]));
        wh_planner_params pp = wh_planner_default_params();
        pp.n_ctx = ctxs[c];
        pp.kv_type = kvs[k];
        pp.n_threads = 2;
        wh_plan plan;
        g_autoptr(GError) perr = NULL;
        gboolean planned = wh_planner_compute(hp, huge, &pp, &plan, &perr);

        wh_context_params cp = wh_context_default_params();
        cp.n_ctx = ctxs[c];
        cp.kv_type = kvs[k];
        cp.n_threads = 2;
        g_autoptr(GError) cerr = NULL;
        wh_context *ctx = wh_context_new(model, &cp, &cerr);
        /* The planner refuses exactly what a context refuses (e.g. q8_0 rows of 16). */
        g_assert_cmpint(planned, ==, ctx != NULL);
        if (!ctx) {
          g_assert_error(perr, WH_MODEL_ERROR, WH_MODEL_ERROR_CONTEXT);
          n_rejected++;
          continue;
        }
        wh_memory_plan_devices alloc;
        wh_context_get_device_memory(ctx, NULL, &alloc);
        g_assert_cmpuint(plan.n_devices, ==, 1);
        assert_same(what, &plan.devices[0].mem, &alloc.dev[WH_PLAN_CPU]);
        g_assert_cmpuint(alloc.dev[WH_PLAN_GPU].total, ==, 0);
        g_assert_cmpint(plan.verdict, ==, WH_PLAN_FITS);
        wh_context_free(ctx);
        n_checked++;

        /* The GPU side: only where a GPU backend can allocate on a real device. */
        if (!real)
          real = wh_devices_enumerate();
        const wh_device *gpu = wh_device_list_find_gpu(real, NULL, NULL);
        guint32 ngls[] = {hp->n_layer / 2, hp->n_layer + 1};
        for (gsize n = 0; gpu && n < G_N_ELEMENTS(ngls); n++) {
          cp.n_gpu_layers = ngls[n];
          g_strlcpy(cp.device, gpu->name, sizeof(cp.device));
          g_autoptr(GError) gerr = NULL;
          wh_context *gctx = wh_context_new(model, &cp, &gerr);
          if (!gctx) {
            if (!gpu_reported)
              g_test_message("GPU side not checked: %s", gerr->message);
            gpu_reported = TRUE;
            break;
          }
          /* The backend may keep layers it has no kernels for on the CPU: plan what it runs. */
          const guint32 ran = wh_context_get_params(gctx)->n_gpu_layers;
          if (ran != ngls[n] && !gpu_clamp_reported) {
            g_test_message("%s: %u of %u GPU layers run there: %s", what, ran, ngls[n],
                           wh_context_get_gpu_note(gctx));
            gpu_clamp_reported = TRUE;
          }
          /* The plan of the layers asked for holds back the same layers, with the same
           * note, as loading did. */
          pp.n_gpu_layers = (gint32)ngls[n];
          pp.device = gpu->name;
          n_gpu_checked++;
          n_gpu_offloaded += ran > 0;
          g_assert_true(wh_planner_compute(hp, real, &pp, &plan, NULL));
          g_assert_cmpuint(plan.n_gpu_layers, ==, ran);
          g_assert_cmpstr(plan.gpu_note, ==,
                          wh_context_get_gpu_note(gctx) ? wh_context_get_gpu_note(gctx) : "");
          wh_context_get_device_memory(gctx, NULL, &alloc);
          assert_same(what, &plan.devices[0].mem, &alloc.dev[WH_PLAN_CPU]);
          if (ran > 0) {
            g_assert_cmpuint(plan.n_devices, ==, 2);
            assert_same(what, &plan.devices[1].mem, &alloc.dev[WH_PLAN_GPU]);
          }
          wh_context_free(gctx);
        }
        if (!gpu && !gpu_reported) {
          g_test_message("GPU side not checked: no GPU device on this machine");
          gpu_reported = TRUE;
        }
      }
    }
    wh_model_free(model);
    g_free(hp);
  }
  g_test_message("%u model/context/KV combinations planned == allocated (CPU), %u refused by "
                 "both; on the GPU device %u contexts checked, %u of them with layers there",
                 n_checked, n_rejected, n_gpu_checked, n_gpu_offloaded);
  g_assert_cmpuint(n_checked, >=, paths->len * 2);
  wh_device_list_free(huge);
  wh_device_list_free(real);
}

/* A split model's hyper-parameters from its shards' headers read one by one (as a remote
 * plan reads them) equal those of the whole model: the shards are written here from a
 * reference model, half of the tensors each. */
static void
test_split_shards(void)
{
  g_autofree char *src_path =
      wh_test_shared_file_or_skip("reference/models/synth-llama-Q4_K_M.gguf");
  if (!src_path)
    return;
  g_autoptr(GError) error = NULL;
  wh_gguf *src = wh_gguf_open(src_path, &error);
  g_assert_no_error(error);
  g_autofree char *dir = wh_test_make_tmpdir();
  g_autofree char *prefix = g_build_filename(dir, "m", NULL);
  const guint n_t = (guint)wh_gguf_n_tensors(src), half = n_t / 2;
  const char *skip[] = {"split.", NULL};
  for (guint k = 0; k < 2; k++) {
    wh_gguf_writer *w = wh_gguf_writer_new();
    if (k == 0)
      g_assert_true(wh_gguf_writer_copy_kvs(w, src, skip, &error));
    wh_gguf_writer_set_uint16(w, "split.no", (guint16)k);
    wh_gguf_writer_set_uint16(w, "split.count", 2);
    wh_gguf_writer_set_int32(w, "split.tensors.count", (gint32)n_t);
    const guint lo = k ? half : 0, hi = k ? n_t : half;
    for (guint i = lo; i < hi; i++) {
      const wh_gguf_tensor *t = wh_gguf_get_tensor(src, i);
      g_assert_true(
          wh_gguf_writer_add_tensor(w, t->name, t->type, MAX(t->n_dims, 1u), t->ne, &error));
    }
    g_autofree char *path = wh_gguf_split_path(prefix, k, 2);
    g_assert_true(wh_gguf_writer_begin(w, path, &error));
    for (guint i = lo; i < hi; i++) {
      const wh_gguf_tensor *t = wh_gguf_get_tensor(src, i);
      g_assert_true(wh_gguf_writer_write(w, t->data, t->n_bytes, &error));
    }
    g_assert_true(wh_gguf_writer_finish(w, &error));
    wh_gguf_writer_free(w);
  }
  wh_model_hparams *want = hparams_of(src_path);
  wh_gguf_close(src);

  /* The whole split model, opened by the reader: the same as the source. */
  g_autofree char *first = wh_gguf_split_path(prefix, 0, 2);
  wh_model_hparams *whole = hparams_of(first);
  /* Shard by shard, each parsed on its own (no split handling), as a remote header is. */
  wh_model_hparams *parts = g_new0(wh_model_hparams, 1);
  for (guint k = 0; k < 2; k++) {
    g_autofree char *path = wh_gguf_split_path(prefix, k, 2);
    char *data;
    gsize len;
    g_assert_true(g_file_get_contents(path, &data, &len, &error));
    wh_gguf *g = wh_gguf_open_bytes(g_bytes_new_take(data, len), path, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(wh_gguf_n_splits(g), ==, 1);
    if (k == 0) {
      g_assert_true(wh_model_hparams_from_gguf(g, parts, &error));
      g_assert_cmpuint(parts->weight_bytes, <, want->weight_bytes); /* half of it */
    } else {
      wh_model_hparams_add_tensors(parts, g);
    }
    wh_gguf_close(g);
  }
  const wh_model_hparams *got[] = {whole, parts};
  for (int i = 0; i < 2; i++) {
    g_assert_cmpuint(got[i]->weight_bytes, ==, want->weight_bytes);
    g_assert_cmpmem(got[i]->layer_bytes, sizeof(want->layer_bytes), want->layer_bytes,
                    sizeof(want->layer_bytes));
    g_assert_cmpuint(got[i]->output_bytes, ==, want->output_bytes);
    g_assert_cmpuint(got[i]->embd_bytes, ==, want->embd_bytes);
    g_assert_cmpuint(got[i]->other_bytes, ==, want->other_bytes);
    g_assert_cmpint(got[i]->tied_output, ==, want->tied_output);
  }
  g_free(want);
  g_free(whole);
  g_free(parts);
  wh_test_rmdir_r(dir);
}

/* The device split follows the rule of model.h: last layers first, the output layer with
 * n_layer + 1, the CPU side unchanged at 0, bytes conserved. */
static void
test_split_rule(void)
{
  const char *models[] = {"reference/models/synth-llama-Q4_K_M.gguf",
                          "reference/models/synth-gemma2-F16.gguf", "models/stories260K.gguf"};
  for (gsize m = 0; m < G_N_ELEMENTS(models); m++) {
    wh_model_hparams *hp = load_hparams(models[m]);
    if (!hp)
      return;
    wh_context_params cp = wh_context_default_params();
    cp.n_ctx = 512;
    cp.n_threads = 2;
    wh_memory_plan cpu_only;
    g_assert_true(wh_model_memory_plan(hp, &cp, &cpu_only, NULL));
    guint64 prev_gpu_w = 0, prev_gpu_kv = 0;
    for (guint32 ngl = 0; ngl <= hp->n_layer + 3; ngl++) {
      cp.n_gpu_layers = ngl;
      wh_memory_plan_devices s;
      g_assert_true(wh_model_memory_plan_devices(hp, &cp, &s, NULL));
      const wh_memory_plan *c = &s.dev[WH_PLAN_CPU], *g = &s.dev[WH_PLAN_GPU];
      g_assert_cmpuint(s.n_gpu_layers, ==, MIN(ngl, hp->n_layer + 1));
      g_assert_cmpuint(s.first_gpu_layer, ==, hp->n_layer - MIN(ngl, hp->n_layer));
      g_assert_cmpint(s.gpu_output, ==, ngl > hp->n_layer);
      /* The CPU keeps its compute block, host logits and overhead whatever the split. */
      g_assert_cmpuint(c->compute, ==, cpu_only.compute);
      g_assert_cmpuint(c->output, ==, cpu_only.output);
      g_assert_cmpuint(c->overhead, ==, cpu_only.overhead);
      g_assert_cmpuint(c->total, ==,
                       c->weights + c->kv_cache + c->compute + c->output + c->overhead);
      g_assert_cmpuint(g->total, ==,
                       g->weights + g->kv_cache + g->compute + g->output + g->overhead);
      if (ngl == 0) {
        g_assert_cmpmem(c, sizeof(*c), &cpu_only, sizeof(cpu_only));
        g_assert_cmpuint(g->total, ==, 0);
        continue;
      }
      /* Weights: layer bytes move; a tied output matrix is copied, not moved. */
      guint64 moved = 0;
      for (guint32 il = s.first_gpu_layer; il < hp->n_layer; il++)
        moved += hp->layer_bytes[il];
      guint64 out_w = s.gpu_output ? hp->output_bytes : 0;
      guint64 copied = s.gpu_output && hp->tied_output ? hp->embd_bytes : 0;
      g_assert_cmpuint(g->weights, ==, moved + out_w + copied);
      g_assert_cmpuint(c->weights, ==, hp->weight_bytes - moved - out_w);
      /* KV: the GPU's layers' cells (alignment only rounds each layer up by < 64 bytes). */
      g_assert_cmpuint(c->kv_cache + g->kv_cache, >=, cpu_only.kv_cache - 64 * hp->n_layer);
      g_assert_cmpuint(c->kv_cache + g->kv_cache, <=, cpu_only.kv_cache + 64 * hp->n_layer);
      g_assert_cmpuint(g->output, ==, s.gpu_output ? cpu_only.output : 0);
      g_assert_cmpuint(g->compute, >, 0);
      /* More layers never take GPU bytes away. */
      g_assert_cmpuint(g->weights, >=, prev_gpu_w);
      g_assert_cmpuint(g->kv_cache, >=, prev_gpu_kv);
      prev_gpu_w = g->weights;
      prev_gpu_kv = g->kv_cache;
    }
    g_free(hp);
  }
}

/* auto never picks settings that do not fit, and leaves less than one more layer's worth
 * unused; its longest context is tight. Swept over GPU sizes from nothing to everything. */
static void
test_auto_fit(void)
{
  const char *models[] = {"reference/models/synth-llama-Q4_K_M.gguf",
                          "reference/models/synth-qwen3-F16.gguf",
                          "reference/models/synth-gemma3-F16.gguf", "models/stories260K.gguf"};
  /* Scenarios: a discrete GPU of growing size; a unified GPU of growing size with RAM to
   * spare; a unified GPU with room to spare and growing RAM (RAM is what fills up). */
  const wh_device_kind kinds[] = {WH_DEVICE_KIND_DISCRETE_GPU, WH_DEVICE_KIND_CPU_VULKAN,
                                  WH_DEVICE_KIND_CPU_VULKAN};
  guint n_cases = 0, n_partial = 0, n_full = 0, n_none = 0, n_nofit = 0;
  for (gsize m = 0; m < G_N_ELEMENTS(models); m++) {
    wh_model_hparams *hp = load_hparams(models[m]);
    if (!hp)
      return;
    wh_planner_params pp = wh_planner_default_params();
    pp.n_ctx = 1024;
    pp.n_threads = 2;
    pp.margin_max = 1024 * 1024; /* a small margin so the sweep crosses every layer count */
    /* The biggest GPU plan: all layers. */
    wh_device_list *big = fake_devices(G_MAXUINT64 / 4, G_MAXUINT64 / 4, kinds[0]);
    pp.n_gpu_layers = (gint32)hp->n_layer + 1;
    wh_plan full;
    g_assert_true(wh_planner_compute(hp, big, &pp, &full, NULL));
    g_assert_cmpint(full.verdict, ==, WH_PLAN_FITS);
    wh_device_list_free(big);
    const guint64 gpu_max = full.devices[1].used, ram_max = full.devices[0].used + gpu_max;

    for (gsize k = 0; k < G_N_ELEMENTS(kinds); k++) {
      for (int step = 0; step <= 40; step++) {
        /* The growing one from 0.5x to 1.15x the full plan (the margin is 5%). */
        const gboolean ram_bound = k == 2;
        guint64 gpu_free = gpu_max / 2 + gpu_max * (guint64)step / 60;
        guint64 ram_free = k == 0 ? G_MAXUINT64 / 4 : gpu_max * 4;
        if (ram_bound) {
          gpu_free = gpu_max * 4;
          ram_free = ram_max / 2 + ram_max * (guint64)step / 60;
        }
        wh_device_list *devs = fake_devices(ram_free, gpu_free, kinds[k]);
        pp.n_gpu_layers = WH_PLANNER_NGL_AUTO;
        wh_plan a;
        g_assert_true(wh_planner_compute(hp, devs, &pp, &a, NULL));
        g_assert_true(a.is_auto);
        if (a.verdict == WH_PLAN_NO) {
          /* Only when not even the CPU alone fits. */
          g_assert_true(ram_bound);
          g_assert_cmpuint(a.n_gpu_layers, ==, 0);
          g_assert_false(a.devices[0].fits);
          g_assert_cmpuint(a.max_n_ctx, <, pp.n_ctx);
          wh_device_list_free(devs);
          n_cases++;
          n_nofit++;
          continue;
        }
        for (guint d = 0; d < a.n_devices; d++) {
          g_assert_true(a.devices[d].fits);
          g_assert_cmpuint(a.devices[d].used, <=, a.devices[d].budget);
        }
        if (a.n_gpu_layers <= hp->n_layer) {
          /* One more layer does not fit: at most one layer's worth is left unused. */
          pp.n_gpu_layers = (gint32)a.n_gpu_layers + 1;
          wh_plan more;
          g_assert_true(wh_planner_compute(hp, devs, &pp, &more, NULL));
          g_assert_cmpint(more.verdict, ==, WH_PLAN_NO);
          /* A discrete GPU is what is full; a unified one may fill RAM first. */
          if (kinds[k] == WH_DEVICE_KIND_DISCRETE_GPU)
            g_assert_false(more.devices[1].fits);
          /* What is left of the full device is less than what one more layer needs. */
          const guint64 gpu_used = a.n_devices == 2 ? a.devices[1].used : 0;
          guint64 unused = more.devices[1].budget - gpu_used;
          guint64 one_more = more.devices[1].used - gpu_used;
          if (ram_bound) {
            unused = a.devices[0].budget - (a.devices[0].used + gpu_used);
            one_more = more.devices[0].used + more.devices[1].used - (a.devices[0].used + gpu_used);
          }
          g_assert_cmpuint(unused, <, one_more);
        }
        if (a.n_gpu_layers == 0)
          n_none++;
        else if (a.n_gpu_layers > hp->n_layer)
          n_full++;
        else
          n_partial++;
        g_assert_cmpint(a.verdict, ==,
                        a.n_gpu_layers > 0 && a.n_gpu_layers <= hp->n_layer ? WH_PLAN_PARTIAL
                                                                            : WH_PLAN_FITS);
        /* The longest context fits, 256 more does not (or the training context is hit). */
        g_assert_cmpuint(a.max_n_ctx, >=, 256);
        pp.n_gpu_layers = (gint32)a.n_gpu_layers;
        pp.n_ctx = a.max_n_ctx;
        wh_plan at;
        g_assert_true(wh_planner_compute(hp, devs, &pp, &at, NULL));
        g_assert_cmpint(at.verdict, !=, WH_PLAN_NO);
        if (a.max_n_ctx + 256 <= MAX(hp->n_ctx_train, 256u)) {
          pp.n_ctx = a.max_n_ctx + 256;
          g_assert_true(wh_planner_compute(hp, devs, &pp, &at, NULL));
          g_assert_cmpint(at.verdict, ==, WH_PLAN_NO);
        }
        pp.n_ctx = 1024;
        wh_device_list_free(devs);
        n_cases++;
      }
    }
    g_free(hp);
  }
  g_test_message("auto: %u cases, %u all layers, %u partial, %u none, %u nothing fits", n_cases,
                 n_full, n_partial, n_none, n_nofit);
  g_assert_cmpuint(n_partial, >, 0);
  g_assert_cmpuint(n_full, >, 0);
}

/* Verdicts and errors for explicit settings. */
static void
test_verdicts(void)
{
  wh_model_hparams *hp = load_hparams("reference/models/synth-llama-Q4_K_M.gguf");
  if (!hp)
    return;
  wh_planner_params pp = wh_planner_default_params();
  pp.n_ctx = 512;
  pp.n_threads = 1;
  wh_plan plan;
  g_autoptr(GError) error = NULL;

  /* CPU only with plenty of RAM: fits; mmap'd weights are not counted. */
  wh_device_list *cpu_only = fake_devices(1ull << 34, 0, WH_DEVICE_KIND_DISCRETE_GPU);
  g_assert_true(wh_planner_compute(hp, cpu_only, &pp, &plan, &error));
  g_assert_cmpint(plan.verdict, ==, WH_PLAN_FITS);
  g_assert_cmpuint(plan.devices[0].used, ==, plan.devices[0].mem.total - hp->weight_bytes);
  pp.mmap = FALSE;
  g_assert_true(wh_planner_compute(hp, cpu_only, &pp, &plan, &error));
  g_assert_cmpuint(plan.devices[0].used, ==, plan.devices[0].mem.total);
  g_assert_true(plan.weights_counted);
  pp.mmap = TRUE;
  /* GPU layers without a GPU: a clear error; auto quietly plans the CPU. */
  pp.n_gpu_layers = 3;
  g_assert_false(wh_planner_compute(hp, cpu_only, &pp, &plan, &error));
  g_assert_error(error, WH_PLANNER_ERROR, WH_PLANNER_ERROR_DEVICE);
  g_test_message("%s", error->message);
  g_clear_error(&error);
  pp.n_gpu_layers = WH_PLANNER_NGL_AUTO;
  g_assert_true(wh_planner_compute(hp, cpu_only, &pp, &plan, &error));
  g_assert_cmpuint(plan.n_gpu_layers, ==, 0);
  g_assert_cmpint(plan.verdict, ==, WH_PLAN_FITS);
  wh_device_list_free(cpu_only);

  /* Too little RAM: no. */
  wh_device_list *tiny = fake_devices(64 * 1024, 0, WH_DEVICE_KIND_DISCRETE_GPU);
  pp.n_gpu_layers = 0;
  g_assert_true(wh_planner_compute(hp, tiny, &pp, &plan, &error));
  g_assert_cmpint(plan.verdict, ==, WH_PLAN_NO);
  g_assert_false(plan.devices[0].fits);
  wh_device_list_free(tiny);

  /* A unified GPU's bytes count against RAM: a GPU that fits but RAM that does not. */
  wh_device_list *big = fake_devices(1ull << 34, 1ull << 34, WH_DEVICE_KIND_CPU_VULKAN);
  pp.n_gpu_layers = (gint32)hp->n_layer + 1;
  g_assert_true(wh_planner_compute(hp, big, &pp, &plan, &error));
  g_assert_cmpint(plan.verdict, ==, WH_PLAN_FITS);
  const guint64 gpu_used = plan.devices[1].used, cpu_used = plan.devices[0].used;
  wh_device_list_free(big);
  wh_device_list *shared =
      fake_devices((cpu_used + gpu_used / 2) * 100 / 95, 1ull << 34, WH_DEVICE_KIND_CPU_VULKAN);
  g_assert_true(wh_planner_compute(hp, shared, &pp, &plan, &error));
  g_assert_true(plan.devices[1].fits);
  g_assert_false(plan.devices[0].fits);
  g_assert_cmpint(plan.verdict, ==, WH_PLAN_NO);
  wh_device_list_free(shared);
  /* The same sizes with a discrete GPU fit. */
  wh_device_list *discrete =
      fake_devices((cpu_used + gpu_used / 2) * 100 / 95, 1ull << 34, WH_DEVICE_KIND_DISCRETE_GPU);
  g_assert_true(wh_planner_compute(hp, discrete, &pp, &plan, &error));
  g_assert_cmpint(plan.verdict, ==, WH_PLAN_FITS);
  /* Half the layers: partial. A named device that does not exist: an error naming it. */
  pp.n_gpu_layers = (gint32)hp->n_layer / 2;
  g_assert_true(wh_planner_compute(hp, discrete, &pp, &plan, &error));
  g_assert_cmpint(plan.verdict, ==, WH_PLAN_PARTIAL);
  g_assert_cmpuint(plan.n_gpu_layers, ==, hp->n_layer / 2);
  pp.device = "no such card";
  g_assert_false(wh_planner_compute(hp, discrete, &pp, &plan, &error));
  g_assert_error(error, WH_DEVICES_ERROR, WH_DEVICES_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(error->message, "Fake GPU 9000"));
  g_clear_error(&error);
  pp.device = "fake gpu";
  g_assert_true(wh_planner_compute(hp, discrete, &pp, &plan, &error));
  wh_device_list_free(discrete);

  /* Settings a context rejects are rejected with the model's error. */
  pp.device = NULL;
  pp.n_gpu_layers = 0;
  pp.n_ctx = 1u << 25;
  g_assert_false(
      wh_planner_compute(hp, cpu_only = fake_devices(1ull << 34, 0, 0), &pp, &plan, &error));
  g_assert_error(error, WH_MODEL_ERROR, WH_MODEL_ERROR_CONTEXT);
  g_clear_error(&error);
  wh_device_list_free(cpu_only);

  /* The JSON shape of issue 6. */
  pp = wh_planner_default_params();
  pp.n_ctx = 256;
  wh_device_list *devs = fake_devices(1ull << 34, 1ull << 34, WH_DEVICE_KIND_DISCRETE_GPU);
  pp.n_gpu_layers = 2;
  g_assert_true(wh_planner_compute(hp, devs, &pp, &plan, &error));
  g_autoptr(GString) s = g_string_new(NULL);
  wh_plan_append_json(&plan, s);
  g_autofree char *want = g_strdup_printf(
      "{\"n_gpu_layers\": 2, \"n_ctx\": 256, \"kv_type\": \"f16\", \"verdict\": \"partial\", "
      "\"devices\": [{\"name\": \"CPU\", \"kind\": \"cpu\", \"weights\": %" G_GUINT64_FORMAT
      ", \"kv_cache\": %" G_GUINT64_FORMAT ", \"compute\": %" G_GUINT64_FORMAT
      ", \"output\": %" G_GUINT64_FORMAT ", \"overhead\": %" G_GUINT64_FORMAT
      ", \"total\": %" G_GUINT64_FORMAT ", \"free\": %" G_GUINT64_FORMAT
      "}, {\"name\": \"Fake GPU 9000\", \"kind\": \"gpu\", \"weights\": %" G_GUINT64_FORMAT
      ", \"kv_cache\": %" G_GUINT64_FORMAT ", \"compute\": %" G_GUINT64_FORMAT
      ", \"output\": %" G_GUINT64_FORMAT ", \"overhead\": %" G_GUINT64_FORMAT
      ", \"total\": %" G_GUINT64_FORMAT ", \"free\": %" G_GUINT64_FORMAT "}]}",
      plan.devices[0].mem.weights, plan.devices[0].mem.kv_cache, plan.devices[0].mem.compute,
      plan.devices[0].mem.output, plan.devices[0].mem.overhead, plan.devices[0].mem.total,
      (guint64)1 << 34, plan.devices[1].mem.weights, plan.devices[1].mem.kv_cache,
      plan.devices[1].mem.compute, plan.devices[1].mem.output, plan.devices[1].mem.overhead,
      plan.devices[1].mem.total, (guint64)1 << 34);
  g_assert_cmpstr(s->str, ==, want);
  wh_device_list_free(devs);
  g_free(hp);
}

/* Recompute speed for the GUI's slider (printed, not asserted): auto on the largest
 * reference model, and a plain plan. */
static void
test_speed(void)
{
  wh_model_hparams *hp = load_hparams("reference/models/synth-gemma3-F16.gguf");
  if (!hp)
    return;
  /* Stretch it to 126 layers (a 405B-sized layer count): the cost is per layer. */
  for (guint32 il = hp->n_layer; il < 126; il++) {
    guint32 from = il % hp->n_layer;
    hp->n_head[il] = hp->n_head[from];
    hp->n_head_kv[il] = hp->n_head_kv[from];
    hp->n_ff[il] = hp->n_ff[from];
    hp->swa_layer[il] = hp->swa_layer[from];
    hp->layer_bytes[il] = hp->layer_bytes[from];
    hp->weight_bytes += hp->layer_bytes[il];
  }
  hp->n_layer = 126;
  wh_device_list *devs = fake_devices(1ull << 34, 1ull << 24, WH_DEVICE_KIND_DISCRETE_GPU);
  wh_planner_params pp = wh_planner_default_params();
  const int n = 2000;
  wh_plan plan;
  for (int mode = 0; mode < 2; mode++) {
    pp.n_gpu_layers = mode ? WH_PLANNER_NGL_AUTO : 60;
    gint64 t0 = g_get_monotonic_time();
    for (int i = 0; i < n; i++) {
      pp.n_ctx = 2048 + (guint32)(i % 64) * 32;
      g_assert_true(wh_planner_compute(hp, devs, &pp, &plan, NULL));
    }
    double us = (double)(g_get_monotonic_time() - t0) / n;
    g_test_message("recompute (%s, %u layers): %.2f us per plan (goal: well under 16 ms)",
                   mode ? "auto" : "ngl 60", hp->n_layer, us);
  }
  wh_device_list_free(devs);
  g_free(hp);
}

static void
test_devices(void)
{
  guint64 total, avail;
  wh_devices_read_meminfo("MemTotal:       24576000 kB\nMemFree:  100 kB\n"
                          "MemAvailable:   12288000 kB\nBuffers: 1 kB\n",
                          &total, &avail);
  g_assert_cmpuint(total, ==, 24576000ull * 1024);
  g_assert_cmpuint(avail, ==, 12288000ull * 1024);
  wh_devices_read_meminfo("garbage", &total, &avail);
  g_assert_cmpuint(total, ==, 0);
  g_assert_cmpuint(avail, ==, 0);

  wh_device_list *l = wh_devices_enumerate();
  g_assert_cmpuint(l->n, >=, 1);
  g_assert_cmpint(l->devices[0].api, ==, WH_DEVICE_API_HOST);
  g_assert_true(wh_device_list_cpu(l) == &l->devices[0]);
  guint64 sys_total = 0;
  wh_devices_read_meminfo(NULL, &sys_total, NULL);
  g_assert_cmpuint(l->devices[0].total, ==, sys_total);
  for (guint i = 0; i < l->n; i++) {
    const wh_device *d = &l->devices[i];
    g_test_message("%s:%u %s (%s) total %" G_GUINT64_FORMAT " free %" G_GUINT64_FORMAT "%s%s",
                   wh_device_api_name(d->api), d->index, d->name, wh_device_kind_describe(d->kind),
                   d->total, d->free, d->free_known ? "" : " (free unknown)",
                   d->unified ? " unified" : "");
    g_assert_cmpuint(d->total, >, 0);
    g_assert_cmpuint(d->free, <=, d->total);
    g_assert_cmpuint(strlen(d->name), >, 0);
    if (d->kind == WH_DEVICE_KIND_CPU_VULKAN || d->kind == WH_DEVICE_KIND_INTEGRATED_GPU)
      g_assert_true(d->unified);
    if (wh_device_is_gpu(d)) {
      /* Every GPU can be found by its exact name and by api:index. */
      g_autofree char *id = g_strdup_printf("%s:%u", wh_device_api_name(d->api), d->index);
      g_assert_true(wh_device_list_find_gpu(l, id, NULL) == d);
    }
  }
  wh_device_list_free(l);

  /* Name matching on a hand-made list. */
  l = fake_devices(1, 2, WH_DEVICE_KIND_CPU_VULKAN);
  wh_device dg = l->devices[1];
  dg.kind = WH_DEVICE_KIND_DISCRETE_GPU;
  dg.index = 1;
  g_strlcpy(dg.name, "Fake GPU 9000 Ti", sizeof(dg.name));
  wh_device_list_add(l, &dg);
  g_autoptr(GError) error = NULL;
  g_assert_true(wh_device_list_find_gpu(l, NULL, NULL) == &l->devices[2]); /* discrete first */
  g_assert_true(wh_device_list_find_gpu(l, "fake gpu 9000", NULL) == &l->devices[1]); /* exact */
  g_assert_true(wh_device_list_find_gpu(l, "9000 TI", NULL) == &l->devices[2]);
  g_assert_true(wh_device_list_find_gpu(l, "vulkan:1", NULL) == &l->devices[2]);
  g_assert_true(wh_device_list_find_gpu(l, "Vulkan", NULL) == &l->devices[2]); /* best */
  g_assert_null(wh_device_list_find_gpu(l, "cuda", &error));
  g_assert_error(error, WH_DEVICES_ERROR, WH_DEVICES_ERROR_NOT_FOUND);
  g_clear_error(&error);
  g_assert_null(wh_device_list_find_gpu(l, "Fake", &error));
  g_assert_error(error, WH_DEVICES_ERROR, WH_DEVICES_ERROR_AMBIGUOUS);
  g_clear_error(&error);
  g_assert_null(wh_device_list_find_gpu(l, "CPU", &error)); /* the CPU is not a GPU */
  g_assert_error(error, WH_DEVICES_ERROR, WH_DEVICES_ERROR_NOT_FOUND);
  g_assert_cmpstr(wh_device_kind_describe(WH_DEVICE_KIND_CPU_VULKAN), ==,
                  "cpu-based Vulkan device");
  g_assert_cmpstr(wh_device_kind_json(WH_DEVICE_KIND_CPU_VULKAN), ==, "gpu");
  wh_device_list_free(l);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/planner/devices", test_devices);
  g_test_add_func("/planner/gpu-caps", test_gpu_caps);
  g_test_add_func("/planner/split-rule", test_split_rule);
  g_test_add_func("/planner/split-shards", test_split_shards);
  g_test_add_func("/planner/verdicts", test_verdicts);
  g_test_add_func("/planner/auto-fit", test_auto_fit);
  g_test_add_func("/planner/speed", test_speed);
  g_test_add_func("/planner/planned-equals-allocated", test_planned_equals_allocated);
  return g_test_run();
}
