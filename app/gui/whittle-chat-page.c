/* whittle-chat-page.c — see whittle-chat-page.h. */
#include "config.h"

#include <glib/gi18n.h>

#include "backend/devices.h"
#include "planner/planner.h"
#include "whittle-application.h"
#include "whittle-chat-page.h"
#include "whittle-fit.h"
#include "whittle-markdown.h"

struct _WhittleChatPage {
  AdwBin parent_instance;

  WhittleConversationStore *store;
  char *store_error;
  gint64 conversation;
  GPtrArray *branch; /* WhittleStoredMessage, the active branch of `conversation` */
  double temperature;
  int max_tokens;
  int gpu_layers; /* the shown conversation's GPU layers; < 0: automatic */

  GCancellable *plan_cancellable; /* choosing GPU layers and device before a load */
  int load_gpu_layers;      /* the gpu_layers the loaded (or loading) model was planned with */
  char *loading_cpu_reason; /* why the loading model gets no GPU layer, or NULL */
  char *cpu_reason;         /* the same for the loaded one */

  wh_session *session;
  wh_job *load_job;
  char *loading_path;
  char *load_error;
  char *model_path; /* the model new conversations get: the loaded or loading one */

  wh_job *gen_job;
  wh_job_queue *scan_queue; /* the page's own: listing the Library is not a user job */
  wh_job *scan_job;         /* listing the Library's models for the model menu */
  guint n_library_models;
  GString *reply;                  /* the reply streaming in */
  WhittleMarkdownView *reply_view; /* its widget */
  gint64 reply_parent;             /* the user message it answers */
  gboolean refilling_list;

  /* template children */
  GtkSearchEntry *search_entry;
  GtkListBox *conversation_list;
  AdwButtonContent *model_button_content;
  GtkProgressBar *load_progress;
  GtkPopover *models_popover;
  GtkListBox *models_list;
  GtkLabel *context_label;
  GtkMenuButton *settings_button;
  GtkEntry *system_entry;
  GtkSpinButton *temperature_spin;
  GtkSpinButton *max_tokens_spin;
  GtkSpinButton *top_k_spin;
  GtkSpinButton *top_p_spin;
  GtkSpinButton *min_p_spin;
  GtkSpinButton *repeat_spin;
  GtkSpinButton *seed_spin;
  GtkSpinButton *gpu_layers_spin;
  GtkLabel *device_label;
  GtkStack *content_stack;
  GtkScrolledWindow *message_scroller;
  GtkListBox *message_list;
  GtkTextView *composer;
  GtkStack *send_stack;
  GtkLabel *status_label;
};

G_DEFINE_FINAL_TYPE(WhittleChatPage, whittle_chat_page, ADW_TYPE_BIN)

static void refill_conversation_list(WhittleChatPage *self);
static void rebuild_messages(WhittleChatPage *self);
static gboolean start_reply(WhittleChatPage *self);
static void ensure_store(WhittleChatPage *self);

/* --- helpers -------------------------------------------------------------------------------- */

static wh_job_queue *
job_queue(WhittleChatPage *self)
{
  GtkRoot *root = gtk_widget_get_root(GTK_WIDGET(self));
  if (!GTK_IS_WINDOW(root))
    return NULL;
  GtkApplication *app = gtk_window_get_application(GTK_WINDOW(root));
  return WHITTLE_IS_APPLICATION(app) ? whittle_application_get_job_queue(WHITTLE_APPLICATION(app))
                                     : NULL;
}

static void
set_status(WhittleChatPage *self, const char *text)
{
  gtk_label_set_label(self->status_label, text ? text : "");
}

static void
update_context_label(WhittleChatPage *self)
{
  if (!self->session) {
    gtk_label_set_label(self->context_label, "");
    return;
  }
  /* Translators: tokens of the model's context in use, e.g. “120 / 2048 tokens” */
  g_autofree char *text =
      g_strdup_printf(_("%u / %u tokens"), wh_session_get_n_ctx_used(self->session),
                      wh_session_get_n_ctx(self->session));
  gtk_label_set_label(self->context_label, text);
}

static void
update_sensitivity(WhittleChatPage *self)
{
  gboolean busy = self->gen_job != NULL;
  gtk_stack_set_visible_child_name(self->send_stack, busy ? "stop" : "send");
  gtk_widget_action_set_enabled(GTK_WIDGET(self), "chat.send", !busy);
  gtk_widget_action_set_enabled(GTK_WIDGET(self), "chat.stop", busy);
  gtk_widget_action_set_enabled(GTK_WIDGET(self), "chat.new", !busy);
  gtk_widget_action_set_enabled(GTK_WIDGET(self), "chat.open-model", !busy);
  gtk_widget_action_set_enabled(GTK_WIDGET(self), "chat.delete", !busy && self->conversation);
  gtk_widget_action_set_enabled(GTK_WIDGET(self), "chat.export", self->conversation != 0);
  gtk_widget_set_sensitive(GTK_WIDGET(self->conversation_list), !busy);
}

/* The session's history = the active branch (and the conversation's system prompt). */
static gboolean
sync_session(WhittleChatPage *self, GError **error)
{
  if (!self->session)
    return TRUE;
  g_autofree wh_chat_message *msgs = g_new0(wh_chat_message, self->branch->len + 1);
  for (guint i = 0; i < self->branch->len; i++) {
    const WhittleStoredMessage *m = self->branch->pdata[i];
    msgs[i].role = m->role;
    msgs[i].content = m->content;
  }
  g_autoptr(WhittleConversation) c =
      self->conversation && self->store
          ? whittle_conversation_store_get(self->store, self->conversation, NULL)
          : NULL;
  if (!wh_session_set_system_prompt(self->session, c ? c->system_prompt : NULL, error))
    return FALSE;
  wh_sampler_params sp;
  wh_session_get_sampler_params(self->session, &sp);
  wh_sampler_params def = wh_sampler_default_params();
  sp.temperature = self->temperature >= 0 ? (float)self->temperature : def.temperature;
  if (c) {
    sp.top_k = c->top_k;
    sp.top_p = (float)c->top_p;
    sp.min_p = (float)c->min_p;
    sp.repeat_penalty = (float)c->repeat_penalty;
    sp.seed = c->seed >= 0 ? (guint64)c->seed : def.seed;
  }
  if (!wh_session_set_sampler_params(self->session, &sp, error))
    return FALSE;
  return wh_session_set_messages(self->session, msgs, self->branch->len, error);
}

static void
reload_branch(WhittleChatPage *self)
{
  g_clear_pointer(&self->branch, g_ptr_array_unref);
  if (self->conversation && self->store)
    self->branch = whittle_conversation_store_get_branch(self->store, self->conversation, NULL);
  if (!self->branch)
    self->branch = g_ptr_array_new_with_free_func((GDestroyNotify)whittle_stored_message_free);
  g_autoptr(GError) error = NULL;
  if (!sync_session(self, &error))
    set_status(self, error->message);
  rebuild_messages(self);
}

static void
scroll_to_end(WhittleChatPage *self)
{
  GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment(self->message_scroller);
  gtk_adjustment_set_value(adj, gtk_adjustment_get_upper(adj));
}

/* --- message rows --------------------------------------------------------------------------- */

static void
on_copy_clicked(GtkButton *button, WhittleChatPage *self)
{
  (void)self;
  const char *text = g_object_get_data(G_OBJECT(button), "text");
  gdk_clipboard_set_text(gtk_widget_get_clipboard(GTK_WIDGET(button)), text ? text : "");
}

static void
on_regenerate_clicked(GtkButton *button, WhittleChatPage *self)
{
  (void)button;
  whittle_chat_page_regenerate(self);
}

static void
on_branch_clicked(GtkButton *button, WhittleChatPage *self)
{
  guint index = GPOINTER_TO_UINT(g_object_get_data(G_OBJECT(button), "index"));
  int delta = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(button), "delta"));
  whittle_chat_page_switch_branch(self, index, delta);
}

static void
on_edit_response(AdwMessageDialog *dialog, const char *response, WhittleChatPage *self)
{
  if (g_strcmp0(response, "send") != 0)
    return;
  GtkEditable *entry = GTK_EDITABLE(adw_message_dialog_get_extra_child(dialog));
  guint index = GPOINTER_TO_UINT(g_object_get_data(G_OBJECT(dialog), "index"));
  whittle_chat_page_edit_message(self, index, gtk_editable_get_text(entry));
}

