/* `strata visualize`: the input each filter of a layer responds to most, found by gradient ascent
 * from gray noise (Keras' example conv_filter_visualization), as a grid of images in a PNG. */
#include <stdio.h>

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

int cmd_visualize(cli_context *ctx)
{
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
