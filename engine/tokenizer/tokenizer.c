/* tokenizer.c — vocabulary loading, special tokens, SPM and BPE tokenization,
 * detokenization (contract and design note in tokenizer.h; facts in
 * shared/spec/tokenizers.md, cited by section).
 *
 * Implementation notes
 * --------------------
 * - Token texts live in one arena; text -> id is an open-addressing table (FNV-1a + an
 *   fmix64 finaliser, linear probing, load <= 1/2, slots keep the full hash). Merge rules
 *   likewise, keyed by (left, right) without building the concatenation: the hash runs over
 *   left, one space, right.
 * - Special-token partitioning (§4) follows the spec's order literally (longest text first,
 *   every fragment searched), but first finds, with one pass of a byte trie over the input,
 *   which special texts occur at all, so vocabularies with thousands of added tokens stay
 *   linear in the text length.
 * - SPM (§7) and BPE (§6.2) share the merge loop: symbols with prev/next links, a binary
 *   heap of candidates ordered by (priority, left position), stale candidates dropped when
 *   popped (their lengths no longer add up).
 * - Every token's piece (§10.1 with special = true) is computed once at load.
 * - Two shortcuts that cannot change a result: BPE words seen before in the same call reuse
 *   their ids; an SPM fragment is cut where two adjacent characters form a byte pair that no
 *   token contains (no symbol can ever span that boundary), so heaps stay small.
 */
#include "config.h"

#include "tokenizer.h"
#include "tok-pretok.h"
#include "tok-unicode.h"

#include <string.h>

/* clang-format off */
G_DEFINE_QUARK(wh-tokenizer-error-quark, wh_tokenizer_error)
/* clang-format on */

enum {
  ID_BOS,
  ID_EOS,
  ID_EOT,
  ID_EOM,
  ID_UNK,
  ID_SEP,
  ID_PAD,
  ID_MASK,
  ID_FIM_PRE,
  ID_FIM_SUF,
  ID_FIM_MID,
  ID_FIM_PAD,
  ID_FIM_REP,
  ID_FIM_SEP,
  N_IDS
};

enum { TF_EOG = 1 << 0 };

typedef struct {
  guint32 off, llen, rlen;
} merge_rule;

/* A hash table slot: the full 32-bit hash (checked before touching the texts, so a probe
 * costs one cache line) and the id / rule index, -1 when empty. */
typedef struct {
  guint32 hash;
  gint32 id;
} slot;

typedef struct {
  guint32 first_child, next_sibling; /* 0 = none (the root is never a child) */
  gint32 special_index;              /* index into tok->special, or -1 */
  guint8 byte;
} trie_node;

struct wh_tokenizer {
  wh_tokenizer_family family;
  char *model_name;
  wh_pretok_info pre;

  guint n;
  char *arena; /* token texts, each NUL-terminated */
  guint32 *text_off, *text_len;
  float *scores;
  gint32 *types;
  guint32 *attrs;
  guint8 *tflags;
  char *piece_arena;
  guint32 *piece_off, *piece_len;

  slot *htab; /* text -> id */
  guint32 hmask;

  char *merge_arena;
  merge_rule *merges;
  guint n_merges;
  slot *mtab; /* merge pair -> rule index (= rank) */
  guint32 mmask;

  gint32 *special; /* the special set, longest text first, then ascending id */
  guint n_special;
  trie_node *trie;
  guint32 trie_root[256];

  gint32 hex_tok[256];   /* find("<0xHH>") */
  gint32 raw_tok[256];   /* find(one byte) */
  char byte_enc[256][3]; /* GPT-2 table: UTF-8 of the code point of byte b, NUL-terminated */

  gint32 ids[N_IDS];
  gboolean add_bos, add_eos, add_sep, add_space_prefix, clean_spaces;
  gboolean escape_ws, byte_encode, ignore_merges, gemma4;
  /* SPM: bit (a << 8 | b) is set when some token contains the bytes a b in a row. Where
   * two adjacent characters form a pair no token contains, no symbol can ever span them, so
   * the text on either side merges independently (same result, small heaps). */
  guint8 spm_pairs[65536 / 8];
};

/* --- hashing ----------------------------------------------------------------------------- */

#define FNV_INIT G_GUINT64_CONSTANT(0xcbf29ce484222325)
#define FNV_PRIME G_GUINT64_CONSTANT(0x100000001b3)

static inline guint64
fnv(guint64 h, const char *s, gsize n)
{
  for (gsize i = 0; i < n; i++) {
    h ^= (guint8)s[i];
    h *= FNV_PRIME;
  }
  return h;
}

/* Final avalanche (MurmurHash3 fmix64): FNV alone leaves clusters under linear probing. */
static inline guint32
mix(guint64 h)
{
  h ^= h >> 33;
  h *= G_GUINT64_CONSTANT(0xff51afd7ed558ccd);
  h ^= h >> 33;
  h *= G_GUINT64_CONSTANT(0xc4ceb9fe1a85ec53);
  h ^= h >> 33;
  return (guint32)h;
}

static guint32
table_mask_for(gsize n)
{
  gsize size = 16;
  while (size < 2 * n)
    size <<= 1;
  return (guint32)(size - 1);
}

gint32
wh_tokenizer_find(const wh_tokenizer *tok, const char *text, gsize len)
{
  guint32 hv = mix(fnv(FNV_INIT, text, len));
  for (guint32 h = hv & tok->hmask;; h = (h + 1) & tok->hmask) {
    gint32 id = tok->htab[h].id;
    if (id < 0)
      return WH_TOKEN_NONE;
    if (tok->htab[h].hash == hv && tok->text_len[id] == len &&
        memcmp(tok->arena + tok->text_off[id], text, len) == 0)
      return id;
  }
}

static inline gint32
find_str(const wh_tokenizer *tok, const char *s)
{
  return wh_tokenizer_find(tok, s, strlen(s));
}

/* Rank of the merge rule (left, right), or -1. */
static inline gint32
merge_rank(const wh_tokenizer *tok, const char *l, gsize ll, const char *r, gsize rl)
{
  if (tok->mtab == NULL)
    return -1;
  guint64 hv = fnv(FNV_INIT, l, ll);
  hv = fnv(hv, " ", 1);
  hv = fnv(hv, r, rl);
  guint32 full = mix(hv);
  for (guint32 h = full & tok->mmask;; h = (h + 1) & tok->mmask) {
    gint32 k = tok->mtab[h].id;
    if (k < 0)
      return -1;
    if (tok->mtab[h].hash != full)
      continue;
    const merge_rule *m = &tok->merges[k];
    const char *s = tok->merge_arena + m->off;
    if (m->llen == ll && m->rlen == rl && memcmp(s, l, ll) == 0 && memcmp(s + ll + 1, r, rl) == 0)
      return k;
  }
}

/* Plain byte search (memmem without needing _GNU_SOURCE). */
static const char *
find_bytes(const char *hay, gsize hn, const char *needle, gsize nn)
{
  if (nn == 0 || nn > hn)
    return NULL;
  const char *end = hay + hn - nn + 1;
  const char *p = hay;
  while (p < end) {
    p = memchr(p, needle[0], end - p);
    if (p == NULL)
      return NULL;
    if (memcmp(p, needle, nn) == 0)
      return p;
    p++;
  }
  return NULL;
}

/* --- loading ----------------------------------------------------------------------------- */

void
wh_tokenizer_vocab_init(wh_tokenizer_vocab *v)
{
  memset(v, 0, sizeof *v);
  v->bos_id = v->eos_id = v->eot_id = v->eom_id = v->unk_id = v->sep_id = v->pad_id = v->mask_id =
      -1;
  v->fim_pre_id = v->fim_suf_id = v->fim_mid_id = v->fim_pad_id = v->fim_rep_id = v->fim_sep_id =
      -1;
  v->add_bos = v->add_eos = v->add_sep = v->add_space_prefix = -1;
}

void
wh_tokenizer_free(wh_tokenizer *tok)
{
  if (tok == NULL)
    return;
  wh_pretok_info_clear(&tok->pre);
  g_free(tok->model_name);
  g_free(tok->arena);
  g_free(tok->text_off);
  g_free(tok->text_len);
  g_free(tok->scores);
  g_free(tok->types);
  g_free(tok->attrs);
  g_free(tok->tflags);
  g_free(tok->piece_arena);
  g_free(tok->piece_off);
  g_free(tok->piece_len);
  g_free(tok->htab);
  g_free(tok->merge_arena);
  g_free(tok->merges);
  g_free(tok->mtab);
  g_free(tok->special);
  g_free(tok->trie);
  g_free(tok);
}

