/* Tuned CLBlast SGEMM parameters: what a set is, which values are legal, the per-device file in
 * the cache folder, and applying a set. The legal values and constraints follow CLBlast 1.5's
 * kernels (src/kernels/level3) and tuners (src/tuning/kernels); where its indirect routine
 * needs more than its tuner checks, the constraint says why. */
#include <clblast_c.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fsutil.h"
#include "tune/tuning.h"

#define TUNE_FORMAT 1
/* A tuning file is a few dozen lines; a larger one is not ours. */
#define TUNING_FILE_MAX ((uint64_t)1 << 20)
#define MAX_CHOICES 8

typedef struct param_desc {
	const char *name;
	size_t n_choices;
	size_t choices[MAX_CHOICES];
} param_desc;

typedef struct kernel_desc {
	const char *name;
	size_t n_params;
	param_desc params[ST_TUNE_MAX_PARAMS];
	size_t reference[ST_TUNE_MAX_PARAMS];
} kernel_desc;

/* Parameter order is ours (files, arrays); CLBlast matches them by name. The reference values
 * are what CLBlast 1.5.3 itself uses for SGEMM on PoCL's CPU device. */
static const kernel_desc kernels[ST_TK_COUNT] = {
	[ST_TK_XGEMM] = {"Xgemm", 16, {
		{"GEMMK", 2, {0, 1}},
		{"MWG", 5, {8, 16, 32, 64, 128}},
		{"NWG", 5, {8, 16, 32, 64, 128}},
		{"KWG", 3, {1, 16, 32}},
		{"MDIMC", 5, {2, 4, 8, 16, 32}},
		{"NDIMC", 5, {2, 4, 8, 16, 32}},
		{"MDIMA", 5, {2, 4, 8, 16, 32}},
		{"NDIMB", 5, {2, 4, 8, 16, 32}},
		{"KWI", 2, {1, 2}},
		{"VWM", 4, {1, 2, 4, 8}},
		{"VWN", 4, {1, 2, 4, 8}},
		{"STRM", 2, {0, 1}},
		{"STRN", 2, {0, 1}},
		{"SA", 2, {0, 1}},
		{"SB", 2, {0, 1}},
		{"KREG", 5, {1, 2, 4, 8, 16}},
	}, {0, 64, 64, 32, 16, 8, 16, 8, 2, 4, 4, 0, 0, 0, 0, 1}},
	[ST_TK_DIRECT] = {"XgemmDirect", 10, {
		{"WGD", 4, {8, 16, 32, 64}},
		{"MDIMCD", 4, {4, 8, 16, 32}},
		{"NDIMCD", 4, {4, 8, 16, 32}},
		{"MDIMAD", 4, {4, 8, 16, 32}},
		{"NDIMBD", 4, {4, 8, 16, 32}},
		{"KWID", 4, {1, 2, 8, 16}},
		{"VWMD", 4, {1, 2, 4, 8}},
		{"VWND", 4, {1, 2, 4, 8}},
		{"PADA", 2, {0, 1}},
		{"PADB", 2, {0, 1}},
	}, {32, 8, 8, 8, 8, 2, 4, 4, 1, 1}},
	[ST_TK_COPY] = {"Copy", 4, {
		{"COPY_DIMX", 3, {8, 16, 32}},
		{"COPY_DIMY", 3, {8, 16, 32}},
		{"COPY_WPT", 4, {1, 2, 4, 8}},
		{"COPY_VW", 4, {1, 2, 4, 8}},
	}, {32, 16, 2, 8}},
	[ST_TK_PAD] = {"Pad", 4, {
		{"PAD_DIMX", 3, {8, 16, 32}},
		{"PAD_DIMY", 3, {8, 16, 32}},
		{"PAD_WPTX", 3, {1, 2, 4}},
		{"PAD_WPTY", 3, {1, 2, 4}},
	}, {32, 8, 4, 2}},
	[ST_TK_TRANSPOSE] = {"Transpose", 4, {
		{"TRA_DIM", 5, {4, 8, 16, 32, 64}},
		{"TRA_WPT", 5, {1, 2, 4, 8, 16}},
		{"TRA_PAD", 2, {0, 1}},
		{"TRA_SHUFFLE", 2, {0, 1}},
	}, {4, 8, 0, 0}},
	[ST_TK_PADTRANSPOSE] = {"Padtranspose", 3, {
		{"PADTRA_TILE", 4, {8, 16, 32, 64}},
		{"PADTRA_WPT", 5, {1, 2, 4, 8, 16}},
		{"PADTRA_PAD", 2, {0, 1}},
	}, {8, 4, 0}},
	/* Not a list: any switch point up to "always direct" (whose cube still fits 64 bits). */
	[ST_TK_ROUTINE] = {"GemmRoutine", 1, {{"XGEMM_MIN_INDIRECT_SIZE", 0, {0}}}, {576}},
};

