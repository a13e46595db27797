/* The normalization layers (plugins/batch_normalization, plugins/layer_normalization) on the
 * OpenCL device:
 *  - forward against host references in double: BatchNormalization in training mode (batch
 *    statistics, and the moving statistics' update read back from the state tensors after the
 *    pass) and in inference mode (the moving statistics), LayerNormalization; rank-1 and rank-3
 *    inputs, odd channel counts and vector-wide ones, center/scale off, a batch with more rows
 *    than the partial sums' block limit, and inputs far from zero (|mean| >> std), which sums of
 *    x and x^2 would get wrong;
 *  - backward: the library's gradient check (both modes, the layer alone, random gamma, beta and
 *    moving statistics) and finite differences through small models (the workspaces kept from
 *    the forward pass);
 *  - Keras' weights (names, order, shapes, trainable or not) and parameter counts in `summary`;
 *  - determinism: the same batch twice gives the same bits;
 *  - refusals: axis other than the last, parameters left out, out-of-range values. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "exec/session.h"
#include "model/model.h"

/* ---- helpers ----------------------------------------------------------------------------------- */

static size_t dims_elems(const int64_t *d, uint32_t rank)
{
	size_t n = 1;
	for (uint32_t i = 0; i < rank; i++)
		n *= (size_t)d[i];
	return n;
}

/* "[5, 4, 3]" */
static void dims_text(const int64_t *d, uint32_t rank, char *buf, size_t size)
{
	size_t used = (size_t)snprintf(buf, size, "[");
	for (uint32_t i = 0; i < rank; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)d[i]);
	snprintf(buf + used, size - used, "]");
}

/* The index of weight `name` of layer 0, or -1. */
static int weight_index(strata_session *s, size_t layer, const char *name)
{
	for (size_t w = 0; w < strata_session_weight_count(s, layer); w++) {
		const char *n = NULL;
		ck_assert_int_eq(strata_session_weight_info(s, layer, w, &n, NULL), STRATA_OK);
		if (!strcmp(n, name))
			return (int)w;
	}
	return -1;
}

/* Writes n random values in [lo, hi) to weight `name` of `layer` (when it has one) into dst. */
static bool set_weight(strata_session *s, size_t layer, const char *name, float *dst, size_t n, unsigned seed,
                       float lo, float hi)
{
	int w = weight_index(s, layer, name);
	if (w < 0)
		return false;
	strata_error err = {0};
	ts_fill_random(dst, n, seed, lo, hi);
	ck_assert_msg(strata_session_write_weight(s, layer, (size_t)w, dst, n, &err) == STRATA_OK, "%s", err.message);
	return true;
}

static void read_weight(strata_session *s, size_t layer, const char *name, float *dst, size_t n)
{
	int w = weight_index(s, layer, name);
	ck_assert_msg(w >= 0, "no weight %s", name);
	strata_error err = {0};
	ck_assert_msg(strata_session_read_weight(s, layer, (size_t)w, dst, n, &err) == STRATA_OK, "%s", err.message);
}

static void forward(ts_net *net, uint32_t batch, bool training)
{
	strata_error err = {0};
	strata_status st = st_session_forward_device(net->s, batch, training, &err);
	ck_assert_msg(st == STRATA_OK, "forward: %s", err.message);
}

/* |got - want| within tol * max(1, |want|), or the test fails naming what and where. */
static void close_enough(const char *what, size_t i, double got, double want, double tol)
{
	ck_assert_msg(fabs(got - want) <= tol * fmax(1.0, fabs(want)), "%s[%zu] = %.9g, want %.9g (tolerance %g)", what,
	              i, got, want, tol);
}

/* ---- forward against host references ------------------------------------------------------------ */

typedef struct norm_case {
	const char *type;   /* batch_normalization or layer_normalization */
	uint32_t rank;
	int64_t dims[3];
	uint32_t batch;
	const char *extra;  /* more parameters, YAML */
	bool center, scale; /* as `extra` sets them */
	float offset;       /* added to the inputs, which are otherwise in [-2, 2) */
	float momentum;     /* BatchNormalization's, as `extra` sets it */
	float eps;
	double tol;         /* of the outputs, relative to max(1, |want|) */
} norm_case;

