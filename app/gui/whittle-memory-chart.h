/* whittle-memory-chart.h — a stacked bar per device: what a plan puts where.
 *
 * Design note
 * -----------
 * Owns: a copy of a wh_plan (engine/planner) and its drawing. One row per device of the
 * plan: the device's name and a horizontal bar whose full width is the larger of the
 * memory free now and what the plan uses. Segments, left to right: weights, KV cache,
 * compute scratch, other (output buffer + fixed overhead), then free memory; what does
 * not fit is drawn as a red overflow segment at the right end. Weights that are mapped
 * from the file (the CPU with mmap) are drawn in a lighter shade: they are reported but do not
 * count against free RAM (see planner.h).
 * Promises: drawing uses only the copied plan (no I/O); the accessible label (role IMG)
 * says the same numbers in words, so a screen reader reads what the bars show.
 * Colours: the categories' colours are exposed (whittle_memory_chart_category_color()) so
 * a legend next to the chart can use the same ones.
 */
#pragma once

#include <gtk/gtk.h>

#include "planner/planner.h"

G_BEGIN_DECLS

typedef enum {
  WHITTLE_MEMORY_WEIGHTS,
  WHITTLE_MEMORY_KV_CACHE,
  WHITTLE_MEMORY_COMPUTE,
  WHITTLE_MEMORY_OTHER,
  WHITTLE_MEMORY_FREE,
  WHITTLE_MEMORY_OVERFLOW,
  WHITTLE_MEMORY_N_CATEGORIES
} WhittleMemoryCategory;

#define WHITTLE_TYPE_MEMORY_CHART (whittle_memory_chart_get_type())
G_DECLARE_FINAL_TYPE(WhittleMemoryChart, whittle_memory_chart, WHITTLE, MEMORY_CHART, GtkWidget)

GtkWidget *whittle_memory_chart_new(void);

/* Shows @plan (copied; NULL clears the chart). */
void whittle_memory_chart_set_plan(WhittleMemoryChart *self, const wh_plan *plan);

/* The plan shown, or NULL. Owned by the chart. */
const wh_plan *whittle_memory_chart_get_plan(WhittleMemoryChart *self);

/* The fill colour of @category (static). */
const GdkRGBA *whittle_memory_chart_category_color(WhittleMemoryCategory category);

/* Translated name of @category ("Weights", "KV cache", ...). */
const char *whittle_memory_chart_category_name(WhittleMemoryCategory category);

/* Bytes of @category on device @i of @plan (OTHER = output + overhead; FREE = what is left
 * of the device's free memory after the counted use; OVERFLOW = counted use beyond free). */
guint64 whittle_memory_chart_category_bytes(const wh_plan *plan, guint i,
                                            WhittleMemoryCategory category);

G_END_DECLS
