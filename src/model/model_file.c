/* The helpers both halves of the model-file reader use (model_file.h). */
#include "model/model_file.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

strata_status st_ld_fail(st_loader *ld, st_pos pos, strata_status status, const char *fmt, ...)
{
	char msg[STRATA_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return st_fail(ld->err, status, "%s:%u:%u: %s", ld->file, pos.line, pos.col, msg);
}

strata_status st_ld_no_memory(st_loader *ld)
{
	return st_fail(ld->err, STRATA_ERR_NO_MEMORY, "%s: out of memory", ld->file);
}

const st_param_value *st_ld_value(const st_param_value *values, const st_schema *schema, const char *name)
{
	static const st_param_value none;
	const st_param_value *v = st_param_find(values, schema->n_params, name);
	return v ? v : &none;
}

strata_status st_ld_section(st_loader *ld, const st_schema *schema, const st_ynode *node, st_pos pos,
                            const char *where, const char *const *handled, st_param_value **values)
{
	*values = calloc(schema->n_params ? schema->n_params : 1, sizeof(**values));
	if (!*values)
		return st_ld_no_memory(ld);
	st_param_group g = {schema->params, schema->n_params, *values};
	return st_params_read(ld->file, node, pos, where, &g, 1, handled, ld->err);
}

void st_ld_free_values(st_param_value *values, uint32_t n)
{
	st_params_release(values, n);
	free(values);
}

/* Relative paths name files beside the model file, wherever the program runs from. */
char *st_ld_resolve(const char *base, const char *path)
{
	if (!path)
		return NULL;
	if (!base || !*base || path[0] == '/')
		return strdup(path);
	size_t bl = strlen(base), n = bl + strlen(path) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s%s%s", base, base[bl - 1] == '/' ? "" : "/", path);
	return p;
}

st_ynode *st_ld_made(st_loader *ld, st_ynode_kind kind, st_pos pos, const char *text)
{
	st_ynode **grown = realloc(ld->made, (ld->n_made + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	ld->made = grown;
	st_ynode *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->kind = kind;
	n->pos = pos;
	if (kind == ST_YNODE_SCALAR) {
		n->u.scalar.text = strdup(text ? text : "");
		if (!n->u.scalar.text) {
			free(n);
			return NULL;
		}
		n->u.scalar.len = strlen(n->u.scalar.text);
	}
	ld->made[ld->n_made++] = n;
	return n;
}

void st_ld_free_made(st_loader *ld)
{
	for (size_t i = 0; i < ld->n_made; i++) {
		st_ynode *n = ld->made[i];
		if (n->kind == ST_YNODE_SCALAR)
			free(n->u.scalar.text);
		else if (n->kind == ST_YNODE_SEQUENCE)
			free(n->u.seq.items);
		else
			free(n->u.map.pairs);
		free(n);
	}
	free(ld->made);
	ld->made = NULL;
	ld->n_made = 0;
}
