/* whittle-spinner.c — see whittle-spinner.h. */
#include "config.h"

#include <math.h>

#include "whittle-spinner.h"

#define ICON_SIZE 16
#define ICON_NAME "process-working-symbolic"

struct _WhittleSpinner {
  GtkWidget parent_instance;

  gboolean spinning;
  guint tick;             /* redraws while spinning and mapped */
  GtkIconPaintable *icon; /* looked up on first draw and after a theme or scale change */
};

G_DEFINE_FINAL_TYPE(WhittleSpinner, whittle_spinner, GTK_TYPE_WIDGET)

enum { PROP_0, PROP_SPINNING, N_PROPS };
static GParamSpec *props[N_PROPS];

static gboolean
animations_enabled(WhittleSpinner *self)
{
  gboolean enabled = TRUE;
  g_object_get(gtk_widget_get_settings(GTK_WIDGET(self)), "gtk-enable-animations", &enabled, NULL);
  return enabled;
}

static gboolean
on_tick(GtkWidget *widget, GdkFrameClock *clock, gpointer data)
{
  gtk_widget_queue_draw(widget);
  return G_SOURCE_CONTINUE;
}

/* A tick exactly while there is something to turn on screen. */
static void
update_tick(WhittleSpinner *self)
{
  GtkWidget *widget = GTK_WIDGET(self);
  gboolean want = self->spinning && gtk_widget_get_mapped(widget) && animations_enabled(self);
  if (want && self->tick == 0)
    self->tick = gtk_widget_add_tick_callback(widget, on_tick, NULL, NULL);
  else if (!want && self->tick != 0) {
    gtk_widget_remove_tick_callback(widget, self->tick);
    self->tick = 0;
  }
}

/* The same lookup as GtkSpinner's CSS image (WhittleJobsButton loads it while idle). */
static GtkIconPaintable *
get_icon(WhittleSpinner *self)
{
  if (self->icon == NULL) {
    GtkWidget *widget = GTK_WIDGET(self);
    GtkIconTheme *theme = gtk_icon_theme_get_for_display(gtk_widget_get_display(widget));
    self->icon =
        gtk_icon_theme_lookup_icon(theme, ICON_NAME, NULL, ICON_SIZE,
                                   gtk_widget_get_scale_factor(widget), GTK_TEXT_DIR_NONE, 0);
  }
  return self->icon;
}

static void
whittle_spinner_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
  WhittleSpinner *self = WHITTLE_SPINNER(widget);
  if (!self->spinning)
    return;

  GdkRGBA fg;
  gtk_style_context_get_color(gtk_widget_get_style_context(widget), &fg);
  /* foreground, error, warning, success: the icon uses the first only */
  const GdkRGBA colors[4] = {fg, fg, fg, fg};

  float w = gtk_widget_get_width(widget), h = gtk_widget_get_height(widget);
  gtk_snapshot_save(snapshot);
  gtk_snapshot_translate(snapshot, &GRAPHENE_POINT_INIT(w / 2, h / 2));
  if (animations_enabled(self)) {
    GdkFrameClock *clock = gtk_widget_get_frame_clock(widget);
    gint64 now = clock ? gdk_frame_clock_get_frame_time(clock) : g_get_monotonic_time();
    gtk_snapshot_rotate(snapshot, (float)(now % G_USEC_PER_SEC) * 360.0f / G_USEC_PER_SEC);
  }
  gtk_snapshot_translate(snapshot, &GRAPHENE_POINT_INIT(-ICON_SIZE / 2.0f, -ICON_SIZE / 2.0f));
  gtk_symbolic_paintable_snapshot_symbolic(GTK_SYMBOLIC_PAINTABLE(get_icon(self)), snapshot,
                                           ICON_SIZE, ICON_SIZE, colors, G_N_ELEMENTS(colors));
  gtk_snapshot_restore(snapshot);
}

