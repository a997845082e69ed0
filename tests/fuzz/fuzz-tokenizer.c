/* fuzz-tokenizer.c — the tokenizers on arbitrary bytes.
 *
 * Input layout: byte 0 picks the vocabulary (the 8 shared ones, stories260K, and a byte-level
 * vocabulary under each regex-evaluated pre-tokenizer), byte 1 the
 * flags (bit 0 add_special, bit 1 parse_special), the rest is the text. Every run checks
 * that tokenization succeeds with ids in range, that for valid UTF-8 text the streaming
 * detokenizer only ever emits whole characters, that it adds up to the pieces, and,
 * for valid UTF-8 where exactness is promised (llama-spm: byte fallback; qwen2: no space
 * clean-up), that detokenize(tokenize(text)) gives the text back. (Invalid UTF-8 is not
 * exact: SPM cuts a stray lead byte together with the following `▁` into one symbol whose
 * byte tokens print `▁` rather than a space, as the reference does.)
 */
#include "config.h"

#include "fuzz-main.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "wh-test-util.h"

#include <string.h>

static const char *const files[] = {
    "vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-qwen2.gguf",
    "vocab/ggml-vocab-phi-3.gguf",     "vocab/ggml-vocab-llama-bpe.gguf",
    "vocab/ggml-vocab-gpt-2.gguf",     "vocab/ggml-vocab-falcon.gguf",
    "vocab/ggml-vocab-starcoder.gguf", "vocab/ggml-vocab-deepseek-llm.gguf",
    "models/stories260K.gguf",
};
#define N_FILES G_N_ELEMENTS(files)

/* Pre-tokenizers whose patterns run on the regex evaluator, over a byte-level vocabulary of
 * the 256 byte characters (no real model needed to exercise the pre-tokenization). */
static const char *const generic_pres[] = {
    "gpt-4o",  "tekken",     "deepseek-v3", "jais-2",   "chameleon", "superbpe",
    "afmoe",   "exaone-moe", "youtu",       "tiny_aya", "spark2_5",  "granite-embed-multi-97m",
    "default",
};
#define N_TOKS (N_FILES + G_N_ELEMENTS(generic_pres))

static wh_tokenizer *toks[N_TOKS];
static gboolean loaded;

static void
free_all(void)
{
  for (gsize i = 0; i < N_TOKS; i++)
    wh_tokenizer_free(toks[i]);
}

