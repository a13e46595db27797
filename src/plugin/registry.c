/* The registry of layer types and program sources. Plugins fill it through the host table. */
#include "plugin/registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"

/* Grows *items (of `size`-byte elements) so that one more fits. */
static strata_status grow(void **items, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return STRATA_OK;
	size_t ncap = *cap ? *cap * 2 : 8;
	void *p = realloc(*items, ncap * size);
	if (!p)
		return STRATA_ERR_NO_MEMORY;
	*items = p;
	*cap = ncap;
	return STRATA_OK;
}

void st_registry_log(const strata_registry *reg, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	st_log_v(reg->log, reg->log_user, reg->verbosity, level, fmt, ap);
	va_end(ap);
}

const st_layer_type *st_registry_find_layer(const strata_registry *reg, const char *type)
{
	for (size_t i = 0; i < reg->n_types; i++)
		if (strcmp(reg->types[i].ops.type, type) == 0)
			return &reg->types[i];
	for (size_t i = 0; i < reg->n_types; i++) {
		const char *cls = reg->types[i].ops.class_name;
		if (cls && strcasecmp(cls, type) == 0)
			return &reg->types[i];
	}
	return NULL;
}

const st_program_src *st_registry_find_program(const strata_registry *reg, const char *name)
{
	for (size_t i = 0; i < reg->n_programs; i++)
		if (strcmp(reg->programs[i].name, name) == 0)
			return &reg->programs[i];
	return NULL;
}

