/* planner.c — memory verdicts from the model's own allocation plan (design note in planner.h).
 */
#include "config.h"

#include "planner/planner.h"

#include "backend/cuda/cuda.h"
#include "backend/vulkan/vk.h"

#include <string.h>

G_DEFINE_QUARK(wh - planner - error - quark, wh_planner_error)

#define WH_MIB (1024ull * 1024ull)

wh_planner_params
wh_planner_default_params(void)
{
  wh_planner_params p = {
      .n_ctx = 0,
      .n_batch = 0,
      .kv_type = WH_KV_F16,
      .n_threads = 0,
      .n_gpu_layers = 0,
      .device = NULL,
      .mmap = TRUE,
      .margin_fraction = 0.05,
      .margin_max = 512 * WH_MIB,
  };
  return p;
}

const char *
wh_plan_verdict_name(wh_plan_verdict v)
{
  switch (v) {
  case WH_PLAN_FITS:
    return "fits";
  case WH_PLAN_PARTIAL:
    return "partial";
  case WH_PLAN_NO:
    return "no";
  }
  return "?";
}

static guint64
budget_of(const wh_device *dev, const wh_planner_params *p)
{
  double frac = CLAMP(p->margin_fraction, 0.0, 1.0);
  guint64 margin = MIN((guint64)((double)dev->free * frac), p->margin_max);
  return dev->free - margin;
}

/* Everything one evaluation needs besides the number of GPU layers and the context. */
typedef struct {
  const wh_model_hparams *hp;
  const wh_planner_params *p;
  wh_context_params cp;
  const wh_device *cpu, *gpu;
  guint64 cpu_budget, gpu_budget;
  guint32 gpu_max; /* layers the GPU's backend can run (wh_model_hparams_gpu_layers()) */
} plan_state;

/* Fills @out for @ngl layers and @n_ctx tokens; FALSE with @error for rejected settings. */
static gboolean
evaluate(plan_state *st, guint32 ngl, guint32 n_ctx, wh_plan *out, GError **error)
{
  const wh_model_hparams *hp = st->hp;
  wh_context_params cp = st->cp;
  cp.n_ctx = n_ctx;
  cp.n_batch = MIN(cp.n_batch, n_ctx);
  cp.n_gpu_layers = st->gpu ? MIN(ngl, st->gpu_max) : 0;
  wh_memory_plan_devices split;
  if (!wh_model_memory_plan_devices(hp, &cp, &split, error))
    return FALSE;

  memset(out, 0, sizeof(*out));
  out->n_layer = hp->n_layer;
  out->n_gpu_layers = split.n_gpu_layers;
  out->n_ctx = cp.n_ctx;
  out->n_batch = cp.n_batch;
  out->kv_type = cp.kv_type;
  out->mmap = st->p->mmap;
  out->weights_counted = !st->p->mmap;
  out->gpu_layers_max = st->gpu ? st->gpu_max : 0;

  wh_plan_device_entry *c = &out->devices[0];
  c->device = *st->cpu;
  c->mem = split.dev[WH_PLAN_CPU];
  c->used = c->mem.total - (st->p->mmap ? c->mem.weights : 0);
  c->budget = st->cpu_budget;
  out->n_devices = 1;
  guint64 ram_used = c->used;
  gboolean gpu_fits = TRUE;
  if (st->gpu && split.n_gpu_layers > 0) {
    wh_plan_device_entry *g = &out->devices[1];
    g->device = *st->gpu;
    g->mem = split.dev[WH_PLAN_GPU];
    g->used = g->mem.total;
    g->budget = st->gpu_budget;
    g->fits = g->used <= g->budget;
    gpu_fits = g->fits;
    if (st->gpu->unified)
      ram_used += g->used;
    out->n_devices = 2;
  }
  c->fits = ram_used <= c->budget;
  out->mapped_exceeds_ram = st->p->mmap && c->mem.weights > st->cpu->free;
  if (!c->fits || !gpu_fits)
    out->verdict = WH_PLAN_NO;
  else if (out->n_devices == 2 && split.n_gpu_layers <= hp->n_layer)
    out->verdict = WH_PLAN_PARTIAL;
  else
    out->verdict = WH_PLAN_FITS;
  return TRUE;
}

/* Whether @ngl layers fit the GPU, and for a unified-memory GPU also system RAM (both
 * monotone in ngl: every added layer only adds GPU bytes, and a unified GPU's bytes come out
 * of RAM while mapped CPU weights do not count). A discrete GPU's CPU side is the caller's
 * check: more layers only take bytes away from it. */
static gboolean
gpu_fits(plan_state *st, guint32 ngl, guint32 n_ctx)
{
  wh_plan tmp;
  if (!evaluate(st, ngl, n_ctx, &tmp, NULL))
    return FALSE;
  if (tmp.n_devices < 2)
    return TRUE;
  return tmp.devices[1].fits && (!st->gpu->unified || tmp.devices[0].fits);
}

