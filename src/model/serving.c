/* The model file's `serving:` section: the dynamic batching `strata serve` gives the model
 * (strata_serving_config, Triton's names). Read here rather than by the server so a mistake in
 * it is reported at its line and column like any other, by every command that loads the file. */
#include <stdio.h>
#include <string.h>

#include "model/model_file.h"

/* One preferred batch size, validated as an integer from 1 to max_batch_size. */
static const strata_param preferred_param = {.name = "preferred_batch_sizes", .type = STRATA_PARAM_INT, .min = 1,
                                             .max = 65536, .doc = "a batch size"};

static strata_status read_preferred(st_loader *ld, const st_ynode *node, strata_serving_config *c)
{
	char got[96];
	if (!node || st_ynode_is_null(node))
		return STRATA_OK;
	if (node->kind != ST_YNODE_SEQUENCE) {
		st_ynode_describe(node, got, sizeof(got));
		return st_ld_fail(ld, node->pos, STRATA_ERR_INVALID,
		                  "'preferred_batch_sizes' must be a list of batch sizes, e.g. [16, 32], got %s", got);
	}
	if (node->u.seq.n > STRATA_MAX_PREFERRED_BATCH_SIZES)
		return st_ld_fail(ld, node->pos, STRATA_ERR_INVALID, "'preferred_batch_sizes': at most %d sizes, got %zu",
		                  STRATA_MAX_PREFERRED_BATCH_SIZES, node->u.seq.n);
	for (size_t i = 0; i < node->u.seq.n; i++) {
		const st_ynode *item = node->u.seq.items[i];
		st_param_value v;
		strata_status st = st_param_read_one(ld->file, &preferred_param, item, &v, ld->err);
		if (st)
			return st;
		if (v.i > c->max_batch_size)
			return st_ld_fail(ld, item->pos, STRATA_ERR_INVALID,
			                  "'preferred_batch_sizes' holds %lld, more than max_batch_size (%u)", (long long)v.i,
			                  c->max_batch_size);
		if (i && v.i <= c->preferred_batch_sizes[i - 1])
			return st_ld_fail(ld, item->pos, STRATA_ERR_INVALID,
			                  "'preferred_batch_sizes' must increase: %lld does not come after %u", (long long)v.i,
			                  c->preferred_batch_sizes[i - 1]);
		c->preferred_batch_sizes[i] = (uint32_t)v.i;
		c->n_preferred_batch_sizes = (uint32_t)i + 1;
	}
	return STRATA_OK;
}

strata_status st_serving_read(st_loader *ld, const st_ynode *root)
{
	static const char *const handled[] = {"preferred_batch_sizes", NULL};
	const st_schema *s = &st_schema_serving;
	const st_ynode *node = st_ynode_get(root, "serving");
	st_param_value *v;
	strata_status st = st_ld_section(ld, s, node, root->pos, "serving", handled, &v);
	if (st)
		goto out_free;
	strata_serving_config *c = &ld->m->serving;
	*c = (strata_serving_config){
		.max_batch_size = (uint32_t)st_ld_value(v, s, "max_batch_size")->i,
		.max_queue_delay_us = (uint64_t)st_ld_value(v, s, "max_queue_delay_us")->i,
		.max_queue_size = (uint32_t)st_ld_value(v, s, "max_queue_size")->i,
		.timeout_us = (uint64_t)st_ld_value(v, s, "timeout_us")->i,
		.warmup = st_ld_value(v, s, "warmup")->i != 0,
	};
	if (node && node->kind == ST_YNODE_MAPPING)
		st = read_preferred(ld, st_ynode_get(node, "preferred_batch_sizes"), c);
out_free:
	st_ld_free_values(v, s->n_params);
	return st;
}

strata_serving_config strata_model_serving(const strata_model *m)
{
	strata_serving_config none = {0};
	return m ? m->serving : none;
}