static void
on_edit_clicked(GtkButton *button, WhittleChatPage *self)
{
  guint index = GPOINTER_TO_UINT(g_object_get_data(G_OBJECT(button), "index"));
  if (index >= self->branch->len)
    return;
  const WhittleStoredMessage *m = self->branch->pdata[index];
  GtkRoot *root = gtk_widget_get_root(GTK_WIDGET(self));
  GtkWidget *dialog =
      adw_message_dialog_new(GTK_IS_WINDOW(root) ? GTK_WINDOW(root) : NULL, _("Edit Message"),
                             _("The reply is generated again. The original message and its "
                               "reply are kept: the arrows under the message switch back."));
  GtkWidget *entry = gtk_entry_new();
  gtk_editable_set_text(GTK_EDITABLE(entry), m->content);
  gtk_accessible_update_property(GTK_ACCESSIBLE(entry), GTK_ACCESSIBLE_PROPERTY_LABEL, _("Message"),
                                 -1);
  adw_message_dialog_set_extra_child(ADW_MESSAGE_DIALOG(dialog), entry);
  adw_message_dialog_add_responses(ADW_MESSAGE_DIALOG(dialog), "cancel", _("_Cancel"), "send",
                                   _("_Send"), NULL);
  adw_message_dialog_set_response_appearance(ADW_MESSAGE_DIALOG(dialog), "send",
                                             ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response(ADW_MESSAGE_DIALOG(dialog), "send");
  g_object_set_data(G_OBJECT(dialog), "index", GUINT_TO_POINTER(index));
  g_signal_connect_object(dialog, "response", G_CALLBACK(on_edit_response), self, 0);
  gtk_window_present(GTK_WINDOW(dialog));
}

static GtkWidget *
small_button(WhittleChatPage *self, const char *icon, const char *tooltip, GCallback cb)
{
  GtkWidget *b = gtk_button_new_from_icon_name(icon);
  gtk_widget_set_tooltip_text(b, tooltip);
  gtk_accessible_update_property(GTK_ACCESSIBLE(b), GTK_ACCESSIBLE_PROPERTY_LABEL, tooltip, -1);
  gtk_widget_add_css_class(b, "flat");
  gtk_widget_add_css_class(b, "circular");
  g_signal_connect_object(b, "clicked", cb, self, 0);
  return b;
}

/* A row for message @index of the branch (@m), or for the streaming reply (@m NULL). Returns
 * the Markdown view of an assistant message. */
static WhittleMarkdownView *
add_message_row(WhittleChatPage *self, guint index, const WhittleStoredMessage *m)
{
  gboolean user = m && g_strcmp0(m->role, "user") == 0;
  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 3);
  gtk_widget_set_margin_top(box, 6);
  gtk_widget_set_margin_bottom(box, 6);
  WhittleMarkdownView *view = NULL;
  if (user) {
    GtkWidget *label = gtk_label_new(m->content);
    gtk_label_set_wrap(GTK_LABEL(label), TRUE);
    gtk_label_set_wrap_mode(GTK_LABEL(label), PANGO_WRAP_WORD_CHAR);
    gtk_label_set_selectable(GTK_LABEL(label), TRUE);
    gtk_label_set_xalign(GTK_LABEL(label), 0);
    GtkWidget *bubble = adw_bin_new();
    adw_bin_set_child(ADW_BIN(bubble), label);
    gtk_widget_add_css_class(bubble, "card");
    gtk_widget_add_css_class(bubble, "chat-user");
    gtk_widget_set_halign(bubble, GTK_ALIGN_END);
    gtk_widget_set_margin_start(bubble, 48);
    gtk_box_append(GTK_BOX(box), bubble);
  } else {
    view = WHITTLE_MARKDOWN_VIEW(whittle_markdown_view_new());
    whittle_markdown_view_set_markdown(view, m ? m->content : "");
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(view));
  }

  if (m) {
    GtkWidget *actions = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
    gtk_widget_set_halign(actions, user ? GTK_ALIGN_END : GTK_ALIGN_START);
    if (m->n_branches > 1) {
      GtkWidget *prev = small_button(self, "go-previous-symbolic", _("Previous Version"),
                                     G_CALLBACK(on_branch_clicked));
      GtkWidget *next =
          small_button(self, "go-next-symbolic", _("Next Version"), G_CALLBACK(on_branch_clicked));
      g_object_set_data(G_OBJECT(prev), "index", GUINT_TO_POINTER(index));
      g_object_set_data(G_OBJECT(prev), "delta", GINT_TO_POINTER(-1));
      g_object_set_data(G_OBJECT(next), "index", GUINT_TO_POINTER(index));
      g_object_set_data(G_OBJECT(next), "delta", GINT_TO_POINTER(1));
      gtk_widget_set_sensitive(prev, m->branch_index > 0);
      gtk_widget_set_sensitive(next, m->branch_index + 1 < m->n_branches);
      /* Translators: which version of a message is shown, e.g. “2/3” */
      g_autofree char *pos = g_strdup_printf(_("%u/%u"), m->branch_index + 1, m->n_branches);
      GtkWidget *pos_label = gtk_label_new(pos);
      gtk_widget_add_css_class(pos_label, "dim-label");
      gtk_widget_add_css_class(pos_label, "numeric");
      gtk_box_append(GTK_BOX(actions), prev);
      gtk_box_append(GTK_BOX(actions), pos_label);
      gtk_box_append(GTK_BOX(actions), next);
    }
    GtkWidget *copy =
        small_button(self, "edit-copy-symbolic", _("Copy"), G_CALLBACK(on_copy_clicked));
    g_object_set_data_full(G_OBJECT(copy), "text", g_strdup(m->content), g_free);
    gtk_box_append(GTK_BOX(actions), copy);
    if (user) {
      GtkWidget *edit =
          small_button(self, "document-edit-symbolic", _("Edit"), G_CALLBACK(on_edit_clicked));
      g_object_set_data(G_OBJECT(edit), "index", GUINT_TO_POINTER(index));
      gtk_box_append(GTK_BOX(actions), edit);
    } else if (index + 1 == self->branch->len) {
      gtk_box_append(GTK_BOX(actions), small_button(self, "view-refresh-symbolic", _("Regenerate"),
                                                    G_CALLBACK(on_regenerate_clicked)));
    }
    gtk_box_append(GTK_BOX(box), actions);
  }

  GtkWidget *row = gtk_list_box_row_new();
  gtk_list_box_row_set_activatable(GTK_LIST_BOX_ROW(row), FALSE);
  gtk_list_box_row_set_child(GTK_LIST_BOX_ROW(row), box);
  gtk_accessible_update_property(GTK_ACCESSIBLE(row), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                 user ? _("Your message") : _("Reply"), -1);
  gtk_list_box_append(self->message_list, row);
  return view;
}

static void
rebuild_messages(WhittleChatPage *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->message_list))))
    gtk_list_box_remove(self->message_list, child);
  self->reply_view = NULL;
  for (guint i = 0; i < self->branch->len; i++)
    add_message_row(self, i, self->branch->pdata[i]);
  gtk_stack_set_visible_child_name(self->content_stack,
                                   self->branch->len || self->gen_job ? "messages" : "empty");
  update_context_label(self);
  update_sensitivity(self);
}

/* --- conversations -------------------------------------------------------------------------- */

static void
show_conversation_settings(WhittleChatPage *self)
{
  g_autoptr(WhittleConversation) c =
      self->conversation && self->store
          ? whittle_conversation_store_get(self->store, self->conversation, NULL)
          : NULL;
  self->temperature = c ? c->temperature : -1;
  self->max_tokens = c && c->max_tokens > 0 ? c->max_tokens : 512;
  gtk_editable_set_text(GTK_EDITABLE(self->system_entry),
                        c && c->system_prompt ? c->system_prompt : "");
  gtk_spin_button_set_value(self->temperature_spin, self->temperature >= 0
                                                        ? self->temperature
                                                        : wh_sampler_default_params().temperature);
  gtk_spin_button_set_value(self->max_tokens_spin, self->max_tokens);
  wh_sampler_params def = wh_sampler_default_params();
  gtk_spin_button_set_value(self->top_k_spin, c ? c->top_k : def.top_k);
  gtk_spin_button_set_value(self->top_p_spin, c ? c->top_p : def.top_p);
  gtk_spin_button_set_value(self->min_p_spin, c ? c->min_p : def.min_p);
  gtk_spin_button_set_value(self->repeat_spin, c ? c->repeat_penalty : def.repeat_penalty);
  gtk_spin_button_set_value(self->seed_spin, c ? (double)c->seed : -1);
  /* A new conversation goes on with the loaded model as it is loaded. */
  self->gpu_layers = c                                                     ? c->gpu_layers
                     : self->session || whittle_chat_page_is_loading(self) ? self->load_gpu_layers
                                                                           : -1;
  gtk_spin_button_set_value(self->gpu_layers_spin, self->gpu_layers < 0 ? -1 : self->gpu_layers);
}

