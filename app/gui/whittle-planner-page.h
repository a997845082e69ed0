/* whittle-planner-page.h — the Planner page: will this model fit, and how to make it fit.
 *
 * Design note
 * -----------
 * Owns: the model being planned (its hyper-parameters only, read from a local GGUF header
 * or a remote one through the hub, in jobs), this machine's device list (enumerated in a
 * job when the page is first shown), the controls (context length on a logarithmic scale,
 * GPU layers 0 … n_layer + 1 with an Auto switch, KV cache type, GPU, mmap) and the
 * per-device chart (WhittleMemoryChart) with its legend and the verdict banner.
 * Promises: moving a control recomputes the plan with wh_planner_compute() on the main
 * thread — pure arithmetic, no I/O, microseconds — so the chart follows the slider live.
 * Every figure shown is the planner's, which is the allocation the engine makes on load.
 * "Fit Automatically" picks the most GPU layers that fit at the chosen context and, when
 * even that does not fit, shortens the context to the longest that does.
 * Receives win.open-planner(s) (the Library's "Plan Memory…") through
 * whittle_planner_page_open_file().
 */
#pragma once

#include <adwaita.h>

#include "planner/planner.h"

G_BEGIN_DECLS

#define WHITTLE_TYPE_PLANNER_PAGE (whittle_planner_page_get_type())
G_DECLARE_FINAL_TYPE(WhittlePlannerPage, whittle_planner_page, WHITTLE, PLANNER_PAGE, AdwBin)

/* Plans the GGUF at @path (its header is read in a job). */
void whittle_planner_page_open_file(WhittlePlannerPage *self, const char *path);

/* Plans a remote GGUF by reading only its header from the hub. */
void whittle_planner_page_open_remote(WhittlePlannerPage *self, const char *repo_id,
                                      const char *filename);

/* Replaces the machine's devices (tests: a fixed list). Takes ownership of @devices. */
void whittle_planner_page_set_devices(WhittlePlannerPage *self, wh_device_list *devices);

/* Whether the plan of the model asked for last is shown: FALSE while a header is being
 * read (property "ready"). */
gboolean whittle_planner_page_is_ready(WhittlePlannerPage *self);

/* The plan shown, or NULL (owned by the page, valid until the next change). */
const wh_plan *whittle_planner_page_get_plan(WhittlePlannerPage *self);

/* The verdict sentence shown in the banner. */
const char *whittle_planner_page_get_verdict_text(WhittlePlannerPage *self);

/* Sets the controls as a person would (each recomputes the plan). @n_gpu_layers may be
 * WH_PLANNER_NGL_AUTO. */
void whittle_planner_page_set_context(WhittlePlannerPage *self, guint32 n_ctx);
void whittle_planner_page_set_gpu_layers(WhittlePlannerPage *self, gint32 n_gpu_layers);
void whittle_planner_page_set_kv_type(WhittlePlannerPage *self, wh_kv_type kv_type);

/* "Fit Automatically". */
void whittle_planner_page_fit(WhittlePlannerPage *self);

G_END_DECLS
