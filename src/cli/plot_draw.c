/* Training curves with cairo (see plot_draw.h). Sizes follow the picture's size through one font
 * size, so a bigger picture is the same plot with bigger type, not a smaller plot. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plot_draw.h"

#define FONT_FAMILY "DejaVu Sans"

typedef struct plot_style {
	double font;   /* tick labels, axis titles, legend */
	double title;  /* panel titles */
	double pad;    /* between the picture's edge and anything on it */
	double tick;   /* tick mark length */
	double line;   /* curve width */
	double marker; /* marker radius */
	cairo_font_face_t *regular, *bold;
} plot_style;

static const char *const panel_titles[PLOT_PANELS] = {"Model loss", "Model accuracy"};
static const char *const axis_titles[PLOT_PANELS] = {"Loss", "Accuracy"};

plot_rgb plot_series_colour(enum plot_series series)
{
	return series == PLOT_SERIES_TRAIN ? (plot_rgb){0x1f, 0x77, 0xb4} : (plot_rgb){0xff, 0x7f, 0x0e};
}

static void set_colour(cairo_t *cr, plot_rgb c)
{
	cairo_set_source_rgb(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0);
}

/* ---- Axes ---------------------------------------------------------------------------------- */

/* The smallest of 1, 2, 5 times a power of ten that is at least `raw`. */
static double nice_step(double raw)
{
	double mag = pow(10, floor(log10(raw)));
	double m = raw / mag;
	return (m <= 1 + 1e-9 ? 1 : m <= 2 + 1e-9 ? 2 : m <= 5 + 1e-9 ? 5 : 10) * mag;
}

/* The 1-2-5 step below `step`. */
static double smaller_step(double step)
{
	double mag = pow(10, floor(log10(step) + 1e-9));
	double m = round(step / mag);
	return m >= 5 ? 2 * mag : m >= 2 ? mag : 0.5 * mag;
}

static void place_ticks(plot_axis *a)
{
	a->first = ceil(a->lo / a->step - 1e-9) * a->step;
	a->ticks = (int)floor((a->hi - a->first) / a->step + 1e-9) + 1;
}

void plot_nice_axis(double lo, double hi, int target, bool whole, plot_axis *out)
{
	if (!isfinite(lo) || !isfinite(hi) || lo > hi) {
		lo = 0;
		hi = 1;
	}
	if (hi - lo <= 1e-12 * fmax(1, fabs(lo))) {
		/* One value: a range around it, so that it sits in the middle. */
		double d = whole ? 1 : lo != 0 ? fabs(lo) * 0.1 : 0.5;
		lo -= d;
		hi += d;
	}
	double margin = 0.05 * (hi - lo);
	*out = (plot_axis){.lo = lo - margin, .hi = hi + margin};
	if (target < 2)
		target = 2;
	out->step = nice_step((out->hi - out->lo) / target);
	if (whole && out->step < 1)
		out->step = 1;
	place_ticks(out);
	while (out->ticks < 2 && !(whole && out->step <= 1)) {
		out->step = smaller_step(out->step);
		place_ticks(out);
	}
	out->decimals = out->step >= 1 ? 0 : (int)ceil(-log10(out->step) - 1e-9);
	if (out->decimals > 12)
		out->decimals = 12;
}

static void tick_label(const plot_axis *a, int i, char *buf, size_t size)
{
	double v = a->first + i * a->step;
	if (fabs(v) < a->step * 1e-6)
		v = 0; /* never "-0.00" */
	snprintf(buf, size, "%.*f", a->decimals, v);
}

double plot_x_pixel(const plot_panel *p, double epoch)
{
	return p->frame.x + (epoch - p->x.lo) / (p->x.hi - p->x.lo) * p->frame.w;
}

double plot_y_pixel(const plot_panel *p, double value)
{
	return p->frame.y + p->frame.h - (value - p->y.lo) / (p->y.hi - p->y.lo) * p->frame.h;
}

/* ---- Data ---------------------------------------------------------------------------------- */

static double value(const plot_epoch *e, int panel, enum plot_series series)
{
	if (series == PLOT_SERIES_VAL)
		return !e->has_val ? NAN : panel == PLOT_PANEL_LOSS ? e->val_loss : e->val_accuracy;
	return panel == PLOT_PANEL_LOSS ? e->loss : e->accuracy;
}

