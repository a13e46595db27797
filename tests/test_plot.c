/* `strata plot`: the training log reader (the later row of an epoch wins, strict FILE:LINE errors,
 * extra columns ignored), 1-2-5 axes, and the PNG: its size, the curves' colours where the data
 * points are, and no validation curve for a log without validation figures. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cairo.h>

#include "plot_csv.h"
#include "plot_draw.h"
#include "support.h"

#define HEADER "epoch,batch,loss,accuracy,val_loss,val_accuracy,images_per_s,seconds\n"

static char tmpdir[256];

static void make_tmpdir(void)
{
	ts_tmpdir_make(tmpdir, sizeof(tmpdir), "plot");
}

static void remove_tmpdir(void)
{
	ts_tmpdir_remove(tmpdir);
}

static char *tmp_path(const char *name)
{
	return ts_join(tmpdir, name);
}

static void read_fixture(const char *name, plot_log *log)
{
	char rel[128];
	snprintf(rel, sizeof(rel), "data/plot/%s", name);
	char *path = ts_src_path(rel);
	strata_error err = {0};
	strata_status st = plot_log_read(path, log, &err);
	ck_assert_msg(st == STRATA_OK, "%s: %s", path, err.message);
	free(path);
}

static strata_status parse_text(const char *text, plot_log *log, strata_error *err)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	ck_assert_ptr_nonnull(f);
	strata_status st = plot_log_parse(f, "t.csv", log, err);
	fclose(f);
	return st;
}

/* ---- The reader ---------------------------------------------------------------------------- */

START_TEST(test_real_log_keeps_epoch_end_rows)
{
	/* A 12-epoch mnist_cnn log: progress rows (validation empty), then each epoch's end row. */
	plot_log log;
	read_fixture("mnist_cnn_12.csv", &log);
	ck_assert_uint_eq(log.count, 12);
	ck_assert_uint_eq(log.rows, 157);
	ck_assert(log.has_val);
	for (size_t i = 0; i < log.count; i++) {
		ck_assert_uint_eq(log.epochs[i].epoch, i + 1);
		ck_assert_msg(log.epochs[i].has_val, "epoch %zu kept a progress row (line %zu)", i + 1,
		              log.epochs[i].line);
		ck_assert_uint_eq(log.epochs[i].batch, 469);
	}
	ck_assert_double_eq_tol(log.epochs[0].loss, 0.260676, 1e-9);
	ck_assert_double_eq_tol(log.epochs[0].val_accuracy, 0.9815, 1e-9);
	ck_assert_double_eq_tol(log.epochs[11].val_loss, 0.026870, 1e-9);
	ck_assert_double_eq_tol(log.epochs[11].seconds, 1465.055, 1e-9);
	plot_log_free(&log);
}
END_TEST

START_TEST(test_resumed_log_later_row_wins)
{
	/* Epoch 3 was interrupted and resumed; epoch 4 was trained twice (a resume from an older
	 * checkpoint). */
	plot_log log;
	read_fixture("resumed.csv", &log);
	ck_assert_uint_eq(log.count, 5);
	ck_assert_uint_eq(log.rows, 10);
	ck_assert_uint_eq(log.epochs[2].epoch, 3);
	ck_assert_uint_eq(log.epochs[2].line, 8);
	ck_assert_double_eq_tol(log.epochs[2].loss, 0.381, 1e-9);
	ck_assert(log.epochs[2].has_val);
	ck_assert_uint_eq(log.epochs[3].epoch, 4);
	ck_assert_uint_eq(log.epochs[3].line, 10);
	ck_assert_double_eq_tol(log.epochs[3].loss, 0.312, 1e-9);
	ck_assert_double_eq_tol(log.epochs[3].val_accuracy, 0.899, 1e-9);
	plot_log_free(&log);

	/* Out of order (a resume from an earlier checkpoint): sorted by epoch, the later row still
	 * wins, even when it has no validation figures. */
	strata_error err = {0};
	ck_assert_int_eq(parse_text(HEADER "2,5,0.9,0.7,0.8,0.75,1,1\n"
	                                   "1,5,1.5,0.5,1.1,0.6,1,1\n"
	                                   "2,5,0.4,0.9,,,1,1\n",
	                            &log, &err),
	                 STRATA_OK);
	ck_assert_uint_eq(log.count, 2);
	ck_assert_uint_eq(log.epochs[0].epoch, 1);
	ck_assert_uint_eq(log.epochs[1].epoch, 2);
	ck_assert_double_eq_tol(log.epochs[1].loss, 0.4, 1e-12);
	ck_assert(!log.epochs[1].has_val);
	ck_assert(isnan(log.epochs[1].val_loss));
	ck_assert(log.has_val); /* epoch 1 has them */
	plot_log_free(&log);
}
END_TEST

