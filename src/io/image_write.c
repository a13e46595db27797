/* PNG writing through libpng's simplified API, which reports errors in the png_image instead of
 * by longjmp, so no setjmp is needed here. */
#include "io/image_write.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/fsutil.h"
#include "io/image.h"

strata_status st_image_write_png(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
                                  uint32_t channels, strata_error *err)
{
	if (channels != 1 && channels != 3)
		return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s: %u channels: only gray (1) and RGB (3) are written",
		               path, channels);
	if (width == 0 || height == 0 || width > ST_IMAGE_MAX_SIDE || height > ST_IMAGE_MAX_SIDE)
		return st_fail(err, STRATA_ERR_INVALID, "%s: an image of %u x %u pixels (1 to %u a side)", path,
		               width, height, ST_IMAGE_MAX_SIDE);
	png_image image;
	memset(&image, 0, sizeof(image));
	image.version = PNG_IMAGE_VERSION;
	image.width = width;
	image.height = height;
	image.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
	png_alloc_size_t size = 0;
	if (!png_image_write_get_memory_size(image, size, 0, pixels, 0, NULL))
		return st_fail(err, STRATA_ERR_INVALID, "%s: cannot encode the PNG: %s", path, image.message);
	void *png = malloc(size);
	if (!png) {
		png_image_free(&image);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory encoding %s", path);
	}
	strata_status st;
	if (!png_image_write_to_memory(&image, png, &size, 0, pixels, 0, NULL))
		st = st_fail(err, STRATA_ERR_INVALID, "%s: cannot encode the PNG: %s", path, image.message);
	else
		st = st_write_file_atomic(path, png, size, err);
	png_image_free(&image);
	free(png);
	return st;
}
