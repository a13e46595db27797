/* Small file-system helpers: whole-file reads, atomic writes, recursive mkdir. */
#ifndef ST_FSUTIL_H
#define ST_FSUTIL_H

#include <stddef.h>

#include <strata/strata.h>

/* Creates `path` and its parents (mode 0755); an existing folder is fine. */
strata_status st_mkdirs(const char *path, strata_error *err);
/* Reads a whole file; *data is NUL-terminated for convenience and freed with free(). */
strata_status st_read_file(const char *path, char **data, size_t *len, strata_error *err);
/* Writes to a temporary file in the same folder ("path.tmp.XXXXXX"), fsyncs it, renames it over
 * `path` and fsyncs the folder, so readers see the old file or the new one, never a half-written
 * one. A failed write removes its temporary and leaves `path` as it was; temporaries left by
 * writers that were killed midway are removed by the next write of the same path. */
strata_status st_write_file_atomic(const char *path, const void *data, size_t len, strata_error *err);

#endif
