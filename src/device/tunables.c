/* The table of kernel tunables: names, legal values and defaults per device type. */
#include <string.h>

#include "device/tunables.h"

#define MAX_CHOICES 8

static const struct {
	const char *name;
	size_t n;
	size_t choices[MAX_CHOICES];
	size_t cpu, other; /* defaults */
} table[ST_TUNABLE_COUNT] = {
	/* A work-item moving a whole AVX-512 vector beat narrower ones 1.2x to 4x on PoCL
	 * (bench/kernels.md); GPUs coalesce across work-items and prefer 4. */
	[ST_TUNABLE_VW] = {"vw", 5, {1, 2, 4, 8, 16}, 16, 4},
	[ST_TUNABLE_WG] = {"wg", 5, {32, 64, 128, 256, 512}, 256, 256},
	[ST_TUNABLE_DROPOUT_VW] = {"dropout_vw", 5, {1, 2, 4, 8, 16}, 16, 4},
	/* Powers of two: the rows are reduced by halving. The host lowers a value the device
	 * cannot run for the kernel. */
	[ST_TUNABLE_SOFTMAX_WG] = {"softmax_wg", 5, {8, 16, 32, 64, 128}, 64, 64},
	[ST_TUNABLE_UPDATE_WG] = {"update_wg", 5, {0, 32, 64, 128, 256}, 0, 0},
};

const char *st_tunable_name(int t)
{
	return t >= 0 && t < ST_TUNABLE_COUNT ? table[t].name : "?";
}

int st_tunable_index(const char *name)
{
	for (int t = 0; name && t < ST_TUNABLE_COUNT; t++)
		if (strcmp(name, table[t].name) == 0)
			return t;
	return -1;
}

size_t st_tunable_choice_count(int t)
{
	return table[t].n;
}

size_t st_tunable_choice(int t, size_t i)
{
	return table[t].choices[i];
}

bool st_tunable_legal(int t, size_t value)
{
	for (size_t i = 0; t >= 0 && t < ST_TUNABLE_COUNT && i < table[t].n; i++)
		if (table[t].choices[i] == value)
			return true;
	return false;
}

void st_tunables_defaults(const strata_device_info *dev, st_tunables *out)
{
	bool cpu = strcmp(dev->type, "cpu") == 0;
	for (int t = 0; t < ST_TUNABLE_COUNT; t++)
		out->v[t] = cpu ? table[t].cpu : table[t].other;
}
