/* `strata plot LOG.csv [-o curves.png] [--width W] [--height H]`: the training curves of a log
 * that `strata train` wrote, loss and accuracy against the epoch, as a PNG. Needs no device. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "plot_csv.h"
#include "plot_draw.h"

/* LOG.csv -> LOG.png beside it; a name without the extension gets ".png" added. */
static int default_output(const char *log_path, char *buf, size_t size)
{
	snprintf(buf, size, "%s", log_path);
	char *dot = strrchr(buf, '.'), *slash = strrchr(buf, '/');
	if (dot && (!slash || dot > slash) && strcmp(dot, ".csv") == 0)
		*dot = '\0';
	size_t n = strlen(buf);
	if (n + sizeof(".png") > size) {
		cli_error("%s: name too long; give the picture's name with -o", log_path);
		return CLI_USAGE;
	}
	memcpy(buf + n, ".png", sizeof(".png"));
	return CLI_OK;
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	if (strcmp(a, b) == 0)
		return true;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int cmd_plot(cli_context *ctx)
{
	const char *log_path = ctx->opt.model_path; /* the one positional argument: the log */
	int64_t width = ctx->opt.width >= 0 ? ctx->opt.width : PLOT_DEFAULT_WIDTH;
	int64_t height = ctx->opt.height >= 0 ? ctx->opt.height : PLOT_DEFAULT_HEIGHT;
	strata_error err = {0};
	if (plot_check_size(width, height, &err)) {
		cli_error("--width/--height: %s", err.message);
		return CLI_USAGE;
	}
	char derived[4096];
	const char *out = ctx->opt.output;
	if (!out) {
		int rc = default_output(log_path, derived, sizeof(derived));
		if (rc)
			return rc;
		out = derived;
	}
	if (same_file(log_path, out)) {
		cli_error("the picture would overwrite the log %s; give another name with -o", log_path);
		return CLI_USAGE;
	}

	plot_log log;
	strata_status st = plot_log_read(log_path, &log, &err);
	if (st) {
		cli_error("%s", err.message);
		return cli_exit_status(st);
	}
	st = plot_write_png(&log, (int)width, (int)height, out, NULL, &err);
	if (st) {
		cli_error("%s", err.message);
		plot_log_free(&log);
		return cli_exit_status(st);
	}
	const plot_epoch *first = &log.epochs[0], *last = &log.epochs[log.count - 1];
	printf("%s: epochs %u to %u (%zu epoch%s from %zu rows)%s, %" PRId64 "x%" PRId64 " -> %s\n", log_path,
	       first->epoch, last->epoch, log.count, log.count == 1 ? "" : "s", log.rows,
	       log.has_val ? "" : ", no validation figures", width, height, out);
	plot_log_free(&log);
	return CLI_OK;
}
