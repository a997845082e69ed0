/* whittle-quality-chart.c — see whittle-quality-chart.h. */
#include "config.h"

#include <glib/gi18n.h>
#include <math.h>

#include "whittle-quality-chart.h"

typedef struct {
  char *name;
  double size, loss;
} Point;

struct _WhittleQualityChart {
  GtkWidget parent_instance;
  GArray *points; /* Point */
  int highlight;
};

G_DEFINE_FINAL_TYPE(WhittleQualityChart, whittle_quality_chart, GTK_TYPE_WIDGET)

static void
clear_point(gpointer data)
{
  g_free(((Point *)data)->name);
}

static void
whittle_quality_chart_measure(GtkWidget *widget, GtkOrientation orientation, int for_size,
                              int *minimum, int *natural, int *min_baseline, int *nat_baseline)
{
  (void)widget, (void)for_size;
  *minimum = orientation == GTK_ORIENTATION_HORIZONTAL ? 240 : 140;
  *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 420 : 180;
  *min_baseline = *nat_baseline = -1;
}

/* Points: x over the width (share of the source), y down from the top (sqrt of loss / max). */
static void
whittle_quality_chart_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
  WhittleQualityChart *self = WHITTLE_QUALITY_CHART(widget);
  const float w = (float)gtk_widget_get_width(widget), h = (float)gtk_widget_get_height(widget);
  const float pad = 12, label_w = 60;
  GdkRGBA fg;
  gtk_style_context_get_color(gtk_widget_get_style_context(widget), &fg);
  GdkRGBA axis = fg, dim = fg, accent = {0.21f, 0.52f, 0.89f, 1};
  axis.alpha = 0.3f;
  dim.alpha = 0.55f;
  /* Axes: left and bottom. */
  gtk_snapshot_append_color(snapshot, &axis, &GRAPHENE_RECT_INIT(pad, pad, 1, h - 2 * pad));
  gtk_snapshot_append_color(snapshot, &axis, &GRAPHENE_RECT_INIT(pad, h - pad, w - 2 * pad, 1));
  /* x spans the sizes shown (from a little below the smallest), so close sizes stay apart. */
  double max_loss = 0, min_size = 1, max_size = 0;
  for (guint i = 0; i < self->points->len; i++) {
    const Point *p = &g_array_index(self->points, Point, i);
    max_loss = MAX(max_loss, p->loss);
    min_size = MIN(min_size, p->size);
    max_size = MAX(max_size, p->size);
  }
  min_size = MAX(0, min_size - 0.05 * (max_size - min_size + 1e-9));
  const double span = max_size > min_size ? max_size - min_size : 1;
  const float plot_w = w - 2 * pad - label_w, plot_h = h - 2 * pad;
  for (guint i = 0; i < self->points->len; i++) {
    const Point *p = &g_array_index(self->points, Point, i);
    gboolean hl = (int)i == self->highlight;
    float x = pad + (float)CLAMP((p->size - min_size) / span, 0, 1) * plot_w;
    float y = pad + (max_loss > 0 ? (float)sqrt(p->loss / max_loss) : 0) * plot_h;
    float r = hl ? 5 : 3;
    gtk_snapshot_append_color(snapshot, hl ? &accent : &dim,
                              &GRAPHENE_RECT_INIT(x - r, y - r, 2 * r, 2 * r));
    PangoLayout *layout = gtk_widget_create_pango_layout(widget, p->name);
    PangoAttrList *attrs = pango_attr_list_new();
    pango_attr_list_insert(attrs, pango_attr_scale_new(hl ? 0.9 : 0.75));
    if (hl)
      pango_attr_list_insert(attrs, pango_attr_weight_new(PANGO_WEIGHT_BOLD));
    pango_layout_set_attributes(layout, attrs);
    pango_attr_list_unref(attrs);
    gtk_snapshot_save(snapshot);
    gtk_snapshot_translate(snapshot, &GRAPHENE_POINT_INIT(x + r + 2, y - 7));
    gtk_snapshot_append_layout(snapshot, layout, hl ? &accent : &dim);
    gtk_snapshot_restore(snapshot);
    g_object_unref(layout);
  }
}

static void
whittle_quality_chart_finalize(GObject *object)
{
  WhittleQualityChart *self = WHITTLE_QUALITY_CHART(object);
  g_array_unref(self->points);
  G_OBJECT_CLASS(whittle_quality_chart_parent_class)->finalize(object);
}

static void
whittle_quality_chart_class_init(WhittleQualityChartClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
  G_OBJECT_CLASS(klass)->finalize = whittle_quality_chart_finalize;
  widget_class->measure = whittle_quality_chart_measure;
  widget_class->snapshot = whittle_quality_chart_snapshot;
  gtk_widget_class_set_accessible_role(widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
whittle_quality_chart_init(WhittleQualityChart *self)
{
  self->points = g_array_new(FALSE, TRUE, sizeof(Point));
  g_array_set_clear_func(self->points, clear_point);
  self->highlight = -1;
  gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                 _("Size and quality of the types"), -1);
}

GtkWidget *
whittle_quality_chart_new(void)
{
  return g_object_new(WHITTLE_TYPE_QUALITY_CHART, NULL);
}

void
whittle_quality_chart_set_points(WhittleQualityChart *self, const char *const *names,
                                 const double *sizes, const double *losses, guint n, int highlight)
{
  g_return_if_fail(WHITTLE_IS_QUALITY_CHART(self));
  g_array_set_size(self->points, 0);
  g_autoptr(GString) description = g_string_new(NULL);
  for (guint i = 0; i < n; i++) {
    Point p = {g_strdup(names[i]), sizes[i], MAX(losses[i], 0)};
    g_array_append_val(self->points, p);
    /* Translators: one point of the chart: type, size share, perplexity increase */
    g_string_append_printf(description, _("%s: %.0f%% of the size, +%.4f perplexity. "), p.name,
                           100 * p.size, p.loss);
  }
  self->highlight = highlight;
  gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
                                 description->str, -1);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

guint
whittle_quality_chart_get_n_points(WhittleQualityChart *self)
{
  g_return_val_if_fail(WHITTLE_IS_QUALITY_CHART(self), 0);
  return self->points->len;
}
