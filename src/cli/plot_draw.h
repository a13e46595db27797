/* `strata plot`'s drawing: training curves of a log as two panels side by side, loss on the left
 * and accuracy on the right, each with the training and the validation series against the epoch,
 * axes with 1-2-5 tick steps (whole epochs), axis titles, a title and a legend. Drawn with cairo;
 * text with cairo's toy font API in DejaVu Sans. */
#ifndef STRATA_CLI_PLOT_DRAW_H
#define STRATA_CLI_PLOT_DRAW_H

#include <stdbool.h>
#include <stdint.h>

#include <cairo.h>

#include "plot_csv.h"

#define PLOT_DEFAULT_WIDTH 1000
#define PLOT_DEFAULT_HEIGHT 400
/* Below these the tick labels and titles no longer fit beside a readable plot. */
#define PLOT_MIN_WIDTH 320
#define PLOT_MIN_HEIGHT 200
#define PLOT_MAX_SIDE 8192

enum plot_series { PLOT_SERIES_TRAIN, PLOT_SERIES_VAL };
enum plot_panel_kind { PLOT_PANEL_LOSS, PLOT_PANEL_ACCURACY, PLOT_PANELS };

typedef struct plot_rgb {
	uint8_t r, g, b;
} plot_rgb;

/* The colour of a series' lines and markers, the same in both panels (matplotlib's first two). */
plot_rgb plot_series_colour(enum plot_series series);

typedef struct plot_axis {
	double lo, hi;      /* the values at the frame's edges */
	double first, step; /* tick i is at first + i * step */
	int ticks;
	int decimals;       /* digits after the point in the tick labels */
} plot_axis;

/* Axis for data from `lo` to `hi` (equal for a single value): a 5% margin on each side, and a
 * step of 1, 2 or 5 times a power of ten that gives at most about `target` ticks, at least 1
 * when `whole` (epochs). */
void plot_nice_axis(double lo, double hi, int target, bool whole, plot_axis *out);

typedef struct plot_rect {
	double x, y, w, h; /* device pixels, y downwards */
} plot_rect;

typedef struct plot_panel {
	plot_rect frame;  /* the plotting area inside the axes */
	plot_rect legend; /* the legend box, in the frame's emptiest corner */
	plot_axis x, y;
} plot_panel;

/* Where everything went, so that a caller (a test) can find a data point in the picture. */
typedef struct plot_layout {
	plot_panel panel[PLOT_PANELS];
} plot_layout;

/* Pixel coordinates of an epoch and of a value in a panel. */
double plot_x_pixel(const plot_panel *p, double epoch);
double plot_y_pixel(const plot_panel *p, double value);

/* STRATA_ERR_INVALID, with the allowed range, unless PLOT_MIN_* <= width/height <= PLOT_MAX_SIDE. */
strata_status plot_check_size(int64_t width, int64_t height, strata_error *err);

/* Draws the whole picture on `cr`, whose target is width x height pixels. `layout` may be NULL. */
strata_status plot_render(cairo_t *cr, const plot_log *log, int width, int height, plot_layout *layout,
                          strata_error *err);

/* Renders the picture and writes it as an RGB PNG to `path`. `layout` may be NULL. */
strata_status plot_write_png(const plot_log *log, int width, int height, const char *path,
                             plot_layout *layout, strata_error *err);

#endif
