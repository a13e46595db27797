/* Gradient checks: a backward pass against central finite differences of L = sum(r * y), r a
 * fixed random projection of the outputs, so the backward pass starts from grad_output = r.
 *
 * st_fd_check_tensor is the algorithm, shared by strata_gradcheck (one layer, for `strata
 * gradcheck` and plugin authors) and the test suites (tests/support.c, whole models).
 *
 * The step. Value v moves by h = base * max(|v|, 1) (base 1e-2). Three errors meet in a central
 * difference computed from float32 passes: the truncation error, O(h^2) relative for a smooth
 * function of values O(1); the rounding of L (each output is float32: about 6e-8 of the affected
 * terms of L, divided by 2h); and the rounding of v +- h itself, which float32 keeps only to about
 * 6e-8 |v|. The first wants h small, the others large; with h = 1e-2 both are near 1e-5 for
 * values O(1), far below the 1e-2 tolerance. Scaling h with |v| keeps the step's own rounding at
 * the same relative size for large values (a fixed 1e-2 on a value of 1000 is only 1.6e4 ulps, and
 * at 1e6 it is no step at all); the floor of 1 keeps steps near 0 from shrinking until the rounding
 * of L dominates. The step actually taken, after rounding v +- h to float, is the one divided by.
 *
 * Kinks. Where a step straddles a point where the function is not differentiable (relu at 0, a max
 * changing hands), the left and right slopes differ; such an element is tried again with a step
 * ten times smaller, and skipped when it still straddles one. An element whose first quotient
 * misses the tolerance is also tried with the smaller step, and the closer quotient counts: in a
 * sum of many kinked terms (a convolution's kernel behind a relu) two crossings on opposite sides
 * can hide from the slope test, and a right derivative then still agrees with one of the steps,
 * a wrong one with neither. At most a share of the elements
 * may be skipped (a quarter in the test suites, half for one layer, whose small tensors, a bias
 * of three filters behind a relu, may have one kink in three): more means the slopes differ
 * everywhere, which is a wrong forward pass, not a kink.
 *
 * Isolating a layer. strata_gradcheck calls the layer's own forward and backward callbacks (the
 * host's st_host_forward / st_host_backward, with the layer's weights and workspaces from its
 * session) on input tensors of its own, rather than building a model around the layer or running
 * the model's graph and starting the backward pass at the layer (st_session_backward_from). Both
 * of those reach only model input 0's gradient, and through whatever lies between it and the
 * layer, so an error there could be another layer's; the session plans no gradient buffer for a
 * second model input, so a merge layer's input 1 could not be checked at all; and a value read
 * twice (`inputs: [a, a]`) would see the sum of both gradients. Called directly, every input has
 * its own buffer and its own gradient buffer, and what is checked is exactly what the plugin
 * writes. */
#include "probe/gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "device/runtime.h"
#include "exec/host_api.h"
#include "exec/session.h"
#include "model/model.h"

#define GC_DEFAULT_BATCH 2
#define GC_DEFAULT_CHECKS 200
/* A second backward pass (without the forward pass's workspaces) must repeat the first this
 * closely: gradients are overwritten, never added to; a recomputed im2col may round differently. */
#define GC_REPEAT 1e-5

/* ---- one tensor ---------------------------------------------------------------------------------- */

static strata_status write_float(strata_runtime *rt, strata_tensor *t, size_t i, float v, strata_error *err)
{
	return st_tensor_write(rt, t, i * sizeof(float), &v, sizeof(v), err);
}

/* A stride that visits `count` distinct elements: a prime that does not divide it. */
static size_t spread_stride(size_t count)
{
	static const size_t primes[] = {7919, 7907, 7901};
	for (size_t k = 0; k < sizeof(primes) / sizeof(primes[0]); k++)
		if (count % primes[k] != 0)
			return primes[k];
	return 1;
}

