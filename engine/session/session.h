/* session.h — a multi-turn chat with one model: history, prompt, KV reuse, generation.
 *
 * Design note
 * -----------
 * Owns: a context (KV cache) on a model, the model's tokenizer, its chat template (the GGUF's
 * `tokenizer.chat_template`, or an override, falling back to the chat module's built-in
 * format), the sampling parameters, the system prompt and the message history (user and
 * assistant messages). The model is owned when the session loaded it (wh_session_new(),
 * wh_session_load_async()) and borrowed when given (wh_session_new_for_model(): the caller
 * keeps it alive until the session is freed).
 * Promises:
 *  - Every turn renders the whole conversation with the template, tokenizes it (special tokens
 *    parsed; BOS added when the vocabulary asks for it and the template did not write it), and
 *    keeps the longest common token prefix already in the KV cache (wh_context_truncate()), so
 *    only the new tokens are prefilled. The logits, hence a greedy reply, are those of a fresh
 *    context fed the whole rendered conversation (stats.reused_tokens says how many were kept).
 *  - When the template refuses a conversation (two user messages in a row for a template that
 *    wants alternating roles), runs of same-role messages are joined with a blank line; if it
 *    still refuses, that turn is rendered in the built-in format (with its stop strings).
 *  - Streaming text and stored replies are valid UTF-8: a character is never cut, and byte
 *    tokens that form no character show as U+FFFD. A stop string, or a prefix of one that later
 *    turns into a stop string, is never shown.
 *  - A reply ends at an end-of-generation token (EOS/EOT/... from the vocabulary metadata), a
 *    stop string (the caller's, plus the end-of-turn marker of a built-in format), max_tokens,
 *    or cancellation. It is stored in the history in every case; a cancelled one keeps the text
 *    generated so far and is marked WH_SESSION_STOP_CANCELLED.
 *  - Context full: before a turn, the oldest messages after the system prompt leave the prompt
 *    window (they stay in the history; the window then starts at a user message) until the
 *    prompt leaves a quarter of the context for the reply; during a reply, the cache is shifted
 *    (half of what follows the system prompt's tokens is dropped) and generation goes on.
 *  - Sampling is reproducible: reply number k since the last wh_session_set_sampler_params()
 *    (from 0) uses seed `seed + k` when it is fixed, so the first reply equals `whittle-cli run`
 *    with the same seed on the same rendered prompt.
 * Does not: store conversations (the app keeps them, with branches, in SQLite, and restores a
 * branch with wh_session_set_messages()), render Markdown, or choose how many layers go to a
 * GPU (the planner does; the session passes the request on to the context).
 *
 * Thread-safety: a session belongs to one thread (the owner, usually the main thread). While a
 * generation runs (async: from wh_session_generate_async() until its done callback; sync: the
 * call itself) the functions that change the session fail with WH_SESSION_ERROR_BUSY; the
 * getters (messages, stats, counts) stay safe to call from the owner thread at any time.
 * Sessions are reference counted; a running job holds a reference, so unreffing a busy session
 * is safe (call wh_session_cancel() first if the reply is no longer wanted).
 */
#pragma once

#include <gio/gio.h>

#include "chat/chat.h"
#include "jobs/jobs.h"
#include "model/model.h"
#include "sample/sample.h"
#include "tokenizer/tokenizer.h"

G_BEGIN_DECLS

#define WH_SESSION_ERROR (wh_session_error_quark())
GQuark wh_session_error_quark(void);

typedef enum {
  WH_SESSION_ERROR_BUSY,         /* a generation is running on this session */
  WH_SESSION_ERROR_INVALID,      /* bad argument: index out of range, empty message, ... */
  WH_SESSION_ERROR_NO_PROMPT,    /* generate with no user message to answer */
  WH_SESSION_ERROR_CONTEXT_FULL, /* the last user message alone does not fit the context */
} wh_session_error_code;

typedef enum {
  WH_SESSION_ROLE_SYSTEM, /* only in wh_session_set_messages() (sets the system prompt) */
  WH_SESSION_ROLE_USER,
  WH_SESSION_ROLE_ASSISTANT,
} wh_session_role;

/* Why a reply ended. */
typedef enum {
  WH_SESSION_STOP_NONE,       /* not a generated reply (user message, restored history) */
  WH_SESSION_STOP_EOG,        /* the model emitted an end-of-generation token */
  WH_SESSION_STOP_STRING,     /* a stop string appeared (it is not part of the reply) */
  WH_SESSION_STOP_MAX_TOKENS, /* max_tokens reached */
  WH_SESSION_STOP_CANCELLED,  /* cancelled; the reply holds the text generated so far */
  WH_SESSION_STOP_ERROR,      /* the forward pass failed; the reply holds what came before */
} wh_session_stop_reason;

