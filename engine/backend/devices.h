/* devices.h — the compute devices of this machine and their memory.
 *
 * Design note
 * -----------
 * Owns: a snapshot list of devices, the CPU first (system RAM: MemTotal and
 * MemAvailable from /proc/meminfo), then every Vulkan physical device (found
 * through libvulkan.so.1, loaded at run time, so a machine without a Vulkan
 * loader or driver simply has no Vulkan devices), then every CUDA device
 * (libcuda.so.1, loaded at run time, only when an NVIDIA driver is present).
 * Promises:
 *  - Memory is in bytes. A Vulkan device's total is the sum of its
 *    device-local heaps; its free memory is the heap budget minus the heap
 *    usage of VK_EXT_memory_budget when the device has the extension, else
 *    the total (free_known = FALSE). A CUDA device's numbers come from
 *    cuMemGetInfo.
 *  - Integrated GPUs, and Vulkan devices that run on the CPU (Mesa's
 *    lavapipe: VK_PHYSICAL_DEVICE_TYPE_CPU, kind WH_DEVICE_KIND_CPU_VULKAN),
 *    share system RAM with the CPU: `unified` is TRUE for them, and the
 *    memory planner counts their allocations against RAM too. A cpu-based
 *    Vulkan device is still a GPU-kind device for offload purposes.
 *  - Lists can also be built by hand (wh_device_list_new/_add) so the
 *    planner can be tested against a fake device with a given free memory.
 * Does not: allocate device memory. One Vulkan instance is created on first
 * use and kept for the process (drivers are not reloaded on every call);
 * CUDA primary contexts are retained only while reading free memory.
 *
 * Thread-safety: wh_devices_enumerate() may be called from any thread; a
 * list is immutable once built and may be shared read-only.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define WH_DEVICES_ERROR (wh_devices_error_quark())
GQuark wh_devices_error_quark(void);

typedef enum {
  WH_DEVICES_ERROR_NOT_FOUND, /* no device matches the requested name */
  WH_DEVICES_ERROR_AMBIGUOUS, /* several devices match the requested name */
} wh_devices_error;

typedef enum {
  WH_DEVICE_API_HOST,   /* the CPU itself */
  WH_DEVICE_API_VULKAN, /* a Vulkan physical device */
  WH_DEVICE_API_CUDA,   /* a CUDA device */
} wh_device_api;

typedef enum {
  WH_DEVICE_KIND_CPU,            /* the host CPU and system RAM */
  WH_DEVICE_KIND_INTEGRATED_GPU, /* shares RAM with the CPU */
  WH_DEVICE_KIND_DISCRETE_GPU,   /* its own memory */
  WH_DEVICE_KIND_VIRTUAL_GPU,    /* a GPU in a virtual machine */
  WH_DEVICE_KIND_CPU_VULKAN,     /* a Vulkan device that runs on the CPU (lavapipe) */
  WH_DEVICE_KIND_OTHER_GPU,      /* any other accelerator */
} wh_device_kind;

typedef struct {
  char name[256]; /* e.g. "CPU", "llvmpipe (LLVM 15.0.6, 256 bits)" */
  wh_device_api api;
  wh_device_kind kind;
  guint32 index;       /* position in its API's own list (Vulkan physical device, CUDA ordinal) */
  guint64 total;       /* bytes: RAM, sum of device-local heaps, or cuMemGetInfo total */
  guint64 free;        /* bytes available now (= total when not known) */
  gboolean free_known; /* free comes from the system (MemAvailable, memory budget, CUDA) */
  gboolean unified;    /* the memory is system RAM shared with the CPU */
} wh_device;

typedef struct {
  guint n;
  wh_device *devices; /* n of them; devices[0] is the CPU in enumerated lists */
} wh_device_list;

/* Enumerates the devices of this machine (see the design note). Never fails: APIs whose
 * library or driver is missing contribute no device. Free with wh_device_list_free(). */
wh_device_list *wh_devices_enumerate(void);

/* An empty list, for tests and callers that describe devices themselves. */
wh_device_list *wh_device_list_new(void);
/* Appends a copy of @dev. */
void wh_device_list_add(wh_device_list *list, const wh_device *dev);
void wh_device_list_free(wh_device_list *list); /* NULL-safe */

/* The CPU entry (the first WH_DEVICE_API_HOST device), or NULL. */
const wh_device *wh_device_list_cpu(const wh_device_list *list);

/* The GPU-kind device whose name contains @name (case-insensitive; an exact match wins over
 * substrings; "vulkan:N" / "cuda:N" name a device by API and index, "vulkan" / "cuda" the
 * best device of that API, as the contexts' device names do). NULL or "" = the
 * first GPU-kind device, preferring a discrete GPU, then integrated, then the rest. Returns
 * NULL with no error when @name is empty and there is no GPU; NULL and @error (NOT_FOUND or
 * AMBIGUOUS, listing the devices) when a named device is not found. */
const wh_device *wh_device_list_find_gpu(const wh_device_list *list, const char *name,
                                         GError **error);

gboolean wh_device_is_gpu(const wh_device *dev);
/* "cpu", "integrated GPU", "discrete GPU", "virtual GPU", "cpu-based Vulkan device", ... */
const char *wh_device_kind_describe(wh_device_kind kind);
/* "cpu" or "gpu": the kind field of the memory report's JSON. */
const char *wh_device_kind_json(wh_device_kind kind);
const char *wh_device_api_name(wh_device_api api); /* "host", "vulkan", "cuda" */

/* MemTotal and MemAvailable of /proc/meminfo in bytes (0 when unknown). @meminfo = NULL reads
 * /proc/meminfo; otherwise parses that text (tests). */
void wh_devices_read_meminfo(const char *meminfo, guint64 *total, guint64 *available);

G_END_DECLS
