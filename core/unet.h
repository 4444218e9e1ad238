/* unet: segmentation_models_pytorch's Unet(encoder, classes=1, activation=None) built as a graph:
 * parameters, gradients and Adam moments in one shared flat layout; forward, ComboLoss, backward, Adam. */
#ifndef PN_UNET_H
#define PN_UNET_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "graph.h"
#include "model/arch.h"
#include "model_card.h"
#include "safetensors.h"

typedef struct pn_unet pn_unet;

typedef enum pn_unet_mode {
    PN_UNET_EVAL,  /* BatchNorm uses running statistics; forward only */
    PN_UNET_TRAIN, /* BatchNorm uses batch statistics and updates running ones; forward, loss, backward */
} pn_unet_mode;

/* One trainable tensor: views into the flat parameter, gradient and Adam-moment buffers. The gradient
 * and moment buffers are allocated by the first TRAIN plan, zero_grad or Adam step. */
typedef struct pn_unet_param {
    const char *name; /* smp state_dict name, e.g. "encoder.layer1.0.conv1.weight" */
    pn_tensor value, grad, m, v;
} pn_unet_param;

/* One BatchNorm's buffers: running statistics (views into the state buffer) and its batch counter. */
typedef struct pn_unet_bn {
    const char *prefix; /* e.g. "encoder.bn1" */
    pn_tensor running_mean, running_var;
    int64_t num_batches_tracked;
} pn_unet_bn;

/* Creates the model of architecture `arch` (see model/arch.h) on `be`: parameters zeroed, BatchNorm running
 * statistics mean 0 / variance 1. Load weights or call pn_unet_init_weights for a fresh model. */
pn_status pn_unet_create_arch(const pn_arch *arch, pn_backend *be, pn_unet **out);
/* The same for smp's Unet(encoder) without attention: resnet18/34/50/101, resnext50_32x4d, se_resnet50,
 * se_resnext50_32x4d, se_resnext101_32x4d. */
pn_status pn_unet_create(const char *encoder, pn_backend *be, pn_unet **out);
const pn_arch *pn_unet_arch(const pn_unet *m);
void pn_unet_free(pn_unet *m);

/* smp's initialisation from the counter-based RNG: encoder convs kaiming-normal (fan_out, relu) as
 * torchvision, decoder convs kaiming-uniform (fan_in, relu), head xavier-uniform, biases 0, BN 1/0,
 * running mean 0 / var 1. The same seed gives the same weights on every platform. */
pn_status pn_unet_init_weights(pn_unet *m, uint64_t seed);
/* Loads smp state_dict names from safetensors (a "module." prefix is accepted). A missing, extra or
 * mis-shaped tensor is an error naming the key and both shapes. */
pn_status pn_unet_load(pn_unet *m, const char *path);
/* Saves every parameter and BN buffer under smp names (F32, num_batches_tracked I64), atomically. */
pn_status pn_unet_save(pn_unet *m, const char *path);
/* The pieces of those two, for files that hold more than the model (the training state):
 * add every parameter and BN buffer to `w` under `prefix` + its smp name, each read from the backend while
 * the file is written; read them back from `f` (num_batches_tracked may be absent; no check for extra
 * tensors); one float tensor in or out, its shape checked on reading ("module." before a name accepted). */
pn_status pn_unet_add_weights(pn_unet *m, pn_st_writer *w, const char *prefix);
pn_status pn_unet_read_weights(pn_unet *m, const pn_st_file *f, const char *prefix);
pn_status pn_unet_add_tensor(pn_st_writer *w, const char *key, const pn_tensor *t);
pn_status pn_unet_read_tensor(const pn_st_file *f, const char *key, const pn_tensor *t);

/* Builds the program for inputs (n, 3, h, w) in `mode` and plans its arena. H and W must be
 * multiples of 32 (64 for AlbuNet; an error says so). Re-planning for another shape replaces the old program. */
pn_status pn_unet_plan(pn_unet *m, int n, int h, int w, pn_unet_mode mode);
/* Tensors of the planned program: input (n,3,h,w), logits (n,1,h,w); in TRAIN mode also the
 * target (n,1,h,w) and the loss (1). Set with pn_tensor_set, read with pn_tensor_get. */
pn_tensor *pn_unet_input(pn_unet *m);
pn_tensor *pn_unet_logits(pn_unet *m);
pn_tensor *pn_unet_target(pn_unet *m);
pn_tensor *pn_unet_loss_tensor(pn_unet *m);

/* Runs the forward pass (in TRAIN mode this updates the BN running statistics). */
pn_status pn_unet_forward(pn_unet *m);
/* TRAIN mode: ComboLoss of the logits against the target with these weights; *loss gets the value. */
pn_status pn_unet_loss(pn_unet *m, float w_bce, float w_dice, float w_focal, float *loss);
/* TRAIN mode: gradients of loss * grad_scale accumulate into the parameter gradients. */
pn_status pn_unet_backward(pn_unet *m, float grad_scale);
pn_status pn_unet_zero_grad(pn_unet *m);
/* Global L2 norm of all parameter gradients. */
pn_status pn_unet_grad_norm(pn_unet *m, double *norm);
/* torch.nn.utils.clip_grad_norm_: scales gradients by min(1, max_norm / (norm + 1e-6)); returns the norm. */
pn_status pn_unet_clip_grad_norm(pn_unet *m, double max_norm, double *norm);
/* Multiplies every parameter gradient by `factor` (removing a loss scale). */
pn_status pn_unet_scale_grad(pn_unet *m, double factor);
/* One Adam step over the flat parameters (p.step is the 1-based step count). */
pn_status pn_unet_adam_step(pn_unet *m, const pn_adam_params *p);

/* The model's card: architecture (set at creation), and what train/eval record (size, normalisation, triplet).
 * pn_unet_save writes it into the file's metadata; pn_unet_load replaces the non-architecture fields with the
 * file's (a file recorded for another architecture is an error naming both). */
pn_model_card *pn_unet_card(pn_unet *m);

int pn_unet_num_params(const pn_unet *m);
pn_unet_param *pn_unet_param_at(pn_unet *m, int i);
int pn_unet_num_bns(const pn_unet *m);
pn_unet_bn *pn_unet_bn_at(pn_unet *m, int i);
/* Total number of trainable scalars (24,436,369 for resnet34). */
int64_t pn_unet_param_count(const pn_unet *m);
/* Activation arena bytes of the planned program, and the bytes without reuse. */
size_t pn_unet_arena_bytes(const pn_unet *m);
size_t pn_unet_unshared_bytes(const pn_unet *m);
/* The most activation bytes alive at one node (what a perfect placement would need). */
size_t pn_unet_peak_live_bytes(const pn_unet *m);
pn_backend *pn_unet_backend(pn_unet *m);
/* The planned program (NULL before pn_unet_plan): forward nodes, then in TRAIN mode the loss and backward nodes.
 * For tests and diagnostics that step through it node by node. */
pn_graph *pn_unet_graph(pn_unet *m);

#endif
