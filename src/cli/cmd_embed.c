/* `strata embed`: one layer's activations for every sample of a data set, a row each with its
 * label, as CSV, and with npy as NumPy .npy files too: the features a dimensionality reduction
 * (t-SNE, PCA) starts from.
 * DATA is the model's test set (default, or `test`), its training set (`train`), or an IDX file
 * of images (unlabeled: label -1 in the CSV, no labels file beside a .npy). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int choose_format(const cli_context *ctx, strata_embed_format *format)
{
	const char *f = ctx->opt.format;
	if (!f) {
		size_t n = strlen(ctx->opt.output);
		bool npy = n >= 4 && strcmp(ctx->opt.output + n - 4, ".npy") == 0;
		*format = npy ? STRATA_EMBED_NPY : STRATA_EMBED_CSV;
		return CLI_OK;
	}
	if (strcmp(f, "csv") == 0 || strcmp(f, "npy") == 0) {
		*format = f[0] == 'n' ? STRATA_EMBED_NPY : STRATA_EMBED_CSV;
		return CLI_OK;
	}
	cli_error("--format: '%s' is neither csv nor npy", f);
	return CLI_USAGE;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* npy adds NumPy files to the CSV, never replaces it: -o F.npy (or -o F.csv --format npy) writes
 * F.npy, F.labels.npy and F.csv; -o F with neither extension writes F (the .npy) and F.csv.
 * `*owned` gets what to free. */
static int npy_paths(const char *output, const char **npy, const char **csv, char **owned)
{
	size_t n = strlen(output);
	bool csv_given = ends_with(output, ".csv");
	size_t stem = csv_given || ends_with(output, ".npy") ? n - 4 : n;
	*owned = malloc(stem + sizeof(".npy"));
	if (!*owned) {
		cli_error("out of memory");
		return CLI_FAILED;
	}
	memcpy(*owned, output, stem);
	memcpy(*owned + stem, csv_given ? ".npy" : ".csv", sizeof(".npy"));
	*npy = csv_given ? *owned : output;
	*csv = csv_given ? output : *owned;
	return CLI_OK;
}

/* An IDX file of unsigned-byte samples shaped like the model's input. */
static int read_idx(cli_context *ctx, strata_idx **out)
{
	strata_error err = {0};
	const char *path = ctx->opt.input_path;
	if (strata_idx_load(path, out, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		return err.status == STRATA_ERR_PARSE || err.status == STRATA_ERR_INVALID ? CLI_USAGE : CLI_FAILED;
	}
	strata_shape input = strata_model_input_shape(ctx->model);
	if (strata_idx_check_samples(*out, path, &input, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		return CLI_USAGE;
	}
	return CLI_OK;
}

int cmd_embed(cli_context *ctx)
{
	strata_embed_format format;
	if (!ctx->opt.layer || !ctx->opt.output) {
		cli_error("embed needs --layer NAME and -o PATH (.csv or .npy)");
		return CLI_USAGE;
	}
	size_t layer = 0;
	const char *npy = NULL, *csv = ctx->opt.output;
	char *owned = NULL;
	int rc = choose_format(ctx, &format);
	if (!rc && format == STRATA_EMBED_NPY)
		rc = npy_paths(ctx->opt.output, &npy, &csv, &owned);
	if (rc || (rc = cli_open_model(ctx)) || (rc = cli_find_layer(ctx, &layer)) || (rc = cli_check_output(csv)) ||
	    (npy && (rc = cli_check_output(npy))) || (rc = cli_open_runtime(ctx))) {
		free(owned);
		return cli_close(ctx, rc);
	}
	const char *which = ctx->opt.input_path ? ctx->opt.input_path : "test";
	bool named_set = strcmp(which, "test") == 0 || strcmp(which, "train") == 0;
	strata_session *s = NULL;
	strata_dataset *train = NULL, *set = NULL;
	strata_idx *idx = NULL;
	strata_error err = {0};
	uint32_t batch = 0;
	strata_data_config data = strata_model_data(ctx->model);
	if ((rc = cli_open_session(ctx, &s, &batch)) || (rc = cli_load_weights(ctx, s)))
		goto out_free;
	/* Standardization statistics come from the training set, as in training. */
	if ((data.standardize || strcmp(which, "train") == 0) &&
	    (rc = cli_open_dataset(ctx, "train", 0, 0, NULL, &train)))
		goto out_free;
	if (strcmp(which, "test") == 0 && (rc = cli_open_dataset(ctx, "test", 0, 0, train, &set)))
		goto out_free;
	if (!named_set && (rc = read_idx(ctx, &idx)))
		goto out_free;
	strata_embed_options o = {
		.size = sizeof(o),
		.layer = layer,
		.batch_size = batch,
		.format = format,
		.path = npy ? npy : csv,
		.csv_path = npy ? csv : NULL,
		.data = strcmp(which, "train") == 0 ? train : set,
		.pixels = idx ? idx->data : NULL,
		.count = idx ? idx->dims[0] : 0,
		.scale = data.scale,
		.reference = data.standardize ? train : NULL,
	};
	if (strata_embed(s, &o, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		rc = cli_exit_status(err.status);
		goto out_free;
	}
	uint32_t count = o.data ? strata_dataset_count(o.data) : o.count;
	uint64_t features = cli_shape_elems(strata_model_output_shape(ctx->model, layer));
	printf("%s of %s: %u samples x %llu features -> %s (%s)", ctx->opt.layer, strata_model_name(ctx->model), count,
	       (unsigned long long)features, csv, o.data ? "csv" : "csv, unlabeled: label -1");
	if (npy)
		printf(" and %s (%s)", npy, o.data ? "npy, labels beside it in .labels.npy" : "npy, unlabeled");
	printf("\n");
	rc = CLI_OK;
out_free:
	free(owned);
	strata_idx_free(idx);
	strata_dataset_free(set);
	strata_dataset_free(train);
	strata_session_destroy(s);
	return cli_close(ctx, rc);
}