static const norm_case cases[] = {
	/* rank 1: dense features; 7 channels: vectors of 1 */
	{"batch_normalization", 1, {7}, 5, "", true, true, 0.0f, 0.99f, 1e-3f, 2e-5},
	/* rank 3: 5 x 4 positions x 3 samples = 60 rows, odd channels */
	{"batch_normalization", 3, {5, 4, 3}, 3, "", true, true, 0.0f, 0.99f, 1e-3f, 2e-5},
	/* 32 channels: vectors of 16 on CPUs (8 and 4 elsewhere); 70 rows: two blocks, one partial */
	{"batch_normalization", 3, {7, 5, 32}, 2, "momentum: 0.5, epsilon: 0.01", true, true, 0.0f, 0.5f, 0.01f, 2e-5},
	{"batch_normalization", 3, {3, 3, 6}, 4, "center: false", false, true, 0.0f, 0.99f, 1e-3f, 2e-5},
	{"batch_normalization", 1, {12}, 9, "scale: false, momentum: 0.9", true, false, 0.0f, 0.9f, 1e-3f, 2e-5},
	{"batch_normalization", 3, {2, 3, 5}, 3, "center: false, scale: false, momentum: 0", false, false, 0.0f, 0.0f,
	 1e-3f, 2e-5},
	/* |mean| = 1000 >> std ~ 1: sums of x and x^2 would lose the variance entirely in float32;
	 * the tolerance is what the rounding of the float32 mean near 1000 allows */
	{"batch_normalization", 3, {6, 6, 4}, 5, "momentum: 0.8", true, true, 1000.0f, 0.8f, 1e-3f, 2e-4},
	/* 65 x 64 x 64 = 266240 rows: more than 4096 blocks of 64 (batch_normalization.c's
	 * BN_MAX_BLOCKS), so blocks of 65 rows */
	{"batch_normalization", 3, {64, 64, 1}, 65, "", true, true, 0.5f, 0.99f, 1e-3f, 2e-5},
	{"layer_normalization", 1, {7}, 5, "", true, true, 0.0f, 0, 1e-3f, 2e-5},
	{"layer_normalization", 3, {4, 3, 5}, 3, "", true, true, 0.0f, 0, 1e-3f, 2e-5},
	{"layer_normalization", 3, {2, 3, 32}, 2, "epsilon: 0.1", true, true, 0.0f, 0, 0.1f, 2e-5},
	{"layer_normalization", 1, {9}, 4, "center: false", false, true, 0.0f, 0, 1e-3f, 2e-5},
	{"layer_normalization", 1, {9}, 4, "scale: false", true, false, 0.0f, 0, 1e-3f, 2e-5},
	{"layer_normalization", 1, {6}, 3, "center: false, scale: false", false, false, 0.0f, 0, 1e-3f, 2e-5},
	/* long rows: a work-group per row (64 and 256 work-items) */
	{"layer_normalization", 1, {200}, 3, "", true, true, 0.0f, 0, 1e-3f, 2e-5},
	{"layer_normalization", 1, {1500}, 2, "", true, true, 0.0f, 0, 1e-3f, 2e-5},
	{"layer_normalization", 3, {2, 2, 130}, 2, "scale: false", true, false, 0.0f, 0, 1e-3f, 2e-5},
	{"layer_normalization", 1, {300}, 3, "", true, true, 1000.0f, 0, 1e-3f, 2e-4},
};

typedef struct case_data {
	ts_device dev;
	ts_net net;
	size_t rows, cols, n;
	float *x, *gamma, *beta, *mm, *mv;
} case_data;

/* The case's one-layer model on the device, with random inputs, gamma, beta and moving statistics
 * (variances in [0.5, 2)) written to it. */
static void case_open(case_data *d, const norm_case *c, unsigned seed)
{
	char yaml[512], shape[64];
	dims_text(c->dims, c->rank, shape, sizeof(shape));
	snprintf(yaml, sizeof(yaml), "input: {shape: %s}\nlayers:\n  - {type: %s%s%s}\n", shape, c->type,
	         c->extra[0] ? ", " : "", c->extra);
	memset(d, 0, sizeof(*d));
	d->dev = ts_device_open();
	d->net = ts_net_open(&d->dev, yaml, c->batch + 1, 1);
	d->cols = (size_t)c->dims[c->rank - 1];
	d->rows = c->batch * dims_elems(c->dims, c->rank) / d->cols;
	d->n = d->rows * d->cols;
	d->x = ts_floats(d->n);
	ts_fill_random(d->x, d->n, seed, -2.0f, 2.0f);
	/* Channels of different scales and means. */
	for (size_t i = 0; i < d->n; i++)
		d->x[i] = d->x[i] * (1.0f + 0.25f * (float)(i % d->cols)) + c->offset + 0.1f * (float)(i % d->cols);
	ts_tensor_write(d->dev.rt, st_session_value(d->net.s, 0), 0, d->x, d->n);
	d->gamma = ts_floats(d->cols);
	d->beta = ts_floats(d->cols);
	d->mm = ts_floats(d->cols);
	d->mv = ts_floats(d->cols);
	ck_assert(set_weight(d->net.s, 0, "gamma", d->gamma, d->cols, seed + 1, 0.5f, 1.5f) == c->scale);
	ck_assert(set_weight(d->net.s, 0, "beta", d->beta, d->cols, seed + 2, -1.0f, 1.0f) == c->center);
	if (!c->scale)
		for (size_t j = 0; j < d->cols; j++)
			d->gamma[j] = 1.0f;
	if (!c->center)
		for (size_t j = 0; j < d->cols; j++)
			d->beta[j] = 0.0f;
	bool bn = !strcmp(c->type, "batch_normalization");
	ck_assert(set_weight(d->net.s, 0, "moving_mean", d->mm, d->cols, seed + 3, -1.0f, 1.0f) == bn);
	ck_assert(set_weight(d->net.s, 0, "moving_variance", d->mv, d->cols, seed + 4, 0.5f, 2.0f) == bn);
}

