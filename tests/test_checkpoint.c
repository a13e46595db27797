/* Weights files on the real device: a round trip of weights and optimizer slots, the layout on
 * disk read back independently, and every refusal (checksum, truncation, trailing bytes, lying
 * lengths, newer version, wrong shape, missing and extra tensors, wrong optimizer, counters out
 * of range, a 64 GiB sparse file, a file larger than the model) with its status and message, the
 * device tensors keeping their previous values each time; saves are atomic and replace an
 * existing file whole. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "exec/checkpoint.h"
#include "support.h"

#define NT 6

/* Offsets of the header fields that the tests below rewrite. */
#define OFF_VERSION 8
#define OFF_MODEL_LEN 40

typedef struct fixture {
	strata_registry *reg;
	strata_runtime *rt;
	strata_tensor mem[NT];
	st_named_tensor t[NT];
	char dir[256];
	char path[320];
} fixture;

typedef struct bytes {
	uint8_t *p;
	size_t n;
} bytes;

static const char *const names[NT] = {
        "dense_1/kernel",          "dense_1/bias",
        "conv2d_1/kernel",         "dense_1/kernel:accum_grad",
        "dense_1/bias:accum_grad", "conv2d_1/kernel:accum_grad",
};
static const uint32_t ranks[NT] = {2, 1, 4, 2, 1, 4};
static const int64_t dims[NT][STRATA_MAX_RANK] = {
        {6, 4}, {4}, {3, 3, 1, 2}, {6, 4}, {4}, {3, 3, 1, 2},
};

static st_checkpoint_info sample_info(void)
{
	st_checkpoint_info info = {.epoch = 3, .step = 1234, .seed = 42, .iterations = 1230};
	snprintf(info.model, sizeof(info.model), "mnist_cnn");
	snprintf(info.optimizer, sizeof(info.optimizer), "adadelta");
	return info;
}

static void fx_open(fixture *f)
{
	memset(f, 0, sizeof(*f));
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(f->dir, sizeof(f->dir), "%s/strata-ckpt-XXXXXX", base);
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/w.stw", f->dir);
	f->reg = ts_registry();
	f->rt = ts_runtime(f->reg);
	for (int i = 0; i < NT; i++) {
		st_named_tensor *t = &f->t[i];
		snprintf(t->name, sizeof(t->name), "%s", names[i]);
		t->kind = i < 3 ? ST_TENSOR_WEIGHT : ST_TENSOR_OPTIMIZER;
		t->shape.rank = ranks[i];
		t->count = 1;
		for (uint32_t d = 0; d < ranks[i]; d++) {
			t->shape.dims[d] = dims[i][d];
			t->count *= (uint64_t)dims[i][d];
		}
		strata_error err = {0};
		strata_status st =
		        st_tensor_alloc(f->rt, &f->mem[i], t->count * sizeof(float), names[i], &err);
		ck_assert_msg(st == STRATA_OK, "%s", err.message);
		t->tensor = &f->mem[i];
	}
}

static void fx_close(fixture *f)
{
	for (int i = 0; i < NT; i++)
		st_tensor_release(&f->mem[i]);
	strata_runtime_destroy(f->rt);
	strata_registry_close(f->reg);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", f->dir);
}

/* Values of tensor i in generation `seed`. */
static float *values(const fixture *f, int i, unsigned seed)
{
	float *v = malloc(f->t[i].count * sizeof(float));
	ck_assert_ptr_nonnull(v);
	ts_fill_random(v, f->t[i].count, seed * 100 + (unsigned)i, -2.0f, 2.0f);
	return v;
}

static void set_all(fixture *f, unsigned seed)
{
	for (int i = 0; i < NT; i++) {
		float *v = values(f, i, seed);
		strata_error err = {0};
		strata_status st =
		        st_tensor_write(f->rt, &f->mem[i], 0, v, f->t[i].count * sizeof(float), &err);
		ck_assert_msg(st == STRATA_OK, "%s", err.message);
		free(v);
	}
}

/* Tensor i on the device holds generation `seed`, bit for bit. */
static void expect_one(fixture *f, int i, unsigned seed)
{
	float *want = values(f, i, seed);
	float *got = malloc(f->t[i].count * sizeof(float));
	ck_assert_ptr_nonnull(got);
	strata_error err = {0};
	strata_status st = st_tensor_read(f->rt, &f->mem[i], 0, got, f->t[i].count * sizeof(float), &err);
	ck_assert_msg(st == STRATA_OK, "%s", err.message);
	ck_assert_msg(!memcmp(want, got, f->t[i].count * sizeof(float)), "%s does not hold generation %u",
	              names[i], seed);
	free(want);
	free(got);
}

static void expect_all(fixture *f, unsigned seed)
{
	for (int i = 0; i < NT; i++)
		expect_one(f, i, seed);
}

static void save_ok(fixture *f, const char *path, const st_named_tensor *t, size_t n, const char *optimizer)
{
	st_checkpoint_info info = sample_info();
	snprintf(info.optimizer, sizeof(info.optimizer), "%s", optimizer);
	strata_error err = {0};
	strata_status st = st_checkpoint_save(f->rt, path, &info, t, n, &err);
	ck_assert_msg(st == STRATA_OK, "%s", err.message);
}

