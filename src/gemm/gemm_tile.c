/* Strata's own SGEMM (cl/gemm.cl) for CPU drivers: choosing its block shape and K splits for a
 * GEMM, the scratch buffers it needs, and its launches. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm/gemm.h"

/* K rows per split once a GEMM is split: the rows of A and B a split walks then stay in L2. */
#define SPLIT_ROWS 1024u
/* Row-block walkers per column block: enough work-groups for any core count, few enough that
 * each walks many blocks. */
#define WALKERS 256u

void st_gemm_tile_default_plan(const strata_gemm *g, unsigned lanes, st_gemm_tile_plan *p)
{
	/* Widest row of vectors that tiles N exactly; MR then keeps MR * NV near the 24 accumulators
	 * that measured best on AVX-512 (32 registers, some for B's row and A's broadcast). With
	 * narrower vectors a float16 accumulator takes 16 / lanes registers: on AVX2 (16 registers
	 * of 8 floats) 6 x 1 fills 12 of them, and 6 x 4 spilled (conv2d_2's forward GEMM at 52
	 * GFLOP/s against 132 for 6 x 1, bench/gemm_micro.sh). */
	if (lanes && lanes < 16)
		*p = (st_gemm_tile_plan){.mr = lanes > 4 ? 6 : 3, .nv = 1};
	else if (g->n % 64 == 0)
		*p = (st_gemm_tile_plan){.mr = 6, .nv = 4};
	else if (g->n % 48 == 0)
		*p = (st_gemm_tile_plan){.mr = 6, .nv = 3};
	else if (g->n % 32 == 0 || g->n > 16)
		*p = (st_gemm_tile_plan){.mr = 6, .nv = 2};
	else
		*p = (st_gemm_tile_plan){.mr = 8, .nv = 1};
	/* A long K with a small C (a kernel gradient) splits, so the splits share the cores and each
	 * walks a stretch of A and B that stays in cache. */
	size_t splits = g->k / SPLIT_ROWS;
	size_t cap = ST_GEMM_MAX_PARTIAL_FLOATS / (g->m * g->n > 0 ? g->m * g->n : 1);
	if (splits > cap)
		splits = cap;
	if (splits > ST_GEMM_MAX_SPLITS)
		splits = ST_GEMM_MAX_SPLITS;
	p->splits = splits > 1 ? (unsigned)splits : 1;
	if (p->splits > 1 && p->nv == 4)
		p->mr = 4; /* split blocks reread A per split; fewer rows measured better there */
}

void st_gemm_cost(const strata_gemm *g, size_t c_copies, uint64_t *flops, uint64_t *bytes)
{
	*flops = 2ull * g->m * g->n * g->k;
	*bytes = sizeof(float) * ((uint64_t)g->m * g->k + (uint64_t)g->k * g->n +
	                          (uint64_t)g->m * g->n * (c_copies + (g->beta != 0.0f)));
}

const st_gemm_route *st_gemm_route_find(const st_gemm_route *routes, size_t n, bool trans_a, bool trans_b,
                                        size_t m, size_t cols, size_t k)
{
	for (size_t i = 0; i < n; i++) {
		const st_gemm_route *r = &routes[i];
		if (r->trans_a == trans_a && r->trans_b == trans_b && r->m == m && r->n == cols && r->k == k)
			return r;
	}
	return NULL;
}

bool st_gemm_tile_plan_valid(const st_gemm_tile_plan *p)
{
	return p->mr >= 1 && p->mr <= 16 && p->nv >= 1 && p->nv <= 4 && p->splits >= 1 &&
	       p->splits <= ST_GEMM_MAX_SPLITS;
}

static bool fits_int(size_t x)
{
	return x < (size_t)INT_MAX;
}

bool st_gemm_window_valid(const strata_gemm *g)
{
	const strata_gemm_window *w = g->a_window;
	if (!w || !w->h || !w->w || !w->c || !w->kh || !w->kw || !w->sh || !w->sw || w->kh > w->h ||
	    w->kw > w->w || w->oh != (w->h - w->kh) / w->sh + 1 || w->ow != (w->w - w->kw) / w->sw + 1)
		return false;
	size_t windows = g->trans_a ? g->k : g->m, elems = g->trans_a ? g->m : g->k;
	size_t per_image = (size_t)w->oh * w->ow;
	return elems == (size_t)w->kh * w->kw * w->c && windows % per_image == 0;
}

