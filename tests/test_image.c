/* Images for `strata predict`: PNGs written here with libpng in several bit depths and colour
 * types (gray 1/8/16-bit, RGB, RGBA, palette, interlaced) and read back; PGM P2 (a fixture with
 * comments) and P5 (8 and 16 bits); and refusals: truncated, damaged, garbage, huge dimensions,
 * other formats, values above maxval, never a crash; FIFOs and files larger than their header
 * promises, refused without being read. */
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "io/image.h"
#include "support.h"

static char tmpdir[256];

static void make_tmpdir(void)
{
	ts_tmpdir_make(tmpdir, sizeof(tmpdir), "image");
}

static void remove_tmpdir(void)
{
	ts_tmpdir_remove(tmpdir);
}

static char *tmp_path(const char *name)
{
	return ts_join(tmpdir, name);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(p, 1, n, f), n);
	ck_assert_int_eq(fclose(f), 0);
}

static uint8_t *read_bytes(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	long len = ftell(f);
	ck_assert_int_ge(len, 0);
	rewind(f);
	*n = (size_t)len;
	uint8_t *p = malloc(*n + 1);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(fread(p, 1, *n, f), *n);
	fclose(f);
	return p;
}

/* Writes a PNG of `rows` (packed as libpng expects for the depth and colour type). */
static void write_png(const char *path, uint32_t w, uint32_t h, int depth, int color, int interlace,
                      uint8_t *const *rows, const png_color *palette, int n_palette)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	ck_assert_ptr_nonnull(png);
	png_infop info = png_create_info_struct(png);
	ck_assert_ptr_nonnull(info);
	ck_assert_int_eq(setjmp(png_jmpbuf(png)), 0);
	png_init_io(png, f);
	png_set_IHDR(png, info, w, h, depth, color, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
	             PNG_FILTER_TYPE_DEFAULT);
	if (palette)
		png_set_PLTE(png, info, palette, n_palette);
	png_write_info(png, info);
	png_write_image(png, (png_bytepp)rows);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	ck_assert_int_eq(fclose(f), 0);
}

static uint8_t **alloc_rows(uint32_t h, size_t rowbytes)
{
	uint8_t **rows = malloc(h * sizeof(*rows));
	ck_assert_ptr_nonnull(rows);
	for (uint32_t y = 0; y < h; y++) {
		rows[y] = calloc(1, rowbytes);
		ck_assert_ptr_nonnull(rows[y]);
	}
	return rows;
}

static void free_rows(uint8_t **rows, uint32_t h)
{
	for (uint32_t y = 0; y < h; y++)
		free(rows[y]);
	free(rows);
}

static st_image load_ok(const char *path, uint32_t w, uint32_t h)
{
	st_image img;
	strata_error err = {0};
	strata_status st = st_image_load(path, &img, &err);
	ck_assert_msg(st == STRATA_OK, "%s", err.message);
	ck_assert_uint_eq(img.width, w);
	ck_assert_uint_eq(img.height, h);
	ck_assert_ptr_nonnull(img.pixels);
	return img;
}

/* Expects refusal with `status` and a message that starts with the path; returns the rest. */
static void load_refused(const char *path, strata_status status, char *msg, size_t size)
{
	st_image img = {(uint8_t *)path, 7, 7};
	strata_error err = {0};
	strata_status st = st_image_load(path, &img, &err);
	ck_assert_msg(st == status, "%s: status %s, expected %s (%s)", path, strata_status_name(st),
	              strata_status_name(status), err.message);
	ck_assert_ptr_null(img.pixels);
	ck_assert_uint_eq(img.width, 0);
	ck_assert_uint_eq(img.height, 0);
	size_t n = strlen(path);
	ck_assert_msg(!strncmp(err.message, path, n) && err.message[n] == ':', "no path in: %s", err.message);
	snprintf(msg, size, "%s", err.message + n + 2);
}

