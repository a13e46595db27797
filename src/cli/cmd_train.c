/* `strata train`: Keras-like progress per epoch, validation at each epoch's end, test figures
 * at the end. Under mpirun, one rank of a data-parallel run (src/dist/): rank 0 alone prints,
 * logs, validates, tests and saves; every rank trains. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "dist/dist.h"

/* Set by SIGINT/SIGTERM; a signal handler can reach nothing else. strata_fit polls it. The
 * handler is installed with SA_RESETHAND: a second Ctrl-C ends the process at once, which is safe
 * because a checkpoint is replaced atomically (the file holds the old epoch or the new one). */
static volatile sig_atomic_t stop_requested;

static void request_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* A resumed run reads its log whole to drop rows; far more than years of rows (one a report). */
#define LOG_MAX_BYTES (1ull << 30)
#define LOG_PATH_MAX 4096

/* The columns every log has (cmd_plot reads them); a model of several outputs with a loss adds
 * each one's, as Keras' CSVLogger: digit_loss, digit_accuracy, ..., val_digit_loss, ... */
static const char log_header[] = "epoch,batch,loss,accuracy,val_loss,val_accuracy,images_per_s,seconds";
static const char map_log_header[] =
	"epoch,batch,loss,accuracy,val_quantization_error,val_topographic_error,images_per_s,seconds";
#define LOG_HEADER_MAX 4096

typedef struct progress_state {
	bool tty;
	int last_width;
	uint32_t header_epoch; /* the epoch whose "Epoch N/M" line a terminal has shown */
	FILE *log;         /* CSV training log, or NULL */
	char log_path[LOG_PATH_MAX];
	/* A resumed run's log as it was, and its mode: start_log rewrites it without the rows the
	 * checkpoint does not hold, once the first report tells which epoch that ends at. */
	char *old_log;
	mode_t old_mode;
	bool log_pending;  /* start_log has yet to run */
	bool log_failed;   /* a write failed: the log is incomplete */
	double epoch_base; /* seconds of earlier epochs, for the log's time column */
	bool saved;        /* this run has written a checkpoint */
	char header[LOG_HEADER_MAX]; /* log_header and the outputs' columns, with its newline */
	const strata_model *model;
	size_t n_heads;    /* outputs with a loss: more than one shows each */
} progress_state;

static void make_header(progress_state *ps, const strata_model *m)
{
	ps->model = m;
	ps->n_heads = strata_model_loss_count(m);
	/* A self-organizing map's validation figures are its errors, named so. */
	size_t o = (size_t)snprintf(ps->header, sizeof(ps->header), "%s",
	                            strata_model_trains_itself(m) ? map_log_header : log_header);
	for (int val = 0; ps->n_heads > 1 && val < 2; val++)
		for (size_t h = 0; h < ps->n_heads && o < sizeof(ps->header); h++)
			o += (size_t)snprintf(ps->header + o, sizeof(ps->header) - o, ",%s%s_loss,%s%s_accuracy",
			                      val ? "val_" : "", cli_loss_output_name(m, h), val ? "val_" : "",
			                      cli_loss_output_name(m, h));
	if (o < sizeof(ps->header) - 1)
		snprintf(ps->header + o, sizeof(ps->header) - o, "\n");
}

/* A write to the log failed: say so once and write no more (the run goes on, and fails at its
 * end, for the log no longer matches the checkpoint). `e` 0: `what` says it all. */
static void log_failed(progress_state *ps, const char *what, int e)
{
	cli_error("cannot write the training log %s (%s%s%s); training goes on without it", ps->log_path, what,
	          e ? ": " : "", e ? strerror(e) : "");
	if (ps->log)
		fclose(ps->log);
	ps->log = NULL;
	ps->log_failed = true;
}

/* fsync, where the file has one (not /dev/null, say: EINVAL). */
static int sync_fd(int fd)
{
	return fsync(fd) != 0 && errno != EINVAL && errno != EROFS ? -1 : 0;
}

