/* Training end to end on real MNIST: a short run must learn, the same seed must give the same
 * weights, and a run resumed from a checkpoint must end where an uninterrupted one does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/dataset.h"
#include "exec/session.h"
#include "support.h"

static strata_dataset *mnist(strata_runtime *rt, bool train, uint32_t offset, uint32_t limit, bool standardize,
                             const strata_dataset *reference)
{
	return ts_mnist(rt, train, (strata_dataset_options){.offset = offset, .limit = limit, .standardize = standardize,
	                                                    .reference = reference});
}

START_TEST(test_short_cnn_run_learns)
{
	ts_device dev = ts_device_open();
	ts_net net = ts_net_from(&dev, ts_model_file(dev.reg, "../models/mnist_cnn.yaml"), 64, 1);
	strata_session *s = net.s;
	strata_dataset *train = mnist(dev.rt, true, 0, 4096, false, NULL);
	strata_dataset *test = mnist(dev.rt, false, 0, 1000, false, NULL);
	strata_error err = {0};

	strata_eval_result before, after;
	ck_assert_msg(strata_evaluate(s, test, 64, &before, &err) == STRATA_OK, "%s", err.message);
	strata_fit_options o = {.size = sizeof(o), .epochs = 1, .batch_size = 64};
	ck_assert_msg(strata_fit(s, train, NULL, &o, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(strata_evaluate(s, test, 64, &after, &err) == STRATA_OK, "%s", err.message);
	printf("mnist_cnn, 4096 images, 1 epoch: test accuracy %.4f -> %.4f, loss %.4f -> %.4f, LRAP %.4f\n",
	       before.accuracy, after.accuracy, before.loss, after.loss, after.lrap);
	/* Untrained: near chance. One epoch of 64 Adadelta steps: well above it. */
	ck_assert_double_lt(before.accuracy, 0.3);
	ck_assert_double_gt(after.accuracy, 0.85);
	ck_assert_double_lt(after.loss, 0.6);
	ck_assert_double_gt(after.lrap, 0.9);
	ck_assert_uint_eq(s->step, 64);
	ck_assert_uint_eq(s->epoch, 1);

	strata_dataset_free(train);
	strata_dataset_free(test);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* A small network with dropout and shuffling, so resuming must restore both the order of the
 * samples and the dropout masks. */
static const char small_yaml[] = "name: small\n"
                                 "input: {shape: [28, 28, 1]}\n"
                                 "layers:\n"
                                 "  - {type: conv2d, filters: 4, kernel_size: 5, strides: 2, activation: relu}\n"
                                 "  - {type: maxpool2d}\n"
                                 "  - {type: dropout, rate: 0.3}\n"
                                 "  - {type: flatten}\n"
                                 "  - {type: dense, units: 10, activation: softmax}\n"
                                 "loss: categorical_crossentropy\n"
                                 "optimizer: {type: adam, learning_rate: 0.01}\n";

/* small_yaml for batches of 32, its weights from `seed`. */
static ts_net start(const ts_device *dev, uint64_t seed)
{
	return ts_net_open(dev, small_yaml, 32, seed);
}

static void fit(ts_net *r, strata_dataset *train, uint32_t epochs, const char *save, const char *resume)
{
	strata_error err = {0};
	strata_fit_options o = {.size = sizeof(o), .epochs = epochs, .batch_size = 32, .save_path = save,
	                        .resume_path = resume};
	ck_assert_msg(strata_fit(r->s, train, NULL, &o, &err) == STRATA_OK, "%s", err.message);
}

/* Counts values that differ between the two sessions' weights. */
static size_t weight_differences(ts_net *a, ts_net *b)
{
	size_t diffs = 0;
	strata_error err = {0};
	for (size_t l = 0; l < strata_model_layer_count(a->m); l++)
		for (size_t w = 0; w < strata_session_weight_count(a->s, l); w++) {
			strata_shape shape;
			strata_session_weight_info(a->s, l, w, NULL, &shape);
			size_t n = 1;
			for (uint32_t d = 0; d < shape.rank; d++)
				n *= (size_t)shape.dims[d];
			float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
			ck_assert_int_eq(strata_session_read_weight(a->s, l, w, x, n, &err), STRATA_OK);
			ck_assert_int_eq(strata_session_read_weight(b->s, l, w, y, n, &err), STRATA_OK);
			for (size_t i = 0; i < n; i++)
				diffs += memcmp(&x[i], &y[i], sizeof(float)) != 0;
			free(x);
			free(y);
		}
	return diffs;
}

