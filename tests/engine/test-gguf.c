/* test-gguf.c — the GGUF container: reader on every shared file, the spec's worked example,
 * all value types, hand-made and corrupted files, writer round trips (byte-identical),
 * split models, writer failure paths, and imatrix files (GGUF and legacy .dat). */
#include "config.h"

#include "gguf/gguf.h"
#include "gguf/gguf-writer.h"
#include "gguf/imatrix.h"
#include "wh-test-util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* helpers */

static GBytes *
read_bytes(const char *path)
{
  char *data = NULL;
  gsize len = 0;
  GError *error = NULL;
  g_file_get_contents(path, &data, &len, &error);
  g_assert_no_error(error);
  return g_bytes_new_take(data, len);
}

static void
put_u32(GByteArray *b, guint32 v)
{
  v = GUINT32_TO_LE(v);
  g_byte_array_append(b, (const guint8 *)&v, 4);
}

static void
put_u64(GByteArray *b, guint64 v)
{
  v = GUINT64_TO_LE(v);
  g_byte_array_append(b, (const guint8 *)&v, 8);
}

static void
put_str(GByteArray *b, const char *s)
{
  put_u64(b, strlen(s));
  g_byte_array_append(b, (const guint8 *)s, (guint)strlen(s));
}

static void
pad_to(GByteArray *b, guint a)
{
  static const guint8 z[64];
  g_byte_array_append(b, z, (a - b->len % a) % a);
}

static void
poke(GByteArray *b, gsize off, guint width, guint64 v)
{
  g_assert_cmpuint(off + width, <=, b->len);
  for (guint i = 0; i < width; i++)
    b->data[off + i] = (guint8)(v >> (8 * i));
}

/* Directory end of the data (tensor bytes needed), i.e. the shortest prefix that must load. */
static guint64
required_size(const wh_gguf *g, guint64 file_size)
{
  guint64 n = wh_gguf_n_tensors(g);
  if (n == 0)
    return file_size;
  const wh_gguf_tensor *t = wh_gguf_get_tensor(g, n - 1);
  return wh_gguf_data_offset(g, 0) + t->offset + t->n_bytes;
}

/* ---------------------------------------------------------------------------------------- */
/* type table */

static void
test_types(void)
{
  /* block-formats.md §3 */
  struct {
    wh_type t;
    const char *name;
    guint bs, ts;
  } rows[] = {
      {WH_TYPE_F32, "F32", 1, 4},
      {WH_TYPE_F16, "F16", 1, 2},
      {WH_TYPE_Q4_0, "Q4_0", 32, 18},
      {WH_TYPE_Q4_1, "Q4_1", 32, 20},
      {WH_TYPE_Q5_0, "Q5_0", 32, 22},
      {WH_TYPE_Q5_1, "Q5_1", 32, 24},
      {WH_TYPE_Q8_0, "Q8_0", 32, 34},
      {WH_TYPE_Q8_1, "Q8_1", 32, 36},
      {WH_TYPE_Q2_K, "Q2_K", 256, 84},
      {WH_TYPE_Q3_K, "Q3_K", 256, 110},
      {WH_TYPE_Q4_K, "Q4_K", 256, 144},
      {WH_TYPE_Q5_K, "Q5_K", 256, 176},
      {WH_TYPE_Q6_K, "Q6_K", 256, 210},
      {WH_TYPE_Q8_K, "Q8_K", 256, 292},
      {WH_TYPE_IQ2_XXS, "IQ2_XXS", 256, 66},
      {WH_TYPE_IQ2_XS, "IQ2_XS", 256, 74},
      {WH_TYPE_IQ3_XXS, "IQ3_XXS", 256, 98},
      {WH_TYPE_IQ1_S, "IQ1_S", 256, 50},
      {WH_TYPE_IQ4_NL, "IQ4_NL", 32, 18},
      {WH_TYPE_IQ3_S, "IQ3_S", 256, 110},
      {WH_TYPE_IQ2_S, "IQ2_S", 256, 82},
      {WH_TYPE_IQ4_XS, "IQ4_XS", 256, 136},
      {WH_TYPE_I8, "I8", 1, 1},
      {WH_TYPE_I16, "I16", 1, 2},
      {WH_TYPE_I32, "I32", 1, 4},
      {WH_TYPE_I64, "I64", 1, 8},
      {WH_TYPE_F64, "F64", 1, 8},
      {WH_TYPE_IQ1_M, "IQ1_M", 256, 56},
      {WH_TYPE_BF16, "BF16", 1, 2},
      {WH_TYPE_TQ1_0, "TQ1_0", 256, 54},
      {WH_TYPE_TQ2_0, "TQ2_0", 256, 66},
      {WH_TYPE_MXFP4, "MXFP4", 32, 17},
      {WH_TYPE_NVFP4, "NVFP4", 64, 36},
      {WH_TYPE_Q1_0, "Q1_0", 128, 18},
      {WH_TYPE_Q2_0, "Q2_0", 64, 18},
  };
  guint n_valid = 0;
  for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
    const wh_type_traits *tr = wh_type_get_traits(rows[i].t);
    g_assert_nonnull(tr);
    g_assert_cmpstr(tr->name, ==, rows[i].name);
    g_assert_cmpuint(tr->block_size, ==, rows[i].bs);
    g_assert_cmpuint(tr->type_size, ==, rows[i].ts);
    g_assert_true(wh_type_is_valid(rows[i].t));
    g_assert_cmpint(wh_type_from_name(rows[i].name), ==, rows[i].t);
    char *lower = g_ascii_strdown(rows[i].name, -1);
    g_assert_cmpint(wh_type_from_name(lower), ==, rows[i].t);
    g_free(lower);
  }
  for (guint id = 0; id < 300; id++)
    n_valid += wh_type_is_valid(id);
  g_assert_cmpuint(n_valid, ==, G_N_ELEMENTS(rows));
  guint removed[] = {4, 5, 31, 32, 33, 36, 37, 38, 43, 0xFFFFFFFFu};
  for (guint i = 0; i < G_N_ELEMENTS(removed); i++) {
    g_assert_false(wh_type_is_valid(removed[i]));
    g_assert_null(wh_type_get_traits((wh_type)removed[i]));
  }
  g_assert_cmpint(wh_type_from_name("Q4_2"), ==, -1);
  g_assert_cmpint(wh_type_from_name(NULL), ==, -1);
  g_assert_cmpuint(wh_type_row_size(WH_TYPE_Q4_K, 4096), ==, 16 * 144);
  g_assert_cmpuint(wh_type_row_size(WH_TYPE_Q4_K, 100), ==, 0);
  g_assert_cmpuint(wh_type_row_size(WH_TYPE_F16, 7), ==, 14);
  g_assert_cmpfloat(wh_type_bits_per_weight(WH_TYPE_Q6_K), ==, 6.5625);
  g_assert_cmpfloat(wh_type_bits_per_weight(WH_TYPE_IQ1_S), ==, 1.5625);

  /* ftype-mixes.md ftype table */
  g_assert_cmpstr(wh_ftype_name(15), ==, "Q4_K_M");
  g_assert_cmpstr(wh_ftype_name(0), ==, "ALL_F32");
  g_assert_null(wh_ftype_name(4));
  g_assert_null(wh_ftype_name(33));
  g_assert_cmpint(wh_ftype_from_name("q4_k_m"), ==, 15);
  g_assert_cmpint(wh_ftype_from_name("F32"), ==, 0);
  g_assert_cmpint(wh_ftype_from_name("Q4_K"), ==, -1);
  g_assert_cmpint(wh_ftype_base_type(28), ==, WH_TYPE_IQ2_XS); /* IQ2_S */
  g_assert_cmpint(wh_ftype_base_type(29), ==, WH_TYPE_IQ2_S);  /* IQ2_M */
  g_assert_cmpint(wh_ftype_base_type(22), ==, WH_TYPE_IQ3_S);  /* IQ3_XS */
  g_assert_cmpint(wh_ftype_base_type(5), ==, WH_TYPE_INVALID);
  guint n_ftypes = 0;
  for (guint id = 0; id < 64; id++)
    if (wh_ftype_name(id)) {
      n_ftypes++;
      g_assert_cmpint(wh_ftype_from_name(wh_ftype_name(id)), ==, id);
      g_assert_true(wh_type_is_valid(wh_ftype_base_type(id)));
    }
  g_assert_cmpuint(n_ftypes, ==, 32);
}

/* ---------------------------------------------------------------------------------------- */
/* gguf-container.md §9 */

static void
test_worked_example(void)
{
  char *path = wh_test_shared_file_or_skip("spec/format-tables.gguf");
  if (!path)
    return;
  GBytes *bytes = read_bytes(path);
  const guint8 *d = g_bytes_get_data(bytes, NULL);
  g_assert_cmpmem(d, 4, "GGUF", 4);
  g_assert_cmpmem(d + 0x20, 20, "general.architecture", 20);
  g_assert_cmpmem(d + 0x40, 13, "format-tables", 13);

  GError *error = NULL;
  wh_gguf *g = wh_gguf_open(path, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(wh_gguf_version(g), ==, 3);
  g_assert_cmpuint(wh_gguf_n_tensors(g), ==, 10);
  g_assert_cmpuint(wh_gguf_n_kv(g), ==, 2);
  g_assert_cmpstr(wh_gguf_kv_key(g, 0), ==, "general.architecture");
  g_assert_cmpstr(wh_gguf_kv_key(g, 1), ==, "tables.note");
  g_assert_cmpstr(wh_gguf_get_architecture(g), ==, "format-tables");
  g_assert_cmpuint(wh_gguf_alignment(g), ==, 32);
  g_assert_cmpuint(wh_gguf_data_offset(g, 0), ==, 864);
  static const guint64 offsets[] = {0, 32, 160, 2208, 6304, 14496, 15520, 17568, 17600, 17632};
  for (guint i = 0; i < 10; i++) {
    const wh_gguf_tensor *t = wh_gguf_get_tensor(g, i);
    g_assert_cmpuint(t->offset, ==, offsets[i]);
    g_assert_true(t->data == d + 864 + offsets[i] ||
                  memcmp(t->data, d + 864 + offsets[i], t->n_bytes) == 0);
    g_assert_true(wh_gguf_find_tensor(g, t->name) == t);
  }
  const wh_gguf_tensor *k = wh_gguf_find_tensor(g, "kmask_iq2xs");
  g_assert_nonnull(k);
  g_assert_cmpint(k->type, ==, WH_TYPE_I8);
  g_assert_cmpuint(k->n_bytes, ==, 8);
  /* kmask_iq2xs holds the bit masks 1, 2, 4, ..., 128 */
  for (guint i = 0; i < 8; i++)
    g_assert_cmpuint(k->data[i], ==, 1u << i);
  g_assert_null(wh_gguf_find_tensor(g, "nope"));
  g_assert_null(wh_gguf_get_tensor(g, 10));
  wh_gguf_close(g);
  g_bytes_unref(bytes);
  g_free(path);
}

/* ---------------------------------------------------------------------------------------- */
/* every shared file */

static void
check_tensors_sane(const wh_gguf *g)
{
  for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) {
    const wh_gguf_tensor *t = wh_gguf_get_tensor(g, i);
    guint64 rows = t->ne[1] * t->ne[2] * t->ne[3];
    g_assert_cmpuint(t->n_elements, ==, t->ne[0] * rows);
    g_assert_cmpuint(t->n_bytes, ==, wh_type_row_size(t->type, t->ne[0]) * rows);
    g_assert_cmpuint(t->offset % wh_gguf_alignment(g), ==, 0);
    g_assert_cmpuint(wh_gguf_data_offset(g, t->split_index) + t->offset + t->n_bytes, <=,
                     wh_gguf_file_size(g, t->split_index));
  }
}

