/* test-tokenizer.c — tokenizers against the reference's own outputs: every line of the 8
 * shared vocabulary test pairs, the prompts of every logits reference file (BOS added,
 * special tokens parsed), effective settings per vocabulary, detokenization round trips,
 * streaming that never splits a UTF-8 character, hand-made vocabularies for the special-token
 * and byte-fallback rules, character classes, and load errors. */
#include "config.h"

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tok-pretok.h"
#include "tokenizer/tok-regex.h"
#include "tokenizer/tok-unicode.h"
#include "wh-test-util.h"

#include <string.h>
#include <time.h>

#define SEPARATOR "\n__ggml_vocab_test__\n"

static const char *const vocab_names[] = {
    "llama-spm", "phi-3", "llama-bpe", "qwen2", "gpt-2", "falcon", "starcoder", "deepseek-llm",
};

/* Loaded once per process: the big vocabularies take tens of ms each. */
static GHashTable *cache; /* path -> wh_tokenizer */

static const wh_tokenizer *
load_tokenizer(const char *relative)
{
  g_autofree char *path = wh_test_shared_file_or_skip(relative);
  if (!path)
    return NULL;
  if (!cache)
    cache =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)wh_tokenizer_free);
  wh_tokenizer *tok = g_hash_table_lookup(cache, path);
  if (tok)
    return tok;
  g_autoptr(GError) error = NULL;
  wh_gguf *g = wh_gguf_open(path, &error);
  g_assert_no_error(error);
  tok = wh_tokenizer_new_from_gguf(g, &error);
  wh_gguf_close(g); /* the tokenizer must not need the file any more */
  g_assert_no_error(error);
  g_assert_nonnull(tok);
  g_hash_table_insert(cache, g_strdup(path), tok);
  return tok;
}

static const wh_tokenizer *
load_vocab(const char *name)
{
  g_autofree char *rel = g_strdup_printf("vocab/ggml-vocab-%s.gguf", name);
  return load_tokenizer(rel);
}

/* Splits an .inp file into its strings (GBytes, may hold any bytes). */
static GPtrArray *
read_inp(const char *path)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;
  g_file_get_contents(path, &text, &len, &error);
  g_assert_no_error(error);
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  gsize sep = strlen(SEPARATOR), pos = 0;
  while (pos < len) {
    const char *s = text + pos;
    const char *e = NULL;
    for (gsize i = 0; i + sep <= len - pos; i++)
      if (memcmp(s + i, SEPARATOR, sep) == 0) {
        e = s + i;
        break;
      }
    g_assert_nonnull(e); /* every string is closed by a separator */
    g_ptr_array_add(out, g_bytes_new(s, e - s));
    pos += (e - s) + sep;
  }
  return out;
}

static char *
ids_to_line(const gint32 *ids, guint n)
{
  GString *s = g_string_new(NULL);
  for (guint i = 0; i < n; i++)
    g_string_append_printf(s, " %d", ids[i]);
  return g_string_free(s, FALSE);
}

static GArray *
tokenize(const wh_tokenizer *tok, const char *text, gsize len, gboolean add_special,
         gboolean parse_special)
{
  g_autoptr(GError) error = NULL;
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  gint n = wh_tokenizer_tokenize(tok, text, len, add_special, parse_special, ids, &error);
  g_assert_no_error(error);
  g_assert_cmpint(n, ==, (gint)ids->len);
  return ids;
}

/* --- the shared .inp/.out pairs ---------------------------------------------------------- */

static void
test_vocab_file(gconstpointer data)
{
  const char *name = data;
  const wh_tokenizer *tok = load_vocab(name);
  if (!tok)
    return;
  g_autofree char *base = g_strdup_printf("vocab/ggml-vocab-%s.gguf", name);
  g_autofree char *inp_rel = g_strconcat(base, ".inp", NULL);
  g_autofree char *out_rel = g_strconcat(base, ".out", NULL);
  g_autofree char *inp = wh_test_shared_file_or_skip(inp_rel);
  g_autofree char *out = wh_test_shared_file_or_skip(out_rel);
  if (!inp || !out)
    return;
  g_autoptr(GPtrArray) strings = read_inp(inp);
  g_autofree char *expected = NULL;
  g_file_get_contents(out, &expected, NULL, NULL);
  g_assert_nonnull(expected);
  g_auto(GStrv) lines = g_strsplit(expected, "\n", -1);
  g_assert_cmpuint(g_strv_length(lines), ==, strings->len + 1); /* trailing newline */
  g_assert_cmpuint(strings->len, ==, 46);
  for (guint i = 0; i < strings->len; i++) {
    gsize len;
    const char *s = g_bytes_get_data(strings->pdata[i], &len);
    g_autoptr(GArray) ids = tokenize(tok, s, len, FALSE, FALSE);
    g_autofree char *got = ids_to_line((const gint32 *)ids->data, ids->len);
    if (strcmp(got, lines[i]) != 0)
      g_error("%s string %u: got '%s', want '%s'", name, i, got, lines[i]);
  }
}

/* --- prompts of the logits reference files ----------------------------------------------- */

