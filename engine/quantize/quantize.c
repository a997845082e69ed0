/* quantize.c — ftype mixes and the streaming file quantizer (contract in quantize.h).
 *
 * Implementation notes
 * --------------------
 * Planning walks the tensors in file order, keeping the counters of ftype-mixes.md (i_v over
 * the v-like tensors, i_down over ffn_down, per-category layer counters for gate/up), and
 * applies, for each quantizable tensor: rule 1/2 (output, token_embd) or rule 3 (very low-bit
 * ftypes) or the category rule 4-10, then user patterns, then explicit output/token_embd
 * types, then the shape fallback. The rules only run for quantized base types (F16/BF16/F32
 * ftypes just convert every quantizable tensor). Rule 4 covers every v-like tensor (v, qkv,
 * kv_b) and comes first, so the qkv rule 9 never sees a tensor; it is kept as the spec words
 * it, in rule order.
 *
 * Execution streams tensor by tensor through the GGUF writer. A converted tensor is cut in
 * chunks of rows (about CHUNK_BYTES of F32 each); a chunk's rows are split between the
 * workers, each of which widens its rows to F32 in its own scratch buffer and quantizes them
 * into the chunk's output buffer; the main thread then writes the chunk. Memory is therefore
 * about 2 x CHUNK_BYTES whatever the model size.
 */
#include "config.h"

#include "quantize.h"

#include "gguf/gguf-writer.h"
#include "gguf/gguf.h"
#include "gguf/imatrix.h"
#include "quant/quant.h"

#include <math.h>
#include <string.h>

G_DEFINE_QUARK(wh-quantize-error-quark, wh_quantize_error)

#define CHUNK_BYTES (16u << 20)

/* ftype ids (ftype-mixes.md) */
enum {
  FT_ALL_F32 = 0,
  FT_F16 = 1,
  FT_Q4_0 = 2,
  FT_Q4_1 = 3,
  FT_Q8_0 = 7,
  FT_Q5_0 = 8,
  FT_Q5_1 = 9,
  FT_Q2_K = 10,
  FT_Q3_K_S = 11,
  FT_Q3_K_M = 12,
  FT_Q3_K_L = 13,
  FT_Q4_K_S = 14,
  FT_Q4_K_M = 15,
  FT_Q5_K_S = 16,
  FT_Q5_K_M = 17,
  FT_Q6_K = 18,
  FT_IQ2_XXS = 19,
  FT_IQ2_XS = 20,
  FT_Q2_K_S = 21,
  FT_IQ3_XS = 22,
  FT_IQ3_XXS = 23,
  FT_IQ1_S = 24,
  FT_IQ4_NL = 25,
  FT_IQ3_S = 26,
  FT_IQ3_M = 27,
  FT_IQ2_S = 28,
  FT_IQ2_M = 29,
  FT_IQ4_XS = 30,
  FT_IQ1_M = 31,
  FT_BF16 = 32,
  FT_TQ1_0 = 36,
  FT_TQ2_0 = 37,
};

typedef enum {
  CAT_OUTPUT,
  CAT_TOKEN_EMBD,
  CAT_QKV,
  CAT_KV_B,
  CAT_V,
  CAT_K,
  CAT_Q,
  CAT_ATTN_OUTPUT,
  CAT_FFN_UP,
  CAT_FFN_GATE,
  CAT_FFN_DOWN,
  CAT_OTHER,
} category;

typedef struct {
  GRegex *regex;
  wh_type type;
} pattern;

struct wh_quantize_plan {
  wh_gguf *src;
  wh_imatrix *imatrix;
  char *imatrix_path;
  gint ftype;
  GArray *tensors;    /* wh_quantize_tensor_plan, in output order */
  guint64 *src_index; /* per output tensor: its index in the input */
  const float **imat; /* per output tensor: importance vector or NULL */
  guint n_fallbacks;
  guint64 file_size;
};

wh_quantize_params
wh_quantize_default_params(void)
{
  wh_quantize_params p = {0};
  p.ftype = FT_Q4_K_M;
  p.output_type = WH_TYPE_INVALID;
  p.token_embd_type = WH_TYPE_INVALID;
  return p;
}

/* ---------------------------------------------------------------------------------------- */
/* the rules of ftype-mixes.md */

typedef struct {
  gint ftype;
  wh_type base;
  gboolean has_imatrix;
  gboolean falcon;
  gboolean llama_70b;
  guint64 n_gqa;
  guint64 n_expert;
  guint64 n_v;     /* v-like tensors */
  guint64 n_layer; /* ffn_down tensors */
  gboolean tied;   /* no output.weight */
} model_facts;

static category
categorize(const char *name)
{
  if (strcmp(name, "output.weight") == 0)
    return CAT_OUTPUT;
  if (strcmp(name, "token_embd.weight") == 0)
    return CAT_TOKEN_EMBD;
  if (strstr(name, "attn_qkv.weight"))
    return CAT_QKV;
  if (strstr(name, "attn_kv_b.weight"))
    return CAT_KV_B;
  if (strstr(name, "attn_v.weight"))
    return CAT_V;
  if (strstr(name, "attn_k.weight"))
    return CAT_K;
  if (strstr(name, "attn_q.weight"))
    return CAT_Q;
  if (strstr(name, "attn_output.weight"))
    return CAT_ATTN_OUTPUT;
  if (strstr(name, "ffn_up"))
    return CAT_FFN_UP;
  if (strstr(name, "ffn_gate"))
    return CAT_FFN_GATE;
  if (strstr(name, "ffn_down"))
    return CAT_FFN_DOWN;
  return CAT_OTHER;
}