START_TEST(test_log_without_validation)
{
	plot_log log;
	read_fixture("no_val.csv", &log);
	ck_assert_uint_eq(log.count, 5);
	ck_assert(!log.has_val);
	for (size_t i = 0; i < log.count; i++)
		ck_assert(!log.epochs[i].has_val && isnan(log.epochs[i].val_accuracy));
	ck_assert_double_eq_tol(log.epochs[1].loss, 0.58, 1e-12);
	plot_log_free(&log);
}
END_TEST

START_TEST(test_lenient_where_documented)
{
	plot_log log;
	strata_error err = {0};
	/* CRLF line ends, blank lines, spaces around fields, "nan" of a diverged run, extra columns. */
	ck_assert_int_eq(parse_text("epoch,batch,loss,accuracy,val_loss,val_accuracy,images_per_s,seconds,lr\r\n"
	                            "\r\n"
	                            "1, 10 ,0.5,0.8,,,100,1,0.001\r\n"
	                            "2,10,nan,0.1,0.7,0.6,100,2,x\r\n"
	                            "\n",
	                            &log, &err),
	                 STRATA_OK);
	ck_assert_uint_eq(log.count, 2);
	ck_assert_uint_eq(log.epochs[0].batch, 10);
	ck_assert(isnan(log.epochs[1].loss));
	ck_assert_double_eq_tol(log.epochs[1].val_accuracy, 0.6, 1e-12);
	ck_assert_uint_eq(log.epochs[1].line, 4);
	plot_log_free(&log);
}
END_TEST

static const struct {
	const char *text;
	const char *prefix;  /* the message starts with it */
	const char *contains;
} bad_logs[] = {
	{"epoch,loss,accuracy\n1,0.5,0.8\n", "t.csv:1: ", "not a strata training log"},
	{"epoch,batch,loss,acc,val_loss,val_accuracy,images_per_s,seconds\n1,1,1,1,,,1,1\n", "t.csv:1: ",
	 "found 'epoch,batch,loss,acc,"},
	{"\n" HEADER "1,1,1,1,,,1,1\n", "t.csv:1: ", "the header must start with"},
	{HEADER, "t.csv:2: ", "no rows after the header"},
	{HEADER "\n\n", "t.csv:4: ", "no rows"},
	{HEADER "1,10,0.5,0.8,,,1,1\n2,10,abc,0.8,,,1,1\n", "t.csv:3: ", "loss 'abc' is not a number"},
	{HEADER "1,10,0.5,0.8,,,1,1\n\n2,10,0.5,0.8,,,1,1s\n", "t.csv:4: ", "seconds '1s' is not a number"},
	{HEADER "1,10,,0.8,,,1,1\n", "t.csv:2: ", "loss '' is not a number"},
	{HEADER "1,10,0.5,0.8,,,1\n", "t.csv:2: ", "7 fields, but the header has 8"},
	{HEADER "1,10,0.5,0.8,,,1,1,9\n", "t.csv:2: ", "9 fields, but the header has 8"},
	{HEADER "0,10,0.5,0.8,,,1,1\n", "t.csv:2: ", "epoch '0' is not a whole number"},
	{HEADER "1.5,10,0.5,0.8,,,1,1\n", "t.csv:2: ", "epoch '1.5'"},
	{HEADER "-1,10,0.5,0.8,,,1,1\n", "t.csv:2: ", "epoch '-1'"},
	{HEADER "99999999999,10,0.5,0.8,,,1,1\n", "t.csv:2: ", "epoch '99999999999'"},
	{HEADER "1,x,0.5,0.8,,,1,1\n", "t.csv:2: ", "batch 'x'"},
	{HEADER "1,10,0.5,0.8,0.4,,1,1\n", "t.csv:2: ", "val_accuracy is empty but val_loss is not"},
	{HEADER "1,10,0.5,0.8,,0.9,1,1\n", "t.csv:2: ", "val_loss is empty but val_accuracy is not"},
	{HEADER "1,10,0.5,0.8,0.4,0.9x,1,1\n", "t.csv:2: ", "val_accuracy '0.9x' is not a number"},
	{"epoch,batch,loss,accuracy,val_loss,val_accuracy,images_per_s,seconds,lr\n1,10,0.5,0.8,,,1,1\n",
	 "t.csv:2: ", "8 fields, but the header has 9"},
};

