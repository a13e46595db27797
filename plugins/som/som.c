/* The self-organizing map (Kohonen), trained without labels (issue 15). Names and defaults follow
 * MiniSom, the reference Python implementation: sigma 1.0, learning_rate 0.5, a gaussian
 * neighbourhood, the asymptotic decay x / (1 + t / (T / 2)), rectangular or hexagonal topology.
 *
 * The layer flattens each sample to F features and holds a codebook of rows x columns units of F
 * features as persistent state (non-trainable: the optimizer never sees it). Its output per sample
 * is the best-matching unit's row and column, then the Euclidean distance to every unit, row-major
 * (2 + rows * columns floats): `strata eval` derives the quantization and topographic errors from
 * it, `strata predict` prints it.
 *
 * Training is the layer's own (ops.trains_itself): a training forward pass updates the codebook
 * from the batch with the Kohonen rule, so `strata train` runs it without a loss or labels. With
 * t the training step, T decay_steps (0: the whole training's steps), n the batch and h the
 * neighbourhood of each sample's best-matching unit (from the codebook before the step):
 *     W[j] += learning_rate(t) / n * sum_i h(bmu_i, j; sigma(t)) (x_i - W[j])
 * A batch of 1 is MiniSom's online rule exactly; a larger batch averages its samples' steps, the
 * mini-batch form that lets the distances be one GEMM.
 *
 * The codebook is initialized from the first training batch, once (a state flag records it, so a
 * checkpoint or weights file carries it): `random` gives each unit a sample of that batch drawn
 * from the seed (MiniSom's random_weights_init), `pca` spreads the units evenly over the plane of
 * the batch's two first principal components, one standard deviation either way of the mean
 * (Kohonen's linear initialization; the components by power iteration on the device). */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/plugin.h>

#include "core.h"
#include "random.h"
#include "shape.h"
#include "som_cl.h"

/* Power iterations per principal component: the error of a component shrinks as
 * (lambda2 / lambda1)^(2 * iterations), far below float precision for any gap worth a plane. */
#define SOM_PCA_ITERATIONS 64

static const strata_param som_params[] = {
	{.name = "rows", .type = STRATA_PARAM_INT, .default_value = "10", .min = 1, .max = 4096,
	 .doc = "rows of units on the map"},
	{.name = "columns", .type = STRATA_PARAM_INT, .default_value = "10", .min = 1, .max = 4096,
	 .doc = "columns of units on the map"},
	{.name = "sigma", .type = STRATA_PARAM_FLOAT, .default_value = "1.0", .min = 0, .max = 1e6, .choices = "(]",
	 .doc = "the neighbourhood's radius at step 0, in units"},
	{.name = "learning_rate", .type = STRATA_PARAM_FLOAT, .default_value = "0.5", .min = 0, .max = 1,
	 .choices = "(]", .doc = "the step towards each sample at step 0"},
	{.name = "neighborhood_function", .type = STRATA_PARAM_ENUM, .default_value = "gaussian",
	 .choices = "gaussian|mexican_hat|bubble|triangle",
	 .doc = "exp(-d^2/2s^2); its mexican hat (1 - d^2/s^2) exp(-d^2/2s^2); 1 where |dx|,|dy| < s; "
	        "(1 - |dx|/s)(1 - |dy|/s)"},
	{.name = "topology", .type = STRATA_PARAM_ENUM, .default_value = "rectangular",
	 .choices = "rectangular|hexagonal", .doc = "the grid: 8 neighbours at distance 1 and sqrt(2), or 6 at 1"},
	{.name = "decay", .type = STRATA_PARAM_ENUM, .default_value = "asymptotic", .choices = "asymptotic|linear|none",
	 .doc = "sigma and learning_rate at step t of T: x / (1 + 2t/T), x (1 - t/T), or constant"},
	{.name = "decay_steps", .type = STRATA_PARAM_INT, .default_value = "0", .min = 0, .max = INT32_MAX,
	 .doc = "T, in training steps (batches); 0: all the steps of the training run"},
	{.name = "initializer", .type = STRATA_PARAM_ENUM, .default_value = "random", .choices = "random|pca",
	 .doc = "from the first training batch: a sample each, or the plane of its 2 principal components"},
};

