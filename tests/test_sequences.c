/* The sequence layers' behaviour that finite differences and PyTorch do not show (issue 15):
 *  - a recurrent layer's dropout is Keras 3's: one mask per sample over the input features, the
 *    same at every step, scaled by 1 / (1 - rate), about `rate` of them dropped, different per
 *    sample and per step of training, none at inference; recurrent_dropout likewise on the state
 *    the recurrent product reads;
 *  - the embedding's gradient is exact and the same bit for bit from run to run: ids repeated
 *    many times, against a host sum in position order;
 *  - time_distributed runs its layer on every step as on separate samples: a convolution over
 *    (steps, h, w, c) equals the same convolution (same seed, same weights) on steps x samples;
 *  - a merge of values with different masks carries their AND. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/session.h"
#include "support.h"

/* A session in training mode on `yaml`, batch `batch`, seed 5. */
static ts_net open_net(ts_device *dev, const char *yaml, uint32_t batch)
{
	strata_error err = {0};
	*dev = ts_device_open();
	ts_net net = ts_net_open(dev, yaml, batch, 5);
	ck_assert_int_eq(st_session_enable_training(net.s, &err), STRATA_OK);
	return net;
}

static void forward(ts_device *dev, ts_net *net, const float *x, size_t n_in, uint32_t batch, bool training,
                    uint64_t step, float *y, size_t n_out)
{
	strata_error err = {0};
	net->s->step = step;
	ts_tensor_write(dev->rt, &net->s->input, 0, x, n_in);
	strata_status st = st_session_forward_device(net->s, batch, training, &err);
	ck_assert_msg(st == STRATA_OK, "forward: %s", err.message);
	ts_tensor_read(dev->rt, st_session_output(net->s), y, n_out);
}

enum { STEPS = 4, FEATURES = 256, BATCH = 3 };

/* A linear SimpleRNN of one unit whose kernel is ones and recurrent kernel zeros: its output at
 * every step is the sum of that step's input features as the layer saw them. With inputs of ones
 * that is the kept features times the scale. */