const char *wh_session_role_to_string(wh_session_role role);            /* "user", ... */
const char *wh_session_stop_reason_to_string(wh_session_stop_reason r); /* "eog", ... */

/* --- creation ------------------------------------------------------------------------------ */

/* Where the model runs, as the context placed it: the CPU first (the layers no GPU runs),
 * then the GPU device when layers were offloaded to it. The output layer counts as a layer. */
typedef struct {
  char name[64];        /* "CPU", "NVIDIA GeForce ...", ... */
  char kind[16];        /* "cpu", "vulkan", "cuda" */
  guint32 n_layers;     /* layers this device runs (of n_layer + 1, the output layer included) */
  guint64 weight_bytes; /* weight bytes the device holds or reads */
} wh_session_device;

#define WH_SESSION_MAX_DEVICES 8
#define WH_SESSION_NGL_ALL G_MAXINT

typedef struct {
  /* Context: n_ctx 0 = min(n_ctx_train, 4096); n_batch, kv_type, n_threads as
   * wh_context_default_params(). */
  wh_context_params context;
  /* Layers to run on a GPU, from the last one down (the output layer counts as one): 0 =
   * whatever context.n_gpu_layers says (default 0: CPU only), N > 0 = N, WH_SESSION_NGL_ALL (or
   * anything above n_layer + 1) = all. The device is context.device ("" = the first GPU,
   * "cuda" / "cuda:N" = the CUDA backend). Layers the build or the device cannot run stay on
   * the CPU, and the device note says why. Negative values are refused: "auto" is resolved by
   * the planner (wh_planner_compute() with WH_PLANNER_NGL_AUTO) before loading. */
  int n_gpu_layers;
  /* A Jinja template used instead of the GGUF's `tokenizer.chat_template`; NULL = the GGUF's.
   * Copied. */
  const char *chat_template;
  /* Built-in format when the model has no usable template: CHATML (default) or PLAIN. */
  wh_chat_format fallback;
  /* Loading (wh_session_new()): progress 0..1 and abort, as wh_model_params. The async
   * loader reports progress through its job and cancels through the job instead. */
  wh_model_progress_func progress;
  wh_model_abort_func should_continue;
  gpointer user_data;
} wh_session_params;

wh_session_params wh_session_default_params(void);

typedef struct wh_session wh_session;

/* Loads the model at @path, its tokenizer and template, and creates a context. Returns a new
 * session (one reference) or NULL with @error: the model's, tokenizer's or context's error,
 * prefixed with the file name (a missing file gives G_IO_ERROR_NOT_FOUND naming the path);
 * G_IO_ERROR_CANCELLED when should_continue said stop. */
wh_session *wh_session_new(const char *path, const wh_session_params *params, GError **error);

/* The same on a loaded @model, which the session borrows: keep it alive until the last
 * reference to the session is gone. params->progress / should_continue are unused. */
wh_session *wh_session_new_for_model(wh_model *model, const wh_session_params *params,
                                     GError **error);

/* Loads like wh_session_new() as a WH_JOB_LOAD job on @queue (progress: fraction of the
 * weights mapped and checked; cancel with wh_job_cancel()). @notify runs on the queue's main
 * context for every change of the job, the terminal one last; there (or after the job ended)
 * call wh_session_load_finish(). @params is copied. Returns a new reference to the job. */
wh_job *wh_session_load_async(const char *path, const wh_session_params *params,
                              wh_job_queue *queue, wh_job_notify_func notify, gpointer user_data);
/* The session a finished load job made (a new reference; the job gives it away once: a
 * second call returns NULL with WH_SESSION_ERROR_INVALID), or NULL with the job's error
 * (G_IO_ERROR_CANCELLED when it was cancelled). */
wh_session *wh_session_load_finish(wh_job *job, GError **error);

wh_session *wh_session_ref(wh_session *session);
void wh_session_unref(wh_session *session); /* NULL-safe */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(wh_session, wh_session_unref)

/* --- what was loaded (owner thread; pointers owned by the session) ----------------------- */

wh_model *wh_session_get_model(wh_session *session);
const wh_tokenizer *wh_session_get_tokenizer(wh_session *session);
/* The context (KV cache): for looking (tokens in the cache, memory), only while not busy. */
const wh_context *wh_session_get_context(wh_session *session);
/* The model file path (NULL for wh_session_new_for_model()) and `general.name` (or the file
 * name). */