/* The settings popover's values (system prompt and sampling) into @c. */
static void
settings_from_ui(WhittleChatPage *self, WhittleConversation *c)
{
  const char *sys = gtk_editable_get_text(GTK_EDITABLE(self->system_entry));
  g_free(c->system_prompt);
  c->system_prompt = *sys ? g_strdup(sys) : NULL;
  c->top_k = gtk_spin_button_get_value_as_int(self->top_k_spin);
  c->top_p = gtk_spin_button_get_value(self->top_p_spin);
  c->min_p = gtk_spin_button_get_value(self->min_p_spin);
  c->repeat_penalty = gtk_spin_button_get_value(self->repeat_spin);
  c->seed = (gint64)gtk_spin_button_get_value(self->seed_spin);
  c->gpu_layers = gtk_spin_button_get_value_as_int(self->gpu_layers_spin);
}

void
whittle_chat_page_select_conversation(WhittleChatPage *self, gint64 id)
{
  g_return_if_fail(WHITTLE_IS_CHAT_PAGE(self));
  ensure_store(self);
  if (self->gen_job || !self->store)
    return;
  self->conversation = id;
  show_conversation_settings(self);
  reload_branch(self);
  /* A conversation brings back its model when none is loaded or loading. */
  g_autoptr(WhittleConversation) c =
      id ? whittle_conversation_store_get(self->store, id, NULL) : NULL;
  if (c && c->model_path && !self->session && !whittle_chat_page_is_loading(self) &&
      g_file_test(c->model_path, G_FILE_TEST_IS_REGULAR)) {
    g_free(self->model_path);
    self->model_path = g_strdup(c->model_path);
    if (job_queue(self))
      whittle_chat_page_open_model(self, c->model_path);
  } else if (c && self->model_path && (self->session || whittle_chat_page_is_loading(self)) &&
             self->gpu_layers != self->load_gpu_layers) {
    /* Its own GPU layers: the model is loaded again with them. */
    whittle_chat_page_open_model(self, self->model_path);
  }
  /* Select its row without re-entering. */
  self->refilling_list = TRUE;
  GtkListBoxRow *row = NULL;
  for (int i = 0; (row = gtk_list_box_get_row_at_index(self->conversation_list, i)); i++)
    if (GPOINTER_TO_SIZE(g_object_get_data(G_OBJECT(row), "id")) == (gsize)id)
      break;
  gtk_list_box_select_row(self->conversation_list, row);
  self->refilling_list = FALSE;
}

void
whittle_chat_page_new_conversation(WhittleChatPage *self)
{
  g_return_if_fail(WHITTLE_IS_CHAT_PAGE(self));
  ensure_store(self);
  whittle_chat_page_select_conversation(self, 0);
  gtk_widget_grab_focus(GTK_WIDGET(self->composer));
}

static void
on_conversation_selected(GtkListBox *list, GtkListBoxRow *row, WhittleChatPage *self)
{
  (void)list;
  if (self->refilling_list || !row)
    return;
  gint64 id = (gint64)GPOINTER_TO_SIZE(g_object_get_data(G_OBJECT(row), "id"));
  if (id != self->conversation)
    whittle_chat_page_select_conversation(self, id);
}

static void
refill_conversation_list(WhittleChatPage *self)
{
  self->refilling_list = TRUE;
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->conversation_list))))
    gtk_list_box_remove(self->conversation_list, child);
  const char *search = gtk_editable_get_text(GTK_EDITABLE(self->search_entry));
  g_autoptr(GPtrArray) list =
      self->store ? whittle_conversation_store_list(self->store, search, NULL) : NULL;
  for (guint i = 0; list && i < list->len; i++) {
    const WhittleConversation *c = list->pdata[i];
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
    GtkWidget *title = gtk_label_new(*c->title ? c->title : _("New Chat"));
    gtk_label_set_xalign(GTK_LABEL(title), 0);
    gtk_label_set_ellipsize(GTK_LABEL(title), PANGO_ELLIPSIZE_END);
    g_autoptr(GDateTime) when = g_date_time_new_from_unix_local(c->updated);
    g_autofree char *date = when ? g_date_time_format(when, "%x %R") : g_strdup("");
    GtkWidget *sub = gtk_label_new(date);
    gtk_label_set_xalign(GTK_LABEL(sub), 0);
    gtk_widget_add_css_class(sub, "dim-label");
    gtk_widget_add_css_class(sub, "caption");
    gtk_box_append(GTK_BOX(box), title);
    gtk_box_append(GTK_BOX(box), sub);
    GtkWidget *row = gtk_list_box_row_new();
    gtk_list_box_row_set_child(GTK_LIST_BOX_ROW(row), box);
    g_object_set_data(G_OBJECT(row), "id", GSIZE_TO_POINTER((gsize)c->id));
    gtk_list_box_append(self->conversation_list, row);
    if (c->id == self->conversation)
      gtk_list_box_select_row(self->conversation_list, GTK_LIST_BOX_ROW(row));
  }
  self->refilling_list = FALSE;
}

static void
on_search_changed(GtkSearchEntry *entry, WhittleChatPage *self)
{
  (void)entry;
  refill_conversation_list(self);
}

/* --- loading -------------------------------------------------------------------------------- */

/* Where the loaded model runs, short, for the status line: "6 of 6 layers on <GPU>" or "CPU
 * only: <why>". Newly allocated. */
static char *
where_text(WhittleChatPage *self)
{
  const wh_session_device *devices = NULL;
  guint n = wh_session_get_devices(self->session, &devices);
  guint32 total = 0;
  for (guint i = 0; i < n; i++)
    total += devices[i].n_layers;
  for (guint i = 0; i < n; i++)
    if (g_strcmp0(devices[i].kind, "cpu") != 0 && devices[i].n_layers > 0)
      /* Translators: where a model runs, e.g. “24 of 33 layers on AMD Radeon RX 7600” */
      return g_strdup_printf(_("%u of %u layers on %s"), devices[i].n_layers, total,
                             devices[i].name);
  const char *why = self->cpu_reason
                        ? self->cpu_reason
                        : wh_context_get_gpu_note(wh_session_get_context(self->session));
  g_autofree char *clause = g_strdup(why ? why : "");
  g_strchomp(clause);
  if (*clause && clause[strlen(clause) - 1] == '.')
    clause[strlen(clause) - 1] = '\0';
  /* Translators: the model runs on the processor only, and why */
  return *clause ? g_strdup_printf(_("CPU only: %s"), clause) : g_strdup(_("CPU only"));
}

static void
show_device_note(WhittleChatPage *self)
{
  const char *note = self->session ? wh_session_get_device_note(self->session) : NULL;
  g_autofree char *text = NULL;
  if (note && self->cpu_reason && wh_session_get_n_gpu_layers_requested(self->session) == 0)
    /* Translators: no layer was asked for on the GPU; %s says why */
    text = g_strdup_printf(_("Running on the CPU: %s."), self->cpu_reason);
  gtk_label_set_label(self->device_label, text ? text : note ? note : "");
  gtk_widget_set_visible(GTK_WIDGET(self->device_label), note && *note);
}

