/* Evaluation metrics computed on the host from a model's outputs (`strata eval`). Every function
 * takes `n` samples of `classes` scores each, row-major, and one integer label per sample; a label
 * outside [0, classes), n == 0 or classes == 0 gives NaN, so a caller's bug shows in the result. */
#ifndef ST_METRICS_H
#define ST_METRICS_H

#include <stddef.h>

/* Index of the largest of v[0..n); the first one wins ties; NaN entries lose to any number. */
size_t st_argmax(const float *v, size_t n);

/* Fraction of samples whose argmax (first maximum) equals the label. */
double st_accuracy(const float *scores, const int *labels, size_t n, size_t classes);

/* Label ranking average precision with one true label per sample, as scikit-learn's
 * label_ranking_average_precision_score: the mean of 1 / rank, where rank counts the classes
 * scoring at least the true class's score (the true class included: ties count against). */
double st_lrap(const float *scores, const int *labels, size_t n, size_t classes);

/* Mean categorical cross-entropy of probabilities, as Keras computes it: each row scaled to sum
 * to 1, then clipped to [1e-7, 1 - 1e-7], then -log of the true class's probability. */
double st_categorical_crossentropy_mean(const float *probs, const int *labels, size_t n, size_t classes);

#endif
