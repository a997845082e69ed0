/* cli-bench.c — `whittle-cli bench`: how fast this machine runs and quantizes models.
 *
 * Three benchmarks:
 *  - `bench -m MODEL`: prompt processing and generation speed (tokens/s, mean and standard
 *    deviation over -r repetitions), the weight bytes a generation step reads (every matrix of
 *    every layer and the output head, one row of the token embedding), the machine's memory read
 *    bandwidth (a streaming read with the same number of threads over a buffer much larger than
 *    the last-level cache, best of several runs) and generation speed as a percentage of the
 *    roofline bandwidth / bytes-per-token: single-token decoding reads every weight once, so it
 *    cannot beat that figure. Before each timed generation repetition two more bandwidth passes
 *    run (they also count for the best); the median over repetitions of generation against the
 *    pass right before it is a second, steadier figure on a machine whose bandwidth swings.
 *  - `bench kernels`: GB/s of weight bytes through each dot kernel of a decode matmul, cache-warm
 *    and streaming from memory, with 1 and 2 threads (see bench_kernels()).
 *  - `bench quantize`: MB/s of input (F16) per ftype and thread count through wh_quantize_file(),
 *    writing to a temporary folder that is deleted afterwards. `--synth` generates the input
 *    model there first (with `whittle-cli synth`).
 * Figures go to stdout, as text or one JSON object (--json). They depend on the load of the
 * machine: the text output prints the load average next to them.
 */
#include "config.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli-util.h"
#include "gguf/gguf-types.h"
#include "model/model.h"
#include "model/threadpool.h"
#include "quant/quant.h"
#include "quantize/quantize.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BENCH_X86 1
#endif

extern const wh_cli_command wh_cli_command_synth;

static int run_bench(int argc, char **argv);

const wh_cli_command wh_cli_command_bench = {
    .name = "bench",
    .summary = "Measure generation and quantization speed",
    .usage = "-m MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS] [--json]\n"
             "       whittle-cli bench quantize (-m F16.gguf | --synth --vocab FILE) "
             "[--types Q8_0,Q4_0,Q4_K_M,IQ4_XS] [-t 1,2] [--json]\n"
             "       whittle-cli bench kernels [--types Q4_K,Q6_K,Q8_0,Q4_0] [-k 2048] [-t 1,2] "
             "[--json]",
    .description =
        "bench -m MODEL prints prompt and generation tokens/s, the bytes of weights read per "
        "generated token, the memory read bandwidth measured with the same number of threads, and "
        "generation speed as a percentage of that roofline (bandwidth / bytes per token). "
        "bench quantize prints MB/s of input for each ftype and thread count (outputs go to a "
        "temporary folder, deleted afterwards; --synth generates a random F16 llama model there "
        "first, sized by --n-embd/--n-layer/--n-ff). bench kernels prints GB/s of weight bytes "
        "through each dot-product kernel of a decode matmul (-k elements per row, one activation "
        "row), with 1 and 2 threads, from cache (warm) and from memory (stream). Speeds depend on "
        "what else the machine is "
        "doing: run them on an idle machine.",
    .run = run_bench,
};

static const wh_cli_command bench_quantize_cmd = {
    .name = "bench quantize",
    .summary = "Measure quantization speed",
    .usage = "(-m F16.gguf | --synth --vocab FILE [--n-embd N] [--n-layer N] [--n-ff N]) "
             "[--types T1,T2] [-t 1,2] [--imatrix FILE] [--json]",
    .description = "MB/s of input per ftype and thread count (see whittle-cli help bench).",
    .run = NULL,
};

/* --- small helpers ------------------------------------------------------------------- */

static double
mean_of(const double *v, guint n)
{
  double s = 0;
  for (guint i = 0; i < n; i++)
    s += v[i];
  return n ? s / n : 0;
}

static double
stddev_of(const double *v, guint n)
{
  if (n < 2)
    return 0;
  double m = mean_of(v, n), s = 0;
  for (guint i = 0; i < n; i++)
    s += (v[i] - m) * (v[i] - m);
  return sqrt(s / (n - 1));
}

static int
cmp_double(gconstpointer a, gconstpointer b)
{
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median of @n values (n <= 100; 0 for none). */
static double
median_of(const double *v, guint n)
{
  double s[100];
  n = MIN(n, G_N_ELEMENTS(s));
  if (n == 0)
    return 0;
  memcpy(s, v, n * sizeof(double));
  qsort(s, n, sizeof(double), cmp_double);
  return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/* "1,2,4" -> {1, 2, 4}; FALSE on anything but positive integers. */
static gboolean
parse_int_list(const char *s, GArray *out)
{
  g_auto(GStrv) parts = g_strsplit(s, ",", -1);
  for (int i = 0; parts[i]; i++) {
    guint64 v;
    if (!g_ascii_string_to_unsigned(g_strstrip(parts[i]), 10, 1, 256, &v, NULL))
      return FALSE;
    int iv = (int)v;
    g_array_append_val(out, iv);
  }
  return out->len > 0;
}

static double
load_average(void)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents("/proc/loadavg", &text, NULL, NULL))
    return -1;
  return g_ascii_strtod(text, NULL);
}

/* --- memory read bandwidth ----------------------------------------------------------- */