static void
test_logits_prompts(void)
{
  g_autofree char *dir = wh_test_shared_file_or_skip("reference/logits");
  if (!dir)
    return;
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  g_assert_nonnull(d);
  guint files = 0, prompts = 0;
  const char *entry;
  while ((entry = g_dir_read_name(d))) {
    if (!g_str_has_suffix(entry, ".logits.gguf"))
      continue;
    g_autofree char *path = g_build_filename(dir, entry, NULL);
    g_autoptr(GError) error = NULL;
    wh_gguf *ref = wh_gguf_open(path, &error);
    g_assert_no_error(error);
    const char *model = wh_gguf_get_string(ref, "reference.model");
    g_assert_nonnull(model);
    g_autofree char *rel1 = g_build_filename("models", model, NULL);
    g_autofree char *rel2 = g_build_filename("reference", "models", model, NULL);
    g_autofree char *p1 = wh_test_shared_path(rel1);
    const wh_tokenizer *tok = load_tokenizer(g_file_test(p1, G_FILE_TEST_EXISTS) ? rel1 : rel2);
    if (!tok) {
      wh_gguf_close(ref);
      return;
    }
    guint64 count = 0;
    g_assert_true(wh_gguf_get_uint(ref, "reference.prompt_count", &count));
    for (guint64 i = 0; i < count; i++) {
      g_autofree char *kt = g_strdup_printf("reference.prompt.%" G_GUINT64_FORMAT ".text", i);
      g_autofree char *kk = g_strdup_printf("reference.prompt.%" G_GUINT64_FORMAT ".tokens", i);
      const char *text = wh_gguf_get_string(ref, kt);
      wh_gguf_array arr;
      g_assert_nonnull(text);
      g_assert_true(wh_gguf_get_array(ref, kk, &arr));
      g_autoptr(GArray) ids = tokenize(tok, text, strlen(text), TRUE, TRUE);
      g_assert_cmpuint(ids->len, ==, arr.n);
      for (guint k = 0; k < ids->len; k++)
        g_assert_cmpint(g_array_index(ids, gint32, k), ==, wh_gguf_array_get_int(&arr, k));
      prompts++;
    }
    wh_gguf_close(ref);
    files++;
  }
  g_assert_cmpuint(files, >, 0);
  g_test_message("%u logits files, %u prompts token-exact", files, prompts);
}

static void
test_stories_example(void)
{
  const wh_tokenizer *tok = load_tokenizer("models/stories260K.gguf");
  if (!tok)
    return;
  static const gint32 want[] = {1, 403, 407, 261, 378}; /* spec §7.3 */
  g_autoptr(GArray) ids = tokenize(tok, "Once upon a time", 16, TRUE, TRUE);
  g_assert_cmpmem(ids->data, ids->len * 4, want, sizeof want);
  /* Without add_special: no BOS, the space prefix is still there. */
  g_autoptr(GArray) ids2 = tokenize(tok, "Once upon a time", 16, FALSE, TRUE);
  g_assert_cmpmem(ids2->data, ids2->len * 4, want + 1, sizeof want - 4);
  /* parse_special: "</s>" written in the text is the EOS token only when parsing. */
  g_autoptr(GArray) a = tokenize(tok, "a</s>b", 6, FALSE, TRUE);
  g_autoptr(GArray) b = tokenize(tok, "a</s>b", 6, FALSE, FALSE);
  gboolean has_eos_a = FALSE, has_eos_b = FALSE;
  for (guint i = 0; i < a->len; i++)
    has_eos_a |= g_array_index(a, gint32, i) == 2;
  for (guint i = 0; i < b->len; i++)
    has_eos_b |= g_array_index(b, gint32, i) == 2;
  g_assert_true(has_eos_a);
  g_assert_false(has_eos_b);
  /* An empty text gives nothing (plus BOS when asked), not a lone space. */
  g_autoptr(GArray) e = tokenize(tok, "", 0, FALSE, FALSE);
  g_assert_cmpuint(e->len, ==, 0);
  g_autoptr(GArray) e2 = tokenize(tok, "", 0, TRUE, FALSE);
  g_assert_cmpuint(e2->len, ==, 1);
  g_assert_cmpint(g_array_index(e2, gint32, 0), ==, 1);
}

/* --- effective settings (spec §3 table) -------------------------------------------------- */

static void
test_settings(void)
{
  static const struct {
    const char *file;
    const char *model, *pre;
    gboolean add_bos, add_eos, space_prefix;
    gint32 bos, eos, unk;
  } rows[] = {
      {"vocab/ggml-vocab-llama-spm.gguf", "llama", NULL, TRUE, FALSE, TRUE, 1, 2, 0},
      {"vocab/ggml-vocab-phi-3.gguf", "llama", NULL, TRUE, FALSE, TRUE, 1, 32000, 0},
      {"models/stories260K.gguf", "llama", NULL, TRUE, FALSE, TRUE, 1, 2, 0},
      {"vocab/ggml-vocab-llama-bpe.gguf", "gpt2", "LLAMA3", TRUE, FALSE, FALSE, 128000, 128001, -1},
      {"vocab/ggml-vocab-qwen2.gguf", "gpt2", "QWEN2", FALSE, FALSE, FALSE, 151643, 151643, -1},
      {"vocab/ggml-vocab-gpt-2.gguf", "gpt2", "GPT2", FALSE, FALSE, FALSE, 50256, 50256, -1},
      {"vocab/ggml-vocab-falcon.gguf", "gpt2", "FALCON", FALSE, FALSE, FALSE, 11, 11, -1},
      {"vocab/ggml-vocab-starcoder.gguf", "gpt2", "STARCODER", FALSE, FALSE, FALSE, 0, 0, 0},
      {"vocab/ggml-vocab-deepseek-llm.gguf", "gpt2", "DEEPSEEK_LLM", TRUE, FALSE, FALSE, 100000,
       100001, -1},
  };
  for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
    const wh_tokenizer *tok = load_tokenizer(rows[i].file);
    if (!tok)
      return;
    g_assert_cmpstr(wh_tokenizer_get_model_name(tok), ==, rows[i].model);
    g_assert_cmpstr(wh_tokenizer_get_pre_name(tok), ==, rows[i].pre);
    g_assert_cmpint(wh_tokenizer_add_bos(tok), ==, rows[i].add_bos);
    g_assert_cmpint(wh_tokenizer_add_eos(tok), ==, rows[i].add_eos);
    g_assert_cmpint(wh_tokenizer_add_space_prefix(tok), ==, rows[i].space_prefix);
    g_assert_cmpint(wh_tokenizer_bos(tok), ==, rows[i].bos);
    g_assert_cmpint(wh_tokenizer_eos(tok), ==, rows[i].eos);
    g_assert_cmpint(wh_tokenizer_unk(tok), ==, rows[i].unk);
    g_assert_true(wh_tokenizer_is_eog(tok, rows[i].eos));
    g_assert_false(wh_tokenizer_is_eog(tok, -1));
    g_assert_false(wh_tokenizer_is_eog(tok, (gint32)wh_tokenizer_n_vocab(tok)));
  }
  /* Llama 3: <|eot_id|> ends a turn (EOG, detected EOT) but <|begin_of_text|> does not. */
  const wh_tokenizer *l3 = load_vocab("llama-bpe");
  gint32 eot = wh_tokenizer_find(l3, "<|eot_id|>", 10);
  g_assert_cmpint(eot, ==, 128009);
  g_assert_cmpint(wh_tokenizer_eot(l3), ==, eot);
  g_assert_true(wh_tokenizer_is_eog(l3, eot));
  g_assert_false(wh_tokenizer_is_eog(l3, 128000));
  g_assert_cmpuint(wh_tokenizer_n_vocab(l3), ==, 128256);
  g_assert_cmpint(wh_tokenizer_token_type(l3, 128000), ==, WH_TOKEN_TYPE_CONTROL);
  gsize len;
  g_assert_cmpstr(wh_tokenizer_token_text(l3, 128000, &len), ==, "<|begin_of_text|>");
  g_assert_cmpuint(len, ==, 17);
  g_assert_null(wh_tokenizer_token_text(l3, -5, &len));
  /* qwen2: the ordinary token `</s>` gets CONTROL (spec §2.3 step 3) and joins EOG. */
  const wh_tokenizer *q = load_vocab("qwen2");
  gint32 s = wh_tokenizer_find(q, "</s>", 4);
  g_assert_cmpint(s, ==, 128247);
  g_assert_cmpuint(wh_tokenizer_token_attr(q, s) & (WH_TOKEN_ATTR_NORMAL | WH_TOKEN_ATTR_CONTROL),
                   ==, WH_TOKEN_ATTR_NORMAL | WH_TOKEN_ATTR_CONTROL);
  g_assert_true(wh_tokenizer_is_eog(q, s));
  /* phi-3: general.name "Phi3" gives special tokens RSTRIP, but not <s>. */
  const wh_tokenizer *phi = load_vocab("phi-3");
  gint32 end = wh_tokenizer_find(phi, "<|end|>", 7);
  g_assert_cmpint(end, >=, 0);
  g_assert_true(wh_tokenizer_token_attr(phi, end) & WH_TOKEN_ATTR_RSTRIP);
  g_assert_true(wh_tokenizer_is_eog(phi, end));
  g_assert_false(wh_tokenizer_token_attr(phi, 1) & WH_TOKEN_ATTR_RSTRIP);
}