static guint32
attr_of_type(gint32 type)
{
  switch (type) {
  case WH_TOKEN_TYPE_NORMAL:
    return WH_TOKEN_ATTR_NORMAL;
  case WH_TOKEN_TYPE_UNKNOWN:
    return WH_TOKEN_ATTR_UNKNOWN;
  case WH_TOKEN_TYPE_CONTROL:
    return WH_TOKEN_ATTR_CONTROL;
  case WH_TOKEN_TYPE_USER_DEFINED:
    return WH_TOKEN_ATTR_USER_DEFINED;
  case WH_TOKEN_TYPE_UNUSED:
    return WH_TOKEN_ATTR_UNUSED;
  case WH_TOKEN_TYPE_BYTE:
    return WH_TOKEN_ATTR_BYTE;
  default:
    return 0; /* UNDEFINED */
  }
}

static gboolean
load_tokens(wh_tokenizer *tok, const wh_tokenizer_vocab *v, GError **error)
{
  guint n = v->n_tokens;
  gsize total = 0;
  for (guint i = 0; i < n; i++) {
    gsize len = v->token_lens ? v->token_lens[i] : strlen(v->tokens[i]);
    total += (len ? len : 24) + 1;
  }
  tok->n = n;
  tok->arena = g_malloc(total ? total : 1);
  tok->text_off = g_new(guint32, n);
  tok->text_len = g_new(guint32, n);
  tok->scores = g_new0(float, n);
  tok->types = g_new(gint32, n);
  tok->attrs = g_new(guint32, n);
  tok->tflags = g_new0(guint8, n);
  tok->hmask = table_mask_for(n);
  tok->htab = g_new(slot, (gsize)tok->hmask + 1);
  memset(tok->htab, 0xff, ((gsize)tok->hmask + 1) * sizeof(slot));
  g_autofree guint32 *hashes = g_new(guint32, n ? n : 1);

  gsize off = 0;
  for (guint i = 0; i < n; i++) {
    gsize len = v->token_lens ? v->token_lens[i] : strlen(v->tokens[i]);
    char *dst = tok->arena + off;
    if (len == 0) {
      len = g_snprintf(dst, 24, "[EMPTY_%u]", i); /* §1 rule 1 */
    } else {
      memcpy(dst, v->tokens[i], len);
      dst[len] = '\0';
    }
    if (off + len >= G_MAXUINT32) {
      g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_INVALID,
                  "tokenizer.ggml.tokens: the token texts exceed 4 GiB");
      return FALSE;
    }
    tok->text_off[i] = (guint32)off;
    tok->text_len[i] = (guint32)len;
    off += len + 1;
    tok->scores[i] = v->scores ? v->scores[i] : 0.0f;
    tok->types[i] = v->token_types ? v->token_types[i] : WH_TOKEN_TYPE_NORMAL;
    tok->attrs[i] = attr_of_type(tok->types[i]);

    hashes[i] = mix(fnv(FNV_INIT, dst, len));
  }
  /* Shape: n random inserts into a table far larger than the cache: prefetch ahead. */
  for (guint i = 0; i < n; i++) {
    if (i + 16 < n)
      __builtin_prefetch(&tok->htab[hashes[i + 16] & tok->hmask], 1);
    const char *dst = tok->arena + tok->text_off[i];
    guint32 len = tok->text_len[i];
    guint32 h = hashes[i] & tok->hmask;
    while (tok->htab[h].id >= 0) {
      gint32 o = tok->htab[h].id;
      if (tok->htab[h].hash == hashes[i] && tok->text_len[o] == len &&
          memcmp(tok->arena + tok->text_off[o], dst, len) == 0) {
        g_autofree char *shown = g_strescape(dst, NULL);
        g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_INVALID,
                    "tokenizer.ggml.tokens: tokens %d and %u have the same text \"%s\"; the "
                    "vocabulary is corrupt",
                    o, i, shown);
        return FALSE;
      }
      h = (h + 1) & tok->hmask;
    }
    tok->htab[h].hash = hashes[i];
    tok->htab[h].id = (gint32)i;
  }
  return TRUE;
}

static void
load_merges(wh_tokenizer *tok, const wh_tokenizer_vocab *v)
{
  guint n = v->n_merges;
  gsize total = 0;
  for (guint i = 0; i < n; i++)
    total += (v->merge_lens ? v->merge_lens[i] : strlen(v->merges[i])) + 1;
  tok->merge_arena = g_malloc(total ? total : 1);
  tok->merges = g_new(merge_rule, n ? n : 1);
  tok->mmask = table_mask_for(n);
  tok->mtab = g_new(slot, (gsize)tok->mmask + 1);
  memset(tok->mtab, 0xff, ((gsize)tok->mmask + 1) * sizeof(slot));
  g_autofree guint32 *hashes = g_new0(guint32, n ? n : 1);
  gsize off = 0;
  for (guint i = 0; i < n; i++) {
    const char *s = v->merges[i];
    gsize len = v->merge_lens ? v->merge_lens[i] : strlen(s);
    merge_rule *m = &tok->merges[i];
    /* §6.6: split at the first space whose byte index is >= 1. */
    const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
    memcpy(tok->merge_arena + off, s, len);
    tok->merge_arena[off + len] = '\0';
    m->off = (guint32)off;
    off += len + 1;
    if (sp == NULL) { /* recorded as ("", "") — never matches a real pair */
      m->llen = m->rlen = G_MAXUINT32;
      continue;
    }
    m->llen = (guint32)(sp - s);
    m->rlen = (guint32)(len - m->llen - 1);
    /* "left right" is hashed exactly as merge_rank() hashes (left, " ", right). */
    hashes[i] = mix(fnv(FNV_INIT, s, len));
  }
  for (guint i = 0; i < n; i++) {
    if (i + 16 < n)
      __builtin_prefetch(&tok->mtab[hashes[i + 16] & tok->mmask], 1);
    const merge_rule *m = &tok->merges[i];
    if (m->llen == G_MAXUINT32)
      continue;
    const char *l = tok->merge_arena + m->off;
    guint32 h = hashes[i] & tok->mmask;
    gboolean dup = FALSE;
    while (tok->mtab[h].id >= 0) {
      const merge_rule *o = &tok->merges[tok->mtab[h].id];
      if (tok->mtab[h].hash == hashes[i] && o->llen == m->llen && o->rlen == m->rlen &&
          memcmp(tok->merge_arena + o->off, l, m->llen + 1 + m->rlen) == 0) {
        dup = TRUE; /* the first (lower) rank counts */
        break;
      }
      h = (h + 1) & tok->mmask;
    }
    if (!dup) {
      tok->mtab[h].hash = hashes[i];
      tok->mtab[h].id = (gint32)i;
    }
  }
  tok->n_merges = n;
}

static gboolean
text_contains(const wh_tokenizer *tok, gint32 id, const char *needle)
{
  return find_bytes(tok->arena + tok->text_off[id], tok->text_len[id], needle, strlen(needle)) !=
         NULL;
}

static gboolean
eog_has(const wh_tokenizer *tok, gint32 id)
{
  return id >= 0 && (tok->tflags[id] & TF_EOG);
}

/* §2.3: EOT/EOM/FIM detection, UNUSED, the EOG set, the gpt-oss and gemma-4 tweaks,
 * the special set and the strip flags. */