static void value_range(const plot_log *log, int panel, double *lo, double *hi)
{
	*lo = INFINITY;
	*hi = -INFINITY;
	for (size_t i = 0; i < log->count; i++) {
		for (int s = PLOT_SERIES_TRAIN; s <= PLOT_SERIES_VAL; s++) {
			double v = value(&log->epochs[i], panel, s);
			if (isfinite(v)) {
				*lo = fmin(*lo, v);
				*hi = fmax(*hi, v);
			}
		}
	}
}

/* ---- Text ---------------------------------------------------------------------------------- */

/* Bold at the title size, or regular at the label size. */
static void set_font(cairo_t *cr, const plot_style *st, bool title)
{
	cairo_set_font_face(cr, title ? st->bold : st->regular);
	cairo_set_font_size(cr, title ? st->title : st->font);
}

static double text_width(cairo_t *cr, const char *s)
{
	cairo_text_extents_t te;
	cairo_text_extents(cr, s, &te);
	return te.x_advance;
}

/* Text anchored at (x, y): halign 0 left, 0.5 centre, 1 right; valign 0 top, 0.5 middle, 1 bottom
 * of the font's ascent and descent, so labels of one row line up whatever their letters. */
static void text_at(cairo_t *cr, double x, double y, const char *s, double halign, double valign)
{
	cairo_font_extents_t fe;
	cairo_font_extents(cr, &fe);
	cairo_move_to(cr, x - halign * text_width(cr, s), y + fe.ascent - valign * (fe.ascent + fe.descent));
	cairo_show_text(cr, s);
}

/* ---- Layout -------------------------------------------------------------------------------- */

static const char *legend_label(const plot_log *log, enum plot_series s)
{
	return s == PLOT_SERIES_TRAIN ? "train" : log->has_val ? "validation" : "no validation data";
}

static plot_rect legend_size(cairo_t *cr, const plot_style *st, const plot_log *log)
{
	set_font(cr, st, false);
	double w = fmax(text_width(cr, legend_label(log, PLOT_SERIES_TRAIN)),
	                text_width(cr, legend_label(log, PLOT_SERIES_VAL)));
	return (plot_rect){0, 0, st->font * (0.6 + 2.2 + 0.5 + 0.6) + w, st->font * (0.5 * 2 + 1.4 * 2)};
}

static bool inside(plot_rect r, double x, double y, double margin)
{
	return x >= r.x - margin && x <= r.x + r.w + margin && y >= r.y - margin && y <= r.y + r.h + margin;
}

/* How much of the curves a legend at `r` would hide: markers and points every few pixels along
 * the lines. */
static int legend_cover(const plot_log *log, int panel, const plot_panel *p, plot_rect r, double margin)
{
	int n = 0;
	for (int s = PLOT_SERIES_TRAIN; s <= PLOT_SERIES_VAL; s++) {
		double px = NAN, py = NAN;
		for (size_t i = 0; i < log->count; i++) {
			double v = value(&log->epochs[i], panel, s);
			if (!isfinite(v)) {
				px = NAN;
				continue;
			}
			double x = plot_x_pixel(p, log->epochs[i].epoch), y = plot_y_pixel(p, v);
			n += inside(r, x, y, margin) ? 4 : 0;
			if (isfinite(px)) {
				int steps = (int)fmin(1000, hypot(x - px, y - py) / 3) + 1;
				for (int k = 1; k < steps; k++)
					n += inside(r, px + (x - px) * k / steps, py + (y - py) * k / steps, margin);
			}
			px = x;
			py = y;
		}
	}
	return n;
}

/* The frame's emptiest corner, preferring the one where such curves are usually empty: top
 * right for a falling loss, bottom right for a rising accuracy. */
static plot_rect place_legend(cairo_t *cr, const plot_style *st, const plot_log *log, int panel,
                              const plot_panel *p)
{
	plot_rect size = legend_size(cr, st, log), best = size;
	double in = st->font * 0.6;
	static const int corners[PLOT_PANELS][4][2] = {
		{{1, 0}, {0, 0}, {1, 1}, {0, 1}}, /* loss: top right, top left, bottom right, bottom left */
		{{1, 1}, {0, 1}, {1, 0}, {0, 0}}, /* accuracy: bottom right, bottom left, top right, top left */
	};
	int best_cover = -1;
	for (int c = 0; c < 4; c++) {
		plot_rect r = size;
		r.x = corners[panel][c][0] ? p->frame.x + p->frame.w - in - r.w : p->frame.x + in;
		r.y = corners[panel][c][1] ? p->frame.y + p->frame.h - in - r.h : p->frame.y + in;
		int cover = legend_cover(log, panel, p, r, st->marker + st->line);
		if (best_cover < 0 || cover < best_cover) {
			best_cover = cover;
			best = r;
		}
	}
	best.x = round(best.x);
	best.y = round(best.y);
	return best;
}

