/* ops: the op enum, names and typed parameter structs generated from ops.def. */
#ifndef PN_OPS_H
#define PN_OPS_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pn_none_params {
    int unused;
} pn_none_params;

typedef struct pn_fill_params {
    float value;
} pn_fill_params;

typedef struct pn_scale_params {
    float alpha;
} pn_scale_params;

typedef struct pn_conv2d_params {
    int stride, pad, groups; /* square kernels; kernel size comes from the weight shape */
} pn_conv2d_params;

typedef struct pn_batchnorm_params {
    float eps;      /* 1e-5 */
    float momentum; /* 0.1: running = (1 - m) * running + m * batch, unbiased variance */
} pn_batchnorm_params;

typedef struct pn_pool_params {
    int kernel, stride, pad;
    int ceil_mode; /* 1: torch's ceil_mode=True output size (SENet's stem pool) */
} pn_pool_params;

typedef struct pn_combo_loss_params {
    float w_bce, w_dice, w_focal; /* a weight of 0 skips that term */
    float grad_scale;             /* backward only: d(total)/d(loss) */
} pn_combo_loss_params;

typedef struct pn_adam_params {
    float lr, beta1, beta2, eps;
    float weight_decay; /* coupled: g += wd * p */
    int64_t step;       /* 1-based step number for bias correction */
} pn_adam_params;

typedef enum pn_op {
#define OP(E, name, P, nin, nout, ...) PN_OP_##E,
#include "ops.def"
#undef OP
    PN_OP_COUNT
} pn_op;

typedef union pn_op_params {
#define OP(E, name, P, nin, nout, ...) P name;
#include "ops.def"
#undef OP
} pn_op_params;

#define PN_OP_MAX_IO 5

/* "conv2d_fwd", ... */
const char *pn_op_name(pn_op op);
/* Number of input / output slots of an op. */
int pn_op_num_inputs(pn_op op);
int pn_op_num_outputs(pn_op op);
/* Whether output (is_out) or input slot i of op may be NULL (ops.def's opt_out / opt_in). */
bool pn_op_slot_optional(pn_op op, bool is_out, int i);
/* Whether a backend may leave op out (ops.def's need: OPTIONAL). */
bool pn_op_optional(pn_op op);
/* Output length of a max-pool along one axis of length `in` (floor or ceil mode, as torch.nn.MaxPool2d). */
int64_t pn_pool_out_size(int64_t in, const pn_pool_params *p);
/* The op whose name is `name`, or PN_OP_COUNT. */
pn_op pn_op_from_name(const char *name);

#ifdef __cplusplus
}
#endif

#endif