typedef struct som_plan {
	int64_t f; /* features per sample */
	int64_t rows, columns, units;
	int function, hexagonal;
	int decay; /* 0 asymptotic, 1 linear, 2 none */
	int64_t decay_steps;
	bool pca;
	float sigma, learning_rate;
	uint32_t codebook, flag;  /* states */
	uint32_t ws_bmu, ws_h, ws_norms; /* workspaces */
	uint32_t ws_xc, ws_mean, ws_v1, ws_v2, ws_z, ws_scales; /* pca's */
} som_plan;

static int enum_index(const char *value, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(value, names[i]))
			return i;
	return 0;
}

static strata_status som_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                               strata_shape *out)
{
	static const char *const functions[] = {"gaussian", "mexican_hat", "bubble", "triangle"};
	static const char *const decays[] = {"asymptotic", "linear", "none"};
	char buf[96];
	if (!STRATA_HOST_HAS(host, add_state) || !STRATA_HOST_HAS(host, state))
		return host->fail(layer, STRATA_ERR_UNSUPPORTED, "SOM needs a host with persistent state (Strata 0.4)");
	som_plan plan = {
		.f = 1,
		.rows = host->param_int(layer, "rows"),
		.columns = host->param_int(layer, "columns"),
		.function = enum_index(host->param_string(layer, "neighborhood_function"), functions, 4),
		.hexagonal = !strcmp(host->param_string(layer, "topology"), "hexagonal"),
		.decay = enum_index(host->param_string(layer, "decay"), decays, 3),
		.decay_steps = host->param_int(layer, "decay_steps"),
		.pca = !strcmp(host->param_string(layer, "initializer"), "pca"),
		.sigma = (float)host->param_float(layer, "sigma"),
		.learning_rate = (float)host->param_float(layer, "learning_rate"),
	};
	if (in->rank < 1 || in->dtype != STRATA_DTYPE_FLOAT32)
		return host->fail(layer, STRATA_ERR_INVALID, "SOM needs float samples of rank 1 or more");
	for (uint32_t d = 0; d < in->rank; d++)
		if (!shape_mul(plan.f, in->dims[d], INT_MAX, &plan.f))
			return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s is too large", shape_format(in, buf, sizeof(buf)));
	int64_t cells;
	if (!shape_mul(plan.rows, plan.columns, INT_MAX - 2, &plan.units) || !shape_mul(plan.units, plan.f, INT_MAX, &cells))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "a map of %lld x %lld units of %lld features is too large",
		                  (long long)plan.rows, (long long)plan.columns, (long long)plan.f);
	if (!(plan.sigma > 0.0f))
		return host->fail_param(layer, "sigma", STRATA_ERR_INVALID, "sigma must be above 0 in float32");

	strata_weight_desc codebook = {.size = sizeof(codebook), .name = "codebook",
	                               .shape = {.rank = 2, .dims = {plan.units, plan.f}}, .initializer = "zeros"};
	strata_weight_desc flag = {.size = sizeof(flag), .name = "initialized", .shape = {.rank = 1, .dims = {1}},
	                           .initializer = "zeros"};
	size_t u = (size_t)plan.units * sizeof(float), f = (size_t)plan.f * sizeof(float);
	/* Workspaces grow with the batch, and a batch has one sample at least: the per-map ones (the
	 * norms, pca's vectors) take one sample's room. Per sample: its best-matching unit, its
	 * neighbourhoods (pca's power iteration keeps X v there, one float a sample), pca's centred
	 * copy of it. */
	strata_status st;
	if ((st = host->add_state(layer, &codebook, &plan.codebook)) || (st = host->add_state(layer, &flag, &plan.flag)) ||
	    (st = host->add_workspace(layer, sizeof(int32_t), &plan.ws_bmu)) ||
	    (st = host->add_workspace(layer, u, &plan.ws_h)) || (st = host->add_workspace(layer, u, &plan.ws_norms)))
		return st;
	if (plan.pca && ((st = host->add_workspace(layer, f, &plan.ws_xc)) || (st = host->add_workspace(layer, f, &plan.ws_mean)) ||
	                 (st = host->add_workspace(layer, f, &plan.ws_v1)) || (st = host->add_workspace(layer, f, &plan.ws_v2)) ||
	                 (st = host->add_workspace(layer, f, &plan.ws_z)) ||
	                 (st = host->add_workspace(layer, 2 * sizeof(float), &plan.ws_scales))))
		return st;
	som_plan *p = malloc(sizeof(*p));
	if (!p)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	*p = plan;
	free(host->get_private(layer));
	host->set_private(layer, p);
	*out = (strata_shape){.rank = 1, .dims = {plan.units + 2}};
	return STRATA_OK;
}