START_TEST(test_bad_logs_are_refused_with_file_and_line)
{
	plot_log log;
	strata_error err = {0};
	strata_status st = parse_text(bad_logs[_i].text, &log, &err);
	ck_assert_msg(st == STRATA_ERR_PARSE, "case %d: status %d (%s)", _i, st, err.message);
	ck_assert_msg(strncmp(err.message, bad_logs[_i].prefix, strlen(bad_logs[_i].prefix)) == 0,
	              "case %d: '%s' does not start with '%s'", _i, err.message, bad_logs[_i].prefix);
	ck_assert_msg(strstr(err.message, bad_logs[_i].contains), "case %d: '%s' does not say '%s'", _i,
	              err.message, bad_logs[_i].contains);
	ck_assert_ptr_null(log.epochs);
	ck_assert_uint_eq(log.count, 0);
}
END_TEST

START_TEST(test_missing_and_empty_files)
{
	plot_log log;
	strata_error err = {0};
	make_tmpdir();
	char *missing = tmp_path("missing.csv");
	ck_assert_int_eq(plot_log_read(missing, &log, &err), STRATA_ERR_NOT_FOUND);
	ck_assert_msg(strstr(err.message, missing) && strstr(err.message, "No such file"), "%s", err.message);
	char *empty = tmp_path("empty.csv");
	FILE *f = fopen(empty, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(plot_log_read(empty, &log, &err), STRATA_ERR_PARSE);
	ck_assert_msg(strncmp(err.message, empty, strlen(empty)) == 0 && strstr(err.message, ":1: empty file"), "%s",
	              err.message);
	/* Anything but a regular file is refused before it is read: a device, a folder. */
	ck_assert_int_eq(plot_log_read("/dev/null", &log, &err), STRATA_ERR_INVALID);
	ck_assert_str_eq(err.message, "/dev/null is a character device, not a regular file");
	ck_assert_int_eq(plot_log_read(tmpdir, &log, &err), STRATA_ERR_INVALID);
	ck_assert_msg(strncmp(err.message, tmpdir, strlen(tmpdir)) == 0 && strstr(err.message, " is a folder, not"),
	              "%s", err.message);
	free(empty);
	free(missing);
	remove_tmpdir();
}
END_TEST

/* A log larger than PLOT_LOG_MAX_BYTES (a sparse file: no disk space) is refused by its size,
 * unread; before, it was read as one enormous line. */
START_TEST(test_huge_file)
{
	plot_log log;
	strata_error err = {0};
	make_tmpdir();
	char *path = tmp_path("huge.csv");
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("epoch,batch,loss,accuracy,val_loss,val_accuracy,images_per_s,seconds\n", f);
	fclose(f);
	ck_assert_int_eq(truncate(path, (off_t)PLOT_LOG_MAX_BYTES + 1), 0);
	ck_assert_int_eq(plot_log_read(path, &log, &err), STRATA_ERR_INVALID);
	char want[512];
	snprintf(want, sizeof(want), "%s: %llu bytes, more than the %llu bytes a training log may have", path,
	         (unsigned long long)PLOT_LOG_MAX_BYTES + 1, (unsigned long long)PLOT_LOG_MAX_BYTES);
	ck_assert_str_eq(err.message, want);
	ck_assert_ptr_null(log.epochs);
	/* At the limit it is read, and refused for what it holds. */
	ck_assert_int_eq(truncate(path, (off_t)PLOT_LOG_MAX_BYTES), 0);
	ck_assert_int_eq(plot_log_read(path, &log, &err), STRATA_ERR_PARSE);
	unlink(path);
	free(path);
	remove_tmpdir();
}
END_TEST

/* ---- Axes ---------------------------------------------------------------------------------- */

static bool is_125(double step)
{
	double m = step / pow(10, floor(log10(step) + 1e-9));
	return fabs(m - 1) < 1e-6 || fabs(m - 2) < 1e-6 || fabs(m - 5) < 1e-6;
}

static void check_axis(double lo, double hi, int target, bool whole)
{
	plot_axis a;
	plot_nice_axis(lo, hi, target, whole, &a);
	ck_assert_msg(a.lo < lo && a.hi > hi, "[%g, %g] does not hold [%g, %g]", a.lo, a.hi, lo, hi);
	ck_assert_msg(is_125(a.step), "step %g for [%g, %g]", a.step, lo, hi);
	ck_assert_msg(a.ticks >= 2 && a.ticks <= 3 * target + 1, "%d ticks for target %d on [%g, %g]", a.ticks,
	              target, lo, hi);
	double eps = a.step * 1e-6;
	ck_assert(a.first >= a.lo - eps && a.first - a.step < a.lo + eps);
	double last = a.first + (a.ticks - 1) * a.step;
	ck_assert(last <= a.hi + eps && last + a.step > a.hi - eps);
	ck_assert(fabs(a.first / a.step - round(a.first / a.step)) < 1e-6); /* ticks on multiples */
	if (whole) {
		ck_assert(a.step >= 1 && a.step == round(a.step));
		ck_assert_int_eq(a.decimals, 0);
	} else if (a.step < 1) {
		/* Enough digits to tell neighbouring ticks apart, no more. */
		double unit = pow(10, -a.decimals);
		ck_assert_msg(unit <= a.step + eps && unit * 10 > a.step, "%d decimals for step %g", a.decimals,
		              a.step);
	} else {
		ck_assert_int_eq(a.decimals, 0);
	}
}

START_TEST(test_nice_axes)
{
	check_axis(0.027, 0.26, 6, false);
	check_axis(0.9191, 0.9922, 6, false);
	check_axis(1, 12, 8, true);
	check_axis(1, 2, 8, true);
	check_axis(3, 250, 5, true);
	check_axis(-3.5, 1e4, 7, false);
	/* A single value: a range around it, with ticks on both sides. */
	check_axis(0.5, 0.5, 5, false);
	check_axis(0, 0, 5, false);
	check_axis(7, 7, 5, true);
	plot_axis a;
	plot_nice_axis(1, 1, 5, true, &a);
	ck_assert(a.first <= 1 && a.first + (a.ticks - 1) * a.step >= 1 && a.step == 1);
	uint32_t r = 12345;
	for (int i = 0; i < 2000; i++) {
		r = r * 1103515245u + 12345u;
		double lo = ((r >> 8) % 20000) / 1000.0 - 10;
		r = r * 1103515245u + 12345u;
		double span = pow(10, ((r >> 8) % 1200) / 100.0 - 6);
		int target = 2 + (int)((r >> 20) % 9);
		check_axis(lo * span, lo * span + span, target, false);
		check_axis(1 + (r >> 16) % 50, 1 + (r >> 16) % 50 + (r >> 4) % 400, target, true);
	}
}
END_TEST

/* ---- The picture --------------------------------------------------------------------------- */

typedef struct picture {
	cairo_surface_t *surface;
	unsigned char *data;
	int width, height, stride;
} picture;

static picture decode(const char *path)
{
	picture p = {.surface = cairo_image_surface_create_from_png(path)};
	ck_assert_msg(cairo_surface_status(p.surface) == CAIRO_STATUS_SUCCESS, "%s: %s", path,
	              cairo_status_to_string(cairo_surface_status(p.surface)));
	cairo_format_t f = cairo_image_surface_get_format(p.surface);
	ck_assert(f == CAIRO_FORMAT_RGB24 || f == CAIRO_FORMAT_ARGB32);
	p.data = cairo_image_surface_get_data(p.surface);
	p.width = cairo_image_surface_get_width(p.surface);
	p.height = cairo_image_surface_get_height(p.surface);
	p.stride = cairo_image_surface_get_stride(p.surface);
	return p;
}

static bool pixel_is(const picture *p, int x, int y, plot_rgb c)
{
	if (x < 0 || y < 0 || x >= p->width || y >= p->height)
		return false;
	uint32_t v = *(const uint32_t *)(p->data + (size_t)y * (size_t)p->stride + 4 * (size_t)x);
	int r = (v >> 16) & 0xff, g = (v >> 8) & 0xff, b = v & 0xff;
	return abs(r - c.r) <= 10 && abs(g - c.g) <= 10 && abs(b - c.b) <= 10;
}

/* Pixels of colour `c` in `r`, leaving out `hole` (a legend) when it is not NULL. */
static int count_colour(const picture *p, plot_rect r, const plot_rect *hole, plot_rgb c)
{
	int n = 0;
	for (int y = (int)r.y; y < (int)(r.y + r.h); y++)
		for (int x = (int)r.x; x < (int)(r.x + r.w); x++)
			if (!(hole && x >= hole->x && x < hole->x + hole->w && y >= hole->y && y < hole->y + hole->h))
				n += pixel_is(p, x, y, c);
	return n;
}

static plot_rect whole_picture(const picture *p)
{
	return (plot_rect){0, 0, p->width, p->height};
}

static double series_value(const plot_epoch *e, int panel, enum plot_series s)
{
	if (s == PLOT_SERIES_VAL)
		return !e->has_val ? NAN : panel == PLOT_PANEL_LOSS ? e->val_loss : e->val_accuracy;
	return panel == PLOT_PANEL_LOSS ? e->loss : e->accuracy;
}

static double segment_distance(double px, double py, double ax, double ay, double bx, double by)
{
	double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
	double t = len2 > 0 ? fmax(0, fmin(1, ((px - ax) * dx + (py - ay) * dy) / len2)) : 0;
	return hypot(px - (ax + t * dx), py - (ay + t * dy));
}

/* Whether anything drawn after series `s` at its point `i` (the validation series over the
 * training one, the legend over both) may hide it. */
static bool covered(const plot_log *log, const plot_layout *l, int panel, enum plot_series s, size_t i)
{
	const plot_panel *p = &l->panel[panel];
	double x = plot_x_pixel(p, log->epochs[i].epoch);
	double y = plot_y_pixel(p, series_value(&log->epochs[i], panel, s));
	if (x >= p->legend.x - 8 && x <= p->legend.x + p->legend.w + 8 && y >= p->legend.y - 8 &&
	    y <= p->legend.y + p->legend.h + 8)
		return true;
	if (s == PLOT_SERIES_VAL)
		return false;
	for (size_t k = 0; k < log->count; k++) {
		double v = series_value(&log->epochs[k], panel, PLOT_SERIES_VAL);
		if (isnan(v))
			continue;
		double ax = plot_x_pixel(p, log->epochs[k].epoch), ay = plot_y_pixel(p, v);
		double bx = ax, by = ay;
		if (k + 1 < log->count && !isnan(series_value(&log->epochs[k + 1], panel, PLOT_SERIES_VAL))) {
			bx = plot_x_pixel(p, log->epochs[k + 1].epoch);
			by = plot_y_pixel(p, series_value(&log->epochs[k + 1], panel, PLOT_SERIES_VAL));
		}
		if (segment_distance(x, y, ax, ay, bx, by) < 10)
			return true;
	}
	return false;
}

/* Every visible data point of series `s` in `panel` shows the series' colour; returns how many
 * were visible. */
static size_t check_points(const picture *pic, const plot_log *log, const plot_layout *l, int panel,
                           enum plot_series s)
{
	const plot_panel *p = &l->panel[panel];
	size_t seen = 0;
	for (size_t i = 0; i < log->count; i++) {
		double v = series_value(&log->epochs[i], panel, s);
		if (isnan(v) || covered(log, l, panel, s, i))
			continue;
		double x = plot_x_pixel(p, log->epochs[i].epoch), y = plot_y_pixel(p, v);
		uint32_t e = log->epochs[i].epoch;
		ck_assert_msg(x > p->frame.x && x < p->frame.x + p->frame.w && y > p->frame.y &&
		                  y < p->frame.y + p->frame.h,
		              "epoch %u of panel %d at (%g, %g) is outside the frame", e, panel, x, y);
		ck_assert_msg(pixel_is(pic, (int)x, (int)y, plot_series_colour(s)),
		              "panel %d, series %d: no marker at epoch %u (%g, %g)", panel, s, e, x, y);
		seen++;
	}
	return seen;
}

static void check_layout(const plot_layout *l, int width, int height)
{
	for (int k = 0; k < PLOT_PANELS; k++) {
		const plot_panel *p = &l->panel[k];
		ck_assert(p->frame.w > 0 && p->frame.h > 0);
		/* Each panel in its own half, with room for labels around it. */
		ck_assert(p->frame.x > k * width / 2.0 + 20 && p->frame.x + p->frame.w < (k + 1) * width / 2.0);
		ck_assert(p->frame.y > 10 && p->frame.y + p->frame.h < height - 20);
		ck_assert(p->legend.x >= p->frame.x && p->legend.x + p->legend.w <= p->frame.x + p->frame.w);
		ck_assert(p->legend.y >= p->frame.y && p->legend.y + p->legend.h <= p->frame.y + p->frame.h);
		/* Epoch ticks are whole numbers. */
		ck_assert(p->x.step >= 1 && p->x.first == round(p->x.first));
	}
}

static void render(const char *fixture, int width, int height, plot_log *log, plot_layout *l, picture *pic)
{
	read_fixture(fixture, log);
	make_tmpdir();
	char *png = tmp_path("curves.png");
	strata_error err = {0};
	strata_status st = plot_write_png(log, width, height, png, l, &err);
	ck_assert_msg(st == STRATA_OK, "%s", err.message);
	*pic = decode(png);
	ck_assert_int_eq(pic->width, width);
	ck_assert_int_eq(pic->height, height);
	check_layout(l, width, height);
	free(png);
	remove_tmpdir();
}

START_TEST(test_png_has_the_requested_size)
{
	static const int sizes[][2] = {{1000, 400}, {640, 480}, {PLOT_MIN_WIDTH, PLOT_MIN_HEIGHT}, {2400, 900}};
	plot_log log;
	read_fixture("mnist_cnn_12.csv", &log);
	make_tmpdir();
	char *png = tmp_path("size.png");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		strata_error err = {0};
		plot_layout l;
		ck_assert_msg(plot_write_png(&log, sizes[i][0], sizes[i][1], png, &l, &err) == STRATA_OK, "%s",
		              err.message);
		check_layout(&l, sizes[i][0], sizes[i][1]);
		strata_image img;
		ck_assert_msg(strata_image_load(png, &img, &err) == STRATA_OK, "%s", err.message);
		ck_assert_uint_eq(img.width, (uint32_t)sizes[i][0]);
		ck_assert_uint_eq(img.height, (uint32_t)sizes[i][1]);
		/* Not a blank picture: white background with dark text and lines. */
		size_t dark = 0;
		for (size_t k = 0; k < (size_t)img.width * img.height; k++)
			dark += img.pixels[k] < 100;
		ck_assert_msg(dark > 500, "%zu dark pixels at %dx%d", dark, sizes[i][0], sizes[i][1]);
		ck_assert_uint_eq(img.pixels[0], 255);
		strata_image_free(&img);
	}
	free(png);
	remove_tmpdir();
	plot_log_free(&log);
}
END_TEST

