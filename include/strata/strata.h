/* Strata application API: load plugins and models, choose a device, run a model.
 * Every handle is opaque; every fallible call returns a strata_status and, when `err` is not
 * NULL, fills it with a message a person can act on. The library never exits or aborts. */
#ifndef STRATA_H
#define STRATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "types.h"
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define STRATA_API __attribute__((visibility("default")))
#else
#define STRATA_API
#endif

typedef struct strata_registry strata_registry; /* loaded plugins, layer types, kernel sources */
typedef struct strata_runtime strata_runtime;   /* one OpenCL device: context, queue, caches */
typedef struct strata_model strata_model;       /* a parsed, shape-checked model description */
typedef struct strata_session strata_session;   /* a model placed on a runtime, with weights */

#define STRATA_ERROR_MAX 2048
typedef struct strata_error {
	strata_status status;
	char message[STRATA_ERROR_MAX];
} strata_error;

STRATA_API const char *strata_status_name(strata_status status);
STRATA_API const char *strata_version_string(void);

/* Log sink for --verbose style messages; `level` is a strata_log_level (plugin.h). */
typedef void (*strata_log_fn)(void *user, int level, const char *message);

/* ---- Devices ---------------------------------------------------------------------------------- */

typedef struct strata_device_info {
	char platform[256];
	char platform_version[256];
	char vendor[256];
	char name[256];
	char driver_version[256];
	char opencl_c_version[128];
	char type[16];           /* "gpu", "cpu", "accelerator", "other" */
	uint32_t platform_index; /* position in clGetPlatformIDs */
	uint32_t device_index;   /* position within its platform */
	uint32_t type_index;     /* position among all devices of the same type: gpu:1 */
	uint32_t compute_units;
	uint64_t global_mem_bytes;
	uint64_t local_mem_bytes;
	uint64_t max_alloc_bytes;
	size_t max_work_group_size;
} strata_device_info;

/* Lists every device of every platform. *out is freed with free(). */
STRATA_API strata_status strata_devices_list(strata_device_info **out, size_t *count, strata_error *err);

/* Resolves a selector: "auto" (a GPU if any, else the first device), "cpu", "gpu", "gpu:1",
 * "cpu:0", "accelerator", or a case-insensitive substring of a platform or device name.
 * NULL or "" means "auto". On no match the message lists the devices that exist. */
STRATA_API strata_status strata_device_select(const strata_device_info *devices, size_t count,
                                              const char *selector, size_t *index, strata_error *err);

/* ---- Plugins ---------------------------------------------------------------------------------- */

typedef struct strata_registry_options {
	uint32_t size;            /* sizeof(strata_registry_options) */
	const char *plugin_path;  /* extra ':'-separated folders searched after STRATA_PLUGIN_PATH; may be NULL */
	bool no_default_paths;    /* search only plugin_path (tests) */
	strata_log_fn log;
	void *log_user;
	int verbosity;            /* messages up to this strata_log_level are passed to log */
} strata_registry_options;

/* Loads the runtime's own programs and every plugin found on the search path: the build tree
 * (when running from it), $libdir/strata/plugins, then STRATA_PLUGIN_PATH. A plugin that fails
 * to load is reported and fails the call. */
STRATA_API strata_status strata_registry_open(const strata_registry_options *options,
                                              strata_registry **out, strata_error *err);
STRATA_API void strata_registry_close(strata_registry *reg);
/* Layer types, in registration order. */
STRATA_API size_t strata_registry_layer_count(const strata_registry *reg);
STRATA_API const char *strata_registry_layer_type(const strata_registry *reg, size_t i);
STRATA_API const char *strata_registry_layer_plugin(const strata_registry *reg, size_t i);
/* Writes each layer type with its plugin file and parameters (type, default, range, doc). */
STRATA_API void strata_registry_print_layers(const strata_registry *reg, FILE *out);
/* Writes the search path, one folder a line, to `out`. */
STRATA_API void strata_registry_print_search_path(const strata_registry *reg, FILE *out);

/* ---- Devices at run time ---------------------------------------------------------------------- */

typedef struct strata_runtime_options {
	uint32_t size;          /* sizeof(strata_runtime_options) */
	const char *device;     /* selector; NULL: STRATA_DEVICE, else "auto" */
	bool profile;           /* time every kernel with OpenCL profiling events */
	const char *cache_dir;  /* NULL: $XDG_CACHE_HOME/strata or ~/.cache/strata */
	bool no_disk_cache;     /* keep compiled programs in memory only */
	strata_log_fn log;
	void *log_user;
	int verbosity;
	/* Added in 0.3: guard mode (also STRATA_GUARD=1), a debugging mode for plugin authors. Every
	 * tensor the runtime allocates gets a buffer of its own with canary zones before and after it
	 * (and over the unused tail of its rounded-up size), filled with a known pattern; after every
	 * kernel launch the canaries of the tensors its arguments reference are read back, and a
	 * changed one fails the launch naming the kernel, its plugin, the layer, the tensor (argument
	 * index and what it is) and the first element written out of bounds. Slow: a read per tensor
	 * argument per launch. Sessions made while STRATA_GUARD=1 is set also keep every pooled tensor
	 * (weights, their gradients, the optimizer's state) in a buffer of its own (STRATA_POOL=separate);
	 * otherwise each pool is guarded as a whole. */
	bool guard;
	/* Added in 0.5: whether the disk cache keeps the programs' binaries (also
	 * STRATA_PROGRAM_BINARIES=always|auto). STRATA_BINARIES_AUTO keeps them except on PoCL, which
	 * compiles each kernel when it is first launched and keeps it in a cache of its own
	 * (POCL_CACHE_DIR): asking PoCL for a program's binary makes it compile every kernel of the
	 * program first (a cold first batch of mnist_cnn took 43 s instead of 14 on a 2-core CPU, and
	 * every tuned variant of a program paid it again). There a run compiles its programs' source
	 * again (about 1 s for mnist_cnn), and PoCL takes the kernels from its own cache.
	 * STRATA_BINARIES_ALWAYS keeps them on every driver. */
	int binaries;
} strata_runtime_options;