/* Every tensor of a real file passes the optional data check. */
static void
check_all_data(const wh_gguf *g)
{
  for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) {
    GError *error = NULL;
    g_assert_true(wh_gguf_check_tensor_data(wh_gguf_get_tensor(g, i), &error));
    g_assert_no_error(error);
  }
}

/* A model file: the hyper-parameters and tensors agree with each other. */
static void
check_model(const wh_gguf *g)
{
  const char *arch = wh_gguf_get_architecture(g);
  g_assert_nonnull(arch);
  char *k = g_strdup_printf("%s.block_count", arch);
  guint64 n_layer = 0, n_embd = 0;
  g_assert_true(wh_gguf_get_uint(g, k, &n_layer));
  g_free(k);
  k = g_strdup_printf("%s.embedding_length", arch);
  g_assert_true(wh_gguf_get_uint(g, k, &n_embd));
  g_free(k);
  wh_gguf_array tokens;
  g_assert_true(wh_gguf_get_array(g, "tokenizer.ggml.tokens", &tokens));
  g_assert_cmpint(tokens.type, ==, WH_GGUF_STRING);
  const wh_gguf_tensor *emb = wh_gguf_find_tensor(g, "token_embd.weight");
  g_assert_nonnull(emb);
  g_assert_cmpuint(emb->ne[0], ==, n_embd);
  g_assert_cmpuint(emb->ne[1], ==, tokens.n);
  for (guint64 l = 0; l < n_layer; l++) {
    char *name = g_strdup_printf("blk.%" G_GUINT64_FORMAT ".attn_norm.weight", l);
    const wh_gguf_tensor *t = wh_gguf_find_tensor(g, name);
    g_assert_nonnull(t);
    g_assert_cmpuint(t->ne[0], ==, n_embd);
    g_free(name);
  }
  char *beyond = g_strdup_printf("blk.%" G_GUINT64_FORMAT ".attn_norm.weight", n_layer);
  g_assert_null(wh_gguf_find_tensor(g, beyond));
  g_free(beyond);
}

static void
test_stories(void)
{
  char *path = wh_test_shared_file_or_skip("models/stories260K.gguf");
  if (!path)
    return;
  GError *error = NULL;
  wh_gguf *g = wh_gguf_open(path, &error);
  g_assert_no_error(error);
  /* facts from shared/README.md */
  g_assert_cmpstr(wh_gguf_get_architecture(g), ==, "llama");
  g_assert_cmpuint(wh_gguf_n_tensors(g), ==, 3 + 5 * 9);
  guint64 v = 0;
  g_assert_true(wh_gguf_get_uint(g, "llama.embedding_length", &v));
  g_assert_cmpuint(v, ==, 64);
  g_assert_true(wh_gguf_get_uint(g, "llama.block_count", &v));
  g_assert_cmpuint(v, ==, 5);
  g_assert_true(wh_gguf_get_uint(g, "llama.attention.head_count", &v));
  g_assert_cmpuint(v, ==, 8);
  g_assert_true(wh_gguf_get_uint(g, "llama.attention.head_count_kv", &v));
  g_assert_cmpuint(v, ==, 4);
  g_assert_true(wh_gguf_get_uint(g, "llama.feed_forward_length", &v));
  g_assert_cmpuint(v, ==, 172);
  g_assert_cmpint(wh_gguf_kv_type(g, wh_gguf_find_key(g, "llama.block_count")), ==, WH_GGUF_UINT32);
  g_assert_cmpstr(wh_gguf_get_string(g, "tokenizer.ggml.model"), ==, "llama");
  g_assert_null(wh_gguf_get_string(g, "llama.block_count")); /* not a string */
  double eps;
  g_assert_true(wh_gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &eps));
  g_assert_cmpfloat_with_epsilon(eps, 1e-5, 1e-12);
  gboolean b;
  g_assert_false(wh_gguf_get_bool(g, "llama.block_count", &b));
  wh_gguf_array a;
  g_assert_true(wh_gguf_get_array(g, "tokenizer.ggml.tokens", &a));
  g_assert_cmpuint(a.n, ==, 512);
  gsize len;
  g_assert_cmpstr(wh_gguf_array_get_string(&a, 0, &len), ==, "<unk>");
  g_assert_cmpuint(len, ==, 5);
  g_assert_cmpstr(wh_gguf_array_get_string(&a, 1, NULL), ==, "<s>");
  g_assert_cmpstr(wh_gguf_array_get_string(&a, 2, NULL), ==, "</s>");
  g_assert_null(wh_gguf_array_get_string(&a, 512, NULL));
  g_assert_cmpint(wh_gguf_array_get_int(&a, 0), ==, 0); /* wrong element type */
  g_assert_true(wh_gguf_get_array(g, "tokenizer.ggml.token_type", &a));
  g_assert_cmpint(a.type, ==, WH_GGUF_INT32);
  g_assert_cmpint(wh_gguf_array_get_int(&a, 0), ==, 2); /* <unk> is UNKNOWN */
  g_assert_cmpint(wh_gguf_array_get_int(&a, 1), ==, 3); /* <s> is CONTROL */
  g_assert_true(wh_gguf_get_array(g, "tokenizer.ggml.scores", &a));
  g_assert_cmpint(a.type, ==, WH_GGUF_FLOAT32);
  g_assert_nonnull(a.raw);
  const wh_gguf_tensor *t = wh_gguf_find_tensor(g, "blk.0.ffn_gate.weight");
  g_assert_nonnull(t);
  g_assert_cmpint(t->type, ==, WH_TYPE_F32);
  g_assert_cmpuint(t->n_dims, ==, 2);
  g_assert_cmpuint(t->ne[0], ==, 64);
  g_assert_cmpuint(t->ne[1], ==, 172);
  t = wh_gguf_find_tensor(g, "blk.4.attn_k.weight");
  g_assert_cmpuint(t->ne[1], ==, 32); /* 4 KV heads x head dim 8 */
  /* releasing a tensor's pages keeps its bytes readable */
  const wh_gguf_tensor *big = wh_gguf_find_tensor(g, "token_embd.weight");
  guint8 *before = g_memdup2(big->data, big->n_bytes);
  wh_gguf_tensor_release(g, big);
  g_assert_cmpmem(big->data, big->n_bytes, before, big->n_bytes);
  g_free(before);
  check_model(g);
  check_tensors_sane(g);
  wh_gguf_close(g);
  g_free(path);
}

static void
test_reference_models(void)
{
  char *dir = wh_test_shared_file_or_skip("reference/models");
  if (!dir)
    return;
  GDir *d = g_dir_open(dir, 0, NULL);
  const char *name;
  guint n_files = 0;
  while ((name = g_dir_read_name(d))) {
    if (!g_str_has_suffix(name, ".gguf"))
      continue;
    char *path = g_build_filename(dir, name, NULL);
    GError *error = NULL;
    wh_gguf *g = wh_gguf_open(path, &error);
    g_assert_no_error(error);
    check_model(g);
    check_tensors_sane(g);
    check_all_data(g);
    for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) /* mmap + aligned data start */
      g_assert_cmpuint(((guintptr)wh_gguf_get_tensor(g, i)->data) % 32, ==, 0);
    if (g_str_has_prefix(name, "synth-")) {
      /* shared/README.md: n_embd 256, 4 heads, 2 KV heads, n_ff 768, 4 layers, 512 tokens */
      const char *arch = wh_gguf_get_architecture(g);
      g_assert_true(g_str_has_prefix(name + 6, arch));
      struct {
        const char *key;
        guint64 value;
      } facts[] = {{"embedding_length", 256},
                   {"attention.head_count", 4},
                   {"attention.head_count_kv", 2},
                   {"feed_forward_length", 768},
                   {"block_count", 4}};
      for (guint i = 0; i < G_N_ELEMENTS(facts); i++) {
        char *k = g_strdup_printf("%s.%s", arch, facts[i].key);
        guint64 v = 0;
        g_assert_true(wh_gguf_get_uint(g, k, &v));
        g_assert_cmpuint(v, ==, facts[i].value);
        g_free(k);
      }
      /* the plain-type files store their attention weights in that type */
      const char *plain[] = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "F16"};
      for (guint i = 0; i < G_N_ELEMENTS(plain); i++) {
        char *suffix = g_strdup_printf("-%s.gguf", plain[i]);
        if (g_str_has_prefix(name, "synth-llama-") && g_str_has_suffix(name, suffix)) {
          const wh_gguf_tensor *t = wh_gguf_find_tensor(g, "blk.0.attn_q.weight");
          g_assert_nonnull(t);
          g_assert_cmpstr(wh_type_name(t->type), ==, plain[i]);
        }
        g_free(suffix);
      }
      if (strstr(name, "-F16") == NULL) {
        guint64 qv = 0, ft = 0;
        g_assert_true(wh_gguf_get_uint(g, "general.quantization_version", &qv));
        g_assert_cmpuint(qv, ==, 2);
        g_assert_true(wh_gguf_get_uint(g, "general.file_type", &ft));
        /* the ftype name is the one in the file name */
        char *tag = g_strdup_printf("-%s", wh_ftype_name((guint32)ft));
        g_assert_nonnull(strstr(name, tag));
        g_free(tag);
      }
      if (strstr(name, "-imat")) /* written by the quantizer (§7.4) */
        g_assert_nonnull(wh_gguf_get_string(g, "quantize.imatrix.file"));
    }
    wh_gguf_close(g);
    g_free(path);
    n_files++;
  }
  g_dir_close(d);
  g_assert_cmpuint(n_files, >=, 31);
  g_free(dir);
}