/* Streaming read of a buffer far larger than the last-level cache: every thread sums its
 * contiguous part (64-byte aligned slices), so the loads are sequential per thread and the
 * hardware prefetchers run at full speed. The sum is kept so the reads cannot be elided. */
typedef struct {
  const guint64 *buf;
  gsize n_words; /* multiple of 8 */
  guint64 sums[256];
} bw_job;

static guint64
read_sum_portable(const guint64 *p, gsize n)
{
  guint64 s[8] = {0};
  for (gsize i = 0; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++)
      s[k] += p[i + k];
  return s[0] ^ s[1] ^ s[2] ^ s[3] ^ s[4] ^ s[5] ^ s[6] ^ s[7];
}

#ifdef BENCH_X86
/* 128 bytes per iteration with four independent 256-bit accumulators; the last n % 16 words go
 * through the portable loop (which skips a last n % 8). Unaligned loads (as fast on aligned
 * data): bench kernels reads row ranges that start anywhere. */
__attribute__((target("avx2"))) static guint64
read_sum_avx2(const guint64 *p, gsize n)
{
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  gsize i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256((const __m256i *)(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256((const __m256i *)(p + i + 4)));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256((const __m256i *)(p + i + 8)));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256((const __m256i *)(p + i + 12)));
  }
  a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
  guint64 out[4];
  _mm256_storeu_si256((__m256i *)out, a0);
  return out[0] ^ out[1] ^ out[2] ^ out[3] ^ read_sum_portable(p + i, n - i);
}
#endif

static void
bw_worker(int ith, int nth, void *data)
{
  bw_job *job = data;
  gsize b, e;
  /* split in 128-byte units so every part starts aligned */
  wh_threadpool_split(job->n_words / 16, ith, nth, &b, &e);
  const guint64 *p = job->buf + b * 16;
  const gsize n = (e - b) * 16;
#ifdef BENCH_X86
  if (__builtin_cpu_supports("avx2")) {
    job->sums[ith] = read_sum_avx2(p, n);
    return;
  }
#endif
  job->sums[ith] = read_sum_portable(p, n);
}

/* A streaming-read benchmark: a @mib MiB buffer (filled, so every page is touched before any
 * timing) and its own pool of @n_threads. */
typedef struct {
  guint64 *buf;
  gsize bytes;
  wh_threadpool *pool;
  bw_job job;
  guint64 check;
} bw_bench;

/* One timed pass over the whole buffer: bytes/s. */
static double
bw_bench_pass(bw_bench *bw)
{
  gint64 t0 = g_get_monotonic_time();
  wh_threadpool_run(bw->pool, bw_worker, &bw->job);
  gint64 t1 = g_get_monotonic_time();
  for (int i = 0; i < wh_threadpool_size(bw->pool); i++)
    bw->check ^= bw->job.sums[i];
  return (double)bw->bytes / ((double)MAX(t1 - t0, 1) * 1e-6);
}

static bw_bench *
bw_bench_new(int n_threads, guint mib)
{
  bw_bench *bw = g_new0(bw_bench, 1);
  bw->bytes = (gsize)mib << 20;
  bw->buf = g_aligned_alloc(bw->bytes / 64, 64, 64);
  /* distinct values (and every page touched) before timing */
  for (gsize i = 0; i < bw->bytes / 8; i++)
    bw->buf[i] = i * G_GUINT64_CONSTANT(0x9E3779B97F4A7C15);
  bw->pool = wh_threadpool_new(n_threads);
  bw->job.buf = bw->buf;
  bw->job.n_words = bw->bytes / 8;
  bw_bench_pass(bw); /* untimed: the pool's threads start, the first pass runs slow */
  return bw;
}

static void
bw_bench_free(bw_bench *bw)
{
  if (!bw)
    return;
  wh_threadpool_free(bw->pool);
  g_aligned_free(bw->buf);
  if (bw->check == 42) /* keeps the sums alive; practically never true */
    g_debug("bandwidth checksum 42");
  g_free(bw);
}

/* --- generation ---------------------------------------------------------------------- */

/* Weight bytes one single-token decoding step reads: every layer tensor, the output layer
 * and one row of the token embedding (the whole embedding when it is also the output head). */
static guint64
bytes_per_token(const wh_model *model)
{
  const wh_model_hparams *hp = wh_model_get_hparams(model);
  guint64 b = hp->output_bytes;
  for (guint32 l = 0; l < hp->n_layer; l++)
    b += hp->layer_bytes[l];
  if (hp->tied_output)
    b += hp->embd_bytes;
  else
    b += hp->embd_bytes / MAX(hp->n_vocab, 1);
  return b;
}

typedef struct {
  double pp[64], tg[64]; /* tokens/s per repetition */
  double bw[64];         /* bytes/s, best of two bandwidth passes right before repetition r */
} gen_times;

static gint32
argmax(const float *v, guint32 n)
{
  guint32 best = 0;
  for (guint32 i = 1; i < n; i++)
    if (v[i] > v[best])
      best = i;
  return (gint32)best;
}

/* Prompt: @n_prompt tokens in one decode call from an empty cache. Generation: @n_gen
 * single-token decodes from an empty cache, each fed the previous step's argmax. Once
 * untimed first (page faults of the mapping, thread start-up), then @reps timed runs. */