static bytes read_bytes(const char *path)
{
	FILE *fp = fopen(path, "rb");
	ck_assert_ptr_nonnull(fp);
	bytes b = {0};
	ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
	long len = ftell(fp);
	ck_assert_int_ge(len, 0);
	rewind(fp);
	b.n = (size_t)len;
	b.p = malloc(b.n + 64);
	ck_assert_ptr_nonnull(b.p);
	ck_assert_uint_eq(fread(b.p, 1, b.n, fp), b.n);
	fclose(fp);
	return b;
}

static void write_bytes(const char *path, const uint8_t *p, size_t n)
{
	FILE *fp = fopen(path, "wb");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(p, 1, n, fp), n);
	ck_assert_int_eq(fclose(fp), 0);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void set_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void set_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Makes the last four bytes the crc of the others again: a file consistent but malformed. */
static void fix_crc(bytes *b)
{
	set_le32(b->p + b->n - 4, (uint32_t)crc32(0L, b->p, (uInt)(b->n - 4)));
}

/* Offset of the first tensor entry (its name length). */
static size_t first_entry(const bytes *b)
{
	size_t o = OFF_MODEL_LEN;
	o += 4 + le32(b->p + o);
	o += 4 + le32(b->p + o);
	return o + 8 + 4;
}

/* Offset of the entry named `name`, walking the file as the format describes. */
static size_t entry_offset(const bytes *b, const char *name)
{
	size_t o = first_entry(b);
	uint32_t count = le32(b->p + o - 4);
	for (uint32_t i = 0; i < count; i++) {
		uint32_t len = le32(b->p + o);
		if (len == strlen(name) && !memcmp(b->p + o + 4, name, len))
			return o;
		size_t q = o + 4 + len + 4;
		uint32_t rank = le32(b->p + q);
		uint64_t n = 1;
		for (uint32_t d = 0; d < rank; d++)
			n *= le64(b->p + q + 4 + 8 * d);
		o = q + 4 + 8 * rank + 4 * n;
	}
	ck_abort_msg("no tensor %s in the file", name);
	return 0;
}

/* Writes `b` to a file of its own and loads it, expecting refusal with `status` and a message
 * that names the file; the message is left in `msg`. */
static void load_refused(fixture *f, const bytes *b, const st_named_tensor *t, size_t n, bool with_optimizer,
                         const char *optimizer, strata_status status, char *msg, size_t size)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/bad.stw", f->dir);
	write_bytes(path, b->p, b->n);
	st_checkpoint_info info = {0};
	snprintf(info.optimizer, sizeof(info.optimizer), "%s", optimizer);
	strata_error err = {0};
	strata_status st = st_checkpoint_load(f->rt, path, &info, t, n, with_optimizer, &err);
	ck_assert_msg(st == status, "status %s, expected %s (%s)", strata_status_name(st),
	              strata_status_name(status), err.message);
	ck_assert_msg(!strncmp(err.message, path, strlen(path)) && err.message[strlen(path)] == ':',
	              "message does not name the file: %s", err.message);
	ck_assert_uint_eq(info.epoch, 0);
	snprintf(msg, size, "%s", err.message + strlen(path) + 2);
}

/* Saves generation 1, puts generation 2 on the device and returns the saved file's bytes. */
static bytes saved_then_changed(fixture *f)
{
	set_all(f, 1);
	save_ok(f, f->path, f->t, NT, "adadelta");
	set_all(f, 2);
	return read_bytes(f->path);
}

static void assert_contains(const char *msg, const char *part)
{
	ck_assert_msg(strstr(msg, part), "\"%s\" not in \"%s\"", part, msg);
}

START_TEST(test_round_trip_with_optimizer)
{
	fixture f;
	fx_open(&f);
	set_all(&f, 1);
	save_ok(&f, f.path, f.t, NT, "adadelta");
	set_all(&f, 2);
	st_checkpoint_info info = {0};
	snprintf(info.optimizer, sizeof(info.optimizer), "adadelta");
	strata_error err = {0};
	strata_status st = st_checkpoint_load(f.rt, f.path, &info, f.t, NT, true, &err);
	ck_assert_msg(st == STRATA_OK, "%s", err.message);
	expect_all(&f, 1);
	st_checkpoint_info want = sample_info();
	ck_assert_uint_eq(info.epoch, want.epoch);
	ck_assert_uint_eq(info.step, want.step);
	ck_assert_uint_eq(info.seed, want.seed);
	ck_assert_uint_eq(info.iterations, want.iterations);
	ck_assert_str_eq(info.model, "mnist_cnn");
	ck_assert_str_eq(info.optimizer, "adadelta");
	fx_close(&f);
}
END_TEST

