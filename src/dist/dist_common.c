/* What the MPI and the MPI-less builds of dist.h share. */
#include <stdio.h>
#include <string.h>

#include "dist/dist.h"

bool st_dist_device(const char *selector, uint32_t rank, uint32_t local_rank, char *buf, size_t size)
{
	size_t o = 0;
	for (const char *p = selector; *p; p++) {
		int n;
		if (*p == '{') {
			if (!strncmp(p, "{rank}", 6)) {
				n = snprintf(buf + o, size - o, "%u", rank);
				p += 5;
			} else if (!strncmp(p, "{local_rank}", 12)) {
				n = snprintf(buf + o, size - o, "%u", local_rank);
				p += 11;
			} else {
				return false;
			}
		} else {
			n = snprintf(buf + o, size - o, "%c", *p);
		}
		if (n < 0 || (size_t)n >= size - o)
			return false;
		o += (size_t)n;
	}
	if (o >= size)
		return false;
	buf[o] = '\0';
	return true;
}

uint32_t st_dist_shards(uint32_t asked, uint32_t ranks)
{
	if (ranks == 0)
		return 0;
	if (asked)
		return asked % ranks ? 0 : asked;
	return 4 % ranks ? ranks : 4;
}