/* --- user-defined tokens with parse_special off (spec §9 example) ------------------------ */

static void
test_user_defined(void)
{
  const wh_tokenizer *tok = load_vocab("deepseek-llm");
  if (!tok)
    return;
  static const gint32 want[] = {44, 100014, 71324};
  g_autoptr(GArray) ids = tokenize(tok, "M\xc3\xbcnchen", 8, FALSE, FALSE);
  g_assert_cmpmem(ids->data, ids->len * 4, want, sizeof want);
}

/* --- detokenization ---------------------------------------------------------------------- */

static void
test_detokenize_spm(void)
{
  const wh_tokenizer *tok = load_vocab("llama-spm");
  if (!tok)
    return;
  static const gint32 hello[] = {15043};
  static const gint32 bos_hello[] = {1, 15043};
  gsize len;
  g_autofree char *a = wh_tokenizer_detokenize(tok, hello, 1, FALSE, FALSE, &len);
  g_assert_cmpstr(a, ==, "Hello");
  g_autofree char *b = wh_tokenizer_detokenize(tok, bos_hello, 2, FALSE, FALSE, &len);
  g_assert_cmpstr(b, ==, " Hello");
  g_autofree char *c = wh_tokenizer_detokenize(tok, bos_hello, 2, FALSE, TRUE, &len);
  g_assert_cmpstr(c, ==, "<s> Hello");
  g_autofree char *d = wh_tokenizer_detokenize(tok, bos_hello, 2, TRUE, FALSE, &len);
  g_assert_cmpstr(d, ==, " Hello");
  g_assert_cmpuint(len, ==, 6);
  /* Byte tokens: <0x0A> prints a newline. */
  gint32 nl = wh_tokenizer_find(tok, "<0x0A>", 6);
  g_assert_cmpint(wh_tokenizer_token_type(tok, nl), ==, WH_TOKEN_TYPE_BYTE);
  g_autoptr(GString) piece = g_string_new(NULL);
  g_assert_cmpuint(wh_tokenizer_token_to_piece(tok, nl, FALSE, 0, piece), ==, 1);
  g_assert_cmpstr(piece->str, ==, "\n");
  g_string_truncate(piece, 0);
  g_assert_cmpuint(wh_tokenizer_token_to_piece(tok, 2, FALSE, 0, piece), ==, 0);
  g_assert_cmpuint(wh_tokenizer_token_to_piece(tok, 2, TRUE, 0, piece), ==, 4);
  g_assert_cmpstr(piece->str, ==, "</s>");
  g_assert_cmpuint(wh_tokenizer_token_to_piece(tok, -1, TRUE, 0, piece), ==, 0);
}

static void
test_detokenize_clean_spaces(void)
{
  const wh_tokenizer *tok = load_vocab("gpt-2");
  if (!tok)
    return;
  const char *text = "Hello , world ! It 's a 'test' .";
  g_autoptr(GArray) ids = tokenize(tok, text, strlen(text), FALSE, FALSE);
  g_autofree char *s =
      wh_tokenizer_detokenize(tok, (const gint32 *)ids->data, ids->len, FALSE, FALSE, NULL);
  g_assert_cmpstr(s, ==, "Hello, world! It's a 'test'.");
  /* qwen2 does not clean spaces. */
  const wh_tokenizer *q = load_vocab("qwen2");
  g_autoptr(GArray) qi = tokenize(q, text, strlen(text), FALSE, FALSE);
  g_autofree char *qs =
      wh_tokenizer_detokenize(q, (const gint32 *)qi->data, qi->len, FALSE, FALSE, NULL);
  g_assert_cmpstr(qs, ==, text);
  /* Invalid UTF-8 goes through BPE as U+FFFD and comes back as EF BF BD. */
  g_autoptr(GArray) bad = tokenize(q,
                                   "a\xff"
                                   "b",
                                   3, FALSE, FALSE);
  g_autofree char *bs =
      wh_tokenizer_detokenize(q, (const gint32 *)bad->data, bad->len, FALSE, FALSE, NULL);
  g_assert_cmpstr(bs, ==,
                  "a\xef\xbf\xbd"
                  "b");
}