static void assert_contains(const char *msg, const char *part)
{
	ck_assert_msg(strstr(msg, part), "\"%s\" not in \"%s\"", part, msg);
}

/* Rec. 601 luma, as PIL's convert("L"), computed in floating point: within one step of the
 * decoder's fixed point. */
static double luma(double r, double g, double b)
{
	return 0.299 * r + 0.587 * g + 0.114 * b;
}

static void assert_near(uint8_t got, double want, uint32_t x, uint32_t y)
{
	ck_assert_msg(fabs(got - want) <= 1.0, "pixel (%u, %u) is %u, expected %.2f", x, y, got, want);
}

START_TEST(test_png_gray8)
{
	make_tmpdir();
	char *path = tmp_path("gray8.png");
	uint32_t w = 13, h = 7;
	uint8_t **rows = alloc_rows(h, w);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
			rows[y][x] = (uint8_t)(x * 19 + y * 37);
	write_png(path, w, h, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, rows, NULL, 0);
	st_image img = load_ok(path, w, h);
	for (uint32_t y = 0; y < h; y++)
		ck_assert_int_eq(memcmp(img.pixels + y * w, rows[y], w), 0);
	st_image_free(&img);
	ck_assert_ptr_null(img.pixels);
	free_rows(rows, h);
	free(path);
	remove_tmpdir();
}
END_TEST

START_TEST(test_png_gray16)
{
	make_tmpdir();
	char *path = tmp_path("gray16.png");
	uint32_t w = 9, h = 5;
	uint8_t **rows = alloc_rows(h, 2 * w);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			uint16_t v = (uint16_t)(x * 7001 + y * 12007 + 3);
			rows[y][2 * x] = (uint8_t)(v >> 8);
			rows[y][2 * x + 1] = (uint8_t)v;
		}
	write_png(path, w, h, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, rows, NULL, 0);
	st_image img = load_ok(path, w, h);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			uint16_t v = (uint16_t)(rows[y][2 * x] << 8 | rows[y][2 * x + 1]);
			assert_near(img.pixels[y * w + x], v * 255.0 / 65535.0, x, y);
		}
	st_image_free(&img);
	free_rows(rows, h);
	free(path);
	remove_tmpdir();
}
END_TEST

/* RGB, RGBA (alpha dropped) and Adam7-interlaced RGB: all three give the same luma. */
START_TEST(test_png_rgb_rgba_interlaced)
{
	make_tmpdir();
	uint32_t w = 11, h = 10;
	uint8_t **rgb = alloc_rows(h, 3 * w), **rgba = alloc_rows(h, 4 * w);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			uint8_t c[4] = {(uint8_t)(x * 23), (uint8_t)(y * 25 + x), (uint8_t)(255 - x * y),
			                (uint8_t)(x * 9)};
			if (x == 0 && y == 0)
				c[0] = c[1] = c[2] = 255; /* white stays white */
			if (x == 1 && y == 0)
				c[0] = c[1] = c[2] = 0;
			memcpy(rgb[y] + 3 * x, c, 3);
			memcpy(rgba[y] + 4 * x, c, 4);
		}
	const struct {
		const char *name;
		int color, interlace;
		uint8_t **rows;
	} cases[] = {
	        {"rgb.png", PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, rgb},
	        {"rgba.png", PNG_COLOR_TYPE_RGB_ALPHA, PNG_INTERLACE_NONE, rgba},
	        {"adam7.png", PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7, rgb},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char *path = tmp_path(cases[c].name);
		write_png(path, w, h, 8, cases[c].color, cases[c].interlace, cases[c].rows, NULL, 0);
		st_image img = load_ok(path, w, h);
		ck_assert_uint_eq(img.pixels[0], 255);
		ck_assert_uint_eq(img.pixels[1], 0);
		for (uint32_t y = 0; y < h; y++)
			for (uint32_t x = 0; x < w; x++) {
				const uint8_t *p = rgb[y] + 3 * x;
				assert_near(img.pixels[y * w + x], luma(p[0], p[1], p[2]), x, y);
			}
		st_image_free(&img);
		free(path);
	}
	free_rows(rgb, h);
	free_rows(rgba, h);
	remove_tmpdir();
}
END_TEST