static void
on_load_notify(wh_job *job, gpointer user_data)
{
  WhittleChatPage *self = user_data;
  if (job != self->load_job)
    return;
  wh_job_progress p;
  wh_job_get_progress(job, &p);
  if (!wh_job_is_finished(job)) {
    gtk_progress_bar_set_fraction(self->load_progress, p.fraction > 0 ? p.fraction : 0);
    return;
  }
  gtk_widget_set_visible(GTK_WIDGET(self->load_progress), FALSE);
  g_autoptr(GError) error = NULL;
  wh_session *session = wh_session_load_finish(job, &error);
  g_clear_pointer(&self->load_job, wh_job_unref);
  g_autofree char *path = g_steal_pointer(&self->loading_path);
  g_clear_pointer(&self->load_error, g_free);
  if (!session) {
    if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      self->load_error = g_strdup(error->message);
    g_object_set_data(G_OBJECT(self), "pending-reply", NULL);
    set_status(self, self->load_error);
    g_object_unref(self); /* the load's reference */
    return;
  }
  g_clear_pointer(&self->session, wh_session_unref);
  self->session = session;
  g_free(self->cpu_reason);
  self->cpu_reason = g_steal_pointer(&self->loading_cpu_reason);
  adw_button_content_set_label(self->model_button_content, wh_session_get_model_name(session));
  /* The GPU layers a chat can ask for: 0 .. n_layer + 1 (the output layer). */
  const wh_model_hparams *hp = wh_model_get_hparams(wh_session_get_model(session));
  gtk_adjustment_set_upper(gtk_spin_button_get_adjustment(self->gpu_layers_spin),
                           (double)hp->n_layer + 1);
  show_device_note(self);
  g_autoptr(GError) sync_error = NULL;
  if (!sync_session(self, &sync_error)) {
    set_status(self, sync_error->message);
  } else {
    g_autofree char *where = where_text(self);
    /* Translators: after loading a model: where it runs, e.g. “Ready · CPU only: …” */
    g_autofree char *status = g_strdup_printf(_("Ready · %s"), where);
    set_status(self, status);
  }
  update_context_label(self);
  /* A message sent while loading is answered now. */
  if (self->branch->len &&
      g_strcmp0(
          ((WhittleStoredMessage *)g_ptr_array_index(self->branch, self->branch->len - 1))->role,
          "user") == 0 &&
      g_object_get_data(G_OBJECT(self), "pending-reply")) {
    g_object_set_data(G_OBJECT(self), "pending-reply", NULL);
    start_reply(self);
  }
  g_object_unref(self);
}

/* Choosing the GPU layers and device before a load: in a thread, since it reads the GGUF
 * header and enumerates the devices (a Vulkan instance). */
typedef struct {
  char *path;
  WhittleFitSettings fs; /* context length, KV type, preferred GPU */
  int chat_layers;       /* the conversation's setting: < 0 automatic, else a count */
  gboolean offload_off;  /* the "gpu-offload" preference is off */
} LoadPlanArgs;

typedef struct {
  guint32 n_ctx;    /* the context length, clamped to the model's */
  int n_gpu_layers; /* for wh_session_params (0: CPU only) */
  char device[64];  /* "vulkan:N" / "cuda:N": the GPU chosen, "" when none */
  char *cpu_reason; /* why no layer goes to a GPU, or NULL */
} LoadPlan;

static void
load_plan_args_free(LoadPlanArgs *a)
{
  g_free(a->path);
  whittle_fit_settings_clear(&a->fs);
  g_free(a);
}

static void
load_plan_free(LoadPlan *p)
{
  g_free(p->cpu_reason);
  g_free(p);
}

static void
load_plan_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  (void)source, (void)cancellable;
  LoadPlanArgs *a = data;
  LoadPlan *p = g_new0(LoadPlan, 1);
  p->n_ctx = a->fs.n_ctx;
  g_autofree wh_model_hparams *hp = g_new0(wh_model_hparams, 1); /* large: not on the stack */
  wh_gguf *g = wh_gguf_open(a->path, NULL);
  gboolean have_hp = g && wh_model_hparams_from_gguf(g, hp, NULL);
  wh_gguf_close(g);
  if (!have_hp) { /* the load says what is wrong with the file */
    g_task_return_pointer(task, p, (GDestroyNotify)load_plan_free);
    return;
  }
  if (hp->n_ctx_train > 0 && p->n_ctx > hp->n_ctx_train)
    p->n_ctx = hp->n_ctx_train; /* “unless the model allows fewer” */
  if (a->chat_layers == 0) {
    p->cpu_reason = g_strdup(_("this chat’s GPU layers are set to 0"));
  } else if (a->chat_layers < 0 && a->offload_off) {
    p->cpu_reason = g_strdup(_("GPU offload is off in the Preferences"));
  } else {
    wh_device_list *devices = wh_devices_enumerate();
    const wh_device *gpu =
        a->fs.device ? wh_device_list_find_gpu(devices, a->fs.device, NULL) : NULL;
    if (!gpu) { /* no preferred GPU, or it is not there now: the best one */
      gpu = wh_device_list_find_gpu(devices, NULL, NULL);
      /* Automatic passes over a Vulkan device that runs on the processor (llvmpipe): it is
       * not faster than the CPU code. Choosing it as the preferred GPU, or asking for a number
       * of layers, uses it. */
      if (gpu && gpu->kind == WH_DEVICE_KIND_CPU_VULKAN && a->chat_layers < 0) {
        /* Translators: %s is a Vulkan device such as “llvmpipe (LLVM 15.0.6, 256 bits)” */
        p->cpu_reason = g_strdup_printf(_("the only Vulkan device, %s, runs on the processor "
                                          "and is not faster (choose it as Preferred GPU to "
                                          "use it anyway)"),
                                        gpu->name);
        gpu = NULL;
      }
    }
    if (!gpu && !p->cpu_reason) {
      p->cpu_reason = g_strdup(_("no graphics card was found"));
    } else if (gpu) {
      g_snprintf(p->device, sizeof p->device, "%s:%u",
                 gpu->api == WH_DEVICE_API_CUDA ? "cuda" : "vulkan", gpu->index);
      if (a->chat_layers > 0) {
        p->n_gpu_layers = a->chat_layers;
      } else {
        wh_planner_params pp = wh_planner_default_params();
        pp.n_ctx = p->n_ctx;
        pp.kv_type = a->fs.kv_type;
        pp.n_gpu_layers = WH_PLANNER_NGL_AUTO;
        pp.device = p->device;
        wh_plan plan;
        g_autoptr(GError) error = NULL;
        if (!wh_planner_compute(hp, devices, &pp, &plan, &error))
          p->cpu_reason = g_strdup(error->message);
        else if (plan.n_gpu_layers == 0 && plan.gpu_note[0]) /* the backend cannot run them */
          p->cpu_reason = g_strndup(plan.gpu_note, strcspn(plan.gpu_note, "\n"));
        else if (plan.n_gpu_layers == 0)
          /* Translators: %s is a graphics card */
          p->cpu_reason =
              g_strdup_printf(_("not even one layer fits in the free memory of %s"), gpu->name);
        else if (plan.gpu_note[0])
          /* the backend, not memory, stopped the planner: ask for every layer so the engine
           * holds back the same ones and its device note says why */
          p->n_gpu_layers = WH_SESSION_NGL_ALL;
        else
          p->n_gpu_layers = (int)plan.n_gpu_layers;
      }
    }
    wh_device_list_free(devices);
  }
  g_task_return_pointer(task, p, (GDestroyNotify)load_plan_free);
}

static void
on_load_planned(GObject *source, GAsyncResult *result, gpointer user_data)
{
  (void)user_data;
  WhittleChatPage *self = WHITTLE_CHAT_PAGE(source);
  g_autoptr(GError) error = NULL;
  LoadPlan *p = g_task_propagate_pointer(G_TASK(result), &error);
  if (!p) /* cancelled: another load replaced this one, or the page went away */
    return;
  g_clear_object(&self->plan_cancellable);
  wh_job_queue *queue = job_queue(self);
  GSettings *settings = NULL;
  GtkRoot *root = gtk_widget_get_root(GTK_WIDGET(self));
  GtkApplication *app = GTK_IS_WINDOW(root) ? gtk_window_get_application(GTK_WINDOW(root)) : NULL;
  if (WHITTLE_IS_APPLICATION(app))
    settings = whittle_application_get_settings(WHITTLE_APPLICATION(app));
  if (!queue || !self->loading_path) {
    load_plan_free(p);
    gtk_widget_set_visible(GTK_WIDGET(self->load_progress), FALSE);
    return;
  }
  wh_session_params params = wh_session_default_params();
  int threads = settings ? g_settings_get_int(settings, "threads") : 0;
  if (threads > 0)
    params.context.n_threads = threads;
  params.context.n_ctx = p->n_ctx;
  if (settings) {
    g_autofree char *kv = g_settings_get_string(settings, "default-kv-type");
    wh_kv_type t;
    if (wh_kv_type_from_name(kv, &t))
      params.context.kv_type = t;
  }
  params.n_gpu_layers = p->n_gpu_layers;
  g_strlcpy(params.context.device, p->device, sizeof params.context.device);
  g_free(self->loading_cpu_reason);
  self->loading_cpu_reason = g_steal_pointer(&p->cpu_reason);
  load_plan_free(p);
  self->load_job =
      wh_session_load_async(self->loading_path, &params, queue, on_load_notify, g_object_ref(self));
}

