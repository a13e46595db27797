/* The GEMM tuner: records the GEMMs of one training step, then searches CLBlast's SGEMM kernel
 * parameters for the device on exactly those shapes, weighted by how often each runs.
 *
 * Two families are searched: the indirect path (the Xgemm kernel with the copy, pad and
 * transpose kernels that prepare its inputs) timed with every GEMM forced onto it, and the
 * direct path (XgemmDirect) timed with every GEMM forced onto that. CLBlast picks the path per
 * call by one switch point on m*n*k, so the best combination is a pair of candidates and a
 * switch point, found exactly from the per-shape times. Each candidate needs a fresh program
 * build (seconds on a CPU driver), so the search is small and staged: CLBlast's reference
 * values and a few structurally different starting points first, then random legal sets and
 * one-step moves around the best, each family chosen in proportion to the time it still costs.
 *
 * Every candidate's output is checked before its time counts: inputs are small integers, so any
 * correct summation order gives the exact product; the whole of C is checked against A(Bx) and
 * (yA)B for random sign vectors, and guard zones around C must be untouched. */
#include <clblast_c.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec/session.h"
#include "tune/tuner_private.h"

/* Kernels whose values an indirect candidate carries. */
static const int indirect_kernels[] = {
	ST_TK_XGEMM, ST_TK_COPY, ST_TK_PAD, ST_TK_TRANSPOSE, ST_TK_PADTRANSPOSE,
};
#define N_INDIRECT_KERNELS (sizeof(indirect_kernels) / sizeof(indirect_kernels[0]))

static size_t rand_below(tuner *t, size_t n)
{
	return n ? (size_t)(st_tuner_rand(&t->rng) % n) : 0;
}

static unsigned long long mnk(const st_gemm_shape *s)
{
	return (unsigned long long)s->m * s->n * s->k;
}

/* Switch points for each way of splitting the shapes by m*n*k: all indirect (0), all direct,
 * and between each pair of neighbours, the geometric middle of their cube roots, so shapes
 * outside the recorded set (another batch size) fall on the side of the nearer one. */
static size_t switch_points(const tuner *t, size_t *out)
{
	size_t n = 0;
	out[n++] = 0;
	out[n++] = ST_TUNE_ALWAYS_DIRECT;
	for (size_t i = 0; i < t->n; i++) {
		unsigned long long lo = mnk(&t->cfg->shapes[i]), hi = 0;
		for (size_t j = 0; j < t->n; j++) {
			unsigned long long v = mnk(&t->cfg->shapes[j]);
			if (v > lo && (hi == 0 || v < hi))
				hi = v;
		}
		if (hi == 0)
			continue;
		/* Direct: lo < T^3; indirect: hi >= T^3. */
		size_t T = (size_t)cbrt(sqrt((double)lo * (double)hi));
		while ((unsigned long long)T * T * T <= lo)
			T++;
		while (T > 0 && (unsigned long long)T * T * T > hi)
			T--;
		if ((unsigned long long)T * T * T > lo && T < ST_TUNE_ALWAYS_DIRECT)
			out[n++] = T;
	}
	return n;
}

static double combo_cost(const tuner *t, const double *ti, const double *td, size_t T)
{
	double sum = 0;
	for (size_t i = 0; i < t->n; i++) {
		bool direct = mnk(&t->cfg->shapes[i]) < (unsigned long long)T * T * T;
		double x = direct ? (td ? td[i] : INFINITY) : (ti ? ti[i] : INFINITY);
		sum += t->w[i] * x;
	}
	return sum;
}

typedef struct combo {
	const cand *ind, *dir; /* NULL: that path is not used */
	size_t T;
	double cost;
} combo;

/* The best (indirect, direct, switch point) over the verified candidates and `extra`, a
 * candidate being measured, whose times `extra_t` count unmeasured shapes as free: a lower
 * bound on what it can still reach. */
