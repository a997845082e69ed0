/* tokenizer.h — text <-> token ids for GGUF vocabularies (spec: shared/spec/tokenizers.md).
 *
 * Design note
 * -----------
 * Owns: the vocabulary of a model (token texts, scores, types, merge rules, special ids and
 * flags from `tokenizer.ggml.*`), tokenization for the SentencePiece-style family
 * (`tokenizer.ggml.model = "llama"`) and the byte-level / raw BPE family (`"gpt2"`,
 * `"gemma4"`) with the pre-tokenizers of spec §6.4, special-token partitioning, the load-time
 * attribute fix-ups of §2.3, detokenization (§10) and a streaming detokenizer that never
 * emits half a UTF-8 character.
 * Promises:
 *  - Token-exact agreement with the reference (llama.cpp) on the vocabularies of
 *    shared/vocab/ and stories260K; arbitrary bytes (invalid UTF-8 included) never crash
 *    tokenization (it fails only when an SPM vocabulary lacks the byte tokens it needs).
 *  - Every `tokenizer.ggml.pre` of spec §6.4 except kimi-k2 and whitespace: the patterns of
 *    the verified vocabularies run as hand-written scanners, the others on a small
 *    backtracking regex evaluator (tok-regex.h) checked against those scanners.
 *  - Loading copies what it needs: the wh_gguf may be closed afterwards. Token text -> id and
 *    merge pair -> rank are hash tables built once (qwen2's 152k tokens + 151k merges load in
 *    ~40 ms of CPU). Tokenizing 1 MB of text takes 0.1-0.25 s (BPE caches repeated words
 *    within a call; SPM merges independently between characters no token can span).
 *  - A wh_tokenizer is immutable after creation: every function taking a const
 *    wh_tokenizer * may be called from any number of threads at once.
 * Does not: WordPiece (`bert`), Unigram (`t5`), RWKV, PLaMo-2, the kimi-k2 and whitespace
 * pre-tokenizers: loading those fails with WH_TOKENIZER_ERROR_UNSUPPORTED. No chat templates
 * (engine/chat).
 */
#pragma once

#include <glib.h>
#include "gguf/gguf.h"

G_BEGIN_DECLS

#define WH_TOKENIZER_ERROR (wh_tokenizer_error_quark())
GQuark wh_tokenizer_error_quark(void);

typedef enum {
  WH_TOKENIZER_ERROR_MISSING,     /* a required key is absent */
  WH_TOKENIZER_ERROR_INVALID,     /* a key has the wrong type/length, duplicate tokens, ... */
  WH_TOKENIZER_ERROR_UNSUPPORTED, /* a tokenizer family or pre-tokenizer not implemented */
  WH_TOKENIZER_ERROR_TOKENIZE,    /* text cannot be tokenized (missing byte token, no BOS) */
} wh_tokenizer_error;

/* Token types as stored in `tokenizer.ggml.token_type` (spec §2.1). */
typedef enum {
  WH_TOKEN_TYPE_UNDEFINED = 0,
  WH_TOKEN_TYPE_NORMAL = 1,
  WH_TOKEN_TYPE_UNKNOWN = 2,
  WH_TOKEN_TYPE_CONTROL = 3,
  WH_TOKEN_TYPE_USER_DEFINED = 4,
  WH_TOKEN_TYPE_UNUSED = 5,
  WH_TOKEN_TYPE_BYTE = 6,
} wh_token_type;

/* Token attributes after the load-time fix-ups (spec §2.1, §2.3); bit flags. */
typedef enum {
  WH_TOKEN_ATTR_UNKNOWN = 1 << 0,
  WH_TOKEN_ATTR_UNUSED = 1 << 1,
  WH_TOKEN_ATTR_NORMAL = 1 << 2,
  WH_TOKEN_ATTR_CONTROL = 1 << 3,
  WH_TOKEN_ATTR_USER_DEFINED = 1 << 4,
  WH_TOKEN_ATTR_BYTE = 1 << 5,
  WH_TOKEN_ATTR_NORMALIZED = 1 << 6,
  WH_TOKEN_ATTR_LSTRIP = 1 << 7,
  WH_TOKEN_ATTR_RSTRIP = 1 << 8,
  WH_TOKEN_ATTR_SINGLE_WORD = 1 << 9,
} wh_token_attr;