void
whittle_chat_page_open_model(WhittleChatPage *self, const char *path_in)
{
  g_return_if_fail(WHITTLE_IS_CHAT_PAGE(self) && path_in);
  g_autofree char *path = g_strdup(path_in); /* may be self->model_path, replaced below */
  wh_job_queue *queue = job_queue(self);
  if (!queue) {
    set_status(self, _("The model cannot be loaded before the window is shown."));
    return;
  }
  if (self->plan_cancellable)
    g_cancellable_cancel(self->plan_cancellable);
  g_clear_object(&self->plan_cancellable);
  if (self->load_job)
    wh_job_cancel(self->load_job);
  g_clear_pointer(&self->load_job, wh_job_unref);
  g_free(self->loading_path);
  self->loading_path = g_strdup(path);
  g_free(self->model_path);
  self->model_path = g_strdup(path);
  g_clear_pointer(&self->load_error, g_free);

  GtkRoot *root = gtk_widget_get_root(GTK_WIDGET(self));
  GtkApplication *app = gtk_window_get_application(GTK_WINDOW(root));
  GSettings *settings = whittle_application_get_settings(WHITTLE_APPLICATION(app));
  LoadPlanArgs *a = g_new0(LoadPlanArgs, 1);
  a->path = g_strdup(path);
  whittle_fit_settings_load(&a->fs, settings);
  a->chat_layers = self->gpu_layers;
  if (settings) {
    g_autofree char *mode = g_settings_get_string(settings, "gpu-offload");
    a->offload_off = g_strcmp0(mode, "off") == 0;
  }
  self->load_gpu_layers = self->gpu_layers;

  g_autofree char *base = g_path_get_basename(path);
  /* Translators: %s is a model file name */
  g_autofree char *status = g_strdup_printf(_("Loading %s…"), base);
  set_status(self, status);
  gtk_progress_bar_set_fraction(self->load_progress, 0);
  gtk_widget_set_visible(GTK_WIDGET(self->load_progress), TRUE);
  self->plan_cancellable = g_cancellable_new();
  g_autoptr(GTask) task = g_task_new(self, self->plan_cancellable, on_load_planned, NULL);
  g_task_set_task_data(task, a, (GDestroyNotify)load_plan_args_free);
  g_task_run_in_thread(task, load_plan_thread);
}

/* --- the Library's models ------------------------------------------------------------------- */

static void
on_model_row_activated(GtkListBox *list, GtkListBoxRow *row, WhittleChatPage *self)
{
  (void)list;
  const char *path = g_object_get_data(G_OBJECT(row), "path");
  gtk_popover_popdown(self->models_popover);
  if (path && !self->gen_job)
    whittle_chat_page_open_model(self, path);
}

static void
on_scan_notify(wh_job *job, gpointer user_data)
{
  WhittleChatPage *self = user_data;
  if (job != self->scan_job || !wh_job_is_finished(job))
    return;
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->models_list))))
    gtk_list_box_remove(self->models_list, child);
  self->n_library_models = 0;
  GPtrArray *entries = wh_job_get_state(job) == WH_JOB_SUCCEEDED ? wh_job_get_result(job) : NULL;
  for (guint i = 0; entries && i < entries->len; i++) {
    const wh_library_entry *e = entries->pdata[i];
    if (e->is_projector || !e->complete || e->error)
      continue;
    g_autofree char *size = g_format_size(e->size);
    /* Translators: a Library model in the Chat page's model menu: quant type · size */
    g_autofree char *sub = g_strdup_printf(_("%s · %s"), e->quant ? e->quant : "?", size);
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
    GtkWidget *title = gtk_label_new(e->name);
    GtkWidget *subtitle = gtk_label_new(sub);
    gtk_label_set_xalign(GTK_LABEL(title), 0);
    gtk_label_set_ellipsize(GTK_LABEL(title), PANGO_ELLIPSIZE_MIDDLE);
    gtk_label_set_xalign(GTK_LABEL(subtitle), 0);
    gtk_widget_add_css_class(subtitle, "dim-label");
    gtk_widget_add_css_class(subtitle, "caption");
    gtk_box_append(GTK_BOX(box), title);
    gtk_box_append(GTK_BOX(box), subtitle);
    GtkWidget *row = gtk_list_box_row_new();
    gtk_list_box_row_set_child(GTK_LIST_BOX_ROW(row), box);
    g_object_set_data_full(G_OBJECT(row), "path", g_strdup(e->paths[0]), g_free);
    gtk_list_box_append(self->models_list, row);
    self->n_library_models++;
  }
  if (self->n_library_models == 0) {
    GtkWidget *empty = gtk_label_new(_("No models in the Library yet. Download one in Browse, "
                                       "or add a folder in the Preferences."));
    gtk_label_set_wrap(GTK_LABEL(empty), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(empty), 30);
    gtk_widget_set_margin_top(empty, 12);
    gtk_widget_set_margin_bottom(empty, 12);
    gtk_list_box_append(self->models_list, empty);
  }
  g_clear_pointer(&self->scan_job, wh_job_unref);
}

void
whittle_chat_page_refresh_models(WhittleChatPage *self)
{
  g_return_if_fail(WHITTLE_IS_CHAT_PAGE(self));
  GtkRoot *root = gtk_widget_get_root(GTK_WIDGET(self));
  GtkApplication *app = GTK_IS_WINDOW(root) ? gtk_window_get_application(GTK_WINDOW(root)) : NULL;
  wh_library *lib = WHITTLE_IS_APPLICATION(app)
                        ? whittle_application_get_library(WHITTLE_APPLICATION(app))
                        : NULL;
  if (!lib || self->scan_job)
    return;
  if (!self->scan_queue)
    self->scan_queue = wh_job_queue_new(NULL, 1);
  /* No reference for the notification: the queue goes (and with it every notification)
   * when the page is disposed. */
  self->scan_job = wh_library_scan_async(lib, self->scan_queue, on_scan_notify, self);
}

gboolean
whittle_chat_page_is_listing_models(WhittleChatPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), FALSE);
  return self->scan_job != NULL;
}

guint
whittle_chat_page_get_n_library_models(WhittleChatPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), 0);
  return self->n_library_models;
}

void
whittle_chat_page_choose_library_model(WhittleChatPage *self, guint index)
{
  g_return_if_fail(WHITTLE_IS_CHAT_PAGE(self));
  GtkListBoxRow *row = gtk_list_box_get_row_at_index(self->models_list, (int)index);
  if (row && index < self->n_library_models)
    g_signal_emit_by_name(self->models_list, "row-activated", row);
}

static void
on_models_popover_show(GtkPopover *popover, WhittleChatPage *self)
{
  (void)popover;
  whittle_chat_page_refresh_models(self);
}

/* --- generation ----------------------------------------------------------------------------- */

static void
on_reply_text(wh_session *session, const char *text, gsize len, gpointer user_data)
{
  (void)session;
  WhittleChatPage *self = user_data;
  g_string_append_len(self->reply, text, (gssize)len);
  if (self->reply_view)
    whittle_markdown_view_set_markdown(self->reply_view, self->reply->str);
  scroll_to_end(self);
}