START_TEST(test_curves_where_the_data_is)
{
	plot_log log;
	plot_layout l;
	picture pic;
	render("mnist_cnn_12.csv", 1000, 400, &log, &l, &pic);
	const plot_panel *loss = &l.panel[PLOT_PANEL_LOSS], *acc = &l.panel[PLOT_PANEL_ACCURACY];

	/* The axes hold the data: loss from 0.027 to 0.26, accuracy from 0.919 to 0.9922, epochs 1 to 12. */
	ck_assert(loss->y.lo < 0.027 && loss->y.hi > 0.260676);
	ck_assert(acc->y.lo < 0.9191 && acc->y.hi > 0.9922 && acc->y.hi < 1.01);
	ck_assert(loss->x.lo < 1 && loss->x.hi > 12 && loss->x.hi < 13);

	/* Left is earlier, up is more, found without the layout's mappings: the training curve's
	 * leftmost pixels (epoch 1) are at the frame's left, near its top in the loss panel (the
	 * largest loss) and near its bottom in the accuracy panel (the smallest accuracy). */
	plot_rgb train = plot_series_colour(PLOT_SERIES_TRAIN), val = plot_series_colour(PLOT_SERIES_VAL);
	for (int k = 0; k < PLOT_PANELS; k++) {
		const plot_panel *p = &l.panel[k];
		int first_x = -1, first_y = -1;
		for (int x = (int)p->frame.x; x < (int)(p->frame.x + p->frame.w) && first_x < 0; x++) {
			for (int y = (int)p->frame.y; y < (int)(p->frame.y + p->frame.h) && first_x < 0; y++) {
				plot_rect one = {x, y, 1, 1};
				if (count_colour(&pic, one, &p->legend, train)) {
					first_x = x;
					first_y = y;
				}
			}
		}
		ck_assert_msg(first_x >= 0, "panel %d: no training colour", k);
		double across = (first_x - p->frame.x) / p->frame.w, down = (first_y - p->frame.y) / p->frame.h;
		ck_assert_msg(across < 0.1, "panel %d: the curve starts at %.2f of the width", k, across);
		ck_assert_msg(k == PLOT_PANEL_LOSS ? down < 0.15 : down > 0.8,
		              "panel %d: epoch 1 at %.2f of the height", k, down);
	}
	/* Tick labels and axis titles: dark text left of and below each frame. */
	for (int k = 0; k < PLOT_PANELS; k++) {
		const plot_panel *p = &l.panel[k];
		plot_rect left = {p->frame.x - 60, p->frame.y, 55, p->frame.h};
		plot_rect below = {p->frame.x, p->frame.y + p->frame.h + 6, p->frame.w, 40};
		plot_rgb ink = {0x26, 0x26, 0x26};
		ck_assert_int_gt(count_colour(&pic, left, NULL, ink), 50);
		ck_assert_int_gt(count_colour(&pic, below, NULL, ink), 50);
	}

	/* Markers of each series at their data points; most of them visible. */
	ck_assert_uint_ge(check_points(&pic, &log, &l, PLOT_PANEL_LOSS, PLOT_SERIES_TRAIN), 6);
	ck_assert_uint_ge(check_points(&pic, &log, &l, PLOT_PANEL_LOSS, PLOT_SERIES_VAL), 10);
	ck_assert_uint_ge(check_points(&pic, &log, &l, PLOT_PANEL_ACCURACY, PLOT_SERIES_TRAIN), 6);
	ck_assert_uint_ge(check_points(&pic, &log, &l, PLOT_PANEL_ACCURACY, PLOT_SERIES_VAL), 10);

	/* The train-loss colour fills the left panel's curve, the val-accuracy colour the right one's,
	 * outside the legends: 12 markers and the lines between them. */
	ck_assert_int_gt(count_colour(&pic, loss->frame, &loss->legend, train), 12 * 20);
	ck_assert_int_gt(count_colour(&pic, acc->frame, &acc->legend, val), 12 * 20);
	/* The lines, not only markers: the middle of the first segment of the validation accuracy. */
	double mx = (plot_x_pixel(acc, 1) + plot_x_pixel(acc, 2)) / 2;
	double y1 = plot_y_pixel(acc, log.epochs[0].val_accuracy), y2 = plot_y_pixel(acc, log.epochs[1].val_accuracy);
	double my = (y1 + y2) / 2;
	bool on_line = false;
	for (int dy = -1; dy <= 1; dy++)
		for (int dx = -1; dx <= 1; dx++)
			on_line |= pixel_is(&pic, (int)mx + dx, (int)my + dy, val);
	ck_assert_msg(on_line, "no validation line at (%g, %g)", mx, my);
	/* Both colours in the legends. */
	ck_assert_int_gt(count_colour(&pic, loss->legend, NULL, val), 10);
	ck_assert_int_gt(count_colour(&pic, acc->legend, NULL, train), 10);
	/* No curve outside the frames (the legend is inside them). */
	plot_rect above = {0, 0, pic.width, loss->frame.y - 2};
	ck_assert_int_eq(count_colour(&pic, above, NULL, train) + count_colour(&pic, above, NULL, val), 0);

	cairo_surface_destroy(pic.surface);
	plot_log_free(&log);
}
END_TEST