static gboolean
run_generation(wh_model *model, wh_context *ctx, const gint32 *prompt, int n_prompt, int n_gen,
               int reps, bw_bench *bw, gen_times *out, GError **error)
{
  const guint32 n_vocab = wh_model_n_vocab(model);
  for (int r = -1; r < reps; r++) {
    if (n_prompt > 0) {
      wh_context_clear(ctx);
      gint64 t0 = g_get_monotonic_time();
      if (!wh_context_decode(ctx, prompt, (guint32)n_prompt, FALSE, error))
        return FALSE;
      gint64 t1 = g_get_monotonic_time();
      if (r >= 0)
        out->pp[r] = n_prompt / ((double)MAX(t1 - t0, 1) * 1e-6);
    }
    if (n_gen > 0) {
      wh_context_clear(ctx);
      if (r >= 0 && bw) {
        /* the machine's read bandwidth right now, best of two passes (the model's workers
         * sleep first: they spin for a while after a run) */
        g_usleep(2000);
        out->bw[r] = MAX(bw_bench_pass(bw), bw_bench_pass(bw));
      }
      gint32 tok = prompt[0];
      gint64 t0 = g_get_monotonic_time();
      for (int i = 0; i < (r < 0 ? 1 : n_gen); i++) {
        const float *logits = wh_context_decode(ctx, &tok, 1, FALSE, error);
        if (!logits)
          return FALSE;
        tok = argmax(logits, n_vocab);
      }
      gint64 t1 = g_get_monotonic_time();
      if (r >= 0)
        out->tg[r] = n_gen / ((double)MAX(t1 - t0, 1) * 1e-6);
    }
  }
  return TRUE;
}

static void
json_member_double(JsonBuilder *b, const char *name, double v)
{
  json_builder_set_member_name(b, name);
  json_builder_add_double_value(b, isfinite(v) ? v : 0.0);
}

static void
json_member_int(JsonBuilder *b, const char *name, gint64 v)
{
  json_builder_set_member_name(b, name);
  json_builder_add_int_value(b, v);
}

static void
json_member_string(JsonBuilder *b, const char *name, const char *v)
{
  json_builder_set_member_name(b, name);
  json_builder_add_string_value(b, v);
}

