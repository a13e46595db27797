/* IDX files written to a temporary folder: plain and gzip, every element type converted from
 * big-endian, and the refusals: truncated data or header, headers whose sizes lie or overflow,
 * trailing bytes (bounded for gzip), bad magic, unknown type, bad rank, empty and missing files,
 * files of no samples or of empty samples, and what is not a regular file. Then the shapes: the
 * rule by which an IDX file's samples fit a model's input, and the data sets that break it refused
 * by training, evaluation and friends with the file's name and both shapes. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "train/dataset.h"
#include "io/idx.h"
#include "exec/session.h"
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
	ck_assert_msg(strstr(err->message, path) != NULL, "message does not name the path: %s", err->message);
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

/* A file of no samples, or of samples of no values, is refused by the reader: every user divides
 * by the samples or the values per sample (predict did, by 0). */
START_TEST(test_no_samples)
{
	make_tmpdir();
	strata_error err;
	char expect[512];
	for (int gz = 0; gz < 2; gz++) {
		bytes b = {0};
		mnist_like(&b, 0, 28, 28);
		char *path = write_file(gz ? "none.gz" : "none", &b, gz);
		load_fail(path, STRATA_ERR_INVALID, &err);
		snprintf(expect, sizeof(expect),
		         "%s: no samples: the header (0 x 28 x 28 of unsigned byte) declares 0 of them", path);
		ck_assert_str_eq(err.message, expect);
		free(path);

		b.n = 0;
		mnist_like(&b, 3, 0, 5);
		path = write_file(gz ? "flat.gz" : "flat", &b, gz);
		load_fail(path, STRATA_ERR_INVALID, &err);
		snprintf(expect, sizeof(expect),
		         "%s: empty samples: dimension 2 of the header (3 x 0 x 5 of unsigned byte) is 0", path);
		ck_assert_str_eq(err.message, expect);
		free(path);

		uint32_t none[1] = {0};
		b.n = 0;
		header(&b, 0x08, 1, none);
		path = write_file(gz ? "labels.gz" : "labels", &b, gz);
		load_fail(path, STRATA_ERR_INVALID, &err);
		snprintf(expect, sizeof(expect), "%s: no samples: the header (0 of unsigned byte) declares 0 of them",
		         path);
		ck_assert_str_eq(err.message, expect);
		free(path);
		free(b.p);
	}
	/* The memory reader (the fuzzer's) says the same. */
	bytes b = {0};
	mnist_like(&b, 0, 28, 28);
	strata_idx *idx = NULL;
	ck_assert_int_eq(st_idx_load_memory(b.p, b.n, "mem", &idx, &err), STRATA_ERR_INVALID);
	ck_assert_ptr_null(idx);
	ck_assert_str_eq(err.message, "mem: no samples: the header (0 x 28 x 28 of unsigned byte) declares 0 of them");
	free(b.p);
	remove_tmpdir();
}
END_TEST

/* Only regular files are read: a folder and a device are refused by what they are, before any
 * byte is read (/dev/zero used to be read as an IDX file of type 0x00). FIFOs, which used to
 * block the open, are in tests/test_data_files.sh under a timeout. */
START_TEST(test_not_regular)
{
	make_tmpdir();
	strata_error err;
	char expect[512];
	load_fail(tmpdir, STRATA_ERR_INVALID, &err);
	snprintf(expect, sizeof(expect), "%s is a folder, not a regular file", tmpdir);
	ck_assert_str_eq(err.message, expect);
	if (access("/dev/zero", R_OK) == 0) {
		load_fail("/dev/zero", STRATA_ERR_INVALID, &err);
		ck_assert_str_eq(err.message, "/dev/zero is a character device, not a regular file");
	}
	remove_tmpdir();
}
END_TEST

/* A plain file's size is compared with its header's before the data is read: 64 GiB of sparse
 * file behind a header of 32 bytes is refused at once, where it used to be read to its end to
 * count the trailing bytes (minutes; this test case has a timeout of 20 s). */
