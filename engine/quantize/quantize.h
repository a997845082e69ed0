/* quantize.h — quantizing a GGUF model file to an ftype (Q4_K_M & co.).
 *
 * Design note
 * -----------
 * Owns: the per-tensor type choice of shared/spec/ftype-mixes.md (which tensors are quantized,
 * the rules per category, user overrides, shape fallbacks), the plan that results, and the
 * streaming run that converts a model tensor by tensor through the GGUF writer.
 * Promises:
 *  - The plan is exactly the reference quantizer's choice for the same model and options (it is
 *    tested tensor by tensor against the reference files); a dry run computes it without
 *    touching the output.
 *  - Streaming: only a few megabytes of rows per worker are in memory at a time besides the
 *    mapped input; the output is written to a temporary file beside OUT and renamed into place
 *    only on success (removed on error or abort).
 *  - Writes general.file_type and general.quantization_version = 2, and the quantize.imatrix.*
 *    keys when an importance matrix is used; every other key of the input is copied unchanged
 *    (split.* keys dropped: the output is one file).
 *  - Refuses, with a reason, the low-bit ftypes without an importance matrix, requantizing
 *    without allow_requantize, types whose quantizer is not built in, and imatrix entries that
 *    do not fit their tensor — all before the output file is created.
 * Does not: implement the row quantizers (engine/quant), compute importance matrices, or run
 * on more than one file at a time.
 * Thread-safety: the functions may be called from any thread; one call uses n_threads worker
 * threads of its own. Callbacks run on the calling thread.
 */
#pragma once

#include <glib.h>

#include "gguf/gguf-types.h"

G_BEGIN_DECLS

#define WH_QUANTIZE_ERROR (wh_quantize_error_quark())
GQuark wh_quantize_error_quark(void);

typedef enum {
  WH_QUANTIZE_ERROR_INVALID,       /* bad parameters (unknown ftype, bad pattern, ...) */
  WH_QUANTIZE_ERROR_NEEDS_IMATRIX, /* the ftype or a chosen type needs an importance matrix */
  WH_QUANTIZE_ERROR_REQUANTIZE,    /* input already quantized and allow_requantize not set */
  WH_QUANTIZE_ERROR_UNSUPPORTED,   /* no quantizer / dequantizer for a type in this build */
  WH_QUANTIZE_ERROR_IMATRIX,       /* an imatrix entry does not fit its tensor */
  WH_QUANTIZE_ERROR_CANCELLED,     /* the abort callback returned TRUE */
} wh_quantize_error;

typedef struct {
  guint64 tensor_index; /* tensor being processed (0-based) */
  guint64 n_tensors;
  const char *tensor_name;
  guint64 bytes_done;  /* input tensor bytes processed so far, over all tensors */
  guint64 bytes_total; /* all input tensor bytes */
} wh_quantize_progress;

/* Called after each slice of work (several times per large tensor). */
typedef void (*wh_quantize_progress_func)(const wh_quantize_progress *progress, gpointer user_data);
/* Polled between slices of work; TRUE stops the run (error WH_QUANTIZE_ERROR_CANCELLED). */
typedef gboolean (*wh_quantize_abort_func)(gpointer user_data);

typedef struct {
  gint ftype;                      /* general.file_type id (wh_ftype_from_name("Q4_K_M")) */
  const char *imatrix_path;        /* importance matrix (GGUF or .dat), NULL for none */
  gboolean allow_requantize;       /* allow already-quantized input (via F32) */
  gboolean pure;                   /* skip the per-category rules 3-10: base type everywhere */
  wh_type output_type;             /* output.weight type, WH_TYPE_INVALID = by rule */
  wh_type token_embd_type;         /* token_embd.weight type, WH_TYPE_INVALID = by rule */
  const char *const *tensor_types; /* NULL-terminated "REGEX=TYPE" overrides, or NULL; the
                                    * first pattern found in the tensor name wins */
  guint n_threads;                 /* 0 = one per CPU */
  gboolean dry_run;                /* wh_quantize_file(): plan only, write nothing */
  wh_quantize_progress_func progress;
  wh_quantize_abort_func abort;
  gpointer user_data; /* for progress and abort */
} wh_quantize_params;

wh_quantize_params wh_quantize_default_params(void);

/* What happens to one tensor. */
typedef struct {
  const char *name;
  guint32 n_dims;
  guint64 ne[4];
  wh_type src_type;
  wh_type dst_type;    /* final type (after overrides and shape fallback) */
  wh_type wanted_type; /* type before the shape fallback */
  guint64 src_bytes;
  guint64 dst_bytes;
  gboolean converted;    /* FALSE: copied unchanged (not quantizable, or already dst_type) */
  gboolean fell_back;    /* the shape fallback changed the type */
  gboolean uses_imatrix; /* importance data will be used for it */
} wh_quantize_tensor_plan;

typedef struct wh_quantize_plan wh_quantize_plan;

/* Opens @input (and the imatrix of @params) and decides every tensor's type. Fails on bad
 * parameters and on everything wh_quantize_file() would refuse (see the design note) except
 * missing quantizers, which only a real run reports (so a dry run always shows the plan). */
wh_quantize_plan *wh_quantize_plan_new(const char *input, const wh_quantize_params *params,
                                       GError **error);
void wh_quantize_plan_free(wh_quantize_plan *plan); /* NULL-safe */
guint64 wh_quantize_plan_n_tensors(const wh_quantize_plan *plan);
const wh_quantize_tensor_plan *wh_quantize_plan_get(const wh_quantize_plan *plan, guint64 i);
/* Size of the output file in bytes. */
guint64 wh_quantize_plan_file_size(const wh_quantize_plan *plan);
/* Size of the input (all shards). */
guint64 wh_quantize_plan_input_size(const wh_quantize_plan *plan);
/* Number of tensors whose type the shape fallback changed. */
guint wh_quantize_plan_n_fallbacks(const wh_quantize_plan *plan);

/* Runs @plan, writing @output. @params supplies threads and callbacks (its other fields were
 * used for the plan). */
gboolean wh_quantize_plan_execute(const wh_quantize_plan *plan, const char *output,
                                  const wh_quantize_params *params, GError **error);

typedef struct {
  guint64 input_size;
  guint64 output_size;
  guint64 n_tensors;
  guint64 n_converted;
  guint n_fallbacks;
  double seconds; /* wall time of the run (0 for a dry run) */
} wh_quantize_result;

/* Plans and (unless params->dry_run) writes @output. @result may be NULL. */
gboolean wh_quantize_file(const char *input, const char *output, const wh_quantize_params *params,
                          wh_quantize_result *result, GError **error);

G_END_DECLS