static int
bench_generate(int argc, char **argv)
{
  const wh_cli_command *cmd = &wh_cli_command_bench;
  g_autofree char *model_path = NULL;
  int n_prompt = 512, n_gen = 128, n_threads = 0, reps = 3, bw_mib = 1024, bw_runs = 5;
  gint64 seed = 1;
  gboolean json = FALSE;
  g_autofree char *kv_name = NULL;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "GGUF model file", "MODEL"},
      {"n-prompt", 'p', 0, G_OPTION_ARG_INT, &n_prompt, "Prompt tokens (default 512, 0 = skip)",
       "N"},
      {"n-gen", 'n', 0, G_OPTION_ARG_INT, &n_gen, "Generated tokens (default 128, 0 = skip)", "N"},
      {"threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "Compute threads (default: all cores)",
       "N"},
      {"repetitions", 'r', 0, G_OPTION_ARG_INT, &reps, "Timed repetitions (default 3)", "N"},
      {"kv-type", 0, 0, G_OPTION_ARG_STRING, &kv_name, "KV cache type (default f16)", "TYPE"},
      {"bandwidth-mib", 0, 0, G_OPTION_ARG_INT, &bw_mib,
       "Buffer size of the bandwidth test in MiB (default 1024)", "N"},
      {"bandwidth-runs", 0, 0, G_OPTION_ARG_INT, &bw_runs,
       "Passes of the bandwidth test, the best counts (default 5)", "N"},
      {"seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of the random prompt tokens", "N"},
      {"json", 0, 0, G_OPTION_ARG_NONE, &json, "One JSON object on stdout", NULL},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument '%s'", argv[1]);
  if (!model_path)
    return wh_cli_usage_error(cmd, "-m MODEL is required");
  if (n_prompt < 0 || n_gen < 0 || (n_prompt == 0 && n_gen == 0))
    return wh_cli_usage_error(cmd, "-p and -n must be >= 0 and not both 0");
  if (n_prompt > 65536 || n_gen > 65536)
    return wh_cli_usage_error(cmd, "-p and -n must be at most 65536");
  if (reps < 1 || reps > (int)G_N_ELEMENTS(((gen_times *)NULL)->pp))
    return wh_cli_usage_error(cmd, "-r must be between 1 and 64");
  if (n_threads < 0 || n_threads > 256)
    return wh_cli_usage_error(cmd, "-t must be between 1 and 256");
  if (bw_mib < 1 || bw_mib > 16384 || bw_runs < 1 || bw_runs > 100)
    return wh_cli_usage_error(cmd, "--bandwidth-mib must be 1..16384 and --bandwidth-runs 1..100");
  wh_context_params cp = wh_context_default_params();
  if (kv_name && !wh_kv_type_from_name(kv_name, &cp.kv_type))
    return wh_cli_usage_error(cmd, "--kv-type: unknown type '%s' (f16, q8_0, q4_0, f32)", kv_name);

  GError *error = NULL;
  wh_model_params mp = wh_model_default_params();
  mp.n_threads = n_threads;
  wh_model *model = wh_model_load(model_path, &mp, &error);
  wh_context *ctx = NULL;
  gen_times times = {{0}, {0}, {0}};
  gint32 *prompt = NULL;
  bw_bench *bw_run = NULL;
  if (model) {
    if (n_threads == 0)
      n_threads = wh_model_default_threads(model);
    cp.n_threads = n_threads;
    cp.n_ctx = (guint32)(MAX(n_prompt, n_gen) + 1);
    cp.n_batch = (guint32)MAX(n_prompt, 1);
    ctx = wh_context_new(model, &cp, &error);
  }
  if (ctx) {
    /* BOS, then tokens drawn uniformly from the vocabulary */
    const wh_model_hparams *hp = wh_model_get_hparams(model);
    GRand *rand = g_rand_new_with_seed((guint32)seed);
    prompt = g_new(gint32, MAX(n_prompt, 1));
    for (int i = 0; i < MAX(n_prompt, 1); i++)
      prompt[i] = (gint32)g_rand_int_range(rand, 0, (gint32)hp->n_vocab);
    if (hp->bos_id < hp->n_vocab)
      prompt[0] = (gint32)hp->bos_id;
    g_rand_free(rand);
  }
  if (ctx && n_gen > 0)
    bw_run = bw_bench_new(n_threads, (guint)bw_mib);
  if (!ctx || !run_generation(model, ctx, prompt, n_prompt, n_gen, reps, bw_run, &times, &error)) {
    int rc = wh_cli_fail(cmd, error);
    g_error_free(error);
    bw_bench_free(bw_run);
    g_free(prompt);
    wh_context_free(ctx);
    wh_model_free(model);
    return rc;
  }
  g_free(prompt);
  wh_context_free(ctx);

  const wh_model_hparams *hp = wh_model_get_hparams(model);
  const guint64 bpt = bytes_per_token(model);
  /* the roofline bandwidth: best of --bandwidth-runs passes after the generation runs and of
   * the passes right before each repetition. Per repetition, generation as a percentage of the
   * pass right before it: a VM's bandwidth can swing by half between runs, so the median of
   * these ratios is also printed (a second figure; the headline stays against the best pass). */
  if (!bw_run)
    bw_run = bw_bench_new(n_threads, (guint)bw_mib);
  double bw = 0, rep_pct[64] = {0};
  for (int i = 0; i < bw_runs; i++)
    bw = MAX(bw, bw_bench_pass(bw_run));
  bw_bench_free(bw_run);
  if (n_gen > 0)
    for (int r = 0; r < reps; r++) {
      bw = MAX(bw, times.bw[r]);
      rep_pct[r] = 100.0 * times.tg[r] * (double)bpt / MAX(times.bw[r], 1.0);
    }
  const double rep_pct_median = median_of(rep_pct, n_gen > 0 ? (guint)reps : 0);
  const double pp = mean_of(times.pp, (guint)reps), pp_sd = stddev_of(times.pp, (guint)reps);
  const double tg = mean_of(times.tg, (guint)reps), tg_sd = stddev_of(times.tg, (guint)reps);
  const double roof = bw / (double)MAX(bpt, 1);
  guint64 ftype = G_MAXUINT32;
  wh_gguf_get_uint(wh_model_get_gguf(model), "general.file_type", &ftype);
  const char *ftype_name = ftype < G_MAXUINT32 && wh_ftype_name((guint32)ftype)
                               ? wh_ftype_name((guint32)ftype)
                               : "unknown";
  const double load = load_average();

  if (json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_member_string(b, "model", model_path);
    json_member_string(b, "architecture", hp->arch_name);
    json_member_string(b, "file_type", ftype_name);
    json_member_int(b, "weight_bytes", (gint64)hp->weight_bytes);
    json_member_int(b, "threads", n_threads);
    json_member_int(b, "repetitions", reps);
    json_member_int(b, "prompt_tokens", n_prompt);
    json_member_double(b, "prompt_tokens_per_s", pp);
    json_member_double(b, "prompt_tokens_per_s_stddev", pp_sd);
    json_member_int(b, "gen_tokens", n_gen);
    json_member_double(b, "gen_tokens_per_s", tg);
    json_member_double(b, "gen_tokens_per_s_stddev", tg_sd);
    json_member_int(b, "bytes_per_token", (gint64)bpt);
    json_member_double(b, "memory_bandwidth_bytes_per_s", bw);
    json_member_double(b, "roofline_tokens_per_s", roof);
    json_member_double(b, "roofline_percent", n_gen > 0 ? 100.0 * tg / roof : 0.0);
    json_member_double(b, "roofline_percent_per_rep_median", rep_pct_median);
    json_member_double(b, "load_average", load);
    json_builder_end_object(b);
    wh_cli_print_json_builder(b);
  } else {
    printf("model:       %s (%s, %s, %.1f MB of weights)\n", model_path, hp->arch_name, ftype_name,
           hp->weight_bytes / 1e6);
    printf("threads:     %d; %d timed repetitions; load average %.2f\n", n_threads, reps, load);
    if (n_prompt > 0)
      printf("prompt:      %d tokens: %.2f ± %.2f tokens/s\n", n_prompt, pp, pp_sd);
    if (n_gen > 0)
      printf("generation:  %d tokens: %.2f ± %.2f tokens/s\n", n_gen, tg, tg_sd);
    printf("weights read per generated token: %.2f MB\n", bpt / 1e6);
    printf("memory read bandwidth: %.2f GB/s (%d threads, best of %d passes over %d MiB)\n",
           bw / 1e9, n_threads, bw_runs + (n_gen > 0 ? 2 * reps : 0), bw_mib);
    printf("roofline:    %.2f tokens/s", roof);
    if (n_gen > 0)
      printf("; generation runs at %.1f%% of it", 100.0 * tg / roof);
    printf("\n");
    if (n_gen > 0) {
      printf("per repetition, against a bandwidth pass right before it:");
      for (int r = 0; r < reps; r++)
        printf(" %.1f%% (%.2f GB/s)", rep_pct[r], times.bw[r] / 1e9);
      printf("; median %.1f%%\n", rep_pct_median);
    }
  }
  wh_model_free(model);
  return WH_CLI_EXIT_OK;
}