const char *st_tune_kernel_name(int kernel)
{
	return kernel >= 0 && kernel < ST_TK_COUNT ? kernels[kernel].name : "?";
}

size_t st_tune_param_count(int kernel)
{
	return kernel >= 0 && kernel < ST_TK_COUNT ? kernels[kernel].n_params : 0;
}

const char *st_tune_param_name(int kernel, size_t i)
{
	return i < st_tune_param_count(kernel) ? kernels[kernel].params[i].name : "?";
}

size_t st_tune_choice_count(int kernel, size_t i)
{
	return i < st_tune_param_count(kernel) ? kernels[kernel].params[i].n_choices : 0;
}

size_t st_tune_choice(int kernel, size_t i, size_t j)
{
	return j < st_tune_choice_count(kernel, i) ? kernels[kernel].params[i].choices[j] : 0;
}

void st_tune_reference(int kernel, size_t *values)
{
	memcpy(values, kernels[kernel].reference, sizeof(kernels[kernel].reference));
}

static bool divides(size_t d, size_t x)
{
	return d != 0 && x % d == 0;
}

static bool xgemm_valid(const size_t *v, const strata_device_info *dev)
{
	size_t gemmk = v[0], mwg = v[1], nwg = v[2], kwg = v[3], mdimc = v[4], ndimc = v[5], mdima = v[6],
	       ndimb = v[7], kwi = v[8], vwm = v[9], vwn = v[10], strm = v[11], strn = v[12], sa = v[13], sb = v[14],
	       kreg = v[15];
	if (!divides(kwi, kwg) || !divides(mdimc * vwm, mwg) || !divides(ndimc * vwn, nwg) ||
	    !divides(mdima * vwm, mwg) || !divides(ndimb * vwn, nwg))
		return false;
	if (mdimc * ndimc > dev->max_work_group_size)
		return false;
	/* A bound on each work-item's tile, so no candidate takes minutes to compile or spills. */
	size_t mwi = mwg / mdimc, nwi = nwg / ndimc;
	if (mwi * nwi > 256)
		return false;
	if (gemmk == 0) {
		if (kreg != 1 || kwg < 16)
			return false;
		/* KWG must be a multiple of KDIMA = MDIMC*NDIMC/MDIMA and of KDIMB likewise. */
		if (!divides(mdima, mdimc * ndimc) || !divides(ndimb, mdimc * ndimc) ||
		    !divides(mdimc * ndimc / mdima, kwg) || !divides(mdimc * ndimc / ndimb, kwg))
			return false;
		return (sa * kwg * mwg + sb * kwg * nwg) * sizeof(float) <= dev->local_mem_bytes;
	}
	/* The 2D register-tiling kernel: no local memory, A and B tiles loaded by the threads that
	 * use them, KREG a multiple of VWN. CLBlast 1.5.3's indirect routine sizes the rotated C
	 * grid with MWG along n, so MWG must equal NWG: other tiles overran its buffers on PoCL. */
	if (kwg != 1 || kwi != 1 || sa || sb || strm || strn || mdima != mdimc || ndimb != ndimc || mwg != nwg)
		return false;
	if (!divides(vwn, kreg) || kreg * (mwi + nwi) > 512)
		return false;
	return true;
}

