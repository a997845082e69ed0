/* vk-device.c — Vulkan instance and device, buffers, transfers, and the kernel recorders.
 *
 * See vk-private.h for the design. Pipelines are created on first use and kept for the
 * device's lifetime; all share one pipeline layout (push constants only).
 */
#include "config.h"

#include "backend/vulkan/vk-private.h"

#include <string.h>

/* Under LeakSanitizer: Mesa's lavapipe leaks a small block from its JIT-compiled code each
 * time a device is created (128 bytes, no symbols to suppress by), so the driver's own
 * allocations from vkCreateInstance to vkCreateDevice (physical device enumeration
 * included) are not tracked; ours there are the device struct and transient strings. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define DRIVER_ALLOCS_BEGIN() __lsan_disable()
#define DRIVER_ALLOCS_END() __lsan_enable()
#else
#define DRIVER_ALLOCS_BEGIN() ((void)0)
#define DRIVER_ALLOCS_END() ((void)0)
#endif

G_DEFINE_QUARK(wh - vk - error - quark, wh_vk_error)

#define PUSH_BYTES 128
#define STAGING_CHUNK (16u << 20)
#define MAX_GROUPS 65535u

struct wh_vk_device {
  VkInstance instance;
  VkPhysicalDevice phys;
  VkDevice device;
  VkQueue queue;
  guint32 queue_family;
  VkCommandPool pool;
  VkFence fence;
  VkPipelineLayout layout;
  GHashTable *pipelines;        /* kernel name -> VkPipeline (boxed) */
  guint32 mem_device, mem_host; /* memory type indexes */
  guint32 subgroup_wg;          /* specialization constant 0: max(subgroup size, 8) */
  char name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE];
};

static const char *
vk_result_name(VkResult r)
{
  switch (r) {
  case VK_ERROR_OUT_OF_HOST_MEMORY:
    return "out of host memory";
  case VK_ERROR_OUT_OF_DEVICE_MEMORY:
    return "out of device memory";
  case VK_ERROR_INITIALIZATION_FAILED:
    return "initialization failed";
  case VK_ERROR_DEVICE_LOST:
    return "device lost";
  case VK_ERROR_INCOMPATIBLE_DRIVER:
    return "no compatible Vulkan driver";
  case VK_ERROR_FEATURE_NOT_PRESENT:
    return "feature not present";
  case VK_ERROR_EXTENSION_NOT_PRESENT:
    return "extension not present";
  case VK_TIMEOUT:
    return "timeout";
  default:
    return "Vulkan error";
  }
}

static gboolean
vk_check(VkResult r, const char *what, GError **error)
{
  if (r == VK_SUCCESS)
    return TRUE;
  g_set_error(error, WH_VK_ERROR,
              r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? WH_VK_ERROR_NO_MEMORY : WH_VK_ERROR_FAILED,
              "Vulkan: %s failed: %s (VkResult %d)", what, vk_result_name(r), (int)r);
  return FALSE;
}

gboolean
wh_vk_type_supported(wh_type type)
{
  switch (type) {
  case WH_TYPE_F32:
  case WH_TYPE_F16:
  case WH_TYPE_Q4_0:
  case WH_TYPE_Q4_1:
  case WH_TYPE_Q5_0:
  case WH_TYPE_Q5_1:
  case WH_TYPE_Q8_0:
  case WH_TYPE_Q2_K:
  case WH_TYPE_Q3_K:
  case WH_TYPE_Q4_K:
  case WH_TYPE_Q5_K:
  case WH_TYPE_Q6_K:
  case WH_TYPE_IQ4_NL:
  case WH_TYPE_IQ4_XS:
    return TRUE;
  default:
    return FALSE;
  }
}

/* --- device ----------------------------------------------------------------------------- */

static guint32
find_memory_type(VkPhysicalDevice phys, VkMemoryPropertyFlags want, VkMemoryPropertyFlags avoid)
{
  VkPhysicalDeviceMemoryProperties mp;
  vkGetPhysicalDeviceMemoryProperties(phys, &mp);
  for (guint32 i = 0; i < mp.memoryTypeCount; i++) {
    VkMemoryPropertyFlags f = mp.memoryTypes[i].propertyFlags;
    if ((f & want) == want && (f & avoid) == 0)
      return i;
  }
  for (guint32 i = 0; i < mp.memoryTypeCount; i++)
    if ((mp.memoryTypes[i].propertyFlags & want) == want)
      return i;
  return G_MAXUINT32;
}