static strata_status launch(strata_layer *layer, const strata_host *host, const char *name, size_t g0, size_t g1,
                            uint32_t n_args, const strata_arg *args)
{
	strata_kernel *k = host->kernel(layer, "som", name, NULL);
	if (!k)
		return host->last_status(layer);
	size_t global[2] = {g0, g1};
	return host->launch(layer, k, g1 ? 2 : 1, global, NULL, n_args, args);
}

/* Row-major C (m x n) = alpha op(A) op(B) + beta C. */
static strata_status gemm(strata_layer *layer, const strata_host *host, bool ta, size_t m, size_t n, size_t k,
                          float alpha, strata_tensor *a, size_t lda, strata_tensor *b, size_t ldb, float beta,
                          strata_tensor *c, size_t c_off, size_t ldc)
{
	strata_gemm g = {.size = sizeof(g), .trans_a = ta, .trans_b = false, .m = m, .n = n, .k = k, .alpha = alpha,
	                 .beta = beta, .a = a, .lda = lda, .b = b, .ldb = ldb, .c = c, .c_offset = c_off, .ldc = ldc};
	return host->gemm(layer, &g);
}

/* A principal component of the centred batch xc (n x f) into v by power iteration (orthogonal to
 * prev when given), and its eigenvalue of xc^T xc into scales[which]. */
static strata_status pca_component(strata_layer *layer, const strata_host *host, const som_plan *p, uint32_t n,
                                   strata_tensor *v, strata_tensor *prev, int which)
{
	strata_tensor *xc = host->workspace(layer, p->ws_xc), *y = host->workspace(layer, p->ws_h);
	strata_tensor *z = host->workspace(layer, p->ws_z), *scales = host->workspace(layer, p->ws_scales);
	size_t f = (size_t)p->f;
	strata_status st;
	const strata_arg s[] = {strata_arg_tensor(v), strata_arg_int((int32_t)f)};
	if ((st = launch(layer, host, "som_start", f, 0, 2, s)))
		return st;
	for (int it = 0; it <= SOM_PCA_ITERATIONS; it++) {
		bool measure = it == SOM_PCA_ITERATIONS;
		strata_tensor *into = measure ? z : v;
		/* y = xc v (n x 1), then xc^T y (f x 1): xc^T xc v without the f x f matrix. */
		if ((st = gemm(layer, host, false, n, 1, f, 1.0f, xc, f, v, 1, 0.0f, y, 0, 1)) ||
		    (st = gemm(layer, host, true, f, 1, n, 1.0f, xc, f, y, 1, 0.0f, into, 0, 1)))
			return st;
		const strata_arg a[] = {strata_arg_tensor(into), strata_arg_tensor(prev ? prev : v), strata_arg_tensor(scales),
		                        strata_arg_int(which), strata_arg_int((int32_t)f), strata_arg_int(prev != NULL),
		                        strata_arg_int(measure)};
		if ((st = launch(layer, host, "som_normalize", 1, 0, 7, a)))
			return st;
	}
	return STRATA_OK;
}

