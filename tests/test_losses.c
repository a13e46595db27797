/* Losses and regularizers on the device: each gradient against central finite differences of
 * the device's own loss value, and the loss value against a host formula. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/session.h"
#include "support.h"

enum { B = 3, C = 4 };

typedef struct fixture {
	ts_device dev;
	ts_net net;
} fixture;

static void open_fixture(fixture *f, const char *loss, const char *activation, const char *extra)
{
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
	         "input: {shape: [6]}\nlayers:\n  - {type: dense, units: %d, activation: %s%s}\nloss: %s\n"
	         "optimizer: {type: sgd, learning_rate: 1.0}\n",
	         C, activation, extra, loss);
	f->dev = ts_device_open();
	f->net = ts_net_open(&f->dev, yaml, B, 1);
	strata_error err = {0};
	ck_assert_msg(st_session_enable_training(f->net.s, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(st_loss_prepare(f->net.s, &err) == STRATA_OK, "%s", err.message);
	int labels[B] = {2, 0, 3};
	st_tensor_write(f->dev.rt, &f->net.s->heads[0].labels, 0, labels, sizeof(labels), &err);
}

static void close_fixture(fixture *f)
{
	ts_net_close(&f->net);
	ts_device_close(&f->dev);
}

/* The device's mean loss over the batch for outputs y; its gradient into `grad` when not NULL. */
static double device_loss(fixture *f, const float *y, float *grad)
{
	strata_error err = {0};
	st_tensor_write(f->dev.rt, st_session_output(f->net.s), 0, y, B * C * sizeof(float), &err);
	ck_assert_int_eq(st_loss_zero_sums(f->net.s, &err), STRATA_OK);
	ck_assert_msg(st_loss_compute(f->net.s, B, &err) == STRATA_OK, "%s", err.message);
	if (grad)
		st_tensor_read(f->dev.rt, st_session_output_grad(f->net.s), 0, grad, B * C * sizeof(float), &err);
	double loss, correct, reg;
	ck_assert_int_eq(st_loss_read_sums(f->net.s, &loss, &correct, &reg, &err), STRATA_OK);
	return loss / B;
}

static void softmax_rows(const double *z, float *y)
{
	for (int b = 0; b < B; b++) {
		double mx = z[b * C], sum = 0;
		for (int c = 1; c < C; c++)
			mx = fmax(mx, z[b * C + c]);
		for (int c = 0; c < C; c++)
			sum += exp(z[b * C + c] - mx);
		for (int c = 0; c < C; c++)
			y[b * C + c] = (float)(exp(z[b * C + c] - mx) / sum);
	}
}

static void assert_close(double analytic, double numeric, const char *what, int i)
{
	ck_assert_msg(fabs(analytic - numeric) <= 2e-2 * fmax(fabs(analytic), fabs(numeric)) + 1e-4,
	              "%s[%d]: analytic %.6f, finite differences %.6f", what, i, analytic, numeric);
}

/* Cross-entropy folded with the last layer's softmax: the gradient with respect to the logits. */
START_TEST(test_crossentropy_folded_fd)
{
	fixture f;
	open_fixture(&f, "categorical_crossentropy", "softmax", "");
	ck_assert(f.net.s->heads[0].folded);
	double z[B * C];
	float y[B * C], grad[B * C], zf[B * C];
	ts_fill_random(zf, B * C, 4, -2, 2);
	for (int i = 0; i < B * C; i++)
		z[i] = zf[i];
	softmax_rows(z, y);
	device_loss(&f, y, grad);
	double nonzero = 0;
	for (int i = 0; i < B * C; i++) {
		const double e = 1e-2;
		double zp[B * C], zm[B * C];
		memcpy(zp, z, sizeof(z));
		memcpy(zm, z, sizeof(z));
		zp[i] += e;
		zm[i] -= e;
		float yp[B * C], ym[B * C];
		softmax_rows(zp, yp);
		softmax_rows(zm, ym);
		double numeric = (device_loss(&f, yp, NULL) - device_loss(&f, ym, NULL)) / (2 * e);
		assert_close(grad[i], numeric, "dL/dz", i);
		nonzero += fabs(grad[i]);
	}
	ck_assert_double_gt(nonzero, 0.1);
	close_fixture(&f);
}
END_TEST

/* Without a softmax to fold (sigmoid outputs), MSE, and the sparse form: dL/dy directly. */
static void fd_on_outputs(const char *loss, const char *activation)
{
	fixture f;
	open_fixture(&f, loss, activation, "");
	ck_assert(!f.net.s->heads[0].folded);
	float y[B * C], grad[B * C];
	ts_fill_random(y, B * C, 5, 0.2f, 0.8f);
	device_loss(&f, y, grad);
	double nonzero = 0;
	for (int i = 0; i < B * C; i++) {
		const float e = 1e-3f;
		float yp[B * C], ym[B * C];
		memcpy(yp, y, sizeof(y));
		memcpy(ym, y, sizeof(y));
		yp[i] += e;
		ym[i] -= e;
		double numeric = (device_loss(&f, yp, NULL) - device_loss(&f, ym, NULL)) / (yp[i] - ym[i]);
		assert_close(grad[i], numeric, loss, i);
		nonzero += fabs(grad[i]);
	}
	ck_assert_double_gt(nonzero, 0.1);
	close_fixture(&f);
}