static gboolean
pick_physical(wh_vk_device *dev, const char *name, GError **error)
{
  guint32 n = 0;
  VkResult r = vkEnumeratePhysicalDevices(dev->instance, &n, NULL);
  if (r != VK_SUCCESS || n == 0) {
    g_set_error(error, WH_VK_ERROR, WH_VK_ERROR_NO_DEVICE,
                "no Vulkan device found: install a Vulkan driver (for a CPU-based one, Mesa's "
                "lavapipe: mesa-vulkan-drivers) or run on the CPU (--ngl 0)");
    return FALSE;
  }
  g_autofree VkPhysicalDevice *all = g_new(VkPhysicalDevice, n);
  vkEnumeratePhysicalDevices(dev->instance, &n, all);
  g_autoptr(GString) names = g_string_new(NULL);
  g_autofree char *want = name && *name ? g_utf8_casefold(name, -1) : NULL;
  /* The same names as the device list of the planner (backend/devices.h): none or "vulkan"
   * = the best device (discrete, then integrated, virtual, CPU-based, other; the first of
   * equals), "vulkan:N" = the N-th, anything else = the first whose name contains it. */
  gboolean best = !want || strcmp(want, "vulkan") == 0;
  gint64 index = -1;
  if (want && g_str_has_prefix(want, "vulkan:")) {
    char *end = NULL;
    index = g_ascii_strtoll(want + 7, &end, 10);
    if (end == want + 7 || *end != '\0' || index < 0)
      index = -1;
  }
  int best_rank = G_MAXINT;
  for (guint32 i = 0; i < n; i++) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(all[i], &p);
    g_string_append_printf(names, "%s\"%s\"", i ? ", " : "", p.deviceName);
    g_autofree char *have = g_utf8_casefold(p.deviceName, -1);
    int rank = p.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU     ? 0
               : p.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ? 1
               : p.deviceType == VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU    ? 2
               : p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU            ? 3
                                                                        : 4;
    gboolean take = index >= 0 ? (gint64)i == index
                    : best     ? rank < best_rank
                               : !dev->phys && strstr(have, want) != NULL;
    if (take) {
      dev->phys = all[i];
      g_strlcpy(dev->name, p.deviceName, sizeof(dev->name));
      best_rank = rank;
    }
  }
  if (!dev->phys) {
    g_set_error(error, WH_VK_ERROR, WH_VK_ERROR_NO_DEVICE,
                "no Vulkan device named \"%s\"; the devices are: %s", name, names->str);
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_features(wh_vk_device *dev, GError **error)
{
  VkPhysicalDeviceVulkan12Features f12 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan11Features f11 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &f12};
  VkPhysicalDeviceFeatures2 f = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                 .pNext = &f11};
  vkGetPhysicalDeviceFeatures2(dev->phys, &f);
  const char *missing = !f12.bufferDeviceAddress        ? "bufferDeviceAddress"
                        : !f12.storageBuffer8BitAccess  ? "storageBuffer8BitAccess"
                        : !f11.storageBuffer16BitAccess ? "storageBuffer16BitAccess"
                        : !f.features.shaderInt64       ? "shaderInt64"
                                                        : NULL;
  VkPhysicalDeviceSubgroupProperties sg = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                       .pNext = &sg};
  vkGetPhysicalDeviceProperties2(dev->phys, &props);
  if (!missing && (!(sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) ||
                   !(sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT)))
    missing = "subgroup arithmetic in compute shaders";
  dev->subgroup_wg = CLAMP(sg.subgroupSize, 8, 128);
  if (missing) {
    g_set_error(error, WH_VK_ERROR, WH_VK_ERROR_UNSUPPORTED,
                "the Vulkan device \"%s\" lacks the %s feature the backend needs: run on the CPU "
                "(--ngl 0) or pick another device (--device)",
                dev->name, missing);
    return FALSE;
  }
  return TRUE;
}

