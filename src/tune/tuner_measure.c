/* What both GEMM searches share (tuner.c, tuner_routes.c): the clock, the report, and running
 * one shape, timed or checked exactly (inputs are small integers, so any correct summation
 * order gives the exact product; the whole of C is checked against A(Bx) and (yA)B for random
 * sign vectors, and guard zones around C must be untouched). */
#include <clblast_c.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tune/tuner_private.h"

double st_tuner_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

uint64_t st_tuner_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* ---- buffers and exact checking ------------------------------------------------------------ */

static size_t a_elems(const st_gemm_shape *s)
{
	return s->m * s->k;
}

static size_t b_elems(const st_gemm_shape *s)
{
	return s->k * s->n;
}

strata_status st_tuner_setup_buffers(tuner *t, strata_error *err)
{
	size_t na = 1, nb = 1, nc = 1, kmax = 1;
	for (size_t i = 0; i < t->n; i++) {
		const st_gemm_shape *s = &t->cfg->shapes[i];
		na = a_elems(s) > na ? a_elems(s) : na;
		nb = b_elems(s) > nb ? b_elems(s) : nb;
		nc = s->m * s->n > nc ? s->m * s->n : nc;
		kmax = s->k > kmax ? s->k : kmax;
	}
	nc += 2 * GUARD;
	/* |sum| <= k * amp^2 must stay below 2^24 for every partial sum to be exact. */
	t->amp = (double)kmax * 4.0 < 16777216.0 ? 2.0f : 1.0f;
	t->ha = malloc(na * sizeof(float));
	t->hb = malloc(nb * sizeof(float));
	t->hc = malloc(nc * sizeof(float));
	if (!t->ha || !t->hb || !t->hc)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory for the tuner's matrices");
	uint64_t r = t->cfg->seed * 2 + 0x9E3779B97F4A7C15ull;
	int span = (int)t->amp * 2 + 1;
	for (size_t i = 0; i < na; i++)
		t->ha[i] = (float)((int)(st_tuner_rand(&r) % (uint64_t)span) - (int)t->amp);
	for (size_t i = 0; i < nb; i++)
		t->hb[i] = (float)((int)(st_tuner_rand(&r) % (uint64_t)span) - (int)t->amp);
	strata_tensor ta, tb, tc;
	strata_status st;
	if ((st = st_tensor_alloc(t->rt, &ta, na * sizeof(float), "the tuner's A", err)))
		return st;
	t->a = ta.mem;
	if ((st = st_tensor_alloc(t->rt, &tb, nb * sizeof(float), "the tuner's B", err)))
		return st;
	t->b = tb.mem;
	if ((st = st_tensor_alloc(t->rt, &tc, nc * sizeof(float), "the tuner's C", err)))
		return st;
	t->c = tc.mem;
	cl_buffer_region region = {GUARD * sizeof(float), (nc - GUARD) * sizeof(float)};
	cl_int rc;
	t->c_inner = clCreateSubBuffer(t->c, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, &rc);
	if (rc != CL_SUCCESS)
		return st_cl_fail(err, rc, "clCreateSubBuffer for the tuner's C");
	rc = clEnqueueWriteBuffer(t->rt->queue, t->a, CL_TRUE, 0, na * sizeof(float), t->ha, 0, NULL, NULL);
	if (rc == CL_SUCCESS)
		rc = clEnqueueWriteBuffer(t->rt->queue, t->b, CL_TRUE, 0, nb * sizeof(float), t->hb, 0, NULL, NULL);
	return rc == CL_SUCCESS ? STRATA_OK : st_cl_fail(err, rc, "uploading the tuner's matrices");
}

