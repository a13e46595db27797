/* `strata visualize --codebook`: a self-organizing map's prototypes as a grid of images laid out as
 * the map (rows x columns, odd rows shifted half a cell on a hexagonal map), and its U-matrix:
 * each unit's mean distance to its neighbours on the map (8 on a rectangular grid, 6 on a
 * hexagonal one), light where neighbours differ (borders between clusters), dark inside them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAP_MARGIN 2 /* black pixels between prototypes */

typedef struct map_picture {
	uint32_t rows, columns, h, w, c; /* the grid, one prototype's image */
	bool hexagonal;
	float lo, hi;                    /* values drawn black and white */
} map_picture;

/* The som layer: --layer, or the model's first som. */
static int map_layer(cli_context *ctx, size_t *layer)
{
	if (ctx->opt.layer)
		return cli_find_layer(ctx, layer);
	for (size_t i = 0; i < strata_model_layer_count(ctx->model); i++)
		if (!strcmp(strata_model_layer_type(ctx->model, i), "som")) {
			*layer = i;
			return CLI_OK;
		}
	cli_error("%s has no som layer: --codebook draws a self-organizing map", ctx->opt.model_path);
	return CLI_USAGE;
}

/* The side of a hexagonal grid's shift: half a cell on odd rows. */
static uint32_t shift_of(const map_picture *p, uint32_t r)
{
	return p->hexagonal && (r & 1) ? (p->w + MAP_MARGIN) / 2 : 0;
}

/* Cells of h x w pixels on the map's grid; `fill` writes one cell. */
static int grid_size(const map_picture *p, uint32_t *width, uint32_t *height)
{
	uint64_t wd = (uint64_t)p->columns * (p->w + MAP_MARGIN) - MAP_MARGIN + (p->hexagonal ? (p->w + MAP_MARGIN) / 2 : 0);
	uint64_t ht = (uint64_t)p->rows * (p->h + MAP_MARGIN) - MAP_MARGIN;
	if (wd > CLI_MAX_PICTURE_SIDE || ht > CLI_MAX_PICTURE_SIDE) {
		cli_error("the picture would be %llu x %llu pixels, more than %d a side", (unsigned long long)wd,
		          (unsigned long long)ht, CLI_MAX_PICTURE_SIDE);
		return CLI_USAGE;
	}
	*width = (uint32_t)wd;
	*height = (uint32_t)ht;
	return CLI_OK;
}

static uint8_t level(float v, float lo, float hi)
{
	float x = (v - lo) / (hi > lo ? hi - lo : 1.0f) * 255.0f;
	return x <= 0.0f ? 0 : x >= 255.0f ? 255 : (uint8_t)(x + 0.5f);
}

static int codebook_png(const char *path, const map_picture *p, const float *codebook)
{
	uint32_t width, height, ch = p->c == 3 ? 3 : 1;
	int rc = grid_size(p, &width, &height);
	if (rc)
		return rc;
	uint8_t *px = calloc((size_t)width * height * ch, 1);
	if (!px) {
		cli_error("out of memory");
		return CLI_FAILED;
	}
	size_t per = (size_t)p->h * p->w * p->c;
	for (uint32_t r = 0; r < p->rows; r++)
		for (uint32_t col = 0; col < p->columns; col++) {
			const float *img = codebook + ((size_t)r * p->columns + col) * per;
			uint32_t x0 = col * (p->w + MAP_MARGIN) + shift_of(p, r), y0 = r * (p->h + MAP_MARGIN);
			for (uint32_t y = 0; y < p->h; y++)
				for (uint32_t x = 0; x < p->w; x++)
					for (uint32_t k = 0; k < ch; k++)
						px[((size_t)(y0 + y) * width + x0 + x) * ch + k] =
							level(img[((size_t)y * p->w + x) * p->c + k], p->lo, p->hi);
		}
	rc = cli_write_png(path, px, width, height, ch);
	free(px);
	return rc;
}

/* U-matrix: each unit's mean Euclidean distance to its neighbours' prototypes. */
static void u_matrix(const map_picture *p, const float *codebook, size_t per, double *u)
{
	for (uint32_t r = 0; r < p->rows; r++)
		for (uint32_t c = 0; c < p->columns; c++) {
			double sum = 0.0;
			int n = 0;
			for (int dr = -1; dr <= 1; dr++)
				for (int dc = -1; dc <= 1; dc++) {
					long rr = (long)r + dr, cc = (long)c + dc;
					if ((!dr && !dc) || rr < 0 || cc < 0 || rr >= p->rows || cc >= p->columns)
						continue;
					/* Hexagonal: of the row above and below, the two cells that touch (odd rows sit
					 * half a cell right). */
					if (p->hexagonal && dr && dc == ((r & 1) ? -1 : 1))
						continue;
					const float *a = codebook + ((size_t)r * p->columns + c) * per;
					const float *b = codebook + ((size_t)rr * p->columns + (size_t)cc) * per;
					double d2 = 0.0;
					for (size_t k = 0; k < per; k++)
						d2 += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
					sum += sqrt(d2);
					n++;
				}
			u[(size_t)r * p->columns + c] = n ? sum / n : 0.0;
		}
}

