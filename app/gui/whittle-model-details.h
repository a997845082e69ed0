/* whittle-model-details.h — one Hugging Face model: card, files, fit badges, downloads.
 *
 * Design note
 * -----------
 * Owns: the details page the Browse page pushes on its leaflet. For one repository it
 * shows the summary (architecture, parameters, context, downloads, likes, last update),
 * gated-model guidance (add a token / request access on the web page), the GGUF files
 * grouped into variants (split parts and projector files under their model: one row per
 * variant with quant, size and a Download button that fetches every part), a fit badge
 * per variant computed by the planner from the remote GGUF header on this machine's
 * devices ("Fits on GPU", "Partial offload · 24/32 layers", "CPU only · needs 2 GB RAM",
 * "Too large"), and the model card (README.md, rendered by WhittleMarkdownView).
 * Promises: every network read runs as a job on the queue given (never on the main loop);
 * showing another model cancels what is pending for the previous one; results for an old
 * model are ignored.
 * Signals: "back" — the user asked to go back to the results.
 * Does not: own the queue (the Browse page does, and frees it before this widget goes).
 */
#pragma once

#include <adwaita.h>

#include "whittle-application.h"
#include "whittle-markdown.h"

G_BEGIN_DECLS

#define WHITTLE_TYPE_MODEL_DETAILS (whittle_model_details_get_type())
G_DECLARE_FINAL_TYPE(WhittleModelDetails, whittle_model_details, WHITTLE, MODEL_DETAILS, AdwBin)

/* Loads and shows @repo_id. @app gives the hub, the downloads and the settings (context
 * length, KV type, preferred GPU for the badges); @queue runs the reads. */
void whittle_model_details_show(WhittleModelDetails *self, WhittleApplication *app,
                                wh_job_queue *queue, const char *repo_id);

/* Hides variants whose quant is not @quant (NULL: any) or whose size is above @max_bytes
 * (0: any); a row at the end says how many are hidden and shows them on click. */
void whittle_model_details_set_filter(WhittleModelDetails *self, const char *quant,
                                      guint64 max_bytes);

/* For tests. */
const char *whittle_model_details_get_repo_id(WhittleModelDetails *self);
/* TRUE while the model info, the card or a fit badge is still being read. */
gboolean whittle_model_details_is_busy(WhittleModelDetails *self);
guint whittle_model_details_get_n_variants(WhittleModelDetails *self);
/* The quant label (may be NULL), badge text (NULL while pending) and Download button of the
 * @index-th variant. */
const char *whittle_model_details_get_variant_quant(WhittleModelDetails *self, guint index);
const char *whittle_model_details_get_variant_badge(WhittleModelDetails *self, guint index);
GtkButton *whittle_model_details_get_variant_button(WhittleModelDetails *self, guint index);
WhittleMarkdownView *whittle_model_details_get_card_view(WhittleModelDetails *self);

G_END_DECLS