static combo best_combo(const tuner *t, const cand *extra, const double *extra_t)
{
	const cand **ind = malloc(sizeof(*ind) * (t->n_cands + 2));
	const cand **dir = malloc(sizeof(*dir) * (t->n_cands + 2));
	size_t *points = malloc(sizeof(*points) * (t->n + 2));
	combo best = {NULL, NULL, 0, INFINITY};
	if (!ind || !dir || !points)
		goto out_free;
	size_t n_points = switch_points(t, points);
	size_t ni = 0, nd = 0;
	ind[ni++] = NULL;
	dir[nd++] = NULL;
	for (size_t i = 0; i <= t->n_cands; i++) {
		const cand *c = i < t->n_cands ? &t->cands[i] : extra;
		if (!c || (c != extra && c->outcome != OUT_OK))
			continue;
		if (c->family == FAM_DIRECT)
			dir[nd++] = c;
		else
			ind[ni++] = c;
	}
	for (size_t a = 0; a < ni; a++) {
		const double *ti = !ind[a] ? NULL : ind[a] == extra ? extra_t : ind[a]->t;
		for (size_t b = 0; b < nd; b++) {
			const double *td = !dir[b] ? NULL : dir[b] == extra ? extra_t : dir[b]->t;
			for (size_t s = 0; s < n_points; s++) {
				size_t T = points[s];
				double cost = combo_cost(t, ti, td, T);
				if (cost < best.cost)
					best = (combo){ind[a], dir[b], T, cost};
			}
		}
	}
out_free:
	free(points);
	free(ind);
	free(dir);
	return best;
}

/* Seconds spent per step on each path in the best combination, to steer the search. */
static void path_shares(const tuner *t, const combo *b, double share[FAM_COUNT])
{
	share[FAM_INDIRECT] = share[FAM_DIRECT] = 0;
	for (size_t i = 0; i < t->n; i++) {
		bool direct = mnk(&t->cfg->shapes[i]) < (unsigned long long)b->T * b->T * b->T;
		const cand *c = direct ? b->dir : b->ind;
		if (c)
			share[direct ? FAM_DIRECT : FAM_INDIRECT] += t->w[i] * c->t[i];
	}
}

/* ---- evaluating a candidate ------------------------------------------------------------------- */


static void describe(const tuner *t, const cand *c, char *buf, size_t size)
{
	size_t n = 0;
	buf[0] = '\0';
	for (int k = 0; k < ST_TK_ROUTINE; k++) {
		bool ours = c->family == FAM_DIRECT ? k == ST_TK_DIRECT : k != ST_TK_DIRECT;
		/* Helper kernels only when the candidate changed them. */
		if (!ours || (k != ST_TK_XGEMM && k != ST_TK_DIRECT &&
		              memcmp(c->set.v[k], t->base.v[k], sizeof(c->set.v[k])) == 0))
			continue;
		if (k != ST_TK_XGEMM && k != ST_TK_DIRECT && n < size)
			n += (size_t)snprintf(buf + n, size - n, " %s:", st_tune_kernel_name(k));
		for (size_t i = 0; i < st_tune_param_count(k) && n < size; i++)
			n += (size_t)snprintf(buf + n, size - n, "%s%s=%zu", n ? " " : "", st_tune_param_name(k, i),
			                      c->set.v[k][i]);
	}
}

/* Shapes in the order a candidate meets them: the heaviest first, so a slow one stops early. */
static void shape_order(tuner *t)
{
	size_t *order = t->order;
	for (size_t i = 0; i < t->n; i++)
		order[i] = i;
	for (size_t i = 1; i < t->n; i++)
		for (size_t j = i; j > 0; j--) {
			size_t x = order[j], y = order[j - 1];
			if (t->w[x] * t->flops[x] <= t->w[y] * t->flops[y])
				break;
			order[j] = y;
			order[j - 1] = x;
		}
}

static double best_known(const tuner *t, size_t si)
{
	double b = INFINITY;
	for (size_t i = 0; i < t->n_cands; i++)
		if (t->cands[i].outcome == OUT_OK && t->cands[i].t[si] < b)
			b = t->cands[i].t[si];
	return b;
}