static gboolean
has_space_before_punct(const char *s, gsize len)
{
  for (gsize i = 0; i + 1 < len; i++)
    if (s[i] == ' ' && strchr("?!.,'", s[i + 1]) && s[i + 1] != '\0')
      return TRUE;
  return FALSE;
}

/* detokenize(tokenize(s)) == s for valid UTF-8: SPM (the space prefix is stripped again) and
 * byte-level BPE; vocabularies that clean spaces only where there is nothing to clean. */
static void
test_round_trip(void)
{
  g_autofree char *inp = wh_test_shared_file_or_skip("vocab/ggml-vocab-gpt-2.gguf.inp");
  if (!inp)
    return;
  g_autoptr(GPtrArray) strings = read_inp(inp);
  guint checked = 0;
  for (gsize v = 0; v < G_N_ELEMENTS(vocab_names); v++) {
    const wh_tokenizer *tok = load_vocab(vocab_names[v]);
    if (!tok)
      return;
    gboolean cleans = strcmp(vocab_names[v], "qwen2") != 0 &&
                      strcmp(vocab_names[v], "deepseek-llm") != 0 &&
                      wh_tokenizer_get_family(tok) == WH_TOKENIZER_BPE;
    for (guint i = 0; i < strings->len; i++) {
      gsize len;
      const char *s = g_bytes_get_data(strings->pdata[i], &len);
      if (!g_utf8_validate(s, len, NULL) || (cleans && has_space_before_punct(s, len)))
        continue;
      for (int special = 0; special < 2; special++) {
        g_autoptr(GArray) ids = tokenize(tok, s, len, special, special);
        gsize out_len;
        g_autofree char *back = wh_tokenizer_detokenize(tok, (const gint32 *)ids->data, ids->len,
                                                        TRUE, FALSE, &out_len);
        /* With BOS removed the SPM space prefix stays (spec §10.2: ` Hello`). */
        gsize lead = special && wh_tokenizer_add_space_prefix(tok) && len > 0 ? 1 : 0;
        if (out_len != len + lead || (lead && back[0] != ' ') ||
            (len && memcmp(back + lead, s, len) != 0))
          g_error("%s: round trip of string %u (special %d) gave '%s'", vocab_names[v], i, special,
                  back);
        checked++;
      }
    }
  }
  g_test_message("%u round trips", checked);
  g_assert_cmpuint(checked, >, 300);
}

/* --- streaming --------------------------------------------------------------------------- */

static void
test_utf8_prefix(void)
{
  g_assert_cmpuint(wh_utf8_complete_prefix("", 0), ==, 0);
  g_assert_cmpuint(wh_utf8_complete_prefix("abc", 3), ==, 3);
  g_assert_cmpuint(wh_utf8_complete_prefix("a\xc3", 2), ==, 1);
  g_assert_cmpuint(wh_utf8_complete_prefix("a\xc3\xa9", 3), ==, 3);
  g_assert_cmpuint(wh_utf8_complete_prefix("a\xe4\xb8", 3), ==, 1);
  g_assert_cmpuint(wh_utf8_complete_prefix("\xf0\x9f\x98", 3), ==, 0);
  g_assert_cmpuint(wh_utf8_complete_prefix("\xf0\x9f\x98\x80", 4), ==, 4);
  g_assert_cmpuint(wh_utf8_complete_prefix("x\x80\x80\x80\x80", 5), ==, 5); /* no lead: send */
  g_assert_cmpuint(wh_utf8_complete_prefix("x\xff", 2), ==, 2);             /* invalid: send */
}

/* Every multi-byte character of the .inp strings, fed one token at a time through the
 * streaming detokenizer: each chunk is valid UTF-8 and the chunks add up to the text. */
static void
test_stream(void)
{
  g_autofree char *inp = wh_test_shared_file_or_skip("vocab/ggml-vocab-llama-spm.gguf.inp");
  if (!inp)
    return;
  g_autoptr(GPtrArray) strings = read_inp(inp);
  const char *vocabs[] = {"llama-spm", "gpt-2", "qwen2"};
  guint split_chars = 0;
  for (gsize v = 0; v < G_N_ELEMENTS(vocabs); v++) {
    const wh_tokenizer *tok = load_vocab(vocabs[v]);
    if (!tok)
      return;
    for (guint i = 0; i < strings->len; i++) {
      gsize len;
      const char *s = g_bytes_get_data(strings->pdata[i], &len);
      if (!g_utf8_validate(s, len, NULL))
        continue;
      g_autoptr(GArray) ids = tokenize(tok, s, len, FALSE, FALSE);
      g_autoptr(wh_detokenizer) d = wh_detokenizer_new(tok, FALSE);
      g_autoptr(GString) all = g_string_new(NULL), raw = g_string_new(NULL);
      for (guint k = 0; k < ids->len; k++) {
        gint32 id = g_array_index(ids, gint32, k);
        g_autoptr(GString) chunk = g_string_new(NULL);
        gsize n = wh_detokenizer_push(d, id, chunk);
        g_assert_cmpuint(n, ==, chunk->len);
        g_assert_true(g_utf8_validate(chunk->str, chunk->len, NULL));
        gsize before = raw->len;
        wh_tokenizer_token_to_piece(tok, id, FALSE, 0, raw);
        if (!g_utf8_validate(raw->str + before, raw->len - before, NULL))
          split_chars++; /* this token alone holds part of a character */
        g_string_append_len(all, chunk->str, chunk->len);
      }
      g_assert_cmpuint(wh_detokenizer_flush(d, all), ==, 0);
      /* Streaming = plain concatenation of the pieces (no space strip / clean-up). */
      g_assert_cmpmem(all->str, all->len, raw->str, raw->len);
    }
  }
  g_test_message("%u tokens held part of a character", split_chars);
  g_assert_cmpuint(split_chars, >, 0); /* the test did exercise the hold-back */

  /* An unfinished character at the end of the stream comes out on flush. */
  const wh_tokenizer *spm = load_vocab("llama-spm");
  g_autoptr(wh_detokenizer) d = wh_detokenizer_new(spm, FALSE);
  g_autoptr(GString) out = g_string_new(NULL);
  g_assert_cmpuint(wh_detokenizer_push(d, wh_tokenizer_find(spm, "<0xE4>", 6), out), ==, 0);
  g_assert_cmpuint(wh_detokenizer_push(d, wh_tokenizer_find(spm, "<0xB8>", 6), out), ==, 0);
  g_assert_cmpuint(wh_detokenizer_flush(d, out), ==, 2);
  g_assert_cmpmem(out->str, out->len, "\xe4\xb8", 2);
}