START_TEST(test_input_dropout)
{
	const char *yaml = "name: d\ninput: {shape: [4, 256]}\nlayers:\n"
	                   "  - {type: simple_rnn, units: 1, activation: linear, kernel_initializer: ones,\n"
	                   "     recurrent_initializer: zeros, use_bias: false, dropout: 0.25, return_sequences: true}\n";
	ts_device dev;
	ts_net net = open_net(&dev, yaml, BATCH);
	float x[BATCH * STEPS * FEATURES], y[BATCH * STEPS], z[BATCH * STEPS];
	for (size_t i = 0; i < sizeof(x) / sizeof(x[0]); i++)
		x[i] = 1.0f;
	forward(&dev, &net, x, BATCH * STEPS * FEATURES, BATCH, false, 1, y, BATCH * STEPS);
	for (int i = 0; i < BATCH * STEPS; i++)
		ck_assert_float_eq_tol(y[i], (float)FEATURES, 1e-3f); /* inference: nothing dropped */
	forward(&dev, &net, x, BATCH * STEPS * FEATURES, BATCH, true, 1, y, BATCH * STEPS);
	for (int b = 0; b < BATCH; b++) {
		/* kept features times 4/3: a whole number of kept ones, between 40% and 95% of them */
		double kept = y[b * STEPS] * 0.75;
		ck_assert_double_eq_tol(kept, round(kept), 1e-3);
		ck_assert(kept > 0.6 * FEATURES && kept < 0.9 * FEATURES);
		for (int t = 1; t < STEPS; t++) /* the same mask at every step */
			ck_assert_float_eq(y[b * STEPS + t], y[b * STEPS]);
	}
	ck_assert(y[0] != y[STEPS] || y[STEPS] != y[2 * STEPS]); /* a mask per sample */
	forward(&dev, &net, x, BATCH * STEPS * FEATURES, BATCH, true, 2, z, BATCH * STEPS);
	ck_assert(memcmp(y, z, sizeof(y)) != 0); /* another step, other masks */
	forward(&dev, &net, x, BATCH * STEPS * FEATURES, BATCH, true, 1, z, BATCH * STEPS);
	ck_assert_mem_eq(y, z, sizeof(y)); /* the same step, the same masks */
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* 256 linear units fed 1 at step 0 and 0 after, recurrent kernel ones: at step 1 every unit reads
 * the sum of the state as the recurrent product saw it, the kept units times the scale. */
START_TEST(test_recurrent_dropout)
{
	const char *yaml = "name: r\ninput: {shape: [2, 1]}\nlayers:\n"
	                   "  - {type: simple_rnn, units: 256, activation: linear, kernel_initializer: ones,\n"
	                   "     recurrent_initializer: ones, use_bias: false, recurrent_dropout: 0.5, return_sequences: true}\n";
	ts_device dev;
	ts_net net = open_net(&dev, yaml, BATCH);
	float x[BATCH * 2] = {1, 0, 1, 0, 1, 0}, y[BATCH * 2 * 256];
	forward(&dev, &net, x, BATCH * 2, BATCH, false, 1, y, BATCH * 2 * 256);
	ck_assert_float_eq_tol(y[256], 256.0f, 1e-3f);
	forward(&dev, &net, x, BATCH * 2, BATCH, true, 1, y, BATCH * 2 * 256);
	for (int b = 0; b < BATCH; b++) {
		const float *h0 = y + b * 512, *h1 = h0 + 256;
		ck_assert_float_eq(h0[0], 1.0f); /* step 0: no state to drop */
		double kept = h1[0] * 0.5;
		ck_assert_double_eq_tol(kept, round(kept), 1e-3);
		ck_assert(kept > 0.35 * 256 && kept < 0.65 * 256);
		for (int j = 1; j < 256; j++) /* every unit read the same dropped state */
			ck_assert_float_eq(h1[j], h1[0]);
	}
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* Ids 0..6 over 4 samples of 200 positions, so each row gathers about 114 gradients: the table's
 * gradient equals a host sum in position order exactly, and a second backward pass gives the same
 * bits. */
START_TEST(test_embedding_gradient)
{
	enum { N = 4, T = 200, V = 7, D = 3 };
	const char *yaml = "name: e\ninputs: [{name: ids, shape: [200], dtype: int32}]\nlayers:\n"
	                   "  - {type: embedding, input_dim: 7, output_dim: 3}\n";
	ts_device dev;
	ts_net net = open_net(&dev, yaml, N);
	strata_error err = {0};
	int32_t ids[N * T];
	float dy[N * T * D], want[V * D] = {0}, got[V * D], again[V * D];
	ts_fill_random(dy, N * T * D, 9, -1.0f, 1.0f);
	for (int i = 0; i < N * T; i++)
		ids[i] = (i * 7919) % 13 < 12 ? (i * 31) % V : 9; /* some out of range: no gradient */
	for (int i = 0; i < N * T; i++)
		if (ids[i] < V)
			for (int d = 0; d < D; d++)
				want[ids[i] * D + d] += dy[i * D + d];
	st_tensor_write(dev.rt, &net.s->input, 0, ids, sizeof(ids), &err);
	for (int pass = 0; pass < 2; pass++) {
		ck_assert_int_eq(st_session_forward_device(net.s, N, true, &err), STRATA_OK);
		ts_tensor_write(dev.rt, st_session_layer_grad(net.s, 0), 0, dy, N * T * D);
		strata_tensor *g = NULL;
		strata_status st = st_session_backward_from(net.s, N, 0, true, &g, &err);
		ck_assert_msg(st == STRATA_OK, "backward: %s", err.message);
		ts_tensor_read(dev.rt, &net.s->binds[0].grads[0], pass ? again : got, V * D);
	}
	for (int k = 0; k < V * D; k++)
		ck_assert_float_eq(got[k], want[k]);
	ck_assert_mem_eq(got, again, sizeof(got));
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

START_TEST(test_time_distributed)
{
	const char *td = "name: td\ninput: {shape: [3, 6, 6, 2]}\nlayers:\n"
	                 "  - {type: time_distributed, layer: {type: conv2d, filters: 4, kernel_size: 3, bias_initializer: ones}}\n";
	const char *plain = "name: plain\ninput: {shape: [6, 6, 2]}\nlayers:\n"
	                    "  - {type: conv2d, filters: 4, kernel_size: 3, bias_initializer: ones}\n";
	enum { SAMPLES = 2, STEPS3 = 3, IN = 6 * 6 * 2, OUT = 4 * 4 * 4 };
	ts_device dev;
	ts_net a = open_net(&dev, td, SAMPLES);
	ts_net b = ts_net_open(&dev, plain, SAMPLES * STEPS3, 5);
	float x[SAMPLES * STEPS3 * IN], ya[SAMPLES * STEPS3 * OUT], yb[SAMPLES * STEPS3 * OUT];
	ts_fill_random(x, SAMPLES * STEPS3 * IN, 3, -1.0f, 1.0f);
	forward(&dev, &a, x, SAMPLES * STEPS3 * IN, SAMPLES, false, 1, ya, SAMPLES * STEPS3 * OUT);
	forward(&dev, &b, x, SAMPLES * STEPS3 * IN, SAMPLES * STEPS3, false, 1, yb, SAMPLES * STEPS3 * OUT);
	ck_assert_mem_eq(ya, yb, sizeof(ya));
	ck_assert(ya[0] != 0.0f);
	ts_net_close(&b);
	ts_net_close(&a);
	ts_device_close(&dev);
}
END_TEST

/* A merge of values with different masks carries their AND (Keras' Merge.compute_mask): two
 * Masking layers of one sequence mask different steps, their sum is pooled over the steps both
 * keep. Steps [0,0] [1,1] [2,3] [4,5]: mask_value 0 masks step 0, mask_value 1 step 1; Masking
 * zeroes its masked steps, so the sum is 0, [1,1], [4,6], [8,10] and the mean over steps 2 and 3 is
 * [6, 8] (over all steps it would be [3.25, 4.25], over m1's steps [13/3, 17/3]). */
START_TEST(test_merged_masks)
{
	const char *yaml = "name: mm\ninputs: [{name: x, shape: [4, 2]}]\nlayers:\n"
	                   "  - {type: masking, mask_value: 0.0, name: m1, inputs: x}\n"
	                   "  - {type: masking, mask_value: 1.0, name: m2, inputs: x}\n"
	                   "  - {type: add, name: both, inputs: [m1, m2]}\n"
	                   "  - {type: global_average_pooling1d, name: gap, inputs: both}\n";
	ts_device dev;
	ts_net net = open_net(&dev, yaml, 2);
	const float x[2 * 8] = {0, 0, 1, 1, 2, 3, 4, 5, /* a second sample, nothing masked: */ 2, 2, 3, 3, 4, 4, 5, 5};
	float y[4];
	forward(&dev, &net, x, 16, 2, false, 0, y, 4);
	ck_assert_float_eq_tol(y[0], 6.0f, 1e-5f);
	ck_assert_float_eq_tol(y[1], 8.0f, 1e-5f);
	ck_assert_float_eq_tol(y[2], 7.0f, 1e-5f); /* (4 + 6 + 8 + 10) / 4 */
	ck_assert_float_eq_tol(y[3], 7.0f, 1e-5f);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

static Suite *sequences_suite(void)
{
	Suite *s = suite_create("sequences");
	TCase *tc = tcase_create("behaviour");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_input_dropout);
	tcase_add_test(tc, test_recurrent_dropout);
	tcase_add_test(tc, test_embedding_gradient);
	tcase_add_test(tc, test_time_distributed);
	tcase_add_test(tc, test_merged_masks);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ts_run(sequences_suite());
}