wh_vk_device *
wh_vk_device_open(const char *name, GError **error)
{
  wh_vk_device *dev = g_new0(wh_vk_device, 1);
  VkApplicationInfo app = {
      .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
      .pApplicationName = "whittle",
      .pEngineName = "whittle",
      .apiVersion = VK_API_VERSION_1_2,
  };
  VkInstanceCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                              .pApplicationInfo = &app};
  gboolean driver_allocs = TRUE; /* until the device exists (instance, enumeration, device) */
  DRIVER_ALLOCS_BEGIN();
  VkResult r = vkCreateInstance(&ici, NULL, &dev->instance);
  if (r != VK_SUCCESS) {
    DRIVER_ALLOCS_END();
    g_set_error(error, WH_VK_ERROR, WH_VK_ERROR_NO_DEVICE,
                "no Vulkan driver could be loaded (%s): install one (mesa-vulkan-drivers gives "
                "a CPU-based device) or run on the CPU (--ngl 0)",
                vk_result_name(r));
    g_free(dev);
    return NULL;
  }
  if (!pick_physical(dev, name, error) || !check_features(dev, error))
    goto fail;

  guint32 nq = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(dev->phys, &nq, NULL);
  VkQueueFamilyProperties *qf = g_new(VkQueueFamilyProperties, nq);
  vkGetPhysicalDeviceQueueFamilyProperties(dev->phys, &nq, qf);
  dev->queue_family = G_MAXUINT32;
  for (guint32 i = 0; i < nq && dev->queue_family == G_MAXUINT32; i++)
    if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
      dev->queue_family = i;
  g_free(qf);
  if (dev->queue_family == G_MAXUINT32) {
    g_set_error(error, WH_VK_ERROR, WH_VK_ERROR_UNSUPPORTED,
                "the Vulkan device \"%s\" has no compute queue", dev->name);
    goto fail;
  }

  const float prio = 1.0f;
  VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                 .queueFamilyIndex = dev->queue_family,
                                 .queueCount = 1,
                                 .pQueuePriorities = &prio};
  VkPhysicalDeviceVulkan12Features f12 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
      .bufferDeviceAddress = VK_TRUE,
      .storageBuffer8BitAccess = VK_TRUE,
  };
  VkPhysicalDeviceVulkan11Features f11 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
      .pNext = &f12,
      .storageBuffer16BitAccess = VK_TRUE,
  };
  VkPhysicalDeviceFeatures2 f = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                 .pNext = &f11,
                                 .features = {.shaderInt64 = VK_TRUE}};
  VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                            .pNext = &f,
                            .queueCreateInfoCount = 1,
                            .pQueueCreateInfos = &qci};
  VkResult rd = vkCreateDevice(dev->phys, &dci, NULL, &dev->device);
  DRIVER_ALLOCS_END();
  driver_allocs = FALSE;
  if (!vk_check(rd, "creating the device", error))
    goto fail;
  vkGetDeviceQueue(dev->device, dev->queue_family, 0, &dev->queue);

  VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                 .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                 .queueFamilyIndex = dev->queue_family};
  VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  VkPushConstantRange range = {VK_SHADER_STAGE_COMPUTE_BIT, 0, PUSH_BYTES};
  VkPipelineLayoutCreateInfo lci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                    .pushConstantRangeCount = 1,
                                    .pPushConstantRanges = &range};
  if (!vk_check(vkCreateCommandPool(dev->device, &pci, NULL, &dev->pool), "creating a pool",
                error) ||
      !vk_check(vkCreateFence(dev->device, &fci, NULL, &dev->fence), "creating a fence", error) ||
      !vk_check(vkCreatePipelineLayout(dev->device, &lci, NULL, &dev->layout),
                "creating the pipeline layout", error))
    goto fail;

  dev->mem_device = find_memory_type(dev->phys, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
  dev->mem_host = find_memory_type(
      dev->phys, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, 0);
  if (dev->mem_device == G_MAXUINT32 || dev->mem_host == G_MAXUINT32) {
    g_set_error(error, WH_VK_ERROR, WH_VK_ERROR_UNSUPPORTED,
                "the Vulkan device \"%s\" has no %s memory", dev->name,
                dev->mem_device == G_MAXUINT32 ? "device-local" : "host-visible coherent");
    goto fail;
  }
  dev->pipelines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  return dev;

fail:
  if (driver_allocs)
    DRIVER_ALLOCS_END();
  wh_vk_device_free(dev);
  return NULL;
}

