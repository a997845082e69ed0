/* fuzz-main.c — a small mutation driver for the fuzz targets.
 *
 * Replays every seed, then for WH_FUZZ_SECONDS (default 20) picks a seed,
 * applies a few random mutations (bit flips, interesting integers at random
 * offsets, truncation, duplication of a slice) and runs the target on it.
 * The PRNG seed is printed (and can be forced with WH_FUZZ_SEED) so a crash
 * reproduces. Under ASan a crash aborts the test; the failing input is also
 * written to fuzz-crash-<target>.bin in the working directory first.
 */
#include "fuzz-main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const guint64 interesting[] = {
  0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000,
  0x7fffffff, 0x80000000u, 0xffffffffu, G_GUINT64_CONSTANT(0x100000000),
  G_GUINT64_CONSTANT(0x7fffffffffffffff), G_GUINT64_CONSTANT(0xffffffffffffffff),
};

static GByteArray *
mutate(GRand *rng, GBytes *seed)
{
  gsize n;
  const guint8 *src = g_bytes_get_data(seed, &n);
  GByteArray *buf = g_byte_array_sized_new(n + 64);
  g_byte_array_append(buf, src, n);

  int rounds = g_rand_int_range(rng, 1, 6);
  for (int r = 0; r < rounds; r++) {
    guint len = buf->len;
    switch (g_rand_int_range(rng, 0, 6)) {
    case 0: /* flip a bit */
      if (len)
        buf->data[g_rand_int_range(rng, 0, len)] ^= 1u << g_rand_int_range(rng, 0, 8);
      break;
    case 1: /* random byte */
      if (len)
        buf->data[g_rand_int_range(rng, 0, len)] = g_rand_int_range(rng, 0, 256);
      break;
    case 2: { /* interesting little-endian integer of width 1/2/4/8 */
      guint w = 1u << g_rand_int_range(rng, 0, 4);
      if (len >= w) {
        guint64 v = interesting[g_rand_int_range(rng, 0, G_N_ELEMENTS(interesting))];
        guint off = g_rand_int_range(rng, 0, len - w + 1);
        for (guint i = 0; i < w; i++)
          buf->data[off + i] = (v >> (8 * i)) & 0xff;
      }
      break;
    }
    case 3: /* truncate */
      if (len)
        g_byte_array_set_size(buf, g_rand_int_range(rng, 0, len));
      break;
    case 4: /* duplicate a slice at the end */
      if (len) {
        guint off = g_rand_int_range(rng, 0, len);
        /* MIN() evaluates its arguments twice: draw once. */
        guint want = (guint)g_rand_int_range(rng, 1, 64);
        guint cnt = MIN(len - off, want);
        guint8 *tmp = g_memdup2(buf->data + off, cnt);
        g_byte_array_append(buf, tmp, cnt);
        g_free(tmp);
      }
      break;
    default: /* overwrite a byte near the start, where headers live */
      if (len)
        buf->data[g_rand_int_range(rng, 0, MIN(len, 64u))] = g_rand_int_range(rng, 0, 256);
      break;
    }
  }
  return buf;
}

static const char *target_name = "target";
static const guint8 *current = NULL;
static gsize current_len = 0;

static void
save_current(void)
{
  if (!current)
    return;
  g_autofree char *name = g_strdup_printf("fuzz-crash-%s.bin", target_name);
  g_file_set_contents(name, (const char *)current, current_len, NULL);
}

static void
run_one(const guint8 *data, gsize len)
{
  current = data;
  current_len = len;
  LLVMFuzzerTestOneInput(data, len);
  current = NULL;
}

int
main(int argc, char **argv)
{
  const char *secs_env = g_getenv("WH_FUZZ_SECONDS");
  const char *seed_env = g_getenv("WH_FUZZ_SEED");
  double seconds = secs_env ? g_ascii_strtod(secs_env, NULL) : 20.0;
  guint32 seed = seed_env ? (guint32)g_ascii_strtoull(seed_env, NULL, 10)
                          : (guint32)g_get_real_time();
  g_autoptr(GPtrArray) seeds = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);

  target_name = g_path_get_basename(argv[0]);
  atexit(save_current);

  /* Files named on the command line are replayed instead (reproduction). */
  if (argc > 1) {
    for (int i = 1; i < argc; i++) {
      gchar *contents;
      gsize len;
      if (!g_file_get_contents(argv[i], &contents, &len, NULL)) {
        fprintf(stderr, "cannot read %s\n", argv[i]);
        return 1;
      }
      run_one((const guint8 *)contents, len);
      g_free(contents);
    }
    current = NULL;
    printf("replayed %d file(s)\n", argc - 1);
    return 0;
  }

  wh_fuzz_collect_seeds(seeds);
  g_ptr_array_add(seeds, g_bytes_new_static("", 0));
  for (guint i = 0; i < seeds->len; i++) {
    gsize n;
    const guint8 *d = g_bytes_get_data(seeds->pdata[i], &n);
    run_one(d, n);
  }

  GRand *rng = g_rand_new_with_seed(seed);
  gint64 end = g_get_monotonic_time() + (gint64)(seconds * G_USEC_PER_SEC);
  guint64 execs = 0;
  while (g_get_monotonic_time() < end) {
    GBytes *s = seeds->pdata[g_rand_int_range(rng, 0, seeds->len)];
    GByteArray *m = mutate(rng, s);
    run_one(m->data, m->len);
    g_byte_array_unref(m);
    execs++;
  }
  current = NULL;
  g_rand_free(rng);
  printf("%s: %u seeds, %" G_GUINT64_FORMAT " mutated runs in %.0f s, seed %u, no crash\n",
         target_name, seeds->len, execs, seconds, seed);
  return 0;
}
