/* The self-organizing map (issue 15) against a host reference in double precision:
 *  - the training forward pass: pca initialization from the first batch, then the Kohonen step of
 *    every batch (best-matching units, each neighbourhood function on both topologies, each decay),
 *    and the output (best unit's row and column, the distance to every unit);
 *  - random initialization: every unit starts as a sample of the first batch, the same for the
 *    same seed and different for another;
 *  - training without labels (strata_fit on a data set of images only) and the map's figures
 *    (quantization and topographic errors, purity, units used) on a codebook set by hand. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/session.h"
#include "support.h"

enum { ROWS = 3, COLS = 4, UNITS = ROWS * COLS, F = 6, BATCH = 8, STEPS = 4, TOTAL = 10 };

/* ---- The host reference: the rule plugins/som/som.c documents, in double ---------------------- */

static void position(int j, int hexagonal, double *x, double *y)
{
	int r = j / COLS, c = j % COLS;
	*x = c + (hexagonal && (r & 1) ? 0.5 : 0.0);
	*y = hexagonal ? r * sqrt(3.0) / 2.0 : r;
}

static double neighbourhood(const char *function, double dx, double dy, double s)
{
	double p = dx * dx + dy * dy;
	if (!strcmp(function, "gaussian"))
		return exp(-p / (2 * s * s));
	if (!strcmp(function, "mexican_hat"))
		return exp(-p / (2 * s * s)) * (1 - p / (s * s));
	if (!strcmp(function, "bubble"))
		return fabs(dx) < s && fabs(dy) < s ? 1.0 : 0.0;
	return fmax(1 - fabs(dx) / s, 0.0) * fmax(1 - fabs(dy) / s, 0.0);
}

static double decayed(const char *decay, double x, double t, double T)
{
	if (!strcmp(decay, "none"))
		return x;
	double r = (t < T ? t : T) / T;
	return !strcmp(decay, "asymptotic") ? x / (1 + 2 * r) : x * (1 - r);
}

static int best_unit(const double *w, const float *x)
{
	int best = 0;
	double best_d = INFINITY;
	for (int j = 0; j < UNITS; j++) {
		double d = 0;
		for (int k = 0; k < F; k++)
			d += (x[k] - w[j * F + k]) * (x[k] - w[j * F + k]);
		if (d < best_d) {
			best_d = d;
			best = j;
		}
	}
	return best;
}

/* A principal component of xc (n x F) by power iteration, orthogonal to prev; its sign makes the
 * largest element positive; *lambda its eigenvalue of xc^T xc. */
static void component(const double *xc, int n, const double *prev, double *v, double *lambda)
{
	for (int k = 0; k < F; k++)
		v[k] = 1.0 + 0.1 * k;
	for (int it = 0; it < 2000; it++) {
		double z[F] = {0};
		for (int i = 0; i < n; i++) {
			double y = 0;
			for (int k = 0; k < F; k++)
				y += xc[i * F + k] * v[k];
			for (int k = 0; k < F; k++)
				z[k] += xc[i * F + k] * y;
		}
		if (prev) {
			double dot = 0;
			for (int k = 0; k < F; k++)
				dot += z[k] * prev[k];
			for (int k = 0; k < F; k++)
				z[k] -= dot * prev[k];
		}
		double norm = 0, big = 0;
		for (int k = 0; k < F; k++) {
			norm += z[k] * z[k];
			big = fabs(z[k]) > fabs(big) ? z[k] : big;
		}
		norm = sqrt(norm);
		*lambda = norm;
		for (int k = 0; k < F; k++)
			v[k] = z[k] / norm * (big < 0 ? -1 : 1);
	}
}

static void pca_init(const float *x, int n, double *w)
{
	double mean[F] = {0}, xc[BATCH * F], v1[F], v2[F], l1, l2;
	for (int i = 0; i < n; i++)
		for (int k = 0; k < F; k++)
			mean[k] += x[i * F + k] / (double)n;
	for (int i = 0; i < n; i++)
		for (int k = 0; k < F; k++)
			xc[i * F + k] = x[i * F + k] - mean[k];
	component(xc, n, NULL, v1, &l1);
	component(xc, n, v1, v2, &l2);
	double s1 = sqrt(l1 / (n - 1)), s2 = sqrt(l2 / (n - 1));
	for (int j = 0; j < UNITS; j++) {
		double a = -1 + 2.0 * (j % COLS) / (COLS - 1), b = -1 + 2.0 * (j / COLS) / (ROWS - 1);
		for (int k = 0; k < F; k++)
			w[j * F + k] = mean[k] + a * s1 * v1[k] + b * s2 * v2[k];
	}
}