static gboolean
is_v_like(category c)
{
  return c == CAT_V || c == CAT_QKV || c == CAT_KV_B;
}

/* Number of dimensions ignoring trailing 1s (writers may store them). */
static guint
effective_dims(const wh_gguf_tensor *t)
{
  guint n = 1;
  for (guint d = 1; d < 4; d++)
    if (t->ne[d] != 1)
      n = d + 1;
  return n;
}

/* "Which tensors are quantized at all". */
static gboolean
is_quantizable(const wh_gguf_tensor *t)
{
  const char *n = t->name;
  if (effective_dims(t) < 2 || !g_str_has_suffix(n, "weight"))
    return FALSE;
  static const char *const excluded[] = {
      "_norm.weight",
      "ffn_gate_inp.weight",
      "position_embd.weight",
      "token_types.weight",
      "pos_embd.weight",
      "ssm_conv1d.weight",
      "rel_pos",
      "attn_rel_b.weight",
      "shortconv.conv.weight",
      "time_mix_first.weight",
  };
  for (guint i = 0; i < G_N_ELEMENTS(excluded); i++)
    if (strstr(n, excluded[i]))
      return FALSE;
  return TRUE;
}

static gboolean
more_bits(guint64 i, guint64 n)
{
  return i < n / 8 || i >= 7 * n / 8 || (i >= n / 8 && (i - n / 8) % 3 == 2);
}

static gboolean
is_very_low_bit(gint f)
{
  return f == FT_IQ2_XXS || f == FT_IQ2_XS || f == FT_IQ1_S || f == FT_IQ2_S || f == FT_IQ2_M ||
         f == FT_IQ1_M;
}

static gboolean
ftype_needs_imatrix(gint f)
{
  return is_very_low_bit(f) || f == FT_Q2_K_S;
}

/* Rule 1: the output tensor (and token_embd of a tied model). */
static wh_type
rule_output(const model_facts *m, guint64 ne0)
{
  const wh_type_traits *b = wh_type_get_traits(m->base);
  gint f = m->ftype;
  if (ne0 % b->block_size != 0 || m->falcon)
    return WH_TYPE_Q8_0;
  if (f == FT_IQ1_S || f == FT_IQ1_M || f == FT_IQ2_XXS || f == FT_IQ2_XS || f == FT_IQ2_S ||
      f == FT_IQ2_M || f == FT_IQ3_XXS)
    return WH_TYPE_Q5_K;
  return m->base == WH_TYPE_Q8_0 ? WH_TYPE_Q8_0 : WH_TYPE_Q6_K;
}

/* Rule 2: token_embd of an untied model. */
static wh_type
rule_token_embd(const model_facts *m)
{
  switch (m->ftype) {
  case FT_IQ2_XXS:
  case FT_IQ2_XS:
  case FT_IQ1_S:
  case FT_IQ1_M:
    return WH_TYPE_Q2_K;
  case FT_IQ2_S:
  case FT_IQ2_M:
  case FT_IQ3_XXS:
    return WH_TYPE_IQ3_S;
  case FT_TQ1_0:
  case FT_TQ2_0:
    return WH_TYPE_Q4_K;
  default:
    return m->base;
  }
}

/* Rule 3: very low-bit ftypes. @i_down: ffn_down layer index. */
static wh_type
rule_very_low_bit(const model_facts *m, category c, guint64 i_down)
{
  gint f = m->ftype;
  gboolean s_or_m = f == FT_IQ2_S || f == FT_IQ2_M;
  if (is_v_like(c)) {
    if (m->n_gqa >= 4 || m->n_expert >= 4)
      return WH_TYPE_Q4_K;
    return s_or_m ? WH_TYPE_IQ3_S : WH_TYPE_Q2_K;
  }
  if (c == CAT_K && m->n_expert == 8)
    return WH_TYPE_Q4_K;
  if (c == CAT_FFN_DOWN && i_down < m->n_layer / 8)
    return s_or_m ? WH_TYPE_IQ3_S : WH_TYPE_Q2_K;
  if (c == CAT_ATTN_OUTPUT) {
    if (m->n_expert == 8)
      return WH_TYPE_Q5_K;
    if (f == FT_IQ1_S || f == FT_IQ1_M)
      return WH_TYPE_IQ2_XXS;
    if (s_or_m)
      return WH_TYPE_IQ3_S;
  }
  return m->base;
}

