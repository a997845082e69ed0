/* test-backend-models.c — the whole-model sweep of the Vulkan backend: every shared model,
 * all four reference prompts, n_gpu_layers 0 / half / all + output, against the reference
 * logits and the CPU path (engine-slow suite; the tests themselves are in test-backend.c). */
#define WH_BACKEND_SWEEP 1
#include "test-backend.c"
