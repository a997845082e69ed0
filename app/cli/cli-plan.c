/* cli-plan.c — `whittle-cli plan`: will a model fit, per device, before loading or downloading.
 *
 * The model is a local GGUF (-m; only its metadata and tensor directory are read) or a
 * remote one (--remote REPO FILE; only its header is fetched, by Range requests). The
 * numbers come from the planner module, i.e. from the same plan a context allocates by, so
 * `plan --json` and `run --report-memory --json` print the same object for the same settings.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "backend/devices.h"
#include "cli-util.h"
#include "hub/hub.h"
#include "planner/planner.h"

static int run_plan(int argc, char **argv);

const wh_cli_command wh_cli_command_plan = {
    .name = "plan",
    .summary = "Show whether a model fits in memory, per device, before loading it",
    .usage = "-m MODEL | --remote REPO FILE [-c CTX] [-b BATCH] [--kv-type T] [--ngl N|auto] "
             "[--device NAME] [--no-mmap] [-t THREADS] [--json]",
    .description =
        "Plans the memory of MODEL per device (weights, KV cache, compute scratch, output\n"
        "buffer, overhead) with the engine's own allocation plan, and says whether it fits,\n"
        "fits with part of the layers on the GPU, or does not fit. --ngl auto picks the most\n"
        "layers that fit on the GPU and the longest context that fits with them. With\n"
        "--remote only the file's header is downloaded. --json prints the same object as\n"
        "`run --report-memory --json`.",
    .run = run_plan,
};

static char *
size_str(guint64 bytes)
{
  return wh_hub_format_size(bytes);
}

/* Hyper-parameters of a remote file from its header alone; for a shard of a split model
 * ("-00002-of-00003.gguf"), from every shard's header (metadata from the first, tensor bytes
 * from all). *@header_bytes = bytes fetched. */
static wh_model_hparams *
remote_hparams(const char *repo, const char *revision, const char *file, guint64 *header_bytes,
               GError **error)
{
  wh_hub *hub = wh_hub_new(NULL, error);
  if (!hub)
    return NULL;
  g_autofree char *prefix = NULL;
  guint index = 0, count = 1;
  if (!wh_gguf_split_parse(file, &prefix, &index, &count))
    count = 1;
  wh_model_hparams *hp = g_new0(wh_model_hparams, 1);
  gboolean ok = TRUE;
  *header_bytes = 0;
  for (guint k = 0; ok && k < count; k++) {
    g_autofree char *name = count > 1 ? wh_gguf_split_path(prefix, k, count) : g_strdup(file);
    guint64 bytes = 0;
    wh_gguf *g = wh_hub_read_gguf_header(hub, repo, revision, name, &bytes, NULL, error);
    *header_bytes += bytes;
    ok = g != NULL;
    if (ok && k == 0)
      ok = wh_model_hparams_from_gguf(g, hp, error);
    else if (ok)
      wh_model_hparams_add_tensors(hp, g);
    wh_gguf_close(g);
  }
  wh_hub_free(hub);
  if (!ok)
    g_clear_pointer(&hp, g_free);
  return hp;
}

