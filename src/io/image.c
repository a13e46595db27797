/* Image decoding for `strata predict`. A file is never read whole on trust: its first bytes say
 * what it is; a PNG is then read through libpng as it decodes, its dimensions checked from IHDR
 * before anything is allocated, and the reading stops at IEND; a PGM is read whole only when
 * its size is at most what its header promises (width, height and maxval), so a FIFO, a device
 * or a 64 GiB sparse file costs nothing. A cut file is an "unexpected end of file" the decoder
 * reports. libpng reports errors by longjmp: everything that changes after setjmp lives in a
 * png_job owned by the caller of the function holding the setjmp, so no local is left
 * indeterminate by the jump. */
#include "io/image.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/fsutil.h"

static const uint8_t jpeg_magic[3] = {0xFF, 0xD8, 0xFF};

/* The first bytes of a file, enough to tell its format and to hold a PGM's header, comments
 * included: a longer header is refused rather than read on. */
#define HEAD_BYTES 4096u
/* A plain (P2) PGM's value takes at most a line of the format's 70 characters, whitespace and
 * comments included: a larger file is refused before it is read. */
#define PGM_PLAIN_VALUE_MAX_BYTES 70u

/* Rec. 601 luma in PIL's 16-bit fixed point (convert("L")), rounded. */
static uint8_t luma(const uint8_t *rgb)
{
	return (uint8_t)(((uint32_t)rgb[0] * 19595u + (uint32_t)rgb[1] * 38470u + (uint32_t)rgb[2] * 7471u +
	                  0x8000u) >>
	                 16);
}

static void rgb_to_gray(const uint8_t *rgb, uint8_t *gray, uint32_t width)
{
	for (uint32_t x = 0; x < width; x++)
		gray[x] = luma(rgb + 3 * (size_t)x);
}

static strata_status check_size(const char *name, uint64_t width, uint64_t height, strata_error *err)
{
	if (width == 0 || height == 0)
		return st_fail(err, STRATA_ERR_PARSE, "%s: image of %llu x %llu pixels is empty", name,
		               (unsigned long long)width, (unsigned long long)height);
	if (width > ST_IMAGE_MAX_SIDE || height > ST_IMAGE_MAX_SIDE)
		return st_fail(err, STRATA_ERR_PARSE,
		               "%s: image of %llu x %llu pixels is larger than the %u x %u limit", name,
		               (unsigned long long)width, (unsigned long long)height, ST_IMAGE_MAX_SIDE,
		               ST_IMAGE_MAX_SIDE);
	return STRATA_OK;
}

/* ---- PNG ----------------------------------------------------------------------------------- */

typedef struct png_job {
	const char *name;
	const uint8_t *data; /* the image, or its first bytes when `file` holds the rest */
	size_t len, pos;
	FILE *file;
	char message[256];
	uint8_t *gray;   /* the result, width * height */
	uint8_t *rgb;    /* one row, or the whole image when interlaced */
	png_bytep *rows; /* row pointers for png_read_image */
	uint32_t width, height;
} png_job;

static void on_png_error(png_structp png, png_const_charp message)
{
	png_job *job = png_get_error_ptr(png);
	snprintf(job->message, sizeof(job->message), "%s", message);
	png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp message)
{
	/* Benign problems (an unknown ancillary chunk, a bad gamma) do not stop a digit from reading. */
	(void)png;
	(void)message;
}