enum { STRATA_BINARIES_AUTO = 0, STRATA_BINARIES_ALWAYS = 1 };

/* Opens the selected device. Fails (STRATA_ERR_IO) when the cache folder cannot be created or
 * written, saying what to do: a cache that silently stopped working would only make every run
 * slower. STRATA_GEMM=auto|clblast|strata picks the GEMM engine (auto: Strata's own on CPU
 * devices, CLBlast elsewhere, or per shape what `strata tune` stored). */
STRATA_API strata_status strata_runtime_create(strata_registry *reg, const strata_runtime_options *options,
                                               strata_runtime **out, strata_error *err);
STRATA_API void strata_runtime_destroy(strata_runtime *rt);
STRATA_API const strata_device_info *strata_runtime_device(const strata_runtime *rt);

typedef struct strata_cache_stats {
	uint64_t memory_hits; /* program found already built in this process */
	uint64_t disk_hits;   /* program binary loaded from the disk cache */
	uint64_t builds;      /* program compiled from source */
	uint64_t disk_errors; /* corrupt or unreadable cache entries ignored */
} strata_cache_stats;
STRATA_API strata_cache_stats strata_runtime_cache_stats(const strata_runtime *rt);

/* Floating-point operations of every GEMM enqueued so far (2 m n k each): nearly all of a
 * network's arithmetic, for GFLOP/s figures. */
STRATA_API uint64_t strata_runtime_gemm_flops(const strata_runtime *rt);
/* Added in 0.4: the bytes of the device buffers Strata holds on the runtime now (the sessions'
 * weights, activations, gradients and workspaces, the GEMM scratch); the driver's own memory
 * and the GEMM library's temporary buffers are not counted. Safe from any thread. */
STRATA_API uint64_t strata_runtime_memory_bytes(const strata_runtime *rt);
/* Waits for the queue and forgets the kernel times gathered so far. */
STRATA_API strata_status strata_runtime_reset_profile(strata_runtime *rt, strata_error *err);

/* Waits for the queue, then prints per-layer kernel time (calls, total ms, share). */
STRATA_API strata_status strata_runtime_print_profile(strata_runtime *rt, FILE *out, strata_error *err);

/* ---- Models ----------------------------------------------------------------------------------- */

/* Parses a YAML model and checks it against the plugins' declarations, including shape
 * inference. Errors read "FILE:LINE:COLUMN: message" with status STRATA_ERR_PARSE or
 * STRATA_ERR_INVALID. */
STRATA_API strata_status strata_model_load(strata_registry *reg, const char *path, strata_model **out,
                                           strata_error *err);
/* As strata_model_load, from memory; `display_name` stands for the file name in messages and
 * relative data paths resolve from `base_dir` (NULL: current folder). */
STRATA_API strata_status strata_model_load_string(strata_registry *reg, const char *text, size_t len,
                                                  const char *display_name, const char *base_dir,
                                                  strata_model **out, strata_error *err);
STRATA_API void strata_model_free(strata_model *model);

/* Prints the Keras-style summary table. */
STRATA_API void strata_model_print_summary(const strata_model *model, FILE *out);

STRATA_API const char *strata_model_name(const strata_model *model);
STRATA_API size_t strata_model_layer_count(const strata_model *model);
STRATA_API const char *strata_model_layer_name(const strata_model *model, size_t i);
STRATA_API const char *strata_model_layer_type(const strata_model *model, size_t i);
STRATA_API strata_shape strata_model_input_shape(const strata_model *model);
STRATA_API strata_shape strata_model_output_shape(const strata_model *model, size_t layer);
STRATA_API uint64_t strata_model_param_count(const strata_model *model, size_t layer);
/* Added in 0.3: the model's inputs (name, shape with its dtype) and outputs (the layer each is,
 * and the loss the recipe gives it, NULL when none); strata_model_loss_count counts the outputs
 * with a loss, those that train and that evaluation reports. */
STRATA_API size_t strata_model_input_count(const strata_model *model);
STRATA_API const char *strata_model_input_name(const strata_model *model, size_t i);
STRATA_API strata_shape strata_model_input_shape_at(const strata_model *model, size_t i);
STRATA_API size_t strata_model_output_count(const strata_model *model);
STRATA_API size_t strata_model_output_layer(const strata_model *model, size_t k);
STRATA_API const char *strata_model_output_loss(const strata_model *model, size_t k);
STRATA_API size_t strata_model_loss_count(const strata_model *model);
/* Added in 0.3: whether output k's metrics (the recipe's `metrics`) list `metric` ("accuracy"). */
STRATA_API bool strata_model_output_has_metric(const strata_model *model, size_t k, const char *metric);
/* The `device:` selector of the model file, or NULL. */
STRATA_API const char *strata_model_device(const strata_model *model);

typedef struct strata_training_config {
	uint32_t batch_size;
	uint32_t epochs;
	uint64_t seed;
	double validation_split;
	bool shuffle;
} strata_training_config;
STRATA_API strata_training_config strata_model_training(const strata_model *model);

/* Added in 0.4: the model file's `serving:` section, the dynamic batching `strata serve` gives
 * the model (Triton's names and defaults: max_batch_size 64, max_queue_delay_us 0, no
 * preferred sizes, max_queue_size 1024, timeout_us 0 for none; warmup true). The command line
 * overrides it. */
