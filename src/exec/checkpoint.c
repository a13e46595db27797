/* Weights files: serialization, validation and the exchange with device tensors (format in
 * checkpoint.h). Before a file is read whole, its headers are walked with pread() over the
 * tensors' data, so that a file whose size differs from what its headers describe (a checkpoint
 * grown into a 64 GiB sparse file) or that is larger than the model it is loaded into can hold
 * is refused without reading it. Every size is checked against the bytes that remain before it
 * is used, so a lying header costs nothing, and no device buffer is written until the whole file
 * and every name and shape have been accepted. */
#include "exec/checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "base/fsutil.h"
#include "model/model.h"
#include "exec/optimizer.h"

static const uint8_t magic[8] = {'S', 'T', 'R', 'A', 'T', 'A', 'W', '\0'};

/* Fixed part before the model name: magic, version, flags, epoch, step, seed. */
#define HEAD_BYTES (8u + 4u + 4u + 8u + 8u + 8u)
/* The smallest tensor entry: name length, one name byte, kind, rank, one dim, one float. */
#define MIN_ENTRY_BYTES (4u + 1u + 4u + 4u + 8u + 4u)
#define NAME_MAX_BYTES (sizeof(((st_named_tensor *)0)->name) - 1)
#define MODEL_MAX_BYTES (sizeof(((st_checkpoint_info *)0)->model) - 1)
#define OPTIMIZER_MAX_BYTES (sizeof(((st_checkpoint_info *)0)->optimizer) - 1)
/* The largest header a file can have, names at their longest, checksum included. */
#define HEADER_MAX_BYTES (HEAD_BYTES + 4u + MODEL_MAX_BYTES + 4u + OPTIMIZER_MAX_BYTES + 8u + 4u + 4u)
/* The largest header of one tensor entry: name at its longest, rank at its highest. */
#define ENTRY_HEAD_MAX_BYTES (4u + NAME_MAX_BYTES + 4u + 4u + 8u * STRATA_MAX_RANK)

/* ---- Little-endian encoding ---------------------------------------------------------------- */

static bool host_is_little_endian(void)
{
	const uint16_t probe = 1;
	uint8_t first;
	memcpy(&first, &probe, 1);
	return first == 1;
}

