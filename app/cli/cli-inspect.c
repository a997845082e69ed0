/* cli-inspect.c — `whittle-cli inspect FILE [--json]`: what is inside a GGUF file.
 *
 * Prints the architecture, parameter count, file type, bits per weight, every metadata key
 * (long arrays and long strings summarised) and every tensor (name, shape, type, size).
 * With --json the same as one JSON object (strings in full, arrays longer than
 * ARRAY_FULL_MAX summarised as {"type", "length", "first"}).
 */
#include "config.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli-util.h"
#include "gguf/gguf.h"

#define ARRAY_PREVIEW 8    /* items shown of a long array */
#define ARRAY_FULL_MAX 64  /* arrays up to this length are shown in full in JSON */
#define STRING_PREVIEW 100 /* bytes of a string shown in text mode */

static int run_inspect(int argc, char **argv);

const wh_cli_command wh_cli_command_inspect = {
    .name = "inspect",
    .summary = "Show what a GGUF file contains: metadata, tensors, types, sizes",
    .usage = "FILE [--json] [--check]",
    .description =
        "Prints the architecture, parameter count, file type (general.file_type), bits per "
        "weight, every metadata key (long arrays summarised by type, length and first items) "
        "and every tensor with its shape, type and size. A split model is opened from any of "
        "its -NNNNN-of-MMMMM.gguf shards. --json prints one JSON object instead. --check also "
        "reads "
        "every tensor and fails (exit 1) if one holds Inf/NaN values or scales (a damaged file).",
    .run = run_inspect,
};

typedef struct {
  guint64 n_params;
  guint64 n_bytes;
  guint64 per_type_count[WH_TYPE_COUNT];
  guint64 per_type_bytes[WH_TYPE_COUNT];
} totals;

static void
compute_totals(const wh_gguf *g, totals *t)
{
  memset(t, 0, sizeof *t);
  for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) {
    const wh_gguf_tensor *x = wh_gguf_get_tensor(g, i);
    t->n_params += x->n_elements;
    t->n_bytes += x->n_bytes;
    t->per_type_count[x->type]++;
    t->per_type_bytes[x->type] += x->n_bytes;
  }
}

static char *
human_count(guint64 n)
{
  if (n >= G_GUINT64_CONSTANT(1000000000))
    return g_strdup_printf("%.2f B", n / 1e9);
  if (n >= 1000000)
    return g_strdup_printf("%.2f M", n / 1e6);
  if (n >= 1000)
    return g_strdup_printf("%.2f K", n / 1e3);
  return g_strdup_printf("%" G_GUINT64_FORMAT, n);
}

static char *
shape_string(const wh_gguf_tensor *t)
{
  GString *s = g_string_new("[");
  guint nd = MAX(t->n_dims, 1);
  for (guint d = 0; d < nd; d++)
    g_string_append_printf(s, "%s%" G_GUINT64_FORMAT, d ? ", " : "", t->ne[d]);
  g_string_append_c(s, ']');
  return g_string_free(s, FALSE);
}

static const char *
file_type_name(const wh_gguf *g, guint64 *id)
{
  if (!wh_gguf_get_uint(g, "general.file_type", id))
    return NULL;
  const char *n = *id <= G_MAXUINT32 ? wh_ftype_name((guint32)*id) : NULL;
  return n ? n : "unknown";
}

/* --- text ------------------------------------------------------------------------------- */

/* Appends @s (@len bytes) quoted, control bytes escaped, cut at @max bytes (0 = no cut). */
static void
append_quoted(GString *out, const char *s, gsize len, gsize max)
{
  gsize n = max && len > max ? max : len;
  char *valid = g_utf8_make_valid(s, (gssize)n);
  g_string_append_c(out, '"');
  for (const char *p = valid; *p; p++) {
    guchar c = (guchar)*p;
    if (c == '\n')
      g_string_append(out, "\\n");
    else if (c == '\t')
      g_string_append(out, "\\t");
    else if (c == '"' || c == '\\')
      g_string_append_printf(out, "\\%c", c);
    else if (c < 0x20 || c == 0x7f)
      g_string_append_printf(out, "\\x%02x", c);
    else
      g_string_append_c(out, (char)c);
  }
  g_string_append_c(out, '"');
  g_free(valid);
  if (n < len)
    g_string_append_printf(out, "... (%" G_GSIZE_FORMAT " bytes)", len);
}

