/* whittle-jobs-button.c — see whittle-jobs-button.h. */
#include "config.h"

#include <glib/gi18n.h>

#include "whittle-job-row.h"
#include "whittle-jobs-button.h"
#include "whittle-spinner.h"

struct _WhittleJobsButton {
  AdwBin parent_instance;

  guint n_active;

  /* template children */
  GtkMenuButton *menu_button;
  GtkStack *indicator;
  WhittleSpinner *spinner;
  GtkLabel *count_label;
  GtkListBox *list_box;

  GPtrArray *warm_icons; /* GtkIconPaintable: keeps the icons of job rows loaded */
  guint warm_source, warm_next;

  /* The list box shows the model through a filter that lets a new item in once it is
   * "revealed": at once while the list is not on screen, else one item per frame. */
  GtkFilterListModel *shown;
  GtkCustomFilter *revealed;
  GHashTable *premade;  /* WhittleJobItem -> its WhittleJobRow, made while the item waits */
  guint reveal_tick;    /* tick callback on the list box while items wait */
  gboolean reveal_skip; /* the tick lets the first frame after the items came pass */
};

G_DEFINE_FINAL_TYPE(WhittleJobsButton, whittle_jobs_button, ADW_TYPE_BIN)

enum { PROP_0, PROP_N_ACTIVE, N_PROPS };
static GParamSpec *props[N_PROPS];

/* The icons a job row shows (whittle-job-row.c, .ui). */
static const char *const row_icons[] = {
    "folder-download-symbolic", "system-run-symbolic",           "emblem-ok-symbolic",
    "dialog-error-symbolic",    "process-stop-symbolic",         "window-close-symbolic",
    "view-refresh-symbolic",    "media-playback-pause-symbolic", "media-playback-start-symbolic",
};

/* Loads the icon of a snapshot-less paintable now (the texture is read lazily on the first
 * snapshot); the nodes are thrown away. */
static void
load_icon(GtkIconPaintable *icon)
{
  GtkSnapshot *snapshot = gtk_snapshot_new();
  gdk_paintable_snapshot(GDK_PAINTABLE(icon), GDK_SNAPSHOT(snapshot), 16, 16);
  GskRenderNode *node = gtk_snapshot_free_to_node(snapshot);
  g_clear_pointer(&node, gsk_render_node_unref);
}

/* Loads one more of the icons a job row or the busy button shows (a PNG read, or an SVG parse
 * and rasterization for the spinner: ~0.5-5 ms each) while nothing happens, so that the frame
 * which shows the first job, a new row or a finished job does not: that frame already lays out
 * and draws the whole popover. Each is looked up exactly as GTK will: a GtkImage asks for
 * g_themed_icon_new(name) (with its non-symbolic fallback) at 16 px in the widget's direction,
 * once with GTK_ICON_LOOKUP_PRELOAD and once without; the spinner's CSS image for the bare name
 * with no direction. Each combination is its own entry of the theme's cache, which hands the
 * loaded paintable to the widgets as long as we hold it. */
static gboolean
warm_next_icon(gpointer data)
{
  WhittleJobsButton *self = data;
  GtkWidget *widget = GTK_WIDGET(self);
  GtkIconTheme *theme = gtk_icon_theme_get_for_display(gtk_widget_get_display(widget));
  int scale = gtk_widget_get_scale_factor(widget);
  guint i = self->warm_next++;
  if (i == G_N_ELEMENTS(row_icons)) {
    GtkIconPaintable *icon = gtk_icon_theme_lookup_icon(theme, "process-working-symbolic", NULL, 16,
                                                        scale, GTK_TEXT_DIR_NONE, 0);
    load_icon(icon);
    g_ptr_array_add(self->warm_icons, icon);
  }
  if (i >= G_N_ELEMENTS(row_icons)) {
    self->warm_source = 0;
    return G_SOURCE_REMOVE;
  }
  g_autoptr(GIcon) gicon = g_themed_icon_new(row_icons[i]);
  const GtkIconLookupFlags flags[] = {0, GTK_ICON_LOOKUP_PRELOAD};
  for (guint k = 0; k < G_N_ELEMENTS(flags); k++) {
    GtkIconPaintable *icon = gtk_icon_theme_lookup_by_gicon(
        theme, gicon, 16, scale, gtk_widget_get_direction(widget), flags[k]);
    load_icon(icon);
    g_ptr_array_add(self->warm_icons, icon);
  }
  return G_SOURCE_CONTINUE;
}

