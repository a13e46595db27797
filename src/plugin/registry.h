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
	/* The table handed to plugins and layer callbacks (host_api.c), set by whoever opens the
	 * registry: the model and the loader call plugins through it without knowing its code. */
	const strata_host *host;
};

/* An empty table with the options' log; NULL when out of memory. */
strata_registry *st_registry_create(const strata_registry_options *opts);
/* Frees the table; the plugins it came from are unloaded by the caller (st_plugins_unload). */
void st_registry_destroy(strata_registry *reg);

/* Matches `type` against each layer type's `type` and, case-insensitively, its Keras class. */
const st_layer_type *st_registry_find_layer(const strata_registry *reg, const char *type);
const st_program_src *st_registry_find_program(const strata_registry *reg, const char *name);
/* Writes "a, b, c" of all layer types into buf. */
void st_registry_layer_list(const strata_registry *reg, char *buf, size_t size);
/* `strata layers`' lines: one parameter (name, kind and range, default, doc), and every layer type
 * with its plugin file, doc and parameters. */
void st_registry_print_param(const strata_param *p, FILE *out);
void st_registry_print_types(const strata_registry *reg, FILE *out);

strata_status st_registry_add_program(strata_registry *reg, const char *name, const char *source,
                                      const char *options, strata_error *err);
strata_status st_registry_add_layer(strata_registry *reg, const strata_layer_ops *ops, strata_error *err);

void st_registry_log(const strata_registry *reg, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* plugin_loader.c: loads every plugin of the search path into the registry, handing each reg->host. */
strata_status st_plugins_load_all(strata_registry *reg, const strata_registry_options *opts, strata_error *err);
strata_status st_plugin_load_file(strata_registry *reg, const char *path, strata_error *err);
/* Closes the libraries of `plugins` and frees the array. */
void st_plugins_unload(st_plugin *plugins, size_t n);

#endif