strata_status st_fd_check_tensor(strata_runtime *rt, st_fd_loss_fn loss, void *user, strata_tensor *t,
                                 const float *values, size_t count, const float *grad, const st_fd_rule *rule,
                                 double l0, strata_gradcheck_tensor *out, strata_error *err)
{
	const double base = rule->step > 0.0 ? rule->step : ST_FD_STEP;
	const double tol = rule->tolerance > 0.0 ? rule->tolerance : ST_FD_TOLERANCE;
	const char *what = out->name;
	out->elements = count;
	out->checked = out->skipped = 0;
	out->largest = out->worst = out->backward = out->differences = 0.0;
	out->worst_index = 0;
	out->passed = false;
	out->message[0] = '\0';

	double largest = 0.0;
	for (size_t i = 0; i < count; i++) {
		if (!isfinite(grad[i])) {
			snprintf(out->message, sizeof(out->message), "%s[%zu] = %g: never written or not finite", what, i,
			         (double)grad[i]);
			return STRATA_OK;
		}
		largest = fmax(largest, fabs(grad[i]));
	}
	out->largest = largest;
	if (largest < rule->nontrivial) {
		snprintf(out->message, sizeof(out->message), "%s: the largest gradient is %g", what, largest);
		return STRATA_OK;
	}
	const double floor = rule->to_largest ? largest : 1.0;
	const size_t stride = spread_stride(count);
	const size_t checks = rule->max_checks && count > rule->max_checks ? rule->max_checks : count;
	bool any = false;
	strata_status st;
	for (size_t c = 0; c < checks; c++) {
		size_t i = (size_t)((unsigned long long)c * stride % count);
		const float v = values[i];
		const double a = grad[i];
		double fd = 0.0, h = base * fmax(fabs((double)v), 1.0), e = INFINITY;
		bool kink = true;
		/* Where a step straddles a kink, a ten times smaller one usually does not. And where a
		 * layer sums many terms with kinks of their own (a convolution's kernel or bias behind a
		 * relu: one weight reaches every pixel), two pixels crossing theirs on opposite sides of v
		 * can leave the left and right slopes alike while both are off: an element whose first
		 * difference quotient misses the tolerance is tried with the smaller step too, and the
		 * closer of the two counts. A wrong derivative misses at both. */
		for (int attempt = 0; attempt < 2 && (kink || e > tol); attempt++, h /= 10.0) {
			float up = (float)(v + h), down = (float)(v - h);
			double lp, lm;
			if ((st = write_float(rt, t, i, up, err)) || (st = loss(user, &lp, err)) ||
			    (st = write_float(rt, t, i, down, err)) || (st = loss(user, &lm, err)) ||
			    (st = write_float(rt, t, i, v, err)))
				return st;
			/* The steps actually taken, after rounding to float. */
			double hp = (double)up - v, hm = (double)v - down;
			double q = (lp - lm) / (hp + hm);
			if (rule->kinks && fabs((lp - l0) / hp - (l0 - lm) / hm) > ST_FD_KINK * fmax(floor, fabs(q)))
				continue; /* this step straddles a kink */
			double qs = fmax(floor, fmax(fabs(a), fabs(q)));
			double qe = qs > 0.0 ? fabs(a - q) / qs : 0.0;
			if (kink || qe < e) {
				fd = q;
				e = qe;
			}
			kink = false;
		}
		if (kink) {
			out->skipped++;
			continue;
		}
		if (!any || e > out->worst) {
			any = true;
			out->worst = e;
			out->worst_index = i;
			out->backward = a;
			out->differences = fd;
		}
	}
	out->checked = checks;
	if (out->worst > tol)
		snprintf(out->message, sizeof(out->message),
		         "%s[%zu]: backward %.6g, finite differences %.6g (relative error %.3g, tolerance %g)", what,
		         out->worst_index, out->backward, out->differences, out->worst, tol);
	else if ((double)out->skipped > (rule->kink_share > 0.0 ? rule->kink_share : 0.25) * (double)checks)
		snprintf(out->message, sizeof(out->message), "%s: %zu of %zu elements straddle kinks", what, out->skipped,
		         checks);
	else
		out->passed = true;
	return STRATA_OK;
}

