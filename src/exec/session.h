/* A session: a model bound to a runtime, with device buffers for weights, activations and
 * workspaces planned once for the largest batch. */
#ifndef ST_SESSION_H
#define ST_SESSION_H

#include "model/model.h"
#include "exec/optimizer.h"
#include "device/runtime.h"
#include "device/tensor_pool.h"

typedef struct st_layer_bind {
	strata_tensor *weights;    /* n_weights */
	strata_tensor *grads;      /* n_weights */
	strata_tensor *workspaces; /* n_workspaces */
	strata_tensor output;      /* max_batch x out shape */
	uint64_t *pool_offsets;    /* n_weights: place in the weight pool, or ST_NOT_POOLED */
	uint32_t kept_batch;       /* the batch whose forward call last filled the workspaces; 0: none */
	strata_tensor **in;        /* n_inputs: the tensors of the values it reads */
	strata_tensor mask;        /* its output's mask, when it produces one (strata_mask_use) */
	bool borrowed;             /* `shares:` another layer's weights: they are released there */
} st_layer_bind;

/* Weights of frozen layers live apart from the pool the optimizer sweeps. */
#define ST_NOT_POOLED UINT64_MAX

struct strata_session {
	strata_runtime *rt;
	strata_model *model;
	uint32_t max_batch;
	uint64_t seed;
	uint64_t step; /* training steps taken; keys dropout masks */
	uint64_t total_steps; /* of the training run under way (strata_fit), 0 otherwise: plugin.h's */
	/* Data-parallel training (trainer.c): where the samples of the pass under way stand in their
	 * global batch (plugin.h's sample_offset), and the global batch the loss is a mean over
	 * (0: the pass's own batch), so that the ranks' gradients sum to the global batch's. */
	uint32_t sample_offset, loss_batch;
	strata_tensor input;         /* model input 0 */
	strata_tensor *more_inputs;  /* model inputs 1 and on */
	st_layer_bind *binds; /* one per layer */
	/* Activations (budget.c: st_session_plan_activations): each binds[i].output holds a reference
	 * of its own to one of these buffers, its `bytes` those of its own output (max_batch x out
	 * shape). Planned for inference, outputs never needed at once share a buffer (liveness over the
	 * model's order: a chain uses two); planned for training, every layer has its own, as the
	 * backward pass reads them all; STRATA_POOL=separate (memory checkers) plans for training. */
	strata_tensor *act_bufs;
	size_t n_act_bufs;
	bool act_planned;  /* false only while the session is being made */
	bool act_training; /* the plan in force is training's */
	/* Trainable weights, their gradients (and the optimizer's state, in st_optimizer) share one
	 * layout, so one launch updates them all. */
	st_pool weight_pool, grad_pool;
	st_pool_mode pool_mode; /* STRATA_POOL, read once: see tensor_pool.h */
	strata_tensor staging;  /* STRATA_POOL=separate: partial batches pass through it */
	st_tunables tunables; /* the runtime's when the session was created: plugins' host->tunable */
	/* Training (backward.c): the gradient of each value lives in one of a few slots, assigned by
	 * liveness over the backward pass (a chain uses two, in turn); a value read by several layers
	 * gets the later contributions through a scratch buffer and an accumulate. */
	bool training_ready;
	uint32_t *grad_slot;        /* per value: its slot, or ST_NO_SLOT */
	strata_tensor *grad_slots;
	size_t n_grad_slots;
	strata_tensor *grad_scratch; /* as many as a layer has inputs */
	size_t n_grad_scratch;
	strata_tensor **share_grads; /* per layer sharing weights: its own weight gradients */
	strata_tensor eval_grad;     /* the loss gradient of a session that only evaluates */
	/* Loss (loss.c): a head per output with a loss, prepared for evaluation and training alike. */
	bool loss_ready;
	struct st_loss_head *heads;
	size_t n_heads;
	strata_tensor sample_loss;    /* max_batch floats, reused head after head */
	strata_tensor sample_correct; /* max_batch floats: 1 where the prediction is right */
	strata_tensor sums;           /* on the device: [0] regularization, then per head its loss and correct sums,
	                               * then the activity regularizers' penalties */
	double activity_sum;          /* the penalties' sum, as st_loss_read_sums last read it */
	/* The end of the previous step: the host waits for it before running further ahead. */
	cl_event step_done;
	/* Training only. */
	bool has_optimizer;
	st_optimizer opt;
	uint64_t epoch; /* epochs completed */
};

#define ST_NO_SLOT UINT32_MAX

/* The tensor of value v: a model input or a layer's output (model.h numbers them). */
strata_tensor *st_session_value(strata_session *s, uint32_t v);
/* The gradient buffer of layer `layer`'s output: where a backward pass from it starts (the
 * loss writes the model output's). */
strata_tensor *st_session_layer_grad(strata_session *s, size_t layer);

/* backward.c: allocates weight gradients and the gradient buffers; idempotent. */
void st_session_release_training(strata_session *s);
strata_status st_session_enable_training(strata_session *s, strata_error *err);
/* Runs every layer on the batch already in s->input. */
strata_status st_session_forward_device(strata_session *s, uint32_t batch, bool training, strata_error *err);
/* Runs the layers in the model's order until layer n_layers - 1 has run (probes of an inner layer
 * stop there; in a chain, the first n_layers layers). */
strata_status st_session_forward_layers(strata_session *s, uint32_t batch, bool training, size_t n_layers,
                                        strata_error *err);