typedef enum {
  WH_TOKENIZER_SPM, /* "llama" */
  WH_TOKENIZER_BPE, /* "gpt2", "gemma4" */
} wh_tokenizer_family;

/* "No such token" (the reference's LLAMA_TOKEN_NULL). */
#define WH_TOKEN_NONE (-1)

typedef struct wh_tokenizer wh_tokenizer;

/* --- creation ---------------------------------------------------------------------------- */

/* Reads the `tokenizer.ggml.*` keys (plus general.name / general.architecture) of @g.
 * Returns NULL and sets @error (WH_TOKENIZER_ERROR) naming the key when they are missing,
 * mistyped or describe a tokenizer this module does not implement. */
wh_tokenizer *wh_tokenizer_new_from_gguf(const wh_gguf *g, GError **error);

/* The same from plain arrays (hand-made vocabularies in tests, converters). Strings are
 * copied. Optional fields: NULL / -1 = "key absent". */
typedef struct {
  const char *model; /* "llama", "gpt2", "gemma4" (required) */
  const char *pre;   /* tokenizer.ggml.pre, may be NULL */
  guint n_tokens;
  const char *const *tokens; /* n_tokens texts */
  const gsize *token_lens;   /* byte lengths, or NULL for NUL-terminated texts */
  const float *scores;       /* NULL = all 0 */
  const gint32 *token_types; /* NULL = all NORMAL */
  guint n_merges;
  const char *const *merges; /* "left right" rules */
  const gsize *merge_lens;   /* byte lengths, or NULL for NUL-terminated rules */
  gint64 bos_id, eos_id, eot_id, eom_id, unk_id, sep_id, pad_id, mask_id; /* -1 = absent */
  gint64 fim_pre_id, fim_suf_id, fim_mid_id, fim_pad_id, fim_rep_id, fim_sep_id;
  gint8 add_bos, add_eos, add_sep, add_space_prefix; /* -1 = absent */
  const char *general_name;                          /* may be NULL */
  const char *general_architecture;
} wh_tokenizer_vocab;

/* Initialises @v to "everything absent". */
void wh_tokenizer_vocab_init(wh_tokenizer_vocab *v);
wh_tokenizer *wh_tokenizer_new_from_vocab(const wh_tokenizer_vocab *v, GError **error);

void wh_tokenizer_free(wh_tokenizer *tok); /* NULL-safe */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(wh_tokenizer, wh_tokenizer_free)

/* --- tokenization ------------------------------------------------------------------------ */

/* Tokenizes @len bytes of @text (any bytes; invalid UTF-8 is handled as the reference does)
 * and appends the ids (gint32) to @out_ids. @add_special: add BOS/EOS as the vocabulary asks;
 * @parse_special: match control tokens written in the text (user-defined tokens are always
 * matched). Returns the number of ids appended, or -1 with @error set (a vocabulary lacking
 * the byte tokens SPM needs, BOS/EOS requested but NONE). Thread-safe. */
gint wh_tokenizer_tokenize(const wh_tokenizer *tok, const char *text, gsize len,
                           gboolean add_special, gboolean parse_special, GArray *out_ids,
                           GError **error);

/* --- detokenization ---------------------------------------------------------------------- */

/* Appends the bytes of token @id to @out (spec §10.1): control/unknown tokens print nothing
 * unless @special; up to @lstrip leading spaces are dropped. The piece may be an incomplete
 * UTF-8 sequence. Returns the number of bytes appended (0 for an out-of-range id). */
gsize wh_tokenizer_token_to_piece(const wh_tokenizer *tok, gint32 id, gboolean special,
                                  guint lstrip, GString *out);

/* Decodes @n ids into a new NUL-terminated string (spec §10.2; may hold any bytes, *out_len
 * gives the length when non-NULL). @remove_special drops a leading BOS / trailing EOS the
 * vocabulary adds; @unparse_special prints control tokens. Free with g_free(). */