bool st_fd_same(const char *what, const float *a, const float *b, size_t n, double repeat, char *msg,
                size_t msg_size)
{
	for (size_t i = 0; i < n; i++) {
		bool same = repeat > 0.0 ? fabsf(a[i] - b[i]) <= (float)repeat * fmaxf(1.0f, fabsf(a[i])) : a[i] == b[i];
		if (!same) {
			snprintf(msg, msg_size, "%s[%zu]: %.9g then %.9g", what, i, (double)a[i], (double)b[i]);
			return false;
		}
	}
	return true;
}

/* ---- one layer, alone ------------------------------------------------------------------------------ */

typedef struct layer_check {
	strata_session *s;
	strata_layer *layer;
	st_layer_bind *b;
	uint32_t batch;
	bool training;
	uint32_t n_in;
	strata_tensor *in, **in_ptrs; /* the layer's inputs: buffers of the check's own */
	strata_tensor *dx, **dx_ptrs; /* their gradients; NULL pointers for int32 inputs */
	float **x;                    /* host copies of the inputs */
	size_t *in_count;             /* batch x each input's shape */
	bool *is_float;
	strata_tensor out, dy;
	float *r, *y;
	size_t out_count;
} layer_check;

static strata_status lc_forward(layer_check *c, strata_error *err)
{
	strata_forward_args args = {
		.size = sizeof(args),
		.batch = st_layer_batch(c->layer, c->batch),
		.training = c->training,
		.seed = c->s->seed,
		.step = c->s->step,
		.input = c->in_ptrs[0],
		.output = &c->out,
		.inputs = c->in_ptrs,
		.n_inputs = c->n_in,
	};
	c->s->rt->phase = "forward";
	c->b->kept_batch = 0;
	strata_status st = st_host_forward(c->layer, &args, err);
	if (!st)
		c->b->kept_batch = c->batch;
	return st;
}

static strata_status lc_loss(void *user, double *loss, strata_error *err)
{
	layer_check *c = user;
	strata_status st = lc_forward(c, err);
	if (st || (st = st_tensor_read(c->s->rt, &c->out, 0, c->y, c->out_count * sizeof(float), err)))
		return st;
	double l = 0.0;
	for (size_t i = 0; i < c->out_count; i++)
		l += (double)c->r[i] * c->y[i];
	*loss = l;
	return STRATA_OK;
}

/* From grad_output = r (written afresh: the layer may overwrite it in place). */
static strata_status lc_backward(layer_check *c, strata_error *err)
{
	strata_status st = st_tensor_write(c->s->rt, &c->dy, 0, c->r, c->out_count * sizeof(float), err);
	if (st)
		return st;
	strata_backward_args args = {
		.size = sizeof(args),
		.batch = st_layer_batch(c->layer, c->batch),
		.seed = c->s->seed,
		.step = c->s->step,
		.input = c->in_ptrs[0],
		.output = &c->out,
		.grad_output = &c->dy,
		.grad_input = c->dx_ptrs[0],
		.training = c->training,
		.workspaces_kept = c->b->kept_batch == c->batch,
		.inputs = c->in_ptrs,
		.grad_inputs = c->dx_ptrs,
		.n_inputs = c->n_in,
	};
	c->s->rt->phase = "backward";
	c->b->kept_batch = 0;
	return st_host_backward(c->layer, &args, err);
}

/* Deterministic floats in [lo, hi) (xorshift64, as the tests' ts_fill_random). */
static void fill_random(float *dst, size_t n, uint64_t seed, float lo, float hi)
{
	uint64_t x = 0x9E3779B97F4A7C15ull ^ seed;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		dst[i] = lo + (hi - lo) * (float)((x >> 40) / (double)(1ull << 24));
	}
}

static float *floats(size_t n)
{
	return malloc((n ? n : 1) * sizeof(float));
}

static bool has_grad(const strata_layer *l, const st_layer_bind *b, uint32_t w)
{
	return !l->weights[w].state && b->grads && b->grads[w].mem;
}