typedef struct som_case {
	const char *function, *topology, *decay;
	double sigma, rate;
	int decay_steps; /* 0: the run's TOTAL */
} som_case;

static void kohonen_step(const som_case *c, double *w, const float *x, int n, int step)
{
	int hex = !strcmp(c->topology, "hexagonal");
	double T = c->decay_steps ? c->decay_steps : TOTAL;
	double s = decayed(c->decay, c->sigma, step, T), rate = decayed(c->decay, c->rate, step, T) / n;
	if (rate == 0) /* linear decay at its end: no step (and a radius of 0) */
		return;
	double h[BATCH][UNITS], old[UNITS * F];
	memcpy(old, w, sizeof(old));
	for (int i = 0; i < n; i++) {
		double bx, by, ux, uy;
		position(best_unit(old, x + i * F), hex, &bx, &by);
		for (int j = 0; j < UNITS; j++) {
			position(j, hex, &ux, &uy);
			h[i][j] = neighbourhood(c->function, ux - bx, uy - by, s);
		}
	}
	for (int j = 0; j < UNITS; j++)
		for (int k = 0; k < F; k++) {
			double sum = 0;
			for (int i = 0; i < n; i++)
				sum += h[i][j] * (x[i * F + k] - old[j * F + k]);
			w[j * F + k] = old[j * F + k] + rate * sum;
		}
}

/* ---- The device ------------------------------------------------------------------------------ */

static size_t codebook_index(ts_net *net)
{
	const char *name;
	strata_shape shape;
	for (size_t i = 0; i < strata_session_weight_count(net->s, 0); i++)
		if (strata_session_weight_info(net->s, 0, i, &name, &shape) == STRATA_OK && !strcmp(name, "codebook"))
			return i;
	ck_abort_msg("no codebook");
	return 0;
}

static void read_codebook(ts_net *net, float *w)
{
	strata_error err = {0};
	ck_assert_int_eq(strata_session_read_weight(net->s, 0, codebook_index(net), w, UNITS * F, &err), STRATA_OK);
}

static void forward(ts_device *dev, ts_net *net, const float *x, bool training, uint64_t step, float *y)
{
	strata_error err = {0};
	net->s->step = step;
	net->s->total_steps = TOTAL;
	ts_tensor_write(dev->rt, &net->s->input, 0, x, BATCH * F);
	strata_status st = st_session_forward_device(net->s, BATCH, training, &err);
	ck_assert_msg(st == STRATA_OK, "forward: %s", err.message);
	ts_tensor_read(dev->rt, st_session_output(net->s), y, BATCH * (UNITS + 2));
}

/* Samples spread mostly along two directions, so the two first components stand apart (the
 * power iteration converges) and the map unfolds over them. */
static void make_batch(float *x, unsigned seed)
{
	float coef[BATCH * 3];
	ts_fill_random(coef, BATCH * 3, seed, -1.0f, 1.0f);
	for (int i = 0; i < BATCH; i++)
		for (int k = 0; k < F; k++)
			x[i * F + k] = 0.5f + 2.0f * coef[i * 3] * (k % 2 ? 0.6f : -0.4f) + 0.8f * coef[i * 3 + 1] * (k < 3 ? 0.5f : -0.5f) +
			               0.05f * coef[i * 3 + 2] * (float)(k - 2);
}

static const som_case cases[] = {
	{"gaussian", "rectangular", "asymptotic", 1.5, 0.5, 0},
	{"mexican_hat", "hexagonal", "linear", 2.0, 0.3, 0},
	{"bubble", "rectangular", "none", 1.5, 0.4, 0},
	{"triangle", "hexagonal", "asymptotic", 2.5, 0.6, 6},
	{"gaussian", "hexagonal", "linear", 1.0, 0.9, 3}, /* past decay_steps: rate 0, the map stays */
};