/* The bytes on disk, read by the format's description rather than by the loader. */
START_TEST(test_layout_on_disk)
{
	fixture f;
	fx_open(&f);
	set_all(&f, 1);
	save_ok(&f, f.path, f.t, NT, "adadelta");
	bytes b = read_bytes(f.path);
	st_checkpoint_info want = sample_info();
	ck_assert_int_eq(memcmp(b.p, "STRATAW\0", 8), 0);
	ck_assert_uint_eq(le32(b.p + OFF_VERSION), 1);
	ck_assert_uint_eq(le32(b.p + 12), 0);
	ck_assert_uint_eq(le64(b.p + 16), want.epoch);
	ck_assert_uint_eq(le64(b.p + 24), want.step);
	ck_assert_uint_eq(le64(b.p + 32), want.seed);
	size_t o = OFF_MODEL_LEN;
	ck_assert_uint_eq(le32(b.p + o), strlen("mnist_cnn"));
	ck_assert_int_eq(memcmp(b.p + o + 4, "mnist_cnn", 9), 0);
	o += 4 + 9;
	ck_assert_uint_eq(le32(b.p + o), strlen("adadelta"));
	ck_assert_int_eq(memcmp(b.p + o + 4, "adadelta", 8), 0);
	o += 4 + 8;
	ck_assert_uint_eq(le64(b.p + o), want.iterations);
	ck_assert_uint_eq(le32(b.p + o + 8), NT);
	o += 12;
	for (int i = 0; i < NT; i++) {
		ck_assert_uint_eq(le32(b.p + o), strlen(names[i]));
		ck_assert_int_eq(memcmp(b.p + o + 4, names[i], strlen(names[i])), 0);
		o += 4 + strlen(names[i]);
		ck_assert_uint_eq(le32(b.p + o), i < 3 ? ST_TENSOR_WEIGHT : ST_TENSOR_OPTIMIZER);
		ck_assert_uint_eq(le32(b.p + o + 4), ranks[i]);
		o += 8;
		for (uint32_t d = 0; d < ranks[i]; d++, o += 8)
			ck_assert_uint_eq(le64(b.p + o), (uint64_t)dims[i][d]);
		float *v = values(&f, i, 1);
		for (uint64_t k = 0; k < f.t[i].count; k++, o += 4) {
			uint32_t bits = le32(b.p + o);
			float x;
			memcpy(&x, &bits, 4);
			ck_assert_msg(x == v[k], "%s[%llu]", names[i], (unsigned long long)k);
		}
		free(v);
	}
	ck_assert_uint_eq(o + 4, b.n);
	ck_assert_uint_eq(le32(b.p + o), (uint32_t)crc32(0L, b.p, (uInt)o));
	free(b.p);
	fx_close(&f);
}
END_TEST

/* Inference loads weights only: optimizer state in the file is skipped, the device's slots stay. */
START_TEST(test_weights_only)
{
	fixture f;
	fx_open(&f);
	bytes b = saved_then_changed(&f);
	free(b.p);
	st_checkpoint_info info = {0};
	strata_error err = {0};
	strata_status st = st_checkpoint_load(f.rt, f.path, &info, f.t, NT, false, &err);
	ck_assert_msg(st == STRATA_OK, "%s", err.message);
	for (int i = 0; i < NT; i++)
		expect_one(&f, i, i < 3 ? 1 : 2);
	ck_assert_str_eq(info.optimizer, "adadelta");

	/* A file saved without optimizer state loads for inference but cannot resume training. */
	save_ok(&f, f.path, f.t, 3, "");
	set_all(&f, 3);
	st = st_checkpoint_load(f.rt, f.path, &info, f.t, NT, false, &err);
	ck_assert_msg(st == STRATA_OK, "%s", err.message);
	for (int i = 0; i < NT; i++)
		expect_one(&f, i, i < 3 ? 1 : 3);
	ck_assert_str_eq(info.optimizer, "");
	b = read_bytes(f.path);
	set_all(&f, 4);
	char msg[STRATA_ERROR_MAX];
	load_refused(&f, &b, f.t, NT, true, "adadelta", STRATA_ERR_INVALID, msg, sizeof(msg));
	assert_contains(msg, "holds no optimizer state");
	assert_contains(msg, "adadelta");
	expect_all(&f, 4);
	free(b.p);
	fx_close(&f);
}
END_TEST

START_TEST(test_corrupt_checksum)
{
	fixture f;
	fx_open(&f);
	bytes b = saved_then_changed(&f);
	char msg[STRATA_ERROR_MAX];
	/* A flipped bit in the data, in a name, and in the checksum itself. */
	size_t spots[3] = {b.n - 20, first_entry(&b) + 6, b.n - 2};
	for (int i = 0; i < 3; i++) {
		b.p[spots[i]] ^= 0x10;
		load_refused(&f, &b, f.t, NT, true, "adadelta", STRATA_ERR_PARSE, msg, sizeof(msg));
		ck_assert_str_eq(msg, "checksum mismatch: the file is corrupt or truncated");
		expect_all(&f, 2);
		b.p[spots[i]] ^= 0x10;
	}
	free(b.p);
	fx_close(&f);
}
END_TEST

