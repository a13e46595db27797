/* IDX files (MNIST's format): magic 0, 0, type, rank; rank big-endian uint32 dimensions; then the
 * elements, big-endian. zlib's gz* functions read plain and gzip files alike. The header is not
 * trusted, and neither is what the path names: the file is opened through st_open_regular, so a
 * FIFO cannot block the open and a device such as /dev/zero is refused. A plain file's size is
 * known from fstat, so a header that does not account for it exactly is refused before any data
 * is read (a 64 GiB sparse file behind a small header costs nothing). A gzip file's decompressed
 * size is known only by reading it: the buffer grows only as data actually arrives, up to what the
 * header declares, so a header claiming terabytes over a small file costs nothing before it is
 * refused as truncated, and at most TRAILING_COUNT_MAX bytes past the declared data are
 * decompressed to refuse trailing data. One parser reads from a source that is either such a file
 * or bytes in memory (st_idx_load_memory, which the fuzzer drives). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "base/error.h"
#include "base/fsutil.h"
#include "io/idx.h"

#define IDX_MAX_RANK 8
#define IDX_FIRST_CHUNK (1u << 20)
/* Decompressed bytes past the declared data that are counted for the message before giving up:
 * a gzip bomb appended to a valid file is refused after this much work, not after all of it. */
#define TRAILING_COUNT_MAX (1u << 20)

static const char *type_name(uint8_t type, size_t *elem)
{
	switch (type) {
	case 0x08:
		*elem = 1;
		return "unsigned byte";
	case 0x09:
		*elem = 1;
		return "signed byte";
	case 0x0B:
		*elem = 2;
		return "short";
	case 0x0C:
		*elem = 4;
		return "int";
	case 0x0D:
		*elem = 4;
		return "float";
	case 0x0E:
		*elem = 8;
		return "double";
	default:
		*elem = 0;
		return NULL;
	}
}

/* Where the bytes come from: a file through zlib, or memory when `file` is NULL. */
typedef struct source {
	const char *path; /* the file's path, or the name that stands for it in messages */
	gzFile file;
	const uint8_t *data;
	size_t len, pos;
	uint64_t size;    /* a plain file's size (fstat), or len for memory */
	bool sized;       /* whether `size` is what the parser will read: not for gzip data */
} source;