/* A 4-bit palette and 1-bit gray: expanded to 8 bits. */
START_TEST(test_png_palette_and_1bit)
{
	make_tmpdir();
	uint32_t w = 10, h = 3;
	png_color palette[16];
	for (int i = 0; i < 16; i++)
		palette[i] = (png_color){(png_byte)(i * 16), (png_byte)(255 - i * 16), (png_byte)(i * 7)};
	uint8_t **rows = alloc_rows(h, (w + 1) / 2);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
			rows[y][x / 2] |= (uint8_t)(((x + y * 5) % 16) << (x % 2 ? 0 : 4));
	char *path = tmp_path("palette.png");
	write_png(path, w, h, 4, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, rows, palette, 16);
	st_image img = load_ok(path, w, h);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			png_color c = palette[(x + y * 5) % 16];
			assert_near(img.pixels[y * w + x], luma(c.red, c.green, c.blue), x, y);
		}
	st_image_free(&img);
	free_rows(rows, h);
	free(path);

	rows = alloc_rows(h, (w + 7) / 8);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
			if ((x + y) % 3 == 0)
				rows[y][x / 8] |= (uint8_t)(0x80 >> (x % 8));
	path = tmp_path("bits.png");
	write_png(path, w, h, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, rows, NULL, 0);
	img = load_ok(path, w, h);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
			ck_assert_uint_eq(img.pixels[y * w + x], (x + y) % 3 == 0 ? 255 : 0);
	st_image_free(&img);
	free_rows(rows, h);
	free(path);
	remove_tmpdir();
}
END_TEST

/* tests/data/ramp_p2.pgm: 4 x 3, maxval 15, comments in the header; row-major values 0..11
 * except the last, 15. */
START_TEST(test_pgm_p2_fixture)
{
	char *path = ts_src_path("data/ramp_p2.pgm");
	st_image img = load_ok(path, 4, 3);
	for (uint32_t i = 0; i < 12; i++) {
		uint32_t v = i == 11 ? 15 : i;
		ck_assert_uint_eq(img.pixels[i], (uint32_t)lround(v * 255.0 / 15.0));
	}
	st_image_free(&img);
	free(path);
}
END_TEST

START_TEST(test_pgm_p5)
{
	make_tmpdir();
	uint32_t w = 6, h = 4;
	/* 8 bits, maxval 255: the bytes as they are. */
	char head[64];
	int n = snprintf(head, sizeof(head), "P5\n# made by test_image\n%u %u\n255\n", w, h);
	uint8_t buf[256];
	memcpy(buf, head, (size_t)n);
	for (uint32_t i = 0; i < w * h; i++)
		buf[n + i] = (uint8_t)(i * 11);
	char *path = tmp_path("p5.pgm");
	write_bytes(path, buf, (size_t)n + w * h);
	st_image img = load_ok(path, w, h);
	ck_assert_int_eq(memcmp(img.pixels, buf + n, w * h), 0);
	st_image_free(&img);
	free(path);

	/* 16 bits big-endian, maxval 65535 and maxval 1000: scaled to 0..255, rounded. */
	const uint32_t maxvals[2] = {65535, 1000};
	for (int m = 0; m < 2; m++) {
		n = snprintf(head, sizeof(head), "P5 %u %u %u\n", w, h, maxvals[m]);
		memcpy(buf, head, (size_t)n);
		for (uint32_t i = 0; i < w * h; i++) {
			uint32_t v = i * maxvals[m] / (w * h - 1);
			buf[n + 2 * i] = (uint8_t)(v >> 8);
			buf[n + 2 * i + 1] = (uint8_t)v;
		}
		path = tmp_path("p5_16.pgm");
		write_bytes(path, buf, (size_t)n + 2 * w * h);
		img = load_ok(path, w, h);
		for (uint32_t i = 0; i < w * h; i++) {
			uint32_t v = i * maxvals[m] / (w * h - 1);
			ck_assert_uint_eq(img.pixels[i], (uint32_t)lround(v * 255.0 / maxvals[m]));
		}
		ck_assert_uint_eq(img.pixels[0], 0);
		ck_assert_uint_eq(img.pixels[w * h - 1], 255);
		st_image_free(&img);
		free(path);
	}
	remove_tmpdir();
}
END_TEST

