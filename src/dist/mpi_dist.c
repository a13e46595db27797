/* dist.h over MPI (Open MPI from Debian: openmpi-bin, libopenmpi-dev). Only the main thread
 * calls MPI (MPI_THREAD_FUNNELED: PoCL's and the server's threads never do). Every collective is
 * started non-blocking and polled, so a rank that died or hangs is noticed after the timeout
 * instead of leaving the others blocked forever; MPI errors are returned (MPI_ERRORS_RETURN) and
 * reported with the rank and host, then the job is aborted. */
#include <math.h>
#include <mpi.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/dist.h"

struct st_dist {
	int rank, ranks, local_rank;
	char host[MPI_MAX_PROCESSOR_NAME];
	double timeout;
	bool balance;
	strata_parallel par;
	double *speeds;   /* --balance auto: each rank's samples per second, smoothed; 0 unknown */
	double *exchange; /* per rank: its last step's seconds and samples */
	uint32_t *last;   /* the counts of the last step */
	double *frac;     /* split's remainders, one per rank */
	/* For st_dist_report: gradient exchanges, time in every collective, and time between them
	 * (computing). A step's gradients are the first floats a rank sums or gathers (the epoch's
	 * figures come after its steps), and every step's are as many: `gradients` is their count. */
	uint64_t exchanges;
	size_t gradients;
	double collective_seconds, compute_seconds, last_end;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* "MPI_Allreduce: <MPI's message>" into err. */
static strata_status mpi_fail(strata_error *err, const char *what, int rc)
{
	char text[MPI_MAX_ERROR_STRING];
	int len = 0;
	if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
		snprintf(text, sizeof(text), "error %d", rc);
	if (err) {
		err->status = STRATA_ERR_IO;
		snprintf(err->message, sizeof(err->message), "%s failed: %s", what, text);
	}
	return STRATA_ERR_IO;
}

/* Polls `req` until it completes or the timeout passes. A non-blocking collective advances only
 * inside MPI calls (a large allreduce is many rounds), so the first second is spent testing
 * without pause, yielding the core now and then to a rank that shares it (an oversubscribed
 * host); past it (a rank far behind, or gone), a test every millisecond. */
static strata_status wait_for(st_dist *d, MPI_Request *req, const char *what, strata_error *err)
{
	double t0 = now_s();
	if (d->last_end > 0)
		d->compute_seconds += t0 - d->last_end;
	for (unsigned turn = 1;; turn++) {
		int done = 0;
		int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
		if (rc != MPI_SUCCESS)
			return mpi_fail(err, what, rc);
		if (done)
			break;
		if (turn % 64)
			continue;
		double waited = now_s() - t0;
		if (waited > d->timeout) {
			if (err) {
				err->status = STRATA_ERR_IO;
				snprintf(err->message, sizeof(err->message),
				         "%s waited more than %g s for the other ranks (--collective-timeout): one of them died, "
				         "hangs, or is far slower",
				         what, d->timeout);
			}
			return STRATA_ERR_IO;
		}
		if (waited > 1.0)
			nanosleep(&(struct timespec){.tv_nsec = 1000 * 1000}, NULL);
		else
			sched_yield();
	}
	d->last_end = now_s();
	d->collective_seconds += d->last_end - t0;
	return STRATA_OK;
}

static void count_exchange(st_dist *d, size_t count)
{
	if (!d->gradients)
		d->gradients = count;
	d->exchanges += count == d->gradients;
}

static strata_status sum(void *user, float *values, size_t count, strata_error *err)
{
	st_dist *d = user;
	if (count > INT32_MAX)
		return mpi_fail(err, "MPI_Iallreduce of more than 2^31 floats", MPI_ERR_COUNT);
	MPI_Request req;
	count_exchange(d, count);
	int rc = MPI_Iallreduce(MPI_IN_PLACE, values, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
	return rc != MPI_SUCCESS ? mpi_fail(err, "MPI_Iallreduce", rc) : wait_for(d, &req, "the gradients' sum", err);
}

static strata_status gather(void *user, const float *mine, size_t count, float *all, strata_error *err)
{
	st_dist *d = user;
	if (count > INT32_MAX)
		return mpi_fail(err, "MPI_Iallgather of more than 2^31 floats", MPI_ERR_COUNT);
	MPI_Request req;
	count_exchange(d, count);
	int rc = MPI_Iallgather(mine, (int)count, MPI_FLOAT, all, (int)count, MPI_FLOAT, MPI_COMM_WORLD, &req);
	return rc != MPI_SUCCESS ? mpi_fail(err, "MPI_Iallgather", rc) : wait_for(d, &req, "the shards' gather", err);
}

/* --balance auto: every rank's seconds and samples of the last step to every rank, a smoothed
 * speed per rank, and counts in proportion to the speeds (largest remainders, at least one sample
 * each): the same arithmetic on the same numbers, so every rank arrives at the same counts. Until
 * each rank's speed is known, even slices. */
static void split(void *user, uint32_t n, double seconds, uint32_t *counts)
{
	st_dist *d = user;
	uint32_t r, ranks = (uint32_t)d->ranks;
	double mine[2] = {seconds, (double)d->last[d->rank]};
	MPI_Request req;
	strata_error err = {0};
	int rc = MPI_Iallgather(mine, 2, MPI_DOUBLE, d->exchange, 2, MPI_DOUBLE, MPI_COMM_WORLD, &req);
	if (rc != MPI_SUCCESS)
		mpi_fail(&err, "MPI_Iallgather", rc);
	if (rc != MPI_SUCCESS || wait_for(d, &req, "the ranks' speeds", &err) != STRATA_OK)
		st_dist_abort(d, err.message);
	bool known = true;
	double total = 0;
	for (r = 0; r < ranks; r++) {
		double s = d->exchange[2 * r], c = d->exchange[2 * r + 1];
		if (s > 0 && c > 0)
			d->speeds[r] = d->speeds[r] > 0 ? 0.7 * d->speeds[r] + 0.3 * (c / s) : c / s;
		known &= d->speeds[r] > 0;
		total += d->speeds[r];
	}
	if (!known || n < ranks) {
		for (r = 0; r < ranks; r++)
			counts[r] = n / ranks + (r < n % ranks);
	} else {
		/* One sample each, then the rest by share; what rounding leaves to the largest remainders. */
		uint32_t given = 0, rest = n - ranks;
		double *frac = d->frac;
		for (r = 0; r < ranks; r++) {
			double exact = rest * d->speeds[r] / total;
			counts[r] = 1 + (uint32_t)floor(exact);
			given += counts[r];
			frac[r] = exact - floor(exact);
		}
		while (given < n) {
			uint32_t best = 0;
			for (r = 1; r < ranks; r++)
				if (frac[r] > frac[best])
					best = r;
			counts[best]++;
			frac[best] = -1;
			given++;
		}
	}
	memcpy(d->last, counts, ranks * sizeof(*counts));
}

/* The rank among those on this host: the ranks of a shared-memory communicator. */
static int local_rank_of(void)
{
	MPI_Comm local;
	int rank = 0;
	if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
		MPI_Comm_rank(local, &rank);
		MPI_Comm_free(&local);
	}
	return rank;
}

static bool in_job(void)
{
	static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (getenv(vars[i]) && *getenv(vars[i]))
			return true;
	return false;
}

int st_dist_open(const st_dist_options *o, st_dist **out, char *message, size_t size)
{
	*out = NULL;
	/* A plain `strata train` stays a plain process: MPI only under a launcher. */
	if (!in_job())
		return 0;
	int provided = 0;
	if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
		snprintf(message, size, "MPI_Init_thread failed");
		return 1;
	}
	MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
	int ranks = 1;
	MPI_Comm_size(MPI_COMM_WORLD, &ranks);
	if (ranks < 2) {
		MPI_Finalize();
		return 0;
	}
	st_dist *d = calloc(1, sizeof(*d));
	if (d) {
		d->speeds = calloc((size_t)ranks, sizeof(*d->speeds));
		d->exchange = calloc(2 * (size_t)ranks, sizeof(*d->exchange));
		d->last = calloc((size_t)ranks, sizeof(*d->last));
		d->frac = calloc((size_t)ranks, sizeof(*d->frac));
	}
	if (!d || !d->speeds || !d->exchange || !d->last || !d->frac) {
		snprintf(message, size, "out of memory");
		if (d)
			st_dist_close(d); /* and MPI_Finalize */
		else
			MPI_Finalize();
		return 1;
	}
	MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
	d->ranks = ranks;
	d->local_rank = local_rank_of();
	int len = 0;
	if (MPI_Get_processor_name(d->host, &len) != MPI_SUCCESS)
		snprintf(d->host, sizeof(d->host), "?");
	d->timeout = o->timeout_seconds > 0 ? o->timeout_seconds : 60;
	d->balance = o->balance && !o->deterministic;
	uint32_t shards = o->deterministic ? st_dist_shards(o->shards, (uint32_t)ranks) : 0;
	if (o->deterministic && !shards) {
		snprintf(message, size, "--shards %u is not a multiple of the %d ranks", o->shards, ranks);
		st_dist_close(d);
		return 1;
	}
	d->par = (strata_parallel){
		.rank = (uint32_t)d->rank,
		.ranks = (uint32_t)ranks,
		.user = d,
		.sum = sum,
		.split = d->balance ? split : NULL,
		.shards = shards,
		.gather = gather,
	};
	*out = d;
	return 0;
}

