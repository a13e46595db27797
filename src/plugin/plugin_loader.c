/* Finds and loads layer plugins. Search path: the build tree's plugin folder when the running
 * program lives in the build tree (otherwise $libdir/strata/plugins), then STRATA_PLUGIN_PATH,
 * then the caller's extra folders. Every `.so` found is loaded; any failure is fatal and names
 * the file, because a half-loaded set of layers would surface later as a confusing "unknown type". */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/fsutil.h"
#include "plugin/registry.h"

/* Adds a folder unless it is already on the path (by its real path), so a folder named twice
 * is not loaded twice. */
static strata_status add_dir(strata_registry *reg, const char *dir, size_t len, strata_error *err)
{
	if (len == 0)
		return STRATA_OK;
	char given[PATH_MAX], real[PATH_MAX], other[PATH_MAX];
	snprintf(given, sizeof(given), "%.*s", (int)len, dir);
	if (realpath(given, real)) {
		for (size_t i = 0; i < reg->n_search_path; i++)
			if (realpath(reg->search_path[i], other) && strcmp(other, real) == 0)
				return STRATA_OK;
	}
	char **p = realloc(reg->search_path, (reg->n_search_path + 1) * sizeof(*p));
	if (!p)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	reg->search_path = p;
	p[reg->n_search_path] = strndup(dir, len);
	if (!p[reg->n_search_path])
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	reg->n_search_path++;
	return STRATA_OK;
}

static strata_status add_path_list(strata_registry *reg, const char *list, strata_error *err)
{
	while (list && *list) {
		const char *colon = strchr(list, ':');
		size_t len = colon ? (size_t)(colon - list) : strlen(list);
		strata_status st = add_dir(reg, list, len, err);
		if (st)
			return st;
		list = colon ? colon + 1 : NULL;
	}
	return STRATA_OK;
}

/* True when the running executable sits inside the build folder this library was built in. */
static bool running_from_build_tree(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	size_t root_len = strlen(STRATA_BUILD_ROOT);
	return strncmp(exe, STRATA_BUILD_ROOT, root_len) == 0 && exe[root_len] == '/';
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

strata_status st_plugin_load_file(strata_registry *reg, const char *path, strata_error *err)
{
	/* dlopen() opens a FIFO without O_NONBLOCK and waits for a writer forever, so what the path
	 * names is checked first: stat(), not lstat(), so that a symlink to a library still loads.
	 * (A file swapped for a FIFO between the two calls would still block; that is an attack on
	 * the plugin folder, which can run code anyway.) */
	struct stat sb;
	if (stat(path, &sb) != 0)
		return st_fail(err, STRATA_ERR_PLUGIN, "cannot load plugin %s: %s", path, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return st_fail(err, STRATA_ERR_PLUGIN, "cannot load plugin %s: it is %s, not a regular file", path,
		               st_file_kind(sb.st_mode));
	void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!handle)
		return st_fail(err, STRATA_ERR_PLUGIN, "cannot load plugin %s: %s", path, dlerror());

	strata_status st;
	union {
		void *obj;
		strata_plugin_entry_fn fn;
	} entry;
	entry.obj = dlsym(handle, STRATA_PLUGIN_ENTRY_NAME);
	if (!entry.obj) {
		st = st_fail(err, STRATA_ERR_PLUGIN, "%s is not a Strata plugin: it has no symbol %s", path,
		             STRATA_PLUGIN_ENTRY_NAME);
		goto out_close;
	}
	const strata_plugin *desc = entry.fn();
	if (!desc) {
		st = st_fail(err, STRATA_ERR_PLUGIN, "%s: %s() returned no descriptor", path, STRATA_PLUGIN_ENTRY_NAME);
		goto out_close;
	}
	/* The version is the first field and the only one read before it is checked. */
	if (desc->abi_version != STRATA_PLUGIN_ABI_VERSION) {
		st = st_fail(err, STRATA_ERR_PLUGIN,
		             "%s was built for plugin ABI version %u, but this Strata provides ABI version %u; "
		             "rebuild the plugin against this Strata's plugin.h",
		             path, desc->abi_version, STRATA_PLUGIN_ABI_VERSION);
		goto out_close;
	}
	if (desc->size < offsetof(strata_plugin, reserved) || !desc->name || !desc->init) {
		st = st_fail(err, STRATA_ERR_PLUGIN, "%s: malformed plugin descriptor (size %u, name or init missing)",
		             path, desc->size);
		goto out_close;
	}

	st_plugin *plugins = realloc(reg->plugins, (reg->n_plugins + 1) * sizeof(*plugins));
	if (!plugins) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_close;
	}
	reg->plugins = plugins;
	char *path_copy = strdup(path);
	if (!path_copy) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_close;
	}
	/* Recorded before init() so the handle is closed with the registry even if init fails
	 * after registering something that points into the plugin's memory. */
	plugins[reg->n_plugins++] = (st_plugin){.handle = handle, .path = path_copy, .desc = desc};

	strata_error init_err = {0};
	reg->current_owner = desc->name;
	reg->current_file = path_copy;
	reg->init_err = &init_err;
	st = desc->init(reg->host, reg);
	reg->current_owner = NULL;
	reg->current_file = NULL;
	reg->init_err = NULL;
	if (st != STRATA_OK)
		return st_fail(err, STRATA_ERR_PLUGIN, "plugin %s failed to initialize: %s", path,
		               init_err.message[0] ? init_err.message : strata_status_name(st));
	st_registry_log(reg, STRATA_LOG_DEBUG, "loaded plugin %s (%s %s)", path, desc->name,
	                desc->version ? desc->version : "");
	return STRATA_OK;