START_TEST(test_size_before_data)
{
	make_tmpdir();
	bytes b = {0};
	mnist_like(&b, 1, 4, 4);
	char *path = write_file("sparse", &b, false);
	ck_assert_int_eq(truncate(path, (off_t)64 << 30), 0);
	strata_error err;
	load_fail(path, STRATA_ERR_PARSE, &err);
	char expect[512];
	snprintf(expect, sizeof(expect),
	         "%s: %llu trailing bytes: the header (1 x 4 x 4 of unsigned byte) declares 32 bytes in all, "
	         "the file has %llu",
	         path, (64ull << 30) - 32, 64ull << 30);
	ck_assert_str_eq(err.message, expect);
	unlink(path);
	free(path);
	free(b.p);
	remove_tmpdir();
}
END_TEST

/* Decompressed data past what the header declares is counted only so far: a gzip bomb appended
 * to a valid file is refused after 1 MiB of it. */
START_TEST(test_gzip_trailing_bounded)
{
	make_tmpdir();
	bytes b = {0};
	mnist_like(&b, 2, 3, 3);
	uint8_t *zeros = calloc(1, 4u << 20);
	ck_assert_ptr_nonnull(zeros);
	put(&b, zeros, 4u << 20);
	char *path = write_file("bomb.gz", &b, true);
	strata_error err;
	load_fail(path, STRATA_ERR_PARSE, &err);
	char expect[512];
	snprintf(expect, sizeof(expect),
	         "%s: more than 1048576 trailing bytes: the header (2 x 3 x 3 of unsigned byte) declares 34 "
	         "bytes in all",
	         path);
	ck_assert_str_eq(err.message, expect);
	free(zeros);
	free(path);
	free(b.p);
	remove_tmpdir();
}
END_TEST

static strata_shape shape_of(uint32_t rank, int64_t d0, int64_t d1, int64_t d2)
{
	strata_shape s = {.rank = rank, .dims = {d0, d1, d2}};
	return s;
}

/* Whether an IDX file of `rank` dimensions (the first 5 samples) fits `input`. */
static strata_status check_samples(uint32_t rank, uint32_t d1, uint32_t d2, uint32_t d3, strata_shape input,
                                   strata_error *err)
{
	strata_idx idx = {.type = 0x08, .rank = rank, .dims = {5, d1, d2, d3}};
	return strata_idx_check_samples(&idx, "x.idx", &input, err);
}

/* The rule, channels last: the samples' dimensions are the input shape, or the input shape without
 * a last axis of 1 (MNIST's 28 x 28 images for [28, 28, 1]); nothing transposed, flattened or
 * given another channel count. */
START_TEST(test_sample_shapes)
{
	strata_error err;
	ck_assert_int_eq(check_samples(3, 28, 28, 0, shape_of(3, 28, 28, 1), &err), STRATA_OK);
	ck_assert_int_eq(check_samples(4, 28, 28, 1, shape_of(3, 28, 28, 1), &err), STRATA_OK);
	ck_assert_int_eq(check_samples(3, 17, 23, 0, shape_of(2, 17, 23, 0), &err), STRATA_OK);
	ck_assert_int_eq(check_samples(2, 784, 0, 0, shape_of(1, 784, 0, 0), &err), STRATA_OK);
	ck_assert_int_eq(check_samples(4, 8, 8, 3, shape_of(3, 8, 8, 3), &err), STRATA_OK);
	ck_assert_int_eq(check_samples(2, 4, 0, 0, shape_of(2, 4, 1, 0), &err), STRATA_OK);

	ck_assert_int_eq(check_samples(3, 23, 17, 0, shape_of(3, 17, 23, 1), &err), STRATA_ERR_INVALID);
	ck_assert_str_eq(err.message, "x.idx: the file has samples of 23 x 17 (391 values), the model's input is "
	                              "17 x 23 x 1 (391 values): the samples must have the input's shape, or the "
	                              "input's without its last axis of 1");
	ck_assert_int_eq(check_samples(2, 391, 0, 0, shape_of(3, 17, 23, 1), &err), STRATA_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err.message, "samples of 391 (391 values), the model's input is 17 x 23 x 1"));
	ck_assert_int_eq(check_samples(3, 28, 28, 0, shape_of(1, 784, 0, 0), &err), STRATA_ERR_INVALID);
	ck_assert_int_eq(check_samples(2, 784, 0, 0, shape_of(3, 28, 28, 1), &err), STRATA_ERR_INVALID);
	ck_assert_int_eq(check_samples(3, 8, 8, 0, shape_of(3, 8, 8, 3), &err), STRATA_ERR_INVALID);
	ck_assert_int_eq(check_samples(4, 8, 8, 1, shape_of(3, 8, 8, 3), &err), STRATA_ERR_INVALID);
	ck_assert_int_eq(check_samples(4, 28, 28, 1, shape_of(2, 28, 28, 0), &err), STRATA_ERR_INVALID);

	/* Labels and other element types are not samples. */
	ck_assert_int_eq(check_samples(1, 0, 0, 0, shape_of(1, 5, 0, 0), &err), STRATA_ERR_INVALID);
	ck_assert_str_eq(err.message, "x.idx: expected unsigned-byte samples (IDX type 0x08, rank 2 or more; int32 "
	                              "ids, type 0x0C, for an input of ids), the file holds 5 of unsigned byte");
	strata_idx f = {.type = 0x0D, .rank = 3, .dims = {5, 28, 28}};
	strata_shape in = shape_of(3, 28, 28, 1);
	ck_assert_int_eq(strata_idx_check_samples(&f, "f.idx", &in, &err), STRATA_ERR_INVALID);
	ck_assert_str_eq(err.message, "f.idx: expected unsigned-byte samples (IDX type 0x08, rank 2 or more; int32 "
	                              "ids, type 0x0C, for an input of ids), the file holds 5 x 28 x 28 of float");
	/* int32 ids fit an input of ids (issue 15), not a float one */
	strata_idx ids = {.type = 0x0C, .rank = 2, .dims = {5, 12}};
	strata_shape seq = shape_of(1, 12, 0, 0);
	ck_assert_int_eq(strata_idx_check_samples(&ids, "i.idx", &seq, &err), STRATA_ERR_INVALID);
	seq.dtype = STRATA_DTYPE_INT32;
	ck_assert_int_eq(strata_idx_check_samples(&ids, "i.idx", &seq, &err), STRATA_OK);
}
END_TEST

