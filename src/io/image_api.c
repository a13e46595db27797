/* The public face of image.c, for `strata predict` and applications. */
#include "io/image.h"

strata_status strata_image_load(const char *path, strata_image *out, strata_error *err)
{
	st_image img = {0};
	strata_status st = st_image_load(path, &img, err);
	out->pixels = img.pixels;
	out->width = img.width;
	out->height = img.height;
	return st;
}

strata_status strata_image_decode(const uint8_t *data, size_t len, strata_image *out, strata_error *err)
{
	st_image img = {0};
	strata_status st = st_image_decode(data, len, "the image", &img, err);
	out->pixels = img.pixels;
	out->width = img.width;
	out->height = img.height;
	return st;
}

void strata_image_free(strata_image *img)
{
	st_image im = {.pixels = img->pixels, .width = img->width, .height = img->height};
	st_image_free(&im);
	img->pixels = NULL;
	img->width = img->height = 0;
}