START_TEST(test_same_seed_same_weights)
{
	ts_device dev = ts_device_open();
	strata_dataset *train = mnist(dev.rt, true, 0, 640, false, NULL);
	ts_net a = start(&dev, 7);
	fit(&a, train, 1, NULL, NULL);
	ts_net b = start(&dev, 7);
	fit(&b, train, 1, NULL, NULL);
	ck_assert_uint_eq(weight_differences(&a, &b), 0);
	ts_net_close(&b);
	ts_net c = start(&dev, 8);
	fit(&c, train, 1, NULL, NULL);
	ck_assert_uint_gt(weight_differences(&a, &c), 100);
	ts_net_close(&c);
	ts_net_close(&a);
	strata_dataset_free(train);
	ts_device_close(&dev);
}
END_TEST

START_TEST(test_resume_matches_uninterrupted)
{
	ts_device dev = ts_device_open();
	strata_dataset *train = mnist(dev.rt, true, 0, 640, false, NULL);
	char dir[256];
	ts_tmpdir_make(dir, sizeof(dir), "test-resume");
	char *ckpt = ts_join(dir, "w.stw");

	ts_net straight = start(&dev, 11);
	fit(&straight, train, 2, NULL, NULL);

	ts_net first = start(&dev, 11);
	fit(&first, train, 1, ckpt, NULL);
	ts_net_close(&first);

	/* Another seed for the session: the checkpoint's seed orders the samples of the rest. */
	ts_net resumed = start(&dev, 99);
	fit(&resumed, train, 2, NULL, ckpt);
	ck_assert_uint_eq(resumed.s->seed, 11);
	ck_assert_uint_eq(resumed.s->epoch, 2);
	ck_assert_uint_eq(resumed.s->step, straight.s->step);
	ck_assert_uint_eq(weight_differences(&straight, &resumed), 0);

	/* A run resumed at its last epoch has nothing left to do and changes nothing. */
	strata_error err = {0};
	ck_assert_int_eq(strata_session_save(resumed.s, ckpt, &err), STRATA_OK);
	ts_net_close(&resumed);
	resumed = start(&dev, 11);
	fit(&resumed, train, 2, NULL, ckpt);
	ck_assert_uint_eq(weight_differences(&straight, &resumed), 0);
	ts_net_close(&resumed);

	ts_net_close(&straight);
	ts_tmpdir_remove(dir);
	free(ckpt);
	strata_dataset_free(train);
	ts_device_close(&dev);
}
END_TEST

/* Asks to stop once the epoch reaches `at` batches, as a Ctrl-C handler would. */
typedef struct stopper {
	volatile int flag;
	uint32_t epoch, at;
} stopper;

static void stop_at(void *user, const strata_progress *p)
{
	stopper *st = user;
	if (p->epoch == st->epoch && p->batch >= st->at)
		st->flag = 1;
}

START_TEST(test_interrupt_mid_epoch_then_resume)
{
	ts_device dev = ts_device_open();
	strata_dataset *train = mnist(dev.rt, true, 0, 640, false, NULL);
	char dir[256];
	ts_tmpdir_make(dir, sizeof(dir), "test-interrupt");
	char *ckpt = ts_join(dir, "w.stw");

	ts_net straight = start(&dev, 13);
	fit(&straight, train, 2, NULL, NULL);

	/* Stopped in the middle of epoch 2 (20 batches of 32 an epoch): the flag raised after batch 7
	 * is seen at the end of the next step. */
	ts_net stopped = start(&dev, 13);
	stopper sp = {.epoch = 2, .at = 7};
	strata_fit_options o = {.size = sizeof(o), .epochs = 2, .batch_size = 32, .save_path = ckpt, .progress = stop_at,
	                        .progress_user = &sp, .progress_interval = 0, .stop = &sp.flag};
	strata_error err = {0};
	ck_assert_int_eq(strata_fit(stopped.s, train, NULL, &o, &err), STRATA_ERR_INTERRUPTED);
	ck_assert_msg(strstr(err.message, "epoch 2 after batch 8 of 20") && strstr(err.message, ckpt), "%s", err.message);
	ck_assert_uint_eq(stopped.s->step, 20 + 8);
	ck_assert_uint_eq(stopped.s->epoch, 1);
	ts_net_close(&stopped);

	ts_net resumed = start(&dev, 13);
	fit(&resumed, train, 2, NULL, ckpt);
	ck_assert_uint_eq(resumed.s->step, straight.s->step);
	ck_assert_uint_eq(weight_differences(&straight, &resumed), 0);
	ts_net_close(&resumed);
	ts_net_close(&straight);
	ts_tmpdir_remove(dir);
	free(ckpt);
	strata_dataset_free(train);
	ts_device_close(&dev);
}
END_TEST

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = atol(line + 6);
	if (f)
		fclose(f);
	return kib;
}