/* Applies c->set with every GEMM forced onto c's path, then checks and times each shape. */
static strata_status evaluate(tuner *t, cand *c, strata_error *err)
{
	for (size_t i = 0; i < t->n; i++)
		c->t[i] = INFINITY;
	c->set.present = (1u << ST_TK_COUNT) - 1;
	c->set.v[ST_TK_ROUTINE][0] = c->family == FAM_DIRECT ? ST_TUNE_ALWAYS_DIRECT : 0;
	/* Programs of earlier candidates are never used again; the driver's own cache keeps
	 * rebuilding one that comes back cheap. */
	CLBlastClearCache();
	strata_error why = {0};
	if (st_tune_apply(t->rt, &c->set, &why)) {
		c->outcome = OUT_FAILED;
		return STRATA_OK;
	}
	double *lower = malloc(sizeof(double) * t->n);
	if (!lower)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	for (size_t i = 0; i < t->n; i++)
		lower[i] = 0;
	combo before = best_combo(t, NULL, NULL);
	strata_status st = STRATA_OK;
	c->outcome = OUT_OK;
	for (size_t oi = 0; oi < t->n && c->outcome == OUT_OK; oi++) {
		size_t si = t->order[oi];
		bool ran, ok;
		if ((st = st_tuner_run_checked(t, c, si, &ran, &ok, err)))
			break;
		if (!ran || !ok) {
			c->outcome = ran ? OUT_WRONG : OUT_FAILED;
			break;
		}
		const st_gemm_shape *s = &t->cfg->shapes[si];
		double known = best_known(t, si), best = INFINITY;
		if (!st_tuner_time_shape(t, s, known, 4, 0.6, &best)) {
			c->outcome = OUT_FAILED;
			break;
		}
		if (c->outcome != OUT_OK)
			break;
		c->t[si] = lower[si] = best;
		if (isfinite(before.cost) && best_combo(t, c, lower).cost >= before.cost)
			c->outcome = OUT_SLOWER;
	}
	free(lower);
	return st;
}

/* ---- making candidates -------------------------------------------------------------------------- */

static bool family_valid(const tuner *t, const cand *c)
{
	const strata_device_info *dev = &t->rt->info;
	if (c->family == FAM_DIRECT)
		return st_tune_valid(ST_TK_DIRECT, c->set.v[ST_TK_DIRECT], dev);
	for (size_t i = 0; i < N_INDIRECT_KERNELS; i++)
		if (!st_tune_valid(indirect_kernels[i], c->set.v[indirect_kernels[i]], dev))
			return false;
	return true;
}

static bool seen_before(const tuner *t, const cand *c)
{
	for (size_t i = 0; i < t->n_cands; i++) {
		const cand *o = &t->cands[i];
		if (o->family != c->family)
			continue;
		bool same_vals = true;
		for (int k = 0; k < ST_TK_ROUTINE && same_vals; k++)
			same_vals = memcmp(o->set.v[k], c->set.v[k], sizeof(o->set.v[k])) == 0;
		if (same_vals)
			return true;
	}
	return false;
}

/* Sets the values the 2D register-tiling Xgemm fixes, or the ones the other kernel ignores, so
 * random draws and moves land on legal sets far more often. */
static void xgemm_repair(size_t *v)
{
	if (v[0] == 1) {
		v[3] = 1;  /* KWG */
		v[8] = 1;  /* KWI */
		v[11] = v[12] = v[13] = v[14] = 0;
		v[6] = v[4];  /* MDIMA = MDIMC */
		v[7] = v[5];  /* NDIMB = NDIMC */
		v[2] = v[1];  /* NWG = MWG */
	} else {
		v[15] = 1;  /* KREG */
		if (v[3] < 16)
			v[3] = 16;
	}
}

static void draw_kernel(tuner *t, int k, size_t *v)
{
	for (size_t i = 0; i < st_tune_param_count(k); i++)
		v[i] = st_tune_choice(k, i, rand_below(t, st_tune_choice_count(k, i)));
	if (k == ST_TK_XGEMM)
		xgemm_repair(v);
}

