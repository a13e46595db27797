/* What the two halves of the model-file reader share: the network's (model_loader.c) and the
 * recipe's (recipe.c). Every message points at the file, line and column of what it is about. */
#ifndef ST_MODEL_FILE_H
#define ST_MODEL_FILE_H

#include "model/model.h"
#include "model/params.h"
#include "model/yaml_doc.h"

typedef struct st_loader {
	strata_model *m;
	const char *file;
	strata_error *err;
	st_pos *name_pos;  /* per layer: where its name was given, or its mapping */
	bool *name_given;  /* per layer: explicit `name:` */
	/* per layer, for graph.c: its `inputs:` node, its `shares:` name and where it stood */
	const st_ynode **layer_inputs;
	char **shares;
	st_pos *shares_pos;
	/* wrappers.c: nodes it made (freed with the loader), its default names' count, and the
	 * layers to wire to the layer before their wrapper once every name is known */
	struct st_ynode **made;
	size_t n_made;
	size_t n_bidirectional, n_time_distributed;
	bool *read_previous;
} st_loader;

strata_status st_ld_fail(st_loader *ld, st_pos pos, strata_status status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
strata_status st_ld_no_memory(st_loader *ld);
/* layer_item.c: reads layer item `item` (a mapping with a `type`) into the model's layer i. */
strata_status st_ld_read_layer(st_loader *ld, size_t i, const struct st_ynode *item);
/* A node the loader made (a scalar of `text`, or an empty mapping or sequence: the wrappers'
 * layers and return_state's parts), kept in ld->made until st_ld_free_made; NULL when out of
 * memory. */
struct st_ynode *st_ld_made(st_loader *ld, st_ynode_kind kind, st_pos pos, const char *text);
void st_ld_free_made(st_loader *ld);
/* A value of one of params.c's own tables; a name missing there is a bug in the caller, which
 * then reads as the zero value instead of crashing. */
const st_param_value *st_ld_value(const st_param_value *values, const st_schema *schema, const char *name);
/* Reads `node` (NULL: absent) against `schema` into *values (freed with st_ld_free_values, also
 * on failure); keys in `handled` are the caller's. */
strata_status st_ld_section(st_loader *ld, const st_schema *schema, const st_ynode *node, st_pos pos,
                            const char *where, const char *const *handled, st_param_value **values);
void st_ld_free_values(st_param_value *values, uint32_t n);
/* `path` relative to the model file's folder (absolute paths as they are); NULL when out of
 * memory or path is NULL. */
char *st_ld_resolve(const char *base, const char *path);

/* recipe.c: the loss, loss_weights, metrics, optimizer, data, training and init_from sections,
 * after the layers and the graph (output and layer names resolve against them). */
strata_status st_recipe_read(st_loader *ld, const st_ynode *root);
/* serving.c: the `serving:` section (strata serve's batching; its defaults when absent). */
strata_status st_serving_read(st_loader *ld, const st_ynode *root);
/* After shape inference: what needs the layers' weights and output shapes. */
strata_status st_recipe_check(st_loader *ld);

#endif
