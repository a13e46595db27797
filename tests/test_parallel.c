/* Data-parallel training (strata_parallel, src/train/parallel.c) without MPI: ranks as threads
 * of this process, each with its own device runtime and session, joined by an in-process
 * transport (a barrier and shared slots) that sums and gathers as MPI_Allreduce and
 * MPI_Allgather do. On a small network with dropout and Adadelta (mnist_cnn's optimizer), 1,000
 * MNIST images in batches of 30 (the last one short):
 *  - deterministic shards: 1, 2 and 4 ranks end with the same weights bit for bit;
 *  - the fast sum: 2 ranks end within 1e-5 of one process without any parallel setting (the
 *    loss a mean over the global batch, dropout keyed on each sample's place in it);
 *  - the same with every layer that draws random numbers (augmentation, spatial dropout, a
 *    recurrent layer's dropouts, Gaussian noise and dropout), slices starting mid-block;
 *  - a split of 3 to 1 between two ranks (as --balance gives ranks of unequal speed) ends where
 *    an even split does;
 *  - a stop asked on one rank stops both after the same step;
 *  - refusals: more ranks than samples in a batch, shards that do not divide among the ranks. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/session.h"
#include "support.h"

#define MAX_RANKS 4
#define BATCH 30
#define IMAGES 1000

static const char net_yaml[] = "name: small\n"
                               "input: {shape: [28, 28, 1]}\n"
                               "layers:\n"
                               "  - {type: conv2d, filters: 4, kernel_size: 5, strides: 2, activation: relu}\n"
                               "  - {type: maxpool2d}\n"
                               "  - {type: dropout, rate: 0.3}\n"
                               "  - {type: flatten}\n"
                               "  - {type: dense, units: 16, activation: relu}\n"
                               "  - {type: dropout, rate: 0.5}\n"
                               "  - {type: dense, units: 10, activation: softmax}\n"
                               "loss: categorical_crossentropy\n"
                               "optimizer: {type: adadelta, learning_rate: 1.0, rho: 0.95, epsilon: 1.0e-7}\n";

/* Every other layer that draws random numbers while training, on samples whose sizes (15 values)
 * put slices of a batch in the middle of the generators' blocks of 4. */
static const char random_yaml[] = "name: random_layers\n"
                                  "input: {shape: [28, 28, 1]}\n"
                                  "layers:\n"
                                  "  - {type: random_translation, height_factor: 0.1, width_factor: 0.1}\n"
                                  "  - {type: conv2d, filters: 3, kernel_size: 5, strides: 2, activation: relu}\n"
                                  "  - {type: spatial_dropout2d, rate: 0.2}\n"
                                  "  - {type: reshape, target_shape: [12, 36]}\n"
                                  "  - {type: lstm, units: 8, dropout: 0.2, recurrent_dropout: 0.2}\n"
                                  "  - {type: dense, units: 15, activation: relu}\n"
                                  "  - {type: gaussian_noise, stddev: 0.1}\n"
                                  "  - {type: gaussian_dropout, rate: 0.2}\n"
                                  "  - {type: dense, units: 10, activation: softmax}\n"
                                  "loss: categorical_crossentropy\n"
                                  "optimizer: {type: adadelta, learning_rate: 1.0, rho: 0.95, epsilon: 1.0e-7}\n";

/* ---- The in-process transport ---------------------------------------------------------------- */

typedef struct hub {
	pthread_barrier_t barrier;
	uint32_t ranks;
	const float *slots[MAX_RANKS];
} hub;

typedef struct rank_ctx {
	hub *hub;
	uint32_t rank;
	strata_parallel par;
	ts_device dev;
	ts_net net;
	strata_dataset *train;
	strata_fit_options fit;
	volatile int stop_flag;
	strata_status status;
	strata_error err;
	uint32_t split_num, split_den; /* rank 0's share of a batch, when split_den > 0 */
} rank_ctx;

