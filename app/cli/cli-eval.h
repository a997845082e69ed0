/* cli-eval.h — what `whittle-cli perplexity` and `whittle-cli imatrix` share: loading the
 * model, tokenizing the text with BOS, and running an eval-module call as a job with the
 * reference's per-chunk progress line ("[1]3.1234,[2]..." on stderr). Defined in
 * cli-perplexity.c.
 */
#pragma once

#include "cli-util.h"
#include "eval/eval.h"
#include "model/model.h"

G_BEGIN_DECLS

typedef struct wh_cli_eval wh_cli_eval;

/* The job body: runs the eval call with @ev's tokens and params into ev->result. */
typedef gboolean (*wh_cli_eval_func)(wh_cli_eval *ev, GError **error);

struct wh_cli_eval {
  wh_model *model;
  GArray *ids;       /* gint32 text tokens, BOS first */
  gint32 bos;        /* -1 when the model adds none */
  wh_eval_params ep; /* progress/should_continue/user_data set by wh_cli_eval_load() */
  wh_eval_result result;
  wh_cli_eval_func func;
  gpointer data; /* the command's own state */
  wh_job *job;   /* while running */
};

/* Loads @model_path with @n_threads and tokenizes @text_path into @ev (zeroed first). */
gboolean wh_cli_eval_load(wh_cli_eval *ev, const char *model_path, const char *text_path,
                          int n_threads, GError **error);
/* Prints "TITLE: N tokens, C chunks of n_ctx" on stderr and runs @ev->func as a job. */
gboolean wh_cli_eval_run(wh_cli_eval *ev, const char *title, guint32 n_ctx, GError **error);
void wh_cli_eval_clear(wh_cli_eval *ev);

G_END_DECLS