/* One parameter one step up or down its list of legal values. */
static void move_kernel(tuner *t, int k, size_t *v)
{
	size_t i = rand_below(t, st_tune_param_count(k));
	size_t n = st_tune_choice_count(k, i), j = 0;
	while (j < n && st_tune_choice(k, i, j) != v[i])
		j++;
	if (j == n)
		j = 0;
	j = (j == 0 || (j + 1 < n && rand_below(t, 2))) ? j + 1 : j - 1;
	if (j < n)
		v[i] = st_tune_choice(k, i, j);
	if (k == ST_TK_XGEMM)
		xgemm_repair(v);
}

/* Starting points: CLBlast's reference values, then shapes of tiling that suit different kinds
 * of device (small work-groups without local memory for CPUs, local-memory tiles for GPUs). */
static const size_t xgemm_starts[][ST_TUNE_MAX_PARAMS] = {
	/* GEMMK MWG NWG KWG MDIMC NDIMC MDIMA NDIMB KWI VWM VWN STRM STRN SA SB KREG */
	{1, 32, 32, 1, 4, 4, 4, 4, 1, 4, 4, 0, 0, 0, 0, 4},
	{1, 64, 64, 1, 8, 8, 8, 8, 1, 4, 4, 0, 0, 0, 0, 4},
	{0, 32, 32, 32, 4, 4, 4, 4, 2, 4, 4, 0, 0, 0, 0, 1},
	{0, 64, 64, 16, 8, 8, 8, 8, 2, 2, 2, 0, 0, 1, 1, 1},
};
static const size_t direct_starts[][ST_TUNE_MAX_PARAMS] = {
	/* WGD MDIMCD NDIMCD MDIMAD NDIMBD KWID VWMD VWND PADA PADB */
	{16, 4, 4, 4, 4, 2, 4, 4, 0, 0},
	{32, 8, 8, 8, 8, 4, 4, 4, 0, 0},
	{64, 16, 16, 16, 16, 4, 4, 4, 1, 1},
};
#define N_XGEMM_STARTS (sizeof(xgemm_starts) / sizeof(xgemm_starts[0]))
#define N_DIRECT_STARTS (sizeof(direct_starts) / sizeof(direct_starts[0]))

/* Starting point i: the values in force (CLBlast's reference values, or the stored ones) for
 * each path, then the others, alternating between the paths. */
static bool start_point(tuner *t, size_t i, cand *c)
{
	c->set = t->base;
	if (i < 2) {
		c->family = i == 0 ? FAM_INDIRECT : FAM_DIRECT;
		return true;
	}
	size_t j = i - 2, nx = N_XGEMM_STARTS, nd = N_DIRECT_STARTS, both = nx < nd ? nx : nd;
	size_t xi, di;
	bool x;
	if (j < 2 * both) {
		x = j % 2 == 0;
		xi = di = j / 2;
	} else {
		x = nx > nd;
		xi = di = j - both;
	}
	if (x && xi < nx) {
		c->family = FAM_INDIRECT;
		memcpy(c->set.v[ST_TK_XGEMM], xgemm_starts[xi], sizeof(xgemm_starts[xi]));
		return true;
	}
	if (!x && di < nd) {
		c->family = FAM_DIRECT;
		memcpy(c->set.v[ST_TK_DIRECT], direct_starts[di], sizeof(direct_starts[di]));
		return true;
	}
	return false;
}

/* The next candidate: the starting points in turn, then the path that costs more time gets
 * more tries, each a move from its best (two in three) or a fresh random draw. */
static bool next_candidate(tuner *t, cand *c, size_t *n_start)
{
	const combo b = best_combo(t, NULL, NULL);
	while (start_point(t, *n_start, c)) {
		(*n_start)++;
		if (family_valid(t, c) && !seen_before(t, c))
			return true;
	}
	double share[FAM_COUNT];
	path_shares(t, &b, share);
	double total = share[FAM_INDIRECT] + share[FAM_DIRECT];
	double p_ind = total > 0 ? 0.15 + 0.7 * share[FAM_INDIRECT] / total : 0.5;
	for (int attempt = 0; attempt < 20000; attempt++) {
		c->set = t->base;
		c->family = (double)rand_below(t, 1000) < p_ind * 1000 ? FAM_INDIRECT : FAM_DIRECT;
		const cand *from = c->family == FAM_DIRECT ? b.dir : b.ind;
		if (from)
			memcpy(c->set.v, from->set.v, sizeof(c->set.v));
		int k = ST_TK_DIRECT;
		if (c->family == FAM_INDIRECT) /* Xgemm most of the time; a helper kernel now and then */
			k = rand_below(t, 10) < 7 ? ST_TK_XGEMM : indirect_kernels[1 + rand_below(t, N_INDIRECT_KERNELS - 1)];
		if (from && rand_below(t, 3) != 0)
			move_kernel(t, k, c->set.v[k]);
		else
			draw_kernel(t, k, c->set.v[k]);
		if (family_valid(t, c) && !seen_before(t, c))
			return true;
	}
	return false;
}