gboolean
wh_planner_compute(const wh_model_hparams *hp, const wh_device_list *devices,
                   const wh_planner_params *params, wh_plan *out, GError **error)
{
  wh_planner_params p = params ? *params : wh_planner_default_params();
  plan_state st = {.hp = hp, .p = &p};
  st.cpu = wh_device_list_cpu(devices);
  if (!st.cpu) {
    g_set_error(error, WH_PLANNER_ERROR, WH_PLANNER_ERROR_DEVICE,
                "the device list has no CPU entry");
    return FALSE;
  }
  if (p.n_gpu_layers < WH_PLANNER_NGL_AUTO) {
    g_set_error(error, WH_PLANNER_ERROR, WH_PLANNER_ERROR_PARAMS,
                "GPU layers must be a number of layers (0 or more) or auto, not %d",
                p.n_gpu_layers);
    return FALSE;
  }
  if (p.n_gpu_layers != 0) {
    GError *local = NULL;
    st.gpu = wh_device_list_find_gpu(devices, p.device, &local);
    if (local) {
      g_propagate_error(error, local);
      return FALSE;
    }
    if (!st.gpu && p.n_gpu_layers > 0) {
      g_set_error(error, WH_PLANNER_ERROR, WH_PLANNER_ERROR_DEVICE,
                  "%d layers were asked for on a GPU, but this machine has no GPU device: "
                  "use 0 GPU layers or auto",
                  p.n_gpu_layers);
      return FALSE;
    }
  }
  st.cpu_budget = budget_of(st.cpu, &p);
  st.gpu_budget = st.gpu ? budget_of(st.gpu, &p) : 0;

  /* The same defaults as wh_context_new(). */
  st.cp = wh_context_default_params();
  st.cp.n_ctx = p.n_ctx ? p.n_ctx : MIN(hp->n_ctx_train ? hp->n_ctx_train : 4096, 4096);
  st.cp.n_batch = p.n_batch ? p.n_batch : 512;
  st.cp.kv_type = p.kv_type;
  st.cp.n_threads = p.n_threads > 0 ? p.n_threads : (int)g_get_num_processors();
  if (st.gpu)
    g_strlcpy(st.cp.device, st.gpu->name, sizeof(st.cp.device));

  const guint32 all = hp->n_layer + 1;
  /* What the backend of the GPU can take, and why not more: for auto, of all layers; else of
   * the layers asked for (the note then reads as loading's). */
  char note[sizeof out->gpu_note] = "";
  if (st.gpu) {
    const wh_gpu_caps *caps = st.gpu->api == WH_DEVICE_API_CUDA     ? wh_cuda_gpu_caps()
                              : st.gpu->api == WH_DEVICE_API_VULKAN ? wh_vk_gpu_caps()
                                                                    : NULL;
    const guint32 asked =
        p.n_gpu_layers == WH_PLANNER_NGL_AUTO ? all : MIN((guint32)p.n_gpu_layers, all);
    st.gpu_max = wh_model_hparams_gpu_layers(hp, caps, st.cp.kv_type, asked, note, sizeof note);
  }
  if (p.n_gpu_layers != WH_PLANNER_NGL_AUTO) {
    if (!evaluate(&st, MIN((guint32)p.n_gpu_layers, all), st.cp.n_ctx, out, error))
      return FALSE;
    g_strlcpy(out->gpu_note, note, sizeof out->gpu_note);
    return TRUE;
  }

  /* auto: the most layers whose GPU side fits (binary search, monotone), then the
   * longest context at that count. */
  guint32 ngl = 0;
  if (st.gpu) {
    if (!evaluate(&st, 0, st.cp.n_ctx, out, error)) /* rejects bad settings once */
      return FALSE;
    guint32 lo = 0, hi = st.gpu_max; /* invariant: lo fits (0 always: no GPU side) */
    while (lo < hi) {
      guint32 mid = lo + (hi - lo + 1) / 2;
      if (gpu_fits(&st, mid, st.cp.n_ctx))
        lo = mid;
      else
        hi = mid - 1;
    }
    ngl = lo;
  }
  if (!evaluate(&st, ngl, st.cp.n_ctx, out, error))
    return FALSE;
  out->is_auto = TRUE;
  if (st.gpu && ngl == st.gpu_max) /* the backend, not memory, stopped auto */
    g_strlcpy(out->gpu_note, note, sizeof out->gpu_note);

  /* Longest context (multiples of 256 up to the training context) that fits with ngl
   * layers: binary search over the multiples (memory grows with the context). */
  const guint32 step = 256;
  const guint32 ctx_max = MAX(hp->n_ctx_train, step);
  guint32 lo = 0, hi = ctx_max / step;
  while (lo < hi) {
    guint32 mid = lo + (hi - lo + 1) / 2;
    wh_plan tmp;
    if (evaluate(&st, ngl, mid * step, &tmp, NULL) && tmp.verdict != WH_PLAN_NO)
      lo = mid;
    else
      hi = mid - 1;
  }
  out->max_n_ctx = lo * step;
  return TRUE;
}

