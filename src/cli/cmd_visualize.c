/* `strata visualize`: the input each filter of a layer responds to most, found by gradient ascent
 * from gray noise (Keras' example conv_filter_visualization), as a grid of images in a PNG; with
 * --augmented, the model's first training images as its augmentation layers make them while
 * training (strata_session_forward_training_to), each below its original, so a user can check
 * the augmentation by eye. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define DEFAULT_STEPS 20
#define LARGEST_DEFAULT_GRID 8 /* Keras' example: n = 8 */

/* The largest n x n grid the filters can fill, up to Keras' 8 x 8. */
static uint32_t default_grid(uint32_t filters)
{
	uint32_t n = 1;
	while (n < LARGEST_DEFAULT_GRID && (n + 1) * (n + 1) <= filters)
		n++;
	return n;
}

/* Only gray and RGB inputs can be drawn: refused before the work rather than after it. */
static int check_drawable(cli_context *ctx)
{
	strata_shape in = strata_model_input_shape(ctx->model);
	uint64_t channels = 1;
	for (uint32_t d = 2; d < in.rank; d++)
		channels *= (uint64_t)in.dims[d];
	if (channels == 1 || channels == 3)
		return CLI_OK;
	cli_error("%s: inputs of %llu channels cannot be drawn: only gray (1) and RGB (3)", ctx->opt.model_path,
	          (unsigned long long)channels);
	return CLI_USAGE;
}

/* A grid whose last row (or more) could never be filled, or a picture too large to be looked at,
 * is refused before the work: --grid 10000 on a 4-filter layer once asked for a 130,000-pixel side. */
static int check_grid(cli_context *ctx, uint32_t grid, uint32_t filters)
{
	uint32_t fits = 1;
	while ((uint64_t)fits * fits < filters)
		fits++;
	if (grid > fits) {
		cli_error("--grid %u: %s has %u filter%s to show%s; a grid of at most %u x %u holds %s", grid,
		          ctx->opt.layer, filters, filters == 1 ? "" : "s", ctx->opt.filters > 0 ? " (--filters)" : "",
		          fits, fits, filters == 1 ? "it" : "them all");
		return CLI_USAGE;
	}
	strata_shape in = strata_model_input_shape(ctx->model);
	uint64_t side = in.rank >= 2 ? (uint64_t)(in.dims[0] > in.dims[1] ? in.dims[0] : in.dims[1]) : 1;
	uint64_t pixels = grid * side + (grid - 1) * 5ull;
	if (pixels > CLI_MAX_PICTURE_SIDE) {
		cli_error("--grid %u: the picture would be %llu pixels a side, more than %d; choose a smaller grid", grid,
		          (unsigned long long)pixels, CLI_MAX_PICTURE_SIDE);
		return CLI_USAGE;
	}
	return CLI_OK;
}

static void report(cli_context *ctx, const strata_visualize_result *r, uint32_t grid)
{
	printf("%s of %s: %u filters, %u steps each; %u ended above 0\n", ctx->opt.layer,
	       strata_model_name(ctx->model), r->filters, r->steps, r->active);
	printf("  rank  filter  mean activation: start -> end\n");
	for (uint32_t i = 0; i < r->kept; i++) {
		const strata_filter_image *im = &r->images[i];
		printf("  %4u  %6u  %14.6g -> %.6g\n", i + 1, im->filter,
		       (double)r->activations[(size_t)im->filter * ((size_t)r->steps + 1)], (double)im->activation);
	}
	uint32_t side_w = grid * r->width + (grid - 1) * 5, side_h = grid * r->height + (grid - 1) * 5;
	printf("Wrote %s: %u x %u images of %u x %u (%u x %u pixels)\n", ctx->opt.output, grid, grid, r->width,
	       r->height, side_w, side_h);
	if ((uint64_t)r->kept < (uint64_t)grid * grid)
		fprintf(stderr, "strata: warning: %u filters ended above 0: %llu of the %llu cells are black\n",
		        r->kept, (unsigned long long)grid * grid - r->kept, (unsigned long long)grid * grid);
}

/* ---- --augmented ----------------------------------------------------------------------------------- */


#define AUGMENTED_COUNT 8   /* images shown by default */
#define AUGMENTED_COLUMNS 8 /* pairs per row of the grid */
#define AUGMENTED_MARGIN 5  /* black pixels between images, as the filter grids */