static void
fixup_attributes(wh_tokenizer *tok, const wh_tokenizer_vocab *v)
{
  static const char *const eot_texts[] = {"<|eot_id|>",
                                          "<|im_end|>",
                                          "<|end|>",
                                          "<end_of_turn>",
                                          "<|endoftext|>",
                                          "<|end_of_text|>",
                                          "<EOT>",
                                          "_<EOT>",
                                          "[EOT]",
                                          "<\xef\xbd\x9c"
                                          "end\xe2\x96\x81"
                                          "of\xe2\x96\x81"
                                          "sentence\xef\xbd\x9c>",
                                          "<end_of_utterance>",
                                          NULL};
  static const char *const eom_texts[] = {"<|eom_id|>", NULL};
  static const char *const fim_pre_texts[] = {"<|fim_prefix|>",
                                              "<fim-prefix>",
                                              "<fim_prefix>",
                                              "<\xef\xbd\x9c"
                                              "fim\xe2\x96\x81"
                                              "begin\xef\xbd\x9c>",
                                              "<PRE>",
                                              "\xe2\x96\x81<PRE>",
                                              "<|code_prefix|>",
                                              "<|prefix|>",
                                              NULL};
  static const char *const fim_suf_texts[] = {"<|fim_suffix|>",
                                              "<fim-suffix>",
                                              "<fim_suffix>",
                                              "<\xef\xbd\x9c"
                                              "fim\xe2\x96\x81"
                                              "hole\xef\xbd\x9c>",
                                              "<SUF>",
                                              "\xe2\x96\x81<SUF>",
                                              "<|code_suffix|>",
                                              "<|suffix|>",
                                              NULL};
  static const char *const fim_mid_texts[] = {"<|fim_middle|>",
                                              "<fim-middle>",
                                              "<fim_middle>",
                                              "<\xef\xbd\x9c"
                                              "fim\xe2\x96\x81"
                                              "end\xef\xbd\x9c>",
                                              "<MID>",
                                              "\xe2\x96\x81<MID>",
                                              "<|code_middle|>",
                                              "<|middle|>",
                                              NULL};
  static const char *const fim_pad_texts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>",
                                              "<PAD>",       "[PAD]",     NULL};
  static const char *const fim_rep_texts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                              "<REPO>",       "<reponame>",    NULL};
  static const char *const fim_sep_texts[] = {"<|file_sep|>", NULL};
  static const struct {
    int slot;
    const char *const *texts;
  } detect[] = {
      {ID_EOT, eot_texts},         {ID_EOM, eom_texts},         {ID_FIM_PRE, fim_pre_texts},
      {ID_FIM_SUF, fim_suf_texts}, {ID_FIM_MID, fim_mid_texts}, {ID_FIM_PAD, fim_pad_texts},
      {ID_FIM_REP, fim_rep_texts}, {ID_FIM_SEP, fim_sep_texts},
  };
  static const char *const eog_texts[] = {"<|eot_id|>",
                                          "<|im_end|>",
                                          "<|end|>",
                                          "<|return|>",
                                          "<|call|>",
                                          "<|flush|>",
                                          "<|calls|>",
                                          "<end_of_turn>",
                                          "<|endoftext|>",
                                          "</s>",
                                          "<|eom_id|>",
                                          "<EOT>",
                                          "_<EOT>",
                                          "[EOT]",
                                          "[EOS]",
                                          "<|end_of_text|>",
                                          "<end_of_utterance>",
                                          "<eos>",
                                          "<turn|>",
                                          "<|tool_response>",
                                          "<\xef\xbd\x9c"
                                          "end\xe2\x96\x81"
                                          "of\xe2\x96\x81"
                                          "sentence\xef\xbd\x9c>",
                                          "[e~[",
                                          NULL};

  /* 1. */
  for (gsize k = 0; k < G_N_ELEMENTS(detect); k++) {
    if (tok->ids[detect[k].slot] != WH_TOKEN_NONE)
      continue;
    for (const char *const *t = detect[k].texts; *t; t++) {
      gint32 id = find_str(tok, *t);
      if (id >= 0) {
        tok->ids[detect[k].slot] = id;
        tok->attrs[id] |= WH_TOKEN_ATTR_CONTROL;
        break;
      }
    }
  }
  /* 2. */
  for (guint i = 0; i < tok->n; i++)
    if ((tok->attrs[i] & WH_TOKEN_ATTR_CONTROL) && text_contains(tok, i, "unused"))
      tok->attrs[i] |= WH_TOKEN_ATTR_UNUSED;
  /* 3. */
  for (const char *const *t = eog_texts; *t; t++) {
    gint32 id = find_str(tok, *t);
    if (id >= 0) {
      tok->attrs[id] |= WH_TOKEN_ATTR_CONTROL;
      tok->tflags[id] |= TF_EOG;
    }
  }
  static const int eog_slots[] = {ID_FIM_PAD, ID_FIM_REP, ID_FIM_SEP, ID_EOS, ID_EOT, ID_EOM};
  for (gsize k = 0; k < G_N_ELEMENTS(eog_slots); k++)
    if (tok->ids[eog_slots[k]] >= 0)
      tok->tflags[tok->ids[eog_slots[k]]] |= TF_EOG;
  /* 4. */
  static const char *const harmony[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"};
  for (gsize k = 0; k < G_N_ELEMENTS(harmony); k++) {
    gint32 id = find_str(tok, harmony[k]);
    if (id >= 0)
      tok->attrs[id] = WH_TOKEN_ATTR_USER_DEFINED;
  }
  /* 5. */
  gint32 end = find_str(tok, "<|end|>");
  gboolean has_call =
      eog_has(tok, find_str(tok, "<|call|>")) || eog_has(tok, find_str(tok, "<|calls|>"));
  if (eog_has(tok, end) && has_call &&
      (eog_has(tok, find_str(tok, "<|return|>")) || eog_has(tok, find_str(tok, "<|flush|>")))) {
    tok->tflags[end] &= ~TF_EOG;
    tok->attrs[end] = WH_TOKEN_ATTR_USER_DEFINED;
  }
  /* 6. */
  gint32 eos_text = find_str(tok, "</s>");
  if (eog_has(tok, find_str(tok, "<|tool_response>")) && eog_has(tok, eos_text)) {
    tok->tflags[eos_text] &= ~TF_EOG;
    tok->attrs[eos_text] = WH_TOKEN_ATTR_NORMAL;
  }
  /* 7. happens in build_special() after this. 8. strip flags: */
  const char *pre = v->pre ? v->pre : "";
  const char *arch = v->general_architecture ? v->general_architecture : "";
  g_autofree char *name = g_ascii_strdown(v->general_name ? v->general_name : "", -1);
  const guint32 special_mask =
      WH_TOKEN_ATTR_CONTROL | WH_TOKEN_ATTR_USER_DEFINED | WH_TOKEN_ATTR_UNKNOWN;
  if (strstr(pre, "jina-v2-de") || strstr(pre, "jina-v2-es") || strstr(pre, "jina-v2-code") ||
      strstr(arch, "nomic-bert-moe") || strstr(arch, "jina-bert-v3")) {
    gint32 id = find_str(tok, "<mask>");
    if (id >= 0)
      tok->attrs[id] |= WH_TOKEN_ATTR_LSTRIP;
  } else if (strstr(name, "phi-3") || strstr(name, "phi3")) {
    for (guint i = 0; i < tok->n; i++)
      if (tok->attrs[i] & special_mask)
        tok->attrs[i] |= WH_TOKEN_ATTR_RSTRIP;
    gint32 id = find_str(tok, "</s>");
    if (id >= 0)
      tok->attrs[id] |= WH_TOKEN_ATTR_RSTRIP;
    static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
    for (gsize k = 0; k < G_N_ELEMENTS(keep); k++) {
      id = find_str(tok, keep[k]);
      if (id >= 0)
        tok->attrs[id] &= ~WH_TOKEN_ATTR_RSTRIP;
    }
  } else if (strstr(name, "modern-bert")) {
    gint32 id = find_str(tok, "[MASK]");
    if (id >= 0)
      tok->attrs[id] |= WH_TOKEN_ATTR_LSTRIP;
  }
}

static gint
special_cmp(gconstpointer a, gconstpointer b, gpointer user_data)
{
  const wh_tokenizer *tok = user_data;
  gint32 x = *(const gint32 *)a, y = *(const gint32 *)b;
  guint32 lx = tok->text_len[x], ly = tok->text_len[y];
  if (lx != ly)
    return lx > ly ? -1 : 1;
  return x < y ? -1 : (x > y);
}

/* §2.3 step 7 and §4: the special set, sorted, and a byte trie over its texts. */
static void
build_special(wh_tokenizer *tok)
{
  const guint32 mask = WH_TOKEN_ATTR_CONTROL | WH_TOKEN_ATTR_USER_DEFINED | WH_TOKEN_ATTR_UNKNOWN;
  guint n = 0;
  for (guint i = 0; i < tok->n; i++)
    if (tok->attrs[i] & mask)
      n++;
  tok->special = g_new(gint32, n ? n : 1);
  n = 0;
  for (guint i = 0; i < tok->n; i++)
    if (tok->attrs[i] & mask)
      tok->special[n++] = (gint32)i;
  tok->n_special = n;
  g_qsort_with_data(tok->special, (gint)n, sizeof(gint32), special_cmp, tok);

  gsize cap = 1;
  for (guint k = 0; k < n; k++)
    cap += tok->text_len[tok->special[k]];
  tok->trie = g_new0(trie_node, cap);
  guint32 used = 1; /* node 0 = root */
  tok->trie[0].special_index = -1;
  memset(tok->trie_root, 0, sizeof tok->trie_root);
  for (guint k = 0; k < n; k++) {
    const guint8 *s = (const guint8 *)tok->arena + tok->text_off[tok->special[k]];
    guint32 len = tok->text_len[tok->special[k]];
    guint32 node = 0;
    for (guint32 j = 0; j < len; j++) {
      guint32 child = node == 0 ? tok->trie_root[s[j]] : tok->trie[node].first_child;
      if (node != 0)
        while (child && tok->trie[child].byte != s[j])
          child = tok->trie[child].next_sibling;
      if (!child) {
        child = used++;
        tok->trie[child].byte = s[j];
        tok->trie[child].special_index = -1;
        if (node == 0) {
          tok->trie_root[s[j]] = child;
        } else {
          tok->trie[child].next_sibling = tok->trie[node].first_child;
          tok->trie[node].first_child = child;
        }
      }
      node = child;
    }
    if (node != 0)
      tok->trie[node].special_index = (gint32)k;
  }
}

