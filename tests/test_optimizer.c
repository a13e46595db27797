/* Optimizers: every update rule against a host reference in double precision over several steps,
 * with and without regularization; Adam also against TensorFlow's own float32 arithmetic; the
 * learning-rate schedules against Keras' formulas and in the updates they drive; Keras' gradient
 * clipping (clipnorm, global_clipnorm, clipvalue). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/session.h"
#include "support.h"

enum { IN = 5, UNITS = 3, STEPS = 6, NW = IN * UNITS };

typedef struct host_state {
	double w[NW], s0[NW], s1[NW], s2[NW];
} host_state;

typedef struct fixture {
	strata_registry *reg;
	strata_runtime *rt;
	strata_model *m;
	strata_session *s;
} fixture;

static void open_fixture(fixture *f, const char *optimizer, const char *regularizer)
{
	char yaml[1024];
	snprintf(yaml, sizeof(yaml),
	         "input: {shape: [%d]}\n"
	         "layers:\n"
	         "  - {type: dense, units: %d, use_bias: false, kernel_regularizer: %s}\n"
	         "loss: mean_squared_error\n"
	         "optimizer: %s\n",
	         IN, UNITS, regularizer, optimizer);
	f->reg = ts_registry();
	f->rt = ts_runtime(f->reg);
	f->m = ts_model(f->reg, yaml);
	strata_error err = {0};
	ck_assert_msg(strata_session_create(f->rt, f->m, 4, 3, &f->s, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(st_session_enable_training(f->s, &err) == STRATA_OK, "%s", err.message);
}

static void close_fixture(fixture *f)
{
	strata_session_destroy(f->s);
	strata_runtime_destroy(f->rt);
	strata_model_free(f->m);
	strata_registry_close(f->reg);
}

typedef void (*host_update)(host_state *h, const double *g, const st_optimizer *o, int t);

static void sgd_ref(host_state *h, const double *g, const st_optimizer *o, int t)
{
	(void)t;
	for (int i = 0; i < NW; i++) {
		if (o->momentum == 0.0) {
			h->w[i] -= o->lr * g[i];
			continue;
		}
		h->s0[i] = o->momentum * h->s0[i] - o->lr * g[i];
		h->w[i] += o->nesterov ? o->momentum * h->s0[i] - o->lr * g[i] : h->s0[i];
	}
}

static void adadelta_ref(host_state *h, const double *g, const st_optimizer *o, int t)
{
	(void)t;
	for (int i = 0; i < NW; i++) {
		h->s0[i] = o->rho * h->s0[i] + (1 - o->rho) * g[i] * g[i];
		double upd = g[i] * sqrt(h->s1[i] + o->epsilon) / sqrt(h->s0[i] + o->epsilon);
		h->s1[i] = o->rho * h->s1[i] + (1 - o->rho) * upd * upd;
		h->w[i] -= o->lr * upd;
	}
}

static void adam_ref(host_state *h, const double *g, const st_optimizer *o, int t)
{
	double lr_t = o->lr * sqrt(1 - pow(o->beta_2, t)) / (1 - pow(o->beta_1, t));
	for (int i = 0; i < NW; i++) {
		h->s0[i] = o->beta_1 * h->s0[i] + (1 - o->beta_1) * g[i];
		h->s1[i] = o->beta_2 * h->s1[i] + (1 - o->beta_2) * g[i] * g[i];
		double v = h->s1[i];
		if (o->amsgrad) {
			h->s2[i] = fmax(h->s2[i], v);
			v = h->s2[i];
		}
		h->w[i] -= lr_t * h->s0[i] / (sqrt(v) + o->epsilon);
	}
}

static void rmsprop_ref(host_state *h, const double *g, const st_optimizer *o, int t)
{
	(void)t;
	for (int i = 0; i < NW; i++) {
		h->s0[i] = o->rho * h->s0[i] + (1 - o->rho) * g[i] * g[i];
		double denom = h->s0[i];
		if (o->centered) {
			h->s2[i] = o->rho * h->s2[i] + (1 - o->rho) * g[i];
			denom -= h->s2[i] * h->s2[i];
		}
		if (o->momentum > 0) {
			h->s1[i] = o->momentum * h->s1[i] + o->lr * g[i] / sqrt(denom + o->epsilon);
			h->w[i] -= h->s1[i];
		} else {
			h->w[i] -= o->lr * g[i] / (sqrt(denom) + o->epsilon);
		}
	}
}

/* Runs STEPS updates with fresh random gradients on device and host and compares the weights
 * after each step. Returns how far the weights moved, to show the test is not vacuous. */
