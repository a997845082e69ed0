/* tok-pretok.h — BPE pre-tokenization (private to engine/tokenizer).
 *
 * Spec: shared/spec/tokenizers.md §6.1, §6.4, §6.5. A pre-tokenizer is a list of patterns
 * applied in order; each one re-cuts every current segment of a text's code points. Every
 * pattern here is a hand-written scanner that gives exactly what the reference regex gives
 * under the §6.1 rules (no regex engine). Pre-types whose patterns need a general regex
 * engine are reported as unsupported at load time.
 */
#pragma once

#include <glib.h>

#include "tok-regex.h"

G_BEGIN_DECLS

#define WH_PRETOK_MAX_PATTERNS 8

/* What a `tokenizer.ggml.pre` name selects (§6.4). Tri-state fields: -1 = leave the
 * model default, 0 = false, 1 = true. */
typedef struct {
  const char *type_name;                   /* pre-type, e.g. "LLAMA3" */
  guint8 patterns[WH_PRETOK_MAX_PATTERNS]; /* pattern ids, 0-terminated */
  gint8 add_bos;
  gint8 clean_spaces;
  gint8 add_sep;
  gboolean ignore_merges;
  gboolean bos_none;                    /* CHATGLM4: the BOS default becomes NONE */
  gboolean escape_whitespace;           /* ' ' -> U+2581 before pre-tokenization */
  gboolean no_byte_encoding;            /* symbols are raw UTF-8; <0xHH> byte fallback */
  gboolean gemma4;                      /* all-newline words shortcut, BOS forced */
  wh_regex *rx[WH_PRETOK_MAX_PATTERNS]; /* compiled generic patterns (owned) */
} wh_pretok_info;

typedef enum {
  WH_PRETOK_FOUND,
  WH_PRETOK_UNSUPPORTED, /* a name the reference knows whose patterns are not implemented */
  WH_PRETOK_UNKNOWN,
} wh_pretok_lookup_result;

/* Looks up @name (NULL or absent = "default"). */
wh_pretok_lookup_result wh_pretok_lookup(const char *name, wh_pretok_info *out);

/* Compiles the generic (regex-evaluated) patterns of @info; FALSE with a newly allocated
 * message in @error_message on failure. Free with wh_pretok_info_clear(). */
gboolean wh_pretok_info_compile(wh_pretok_info *info, char **error_message);
void wh_pretok_info_clear(wh_pretok_info *info);

/* One pattern by its spec number (X01 = 1, ...) on one segment, for tests that compare the
 * hand-written scanners with the regex evaluator. FALSE when @x has no scanner here. */
gboolean wh_pretok_split_scanner(guint x, const guint32 *cp, const guint8 *fl, gsize a, gsize b,
                                 GArray *ends);
/* The regex source text of pattern X@x as the spec gives it, or NULL. */
const char *wh_pretok_pattern_source(guint x);

/* Cuts code points @cp[0..@n) (with their wh_uc_flags() in @fl) into words: appends the end
 * offset of each word, in order, to @ends (gsize elements; the last is @n; nothing for
 * n == 0). @scratch is a caller-owned gsize GArray reused between calls. */
void wh_pretok_split(const wh_pretok_info *info, const guint32 *cp, const guint8 *fl, gsize n,
                     GArray *ends, GArray *scratch);

G_END_DECLS