/* The last element each operand reaches, so every index the kernels compute stays an int. */
bool st_gemm_tile_fits(const strata_gemm *g)
{
	if (g->k == 0)
		return false;
	size_t a_last = g->trans_a ? (g->k - 1) * g->lda + g->m : (g->m - 1) * g->lda + g->k;
	if (g->a_window) {
		const strata_gemm_window *w = g->a_window;
		size_t images = (g->trans_a ? g->k : g->m) / ((size_t)w->oh * w->ow);
		a_last = images * w->h * w->w * w->c;
	}
	size_t b_last = g->trans_b ? (g->n - 1) * g->ldb + g->k : (g->k - 1) * g->ldb + g->n;
	size_t c_last = (g->m - 1) * g->ldc + g->n;
	return fits_int(g->a_offset + a_last) && fits_int(g->b_offset + b_last) && fits_int(g->c_offset + c_last) &&
	       fits_int(g->m * g->n) && fits_int(g->k * g->n);
}

/* Grows one of the runtime's scratch buffers to at least `floats`, at least doubling it; kept for
 * later GEMMs, so a training step allocates nothing after its first. The buffer it replaces is
 * retired, not released, until the runtime ends: Oclgrind 21.10 gives a released buffer's
 * record of written bytes to the next buffer created, and then reports reads of the new scratch
 * as uninitialized. Doubling bounds what the retired buffers hold to the size of the last. */
static strata_status scratch(strata_runtime *rt, strata_tensor *t, size_t floats, const char *what,
                             strata_error *err)
{
	size_t bytes = floats * sizeof(float);
	if (t->mem && t->bytes >= bytes)
		return STRATA_OK;
	if (t->mem) {
		strata_tensor *grown = realloc(rt->gemm_retired, (rt->n_gemm_retired + 1) * sizeof(*grown));
		if (!grown)
			return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		rt->gemm_retired = grown;
		rt->gemm_retired[rt->n_gemm_retired++] = *t;
		if (bytes < 2 * t->bytes && 2 * t->bytes <= rt->info.max_alloc_bytes)
			bytes = 2 * t->bytes;
		t->mem = NULL;
		t->bytes = 0;
	}
	return st_tensor_alloc(rt, t, bytes, what, err);
}

/* `window`: 0 for a plain A, 1 or 2 for an im2col A or its transpose (cl/gemm.cl's WINDOW). */
static strata_status kernel(strata_runtime *rt, const char *name, const st_gemm_tile_plan *p, int window,
                            const st_gemm_epilogue *ep, strata_kernel **out, strata_error *err)
{
	char options[96] = "";
	int o = p ? snprintf(options, sizeof(options), "-DMR=%u -DNV=%u%s", p->mr, p->nv,
	                     window == 1 ? " -DWINDOW=1" : window == 2 ? " -DWINDOW=2" : "")
	          : 0;
	if (ep)
		snprintf(options + o, sizeof(options) - (size_t)o, "%s%s", ep->bias ? " -DBIAS=1" : "",
		         ep->relu ? " -DRELU=1" : "");
	return st_kernel_get(rt, "strata_gemm", name, options, out, err);
}