/* A valid PNG cut at several lengths, and with a flipped byte in its pixel data. */
START_TEST(test_png_truncated_and_damaged)
{
	make_tmpdir();
	char *path = tmp_path("whole.png");
	uint32_t w = 32, h = 32;
	uint8_t **rows = alloc_rows(h, w);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
			rows[y][x] = (uint8_t)(x * y);
	write_png(path, w, h, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, rows, NULL, 0);
	free_rows(rows, h);
	size_t n;
	uint8_t *png = read_bytes(path, &n);
	char *cut_path = tmp_path("cut.png");
	char msg[STRATA_ERROR_MAX];
	size_t cuts[] = {8, 12, 20, 33, 40, n / 2, n - 13, n - 12, n - 1};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		write_bytes(cut_path, png, cuts[i]);
		load_refused(cut_path, STRATA_ERR_PARSE, msg, sizeof(msg));
		ck_assert_msg(strstr(msg, "not a valid PNG image"), "cut at %zu: %s", cuts[i], msg);
	}
	/* The IDAT chunk follows IHDR (33 bytes in); its data start 8 bytes later. */
	png[33 + 8 + 4] ^= 0x55;
	write_bytes(cut_path, png, n);
	load_refused(cut_path, STRATA_ERR_PARSE, msg, sizeof(msg));
	assert_contains(msg, "not a valid PNG image");
	free(png);
	free(cut_path);
	free(path);
	remove_tmpdir();
}
END_TEST

static uint32_t be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return v;
}

START_TEST(test_huge_dimensions)
{
	make_tmpdir();
	char msg[STRATA_ERROR_MAX];
	/* A PNG signature and a well-formed IHDR claiming 20000 x 100: refused by its header. */
	uint8_t png[8 + 25];
	memcpy(png, "\x89PNG\r\n\x1a\n", 8);
	be32(png + 8, 13);
	memcpy(png + 12, "IHDR", 4);
	be32(png + 16, 20000);
	be32(png + 20, 100);
	png[24] = 8;
	png[25] = PNG_COLOR_TYPE_GRAY;
	png[26] = png[27] = png[28] = 0;
	be32(png + 29, (uint32_t)crc32(crc32(0, NULL, 0), png + 12, 17));
	char *path = tmp_path("huge.png");
	write_bytes(path, png, sizeof(png));
	load_refused(path, STRATA_ERR_PARSE, msg, sizeof(msg));
	ck_assert_str_eq(msg, "image of 20000 x 100 pixels is larger than the 16384 x 16384 limit");
	free(path);

	/* PGM: too wide, too tall, a side of ten digits, and an empty image. */
	const struct {
		const char *text, *message;
	} pgms[] = {
	        {"P5 16385 1 255\n", "image of 16385 x 1 pixels is larger than the 16384 x 16384 limit"},
	        {"P2 1 100000 255\n", "image of 1 x 100000 pixels is larger than the 16384 x 16384 limit"},
	        {"P5 4294967295 4294967295 255\n", "image of 4294967295 x 4294967295 pixels is larger than"},
	        {"P5 99999999999 2 255\n", "width at offset 3 is larger than 4294967295"},
	        {"P2 0 3 255\n", "image of 0 x 3 pixels is empty"},
	};
	path = tmp_path("huge.pgm");
	for (size_t i = 0; i < sizeof(pgms) / sizeof(pgms[0]); i++) {
		write_bytes(path, pgms[i].text, strlen(pgms[i].text));
		load_refused(path, STRATA_ERR_PARSE, msg, sizeof(msg));
		assert_contains(msg, pgms[i].message);
	}
	free(path);
	remove_tmpdir();
}
END_TEST

