/* cpu ReLU joined into its neighbour (training and any program where the conv fusion does not apply): an in-place
 * RELU_FWD prepared right after a BATCHNORM_TRAIN_FWD, BATCHNORM_APPLY or ADD on that node's output is applied in the
 * neighbour's own write (one pass over the tensor instead of two), and a RELU_BWD prepared right before the
 * BATCHNORM_BWD that reads its output is computed inside the BatchNorm backward's first pass. The joined ReLU's compute
 * only checks that its partner runs next to it. */
#include <stdlib.h>

#include "cpu.h"

#define JOIN_HEAD                                                                                                      \
    0x4a4f4948               /* on the BatchNorm / add node: it applies the ReLU (forward) or computes it (backward)   \
                              */
#define JOIN_RELU 0x4a4f4952 /* on the ReLU node: its partner does the work */

typedef struct relu_join {
    int magic;
    pn_node *partner;
} relu_join;

static bool same_memory(const pn_tensor *a, const pn_tensor *b) {
    return a && b && a->buf == b->buf && a->offset == b->offset && pn_tensor_same_shape(a, b);
}

static relu_join *join_of(const pn_node *node, int magic) {
    relu_join *j = node->state;
    return j && j->magic == magic ? j : NULL;
}

bool pn_cpu_relu_joined_head(const pn_node *node) { return join_of(node, JOIN_HEAD) != NULL; }
bool pn_cpu_relu_joined(const pn_node *node) { return join_of(node, JOIN_RELU) != NULL; }

/* Undoes a join from either side (both nodes' states go). */
void pn_cpu_relu_join_release(pn_node *node) {
    relu_join *j = join_of(node, JOIN_HEAD);
    if (!j) j = join_of(node, JOIN_RELU);
    if (!j) return;
    pn_node *partner = j->partner;
    if (join_of(partner, j->magic == JOIN_HEAD ? JOIN_RELU : JOIN_HEAD)) {
        free(partner->state);
        partner->state = NULL;
    }
    free(node->state);
    node->state = NULL;
}

static pn_status join(pn_node *head, pn_node *relu) {
    relu_join *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return pn_error(PN_ERR_NOMEM, "out of memory joining a ReLU");
    }
    a->magic = JOIN_HEAD, a->partner = relu;
    b->magic = JOIN_RELU, b->partner = head;
    head->state = a;
    relu->state = b;
    return PN_OK;
}

static bool joins_forward(const pn_node *prev, const pn_node *node) {
    bool head_op = prev->op == PN_OP_BATCHNORM_TRAIN_FWD || prev->op == PN_OP_BATCHNORM_APPLY || prev->op == PN_OP_ADD;
    return node->op == PN_OP_RELU_FWD && head_op && !prev->state && same_memory(node->in[0], prev->out[0]) &&
           same_memory(node->out[0], prev->out[0]);
}

/* dx of the ReLU backward is dy of the BatchNorm backward, and the BatchNorm does not write it (dx is its own). */
static bool joins_backward(const pn_node *prev, const pn_node *node) {
    return prev->op == PN_OP_RELU_BWD && node->op == PN_OP_BATCHNORM_BWD && !prev->state &&
           same_memory(node->in[0], prev->out[0]) && !same_memory(node->out[0], prev->out[0]);
}

bool pn_cpu_relu_join_op(pn_op op) {
    return op == PN_OP_RELU_FWD || op == PN_OP_RELU_BWD || op == PN_OP_BATCHNORM_TRAIN_FWD ||
           op == PN_OP_BATCHNORM_APPLY || op == PN_OP_ADD || op == PN_OP_BATCHNORM_BWD;
}

pn_status pn_cpu_relu_join_prepare(cpu_ctx *ctx, pn_node *node) {
    pn_node *prev = ctx->prev_prepared;
    ctx->prev_prepared = node;
    if (!prev || !ctx->fuse || node->state) return PN_OK;
    if (joins_forward(prev, node)) return join(prev, node);
    if (joins_backward(prev, node)) return join(node, prev);
    return PN_OK;
}

pn_status pn_cpu_relu_join_check(const cpu_ctx *ctx, const pn_node *node) {
    const relu_join *j = join_of(node, JOIN_RELU);
    /* forward: the head ran just before; backward: the BatchNorm backward runs just after (checked there) */
    if (node->op == PN_OP_RELU_FWD && ctx->ran_last != j->partner)
        return pn_error(PN_ERR_BACKEND,
                        "%s %s: this ReLU was joined to the node before it, which must run right before it",
                        pn_op_name(node->op), node->label ? node->label : "");
    return PN_OK;
}

pn_status pn_cpu_relu_join_check_bwd(const cpu_ctx *ctx, const pn_node *bn) {
    const relu_join *j = join_of(bn, JOIN_HEAD);
    if (bn->op == PN_OP_BATCHNORM_BWD && j && ctx->ran_last != j->partner)
        return pn_error(PN_ERR_BACKEND,
                        "%s %s: the ReLU backward joined to this BatchNorm backward must run right before it",
                        pn_op_name(bn->op), bn->label ? bn->label : "");
    return PN_OK;
}

const pn_node *pn_cpu_relu_join_partner(const pn_node *node) {
    const relu_join *j = join_of(node, JOIN_HEAD);
    return j ? j->partner : NULL;
}