strata_status st_gemm_tile_run(strata_runtime *rt, const char *label, const strata_gemm *g,
                               const st_gemm_tile_plan *plan, const st_gemm_epilogue *ep, strata_error *err)
{
	st_gemm_tile_plan p;
	if (plan)
		p = *plan;
	else
		st_gemm_tile_default_plan(g, rt->float_lanes, &p);
	static const size_t one[3] = {1, 1, 1};
	strata_status st;
	strata_kernel *k;

	/* op(B) by rows: a transposed B is copied into scratch first. */
	strata_tensor *b = g->b;
	int b_off = (int)g->b_offset, ldb = (int)g->ldb;
	if (g->trans_b) {
		if ((st = scratch(rt, &rt->gemm_bt, g->k * g->n, "the GEMM's transposed B", err)) ||
		    (st = kernel(rt, "gemm_transpose", NULL, 0, NULL, &k, err)))
			return st;
		strata_arg args[] = {
			strata_arg_int((int32_t)g->n), strata_arg_int((int32_t)g->k), strata_arg_tensor(g->b),
			strata_arg_int(b_off), strata_arg_int(ldb), strata_arg_tensor(&rt->gemm_bt),
		};
		size_t global[2] = {(g->k + 7) / 8, (g->n + 7) / 8}; /* 8 x 8 blocks */
		if ((st = st_launch(rt, label, k, 2, global, NULL, 6, args, err)))
			return st;
		b = &rt->gemm_bt;
		b_off = 0;
		ldb = (int)g->n;
	}

	int ars = g->trans_a ? 1 : (int)g->lda, acs = g->trans_a ? (int)g->lda : 1;
	size_t splits = p.splits ? p.splits : 1;
	if (splits > ST_GEMM_MAX_PARTIAL_FLOATS / (g->m * g->n))
		splits = ST_GEMM_MAX_PARTIAL_FLOATS / (g->m * g->n); /* keeps split * stride an int too */
	if (splits == 0)
		splits = 1;
	size_t kc = (g->k + splits - 1) / splits;
	splits = (g->k + kc - 1) / kc; /* no empty split */
	strata_tensor *c = g->c;
	int c_off = (int)g->c_offset, ldc = (int)g->ldc, stride = 0;
	float alpha = g->alpha, beta = g->beta;
	if (splits > 1) {
		if ((st = scratch(rt, &rt->gemm_partials, splits * g->m * g->n, "the GEMM's partial products", err)))
			return st;
		c = &rt->gemm_partials;
		c_off = 0;
		ldc = (int)g->n;
		stride = (int)(g->m * g->n);
		alpha = 1.0f;
		beta = 0.0f;
	}
	const strata_gemm_window *w = g->a_window, none = {0};
	/* The epilogue runs where C is stored: in gemm_tile, or in gemm_reduce after a split. Without
	 * a bias the kernels never read their bias argument; any buffer will do. */
	const st_gemm_epilogue *tile_ep = splits > 1 ? NULL : ep;
	strata_tensor *bias = ep && ep->bias ? ep->bias : g->c;
	if ((st = kernel(rt, "gemm_tile", &p, w ? (g->trans_a ? 2 : 1) : 0, tile_ep, &k, err)))
		return st;
	if (!w)
		w = &none;
	strata_arg args[] = {
		strata_arg_int((int32_t)g->m), strata_arg_int((int32_t)g->n), strata_arg_int((int32_t)g->k),
		strata_arg_int((int32_t)kc),
		strata_arg_tensor(g->a), strata_arg_int((int32_t)g->a_offset), strata_arg_int(ars), strata_arg_int(acs),
		strata_arg_tensor(b), strata_arg_int(b_off), strata_arg_int(ldb),
		strata_arg_tensor(c), strata_arg_int(c_off), strata_arg_int(ldc), strata_arg_int(stride),
		strata_arg_float(alpha), strata_arg_float(beta),
		strata_arg_int((int32_t)w->h), strata_arg_int((int32_t)w->w), strata_arg_int((int32_t)w->c),
		strata_arg_int((int32_t)w->kw), strata_arg_int((int32_t)w->sh), strata_arg_int((int32_t)w->sw),
		strata_arg_int((int32_t)w->oh), strata_arg_int((int32_t)w->ow), strata_arg_tensor(bias),
	};
	size_t nr = 16u * p.nv, tiles_m = (g->m + p.mr - 1) / p.mr;
	st_gemm_cost(g, splits, &rt->next_flops, &rt->next_bytes);
	size_t global[3] = {(g->n + nr - 1) / nr, tiles_m < WALKERS ? tiles_m : WALKERS, splits};
	if ((st = st_launch(rt, label, k, 3, global, one, sizeof(args) / sizeof(args[0]), args, err)) ||
	    splits == 1)
		return st;

	if ((st = kernel(rt, "gemm_reduce", NULL, 0, ep, &k, err)))
		return st;
	strata_arg rargs[] = {
		strata_arg_int((int32_t)g->m), strata_arg_int((int32_t)g->n), strata_arg_int((int32_t)splits),
		strata_arg_tensor(&rt->gemm_partials), strata_arg_int(stride),
		strata_arg_tensor(g->c), strata_arg_int((int32_t)g->c_offset), strata_arg_int((int32_t)g->ldc),
		strata_arg_float(g->alpha), strata_arg_float(g->beta), strata_arg_tensor(bias),
	};
	/* Work-groups of a row's 16 to 64 columns: left to choose, PoCL ran one work-item per
	 * work-group here, and the reduction of conv2d_2's kernel gradient took 3.7 ms a step. */
	size_t rglobal[2] = {g->n, g->m}, rlocal[2] = {g->n >= 64 ? 64 : g->n >= 32 ? 32 : 16, 1};
	return st_launch(rt, label, k, 2, rglobal, rlocal, sizeof(rargs) / sizeof(rargs[0]), rargs, err);
}