START_TEST(test_truncated)
{
	fixture f;
	fx_open(&f);
	bytes b = saved_then_changed(&f);
	size_t full = b.n;
	size_t cuts[] = {0,
	                 5,
	                 8,
	                 11,
	                 12,
	                 30,
	                 OFF_MODEL_LEN + 2,
	                 first_entry(&b) + 3,
	                 first_entry(&b) + 30,
	                 full / 2,
	                 full - 5,
	                 full - 4,
	                 full - 1};
	char msg[STRATA_ERROR_MAX];
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		b.n = cuts[i];
		load_refused(&f, &b, f.t, NT, true, "adadelta", STRATA_ERR_PARSE, msg, sizeof(msg));
		ck_assert_msg(strstr(msg, "truncated"), "cut at %zu: %s", cuts[i], msg);
		if (cuts[i] >= 12)
			ck_assert_str_eq(msg, "checksum mismatch: the file is corrupt or truncated");
		expect_all(&f, 2);
	}
	free(b.p);
	fx_close(&f);
}
END_TEST

START_TEST(test_trailing_bytes)
{
	fixture f;
	fx_open(&f);
	bytes b = saved_then_changed(&f);
	char msg[STRATA_ERROR_MAX], want[128];
	/* Appended to an intact file, and appended with the checksum moved to the very end. */
	size_t n = b.n;
	memcpy(b.p + b.n, "abc", 3);
	b.n += 3;
	load_refused(&f, &b, f.t, NT, true, "adadelta", STRATA_ERR_PARSE, msg, sizeof(msg));
	snprintf(want, sizeof(want), "3 trailing bytes: the contents end at %zu, the file has %zu", n, n + 3);
	ck_assert_str_eq(msg, want);
	expect_all(&f, 2);
	memset(b.p + n - 4, 0, 8);
	b.n = n + 4;
	fix_crc(&b);
	load_refused(&f, &b, f.t, NT, true, "adadelta", STRATA_ERR_PARSE, msg, sizeof(msg));
	assert_contains(msg, "4 trailing bytes");
	expect_all(&f, 2);
	free(b.p);
	fx_close(&f);
}
END_TEST

/* Each lie is written with a valid checksum so that the structure checks, not the crc, catch it;
 * without the fix-up the same file reads as corrupt. */
START_TEST(test_lying_lengths)
{
	fixture f;
	fx_open(&f);
	bytes b = saved_then_changed(&f);
	char msg[STRATA_ERROR_MAX];
	size_t e = first_entry(&b);
	size_t conv = entry_offset(&b, "conv2d_1/kernel");
	size_t conv_rank = conv + 4 + strlen("conv2d_1/kernel") + 4;
	struct {
		size_t offset;
		int size;
		uint64_t value;
		const char *message;
	} lies[] = {
	        {e, 4, 0x7fffffffu, "the name of tensor 0 has length 2147483647"},
	        {e, 4, 191, "contains a NUL byte"}, /* within the limit, but runs into the kind and rank */
	        {e, 4, 192, "has length 192 at offset"},
	        {e, 4, 0, "has length 0"},
	        {OFF_MODEL_LEN, 4, 1000000, "the model name has length 1000000"},
	        {e - 4, 4, 0xffffffffu, "truncated: 4294967295 tensors cannot fit"},
	        {conv_rank, 4, 5, "conv2d_1/kernel has rank 5 (1 to 4 allowed)"},
	        {conv_rank, 4, 0, "conv2d_1/kernel has rank 0 (1 to 4 allowed)"},
	        {conv_rank + 4, 8, 0, "conv2d_1/kernel has shape (0, 3, 1, 2): dimensions must be 1 or more"},
	        {conv_rank + 4, 8, 1ull << 40,
	         "truncated: tensor conv2d_1/kernel has shape (1099511627776, 3, 1, 2)"},
	        {conv_rank + 4, 8, 1ull << 63,
	         "truncated: tensor conv2d_1/kernel has shape (9223372036854775808, 3"},
	        {conv_rank - 4, 4, 9, "conv2d_1/kernel has unknown kind 9"},
	        {12, 4, 1, "unknown flags 0x1"},
	};
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		bytes lie = {malloc(b.n + 64), b.n};
		ck_assert_ptr_nonnull(lie.p);
		memcpy(lie.p, b.p, b.n);
		if (lies[i].size == 4)
			set_le32(lie.p + lies[i].offset, (uint32_t)lies[i].value);
		else
			set_le64(lie.p + lies[i].offset, lies[i].value);
		load_refused(&f, &lie, f.t, NT, true, "adadelta", STRATA_ERR_PARSE, msg, sizeof(msg));
		ck_assert_str_eq(msg, "checksum mismatch: the file is corrupt or truncated");
		fix_crc(&lie);
		load_refused(&f, &lie, f.t, NT, true, "adadelta", STRATA_ERR_PARSE, msg, sizeof(msg));
		ck_assert_msg(strstr(msg, lies[i].message), "lie %zu: \"%s\" not in \"%s\"", i,
		              lies[i].message, msg);
		expect_all(&f, 2);
		free(lie.p);
	}
	/* Two dims whose product wraps to a small number in 64 bits. */
	bytes wrap = {malloc(b.n + 64), b.n};
	ck_assert_ptr_nonnull(wrap.p);
	memcpy(wrap.p, b.p, b.n);
	set_le64(wrap.p + conv_rank + 4, 1ull << 32);
	set_le64(wrap.p + conv_rank + 12, 1ull << 32);
	fix_crc(&wrap);
	load_refused(&f, &wrap, f.t, NT, true, "adadelta", STRATA_ERR_PARSE, msg, sizeof(msg));
	assert_contains(msg, "has shape (4294967296, 4294967296, 1, 2), more floats than");
	expect_all(&f, 2);
	free(wrap.p);
	free(b.p);
	fx_close(&f);
}
END_TEST

