/* Losses and metrics of the training step, registered as program "strata_loss". One work-item
 * per sample: rows are short (one per class) and the batch gives the parallelism.
 *
 * Targets are either one-hot/float rows (`t`) or integer class labels (`labels`, when use_labels
 * is set), so the sparse and dense forms of a loss share one kernel. */

/* Keras clips probabilities to [EPSILON, 1 - EPSILON] before taking logs. */
#define EPSILON 1e-7f

static float target(__global const float *t, __global const int *labels, const int use_labels,
                    const int row, const int cols, const int j)
{
	return use_labels ? (labels[row] == j ? 1.0f : 0.0f) : t[row * cols + j];
}

/* 1 when the first maximum of y's row is at the first maximum of the target's row. */
static float is_correct(__global const float *y, __global const float *t, __global const int *labels,
                        const int use_labels, const int row, const int cols)
{
	int best_y = 0, best_t = 0;
	float my = y[row * cols], mt = target(t, labels, use_labels, row, cols, 0);
	for (int j = 1; j < cols; j++) {
		const float vy = y[row * cols + j];
		const float vt = target(t, labels, use_labels, row, cols, j);
		if (vy > my) {
			my = vy;
			best_y = j;
		}
		if (vt > mt) {
			mt = vt;
			best_t = j;
		}
	}
	return best_y == best_t ? 1.0f : 0.0f;
}

/* Categorical cross-entropy of probabilities y. With `folded` the last layer's softmax is
 * differentiated here too, giving the exact and stable dL/dz = (y - t) / N; otherwise
 * dL/dy = -t / clip(y) / N. */
__kernel void categorical_crossentropy(__global const float *y, __global const float *t,
                                       __global const int *labels, const int use_labels,
                                       __global float *grad, __global float *loss, __global float *correct,
                                       const int rows, const int cols, const int folded, const float scale)
{
	const int row = get_global_id(0);
	if (row >= rows)
		return;
	float l = 0.0f;
	for (int j = 0; j < cols; j++) {
		const float tj = target(t, labels, use_labels, row, cols, j);
		const float yj = clamp(y[row * cols + j], EPSILON, 1.0f - EPSILON);
		if (tj != 0.0f)
			l -= tj * log(yj);
		grad[row * cols + j] = folded ? (y[row * cols + j] - tj) * scale : -tj / yj * scale;
	}
	loss[row] = l;
	correct[row] = is_correct(y, t, labels, use_labels, row, cols);
}

/* Mean squared error over each row, as Keras: mean over the last axis, then over the batch. */
__kernel void mean_squared_error(__global const float *y, __global const float *t, __global const int *labels,
                                 const int use_labels, __global float *grad, __global float *loss,
                                 __global float *correct, const int rows, const int cols, const int folded,
                                 const float scale)
{
	const int row = get_global_id(0);
	if (row >= rows)
		return;
	(void)folded;
	float l = 0.0f;
	for (int j = 0; j < cols; j++) {
		const float d = y[row * cols + j] - target(t, labels, use_labels, row, cols, j);
		l += d * d;
		grad[row * cols + j] = 2.0f * d / cols * scale;
	}
	loss[row] = l / cols;
	correct[row] = is_correct(y, t, labels, use_labels, row, cols);
}

#ifndef REDUCE_WG
#define REDUCE_WG 64
#endif

/* acc[at] += sum(loss[0..n)) from work-group 0 and acc[at + 1] += sum(correct[0..n)) from
 * work-group 1, so the running sums never leave the device. */
__kernel __attribute__((reqd_work_group_size(REDUCE_WG, 1, 1)))
void accumulate(__global const float *loss, __global const float *correct, const int n, __global float *acc,
                const int at)
{
	__local float scratch[REDUCE_WG];
	const int lid = get_local_id(0);
	const int k = get_group_id(0);
	__global const float *values = k == 0 ? loss : correct;
	float s = 0.0f;
	for (int i = lid; i < n; i += REDUCE_WG)
		s += values[i];
	scratch[lid] = s;
	for (int span = REDUCE_WG / 2; span > 0; span >>= 1) {
		barrier(CLK_LOCAL_MEM_FENCE);
		if (lid < span)
			scratch[lid] += scratch[lid + span];
	}
	if (lid == 0)
		acc[at + k] += scratch[0];
}

/* g[0..n) += scale * (l1 * sign(y) + 2 * l2 * y): the gradient of an activity regularizer's
 * penalty on a layer's output y, scale = 1 / batch (exec/backward.c). */
__kernel void activity_gradient(__global float *g, __global const float *y, const int n, const float l1,
                                const float l2, const float scale)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	const float s = y[i] > 0.0f ? 1.0f : (y[i] < 0.0f ? -1.0f : 0.0f);
	g[i] += scale * (l1 * s + 2.0f * l2 * y[i]);
}

/* acc[index] += sum(l1 * |w| + l2 * w^2): the regularization term Keras adds to the shown loss,
 * and an activity regularizer's penalty (over a batch's outputs). */
__kernel __attribute__((reqd_work_group_size(REDUCE_WG, 1, 1)))
void regularization_loss(__global const float *w, const int n, const float l1, const float l2,
                         __global float *acc, const int index)
{
	__local float scratch[REDUCE_WG];
	const int lid = get_local_id(0);
	float s = 0.0f;
	for (int i = lid; i < n; i += REDUCE_WG)
		s += l1 * fabs(w[i]) + l2 * w[i] * w[i];
	scratch[lid] = s;
	for (int span = REDUCE_WG / 2; span > 0; span >>= 1) {
		barrier(CLK_LOCAL_MEM_FENCE);
		if (lid < span)
			scratch[lid] += scratch[lid + span];
	}
	if (lid == 0)
		acc[index] += scratch[0];
}
