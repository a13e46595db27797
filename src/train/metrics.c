/* Host-side metrics; sums in double so a 10000-sample test set loses nothing to rounding. */
#include "train/metrics.h"

#include <math.h>
#include <stdbool.h>

/* Keras' backend.epsilon(). */
#define KERAS_EPSILON 1e-7

static bool valid(const int *labels, size_t n, size_t classes)
{
	if (n == 0 || classes == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (labels[i] < 0 || (size_t)labels[i] >= classes)
			return false;
	return true;
}

size_t st_argmax(const float *v, size_t n)
{
	size_t best = 0;
	for (size_t j = 1; j < n; j++)
		if (v[j] > v[best] || (isnan(v[best]) && !isnan(v[j])))
			best = j;
	return best;
}

double st_accuracy(const float *scores, const int *labels, size_t n, size_t classes)
{
	if (!valid(labels, n, classes))
		return NAN;
	size_t hits = 0;
	for (size_t i = 0; i < n; i++)
		hits += st_argmax(scores + i * classes, classes) == (size_t)labels[i];
	return (double)hits / (double)n;
}

double st_lrap(const float *scores, const int *labels, size_t n, size_t classes)
{
	if (!valid(labels, n, classes))
		return NAN;
	double sum = 0.0;
	for (size_t i = 0; i < n; i++) {
		const float *row = scores + i * classes;
		float truth = row[labels[i]];
		/* "Not below" rather than ">=": a NaN score, on either side, counts against the true class.
		 */
		size_t rank = 0;
		for (size_t j = 0; j < classes; j++)
			rank += !(row[j] < truth);
		sum += 1.0 / (double)rank;
	}
	return sum / (double)n;
}

double st_categorical_crossentropy_mean(const float *probs, const int *labels, size_t n, size_t classes)
{
	if (!valid(labels, n, classes))
		return NAN;
	double sum = 0.0;
	for (size_t i = 0; i < n; i++) {
		const float *row = probs + i * classes;
		double total = 0.0;
		for (size_t j = 0; j < classes; j++)
			total += row[j];
		double p = row[labels[i]] / total;
		/* A NaN (diverged outputs, or 0/0 for an all-zero row) stays NaN, as Keras' clip leaves it.
		 */
		if (!isnan(p))
			p = fmin(fmax(p, KERAS_EPSILON), 1.0 - KERAS_EPSILON);
		sum += -log(p);
	}
	return sum / (double)n;
}