START_TEST(test_newer_version)
{
	fixture f;
	fx_open(&f);
	bytes b = saved_then_changed(&f);
	char msg[STRATA_ERROR_MAX];
	set_le32(b.p + OFF_VERSION, 2);
	/* Refused by its version whatever follows: a newer format may place its checksum elsewhere. */
	for (int fixed = 0; fixed < 2; fixed++) {
		if (fixed)
			fix_crc(&b);
		load_refused(&f, &b, f.t, NT, true, "adadelta", STRATA_ERR_UNSUPPORTED, msg, sizeof(msg));
		ck_assert_str_eq(msg, "was written by a newer Strata (format 2, this one reads 1)");
		expect_all(&f, 2);
	}
	free(b.p);
	fx_close(&f);
}
END_TEST

START_TEST(test_not_a_weights_file)
{
	fixture f;
	fx_open(&f);
	set_all(&f, 2);
	char msg[STRATA_ERROR_MAX];
	const char *yaml = "name: mnist_cnn\nlayers: []\n";
	bytes b = {(uint8_t *)strdup(yaml), strlen(yaml)};
	load_refused(&f, &b, f.t, NT, false, "", STRATA_ERR_PARSE, msg, sizeof(msg));
	ck_assert_str_eq(msg, "not a Strata weights file");
	expect_all(&f, 2);
	free(b.p);
	char missing[400];
	snprintf(missing, sizeof(missing), "%s/nothing.stw", f.dir);
	strata_error err = {0};
	st_checkpoint_info info = {0};
	ck_assert_int_eq(st_checkpoint_load(f.rt, missing, &info, f.t, NT, false, &err),
	                 STRATA_ERR_NOT_FOUND);
	assert_contains(err.message, missing);
	fx_close(&f);
}
END_TEST

START_TEST(test_wrong_shape)
{
	fixture f;
	fx_open(&f);
	bytes b = saved_then_changed(&f);
	char msg[STRATA_ERROR_MAX];
	st_named_tensor model[NT];
	memcpy(model, f.t, sizeof(model));
	/* Same element count, different shape: still another model. */
	model[0].shape.dims[0] = 12;
	model[0].shape.dims[1] = 2;
	load_refused(&f, &b, model, NT, true, "adadelta", STRATA_ERR_INVALID, msg, sizeof(msg));
	ck_assert_str_eq(msg, "dense_1/kernel has shape (6, 4) in the file but (12, 2) in the model");
	expect_all(&f, 2);
	/* An optimizer slot of the wrong shape matters only when resuming. */
	memcpy(model, f.t, sizeof(model));
	model[4].shape.rank = 2;
	model[4].shape.dims[0] = 2;
	model[4].shape.dims[1] = 2;
	load_refused(&f, &b, model, NT, true, "adadelta", STRATA_ERR_INVALID, msg, sizeof(msg));
	ck_assert_str_eq(msg, "dense_1/bias:accum_grad has shape (4) in the file but (2, 2) in the model");
	expect_all(&f, 2);
	free(b.p);
	fx_close(&f);
}
END_TEST

START_TEST(test_missing_tensor)
{
	fixture f;
	fx_open(&f);
	set_all(&f, 1);
	/* The file lacks conv2d_1/kernel; dense_1 precedes it and must not be written either. */
	st_named_tensor partial[NT - 1];
	memcpy(partial, f.t, 2 * sizeof(*partial));
	memcpy(partial + 2, f.t + 3, 3 * sizeof(*partial));
	save_ok(&f, f.path, partial, NT - 1, "adadelta");
	set_all(&f, 2);
	bytes b = read_bytes(f.path);
	char msg[STRATA_ERROR_MAX];
	load_refused(&f, &b, f.t, NT, false, "", STRATA_ERR_INVALID, msg, sizeof(msg));
	ck_assert_str_eq(msg,
	                 "weight conv2d_1/kernel is missing from the file (shape (3, 3, 1, 2) in the model)");
	expect_all(&f, 2);
	free(b.p);

	/* A missing optimizer slot stops a resume. */
	memcpy(partial, f.t, 5 * sizeof(*partial));
	set_all(&f, 1);
	save_ok(&f, f.path, partial, NT - 1, "adadelta");
	set_all(&f, 2);
	b = read_bytes(f.path);
	load_refused(&f, &b, f.t, NT, true, "adadelta", STRATA_ERR_INVALID, msg, sizeof(msg));
	assert_contains(msg, "optimizer state conv2d_1/kernel:accum_grad is missing from the file");
	expect_all(&f, 2);
	free(b.p);
	fx_close(&f);
}
END_TEST