static void
on_reply_done(wh_session *session, wh_job *job, gpointer user_data)
{
  WhittleChatPage *self = user_data;
  wh_session_stats stats = {0};
  g_autoptr(GError) error = NULL;
  gboolean ok = wh_session_generate_finish(session, job, &stats, &error);
  g_clear_pointer(&self->gen_job, wh_job_unref);

  /* The session appended the reply (whatever the outcome, once the prompt fitted). */
  guint n = wh_session_get_n_messages(session);
  wh_session_role role = WH_SESSION_ROLE_USER;
  g_autofree char *text = n ? wh_session_dup_message(session, n - 1, &role, NULL) : NULL;
  if (text && role == WH_SESSION_ROLE_ASSISTANT && self->conversation) {
    g_autoptr(GError) store_error = NULL;
    if (!whittle_conversation_store_add_message(self->store, self->conversation, self->reply_parent,
                                                "assistant", text, &store_error))
      set_status(self, store_error->message);
  }
  if (ok || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    /* Translators: after a reply: tokens, speed and why it ended, e.g.
     * “24 tokens, 310.5 tokens/s (max-tokens)” */
    g_autofree char *line = g_strdup_printf(
        _("%u tokens, %.1f tokens/s (%s)"), stats.generated_tokens,
        stats.generation_tokens_per_second, wh_session_stop_reason_to_string(stats.stop_reason));
    set_status(self, line);
  } else {
    set_status(self, error->message);
  }
  reload_branch(self);
  refill_conversation_list(self);
  scroll_to_end(self);
}

/* Answers the last user message of the branch. */
static gboolean
start_reply(WhittleChatPage *self)
{
  wh_job_queue *queue = job_queue(self);
  if (!self->session || !queue)
    return FALSE;
  g_autoptr(GError) error = NULL;
  if (!sync_session(self, &error)) {
    set_status(self, error->message);
    return FALSE;
  }
  const WhittleStoredMessage *last = g_ptr_array_index(self->branch, self->branch->len - 1);
  self->reply_parent = last->id;
  g_string_truncate(self->reply, 0);
  wh_session_generate_params gp = wh_session_generate_default_params();
  gp.max_tokens = self->max_tokens;
  self->gen_job = wh_session_generate_async(self->session, queue, &gp, on_reply_text, on_reply_done,
                                            g_object_ref(self), g_object_unref, &error);
  if (!self->gen_job) {
    set_status(self, error->message);
    return FALSE;
  }
  gtk_stack_set_visible_child_name(self->content_stack, "messages");
  self->reply_view = add_message_row(self, self->branch->len, NULL);
  set_status(self, _("Generating…"));
  update_sensitivity(self);
  return TRUE;
}

/* Adds a user message under @parent (a new branch when it has children) and answers it. */
static gboolean
send_under(WhittleChatPage *self, gint64 parent, const char *text)
{
  g_autoptr(GError) error = NULL;
  if (!self->conversation) {
    /* The title: the first line of the first message, at most 60 characters. */
    g_autofree char *line = g_strndup(text, strcspn(text, "\n"));
    g_autofree char *title =
        g_utf8_strlen(line, -1) > 60 ? g_utf8_substring(line, 0, 60) : g_strdup(line);
    self->conversation =
        whittle_conversation_store_create(self->store, title, self->model_path, &error);
    if (!self->conversation) {
      set_status(self, error->message);
      return FALSE;
    }
    g_autoptr(WhittleConversation) c =
        whittle_conversation_store_get(self->store, self->conversation, NULL);
    if (c) {
      settings_from_ui(self, c);
      c->temperature = self->temperature;
      c->max_tokens = self->max_tokens;
      whittle_conversation_store_update(self->store, c, NULL);
    }
  }
  if (!whittle_conversation_store_add_message(self->store, self->conversation, parent, "user", text,
                                              &error)) {
    set_status(self, error->message);
    return FALSE;
  }
  reload_branch(self);
  refill_conversation_list(self);
  if (!self->session) {
    if (!whittle_chat_page_is_loading(self) && self->model_path)
      whittle_chat_page_open_model(self, self->model_path);
    if (whittle_chat_page_is_loading(self)) {
      g_object_set_data(G_OBJECT(self), "pending-reply", GINT_TO_POINTER(1));
      return TRUE;
    }
    set_status(self, _("Open a model to get a reply: the message is saved."));
    return FALSE;
  }
  return start_reply(self);
}

gboolean
whittle_chat_page_send(WhittleChatPage *self, const char *text)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), FALSE);
  ensure_store(self);
  if (!self->store)
    return FALSE;
  if (self->gen_job) {
    set_status(self, _("Wait for the reply, or stop it, before sending another message."));
    return FALSE;
  }
  g_autofree char *trimmed = g_strstrip(g_strdup(text ? text : ""));
  if (!*trimmed)
    return FALSE;
  if (!self->session && !whittle_chat_page_is_loading(self) && !self->model_path) {
    set_status(self, _("Open a model first: use “Open Model…” or the Library’s Chat button."));
    return FALSE;
  }
  gint64 parent = self->branch->len
                      ? ((WhittleStoredMessage *)self->branch->pdata[self->branch->len - 1])->id
                      : 0;
  return send_under(self, parent, text);
}

gboolean
whittle_chat_page_edit_message(WhittleChatPage *self, guint index, const char *text)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), FALSE);
  ensure_store(self);
  if (self->gen_job || index >= self->branch->len || !text || !*text)
    return FALSE;
  const WhittleStoredMessage *m = self->branch->pdata[index];
  if (g_strcmp0(m->role, "user") != 0)
    return FALSE;
  return send_under(self, m->parent, text);
}

gboolean
whittle_chat_page_regenerate(WhittleChatPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), FALSE);
  ensure_store(self);
  if (self->gen_job || !self->session || self->branch->len < 2)
    return FALSE;
  const WhittleStoredMessage *last = self->branch->pdata[self->branch->len - 1];
  if (g_strcmp0(last->role, "assistant") != 0)
    return FALSE;
  /* The new reply is a sibling of this one: show the branch up to its user message. */
  g_ptr_array_remove_index(self->branch, self->branch->len - 1);
  rebuild_messages(self);
  return start_reply(self);
}

gboolean
whittle_chat_page_switch_branch(WhittleChatPage *self, guint index, int delta)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), FALSE);
  ensure_store(self);
  if (self->gen_job || !self->store || index >= self->branch->len)
    return FALSE;
  const WhittleStoredMessage *m = self->branch->pdata[index];
  gint64 sibling = whittle_conversation_store_get_sibling(self->store, m->id, delta);
  if (!sibling || !whittle_conversation_store_select_message(self->store, sibling, NULL))
    return FALSE;
  reload_branch(self);
  return TRUE;
}

void
whittle_chat_page_stop(WhittleChatPage *self)
{
  g_return_if_fail(WHITTLE_IS_CHAT_PAGE(self));
  if (self->gen_job)
    wh_job_cancel(self->gen_job);
}

/* --- actions -------------------------------------------------------------------------------- */

static void
action_send(GtkWidget *widget, const char *name, GVariant *param)
{
  (void)name, (void)param;
  WhittleChatPage *self = WHITTLE_CHAT_PAGE(widget);
  GtkTextBuffer *buffer = gtk_text_view_get_buffer(self->composer);
  GtkTextIter start, end;
  gtk_text_buffer_get_bounds(buffer, &start, &end);
  g_autofree char *text = gtk_text_buffer_get_text(buffer, &start, &end, FALSE);
  if (whittle_chat_page_send(self, text))
    gtk_text_buffer_set_text(buffer, "", 0);
}

static void
action_stop(GtkWidget *widget, const char *name, GVariant *param)
{
  (void)name, (void)param;
  whittle_chat_page_stop(WHITTLE_CHAT_PAGE(widget));
}

static void
action_new(GtkWidget *widget, const char *name, GVariant *param)
{
  (void)name, (void)param;
  whittle_chat_page_new_conversation(WHITTLE_CHAT_PAGE(widget));
}

static void
on_open_response(GtkNativeDialog *dialog, int response, WhittleChatPage *self)
{
  if (response == GTK_RESPONSE_ACCEPT) {
    g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
    g_autofree char *path = file ? g_file_get_path(file) : NULL;
    if (path)
      whittle_chat_page_open_model(self, path);
  }
  g_object_unref(dialog);
}

static void
action_open_model(GtkWidget *widget, const char *name, GVariant *param)
{
  (void)name, (void)param;
  WhittleChatPage *self = WHITTLE_CHAT_PAGE(widget);
  GtkRoot *root = gtk_widget_get_root(widget);
  GtkFileChooserNative *dialog =
      gtk_file_chooser_native_new(_("Open Model"), GTK_IS_WINDOW(root) ? GTK_WINDOW(root) : NULL,
                                  GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"), _("_Cancel"));
  g_autoptr(GtkFileFilter) filter = gtk_file_filter_new();
  gtk_file_filter_set_name(filter, _("GGUF Models"));
  gtk_file_filter_add_pattern(filter, "*.gguf");
  gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(dialog), filter);
  gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(dialog), TRUE);
  g_signal_connect_object(dialog, "response", G_CALLBACK(on_open_response), self, 0);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(dialog));
}