START_TEST(test_bad_pgm)
{
	make_tmpdir();
	char msg[STRATA_ERROR_MAX];
	/* No NUL bytes in these, binary or not: strlen gives their length. */
	const struct {
		const char *text, *message;
	} cases[] = {
	        {"P5\n3 2\n255\n\x01\x02\x03\x04",
	         "truncated PGM: 3 x 2 pixels need 6 bytes of data, 4 present"},
	        {"P5\n3 2\n65535\n\x01\x02\x03\x04",
	         "truncated PGM: 3 x 2 pixels need 12 bytes of data, 4 present"},
	        {"P5\n3 2\n255", "truncated PGM: 3 x 2 pixels need 6 bytes of data, 0 present"},
	        {"P2\n3 2\n255\n1 2 3 4", "truncated PGM: 4 of 6 pixel values present"},
	        {"P2\n3 2\n", "truncated PGM header: the maxval is missing"},
	        {"P2\n3", "truncated PGM header: the height is missing"},
	        {"P2\n3 2\n7\n1 2 3 4 5 8", "a pixel value at offset 19 is larger than 7"},
	        {"P5\n1 2\n7\n\x01\x09", "pixel 1 has value 9, above the maxval 7"},
	        {"P2\n3 2\n0\n0 0 0 0 0 0", "PGM maxval is 0 (1 to 65535 allowed)"},
	        {"P2\n3 2\n70000\n", "maxval at offset 7 is larger than 65535"},
	        {"P2\nthree 2 255\n", "width at offset 3 is not a number"},
	        {"P2\n3 2 255\n1 2 x 4 5 6", "a pixel value at offset 15 is not a number"},
	        {"P5\n1 1\n255#\x01", "PGM maxval is not followed by one whitespace byte"},
	};
	char *path = tmp_path("bad.pgm");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_bytes(path, cases[i].text, strlen(cases[i].text));
		load_refused(path, STRATA_ERR_PARSE, msg, sizeof(msg));
		ck_assert_msg(strstr(msg, cases[i].message), "case %zu: \"%s\" not in \"%s\"", i,
		              cases[i].message, msg);
	}
	free(path);
	remove_tmpdir();
}
END_TEST

START_TEST(test_other_files)
{
	make_tmpdir();
	char msg[STRATA_ERROR_MAX];
	char *path = tmp_path("other");
	write_bytes(path, "", 0);
	load_refused(path, STRATA_ERR_PARSE, msg, sizeof(msg));
	ck_assert_str_eq(msg, "empty file, not an image");
	write_bytes(path, "GIF89a\x01\x00", 8);
	load_refused(path, STRATA_ERR_PARSE, msg, sizeof(msg));
	ck_assert_str_eq(msg, "not a PNG or PGM image");
	write_bytes(path, "\xff\xd8\xff\xe0\x00\x10JFIF", 10);
	load_refused(path, STRATA_ERR_UNSUPPORTED, msg, sizeof(msg));
	assert_contains(msg, "a JPEG image");
	write_bytes(path, "P6\n1 1\n255\n\x01\x02\x03", 14);
	load_refused(path, STRATA_ERR_UNSUPPORTED, msg, sizeof(msg));
	assert_contains(msg, "(P6): only grayscale PGM");
	free(path);
	path = tmp_path("missing.png");
	st_image img;
	strata_error err = {0};
	ck_assert_int_eq(st_image_load(path, &img, &err), STRATA_ERR_NOT_FOUND);
	ck_assert_ptr_null(img.pixels);
	assert_contains(err.message, path);
	free(path);
	remove_tmpdir();
}
END_TEST

