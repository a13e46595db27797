/* `strata train` over several processes (issue 18): the transport behind strata_parallel. With
 * MPI (Open MPI, `-Dmpi=auto`, mpi_dist.c) a process started by mpirun joins its job: gradients
 * summed by MPI_Allreduce (or gathered, for deterministic shards), the global batch split evenly
 * or by measured speed (--balance auto), every collective bounded by a timeout, and a failing rank
 * ends the job with a message naming its rank, host and cause. Without MPI (no_mpi.c) every
 * process trains alone and a process started by a multi-rank mpirun is refused. Uses only the
 * public API (strata.h) and MPI; the CLI calls it, nothing below calls back. */
#ifndef ST_DIST_H
#define ST_DIST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <strata/strata.h>

typedef struct st_dist st_dist;

typedef struct st_dist_options {
	bool deterministic;        /* shards summed in shard order (strata_parallel.shards) */
	uint32_t shards;           /* 0: 4, or the number of ranks where it does not divide 4 */
	bool balance;              /* split each batch by the ranks' measured speed */
	double timeout_seconds;    /* a collective waiting longer ends the job (0: 60) */
} st_dist_options;

/* Joins the MPI job this process was started in (*out NULL when it was not, or it has one
 * process); 0, or non-zero with `message` (a job of several ranks without MPI built in). */
int st_dist_open(const st_dist_options *o, st_dist **out, char *message, size_t size);
uint32_t st_dist_rank(const st_dist *d);
uint32_t st_dist_ranks(const st_dist *d);
uint32_t st_dist_local_rank(const st_dist *d); /* among the ranks on this host */
const char *st_dist_host(const st_dist *d);
/* The strata_parallel of this rank, for strata_fit_options.parallel. */
const strata_parallel *st_dist_parallel(st_dist *d);
/* `text` from every rank, in rank order, to rank 0 (others get NULL): for the lines that say which
 * device each rank trains on. Free the result. */
char *st_dist_gather_text(st_dist *d, const char *text);
/* Ends every rank of the job: prints "strata: rank R on HOST: message" and aborts with status 1. */
void st_dist_abort(st_dist *d, const char *message) __attribute__((noreturn));
/* Per rank, on rank 0's `out` (a collective: every rank calls it): the steps, the compute and
 * the collectives' time per step. */
void st_dist_report(st_dist *d, FILE *out);
/* Leaves the job (MPI_Finalize) and frees `d`; NULL is a no-op. */
void st_dist_close(st_dist *d);

/* `selector` with {rank} and {local_rank} replaced (gpu:{local_rank} -> gpu:1) into buf; false
 * when it does not fit or names another brace. */
bool st_dist_device(const char *selector, uint32_t rank, uint32_t local_rank, char *buf, size_t size);

/* The shards of a deterministic run over `ranks` ranks: `asked`, or 4 where `ranks` divides it,
 * else `ranks`; 0 when `asked` is not a multiple of `ranks`. */
uint32_t st_dist_shards(uint32_t asked, uint32_t ranks);

#endif
