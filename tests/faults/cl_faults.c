/* Fault injection for the shell tests, loaded with LD_PRELOAD into `strata`: OpenCL calls that start
 * failing (a device lost mid-run), a disk that fills up, a process killed in the middle of a save,
 * and a device that reports less memory than it has. Every fault is off unless its variable is set:
 *
 *   STRATA_FAULT_CL_AFTER=N      the calls after the first N to clEnqueueNDRangeKernel, clFinish,
 *                                clWaitForEvents and clEnqueueReadBuffer fail, and keep failing
 *   STRATA_FAULT_CL_FUNC=NAME    count and fail only that one of the four
 *   STRATA_FAULT_CL_ERROR=E      the error returned: a name (CL_OUT_OF_RESOURCES, the default) or
 *                                a number (-5)
 *   STRATA_FAULT_CL_COUNT=FILE   at exit, write "NAME CALLS" for each of the four to FILE
 *   STRATA_FAULT_SIGINT_AFTER=N  raise SIGINT (as a Ctrl-C would) inside kernel launch N + 1
 *   STRATA_FAULT_ENOSPC_PREFIX=P the disk under P is full: a write() to a file whose path starts
 *                                with P writes half its bytes, the next one fails with ENOSPC
 *   STRATA_FAULT_ENOSPC_AT=fsync instead, writes succeed and fsync() fails with ENOSPC (as on a
 *                                file system that allocates late, or NFS)
 *   STRATA_FAULT_KILL_PREFIX=P   with STRATA_FAULT_KILL_AT_WRITE=K: the K-th write() (from 1) to
 *                                a temporary file (".tmp." in its name) under P writes half its
 *                                bytes, then the process SIGKILLs itself
 *   STRATA_FAULT_FSYNC_DELAY_MS=T fsync() of a regular file under STRATA_FAULT_KILL_PREFIX first
 *                                sleeps T ms (a slow disk: widens the window of a save)
 *   STRATA_FAULT_GLOBAL_MEM=B, STRATA_FAULT_MAX_ALLOC=B
 *                                clGetDeviceInfo reports B bytes of global memory / largest buffer
 *   STRATA_FAULT_ALLOC_ABOVE=B   clCreateBuffer of more than B bytes fails with
 *                                CL_MEM_OBJECT_ALLOCATION_FAILURE (the device is out of memory)
 *
 * Test-only: the counters below are file-scope state, which the library itself never has; the
 * process is single-threaded where it calls these, and a test shim has nowhere else to keep them. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <CL/cl.h>

enum { F_KERNEL, F_FINISH, F_WAIT, F_READ, F_COUNT };
static const char *const fn_names[F_COUNT] = {"clEnqueueNDRangeKernel", "clFinish", "clWaitForEvents",
                                              "clEnqueueReadBuffer"};

static unsigned long long calls[F_COUNT];  /* per function, for STRATA_FAULT_CL_COUNT */
static unsigned long long counted;         /* calls that count towards STRATA_FAULT_CL_AFTER */
static unsigned long long launches;        /* kernel launches, for STRATA_FAULT_SIGINT_AFTER */
static unsigned long long temp_writes;     /* writes to temporary files, for the kill */
static int short_write_fd = -1;            /* the fd whose next write fails with ENOSPC */

static long long env_number(const char *name, long long fallback)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return fallback;
	return strtoll(v, NULL, 0);
}

static cl_int error_code(void)
{
	static const struct {
		const char *name;
		cl_int code;
	} names[] = {
		{"CL_OUT_OF_RESOURCES", CL_OUT_OF_RESOURCES},
		{"CL_OUT_OF_HOST_MEMORY", CL_OUT_OF_HOST_MEMORY},
		{"CL_MEM_OBJECT_ALLOCATION_FAILURE", CL_MEM_OBJECT_ALLOCATION_FAILURE},
		{"CL_DEVICE_NOT_AVAILABLE", CL_DEVICE_NOT_AVAILABLE},
		{"CL_INVALID_COMMAND_QUEUE", CL_INVALID_COMMAND_QUEUE},
		{"CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST", CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST},
	};
	const char *v = getenv("STRATA_FAULT_CL_ERROR");
	if (!v || !*v)
		return CL_OUT_OF_RESOURCES;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(v, names[i].name) == 0)
			return names[i].code;
	return (cl_int)strtol(v, NULL, 0);
}

