/* devices.c — device enumeration (design note in devices.h).
 *
 * Vulkan and CUDA are reached through dlopen() so the engine neither links against them
 * nor needs them at run time: a missing library, a missing driver or any failing call just
 * means no device from that API.
 */
#include "config.h"

#include "backend/devices.h"

#include <dlfcn.h>
#include <string.h>

#ifdef WH_HAVE_VULKAN_H
#include <vulkan/vulkan.h>
#endif

G_DEFINE_QUARK(wh - devices - error - quark, wh_devices_error)

/* --- lists --------------------------------------------------------------------------- */

wh_device_list *
wh_device_list_new(void)
{
  return g_new0(wh_device_list, 1);
}

void
wh_device_list_add(wh_device_list *list, const wh_device *dev)
{
  list->devices = g_renew(wh_device, list->devices, list->n + 1);
  list->devices[list->n++] = *dev;
}

void
wh_device_list_free(wh_device_list *list)
{
  if (!list)
    return;
  g_free(list->devices);
  g_free(list);
}

const wh_device *
wh_device_list_cpu(const wh_device_list *list)
{
  for (guint i = 0; i < list->n; i++)
    if (list->devices[i].api == WH_DEVICE_API_HOST)
      return &list->devices[i];
  return NULL;
}

gboolean
wh_device_is_gpu(const wh_device *dev)
{
  return dev->kind != WH_DEVICE_KIND_CPU;
}

const char *
wh_device_kind_describe(wh_device_kind kind)
{
  switch (kind) {
  case WH_DEVICE_KIND_CPU:
    return "cpu";
  case WH_DEVICE_KIND_INTEGRATED_GPU:
    return "integrated GPU";
  case WH_DEVICE_KIND_DISCRETE_GPU:
    return "discrete GPU";
  case WH_DEVICE_KIND_VIRTUAL_GPU:
    return "virtual GPU";
  case WH_DEVICE_KIND_CPU_VULKAN:
    return "cpu-based Vulkan device";
  case WH_DEVICE_KIND_OTHER_GPU:
    return "GPU";
  }
  return "?";
}

const char *
wh_device_kind_json(wh_device_kind kind)
{
  return kind == WH_DEVICE_KIND_CPU ? "cpu" : "gpu";
}

const char *
wh_device_api_name(wh_device_api api)
{
  switch (api) {
  case WH_DEVICE_API_HOST:
    return "host";
  case WH_DEVICE_API_VULKAN:
    return "vulkan";
  case WH_DEVICE_API_CUDA:
    return "cuda";
  }
  return "?";
}

/* Preference when no name is given: discrete, integrated, then the rest. */
static int
gpu_rank(const wh_device *dev)
{
  switch (dev->kind) {
  case WH_DEVICE_KIND_DISCRETE_GPU:
    return 0;
  case WH_DEVICE_KIND_INTEGRATED_GPU:
    return 1;
  case WH_DEVICE_KIND_VIRTUAL_GPU:
  case WH_DEVICE_KIND_OTHER_GPU:
    return 2;
  case WH_DEVICE_KIND_CPU_VULKAN:
    return 3;
  case WH_DEVICE_KIND_CPU:
    break;
  }
  return 4;
}

static char *
list_gpus(const wh_device_list *list)
{
  GString *s = g_string_new(NULL);
  for (guint i = 0; i < list->n; i++) {
    const wh_device *d = &list->devices[i];
    if (wh_device_is_gpu(d))
      g_string_append_printf(s, "%s“%s” (%s:%u)", s->len ? ", " : "", d->name,
                             wh_device_api_name(d->api), d->index);
  }
  if (s->len == 0)
    g_string_append(s, "none");
  return g_string_free(s, FALSE);
}