void
wh_plan_append_json(const wh_plan *plan, GString *out)
{
  g_string_append_printf(out,
                         "{\"n_gpu_layers\": %u, \"n_ctx\": %u, \"kv_type\": \"%s\", "
                         "\"verdict\": \"%s\", ",
                         plan->n_gpu_layers, plan->n_ctx, wh_kv_type_name(plan->kv_type),
                         wh_plan_verdict_name(plan->verdict));
  if (plan->gpu_note[0]) {
    g_autofree char *note = g_strescape(plan->gpu_note, NULL);
    g_string_append_printf(out, "\"gpu_note\": \"%s\", ", note);
  }
  g_string_append(out, "\"devices\": [");
  for (guint i = 0; i < plan->n_devices; i++) {
    const wh_plan_device_entry *e = &plan->devices[i];
    g_autofree char *name = g_strescape(e->device.name, NULL);
    g_string_append_printf(out,
                           "%s{\"name\": \"%s\", \"kind\": \"%s\", \"weights\": %" G_GUINT64_FORMAT
                           ", \"kv_cache\": %" G_GUINT64_FORMAT ", \"compute\": %" G_GUINT64_FORMAT
                           ", \"output\": %" G_GUINT64_FORMAT ", \"overhead\": %" G_GUINT64_FORMAT
                           ", \"total\": %" G_GUINT64_FORMAT ", \"free\": %" G_GUINT64_FORMAT "}",
                           i ? ", " : "", name, wh_device_kind_json(e->device.kind), e->mem.weights,
                           e->mem.kv_cache, e->mem.compute, e->mem.output, e->mem.overhead,
                           e->mem.total, e->device.free);
  }
  g_string_append(out, "]}");
}

void
wh_plan_from_context(const wh_context *ctx, const wh_device_list *devices, wh_plan *out)
{
  g_autoptr(GError) error = NULL;
  wh_device_list *own = NULL;
  if (!devices && wh_context_get_params(ctx)->n_gpu_layers > 0) {
    own = wh_devices_enumerate();
    devices = own;
  } else if (!devices) {
    /* Only the CPU: enumerating GPUs takes a while and no GPU is in use. */
    own = wh_device_list_new();
    wh_device cpu = {.api = WH_DEVICE_API_HOST, .kind = WH_DEVICE_KIND_CPU, .unified = TRUE};
    g_strlcpy(cpu.name, "CPU", sizeof(cpu.name));
    wh_devices_read_meminfo(NULL, &cpu.total, &cpu.free);
    cpu.free_known = cpu.free > 0;
    wh_device_list_add(own, &cpu);
    devices = own;
  }
  const wh_context_params *cp = wh_context_get_params(ctx);
  wh_memory_plan_devices alloc;
  wh_context_get_device_memory(ctx, NULL, &alloc);

  memset(out, 0, sizeof(*out));
  out->verdict = WH_PLAN_FITS;
  out->n_gpu_layers = alloc.n_gpu_layers;
  out->n_ctx = cp->n_ctx;
  out->n_batch = cp->n_batch;
  out->kv_type = cp->kv_type;
  out->mmap = TRUE;
  out->n_devices = 1;
  out->gpu_layers_max = alloc.n_gpu_layers;
  g_strlcpy(out->gpu_note, wh_context_get_gpu_note(ctx) ? wh_context_get_gpu_note(ctx) : "",
            sizeof out->gpu_note);
  const wh_device *cpu = wh_device_list_cpu(devices);
  if (cpu)
    out->devices[0].device = *cpu;
  else
    g_strlcpy(out->devices[0].device.name, "CPU", sizeof(out->devices[0].device.name));
  out->devices[0].mem = alloc.dev[WH_PLAN_CPU];
  if (alloc.n_gpu_layers > 0) {
    /* The device the backend really opened (its exact name), else what was asked for. */
    const char *name = wh_context_get_gpu_device(ctx);
    if (!name || !*name)
      name = cp->device;
    const wh_device *gpu = wh_device_list_find_gpu(devices, name, &error);
    wh_plan_device_entry *g = &out->devices[1];
    if (gpu) {
      g->device = *gpu;
    } else {
      g->device.kind = WH_DEVICE_KIND_OTHER_GPU;
      g_strlcpy(g->device.name, *name ? name : "GPU", sizeof(g->device.name));
    }
    g->mem = alloc.dev[WH_PLAN_GPU];
    out->n_devices = 2;
    if (!alloc.gpu_output)
      out->verdict = WH_PLAN_PARTIAL;
  }
  wh_device_list_free(own);
}