/* out = M v, or M^T v when `trans`, for M stored rows x cols, row-major. */
static void mat_vec(const float *mat, size_t rows, size_t cols, bool trans, const double *v, double *out)
{
	if (!trans) {
		for (size_t r = 0; r < rows; r++) {
			const float *row = mat + r * cols;
			double s = 0;
			for (size_t c = 0; c < cols; c++)
				s += row[c] * v[c];
			out[r] = s;
		}
		return;
	}
	for (size_t c = 0; c < cols; c++)
		out[c] = 0;
	for (size_t r = 0; r < rows; r++) {
		const float *row = mat + r * cols;
		double vr = v[r];
		for (size_t c = 0; c < cols; c++)
			out[c] += row[c] * vr;
	}
}

static void random_signs(uint64_t *r, double *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		v[i] = st_tuner_rand(r) & 1 ? 1.0 : -1.0;
}

static bool same(const double *x, const double *y, size_t n, double tol)
{
	for (size_t i = 0; i < n; i++)
		if (!(fabs(x[i] - y[i]) <= tol)) /* NaN fails too */
			return false;
	return true;
}

/* hc holds GUARD floats, C (m x n), GUARD floats. */
static strata_status check_result(tuner *t, const st_gemm_shape *s, bool *ok, strata_error *err)
{
	*ok = false;
	size_t m = s->m, n = s->n, k = s->k;
	const float *c = t->hc + GUARD;
	for (size_t i = 0; i < GUARD; i++)
		if (t->hc[i] != FILL_GUARD || c[m * n + i] != FILL_GUARD)
			return STRATA_OK;
	size_t big = m > n ? m : n;
	big = big > k ? big : k;
	double *buf = malloc(sizeof(double) * (4 * big + 4));
	if (!buf)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory checking a GEMM");
	double *x = buf, *u = x + big + 1, *want = u + big + 1, *have = want + big + 1;
	/* Exact while |C| stays below 2^24; beyond it, a rounding bound in the same units. */
	double tol = (double)k * t->amp * t->amp < 16777216.0 ? 0.0 : (double)k * t->amp * t->amp * 1e-6 * big;
	size_t a_rows = s->trans_a ? k : m, a_cols = s->trans_a ? m : k;
	size_t b_rows = s->trans_b ? n : k, b_cols = s->trans_b ? k : n;
	uint64_t r = 0xD1B54A32D192ED03ull ^ (m * 31 + n * 17 + k);
	bool good = true;
	/* Rows: C x == A (B x), twice, so errors that cancel for one x are caught by the other. */
	for (int pass = 0; pass < 2 && good; pass++) {
		random_signs(&r, x, n);
		mat_vec(t->hb, b_rows, b_cols, s->trans_b, x, u);      /* u = op(B) x, length k */
		mat_vec(t->ha, a_rows, a_cols, s->trans_a, u, want);   /* want = op(A) u, length m */
		mat_vec(c, m, n, false, x, have);
		good = same(want, have, m, tol);
	}
	/* Columns: y^T C == (y^T A) B. */
	if (good) {
		random_signs(&r, x, m);
		mat_vec(t->ha, a_rows, a_cols, !s->trans_a, x, u);     /* u = op(A)^T y, length k */
		mat_vec(t->hb, b_rows, b_cols, !s->trans_b, u, want);  /* want = op(B)^T u, length n */
		mat_vec(c, m, n, true, x, have);
		good = same(want, have, n, tol);
	}
	free(buf);
	*ok = good;
	return STRATA_OK;
}

/* ---- running one GEMM ----------------------------------------------------------------------- */