void
wh_vk_device_free(wh_vk_device *dev)
{
  if (!dev)
    return;
  if (dev->device) {
    vkDeviceWaitIdle(dev->device);
    if (dev->pipelines) {
      GHashTableIter it;
      gpointer key, value;
      g_hash_table_iter_init(&it, dev->pipelines);
      while (g_hash_table_iter_next(&it, &key, &value))
        vkDestroyPipeline(dev->device, *(VkPipeline *)value, NULL);
      g_hash_table_destroy(dev->pipelines);
    }
    if (dev->layout)
      vkDestroyPipelineLayout(dev->device, dev->layout, NULL);
    if (dev->fence)
      vkDestroyFence(dev->device, dev->fence, NULL);
    if (dev->pool)
      vkDestroyCommandPool(dev->device, dev->pool, NULL);
    vkDestroyDevice(dev->device, NULL);
  }
  if (dev->instance)
    vkDestroyInstance(dev->instance, NULL);
  g_free(dev);
}

const char *
wh_vk_device_name(const wh_vk_device *dev)
{
  return dev->name;
}

/* --- buffers ---------------------------------------------------------------------------- */

gboolean
wh_vk_buffer_alloc(wh_vk_device *dev, guint64 size, gboolean host_visible, wh_vk_buffer *out,
                   GError **error)
{
  memset(out, 0, sizeof(*out));
  out->size = size;
  VkBufferCreateInfo bci = {
      .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
      .size = MAX(size, 16),
      .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
               VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT,
      .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  if (!vk_check(vkCreateBuffer(dev->device, &bci, NULL, &out->buf), "creating a buffer", error))
    return FALSE;
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(dev->device, out->buf, &req);
  guint32 type = host_visible ? dev->mem_host : dev->mem_device;
  if (!(req.memoryTypeBits & (1u << type))) {
    g_set_error(error, WH_VK_ERROR, WH_VK_ERROR_UNSUPPORTED,
                "the Vulkan device \"%s\" cannot place storage buffers in its %s memory", dev->name,
                host_visible ? "host-visible" : "device-local");
    wh_vk_buffer_free(dev, out);
    return FALSE;
  }
  VkMemoryAllocateFlagsInfo flags = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO,
                                     .flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT};
  VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                              .pNext = &flags,
                              .allocationSize = req.size,
                              .memoryTypeIndex = type};
  VkResult r = vkAllocateMemory(dev->device, &mai, NULL, &out->mem);
  if (r != VK_SUCCESS) {
    g_set_error(error, WH_VK_ERROR,
                r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY
                    ? WH_VK_ERROR_NO_MEMORY
                    : WH_VK_ERROR_FAILED,
                "the Vulkan device \"%s\" could not allocate %" G_GUINT64_FORMAT
                " bytes (%s): offload fewer layers (--ngl) or use a smaller context",
                dev->name, (guint64)req.size, vk_result_name(r));
    wh_vk_buffer_free(dev, out);
    return FALSE;
  }
  out->memory = req.size;
  if (!vk_check(vkBindBufferMemory(dev->device, out->buf, out->mem, 0), "binding memory", error) ||
      (host_visible &&
       !vk_check(vkMapMemory(dev->device, out->mem, 0, VK_WHOLE_SIZE, 0, (void **)&out->map),
                 "mapping memory", error))) {
    wh_vk_buffer_free(dev, out);
    return FALSE;
  }
  VkBufferDeviceAddressInfo ai = {.sType = VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO,
                                  .buffer = out->buf};
  out->addr = vkGetBufferDeviceAddress(dev->device, &ai);
  return TRUE;
}

void
wh_vk_buffer_free(wh_vk_device *dev, wh_vk_buffer *b)
{
  if (b->map)
    vkUnmapMemory(dev->device, b->mem);
  if (b->buf)
    vkDestroyBuffer(dev->device, b->buf, NULL);
  if (b->mem)
    vkFreeMemory(dev->device, b->mem, NULL);
  memset(b, 0, sizeof(*b));
}

