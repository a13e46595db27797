/* Helpers shared by the Check suites. Each ck_asserts on unexpected failure, so a suite stays
 * about the behaviour it names. */
#ifndef TS_SUPPORT_H
#define TS_SUPPORT_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <strata/plugin.h>
#include <strata/strata.h>

/* Registry with the build tree's plugins. */
strata_registry *ts_registry(void);
/* Runtime on STRATA_TEST_DEVICE or "auto", with the disk cache in the test cache folder. No
 * device is a failure, never a skip: CI always has PoCL. */
strata_runtime *ts_runtime(strata_registry *reg);
/* Loads a model from YAML text; fails the test with the loader's message on error. */
strata_model *ts_model(strata_registry *reg, const char *yaml);
/* Loads a model from a file under tests/ (say "../models/mnist_cnn.yaml") by its path, so the
 * relative data paths in it resolve from its folder. */
strata_model *ts_model_file(strata_registry *reg, const char *relative);

/* The fixture most device tests start from: a registry and a runtime on the test device (as
 * ts_registry and ts_runtime), and any number of nets on it, each a model and its session. A
 * test that checks what opening the registry or runtime reports opens them itself. */
typedef struct ts_device {
	strata_registry *reg;
	strata_runtime *rt;
} ts_device;

typedef struct ts_net {
	strata_model *m;
	strata_session *s;
} ts_net;

ts_device ts_device_open(void);
/* The runtime, then the registry; NULL, a zeroed or an already closed device is a no-op. Close
 * the nets on it first: a session needs its runtime. */
void ts_device_close(ts_device *dev);
/* A session for batches of up to `batch` samples, weights from `seed`, on the model of `yaml`. */
ts_net ts_net_open(const ts_device *dev, const char *yaml, uint32_t batch, uint64_t seed);
/* The same on a model already loaded (ts_model_file); the net frees it. */
ts_net ts_net_from(const ts_device *dev, strata_model *m, uint32_t batch, uint64_t seed);
/* The session, then the model; NULL, a zeroed or an already closed net is a no-op. */
void ts_net_close(ts_net *net);

/* Path of a file under tests/ in the source tree; returns a static-lifetime-free malloc'd string. */
char *ts_src_path(const char *relative);
/* data/mnist/NAME (scripts/fetch-mnist.sh fetches it): a failed assertion when it is missing. */
char *ts_mnist_file(const char *name);
/* MNIST's training set (`train`) or its test set with `o`'s choices (offset, limit, labels kept,
 * standardization); pixels scaled by 1/255 and 10 classes unless `o` says otherwise. */
strata_dataset *ts_mnist(strata_runtime *rt, bool train, strata_dataset_options o);
/* A fresh folder $TMPDIR/strata-PREFIX-XXXXXX (default /tmp) into dir; removed with all it holds. */
void ts_tmpdir_make(char *dir, size_t size, const char *prefix);
void ts_tmpdir_remove(const char *dir);
/* "dir/name", malloc'd. */
char *ts_join(const char *dir, const char *name);
/* Runs the suite, returns the process exit status. */
int ts_run(Suite *suite);
/* Writes an IDX file: `type` 0x08 (bytes) or 0x0C (int32, given in host order), `rank` dimensions
 * (dims[0] samples), the header and ints big-endian as the format says; fails the test on error. */
void ts_write_idx(const char *path, uint8_t type, uint32_t rank, const uint32_t *dims, const void *data);
/* Deterministic pseudo-random floats in [lo, hi). */
void ts_fill_random(float *dst, size_t n, unsigned seed, float lo, float hi);

/* ---- Finite differences of the backward pass --------------------------------------------------
 * Shared by the suites that check backward passes (layers_backward, merge): every gradient is
 * compared with central differences of L = sum(r * y) for a fixed random r, so the backward pass
 * starts from grad_output = r. */

/* n floats (at least one), malloc'd; fails the test when out of memory. */
float *ts_floats(size_t n);
/* n floats from src into device tensor t at float offset `offset`, and the first n floats of t
 * into dst: the tests' way to set and observe device buffers; fail the test on a device error. */
void ts_tensor_write(strata_runtime *rt, strata_tensor *t, size_t offset, const float *src, size_t n);
void ts_tensor_read(strata_runtime *rt, strata_tensor *t, float *dst, size_t n);

