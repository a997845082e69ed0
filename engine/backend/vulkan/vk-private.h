/* vk-private.h — the Vulkan backend's internals: device, buffers, kernels.
 *
 * Design note
 * -----------
 * One wh_vk_device per context that offloads layers: a Vulkan instance, the
 * chosen physical device (by name, else the first one), one compute queue,
 * a command pool, a fence, and the compute pipelines (created on first use
 * from the SPIR-V embedded at build time, see embed-spirv.py).
 * Kernels reach memory through buffer device addresses: every pipeline has
 * the same layout (no descriptor sets, one 128-byte push-constant range) and
 * its push constants are the C structs below, mirroring the `Params` blocks
 * of shaders/<kernel>.comp field by field (uint64 addresses first).
 * Buffers are either device-local (weights, KV cache, activations) or
 * host-visible and coherent (the per-step I/O block, the logits); each is
 * one VkBuffer on its own VkDeviceMemory, and its allocated size is what the
 * context records as measured memory.
 * The op functions (wh_vk_op_*) record one dispatch followed by a compute ->
 * compute memory barrier into a command buffer; the forward pass
 * (vk-forward.c) and the kernel tests use the same functions.
 *
 * Thread-safety: a device is used by one thread at a time (its context's).
 */
#pragma once

#include <glib.h>

#include "gguf/gguf.h"

#ifdef WH_HAVE_VULKAN
#include <vulkan/vulkan.h>
#endif

G_BEGIN_DECLS

#define WH_VK_ERROR (wh_vk_error_quark())
GQuark wh_vk_error_quark(void);

typedef enum {
  WH_VK_ERROR_NOT_BUILT,   /* this build has no Vulkan backend */
  WH_VK_ERROR_NO_DEVICE,   /* no Vulkan loader/driver, or no device matches the name */
  WH_VK_ERROR_NO_MEMORY,   /* the device is out of memory */
  WH_VK_ERROR_UNSUPPORTED, /* a missing device feature or tensor type */
  WH_VK_ERROR_FAILED,      /* any other Vulkan failure (the VkResult is named) */
} wh_vk_error;

/* Embedded SPIR-V (generated vk-spirv.c): the table ends with a NULL name. */
typedef struct {
  const char *name;
  const guint32 *words;
  gsize size; /* bytes */
} wh_vk_spirv;
extern const wh_vk_spirv wh_vk_spirv_table[];

typedef struct wh_vk_device wh_vk_device;

/* Opens the first Vulkan device whose name contains @name (case-insensitive; NULL or "" =
 * the first device). Errors: NOT_BUILT, NO_DEVICE (naming the devices there are),
 * UNSUPPORTED (buffer device address, 8/16-bit storage missing). */
wh_vk_device *wh_vk_device_open(const char *name, GError **error);
void wh_vk_device_free(wh_vk_device *dev); /* NULL-safe; waits for the device to be idle */
const char *wh_vk_device_name(const wh_vk_device *dev);

/* Whether the backend has a matmul kernel for weights of @type. */
gboolean wh_vk_type_supported(wh_type type);

#ifdef WH_HAVE_VULKAN

typedef struct {
  VkBuffer buf;
  VkDeviceMemory mem;
  VkDeviceAddress addr;
  guint8 *map;    /* host pointer of a host-visible buffer, else NULL */
  guint64 size;   /* requested bytes */
  guint64 memory; /* bytes of device memory allocated for it (measured) */
} wh_vk_buffer;

/* Allocates @size bytes (device-local, or host-visible + coherent with @host_visible).
 * Errors: NO_MEMORY naming the size, FAILED. */
gboolean wh_vk_buffer_alloc(wh_vk_device *dev, guint64 size, gboolean host_visible,
                            wh_vk_buffer *out, GError **error);
void wh_vk_buffer_free(wh_vk_device *dev, wh_vk_buffer *b); /* zeroed buffer is fine */

/* Copies between host memory and a buffer through a transient staging buffer (or
 * directly when @b is host-visible); blocks until done. */
gboolean wh_vk_upload(wh_vk_device *dev, wh_vk_buffer *b, guint64 off, const void *src, gsize n,
                      GError **error);
gboolean wh_vk_download(wh_vk_device *dev, wh_vk_buffer *b, guint64 off, void *dst, gsize n,
                        GError **error);

/* Command buffers: allocated from the device's pool, recorded with the ops below, submitted
 * and waited for with a fence. */