static void case_close(case_data *d)
{
	free(d->x);
	free(d->gamma);
	free(d->beta);
	free(d->mm);
	free(d->mv);
	ts_net_close(&d->net);
	ts_device_close(&d->dev);
}

/* Per channel over the rows (BatchNormalization) or per row over the channels (LayerNormalization):
 * the mean and biased variance, in double. */
static void column_moments(const float *x, size_t rows, size_t cols, size_t j, double *mean, double *var)
{
	double s = 0.0, q = 0.0;
	for (size_t r = 0; r < rows; r++)
		s += x[r * cols + j];
	*mean = s / (double)rows;
	for (size_t r = 0; r < rows; r++)
		q += (x[r * cols + j] - *mean) * (x[r * cols + j] - *mean);
	*var = q / (double)rows;
}

static void row_moments(const float *x, size_t cols, size_t r, double *mean, double *var)
{
	double s = 0.0, q = 0.0;
	for (size_t j = 0; j < cols; j++)
		s += x[r * cols + j];
	*mean = s / (double)cols;
	for (size_t j = 0; j < cols; j++)
		q += (x[r * cols + j] - *mean) * (x[r * cols + j] - *mean);
	*var = q / (double)cols;
}

/* BatchNormalization in training mode: the outputs from the batch statistics, and the moving
 * statistics after the pass (read back from the state) as Keras 3 updates them. A second
 * training pass on the same batch gives the same bits, and updates the statistics again. */
static void check_bn_training(const norm_case *c, unsigned seed)
{
	case_data d;
	case_open(&d, c, seed);
	forward(&d.net, c->batch, true);
	float *y = ts_floats(d.n), *again = ts_floats(d.n), *mm = ts_floats(d.cols), *mv = ts_floats(d.cols);
	ts_tensor_read(d.dev.rt, st_session_output(d.net.s), y, d.n);
	read_weight(d.net.s, 0, "moving_mean", mm, d.cols);
	read_weight(d.net.s, 0, "moving_variance", mv, d.cols);
	double *mean = calloc(d.cols, sizeof(double)), *var = calloc(d.cols, sizeof(double));
	ck_assert(mean && var);
	for (size_t j = 0; j < d.cols; j++) {
		column_moments(d.x, d.rows, d.cols, j, &mean[j], &var[j]);
		double inv = 1.0 / sqrt(var[j] + c->eps);
		for (size_t r = 0; r < d.rows; r++) {
			size_t i = r * d.cols + j;
			close_enough("training y", i, y[i], d.gamma[j] * (d.x[i] - mean[j]) * inv + d.beta[j], c->tol);
		}
		/* moving = moving * momentum + batch * (1 - momentum), the biased variance (Keras 3) */
		double m = c->momentum;
		close_enough("moving_mean", j, mm[j], d.mm[j] * m + mean[j] * (1.0 - m), 1e-5);
		close_enough("moving_variance", j, mv[j], d.mv[j] * m + var[j] * (1.0 - m), 1e-5);
	}
	forward(&d.net, c->batch, true);
	ts_tensor_read(d.dev.rt, st_session_output(d.net.s), again, d.n);
	ck_assert_msg(memcmp(y, again, d.n * sizeof(float)) == 0, "a second training pass gave other bits");
	float *mm2 = ts_floats(d.cols);
	read_weight(d.net.s, 0, "moving_mean", mm2, d.cols);
	for (size_t j = 0; j < d.cols; j++)
		close_enough("moving_mean after two steps", j, mm2[j], mm[j] * c->momentum + mean[j] * (1.0 - c->momentum),
		             1e-5);
	free(mm2);
	free(mean);
	free(var);
	free(mv);
	free(mm);
	free(again);
	free(y);
	case_close(&d);
}

/* BatchNormalization at inference: the moving statistics, which the pass leaves as they are. */
static void check_bn_inference(const norm_case *c, unsigned seed)
{
	case_data d;
	case_open(&d, c, seed);
	forward(&d.net, c->batch, false);
	float *y = ts_floats(d.n), *mm = ts_floats(d.cols), *mv = ts_floats(d.cols);
	ts_tensor_read(d.dev.rt, st_session_output(d.net.s), y, d.n);
	for (size_t j = 0; j < d.cols; j++) {
		double inv = 1.0 / sqrt((double)d.mv[j] + c->eps);
		for (size_t r = 0; r < d.rows; r++) {
			size_t i = r * d.cols + j;
			/* inputs near 1000 lose digits in x - moving_mean whatever the order of operations */
			close_enough("inference y", i, y[i], d.gamma[j] * (d.x[i] - d.mm[j]) * inv + d.beta[j],
			             c->offset != 0.0f ? 2e-4 * c->offset : c->tol);
		}
	}
	read_weight(d.net.s, 0, "moving_mean", mm, d.cols);
	read_weight(d.net.s, 0, "moving_variance", mv, d.cols);
	ck_assert_msg(memcmp(mm, d.mm, d.cols * sizeof(float)) == 0 && memcmp(mv, d.mv, d.cols * sizeof(float)) == 0,
	              "an inference pass changed the moving statistics");
	free(mv);
	free(mm);
	free(y);
	case_close(&d);
}