static void
test_logits_files(void)
{
  char *dir = wh_test_shared_file_or_skip("reference/logits");
  if (!dir)
    return;
  GDir *d = g_dir_open(dir, 0, NULL);
  const char *name;
  guint n_files = 0;
  while ((name = g_dir_read_name(d))) {
    if (!g_str_has_suffix(name, ".gguf"))
      continue;
    char *path = g_build_filename(dir, name, NULL);
    GError *error = NULL;
    wh_gguf *g = wh_gguf_open(path, &error);
    g_assert_no_error(error);
    check_tensors_sane(g);
    guint64 n_prompts = 0;
    g_assert_true(wh_gguf_get_uint(g, "reference.prompt_count", &n_prompts));
    g_assert_cmpuint(n_prompts, ==, 4);
    g_assert_cmpuint(wh_gguf_n_tensors(g), ==, n_prompts);
    for (guint64 i = 0; i < n_prompts; i++) {
      char *k = g_strdup_printf("reference.prompt.%" G_GUINT64_FORMAT ".tokens", i);
      wh_gguf_array toks, greedy;
      g_assert_true(wh_gguf_get_array(g, k, &toks));
      g_free(k);
      g_assert_cmpint(wh_gguf_array_get_int(&toks, 0), ==, 1); /* BOS */
      k = g_strdup_printf("reference.prompt.%" G_GUINT64_FORMAT ".greedy", i);
      g_assert_true(wh_gguf_get_array(g, k, &greedy));
      g_assert_cmpuint(greedy.n, ==, 32);
      g_free(k);
      k = g_strdup_printf("logits.%" G_GUINT64_FORMAT, i);
      const wh_gguf_tensor *t = wh_gguf_find_tensor(g, k);
      g_free(k);
      g_assert_nonnull(t);
      g_assert_cmpint(t->type, ==, WH_TYPE_F32);
      g_assert_cmpuint(t->ne[0], ==, 512); /* the stories260K vocabulary */
      g_assert_cmpuint(t->ne[1], ==, toks.n);
      /* the first greedy token is the argmax of the last position's logits */
      const float *last = (const float *)t->data + (toks.n - 1) * 512;
      guint best = 0;
      for (guint j = 1; j < 512; j++)
        if (last[j] > last[best])
          best = j;
      g_assert_cmpint(wh_gguf_array_get_int(&greedy, 0), ==, best);
    }
    wh_gguf_close(g);
    g_free(path);
    n_files++;
  }
  g_dir_close(d);
  g_assert_cmpuint(n_files, >=, 29);
  g_free(dir);
}

static void
test_vocab_files(void)
{
  struct {
    const char *file;
    guint64 n_tokens;
    const char *model;
  } vocabs[] = {
      {"ggml-vocab-llama-spm.gguf", 32000, "llama"},
      {"ggml-vocab-llama-bpe.gguf", 128256, "gpt2"},
      {"ggml-vocab-qwen2.gguf", 151936, "gpt2"},
      {"ggml-vocab-gpt-2.gguf", 50257, "gpt2"},
      {"ggml-vocab-phi-3.gguf", 32064, "llama"},
      {"ggml-vocab-falcon.gguf", 65024, "gpt2"},
      {"ggml-vocab-starcoder.gguf", 49152, "gpt2"},
      {"ggml-vocab-deepseek-llm.gguf", 102400, "gpt2"},
  };
  for (guint i = 0; i < G_N_ELEMENTS(vocabs); i++) {
    char *rel = g_build_filename("vocab", vocabs[i].file, NULL);
    char *path = wh_test_shared_file_or_skip(rel);
    g_free(rel);
    if (!path)
      return;
    GError *error = NULL;
    wh_gguf *g = wh_gguf_open(path, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(wh_gguf_n_tensors(g), ==, 0);
    g_assert_cmpstr(wh_gguf_get_string(g, "tokenizer.ggml.model"), ==, vocabs[i].model);
    wh_gguf_array a;
    g_assert_true(wh_gguf_get_array(g, "tokenizer.ggml.tokens", &a));
    g_assert_cmpuint(a.n, ==, vocabs[i].n_tokens);
    /* every token string is reachable and its length is consistent */
    for (guint64 j = 0; j < a.n; j++) {
      gsize len;
      const char *s = wh_gguf_array_get_string(&a, j, &len);
      g_assert_nonnull(s);
      g_assert_cmpuint(s[len], ==, 0);
    }
    if (strcmp(vocabs[i].model, "gpt2") == 0) {
      wh_gguf_array m;
      g_assert_true(wh_gguf_get_array(g, "tokenizer.ggml.merges", &m));
      g_assert_cmpint(m.type, ==, WH_GGUF_STRING);
      g_assert_nonnull(strchr(wh_gguf_array_get_string(&m, 0, NULL), ' '));
    }
    if (g_str_has_suffix(vocabs[i].file, "gpt-2.gguf"))
      g_assert_cmpstr(wh_gguf_array_get_string(&a, 50256, NULL), ==, "<|endoftext|>");
    if (g_str_has_suffix(vocabs[i].file, "llama-bpe.gguf"))
      g_assert_cmpstr(wh_gguf_array_get_string(&a, 128000, NULL), ==, "<|begin_of_text|>");
    guint64 bos;
    if (wh_gguf_get_uint(g, "tokenizer.ggml.bos_token_id", &bos) && bos != 0xFFFFFFFFu)
      g_assert_cmpuint(bos, <, a.n);
    wh_gguf_close(g);
    g_free(path);
  }
}

static void
test_quant_reference(void)
{
  char *path = wh_test_shared_file_or_skip("reference/quant-reference.gguf");
  if (!path)
    return;
  GError *error = NULL;
  wh_gguf *g = wh_gguf_open(path, &error);
  g_assert_no_error(error);
  check_tensors_sane(g);
  check_all_data(g); /* every storage type, including IQ1_M and MXFP4 */
  const wh_gguf_tensor *in = wh_gguf_find_tensor(g, "input");
  g_assert_nonnull(in);
  g_assert_cmpint(in->type, ==, WH_TYPE_F32);
  g_assert_cmpuint(in->ne[0], ==, 1024);
  g_assert_cmpuint(in->ne[1], ==, 16);
  const wh_gguf_tensor *imat = wh_gguf_find_tensor(g, "imatrix");
  g_assert_nonnull(imat);
  g_assert_cmpuint(imat->n_elements, ==, 1024);
  guint n_q = 0;
  for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) {
    const wh_gguf_tensor *t = wh_gguf_get_tensor(g, i);
    const char *tname = NULL;
    if (g_str_has_prefix(t->name, "q."))
      tname = t->name + 2;
    else if (g_str_has_prefix(t->name, "q_imat."))
      tname = t->name + 7;
    if (!tname)
      continue;
    n_q++;
    g_assert_cmpint(t->type, ==, wh_type_from_name(tname));
    g_assert_cmpuint(t->ne[0], ==, 1024);
    g_assert_cmpuint(t->ne[1], ==, 16);
    char *dq = g_strconcat("d", t->name, NULL);
    const wh_gguf_tensor *d = wh_gguf_find_tensor(g, dq);
    g_free(dq);
    g_assert_nonnull(d);
    g_assert_cmpint(d->type, ==, WH_TYPE_F32);
    g_assert_cmpuint(d->n_elements, ==, 16 * 1024);
    char *k = g_strdup_printf("reference.rmse%s.%s", t->name[1] == '_' ? "_imat" : "", tname);
    double rmse = -1;
    g_assert_true(wh_gguf_get_float(g, k, &rmse));
    g_assert_cmpfloat(rmse, >=, 0);
    g_free(k);
  }
  g_assert_cmpuint(n_q, >=, 25);
  wh_gguf_close(g);
  g_free(path);
}