/* CL_SUCCESS, or the error this call must return. */
static cl_int cl_fault(int fn)
{
	calls[fn]++;
	long long after = env_number("STRATA_FAULT_CL_AFTER", -1);
	const char *only = getenv("STRATA_FAULT_CL_FUNC");
	if (only && *only && strcmp(only, fn_names[fn]) != 0)
		return CL_SUCCESS;
	if (after < 0 || ++counted <= (unsigned long long)after)
		return CL_SUCCESS;
	return error_code();
}

static void *next(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);
	if (!f) {
		fprintf(stderr, "cl_faults: no next %s: %s\n", name, dlerror());
		abort();
	}
	return f;
}

/* ---- OpenCL -------------------------------------------------------------------------------- */

CL_API_ENTRY cl_int CL_API_CALL clEnqueueNDRangeKernel(cl_command_queue q, cl_kernel k, cl_uint dim,
                                                       const size_t *offset, const size_t *global,
                                                       const size_t *local, cl_uint n_wait,
                                                       const cl_event *wait, cl_event *ev)
{
	cl_int (*real)(cl_command_queue, cl_kernel, cl_uint, const size_t *, const size_t *, const size_t *,
	               cl_uint, const cl_event *, cl_event *) = next("clEnqueueNDRangeKernel");
	long long sigint_after = env_number("STRATA_FAULT_SIGINT_AFTER", -1);
	if (sigint_after >= 0 && launches++ == (unsigned long long)sigint_after)
		raise(SIGINT);
	cl_int rc = cl_fault(F_KERNEL);
	return rc != CL_SUCCESS ? rc : real(q, k, dim, offset, global, local, n_wait, wait, ev);
}

CL_API_ENTRY cl_int CL_API_CALL clFinish(cl_command_queue q)
{
	cl_int (*real)(cl_command_queue) = next("clFinish");
	cl_int rc = cl_fault(F_FINISH);
	return rc != CL_SUCCESS ? rc : real(q);
}