static strata_status hub_sum(void *user, float *values, size_t count, strata_error *err)
{
	rank_ctx *c = user;
	hub *h = c->hub;
	float *sum = malloc(count * sizeof(float));
	if (!sum)
		return STRATA_ERR_NO_MEMORY;
	(void)err;
	h->slots[c->rank] = values;
	pthread_barrier_wait(&h->barrier);
	for (size_t i = 0; i < count; i++) {
		float v = 0.0f;
		for (uint32_t r = 0; r < h->ranks; r++)
			v += h->slots[r][i];
		sum[i] = v;
	}
	pthread_barrier_wait(&h->barrier); /* every rank has read every slot */
	memcpy(values, sum, count * sizeof(float));
	free(sum);
	return STRATA_OK;
}

static strata_status hub_gather(void *user, const float *mine, size_t count, float *all, strata_error *err)
{
	rank_ctx *c = user;
	hub *h = c->hub;
	(void)err;
	h->slots[c->rank] = mine;
	pthread_barrier_wait(&h->barrier);
	for (uint32_t r = 0; r < h->ranks; r++)
		memcpy(all + r * count, h->slots[r], count * sizeof(float));
	pthread_barrier_wait(&h->barrier);
	return STRATA_OK;
}

/* Rank 0 takes split_num / split_den of every batch, the other rank the rest. */
static void uneven(void *user, uint32_t n, double seconds, uint32_t *counts)
{
	rank_ctx *c = user;
	(void)seconds;
	counts[0] = n * c->split_num / c->split_den;
	counts[1] = n - counts[0];
}

/* Stops rank 1 (only) after its third step. */
static void stop_rank1(void *user, const strata_progress *p)
{
	rank_ctx *c = user;
	if (c->rank == 1 && p->batch >= 3)
		c->stop_flag = 1;
}

static strata_dataset *mnist(strata_runtime *rt)
{
	return ts_mnist(rt, true, (strata_dataset_options){.limit = IMAGES});
}

static void *rank_main(void *arg)
{
	rank_ctx *c = arg;
	c->status = strata_fit(c->net.s, c->train, NULL, &c->fit, &c->err);
	return NULL;
}

typedef struct run_options {
	const char *yaml; /* NULL: net_yaml */
	uint32_t ranks, shards, epochs;
	uint32_t split_num, split_den; /* 0: even */
	bool stop;                     /* rank 1 asks to stop after its third step */
	bool parallel;                 /* false: a plain strata_fit, no parallel setting (ranks 1) */
} run_options;

/* Trains on `o.ranks` threads; returns the ranks (their nets open, to compare and close). */
static rank_ctx *run(const run_options *o)
{
	hub *h = calloc(1, sizeof(*h));
	rank_ctx *c = calloc(o->ranks, sizeof(*c));
	h->ranks = o->ranks;
	pthread_barrier_init(&h->barrier, NULL, o->ranks);
	for (uint32_t r = 0; r < o->ranks; r++) {
		c[r].hub = h;
		c[r].rank = r;
		c[r].dev = ts_device_open();
		c[r].net = ts_net_open(&c[r].dev, o->yaml ? o->yaml : net_yaml, BATCH, 7);
		c[r].train = mnist(c[r].dev.rt);
		c[r].split_num = o->split_num;
		c[r].split_den = o->split_den;
		c[r].par = (strata_parallel){.rank = r, .ranks = o->ranks, .user = &c[r], .sum = hub_sum,
		                             .gather = hub_gather, .shards = o->shards,
		                             .split = o->split_den ? uneven : NULL};
		c[r].fit = (strata_fit_options){.size = sizeof(c[r].fit), .epochs = o->epochs, .batch_size = BATCH,
		                                .parallel = o->parallel ? &c[r].par : NULL};
		if (o->stop) {
			c[r].fit.progress = stop_rank1;
			c[r].fit.progress_user = &c[r];
			c[r].fit.progress_interval = 0;
			c[r].fit.stop = &c[r].stop_flag;
		}
	}
	pthread_t threads[MAX_RANKS];
	for (uint32_t r = 0; r < o->ranks; r++)
		ck_assert_int_eq(pthread_create(&threads[r], NULL, rank_main, &c[r]), 0);
	for (uint32_t r = 0; r < o->ranks; r++)
		pthread_join(threads[r], NULL);
	pthread_barrier_destroy(&h->barrier);
	free(h);
	c[0].hub = NULL;
	return c;
}