/* LayerNormalization: each row by its own statistics, the same in both modes. */
static void check_ln(const norm_case *c, unsigned seed)
{
	case_data d;
	case_open(&d, c, seed);
	float *y = ts_floats(d.n), *again = ts_floats(d.n);
	forward(&d.net, c->batch, true);
	ts_tensor_read(d.dev.rt, st_session_output(d.net.s), y, d.n);
	forward(&d.net, c->batch, false);
	ts_tensor_read(d.dev.rt, st_session_output(d.net.s), again, d.n);
	ck_assert_msg(memcmp(y, again, d.n * sizeof(float)) == 0, "training and inference passes differ");
	for (size_t r = 0; r < d.rows; r++) {
		double mean, var;
		row_moments(d.x, d.cols, r, &mean, &var);
		double inv = 1.0 / sqrt(var + c->eps);
		for (size_t j = 0; j < d.cols; j++) {
			size_t i = r * d.cols + j;
			close_enough("y", i, y[i], d.gamma[j] * (d.x[i] - mean) * inv + d.beta[j], c->tol);
		}
	}
	free(again);
	free(y);
	case_close(&d);
}

START_TEST(test_forward)
{
	const norm_case *c = &cases[_i];
	if (!strcmp(c->type, "batch_normalization")) {
		check_bn_training(c, 100 + (unsigned)_i * 10);
		check_bn_inference(c, 500 + (unsigned)_i * 10);
	} else {
		check_ln(c, 900 + (unsigned)_i * 10);
	}
}
END_TEST

/* ---- gradients ------------------------------------------------------------------------------- */

/* The library's check of one layer alone (strata gradcheck), in training and inference mode,
 * with random gamma, beta and moving statistics. */
static void check_layer_gradients(const norm_case *c, unsigned seed)
{
	case_data d;
	case_open(&d, c, seed);
	strata_gradcheck_options o = {.size = sizeof(o), .layer = 0, .batch = c->batch, .seed = seed,
	                              .mode = STRATA_GRADCHECK_BOTH};
	strata_gradcheck_report rep = {0};
	strata_error err = {0};
	strata_status st = strata_gradcheck(d.net.s, &o, &rep, &err);
	ck_assert_msg(st == STRATA_OK, "gradcheck: %s", err.message);
	/* the input, gamma and beta as the layer has them, in both modes */
	size_t per_mode = 1 + c->scale + c->center;
	ck_assert_uint_eq(rep.n_tensors, 2 * per_mode);
	for (size_t t = 0; t < rep.n_tensors; t++) {
		const strata_gradcheck_tensor *g = &rep.tensors[t];
		ck_assert_msg(g->passed, "%s %s %s: %s (worst %g at %zu: %g vs %g)", c->type, g->training ? "training"
		              : "inference", g->name, g->message, g->worst, g->worst_index, g->backward, g->differences);
		ck_assert_msg(g->largest > 1e-3, "%s %s: the gradient is ~0 (%g): the check proves nothing", c->type,
		              g->name, g->largest);
	}
	ck_assert(rep.passed);
	/* the check restores the moving statistics its training passes moved */
	float *mm = ts_floats(d.cols);
	if (weight_index(d.net.s, 0, "moving_mean") >= 0) {
		read_weight(d.net.s, 0, "moving_mean", mm, d.cols);
		ck_assert(memcmp(mm, d.mm, d.cols * sizeof(float)) == 0);
	}
	free(mm);
	strata_gradcheck_report_free(&rep);
	case_close(&d);
}

START_TEST(test_layer_gradients)
{
	const norm_case *c = &cases[_i];
	/* the largest cases take long in finite differences and add no path */
	if (c->offset != 0.0f || (c->rank == 3 && c->dims[0] == 64) || c->dims[0] >= 1500)
		return;
	check_layer_gradients(c, 1300 + (unsigned)_i);
}
END_TEST

/* The backward pass against the gradients written out by hand, in double, from a random dy: the
 * input's, gamma's and beta's, for BatchNormalization in training mode (through the batch
 * statistics) and inference mode (the moving statistics: a fixed affine map) and for
 * LayerNormalization (through each row's statistics). Tighter than finite differences. */
