/* The second half of `strata tune`: per GEMM shape, Strata's own kernel (gemm_tile.c) with the
 * block shape and K splits that measured fastest, or CLBlast with the parameters the first
 * half left in force, whichever is faster. Each plan's result is checked exactly, as CLBlast's
 * candidates are, before its time counts.
 *
 * Plans are searched in two stages per shape, heaviest shape first: block shapes (MR rows by NV
 * float16 vectors, within the 32 vector registers of AVX-512) at the default split, then the
 * split counts around the best block. A shape's share of the budget follows its share of the
 * step's arithmetic. On devices other than CPUs only the default plan is tried: the kernel runs
 * one work-item per work-group, which suits CPU drivers only, and one try shows it. */
#include <math.h>
#include <string.h>

#include "tune/tuner_private.h"

#define MAX_PLANS 64

static bool same_plan(const st_gemm_tile_plan *a, const st_gemm_tile_plan *b)
{
	return a->mr == b->mr && a->nv == b->nv && a->splits == b->splits;
}

static size_t add_plan(st_gemm_tile_plan *plans, size_t n, st_gemm_tile_plan p)
{
	if (n == MAX_PLANS || !st_gemm_tile_plan_valid(&p))
		return n;
	for (size_t i = 0; i < n; i++)
		if (same_plan(&plans[i], &p))
			return n;
	plans[n] = p;
	return n + 1;
}

static strata_gemm shape_gemm(const st_gemm_shape *s)
{
	return (strata_gemm){.trans_a = s->trans_a, .trans_b = s->trans_b, .m = s->m, .n = s->n, .k = s->k};
}

/* Stage 1: the plan in force, then block shapes at the default plan's split count. */
static size_t block_plans(const tuner *t, const st_gemm_shape *s, const st_gemm_tile_plan *in_force,
                          st_gemm_tile_plan *plans)
{
	strata_gemm g = shape_gemm(s);
	st_gemm_tile_plan def;
	st_gemm_tile_default_plan(&g, t->rt->float_lanes, &def);
	size_t n = add_plan(plans, 0, *in_force);
	n = add_plan(plans, n, def);
	if (strcmp(t->rt->info.type, "cpu") != 0)
		return n;
	static const unsigned mrs[] = {2, 4, 6, 8, 12, 16};
	for (unsigned nv = 1; nv <= 4; nv++) {
		if (nv > 1 && 16 * nv > s->n)
			break; /* the whole block would take the scalar edge path */
		for (size_t i = 0; i < sizeof(mrs) / sizeof(mrs[0]); i++)
			if (mrs[i] * nv <= 32 && (mrs[i] <= s->m || mrs[i] == 2))
				n = add_plan(plans, n, (st_gemm_tile_plan){mrs[i], nv, def.splits});
	}
	return n;
}

/* Stage 2: split counts for the best block: none, and K cut into stretches of 256 to 4096 rows. */
static size_t split_plans(const st_gemm_shape *s, const st_gemm_tile_plan *best, st_gemm_tile_plan *plans)
{
	size_t n = add_plan(plans, 0, (st_gemm_tile_plan){best->mr, best->nv, 1});
	for (size_t rows = 256; rows <= 4096; rows *= 2) {
		size_t splits = s->k / rows;
		if (splits > ST_GEMM_MAX_SPLITS)
			splits = ST_GEMM_MAX_SPLITS;
		if (splits >= 2 && splits * s->m * s->n <= ST_GEMM_MAX_PARTIAL_FLOATS)
			n = add_plan(plans, n, (st_gemm_tile_plan){best->mr, best->nv, (unsigned)splits});
	}
	return n;
}

/* Checks plan p on shape si and, when right, times it against the best so far. */
static strata_status try_plan(tuner *t, size_t si, const st_gemm_tile_plan *p, double clblast_s, double *best_s,
                              st_gemm_tile_plan *best, double *secs_out, strata_error *err)
{
	const st_gemm_shape *s = &t->cfg->shapes[si];
	/* The candidate the result hook sees: this one shape, routed to this plan. */
	cand c = {.family = FAM_INDIRECT};
	c.set.n_routes = 1;
	c.set.routes[0] = (st_gemm_route){s->trans_a, s->trans_b, s->m, s->n, s->k, ST_GEMM_TILE, *p};
	bool ran, ok;
	t->tile = p;
	strata_status st = st_tuner_run_checked(t, &c, si, &ran, &ok, err);
	double secs = INFINITY;
	bool timed = st == STRATA_OK && ran && ok &&
	             st_tuner_time_shape(t, s, fmin(*best_s, clblast_s), 3, 0.5, &secs);
	t->tile = NULL;
	if (st)
		return st;
	*secs_out = timed ? secs : INFINITY;
	t->res->tried++;
	if (!ran || (ok && !timed)) {
		t->res->failed++;
		st_tuner_report(t, "    MR=%u NV=%u S=%u: failed to build or run\n", p->mr, p->nv, p->splits);
	} else if (!ok) {
		t->res->rejected++;
		st_tuner_report(t, "    MR=%u NV=%u S=%u: WRONG RESULTS, rejected\n", p->mr, p->nv, p->splits);
	} else if (secs < *best_s) {
		*best_s = secs;
		*best = *p;
	}
	return STRATA_OK;
}