/* Files that are not what a picture's header promises, through st_image_load: a FIFO is
 * refused at once (this test's case has a 20 s timeout, so that a blocking open fails it); a
 * PGM grown into a 64 GiB sparse file (truncate: no disk space) is refused by its size, unread;
 * a PNG grown the same way is read only up to its IEND; a PGM header that does not end within
 * the first 4096 bytes is not searched for further. Before, each file was read whole first. */
START_TEST(test_special_and_oversized_files)
{
	make_tmpdir();
	char msg[STRATA_ERROR_MAX], want[512];
	const off_t huge = (off_t)64 << 30;
	st_image img;
	strata_error err = {0};

	char *path = tmp_path("pipe.png");
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(st_image_load(path, &img, &err), STRATA_ERR_INVALID);
	snprintf(want, sizeof(want), "%s is a FIFO (named pipe), not a regular file", path);
	ck_assert_str_eq(err.message, want);
	ck_assert_ptr_null(img.pixels);
	unlink(path);
	free(path);

	/* P5, 2 x 2, maxval 255: an 11-byte header, then 4 bytes. */
	path = tmp_path("grown.pgm");
	write_bytes(path, "P5 2 2 255\n\x01\x02\x03\x04", 15);
	img = load_ok(path, 2, 2);
	st_image_free(&img);
	ck_assert_int_eq(truncate(path, huge), 0);
	load_refused(path, STRATA_ERR_PARSE, msg, sizeof(msg));
	ck_assert_str_eq(msg, "68719476736 bytes, more than the 15 bytes that its PGM header allows");
	write_bytes(path, "P5 2 2 255\n\x01\x02\x03\x04\n", 16);
	load_refused(path, STRATA_ERR_PARSE, msg, sizeof(msg));
	ck_assert_str_eq(msg, "16 bytes, more than the 15 bytes that its PGM header allows");
	/* P2: up to 70 bytes a value after the header's 10. */
	write_bytes(path, "P2 2 2 255\n1 2 3 4\n", 19);
	img = load_ok(path, 2, 2);
	st_image_free(&img);
	ck_assert_int_eq(truncate(path, huge), 0);
	load_refused(path, STRATA_ERR_PARSE, msg, sizeof(msg));
	ck_assert_str_eq(msg, "68719476736 bytes, more than the 290 bytes that its PGM header allows");
	/* A comment that carries the header past the first 4096 bytes. */
	char *text = malloc(6000);
	ck_assert_ptr_nonnull(text);
	int n = snprintf(text, 6000, "P2\n# %05000d\n2 2 255\n1 2 3 4\n", 0);
	write_bytes(path, text, (size_t)n);
	load_refused(path, STRATA_ERR_PARSE, msg, sizeof(msg));
	ck_assert_str_eq(msg, "the PGM header does not end within its first 4096 bytes");
	free(text);
	free(path);

	/* A PNG followed by 64 GiB of zeros decodes: libpng stops at IEND. */
	path = tmp_path("grown.png");
	uint8_t **rows = alloc_rows(3, 4);
	for (uint32_t y = 0; y < 3; y++)
		for (uint32_t x = 0; x < 4; x++)
			rows[y][x] = (uint8_t)(40 * y + 10 * x);
	write_png(path, 4, 3, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, rows, NULL, 0);
	ck_assert_int_eq(truncate(path, huge), 0);
	img = load_ok(path, 4, 3);
	for (uint32_t y = 0; y < 3; y++)
		ck_assert_int_eq(memcmp(img.pixels + 4 * y, rows[y], 4), 0);
	st_image_free(&img);
	free_rows(rows, 3);
	/* Cut inside its data: the end of the file, not a read of what is not there. */
	size_t len;
	write_png(path, 4, 3, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, (rows = alloc_rows(3, 4)), NULL, 0);
	free_rows(rows, 3);
	free(read_bytes(path, &len));
	ck_assert_int_eq(truncate(path, (off_t)len - 20), 0);
	load_refused(path, STRATA_ERR_PARSE, msg, sizeof(msg));
	assert_contains(msg, "unexpected end of file");
	unlink(path);
	free(path);
	remove_tmpdir();
}
END_TEST

