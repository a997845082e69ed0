/* fuzz-main.h — the contract between a fuzz target and the driver. */
#pragma once

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

/* The target: must never crash, leak or read out of bounds, whatever
 * @data holds. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The target adds its seed inputs (GBytes) to @seeds: real files from the
 * shared data and hand-made edge cases. */
void wh_fuzz_collect_seeds(GPtrArray *seeds);