static bool direct_valid(const size_t *v, const strata_device_info *dev)
{
	size_t wgd = v[0], mdimcd = v[1], ndimcd = v[2], mdimad = v[3], ndimbd = v[4], kwid = v[5], vwmd = v[6],
	       vwnd = v[7], pada = v[8], padb = v[9];
	if (!divides(kwid, wgd) || !divides(mdimcd * vwmd, wgd) || !divides(ndimcd * vwnd, wgd) ||
	    !divides(mdimad * vwmd, wgd) || !divides(ndimbd * vwnd, wgd))
		return false;
	if (!divides(mdimad, mdimcd * ndimcd) || !divides(ndimbd, mdimcd * ndimcd) ||
	    !divides(mdimcd * ndimcd / mdimad, wgd) || !divides(mdimcd * ndimcd / ndimbd, wgd))
		return false;
	if (mdimcd * ndimcd > dev->max_work_group_size)
		return false;
	/* PoCL took 30 to 90 s to build larger per-item tiles times unrolling (8x8x2, 16x8x16),
	 * against about 10 s here; none of them was faster. */
	if ((wgd / mdimcd) * (wgd / ndimcd) * kwid > 64)
		return false;
	return (wgd * (wgd + pada) + wgd * (wgd + padb)) * sizeof(float) <= dev->local_mem_bytes;
}

bool st_tune_valid(int kernel, const size_t *v, const strata_device_info *dev)
{
	if (kernel < 0 || kernel >= ST_TK_COUNT)
		return false;
	const kernel_desc *kd = &kernels[kernel];
	if (kernel == ST_TK_ROUTINE)
		return v[0] <= ST_TUNE_ALWAYS_DIRECT;
	for (size_t i = 0; i < kd->n_params; i++) {
		bool listed = false;
		for (size_t j = 0; j < kd->params[i].n_choices; j++)
			listed |= kd->params[i].choices[j] == v[i];
		if (!listed)
			return false;
	}
	size_t local = 0, wg = 0;
	switch (kernel) {
	case ST_TK_XGEMM:
		return xgemm_valid(v, dev);
	case ST_TK_DIRECT:
		return direct_valid(v, dev);
	case ST_TK_COPY:
	case ST_TK_PAD:
		wg = v[0] * v[1];
		break;
	case ST_TK_TRANSPOSE:
		wg = v[0] * v[0];
		local = v[1] * (v[1] * v[0]) * (v[0] + v[2]) * sizeof(float);
		break;
	case ST_TK_PADTRANSPOSE:
		wg = v[0] * v[0];
		local = (v[1] * v[0]) * (v[1] * v[0] + v[2]) * sizeof(float);
		break;
	}
	return wg <= dev->max_work_group_size && local <= dev->local_mem_bytes;
}

strata_status st_tune_apply(strata_runtime *rt, const st_tune_set *set, strata_error *err)
{
	for (int k = 0; k < ST_TK_COUNT; k++) {
		if (!(set->present & (1u << k)))
			continue;
		const char *names[ST_TUNE_MAX_PARAMS];
		for (size_t i = 0; i < kernels[k].n_params; i++)
			names[i] = kernels[k].params[i].name;
		CLBlastStatusCode rc = CLBlastOverrideParameters(rt->device, kernels[k].name, CLBlastPrecisionSingle,
		                                                 kernels[k].n_params, names, set->v[k]);
		if (rc != CLBlastSuccess)
			return st_fail(err, STRATA_ERR_UNSUPPORTED,
			               "CLBlast refused the %s parameters (status %d): this CLBlast names them differently",
			               kernels[k].name, (int)rc);
	}
	st_gemm_route *routes = NULL;
	if (set->n_routes) {
		routes = malloc(set->n_routes * sizeof(*routes));
		if (!routes)
			return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		memcpy(routes, set->routes, set->n_routes * sizeof(*routes));
	}
	free(rt->gemm_routes);
	rt->gemm_routes = routes;
	rt->n_gemm_routes = set->n_routes;
	if (set->has_tunables)
		rt->tunables = set->tunables;
	return STRATA_OK;
}