/* Reads up to `want` bytes into *got; a short count means end of file. */
static strata_status read_some(source *src, void *dst, size_t want, size_t *got, strata_error *err)
{
	if (!src->file) {
		size_t n = src->len - src->pos < want ? src->len - src->pos : want;
		if (n)
			memcpy(dst, src->data + src->pos, n);
		src->pos += n;
		*got = n;
		return STRATA_OK;
	}
	gzFile f = src->file;
	const char *path = src->path;
	int code;
	*got = 0;
	while (*got < want) {
		size_t chunk = want - *got > (1u << 30) ? (1u << 30) : want - *got;
		int n = gzread(f, (char *)dst + *got, (unsigned)chunk);
		if (n < 0) {
			gzerror(f, &code);
			if (code == Z_ERRNO)
				return st_fail(err, STRATA_ERR_IO, "%s: read error: %s", path, strerror(errno));
			if (code == Z_MEM_ERROR)
				return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory in zlib", path);
			break; /* damaged compressed data: reported below like a stream cut short */
		}
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	/* zlib reports damaged or cut-short gzip data only through gzerror(), as "<fd:N>: problem" for
	 * a file opened with gzdopen; the message names the path instead. */
	const char *msg = gzerror(f, &code);
	const char *name_end = msg[0] == '<' ? strstr(msg, ">: ") : NULL;
	if (name_end)
		msg = name_end + 3;
	if (*got < want && code != Z_OK && code != Z_STREAM_END)
		return st_fail(err, STRATA_ERR_PARSE, "%s: corrupt gzip data: %s", path, msg);
	return STRATA_OK;
}

/* "60000 x 28 x 28", then " of unsigned byte" when `type` is not NULL. */
static void dims_text(const uint32_t *dims, uint32_t rank, const char *type, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (uint32_t i = 0; i < rank && o < size; i++) {
		int n = snprintf(buf + o, size - o, "%s%u", i ? " x " : "", dims[i]);
		if (n < 0)
			return;
		o += (size_t)n;
	}
	if (type && o < size)
		snprintf(buf + o, size - o, " of %s", type);
}

/* Converts big-endian elements in place to host order. */
static void from_big_endian(uint8_t *p, uint64_t count, size_t elem)
{
	for (uint64_t i = 0; i < count; i++, p += elem) {
		if (elem == 2) {
			uint16_t v = (uint16_t)((p[0] << 8) | p[1]);
			memcpy(p, &v, 2);
		} else if (elem == 4) {
			uint32_t v = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
			             p[3];
			memcpy(p, &v, 4);
		} else if (elem == 8) {
			uint64_t v = 0;
			for (int b = 0; b < 8; b++)
				v = (v << 8) | p[b];
			memcpy(p, &v, 8);
		}
	}
}

/* The refusals of a file whose size is not what its header declares (`total` bytes in all), worded
 * alike whether the size came from fstat, from memory or from reading decompressed data. */
static strata_status fail_truncated(const source *src, const char *dims, uint64_t total, uint64_t has,
                                    strata_error *err)
{
	return st_fail(err, STRATA_ERR_PARSE,
	               "%s: truncated: the header (%s) declares %llu bytes in all, the file has %llu", src->path,
	               dims, (unsigned long long)total, (unsigned long long)has);
}

static strata_status fail_trailing(const source *src, const char *dims, uint64_t total, uint64_t has,
                                   strata_error *err)
{
	return st_fail(err, STRATA_ERR_PARSE,
	               "%s: %llu trailing bytes: the header (%s) declares %llu bytes in all, the file has %llu",
	               src->path, (unsigned long long)(has - total), dims, (unsigned long long)total,
	               (unsigned long long)has);
}

/* Refuses decompressed data past the declared end (a source whose size was not known before), counting
 * it to name the real size, but at most TRAILING_COUNT_MAX bytes of it. */
static strata_status check_end(source *src, const char *dims, uint64_t total, strata_error *err)
{
	char buf[4096];
	uint64_t extra = 0;
	size_t n;
	do {
		strata_status st = read_some(src, buf, sizeof(buf), &n, err);
		if (st)
			return st;
		extra += n;
	} while (n == sizeof(buf) && extra <= TRAILING_COUNT_MAX);
	if (extra == 0)
		return STRATA_OK;
	if (extra > TRAILING_COUNT_MAX)
		return st_fail(err, STRATA_ERR_PARSE,
		               "%s: more than %u trailing bytes: the header (%s) declares %llu bytes in all",
		               src->path, TRAILING_COUNT_MAX, dims, (unsigned long long)total);
	return fail_trailing(src, dims, total, total + extra, err);
}

static strata_status parse(source *src, strata_idx **out, strata_error *err)
{
	const char *path = src->path;
	strata_status st;
	uint8_t head[4 + 4 * IDX_MAX_RANK];
	size_t elem;
	char dims[160];

	strata_idx *idx = calloc(1, sizeof(*idx));
	if (!idx)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", path);
	size_t got;
	st = read_some(src, head, 4, &got, err);
	if (st)
		goto out_free_idx;
	if (got == 0) {
		st = st_fail(err, STRATA_ERR_PARSE, "%s: empty file, not an IDX file", path);
		goto out_free_idx;
	}
	if (got < 4) {
		st = st_fail(err, STRATA_ERR_PARSE,
		             "%s: truncated header: expected 4 bytes, the file has %zu", path, got);
		goto out_free_idx;
	}
	/* zlib knows whether the file is gzip once it has read its first bytes; a plain one is read
	 * as it is, so its size on disk is the size the header must declare. */
	if (src->file)
		src->sized = gzdirect(src->file) == 1;
	const char *tname = type_name(head[2], &elem);
	if (head[0] != 0 || head[1] != 0) {
		st = st_fail(err, STRATA_ERR_PARSE,
		             "%s: not an IDX file: magic bytes %02x %02x %02x %02x, expected 00 00 TYPE RANK",
		             path, head[0], head[1], head[2], head[3]);
		goto out_free_idx;
	}
	if (!tname) {
		st = st_fail(err, STRATA_ERR_PARSE,
		             "%s: unknown IDX data type 0x%02x (known: 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E)",
		             path, head[2]);
		goto out_free_idx;
	}
	if (head[3] < 1 || head[3] > IDX_MAX_RANK) {
		st = st_fail(err, STRATA_ERR_PARSE, "%s: IDX rank %u, expected 1 to %d", path, head[3],
		             IDX_MAX_RANK);
		goto out_free_idx;
	}
	idx->type = head[2];
	idx->rank = head[3];
	size_t dims_bytes = 4u * idx->rank;
	st = read_some(src, head + 4, dims_bytes, &got, err);
	if (st)
		goto out_free_idx;
	if (got < dims_bytes) {
		st = st_fail(err, STRATA_ERR_PARSE,
		             "%s: truncated header: rank %u needs %zu bytes of header, the file has %zu",
		             path, idx->rank, 4 + dims_bytes, 4 + got);
		goto out_free_idx;
	}
	uint64_t count = 1, data_bytes;
	bool overflow = false;
	uint32_t zero_dim = 0;
	for (uint32_t i = 0; i < idx->rank; i++) {
		const uint8_t *p = head + 4 + 4 * i;
		idx->dims[i] = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
		overflow |= __builtin_mul_overflow(count, (uint64_t)idx->dims[i], &count);
		if (idx->dims[i] == 0 && !zero_dim)
			zero_dim = i + 1;
	}
	dims_text(idx->dims, idx->rank, tname, dims, sizeof(dims));
	/* Every user divides by the number of samples or by the values per sample, and an empty data
	 * set trains nothing: refused here, once, rather than in each of them. */
	if (zero_dim == 1) {
		st = st_fail(err, STRATA_ERR_INVALID, "%s: no samples: the header (%s) declares 0 of them", path,
		             dims);
		goto out_free_idx;
	}
	if (zero_dim) {
		st = st_fail(err, STRATA_ERR_INVALID,
		             "%s: empty samples: dimension %u of the header (%s) is 0", path, zero_dim, dims);
		goto out_free_idx;
	}
	uint64_t header = 4 + dims_bytes, total;
	if (overflow || __builtin_mul_overflow(count, (uint64_t)elem, &data_bytes) || data_bytes > SIZE_MAX ||
	    __builtin_add_overflow(header, data_bytes, &total)) {
		st = st_fail(err, STRATA_ERR_OVERFLOW, "%s: the header's dimensions %s overflow the size",
		             path, dims);
		goto out_free_idx;
	}
	idx->count = count;
	/* A size known beforehand must be exactly what the header declares: checked before reading
	 * (or allocating) anything more. */
	if (src->sized && src->size < total) {
		st = fail_truncated(src, dims, total, src->size, err);
		goto out_free_idx;
	}
	if (src->sized && src->size > total) {
		st = fail_trailing(src, dims, total, src->size, err);
		goto out_free_idx;
	}

	/* A known size is allocated at once (it exists: the file holds it); an unknown one grows with
	 * the data that arrives. */
	size_t cap = src->sized || data_bytes < IDX_FIRST_CHUNK ? (size_t)data_bytes : IDX_FIRST_CHUNK;
	idx->data = malloc(cap);
	if (!idx->data) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory for %zu bytes", path, cap);
		goto out_free_idx;
	}
	size_t have = 0;
	while (have < data_bytes) {
		if (have == cap) {
			size_t ncap = cap * 2 < data_bytes ? cap * 2 : (size_t)data_bytes;
			void *nd = realloc(idx->data, ncap);
			if (!nd) {
				st = st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory for %zu bytes",
				             path, ncap);
				goto out_free_data;
			}
			idx->data = nd;
			cap = ncap;
		}
		st = read_some(src, (uint8_t *)idx->data + have, cap - have, &got, err);
		if (st)
			goto out_free_data;
		have += got;
		if (have < cap)
			break;
	}
	/* A plain file that shrank since fstat lands here too. */
	if (have < data_bytes) {
		st = fail_truncated(src, dims, total, header + have, err);
		goto out_free_data;
	}
	if (!src->sized && (st = check_end(src, dims, total, err)))
		goto out_free_data;
	from_big_endian(idx->data, count, elem);
	*out = idx;
	return STRATA_OK;

