/* Embedding (issue 15): Keras' layer that maps int32 ids to rows of a learned table, as the first
 * layer of a text model. Input: ids of any shape (timesteps,) ...; output: that shape plus
 * (output_dim). The gradient is a scatter-add into the table's rows, made exact and deterministic
 * without float atomics by sorting the (id, position) pairs first (embedding.cl). */
#include <limits.h>
#include <stdlib.h>

#include <strata/plugin.h>

#include "core.h"
#include "embedding_cl.h"
#include "shape.h"
#include "weights.h"

typedef struct embedding_plan {
	int64_t input_dim, output_dim;
	int64_t ids;       /* ids per sample */
	uint32_t table;    /* the weight "embeddings" (input_dim, output_dim) */
	uint32_t keys;     /* workspace: the sort's keys, room for a power of two >= batch x ids */
	bool mask_zero;
} embedding_plan;

static const strata_param embedding_params[] = {
	{.name = "input_dim", .type = STRATA_PARAM_INT, .min = 1, .max = INT_MAX,
	 .doc = "size of the vocabulary: ids run from 0 to input_dim - 1"},
	{.name = "output_dim", .type = STRATA_PARAM_INT, .min = 1, .max = 65536, .doc = "size of each id's vector"},
	{.name = "embeddings_initializer", .type = STRATA_PARAM_ENUM, .default_value = "uniform",
	 .choices = WEIGHTS_INITIALIZER_CHOICES, .doc = "initializer of the table (uniform: U(-0.05, 0.05), as Keras)"},
	{.name = "embeddings_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",
	 .doc = "l1/l2 penalty on the table"},
	{.name = "embeddings_constraint", .type = STRATA_PARAM_CONSTRAINT, .default_value = "null",
	 .doc = "applied to the table after every update: max_norm, non_neg"},
	{.name = "mask_zero", .type = STRATA_PARAM_BOOL, .default_value = "false",
	 .doc = "id 0 is padding: the output carries a mask for the recurrent and pooling layers to skip it"},
	{.name = "input_length", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "null",
	 .doc = "Keras 2's; the input's shape gives the length"},
	{.name = "sparse", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "false",
	 .doc = "sparse gradients are not supported: the table's gradient is dense"},
	{.name = "lora_rank", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "null", .doc = "LoRA is not supported"},
};

/* The smallest power of two >= n (n >= 1), or 0 past INT_MAX. */
static int64_t pow2_at_least(int64_t n)
{
	int64_t p = 1;
	while (p < n && p <= INT_MAX)
		p <<= 1;
	return p > INT_MAX ? 0 : p;
}

static strata_status embedding_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                     strata_shape *out)
{
	if (in->dtype != STRATA_DTYPE_INT32 || in->rank < 1 || in->rank >= STRATA_MAX_RANK) {
		char buf[96];
		return host->fail(layer, STRATA_ERR_INVALID, "needs int32 ids of 1 to %d axes (an input with dtype: int32), "
		                  "got %s%s", STRATA_MAX_RANK - 1, shape_format(in, buf, sizeof(buf)),
		                  in->dtype == STRATA_DTYPE_INT32 ? "" : " of floats");
	}
	embedding_plan plan = {
		.input_dim = host->param_int(layer, "input_dim"),
		.output_dim = host->param_int(layer, "output_dim"),
		.ids = 1,
		.mask_zero = host->param_bool(layer, "mask_zero"),
	};
	if (plan.mask_zero && !(STRATA_HOST_HAS(host, mask_declare) && STRATA_HOST_HAS(host, mask)))
		return host->fail_param(layer, "mask_zero", STRATA_ERR_UNSUPPORTED,
		                        "the host has no masks (added in 0.4): use a newer Strata");
	bool fits = true;
	for (uint32_t a = 0; a < in->rank && fits; a++)
		fits = shape_mul(plan.ids, in->dims[a], INT32_MAX / 2, &plan.ids);
	int64_t count;
	if (!fits || !shape_mul(plan.ids, plan.output_dim, INT32_MAX, &count) ||
	    !shape_mul(plan.input_dim, plan.output_dim, INT32_MAX, &count))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "a table of %lld x %lld or %lld ids per sample are too many",
		                  (long long)plan.input_dim, (long long)plan.output_dim, (long long)plan.ids);
	strata_weight_desc table = {
		.size = sizeof(table),
		.name = "embeddings",
		.shape = {.rank = 2, .dims = {plan.input_dim, plan.output_dim}},
		.initializer = host->param_string(layer, "embeddings_initializer"),
		.constraint = "embeddings_constraint",
	};
	host->param_regularizer(layer, "embeddings_regularizer", &table.l1, &table.l2);
	strata_status st = host->add_weight(layer, &table, &plan.table);
	/* The sort pads batch x ids to a power of two, less than twice as many. */
	if (st == STRATA_OK)
		st = host->add_workspace(layer, 2 * (size_t)plan.ids * sizeof(uint64_t), &plan.keys);
	if (st != STRATA_OK)
		return st;
	embedding_plan *p = malloc(sizeof(*p));
	if (!p)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	*p = plan;
	free(host->get_private(layer));
	host->set_private(layer, p);
	*out = *in;
	out->dtype = STRATA_DTYPE_FLOAT32;
	out->dims[in->rank] = plan.output_dim;
	out->rank = in->rank + 1;
	return plan.mask_zero ? host->mask_declare(layer, STRATA_MASK_PRODUCE) : STRATA_OK;
}