static void check_backward_reference(const norm_case *c, bool training, unsigned seed)
{
	case_data d;
	case_open(&d, c, seed);
	strata_error err = {0};
	ck_assert_msg(st_session_enable_training(d.net.s, &err) == STRATA_OK, "%s", err.message);
	bool bn = !strcmp(c->type, "batch_normalization");
	float *dy = ts_floats(d.n), *dx = ts_floats(d.n), *dg = ts_floats(d.cols), *db = ts_floats(d.cols);
	ts_fill_random(dy, d.n, seed + 9, -1.0f, 1.0f);
	forward(&d.net, c->batch, training);
	strata_tensor *g = NULL;
	if (training) {
		ts_tensor_write(d.dev.rt, st_session_output_grad(d.net.s), 0, dy, d.n);
		ck_assert_msg(st_session_backward(d.net.s, c->batch, false, &g, &err) == STRATA_OK, "%s", err.message);
	} else {
		ts_tensor_write(d.dev.rt, st_session_layer_grad(d.net.s, 0), 0, dy, d.n);
		ck_assert_msg(st_session_backward_from(d.net.s, c->batch, 0, false, &g, &err) == STRATA_OK, "%s",
		              err.message);
	}
	ts_tensor_read(d.dev.rt, g, dx, d.n);
	int wg = weight_index(d.net.s, 0, "gamma"), wb = weight_index(d.net.s, 0, "beta");
	if (wg >= 0)
		ts_tensor_read(d.dev.rt, &d.net.s->binds[0].grads[wg], dg, d.cols);
	if (wb >= 0)
		ts_tensor_read(d.dev.rt, &d.net.s->binds[0].grads[wb], db, d.cols);

	double *mean = calloc(d.rows > d.cols ? d.rows : d.cols, sizeof(double));
	double *inv = calloc(d.rows > d.cols ? d.rows : d.cols, sizeof(double));
	double *want_dg = calloc(d.cols, sizeof(double)), *want_db = calloc(d.cols, sizeof(double));
	ck_assert(mean && inv && want_dg && want_db);
	/* the statistics: per channel (BatchNormalization) or per row (LayerNormalization) */
	size_t n_stats = bn ? d.cols : d.rows;
	for (size_t k = 0; k < n_stats; k++) {
		double var;
		if (bn && training)
			column_moments(d.x, d.rows, d.cols, k, &mean[k], &var);
		else if (bn)
			mean[k] = d.mm[k], var = d.mv[k];
		else
			row_moments(d.x, d.cols, k, &mean[k], &var);
		inv[k] = 1.0 / sqrt(var + c->eps);
	}
#define XHAT(r, j) ((d.x[(r) * d.cols + (j)] - mean[bn ? (j) : (r)]) * inv[bn ? (j) : (r)])
	for (size_t r = 0; r < d.rows; r++)
		for (size_t j = 0; j < d.cols; j++) {
			want_db[j] += dy[r * d.cols + j];
			want_dg[j] += dy[r * d.cols + j] * XHAT(r, j);
		}
	for (size_t r = 0; r < d.rows; r++) {
		double sg = 0.0, sgx = 0.0; /* LayerNormalization's row sums of g = dy gamma and g xhat */
		for (size_t j = 0; !bn && j < d.cols; j++) {
			sg += dy[r * d.cols + j] * d.gamma[j];
			sgx += dy[r * d.cols + j] * d.gamma[j] * XHAT(r, j);
		}
		for (size_t j = 0; j < d.cols; j++) {
			size_t i = r * d.cols + j;
			double want;
			if (bn && training)
				want = d.gamma[j] * inv[j] *
				       (dy[i] - want_db[j] / (double)d.rows - XHAT(r, j) * want_dg[j] / (double)d.rows);
			else if (bn)
				want = d.gamma[j] * inv[j] * dy[i];
			else
				want = inv[r] * (dy[i] * d.gamma[j] - sg / (double)d.cols - XHAT(r, j) * sgx / (double)d.cols);
			close_enough(training ? "dx (training)" : "dx (inference)", i, dx[i], want, 1e-4);
		}
	}
#undef XHAT
	for (size_t j = 0; j < d.cols; j++) {
		if (wg >= 0)
			close_enough("dgamma", j, dg[j], want_dg[j], 1e-4);
		if (wb >= 0)
			close_enough("dbeta", j, db[j], want_db[j], 1e-5);
	}
	free(want_db);
	free(want_dg);
	free(inv);
	free(mean);
	free(db);
	free(dg);
	free(dx);
	free(dy);
	case_close(&d);
}

START_TEST(test_backward_reference)
{
	const norm_case *c = &cases[_i];
	if (c->offset != 0.0f)
		return; /* x - mean loses digits near 1000, in the gradient as in the output */
	check_backward_reference(c, true, 2100 + (unsigned)_i);
	if (!strcmp(c->type, "batch_normalization"))
		check_backward_reference(c, false, 2300 + (unsigned)_i);
}
END_TEST

/* Finite differences through models: the normalization between layers, backward passes that find
 * the forward pass's workspaces kept (training mode). No bias (or beta) right before a
 * BatchNormalization: its training pass subtracts the batch mean, so their gradient is 0. */