/* phi-3: special tokens carry RSTRIP (spec §2.3 step 8), so the newline after each is
 * dropped and the text after one gets the SPM space prefix; its user-defined `</s>` became
 * CONTROL (step 3) and is no longer matched without parse_special. */
static void
test_phi3_rstrip(void)
{
  const wh_tokenizer *tok = load_vocab("phi-3");
  if (!tok)
    return;
  const char *text = "<|user|>\nHello<|end|>\n<|assistant|>";
  static const gint32 want[] = {32010, 15043, 32007, 32001};
  g_autoptr(GArray) ids = tokenize(tok, text, strlen(text), FALSE, TRUE);
  g_assert_cmpmem(ids->data, ids->len * 4, want, sizeof want);
  g_autoptr(GArray) off = tokenize(tok, "a</s>b", 6, FALSE, FALSE);
  for (guint i = 0; i < off->len; i++)
    g_assert_cmpint(g_array_index(off, gint32, i), !=, 2);
  g_autoptr(GArray) on = tokenize(tok, "a</s>b", 6, FALSE, TRUE);
  gboolean found = FALSE;
  for (guint i = 0; i < on->len; i++)
    found |= g_array_index(on, gint32, i) == 2;
  g_assert_true(found);
}

/* The gemma-4 variant (spec §6.7) on a hand-made vocabulary: spaces become U+2581 before
 * splitting at newline runs, no byte encoding, all-newline words taken whole, <0xHH> byte
 * fallback, BOS forced. */
