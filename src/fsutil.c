#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

strata_status st_mkdirs(const char *path, strata_error *err)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return st_fail(err, STRATA_ERR_IO, "path too long: %s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return st_fail(err, STRATA_ERR_IO, "cannot create folder %s: %s", buf, strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		return st_fail(err, STRATA_ERR_IO, "cannot create folder %s: %s", buf, strerror(errno));
	return STRATA_OK;
}

strata_status st_read_file(const char *path, char **data, size_t *len, strata_error *err)
{
	*data = NULL;
	*len = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return st_fail(err, errno == ENOENT ? STRATA_ERR_NOT_FOUND : STRATA_ERR_IO, "cannot open %s: %s", path,
		               strerror(errno));
	strata_status st = STRATA_OK;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	if (!buf) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory reading %s", path);
		goto out_close;
	}
	for (;;) {
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
		if (n == cap) {
			char *grown = cap > SIZE_MAX / 4 ? NULL : realloc(buf, cap * 2 + 1);
			if (!grown) {
				st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory reading %s", path);
				goto out_free;
			}
			buf = grown;
			cap *= 2;
		}
	}
	if (ferror(f)) {
		st = st_fail(err, STRATA_ERR_IO, "error reading %s", path);
		goto out_free;
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	buf = NULL;
out_free:
	free(buf);
out_close:
	fclose(f);
	return st;
}

static strata_status write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return STRATA_ERR_IO;
		p += n;
		len -= (size_t)n;
	}
	return STRATA_OK;
}

strata_status st_write_file_atomic(const char *path, const void *data, size_t len, strata_error *err)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
		return st_fail(err, STRATA_ERR_IO, "path too long: %s", path);
	int fd = mkstemp(tmp);
	if (fd < 0)
		return st_fail(err, STRATA_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
	strata_status st = STRATA_OK;
	if (write_all(fd, data, len) != STRATA_OK || fsync(fd) != 0) {
		st = st_fail(err, STRATA_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
		close(fd);
		goto out_unlink;
	}
	if (close(fd) != 0) {
		st = st_fail(err, STRATA_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
		goto out_unlink;
	}
	if (rename(tmp, path) != 0) {
		st = st_fail(err, STRATA_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto out_unlink;
	}
	/* The rename is durable only once the folder itself is synced. */
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return STRATA_OK;

out_unlink:
	unlink(tmp);
	return st;
}