/* The layer whose output is shown: --layer, or the model's last augmentation layer (a type
 * random_*); it must give images of the input's shape. */
static int augmented_layer(cli_context *ctx, size_t *layer)
{
	const strata_model *m = ctx->model;
	int rc;
	if (ctx->opt.layer) {
		if ((rc = cli_find_layer(ctx, layer)))
			return rc;
	} else {
		size_t n = strata_model_layer_count(m), found = n;
		for (size_t i = 0; i < n; i++)
			if (strncmp(strata_model_layer_type(m, i), "random_", 7) == 0)
				found = i;
		if (found == n) {
			cli_error("%s has no augmentation layer (random_translation, random_rotation, random_zoom, "
			          "random_flip, random_contrast): nothing to show; --layer names another", ctx->opt.model_path);
			return CLI_USAGE;
		}
		*layer = found;
	}
	strata_shape in = strata_model_input_shape(m), out = strata_model_output_shape(m, *layer);
	bool same = in.rank == 3 && out.rank == 3;
	for (uint32_t d = 0; same && d < 3; d++)
		same = in.dims[d] == out.dims[d];
	if (!same) {
		cli_error("%s: the output of %s is not an image of the input's shape (height, width, channels): "
		          "nothing to show beside the originals", ctx->opt.model_path, strata_model_layer_name(m, *layer));
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* The first `count` training samples (of the classes data.keep_labels keeps) as bytes: *got of
 * them, fewer when the file holds fewer. */
static int augmented_samples(cli_context *ctx, uint32_t count, uint8_t **bytes, uint32_t *got)
{
	strata_data_config data = strata_model_data(ctx->model);
	strata_shape in = strata_model_input_shape(ctx->model);
	strata_error err = {0};
	strata_idx *images = NULL, *labels = NULL;
	*bytes = NULL;
	*got = 0;
	if (!data.train_images) {
		cli_error("%s has no training images (data: train_images) to show", ctx->opt.model_path);
		return CLI_USAGE;
	}
	if (strata_idx_load(data.train_images, &images, &err) != STRATA_OK ||
	    strata_idx_check_samples(images, data.train_images, &in, &err) != STRATA_OK ||
	    (data.n_keep_labels > 0 && data.train_labels &&
	     strata_idx_load(data.train_labels, &labels, &err) != STRATA_OK)) {
		cli_error("%s", err.message);
		strata_idx_free(images);
		return cli_exit_status(err.status);
	}
	size_t per_sample = (size_t)(images->count / images->dims[0]);
	*bytes = malloc((size_t)count * per_sample);
	if (!*bytes) {
		cli_error("out of memory");
		strata_idx_free(images);
		strata_idx_free(labels);
		return CLI_FAILED;
	}
	for (uint32_t i = 0; i < images->dims[0] && *got < count; i++) {
		bool keep = !labels;
		for (uint32_t k = 0; labels && k < data.n_keep_labels && !keep; k++)
			keep = i < labels->count && ((const uint8_t *)labels->data)[i] == data.keep_labels[k];
		if (keep)
			memcpy(*bytes + (size_t)(*got)++ * per_sample, (const uint8_t *)images->data + (size_t)i * per_sample,
			       per_sample);
	}
	strata_idx_free(images);
	strata_idx_free(labels);
	if (*got == 0) {
		cli_error("%s: no training sample of the classes data.keep_labels keeps", ctx->opt.model_path);
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* The grid: rows of up to AUGMENTED_COLUMNS originals, each row of originals above the same
 * images as the layer made them; values mapped linearly from [lo, hi] to levels 0..255 and
 * clipped (gray for one channel, RGB for three), margins black. Written atomically. */
static int augmented_png(const char *path, const float *orig, const float *aug, uint32_t n, uint32_t h, uint32_t w,
                         uint32_t c, float lo, float hi, uint32_t *width, uint32_t *height)
{
	uint32_t cols = n < AUGMENTED_COLUMNS ? n : AUGMENTED_COLUMNS, rows = (n + cols - 1) / cols;
	*width = cols * w + (cols - 1) * AUGMENTED_MARGIN;
	*height = 2 * rows * h + (2 * rows - 1) * AUGMENTED_MARGIN;
	if (*width > CLI_MAX_PICTURE_SIDE || *height > CLI_MAX_PICTURE_SIDE) {
		cli_error("the picture would be %u x %u pixels, more than %d a side; show fewer images (--count)", *width,
		          *height, CLI_MAX_PICTURE_SIDE);
		return CLI_USAGE;
	}
	uint8_t *pixels = calloc((size_t)*width * *height * 3, 1);
	if (!pixels) {
		cli_error("out of memory for a %u x %u picture", *width, *height);
		return CLI_FAILED;
	}
	float span = hi > lo ? hi - lo : 1.0f;
	for (uint32_t i = 0; i < n; i++)
		for (int which = 0; which < 2; which++) {
			const float *img = (which ? aug : orig) + (size_t)i * h * w * c;
			uint32_t x0 = (i % cols) * (w + AUGMENTED_MARGIN);
			uint32_t y0 = (2 * (i / cols) + (uint32_t)which) * (h + AUGMENTED_MARGIN);
			for (uint32_t y = 0; y < h; y++)
				for (uint32_t x = 0; x < w; x++)
					for (uint32_t k = 0; k < 3; k++) {
						float v = (img[((size_t)y * w + x) * c + (c == 3 ? k : 0)] - lo) / span * 255.0f;
						pixels[(((size_t)(y0 + y) * *width) + x0 + x) * 3 + k] =
							v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)(v + 0.5f);
					}
		}
	int rc = cli_write_png(path, pixels, *width, *height, 3);
	free(pixels);
	return rc;
}

static int visualize_augmented(cli_context *ctx)
{
	int rc = cli_open_model(ctx);
	if (rc)
		return cli_close(ctx, rc);
	if (ctx->opt.filters > 0 || ctx->opt.steps >= 0 || ctx->opt.grid > 0) {
		cli_error("--augmented shows training images: --filters, --steps and --grid are for filter images "
		          "(--count says how many images)");
		return cli_close(ctx, CLI_USAGE);
	}
	char fallback[512];
	const char *path = ctx->opt.output;
	if (!path) {
		snprintf(fallback, sizeof(fallback), "%s_augmented.png", strata_model_name(ctx->model));
		path = fallback;
	}
	uint32_t count = ctx->opt.count > 0 ? (uint32_t)ctx->opt.count : AUGMENTED_COUNT, got = 0, batch = 0;
	size_t layer = 0;
	uint8_t *bytes = NULL;
	float *x = NULL, *y = NULL;
	strata_session *s = NULL;
	strata_dataset *train = NULL;
	strata_error err = {0};
	if ((rc = augmented_layer(ctx, &layer)) || (rc = check_drawable(ctx)) || (rc = cli_check_output(path)) ||
	    (rc = augmented_samples(ctx, count, &bytes, &got)) || (rc = cli_open_runtime(ctx)))
		goto out_free;
	/* One pass of all the images, as the first samples of a training batch, unless --batch-size
	 * asks for smaller passes (sample i of each draws as sample i of a training batch). */
	if (ctx->opt.batch < 0)
		ctx->opt.batch = got;
	if ((rc = cli_open_session(ctx, &s, &batch)) || (ctx->opt.weights && (rc = cli_load_weights(ctx, s))))
		goto out_free;
	strata_data_config data = strata_model_data(ctx->model);
	strata_shape in = strata_model_input_shape(ctx->model);
	uint32_t h = (uint32_t)in.dims[0], w = (uint32_t)in.dims[1], c = (uint32_t)in.dims[2];
	size_t per_sample = (size_t)h * w * c, total = (size_t)got * per_sample;
	if (!(x = malloc(total * sizeof(float))) || !(y = malloc(total * sizeof(float)))) {
		cli_error("out of memory");
		rc = CLI_FAILED;
		goto out_free;
	}
	/* The values the network sees, prepared as its training batches are. */
	float lo = 0.0f, hi = 255.0f * (float)(data.scale > 0 ? data.scale : 1.0);
	if (data.standardize) {
		if ((rc = cli_open_dataset(ctx, "train", 0, 0, NULL, &train)))
			goto out_free;
		strata_dataset_transform(train, bytes, x, got);
		lo = hi = x[0];
		for (size_t i = 1; i < total; i++) {
			lo = x[i] < lo ? x[i] : lo;
			hi = x[i] > hi ? x[i] : hi;
		}
	} else {
		for (size_t i = 0; i < total; i++)
			x[i] = (float)(bytes[i] * (data.scale > 0 ? data.scale : 1.0));
	}
	for (uint32_t done = 0; done < got; done += batch) {
		uint32_t nb = got - done < batch ? got - done : batch;
		if (strata_session_forward_training_to(s, x + (size_t)done * per_sample, nb, layer,
		                                       y + (size_t)done * per_sample, &err) != STRATA_OK) {
			cli_error("%s", err.message);
			rc = cli_exit_status(err.status);
			goto out_free;
		}
	}
	uint32_t width = 0, height = 0;
	if ((rc = augmented_png(path, x, y, got, h, w, c, lo, hi, &width, &height)))
		goto out_free;
	strata_training_config tc = strata_model_training(ctx->model);
	printf("Wrote %s: %u training images of %s (%u x %u), each above itself as %s makes it while training "
	       "with seed %llu (%u x %u pixels)\n", path, got, strata_model_name(ctx->model), w, h,
	       strata_model_layer_name(ctx->model, layer),
	       (unsigned long long)(ctx->opt.seed >= 0 ? (uint64_t)ctx->opt.seed : tc.seed), width, height);
	rc = CLI_OK;
out_free:
	free(bytes);
	free(x);
	free(y);
	strata_dataset_free(train);
	strata_session_destroy(s);
	return cli_close(ctx, rc);
}


int cmd_visualize(cli_context *ctx)
{
	if (ctx->opt.augmented && ctx->opt.codebook) {
		cli_error("--augmented and --codebook draw different pictures: choose one");
		return CLI_USAGE;
	}
	if (ctx->opt.augmented)
		return visualize_augmented(ctx);
	if (ctx->opt.codebook)
		return cli_visualize_codebook(ctx);
	if (!ctx->opt.layer || !ctx->opt.output) {
		cli_error("visualize needs --layer NAME and -o PATH.png");
		return CLI_USAGE;
	}
	size_t layer = 0;
	int rc = cli_open_model(ctx);
	if (rc || (rc = cli_find_layer(ctx, &layer)) || (rc = check_drawable(ctx)) ||
	    (rc = cli_check_output(ctx->opt.output)) || (rc = cli_open_runtime(ctx)))
		return cli_close(ctx, rc);
	strata_session *s = NULL;
	strata_dataset *train = NULL;
	strata_visualize_result r = {0};
	strata_error err = {0};
	uint32_t batch = 0;
	strata_shape out = strata_model_output_shape(ctx->model, layer);
	uint32_t channels = out.rank ? (uint32_t)out.dims[out.rank - 1] : 1;
	uint32_t filters = ctx->opt.filters > 0 ? (uint32_t)ctx->opt.filters : channels;
	if (filters > channels) {
		cli_error("%s has %u filters (its output's last axis), --filters asks for %u", ctx->opt.layer,
		          channels, filters);
		rc = CLI_USAGE;
		goto out_free;
	}
	uint32_t grid = ctx->opt.grid > 0 ? (uint32_t)ctx->opt.grid : default_grid(filters);
	uint64_t cells = (uint64_t)grid * grid;
	if ((rc = check_grid(ctx, grid, filters)))
		goto out_free;
	if ((rc = cli_open_session(ctx, &s, &batch)) || (rc = cli_load_weights(ctx, s)))
		goto out_free;
	strata_data_config data = strata_model_data(ctx->model);
	/* A standardized model sees pixels through its training set's statistics. */
	if (data.standardize && (rc = cli_open_dataset(ctx, "train", 0, 0, NULL, &train)))
		goto out_free;
	strata_visualize_options o = {
		.size = sizeof(o),
		.layer = layer,
		.filters = filters,
		.steps = ctx->opt.steps >= 0 ? (uint32_t)ctx->opt.steps : DEFAULT_STEPS,
		.keep = cells < filters ? (uint32_t)cells : filters,
		.seed = ctx->opt.seed >= 0 ? (uint64_t)ctx->opt.seed : strata_model_training(ctx->model).seed,
		.scale = data.scale,
		.reference = train,
	};
	if (strata_visualize(s, &o, &r, &err) != STRATA_OK ||
	    strata_visualize_save_png(&r, grid, ctx->opt.output, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		rc = cli_exit_status(err.status);
		goto out_free;
	}
	report(ctx, &r, grid);
	rc = CLI_OK;
out_free:
	strata_visualize_result_free(&r);
	strata_dataset_free(train);
	strata_session_destroy(s);
	return cli_close(ctx, rc);
}
