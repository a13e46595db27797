/* The figures of a self-organizing map, on the host from the map layer's output (each sample's
 * best-matching unit and its distance to every unit, plugins/som/som.c): quantization error,
 * topographic error as MiniSom counts it, and the purity of each unit's label. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/dataset.h"
#include "exec/session.h"

/* The map's grid, from the output layer's parameters. */
typedef struct map_grid {
	uint32_t rows, columns, units;
	bool hexagonal;
} map_grid;

static strata_status map_grid_of(const strata_model *m, const strata_layer *out, map_grid *g, strata_error *err)
{
	const st_param_value *rows = st_layer_param(out, "rows"), *columns = st_layer_param(out, "columns");
	const st_param_value *topology = st_layer_param(out, "topology");
	if (strcmp(out->type->ops.type, "som") != 0 || !rows || !columns || !topology)
		return st_fail(err, STRATA_ERR_INVALID, "%s: layer '%s' is a %s, not a self-organizing map (som)",
		               m->file, out->name, out->type->ops.type);
	g->rows = (uint32_t)rows->i;
	g->columns = (uint32_t)columns->i;
	g->units = g->rows * g->columns;
	g->hexagonal = topology->s && strcmp(topology->s, "hexagonal") == 0;
	return STRATA_OK;
}

strata_status strata_map_grid(const strata_model *m, size_t layer, uint32_t *rows, uint32_t *columns,
                              bool *hexagonal, strata_error *err)
{
	map_grid g = {0};
	if (layer >= m->n_layers)
		return st_fail(err, STRATA_ERR_INVALID, "%s: no layer %zu", m->file, layer);
	strata_status st = map_grid_of(m, &m->layers[layer], &g, err);
	if (st)
		return st;
	*rows = g.rows;
	*columns = g.columns;
	*hexagonal = g.hexagonal;
	return STRATA_OK;
}

/* Whether units a and b are neighbours: on a rectangular grid the 8 around a unit (MiniSom's
 * distance <= 1.42), on a hexagonal one the 6 at distance 1 (odd rows shifted half a unit). */
static bool map_adjacent(const map_grid *g, uint32_t a, uint32_t b)
{
	double ra = a / g->columns, ca = a % g->columns, rb = b / g->columns, cb = b % g->columns;
	if (!g->hexagonal)
		return fabs(ra - rb) <= 1.0 && fabs(ca - cb) <= 1.0;
	double xa = ca + (((a / g->columns) & 1) ? 0.5 : 0.0), xb = cb + (((b / g->columns) & 1) ? 0.5 : 0.0);
	double dy = (ra - rb) * sqrt(3.0) / 2.0, dx = xa - xb;
	return dx * dx + dy * dy <= 1.0 + 1e-9;
}

strata_status strata_evaluate_map(strata_session *s, strata_dataset *ds, uint32_t batch_size,
                                  strata_map_result *result, strata_error *err)
{
	strata_model *m = s->model;
	const strata_layer *out = &m->layers[m->outputs[0]];
	map_grid g = {0};
	strata_status st;
	memset(result, 0, sizeof(*result));
	if ((st = map_grid_of(m, out, &g, err)) || (st = st_session_check_data(s, ds, "evaluation", err)) ||
	    (st = st_dataset_set_order(ds, false, 0, 0, err)))
		return st;
	uint32_t bs = batch_size && batch_size <= s->max_batch ? batch_size : s->max_batch;
	size_t per = (size_t)g.units + 2;
	float *rows = malloc((size_t)bs * per * sizeof(float));
	uint32_t *labels_of = ds->n_targets ? calloc((size_t)g.units * ds->targets[0].classes, sizeof(uint32_t)) : NULL;
	uint32_t *hits = calloc(g.units, sizeof(uint32_t));
	if (!rows || !hits || (ds->n_targets && !labels_of)) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory for a map of %u units", g.units);
		goto out_free;
	}
	double qe = 0.0;
	uint64_t te = 0;
	for (uint32_t start = 0; start < ds->n; start += bs) {
		uint32_t b = ds->n - start < bs ? ds->n - start : bs;
		if ((st = st_dataset_gather_session(ds, start, b, s, false, err)) ||
		    (st = st_session_forward_device(s, b, false, err)) ||
		    (st = st_tensor_read(s->rt, st_session_value(s, st_layer_value(m, m->outputs[0])), 0, rows,
		                         (size_t)b * per * sizeof(float), err)))
			goto out_free;
		for (uint32_t i = 0; i < b; i++) {
			const float *d = rows + (size_t)i * per + 2;
			/* The best unit as the device chose it (the first of equal distances), the second best. */
			uint32_t best = (uint32_t)rows[(size_t)i * per] * g.columns + (uint32_t)rows[(size_t)i * per + 1];
			uint32_t second = UINT32_MAX;
			for (uint32_t j = 0; j < g.units; j++)
				if (j != best && (second == UINT32_MAX || d[j] < d[second]))
					second = j;
			qe += d[best];
			te += second != UINT32_MAX && !map_adjacent(&g, best, second);
			hits[best]++;
			if (labels_of) {
				/* The order is the identity (set above): sample start + i. */
				labels_of[(size_t)best * ds->targets[0].classes + ds->targets[0].host[start + i]]++;
			}
		}
	}
	result->count = ds->n;
	result->units = g.units;
	result->quantization_error = ds->n ? qe / ds->n : 0.0;
	result->topographic_error = ds->n ? (double)te / ds->n : 0.0;
	for (uint32_t j = 0; j < g.units; j++)
		result->units_used += hits[j] > 0;
	if (labels_of) {
		uint64_t agree = 0;
		for (uint32_t j = 0; j < g.units; j++) {
			const uint32_t *counts = labels_of + (size_t)j * ds->targets[0].classes;
			uint32_t most = 0;
			for (uint32_t c = 0; c < ds->targets[0].classes; c++)
				most = counts[c] > most ? counts[c] : most;
			agree += most;
		}
		result->has_purity = true;
		result->purity = ds->n ? (double)agree / ds->n : 0.0;
	}
	st = st_finish(s->rt, err);
out_free:
	free(rows);
	free(labels_of);
	free(hits);
	return st;
}