/* Floats travel little-endian; a big-endian host swaps them in place (a no-op elsewhere). */
static void swap_floats_if_big_endian(uint8_t *p, uint64_t count)
{
	if (host_is_little_endian())
		return;
	for (uint64_t i = 0; i < count; i++, p += 4) {
		uint8_t t = p[0];
		p[0] = p[3];
		p[3] = t;
		t = p[1];
		p[1] = p[2];
		p[2] = t;
	}
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void put_u32(uint8_t **p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		*(*p)++ = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t **p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		*(*p)++ = (uint8_t)(v >> (8 * i));
}

static void put_bytes(uint8_t **p, const void *src, size_t n)
{
	memcpy(*p, src, n);
	*p += n;
}

/* zlib takes lengths as uInt; larger files are summed in pieces. */
static uint32_t crc_of(const uint8_t *p, size_t n)
{
	uLong crc = crc32(0L, Z_NULL, 0);
	while (n > 0) {
		size_t chunk = n > (1u << 30) ? (1u << 30) : n;
		crc = crc32(crc, p, (uInt)chunk);
		p += chunk;
		n -= chunk;
	}
	return (uint32_t)crc;
}

/* ---- Shapes -------------------------------------------------------------------------------- */

/* "(9216, 128)", from dims as the file or the model gives them. */
static void dims_text(uint32_t rank, const uint64_t *dims, char *buf, size_t size)
{
	size_t o = 0;
	int n = snprintf(buf, size, "(");
	for (uint32_t i = 0; i < rank && n >= 0 && (o += (size_t)n) < size; i++)
		n = snprintf(buf + o, size - o, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
	if (n >= 0 && (o += (size_t)n) < size)
		snprintf(buf + o, size - o, ")");
}

/* Checks a tensor the caller hands in: a bad one is a programming error, reported as such. */
static strata_status check_request(const char *path, const st_named_tensor *t, strata_error *err)
{
	size_t len = strnlen(t->name, sizeof(t->name));
	if (len == 0 || len > NAME_MAX_BYTES)
		return st_fail(err, STRATA_ERR_INVALID, "%s: a tensor name is empty or not terminated", path);
	if (t->kind != ST_TENSOR_WEIGHT && t->kind != ST_TENSOR_OPTIMIZER)
		return st_fail(err, STRATA_ERR_INVALID, "%s: %s has unknown kind %u", path, t->name, t->kind);
	if (t->shape.rank < 1 || t->shape.rank > STRATA_MAX_RANK)
		return st_fail(err, STRATA_ERR_INVALID, "%s: %s has rank %u (1 to %d allowed)", path, t->name,
		               t->shape.rank, STRATA_MAX_RANK);
	uint64_t count = 1;
	for (uint32_t i = 0; i < t->shape.rank; i++)
		if (t->shape.dims[i] < 1 || __builtin_mul_overflow(count, (uint64_t)t->shape.dims[i], &count))
			return st_fail(err, STRATA_ERR_INVALID,
			               "%s: %s has a zero, negative or overflowing dimension", path, t->name);
	if (count != t->count || count > SIZE_MAX / sizeof(float))
		return st_fail(err, STRATA_ERR_INVALID, "%s: %s has count %llu but its shape holds %llu",
		               path, t->name, (unsigned long long)t->count, (unsigned long long)count);
	if (!t->host && (!t->tensor || t->tensor->bytes < count * sizeof(float)))
		return st_fail(err, STRATA_ERR_INVALID, "%s: %s has no device buffer of %llu bytes", path,
		               t->name, (unsigned long long)(count * sizeof(float)));
	return STRATA_OK;
}

static bool same_shape(const strata_shape *a, uint32_t rank, const uint64_t *dims)
{
	if (a->rank != rank)
		return false;
	for (uint32_t i = 0; i < rank; i++)
		if ((uint64_t)a->dims[i] != dims[i])
			return false;
	return true;
}

/* ---- Save ---------------------------------------------------------------------------------- */

static strata_status add_size(uint64_t *total, uint64_t n, const char *path, strata_error *err)
{
	if (__builtin_add_overflow(*total, n, total) || *total > SIZE_MAX)
		return st_fail(err, STRATA_ERR_OVERFLOW, "%s: the weights do not fit in memory", path);
	return STRATA_OK;
}

strata_status st_checkpoint_save(strata_runtime *rt, const char *path, const st_checkpoint_info *info,
                                 const st_named_tensor *tensors, size_t n, strata_error *err)
{
	static const st_checkpoint_info none = {0};
	strata_status st;
	if (!info)
		info = &none;
	size_t model_len = strnlen(info->model, sizeof(info->model));
	size_t opt_len = strnlen(info->optimizer, sizeof(info->optimizer));
	if (model_len > MODEL_MAX_BYTES || opt_len > OPTIMIZER_MAX_BYTES)
		return st_fail(err, STRATA_ERR_INVALID, "%s: model or optimizer name not terminated", path);
	if (n > UINT32_MAX)
		return st_fail(err, STRATA_ERR_INVALID, "%s: %zu tensors, more than the format holds", path,
		               n);

	uint64_t total = HEAD_BYTES + 4 + model_len + 4 + opt_len + 8 + 4 + 4;
	for (size_t i = 0; i < n; i++) {
		const st_named_tensor *t = &tensors[i];
		if ((st = check_request(path, t, err)))
			return st;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(tensors[j].name, t->name))
				return st_fail(err, STRATA_ERR_INVALID, "%s: tensor %s is listed twice", path,
				               t->name);
		if ((st = add_size(&total, 4 + strlen(t->name) + 4 + 4 + 8ull * t->shape.rank, path, err)) ||
		    (st = add_size(&total, t->count * sizeof(float), path, err)))
			return st;
	}

	uint8_t *buf = malloc((size_t)total);
	if (!buf)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory for %llu bytes of weights", path,
		               (unsigned long long)total);
	uint8_t *p = buf;
	put_bytes(&p, magic, sizeof(magic));
	put_u32(&p, ST_CHECKPOINT_VERSION);
	put_u32(&p, 0);
	put_u64(&p, info->epoch);
	put_u64(&p, info->step);
	put_u64(&p, info->seed);
	put_u32(&p, (uint32_t)model_len);
	put_bytes(&p, info->model, model_len);
	put_u32(&p, (uint32_t)opt_len);
	put_bytes(&p, info->optimizer, opt_len);
	put_u64(&p, info->iterations);
	put_u32(&p, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		const st_named_tensor *t = &tensors[i];
		size_t len = strlen(t->name);
		put_u32(&p, (uint32_t)len);
		put_bytes(&p, t->name, len);
		put_u32(&p, t->kind);
		put_u32(&p, t->shape.rank);
		for (uint32_t d = 0; d < t->shape.rank; d++)
			put_u64(&p, (uint64_t)t->shape.dims[d]);
		size_t bytes = (size_t)t->count * sizeof(float);
		if (t->host)
			memcpy(p, t->host, bytes);
		else if ((st = st_tensor_read(rt, t->tensor, 0, p, bytes, err))) {
			/* Say that the file on disk was not touched: the earlier checkpoint is still good. */
			if (err) {
				char why[sizeof(err->message)];
				snprintf(why, sizeof(why), "%s", err->message);
				st_fail(err, st, "%s was not written (it is unchanged): reading %s from the device "
				        "failed: %s", path, t->name, why);
			}
			goto out_free;
		}
		swap_floats_if_big_endian(p, t->count);
		p += bytes;
	}
	put_u32(&p, crc_of(buf, (size_t)(p - buf)));
	st = st_write_file_atomic(path, buf, (size_t)(p - buf), err);
out_free:
	free(buf);
	return st;
}