/* One SGEMM on shape s, waited for; false when CLBlast refused or failed it. */
static bool run_gemm(tuner *t, const st_gemm_shape *s, double *seconds)
{
	double t0 = st_tuner_now();
	if (t->tile) {
		strata_tensor a = {.mem = t->a}, b = {.mem = t->b}, c = {.mem = t->c_inner};
		strata_gemm g = {
			.size = sizeof(g), .trans_a = s->trans_a, .trans_b = s->trans_b, .m = s->m, .n = s->n, .k = s->k,
			.alpha = 1.0f, .a = &a, .lda = s->trans_a ? s->m : s->k, .b = &b, .ldb = s->trans_b ? s->k : s->n,
			.c = &c, .ldc = s->n,
		};
		strata_error ignored = {0};
		bool ok = st_gemm_tile_fits(&g) && st_gemm_tile_run(t->rt, "tune", &g, t->tile, NULL, &ignored) == STRATA_OK;
		ok = clFinish(t->rt->queue) == CL_SUCCESS && ok;
		*seconds = st_tuner_now() - t0;
		return ok;
	}
	cl_event ev = NULL;
	CLBlastTranspose ta = s->trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
	CLBlastTranspose tb = s->trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
	CLBlastStatusCode rc = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, s->m, s->n, s->k, 1.0f, t->a, 0,
	                                    s->trans_a ? s->m : s->k, t->b, 0, s->trans_b ? s->k : s->n, 0.0f,
	                                    t->c_inner, 0, s->n, &t->rt->queue, &ev);
	if (ev)
		clReleaseEvent(ev);
	cl_int frc = clFinish(t->rt->queue);
	*seconds = st_tuner_now() - t0;
	return rc == CLBlastSuccess && frc == CL_SUCCESS;
}

static strata_status fill(tuner *t, float value, size_t offset, size_t count, strata_error *err)
{
	cl_int rc = clEnqueueFillBuffer(t->rt->queue, t->c, &value, sizeof(value), offset * sizeof(float),
	                                count * sizeof(float), 0, NULL, NULL);
	return rc == CL_SUCCESS ? STRATA_OK : st_cl_fail(err, rc, "filling the tuner's C");
}

/* The fastest of up to `runs` runs of shape s (at least two, unless the first is already far
 * slower than `known`, the best seen on that shape); stops early once `spend` seconds are
 * used. Runs of the same parameters vary by 2x on a shared machine, mostly in the large
 * copies of the indirect path, so one run decides only that a candidate is hopeless. */
bool st_tuner_time_shape(tuner *t, const st_gemm_shape *s, double known, int runs, double spend, double *best)
{
	double spent = 0, secs;
	*best = INFINITY;
	for (int rep = 0; rep < runs; rep++) {
		if (!run_gemm(t, s, &secs))
			return false;
		*best = secs < *best ? secs : *best;
		spent += secs;
		if ((rep == 0 && *best > 1.5 * known) || (rep >= 1 && spent > spend))
			break;
	}
	return true;
}

/* Runs shape s once into a freshly marked C and checks the whole result. */
strata_status st_tuner_run_checked(tuner *t, const cand *c, size_t si, bool *ran, bool *ok, strata_error *err)
{
	const st_gemm_shape *s = &t->cfg->shapes[si];
	size_t mn = s->m * s->n;
	strata_status st;
	*ran = *ok = false;
	if ((st = fill(t, FILL_GUARD, 0, GUARD, err)) || (st = fill(t, FILL_C, GUARD, mn, err)) ||
	    (st = fill(t, FILL_GUARD, GUARD + mn, GUARD, err)))
		return st;
	double secs;
	if (!run_gemm(t, s, &secs))
		return STRATA_OK;
	*ran = true;
	cl_int rc = clEnqueueReadBuffer(t->rt->queue, t->c, CL_TRUE, 0, (mn + 2 * GUARD) * sizeof(float), t->hc, 0,
	                                NULL, NULL);
	if (rc != CL_SUCCESS)
		return st_cl_fail(err, rc, "reading the tuner's C");
	if (t->cfg->hook)
		t->cfg->hook(t->cfg->hook_user, &c->set, s, t->hc + GUARD, mn);
	return check_result(t, s, ok, err);
}

/* ---- the objective ---------------------------------------------------------------------------- */

void st_tuner_report(const tuner *t, const char *fmt, ...)
{
	if (!t->cfg->report)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(t->cfg->report, fmt, ap);
	va_end(ap);
	fflush(t->cfg->report);
}
