/* whittle-format.h — short human-readable numbers for the pages.
 *
 * Design note
 * -----------
 * Owns: the few formats the Browse, Details and Library pages share: parameter counts
 * ("7B", "1.1B", "260K"), counts ("12.3k"), sizes (g_format_size) and dates relative to now
 * ("3 days ago"), plus reading a parameter count out of a model name ("Llama-3.2-1B" → 1e9).
 * Promises: pure functions, newly allocated strings, any thread.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

char *whittle_format_params(guint64 n);
char *whittle_format_count(guint64 n);
/* @iso8601 ("2025-01-02T03:04:05.000Z") relative to @now_unix (0: now); NULL when the date
 * cannot be read. */
char *whittle_format_age(const char *iso8601, gint64 now_unix);
/* The parameter count in a model name ("Qwen2.5-0.5B-Instruct" → 500000000, "8x7B" →
 * 56e9, "stories260K" → 260000); 0 when the name does not say. */
guint64 whittle_parse_params_from_name(const char *name);

G_END_DECLS