/* ---- Load: structure ----------------------------------------------------------------------- */

typedef struct entry {
	const char *name; /* not terminated: name_len bytes */
	uint32_t name_len;
	uint32_t kind;
	uint32_t rank;
	uint64_t dims[STRATA_MAX_RANK];
	uint64_t count;
	uint8_t *data;
	bool matched;
} entry;

typedef struct parsed {
	uint32_t version;
	uint64_t epoch, step, seed, iterations;
	const char *model, *optimizer;
	uint32_t model_len, optimizer_len;
	uint32_t count;
	entry *entries;
	size_t end; /* offset of the checksum */
} parsed;

/* Reads a file held whole in memory (`data`), or, when `data` is NULL, walks the headers of the
 * file open as `fd` with pread(): strings are then read into `scratch`, the tensors' data is
 * skipped and no entry is kept (parse() gives only the size the headers describe). */
typedef struct reader {
	uint8_t *data;
	int fd;
	size_t len, pos;
	const char *path;
	char scratch[NAME_MAX_BYTES + 1];
	/* Walking headers only: the model's tensors, so that a tensor it does not have, or has in
	 * another shape, is named from the headers alone; NULL when no model bounds the file. */
	const st_named_tensor *tensors;
	size_t n_tensors;
	bool with_optimizer;
} reader;

static size_t left(const reader *r)
{
	return r->len - r->pos;
}

/* The `n` bytes at r->pos, which the caller has checked are within the file. */
static strata_status peek(const reader *r, void *dst, size_t n, strata_error *err)
{
	if (r->data) {
		memcpy(dst, r->data + r->pos, n);
		return STRATA_OK;
	}
	size_t done = 0;
	while (done < n) {
		ssize_t got = pread(r->fd, (char *)dst + done, n - done, (off_t)(r->pos + done));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return st_fail(err, STRATA_ERR_IO, "%s: cannot read %zu bytes at offset %zu: %s", r->path, n,
			               r->pos, got < 0 ? strerror(errno) : "the file got shorter while being read");
		done += (size_t)got;
	}
	return STRATA_OK;
}

/* A field cut off by the end of the file. */
static strata_status short_read(const reader *r, const char *what, uint64_t need, strata_error *err)
{
	return st_fail(err, STRATA_ERR_PARSE,
	               "%s: truncated: %s needs %llu bytes at offset %zu, the file ends at %zu", r->path,
	               what, (unsigned long long)need, r->pos, r->len);
}

static strata_status take_u32(reader *r, const char *what, uint32_t *v, strata_error *err)
{
	uint8_t b[4];
	if (left(r) < 4)
		return short_read(r, what, 4, err);
	strata_status st = peek(r, b, sizeof(b), err);
	if (st)
		return st;
	*v = get_u32(b);
	r->pos += 4;
	return STRATA_OK;
}

static strata_status take_u64(reader *r, const char *what, uint64_t *v, strata_error *err)
{
	uint8_t b[8];
	if (left(r) < 8)
		return short_read(r, what, 8, err);
	strata_status st = peek(r, b, sizeof(b), err);
	if (st)
		return st;
	*v = get_u64(b);
	r->pos += 8;
	return STRATA_OK;
}