static strata_status embedding_launch(strata_layer *layer, const strata_host *host, const char *name, uint32_t dims,
                                      const size_t *global, uint32_t n, const strata_arg *args)
{
	strata_kernel *k = host->kernel(layer, "embedding", name, NULL);
	if (!k)
		return host->last_status(layer);
	return host->launch(layer, k, dims, global, NULL, n, args);
}

static strata_status embedding_forward(strata_layer *layer, const strata_host *host,
                                       const strata_forward_args *args)
{
	const embedding_plan *p = host->get_private(layer);
	if (args->batch == 0)
		return STRATA_OK;
	strata_status st = shape_check_batch(layer, host, args->batch, (size_t)(p->ids * p->output_dim));
	if (st != STRATA_OK)
		return st;
	const int64_t n = (int64_t)args->batch * p->ids;
	strata_arg a[] = {
		strata_arg_tensor(args->input), strata_arg_tensor(host->weight(layer, p->table)),
		strata_arg_tensor(args->output), strata_arg_int((int32_t)n), strata_arg_int((int32_t)p->output_dim),
		strata_arg_int((int32_t)p->input_dim),
	};
	size_t global[2] = {(size_t)p->output_dim, (size_t)n};
	st = embedding_launch(layer, host, "embedding_gather", 2, global, sizeof(a) / sizeof(a[0]), a);
	if (st != STRATA_OK || !p->mask_zero)
		return st;
	strata_arg m[] = {strata_arg_tensor(args->input), strata_arg_tensor(host->mask(layer, -1)),
	                  strata_arg_int((int32_t)n)};
	return embedding_launch(layer, host, "embedding_mask", 1, global + 1, sizeof(m) / sizeof(m[0]), m);
}

static strata_status embedding_backward(strata_layer *layer, const strata_host *host,
                                        const strata_backward_args *args)
{
	const embedding_plan *p = host->get_private(layer);
	strata_tensor *grad = host->weight_grad(layer, p->table);
	if (!grad)
		return host->fail(layer, STRATA_ERR_INVALID, "no weight gradients: the session is not prepared for training");
	strata_status st = core_fill(layer, host, grad, 0.0f, (size_t)(p->input_dim * p->output_dim));
	if (st != STRATA_OK || args->batch == 0)
		return st;
	const int64_t n = (int64_t)args->batch * p->ids, padded = pow2_at_least(n);
	if (!padded)
		return host->fail(layer, STRATA_ERR_OVERFLOW, "%lld ids are too many to sort", (long long)n);
	strata_tensor *keys = host->workspace(layer, p->keys);
	strata_arg ka[] = {
		strata_arg_tensor(args->input), strata_arg_tensor(keys), strata_arg_int((int32_t)n),
		strata_arg_int((int32_t)padded), strata_arg_int((int32_t)p->input_dim),
	};
	size_t global = (size_t)padded;
	st = embedding_launch(layer, host, "embedding_keys", 1, &global, sizeof(ka) / sizeof(ka[0]), ka);
	for (int64_t k = 2; k <= padded && st == STRATA_OK; k <<= 1)
		for (int64_t j = k >> 1; j > 0 && st == STRATA_OK; j >>= 1) {
			strata_arg ba[] = {
				strata_arg_tensor(keys), strata_arg_int((int32_t)padded), strata_arg_int((int32_t)k),
				strata_arg_int((int32_t)j),
			};
			st = embedding_launch(layer, host, "embedding_bitonic", 1, &global, sizeof(ba) / sizeof(ba[0]), ba);
		}
	if (st != STRATA_OK)
		return st;
	strata_arg sa[] = {
		strata_arg_tensor(keys), strata_arg_tensor(args->grad_output), strata_arg_tensor(grad),
		strata_arg_int((int32_t)padded), strata_arg_int((int32_t)p->output_dim),
	};
	size_t global2[2] = {(size_t)p->output_dim, (size_t)padded};
	return embedding_launch(layer, host, "embedding_sums", 2, global2, sizeof(sa) / sizeof(sa[0]), sa);
}

static void embedding_destroy(strata_layer *layer, const strata_host *host)
{
	free(host->get_private(layer));
	host->set_private(layer, NULL);
}

static const strata_layer_ops embedding_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "embedding",
	.class_name = "Embedding",
	.name_prefix = "embedding",
	.doc = "a learned vector per int32 id, as Keras' Embedding",
	.params = embedding_params,
	.n_params = sizeof(embedding_params) / sizeof(embedding_params[0]),
	.build = embedding_build,
	.forward = embedding_forward,
	.backward = embedding_backward,
	.destroy = embedding_destroy,
	.knows_dtypes = true,
};

static strata_status embedding_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "embedding", embedding_cl_source, "");
	return st == STRATA_OK ? host->register_layer(reg, &embedding_ops) : st;
}

static const strata_plugin embedding_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "embedding",
	.version = "1.0.0",
	.description = "Embedding: a gather forward, a sorted, deterministic scatter-add backward",
	.init = embedding_init,
};

STRATA_PLUGIN_DEFINE(embedding_plugin)