static void
on_realize(WhittleJobsButton *self)
{
  if (self->warm_next == 0 && self->warm_source == 0)
    self->warm_source = g_idle_add_full(G_PRIORITY_LOW, warm_next_icon, self, NULL);
}

/* The row made while the item waited (see item_revealed()), else a new one. */
static GtkWidget *
create_row(gpointer item, gpointer user_data)
{
  WhittleJobsButton *self = user_data;
  gpointer row = NULL;
  if (g_hash_table_steal_extended(self->premade, item, NULL, &row)) {
    g_object_force_floating(row); /* our reference becomes the list box's */
    return row;
  }
  return whittle_job_row_new(WHITTLE_JOB_ITEM(item));
}

/* --- New rows, one per frame ------------------------------------------------------------
 *
 * Jobs often start together (a quantization and its model load, a chat's load and reply, a
 * download started while another runs). The frame that shows a new row styles, measures and
 * draws it, relayouts the popover's list and re-presents the popover (X round trips); three
 * rows at once cost that frame 10-20 ms (bench-mainloop), over the 16 ms of a frame. So while
 * the list is on screen a new item waits until a frame-clock tick lets it in, one item per
 * frame, from the top: the items of a burst enter each below the one before, so a row already
 * drawn does not move. While the popover is closed items enter at once (nothing is drawn). */

static GQuark
revealed_quark(void)
{
  return g_quark_from_static_string("whittle-jobs-button-revealed");
}

static gboolean reveal_next(GtkWidget *widget, GdkFrameClock *clock, gpointer data);

static gboolean
item_revealed(gpointer item, gpointer data)
{
  WhittleJobsButton *self = data;
  if (g_object_get_qdata(item, revealed_quark()))
    return TRUE;
  if (!gtk_widget_get_mapped(GTK_WIDGET(self->list_box))) {
    g_object_set_qdata(item, revealed_quark(), GINT_TO_POINTER(1));
    return TRUE;
  }
  /* Its row is made now, outside the frame that shows it: that frame only styles, lays out
   * and draws it. */
  if (!g_hash_table_contains(self->premade, item))
    g_hash_table_insert(self->premade, g_object_ref(item),
                        g_object_ref_sink(whittle_job_row_new(WHITTLE_JOB_ITEM(item))));
  if (self->reveal_tick == 0) {
    self->reveal_tick =
        gtk_widget_add_tick_callback(GTK_WIDGET(self->list_box), reveal_next, self, NULL);
    /* Not in the coming frame: it shows what came with the item (the busy button, the count). */
    self->reveal_skip = TRUE;
  }
  return FALSE;
}

/* Lets in the first waiting item (from the top, so each enters below the rows that came in the
 * frames before) or, with @all, every one; TRUE while more wait. */
static gboolean
reveal(WhittleJobsButton *self, gboolean all)
{
  GListModel *model = self->shown ? gtk_filter_list_model_get_model(self->shown) : NULL;
  guint n = model ? g_list_model_get_n_items(model) : 0, n_new = 0;
  gboolean more = FALSE;
  for (guint i = 0; i < n; i++) {
    g_autoptr(GObject) item = g_list_model_get_item(model, i);
    if (g_object_get_qdata(item, revealed_quark()))
      continue;
    if (n_new > 0 && !all) {
      more = TRUE;
      break;
    }
    g_object_set_qdata(item, revealed_quark(), GINT_TO_POINTER(1));
    n_new++;
  }
  if (n_new > 0)
    gtk_filter_changed(GTK_FILTER(self->revealed), GTK_FILTER_CHANGE_LESS_STRICT);
  if (!more) /* rows left are those of items removed while they waited */
    g_hash_table_remove_all(self->premade);
  return more;
}

