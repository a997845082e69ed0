/* backend.h — where a forward pass runs (model-internal interface).
 *
 * Design note
 * -----------
 * A forward step of a batch is three phases over the residual stream
 * x [n_tokens, n_embd] (F32, in the context's compute block):
 *   embed   tokens -> x
 *   layers  x -> x through layers [il_begin, il_end), appending K/V to the cache
 *   output  x -> logits for the requested rows
 * A backend implements the phases for the layers it holds. The CPU backend
 * holds everything; GPU backends (Vulkan/CUDA, later) take whole layers: the
 * context asks each backend in turn for its range of layers, handing the
 * residual stream over between them. All per-step memory comes from the
 * context's planned blocks (model.h, memory rule); a backend allocates
 * nothing in a step.
 *
 * Thread-safety: called from the thread that drives the context.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct wh_context wh_context;

typedef struct {
  const gint32 *tokens; /* n_tokens ids */
  guint32 n_tokens;     /* <= n_batch */
  guint32 pos0;         /* position (= cache cell) of tokens[0] */
  guint32 first_logit;  /* logits are wanted for rows first_logit .. n_tokens-1 */
} wh_batch;

typedef struct {
  const char *name;
  void (*embed)(wh_context *ctx, const wh_batch *batch);
  void (*layers)(wh_context *ctx, const wh_batch *batch, guint32 il_begin, guint32 il_end);
  /* Writes (n_tokens - first_logit) rows of n_vocab logits to ctx->logits. */
  void (*output)(wh_context *ctx, const wh_batch *batch);
} wh_backend;

/* The CPU backend: computes from the mmap'd weights with the context's
 * thread pool. */
extern const wh_backend wh_backend_cpu;

G_END_DECLS