const wh_device *
wh_device_list_find_gpu(const wh_device_list *list, const char *name, GError **error)
{
  const wh_device *best = NULL;
  if (!name || !*name) {
    for (guint i = 0; i < list->n; i++) {
      const wh_device *d = &list->devices[i];
      if (wh_device_is_gpu(d) && (!best || gpu_rank(d) < gpu_rank(best)))
        best = d;
    }
    return best;
  }
  /* "vulkan" / "cuda": the best device of that API */
  for (guint i = 0; i < list->n; i++) {
    const wh_device *d = &list->devices[i];
    if (wh_device_is_gpu(d) && g_ascii_strcasecmp(name, wh_device_api_name(d->api)) == 0 &&
        (!best || gpu_rank(d) < gpu_rank(best)))
      best = d;
  }
  if (best)
    return best;
  /* "vulkan:N" / "cuda:N" */
  const char *colon = strchr(name, ':');
  if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
    g_autofree char *api = g_strndup(name, colon - name);
    guint64 idx = g_ascii_strtoull(colon + 1, NULL, 10);
    for (guint i = 0; i < list->n; i++) {
      const wh_device *d = &list->devices[i];
      if (wh_device_is_gpu(d) && g_ascii_strcasecmp(api, wh_device_api_name(d->api)) == 0 &&
          d->index == idx)
        return d;
    }
  }
  g_autofree char *needle = g_utf8_casefold(name, -1);
  guint n_match = 0;
  for (guint i = 0; i < list->n; i++) {
    const wh_device *d = &list->devices[i];
    if (!wh_device_is_gpu(d))
      continue;
    g_autofree char *hay = g_utf8_casefold(d->name, -1);
    if (strcmp(hay, needle) == 0)
      return d;
    if (strstr(hay, needle)) {
      n_match++;
      best = best ? best : d;
    }
  }
  if (n_match == 1)
    return best;
  g_autofree char *all = list_gpus(list);
  if (n_match == 0)
    g_set_error(error, WH_DEVICES_ERROR, WH_DEVICES_ERROR_NOT_FOUND,
                "no GPU device is called “%s”; GPU devices here: %s", name, all);
  else
    g_set_error(error, WH_DEVICES_ERROR, WH_DEVICES_ERROR_AMBIGUOUS,
                "%u GPU devices match “%s”: %s; give more of the name or api:index", n_match, name,
                all);
  return NULL;
}

/* --- CPU ----------------------------------------------------------------------------- */

static guint64
meminfo_field(const char *text, const char *key)
{
  const char *line = text;
  const gsize klen = strlen(key);
  while (line && *line) {
    if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
      guint64 kib = g_ascii_strtoull(line + klen + 1, NULL, 10);
      return kib > G_MAXUINT64 / 1024 ? G_MAXUINT64 : kib * 1024; /* saturate nonsense */
    }
    line = strchr(line, '\n');
    line = line ? line + 1 : NULL;
  }
  return 0;
}

void
wh_devices_read_meminfo(const char *meminfo, guint64 *total, guint64 *available)
{
  g_autofree char *own = NULL;
  if (!meminfo && g_file_get_contents("/proc/meminfo", &own, NULL, NULL))
    meminfo = own;
  if (total)
    *total = meminfo ? meminfo_field(meminfo, "MemTotal") : 0;
  if (available)
    *available = meminfo ? meminfo_field(meminfo, "MemAvailable") : 0;
}

static void
add_cpu(wh_device_list *list)
{
  wh_device d = {.api = WH_DEVICE_API_HOST, .kind = WH_DEVICE_KIND_CPU, .unified = TRUE};
  g_strlcpy(d.name, "CPU", sizeof(d.name));
  wh_devices_read_meminfo(NULL, &d.total, &d.free);
  d.free_known = d.free > 0;
  if (!d.free_known)
    d.free = d.total;
  wh_device_list_add(list, &d);
}

/* --- Vulkan -------------------------------------------------------------------------- */

#ifdef WH_HAVE_VULKAN_H
static gboolean
has_extension(PFN_vkEnumerateDeviceExtensionProperties enum_ext, VkPhysicalDevice pd,
              const char *ext)
{
  uint32_t n = 0;
  if (enum_ext(pd, NULL, &n, NULL) != VK_SUCCESS || n == 0)
    return FALSE;
  g_autofree VkExtensionProperties *props = g_new0(VkExtensionProperties, n);
  if (enum_ext(pd, NULL, &n, props) != VK_SUCCESS)
    return FALSE;
  for (uint32_t i = 0; i < n; i++)
    if (strcmp(props[i].extensionName, ext) == 0)
      return TRUE;
  return FALSE;
}

