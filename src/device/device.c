/* Enumerates OpenCL devices across all platforms and resolves device selectors. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"
#include "device/runtime.h"

static const char *type_name(cl_device_type t)
{
	if (t & CL_DEVICE_TYPE_GPU)
		return "gpu";
	if (t & CL_DEVICE_TYPE_CPU)
		return "cpu";
	if (t & CL_DEVICE_TYPE_ACCELERATOR)
		return "accelerator";
	return "other";
}

static cl_int device_string(cl_device_id d, cl_device_info what, char *buf, size_t size)
{
	buf[0] = '\0';
	cl_int rc = clGetDeviceInfo(d, what, size - 1, buf, NULL);
	buf[size - 1] = '\0';
	return rc;
}

static strata_status fill_info(cl_platform_id p, cl_device_id d, strata_device_info *info, strata_error *err)
{
	cl_int rc = clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof(info->platform) - 1, info->platform, NULL);
	if (rc == CL_SUCCESS)
		rc = clGetPlatformInfo(p, CL_PLATFORM_VERSION, sizeof(info->platform_version) - 1,
		                       info->platform_version, NULL);
	if (rc != CL_SUCCESS)
		return st_cl_fail(err, rc, "clGetPlatformInfo");
	cl_device_type type = 0;
	cl_uint units = 0;
	cl_ulong global = 0, local = 0, alloc = 0;
	size_t wg = 0;
	if ((rc = device_string(d, CL_DEVICE_NAME, info->name, sizeof(info->name))) ||
	    (rc = device_string(d, CL_DEVICE_VENDOR, info->vendor, sizeof(info->vendor))) ||
	    (rc = device_string(d, CL_DRIVER_VERSION, info->driver_version, sizeof(info->driver_version))) ||
	    (rc = device_string(d, CL_DEVICE_OPENCL_C_VERSION, info->opencl_c_version,
	                        sizeof(info->opencl_c_version))) ||
	    (rc = clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof(type), &type, NULL)) ||
	    (rc = clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof(units), &units, NULL)) ||
	    (rc = clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof(global), &global, NULL)) ||
	    (rc = clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof(local), &local, NULL)) ||
	    (rc = clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof(alloc), &alloc, NULL)) ||
	    (rc = clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof(wg), &wg, NULL)))
		return st_cl_fail(err, rc, "clGetDeviceInfo on '%s'", info->name);
	snprintf(info->type, sizeof(info->type), "%s", type_name(type));
	info->compute_units = units;
	info->global_mem_bytes = global;
	info->local_mem_bytes = local;
	info->max_alloc_bytes = alloc;
	info->max_work_group_size = wg;
	return STRATA_OK;
}

strata_status strata_devices_list(strata_device_info **out, size_t *count, strata_error *err)
{
	*out = NULL;
	*count = 0;
	cl_uint np = 0;
	cl_int rc = clGetPlatformIDs(0, NULL, &np);
	/* -1001 is CL_PLATFORM_NOT_FOUND_KHR: the ICD loader found no driver at all. */
	if (rc == -1001 || np == 0)
		return st_fail(err, STRATA_ERR_NOT_FOUND,
		               "no OpenCL platform found: install a driver (on Debian: pocl-opencl-icd for the CPU)");
	if (rc != CL_SUCCESS)
		return st_cl_fail(err, rc, "clGetPlatformIDs");
	cl_platform_id *platforms = calloc(np, sizeof(*platforms));
	if (!platforms)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	strata_status st = STRATA_OK;
	strata_device_info *list = NULL;
	size_t n = 0;
	if ((rc = clGetPlatformIDs(np, platforms, NULL)) != CL_SUCCESS) {
		st = st_cl_fail(err, rc, "clGetPlatformIDs");
		goto out_free;
	}
	for (cl_uint p = 0; p < np; p++) {
		cl_uint nd = 0;
		rc = clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
		if (rc == CL_DEVICE_NOT_FOUND || nd == 0)
			continue;
		if (rc != CL_SUCCESS) {
			st = st_cl_fail(err, rc, "clGetDeviceIDs on platform %u", p);
			goto out_free;
		}
		cl_device_id *devs = calloc(nd, sizeof(*devs));
		strata_device_info *grown = realloc(list, (n + nd) * sizeof(*list));
		if (!devs || !grown) {
			free(devs);
			list = grown ? grown : list;
			st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
			goto out_free;
		}
		list = grown;
		if ((rc = clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL)) != CL_SUCCESS) {
			free(devs);
			st = st_cl_fail(err, rc, "clGetDeviceIDs on platform %u", p);
			goto out_free;
		}
		for (cl_uint d = 0; d < nd; d++) {
			strata_device_info *info = &list[n];
			memset(info, 0, sizeof(*info));
			st = fill_info(platforms[p], devs[d], info, err);
			if (st) {
				free(devs);
				goto out_free;
			}
			info->platform_index = p;
			info->device_index = d;
			for (size_t j = 0; j < n; j++)
				if (strcmp(list[j].type, info->type) == 0)
					info->type_index++;
			n++;
		}
		free(devs);
	}
	if (n == 0) {
		st = st_fail(err, STRATA_ERR_NOT_FOUND, "OpenCL platforms found, but no device on any of them");
		goto out_free;
	}
	*out = list;
	*count = n;
	list = NULL;