#define STRATA_MAX_PREFERRED_BATCH_SIZES 8
typedef struct strata_serving_config {
	uint32_t max_batch_size;      /* samples per batch; 1 turns batching off */
	uint64_t max_queue_delay_us;  /* the longest the oldest request waits for others */
	uint32_t preferred_batch_sizes[STRATA_MAX_PREFERRED_BATCH_SIZES]; /* increasing */
	uint32_t n_preferred_batch_sizes;
	uint32_t max_queue_size;      /* queued requests past which new ones are refused */
	uint64_t timeout_us;          /* a request still queued after this is refused; 0: never */
	bool warmup;                  /* run every batch size once before serving (see strata serve) */
} strata_serving_config;
STRATA_API strata_serving_config strata_model_serving(const strata_model *model);

typedef struct strata_data_config {
	const char *train_images; /* absolute or relative to the current folder; NULL if absent */
	const char *train_labels;
	const char *test_images;
	const char *test_labels;
	double scale;             /* pixel multiplier, 1/255 for MNIST */
	uint32_t num_classes;     /* one-hot width */
	bool standardize;         /* per-pixel zero mean, unit variance from the training set */
	const uint32_t *keep_labels; /* the only classes loaded (data.keep_labels); NULL: all */
	uint32_t n_keep_labels;
} strata_data_config;
STRATA_API strata_data_config strata_model_data(const strata_model *model);
/* Added in 0.3: the data files of every input and of every output with a loss, for the training
 * (`test` false) or the test set; NULL entries where the data section names none. The arrays
 * live as long as the model. */
typedef struct strata_data_files {
	const char *const *inputs;   /* strata_model_input_count of them */
	const char *const *labels;   /* strata_model_loss_count of them */
	const uint32_t *num_classes; /* one per label file (0: not given) */
} strata_data_files;
STRATA_API strata_data_files strata_model_data_files(const strata_model *model, bool test);

/* ---- Sessions: a model on a device ------------------------------------------------------------ */

/* Allocates every buffer for batches of up to `max_batch` samples and initializes the weights
 * from `seed` (same seed, same weights, on any device). A model is bound to one session at a
 * time; the registry and runtime must outlive the session. */
STRATA_API strata_status strata_session_create(strata_runtime *rt, strata_model *model, uint32_t max_batch,
                                               uint64_t seed, strata_session **out, strata_error *err);
STRATA_API void strata_session_destroy(strata_session *s);

/* Runs inference on `batch` samples: `input` holds batch x input shape floats, `output`
 * receives batch x output shape floats. Blocks until the results are on the host. For an input
 * of int32 ids the floats are the ids' values (rounded; a value that is no int32 becomes -1). */
STRATA_API strata_status strata_session_forward(strata_session *s, const float *input, uint32_t batch,
                                                float *output, strata_error *err);

/* Weights, addressed by layer index and weight index within the layer, as host floats in the
 * layer's declared (Keras) layout. */
STRATA_API size_t strata_session_weight_count(const strata_session *s, size_t layer);
STRATA_API strata_status strata_session_weight_info(const strata_session *s, size_t layer, size_t index,
                                                    const char **name, strata_shape *shape);
STRATA_API strata_status strata_session_read_weight(strata_session *s, size_t layer, size_t index,
                                                    float *dst, size_t count, strata_error *err);
STRATA_API strata_status strata_session_write_weight(strata_session *s, size_t layer, size_t index,
                                                     const float *src, size_t count, strata_error *err);

/* Transfer learning: copies into the session the weights its model's `init_from` names, from
 * another model's weights file; a no-op for a model without init_from. Meant for a fresh
 * session about to train (`strata train` calls it unless resuming); a checkpoint loaded
 * afterwards replaces every weight anyway. Every name and shape is checked before any weight
 * changes; a layer with more units (or filters) than the file keeps the file's values for the
 * first ones and its initializer's for the rest. Optimizer state is never taken. When `report`
 * is not NULL it receives a line for the user: the layers taken, the file, what grew ("" when
 * the model has no init_from). */
STRATA_API strata_status strata_session_init_from(strata_session *s, char *report, size_t report_size,
                                                  strata_error *err);

/* ---- Data sets on the device -------------------------------------------------------------------- */

typedef struct strata_dataset strata_dataset;

typedef struct strata_dataset_options {
	uint32_t size;           /* sizeof(strata_dataset_options) */
	const char *images;      /* IDX file of N samples: unsigned bytes, or int32 ids (0x0C) */
	const char *labels;      /* IDX file of N unsigned-byte class labels; since 0.4 may be NULL
	                          * (a model that learns without labels: strata_model_trains_itself) */
	double scale;            /* pixel multiplier (1/255); 0 means 1 */
	uint32_t num_classes;    /* labels must be below it */
	uint32_t offset, limit;  /* use samples [offset, offset + limit); limit 0: to the end */
	/* Per-pixel standardization with the mean and standard deviation of `reference` (or of this
	 * set when NULL), as scikit-learn's StandardScaler. */
	bool standardize;
	const strata_dataset *reference;
	/* Only samples labelled with one of these classes (each below num_classes) are loaded;
	 * offset and limit then count the samples kept. NULL: every sample. */
	const uint32_t *keep_labels;
	uint32_t n_keep_labels;
	/* Added in 0.3, for models of several inputs or outputs: the IDX files of model inputs 1, 2,
	 * ... (`images` is input 0's), and the labels of the outputs with a loss after the first
	 * (`labels` is the first's), each with its class count. Every file holds the same samples in
	 * the same order. An input file may hold int32 ids (IDX type 0x0C) for an int32 input. */
	const char *const *more_images;
	uint32_t n_more_images;
	const char *const *more_labels;
	const uint32_t *more_num_classes;
	uint32_t n_more_labels;
} strata_dataset_options;

/* Reads the files, checks them against each other, and stages the samples on the runtime's
 * device once, as bytes; batches are assembled there. */
STRATA_API strata_status strata_dataset_load(strata_runtime *rt, const strata_dataset_options *options,
                                             strata_dataset **out, strata_error *err);