static void close_ranks(rank_ctx *c, uint32_t ranks)
{
	for (uint32_t r = 0; r < ranks; r++) {
		strata_dataset_free(c[r].train);
		ts_net_close(&c[r].net);
		ts_device_close(&c[r].dev);
	}
	free(c);
}

/* Every weight of both sessions: how many differ, and the largest difference. */
static size_t compare(strata_session *a, strata_session *b, double *largest)
{
	size_t diffs = 0;
	strata_error err = {0};
	*largest = 0;
	for (size_t l = 0; l < strata_model_layer_count(a->model); l++)
		for (size_t w = 0; w < strata_session_weight_count(a, l); w++) {
			strata_shape shape;
			strata_session_weight_info(a, l, w, NULL, &shape);
			size_t n = 1;
			for (uint32_t d = 0; d < shape.rank; d++)
				n *= (size_t)shape.dims[d];
			float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
			ck_assert_int_eq(strata_session_read_weight(a, l, w, x, n, &err), STRATA_OK);
			ck_assert_int_eq(strata_session_read_weight(b, l, w, y, n, &err), STRATA_OK);
			for (size_t i = 0; i < n; i++) {
				diffs += memcmp(&x[i], &y[i], sizeof(float)) != 0;
				if (fabs((double)x[i] - y[i]) > *largest)
					*largest = fabs((double)x[i] - y[i]);
			}
			free(x);
			free(y);
		}
	return diffs;
}

static void assert_ok(const rank_ctx *c, uint32_t ranks)
{
	for (uint32_t r = 0; r < ranks; r++)
		ck_assert_msg(c[r].status == STRATA_OK, "rank %u: %s", r, c[r].err.message);
}

START_TEST(test_deterministic_same_bits_any_ranks)
{
	run_options one = {.ranks = 1, .shards = 4, .epochs = 1, .parallel = true};
	run_options two = {.ranks = 2, .shards = 4, .epochs = 1, .parallel = true};
	run_options four = {.ranks = 4, .shards = 4, .epochs = 1, .parallel = true};
	rank_ctx *a = run(&one), *b = run(&two), *c = run(&four);
	assert_ok(a, 1);
	assert_ok(b, 2);
	assert_ok(c, 4);
	double largest;
	ck_assert_uint_eq(a[0].net.s->step, (IMAGES + BATCH - 1) / BATCH);
	for (uint32_t r = 0; r < 2; r++)
		ck_assert_msg(compare(a[0].net.s, b[r].net.s, &largest) == 0, "2 ranks, rank %u: %g apart", r, largest);
	for (uint32_t r = 0; r < 4; r++)
		ck_assert_msg(compare(a[0].net.s, c[r].net.s, &largest) == 0, "4 ranks, rank %u: %g apart", r, largest);
	/* It trained: the weights moved from the seed's. */
	ts_device dev = ts_device_open();
	ts_net fresh = ts_net_open(&dev, net_yaml, BATCH, 7);
	ck_assert_uint_gt(compare(a[0].net.s, fresh.s, &largest), 100);
	ts_net_close(&fresh);
	ts_device_close(&dev);
	close_ranks(a, 1);
	close_ranks(b, 2);
	close_ranks(c, 4);
}
END_TEST

START_TEST(test_fast_sum_matches_one_process)
{
	run_options alone = {.ranks = 1, .epochs = 2, .parallel = false};
	run_options two = {.ranks = 2, .epochs = 2, .parallel = true};
	rank_ctx *a = run(&alone), *b = run(&two);
	assert_ok(a, 1);
	assert_ok(b, 2);
	double largest;
	size_t differ = compare(a[0].net.s, b[0].net.s, &largest);
	printf("2 ranks against one process, 2 epochs: %zu weights differ, by %g at most\n", differ, largest);
	ck_assert_msg(largest <= 1e-5, "%g apart", largest);
	ck_assert_msg(compare(b[0].net.s, b[1].net.s, &largest) == 0, "the two ranks differ by %g", largest);
	close_ranks(a, 1);
	close_ranks(b, 2);
}
END_TEST