/* A model under test: its device and net, a batch, host copies of its (first) input x, of r and
 * of its (first) output y, and of every weight of every layer that owns its weights (layers that
 * share another's have none of their own), layer-major. */
typedef struct ts_fd {
	ts_device dev;
	ts_net net;
	uint32_t batch;
	size_t in_count, out_count; /* of `batch` samples */
	float *x, *r, *y;
	size_t n_weights;
	size_t *w_layer, *w_index, *w_count; /* weight k is layer w_layer[k]'s weight w_index[k] */
	float **w;
} ts_fd;

/* How a finite-difference check judges one gradient tensor: the library's check
 * (src/probe/gradcheck.c, st_fd_check_tensor, the one `strata gradcheck` runs) with the suites'
 * settings. The step and tolerance are for float32 passes on values O(1): a step of 1e-2 keeps
 * the truncation error (O(step^2)) and the rounding error of L (O(1e-7 / step)) both far below
 * the 1e-2 relative tolerance. */
typedef struct ts_fd_tolerance {
	double step;       /* the base step h, 0: 1e-2; value v moves by h * max(|v|, 1) */
	size_t max_checks; /* at most this many elements of each tensor, spread over the whole tensor */
	double nontrivial; /* the largest gradient must reach this: a zero gradient matches zero differences */
	bool kinks;        /* skip elements that straddle a kink (relu, max pooling, Maximum) */
	/* The 1e-2 tolerance is relative to max(1, |backward|, |differences|), or with this set to
	 * max(the tensor's largest gradient, ...): small gradients (a product of many branches) then
	 * meet the standard of the large ones instead of an absolute 1e-2 they would pass anyway. */
	bool to_largest;
	/* A second backward pass must give the first's gradients within this relative difference
	 * (0: bit-identical), proving they are overwritten, not added to. */
	double repeat;
} ts_fd_tolerance;

/* Loads the model, plans a session for one sample more than the batch (so every pass covers a
 * partial batch), prepares training, and uploads random weights (seeds seed + 100 + k, in
 * [-0.5, 0.5), biases shifted by `bias_center`: around 1, a product of many branches stays O(1)),
 * x (seed, in [-1, 1)) and draws r (seed + 7, in [-1, 1)). A caller that wants other inputs
 * changes f->x and writes it again. */
void ts_fd_open(ts_fd *f, const char *yaml, uint32_t batch, float bias_center, unsigned seed);
void ts_fd_close(ts_fd *f);
/* The device tensor of weight k, or of its gradient. */
strata_tensor *ts_fd_weight(ts_fd *f, size_t k, bool grad);
/* A training forward pass of f->batch samples on what the device holds now. */
void ts_fd_forward(ts_fd *f);
/* L = sum(r * y), in double, of a training forward pass, plus the penalties of the layers' activity
 * regularizers (l1 * sum|y| + l2 * sum y^2 over the batch, divided by it, as the backward pass
 * differentiates them); leaves y in f->y. */
double ts_fd_loss(ts_fd *f);
/* The backward pass from grad_output = r; the input gradient's buffer (never NULL) when
 * `want_input`, else NULL. */
strata_tensor *ts_fd_backward(ts_fd *f, bool want_input);
/* Fills every gradient buffer with NaN, so an element a backward pass forgets to write (or adds
 * to instead of overwriting) shows as not finite. */
void ts_fd_poison(ts_fd *f);
/* Checks `grad`, the gradient of L over `count` elements whose values are `values` in device
 * tensor t, against central differences of L, as `tol` says; l0 is L at `values`. Every element
 * must be finite; up to tol->max_checks elements, spread by a stride coprime with the size, must
 * agree within 1e-2 relative; at most a quarter of them may be skipped as kinks (left and right
 * slopes differing by more than 1e-2 relative, after retrying with a ten times smaller step). */
void ts_fd_check(ts_fd *f, const char *what, strata_tensor *t, float *values, size_t count, const float *grad,
                 const ts_fd_tolerance *tol, double l0);
/* The whole check of an opened model: poisons the gradients, runs a backward pass, then the input
 * gradient and every weight gradient against finite differences (ts_fd_check); a second pass
 * must repeat them (tol->repeat), and the weight gradients again when nobody asks for the input
 * gradient. */
void ts_fd_check_gradients(ts_fd *f, const ts_fd_tolerance *tol);

#endif
