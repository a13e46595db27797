/* Optimizers: every update rule against a host reference in double precision over several steps,
 * with and without regularization. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"
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

static Suite *optimizer_suite(void)
{
	Suite *s = suite_create("optimizer");
	TCase *tc = tcase_create("updates");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_sgd);
	tcase_add_test(tc, test_adadelta);
	tcase_add_test(tc, test_adam);
	tcase_add_test(tc, test_rmsprop);
	tcase_add_test(tc, test_regularizers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ts_run(optimizer_suite());
}
