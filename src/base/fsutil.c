#include "base/fsutil.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"

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

const char *st_file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a folder";
	if (S_ISFIFO(mode))
		return "a FIFO (named pipe)";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a regular file";
}

strata_status st_open_regular(const char *path, int *fd, uint64_t *size, strata_error *err)
{
	*fd = -1;
	*size = 0;
	if (!path || !*path)
		return st_fail(err, STRATA_ERR_NOT_FOUND, "an empty path was given where a file is needed");
	/* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever. */
	int d = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (d < 0)
		return st_fail(err, errno == ENOENT ? STRATA_ERR_NOT_FOUND : STRATA_ERR_IO, "cannot open %s: %s", path,
		               strerror(errno));
	struct stat sb;
	if (fstat(d, &sb) != 0) {
		int code = errno;
		close(d);
		return st_fail(err, STRATA_ERR_IO, "cannot examine %s: %s", path, strerror(code));
	}
	if (!S_ISREG(sb.st_mode)) {
		close(d);
		return st_fail(err, STRATA_ERR_INVALID, "%s is %s, not a regular file", path, st_file_kind(sb.st_mode));
	}
	int flags = fcntl(d, F_GETFL);
	if (flags < 0 || fcntl(d, F_SETFL, flags & ~O_NONBLOCK) != 0) {
		int code = errno;
		close(d);
		return st_fail(err, STRATA_ERR_IO, "cannot read %s: %s", path, strerror(code));
	}
	*fd = d;
	*size = (uint64_t)sb.st_size;
	return STRATA_OK;
}

strata_status st_fopen_regular(const char *path, FILE **f, uint64_t *size, strata_error *err)
{
	*f = NULL;
	int fd;
	strata_status st = st_open_regular(path, &fd, size, err);
	if (st)
		return st;
	*f = fdopen(fd, "rb");
	if (!*f) {
		int code = errno;
		close(fd);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "cannot read %s: %s", path, strerror(code));
	}
	return STRATA_OK;
}

strata_status st_read_file(const char *path, const char *what, uint64_t limit, char **data, size_t *len,
                           strata_error *err)
{
	*data = NULL;
	*len = 0;
	int fd;
	uint64_t size;
	strata_status st = st_open_regular(path, &fd, &size, err);
	if (st)
		return st;
	if (size > limit || size >= SIZE_MAX) {
		close(fd);
		return st_fail(err, STRATA_ERR_INVALID, "%s: a %s of %llu bytes is larger than the %llu bytes allowed",
		               path, what, (unsigned long long)size, (unsigned long long)limit);
	}
	char *buf = malloc((size_t)size + 1);
	if (!buf) {
		close(fd);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory reading %s (%llu bytes)", path,
		               (unsigned long long)size);
	}
	/* Read no more than the size fstat gave: a file that grows meanwhile is read as it was. */
	size_t n = 0;
	while (n < size) {
		ssize_t got = read(fd, buf + n, (size_t)size - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			st = st_fail(err, STRATA_ERR_IO, "error reading %s: %s", path, strerror(errno));
			goto out_free;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	buf = NULL;
out_free:
	free(buf);
	close(fd);
	return st;
}

static strata_status write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return STRATA_ERR_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return STRATA_OK;
}

/* The folder of `path` ("." when it has none) and its last component. */
static void split_path(const char *path, char *dir, size_t size, const char **base)
{
	const char *slash = strrchr(path, '/');
	*base = slash ? slash + 1 : path;
	if (!slash)
		snprintf(dir, size, ".");
	else if (slash == path)
		snprintf(dir, size, "/");
	else
		snprintf(dir, size, "%.*s", (int)(slash - path), path);
}

#define TEMP_SUFFIX ".tmp."
#define TEMP_RANDOM 6 /* mkstemp's XXXXXX */

/* Whether `name` is `base` followed by the suffix st_write_file_atomic gives its temporaries. */
static bool is_temp_of(const char *name, const char *base)
{
	size_t n = strlen(base);
	if (strncmp(name, base, n) != 0 || strncmp(name + n, TEMP_SUFFIX, strlen(TEMP_SUFFIX)) != 0)
		return false;
	const char *r = name + n + strlen(TEMP_SUFFIX);
	if (strlen(r) != TEMP_RANDOM)
		return false;
	for (; *r; r++)
		if (!isalnum((unsigned char)*r))
			return false;
	return true;
}

