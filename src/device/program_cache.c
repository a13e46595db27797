/* Compiled OpenCL programs: in memory per (program, options) for this runtime, and on disk as
 * device binaries keyed by platform, device, driver, build options and source, so a second run
 * compiles nothing. A disk entry is trusted only after its header, key and checksum match; any
 * mismatch means "not cached" and the program is rebuilt and the entry rewritten. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "base/fsutil.h"
#include "device/runtime.h"

#define CACHE_MAGIC "STRATAPB"
#define CACHE_FORMAT 1u
/* A compiled program is a few MiB at most; a larger entry is not ours. */
#define CACHE_ENTRY_MAX ((uint64_t)256 << 20)

struct st_built_program {
	const st_program_src *src;
	char *options; /* complete build options */
	cl_program program;
	strata_kernel **kernels;
	size_t n_kernels;
};

/* Creates `dir` and a file in it, as the cache will: an unusable folder is refused when the
 * runtime is made, with a message that says what to do, not found at the first program built. */
static strata_status check_folder(const char *dir, strata_error *err)
{
	strata_error why = {0};
	char probe[PATH_MAX];
	int fd = -1;
	if (st_mkdirs(dir, &why) == STRATA_OK) {
		if (snprintf(probe, sizeof(probe), "%s/.write-test-XXXXXX", dir) >= (int)sizeof(probe))
			snprintf(why.message, sizeof(why.message), "path too long");
		else if ((fd = mkstemp(probe)) < 0)
			snprintf(why.message, sizeof(why.message), "cannot write in it: %s", strerror(errno));
	}
	if (fd >= 0) {
		close(fd);
		unlink(probe);
		return STRATA_OK;
	}
	return st_fail(err, STRATA_ERR_IO,
	               "cannot use the kernel cache folder %s (%s); make it writable, set XDG_CACHE_HOME "
	               "(or the runtime's cache_dir) to a folder that is, or turn the disk cache off (no_disk_cache)",
	               dir, why.message);
}

strata_status st_program_cache_init(st_program_cache *cache, const char *dir, bool keep_binaries, strata_error *err)
{
	memset(cache, 0, sizeof(*cache));
	if (!dir)
		return STRATA_OK;
	strata_status st = check_folder(dir, err);
	if (st || !keep_binaries)
		return st;
	if (!(cache->dir = strdup(dir)))
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	return STRATA_OK;
}

void st_program_cache_release(st_program_cache *cache)
{
	for (size_t i = 0; i < cache->n; i++) {
		st_built_program *bp = cache->entries[i];
		for (size_t k = 0; k < bp->n_kernels; k++) {
			clReleaseKernel(bp->kernels[k]->kernel);
			free(bp->kernels[k]->name);
			free(bp->kernels[k]);
		}
		free(bp->kernels);
		if (bp->program)
			clReleaseProgram(bp->program);
		free(bp->options);
		free(bp);
	}
	free(cache->entries);
	free(cache->dir);
	memset(cache, 0, sizeof(*cache));
}

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001B3ull;
	}
	return h;
}

/* Everything that makes a binary valid for this device; stored in the entry and compared whole,
 * so a hash collision can never hand back the wrong binary. */
static char *cache_key(const strata_runtime *rt, const st_built_program *bp)
{
	uint64_t src_hash = fnv1a(0xCBF29CE484222325ull, bp->src->source, strlen(bp->src->source));
	const strata_device_info *d = &rt->info;
	size_t n = strlen(d->platform) + strlen(d->platform_version) + strlen(d->name) + strlen(d->driver_version) +
	           strlen(bp->options) + strlen(bp->src->name) + 64;
	char *key = malloc(n);
	if (key)
		snprintf(key, n, "%s|%s|%s|%s|%s|%s|%016llx", d->platform, d->platform_version, d->name,
		         d->driver_version, bp->src->name, bp->options, (unsigned long long)src_hash);
	return key;
}