/* ---- the file ------------------------------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001B3ull;
	}
	return h;
}

static uint64_t device_key_hash(const strata_device_info *dev)
{
	uint64_t h = 0xCBF29CE484222325ull;
	h = fnv1a(h, dev->platform, strlen(dev->platform) + 1);
	h = fnv1a(h, dev->name, strlen(dev->name) + 1);
	return fnv1a(h, dev->driver_version, strlen(dev->driver_version) + 1);
}

strata_status st_tune_dir(const char *cache_dir, char *buf, size_t size, strata_error *err)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	int n;
	if (cache_dir && *cache_dir)
		n = snprintf(buf, size, "%s/tuning", cache_dir);
	else if (xdg && *xdg)
		n = snprintf(buf, size, "%s/strata/tuning", xdg);
	else if (home && *home)
		n = snprintf(buf, size, "%s/.cache/strata/tuning", home);
	else
		return st_fail(err, STRATA_ERR_NOT_FOUND, "neither XDG_CACHE_HOME nor HOME is set");
	return n > 0 && (size_t)n < size ? STRATA_OK : st_fail(err, STRATA_ERR_IO, "cache path too long");
}

strata_status st_tune_path(const char *cache_dir, const strata_device_info *dev, char *buf, size_t size,
                           strata_error *err)
{
	char dir[4096];
	strata_status st = st_tune_dir(cache_dir, dir, sizeof(dir), err);
	if (st)
		return st;
	/* The device name, kept to characters safe in any file name, so a person can tell the
	 * files apart; the hash covers the whole key. */
	char label[64];
	size_t j = 0;
	for (const char *p = dev->name; *p && j + 1 < sizeof(label); p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.';
		if (ok)
			label[j++] = c;
		else if (j > 0 && label[j - 1] != '-')
			label[j++] = '-';
	}
	while (j > 0 && label[j - 1] == '-')
		j--;
	label[j] = '\0';
	int n = snprintf(buf, size, "%s/%s-%016" PRIx64 ".txt", dir, j ? label : "device", device_key_hash(dev));
	return n > 0 && (size_t)n < size ? STRATA_OK : st_fail(err, STRATA_ERR_IO, "cache path too long");
}

typedef struct text_buf {
	char *s;
	size_t n, cap;
	bool failed;
} text_buf;

__attribute__((format(printf, 2, 3))) static void put(text_buf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int need = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
		va_end(ap);
		if (need < 0) {
			b->failed = true;
			return;
		}
		if (b->s && b->n + (size_t)need < b->cap) {
			b->n += (size_t)need;
			return;
		}
		size_t cap = (b->cap ? b->cap : 256) * 2 + (size_t)need;
		char *grown = realloc(b->s, cap);
		if (!grown) {
			b->failed = true;
			return;
		}
		b->s = grown;
		b->cap = cap;
	}
}

