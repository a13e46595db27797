/* libFuzzer target: bytes through the IDX reader. An input that starts like gzip (1f 8b) goes
 * as it is to strata_idx_load through a memory file: damaged gzip streams. Any other input is
 * read from memory (st_idx_load_memory) and also gzip-compressed to the memory file and read
 * from there: both readers must agree on the status, the message and every element. */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <zlib.h>

#include <strata/strata.h>

#include "io/idx.h"
#include "memfile.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fd = memfile_open("fuzz_idx", path, sizeof(path));
	return 0;
}

/* Replaces the memory file's contents, gzip-compressed when `gzip`. */
static void put_file(const uint8_t *data, size_t size, bool gzip)
{
	if (!gzip) {
		memfile_put(fd, data, size);
		return;
	}
	if (ftruncate(fd, 0) || lseek(fd, 0, SEEK_SET)) {
		perror("fuzz_idx: memory file");
		abort();
	}
	gzFile g = gzdopen(dup(fd), "wb1");
	if (!g || (size && gzwrite(g, data, (unsigned)size) != (int)size) || gzclose(g) != Z_OK)
		abort();
}

static size_t elem_size(uint8_t type)
{
	switch (type) {
	case 0x08:
	case 0x09:
		return 1;
	case 0x0B:
		return 2;
	case 0x0C:
	case 0x0D:
		return 4;
	default:
		return 8;
	}
}

static void check_loaded(const strata_idx *idx)
{
	uint64_t count = 1;
	if (!idx || !idx->data || idx->rank < 1 || idx->rank > 8)
		abort();
	for (uint32_t i = 0; i < idx->rank; i++)
		count *= idx->dims[i];
	if (count != idx->count)
		abort();
	/* Touch every byte, so ASan sees a buffer shorter than the header claims. */
	volatile uint8_t sum = 0;
	for (uint64_t i = 0; i < count * elem_size(idx->type); i++)
		sum ^= ((const uint8_t *)idx->data)[i];
	(void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	strata_error err = {0};
	strata_idx *idx = NULL;

	if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
		put_file(data, size, false);
		strata_status st = strata_idx_load(path, &idx, &err);
		if (st == STRATA_OK)
			check_loaded(idx);
		else if (idx || !err.message[0])
			abort();
		strata_idx_free(idx);
		return 0;
	}

	strata_status st = st_idx_load_memory(data, size, path, &idx, &err);
	if (st == STRATA_OK)
		check_loaded(idx);
	else if (idx || !err.message[0])
		abort();

	strata_error gz_err = {0};
	strata_idx *gz_idx = NULL;
	put_file(data, size, true);
	strata_status gz_st = strata_idx_load(path, &gz_idx, &gz_err);
	if (gz_st != st || strcmp(gz_err.message, err.message)) {
		fprintf(stderr, "fuzz_idx: memory: %s '%s'\n          gzip:   %s '%s'\n", strata_status_name(st),
		        err.message, strata_status_name(gz_st), gz_err.message);
		abort();
	}
	if (st == STRATA_OK &&
	    (gz_idx->type != idx->type || gz_idx->rank != idx->rank || gz_idx->count != idx->count ||
	     memcmp(gz_idx->dims, idx->dims, sizeof(idx->dims)) ||
	     memcmp(gz_idx->data, idx->data, (size_t)idx->count * elem_size(idx->type)))) {
		fprintf(stderr, "fuzz_idx: the memory and gzip readers loaded different contents\n");
		abort();
	}
	strata_idx_free(gz_idx);
	strata_idx_free(idx);
	return 0;
}
