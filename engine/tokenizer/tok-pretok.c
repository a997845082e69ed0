/* tok-pretok.c — pre-tokenizer patterns as scanners (see tok-pretok.h).
 *
 * Each pattern splits one segment [a, b) of code points and appends the end offsets of the
 * pieces that tile it. "Isolating" patterns (a regex searched repeatedly) are described by
 * a small run matcher; the reference's hand-coded routines (GPT2, LLAMA3/QWEN2 and their
 * variants, NEWLINE-RUNS) are written out following §6.5 step by step. Outside the segment
 * there is "nothing": no class, not whitespace, equal to no character.
 */
#include "config.h"

#include "tok-pretok.h"
#include "tok-regex.h"
#include "tok-unicode.h"

#include <string.h>

enum {
  P_END = 0,
  /* hand-written scanners, numbered as the spec's patterns */
  P_X01 = 1,  /* LLAMA3 routine */
  P_X03 = 3,  /* [\r\n] */
  P_X04 = 4,  /* \s?[DL]+ (deepseek-llm letters) */
  P_X05 = 5,  /* \s?[!-/:-~...]+ (deepseek-llm punctuation) */
  P_X06 = 6,  /* \s+$ */
  P_X07 = 7,  /* [U+0800-U+9FA5 U+AC00-U+D7FF]+ */
  P_X08 = 8,  /* \p{N}+ */
  P_X09 = 9,  /* \p{N}{1,3} */
  P_X10 = 10, /* [一-龥぀-ゟ゠-ヿ]+ */
  P_X13 = 13, /* \p{N} */
  P_X16 = 16, /* \s?\p{L}+ */
  P_X17 = 17, /* \s?\p{P}+ */
  P_X18 = 18, /* [\p{P}\$\+<=>\^~\|`]+ (falcon) */
  P_X19 = 19, /* GPT2 routine */
  P_X20 = 20, /* [0-9][0-9][0-9] */
  P_X21 = 21, /* QWEN2 routine */
  P_X22 = 22, /* QWEN35 routine */
  P_X23 = 23, /*  ?[^(\s|.,!?…。，、।۔،)]+ */
  P_X31 = 31, /* DIGITS-MOD3 routine (also X38) */
  P_X35 = 35, /* bailingmoe: QWEN2 routine spelled differently */
  P_X36 = 36, /* seed-coder */
  P_X37 = 37, /* ufakzeka */
  P_X41 = 41, /* NEWLINE-RUNS routine */
  P_X43 = 43, /* minicpm5 */
  P_X45 = 45, /* [\p{P}\$\+<=>\^~\|]+ (default) */
};

/* Patterns evaluated by the regex evaluator (tok-regex.c): 100 + the spec's number. */
#define G(x) (100 + (x))
#define IS_GENERIC(p) ((p) >= 100)

