/* The strata command-line tool: shared option state and helpers of its subcommands. */
#ifndef STRATA_CLI_H
#define STRATA_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <strata/strata.h>

/* Exit statuses: 2 for what the user must fix in the command or the model file. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* visualize's bounds: Keras' example takes 20 steps; a grid has to leave no empty row for the
 * layer's filters and its picture no side over CLI_MAX_PICTURE_SIDE (cmd_visualize.c). */
#define CLI_MAX_STEPS 10000
#define CLI_MAX_MODELS 64 /* model files on one command line (strata serve) */
#define CLI_MAX_PICTURE_SIDE 16384

/* What the command line gave; -1 or NULL for an option left out (each option's bounds are in
 * main.c's table, so a value given is never -1, and 0 only where 0 is a valid value). */
typedef struct cli_options {
	const char *device;      /* --device */
	const char *plugin_path; /* --plugin-path */
	bool verbose;
	bool profile;
	/* subcommand arguments */
	const char *model_path;
	int64_t batch;           /* --batch, -1 unset */
	int64_t seed;            /* --seed, -1 unset */
	int64_t ids;             /* gradcheck --ids, 0 unset */
	bool random_input;       /* --random */
	int64_t epochs;          /* --epochs, -1 unset */
	int64_t limit;           /* --limit: use only the first N training samples, -1 unset */
	const char *save;        /* --save */
	const char *resume;      /* --resume */
	const char *weights;     /* --weights */
	const char *log;         /* --log: the training CSV (default: next to --save) */
	const char *input_path;  /* predict's INPUT */
	bool first_batch_only;   /* bench: stop after the first trained batch (cold-cache child) */
	bool no_cold;            /* bench: skip the cold-cache measurement */
	int64_t peak_gflops;     /* bench --peak: the device's float32 GFLOP/s, -1 unset */
	int64_t budget;          /* --budget: tune's search seconds, -1 unset */
	const char *output;      /* -o, --output: plot's picture (default: the log's name, .png) */
	int64_t width, height;   /* --width, --height: plot's picture size in pixels, -1 unset */
	const char *layer;       /* --layer: visualize's and embed's layer, by name */
	const char *vocabulary;  /* predict --vocabulary: INPUT is text */
	int64_t filters;         /* --filters: visualize tries filters 0..N-1, -1 unset (all) */
	int64_t steps;           /* --steps: visualize's gradient-ascent steps, -1 unset (20) */
	int64_t grid;            /* --grid: visualize's N x N images, -1 unset */
	const char *format;      /* --format: embed's csv | npy (default: from -o's extension) */
	bool guard;              /* --guard: guard mode (canaries checked after every launch) */
	bool oclgrind;           /* check-plugin --oclgrind */
	const char *params;      /* check-plugin --params 'k: v, ...' */
	bool no_guard;           /* check-plugin's run under Oclgrind (internal) */
	const char *tolerance;   /* gradcheck --tolerance, parsed there (a number) */
	bool augmented;          /* visualize --augmented: training images through the augmentation layers */
	int64_t count;           /* --count: visualize --augmented's images, -1 unset (8) */
	bool codebook;           /* visualize --codebook: a self-organizing map's prototypes and U-matrix */
	/* train over several ranks (src/dist/) */
	bool deterministic;
	int64_t shards, collective_timeout;
	const char *balance;
	/* serve: its model files (every positional argument, in order) with the --weights of each */
	const char *models[CLI_MAX_MODELS];
	const char *model_weights[CLI_MAX_MODELS];
	int n_models;
	const char *repository;
	const char *host;
	int64_t port, max_batch_size, max_queue_delay_us, max_queue_size, timeout_us;
	const char *preferred_batch_sizes;
	bool no_warmup;
	int64_t max_body_bytes, max_header_bytes, max_connections, client_timeout;
} cli_options;

typedef struct cli_context {
	cli_options opt;
	strata_registry *reg;
	strata_model *model;
	strata_runtime *rt;
} cli_context;

/* Values in one sample of `shape`. */
uint64_t cli_shape_elems(strata_shape shape);

