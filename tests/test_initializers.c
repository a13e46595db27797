/* Weight initializers: Keras' limits and spreads from Keras' fan rules, orthogonality, and
 * determinism. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/initializers.h"
#include "support.h"

enum { N = 200000 };

static void stats(const float *x, size_t n, double *mean, double *var, double *max_abs)
{
	double s = 0, sq = 0, m = 0;
	for (size_t i = 0; i < n; i++) {
		s += x[i];
		sq += (double)x[i] * x[i];
		m = fmax(m, fabs(x[i]));
	}
	*mean = s / n;
	*var = sq / n - *mean * *mean;
	*max_abs = m;
}

static float *init(const char *name, strata_shape shape, uint64_t seed)
{
	uint64_t n = 1;
	for (uint32_t i = 0; i < shape.rank; i++)
		n *= (uint64_t)shape.dims[i];
	ck_assert_uint_le(n, N);
	float *x = malloc(N * sizeof(float));
	st_rng rng;
	st_rng_seed(&rng, seed, 0);
	ck_assert_int_eq(st_initialize(name, &shape, x, n, &rng), STRATA_OK);
	return x;
}

START_TEST(test_uniform_limits)
{
	/* A conv kernel (3, 3, 32, 64): fan_in 288, fan_out 576, as Keras computes them. */
	strata_shape conv = {.rank = 4, .dims = {3, 3, 32, 64}};
	uint64_t n = 3 * 3 * 32 * 64;
	struct {
		const char *name;
		double limit;
	} cases[] = {{"glorot_uniform", sqrt(6.0 / (288 + 576))}, {"he_uniform", sqrt(6.0 / 288)}};
	for (int k = 0; k < 2; k++) {
		float *x = init(cases[k].name, conv, 1);
		double mean, var, max_abs;
		stats(x, n, &mean, &var, &max_abs);
		ck_assert_double_le(max_abs, cases[k].limit);
		ck_assert_double_gt(max_abs, 0.99 * cases[k].limit);
		ck_assert_double_lt(fabs(mean), 0.02 * cases[k].limit);
		/* uniform on [-l, l]: variance l^2 / 3 */
		ck_assert_double_lt(fabs(var / (cases[k].limit * cases[k].limit / 3) - 1), 0.05);
		free(x);
	}
}
END_TEST

/* Keras' Orthogonal: a tall matrix has orthonormal columns, a wide one orthonormal rows, and a
 * kernel of rank 3 is a matrix of its leading axes' product by its last. */
START_TEST(test_orthogonal)
{
	static const strata_shape shapes[] = {
		{.rank = 2, .dims = {40, 12}}, {.rank = 2, .dims = {12, 40}}, {.rank = 2, .dims = {16, 16}},
		{.rank = 3, .dims = {3, 5, 7}},
	};
	for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
		const strata_shape *sh = &shapes[k];
		int cols = (int)sh->dims[sh->rank - 1], rows = 1;
		for (uint32_t a = 0; a + 1 < sh->rank; a++)
			rows *= (int)sh->dims[a];
		float *x = init("orthogonal", *sh, 7 + k);
		/* The Gram matrix of the shorter side's vectors is the identity. */
		int n = rows >= cols ? cols : rows, len = rows >= cols ? rows : cols;
		double worst = 0;
		for (int a = 0; a < n; a++)
			for (int b = 0; b < n; b++) {
				double dot = 0;
				for (int i = 0; i < len; i++)
					dot += rows >= cols ? (double)x[i * cols + a] * x[i * cols + b]
					                    : (double)x[a * cols + i] * x[b * cols + i];
				worst = fmax(worst, fabs(dot - (a == b ? 1.0 : 0.0)));
			}
		ck_assert_msg(worst < 1e-5, "shape %zu: Gram matrix off the identity by %g", k, worst);
		/* Not a fixed matrix: another seed gives other values. */
		float *y = init("orthogonal", *sh, 100 + k);
		ck_assert(memcmp(x, y, (size_t)rows * cols * sizeof(float)) != 0);
		free(y);
		free(x);
	}
}
END_TEST

START_TEST(test_truncated_normal_spread)
{
	/* A dense kernel (784, 128). Keras draws a normal with stddev sqrt(scale)/0.8796 truncated
	 * at two stddevs, so the result has variance `scale` and nothing beyond the cut. */
	strata_shape dense = {.rank = 2, .dims = {784, 128}};
	uint64_t n = 784 * 128;
	struct {
		const char *name;
		double scale;
	} cases[] = {{"glorot_normal", 2.0 / (784 + 128)}, {"he_normal", 2.0 / 784}};
	for (int k = 0; k < 2; k++) {
		float *x = init(cases[k].name, dense, 2);
		double mean, var, max_abs;
		stats(x, n, &mean, &var, &max_abs);
		double stddev = sqrt(cases[k].scale) / 0.87962566103423978;
		ck_assert_double_le(max_abs, 2 * stddev + 1e-7);
		ck_assert_double_lt(fabs(mean), 0.02 * stddev);
		ck_assert_double_lt(fabs(var / cases[k].scale - 1), 0.03);
		free(x);
	}
}
END_TEST