out_close:
	dlclose(handle);
	return st;
}

static strata_status load_dir(strata_registry *reg, const char *dir, strata_error *err)
{
	DIR *d = opendir(dir);
	if (!d) {
		st_registry_log(reg, STRATA_LOG_DEBUG, "plugin folder %s: not present", dir);
		return STRATA_OK;
	}
	char **names = NULL;
	size_t n = 0;
	strata_status st = STRATA_OK;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (len < 4 || strcmp(e->d_name + len - 3, ".so") != 0)
			continue;
		char **p = realloc(names, (n + 1) * sizeof(*p));
		if (!p || !(p[n] = strdup(e->d_name))) {
			names = p ? p : names;
			st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
			goto out_free;
		}
		names = p;
		n++;
	}
	/* Sorted, so the order of registration (and of `strata layers`) never depends on the disk. */
	qsort(names, n, sizeof(*names), compare_names);
	for (size_t i = 0; i < n && st == STRATA_OK; i++) {
		char path[PATH_MAX];
		int len = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (len < 0 || (size_t)len >= sizeof(path))
			st = st_fail(err, STRATA_ERR_PLUGIN, "plugin path too long: %s/%s", dir, names[i]);
		else
			st = st_plugin_load_file(reg, path, err);
	}
out_free:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return st;
}

strata_status st_plugins_load_all(strata_registry *reg, const strata_registry_options *opts, strata_error *err)
{
	strata_status st = STRATA_OK;
	if (!opts->no_default_paths) {
		const char *builtin = running_from_build_tree() ? STRATA_BUILD_PLUGIN_DIR : STRATA_PLUGIN_DIR;
		st = add_dir(reg, builtin, strlen(builtin), err);
		if (!st)
			st = add_path_list(reg, getenv("STRATA_PLUGIN_PATH"), err);
	}
	if (!st)
		st = add_path_list(reg, opts->plugin_path, err);
	for (size_t i = 0; i < reg->n_search_path && st == STRATA_OK; i++)
		st = load_dir(reg, reg->search_path[i], err);
	return st;
}

void st_plugins_unload(st_plugin *plugins, size_t n)
{
	for (size_t i = n; i-- > 0;) {
		dlclose(plugins[i].handle);
		free(plugins[i].path);
	}
	free(plugins);
}