static void
print_table(const char *what, const wh_model_hparams *hp, const wh_plan *plan,
            const wh_device_list *devices)
{
  printf("model     %s (%s, %u layers, trained context %u)\n", what, hp->arch_name, hp->n_layer,
         hp->n_ctx_train);
  printf("settings  context %u, batch %u, KV cache %s, mmap %s\n", plan->n_ctx, plan->n_batch,
         wh_kv_type_name(plan->kv_type), plan->mmap ? "on" : "off");
  printf("GPU       %u of %u layers%s%s\n", plan->n_gpu_layers, plan->n_layer + 1,
         plan->n_gpu_layers > plan->n_layer ? " (all, with the output layer)" : "",
         plan->is_auto ? " (auto)" : "");
  printf("\n%-28s %-10s %10s %10s %10s %10s %10s %10s %10s %10s  %s\n", "DEVICE", "KIND", "WEIGHTS",
         "KV CACHE", "COMPUTE", "OUTPUT", "OVERHEAD", "TOTAL", "USED", "FREE", "FITS");
  for (guint i = 0; i < plan->n_devices; i++) {
    const wh_plan_device_entry *e = &plan->devices[i];
    g_autofree char *w = size_str(e->mem.weights), *kv = size_str(e->mem.kv_cache),
                    *c = size_str(e->mem.compute), *o = size_str(e->mem.output),
                    *ov = size_str(e->mem.overhead), *t = size_str(e->mem.total),
                    *u = size_str(e->used), *f = size_str(e->device.free);
    printf("%-28.28s %-10s %10s %10s %10s %10s %10s %10s %10s %10s  %s\n", e->device.name,
           wh_device_kind_json(e->device.kind), w, kv, c, o, ov, t, u, f, e->fits ? "yes" : "no");
  }
  printf("\n");
  for (guint i = 0; i < plan->n_devices; i++) {
    const wh_plan_device_entry *e = &plan->devices[i];
    if (e->device.kind == WH_DEVICE_KIND_CPU_VULKAN)
      printf("note      %s is a cpu-based Vulkan device: its memory is system RAM\n",
             e->device.name);
    else if (i > 0 && e->device.unified)
      printf("note      %s shares system RAM with the CPU: its total counts against RAM too\n",
             e->device.name);
    if (!e->device.free_known)
      printf("note      the free memory of %s is not known: its total is used\n", e->device.name);
  }
  if (hp->n_ctx_train && plan->n_ctx > hp->n_ctx_train)
    printf("note      the context (%u) is longer than the model was trained for (%u): expect "
           "worse text past that, unless the model scales RoPE\n",
           plan->n_ctx, hp->n_ctx_train);
  if (plan->mmap)
    printf("note      CPU weights are mapped from the file: reported, not counted against free "
           "RAM%s\n",
           plan->mapped_exceeds_ram ? " (they exceed free RAM: expect the file to be re-read "
                                      "while generating)"
                                    : "");
  else
    printf("note      mmap is off: CPU weights are copied and count against free RAM\n");
  if (plan->gpu_note[0])
    printf("note      %s\n", plan->gpu_note);
  else if (plan->n_devices == 1 && !plan->is_auto && wh_device_list_find_gpu(devices, NULL, NULL))
    printf("note      no layers on the GPU: try --ngl auto\n");
  if (plan->is_auto)
    printf("auto      %u GPU layers; the longest context that fits with them is %u\n",
           plan->n_gpu_layers, plan->max_n_ctx);
  const char *verdict = plan->verdict == WH_PLAN_FITS      ? "fits"
                        : plan->verdict == WH_PLAN_PARTIAL ? "fits with part of the layers on "
                                                             "the GPU"
                                                           : "does not fit";
  printf("verdict   %s\n", verdict);
  if (plan->verdict == WH_PLAN_NO)
    printf("          (lower the context with -c, use --kv-type q8_0 or q4_0, or --ngl auto)\n");
}