/* --- command buffers -------------------------------------------------------------------- */

VkCommandBuffer
wh_vk_cmd_new(wh_vk_device *dev, GError **error)
{
  VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                    .commandPool = dev->pool,
                                    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                    .commandBufferCount = 1};
  VkCommandBuffer cmd = VK_NULL_HANDLE;
  if (!vk_check(vkAllocateCommandBuffers(dev->device, &ai, &cmd), "allocating a command buffer",
                error))
    return VK_NULL_HANDLE;
  return cmd;
}

void
wh_vk_cmd_free(wh_vk_device *dev, VkCommandBuffer cmd)
{
  if (cmd)
    vkFreeCommandBuffers(dev->device, dev->pool, 1, &cmd);
}

void
wh_vk_cmd_begin(wh_vk_device *dev, VkCommandBuffer cmd)
{
  (void)dev;
  vkResetCommandBuffer(cmd, 0);
  VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  vkBeginCommandBuffer(cmd, &bi);
}

gboolean
wh_vk_cmd_end(wh_vk_device *dev, VkCommandBuffer cmd, GError **error)
{
  (void)dev;
  return vk_check(vkEndCommandBuffer(cmd), "recording commands", error);
}

gboolean
wh_vk_submit_wait(wh_vk_device *dev, VkCommandBuffer cmd, GError **error)
{
  VkSubmitInfo si = {
      .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cmd};
  if (!vk_check(vkQueueSubmit(dev->queue, 1, &si, dev->fence), "submitting work", error))
    return FALSE;
  VkResult r = vkWaitForFences(dev->device, 1, &dev->fence, VK_TRUE, G_MAXUINT64);
  vkResetFences(dev->device, 1, &dev->fence);
  return vk_check(r, "waiting for the device", error);
}

void
wh_vk_cmd_copy(wh_vk_device *dev, VkCommandBuffer cmd, const wh_vk_buffer *src, guint64 src_off,
               const wh_vk_buffer *dst, guint64 dst_off, guint64 n)
{
  (void)dev;
  VkBufferCopy region = {src_off, dst_off, n};
  vkCmdCopyBuffer(cmd, src->buf, dst->buf, 1, &region);
}

void
wh_vk_cmd_barrier(wh_vk_device *dev, VkCommandBuffer cmd)
{
  (void)dev;
  VkMemoryBarrier mb = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
      .srcAccessMask =
          VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_WRITE_BIT,
      .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                       VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_HOST_READ_BIT,
  };
  vkCmdPipelineBarrier(cmd,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
                           VK_PIPELINE_STAGE_HOST_BIT,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
                           VK_PIPELINE_STAGE_HOST_BIT,
                       0, 1, &mb, 0, NULL, 0, NULL);
}

/* Copies in STAGING_CHUNK pieces through a transient host-visible buffer. */
static gboolean
staged_copy(wh_vk_device *dev, wh_vk_buffer *b, guint64 off, guint8 *host, gsize n, gboolean upload,
            GError **error)
{
  if (b->map) {
    if (upload)
      memcpy(b->map + off, host, n);
    else
      memcpy(host, b->map + off, n);
    return TRUE;
  }
  wh_vk_buffer st;
  if (!wh_vk_buffer_alloc(dev, MIN(n, STAGING_CHUNK), TRUE, &st, error))
    return FALSE;
  VkCommandBuffer cmd = wh_vk_cmd_new(dev, error);
  gboolean ok = cmd != VK_NULL_HANDLE;
  for (gsize done = 0; ok && done < n;) {
    const gsize part = MIN(n - done, STAGING_CHUNK);
    if (upload)
      memcpy(st.map, host + done, part);
    wh_vk_cmd_begin(dev, cmd);
    if (upload)
      wh_vk_cmd_copy(dev, cmd, &st, 0, b, off + done, part);
    else
      wh_vk_cmd_copy(dev, cmd, b, off + done, &st, 0, part);
    wh_vk_cmd_barrier(dev, cmd);
    ok = wh_vk_cmd_end(dev, cmd, error) && wh_vk_submit_wait(dev, cmd, error);
    if (ok && !upload)
      memcpy(host + done, st.map, part);
    done += part;
  }
  wh_vk_cmd_free(dev, cmd);
  wh_vk_buffer_free(dev, &st);
  return ok;
}