void
whittle_chat_page_set_sampling(WhittleChatPage *self, double temperature, int max_tokens)
{
  g_return_if_fail(WHITTLE_IS_CHAT_PAGE(self));
  ensure_store(self);
  self->temperature = temperature;
  self->max_tokens = max_tokens > 0 ? max_tokens : 512;
  gtk_spin_button_set_value(self->temperature_spin, temperature >= 0
                                                        ? temperature
                                                        : wh_sampler_default_params().temperature);
  gtk_spin_button_set_value(self->max_tokens_spin, self->max_tokens);
  if (self->conversation) {
    g_autoptr(WhittleConversation) c =
        whittle_conversation_store_get(self->store, self->conversation, NULL);
    if (c) {
      c->temperature = self->temperature;
      c->max_tokens = self->max_tokens;
      whittle_conversation_store_update(self->store, c, NULL);
    }
  }
  if (!self->gen_job)
    sync_session(self, NULL);
}

static void
action_apply_settings(GtkWidget *widget, const char *name, GVariant *param)
{
  (void)name, (void)param;
  WhittleChatPage *self = WHITTLE_CHAT_PAGE(widget);
  ensure_store(self);
  if (!self->store)
    return;
  if (self->conversation) {
    g_autoptr(WhittleConversation) c =
        whittle_conversation_store_get(self->store, self->conversation, NULL);
    if (c) {
      settings_from_ui(self, c);
      whittle_conversation_store_update(self->store, c, NULL);
    }
  }
  whittle_chat_page_set_sampling(self, gtk_spin_button_get_value(self->temperature_spin),
                                 gtk_spin_button_get_value_as_int(self->max_tokens_spin));
  gtk_menu_button_popdown(self->settings_button);
  /* Other GPU layers: the model is loaded again with them. */
  self->gpu_layers = gtk_spin_button_get_value_as_int(self->gpu_layers_spin);
  if ((self->session || whittle_chat_page_is_loading(self)) && self->model_path && !self->gen_job &&
      self->gpu_layers != self->load_gpu_layers)
    whittle_chat_page_open_model(self, self->model_path);
}

void
whittle_chat_page_set_gpu_layers(WhittleChatPage *self, int n_layers)
{
  g_return_if_fail(WHITTLE_IS_CHAT_PAGE(self));
  gtk_spin_button_set_value(self->gpu_layers_spin, n_layers < 0 ? -1 : n_layers);
  gtk_widget_activate_action(GTK_WIDGET(self), "chat.apply-settings", NULL);
}

/* The GPU layers box shows “Auto” for -1 and takes it back. */
static gboolean
on_gpu_layers_output(GtkSpinButton *spin, gpointer data)
{
  (void)data;
  if (gtk_spin_button_get_value_as_int(spin) >= 0)
    return FALSE;
  /* Translators: GPU layers chosen automatically, in a narrow number box */
  gtk_editable_set_text(GTK_EDITABLE(spin), C_("gpu-layers", "Auto"));
  return TRUE;
}

static int
on_gpu_layers_input(GtkSpinButton *spin, double *value, gpointer data)
{
  (void)data;
  const char *text = gtk_editable_get_text(GTK_EDITABLE(spin));
  if (g_ascii_strcasecmp(text, "auto") != 0 && g_strcmp0(text, C_("gpu-layers", "Auto")) != 0)
    return FALSE;
  *value = -1;
  return TRUE;
}

void
whittle_chat_page_set_sampler(WhittleChatPage *self, const wh_sampler_params *p, int max_tokens)
{
  g_return_if_fail(WHITTLE_IS_CHAT_PAGE(self) && p);
  gtk_spin_button_set_value(self->temperature_spin, p->temperature);
  gtk_spin_button_set_value(self->max_tokens_spin, max_tokens);
  gtk_spin_button_set_value(self->top_k_spin, p->top_k);
  gtk_spin_button_set_value(self->top_p_spin, p->top_p);
  gtk_spin_button_set_value(self->min_p_spin, p->min_p);
  gtk_spin_button_set_value(self->repeat_spin, p->repeat_penalty);
  gtk_spin_button_set_value(self->seed_spin,
                            p->seed == WH_SAMPLER_SEED_RANDOM ? -1 : (double)p->seed);
  gtk_widget_activate_action(GTK_WIDGET(self), "chat.apply-settings", NULL);
}

gboolean
whittle_chat_page_export(WhittleChatPage *self, const char *format, const char *path,
                         GError **error)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self) && format && path, FALSE);
  ensure_store(self);
  if (!self->conversation) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                _("There is no conversation to export yet."));
    return FALSE;
  }
  gboolean json = g_strcmp0(format, "json") == 0;
  g_autofree char *text =
      whittle_conversation_store_export(self->store, self->conversation, json, error);
  /* g_file_set_contents writes a temporary file in the same folder and renames it. */
  return text && g_file_set_contents(path, text, -1, error);
}

static void
on_export_response(GtkNativeDialog *dialog, int response, WhittleChatPage *self)
{
  if (response == GTK_RESPONSE_ACCEPT) {
    g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
    g_autofree char *path = file ? g_file_get_path(file) : NULL;
    const char *format = g_object_get_data(G_OBJECT(dialog), "format");
    g_autoptr(GError) error = NULL;
    if (path && !whittle_chat_page_export(self, format, path, &error))
      set_status(self, error->message);
    else if (path)
      set_status(self, _("Conversation exported."));
  }
  g_object_unref(dialog);
}

static void
action_export(GtkWidget *widget, const char *name, GVariant *param)
{
  (void)name;
  WhittleChatPage *self = WHITTLE_CHAT_PAGE(widget);
  const char *format = g_variant_get_string(param, NULL);
  gboolean json = g_strcmp0(format, "json") == 0;
  GtkRoot *root = gtk_widget_get_root(widget);
  GtkFileChooserNative *dialog = gtk_file_chooser_native_new(
      _("Export Conversation"), GTK_IS_WINDOW(root) ? GTK_WINDOW(root) : NULL,
      GTK_FILE_CHOOSER_ACTION_SAVE, _("_Export"), _("_Cancel"));
  gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(dialog),
                                    json ? "conversation.json" : "conversation.md");
  g_object_set_data_full(G_OBJECT(dialog), "format", g_strdup(json ? "json" : "markdown"), g_free);
  gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(dialog), TRUE);
  g_signal_connect_object(dialog, "response", G_CALLBACK(on_export_response), self, 0);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(dialog));
}

static void
action_delete(GtkWidget *widget, const char *name, GVariant *param)
{
  (void)name, (void)param;
  WhittleChatPage *self = WHITTLE_CHAT_PAGE(widget);
  ensure_store(self);
  if (!self->store)
    return;
  if (!self->conversation || self->gen_job)
    return;
  g_autoptr(GError) error = NULL;
  if (!whittle_conversation_store_delete(self->store, self->conversation, &error))
    set_status(self, error->message);
  whittle_chat_page_select_conversation(self, 0);
  refill_conversation_list(self);
}

/* Enter sends, Shift+Enter inserts a new line; Escape stops a reply. */
static gboolean
on_composer_key(GtkEventControllerKey *controller, guint keyval, guint keycode,
                GdkModifierType state, WhittleChatPage *self)
{
  (void)controller, (void)keycode;
  if ((keyval == GDK_KEY_Return || keyval == GDK_KEY_KP_Enter) && !(state & GDK_SHIFT_MASK)) {
    gtk_widget_activate_action(GTK_WIDGET(self), "chat.send", NULL);
    return TRUE;
  }
  if (keyval == GDK_KEY_Escape && self->gen_job) {
    whittle_chat_page_stop(self);
    return TRUE;
  }
  return FALSE;
}

/* --- getters -------------------------------------------------------------------------------- */

gboolean
whittle_chat_page_is_loading(WhittleChatPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), FALSE);
  return self->load_job != NULL || self->plan_cancellable != NULL;
}