const char *wh_session_get_model_path(wh_session *session);
const char *wh_session_get_model_name(wh_session *session);
/* The format the prompts are rendered with, and when it is a built-in fallback, why (the
 * template's error or "the model has no chat template"; NULL otherwise). Known after
 * creation (a trial render). */
wh_chat_format wh_session_get_chat_format(wh_session *session, const char **why);
/* The devices running the model; returns how many (>= 1) and points @devices at them. */
guint wh_session_get_devices(wh_session *session, const wh_session_device **devices);
/* GPU layers that were requested (at most n_layer + 1) and that actually run on the GPU. */
int wh_session_get_n_gpu_layers_requested(wh_session *session);
int wh_session_get_n_gpu_layers(wh_session *session);
/* One sentence for the user about where the model runs and, when fewer layers than requested
 * run on a GPU, why: "Running on the CPU.", "Running on the CPU: <reason>.", "20 of 33 layers
 * run on <GPU>, the rest on the CPU: <reason>.", "Running on <GPU> (all 33 layers)." */
const char *wh_session_get_device_note(wh_session *session);

/* --- conversation (owner thread) ----------------------------------------------------------- */

/* Sets (or with NULL / "" removes) the system prompt. Fails only when busy. */
gboolean wh_session_set_system_prompt(wh_session *session, const char *text, GError **error);
/* A newly allocated copy of the system prompt, or NULL when there is none. */
char *wh_session_dup_system_prompt(wh_session *session);

/* Sampling parameters for the next replies (copied). Default: wh_sampler_default_params()
 * with a seed drawn once when the session is created. */
gboolean wh_session_set_sampler_params(wh_session *session, const wh_sampler_params *params,
                                       GError **error);
void wh_session_get_sampler_params(wh_session *session, wh_sampler_params *out);

/* Appends a message (USER or ASSISTANT; copied). Two user messages in a row are allowed (the
 * template decides what that means). */
gboolean wh_session_add_message(wh_session *session, wh_session_role role, const char *text,
                                GError **error);
/* Replaces the whole history (restoring a stored conversation or switching branch). A leading
 * SYSTEM message sets the system prompt (otherwise the prompt is left as it is); SYSTEM
 * anywhere else is WH_SESSION_ERROR_INVALID. The KV cache is kept: the next turn reuses what
 * still matches. @messages may be NULL when @n is 0. */
gboolean wh_session_set_messages(wh_session *session, const wh_chat_message *messages, gsize n,
                                 GError **error);
/* Replaces the text of message @index and removes every message after it (editing a user
 * message, then generating, answers the edited text). */
gboolean wh_session_edit_message(wh_session *session, guint index, const char *text,
                                 GError **error);
/* Keeps the first @n_keep messages. */
gboolean wh_session_truncate(wh_session *session, guint n_keep, GError **error);
/* Removes the last message if it is an assistant reply, so that generating again answers the
 * same user message ("regenerate"). WH_SESSION_ERROR_NO_PROMPT when the last message is not
 * an assistant reply. */
gboolean wh_session_remove_last_reply(wh_session *session, GError **error);
/* Forgets every message (the system prompt and the KV cache stay). */
gboolean wh_session_reset(wh_session *session, GError **error);

guint wh_session_get_n_messages(wh_session *session);
/* A newly allocated copy of message @index's text (NULL when out of range); @role and @stop
 * (may be NULL) receive its role and, for replies, why it ended. */
char *wh_session_dup_message(wh_session *session, guint index, wh_session_role *role,
                             wh_session_stop_reason *stop);

/* The exact prompt text the next reply would be generated from (the rendered messages of the
 * prompt window, generation prompt added), newly allocated; NULL with @error when the window
 * cannot fit the context (WH_SESSION_ERROR_CONTEXT_FULL) or the tokenizer fails. For showing
 * and for tests. */
char *wh_session_render_prompt(wh_session *session, GError **error);

/* --- generation ---------------------------------------------------------------------------- */

typedef struct {
  /* Most tokens in the reply; <= 0 = until an end condition, at most n_ctx tokens. */
  int max_tokens;
  /* NULL-terminated stop strings, or NULL. Copied by the async call. */
  const char *const *stop;
  /* Keep generating past end-of-generation tokens (benchmarks). Default FALSE. */
  gboolean ignore_eog;
} wh_session_generate_params;

wh_session_generate_params wh_session_generate_default_params(void); /* 512 tokens, no stops */

