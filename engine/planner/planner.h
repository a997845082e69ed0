/* planner.h — will this model fit, and how to make it fit, before loading or downloading.
 *
 * Design note
 * -----------
 * Owns: the verdict and per-device numbers for running a model (its
 * hyper-parameters, from a local GGUF or a remote header) with given context
 * settings on the devices of a wh_device_list.
 * Promises:
 *  - Exact by construction: every byte figure comes from
 *    wh_model_memory_plan_devices(), the function contexts allocate by, so
 *    a plan equals what loading allocates (wh_context_get_device_memory()).
 *  - Pure and fast: wh_planner_compute() does no I/O and allocates nothing;
 *    recomputing on every slider move is fine (microseconds for `auto`).
 *  - Memory that counts against a device's free memory ("used"):
 *    the CPU counts kv_cache + compute + output + overhead, plus the weights
 *    only without mmap (with mmap they are file-backed pages the kernel can
 *    drop and re-read: reported, not counted; if they exceed free RAM the
 *    plan says so, since generation then re-reads the file). A GPU device
 *    counts its whole total. A unified-memory GPU (integrated, or
 *    cpu-based like lavapipe) takes its memory from system RAM, so its total
 *    is also counted against the CPU's free memory.
 *  - Safety margin: a device's budget is free - min(free * margin_fraction,
 *    margin_max) (defaults 5% and 512 MiB: room for the driver, the
 *    runtime's own allocations and other programs). A plan "fits" a device
 *    when used <= budget.
 *  - Verdict: WH_PLAN_NO when some device does not fit; otherwise
 *    WH_PLAN_PARTIAL when a GPU device runs some but not all of the layers
 *    and the output layer; WH_PLAN_FITS otherwise (everything on the GPU, or
 *    a CPU-only plan).
 *  - What the GPU's backend can run bounds every plan, as it bounds loading: layers with a
 *    weight type the backend has no kernel for, a KV type or head size it does not take,
 *    stay on the CPU (wh_model_hparams_gpu_layers(), the rule the backends apply), and the
 *    plan carries the same note loading would give (gpu_note).
 *  - `auto` (n_gpu_layers = WH_PLANNER_NGL_AUTO) picks the most layers that
 *    fit at the requested context: never a value that does not fit, and,
 *    when fewer than all layers are chosen, one more layer would not fit (so
 *    at most one layer's worth of budget is left unused). It then reports
 *    the longest context (a multiple of 256, at most the training context)
 *    that fits with that many layers.
 * Does not: read files or query devices (the caller passes hparams and a
 * device list, see wh_devices_enumerate()).
 *
 * Thread-safety: all functions are reentrant.
 */
#pragma once

#include "backend/devices.h"
#include "model/model.h"

G_BEGIN_DECLS

#define WH_PLANNER_ERROR (wh_planner_error_quark())
GQuark wh_planner_error_quark(void);

typedef enum {
  WH_PLANNER_ERROR_PARAMS, /* bad context settings (the model's context would reject them) */
  WH_PLANNER_ERROR_DEVICE, /* the requested device does not exist */
} wh_planner_error;

#define WH_PLANNER_NGL_AUTO (-1)

typedef struct {
  guint32 n_ctx;          /* 0 = min(n_ctx_train, 4096), as wh_context_new() */
  guint32 n_batch;        /* 0 = 512 */
  wh_kv_type kv_type;     /* default f16 */
  int n_threads;          /* 0 = number of processors */
  gint32 n_gpu_layers;    /* >= 0 (more than n_layer + 1 means all), or WH_PLANNER_NGL_AUTO */
  const char *device;     /* GPU device name (see wh_device_list_find_gpu()); NULL = best */
  gboolean mmap;          /* CPU weights are mapped from the file (default TRUE) */
  double margin_fraction; /* safety margin (default 0.05) */
  guint64 margin_max;     /* cap of the margin in bytes (default 512 MiB) */
} wh_planner_params;

typedef enum {
  WH_PLAN_FITS,    /* fits as planned (all layers on the GPU, or CPU only) */
  WH_PLAN_PARTIAL, /* fits with some layers on the GPU and the rest on the CPU */
  WH_PLAN_NO,      /* some device does not have the memory */
} wh_plan_verdict;

typedef struct {
  wh_device device;   /* a copy of the device's entry */
  wh_memory_plan mem; /* bytes per component, as allocated */
  guint64 used;       /* bytes that count against free memory (see the design note) */
  guint64 budget;     /* free memory minus the safety margin */
  gboolean fits;      /* used <= budget (the CPU: also with its unified GPU's bytes) */
} wh_plan_device_entry;

typedef struct {
  wh_plan_verdict verdict;
  guint32 n_layer;        /* the model's layer count */
  guint32 n_gpu_layers;   /* effective (auto resolved, clamped to n_layer + 1) */
  guint32 n_ctx, n_batch; /* effective */
  wh_kv_type kv_type;
  gboolean mmap;
  gboolean weights_counted;    /* CPU weights count against free RAM (no mmap) */
  gboolean mapped_exceeds_ram; /* mmap: the CPU weights are more than free RAM */
  gboolean is_auto;            /* n_gpu_layers was chosen by auto */
  guint32 max_n_ctx;           /* auto: longest context that fits (0: none; not auto: 0) */
  guint n_devices;             /* 1 (CPU) or 2 (CPU and the GPU) */
  wh_plan_device_entry devices[2];
  /* The most layers the GPU's backend can run for this model and KV type (n_layer + 1: all;
   * 0 without a GPU), and why fewer than asked for run there ("" when nothing was held
   * back), as loading says it (wh_context_get_gpu_note()). */
  guint32 gpu_layers_max;
  char gpu_note[256];
} wh_plan;

wh_planner_params wh_planner_default_params(void);

/* Plans @hp with @params on @devices (the CPU entry is required; a GPU is used when
 * n_gpu_layers != 0 and one is found). No I/O. Returns FALSE with WH_PLANNER_ERROR_* (or
 * WH_MODEL_ERROR_CONTEXT) for settings a context would reject, a named device that does
 * not exist, or GPU layers asked for with no GPU device. */
gboolean wh_planner_compute(const wh_model_hparams *hp, const wh_device_list *devices,
                            const wh_planner_params *params, wh_plan *out, GError **error);

const char *wh_plan_verdict_name(wh_plan_verdict v); /* "fits", "partial", "no" */

/* The memory report JSON of issue 6 (one line, no newline), shared by `plan --json` and
 * `run --report-memory --json`: {"n_gpu_layers": N, "n_ctx": N, "kv_type": "f16",
 * "verdict": "...", "devices": [{"name", "kind", "weights", "kv_cache", "compute",
 * "output", "overhead", "total", "free"}]}, plus "gpu_note": "..." when the backend keeps
 * layers asked for on the CPU. Appends to @out. */
void wh_plan_append_json(const wh_plan *plan, GString *out);

/* A wh_plan that describes an existing context's actual allocation (verdict "fits", or
 * "partial" when its GPU runs some layers; free memory from @devices, or with NULL read
 * afresh: the CPU's alone, or every device when the context uses a GPU). */
void wh_plan_from_context(const wh_context *ctx, const wh_device_list *devices, wh_plan *out);

G_END_DECLS
