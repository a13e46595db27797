/* libFuzzer target: bytes through the weights-file (.stw) reader up to where a load would touch
 * a device: st_checkpoint_open (structure, checksum, unique names), then every entry, looked up by
 * its name and copied out whole. Each input runs twice, as it is and with its last four bytes
 * replaced by the right checksum, so mutations get past the CRC to the structure behind it. The
 * reader takes a path: the bytes go through a memory file. */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <zlib.h>

#include "exec/checkpoint.h"
#include "memfile.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fd = memfile_open("fuzz_weights", path, sizeof(path));
	return 0;
}

static void check(const uint8_t *data, size_t size)
{
	strata_error err = {0};
	st_checkpoint_file *f = NULL;
	memfile_put(fd, data, size);
	strata_status st = st_checkpoint_open(path, &f, &err);
	if (st != STRATA_OK) {
		if (f || !err.message[0])
			abort();
		return;
	}
	uint32_t n = st_checkpoint_count(f);
	for (uint32_t i = 0; i < n; i++) {
		st_checkpoint_entry e, again;
		st_checkpoint_entry_at(f, i, &e);
		if (e.shape.rank < 1 || e.shape.rank > STRATA_MAX_RANK || e.count == 0 || !e.data)
			abort();
		uint64_t count = 1;
		for (uint32_t d = 0; d < e.shape.rank; d++)
			count *= (uint64_t)e.shape.dims[d];
		/* Names are unique and fit e.name whole, so the lookup finds this very entry. */
		if (count != e.count || !st_checkpoint_find(f, e.name, &again) || again.data != e.data)
			abort();
		float *values = malloc((size_t)e.count * sizeof(*values));
		if (!values)
			abort();
		st_checkpoint_copy(&e, values);
		free(values);
	}
	st_checkpoint_close(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size);
	if (size < 4)
		return 0;
	uint8_t *fixed = malloc(size);
	if (!fixed)
		abort();
	memcpy(fixed, data, size);
	uint32_t crc = (uint32_t)crc32(0L, fixed, (uInt)(size - 4));
	for (int b = 0; b < 4; b++)
		fixed[size - 4 + b] = (uint8_t)(crc >> (8 * b));
	if (memcmp(fixed, data, size))
		check(fixed, size);
	free(fixed);
	return 0;
}