out_free_data:
	free(idx->data);
out_free_idx:
	free(idx);
	return st;
}

strata_status strata_idx_load(const char *path, strata_idx **out, strata_error *err)
{
	if (!path || !out)
		return st_fail(err, STRATA_ERR_INVALID, "strata_idx_load: path and out are required");
	*out = NULL;
	int fd;
	uint64_t size;
	strata_status st = st_open_regular(path, &fd, &size, err);
	if (st)
		return st;
	gzFile f = gzdopen(fd, "rb");
	if (!f) {
		close(fd);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory opening it", path);
	}
	/* The default 8 KiB gzip buffer makes reading 47 MB of MNIST slow. */
	gzbuffer(f, 128u * 1024u);
	source src = {.path = path, .file = f, .size = size};
	st = parse(&src, out, err);
	gzclose(f);
	return st;
}

strata_status st_idx_load_memory(const void *data, size_t len, const char *name, strata_idx **out,
                                 strata_error *err)
{
	if (!out || (!data && len))
		return st_fail(err, STRATA_ERR_INVALID, "st_idx_load_memory: data and out are required");
	*out = NULL;
	source src = {.path = name ? name : "(memory)", .data = data, .len = len, .size = len, .sized = true};
	return parse(&src, out, err);
}

void strata_idx_free(strata_idx *idx)
{
	if (!idx)
		return;
	free(idx->data);
	free(idx);
}