START_TEST(test_extra_tensor)
{
	fixture f;
	fx_open(&f);
	bytes b = saved_then_changed(&f);
	char msg[STRATA_ERROR_MAX];
	/* The model lacks dense_1/bias that the file has. */
	st_named_tensor model[NT - 1];
	memcpy(model, f.t, sizeof(*model));
	memcpy(model + 1, f.t + 2, 4 * sizeof(*model));
	load_refused(&f, &b, model, NT - 1, false, "", STRATA_ERR_INVALID, msg, sizeof(msg));
	ck_assert_str_eq(msg, "dense_1/bias (shape (4) in the file) is not in the model: "
	                      "the file belongs to another model");
	expect_all(&f, 2);
	free(b.p);
	fx_close(&f);
}
END_TEST

START_TEST(test_wrong_optimizer)
{
	fixture f;
	fx_open(&f);
	bytes b = saved_then_changed(&f);
	char msg[STRATA_ERROR_MAX];
	load_refused(&f, &b, f.t, NT, true, "adam", STRATA_ERR_INVALID, msg, sizeof(msg));
	ck_assert_str_eq(msg, "holds optimizer state of adadelta, but the model trains with adam");
	expect_all(&f, 2);
	free(b.p);
	fx_close(&f);
}
END_TEST

START_TEST(test_duplicate_in_file)
{
	fixture f;
	fx_open(&f);
	/* dense_1/kernel:accum_grad renamed to dense_1/kernel (the same length with ":" cut): a file
	 * with two tensors of one name. */
	bytes b = saved_then_changed(&f);
	size_t o = entry_offset(&b, "dense_1/kernel:accum_grad");
	bytes dup = {malloc(b.n), 0};
	ck_assert_ptr_nonnull(dup.p);
	size_t cut = strlen(":accum_grad");
	memcpy(dup.p, b.p, o);
	set_le32(dup.p + o, (uint32_t)strlen("dense_1/kernel"));
	memcpy(dup.p + o + 4, "dense_1/kernel", strlen("dense_1/kernel"));
	size_t rest = o + 4 + strlen("dense_1/kernel:accum_grad");
	memcpy(dup.p + o + 4 + strlen("dense_1/kernel"), b.p + rest, b.n - rest);
	dup.n = b.n - cut;
	set_le32(dup.p + o + 4 + strlen("dense_1/kernel"), ST_TENSOR_WEIGHT);
	fix_crc(&dup);
	char msg[STRATA_ERROR_MAX];
	load_refused(&f, &dup, f.t, NT, false, "", STRATA_ERR_PARSE, msg, sizeof(msg));
	ck_assert_str_eq(msg, "tensor dense_1/kernel appears twice");
	expect_all(&f, 2);
	free(dup.p);
	free(b.p);
	fx_close(&f);
}
END_TEST

/* Random single-byte damage, checksum repaired: every outcome is a clean refusal (or, for a byte
 * that no check covers such as a float or the epoch, a load) and a refusal leaves the device be. */
/* Header counters outside the format's ranges (checkpoint.h), written with a valid checksum by
 * the saver itself: a resumed run would take them as they are (an epoch of 2^64 - 1 resumed as
 * "Epoch 0/2"). Each is refused with the file, the field and the value; the limits load. */