/* Many steps queued back to back must not hold memory for all of them: CLBlast frees its
 * temporary matrices only when their commands have run (a 12-epoch run once reached 15 GB). */
START_TEST(test_memory_flat_over_many_steps)
{
	ts_device dev = ts_device_open();
	ts_net net = ts_net_from(&dev, ts_model_file(dev.reg, "../models/mnist_cnn.yaml"), 64, 1);
	strata_session *s = net.s;
	strata_dataset *train = mnist(dev.rt, true, 0, 2048, false, NULL);
	strata_error err = {0};
	ck_assert_msg(strata_session_train_steps(s, train, 64, 10, &err) == STRATA_OK, "%s", err.message);
	long before = rss_kib();
	ck_assert_msg(strata_session_train_steps(s, train, 64, 60, &err) == STRATA_OK, "%s", err.message);
	long after = rss_kib();
	printf("resident memory over 60 steps: %ld -> %ld KiB\n", before, after);
	ck_assert_int_gt(before, 0);
	ck_assert_int_lt(after - before, 32 * 1024);
	strata_dataset_free(train);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

START_TEST(test_gather_follows_shuffled_order)
{
	ts_device dev = ts_device_open();
	strata_runtime *rt = dev.rt;
	strata_dataset *ds = mnist(rt, true, 100, 50, false, NULL);
	strata_idx *images = NULL, *labels = NULL;
	char *ip = ts_mnist_file("train-images-idx3-ubyte"), *lp = ts_mnist_file("train-labels-idx1-ubyte");
	strata_error err = {0};
	ck_assert_int_eq(strata_idx_load(ip, &images, &err), STRATA_OK);
	ck_assert_int_eq(strata_idx_load(lp, &labels, &err), STRATA_OK);
	ck_assert_int_eq(st_dataset_set_order(ds, true, 5, 3, &err), STRATA_OK);
	int order[50];
	ck_assert_int_eq(st_tensor_read(rt, &ds->order, 0, order, sizeof(order), &err), STRATA_OK);
	bool moved = false, seen[50] = {false};
	for (int i = 0; i < 50; i++) {
		ck_assert_int_lt(order[i], 50);
		ck_assert(!seen[order[i]]);
		seen[order[i]] = true;
		moved |= order[i] != i;
	}
	ck_assert(moved);
	strata_tensor x, lab;
	ck_assert_int_eq(st_tensor_alloc(rt, &x, 10 * 784 * sizeof(float), "x", &err), STRATA_OK);
	ck_assert_int_eq(st_tensor_alloc(rt, &lab, 10 * sizeof(int), "labels", &err), STRATA_OK);
	ck_assert_int_eq(st_dataset_gather(ds, 20, 10, &x, &lab, &err), STRATA_OK);
	float got[10 * 784];
	int got_labels[10];
	st_tensor_read(rt, &x, 0, got, sizeof(got), &err);
	st_tensor_read(rt, &lab, 0, got_labels, sizeof(got_labels), &err);
	const uint8_t *px = images->data, *lb = labels->data;
	for (int b = 0; b < 10; b++) {
		int sample = 100 + order[20 + b];
		ck_assert_int_eq(got_labels[b], lb[sample]);
		for (int k = 0; k < 784; k++)
			ck_assert_float_eq_tol(got[b * 784 + k], px[sample * 784 + k] / 255.0f, 1e-6f);
	}
	/* The same (seed, epoch) gives the same order; another epoch another one. */
	int again[50];
	st_dataset_set_order(ds, true, 5, 3, &err);
	st_tensor_read(rt, &ds->order, 0, again, sizeof(again), &err);
	ck_assert_mem_eq(order, again, sizeof(order));
	st_dataset_set_order(ds, true, 5, 4, &err);
	st_tensor_read(rt, &ds->order, 0, again, sizeof(again), &err);
	ck_assert(memcmp(order, again, sizeof(order)) != 0);

	st_tensor_release(&x);
	st_tensor_release(&lab);
	strata_idx_free(images);
	strata_idx_free(labels);
	free(ip);
	free(lp);
	strata_dataset_free(ds);
	ts_device_close(&dev);
}
END_TEST

START_TEST(test_standardization)
{
	ts_device dev = ts_device_open();
	strata_runtime *rt = dev.rt;
	strata_dataset *train = mnist(rt, true, 0, 500, true, NULL);
	strata_dataset *test = mnist(rt, false, 0, 20, true, train);
	/* Every pixel of the training set: mean 0 and variance 1 (or constant, then 0). */
	enum { N = 500, P = 784 };
	float *x = malloc((size_t)N * P * sizeof(float));
	uint8_t *raw = malloc((size_t)N * P);
	strata_idx *images = NULL;
	char *ip = ts_mnist_file("train-images-idx3-ubyte");
	strata_error err = {0};
	ck_assert_int_eq(strata_idx_load(ip, &images, &err), STRATA_OK);
	memcpy(raw, images->data, (size_t)N * P);
	strata_dataset_transform(train, raw, x, N);
	int constant = 0;
	for (int k = 0; k < P; k++) {
		double sum = 0, sq = 0;
		for (int i = 0; i < N; i++) {
			sum += x[i * P + k];
			sq += (double)x[i * P + k] * x[i * P + k];
		}
		double mean = sum / N, var = sq / N - mean * mean;
		ck_assert_double_lt(fabs(mean), 1e-4);
		if (var < 1e-9)
			constant++;
		else
			ck_assert_double_lt(fabs(var - 1.0), 1e-3);
	}
	ck_assert_int_gt(constant, 0);  /* MNIST's corners are always black */
	ck_assert_int_lt(constant, P / 2);
	/* The test set uses the training set's statistics, on the device as on the host. */
	strata_tensor t;
	ck_assert_int_eq(st_tensor_alloc(rt, &t, 20 * P * sizeof(float), "x", &err), STRATA_OK);
	ck_assert_int_eq(st_dataset_gather(test, 0, 20, &t, NULL, &err), STRATA_OK);
	float *on_dev = malloc(20 * P * sizeof(float)), *host = malloc(20 * P * sizeof(float));
	st_tensor_read(rt, &t, 0, on_dev, 20 * P * sizeof(float), &err);
	strata_idx *timages = NULL;
	char *tp = ts_mnist_file("t10k-images-idx3-ubyte");
	ck_assert_int_eq(strata_idx_load(tp, &timages, &err), STRATA_OK);
	strata_dataset_transform(train, timages->data, host, 20);
	for (int i = 0; i < 20 * P; i++)
		ck_assert_float_eq_tol(on_dev[i], host[i], 1e-4f);
	st_tensor_release(&t);
	free(on_dev);
	free(host);
	free(x);
	free(raw);
	free(ip);
	free(tp);
	strata_idx_free(images);
	strata_idx_free(timages);
	strata_dataset_free(test);
	strata_dataset_free(train);
	ts_device_close(&dev);
}
END_TEST

START_TEST(test_inconsistent_files_refused)
{
	ts_device dev = ts_device_open();
	strata_runtime *rt = dev.rt;
	char *images = ts_mnist_file("t10k-images-idx3-ubyte"), *labels = ts_mnist_file("train-labels-idx1-ubyte");
	strata_dataset_options o = {.size = sizeof(o), .images = images, .labels = labels, .num_classes = 10};
	strata_dataset *ds = NULL;
	strata_error err = {0};
	ck_assert_int_eq(strata_dataset_load(rt, &o, &ds, &err), STRATA_ERR_INVALID);
	ck_assert_msg(strstr(err.message, "10000 samples") && strstr(err.message, "60000 labels"), "%s", err.message);
	free(labels);
	labels = ts_mnist_file("t10k-labels-idx1-ubyte");
	o.labels = labels;
	o.num_classes = 5; /* labels 5..9 exist */
	ck_assert_int_eq(strata_dataset_load(rt, &o, &ds, &err), STRATA_ERR_INVALID);
	ck_assert_msg(strstr(err.message, "not below num_classes") != NULL, "%s", err.message);
	ck_assert_ptr_null(ds);
	free(images);
	free(labels);
	ts_device_close(&dev);
}
END_TEST

static Suite *training_suite(void)
{
	Suite *s = suite_create("training");
	TCase *data = tcase_create("data");
	tcase_set_timeout(data, 300);
	tcase_add_test(data, test_gather_follows_shuffled_order);
	tcase_add_test(data, test_standardization);
	tcase_add_test(data, test_inconsistent_files_refused);
	suite_add_tcase(s, data);
	TCase *tc = tcase_create("fit");
	tcase_set_timeout(tc, 900);
	tcase_add_test(tc, test_same_seed_same_weights);
	tcase_add_test(tc, test_resume_matches_uninterrupted);
	tcase_add_test(tc, test_interrupt_mid_epoch_then_resume);
	tcase_add_test(tc, test_memory_flat_over_many_steps);
	tcase_add_test(tc, test_short_cnn_run_learns);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ts_run(training_suite());
}