STRATA_API void strata_dataset_free(strata_dataset *ds);
STRATA_API uint32_t strata_dataset_count(const strata_dataset *ds);
/* Prepares raw samples on the host exactly as the data set's batches are prepared (scale, then
 * standardization with its statistics): n_samples x per-sample values. */
STRATA_API void strata_dataset_transform(const strata_dataset *ds, const uint8_t *in, float *out, size_t n_samples);

/* ---- Training and evaluation -------------------------------------------------------------------- */

typedef struct strata_progress {
	uint32_t epoch, epochs;        /* 1-based epoch being run, of how many */
	uint32_t batch, batches;       /* batches done in this epoch, of how many */
	double loss, accuracy;         /* running means over this epoch's batches so far */
	bool has_validation;
	/* At the end of an epoch, when has_validation. A model that trains itself (no loss; loss and
	 * accuracy are NaN): the validation data's quantization and topographic errors
	 * (strata_map_result). */
	double val_loss, val_accuracy;
	double images_per_second;      /* training throughput in this epoch */
	double epoch_seconds;          /* time spent in this epoch so far */
	double eta_seconds;            /* estimate for the rest of this epoch */
	bool epoch_done;
	bool checkpoint_saved;
	/* Added in 0.3: the figures of each output with a loss, in the outputs' order (Keras'
	 * digit_loss, digit_accuracy, val_digit_loss, ...); loss and accuracy above are the total
	 * (weighted by loss_weights, plus regularization) and the first output's. Valid during the
	 * call only; the val_ ones when has_validation. */
	size_t n_outputs;
	const double *output_loss, *output_accuracy;
	const double *val_output_loss, *val_output_accuracy;
} strata_progress;
typedef void (*strata_progress_fn)(void *user, const strata_progress *p);

/* Added in 0.4: data-parallel training over several processes (ranks): strata_fit_options.parallel.
 * Every rank runs strata_fit with the same model, seed, data and batch size. Of each global batch
 * (the epoch's order, batch_size samples) rank r computes a slice, with the loss taken as the
 * mean over the whole global batch and random draws (dropout) keyed on each sample's place in
 * it; the ranks' gradients are summed by the caller's transport (strata train's is MPI: src/dist/)
 * and every rank applies the same update to the same weights. The training figures are summed
 * over the ranks too. A stop asked on any rank stops every rank after the same step. */
typedef struct strata_parallel {
	uint32_t rank, ranks;
	void *user;
	/* Sums `count` floats elementwise over the ranks, in place: every rank gets the sums. */
	strata_status (*sum)(void *user, float *values, size_t count, strata_error *err);
	/* Optional: the samples each rank computes of a global batch of `n` (counts[r], summing to
	 * n), asked at every step and the same on every rank; NULL: slices as even as can be.
	 * `seconds` is how long this rank computed its slice of the last step (0 at the first), for
	 * a caller balancing ranks of different speeds (it must agree with the others on the counts,
	 * through its transport). */
	void (*split)(void *user, uint32_t n, double seconds, uint32_t *counts);
	/* 0: gradients summed by `sum` (fast; its order may change the last bits). K > 0: each
	 * global batch is cut into K shards of equal size (a multiple of ranks; what a short last
	 * batch does not fill goes to the first shards), every shard's gradient is computed alone,
	 * and they are added on the host in shard order: the weights are the same bit for bit
	 * whatever number of ranks, one included, computed the shards. Needs `gather` past 1 rank. */
	uint32_t shards;
	/* Every rank's `count` floats, concatenated in rank order, to every rank. */
	strata_status (*gather)(void *user, const float *mine, size_t count, float *all, strata_error *err);
} strata_parallel;

typedef struct strata_fit_options {
	uint32_t size;               /* sizeof(strata_fit_options) */
	uint32_t epochs;             /* train until this many epochs are complete */
	uint32_t batch_size;         /* <= the session's max_batch */
	bool no_shuffle;             /* keep the data set's order (shuffled each epoch otherwise) */
	const char *save_path;       /* checkpoint written atomically after every epoch; may be NULL */
	const char *resume_path;     /* continue from this checkpoint; may be NULL */
	strata_progress_fn progress; /* called at most every progress_interval seconds and at epoch ends */
	void *progress_user;
	double progress_interval;
	/* When not NULL and it becomes non-zero (a signal handler may set it), training stops after
	 * the current step, saves a checkpoint to save_path (mid-epoch: resuming continues with the
	 * next batch, given the same batch size) and returns STRATA_ERR_INTERRUPTED. */
	const volatile int *stop;
	/* When not NULL, called at each epoch's end with progress_user and the epoch's figures before
	 * its checkpoint is saved (progress is called after the save): a log written from it holds
	 * every epoch that the checkpoint does, whenever the process is killed. */
	strata_progress_fn epoch_end;
	/* Added in 0.4: data-parallel training with other ranks (see strata_parallel); NULL: alone. */
	const strata_parallel *parallel;
} strata_fit_options;

/* Trains the session's model with its loss and optimizer. The order of samples and the dropout
 * masks come from the session's seed, the epoch and the step, so a run resumed from a checkpoint
 * ends with the same weights as one that never stopped. */
STRATA_API strata_status strata_fit(strata_session *s, strata_dataset *train, strata_dataset *validation,
                                    const strata_fit_options *options, strata_error *err);

/* Benchmark loops: `steps` training steps (gather, forward, loss, backward, update) or inference
 * batches over consecutive batches of `ds` (wrapping around), with no reporting; both wait for
 * the device before returning, so the caller can time them. */
STRATA_API strata_status strata_session_train_steps(strata_session *s, strata_dataset *ds, uint32_t batch,
                                                    uint32_t steps, strata_error *err);
STRATA_API strata_status strata_session_infer_steps(strata_session *s, strata_dataset *ds, uint32_t batch,
                                                    uint32_t steps, strata_error *err);

