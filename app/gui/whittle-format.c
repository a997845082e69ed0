/* whittle-format.c — see whittle-format.h. */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "whittle-format.h"

/* 1.1B, 7B, 260K, 70B: one decimal below 10, none above. */
static char *
scaled(double v, const char *unit)
{
  if (v < 10 && v != (double)(guint64)v)
    return g_strdup_printf("%.1f%s", v, unit);
  return g_strdup_printf("%.0f%s", v, unit);
}

char *
whittle_format_params(guint64 n)
{
  if (n >= 1000000000000ull)
    return scaled(n / 1e12, "T");
  if (n >= 1000000000ull)
    return scaled(n / 1e9, "B");
  if (n >= 1000000ull)
    return scaled(n / 1e6, "M");
  if (n >= 1000ull)
    return scaled(n / 1e3, "K");
  return g_strdup_printf("%" G_GUINT64_FORMAT, n);
}

char *
whittle_format_count(guint64 n)
{
  if (n >= 1000000ull)
    return g_strdup_printf("%.1fM", n / 1e6);
  if (n >= 10000ull)
    return g_strdup_printf("%.0fk", n / 1e3);
  if (n >= 1000ull)
    return g_strdup_printf("%.1fk", n / 1e3);
  return g_strdup_printf("%" G_GUINT64_FORMAT, n);
}

char *
whittle_format_age(const char *iso8601, gint64 now_unix)
{
  if (iso8601 == NULL)
    return NULL;
  g_autoptr(GDateTime) when = g_date_time_new_from_iso8601(iso8601, NULL);
  if (when == NULL)
    return NULL;
  gint64 now = now_unix ? now_unix : g_get_real_time() / G_USEC_PER_SEC;
  gint64 secs = now - g_date_time_to_unix(when);
  if (secs < 0)
    secs = 0;
  gint64 days = secs / 86400;
  if (secs < 3600)
    return g_strdup(_("just now"));
  if (days < 1) {
    int h = (int)(secs / 3600);
    return g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "%d hour ago", "%d hours ago", h), h);
  }
  if (days < 31) {
    int d = (int)days;
    return g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "%d day ago", "%d days ago", d), d);
  }
  if (days < 365) {
    int m = (int)(days / 30);
    return g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "%d month ago", "%d months ago", m), m);
  }
  int y = (int)(days / 365);
  return g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "%d year ago", "%d years ago", y), y);
}

guint64
whittle_parse_params_from_name(const char *name)
{
  if (name == NULL)
    return 0;
  const char *base = strrchr(name, '/');
  base = base ? base + 1 : name;
  /* The first number followed by K/M/B/T that is not part of a longer word. */
  for (const char *p = base; *p; p++) {
    if (!g_ascii_isdigit(*p) || (p > base && (g_ascii_isdigit(p[-1]) || p[-1] == '.')))
      continue;
    char *end = NULL;
    double v = g_ascii_strtod(p, &end);
    if (end == p || end == NULL)
      continue;
    double experts = 1;
    if (*end == 'x' && g_ascii_isdigit(end[1])) { /* "8x7B": mixture of experts */
      experts = v;
      const char *q = end + 1;
      v = g_ascii_strtod(q, &end);
    }
    double mul = 0;
    switch (*end == 'b' ? 'B' : *end) { /* "4k" and "8m" are context sizes, not parameters */
    case 'K':
      mul = 1e3;
      break;
    case 'M':
      mul = 1e6;
      break;
    case 'B':
      mul = 1e9;
      break;
    case 'T':
      mul = 1e12;
      break;
    default:
      break;
    }
    if (mul > 0 && !g_ascii_isalpha(end[1]))
      return (guint64)(experts * v * mul + 0.5);
    if (end > p)
      p = end - 1;
  }
  return 0;
}