/* --- quantization -------------------------------------------------------------------- */

/* Runs `whittle-cli synth` into @path: a random F16 llama model of the given size. */
static gboolean
synthesize(const char *path, const char *vocab, int n_embd, int n_layer, int n_ff, GError **error)
{
  g_autofree char *e = g_strdup_printf("%d", n_embd), *l = g_strdup_printf("%d", n_layer);
  g_autofree char *f = g_strdup_printf("%d", n_ff), *h = g_strdup_printf("%d", MAX(n_embd / 64, 1));
  char *args[] = {
      "synth", "-q",       "--vocab", (char *)vocab, "--n-embd", e,    "--n-layer",  l,   "--n-ff",
      f,       "--n-head", h,         "--n-head-kv", h,          "-o", (char *)path, NULL};
  int argc = G_N_ELEMENTS(args) - 1;
  char **argv = g_memdup2(args, sizeof args);
  int rc = wh_cli_command_synth.run(argc, argv);
  g_free(argv);
  if (rc != WH_CLI_EXIT_OK) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "could not synthesize a model in %s", path);
    return FALSE;
  }
  return TRUE;
}

typedef struct {
  char type[32];
  int threads;
  double seconds, mb_per_s;
  guint64 input_bytes, output_bytes;
} quant_result;

static int
bench_quantize(int argc, char **argv)
{
  const wh_cli_command *cmd = &bench_quantize_cmd;
  g_autofree char *model_path = NULL, *types = NULL, *threads = NULL, *vocab = NULL;
  g_autofree char *imatrix = NULL;
  gboolean json = FALSE, synth = FALSE;
  int n_embd = 2048, n_layer = 4, n_ff = 5632;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "F16 (or F32/BF16) GGUF model",
       "F16.gguf"},
      {"synth", 0, 0, G_OPTION_ARG_NONE, &synth, "Generate a random F16 llama model to quantize",
       NULL},
      {"vocab", 0, 0, G_OPTION_ARG_FILENAME, &vocab,
       "With --synth: GGUF to take the vocabulary from", "FILE"},
      {"n-embd", 0, 0, G_OPTION_ARG_INT, &n_embd, "With --synth: embedding length (2048)", "N"},
      {"n-layer", 0, 0, G_OPTION_ARG_INT, &n_layer, "With --synth: layers (4)", "N"},
      {"n-ff", 0, 0, G_OPTION_ARG_INT, &n_ff, "With --synth: feed-forward length (5632)", "N"},
      {"types", 0, 0, G_OPTION_ARG_STRING, &types,
       "Comma-separated ftypes (default Q8_0,Q4_0,Q4_K_M,IQ4_XS)", "LIST"},
      {"threads", 't', 0, G_OPTION_ARG_STRING, &threads, "Comma-separated thread counts (1,2)",
       "LIST"},
      {"imatrix", 0, 0, G_OPTION_ARG_FILENAME, &imatrix, "Importance matrix for every run", "FILE"},
      {"json", 0, 0, G_OPTION_ARG_NONE, &json, "One JSON object on stdout", NULL},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument '%s'", argv[1]);
  if ((model_path != NULL) == synth)
    return wh_cli_usage_error(cmd, "give either -m F16.gguf or --synth");
  if (synth && !vocab)
    return wh_cli_usage_error(cmd, "--synth needs --vocab FILE (any GGUF with a vocabulary)");
  if (n_embd < 64 || n_embd % 64 != 0 || n_layer < 1 || n_ff < 1)
    return wh_cli_usage_error(cmd, "--n-embd must be a multiple of 64; sizes must be positive");
  g_auto(GStrv) type_list = g_strsplit(types ? types : "Q8_0,Q4_0,Q4_K_M,IQ4_XS", ",", -1);
  for (int i = 0; type_list[i]; i++)
    if (wh_ftype_from_name(g_strstrip(type_list[i])) < 0)
      return wh_cli_usage_error(cmd, "--types: unknown ftype '%s'", type_list[i]);
  g_autoptr(GArray) thread_list = g_array_new(FALSE, FALSE, sizeof(int));
  if (!parse_int_list(threads ? threads : "1,2", thread_list))
    return wh_cli_usage_error(cmd, "-t: a comma-separated list of thread counts (1..256)");

  GError *error = NULL;
  g_autofree char *dir = g_dir_make_tmp("whittle-bench-XXXXXX", &error);
  g_autofree char *input = NULL, *output = NULL;
  g_autoptr(GArray) results = g_array_new(FALSE, TRUE, sizeof(quant_result));
  gboolean ok = dir != NULL;
  if (ok) {
    output = g_build_filename(dir, "out.gguf", NULL);
    input = synth ? g_build_filename(dir, "synth-F16.gguf", NULL) : g_strdup(model_path);
    if (synth)
      ok = synthesize(input, vocab, n_embd, n_layer, n_ff, &error);
  }
  for (int i = 0; ok && type_list[i]; i++) {
    for (guint k = 0; ok && k < thread_list->len; k++) {
      wh_quantize_params qp = wh_quantize_default_params();
      qp.ftype = wh_ftype_from_name(type_list[i]);
      qp.n_threads = (guint)g_array_index(thread_list, int, k);
      qp.imatrix_path = imatrix;
      wh_quantize_result res;
      ok = wh_quantize_file(input, output, &qp, &res, &error);
      g_unlink(output);
      if (!ok)
        break;
      quant_result q = {{0},
                        (int)qp.n_threads,
                        res.seconds,
                        res.input_size / 1e6 / MAX(res.seconds, 1e-9),
                        res.input_size,
                        res.output_size};
      g_strlcpy(q.type, type_list[i], sizeof q.type);
      g_array_append_val(results, q);
      if (!json)
        fprintf(stderr, "%s, %d threads: %.2f s\n", q.type, q.threads, q.seconds);
    }
  }
  if (synth && input)
    g_unlink(input);
  if (dir)
    g_rmdir(dir);
  if (!ok) {
    int rc = wh_cli_fail(cmd, error);
    g_error_free(error);
    return rc;
  }

  const double load = load_average();
  if (json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_member_string(b, "model", synth ? "synthetic" : model_path);
    json_member_string(b, "imatrix", imatrix ? imatrix : "");
    json_member_double(b, "load_average", load);
    json_builder_set_member_name(b, "results");
    json_builder_begin_array(b);
    for (guint i = 0; i < results->len; i++) {
      const quant_result *q = &g_array_index(results, quant_result, i);
      json_builder_begin_object(b);
      json_member_string(b, "type", q->type);
      json_member_int(b, "threads", q->threads);
      json_member_int(b, "input_bytes", (gint64)q->input_bytes);
      json_member_int(b, "output_bytes", (gint64)q->output_bytes);
      json_member_double(b, "seconds", q->seconds);
      json_member_double(b, "mb_per_s", q->mb_per_s);
      json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    wh_cli_print_json_builder(b);
  } else {
    printf("input: %s, %.1f MB; imatrix: %s; load average %.2f\n",
           synth ? "synthetic F16 llama" : model_path,
           results->len ? g_array_index(results, quant_result, 0).input_bytes / 1e6 : 0.0,
           imatrix ? imatrix : "none", load);
    printf("%-8s %7s %9s %10s\n", "type", "threads", "seconds", "MB/s");
    for (guint i = 0; i < results->len; i++) {
      const quant_result *q = &g_array_index(results, quant_result, i);
      printf("%-8s %7d %9.2f %10.1f\n", q->type, q->threads, q->seconds, q->mb_per_s);
    }
  }
  return WH_CLI_EXIT_OK;
}