static double run_case(const char *optimizer, const char *regularizer, double l1, double l2, host_update ref)
{
	fixture f;
	open_fixture(&f, optimizer, regularizer);
	strata_error err = {0};
	float w[NW], g[NW], got[NW];
	host_state h;
	memset(&h, 0, sizeof(h));
	ck_assert_int_eq(strata_session_read_weight(f.s, 0, 0, w, NW, &err), STRATA_OK);
	for (int i = 0; i < NW; i++)
		h.w[i] = w[i];
	double moved = 0;
	for (int t = 1; t <= STEPS; t++) {
		ts_fill_random(g, NW, 100 + t, -1, 1);
		double gd[NW];
		for (int i = 0; i < NW; i++) {
			double s = h.w[i] > 0 ? 1 : (h.w[i] < 0 ? -1 : 0);
			gd[i] = g[i] + l1 * s + 2 * l2 * h.w[i];
		}
		ck_assert_int_eq(st_tensor_write(f.rt, &f.s->binds[0].grads[0], 0, g, sizeof(g), &err), STRATA_OK);
		ck_assert_msg(st_optimizer_step(f.rt, &f.s->opt, &err) == STRATA_OK, "%s", err.message);
		ref(&h, gd, &f.s->opt, t);
		ck_assert_int_eq(strata_session_read_weight(f.s, 0, 0, got, NW, &err), STRATA_OK);
		for (int i = 0; i < NW; i++) {
			ck_assert_msg(fabs(got[i] - h.w[i]) <= 2e-5 * fmax(1.0, fabs(h.w[i])), "%s step %d w[%d]: %.8f vs %.8f",
			              optimizer, t, i, got[i], h.w[i]);
			/* Copy back so float rounding does not accumulate into a false failure. */
			h.w[i] = got[i];
		}
	}
	for (int i = 0; i < NW; i++)
		moved += fabs(got[i] - w[i]);
	ck_assert_uint_eq(f.s->opt.iterations, STEPS);
	close_fixture(&f);
	return moved;
}

/* TensorFlow's Adam as its dense update computes it (ResourceApplyAdam and
 * ResourceApplyAdamWithAmsgrad, which tf.keras' Adam calls), in float32 and in its order:
 * beta powers pow(float beta, float t), alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t),
 * m += (g - m) * (1 - beta_1), v += (g^2 - v) * (1 - beta_2), w -= (m * alpha) / (sqrt(v) + eps).
 * Only this matches TensorFlow to the last bits: the double reference above cannot tell a step
 * 7e-6 too large (1 - beta_2 rounded to float32 in v but not in alpha) from a right one. */
typedef struct tf_adam_state {
	float m[NW], v[NW], vhat[NW];
} tf_adam_state;

static void tf_adam_ref(float *w, const float *g, tf_adam_state *s, const st_optimizer *o, uint64_t iterations)
{
	const float lr = (float)o->lr, beta_1 = (float)o->beta_1, beta_2 = (float)o->beta_2;
	const float eps = (float)o->epsilon, local_step = (float)iterations;
	const float beta_1_power = powf(beta_1, local_step), beta_2_power = powf(beta_2, local_step);
	const float alpha = lr * sqrtf(1.0f - beta_2_power) / (1.0f - beta_1_power);
	for (int i = 0; i < NW; i++) {
		s->m[i] += (g[i] - s->m[i]) * (1.0f - beta_1);
		s->v[i] += (g[i] * g[i] - s->v[i]) * (1.0f - beta_2);
		float v = s->v[i];
		if (o->amsgrad) {
			s->vhat[i] = fmaxf(s->vhat[i], v);
			v = s->vhat[i];
		}
		w[i] -= (s->m[i] * alpha) / (sqrtf(v) + eps);
	}
}