/* Frame-clock tick (the update phase, before layout): the row enters in this very frame. */
static gboolean
reveal_next(GtkWidget *widget, GdkFrameClock *clock, gpointer data)
{
  WhittleJobsButton *self = data;
  if (self->reveal_skip) {
    self->reveal_skip = FALSE;
    return G_SOURCE_CONTINUE;
  }
  if (reveal(self, FALSE))
    return G_SOURCE_CONTINUE;
  self->reveal_tick = 0;
  return G_SOURCE_REMOVE;
}

/* The popover closed: whatever waits enters now (the list is not drawn). */
static void
on_list_unmap(WhittleJobsButton *self)
{
  if (self->reveal_tick) {
    gtk_widget_remove_tick_callback(GTK_WIDGET(self->list_box), self->reveal_tick);
    self->reveal_tick = 0;
  }
  reveal(self, TRUE);
}

void
whittle_jobs_button_set_model(WhittleJobsButton *self, GListModel *model)
{
  g_return_if_fail(WHITTLE_IS_JOBS_BUTTON(self));
  if (self->reveal_tick) {
    gtk_widget_remove_tick_callback(GTK_WIDGET(self->list_box), self->reveal_tick);
    self->reveal_tick = 0;
  }
  gtk_list_box_bind_model(self->list_box, NULL, NULL, NULL, NULL);
  g_clear_object(&self->shown);
  if (model == NULL)
    return;
  self->shown =
      gtk_filter_list_model_new(g_object_ref(model), GTK_FILTER(g_object_ref(self->revealed)));
  gtk_list_box_bind_model(self->list_box, G_LIST_MODEL(self->shown), create_row, self, NULL);
}

void
whittle_jobs_button_set_n_active(WhittleJobsButton *self, guint n_active)
{
  g_return_if_fail(WHITTLE_IS_JOBS_BUTTON(self));

  if (self->n_active == n_active)
    return;
  self->n_active = n_active;

  gboolean busy = n_active > 0;
  g_autofree char *count = g_strdup_printf("%u", n_active);
  gtk_label_set_label(self->count_label, count);
  whittle_spinner_set_spinning(self->spinner, busy);
  gtk_stack_set_visible_child_name(self->indicator, busy ? "busy" : "idle");

  g_autofree char *label = busy ? g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "Jobs, %u running",
                                                              "Jobs, %u running", n_active),
                                                  n_active)
                                : g_strdup(_("Jobs"));
  /* The tooltip stays "Jobs" (the count is on the button): GTK asks the X server where the
   * pointer is whenever a visible widget's tooltip changes, a blocking round trip in the very
   * frame a job starts or ends. Screen readers get the count. */
  gtk_accessible_update_property(GTK_ACCESSIBLE(self->menu_button), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                 label, -1);

  g_object_notify_by_pspec(G_OBJECT(self), props[PROP_N_ACTIVE]);
}

guint
whittle_jobs_button_get_n_active(WhittleJobsButton *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOBS_BUTTON(self), 0);
  return self->n_active;
}

GtkMenuButton *
whittle_jobs_button_get_menu_button(WhittleJobsButton *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOBS_BUTTON(self), NULL);
  return self->menu_button;
}

GtkListBox *
whittle_jobs_button_get_list_box(WhittleJobsButton *self)
{
  g_return_val_if_fail(WHITTLE_IS_JOBS_BUTTON(self), NULL);
  return self->list_box;
}