static void lc_release(layer_check *c)
{
	for (uint32_t k = 0; k < c->n_in; k++) {
		if (c->in)
			st_tensor_release(&c->in[k]);
		if (c->dx)
			st_tensor_release(&c->dx[k]);
		if (c->x)
			free(c->x[k]);
	}
	free(c->in);
	free(c->in_ptrs);
	free(c->dx);
	free(c->dx_ptrs);
	free(c->x);
	free(c->in_count);
	free(c->is_float);
	st_tensor_release(&c->out);
	st_tensor_release(&c->dy);
	free(c->r);
	free(c->y);
}

/* ids uniform in [0, range) into n int32 slots (range <= 1: all 0, an id every layer reading ids
 * takes). */
static void fill_ids(float *dst, size_t n, uint64_t seed, uint32_t range)
{
	uint64_t x = 0x9E3779B97F4A7C15ull ^ seed;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int32_t id = range > 1 ? (int32_t)((x >> 33) % range) : 0;
		memcpy(&dst[i], &id, sizeof(id));
	}
}

static strata_status lc_prepare(layer_check *c, uint64_t seed, uint32_t ids, strata_error *err)
{
	strata_layer *l = c->layer;
	strata_runtime *rt = c->s->rt;
	uint32_t n = l->n_inputs;
	c->n_in = n;
	c->in = calloc(n ? n : 1, sizeof(*c->in));
	c->in_ptrs = calloc(n ? n : 1, sizeof(*c->in_ptrs));
	c->dx = calloc(n ? n : 1, sizeof(*c->dx));
	c->dx_ptrs = calloc(n ? n : 1, sizeof(*c->dx_ptrs));
	c->x = calloc(n ? n : 1, sizeof(*c->x));
	c->in_count = calloc(n ? n : 1, sizeof(*c->in_count));
	c->is_float = calloc(n ? n : 1, sizeof(*c->is_float));
	c->out_count = (size_t)c->batch * st_shape_elems(&l->out);
	c->r = floats(c->out_count);
	c->y = floats(c->out_count);
	if (!c->in || !c->in_ptrs || !c->dx || !c->dx_ptrs || !c->x || !c->in_count || !c->is_float || !c->r || !c->y)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	strata_status st;
	for (uint32_t k = 0; k < n; k++) {
		size_t count = (size_t)c->batch * st_shape_elems(&l->in_shapes[k]);
		c->in_count[k] = count;
		c->is_float[k] = l->in_shapes[k].dtype != STRATA_DTYPE_INT32;
		if (!(c->x[k] = floats(count)))
			return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		/* int32 inputs hold ids, in [0, ids) */
		if (c->is_float[k])
			fill_random(c->x[k], count, seed + 1000 * (uint64_t)k, -1.0f, 1.0f);
		else
			fill_ids(c->x[k], count, seed + 1000 * (uint64_t)k, ids);
		if ((st = st_tensor_alloc(rt, &c->in[k], (count ? count : 1) * sizeof(float), "a gradient check's input", err)) ||
		    (st = st_tensor_write(rt, &c->in[k], 0, c->x[k], count * sizeof(float), err)))
			return st;
		c->in_ptrs[k] = &c->in[k];
		if (!c->is_float[k])
			continue;
		if ((st = st_tensor_alloc(rt, &c->dx[k], (count ? count : 1) * sizeof(float), "a gradient check's input gradient",
		                          err)))
			return st;
		c->dx_ptrs[k] = &c->dx[k];
	}
	/* A layer reading its input's mask (Keras' masking) sees one with about a third of the steps
	 * masked: the layer that makes it does not run in a check of this one alone. */
	int64_t of = n && l->mask_use != STRATA_MASK_NONE && l->mask_use != STRATA_MASK_PRODUCE
	                     ? st_value_mask_of(l->model, l->inputs[0])
	                     : -1;
	if (of >= 0) {
		size_t count = (size_t)c->batch * l->model->layers[of].mask_elems;
		float *mask = floats(count);
		if (!mask)
			return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		fill_random(mask, count, seed + 11, 0.0f, 1.0f);
		for (size_t i = 0; i < count; i++)
			mask[i] = mask[i] < 1.0f / 3.0f ? 0.0f : 1.0f;
		st = st_tensor_write(rt, &c->s->binds[of].mask, 0, mask, count * sizeof(float), err);
		free(mask);
		if (st)
			return st;
	}
	fill_random(c->r, c->out_count, seed + 7, -1.0f, 1.0f);
	size_t out_bytes = (c->out_count ? c->out_count : 1) * sizeof(float);
	if ((st = st_tensor_alloc(rt, &c->out, out_bytes, "a gradient check's output", err)) ||
	    (st = st_tensor_alloc(rt, &c->dy, out_bytes, "a gradient check's output gradient", err)))
		return st;
	return STRATA_OK;
}