/* A length-prefixed string of at most `max` bytes without NULs. */
static strata_status take_string(reader *r, const char *what, uint32_t max, bool allow_empty, const char **s,
                                 uint32_t *len, strata_error *err)
{
	strata_status st = take_u32(r, what, len, err);
	if (st)
		return st;
	if (*len > max || (*len == 0 && !allow_empty))
		return st_fail(err, STRATA_ERR_PARSE,
		               "%s: %s has length %u at offset %zu (%s%u bytes allowed)", r->path, what, *len,
		               r->pos - 4, allow_empty ? "0 to " : "1 to ", max);
	if (left(r) < *len)
		return short_read(r, what, *len, err);
	if (r->data) {
		*s = (const char *)r->data + r->pos;
	} else {
		/* max is at most NAME_MAX_BYTES, the scratch's size. */
		if ((st = peek(r, r->scratch, *len, err)))
			return st;
		*s = r->scratch;
	}
	if (memchr(*s, '\0', *len))
		return st_fail(err, STRATA_ERR_PARSE, "%s: %s at offset %zu contains a NUL byte", r->path,
		               what, r->pos);
	r->pos += *len;
	return STRATA_OK;
}

static strata_status parse_entry(reader *r, uint32_t index, entry *e, strata_error *err)
{
	char what[64 + NAME_MAX_BYTES];
	snprintf(what, sizeof(what), "the name of tensor %u", index);
	strata_status st = take_string(r, what, NAME_MAX_BYTES, false, &e->name, &e->name_len, err);
	if (st)
		return st;
	snprintf(what, sizeof(what), "tensor %.*s", (int)e->name_len, e->name);
	if ((st = take_u32(r, what, &e->kind, err)) || (st = take_u32(r, what, &e->rank, err)))
		return st;
	if (e->kind != ST_TENSOR_WEIGHT && e->kind != ST_TENSOR_OPTIMIZER)
		return st_fail(err, STRATA_ERR_PARSE, "%s: %s has unknown kind %u", r->path, what, e->kind);
	if (e->rank < 1 || e->rank > STRATA_MAX_RANK)
		return st_fail(err, STRATA_ERR_PARSE, "%s: %s has rank %u (1 to %d allowed)", r->path, what,
		               e->rank, STRATA_MAX_RANK);
	for (uint32_t d = 0; d < e->rank; d++)
		if ((st = take_u64(r, what, &e->dims[d], err)))
			return st;
	char shape[160];
	dims_text(e->rank, e->dims, shape, sizeof(shape));
	/* Every product stays within the floats left in the file, so it cannot overflow either. */
	uint64_t room = left(r) / sizeof(float), count = 1;
	for (uint32_t d = 0; d < e->rank; d++) {
		if (e->dims[d] < 1)
			return st_fail(err, STRATA_ERR_PARSE,
			               "%s: %s has shape %s: dimensions must be 1 or more", r->path, what,
			               shape);
		if (e->dims[d] > room / count)
			return st_fail(err, STRATA_ERR_PARSE,
			               "%s: truncated: %s has shape %s, "
			               "more floats than the %zu bytes left at offset %zu",
			               r->path, what, shape, left(r), r->pos);
		count *= e->dims[d];
	}
	e->count = count;
	e->data = r->data ? r->data + r->pos : NULL;
	r->pos += (size_t)count * sizeof(float);
	return STRATA_OK;
}

/* One entry of a file whose headers are walked for a model: the same messages as match() gives
 * for a tensor the model does not have or has in another shape, before the file is read. */
static strata_status check_scanned(const reader *r, const entry *e, strata_error *err)
{
	if (e->kind == ST_TENSOR_OPTIMIZER && !r->with_optimizer)
		return STRATA_OK;
	char a[160], b[160];
	dims_text(e->rank, e->dims, a, sizeof(a));
	for (size_t i = 0; i < r->n_tensors; i++) {
		const st_named_tensor *t = &r->tensors[i];
		if (strlen(t->name) != e->name_len || memcmp(t->name, e->name, e->name_len))
			continue;
		if (same_shape(&t->shape, e->rank, e->dims))
			return STRATA_OK;
		st_shape_text(&t->shape, b, sizeof(b));
		return st_fail(err, STRATA_ERR_INVALID, "%s: %s has shape %s in the file but %s in the model", r->path,
		               t->name, a, b);
	}
	return st_fail(err, STRATA_ERR_INVALID,
	               "%s: %.*s (shape %s in the file) is not in the model: the file belongs to another model",
	               r->path, (int)e->name_len, e->name, a);
}

/* The header's counters, against the ranges of the format (checkpoint.h): a resumed run takes
 * them as they are, so one that would wrap must be refused before it is used. */
