/* strata: run, inspect and check deep-learning models on any OpenCL device. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: strata [options] COMMAND [arguments]\n"
	        "\n"
	        "commands:\n"
	        "  devices                 list OpenCL platforms and devices\n"
	        "  layers                  list the layer types the plugins provide, with their parameters\n"
	        "  summary MODEL.yaml      print the model's layers, output shapes and parameter counts\n"
	        "  forward MODEL.yaml      print the summary, then run one batch through the network\n"
	        "  train MODEL.yaml        train on the model's data; test figures at the end\n"
	        "  eval MODEL.yaml --weights W\n"
	        "                          test loss, accuracy and label ranking average precision\n"
	        "  predict MODEL.yaml --weights W INPUT\n"
	        "                          class and probabilities of each image of an IDX, PNG or PGM file\n"
	        "  bench MODEL.yaml        training and inference images/s, per-layer time with --profile,\n"
	        "                          GEMM GFLOP/s, peak memory, time to the first batch (--no-cold)\n"
	        "  tune MODEL.yaml         search CLBlast's GEMM parameters for the device on the model's\n"
	        "                          training shapes; later runs on this device use the winner\n"
	        "  plot LOG.csv            training curves of a `train` log (loss | accuracy) as a PNG\n"
	        "  visualize MODEL.yaml --layer NAME -o PNG\n"
	        "                          the input each filter of a layer responds to most (gradient\n"
	        "                          ascent from gray noise), as a grid of images\n"
	        "  embed MODEL.yaml --layer NAME -o FILE [DATA]\n"
	        "                          a layer's activations for every sample of DATA (the test set;\n"
	        "                          `train`; or an IDX images file) as CSV or NumPy .npy\n"
	        "\n"
	        "options:\n"
	        "  --device SEL            auto, cpu, gpu, gpu:N, or part of a device or platform name\n"
	        "                          (default: STRATA_DEVICE, then the model's `device:`, then auto)\n"
	        "  --batch-size N          samples per batch (default: the model's batch_size)\n"
	        "  --epochs N              train until N epochs are complete (default: the model's)\n"
	        "  --save PATH             write a checkpoint there after every epoch\n"
	        "  --resume PATH           continue training from a checkpoint (also one Ctrl-C left)\n"
	        "  --log PATH              training log as CSV (default: next to --save, W.csv)\n"
	        "  --weights PATH          weights for eval, predict, visualize and embed\n"
	        "  --limit N               train on the first N training samples only\n"
	        "  --seed N                weight initialization seed (default: the model's seed)\n"
	        "  --budget SECONDS        tune's search time (default 240)\n"
	        "  --random                forward seeded random inputs instead of the model's test images\n"
	        "  -o, --output PATH       plot's picture (default: the log's name with .png)\n"
	        "                          visualize's PNG; embed's CSV or .npy\n"
	        "  --width N, --height N   plot's picture size in pixels (default 1000 x 400)\n"
	        "  --layer NAME            visualize's and embed's layer, named as `strata summary` shows\n"
	        "  --filters N             visualize filters 0..N-1 of the layer (default: all)\n"
	        "  --steps N               visualize's gradient-ascent steps (default 20)\n"
	        "  --grid N                visualize's picture: N x N images (default: up to 8 x 8)\n"
	        "  --format csv|npy        embed's output (default: npy for a .npy path, else csv)\n"
	        "  --profile               time every kernel and print a per-layer table at exit\n"
	        "  --plugin-path DIRS      extra ':'-separated plugin folders (after STRATA_PLUGIN_PATH)\n"
	        "  -v, --verbose           say what is compiled, loaded and cached\n"
	        "  -h, --help              this help\n"
	        "  --version               print the version\n"
	        "\n"
	        "Exit status: 0 success, 1 failure, 2 bad usage or bad model file.\n");
}

static int parse_count(const char *flag, const char *value, int64_t *out)
{
	if (!value) {
		cli_error("%s needs a value", flag);
		return CLI_USAGE;
	}
	char *end;
	errno = 0;
	long long v = strtoll(value, &end, 10);
	if (errno || *end || end == value || v < 0 || v > UINT32_MAX) {
		cli_error("%s: '%s' is not a whole number between 0 and %u", flag, value, UINT32_MAX);
		return CLI_USAGE;
	}
	*out = v;
	return CLI_OK;
}

int main(int argc, char **argv)
{
	cli_context ctx = {
		.opt = {.batch = -1, .seed = -1, .epochs = -1, .limit = -1, .budget = -1, .width = -1, .height = -1,
		        .filters = -1, .steps = -1, .grid = -1}};
	const char *command = NULL;
	const char *positional[4];
	int n_positional = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = CLI_OK;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return CLI_OK;
		} else if (strcmp(a, "--version") == 0) {
			printf("strata %s\n", strata_version_string());
			return CLI_OK;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			ctx.opt.verbose = true;
		} else if (strcmp(a, "--profile") == 0) {
			ctx.opt.profile = true;
		} else if (strcmp(a, "--random") == 0) {
			ctx.opt.random_input = true;
		} else if (strcmp(a, "--first-batch-only") == 0) {
			ctx.opt.first_batch_only = true;
		} else if (strcmp(a, "--no-cold") == 0) {
			ctx.opt.no_cold = true;
		} else if (strcmp(a, "--device") == 0 || strcmp(a, "--plugin-path") == 0 || strcmp(a, "--save") == 0 ||
		           strcmp(a, "--resume") == 0 || strcmp(a, "--weights") == 0 || strcmp(a, "--log") == 0) {
			if (!next) {
				cli_error("%s needs a value", a);
				return CLI_USAGE;
			}
			const char **slot = a[2] == 'd'   ? &ctx.opt.device
			                    : a[2] == 'p' ? &ctx.opt.plugin_path
			                    : a[2] == 's' ? &ctx.opt.save
			                    : a[2] == 'r' ? &ctx.opt.resume
			                    : a[2] == 'l' ? &ctx.opt.log
			                                  : &ctx.opt.weights;
			*slot = next;
			i++;
		} else if (strcmp(a, "--epochs") == 0) {
			rc = parse_count(a, next, &ctx.opt.epochs);
			i++;
		} else if (strcmp(a, "--limit") == 0) {
			rc = parse_count(a, next, &ctx.opt.limit);
			i++;
		} else if (strcmp(a, "--batch") == 0 || strcmp(a, "--batch-size") == 0) {
			rc = parse_count(a, next, &ctx.opt.batch);
			i++;
		} else if (strcmp(a, "--seed") == 0) {
			rc = parse_count(a, next, &ctx.opt.seed);
			i++;
		} else if (strcmp(a, "--budget") == 0) {
			rc = parse_count(a, next, &ctx.opt.budget);
			i++;
		} else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
			if (!next) {
				cli_error("%s needs a value", a);
				return CLI_USAGE;
			}
			ctx.opt.output = next;
			i++;
		} else if (strcmp(a, "--width") == 0) {
			rc = parse_count(a, next, &ctx.opt.width);
			i++;
		} else if (strcmp(a, "--height") == 0) {
			rc = parse_count(a, next, &ctx.opt.height);
			i++;
		} else if (strcmp(a, "--layer") == 0 || strcmp(a, "--format") == 0) {
			if (!next) {
				cli_error("%s needs a value", a);
				return CLI_USAGE;
			}
			*(a[2] == 'l' ? &ctx.opt.layer : &ctx.opt.format) = next;
			i++;
		} else if (strcmp(a, "--filters") == 0) {
			rc = parse_count(a, next, &ctx.opt.filters);
			i++;
		} else if (strcmp(a, "--steps") == 0) {
			rc = parse_count(a, next, &ctx.opt.steps);
			i++;
		} else if (strcmp(a, "--grid") == 0) {
			rc = parse_count(a, next, &ctx.opt.grid);
			i++;
		} else if (a[0] == '-' && a[1] != '\0') {
			cli_error("unknown option '%s' (see strata --help)", a);
			return CLI_USAGE;
		} else if (!command) {
			command = a;
		} else if (n_positional < 4) {
			positional[n_positional++] = a;
		} else {
			cli_error("too many arguments");
			return CLI_USAGE;
		}
		if (rc)
			return rc;
	}
	if (!command) {
		usage(stderr);
		return CLI_USAGE;
	}

	static const struct {
		const char *name;
		int (*run)(cli_context *);
		int n_args; /* positional arguments: MODEL.yaml, then predict's INPUT */
	} commands[] = {
		{"devices", cmd_devices, 0}, {"layers", cmd_layers, 0}, {"summary", cmd_summary, 1},
		{"forward", cmd_forward, 1}, {"train", cmd_train, 1},   {"eval", cmd_eval, 1},
		{"predict", cmd_predict, 2}, {"bench", cmd_bench, 1}, {"tune", cmd_tune, 1},
		{"plot", cmd_plot, 1}, {"visualize", cmd_visualize, 1}, {"embed", cmd_embed, 1},
	};
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(command, commands[i].name) != 0)
			continue;
		bool optional_last = commands[i].run == cmd_embed; /* DATA: the test set when left out */
		if (n_positional < commands[i].n_args || n_positional > commands[i].n_args + optional_last) {
			static const char *const what[] = {"no arguments", "one model file", "a model file and an input file"};
			cli_error("'%s' takes %s (see strata --help)", command,
			          commands[i].run == cmd_plot ? "one training log (CSV)"
			          : optional_last             ? "a model file and optionally a data set"
			                                      : what[commands[i].n_args]);
			return CLI_USAGE;
		}
		if (n_positional > 0)
			ctx.opt.model_path = positional[0];
		if (n_positional > 1)
			ctx.opt.input_path = positional[1];
		int rc = cli_prepare_caches(command, ctx.opt.verbose);
		return rc ? rc : commands[i].run(&ctx);
	}
	cli_error("unknown command '%s' (see strata --help)", command);
	return CLI_USAGE;
}