static wh_device_kind
vk_kind(VkPhysicalDeviceType t)
{
  switch (t) {
  case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
    return WH_DEVICE_KIND_INTEGRATED_GPU;
  case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
    return WH_DEVICE_KIND_DISCRETE_GPU;
  case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
    return WH_DEVICE_KIND_VIRTUAL_GPU;
  case VK_PHYSICAL_DEVICE_TYPE_CPU:
    return WH_DEVICE_KIND_CPU_VULKAN;
  default:
    return WH_DEVICE_KIND_OTHER_GPU;
  }
}

/* One instance for the process, created on first use and never destroyed: the loader
 * unloads the drivers with the last instance, and a driver loaded again and again costs
 * time (and lavapipe leaks a little on each load). */
static VkInstance vk_inst;
static PFN_vkGetInstanceProcAddr vk_gipa;

static gpointer
vk_open(gpointer unused)
{
  void *lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return NULL;
  vk_gipa = (PFN_vkGetInstanceProcAddr)dlsym(lib, "vkGetInstanceProcAddr");
  PFN_vkCreateInstance create =
      vk_gipa ? (PFN_vkCreateInstance)vk_gipa(NULL, "vkCreateInstance") : NULL;
  VkApplicationInfo app = {
      .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
      .pApplicationName = "whittle",
      .apiVersion = VK_API_VERSION_1_1,
  };
  VkInstanceCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                              .pApplicationInfo = &app};
  if (!create || create(&ici, NULL, &vk_inst) != VK_SUCCESS) {
    dlclose(lib);
    return NULL;
  }
  return GINT_TO_POINTER(1);
}