strata_status st_tune_format(const st_tune_set *set, const strata_device_info *dev, const char *note,
                             char **out, strata_error *err)
{
	*out = NULL;
	text_buf b = {0};
	put(&b, "# Tuned parameters for one OpenCL device, written by `strata tune`: CLBlast's kernels, the\n"
	        "# launch-time tunables of Strata's kernels, and per GEMM shape the faster engine. Every\n"
	        "# strata runtime on this platform, device and driver applies them.\n");
	put(&b, "format %d\nplatform %s\ndevice %s\ndriver %s\n", TUNE_FORMAT, dev->platform, dev->name,
	    dev->driver_version);
	for (const char *p = note; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		put(&b, "note %.*s\n", (int)len, p);
		p += len + (eol ? 1 : 0);
	}
	for (int k = 0; k < ST_TK_COUNT; k++) {
		if (!(set->present & (1u << k)))
			continue;
		put(&b, "kernel %s", kernels[k].name);
		for (size_t i = 0; i < kernels[k].n_params; i++)
			put(&b, " %s=%zu", kernels[k].params[i].name, set->v[k][i]);
		put(&b, "\n");
	}
	if (set->has_tunables) {
		put(&b, "tunables");
		for (int t = 0; t < ST_TUNABLE_COUNT; t++)
			put(&b, " %s=%zu", st_tunable_name(t), set->tunables.v[t]);
		put(&b, "\n");
	}
	for (size_t i = 0; i < set->n_routes; i++) {
		const st_gemm_route *r = &set->routes[i];
		put(&b, "gemm %c%c m=%zu n=%zu k=%zu engine=%s", r->trans_a ? 'T' : 'N', r->trans_b ? 'T' : 'N', r->m, r->n,
		    r->k, st_gemm_engine_name(r->engine));
		if (r->engine == ST_GEMM_TILE)
			put(&b, " MR=%u NV=%u S=%u", r->plan.mr, r->plan.nv, r->plan.splits);
		put(&b, "\n");
	}
	if (b.failed || !b.s) {
		free(b.s);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	}
	uint64_t sum = fnv1a(0xCBF29CE484222325ull, b.s, b.n);
	put(&b, "checksum %016" PRIx64 "\n", sum);
	if (b.failed) {
		free(b.s);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	}
	*out = b.s;
	return STRATA_OK;
}

/* A value after `key ` on its own line, copied into buf; false when the line is missing. */
static bool field(const char *text, const char *key, char *buf, size_t size)
{
	size_t kl = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, kl) != 0 || p[kl] != ' ')
			continue;
		const char *v = p + kl + 1;
		const char *eol = strchr(v, '\n');
		size_t len = eol ? (size_t)(eol - v) : strlen(v);
		if (len >= size)
			return false;
		memcpy(buf, v, len);
		buf[len] = '\0';
		return true;
	}
	return false;
}

/* A line of the file as a string of its own, for strtok_r and sscanf; false when too long. */
static bool copy_line(char *buf, size_t size, const char *line, size_t len)
{
	if (len >= size)
		return false;
	memcpy(buf, line, len);
	buf[len] = '\0';
	return true;
}

static strata_status parse_kernel_line(const char *line, size_t len, const strata_device_info *dev,
                                       st_tune_set *out, strata_error *err)
{
	char tmp[1024];
	if (!copy_line(tmp, sizeof(tmp), line, len))
		return st_fail(err, STRATA_ERR_PARSE, "kernel line too long");
	char *save = NULL;
	char *name = strtok_r(tmp + strlen("kernel "), " ", &save);
	int k = -1;
	for (int i = 0; name && i < ST_TK_COUNT; i++)
		if (strcmp(name, kernels[i].name) == 0)
			k = i;
	if (k < 0)
		return st_fail(err, STRATA_ERR_PARSE, "unknown kernel '%s'", name ? name : "");
	if (out->present & (1u << k))
		return st_fail(err, STRATA_ERR_PARSE, "kernel %s given twice", name);
	uint32_t seen = 0;
	for (char *tok; (tok = strtok_r(NULL, " ", &save));) {
		char *eq = strchr(tok, '=');
		if (!eq)
			return st_fail(err, STRATA_ERR_PARSE, "%s: '%s' is not NAME=VALUE", name, tok);
		*eq = '\0';
		size_t i = 0;
		while (i < kernels[k].n_params && strcmp(kernels[k].params[i].name, tok) != 0)
			i++;
		char *end;
		unsigned long long v = strtoull(eq + 1, &end, 10);
		if (i == kernels[k].n_params || (seen & (1u << i)) || *end || end == eq + 1 || eq[1] == '-')
			return st_fail(err, STRATA_ERR_PARSE, "%s: bad or repeated parameter %s", name, tok);
		seen |= 1u << i;
		out->v[k][i] = (size_t)v;
	}
	if (seen != (1u << kernels[k].n_params) - 1)
		return st_fail(err, STRATA_ERR_PARSE, "%s: parameters missing", name);
	if (!st_tune_valid(k, out->v[k], dev))
		return st_fail(err, STRATA_ERR_PARSE, "%s: values outside the legal set for this device", name);
	out->present |= 1u << k;
	return STRATA_OK;
}