/* The data check finds Inf/NaN elements and scales, and MXFP4 exponent 255. */
static void
test_check_data(void)
{
  guint8 buf[4 * 292];
  struct {
    wh_type type;
    gsize off;   /* where to poke */
    guint width; /* 1, 2 or 4 bytes */
    guint64 value;
  } cases[] = {
      {WH_TYPE_F32, 8, 4, 0x7FC00000},    /* NaN element 2 */
      {WH_TYPE_F32, 0, 4, 0xFF800000},    /* -Inf */
      {WH_TYPE_F16, 6, 2, 0x7C00},        /* Inf */
      {WH_TYPE_BF16, 2, 2, 0x7FC1},       /* NaN */
      {WH_TYPE_F64, 8, 4, 0},             /* (low word) - then high word below */
      {WH_TYPE_Q4_0, 18, 2, 0x7E00},      /* block 1 d */
      {WH_TYPE_Q4_1, 2, 2, 0xFC00},       /* m */
      {WH_TYPE_Q2_K, 84 + 82, 2, 0x7C01}, /* block 1 dmin */
      {WH_TYPE_Q3_K, 108, 2, 0x7C00},
      {WH_TYPE_Q4_K, 144 + 2, 2, 0x7C00},
      {WH_TYPE_Q6_K, 208, 2, 0x7C00},
      {WH_TYPE_TQ1_0, 52, 2, 0x7C00},
      {WH_TYPE_TQ2_0, 66 + 64, 2, 0x7C00},
      {WH_TYPE_IQ4_XS, 0, 2, 0x7C00},
      {WH_TYPE_Q8_K, 292, 4, 0x7F800000},
      {WH_TYPE_MXFP4, 17 * 2, 1, 255},
      {WH_TYPE_IQ1_M, 52, 2, 0xC000}, /* sc[2] top nibble C ... */
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    const wh_type_traits *tr = wh_type_get_traits(cases[i].type);
    wh_gguf_tensor t = {"t", cases[i].type, 1, {tr->block_size * 4, 1, 1, 1}};
    t.n_elements = t.ne[0];
    t.n_bytes = wh_type_row_size(t.type, t.ne[0]);
    g_assert_cmpuint(t.n_bytes, <=, sizeof buf);
    memset(buf, 0, sizeof buf);
    t.data = buf;
    GError *error = NULL;
    g_assert_true(wh_gguf_check_tensor_data(&t, &error)); /* zeros are fine */
    for (guint k = 0; k < cases[i].width; k++)
      buf[cases[i].off + k] = (guint8)(cases[i].value >> (8 * k));
    if (cases[i].type == WH_TYPE_F64)
      buf[15] = 0x7F, buf[14] = 0xF0; /* element 1 = +Inf */
    if (cases[i].type == WH_TYPE_IQ1_M)
      buf[55] = 0x70; /* ... and sc[3] top nibble 7: super-scale 0x7C00 = Inf */
    if (wh_gguf_check_tensor_data(&t, &error))
      g_error("case %u (%s) passed the check", i, wh_type_name(t.type));
    g_assert_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_CORRUPT);
    g_assert_nonnull(strstr(error->message, "'t'"));
    g_clear_error(&error);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* a hand-made file with known field offsets */

typedef struct {
  GByteArray *b;
  gsize tensor_count, kv_count;
  gsize key0_len, kv0_type, kv0_str_len;
  gsize arr_elem_type, arr_count, arr_str0_len;
  gsize align_value, flag_value, key3;
  gsize t0_name_len, t0_ndims, t0_ne0, t0_ne1, t0_type, t0_offset;
  gsize t1_name, t1_offset;
} mini;

/* 4 KVs (string, string array with an empty element, general.alignment, bool stored as 2),
 * 2 tensors (Q8_0 [32, 2], F32 [4]). */
static mini
mini_build(void)
{
  mini m = {0};
  GByteArray *b = m.b = g_byte_array_new();
  g_byte_array_append(b, (const guint8 *)"GGUF", 4);
  put_u32(b, 3);
  m.tensor_count = b->len;
  put_u64(b, 2);
  m.kv_count = b->len;
  put_u64(b, 4);
  m.key0_len = b->len;
  put_str(b, "general.architecture");
  m.kv0_type = b->len;
  put_u32(b, WH_GGUF_STRING);
  m.kv0_str_len = b->len;
  put_str(b, "mini");
  put_str(b, "mini.list");
  put_u32(b, WH_GGUF_ARRAY);
  m.arr_elem_type = b->len;
  put_u32(b, WH_GGUF_STRING);
  m.arr_count = b->len;
  put_u64(b, 3);
  m.arr_str0_len = b->len;
  put_str(b, "a");
  put_str(b, "bc");
  put_str(b, "");
  put_str(b, "general.alignment");
  put_u32(b, WH_GGUF_UINT32);
  m.align_value = b->len;
  put_u32(b, 32);
  m.key3 = b->len;
  put_str(b, "mini.flag");
  put_u32(b, WH_GGUF_BOOL);
  m.flag_value = b->len;
  g_byte_array_append(b, (const guint8 *)"\2", 1);
  m.t0_name_len = b->len;
  put_str(b, "w");
  m.t0_ndims = b->len;
  put_u32(b, 2);
  m.t0_ne0 = b->len;
  put_u64(b, 32);
  m.t0_ne1 = b->len;
  put_u64(b, 2);
  m.t0_type = b->len;
  put_u32(b, WH_TYPE_Q8_0);
  m.t0_offset = b->len;
  put_u64(b, 0);
  m.t1_name = b->len + 8;
  put_str(b, "b");
  put_u32(b, 1);
  put_u64(b, 4);
  put_u32(b, WH_TYPE_F32);
  m.t1_offset = b->len;
  put_u64(b, 96);
  pad_to(b, 32);
  for (guint i = 0; i < 68; i++) {
    guint8 v = (guint8)i;
    g_byte_array_append(b, &v, 1);
  }
  pad_to(b, 32);
  float f[4] = {1.5f, -2.0f, 0.25f, 1e9f};
  g_byte_array_append(b, (const guint8 *)f, sizeof f);
  pad_to(b, 32);
  return m;
}

static wh_gguf *
open_array(GByteArray *b, GError **error)
{
  GBytes *bytes = g_bytes_new(b->data, b->len);
  wh_gguf *g = wh_gguf_open_bytes(bytes, "mini.gguf", error);
  g_bytes_unref(bytes);
  return g;
}

static void
test_mini(void)
{
  mini m = mini_build();
  GError *error = NULL;
  wh_gguf *g = open_array(m.b, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(wh_gguf_get_architecture(g), ==, "mini");
  wh_gguf_array a;
  g_assert_true(wh_gguf_get_array(g, "mini.list", &a));
  g_assert_cmpuint(a.n, ==, 3);
  gsize len = 99;
  g_assert_cmpstr(wh_gguf_array_get_string(&a, 1, &len), ==, "bc");
  g_assert_cmpuint(len, ==, 2);
  g_assert_cmpstr(wh_gguf_array_get_string(&a, 2, &len), ==, "");
  g_assert_cmpuint(len, ==, 0);
  gboolean flag = FALSE;
  g_assert_true(wh_gguf_get_bool(g, "mini.flag", &flag)); /* byte 2 reads as true */
  g_assert_true(flag);
  const wh_gguf_tensor *w = wh_gguf_find_tensor(g, "w");
  g_assert_cmpint(w->type, ==, WH_TYPE_Q8_0);
  g_assert_cmpuint(w->n_bytes, ==, 68);
  g_assert_cmpuint(w->data[67], ==, 67);
  const wh_gguf_tensor *t = wh_gguf_find_tensor(g, "b");
  g_assert_cmpuint(t->offset, ==, 96);
  float f;
  memcpy(&f, t->data + 4, 4);
  g_assert_cmpfloat(f, ==, -2.0f);
  wh_gguf_close(g);

  /* every field corruption is rejected with a message naming the file and an offset */
  struct {
    gsize off;
    guint width;
    guint64 value;
    int code;
  } cases[] = {
      {0, 1, 'X', WH_GGUF_ERROR_NOT_GGUF},
      {4, 4, 1, WH_GGUF_ERROR_VERSION},
      {4, 4, 4, WH_GGUF_ERROR_VERSION},
      {4, 4, 0x03000000, WH_GGUF_ERROR_VERSION},
      {m.tensor_count, 8, G_GUINT64_CONSTANT(1) << 40, WH_GGUF_ERROR_CORRUPT},
      {m.tensor_count, 8, G_MAXUINT64, WH_GGUF_ERROR_CORRUPT},
      {m.kv_count, 8, G_MAXUINT64, WH_GGUF_ERROR_CORRUPT},
      {m.kv_count, 8, 100, WH_GGUF_ERROR_CORRUPT},
      {m.key0_len, 8, 0, WH_GGUF_ERROR_CORRUPT},
      {m.key0_len, 8, G_GUINT64_CONSTANT(1) << 31, WH_GGUF_ERROR_CORRUPT},
      {m.key0_len, 8, 100000, WH_GGUF_ERROR_TRUNCATED},
      {m.kv0_type, 4, 13, WH_GGUF_ERROR_CORRUPT},
      {m.kv0_str_len, 8, G_GUINT64_CONSTANT(1) << 40, WH_GGUF_ERROR_CORRUPT},
      {m.arr_elem_type, 4, 13, WH_GGUF_ERROR_CORRUPT},
      {m.arr_count, 8, G_GUINT64_CONSTANT(1) << 29, WH_GGUF_ERROR_TRUNCATED},
      {m.arr_count, 8, G_MAXUINT64, WH_GGUF_ERROR_CORRUPT},
      {m.arr_str0_len, 8, 5000, WH_GGUF_ERROR_TRUNCATED},
      {m.align_value, 4, 48, WH_GGUF_ERROR_CORRUPT},
      {m.align_value, 4, 0, WH_GGUF_ERROR_CORRUPT},
      {m.align_value, 4, 64, WH_GGUF_ERROR_CORRUPT}, /* offsets no longer packed */
      {m.key3 + 8 + 5, 4, 0x7473696c /* "list" */, WH_GGUF_ERROR_CORRUPT}, /* duplicate key */
      {m.key3 + 8 + 5, 1, 'F', -1},                                        /* "mini.Flag": fine */
      {m.t0_name_len + 8, 1, 'b', WH_GGUF_ERROR_CORRUPT}, /* duplicate tensor name */
      {m.t0_name_len, 8, 64, WH_GGUF_ERROR_CORRUPT},
      {m.t0_ndims, 4, 5, WH_GGUF_ERROR_CORRUPT},
      {m.t0_ne0, 8, G_MAXUINT64, WH_GGUF_ERROR_CORRUPT},
      {m.t0_ne0, 8, 33, WH_GGUF_ERROR_CORRUPT},
      {m.t0_ne0, 8, G_GUINT64_CONSTANT(1) << 62, WH_GGUF_ERROR_CORRUPT},
      {m.t0_ne1, 8, G_GUINT64_CONSTANT(1) << 40, WH_GGUF_ERROR_CORRUPT}, /* next offset wrong */
      {m.t1_name + 1 + 4, 8, G_GUINT64_CONSTANT(1) << 20, WH_GGUF_ERROR_TRUNCATED},
      {m.t0_ne1, 8, G_GUINT64_CONSTANT(1) << 60, WH_GGUF_ERROR_CORRUPT},
      {m.t0_ne1, 8, 3, WH_GGUF_ERROR_CORRUPT}, /* overlaps the next tensor */
      {m.t0_type, 4, 4, WH_GGUF_ERROR_CORRUPT},
      {m.t0_type, 4, 31, WH_GGUF_ERROR_CORRUPT},
      {m.t0_type, 4, 43, WH_GGUF_ERROR_CORRUPT},
      {m.t0_type, 4, 0xFFFFFFFF, WH_GGUF_ERROR_CORRUPT},
      {m.t0_offset, 8, 32, WH_GGUF_ERROR_CORRUPT},
      {m.t0_offset, 8, 1, WH_GGUF_ERROR_CORRUPT},
      {m.t1_offset, 8, 128, WH_GGUF_ERROR_CORRUPT},
      {m.t1_offset, 8, G_MAXUINT64 - 31, WH_GGUF_ERROR_CORRUPT},
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    GByteArray *c = g_byte_array_new();
    g_byte_array_append(c, m.b->data, m.b->len);
    poke(c, cases[i].off, cases[i].width, cases[i].value);
    error = NULL;
    g = open_array(c, &error);
    if (cases[i].code < 0) {
      g_assert_no_error(error);
      g_assert_nonnull(g);
      wh_gguf_close(g);
    } else {
      if (g != NULL)
        g_error("corruption case %u was accepted", i);
      g_assert_error(error, WH_GGUF_ERROR, cases[i].code);
      g_assert_nonnull(strstr(error->message, "mini.gguf: at offset "));
      g_test_message("case %u: %s", i, error->message);
      g_clear_error(&error);
    }
    g_byte_array_unref(c);
  }

  /* version 2 is read like 3 */
  poke(m.b, 4, 4, 2);
  g = open_array(m.b, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(wh_gguf_version(g), ==, 2);
  wh_gguf_close(g);

  /* every truncation before the end of the last tensor's bytes fails, after it loads */
  guint64 need = m.b->len - 32 + 16;
  for (gsize cut = 0; cut < m.b->len; cut++) {
    GBytes *bytes = g_bytes_new_static(m.b->data, cut);
    g = wh_gguf_open_bytes(bytes, "mini.gguf", &error);
    g_bytes_unref(bytes);
    if (cut < need) {
      g_assert_null(g);
      g_assert_nonnull(error);
      g_clear_error(&error);
    } else {
      g_assert_no_error(error);
      wh_gguf_close(g);
    }
  }
  g_byte_array_unref(m.b);
}

/* Nested arrays: legal for gguf-py, read here, never written. */
static void
test_nested_arrays(void)
{
  GByteArray *b = g_byte_array_new();
  g_byte_array_append(b, (const guint8 *)"GGUF", 4);
  put_u32(b, 3);
  put_u64(b, 0);
  put_u64(b, 2);
  put_str(b, "nested");
  put_u32(b, WH_GGUF_ARRAY);
  put_u32(b, WH_GGUF_ARRAY);
  put_u64(b, 3);
  put_u32(b, WH_GGUF_UINT16); /* [7, 8] */
  put_u64(b, 2);
  g_byte_array_append(b, (const guint8 *)"\7\0\10\0", 4);
  put_u32(b, WH_GGUF_STRING); /* ["xy"] */
  put_u64(b, 1);
  put_str(b, "xy");
  put_u32(b, WH_GGUF_INT8); /* [] */
  put_u64(b, 0);
  put_str(b, "empty");
  put_u32(b, WH_GGUF_ARRAY);
  put_u32(b, WH_GGUF_FLOAT64);
  put_u64(b, 0);
  GError *error = NULL;
  wh_gguf *g = open_array(b, &error);
  g_assert_no_error(error);
  wh_gguf_array a, inner;
  g_assert_true(wh_gguf_get_array(g, "nested", &a));
  g_assert_cmpint(a.type, ==, WH_GGUF_ARRAY);
  g_assert_cmpuint(a.n, ==, 3);
  g_assert_true(wh_gguf_array_get_array(&a, 0, &inner));
  g_assert_cmpint(inner.type, ==, WH_GGUF_UINT16);
  g_assert_cmpint(wh_gguf_array_get_int(&inner, 1), ==, 8);
  g_assert_true(wh_gguf_array_get_array(&a, 1, &inner));
  g_assert_cmpstr(wh_gguf_array_get_string(&inner, 0, NULL), ==, "xy");
  g_assert_true(wh_gguf_array_get_array(&a, 2, &inner));
  g_assert_cmpuint(inner.n, ==, 0);
  g_assert_false(wh_gguf_array_get_array(&a, 3, &inner));
  g_assert_true(wh_gguf_get_array(g, "empty", &inner));
  g_assert_cmpuint(inner.n, ==, 0);

  /* the writer refuses to copy a nested array (llama.cpp would reject the file) */
  wh_gguf_writer *w = wh_gguf_writer_new();
  g_assert_false(wh_gguf_writer_copy_kvs(w, g, NULL, &error));
  g_assert_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID);
  g_clear_error(&error);
  const char *skip[] = {"nested", NULL};
  g_assert_true(wh_gguf_writer_copy_kvs(w, g, skip, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(wh_gguf_writer_n_kv(w), ==, 1);
  wh_gguf_writer_free(w);
  wh_gguf_close(g);

  /* deep nesting is refused, not recursed into */
  GByteArray *deep = g_byte_array_new();
  g_byte_array_append(deep, (const guint8 *)"GGUF", 4);
  put_u32(deep, 3);
  put_u64(deep, 0);
  put_u64(deep, 1);
  put_str(deep, "deep");
  put_u32(deep, WH_GGUF_ARRAY);
  for (guint i = 0; i < 1000; i++) {
    put_u32(deep, WH_GGUF_ARRAY);
    put_u64(deep, 1);
  }
  g = open_array(deep, &error);
  g_assert_null(g);
  g_assert_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_CORRUPT);
  g_clear_error(&error);
  g_byte_array_unref(deep);
  g_byte_array_unref(b);
}

/* ---------------------------------------------------------------------------------------- */
/* corrupting the shared files */

static void
truncate_and_flip(const char *rel, guint max_cuts, guint n_flips)
{
  char *path = wh_test_shared_file_or_skip(rel);
  if (!path)
    return;
  GBytes *bytes = read_bytes(path);
  gsize size;
  const guint8 *data = g_bytes_get_data(bytes, &size);
  GError *error = NULL;
  wh_gguf *g = wh_gguf_open_bytes(bytes, rel, &error);
  g_assert_no_error(error);
  guint64 need = required_size(g, size);
  guint64 dir_end = wh_gguf_n_tensors(g) ? wh_gguf_data_offset(g, 0) : size;
  wh_gguf_close(g);

  /* truncations: dense over the directory, sparse over the data */
  guint64 step = MAX(1, dir_end / max_cuts);
  for (guint64 cut = 0; cut < size; cut += (cut < dir_end ? step : MAX(1, size / 64))) {
    GBytes *part = g_bytes_new_static(data, cut);
    g = wh_gguf_open_bytes(part, rel, &error);
    g_bytes_unref(part);
    if (cut < need) {
      if (g != NULL)
        g_error("%s truncated to %" G_GUINT64_FORMAT " bytes was accepted", rel, cut);
      g_assert_nonnull(error);
      g_assert_true(g_str_has_prefix(error->message, rel));
      g_clear_error(&error);
    } else {
      g_assert_no_error(error);
      wh_gguf_close(g);
    }
  }

  /* random byte changes in the header and directory: an error or a consistent file */
  GRand *rand = g_rand_new_with_seed(1234);
  guint8 *copy = g_memdup2(data, size);
  guint n_rejected = 0;
  for (guint it = 0; it < n_flips; it++) {
    guint n = g_rand_int_range(rand, 1, 5);
    gsize offs[4];
    for (guint k = 0; k < n; k++) {
      offs[k] = g_rand_int_range(rand, 0, (gint32)MIN(dir_end, G_MAXINT32));
      copy[offs[k]] = (guint8)g_rand_int(rand);
    }
    GBytes *mutated = g_bytes_new_static(copy, size);
    g = wh_gguf_open_bytes(mutated, rel, &error);
    if (g) {
      check_tensors_sane(g);
      for (guint64 i = 0; i < wh_gguf_n_kv(g); i++)
        g_assert_nonnull(wh_gguf_kv_key(g, i));
      wh_gguf_close(g);
    } else {
      g_assert_nonnull(error);
      g_assert_cmpuint(strlen(error->message), >, strlen(rel) + 20);
      g_clear_error(&error);
      n_rejected++;
    }
    g_bytes_unref(mutated);
    for (guint k = 0; k < n; k++)
      copy[offs[k]] = data[offs[k]];
  }
  g_test_message("%s: %u of %u mutations rejected", rel, n_rejected, n_flips);
  g_assert_cmpuint(n_rejected, >, 0);
  g_free(copy);
  g_rand_free(rand);
  g_bytes_unref(bytes);
  g_free(path);
}

static void
test_corrupt_shared(void)
{
  truncate_and_flip("spec/format-tables.gguf", 2000, 400);
  truncate_and_flip("reference/models/stories260K-Q4_0.gguf", 400, 400);
  truncate_and_flip("reference/synth-llama.imatrix.gguf", 400, 300);
  truncate_and_flip("reference/logits/stories260K.logits.gguf", 400, 300);
  truncate_and_flip("vocab/ggml-vocab-llama-spm.gguf", 60, 40);
}

/* ---------------------------------------------------------------------------------------- */
/* writer */

/* Writes a copy of @src (all KVs, all tensors, data in odd-sized pieces) to @out. */
static void
write_copy(const wh_gguf *src, const char *out)
{
  GError *error = NULL;
  wh_gguf_writer *w = wh_gguf_writer_new();
  g_assert_true(wh_gguf_writer_copy_kvs(w, src, NULL, &error));
  g_assert_no_error(error);
  for (guint64 i = 0; i < wh_gguf_n_tensors(src); i++) {
    const wh_gguf_tensor *t = wh_gguf_get_tensor(src, i);
    g_assert_true(wh_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, &error));
  }
  guint64 expected_size = wh_gguf_writer_file_size(w);
  g_assert_true(wh_gguf_writer_begin(w, out, &error));
  g_assert_no_error(error);
  g_assert_false(g_file_test(out, G_FILE_TEST_EXISTS)); /* not before finish */
  for (guint64 i = 0; i < wh_gguf_n_tensors(src); i++) {
    const wh_gguf_tensor *t = wh_gguf_get_tensor(src, i);
    g_assert_cmpuint(wh_gguf_writer_current_tensor(w), ==, i);
    for (guint64 o = 0; o < t->n_bytes; o += 4097)
      g_assert_true(wh_gguf_writer_write(w, t->data + o, (gsize)MIN(4097, t->n_bytes - o), &error));
  }
  g_assert_true(wh_gguf_writer_finish(w, &error));
  g_assert_no_error(error);
  wh_gguf_writer_free(w);
  GStatBuf st;
  g_assert_cmpint(g_stat(out, &st), ==, 0);
  g_assert_cmpuint((guint64)st.st_size, ==, expected_size);
}

static void
assert_same_content(const wh_gguf *a, const wh_gguf *b, const char *const *skip_prefixes)
{
  guint64 n = 0;
  for (guint64 i = 0; i < wh_gguf_n_kv(a); i++) {
    const char *key = wh_gguf_kv_key(a, i);
    gboolean skip = FALSE;
    for (const char *const *sp = skip_prefixes; sp && *sp; sp++)
      skip |= g_str_has_prefix(key, *sp);
    if (skip)
      continue;
    n++;
    const wh_gguf_value *vb = wh_gguf_find_value(b, key);
    g_assert_nonnull(vb);
    gsize la, lb;
    const guint8 *ra = wh_gguf_value_get_raw(wh_gguf_kv_value(a, i), &la);
    const guint8 *rb = wh_gguf_value_get_raw(vb, &lb);
    g_assert_cmpint(wh_gguf_kv_type(a, i), ==, wh_gguf_value_get_type(vb));
    g_assert_cmpmem(ra, la, rb, lb);
  }
  g_assert_cmpuint(wh_gguf_n_tensors(a), ==, wh_gguf_n_tensors(b));
  for (guint64 i = 0; i < wh_gguf_n_tensors(a); i++) {
    const wh_gguf_tensor *ta = wh_gguf_get_tensor(a, i);
    const wh_gguf_tensor *tb = wh_gguf_find_tensor(b, ta->name);
    g_assert_nonnull(tb);
    g_assert_cmpint(ta->type, ==, tb->type);
    g_assert_cmpmem(ta->ne, sizeof ta->ne, tb->ne, sizeof tb->ne);
    g_assert_cmpmem(ta->data, ta->n_bytes, tb->data, tb->n_bytes);
  }
  (void)n;
}

static void
test_roundtrip(void)
{
  const char *files[] = {"reference/models/synth-llama-F16.gguf",
                         "models/stories260K.gguf",
                         "reference/models/synth-llama-Q4_K_M-imat.gguf",
                         "reference/synth-llama.imatrix.gguf",
                         "vocab/ggml-vocab-qwen2.gguf",
                         "spec/format-tables.gguf"};
  char *tmp = wh_test_make_tmpdir();
  for (guint f = 0; f < G_N_ELEMENTS(files); f++) {
    char *path = wh_test_shared_file_or_skip(files[f]);
    if (!path)
      break;
    GError *error = NULL;
    wh_gguf *src = wh_gguf_open(path, &error);
    g_assert_no_error(error);
    char *out = g_build_filename(tmp, "copy.gguf", NULL);
    write_copy(src, out);
    wh_gguf *dst = wh_gguf_open(out, &error);
    g_assert_no_error(error);
    assert_same_content(src, dst, NULL);
    assert_same_content(dst, src, NULL);
    g_assert_cmpuint(wh_gguf_n_kv(src), ==, wh_gguf_n_kv(dst));
    for (guint64 i = 0; i < wh_gguf_n_kv(src); i++) /* order kept */
      g_assert_cmpstr(wh_gguf_kv_key(src, i), ==, wh_gguf_kv_key(dst, i));
    wh_gguf_close(dst);
    /* same layout rules as the reference writer: the copy is byte-identical */
    GBytes *a = read_bytes(path), *b = read_bytes(out);
    g_assert_true(g_bytes_equal(a, b));
    g_bytes_unref(a);
    g_bytes_unref(b);
    g_unlink(out);
    g_free(out);
    wh_gguf_close(src);
    g_free(path);
  }
  GDir *d = g_dir_open(tmp, 0, NULL);
  g_assert_null(g_dir_read_name(d)); /* no temporary left behind */
  g_dir_close(d);
  wh_test_rmdir_r(tmp);
  g_free(tmp);
}

/* Every value type written, read back; metadata editing; alignment 64. */
static void
test_writer_values(void)
{
  char *tmp = wh_test_make_tmpdir();
  char *out = g_build_filename(tmp, "values.gguf", NULL);
  GError *error = NULL;
  wh_gguf_writer *w = wh_gguf_writer_new();
  wh_gguf_writer_set_string(w, "general.architecture", "test");
  wh_gguf_writer_set_uint8(w, "v.u8", 250);
  wh_gguf_writer_set_int8(w, "v.i8", -5);
  wh_gguf_writer_set_uint16(w, "v.u16", 65000);
  wh_gguf_writer_set_int16(w, "v.i16", -30000);
  wh_gguf_writer_set_uint32(w, "v.u32", 4000000000u);
  wh_gguf_writer_set_int32(w, "v.i32", -2000000000);
  wh_gguf_writer_set_uint64(w, "v.u64", G_MAXUINT64);
  wh_gguf_writer_set_int64(w, "v.i64", G_MININT64);
  wh_gguf_writer_set_float32(w, "v.f32", 0.1f);
  wh_gguf_writer_set_float64(w, "v.f64", 0.1);
  wh_gguf_writer_set_bool(w, "v.bool", TRUE);
  wh_gguf_writer_set_string(w, "v.str", "héllo");
  wh_gguf_writer_set_string(w, "v.gone", "x");
  gint32 ints[3] = {-1, 0, 7};
  wh_gguf_writer_set_array(w, "v.ints", WH_GGUF_INT32, ints, 3);
  float floats[2] = {0.5f, -1.25f};
  wh_gguf_writer_set_array(w, "v.floats", WH_GGUF_FLOAT32, floats, 2);
  guint8 bools[2] = {5, 0}; /* any non-zero byte is written as 1 */
  wh_gguf_writer_set_array(w, "v.bools", WH_GGUF_BOOL, bools, 2);
  wh_gguf_writer_set_array(w, "v.empty", WH_GGUF_UINT64, NULL, 0);
  const char *strs[] = {"a", "", "c d"};
  wh_gguf_writer_set_string_array(w, "v.strs", strs, NULL, 3);
  wh_gguf_writer_set_uint32(w, "v.u32", 7); /* replaced in place */
  g_assert_true(wh_gguf_writer_remove_key(w, "v.gone"));
  g_assert_false(wh_gguf_writer_remove_key(w, "v.gone"));
  g_assert_true(wh_gguf_writer_set_alignment(w, 64, &error));
  guint64 ne[2] = {64, 3};
  g_assert_true(wh_gguf_writer_add_tensor(w, "t.a", WH_TYPE_Q8_0, 2, ne, &error));
  g_assert_true(wh_gguf_writer_add_tensor(w, "t.b", WH_TYPE_F32, 1, ne, &error));
  guint64 zero[1] = {0};
  g_assert_true(wh_gguf_writer_add_tensor(w, "t.empty", WH_TYPE_F16, 1, zero, &error));
  g_assert_true(wh_gguf_writer_add_tensor(w, "t.c", WH_TYPE_I8, 1, ne, &error));
  /* bad tensors */
  char longname[65];
  memset(longname, 'x', 64);
  longname[64] = 0;
  g_assert_false(wh_gguf_writer_add_tensor(w, longname, WH_TYPE_F32, 1, ne, &error));
  g_clear_error(&error);
  longname[63] = 0; /* 63 is the limit */
  g_assert_true(wh_gguf_writer_add_tensor(w, longname, WH_TYPE_F32, 1, ne, &error));
  g_assert_false(wh_gguf_writer_add_tensor(w, "t.a", WH_TYPE_F32, 1, ne, &error));
  g_clear_error(&error);
  g_assert_false(wh_gguf_writer_add_tensor(w, "t.x", (wh_type)4, 1, ne, &error));
  g_clear_error(&error);
  guint64 bad[2] = {48, 1};
  g_assert_false(wh_gguf_writer_add_tensor(w, "t.y", WH_TYPE_Q4_K, 2, bad, &error));
  g_assert_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_true(wh_gguf_writer_begin(w, out, &error));
  guint8 buf[2 * 3 * 34 + 64 * 4 + 64 + 64 * 4];
  for (guint i = 0; i < sizeof buf; i++)
    buf[i] = (guint8)(i * 7);
  g_assert_true(wh_gguf_writer_write(w, buf, sizeof buf, &error)); /* all tensors at once */
  g_assert_false(wh_gguf_writer_write(w, buf, 1, &error));         /* past the end */
  g_assert_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_false(wh_gguf_writer_finish(w, &error)); /* aborted by the bad write */
  g_clear_error(&error);
  wh_gguf_writer_free(w);
  g_assert_false(g_file_test(out, G_FILE_TEST_EXISTS));
  g_test_message("now a good one");

  /* again, correctly */
  w = wh_gguf_writer_new();
  wh_gguf_writer_set_string(w, "general.architecture", "test");
  wh_gguf_writer_set_uint8(w, "v.u8", 250);
  wh_gguf_writer_set_int8(w, "v.i8", -5);
  wh_gguf_writer_set_uint16(w, "v.u16", 65000);
  wh_gguf_writer_set_int16(w, "v.i16", -30000);
  wh_gguf_writer_set_uint32(w, "v.u32", 4000000000u);
  wh_gguf_writer_set_int32(w, "v.i32", -2000000000);
  wh_gguf_writer_set_uint64(w, "v.u64", G_MAXUINT64);
  wh_gguf_writer_set_int64(w, "v.i64", G_MININT64);
  wh_gguf_writer_set_float32(w, "v.f32", 0.1f);
  wh_gguf_writer_set_float64(w, "v.f64", 0.1);
  wh_gguf_writer_set_bool(w, "v.bool", TRUE);
  wh_gguf_writer_set_array(w, "v.ints", WH_GGUF_INT32, ints, 3);
  wh_gguf_writer_set_array(w, "v.floats", WH_GGUF_FLOAT32, floats, 2);
  wh_gguf_writer_set_array(w, "v.bools", WH_GGUF_BOOL, bools, 2);
  wh_gguf_writer_set_array(w, "v.empty", WH_GGUF_UINT64, NULL, 0);
  wh_gguf_writer_set_string_array(w, "v.strs", strs, NULL, 3);
  g_assert_true(wh_gguf_writer_set_alignment(w, 64, &error));
  g_assert_true(wh_gguf_writer_add_tensor(w, "t.a", WH_TYPE_Q8_0, 2, ne, &error));
  g_assert_true(wh_gguf_writer_add_tensor(w, "t.b", WH_TYPE_F32, 1, ne, &error));
  g_assert_true(wh_gguf_writer_add_tensor(w, "t.empty", WH_TYPE_F16, 1, zero, &error));
  g_assert_true(wh_gguf_writer_add_tensor(w, "t.c", WH_TYPE_I8, 1, ne, &error));
  g_assert_true(wh_gguf_writer_begin(w, out, &error));
  gsize part1 = 2 * 3 * 34 + 10;
  g_assert_true(wh_gguf_writer_write(w, buf, part1, &error));
  g_assert_cmpuint(wh_gguf_writer_current_tensor(w), ==, 1);
  g_assert_true(wh_gguf_writer_write(w, buf + part1, 64 * 4 + 64 - 10, &error));
  g_assert_cmpuint(wh_gguf_writer_current_tensor(w), ==, 4);
  g_assert_true(wh_gguf_writer_finish(w, &error));
  g_assert_no_error(error);
  wh_gguf_writer_free(w);

  wh_gguf *g = wh_gguf_open(out, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(wh_gguf_alignment(g), ==, 64);
  g_assert_cmpuint(wh_gguf_data_offset(g, 0) % 64, ==, 0);
  g_assert_cmpuint(wh_gguf_find_tensor(g, "t.b")->offset, ==, 256);
  g_assert_cmpuint(wh_gguf_find_tensor(g, "t.c")->offset, ==, 512);
  g_assert_cmpuint(wh_gguf_file_size(g, 0), ==, wh_gguf_data_offset(g, 0) + 512 + 64);
  g_assert_cmpmem(wh_gguf_find_tensor(g, "t.c")->data, 64, buf + 2 * 3 * 34 + 64 * 4, 64);
  guint64 u;
  gint64 i;
  double f;
  gboolean b;
  g_assert_true(wh_gguf_get_uint(g, "v.u8", &u) && u == 250);
  g_assert_true(wh_gguf_get_int(g, "v.i8", &i) && i == -5);
  g_assert_false(wh_gguf_get_uint(g, "v.i8", &u)); /* negative */
  g_assert_true(wh_gguf_get_uint(g, "v.u16", &u) && u == 65000);
  g_assert_true(wh_gguf_get_int(g, "v.i16", &i) && i == -30000);
  g_assert_true(wh_gguf_get_uint(g, "v.u32", &u) && u == 4000000000u);
  g_assert_true(wh_gguf_get_int(g, "v.i32", &i) && i == -2000000000);
  g_assert_true(wh_gguf_get_uint(g, "v.u64", &u) && u == G_MAXUINT64);
  g_assert_false(wh_gguf_get_int(g, "v.u64", &i)); /* does not fit */
  g_assert_true(wh_gguf_get_int(g, "v.i64", &i) && i == G_MININT64);
  g_assert_true(wh_gguf_get_float(g, "v.f32", &f) && f == (double)0.1f);
  g_assert_true(wh_gguf_get_float(g, "v.f64", &f) && f == 0.1);
  g_assert_true(wh_gguf_get_float(g, "v.i32", &f) && f == -2000000000.0);
  g_assert_false(wh_gguf_get_uint(g, "v.f32", &u));
  g_assert_true(wh_gguf_get_bool(g, "v.bool", &b) && b);
  g_assert_false(wh_gguf_get_bool(g, "v.u8", &b));
  g_assert_false(wh_gguf_get_uint(g, "missing", &u));
  g_assert_cmpint(wh_gguf_find_key(g, "missing"), ==, -1);
  g_assert_cmpint(wh_gguf_kv_type(g, wh_gguf_find_key(g, "v.u64")), ==, WH_GGUF_UINT64);
  wh_gguf_array a;
  g_assert_true(wh_gguf_get_array(g, "v.ints", &a));
  g_assert_cmpint(wh_gguf_array_get_int(&a, 0), ==, -1);
  g_assert_cmpint(wh_gguf_array_get_int(&a, 2), ==, 7);
  g_assert_cmpint(wh_gguf_array_get_int(&a, 3), ==, 0);
  g_assert_cmpfloat(wh_gguf_array_get_float(&a, 2), ==, 7.0);
  g_assert_true(wh_gguf_get_array(g, "v.floats", &a));
  g_assert_cmpfloat(wh_gguf_array_get_float(&a, 1), ==, -1.25);
  g_assert_true(wh_gguf_get_array(g, "v.bools", &a));
  g_assert_cmpint(wh_gguf_array_get_int(&a, 0), ==, 1);
  g_assert_cmpint(wh_gguf_array_get_int(&a, 1), ==, 0);
  g_assert_true(wh_gguf_get_array(g, "v.empty", &a));
  g_assert_cmpuint(a.n, ==, 0);
  g_assert_cmpint(a.type, ==, WH_GGUF_UINT64);
  g_assert_true(wh_gguf_get_array(g, "v.strs", &a));
  g_assert_cmpstr(wh_gguf_array_get_string(&a, 2, NULL), ==, "c d");
  g_assert_false(wh_gguf_get_array(g, "v.u8", &a));

  /* copy with edits: override, remove, add; the order of the rest is kept */
  char *out2 = g_build_filename(tmp, "edited.gguf", NULL);
  w = wh_gguf_writer_new();
  const char *skip[] = {"v.i", NULL}; /* drops v.i8, v.i16, v.i32, v.i64, v.ints */
  g_assert_true(wh_gguf_writer_copy_kvs(w, g, skip, &error));
  wh_gguf_writer_set_string(w, "general.architecture", "edited");
  g_assert_true(wh_gguf_writer_remove_key(w, "v.bool"));
  wh_gguf_writer_set_uint32(w, "general.file_type", 1);
  g_assert_true(wh_gguf_writer_begin(w, out2, &error));
  g_assert_true(wh_gguf_writer_finish(w, &error));
  wh_gguf_writer_free(w);
  wh_gguf *e = wh_gguf_open(out2, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(wh_gguf_kv_key(e, 0), ==, "general.architecture");
  g_assert_cmpstr(wh_gguf_get_architecture(e), ==, "edited");
  g_assert_cmpint(wh_gguf_find_key(e, "v.i8"), ==, -1);
  g_assert_cmpint(wh_gguf_find_key(e, "v.bool"), ==, -1);
  g_assert_cmpstr(wh_gguf_kv_key(e, wh_gguf_n_kv(e) - 1), ==, "general.file_type");
  g_assert_cmpuint(wh_gguf_n_kv(e), ==, wh_gguf_n_kv(g) - 6 + 1);
  g_assert_true(wh_gguf_get_uint(e, "general.alignment", &u) && u == 64);
  g_assert_cmpuint(wh_gguf_n_tensors(e), ==, 0);
  wh_gguf_close(e);
  wh_gguf_close(g);
  g_free(out2);
  g_free(out);
  wh_test_rmdir_r(tmp);
  g_free(tmp);
}

static guint
count_entries(const char *dir)
{
  GDir *d = g_dir_open(dir, 0, NULL);
  guint n = 0;
  while (g_dir_read_name(d))
    n++;
  g_dir_close(d);
  return n;
}

static void
test_writer_failures(void)
{
  char *tmp = wh_test_make_tmpdir();
  char *out = g_build_filename(tmp, "out.gguf", NULL);
  GError *error = NULL;
  guint64 ne[1] = {1024};

  /* reading: missing file */
  g_assert_null(wh_gguf_open("/nonexistent/model.gguf", &error));
  g_assert_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_IO);
  g_clear_error(&error);

  /* destination folder missing */
  char *bad = g_build_filename(tmp, "no", "such", "dir.gguf", NULL);
  wh_gguf_writer *w = wh_gguf_writer_new();
  g_assert_false(wh_gguf_writer_begin(w, bad, &error));
  g_assert_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_IO);
  g_assert_nonnull(strstr(error->message, bad));
  g_clear_error(&error);
  wh_gguf_writer_free(w);
  g_free(bad);

  /* an existing destination is kept when the write fails */
  g_assert_true(g_file_set_contents(out, "old", 3, NULL));
  for (guint mode = 0; mode < 3; mode++) {
    w = wh_gguf_writer_new();
    wh_gguf_writer_set_string(w, "general.architecture", "x");
    g_assert_true(wh_gguf_writer_add_tensor(w, "a", WH_TYPE_F32, 1, ne, &error));
    g_assert_true(wh_gguf_writer_add_tensor(w, "b", WH_TYPE_F32, 1, ne, &error));
    g_assert_true(wh_gguf_writer_begin(w, out, &error));
    g_assert_cmpuint(count_entries(tmp), ==, 2); /* out.gguf + the temporary */
    float zeros[1024] = {0};
    g_assert_true(wh_gguf_writer_write(w, zeros, sizeof zeros, &error));
    if (mode == 0) { /* finish too early */
      g_assert_false(wh_gguf_writer_finish(w, &error));
      g_assert_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_INVALID);
      g_assert_nonnull(strstr(error->message, "'b'"));
      g_clear_error(&error);
    } else if (mode == 1) { /* cancelled */
      wh_gguf_writer_abort(w);
      wh_gguf_writer_abort(w);
      g_assert_false(wh_gguf_writer_write(w, zeros, 4, &error));
      g_clear_error(&error);
    } /* mode 2: freed unfinished */
    wh_gguf_writer_free(w);
    g_assert_cmpuint(count_entries(tmp), ==, 1);
    char *content = NULL;
    g_assert_true(g_file_get_contents(out, &content, NULL, NULL));
    g_assert_cmpstr(content, ==, "old");
    g_free(content);
  }
  g_free(out);
  wh_test_rmdir_r(tmp);
  g_free(tmp);
}

/* ---------------------------------------------------------------------------------------- */
/* split models */

static void
test_split(void)
{
  char *path = wh_test_shared_file_or_skip("reference/models/synth-llama-F16.gguf");
  if (!path)
    return;
  GError *error = NULL;
  wh_gguf *src = wh_gguf_open(path, &error);
  g_assert_no_error(error);
  char *tmp = wh_test_make_tmpdir();
  char *prefix = g_build_filename(tmp, "model", NULL);
  guint64 n = wh_gguf_n_tensors(src);
  const guint count = 3;
  for (guint s = 0; s < count; s++) {
    wh_gguf_writer *w = wh_gguf_writer_new();
    if (s == 0)
      g_assert_true(wh_gguf_writer_copy_kvs(w, src, NULL, &error));
    wh_gguf_writer_set_uint16(w, "split.no", (guint16)s);
    wh_gguf_writer_set_uint16(w, "split.count", (guint16)count);
    wh_gguf_writer_set_int32(w, "split.tensors.count", (gint32)n);
    guint64 lo = n * s / count, hi = n * (s + 1) / count;
    for (guint64 i = lo; i < hi; i++) {
      const wh_gguf_tensor *t = wh_gguf_get_tensor(src, i);
      g_assert_true(wh_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, &error));
    }
    char *sp = wh_gguf_split_path(prefix, s, count);
    g_assert_true(wh_gguf_writer_begin(w, sp, &error));
    for (guint64 i = lo; i < hi; i++) {
      const wh_gguf_tensor *t = wh_gguf_get_tensor(src, i);
      g_assert_true(wh_gguf_writer_write(w, t->data, t->n_bytes, &error));
    }
    g_assert_true(wh_gguf_writer_finish(w, &error));
    g_assert_no_error(error);
    wh_gguf_writer_free(w);
    g_free(sp);
  }
  char *first = wh_gguf_split_path(prefix, 0, count);
  char *second = wh_gguf_split_path(prefix, 1, count);
  char *third = wh_gguf_split_path(prefix, 2, count);
  g_assert_true(g_str_has_suffix(first, "model-00001-of-00003.gguf"));
  char *pp = NULL;
  guint idx = 9, cnt = 9;
  g_assert_true(wh_gguf_split_parse(third, &pp, &idx, &cnt));
  g_assert_cmpstr(pp, ==, prefix);
  g_assert_cmpuint(idx, ==, 2);
  g_assert_cmpuint(cnt, ==, 3);
  g_free(pp);
  g_assert_false(wh_gguf_split_parse(path, NULL, NULL, NULL));
  g_assert_false(wh_gguf_split_parse("x-00004-of-00003.gguf", NULL, NULL, NULL));

  const char *split_keys[] = {"split.", NULL};
  const char *paths[] = {first, second};
  for (guint k = 0; k < 2; k++) { /* from the first shard, and from any shard */
    wh_gguf *g = wh_gguf_open(paths[k], &error);
    g_assert_no_error(error);
    g_assert_cmpuint(wh_gguf_n_splits(g), ==, 3);
    g_assert_cmpstr(wh_gguf_path(g), ==, first);
    g_assert_cmpuint(wh_gguf_n_tensors(g), ==, n);
    g_assert_cmpuint(wh_gguf_n_kv(g), ==, wh_gguf_n_kv(src) + 3);
    assert_same_content(src, g, NULL);
    assert_same_content(g, src, split_keys);
    for (guint64 i = 0; i < n; i++) {
      const wh_gguf_tensor *t = wh_gguf_get_tensor(g, i);
      g_assert_cmpstr(t->name, ==, wh_gguf_get_tensor(src, i)->name);
      g_assert_cmpuint(t->split_index, ==, i * count / n);
    }
    check_tensors_sane(g);
    wh_gguf_close(g);
  }
  /* one shard on its own */
  wh_gguf *one = wh_gguf_open_full(second, WH_GGUF_OPEN_NO_SPLITS, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(wh_gguf_n_tensors(one), ==, n * 2 / 3 - n / 3);
  g_assert_cmpuint(wh_gguf_n_kv(one), ==, 3);
  wh_gguf_close(one);

  /* a missing shard */
  g_assert_cmpint(g_unlink(third), ==, 0);
  wh_gguf *g = wh_gguf_open(first, &error);
  g_assert_null(g);
  g_assert_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_SPLIT);
  g_assert_nonnull(strstr(error->message, "shard 3 of 3"));
  g_clear_error(&error);
  /* a shard with the wrong split.no */
  g_assert_cmpint(g_rename(second, third), ==, 0);
  GBytes *b = read_bytes(third);
  g_assert_true(g_file_set_contents(second, g_bytes_get_data(b, NULL), g_bytes_get_size(b), NULL));
  g_bytes_unref(b);
  g = wh_gguf_open(first, &error);
  g_assert_null(g);
  g_assert_error(error, WH_GGUF_ERROR, WH_GGUF_ERROR_SPLIT);
  g_clear_error(&error);

  g_free(first);
  g_free(second);
  g_free(third);
  g_free(prefix);
  wh_test_rmdir_r(tmp);
  g_free(tmp);
  wh_gguf_close(src);
  g_free(path);
}