static int umatrix_png(const char *path, const map_picture *p, const double *u, double *lo, double *hi)
{
	uint32_t width, height, units = p->rows * p->columns;
	int rc = grid_size(p, &width, &height);
	if (rc)
		return rc;
	*lo = *hi = u[0];
	for (uint32_t j = 1; j < units; j++) {
		*lo = u[j] < *lo ? u[j] : *lo;
		*hi = u[j] > *hi ? u[j] : *hi;
	}
	uint8_t *px = calloc((size_t)width * height, 1);
	if (!px) {
		cli_error("out of memory");
		return CLI_FAILED;
	}
	for (uint32_t r = 0; r < p->rows; r++)
		for (uint32_t c = 0; c < p->columns; c++) {
			uint8_t v = level((float)u[(size_t)r * p->columns + c], (float)*lo, (float)*hi);
			uint32_t x0 = c * (p->w + MAP_MARGIN) + shift_of(p, r), y0 = r * (p->h + MAP_MARGIN);
			for (uint32_t y = 0; y < p->h; y++)
				memset(px + (size_t)(y0 + y) * width + x0, v, p->w);
		}
	rc = cli_write_png(path, px, width, height, 1);
	free(px);
	return rc;
}

int cli_visualize_codebook(cli_context *ctx)
{
	int rc = cli_open_model(ctx);
	if (rc)
		return cli_close(ctx, rc);
	size_t layer = 0;
	strata_session *s = NULL;
	float *codebook = NULL;
	double *u = NULL;
	char path[1024], upath[1100];
	strata_error err = {0};
	map_picture p = {0};
	if (!ctx->opt.weights) {
		cli_error("--codebook needs --weights PATH: a trained map");
		return cli_close(ctx, CLI_USAGE);
	}
	if ((rc = map_layer(ctx, &layer)))
		goto out;
	if (strata_map_grid(ctx->model, layer, &p.rows, &p.columns, &p.hexagonal, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		rc = CLI_USAGE;
		goto out;
	}
	snprintf(path, sizeof(path), "%s", ctx->opt.output ? ctx->opt.output : "");
	if (!ctx->opt.output)
		snprintf(path, sizeof(path), "%s_codebook.png", strata_model_name(ctx->model));
	/* The U-matrix beside it: PATH without .png, then _umatrix.png. */
	size_t stem = strlen(path);
	if (stem > 4 && !strcmp(path + stem - 4, ".png"))
		stem -= 4;
	snprintf(upath, sizeof(upath), "%.*s_umatrix.png", (int)stem, path);
	uint32_t batch = 1;
	ctx->opt.batch = 1;
	if ((rc = cli_check_output(path)) || (rc = cli_check_output(upath)) || (rc = cli_open_runtime(ctx)) ||
	    (rc = cli_open_session(ctx, &s, &batch)) || (rc = cli_load_weights(ctx, s)))
		goto out;
	size_t index = 0, n = strata_session_weight_count(s, layer);
	const char *name = NULL;
	strata_shape shape = {0};
	for (; index < n; index++)
		if (strata_session_weight_info(s, layer, index, &name, &shape) == STRATA_OK && !strcmp(name, "codebook"))
			break;
	if (index == n || shape.rank != 2) {
		cli_error("%s: layer %s has no codebook", ctx->opt.model_path, strata_model_layer_name(ctx->model, layer));
		rc = CLI_USAGE;
		goto out;
	}
	/* A prototype is drawn as the model's input image when it has as many values. */
	strata_shape in = strata_model_input_shape(ctx->model);
	uint64_t per = (uint64_t)shape.dims[1], in_elems = 1;
	for (uint32_t d = 0; d < in.rank; d++)
		in_elems *= (uint64_t)in.dims[d];
	p.h = in.rank >= 2 ? (uint32_t)in.dims[0] : 1;
	p.w = in.rank >= 2 ? (uint32_t)in.dims[1] : (uint32_t)per;
	p.c = in.rank >= 3 ? (uint32_t)in.dims[2] : 1;
	if (in_elems != per || (p.c != 1 && p.c != 3)) {
		cli_error("%s: the prototypes (%llu values) are not the model's input images of 1 or 3 channels: "
		          "they cannot be drawn", ctx->opt.model_path, (unsigned long long)per);
		rc = CLI_USAGE;
		goto out;
	}
	size_t total = (size_t)shape.dims[0] * per;
	if (!(codebook = malloc(total * sizeof(float))) || !(u = malloc((size_t)shape.dims[0] * sizeof(double)))) {
		cli_error("out of memory");
		rc = CLI_FAILED;
		goto out;
	}
	if (strata_session_read_weight(s, layer, index, codebook, total, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		rc = cli_exit_status(err.status);
		goto out;
	}
	strata_data_config data = strata_model_data(ctx->model);
	p.lo = 0.0f;
	p.hi = 255.0f * (float)(data.scale > 0 ? data.scale : 1.0);
	double ulo, uhi;
	u_matrix(&p, codebook, per, u);
	if ((rc = codebook_png(path, &p, codebook)) || (rc = umatrix_png(upath, &p, u, &ulo, &uhi)))
		goto out;
	printf("Wrote %s: the %u x %u prototypes of %s (%s)\nWrote %s: its U-matrix, mean distance to the neighbours "
	       "%.4f (black) to %.4f (white)\n", path, p.rows, p.columns, strata_model_layer_name(ctx->model, layer),
	       p.hexagonal ? "hexagonal" : "rectangular", upath, ulo, uhi);
out:
	free(codebook);
	free(u);
	strata_session_destroy(s);
	return cli_close(ctx, rc);
}