/* ---- the search ---------------------------------------------------------------------------------- */

static const char *outcome_name(enum outcome o)
{
	switch (o) {
	case OUT_OK: return "ok";
	case OUT_SLOWER: return "slower";
	case OUT_WRONG: return "WRONG RESULTS, rejected";
	default: return "failed to build or run";
	}
}

/* The parameters in force before the search, on the path CLBlast chooses itself. */
static strata_status measure_baseline(tuner *t, double *per_step, bool *ok, strata_error *err)
{
	double *each = t->cfg->before_t;
	cand c = {.family = FAM_INDIRECT};
	*per_step = 0;
	*ok = true;
	for (size_t si = 0; si < t->n && *ok; si++) {
		bool ran;
		strata_status st = st_tuner_run_checked(t, &c, si, &ran, ok, err);
		if (st)
			return st;
		double secs = INFINITY;
		if (!ran || !st_tuner_time_shape(t, &t->cfg->shapes[si], INFINITY, 5, 1.0, &secs))
			*ok = false;
		if (each)
			each[si] = *ok ? secs : INFINITY;
		*per_step += t->w[si] * secs;
	}
	return STRATA_OK;
}

static strata_status final_check(tuner *t, const st_tune_set *set, double *per_step, bool *ok,
                                 strata_error *err)
{
	cand c = {.family = FAM_INDIRECT, .set = *set};
	CLBlastClearCache();
	strata_error why = {0};
	*ok = false;
	if (st_tune_apply(t->rt, set, &why))
		return STRATA_OK;
	*per_step = 0;
	for (size_t si = 0; si < t->n; si++) {
		bool ran, good;
		strata_status st = st_tuner_run_checked(t, &c, si, &ran, &good, err);
		if (st)
			return st;
		if (!ran || !good)
			return STRATA_OK;
		double best;
		if (!st_tuner_time_shape(t, &t->cfg->shapes[si], INFINITY, 5, 1.0, &best))
			return STRATA_OK;
		if (t->cfg->after_t)
			t->cfg->after_t[si] = best;
		*per_step += t->w[si] * best;
	}
	*ok = true;
	return STRATA_OK;
}