/* ---------------------------------------------------------------------------------------- */
/* imatrix */

static void
test_imatrix_gguf(void)
{
  char *path = wh_test_shared_file_or_skip("reference/synth-llama.imatrix.gguf");
  char *model_path = wh_test_shared_file_or_skip("reference/models/synth-llama-F16.gguf");
  if (!path || !model_path)
    return;
  GError *error = NULL;
  wh_imatrix *im = wh_imatrix_load(path, &error);
  g_assert_no_error(error);
  wh_gguf *raw = wh_gguf_open(path, &error);
  wh_gguf *model = wh_gguf_open(model_path, &error);
  g_assert_no_error(error);
  g_assert_false(wh_imatrix_is_legacy(im));
  g_assert_cmpuint(wh_imatrix_n_entries(im), ==, wh_gguf_n_tensors(raw) / 2);
  g_assert_cmpint(wh_imatrix_chunk_count(im), ==, 178);
  g_assert_cmpint(wh_imatrix_chunk_size(im), ==, 128);
  g_assert_cmpstr(wh_imatrix_dataset(im), ==, "calib.txt");
  /* 4 layers x 7 matrices, all used in matrix multiplications */
  g_assert_cmpuint(wh_imatrix_n_entries(im), ==, 28);
  for (guint i = 0; i < wh_imatrix_n_entries(im); i++) {
    const wh_imatrix_entry *e = wh_imatrix_get_entry(im, i);
    if (i > 0)
      g_assert_cmpint(strcmp(wh_imatrix_get_entry(im, i - 1)->name, e->name), <, 0);
    g_assert_true(wh_imatrix_find(im, e->name) == e);
    const wh_gguf_tensor *w = wh_gguf_find_tensor(model, e->name);
    g_assert_nonnull(w);
    g_assert_cmpuint(e->n_cols, ==, w->ne[0]);
    g_assert_cmpuint(e->n_mat, ==, 1);
    g_assert_cmpint(e->ncall, ==, -1);
    g_assert_cmpfloat(e->counts[0], >, 0);
    g_assert_cmpfloat(e->counts[0], ==, nearbyintf(e->counts[0]));
    char *sn = g_strconcat(e->name, ".in_sum2", NULL);
    const wh_gguf_tensor *s = wh_gguf_find_tensor(raw, sn);
    g_free(sn);
    const float *sums = (const float *)s->data;
    for (guint64 c = 0; c < e->n_cols; c++) {
      g_assert_cmpfloat(e->in_sum2[c], ==, sums[c]);
      g_assert_cmpfloat(e->importance[c], ==, sums[c] / e->counts[0]);
      g_assert_true(isfinite(e->importance[c]) && e->importance[c] >= 0);
    }
  }
  g_assert_null(wh_imatrix_find(im, "output.weight"));
  g_assert_null(wh_imatrix_find(im, "token_embd.weight"));

  /* writing the same sums back (in reverse order) reproduces the reference file exactly */
  guint n = wh_imatrix_n_entries(im);
  wh_imatrix_entry *rev = g_new(wh_imatrix_entry, n);
  for (guint i = 0; i < n; i++)
    rev[i] = *wh_imatrix_get_entry(im, n - 1 - i);
  char *tmp = wh_test_make_tmpdir();
  char *out = g_build_filename(tmp, "copy.imatrix.gguf", NULL);
  const char *datasets[] = {wh_imatrix_dataset(im), NULL};
  g_assert_true(wh_imatrix_save_gguf(out, rev, n, datasets, (guint32)wh_imatrix_chunk_count(im),
                                     (guint32)wh_imatrix_chunk_size(im), &error));
  g_assert_no_error(error);
  GBytes *a = read_bytes(path), *b = read_bytes(out);
  g_assert_true(g_bytes_equal(a, b));
  g_bytes_unref(a);
  g_bytes_unref(b);
  /* a duplicate entry is refused and leaves nothing behind */
  rev[1] = rev[0];
  g_unlink(out);
  g_assert_false(wh_imatrix_save_gguf(out, rev, n, datasets, 1, 1, &error));
  g_assert_error(error, WH_IMATRIX_ERROR, WH_IMATRIX_ERROR_FORMAT);
  g_clear_error(&error);
  g_assert_false(g_file_test(out, G_FILE_TEST_EXISTS));
  g_free(rev);
  g_free(out);
  wh_test_rmdir_r(tmp);
  g_free(tmp);

  /* a GGUF that is not an imatrix */
  char *ft = wh_test_shared_path("spec/format-tables.gguf");
  g_assert_null(wh_imatrix_load(ft, &error));
  g_assert_error(error, WH_IMATRIX_ERROR, WH_IMATRIX_ERROR_FORMAT);
  g_assert_nonnull(strstr(error->message, "imatrix.datasets"));
  g_clear_error(&error);
  g_free(ft);
  g_assert_null(wh_imatrix_load("/nonexistent/imatrix.dat", &error));
  g_assert_error(error, WH_IMATRIX_ERROR, WH_IMATRIX_ERROR_IO);
  g_clear_error(&error);

  wh_gguf_close(model);
  wh_gguf_close(raw);
  wh_imatrix_free(im);
  g_free(path);
  g_free(model_path);
}