static strata_status layout_panel(cairo_t *cr, const plot_style *st, const plot_log *log, int panel,
                                  double region_x, double region_w, int height, plot_panel *p,
                                  strata_error *err)
{
	double top = st->pad + st->title * 1.4;
	double bottom = st->tick + st->font * (0.4 + 1.2 + 0.5 + 1.2) + st->pad;
	double fh = floor(height - top - bottom);

	double lo, hi;
	value_range(log, panel, &lo, &hi);
	plot_nice_axis(lo, hi, (int)(fh / (st->font * 2.5)), false, &p->y);
	set_font(cr, st, false);
	double label_w = 0;
	char buf[64];
	for (int i = 0; i < p->y.ticks; i++) {
		tick_label(&p->y, i, buf, sizeof(buf));
		label_w = fmax(label_w, text_width(cr, buf));
	}
	double left = ceil(st->pad + st->font * (1.2 + 0.6 + 0.4) + label_w + st->tick);
	double right = ceil(st->pad + st->font);
	double fw = floor(region_w - left - right);
	if (fw < 4 * st->font || fh < 4 * st->font)
		return plot_fail(err, STRATA_ERR_INVALID,
		                 "a %.0fx%d picture leaves no room for the %s plot beside its labels; make it bigger",
		                 2 * region_w, height, axis_titles[panel]);
	p->frame = (plot_rect){round(region_x + left), round(top), fw, fh};
	plot_nice_axis(log->epochs[0].epoch, log->epochs[log->count - 1].epoch, (int)(fw / (st->font * 4)), true,
	               &p->x);
	p->legend = place_legend(cr, st, log, panel, p);
	return STRATA_OK;
}

/* ---- Drawing ------------------------------------------------------------------------------- */

static void draw_marker(cairo_t *cr, const plot_style *st, enum plot_series s, double x, double y)
{
	cairo_new_sub_path(cr);
	if (s == PLOT_SERIES_TRAIN) {
		cairo_arc(cr, x, y, st->marker, 0, 2 * M_PI);
	} else {
		double h = st->marker * 0.9;
		cairo_rectangle(cr, x - h, y - h, 2 * h, 2 * h);
	}
	cairo_fill(cr);
}

static void draw_series(cairo_t *cr, const plot_style *st, const plot_log *log, int panel, enum plot_series s,
                        const plot_panel *p)
{
	set_colour(cr, plot_series_colour(s));
	cairo_set_line_width(cr, st->line);
	cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
	cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
	/* A missing or non-finite value breaks the line rather than bridging it. */
	bool pen = false;
	for (size_t i = 0; i < log->count; i++) {
		double v = value(&log->epochs[i], panel, s);
		if (!isfinite(v)) {
			pen = false;
			continue;
		}
		double x = plot_x_pixel(p, log->epochs[i].epoch), y = plot_y_pixel(p, v);
		if (pen)
			cairo_line_to(cr, x, y);
		else
			cairo_move_to(cr, x, y);
		pen = true;
	}
	cairo_stroke(cr);
	for (size_t i = 0; i < log->count; i++) {
		double v = value(&log->epochs[i], panel, s);
		if (isfinite(v))
			draw_marker(cr, st, s, plot_x_pixel(p, log->epochs[i].epoch), plot_y_pixel(p, v));
	}
}