uint32_t st_dist_rank(const st_dist *d)
{
	return d ? (uint32_t)d->rank : 0;
}

uint32_t st_dist_ranks(const st_dist *d)
{
	return d ? (uint32_t)d->ranks : 1;
}

uint32_t st_dist_local_rank(const st_dist *d)
{
	return d ? (uint32_t)d->local_rank : 0;
}

const char *st_dist_host(const st_dist *d)
{
	return d ? d->host : "localhost";
}

const strata_parallel *st_dist_parallel(st_dist *d)
{
	return d ? &d->par : NULL;
}

char *st_dist_gather_text(st_dist *d, const char *text)
{
	enum { WIDTH = 256 };
	char mine[WIDTH];
	snprintf(mine, sizeof(mine), "%s", text);
	char *all = d->rank == 0 ? calloc((size_t)d->ranks, WIDTH) : NULL;
	if (d->rank == 0 && !all)
		st_dist_abort(d, "out of memory");
	MPI_Request req;
	strata_error err = {0};
	int rc = MPI_Igather(mine, WIDTH, MPI_CHAR, all, WIDTH, MPI_CHAR, 0, MPI_COMM_WORLD, &req);
	if (rc != MPI_SUCCESS)
		mpi_fail(&err, "MPI_Igather", rc);
	if (rc != MPI_SUCCESS || wait_for(d, &req, "the ranks' devices", &err) != STRATA_OK)
		st_dist_abort(d, err.message);
	return all;
}