static char *entry_path(const st_program_cache *cache, const char *key, const char *name)
{
	uint64_t h = fnv1a(0xCBF29CE484222325ull, key, strlen(key));
	size_t n = strlen(cache->dir) + strlen(name) + 48;
	char *path = malloc(n);
	if (path)
		snprintf(path, n, "%s/%s-%016llx.bin", cache->dir, name, (unsigned long long)h);
	return path;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t get_u32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* Entry layout: magic[8] format:u32 key_len:u32 key bin_len:u32 crc32(bin):u32 bin. */
static bool parse_entry(const char *data, size_t len, const char *key, const unsigned char **bin, size_t *bin_len)
{
	const unsigned char *p = (const unsigned char *)data;
	size_t key_len = strlen(key);
	if (len < 16 || memcmp(p, CACHE_MAGIC, 8) != 0 || get_u32(p + 8) != CACHE_FORMAT ||
	    get_u32(p + 12) != key_len || len < 16 + key_len + 8 || memcmp(p + 16, key, key_len) != 0)
		return false;
	p += 16 + key_len;
	uint32_t n = get_u32(p), crc = get_u32(p + 4);
	if (len - 16 - key_len - 8 != n || n == 0)
		return false;
	if (crc32(0L, p + 8, n) != crc)
		return false;
	*bin = p + 8;
	*bin_len = n;
	return true;
}

/* Where a line of a build log names the driver's file: a run of characters other than blanks and
 * ':' that starts the line or follows a blank, followed by ":DIGITS:". Sets *len to the run's. */
static const char *located_file(const char *line, size_t line_len, size_t *len)
{
	for (size_t at = 0; at < line_len; at++) {
		if (at > 0 && line[at - 1] != ' ' && line[at - 1] != '\t')
			continue;
		size_t n = strcspn(line + at, " \t:\n");
		const char *q = line + at + n;
		if (n == 0 || at + n >= line_len || *q != ':' || q[1] < '0' || q[1] > '9')
			continue;
		const char *d = q + 1;
		while (*d >= '0' && *d <= '9')
			d++;
		if (*d == ':') {
			*len = n;
			return line + at;
		}
	}
	return NULL;
}

/* The build log with the driver's file name (its temporary copy, "<source>", "input.cl") in each
 * line's "FILE:LINE:COLUMN:" replaced by the program's registered name, so a plugin author reads
 * "error: scale:12:5: ..." whatever the driver called its copy. NULL without memory. */
static char *rewrite_log(const char *log, const char *name)
{
	size_t lines = 1, name_len = strlen(name);
	for (const char *p = log; *p; p++)
		lines += *p == '\n';
	char *out = malloc(strlen(log) + lines * name_len + 1);
	if (!out)
		return NULL;
	char *o = out;
	for (const char *line = log; *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) + 1 : strlen(line), file_len = 0;
		const char *file = located_file(line, len, &file_len);
		if (file) {
			memcpy(o, line, (size_t)(file - line));
			o += file - line;
			memcpy(o, name, name_len);
			o += name_len;
			size_t rest = len - (size_t)(file - line) - file_len;
			memcpy(o, file + file_len, rest);
			o += rest;
		} else {
			memcpy(o, line, len);
			o += len;
		}
		line += len;
	}
	*o = '\0';
	return out;
}

const char *st_kernel_program_name(const strata_kernel *k)
{
	return k->program ? k->program->src->name : "?";
}

const char *st_kernel_program_owner(const strata_kernel *k)
{
	return k->program ? k->program->src->owner : "?";
}

static strata_status build(strata_runtime *rt, st_built_program *bp, strata_error *err)
{
	cl_int rc = clBuildProgram(bp->program, 1, &rt->device, bp->options, NULL, NULL);
	if (rc == CL_SUCCESS)
		return STRATA_OK;
	size_t log_len = 0;
	clGetProgramBuildInfo(bp->program, rt->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_len);
	char *log = malloc(log_len + 1);
	if (log) {
		log[0] = '\0';
		clGetProgramBuildInfo(bp->program, rt->device, CL_PROGRAM_BUILD_LOG, log_len, log, NULL);
		log[log_len] = '\0';
		char *named = rewrite_log(log, bp->src->name);
		if (named) {
			free(log);
			log = named;
		}
	}
	strata_status st = st_fail(err, STRATA_ERR_BUILD,
	                           "building OpenCL program '%s' (from %s) for %s failed: %s (%d), options \"%s\"\n%s",
	                           bp->src->name, bp->src->owner, rt->info.name, st_cl_error_name(rc), (int)rc,
	                           bp->options, log ? log : "(no build log)");
	free(log);
	return st;
}

