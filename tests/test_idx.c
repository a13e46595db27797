/* IDX files written to a temporary folder: plain and gzip, every element type converted from
 * big-endian, and the refusals: truncated data or header, headers whose sizes lie or overflow,
 * trailing bytes, bad magic, unknown type, bad rank, empty and missing files. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "support.h"

static char tmpdir[256];

static void make_tmpdir(void)
{
	ts_tmpdir_make(tmpdir, sizeof(tmpdir), "idx");
}

static void remove_tmpdir(void)
{
	ts_tmpdir_remove(tmpdir);
}

typedef struct bytes {
	uint8_t *p;
	size_t n, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		ck_assert_ptr_nonnull(b->p);
	}
	memcpy(b->p + b->n, src, n);
	b->n += n;
}

static void put_be(bytes *b, uint64_t v, int size)
{
	uint8_t x[8];
	for (int i = 0; i < size; i++)
		x[i] = (uint8_t)(v >> (8 * (size - 1 - i)));
	put(b, x, (size_t)size);
}

static void header(bytes *b, uint8_t type, uint8_t rank, const uint32_t *dims)
{
	uint8_t magic[4] = {0, 0, type, rank};
	put(b, magic, 4);
	for (uint8_t i = 0; i < rank; i++)
		put_be(b, dims[i], 4);
}

static char *write_file(const char *name, const bytes *b, bool gzip)
{
	size_t len = strlen(tmpdir) + strlen(name) + 2;
	char *path = malloc(len);
	ck_assert_ptr_nonnull(path);
	snprintf(path, len, "%s/%s", tmpdir, name);
	if (gzip) {
		gzFile f = gzopen(path, "wb");
		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(gzwrite(f, b->p, (unsigned)b->n), (int)b->n);
		ck_assert_int_eq(gzclose(f), Z_OK);
	} else {
		FILE *f = fopen(path, "wb");
		ck_assert_ptr_nonnull(f);
		ck_assert_uint_eq(fwrite(b->p, 1, b->n, f), b->n);
		fclose(f);
	}
	return path;
}

static strata_idx *load_ok(const char *path)
{
	strata_idx *idx = NULL;
	strata_error err = {0};
	strata_status st = strata_idx_load(path, &idx, &err);
	ck_assert_msg(st == STRATA_OK, "%s", err.message);
	return idx;
}

/* Loads a file that must be refused; checks the status and that the message names the path. */
static void load_fail(const char *path, strata_status status, strata_error *err)
{
	strata_idx *idx = (strata_idx *)err;
	memset(err, 0, sizeof(*err));
	strata_status st = strata_idx_load(path, &idx, err);
	ck_assert_msg(st == status, "%s: status %s, expected %s (%s)", path, strata_status_name(st),
	              strata_status_name(status), err->message);
	ck_assert_ptr_null(idx);
	ck_assert_msg(!strncmp(err->message, path, strlen(path)), "message does not name the path: %s",
	              err->message);
}

/* An MNIST-like image file: n images of h x w bytes, pixel = (image * 31 + pixel) % 256. */
static void mnist_like(bytes *b, uint32_t n, uint32_t h, uint32_t w)
{
	uint32_t dims[3] = {n, h, w};
	header(b, 0x08, 3, dims);
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t p = 0; p < h * w; p++) {
			uint8_t v = (uint8_t)((i * 31 + p) % 256);
			put(b, &v, 1);
		}
}

static void check_mnist_like(const strata_idx *idx, uint32_t n, uint32_t h, uint32_t w)
{
	ck_assert_uint_eq(idx->type, 0x08);
	ck_assert_uint_eq(idx->rank, 3);
	ck_assert_uint_eq(idx->dims[0], n);
	ck_assert_uint_eq(idx->dims[1], h);
	ck_assert_uint_eq(idx->dims[2], w);
	ck_assert_uint_eq(idx->count, (uint64_t)n * h * w);
	const uint8_t *d = idx->data;
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t p = 0; p < h * w; p++)
			ck_assert_uint_eq(d[(size_t)i * h * w + p], (i * 31 + p) % 256);
}

START_TEST(test_plain)
{
	make_tmpdir();
	bytes b = {0};
	mnist_like(&b, 7, 28, 28);
	char *path = write_file("images-idx3-ubyte", &b, false);
	strata_idx *idx = load_ok(path);
	check_mnist_like(idx, 7, 28, 28);
	strata_idx_free(idx);
	free(path);
	free(b.p);
	remove_tmpdir();
}
END_TEST

/* Larger than the loader's first 1 MiB buffer, so the data arrives over several reads. */
START_TEST(test_gzip)
{
	make_tmpdir();
	bytes b = {0};
	mnist_like(&b, 1500, 28, 28);
	char *path = write_file("images-idx3-ubyte.gz", &b, true);
	strata_idx *idx = load_ok(path);
	check_mnist_like(idx, 1500, 28, 28);
	strata_idx_free(idx);
	free(path);
	free(b.p);
	remove_tmpdir();
}
END_TEST