static void on_png_read(png_structp png, png_bytep out, size_t n)
{
	png_job *job = png_get_io_ptr(png);
	size_t have = job->len - job->pos < n ? job->len - job->pos : n;
	memcpy(out, job->data + job->pos, have);
	job->pos += have;
	if (have < n && (!job->file || fread(out + have, 1, n - have, job->file) != n - have))
		png_error(png, job->file && ferror(job->file) ? "read error"
		                                             : "unexpected end of file: the image is truncated");
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Decodes into job->gray; on failure job->message says why (the caller frees job's buffers). */
static bool decode_png_job(png_job *job)
{
	png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, on_png_error, on_png_warning);
	if (!png) {
		snprintf(job->message, sizeof(job->message), "out of memory");
		return false;
	}
	png_infop info = png_create_info_struct(png);
	if (!info) {
		png_destroy_read_struct(&png, NULL, NULL);
		snprintf(job->message, sizeof(job->message), "out of memory");
		return false;
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_read_struct(&png, &info, NULL);
		return false;
	}
	png_set_read_fn(png, job, on_png_read);
	/* decode_png() checked IHDR's sides already; libpng checks them again as it reads. */
	png_set_user_limits(png, ST_IMAGE_MAX_SIDE, ST_IMAGE_MAX_SIDE);
	png_read_info(png, info);

	png_uint_32 width, height;
	int depth, color;
	png_get_IHDR(png, info, &width, &height, &depth, &color, NULL, NULL, NULL);
	if (color == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(png);
	if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
		png_set_expand_gray_1_2_4_to_8(png);
	if (depth == 16)
		png_set_scale_16(png);
	if (color & PNG_COLOR_MASK_ALPHA)
		png_set_strip_alpha(png);
	int passes = png_set_interlace_handling(png);
	png_read_update_info(png, info);
	int channels = png_get_channels(png, info);
	size_t rowbytes = png_get_rowbytes(png, info);
	if ((channels != 1 && channels != 3) || png_get_bit_depth(png, info) != 8 ||
	    rowbytes != (size_t)width * (size_t)channels)
		png_error(png, "unexpected pixel layout after conversion to 8 bits");

	job->width = width;
	job->height = height;
	job->gray = malloc((size_t)width * height);
	job->rows = malloc(height * sizeof(*job->rows));
	if (channels == 3)
		job->rgb = malloc(passes == 1 ? rowbytes : rowbytes * height);
	if (!job->gray || !job->rows || (channels == 3 && !job->rgb))
		png_error(png, "out of memory for the pixels");

	if (channels == 1) {
		for (uint32_t y = 0; y < height; y++)
			job->rows[y] = job->gray + (size_t)y * width;
		png_read_image(png, job->rows);
	} else if (passes == 1) {
		/* Row by row: a large colour image never needs its full RGB copy. */
		for (uint32_t y = 0; y < height; y++) {
			png_read_row(png, job->rgb, NULL);
			rgb_to_gray(job->rgb, job->gray + (size_t)y * width, width);
		}
	} else {
		for (uint32_t y = 0; y < height; y++)
			job->rows[y] = job->rgb + (size_t)y * rowbytes;
		png_read_image(png, job->rows);
		for (uint32_t y = 0; y < height; y++)
			rgb_to_gray(job->rows[y], job->gray + (size_t)y * width, width);
	}
	/* Reads up to IEND, so a file cut after the last pixel row is refused too. */
	png_read_end(png, NULL);
	png_destroy_read_struct(&png, &info, NULL);
	return true;
}

/* `data` holds the image, or its first `len` bytes when `file` (positioned after them) holds the
 * rest. */
static strata_status decode_png(const uint8_t *data, size_t len, FILE *file, const char *name, st_image *img,
                                strata_error *err)
{
	/* IHDR comes first: refuse a huge image by its header, before libpng allocates anything. */
	if (len >= 24 && !memcmp(data + 12, "IHDR", 4)) {
		strata_status st = check_size(name, get_be32(data + 16), get_be32(data + 20), err);
		if (st)
			return st;
	}
	png_job job = {.name = name, .data = data, .len = len, .file = file};
	strata_status st = STRATA_OK;
	if (!decode_png_job(&job)) {
		st = st_fail(err, STRATA_ERR_PARSE, "%s: not a valid PNG image: %s", name, job.message);
		goto out_free;
	}
	if ((st = check_size(name, job.width, job.height, err)))
		goto out_free;
	img->pixels = job.gray;
	img->width = job.width;
	img->height = job.height;
	job.gray = NULL;
out_free:
	free(job.rows);
	free(job.rgb);
	free(job.gray);
	return st;
}

/* ---- PGM ----------------------------------------------------------------------------------- */

typedef struct pgm_reader {
	const uint8_t *data;
	size_t len, pos;
	const char *name;
} pgm_reader;

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Skips whitespace and "#" comments, then reads a decimal number no larger than `max`. *found is
 * false at the end of the data. */
static strata_status pgm_number(pgm_reader *r, const char *what, uint32_t max, uint32_t *v, bool *found,
                                strata_error *err)
{
	for (;;) {
		while (r->pos < r->len && is_space(r->data[r->pos]))
			r->pos++;
		if (r->pos >= r->len || r->data[r->pos] != '#')
			break;
		while (r->pos < r->len && r->data[r->pos] != '\n' && r->data[r->pos] != '\r')
			r->pos++;
	}
	*found = r->pos < r->len;
	if (!*found)
		return STRATA_OK;
	size_t start = r->pos;
	uint64_t n = 0;
	while (r->pos < r->len && r->data[r->pos] >= '0' && r->data[r->pos] <= '9') {
		n = n * 10 + (uint64_t)(r->data[r->pos++] - '0');
		if (n > max)
			return st_fail(err, STRATA_ERR_PARSE, "%s: %s at offset %zu is larger than %u",
			               r->name, what, start, max);
	}
	if (r->pos == start || (r->pos < r->len && !is_space(r->data[r->pos]) && r->data[r->pos] != '#'))
		return st_fail(err, STRATA_ERR_PARSE, "%s: %s at offset %zu is not a number", r->name, what,
		               start);
	*v = (uint32_t)n;
	return STRATA_OK;
}

static strata_status pgm_header_number(pgm_reader *r, const char *what, uint32_t max, uint32_t *v,
                                       strata_error *err)
{
	bool found;
	strata_status st = pgm_number(r, what, max, v, &found, err);
	if (st)
		return st;
	if (!found)
		return st_fail(err, STRATA_ERR_PARSE, "%s: truncated PGM header: the %s is missing", r->name,
		               what);
	return STRATA_OK;
}

static uint8_t pgm_scale(uint32_t v, uint32_t maxval)
{
	return (uint8_t)(((uint64_t)v * 255u + maxval / 2) / maxval);
}

/* Width, height and maxval, after the magic: r->pos ends after maxval's last digit. */
static strata_status pgm_header(pgm_reader *r, uint32_t *width, uint32_t *height, uint32_t *maxval,
                                strata_error *err)
{
	strata_status st;
	r->pos = 2;
	/* Sides up to 10 digits are parsed so that the size check can name them. */
	if ((st = pgm_header_number(r, "width", UINT32_MAX, width, err)) ||
	    (st = pgm_header_number(r, "height", UINT32_MAX, height, err)) ||
	    (st = check_size(r->name, *width, *height, err)) ||
	    (st = pgm_header_number(r, "maxval", 65535, maxval, err)))
		return st;
	if (*maxval == 0)
		return st_fail(err, STRATA_ERR_PARSE, "%s: PGM maxval is 0 (1 to 65535 allowed)", r->name);
	return STRATA_OK;
}

static strata_status decode_pgm(const uint8_t *data, size_t len, const char *name, st_image *img,
                                strata_error *err)
{
	pgm_reader r = {.data = data, .len = len, .name = name};
	bool plain = data[1] == '2';
	uint32_t width, height, maxval;
	strata_status st = pgm_header(&r, &width, &height, &maxval, err);
	if (st)
		return st;

	size_t count = (size_t)width * height;
	uint8_t *pixels = malloc(count);
	if (!pixels)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory for %u x %u pixels", name, width,
		               height);
	if (plain) {
		for (size_t i = 0; i < count; i++) {
			uint32_t v;
			bool found;
			if ((st = pgm_number(&r, "a pixel value", maxval, &v, &found, err)))
				goto out_free;
			if (!found) {
				st = st_fail(err, STRATA_ERR_PARSE,
				             "%s: truncated PGM: %zu of %zu pixel values present", name, i,
				             count);
				goto out_free;
			}
			pixels[i] = pgm_scale(v, maxval);
		}
	} else {
		/* Exactly one whitespace byte separates maxval from the raster. */
		if (r.pos < len && !is_space(data[r.pos])) {
			st = st_fail(err, STRATA_ERR_PARSE,
			             "%s: PGM maxval is not followed by one whitespace byte", name);
			goto out_free;
		}
		r.pos++;
		size_t bytes = maxval < 256 ? 1 : 2;
		if (r.pos > len || (len - r.pos) / bytes < count) {
			st = st_fail(err, STRATA_ERR_PARSE,
			             "%s: truncated PGM: %u x %u pixels need %zu bytes of data, %zu present",
			             name, width, height, count * bytes, r.pos > len ? 0 : len - r.pos);
			goto out_free;
		}
		const uint8_t *p = data + r.pos;
		for (size_t i = 0; i < count; i++, p += bytes) {
			uint32_t v = bytes == 1 ? p[0] : (uint32_t)p[0] << 8 | p[1];
			if (v > maxval) {
				st = st_fail(err, STRATA_ERR_PARSE,
				             "%s: pixel %zu has value %u, above the maxval %u", name, i, v,
				             maxval);
				goto out_free;
			}
			pixels[i] = pgm_scale(v, maxval);
		}
	}
	img->pixels = pixels;
	img->width = width;
	img->height = height;
	return STRATA_OK;

out_free:
	free(pixels);
	return st;
}

/* ---- Entry points -------------------------------------------------------------------------- */

static bool is_pgm(const uint8_t *data, size_t len)
{
	return len >= 2 && data[0] == 'P' && (data[1] == '2' || data[1] == '5');
}

/* The most bytes a PGM whose header is in `head` (the file's first `len` of `size` bytes) can
 * take: its header, then width x height values of 1 or 2 bytes (P5) or of at most
 * PGM_PLAIN_VALUE_MAX_BYTES characters (P2). A header that does not end within `head` is refused:
 * the file is not read on in search of it. */
static strata_status pgm_bound(const uint8_t *head, size_t len, uint64_t size, const char *name, uint64_t *bound,
                               strata_error *err)
{
	pgm_reader r = {.data = head, .len = len, .name = name};
	uint32_t width, height, maxval;
	strata_status st = pgm_header(&r, &width, &height, &maxval, err);
	/* Reaching the end of `head` is the end of the header only when it is the end of the file. */
	if (r.pos >= len && len < size)
		return st_fail(err, STRATA_ERR_PARSE, "%s: the PGM header does not end within its first %u bytes",
		               name, HEAD_BYTES);
	if (st)
		return st;
	uint64_t count = (uint64_t)width * height;
	if (head[1] == '5')
		*bound = r.pos + 1 + count * (maxval < 256 ? 1 : 2);
	else
		*bound = r.pos + count * PGM_PLAIN_VALUE_MAX_BYTES;
	return STRATA_OK;
}

strata_status st_image_decode(const uint8_t *data, size_t len, const char *name, st_image *img,
                              strata_error *err)
{
	img->pixels = NULL;
	img->width = img->height = 0;
	if (len == 0)
		return st_fail(err, STRATA_ERR_PARSE, "%s: empty file, not an image", name);
	if (len >= 8 && !png_sig_cmp(data, 0, 8))
		return decode_png(data, len, NULL, name, img, err);
	if (is_pgm(data, len))
		return decode_pgm(data, len, name, img, err);
	if (len >= 2 && data[0] == 'P' && data[1] && strchr("1346", data[1]))
		return st_fail(err, STRATA_ERR_UNSUPPORTED,
		               "%s: a PBM or PPM image (P%c): only grayscale PGM (P2, P5) and PNG are read",
		               name, data[1]);
	if (len >= 3 && !memcmp(data, jpeg_magic, sizeof(jpeg_magic)))
		return st_fail(err, STRATA_ERR_UNSUPPORTED,
		               "%s: a JPEG image: only PNG and PGM (P2, P5) are read", name);
	return st_fail(err, STRATA_ERR_PARSE, "%s: not a PNG or PGM image", name);
}

strata_status st_image_load(const char *path, st_image *img, strata_error *err)
{
	img->pixels = NULL;
	img->width = img->height = 0;
	FILE *f;
	uint64_t size;
	strata_status st = st_fopen_regular(path, &f, &size, err);
	if (st)
		return st;
	uint8_t head[HEAD_BYTES];
	size_t len = fread(head, 1, size < sizeof(head) ? (size_t)size : sizeof(head), f);
	if (ferror(f)) {
		st = st_fail(err, STRATA_ERR_IO, "error reading %s: %s", path, strerror(errno));
		goto out_close;
	}
	if (len >= 8 && !png_sig_cmp(head, 0, 8)) {
		st = decode_png(head, len, f, path, img, err);
		goto out_close;
	}
	if (!is_pgm(head, len)) {
		/* Its first bytes say what it is, or that it is no image. */
		st = st_image_decode(head, len, path, img, err);
		goto out_close;
	}
	uint64_t bound = 0;
	if ((st = pgm_bound(head, len, size, path, &bound, err)))
		goto out_close;
	if (size > bound) {
		st = st_fail(err, STRATA_ERR_PARSE,
		             "%s: %llu bytes, more than the %llu bytes that its PGM header allows", path,
		             (unsigned long long)size, (unsigned long long)bound);
		goto out_close;
	}
	char *data;
	if ((st = st_read_file(path, "picture", bound, &data, &len, err)))
		goto out_close;
	st = st_image_decode((const uint8_t *)data, len, path, img, err);
	free(data);
out_close:
	fclose(f);
	return st;
}

void st_image_free(st_image *img)
{
	free(img->pixels);
	img->pixels = NULL;
	img->width = img->height = 0;
}
