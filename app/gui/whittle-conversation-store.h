/* whittle-conversation-store.h — chat conversations, with branches, in SQLite.
 *
 * Design note
 * -----------
 * Owns: one SQLite connection (WAL journal, foreign keys on) to a database file, normally
 * $XDG_DATA_HOME/whittle/chats.db. Two tables: `conversations` (title, model path, system
 * prompt, sampling settings, GPU layers, the active leaf message, creation and update times)
 * and `messages` (conversation, parent message, role "user"/"assistant", text, time). The
 * messages of a conversation form a tree: editing a user message adds a sibling with the
 * same parent (a branch), and both are kept. The branch shown is the path from the root to
 * the conversation's active leaf.
 * Promises: every call is one statement or one transaction, so a crash leaves either the
 * old or the new state; the schema is created on first open (an older file gets the columns
 * added since, with their defaults); the file's folder is created.
 * Errors are WHITTLE_CONVERSATION_STORE_ERROR with SQLite's message and the file name.
 * Does not: run models, render Markdown, or know about sessions (the chat page does).
 * Thread-safety: use from one thread (the main thread).
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define WHITTLE_CONVERSATION_STORE_ERROR (whittle_conversation_store_error_quark())
GQuark whittle_conversation_store_error_quark(void);

typedef enum {
  WHITTLE_CONVERSATION_STORE_ERROR_FAILED,    /* SQLite said no (message included) */
  WHITTLE_CONVERSATION_STORE_ERROR_NOT_FOUND, /* no conversation or message with that id */
} WhittleConversationStoreError;

#define WHITTLE_TYPE_CONVERSATION_STORE (whittle_conversation_store_get_type())
G_DECLARE_FINAL_TYPE(WhittleConversationStore, whittle_conversation_store, WHITTLE,
                     CONVERSATION_STORE, GObject)

/* A conversation's settings and summary. Strings owned by the struct. */
typedef struct {
  gint64 id;
  char *title;
  char *model_path;    /* may be NULL */
  char *system_prompt; /* may be NULL */
  double temperature;  /* < 0: the session's default */
  gint64 seed;         /* < 0: random */
  int max_tokens;
  int top_k; /* sampling, as wh_sampler_params */
  double top_p, min_p, repeat_penalty;
  int gpu_layers;     /* layers on the GPU; < 0: automatic (the "gpu-offload" preference) */
  gint64 active_leaf; /* 0 when empty */
  gint64 created;     /* unix seconds */
  gint64 updated;
} WhittleConversation;

void whittle_conversation_free(WhittleConversation *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WhittleConversation, whittle_conversation_free)

/* One message. Strings owned by the struct. */
typedef struct {
  gint64 id;
  gint64 parent; /* 0 for the first message */
  char *role;    /* "user" or "assistant" */
  char *content;
  /* Branch position among the messages with the same parent: index (0-based) and count. */
  guint branch_index;
  guint n_branches;
} WhittleStoredMessage;

void whittle_stored_message_free(WhittleStoredMessage *m);

/* Opens (creating it and its folder if needed) the database at @path. */
WhittleConversationStore *whittle_conversation_store_new(const char *path, GError **error);
/* $XDG_DATA_HOME/whittle/chats.db (newly allocated). */
char *whittle_conversation_store_default_path(void);
const char *whittle_conversation_store_get_path(WhittleConversationStore *self);

/* A new empty conversation; returns its id (> 0) or 0 with @error. */
gint64 whittle_conversation_store_create(WhittleConversationStore *self, const char *title,
                                         const char *model_path, GError **error);
/* Conversations whose title or messages contain @search (NULL/"" = all), newest update
 * first: a GPtrArray of WhittleConversation (free with g_ptr_array_unref), or NULL. */
GPtrArray *whittle_conversation_store_list(WhittleConversationStore *self, const char *search,
                                           GError **error);
WhittleConversation *whittle_conversation_store_get(WhittleConversationStore *self, gint64 id,
                                                    GError **error);
/* Saves title, model path, system prompt and the sampling settings of @c. */
gboolean whittle_conversation_store_update(WhittleConversationStore *self,
                                           const WhittleConversation *c, GError **error);
gboolean whittle_conversation_store_delete(WhittleConversationStore *self, gint64 id,
                                           GError **error);

/* Adds a message under @parent (0: a first message) and makes it the active leaf. Returns
 * its id or 0 with @error. */
gint64 whittle_conversation_store_add_message(WhittleConversationStore *self, gint64 conversation,
                                              gint64 parent, const char *role, const char *content,
                                              GError **error);
gboolean whittle_conversation_store_set_message_text(WhittleConversationStore *self, gint64 id,
                                                     const char *content, GError **error);
/* The active branch, root first: a GPtrArray of WhittleStoredMessage. */
GPtrArray *whittle_conversation_store_get_branch(WhittleConversationStore *self,
                                                 gint64 conversation, GError **error);
/* Makes the branch through message @id active: its newest descendants (following the most
 * recent child at each step) down to a leaf. */
gboolean whittle_conversation_store_select_message(WhittleConversationStore *self, gint64 id,
                                                   GError **error);
/* The sibling @delta places away from message @id (same parent, in creation order), or 0. */
gint64 whittle_conversation_store_get_sibling(WhittleConversationStore *self, gint64 id, int delta);

/* The active branch as Markdown ("## User" / "## Assistant" sections) or JSON
 * ({"title", "model", "system_prompt", "messages": [{"role", "content"}]}); newly allocated. */
char *whittle_conversation_store_export(WhittleConversationStore *self, gint64 conversation,
                                        gboolean json, GError **error);

G_END_DECLS