START_TEST(test_multibyte_big_endian)
{
	make_tmpdir();
	const int16_t shorts[] = {1, -2, 0x1234, -32768, 32767};
	const int32_t ints[] = {1, -1, 0x12345678, INT32_MIN, 70000};
	const float floats[] = {1.5f, -0.25f, 3.0e38f, 0.0f, 1.0e-30f};
	const double doubles[] = {1.0 / 3.0, -2.5e300, 0.0, 42.0, -1.0e-300};
	const int8_t sbytes[] = {-128, -1, 0, 1, 127};
	uint32_t dims[2] = {1, 5};
	for (int gz = 0; gz < 2; gz++) {
		bytes b16 = {0}, b32 = {0}, bf = {0}, bd = {0}, b8 = {0};
		header(&b16, 0x0B, 2, dims);
		header(&b32, 0x0C, 2, dims);
		header(&bf, 0x0D, 2, dims);
		header(&bd, 0x0E, 2, dims);
		header(&b8, 0x09, 2, dims);
		for (int i = 0; i < 5; i++) {
			uint32_t fu;
			uint64_t du;
			memcpy(&fu, &floats[i], 4);
			memcpy(&du, &doubles[i], 8);
			put_be(&b16, (uint16_t)shorts[i], 2);
			put_be(&b32, (uint32_t)ints[i], 4);
			put_be(&bf, fu, 4);
			put_be(&bd, du, 8);
			put(&b8, &sbytes[i], 1);
		}
		char *p16 = write_file(gz ? "s.gz" : "s", &b16, gz),
		     *p32 = write_file(gz ? "i.gz" : "i", &b32, gz);
		char *pf = write_file(gz ? "f.gz" : "f", &bf, gz),
		     *pd = write_file(gz ? "d.gz" : "d", &bd, gz);
		char *p8 = write_file(gz ? "b.gz" : "b", &b8, gz);
		strata_idx *i16 = load_ok(p16), *i32 = load_ok(p32), *iff = load_ok(pf), *idd = load_ok(pd);
		strata_idx *i8 = load_ok(p8);
		ck_assert_uint_eq(i16->type, 0x0B);
		ck_assert_uint_eq(idd->count, 5);
		for (int i = 0; i < 5; i++) {
			ck_assert_int_eq(((const int16_t *)i16->data)[i], shorts[i]);
			ck_assert_int_eq(((const int32_t *)i32->data)[i], ints[i]);
			ck_assert(((const float *)iff->data)[i] == floats[i]);
			ck_assert(((const double *)idd->data)[i] == doubles[i]);
			ck_assert_int_eq(((const int8_t *)i8->data)[i], sbytes[i]);
		}
		strata_idx_free(i16);
		strata_idx_free(i32);
		strata_idx_free(iff);
		strata_idx_free(idd);
		strata_idx_free(i8);
		free(p16);
		free(p32);
		free(pf);
		free(pd);
		free(p8);
		free(b16.p);
		free(b32.p);
		free(bf.p);
		free(bd.p);
		free(b8.p);
	}
	remove_tmpdir();
}
END_TEST

START_TEST(test_truncated)
{
	make_tmpdir();
	bytes b = {0};
	mnist_like(&b, 3, 4, 4);
	b.n -= 5; /* 48 data bytes declared, 43 present */
	for (int gz = 0; gz < 2; gz++) {
		char *path = write_file(gz ? "t.gz" : "t", &b, gz);
		strata_error err;
		load_fail(path, STRATA_ERR_PARSE, &err);
		char expect[512];
		snprintf(expect, sizeof(expect),
		         "%s: truncated: the header (3 x 4 x 4 of unsigned byte) declares %d bytes in all, "
		         "the file has %d",
		         path, 16 + 48, 16 + 43);
		ck_assert_str_eq(err.message, expect);
		free(path);
	}
	/* Cut inside the dimensions. */
	b.n = 10;
	char *path = write_file("h", &b, false);
	strata_error err;
	load_fail(path, STRATA_ERR_PARSE, &err);
	ck_assert_ptr_nonnull(
	        strstr(err.message, "truncated header: rank 3 needs 16 bytes of header, the file has 10"));
	free(path);
	free(b.p);
	remove_tmpdir();
}
END_TEST

/* A header claiming far more than the file holds is refused without allocating its claim. */
START_TEST(test_lying_header)
{
	make_tmpdir();
	bytes b = {0};
	uint32_t dims[3] = {4000000000u, 4000000000u, 1};
	header(&b, 0x08, 3, dims);
	put(&b, "abcdefgh", 8);
	char *path = write_file("lie", &b, false);
	strata_error err;
	load_fail(path, STRATA_ERR_PARSE, &err);
	char expect[512];
	snprintf(expect, sizeof(expect),
	         "%s: truncated: the header (4000000000 x 4000000000 x 1 of unsigned byte) "
	         "declares %llu bytes in all, the file has %d",
	         path, 16ull + 4000000000ull * 4000000000ull, 16 + 8);
	ck_assert_str_eq(err.message, expect);
	free(path);

	/* Dimensions whose product overflows 64 bits. */
	b.n = 0;
	uint32_t huge[4] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 2};
	header(&b, 0x0E, 4, huge);
	path = write_file("overflow", &b, false);
	load_fail(path, STRATA_ERR_OVERFLOW, &err);
	ck_assert_ptr_nonnull(
	        strstr(err.message, "4294967295 x 4294967295 x 4294967295 x 2 of double overflow"));
	free(path);
	free(b.p);
	remove_tmpdir();
}
END_TEST

