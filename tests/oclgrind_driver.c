/* Runs every kernel of cl/ and plugins/ once or more on small shapes, for tests/oclgrind.sh to
 * watch under Oclgrind: a handful of tiny models that together hold every layer type and option
 * with a kernel path of its own (conv2d valid and same, strided, 1x1; both poolings, both
 * paddings; dropout; flatten; every activation, alone and fused), every loss and every
 * optimizer variant, with and without regularizers, graph models that run every merge layer
 * and sum the gradients of values read by several layers, and a model of three inputs (bytes,
 * int32 ids, byte ids) and two outputs. For each model: a forward pass of a partial
 * batch, one training step (batch gathering, forward, loss, backward, update) and an evaluation
 * whose last batch is partial, over a data set written here as IDX files, standardized for half
 * the models. Prints the kernel profile, and exits 0 when every call succeeds; Oclgrind's own
 * reports, and that every kernel ran, are checked by the script, which runs this once per GEMM
 * engine (STRATA_GEMM) with STRATA_POOL=separate (src/tensor_pool.h).
 * Then every model file of tests/oclgrind/ (one per layer family, so a plugin's author adds a file
 * rather than editing this one), in name order, the same way, with Strata's GEMM only.
 * Usage: oclgrind_driver [DEVICE]   (a device selector; default "oclgrind") */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <strata/strata.h>

#define SAMPLES 8
#define CLASSES 3
#define MAX_BATCH 4

typedef struct case_model {
	const char *what;
	uint32_t shape[3]; /* input height, width, channels; the data set's samples */
	bool standardize;
	const char *yaml;  /* layers, loss and optimizer */
	/* Only for Strata's GEMM (STRATA_GEMM=strata): under Oclgrind, CLBlast's direct kernels take
	 * half a minute on its long K and cover nothing the other models leave out. */
	bool strata_gemm_only;
} case_model;

