/* Finite-difference checks of backward passes: the one implementation that `strata gradcheck`
 * (strata_gradcheck, one layer alone) and the test suites (tests/support.c's ts_fd_*, whole
 * models) share. */
#ifndef ST_GRADCHECK_H
#define ST_GRADCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include <strata/plugin.h>
#include <strata/strata.h>

/* The base step and the tolerance when a rule gives 0. */
#define ST_FD_STEP 1e-2
#define ST_FD_TOLERANCE 1e-2
/* An element whose left and right slopes differ by more than this (relative, as the error)
 * straddles a kink (relu, max pooling, Maximum), where a central difference means nothing. */
#define ST_FD_KINK 1e-2

/* How one gradient tensor is judged. */
typedef struct st_fd_rule {
	double step;       /* base step h (0: ST_FD_STEP); value v moves by h * max(|v|, 1) */
	double tolerance;  /* the largest relative error that passes (0: ST_FD_TOLERANCE) */
	size_t max_checks; /* at most this many elements, spread over the tensor by a stride of 7919 */
	double nontrivial; /* the largest |gradient| must reach this (0: no such demand) */
	bool kinks;        /* skip elements that straddle a kink */
	double kink_share; /* at most this share of the checked elements may be skipped (0: a quarter) */
	/* Errors are relative to max(1, |backward|, |differences|), or with this set to max(the
	 * tensor's largest |backward|, ...). */
	bool to_largest;
} st_fd_rule;

/* L at what the device holds now (a forward pass and sum(r * y) in double). */
typedef strata_status (*st_fd_loss_fn)(void *user, double *loss, strata_error *err);

/* Checks `grad`, the backward pass's gradient of L over the `count` elements of device tensor t
 * whose values are `values`, against central differences of L (`loss`), as `rule` says; l0 is L
 * at `values`. Each element moved is written back as it was. out->name names the tensor in the
 * message (set it before the call); the other fields of `out` are filled. STRATA_OK means the
 * check ran; its verdict is out->passed, with out->message saying why not. */
strata_status st_fd_check_tensor(strata_runtime *rt, st_fd_loss_fn loss, void *user, strata_tensor *t,
                                 const float *values, size_t count, const float *grad, const st_fd_rule *rule,
                                 double l0, strata_gradcheck_tensor *out, strata_error *err);

/* b within `repeat` relative of a (0: bit-identical); when not, false with the first element that
 * differs in msg ("WHAT[i]: A then B"). */
bool st_fd_same(const char *what, const float *a, const float *b, size_t n, double repeat, char *msg,
                size_t msg_size);

#endif
