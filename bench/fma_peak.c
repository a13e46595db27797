/* The machine's float32 peak (issue 19): every core running a register-only loop of fused
 * multiply-adds on the widest vectors the compiler targets (-march=native), with enough
 * independent accumulators to keep every FMA unit busy through the instruction's latency. Prints
 * GFLOP/s (2 per FMA lane) per thread count, the yardstick `strata bench` figures are a fraction
 * of. Built and run by bench/peak.sh.
 *
 * Usage: fma_peak [THREADS] (default: every online core). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__AVX512F__)
#define LANES 16
#elif defined(__AVX__)
#define LANES 8
#else
#define LANES 4
#endif
#define CHAINS 12       /* independent accumulators: 2 FMA ports x a 4-5 cycle latency, and more */
#define ITERATIONS 400000000L

typedef float vec __attribute__((vector_size(LANES * sizeof(float))));

typedef struct work {
	float seed;
	double seconds;
	float sink;
} work;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Twelve accumulators as named variables, so each lives in a register; the empty asm keeps the
 * compiler from folding the chains together or out of the loop. */
#define STEP(x) x = x * m + b
static void *run(void *arg)
{
	work *w = arg;
	vec m, b;
	for (int l = 0; l < LANES; l++) {
		m[l] = 0.999999f;
		b[l] = w->seed * 1e-7f;
	}
	vec x0 = m, x1 = m * 2, x2 = m * 3, x3 = m * 4, x4 = m * 5, x5 = m * 6;
	vec x6 = m * 7, x7 = m * 8, x8 = m * 9, x9 = m * 10, x10 = m * 11, x11 = m * 12;
	double t0 = now_s();
	for (long i = 0; i < ITERATIONS; i++) {
		STEP(x0);
		STEP(x1);
		STEP(x2);
		STEP(x3);
		STEP(x4);
		STEP(x5);
		STEP(x6);
		STEP(x7);
		STEP(x8);
		STEP(x9);
		STEP(x10);
		STEP(x11);
		__asm__ volatile("" : "+v"(x0), "+v"(x1), "+v"(x2), "+v"(x3), "+v"(x4), "+v"(x5));
		__asm__ volatile("" : "+v"(x6), "+v"(x7), "+v"(x8), "+v"(x9), "+v"(x10), "+v"(x11));
	}
	w->seconds = now_s() - t0;
	vec s = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11;
	for (int l = 0; l < LANES; l++)
		w->sink += s[l];
	return NULL;
}

int main(int argc, char **argv)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	long threads = argc > 1 ? strtol(argv[1], NULL, 10) : cores;
	if (threads < 1 || threads > 1024) {
		fprintf(stderr, "usage: fma_peak [THREADS]\n");
		return 2;
	}
	pthread_t t[1024];
	work w[1024];
	double t0 = now_s();
	for (long i = 0; i < threads; i++) {
		w[i] = (work){.seed = (float)(i + 1)};
		pthread_create(&t[i], NULL, run, &w[i]);
	}
	float sink = 0;
	for (long i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		sink += w[i].sink;
	}
	double wall = now_s() - t0;
	double flops = 2.0 * LANES * CHAINS * (double)ITERATIONS * (double)threads;
	printf("%ld thread%s, %d-float vectors, %d chains: %.1f GFLOP/s (%.2f s; %g)\n", threads,
	       threads == 1 ? "" : "s", LANES, CHAINS, flops / wall / 1e9, wall, (double)sink * 0);
	return 0;
}