/* Source text of the spec's patterns (§6.4.0, §6.4.1), byte for byte. */
/* clang-format off */
static const struct {
  guint x;
  const char *src;
} sources[] = {
    {1, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
        "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {2, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
        "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\"
        "S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!"
        "\\S)|\\s{1,2}(?!\\S)|\\s{1}"},
    {3, "[\\r\\n]"},
    {5, "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+"},
    {6, "\\s+$"},
    {7, "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+"},
    {8, "\\p{N}+"},
    {9, "\\p{N}{1,3}"},
    {10, "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+"},
    {11, "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p"
         "{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {12, "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p"
         "{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\\r\\n]|\\s+(?!\\S)|\\s+"},
    {13, "\\p{N}"},
    {14, "[\uAC00-\uD7A3\u3131-\u318E]+|[\uFF01\u2026\u201C\u201D\u2018\u2019\u2014\uFF1A\uFF1B"
         "\uFF0C\u3001-\u303F\uFE30-\uFE4F]+|[\u3105-\u312F]+|[\u4E00-\u9FA5\u3040-\u309F\u30A0-"
         "\u30FF]+"},
    {15, "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M"
         "}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?["
         "\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:'[sS]|'[tT]|'[rR]"
         "[eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r"
         "\\n]+|\\s+(?!\\S)|\\s+"},
    {16, "\\s?\\p{L}+"},
    {17, "\\s?\\p{P}+"},
    {18, "[\\p{P}\\$\\+<=>\\^~|`]+"},
    {19, "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"},
    {20, "[0-9][0-9][0-9]"},
    {21, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}"
         "+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {22, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L"
         "}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {23, " ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+"},
    {24, "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p"
         "{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\"
         "n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {25, "<sentinel:[0-9]+>"},
    {26, "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z"},
    {27, "([\\t\\n]|    |  )"},
    {28, "[\\p{P}!-/:-@\\[-`{-~]"},
    {29, "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[r"
         "R][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+"
         "((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{"
         "N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {30, "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))*((?=[\\p{L}\\p{M}])([^A-Z]))+(?:'[s"
         "S]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}"
         "\\p{M}])([^a-z]))+((?=[\\p{L}\\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM"
         "]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!"
         "\\S)|\\s+"},
    {32, "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M"
         "}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?["
         "\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:'[sS]|'[tT]|'[rR]"
         "[eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s"
         "*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {34, "(?=(\\d{3})+(?!\\d))"},
    {35, "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\"
         "s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"},
    {36, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}"
         "+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {37, "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+"
         "(?!\\S)|\\s+"},
    {39, "[\u4E00-\u9FFF\u3400-\u4DBF\u8C48-\uFAFF\u3040-\u309F\u30A0-\u30FF\uFF65-\uFF9F\u2F00-"
         "\u2FDF\u0E40-\u0E7F\u0E80-\u0EFF\u1780-\u17FF\u1000-\u109F\uAA60-\uAA7F\uA9E0-\uA9FF"
         "\uAC00-\uD7AF\u1100-\u11FF]+"},
    {40, "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p"
         "{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {41, "[^\\n]+|[\\n]+"},
    {42, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?(?:\\p"
         "{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\"
         "s+(?!\\S)|\\s+"},
    {43, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}"
         "+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {44, "\\S+"},
    {45, "[\\p{P}\\$\\+<=>\\^~|]+"},
};
/* clang-format on */

const char *
wh_pretok_pattern_source(guint x)
{
  for (gsize i = 0; i < G_N_ELEMENTS(sources); i++)
    if (sources[i].x == x)
      return sources[i].src;
  return NULL;
}

typedef struct {
  const guint32 *cp;
  const guint8 *fl;
} text_ctx;

#define CLS(t, i) ((t)->fl[i] & WH_UC_CLASS_MASK)
#define IS_WS(t, i) (((t)->fl[i] & WH_UC_WHITESPACE) != 0)
#define IS_L(t, i) (CLS(t, i) == WH_UC_LETTER)
#define IS_N(t, i) (CLS(t, i) == WH_UC_NUMBER)
#define IS_M(t, i) (CLS(t, i) == WH_UC_MARK)

static inline void
emit(GArray *ends, gsize end)
{
  g_array_append_val(ends, end);
}

/* --- sets of the isolating patterns ------------------------------------------------------ */

typedef gboolean (*set_fn)(guint32 c, guint8 fl);

static gboolean
in_ranges(guint32 c, const guint32 (*r)[2], gsize n)
{
  gsize lo = 0, hi = n;
  while (lo < hi) {
    gsize mid = (lo + hi) / 2;
    if (c < r[mid][0])
      hi = mid;
    else if (c > r[mid][1])
      lo = mid + 1;
    else
      return TRUE;
  }
  return FALSE;
}

/* Class DL of deepseek-llm's X04 (sorted, inclusive). */
/* clang-format off */
static const guint32 dl_ranges[][2] = {
  {0x0041, 0x005A}, {0x0061, 0x007A}, {0x00B5, 0x00B5}, {0x00C0, 0x00D6}, {0x00D8, 0x00F6},
  {0x00F8, 0x01BA}, {0x01BC, 0x01BF}, {0x01C4, 0x0293}, {0x0295, 0x02AF}, {0x0370, 0x0373},
  {0x0376, 0x0377}, {0x037B, 0x037D}, {0x037F, 0x037F}, {0x0386, 0x0386}, {0x0388, 0x038A},
  {0x038C, 0x038C}, {0x038E, 0x03A1}, {0x03A3, 0x03F5}, {0x03F7, 0x0481}, {0x048A, 0x052F},
  {0x0531, 0x0556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA},
  {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15},
  {0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59},
  {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC},
  {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB},
  {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102}, {0x2107, 0x2107},
  {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126},
  {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F},
  {0x2145, 0x2149}, {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4},
  {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3}, {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F},
  {0xA771, 0xA787}, {0xA78B, 0xA78E}, {0xAB70, 0xABBF}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17},
  {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3},
  {0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF},
  {0x1E900, 0x1E943},
};
/* clang-format on */

static gboolean
set_x04(guint32 c, guint8 fl)
{
  return in_ranges(c, dl_ranges, G_N_ELEMENTS(dl_ranges));
}

/* X05: U+3000 is whitespace, so it is replaced before matching and never matches. */
static gboolean
set_x05(guint32 c, guint8 fl)
{
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x7E) || (c >= 0xFF01 && c <= 0xFF0F) ||
         (c >= 0xFF1A && c <= 0xFF5E) || (c >= 0x2018 && c <= 0x201F) ||
         (c >= 0x3001 && c <= 0x3002);
}

/* X07: the whitespace inside U+0800-U+9FA5 (U+1680, U+2000-200A, U+2028, ... U+3000) is
 * replaced before matching (§6.1), so it never matches. */
static gboolean
set_x07(guint32 c, guint8 fl)
{
  if (fl & WH_UC_WHITESPACE)
    return FALSE;
  return (c >= 0x0800 && c <= 0x9FA5) || (c >= 0xAC00 && c <= 0xD7FF);
}

static gboolean
set_x10(guint32 c, guint8 fl)
{
  return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x3040 && c <= 0x30FF);
}

static gboolean
set_number(guint32 c, guint8 fl)
{
  return (fl & WH_UC_CLASS_MASK) == WH_UC_NUMBER;
}

