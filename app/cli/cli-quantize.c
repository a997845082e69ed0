/* cli-quantize.c — `whittle-cli quantize IN.gguf OUT.gguf FTYPE`: shrink a model.
 *
 * Plans the per-tensor types (ftype-mixes.md) and streams the conversion through the job
 * queue, with progress on stderr and Ctrl+C cancelling cleanly (no partial file is left).
 * --dry-run prints the plan and the final size without writing.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli-util.h"
#include "gguf/gguf.h"
#include "quantize/quantize.h"

static int run_quantize(int argc, char **argv);

const wh_cli_command wh_cli_command_quantize = {
    .name = "quantize",
    .summary = "Quantize a GGUF model to an ftype (Q4_K_M, Q8_0, IQ4_XS, ...)",
    .usage = "IN.gguf OUT.gguf FTYPE [OPTION...]  (OUT may be left out with --dry-run)",
    .description =
        "Writes OUT.gguf with the tensor types the reference quantizer picks for FTYPE, tensor "
        "by tensor. FTYPE is one of F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q2_K_S Q3_K_S "
        "Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ2_M "
        "IQ3_XXS IQ3_XS IQ3_S IQ3_M IQ4_NL IQ4_XS TQ1_0 TQ2_0. IQ1_*, IQ2_* and Q2_K_S need "
        "--imatrix. --tensor-type takes a regular expression searched in the tensor name and a "
        "type, e.g. --tensor-type 'attn_v=Q8_0' (repeatable; the first match wins). The output is "
        "written to a temporary file next to OUT and renamed when complete.",
    .run = run_quantize,
};

typedef struct {
  const char *output;
  wh_quantize_params params;
  wh_quantize_plan *plan;
  double seconds;
  wh_job *job;
} quantize_run;

static void
on_progress(const wh_quantize_progress *p, gpointer data)
{
  quantize_run *r = data;
  char status[160];
  g_snprintf(status, sizeof status, "tensor %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " %s",
             p->tensor_index + 1, p->n_tensors, p->tensor_name);
  wh_job_set_progress(r->job, p->bytes_done, p->bytes_total, status);
}

static gboolean
on_abort(gpointer data)
{
  quantize_run *r = data;
  return wh_job_is_cancelled(r->job);
}

static gboolean
quantize_job(wh_job *job, gpointer data, GError **error)
{
  quantize_run *r = data;
  r->job = job;
  gint64 t0 = g_get_monotonic_time();
  gboolean ok = wh_quantize_plan_execute(r->plan, r->output, &r->params, error);
  r->seconds = (g_get_monotonic_time() - t0) / 1e6;
  return ok;
}

static char *
human_size(guint64 b)
{
  return g_format_size_full(b, G_FORMAT_SIZE_IEC_UNITS);
}

static int
print_plan(const wh_quantize_plan *plan)
{
  GString *out = g_string_new(NULL);
  g_string_append_printf(out, "%5s  %-40s %-22s %-8s %-8s %12s\n", "#", "tensor", "shape", "from",
                         "to", "bytes");
  guint64 n_conv = 0, n_params = 0, bytes = 0;
  for (guint64 i = 0; i < wh_quantize_plan_n_tensors(plan); i++) {
    const wh_quantize_tensor_plan *tp = wh_quantize_plan_get(plan, i);
    GString *shape = g_string_new("[");
    for (guint d = 0; d < MAX(tp->n_dims, 1); d++)
      g_string_append_printf(shape, "%s%" G_GUINT64_FORMAT, d ? ", " : "", tp->ne[d]);
    g_string_append_c(shape, ']');
    g_string_append_printf(
        out, "%5" G_GUINT64_FORMAT "  %-40s %-22s %-8s %-8s %12" G_GUINT64_FORMAT "%s%s%s\n", i,
        tp->name, shape->str, wh_type_name(tp->src_type),
        tp->converted ? wh_type_name(tp->dst_type) : "(copy)", tp->dst_bytes,
        tp->fell_back ? "  fallback from " : "", tp->fell_back ? wh_type_name(tp->wanted_type) : "",
        tp->uses_imatrix ? "  imatrix" : "");
    g_string_free(shape, TRUE);
    n_conv += tp->converted;
    guint64 nel = tp->ne[0] * tp->ne[1] * tp->ne[2] * tp->ne[3];
    n_params += nel;
    bytes += tp->dst_bytes;
  }
  char *in_s = human_size(wh_quantize_plan_input_size(plan));
  char *out_s = human_size(wh_quantize_plan_file_size(plan));
  g_string_append_printf(
      out,
      "\n%" G_GUINT64_FORMAT " tensors, %" G_GUINT64_FORMAT " converted, %u shape fallbacks\n"
      "input %s, output %" G_GUINT64_FORMAT " bytes (%s), %.3f bits per "
      "weight\n",
      wh_quantize_plan_n_tensors(plan), n_conv, wh_quantize_plan_n_fallbacks(plan), in_s,
      wh_quantize_plan_file_size(plan), out_s, n_params ? bytes * 8.0 / (double)n_params : 0.0);
  g_free(in_s);
  g_free(out_s);
  fwrite(out->str, 1, out->len, stdout);
  g_string_free(out, TRUE);
  return fflush(stdout) == 0 ? WH_CLI_EXIT_OK : WH_CLI_EXIT_FAILURE;
}

static gboolean
parse_type(const char *s, wh_type *out)
{
  if (s == NULL)
    return TRUE;
  *out = wh_type_from_name(s);
  return *out != WH_TYPE_INVALID;
}

static int
run_quantize(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_quantize;
  g_autofree char *imatrix = NULL, *out_type = NULL, *embd_type = NULL;
  g_auto(GStrv) tensor_types = NULL;
  gboolean allow_requantize = FALSE, pure = FALSE, dry_run = FALSE, quiet = FALSE;
  gint threads = 0;
  GOptionEntry entries[] = {
      {"imatrix", 0, 0, G_OPTION_ARG_FILENAME, &imatrix, "Importance matrix (GGUF or .dat)",
       "FILE"},
      {"allow-requantize", 0, 0, G_OPTION_ARG_NONE, &allow_requantize,
       "Allow an already quantized input (lower quality)", NULL},
      {"pure", 0, 0, G_OPTION_ARG_NONE, &pure, "Base type for every tensor (no per-tensor mix)",
       NULL},
      {"output-tensor-type", 0, 0, G_OPTION_ARG_STRING, &out_type, "Type of output.weight", "T"},
      {"token-embedding-type", 0, 0, G_OPTION_ARG_STRING, &embd_type, "Type of token_embd.weight",
       "T"},
      {"tensor-type", 0, 0, G_OPTION_ARG_STRING_ARRAY, &tensor_types,
       "Type of the tensors whose name matches REGEX (repeatable)", "REGEX=T"},
      {"threads", 't', 0, G_OPTION_ARG_INT, &threads, "Worker threads (default: all CPUs)", "N"},
      {"dry-run", 'n', 0, G_OPTION_ARG_NONE, &dry_run, "Print the plan and size, write nothing",
       NULL},
      {"quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress output", NULL},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  const char *input = NULL, *output = NULL, *ftype_name = NULL;
  if (argc == 4) {
    input = argv[1];
    output = argv[2];
    ftype_name = argv[3];
  } else if (argc == 3 && dry_run) {
    input = argv[1];
    ftype_name = argv[2];
  } else if (argc > 4) {
    return wh_cli_usage_error(cmd, "unexpected argument '%s'", argv[4]);
  } else {
    return wh_cli_usage_error(cmd, "expected IN.gguf OUT.gguf FTYPE");
  }
  quantize_run r = {output, wh_quantize_default_params(), NULL, 0, NULL};
  r.params.ftype = wh_ftype_from_name(ftype_name);
  if (r.params.ftype < 0)
    return wh_cli_usage_error(cmd, "unknown FTYPE '%s' (e.g. Q4_K_M, Q8_0, IQ4_XS)", ftype_name);
  if (!parse_type(out_type, &r.params.output_type))
    return wh_cli_usage_error(cmd, "--output-tensor-type: unknown type '%s'", out_type);
  if (!parse_type(embd_type, &r.params.token_embd_type))
    return wh_cli_usage_error(cmd, "--token-embedding-type: unknown type '%s'", embd_type);
  if (threads < 0 || threads > 1024)
    return wh_cli_usage_error(cmd, "--threads must be between 1 and 1024");
  if (output && strcmp(input, output) == 0)
    return wh_cli_usage_error(cmd, "IN and OUT must be different files");
  r.params.imatrix_path = imatrix;
  r.params.allow_requantize = allow_requantize;
  r.params.pure = pure;
  r.params.tensor_types = (const char *const *)tensor_types;
  r.params.n_threads = (guint)threads;

  GError *error = NULL;
  r.plan = wh_quantize_plan_new(input, &r.params, &error);
  if (r.plan == NULL) {
    int rc = wh_cli_fail(cmd, error);
    g_error_free(error);
    return rc;
  }
  if (dry_run) {
    int rc = print_plan(r.plan);
    wh_quantize_plan_free(r.plan);
    return rc;
  }

  r.params.progress = on_progress;
  r.params.abort = on_abort;
  r.params.user_data = &r;
  char *title = g_strdup_printf("Quantizing to %s", wh_ftype_name((guint32)r.params.ftype));
  gboolean ok = wh_cli_run_job(WH_JOB_QUANTIZE, title, quantize_job, &r, TRUE, quiet, &error);
  g_free(title);
  if (!ok) {
    wh_quantize_plan_free(r.plan);
    int rc = wh_cli_fail(cmd, error);
    g_error_free(error);
    return rc;
  }
  guint64 in = wh_quantize_plan_input_size(r.plan), out = wh_quantize_plan_file_size(r.plan);
  guint64 n_conv = 0;
  for (guint64 i = 0; i < wh_quantize_plan_n_tensors(r.plan); i++)
    n_conv += wh_quantize_plan_get(r.plan, i)->converted;
  char *in_s = human_size(in), *out_s = human_size(out);
  if (!quiet)
    fprintf(stderr,
            "%s: %s -> %s (%.1f%%), %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
            " tensors converted, %u shape fallbacks, %.1f s (%.1f MB/s of input)\n",
            output, in_s, out_s, 100.0 * (double)out / (double)in, n_conv,
            wh_quantize_plan_n_tensors(r.plan), wh_quantize_plan_n_fallbacks(r.plan), r.seconds,
            r.seconds > 0 ? in / 1e6 / r.seconds : 0.0);
  g_free(in_s);
  g_free(out_s);
  wh_quantize_plan_free(r.plan);
  return WH_CLI_EXIT_OK;
}