START_TEST(test_training_steps)
{
	const som_case *c = &cases[_i];
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
	         "name: s\ninput: {shape: [%d]}\nlayers:\n  - {type: som, rows: %d, columns: %d, sigma: %g, "
	         "learning_rate: %g, neighborhood_function: %s, topology: %s, decay: %s, decay_steps: %d, "
	         "initializer: pca}\n",
	         F, ROWS, COLS, c->sigma, c->rate, c->function, c->topology, c->decay, c->decay_steps);
	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev, yaml, BATCH, 3);
	float x[BATCH * F], y[BATCH * (UNITS + 2)], w[UNITS * F];
	double ref[UNITS * F];
	for (int step = 0; step < STEPS; step++) {
		make_batch(x, 100 + (unsigned)step);
		if (step == 0)
			pca_init(x, BATCH, ref);
		/* The output reads the codebook before the step. */
		double before[UNITS * F];
		memcpy(before, ref, sizeof(before));
		forward(&dev, &net, x, true, (uint64_t)step, y);
		kohonen_step(c, ref, x, BATCH, step);
		for (int i = 0; i < BATCH; i++) {
			int b = best_unit(before, x + i * F);
			ck_assert_msg(y[i * (UNITS + 2)] == b / COLS && y[i * (UNITS + 2) + 1] == b % COLS,
			              "%s step %d sample %d: unit (%g, %g), the reference's %d", c->function, step, i,
			              (double)y[i * (UNITS + 2)], (double)y[i * (UNITS + 2) + 1], b);
			for (int j = 0; j < UNITS; j++) {
				double d = 0;
				for (int k = 0; k < F; k++)
					d += (x[i * F + k] - before[j * F + k]) * (x[i * F + k] - before[j * F + k]);
				ck_assert_double_eq_tol(y[i * (UNITS + 2) + 2 + j], sqrt(d), 2e-3);
			}
		}
		read_codebook(&net, w);
		for (int k = 0; k < UNITS * F; k++)
			ck_assert_msg(fabs(w[k] - ref[k]) < 1e-3, "%s/%s/%s step %d: codebook[%d] %.6f, the reference's %.6f",
			              c->function, c->topology, c->decay, step, k, (double)w[k], ref[k]);
	}
	/* Inference leaves the codebook as it is. */
	forward(&dev, &net, x, false, STEPS, y);
	float after[UNITS * F];
	read_codebook(&net, after);
	ck_assert_mem_eq(w, after, sizeof(w));
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* Random initialization with a rate too small to move the units: each is a sample of the batch. */
static void random_codebook(ts_device *dev, uint64_t seed, float *w)
{
	const char *yaml = "name: r\ninput: {shape: [6]}\nlayers:\n"
	                   "  - {type: som, rows: 3, columns: 4, learning_rate: 1e-7, initializer: random}\n";
	ts_net net = ts_net_open(dev, yaml, BATCH, seed);
	net.s->seed = seed;
	float x[BATCH * F], y[BATCH * (UNITS + 2)];
	make_batch(x, 7);
	forward(dev, &net, x, true, 0, y);
	read_codebook(&net, w);
	ts_net_close(&net);
	int used[BATCH] = {0}, distinct = 0;
	for (int j = 0; j < UNITS; j++) {
		int match = -1;
		for (int i = 0; i < BATCH && match < 0; i++) {
			bool same = true;
			for (int k = 0; k < F; k++)
				same &= fabs(w[j * F + k] - x[i * F + k]) < 1e-5;
			if (same)
				match = i;
		}
		ck_assert_msg(match >= 0, "unit %d is no sample of the first batch", j);
		distinct += !used[match]++;
	}
	ck_assert_int_ge(distinct, 4); /* 12 draws among 8 samples */
}

START_TEST(test_random_initialization)
{
	ts_device dev = ts_device_open();
	float a[UNITS * F], b[UNITS * F], c[UNITS * F];
	random_codebook(&dev, 1, a);
	random_codebook(&dev, 1, b);
	random_codebook(&dev, 2, c);
	ck_assert_mem_eq(a, b, sizeof(a));
	ck_assert(memcmp(a, c, sizeof(a)) != 0);
	ts_device_close(&dev);
}
END_TEST

/* A 2 x 2 map of 2 features with prototypes set by hand, 6 samples with labels: the figures by
 * hand. Then strata_fit trains it on the images alone. */