static void
build_pieces(wh_tokenizer *tok)
{
  GString *all = g_string_sized_new(tok->n * 4);
  tok->piece_off = g_new(guint32, tok->n);
  tok->piece_len = g_new(guint32, tok->n);
  for (guint i = 0; i < tok->n; i++) {
    const char *t = tok->arena + tok->text_off[i];
    gsize len = tok->text_len[i];
    guint32 a = tok->attrs[i];
    gsize start = all->len;
    if (a & (WH_TOKEN_ATTR_CONTROL | WH_TOKEN_ATTR_UNKNOWN | WH_TOKEN_ATTR_USER_DEFINED)) {
      g_string_append_len(all, t, len);
    } else if (a & WH_TOKEN_ATTR_NORMAL) {
      if (tok->family == WH_TOKENIZER_SPM || tok->escape_ws) {
        for (gsize j = 0; j < len; j++) {
          if (j + 3 <= len && memcmp(t + j, "\xe2\x96\x81", 3) == 0) {
            g_string_append_c(all, ' ');
            j += 2;
          } else {
            g_string_append_c(all, t[j]);
          }
        }
      } else {
        for (gsize j = 0; j < len;) {
          gsize adv;
          gunichar c = wh_uc_decode_one((const guint8 *)t + j, len - j, &adv);
          j += adv;
          int b = wh_uc_cp_to_byte(c);
          if (b >= 0) {
            g_string_append_c(all, (char)b);
          } else {
            GString *tmp = g_string_new(NULL);
            wh_uc_append_utf8(tmp, c);
            g_string_append(all, "[UNK_BYTE_0x");
            for (gsize q = 0; q < tmp->len; q++)
              g_string_append_printf(all, "%02x", (guint8)tmp->str[q]);
            g_string_append_len(all, t, len);
            g_string_append_c(all, ']');
            g_string_free(tmp, TRUE);
          }
        }
      }
    } else if (a & WH_TOKEN_ATTR_BYTE) {
      if (len >= 5) {
        int hi = g_ascii_xdigit_value(t[3]), lo = g_ascii_xdigit_value(t[4]);
        if (hi >= 0 && lo >= 0)
          g_string_append_c(all, (char)(hi * 16 + lo));
      }
    }
    tok->piece_off[i] = (guint32)start;
    tok->piece_len[i] = (guint32)(all->len - start);
  }
  tok->piece_arena = g_string_free(all, FALSE);
}

static void
build_byte_tables(wh_tokenizer *tok)
{
  for (guint b = 0; b < 256; b++) {
    char hex[8];
    g_snprintf(hex, sizeof hex, "<0x%02X>", b);
    tok->hex_tok[b] = find_str(tok, hex);
    char one = (char)b;
    tok->raw_tok[b] = wh_tokenizer_find(tok, &one, 1);
    GString *s = g_string_new(NULL);
    wh_uc_append_utf8(s, wh_uc_byte_to_cp((guint8)b));
    memcpy(tok->byte_enc[b], s->str, s->len + 1);
    g_string_free(s, TRUE);
  }
}

wh_tokenizer *
wh_tokenizer_new_from_vocab(const wh_tokenizer_vocab *v, GError **error)
{
  if (v->model == NULL) {
    g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_MISSING,
                "tokenizer.ggml.model is missing: the file has no tokenizer");
    return NULL;
  }
  g_autoptr(wh_tokenizer) tok = g_new0(wh_tokenizer, 1);
  tok->model_name = g_strdup(v->model);
  for (int k = 0; k < N_IDS; k++)
    tok->ids[k] = WH_TOKEN_NONE;

  const char *pre_name = v->pre;
  if (strcmp(v->model, "llama") == 0) {
    tok->family = WH_TOKENIZER_SPM;
    tok->ids[ID_BOS] = 1;
    tok->ids[ID_EOS] = 2;
    tok->ids[ID_UNK] = 0;
    tok->add_bos = TRUE;
    tok->add_space_prefix = TRUE;
  } else if (strcmp(v->model, "gpt2") == 0 || strcmp(v->model, "gemma4") == 0) {
    gboolean gemma4 = strcmp(v->model, "gemma4") == 0;
    tok->family = WH_TOKENIZER_BPE;
    if (!gemma4)
      tok->ids[ID_BOS] = tok->ids[ID_EOS] = 11;
    tok->clean_spaces = TRUE;
    tok->byte_encode = TRUE;
    if (gemma4)
      pre_name = "gemma4";
    switch (wh_pretok_lookup(pre_name, &tok->pre)) {
    case WH_PRETOK_FOUND:
      break;
    case WH_PRETOK_UNSUPPORTED:
      g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_UNSUPPORTED,
                  "tokenizer.ggml.pre \"%s\" names a pre-tokenizer Whittle does not support "
                  "yet (it needs a general regex engine)",
                  pre_name);
      return NULL;
    default:
      g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_INVALID,
                  "tokenizer.ggml.pre \"%s\" is not a known pre-tokenizer name", pre_name);
      return NULL;
    }
    g_autofree char *rx_error = NULL;
    if (!wh_pretok_info_compile(&tok->pre, &rx_error)) {
      g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_UNSUPPORTED,
                  "tokenizer.ggml.pre \"%s\": a pattern of pre-tokenizer %s cannot be "
                  "evaluated (%s)",
                  pre_name, tok->pre.type_name, rx_error);
      return NULL;
    }
    if (tok->pre.add_bos >= 0)
      tok->add_bos = tok->pre.add_bos;
    if (tok->pre.clean_spaces >= 0)
      tok->clean_spaces = tok->pre.clean_spaces;
    if (tok->pre.add_sep >= 0)
      tok->add_sep = tok->pre.add_sep;
    if (tok->pre.bos_none)
      tok->ids[ID_BOS] = WH_TOKEN_NONE;
    tok->ignore_merges = tok->pre.ignore_merges;
    tok->escape_ws = tok->pre.escape_whitespace;
    tok->byte_encode = !tok->pre.no_byte_encoding;
    tok->gemma4 = tok->pre.gemma4;
  } else {
    static const char *const known[] = {"bert",       "t5",       "rwkv", "plamo2", "hybriddna",
                                        "whitespace", "no_vocab", "none", "test"};
    for (gsize k = 0; k < G_N_ELEMENTS(known); k++)
      if (strcmp(v->model, known[k]) == 0) {
        g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_UNSUPPORTED,
                    "tokenizer.ggml.model \"%s\" is a tokenizer family Whittle does not "
                    "support (only \"llama\", \"gpt2\" and \"gemma4\")",
                    v->model);
        return NULL;
      }
    g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_INVALID,
                "tokenizer.ggml.model \"%s\" is not a known tokenizer family", v->model);
    return NULL;
  }

  if (v->n_tokens == 0 || v->tokens == NULL) {
    g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_MISSING,
                "tokenizer.ggml.tokens is missing or empty");
    return NULL;
  }
  if (v->n_tokens > G_MAXINT32) {
    g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_INVALID,
                "tokenizer.ggml.tokens has %u entries, more than token ids can address",
                v->n_tokens);
    return NULL;
  }
  if (!load_tokens(tok, v, error))
    return NULL;
  if (tok->family == WH_TOKENIZER_BPE) {
    if (v->merges == NULL) {
      g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_MISSING,
                  "tokenizer.ggml.merges is missing; a BPE (\"%s\") vocabulary needs its merge "
                  "rules",
                  v->model);
      return NULL;
    }
    load_merges(tok, v);
  }

  if (v->add_space_prefix >= 0)
    tok->add_space_prefix = v->add_space_prefix;
  /* §1 rule 2: defaults out of range become NONE, then keys in range replace them. */
  for (int k = 0; k < N_IDS; k++)
    if (tok->ids[k] >= (gint32)tok->n)
      tok->ids[k] = WH_TOKEN_NONE;
  const gint64 keyed[N_IDS] = {
      v->bos_id,     v->eos_id,     v->eot_id,     v->eom_id,     v->unk_id,
      v->sep_id,     v->pad_id,     v->mask_id,    v->fim_pre_id, v->fim_suf_id,
      v->fim_mid_id, v->fim_pad_id, v->fim_rep_id, v->fim_sep_id,
  };
  for (int k = 0; k < N_IDS; k++) {
    if (keyed[k] < 0)
      continue;
    if (keyed[k] < (gint64)tok->n)
      tok->ids[k] = (gint32)keyed[k];
    else
      g_debug("tokenizer: special id %" G_GINT64_FORMAT " is out of range (n_vocab %u); "
              "ignored",
              keyed[k], tok->n);
  }
  if (v->add_bos >= 0)
    tok->add_bos = v->add_bos;
  if (v->add_eos >= 0)
    tok->add_eos = v->add_eos;
  if (v->add_sep >= 0)
    tok->add_sep = v->add_sep;
  if (tok->gemma4)
    tok->add_bos = TRUE;

  if (tok->family == WH_TOKENIZER_SPM) {
    for (guint i = 0; i < tok->n; i++) {
      const guint8 *t = (const guint8 *)tok->arena + tok->text_off[i];
      for (guint32 j = 0; j + 1 < tok->text_len[i]; j++) {
        guint pair = (guint)t[j] << 8 | t[j + 1];
        tok->spm_pairs[pair >> 3] |= 1u << (pair & 7);
      }
    }
  }
  fixup_attributes(tok, v);
  build_special(tok);
  build_pieces(tok);
  build_byte_tables(tok);
  return g_steal_pointer(&tok);
}

/* --- reading the GGUF keys --------------------------------------------------------------- */