/* From zero weights, so that the first step is read back exactly (w = -step), STEPS updates on
 * the device and in tf_adam_ref. The first step must agree to 1e-7 relative (the double-precision
 * bias correction made it 7e-6 larger, always); later ones, taken from the device's weights, to
 * one float32 rounding of the weight. */
static void run_tf_adam(const char *optimizer)
{
	fixture f;
	open_fixture(&f, optimizer, "null");
	strata_error err = {0};
	float w[NW] = {0}, g[NW], got[NW];
	tf_adam_state ref;
	memset(&ref, 0, sizeof(ref));
	ck_assert_msg(strata_session_write_weight(f.s, 0, 0, w, NW, &err) == STRATA_OK, "%s", err.message);
	double worst_first = 0;
	for (int t = 1; t <= STEPS; t++) {
		ts_fill_random(g, NW, 300 + t, -1, 1);
		ck_assert_int_eq(st_tensor_write(f.rt, &f.s->binds[0].grads[0], 0, g, sizeof(g), &err), STRATA_OK);
		ck_assert_msg(st_optimizer_step(f.rt, &f.s->opt, &err) == STRATA_OK, "%s", err.message);
		float before[NW];
		memcpy(before, w, sizeof(w));
		tf_adam_ref(w, g, &ref, &f.s->opt, f.s->opt.iterations);
		ck_assert_int_eq(strata_session_read_weight(f.s, 0, 0, got, NW, &err), STRATA_OK);
		for (int i = 0; i < NW; i++) {
			double step = (double)before[i] - w[i], diff = fabs((double)got[i] - w[i]);
			ck_assert_msg(step != 0.0, "%s step %d w[%d] did not move", optimizer, t, i);
			if (t == 1) {
				worst_first = fmax(worst_first, diff / fabs(step));
				ck_assert_msg(diff <= 1e-7 * fabs(step),
				              "%s: first step of w[%d] is %.9g, TensorFlow's %.9g (relative difference %.3g)",
				              optimizer, i, -(double)got[i], step, diff / fabs(step));
			} else {
				ck_assert_msg(diff <= FLT_EPSILON * fabs(w[i]), "%s step %d w[%d]: %.9g vs TensorFlow's %.9g",
				              optimizer, t, i, got[i], w[i]);
			}
			w[i] = got[i];
		}
	}
	printf("%s: first step within %.3g (relative) of TensorFlow's\n", optimizer, worst_first);
	close_fixture(&f);
}

START_TEST(test_adam_tensorflow_float32)
{
	run_tf_adam("adam");
	run_tf_adam("{type: adam, learning_rate: 0.01, amsgrad: true}");
	run_tf_adam("{type: adam, learning_rate: 0.002, beta_1: 0.8, beta_2: 0.99, epsilon: 1.0e-6}");
}
END_TEST

START_TEST(test_sgd)
{
	ck_assert_double_gt(run_case("{type: sgd, learning_rate: 0.1}", "null", 0, 0, sgd_ref), 1e-3);
	ck_assert_double_gt(run_case("{type: sgd, learning_rate: 0.1, momentum: 0.9}", "null", 0, 0, sgd_ref), 1e-3);
	ck_assert_double_gt(run_case("{type: sgd, learning_rate: 0.05, momentum: 0.8, nesterov: true}", "null", 0, 0,
	                             sgd_ref),
	                    1e-3);
}
END_TEST

START_TEST(test_adadelta)
{
	ck_assert_double_gt(run_case("adadelta", "null", 0, 0, adadelta_ref), 1e-4);
	ck_assert_double_gt(run_case("{type: adadelta, learning_rate: 1.0, rho: 0.95, epsilon: 1.0e-7}", "null", 0, 0,
	                             adadelta_ref),
	                    1e-4);
}
END_TEST

START_TEST(test_adam)
{
	ck_assert_double_gt(run_case("adam", "null", 0, 0, adam_ref), 1e-3);
	ck_assert_double_gt(run_case("{type: adam, learning_rate: 0.01, amsgrad: true}", "null", 0, 0, adam_ref), 1e-3);
}
END_TEST