typedef struct strata_eval_result {
	uint32_t count;
	double loss;     /* the model's loss, plus its regularization terms, as Keras reports it */
	double accuracy;
	double lrap;     /* label ranking average precision */
} strata_eval_result;

STRATA_API strata_status strata_evaluate(strata_session *s, strata_dataset *ds, uint32_t batch_size,
                                         strata_eval_result *result, strata_error *err);
/* Added in 0.3: as strata_evaluate, with the figures of each output with a loss in `outputs`
 * (strata_model_loss_count of them, in the outputs' order; loss unweighted); `total` holds the
 * weighted total loss and the first output's accuracy and LRAP, as strata_evaluate's result. */
STRATA_API strata_status strata_evaluate_outputs(strata_session *s, strata_dataset *ds, uint32_t batch_size,
                                                 strata_eval_result *total, strata_eval_result *outputs,
                                                 size_t n_outputs, strata_error *err);

/* Added in 0.4: the figures of a self-organizing map (a model whose output layer is a `som`):
 * the quantization error (the mean distance of a sample to its best-matching unit), the
 * topographic error (the share of samples whose two best units are not neighbours on the map:
 * 8 around a unit on a rectangular grid, 6 on a hexagonal one, as MiniSom counts them) and, when
 * the data set has labels, the purity (each unit's most frequent label, the share of samples that
 * carry their unit's). `units_used` counts the units that are some sample's best. */
typedef struct strata_map_result {
	uint32_t count;
	double quantization_error;
	double topographic_error;
	bool has_purity;
	double purity;
	uint32_t units, units_used;
} strata_map_result;

/* True when the model learns without a loss: its learning layers train themselves in their
 * forward pass (a self-organizing map), so strata_fit takes data sets without labels. */
STRATA_API bool strata_model_trains_itself(const strata_model *m);
/* The grid of the `som` layer `layer`: rows, columns, and whether it is hexagonal. */
STRATA_API strata_status strata_map_grid(const strata_model *m, size_t layer, uint32_t *rows, uint32_t *columns,
                                         bool *hexagonal, strata_error *err);
/* The map figures of `ds` through the model (its output layer a `som`). */
STRATA_API strata_status strata_evaluate_map(strata_session *s, strata_dataset *ds, uint32_t batch_size,
                                             strata_map_result *result, strata_error *err);

/* Checkpoints: every weight, and with the optimizer's state when the session has trained.
 * Loading checks every name and shape against the model before any value is replaced. */
STRATA_API strata_status strata_session_save(strata_session *s, const char *path, strata_error *err);
STRATA_API strata_status strata_session_load(strata_session *s, const char *path, strata_error *err);

/* ---- Probing layers: activations and filter visualization ---------------------------------------- */

/* As strata_session_forward, stopping after layer `layer` (0-based): `output` receives batch x
 * that layer's output shape (strata_model_output_shape). */
STRATA_API strata_status strata_session_forward_to(strata_session *s, const float *input, uint32_t batch,
                                                   size_t layer, float *output, strata_error *err);

typedef enum strata_embed_format { STRATA_EMBED_CSV = 0, STRATA_EMBED_NPY = 1 } strata_embed_format;

typedef struct strata_embed_options {
	uint32_t size;               /* sizeof(strata_embed_options) */
	size_t layer;                /* its outputs, flattened channels last, are the features */
	uint32_t batch_size;         /* samples per forward pass; 0 (or too many): the session's */
	strata_embed_format format;
	const char *path;            /* the CSV, or the features' .npy */
	/* NPY only: where the labels go; NULL: `path` with ".npy" replaced by ".labels.npy" (appended
	 * when it does not end in ".npy"). Written only when the samples have labels. */
	const char *labels_path;
	/* The samples: a data set, in its file order, with its labels; */
	strata_dataset *data;
	/* or, when `data` is NULL, `count` unlabeled raw samples (bytes, the model's input values
	 * each), prepared as `reference` prepares its own (strata_dataset_transform) or, without a
	 * reference, multiplied by `scale` (0 means 1). */
	const uint8_t *pixels;
	uint32_t count;
	double scale;
	const strata_dataset *reference;
	/* NPY only: also the CSV, written there as STRATA_EMBED_CSV writes it (in the same passes);
	 * NULL: none. */
	const char *csv_path;
} strata_embed_options;

/* The features of every sample at one layer (inference), one row per sample: a CSV with the
 * header "label,f0,f1,..." (label -1 for unlabeled samples; 9 significant digits, which give
 * float32 values back exactly), or a NumPy .npy file (format 1.0, '<f4', shape (samples,
 * features), C order) plus the labels' .npy ('<i4', shape (samples,)). Streamed a batch at a
 * time: host memory does not grow with the number of samples. A failed call removes what it
 * had written. */
STRATA_API strata_status strata_embed(strata_session *s, const strata_embed_options *options,
                                      strata_error *err);

typedef struct strata_visualize_options {
	uint32_t size;         /* sizeof(strata_visualize_options) */
	size_t layer;
	uint32_t filters;      /* filters 0 .. filters - 1 (last-axis channels, or dense units); 0: all */
	uint32_t steps;        /* gradient-ascent steps (Keras' example: 20) */
	uint32_t batch_size;   /* filters ascended at once, one sample each; 0 (or too many): the session's */
	uint32_t keep;         /* images kept, the highest activations; 0: every active filter's */
	uint64_t seed;         /* of the starting noise: the same seed, the same images */
	/* How the model sees pixel levels: as `reference` prepares its samples, or without one,
	 * multiplied by `scale` (0 means 1). */
	double scale;
	const strata_dataset *reference;
} strata_visualize_options;

typedef struct strata_filter_image {
	uint32_t filter;
	float activation; /* the filter's mean activation after the last step */
	float *pixels;    /* the input that reached it, height x width x channels, in pixel levels */
} strata_filter_image;