/* Random damage to a PNG and a PGM in memory: a clean answer every time, never a crash. */
START_TEST(test_damage_never_crashes)
{
	make_tmpdir();
	char *path = tmp_path("seed.png");
	uint32_t w = 16, h = 16;
	uint8_t **rows = alloc_rows(h, 3 * w);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < 3 * w; x++)
			rows[y][x] = (uint8_t)(x * 5 + y);
	write_png(path, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7, rows, NULL, 0);
	free_rows(rows, h);
	size_t png_n;
	uint8_t *png = read_bytes(path, &png_n);
	uint8_t pgm[64 + 64];
	int pgm_n = snprintf((char *)pgm, 64, "P5 8 8 255\n");
	for (int i = 0; i < 64; i++)
		pgm[pgm_n + i] = (uint8_t)(i * 4);
	pgm_n += 64;
	const uint8_t *seeds[2] = {png, pgm};
	size_t sizes[2] = {png_n, (size_t)pgm_n};
	float r[3 * 400];
	ts_fill_random(r, 3 * 400, 11, 0.0f, 1.0f);
	for (int i = 0; i < 400; i++) {
		int which = i % 2;
		size_t n = sizes[which];
		uint8_t *d = malloc(n);
		ck_assert_ptr_nonnull(d);
		memcpy(d, seeds[which], n);
		d[(size_t)(r[3 * i] * (float)n)] = (uint8_t)(r[3 * i + 1] * 256.0f);
		/* Every fourth one is also cut short. */
		size_t len = i % 4 == 3 ? (size_t)(r[3 * i + 2] * (float)n) : n;
		st_image img;
		strata_error err = {0};
		strata_status st = st_image_decode(d, len, "damaged", &img, &err);
		if (st == STRATA_OK) {
			ck_assert_ptr_nonnull(img.pixels);
			ck_assert(img.width >= 1 && img.width <= ST_IMAGE_MAX_SIDE);
			st_image_free(&img);
		} else {
			ck_assert_msg(st == STRATA_ERR_PARSE || st == STRATA_ERR_UNSUPPORTED, "%s",
			              strata_status_name(st));
			ck_assert_ptr_null(img.pixels);
			ck_assert_msg(!strncmp(err.message, "damaged: ", 9), "%s", err.message);
		}
		free(d);
	}
	free(png);
	free(path);
	remove_tmpdir();
}
END_TEST

static Suite *image_suite(void)
{
	Suite *s = suite_create("image");
	TCase *tc = tcase_create("decode");
	tcase_add_test(tc, test_png_gray8);
	tcase_add_test(tc, test_png_gray16);
	tcase_add_test(tc, test_png_rgb_rgba_interlaced);
	tcase_add_test(tc, test_png_palette_and_1bit);
	tcase_add_test(tc, test_pgm_p2_fixture);
	tcase_add_test(tc, test_pgm_p5);
	tcase_add_test(tc, test_png_truncated_and_damaged);
	tcase_add_test(tc, test_huge_dimensions);
	tcase_add_test(tc, test_bad_pgm);
	tcase_add_test(tc, test_other_files);
	tcase_add_test(tc, test_damage_never_crashes);
	suite_add_tcase(s, tc);
	TCase *special = tcase_create("special_files");
	tcase_set_timeout(special, 20);
	tcase_add_test(special, test_special_and_oversized_files);
	suite_add_tcase(s, special);
	return s;
}

int main(void)
{
	return ts_run(image_suite());
}
