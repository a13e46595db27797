/* `strata predict`: the class and probabilities of each image of an IDX file (or each sequence of
 * int32 ids), of one PNG or PGM picture, or of one text document through a vocabulary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "base/fsutil.h"

/* Reads INPUT as IDX when its first two bytes are zero (the IDX magic) or gzip's, as an image
 * otherwise. An IDX file's samples must be shaped as the model's input (strata_idx_check_samples). */
/* The samples to predict: bytes (pixels, or byte ids), or int32 ids. */
typedef struct samples {
	uint8_t *bytes;
	int32_t *ids;
	uint32_t count;
} samples;

/* Reads a text document's ids through --vocabulary: one sample. */
static int read_text(const char *path, const char *vocab_path, uint64_t per_sample, samples *out)
{
	strata_error err = {0};
	strata_vocabulary *v = NULL;
	FILE *f = NULL;
	uint64_t size = 0;
	if (strata_vocabulary_load(vocab_path, &v, &err) != STRATA_OK) {
		cli_error("--vocabulary: %s", err.message);
		return cli_exit_status(err.status);
	}
	if (st_fopen_regular(path, &f, &size, &err) != STRATA_OK) {
		strata_vocabulary_free(v);
		cli_error("INPUT: %s", err.message);
		return cli_exit_status(err.status);
	}
	char *text = malloc(size + 1);
	out->ids = malloc(per_sample * sizeof(int32_t));
	int rc = CLI_OK;
	if (!text || !out->ids || fread(text, 1, size, f) != size) {
		cli_error("%s: %s", path, text && out->ids ? "could not read it" : "out of memory");
		rc = CLI_FAILED;
	} else if (strata_vocabulary_encode(v, text, size, out->ids, per_sample) == SIZE_MAX) {
		cli_error("%s: out of memory", path);
		rc = CLI_FAILED;
	}
	out->count = 1;
	fclose(f);
	free(text);
	strata_vocabulary_free(v);
	return rc;
}