static void
whittle_jobs_button_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  WhittleJobsButton *self = WHITTLE_JOBS_BUTTON(object);

  switch (prop_id) {
  case PROP_N_ACTIVE:
    g_value_set_uint(value, self->n_active);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void
whittle_jobs_button_set_property(GObject *object, guint prop_id, const GValue *value,
                                 GParamSpec *pspec)
{
  WhittleJobsButton *self = WHITTLE_JOBS_BUTTON(object);

  switch (prop_id) {
  case PROP_N_ACTIVE:
    whittle_jobs_button_set_n_active(self, g_value_get_uint(value));
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void
whittle_jobs_button_dispose(GObject *object)
{
  WhittleJobsButton *self = WHITTLE_JOBS_BUTTON(object);

  if (self->list_box) {
    if (self->reveal_tick)
      gtk_widget_remove_tick_callback(GTK_WIDGET(self->list_box), self->reveal_tick);
    self->reveal_tick = 0;
    g_signal_handlers_disconnect_by_data(self->list_box, self);
    gtk_list_box_bind_model(self->list_box, NULL, NULL, NULL, NULL);
  }
  g_clear_object(&self->shown);
  g_clear_object(&self->revealed);
  g_clear_pointer(&self->premade, g_hash_table_unref);
  g_clear_handle_id(&self->warm_source, g_source_remove);
  g_clear_pointer(&self->warm_icons, g_ptr_array_unref);
  /* The menu button is both a bound template child and the AdwBin's child:
   * unparent it through AdwBin first, or AdwBin would keep a stale pointer
   * after gtk_widget_dispose_template() unparents it. */
  adw_bin_set_child(ADW_BIN(self), NULL);
  gtk_widget_dispose_template(GTK_WIDGET(self), WHITTLE_TYPE_JOBS_BUTTON);
  G_OBJECT_CLASS(whittle_jobs_button_parent_class)->dispose(object);
}

static void
whittle_jobs_button_class_init(WhittleJobsButtonClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

  object_class->dispose = whittle_jobs_button_dispose;
  object_class->get_property = whittle_jobs_button_get_property;
  object_class->set_property = whittle_jobs_button_set_property;

  props[PROP_N_ACTIVE] =
      g_param_spec_uint("n-active", NULL, NULL, 0, G_MAXUINT, 0,
                        G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties(object_class, N_PROPS, props);

  g_type_ensure(WHITTLE_TYPE_SPINNER);
  gtk_widget_class_set_template_from_resource(widget_class,
                                              "/io/github/whittle/Whittle/whittle-jobs-button.ui");
  gtk_widget_class_bind_template_child(widget_class, WhittleJobsButton, menu_button);
  gtk_widget_class_bind_template_child(widget_class, WhittleJobsButton, indicator);
  gtk_widget_class_bind_template_child(widget_class, WhittleJobsButton, spinner);
  gtk_widget_class_bind_template_child(widget_class, WhittleJobsButton, count_label);
  gtk_widget_class_bind_template_child(widget_class, WhittleJobsButton, list_box);
}

static void
whittle_jobs_button_init(WhittleJobsButton *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
  self->warm_icons = g_ptr_array_new_with_free_func(g_object_unref);
  g_signal_connect(self, "realize", G_CALLBACK(on_realize), NULL);
  self->revealed = gtk_custom_filter_new(item_revealed, self, NULL);
  self->premade = g_hash_table_new_full(NULL, NULL, g_object_unref, g_object_unref);
  g_signal_connect_swapped(self->list_box, "unmap", G_CALLBACK(on_list_unmap), self);

  GtkWidget *placeholder =
      gtk_label_new(_("Nothing is running. Downloads and quantizations will show up here."));
  gtk_label_set_wrap(GTK_LABEL(placeholder), TRUE);
  gtk_label_set_justify(GTK_LABEL(placeholder), GTK_JUSTIFY_CENTER);
  gtk_widget_set_margin_top(placeholder, 24);
  gtk_widget_set_margin_bottom(placeholder, 24);
  gtk_widget_set_margin_start(placeholder, 12);
  gtk_widget_set_margin_end(placeholder, 12);
  gtk_widget_add_css_class(placeholder, "dim-label");
  gtk_list_box_set_placeholder(self->list_box, placeholder);
}