static strata_status search(tuner *t, strata_error *err)
{
	st_tuner_result *res = t->res;
	double before = INFINITY;
	bool base_ok;
	st_tuner_report(t, "measuring the parameters in force...\n");
	strata_status st = measure_baseline(t, &before, &base_ok, err);
	if (st)
		return st;
	res->before_s = base_ok ? before : INFINITY;
	if (base_ok)
		st_tuner_report(t, "before: %.1f ms of GEMMs per step\n", before * 1e3);
	else
		st_tuner_report(t, "before: the parameters in force failed or computed wrong results\n");

	size_t n_start = 0;
	for (;;) {
		if (t->n_cands > 0 && st_tuner_now() >= t->deadline)
			break;
		if (t->n_cands == MAX_CANDIDATES || (t->cfg->max_candidates && t->n_cands >= t->cfg->max_candidates))
			break;
		cand *c = &t->cands[t->n_cands];
		double *times = c->t;
		memset(c, 0, sizeof(*c));
		c->t = times;
		if (!next_candidate(t, c, &n_start))
			break;
		double t0 = st_tuner_now();
		if ((st = evaluate(t, c, err)))
			return st;
		t->n_cands++;
		res->tried++;
		res->rejected += c->outcome == OUT_WRONG;
		res->failed += c->outcome == OUT_FAILED;
		char desc[512];
		describe(t, c, desc, sizeof(desc));
		combo b = best_combo(t, NULL, NULL);
		st_tuner_report(t, "%3zu %-8s %-7.1fs %s: %s; best %.1f ms\n", t->n_cands,
		       c->family == FAM_DIRECT ? "direct" : "indirect", st_tuner_now() - t0, desc, outcome_name(c->outcome),
		       b.cost * 1e3);
	}

	combo b = best_combo(t, NULL, NULL);
	if (!isfinite(b.cost))
		return STRATA_OK;
	/* The winner: the chosen path kernels, the switch point, and for a path never used the
	 * values it was last verified with, so the program still builds as measured. */
	st_tune_set win = t->base;
	if (b.ind)
		for (size_t i = 0; i < N_INDIRECT_KERNELS; i++)
			memcpy(win.v[indirect_kernels[i]], b.ind->set.v[indirect_kernels[i]], sizeof(win.v[0]));
	if (b.dir)
		memcpy(win.v[ST_TK_DIRECT], b.dir->set.v[ST_TK_DIRECT], sizeof(win.v[0]));
	win.v[ST_TK_ROUTINE][0] = b.T;
	win.present = (1u << ST_TK_COUNT) - 1;
	double after = INFINITY;
	bool ok;
	st_tuner_report(t, "checking the winner on every shape...\n");
	if ((st = final_check(t, &win, &after, &ok, err)))
		return st;
	if (!ok) {
		st_tuner_report(t, "the winning combination failed its final check; nothing is kept\n");
		res->rejected++;
		return STRATA_OK;
	}
	res->best = win;
	res->after_s = after;
	res->improved = after < res->before_s;
	return STRATA_OK;
}

strata_status st_tuner_run(strata_runtime *rt, const st_tuner_config *cfg, st_tuner_result *out,
                           strata_error *err)
{
	memset(out, 0, sizeof(*out));
	out->before_s = out->after_s = INFINITY;
	if (cfg->n_shapes == 0)
		return st_fail(err, STRATA_ERR_INVALID, "no GEMM shapes to tune for");
	tuner t = {.rt = rt, .cfg = cfg, .n = cfg->n_shapes, .res = out};
	t.rng = cfg->seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
	for (int k = 0; k < ST_TK_COUNT; k++)
		st_tune_reference(k, t.base.v[k]);
	if (cfg->incumbent)
		for (int k = 0; k < ST_TK_ROUTINE; k++)
			if (cfg->incumbent->present & (1u << k))
				memcpy(t.base.v[k], cfg->incumbent->v[k], sizeof(t.base.v[k]));
	strata_status st = STRATA_OK;
	t.w = calloc(t.n, sizeof(double));
	t.flops = calloc(t.n, sizeof(double));
	t.order = calloc(t.n, sizeof(size_t));
	t.cands = calloc(MAX_CANDIDATES, sizeof(cand));
	double *times = calloc((size_t)MAX_CANDIDATES * t.n, sizeof(double));
	if (!t.w || !t.flops || !t.order || !t.cands || !times) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	for (size_t i = 0; i < MAX_CANDIDATES; i++)
		t.cands[i].t = times + i * t.n;
	for (size_t i = 0; i < t.n; i++) {
		t.w[i] = cfg->shapes[i].count ? cfg->shapes[i].count : 1;
		t.flops[i] = 2.0 * (double)mnk(&cfg->shapes[i]);
	}
	shape_order(&t);
	t.deadline = st_tuner_now() + cfg->budget_seconds;
	if ((st = st_tuner_setup_buffers(&t, err)) == STRATA_OK)
		st = search(&t, err);
	/* A losing candidate may still be applied: leave the best verified set in force. */
	if (st == STRATA_OK && isfinite(out->after_s)) {
		CLBlastClearCache();
		st = st_tune_apply(rt, &out->best, err);
	}
	if (st == STRATA_OK && cfg->route_seconds > 0)
		st = st_tuner_search_routes(&t, cfg->route_seconds, err);
out_free:
	if (t.a)
		clReleaseMemObject(t.a);
	if (t.b)
		clReleaseMemObject(t.b);
	if (t.c_inner)
		clReleaseMemObject(t.c_inner);
	if (t.c)
		clReleaseMemObject(t.c);
	free(t.ha);
	free(t.hb);
	free(t.hc);
	free(times);
	free(t.cands);
	free(t.order);
	free(t.flops);
	free(t.w);
	return st;
}