/* --- dot kernels --------------------------------------------------------------------- */

/* `bench kernels`: GB/s of weight bytes through the dot kernels a decode matmul uses, the way
 * it uses them: rows of -k elements against one activation row, the rows split between the
 * threads in contiguous parts. "warm" reads a few hundred KiB of rows again and again (they
 * stay in L2: the kernel's compute ceiling); "stream" reads a buffer far larger than the last-level
 * cache once per pass (DRAM, as in decoding). Path "row" calls wh_quant_vec_dot_resolve()'s
 * kernel per row, "rows" the multi-row kernel (wh_quant_vec_dot_rows_resolve()) where there is
 * one — the one the matmul uses. Best of --runs timed passes each. */
typedef struct {
  wh_type type;
  const guint8 *w;
  gsize row_bytes;
  gint64 nrows, k;
  const guint8 *act;
  wh_quant_vec_dot_fn fn;
  wh_quant_vec_dot_rows_fn rows_fn;
  float *out;
  int passes;
  gboolean read_only; /* a plain read of the same rows (read_sum) instead of the dots */
  guint64 sink[256];
} kern_job;

static void
kern_worker(int ith, int nth, void *data)
{
  kern_job *j = data;
  gsize b, e;
  wh_threadpool_split((gsize)j->nrows, ith, nth, &b, &e);
  if (j->read_only) {
    const guint64 *p = (const guint64 *)(j->w + b * j->row_bytes);
    const gsize n = (e - b) * j->row_bytes / 8;
#ifdef BENCH_X86
    if (__builtin_cpu_supports("avx2")) {
      j->sink[ith] ^= read_sum_avx2(p, n);
      return;
    }
#endif
    j->sink[ith] ^= read_sum_portable(p, n);
    return;
  }
  for (int p = 0; p < j->passes; p++) {
    if (j->rows_fn) {
      j->rows_fn(j->w + b * j->row_bytes, j->row_bytes, j->act, j->k, j->out + b, (gint64)(e - b));
      continue;
    }
    for (gsize r = b; r < e; r++)
      j->out[r] = j->fn ? j->fn(j->w + r * j->row_bytes, j->act, j->k)
                        : wh_quant_vec_dot(j->type, j->w + r * j->row_bytes, j->act, j->k);
  }
}