START_TEST(test_map_figures)
{
	char dir[256];
	ts_tmpdir_make(dir, sizeof(dir), "som");
	char *images = ts_join(dir, "images"), *labels = ts_join(dir, "labels");
	/* Pixels (bytes, scale 1/100): samples at or near units 0, 0, 1, 3, 3 and 0, no two units at
	 * the same distance from one (a tie would make the figures depend on rounding). */
	const uint8_t px[6 * 2] = {0, 0, 10, 0, 100, 0, 100, 100, 90, 100, 40, 40};
	const uint8_t lab[6] = {1, 2, 2, 3, 3, 1};
	uint32_t dims[2] = {6, 2};
	ts_write_idx(images, 0x08, 2, dims, px);
	ts_write_idx(labels, 0x08, 1, dims, lab);
	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev, "name: m\ninput: {shape: [2]}\nlayers:\n  - {type: som, rows: 2, columns: 2}\n", 4, 1);
	strata_error err = {0};
	/* Units (0,0) (0,1) (1,0) (1,1): at (0,0), (1,0), (0,1), (1,1). */
	const float w[8] = {0, 0, 1, 0, 0, 1, 1, 1};
	ck_assert_int_eq(strata_session_write_weight(net.s, 0, 0, w, 8, &err), STRATA_OK);
	strata_dataset_options o = {.size = sizeof(o), .images = images, .labels = labels, .scale = 0.01, .num_classes = 4};
	strata_dataset *ds = NULL;
	ck_assert_msg(strata_dataset_load(dev.rt, &o, &ds, &err) == STRATA_OK, "%s", err.message);
	strata_map_result r;
	ck_assert_msg(strata_evaluate_map(net.s, ds, 4, &r, &err) == STRATA_OK, "%s", err.message);
	/* Distances to the best unit: 0, 0.1, 0, 0, 0.1, sqrt(0.32). */
	ck_assert_uint_eq(r.count, 6);
	ck_assert_double_eq_tol(r.quantization_error, (0.2 + sqrt(0.32)) / 6, 1e-5);
	/* Every pair of units of a 2 x 2 rectangular grid is adjacent: no topographic error. */
	ck_assert_double_eq_tol(r.topographic_error, 0.0, 1e-12);
	/* Unit 0 holds labels 1, 2, 1 (2 agree), unit 1 holds 2, unit 3 holds 3, 3. */
	ck_assert(r.has_purity);
	ck_assert_double_eq_tol(r.purity, 5.0 / 6.0, 1e-12);
	ck_assert_uint_eq(r.units_used, 3);
	ck_assert_uint_eq(r.units, 4);
	strata_dataset_free(ds);
	ts_net_close(&net);

	/* A 1 x 4 line: a sample whose two best units are two apart is a topographic error. */
	net = ts_net_open(&dev, "name: l\ninput: {shape: [2]}\nlayers:\n  - {type: som, rows: 1, columns: 4}\n", 4, 1);
	const float line[8] = {0, 0, 1, 1.2f, 0.1f, 0, 5, 5};
	ck_assert_int_eq(strata_session_write_weight(net.s, 0, 0, line, 8, &err), STRATA_OK);
	o.labels = NULL; /* no labels: no purity */
	o.num_classes = 0;
	ck_assert_msg(strata_dataset_load(dev.rt, &o, &ds, &err) == STRATA_OK, "%s", err.message);
	ck_assert(strata_evaluate_map(net.s, ds, 4, &r, &err) == STRATA_OK);
	/* Units 0 and 2 lie close in the input space, two apart on the map: samples near them are
	 * errors (by hand in double: no two distances of a sample tie). */
	ck_assert(!r.has_purity);
	double te = 0;
	for (int i = 0; i < 6; i++) {
		double d[4];
		for (int j = 0; j < 4; j++)
			d[j] = hypot(px[2 * i] / 100.0 - line[2 * j], px[2 * i + 1] / 100.0 - line[2 * j + 1]);
		int b = 0, s = -1;
		for (int j = 1; j < 4; j++)
			b = d[j] < d[b] ? j : b;
		for (int j = 0; j < 4; j++)
			if (j != b && (s < 0 || d[j] < d[s]))
				s = j;
		te += abs(b - s) > 1;
	}
	ck_assert(te > 0);
	ck_assert_double_eq_tol(r.topographic_error, te / 6, 1e-12);

	/* Training on the images alone (no labels, no loss) from this codebook (the flag says it is
	 * initialized): it moves. */
	const float one = 1.0f;
	ck_assert_int_eq(strata_session_write_weight(net.s, 0, 1, &one, 1, &err), STRATA_OK);
	strata_fit_options fo = {.size = sizeof(fo), .epochs = 2, .batch_size = 4};
	ck_assert_msg(strata_fit(net.s, ds, NULL, &fo, &err) == STRATA_OK, "%s", err.message);
	float trained[8];
	ck_assert_int_eq(strata_session_read_weight(net.s, 0, 0, trained, 8, &err), STRATA_OK);
	ck_assert(memcmp(trained, line, sizeof(line)) != 0);
	ck_assert_uint_eq(net.s->step, 4);
	strata_dataset_free(ds);
	ts_net_close(&net);
	ts_device_close(&dev);
	ts_tmpdir_remove(dir);
	free(images);
	free(labels);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("som");
	TCase *tc = tcase_create("som");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_training_steps, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_random_initialization);
	tcase_add_test(tc, test_map_figures);
	suite_add_tcase(s, tc);
	return ts_run(s);
}
