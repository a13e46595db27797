/* Strata's own SGEMM (src/gemm_tile.c, cl/gemm.cl) against a double-precision host product:
 * every transpose combination, alpha and beta (beta 0 must not read C), offsets and leading
 * dimensions wider than the matrices, blocks cut by M and N, K splits, explicit block shapes,
 * an A read in place as the im2col matrix of images; and the engine switch (STRATA_GEMM). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm/gemm.h"
#include "plugin/registry.h"
#include "device/runtime.h"
#include "support.h"

#define GUARD 37 /* floats before and after C's rows that no kernel may touch */

static strata_tensor upload(strata_runtime *rt, const float *host, size_t n)
{
	strata_tensor t;
	strata_error err = {0};
	ck_assert_msg(st_tensor_alloc(rt, &t, n * sizeof(float), "test", &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(st_tensor_write(rt, &t, 0, host, n * sizeof(float), &err) == STRATA_OK, "%s", err.message);
	return t;
}

/* One case: op(A) is m x k, op(B) k x n; stored with padded leading dimensions and offsets. */
typedef struct gemm_case {
	bool ta, tb;
	size_t m, n, k;
	float alpha, beta;
	const st_gemm_tile_plan *plan; /* NULL: the default plan */
} gemm_case;

static void check_case(const ts_device *dev, const gemm_case *c)
{
	size_t a_rows = c->ta ? c->k : c->m, a_cols = c->ta ? c->m : c->k;
	size_t b_rows = c->tb ? c->n : c->k, b_cols = c->tb ? c->k : c->n;
	size_t lda = a_cols + 3, ldb = b_cols + 5, ldc = c->n + 2;
	size_t a_off = 11, b_off = 7, c_off = GUARD;
	size_t na = a_off + a_rows * lda, nb = b_off + b_rows * ldb, nc = c_off + c->m * ldc + GUARD;
	float *a = malloc(na * sizeof(float)), *b = malloc(nb * sizeof(float));
	float *c0 = malloc(nc * sizeof(float)), *got = malloc(nc * sizeof(float));
	ck_assert(a && b && c0 && got);
	ts_fill_random(a, na, 1, -1, 1);
	ts_fill_random(b, nb, 2, -1, 1);
	ts_fill_random(c0, nc, 3, -1, 1);
	if (c->beta == 0.0f)
		for (size_t i = 0; i < nc; i++)
			c0[i] = NAN; /* with beta 0, C's old contents must not reach the result */
	strata_tensor ta = upload(dev->rt, a, na), tb = upload(dev->rt, b, nb), tc = upload(dev->rt, c0, nc);
	strata_gemm g = {
		.size = sizeof(g), .trans_a = c->ta, .trans_b = c->tb, .m = c->m, .n = c->n, .k = c->k,
		.alpha = c->alpha, .beta = c->beta,
		.a = &ta, .a_offset = a_off, .lda = lda, .b = &tb, .b_offset = b_off, .ldb = ldb,
		.c = &tc, .c_offset = c_off, .ldc = ldc,
	};
	strata_error err = {0};
	ck_assert(st_gemm_tile_fits(&g));
	ck_assert_msg(st_gemm_tile_run(dev->rt, "test", &g, c->plan, NULL, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(st_tensor_read(dev->rt, &tc, 0, got, nc * sizeof(float), &err) == STRATA_OK, "%s", err.message);

	for (size_t i = 0; i < nc; i++) {
		size_t r = i < c_off ? 0 : (i - c_off) / ldc, col = i < c_off ? 0 : (i - c_off) % ldc;
		bool inside = i >= c_off && r < c->m && col < c->n;
		if (!inside) { /* guards and the padding between rows keep their bits */
			ck_assert_msg(memcmp(&got[i], &c0[i], sizeof(float)) == 0, "%zux%zux%zu: C[%zu] touched",
			              c->m, c->n, c->k, i);
			continue;
		}
		double want = c->beta == 0.0f ? 0.0 : (double)c->beta * c0[i], mag = fabs(want);
		for (size_t k = 0; k < c->k; k++) {
			double x = a[a_off + (c->ta ? k * lda + r : r * lda + k)];
			double y = b[b_off + (c->tb ? col * ldb + k : k * ldb + col)];
			want += (double)c->alpha * x * y;
			mag += fabs((double)c->alpha * x * y);
		}
		ck_assert_msg(fabs(got[i] - want) <= 1e-5 * mag + 1e-6,
		              "ta=%d tb=%d %zux%zux%zu: C(%zu,%zu) = %g, want %g", c->ta, c->tb, c->m, c->n, c->k, r,
		              col, got[i], want);
	}
	st_tensor_release(&ta);
	st_tensor_release(&tb);
	st_tensor_release(&tc);
	free(a);
	free(b);
	free(c0);
	free(got);
}

START_TEST(test_transposes_alpha_beta)
{
	ts_device dev = ts_device_open();
	const size_t shapes[][3] = {{13, 64, 9}, {7, 48, 33}, {30, 32, 17}, {5, 20, 4}, {9, 10, 3}, {1, 1, 1}};
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
		for (int t = 0; t < 4; t++) {
			gemm_case c = {.ta = t & 1, .tb = t & 2, .m = shapes[s][0], .n = shapes[s][1], .k = shapes[s][2],
			               .alpha = 1.0f, .beta = 0.0f};
			check_case(&dev, &c);
			c.alpha = -0.75f;
			c.beta = 1.5f;
			check_case(&dev, &c);
		}
	ts_device_close(&dev);
}
END_TEST

/* The long K of a kernel gradient is split, and the splits' partial products summed. */
START_TEST(test_split_k)
{
	ts_device dev = ts_device_open();
	strata_gemm probe = {.m = 9, .n = 32, .k = 5000};
	st_gemm_tile_plan p;
	st_gemm_tile_default_plan(&probe, dev.rt->float_lanes, &p);
	ck_assert_uint_gt(p.splits, 1);
	gemm_case c = {.ta = true, .m = 9, .n = 32, .k = 5000, .alpha = 0.5f, .beta = 2.0f};
	check_case(&dev, &c);
	c.beta = 0.0f;
	check_case(&dev, &c);
	/* more splits than K has rows for: the empty ones are dropped */
	st_gemm_tile_plan many = {.mr = 3, .nv = 1, .splits = 40};
	gemm_case d = {.m = 4, .n = 16, .k = 37, .alpha = 1.0f, .beta = 1.0f, .plan = &many};
	check_case(&dev, &d);
	ts_device_close(&dev);
}
END_TEST

/* Every block shape a tuner may choose gives the same product. */
START_TEST(test_block_shapes)
{
	ts_device dev = ts_device_open();
	const unsigned mrs[] = {1, 4, 6, 8, 16};
	for (size_t i = 0; i < sizeof(mrs) / sizeof(mrs[0]); i++)
		for (unsigned nv = 1; nv <= 4; nv++) {
			st_gemm_tile_plan p = {.mr = mrs[i], .nv = nv, .splits = 1 + (nv & 1) * 2};
			gemm_case c = {.m = 21, .n = 16 * nv + 16, .k = 19, .alpha = 1.0f, .beta = 0.25f, .plan = &p};
			check_case(&dev, &c);
		}
	ts_device_close(&dev);
}
END_TEST

START_TEST(test_default_plan_follows_n)
{
	st_gemm_tile_plan p;
	st_gemm_tile_default_plan(&(strata_gemm){.m = 73728, .n = 64, .k = 288}, 16, &p);
	ck_assert_uint_eq(p.nv, 4);
	ck_assert_uint_eq(p.splits, 1); /* a short K never splits */
	st_gemm_tile_default_plan(&(strata_gemm){.m = 73728, .n = 288, .k = 64}, 16, &p);
	ck_assert_uint_eq(p.nv, 3);
	st_gemm_tile_default_plan(&(strata_gemm){.m = 128, .n = 10, .k = 128}, 16, &p);
	ck_assert_uint_eq(p.nv, 1);
	/* partial products stay bounded however long K is, whatever the vectors */
	for (unsigned lanes = 4; lanes <= 16; lanes *= 2) {
		st_gemm_tile_default_plan(&(strata_gemm){.m = 512, .n = 512, .k = 1u << 20}, lanes, &p);
		ck_assert_uint_gt(p.splits, 1);
		ck_assert_uint_le((size_t)p.splits * 512 * 512, ST_GEMM_MAX_PARTIAL_FLOATS);
		st_gemm_tile_default_plan(&(strata_gemm){.m = 4096, .n = 4096, .k = 1u << 20}, lanes, &p);
		ck_assert_uint_eq(p.splits, 1);
	}
	/* AVX2's 8-float vectors: 6 rows of one float16 (12 registers), whatever N; SSE's 4: 3 rows */
	st_gemm_tile_default_plan(&(strata_gemm){.m = 73728, .n = 64, .k = 288}, 8, &p);
	ck_assert_uint_eq(p.mr, 6);
	ck_assert_uint_eq(p.nv, 1);
	st_gemm_tile_default_plan(&(strata_gemm){.m = 73728, .n = 64, .k = 288}, 4, &p);
	ck_assert_uint_eq(p.mr, 3);
	ck_assert_uint_eq(p.nv, 1);
	/* unknown (0): the AVX-512 choice */
	st_gemm_tile_default_plan(&(strata_gemm){.m = 73728, .n = 64, .k = 288}, 0, &p);
	ck_assert_uint_eq(p.nv, 4);
}
END_TEST

START_TEST(test_engine_choice)
{
	int e = -1;
	strata_error err = {0};
	ck_assert_int_eq(st_gemm_engine_parse(NULL, &e, &err), STRATA_OK);
	ck_assert_int_eq(e, ST_GEMM_AUTO);
	ck_assert_int_eq(st_gemm_engine_parse("clblast", &e, &err), STRATA_OK);
	ck_assert_int_eq(e, ST_GEMM_CLBLAST);
	ck_assert_int_eq(st_gemm_engine_parse("strata", &e, &err), STRATA_OK);
	ck_assert_int_eq(e, ST_GEMM_TILE);
	ck_assert_int_eq(st_gemm_engine_parse("cublas", &e, &err), STRATA_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err.message, "STRATA_GEMM=cublas"));

	/* auto: Strata's kernel on a CPU device (CI's PoCL), CLBlast when asked */
	unsetenv("STRATA_GEMM");
	ts_device dev = ts_device_open();
	ck_assert_int_eq(dev.rt->gemm_engine, strcmp(dev.rt->info.type, "cpu") == 0 ? ST_GEMM_TILE : ST_GEMM_CLBLAST);
	ts_device_close(&dev);
	setenv("STRATA_GEMM", "clblast", 1);
	dev = ts_device_open();
	ck_assert_int_eq(dev.rt->gemm_engine, ST_GEMM_CLBLAST);
	ts_device_close(&dev);
	setenv("STRATA_GEMM", "bogus", 1);
	strata_registry *reg = ts_registry();
	strata_runtime *rt = NULL;
	ck_assert_int_eq(strata_runtime_create(reg, NULL, &rt, &err), STRATA_ERR_INVALID);
	ck_assert_ptr_null(rt);
	ck_assert_ptr_nonnull(strstr(err.message, "expected auto, clblast or strata"));
	strata_registry_close(reg);
	unsetenv("STRATA_GEMM");
}
END_TEST

/* ---- an A read in place as the im2col matrix of images --------------------------------------- */

typedef struct window_case {
	uint32_t images, h, w, c, kh, kw, sh, sw;
	uint32_t filters;
	bool trans;       /* the kernel gradient's form: A^T, with K over the windows */
	unsigned splits;  /* 0: the default plan */
} window_case;

/* Element (window p, column q) of the im2col matrix of NHWC images x, q = (ky, kx, c). */
static float im2col_at(const float *x, const strata_gemm_window *w, size_t p, size_t q)
{
	size_t per = (size_t)w->oh * w->ow, n = p / per, oy = p % per / w->ow, ox = p % w->ow;
	size_t c = q % w->c, kx = q / w->c % w->kw, ky = q / w->c / w->kw;
	return x[((n * w->h + oy * w->sh + ky) * w->w + ox * w->sw + kx) * w->c + c];
}

static void check_window(const ts_device *dev, const window_case *wc)
{
	strata_gemm_window w = {wc->h, wc->w, wc->c, wc->kh, wc->kw, wc->sh, wc->sw,
	                        (wc->h - wc->kh) / wc->sh + 1, (wc->w - wc->kw) / wc->sw + 1};
	size_t windows = (size_t)wc->images * w.oh * w.ow, depth = (size_t)wc->kh * wc->kw * wc->c;
	size_t x_off = 5, nx = x_off + (size_t)wc->images * wc->h * wc->w * wc->c;
	size_t m = wc->trans ? depth : windows, k = wc->trans ? windows : depth, n = wc->filters;
	float *x = malloc(nx * sizeof(float)), *b = malloc(k * n * sizeof(float)), *c = malloc(m * n * sizeof(float));
	ck_assert(x && b && c);
	ts_fill_random(x, nx, 11, -1, 1);
	ts_fill_random(b, k * n, 12, -1, 1);
	for (size_t i = 0; i < m * n; i++)
		c[i] = NAN; /* beta 0: C's old contents must not reach the result */
	strata_tensor tx = upload(dev->rt, x, nx), tb = upload(dev->rt, b, k * n), tc = upload(dev->rt, c, m * n);
	strata_gemm g = {
		.size = sizeof(g), .trans_a = wc->trans, .m = m, .n = n, .k = k, .alpha = 1.0f, .beta = 0.0f,
		.a = &tx, .a_offset = x_off, .b = &tb, .ldb = n, .c = &tc, .ldc = n, .a_window = &w,
	};
	ck_assert(st_gemm_window_valid(&g));
	st_gemm_tile_plan plan;
	st_gemm_tile_default_plan(&g, dev->rt->float_lanes, &plan);
	if (wc->splits)
		plan.splits = wc->splits;
	strata_error err = {0};
	ck_assert_msg(st_gemm_tile_run(dev->rt, "test", &g, &plan, NULL, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(st_tensor_read(dev->rt, &tc, 0, c, m * n * sizeof(float), &err) == STRATA_OK, "%s", err.message);
	for (size_t i = 0; i < m; i++)
		for (size_t j = 0; j < n; j++) {
			double want = 0, mag = 0;
			for (size_t kk = 0; kk < k; kk++) {
				double a = wc->trans ? im2col_at(x + x_off, &w, kk, i) : im2col_at(x + x_off, &w, i, kk);
				want += a * b[kk * n + j];
				mag += fabs(a * b[kk * n + j]);
			}
			ck_assert_msg(fabs(c[i * n + j] - want) <= 1e-5 * mag + 1e-6,
			              "%ux%ux%u window %ux%u stride %ux%u%s: C(%zu,%zu) = %g, want %g", wc->h, wc->w, wc->c,
			              wc->kh, wc->kw, wc->sh, wc->sw, wc->trans ? " (A^T)" : "", i, j, c[i * n + j], want);
		}
	st_tensor_release(&tx);
	st_tensor_release(&tb);
	st_tensor_release(&tc);
	free(x);
	free(b);
	free(c);
}

START_TEST(test_window_matches_im2col)
{
	ts_device dev = ts_device_open();
	static const window_case cases[] = {
		/* images h  w  c  kh kw sh sw filters trans splits */
		{3, 6, 5, 2, 3, 3, 1, 1, 32, false, 0},
		{3, 6, 5, 2, 3, 3, 1, 1, 32, true, 0},
		{2, 7, 6, 3, 3, 2, 2, 2, 16, false, 0}, /* strides, odd sizes */
		{2, 7, 6, 3, 3, 2, 2, 2, 16, true, 5},  /* split across images */
		{4, 5, 5, 1, 3, 3, 1, 1, 48, true, 3},  /* one channel, as a first layer */
		{1, 4, 4, 16, 4, 4, 1, 1, 20, false, 0}, /* the window is the image; N past the blocks */
		{2, 9, 8, 4, 2, 3, 3, 2, 64, true, 7},
		{2, 7, 6, 3, 3, 2, 2, 2, 16, false, 4}, /* K split inside a kernel row's run */
		{1, 6, 6, 5, 3, 3, 1, 1, 16, false, 6},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_window(&dev, &cases[i]);
	ts_device_close(&dev);
}
END_TEST

/* A window st_gemm cannot read in place is refused with a message, never misread. */
START_TEST(test_window_refused_by_clblast)
{
	setenv("STRATA_GEMM", "clblast", 1);
	ts_device dev = ts_device_open();
	unsetenv("STRATA_GEMM");
	strata_gemm_window w = {4, 4, 1, 3, 3, 1, 1, 2, 2};
	float zero[64] = {0};
	strata_tensor t = upload(dev.rt, zero, 64);
	strata_gemm g = {.size = sizeof(g), .m = 4, .n = 2, .k = 9, .alpha = 1.0f, .a = &t, .b = &t, .ldb = 2,
	                 .c = &t, .ldc = 2, .a_window = &w};
	strata_error err = {0};
	ck_assert_int_eq(st_gemm(dev.rt, "test", &g, &err), STRATA_ERR_PLUGIN);
	ck_assert_ptr_nonnull(strstr(err.message, "gemm_window"));
	w.oh = 3; /* inconsistent with the image: not a window at all */
	ck_assert(!st_gemm_window_valid(&g));
	st_tensor_release(&t);
	ts_device_close(&dev);
}
END_TEST

static Suite *gemm_suite(void)
{
	Suite *s = suite_create("gemm");
	TCase *tc = tcase_create("tile");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_transposes_alpha_beta);
	tcase_add_test(tc, test_split_k);
	tcase_add_test(tc, test_block_shapes);
	tcase_add_test(tc, test_default_plan_follows_n);
	tcase_add_test(tc, test_engine_choice);
	tcase_add_test(tc, test_window_matches_im2col);
	tcase_add_test(tc, test_window_refused_by_clblast);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ts_run(gemm_suite());
}