START_TEST(test_rmsprop)
{
	ck_assert_double_gt(run_case("rmsprop", "null", 0, 0, rmsprop_ref), 1e-3);
	ck_assert_double_gt(run_case("{type: rmsprop, momentum: 0.5}", "null", 0, 0, rmsprop_ref), 1e-3);
	ck_assert_double_gt(run_case("{type: rmsprop, centered: true}", "null", 0, 0, rmsprop_ref), 1e-3);
}
END_TEST

START_TEST(test_regularizers)
{
	ck_assert_double_gt(run_case("{type: sgd, learning_rate: 0.1}", "{l1: 0.5}", 0.5, 0, sgd_ref), 1e-3);
	ck_assert_double_gt(run_case("{type: sgd, learning_rate: 0.1}", "{l2: 0.25}", 0, 0.25, sgd_ref), 1e-3);
	ck_assert_double_gt(run_case("{type: adam}", "{l1: 0.1, l2: 0.2}", 0.1, 0.2, adam_ref), 1e-3);
}
END_TEST

/* ---- learning-rate schedules ---------------------------------------------------------------- */

/* The schedule a model file's optimizer names, as the optimizer reads it. */
static st_lr_schedule schedule_of(const char *learning_rate)
{
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
	         "input: {shape: [2]}\nlayers: [{type: dense, units: 1}]\nloss: mean_squared_error\n"
	         "optimizer: {type: sgd, learning_rate: %s}\n",
	         learning_rate);
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model(reg, yaml);
	const st_param_value *lr = st_section_param(&m->recipe.optimizer, "learning_rate");
	st_lr_schedule s = st_lr_schedule_from(&m->recipe.lr_schedule, lr->f);
	strata_model_free(m);
	strata_registry_close(reg);
	return s;
}

static void assert_rate(const st_lr_schedule *s, uint64_t step, double want)
{
	double got = st_lr_at(s, step);
	ck_assert_msg(fabs(got - want) <= 1e-12 * fmax(1.0, fabs(want)), "step %llu: %.15g, expected %.15g",
	              (unsigned long long)step, got, want);
}

/* Each schedule at the steps where Keras' formulas give round numbers by hand. */
START_TEST(test_schedule_formulas)
{
	st_lr_schedule s = schedule_of("0.3");
	assert_rate(&s, 0, 0.3);
	assert_rate(&s, 1000000, 0.3);

	s = schedule_of("{type: exponential_decay, initial_learning_rate: 0.1, decay_steps: 10, decay_rate: 0.5}");
	assert_rate(&s, 0, 0.1);
	assert_rate(&s, 5, 0.1 * sqrt(0.5));
	assert_rate(&s, 10, 0.05);
	assert_rate(&s, 20, 0.025);
	s = schedule_of("{type: exponential_decay, initial_learning_rate: 0.1, decay_steps: 10, decay_rate: 0.5, "
	                "staircase: true}");
	assert_rate(&s, 9, 0.1);
	assert_rate(&s, 19, 0.05);
	assert_rate(&s, 20, 0.025);

	s = schedule_of("{type: inverse_time_decay, initial_learning_rate: 0.1, decay_steps: 10, decay_rate: 1.0}");
	assert_rate(&s, 10, 0.05);
	assert_rate(&s, 15, 0.04);
	assert_rate(&s, 30, 0.025);
	s = schedule_of("{type: inverse_time_decay, initial_learning_rate: 0.1, decay_steps: 10, decay_rate: 1.0, "
	                "staircase: true}");
	assert_rate(&s, 15, 0.05);

	s = schedule_of("{type: polynomial_decay, initial_learning_rate: 0.1, decay_steps: 100, end_learning_rate: 0.01}");
	assert_rate(&s, 0, 0.1);
	assert_rate(&s, 50, 0.055);
	assert_rate(&s, 100, 0.01);
	assert_rate(&s, 500, 0.01);
	s = schedule_of("{type: polynomial_decay, initial_learning_rate: 0.1, decay_steps: 100, end_learning_rate: 0.01, "
	                "power: 2, cycle: true}");
	assert_rate(&s, 0, 0.1);
	assert_rate(&s, 50, 0.09 * 0.25 + 0.01);
	assert_rate(&s, 150, 0.09 * 0.0625 + 0.01); /* decays over 200 steps: (1 - 150/200)^2 */
	s = schedule_of("{type: polynomial_decay, initial_learning_rate: 0.1, decay_steps: 100}");
	assert_rate(&s, 100, 0.0001); /* Keras' end_learning_rate */

	s = schedule_of("{type: cosine_decay, initial_learning_rate: 0.1, decay_steps: 100, alpha: 0.2}");
	assert_rate(&s, 0, 0.1);
	assert_rate(&s, 50, 0.1 * (0.8 * 0.5 + 0.2));
	assert_rate(&s, 100, 0.02);
	assert_rate(&s, 1000, 0.02);
	s = schedule_of("{type: cosine_decay, initial_learning_rate: 0.0, decay_steps: 100, warmup_target: 0.1, "
	                "warmup_steps: 10}");
	assert_rate(&s, 0, 0.0);
	assert_rate(&s, 5, 0.05);
	assert_rate(&s, 10, 0.1);
	assert_rate(&s, 60, 0.05);
	assert_rate(&s, 110, 0.0);
	assert_rate(&s, 5000, 0.0);

	s = schedule_of("{type: piecewise_constant_decay, boundaries: [100, 200], values: [1.0, 0.5, 0.1]}");
	assert_rate(&s, 0, 1.0);
	assert_rate(&s, 100, 1.0);
	assert_rate(&s, 101, 0.5);
	assert_rate(&s, 200, 0.5);
	assert_rate(&s, 201, 0.1);
}
END_TEST

