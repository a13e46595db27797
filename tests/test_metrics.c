/* Host-side metrics: label ranking average precision against hand-computed rankings and
 * scikit-learn's documented example, accuracy with ties, Keras' clipped cross-entropy. */
#include <math.h>
#include <stddef.h>

#include "train/metrics.h"
#include "support.h"

START_TEST(test_lrap_perfect_ranking)
{
	const float scores[] = {0.9f, 0.05f, 0.05f, 0.1f, 0.2f, 0.7f, -3.0f, 5.0f, 4.0f};
	const int labels[] = {0, 2, 1};
	ck_assert_double_eq(st_lrap(scores, labels, 3, 3), 1.0);
}
END_TEST

START_TEST(test_lrap_second_place)
{
	/* Each true label has exactly one class above it: precision 1/2 per sample. */
	const float scores[] = {0.3f, 0.6f, 0.1f, 0.0f, 0.5f, 0.2f, 0.4f, 0.45f};
	const int labels[] = {0, 3};
	ck_assert_double_eq_tol(st_lrap(scores, labels, 2, 4), 0.5, 1e-15);
}
END_TEST

START_TEST(test_lrap_ties_count_against)
{
	/* Sample 1: tied with one other at the top, rank 2. Sample 2: all four tied, rank 4.
	 * Sample 3: tied below one larger score, rank 3. */
	const float scores[] = {0.5f, 0.5f, 0.0f, 0.0f, 0.25f, 0.25f, 0.25f, 0.25f, 0.9f, 0.4f, 0.4f, 0.1f};
	const int labels[] = {1, 3, 2};
	double expected = (1.0 / 2 + 1.0 / 4 + 1.0 / 3) / 3;
	ck_assert_double_eq_tol(st_lrap(scores, labels, 3, 4), expected, 1e-15);
}
END_TEST

START_TEST(test_lrap_sklearn_example)
{
	/* label_ranking_average_precision_score's documented example, y_true [[1,0,0],[0,0,1]]:
	 * sample 1 ranks its label 2nd (1/2), sample 2 ranks it 3rd (1/3); sklearn prints 0.416... */
	const float scores[] = {0.75f, 0.5f, 1.0f, 1.0f, 0.2f, 0.1f};
	const int labels[] = {0, 2};
	double lrap = st_lrap(scores, labels, 2, 3);
	ck_assert_double_eq_tol(lrap, (1.0 / 2 + 1.0 / 3) / 2, 1e-15);
	ck_assert_double_eq_tol(lrap, 0.416666, 1e-6);
}
END_TEST

START_TEST(test_lrap_single_class_and_nan)
{
	const float one[] = {0.2f, -1.0f};
	const int zeros[] = {0, 0};
	ck_assert_double_eq(st_lrap(one, zeros, 2, 1), 1.0);
	/* A NaN score elsewhere ranks above the true class, as a broken model deserves. */
	const float scores[] = {0.9f, NAN, 0.1f};
	ck_assert_double_eq_tol(st_lrap(scores, zeros, 1, 3), 0.5, 1e-15);
}
END_TEST

START_TEST(test_metrics_refuse_bad_input)
{
	const float scores[] = {0.1f, 0.9f};
	const int bad_hi[] = {2}, bad_neg[] = {-1}, ok[] = {1};
	ck_assert(isnan(st_lrap(scores, bad_hi, 1, 2)));
	ck_assert(isnan(st_lrap(scores, bad_neg, 1, 2)));
	ck_assert(isnan(st_lrap(scores, ok, 0, 2)));
	ck_assert(isnan(st_accuracy(scores, bad_hi, 1, 2)));
	ck_assert(isnan(st_accuracy(scores, ok, 1, 0)));
	ck_assert(isnan(st_categorical_crossentropy_mean(scores, bad_neg, 1, 2)));
}
END_TEST

START_TEST(test_argmax_first_maximum)
{
	const float v[] = {0.1f, 0.7f, 0.7f, 0.2f};
	ck_assert_uint_eq(st_argmax(v, 4), 1);
	const float nan_first[] = {NAN, 0.3f, 0.5f};
	ck_assert_uint_eq(st_argmax(nan_first, 3), 2);
	ck_assert_uint_eq(st_argmax(v, 1), 0);
}
END_TEST

START_TEST(test_accuracy)
{
	/* Correct, wrong, tie resolved to the first maximum (correct), tie lost (wrong). */
	const float scores[] = {0.8f, 0.1f, 0.1f, 0.2f, 0.3f, 0.5f, 0.4f, 0.4f, 0.2f, 0.4f, 0.4f, 0.2f};
	const int labels[] = {0, 1, 0, 1};
	ck_assert_double_eq(st_accuracy(scores, labels, 4, 3), 0.5);
	ck_assert_double_eq(st_accuracy(scores, labels, 1, 3), 1.0);
}
END_TEST

START_TEST(test_crossentropy_keras_example)
{
	/* keras.metrics.CategoricalCrossentropy's documented example: 1.1769392 (float32). */
	const float probs[] = {0.05f, 0.95f, 0.0f, 0.1f, 0.8f, 0.1f};
	const int labels[] = {1, 2};
	double ce = st_categorical_crossentropy_mean(probs, labels, 2, 3);
	/* The float rows sum to 1 only within 2e-8, and each is scaled to sum to 1. */
	ck_assert_double_eq_tol(ce, (-log(0.95) - log(0.1)) / 2, 1e-7);
	ck_assert_double_eq_tol(ce, 1.1769392, 1e-6);
}
END_TEST

START_TEST(test_crossentropy_clips_and_normalizes)
{
	/* A zero probability is clipped to 1e-7, a certain one to 1 - 1e-7. */
	const float zero[] = {1.0f, 0.0f};
	const int one_label[] = {1}, zero_label[] = {0};
	ck_assert_double_eq_tol(st_categorical_crossentropy_mean(zero, one_label, 1, 2), -log(1e-7), 1e-9);
	ck_assert_double_eq_tol(st_categorical_crossentropy_mean(zero, zero_label, 1, 2), -log(1.0 - 1e-7),
	                        1e-15);
	ck_assert(st_categorical_crossentropy_mean(zero, zero_label, 1, 2) > 0.0);
	/* Rows are scaled to sum to 1 first, as Keras does: (2, 2) is (0.5, 0.5). */
	const float unscaled[] = {2.0f, 2.0f};
	ck_assert_double_eq_tol(st_categorical_crossentropy_mean(unscaled, zero_label, 1, 2), log(2.0),
	                        1e-12);
	/* Diverged outputs stay visible. */
	const float broken[] = {NAN, 0.5f};
	ck_assert(isnan(st_categorical_crossentropy_mean(broken, one_label, 1, 2)));
}
END_TEST

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("host");
	tcase_add_test(tc, test_lrap_perfect_ranking);
	tcase_add_test(tc, test_lrap_second_place);
	tcase_add_test(tc, test_lrap_ties_count_against);
	tcase_add_test(tc, test_lrap_sklearn_example);
	tcase_add_test(tc, test_lrap_single_class_and_nan);
	tcase_add_test(tc, test_metrics_refuse_bad_input);
	tcase_add_test(tc, test_argmax_first_maximum);
	tcase_add_test(tc, test_accuracy);
	tcase_add_test(tc, test_crossentropy_keras_example);
	tcase_add_test(tc, test_crossentropy_clips_and_normalizes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ts_run(metrics_suite());
}
