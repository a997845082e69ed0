/* app-test-util.c — see app-test-util.h. */
#include "config.h"

#include <string.h>

#include "app-test-util.h"

static gint64 longest_iteration_us;

gboolean
wh_app_test_init_display(void)
{
  if ((!g_getenv("DISPLAY") && !g_getenv("WAYLAND_DISPLAY")) || !gtk_init_check())
    return FALSE;
  /* Screenshots in GNOME's own font when it is installed (fonts-cantarell). */
  PangoFontMap *fontmap = pango_cairo_font_map_get_default();
  PangoFontFamily **families = NULL;
  int n_families = 0;
  pango_font_map_list_families(fontmap, &families, &n_families);
  for (int i = 0; i < n_families; i++)
    if (g_ascii_strcasecmp(pango_font_family_get_name(families[i]), "Cantarell") == 0)
      g_object_set(gtk_settings_get_default(), "gtk-font-name", "Cantarell 11", NULL);
  g_free(families);
  return TRUE;
}

void
wh_app_test_isolate(const char *tmp_dir)
{
  static const struct {
    const char *var, *sub;
  } dirs[] = {{"HOME", "home"},
              {"XDG_DATA_HOME", "data"},
              {"XDG_CACHE_HOME", "cache"},
              {"XDG_CONFIG_HOME", "config"},
              {"HF_HOME", "hf"},
              {"OLLAMA_MODELS", "ollama"}};
  for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
    g_autofree char *d = g_build_filename(tmp_dir, dirs[i].sub, NULL);
    g_assert_cmpint(g_mkdir_with_parents(d, 0700), ==, 0);
    g_setenv(dirs[i].var, d, TRUE);
  }
  g_setenv("GSETTINGS_BACKEND", "memory", TRUE);
  g_setenv("WH_NO_SECRET_SERVICE", "1", TRUE);
  g_unsetenv("HF_TOKEN");
  g_unsetenv("HF_HUB_OFFLINE");
}

WhittleWindow *
wh_app_test_start(WhittleApplication **app, int width, int height)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(whittle_application_check_schema(&error));
  *app = whittle_application_new(G_APPLICATION_NON_UNIQUE);
  g_assert_true(g_application_register(G_APPLICATION(*app), NULL, &error));
  g_assert_no_error(error);
  g_application_activate(G_APPLICATION(*app));
  WhittleWindow *window = WHITTLE_WINDOW(gtk_application_get_active_window(GTK_APPLICATION(*app)));
  g_assert_nonnull(window);
  gtk_window_set_default_size(GTK_WINDOW(window), width, height);
  gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
  while (!gtk_widget_get_mapped(GTK_WIDGET(window)) && g_get_monotonic_time() < end)
    wh_app_test_settle(0.05);
  g_assert_true(gtk_widget_get_mapped(GTK_WIDGET(window)));
  wh_app_test_settle(0.3);
  return window;
}

gboolean
wh_app_test_wait(WhAppCondition cond, gpointer data, double seconds)
{
  gint64 end = g_get_monotonic_time() + (gint64)(seconds * G_USEC_PER_SEC);
  while (!cond(data)) {
    if (g_get_monotonic_time() > end)
      return FALSE;
    gint64 t0 = g_get_monotonic_time();
    gboolean busy = g_main_context_iteration(NULL, FALSE);
    longest_iteration_us = MAX(longest_iteration_us, g_get_monotonic_time() - t0);
    if (!busy)
      g_usleep(2000);
  }
  return TRUE;
}

void
wh_app_test_settle(double seconds)
{
  gint64 end = g_get_monotonic_time() + (gint64)(seconds * G_USEC_PER_SEC);
  while (g_get_monotonic_time() < end)
    if (!g_main_context_iteration(NULL, FALSE))
      g_usleep(2000);
}

gint64
wh_app_test_longest_iteration(void)
{
  return longest_iteration_us;
}

