/* Grayscale images for `strata predict`: PNG (through libpng) and PGM (P2 and P5), chosen by the
 * file's first bytes, never by its name. */
#ifndef ST_IMAGE_H
#define ST_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include <strata/strata.h>

/* Larger images are refused before any pixel buffer is allocated. */
#define ST_IMAGE_MAX_SIDE 16384u

/* 8-bit gray, row-major, width * height bytes, top row first. */
typedef struct st_image {
	uint8_t *pixels;
	uint32_t width, height;
} st_image;

/* PNG of any bit depth and colour type: palette expanded, alpha dropped, 16 bits scaled to 8
 * (rounded), colour turned gray with the Rec. 601 luma weights 0.299, 0.587, 0.114 as PIL's
 * convert("L") does. PGM with maxval up to 65535, scaled to 0..255 (rounded). A bad file is
 * STRATA_ERR_PARSE, a known but unsupported format (JPEG, PBM, PPM) STRATA_ERR_UNSUPPORTED, each
 * with a message that starts with `path`; *img is left empty on failure. Only a regular file is
 * opened (a FIFO or a device is refused at once), and no more of it is read than its header
 * promises: a PGM larger than its width, height and maxval allow is refused unread. */
strata_status st_image_load(const char *path, st_image *img, strata_error *err);

/* The same from bytes in memory; `name` stands for the file in messages. */
strata_status st_image_decode(const uint8_t *data, size_t len, const char *name, st_image *img,
                              strata_error *err);

void st_image_free(st_image *img);

#endif