wh_session *
whittle_chat_page_get_session(WhittleChatPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), NULL);
  return self->session;
}

const char *
whittle_chat_page_get_load_error(WhittleChatPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), NULL);
  return self->load_error;
}

gboolean
whittle_chat_page_is_generating(WhittleChatPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), FALSE);
  return self->gen_job != NULL;
}

gint64
whittle_chat_page_get_conversation(WhittleChatPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), 0);
  ensure_store(self);
  return self->conversation;
}

GPtrArray *
whittle_chat_page_get_branch(WhittleChatPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), NULL);
  ensure_store(self);
  return self->branch;
}

guint
whittle_chat_page_get_n_listed(WhittleChatPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), 0);
  ensure_store(self);
  guint n = 0;
  while (gtk_list_box_get_row_at_index(self->conversation_list, (int)n))
    n++;
  return n;
}

void
whittle_chat_page_set_search(WhittleChatPage *self, const char *text)
{
  g_return_if_fail(WHITTLE_IS_CHAT_PAGE(self));
  ensure_store(self);
  gtk_editable_set_text(GTK_EDITABLE(self->search_entry), text ? text : "");
  refill_conversation_list(self); /* now, not after the entry's search delay */
}

WhittleConversationStore *
whittle_chat_page_get_store(WhittleChatPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), NULL);
  ensure_store(self);
  return self->store;
}

const char *
whittle_chat_page_get_reply_text(WhittleChatPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), NULL);
  return self->reply->str;
}

const char *
whittle_chat_page_get_status(WhittleChatPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), NULL);
  return gtk_label_get_label(self->status_label);
}

const char *
whittle_chat_page_get_device_note(WhittleChatPage *self)
{
  g_return_val_if_fail(WHITTLE_IS_CHAT_PAGE(self), NULL);
  return gtk_label_get_label(self->device_label);
}

/* --- life cycle ----------------------------------------------------------------------------- */

static void
whittle_chat_page_dispose(GObject *object)
{
  WhittleChatPage *self = WHITTLE_CHAT_PAGE(object);
  if (self->gen_job)
    wh_job_cancel(self->gen_job);
  g_clear_pointer(&self->gen_job, wh_job_unref);
  if (self->load_job)
    wh_job_cancel(self->load_job);
  g_clear_pointer(&self->load_job, wh_job_unref);
  if (self->plan_cancellable)
    g_cancellable_cancel(self->plan_cancellable);
  g_clear_object(&self->plan_cancellable);
  if (self->scan_job)
    wh_job_cancel(self->scan_job);
  g_clear_pointer(&self->scan_job, wh_job_unref);
  g_clear_pointer(&self->scan_queue, wh_job_queue_free); /* no notification after this */
  g_clear_pointer(&self->session, wh_session_unref);
  g_clear_object(&self->store);
  gtk_widget_dispose_template(GTK_WIDGET(object), WHITTLE_TYPE_CHAT_PAGE);
  G_OBJECT_CLASS(whittle_chat_page_parent_class)->dispose(object);
}

static void
whittle_chat_page_finalize(GObject *object)
{
  WhittleChatPage *self = WHITTLE_CHAT_PAGE(object);
  g_clear_pointer(&self->branch, g_ptr_array_unref);
  if (self->reply)
    g_string_free(self->reply, TRUE);
  g_free(self->store_error);
  g_free(self->loading_path);
  g_free(self->load_error);
  g_free(self->model_path);
  g_free(self->loading_cpu_reason);
  g_free(self->cpu_reason);
  G_OBJECT_CLASS(whittle_chat_page_parent_class)->finalize(object);
}

static void
whittle_chat_page_class_init(WhittleChatPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
  object_class->dispose = whittle_chat_page_dispose;
  object_class->finalize = whittle_chat_page_finalize;
  g_type_ensure(WHITTLE_TYPE_MARKDOWN_VIEW);
  gtk_widget_class_set_template_from_resource(widget_class,
                                              "/io/github/whittle/Whittle/whittle-chat-page.ui");
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, search_entry);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, conversation_list);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, model_button_content);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, load_progress);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, models_popover);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, models_list);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, context_label);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, settings_button);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, system_entry);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, temperature_spin);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, max_tokens_spin);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, top_k_spin);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, top_p_spin);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, min_p_spin);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, repeat_spin);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, seed_spin);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, gpu_layers_spin);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, device_label);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, content_stack);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, message_scroller);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, message_list);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, composer);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, send_stack);
  gtk_widget_class_bind_template_child(widget_class, WhittleChatPage, status_label);
  gtk_widget_class_install_action(widget_class, "chat.send", NULL, action_send);
  gtk_widget_class_install_action(widget_class, "chat.stop", NULL, action_stop);
  gtk_widget_class_install_action(widget_class, "chat.new", NULL, action_new);
  gtk_widget_class_install_action(widget_class, "chat.open-model", NULL, action_open_model);
  gtk_widget_class_install_action(widget_class, "chat.apply-settings", NULL, action_apply_settings);
  gtk_widget_class_install_action(widget_class, "chat.export", "s", action_export);
  gtk_widget_class_install_action(widget_class, "chat.delete", NULL, action_delete);
  gtk_widget_class_add_binding_action(widget_class, GDK_KEY_n, GDK_CONTROL_MASK, "chat.new", NULL);
  gtk_widget_class_add_binding_action(widget_class, GDK_KEY_Escape, 0, "chat.stop", NULL);
}

static void
whittle_chat_page_init(WhittleChatPage *self)
{
  gtk_widget_init_template(GTK_WIDGET(self));
  /* Not a bound child: the template's direct child belongs to AdwBin, which unparents it. */
  self->reply = g_string_new(NULL);
  self->temperature = -1;
  self->max_tokens = 512;
  self->gpu_layers = -1;
  self->branch = g_ptr_array_new_with_free_func((GDestroyNotify)whittle_stored_message_free);

  GtkEventController *keys = gtk_event_controller_key_new();
  g_signal_connect_object(keys, "key-pressed", G_CALLBACK(on_composer_key), self, 0);
  gtk_widget_add_controller(GTK_WIDGET(self->composer), keys);
  g_signal_connect_object(self->search_entry, "search-changed", G_CALLBACK(on_search_changed), self,
                          0);
  g_signal_connect(self->gpu_layers_spin, "output", G_CALLBACK(on_gpu_layers_output), NULL);
  g_signal_connect(self->gpu_layers_spin, "input", G_CALLBACK(on_gpu_layers_input), NULL);
  on_gpu_layers_output(self->gpu_layers_spin, NULL);
  g_signal_connect_object(self->models_popover, "show", G_CALLBACK(on_models_popover_show), self,
                          0);
  g_signal_connect_object(self->models_list, "row-activated", G_CALLBACK(on_model_row_activated),
                          self, 0);
  g_signal_connect_object(self->conversation_list, "row-selected",
                          G_CALLBACK(on_conversation_selected), self, 0);

  /* The store opens when the page is first shown or used (a window that never shows the
   * Chat page creates no database). */
  g_signal_connect(self, "map", G_CALLBACK(ensure_store), NULL);
}

/* Opens the conversation store once and shows where the user left off. */
static void
ensure_store(WhittleChatPage *self)
{
  if (self->store || self->store_error)
    return;
  g_autofree char *path = whittle_conversation_store_default_path();
  g_autoptr(GError) error = NULL;
  self->store = whittle_conversation_store_new(path, &error);
  if (!self->store) {
    self->store_error = g_strdup(error->message);
    set_status(self, error->message);
    gtk_widget_set_sensitive(GTK_WIDGET(self), FALSE);
    return;
  }
  refill_conversation_list(self);
  /* Where the user left off: the most recently updated conversation. */
  GtkListBoxRow *first = gtk_list_box_get_row_at_index(self->conversation_list, 0);
  gint64 id = first ? (gint64)GPOINTER_TO_SIZE(g_object_get_data(G_OBJECT(first), "id")) : 0;
  self->conversation = id;
  show_conversation_settings(self);
  reload_branch(self);
  /* Its model is loaded when the next message is sent (there is no window yet). */
  g_autoptr(WhittleConversation) c =
      id ? whittle_conversation_store_get(self->store, id, NULL) : NULL;
  if (c && c->model_path && g_file_test(c->model_path, G_FILE_TEST_IS_REGULAR))
    self->model_path = g_strdup(c->model_path);
}