static strata_status check_counters(const char *path, const parsed *p, strata_error *err)
{
	if (p->epoch > ST_CHECKPOINT_MAX_EPOCH)
		return st_fail(err, STRATA_ERR_PARSE,
		               "%s: the epoch is %llu, more than the %llu allowed (the trainer counts epochs in 32 "
		               "bits)",
		               path, (unsigned long long)p->epoch, (unsigned long long)ST_CHECKPOINT_MAX_EPOCH);
	if (p->step > ST_CHECKPOINT_MAX_STEP)
		return st_fail(err, STRATA_ERR_PARSE, "%s: the step is %llu, more than the %llu allowed (2^53)", path,
		               (unsigned long long)p->step, (unsigned long long)ST_CHECKPOINT_MAX_STEP);
	if (p->iterations > p->step)
		return st_fail(err, STRATA_ERR_PARSE,
		               "%s: the optimizer iterations are %llu, more than the %llu steps taken (a step "
		               "applies one update)",
		               path, (unsigned long long)p->iterations, (unsigned long long)p->step);
	return STRATA_OK;
}

/* Walks the whole file; on success p->end is where the checksum starts. */
static strata_status parse(reader *r, parsed *p, strata_error *err)
{
	strata_status st;
	uint32_t flags;
	r->pos = sizeof(magic);
	if ((st = take_u32(r, "the version", &p->version, err)) ||
	    (st = take_u32(r, "the flags", &flags, err)) || (st = take_u64(r, "the epoch", &p->epoch, err)) ||
	    (st = take_u64(r, "the step", &p->step, err)) || (st = take_u64(r, "the seed", &p->seed, err)))
		return st;
	if (flags != 0)
		return st_fail(err, STRATA_ERR_PARSE, "%s: unknown flags 0x%x (this Strata knows none)",
		               r->path, flags);
	/* Only the lengths matter when walking a file's headers: the names are not kept. */
	if ((st = take_string(r, "the model name", MODEL_MAX_BYTES, true, &p->model, &p->model_len, err)) ||
	    (st = take_string(r, "the optimizer name", OPTIMIZER_MAX_BYTES, true, &p->optimizer,
	                      &p->optimizer_len, err)) ||
	    (st = take_u64(r, "the optimizer iterations", &p->iterations, err)) ||
	    (st = check_counters(r->path, p, err)) || (st = take_u32(r, "the tensor count", &p->count, err)))
		return st;
	if (p->count > left(r) / MIN_ENTRY_BYTES)
		return st_fail(err, STRATA_ERR_PARSE,
		               "%s: truncated: %u tensors cannot fit in the %zu bytes left at offset %zu",
		               r->path, p->count, left(r), r->pos);
	entry scanned;
	if (r->data) {
		p->entries = calloc(p->count ? p->count : 1, sizeof(*p->entries));
		if (!p->entries)
			return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory for %u tensors", r->path,
			               p->count);
	}
	for (uint32_t i = 0; i < p->count; i++) {
		if ((st = parse_entry(r, i, p->entries ? &p->entries[i] : &scanned, err)))
			return st;
		if (!p->entries && r->tensors && (st = check_scanned(r, &scanned, err)))
			return st;
	}
	if (left(r) < 4)
		return short_read(r, "the checksum", 4, err);
	p->end = r->pos;
	return STRATA_OK;
}

static strata_status corrupt(const char *path, strata_error *err)
{
	return st_fail(err, STRATA_ERR_PARSE, "%s: checksum mismatch: the file is corrupt or truncated",
	               path);
}

static bool crc_ok(const uint8_t *data, size_t end)
{
	return crc_of(data, end) == get_u32(data + end);
}

/* The structure and the checksum together. A structural error in a file whose checksum does not
 * hold is most likely the damage itself (a cut or a flipped length), so it is reported as such;
 * the structural message is kept for files that are consistent but malformed. */
/* The magic and the version, from `head`: the file's first min(len, 12) bytes. */
static strata_status check_head(const char *path, const uint8_t *head, size_t len, strata_error *err)
{
	if (len < sizeof(magic) + 4) {
		if (memcmp(head, magic, len < sizeof(magic) ? len : sizeof(magic)))
			return st_fail(err, STRATA_ERR_PARSE, "%s: not a Strata weights file", path);
		return st_fail(err, STRATA_ERR_PARSE, "%s: truncated: %zu bytes, too short for a weights file", path,
		               len);
	}
	if (memcmp(head, magic, sizeof(magic)))
		return st_fail(err, STRATA_ERR_PARSE, "%s: not a Strata weights file", path);
	/* A newer format may lay out everything after the version differently, checksum included. */
	uint32_t version = get_u32(head + sizeof(magic));
	if (version > ST_CHECKPOINT_VERSION)
		return st_fail(err, STRATA_ERR_UNSUPPORTED,
		               "%s: was written by a newer Strata (format %u, this one reads %u)", path, version,
		               ST_CHECKPOINT_VERSION);
	if (version == 0)
		return st_fail(err, STRATA_ERR_PARSE, "%s: format version 0 does not exist", path);
	return STRATA_OK;
}