/* Shortest of %.6g / %.9g / %.17g that gives back the value (at @f32 precision). */
static void
append_float(GString *out, double f, gboolean f32)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  static const char *const formats[] = {"%.6g", "%.9g", "%.17g"};
  for (guint k = 0; k < G_N_ELEMENTS(formats); k++) {
    g_ascii_formatd(buf, sizeof buf, formats[k], f);
    double back = g_ascii_strtod(buf, NULL);
    if (f32 ? (float)back == (float)f : back == f)
      break;
  }
  g_string_append(out, buf);
}

static void
append_array_item(GString *out, const wh_gguf_array *a, guint64 i)
{
  switch (a->type) {
  case WH_GGUF_STRING: {
    gsize len;
    const char *s = wh_gguf_array_get_string(a, i, &len);
    append_quoted(out, s, len, 40);
    break;
  }
  case WH_GGUF_FLOAT32:
  case WH_GGUF_FLOAT64:
    append_float(out, wh_gguf_array_get_float(a, i), a->type == WH_GGUF_FLOAT32);
    break;
  case WH_GGUF_BOOL:
    g_string_append(out, wh_gguf_array_get_int(a, i) ? "true" : "false");
    break;
  case WH_GGUF_UINT64:
    g_string_append_printf(out, "%" G_GUINT64_FORMAT, (guint64)wh_gguf_array_get_int(a, i));
    break;
  case WH_GGUF_ARRAY: {
    wh_gguf_array inner;
    wh_gguf_array_get_array(a, i, &inner);
    g_string_append_printf(out, "[%s x %" G_GUINT64_FORMAT "]", wh_gguf_value_type_name(inner.type),
                           inner.n);
    break;
  }
  default:
    g_string_append_printf(out, "%" G_GINT64_FORMAT, wh_gguf_array_get_int(a, i));
  }
}

static void
append_value_text(GString *out, const wh_gguf_value *v)
{
  wh_gguf_value_type type = wh_gguf_value_get_type(v);
  guint64 u;
  gint64 i;
  double f;
  gboolean b;
  gsize len;
  wh_gguf_array a;
  if (type == WH_GGUF_STRING) {
    const char *s = wh_gguf_value_get_string(v, &len);
    append_quoted(out, s, len, STRING_PREVIEW);
  } else if (wh_gguf_value_get_array(v, &a)) {
    g_string_append_printf(out, "[%s x %" G_GUINT64_FORMAT "]", wh_gguf_value_type_name(a.type),
                           a.n);
    guint64 show = MIN(a.n, (guint64)ARRAY_PREVIEW);
    for (guint64 k = 0; k < show; k++) {
      g_string_append(out, k ? ", " : " ");
      append_array_item(out, &a, k);
    }
    if (show < a.n)
      g_string_append(out, ", ...");
  } else if (wh_gguf_value_get_bool(v, &b)) {
    g_string_append(out, b ? "true" : "false");
  } else if (type == WH_GGUF_FLOAT32 || type == WH_GGUF_FLOAT64) {
    wh_gguf_value_get_float(v, &f);
    append_float(out, f, type == WH_GGUF_FLOAT32);
  } else if (wh_gguf_value_get_uint(v, &u)) {
    g_string_append_printf(out, "%" G_GUINT64_FORMAT, u);
  } else if (wh_gguf_value_get_int(v, &i)) {
    g_string_append_printf(out, "%" G_GINT64_FORMAT, i);
  }
}