/* Plain SGD at a rate the test computes itself, not the optimizer's. */
static void sgd_at(host_state *h, const double *g, double lr)
{
	for (int i = 0; i < NW; i++)
		h->w[i] -= lr * g[i];
}

/* SGD whose rate halves every two updates, on the host: the k-th update (t = k) uses the rate of
 * the k - 1 updates before it, as Keras' optimizer.iterations. */
static void sgd_halving_ref(host_state *h, const double *g, const st_optimizer *o, int t)
{
	(void)o;
	sgd_at(h, g, 0.1 * pow(0.5, (t - 1) / 2.0));
}

/* SGD at 0.1 for the first update, then 0: the weights move once and then stay. */
static void sgd_once_ref(host_state *h, const double *g, const st_optimizer *o, int t)
{
	(void)o;
	sgd_at(h, g, t == 1 ? 0.1 : 0.0);
}

START_TEST(test_schedule_drives_updates)
{
	ck_assert_double_gt(run_case("{type: sgd, learning_rate: {type: exponential_decay, initial_learning_rate: 0.1, "
	                             "decay_steps: 2, decay_rate: 0.5}}",
	                             "null", 0, 0, sgd_halving_ref),
	                    1e-3);
	ck_assert_double_gt(run_case("{type: sgd, learning_rate: {type: piecewise_constant_decay, boundaries: [0], "
	                             "values: [0.1, 0.0]}}",
	                             "null", 0, 0, sgd_once_ref),
	                    1e-3);
}
END_TEST

/* Keras' gradient clipping, against a host reference of one SGD step (lr 0.1) on a dense layer with
 * a bias (two weights): clipnorm scales each weight's gradient to its norm at most, global_clipnorm
 * all of them by one factor, clipvalue clamps each value; a norm under the limit leaves the
 * gradient as it is. */