static bool load_from_disk(strata_runtime *rt, st_built_program *bp, const char *key, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	if (st_read_file(path, "cached program", CACHE_ENTRY_MAX, &data, &len, NULL) != STRATA_OK)
		return false;
	const unsigned char *bin;
	size_t bin_len;
	bool ok = false;
	if (!parse_entry(data, len, key, &bin, &bin_len)) {
		st_runtime_log(rt, STRATA_LOG_WARN, "ignoring corrupt kernel cache entry %s; rebuilding", path);
		goto out_free;
	}
	cl_int rc, bin_status = CL_SUCCESS;
	cl_program prog = clCreateProgramWithBinary(rt->context, 1, &rt->device, &bin_len, &bin, &bin_status, &rc);
	if (rc != CL_SUCCESS || bin_status != CL_SUCCESS) {
		st_runtime_log(rt, STRATA_LOG_WARN, "kernel cache entry %s refused by the driver (%s); rebuilding", path,
		               st_cl_error_name(rc != CL_SUCCESS ? rc : bin_status));
		if (prog)
			clReleaseProgram(prog);
		goto out_free;
	}
	bp->program = prog;
	if (build(rt, bp, NULL) != STRATA_OK) {
		st_runtime_log(rt, STRATA_LOG_WARN, "kernel cache entry %s did not link; rebuilding", path);
		clReleaseProgram(prog);
		bp->program = NULL;
		goto out_free;
	}
	ok = true;
out_free:
	free(data);
	return ok;
}

static void save_to_disk(strata_runtime *rt, st_built_program *bp, const char *key, const char *path)
{
	size_t bin_len = 0;
	if (clGetProgramInfo(bp->program, CL_PROGRAM_BINARY_SIZES, sizeof(bin_len), &bin_len, NULL) != CL_SUCCESS ||
	    bin_len == 0 || bin_len > UINT32_MAX)
		return;
	size_t key_len = strlen(key);
	size_t total = 16 + key_len + 8 + bin_len;
	unsigned char *buf = malloc(total);
	if (!buf)
		return;
	unsigned char *bin = buf + 16 + key_len + 8;
	if (clGetProgramInfo(bp->program, CL_PROGRAM_BINARIES, sizeof(bin), &bin, NULL) != CL_SUCCESS)
		goto out_free;
	memcpy(buf, CACHE_MAGIC, 8);
	put_u32(buf + 8, CACHE_FORMAT);
	put_u32(buf + 12, (uint32_t)key_len);
	memcpy(buf + 16, key, key_len);
	put_u32(buf + 16 + key_len, (uint32_t)bin_len);
	put_u32(buf + 16 + key_len + 4, (uint32_t)crc32(0L, bin, (uInt)bin_len));
	strata_error err = {0};
	if (st_mkdirs(rt->cache.dir, &err) != STRATA_OK || st_write_file_atomic(path, buf, total, &err) != STRATA_OK) {
		/* The folder took a file when the runtime was made (check_folder), so this is the disk
		 * failing mid-run (full, removed): one warning, and the run goes on without the cache
		 * rather than stopping work that a cache only speeds up, or failing every program. */
		rt->cache.stats.disk_errors++;
		st_runtime_log(rt, STRATA_LOG_WARN,
		               "cannot use the kernel cache folder %s: %s; continuing without it (OpenCL programs "
		               "are compiled again on every run)",
		               rt->cache.dir, err.message);
		free(rt->cache.dir);
		rt->cache.dir = NULL;
	}
out_free:
	free(buf);
}

static strata_status build_from_source(strata_runtime *rt, st_built_program *bp, strata_error *err)
{
	cl_int rc;
	const char *src = bp->src->source;
	bp->program = clCreateProgramWithSource(rt->context, 1, &src, NULL, &rc);
	if (rc != CL_SUCCESS)
		return st_cl_fail(err, rc, "clCreateProgramWithSource for '%s'", bp->src->name);
	st_runtime_log(rt, STRATA_LOG_INFO, "building OpenCL program '%s' (%s)", bp->src->name, bp->options);
	return build(rt, bp, err);
}