static void
print_text(const wh_gguf *g)
{
  totals t;
  compute_totals(g, &t);
  GString *out = g_string_new(NULL);
  g_string_append_printf(out, "file:          %s", wh_gguf_path(g));
  if (wh_gguf_n_splits(g) > 1)
    g_string_append_printf(out, " (split model, %u shards)", wh_gguf_n_splits(g));
  g_string_append_printf(
      out, "\nformat:        GGUF v%u, alignment %u, %" G_GUINT64_FORMAT " bytes on disk\n",
      wh_gguf_version(g), wh_gguf_alignment(g), wh_gguf_total_size(g));
  const char *arch = wh_gguf_get_architecture(g);
  g_string_append_printf(out, "architecture:  %s\n", arch ? arch : "(none)");
  const char *name = wh_gguf_get_string(g, "general.name");
  if (name)
    g_string_append_printf(out, "name:          %s\n", name);
  guint64 ftype;
  const char *ft = file_type_name(g, &ftype);
  if (ft)
    g_string_append_printf(out, "file type:     %s (%" G_GUINT64_FORMAT ")\n", ft, ftype);
  char *hp = human_count(t.n_params);
  g_string_append_printf(out, "parameters:    %" G_GUINT64_FORMAT " (%s)\n", t.n_params, hp);
  g_free(hp);
  g_string_append_printf(out, "tensor data:   %" G_GUINT64_FORMAT " bytes (%.2f MiB)\n", t.n_bytes,
                         t.n_bytes / 1048576.0);
  if (t.n_params)
    g_string_append_printf(out, "bits/weight:   %.4f\n", t.n_bytes * 8.0 / (double)t.n_params);
  g_string_append_printf(out, "tensors:       %" G_GUINT64_FORMAT, wh_gguf_n_tensors(g));
  gboolean first = TRUE;
  for (guint k = 0; k < WH_TYPE_COUNT; k++) {
    if (!t.per_type_count[k])
      continue;
    g_string_append_printf(out, "%s%s %" G_GUINT64_FORMAT, first ? " (" : ", ",
                           wh_type_name((wh_type)k), t.per_type_count[k]);
    first = FALSE;
  }
  g_string_append(out, first ? "\n" : ")\n");

  g_string_append_printf(out, "\nmetadata (%" G_GUINT64_FORMAT " keys):\n", wh_gguf_n_kv(g));
  for (guint64 i = 0; i < wh_gguf_n_kv(g); i++) {
    g_string_append_printf(out, "  %-44s %-7s ", wh_gguf_kv_key(g, i),
                           wh_gguf_value_type_name(wh_gguf_kv_type(g, i)));
    append_value_text(out, wh_gguf_kv_value(g, i));
    g_string_append_c(out, '\n');
  }

  if (wh_gguf_n_tensors(g)) {
    g_string_append_printf(out, "\ntensors (%" G_GUINT64_FORMAT "):\n", wh_gguf_n_tensors(g));
    g_string_append_printf(out, "  %5s  %-40s %-22s %-8s %12s %8s%s\n", "#", "name", "shape",
                           "type", "bytes", "bpw", wh_gguf_n_splits(g) > 1 ? "  shard" : "");
    for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) {
      const wh_gguf_tensor *x = wh_gguf_get_tensor(g, i);
      char *shape = shape_string(x);
      g_string_append_printf(
          out, "  %5" G_GUINT64_FORMAT "  %-40s %-22s %-8s %12" G_GUINT64_FORMAT " %8.4f", i,
          x->name, shape, wh_type_name(x->type), x->n_bytes, wh_type_bits_per_weight(x->type));
      if (wh_gguf_n_splits(g) > 1)
        g_string_append_printf(out, "  %5u", x->split_index + 1);
      g_string_append_c(out, '\n');
      g_free(shape);
    }
  }
  fwrite(out->str, 1, out->len, stdout);
  g_string_free(out, TRUE);
}

/* --- JSON ------------------------------------------------------------------------------- */

static void
json_add_string_n(JsonBuilder *b, const char *s, gsize len)
{
  char *valid = g_utf8_make_valid(s, (gssize)len);
  json_builder_add_string_value(b, valid);
  g_free(valid);
}

static void
json_add_double(JsonBuilder *b, double f)
{
  if (isfinite(f))
    json_builder_add_double_value(b, f);
  else
    json_builder_add_null_value(b);
}

static void json_add_array(JsonBuilder *b, const wh_gguf_array *a, guint depth);

static void
json_add_array_item(JsonBuilder *b, const wh_gguf_array *a, guint64 i, guint depth)
{
  switch (a->type) {
  case WH_GGUF_STRING: {
    gsize len;
    const char *s = wh_gguf_array_get_string(a, i, &len);
    json_add_string_n(b, s, len);
    break;
  }
  case WH_GGUF_FLOAT32:
  case WH_GGUF_FLOAT64:
    json_add_double(b, wh_gguf_array_get_float(a, i));
    break;
  case WH_GGUF_BOOL:
    json_builder_add_boolean_value(b, wh_gguf_array_get_int(a, i) != 0);
    break;
  case WH_GGUF_UINT64: {
    guint64 u = (guint64)wh_gguf_array_get_int(a, i);
    if (u > G_MAXINT64)
      json_builder_add_double_value(b, (double)u);
    else
      json_builder_add_int_value(b, (gint64)u);
    break;
  }
  case WH_GGUF_ARRAY: {
    wh_gguf_array inner;
    wh_gguf_array_get_array(a, i, &inner);
    json_add_array(b, &inner, depth + 1);
    break;
  }
  default:
    json_builder_add_int_value(b, wh_gguf_array_get_int(a, i));
  }
}