/* Rule 4: v-like tensors; @i_v is this tensor's index among them. */
static wh_type
rule_v(const model_facts *m, guint64 i_v)
{
  gint f = m->ftype;
  wh_type t = m->base;
  if (f == FT_Q2_K)
    t = m->n_gqa >= 4 ? WH_TYPE_Q4_K : WH_TYPE_Q3_K;
  else if (f == FT_Q2_K_S && m->n_gqa >= 4)
    t = WH_TYPE_Q4_K;
  else if (f == FT_IQ3_XXS)
    t = m->n_gqa >= 4 ? WH_TYPE_Q4_K : !m->has_imatrix ? WH_TYPE_IQ3_S : WH_TYPE_IQ3_XXS;
  else if ((f == FT_IQ3_XS || f == FT_IQ3_S) && m->n_gqa >= 4)
    t = WH_TYPE_Q4_K;
  else if (f == FT_IQ3_M)
    t = WH_TYPE_Q4_K;
  else if (f == FT_Q3_K_M)
    t = i_v < 2 ? WH_TYPE_Q5_K : WH_TYPE_Q4_K;
  else if (f == FT_Q3_K_L)
    t = WH_TYPE_Q5_K;
  else if ((f == FT_IQ4_NL || f == FT_IQ4_XS) && m->n_gqa >= 4)
    t = WH_TYPE_Q5_K;
  else if ((f == FT_Q4_K_M || f == FT_Q5_K_M) && more_bits(i_v, m->n_v))
    t = WH_TYPE_Q6_K;
  else if (f == FT_Q4_K_S && i_v < 4)
    t = WH_TYPE_Q5_K;
  if (m->llama_70b && (t == WH_TYPE_Q3_K || t == WH_TYPE_Q4_K))
    t = WH_TYPE_Q5_K;
  if (m->n_expert == 8)
    t = WH_TYPE_Q8_0;
  return t;
}

/* Rule 5 (k) and rule 6 (q). */
static wh_type
rule_k_q(const model_facts *m, category c)
{
  if (c == CAT_K && m->n_expert == 8)
    return WH_TYPE_Q8_0;
  if (m->ftype == FT_IQ3_XS)
    return WH_TYPE_IQ3_XXS;
  if (m->ftype == FT_IQ3_XXS)
    return WH_TYPE_IQ2_S;
  return m->base;
}

/* Rule 7: ffn_down of layer @i. */
static wh_type
rule_ffn_down(const model_facts *m, guint64 i)
{
  gint f = m->ftype;
  guint64 n = m->n_layer;
  gboolean mb = more_bits(i, n);
  if (f == FT_Q2_K)
    return WH_TYPE_Q3_K;
  if (f == FT_Q2_K_S)
    return i < n / 8 ? WH_TYPE_Q4_K : m->base;
  if (f == FT_IQ3_XXS && !m->has_imatrix)
    return i < n / 8 ? WH_TYPE_Q4_K : WH_TYPE_Q3_K;
  if (f == FT_Q3_K_M) {
    if (i < n / 16)
      return WH_TYPE_Q5_K;
    return !m->falcon || mb ? WH_TYPE_Q4_K : WH_TYPE_Q3_K;
  }
  if (f == FT_IQ3_M)
    return i < n / 8 || (m->n_expert == 8 && mb) ? WH_TYPE_Q4_K : m->base;
  if (f == FT_Q3_K_L)
    return m->falcon ? WH_TYPE_Q4_K : WH_TYPE_Q5_K;
  if (f == FT_Q4_K_M) {
    if (m->falcon)
      return i < n / 16 ? WH_TYPE_Q6_K : mb ? WH_TYPE_Q5_K : WH_TYPE_Q4_K;
    return mb ? WH_TYPE_Q6_K : m->base;
  }
  if ((f == FT_IQ4_NL || f == FT_IQ4_XS) && !m->has_imatrix)
    return i < n / 8 ? WH_TYPE_Q5_K : m->base;
  if (f == FT_Q5_K_M)
    return mb ? WH_TYPE_Q6_K : m->base;
  if (f == FT_Q4_K_S && !m->falcon)
    return i < n / 8 ? WH_TYPE_Q5_K : m->base;
  if ((f == FT_Q4_0 || f == FT_Q5_0) && m->has_imatrix && i < n / 8)
    return f == FT_Q4_0 ? WH_TYPE_Q4_1 : WH_TYPE_Q5_1;
  return m->base;
}

/* Rule 8: attn_output. */
static wh_type
rule_attn_output(const model_facts *m)
{
  gint f = m->ftype;
  if (m->falcon)
    return f == FT_Q3_K_L ? WH_TYPE_Q4_K : m->base;
  if (m->n_expert == 8) {
    switch (f) {
    case FT_Q2_K:
    case FT_IQ3_XS:
    case FT_IQ3_XXS:
    case FT_Q3_K_S:
    case FT_Q3_K_M:
    case FT_IQ4_NL:
    case FT_Q4_K_S:
    case FT_Q4_K_M:
    case FT_IQ3_S:
    case FT_IQ3_M:
    case FT_IQ4_XS:
      return WH_TYPE_Q5_K;
    default:
      return m->base;
    }
  }
  switch (f) {
  case FT_Q2_K:
    return WH_TYPE_Q3_K;
  case FT_IQ3_XXS:
    return WH_TYPE_IQ3_S;
  case FT_Q3_K_M:
    return WH_TYPE_Q4_K;
  case FT_Q3_K_L:
    return WH_TYPE_Q5_K;
  case FT_IQ3_M:
    return WH_TYPE_Q4_K;
  default:
    return m->base;
  }
}

/* Rule 10: ffn_gate / ffn_up of layer @i. */
static wh_type
rule_gate_up(const model_facts *m, guint64 i)
{
  guint64 n = m->n_layer;
  if (m->ftype == FT_IQ3_XS && i >= n / 8 && i < 7 * n / 8)
    return WH_TYPE_IQ3_XXS;
  return m->base;
}

