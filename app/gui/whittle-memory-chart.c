/* whittle-memory-chart.c — see whittle-memory-chart.h. */
#include "config.h"

#include <glib/gi18n.h>

#include "whittle-memory-chart.h"

#define ROW_LABEL_HEIGHT 22 /* device name line */
#define BAR_HEIGHT 22
#define ROW_GAP 14
#define ROW_HEIGHT (ROW_LABEL_HEIGHT + BAR_HEIGHT + ROW_GAP)

struct _WhittleMemoryChart {
  GtkWidget parent_instance;
  gboolean has_plan;
  wh_plan plan;
};

G_DEFINE_FINAL_TYPE(WhittleMemoryChart, whittle_memory_chart, GTK_TYPE_WIDGET)

/* GNOME palette (blue 3, green 4, orange 3, purple 2, light grey, red 3). */
static const GdkRGBA category_colors[WHITTLE_MEMORY_N_CATEGORIES] = {
    [WHITTLE_MEMORY_WEIGHTS] = {0.208, 0.518, 0.894, 1.0},
    [WHITTLE_MEMORY_KV_CACHE] = {0.180, 0.761, 0.494, 1.0},
    [WHITTLE_MEMORY_COMPUTE] = {1.000, 0.471, 0.000, 1.0},
    [WHITTLE_MEMORY_OTHER] = {0.569, 0.255, 0.675, 1.0},
    [WHITTLE_MEMORY_FREE] = {0.5, 0.5, 0.5, 0.18},
    [WHITTLE_MEMORY_OVERFLOW] = {0.878, 0.106, 0.141, 1.0},
};

const GdkRGBA *
whittle_memory_chart_category_color(WhittleMemoryCategory category)
{
  g_return_val_if_fail(category < WHITTLE_MEMORY_N_CATEGORIES, &category_colors[0]);
  return &category_colors[category];
}

const char *
whittle_memory_chart_category_name(WhittleMemoryCategory category)
{
  switch (category) {
  case WHITTLE_MEMORY_WEIGHTS:
    return _("Weights");
  case WHITTLE_MEMORY_KV_CACHE:
    return _("KV cache");
  case WHITTLE_MEMORY_COMPUTE:
    return _("Compute");
  case WHITTLE_MEMORY_OTHER:
    return _("Other");
  case WHITTLE_MEMORY_FREE:
    return _("Free");
  case WHITTLE_MEMORY_OVERFLOW:
    return _("Missing");
  case WHITTLE_MEMORY_N_CATEGORIES:
    break;
  }
  return "";
}

guint64
whittle_memory_chart_category_bytes(const wh_plan *plan, guint i, WhittleMemoryCategory category)
{
  g_return_val_if_fail(plan != NULL && i < plan->n_devices, 0);
  const wh_plan_device_entry *d = &plan->devices[i];
  switch (category) {
  case WHITTLE_MEMORY_WEIGHTS:
    return d->mem.weights;
  case WHITTLE_MEMORY_KV_CACHE:
    return d->mem.kv_cache;
  case WHITTLE_MEMORY_COMPUTE:
    return d->mem.compute;
  case WHITTLE_MEMORY_OTHER:
    return d->mem.output + d->mem.overhead;
  case WHITTLE_MEMORY_FREE:
    return d->device.free > d->used ? d->device.free - d->used : 0;
  case WHITTLE_MEMORY_OVERFLOW:
    return d->used > d->device.free ? d->used - d->device.free : 0;
  case WHITTLE_MEMORY_N_CATEGORIES:
    break;
  }
  return 0;
}

/* The CPU's weights do not count against free RAM with mmap: they are drawn, but beside
 * the counted bytes rather than inside them. */
static gboolean
weights_mapped(const wh_plan *plan, guint i)
{
  return plan->devices[i].device.kind == WH_DEVICE_KIND_CPU && !plan->weights_counted;
}

static void
update_accessible_label(WhittleMemoryChart *self)
{
  GString *s = g_string_new(NULL);
  if (!self->has_plan)
    g_string_append(s, _("No plan"));
  for (guint i = 0; self->has_plan && i < self->plan.n_devices; i++) {
    const wh_plan_device_entry *d = &self->plan.devices[i];
    if (i)
      g_string_append(s, "; ");
    g_string_append_printf(s, "%s:", d->device.name);
    for (WhittleMemoryCategory c = 0; c < WHITTLE_MEMORY_N_CATEGORIES; c++) {
      guint64 b = whittle_memory_chart_category_bytes(&self->plan, i, c);
      if (b == 0 && c >= WHITTLE_MEMORY_FREE)
        continue;
      g_autofree char *size = g_format_size(b);
      g_string_append_printf(s, " %s %s%s", whittle_memory_chart_category_name(c), size,
                             c + 1 < WHITTLE_MEMORY_N_CATEGORIES ? "," : "");
    }
    if (s->str[s->len - 1] == ',')
      g_string_truncate(s, s->len - 1);
  }
  gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL, s->str, -1);
  g_string_free(s, TRUE);
}

static void
append_rect(GtkSnapshot *snapshot, const GdkRGBA *color, float x, float y, float w, float h)
{
  if (w <= 0.f)
    return;
  graphene_rect_t r = GRAPHENE_RECT_INIT(x, y, w, h);
  gtk_snapshot_append_color(snapshot, color, &r);
}

