/* libFuzzer target: YAML model text through the model loader, up to and including shape
 * inference (every plugin's build()), then the summary table. The registry, with the plugins
 * built beside this target under the same sanitizers, is opened once; each input's model is
 * freed, so LeakSanitizer sees a leak in any error path. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/strata.h>

#define DISPLAY_NAME "fuzz.yaml"

static strata_registry *reg;
static FILE *sink;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	strata_error err = {0};
	strata_registry_options opts = {
		.size = sizeof(opts),
		.plugin_path = FUZZ_PLUGIN_DIR,
		.no_default_paths = true,
	};
	if (strata_registry_open(&opts, &reg, &err) != STRATA_OK) {
		fprintf(stderr, "fuzz_model: cannot open the registry on %s: %s\n", FUZZ_PLUGIN_DIR,
		        err.message);
		exit(1);
	}
	if (strata_registry_layer_count(reg) == 0) {
		fprintf(stderr, "fuzz_model: no layer plugins in %s\n", FUZZ_PLUGIN_DIR);
		exit(1);
	}
	sink = fopen("/dev/null", "w");
	if (!sink) {
		perror("fuzz_model: /dev/null");
		exit(1);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	strata_error err = {0};
	strata_model *m = NULL;
	strata_status st = strata_model_load_string(reg, (const char *)data, size, DISPLAY_NAME, "/nonexistent",
	                                            &m, &err);
	if (st != STRATA_OK) {
		/* A refusal says where and why ("FILE:LINE:COLUMN: message"), in the documented classes. */
		if (m || strncmp(err.message, DISPLAY_NAME ":", strlen(DISPLAY_NAME ":")) ||
		    (st != STRATA_ERR_PARSE && st != STRATA_ERR_INVALID && st != STRATA_ERR_OVERFLOW &&
		     st != STRATA_ERR_UNSUPPORTED)) {
			fprintf(stderr, "fuzz_model: status %s, model %p, message '%s'\n",
			        strata_status_name(st), (void *)m, err.message);
			abort();
		}
		return 0;
	}
	size_t n = strata_model_layer_count(m);
	for (size_t i = 0; i < n; i++) {
		strata_shape s = strata_model_output_shape(m, i);
		if (s.rank < 1 || s.rank > STRATA_MAX_RANK || !strata_model_layer_name(m, i) ||
		    !strata_model_layer_type(m, i))
			abort();
		(void)strata_model_param_count(m, i);
	}
	strata_model_print_summary(m, sink);
	strata_model_free(m);
	return 0;
}