static strata_status validate(reader *r, parsed *p, strata_error *err)
{
	strata_status st = check_head(r->path, r->data, r->len, err);
	if (st)
		return st;
	bool whole_ok = crc_ok(r->data, r->len - 4);
	st = parse(r, p, err);
	if (st == STRATA_ERR_NO_MEMORY)
		return st;
	if (st)
		return whole_ok ? st : corrupt(r->path, err);
	if (p->end + 4 != r->len) {
		if (!whole_ok && !crc_ok(r->data, p->end))
			return corrupt(r->path, err);
		return st_fail(err, STRATA_ERR_PARSE,
		               "%s: %zu trailing bytes: the contents end at %zu, the file has %zu", r->path,
		               r->len - p->end - 4, p->end + 4, r->len);
	}
	return whole_ok ? STRATA_OK : corrupt(r->path, err);
}

/* ---- Load: reading ------------------------------------------------------------------------- */

/* Walks the headers of the file open as `fd`, the tensors' data skipped rather than read, and
 * gives the size they describe, checksum included. */
static strata_status scan(const char *path, int fd, uint64_t size, const st_named_tensor *tensors, size_t n,
                          bool with_optimizer, uint64_t *described, strata_error *err)
{
	*described = 0;
	if (size >= SIZE_MAX)
		return st_fail(err, STRATA_ERR_INVALID, "%s: a weights file of %llu bytes does not fit in memory", path,
		               (unsigned long long)size);
	reader r = {.fd = fd, .len = (size_t)size, .path = path, .tensors = tensors, .n_tensors = n,
	            .with_optimizer = with_optimizer};
	uint8_t head[sizeof(magic) + 4];
	parsed p = {0};
	strata_status st;
	if ((st = peek(&r, head, r.len < sizeof(head) ? r.len : sizeof(head), err)) ||
	    (st = check_head(path, head, r.len, err)) || (st = parse(&r, &p, err)))
		return st;
	*described = (uint64_t)p.end + 4;
	return STRATA_OK;
}

static uint64_t saturating_add(uint64_t a, uint64_t b)
{
	return __builtin_add_overflow(a, b, &a) ? UINT64_MAX : a;
}

static uint64_t saturating_mul(uint64_t a, uint64_t b)
{
	return __builtin_mul_overflow(a, b, &a) ? UINT64_MAX : a;
}

/* The largest weights file that can hold `tensors`, names at their longest, with, when their
 * optimizer state is not wanted, up to ST_OPT_MAX_SLOTS slots of each weight besides (a
 * training checkpoint loaded for inference: the load skips them). */
static uint64_t largest_file(const st_named_tensor *tensors, size_t n, bool with_optimizer)
{
	uint64_t total = HEADER_MAX_BYTES;
	for (size_t i = 0; i < n; i++) {
		uint64_t one = saturating_add(ENTRY_HEAD_MAX_BYTES, saturating_mul(tensors[i].count, sizeof(float)));
		uint64_t copies = 1;
		if (!with_optimizer && tensors[i].kind == ST_TENSOR_WEIGHT)
			copies += ST_OPT_MAX_SLOTS;
		total = saturating_add(total, saturating_mul(one, copies));
	}
	return total;
}

/* Reads the weights file `path` whole. A file of at most `bound` bytes (what the model it is
 * loaded into can take; 0 when there is no such model) is read whatever its headers say, so that
 * validate() can tell damage, a checksum that does not hold, from a malformed file. A larger one
 * is read only when its headers, walked first without reading the tensors' data, describe
 * exactly its size and, with a model, no more than `bound`: a checkpoint grown into a sparse file
 * of 64 GiB is refused by its size, before anything of it is read into memory. */
