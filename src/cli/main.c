/* strata: run, inspect and check deep-learning models on any OpenCL device.
 *
 * Each command declares what it takes: its positional arguments and, in the option table, the
 * options it reads. `strata COMMAND --help` prints that command's usage and options only, an
 * option a command does not take is refused naming the command, and a value the user typed is
 * used or refused, never ignored (no option has a value that means "not given"). */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "plot_draw.h"

enum command_id { DEVICES, LAYERS, SUMMARY, FORWARD, TRAIN, EVAL, PREDICT, BENCH, TUNE, PLOT, VISUALIZE, EMBED,
	CHECK_PLUGIN,
	GRADCHECK, IMPORT, EXPORT, SERVE };

typedef struct command {
	const char *name;
	int (*run)(cli_context *);
	int min_args, max_args; /* positional arguments */
	const char *args;       /* their names, for the usage line */
	const char *summary;    /* one line for `strata --help` */
	const char *about;      /* the paragraph of `strata COMMAND --help` */
} command;

static const command commands[] = {
	[DEVICES] = {"devices", cmd_devices, 0, 0, "", "list OpenCL platforms and devices",
	             "Lists every OpenCL platform and device, and which one the device selector (--device, else\n"
	             "STRATA_DEVICE, else auto) chooses."},
	[LAYERS] = {"layers", cmd_layers, 0, 0, "", "list the layer types the plugins provide, with their parameters",
	            "Lists the layer types the plugins provide, the plugin of each, and their parameters with\n"
	            "types and defaults."},
	[SUMMARY] = {"summary", cmd_summary, 1, 1, "MODEL.yaml",
	             "print the model's layers, output shapes and parameter counts",
	             "Prints the model's Keras-style summary: layers, output shapes, parameter counts."},
	[FORWARD] = {"forward", cmd_forward, 1, 1, "MODEL.yaml", "print the summary, then run one batch through the network",
	             "Prints the summary, then runs one batch of test images (or seeded random inputs with\n"
	             "--random) through the network with freshly initialized weights."},
	[TRAIN] = {"train", cmd_train, 1, 1, "MODEL.yaml", "train on the model's data; test figures at the end",
	           "Trains on the model's data: a progress line per epoch, validation figures at each epoch's\n"
	           "end, test loss, accuracy and LRAP at the end. Ctrl-C saves a checkpoint where the run is.\n"
	           "Under mpirun (mpirun -np N strata train ...) the N ranks train one model together: each\n"
	           "computes a slice of every batch on its device (--device gpu:{local_rank} gives each its\n"
	           "own), their gradients are summed, and rank 0 alone prints, logs and saves."},
	[EVAL] = {"eval", cmd_eval, 1, 1, "MODEL.yaml", "test loss, accuracy and label ranking average precision",
	          "Evaluates weights on the model's test set: loss, accuracy and label ranking average\n"
	          "precision."},
	[PREDICT] = {"predict", cmd_predict, 2, 2, "MODEL.yaml INPUT",
	             "class and probabilities of each image of an IDX, PNG or PGM file",
	             "Prints the class and probabilities of every image of INPUT: an IDX file of images or of\n"
	             "int32 ids (plain or gzip), one PNG or PGM picture of the model's input size, or with\n"
	             "--vocabulary one text document."},
	[BENCH] = {"bench", cmd_bench, 1, 1, "MODEL.yaml",
	           "training and inference images/s and GFLOP/s, memory, time to the first batch",
	           "Measures training and inference images/s (median of timed windows after warm-up), the\n"
	           "GFLOP/s they achieve (the GEMMs' arithmetic per image over the step's whole time; with\n"
	           "--peak, as a fraction of the device's peak), peak host memory and the time to the first\n"
	           "trained batch with a warm and a cold kernel cache; --profile adds per-layer forward,\n"
	           "backward and update time, with the GEMM kernels' own GFLOP/s and GB/s."},
	[TUNE] = {"tune", cmd_tune, 1, 1, "MODEL.yaml", "search and store this device's fastest GEMMs and kernel tunables",
	          "Measures, for this device and the model's training shapes: CLBlast's GEMM parameters, the\n"
	          "faster GEMM engine per shape, and the launch-time tunables of Strata's kernels. Every\n"
	          "candidate is checked before it may win; later runs on this device use the winners."},
	[PLOT] = {"plot", cmd_plot, 1, 1, "LOG.csv", "training curves of a `train` log (loss | accuracy) as a PNG",
	          "Draws the loss and accuracy curves of a training log written by `strata train`, training\n"
	          "and validation against the epoch, as a PNG. Needs no device."},
	[VISUALIZE] = {"visualize", cmd_visualize, 1, 1, "MODEL.yaml",
	               "the input each filter of a layer responds to most, as a grid of images",
	               "Finds the input each filter of layer --layer responds to most (gradient ascent from grey\n"
	               "noise, as Keras' conv_filter_visualization) and writes the strongest as an N x N grid\n"
	               "of images to the PNG -o names. With --augmented: the model's first training images, each\n"
	               "above itself as the augmentation layers make it while training, to check them by eye.\n"
	               "With --codebook: a trained self-organizing map's prototypes as a grid laid out as the map,\n"
	               "and its U-matrix (PATH_umatrix.png)."},
	[EMBED] = {"embed", cmd_embed, 1, 2, "MODEL.yaml [DATA]", "a layer's activations for every sample, as CSV or .npy",
	           "Writes layer --layer's activations for every sample of DATA (the test set when left out;\n"
	           "`train`: the training set; or an IDX images file), one row per sample with its label."},
	[CHECK_PLUGIN] = {"check-plugin", cmd_check_plugin, 1, 1, "PLUGIN.so",
	                  "compile a plugin's programs, run its layers under the guard (or Oclgrind)",
	                  "Loads the plugin alone, compiles every OpenCL program it registers (errors point at the\n"
	                  "program's name and line), then builds each layer type it declares on a small input and\n"
	                  "runs forward and backward on a small batch under the guard, which fails a launch that\n"
	                  "writes out of its tensors' bounds. One line per program and layer type; exit 0 when all\n"
	                  "pass, 1 when any fails. --oclgrind runs the same check under Oclgrind instead."},
	[GRADCHECK] = {"gradcheck", cmd_gradcheck, 1, 1, "MODEL.yaml",
	               "a layer's backward pass against finite differences, on random inputs",
	               "Checks layer --layer's backward pass: the gradient of every input and weight of the\n"
	               "layer against central finite differences of L = sum(r * y), r random, on --inputs random\n"
	               "samples of its input shapes and the seed's (or --weights') weights, the layer run alone,\n"
	               "in training and in inference mode. Prints each gradient's worst relative error and where;\n"
	               "exit 0 when all are within --tolerance, 1 when one is not (or a value is never written)."},
	[IMPORT] = {"import", cmd_import, 1, 1, "MODEL.onnx", "turn an ONNX model into a model file and its weights",
	            "Reads an ONNX model (opsets 6 to 17) and writes a Strata model file (-o NAME.yaml: its\n"
	            "graph as Strata's layers, channels-last, each layer's ONNX node as its `source`) and its\n"
	            "weights (NAME.stw beside it, or --weights), which predict, eval, summary and train take\n"
	            "as they are. A graph with operators Strata has no layer for writes nothing and exits 2,\n"
	            "listing every such node (name, op type, opset, why). No device is used."},
	[EXPORT] = {"export", cmd_export, 1, 1, "MODEL.yaml", "write a model and its weights as an ONNX file",
	            "Writes the model with --weights (default: the seed's initial weights) as ONNX (opset 17,\n"
	            "-o MODEL.onnx): images channels-first (N, C, H, W) as ONNX models take them, every other\n"
	            "input and output in Strata's order. A model with layers ONNX cannot express writes\n"
	            "nothing and exits 2, listing every such layer."},
	[SERVE] = {"serve", cmd_serve, 0, CLI_MAX_MODELS, "[MODEL.yaml [--weights W.stw]]...",
	           "serve models over HTTP (KServe v2 / Triton's protocol)",
	           "Serves each model file (with the --weights after it), and each folder NAME of --repository\n"
	           "(NAME/model.yaml, with NAME/model.stw when present), on the device over HTTP with the Open\n"
	           "Inference Protocol (KServe v2, Triton's): health, metadata, inference in JSON or binary\n"
	           "tensors, weight reloads, Prometheus metrics at /metrics. Requests are batched dynamically\n"
	           "as each model file's serving: section says, the options below overriding it for every\n"
	           "model. SIGTERM or Ctrl-C stops accepting, answers what is queued and exits 0; SIGHUP\n"
	           "reloads the weights."},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

#define BIT(c) (1u << (c))
#define ALL_COMMANDS ((1u << N_COMMANDS) - 1)
#define COMPUTING \
	(BIT(FORWARD) | BIT(TRAIN) | BIT(EVAL) | BIT(PREDICT) | BIT(BENCH) | BIT(TUNE) | BIT(VISUALIZE) | BIT(EMBED))
#define SEEDED (BIT(FORWARD) | BIT(TRAIN) | BIT(BENCH) | BIT(TUNE) | BIT(VISUALIZE) | BIT(EMBED))

/* OPT_ARG_TEXT: a value of the positional argument before it (serve's MODEL.yaml --weights W),
 * stored in a const char *[CLI_MAX_MODELS] at `offset`, indexed by that argument. */
typedef enum { OPT_FLAG, OPT_TEXT, OPT_COUNT, OPT_ARG_TEXT } option_kind;

/* One row per option and meaning: an option whose help differs between commands (-o) has a row
 * per meaning. A row with no help is internal (bench's cold-cache child) and not listed. */
typedef struct option {
	const char *name, *alias;
	const char *arg; /* the value's name in the help; NULL for a flag */
	option_kind kind;
	size_t offset;   /* of the bool, const char * or int64_t in cli_options */
	int64_t min, max;
	unsigned commands;
	const char *help;
} option;

#define FLAG(n, a, field, cmds, h) {n, a, NULL, OPT_FLAG, offsetof(cli_options, field), 0, 0, cmds, h}
#define TEXT(n, a, v, field, cmds, h) {n, a, v, OPT_TEXT, offsetof(cli_options, field), 0, 0, cmds, h}
#define COUNT(n, a, v, field, lo, hi, cmds, h) {n, a, v, OPT_COUNT, offsetof(cli_options, field), lo, hi, cmds, h}
#define ARG_TEXT(n, v, field, cmds, h) {n, NULL, v, OPT_ARG_TEXT, offsetof(cli_options, field), 0, 0, cmds, h}

#define MAX_BATCH UINT32_MAX /* the session refuses what the device cannot hold, naming the batch that fits */
#define MAX_EPOCHS 1000000
#define MAX_BUDGET (7 * 24 * 3600)

static const option options[] = {
	TEXT("--device", NULL, "SEL", device, BIT(DEVICES) | COMPUTING,
	     "auto, cpu, gpu, gpu:N, or part of a device or platform name\n"
	     "(default: STRATA_DEVICE, then the model's `device:`, then auto)"),
	TEXT("--plugin-path", NULL, "DIRS", plugin_path, BIT(LAYERS) | BIT(SUMMARY) | COMPUTING,
	     "extra ':'-separated plugin folders (after STRATA_PLUGIN_PATH)"),
	COUNT("--batch-size", "--batch", "N", batch, 1, MAX_BATCH, BIT(TRAIN),
	      "samples per training step (default: the model's batch_size)"),
	COUNT("--batch-size", "--batch", "N", batch, 1, MAX_BATCH, COMPUTING & ~BIT(TRAIN),
	      "samples per batch (default: the model's batch_size)"),
	COUNT("--epochs", NULL, "N", epochs, 1, MAX_EPOCHS, BIT(TRAIN),
	      "train until N epochs are complete (default: the model's epochs)"),
	TEXT("--save", NULL, "PATH", save, BIT(TRAIN), "write a checkpoint there after every epoch"),
	TEXT("--resume", NULL, "PATH", resume, BIT(TRAIN), "continue training from a checkpoint"),
	TEXT("--log", NULL, "PATH", log, BIT(TRAIN), "training log as CSV (default: next to --save, W.csv)"),
	COUNT("--limit", NULL, "N", limit, 1, UINT32_MAX, BIT(TRAIN), "train on the first N training samples only"),
	FLAG("--deterministic", NULL, deterministic, BIT(TRAIN),
	     "cut each batch into shards summed in a fixed order: the same weights\n"
	     "bit for bit on any number of ranks (mpirun -np N), one included"),
	COUNT("--shards", NULL, "K", shards, 1, 65536, BIT(TRAIN),
	      "--deterministic's shards per batch, a multiple of the ranks\n(default 4, or the ranks where they do not divide 4)"),
	TEXT("--balance", NULL, "even|auto", balance, BIT(TRAIN),
	     "under mpirun: slices of each batch even (default) or in proportion\nto each rank's measured speed"),
	COUNT("--collective-timeout", NULL, "SECONDS", collective_timeout, 1, 86400, BIT(TRAIN),
	      "under mpirun: a rank waiting longer for the others ends the job (default 60)"),
	COUNT("--seed", NULL, "N", seed, 0, INT64_MAX, BIT(TRAIN),
	      "seed of the initial weights, sample order and dropout (default: the model's)"),
	COUNT("--seed", NULL, "N", seed, 0, INT64_MAX, SEEDED & ~BIT(TRAIN),
	      "seed of the initial weights and random inputs (default: the model's)"),
	TEXT("--weights", NULL, "PATH", weights, BIT(EVAL) | BIT(PREDICT), "the weights file (.stw) to use; required"),
	TEXT("--vocabulary", NULL, "PATH", vocabulary, BIT(PREDICT),
	     "INPUT is a text document: its ids through this vocabulary\n(scripts/text_to_ids.py's), for a model of int32 ids"),
	TEXT("--weights", NULL, "PATH", weights, BIT(VISUALIZE) | BIT(EMBED),
	     "the weights file (.stw) to use (default: the seed's initial weights)"),
	FLAG("--random", NULL, random_input, BIT(FORWARD), "forward seeded random inputs instead of test images"),
	COUNT("--budget", NULL, "SECONDS", budget, 1, MAX_BUDGET, BIT(TUNE), "the search's time (default 240)"),
	FLAG("--no-cold", NULL, no_cold, BIT(BENCH), "skip the cold-cache measurement"),
	COUNT("--peak", NULL, "GFLOPS", peak_gflops, 1, 1000000, BIT(BENCH),
	      "the device's float32 peak (bench/peak.sh measures a CPU's): speeds also as a fraction of it"),
	FLAG("--first-batch-only", NULL, first_batch_only, BIT(BENCH), NULL),
	TEXT("--output", "-o", "PATH", output, BIT(PLOT), "the picture (default: the log's name with .png)"),
	COUNT("--width", NULL, "N", width, PLOT_MIN_WIDTH, PLOT_MAX_SIDE, BIT(PLOT), "picture width in pixels (default 1000)"),
	COUNT("--height", NULL, "N", height, PLOT_MIN_HEIGHT, PLOT_MAX_SIDE, BIT(PLOT),
	      "picture height in pixels (default 400)"),
	TEXT("--layer", NULL, "NAME", layer, BIT(PREDICT) | BIT(VISUALIZE) | BIT(EMBED),
	     "the layer, named as `strata summary` shows (predict: default the model's first output)"),
	TEXT("--output", "-o", "PATH", output, BIT(VISUALIZE),
	     "the PNG to write; required (--augmented: default MODEL_augmented.png)"),
	COUNT("--filters", NULL, "N", filters, 1, UINT32_MAX, BIT(VISUALIZE),
	      "try filters 0..N-1 of the layer (default: all; at most the layer's)"),
	COUNT("--steps", NULL, "N", steps, 1, CLI_MAX_STEPS, BIT(VISUALIZE), "gradient-ascent steps (default 20)"),
	COUNT("--grid", NULL, "N", grid, 1, UINT32_MAX, BIT(VISUALIZE),
	      "N x N images (default: up to 8 x 8; a grid that leaves a\nwhole row empty is refused)"),
	FLAG("--augmented", NULL, augmented, BIT(VISUALIZE),
	     "instead: the first training images as the network sees them after\n"
	     "its augmentation layers (--layer, default the last), training mode,\n"
	     "with the seed and the weights' step, each below its original"),
	COUNT("--count", NULL, "N", count, 1, 64, BIT(VISUALIZE), "--augmented: how many images (default 8)"),
	FLAG("--codebook", NULL, codebook, BIT(VISUALIZE),
	     "instead: a som layer's prototypes (--layer, default the first som;\n"
	     "--weights required) to -o (default MODEL_codebook.png) and its\n"
	     "U-matrix beside it (_umatrix.png)"),
	TEXT("--output", "-o", "PATH", output, BIT(EMBED), "the CSV to write; a .npy path writes NumPy arrays too"),
	TEXT("--format", NULL, "csv|npy", format, BIT(EMBED), "the output's form (default: from -o's extension)"),
	FLAG("--profile", NULL, profile, COMPUTING, "time every kernel and print a per-layer table at exit"),
	FLAG("--guard", NULL, guard, COMPUTING,
	     "guard mode (also STRATA_GUARD=1): canaries around every tensor, checked after\n"
	     "every launch; a write out of bounds fails naming kernel, layer and tensor (slow)"),
	TEXT("--device", NULL, "SEL", device, BIT(CHECK_PLUGIN), "the device to check on (default: STRATA_DEVICE, then auto)"),
	FLAG("--oclgrind", NULL, oclgrind, BIT(CHECK_PLUGIN),
	     "run the check under Oclgrind (out-of-bounds and uninitialized\naccesses, data races, API misuse) instead"),
	TEXT("--params", NULL, "'K: V, ...'", params, BIT(CHECK_PLUGIN),
	     "parameters for the layers that declare them (required ones\nwithout a default are otherwise guessed)"),
	FLAG("--no-guard", NULL, no_guard, BIT(CHECK_PLUGIN), NULL),
	TEXT("--layer", NULL, "NAME", layer, BIT(GRADCHECK), "the layer to check, named as `strata summary` shows; required"),
	COUNT("--inputs", NULL, "N", batch, 1, 4096, BIT(GRADCHECK), "samples of random inputs (default 2)"),
	COUNT("--ids", NULL, "N", ids, 1, INT32_MAX, BIT(GRADCHECK),
	      "int32 inputs hold ids drawn from 0 to N - 1 (default 1: all 0)"),
	COUNT("--seed", NULL, "N", seed, 0, INT64_MAX, BIT(GRADCHECK),
	      "seed of the initial weights, the inputs and r (default: the model's)"),
	TEXT("--tolerance", NULL, "T", tolerance, BIT(GRADCHECK),
	     "the largest relative error that passes, above 0 and below 1\n(default 0.01)"),
	TEXT("--weights", NULL, "PATH", weights, BIT(GRADCHECK), "the weights file (.stw) to use (default: the seed's initial weights)"),
	TEXT("--device", NULL, "SEL", device, BIT(GRADCHECK),
	     "auto, cpu, gpu, gpu:N, or part of a device or platform name\n"
	     "(default: STRATA_DEVICE, then the model's `device:`, then auto)"),
	TEXT("--plugin-path", NULL, "DIRS", plugin_path, BIT(GRADCHECK),
	     "extra ':'-separated plugin folders (after STRATA_PLUGIN_PATH)"),
	TEXT("--output", "-o", "NAME.yaml", output, BIT(IMPORT), "the model file to write; required"),
	TEXT("--output", "-o", "MODEL.onnx", output, BIT(EXPORT), "the ONNX file to write; required"),
	TEXT("--weights", NULL, "PATH", weights, BIT(EXPORT), "the weights file (.stw) (default: the seed's initial weights)"),
	COUNT("--seed", NULL, "N", seed, 0, INT64_MAX, BIT(EXPORT), "seed of the initial weights without --weights (default: the model's)"),
	TEXT("--device", NULL, "SEL", device, BIT(EXPORT), "the device that makes the initial weights without --weights"),
	TEXT("--weights", NULL, "PATH", weights, BIT(IMPORT), "the weights file to write (default: -o's name with .stw)"),
	TEXT("--plugin-path", NULL, "DIRS", plugin_path, BIT(IMPORT) | BIT(EXPORT),
	     "extra ':'-separated plugin folders (after STRATA_PLUGIN_PATH)"),
	ARG_TEXT("--weights", "PATH", model_weights, BIT(SERVE),
	         "the weights file (.stw) of the model file before it\n(default: the seed's initial weights)"),
	TEXT("--repository", NULL, "DIR", repository, BIT(SERVE),
	     "serve every model folder in DIR: NAME/model.yaml, NAME/model.stw"),
	TEXT("--device", NULL, "SEL", device, BIT(SERVE),
	     "auto, cpu, gpu, gpu:N, or part of a device or platform name\n"
	     "(default: STRATA_DEVICE, then the model's `device:`, then auto)"),
	TEXT("--plugin-path", NULL, "DIRS", plugin_path, BIT(SERVE), "extra ':'-separated plugin folders (after STRATA_PLUGIN_PATH)"),
	TEXT("--host", NULL, "ADDR", host, BIT(SERVE), "the address to listen on (default 127.0.0.1)"),
	COUNT("--port", NULL, "N", port, 0, 65535, BIT(SERVE), "the port (default 8000; 0: any free one, printed)"),
	COUNT("--max-batch-size", NULL, "N", max_batch_size, 1, 65536, BIT(SERVE),
	      "samples per batch the device computes (default 64; 1: no batching)"),
	COUNT("--max-queue-delay-us", NULL, "N", max_queue_delay_us, 0, 60000000, BIT(SERVE),
	      "the longest a request waits for others to batch with (default 0,\nTriton's: a batch holds what queued while the last one computed)"),
	TEXT("--preferred-batch-sizes", NULL, "N,N,...", preferred_batch_sizes, BIT(SERVE),
	     "batch sizes formed at once when that many samples wait"),
	COUNT("--max-queue-size", NULL, "N", max_queue_size, 1, 1000000, BIT(SERVE),
	      "queued requests past which new ones get 503 (default 1024)"),
	COUNT("--timeout-us", NULL, "N", timeout_us, 1, INT64_MAX, BIT(SERVE),
	      "a request still queued after this gets 504 (default: none)"),
	FLAG("--no-warmup", NULL, no_warmup, BIT(SERVE),
	     "serve at once, without first computing a batch of every size\n(a driver that compiles per size then stalls those requests)"),
	COUNT("--max-body-bytes", NULL, "N", max_body_bytes, 1024, INT64_MAX, BIT(SERVE),
	      "larger request bodies get 413 (default 67108864)"),
	COUNT("--max-header-bytes", NULL, "N", max_header_bytes, 1024, 1 << 24, BIT(SERVE),
	      "room for a request's line and headers (default 16384)"),
	COUNT("--max-connections", NULL, "N", max_connections, 1, 65536, BIT(SERVE),
	      "connections past this are closed at once (default 256)"),
	COUNT("--client-timeout", NULL, "SECONDS", client_timeout, 1, 3600, BIT(SERVE),
	      "a connection idle this long is closed (default 30)"),
	FLAG("--verbose", "-v", verbose, ALL_COMMANDS, "say what is compiled, loaded and cached"),
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static void print_overview(FILE *out)
{
	fprintf(out, "usage: strata COMMAND [arguments] [options]\n"
	             "       strata COMMAND --help     the command's arguments and options\n"
	             "\n"
	             "commands:\n");
	for (size_t c = 0; c < N_COMMANDS; c++)
		fprintf(out, "  %-12s %s\n", commands[c].name, commands[c].summary);
	fprintf(out, "\n"
	             "options of every command: -v, --verbose; -h, --help. `strata --version` prints the version.\n"
	             "Exit status: 0 success, 1 failure, 2 bad usage or bad model file.\n");
}

static void print_option(FILE *out, const option *o)
{
	char head[64];
	if (o->alias && o->alias[1] != '-')
		snprintf(head, sizeof(head), "%s, %s%s%s", o->alias, o->name, o->arg ? " " : "", o->arg ? o->arg : "");
	else
		snprintf(head, sizeof(head), "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
	fprintf(out, "  %-22s ", head);
	for (const char *p = o->help; *p; p++) {
		fputc(*p, out);
		if (*p == '\n')
			fprintf(out, "  %-22s ", "");
	}
	fputc('\n', out);
}

static void print_command_help(FILE *out, size_t c)
{
	fprintf(out, "usage: strata %s%s%s [options]\n\n%s\n\noptions:\n", commands[c].name,
	        *commands[c].args ? " " : "", commands[c].args, commands[c].about);
	for (size_t i = 0; i < N_OPTIONS; i++)
		if ((options[i].commands & BIT(c)) && options[i].help)
			print_option(out, &options[i]);
	fprintf(out, "  %-22s this help\n", "-h, --help");
}

static bool named(const option *o, const char *name)
{
	return strcmp(o->name, name) == 0 || (o->alias && strcmp(o->alias, name) == 0);
}

/* The row of `name` that command `c` takes; *known says whether any command takes it. */
static const option *find_option(const char *name, int c, bool *known)
{
	*known = false;
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (!named(&options[i], name))
			continue;
		*known = true;
		if (c < 0 || (options[i].commands & BIT(c)))
			return &options[i];
	}
	return NULL;
}

static int parse_count(const option *o, const char *value, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(value, &end, 10);
	if (errno || *end || end == value || v < o->min || v > o->max) {
		cli_error("%s: '%s' is not a whole number from %" PRId64 " to %" PRId64, o->name, value, o->min, o->max);
		return CLI_USAGE;
	}
	*out = v;
	return CLI_OK;
}

/* `arg`: the positional arguments before the option. */
static int store(cli_options *opt, const option *o, const char *value, int arg)
{
	char *slot = (char *)opt + o->offset;
	switch (o->kind) {
	case OPT_ARG_TEXT: {
		const char **values = (const char **)(void *)slot;
		if (arg == 0) {
			cli_error("%s belongs after the model file it is for: MODEL.yaml %s %s", o->name, o->name, o->arg);
			return CLI_USAGE;
		}
		if (values[arg - 1]) {
			cli_error("%s is given twice for the model file '%s'", o->name, opt->models[arg - 1]);
			return CLI_USAGE;
		}
		if (!*value) {
			cli_error("%s: the value is empty", o->name);
			return CLI_USAGE;
		}
		values[arg - 1] = value;
		return CLI_OK;
	}
	case OPT_FLAG:
		*(bool *)slot = true;
		return CLI_OK;
	case OPT_TEXT:
		if (!*value) {
			cli_error("%s: the value is empty", o->name);
			return CLI_USAGE;
		}
		*(const char **)slot = value;
		return CLI_OK;
	case OPT_COUNT:
		return parse_count(o, value, (int64_t *)slot);
	}
	return CLI_USAGE;
}

static int find_command(const char *name)
{
	for (size_t c = 0; c < N_COMMANDS; c++)
		if (strcmp(name, commands[c].name) == 0)
			return (int)c;
	return -1;
}

/* Splits "--name=value" into its name (copied to buf) and value; otherwise *value is NULL. */
static const char *split_value(const char *arg, char *buf, size_t size, const char **value)
{
	const char *eq = arg[0] == '-' && arg[1] == '-' ? strchr(arg, '=') : NULL;
	*value = NULL;
	if (!eq || (size_t)(eq - arg) >= size)
		return arg;
	memcpy(buf, arg, (size_t)(eq - arg));
	buf[eq - arg] = '\0';
	*value = eq + 1;
	return buf;
}

/* Where the command stands in argv (options may stand before it, so that each option can be
 * checked against it); every option taking a value is known to the table, whatever the command.
 * `strata help [COMMAND]` is `strata [COMMAND] --help`. */
static int locate_command(int argc, char **argv, int *at, int *help_at)
{
	*at = *help_at = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *value;
		char buf[64];
		if (strcmp(a, "--") == 0) {
			i++;
		} else if (a[0] == '-' && a[1] != '\0') {
			bool known;
			const option *o = find_option(split_value(a, buf, sizeof(buf), &value), -1, &known);
			if (o && o->kind != OPT_FLAG && !value)
				i++;
			continue;
		}
		if (i >= argc)
			break;
		if (strcmp(argv[i], "help") == 0 && *help_at < 0) {
			*help_at = i;
			continue;
		}
		*at = i;
		int c = find_command(argv[i]);
		if (c < 0)
			cli_error("unknown command '%s' (see strata --help)", argv[i]);
		return c;
	}
	return -1;
}

int main(int argc, char **argv)
{
	cli_context ctx = {
		.opt = {.batch = -1, .seed = -1, .epochs = -1, .limit = -1, .budget = -1, .width = -1, .height = -1,
		        .filters = -1, .steps = -1, .grid = -1, .count = -1, .port = -1, .max_batch_size = -1,
		        .max_queue_delay_us = -1, .max_queue_size = -1, .timeout_us = -1, .max_body_bytes = -1,
		        .max_header_bytes = -1, .max_connections = -1, .client_timeout = -1, .shards = -1,
		        .collective_timeout = -1, .peak_gflops = -1}};
	int at, help_at;
	int c = locate_command(argc, argv, &at, &help_at);
	if (at >= 0 && c < 0)
		return CLI_USAGE;
	bool help = help_at >= 0, end_of_options = false;

	const char *positional[CLI_MAX_MODELS];
	int n_positional = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *value;
		char buf[64];
		if (i == at || i == help_at)
			continue;
		if (end_of_options || a[0] != '-' || a[1] == '\0') {
			if (c < 0 || n_positional == commands[c].max_args) {
				if (c < 0)
					cli_error("'%s' is not a command (see strata --help)", a);
				else
					cli_error("'%s' takes %s; '%s' is one too many (see strata %s --help)", commands[c].name,
					          *commands[c].args ? commands[c].args : "no arguments", a, commands[c].name);
				return CLI_USAGE;
			}
			positional[n_positional] = a;
			ctx.opt.models[n_positional++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			end_of_options = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			help = true;
			continue;
		}
		if (strcmp(a, "--version") == 0) {
			printf("strata %s\n", strata_version_string());
			return CLI_OK;
		}
		bool known;
		const char *name = split_value(a, buf, sizeof(buf), &value);
		const option *o = find_option(name, c, &known);
		if (!o) {
			if (!known)
				cli_error("unknown option '%s' (see strata%s%s --help)", name, c < 0 ? "" : " ",
				          c < 0 ? "" : commands[c].name);
			else if (c < 0)
				cli_error("%s needs a command first (see strata --help)", name);
			else
				cli_error("'%s' does not take %s (see strata %s --help)", commands[c].name, name,
				          commands[c].name);
			return CLI_USAGE;
		}
		if (o->kind == OPT_FLAG && value) {
			cli_error("%s takes no value", o->name);
			return CLI_USAGE;
		}
		if (o->kind != OPT_FLAG && !value) {
			if (i + 1 >= argc) {
				cli_error("%s needs a value (%s)", o->name, o->arg);
				return CLI_USAGE;
			}
			value = argv[++i];
		}
		int rc = store(&ctx.opt, o, value, n_positional);
		if (rc)
			return rc;
	}

	if (help) {
		if (c < 0)
			print_overview(stdout);
		else
			print_command_help(stdout, (size_t)c);
		return CLI_OK;
	}
	if (c < 0) {
		print_overview(stderr);
		return CLI_USAGE;
	}
	ctx.opt.n_models = n_positional;
	if (n_positional < commands[c].min_args || (c == SERVE && n_positional == 0 && !ctx.opt.repository)) {
		if (c == SERVE) {
			cli_error("'serve' needs a model file or --repository DIR (see strata serve --help)");
			return CLI_USAGE;
		}
		cli_error("'%s' needs %s (see strata %s --help)", commands[c].name, commands[c].args, commands[c].name);
		return CLI_USAGE;
	}
	static const char *const what[] = {"the model file's", "INPUT's"};
	for (int i = 0; i < n_positional; i++) {
		if (!*positional[i]) {
			cli_error("%s: %s path is empty", commands[c].name,
			          c == PLOT ? "the log's" : c == EMBED && i == 1 ? "DATA's" : what[i > 0 && c != SERVE]);
			return CLI_USAGE;
		}
	}
	if (n_positional > 0)
		ctx.opt.model_path = positional[0];
	if (n_positional > 1)
		ctx.opt.input_path = positional[1];
	int rc = cli_prepare_caches(commands[c].name, ctx.opt.verbose);
	return rc ? rc : commands[c].run(&ctx);
}