static const case_model models[] = {
	{"conv2d valid relu twice (col2im), maxpool2d, dropout, dense softmax; crossentropy, adadelta",
	 {6, 6, 1},
	 false,
	 "layers:\n"
	 "  - {type: conv2d, filters: 2, kernel_size: [3, 3], activation: relu}\n"
	 "  - {type: conv2d, filters: 2, kernel_size: [2, 2], activation: relu}\n"
	 "  - {type: maxpool2d}\n"
	 "  - {type: dropout, rate: 0.25}\n"
	 "  - {type: flatten}\n"
	 "  - {type: dense, units: 3, activation: softmax}\n"
	 "loss: categorical_crossentropy\n"
	 "optimizer: adadelta\n", false},
	{"odd shape and channels: conv2d same strided sigmoid without bias, averagepool2d same, "
	 "dense tanh, softmax layer; sparse crossentropy, adam amsgrad",
	 {7, 5, 2},
	 true,
	 "layers:\n"
	 "  - {type: conv2d, filters: 3, kernel_size: [3, 2], strides: [2, 1], padding: same,\n"
	 "     activation: sigmoid, use_bias: false}\n"
	 "  - {type: averagepool2d, pool_size: [2, 2], strides: [1, 1], padding: same}\n"
	 "  - {type: flatten}\n"
	 "  - {type: dense, units: 3, activation: tanh}\n"
	 "  - {type: activation, activation: softmax}\n"
	 "loss: sparse_categorical_crossentropy\n"
	 "optimizer: {type: adam, amsgrad: true}\n", false},
	{"conv2d 1x1 with l2, maxpool2d same 3x3/2, averagepool2d valid, dropout, dense with l1; "
	 "mean squared error, sgd nesterov",
	 {6, 6, 1},
	 false,
	 "layers:\n"
	 "  - {type: conv2d, filters: 2, kernel_size: [1, 1], kernel_regularizer: {l2: 0.01}}\n"
	 "  - {type: maxpool2d, pool_size: [3, 3], strides: [2, 2], padding: same}\n"
	 "  - {type: averagepool2d, pool_size: [2, 2], padding: valid}\n"
	 "  - {type: flatten}\n"
	 "  - {type: dropout, rate: 0.5}\n"
	 "  - {type: dense, units: 3, kernel_regularizer: {l1: 0.01, l2: 0.01}}\n"
	 "loss: mean_squared_error\n"
	 "optimizer: {type: sgd, learning_rate: 0.1, momentum: 0.9, nesterov: true}\n", false},
	{"dense relu, activation layers sigmoid, tanh, linear, relu, softmax; crossentropy, rmsprop centered",
	 {6, 6, 1},
	 true,
	 "layers:\n"
	 "  - {type: flatten}\n"
	 "  - {type: dense, units: 4, activation: relu}\n"
	 "  - {type: activation, activation: sigmoid}\n"
	 "  - {type: activation, activation: tanh}\n"
	 "  - {type: activation, activation: linear}\n"
	 "  - {type: activation, activation: relu}\n"
	 "  - {type: dense, units: 3, activation: linear, use_bias: false}\n"
	 "  - {type: activation, activation: softmax}\n"
	 "loss: categorical_crossentropy\n"
	 "optimizer: {type: rmsprop, momentum: 0.5, centered: true}\n", false},
	{"wide layers, so reductions and softmax rows span several work-groups",
	 {6, 6, 1},
	 false,
	 "layers:\n"
	 "  - {type: conv2d, filters: 8, kernel_size: [3, 3], padding: same, activation: relu}\n"
	 "  - {type: flatten}\n"
	 "  - {type: dense, units: 150, activation: relu}\n"
	 "  - {type: activation, activation: softmax}\n"
	 "  - {type: dense, units: 3, activation: softmax}\n"
	 "loss: categorical_crossentropy\n"
	 "optimizer: {type: adam, learning_rate: 0.01}\n", false},
	{"a larger image, so the kernel gradient's GEMM has a long K (split, then reduced, by Strata's "
	 "GEMM)",
	 {16, 32, 1},
	 false,
	 "layers:\n"
	 "  - {type: conv2d, filters: 2, kernel_size: [1, 1], activation: relu}\n"
	 "  - {type: maxpool2d}\n"
	 "  - {type: flatten}\n"
	 "  - {type: dense, units: 3, activation: softmax}\n"
	 "loss: categorical_crossentropy\n"
	 "optimizer: sgd\n",
	 true},
	/* Graph models: every merge kernel forward and backward (vectors of 16 and a tail: 4 x 5 and
	 * 3 x 5 floats), values read by several layers (the core kernel accumulate sums their
	 * gradients), an input whose gradient nobody wants (merge_pick without its write). */
	{"graph: flatten read by three dense layers; add, subtract, multiply, average, maximum, minimum, "
	 "concatenate chained; sgd",
	 {6, 6, 1},
	 false,
	 "layers:\n"
	 "  - {type: flatten, name: f}\n"
	 "  - {type: dense, units: 5, name: a}\n"
	 "  - {type: dense, units: 5, name: b, inputs: f}\n"
	 "  - {type: dense, units: 5, activation: tanh, name: c, inputs: f}\n"
	 "  - {type: add, name: s, inputs: [a, b, c]}\n"
	 "  - {type: subtract, name: d, inputs: [a, b]}\n"
	 "  - {type: multiply, name: p, inputs: [s, d, c]}\n"
	 "  - {type: average, name: v, inputs: [p, a]}\n"
	 "  - {type: maximum, name: mx, inputs: [v, b, c]}\n"
	 "  - {type: minimum, name: mn, inputs: [mx, a]}\n"
	 "  - {type: concatenate, inputs: [mn, s, d]}\n"
	 "  - {type: dense, units: 3, activation: softmax}\n"
	 "loss: categorical_crossentropy\n"
	 "optimizer: sgd\n", false},
	{"graph: maximum with the model's input (no gradient wanted for it), concatenate on the channels "
	 "and on the rows of images",
	 {4, 4, 2},
	 false,
	 "layers:\n"
	 "  - {type: conv2d, filters: 2, kernel_size: 1, name: c1}\n"
	 "  - {type: conv2d, filters: 2, kernel_size: 1, activation: relu, name: c2, inputs: input_1}\n"
	 "  - {type: maximum, name: m, inputs: [input_1, c2, c1]}\n"
	 "  - {type: concatenate, name: cat, inputs: [c1, m]}\n"
	 "  - {type: concatenate, name: cat2, inputs: [m, c1]}\n"
	 "  - {type: concatenate, axis: 1, inputs: [cat, cat2]}\n"
	 "  - {type: flatten}\n"
	 "  - {type: dense, units: 3, activation: softmax}\n"
	 "loss: categorical_crossentropy\n"
	 "optimizer: sgd\n", false},
	{"graph: merges of more inputs than one launch takes (chained launches), one value read ten times",
	 {6, 6, 1},
	 false,
	 "layers:\n"
	 "  - {type: flatten}\n"
	 "  - {type: dense, units: 4, name: a}\n"
	 "  - {type: dense, units: 4, name: b, inputs: flatten_1}\n"
	 "  - {type: multiply, name: p, inputs: [a, b, a, b, a, b, a, b, a, b]}\n"
	 "  - {type: add, name: s, inputs: [p, a, p, a, p, a, p, a, p]}\n"
	 "  - {type: concatenate, inputs: [s, p, s, p, s, p, s, p, s, a]}\n"
	 "  - {type: dense, units: 3, activation: softmax}\n"
	 "loss: categorical_crossentropy\n"
	 "optimizer: sgd\n", false},
	{"conv2d strided valid tanh, maxpool2d valid 1x1, dense softmax not folded into the loss; "
	 "mean squared error, plain sgd",
	 {6, 6, 1},
	 false,
	 "layers:\n"
	 "  - {type: conv2d, filters: 2, kernel_size: [2, 2], strides: [2, 2], activation: tanh}\n"
	 "  - {type: maxpool2d, pool_size: [1, 1]}\n"
	 "  - {type: flatten}\n"
	 "  - {type: dense, units: 3, activation: softmax}\n"
	 "loss: mean_squared_error\n"
	 "optimizer: sgd\n", false},
};