/* ---- strata_tune: record, search, store ------------------------------------------------------- */

/* The runtime's GEMM observer while a step is recorded. */
static void record_gemm(void *log, const strata_gemm *g)
{
	st_gemm_log_add(log, g);
}

strata_status st_tune_record(strata_runtime *rt, strata_model *model, uint32_t batch, st_gemm_log *log,
                             strata_error *err)
{
	strata_session *s = NULL;
	strata_status st = strata_session_create(rt, model, batch, 1, &s, err);
	if (st)
		return st;
	if ((st = st_session_enable_training(s, err)))
		goto out_destroy;
	/* Defined inputs and output gradients, on every input and output of the graph. */
	if ((st = st_tuner_feed_step(s, err)))
		goto out_destroy;
	st_runtime_observe_gemms(rt, record_gemm, log);
	if ((st = st_session_forward_device(s, batch, true, err)) == STRATA_OK &&
	    (st = st_session_backward(s, batch, false, NULL, err)) == STRATA_OK)
		st = st_finish(rt, err);
	st_runtime_observe_gemms(rt, NULL, NULL);
	if (st == STRATA_OK && log->out_of_memory)
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory recording GEMM shapes");
out_destroy:
	strata_session_destroy(s);
	return st;
}

static void print_table(FILE *out, const st_gemm_shape *shapes, size_t n, const double *before,
                        const double *after)
{
	fprintf(out, "%-4s %8s %6s %6s %6s %11s %9s %11s %9s\n", "op", "m", "n", "k", "calls", "before ms",
	        "GFLOP/s", "after ms", "GFLOP/s");
	double tb = 0, ta = 0, flop = 0;
	for (size_t i = 0; i < n; i++) {
		const st_gemm_shape *s = &shapes[i];
		double f = 2.0 * s->m * s->n * s->k;
		fprintf(out, "%c%c   %8zu %6zu %6zu %6u %11.2f %9.1f", s->trans_a ? 'T' : 'N', s->trans_b ? 'T' : 'N', s->m,
		        s->n, s->k, s->count, before[i] * 1e3, f / before[i] / 1e9);
		if (isfinite(after[i]))
			fprintf(out, " %11.2f %9.1f", after[i] * 1e3, f / after[i] / 1e9);
		fputc('\n', out);
		tb += s->count * before[i];
		ta += s->count * after[i];
		flop += s->count * f;
	}
	fprintf(out, "%-4s %29s %11.2f %9.1f", "step", "", tb * 1e3, flop / tb / 1e9);
	if (isfinite(ta))
		fprintf(out, " %11.2f %9.1f", ta * 1e3, flop / ta / 1e9);
	fputc('\n', out);
}