void
wh_app_test_screenshot(GtkWidget *widget, const char *name)
{
  const char *dir = g_getenv("WHITTLE_SCREENSHOT_DIR");
  g_autofree char *shots =
      dir ? g_strdup(dir) : g_build_filename(g_get_tmp_dir(), "whittle-shots", NULL);
  g_assert_cmpint(g_mkdir_with_parents(shots, 0755), ==, 0);

  wh_app_test_settle(0.3);
  int w = gtk_widget_get_width(widget), h = gtk_widget_get_height(widget);
  g_assert_cmpint(w, >, 0);
  g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new(widget);
  gtk_widget_queue_draw(widget);
  wh_app_test_settle(0.15);
  GskRenderNode *node = NULL;
  for (int tries = 0; node == NULL && tries < 20; tries++) { /* until GTK drew a frame */
    GtkSnapshot *snapshot = gtk_snapshot_new();
    gdk_paintable_snapshot(paintable, snapshot, w, h);
    node = gtk_snapshot_free_to_node(snapshot);
    if (node == NULL) {
      gtk_widget_queue_draw(widget);
      wh_app_test_settle(0.1);
    }
  }
  g_assert_nonnull(node);
  GskRenderer *renderer = gtk_native_get_renderer(gtk_widget_get_native(widget));
  g_autoptr(GdkTexture) texture =
      gsk_renderer_render_texture(renderer, node, &GRAPHENE_RECT_INIT(0, 0, w, h));
  gsk_render_node_unref(node);
  g_autofree char *file = g_strdup_printf("%s/%s.png", shots, name);
  g_assert_true(gdk_texture_save_to_png(texture, file));
  /* Not blank: many distinct colours. */
  gsize stride = (gsize)w * 4;
  g_autofree guchar *px = g_malloc(stride * h);
  gdk_texture_download(texture, px, stride);
  g_autoptr(GHashTable) colours = g_hash_table_new(g_direct_hash, g_direct_equal);
  for (gsize i = 0; i < stride * h && g_hash_table_size(colours) < 100; i += 4 * 7)
    g_hash_table_add(colours, GUINT_TO_POINTER(1 + (px[i] | px[i + 1] << 8 | px[i + 2] << 16)));
  g_test_message("screenshot %s: %u+ colours", file, g_hash_table_size(colours));
  g_assert_cmpuint(g_hash_table_size(colours), >, 32);
}

GtkWidget *
wh_app_test_find(GtkWidget *root, gboolean (*match)(GtkWidget *w, gconstpointer d),
                 gconstpointer data)
{
  if (match(root, data))
    return root;
  for (GtkWidget *c = gtk_widget_get_first_child(root); c; c = gtk_widget_get_next_sibling(c)) {
    GtkWidget *found = wh_app_test_find(c, match, data);
    if (found)
      return found;
  }
  return NULL;
}

gboolean
wh_app_test_is_type(GtkWidget *w, gconstpointer type)
{
  return G_TYPE_CHECK_INSTANCE_TYPE(w, (GType)GPOINTER_TO_SIZE(type));
}

gboolean
wh_app_test_is_button_labelled(GtkWidget *w, gconstpointer label)
{
  return GTK_IS_BUTTON(w) && g_strcmp0(gtk_button_get_label(GTK_BUTTON(w)), label) == 0;
}

/* A control's name comes from its text, its tooltip, an explicit accessible label, or (for
 * rows) their title. */
static gboolean
has_name(GtkWidget *w)
{
  if (gtk_test_accessible_has_property(GTK_ACCESSIBLE(w), GTK_ACCESSIBLE_PROPERTY_LABEL))
    return TRUE;
  if (gtk_test_accessible_has_relation(GTK_ACCESSIBLE(w), GTK_ACCESSIBLE_RELATION_LABELLED_BY))
    return TRUE;
  if (GTK_IS_BUTTON(w) && gtk_button_get_label(GTK_BUTTON(w)) &&
      !gtk_button_get_icon_name(GTK_BUTTON(w)))
    return TRUE;
  if (ADW_IS_PREFERENCES_ROW(w))
    return *adw_preferences_row_get_title(ADW_PREFERENCES_ROW(w)) != '\0';
  return FALSE;
}

guint
wh_app_test_check_accessible_names(GtkWidget *root)
{
  guint n = 0;
  for (GtkWidget *c = gtk_widget_get_first_child(root); c; c = gtk_widget_get_next_sibling(c)) {
    if (!gtk_widget_get_visible(c))
      continue;
    /* The inner parts of composite controls are covered by the control. */
    gboolean control = (GTK_IS_BUTTON(c) && !GTK_IS_MENU_BUTTON(gtk_widget_get_parent(c))) ||
                       GTK_IS_MENU_BUTTON(c) || GTK_IS_SWITCH(c) || GTK_IS_SCALE(c) ||
                       ADW_IS_COMBO_ROW(c) || ADW_IS_ENTRY_ROW(c);
    if (control) {
      if (!has_name(c))
        g_error("%s without an accessible name (in %s)", G_OBJECT_TYPE_NAME(c),
                G_OBJECT_TYPE_NAME(gtk_widget_get_parent(c)));
      n++;
    }
    if (GTK_IS_MENU_BUTTON(c) || ADW_IS_COMBO_ROW(c) || ADW_IS_ENTRY_ROW(c))
      continue;
    n += wh_app_test_check_accessible_names(c);
  }
  return n;
}

