/* whittle-conversation-store.c — see whittle-conversation-store.h. */
#include "config.h"

#include <errno.h>

#include <glib/gi18n.h>
#include <json-glib/json-glib.h>
#include <sqlite3.h>

#include "whittle-conversation-store.h"

GQuark
whittle_conversation_store_error_quark(void)
{
  return g_quark_from_static_string("whittle-conversation-store-error-quark");
}

struct _WhittleConversationStore {
  GObject parent_instance;
  sqlite3 *db;
  char *path;
};

G_DEFINE_FINAL_TYPE(WhittleConversationStore, whittle_conversation_store, G_TYPE_OBJECT)

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS conversations ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  title TEXT NOT NULL DEFAULT '',"
    "  model_path TEXT,"
    "  system_prompt TEXT,"
    "  temperature REAL NOT NULL DEFAULT -1,"
    "  seed INTEGER NOT NULL DEFAULT -1,"
    "  max_tokens INTEGER NOT NULL DEFAULT 512,"
    "  top_k INTEGER NOT NULL DEFAULT 40,"
    "  top_p REAL NOT NULL DEFAULT 0.95,"
    "  min_p REAL NOT NULL DEFAULT 0.05,"
    "  repeat_penalty REAL NOT NULL DEFAULT 1,"
    "  gpu_layers INTEGER NOT NULL DEFAULT -1,"
    "  active_leaf INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS messages ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  conversation INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    "  parent INTEGER NOT NULL DEFAULT 0,"
    "  role TEXT NOT NULL,"
    "  content TEXT NOT NULL,"
    "  created INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS messages_by_parent ON messages(conversation, parent);";

/* Columns added to `conversations` after its first release: a database made before gets them
 * (with their defaults) when it is opened. */
static const struct {
  const char *name, *definition;
} added_columns[] = {
    {"top_k", "INTEGER NOT NULL DEFAULT 40"},      {"top_p", "REAL NOT NULL DEFAULT 0.95"},
    {"min_p", "REAL NOT NULL DEFAULT 0.05"},       {"repeat_penalty", "REAL NOT NULL DEFAULT 1"},
    {"gpu_layers", "INTEGER NOT NULL DEFAULT -1"},
};

static gboolean
set_error(WhittleConversationStore *self, GError **error)
{
  g_set_error(error, WHITTLE_CONVERSATION_STORE_ERROR, WHITTLE_CONVERSATION_STORE_ERROR_FAILED,
              _("Could not use the conversations in “%s”: %s"), self->path,
              sqlite3_errmsg(self->db));
  return FALSE;
}

static sqlite3_stmt *
prepare(WhittleConversationStore *self, const char *sql, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  if (sqlite3_prepare_v2(self->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
    set_error(self, error);
    return NULL;
  }
  return stmt;
}

static void
bind_text_or_null(sqlite3_stmt *stmt, int i, const char *text)
{
  if (text)
    sqlite3_bind_text(stmt, i, text, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(stmt, i);
}

static char *
column_dup(sqlite3_stmt *stmt, int i)
{
  const unsigned char *t = sqlite3_column_text(stmt, i);
  return t ? g_strdup((const char *)t) : NULL;
}

/* Runs a statement that returns no rows. */
static gboolean
step_done(WhittleConversationStore *self, sqlite3_stmt *stmt, GError **error)
{
  int rc = sqlite3_step(stmt);
  gboolean ok = rc == SQLITE_DONE || rc == SQLITE_ROW;
  if (!ok)
    set_error(self, error);
  sqlite3_finalize(stmt);
  return ok;
}

static void
whittle_conversation_store_finalize(GObject *object)
{
  WhittleConversationStore *self = WHITTLE_CONVERSATION_STORE(object);
  if (self->db)
    sqlite3_close_v2(self->db);
  g_free(self->path);
  G_OBJECT_CLASS(whittle_conversation_store_parent_class)->finalize(object);
}

static void
whittle_conversation_store_class_init(WhittleConversationStoreClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = whittle_conversation_store_finalize;
}

static void
whittle_conversation_store_init(WhittleConversationStore *self)
{
  (void)self;
}

char *
whittle_conversation_store_default_path(void)
{
  return g_build_filename(g_get_user_data_dir(), "whittle", "chats.db", NULL);
}

static gboolean
add_missing_columns(WhittleConversationStore *self, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS(added_columns); i++) {
    g_autofree char *probe =
        g_strdup_printf("SELECT %s FROM conversations LIMIT 0", added_columns[i].name);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(self->db, probe, -1, &stmt, NULL) == SQLITE_OK) {
      sqlite3_finalize(stmt);
      continue;
    }
    g_autofree char *alter = g_strdup_printf("ALTER TABLE conversations ADD COLUMN %s %s",
                                             added_columns[i].name, added_columns[i].definition);
    if (sqlite3_exec(self->db, alter, NULL, NULL, NULL) != SQLITE_OK)
      return set_error(self, error);
  }
  return TRUE;
}