static void draw_axes(cairo_t *cr, const plot_style *st, int panel, const plot_panel *p)
{
	const plot_rect f = p->frame;
	char buf[64];
	/* Grid, then the frame over it; +0.5 puts 1-pixel lines on pixel centres. */
	cairo_set_line_width(cr, 1);
	cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
	for (int i = 0; i < p->x.ticks; i++) {
		double x = round(plot_x_pixel(p, p->x.first + i * p->x.step)) + 0.5;
		cairo_move_to(cr, x, f.y);
		cairo_line_to(cr, x, f.y + f.h);
	}
	for (int i = 0; i < p->y.ticks; i++) {
		double y = round(plot_y_pixel(p, p->y.first + i * p->y.step)) - 0.5;
		cairo_move_to(cr, f.x, y);
		cairo_line_to(cr, f.x + f.w, y);
	}
	cairo_stroke(cr);

	cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
	cairo_rectangle(cr, f.x - 0.5, f.y - 0.5, f.w + 1, f.h + 1);
	cairo_stroke(cr);
	set_font(cr, st, false);
	for (int i = 0; i < p->x.ticks; i++) {
		double x = round(plot_x_pixel(p, p->x.first + i * p->x.step)) + 0.5;
		cairo_move_to(cr, x, f.y + f.h);
		cairo_line_to(cr, x, f.y + f.h + st->tick);
		cairo_stroke(cr);
		tick_label(&p->x, i, buf, sizeof(buf));
		text_at(cr, x, f.y + f.h + st->tick + st->font * 0.4, buf, 0.5, 0);
	}
	for (int i = 0; i < p->y.ticks; i++) {
		double y = round(plot_y_pixel(p, p->y.first + i * p->y.step)) - 0.5;
		cairo_move_to(cr, f.x, y);
		cairo_line_to(cr, f.x - st->tick, y);
		cairo_stroke(cr);
		tick_label(&p->y, i, buf, sizeof(buf));
		text_at(cr, f.x - st->tick - st->font * 0.4, y, buf, 1, 0.5);
	}

	text_at(cr, f.x + f.w / 2, f.y + f.h + st->tick + st->font * (0.4 + 1.2 + 0.5), "Epoch", 0.5, 0);
	cairo_save(cr);
	double label_w = 0;
	for (int i = 0; i < p->y.ticks; i++) {
		tick_label(&p->y, i, buf, sizeof(buf));
		label_w = fmax(label_w, text_width(cr, buf));
	}
	cairo_translate(cr, f.x - st->tick - st->font * (0.4 + 0.6 + 0.6) - label_w, f.y + f.h / 2);
	cairo_rotate(cr, -M_PI / 2);
	text_at(cr, 0, 0, axis_titles[panel], 0.5, 0.5);
	cairo_restore(cr);

	set_font(cr, st, true);
	text_at(cr, f.x + f.w / 2, st->pad, panel_titles[panel], 0.5, 0);
}

static void draw_legend(cairo_t *cr, const plot_style *st, const plot_log *log, const plot_panel *p)
{
	const plot_rect r = p->legend;
	cairo_rectangle(cr, r.x + 0.5, r.y + 0.5, r.w - 1, r.h - 1);
	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_fill_preserve(cr);
	cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
	cairo_set_line_width(cr, 1);
	cairo_stroke(cr);
	set_font(cr, st, false);
	for (int s = PLOT_SERIES_TRAIN; s <= PLOT_SERIES_VAL; s++) {
		double y = r.y + st->font * (0.5 + 1.4 * (s + 0.5));
		double x = r.x + st->font * 0.6, swatch = st->font * 2.2;
		bool shown = s == PLOT_SERIES_TRAIN || log->has_val;
		if (shown) {
			set_colour(cr, plot_series_colour(s));
			cairo_set_line_width(cr, st->line);
			cairo_move_to(cr, x, y);
			cairo_line_to(cr, x + swatch, y);
			cairo_stroke(cr);
			draw_marker(cr, st, s, x + swatch / 2, y);
			cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
		} else {
			cairo_set_source_rgb(cr, 0.45, 0.45, 0.45);
		}
		text_at(cr, x + swatch + st->font * 0.5, y, legend_label(log, s), 0, 0.5);
	}
}

static plot_style style_for(int width, int height)
{
	double font = fmin(fmax(13 * fmin(width / 1000.0, height / 400.0), 9), 48);
	return (plot_style){
		.font = font,
		.title = font * 1.15,
		.pad = round(font * 0.8),
		.tick = round(font * 0.4),
		.line = fmax(1.5, font * 0.15),
		.marker = fmax(2.5, font * 0.3),
	};
}

strata_status plot_check_size(int64_t width, int64_t height, strata_error *err)
{
	if (width < PLOT_MIN_WIDTH || width > PLOT_MAX_SIDE || height < PLOT_MIN_HEIGHT || height > PLOT_MAX_SIDE)
		return plot_fail(err, STRATA_ERR_INVALID,
		                 "a %" PRId64 "x%" PRId64 " picture is refused: width from %d to %d, "
		                 "height from %d to %d pixels",
		                 width, height, PLOT_MIN_WIDTH, PLOT_MAX_SIDE, PLOT_MIN_HEIGHT, PLOT_MAX_SIDE);
	return STRATA_OK;
}