/* Shape fallback: a type whose block does not divide @ne0. */
static wh_type
shape_fallback(wh_type t, guint64 ne0)
{
  const wh_type_traits *tr = wh_type_get_traits(t);
  if (ne0 % tr->block_size == 0)
    return t;
  switch (t) {
  case WH_TYPE_IQ1_S:
  case WH_TYPE_IQ1_M:
  case WH_TYPE_IQ2_XXS:
  case WH_TYPE_IQ2_XS:
  case WH_TYPE_IQ2_S:
  case WH_TYPE_IQ3_XXS:
  case WH_TYPE_IQ3_S:
  case WH_TYPE_IQ4_XS:
    t = WH_TYPE_IQ4_NL;
    break;
  case WH_TYPE_Q2_K:
  case WH_TYPE_Q3_K:
  case WH_TYPE_TQ1_0:
  case WH_TYPE_TQ2_0:
    t = WH_TYPE_Q4_0;
    break;
  case WH_TYPE_Q4_K:
    t = WH_TYPE_Q5_0;
    break;
  case WH_TYPE_Q5_K:
    t = WH_TYPE_Q5_1;
    break;
  case WH_TYPE_Q6_K:
    t = WH_TYPE_Q8_0;
    break;
  default:
    break;
  }
  if (ne0 % wh_type_get_traits(t)->block_size != 0)
    t = WH_TYPE_F16;
  return t;
}

/* The layer index of "blk.N....", or -1. */
static gint64
layer_of(const char *name)
{
  if (!g_str_has_prefix(name, "blk."))
    return -1;
  char *end = NULL;
  guint64 v = g_ascii_strtoull(name + 4, &end, 10);
  return end && end != name + 4 && *end == '.' && v < G_MAXINT32 ? (gint64)v : -1;
}

/* Output order (what the reference quantizer writes): tensors outside "blk.N." first, then by
 * layer number, each group by name (byte order). */
static gint
output_order(gconstpointer a, gconstpointer b, gpointer data)
{
  const wh_gguf *g = data;
  const char *na = wh_gguf_get_tensor(g, *(const guint64 *)a)->name;
  const char *nb = wh_gguf_get_tensor(g, *(const guint64 *)b)->name;
  gint64 la = layer_of(na), lb = layer_of(nb);
  if (la != lb)
    return la < lb ? -1 : 1;
  return strcmp(na, nb);
}

/* First element of a per-layer array, or the scalar. */
static gboolean
get_uint_or_first(const wh_gguf *g, const char *key, guint64 *out)
{
  if (wh_gguf_get_uint(g, key, out))
    return TRUE;
  wh_gguf_array a;
  if (wh_gguf_get_array(g, key, &a) && a.n > 0 && a.type != WH_GGUF_STRING &&
      a.type != WH_GGUF_ARRAY) {
    gint64 v = wh_gguf_array_get_int(&a, 0);
    if (v >= 0) {
      *out = (guint64)v;
      return TRUE;
    }
  }
  return FALSE;
}

static void
gather_facts(const wh_gguf *g, gint ftype, gboolean has_imatrix, model_facts *m)
{
  memset(m, 0, sizeof *m);
  m->ftype = ftype;
  m->base = wh_ftype_base_type((guint32)ftype);
  m->has_imatrix = has_imatrix;
  const char *arch = wh_gguf_get_architecture(g);
  arch = arch ? arch : "";
  m->falcon = strcmp(arch, "falcon") == 0;
  char *k = g_strdup_printf("%s.attention.head_count", arch);
  guint64 n_head = 0, n_head_kv = 0;
  get_uint_or_first(g, k, &n_head);
  g_free(k);
  k = g_strdup_printf("%s.attention.head_count_kv", arch);
  if (!get_uint_or_first(g, k, &n_head_kv))
    n_head_kv = n_head;
  g_free(k);
  m->n_gqa = n_head_kv ? MAX(n_head / n_head_kv, 1) : 1;
  k = g_strdup_printf("%s.expert_count", arch);
  if (!wh_gguf_get_uint(g, k, &m->n_expert) || m->n_expert == 0)
    m->n_expert = 1;
  g_free(k);
  for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) {
    const char *name = wh_gguf_get_tensor(g, i)->name;
    category c = categorize(name);
    m->n_v += is_v_like(c);
    m->n_layer += c == CAT_FFN_DOWN;
  }
  m->tied = wh_gguf_find_tensor(g, "output.weight") == NULL;
  m->llama_70b = strcmp(arch, "llama") == 0 && m->n_layer == 80;
}

/* ---------------------------------------------------------------------------------------- */
/* planning */

void
wh_quantize_plan_free(wh_quantize_plan *plan)
{
  if (plan == NULL)
    return;
  wh_gguf_close(plan->src);
  wh_imatrix_free(plan->imatrix);
  g_free(plan->imatrix_path);
  if (plan->tensors)
    g_array_unref(plan->tensors);
  g_free(plan->imat);
  g_free(plan->src_index);
  g_free(plan);
}

static void
free_patterns(GArray *pats)
{
  for (guint i = 0; i < pats->len; i++)
    g_regex_unref(g_array_index(pats, pattern, i).regex);
  g_array_unref(pats);
}