WhittleConversationStore *
whittle_conversation_store_new(const char *path, GError **error)
{
  g_return_val_if_fail(path != NULL, NULL);

  g_autofree char *dir = g_path_get_dirname(path);
  if (g_mkdir_with_parents(dir, 0700) != 0) {
    int saved = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved),
                _("Could not create the folder “%s” for conversations: %s"), dir,
                g_strerror(saved));
    return NULL;
  }

  g_autoptr(WhittleConversationStore) self = g_object_new(WHITTLE_TYPE_CONVERSATION_STORE, NULL);
  self->path = g_strdup(path);
  if (sqlite3_open_v2(path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
      SQLITE_OK) {
    set_error(self, error);
    return NULL;
  }
  sqlite3_busy_timeout(self->db, 2000);
  if (sqlite3_exec(self->db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;", NULL, NULL,
                   NULL) != SQLITE_OK ||
      sqlite3_exec(self->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
      !add_missing_columns(self, error)) {
    if (error && !*error)
      set_error(self, error);
    return NULL;
  }
  return g_steal_pointer(&self);
}

const char *
whittle_conversation_store_get_path(WhittleConversationStore *self)
{
  g_return_val_if_fail(WHITTLE_IS_CONVERSATION_STORE(self), NULL);
  return self->path;
}

void
whittle_conversation_free(WhittleConversation *c)
{
  if (!c)
    return;
  g_free(c->title);
  g_free(c->model_path);
  g_free(c->system_prompt);
  g_free(c);
}

void
whittle_stored_message_free(WhittleStoredMessage *m)
{
  if (!m)
    return;
  g_free(m->role);
  g_free(m->content);
  g_free(m);
}

gint64
whittle_conversation_store_create(WhittleConversationStore *self, const char *title,
                                  const char *model_path, GError **error)
{
  g_return_val_if_fail(WHITTLE_IS_CONVERSATION_STORE(self), 0);
  sqlite3_stmt *stmt = prepare(self,
                               "INSERT INTO conversations (title, model_path, created, updated) "
                               "VALUES (?1, ?2, ?3, ?3)",
                               error);
  if (!stmt)
    return 0;
  sqlite3_bind_text(stmt, 1, title ? title : "", -1, SQLITE_TRANSIENT);
  bind_text_or_null(stmt, 2, model_path);
  sqlite3_bind_int64(stmt, 3, g_get_real_time() / G_USEC_PER_SEC);
  if (!step_done(self, stmt, error))
    return 0;
  return sqlite3_last_insert_rowid(self->db);
}

#define CONVERSATION_COLUMNS                                                                       \
  "c.id, c.title, c.model_path, c.system_prompt, c.temperature, c.seed, c.max_tokens, "            \
  "c.active_leaf, c.created, c.updated, c.top_k, c.top_p, c.min_p, c.repeat_penalty, c.gpu_layers"

static WhittleConversation *
conversation_from_row(sqlite3_stmt *stmt)
{
  WhittleConversation *c = g_new0(WhittleConversation, 1);
  c->id = sqlite3_column_int64(stmt, 0);
  c->title = column_dup(stmt, 1);
  c->model_path = column_dup(stmt, 2);
  c->system_prompt = column_dup(stmt, 3);
  c->temperature = sqlite3_column_double(stmt, 4);
  c->seed = sqlite3_column_int64(stmt, 5);
  c->max_tokens = sqlite3_column_int(stmt, 6);
  c->active_leaf = sqlite3_column_int64(stmt, 7);
  c->created = sqlite3_column_int64(stmt, 8);
  c->updated = sqlite3_column_int64(stmt, 9);
  c->top_k = sqlite3_column_int(stmt, 10);
  c->top_p = sqlite3_column_double(stmt, 11);
  c->min_p = sqlite3_column_double(stmt, 12);
  c->repeat_penalty = sqlite3_column_double(stmt, 13);
  c->gpu_layers = sqlite3_column_int(stmt, 14);
  return c;
}

GPtrArray *
whittle_conversation_store_list(WhittleConversationStore *self, const char *search, GError **error)
{
  g_return_val_if_fail(WHITTLE_IS_CONVERSATION_STORE(self), NULL);
  gboolean filter = search && *search;
  sqlite3_stmt *stmt = prepare(
      self,
      filter ? "SELECT " CONVERSATION_COLUMNS " FROM conversations c WHERE instr(lower(c.title), "
               "lower(?1)) > 0 OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation = c.id "
               "AND instr(lower(m.content), lower(?1)) > 0) ORDER BY c.updated DESC, c.id DESC"
             : "SELECT " CONVERSATION_COLUMNS
               " FROM conversations c ORDER BY c.updated DESC, c.id DESC",
      error);
  if (!stmt)
    return NULL;
  if (filter)
    sqlite3_bind_text(stmt, 1, search, -1, SQLITE_TRANSIENT);
  GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)whittle_conversation_free);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
    g_ptr_array_add(list, conversation_from_row(stmt));
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) {
    g_ptr_array_unref(list);
    set_error(self, error);
    return NULL;
  }
  return list;
}