START_TEST(test_trailing_bytes)
{
	make_tmpdir();
	bytes b = {0};
	mnist_like(&b, 2, 3, 3);
	put(&b, "xyz", 3);
	for (int gz = 0; gz < 2; gz++) {
		char *path = write_file(gz ? "tr.gz" : "tr", &b, gz);
		strata_error err;
		load_fail(path, STRATA_ERR_PARSE, &err);
		char expect[512];
		snprintf(expect, sizeof(expect),
		         "%s: 3 trailing bytes: the header (2 x 3 x 3 of unsigned byte) declares %d bytes "
		         "in all, the file has %d",
		         path, 16 + 18, 16 + 18 + 3);
		ck_assert_str_eq(err.message, expect);
		free(path);
	}
	free(b.p);
	remove_tmpdir();
}
END_TEST

START_TEST(test_bad_headers)
{
	make_tmpdir();
	strata_error err;
	char expect[512];
	uint32_t dims[1] = {1};

	bytes b = {0};
	put(&b, "P5\n2", 4); /* a PGM image */
	put(&b, "8 28", 4);
	char *path = write_file("magic", &b, false);
	load_fail(path, STRATA_ERR_PARSE, &err);
	snprintf(expect, sizeof(expect),
	         "%s: not an IDX file: magic bytes 50 35 0a 32, expected 00 00 TYPE RANK", path);
	ck_assert_str_eq(err.message, expect);
	free(path);

	b.n = 0;
	header(&b, 0x07, 1, dims);
	put(&b, "x", 1);
	path = write_file("type", &b, false);
	load_fail(path, STRATA_ERR_PARSE, &err);
	snprintf(expect, sizeof(expect),
	         "%s: unknown IDX data type 0x07 (known: 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E)", path);
	ck_assert_str_eq(err.message, expect);
	free(path);

	uint8_t ranks[2] = {0, 9};
	for (int i = 0; i < 2; i++) {
		uint8_t magic[4] = {0, 0, 0x08, ranks[i]};
		b.n = 0;
		put(&b, magic, 4);
		path = write_file("rank", &b, false);
		load_fail(path, STRATA_ERR_PARSE, &err);
		snprintf(expect, sizeof(expect), "%s: IDX rank %u, expected 1 to 8", path, ranks[i]);
		ck_assert_str_eq(err.message, expect);
		free(path);
	}

	b.n = 0;
	put(&b, "\0\0", 2);
	path = write_file("short", &b, false);
	load_fail(path, STRATA_ERR_PARSE, &err);
	ck_assert_ptr_nonnull(strstr(err.message, "truncated header: expected 4 bytes, the file has 2"));
	free(path);

	b.n = 0;
	path = write_file("empty", &b, false);
	load_fail(path, STRATA_ERR_PARSE, &err);
	ck_assert_ptr_nonnull(strstr(err.message, "empty file, not an IDX file"));
	free(path);
	free(b.p);

	path = malloc(strlen(tmpdir) + 16);
	sprintf(path, "%s/missing", tmpdir);
	load_fail(path, STRATA_ERR_NOT_FOUND, &err);
	free(path);
	remove_tmpdir();
}
END_TEST

/* A gzip stream cut short is corrupt data, not a short IDX file. */
START_TEST(test_corrupt_gzip)
{
	make_tmpdir();
	bytes b = {0};
	mnist_like(&b, 50, 28, 28);
	char *path = write_file("c.gz", &b, true);
	FILE *f = fopen(path, "r+b");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	long size = ftell(f);
	fclose(f);
	ck_assert_int_eq(truncate(path, size / 2), 0);
	strata_error err;
	load_fail(path, STRATA_ERR_PARSE, &err);
	char expect[512];
	snprintf(expect, sizeof(expect), "%s: corrupt gzip data: unexpected end of file", path);
	ck_assert_str_eq(err.message, expect);
	free(path);
	free(b.p);
	remove_tmpdir();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("idx");
	TCase *tc = tcase_create("idx");
	tcase_add_test(tc, test_plain);
	tcase_add_test(tc, test_gzip);
	tcase_add_test(tc, test_multibyte_big_endian);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_lying_header);
	tcase_add_test(tc, test_trailing_bytes);
	tcase_add_test(tc, test_bad_headers);
	tcase_add_test(tc, test_corrupt_gzip);
	suite_add_tcase(s, tc);
	return ts_run(s);
}