char *wh_tokenizer_detokenize(const wh_tokenizer *tok, const gint32 *ids, gsize n,
                              gboolean remove_special, gboolean unparse_special, gsize *out_len);

/* Streaming detokenization for one generated sequence: pieces are concatenated as
 * token_to_piece gives them (no space stripping, no clean-up of spaces) and an unfinished
 * UTF-8 character at the end is held back until later bytes complete it (spec §10.3).
 * Not thread-safe (one per stream); the tokenizer must outlive it. */
typedef struct wh_detokenizer wh_detokenizer;

wh_detokenizer *wh_detokenizer_new(const wh_tokenizer *tok, gboolean unparse_special);
/* Appends to @out the bytes of @id that can be shown now (plus any held back that @id
 * completes). Returns the number of bytes appended. */
gsize wh_detokenizer_push(wh_detokenizer *d, gint32 id, GString *out);
/* End of the stream: appends whatever is still held back (possibly an invalid tail). */
gsize wh_detokenizer_flush(wh_detokenizer *d, GString *out);
void wh_detokenizer_free(wh_detokenizer *d); /* NULL-safe */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(wh_detokenizer, wh_detokenizer_free)

/* The length of the prefix of @buf[0..@len) that can be shown without cutting a UTF-8
 * character that later bytes may complete (the rule of spec §10.3). */
gsize wh_utf8_complete_prefix(const char *buf, gsize len);

/* --- vocabulary facts (all thread-safe) -------------------------------------------------- */

wh_tokenizer_family wh_tokenizer_get_family(const wh_tokenizer *tok);
const char *wh_tokenizer_get_model_name(const wh_tokenizer *tok); /* "llama", "gpt2", ... */
const char *wh_tokenizer_get_pre_name(const wh_tokenizer *tok);   /* "LLAMA3", ...; NULL: SPM */
guint wh_tokenizer_n_vocab(const wh_tokenizer *tok);
gint32 wh_tokenizer_bos(const wh_tokenizer *tok); /* WH_TOKEN_NONE when there is none */
gint32 wh_tokenizer_eos(const wh_tokenizer *tok);
gint32 wh_tokenizer_eot(const wh_tokenizer *tok);
gint32 wh_tokenizer_eom(const wh_tokenizer *tok);
gint32 wh_tokenizer_pad(const wh_tokenizer *tok);
gint32 wh_tokenizer_unk(const wh_tokenizer *tok);
gint32 wh_tokenizer_sep(const wh_tokenizer *tok);
gboolean wh_tokenizer_add_bos(const wh_tokenizer *tok); /* BOS prepended when add_special */
gboolean wh_tokenizer_add_eos(const wh_tokenizer *tok);
gboolean wh_tokenizer_add_space_prefix(const wh_tokenizer *tok);
/* TRUE when generation should stop at @id (EOS, EOT, EOM, FIM pad/rep/sep and the
 * end-of-generation texts of spec §2.3). */
gboolean wh_tokenizer_is_eog(const wh_tokenizer *tok, gint32 id);
/* TRUE for control tokens (`<s>`, `<|im_start|>`, ...). */
gboolean wh_tokenizer_is_control(const wh_tokenizer *tok, gint32 id);

/* Token facts; out-of-range ids give NULL / UNDEFINED / 0. The text is owned by @tok and
 * NUL-terminated; *len (may be NULL) is its byte length. */
const char *wh_tokenizer_token_text(const wh_tokenizer *tok, gint32 id, gsize *len);
wh_token_type wh_tokenizer_token_type(const wh_tokenizer *tok, gint32 id);
guint32 wh_tokenizer_token_attr(const wh_tokenizer *tok, gint32 id); /* wh_token_attr bits */
float wh_tokenizer_token_score(const wh_tokenizer *tok, gint32 id);
/* The id whose text is exactly @text (any type), or WH_TOKEN_NONE. */
gint32 wh_tokenizer_find(const wh_tokenizer *tok, const char *text, gsize len);

G_END_DECLS