/* NaN into every gradient the backward pass must write. */
static strata_status lc_poison(layer_check *c, strata_error *err)
{
	size_t most = 1;
	for (uint32_t k = 0; k < c->n_in; k++)
		most = c->in_count[k] > most ? c->in_count[k] : most;
	for (uint32_t w = 0; w < c->layer->n_weights; w++)
		most = c->layer->weights[w].count > most ? (size_t)c->layer->weights[w].count : most;
	float *nan = floats(most);
	if (!nan)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	for (size_t i = 0; i < most; i++)
		nan[i] = NAN;
	strata_status st = STRATA_OK;
	for (uint32_t k = 0; !st && k < c->n_in; k++)
		if (c->dx_ptrs[k])
			st = st_tensor_write(c->s->rt, &c->dx[k], 0, nan, c->in_count[k] * sizeof(float), err);
	for (uint32_t w = 0; !st && w < c->layer->n_weights; w++)
		if (has_grad(c->layer, c->b, w))
			st = st_tensor_write(c->s->rt, &c->b->grads[w], 0, nan, c->layer->weights[w].count * sizeof(float), err);
	free(nan);
	return st;
}

/* The gradients a backward pass left: each float input's, then each weight's, into g[]. */
static strata_status lc_read_grads(layer_check *c, float **g, strata_error *err)
{
	strata_status st = STRATA_OK;
	size_t t = 0;
	for (uint32_t k = 0; !st && k < c->n_in; k++)
		if (c->is_float[k])
			st = st_tensor_read(c->s->rt, &c->dx[k], 0, g[t++], c->in_count[k] * sizeof(float), err);
	for (uint32_t w = 0; !st && w < c->layer->n_weights; w++)
		if (has_grad(c->layer, c->b, w))
			st = st_tensor_read(c->s->rt, &c->b->grads[w], 0, g[t++], c->layer->weights[w].count * sizeof(float),
			                    err);
	return st;
}

/* A gradient that is not finite is reported as such (st_fd_check_tensor), not as a repeat that
 * differs (NaN never equals itself). */
static bool all_finite(const float *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(g[i]))
			return false;
	return true;
}

/* One mode: every gradient of the layer into out[0 .. n). */
static strata_status lc_check_mode(layer_check *c, const st_fd_rule *rule, strata_gradcheck_tensor *out, size_t n,
                                   float **g, float **again, float **w_values, strata_error *err)
{
	strata_layer *l = c->layer;
	double l0;
	strata_status st;
	if ((st = lc_poison(c, err)) || (st = lc_loss(c, &l0, err)) || (st = lc_backward(c, err)) ||
	    (st = lc_read_grads(c, g, err)) || (st = lc_backward(c, err)) || (st = lc_read_grads(c, again, err)))
		return st;
	size_t t = 0;
	for (uint32_t k = 0; k < c->n_in; k++) {
		if (!c->is_float[k])
			continue;
		strata_gradcheck_tensor *o = &out[t];
		snprintf(o->name, sizeof(o->name), "input %u (%s)", k, st_value_name(l->model, l->inputs[k]));
		o->training = c->training;
		o->input = (int32_t)k;
		o->weight = -1;
		char msg[160];
		if (all_finite(g[t], c->in_count[k]) &&
		    !st_fd_same("second pass", g[t], again[t], c->in_count[k], GC_REPEAT, msg, sizeof(msg))) {
			o->elements = c->in_count[k];
			snprintf(o->message, sizeof(o->message), "%s: %s (a backward pass must overwrite, never add)", o->name,
			         msg);
		} else if ((st = st_fd_check_tensor(c->s->rt, lc_loss, c, &c->in[k], c->x[k], c->in_count[k], g[t], rule, l0,
		                                    o, err))) {
			return st;
		}
		t++;
	}
	for (uint32_t w = 0; w < l->n_weights; w++) {
		if (!has_grad(l, c->b, w))
			continue;
		strata_gradcheck_tensor *o = &out[t];
		size_t count = l->weights[w].count;
		snprintf(o->name, sizeof(o->name), "%s", l->weights[w].name);
		o->training = c->training;
		o->input = -1;
		o->weight = (int32_t)w;
		char msg[160];
		if ((st = st_tensor_read(c->s->rt, &c->b->weights[w], 0, w_values[w], count * sizeof(float), err)))
			return st;
		if (all_finite(g[t], count) && !st_fd_same("second pass", g[t], again[t], count, GC_REPEAT, msg, sizeof(msg))) {
			o->elements = count;
			snprintf(o->message, sizeof(o->message), "%s: %s (a backward pass must overwrite, never add)", o->name,
			         msg);
		} else if ((st = st_fd_check_tensor(c->s->rt, lc_loss, c, &c->b->weights[w], w_values[w], count, g[t], rule,
		                                    l0, o, err))) {
			return st;
		}
		t++;
	}
	(void)n;
	return STRATA_OK;
}

