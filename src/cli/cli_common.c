#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

uint64_t cli_shape_elems(strata_shape shape)
{
	uint64_t n = 1;
	for (uint32_t i = 0; i < shape.rank; i++)
		n *= (uint64_t)shape.dims[i];
	return n;
}

void cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("strata: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int cli_exit_status(strata_status st)
{
	switch (st) {
	case STRATA_OK:
		return CLI_OK;
	case STRATA_ERR_PARSE:
	case STRATA_ERR_INVALID:
	case STRATA_ERR_OVERFLOW:
		return CLI_USAGE;
	default:
		return CLI_FAILED;
	}
}

void cli_log(void *user, int level, const char *message)
{
	(void)user;
	static const char *const names[] = {"error", "warning", "info", "debug"};
	fprintf(stderr, "strata: %s: %s\n", level >= 0 && level <= 3 ? names[level] : "log", message);
}

static int verbosity(const cli_context *ctx)
{
	return ctx->opt.verbose ? STRATA_LOG_INFO : STRATA_LOG_WARN;
}

int cli_open_registry(cli_context *ctx)
{
	strata_registry_options ro = {
		.size = sizeof(ro),
		.plugin_path = ctx->opt.plugin_path,
		.log = cli_log,
		.verbosity = verbosity(ctx),
	};
	strata_error err = {0};
	strata_status st = strata_registry_open(&ro, &ctx->reg, &err);
	if (st) {
		cli_error("%s", err.message);
		return CLI_FAILED;
	}
	return CLI_OK;
}

int cli_open_model(cli_context *ctx)
{
	int rc = ctx->reg ? CLI_OK : cli_open_registry(ctx);
	if (rc)
		return rc;
	strata_error err = {0};
	strata_status st = strata_model_load(ctx->reg, ctx->opt.model_path, &ctx->model, &err);
	if (st) {
		/* Loader messages already start with FILE:LINE:COLUMN, the form editors jump to. */
		fprintf(stderr, "%s\n", err.message);
		return cli_exit_status(st);
	}
	return CLI_OK;
}

const char *cli_device_selector(const cli_context *ctx, const strata_model *model)
{
	const char *device = ctx->opt.device;
	if (!device || !*device)
		device = getenv("STRATA_DEVICE");
	if ((!device || !*device) && model)
		device = strata_model_device(model);
	return device && *device ? device : NULL;
}

int cli_open_runtime(cli_context *ctx)
{
	strata_runtime_options opts = {
		.size = sizeof(opts),
		.device = cli_device_selector(ctx, ctx->model),
		.profile = ctx->opt.profile,
		.log = cli_log,
		.verbosity = verbosity(ctx),
		.guard = ctx->opt.guard,
	};
	strata_error err = {0};
	strata_status st = strata_runtime_create(ctx->reg, &opts, &ctx->rt, &err);
	if (st) {
		cli_error("%s", err.message);
		return st == STRATA_ERR_NOT_FOUND && ctx->opt.device ? CLI_USAGE : CLI_FAILED;
	}
	return CLI_OK;
}

int cli_close(cli_context *ctx, int status)
{
	if (ctx->rt) {
		if (ctx->opt.profile) {
			strata_error err = {0};
			if (strata_runtime_print_profile(ctx->rt, stdout, &err) != STRATA_OK) {
				cli_error("%s", err.message);
				status = status ? status : CLI_FAILED;
			}
		}
		if (ctx->opt.verbose) {
			strata_cache_stats cs = strata_runtime_cache_stats(ctx->rt);
			fprintf(stderr, "strata: info: program cache: %llu built, %llu loaded from disk, %llu reused, "
			        "%llu bad entries\n", (unsigned long long)cs.builds, (unsigned long long)cs.disk_hits,
			        (unsigned long long)cs.memory_hits, (unsigned long long)cs.disk_errors);
		}
		strata_runtime_destroy(ctx->rt);
	}
	strata_model_free(ctx->model);
	strata_registry_close(ctx->reg);
	return status;
}

int cli_open_session(cli_context *ctx, strata_session **out, uint32_t *batch)
{
	strata_training_config tc = strata_model_training(ctx->model);
	*batch = ctx->opt.batch > 0 ? (uint32_t)ctx->opt.batch : tc.batch_size;
	uint64_t seed = ctx->opt.seed >= 0 ? (uint64_t)ctx->opt.seed : tc.seed;
	if (*batch == 0) {
		cli_error("%s: the batch size must be at least 1", ctx->opt.model_path);
		return CLI_USAGE;
	}
	strata_error err = {0};
	if (strata_session_create(ctx->rt, ctx->model, *batch, seed, out, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		return cli_exit_status(err.status) == CLI_USAGE ? CLI_USAGE : CLI_FAILED;
	}
	return CLI_OK;
}

int cli_open_dataset(cli_context *ctx, const char *which, uint32_t offset, uint32_t limit,
                     const strata_dataset *reference, strata_dataset **out)
{
	strata_data_config data = strata_model_data(ctx->model);
	bool train = which[0] == 't' && which[1] == 'r';
	/* A model of several inputs or outputs: a file for each input, labels for each output with a
	 * loss (the model file's data section has them by name). */
	strata_data_files files = strata_model_data_files(ctx->model, !train);
	size_t n_inputs = strata_model_input_count(ctx->model), n_heads = strata_model_loss_count(ctx->model);
	strata_dataset_options o = {
		.size = sizeof(o),
		.images = train ? data.train_images : data.test_images,
		.labels = train ? data.train_labels : data.test_labels,
		.scale = data.scale,
		.num_classes = data.num_classes,
		.offset = offset,
		.limit = limit,
		.standardize = data.standardize,
		.reference = reference,
		.keep_labels = data.keep_labels, .n_keep_labels = data.n_keep_labels,
		.more_images = n_inputs > 1 ? files.inputs + 1 : NULL,
		.n_more_images = n_inputs > 1 ? (uint32_t)(n_inputs - 1) : 0,
		.more_labels = n_heads > 1 ? files.labels + 1 : NULL,
		.more_num_classes = n_heads > 1 ? files.num_classes + 1 : NULL,
		.n_more_labels = n_heads > 1 ? (uint32_t)(n_heads - 1) : 0,
	};
	/* A model that trains itself takes labels where the file gives them (a map's purity). */
	if (!o.images || (!o.labels && !strata_model_trains_itself(ctx->model))) {
		cli_error("%s: the model's data section names no %s images and labels", ctx->opt.model_path, which);
		return CLI_USAGE;
	}
	if (o.labels && !o.num_classes && strata_model_trains_itself(ctx->model)) {
		cli_error("%s: the model's data section gives %s labels without num_classes", ctx->opt.model_path, which);
		return CLI_USAGE;
	}
	for (size_t k = 1; k < n_heads; k++)
		if (!files.num_classes[k]) {
			cli_error("%s: the model's data section gives no num_classes for output '%s'", ctx->opt.model_path,
			          cli_loss_output_name(ctx->model, k));
			return CLI_USAGE;
		}
	strata_error err = {0};
	if (strata_dataset_load(ctx->rt, &o, out, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		return cli_exit_status(err.status); /* a malformed or mismatched file: 2, as elsewhere */
	}
	return CLI_OK;
}

/* The index among the model's outputs of the `head`-th output with a loss. */
static size_t head_output(const strata_model *m, size_t head)
{
	for (size_t k = 0, h = 0; k < strata_model_output_count(m); k++)
		if (strata_model_output_loss(m, k) && h++ == head)
			return k;
	return SIZE_MAX;
}

const char *cli_loss_output_name(const strata_model *m, size_t head)
{
	size_t k = head_output(m, head);
	return k == SIZE_MAX ? "?" : strata_model_layer_name(m, strata_model_output_layer(m, k));
}

bool cli_head_shows_accuracy(const strata_model *m, size_t head)
{
	return strata_model_output_has_metric(m, head_output(m, head), "accuracy");
}

/* A self-organizing map's figures (strata_map_result), MiniSom's names. */
static int print_map_evaluation(const strata_model *m, strata_session *s, strata_dataset *test, uint32_t batch,
                                const char *weights)
{
	strata_map_result r;
	strata_error err = {0};
	if (strata_evaluate_map(s, test, batch, &r, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		return cli_exit_status(err.status);
	}
	if (weights)
		printf("Evaluated %s on %u test samples (%s)\n", strata_model_name(m), r.count, weights);
	printf("Test quantization error: %.4f\nTest topographic error: %.4f\n", r.quantization_error,
	       r.topographic_error);
	if (r.has_purity)
		printf("Test purity: %.4f\n", r.purity);
	printf("Units used: %u of %u\n", r.units_used, r.units);
	return CLI_OK;
}

int cli_print_evaluation(const strata_model *m, strata_session *s, strata_dataset *test, uint32_t batch,
                         const char *weights)
{
	if (strata_model_trains_itself(m))
		return print_map_evaluation(m, s, test, batch, weights);
	size_t n = strata_model_loss_count(m);
	strata_eval_result total, *outputs = calloc(n ? n : 1, sizeof(*outputs));
	strata_error err = {0};
	if (!outputs) {
		cli_error("out of memory");
		return CLI_FAILED;
	}
	if (strata_evaluate_outputs(s, test, batch, &total, n ? outputs : NULL, n, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		free(outputs);
		return CLI_FAILED;
	}
	if (weights)
		printf("Evaluated %s on %u test samples (%s)\n", strata_model_name(m), total.count, weights);
	printf("Test loss: %.4f\n", total.loss);
	if (n > 1) {
		/* Keras' names: the total loss, then each output's loss and metrics. */
		for (size_t h = 0; h < n; h++) {
			const char *name = cli_loss_output_name(m, h);
			printf("Test %s_loss: %.4f\n", name, outputs[h].loss);
			if (cli_head_shows_accuracy(m, h))
				printf("Test %s_accuracy: %.4f\n", name, outputs[h].accuracy);
			printf("Test %s_LRAP: %.4f\n", name, outputs[h].lrap);
		}
	} else {
		printf("Test accuracy: %.4f\nTest LRAP: %.4f\n", total.accuracy, total.lrap);
	}
	free(outputs);
	return CLI_OK;
}