typedef struct strata_visualize_result {
	uint32_t height, width, channels; /* of every image: the model's input (rank 1: height 1) */
	uint32_t filters, steps;          /* as run */
	float *activations;               /* filters x (steps + 1): before the first step, then after each */
	uint32_t active;                  /* filters whose final mean activation is above 0 */
	uint32_t kept;                    /* images: at most `keep` of the active ones */
	strata_filter_image *images;      /* highest activation first (ties: lower filter first) */
} strata_visualize_result;

/* Activation maximization as Keras' example conv_filter_visualization: each filter of `layer`
 * starts from gray noise (pixel levels 128 + 20 u, u uniform in [0, 1)) and climbs the gradient of
 * its mean activation (the layer's output after its activation, over every position) with
 * respect to the input image, `steps` times, each step the gradient divided by its root mean
 * square + 1e-5, so the image moves by about one pixel level per step. Inference mode throughout
 * (dropout is the identity); weight gradients are computed on the way and left unused. Filters
 * that end at a mean activation of 0 or below are not kept. Free the result with
 * strata_visualize_result_free(), also after a failure. */
STRATA_API strata_status strata_visualize(strata_session *s, const strata_visualize_options *options,
                                          strata_visualize_result *result, strata_error *err);
STRATA_API void strata_visualize_result_free(strata_visualize_result *result);
/* Writes the first grid x grid images as a PNG, row by row, with 5-pixel black margins between
 * them and none around: grid * width + (grid - 1) * 5 pixels wide, likewise high. Each is
 * normalized as Keras' deprocess_image (mean 0.5, standard deviation 0.1, clipped, x 255); gray
 * for 1-channel inputs, RGB for 3-channel ones, others refused. Cells without an image stay black. */
STRATA_API strata_status strata_visualize_save_png(const strata_visualize_result *result, uint32_t grid,
                                                   const char *path, strata_error *err);

/* ---- Gradient checks (added in 0.3) ---- */

/* Which forward passes a gradient check differentiates. */
typedef enum strata_gradcheck_mode {
	STRATA_GRADCHECK_BOTH = 0,      /* training, then inference */
	STRATA_GRADCHECK_TRAINING = 1,  /* dropout acts, with the session's seed and step: a fixed mask */
	STRATA_GRADCHECK_INFERENCE = 2, /* dropout is the identity */
} strata_gradcheck_mode;

typedef struct strata_gradcheck_options {
	uint32_t size;       /* sizeof(strata_gradcheck_options) */
	size_t layer;        /* the layer checked, 0-based */
	uint32_t batch;      /* samples of random inputs; 0: 2. At most the session's max_batch */
	uint64_t seed;       /* of the inputs (uniform in [-1, 1); int32 inputs: ids, see `ids`) and of r */
	double tolerance;    /* the largest relative error that passes; 0: 1e-2 */
	double step;         /* the base step h; value v moves by h * max(|v|, 1); 0: 1e-2 */
	size_t max_checks;   /* elements checked per tensor, spread over it; 0: 200 */
	strata_gradcheck_mode mode;
	/* Added in 0.4: int32 inputs hold ids uniform in [0, ids) (an embedding's input_dim); 0 or 1:
	 * all 0. */
	uint32_t ids;
} strata_gradcheck_options;

/* One gradient of one mode: an input of the layer (`input` >= 0) or one of its weights. */
typedef struct strata_gradcheck_tensor {
	char name[160];      /* "input 0 (conv2d_1)", or the weight's name: "kernel" */
	bool training;       /* the mode checked */
	int32_t input;       /* the input's position, or -1 for a weight */
	int32_t weight;      /* the weight's index in the layer, or -1 for an input */
	size_t elements;     /* in the tensor (batch x shape for an input) */
	size_t checked;      /* compared with finite differences */
	size_t skipped;      /* of those, skipped as straddling a kink (relu, max) */
	double largest;      /* the largest |gradient| of the backward pass */
	double worst;        /* the worst relative error among the checked elements */
	size_t worst_index;  /* where (flat index, channels last) */
	double backward, differences; /* the two gradients there */
	bool passed;
	char message[384];   /* why it failed ("" when it passed) */
} strata_gradcheck_tensor;

typedef struct strata_gradcheck_report {
	size_t n_tensors;
	strata_gradcheck_tensor *tensors; /* per mode: each float32 input in order, then each weight */
	double tolerance;    /* as applied */
	double step;
	uint32_t batch;
	bool passed;         /* every tensor passed */
} strata_gradcheck_report;

/* Checks layer `layer`'s backward pass against central finite differences of L = sum(r * y), y
 * its output on random inputs of its input shapes and r random, computed in double on the host
 * from the float32 device results. The layer runs alone: its forward and backward callbacks are
 * called on inputs of the check's own (the layers before it do not run), with the session's
 * weights (initialized from the session's seed, or loaded), which are restored afterwards. Each
 * element's step is h * max(|v|, 1) (h = `step`), and its relative error |backward - differences|
 * over max(the tensor's largest |backward|, |backward|, |differences|); elements whose left and
 * right slopes differ by more than 1e-2 relative, even at a step ten times smaller, straddle a kink
 * and are skipped (at most half of them may be). A tensor passes when every gradient is
 * finite (gradient buffers are filled with NaN first, so a value the backward pass leaves
 * unwritten fails), a second backward pass (without the forward pass's workspaces) repeats the
 * first within 1e-5 relative (gradients overwritten, never added to), and the worst error is
 * within the tolerance. Enables training on the session (weight gradients). A status other than
 * STRATA_OK means the check could not run; the verdict is in `out`, freed with
 * strata_gradcheck_report_free(), also after a failure. */
STRATA_API strata_status strata_gradcheck(strata_session *s, const strata_gradcheck_options *options,
                                          strata_gradcheck_report *out, strata_error *err);
