/* The runtime: one OpenCL device with its context, queue, program cache and profiler. */
#ifndef ST_RUNTIME_H
#define ST_RUNTIME_H

#include <stdatomic.h>
#include <stdbool.h>

#include "base/error.h"
#include "plugin/registry.h"
#include "device/tunables.h"

struct strata_tensor {
	cl_mem mem;
	size_t bytes;
	/* The counter of the runtime that allocated the buffer (st_tensor_alloc), which
	 * st_tensor_release takes the bytes back from; NULL for views and shared references. */
	atomic_ullong *held;
};

/* One (program, options) pair built for the runtime's device, with its kernels created lazily. */
typedef struct st_built_program st_built_program;

struct strata_kernel {
	cl_kernel kernel;
	char *name;
	st_built_program *program;
	size_t max_work_group_size;
};

typedef struct st_program_cache {
	st_built_program **entries;
	size_t n, cap;
	char *dir; /* NULL: no disk cache */
	strata_cache_stats stats;
} st_program_cache;

/* A launch whose profiling event has not been read yet. */
typedef struct st_profile_entry {
	char *label;  /* layer name, or "strata" for runtime work */
	char *kernel; /* kernel name, or "gemm" */
	cl_event event;
	cl_event start_marker; /* NULL, or a marker enqueued just before a multi-kernel launch */
	const char *phase;     /* static string: forward, backward, update, ... */
	uint64_t flops, bytes; /* the launch's arithmetic and memory traffic (0: unknown) */
} st_profile_entry;

/* Kernel time summed per (label, kernel). */
typedef struct st_profile_total {
	char *label;
	const char *phase;
	char *kernel;
	uint64_t calls;
	uint64_t ns;
	uint64_t flops, bytes;
} st_profile_total;

/* Which SGEMM runs the GEMMs (gemm/): chosen per runtime, per shape by tuned routes. */
enum st_gemm_engine {
	ST_GEMM_AUTO,    /* Strata's kernel on CPU devices, CLBlast elsewhere */
	ST_GEMM_CLBLAST,
	ST_GEMM_TILE,
};

/* Sees every GEMM st_gemm runs (the tuner records a training step's shapes so). */
typedef void (*st_gemm_observer)(void *user, const strata_gemm *g);

struct strata_runtime {
	strata_registry *reg;
	strata_device_info info;
	cl_platform_id platform;
	cl_device_id device;
	cl_context context;
	cl_command_queue queue;
	char cl_std[32]; /* "-cl-std=CL1.2", from the device's OpenCL C version */
	size_t base_align_bytes; /* CL_DEVICE_MEM_BASE_ADDR_ALIGN: where sub-buffers may start */
	st_program_cache cache;
	bool profile;
	const char *phase;   /* what launches are doing now, for the profile: a static string */
	uint64_t gemm_flops; /* 2 m n k of every GEMM enqueued */
	st_profile_entry *prof; /* pending */
	size_t n_prof, cap_prof;
	st_profile_total *totals;
	size_t n_totals;
	/* What the next launch st_launch profiles computes and moves, when its caller knows better
	 * than the size of its buffers (a GEMM: 2mnk and its matrices); st_launch clears it. */
	uint64_t next_flops, next_bytes;
	strata_log_fn log;
	void *log_user;
	int verbosity;
	st_gemm_observer gemm_observer; /* when set, shown every GEMM st_gemm runs */
	void *gemm_observer_user;
	int gemm_engine;              /* enum st_gemm_engine (gemm.h), resolved: never AUTO */
	unsigned float_lanes;         /* CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT: 16 with AVX-512, 8 with AVX2 */
	bool gemm_forced;             /* STRATA_GEMM named the engine: tuned routes are ignored */
	struct st_gemm_route *gemm_routes; /* per-shape choices of `strata tune` (gemm.h) */
	size_t n_gemm_routes;
	st_tunables tunables;         /* launch-time tunables of Strata's kernels (tunables.h) */
	strata_tensor gemm_partials;  /* gemm_tile.c's scratch: partial products of split GEMMs */
	strata_tensor gemm_bt;        /* and a transposed B */
	strata_tensor *gemm_retired;  /* scratch buffers outgrown, released with the runtime */
	size_t n_gemm_retired;
	/* Guard mode (buffers.c): every tensor a sub-buffer between canary zones of a buffer of its
	 * own, the canaries of each launch's tensor arguments checked after it (launch.c). */
	bool guard;
	atomic_ullong memory_held; /* bytes of the buffers st_tensor_alloc made and not yet released */
	struct st_guard_entry **guards; /* the guarded buffers, live and released */
	size_t n_guards, cap_guards;
};

/* runtime.c */
/* Chooses and opens the device, its context and queue, the program cache and the GEMM engine.
 * Nothing tuned is applied: the caller does that through the setters (strata_runtime_create,
 * api/runtime_api.c, applies the device's stored tuning). */
