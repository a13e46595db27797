/* Filter visualization by activation maximization (strata_visualize): the pieces tests reach. */
#ifndef ST_VISUALIZE_H
#define ST_VISUALIZE_H

#include <stddef.h>
#include <stdint.h>

#include <strata/strata.h>

/* Pixels between the images of a grid (Keras' example: margin = 5). */
#define ST_GRID_MARGIN 5u

/* Keras' deprocess_image: centred, divided by the standard deviation + 1e-5, scaled to a
 * standard deviation of 0.1 around 0.5, clipped to [0, 1], times 255, truncated to bytes. */
void st_deprocess(const float *x, size_t n, uint8_t *out);

/* The grid of strata_visualize_save_png as bytes: *out holds (*height) rows of (*width) x
 * channels bytes, freed with free(). */
strata_status st_filter_grid(const strata_visualize_result *r, uint32_t grid, uint8_t **out, uint32_t *width,
                             uint32_t *height, strata_error *err);

#endif