/* The folder of `path`, synced so that a rename in it lasts. */
static int sync_folder(const char *path)
{
	char dir[LOG_PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	const char *folder = !slash ? "." : slash == dir ? "/" : (*slash = '\0', dir);
	int fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = sync_fd(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

/* The seconds (last column) of a log row; 0 when they do not parse. */
static double row_seconds(const char *row, const char *end)
{
	const char *comma = NULL;
	for (const char *c = row; c < end; c++)
		if (*c == ',')
			comma = c;
	if (!comma)
		return 0.0;
	char buf[64];
	size_t n = (size_t)(end - comma - 1) < sizeof(buf) - 1 ? (size_t)(end - comma - 1) : sizeof(buf) - 1;
	memcpy(buf, comma + 1, n);
	buf[n] = '\0';
	char *stop;
	double v = strtod(buf, &stop);
	return stop != buf && isfinite(v) && v >= 0 ? v : 0.0;
}

/* Called with the first report of a resumed run: `first` is the first epoch it trains, so its
 * checkpoint holds the epochs before it. Their rows stay; later ones go (a kill after an epoch's
 * row and before its checkpoint, or in the middle of an epoch, leaves rows no checkpoint holds),
 * as do lines a kill cut short. The log is rewritten through a temporary renamed over it, so a
 * kill leaves the old log or the new one, never a mix; the seconds go on from its last row. */
static void start_log(progress_state *ps, uint32_t first)
{
	ps->log_pending = false;
	char tmp[LOG_PATH_MAX + 8], what[LOG_PATH_MAX + 64];
	snprintf(tmp, sizeof(tmp), "%s.tmp", ps->log_path);
	/* O_NONBLOCK: a FIFO left there must not hang the run; anything but a regular file is refused. */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0666);
	struct stat sb;
	int e = 0;
	if (fd < 0 || fstat(fd, &sb) != 0)
		e = errno;
	else if (!S_ISREG(sb.st_mode))
		e = -1;
	else if (fchmod(fd, ps->old_mode) != 0 || !(ps->log = fdopen(fd, "w")))
		e = errno;
	if (e) {
		snprintf(what, sizeof(what), "%s%s", tmp, e < 0 ? " is not a regular file" : "");
		if (fd >= 0)
			close(fd);
		log_failed(ps, what, e < 0 ? 0 : e);
		goto out_free;
	}
	fputs(ps->header, ps->log);
	double seconds = 0.0;
	const char *line = ps->old_log;
	if (strncmp(line, "epoch,", 6) == 0)
		line = strchr(line, '\n') ? strchr(line, '\n') + 1 : line + strlen(line);
	for (const char *nl; (nl = strchr(line, '\n')); line = nl + 1) {
		char *end;
		unsigned long epoch = strtoul(line, &end, 10);
		if (end == line || *end != ',' || epoch >= first)
			continue;
		fwrite(line, 1, (size_t)(nl - line + 1), ps->log);
		seconds = row_seconds(line, nl);
	}
	ps->epoch_base = seconds;
	if (fflush(ps->log) != 0 || sync_fd(fileno(ps->log)) != 0) {
		log_failed(ps, tmp, errno);
		unlink(tmp);
		goto out_free;
	}
	if (rename(tmp, ps->log_path) != 0) {
		log_failed(ps, "renaming its temporary over it", errno);
		unlink(tmp);
		goto out_free;
	}
	if (sync_folder(ps->log_path) != 0)
		log_failed(ps, "syncing its folder", errno);
out_free:
	free(ps->old_log);
	ps->old_log = NULL;
}

/* One CSV row per progress report and per epoch end. An epoch's row comes before its checkpoint
 * is saved (log_epoch) and is synced to the disk: the log then holds every epoch the checkpoint
 * does, whenever a kill comes, and start_log drops what it holds beyond. */
static void log_row(progress_state *ps, const strata_progress *p)
{
	if (ps->log_pending)
		start_log(ps, p->epoch);
	if (!ps->log)
		return;
	if (isnan(p->loss)) /* a model without a loss (a self-organizing map) */
		fprintf(ps->log, "%u,%u,,,", p->epoch, p->batch);
	else
		fprintf(ps->log, "%u,%u,%.6f,%.6f,", p->epoch, p->batch, p->loss, p->accuracy);
	if (p->epoch_done && p->has_validation)
		fprintf(ps->log, "%.6f,%.6f,", p->val_loss, p->val_accuracy);
	else
		fprintf(ps->log, ",,");
	fprintf(ps->log, "%.1f,%.3f", p->images_per_second, ps->epoch_base + p->epoch_seconds);
	for (size_t h = 0; ps->n_heads > 1 && h < p->n_outputs; h++)
		fprintf(ps->log, ",%.6f,%.6f", p->output_loss[h], p->output_accuracy[h]);
	for (size_t h = 0; ps->n_heads > 1 && h < p->n_outputs; h++)
		if (p->epoch_done && p->has_validation)
			fprintf(ps->log, ",%.6f,%.6f", p->val_output_loss[h], p->val_output_accuracy[h]);
		else
			fprintf(ps->log, ",,");
	fputc('\n', ps->log);
	if (fflush(ps->log) != 0 || ferror(ps->log) || (p->epoch_done && sync_fd(fileno(ps->log)) != 0)) {
		log_failed(ps, "a row", errno);
		return;
	}
	if (p->epoch_done)
		ps->epoch_base += p->epoch_seconds;
}

/* strata_fit's report of an epoch's end before its checkpoint is saved: the epoch's row. */
static void log_epoch(void *user, const strata_progress *p)
{
	log_row(user, p);
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
	if (!p->epoch_done)
		log_row(ps, p); /* an epoch's end is logged by log_epoch, before its checkpoint */
	if (!p->epoch_done && !ps->tty)
		return; /* a log file gets one line per epoch */
	/* On a terminal the header comes before the epoch's first report, whichever batch that is:
	 * reports are at most one a second, and a fast epoch may have none before its end. */
	if (ps->tty && p->epoch != ps->header_epoch)
		printf("Epoch %u/%u\n", p->epoch, p->epochs);
	ps->header_epoch = p->epoch;
	char bar[31];
	int filled = p->batches ? (int)(30.0 * p->batch / p->batches) : 30;
	for (int i = 0; i < 30; i++)
		bar[i] = i < filled ? '=' : (i == filled ? '>' : '.');
	bar[30] = '\0';
	char t[32];
	format_time(p->epoch_done ? p->epoch_seconds : p->eta_seconds, t, sizeof(t));
	char line[2048];
	int n = isnan(p->loss) ? snprintf(line, sizeof(line), "%u/%u [%s] - %s %s - %.0f img/s", p->batch, p->batches, bar,
	                                  p->epoch_done ? "" : "ETA", t, p->images_per_second)
	                       : snprintf(line, sizeof(line), "%u/%u [%s] - %s %s - loss: %.4f - accuracy: %.4f - %.0f img/s",
	                                  p->batch, p->batches, bar, p->epoch_done ? "" : "ETA", t, p->loss, p->accuracy,
	                                  p->images_per_second);
	for (size_t h = 0; ps->n_heads > 1 && h < p->n_outputs && (size_t)n < sizeof(line); h++) {
		const char *name = cli_loss_output_name(ps->model, h);
		n += snprintf(line + n, sizeof(line) - (size_t)n, " - %s_loss: %.4f", name, p->output_loss[h]);
		if (cli_head_shows_accuracy(ps->model, h) && (size_t)n < sizeof(line))
			n += snprintf(line + n, sizeof(line) - (size_t)n, " - %s_accuracy: %.4f", name, p->output_accuracy[h]);
	}
	if (p->epoch_done && p->has_validation && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n,
		              isnan(p->loss) ? " - val_quantization_error: %.4f - val_topographic_error: %.4f"
		                             : " - val_loss: %.4f - val_accuracy: %.4f",
		              p->val_loss, p->val_accuracy);
	for (size_t h = 0; p->epoch_done && p->has_validation && ps->n_heads > 1 && h < p->n_outputs &&
	                   (size_t)n < sizeof(line); h++) {
		const char *name = cli_loss_output_name(ps->model, h);
		n += snprintf(line + n, sizeof(line) - (size_t)n, " - val_%s_loss: %.4f", name, p->val_output_loss[h]);
		if (cli_head_shows_accuracy(ps->model, h) && (size_t)n < sizeof(line))
			n += snprintf(line + n, sizeof(line) - (size_t)n, " - val_%s_accuracy: %.4f", name,
			              p->val_output_accuracy[h]);
	}
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	if (p->epoch_done && !ps->tty)
		printf("Epoch %u/%u\n", p->epoch, p->epochs);
	printf("%s%s%*s%s", ps->tty ? "\r" : "", line, ps->tty && ps->last_width > n ? ps->last_width - n : 0, "",
	       p->epoch_done ? "\n" : "");
	ps->last_width = n;
	fflush(stdout);
}

/* The CSV log goes next to the weights (W.csv for W.stw) or where --log says; a resumed run
 * keeps the rows of the epochs its checkpoint holds (start_log) and appends to them. */
static int open_log(cli_context *ctx, progress_state *ps)
{
	char *path = ps->log_path;
	size_t size = sizeof(ps->log_path);
	if (ctx->opt.log) {
		snprintf(path, size, "%s", ctx->opt.log);
	} else if (ctx->opt.save) {
		snprintf(path, size, "%s", ctx->opt.save);
		char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
		if (dot && (!slash || dot > slash))
			*dot = '\0';
		strncat(path, ".csv", size - strlen(path) - 1);
	} else {
		return CLI_OK;
	}
	if (ctx->opt.resume && access(path, F_OK) == 0) {
		/* Read now, rewritten at the first report: only then is the checkpoint's epoch known. */
		int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		struct stat sb;
		if (fd < 0 || fstat(fd, &sb) != 0) {
			cli_error("cannot read the training log %s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return CLI_FAILED;
		}
		int rc = CLI_OK;
		ssize_t got = 0;
		if (!S_ISREG(sb.st_mode)) {
			cli_error("the training log %s is not a regular file: a resumed run rewrites it", path);
			rc = CLI_USAGE;
		} else if ((uint64_t)sb.st_size > LOG_MAX_BYTES) {
			cli_error("the training log %s is %llu bytes, more than the %llu a log is read to", path,
			          (unsigned long long)sb.st_size, (unsigned long long)LOG_MAX_BYTES);
			rc = CLI_USAGE;
		} else if (!(ps->old_log = malloc((size_t)sb.st_size + 1))) {
			cli_error("out of memory for the training log %s", path);
			rc = CLI_FAILED;
		}
		while (!rc && got < sb.st_size) {
			ssize_t n = read(fd, ps->old_log + got, (size_t)(sb.st_size - got));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				cli_error("cannot read the training log %s: %s", path, n ? strerror(errno) : "it shrank");
				rc = CLI_FAILED;
			}
			got += n > 0 ? n : 0;
		}
		close(fd);
		if (rc) {
			free(ps->old_log);
			ps->old_log = NULL;
			return rc;
		}
		ps->old_log[got] = '\0';
		ps->old_mode = sb.st_mode & 07777;
		ps->log_pending = true;
		return CLI_OK;
	}
	ps->log = fopen(path, "w");
	if (!ps->log) {
		cli_error("cannot write the training log %s: %s", path, strerror(errno));
		return CLI_FAILED;
	}
	fputs(ps->header, ps->log);
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
	if (o->deterministic)
		fprintf(stderr, " --deterministic");
	if (o->shards > 0)
		fprintf(stderr, " --shards %lld", (long long)o->shards);
	if (o->balance)
		fprintf(stderr, " --balance %s", o->balance);
	fputc('\n', stderr);
}

/* Joins the MPI job when there is one (*dist NULL otherwise) and gives each rank its device:
 * --device's {rank} and {local_rank} replaced, in `device`. */
static int open_dist(cli_context *ctx, st_dist **dist, char *device, size_t size)
{
	const cli_options *o = &ctx->opt;
	bool balance = false;
	if (o->balance && strcmp(o->balance, "even") && !(balance = !strcmp(o->balance, "auto"))) {
		cli_error("--balance: '%s' is neither even nor auto", o->balance);
		return CLI_USAGE;
	}
	if (o->shards > 0 && !o->deterministic) {
		cli_error("--shards is --deterministic's: add --deterministic");
		return CLI_USAGE;
	}
	if (balance && o->deterministic) {
		cli_error("--balance auto and --deterministic do not go together: deterministic shards are even");
		return CLI_USAGE;
	}
	st_dist_options dopt = {.deterministic = o->deterministic,
	                        .shards = o->shards > 0 ? (uint32_t)o->shards : 0,
	                        .balance = balance,
	                        .timeout_seconds = o->collective_timeout > 0 ? (double)o->collective_timeout : 0};
	char message[512];
	if (st_dist_open(&dopt, dist, message, sizeof(message))) {
		cli_error("%s", message);
		return CLI_FAILED;
	}
	if (o->device && strchr(o->device, '{')) {
		if (!st_dist_device(o->device, st_dist_rank(*dist), st_dist_local_rank(*dist), device, size)) {
			cli_error("--device '%s': only {rank} and {local_rank} are replaced", o->device);
			return CLI_USAGE;
		}
		ctx->opt.device = device;
	}
	return CLI_OK;
}

int cmd_train(cli_context *ctx)
{
	st_dist *dist = NULL;
	char device[256];
	int rc = open_dist(ctx, &dist, device, sizeof(device));
	if (rc) {
		st_dist_close(dist);
		return cli_close(ctx, rc);
	}
	/* Rank 0 speaks for the job; the others train quietly (their errors still reach stderr). */
	bool lead = st_dist_rank(dist) == 0;
	if (!lead) {
		ctx->opt.save = NULL;
		ctx->opt.log = NULL;
	}
	if ((rc = cli_open_model(ctx)) || (rc = cli_open_runtime(ctx))) {
		if (dist)
			st_dist_abort(dist, "could not open the model or its device (above)");
		return cli_close(ctx, rc);
	}
	strata_training_config tc = strata_model_training(ctx->model);
	const strata_device_info *dev = strata_runtime_device(ctx->rt);
	strata_session *s = NULL;
	strata_dataset *train = NULL, *val = NULL, *test = NULL;
	uint32_t batch = 0;
	progress_state ps = {.tty = lead && isatty(STDOUT_FILENO)};
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
	if (!ctx->opt.resume && taken[0] && lead)
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
		    (lead && (rc = cli_open_dataset(ctx, "train", n - held, held, train, &val))))
			goto out_free;
	}
	if (strata_model_data(ctx->model).test_images && lead) {
		if ((rc = cli_open_dataset(ctx, "test", 0, 0, train, &test)))
			goto out_free;
		if (!val)
			val = test;
	}

	uint32_t epochs = ctx->opt.epochs > 0 ? (uint32_t)ctx->opt.epochs : tc.epochs;
	/* Every rank's device, on rank 0's screen. */
	char *devices = NULL;
	if (dist) {
		char mine[256];
		snprintf(mine, sizeof(mine), "rank %u on %.80s: %.150s", st_dist_rank(dist), st_dist_host(dist), dev->name);
		devices = st_dist_gather_text(dist, mine);
	}
	strata_parallel solo = {.rank = 0, .ranks = 1,
	                        .shards = st_dist_shards(ctx->opt.shards > 0 ? (uint32_t)ctx->opt.shards : 0, 1)};
	const strata_parallel *par = dist ? st_dist_parallel(dist) : ctx->opt.deterministic ? &solo : NULL;
	if (lead) {
		printf("Training %s on %s: %u samples, batch %u, %u epochs, seed %llu", strata_model_name(ctx->model),
		       dist ? "several ranks" : dev->name, strata_dataset_count(train), batch, epochs,
		       (unsigned long long)(ctx->opt.seed >= 0 ? (uint64_t)ctx->opt.seed : tc.seed));
		if (par)
			printf(", %u rank%s", par->ranks, par->ranks == 1 ? "" : "s");
		if (par && par->shards)
			printf(", deterministic: %u shards a batch", par->shards);
		printf("\n");
		for (uint32_t r = 0; devices && r < st_dist_ranks(dist); r++)
			printf("  %s\n", devices + (size_t)r * 256);
	}
	free(devices);
	make_header(&ps, ctx->model);
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
		.progress = lead ? show : NULL,
		.epoch_end = lead ? log_epoch : NULL,
		.progress_user = &ps,
		.progress_interval = 0.5,
		.stop = (const volatile int *)&stop_requested,
		.parallel = par,
	};
	strata_error err = {0};
	if (strata_fit(s, train, val, &fo, &err) != STRATA_OK) {
		/* One rank failing (its device lost, its disk full) ends them all, naming it; a stop
		 * reached every rank at the same step, and each goes as one process does. */
		if (dist && err.status != STRATA_ERR_INTERRUPTED)
			st_dist_abort(dist, err.message);
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
	if (dist && ctx->opt.profile)
		st_dist_report(dist, stdout);
	if (test && (rc = cli_print_evaluation(ctx->model, s, test, batch, NULL)))
		goto out_free;
	if (ctx->opt.save)
		printf("Weights saved to %s\n", ctx->opt.save);
	rc = ps.log_failed ? CLI_FAILED : CLI_OK;
out_free:
	if (ps.log && fclose(ps.log) != 0 && rc == CLI_OK) {
		cli_error("cannot write the training log %s: %s", ps.log_path, strerror(errno));
		rc = CLI_FAILED;
	}
	free(ps.old_log);
	if (val != test)
		strata_dataset_free(val);
	strata_dataset_free(test);
	strata_dataset_free(train);
	strata_session_destroy(s);
	rc = cli_close(ctx, rc);
	st_dist_close(dist);
	return rc;
}