CL_API_ENTRY cl_int CL_API_CALL clWaitForEvents(cl_uint n, const cl_event *events)
{
	cl_int (*real)(cl_uint, const cl_event *) = next("clWaitForEvents");
	cl_int rc = cl_fault(F_WAIT);
	return rc != CL_SUCCESS ? rc : real(n, events);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueReadBuffer(cl_command_queue q, cl_mem mem, cl_bool blocking,
                                                    size_t offset, size_t size, void *ptr, cl_uint n_wait,
                                                    const cl_event *wait, cl_event *ev)
{
	cl_int (*real)(cl_command_queue, cl_mem, cl_bool, size_t, size_t, void *, cl_uint, const cl_event *,
	               cl_event *) = next("clEnqueueReadBuffer");
	cl_int rc = cl_fault(F_READ);
	return rc != CL_SUCCESS ? rc : real(q, mem, blocking, offset, size, ptr, n_wait, wait, ev);
}

CL_API_ENTRY cl_int CL_API_CALL clGetDeviceInfo(cl_device_id d, cl_device_info what, size_t size, void *value,
                                                size_t *size_ret)
{
	cl_int (*real)(cl_device_id, cl_device_info, size_t, void *, size_t *) = next("clGetDeviceInfo");
	cl_int rc = real(d, what, size, value, size_ret);
	long long fake = what == CL_DEVICE_GLOBAL_MEM_SIZE     ? env_number("STRATA_FAULT_GLOBAL_MEM", -1)
	                 : what == CL_DEVICE_MAX_MEM_ALLOC_SIZE ? env_number("STRATA_FAULT_MAX_ALLOC", -1)
	                                                         : -1;
	if (rc == CL_SUCCESS && fake >= 0 && value && size >= sizeof(cl_ulong)) {
		cl_ulong v = (cl_ulong)fake;
		memcpy(value, &v, sizeof(v));
	}
	return rc;
}

CL_API_ENTRY cl_mem CL_API_CALL clCreateBuffer(cl_context ctx, cl_mem_flags flags, size_t size, void *host,
                                               cl_int *rc)
{
	cl_mem (*real)(cl_context, cl_mem_flags, size_t, void *, cl_int *) = next("clCreateBuffer");
	long long above = env_number("STRATA_FAULT_ALLOC_ABOVE", -1);
	if (above >= 0 && size > (unsigned long long)above) {
		if (rc)
			*rc = CL_MEM_OBJECT_ALLOCATION_FAILURE;
		return NULL;
	}
	return real(ctx, flags, size, host, rc);
}

__attribute__((destructor)) static void write_counts(void)
{
	const char *file = getenv("STRATA_FAULT_CL_COUNT");
	if (!file || !*file)
		return;
	FILE *f = fopen(file, "w");
	if (!f)
		return;
	for (int i = 0; i < F_COUNT; i++)
		fprintf(f, "%s %llu\n", fn_names[i], calls[i]);
	fclose(f);
}

/* ---- Files --------------------------------------------------------------------------------- */

/* Whether `fd` is open on a path that starts with the value of `var`; *is_temp says whether its
 * name is one of the atomic writer's temporaries. */
static int fd_under(int fd, const char *var, int *is_temp)
{
	const char *prefix = getenv(var);
	if (!prefix || !*prefix)
		return 0;
	char link[64], path[4096];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return 0;
	path[n] = '\0';
	if (is_temp)
		*is_temp = strstr(path, ".tmp.") != NULL;
	return strncmp(path, prefix, strlen(prefix)) == 0;
}

ssize_t write(int fd, const void *buf, size_t count)
{
	ssize_t (*real)(int, const void *, size_t) = next("write");
	int is_temp = 0;
	const char *at = getenv("STRATA_FAULT_ENOSPC_AT");
	bool fail_writes = !at || strcmp(at, "fsync") != 0;
	if (fail_writes && count > 0 && fd_under(fd, "STRATA_FAULT_ENOSPC_PREFIX", NULL)) {
		if (fd == short_write_fd || count == 1) {
			errno = ENOSPC;
			return -1;
		}
		/* The blocks that were still free take half; the next write finds none. */
		short_write_fd = fd;
		return real(fd, buf, count / 2);
	}
	long long kill_at = env_number("STRATA_FAULT_KILL_AT_WRITE", -1);
	if (kill_at > 0 && fd_under(fd, "STRATA_FAULT_KILL_PREFIX", &is_temp) && is_temp &&
	    (long long)++temp_writes == kill_at) {
		real(fd, buf, count / 2);
		raise(SIGKILL);
	}
	return real(fd, buf, count);
}

int fsync(int fd)
{
	int (*real)(int) = next("fsync");
	const char *at = getenv("STRATA_FAULT_ENOSPC_AT");
	if (at && strcmp(at, "fsync") == 0 && fd_under(fd, "STRATA_FAULT_ENOSPC_PREFIX", NULL)) {
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			errno = ENOSPC;
			return -1;
		}
	}
	long long delay_ms = env_number("STRATA_FAULT_FSYNC_DELAY_MS", 0);
	if (delay_ms > 0 && fd_under(fd, "STRATA_FAULT_KILL_PREFIX", NULL)) {
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			struct timespec ts = {.tv_sec = delay_ms / 1000, .tv_nsec = (delay_ms % 1000) * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	return real(fd);
}
