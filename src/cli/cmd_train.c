/* `strata train`: Keras-like progress per epoch, validation at each epoch's end, test figures
 * at the end. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Set by SIGINT/SIGTERM; a signal handler can reach nothing else. strata_fit polls it. The
 * handler is installed with SA_RESETHAND: a second Ctrl-C ends the process at once, which is safe
 * because a checkpoint is replaced atomically (the file holds the old epoch or the new one). */
static volatile sig_atomic_t stop_requested;

static void request_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

typedef struct progress_state {
	bool tty;
	int last_width;
	FILE *log;         /* CSV training log, or NULL */
	double epoch_base; /* seconds of earlier epochs, for the log's time column */
	bool saved;        /* this run has written a checkpoint */
} progress_state;

/* One CSV row per progress report and per epoch end. */
static void log_row(progress_state *ps, const strata_progress *p)
{
	if (!ps->log)
		return;
	fprintf(ps->log, "%u,%u,%.6f,%.6f,", p->epoch, p->batch, p->loss, p->accuracy);
	if (p->epoch_done && p->has_validation)
		fprintf(ps->log, "%.6f,%.6f,", p->val_loss, p->val_accuracy);
	else
		fprintf(ps->log, ",,");
	fprintf(ps->log, "%.1f,%.3f\n", p->images_per_second, ps->epoch_base + p->epoch_seconds);
	fflush(ps->log);
	if (p->epoch_done)
		ps->epoch_base += p->epoch_seconds;
}

static void format_time(double s, char *buf, size_t size)
{
	if (s >= 3600)
		snprintf(buf, size, "%d:%02d:%02d", (int)(s / 3600), (int)fmod(s / 60, 60), (int)fmod(s, 60));
	else if (s >= 60)
		snprintf(buf, size, "%d:%02d", (int)(s / 60), (int)fmod(s, 60));
	else
		snprintf(buf, size, "%ds", (int)(s + 0.5));
}

static void show(void *user, const strata_progress *p)
{
	progress_state *ps = user;
	ps->saved |= p->checkpoint_saved;
	log_row(ps, p);
	if (!p->epoch_done && !ps->tty)
		return; /* a log file gets one line per epoch */
	if (p->batch == 1 && !p->epoch_done)
		printf("Epoch %u/%u\n", p->epoch, p->epochs);
	char bar[31];
	int filled = p->batches ? (int)(30.0 * p->batch / p->batches) : 30;
	for (int i = 0; i < 30; i++)
		bar[i] = i < filled ? '=' : (i == filled ? '>' : '.');
	bar[30] = '\0';
	char t[32];
	format_time(p->epoch_done ? p->epoch_seconds : p->eta_seconds, t, sizeof(t));
	char line[512];
	int n = snprintf(line, sizeof(line), "%u/%u [%s] - %s %s - loss: %.4f - accuracy: %.4f - %.0f img/s", p->batch,
	                 p->batches, bar, p->epoch_done ? "" : "ETA", t, p->loss, p->accuracy, p->images_per_second);
	if (p->epoch_done && p->has_validation)
		n += snprintf(line + n, sizeof(line) - (size_t)n, " - val_loss: %.4f - val_accuracy: %.4f", p->val_loss,
		              p->val_accuracy);
	if (p->epoch_done && !ps->tty)
		printf("Epoch %u/%u\n", p->epoch, p->epochs);
	printf("%s%s%*s%s", ps->tty ? "\r" : "", line, ps->tty && ps->last_width > n ? ps->last_width - n : 0, "",
	       p->epoch_done ? "\n" : "");
	ps->last_width = n;
	fflush(stdout);
}

/* The CSV log goes next to the weights (W.csv for W.stw) or where --log says; a resumed run
 * appends to it. */
static int open_log(cli_context *ctx, progress_state *ps)
{
	char path[4096];
	if (ctx->opt.log) {
		snprintf(path, sizeof(path), "%s", ctx->opt.log);
	} else if (ctx->opt.save) {
		snprintf(path, sizeof(path), "%s", ctx->opt.save);
		char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
		if (dot && (!slash || dot > slash))
			*dot = '\0';
		strncat(path, ".csv", sizeof(path) - strlen(path) - 1);
	} else {
		return CLI_OK;
	}
	bool append = ctx->opt.resume && access(path, F_OK) == 0;
	ps->log = fopen(path, append ? "a" : "w");
	if (!ps->log) {
		cli_error("cannot write the training log %s", path);
		return CLI_FAILED;
	}
	if (!append)
		fprintf(ps->log, "epoch,batch,loss,accuracy,val_loss,val_accuracy,images_per_s,seconds\n");
	return CLI_OK;
}

/* The command that goes on from the checkpoint: the options that shape the training run again,
 * or the resumed run would not be the one that was interrupted. */
static void print_continue(const cli_context *ctx, const char *lead)
{
	const cli_options *o = &ctx->opt;
	fprintf(stderr, "strata: %s: strata train %s --resume %s --save %s", lead, o->model_path, o->save,
	        o->save);
	if (o->limit >= 0)
		fprintf(stderr, " --limit %lld", (long long)o->limit);
	if (o->epochs >= 0)
		fprintf(stderr, " --epochs %lld", (long long)o->epochs);
	if (o->batch >= 0)
		fprintf(stderr, " --batch-size %lld", (long long)o->batch);
	if (o->seed >= 0)
		fprintf(stderr, " --seed %lld", (long long)o->seed);
	if (o->device)
		fprintf(stderr, " --device '%s'", o->device);
	if (o->plugin_path)
		fprintf(stderr, " --plugin-path '%s'", o->plugin_path);
	if (o->log)
		fprintf(stderr, " --log %s", o->log);
	fputc('\n', stderr);
}

