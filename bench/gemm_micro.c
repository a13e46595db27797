/* Times cl/gemm.cl's gemm_tile on one GEMM shape, outside Strata, so that a change to the kernel
 * can be measured in seconds: C (M x N) = A (M x K) B (K x N), row-major, A read as a plain
 * matrix (or transposed with -t), one split unless -s says more (then without gemm_reduce: the
 * partial products are timed, as the split GEMM's main launch). Prints the best of the runs in
 * ms and GFLOP/s, and checks 256 sampled elements of C against a double-precision product (a
 * split run checks the first split's partial products).
 * Build and run: bench/gemm_micro.sh (it passes -D options such as MR=6 NV=1).
 * With -w H W C KW, A is the im2col matrix of M / ((H - KW + 1) (W - KW + 1)) images of H x W x C
 * (NHWC) for a KW x KW kernel at stride 1, read in place (WINDOW 1, or 2 with -t), K = KW KW C.
 * Usage: gemm_micro GEMM.cl M N K MR NV [-t] [-s SPLITS] [-r RUNS] [-w H W C KW] */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void check(cl_int rc, const char *what)
{
	if (rc != CL_SUCCESS) {
		fprintf(stderr, "gemm_micro: %s failed: OpenCL error %d\n", what, rc);
		exit(1);
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	if (!s || fread(s, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "gemm_micro: cannot read %s\n", path);
		exit(1);
	}
	s[n] = '\0';
	fclose(f);
	return s;
}

/* Where A's element (row, col) of op(A) is: a matrix, or the im2col matrix read in place. */
static size_t a_index(int row, int col, int trans_a, int M, int K, int wh, int ww, int wc, int wkw)
{
	if (!wkw)
		return trans_a ? (size_t)col * M + row : (size_t)row * K + col;
	int p = trans_a ? col : row, q = trans_a ? row : col; /* window p, element q */
	int oh = wh - wkw + 1, ow = ww - wkw + 1;
	int n = p / (oh * ow), oy = p % (oh * ow) / ow, ox = p % ow;
	int ky = q / (wkw * wc), kx = q / wc % wkw, c = q % wc;
	return (((size_t)n * wh + oy + ky) * ww + ox + kx) * wc + c;
}

int main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: gemm_micro GEMM.cl M N K MR NV [-t] [-s SPLITS] [-r RUNS]\n");
		return 2;
	}
	int M = atoi(argv[2]), N = atoi(argv[3]), K = atoi(argv[4]), mr = atoi(argv[5]), nv = atoi(argv[6]);
	int trans_a = 0, splits = 1, runs = 10, wh = 0, ww = 0, wc = 0, wkw = 0;
	for (int i = 7; i < argc; i++) {
		if (!strcmp(argv[i], "-t"))
			trans_a = 1;
		else if (!strcmp(argv[i], "-s") && i + 1 < argc)
			splits = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-r") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-w") && i + 4 < argc) {
			wh = atoi(argv[++i]);
			ww = atoi(argv[++i]);
			wc = atoi(argv[++i]);
			wkw = atoi(argv[++i]);
		}
	}
	if (M < 1 || N < 1 || K < 1 || mr < 1 || nv < 1 || splits < 1 || runs < 1) {
		fprintf(stderr, "gemm_micro: sizes must be positive\n");
		return 2;
	}
	int woh = wkw ? wh - wkw + 1 : 0, wow = wkw ? ww - wkw + 1 : 0;
	int windows = trans_a ? K : M, elems = trans_a ? M : K;
	if (wkw && (woh < 1 || wow < 1 || elems != wkw * wkw * wc || windows % (woh * wow))) {
		fprintf(stderr, "gemm_micro: -w does not describe an im2col matrix of this shape\n");
		return 2;
	}
	int window = wkw ? 1 + trans_a : 0;
	cl_platform_id platform;
	cl_device_id device;
	cl_int rc;
	check(clGetPlatformIDs(1, &platform, NULL), "clGetPlatformIDs");
	check(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL), "clGetDeviceIDs");
	cl_context ctx = clCreateContext(NULL, 1, &device, NULL, NULL, &rc);
	check(rc, "clCreateContext");
	cl_command_queue q = clCreateCommandQueue(ctx, device, 0, &rc);
	check(rc, "clCreateCommandQueue");
	const char *src = slurp(argv[1]);
	cl_program prog = clCreateProgramWithSource(ctx, 1, &src, NULL, &rc);
	check(rc, "clCreateProgramWithSource");
	char opts[128];
	snprintf(opts, sizeof(opts), "-DMR=%d -DNV=%d -DWINDOW=%d", mr, nv, window);
	if (clBuildProgram(prog, 1, &device, opts, NULL, NULL) != CL_SUCCESS) {
		char log[16384] = "";
		clGetProgramBuildInfo(prog, device, CL_PROGRAM_BUILD_LOG, sizeof(log) - 1, log, NULL);
		fprintf(stderr, "gemm_micro: build failed:\n%s\n", log);
		return 1;
	}
	cl_kernel k = clCreateKernel(prog, "gemm_tile", &rc);
	check(rc, "clCreateKernel");

	size_t na = wkw ? (size_t)(windows / (woh * wow)) * wh * ww * wc : (size_t)M * K, nb = (size_t)K * N, nc = (size_t)splits * M * N;
	float *a = malloc(na * sizeof(float)), *b = malloc(nb * sizeof(float)), *c = malloc(nc * sizeof(float));
	if (!a || !b || !c)
		return 1;
	srand(1);
	for (size_t i = 0; i < na; i++)
		a[i] = (float)rand() / RAND_MAX - 0.5f;
	for (size_t i = 0; i < nb; i++)
		b[i] = (float)rand() / RAND_MAX - 0.5f;
	cl_mem da = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, na * sizeof(float), a, &rc);
	check(rc, "clCreateBuffer A");
	cl_mem db = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, nb * sizeof(float), b, &rc);
	check(rc, "clCreateBuffer B");
	cl_mem dc = clCreateBuffer(ctx, CL_MEM_READ_WRITE, nc * sizeof(float), NULL, &rc);
	check(rc, "clCreateBuffer C");
	int kc = (K + splits - 1) / splits, zero = 0, ars = trans_a ? 1 : K, acs = trans_a ? M : 1, ldc = N;
	int stride = M * N;
	float alpha = 1.0f, beta = 0.0f;
	int arg = 0;
	check(clSetKernelArg(k, arg++, sizeof(int), &M), "arg");
	check(clSetKernelArg(k, arg++, sizeof(int), &N), "arg");
	check(clSetKernelArg(k, arg++, sizeof(int), &K), "arg");
	check(clSetKernelArg(k, arg++, sizeof(int), &kc), "arg");
	check(clSetKernelArg(k, arg++, sizeof(cl_mem), &da), "arg");
	check(clSetKernelArg(k, arg++, sizeof(int), &zero), "arg");
	check(clSetKernelArg(k, arg++, sizeof(int), &ars), "arg");
	check(clSetKernelArg(k, arg++, sizeof(int), &acs), "arg");
	check(clSetKernelArg(k, arg++, sizeof(cl_mem), &db), "arg");
	check(clSetKernelArg(k, arg++, sizeof(int), &zero), "arg");
	check(clSetKernelArg(k, arg++, sizeof(int), &N), "arg");
	check(clSetKernelArg(k, arg++, sizeof(cl_mem), &dc), "arg");
	check(clSetKernelArg(k, arg++, sizeof(int), &zero), "arg");
	check(clSetKernelArg(k, arg++, sizeof(int), &ldc), "arg");
	check(clSetKernelArg(k, arg++, sizeof(int), &stride), "arg");
	check(clSetKernelArg(k, arg++, sizeof(float), &alpha), "arg");
	check(clSetKernelArg(k, arg++, sizeof(float), &beta), "arg");
	int one_stride = 1, geometry[8] = {wh, ww, wc, wkw, one_stride, one_stride, woh, wow};
	for (int i = 0; i < 8; i++) /* the window's geometry: unused for a plain A */
		check(clSetKernelArg(k, arg++, sizeof(int), &geometry[i]), "arg");
	check(clSetKernelArg(k, arg++, sizeof(cl_mem), &dc), "arg"); /* the bias: unread without -DBIAS */
	size_t nr = 16u * (size_t)nv, tiles = ((size_t)M + mr - 1) / mr;
	size_t global[3] = {((size_t)N + nr - 1) / nr, tiles < 256 ? tiles : 256, (size_t)splits}, one[3] = {1, 1, 1};
	double best = 1e30;
	for (int r = 0; r < runs; r++) {
		double t0 = now_s();
		check(clEnqueueNDRangeKernel(q, k, 3, NULL, global, one, 0, NULL, NULL), "clEnqueueNDRangeKernel");
		check(clFinish(q), "clFinish");
		double dt = now_s() - t0;
		best = dt < best ? dt : best;
	}
	check(clEnqueueReadBuffer(q, dc, CL_TRUE, 0, (size_t)M * N * sizeof(float), c, 0, NULL, NULL), "read C");
	double worst = 0;
	for (int s = 0; s < 256; s++) {
		int i = rand() % M, j = rand() % N;
		double want = 0;
		for (int x = 0; x < kc && x < K; x++)
			want += (double)a[a_index(i, x, trans_a, M, K, wh, ww, wc, wkw)] *
			        b[(size_t)x * N + j];
		double d = fabs(want - c[(size_t)i * N + j]);
		worst = d > worst ? d : worst;
	}
	double flop = 2.0 * M * N * K;
	printf("M=%d N=%d K=%d MR=%d NV=%d%s splits=%d: %.3f ms, %.1f GFLOP/s, largest error %.2g\n", M, N, K, mr, nv,
	       trans_a ? " A^T" : "", splits, best * 1e3, flop / best / 1e9, worst);
	return worst < 1e-3 * sqrt((double)K) ? 0 : 1;
}