static strata_status get_program(strata_runtime *rt, const st_program_src *src, const char *options,
                                 st_built_program **out, strata_error *err)
{
	st_program_cache *cache = &rt->cache;
	for (size_t i = 0; i < cache->n; i++) {
		if (cache->entries[i]->src == src && strcmp(cache->entries[i]->options, options) == 0) {
			cache->stats.memory_hits++;
			*out = cache->entries[i];
			return STRATA_OK;
		}
	}
	if (cache->n == cache->cap) {
		size_t ncap = cache->cap ? cache->cap * 2 : 16;
		st_built_program **grown = realloc(cache->entries, ncap * sizeof(*grown));
		if (!grown)
			return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		cache->entries = grown;
		cache->cap = ncap;
	}
	st_built_program *bp = calloc(1, sizeof(*bp));
	if (!bp || !(bp->options = strdup(options))) {
		free(bp);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	}
	bp->src = src;

	strata_status st = STRATA_OK;
	char *key = NULL, *path = NULL;
	if (cache->dir) {
		key = cache_key(rt, bp);
		path = key ? entry_path(cache, key, src->name) : NULL;
	}
	if (path && load_from_disk(rt, bp, key, path)) {
		cache->stats.disk_hits++;
		st_runtime_log(rt, STRATA_LOG_DEBUG, "program '%s' loaded from %s", src->name, path);
	} else {
		if (path && access(path, F_OK) == 0)
			cache->stats.disk_errors++;
		st = build_from_source(rt, bp, err);
		if (st)
			goto out_free;
		cache->stats.builds++;
		if (path)
			save_to_disk(rt, bp, key, path);
	}
	cache->entries[cache->n++] = bp;
	*out = bp;
	bp = NULL;
out_free:
	if (bp) {
		if (bp->program)
			clReleaseProgram(bp->program);
		free(bp->options);
		free(bp);
	}
	free(key);
	free(path);
	return st;
}

/* Program `program` built with its default options plus `extra_options`. */
static strata_status program_get(strata_runtime *rt, const char *program, const char *extra_options,
                                 st_built_program **out, strata_error *err)
{
	const st_program_src *src = st_registry_find_program(rt->reg, program);
	if (!src)
		return st_fail(err, STRATA_ERR_NOT_FOUND, "no OpenCL program named '%s' is registered", program);
	size_t n = strlen(rt->cl_std) + strlen(src->options) + (extra_options ? strlen(extra_options) : 0) + 4;
	char *options = malloc(n);
	if (!options)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	snprintf(options, n, "%s %s %s", rt->cl_std, src->options, extra_options ? extra_options : "");
	strata_status st = get_program(rt, src, options, out, err);
	free(options);
	return st;
}

strata_status st_program_build(strata_runtime *rt, const char *program, const char *extra_options,
                               strata_error *err)
{
	st_built_program *bp = NULL;
	return program_get(rt, program, extra_options, &bp, err);
}

strata_status st_kernel_get(strata_runtime *rt, const char *program, const char *kernel_name,
                            const char *extra_options, strata_kernel **out, strata_error *err)
{
	st_built_program *bp = NULL;
	strata_status st = program_get(rt, program, extra_options, &bp, err);
	if (st)
		return st;
	for (size_t i = 0; i < bp->n_kernels; i++) {
		if (strcmp(bp->kernels[i]->name, kernel_name) == 0) {
			*out = bp->kernels[i];
			return STRATA_OK;
		}
	}
	strata_kernel **grown = realloc(bp->kernels, (bp->n_kernels + 1) * sizeof(*grown));
	if (!grown)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	bp->kernels = grown;
	strata_kernel *k = calloc(1, sizeof(*k));
	if (!k || !(k->name = strdup(kernel_name))) {
		free(k);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	}
	cl_int rc;
	k->kernel = clCreateKernel(bp->program, kernel_name, &rc);
	if (rc != CL_SUCCESS) {
		free(k->name);
		free(k);
		return st_cl_fail(err, rc, "clCreateKernel '%s' in program '%s'", kernel_name, program);
	}
	rc = clGetKernelWorkGroupInfo(k->kernel, rt->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof(k->max_work_group_size),
	                              &k->max_work_group_size, NULL);
	if (rc != CL_SUCCESS) {
		clReleaseKernel(k->kernel);
		free(k->name);
		free(k);
		return st_cl_fail(err, rc, "clGetKernelWorkGroupInfo for '%s'", kernel_name);
	}
	k->program = bp;
	bp->kernels[bp->n_kernels++] = k;
	*out = k;
	return STRATA_OK;
}
