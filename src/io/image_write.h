/* Writing 8-bit images as PNG (through libpng), for pictures the tool makes. */
#ifndef ST_IMAGE_WRITE_H
#define ST_IMAGE_WRITE_H

#include <stdint.h>

#include <strata/strata.h>

/* `pixels`: height rows of width x channels bytes, top row first; 1 channel is gray, 3 are RGB.
 * Written atomically (st_write_file_atomic): a reader sees the old file or the whole new one. */
strata_status st_image_write_png(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
                                 uint32_t channels, strata_error *err);

#endif