static strata_status read_weights(const char *path, uint64_t bound, const st_named_tensor *tensors, size_t n,
                                  bool with_optimizer, char **data, size_t *len, strata_error *err)
{
	*data = NULL;
	*len = 0;
	int fd;
	uint64_t size, described;
	strata_status st = st_open_regular(path, &fd, &size, err);
	if (st)
		return st;
	if (size <= bound) {
		close(fd);
		return st_read_file(path, "weights file", bound, data, len, err);
	}
	st = scan(path, fd, size, bound ? tensors : NULL, n, with_optimizer, &described, err);
	close(fd);
	if (st)
		return st;
	/* A file shorter than its headers describe failed the walk as truncated. */
	if (described != size)
		return st_fail(err, STRATA_ERR_PARSE,
		               "%s: %llu trailing bytes: its headers describe %llu bytes, the file has %llu", path,
		               (unsigned long long)(size - described), (unsigned long long)described,
		               (unsigned long long)size);
	if (bound)
		return st_fail(err, STRATA_ERR_INVALID,
		               "%s: %llu bytes, more than the %llu bytes that a weights file of this model can "
		               "take up: the file belongs to another model",
		               path, (unsigned long long)size, (unsigned long long)bound);
	return st_read_file(path, "weights file", described, data, len, err);
}

/* ---- Load: matching ------------------------------------------------------------------------ */

static entry *find(const parsed *p, const char *name)
{
	size_t len = strlen(name);
	for (uint32_t i = 0; i < p->count; i++)
		if (p->entries[i].name_len == len && !memcmp(p->entries[i].name, name, len))
			return &p->entries[i];
	return NULL;
}

static bool wanted(const st_named_tensor *t, bool with_optimizer)
{
	return t->kind == ST_TENSOR_WEIGHT || with_optimizer;
}

/* Names are unique in a consistent file; a duplicate would make any match ambiguous. */
static strata_status check_unique(const char *path, const parsed *p, strata_error *err)
{
	for (uint32_t i = 0; i < p->count; i++) {
		const entry *e = &p->entries[i];
		for (uint32_t j = 0; j < i; j++)
			if (e->name_len == p->entries[j].name_len &&
			    !memcmp(e->name, p->entries[j].name, e->name_len))
				return st_fail(err, STRATA_ERR_PARSE, "%s: tensor %.*s appears twice", path,
				               (int)e->name_len, e->name);
	}
	return STRATA_OK;
}

static strata_status match(const char *path, parsed *p, const st_named_tensor *tensors, size_t n,
                           bool with_optimizer, const char *optimizer, strata_error *err)
{
	char a[160], b[160];
	strata_status st;
	for (size_t i = 0; i < n; i++) {
		if ((st = check_request(path, &tensors[i], err)))
			return st;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(tensors[j].name, tensors[i].name))
				return st_fail(err, STRATA_ERR_INVALID, "%s: tensor %s is requested twice",
				               path, tensors[i].name);
	}
	if ((st = check_unique(path, p, err)))
		return st;

	if (with_optimizer) {
		if (p->optimizer_len == 0)
			return st_fail(
			        err, STRATA_ERR_INVALID,
			        "%s: holds no optimizer state, so training cannot resume with %s from it",
			        path, optimizer);
		if (strlen(optimizer) != p->optimizer_len ||
		    memcmp(optimizer, p->optimizer, p->optimizer_len))
			return st_fail(err, STRATA_ERR_INVALID,
			               "%s: holds optimizer state of %.*s, but the model trains with %s",
			               path, (int)p->optimizer_len, p->optimizer, optimizer);
	}

	for (size_t i = 0; i < n; i++) {
		const st_named_tensor *t = &tensors[i];
		if (!wanted(t, with_optimizer))
			continue;
		st_shape_text(&t->shape, b, sizeof(b));
		entry *e = find(p, t->name);
		if (!e)
			return st_fail(err, STRATA_ERR_INVALID,
			               "%s: %s %s is missing from the file (shape %s in the model)", path,
			               t->kind == ST_TENSOR_WEIGHT ? "weight" : "optimizer state", t->name,
			               b);
		dims_text(e->rank, e->dims, a, sizeof(a));
		if (e->kind != t->kind)
			return st_fail(err, STRATA_ERR_INVALID,
			               "%s: %s is %s in the file but %s in the model", path, t->name,
			               e->kind == ST_TENSOR_WEIGHT ? "a weight" : "optimizer state",
			               t->kind == ST_TENSOR_WEIGHT ? "a weight" : "optimizer state");
		if (!same_shape(&t->shape, e->rank, e->dims))
			return st_fail(err, STRATA_ERR_INVALID,
			               "%s: %s has shape %s in the file but %s in the model", path, t->name,
			               a, b);
		e->matched = true;
	}
	for (uint32_t i = 0; i < p->count; i++) {
		entry *e = &p->entries[i];
		if (e->matched || (e->kind == ST_TENSOR_OPTIMIZER && !with_optimizer))
			continue;
		dims_text(e->rank, e->dims, a, sizeof(a));
		return st_fail(err, STRATA_ERR_INVALID,
		               "%s: %.*s (shape %s in the file) is not in the model: "
		               "the file belongs to another model",
		               path, (int)e->name_len, e->name, a);
	}
	return STRATA_OK;
}