START_TEST(test_constants_and_determinism)
{
	strata_shape v = {.rank = 1, .dims = {1000}};
	float *z = init("zeros", v, 1), *o = init("ones", v, 1);
	for (int i = 0; i < 1000; i++) {
		ck_assert_float_eq(z[i], 0.0f);
		ck_assert_float_eq(o[i], 1.0f);
	}
	float *a = init("glorot_uniform", v, 42), *b = init("glorot_uniform", v, 42), *c = init("glorot_uniform", v, 43);
	ck_assert_mem_eq(a, b, 1000 * sizeof(float));
	ck_assert(memcmp(a, c, 1000 * sizeof(float)) != 0);
	ck_assert(!st_initializer_known("lecun_uniform"));
	ck_assert(st_initializer_known("he_normal"));
	free(z);
	free(o);
	free(a);
	free(b);
	free(c);
}
END_TEST

START_TEST(test_random_uniform_normal)
{
	/* Keras' RandomUniform and RandomNormal defaults: U(-0.05, 0.05), N(0, 0.05^2). */
	strata_shape v = {.rank = 1, .dims = {N}};
	double mean, var, max_abs;
	float *u = init("uniform", v, 3);
	stats(u, N, &mean, &var, &max_abs);
	ck_assert(max_abs <= 0.05 && max_abs > 0.049);
	ck_assert(fabs(mean) < 1e-3 && fabs(var - 0.05 * 0.05 / 3) < 2e-5);
	float *n = init("random_normal", v, 3);
	stats(n, N, &mean, &var, &max_abs);
	ck_assert(fabs(mean) < 1e-3 && fabs(sqrt(var) - 0.05) < 1e-3 && max_abs > 0.15);
	free(u);
	free(n);
}
END_TEST

START_TEST(test_blocks)
{
	/* Keras' LSTM bias with unit_forget_bias: (4 x 3,) as zeros, ones, zeros, zeros. */
	ck_assert(st_initializer_known("zeros,ones,zeros,zeros"));
	ck_assert_uint_eq(st_initializer_blocks("zeros,ones,zeros,zeros"), 4);
	ck_assert_uint_eq(st_initializer_blocks("zeros"), 1);
	ck_assert(!st_initializer_known("zeros,lecun_uniform"));
	ck_assert(!st_initializer_known("zeros,"));
	float *b = init("zeros,ones,zeros,zeros", (strata_shape){.rank = 1, .dims = {12}}, 1);
	for (int i = 0; i < 12; i++)
		ck_assert_float_eq(b[i], i >= 3 && i < 6 ? 1.0f : 0.0f);
	/* On (2, 6), blocks of columns: every row's first 3 columns ones, the last 3 glorot_uniform of
	 * a (2, 3) weight: limit sqrt(6 / 5). */
	float *m = init("ones,glorot_uniform", (strata_shape){.rank = 2, .dims = {2, 6}}, 7);
	bool spread = false;
	for (int r = 0; r < 2; r++)
		for (int c = 0; c < 6; c++) {
			float v = m[r * 6 + c];
			if (c < 3) {
				ck_assert_float_eq(v, 1.0f);
			} else {
				ck_assert(fabs(v) <= sqrt(6.0 / 5.0));
				spread |= v != 1.0f && v != 0.0f;
			}
		}
	ck_assert(spread);
	/* A list that does not split the last axis evenly is refused. */
	st_rng rng;
	st_rng_seed(&rng, 1, 0);
	float x[5];
	ck_assert_int_ne(st_initialize("zeros,ones", &(strata_shape){.rank = 1, .dims = {5}}, x, 5, &rng), STRATA_OK);
	free(b);
	free(m);
}
END_TEST

static Suite *initializers_suite(void)
{
	Suite *s = suite_create("initializers");
	TCase *tc = tcase_create("keras");
	tcase_add_test(tc, test_uniform_limits);
	tcase_add_test(tc, test_truncated_normal_spread);
	tcase_add_test(tc, test_orthogonal);
	tcase_add_test(tc, test_constants_and_determinism);
	tcase_add_test(tc, test_blocks);
	tcase_add_test(tc, test_random_uniform_normal);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ts_run(initializers_suite());
}