/* "tunables vw=16 wg=256 dropout_vw=16": every tunable once, each a legal value. */
static strata_status parse_tunables_line(const char *line, size_t len, st_tune_set *out, strata_error *err)
{
	char tmp[256];
	if (!copy_line(tmp, sizeof(tmp), line, len))
		return st_fail(err, STRATA_ERR_PARSE, "tunables line too long");
	if (out->has_tunables)
		return st_fail(err, STRATA_ERR_PARSE, "tunables given twice");
	uint32_t seen = 0;
	char *save = NULL;
	strtok_r(tmp, " ", &save);
	for (char *tok; (tok = strtok_r(NULL, " ", &save));) {
		char *eq = strchr(tok, '=');
		if (!eq)
			return st_fail(err, STRATA_ERR_PARSE, "tunables: '%s' is not NAME=VALUE", tok);
		*eq = '\0';
		int t = st_tunable_index(tok);
		char *end;
		unsigned long long v = strtoull(eq + 1, &end, 10);
		if (t < 0 || (seen & (1u << t)) || *end || end == eq + 1 || !st_tunable_legal(t, (size_t)v))
			return st_fail(err, STRATA_ERR_PARSE, "tunables: bad, unknown or repeated %s=%s", tok, eq + 1);
		seen |= 1u << t;
		out->tunables.v[t] = (size_t)v;
	}
	if (seen != (1u << ST_TUNABLE_COUNT) - 1)
		return st_fail(err, STRATA_ERR_PARSE, "tunables: values missing");
	out->has_tunables = true;
	return STRATA_OK;
}

/* "gemm NT m=M n=N k=K engine=clblast" or "... engine=strata MR=6 NV=3 S=1". */
static strata_status parse_gemm_line(const char *line, size_t len, st_tune_set *out, strata_error *err)
{
	char tmp[256];
	if (!copy_line(tmp, sizeof(tmp), line, len))
		return st_fail(err, STRATA_ERR_PARSE, "gemm line too long");
	if (out->n_routes == ST_TUNE_MAX_ROUTES)
		return st_fail(err, STRATA_ERR_PARSE, "more than %d gemm lines", ST_TUNE_MAX_ROUTES);
	st_gemm_route r = {.engine = -1};
	char ops[3], engine[16];
	unsigned long long m, n, k;
	int used = 0;
	if (sscanf(tmp, "gemm %2s m=%llu n=%llu k=%llu engine=%15s%n", ops, &m, &n, &k, engine, &used) != 5 ||
	    strlen(ops) != 2 || !strchr("NT", ops[0]) || !strchr("NT", ops[1]) || m == 0 || n == 0 || k == 0)
		return st_fail(err, STRATA_ERR_PARSE, "bad gemm line '%s'", tmp);
	r.trans_a = ops[0] == 'T';
	r.trans_b = ops[1] == 'T';
	r.m = (size_t)m;
	r.n = (size_t)n;
	r.k = (size_t)k;
	if (st_gemm_engine_parse(engine, &r.engine, NULL) != STRATA_OK || r.engine == ST_GEMM_AUTO)
		return st_fail(err, STRATA_ERR_PARSE, "gemm line: unknown engine '%s'", engine);
	const char *rest = tmp + used;
	if (r.engine == ST_GEMM_TILE) {
		int tail = 0;
		if (sscanf(rest, " MR=%u NV=%u S=%u%n", &r.plan.mr, &r.plan.nv, &r.plan.splits, &tail) != 3 ||
		    !st_gemm_tile_plan_valid(&r.plan))
			return st_fail(err, STRATA_ERR_PARSE, "gemm line: bad or missing MR, NV, S in '%s'", tmp);
		rest += tail;
	}
	if (rest[strspn(rest, " ")] != '\0')
		return st_fail(err, STRATA_ERR_PARSE, "gemm line: unexpected '%s'", rest);
	if (st_gemm_route_find(out->routes, out->n_routes, r.trans_a, r.trans_b, r.m, r.n, r.k))
		return st_fail(err, STRATA_ERR_PARSE, "gemm %s %llux%llux%llu given twice", ops, m, n, k);
	out->routes[out->n_routes++] = r;
	return STRATA_OK;
}

