/* libFuzzer target: bytes through the ONNX importer's walk (no registry, no device, nothing
 * written): protobuf-c's decoding, the checks of onnx_file.c (opset, tensors' dims against their
 * data, external data), constant folding and every operator mapper, with the refusals listed.
 * A hostile file must end in an error with a message, or a refusal list, or a mapped graph,
 * never a crash, a leak or a hang. The importer takes a path: the bytes go through a memory file
 * (external data then resolves inside /proc/self/fd, where nothing is found). */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdlib.h>

#include "memfile.h"
#include "onnx/onnx_import.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fd = memfile_open("fuzz_onnx", path, sizeof(path));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	strata_error err = {0};
	st_onnx_import *imp = NULL;
	memfile_put(fd, data, size);
	strata_status st = st_onnx_import_graph(path, &imp, &err);
	if (st == STRATA_OK || st == STRATA_ERR_UNSUPPORTED) {
		/* A walk that ended: its refusals listed (when it refused), its layers named. */
		if (!imp || (st == STRATA_ERR_UNSUPPORTED && !err.message[0]))
			abort();
		for (size_t i = 0; i < imp->n_layers; i++)
			if (!imp->layers[i].name[0] || !imp->layers[i].yaml)
				abort();
	} else if (imp || !err.message[0]) {
		abort();
	}
	st_onnx_import_free(imp);
	return 0;
}