strata_status st_runtime_create(strata_registry *reg, const strata_runtime_options *options, strata_runtime **out,
                                strata_error *err);
/* "auto" (or NULL/empty), "clblast" or "strata", as STRATA_GEMM takes them. */
strata_status st_gemm_engine_parse(const char *text, int *engine, strata_error *err);
const char *st_gemm_engine_name(int engine);
/* Sets (fn NULL: clears) the observer of every GEMM run. */
void st_runtime_observe_gemms(strata_runtime *rt, st_gemm_observer fn, void *user);

/* profile.c */
void st_runtime_log(const strata_runtime *rt, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Keeps the event of a launch for the profile; takes ownership of `ev` and `start_marker`. */
strata_status st_profile_record(strata_runtime *rt, const char *label, const char *kernel, cl_event ev,
                                cl_event start_marker, uint64_t flops, uint64_t bytes, strata_error *err);
/* Waits for the queue and folds finished launches into the profile totals. */
strata_status st_finish(strata_runtime *rt, strata_error *err);
strata_status st_profile_fold(strata_runtime *rt, strata_error *err);
void st_profile_release(strata_runtime *rt);

/* device.c */
strata_status st_device_ids(const strata_device_info *info, cl_platform_id *platform, cl_device_id *device,
                            strata_error *err);

/* program_cache.c */
/* `dir` (NULL: none) is checked as the disk cache's folder; it keeps binaries when keep_binaries. */
strata_status st_program_cache_init(st_program_cache *cache, const char *dir, bool keep_binaries, strata_error *err);
void st_program_cache_release(st_program_cache *cache);
/* Returns the kernel `kernel_name` of program `program` built with its default options plus
 * `extra_options`, compiling (or loading from disk) on first use. */
strata_status st_kernel_get(strata_runtime *rt, const char *program, const char *kernel_name,
                            const char *extra_options, strata_kernel **out, strata_error *err);

/* Builds (or finds in the caches) program `program` with its default options plus
 * `extra_options`, creating no kernel. */
strata_status st_program_build(strata_runtime *rt, const char *program, const char *extra_options,
                               strata_error *err);

/* buffers.c */
strata_status st_tensor_alloc(strata_runtime *rt, strata_tensor *t, size_t bytes, const char *what,
                              strata_error *err);
void st_tensor_release(strata_tensor *t);
strata_status st_tensor_write(strata_runtime *rt, strata_tensor *t, size_t offset, const void *src,
                              size_t bytes, strata_error *err);
strata_status st_tensor_read(strata_runtime *rt, strata_tensor *t, size_t offset, void *dst, size_t bytes,
                             strata_error *err);

/* Guard mode. The canaries of the tensors that `args` reference, after kernel `k` of a launch
 * for `label` (a layer name, or "strata"): a changed one fails naming them. */
strata_status st_guard_check(strata_runtime *rt, const char *label, const strata_kernel *k, uint32_t n_args,
                             const strata_arg *args, strata_error *err);
/* The buffer a guarded tensor `mem` is a sub-buffer of and where in it the tensor starts; false
 * when `mem` is not a guarded tensor. (A pool's views are made from the pool's parent buffer.) */
bool st_guard_parent(const strata_runtime *rt, cl_mem mem, cl_mem *parent, size_t *front);
/* Frees the guard's records (strata_runtime_destroy, after the runtime's own buffers). */
void st_guard_release(strata_runtime *rt);
/* The program a kernel belongs to and its plugin, for messages. */
const char *st_kernel_program_name(const strata_kernel *k);
const char *st_kernel_program_owner(const strata_kernel *k);

/* launch.c */
strata_status st_launch(strata_runtime *rt, const char *label, strata_kernel *k, uint32_t work_dim,
                        const size_t *global, const size_t *local, uint32_t n_args, const strata_arg *args,
                        strata_error *err);

/* gemm/gemm.c: every GEMM of a layer (CLBlast's or Strata's kernel). */
strata_status st_gemm(strata_runtime *rt, const char *label, const strata_gemm *g, strata_error *err);
/* What a GEMM adds to each element of C before it stores it: bias[col] (NULL: none), then relu
 * when asked. */
typedef struct st_gemm_epilogue {
	strata_tensor *bias;
	bool relu;
} st_gemm_epilogue;
/* Whether st_gemm_fused runs an epilogue for g on this runtime (Strata's kernel does; C whole
 * rows: c_offset 0, ldc == n). */
bool st_gemm_fuses(const strata_runtime *rt, const strata_gemm *g);
/* st_gemm with `ep` (NULL: none) applied in the GEMM's last pass; only where st_gemm_fuses. */
strata_status st_gemm_fused(strata_runtime *rt, const char *label, const strata_gemm *g, const st_gemm_epilogue *ep,
                            strata_error *err);

#endif