gboolean
wh_vk_upload(wh_vk_device *dev, wh_vk_buffer *b, guint64 off, const void *src, gsize n,
             GError **error)
{
  return n == 0 || staged_copy(dev, b, off, (guint8 *)src, n, TRUE, error);
}

gboolean
wh_vk_download(wh_vk_device *dev, wh_vk_buffer *b, guint64 off, void *dst, gsize n, GError **error)
{
  return n == 0 || staged_copy(dev, b, off, dst, n, FALSE, error);
}

/* --- kernels ---------------------------------------------------------------------------- */

static VkPipeline
pipeline(wh_vk_device *dev, const char *name, GError **error)
{
  VkPipeline *p = g_hash_table_lookup(dev->pipelines, name);
  if (p)
    return *p;
  const wh_vk_spirv *s = wh_vk_spirv_table;
  while (s->name && strcmp(s->name, name) != 0)
    s++;
  if (!s->name) {
    g_set_error(error, WH_VK_ERROR, WH_VK_ERROR_UNSUPPORTED, "the Vulkan backend has no kernel %s",
                name);
    return VK_NULL_HANDLE;
  }
  VkShaderModuleCreateInfo mci = {
      .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = s->size, .pCode = s->words};
  VkShaderModule mod;
  if (!vk_check(vkCreateShaderModule(dev->device, &mci, NULL, &mod), "loading a kernel", error))
    return VK_NULL_HANDLE;
  /* constant 0: the workgroup size of the subgroup-sized kernels (others have no constants) */
  VkSpecializationMapEntry entry = {0, 0, sizeof(guint32)};
  VkSpecializationInfo spec = {1, &entry, sizeof(guint32), &dev->subgroup_wg};
  VkComputePipelineCreateInfo cci = {
      .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
      .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                .module = mod,
                .pName = "main",
                .pSpecializationInfo = &spec},
      .layout = dev->layout,
  };
  VkPipeline pl;
  VkResult r = vkCreateComputePipelines(dev->device, VK_NULL_HANDLE, 1, &cci, NULL, &pl);
  vkDestroyShaderModule(dev->device, mod, NULL);
  if (!vk_check(r, "building a kernel", error))
    return VK_NULL_HANDLE;
  p = g_new(VkPipeline, 1);
  *p = pl;
  g_hash_table_insert(dev->pipelines, g_strdup(name), p);
  return pl;
}

static gboolean
dispatch(wh_vk_device *dev, VkCommandBuffer cmd, const char *kernel, const void *pc, gsize pc_size,
         guint32 gx, guint32 gy, guint32 gz, GError **error)
{
  g_assert(pc_size <= PUSH_BYTES);
  VkPipeline pl = pipeline(dev, kernel, error);
  if (!pl)
    return FALSE;
  if (gx == 0 || gy == 0 || gz == 0)
    return TRUE;
  vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pl);
  vkCmdPushConstants(cmd, dev->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, (guint32)pc_size, pc);
  vkCmdDispatch(cmd, gx, gy, gz);
  wh_vk_cmd_barrier(dev, cmd);
  return TRUE;
}

gboolean
wh_vk_op_mul_mat(wh_vk_device *dev, VkCommandBuffer cmd, wh_type type, const wh_vk_pc_mul_mat *pc,
                 GError **error)
{
  if (!wh_vk_type_supported(type)) {
    g_set_error(error, WH_VK_ERROR, WH_VK_ERROR_UNSUPPORTED,
                "the Vulkan backend has no matrix kernel for %s weights", wh_type_name(type));
    return FALSE;
  }
  char name[32];
  g_snprintf(name, sizeof(name), "mul_mat_%s", wh_type_name(type));
  for (char *c = name; *c; c++)
    *c = g_ascii_tolower(*c);
  wh_vk_pc_mul_mat p = *pc;
  p.row_split = MIN(p.rows, 32768u);
  const guint32 tile = 8; /* TILE of mul_mat.comp */
  return dispatch(dev, cmd, name, &p, sizeof(p), p.row_split, (p.n_tokens + tile - 1) / tile,
                  (p.rows + p.row_split - 1) / MAX(p.row_split, 1), error);
}

