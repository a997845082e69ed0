/* tok-regex.h — the small backtracking regex evaluator for generic pre-tokenizer patterns
 * (private to engine/tokenizer; spec: shared/spec/tokenizers.md §6.1 (b)).
 *
 * Evaluates a pattern with ECMAScript semantics (leftmost match, alternatives in order,
 * greedy quantifiers with backtracking, lookaheads) over one segment of code points, after
 * the reference's subject transformation: in category mode (the pattern uses \p{..}) every
 * non-ASCII code point becomes a placeholder for its class, in code-point mode it is kept;
 * in both, non-ASCII whitespace becomes U+000B. Supported syntax: literals, `.`, classes
 * with ranges and negation, \s \S \d \D \w \W \r \n \t \v \f \p{L N P M S Lu Ll Lt Lm Lo},
 * (...) (?:...) (?=...) (?!...), * + ? {n} {n,} {n,m}, |, $. A pattern using anything else
 * fails to compile. Compiled patterns are immutable and thread-safe.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct wh_regex wh_regex;

/* Compiles the UTF-8 @pattern; NULL with a message in @error_message (newly allocated) when
 * it uses unsupported syntax. */
wh_regex *wh_regex_compile(const char *pattern, char **error_message);
void wh_regex_free(wh_regex *re);

/* Splits the segment [@a, @b) of @cp (flags @fl from wh_uc_flags()) under the pattern, the
 * §6.1 way: unmatched stretches and matches become pieces in order; a zero-length match is
 * a split point. Appends the end offset of every piece (gsize) to @ends. */
void wh_regex_split(const wh_regex *re, const guint32 *cp, const guint8 *fl, gsize a, gsize b,
                    GArray *ends);

G_END_DECLS
