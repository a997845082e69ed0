/* fuzz-devices.c — the device module's text inputs on arbitrary bytes: /proc/meminfo
 * parsing, and --device name matching (names, substrings, "api:index") on a fixed list. */
#include "config.h"

#include "backend/devices.h"
#include "fuzz-main.h"

#include <string.h>

static guint64 sink;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = g_strndup((const char *)data, size); /* stops at the first NUL */
  guint64 total = 1, avail = 1;
  wh_devices_read_meminfo(text, &total, &avail);
  sink += total + avail;

  wh_device_list *l = wh_device_list_new();
  static const char *names[] = {"CPU", "llvmpipe (LLVM 15.0.6, 256 bits)", "NVIDIA GeForce RTX",
                                "NVIDIA GeForce RTX 4090"};
  for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
    wh_device d = {.api = i == 0 ? WH_DEVICE_API_HOST : WH_DEVICE_API_VULKAN,
                   .kind = i == 0 ? WH_DEVICE_KIND_CPU : (wh_device_kind)(i + 1),
                   .index = i ? i - 1 : 0};
    g_strlcpy(d.name, names[i], sizeof(d.name));
    wh_device_list_add(l, &d);
  }
  GError *error = NULL;
  const wh_device *dev = wh_device_list_find_gpu(l, text, &error);
  if (dev) {
    g_assert_no_error(error);
    g_assert_true(wh_device_is_gpu(dev));
    sink += dev->index;
  } else if (text[0]) {
    g_assert_nonnull(error);
    g_assert_true(error->message[0] != '\0');
    g_error_free(error);
  }
  wh_device_list_free(l);
  g_free(text);
  return 0;
}

void
wh_fuzz_collect_seeds(GPtrArray *seeds)
{
  char *contents;
  gsize len;
  if (g_file_get_contents("/proc/meminfo", &contents, &len, NULL))
    g_ptr_array_add(seeds, g_bytes_new_take(contents, len));
  static const char *hand[] = {
      "MemTotal: 1024 kB\nMemAvailable: 512 kB\n",
      "MemTotal:18446744073709551615 kB\nMemAvailable:\n",
      "vulkan:2",
      "cuda:0",
      "rtx",
      "NVIDIA GeForce RTX",
      "llvmpipe",
  };
  for (guint i = 0; i < G_N_ELEMENTS(hand); i++)
    g_ptr_array_add(seeds, g_bytes_new_static(hand[i], strlen(hand[i])));
}