static void
test_gemma4_variant(void)
{
  static const char *const tokens[] = {
      "<pad>",          "<eos>", "<bos>", "<unk>",  "\xe2\x96\x81", "h",      "i",
      "\xe2\x96\x81hi", "\n",    "\n\n",  "<0xF0>", "<0x9F>",       "<0x98>", "<0x80>",
  };
  static const gint32 types[] = {3, 3, 3, 2, 1, 1, 1, 1, 1, 1, 6, 6, 6, 6};
  static const char *const merges[] = {"\xe2\x96\x81 h", "\xe2\x96\x81h i"};
  wh_tokenizer_vocab v;
  wh_tokenizer_vocab_init(&v);
  v.model = "gemma4";
  v.pre = "gpt-2"; /* ignored: model gemma4 forces the gemma4 pre-tokenizer */
  v.n_tokens = G_N_ELEMENTS(tokens);
  v.tokens = tokens;
  v.token_types = types;
  v.n_merges = G_N_ELEMENTS(merges);
  v.merges = merges;
  v.bos_id = 2;
  v.eos_id = 1;
  v.unk_id = 3;
  v.add_bos = 0; /* forced to true anyway */
  g_autoptr(GError) error = NULL;
  g_autoptr(wh_tokenizer) tok = wh_tokenizer_new_from_vocab(&v, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(wh_tokenizer_get_pre_name(tok), ==, "GEMMA4");
  g_assert_true(wh_tokenizer_add_bos(tok));
  const char *text = " hi\n\n\xf0\x9f\x98\x80";
  static const gint32 want[] = {2, 7, 9, 10, 11, 12, 13};
  g_autoptr(GArray) ids = tokenize(tok, text, strlen(text), TRUE, FALSE);
  g_assert_cmpmem(ids->data, ids->len * 4, want, sizeof want);
  g_autofree char *back =
      wh_tokenizer_detokenize(tok, (const gint32 *)ids->data, ids->len, TRUE, FALSE, NULL);
  g_assert_cmpstr(back, ==, text);
}

/* --- hand-made vocabularies -------------------------------------------------------------- */

/* Special tokens are claimed longest first everywhere (spec §4: `bcd` before `ab`), the text
 * after one gets the SPM space prefix, and a missing byte token is an error, not a crash. */
static void
test_partition_order(void)
{
  static const char *const tokens[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a",
                                       "b",     "c",   "d",    "ab",           "bcd"};
  static const gint32 types[] = {2, 3, 3, 1, 1, 1, 1, 1, 4, 4};
  wh_tokenizer_vocab v;
  wh_tokenizer_vocab_init(&v);
  v.model = "llama";
  v.n_tokens = G_N_ELEMENTS(tokens);
  v.tokens = tokens;
  v.token_types = types;
  g_autoptr(GError) error = NULL;
  g_autoptr(wh_tokenizer) tok = wh_tokenizer_new_from_vocab(&v, &error);
  g_assert_no_error(error);

  static const gint32 want1[] = {3, 4, 9}; /* ▁ a [bcd] */
  g_autoptr(GArray) a = tokenize(tok, "abcd", 4, FALSE, FALSE);
  g_assert_cmpmem(a->data, a->len * 4, want1, sizeof want1);
  static const gint32 want2[] = {1, 3, 6, 7, 3, 8, 3, 4}; /* <s> ▁ c d ▁ [ab] ▁ a */
  g_autoptr(GArray) b = tokenize(tok, "cd aba", 6, TRUE, FALSE);
  g_assert_cmpmem(b->data, b->len * 4, want2, sizeof want2);
  /* Control tokens are matched only with parse_special. */
  static const gint32 want3[] = {3, 4, 2, 3, 4};
  g_autoptr(GArray) c = tokenize(tok, "a</s>a", 6, FALSE, TRUE);
  g_assert_cmpmem(c->data, c->len * 4, want3, sizeof want3);

  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  g_array_append_val(ids, (gint32){42});
  g_assert_cmpint(wh_tokenizer_tokenize(tok, "x", 1, FALSE, FALSE, ids, &error), ==, -1);
  g_assert_error(error, WH_TOKENIZER_ERROR, WH_TOKENIZER_ERROR_TOKENIZE);
  g_assert_cmpuint(ids->len, ==, 1); /* nothing appended on failure */
}

/* A byte-level BPE merge whose result is not a token: the non-ASCII bytes of that symbol are
 * silently dropped (spec §6.2 step 5). */
static void
test_bpe_silent_drop(void)
{
  static const char *const tokens[] = {"\xc3\x83", "\xc2\xa9", "h", "i", "hi"};
  static const char *const merges[] = {"\xc3\x83 \xc2\xa9", "h i"};
  wh_tokenizer_vocab v;
  wh_tokenizer_vocab_init(&v);
  v.model = "gpt2";
  v.pre = "gpt-2";
  v.n_tokens = G_N_ELEMENTS(tokens);
  v.tokens = tokens;
  v.n_merges = G_N_ELEMENTS(merges);
  v.merges = merges;
  g_autoptr(GError) error = NULL;
  g_autoptr(wh_tokenizer) tok = wh_tokenizer_new_from_vocab(&v, &error);
  g_assert_no_error(error);
  g_assert_cmpint(wh_tokenizer_bos(tok), ==, WH_TOKEN_NONE); /* default 11 is out of range */
  g_autoptr(GArray) a = tokenize(tok, "\xc3\xa9", 2, FALSE, FALSE);
  g_assert_cmpuint(a->len, ==, 0);
  g_autoptr(GArray) b = tokenize(tok, "hi", 2, FALSE, FALSE);
  g_assert_cmpuint(b->len, ==, 1);
  g_assert_cmpint(g_array_index(b, gint32, 0), ==, 4);
}

static void
test_load_errors(void)
{
  static const char *const tokens[] = {"a", "b", "a"};
  wh_tokenizer_vocab v;
  wh_tokenizer_vocab_init(&v);
  v.n_tokens = 2;
  v.tokens = tokens;
  struct {
    const char *model, *pre;
    guint n;
    int code;
  } cases[] = {
      {"bert", NULL, 2, WH_TOKENIZER_ERROR_UNSUPPORTED},
      {"frobnicate", NULL, 2, WH_TOKENIZER_ERROR_INVALID},
      {"gpt2", "no-such-pre", 2, WH_TOKENIZER_ERROR_INVALID},
      {"gpt2", "kimi-k2", 2, WH_TOKENIZER_ERROR_UNSUPPORTED},
      {"gpt2", "gpt-2", 2, WH_TOKENIZER_ERROR_MISSING}, /* no merges */
      {"llama", NULL, 3, WH_TOKENIZER_ERROR_INVALID},   /* duplicate text */
      {NULL, NULL, 2, WH_TOKENIZER_ERROR_MISSING},
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    v.model = cases[i].model;
    v.pre = cases[i].pre;
    v.n_tokens = cases[i].n;
    wh_tokenizer *tok = wh_tokenizer_new_from_vocab(&v, &error);
    g_assert_null(tok);
    g_assert_error(error, WH_TOKENIZER_ERROR, cases[i].code);
  }
}

/* --- character classes (spec §5.2, §5.3) ------------------------------------------------- */

static void
test_unicode(void)
{
  guint n_ws = 0;
  for (gunichar c = 0; c < 0x110000; c++)
    if (wh_uc_is_whitespace(c)) {
      n_ws++;
      g_assert_true(wh_uc_flags(c) & WH_UC_WHITESPACE);
      guint cls = wh_uc_flags(c) & WH_UC_CLASS_MASK;
      g_assert_true(cls != WH_UC_LETTER && cls != WH_UC_NUMBER);
    }
  g_assert_cmpuint(n_ws, ==, 25);
  const gunichar not_ws[] = {0x1C, 0x1D, 0x1E, 0x1F, 0x180E, 0x200B, 0xFEFF};
  for (gsize i = 0; i < G_N_ELEMENTS(not_ws); i++)
    g_assert_false(wh_uc_is_whitespace(not_ws[i]));
  /* Unicode 15.1 additions (GLib 2.74 has 15.0). */
  g_assert_cmpuint(wh_uc_flags(0x2FFC) & WH_UC_CLASS_MASK, ==, WH_UC_SYMBOL);
  g_assert_cmpuint(wh_uc_flags(0x31EF) & WH_UC_CLASS_MASK, ==, WH_UC_SYMBOL);
  g_assert_cmpuint(wh_uc_flags(0x2EBF0) & WH_UC_CLASS_MASK, ==, WH_UC_LETTER);
  g_assert_cmpuint(wh_uc_flags(0x2EE5D) & WH_UC_CLASS_MASK, ==, WH_UC_LETTER);
  g_assert_cmpuint(wh_uc_flags(0x2EE5E) & WH_UC_CLASS_MASK, ==, WH_UC_UNDEFINED);
  /* Unicode 15.0 (CJK extension H) must already be there. */
  g_assert_cmpuint(wh_uc_flags(0x31350) & WH_UC_CLASS_MASK, ==, WH_UC_LETTER);
  g_assert_cmpuint(wh_uc_flags('\t'), ==, WH_UC_CONTROL | WH_UC_WHITESPACE);
  g_assert_cmpuint(wh_uc_flags(' '), ==, WH_UC_SEPARATOR | WH_UC_WHITESPACE);
  g_assert_cmpuint(wh_uc_flags('$'), ==, WH_UC_SYMBOL);
  g_assert_cmpuint(wh_uc_flags('_'), ==, WH_UC_PUNCT);
  g_assert_cmpuint(wh_uc_flags(0x0301) & WH_UC_CLASS_MASK, ==, WH_UC_MARK);
  g_assert_cmpuint(wh_uc_flags(0xD800) & WH_UC_CLASS_MASK, ==, WH_UC_CONTROL);
  g_assert_cmpuint(wh_uc_flags(0x110000), ==, WH_UC_UNDEFINED);
  /* ASCII agrees with GLib's categories. */
  for (gunichar c = 0; c < 0x80; c++) {
    GUnicodeType t = g_unichar_type(c);
    guint cls = wh_uc_flags(c) & WH_UC_CLASS_MASK;
    if (g_unichar_isalpha(c))
      g_assert_cmpuint(cls, ==, WH_UC_LETTER);
    if (t == G_UNICODE_MATH_SYMBOL || t == G_UNICODE_CURRENCY_SYMBOL ||
        t == G_UNICODE_MODIFIER_SYMBOL)
      g_assert_cmpuint(cls, ==, WH_UC_SYMBOL);
    if (g_unichar_ispunct(c) && cls != WH_UC_SYMBOL)
      g_assert_cmpuint(cls, ==, WH_UC_PUNCT);
  }

  /* GPT-2 table: a bijection with the documented anchors. */
  gboolean seen[0x200] = {FALSE};
  for (guint b = 0; b < 256; b++) {
    gunichar c = wh_uc_byte_to_cp((guint8)b);
    g_assert_cmpuint(c, <, 0x200);
    g_assert_false(seen[c]);
    seen[c] = TRUE;
    g_assert_cmpint(wh_uc_cp_to_byte(c), ==, (int)b);
  }
  g_assert_cmpuint(wh_uc_byte_to_cp(0x00), ==, 0x100);
  g_assert_cmpuint(wh_uc_byte_to_cp(0x20), ==, 0x120);
  g_assert_cmpuint(wh_uc_byte_to_cp(0x0A), ==, 0x10A);
  g_assert_cmpuint(wh_uc_byte_to_cp(0x7F), ==, 0x121);
  g_assert_cmpuint(wh_uc_byte_to_cp(0xA0), ==, 0x142);
  g_assert_cmpuint(wh_uc_byte_to_cp(0xAD), ==, 0x143);
  g_assert_cmpint(wh_uc_cp_to_byte(0x144), ==, -1);

  /* UTF-8 repair: one U+FFFD per bad byte, no overlong/surrogate checks. */
  g_autoptr(GArray) cps = g_array_new(FALSE, FALSE, sizeof(guint32));
  wh_uc_decode("a\x80\xc3\xa9\xe4\xb8\xc0\x80\xed\xa0\x80\xf8", 12, cps);
  static const guint32 want[] = {'a', 0xFFFD, 0xE9, 0xFFFD, 0xFFFD, 0x0, 0xD800, 0xFFFD};
  g_assert_cmpmem(cps->data, cps->len * 4, want, sizeof want);
}

/* --- pre-tokenizer patterns -------------------------------------------------------------- */

static void
split_cps(const guint32 *cp, gsize n, guint x, gboolean generic, GArray *ends)
{
  g_autofree guint8 *fl = g_new(guint8, n ? n : 1);
  for (gsize i = 0; i < n; i++)
    fl[i] = wh_uc_flags(cp[i]);
  g_array_set_size(ends, 0);
  if (generic) {
    g_autofree char *msg = NULL;
    wh_regex *re = wh_regex_compile(wh_pretok_pattern_source(x), &msg);
    if (!re)
      g_error("X%02u does not compile: %s", x, msg);
    wh_regex_split(re, cp, fl, 0, n, ends);
    wh_regex_free(re);
  } else {
    g_assert_true(wh_pretok_split_scanner(x, cp, fl, 0, n, ends));
  }
}

/* The hand-written scanners against the regex evaluator running the spec's pattern text, on
 * random strings over characters of every class (spec §13 did the same against a
 * backtracking engine). Both sides are checked: the scanners were verified on the shared
 * vocabularies, so agreement also validates the evaluator used for the other pre-types. */
static void
test_scanners_vs_regex(void)
{
  static const guint32 pool[] = {
      'a',    'b',    'Z',    'Q',    's',     't',    'm',    'd',     'l',     'r',    'e',
      'v',    'S',    'L',    'R',    'E',     'V',    'T',    '0',     '1',     '9',    '\'',
      '\'',   '.',    ',',    '!',    '?',     '(',    '|',    '$',     '+',     '`',    '-',
      '_',    '<',    ' ',    ' ',    ' ',     '\t',   '\n',   '\n',    '\r',    '\v',   0x1C,
      0x7F,   0x85,   0xA0,   0xBD,   0xE9,    0x2581, 0x0301, 0x0660,  0x0964,  0x06D4, 0x2014,
      0x2018, 0x2026, 0x2028, 0x20AC, 0x3000,  0x3001, 0x3042, 0x30A2,  0x4E00,  0x9FA5, 0xAC00,
      0xD7A3, 0xFF01, 0xFF0C, 0xFF21, 0x1F600, 0xFFFD, 0x0800, 0x10400, 0x1E900, 0x2FFC, 0xE000,
  };
  static const guint xs[] = {1,  3,  5,  6,  7,  8,  9,  10, 13, 16, 17, 18,
                             19, 20, 21, 22, 23, 35, 36, 37, 41, 43, 45};
  g_autoptr(GArray) a = g_array_new(FALSE, FALSE, sizeof(gsize));
  g_autoptr(GArray) b = g_array_new(FALSE, FALSE, sizeof(gsize));
  GRand *rng = g_rand_new_with_seed(4242);
  guint32 cp[40];
  for (guint iter = 0; iter < 1500; iter++) {
    gsize n = g_rand_int_range(rng, 0, 40);
    for (gsize i = 0; i < n; i++)
      cp[i] = pool[g_rand_int_range(rng, 0, G_N_ELEMENTS(pool))];
    for (gsize k = 0; k < G_N_ELEMENTS(xs); k++) {
      split_cps(cp, n, xs[k], FALSE, a);
      split_cps(cp, n, xs[k], TRUE, b);
      if (a->len != b->len || memcmp(a->data, b->data, a->len * sizeof(gsize)) != 0) {
        GString *s = g_string_new(NULL);
        for (gsize i = 0; i < n; i++)
          g_string_append_printf(s, " %04X", cp[i]);
        g_error("X%02u differs on [%s ]: scanner %u pieces, regex %u pieces", xs[k], s->str, a->len,
                b->len);
      }
    }
  }
  g_rand_free(rng);
}

/* Generic patterns on hand-checked cases. */
static void
test_generic_patterns(void)
{
  static const struct {
    guint x;
    const char *text;
    const char *pieces; /* joined with '|' */
  } cases[] = {
      /* X29 (gpt-4o, llama4): case runs, contractions, digits in threes */
      {29, "HelloWorld 12345", "Hello|World| |123|45"},
      {29, "HELLOworld don't", "HELLOworld| don't"},
      {29, "\xc3\x89t\xc3\xa9 ABC!!\n\nx", "\xc3\x89t\xc3\xa9| ABC|!!\n\n|x"},
      /* X24 (tekken): the same without contractions */
      {24, "don't", "don|'t"},
      /* X34 (superbpe): zero-length matches split digit runs from the right */
      {34, "1234567", "1|234|567"},
      /* X11 (deepseek-v3): punctuation glued to a following ASCII word */
      {11, "a.b,c", "a|.b|,c"},
      /* X02 (jais-2): whitespace runs in powers of two */
      {2, "a      b", "a|    | | b"},
      /* X26 (chameleon) */
      {26, "xIMGIMGABZy", "x|IMGIMGABZ|y"},
  };
  g_autoptr(GArray) ends = g_array_new(FALSE, FALSE, sizeof(gsize));
  g_autoptr(GArray) cps = g_array_new(FALSE, FALSE, sizeof(guint32));
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_array_set_size(cps, 0);
    wh_uc_decode(cases[i].text, strlen(cases[i].text), cps);
    split_cps((const guint32 *)cps->data, cps->len, cases[i].x, TRUE, ends);
    GString *got = g_string_new(NULL);
    gsize start = 0;
    for (guint k = 0; k < ends->len; k++) {
      gsize e = g_array_index(ends, gsize, k);
      if (k)
        g_string_append_c(got, '|');
      for (gsize j = start; j < e; j++)
        wh_uc_append_utf8(got, g_array_index(cps, guint32, j));
      start = e;
    }
    g_assert_cmpstr(got->str, ==, cases[i].pieces);
    g_string_free(got, TRUE);
  }
  /* Syntax the evaluator does not have is refused, not misread. */
  static const char *const bad[] = {"(?i:a)", "a*?", "(a*)*", "\\p{Han}", "[a", "a)", "\\b"};
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree char *msg = NULL;
    wh_regex *re = wh_regex_compile(bad[i], &msg);
    g_assert_null(re);
    g_assert_nonnull(msg);
  }
  /* Every pre-tokenizer name that loads compiles its patterns. */
  static const char *const names[] = {
      "jais-2",    "deepseek-v3", "spark2_5", "youtu",      "tekken",
      "chameleon", "gpt-4o",      "llama4",   "minimax-m2", "granite-embed-multi-97m",
      "tiny_aya",  "superbpe",    "afmoe",    "exaone-moe",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
    wh_pretok_info info;
    g_assert_cmpint(wh_pretok_lookup(names[i], &info), ==, WH_PRETOK_FOUND);
    g_autofree char *msg = NULL;
    if (!wh_pretok_info_compile(&info, &msg))
      g_error("%s: %s", names[i], msg);
    wh_pretok_info_clear(&info);
  }
}