VkCommandBuffer wh_vk_cmd_new(wh_vk_device *dev, GError **error);
void wh_vk_cmd_free(wh_vk_device *dev, VkCommandBuffer cmd);
void wh_vk_cmd_begin(wh_vk_device *dev, VkCommandBuffer cmd); /* resets it, one-time = FALSE */
gboolean wh_vk_cmd_end(wh_vk_device *dev, VkCommandBuffer cmd, GError **error);
gboolean wh_vk_submit_wait(wh_vk_device *dev, VkCommandBuffer cmd, GError **error);
void wh_vk_cmd_copy(wh_vk_device *dev, VkCommandBuffer cmd, const wh_vk_buffer *src,
                    guint64 src_off, const wh_vk_buffer *dst, guint64 dst_off, guint64 n);
/* Makes transfers visible to later kernels and kernel writes to later transfers. */
void wh_vk_cmd_barrier(wh_vk_device *dev, VkCommandBuffer cmd);

/* --- kernels: push constants (mirror shaders/<name>.comp) and op recorders ----------- */

typedef struct {
  guint64 w, x, y, bias;
  guint32 K, rows, n_tokens, ldx, ldy, row_bytes, row_split;
} wh_vk_pc_mul_mat;

typedef struct {
  guint64 x, y, w;
  guint32 n, ldx_t, ldx_h, ldy_t, ldy_h;
  float eps;
} wh_vk_pc_rms_norm;

typedef struct {
  guint64 x, y;
  guint32 n;
} wh_vk_pc_add;

typedef struct {
  guint64 x;
  guint32 n;
  float s, cap;
} wh_vk_pc_scale;

typedef struct {
  guint64 ff;
  guint32 F, gelu;
} wh_vk_pc_glu;

typedef struct {
  guint64 v, tab;
  guint32 ld, head_dim, n_pairs, nb, neox;
} wh_vk_pc_rope;

typedef struct {
  guint64 src, dst, step;
  guint32 n, ld, row_bytes;
} wh_vk_pc_kv_store;

typedef struct {
  guint64 qkv, out, k, v, step;
  guint32 ldq, ldo, H, Hkv, dk, dv, row_k, row_v, n_swa;
  float scale, softcap;
} wh_vk_pc_attn;

typedef struct {
  guint64 x, y;
  guint32 ldx, ldy;
} wh_vk_pc_quantize_act;

/* Each records one dispatch (grid from the shapes in @pc) and a barrier. Returns FALSE with
 * @error when the kernel's pipeline cannot be created (or the type has no kernel). */
gboolean wh_vk_op_mul_mat(wh_vk_device *dev, VkCommandBuffer cmd, wh_type type,
                          const wh_vk_pc_mul_mat *pc, GError **error);
gboolean wh_vk_op_rms_norm(wh_vk_device *dev, VkCommandBuffer cmd, const wh_vk_pc_rms_norm *pc,
                           guint32 n_heads, guint32 n_tokens, GError **error);
gboolean wh_vk_op_add(wh_vk_device *dev, VkCommandBuffer cmd, const wh_vk_pc_add *pc,
                      GError **error);
gboolean wh_vk_op_scale(wh_vk_device *dev, VkCommandBuffer cmd, const wh_vk_pc_scale *pc,
                        GError **error);
gboolean wh_vk_op_glu(wh_vk_device *dev, VkCommandBuffer cmd, const wh_vk_pc_glu *pc,
                      guint32 n_tokens, GError **error);
gboolean wh_vk_op_rope(wh_vk_device *dev, VkCommandBuffer cmd, const wh_vk_pc_rope *pc,
                       guint32 n_heads, guint32 n_tokens, GError **error);
/* @f32: the cache holds F32 rows, else F16. */
gboolean wh_vk_op_kv_store(wh_vk_device *dev, VkCommandBuffer cmd, gboolean f32,
                           const wh_vk_pc_kv_store *pc, guint32 n_tokens, GError **error);
gboolean wh_vk_op_attn(wh_vk_device *dev, VkCommandBuffer cmd, gboolean f32,
                       const wh_vk_pc_attn *pc, guint32 n_tokens, GError **error);

/* Rounds @n_tokens rows of @K activations as the CPU's @act_type (Q8_0, Q8_1 or Q8_K)
 * activation blocks hold them (F32 in, F32 out). */
gboolean wh_vk_op_quantize_act(wh_vk_device *dev, VkCommandBuffer cmd, wh_type act_type,
                               const wh_vk_pc_quantize_act *pc, guint32 K, guint32 n_tokens,
                               GError **error);

#endif /* WH_HAVE_VULKAN */

G_END_DECLS
