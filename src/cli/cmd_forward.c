/* `strata forward`: one batch of the model's test images (or seeded random inputs) through the
 * network on the chosen device, the end-to-end check of the whole pipeline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Fills `input` with the first `batch` test images, scaled; labels into `labels` when present. */
static int load_test_batch(const char *model_path, const strata_model *model, float *input, uint64_t per_sample,
                           uint32_t batch, int *labels)
{
	strata_data_config data = strata_model_data(model);
	if (!data.test_images) {
		cli_error("%s: the model file has no data: test_images; use --random for random inputs", model_path);
		return CLI_USAGE;
	}
	strata_error err = {0};
	strata_idx *images = NULL, *lab = NULL;
	int rc = CLI_FAILED;
	if (strata_idx_load(data.test_images, &images, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		goto out_free;
	}
	uint64_t n = images->dims[0];
	strata_shape shape = strata_model_input_shape(model);
	if (strata_idx_check_samples(images, data.test_images, &shape, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		goto out_free;
	}
	if (n < batch) {
		cli_error("%s holds %llu images, fewer than the batch of %u", data.test_images, (unsigned long long)n,
		          batch);
		goto out_free;
	}
	const uint8_t *px = images->data;
	for (uint64_t i = 0; i < per_sample * batch; i++)
		input[i] = (float)(px[i] * data.scale);
	if (data.test_labels) {
		if (strata_idx_load(data.test_labels, &lab, &err) != STRATA_OK) {
			cli_error("%s", err.message);
			goto out_free;
		}
		if (lab->type != 0x08 || lab->rank != 1 || lab->dims[0] != n) {
			cli_error("%s: expected %llu unsigned-byte labels", data.test_labels, (unsigned long long)n);
			goto out_free;
		}
		for (uint32_t i = 0; i < batch; i++)
			labels[i] = ((const uint8_t *)lab->data)[i];
	}
	rc = CLI_OK;
out_free:
	strata_idx_free(images);
	strata_idx_free(lab);
	return rc;
}

static void fill_random(float *dst, uint64_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	for (uint64_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		dst[i] = (float)((x >> 40) / 16777216.0);
	}
}

static void print_predictions(const float *out, uint64_t classes, uint32_t batch, const int *labels)
{
	uint32_t shown = batch < 10 ? batch : 10, correct = 0;
	double worst_sum = 0.0;
	for (uint32_t i = 0; i < batch; i++) {
		const float *row = out + (uint64_t)i * classes;
		uint64_t best = 0;
		double sum = 0.0;
		for (uint64_t c = 0; c < classes; c++) {
			sum += row[c];
			if (row[c] > row[best])
				best = c;
		}
		if (labels[i] >= 0 && (uint64_t)labels[i] == best)
			correct++;
		if (i == 0 || (sum - 1.0) * (sum - 1.0) > (worst_sum - 1.0) * (worst_sum - 1.0))
			worst_sum = sum;
		if (i < shown) {
			printf("  sample %3u", i);
			if (labels[i] >= 0)
				printf("  label %d", labels[i]);
			printf("  predicted %llu (%.4f)\n", (unsigned long long)best, row[best]);
		}
	}
	if (batch > shown)
		printf("  ... %u more\n", batch - shown);
	printf("Output row sums: the one farthest from 1 is %.6f\n", worst_sum);
	if (labels[0] >= 0)
		printf("Matches with labels: %u of %u (untrained weights: chance level is expected)\n", correct, batch);
}

int cmd_forward(cli_context *ctx)
{
	int rc = cli_open_model(ctx);
	if (rc)
		return cli_close(ctx, rc);
	strata_model_print_summary(ctx->model, stdout);
	if ((rc = cli_open_runtime(ctx)))
		return cli_close(ctx, rc);
	const strata_device_info *dev = strata_runtime_device(ctx->rt);
	printf("Device: %s (%s, %s)\n", dev->name, dev->platform, dev->opencl_c_version);

	strata_training_config tc = strata_model_training(ctx->model);
	uint32_t batch = ctx->opt.batch >= 0 ? (uint32_t)ctx->opt.batch : tc.batch_size;
	uint64_t seed = ctx->opt.seed >= 0 ? (uint64_t)ctx->opt.seed : tc.seed;
	if (batch == 0) {
		cli_error("%s: the batch size must be at least 1", ctx->opt.model_path);
		return cli_close(ctx, CLI_USAGE);
	}
	size_t n_layers = strata_model_layer_count(ctx->model);
	uint64_t per_sample = cli_shape_elems(strata_model_input_shape(ctx->model));
	uint64_t classes = n_layers ? cli_shape_elems(strata_model_output_shape(ctx->model, n_layers - 1)) : per_sample;

	strata_error err = {0};
	strata_session *s = NULL;
	float *input = malloc(per_sample * batch * sizeof(float));
	float *output = malloc(classes * batch * sizeof(float));
	int *labels = malloc(batch * sizeof(int));
	if (!input || !output || !labels) {
		cli_error("out of memory for a batch of %u", batch);
		rc = CLI_FAILED;
		goto out_free;
	}
	for (uint32_t i = 0; i < batch; i++)
		labels[i] = -1;
	if (ctx->opt.random_input)
		fill_random(input, per_sample * batch, seed);
	else if ((rc = load_test_batch(ctx->opt.model_path, ctx->model, input, per_sample, batch, labels)))
		goto out_free;

	if (strata_session_create(ctx->rt, ctx->model, batch, seed, &s, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		rc = cli_exit_status(err.status);
		goto out_free;
	}
	double t0 = now_ms();
	if (strata_session_forward(s, input, batch, output, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		rc = CLI_FAILED;
		goto out_free;
	}
	double t1 = now_ms();
	printf("Forward pass of %u %s on %s: %.1f ms (first pass, kernels compiled or loaded included)\n", batch,
	       ctx->opt.random_input ? "random inputs" : "test images", dev->name, t1 - t0);
	print_predictions(output, classes, batch, labels);
	rc = CLI_OK;
out_free:
	strata_session_destroy(s);
	free(input);
	free(output);
	free(labels);
	return cli_close(ctx, rc);
}