/* Scalar keys must have exactly the listed type (§1). Returns FALSE with @error set when the
 * key exists with another type; *present tells whether it exists. */
static gboolean
gguf_scalar(const wh_gguf *g, const char *key, wh_gguf_value_type want, gboolean *present,
            GError **error)
{
  const wh_gguf_value *val = wh_gguf_find_value(g, key);
  *present = val != NULL;
  if (val && wh_gguf_value_get_type(val) != want) {
    g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_INVALID,
                "%s: metadata key %s has type %s, expected %s", wh_gguf_path(g), key,
                wh_gguf_value_type_name(wh_gguf_value_get_type(val)),
                wh_gguf_value_type_name(want));
    return FALSE;
  }
  return TRUE;
}

static gboolean
gguf_id(const wh_gguf *g, const char *key, gint64 *out, GError **error)
{
  gboolean present;
  guint64 u;
  if (!gguf_scalar(g, key, WH_GGUF_UINT32, &present, error))
    return FALSE;
  if (present && wh_gguf_get_uint(g, key, &u))
    *out = (gint64)u;
  return TRUE;
}

static gboolean
gguf_flag(const wh_gguf *g, const char *key, gint8 *out, GError **error)
{
  gboolean present, b;
  if (!gguf_scalar(g, key, WH_GGUF_BOOL, &present, error))
    return FALSE;
  if (present && wh_gguf_get_bool(g, key, &b))
    *out = b ? 1 : 0;
  return TRUE;
}

static gboolean
gguf_string_array(const wh_gguf *g, const char *key, gboolean required, guint *n_out,
                  const char ***texts, gsize **lens, GError **error)
{
  wh_gguf_array arr;
  if (!wh_gguf_get_array(g, key, &arr)) {
    if (wh_gguf_find_value(g, key) != NULL) {
      g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_INVALID,
                  "%s: metadata key %s is not an array of strings", wh_gguf_path(g), key);
      return FALSE;
    }
    if (required) {
      g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_MISSING,
                  "%s: metadata key %s is missing; the file has no usable vocabulary",
                  wh_gguf_path(g), key);
      return FALSE;
    }
    return TRUE;
  }
  if (arr.type != WH_GGUF_STRING || arr.n > G_MAXINT32) {
    g_set_error(
        error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_INVALID,
        "%s: metadata key %s must be an array of at most 2^31 strings (found %s[%" G_GUINT64_FORMAT
        "])",
        wh_gguf_path(g), key, wh_gguf_value_type_name(arr.type), arr.n);
    return FALSE;
  }
  *n_out = (guint)arr.n;
  *texts = g_new(const char *, arr.n ? arr.n : 1);
  *lens = g_new(gsize, arr.n ? arr.n : 1);
  for (guint64 i = 0; i < arr.n; i++) {
    (*texts)[i] = wh_gguf_array_get_string(&arr, i, &(*lens)[i]);
    if ((*texts)[i] == NULL) {
      (*texts)[i] = "";
      (*lens)[i] = 0;
    }
  }
  return TRUE;
}