static gboolean
set_letter(guint32 c, guint8 fl)
{
  return (fl & WH_UC_CLASS_MASK) == WH_UC_LETTER;
}

static gboolean
set_punct(guint32 c, guint8 fl)
{
  return (fl & WH_UC_CLASS_MASK) == WH_UC_PUNCT;
}

static gboolean
set_crlf(guint32 c, guint8 fl)
{
  return c == '\r' || c == '\n';
}

static gboolean
set_ascii_digit(guint32 c, guint8 fl)
{
  return c >= '0' && c <= '9';
}

/* X18/X45: ASCII 21-2F, 3A-40, 5B-60, 7B-7E (X45 without the backquote) plus non-ASCII
 * punctuation; non-ASCII symbols are not in the set. */
static gboolean
set_x18(guint32 c, guint8 fl)
{
  if (c < 0x80)
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
  return (fl & WH_UC_CLASS_MASK) == WH_UC_PUNCT;
}

static gboolean
set_x45(guint32 c, guint8 fl)
{
  return c != '`' && set_x18(c, fl);
}

/* X23: everything except '(' '|' ')' . , ! ? … 。 ， 、 । ۔ ، and whitespace. */
static gboolean
set_x23(guint32 c, guint8 fl)
{
  if (fl & WH_UC_WHITESPACE)
    return FALSE;
  switch (c) {
  case '(':
  case ')':
  case '|':
  case '.':
  case ',':
  case '!':
  case '?':
  case 0x2026:
  case 0x3002:
  case 0xFF0C:
  case 0x3001:
  case 0x0964:
  case 0x06D4:
  case 0x060C:
    return FALSE;
  default:
    return TRUE;
  }
}

typedef enum { LEAD_NONE, LEAD_WS, LEAD_SPACE } lead_mode;

/* An isolating pattern "LEAD? SET{min,max}" (max 0 = unbounded). */
typedef struct {
  set_fn set;
  lead_mode lead;
  guint min, max;
} run_pattern;

/* Returns the end of a match starting exactly at p, or 0 when none starts there. */
static gsize
run_match(const run_pattern *rp, const text_ctx *t, gsize b, gsize p)
{
  gsize q = p;
  if (!rp->set(t->cp[p], t->fl[p])) {
    /* The optional lead is tried first (greedy); the sets never contain whitespace, so a
     * lead character can only start a match when the next one is in the set. */
    gboolean lead = FALSE;
    if (rp->lead == LEAD_WS)
      lead = IS_WS(t, p);
    else if (rp->lead == LEAD_SPACE)
      lead = t->cp[p] == ' ';
    if (!lead || p + 1 >= b || !rp->set(t->cp[p + 1], t->fl[p + 1]))
      return 0;
    q = p + 1;
  }
  gsize k = 0;
  while (q + k < b && (rp->max == 0 || k < rp->max) && rp->set(t->cp[q + k], t->fl[q + k]))
    k++;
  if (k < MAX(rp->min, 1u))
    return 0;
  return q + k;
}

/* Shape: one segment; leftmost matches, unmatched stretches become pieces of their own. */
static void
split_isolate(const run_pattern *rp, const text_ctx *t, gsize a, gsize b, GArray *ends)
{
  gsize start = a; /* start of the pending unmatched stretch */
  gsize p = a;
  while (p < b) {
    gsize e = run_match(rp, t, b, p);
    if (e == 0) {
      p++;
      continue;
    }
    if (p > start)
      emit(ends, p);
    emit(ends, e);
    start = p = e;
  }
  if (b > start)
    emit(ends, b);
}

/* X06 \s+$: the trailing whitespace run of the segment, if any, is isolated. */
static void
split_trailing_ws(const text_ctx *t, gsize a, gsize b, GArray *ends)
{
  gsize p = b;
  if (a == b)
    return;
  while (p > a && IS_WS(t, p - 1))
    p--;
  if (p > a && p < b)
    emit(ends, p);
  emit(ends, b);
}

/* X41: maximal runs of LF and maximal runs of everything else. */
static void
split_newline_runs(const text_ctx *t, gsize a, gsize b, GArray *ends)
{
  gsize p = a;
  while (p < b) {
    gboolean nl = t->cp[p] == '\n';
    gsize q = p + 1;
    while (q < b && (t->cp[q] == '\n') == nl)
      q++;
    emit(ends, q);
    p = q;
  }
}