static void
put_i32(GByteArray *b, gint32 v)
{
  put_u32(b, (guint32)v);
}

/* A legacy .dat written from the GGUF imatrix with the §8.2 rules gives the same importance. */
static void
test_imatrix_dat(void)
{
  char *path = wh_test_shared_file_or_skip("reference/synth-llama.imatrix.gguf");
  if (!path)
    return;
  GError *error = NULL;
  wh_imatrix *im = wh_imatrix_load(path, &error);
  g_assert_no_error(error);
  gint64 chunk_size = wh_imatrix_chunk_size(im);
  GByteArray *b = g_byte_array_new();
  put_i32(b, (gint32)wh_imatrix_n_entries(im));
  for (guint i = 0; i < wh_imatrix_n_entries(im); i++) {
    const wh_imatrix_entry *e = wh_imatrix_get_entry(im, i);
    put_i32(b, (gint32)strlen(e->name));
    g_byte_array_append(b, (const guint8 *)e->name, (guint)strlen(e->name));
    gint32 ncall = (gint32)ceil(e->counts[0] / (double)chunk_size);
    put_i32(b, ncall);
    put_i32(b, (gint32)e->n_cols);
    for (guint64 c = 0; c < e->n_cols; c++) {
      float v = e->in_sum2[c] / e->counts[0] * (float)ncall;
      g_byte_array_append(b, (const guint8 *)&v, 4);
    }
  }
  gsize entries_end = b->len;
  put_i32(b, 178);
  put_i32(b, 9);
  g_byte_array_append(b, (const guint8 *)"calib.txt", 9);

  GBytes *bytes = g_bytes_new(b->data, b->len);
  wh_imatrix *dat = wh_imatrix_load_bytes(bytes, "x.dat", &error);
  g_assert_no_error(error);
  g_bytes_unref(bytes);
  g_assert_true(wh_imatrix_is_legacy(dat));
  g_assert_cmpuint(wh_imatrix_n_entries(dat), ==, wh_imatrix_n_entries(im));
  g_assert_cmpint(wh_imatrix_chunk_count(dat), ==, 178);
  g_assert_cmpint(wh_imatrix_chunk_size(dat), ==, -1);
  g_assert_cmpstr(wh_imatrix_dataset(dat), ==, "calib.txt");
  for (guint i = 0; i < wh_imatrix_n_entries(im); i++) {
    const wh_imatrix_entry *e = wh_imatrix_get_entry(im, i);
    const wh_imatrix_entry *d = wh_imatrix_find(dat, e->name);
    g_assert_nonnull(d);
    g_assert_null(d->in_sum2);
    g_assert_cmpint(d->ncall, >, 0);
    g_assert_cmpuint(d->n_cols, ==, e->n_cols);
    for (guint64 c = 0; c < e->n_cols; c++)
      g_assert_cmpfloat_with_epsilon(d->importance[c], e->importance[c],
                                     1e-6 * (1 + e->importance[c]));
  }
  wh_imatrix_free(dat);

  /* truncations: only the three legal ends load */
  for (gsize cut = 0; cut < b->len; cut++) {
    GBytes *part = g_bytes_new_static(b->data, cut);
    dat = wh_imatrix_load_bytes(part, "x.dat", &error);
    g_bytes_unref(part);
    if (cut == entries_end || cut == entries_end + 4) {
      g_assert_no_error(error);
      g_assert_cmpuint(wh_imatrix_n_entries(dat), ==, wh_imatrix_n_entries(im));
      wh_imatrix_free(dat);
    } else {
      g_assert_null(dat);
      g_assert_error(error, WH_IMATRIX_ERROR, WH_IMATRIX_ERROR_FORMAT);
      g_clear_error(&error);
    }
  }
  /* corrupt counts */
  gsize offs[] = {0, 4, 4 + 4 + strlen(wh_imatrix_get_entry(im, 0)->name) + 4};
  gint32 vals[] = {-1, G_MAXINT32, -5};
  for (guint k = 0; k < G_N_ELEMENTS(offs); k++) {
    GByteArray *c = g_byte_array_new();
    g_byte_array_append(c, b->data, b->len);
    poke(c, offs[k], 4, (guint32)vals[k]);
    GBytes *cb = g_bytes_new(c->data, c->len);
    g_assert_null(wh_imatrix_load_bytes(cb, "x.dat", &error));
    g_assert_error(error, WH_IMATRIX_ERROR, WH_IMATRIX_ERROR_FORMAT);
    g_assert_true(g_str_has_prefix(error->message, "x.dat: "));
    g_clear_error(&error);
    g_bytes_unref(cb);
    g_byte_array_unref(c);
  }
  g_byte_array_unref(b);
  wh_imatrix_free(im);
  g_free(path);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/gguf/types", test_types);
  g_test_add_func("/gguf/worked-example", test_worked_example);
  g_test_add_func("/gguf/stories260K", test_stories);
  g_test_add_func("/gguf/reference-models", test_reference_models);
  g_test_add_func("/gguf/logits-files", test_logits_files);
  g_test_add_func("/gguf/vocab-files", test_vocab_files);
  g_test_add_func("/gguf/quant-reference", test_quant_reference);
  g_test_add_func("/gguf/check-data", test_check_data);
  g_test_add_func("/gguf/mini-corruptions", test_mini);
  g_test_add_func("/gguf/nested-arrays", test_nested_arrays);
  g_test_add_func("/gguf/corrupt-shared", test_corrupt_shared);
  g_test_add_func("/gguf/writer/roundtrip", test_roundtrip);
  g_test_add_func("/gguf/writer/values", test_writer_values);
  g_test_add_func("/gguf/writer/failures", test_writer_failures);
  g_test_add_func("/gguf/split", test_split);
  g_test_add_func("/gguf/imatrix/gguf", test_imatrix_gguf);
  g_test_add_func("/gguf/imatrix/dat", test_imatrix_dat);
  return g_test_run();
}