/* Short arrays in full; long ones as {"type", "length", "first": [...]}. */
static void
json_add_array(JsonBuilder *b, const wh_gguf_array *a, guint depth)
{
  if (a->n <= ARRAY_FULL_MAX && depth < 4) {
    json_builder_begin_array(b);
    for (guint64 i = 0; i < a->n; i++)
      json_add_array_item(b, a, i, depth);
    json_builder_end_array(b);
    return;
  }
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, wh_gguf_value_type_name(a->type));
  json_builder_set_member_name(b, "length");
  json_builder_add_int_value(b, (gint64)a->n);
  json_builder_set_member_name(b, "first");
  json_builder_begin_array(b);
  for (guint64 i = 0; i < MIN(a->n, (guint64)ARRAY_PREVIEW) && depth < 4; i++)
    json_add_array_item(b, a, i, depth);
  json_builder_end_array(b);
  json_builder_end_object(b);
}

static void
json_add_value(JsonBuilder *b, const wh_gguf_value *v)
{
  wh_gguf_value_type type = wh_gguf_value_get_type(v);
  guint64 u;
  gint64 i;
  double f;
  gboolean bo;
  gsize len;
  wh_gguf_array a;
  if (type == WH_GGUF_STRING) {
    const char *s = wh_gguf_value_get_string(v, &len);
    json_add_string_n(b, s, len);
  } else if (wh_gguf_value_get_array(v, &a)) {
    json_add_array(b, &a, 0);
  } else if (wh_gguf_value_get_bool(v, &bo)) {
    json_builder_add_boolean_value(b, bo);
  } else if (type == WH_GGUF_FLOAT32 || type == WH_GGUF_FLOAT64) {
    wh_gguf_value_get_float(v, &f);
    json_add_double(b, f);
  } else if (wh_gguf_value_get_int(v, &i)) {
    json_builder_add_int_value(b, i);
  } else if (wh_gguf_value_get_uint(v, &u)) {
    json_builder_add_double_value(b, (double)u);
  } else {
    json_builder_add_null_value(b);
  }
}