/* The codebook from the first training batch, unless the state flag says it was initialized:
 * every kernel that writes it checks the flag on the device, so a loaded codebook stays. */
static strata_status som_initialize(strata_layer *layer, const strata_host *host, const som_plan *p,
                                    const strata_forward_args *args)
{
	strata_tensor *w = host->state(layer, p->codebook), *flag = host->state(layer, p->flag);
	int32_t n = (int32_t)args->batch, u = (int32_t)p->units, f = (int32_t)p->f;
	strata_status st;
	if (!p->pca) {
		random_stream rs = random_stream_of(layer, host, args->seed, 0);
		const strata_arg a[] = {strata_arg_tensor(args->input), strata_arg_tensor(w), strata_arg_tensor(flag),
		                        strata_arg_int(n), strata_arg_int(u), strata_arg_int(f), strata_arg_uint(rs.key_lo),
		                        strata_arg_uint(rs.key_hi)};
		if ((st = launch(layer, host, "som_init_random", (size_t)f, (size_t)u, 8, a)))
			return st;
	} else {
		strata_tensor *mean = host->workspace(layer, p->ws_mean), *v1 = host->workspace(layer, p->ws_v1);
		strata_tensor *v2 = host->workspace(layer, p->ws_v2);
		const strata_arg c[] = {strata_arg_tensor(args->input), strata_arg_tensor(mean),
		                        strata_arg_tensor(host->workspace(layer, p->ws_xc)), strata_arg_int(n), strata_arg_int(f)};
		const strata_arg a[] = {strata_arg_tensor(w),       strata_arg_tensor(flag),
		                        strata_arg_tensor(mean),    strata_arg_tensor(v1),
		                        strata_arg_tensor(v2),      strata_arg_tensor(host->workspace(layer, p->ws_scales)),
		                        strata_arg_int(n),          strata_arg_int(u),
		                        strata_arg_int(f),          strata_arg_int((int32_t)p->rows),
		                        strata_arg_int((int32_t)p->columns)};
		if ((st = launch(layer, host, "som_center", (size_t)f, 0, 5, c)) ||
		    (st = pca_component(layer, host, p, args->batch, v1, NULL, 0)) ||
		    (st = pca_component(layer, host, p, args->batch, v2, v1, 1)) ||
		    (st = launch(layer, host, "som_init_pca", (size_t)f, (size_t)u, 11, a)))
			return st;
	}
	const strata_arg fl[] = {strata_arg_tensor(flag)};
	return launch(layer, host, "som_set_flag", 1, 0, 1, fl);
}

/* sigma or the learning rate at step t: x / (1 + t / (T / 2)), x (1 - t / T) (t past T as T), or x. */
static float som_decayed(const som_plan *p, float x, uint64_t t, uint64_t total)
{
	uint64_t T = p->decay_steps > 0 ? (uint64_t)p->decay_steps : total;
	if (p->decay == 2 || T == 0)
		return x;
	double r = (double)(t < T ? t : T) / (double)T;
	return (float)(p->decay == 0 ? x / (1.0 + 2.0 * r) : x * (1.0 - r));
}