out_free:
	free(list);
	free(platforms);
	return st;
}

static bool contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return false;
}

/* Parses "gpu", "gpu:1", "cpu:0", "accelerator"; returns false for anything else. */
static bool parse_type_selector(const char *sel, char *type, size_t size, long *index)
{
	const char *types[] = {"gpu", "cpu", "accelerator"};
	for (size_t i = 0; i < 3; i++) {
		size_t len = strlen(types[i]);
		if (strncasecmp(sel, types[i], len) != 0)
			continue;
		if (sel[len] == '\0') {
			*index = -1;
		} else if (sel[len] == ':' && isdigit((unsigned char)sel[len + 1])) {
			char *end;
			*index = strtol(sel + len + 1, &end, 10);
			if (*end)
				return false;
		} else {
			return false;
		}
		snprintf(type, size, "%s", types[i]);
		return true;
	}
	return false;
}

static void list_devices(const strata_device_info *devices, size_t count, char *buf, size_t size)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < count && used < size; i++) {
		int n = snprintf(buf + used, size - used, "\n  %s:%u  %s  [%s]", devices[i].type, devices[i].type_index,
		                 devices[i].name, devices[i].platform);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

strata_status strata_device_select(const strata_device_info *devices, size_t count, const char *selector,
                                   size_t *index, strata_error *err)
{
	if (!selector || !*selector || strcasecmp(selector, "auto") == 0) {
		if (count == 0)
			return st_fail(err, STRATA_ERR_NOT_FOUND, "no OpenCL device");
		*index = 0;
		for (size_t i = 0; i < count; i++) {
			if (strcmp(devices[i].type, "gpu") == 0) {
				*index = i;
				break;
			}
		}
		return STRATA_OK;
	}
	char type[16];
	long want = -1;
	if (parse_type_selector(selector, type, sizeof(type), &want)) {
		for (size_t i = 0; i < count; i++) {
			if (strcmp(devices[i].type, type) == 0 && (want < 0 || (long)devices[i].type_index == want)) {
				*index = i;
				return STRATA_OK;
			}
		}
	} else {
		/* A name substring: device names first, since platform names match many devices. */
		for (size_t i = 0; i < count; i++) {
			if (contains_nocase(devices[i].name, selector)) {
				*index = i;
				return STRATA_OK;
			}
		}
		for (size_t i = 0; i < count; i++) {
			if (contains_nocase(devices[i].platform, selector)) {
				*index = i;
				return STRATA_OK;
			}
		}
	}
	char list[1024];
	list_devices(devices, count, list, sizeof(list));
	return st_fail(err, STRATA_ERR_NOT_FOUND,
	               "no OpenCL device matches '%s'; selectors: auto, cpu, gpu, gpu:N, or part of a device or "
	               "platform name. Devices here:%s",
	               selector, list);
}

strata_status st_device_ids(const strata_device_info *info, cl_platform_id *platform, cl_device_id *device,
                            strata_error *err)
{
	cl_uint np = 0;
	cl_int rc = clGetPlatformIDs(0, NULL, &np);
	if (rc != CL_SUCCESS || info->platform_index >= np)
		return st_cl_fail(err, rc ? rc : CL_INVALID_PLATFORM, "clGetPlatformIDs");
	cl_platform_id *platforms = calloc(np, sizeof(*platforms));
	if (!platforms)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	strata_status st = STRATA_OK;
	cl_device_id *devs = NULL;
	if ((rc = clGetPlatformIDs(np, platforms, NULL)) != CL_SUCCESS) {
		st = st_cl_fail(err, rc, "clGetPlatformIDs");
		goto out_free;
	}
	cl_uint nd = 0;
	rc = clGetDeviceIDs(platforms[info->platform_index], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
	if (rc != CL_SUCCESS || info->device_index >= nd) {
		st = st_cl_fail(err, rc ? rc : CL_INVALID_DEVICE, "clGetDeviceIDs");
		goto out_free;
	}
	devs = calloc(nd, sizeof(*devs));
	if (!devs) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	if ((rc = clGetDeviceIDs(platforms[info->platform_index], CL_DEVICE_TYPE_ALL, nd, devs, NULL)) != CL_SUCCESS) {
		st = st_cl_fail(err, rc, "clGetDeviceIDs");
		goto out_free;
	}
	*platform = platforms[info->platform_index];
	*device = devs[info->device_index];
out_free:
	free(devs);
	free(platforms);
	return st;
}