static void
print_json(const wh_gguf *g)
{
  totals t;
  compute_totals(g, &t);
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "file");
  json_builder_add_string_value(b, wh_gguf_path(g));
  json_builder_set_member_name(b, "version");
  json_builder_add_int_value(b, wh_gguf_version(g));
  json_builder_set_member_name(b, "alignment");
  json_builder_add_int_value(b, wh_gguf_alignment(g));
  json_builder_set_member_name(b, "splits");
  json_builder_add_int_value(b, wh_gguf_n_splits(g));
  json_builder_set_member_name(b, "file_size");
  json_builder_add_int_value(b, (gint64)wh_gguf_total_size(g));
  json_builder_set_member_name(b, "architecture");
  const char *arch = wh_gguf_get_architecture(g);
  if (arch)
    json_builder_add_string_value(b, arch);
  else
    json_builder_add_null_value(b);
  guint64 ftype;
  const char *ft = file_type_name(g, &ftype);
  json_builder_set_member_name(b, "file_type");
  if (ft) {
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "id");
    json_builder_add_int_value(b, (gint64)ftype);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, ft);
    json_builder_end_object(b);
  } else {
    json_builder_add_null_value(b);
  }
  json_builder_set_member_name(b, "parameters");
  json_builder_add_int_value(b, (gint64)t.n_params);
  json_builder_set_member_name(b, "tensor_bytes");
  json_builder_add_int_value(b, (gint64)t.n_bytes);
  json_builder_set_member_name(b, "bits_per_weight");
  json_add_double(b, t.n_params ? t.n_bytes * 8.0 / (double)t.n_params : 0.0);
  json_builder_set_member_name(b, "tensor_types");
  json_builder_begin_object(b);
  for (guint k = 0; k < WH_TYPE_COUNT; k++) {
    if (!t.per_type_count[k])
      continue;
    json_builder_set_member_name(b, wh_type_name((wh_type)k));
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "count");
    json_builder_add_int_value(b, (gint64)t.per_type_count[k]);
    json_builder_set_member_name(b, "bytes");
    json_builder_add_int_value(b, (gint64)t.per_type_bytes[k]);
    json_builder_end_object(b);
  }
  json_builder_end_object(b);

  json_builder_set_member_name(b, "metadata");
  json_builder_begin_array(b);
  for (guint64 i = 0; i < wh_gguf_n_kv(g); i++) {
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "key");
    json_builder_add_string_value(b, wh_gguf_kv_key(g, i));
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, wh_gguf_value_type_name(wh_gguf_kv_type(g, i)));
    wh_gguf_array a;
    if (wh_gguf_value_get_array(wh_gguf_kv_value(g, i), &a)) {
      json_builder_set_member_name(b, "element_type");
      json_builder_add_string_value(b, wh_gguf_value_type_name(a.type));
      json_builder_set_member_name(b, "length");
      json_builder_add_int_value(b, (gint64)a.n);
    }
    json_builder_set_member_name(b, "value");
    json_add_value(b, wh_gguf_kv_value(g, i));
    json_builder_end_object(b);
  }
  json_builder_end_array(b);

  json_builder_set_member_name(b, "tensors");
  json_builder_begin_array(b);
  for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) {
    const wh_gguf_tensor *x = wh_gguf_get_tensor(g, i);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, x->name);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, wh_type_name(x->type));
    json_builder_set_member_name(b, "shape");
    json_builder_begin_array(b);
    for (guint d = 0; d < MAX(x->n_dims, 1); d++)
      json_builder_add_int_value(b, (gint64)x->ne[d]);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "elements");
    json_builder_add_int_value(b, (gint64)x->n_elements);
    json_builder_set_member_name(b, "bytes");
    json_builder_add_int_value(b, (gint64)x->n_bytes);
    json_builder_set_member_name(b, "bits_per_weight");
    json_add_double(b, wh_type_bits_per_weight(x->type));
    json_builder_set_member_name(b, "offset");
    json_builder_add_int_value(b, (gint64)(wh_gguf_data_offset(g, x->split_index) + x->offset));
    if (wh_gguf_n_splits(g) > 1) {
      json_builder_set_member_name(b, "shard");
      json_builder_add_int_value(b, x->split_index);
    }
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);

  wh_cli_print_json_builder(b);
  g_object_unref(b);
}

static int
run_inspect(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_inspect;
  gboolean json = FALSE, check = FALSE;
  GOptionEntry entries[] = {
      {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print one JSON object", NULL},
      {"check", 0, 0, G_OPTION_ARG_NONE, &check, "Check every tensor for Inf/NaN data", NULL},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc < 2)
    return wh_cli_usage_error(cmd, "missing FILE");
  if (argc > 2)
    return wh_cli_usage_error(cmd, "unexpected argument '%s'", argv[2]);
  GError *error = NULL;
  wh_gguf *g = wh_gguf_open(argv[1], &error);
  if (g == NULL) {
    int rc = wh_cli_fail(cmd, error);
    g_error_free(error);
    return rc;
  }
  if (json)
    print_json(g);
  else
    print_text(g);
  int rc = fflush(stdout) == 0 ? WH_CLI_EXIT_OK : WH_CLI_EXIT_FAILURE;
  if (check) {
    guint64 n_bad = 0;
    for (guint64 i = 0; i < wh_gguf_n_tensors(g); i++) {
      if (!wh_gguf_check_tensor_data(wh_gguf_get_tensor(g, i), &error)) {
        fprintf(stderr, "whittle-cli inspect: %s\n", error->message);
        g_clear_error(&error);
        n_bad++;
      }
      wh_gguf_tensor_release(g, wh_gguf_get_tensor(g, i));
    }
    if (n_bad) {
      fprintf(stderr, "whittle-cli inspect: %" G_GUINT64_FORMAT " damaged tensor(s)\n", n_bad);
      rc = WH_CLI_EXIT_FAILURE;
    } else {
      fprintf(stderr, "data check: %" G_GUINT64_FORMAT " tensors OK\n", wh_gguf_n_tensors(g));
    }
  }
  wh_gguf_close(g);
  return rc;
}