STRATA_API void strata_gradcheck_report_free(strata_gradcheck_report *report);

/* ---- GEMM tuning ---------------------------------------------------------------------------------- */

typedef struct strata_tune_options {
	uint32_t size;          /* sizeof(strata_tune_options) */
	uint32_t batch_size;    /* tune for a training step at this batch; 0: the model's */
	double budget_seconds;  /* search time; 0: 240. The first candidate always runs. */
	uint64_t seed;          /* order of the random part of the search */
	const char *cache_dir;  /* as strata_runtime_options.cache_dir; NULL: the default */
	bool no_store;          /* apply the result to this process only */
	FILE *report;           /* progress and the per-shape table; may be NULL */
} strata_tune_options;

typedef struct strata_tune_result {
	uint32_t shapes;        /* distinct GEMM shapes of one training step */
	uint32_t gemms;         /* GEMM calls in one training step */
	double gflop;           /* their work per step */
	double before_ms;       /* their time per step with the engines and parameters in force before; <0: failed */
	double after_ms;        /* and with the winners; <0: no candidate passed its checks */
	uint32_t tried, rejected, failed; /* candidates timed; with wrong results; that did not build or run */
	bool improved;          /* the winner is faster and now in force */
	bool stored;            /* ... and saved for later runtimes on this device */
	char path[4096];        /* the file it was saved to */
} strata_tune_result;

/* Records the GEMMs of one training step of `model` (a session is created for it and freed, so
 * the model must not be bound to one), then searches, within the budget, CLBlast's SGEMM kernel
 * parameters for the runtime's device on those shapes (half the time), per shape the faster of
 * CLBlast and Strata's own SGEMM with its fastest block shape and K split (30%), and the
 * launch-time tunables of Strata's other kernels on the whole step (the rest). Every GEMM
 * candidate's results are checked against the exact product, every tunable value against the
 * output, gradients and updated weights of the values in force, before it may win. A faster result is applied at once and stored in the cache folder, keyed by platform,
 * device and driver version; every later strata_runtime_create on that device applies it.
 * Takes minutes: each candidate is a build. */
STRATA_API strata_status strata_tune(strata_runtime *rt, strata_model *model, const strata_tune_options *options,
                                     strata_tune_result *result, strata_error *err);

/* ---- Images -------------------------------------------------------------------------------------- */

/* 8-bit gray pixels, row-major, top row first. */
typedef struct strata_image {
	uint8_t *pixels;
	uint32_t width, height;
} strata_image;

/* PNG (any depth and colour type, turned gray) or PGM (P2/P5), told apart by content. */
STRATA_API strata_status strata_image_load(const char *path, strata_image *out, strata_error *err);
/* The same from `len` bytes in memory (an HTTP body: `strata serve`). */
STRATA_API strata_status strata_image_decode(const uint8_t *data, size_t len, strata_image *out, strata_error *err);
STRATA_API void strata_image_free(strata_image *img);

/* ---- IDX data files (MNIST's format), plain or gzip ------------------------------------------- */

typedef struct strata_idx {
	uint8_t type;          /* 0x08 unsigned byte, 0x09 signed byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double */
	uint32_t rank;
	uint32_t dims[8];
	uint64_t count;        /* number of elements */
	void *data;            /* count elements in host byte order */
} strata_idx;

/* Reads a regular file (a FIFO or a device is refused), plain or gzip, whose size (decompressed)
 * must be exactly what its header declares; a file of no samples, or of empty samples, is refused. */
STRATA_API strata_status strata_idx_load(const char *path, strata_idx **out, strata_error *err);
STRATA_API void strata_idx_free(strata_idx *idx);
/* Checks that the unsigned-byte samples (or, for an input of int32 ids, int32 ones) of an IDX file
 * (N x sample dimensions) fit a model's input
 * shape (channels last): the sample dimensions must be the input shape, or the input shape without
 * a last axis of 1 (greyscale images without a channel axis, as MNIST's for [28, 28, 1]); no
 * transposing or flattening. `path` names the file in the message. */
STRATA_API strata_status strata_idx_check_samples(const strata_idx *idx, const char *path,
                                                  const strata_shape *input, strata_error *err);


/* ---- Vocabularies of text models (added in 0.4) ------------------------------------------------ */

/* The file scripts/text_to_ids.py writes: one token per line, line k (from 0) the token of id k,
 * line 0 empty (id 0, padding) and line 1 [UNK] (id 1, any token outside the vocabulary). */
typedef struct strata_vocabulary strata_vocabulary;

/* Reads a vocabulary; a file that is none (first lines, empty or repeated tokens, tokens the
 * tokenizer cannot make) is refused with its FILE:LINE. */
STRATA_API strata_status strata_vocabulary_load(const char *path, strata_vocabulary **out, strata_error *err);
STRATA_API void strata_vocabulary_free(strata_vocabulary *v);
/* Its ids: 0 to size - 1. */
STRATA_API uint32_t strata_vocabulary_size(const strata_vocabulary *v);
/* The ids of `len` bytes of text, as text_to_ids.py makes them: ASCII letters lowercased, ASCII
 * punctuation removed, split on whitespace, each token's id (1 when it is not in the vocabulary),
 * the first `length` into ids[0..length) and 0 after the last. Returns the number of tokens, which
 * may exceed `length` (the rest are cut off, as when training); SIZE_MAX when out of memory. */
STRATA_API size_t strata_vocabulary_encode(const strata_vocabulary *v, const char *text, size_t len, int32_t *ids,
                                           size_t length);

/* ---- Guard (added in 0.3) ---- */

/* For checking one plugin (`strata check-plugin`): loads the plugin file `path` into an open
 * registry, as the search path would (ABI check, init()). */