static GArray *
parse_patterns(const char *const *specs, GError **error)
{
  GArray *pats = g_array_new(FALSE, FALSE, sizeof(pattern));
  for (const char *const *s = specs; s && *s; s++) {
    const char *eq = strrchr(*s, '=');
    wh_type t = eq ? wh_type_from_name(eq + 1) : WH_TYPE_INVALID;
    if (eq == NULL || eq == *s || t == WH_TYPE_INVALID) {
      g_set_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_INVALID,
                  "tensor type override '%s' is not REGEX=TYPE with a known type (e.g. "
                  "'attn_v=Q8_0')",
                  *s);
      free_patterns(pats);
      return NULL;
    }
    char *re = g_strndup(*s, (gsize)(eq - *s));
    GError *local = NULL;
    GRegex *regex = g_regex_new(re, G_REGEX_OPTIMIZE, 0, &local);
    g_free(re);
    if (regex == NULL) {
      g_set_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_INVALID,
                  "tensor type override '%s': %s", *s, local->message);
      g_error_free(local);
      free_patterns(pats);
      return NULL;
    }
    pattern p = {regex, t};
    g_array_append_val(pats, p);
  }
  return pats;
}

/* A writer holding the output's metadata and tensor directory (not begun). */
static wh_gguf_writer *
build_writer(const wh_quantize_plan *plan, GError **error)
{
  wh_gguf_writer *w = wh_gguf_writer_new();
  static const char *const skip[] = {"split.", NULL};
  if (!wh_gguf_writer_copy_kvs(w, plan->src, skip, error)) {
    wh_gguf_writer_free(w);
    return NULL;
  }
  wh_gguf_writer_set_uint32(w, "general.quantization_version", 2);
  wh_gguf_writer_set_uint32(w, "general.file_type", (guint32)plan->ftype);
  if (plan->imatrix) {
    wh_gguf_writer_set_string(w, "quantize.imatrix.file", plan->imatrix_path);
    if (wh_imatrix_dataset(plan->imatrix))
      wh_gguf_writer_set_string(w, "quantize.imatrix.dataset", wh_imatrix_dataset(plan->imatrix));
    wh_gguf_writer_set_uint32(w, "quantize.imatrix.entries_count",
                              wh_imatrix_n_entries(plan->imatrix));
    gint64 chunks = wh_imatrix_chunk_count(plan->imatrix);
    if (chunks >= 0)
      wh_gguf_writer_set_uint32(w, "quantize.imatrix.chunks_count", (guint32)chunks);
  }
  for (guint i = 0; i < plan->tensors->len; i++) {
    const wh_quantize_tensor_plan *tp = &g_array_index(plan->tensors, wh_quantize_tensor_plan, i);
    if (!wh_gguf_writer_add_tensor(w, tp->name, tp->dst_type, tp->n_dims, tp->ne, error)) {
      wh_gguf_writer_free(w);
      return NULL;
    }
  }
  return w;
}

static gboolean
type_ok(wh_type t)
{
  return t == WH_TYPE_INVALID || wh_type_is_valid((guint32)t);
}