/* Row i: the device name at the top, then the bar. The bar's full width is the larger of
 * free memory and the counted use (+ mapped weights on the CPU). */
static void
whittle_memory_chart_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
  WhittleMemoryChart *self = WHITTLE_MEMORY_CHART(widget);
  if (!self->has_plan)
    return;
  const float width = (float)gtk_widget_get_width(widget);
  GdkRGBA fg;
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  gtk_style_context_get_color(gtk_widget_get_style_context(widget), &fg); /* 4.8 API */
  G_GNUC_END_IGNORE_DEPRECATIONS

  for (guint i = 0; i < self->plan.n_devices; i++) {
    const wh_plan_device_entry *d = &self->plan.devices[i];
    const float y0 = (float)(i * ROW_HEIGHT);

    g_autofree char *used = g_format_size(d->used);
    g_autofree char *free_ = g_format_size(d->device.free);
    g_autofree char *text = g_strdup_printf(_("%s — %s of %s free"), d->device.name, used, free_);
    PangoLayout *layout = gtk_widget_create_pango_layout(widget, text);
    pango_layout_set_width(layout, (int)(width * PANGO_SCALE));
    pango_layout_set_ellipsize(layout, PANGO_ELLIPSIZE_END);
    gtk_snapshot_save(snapshot);
    gtk_snapshot_translate(snapshot, &GRAPHENE_POINT_INIT(0, y0));
    gtk_snapshot_append_layout(snapshot, layout, &fg);
    gtk_snapshot_restore(snapshot);
    g_object_unref(layout);

    const gboolean mapped = weights_mapped(&self->plan, i);
    guint64 counted = d->used;
    guint64 extent = MAX(d->device.free, counted);
    if (mapped)
      extent = MAX(extent, counted + d->mem.weights);
    if (extent == 0)
      continue;
    const double scale = width / (double)extent;
    const float by = y0 + ROW_LABEL_HEIGHT;
    float x = 0;

    /* Background: the free memory, then the categories drawn over it from the left. */
    append_rect(snapshot, &category_colors[WHITTLE_MEMORY_FREE], 0, by, width, BAR_HEIGHT);
    for (WhittleMemoryCategory c = WHITTLE_MEMORY_WEIGHTS; c <= WHITTLE_MEMORY_OTHER; c++) {
      float w = (float)(whittle_memory_chart_category_bytes(&self->plan, i, c) * scale);
      GdkRGBA color = category_colors[c];
      if (c == WHITTLE_MEMORY_WEIGHTS && mapped)
        color.alpha = 0.45f; /* mapped from the file: shown, not counted */
      append_rect(snapshot, &color, x, by, w, BAR_HEIGHT);
      x += w;
    }
    /* Counted use beyond the free memory: a red band at the right end of the bar. */
    guint64 over = whittle_memory_chart_category_bytes(&self->plan, i, WHITTLE_MEMORY_OVERFLOW);
    if (over) {
      float w = MAX(3.f, (float)(over * scale));
      append_rect(snapshot, &category_colors[WHITTLE_MEMORY_OVERFLOW], width - w, by, w,
                  BAR_HEIGHT);
    }
    /* A tick where free memory ends when something runs past it. */
    if (d->device.free < extent)
      append_rect(snapshot, &fg, (float)(d->device.free * scale) - 1.f, by - 3.f, 2.f,
                  BAR_HEIGHT + 6.f);
  }
}

static void
whittle_memory_chart_measure(GtkWidget *widget, GtkOrientation orientation, int for_size,
                             int *minimum, int *natural, int *minimum_baseline,
                             int *natural_baseline)
{
  WhittleMemoryChart *self = WHITTLE_MEMORY_CHART(widget);
  (void)for_size;
  *minimum_baseline = *natural_baseline = -1;
  if (orientation == GTK_ORIENTATION_HORIZONTAL) {
    *minimum = 160;
    *natural = 480;
  } else {
    guint n = self->has_plan ? self->plan.n_devices : 1;
    *minimum = *natural = (int)(n * ROW_HEIGHT) - ROW_GAP;
  }
}

static void
whittle_memory_chart_class_init(WhittleMemoryChartClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
  widget_class->snapshot = whittle_memory_chart_snapshot;
  widget_class->measure = whittle_memory_chart_measure;
  gtk_widget_class_set_css_name(widget_class, "memorychart");
  gtk_widget_class_set_accessible_role(widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
whittle_memory_chart_init(WhittleMemoryChart *self)
{
  update_accessible_label(self);
}

GtkWidget *
whittle_memory_chart_new(void)
{
  return g_object_new(WHITTLE_TYPE_MEMORY_CHART, NULL);
}

void
whittle_memory_chart_set_plan(WhittleMemoryChart *self, const wh_plan *plan)
{
  g_return_if_fail(WHITTLE_IS_MEMORY_CHART(self));
  guint old_n = self->has_plan ? self->plan.n_devices : 1;
  self->has_plan = plan != NULL;
  if (plan)
    self->plan = *plan;
  update_accessible_label(self);
  if ((self->has_plan ? self->plan.n_devices : 1) != old_n)
    gtk_widget_queue_resize(GTK_WIDGET(self));
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

const wh_plan *
whittle_memory_chart_get_plan(WhittleMemoryChart *self)
{
  g_return_val_if_fail(WHITTLE_IS_MEMORY_CHART(self), NULL);
  return self->has_plan ? &self->plan : NULL;
}