STRATA_API strata_status strata_registry_load_plugin(strata_registry *reg, const char *path, strata_error *err);
/* The OpenCL programs registered, in registration order: name, and the plugin that registered it
 * ("strata" for the runtime's own). */
STRATA_API size_t strata_registry_program_count(const strata_registry *reg);
STRATA_API const char *strata_registry_program_name(const strata_registry *reg, size_t i);
STRATA_API const char *strata_registry_program_plugin(const strata_registry *reg, size_t i);
/* Layer type i's inputs (min_inputs and max_inputs as the host reads them: 1 and 1 for a plugin
 * that gives neither; max 0 for no bound), whether it has a backward pass, and its parameters:
 * name, and the YAML text of its default (NULL: required). */
STRATA_API void strata_registry_layer_inputs(const strata_registry *reg, size_t i, uint32_t *min, uint32_t *max);
STRATA_API bool strata_registry_layer_has_backward(const strata_registry *reg, size_t i);
STRATA_API size_t strata_registry_layer_param_count(const strata_registry *reg, size_t i);
STRATA_API const char *strata_registry_layer_param(const strata_registry *reg, size_t i, size_t j,
                                                   const char **default_value);
/* Builds program `program` with its registered options for the runtime's device (or takes it from
 * the caches). A compile error's message holds the build log, its lines pointing at the program's
 * registered name and line (`NAME:LINE:COLUMN: error: ...`) in place of the driver's file. */
STRATA_API strata_status strata_runtime_build_program(strata_runtime *rt, const char *program, strata_error *err);
/* Whether the runtime runs in guard mode (strata_runtime_options.guard or STRATA_GUARD=1). */
STRATA_API bool strata_runtime_guarded(const strata_runtime *rt);
/* A training pass of `batch` samples (at most the session's) without data or loss: seeded
 * uniform inputs in [0, 1) (zeros for int32 inputs), a training forward pass, seeded uniform
 * gradients in [-1, 1) at the model's output, and, when `backward`, the backward pass to the
 * input; then waits for the device. Under the guard every launch is checked on the way. */
STRATA_API strata_status strata_session_check_pass(strata_session *s, uint32_t batch, uint64_t seed, bool backward,
                                                   strata_error *err);

/* ---- Augmentation (issue 14) ---- */

/* As strata_session_forward_to, with the forward pass of a training step: layers that act only
 * while training (augmentation, dropout) act, drawing from the session's seed and its step (the
 * training steps taken: 0 for a fresh session, the checkpoint's after strata_session_load), as
 * they would in the step the session takes next. What `strata visualize --augmented` shows. A
 * layer with training-only state on the way (batch normalization's moving statistics) updates it
 * as a training step would. */
STRATA_API strata_status strata_session_forward_training_to(strata_session *s, const float *input, uint32_t batch,
                                                            size_t layer, float *output, strata_error *err);

/* ---- ONNX (issue 16) ---- */

typedef struct strata_onnx_import_options {
	uint32_t size;            /* sizeof(strata_onnx_import_options) */
	const char *model_path;   /* the model file to write, NAME.yaml */
	const char *weights_path; /* the weights file to write; NULL: model_path with .stw for its extension */
	const char *name;         /* the model's name; NULL: the model file's base name */
} strata_onnx_import_options;

/* What an import made: the layouts of the graph's inputs and outputs (for feeding data in ONNX's
 * layout) and, when it refused, every node it could not map. */
typedef struct strata_onnx_import_result strata_onnx_import_result;

/* Reads an ONNX model (opsets 6 to 17), maps its graph to Strata's layers (channels-last) and
 * writes a model file and its weights, loaded back and checked by the loader before either is
 * written. A graph with nodes Strata cannot map writes nothing and returns
 * STRATA_ERR_UNSUPPORTED with every such node (name, op type, opset, why) listed in `err` and,
 * whole, in the result's refusals; `result` may be NULL. The registry must hold the layer types
 * the model uses (strata_registry_open loads them). No device is used. */
STRATA_API strata_status strata_onnx_import(strata_registry *reg, const char *onnx_path,
                                            const strata_onnx_import_options *options,
                                            strata_onnx_import_result **result, strata_error *err);
/* The refusals, one line per node ("" when none). */
STRATA_API const char *strata_onnx_import_refusals(const strata_onnx_import_result *r);
STRATA_API size_t strata_onnx_import_io_count(const strata_onnx_import_result *r, bool outputs);
/* Input or output i: its ONNX name, the Strata value holding it, its ONNX rank and dims (batch
 * first, -1 where symbolic) and its layout: Strata's axis k holds ONNX's axis perm[k]. */
STRATA_API strata_status strata_onnx_import_io(const strata_onnx_import_result *r, bool outputs, size_t i,
                                               const char **onnx_name, const char **strata_name, uint32_t *rank,
                                               const int64_t **dims, const uint32_t **perm);
STRATA_API void strata_onnx_import_result_free(strata_onnx_import_result *r);

/* Writes the model with the weights of `weights_path` as an ONNX file (opset 17), atomically.
 * Images (height, width, channels) enter and leave it channels-first (N, C, H, W), as ONNX
 * models do; every other input and output keeps Strata's axis order. A model with layers ONNX
 * cannot express (or this export does not) writes nothing and returns STRATA_ERR_UNSUPPORTED,
 * every such layer listed in `err`. No device is used. */
STRATA_API strata_status strata_onnx_export(const strata_model *model, const char *weights_path,
                                            const char *onnx_path, strata_error *err);

/* Runs inference on `batch` samples of a model with any number of inputs and outputs: inputs[i]
 * holds batch x input i's shape floats (ids as floats for int32 inputs), outputs[k] receives
 * batch x output k's shape floats. */
STRATA_API strata_status strata_session_run(strata_session *s, const float *const *inputs, uint32_t batch,
                                            float *const *outputs, strata_error *err);

#ifdef __cplusplus
}
#endif
#endif