void strata_gradcheck_report_free(strata_gradcheck_report *report)
{
	if (!report)
		return;
	free(report->tensors);
	memset(report, 0, sizeof(*report));
}

/* Host buffers for n gradients: each float input's, then each weight's (with a gradient). */
static float **grad_buffers(const layer_check *c, size_t n)
{
	float **g = calloc(n ? n : 1, sizeof(*g));
	if (!g)
		return NULL;
	size_t t = 0;
	for (uint32_t k = 0; k < c->n_in; k++)
		if (c->is_float[k] && !(g[t++] = floats(c->in_count[k])))
			return g;
	for (uint32_t w = 0; w < c->layer->n_weights; w++)
		if (has_grad(c->layer, c->b, w) && !(g[t++] = floats(c->layer->weights[w].count)))
			return g;
	return g;
}

static bool all_set(float **g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!g[i])
			return false;
	return g != NULL;
}

static void free_buffers(float **g, size_t n)
{
	for (size_t i = 0; g && i < n; i++)
		free(g[i]);
	free(g);
}

/* Persistent state (moving statistics) that the forward passes may update: saved, then put back. */
static strata_status keep_state(layer_check *c, float **saved, bool restore, strata_error *err)
{
	strata_layer *l = c->layer;
	strata_status st = STRATA_OK;
	for (uint32_t w = 0; !st && w < l->n_weights; w++) {
		if (!l->weights[w].state)
			continue;
		size_t bytes = l->weights[w].count * sizeof(float);
		st = restore ? st_tensor_write(c->s->rt, &c->b->weights[w], 0, saved[w], bytes, err)
		             : st_tensor_read(c->s->rt, &c->b->weights[w], 0, saved[w], bytes, err);
	}
	return st;
}

