/* whittle-fit.h — "will it fit?" badges for the Browse details and the Library.
 *
 * Design note
 * -----------
 * Owns: turning a GGUF header (local file or remote header) into a plan for this machine
 * with the planner (engine/planner: GPU layers chosen automatically, the context length,
 * KV cache type and preferred GPU of the settings) and the words of the badge:
 * "Fits on GPU", "Partial offload · 24/32 layers", "CPU only · needs 2 GB RAM", "Too large".
 * Promises: whittle_fit_plan() is blocking but pure CPU work on an open header (the device
 * list is enumerated once per process, on first use): call it from a job. The other
 * functions are main-thread helpers.
 */
#pragma once

#include <gtk/gtk.h>

#include "gguf/gguf.h"
#include "jobs/jobs.h"
#include "planner/planner.h"

G_BEGIN_DECLS

typedef struct {
  guint32 n_ctx;      /* the context length to plan for (clamped to the model's) */
  wh_kv_type kv_type; /* KV cache type */
  char *device;       /* preferred GPU name, NULL: the best one */
} WhittleFitSettings;

/* Reads "default-context-length", "default-kv-type" and "preferred-gpu" (@settings may be
 * NULL: 4096, f16, best GPU). Free the strings with whittle_fit_settings_clear(). */
void whittle_fit_settings_load(WhittleFitSettings *fs, GSettings *settings);
void whittle_fit_settings_clear(WhittleFitSettings *fs);

/* Plans the model of @g on this machine's devices. Returns a newly allocated plan (free
 * with g_free()) or NULL with @error (the header is not a model the planner knows). */
wh_plan *whittle_fit_plan(const wh_gguf *g, const WhittleFitSettings *fs, GError **error);

/* For job functions: plans @g (taking it: it is closed) and hands the plan to @job as its
 * result. Returns FALSE with @error when the planner cannot judge the model. */
gboolean whittle_fit_run(wh_job *job, wh_gguf *g, const WhittleFitSettings *fs, GError **error);

/* The badge words for @plan (newly allocated) and its style class in *@css (static). */
char *whittle_fit_badge_text(const wh_plan *plan, const char **css);

/* Shows @text on @label with the style class @css (may be NULL), replacing the previous
 * badge style. */
void whittle_fit_badge_apply(GtkLabel *label, const char *text, const char *css);

G_END_DECLS