/* The Kohonen step of a training batch (after som_bmu found each sample's unit). */
static strata_status som_update(strata_layer *layer, const strata_host *host, const som_plan *p,
                                const strata_forward_args *args)
{
	uint64_t total = STRATA_ARGS_HAS(args, strata_forward_args, total_steps) ? args->total_steps : 0;
	float sigma = som_decayed(p, p->sigma, args->step, total);
	float rate = som_decayed(p, p->learning_rate, args->step, total) / (float)args->batch;
	/* Linear decay ends at 0: past it a gaussian of radius 0 is the BMU alone, and the rate 0. */
	if (sigma < 1e-6f)
		sigma = 1e-6f;
	if (rate == 0.0f)
		return STRATA_OK;
	strata_tensor *w = host->state(layer, p->codebook), *h = host->workspace(layer, p->ws_h);
	int32_t n = (int32_t)args->batch, u = (int32_t)p->units, f = (int32_t)p->f;
	const strata_arg a[] = {strata_arg_tensor(host->workspace(layer, p->ws_bmu)), strata_arg_tensor(h),
	                        strata_arg_int(n), strata_arg_int(u), strata_arg_int((int32_t)p->columns),
	                        strata_arg_int(p->hexagonal), strata_arg_int(p->function), strata_arg_float(sigma)};
	const strata_arg s[] = {strata_arg_tensor(w), strata_arg_tensor(h), strata_arg_int(n), strata_arg_int(u),
	                        strata_arg_int(f), strata_arg_float(rate)};
	strata_status st;
	if ((st = launch(layer, host, "som_neighbourhood", (size_t)u, (size_t)n, 8, a)) ||
	    (st = launch(layer, host, "som_shrink", (size_t)f, (size_t)u, 6, s)))
		return st;
	/* W += rate H^T X: (u x n) (n x f). */
	return gemm(layer, host, true, (size_t)u, (size_t)f, (size_t)n, rate, h, (size_t)u, args->input, (size_t)f, 1.0f,
	            w, 0, (size_t)f);
}

static strata_status som_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	const som_plan *p = host->get_private(layer);
	strata_status st = shape_check_batch(layer, host, args->batch, (size_t)(p->units + 2 > p->f ? p->units + 2 : p->f));
	if (st || args->batch == 0)
		return st;
	/* The first training step initializes the codebook (the flag keeps a loaded one). */
	if (args->training && args->step == 0 && (st = som_initialize(layer, host, p, args)))
		return st;
	strata_tensor *w = host->state(layer, p->codebook), *norms = host->workspace(layer, p->ws_norms);
	int32_t n = (int32_t)args->batch, u = (int32_t)p->units, f = (int32_t)p->f;
	const strata_arg nr[] = {strata_arg_tensor(w), strata_arg_tensor(norms), strata_arg_int(u), strata_arg_int(f)};
	const strata_arg b[] = {strata_arg_tensor(args->input), strata_arg_tensor(args->output), strata_arg_tensor(norms),
	                        strata_arg_tensor(host->workspace(layer, p->ws_bmu)), strata_arg_int(n), strata_arg_int(u),
	                        strata_arg_int(f), strata_arg_int((int32_t)p->columns)};
	/* -2 X W^T into the distance slots of the output (n x u, rows of u + 2). */
	strata_gemm g = {.size = sizeof(g), .trans_b = true, .m = (size_t)n, .n = (size_t)u, .k = (size_t)f,
	                 .alpha = -2.0f, .beta = 0.0f, .a = args->input, .lda = (size_t)f, .b = w, .ldb = (size_t)f,
	                 .c = args->output, .c_offset = 2, .ldc = (size_t)u + 2};
	if ((st = launch(layer, host, "som_norms", (size_t)u, 0, 4, nr)) || (st = host->gemm(layer, &g)) ||
	    (st = launch(layer, host, "som_bmu", (size_t)n, 0, 8, b)))
		return st;
	return args->training ? som_update(layer, host, p, args) : STRATA_OK;
}

static void som_destroy(strata_layer *layer, const strata_host *host)
{
	free(host->get_private(layer));
	host->set_private(layer, NULL);
}

static const strata_layer_ops som_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "som",
	.class_name = "SOM",
	.name_prefix = "som",
	.doc = "self-organizing map trained without labels (Kohonen): outputs the best unit's row, column "
	       "and the distance to every unit",
	.params = som_params,
	.n_params = sizeof(som_params) / sizeof(som_params[0]),
	.build = som_build,
	.forward = som_forward,
	.destroy = som_destroy,
	.knows_dtypes = true,
	.trains_itself = true,
};

static strata_status som_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "som", som_cl_source, "");
	return st ? st : host->register_layer(reg, &som_ops);
}

static const strata_plugin som_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "som",
	.version = "1.0",
	.description = "self-organizing maps",
	.init = som_init,
};

STRATA_PLUGIN_DEFINE(som_plugin)