typedef struct {
  const char *type, *mode, *path;
  int threads;
  double gb_per_s;
  double read_gb_per_s; /* stream: best plain read of the same rows; 0 for warm */
  double read_percent;  /* stream: median over runs of kernel / read right before it */
} kern_result;

/* Times @runs passes of @job on @pool (after one untimed pass) into @res: the best GB/s. With
 * @with_read, every run first reads the same rows with a plain streaming read (the roofline of
 * this pass on this machine right now), and @res gets its best GB/s and the median ratio of
 * kernel to read per run: on a machine whose bandwidth swings between runs that ratio is
 * steadier than either figure. */
static void
kern_time(wh_threadpool *pool, kern_job *job, int runs, gboolean with_read, kern_result *res)
{
  double ratios[100];
  const double bytes = (double)job->row_bytes * (double)job->nrows * job->passes;
  wh_threadpool_run(pool, kern_worker, job);
  res->gb_per_s = res->read_gb_per_s = res->read_percent = 0;
  for (int r = 0; r < runs; r++) {
    double read = 0;
    if (with_read) {
      job->read_only = TRUE;
      gint64 t0 = g_get_monotonic_time();
      wh_threadpool_run(pool, kern_worker, job);
      gint64 t1 = g_get_monotonic_time();
      job->read_only = FALSE;
      read = (double)job->row_bytes * (double)job->nrows / ((double)MAX(t1 - t0, 1) * 1e-6) / 1e9;
      res->read_gb_per_s = MAX(res->read_gb_per_s, read);
    }
    gint64 t0 = g_get_monotonic_time();
    wh_threadpool_run(pool, kern_worker, job);
    gint64 t1 = g_get_monotonic_time();
    const double gbs = bytes / ((double)MAX(t1 - t0, 1) * 1e-6) / 1e9;
    res->gb_per_s = MAX(res->gb_per_s, gbs);
    ratios[r] = with_read ? 100.0 * gbs / MAX(read, 1e-9) : 0;
  }
  res->read_percent = median_of(ratios, (guint)runs);
}

static const wh_cli_command bench_kernels_cmd = {
    .name = "bench kernels",
    .summary = "Measure the dot-product kernels",
    .usage = "[--types Q4_K,Q6_K,Q8_0,Q4_0] [-k 2048] [-t 1,2] [--stream-mib 512] [--runs 5] "
             "[--json]",
    .description = "GB/s of weight bytes through each dot kernel of a decode matmul (see "
                   "whittle-cli help bench).",
    .run = NULL,
};

