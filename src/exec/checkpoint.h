/* Weights files (checkpoints): the format on disk and its exchange with device tensors.
 *
 * Format version 1 (all integers little-endian):
 *   magic      8 bytes  "STRATAW\0"
 *   version    u32      1
 *   flags      u32      0 (reserved)
 *   epoch      u64      epochs completed when saved; at most ST_CHECKPOINT_MAX_EPOCH
 *   step       u64      training steps taken (keys dropout masks on resume); at most
 *                       ST_CHECKPOINT_MAX_STEP
 *   seed       u64      the run's seed
 *   model      u32 length + bytes, the model's name
 *   optimizer  u32 length + bytes, e.g. "adadelta"; empty when no optimizer state is stored
 *   iterations u64      optimizer updates applied (Adam's bias correction); at most step
 *   count      u32      number of tensors
 *   tensors    count x { u32 name length, name bytes, u32 kind, u32 rank, rank x u64 dims,
 *                        float32 data[product of dims] }
 *              names: "LAYER/WEIGHT" for weights (kind 0), "LAYER/WEIGHT:SLOT" for optimizer state
 *              (kind 1), e.g. "conv2d_1/kernel:accum_grad"
 *   crc32      u32      zlib crc32 of every byte before it
 * The counters are checked before they are used, since a resumed run goes on from them: the
 * trainer numbers epochs in 32 bits and the next one is epoch + 1, so epoch < 2^32 - 1; a step
 * applies at most one optimizer update, so iterations <= step; Adam's bias correction takes
 * the iterations as a double, exact up to 2^53, which bounds step (2^53 steps are 285 years at
 * a million steps a second). A file outside these ranges was not written by Strata's trainer.
 * Files are written atomically (temporary file, fsync, rename); a reader refuses any file whose
 * sizes, counters, names or checksum do not add up before touching a device buffer, and a file
 * whose size differs from what its headers describe before reading its data. */
#ifndef ST_CHECKPOINT_H
#define ST_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "device/runtime.h"

#define ST_CHECKPOINT_VERSION 1u
/* The ranges of the header's counters (see the format above). */
#define ST_CHECKPOINT_MAX_EPOCH ((uint64_t)UINT32_MAX - 1u)
#define ST_CHECKPOINT_MAX_STEP (UINT64_C(1) << 53)

enum st_tensor_kind { ST_TENSOR_WEIGHT = 0, ST_TENSOR_OPTIMIZER = 1 };

/* A device tensor to save or fill, with the name and shape it has in the file. */
typedef struct st_named_tensor {
	char name[192];
	uint32_t kind;
	strata_shape shape;
	uint64_t count;
	strata_tensor *tensor;
	/* Saving only: host values to write instead of reading `tensor` (NULL: read it). Weights made
	 * without a device, as `strata import` makes them, are saved this way (rt may be NULL then). */
	const float *host;
} st_named_tensor;

typedef struct st_checkpoint_info {
	uint64_t epoch;
	uint64_t step;
	uint64_t seed;
	uint64_t iterations;
	char model[128];
	char optimizer[32];
} st_checkpoint_info;

/* Reads every tensor from the device (or its host values) and writes the file atomically. */
strata_status st_checkpoint_save(strata_runtime *rt, const char *path, const st_checkpoint_info *info,
                                 const st_named_tensor *tensors, size_t n, strata_error *err);

/* Validates the whole file (refusing, before reading it, one larger than `tensors` and, without
 * `with_optimizer`, their optimizer slots can take), then checks that every ST_TENSOR_WEIGHT
 * entry of `tensors` is present with the same shape (and, when `with_optimizer`, every
 * ST_TENSOR_OPTIMIZER entry too, and the optimizer name equals info->optimizer on entry), and
 * only then writes them to the device. Extra tensors in the file are an error (another model).
 * Messages name the file and the tensor. */
strata_status st_checkpoint_load(strata_runtime *rt, const char *path, st_checkpoint_info *info,
                                 const st_named_tensor *tensors, size_t n, bool with_optimizer,
                                 strata_error *err);

/* A weights file read whole and validated as st_checkpoint_load() does (structure, checksum,
 * unique names), for loads that take only some of its tensors (transfer.c). No model bounds its
 * size: it is read only when its headers, walked first, describe exactly the file's size; a
 * file whose structure does not hold is refused by what is wrong with it, without the
 * checksum's verdict that st_checkpoint_load() gives a file within its model's bound. */
typedef struct st_checkpoint_file st_checkpoint_file;

typedef struct st_checkpoint_entry {
	char name[192];
	uint32_t kind;
	strata_shape shape;
	uint64_t count;
	const uint8_t *data; /* count little-endian float32 values, not aligned: see st_checkpoint_copy() */
} st_checkpoint_entry;

strata_status st_checkpoint_open(const char *path, st_checkpoint_file **out, strata_error *err);
void st_checkpoint_close(st_checkpoint_file *f);
uint32_t st_checkpoint_count(const st_checkpoint_file *f);
/* Entry `i`, 0 <= i < st_checkpoint_count(f), in file order. */
void st_checkpoint_entry_at(const st_checkpoint_file *f, uint32_t i, st_checkpoint_entry *out);
/* The entry named `name`; false when the file holds none. */
bool st_checkpoint_find(const st_checkpoint_file *f, const char *name, st_checkpoint_entry *out);
/* The entry's values as host floats, `e->count` of them. */
void st_checkpoint_copy(const st_checkpoint_entry *e, float *dst);

#endif