strata_status st_tune_parse(const char *text, size_t len, const strata_device_info *dev, st_tune_set *out,
                            strata_error *err)
{
	memset(out, 0, sizeof(*out));
	if (memchr(text, '\0', len))
		return st_fail(err, STRATA_ERR_PARSE, "not a text file");
	/* The checksum covers every byte before its line, so a damaged or hand-edited file is
	 * refused whole rather than half applied. */
	const char *sum_line = NULL;
	for (const char *p = text; p < text + len; p++)
		if ((p == text || p[-1] == '\n') && (size_t)(text + len - p) > 9 && strncmp(p, "checksum ", 9) == 0)
			sum_line = p;
	if (!sum_line)
		return st_fail(err, STRATA_ERR_PARSE, "no checksum line");
	char *end;
	unsigned long long stored = strtoull(sum_line + 9, &end, 16);
	if (end != sum_line + 9 + 16 || (*end != '\n' && *end != '\0') || (*end == '\n' && end + 1 != text + len))
		return st_fail(err, STRATA_ERR_PARSE, "bad checksum line");
	if (stored != fnv1a(0xCBF29CE484222325ull, text, (size_t)(sum_line - text)))
		return st_fail(err, STRATA_ERR_PARSE, "checksum mismatch");

	char *body = strndup(text, (size_t)(sum_line - text));
	if (!body)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	strata_status st = STRATA_OK;
	char value[512];
	if (!field(body, "format", value, sizeof(value)) || atoi(value) != TUNE_FORMAT) {
		st = st_fail(err, STRATA_ERR_PARSE, "unknown format");
		goto out_free;
	}
	static const char *const keys[] = {"platform", "device", "driver"};
	const char *want[] = {dev->platform, dev->name, dev->driver_version};
	for (int i = 0; i < 3; i++) {
		if (!field(body, keys[i], value, sizeof(value))) {
			st = st_fail(err, STRATA_ERR_PARSE, "no %s line", keys[i]);
			goto out_free;
		}
		if (strcmp(value, want[i]) != 0) {
			st = st_fail(err, STRATA_ERR_INVALID, "written for %s '%s', this is '%s'", keys[i], value, want[i]);
			goto out_free;
		}
	}
	for (const char *p = body; *p;) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		if (n > 7 && strncmp(p, "kernel ", 7) == 0 && (st = parse_kernel_line(p, n, dev, out, err)))
			goto out_free;
		if (n > 5 && strncmp(p, "gemm ", 5) == 0 && (st = parse_gemm_line(p, n, out, err)))
			goto out_free;
		if (n > 9 && strncmp(p, "tunables ", 9) == 0 && (st = parse_tunables_line(p, n, out, err)))
			goto out_free;
		p += n + (eol ? 1 : 0);
	}
	if (!out->present && !out->n_routes && !out->has_tunables)
		st = st_fail(err, STRATA_ERR_PARSE, "no kernel parameters");
out_free:
	free(body);
	if (st)
		memset(out, 0, sizeof(*out));
	return st;
}