START_TEST(test_counters_out_of_range)
{
	fixture f;
	fx_open(&f);
	set_all(&f, 2);
	struct {
		uint64_t epoch, step, iterations;
		const char *message; /* NULL: loads */
	} cases[] = {
	        {UINT64_MAX, 10, 10, "the epoch is 18446744073709551615, more than the 4294967294 allowed"},
	        {(uint64_t)UINT32_MAX, 10, 10, "the epoch is 4294967295, more than the 4294967294 allowed"},
	        {1, UINT64_MAX, 0, "the step is 18446744073709551615, more than the 9007199254740992 allowed"},
	        {1, (UINT64_C(1) << 53) + 1, 0, "the step is 9007199254740993, more than"},
	        {1, 10, 11, "the optimizer iterations are 11, more than the 10 steps taken"},
	        {1, 10, UINT64_MAX, "the optimizer iterations are 18446744073709551615, more than the 10 steps"},
	        {ST_CHECKPOINT_MAX_EPOCH, ST_CHECKPOINT_MAX_STEP, ST_CHECKPOINT_MAX_STEP, NULL},
	        {0, 0, 0, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		st_checkpoint_info info = sample_info();
		info.epoch = cases[i].epoch;
		info.step = cases[i].step;
		info.iterations = cases[i].iterations;
		strata_error err = {0};
		ck_assert_msg(st_checkpoint_save(f.rt, f.path, &info, f.t, NT, &err) == STRATA_OK, "%s", err.message);
		st_checkpoint_info got = {0};
		snprintf(got.optimizer, sizeof(got.optimizer), "adadelta");
		strata_status st = st_checkpoint_load(f.rt, f.path, &got, f.t, NT, true, &err);
		st_checkpoint_file *file = NULL;
		strata_error err2 = {0};
		strata_status st2 = st_checkpoint_open(f.path, &file, &err2);
		st_checkpoint_close(file);
		if (!cases[i].message) {
			ck_assert_msg(st == STRATA_OK && st2 == STRATA_OK, "case %zu: %s / %s", i, err.message,
			              err2.message);
			ck_assert_uint_eq(got.epoch, cases[i].epoch);
			ck_assert_uint_eq(got.step, cases[i].step);
			ck_assert_uint_eq(got.iterations, cases[i].iterations);
			continue;
		}
		ck_assert_msg(st == STRATA_ERR_PARSE, "case %zu: %s", i, strata_status_name(st));
		ck_assert_msg(!strncmp(err.message, f.path, strlen(f.path)) && strstr(err.message, cases[i].message),
		              "case %zu: \"%s\" not in \"%s\"", i, cases[i].message, err.message);
		ck_assert_uint_eq(got.epoch, 0);
		/* init_from's reader refuses it too, with the same message. */
		ck_assert_int_eq(st2, STRATA_ERR_PARSE);
		ck_assert_str_eq(err2.message, err.message);
	}
	fx_close(&f);
}
END_TEST

/* A checkpoint grown into a 64 GiB sparse file (truncate -s 64G: no disk space) is refused by its
 * size, from its headers, without reading it: before, it was read whole (or failed to allocate
 * 64 GiB). Both readers, each naming the file and both sizes. */
START_TEST(test_sparse_file)
{
	fixture f;
	fx_open(&f);
	bytes b = saved_then_changed(&f);
	const uint64_t huge = UINT64_C(64) << 30;
	ck_assert_int_eq(truncate(f.path, (off_t)huge), 0);
	char want[512];
	snprintf(want, sizeof(want), "%s: %llu trailing bytes: its headers describe %zu bytes, the file has %llu",
	         f.path, (unsigned long long)(huge - b.n), b.n, (unsigned long long)huge);
	st_checkpoint_info info = {0};
	snprintf(info.optimizer, sizeof(info.optimizer), "adadelta");
	strata_error err = {0};
	ck_assert_int_eq(st_checkpoint_load(f.rt, f.path, &info, f.t, NT, true, &err), STRATA_ERR_PARSE);
	ck_assert_str_eq(err.message, want);
	expect_all(&f, 2);
	st_checkpoint_file *file = NULL;
	ck_assert_int_eq(st_checkpoint_open(f.path, &file, &err), STRATA_ERR_PARSE);
	ck_assert_ptr_null(file);
	ck_assert_str_eq(err.message, want);

	/* All zeros: not a weights file, by its first bytes. */
	ck_assert_int_eq(truncate(f.path, 0), 0);
	ck_assert_int_eq(truncate(f.path, (off_t)huge), 0);
	ck_assert_int_eq(st_checkpoint_load(f.rt, f.path, &info, f.t, NT, true, &err), STRATA_ERR_PARSE);
	snprintf(want, sizeof(want), "%s: not a Strata weights file", f.path);
	ck_assert_str_eq(err.message, want);
	ck_assert_int_eq(st_checkpoint_open(f.path, &file, &err), STRATA_ERR_PARSE);
	ck_assert_str_eq(err.message, want);
	unlink(f.path);
	free(b.p);
	fx_close(&f);
}
END_TEST

/* A file larger than any weights file of the tensors asked for can be is not read whole: its
 * headers, walked alone, name the first tensor the model does not have (here a whole checkpoint
 * loaded into a "model" of one bias with its optimizer state). Within that bound the whole file
 * is read and the names decide as before (test_extra_tensor). */
START_TEST(test_larger_than_model)
{
	fixture f;
	fx_open(&f);
	bytes b = saved_then_changed(&f);
	st_named_tensor one[2] = {f.t[1], f.t[4]}; /* dense_1/bias and its accum_grad */
	st_checkpoint_info info = {0};
	snprintf(info.optimizer, sizeof(info.optimizer), "adadelta");
	strata_error err = {0};
	ck_assert_int_eq(st_checkpoint_load(f.rt, f.path, &info, one, 2, true, &err), STRATA_ERR_INVALID);
	/* Refused from the headers, which name the tensor the model does not have. */
	char want[512];
	snprintf(want, sizeof(want), "%s: dense_1/kernel (shape (6, 4) in the file) is not in the model: the file "
	         "belongs to another model", f.path);
	ck_assert_str_eq(err.message, want);
	expect_all(&f, 2);
	free(b.p);
	fx_close(&f);
}
END_TEST

START_TEST(test_damage_never_crashes)
{
	fixture f;
	fx_open(&f);
	bytes b = saved_then_changed(&f);
	float r[600];
	ts_fill_random(r, 600, 7, 0.0f, 1.0f);
	for (int i = 0; i < 300; i++) {
		bytes d = {malloc(b.n + 64), b.n};
		ck_assert_ptr_nonnull(d.p);
		memcpy(d.p, b.p, b.n);
		size_t at = (size_t)(r[2 * i] * (float)(b.n - 4));
		d.p[at] = (uint8_t)(r[2 * i + 1] * 256.0f);
		fix_crc(&d);
		char path[400];
		snprintf(path, sizeof(path), "%s/damaged.stw", f.dir);
		write_bytes(path, d.p, d.n);
		st_checkpoint_info info = {0};
		snprintf(info.optimizer, sizeof(info.optimizer), "adadelta");
		strata_error err = {0};
		strata_status st = st_checkpoint_load(f.rt, path, &info, f.t, NT, true, &err);
		if (st != STRATA_OK) {
			ck_assert_msg(st == STRATA_ERR_PARSE || st == STRATA_ERR_INVALID ||
			                      st == STRATA_ERR_UNSUPPORTED,
			              "byte %zu: %s: %s", at, strata_status_name(st), err.message);
			ck_assert_msg(!strncmp(err.message, path, strlen(path)), "%s", err.message);
			expect_all(&f, 2);
		} else {
			set_all(&f, 2);
		}
		free(d.p);
	}
	free(b.p);
	fx_close(&f);
}
END_TEST

static size_t files_in(const char *dir)
{
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

START_TEST(test_save_is_atomic)
{
	fixture f;
	fx_open(&f);
	/* A larger, older file in place is replaced whole, and no temporary file remains. */
	size_t old_n = 1u << 16;
	uint8_t *old = malloc(old_n);
	ck_assert_ptr_nonnull(old);
	memset(old, 'x', old_n);
	write_bytes(f.path, old, old_n);
	set_all(&f, 1);
	save_ok(&f, f.path, f.t, NT, "adadelta");
	ck_assert_uint_eq(files_in(f.dir), 1);
	char fresh[400];
	snprintf(fresh, sizeof(fresh), "%s/fresh.stw", f.dir);
	save_ok(&f, fresh, f.t, NT, "adadelta");
	bytes a = read_bytes(f.path), b = read_bytes(fresh);
	ck_assert_uint_eq(a.n, b.n);
	ck_assert_int_eq(memcmp(a.p, b.p, a.n), 0);
	ck_assert_int_eq(unlink(fresh), 0);

	/* A refused save leaves the previous file as it was. */
	st_named_tensor bad[NT];
	memcpy(bad, f.t, sizeof(bad));
	bad[2].shape.rank = 0;
	set_all(&f, 2);
	strata_error err = {0};
	st_checkpoint_info info = sample_info();
	ck_assert_int_eq(st_checkpoint_save(f.rt, f.path, &info, bad, NT, &err), STRATA_ERR_INVALID);
	assert_contains(err.message, "conv2d_1/kernel has rank 0");
	memcpy(bad, f.t, sizeof(bad));
	snprintf(bad[1].name, sizeof(bad[1].name), "%s", names[0]);
	ck_assert_int_eq(st_checkpoint_save(f.rt, f.path, &info, bad, NT, &err), STRATA_ERR_INVALID);
	assert_contains(err.message, "dense_1/kernel is listed twice");
	free(b.p);
	b = read_bytes(f.path);
	ck_assert_uint_eq(a.n, b.n);
	ck_assert_int_eq(memcmp(a.p, b.p, a.n), 0);
	ck_assert_uint_eq(files_in(f.dir), 1);

	/* A folder that does not exist is an I/O error that leaves nothing behind. */
	char nowhere[400];
	snprintf(nowhere, sizeof(nowhere), "%s/no/such/w.stw", f.dir);
	ck_assert_int_eq(st_checkpoint_save(f.rt, nowhere, &info, f.t, NT, &err), STRATA_ERR_IO);
	assert_contains(err.message, nowhere);
	ck_assert_uint_eq(files_in(f.dir), 1);
	free(a.p);
	free(b.p);
	free(old);
	fx_close(&f);
}
END_TEST

static Suite *checkpoint_suite(void)
{
	Suite *s = suite_create("checkpoint");
	TCase *tc = tcase_create("device");
	tcase_add_test(tc, test_round_trip_with_optimizer);
	tcase_add_test(tc, test_layout_on_disk);
	tcase_add_test(tc, test_weights_only);
	tcase_add_test(tc, test_corrupt_checksum);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_trailing_bytes);
	tcase_add_test(tc, test_lying_lengths);
	tcase_add_test(tc, test_newer_version);
	tcase_add_test(tc, test_not_a_weights_file);
	tcase_add_test(tc, test_wrong_shape);
	tcase_add_test(tc, test_missing_tensor);
	tcase_add_test(tc, test_extra_tensor);
	tcase_add_test(tc, test_wrong_optimizer);
	tcase_add_test(tc, test_duplicate_in_file);
	tcase_add_test(tc, test_counters_out_of_range);
	tcase_add_test(tc, test_sparse_file);
	tcase_add_test(tc, test_larger_than_model);
	tcase_add_test(tc, test_damage_never_crashes);
	tcase_add_test(tc, test_save_is_atomic);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ts_run(checkpoint_suite());
}