gboolean
wh_vk_op_rms_norm(wh_vk_device *dev, VkCommandBuffer cmd, const wh_vk_pc_rms_norm *pc,
                  guint32 n_heads, guint32 n_tokens, GError **error)
{
  return dispatch(dev, cmd, "rms_norm", pc, sizeof(*pc), n_heads, n_tokens, 1, error);
}

/* Grid for WG-wide one-element-per-thread kernels: x up to 65535 groups, y for the rest. */
static void
grid_1d(guint32 n, guint32 wg, guint32 *gx, guint32 *gy)
{
  const guint32 groups = (n + wg - 1) / wg;
  *gx = MIN(groups, MAX_GROUPS);
  *gy = (groups + MAX_GROUPS - 1) / MAX_GROUPS;
}

gboolean
wh_vk_op_add(wh_vk_device *dev, VkCommandBuffer cmd, const wh_vk_pc_add *pc, GError **error)
{
  guint32 gx, gy;
  grid_1d(pc->n, 256, &gx, &gy);
  return dispatch(dev, cmd, "add", pc, sizeof(*pc), gx, gy, 1, error);
}

gboolean
wh_vk_op_scale(wh_vk_device *dev, VkCommandBuffer cmd, const wh_vk_pc_scale *pc, GError **error)
{
  guint32 gx, gy;
  grid_1d(pc->n, 256, &gx, &gy);
  return dispatch(dev, cmd, "scale", pc, sizeof(*pc), gx, gy, 1, error);
}

gboolean
wh_vk_op_glu(wh_vk_device *dev, VkCommandBuffer cmd, const wh_vk_pc_glu *pc, guint32 n_tokens,
             GError **error)
{
  return dispatch(dev, cmd, "glu", pc, sizeof(*pc), (pc->F + 255) / 256, n_tokens, 1, error);
}

gboolean
wh_vk_op_rope(wh_vk_device *dev, VkCommandBuffer cmd, const wh_vk_pc_rope *pc, guint32 n_heads,
              guint32 n_tokens, GError **error)
{
  return dispatch(dev, cmd, "rope", pc, sizeof(*pc), n_heads, n_tokens, 1, error);
}

gboolean
wh_vk_op_kv_store(wh_vk_device *dev, VkCommandBuffer cmd, gboolean f32, const wh_vk_pc_kv_store *pc,
                  guint32 n_tokens, GError **error)
{
  return dispatch(dev, cmd, f32 ? "kv_store_f32" : "kv_store_f16", pc, sizeof(*pc),
                  (pc->n + 255) / 256, n_tokens, 1, error);
}

gboolean
wh_vk_op_attn(wh_vk_device *dev, VkCommandBuffer cmd, gboolean f32, const wh_vk_pc_attn *pc,
              guint32 n_tokens, GError **error)
{
  if (pc->dk > 256 || pc->dv > 256) {
    g_set_error(error, WH_VK_ERROR, WH_VK_ERROR_UNSUPPORTED,
                "the Vulkan attention kernel handles head sizes up to 256, not %u/%u", pc->dk,
                pc->dv);
    return FALSE;
  }
  return dispatch(dev, cmd, f32 ? "attn_f32" : "attn_f16", pc, sizeof(*pc), pc->H, n_tokens, 1,
                  error);
}

gboolean
wh_vk_op_quantize_act(wh_vk_device *dev, VkCommandBuffer cmd, wh_type act_type,
                      const wh_vk_pc_quantize_act *pc, guint32 K, guint32 n_tokens, GError **error)
{
  const gboolean k_blocks = act_type == WH_TYPE_Q8_K;
  const guint32 qb = k_blocks ? 256 : 32;
  g_assert(act_type == WH_TYPE_Q8_0 || act_type == WH_TYPE_Q8_1 || k_blocks);
  g_assert(K % qb == 0);
  return dispatch(dev, cmd, k_blocks ? "quantize_act_q8_k" : "quantize_act_q8", pc, sizeof(*pc),
                  K / qb, n_tokens, 1, error);
}
