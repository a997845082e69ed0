/* whittle-quantize-page.h — the Quantize wizard: make a model smaller.
 *
 * Design note
 * -----------
 * Steps (a GtkStack with Back / Next): source (a model of the Library — listed by a scan job
 * on the page's own queue, not a user job, when the step is shown: name, type, size;
 * F32/F16/BF16 first, quantized ones marked — or a GGUF file from Open File…; an already
 * quantized one gets a requantize warning and is converted through F32) → type (a table of
 * types with the exact
 * output size from a wh_quantize dry run, the published quality figure of the type and
 * whether the weights fit this machine's RAM or GPU) → importance matrix (none, a file, or
 * computed now from a text file) →
 * run (a WH_JOB_QUANTIZE job on the app's queue: tensor n of N, rate, ETA, Cancel, which
 * asks first) →
 * results (size before → after, time, then perplexity and KL divergence against the source
 * on a short text and generation speed, measured by a WH_JOB_EVALUATE job; Chat with It, Show
 * in Library, Quantize Another).
 * Promises: the output is written by the quantizer to a temporary file and renamed only when
 * complete, so a cancel or a failure leaves nothing half-written. It goes into
 * $XDG_DATA_HOME/whittle/quantized (never next to the source), which is then added to the
 * Library's folders. Types that need an importance matrix are shown but
 * cannot be chosen without one.
 * Actions (group "quantize"): choose-source, choose-imatrix, back, next, cancel, chat,
 * show-library, restart.
 * The results also show a size-versus-quality chart of the types (WhittleQualityChart).
 * Does not: write next to the source, or offload the measurement to a GPU.
 */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define WHITTLE_TYPE_QUANTIZE_PAGE (whittle_quantize_page_get_type())
G_DECLARE_FINAL_TYPE(WhittleQuantizePage, whittle_quantize_page, WHITTLE, QUANTIZE_PAGE, AdwBin)

/* Takes @path as the source and shows the type step (or the source step with the error).
 * Returns FALSE with @error when the file cannot be planned at all. */
gboolean whittle_quantize_page_open_file(WhittleQuantizePage *self, const char *path,
                                         GError **error);
/* The source step's Library list: scanned again (a job on the page's queue; also when the page
 * is shown on that step); TRUE while the scan runs; how many models it lists; row @index (a
 * GtkListBoxRow whose activation opens that model as whittle_quantize_page_open_file() does),
 * or NULL. */
void whittle_quantize_page_refresh_library(WhittleQuantizePage *self);
gboolean whittle_quantize_page_is_listing_library(WhittleQuantizePage *self);
guint whittle_quantize_page_get_n_library_sources(WhittleQuantizePage *self);
GtkWidget *whittle_quantize_page_get_library_row(WhittleQuantizePage *self, guint index);
/* The visible step: "source", "type", "imatrix", "run", "results". */
const char *whittle_quantize_page_get_step(WhittleQuantizePage *self);
/* Output size the dry run gave for @ftype_name (0 when it is not offered or failed). */
guint64 whittle_quantize_page_get_planned_size(WhittleQuantizePage *self, const char *ftype_name);
/* Chooses a type ("Q4_0"); FALSE when not offered or not possible (needs an imatrix). */
gboolean whittle_quantize_page_select_type(WhittleQuantizePage *self, const char *ftype_name);
/* The importance matrix file (NULL: none). */
void whittle_quantize_page_set_imatrix(WhittleQuantizePage *self, const char *path);
/* Chooses "compute one now" with the text file at @path: the run then first computes an
 * importance matrix of the source on that text (a WH_JOB_IMATRIX job, saved as
 * <source>.imatrix.gguf beside the output) and quantizes with it. */
void whittle_quantize_page_set_calibration_text(WhittleQuantizePage *self, const char *path);
/* Starts the run (as Next on the importance matrix step). */
gboolean whittle_quantize_page_start(WhittleQuantizePage *self);
gboolean whittle_quantize_page_is_running(WhittleQuantizePage *self);
/* Cancels at once (the Cancel button asks first). */
void whittle_quantize_page_cancel(WhittleQuantizePage *self);
/* Where the output goes / went (NULL before a type is chosen), and the last error. */
const char *whittle_quantize_page_get_output_path(WhittleQuantizePage *self);
const char *whittle_quantize_page_get_error(WhittleQuantizePage *self);
/* TRUE while the result is being measured (a WH_JOB_EVALUATE job after a successful run:
 * perplexity of source and result on a short built-in text, the result's KL divergence
 * against the source, and its generation speed over 32 tokens). */
gboolean whittle_quantize_page_is_measuring(WhittleQuantizePage *self);
/* The last measurements; FALSE when there are none yet. */
gboolean whittle_quantize_page_get_measurements(WhittleQuantizePage *self, double *ppl,
                                                double *base_ppl, double *kld,
                                                double *tokens_per_second);
/* Output size actually written by the last successful run (0 otherwise). */
guint64 whittle_quantize_page_get_output_size(WhittleQuantizePage *self);

G_END_DECLS