static void
whittle_spinner_measure(GtkWidget *widget, GtkOrientation orientation, int for_size, int *minimum,
                        int *natural, int *minimum_baseline, int *natural_baseline)
{
  *minimum = *natural = ICON_SIZE;
}

static void
whittle_spinner_map(GtkWidget *widget)
{
  GTK_WIDGET_CLASS(whittle_spinner_parent_class)->map(widget);
  update_tick(WHITTLE_SPINNER(widget));
}

static void
whittle_spinner_unmap(GtkWidget *widget)
{
  GTK_WIDGET_CLASS(whittle_spinner_parent_class)->unmap(widget);
  update_tick(WHITTLE_SPINNER(widget));
}

static void
forget_icon(WhittleSpinner *self)
{
  g_clear_object(&self->icon);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

static void
whittle_spinner_css_changed(GtkWidget *widget, GtkCssStyleChange *change)
{
  GTK_WIDGET_CLASS(whittle_spinner_parent_class)->css_changed(widget, change);
  /* the icon theme may have changed with the style */
  forget_icon(WHITTLE_SPINNER(widget));
}

void
whittle_spinner_set_spinning(WhittleSpinner *self, gboolean spinning)
{
  g_return_if_fail(WHITTLE_IS_SPINNER(self));
  spinning = !!spinning;
  if (self->spinning == spinning)
    return;
  self->spinning = spinning;
  update_tick(self);
  gtk_widget_queue_draw(GTK_WIDGET(self));
  gtk_accessible_update_state(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_STATE_BUSY, spinning, -1);
  g_object_notify_by_pspec(G_OBJECT(self), props[PROP_SPINNING]);
}

gboolean
whittle_spinner_get_spinning(WhittleSpinner *self)
{
  g_return_val_if_fail(WHITTLE_IS_SPINNER(self), FALSE);
  return self->spinning;
}

GtkWidget *
whittle_spinner_new(void)
{
  return g_object_new(WHITTLE_TYPE_SPINNER, NULL);
}

static void
whittle_spinner_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  switch (prop_id) {
  case PROP_SPINNING:
    g_value_set_boolean(value, WHITTLE_SPINNER(object)->spinning);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void
whittle_spinner_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  switch (prop_id) {
  case PROP_SPINNING:
    whittle_spinner_set_spinning(WHITTLE_SPINNER(object), g_value_get_boolean(value));
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void
whittle_spinner_dispose(GObject *object)
{
  WhittleSpinner *self = WHITTLE_SPINNER(object);
  if (self->tick) {
    gtk_widget_remove_tick_callback(GTK_WIDGET(self), self->tick);
    self->tick = 0;
  }
  g_clear_object(&self->icon);
  G_OBJECT_CLASS(whittle_spinner_parent_class)->dispose(object);
}

static void
whittle_spinner_class_init(WhittleSpinnerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  object_class->dispose = whittle_spinner_dispose;
  object_class->get_property = whittle_spinner_get_property;
  object_class->set_property = whittle_spinner_set_property;
  widget_class->snapshot = whittle_spinner_snapshot;
  widget_class->measure = whittle_spinner_measure;
  widget_class->map = whittle_spinner_map;
  widget_class->unmap = whittle_spinner_unmap;
  widget_class->css_changed = whittle_spinner_css_changed;

  props[PROP_SPINNING] =
      g_param_spec_boolean("spinning", NULL, NULL, FALSE,
                           G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties(object_class, N_PROPS, props);

  /* Not "spinner": the theme animates that node through CSS, which is what this avoids. */
  gtk_widget_class_set_css_name(widget_class, "whittle-spinner");
  gtk_widget_class_set_accessible_role(widget_class, GTK_ACCESSIBLE_ROLE_PROGRESS_BAR);
}

static void
whittle_spinner_init(WhittleSpinner *self)
{
  g_signal_connect_swapped(self, "notify::scale-factor", G_CALLBACK(forget_icon), self);
}