/* Loading a 150k-token vocabulary must be quick (reported, not asserted: speed is checked
 * by benchmarks, and this test also runs under sanitizers). */
static void
test_load_time(void)
{
  g_autofree char *path = wh_test_shared_file_or_skip("vocab/ggml-vocab-qwen2.gguf");
  if (!path)
    return;
  g_autoptr(GError) error = NULL;
  wh_gguf *g = wh_gguf_open(path, &error);
  g_assert_no_error(error);
  struct timespec c0, c1;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
  gint64 t0 = g_get_monotonic_time();
  g_autoptr(wh_tokenizer) tok = wh_tokenizer_new_from_gguf(g, &error);
  gint64 t1 = g_get_monotonic_time();
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
  g_assert_no_error(error);
  g_assert_cmpuint(wh_tokenizer_n_vocab(tok), >, 150000);
  g_test_message("qwen2 vocabulary (%u tokens) loaded in %.1f ms (%.1f ms CPU)",
                 wh_tokenizer_n_vocab(tok), (t1 - t0) / 1000.0,
                 (c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) / 1e6);
  wh_gguf_close(g);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS(vocab_names); i++) {
    g_autofree char *name = g_strdup_printf("/tokenizer/vocab/%s", vocab_names[i]);
    g_test_add_data_func(name, vocab_names[i], test_vocab_file);
  }
  g_test_add_func("/tokenizer/stories260K/example", test_stories_example);
  g_test_add_func("/tokenizer/logits-prompts", test_logits_prompts);
  g_test_add_func("/tokenizer/settings", test_settings);
  g_test_add_func("/tokenizer/user-defined", test_user_defined);
  g_test_add_func("/tokenizer/phi3-rstrip", test_phi3_rstrip);
  g_test_add_func("/tokenizer/handmade/gemma4", test_gemma4_variant);
  g_test_add_func("/tokenizer/detokenize/spm", test_detokenize_spm);
  g_test_add_func("/tokenizer/detokenize/clean-spaces", test_detokenize_clean_spaces);
  g_test_add_func("/tokenizer/round-trip", test_round_trip);
  g_test_add_func("/tokenizer/stream/utf8-prefix", test_utf8_prefix);
  g_test_add_func("/tokenizer/stream/detokenizer", test_stream);
  g_test_add_func("/tokenizer/handmade/partition-order", test_partition_order);
  g_test_add_func("/tokenizer/handmade/bpe-silent-drop", test_bpe_silent_drop);
  g_test_add_func("/tokenizer/load-errors", test_load_errors);
  g_test_add_func("/tokenizer/unicode", test_unicode);
  g_test_add_func("/tokenizer/pretok/scanners-vs-regex", test_scanners_vs_regex);
  g_test_add_func("/tokenizer/pretok/generic", test_generic_patterns);
  g_test_add_func("/tokenizer/load-time", test_load_time);
  int rc = g_test_run();
  if (cache)
    g_hash_table_destroy(cache);
  return rc;
}