static void
load_all(void)
{
  if (loaded)
    return;
  loaded = TRUE;
  for (gsize i = 0; i < N_FILES; i++) {
    g_autofree char *path = wh_test_shared_path(files[i]);
    g_autoptr(GError) error = NULL;
    wh_gguf *g = wh_gguf_open(path, &error);
    if (!g)
      continue; /* shared data missing: that vocabulary is skipped */
    toks[i] = wh_tokenizer_new_from_gguf(g, &error);
    wh_gguf_close(g);
    g_assert_no_error(error);
  }
  char *texts[256];
  for (guint b = 0; b < 256; b++) {
    GString *t = g_string_new(NULL);
    /* GPT-2 byte table (spec §5.3) */
    gunichar c = b;
    if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)))
      c = 0x100 + (b <= 0x20 ? b : b <= 0xA0 ? 33 + (b - 0x7F) : 67);
    g_string_append_unichar(t, c);
    texts[b] = g_string_free(t, FALSE);
  }
  const char *merges[] = {"a b"};
  for (gsize i = 0; i < G_N_ELEMENTS(generic_pres); i++) {
    wh_tokenizer_vocab v;
    wh_tokenizer_vocab_init(&v);
    v.model = "gpt2";
    v.pre = generic_pres[i];
    v.n_tokens = 256;
    v.tokens = (const char *const *)texts;
    v.n_merges = 1;
    v.merges = merges;
    g_autoptr(GError) error = NULL;
    toks[N_FILES + i] = wh_tokenizer_new_from_vocab(&v, &error);
    g_assert_no_error(error);
  }
  for (guint b = 0; b < 256; b++)
    g_free(texts[b]);
  atexit(free_all);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  load_all();
  if (size < 2)
    return 0;
  gsize which = data[0] % N_TOKS;
  const wh_tokenizer *tok = toks[which];
  if (!tok)
    return 0;
  gboolean add_special = data[1] & 1, parse_special = (data[1] >> 1) & 1;
  const char *text = (const char *)data + 2;
  gsize len = size - 2;

  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint32));
  g_autoptr(GError) error = NULL;
  gint n = wh_tokenizer_tokenize(tok, text, len, add_special, parse_special, ids, &error);
  g_assert_no_error(error);
  g_assert_cmpint(n, ==, (gint)ids->len);
  guint n_vocab = wh_tokenizer_n_vocab(tok);
  for (guint i = 0; i < ids->len; i++) {
    gint32 id = g_array_index(ids, gint32, i);
    g_assert_cmpint(id, >=, 0);
    g_assert_cmpint(id, <, (gint32)n_vocab);
  }

  /* Streaming: when the pieces form valid UTF-8, every chunk is whole characters; in any
   * case the chunks add up to the pieces. (Valid text can still give invalid pieces: a
   * byte-level vocabulary without a token for a rare lead byte drops it, spec §6.2.) */
  gboolean valid = g_utf8_validate(text, len, NULL);
  g_autoptr(wh_detokenizer) d = wh_detokenizer_new(tok, parse_special);
  g_autoptr(GString) streamed = g_string_new(NULL), pieces = g_string_new(NULL);
  g_autoptr(GArray) cuts = g_array_new(FALSE, FALSE, sizeof(gsize));
  for (guint i = 0; i < ids->len; i++) {
    gint32 id = g_array_index(ids, gint32, i);
    wh_detokenizer_push(d, id, streamed);
    wh_tokenizer_token_to_piece(tok, id, parse_special, 0, pieces);
    g_array_append_val(cuts, streamed->len);
  }
  wh_detokenizer_flush(d, streamed);
  g_assert_cmpmem(streamed->str, streamed->len, pieces->str, pieces->len);
  if (g_utf8_validate(pieces->str, pieces->len, NULL)) {
    gsize prev = 0;
    for (guint i = 0; i < cuts->len; i++) {
      gsize cut = g_array_index(cuts, gsize, i);
      g_assert_true(g_utf8_validate(streamed->str + prev, cut - prev, NULL));
      prev = cut;
    }
  }

  gsize out_len;
  g_autofree char *back =
      wh_tokenizer_detokenize(tok, (const gint32 *)ids->data, ids->len, TRUE, FALSE, &out_len);
  gboolean has_lower_block = FALSE; /* a literal U+2581 in SPM text prints as a space */
  for (gsize i = 0; i + 3 <= len; i++)
    has_lower_block |= memcmp(text + i, "\xe2\x96\x81", 3) == 0;
  if (!add_special && !parse_special && valid && (which == 1 || (which == 0 && !has_lower_block)))
    g_assert_cmpmem(back, out_len, text, len);
  return 0;
}

void
wh_fuzz_collect_seeds(GPtrArray *seeds)
{
  g_autofree char *inp = wh_test_shared_path("vocab/ggml-vocab-llama-spm.gguf.inp");
  g_autofree char *text = NULL;
  gsize len = 0;
  guint k = 0;
  if (g_file_get_contents(inp, &text, &len, NULL)) {
    g_auto(GStrv) parts = g_strsplit(text, "\n__ggml_vocab_test__\n", -1);
    for (char **p = parts; *p; p++, k++) {
      GByteArray *b = g_byte_array_new();
      guint8 head[2] = {(guint8)(k % N_TOKS), (guint8)(k / N_TOKS)};
      g_byte_array_append(b, head, 2);
      g_byte_array_append(b, (const guint8 *)*p, strlen(*p));
      g_ptr_array_add(seeds, g_byte_array_free_to_bytes(b));
    }
  }
  static const char *const extra[] = {
      "<s>Hello</s> world",
      "<|im_start|>user\nhi<|im_end|>\n",
      "<|begin_of_text|>x<|eot_id|>",
      "M\xc3\xbcnchen \xf0\x9f\x98\x80 \xe4\xb8\x80 \xff\xfe \xed\xa0\x80",
      "  3  \r\n\r\n\t\v 12345",
      "'s 'S 'Re 'LL don't",
      "<|end|><|user|> <|assistant|>\n",
      "\xe2\x96\x81<0x0A>",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(extra); i++)
    for (guint v = 0; v < N_TOKS; v++) {
      GByteArray *b = g_byte_array_new();
      guint8 head[2] = {(guint8)v, (guint8)(i & 3)};
      g_byte_array_append(b, head, 2);
      g_byte_array_append(b, (const guint8 *)extra[i], strlen(extra[i]));
      g_ptr_array_add(seeds, g_byte_array_free_to_bytes(b));
    }
}
