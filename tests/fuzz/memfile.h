/* The memory file through which fuzz targets hand bytes to readers that take a path. */
#ifndef FUZZ_MEMFILE_H
#define FUZZ_MEMFILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* A memory file named `name`; its path (/proc/self/fd/N) goes into path. Exits on failure. */
static inline int memfile_open(const char *name, char *path, size_t size)
{
	int fd = memfd_create(name, 0);
	if (fd < 0) {
		perror("memfd_create");
		exit(1);
	}
	snprintf(path, size, "/proc/self/fd/%d", fd);
	return fd;
}

/* Replaces the memory file's contents with `data`. */
static inline void memfile_put(int fd, const uint8_t *data, size_t size)
{
	if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
		perror("memory file");
		abort();
	}
}

#endif