wh_quantize_plan *
wh_quantize_plan_new(const char *input, const wh_quantize_params *params, GError **error)
{
  g_return_val_if_fail(input != NULL && params != NULL, NULL);
  const char *fname = params->ftype >= 0 ? wh_ftype_name((guint32)params->ftype) : NULL;
  if (fname == NULL) {
    g_set_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_INVALID, "unknown ftype id %d",
                params->ftype);
    return NULL;
  }
  if (!type_ok(params->output_type) || !type_ok(params->token_embd_type)) {
    g_set_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_INVALID,
                "invalid output or token embedding tensor type");
    return NULL;
  }
  if (ftype_needs_imatrix(params->ftype) && params->imatrix_path == NULL) {
    g_set_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_NEEDS_IMATRIX,
                "%s needs an importance matrix: at about 2 bits per weight or less the "
                "quantizer must know which weight columns matter most for the model's "
                "activations, otherwise the model degrades badly. Compute one with "
                "'whittle-cli imatrix' on some representative text and pass it with --imatrix",
                fname);
    return NULL;
  }
  GArray *pats = parse_patterns(params->tensor_types, error);
  if (pats == NULL)
    return NULL;

  wh_quantize_plan *plan = g_new0(wh_quantize_plan, 1);
  plan->ftype = params->ftype;
  plan->src = wh_gguf_open(input, error);
  if (plan->src == NULL)
    goto fail;
  if (params->imatrix_path) {
    plan->imatrix = wh_imatrix_load(params->imatrix_path, error);
    if (plan->imatrix == NULL)
      goto fail;
    plan->imatrix_path = g_strdup(params->imatrix_path);
  }

  const wh_gguf *g = plan->src;
  model_facts m;
  gather_facts(g, params->ftype, plan->imatrix != NULL, &m);
  gboolean rules = wh_type_get_traits(m.base)->quantized;
  guint64 n = wh_gguf_n_tensors(g);
  plan->tensors = g_array_sized_new(FALSE, TRUE, sizeof(wh_quantize_tensor_plan), (guint)n);
  plan->imat = g_new0(const float *, n ? n : 1);
  plan->src_index = g_new0(guint64, n ? n : 1);
  for (guint64 i = 0; i < n; i++)
    plan->src_index[i] = i;
  g_qsort_with_data(plan->src_index, (gint)n, sizeof(guint64), output_order, (gpointer)g);
  guint64 i_v = 0, i_down = 0, i_gate = 0, i_up = 0;
  for (guint64 i = 0; i < n; i++) { /* in output order: the counters follow it */
    const wh_gguf_tensor *t = wh_gguf_get_tensor(g, plan->src_index[i]);
    wh_quantize_tensor_plan tp = {0};
    tp.name = t->name;
    tp.n_dims = t->n_dims;
    memcpy(tp.ne, t->ne, sizeof tp.ne);
    tp.src_type = tp.dst_type = tp.wanted_type = t->type;
    tp.src_bytes = t->n_bytes;
    category c = categorize(t->name);
    /* counters count every tensor of the category in file order */
    guint64 my_v = i_v, my_down = i_down, my_gate = i_gate, my_up = i_up;
    i_v += is_v_like(c);
    i_down += c == CAT_FFN_DOWN;
    i_gate += c == CAT_FFN_GATE;
    i_up += c == CAT_FFN_UP;
    if (m.n_expert > 1 && layer_of(t->name) >= 0) /* MoE: experts may be separate tensors */
      my_down = my_gate = my_up = (guint64)layer_of(t->name);

    if (is_quantizable(t)) {
      gboolean is_output = c == CAT_OUTPUT || (c == CAT_TOKEN_EMBD && m.tied);
      wh_type want = m.base;
      if (rules) {
        if (is_output)
          want = rule_output(&m, t->ne[0]);
        else if (c == CAT_TOKEN_EMBD)
          want = rule_token_embd(&m);
        else if (!params->pure) {
          if (is_very_low_bit(m.ftype))
            want = rule_very_low_bit(&m, c, my_down);
          else if (is_v_like(c))
            want = rule_v(&m, my_v);
          else if (c == CAT_K || c == CAT_Q)
            want = rule_k_q(&m, c);
          else if (c == CAT_FFN_DOWN)
            want = rule_ffn_down(&m, my_down);
          else if (c == CAT_ATTN_OUTPUT)
            want = rule_attn_output(&m);
          else if (c == CAT_FFN_GATE || c == CAT_FFN_UP)
            want = rule_gate_up(&m, c == CAT_FFN_GATE ? my_gate : my_up);
        }
      }
      for (guint k = 0; k < pats->len; k++) {
        const pattern *p = &g_array_index(pats, pattern, k);
        if (g_regex_match(p->regex, t->name, 0, NULL)) {
          want = p->type;
          break;
        }
      }
      if (c == CAT_OUTPUT && params->output_type != WH_TYPE_INVALID)
        want = params->output_type;
      if (c == CAT_TOKEN_EMBD && params->token_embd_type != WH_TYPE_INVALID)
        want = params->token_embd_type;
      tp.wanted_type = want;
      tp.dst_type = shape_fallback(want, t->ne[0]);
      tp.fell_back = tp.dst_type != want;
      plan->n_fallbacks += tp.fell_back;
      tp.converted = tp.dst_type != t->type;
    }

    if (tp.converted) {
      const wh_type_traits *st = wh_type_get_traits(t->type);
      if (st->quantized && !params->allow_requantize) {
        g_set_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_REQUANTIZE,
                    "%s: tensor '%s' is already quantized (%s); requantizing loses more quality "
                    "than quantizing the original F16/F32 model. Use the original, or pass "
                    "--allow-requantize",
                    input, t->name, st->name);
        goto fail;
      }
      const wh_imatrix_entry *e = plan->imatrix ? wh_imatrix_find(plan->imatrix, t->name) : NULL;
      if (e && wh_type_get_traits(tp.dst_type)->quantized) {
        if (e->n_cols * e->n_mat != t->ne[0] * t->ne[2]) {
          g_set_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_IMATRIX,
                      "%s: the entry for '%s' has %" G_GUINT64_FORMAT " values but the tensor "
                      "needs %" G_GUINT64_FORMAT " (row length x experts): the importance matrix "
                      "was computed for another model",
                      params->imatrix_path, t->name, e->n_cols * e->n_mat, t->ne[0] * t->ne[2]);
          goto fail;
        }
        for (guint64 k = 0; k < e->n_cols * e->n_mat; k++)
          if (!isfinite(e->importance[k])) {
            g_set_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_IMATRIX,
                        "%s: the entry for '%s' holds a non-finite value at %" G_GUINT64_FORMAT,
                        params->imatrix_path, t->name, k);
            goto fail;
          }
        plan->imat[i] = e->importance;
        tp.uses_imatrix = TRUE;
      } else if (wh_quant_type_requires_imatrix(tp.dst_type)) {
        g_set_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_NEEDS_IMATRIX,
                    "tensor '%s' would become %s, which needs importance data, but %s; use an "
                    "importance matrix computed for this model, or another type for this tensor",
                    t->name, wh_type_name(tp.dst_type),
                    plan->imatrix ? "the importance matrix has no entry for it"
                                  : "no importance matrix was given");
        goto fail;
      }
    }
    tp.dst_bytes = wh_type_row_size(tp.dst_type, t->ne[0]) * (t->n_elements / MAX(t->ne[0], 1));
    if (t->ne[0] == 0)
      tp.dst_bytes = 0;
    g_array_append_val(plan->tensors, tp);
  }
  free_patterns(pats);
  pats = NULL;

  /* size of the output: let the writer compute it from the real metadata */
  wh_gguf_writer *w = build_writer(plan, error);
  if (w == NULL)
    goto fail;
  plan->file_size = wh_gguf_writer_file_size(w);
  wh_gguf_writer_free(w);
  return plan;

fail:
  if (pats)
    free_patterns(pats);
  wh_quantize_plan_free(plan);
  return NULL;
}

guint64
wh_quantize_plan_n_tensors(const wh_quantize_plan *plan)
{
  return plan->tensors->len;
}