/* The last model again with each remaining optimizer in its plain form. */
static const char *const plain_optimizers[] = {"adam", "rmsprop"};

static char tmpdir[256];
static char images_path[300], labels_path[300];

static void put_be32(FILE *f, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	fwrite(b, 1, 4, f);
}

static int make_tmpdir(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/strata-oclgrind-XXXXXX", base);
	if (!mkdtemp(tmpdir)) {
		perror("oclgrind_driver: mkdtemp");
		return -1;
	}
	snprintf(images_path, sizeof(images_path), "%s/images.idx", tmpdir);
	snprintf(labels_path, sizeof(labels_path), "%s/labels.idx", tmpdir);
	return 0;
}

/* SAMPLES images of the given shape, pseudo-random bytes, and labels cycling through the classes;
 * the IDX file has the last `rank` of the three axes (rank-1 and rank-2 inputs: sequences). */
static int write_data(const uint32_t shape[3], uint32_t rank)
{
	FILE *img = fopen(images_path, "wb"), *lab = fopen(labels_path, "wb");
	if (!img || !lab) {
		perror("oclgrind_driver: writing the data set");
		if (img)
			fclose(img);
		if (lab)
			fclose(lab);
		return -1;
	}
	const uint8_t img_magic[4] = {0, 0, 0x08, (uint8_t)(1 + rank)}, lab_magic[4] = {0, 0, 0x08, 1};
	fwrite(img_magic, 1, 4, img);
	put_be32(img, SAMPLES);
	for (uint32_t d = 3 - rank; d < 3; d++)
		put_be32(img, shape[d]);
	fwrite(lab_magic, 1, 4, lab);
	put_be32(lab, SAMPLES);
	uint32_t x = 12345;
	for (int s = 0; s < SAMPLES; s++) {
		for (uint32_t p = 0; p < shape[0] * shape[1] * shape[2]; p++) {
			x = x * 1103515245u + 12345u;
			fputc((int)((x >> 16) & 0xff), img);
		}
		fputc(s % CLASSES, lab);
	}
	int bad = ferror(img) || ferror(lab);
	bad |= fclose(img) != 0;
	bad |= fclose(lab) != 0;
	if (bad)
		fprintf(stderr, "oclgrind_driver: could not write %s\n", tmpdir);
	return bad ? -1 : 0;
}