/* Prints "strata: message" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Maps a library status to the tool's exit status. */
int cli_exit_status(strata_status st);
void cli_log(void *user, int level, const char *message);

/* Open what a subcommand needs; each prints its own error and returns an exit status. */
int cli_open_registry(cli_context *ctx);
int cli_open_model(cli_context *ctx);
/* The device every command uses: --device, else STRATA_DEVICE, else `model`'s device: (NULL:
 * none of them, the runtime's automatic choice). cli_open_runtime opens it for ctx->model. */
const char *cli_device_selector(const cli_context *ctx, const strata_model *model);
int cli_open_runtime(cli_context *ctx);
/* Prints --verbose cache figures and the --profile table, then frees everything. */
int cli_close(cli_context *ctx, int status);

int cmd_devices(cli_context *ctx);
int cmd_layers(cli_context *ctx);
int cmd_summary(cli_context *ctx);
int cmd_forward(cli_context *ctx);
int cmd_train(cli_context *ctx);
int cmd_eval(cli_context *ctx);
int cmd_predict(cli_context *ctx);
int cmd_bench(cli_context *ctx);
int cmd_tune(cli_context *ctx);
/* Reads ctx->opt.model_path as the training log (its one positional argument). */
int cmd_plot(cli_context *ctx);
/* Filter images of a layer (--layer, -o PNG); embed: a layer's features for a data set. */
int cmd_visualize(cli_context *ctx);
int cli_visualize_codebook(cli_context *ctx); /* visualize_map.c */
/* Writes `pixels` (height rows of width x channels bytes, 1: gray, 3: RGB) as a PNG, atomically. */
int cli_write_png(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height, uint32_t channels);
int cmd_embed(cli_context *ctx);
/* Reads ctx->opt.model_path as the plugin file. */
int cmd_check_plugin(cli_context *ctx);
/* A layer's backward pass against finite differences (--layer; strata_gradcheck). */
int cmd_gradcheck(cli_context *ctx);
int cmd_import(cli_context *ctx);
int cmd_export(cli_context *ctx);
int cmd_serve(cli_context *ctx);

/* The session of a command: batch from --batch-size or the model, seed from --seed or the model. */
int cli_open_session(cli_context *ctx, strata_session **out, uint32_t *batch);
/* The model's test set (or `which` = "train": its training set) on the runtime's device. */
int cli_open_dataset(cli_context *ctx, const char *which, uint32_t offset, uint32_t limit,
                     const strata_dataset *reference, strata_dataset **out);
/* The name of the `head`-th output with a loss (its layer's), as evaluation and training list them. */
const char *cli_loss_output_name(const strata_model *m, size_t head);
/* Whether that output's metrics list accuracy: a model of several outputs shows each output's
 * accuracy only where its metrics ask for it, as Keras does. */
bool cli_head_shows_accuracy(const strata_model *m, size_t head);
/* Evaluates on `test` and prints the figures: loss, accuracy and LRAP, or with several outputs
 * with a loss, the total loss and each output's, after "Evaluated ... (WEIGHTS)" when `weights` is
 * not NULL; CLI_OK or CLI_FAILED (said). */
int cli_print_evaluation(const strata_model *m, strata_session *s, strata_dataset *test, uint32_t batch,
                         const char *weights);

/* cli_probe.c, for visualize and embed. The index of the layer --layer names; an unknown name
 * is bad usage, the message listing the model's layers. */
int cli_find_layer(cli_context *ctx, size_t *layer);
/* Refuses, before any work, an output path whose folder is missing or not writable. */
int cli_check_output(const char *path);
/* Loads --weights, or warns that the seed's initial weights are used. */
int cli_load_weights(cli_context *ctx, strata_session *s);

/* cli_cache.c: before the first OpenCL call. A command that computes gets CLI_FAILED, after a
 * message, when Strata's cache folder cannot be written; `devices` gets a usable folder for the
 * driver's kernel cache. */
int cli_prepare_caches(const char *command, bool verbose);

#endif