strata_status strata_tune(strata_runtime *rt, strata_model *model, const strata_tune_options *options,
                          strata_tune_result *result, strata_error *err)
{
	strata_tune_options o = {.size = sizeof(o)};
	if (options)
		memcpy(&o, options, options->size < sizeof(o) ? options->size : sizeof(o));
	memset(result, 0, sizeof(*result));
	result->before_ms = result->after_ms = -1;
	uint32_t batch = o.batch_size ? o.batch_size : strata_model_training(model).batch_size;
	if (batch == 0)
		batch = 1;
	st_gemm_log log = {0};
	strata_status st = st_tune_record(rt, model, batch, &log, err);
	if (st)
		goto out_free;
	if (log.n == 0) {
		st = st_fail(err, STRATA_ERR_INVALID, "model '%s' runs no GEMMs: nothing to tune",
		             strata_model_name(model));
		goto out_free;
	}
	result->shapes = (uint32_t)log.n;
	for (size_t i = 0; i < log.n; i++) {
		result->gemms += log.shapes[i].count;
		result->gflop += log.shapes[i].count * 2.0 * log.shapes[i].m * log.shapes[i].n * log.shapes[i].k / 1e9;
	}
	if (o.report)
		fprintf(o.report, "%s at batch %u: %u GEMM shapes, %u calls, %.2f GFLOP per training step\n",
		        strata_model_name(model), batch, result->shapes, result->gemms, result->gflop);

	st_tunables rt_tunables_before = rt->tunables;
	st_tune_set incumbent;
	strata_error ignored = {0};
	bool have_incumbent = st_tune_load(o.cache_dir, &rt->info, &incumbent, &ignored) == STRATA_OK;
	double *before = calloc(log.n, sizeof(double)), *after = calloc(log.n, sizeof(double));
	if (!before || !after) {
		free(before);
		free(after);
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	for (size_t i = 0; i < log.n; i++)
		after[i] = INFINITY;
	/* Half the time for CLBlast's parameters, 30% for the per-shape engine choice (on a CPU it
	 * decides most of the speed; on a GPU it ends after one plan per shape), the rest for the
	 * tunables of Strata's other kernels. */
	double budget = o.budget_seconds > 0 ? o.budget_seconds : 240;
	st_tuner_config cfg = {
		.shapes = log.shapes,
		.n_shapes = log.n,
		.budget_seconds = budget * 0.5,
		.route_seconds = budget * 0.3,
		.seed = o.seed,
		.report = o.report,
		.incumbent = have_incumbent ? &incumbent : NULL,
		.before_t = before,
		.after_t = after,
	};
	st_tuner_result r;
	if ((st = st_tuner_run(rt, &cfg, &r, err)))
		goto out_tables;
	result->tried = r.tried;
	result->rejected = r.rejected;
	result->failed = r.failed;
	/* With every shape routed, the step's figures are the routed ones: the engines in force
	 * before against the winners. */
	bool routed = r.n_routes == log.n && isfinite(r.routed_s);
	double before_s = routed ? r.current_s : r.before_s, after_s = routed ? r.routed_s : r.after_s;
	result->before_ms = isfinite(before_s) ? before_s * 1e3 : -1;
	result->after_ms = isfinite(after_s) ? after_s * 1e3 : -1;
	result->improved = routed ? r.routed_s < r.current_s || r.improved : r.improved;
	if (o.report)
		print_table(o.report, log.shapes, log.n, before, after);
	/* CLBlast's winner if it improved, else what was stored, with the routes. */
	st_tune_set keep = {0};
	if (r.improved)
		keep = r.best;
	else if (have_incumbent)
		keep = incumbent;
	keep.n_routes = r.n_routes;
	memcpy(keep.routes, r.routes, r.n_routes * sizeof(keep.routes[0]));
	double kernels_before, kernels_after;
	if ((st = st_tune_kernel_tunables(rt, model, batch, budget * 0.2, o.report, &keep.tunables, &kernels_before,
	                                  &kernels_after, err)))
		goto out_tables;
	keep.has_tunables = true;
	bool kernels_changed = memcmp(&keep.tunables, &rt_tunables_before, sizeof(keep.tunables)) != 0;
	if (o.report)
		fprintf(o.report, "training step: %.2f ms -> %.2f ms%s\n", kernels_before * 1e3,
		        kernels_after * 1e3, kernels_changed ? "" : " (values in force kept)");
	if ((result->improved || kernels_changed) && (st = st_tune_apply(rt, &keep, err)))
		goto out_tables;
	if ((result->improved || kernels_changed) && !o.no_store) {
		char note[256];
		snprintf(note, sizeof(note), "tuned on %s at batch %u: %.1f ms of GEMMs per step before, %.1f ms after",
		         strata_model_name(model), batch, result->before_ms, result->after_ms);
		if ((st = st_tune_store(o.cache_dir, &rt->info, &keep, note, result->path, sizeof(result->path), err)))
			goto out_tables;
		result->stored = true;
	}
out_tables:
	free(before);
	free(after);
out_free:
	st_gemm_log_free(&log);
	return st;
}