static int
bench_kernels(int argc, char **argv)
{
  const wh_cli_command *cmd = &bench_kernels_cmd;
  g_autofree char *types = NULL, *threads = NULL;
  int k = 2048, stream_mib = 512, runs = 5;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
      {"types", 0, 0, G_OPTION_ARG_STRING, &types,
       "Comma-separated weight types (default Q4_K,Q6_K,Q8_0,Q4_0)", "LIST"},
      {"row", 'k', 0, G_OPTION_ARG_INT, &k, "Elements per row (default 2048)", "N"},
      {"threads", 't', 0, G_OPTION_ARG_STRING, &threads, "Comma-separated thread counts (1,2)",
       "LIST"},
      {"stream-mib", 0, 0, G_OPTION_ARG_INT, &stream_mib,
       "Rows of the streaming test in MiB (default 512)", "N"},
      {"runs", 0, 0, G_OPTION_ARG_INT, &runs, "Timed passes, the best counts (default 5)", "N"},
      {"json", 0, 0, G_OPTION_ARG_NONE, &json, "One JSON object on stdout", NULL},
      {NULL},
  };
  if (!wh_cli_parse_options(cmd, entries, &argc, &argv))
    return WH_CLI_EXIT_USAGE;
  if (argc > 1)
    return wh_cli_usage_error(cmd, "unexpected argument '%s'", argv[1]);
  if (k < 256 || k % 256 != 0 || k > 65536)
    return wh_cli_usage_error(cmd, "-k must be a multiple of 256 between 256 and 65536");
  if (stream_mib < 64 || stream_mib > 16384 || runs < 1 || runs > 100)
    return wh_cli_usage_error(cmd, "--stream-mib must be 64..16384 and --runs 1..100");
  g_autoptr(GArray) thread_list = g_array_new(FALSE, FALSE, sizeof(int));
  if (!parse_int_list(threads ? threads : "1,2", thread_list))
    return wh_cli_usage_error(cmd, "-t: expected a comma-separated list of thread counts");
  g_auto(GStrv) type_names = g_strsplit(types ? types : "Q4_K,Q6_K,Q8_0,Q4_0", ",", -1);
  GArray *type_list = g_array_new(FALSE, FALSE, sizeof(wh_type));
  for (int i = 0; type_names[i]; i++) {
    wh_type t = wh_type_from_name(g_strstrip(type_names[i]));
    if (t == WH_TYPE_INVALID || wh_quant_vec_dot_type(t) == (wh_type)-1 ||
        !wh_quant_type_can_quantize(t) || wh_quant_type_requires_imatrix(t)) {
      g_array_unref(type_list);
      return wh_cli_usage_error(cmd,
                                "--types: '%s' is not a weight type with a dot product and "
                                "a quantizer (e.g. Q4_K, Q6_K, Q8_0, Q4_0)",
                                type_names[i]);
    }
    g_array_append_val(type_list, t);
  }

  GArray *results = g_array_new(FALSE, FALSE, sizeof(kern_result));
  GRand *rand = g_rand_new_with_seed(7);
  float *src = g_new(float, (gsize)k * 64);
  float *a = g_new(float, k);
  for (gsize i = 0; i < (gsize)k * 64; i++)
    src[i] = (float)g_rand_double_range(rand, -1.0, 1.0);
  for (int i = 0; i < k; i++)
    a[i] = (float)g_rand_double_range(rand, -1.0, 1.0);
  for (guint ti = 0; ti < type_list->len; ti++) {
    const wh_type type = g_array_index(type_list, wh_type, ti);
    const wh_type at = wh_quant_vec_dot_type(type);
    const gsize row_bytes = wh_quant_row_bytes(type, k);
    /* 64 distinct quantized rows, tiled over the warm and the streaming buffers */
    guint8 *tile = g_malloc(row_bytes * 64);
    wh_quant_quantize_rows(type, src, tile, 64, k, NULL, NULL);
    guint8 *act = g_malloc(MAX(wh_quant_row_bytes(at, k), (gsize)k * sizeof(float)));
    wh_quant_quantize_activations(at, a, act, k);
    const gint64 warm_rows = MAX((gint64)8, ((gint64)384 << 10) / (gint64)row_bytes);
    const gint64 stream_rows = ((gint64)stream_mib << 20) / (gint64)row_bytes;
    guint8 *w = g_aligned_alloc((gsize)stream_rows, row_bytes, 64);
    for (gint64 r = 0; r < stream_rows; r++)
      memcpy(w + r * row_bytes, tile + (r % 64) * row_bytes, row_bytes);
    float *out = g_new(float, stream_rows);
    for (guint hi = 0; hi < thread_list->len; hi++) {
      const int nth = g_array_index(thread_list, int, hi);
      wh_threadpool *pool = wh_threadpool_new(nth);
      for (int path = 0; path < 2; path++) {
        /* no resolved kernel: the matmul calls wh_quant_vec_dot(), so does the "row" path */
        kern_job job = {type, w,   row_bytes, 0,     k,  act, wh_quant_vec_dot_resolve(type),
                        NULL, out, 1,         FALSE, {0}};
        if (path == 1) {
          job.rows_fn = wh_quant_vec_dot_rows_resolve(type);
          if (!job.rows_fn)
            continue;
        }
        for (int mode = 0; mode < 2; mode++) {
          job.nrows = mode == 0 ? warm_rows : stream_rows;
          /* warm: ~128 MiB per timed run */
          job.passes =
              mode == 0 ? (int)MAX((gint64)1, ((gint64)128 << 20) / (warm_rows * (gint64)row_bytes))
                        : 1;
          kern_result res = {wh_type_name(type),
                             mode == 0 ? "warm" : "stream",
                             path == 0 ? "row" : "rows",
                             nth,
                             0,
                             0,
                             0};
          kern_time(pool, &job, runs, mode == 1, &res);
          g_array_append_val(results, res);
        }
      }
      wh_threadpool_free(pool);
    }
    g_free(out);
    g_aligned_free(w);
    g_free(act);
    g_free(tile);
  }
  g_rand_free(rand);
  g_free(src);
  g_free(a);
  g_array_unref(type_list);

  if (json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_member_int(b, "row_elements", k);
    json_member_int(b, "stream_mib", stream_mib);
    json_member_double(b, "load_average", load_average());
    json_builder_set_member_name(b, "kernels");
    json_builder_begin_array(b);
    for (guint i = 0; i < results->len; i++) {
      const kern_result *r = &g_array_index(results, kern_result, i);
      json_builder_begin_object(b);
      json_member_string(b, "type", r->type);
      json_member_string(b, "mode", r->mode);
      json_member_string(b, "path", r->path);
      json_member_int(b, "threads", r->threads);
      json_member_double(b, "gb_per_s", r->gb_per_s);
      if (r->read_gb_per_s > 0) {
        json_member_double(b, "read_gb_per_s", r->read_gb_per_s);
        json_member_double(b, "read_percent_median", r->read_percent);
      }
      json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    wh_cli_print_json_builder(b);
  } else {
    printf("dot kernels: rows of %d elements against one activation row; warm = ~384 KiB of rows "
           "(L2), stream = %d MiB (DRAM); load average %.2f\n",
           k, stream_mib, load_average());
    printf("%-8s %4s %7s %-6s %8s %10s %14s\n", "type", "path", "threads", "mode", "GB/s",
           "read GB/s", "% of read (med)");
    for (guint i = 0; i < results->len; i++) {
      const kern_result *r = &g_array_index(results, kern_result, i);
      printf("%-8s %4s %7d %-6s %8.2f", r->type, r->path, r->threads, r->mode, r->gb_per_s);
      if (r->read_gb_per_s > 0)
        printf(" %10.2f %14.1f", r->read_gb_per_s, r->read_percent);
      printf("\n");
    }
  }
  g_array_unref(results);
  return WH_CLI_EXIT_OK;
}

static int
run_bench(int argc, char **argv)
{
  if (argc > 1 && strcmp(argv[1], "quantize") == 0)
    return bench_quantize(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "kernels") == 0)
    return bench_kernels(argc - 1, argv + 1);
  return bench_generate(argc, argv);
}