START_TEST(test_crossentropy_fd)
{
	fd_on_outputs("categorical_crossentropy", "sigmoid");
}
END_TEST

START_TEST(test_sparse_crossentropy_fd)
{
	fd_on_outputs("sparse_categorical_crossentropy", "sigmoid");
}
END_TEST

START_TEST(test_mse_fd)
{
	fd_on_outputs("mean_squared_error", "linear");
}
END_TEST

/* Loss values against host formulas (Keras' clipping), including an output below the clip. */
START_TEST(test_loss_values)
{
	const char *losses[] = {"categorical_crossentropy", "mean_squared_error"};
	for (int k = 0; k < 2; k++) {
		fixture f;
		open_fixture(&f, losses[k], "linear", "");
		float y[B * C];
		ts_fill_random(y, B * C, 6, 0.05f, 0.9f);
		y[0 * C + 2] = 1e-9f; /* the true class of sample 0 */
		int labels[B] = {2, 0, 3};
		double want = 0;
		for (int b = 0; b < B; b++)
			for (int c = 0; c < C; c++) {
				double t = c == labels[b], v = y[b * C + c];
				want += k == 0 ? -t * log(fmin(fmax(v, 1e-7), 1 - 1e-7)) : (v - t) * (v - t) / C;
			}
		double got = device_loss(&f, y, NULL);
		ck_assert_msg(isfinite(got) && fabs(got - want / B) <= 1e-5 * fmax(1, want / B), "%s: %g vs %g", losses[k],
		              got, want / B);
		close_fixture(&f);
	}
}
END_TEST

/* Regularization: the gradient the optimizer adds (SGD with lr 1 and a zero loss gradient moves
 * w by exactly minus the regularization gradient) against finite differences of the term the
 * loss reports. */
static void regularizer_fd(const char *regularizer)
{
	fixture f;
	open_fixture(&f, "mean_squared_error", "linear", regularizer);
	enum { N = 6 * C };
	float w[N], zero[N] = {0}, after[N];
	ts_fill_random(w, N, 8, 0.1f, 1.0f);
	for (int i = 0; i < N; i += 2)
		w[i] = -w[i]; /* both signs, away from L1's kink at 0 */
	strata_error err = {0};
	ck_assert_int_eq(strata_session_write_weight(f.net.s, 0, 0, w, N, &err), STRATA_OK);
	strata_tensor *grads = f.net.s->binds[0].grads;
	ck_assert_int_eq(st_tensor_write(f.dev.rt, &grads[0], 0, zero, sizeof(zero), &err), STRATA_OK);
	ck_assert_int_eq(st_tensor_write(f.dev.rt, &grads[1], 0, zero, C * sizeof(float), &err), STRATA_OK);
	ck_assert_msg(st_optimizer_step(f.dev.rt, &f.net.s->opt, &err) == STRATA_OK, "%s", err.message);
	ck_assert_int_eq(strata_session_read_weight(f.net.s, 0, 0, after, N, &err), STRATA_OK);
	double nonzero = 0;
	for (int i = 0; i < N; i++) {
		double analytic = w[i] - after[i];
		const float e = 1e-2f;
		float wp[N], wm[N];
		memcpy(wp, w, sizeof(w));
		memcpy(wm, w, sizeof(w));
		wp[i] += e;
		wm[i] -= e;
		double rp, rm, l, c;
		ck_assert_int_eq(strata_session_write_weight(f.net.s, 0, 0, wp, N, &err), STRATA_OK);
		ck_assert_int_eq(st_loss_read_sums(f.net.s, &l, &c, &rp, &err), STRATA_OK);
		ck_assert_int_eq(strata_session_write_weight(f.net.s, 0, 0, wm, N, &err), STRATA_OK);
		ck_assert_int_eq(st_loss_read_sums(f.net.s, &l, &c, &rm, &err), STRATA_OK);
		assert_close(analytic, (rp - rm) / (wp[i] - wm[i]), regularizer, i);
		nonzero += fabs(analytic);
	}
	ck_assert_double_gt(nonzero, 0.01);
	close_fixture(&f);
}

START_TEST(test_regularizers_fd)
{
	regularizer_fd(", kernel_regularizer: {l1: 0.05}");
	regularizer_fd(", kernel_regularizer: {l2: 0.1}");
	regularizer_fd(", kernel_regularizer: {l1: 0.02, l2: 0.03}");
}
END_TEST

START_TEST(test_no_loss_refused)
{
	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev, "input: {shape: [3]}\nlayers:\n  - {type: dense, units: 2}\n", 2, 1);
	strata_error err = {0};
	ck_assert_int_eq(st_loss_prepare(net.s, &err), STRATA_ERR_INVALID);
	ck_assert_msg(strstr(err.message, "no loss") != NULL, "%s", err.message);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

static Suite *losses_suite(void)
{
	Suite *s = suite_create("losses");
	TCase *tc = tcase_create("finite_differences");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_crossentropy_folded_fd);
	tcase_add_test(tc, test_crossentropy_fd);
	tcase_add_test(tc, test_sparse_crossentropy_fd);
	tcase_add_test(tc, test_mse_fd);
	tcase_add_test(tc, test_loss_values);
	tcase_add_test(tc, test_regularizers_fd);
	tcase_add_test(tc, test_no_loss_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ts_run(losses_suite());
}