const wh_quantize_tensor_plan *
wh_quantize_plan_get(const wh_quantize_plan *plan, guint64 i)
{
  return i < plan->tensors->len ? &g_array_index(plan->tensors, wh_quantize_tensor_plan, i) : NULL;
}

guint64
wh_quantize_plan_file_size(const wh_quantize_plan *plan)
{
  return plan->file_size;
}

guint64
wh_quantize_plan_input_size(const wh_quantize_plan *plan)
{
  return wh_gguf_total_size(plan->src);
}

guint
wh_quantize_plan_n_fallbacks(const wh_quantize_plan *plan)
{
  return plan->n_fallbacks;
}

/* ---------------------------------------------------------------------------------------- */
/* execution */

typedef struct {
  const wh_quantize_tensor_plan *tp;
  const guint8 *src;  /* first row of the tensor */
  guint8 *dst;        /* output buffer of the chunk */
  guint64 chunk_row0; /* first row of the chunk */
  guint64 r0, r1;     /* this worker's rows */
  const float *imat;  /* whole importance vector (n_cols x n_mat) or NULL */
  GError *error;
} work_item;

/* Widens rows [r0, r1) of the tensor to F32 and quantizes them into the chunk buffer. Rows of a
 * 3-D tensor [ne0, ne1, ne2] belong to matrix (expert) row / ne1, whose slice of the importance
 * vector they use, so a worker's range is cut at expert boundaries. */
static gpointer
work_run(gpointer data)
{
  work_item *w = data;
  const wh_quantize_tensor_plan *tp = w->tp;
  guint64 ne0 = tp->ne[0];
  gsize src_row = wh_type_row_size(tp->src_type, ne0);
  gsize dst_row = wh_type_row_size(tp->dst_type, ne0);
  guint64 rows_per_mat = MAX(tp->ne[1], 1);
  float *scratch = NULL;
  for (guint64 r = w->r0; r < w->r1 && w->error == NULL;) {
    guint64 mat = r / rows_per_mat;
    guint64 end = MIN(w->r1, (mat + 1) * rows_per_mat);
    guint64 nr = end - r;
    const guint8 *s = w->src + r * src_row;
    guint8 *d = w->dst + (r - w->chunk_row0) * dst_row;
    const float *f32;
    if (tp->src_type == WH_TYPE_F32 && ((guintptr)s % sizeof(float)) == 0) {
      f32 = (const float *)s;
    } else {
      if (scratch == NULL)
        scratch = g_new(float, (w->r1 - w->r0) * ne0);
      if (tp->src_type == WH_TYPE_F32)
        memcpy(scratch, s, nr * ne0 * sizeof(float));
      else
        wh_quant_dequantize_row(tp->src_type, s, scratch, (gint64)(nr * ne0));
      f32 = scratch;
    }
    if (tp->dst_type == WH_TYPE_F32) {
      memcpy(d, f32, nr * ne0 * sizeof(float));
    } else {
      const float *imat = w->imat ? w->imat + (mat % MAX(tp->ne[2], 1)) * ne0 : NULL;
      gsize n =
          wh_quant_quantize_rows(tp->dst_type, f32, d, (gint64)nr, (gint64)ne0, imat, &w->error);
      if (n == 0 && w->error == NULL)
        g_set_error(&w->error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_UNSUPPORTED,
                    "quantizing '%s' to %s failed", tp->name, wh_type_name(tp->dst_type));
    }
    r = end;
  }
  g_free(scratch);
  return NULL;
}

static gboolean
cancelled(const wh_quantize_params *p, wh_gguf_writer *w, GError **error)
{
  if (p->abort == NULL || !p->abort(p->user_data))
    return FALSE;
  wh_gguf_writer_abort(w);
  g_set_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_CANCELLED, "quantization cancelled");
  return TRUE;
}

static void
report(const wh_quantize_params *p, guint64 i, guint64 n, const char *name, guint64 done,
       guint64 total)
{
  if (p->progress == NULL)
    return;
  wh_quantize_progress pr = {i, n, name, done, total};
  p->progress(&pr, p->user_data);
}

/* Every conversion the plan needs must exist in this build; checked before writing. */
static gboolean
check_supported(const wh_quantize_plan *plan, GError **error)
{
  for (guint i = 0; i < plan->tensors->len; i++) {
    const wh_quantize_tensor_plan *tp = &g_array_index(plan->tensors, wh_quantize_tensor_plan, i);
    if (!tp->converted)
      continue;
    if (tp->src_type != WH_TYPE_F32 && !wh_quant_type_can_dequantize(tp->src_type)) {
      g_set_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_UNSUPPORTED,
                  "tensor '%s': reading %s tensors is not supported", tp->name,
                  wh_type_name(tp->src_type));
      return FALSE;
    }
    if (tp->dst_type != WH_TYPE_F32 && !wh_quant_type_can_quantize(tp->dst_type)) {
      g_set_error(error, WH_QUANTIZE_ERROR, WH_QUANTIZE_ERROR_UNSUPPORTED,
                  "tensor '%s' would become %s, but this build has no %s quantizer yet; choose "
                  "another type (e.g. a K-quant ftype, or --tensor-type '%s=Q4_K')",
                  tp->name, wh_type_name(tp->dst_type), wh_type_name(tp->dst_type), tp->name);
      return FALSE;
    }
  }
  return TRUE;
}

