/* whittle-chat-page.h — the Chat page: conversations with a local model.
 *
 * Design note
 * -----------
 * Owns: the conversation store (SQLite, $XDG_DATA_HOME/whittle/chats.db), the sidebar of
 * conversations with search, the loaded model as a wh_session (loaded by a WH_JOB_LOAD job on
 * the app's queue, progress shown inline), the message list (user bubbles, assistant replies
 * rendered as Markdown while they stream), the composer (Enter sends, Shift+Enter is a new
 * line) with Send / Stop, the status line (tokens/s, why a reply ended, where the model runs:
 * the session's device note, which says when and why only the CPU is used) and the
 * context-used indicator.
 * Promises: every message is in the store as soon as it exists (a user message when sent, a
 * reply when it ends, stopped ones included), so a restart shows the same conversation; the
 * store is opened when the page is first shown or used (then the most recently updated
 * conversation is shown), so a window that never shows the page creates no database. The session's
 * history always equals the active branch of the shown conversation. Regenerating or editing a user
 * message adds a sibling in the store (a branch): both are kept and arrows switch between
 * them. Generation is a WH_JOB_GENERATE job; Stop cancels it and keeps the partial reply.
 * Per-conversation settings (system prompt, temperature, top-k, top-p, min-p, repeat penalty,
 * seed, max tokens, GPU layers) are saved with it.
 * GPU offload: before each load a thread reads the GGUF header and the devices and picks the
 * layers: the conversation's GPU layers when it sets a number, else (Automatic) the planner's
 * most layers that fit (wh_planner_compute() with WH_PLANNER_NGL_AUTO for the context length,
 * clamped to the model's, and KV type of the Preferences) on the preferred GPU (or the best
 * one), or none when the "gpu-offload" preference is off. The device goes to the session as
 * "vulkan:N" / "cuda:N". The status line and the device note say where the model runs ("24
 * of 33 layers on <GPU>", "CPU only: <why>": the preference, no GPU, no room, or the engine's
 * reason when the GPU cannot run the layers asked for). Applying other GPU layers, or showing
 * a conversation with other GPU layers, loads the model again; a new conversation keeps the
 * loaded model's.
 * Actions (group "chat"): new, send, stop, open-model, apply-settings, export(s)
 * ("markdown" / "json"), delete.
 * Does not: download models, or split a model over several GPUs.
 */
#pragma once

#include <adwaita.h>

#include "session/session.h"
#include "whittle-conversation-store.h"

G_BEGIN_DECLS

#define WHITTLE_TYPE_CHAT_PAGE (whittle_chat_page_get_type())
G_DECLARE_FINAL_TYPE(WhittleChatPage, whittle_chat_page, WHITTLE, CHAT_PAGE, AdwBin)

/* Starts loading the GGUF at @path (replacing the loaded model once it is loaded). The
 * shown conversation is kept; new conversations remember this model. */
void whittle_chat_page_open_model(WhittleChatPage *self, const char *path);
/* The model menu: lists the Library's models (a scan job on the page's own queue, not a
 * user job; also done each time the menu opens); choosing one loads it. */
void whittle_chat_page_refresh_models(WhittleChatPage *self);
gboolean whittle_chat_page_is_listing_models(WhittleChatPage *self);
guint whittle_chat_page_get_n_library_models(WhittleChatPage *self);
void whittle_chat_page_choose_library_model(WhittleChatPage *self, guint index);
/* TRUE while a model loads. */
gboolean whittle_chat_page_is_loading(WhittleChatPage *self);
/* The loaded session (NULL when none); owned by the page. */
wh_session *whittle_chat_page_get_session(WhittleChatPage *self);
/* The last load error (NULL when the last load succeeded). */
const char *whittle_chat_page_get_load_error(WhittleChatPage *self);

/* Sends @text as the user (as the composer's Send does). FALSE with a reason in the status
 * line when nothing was sent (no model, busy, empty text). */
gboolean whittle_chat_page_send(WhittleChatPage *self, const char *text);
/* TRUE while a reply is being generated. */
gboolean whittle_chat_page_is_generating(WhittleChatPage *self);
void whittle_chat_page_stop(WhittleChatPage *self);
/* Regenerates the last reply (a new branch of it). */
gboolean whittle_chat_page_regenerate(WhittleChatPage *self);
/* Replaces user message @index of the active branch with @text as a new branch, and answers
 * it. */
gboolean whittle_chat_page_edit_message(WhittleChatPage *self, guint index, const char *text);
/* Shows the branch @delta siblings away from message @index of the active branch. */
gboolean whittle_chat_page_switch_branch(WhittleChatPage *self, guint index, int delta);

/* The shown conversation (0 when none) and its active branch (owned by the page: a
 * GPtrArray of WhittleStoredMessage). */
gint64 whittle_chat_page_get_conversation(WhittleChatPage *self);
GPtrArray *whittle_chat_page_get_branch(WhittleChatPage *self);
void whittle_chat_page_select_conversation(WhittleChatPage *self, gint64 id);
void whittle_chat_page_new_conversation(WhittleChatPage *self);
/* Number of rows in the sidebar (after the search filter). */
guint whittle_chat_page_get_n_listed(WhittleChatPage *self);
void whittle_chat_page_set_search(WhittleChatPage *self, const char *text);
WhittleConversationStore *whittle_chat_page_get_store(WhittleChatPage *self);

/* Sets the shown conversation's temperature (< 0: default) and max reply tokens, saved. */
void whittle_chat_page_set_sampling(WhittleChatPage *self, double temperature, int max_tokens);
/* Puts @p (temperature, top-k, top-p, min-p, repeat penalty, seed) and @max_tokens into the
 * settings popover and applies them, as the user would; saved with the shown conversation. */
void whittle_chat_page_set_sampler(WhittleChatPage *self, const wh_sampler_params *p,
                                   int max_tokens);
/* Puts @n_layers (< 0: automatic) into the settings popover's GPU layers and applies it, as
 * the user would: saved with the shown conversation; a loaded model is loaded again with it. */
void whittle_chat_page_set_gpu_layers(WhittleChatPage *self, int n_layers);
/* Writes the shown conversation to @path ("markdown" or "json"), via a temporary file. */
gboolean whittle_chat_page_export(WhittleChatPage *self, const char *format, const char *path,
                                  GError **error);
/* The text of the reply streaming in (or of the last one), for tests. */
const char *whittle_chat_page_get_reply_text(WhittleChatPage *self);
/* The status line and the device note, for tests. */
const char *whittle_chat_page_get_status(WhittleChatPage *self);
const char *whittle_chat_page_get_device_note(WhittleChatPage *self);

G_END_DECLS