strata_status st_tune_store(const char *cache_dir, const strata_device_info *dev, const st_tune_set *set,
                            const char *note, char *path, size_t path_size, strata_error *err)
{
	char dir[4096], file[4096];
	strata_status st;
	if ((st = st_tune_dir(cache_dir, dir, sizeof(dir), err)) ||
	    (st = st_tune_path(cache_dir, dev, file, sizeof(file), err)) || (st = st_mkdirs(dir, err)))
		return st;
	char *text = NULL;
	if ((st = st_tune_format(set, dev, note, &text, err)))
		return st;
	st = st_write_file_atomic(file, text, strlen(text), err);
	free(text);
	if (st == STRATA_OK && path)
		snprintf(path, path_size, "%s", file);
	return st;
}

strata_status st_tune_load(const char *cache_dir, const strata_device_info *dev, st_tune_set *out,
                           strata_error *err)
{
	memset(out, 0, sizeof(*out));
	char file[4096];
	strata_status st = st_tune_path(cache_dir, dev, file, sizeof(file), err);
	if (st)
		return st;
	char *text = NULL;
	size_t len = 0;
	if ((st = st_read_file(file, "tuning file", TUNING_FILE_MAX, &text, &len, err)))
		return st;
	strata_error why = {0};
	st = st_tune_parse(text, len, dev, out, &why);
	free(text);
	if (st)
		return st_fail(err, st, "%s: %s", file, why.message);
	return STRATA_OK;
}

/* Whether the folder of the tuned parameters cannot be reached at all (a path through a file, a
 * folder that cannot be searched): then there are no parameters to ignore, and the program cache,
 * which lives beside them, is the one to warn about the folder. */
static bool tune_dir_unreachable(const char *cache_dir)
{
	char dir[4096];
	struct stat info;
	return st_tune_dir(cache_dir, dir, sizeof(dir), NULL) == STRATA_OK && stat(dir, &info) != 0;
}

void st_tune_apply_stored(strata_runtime *rt, const char *cache_dir)
{
	st_tune_set set;
	strata_error err = {0};
	strata_status st = st_tune_load(cache_dir, &rt->info, &set, &err);
	if (st == STRATA_ERR_IO && tune_dir_unreachable(cache_dir)) {
		st_runtime_log(rt, STRATA_LOG_INFO, "no tuned GEMM parameters: %s", err.message);
		return;
	}
	if (st == STRATA_ERR_NOT_FOUND) {
		st_runtime_log(rt, STRATA_LOG_INFO,
		               "no tuned GEMM parameters for %s: `strata tune MODEL.yaml` measures some for this device",
		               rt->info.name);
		return;
	}
	if (st == STRATA_OK)
		st = st_tune_apply(rt, &set, &err);
	if (st) {
		st_runtime_log(rt, STRATA_LOG_WARN, "ignoring tuned GEMM parameters: %s", err.message);
		return;
	}
	st_runtime_log(rt, STRATA_LOG_INFO, "applied tuned GEMM parameters for %s", rt->info.name);
}

/* ---- recording -------------------------------------------------------------------------------- */

void st_gemm_log_add(st_gemm_log *log, const strata_gemm *g)
{
	for (size_t i = 0; i < log->n; i++) {
		st_gemm_shape *s = &log->shapes[i];
		if (s->trans_a == g->trans_a && s->trans_b == g->trans_b && s->m == g->m && s->n == g->n && s->k == g->k) {
			s->count++;
			return;
		}
	}
	if (log->n == log->cap) {
		size_t cap = log->cap ? log->cap * 2 : 16;
		st_gemm_shape *grown = realloc(log->shapes, cap * sizeof(*grown));
		if (!grown) {
			log->out_of_memory = true;
			return;
		}
		log->shapes = grown;
		log->cap = cap;
	}
	log->shapes[log->n++] = (st_gemm_shape){g->trans_a, g->trans_b, g->m, g->n, g->k, 1};
}

void st_gemm_log_free(st_gemm_log *log)
{
	free(log->shapes);
	memset(log, 0, sizeof(*log));
}