static void copy_name(char *dst, size_t size, const char *src, uint32_t len)
{
	size_t n = len < size - 1 ? len : size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

strata_status st_checkpoint_load(strata_runtime *rt, const char *path, st_checkpoint_info *info,
                                 const st_named_tensor *tensors, size_t n, bool with_optimizer,
                                 strata_error *err)
{
	if (with_optimizer && !info)
		return st_fail(err, STRATA_ERR_INVALID, "%s: resuming an optimizer needs its name in info",
		               path);
	char optimizer[sizeof(info->optimizer)] = "";
	if (info)
		copy_name(optimizer, sizeof(optimizer), info->optimizer,
		          (uint32_t)strnlen(info->optimizer, sizeof(info->optimizer)));
	char *data;
	size_t len;
	strata_status st = read_weights(path, largest_file(tensors, n, with_optimizer), tensors, n, with_optimizer, &data,
	                                &len, err);
	if (st)
		return st;
	reader r = {.data = (uint8_t *)data, .len = len, .path = path};
	parsed p = {0};
	if ((st = validate(&r, &p, err)) ||
	    (st = match(path, &p, tensors, n, with_optimizer, optimizer, err)))
		goto out_free;

	for (size_t i = 0; i < n; i++) {
		const st_named_tensor *t = &tensors[i];
		if (!wanted(t, with_optimizer))
			continue;
		entry *e = find(&p, t->name);
		swap_floats_if_big_endian(e->data, e->count);
		if ((st = st_tensor_write(rt, t->tensor, 0, e->data, (size_t)e->count * sizeof(float), err)))
			goto out_free;
	}
	if (info) {
		info->epoch = p.epoch;
		info->step = p.step;
		info->seed = p.seed;
		info->iterations = p.iterations;
		copy_name(info->model, sizeof(info->model), p.model, p.model_len);
		copy_name(info->optimizer, sizeof(info->optimizer), p.optimizer, p.optimizer_len);
	}
out_free:
	free(p.entries);
	free(data);
	return st;
}

/* ---- Partial reads ------------------------------------------------------------------------- */

struct st_checkpoint_file {
	char *data;
	size_t len;
	parsed p;
};

strata_status st_checkpoint_open(const char *path, st_checkpoint_file **out, strata_error *err)
{
	*out = NULL;
	st_checkpoint_file *f = calloc(1, sizeof(*f));
	if (!f)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", path);
	/* No model bounds the file (init_from takes some layers of another model's): its headers do. */
	strata_status st = read_weights(path, 0, NULL, 0, false, &f->data, &f->len, err);
	if (st)
		goto out_close;
	reader r = {.data = (uint8_t *)f->data, .len = f->len, .path = path};
	if ((st = validate(&r, &f->p, err)) || (st = check_unique(path, &f->p, err)))
		goto out_close;
	*out = f;
	return STRATA_OK;
out_close:
	st_checkpoint_close(f);
	return st;
}

void st_checkpoint_close(st_checkpoint_file *f)
{
	if (!f)
		return;
	free(f->p.entries);
	free(f->data);
	free(f);
}

uint32_t st_checkpoint_count(const st_checkpoint_file *f)
{
	return f->p.count;
}

/* The parser bounded every dimension by the bytes of the file, so each fits an int64_t. */
static void describe_entry(const entry *e, st_checkpoint_entry *out)
{
	memset(out, 0, sizeof(*out));
	copy_name(out->name, sizeof(out->name), e->name, e->name_len);
	out->kind = e->kind;
	out->shape.rank = e->rank;
	for (uint32_t d = 0; d < e->rank; d++)
		out->shape.dims[d] = (int64_t)e->dims[d];
	out->count = e->count;
	out->data = e->data;
}

void st_checkpoint_entry_at(const st_checkpoint_file *f, uint32_t i, st_checkpoint_entry *out)
{
	describe_entry(&f->p.entries[i], out);
}

bool st_checkpoint_find(const st_checkpoint_file *f, const char *name, st_checkpoint_entry *out)
{
	entry *e = find(&f->p, name);
	if (e)
		describe_entry(e, out);
	return e != NULL;
}

void st_checkpoint_copy(const st_checkpoint_entry *e, float *dst)
{
	memcpy(dst, e->data, (size_t)e->count * sizeof(float));
	swap_floats_if_big_endian((uint8_t *)dst, e->count);
}