strata_status st_tuner_search_routes(tuner *t, double budget, strata_error *err)
{
	st_tuner_result *res = t->res;
	res->n_routes = 0;
	res->routed_s = res->current_s = 0;
	double total = 0;
	for (size_t i = 0; i < t->n; i++)
		total += t->w[i] * t->flops[i];
	st_tuner_report(t, "choosing Strata's kernel or CLBlast per shape (%.0f s)...\n", budget);
	double start = st_tuner_now();
	for (size_t oi = 0; oi < t->n && res->n_routes < ST_TUNE_MAX_ROUTES; oi++) {
		size_t si = t->order[oi];
		const st_gemm_shape *s = &t->cfg->shapes[si];
		double share = total > 0 ? t->w[si] * t->flops[si] / total : 1.0 / (double)t->n;
		double until = st_tuner_now() + budget * (share > 0.5 / (double)t->n ? share : 0.5 / (double)t->n);
		if (until > start + budget)
			until = start + budget;

		double clblast_s = INFINITY;
		t->tile = NULL;
		if (!st_tuner_time_shape(t, s, INFINITY, 3, 1.0, &clblast_s))
			clblast_s = INFINITY;
		/* What st_gemm would run for this shape now: its route, else the device's default. */
		const st_gemm_route *cur = st_gemm_route_find(t->rt->gemm_routes, t->rt->n_gemm_routes, s->trans_a,
		                                              s->trans_b, s->m, s->n, s->k);
		strata_gemm g = shape_gemm(s);
		st_gemm_tile_plan in_force;
		st_gemm_tile_default_plan(&g, t->rt->float_lanes, &in_force);
		bool cur_tile = cur ? cur->engine == ST_GEMM_TILE : t->rt->gemm_engine == ST_GEMM_TILE;
		if (cur && cur_tile)
			in_force = cur->plan;
		double best_s = INFINITY, secs, cur_s = cur_tile ? INFINITY : clblast_s;
		st_gemm_tile_plan best = {0}, plans[MAX_PLANS];
		size_t n = block_plans(t, s, &in_force, plans);
		strata_status st;
		for (size_t i = 0; i < n && (i == 0 || st_tuner_now() < until); i++) {
			if ((st = try_plan(t, si, &plans[i], clblast_s, &best_s, &best, &secs, err)))
				return st;
			if (i == 0 && cur_tile)
				cur_s = secs;
		}
		if (isfinite(best_s) && strcmp(t->rt->info.type, "cpu") == 0) {
			st_gemm_tile_plan block = best;
			n = split_plans(s, &block, plans);
			for (size_t i = 0; i < n && st_tuner_now() < until; i++)
				if (!same_plan(&plans[i], &block) &&
				    (st = try_plan(t, si, &plans[i], clblast_s, &best_s, &best, &secs, err)))
					return st;
		}

		bool tile = best_s < clblast_s;
		if (!tile && !isfinite(clblast_s))
			continue; /* neither ran: the shape keeps the device's default */
		st_gemm_route *r = &res->routes[res->n_routes++];
		*r = (st_gemm_route){s->trans_a, s->trans_b, s->m, s->n, s->k, tile ? ST_GEMM_TILE : ST_GEMM_CLBLAST,
		                     tile ? best : (st_gemm_tile_plan){0}};
		double won = tile ? best_s : clblast_s;
		res->routed_s += t->w[si] * won;
		res->current_s += t->w[si] * cur_s;
		if (t->cfg->after_t)
			t->cfg->after_t[si] = won;
		double gflop = t->flops[si] / 1e9;
		char mine[64] = "no correct plan";
		if (isfinite(best_s))
			snprintf(mine, sizeof(mine), "%.2f ms (%.1f GFLOP/s, MR=%u NV=%u S=%u)", best_s * 1e3,
			         gflop / best_s, best.mr, best.nv, best.splits);
		st_tuner_report(t, "  %c%c %zux%zux%zu: CLBlast %.2f ms, Strata %s: %s\n", s->trans_a ? 'T' : 'N',
		                s->trans_b ? 'T' : 'N', s->m, s->n, s->k, clblast_s * 1e3, mine,
		                tile ? "Strata" : "CLBlast");
	}
	return STRATA_OK;
}