static const char *const models[] = {
	"input: {shape: [6]}\n"
	"layers:\n"
	"  - {type: dense, units: 5, use_bias: false}\n"
	"  - {type: batch_normalization, momentum: 0.9}\n"
	"  - {type: dense, units: 3, activation: tanh}\n",
	"input: {shape: [5, 4, 2]}\n"
	"layers:\n"
	"  - {type: conv2d, filters: 3, kernel_size: 2, use_bias: false}\n"
	"  - {type: batch_normalization}\n"
	"  - {type: activation, activation: tanh}\n"
	"  - {type: flatten}\n"
	"  - {type: dense, units: 3}\n",
	"input: {shape: [5, 4, 2]}\n"
	"layers:\n"
	"  - {type: conv2d, filters: 4, kernel_size: 2, use_bias: false}\n"
	"  - {type: batch_normalization, center: false}\n"
	"  - {type: layer_normalization, scale: false}\n"
	"  - {type: flatten}\n"
	"  - {type: dense, units: 3}\n",
	"input: {shape: [6]}\n"
	"layers:\n"
	"  - {type: dense, units: 140}\n"
	"  - {type: layer_normalization}\n"
	"  - {type: dense, units: 3, activation: tanh}\n",
	"input: {shape: [6]}\n"
	"layers:\n"
	"  - {type: dense, units: 5}\n"
	"  - {type: layer_normalization, center: false}\n"
	"  - {type: batch_normalization, scale: false}\n"
	"  - {type: dense, units: 3}\n",
};

START_TEST(test_model_gradients)
{
	ts_fd f;
	ts_fd_open(&f, models[_i], 6, 0.0f, 1700 + (unsigned)_i);
	ts_fd_tolerance tol = {.max_checks = 60, .nontrivial = 1e-4, .to_largest = true};
	ts_fd_check_gradients(&f, &tol);
	ts_fd_close(&f);
}
END_TEST

/* The training gradient of the input, exactly: with dy = 1 everywhere (or dy = xhat) the batch
 * statistics absorb it all and dx = 0, which a gradient of the inference map would not give. */