static int
run_plan(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_plan;
  g_autofree char *model_path = NULL, *remote = NULL, *revision = NULL, *kv_name = NULL,
                  *ngl_str = NULL, *device = NULL;
  int n_ctx = 0, n_batch = 0, n_threads = 0;
  gboolean json = FALSE, no_mmap = FALSE;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "Local GGUF model file", "MODEL"},
      {"remote", 0, 0, G_OPTION_ARG_STRING, &remote,
       "Plan a file of a hub repository (REPO FILE) from its header only", "REPO"},
      {"revision", 'r', 0, G_OPTION_ARG_STRING, &revision,
       "With --remote: branch, tag or commit (default main)", "R"},
      {"ctx-size", 'c', 0, G_OPTION_ARG_INT, &n_ctx, "Context size (default: min(train, 4096))",
       "CTX"},
      {"batch-size", 'b', 0, G_OPTION_ARG_INT, &n_batch, "Batch size (default 512)", "BATCH"},
      {"kv-type", 0, 0, G_OPTION_ARG_STRING, &kv_name,
       "KV cache type: f16 (default), q8_0, q4_0, f32", "TYPE"},
      {"ngl", 0, 0, G_OPTION_ARG_STRING, &ngl_str,
       "Layers on the GPU: a number (layers + 1 = with the output layer) or auto (default 0)",
       "N|auto"},
      {"device", 0, 0, G_OPTION_ARG_STRING, &device,
       "GPU device (name, part of it, or vulkan:N / cuda:N; default: the best GPU)", "NAME"},
      {"no-mmap", 0, 0, G_OPTION_ARG_NONE, &no_mmap,
       "Plan for weights copied into RAM instead of mapped", NULL},
      {"threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "Compute threads (default: all cores)",
       "N"},
      {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print one JSON object (the memory report shape)",
       NULL},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (!model_path == !remote)
    return wh_cli_usage_error(cmd, "give either -m MODEL or --remote REPO FILE");
  if (model_path && argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument “%s”", argv[1]);
  if (remote && argc != 2)
    return wh_cli_usage_error(cmd, "--remote needs REPO FILE (the file inside the repository)");
  if (n_ctx < 0 || n_batch < 0 || n_threads < 0)
    return wh_cli_usage_error(cmd, "-c, -b and -t must not be negative");

  wh_planner_params pp = wh_planner_default_params();
  pp.n_ctx = (guint32)n_ctx;
  pp.n_batch = (guint32)n_batch;
  pp.n_threads = n_threads;
  pp.mmap = !no_mmap;
  pp.device = device;
  if (kv_name && !wh_kv_type_from_name(kv_name, &pp.kv_type))
    return wh_cli_usage_error(cmd, "unknown KV cache type “%s” (f16, q8_0, q4_0, f32)", kv_name);
  if (!wh_cli_parse_ngl(ngl_str, &pp.n_gpu_layers))
    return wh_cli_usage_error(cmd, "--ngl takes a number of layers or auto, not “%s”", ngl_str);
  if (device && pp.n_gpu_layers == 0)
    return wh_cli_usage_error(cmd, "--device needs GPU layers: add --ngl N or --ngl auto");

  g_autoptr(GError) error = NULL;
  guint64 header_bytes = 0;
  wh_model_hparams *hp = NULL;
  if (model_path) {
    wh_gguf *g = wh_gguf_open(model_path, &error);
    hp = g ? g_new0(wh_model_hparams, 1) : NULL;
    if (hp && !wh_model_hparams_from_gguf(g, hp, &error))
      g_clear_pointer(&hp, g_free);
    wh_gguf_close(g);
  } else {
    hp = remote_hparams(remote, revision ? revision : "main", argv[1], &header_bytes, &error);
  }
  if (!hp)
    return wh_cli_fail(cmd, error);

  wh_device_list *devices = wh_devices_enumerate();
  wh_plan plan;
  gboolean ok = wh_planner_compute(hp, devices, &pp, &plan, &error);
  if (ok && json) {
    g_autoptr(GString) s = g_string_new(NULL);
    wh_plan_append_json(&plan, s);
    printf("%s\n", s->str);
  } else if (ok) {
    g_autofree char *what =
        remote ? g_strdup_printf("%s/%s", remote, argv[1]) : g_path_get_basename(model_path);
    print_table(what, hp, &plan, devices);
    if (remote) {
      g_autofree char *hb = size_str(header_bytes);
      printf("download  %s of header read (no tensor data)\n", hb);
    }
  }
  if (remote)
    fprintf(stderr, "header bytes read: %" G_GUINT64_FORMAT "\n", header_bytes);
  wh_device_list_free(devices);
  g_free(hp);
  if (!ok)
    return wh_cli_fail(cmd, error);
  return fflush(stdout) == 0 ? WH_CLI_EXIT_OK : WH_CLI_EXIT_FAILURE;
}
