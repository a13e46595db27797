/* Pictures the commands draw, written as PNG through cairo (whose encoder the plots use too). */
#include <stdlib.h>
#include <string.h>

#include <cairo.h>

#include "base/fsutil.h"
#include "cli.h"

typedef struct png_buffer {
	unsigned char *data;
	size_t len, cap;
} png_buffer;

static cairo_status_t png_append(void *closure, const unsigned char *data, unsigned int length)
{
	png_buffer *b = closure;
	if (b->len + length > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + length)
			cap *= 2;
		unsigned char *p = realloc(b->data, cap);
		if (!p)
			return CAIRO_STATUS_NO_MEMORY;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, length);
	b->len += length;
	return CAIRO_STATUS_SUCCESS;
}

int cli_write_png(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height, uint32_t channels)
{
	cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)width, (int)height);
	if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
		cli_error("cannot make a %u x %u picture: %s", width, height,
		          cairo_status_to_string(cairo_surface_status(surface)));
		cairo_surface_destroy(surface);
		return CLI_FAILED;
	}
	cairo_surface_flush(surface);
	unsigned char *data = cairo_image_surface_get_data(surface);
	int stride = cairo_image_surface_get_stride(surface);
	for (uint32_t y = 0; y < height; y++) {
		uint32_t *row = (uint32_t *)(data + (size_t)y * (size_t)stride);
		for (uint32_t x = 0; x < width; x++) {
			const uint8_t *p = pixels + ((size_t)y * width + x) * channels;
			row[x] = channels == 3 ? (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]
			                       : (uint32_t)p[0] * 0x010101u;
		}
	}
	cairo_surface_mark_dirty(surface);
	png_buffer png = {0};
	cairo_status_t cs = cairo_surface_write_to_png_stream(surface, png_append, &png);
	cairo_surface_destroy(surface);
	int rc = CLI_OK;
	strata_error err = {0};
	if (cs != CAIRO_STATUS_SUCCESS) {
		cli_error("cannot encode %s: %s", path, cairo_status_to_string(cs));
		rc = CLI_FAILED;
	} else if (st_write_file_atomic(path, png.data, png.len, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		rc = CLI_FAILED;
	}
	free(png.data);
	return rc;
}
