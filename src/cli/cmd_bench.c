/* `strata bench`: training and inference throughput (median of timed windows after warm-up),
 * per-layer kernel time, GEMM GFLOP/s, peak host memory, and time to the first trained batch with
 * a warm and a cold kernel cache. Lines starting "bench:" are for scripts (bench/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

enum { WINDOWS = 5 };

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), compare_doubles);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Runs this program again with an empty kernel cache (and PoCL's own cache off) and returns the
 * seconds it took to its first trained batch, or a negative number if that failed. */
static double cold_first_batch(cli_context *ctx, uint32_t batch)
{
	char dir[] = "/tmp/strata-bench-cold-XXXXXX";
	if (!mkdtemp(dir))
		return -1;
	int fds[2];
	if (pipe(fds) != 0)
		return -1;
	char batch_text[32];
	snprintf(batch_text, sizeof(batch_text), "%u", batch);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		setenv("XDG_CACHE_HOME", dir, 1);
		setenv("POCL_KERNEL_CACHE", "0", 1);
		const char *argv[12];
		int n = 0;
		argv[n++] = "strata";
		argv[n++] = "bench";
		argv[n++] = "--first-batch-only";
		argv[n++] = "--batch-size";
		argv[n++] = batch_text;
		if (ctx->opt.device) {
			argv[n++] = "--device";
			argv[n++] = ctx->opt.device;
		}
		if (ctx->opt.plugin_path) {
			argv[n++] = "--plugin-path";
			argv[n++] = ctx->opt.plugin_path;
		}
		argv[n++] = ctx->opt.model_path;
		argv[n] = NULL;
		execv("/proc/self/exe", (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	double seconds = -1;
	FILE *f = fdopen(fds[0], "r");
	char line[256];
	while (f && fgets(line, sizeof(line), f))
		sscanf(line, "bench: first_batch_s=%lf", &seconds);
	if (f)
		fclose(f);
	int status = 0;
	if (pid > 0)
		waitpid(pid, &status, 0);
	if (pid <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		seconds = -1;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		cli_error("could not remove %s", dir);
	return seconds;
}

int cmd_bench(cli_context *ctx)
{
	double t_start = now_s();
	int rc = cli_open_model(ctx);
	if (rc || (rc = cli_open_runtime(ctx)))
		return cli_close(ctx, rc);
	strata_session *s = NULL;
	strata_dataset *ds = NULL;
	uint32_t batch = 0;
	strata_error err = {0};
	if ((rc = cli_open_session(ctx, &s, &batch)) || (rc = cli_open_dataset(ctx, "train", 0, 0, NULL, &ds)))
		goto out_free;
	if (strata_session_train_steps(s, ds, batch, 1, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		rc = CLI_FAILED;
		goto out_free;
	}
	double first = now_s() - t_start;
	printf("bench: first_batch_s=%.3f\n", first);
	if (ctx->opt.first_batch_only)
		goto out_free;

	const strata_device_info *dev = strata_runtime_device(ctx->rt);
	printf("Benchmark of %s on %s, batch %u\n", strata_model_name(ctx->model), dev->name, batch);
	/* Windows of about a second each, sized from a warm-up. */
	double t0 = now_s();
	if (strata_session_train_steps(s, ds, batch, 3, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		rc = CLI_FAILED;
		goto out_free;
	}
	double per_step = (now_s() - t0) / 3;
	uint32_t steps = per_step > 0 ? (uint32_t)(1.0 / per_step) + 1 : 10;
	steps = steps < 3 ? 3 : steps > 200 ? 200 : steps;
	double train[WINDOWS], infer[WINDOWS];
	uint64_t flops0 = strata_runtime_gemm_flops(ctx->rt);
	if (ctx->opt.profile && strata_runtime_reset_profile(ctx->rt, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		rc = CLI_FAILED;
		goto out_free;
	}
	for (int w = 0; w < WINDOWS; w++) {
		double a = now_s();
		if (strata_session_train_steps(s, ds, batch, steps, &err) != STRATA_OK) {
			cli_error("%s", err.message);
			rc = CLI_FAILED;
			goto out_free;
		}
		train[w] = steps * (double)batch / (now_s() - a);
	}
	/* The useful arithmetic, counted as its GEMMs' 2mnk (all but a few percent of a convolutional
	 * network's), per image, at the median speed: what the device achieved on this model. */
	double train_images = WINDOWS * (double)steps * batch;
	double train_flop = (double)(strata_runtime_gemm_flops(ctx->rt) - flops0);
	double gflops = train_flop / train_images * median(train, WINDOWS) / 1e9;
	if (ctx->opt.profile) {
		printf("Per-layer kernel time over %d training steps:\n", WINDOWS * (int)steps);
		if (strata_runtime_print_profile(ctx->rt, stdout, &err) != STRATA_OK ||
		    strata_runtime_reset_profile(ctx->rt, &err) != STRATA_OK) {
			cli_error("%s", err.message);
			rc = CLI_FAILED;
			goto out_free;
		}
		ctx->opt.profile = false; /* printed: the exit needs no second table */
	}
	if (strata_session_infer_steps(s, ds, batch, 2, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		rc = CLI_FAILED;
		goto out_free;
	}
	uint32_t infer_steps = steps * 3;
	uint64_t infer_flops0 = strata_runtime_gemm_flops(ctx->rt);
	for (int w = 0; w < WINDOWS; w++) {
		double a = now_s();
		if (strata_session_infer_steps(s, ds, batch, infer_steps, &err) != STRATA_OK) {
			cli_error("%s", err.message);
			rc = CLI_FAILED;
			goto out_free;
		}
		infer[w] = infer_steps * (double)batch / (now_s() - a);
	}
	double infer_images = WINDOWS * (double)infer_steps * batch;
	double infer_flop = (double)(strata_runtime_gemm_flops(ctx->rt) - infer_flops0);
	double infer_gflops = infer_flop / infer_images * median(infer, WINDOWS) / 1e9;
	double peak = ctx->opt.peak_gflops > 0 ? (double)ctx->opt.peak_gflops : 0;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cold = ctx->opt.no_cold ? -1 : cold_first_batch(ctx, batch);

	printf("bench: device=%s\n", dev->name);
	printf("bench: batch=%u\n", batch);
	printf("bench: train_images_per_s=%.1f\n", median(train, WINDOWS));
	printf("bench: infer_images_per_s=%.1f\n", median(infer, WINDOWS));
	printf("bench: train_gflops=%.1f\n", gflops);
	printf("bench: train_flop_per_image=%.0f\n", train_flop / train_images);
	printf("bench: infer_gflops=%.1f\n", infer_gflops);
	printf("bench: infer_flop_per_image=%.0f\n", infer_flop / infer_images);
	if (peak > 0) {
		printf("bench: peak_gflops=%.1f\n", peak);
		printf("bench: train_peak_fraction=%.3f\n", gflops / peak);
		printf("bench: infer_peak_fraction=%.3f\n", infer_gflops / peak);
	}
	printf("bench: peak_host_mib=%.1f\n", ru.ru_maxrss / 1024.0);
	printf("bench: first_batch_warm_s=%.3f\n", first);
	if (cold >= 0)
		printf("bench: first_batch_cold_s=%.3f\n", cold);
	printf("Training   %8.1f images/s (median of %d windows of %u steps): %.1f GFLOP/s", median(train, WINDOWS),
	       WINDOWS, steps, gflops);
	if (peak > 0)
		printf(", %.0f%% of the %.0f GFLOP/s peak", 100 * gflops / peak, peak);
	printf(" (%.2f MFLOP an image in GEMMs)\n", train_flop / train_images / 1e6);
	printf("Inference  %8.1f images/s (median of %d windows of %u batches): %.1f GFLOP/s", median(infer, WINDOWS),
	       WINDOWS, infer_steps, infer_gflops);
	if (peak > 0)
		printf(", %.0f%% of the peak", 100 * infer_gflops / peak);
	printf(" (%.2f MFLOP an image)\n", infer_flop / infer_images / 1e6);
	printf("Peak host memory %.1f MiB; first trained batch after %.2f s (this run)%s", ru.ru_maxrss / 1024.0, first,
	       cold >= 0 ? "" : "\n");
	if (cold >= 0)
		printf(", %.2f s with a cold kernel cache\n", cold);
	rc = CLI_OK;
out_free:
	strata_dataset_free(ds);
	strata_session_destroy(s);
	return cli_close(ctx, rc);
}