static void
add_vulkan(wh_device_list *list)
{
  static GOnce once = G_ONCE_INIT;
  if (!g_once(&once, vk_open, NULL))
    return;
  VkInstance inst = vk_inst;
  PFN_vkGetInstanceProcAddr gipa = vk_gipa;
#define VK_FN(type, name) type name = (type)gipa(inst, #name)
  VK_FN(PFN_vkEnumeratePhysicalDevices, vkEnumeratePhysicalDevices);
  VK_FN(PFN_vkGetPhysicalDeviceProperties, vkGetPhysicalDeviceProperties);
  VK_FN(PFN_vkGetPhysicalDeviceMemoryProperties, vkGetPhysicalDeviceMemoryProperties);
  VK_FN(PFN_vkGetPhysicalDeviceMemoryProperties2, vkGetPhysicalDeviceMemoryProperties2);
  VK_FN(PFN_vkEnumerateDeviceExtensionProperties, vkEnumerateDeviceExtensionProperties);
#undef VK_FN
  uint32_t n = 0;
  if (vkEnumeratePhysicalDevices && vkGetPhysicalDeviceProperties &&
      vkGetPhysicalDeviceMemoryProperties && vkEnumerateDeviceExtensionProperties &&
      vkEnumeratePhysicalDevices(inst, &n, NULL) == VK_SUCCESS && n > 0) {
    g_autofree VkPhysicalDevice *pds = g_new0(VkPhysicalDevice, n);
    if (vkEnumeratePhysicalDevices(inst, &n, pds) != VK_SUCCESS)
      n = 0;
    for (uint32_t i = 0; i < n; i++) {
      VkPhysicalDeviceProperties props;
      vkGetPhysicalDeviceProperties(pds[i], &props);
      wh_device d = {.api = WH_DEVICE_API_VULKAN, .index = i, .kind = vk_kind(props.deviceType)};
      g_strlcpy(d.name, props.deviceName, sizeof(d.name));
      d.unified = d.kind == WH_DEVICE_KIND_INTEGRATED_GPU || d.kind == WH_DEVICE_KIND_CPU_VULKAN;

      VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {
          .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
      VkPhysicalDeviceMemoryProperties2 mp2 = {
          .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2};
      const gboolean use_budget = vkGetPhysicalDeviceMemoryProperties2 &&
                                  props.apiVersion >= VK_API_VERSION_1_1 &&
                                  has_extension(vkEnumerateDeviceExtensionProperties, pds[i],
                                                VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
      if (use_budget) {
        mp2.pNext = &budget;
        vkGetPhysicalDeviceMemoryProperties2(pds[i], &mp2);
      } else {
        vkGetPhysicalDeviceMemoryProperties(pds[i], &mp2.memoryProperties);
      }
      const VkPhysicalDeviceMemoryProperties *mp = &mp2.memoryProperties;
      for (uint32_t h = 0; h < mp->memoryHeapCount && h < VK_MAX_MEMORY_HEAPS; h++) {
        if (!(mp->memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT))
          continue;
        d.total += mp->memoryHeaps[h].size;
        if (use_budget)
          d.free += budget.heapBudget[h] > budget.heapUsage[h]
                        ? budget.heapBudget[h] - budget.heapUsage[h]
                        : 0;
      }
      d.free_known = use_budget;
      if (!use_budget)
        d.free = d.total;
      wh_device_list_add(list, &d);
    }
  }
}
#endif

/* --- CUDA ---------------------------------------------------------------------------- */

/* The few driver API entry points we use, declared by hand (no cuda.h needed). */
typedef int (*cu_init_fn)(unsigned int);
typedef int (*cu_count_fn)(int *);
typedef int (*cu_get_fn)(int *, int);
typedef int (*cu_name_fn)(char *, int, int);
typedef int (*cu_attr_fn)(int *, int, int);
typedef int (*cu_retain_fn)(void **, int);
typedef int (*cu_release_fn)(int);
typedef int (*cu_set_fn)(void *);
typedef int (*cu_meminfo_fn)(size_t *, size_t *);
typedef int (*cu_totalmem_fn)(size_t *, int);
#define WH_CU_ATTRIBUTE_INTEGRATED 18

static void
add_cuda(wh_device_list *list)
{
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return;
  cu_init_fn cu_init = (cu_init_fn)dlsym(lib, "cuInit");
  cu_count_fn count = (cu_count_fn)dlsym(lib, "cuDeviceGetCount");
  cu_get_fn get = (cu_get_fn)dlsym(lib, "cuDeviceGet");
  cu_name_fn get_name = (cu_name_fn)dlsym(lib, "cuDeviceGetName");
  cu_attr_fn attr = (cu_attr_fn)dlsym(lib, "cuDeviceGetAttribute");
  cu_totalmem_fn totalmem = (cu_totalmem_fn)dlsym(lib, "cuDeviceTotalMem_v2");
  cu_retain_fn retain = (cu_retain_fn)dlsym(lib, "cuDevicePrimaryCtxRetain");
  cu_release_fn release = (cu_release_fn)dlsym(lib, "cuDevicePrimaryCtxRelease_v2");
  cu_set_fn set_current = (cu_set_fn)dlsym(lib, "cuCtxSetCurrent");
  cu_meminfo_fn meminfo = (cu_meminfo_fn)dlsym(lib, "cuMemGetInfo_v2");
  int n = 0;
  if (!cu_init || !count || !get || !get_name || !totalmem || cu_init(0) != 0 || count(&n) != 0) {
    dlclose(lib);
    return;
  }
  for (int i = 0; i < n; i++) {
    int dev;
    if (get(&dev, i) != 0)
      continue;
    wh_device d = {
        .api = WH_DEVICE_API_CUDA, .index = (guint32)i, .kind = WH_DEVICE_KIND_DISCRETE_GPU};
    if (get_name(d.name, (int)sizeof(d.name) - 1, dev) != 0)
      g_snprintf(d.name, sizeof(d.name), "CUDA device %d", i);
    int integrated = 0;
    if (attr && attr(&integrated, WH_CU_ATTRIBUTE_INTEGRATED, dev) == 0 && integrated) {
      d.kind = WH_DEVICE_KIND_INTEGRATED_GPU;
      d.unified = TRUE;
    }
    size_t total = 0, free_b = 0;
    if (totalmem(&total, dev) == 0)
      d.total = total;
    void *cu_ctx = NULL;
    if (retain && release && set_current && meminfo && retain(&cu_ctx, dev) == 0) {
      if (set_current(cu_ctx) == 0 && meminfo(&free_b, &total) == 0) {
        d.free = free_b;
        d.total = total;
        d.free_known = TRUE;
      }
      set_current(NULL);
      release(dev);
    }
    if (!d.free_known)
      d.free = d.total;
    wh_device_list_add(list, &d);
  }
}

/* --- all ----------------------------------------------------------------------------- */

wh_device_list *
wh_devices_enumerate(void)
{
  wh_device_list *list = wh_device_list_new();
  add_cpu(list);
#ifdef WH_HAVE_VULKAN_H
  add_vulkan(list);
#endif
  add_cuda(list);
  return list;
}