strata_status plot_render(cairo_t *cr, const plot_log *log, int width, int height, plot_layout *layout,
                          strata_error *err)
{
	strata_status st = plot_check_size(width, height, err);
	if (st)
		return st;
	if (log->count == 0)
		return plot_fail(err, STRATA_ERR_INVALID, "the log has no epoch to plot");
	if (cairo_status(cr))
		return plot_fail(err, STRATA_ERR_INVALID, "cairo: %s", cairo_status_to_string(cairo_status(cr)));
	plot_style style = style_for(width, height);
	/* The two faces made once, so that their status can be checked before anything is drawn. */
	style.regular = cairo_toy_font_face_create(FONT_FAMILY, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
	style.bold = cairo_toy_font_face_create(FONT_FAMILY, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
	cairo_status_t cs = cairo_font_face_status(style.regular);
	if (!cs)
		cs = cairo_font_face_status(style.bold);
	if (cs) {
		st = plot_fail(err, STRATA_ERR_NO_MEMORY, "cairo: no font face for %s: %s", FONT_FAMILY,
		               cairo_status_to_string(cs));
		goto out_destroy_faces;
	}
	/* The caller's context comes back as it was, font included. */
	cairo_save(cr);
	plot_layout l;
	for (int k = 0; k < PLOT_PANELS; k++) {
		st = layout_panel(cr, &style, log, k, k * width / 2.0, width / 2.0, height, &l.panel[k], err);
		if (st)
			goto out_restore;
	}

	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	for (int k = 0; k < PLOT_PANELS; k++) {
		const plot_panel *p = &l.panel[k];
		draw_axes(cr, &style, k, p);
		cairo_save(cr);
		cairo_rectangle(cr, p->frame.x, p->frame.y, p->frame.w, p->frame.h);
		cairo_clip(cr);
		draw_series(cr, &style, log, k, PLOT_SERIES_TRAIN, p);
		draw_series(cr, &style, log, k, PLOT_SERIES_VAL, p);
		cairo_restore(cr);
		draw_legend(cr, &style, log, p);
	}
	/* cairo's errors are sticky: one check after drawing sees any step that failed. */
	if ((cs = cairo_status(cr))) {
		st = plot_fail(err, STRATA_ERR_NO_MEMORY, "cairo: drawing the curves failed: %s",
		               cairo_status_to_string(cs));
		goto out_restore;
	}
	if (layout)
		*layout = l;

out_restore:
	cairo_restore(cr);
out_destroy_faces:
	/* The context may still hold a face; it keeps its own reference. */
	cairo_font_face_destroy(style.bold);
	cairo_font_face_destroy(style.regular);
	return st;
}

strata_status plot_write_png(const plot_log *log, int width, int height, const char *path,
                             plot_layout *layout, strata_error *err)
{
	strata_status st = plot_check_size(width, height, err);
	if (st)
		return st;
	cairo_t *cr = NULL;
	cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
	cairo_status_t cs = cairo_surface_status(surface);
	if (cs) {
		st = plot_fail(err, STRATA_ERR_NO_MEMORY, "cairo: cannot make a %dx%d picture: %s", width, height,
		               cairo_status_to_string(cs));
		goto out_destroy_surface;
	}
	cr = cairo_create(surface);
	if ((cs = cairo_status(cr))) {
		st = plot_fail(err, STRATA_ERR_NO_MEMORY, "cairo: cannot draw on a %dx%d picture: %s", width, height,
		               cairo_status_to_string(cs));
		goto out_destroy_cr;
	}
	if ((st = plot_render(cr, log, width, height, layout, err)))
		goto out_destroy_cr;
	cairo_surface_flush(surface);
	/* cairo says only "error while writing to output stream"; errno tells why (its fopen or
	 * fwrite failed). */
	errno = 0;
	cs = cairo_surface_write_to_png(surface, path);
	if (cs) {
		int e = errno;
		if (cs == CAIRO_STATUS_WRITE_ERROR && e)
			st = plot_fail(err, STRATA_ERR_IO, "cannot write %s: %s", path, strerror(e));
		else
			st = plot_fail(err, STRATA_ERR_IO, "cannot write %s: cairo: %s", path,
			               cairo_status_to_string(cs));
	}

out_destroy_cr:
	cairo_destroy(cr);
out_destroy_surface:
	cairo_surface_destroy(surface);
	return st;
}