void st_dist_abort(st_dist *d, const char *message)
{
	fprintf(stderr, "strata: rank %d of %d on %s: %s\n", d ? d->rank : 0, d ? d->ranks : 1, st_dist_host(d),
	        message);
	fflush(stderr);
	MPI_Abort(MPI_COMM_WORLD, 1);
	exit(1);
}

void st_dist_report(st_dist *d, FILE *out)
{
	double mine[3] = {(double)d->exchanges, d->compute_seconds, d->collective_seconds};
	double *all = d->rank == 0 ? calloc(3 * (size_t)d->ranks, sizeof(double)) : NULL;
	if (d->rank == 0 && !all)
		return;
	MPI_Request req;
	strata_error err = {0};
	if (MPI_Igather(mine, 3, MPI_DOUBLE, all, 3, MPI_DOUBLE, 0, MPI_COMM_WORLD, &req) != MPI_SUCCESS ||
	    wait_for(d, &req, "the ranks' figures", &err) != STRATA_OK) {
		free(all);
		return;
	}
	for (int r = 0; all && r < d->ranks; r++) {
		double n = all[3 * r] > 0 ? all[3 * r] : 1;
		double busy = all[3 * r + 1] + all[3 * r + 2];
		fprintf(out, "rank %d: %.0f gradient exchanges; per step, computing %.2f ms, in collectives %.2f ms (%.1f%%)\n",
		        r, all[3 * r], 1e3 * all[3 * r + 1] / n, 1e3 * all[3 * r + 2] / n,
		        100 * all[3 * r + 2] / (busy > 0 ? busy : 1));
	}
	free(all);
}

void st_dist_close(st_dist *d)
{
	if (!d)
		return;
	free(d->speeds);
	free(d->exchange);
	free(d->last);
	free(d->frac);
	free(d);
	MPI_Finalize();
}