/* An images file of n samples of h x w and its labels file (0, 1, 2, ...). */
static void data_files(const char *images, const char *labels, uint32_t n, uint32_t h, uint32_t w)
{
	bytes b = {0};
	mnist_like(&b, n, h, w);
	char *p = write_file(images, &b, false);
	b.n = 0;
	header(&b, 0x08, 1, &n);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t l = (uint8_t)(i % 10);
		put(&b, &l, 1);
	}
	char *q = write_file(labels, &b, false);
	free(p);
	free(q);
	free(b.p);
}

static strata_dataset *data_set(const ts_device *dev, const char *images, const char *labels, bool standardize,
                                const strata_dataset *reference, strata_error *err, strata_status expect)
{
	char *ip = ts_join(tmpdir, images), *lp = ts_join(tmpdir, labels);
	strata_dataset_options o = {.size = sizeof(o), .images = ip, .labels = lp, .num_classes = 10,
	                            .standardize = standardize, .reference = reference};
	strata_dataset *ds = NULL;
	strata_status st = strata_dataset_load(dev->rt, &o, &ds, err);
	ck_assert_msg(st == expect, "%s: %s", images, err->message);
	free(ip);
	free(lp);
	return ds;
}

/* Transposed, flattened or differently sized data is refused by everything that takes a data set,
 * with the file and both shapes; it used to be taken whenever the number of values agreed. */