START_TEST(test_bn_training_gradient_vanishes)
{
	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev, "input: {shape: [3, 2, 4]}\nlayers:\n  - {type: batch_normalization}\n", 5, 1);
	strata_error err = {0};
	ck_assert_int_eq(st_session_enable_training(net.s, &err), STRATA_OK);
	size_t n = 5 * 24;
	float *x = ts_floats(n), *dy = ts_floats(n), *dx = ts_floats(n);
	ts_fill_random(x, n, 77, -1.0f, 3.0f);
	ts_tensor_write(dev.rt, st_session_value(net.s, 0), 0, x, n);
	forward(&net, 5, true);
	for (size_t i = 0; i < n; i++)
		dy[i] = 1.0f;
	ts_tensor_write(dev.rt, st_session_output_grad(net.s), 0, dy, n);
	strata_tensor *g = NULL;
	ck_assert_msg(st_session_backward(net.s, 5, false, &g, &err) == STRATA_OK, "%s", err.message);
	ts_tensor_read(dev.rt, g, dx, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(fabsf(dx[i]) < 1e-5f, "dx[%zu] = %g, want 0", i, (double)dx[i]);
	/* beta's gradient is the sum of dy: 30 rows per channel */
	float db[4];
	size_t beta = (size_t)weight_index(net.s, 0, "beta");
	ts_tensor_read(dev.rt, &net.s->binds[0].grads[beta], db, 4);
	for (size_t j = 0; j < 4; j++)
		ck_assert_msg(fabsf(db[j] - 30.0f) < 1e-4f, "dbeta[%zu] = %g, want 30", j, (double)db[j]);
	free(dx);
	free(dy);
	free(x);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* A frozen BatchNormalization (trainable: false) runs in inference mode while the model trains, as
 * Keras 3's: the moving statistics normalize, stay as they were, and the input's gradient is
 * the inference map's, dy gamma / sqrt(var + eps). */
START_TEST(test_bn_frozen)
{
	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev, "input: {shape: [4]}\nlayers:\n  - {type: batch_normalization, trainable: false}\n",
	                         6, 1);
	strata_error err = {0};
	ck_assert_int_eq(st_session_enable_training(net.s, &err), STRATA_OK);
	float mean[4], var[4], gamma[4], x[24], y[24], dy[24], dx[24], after[4];
	set_weight(net.s, 0, "moving_mean", mean, 4, 3, -1.0f, 1.0f);
	set_weight(net.s, 0, "moving_variance", var, 4, 4, 0.5f, 2.0f);
	set_weight(net.s, 0, "gamma", gamma, 4, 5, 0.5f, 1.5f);
	ts_fill_random(x, 24, 6, -3.0f, 3.0f);
	ts_tensor_write(dev.rt, st_session_value(net.s, 0), 0, x, 24);
	forward(&net, 6, true);
	ts_tensor_read(dev.rt, st_session_output(net.s), y, 24);
	for (size_t i = 0; i < 24; i++)
		close_enough("frozen y", i, y[i], gamma[i % 4] * (x[i] - mean[i % 4]) / sqrt(var[i % 4] + 1e-3), 1e-5);
	read_weight(net.s, 0, "moving_mean", after, 4);
	ck_assert_mem_eq(after, mean, sizeof(after));
	ts_fill_random(dy, 24, 7, -1.0f, 1.0f);
	ts_tensor_write(dev.rt, st_session_output_grad(net.s), 0, dy, 24);
	strata_tensor *g = NULL;
	ck_assert_msg(st_session_backward(net.s, 6, false, &g, &err) == STRATA_OK, "%s", err.message);
	ts_tensor_read(dev.rt, g, dx, 24);
	for (size_t i = 0; i < 24; i++)
		close_enough("frozen dx", i, dx[i], dy[i] * gamma[i % 4] / sqrt(var[i % 4] + 1e-3), 1e-5);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* ---- Keras' weights and counts ------------------------------------------------------------------- */

typedef struct count_case {
	const char *yaml;
	const char *weights; /* names in order, ':' after the trainable ones */
	const char *total, *trainable, *frozen;
} count_case;

static const count_case counts[] = {
	/* Keras: BatchNormalization on (5, 5, 3): 4 x 3 = 12 parameters, 6 non-trainable */
	{"input: {shape: [5, 5, 3]}\nlayers:\n  - {type: batch_normalization}\n", "gamma beta : moving_mean moving_variance",
	 "Total params: 12\n", "Trainable params: 6\n", "Non-trainable params: 6\n"},
	{"input: {shape: [10]}\nlayers:\n  - {type: batch_normalization, center: false}\n",
	 "gamma : moving_mean moving_variance", "Total params: 30\n", "Trainable params: 10\n",
	 "Non-trainable params: 20\n"},
	{"input: {shape: [4, 4, 8]}\nlayers:\n  - {type: batch_normalization, center: false, scale: false}\n",
	 ": moving_mean moving_variance", "Total params: 16\n", "Trainable params: 0\n", "Non-trainable params: 16\n"},
	/* Keras: LayerNormalization on (7,): 2 x 7 = 14 */
	{"input: {shape: [7]}\nlayers:\n  - {type: layer_normalization}\n", "gamma beta :", "Total params: 14\n",
	 "Trainable params: 14\n", "Non-trainable params: 0\n"},
	{"input: {shape: [3, 3, 5]}\nlayers:\n  - {type: layer_normalization, scale: false}\n", "beta :",
	 "Total params: 5\n", "Trainable params: 5\n", "Non-trainable params: 0\n"},
	/* The Keras MNIST CNN with a BatchNormalization after each convolution:
	 * conv 320, bn 128 (64 frozen), conv 18496, bn 256 (128 frozen), dense 92170 */
	{"input: {shape: [28, 28, 1]}\nlayers:\n"
	 "  - {type: conv2d, filters: 32, kernel_size: 3}\n  - {type: batch_normalization}\n"
	 "  - {type: conv2d, filters: 64, kernel_size: 3}\n  - {type: batch_normalization}\n"
	 "  - {type: maxpool2d, pool_size: 2}\n  - {type: flatten}\n  - {type: dense, units: 10}\n",
	 NULL, "Total params: 111,370\n", "Trainable params: 111,178\n", "Non-trainable params: 192\n"},
};

START_TEST(test_counts)
{
	const count_case *c = &counts[_i];
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model(reg, c->yaml);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(f);
	strata_model_print_summary(m, f);
	fclose(f);
	ck_assert_msg(strstr(text, c->total) && strstr(text, c->trainable) && strstr(text, c->frozen),
	              "summary does not say %s%s%s:\n%s", c->total, c->trainable, c->frozen, text);
	if (c->weights) {
		/* Keras' names and order; trainable first, then the state; every one of shape (C) */
		const struct strata_layer *l = &m->layers[0];
		char names[128] = "";
		size_t used = 0;
		bool state = false;
		for (uint32_t w = 0; w < l->n_weights; w++) {
			if (l->weights[w].state && !state) {
				used += (size_t)snprintf(names + used, sizeof(names) - used, "%s:", used ? " " : "");
				state = true;
			}
			used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s", used ? " " : "", l->weights[w].name);
			ck_assert_uint_eq(l->weights[w].shape.rank, 1);
			ck_assert_int_eq(l->weights[w].shape.dims[0], l->out.dims[l->out.rank - 1]);
		}
		if (!state)
			snprintf(names + used, sizeof(names) - used, "%s:", used ? " " : "");
		ck_assert_str_eq(names, c->weights);
	}
	free(text);
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

/* The class names and name prefixes Keras uses; the class name is accepted as `type:`. */
START_TEST(test_names)
{
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model(reg, "input: {shape: [4, 4, 2]}\nlayers:\n"
	                                "  - {type: batch_normalization}\n  - {type: BatchNormalization}\n"
	                                "  - {type: layer_normalization}\n  - {type: LayerNormalization}\n"
	                                "  - {type: batch_normalization, axis: 3}\n  - {type: layer_normalization, axis: -1}\n");
	ck_assert_str_eq(m->layers[0].name, "batch_normalization_1");
	ck_assert_str_eq(m->layers[1].name, "batch_normalization_2");
	ck_assert_str_eq(m->layers[2].name, "layer_normalization_1");
	ck_assert_str_eq(m->layers[3].name, "layer_normalization_2");
	ck_assert_str_eq(m->layers[0].type->ops.class_name, "BatchNormalization");
	ck_assert_str_eq(m->layers[2].type->ops.class_name, "LayerNormalization");
	strata_model_free(m);
	/* axis 1 is the last axis of a vector */
	m = ts_model(reg, "input: {shape: [5]}\nlayers:\n  - {type: batch_normalization, axis: 1}\n"
	                  "  - {type: layer_normalization, axis: 1}\n");
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

/* ---- refusals -------------------------------------------------------------------------------------- */

typedef struct refusal_case {
	const char *layer; /* the layer line, after "  - " */
	const char *where; /* "norm.yaml:3:COLUMN: " */
	const char *says[2];
} refusal_case;

static const refusal_case refusals[] = {
	{"{type: batch_normalization, axis: 1}", "norm.yaml:3:39: batch_normalization_1: ",
	 {"axis 1 is not supported", "normalizes the last axis only (-1, or 3"}},
	{"{type: batch_normalization, axis: -2}", "norm.yaml:3:39: ", {"axis -2 is not supported", "last axis only"}},
	{"{type: batch_normalization, axis: 0}", "norm.yaml:3:39: ", {"axis 0 is the batch axis"}},
	{"{type: batch_normalization, axis: -4}", "norm.yaml:3:39: ", {"axis -4 is the batch axis"}},
	{"{type: batch_normalization, axis: 4}", "norm.yaml:3:39: ", {"axis 4 is out of range"}},
	{"{type: batch_normalization, renorm: true}", "norm.yaml:3:41: ",
	 {"'renorm' is a Keras parameter Strata leaves out", "batch renormalization is not supported"}},
	{"{type: batch_normalization, synchronized: true}", "norm.yaml:3:47: ", {"'synchronized'", "only false"}},
	{"{type: batch_normalization, gamma_constraint: unit_norm}", "norm.yaml:3:51: ",
	 {"'gamma_constraint': unknown constraint 'unit_norm'"}},
	{"{type: batch_normalization, momentum: 1.5}", "norm.yaml:3:43: ", {"'momentum' must be in [0, 1]"}},
	{"{type: batch_normalization, epsilon: 0}", "norm.yaml:3:42: ", {"'epsilon' must be > 0"}},
	{"{type: batch_normalization, beta_initializer: random}", "norm.yaml:3:51: ", {"beta_initializer"}},
	{"{type: layer_normalization, axis: 2}", "norm.yaml:3:39: layer_normalization_1: ",
	 {"axis 2 is not supported", "last axis only (-1, or 3"}},
	{"{type: layer_normalization, axis: [1, 2, 3]}", "norm.yaml:3:", {"axis"}},
	{"{type: layer_normalization, rms_scaling: true}", "norm.yaml:3:46: ",
	 {"'rms_scaling' is a Keras parameter Strata leaves out", "not supported"}},
	{"{type: layer_normalization, epsilon: -1}", "norm.yaml:3:42: ", {"'epsilon' must be > 0"}},
	{"{type: layer_normalization, beta_constraint: {max_norm: {axis: 1}}}", "norm.yaml:3:", {"'beta_constraint': axis 1 is outside weight 'beta'"}},
};

START_TEST(test_refusals)
{
	const refusal_case *rc = &refusals[_i];
	char yaml[256];
	snprintf(yaml, sizeof(yaml), "input: {shape: [4, 4, 2]}\nlayers:\n  - %s\n", rc->layer);
	strata_registry *reg = ts_registry();
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load_string(reg, yaml, strlen(yaml), "norm.yaml", NULL, &m, &err);
	ck_assert_msg(st == STRATA_ERR_INVALID, "status %s: %s", strata_status_name(st), err.message);
	ck_assert_ptr_null(m);
	ck_assert_msg(strncmp(err.message, rc->where, strlen(rc->where)) == 0, "'%s' does not start with '%s'",
	              err.message, rc->where);
	for (size_t k = 0; k < 2 && rc->says[k]; k++)
		ck_assert_msg(strstr(err.message, rc->says[k]), "'%s' does not say '%s'", err.message, rc->says[k]);
	strata_registry_close(reg);
}
END_TEST

static Suite *normalization_suite(void)
{
	Suite *s = suite_create("normalization");
	TCase *fw = tcase_create("forward");
	tcase_add_loop_test(fw, test_forward, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	suite_add_tcase(s, fw);

	TCase *bw = tcase_create("backward");
	tcase_add_loop_test(bw, test_backward_reference, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_loop_test(bw, test_layer_gradients, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_loop_test(bw, test_model_gradients, 0, (int)(sizeof(models) / sizeof(models[0])));
	tcase_add_test(bw, test_bn_training_gradient_vanishes);
	tcase_add_test(bw, test_bn_frozen);
	suite_add_tcase(s, bw);

	TCase *model = tcase_create("model");
	tcase_add_loop_test(model, test_counts, 0, (int)(sizeof(counts) / sizeof(counts[0])));
	tcase_add_test(model, test_names);
	tcase_add_loop_test(model, test_refusals, 0, (int)(sizeof(refusals) / sizeof(refusals[0])));
	suite_add_tcase(s, model);
	return s;
}

int main(void)
{
	return ts_run(normalization_suite());
}