static void remove_data(void)
{
	unlink(images_path);
	unlink(labels_path);
	rmdir(tmpdir);
}

/* What a model's run leaves on the device, freed only after every model ran (see main). */
typedef struct kept {
	strata_model *model;
	strata_session *session;
	strata_dataset *data;
} kept;

static void free_kept(kept *k)
{
	strata_dataset_free(k->data);
	strata_session_destroy(k->session);
	strata_model_free(k->model);
}

/* One model: a forward pass of a partial batch, a training step, an evaluation. What it
 * allocated goes to `k`, even when it fails. */
static strata_status run_model(strata_registry *reg, strata_runtime *rt, const case_model *c,
                               const char *layers, const char *optimizer, kept *k, strata_error *err)
{
	const char *what = c->what;
	const uint32_t *shape = c->shape;
	char yaml[2048];
	int n = snprintf(yaml, sizeof(yaml), "input: {shape: [%u, %u, %u]}\n%s%s%s%s", shape[0], shape[1], shape[2],
	                 layers, optimizer ? "optimizer: " : "", optimizer ? optimizer : "", optimizer ? "\n" : "");
	if (n < 0 || (size_t)n >= sizeof(yaml)) {
		snprintf(err->message, sizeof(err->message), "the model text of '%s' is too long", what);
		return STRATA_ERR_INVALID;
	}
	printf("== %s%s%s\n", what, optimizer ? " with " : "", optimizer ? optimizer : "");
	fflush(stdout);

	size_t per_sample = (size_t)shape[0] * shape[1] * shape[2];
	float *input = malloc(3 * per_sample * sizeof(*input)), output[3 * CLASSES];
	if (!input || write_data(shape, 3)) {
		free(input);
		snprintf(err->message, sizeof(err->message), "out of memory or disk for the data of '%s'", what);
		return STRATA_ERR_IO;
	}
	strata_status st = strata_model_load_string(reg, yaml, strlen(yaml), "oclgrind.yaml", NULL, &k->model, err);
	if (st || (st = strata_session_create(rt, k->model, MAX_BATCH, 7, &k->session, err)))
		goto out_free_input;
	strata_dataset_options dopts = {
		.size = sizeof(dopts),
		.images = images_path,
		.labels = labels_path,
		.scale = 1.0 / 255.0,
		.num_classes = CLASSES,
		.standardize = c->standardize,
	};
	if ((st = strata_dataset_load(rt, &dopts, &k->data, err)))
		goto out_free_input;

	for (size_t i = 0; i < 3 * per_sample; i++)
		input[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
	strata_eval_result result;
	if ((st = strata_session_forward(k->session, input, 3, output, err)) ||
	    (st = strata_session_train_steps(k->session, k->data, MAX_BATCH, 1, err)) ||
	    (st = strata_evaluate(k->session, k->data, 3, &result, err)))
		goto out_free_input;
	printf("   loss %.4f, accuracy %.3f over %u samples\n", result.loss, result.accuracy, result.count);

out_free_input:
	free(input);
	return st;
}

/* A model file of tests/oclgrind/: one float input of rank 1 to 3 (its data set written here in
 * that shape) and an output of CLASSES classes with its loss; run as run_model runs the models
 * above. */
static strata_status run_file(strata_registry *reg, strata_runtime *rt, const char *path, kept *k, strata_error *err)
{
	printf("== %s\n", path);
	fflush(stdout);
	strata_status st = strata_model_load(reg, path, &k->model, err);
	if (st)
		return st;
	strata_shape in = strata_model_input_shape(k->model);
	if (strata_model_input_count(k->model) != 1 || in.rank < 1 || in.rank > 3) {
		snprintf(err->message, sizeof(err->message), "%s: needs one input of rank 1 to 3", path);
		return STRATA_ERR_INVALID;
	}
	uint32_t shape[3] = {1, 1, 1};
	for (uint32_t d = 0; d < in.rank; d++)
		shape[3 - in.rank + d] = (uint32_t)in.dims[d];
	size_t per_sample = (size_t)shape[0] * shape[1] * shape[2];
	float *input = malloc(3 * per_sample * sizeof(*input)), output[3 * CLASSES * 64];
	if (!input || write_data(shape, in.rank)) {
		free(input);
		snprintf(err->message, sizeof(err->message), "out of memory or disk for the data of %s", path);
		return STRATA_ERR_IO;
	}
	strata_dataset_options dopts = {
		.size = sizeof(dopts),
		.images = images_path,
		.labels = labels_path,
		.scale = 1.0 / 255.0,
		.num_classes = CLASSES,
	};
	for (size_t i = 0; i < 3 * per_sample; i++)
		input[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
	strata_eval_result result;
	strata_map_result map;
	if ((st = strata_session_create(rt, k->model, MAX_BATCH, 7, &k->session, err)) ||
	    (st = strata_dataset_load(rt, &dopts, &k->data, err)) ||
	    (st = strata_session_forward(k->session, input, 3, output, err)) ||
	    (st = strata_session_train_steps(k->session, k->data, MAX_BATCH, 1, err)))
		goto out_free_input;
	/* A model without a loss trains itself (a self-organizing map): its map figures instead. */
	if (strata_model_trains_itself(k->model)) {
		if (!(st = strata_evaluate_map(k->session, k->data, 3, &map, err)))
			printf("   quantization error %.4f, topographic error %.3f over %u samples\n",
			       map.quantization_error, map.topographic_error, map.count);
		goto out_free_input;
	}
	if ((st = strata_evaluate(k->session, k->data, 3, &result, err)))
		goto out_free_input;
	printf("   loss %.4f, accuracy %.3f over %u samples\n", result.loss, result.accuracy, result.count);
out_free_input:
	free(input);
	return st;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .yaml files of `dir`, sorted, in a NULL-terminated array (NULL when out of memory). */
static char **model_files(const char *dir)
{
	size_t n = 0, cap = 16;
	char **names = calloc(cap + 1, sizeof(*names));
	DIR *d = opendir(dir);
	if (!names || !d) {
		if (d)
			closedir(d);
		return names;
	}
	for (struct dirent *e; (e = readdir(d));) {
		size_t len = strlen(e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
			continue;
		if (n == cap) {
			char **more = realloc(names, (2 * cap + 1) * sizeof(*names));
			if (!more)
				break;
			names = more;
			cap *= 2;
		}
		size_t size = strlen(dir) + len + 2;
		if (!(names[n] = malloc(size)))
			break;
		snprintf(names[n++], size, "%s/%s", dir, e->d_name);
		names[n] = NULL;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), by_name);
	return names;
}

/* A model of three inputs and two outputs: bytes scaled into a float input, int32 ids and byte
 * ids into int32 inputs (both gathers of ids), two heads with a loss each; a training step and an
 * evaluation. Its files sit beside the other data set's. */
static strata_status run_inputs_outputs(strata_registry *reg, strata_runtime *rt, kept *k, strata_error *err)
{
	static const char yaml[] = "inputs:\n"
	                           "  - {name: image, shape: [4]}\n"
	                           "  - {name: ids, shape: [3], dtype: int32}\n"
	                           "  - {name: bytes, shape: [2], dtype: int32}\n"
	                           "layers:\n"
	                           "  - {name: f_ids, type: test_ids_to_float, inputs: ids}\n"
	                           "  - {name: f_bytes, type: test_ids_to_float, inputs: bytes}\n"
	                           "  - {name: all, type: concatenate, inputs: [image, f_ids, f_bytes]}\n"
	                           "  - {name: a, type: dense, inputs: all, units: 3, activation: softmax}\n"
	                           "  - {name: b, type: dense, inputs: all, units: 2}\n"
	                           "outputs: [a, b]\n"
	                           "loss: {a: categorical_crossentropy, b: mean_squared_error}\n"
	                           "loss_weights: [1.0, 0.5]\n"
	                           "optimizer: sgd\n";
	printf("== three inputs (float, int32 ids, byte ids), two outputs with a loss each\n");
	fflush(stdout);
	char paths[4][300];
	const char *names[4] = {"ids.idx", "bytes.idx", "labels_b.idx", "image4.idx"};
	for (int i = 0; i < 4; i++)
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", tmpdir, names[i]);
	FILE *f[4];
	for (int i = 0; i < 4; i++)
		f[i] = fopen(paths[i], "wb");
	bool bad = !f[0] || !f[1] || !f[2] || !f[3];
	if (!bad) {
		const uint8_t ints2[4] = {0, 0, 0x0C, 2}, bytes2[4] = {0, 0, 0x08, 2}, bytes1[4] = {0, 0, 0x08, 1};
		fwrite(ints2, 1, 4, f[0]);
		put_be32(f[0], SAMPLES);
		put_be32(f[0], 3);
		fwrite(bytes2, 1, 4, f[1]);
		put_be32(f[1], SAMPLES);
		put_be32(f[1], 2);
		fwrite(bytes1, 1, 4, f[2]);
		put_be32(f[2], SAMPLES);
		fwrite(bytes2, 1, 4, f[3]);
		put_be32(f[3], SAMPLES);
		put_be32(f[3], 4);
		for (uint32_t s = 0; s < SAMPLES; s++) {
			for (uint32_t j = 0; j < 3; j++)
				put_be32(f[0], s * 3 + j);
			fputc((int)(s * 7 % 5), f[1]);
			fputc((int)(s * 3 % 11), f[1]);
			fputc((int)(s % 2), f[2]);
			for (uint32_t j = 0; j < 4; j++)
				fputc((int)((s * 4 + j) * 29 % 256), f[3]);
		}
	}
	for (int i = 0; i < 4; i++)
		if (f[i] && (ferror(f[i]) | (fclose(f[i]) != 0)))
			bad = true;
	strata_status st = STRATA_ERR_IO;
	if (bad) {
		snprintf(err->message, sizeof(err->message), "could not write the data of three inputs in %s", tmpdir);
		goto out_remove;
	}
	/* The data set's labels file, of the classes the other models use. */
	const uint32_t image_shape[3] = {1, 1, 1};
	if (write_data(image_shape, 3)) {
		snprintf(err->message, sizeof(err->message), "could not write labels in %s", tmpdir);
		goto out_remove;
	}
	const char *more_images[] = {paths[0], paths[1]}, *more_labels[] = {paths[2]};
	const uint32_t more_classes[] = {2};
	strata_dataset_options dopts = {
		.size = sizeof(dopts),
		.images = paths[3],
		.labels = labels_path,
		.scale = 1.0 / 255.0,
		.num_classes = CLASSES,
		.more_images = more_images,
		.n_more_images = 2,
		.more_labels = more_labels,
		.more_num_classes = more_classes,
		.n_more_labels = 1,
	};
	strata_eval_result total, outputs[2];
	if ((st = strata_model_load_string(reg, yaml, strlen(yaml), "oclgrind_inputs.yaml", NULL, &k->model, err)) ||
	    (st = strata_session_create(rt, k->model, MAX_BATCH, 7, &k->session, err)) ||
	    (st = strata_dataset_load(rt, &dopts, &k->data, err)) ||
	    (st = strata_session_train_steps(k->session, k->data, MAX_BATCH, 1, err)) ||
	    (st = strata_evaluate_outputs(k->session, k->data, 3, &total, outputs, 2, err)))
		goto out_remove;
	printf("   loss %.4f (a %.4f, b %.4f) over %u samples\n", total.loss, outputs[0].loss, outputs[1].loss,
	       total.count);
out_remove:
	for (int i = 0; i < 4; i++)
		unlink(paths[i]);
	return st;
}

int main(int argc, char **argv)
{
	const char *device = argc > 1 ? argv[1] : "oclgrind";
	strata_error err = {0};
	strata_registry *reg = NULL;
	strata_runtime *rt = NULL;
	int status = EXIT_FAILURE;

	strata_registry_options ropts = {
		.size = sizeof(ropts),
		/* Strata's plugins and the tests' int32 layer (tests/plugins/ids), for the ids gathers. */
		.plugin_path = STRATA_BUILD_PLUGIN_DIR ":" STRATA_TEST_IDS_PLUGIN_DIR,
		.no_default_paths = true,
	};
	if (strata_registry_open(&ropts, &reg, &err)) {
		fprintf(stderr, "oclgrind_driver: %s\n", err.message);
		return EXIT_FAILURE;
	}
	/* No disk cache: a binary built by another driver (PoCL) must never be loaded here, and
	 * Oclgrind should see every program compiled from source. */
	strata_runtime_options opts = {.size = sizeof(opts), .device = device, .no_disk_cache = true,
	                               .profile = true};
	if (strata_runtime_create(reg, &opts, &rt, &err)) {
		fprintf(stderr, "oclgrind_driver: %s\n", err.message);
		goto out_close;
	}
	printf("device: %s\n", strata_runtime_device(rt)->name);
	if (make_tmpdir())
		goto out_destroy;

	/* Every model's buffers stay until the end: Oclgrind 21.10 gives a released buffer's number to
	 * the next buffer created, and --uninitialized keeps what it knew of the old one (its size,
	 * and which bytes were written), so a later model's buffers would look written, or end
	 * early, where they do not. */
	size_t n_models = sizeof(models) / sizeof(models[0]), n_kept = 0, n_files = 0;
	const char *engine = getenv("STRATA_GEMM");
	bool clblast = engine && strcmp(engine, "clblast") == 0;
	/* The model files run with Strata's GEMM only: they add layers, not GEMM shapes worth
	 * CLBlast's slow pass under Oclgrind. */
	char **files = clblast ? calloc(1, sizeof(char *)) : model_files(STRATA_OCLGRIND_MODELS_DIR);
	while (files && files[n_files])
		n_files++;
	kept *runs = calloc(n_models + sizeof(plain_optimizers) / sizeof(plain_optimizers[0]) + 1 + n_files,
	                    sizeof(*runs));
	if (!files || !runs) {
		fprintf(stderr, "oclgrind_driver: out of memory\n");
		goto out_free_files;
	}
	for (size_t i = 0; i < n_models; i++) {
		if (models[i].strata_gemm_only && clblast)
			continue;
		if (run_model(reg, rt, &models[i], models[i].yaml, NULL, &runs[n_kept++], &err))
			goto out_fail;
	}
	const case_model *last = &models[n_models - 1];
	const char *layers_only = last->yaml;
	char layers[1024];
	/* The last model without its optimizer line, so each plain optimizer can follow. */
	const char *opt = strstr(layers_only, "optimizer:");
	snprintf(layers, sizeof(layers), "%.*s", (int)(opt - layers_only), layers_only);
	for (size_t i = 0; i < sizeof(plain_optimizers) / sizeof(plain_optimizers[0]); i++) {
		if (run_model(reg, rt, last, layers, plain_optimizers[i], &runs[n_kept++], &err))
			goto out_fail;
	}
	if (run_inputs_outputs(reg, rt, &runs[n_kept++], &err))
		goto out_fail;
	for (size_t i = 0; i < n_files; i++)
		if (run_file(reg, rt, files[i], &runs[n_kept++], &err))
			goto out_fail;
	/* The kernels that ran, which tests/oclgrind.sh compares with those the sources define. */
	if (strata_runtime_print_profile(rt, stdout, &err))
		goto out_fail;
	printf("every model ran\n");
	status = EXIT_SUCCESS;
	goto out_remove;

out_fail:
	fprintf(stderr, "oclgrind_driver: %s\n", err.message);
out_remove:
	while (n_kept > 0)
		free_kept(&runs[--n_kept]);
	remove_data();
out_free_files:
	for (size_t i = 0; files && i < n_files; i++)
		free(files[i]);
	free(files);
	free(runs);
out_destroy:
	strata_runtime_destroy(rt);
out_close:
	strata_registry_close(reg);
	return status;
}
