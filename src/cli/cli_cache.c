/* The cache folders, checked before the first OpenCL call. Strata keeps compiled OpenCL programs
 * and tuned GEMM parameters in $XDG_CACHE_HOME/strata (~/.cache/strata), and PoCL its own
 * kernels in $XDG_CACHE_HOME/pocl. A command that computes refuses to start when Strata's folder
 * cannot be written: the issue (#6) asks for a clear message and a failed status rather than a
 * run that silently compiles everything again on every start, and refusing before any work
 * leaves every checkpoint as it was. The check comes first because PoCL, when it cannot create
 * its own folder, reports no device at all, which would hide the real cause behind a message
 * about devices. `strata devices` only lists devices, so it keeps working: PoCL's cache is
 * pointed (POCL_CACHE_DIR, which other drivers ignore) at a private folder under $TMPDIR
 * instead. Done here and not in the library: setenv() is for a program's start, before any
 * thread, not for a library. */
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
			int why = errno == EEXIST ? ENOTDIR : errno;
			snprintf(failed, size, "%s", buf);
			errno = why;
			return -1;
		}
		if (!c)
			return 0;
		*p = c;
	}
}

/* A file created and removed in `dir`: what the caches do, where access() can be wrong (root, ACLs,
 * network file systems). 0, or -1 with errno. */
static int probe_write(const char *dir)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/.write-test-XXXXXX", dir) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	unlink(path);
	return 0;
}

/* A folder only this user can enter: created, or an existing one that is really ours. */
static bool private_folder(const char *path)
{
	struct stat st;
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return false;
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 077);
}

/* $XDG_CACHE_HOME, else ~/.cache; false when neither variable is set. */
static bool cache_root(char *root, size_t size)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	if (xdg && *xdg)
		snprintf(root, size, "%s", xdg);
	else if (home && *home)
		snprintf(root, size, "%s/.cache", home);
	else
		return false;
	return true;
}

/* PoCL's cache below TMPDIR when its usual place cannot be created, so the driver still finds its
 * devices. */
static void redirect_driver_cache(bool verbose)
{
	struct stat st;
	const char *pocl = getenv("POCL_CACHE_DIR");
	if (pocl && *pocl && stat(pocl, &st) == 0 && S_ISDIR(st.st_mode))
		return; /* PoCL uses the folder it is given */
	char root[PATH_MAX], failed[PATH_MAX];
	if (!cache_root(root, sizeof(root)))
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

int cli_prepare_caches(const char *command, bool verbose)
{
	/* No OpenCL at all: the model file, the plugins, a CSV log. */
	if (strcmp(command, "layers") == 0 || strcmp(command, "summary") == 0 || strcmp(command, "plot") == 0)
		return CLI_OK;
	if (strcmp(command, "devices") == 0) {
		redirect_driver_cache(verbose);
		return CLI_OK;
	}
	char root[PATH_MAX], dir[PATH_MAX + 8], failed[PATH_MAX + 8];
	if (!cache_root(root, sizeof(root)))
		return CLI_OK; /* the runtime says that neither XDG_CACHE_HOME nor HOME is set */
	snprintf(dir, sizeof(dir), "%s/strata", root);
	const char *doing = "creating";
	int why = 0;
	if (make_folders(dir, failed, sizeof(failed)) != 0) {
		why = errno;
	} else if (probe_write(dir) != 0) {
		why = errno;
		doing = "writing in";
		snprintf(failed, sizeof(failed), "%s", dir);
	} else {
		return CLI_OK;
	}
	cli_error("cannot use the cache folder %s (%s %s: %s), where Strata keeps compiled OpenCL programs and "
	          "tuned parameters; make it writable, or set XDG_CACHE_HOME to a folder you can write",
	          dir, doing, failed, strerror(why));
	return CLI_FAILED;
}