START_TEST(test_no_validation_curve_without_validation_figures)
{
	plot_log log;
	plot_layout l;
	picture pic;
	render("no_val.csv", 900, 360, &log, &l, &pic);
	plot_rgb train = plot_series_colour(PLOT_SERIES_TRAIN), val = plot_series_colour(PLOT_SERIES_VAL);
	ck_assert_int_eq(count_colour(&pic, whole_picture(&pic), NULL, val), 0);
	for (int k = 0; k < PLOT_PANELS; k++) {
		ck_assert_uint_eq(check_points(&pic, &log, &l, k, PLOT_SERIES_TRAIN), log.count);
		ck_assert_int_gt(count_colour(&pic, l.panel[k].frame, &l.panel[k].legend, train), 5 * 20);
	}
	cairo_surface_destroy(pic.surface);
	plot_log_free(&log);

	/* The same data with validation figures does draw the validation colour: the check above
	 * can fail. */
	render("resumed.csv", 900, 360, &log, &l, &pic);
	const plot_panel *loss = &l.panel[PLOT_PANEL_LOSS];
	ck_assert_int_gt(count_colour(&pic, loss->frame, &loss->legend, val), 5 * 20);
	cairo_surface_destroy(pic.surface);
	plot_log_free(&log);
}
END_TEST