int cmd_train(cli_context *ctx)
{
	int rc = cli_open_model(ctx);
	if (rc || (rc = cli_open_runtime(ctx)))
		return cli_close(ctx, rc);
	strata_training_config tc = strata_model_training(ctx->model);
	const strata_device_info *dev = strata_runtime_device(ctx->rt);
	strata_session *s = NULL;
	strata_dataset *train = NULL, *val = NULL, *test = NULL;
	uint32_t batch = 0;
	progress_state ps = {.tty = isatty(STDOUT_FILENO)};
	if ((rc = cli_open_session(ctx, &s, &batch)))
		goto out_free;
	/* A resumed run's checkpoint replaces every weight: the init_from file is not needed. */
	strata_error ierr = {0};
	char taken[512];
	if (!ctx->opt.resume && strata_session_init_from(s, taken, sizeof(taken), &ierr) != STRATA_OK) {
		cli_error("%s", ierr.message);
		rc = cli_exit_status(ierr.status);
		goto out_free;
	}
	if (!ctx->opt.resume && taken[0])
		printf("Weights of %s\n", taken);

	/* Keras' validation_split holds out the last samples of the training set; without it the
	 * test set is the validation data, as in the Keras MNIST example. */
	uint32_t limit = ctx->opt.limit > 0 ? (uint32_t)ctx->opt.limit : 0;
	if ((rc = cli_open_dataset(ctx, "train", 0, limit, NULL, &train)))
		goto out_free;
	uint32_t n = strata_dataset_count(train);
	if (tc.validation_split > 0) {
		uint32_t held = (uint32_t)(n * tc.validation_split);
		strata_dataset_free(train);
		train = NULL;
		if (held == 0 || held == n) {
			cli_error("validation_split %g of %u samples leaves no %s", tc.validation_split, n,
			          held ? "training data" : "validation data");
			rc = CLI_USAGE;
			goto out_free;
		}
		if ((rc = cli_open_dataset(ctx, "train", 0, n - held, NULL, &train)) ||
		    (rc = cli_open_dataset(ctx, "train", n - held, held, train, &val)))
			goto out_free;
	}
	if (strata_model_data(ctx->model).test_images) {
		if ((rc = cli_open_dataset(ctx, "test", 0, 0, train, &test)))
			goto out_free;
		if (!val)
			val = test;
	}

	uint32_t epochs = ctx->opt.epochs > 0 ? (uint32_t)ctx->opt.epochs : tc.epochs;
	printf("Training %s on %s: %u samples, batch %u, %u epochs, seed %llu\n", strata_model_name(ctx->model),
	       dev->name, strata_dataset_count(train), batch, epochs,
	       (unsigned long long)(ctx->opt.seed >= 0 ? (uint64_t)ctx->opt.seed : tc.seed));
	if ((rc = open_log(ctx, &ps)))
		goto out_free;
	struct sigaction sa = {.sa_handler = request_stop, .sa_flags = SA_RESETHAND};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	strata_fit_options fo = {
		.size = sizeof(fo),
		.epochs = epochs,
		.batch_size = batch,
		.no_shuffle = !tc.shuffle,
		.save_path = ctx->opt.save,
		.resume_path = ctx->opt.resume,
		.progress = show,
		.progress_user = &ps,
		.progress_interval = 0.5,
		.stop = (const volatile int *)&stop_requested,
	};
	strata_error err = {0};
	if (strata_fit(s, train, val, &fo, &err) != STRATA_OK) {
		if (ps.tty)
			printf("\n");
		cli_error("%s", err.message);
		if (err.status == STRATA_ERR_INTERRUPTED) {
			if (ctx->opt.save)
				print_continue(ctx, "continue with");
			rc = 130; /* as a shell reports a Ctrl-C */
		} else {
			rc = cli_exit_status(err.status);
			/* A failure (a lost device, a full disk) never touches the last checkpoint: this
			 * run's, or the one it resumed from. */
			bool resumed_here =
				ctx->opt.resume && ctx->opt.save && !strcmp(ctx->opt.resume, ctx->opt.save);
			if (rc == CLI_FAILED && (ps.saved || resumed_here))
				print_continue(ctx, "the last checkpoint saved is intact; once the cause is fixed, "
				                    "continue with");
		}
		goto out_free;
	}
	if (test) {
		strata_eval_result r;
		if (strata_evaluate(s, test, batch, &r, &err) != STRATA_OK) {
			cli_error("%s", err.message);
			rc = CLI_FAILED;
			goto out_free;
		}
		printf("Test loss: %.4f\nTest accuracy: %.4f\nTest LRAP: %.4f\n", r.loss, r.accuracy, r.lrap);
	}
	if (ctx->opt.save)
		printf("Weights saved to %s\n", ctx->opt.save);
	rc = CLI_OK;
out_free:
	if (ps.log)
		fclose(ps.log);
	if (val != test)
		strata_dataset_free(val);
	strata_dataset_free(test);
	strata_dataset_free(train);
	strata_session_destroy(s);
	return cli_close(ctx, rc);
}