static int read_input(const char *path, const strata_shape *input, uint64_t per_sample, samples *out)
{
	strata_error err = {0};
	FILE *f = NULL;
	uint64_t size;
	/* A FIFO would block a plain fopen before anything is checked. */
	if (st_fopen_regular(path, &f, &size, &err) != STRATA_OK) {
		cli_error("INPUT: %s", err.message);
		return cli_exit_status(err.status);
	}
	unsigned char magic[2] = {1, 1};
	size_t got = fread(magic, 1, 2, f);
	fclose(f);
	bool gz = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
	if ((got == 2 && magic[0] == 0 && magic[1] == 0) || gz) {
		strata_idx *idx = NULL;
		if (strata_idx_load(path, &idx, &err) != STRATA_OK) {
			cli_error("%s", err.message);
			return cli_exit_status(err.status);
		}
		/* The reader refuses a file of no samples (predict used to divide by their number). */
		if (strata_idx_check_samples(idx, path, input, &err) != STRATA_OK) {
			cli_error("%s", err.message);
			strata_idx_free(idx);
			return CLI_USAGE;
		}
		if ((idx->type == 0x0C) != (input->dtype == STRATA_DTYPE_INT32) && idx->type != 0x08) {
			cli_error("%s holds %s, the model's input is %s", path, idx->type == 0x0C ? "int32 ids" : "no bytes",
			          input->dtype == STRATA_DTYPE_INT32 ? "int32 ids" : "float32");
			strata_idx_free(idx);
			return CLI_USAGE;
		}
		out->count = idx->dims[0];
		if (idx->type == 0x0C)
			out->ids = idx->data;
		else
			out->bytes = idx->data;
		idx->data = NULL;
		strata_idx_free(idx);
		return CLI_OK;
	}
	strata_image img;
	if (strata_image_load(path, &img, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		return CLI_FAILED;
	}
	if ((uint64_t)img.width * img.height != per_sample) {
		cli_error("%s is %ux%u, the model takes %llu values a sample (no resizing is done)", path, img.width,
		          img.height, (unsigned long long)per_sample);
		strata_image_free(&img);
		return CLI_USAGE;
	}
	out->count = 1;
	out->bytes = img.pixels;
	return CLI_OK;
}

int cmd_predict(cli_context *ctx)
{
	if (!ctx->opt.weights) {
		cli_error("predict needs --weights PATH");
		return CLI_USAGE;
	}
	int rc = cli_open_model(ctx);
	if (rc || (rc = cli_open_runtime(ctx)))
		return cli_close(ctx, rc);
	strata_session *s = NULL;
	strata_dataset *train = NULL;
	samples in_data = {0};
	float *x = NULL, *y = NULL;
	uint32_t batch = 0;
	strata_error err = {0};
	/* The model's (first) output, or any layer --layer names. */
	size_t layer = strata_model_output_layer(ctx->model, 0);
	if (ctx->opt.layer && (rc = cli_find_layer(ctx, &layer)))
		return cli_close(ctx, rc);
	if (strata_model_input_count(ctx->model) != 1) {
		cli_error("%s has %zu inputs; predict feeds one (eval and train read one file per input)",
		          ctx->opt.model_path, strata_model_input_count(ctx->model));
		return cli_close(ctx, CLI_USAGE);
	}
	strata_shape in = strata_model_input_shape(ctx->model);
	strata_shape out = strata_model_output_shape(ctx->model, layer);
	uint64_t per_sample = cli_shape_elems(in), classes = cli_shape_elems(out);

	bool ids = in.dtype == STRATA_DTYPE_INT32;
	if (ctx->opt.vocabulary && !ids) {
		cli_error("--vocabulary: %s reads float32 values, not int32 ids", ctx->opt.model_path);
		return cli_close(ctx, CLI_USAGE);
	}
	if ((rc = cli_open_session(ctx, &s, &batch)) ||
	    (rc = ctx->opt.vocabulary ? read_text(ctx->opt.input_path, ctx->opt.vocabulary, per_sample, &in_data)
	                              : read_input(ctx->opt.input_path, &in, per_sample, &in_data)))
		goto out_free;
	uint32_t count = in_data.count;
	if (strata_session_load(s, ctx->opt.weights, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		rc = cli_exit_status(err.status);
		goto out_free;
	}
	strata_data_config data = strata_model_data(ctx->model);
	x = malloc(per_sample * batch * sizeof(float));
	y = malloc(classes * batch * sizeof(float));
	if (!x || !y) {
		cli_error("out of memory");
		rc = CLI_FAILED;
		goto out_free;
	}
	/* Standardized models need their training set's statistics. */
	if (data.standardize && (rc = cli_open_dataset(ctx, "train", 0, 0, NULL, &train)))
		goto out_free;
	for (uint32_t start = 0; start < count; start += batch) {
		uint32_t n = count - start < batch ? count - start : batch;
		const uint8_t *src = in_data.bytes ? in_data.bytes + (size_t)start * per_sample : NULL;
		if (in_data.ids) {
			/* ids as their values: the session makes them int32 again */
			for (uint64_t i = 0; i < per_sample * n; i++)
				x[i] = (float)in_data.ids[(size_t)start * per_sample + i];
		} else if (ids) {
			for (uint64_t i = 0; i < per_sample * n; i++)
				x[i] = (float)src[i]; /* byte ids, unscaled as the data sets read them */
		} else if (train) {
			strata_dataset_transform(train, src, x, n);
		} else {
			for (uint64_t i = 0; i < per_sample * n; i++)
				x[i] = (float)(src[i] * data.scale);
		}
		if (strata_session_forward_to(s, x, n, layer, y, &err) != STRATA_OK) {
			cli_error("%s", err.message);
			rc = CLI_FAILED;
			goto out_free;
		}
		/* A self-organizing map's output: the best unit's row and column, then every distance. */
		bool map = !strcmp(strata_model_layer_type(ctx->model, layer), "som");
		for (uint32_t i = 0; map && i < n; i++) {
			const float *row = y + (size_t)i * classes;
			float nearest = classes > 2 ? row[2] : 0.0f;
			for (uint64_t c = 3; c < classes; c++)
				nearest = row[c] < nearest ? row[c] : nearest;
			printf("%u: unit (%.0f, %.0f) at distance %.4f  [", start + i, row[0], row[1], nearest);
			for (uint64_t c = 2; c < classes; c++)
				printf("%s%.4f", c > 2 ? " " : "", row[c]);
			printf("]\n");
		}
		for (uint32_t i = 0; !map && i < n; i++) {
			const float *row = y + (size_t)i * classes;
			uint64_t best = 0;
			for (uint64_t c = 1; c < classes; c++)
				if (row[c] > row[best])
					best = c;
			printf("%u: class %llu (%.4f)  [", start + i, (unsigned long long)best, row[best]);
			for (uint64_t c = 0; c < classes; c++)
				printf("%s%.4f", c ? " " : "", row[c]);
			printf("]\n");
		}
	}
	rc = CLI_OK;
out_free:
	free(x);
	free(y);
	free(in_data.bytes);
	free(in_data.ids);
	strata_dataset_free(train);
	strata_session_destroy(s);
	return cli_close(ctx, rc);
}