START_TEST(test_single_epoch_is_a_point)
{
	plot_log log;
	plot_layout l;
	picture pic;
	render("single.csv", 800, 320, &log, &l, &pic);
	ck_assert_uint_eq(log.count, 1);
	for (int k = 0; k < PLOT_PANELS; k++) {
		const plot_panel *p = &l.panel[k];
		/* Epoch 1 in the middle, on a tick; the value in the middle too. */
		ck_assert_double_eq_tol(plot_x_pixel(p, 1), p->frame.x + p->frame.w / 2, 0.5);
		ck_assert_double_eq(p->x.step, 1);
		ck_assert(p->x.first <= 1 && p->x.first + (p->x.ticks - 1) * p->x.step >= 1);
		ck_assert_uint_eq(check_points(&pic, &log, &l, k, PLOT_SERIES_TRAIN) +
		                      check_points(&pic, &log, &l, k, PLOT_SERIES_VAL),
		                  2);
	}
	cairo_surface_destroy(pic.surface);
	plot_log_free(&log);
}
END_TEST

START_TEST(test_refusals)
{
	plot_log log;
	read_fixture("single.csv", &log);
	make_tmpdir();
	char *png = tmp_path("small.png");
	strata_error err = {0};
	static const int bad[][2] = {
		{PLOT_MIN_WIDTH - 1, 400}, {1000, PLOT_MIN_HEIGHT - 1}, {PLOT_MAX_SIDE + 1, 400}, {0, 0}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(plot_write_png(&log, bad[i][0], bad[i][1], png, NULL, &err), STRATA_ERR_INVALID);
		ck_assert_msg(strstr(err.message, "width from"), "%s", err.message);
		ck_assert_int_eq(access(png, F_OK), -1);
	}
	ck_assert_int_eq(plot_check_size(PLOT_MIN_WIDTH, PLOT_MIN_HEIGHT, NULL), STRATA_OK);
	ck_assert_int_eq(plot_check_size(PLOT_MAX_SIDE, PLOT_MAX_SIDE, NULL), STRATA_OK);

	char *unwritable = tmp_path("no/such/folder/c.png");
	ck_assert_int_eq(plot_write_png(&log, 600, 300, unwritable, NULL, &err), STRATA_ERR_IO);
	ck_assert_msg(strstr(err.message, unwritable) && strstr(err.message, "No such file"), "%s", err.message);
	free(unwritable);
	free(png);
	remove_tmpdir();
	plot_log_free(&log);
}
END_TEST

static Suite *plot_suite(void)
{
	Suite *s = suite_create("plot");
	TCase *tc = tcase_create("csv");
	tcase_add_test(tc, test_real_log_keeps_epoch_end_rows);
	tcase_add_test(tc, test_resumed_log_later_row_wins);
	tcase_add_test(tc, test_log_without_validation);
	tcase_add_test(tc, test_lenient_where_documented);
	tcase_add_loop_test(tc, test_bad_logs_are_refused_with_file_and_line, 0,
	                    (int)(sizeof(bad_logs) / sizeof(bad_logs[0])));
	tcase_add_test(tc, test_missing_and_empty_files);
	tcase_add_test(tc, test_huge_file);
	suite_add_tcase(s, tc);
	tc = tcase_create("draw");
	tcase_add_test(tc, test_nice_axes);
	tcase_add_test(tc, test_png_has_the_requested_size);
	tcase_add_test(tc, test_curves_where_the_data_is);
	tcase_add_test(tc, test_no_validation_curve_without_validation_figures);
	tcase_add_test(tc, test_single_epoch_is_a_point);
	tcase_add_test(tc, test_refusals);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ts_run(plot_suite());
}