/* Removes the temporaries of earlier writes of `path` whose writer is gone: killed in the middle of
 * a save, it left "path.tmp.XXXXXX" behind. A live writer holds an exclusive flock on its temporary
 * until its rename, so a temporary that can be locked is stale. Only names of exactly that pattern
 * are touched, and only when the name still refers to the file that was locked. Best effort: a
 * temporary that cannot be removed is left for the next write. (A writer caught between its
 * mkstemp() and its flock(), microseconds, would lose its temporary and report a failed rename;
 * two processes writing one path at once is a mistake in any case.) */
static void remove_stale_temps(const char *path)
{
	char dir[PATH_MAX], file[PATH_MAX];
	const char *base;
	split_path(path, dir, sizeof(dir), &base);
	if (!*base)
		return;
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!is_temp_of(e->d_name, base) ||
		    snprintf(file, sizeof(file), "%s/%s", dir, e->d_name) >= (int)sizeof(file))
			continue;
		int fd = open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct stat locked, named;
		if (fstat(fd, &locked) == 0 && S_ISREG(locked.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
		    lstat(file, &named) == 0 && named.st_dev == locked.st_dev && named.st_ino == locked.st_ino)
			unlink(file);
		close(fd);
	}
	closedir(d);
}

/* The message of a failed write of `tmp` on its way to `path` (removed before the caller returns):
 * a full disk is said in words, and the file that was to be replaced is still the old one. */
static strata_status write_failed(const char *path, const char *tmp, int code, strata_error *err)
{
	if (code == ENOSPC || code == EDQUOT)
		return st_fail(err, STRATA_ERR_IO,
		               "cannot write %s: the disk %s (writing %s: %s); %s is unchanged: free some space, "
		               "or write elsewhere",
		               path, code == ENOSPC ? "is full" : "quota is exceeded", tmp, strerror(code), path);
	return st_fail(err, STRATA_ERR_IO, "cannot write %s (writing %s: %s); %s is unchanged", path, tmp,
	               strerror(code), path);
}

/* The mode a new file would get from open(path, O_CREAT, 0666): mkstemp() makes its temporary
 * 0600, and the renamed file would keep that. A file being replaced keeps its own mode. The
 * umask is read from /proc, since umask() can only be read by setting it, which would race with
 * other threads creating files. */
static mode_t creation_mode(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) == 0)
		return sb.st_mode & 07777;
	unsigned mask = 022;
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &mask) == 1)
			break;
	if (f)
		fclose(f);
	return (mode_t)(0666 & ~mask);
}

strata_status st_write_file_atomic(const char *path, const void *data, size_t len, strata_error *err)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s" TEMP_SUFFIX "XXXXXX", path) >= (int)sizeof(tmp))
		return st_fail(err, STRATA_ERR_IO, "path too long: %s", path);
	remove_stale_temps(path);
	mode_t mode = creation_mode(path);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		int code = errno;
		return code == ENOSPC || code == EDQUOT ? write_failed(path, tmp, code, err)
		                                        : st_fail(err, STRATA_ERR_IO, "cannot create %s: %s", tmp,
		                                                  strerror(code));
	}
	if (fchmod(fd, mode) != 0) {
		int code = errno;
		close(fd);
		unlink(tmp);
		return st_fail(err, STRATA_ERR_IO, "cannot set the mode of %s: %s", tmp, strerror(code));
	}
	/* Held until the rename (through `lock`, a second descriptor, so that closing `fd` can still
	 * report a late write error): it tells remove_stale_temps() that this temporary is alive. */
	int lock = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (lock >= 0 && flock(lock, LOCK_EX) != 0) {
		close(lock);
		lock = -1;
	}
	strata_status st = STRATA_OK;
	if (write_all(fd, data, len) != STRATA_OK || fsync(fd) != 0) {
		st = write_failed(path, tmp, errno, err);
		close(fd);
		goto out_unlink;
	}
	if (close(fd) != 0) {
		st = write_failed(path, tmp, errno, err);
		goto out_unlink;
	}
	if (rename(tmp, path) != 0) {
		st = st_fail(err, STRATA_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto out_unlink;
	}
	if (lock >= 0)
		close(lock);
	/* The rename is durable only once the folder itself is synced. */
	char dir[PATH_MAX];
	const char *base;
	split_path(path, dir, sizeof(dir), &base);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return STRATA_OK;

out_unlink:
	unlink(tmp);
	if (lock >= 0)
		close(lock);
	return st;
}
