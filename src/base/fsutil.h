/* Small file-system helpers: whole-file reads, atomic writes, recursive mkdir. */
#ifndef ST_FSUTIL_H
#define ST_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <strata/strata.h>

/* Creates `path` and its parents (mode 0755); an existing folder is fine. */
strata_status st_mkdirs(const char *path, strata_error *err);
/* What a file of this mode is, for a refusal: "a folder", "a FIFO (named pipe)", ... */
const char *st_file_kind(mode_t mode);
/* Opens `path` for reading as a regular file: without blocking (O_NONBLOCK, so that a FIFO cannot
 * hang the open; cleared again on success) and refusing, with a message naming the file, an empty
 * path, a folder, a FIFO, a device such as /dev/zero or a socket. *size gets the file's size in
 * bytes; readers bound what they read by it and by what the file's header promises. The
 * descriptor is close-on-exec. */
strata_status st_open_regular(const char *path, int *fd, uint64_t *size, strata_error *err);
/* The same as a stdio stream, opened "rb". */
strata_status st_fopen_regular(const char *path, FILE **f, uint64_t *size, strata_error *err);
/* Reads a whole regular file (st_open_regular) of at most `limit` bytes, refusing a larger one
 * before reading it with a message that names `what` ("model file", "weights file") and both sizes;
 * *data is NUL-terminated for convenience and freed with free(). */
strata_status st_read_file(const char *path, const char *what, uint64_t limit, char **data, size_t *len,
                           strata_error *err);
/* Writes to a temporary file in the same folder ("path.tmp.XXXXXX"), fsyncs it, renames it over
 * `path` and fsyncs the folder, so readers see the old file or the new one, never a half-written
 * one. A failed write removes its temporary and leaves `path` as it was; temporaries left by
 * writers that were killed midway are removed by the next write of the same path. */
strata_status st_write_file_atomic(const char *path, const void *data, size_t len, strata_error *err);

#endif
