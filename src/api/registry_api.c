/* The public entry points that put the layers together: a registry is its table (registry.c)
 * filled with the runtime's own programs and the plugins (plugin_loader.c), which are handed the
 * host table (host_api.c). */
#include <stdlib.h>
#include <string.h>

#include "core_cl.h"
#include "data_cl.h"
#include "base/error.h"
#include "gemm_cl.h"
#include "exec/host_api.h"
#include "loss_cl.h"
#include "model/params.h"
#include "optimizer_cl.h"
#include "plugin/registry.h"

strata_status strata_registry_open(const strata_registry_options *options, strata_registry **out,
                                   strata_error *err)
{
	strata_registry_options opts = {.size = sizeof(opts)};
	if (options)
		memcpy(&opts, options, options->size < sizeof(opts) ? options->size : sizeof(opts));
	*out = NULL;

	strata_registry *reg = st_registry_create(&opts);
	if (!reg)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	reg->host = &st_host_api;

	/* The runtime's own programs; "strata_" names are reserved for them. */
	strata_status st;
	if ((st = st_registry_add_program(reg, "core", st_core_cl_source, "", err)) ||
	    (st = st_registry_add_program(reg, "strata_loss", st_loss_cl_source, "", err)) ||
	    (st = st_registry_add_program(reg, "strata_optimizer", st_optimizer_cl_source, "", err)) ||
	    (st = st_registry_add_program(reg, "strata_data", st_data_cl_source, "", err)) ||
	    (st = st_registry_add_program(reg, "strata_gemm", st_gemm_cl_source, "", err)))
		goto out_close;
	st = st_plugins_load_all(reg, &opts, err);
	if (st)
		goto out_close;
	*out = reg;
	return STRATA_OK;

out_close:
	strata_registry_close(reg);
	return st;
}

void strata_registry_close(strata_registry *reg)
{
	if (!reg)
		return;
	/* Layer types point into the plugins' code: the table goes before the libraries. */
	st_plugin *plugins = reg->plugins;
	size_t n = reg->n_plugins;
	reg->plugins = NULL;
	reg->n_plugins = 0;
	st_registry_destroy(reg);
	st_plugins_unload(plugins, n);
}

/* The keys every layer takes, which the host reads itself (model/params.c), then the types. */
void strata_registry_print_layers(const strata_registry *reg, FILE *out)
{
	fprintf(out, "Every layer takes, besides its type's parameters:\n");
	fprintf(out, "    %-20s %-40s %s  %s\n", "type", "string", "required", "the layer type, as listed below");
	fprintf(out, "    %-20s %-40s %s  %s\n", "inputs", "names", "default the previous layer",
	        "the values it reads: model inputs or layers");
	for (uint32_t i = 0; i < st_schema_layer.n_params; i++)
		st_registry_print_param(&st_schema_layer.params[i], out);
	fputc('\n', out);
	st_registry_print_types(reg, out);
}