/* "17 x 23 x 1" */
static void shape_text(const strata_shape *s, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (uint32_t i = 0; i < s->rank && o < size; i++) {
		int n = snprintf(buf + o, size - o, "%s%lld", i ? " x " : "", (long long)s->dims[i]);
		if (n < 0)
			return;
		o += (size_t)n;
	}
}

void st_idx_dims_text(const uint32_t *dims, uint32_t rank, char *buf, size_t size)
{
	dims_text(dims, rank, NULL, buf, size);
}

/* Channels last, as strata_shape: the samples' dimensions must be the input shape itself, or the
 * input shape without a last axis of 1, for greyscale images stored without a channel axis (MNIST's
 * idx3 files, N x 28 x 28, for the input [28, 28, 1] of every model in models/). Nothing else fits.
 * Not another arrangement of as many values: 23 x 17 images for a 17 x 23 input would train
 * silently on transposed pictures. Not flattened either (28 x 28 images for an input [784], or a
 * flat 784-value file for [28, 28, 1]): no model in models/ or in the tests needs it, and allowing
 * it would let the mistake above through for every rank-1 input; a model that wants images flat
 * says so with an image input and a flatten layer. */
bool st_idx_samples_fit(const uint32_t *dims, uint32_t rank, const strata_shape *input)
{
	uint32_t m = input->rank;
	if (rank != m && !(rank + 1 == m && input->dims[m - 1] == 1))
		return false;
	for (uint32_t i = 0; i < rank; i++)
		if ((int64_t)dims[i] != input->dims[i])
			return false;
	return true;
}

strata_status st_idx_check_fit(const char *path, const char *what, const uint32_t *dims, uint32_t rank,
                               const strata_shape *input, strata_error *err)
{
	if (st_idx_samples_fit(dims, rank, input))
		return STRATA_OK;
	char have[160], want[96];
	uint64_t values = 1, in_values = 1;
	for (uint32_t i = 0; i < rank; i++)
		values *= dims[i];
	for (uint32_t i = 0; i < input->rank; i++)
		in_values *= (uint64_t)input->dims[i];
	dims_text(dims, rank, NULL, have, sizeof(have));
	shape_text(input, want, sizeof(want));
	return st_fail(err, STRATA_ERR_INVALID,
	               "%s: %s has samples of %s (%llu values), the model's input is %s (%llu values): the "
	               "samples must have the input's shape, or the input's without its last axis of 1",
	               path, what, have, (unsigned long long)values, want, (unsigned long long)in_values);
}

strata_status strata_idx_check_samples(const strata_idx *idx, const char *path, const strata_shape *input,
                                       strata_error *err)
{
	if (!idx || !path || !input)
		return st_fail(err, STRATA_ERR_INVALID, "strata_idx_check_samples: idx, path and input are required");
	bool ids = idx->type == 0x0C && input->dtype == STRATA_DTYPE_INT32; /* int32 ids for an input of ids */
	if ((idx->type != 0x08 && !ids) || idx->rank < 2 || idx->rank > IDX_MAX_RANK) {
		size_t elem;
		const char *tname = type_name(idx->type, &elem);
		char dims[160];
		dims_text(idx->dims, idx->rank < IDX_MAX_RANK ? idx->rank : IDX_MAX_RANK,
		          tname ? tname : "an unknown type", dims, sizeof(dims));
		return st_fail(err, STRATA_ERR_INVALID,
		               "%s: expected unsigned-byte samples (IDX type 0x08, rank 2 or more; int32 ids, type 0x0C, for "
		               "an input of ids), the file holds %s", path, dims);
	}
	return st_idx_check_fit(path, "the file", idx->dims + 1, idx->rank - 1, input, err);
}
