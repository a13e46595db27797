/* The strata command-line tool: shared option state and helpers of its subcommands. */
#ifndef STRATA_CLI_H
#define STRATA_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <strata/strata.h>

/* Exit statuses: 2 for what the user must fix in the command or the model file. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

typedef struct cli_options {
	const char *device;      /* --device */
	const char *plugin_path; /* --plugin-path */
	bool verbose;
	bool profile;
	/* subcommand arguments */
	const char *model_path;
	int64_t batch;           /* --batch, -1 unset */
	int64_t seed;            /* --seed, -1 unset */
	bool random_input;       /* --random */
} cli_options;

typedef struct cli_context {
	cli_options opt;
	strata_registry *reg;
	strata_model *model;
	strata_runtime *rt;
} cli_context;

/* Prints "strata: message" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Maps a library status to the tool's exit status. */
int cli_exit_status(strata_status st);
void cli_log(void *user, int level, const char *message);

/* Open what a subcommand needs; each prints its own error and returns an exit status. */
int cli_open_registry(cli_context *ctx);
int cli_open_model(cli_context *ctx);
/* Device choice: --device, then STRATA_DEVICE, then the model's `device:`, then auto. */
int cli_open_runtime(cli_context *ctx);
/* Prints --verbose cache figures and the --profile table, then frees everything. */
int cli_close(cli_context *ctx, int status);

int cmd_devices(cli_context *ctx);
int cmd_layers(cli_context *ctx);
int cmd_summary(cli_context *ctx);
int cmd_forward(cli_context *ctx);

#endif