/* The output of the first n_layers layers: layer n_layers - 1's output, or the input for 0. */
strata_tensor *st_session_layer_output(strata_session *s, size_t n_layers);
/* The buffer the loss writes dLoss/dOutput of the model's output into (batch x output shape). */
strata_tensor *st_session_output_grad(strata_session *s);
/* The model's output, its first when it has several (batch x output shape). */
strata_tensor *st_session_output(strata_session *s);
/* Backpropagates from st_session_output_grad(); fills every weight gradient. `folded` says the
 * loss already applied the last layer's softmax derivative. When input_grad is not NULL it
 * receives the buffer holding dLoss/dInput. */
strata_status st_session_backward(strata_session *s, uint32_t batch, bool folded, strata_tensor **input_grad,
                                  strata_error *err);
/* Backpropagates from the output of `layer` (its gradient written to st_session_layer_grad()) down
 * to the input, after a forward pass that stopped there; weight gradients are filled on the way.
 * `training` says which kind of forward pass that was: false makes dropout the identity. */
strata_status st_session_backward_from(strata_session *s, uint32_t batch, size_t layer, bool training,
                                       strata_tensor **input_grad, strata_error *err);
/* Marks the end of the step just enqueued and waits for the end of the one before, so the host
 * stays at most one step ahead of the device: memory that libraries free only when their
 * commands complete (CLBlast's temporary matrices) cannot pile up over many queued steps. */
strata_status st_session_throttle(strata_session *s, strata_error *err);

/* loss.c */
enum st_loss_kind { ST_LOSS_CROSSENTROPY, ST_LOSS_MSE };
/* The loss of one model output: the recipe's loss and weight, the batch's labels, and whether
 * cross-entropy differentiates the output layer's softmax itself (`folded`). */
typedef struct st_loss_head {
	uint32_t output;      /* index into the model's outputs (and the recipe's) */
	uint32_t layer;       /* the layer whose output it is */
	int kind;             /* st_loss_kind */
	bool folded;
	float weight;         /* loss_weights */
	uint32_t classes;     /* values per sample of the output */
	strata_tensor labels; /* max_batch ints */
} st_loss_head;
/* Allocates what computing the losses needs; refuses a model without any loss. Idempotent. */
strata_status st_loss_prepare(strata_session *s, strata_error *err);
/* session.c: frees the loss's buffers (a session's destruction does). */
void st_loss_release(strata_session *s);
/* Each head's loss of its output against its labels: per-sample losses and correctness added to
 * s->sums, dLoss/dOutput (scaled by weight/batch) into the output's gradient slot. */
strata_status st_loss_compute(strata_session *s, uint32_t batch, strata_error *err);
strata_status st_loss_zero_sums(strata_session *s, strata_error *err);
/* The figures summed since the sums were zeroed (waiting for the device): per head its loss and
 * correct sums (loss[n_heads], correct[n_heads], either may be NULL), and the regularization
 * term recomputed from the weights. */
strata_status st_loss_read_sums(strata_session *s, double *loss, double *correct, double *regularization,
                                strata_error *err);
/* The weighted sum of the heads' mean losses plus regularization: the loss Keras shows. */
double st_loss_total(const strata_session *s, const double *loss_sums, uint32_t count, double regularization);

/* session_io.c: the session's tensors as named for checkpoints; *out freed with free(). */
strata_status st_session_named_tensors(strata_session *s, bool with_optimizer, st_named_tensor **out, size_t *n,
                                       strata_error *err);

/* Values per sample the model outputs (its first output's). */
uint64_t st_model_output_elems(const strata_model *m);
/* The bytes a sample needs in a session's buffers (its inputs, the activations of the inference
 * plan, the workspaces), and the model's weight bytes (*weights); and the refusal, before anything
 * is allocated, of what the device's memory cannot hold. */
uint64_t st_session_inference_bytes(const strata_model *m, uint64_t *weights);
strata_status st_session_check_fits(const strata_session *s, const char *what, uint64_t per_sample, uint64_t fixed,
                                    strata_error *err);

/* budget.c: the activation plan of model m for inference (liveness) or training (one buffer per
 * layer): buffer_of[i] (per layer) the buffer its output lives in, buffer_elems[k] the floats a
 * sample of buffer k holds, *n_buffers how many there are (at most n_layers; the arrays hold
 * n_layers). Deterministic: the model's order decides it. STRATA_ERR_NO_MEMORY without host memory. */
strata_status st_session_activation_plan(const strata_model *m, bool training, uint32_t *buffer_of,
                                         uint64_t *buffer_elems, size_t *n_buffers);
/* (Re)allocates the activation buffers for the plan asked for and points every binds[i].output at
 * its own (binds[j].in[k] follow); a no-op when that plan is in force. On failure the previous plan
 * stays. Training's is weighed against the device's memory first. What the outputs held is lost:
 * st_session_enable_training() calls it (training: true) before anything trains, and a forward pass
 * of a session ready for training on the inference plan calls it too. */
strata_status st_session_plan_activations(strata_session *s, bool training, strata_error *err);
/* The activation buffers in force: how many, and their bytes in all into *bytes (may be NULL). */
size_t st_session_activation_buffers(const strata_session *s, uint64_t *bytes);
/* Per sample, as st_session_inference_bytes(), with one buffer per layer's output (training). */
uint64_t st_session_training_bytes(const strata_model *m, uint64_t *weights);

/* Refuses a data set whose samples or classes do not match the model; `what` names its role. */
strata_status st_session_check_data(const strata_session *s, const strata_dataset *ds, const char *what,
                                    strata_error *err);


#endif
