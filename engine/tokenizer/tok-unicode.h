/* tok-unicode.h — the character facts the tokenizers need (private to engine/tokenizer).
 *
 * Spec: shared/spec/tokenizers.md §5. UTF-8 decoding with the reference's repair rule
 * (one U+FFFD per bad byte, no overlong/surrogate checks), lead-byte lengths, the
 * category classes of Unicode 15.1 (GLib 2.74 carries Unicode 15.0; the three 15.1
 * assignments are patched in here), the fixed 25-code-point whitespace set and the
 * GPT-2 byte <-> character table. Everything is pure and thread-safe.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Category classes (§5.2). The values fit in the low 3 bits of a flags byte. */
typedef enum {
  WH_UC_UNDEFINED = 0, /* Cn and everything >= 0x110000 */
  WH_UC_LETTER,
  WH_UC_MARK,
  WH_UC_NUMBER,
  WH_UC_PUNCT,
  WH_UC_SYMBOL,
  WH_UC_SEPARATOR,
  WH_UC_CONTROL,
} wh_uc_class;

#define WH_UC_CLASS_MASK 0x07u
#define WH_UC_WHITESPACE 0x08u /* flag bit: one of the 25 whitespace code points */

/* Class and whitespace flag of @c, as one byte (class | WH_UC_WHITESPACE). */
guint8 wh_uc_flags(gunichar c);

/* TRUE for exactly U+0009-000D, 0020, 0085, 00A0, 1680, 2000-200A, 2028, 2029, 202F,
 * 205F, 3000. */
gboolean wh_uc_is_whitespace(gunichar c);

/* Lead-byte length (§5.1): 1 for 0x00-0xBF, 2 for 0xC0-0xDF, 3 for 0xE0-0xEF, 4 otherwise.
 * Callers clip it to the bytes that remain. */
static inline guint
wh_uc_lead_len(guint8 b)
{
  static const guint8 lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return lens[b >> 4];
}

/* Decodes one code point at @s (@len > 0 bytes available) per §5.1; *adv = bytes used
 * (1 for an invalid byte, which gives U+FFFD). */
static inline gunichar
wh_uc_decode_one(const guint8 *s, gsize len, gsize *adv)
{
  guint8 b0 = s[0];
  guint n;
  gunichar c;
  if (b0 < 0x80) {
    *adv = 1;
    return b0;
  } else if (b0 < 0xC0) {
    *adv = 1;
    return 0xFFFD;
  } else if (b0 < 0xE0) {
    n = 2;
    c = b0 & 0x1F;
  } else if (b0 < 0xF0) {
    n = 3;
    c = b0 & 0x0F;
  } else if (b0 < 0xF8) {
    n = 4;
    c = b0 & 0x07;
  } else {
    *adv = 1;
    return 0xFFFD;
  }
  if (n > len) {
    *adv = 1;
    return 0xFFFD;
  }
  for (guint k = 1; k < n; k++) {
    if ((s[k] & 0xC0) != 0x80) {
      *adv = 1;
      return 0xFFFD;
    }
    c = (c << 6) | (s[k] & 0x3F);
  }
  *adv = n;
  return c;
}

/* Decodes @len bytes of @s into code points appended to @out (guint32 elements), with
 * U+FFFD for every byte that does not start a well-formed sequence (§5.1). */
void wh_uc_decode(const char *s, gsize len, GArray *out);

/* Appends the shortest UTF-8 form of @c (bit arithmetic, any value < 0x200000) to @out. */
void wh_uc_append_utf8(GString *out, gunichar c);

/* GPT-2 byte table (§5.3): the code point byte @b is stored as. */
gunichar wh_uc_byte_to_cp(guint8 b);
/* Inverse: the byte stored as @c, or -1 when @c is not in the table's image. */
int wh_uc_cp_to_byte(gunichar c);

G_END_DECLS