char *
wh_app_test_cli_reply(const char *cli, const char *model, const wh_chat_message *msgs, gsize n,
                      int n_predict, const char *const *args)
{
  g_autoptr(GError) error = NULL;
  wh_session_params sp = wh_session_default_params();
  g_autoptr(wh_session) s = wh_session_new(model, &sp, &error);
  g_assert_no_error(error);
  g_assert_true(wh_session_set_messages(s, msgs, n, &error));
  g_autofree char *prompt = wh_session_render_prompt(s, &error);
  g_assert_no_error(error);
  g_autofree char *n_text = g_strdup_printf("%d", n_predict);
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  const char *fixed[] = {cli, "run", "-m", model, "-n", n_text, "-p", prompt};
  for (guint i = 0; i < G_N_ELEMENTS(fixed); i++)
    g_ptr_array_add(argv, (gpointer)fixed[i]);
  for (guint i = 0; args && args[i]; i++)
    g_ptr_array_add(argv, (gpointer)args[i]);
  g_ptr_array_add(argv, NULL);
  g_autofree char *out = NULL;
  int status = 0;
  g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                             NULL, &out, NULL, &status, &error));
  g_assert_no_error(error);
  g_assert_true(g_spawn_check_wait_status(status, NULL));
  g_assert_true(g_str_has_suffix(out, "\n")); /* run's own final newline */
  out[strlen(out) - 1] = '\0';
  return g_steal_pointer(&out);
}

char *
wh_app_test_cli_greedy_reply(const char *cli, const char *model, const wh_chat_message *msgs,
                             gsize n, int n_predict)
{
  const char *greedy[] = {"--temp", "0", NULL};
  return wh_app_test_cli_reply(cli, model, msgs, n, n_predict, greedy);
}

gboolean
wh_app_test_chat_loaded(gpointer page)
{
  return !whittle_chat_page_is_loading(page) && whittle_chat_page_get_session(page) != NULL;
}

gboolean
wh_app_test_chat_idle(gpointer page)
{
  return !whittle_chat_page_is_generating(page);
}

char *
wh_app_test_cli_greedy_reply_like(const char *cli, const char *model, wh_session *session,
                                  const wh_chat_message *msgs, gsize n, int n_predict)
{
  g_autofree char *ngl = g_strdup_printf("%d", wh_session_get_n_gpu_layers_requested(session));
  const char *device = wh_context_get_params(wh_session_get_context(session))->device;
  const char *args[] = {"--temp", "0", "--ngl", ngl, "--device", device, NULL};
  return wh_app_test_cli_reply(cli, model, msgs, n, n_predict, args);
}

GtkWindow *
wh_app_test_find_toplevel(GType type)
{
  GListModel *toplevels = gtk_window_get_toplevels();
  GtkWindow *found = NULL;
  for (guint i = 0; i < g_list_model_get_n_items(toplevels); i++) {
    g_autoptr(GtkWindow) w = g_list_model_get_item(toplevels, i);
    if (G_TYPE_CHECK_INSTANCE_TYPE(w, type) && gtk_widget_get_mapped(GTK_WIDGET(w)))
      found = w; /* the toplevels list keeps it alive */
  }
  return found;
}

gboolean
wh_app_test_toplevel_shown(gpointer data)
{
  WhAppFindWindow *find = data;
  find->found = wh_app_test_find_toplevel(find->type);
  return find->found != NULL;
}

gboolean
wh_app_test_library_idle(gpointer page)
{
  return !whittle_library_page_is_scanning(page);
}

int
wh_app_test_library_find(WhittleLibraryPage *page, const char *filename)
{
  for (guint i = 0; i < whittle_library_page_get_n_models(page); i++) {
    const wh_library_entry *e = whittle_library_page_get_entry(page, i);
    if (e && g_str_has_suffix(e->paths[0], filename))
      return (int)i;
  }
  return -1;
}