START_TEST(test_data_shapes_refused)
{
	make_tmpdir();
	ts_device dev = ts_device_open();
	strata_error err = {0};
	data_files("t.idx", "t.labels", 6, 23, 17);
	data_files("n.idx", "n.labels", 6, 9, 9);
	strata_dataset *transposed = data_set(&dev, "t.idx", "t.labels", false, NULL, &err, STRATA_OK);
	strata_dataset *nine = data_set(&dev, "n.idx", "n.labels", false, NULL, &err, STRATA_OK);
	char *tpath = ts_join(tmpdir, "t.idx"), *npath = ts_join(tmpdir, "n.idx");
	char expect[1024];
	const char *rule = "the samples must have the input's shape, or the input's without its last axis of 1";

	ts_net net = ts_net_open(&dev,
	                         "input: {shape: [17, 23, 1]}\nlayers:\n  - {type: flatten}\n"
	                         "  - {type: dense, units: 10, activation: softmax}\n"
	                         "loss: categorical_crossentropy\n",
	                         8, 1);
	strata_eval_result r;
	ck_assert_int_eq(strata_evaluate(net.s, transposed, 8, &r, &err), STRATA_ERR_INVALID);
	snprintf(expect, sizeof(expect),
	         "%s: the evaluation data has samples of 23 x 17 (391 values), the model's input is 17 x 23 x 1 "
	         "(391 values): %s",
	         tpath, rule);
	ck_assert_str_eq(err.message, expect);
	strata_fit_options fo = {.size = sizeof(fo), .epochs = 1, .batch_size = 8};
	ck_assert_int_eq(strata_fit(net.s, transposed, NULL, &fo, &err), STRATA_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err.message, "the training data has samples of 23 x 17"));
	char *csv = ts_join(tmpdir, "e.csv");
	strata_embed_options eo = {.size = sizeof(eo), .layer = 1, .path = csv, .data = transposed};
	ck_assert_int_eq(strata_embed(net.s, &eo, &err), STRATA_ERR_INVALID);
	snprintf(expect, sizeof(expect), "%s: the data has samples of 23 x 17", tpath);
	ck_assert_msg(!strncmp(err.message, expect, strlen(expect)), "%s", err.message);
	ck_assert_int_eq(access(csv, F_OK), -1);
	ts_net_close(&net);

	/* A flat input of as many values takes no images either. */
	net = ts_net_open(&dev, "input: {shape: [391]}\nlayers:\n  - {type: dense, units: 10, activation: softmax}\n"
	                  "loss: categorical_crossentropy\n",
	                  8, 1);
	ck_assert_int_eq(strata_evaluate(net.s, transposed, 8, &r, &err), STRATA_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err.message, "samples of 23 x 17 (391 values), the model's input is 391 (391"));
	ts_net_close(&net);

	/* The same file, the right way round, is taken. */
	net = ts_net_open(&dev,
	                  "input: {shape: [23, 17, 1]}\nlayers:\n  - {type: flatten}\n"
	                  "  - {type: dense, units: 10, activation: softmax}\n"
	                  "loss: categorical_crossentropy\n",
	                  8, 1);
	ck_assert_msg(strata_evaluate(net.s, transposed, 8, &r, &err) == STRATA_OK, "%s", err.message);
	ts_net_close(&net);

	/* Another size: the message names the file (it used to say only "the training data has 81
	 * values per sample, the model's input 64"). */
	net = ts_net_open(&dev,
	                  "input: {shape: [8, 8, 1]}\nlayers:\n  - {type: flatten}\n"
	                  "  - {type: dense, units: 10, activation: softmax}\n"
	                  "loss: categorical_crossentropy\n",
	                  8, 1);
	ck_assert_int_eq(strata_fit(net.s, nine, NULL, &fo, &err), STRATA_ERR_INVALID);
	snprintf(expect, sizeof(expect),
	         "%s: the training data has samples of 9 x 9 (81 values), the model's input is 8 x 8 x 1 "
	         "(64 values): %s",
	         npath, rule);
	ck_assert_str_eq(err.message, expect);
	ts_net_close(&net);

	/* A standardized set's reference must have samples of the same shape. */
	data_files("r.idx", "r.labels", 6, 17, 23);
	strata_dataset *ref = data_set(&dev, "r.idx", "r.labels", true, NULL, &err, STRATA_OK);
	ck_assert_ptr_null(data_set(&dev, "t.idx", "t.labels", true, ref, &err, STRATA_ERR_INVALID));
	char *rpath = ts_join(tmpdir, "r.idx");
	snprintf(expect, sizeof(expect), "%s: samples of 23 x 17, those of the reference data set %s are 17 x 23",
	         tpath, rpath);
	ck_assert_str_eq(err.message, expect);

	strata_dataset_free(ref);
	strata_dataset_free(nine);
	strata_dataset_free(transposed);
	free(rpath);
	free(csv);
	free(tpath);
	free(npath);
	ts_device_close(&dev);
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
	tcase_add_test(tc, test_no_samples);
	tcase_add_test(tc, test_not_regular);
	tcase_add_test(tc, test_gzip_trailing_bounded);
	tcase_add_test(tc, test_sample_shapes);
	tcase_add_test(tc, test_data_shapes_refused);
	suite_add_tcase(s, tc);
	/* Its own case for its timeout: reading the 64 GiB instead of refusing at once fails it. */
	TCase *sparse = tcase_create("sparse");
	tcase_set_timeout(sparse, 20);
	tcase_add_test(sparse, test_size_before_data);
	suite_add_tcase(s, sparse);
	return ts_run(s);
}