WhittleConversation *
whittle_conversation_store_get(WhittleConversationStore *self, gint64 id, GError **error)
{
  g_return_val_if_fail(WHITTLE_IS_CONVERSATION_STORE(self), NULL);
  sqlite3_stmt *stmt =
      prepare(self, "SELECT " CONVERSATION_COLUMNS " FROM conversations c WHERE c.id = ?1", error);
  if (!stmt)
    return NULL;
  sqlite3_bind_int64(stmt, 1, id);
  WhittleConversation *c = NULL;
  if (sqlite3_step(stmt) == SQLITE_ROW)
    c = conversation_from_row(stmt);
  else
    g_set_error(error, WHITTLE_CONVERSATION_STORE_ERROR, WHITTLE_CONVERSATION_STORE_ERROR_NOT_FOUND,
                _("There is no conversation %" G_GINT64_FORMAT " in “%s”."), id, self->path);
  sqlite3_finalize(stmt);
  return c;
}

gboolean
whittle_conversation_store_update(WhittleConversationStore *self, const WhittleConversation *c,
                                  GError **error)
{
  g_return_val_if_fail(WHITTLE_IS_CONVERSATION_STORE(self) && c, FALSE);
  sqlite3_stmt *stmt = prepare(self,
                               "UPDATE conversations SET title = ?2, model_path = ?3, "
                               "system_prompt = ?4, temperature = ?5, seed = ?6, max_tokens = ?7, "
                               "updated = ?8, top_k = ?9, top_p = ?10, min_p = ?11, "
                               "repeat_penalty = ?12, gpu_layers = ?13 WHERE id = ?1",
                               error);
  if (!stmt)
    return FALSE;
  sqlite3_bind_int64(stmt, 1, c->id);
  sqlite3_bind_text(stmt, 2, c->title ? c->title : "", -1, SQLITE_TRANSIENT);
  bind_text_or_null(stmt, 3, c->model_path);
  bind_text_or_null(stmt, 4, c->system_prompt);
  sqlite3_bind_double(stmt, 5, c->temperature);
  sqlite3_bind_int64(stmt, 6, c->seed);
  sqlite3_bind_int(stmt, 7, c->max_tokens);
  sqlite3_bind_int64(stmt, 8, g_get_real_time() / G_USEC_PER_SEC);
  sqlite3_bind_int(stmt, 9, c->top_k);
  sqlite3_bind_double(stmt, 10, c->top_p);
  sqlite3_bind_double(stmt, 11, c->min_p);
  sqlite3_bind_double(stmt, 12, c->repeat_penalty);
  sqlite3_bind_int(stmt, 13, c->gpu_layers);
  return step_done(self, stmt, error);
}

gboolean
whittle_conversation_store_delete(WhittleConversationStore *self, gint64 id, GError **error)
{
  g_return_val_if_fail(WHITTLE_IS_CONVERSATION_STORE(self), FALSE);
  sqlite3_stmt *stmt = prepare(self, "DELETE FROM conversations WHERE id = ?1", error);
  if (!stmt)
    return FALSE;
  sqlite3_bind_int64(stmt, 1, id);
  return step_done(self, stmt, error);
}

static gboolean
set_active_leaf(WhittleConversationStore *self, gint64 conversation, gint64 leaf, GError **error)
{
  sqlite3_stmt *stmt =
      prepare(self, "UPDATE conversations SET active_leaf = ?2, updated = ?3 WHERE id = ?1", error);
  if (!stmt)
    return FALSE;
  sqlite3_bind_int64(stmt, 1, conversation);
  sqlite3_bind_int64(stmt, 2, leaf);
  sqlite3_bind_int64(stmt, 3, g_get_real_time() / G_USEC_PER_SEC);
  return step_done(self, stmt, error);
}