static inline guint32
ascii_lower(guint32 c)
{
  return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/* English contractions at p ('s 't 'm 'd 're 've 'll): returns their length or 0. */
static gsize
contraction(const text_ctx *t, gsize p, gsize b, gboolean fold)
{
  if (t->cp[p] != '\'' || p + 1 >= b)
    return 0;
  guint32 c1 = fold ? ascii_lower(t->cp[p + 1]) : t->cp[p + 1];
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
    return 2;
  if (p + 2 >= b)
    return 0;
  guint32 c2 = fold ? ascii_lower(t->cp[p + 2]) : t->cp[p + 2];
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
    return 3;
  return 0;
}

/* X19, §6.5.1. Shape: one segment, one piece per iteration. */
static void
split_gpt2(const text_ctx *t, gsize a, gsize b, GArray *ends)
{
  gsize p = a;
  while (p < b) {
    gsize n = contraction(t, p, b, FALSE);
    if (n) {
      p += n;
      emit(ends, p);
      continue;
    }
    gsize q = t->cp[p] == ' ' ? p + 1 : p;
    if (q < b && !IS_WS(t, q)) {
      guint cls = CLS(t, q);
      gsize e = q + 1;
      if (cls == WH_UC_LETTER || cls == WH_UC_NUMBER) {
        while (e < b && CLS(t, e) == cls)
          e++;
      } else {
        while (e < b && !IS_WS(t, e) && !IS_L(t, e) && !IS_N(t, e))
          e++;
      }
      p = e;
      emit(ends, p);
      continue;
    }
    gsize w = 0;
    while (p + w < b && IS_WS(t, p + w))
      w++;
    if (w == 0) /* cannot happen: p is whitespace here */
      w = 1;
    p += (w > 1 && p + w < b) ? w - 1 : w;
    emit(ends, p);
  }
}

/* Parameters of the LLAMA3/QWEN2 routine family (§6.5.2 and its regex variants). */
typedef struct {
  gboolean contractions;   /* case-insensitive 's 't ... alternative first */
  guint max_digits;        /* 1 (QWEN2), 3 (LLAMA3), 0 = the whole run */
  gboolean letter_or_mark; /* QWEN35: "letter" means LETTER or MARK */
  gboolean punct_newlines; /* punctuation runs take the CR/LF run that follows */
} llama3_params;

static inline gboolean
l3_letter(const llama3_params *lp, const text_ctx *t, gsize i)
{
  return IS_L(t, i) || (lp->letter_or_mark && IS_M(t, i));
}

/* §6.5.2. Shape: one segment, one piece per iteration. */
static void
split_llama3(const llama3_params *lp, const text_ctx *t, gsize a, gsize b, GArray *ends)
{
  gsize p = a;
  while (p < b) {
    guint32 c = t->cp[p];
    gsize n = lp->contractions ? contraction(t, p, b, TRUE) : 0;
    if (n) {
      p += n;
      emit(ends, p);
      continue;
    }
    /* Words: an optional non-letter/number, non-CR/LF prefix, then letters. */
    if (c != '\r' && c != '\n' && !IS_N(t, p) &&
        (l3_letter(lp, t, p) || (p + 1 < b && l3_letter(lp, t, p + 1)))) {
      gsize e = p + 1;
      while (e < b && l3_letter(lp, t, e))
        e++;
      p = e;
      emit(ends, p);
      continue;
    }
    if (IS_N(t, p)) {
      gsize e = p + 1;
      while (e < b && IS_N(t, e) && (lp->max_digits == 0 || e - p < lp->max_digits))
        e++;
      p = e;
      emit(ends, p);
      continue;
    }
    /* Punctuation: optional space, run of non-(whitespace/letter/number), CR/LF run. */
    gsize q = c == ' ' ? p + 1 : p;
    if (q >= b || (!IS_WS(t, q) && !l3_letter(lp, t, q) && !IS_N(t, q))) {
      gsize e = q;
      while (e < b && !IS_WS(t, e) && !l3_letter(lp, t, e) && !IS_N(t, e))
        e++;
      if (lp->punct_newlines)
        while (e < b && (t->cp[e] == '\r' || t->cp[e] == '\n'))
          e++;
      p = e;
      emit(ends, p);
      continue;
    }
    /* Whitespace run: up to its last CR/LF if it has one, else \s+(?!\S) | \s+. */
    gsize w = 0, last_nl = 0;
    while (p + w < b && IS_WS(t, p + w)) {
      if (t->cp[p + w] == '\r' || t->cp[p + w] == '\n')
        last_nl = w + 1;
      w++;
    }
    if (w == 0) /* cannot happen: p is whitespace here */
      w = 1;
    if (last_nl)
      p += last_nl;
    else
      p += (w > 1 && p + w < b) ? w - 1 : w;
    emit(ends, p);
  }
}

/* X31/X38 DIGITS-MOD3: a NUMBER run of n is cut into n mod 3 digits (if non-zero), then
 * threes; the stretch before a run is glued to the run's first piece; the stretch after the
 * last run is one piece. */
static void
split_digits_mod3(const text_ctx *t, gsize a, gsize b, GArray *ends)
{
  gsize p = a, start = a;
  while (p < b) {
    if (!IS_N(t, p)) {
      p++;
      continue;
    }
    gsize q = p;
    while (q < b && IS_N(t, q))
      q++;
    gsize first = (q - p) % 3 ? (q - p) % 3 : 3;
    for (gsize x = p + first; x <= q; x += 3)
      emit(ends, x);
    start = p = q;
  }
  if (b > start)
    emit(ends, b);
}

static const llama3_params l3_llama3 = {TRUE, 3, FALSE, TRUE};
static const llama3_params l3_qwen2 = {TRUE, 1, FALSE, TRUE};
static const llama3_params l3_qwen35 = {TRUE, 1, TRUE, TRUE};
static const llama3_params l3_x36 = {TRUE, 1, FALSE, FALSE};
static const llama3_params l3_x37 = {FALSE, 1, FALSE, TRUE};
static const llama3_params l3_x43 = {TRUE, 0, FALSE, TRUE};

static const run_pattern rp_x03 = {set_crlf, LEAD_NONE, 1, 1};
static const run_pattern rp_x04 = {set_x04, LEAD_WS, 1, 0};
static const run_pattern rp_x05 = {set_x05, LEAD_WS, 1, 0};
static const run_pattern rp_x07 = {set_x07, LEAD_NONE, 1, 0};
static const run_pattern rp_x08 = {set_number, LEAD_NONE, 1, 0};
static const run_pattern rp_x09 = {set_number, LEAD_NONE, 1, 3};
static const run_pattern rp_x10 = {set_x10, LEAD_NONE, 1, 0};
static const run_pattern rp_x13 = {set_number, LEAD_NONE, 1, 1};
static const run_pattern rp_x16 = {set_letter, LEAD_WS, 1, 0};
static const run_pattern rp_x17 = {set_punct, LEAD_WS, 1, 0};
static const run_pattern rp_x18 = {set_x18, LEAD_NONE, 1, 0};
static const run_pattern rp_x20 = {set_ascii_digit, LEAD_NONE, 3, 3};
static const run_pattern rp_x23 = {set_x23, LEAD_SPACE, 1, 0};
static const run_pattern rp_x45 = {set_x45, LEAD_NONE, 1, 0};

/* Returns FALSE when @pattern has no scanner. */
static gboolean
split_segment(guint8 pattern, const text_ctx *t, gsize a, gsize b, GArray *ends)
{
  switch (pattern) {
  case P_X31:
    split_digits_mod3(t, a, b, ends);
    break;
  case P_X01:
    split_llama3(&l3_llama3, t, a, b, ends);
    break;
  case P_X21:
  case P_X35:
    split_llama3(&l3_qwen2, t, a, b, ends);
    break;
  case P_X22:
    split_llama3(&l3_qwen35, t, a, b, ends);
    break;
  case P_X36:
    split_llama3(&l3_x36, t, a, b, ends);
    break;
  case P_X37:
    split_llama3(&l3_x37, t, a, b, ends);
    break;
  case P_X43:
    split_llama3(&l3_x43, t, a, b, ends);
    break;
  case P_X19:
    split_gpt2(t, a, b, ends);
    break;
  case P_X41:
    split_newline_runs(t, a, b, ends);
    break;
  case P_X06:
    split_trailing_ws(t, a, b, ends);
    break;
  case P_X03:
    split_isolate(&rp_x03, t, a, b, ends);
    break;
  case P_X04:
    split_isolate(&rp_x04, t, a, b, ends);
    break;
  case P_X05:
    split_isolate(&rp_x05, t, a, b, ends);
    break;
  case P_X07:
    split_isolate(&rp_x07, t, a, b, ends);
    break;
  case P_X08:
    split_isolate(&rp_x08, t, a, b, ends);
    break;
  case P_X09:
    split_isolate(&rp_x09, t, a, b, ends);
    break;
  case P_X10:
    split_isolate(&rp_x10, t, a, b, ends);
    break;
  case P_X13:
    split_isolate(&rp_x13, t, a, b, ends);
    break;
  case P_X16:
    split_isolate(&rp_x16, t, a, b, ends);
    break;
  case P_X17:
    split_isolate(&rp_x17, t, a, b, ends);
    break;
  case P_X18:
    split_isolate(&rp_x18, t, a, b, ends);
    break;
  case P_X20:
    split_isolate(&rp_x20, t, a, b, ends);
    break;
  case P_X23:
    split_isolate(&rp_x23, t, a, b, ends);
    break;
  case P_X45:
    split_isolate(&rp_x45, t, a, b, ends);
    break;
  default:
    return FALSE;
  }
  return TRUE;
}

gboolean
wh_pretok_split_scanner(guint x, const guint32 *cp, const guint8 *fl, gsize a, gsize b,
                        GArray *ends)
{
  text_ctx t = {cp, fl};
  return x < 100 && split_segment((guint8)x, &t, a, b, ends);
}

gboolean
wh_pretok_info_compile(wh_pretok_info *info, char **error_message)
{
  for (guint k = 0; k < WH_PRETOK_MAX_PATTERNS && info->patterns[k] != P_END; k++) {
    if (!IS_GENERIC(info->patterns[k]))
      continue;
    const char *src = wh_pretok_pattern_source(info->patterns[k] - 100);
    info->rx[k] = src ? wh_regex_compile(src, error_message) : NULL;
    if (info->rx[k] == NULL) {
      if (!src && error_message)
        *error_message = g_strdup("unknown pattern");
      wh_pretok_info_clear(info);
      return FALSE;
    }
  }
  return TRUE;
}

void
wh_pretok_info_clear(wh_pretok_info *info)
{
  for (guint k = 0; k < WH_PRETOK_MAX_PATTERNS; k++) {
    wh_regex_free(info->rx[k]);
    info->rx[k] = NULL;
  }
}

void
wh_pretok_split(const wh_pretok_info *info, const guint32 *cp, const guint8 *fl, gsize n,
                GArray *ends, GArray *scratch)
{
  text_ctx t = {cp, fl};
  g_array_set_size(ends, 0);
  if (n == 0)
    return;
  emit(ends, n);
  for (guint k = 0; k < WH_PRETOK_MAX_PATTERNS && info->patterns[k] != P_END; k++) {
    g_array_set_size(scratch, 0);
    gsize a = 0;
    for (guint i = 0; i < ends->len; i++) {
      gsize b = g_array_index(ends, gsize, i);
      if (IS_GENERIC(info->patterns[k]))
        wh_regex_split(info->rx[k], cp, fl, a, b, scratch);
      else
        split_segment(info->patterns[k], &t, a, b, scratch);
      a = b;
    }
    /* swap contents: ends <- scratch */
    g_array_set_size(ends, 0);
    g_array_append_vals(ends, scratch->data, scratch->len);
  }
}

/* --- the name table (§6.4) --------------------------------------------------------------- */

typedef struct {
  const char *name;
  const char *type_name; /* NULL: known to the reference, not supported here */
  guint8 patterns[WH_PRETOK_MAX_PATTERNS];
  gint8 add_bos, clean_spaces, add_sep;
  guint8 flags;
} pre_row;

enum {
  F_IGNORE_MERGES = 1 << 0,
  F_BOS_NONE = 1 << 1,
  F_ESCAPE = 1 << 2,
  F_NO_BYTES = 1 << 3,
  F_GEMMA4 = 1 << 4,
};

#define PAT(...)                                                                                   \
  {                                                                                                \
    __VA_ARGS__                                                                                    \
  }
#define ROW(n, tn, pats, bos, cs, sep, fl)                                                         \
  {                                                                                                \
    n, tn, pats, bos, cs, sep, fl                                                                  \
  }
#define NOCS 0 /* clean_spaces = false */
#define KEEP -1

/* clang-format off */
static const pre_row pre_rows[] = {
  ROW("llama3", "LLAMA3", PAT(P_X01), 1, KEEP, KEEP, F_IGNORE_MERGES),
  ROW("llama-v3", "LLAMA3", PAT(P_X01), 1, KEEP, KEEP, F_IGNORE_MERGES),
  ROW("llama-bpe", "LLAMA3", PAT(P_X01), 1, KEEP, KEEP, F_IGNORE_MERGES),
  ROW("falcon3", "LLAMA3", PAT(P_X01), 1, KEEP, KEEP, F_IGNORE_MERGES),
  ROW("falcon-h1", "LLAMA3", PAT(P_X01), 1, KEEP, KEEP, F_IGNORE_MERGES),
  ROW("pixtral", "LLAMA3", PAT(P_X01), 1, KEEP, KEEP, F_IGNORE_MERGES),
  ROW("midm-2.0", "LLAMA3", PAT(P_X01), 1, KEEP, KEEP, F_IGNORE_MERGES),
  ROW("lfm2", "LLAMA3", PAT(P_X01), 1, KEEP, KEEP, F_IGNORE_MERGES),
  ROW("jina-v5-nano", "LLAMA3", PAT(P_X01), 1, KEEP, KEEP, F_IGNORE_MERGES),
  ROW("dbrx", "DBRX", PAT(P_X01), KEEP, KEEP, KEEP, 0),
  ROW("smaug-bpe", "SMAUG", PAT(P_X01), KEEP, KEEP, KEEP, 0),
  ROW("glm4", "CHATGLM4", PAT(P_X01), KEEP, KEEP, KEEP, F_BOS_NONE),
  ROW("chatglm-bpe", "CHATGLM4", PAT(P_X01), KEEP, KEEP, KEEP, F_BOS_NONE),
  ROW("jais-2", "JAIS2", PAT(G(2)), KEEP, KEEP, KEEP, 0),
  ROW("deepseek-llm", "DEEPSEEK_LLM", PAT(P_X03, P_X04, P_X05, P_X06, P_X07, P_X08), KEEP, NOCS,
      KEEP, 0),
  ROW("deepseek-coder", "DEEPSEEK_CODER", PAT(P_X03, P_X16, P_X17, P_X07, P_X13), KEEP, NOCS,
      KEEP, 0),
  ROW("deepseek-v3", "DEEPSEEK3_LLM", PAT(P_X09, P_X10, G(11)), KEEP, NOCS, KEEP, 0),
  ROW("hunyuan-dense", "HUNYUAN_DENSE", PAT(P_X09, P_X10, G(11)), KEEP, NOCS, KEEP, 0),
  ROW("joyai-llm", "JOYAI_LLM", PAT(P_X09, P_X10, G(11)), KEEP, NOCS, KEEP, 0),
  ROW("hy_v4", "HY_V4", PAT(P_X09, P_X10, G(11)), KEEP, NOCS, KEEP, 0),
  ROW("spark2_5", "SPARK2_5", PAT(P_X09, P_X10, G(12), P_X13), KEEP, NOCS, KEEP, 0),
  ROW("youtu", "YOUTU", PAT(G(14), G(15)), KEEP, NOCS, KEEP, F_IGNORE_MERGES),
  ROW("falcon", "FALCON", PAT(P_X18, P_X19, P_X20), KEEP, KEEP, KEEP, 0),
  ROW("starcoder", "STARCODER", PAT(P_X13, P_X19), KEEP, KEEP, KEEP, 0),
  ROW("refact", "REFACT", PAT(P_X13, P_X19), KEEP, KEEP, KEEP, 0),
  ROW("command-r", "COMMAND_R", PAT(P_X13, P_X19), KEEP, NOCS, KEEP, 0),
  ROW("smollm", "SMOLLM", PAT(P_X13, P_X19), KEEP, NOCS, KEEP, 0),
  ROW("codeshell", "CODESHELL", PAT(P_X13, P_X19), KEEP, KEEP, KEEP, 0),
  ROW("exaone", "EXAONE", PAT(P_X13, P_X19), KEEP, KEEP, KEEP, 0),
  ROW("minerva-7b", "MINERVA", PAT(P_X13, P_X19), KEEP, KEEP, KEEP, 0),
  ROW("mellum2", "MELLUM2", PAT(P_X13, P_X19), KEEP, KEEP, KEEP, 0),
  ROW("gpt-2", "GPT2", PAT(P_X19), KEEP, KEEP, KEEP, 0),
  ROW("phi-2", "GPT2", PAT(P_X19), KEEP, KEEP, KEEP, 0),
  ROW("jina-es", "GPT2", PAT(P_X19), KEEP, KEEP, KEEP, 0),
  ROW("jina-de", "GPT2", PAT(P_X19), KEEP, KEEP, KEEP, 0),
  ROW("gigachat", "GPT2", PAT(P_X19), KEEP, KEEP, KEEP, 0),
  ROW("jina-v2-es", "GPT2", PAT(P_X19), KEEP, KEEP, KEEP, 0),
  ROW("jina-v2-de", "GPT2", PAT(P_X19), KEEP, KEEP, KEEP, 0),
  ROW("a.x-4.0", "GPT2", PAT(P_X19), KEEP, KEEP, KEEP, 0),
  ROW("mellum", "GPT2", PAT(P_X19), KEEP, KEEP, KEEP, 0),
  ROW("modern-bert", "GPT2", PAT(P_X19), KEEP, KEEP, KEEP, 0),
  ROW("exaone4", "GPT2", PAT(P_X19), KEEP, KEEP, KEEP, 0),
  ROW("jina-v1-en", "GPT2", PAT(P_X19), KEEP, KEEP, 1, 0),
  ROW("jina-v2-code", "GPT2", PAT(P_X19), KEEP, KEEP, 1, 0),
  ROW("roberta-bpe", "GPT2", PAT(P_X19), KEEP, KEEP, 1, 0),
  ROW("mpt", "MPT", PAT(P_X19), KEEP, KEEP, KEEP, 0),
  ROW("olmo", "OLMO", PAT(P_X19), KEEP, KEEP, KEEP, 0),
  ROW("jais", "JAIS", PAT(P_X19), KEEP, KEEP, KEEP, 0),
  ROW("trillion", "TRILLION", PAT(P_X19), KEEP, NOCS, KEEP, 0),
  ROW("granite-docling", "GRANITE_DOCLING", PAT(P_X19), KEEP, NOCS, KEEP, 0),
  ROW("qwen2", "QWEN2", PAT(P_X21), KEEP, NOCS, KEEP, 0),
  ROW("deepseek-r1-qwen", "QWEN2", PAT(P_X21), KEEP, NOCS, KEEP, 0),
  ROW("kormo", "QWEN2", PAT(P_X21), KEEP, NOCS, KEEP, 0),
  ROW("f2llmv2", "QWEN2", PAT(P_X21), KEEP, NOCS, KEEP, 0),
  ROW("megrez", "QWEN2", PAT(P_X21), KEEP, KEEP, KEEP, 0),
  ROW("stablelm2", "STABLELM2", PAT(P_X21), KEEP, KEEP, KEEP, 0),
  ROW("hunyuan", "HUNYUAN", PAT(P_X21), KEEP, NOCS, KEEP, 0),
  ROW("solar-open", "SOLAR_OPEN", PAT(P_X21), KEEP, NOCS, KEEP, 0),
  ROW("grok-2", "GROK_2", PAT(P_X21), KEEP, NOCS, KEEP, 0),
  ROW("qwen35", "QWEN35", PAT(P_X22), KEEP, NOCS, KEEP, 0),
  ROW("poro-chat", "PORO", PAT(P_X23), KEEP, NOCS, KEEP, 0),
  ROW("bloom", "BLOOM", PAT(P_X23), KEEP, KEEP, KEEP, 0),
  ROW("gpt3-finnish", "GPT3_FINNISH", PAT(P_X23), KEEP, KEEP, KEEP, 0),
  ROW("viking", "VIKING", PAT(P_X23, P_X13), KEEP, NOCS, KEEP, 0),
  ROW("tekken", "TEKKEN", PAT(G(24)), 1, NOCS, KEEP, F_IGNORE_MERGES),
  ROW("chameleon", "CHAMELEON", PAT(G(25), G(26), G(27), P_X13, G(28), P_X19), 1, NOCS,
      KEEP, 0),
  ROW("gpt-4o", "GPT4O", PAT(G(29)), KEEP, NOCS, KEEP, 0),
  ROW("llama4", "GPT4O", PAT(G(29)), KEEP, NOCS, KEEP, 0),
  ROW("kanana2", "GPT4O", PAT(G(29)), KEEP, NOCS, KEEP, 0),
  ROW("talkie", "GPT4O", PAT(G(29)), KEEP, NOCS, KEEP, 0),
  ROW("minimax-m2", "MINIMAX_M2", PAT(G(29)), KEEP, NOCS, KEEP, 0),
  ROW("granite-embed-multi-97m", "GRANITE_EMB_MULTI", PAT(G(30)), KEEP, NOCS, KEEP,
      F_IGNORE_MERGES),
  ROW("tiny_aya", "TINY_AYA", PAT(P_X31, G(32)), KEEP, NOCS, KEEP, 0),
  ROW("cohere2moe", "TINY_AYA", PAT(P_X31, G(32)), KEEP, NOCS, KEEP, 0),
  ROW("kimi-k2", NULL, PAT(0), KEEP, KEEP, KEEP, 0),
  ROW("superbpe", "SUPERBPE", PAT(P_X08, G(34)), KEEP, NOCS, KEEP, 0),
  ROW("bailingmoe", "BAILINGMOE", PAT(P_X35), KEEP, NOCS, KEEP, 0),
  ROW("bailingmoe2", "BAILINGMOE", PAT(P_X35), KEEP, NOCS, KEEP, 0),
  ROW("llada-moe", "BAILINGMOE", PAT(P_X35), KEEP, NOCS, KEEP, 0),
  ROW("seed-coder", "SEED_CODER", PAT(P_X36), KEEP, NOCS, KEEP, 0),
  ROW("ufakzeka", "UFAKZEKA", PAT(P_X37), KEEP, NOCS, KEEP, 0),
  ROW("afmoe", "AFMOE", PAT(P_X31, G(39), G(40)), KEEP, NOCS, KEEP, 0),
  ROW("laguna", "LAGUNA", PAT(P_X41, P_X21), KEEP, NOCS, KEEP, 0),
  ROW("exaone-moe", "EXAONE_MOE", PAT(G(42)), KEEP, KEEP, KEEP, 0),
  ROW("minicpm5", "MINICPM5", PAT(P_X09, P_X43), KEEP, KEEP, KEEP, F_IGNORE_MERGES),
  ROW("gemma4", "GEMMA4", PAT(P_X41), 1, KEEP, KEEP, F_ESCAPE | F_NO_BYTES | F_GEMMA4),
  ROW("granite-embed-multi-311m", "GEMMA4", PAT(P_X41), 1, KEEP, KEEP,
      F_ESCAPE | F_NO_BYTES | F_GEMMA4),
  ROW("sarvam-moe", "SARVAM_MOE", PAT(P_X41), KEEP, NOCS, KEEP, F_ESCAPE | F_NO_BYTES),
  ROW("whitespace", NULL, PAT(0), KEEP, KEEP, KEEP, 0),
  ROW("default", "DEFAULT", PAT(P_X45, P_X19, P_X08, P_X20), KEEP, KEEP, KEEP, 0),
};
/* clang-format on */

wh_pretok_lookup_result
wh_pretok_lookup(const char *name, wh_pretok_info *out)
{
  if (name == NULL)
    name = "default";
  for (gsize i = 0; i < G_N_ELEMENTS(pre_rows); i++) {
    const pre_row *r = &pre_rows[i];
    if (strcmp(r->name, name) != 0)
      continue;
    if (r->type_name == NULL)
      return WH_PRETOK_UNSUPPORTED;
    memset(out, 0, sizeof *out);
    out->type_name = r->type_name;
    memcpy(out->patterns, r->patterns, sizeof out->patterns);
    out->add_bos = r->add_bos;
    out->clean_spaces = r->clean_spaces;
    out->add_sep = r->add_sep;
    out->ignore_merges = (r->flags & F_IGNORE_MERGES) != 0;
    out->bos_none = (r->flags & F_BOS_NONE) != 0;
    out->escape_whitespace = (r->flags & F_ESCAPE) != 0;
    out->no_byte_encoding = (r->flags & F_NO_BYTES) != 0;
    out->gemma4 = (r->flags & F_GEMMA4) != 0;
    return WH_PRETOK_FOUND;
  }
  return WH_PRETOK_UNKNOWN;
}