strata_status strata_gradcheck(strata_session *s, const strata_gradcheck_options *options,
                               strata_gradcheck_report *out, strata_error *err)
{
	if (!out)
		return st_fail(err, STRATA_ERR_INVALID, "strata_gradcheck: no report to fill");
	memset(out, 0, sizeof(*out));
	if (!s || !options || options->size < offsetof(strata_gradcheck_options, mode) + sizeof(options->mode))
		return st_fail(err, STRATA_ERR_INVALID, "strata_gradcheck: no session or options, or options too small");
	strata_model *m = s->model;
	if (options->layer >= m->n_layers)
		return st_fail(err, STRATA_ERR_NOT_FOUND, "no layer %zu: the model has %zu", options->layer, m->n_layers);
	strata_layer *l = &m->layers[options->layer];
	if (!l->type->ops.backward)
		return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s:%u:%u: %s: layer type '%s' has no backward pass", m->file,
		               l->pos.line, l->pos.col, l->name, l->type->ops.type);
	uint32_t batch = options->batch ? options->batch : GC_DEFAULT_BATCH;
	/* `ids` came with 0.4: a caller built before has a smaller struct. */
	uint32_t ids = options->size >= offsetof(strata_gradcheck_options, ids) + sizeof(options->ids) ? options->ids : 0;
	if (batch > s->max_batch)
		return st_fail(err, STRATA_ERR_INVALID, "a gradient check of %u samples, the session holds 1 to %u", batch,
		               s->max_batch);
	if (options->mode > STRATA_GRADCHECK_INFERENCE)
		return st_fail(err, STRATA_ERR_INVALID, "strata_gradcheck: unknown mode %d", (int)options->mode);
	if (options->tolerance < 0.0 || options->step < 0.0 || !isfinite(options->tolerance) || !isfinite(options->step))
		return st_fail(err, STRATA_ERR_INVALID, "strata_gradcheck: the tolerance and step must be finite, 0 or more");
	strata_status st = st_session_enable_training(s, err);
	if (st)
		return st;

	st_fd_rule rule = {
		.step = options->step,
		.tolerance = options->tolerance,
		.max_checks = options->max_checks ? options->max_checks : GC_DEFAULT_CHECKS,
		.kinks = true,      /* any layer may have them; a smooth one rarely straddles at both steps */
		.to_largest = true, /* the standard of the tensor's large gradients, whatever their scale */
		/* A bias of a few filters behind a relu: one kink in three is no sign of a wrong pass. */
		.kink_share = 0.5,
	};
	out->tolerance = rule.tolerance > 0.0 ? rule.tolerance : ST_FD_TOLERANCE;
	out->step = rule.step > 0.0 ? rule.step : ST_FD_STEP;
	out->batch = batch;

	layer_check c = {.s = s, .layer = l, .b = &s->binds[options->layer], .batch = batch};
	size_t per_mode = 0, n_modes = options->mode == STRATA_GRADCHECK_BOTH ? 2 : 1;
	float **g = NULL, **again = NULL, **w_values = NULL, **state = NULL;
	if ((st = lc_prepare(&c, options->seed, ids, err)))
		goto done;
	for (uint32_t k = 0; k < c.n_in; k++)
		per_mode += c.is_float[k];
	for (uint32_t w = 0; w < l->n_weights; w++)
		per_mode += has_grad(l, c.b, w);
	out->tensors = calloc(per_mode * n_modes + 1, sizeof(*out->tensors));
	g = grad_buffers(&c, per_mode);
	again = grad_buffers(&c, per_mode);
	w_values = calloc(l->n_weights ? l->n_weights : 1, sizeof(*w_values));
	state = calloc(l->n_weights ? l->n_weights : 1, sizeof(*state));
	bool ok = out->tensors && all_set(g, per_mode) && all_set(again, per_mode) && w_values && state;
	for (uint32_t w = 0; ok && w < l->n_weights; w++) {
		w_values[w] = floats(l->weights[w].count);
		state[w] = floats(l->weights[w].count);
		ok = w_values[w] && state[w];
	}
	if (!ok) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto done;
	}
	if ((st = keep_state(&c, state, false, err)))
		goto done;
	for (size_t mode = 0; mode < n_modes; mode++) {
		c.training = options->mode == STRATA_GRADCHECK_TRAINING || (options->mode == STRATA_GRADCHECK_BOTH && mode == 0);
		if ((st = lc_check_mode(&c, &rule, out->tensors + out->n_tensors, per_mode, g, again, w_values, err)))
			break;
		out->n_tensors += per_mode;
	}
	strata_error later = {0};
	strata_status kept = keep_state(&c, state, true, st ? &later : err);
	st = st ? st : kept;
	out->passed = st == STRATA_OK;
	for (size_t i = 0; i < out->n_tensors; i++)
		out->passed &= out->tensors[i].passed;
done:
	/* The workspaces hold the check's inputs' work, not the session's. */
	c.b->kept_batch = 0;
	free_buffers(g, per_mode);
	free_buffers(again, per_mode);
	free_buffers(w_values, l->n_weights);
	free_buffers(state, l->n_weights);
	lc_release(&c);
	return st;
}
