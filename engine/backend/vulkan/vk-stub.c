/* vk-stub.c — the Vulkan backend entry points of a build without Vulkan (-Dvulkan=disabled,
 * or no libvulkan/glslc at configure time): GPU layers are refused with a plain reason. */
#include "config.h"

#include "backend/vulkan/vk.h"
#include "backend/vulkan/vk-private.h"

G_DEFINE_QUARK(wh - vk - error - quark, wh_vk_error)

static const char not_built[] = "this build of Whittle has no Vulkan backend (it was configured "
                                "without libvulkan and glslc): run on the CPU (--ngl 0)";

wh_vk_device *
wh_vk_device_open(const char *name, GError **error)
{
  (void)name;
  g_set_error_literal(error, WH_VK_ERROR, WH_VK_ERROR_NOT_BUILT, not_built);
  return NULL;
}

void
wh_vk_device_free(wh_vk_device *dev)
{
  g_assert(dev == NULL);
}

const char *
wh_vk_device_name(const wh_vk_device *dev)
{
  (void)dev;
  return "";
}

gboolean
wh_vk_type_supported(wh_type type)
{
  (void)type;
  return FALSE;
}

const wh_gpu_caps *
wh_vk_gpu_caps(void)
{
  return NULL;
}

char *
wh_vk_clamp_layers(const wh_model *model, wh_context_params *cp)
{
  (void)model;
  if (cp->n_gpu_layers == 0)
    return NULL;
  char *note =
      g_strdup_printf("%u layers were asked for on the GPU, but %s", cp->n_gpu_layers, not_built);
  cp->n_gpu_layers = 0;
  return note;
}

gboolean
wh_vk_context_init(wh_context *ctx, GError **error)
{
  (void)ctx;
  g_set_error_literal(error, WH_VK_ERROR, WH_VK_ERROR_NOT_BUILT, not_built);
  return FALSE;
}

void
wh_vk_context_free(wh_context *ctx)
{
  (void)ctx;
}

gboolean
wh_vk_context_layers(wh_context *ctx, const wh_batch *batch, guint32 il_begin, GError **error)
{
  (void)ctx;
  (void)batch;
  (void)il_begin;
  g_set_error_literal(error, WH_VK_ERROR, WH_VK_ERROR_NOT_BUILT, not_built);
  return FALSE;
}

gboolean
wh_vk_context_shift(wh_context *ctx, guint32 to, guint32 from, guint32 n_move, gint64 delta,
                    GError **error)
{
  (void)ctx;
  (void)to;
  (void)from;
  (void)n_move;
  (void)delta;
  g_set_error_literal(error, WH_VK_ERROR, WH_VK_ERROR_NOT_BUILT, not_built);
  return FALSE;
}

const char *
wh_vk_context_device_name(const wh_context *ctx)
{
  (void)ctx;
  return "";
}