wh_tokenizer *
wh_tokenizer_new_from_gguf(const wh_gguf *g, GError **error)
{
  wh_tokenizer_vocab v;
  wh_tokenizer_vocab_init(&v);
  wh_tokenizer *tok = NULL;
  const char **tokens = NULL, **merges = NULL;
  gsize *token_lens = NULL, *merge_lens = NULL;
  float *scores = NULL;
  gint32 *types = NULL;
  gboolean present;
  guint n_tokens = 0, n_merges = 0;

  if (!gguf_scalar(g, "tokenizer.ggml.model", WH_GGUF_STRING, &present, error))
    goto out;
  v.model = wh_gguf_get_string(g, "tokenizer.ggml.model");
  if (v.model == NULL) {
    g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_MISSING,
                "%s: metadata key tokenizer.ggml.model is missing: the file has no tokenizer",
                wh_gguf_path(g));
    goto out;
  }
  if (!gguf_scalar(g, "tokenizer.ggml.pre", WH_GGUF_STRING, &present, error))
    goto out;
  v.pre = wh_gguf_get_string(g, "tokenizer.ggml.pre");
  v.general_name = wh_gguf_get_string(g, "general.name");
  v.general_architecture = wh_gguf_get_string(g, "general.architecture");

  if (!gguf_string_array(g, "tokenizer.ggml.tokens", TRUE, &n_tokens, &tokens, &token_lens, error))
    goto out;
  v.n_tokens = n_tokens;
  v.tokens = tokens;
  v.token_lens = token_lens;

  wh_gguf_array arr;
  if (wh_gguf_get_array(g, "tokenizer.ggml.scores", &arr)) {
    if ((arr.type != WH_GGUF_FLOAT32 && arr.type != WH_GGUF_INT32) || arr.n < n_tokens) {
      g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_INVALID,
                  "%s: tokenizer.ggml.scores must be FLOAT32 or INT32 with at least %u "
                  "entries (found %s[%" G_GUINT64_FORMAT "])",
                  wh_gguf_path(g), n_tokens, wh_gguf_value_type_name(arr.type), arr.n);
      goto out;
    }
    scores = g_new(float, n_tokens);
    for (guint i = 0; i < n_tokens; i++)
      scores[i] = (float)wh_gguf_array_get_float(&arr, i);
    v.scores = scores;
  }
  if (wh_gguf_get_array(g, "tokenizer.ggml.token_type", &arr)) {
    if (arr.type != WH_GGUF_INT32 || arr.n < n_tokens) {
      g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_INVALID,
                  "%s: tokenizer.ggml.token_type must be INT32 with at least %u entries "
                  "(found %s[%" G_GUINT64_FORMAT "])",
                  wh_gguf_path(g), n_tokens, wh_gguf_value_type_name(arr.type), arr.n);
      goto out;
    }
    types = g_new(gint32, n_tokens);
    for (guint i = 0; i < n_tokens; i++)
      types[i] = (gint32)wh_gguf_array_get_int(&arr, i);
    v.token_types = types;
  }
  if (!gguf_string_array(g, "tokenizer.ggml.merges", FALSE, &n_merges, &merges, &merge_lens, error))
    goto out;
  v.n_merges = n_merges;
  v.merges = merges;
  v.merge_lens = merge_lens;

  static const struct {
    const char *key;
    gsize offset;
  } ids[] = {
      {"tokenizer.ggml.bos_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, bos_id)},
      {"tokenizer.ggml.eos_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, eos_id)},
      {"tokenizer.ggml.eot_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, eot_id)},
      {"tokenizer.ggml.eom_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, eom_id)},
      {"tokenizer.ggml.unknown_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, unk_id)},
      {"tokenizer.ggml.seperator_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, sep_id)},
      {"tokenizer.ggml.padding_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, pad_id)},
      {"tokenizer.ggml.mask_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, mask_id)},
      {"tokenizer.ggml.fim_pre_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, fim_pre_id)},
      {"tokenizer.ggml.fim_suf_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, fim_suf_id)},
      {"tokenizer.ggml.fim_mid_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, fim_mid_id)},
      {"tokenizer.ggml.fim_pad_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, fim_pad_id)},
      {"tokenizer.ggml.fim_rep_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, fim_rep_id)},
      {"tokenizer.ggml.fim_sep_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, fim_sep_id)},
      /* deprecated aliases, read after the new names so they win */
      {"tokenizer.ggml.prefix_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, fim_pre_id)},
      {"tokenizer.ggml.suffix_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, fim_suf_id)},
      {"tokenizer.ggml.middle_token_id", G_STRUCT_OFFSET(wh_tokenizer_vocab, fim_mid_id)},
  };
  for (gsize k = 0; k < G_N_ELEMENTS(ids); k++)
    if (!gguf_id(g, ids[k].key, (gint64 *)((char *)&v + ids[k].offset), error))
      goto out;
  if (!gguf_flag(g, "tokenizer.ggml.add_bos_token", &v.add_bos, error) ||
      !gguf_flag(g, "tokenizer.ggml.add_eos_token", &v.add_eos, error) ||
      !gguf_flag(g, "tokenizer.ggml.add_sep_token", &v.add_sep, error) ||
      !gguf_flag(g, "tokenizer.ggml.add_space_prefix", &v.add_space_prefix, error))
    goto out;

  tok = wh_tokenizer_new_from_vocab(&v, error);
  if (tok == NULL && error && *error)
    g_prefix_error(error, "%s: ", wh_gguf_path(g));
out:
  g_free(tokens);
  g_free(token_lens);
  g_free(merges);
  g_free(merge_lens);
  g_free(scores);
  g_free(types);
  return tok;
}

/* --- the merge loop (SPM §7.1, BPE §6.2) ------------------------------------------------- */

typedef struct {
  guint32 start, len;
  gint32 prev, next;
} symbol;

typedef struct {
  guint64 key; /* priority << 32 | left symbol index: lower first, ties to the leftmost */
  guint32 len; /* byte length of the pair when it was queued */
} candidate;

static inline gboolean
cand_before(const candidate *a, const candidate *b)
{
  return a->key < b->key;
}

/* A 32-bit key that sorts higher scores first (float order; -0 counts as +0). */
static inline guint32
score_key(float score)
{
  union {
    float f;
    guint32 u;
  } v = {score == 0.0f ? 0.0f : score};
  guint32 asc = (v.u & 0x80000000u) ? ~v.u : (v.u | 0x80000000u);
  return ~asc;
}

static void
heap_push(GArray *h, candidate c)
{
  g_array_append_val(h, c);
  candidate *d = (candidate *)h->data;
  guint i = h->len - 1;
  while (i > 0) {
    guint p = (i - 1) / 2;
    if (!cand_before(&d[i], &d[p]))
      break;
    candidate t = d[i];
    d[i] = d[p];
    d[p] = t;
    i = p;
  }
}

static candidate
heap_pop(GArray *h)
{
  candidate *d = (candidate *)h->data;
  candidate top = d[0];
  d[0] = d[h->len - 1];
  g_array_set_size(h, h->len - 1);
  guint n = h->len, i = 0;
  for (;;) {
    guint l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && cand_before(&d[l], &d[m]))
      m = l;
    if (r < n && cand_before(&d[r], &d[m]))
      m = r;
    if (m == i)
      break;
    candidate t = d[i];
    d[i] = d[m];
    d[m] = t;
    i = m;
  }
  return top;
}

/* Per-call scratch space (a tokenizer is shared between threads; this is not). */
typedef struct {
  GArray *syms; /* symbol */
  GArray *heap; /* candidate */
  GArray *cps;  /* guint32 */
  GByteArray *flags;
  GArray *ends, *scratch; /* gsize */
  GString *buf;
  GArray *frags, *frags_tmp;
  guint8 *present;
  /* BPE words already seen in this call: GBytes word -> (offset << 32 | count) into
   * cache_ids. A word's ids depend on the word alone, so repeats skip the merge loop. */
  GHashTable *cache;
  GArray *cache_ids; /* gint32 */
} session;

static void
session_init(session *s, const wh_tokenizer *tok)
{
  s->syms = g_array_new(FALSE, FALSE, sizeof(symbol));
  s->heap = g_array_new(FALSE, FALSE, sizeof(candidate));
  s->cps = g_array_new(FALSE, FALSE, sizeof(guint32));
  s->flags = g_byte_array_new();
  s->ends = g_array_new(FALSE, FALSE, sizeof(gsize));
  s->scratch = g_array_new(FALSE, FALSE, sizeof(gsize));
  s->buf = g_string_new(NULL);
  s->frags = NULL;
  s->frags_tmp = NULL;
  s->present = g_new0(guint8, tok->n_special ? tok->n_special : 1);
  s->cache = NULL;
  s->cache_ids = NULL;
}

static void
session_clear(session *s)
{
  g_array_free(s->syms, TRUE);
  g_array_free(s->heap, TRUE);
  g_array_free(s->cps, TRUE);
  g_byte_array_free(s->flags, TRUE);
  g_array_free(s->ends, TRUE);
  g_array_free(s->scratch, TRUE);
  g_string_free(s->buf, TRUE);
  if (s->frags)
    g_array_free(s->frags, TRUE);
  if (s->frags_tmp)
    g_array_free(s->frags_tmp, TRUE);
  g_free(s->present);
  if (s->cache) {
    g_hash_table_destroy(s->cache);
    g_array_free(s->cache_ids, TRUE);
  }
}

/* Cuts @text into one symbol per character (lead-byte length, clipped). */
static void
make_symbols(GArray *syms, const char *text, gsize len)
{
  g_array_set_size(syms, 0);
  gsize pos = 0;
  gint32 i = 0;
  while (pos < len) {
    gsize l = MIN((gsize)wh_uc_lead_len((guint8)text[pos]), len - pos);
    symbol s = {(guint32)pos, (guint32)l, i - 1, i + 1};
    g_array_append_val(syms, s);
    pos += l;
    i++;
  }
  if (syms->len)
    g_array_index(syms, symbol, syms->len - 1).next = -1;
}

typedef enum { MERGE_SPM, MERGE_BPE } merge_mode;

static void
try_pair(const wh_tokenizer *tok, merge_mode mode, const char *text, GArray *syms, GArray *heap,
         gint32 left, gint32 right)
{
  if (left < 0 || right < 0)
    return;
  const symbol *l = &g_array_index(syms, symbol, left);
  const symbol *r = &g_array_index(syms, symbol, right);
  candidate c = {0, l->len + r->len};
  guint32 prio;
  if (mode == MERGE_SPM) {
    gint32 id = wh_tokenizer_find(tok, text + l->start, c.len);
    if (id < 0)
      return;
    prio = score_key(tok->scores[id]);
  } else {
    gint32 rank = merge_rank(tok, text + l->start, l->len, text + r->start, r->len);
    if (rank < 0)
      return;
    prio = (guint32)rank;
  }
  c.key = ((guint64)prio << 32) | (guint32)left;
  heap_push(heap, c);
}

/* Shape: one SPM text fragment or one BPE word, symbols = characters; runs until no adjacent
 * pair qualifies. The surviving symbols are linked from index 0. */
static void
merge_loop(const wh_tokenizer *tok, merge_mode mode, const char *text, GArray *syms, GArray *heap)
{
  g_array_set_size(heap, 0);
  for (guint i = 0; i + 1 < syms->len; i++)
    try_pair(tok, mode, text, syms, heap, (gint32)i, (gint32)i + 1);
  while (heap->len) {
    candidate c = heap_pop(heap);
    guint32 left = (guint32)c.key;
    symbol *sy = (symbol *)syms->data;
    symbol *l = &sy[left];
    if (l->len == 0 || l->next < 0 || l->len + sy[l->next].len != c.len)
      continue; /* stale */
    gint32 ri = l->next;
    symbol *r = &sy[ri];
    l->len += r->len;
    r->len = 0;
    l->next = r->next;
    if (r->next >= 0)
      sy[r->next].prev = (gint32)left;
    try_pair(tok, mode, text, syms, heap, l->prev, (gint32)left);
    try_pair(tok, mode, text, syms, heap, (gint32)left, sy[left].next);
  }
}

static inline void
push_id(GArray *out, gint32 id)
{
  g_array_append_val(out, id);
}

static gboolean spm_region(const wh_tokenizer *tok, session *s, const char *text, gsize len,
                           GArray *out, GError **error);

/* §7.1 on one text fragment, with the space prefix when @prefix. */
static gboolean
spm_fragment(const wh_tokenizer *tok, session *s, const char *text, gsize len, gboolean prefix,
             GArray *out, GError **error)
{
  GString *buf = s->buf;
  g_string_truncate(buf, 0);
  if (prefix)
    g_string_append(buf, "\xe2\x96\x81");
  for (gsize i = 0; i < len; i++) {
    if (text[i] == ' ')
      g_string_append_len(buf, "\xe2\x96\x81", 3);
    else
      g_string_append_c(buf, text[i]);
  }
  /* Shape: cut the fragment at character boundaries no token spans, merge each piece. */
  const guint8 *b = (const guint8 *)buf->str;
  gsize start = 0, p = 0;
  while (p < buf->len) {
    gsize q = p + MIN((gsize)wh_uc_lead_len(b[p]), buf->len - p);
    guint pair = q < buf->len ? ((guint)b[q - 1] << 8 | b[q]) : 0;
    if (q < buf->len && !(tok->spm_pairs[pair >> 3] & (1u << (pair & 7)))) {
      if (!spm_region(tok, s, buf->str + start, q - start, out, error))
        return FALSE;
      start = q;
    }
    p = q;
  }
  if (buf->len > start && !spm_region(tok, s, buf->str + start, buf->len - start, out, error))
    return FALSE;
  return TRUE;
}

/* §7.1 steps 2-4 on @len bytes of already escaped text. */
static gboolean
spm_region(const wh_tokenizer *tok, session *s, const char *text, gsize len, GArray *out,
           GError **error)
{
  make_symbols(s->syms, text, len);
  merge_loop(tok, MERGE_SPM, text, s->syms, s->heap);
  const symbol *sy = (const symbol *)s->syms->data;
  for (gint32 i = s->syms->len ? 0 : -1; i >= 0; i = sy[i].next) {
    gint32 id = wh_tokenizer_find(tok, text + sy[i].start, sy[i].len);
    if (id >= 0) {
      push_id(out, id);
      continue;
    }
    for (guint32 k = 0; k < sy[i].len; k++) {
      guint8 b = (guint8)text[sy[i].start + k];
      id = tok->hex_tok[b] >= 0 ? tok->hex_tok[b] : tok->raw_tok[b];
      if (id < 0) {
        g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_TOKENIZE,
                    "the vocabulary has no token for byte 0x%02X (neither <0x%02X> nor the "
                    "byte itself), so this text cannot be tokenized",
                    b, b);
        return FALSE;
      }
      push_id(out, id);
    }
  }
  return TRUE;
}

/* §6.2 on one (byte-encoded) word. */
static void
bpe_word(const wh_tokenizer *tok, session *s, const char *w, gsize len, GArray *out)
{
  if (tok->ignore_merges) {
    gint32 id = wh_tokenizer_find(tok, w, len);
    if (id >= 0) {
      push_id(out, id);
      return;
    }
  }
  if (tok->gemma4) {
    gsize k = 0;
    while (k < len && w[k] == '\n')
      k++;
    gint32 id = k == len ? wh_tokenizer_find(tok, w, len) : WH_TOKEN_NONE;
    if (id >= 0) {
      push_id(out, id);
      return;
    }
  }
  make_symbols(s->syms, w, len);
  merge_loop(tok, MERGE_BPE, w, s->syms, s->heap);
  const symbol *sy = (const symbol *)s->syms->data;
  for (gint32 i = s->syms->len ? 0 : -1; i >= 0; i = sy[i].next) {
    gint32 id = wh_tokenizer_find(tok, w + sy[i].start, sy[i].len);
    if (id >= 0) {
      push_id(out, id);
      continue;
    }
    /* Not a token: one-byte tokens, or nothing for bytes that have none (§6.2 step 5). */
    for (guint32 k = 0; k < sy[i].len; k++) {
      guint8 b = (guint8)w[sy[i].start + k];
      id = tok->byte_encode ? tok->raw_tok[b] : tok->hex_tok[b];
      if (id >= 0)
        push_id(out, id);
    }
  }
}

#define CACHE_MAX_WORD 64 /* longer words are rare and not worth keeping */
#define CACHE_MAX_ENTRIES 65536

static void
bpe_word_cached(const wh_tokenizer *tok, session *s, const char *w, gsize len, GArray *out)
{
  if (len > CACHE_MAX_WORD) {
    bpe_word(tok, s, w, len, out);
    return;
  }
  if (s->cache == NULL) {
    s->cache =
        g_hash_table_new_full(g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref, g_free);
    s->cache_ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  }
  GBytes *key = g_bytes_new_static(w, len);
  gpointer val;
  gboolean hit = g_hash_table_lookup_extended(s->cache, key, NULL, &val);
  g_bytes_unref(key);
  if (hit) {
    guint64 packed = *(const guint64 *)val;
    g_array_append_vals(out, &g_array_index(s->cache_ids, gint32, packed >> 32),
                        (guint)(packed & G_MAXUINT32));
    return;
  }
  guint start = out->len;
  bpe_word(tok, s, w, len, out);
  if (g_hash_table_size(s->cache) >= CACHE_MAX_ENTRIES)
    return;
  guint64 *packed = g_new(guint64, 1);
  *packed = ((guint64)s->cache_ids->len << 32) | (out->len - start);
  g_array_append_vals(s->cache_ids, &g_array_index(out, gint32, start), out->len - start);
  g_hash_table_insert(s->cache, g_bytes_new(w, len), packed);
}

/* §6.1 + §6.2 on one text fragment. */
static void
bpe_fragment(const wh_tokenizer *tok, session *s, const char *text, gsize len, GArray *out)
{
  g_array_set_size(s->cps, 0);
  wh_uc_decode(text, len, s->cps);
  guint32 *cp = (guint32 *)s->cps->data;
  gsize n = s->cps->len;
  g_byte_array_set_size(s->flags, n);
  for (gsize i = 0; i < n; i++) {
    if (tok->escape_ws && cp[i] == ' ')
      cp[i] = 0x2581;
    s->flags->data[i] = wh_uc_flags(cp[i]);
  }
  wh_pretok_split(&tok->pre, cp, s->flags->data, n, s->ends, s->scratch);
  GString *word = g_string_new(NULL);
  GString *tmp = g_string_new(NULL);
  gsize a = 0;
  for (guint k = 0; k < s->ends->len; k++) {
    gsize b = g_array_index(s->ends, gsize, k);
    g_string_truncate(word, 0);
    for (gsize i = a; i < b; i++) {
      if (!tok->byte_encode) {
        wh_uc_append_utf8(word, cp[i]);
        continue;
      }
      g_string_truncate(tmp, 0);
      wh_uc_append_utf8(tmp, cp[i]);
      for (gsize q = 0; q < tmp->len; q++)
        g_string_append(word, tok->byte_enc[(guint8)tmp->str[q]]);
    }
    bpe_word_cached(tok, s, word->str, word->len, out);
    a = b;
  }
  g_string_free(word, TRUE);
  g_string_free(tmp, TRUE);
}

/* --- special-token partitioning (§4) ----------------------------------------------------- */

typedef struct {
  gint32 id; /* WH_TOKEN_NONE for text */
  gsize off, len;
} fragment;

static inline gboolean
c_isspace(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Marks in s->present the special texts that occur somewhere in @text (one trie walk per
 * position; its depth is bounded by the longest special text that matches there). */
static void
scan_present(const wh_tokenizer *tok, session *s, const char *text, gsize len)
{
  const guint8 *t = (const guint8 *)text;
  for (gsize i = 0; i < len; i++) {
    guint32 node = tok->trie_root[t[i]];
    gsize j = i + 1;
    while (node) {
      if (tok->trie[node].special_index >= 0)
        s->present[tok->trie[node].special_index] = 1;
      if (j >= len)
        break;
      guint32 c = tok->trie[node].first_child;
      while (c && tok->trie[c].byte != t[j])
        c = tok->trie[c].next_sibling;
      node = c;
      j++;
    }
  }
}

static void
partition(const wh_tokenizer *tok, session *s, const char *text, gsize len, gboolean parse_special)
{
  s->frags = g_array_new(FALSE, FALSE, sizeof(fragment));
  s->frags_tmp = g_array_new(FALSE, FALSE, sizeof(fragment));
  if (len == 0)
    return;
  fragment whole = {WH_TOKEN_NONE, 0, len};
  g_array_append_val(s->frags, whole);
  if (tok->n_special == 0)
    return;
  scan_present(tok, s, text, len);
  for (guint k = 0; k < tok->n_special; k++) {
    if (!s->present[k])
      continue;
    gint32 id = tok->special[k];
    guint32 attr = tok->attrs[id];
    if (!parse_special && (attr & (WH_TOKEN_ATTR_CONTROL | WH_TOKEN_ATTR_UNKNOWN)))
      continue;
    const char *needle = tok->arena + tok->text_off[id];
    gsize nlen = tok->text_len[id];
    GArray *dst = s->frags_tmp;
    g_array_set_size(dst, 0);
    for (guint f = 0; f < s->frags->len; f++) {
      fragment fr = g_array_index(s->frags, fragment, f);
      if (fr.id >= 0) {
        g_array_append_val(dst, fr);
        continue;
      }
      gsize off = fr.off, end = fr.off + fr.len;
      while (off < end) {
        const char *m = find_bytes(text + off, end - off, needle, nlen);
        if (m == NULL)
          break;
        gsize mpos = m - text, bend = mpos;
        if (attr & WH_TOKEN_ATTR_LSTRIP)
          while (bend > off && c_isspace(text[bend - 1]))
            bend--;
        if (bend > off) {
          fragment before = {WH_TOKEN_NONE, off, bend - off};
          g_array_append_val(dst, before);
        }
        fragment tk = {id, mpos, nlen};
        g_array_append_val(dst, tk);
        off = mpos + nlen;
        if (attr & WH_TOKEN_ATTR_RSTRIP)
          while (off < end && c_isspace(text[off]))
            off++;
      }
      if (off < end) {
        fragment after = {WH_TOKEN_NONE, off, end - off};
        g_array_append_val(dst, after);
      }
    }
    s->frags_tmp = s->frags;
    s->frags = dst;
  }
}

/* --- tokenize (§8) ----------------------------------------------------------------------- */

gint
wh_tokenizer_tokenize(const wh_tokenizer *tok, const char *text, gsize len, gboolean add_special,
                      gboolean parse_special, GArray *out_ids, GError **error)
{
  g_return_val_if_fail(tok != NULL && out_ids != NULL, -1);
  g_return_val_if_fail(text != NULL || len == 0, -1);
  guint start = out_ids->len;
  gboolean ok = TRUE;
  session s;
  session_init(&s, tok);
  partition(tok, &s, text, len, parse_special);

  if (add_special && tok->add_bos) {
    if (tok->ids[ID_BOS] < 0) {
      g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_TOKENIZE,
                  "the vocabulary asks for a BOS token but defines none");
      ok = FALSE;
      goto out;
    }
    push_id(out_ids, tok->ids[ID_BOS]);
  }
  gboolean prev_special = TRUE;
  for (guint f = 0; f < s.frags->len; f++) {
    const fragment *fr = &g_array_index(s.frags, fragment, f);
    if (fr->id >= 0) {
      push_id(out_ids, fr->id);
      prev_special = TRUE;
      continue;
    }
    if (tok->family == WH_TOKENIZER_SPM) {
      if (!spm_fragment(tok, &s, text + fr->off, fr->len, tok->add_space_prefix && prev_special,
                        out_ids, error)) {
        ok = FALSE;
        goto out;
      }
    } else {
      bpe_fragment(tok, &s, text + fr->off, fr->len, out_ids);
    }
    prev_special = FALSE;
  }
  if (add_special && tok->add_eos) {
    if (tok->ids[ID_EOS] < 0) {
      g_set_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_TOKENIZE,
                  "the vocabulary asks for an EOS token but defines none");
      ok = FALSE;
      goto out;
    }
    push_id(out_ids, tok->ids[ID_EOS]);
  }
out:
  session_clear(&s);
  if (!ok) {
    g_array_set_size(out_ids, start);
    return -1;
  }
  return (gint)(out_ids->len - start);
}

/* --- detokenization (§10) ---------------------------------------------------------------- */

gsize
wh_tokenizer_token_to_piece(const wh_tokenizer *tok, gint32 id, gboolean special, guint lstrip,
                            GString *out)
{
  if (id < 0 || (guint)id >= tok->n)
    return 0;
  if (!special && (tok->attrs[id] & (WH_TOKEN_ATTR_CONTROL | WH_TOKEN_ATTR_UNKNOWN)))
    return 0;
  const char *p = tok->piece_arena + tok->piece_off[id];
  gsize n = tok->piece_len[id];
  while (lstrip > 0 && n > 0 && *p == ' ') {
    p++;
    n--;
    lstrip--;
  }
  g_string_append_len(out, p, n);
  return n;
}

/* §10.2 step 5: the three clean-up passes, in place; the first byte is always kept. */
static gsize
clean_spaces(char *b, gsize len)
{
  if (len == 0)
    return 0;
  gsize w = 1;
  for (gsize r = 1; r < len; r++) {
    char x = b[r];
    if ((x == '?' || x == '!' || x == '.' || x == ',') && w > 1 && b[w - 1] == ' ')
      w--;
    b[w++] = x;
  }
  len = w;
  w = 1;
  for (gsize r = 1; r < len; r++) {
    char x = b[r];
    if (x == '\'' && r + 1 < len && b[w - 1] == ' ' && b[r + 1] == ' ') {
      if (w > 1)
        w--;
      b[w++] = x;
      r++; /* the following space goes too, and is not a "space before" afterwards */
      continue;
    }
    b[w++] = x;
  }
  len = w;
  w = 1;
  for (gsize r = 1; r < len; r++) {
    char x = b[r];
    if (x == '\'' && w > 1 && b[w - 1] == ' ') {
      gboolean one = r + 1 < len && (b[r + 1] == 's' || b[r + 1] == 'm');
      gboolean two = r + 2 < len &&
                     ((b[r + 1] == 'r' && b[r + 2] == 'e') || (b[r + 1] == 'v' && b[r + 2] == 'e'));
      if (one || two)
        w--;
    }
    b[w++] = x;
  }
  return w;
}

char *
wh_tokenizer_detokenize(const wh_tokenizer *tok, const gint32 *ids, gsize n,
                        gboolean remove_special, gboolean unparse_special, gsize *out_len)
{
  GString *s = g_string_new(NULL);
  gboolean strip = tok->add_space_prefix;
  gsize i0 = 0, end = n;
  if (remove_special && tok->add_bos && n > 0 && tok->ids[ID_BOS] >= 0 &&
      ids[0] == tok->ids[ID_BOS]) {
    i0 = 1;
    strip = FALSE;
  }
  if (remove_special && tok->add_eos && end > i0 && tok->ids[ID_EOS] >= 0 &&
      ids[end - 1] == tok->ids[ID_EOS])
    end--;
  for (gsize i = i0; i < end; i++) {
    wh_tokenizer_token_to_piece(tok, ids[i], unparse_special, strip ? 1 : 0, s);
    strip = FALSE;
  }
  if (tok->clean_spaces)
    g_string_truncate(s, clean_spaces(s->str, s->len));
  if (out_len)
    *out_len = s->len;
  return g_string_free(s, FALSE);
}

gsize
wh_utf8_complete_prefix(const char *buf, gsize len)
{
  const guint8 *b = (const guint8 *)buf;
  for (gsize i = 1; i <= 4 && i <= len; i++) {
    guint8 c = b[len - i];
    if ((c & 0xC0) == 0x80)
      continue; /* continuation byte: keep looking for the lead */
    guint need = 0;
    if ((c & 0xE0) == 0xC0)
      need = 2;
    else if ((c & 0xF0) == 0xE0)
      need = 3;
    else if ((c & 0xF8) == 0xF0)
      need = 4;
    return need > i ? len - i : len;
  }
  return len;
}

struct wh_detokenizer {
  const wh_tokenizer *tok;
  gboolean unparse_special;
  GString *held;
};

wh_detokenizer *
wh_detokenizer_new(const wh_tokenizer *tok, gboolean unparse_special)
{
  wh_detokenizer *d = g_new0(wh_detokenizer, 1);
  d->tok = tok;
  d->unparse_special = unparse_special;
  d->held = g_string_new(NULL);
  return d;
}

gsize
wh_detokenizer_push(wh_detokenizer *d, gint32 id, GString *out)
{
  wh_tokenizer_token_to_piece(d->tok, id, d->unparse_special, 0, d->held);
  gsize n = wh_utf8_complete_prefix(d->held->str, d->held->len);
  g_string_append_len(out, d->held->str, n);
  g_string_erase(d->held, 0, n);
  return n;
}

gsize
wh_detokenizer_flush(wh_detokenizer *d, GString *out)
{
  gsize n = d->held->len;
  g_string_append_len(out, d->held->str, n);
  g_string_truncate(d->held, 0);
  return n;
}

void
wh_detokenizer_free(wh_detokenizer *d)
{
  if (d == NULL)
    return;
  g_string_free(d->held, TRUE);
  g_free(d);
}

/* --- getters ----------------------------------------------------------------------------- */

wh_tokenizer_family
wh_tokenizer_get_family(const wh_tokenizer *tok)
{
  return tok->family;
}

const char *
wh_tokenizer_get_model_name(const wh_tokenizer *tok)
{
  return tok->model_name;
}

const char *
wh_tokenizer_get_pre_name(const wh_tokenizer *tok)
{
  return tok->family == WH_TOKENIZER_BPE ? tok->pre.type_name : NULL;
}

guint
wh_tokenizer_n_vocab(const wh_tokenizer *tok)
{
  return tok->n;
}

gint32
wh_tokenizer_bos(const wh_tokenizer *tok)
{
  return tok->ids[ID_BOS];
}
gint32
wh_tokenizer_eos(const wh_tokenizer *tok)
{
  return tok->ids[ID_EOS];
}
gint32
wh_tokenizer_eot(const wh_tokenizer *tok)
{
  return tok->ids[ID_EOT];
}
gint32
wh_tokenizer_eom(const wh_tokenizer *tok)
{
  return tok->ids[ID_EOM];
}
gint32
wh_tokenizer_pad(const wh_tokenizer *tok)
{
  return tok->ids[ID_PAD];
}
gint32
wh_tokenizer_unk(const wh_tokenizer *tok)
{
  return tok->ids[ID_UNK];
}
gint32
wh_tokenizer_sep(const wh_tokenizer *tok)
{
  return tok->ids[ID_SEP];
}
gboolean
wh_tokenizer_add_bos(const wh_tokenizer *tok)
{
  return tok->add_bos;
}
gboolean
wh_tokenizer_add_eos(const wh_tokenizer *tok)
{
  return tok->add_eos;
}
gboolean
wh_tokenizer_add_space_prefix(const wh_tokenizer *tok)
{
  return tok->add_space_prefix;
}

gboolean
wh_tokenizer_is_eog(const wh_tokenizer *tok, gint32 id)
{
  return id >= 0 && (guint)id < tok->n && (tok->tflags[id] & TF_EOG);
}

gboolean
wh_tokenizer_is_control(const wh_tokenizer *tok, gint32 id)
{
  return id >= 0 && (guint)id < tok->n && (tok->attrs[id] & WH_TOKEN_ATTR_CONTROL);
}

const char *
wh_tokenizer_token_text(const wh_tokenizer *tok, gint32 id, gsize *len)
{
  if (id < 0 || (guint)id >= tok->n) {
    if (len)
      *len = 0;
    return NULL;
  }
  if (len)
    *len = tok->text_len[id];
  return tok->arena + tok->text_off[id];
}

wh_token_type
wh_tokenizer_token_type(const wh_tokenizer *tok, gint32 id)
{
  if (id < 0 || (guint)id >= tok->n)
    return WH_TOKEN_TYPE_UNDEFINED;
  return (wh_token_type)tok->types[id];
}

guint32
wh_tokenizer_token_attr(const wh_tokenizer *tok, gint32 id)
{
  return id >= 0 && (guint)id < tok->n ? tok->attrs[id] : 0;
}

float
wh_tokenizer_token_score(const wh_tokenizer *tok, gint32 id)
{
  return id >= 0 && (guint)id < tok->n ? tok->scores[id] : 0.0f;
}
