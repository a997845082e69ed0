/* tok-unicode.c — character classes, UTF-8 and the GPT-2 byte table (see tok-unicode.h). */
#include "config.h"

#include "tok-unicode.h"

gboolean
wh_uc_is_whitespace(gunichar c)
{
  if (c < 0x80)
    return (c >= 0x09 && c <= 0x0D) || c == 0x20;
  switch (c) {
  case 0x85:
  case 0xA0:
  case 0x1680:
  case 0x2028:
  case 0x2029:
  case 0x202F:
  case 0x205F:
  case 0x3000:
    return TRUE;
  default:
    return c >= 0x2000 && c <= 0x200A;
  }
}

static wh_uc_class
class_of_type(GUnicodeType t)
{
  switch (t) {
  case G_UNICODE_UPPERCASE_LETTER:
  case G_UNICODE_LOWERCASE_LETTER:
  case G_UNICODE_TITLECASE_LETTER:
  case G_UNICODE_MODIFIER_LETTER:
  case G_UNICODE_OTHER_LETTER:
    return WH_UC_LETTER;
  case G_UNICODE_NON_SPACING_MARK:
  case G_UNICODE_SPACING_MARK:
  case G_UNICODE_ENCLOSING_MARK:
    return WH_UC_MARK;
  case G_UNICODE_DECIMAL_NUMBER:
  case G_UNICODE_LETTER_NUMBER:
  case G_UNICODE_OTHER_NUMBER:
    return WH_UC_NUMBER;
  case G_UNICODE_CONNECT_PUNCTUATION:
  case G_UNICODE_DASH_PUNCTUATION:
  case G_UNICODE_OPEN_PUNCTUATION:
  case G_UNICODE_CLOSE_PUNCTUATION:
  case G_UNICODE_INITIAL_PUNCTUATION:
  case G_UNICODE_FINAL_PUNCTUATION:
  case G_UNICODE_OTHER_PUNCTUATION:
    return WH_UC_PUNCT;
  case G_UNICODE_MATH_SYMBOL:
  case G_UNICODE_CURRENCY_SYMBOL:
  case G_UNICODE_MODIFIER_SYMBOL:
  case G_UNICODE_OTHER_SYMBOL:
    return WH_UC_SYMBOL;
  case G_UNICODE_SPACE_SEPARATOR:
  case G_UNICODE_LINE_SEPARATOR:
  case G_UNICODE_PARAGRAPH_SEPARATOR:
    return WH_UC_SEPARATOR;
  case G_UNICODE_CONTROL:
  case G_UNICODE_FORMAT:
  case G_UNICODE_PRIVATE_USE:
  case G_UNICODE_SURROGATE:
    return WH_UC_CONTROL;
  case G_UNICODE_UNASSIGNED:
  default:
    return WH_UC_UNDEFINED;
  }
}

/* ASCII classes as UnicodeData gives them: 0-1F and 7F Cc, space Zs, $+<=>^`|~ symbols,
 * digits Nd, letters L, the rest of the printable range punctuation. */
static wh_uc_class
ascii_class(guint c)
{
  if (c < 0x20 || c == 0x7F)
    return WH_UC_CONTROL;
  if (c == ' ')
    return WH_UC_SEPARATOR;
  if (c >= '0' && c <= '9')
    return WH_UC_NUMBER;
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
    return WH_UC_LETTER;
  switch (c) {
  case '$':
  case '+':
  case '<':
  case '=':
  case '>':
  case '^':
  case '`':
  case '|':
  case '~':
    return WH_UC_SYMBOL;
  default:
    return WH_UC_PUNCT;
  }
}

guint8
wh_uc_flags(gunichar c)
{
  guint8 ws = wh_uc_is_whitespace(c) ? WH_UC_WHITESPACE : 0;
  if (c < 0x80)
    return ascii_class(c) | ws;
  if (c >= 0x110000)
    return WH_UC_UNDEFINED;
  /* Unicode 15.1 assignments missing from GLib 2.74's 15.0 tables (spec §5.2). */
  if ((c >= 0x2FFC && c <= 0x2FFF) || c == 0x31EF)
    return WH_UC_SYMBOL;
  if (c >= 0x2EBF0 && c <= 0x2EE5D)
    return WH_UC_LETTER;
  return class_of_type(g_unichar_type(c)) | ws;
}

void
wh_uc_decode(const char *s, gsize len, GArray *out)
{
  const guint8 *b = (const guint8 *)s;
  gsize i = 0, base = out->len;
  g_array_set_size(out, base + len); /* at most one code point per byte */
  guint32 *dst = (guint32 *)out->data + base;
  gsize n = 0;
  while (i < len) {
    gsize adv;
    dst[n++] = wh_uc_decode_one(b + i, len - i, &adv);
    i += adv;
  }
  g_array_set_size(out, base + n);
}

void
wh_uc_append_utf8(GString *out, gunichar c)
{
  char buf[4];
  gsize n;
  if (c < 0x80) {
    buf[0] = (char)c;
    n = 1;
  } else if (c < 0x800) {
    buf[0] = (char)(0xC0 | (c >> 6));
    buf[1] = (char)(0x80 | (c & 0x3F));
    n = 2;
  } else if (c < 0x10000) {
    buf[0] = (char)(0xE0 | (c >> 12));
    buf[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    buf[2] = (char)(0x80 | (c & 0x3F));
    n = 3;
  } else {
    buf[0] = (char)(0xF0 | ((c >> 18) & 0x07));
    buf[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    buf[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    buf[3] = (char)(0x80 | (c & 0x3F));
    n = 4;
  }
  g_string_append_len(out, buf, n);
}

/* Printable bytes map to themselves; the other 68, in increasing order, to U+0100.. */
static gboolean
byte_is_printable(guint b)
{
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

gunichar
wh_uc_byte_to_cp(guint8 b)
{
  if (byte_is_printable(b))
    return b;
  /* Count the non-printable bytes below b: 0x00-0x20 (33), 0x7F-0xA0 (34), 0xAD. */
  if (b <= 0x20)
    return 0x100 + b;
  if (b >= 0x7F && b <= 0xA0)
    return 0x100 + 33 + (b - 0x7F);
  return 0x100 + 67; /* 0xAD */
}

int
wh_uc_cp_to_byte(gunichar c)
{
  if (c < 0x100)
    return byte_is_printable(c) ? (int)c : -1;
  if (c < 0x100 + 33)
    return (int)(c - 0x100);
  if (c < 0x100 + 67)
    return (int)(0x7F + (c - 0x100 - 33));
  if (c == 0x100 + 67)
    return 0xAD;
  return -1;
}
