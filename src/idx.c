/* IDX files (MNIST's format): magic 0, 0, type, rank; rank big-endian uint32 dimensions; then the
 * elements, big-endian. zlib's gz* functions read plain and gzip files alike. The header is not
 * trusted: the buffer grows only as data actually arrives, so a header claiming terabytes over a
 * small file costs nothing before it is refused as truncated. One parser reads from a source that
 * is either such a file or bytes in memory (st_idx_load_memory, which the fuzzer drives). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "error.h"
#include "idx.h"

#define IDX_MAX_RANK 8
#define IDX_FIRST_CHUNK (1u << 20)

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
	/* zlib reports damaged or cut-short gzip data only through gzerror(), as "PATH: problem". */
	const char *msg = gzerror(f, &code);
	size_t plen = strlen(path);
	if (!strncmp(msg, path, plen) && !strncmp(msg + plen, ": ", 2))
		msg += plen + 2;
	if (*got < want && code != Z_OK && code != Z_STREAM_END)
		return st_fail(err, STRATA_ERR_PARSE, "%s: corrupt gzip data: %s", path, msg);
	return STRATA_OK;
}

/* "60000 x 28 x 28 of unsigned byte" */
static void dims_text(const strata_idx *idx, const char *type, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (uint32_t i = 0; i < idx->rank && o < size; i++) {
		int n = snprintf(buf + o, size - o, "%s%u", i ? " x " : "", idx->dims[i]);
		if (n < 0)
			return;
		o += (size_t)n;
	}
	if (o < size)
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

/* Counts what follows the declared data, to name the real size in the message. */
static strata_status check_end(source *src, const char *dims, uint64_t header, uint64_t data_bytes,
                               strata_error *err)
{
	const char *path = src->path;
	char buf[4096];
	uint64_t extra = 0;
	size_t n;
	do {
		strata_status st = read_some(src, buf, sizeof(buf), &n, err);
		if (st)
			return st;
		extra += n;
	} while (n == sizeof(buf));
	if (extra == 0)
		return STRATA_OK;
	return st_fail(
	        err, STRATA_ERR_PARSE,
	        "%s: %llu trailing bytes: the header (%s) declares %llu bytes in all, the file has %llu",
	        path, (unsigned long long)extra, dims, (unsigned long long)(header + data_bytes),
	        (unsigned long long)(header + data_bytes + extra));
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
	for (uint32_t i = 0; i < idx->rank; i++) {
		const uint8_t *p = head + 4 + 4 * i;
		idx->dims[i] = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
		overflow |= __builtin_mul_overflow(count, (uint64_t)idx->dims[i], &count);
	}
	dims_text(idx, tname, dims, sizeof(dims));
	if (overflow || __builtin_mul_overflow(count, (uint64_t)elem, &data_bytes) || data_bytes > SIZE_MAX) {
		st = st_fail(err, STRATA_ERR_OVERFLOW, "%s: the header's dimensions %s overflow the size",
		             path, dims);
		goto out_free_idx;
	}
	idx->count = count;
	uint64_t header = 4 + dims_bytes;

	size_t cap = data_bytes < IDX_FIRST_CHUNK ? (size_t)data_bytes : IDX_FIRST_CHUNK;
	idx->data = malloc(cap ? cap : 1);
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
	if (have < data_bytes) {
		st = st_fail(err, STRATA_ERR_PARSE,
		             "%s: truncated: the header (%s) declares %llu bytes in all, the file has %llu",
		             path, dims, (unsigned long long)(header + data_bytes),
		             (unsigned long long)(header + have));
		goto out_free_data;
	}
	st = check_end(src, dims, header, data_bytes, err);
	if (st)
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
	errno = 0;
	gzFile f = gzopen(path, "rb");
	if (!f)
		return st_fail(err, errno == ENOENT ? STRATA_ERR_NOT_FOUND : STRATA_ERR_IO,
		               "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
	/* The default 8 KiB gzip buffer makes reading 47 MB of MNIST slow. */
	gzbuffer(f, 128u * 1024u);
	source src = {.path = path, .file = f};
	strata_status st = parse(&src, out, err);
	gzclose(f);
	return st;
}

strata_status st_idx_load_memory(const void *data, size_t len, const char *name, strata_idx **out,
                                 strata_error *err)
{
	if (!out || (!data && len))
		return st_fail(err, STRATA_ERR_INVALID, "st_idx_load_memory: data and out are required");
	*out = NULL;
	source src = {.path = name ? name : "(memory)", .data = data, .len = len};
	return parse(&src, out, err);
}

void strata_idx_free(strata_idx *idx)
{
	if (!idx)
		return;
	free(idx->data);
	free(idx);
}