gint64
whittle_conversation_store_add_message(WhittleConversationStore *self, gint64 conversation,
                                       gint64 parent, const char *role, const char *content,
                                       GError **error)
{
  g_return_val_if_fail(WHITTLE_IS_CONVERSATION_STORE(self) && role && content, 0);
  if (sqlite3_exec(self->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
    set_error(self, error);
    return 0;
  }
  sqlite3_stmt *stmt =
      prepare(self,
              "INSERT INTO messages (conversation, parent, role, content, created) "
              "VALUES (?1, ?2, ?3, ?4, ?5)",
              error);
  gint64 id = 0;
  if (stmt) {
    sqlite3_bind_int64(stmt, 1, conversation);
    sqlite3_bind_int64(stmt, 2, parent);
    sqlite3_bind_text(stmt, 3, role, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 4, content, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 5, g_get_real_time() / G_USEC_PER_SEC);
    if (step_done(self, stmt, error)) {
      id = sqlite3_last_insert_rowid(self->db);
      if (!set_active_leaf(self, conversation, id, error))
        id = 0;
    }
  }
  sqlite3_exec(self->db, id ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
  return id;
}

gboolean
whittle_conversation_store_set_message_text(WhittleConversationStore *self, gint64 id,
                                            const char *content, GError **error)
{
  g_return_val_if_fail(WHITTLE_IS_CONVERSATION_STORE(self) && content, FALSE);
  sqlite3_stmt *stmt = prepare(self, "UPDATE messages SET content = ?2 WHERE id = ?1", error);
  if (!stmt)
    return FALSE;
  sqlite3_bind_int64(stmt, 1, id);
  sqlite3_bind_text(stmt, 2, content, -1, SQLITE_TRANSIENT);
  return step_done(self, stmt, error);
}

/* Message @id with its branch position, or NULL. */
static WhittleStoredMessage *
get_message(WhittleConversationStore *self, gint64 id, gint64 *conversation)
{
  sqlite3_stmt *stmt =
      prepare(self,
              "SELECT m.id, m.parent, m.role, m.content, m.conversation,"
              " (SELECT count(*) FROM messages s WHERE s.conversation = m.conversation"
              "   AND s.parent = m.parent AND s.id < m.id),"
              " (SELECT count(*) FROM messages s WHERE s.conversation = m.conversation"
              "   AND s.parent = m.parent) FROM messages m WHERE m.id = ?1",
              NULL);
  if (!stmt)
    return NULL;
  sqlite3_bind_int64(stmt, 1, id);
  WhittleStoredMessage *m = NULL;
  if (sqlite3_step(stmt) == SQLITE_ROW) {
    m = g_new0(WhittleStoredMessage, 1);
    m->id = sqlite3_column_int64(stmt, 0);
    m->parent = sqlite3_column_int64(stmt, 1);
    m->role = column_dup(stmt, 2);
    m->content = column_dup(stmt, 3);
    if (conversation)
      *conversation = sqlite3_column_int64(stmt, 4);
    m->branch_index = (guint)sqlite3_column_int(stmt, 5);
    m->n_branches = (guint)sqlite3_column_int(stmt, 6);
  }
  sqlite3_finalize(stmt);
  return m;
}

GPtrArray *
whittle_conversation_store_get_branch(WhittleConversationStore *self, gint64 conversation,
                                      GError **error)
{
  g_return_val_if_fail(WHITTLE_IS_CONVERSATION_STORE(self), NULL);
  g_autoptr(WhittleConversation) c = whittle_conversation_store_get(self, conversation, error);
  if (!c)
    return NULL;
  GPtrArray *branch = g_ptr_array_new_with_free_func((GDestroyNotify)whittle_stored_message_free);
  /* Walk up from the leaf; a message's parent is always older, so this ends. */
  for (gint64 id = c->active_leaf; id != 0;) {
    WhittleStoredMessage *m = get_message(self, id, NULL);
    if (!m)
      break;
    id = m->parent;
    g_ptr_array_insert(branch, 0, m);
  }
  return branch;
}

gboolean
whittle_conversation_store_select_message(WhittleConversationStore *self, gint64 id, GError **error)
{
  g_return_val_if_fail(WHITTLE_IS_CONVERSATION_STORE(self), FALSE);
  gint64 conversation = 0;
  WhittleStoredMessage *m = get_message(self, id, &conversation);
  if (!m) {
    g_set_error(error, WHITTLE_CONVERSATION_STORE_ERROR, WHITTLE_CONVERSATION_STORE_ERROR_NOT_FOUND,
                _("There is no message %" G_GINT64_FORMAT " in “%s”."), id, self->path);
    return FALSE;
  }
  whittle_stored_message_free(m);
  /* Down to a leaf through the newest child at each step. */
  gint64 leaf = id;
  for (;;) {
    sqlite3_stmt *stmt = prepare(self,
                                 "SELECT max(id) FROM messages WHERE conversation = ?1 AND "
                                 "parent = ?2",
                                 error);
    if (!stmt)
      return FALSE;
    sqlite3_bind_int64(stmt, 1, conversation);
    sqlite3_bind_int64(stmt, 2, leaf);
    gint64 child = 0;
    if (sqlite3_step(stmt) == SQLITE_ROW)
      child = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    if (child == 0)
      break;
    leaf = child;
  }
  return set_active_leaf(self, conversation, leaf, error);
}

gint64
whittle_conversation_store_get_sibling(WhittleConversationStore *self, gint64 id, int delta)
{
  g_return_val_if_fail(WHITTLE_IS_CONVERSATION_STORE(self), 0);
  gint64 conversation = 0;
  WhittleStoredMessage *m = get_message(self, id, &conversation);
  if (!m)
    return 0;
  gint64 parent = m->parent;
  int want = (int)m->branch_index + delta;
  whittle_stored_message_free(m);
  if (want < 0)
    return 0;
  sqlite3_stmt *stmt = prepare(self,
                               "SELECT id FROM messages WHERE conversation = ?1 AND parent = ?2 "
                               "ORDER BY id LIMIT 1 OFFSET ?3",
                               NULL);
  if (!stmt)
    return 0;
  sqlite3_bind_int64(stmt, 1, conversation);
  sqlite3_bind_int64(stmt, 2, parent);
  sqlite3_bind_int(stmt, 3, want);
  gint64 sibling = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
  sqlite3_finalize(stmt);
  return sibling;
}

static char *
format_markdown(const WhittleConversation *c, const GPtrArray *branch)
{
  GString *s = g_string_new(NULL);
  g_string_append_printf(s, "# %s\n\n", c->title && *c->title ? c->title : _("Conversation"));
  if (c->model_path) {
    g_autofree char *base = g_path_get_basename(c->model_path);
    g_string_append_printf(s, "%s: `%s`\n\n", _("Model"), base);
  }
  if (c->system_prompt && *c->system_prompt)
    g_string_append_printf(s, "## %s\n\n%s\n\n", _("System"), c->system_prompt);
  for (guint i = 0; i < branch->len; i++) {
    const WhittleStoredMessage *m = branch->pdata[i];
    gboolean user = g_strcmp0(m->role, "user") == 0;
    g_string_append_printf(s, "## %s\n\n%s\n\n", user ? _("User") : _("Assistant"), m->content);
  }
  return g_string_free(s, FALSE);
}

static char *
format_json(const WhittleConversation *c, const GPtrArray *branch)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "title");
  json_builder_add_string_value(b, c->title ? c->title : "");
  json_builder_set_member_name(b, "model");
  if (c->model_path)
    json_builder_add_string_value(b, c->model_path);
  else
    json_builder_add_null_value(b);
  json_builder_set_member_name(b, "system_prompt");
  if (c->system_prompt)
    json_builder_add_string_value(b, c->system_prompt);
  else
    json_builder_add_null_value(b);
  json_builder_set_member_name(b, "messages");
  json_builder_begin_array(b);
  for (guint i = 0; i < branch->len; i++) {
    const WhittleStoredMessage *m = branch->pdata[i];
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "role");
    json_builder_add_string_value(b, m->role);
    json_builder_set_member_name(b, "content");
    json_builder_add_string_value(b, m->content);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_pretty(gen, TRUE);
  json_generator_set_root(gen, root);
  return json_generator_to_data(gen, NULL);
}

char *
whittle_conversation_store_export(WhittleConversationStore *self, gint64 conversation,
                                  gboolean json, GError **error)
{
  g_return_val_if_fail(WHITTLE_IS_CONVERSATION_STORE(self), NULL);
  g_autoptr(WhittleConversation) c = whittle_conversation_store_get(self, conversation, error);
  if (!c)
    return NULL;
  g_autoptr(GPtrArray) branch = whittle_conversation_store_get_branch(self, conversation, error);
  if (!branch)
    return NULL;
  return json ? format_json(c, branch) : format_markdown(c, branch);
}