/* Augmentation, spatial dropout, a recurrent layer's dropouts, Gaussian noise and dropout: each
 * keyed on the global batch, or two ranks would leave one process far behind. */
START_TEST(test_every_random_layer_matches_one_process)
{
	run_options alone = {.yaml = random_yaml, .ranks = 1, .epochs = 1, .parallel = false};
	run_options two = {.yaml = random_yaml, .ranks = 2, .epochs = 1, .parallel = true};
	rank_ctx *a = run(&alone), *b = run(&two);
	assert_ok(a, 1);
	assert_ok(b, 2);
	double largest;
	compare(a[0].net.s, b[0].net.s, &largest);
	ck_assert_msg(largest <= 1e-5, "%g apart", largest);
	close_ranks(a, 1);
	close_ranks(b, 2);
}
END_TEST

START_TEST(test_uneven_split_same_mean)
{
	run_options even = {.ranks = 2, .epochs = 1, .parallel = true};
	run_options skewed = {.ranks = 2, .epochs = 1, .parallel = true, .split_num = 3, .split_den = 4};
	rank_ctx *a = run(&even), *b = run(&skewed);
	assert_ok(a, 2);
	assert_ok(b, 2);
	double largest;
	compare(a[0].net.s, b[0].net.s, &largest);
	ck_assert_msg(largest <= 1e-5, "%g apart", largest);
	ck_assert_msg(compare(b[0].net.s, b[1].net.s, &largest) == 0, "the two ranks differ by %g", largest);
	close_ranks(a, 2);
	close_ranks(b, 2);
}
END_TEST

START_TEST(test_stop_on_one_rank_stops_all)
{
	run_options o = {.ranks = 2, .epochs = 1, .parallel = true, .stop = true};
	rank_ctx *c = run(&o);
	for (uint32_t r = 0; r < 2; r++)
		ck_assert_msg(c[r].status == STRATA_ERR_INTERRUPTED, "rank %u: %s (%s)", r, strata_status_name(c[r].status),
		              c[r].err.message);
	ck_assert_uint_eq(c[0].net.s->step, c[1].net.s->step);
	ck_assert_uint_lt(c[0].net.s->step, (IMAGES + BATCH - 1) / BATCH);
	close_ranks(c, 2);
}
END_TEST

START_TEST(test_refusals)
{
	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev, net_yaml, BATCH, 7);
	strata_dataset *train = mnist(dev.rt);
	strata_error err = {0};
	strata_parallel par = {.rank = 0, .ranks = 3, .sum = hub_sum, .gather = hub_gather, .shards = 4};
	strata_fit_options o = {.size = sizeof(o), .epochs = 1, .batch_size = BATCH, .parallel = &par};
	ck_assert_int_eq(strata_fit(net.s, train, NULL, &o, &err), STRATA_ERR_INVALID);
	ck_assert_msg(strstr(err.message, "4 shards do not divide among 3 ranks"), "%s", err.message);
	par = (strata_parallel){.rank = 0, .ranks = 3, .sum = hub_sum};
	o.batch_size = 2;
	ck_assert_int_eq(strata_fit(net.s, train, NULL, &o, &err), STRATA_ERR_INVALID);
	ck_assert_msg(strstr(err.message, "a batch of 2 samples cannot be shared by 3 ranks"), "%s", err.message);
	par = (strata_parallel){.rank = 3, .ranks = 3, .sum = hub_sum};
	ck_assert_int_eq(strata_fit(net.s, train, NULL, &o, &err), STRATA_ERR_INVALID);
	strata_dataset_free(train);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

static Suite *parallel_suite(void)
{
	Suite *s = suite_create("parallel");
	TCase *tc = tcase_create("ranks");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_deterministic_same_bits_any_ranks);
	tcase_add_test(tc, test_fast_sum_matches_one_process);
	tcase_add_test(tc, test_every_random_layer_matches_one_process);
	tcase_add_test(tc, test_uneven_split_same_mean);
	tcase_add_test(tc, test_stop_on_one_rank_stops_all);
	tcase_add_test(tc, test_refusals);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ts_run(parallel_suite());
}
