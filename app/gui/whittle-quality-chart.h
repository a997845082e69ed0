/* whittle-quality-chart.h — a small size-versus-quality chart for the Quantize results.
 *
 * Design note
 * -----------
 * Owns: a list of points (a type name, its size as a share of the source, its quality loss)
 * and which one to highlight. Draws them with GtkSnapshot: x = size (from just below the
 * smallest share shown to the largest),
 * y = quality loss on a square-root scale (so the small losses of the large types stay apart),
 * the highlighted point larger and in the accent colour, the others dimmed, with the type
 * names beside the points. The accessible description lists every point in words.
 * Does not: compute sizes or qualities (the wizard gives them).
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define WHITTLE_TYPE_QUALITY_CHART (whittle_quality_chart_get_type())
G_DECLARE_FINAL_TYPE(WhittleQualityChart, whittle_quality_chart, WHITTLE, QUALITY_CHART, GtkWidget)

GtkWidget *whittle_quality_chart_new(void);
/* Replaces the points: @n names, sizes (share of the source, 0..1) and losses (>= 0), all
 * copied; @highlight is the index to stand out (-1: none). */
void whittle_quality_chart_set_points(WhittleQualityChart *self, const char *const *names,
                                      const double *sizes, const double *losses, guint n,
                                      int highlight);
guint whittle_quality_chart_get_n_points(WhittleQualityChart *self);

G_END_DECLS
