/* The OpenCL driver's own kernel cache. PoCL compiles every kernel into $XDG_CACHE_HOME/pocl (or
 * ~/.cache/pocl) and, when it cannot create that folder, reports no device at all: a cache folder
 * that cannot be written would fail every command that computes anything, with a message about
 * devices. Caches are an optimization, so before the first OpenCL call the tool checks the cache
 * folder and, if it cannot be created, points PoCL (POCL_CACHE_DIR, which other drivers ignore) at
 * a private folder under $TMPDIR. Strata's own caches then warn once and go on without the disk
 * (program_cache.c). Done here and not in the library: setenv() is for a program's start, before
 * any thread, not for a library. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* mkdir -p; 0, or -1 with errno and the folder that failed in `failed`. */
static int make_folders(const char *path, char *failed, size_t size)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		snprintf(failed, size, "%s", path);
		return -1;
	}
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		struct stat st;
		if (mkdir(buf, 0755) != 0 && (errno != EEXIST || stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))) {
			if (errno == EEXIST)
				errno = ENOTDIR;
			snprintf(failed, size, "%s", buf);
			return -1;
		}
		if (!c)
			return 0;
		*p = c;
	}
}

/* A folder only this user can enter: created, or an existing one that is really ours. */
static bool private_folder(const char *path)
{
	struct stat st;
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return false;
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 077);
}

void cli_prepare_driver_cache(bool verbose)
{
	struct stat st;
	const char *pocl = getenv("POCL_CACHE_DIR");
	if (pocl && *pocl && stat(pocl, &st) == 0 && S_ISDIR(st.st_mode))
		return; /* PoCL uses the folder it is given */
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char root[PATH_MAX], failed[PATH_MAX];
	if (xdg && *xdg)
		snprintf(root, sizeof(root), "%s", xdg);
	else if (home && *home)
		snprintf(root, sizeof(root), "%s/.cache", home);
	else
		return; /* PoCL falls back to /tmp itself */
	if (make_folders(root, failed, sizeof(failed)) == 0)
		return;
	int why = errno;
	const char *tmp = getenv("TMPDIR");
	char mine[PATH_MAX], kcache[PATH_MAX + 8];
	snprintf(mine, sizeof(mine), "%s/strata-%u", tmp && *tmp ? tmp : "/tmp", (unsigned)geteuid());
	snprintf(kcache, sizeof(kcache), "%s/pocl", mine);
	if (!private_folder(mine) || !private_folder(kcache))
		return; /* no better place: the driver reports what it cannot do */
	setenv("POCL_CACHE_DIR", kcache, 1);
	if (verbose)
		fprintf(stderr, "strata: info: cannot create the cache folder %s (%s: %s); the OpenCL driver's "
		        "kernel cache goes to %s\n", root, failed, strerror(why), kcache);
}
