/* The registry: layer types and OpenCL program sources, from the runtime itself (cl/) and from
 * plugins (plugin_loader.c). Knows nothing of devices. */
#ifndef ST_REGISTRY_H
#define ST_REGISTRY_H

#include <strata/plugin.h>
#include <strata/strata.h>

typedef struct st_program_src {
	char *name;    /* "conv2d", "core" */
	char *source;
	char *options; /* default build options */
	char *owner;   /* plugin name, or "strata" */
} st_program_src;

typedef struct st_layer_type {
	strata_layer_ops ops; /* copied up to the plugin's ops.size; later fields zero */
	char *plugin;         /* the providing plugin's name */
	char *plugin_file;    /* its .so path, or "(builtin)" */
} st_layer_type;

typedef struct st_plugin {
	void *handle; /* dlopen handle */
	char *path;
	const strata_plugin *desc;
} st_plugin;

struct strata_registry {
	st_program_src *programs;
	size_t n_programs, cap_programs;
	st_layer_type *types;
	size_t n_types, cap_types;
	st_plugin *plugins;
	size_t n_plugins, cap_plugins;
	char **search_path;
	size_t n_search_path;
	/* set while a plugin's init() runs, so registrations name their owner */
	const char *current_owner;
	const char *current_file;
	strata_error *init_err;
	strata_log_fn log;
	void *log_user;
	int verbosity;
};

/* Matches `type` against each layer type's `type` and, case-insensitively, its Keras class. */
const st_layer_type *st_registry_find_layer(const strata_registry *reg, const char *type);
const st_program_src *st_registry_find_program(const strata_registry *reg, const char *name);
/* Writes "a, b, c" of all layer types into buf. */
void st_registry_layer_list(const strata_registry *reg, char *buf, size_t size);

strata_status st_registry_add_program(strata_registry *reg, const char *name, const char *source,
                                      const char *options, strata_error *err);
strata_status st_registry_add_layer(strata_registry *reg, const strata_layer_ops *ops, strata_error *err);

void st_registry_log(const strata_registry *reg, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* plugin_loader.c */
strata_status st_plugins_load_all(strata_registry *reg, const strata_registry_options *opts, strata_error *err);
strata_status st_plugin_load_file(strata_registry *reg, const char *path, strata_error *err);
void st_plugins_unload(strata_registry *reg);

/* host_api.c: the function table handed to plugins. */
extern const strata_host st_host_api;

#endif