void st_registry_layer_list(const strata_registry *reg, char *buf, size_t size)
{
	size_t used = 0;
	if (size)
		buf[0] = '\0';
	for (size_t i = 0; i < reg->n_types && used < size; i++) {
		int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", reg->types[i].ops.type);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

strata_status st_registry_add_program(strata_registry *reg, const char *name, const char *source,
                                      const char *options, strata_error *err)
{
	const char *owner = reg->current_owner ? reg->current_owner : "strata";
	if (!name || !*name || !source)
		return st_fail(err, STRATA_ERR_PLUGIN, "%s: register_program needs a name and a source", owner);
	const st_program_src *dup = st_registry_find_program(reg, name);
	if (dup)
		return st_fail(err, STRATA_ERR_PLUGIN, "%s: program '%s' is already registered by %s", owner,
		               name, dup->owner);
	if (grow((void **)&reg->programs, &reg->cap_programs, reg->n_programs, sizeof(*reg->programs)))
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory registering program '%s'", name);
	st_program_src *p = &reg->programs[reg->n_programs];
	p->name = strdup(name);
	p->source = strdup(source);
	p->options = strdup(options ? options : "");
	p->owner = strdup(owner);
	if (!p->name || !p->source || !p->options || !p->owner) {
		free(p->name);
		free(p->source);
		free(p->options);
		free(p->owner);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory registering program '%s'", name);
	}
	reg->n_programs++;
	return STRATA_OK;
}

static strata_status check_layer_ops(const strata_layer_ops *ops, const char *owner, strata_error *err)
{
	size_t min_size = offsetof(strata_layer_ops, destroy);
	if (ops->size < min_size)
		return st_fail(err, STRATA_ERR_PLUGIN, "%s: layer ops size %u is smaller than ABI 1's %zu", owner,
		               ops->size, min_size);
	if (!ops->type || !*ops->type || !ops->build || !ops->forward)
		return st_fail(err, STRATA_ERR_PLUGIN, "%s: a layer type needs type, build and forward", owner);
	if (ops->n_params && !ops->params)
		return st_fail(err, STRATA_ERR_PLUGIN, "%s: layer '%s' declares %u parameters but no table", owner,
		               ops->type, ops->n_params);
	for (uint32_t i = 0; i < ops->n_params; i++) {
		const strata_param *p = &ops->params[i];
		if (!p->name || (unsigned)p->type >= STRATA_PARAM_TYPE_COUNT ||
		    (p->type == STRATA_PARAM_ENUM && !p->choices) ||
		    (p->type == STRATA_PARAM_UNSUPPORTED && !p->default_value) ||
		    ((p->type == STRATA_PARAM_INTS || p->type == STRATA_PARAM_FLOATS) && p->count > STRATA_MAX_RANK))
			return st_fail(err, STRATA_ERR_PLUGIN, "%s: layer '%s': parameter %u is malformed", owner,
			               ops->type, i);
		/* A numeric parameter's `choices` is its bounds' kind (plugin.h); anything else is a
		 * plugin bug, refused when the plugin loads rather than when a model file names it. */
		bool numeric = p->type == STRATA_PARAM_INT || p->type == STRATA_PARAM_FLOAT || p->type == STRATA_PARAM_INTS ||
		               p->type == STRATA_PARAM_FLOATS;
		if (numeric && p->choices && p->choices[0] && strcmp(p->choices, "[]") && strcmp(p->choices, "(]") &&
		    strcmp(p->choices, "[)") && strcmp(p->choices, "()"))
			return st_fail(err, STRATA_ERR_PLUGIN,
			               "%s: layer '%s': parameter '%s' has bounds \"%s\"; expected \"[]\", \"(]\", \"[)\" or \"()\"",
			               owner, ops->type, p->name, p->choices);
		if (strcmp(p->name, "type") == 0 || strcmp(p->name, "name") == 0 ||
		    strcmp(p->name, "trainable") == 0)
			return st_fail(err, STRATA_ERR_PLUGIN, "%s: layer '%s': parameter name '%s' is reserved",
			               owner, ops->type, p->name);
	}
	return STRATA_OK;
}

strata_status st_registry_add_layer(strata_registry *reg, const strata_layer_ops *ops, strata_error *err)
{
	const char *owner = reg->current_owner ? reg->current_owner : "strata";
	if (!ops)
		return st_fail(err, STRATA_ERR_PLUGIN, "%s: register_layer(NULL)", owner);
	strata_status st = check_layer_ops(ops, owner, err);
	if (st)
		return st;
	for (size_t i = 0; i < reg->n_types; i++) {
		if (strcmp(reg->types[i].ops.type, ops->type) == 0) {
			/* Earlier folders of the search path win, so a user's folder cannot silently
			 * replace a built-in layer. */
			st_registry_log(reg, STRATA_LOG_WARN, "layer type '%s' from %s ignored: already provided by %s",
			                ops->type, reg->current_file ? reg->current_file : owner,
			                reg->types[i].plugin_file);
			return STRATA_OK;
		}
	}
	if (grow((void **)&reg->types, &reg->cap_types, reg->n_types, sizeof(*reg->types)))
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory registering layer '%s'", ops->type);
	st_layer_type *t = &reg->types[reg->n_types];
	memset(t, 0, sizeof(*t));
	/* Copy only what the plugin's struct holds; later fields stay zero (absent). */
	size_t n = ops->size < sizeof(t->ops) ? ops->size : sizeof(t->ops);
	memcpy(&t->ops, ops, n);
	t->ops.size = (uint32_t)n;
	t->plugin = strdup(owner);
	t->plugin_file = strdup(reg->current_file ? reg->current_file : "(builtin)");
	if (!t->plugin || !t->plugin_file) {
		free(t->plugin);
		free(t->plugin_file);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory registering layer '%s'", ops->type);
	}
	reg->n_types++;
	return STRATA_OK;
}

strata_registry *st_registry_create(const strata_registry_options *opts)
{
	strata_registry *reg = calloc(1, sizeof(*reg));
	if (!reg)
		return NULL;
	reg->log = opts->log;
	reg->log_user = opts->log_user;
	reg->verbosity = opts->verbosity;
	return reg;
}

void st_registry_destroy(strata_registry *reg)
{
	if (!reg)
		return;
	for (size_t i = 0; i < reg->n_programs; i++) {
		free(reg->programs[i].name);
		free(reg->programs[i].source);
		free(reg->programs[i].options);
		free(reg->programs[i].owner);
	}
	free(reg->programs);
	for (size_t i = 0; i < reg->n_types; i++) {
		free(reg->types[i].plugin);
		free(reg->types[i].plugin_file);
	}
	free(reg->types);
	for (size_t i = 0; i < reg->n_search_path; i++)
		free(reg->search_path[i]);
	free(reg->search_path);
	free(reg);
}

size_t strata_registry_layer_count(const strata_registry *reg)
{
	return reg->n_types;
}

const char *strata_registry_layer_type(const strata_registry *reg, size_t i)
{
	return i < reg->n_types ? reg->types[i].ops.type : NULL;
}

const char *strata_registry_layer_plugin(const strata_registry *reg, size_t i)
{
	return i < reg->n_types ? reg->types[i].plugin_file : NULL;
}

void strata_registry_print_search_path(const strata_registry *reg, FILE *out)
{
	for (size_t i = 0; i < reg->n_search_path; i++)
		fprintf(out, "%s\n", reg->search_path[i]);
}

/* The brackets of a numeric range: `choices` holds its bounds spec ("(]", "[)", "()"; plugin.h,
 * added in 0.3); NULL or "" (every older declaration) is "[]". The loader refuses a malformed spec
 * when it reads a value; shown here as inclusive. */
static void range_brackets(const strata_param *p, char *lo, char *hi)
{
	const char *c = p->choices;
	bool valid = c && (c[0] == '[' || c[0] == '(') && (c[1] == ']' || c[1] == ')') && c[2] == '\0';
	*lo = valid ? c[0] : '[';
	*hi = valid ? c[1] : ']';
}

void st_registry_print_param(const strata_param *p, FILE *out)
{
	static const char *const type_names[] = {"int", "float", "bool", "enum", "ints", "string", "regularizer",
	                                         "not supported", "constraint", "floats"};
	char kind[512], lo, hi;
	if (p->type == STRATA_PARAM_ENUM)
		snprintf(kind, sizeof(kind), "%s", p->choices);
	else if (p->type == STRATA_PARAM_INTS) {
		range_brackets(p, &lo, &hi);
		if (p->count)
			snprintf(kind, sizeof(kind), "%u ints in %c%.15g, %.15g%c", p->count, lo, p->min, p->max, hi);
		else
			snprintf(kind, sizeof(kind), "1 to %d ints in %c%.15g, %.15g%c", STRATA_MAX_RANK, lo, p->min, p->max,
			         hi);
	} else if (p->type == STRATA_PARAM_FLOATS) {
		range_brackets(p, &lo, &hi);
		if (p->count)
			snprintf(kind, sizeof(kind), "%u floats in %c%.15g, %.15g%c", p->count, lo, p->min, p->max, hi);
		else
			snprintf(kind, sizeof(kind), "1 to %d floats in %c%.15g, %.15g%c", STRATA_MAX_RANK, lo, p->min, p->max,
			         hi);
	} else if (p->type == STRATA_PARAM_INT || p->type == STRATA_PARAM_FLOAT) {
		range_brackets(p, &lo, &hi);
		snprintf(kind, sizeof(kind), "%s in %c%.15g, %.15g%c", type_names[p->type], lo, p->min, p->max, hi);
	} else if (p->type == STRATA_PARAM_UNSUPPORTED) {
		fprintf(out, "    %-20s %-40s only %s  %s\n", p->name, "not supported", p->default_value ? p->default_value : "",
		        p->doc ? p->doc : "");
		return;
	} else
		snprintf(kind, sizeof(kind), "%s", type_names[p->type]);
	fprintf(out, "    %-20s %-40s %s%s  %s\n", p->name, kind, p->default_value ? "default " : "required",
	        p->default_value ? p->default_value : "", p->doc ? p->doc : "");
}

void st_registry_print_types(const strata_registry *reg, FILE *out)
{
	for (size_t i = 0; i < reg->n_types; i++) {
		const st_layer_type *t = &reg->types[i];
		fprintf(out, "%s (%s)  from %s\n", t->ops.type, t->ops.class_name ? t->ops.class_name : t->ops.type,
		        t->plugin_file);
		if (t->ops.doc)
			fprintf(out, "    %s\n", t->ops.doc);
		for (uint32_t p = 0; p < t->ops.n_params; p++)
			st_registry_print_param(&t->ops.params[p], out);
		if (i + 1 < reg->n_types)
			fputc('\n', out);
	}
}