static void clip_case(const char *clip, double clipnorm, double global, double value)
{
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
	         "input: {shape: [%d]}\nlayers:\n  - {type: dense, units: %d}\nloss: mean_squared_error\n"
	         "optimizer: {type: sgd, learning_rate: 0.1, %s}\n", IN, UNITS, clip);
	fixture f;
	f.reg = ts_registry();
	f.rt = ts_runtime(f.reg);
	f.m = ts_model(f.reg, yaml);
	strata_error err = {0};
	ck_assert_msg(strata_session_create(f.rt, f.m, 4, 3, &f.s, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(st_session_enable_training(f.s, &err) == STRATA_OK, "%s", err.message);
	float w[NW + UNITS], g[NW + UNITS], got[NW + UNITS];
	double want[NW + UNITS], gd[NW + UNITS];
	ck_assert_int_eq(strata_session_read_weight(f.s, 0, 0, w, NW, &err), STRATA_OK);
	ck_assert_int_eq(strata_session_read_weight(f.s, 0, 1, w + NW, UNITS, &err), STRATA_OK);
	ts_fill_random(g, NW + UNITS, 77, -1, 1);
	g[NW] = 3.0f; /* the bias's gradient the larger one */
	ck_assert_int_eq(st_tensor_write(f.rt, &f.s->binds[0].grads[0], 0, g, NW * sizeof(float), &err), STRATA_OK);
	ck_assert_int_eq(st_tensor_write(f.rt, &f.s->binds[0].grads[1], 0, g + NW, UNITS * sizeof(float), &err),
	                 STRATA_OK);
	double nk = 0, nb = 0;
	for (int i = 0; i < NW + UNITS; i++)
		*(i < NW ? &nk : &nb) += (double)g[i] * g[i];
	nk = sqrt(nk);
	nb = sqrt(nb);
	double all = sqrt(nk * nk + nb * nb);
	for (int i = 0; i < NW + UNITS; i++) {
		double v = g[i], n = i < NW ? nk : nb;
		if (clipnorm > 0 && n > clipnorm)
			v *= clipnorm / n;
		if (global > 0 && all > global)
			v *= global / all;
		if (value > 0)
			v = fmax(-value, fmin(value, v));
		gd[i] = v;
		want[i] = w[i] - 0.1 * v;
	}
	ck_assert_msg(st_optimizer_step(f.rt, &f.s->opt, &err) == STRATA_OK, "%s", err.message);
	ck_assert_int_eq(strata_session_read_weight(f.s, 0, 0, got, NW, &err), STRATA_OK);
	ck_assert_int_eq(strata_session_read_weight(f.s, 0, 1, got + NW, UNITS, &err), STRATA_OK);
	double changed = 0;
	for (int i = 0; i < NW + UNITS; i++) {
		ck_assert_msg(fabs(got[i] - want[i]) <= 1e-6, "%s: w[%d] %.8f, the reference's %.8f", clip, i, got[i], want[i]);
		changed += fabs(gd[i] - g[i]);
	}
	/* The cases clip something, except the one whose limit is above every norm. */
	ck_assert_msg((changed > 1e-3) == (clipnorm != 100), "%s: the gradients changed by %g", clip, changed);
	close_fixture(&f);
}

START_TEST(test_gradient_clipping)
{
	clip_case("clipnorm: 1.0", 1.0, 0, 0);
	clip_case("global_clipnorm: 1.5", 0, 1.5, 0);
	clip_case("clipvalue: 0.4", 0, 0, 0.4);
	clip_case("clipnorm: 2.0, clipvalue: 0.5", 2.0, 0, 0.5);
	clip_case("clipnorm: 100", 100, 0, 0);
}
END_TEST

START_TEST(test_clipping_exclusive)
{
	strata_registry *reg = ts_registry();
	strata_runtime *rt = ts_runtime(reg);
	strata_model *m = ts_model(reg, "input: {shape: [2]}\nlayers:\n  - {type: dense, units: 1}\n"
	                                "loss: mean_squared_error\noptimizer: {type: adam, clipnorm: 1, global_clipnorm: 1}\n");
	strata_session *s = NULL;
	strata_error err = {0};
	ck_assert_int_eq(strata_session_create(rt, m, 4, 3, &s, &err), STRATA_OK);
	ck_assert_int_eq(st_session_enable_training(s, &err), STRATA_ERR_INVALID);
	ck_assert_msg(strstr(err.message, "only one of clipnorm and global_clipnorm"), "%s", err.message);
	strata_session_destroy(s);
	strata_runtime_destroy(rt);
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

static Suite *optimizer_suite(void)
{
	Suite *s = suite_create("optimizer");
	TCase *tc = tcase_create("updates");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_sgd);
	tcase_add_test(tc, test_adadelta);
	tcase_add_test(tc, test_adam);
	tcase_add_test(tc, test_adam_tensorflow_float32);
	tcase_add_test(tc, test_rmsprop);
	tcase_add_test(tc, test_regularizers);
	tcase_add_test(tc, test_schedule_formulas);
	tcase_add_test(tc, test_schedule_drives_updates);
	tcase_add_test(tc, test_gradient_clipping);
	tcase_add_test(tc, test_clipping_exclusive);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ts_run(optimizer_suite());
}