typedef struct {
  guint32 prompt_tokens;         /* tokens of the rendered prompt window */
  guint32 reused_tokens;         /* of those, kept from the KV cache */
  guint32 prefill_tokens;        /* of those, computed now (prompt - reused) */
  guint32 generated_tokens;      /* tokens sampled into the reply (the stop token not counted) */
  guint32 dropped_messages;      /* messages left out of the prompt window because of its size */
  guint32 shifted_tokens;        /* tokens dropped from the cache by context shifts in this reply */
  double time_to_first_token_ms; /* from the start of the turn to the first sampled token */
  double prompt_seconds;         /* prefill time */
  double prompt_tokens_per_second;     /* prefill_tokens / prompt_seconds (0 if none) */
  double generation_seconds;           /* after the first token */
  double generation_tokens_per_second; /* (generated - 1) / generation_seconds (0 if < 2) */
  guint32 n_ctx_used;                  /* tokens in the cache after the reply */
  guint32 n_ctx;
  guint64 seed; /* the seed the reply was sampled with */
  wh_session_stop_reason stop_reason;
} wh_session_stats;

/* Called with each piece of reply text as it is generated (whole UTF-8 characters; may be
 * several tokens' worth when coalesced). @text is NUL-terminated and only valid during the
 * call. */
typedef void (*wh_session_text_func)(wh_session *session, const char *text, gsize len,
                                     gpointer user_data);

/* Answers the last user message, synchronously on the calling thread (@on_text, may be NULL,
 * runs there too). Once the prompt fits, the reply is appended to the history whatever the
 * outcome (cancelled and failed ones too, with what was generated). Returns TRUE when the reply
 * ended normally (EOG, stop string, max tokens); FALSE with G_IO_ERROR_CANCELLED when
 * @cancellable fired (the partial reply is kept), or with the error that stopped it
 * (WH_SESSION_ERROR_BUSY / NO_PROMPT / CONTEXT_FULL: nothing appended; a model error during
 * the reply). @stats (may be NULL) is filled as far as the turn got. */
gboolean wh_session_generate(wh_session *session, const wh_session_generate_params *params,
                             wh_session_text_func on_text, gpointer user_data,
                             GCancellable *cancellable, wh_session_stats *stats, GError **error);

/* Called once on the queue's main context when an async generation has ended (after the last
 * text piece); call wh_session_generate_finish() there. */
typedef void (*wh_session_done_func)(wh_session *session, wh_job *job, gpointer user_data);

/* The same as a WH_JOB_GENERATE job on @queue: @on_text runs on the queue's main context
 * (pieces are coalesced into one call per main-loop iteration at most), then @on_done once.
 * The session is busy from this call until just before @on_done. @params and its stop strings
 * are copied; @destroy (may be NULL) frees @user_data after @on_done. Cancel with
 * wh_job_cancel(job) or wh_session_cancel(). Returns a new reference to the job, or NULL with
 * @error (BUSY, NO_PROMPT) when nothing was started. */
wh_job *wh_session_generate_async(wh_session *session, wh_job_queue *queue,
                                  const wh_session_generate_params *params,
                                  wh_session_text_func on_text, wh_session_done_func on_done,
                                  gpointer user_data, GDestroyNotify destroy, GError **error);
/* The outcome of a generation job, as wh_session_generate() returns it. */
gboolean wh_session_generate_finish(wh_session *session, wh_job *job, wh_session_stats *stats,
                                    GError **error);

/* Regenerate: wh_session_remove_last_reply() then generate (sync / async). */
gboolean wh_session_regenerate(wh_session *session, const wh_session_generate_params *params,
                               wh_session_text_func on_text, gpointer user_data,
                               GCancellable *cancellable, wh_session_stats *stats, GError **error);
wh_job *wh_session_regenerate_async(wh_session *session, wh_job_queue *queue,
                                    const wh_session_generate_params *params,
                                    wh_session_text_func on_text, wh_session_done_func on_done,
                                    gpointer user_data, GDestroyNotify destroy, GError **error);

/* Cancels the running async generation, if any (any thread). */
void wh_session_cancel(wh_session *session);
gboolean wh_session_is_busy(wh_session *session);

/* Statistics of the last finished turn (zeros before the first). */
void wh_session_get_last_stats(wh_session *session, wh_session_stats *out);
/* Tokens in the KV cache now (updated token by token while a reply runs, for a live
 * "1.2k / 4k tokens" indicator), and its size. */
guint32 wh_session_get_n_ctx_used(wh_session *session);
guint32 wh_session_get_n_ctx(wh_session *session);
/* Tokens @text makes with this model's tokenizer (no BOS, special tokens parsed); -1 on a
 * tokenizer error. For "how full would this be" hints. */
gint wh_session_count_tokens(wh_session *session, const char *text);

G_END_DECLS