gboolean
wh_quantize_plan_execute(const wh_quantize_plan *plan, const char *output,
                         const wh_quantize_params *params, GError **error)
{
  g_return_val_if_fail(plan != NULL && output != NULL && params != NULL, FALSE);
  if (!check_supported(plan, error))
    return FALSE;
  wh_gguf_writer *w = build_writer(plan, error);
  if (w == NULL)
    return FALSE;
  if (!wh_gguf_writer_begin(w, output, error)) {
    wh_gguf_writer_free(w);
    return FALSE;
  }
  guint n_threads = params->n_threads ? params->n_threads : g_get_num_processors();
  n_threads = CLAMP(n_threads, 1, 256);
  guint64 n = plan->tensors->len, total = 0, done = 0;
  for (guint64 i = 0; i < n; i++)
    total += g_array_index(plan->tensors, wh_quantize_tensor_plan, i).src_bytes;
  work_item *items = g_new0(work_item, n_threads);
  GThread **threads = g_new0(GThread *, n_threads);
  gboolean ok = TRUE;

  for (guint64 i = 0; i < n && ok; i++) {
    const wh_quantize_tensor_plan *tp = &g_array_index(plan->tensors, wh_quantize_tensor_plan, i);
    const wh_gguf_tensor *t = wh_gguf_get_tensor(plan->src, plan->src_index[i]);
    if (!tp->converted) {
      /* copied unchanged, in slices so progress and abort stay responsive */
      for (guint64 o = 0; o < t->n_bytes && ok; o += CHUNK_BYTES) {
        if (cancelled(params, w, error)) {
          ok = FALSE;
          break;
        }
        gsize k = (gsize)MIN((guint64)CHUNK_BYTES, t->n_bytes - o);
        ok = wh_gguf_writer_write(w, t->data + o, k, error);
        done += k;
        report(params, i, n, tp->name, done, total);
      }
      if (t->n_bytes == 0)
        report(params, i, n, tp->name, done, total);
      wh_gguf_tensor_release(plan->src, t);
      continue;
    }
    guint64 ne0 = tp->ne[0];
    guint64 rows = ne0 ? t->n_elements / ne0 : 0;
    gsize src_row = wh_type_row_size(tp->src_type, ne0);
    gsize dst_row = wh_type_row_size(tp->dst_type, ne0);
    guint64 chunk_rows = MAX(CHUNK_BYTES / MAX(ne0 * sizeof(float), 1), 1);
    chunk_rows = MAX(chunk_rows, n_threads);
    guint8 *buf = g_malloc(MIN(chunk_rows, MAX(rows, 1)) * dst_row + 1);
    for (guint64 r0 = 0; r0 < rows && ok; r0 += chunk_rows) {
      if (cancelled(params, w, error)) {
        ok = FALSE;
        break;
      }
      guint64 r1 = MIN(rows, r0 + chunk_rows);
      guint nt = (guint)MIN((guint64)n_threads, r1 - r0);
      for (guint k = 0; k < nt; k++) {
        items[k] = (work_item){tp,
                               t->data,
                               buf,
                               r0,
                               r0 + (r1 - r0) * k / nt,
                               r0 + (r1 - r0) * (k + 1) / nt,
                               plan->imat[i],
                               NULL};
        threads[k] = k ? g_thread_new("wh-quantize", work_run, &items[k]) : NULL;
      }
      work_run(&items[0]);
      for (guint k = 1; k < nt; k++)
        g_thread_join(threads[k]);
      for (guint k = 0; k < nt; k++) {
        if (items[k].error && ok) {
          g_propagate_prefixed_error(error, items[k].error, "tensor '%s': ", tp->name);
          items[k].error = NULL;
          wh_gguf_writer_abort(w);
          ok = FALSE;
        }
        g_clear_error(&items[k].error);
      }
      if (ok)
        ok = wh_gguf_writer_write(w, buf, (r1 - r0) * dst_row, error);
      done += (r1 - r0) * src_row;
      report(params, i, n, tp->name, done, total);
    }
    g_free(buf);
    wh_gguf_tensor_release(plan->src, t); /* keeps the resident set at a few chunks */
  }
  if (ok)
    ok = wh_gguf_writer_finish(w, error);
  wh_gguf_writer_free(w);
  g_free(items);
  g_free(threads);
  return ok;
}

gboolean
wh_quantize_file(const char *input, const char *output, const wh_quantize_params *params,
                 wh_quantize_result *result, GError **error)
{
  gint64 t0 = g_get_monotonic_time();
  wh_quantize_plan *plan = wh_quantize_plan_new(input, params, error);
  if (plan == NULL)
    return FALSE;
  gboolean ok = TRUE;
  if (!params->dry_run)
    ok = wh_quantize_plan_execute(plan, output, params, error);
  if (ok && result) {
    memset(result, 0, sizeof *result);
    result->input_size = wh_quantize_plan_input_size(plan);
    result->output_size = plan->file_size;
    result->n_tensors = plan->tensors->len;
    for (guint i = 0; i < plan->tensors->len; i++)
      result->n_converted += g_array_index(plan->tensors, wh_quantize_tensor_plan, i).converted;
    result->n_fallbacks = plan->n_fallbacks;
    result->seconds = params->dry_run ? 0 : (g_get_monotonic_time() - t0) / 1e6;
  }
  wh_quantize_plan_free(plan);
  return ok;
}
