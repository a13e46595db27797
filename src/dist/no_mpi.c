/* dist.h without MPI (built with -Dmpi=disabled, or where Open MPI is missing): every process
 * trains alone. A process that mpirun started as one of several ranks is refused rather than
 * left to train the whole model alone, as many times over as there are ranks. */
#include <stdio.h>
#include <stdlib.h>

#include "dist/dist.h"

/* The job size Open MPI, MPICH and Slurm tell their processes. */
static long job_size(void)
{
	static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);
		if (v && *v)
			return strtol(v, NULL, 10);
	}
	return 1;
}

int st_dist_open(const st_dist_options *o, st_dist **out, char *message, size_t size)
{
	(void)o;
	*out = NULL;
	long n = job_size();
	if (n > 1) {
		snprintf(message, size,
		         "started as one of %ld ranks, but this strata was built without MPI: install Open MPI "
		         "(libopenmpi-dev) and build with -Dmpi=enabled",
		         n);
		return 1;
	}
	return 0;
}

uint32_t st_dist_rank(const st_dist *d)
{
	(void)d;
	return 0;
}

uint32_t st_dist_ranks(const st_dist *d)
{
	(void)d;
	return 1;
}

uint32_t st_dist_local_rank(const st_dist *d)
{
	(void)d;
	return 0;
}

const char *st_dist_host(const st_dist *d)
{
	(void)d;
	return "localhost";
}

const strata_parallel *st_dist_parallel(st_dist *d)
{
	(void)d;
	return NULL;
}

char *st_dist_gather_text(st_dist *d, const char *text)
{
	(void)d;
	(void)text;
	return NULL;
}

void st_dist_abort(st_dist *d, const char *message)
{
	(void)d;
	fprintf(stderr, "strata: %s\n", message);
	exit(1);
}

void st_dist_report(st_dist *d, FILE *out)
{
	(void)d;
	(void)out;
}

void st_dist_close(st_dist *d)
{
	(void)d;
}
