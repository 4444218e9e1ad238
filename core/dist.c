/* dist: the synchronised backend (core/dist.h): BatchNorm statistics and ComboLoss sums of the global batch, built
 * from the inner backend's own ops (the local op, then BATCHNORM_APPLY with the combined statistics) and small host
 * reductions over the communicator; every other call passes through to the inner backend. */
#include "dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "combo_loss.h"

typedef struct sync_ctx {
    pn_backend *inner;
    pn_comm *comm;
    pn_buffer
        scratch; /* one activation-sized tensor for the BatchNorm backward's correction (nodes run one at a time) */
} sync_ctx;

/* BATCHNORM_TRAIN_FWD: the local op gives this rank's mean and variance; the combined ones (one all-reduce) replace
 * them and the running statistics it updated, and BATCHNORM_APPLY normalises with them. */
typedef struct bn_fwd_state {
    pn_node local, apply;
    double *sums; /* 2C + 1 */
    float *host;  /* 4C: old running mean and var, then mean and invstd */
} bn_fwd_state;

/* BATCHNORM_BWD: the local op into zeroed per-channel sums (its dx uses this rank's sums of dy and dy * xhat); the
 * difference to the global sums is an affine function of xhat per channel, added to dx through BATCHNORM_APPLY into
 * the scratch tensor; then this rank's sums go into dgamma and dbeta. */
typedef struct bn_bwd_state {
    pn_node zero, local, correct, add, acc_gamma, acc_beta;
    pn_buffer small;                                          /* the four C-vectors below */
    pn_tensor sums, sum_dy_xhat, sum_dy, coef_b, coef_a, tmp; /* sums = both per-channel sums, for the FILL */
    double *reduced;                                          /* 2C + 1 */
    float *host;                                              /* 6C */
} bn_bwd_state;

/* COMBO_LOSS_FWD/BWD: logits and targets on the host, the sums of core/combo_loss.h over every rank. */
typedef struct loss_state {
    float *x, *t, *dx;
} loss_state;

static sync_ctx *ctx_of(pn_backend *be) { return (sync_ctx *)be->ctx; }

static bool synced(pn_op op) {
    return op == PN_OP_BATCHNORM_TRAIN_FWD || op == PN_OP_BATCHNORM_BWD || op == PN_OP_COMBO_LOSS_FWD ||
           op == PN_OP_COMBO_LOSS_BWD;
}

static pn_node sub_node(pn_op op, pn_op_params p, const char *label) {
    pn_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.p = p;
    n.label = label;
    return n;
}

static pn_tensor vec_view(pn_buffer *buf, int64_t offset_floats, int64_t n, const char *name) {
    pn_tensor t = pn_tensor_vec(n);
    t.buf = buf;
    t.offset = (size_t)offset_floats * sizeof(float);
    t.name = name;
    return t;
}

/* ---------------- BatchNorm forward ---------------- */

static void bn_fwd_free(pn_backend *inner, bn_fwd_state *s) {
    pn_node_release(inner, &s->local);
    pn_node_release(inner, &s->apply);
    free(s->sums);
    free(s->host);
    free(s);
}

static pn_status bn_fwd_prepare(sync_ctx *c, pn_node *node) {
    int64_t ch = node->in[0]->shape[1];
    bn_fwd_state *s = calloc(1, sizeof *s);
    if (!s) return pn_error(PN_ERR_NOMEM, "out of memory");
    s->sums = malloc((size_t)(2 * ch + 1) * sizeof(double));
    s->host = malloc((size_t)(4 * ch) * sizeof(float));
    s->local = *node;
    s->local.state = NULL;
    pn_op_params p = {.batchnorm_apply = node->p.batchnorm_train_fwd};
    s->apply = sub_node(PN_OP_BATCHNORM_APPLY, p, node->label);
    s->apply.out[0] = node->out[0];
    pn_tensor *ins[] = {node->in[0], node->in[1], node->in[2], node->out[1], node->out[2]};
    memcpy(s->apply.in, ins, sizeof ins);
    pn_status st = s->sums && s->host ? PN_OK : pn_error(PN_ERR_NOMEM, "out of memory");
    if (st == PN_OK) st = pn_node_prepare(c->inner, &s->local);
    if (st == PN_OK) st = pn_node_prepare(c->inner, &s->apply);
    if (st != PN_OK) {
        bn_fwd_free(c->inner, s);
        return st;
    }
    node->state = s;
    return PN_OK;
}

/* Combines each rank's (count, mean, biased variance) in one sum: n, sum n_r * mean_r and sum n_r * (var_r + mean_r^2),
 * so mean = S / n and var = Q / n - mean^2 in double. The inputs are floats, so the cancellation costs nothing unless
 * mean^2 / var approaches 1e10; the rounding of each rank's float statistics is what remains. */
static pn_status bn_fwd_compute(sync_ctx *c, pn_node *node) {
    bn_fwd_state *s = node->state;
    const pn_batchnorm_params *p = &node->p.batchnorm_train_fwd;
    const pn_tensor *x = node->in[0];
    int64_t ch = x->shape[1];
    double n_r = (double)(x->shape[0] * x->shape[2] * x->shape[3]);
    float *old_mean = s->host, *old_var = s->host + ch, *mean = s->host + 2 * ch, *invstd = s->host + 3 * ch;
    PN_TRY(pn_tensor_get(node->out[3], old_mean));
    PN_TRY(pn_tensor_get(node->out[4], old_var));
    PN_TRY(pn_node_compute(c->inner, &s->local));
    PN_TRY(pn_tensor_get(node->out[1], mean));
    PN_TRY(pn_tensor_get(node->out[2], invstd));
    double *sum = s->sums, *sq = s->sums + ch + 1;
    sum[0] = n_r;
    for (int64_t k = 0; k < ch; k++) {
        double var_r = 1.0 / ((double)invstd[k] * invstd[k]) - p->eps;
        sum[1 + k] = n_r * mean[k];
        sq[k] = n_r * ((var_r > 0 ? var_r : 0.0) + (double)mean[k] * mean[k]);
    }
    PN_TRY(c->comm->sum_f64(c->comm, sum, 2 * ch + 1));
    double n = sum[0];
    for (int64_t k = 0; k < ch; k++) {
        double m = sum[1 + k] / n, var = sq[k] / n - m * m;
        if (var < 0) var = 0;
        mean[k] = (float)m;
        invstd[k] = (float)(1.0 / sqrt(var + p->eps));
        old_mean[k] = (float)((1.0 - p->momentum) * old_mean[k] + p->momentum * m);
        old_var[k] = (float)((1.0 - p->momentum) * old_var[k] + p->momentum * (n > 1 ? var * n / (n - 1.0) : var));
    }
    PN_TRY(pn_tensor_set(node->out[1], mean));
    PN_TRY(pn_tensor_set(node->out[2], invstd));
    PN_TRY(pn_tensor_set(node->out[3], old_mean));
    PN_TRY(pn_tensor_set(node->out[4], old_var));
    return pn_node_compute(c->inner, &s->apply);
}

/* ---------------- BatchNorm backward ---------------- */

static void bn_bwd_free(pn_backend *inner, bn_bwd_state *s) {
    pn_node *nodes[] = {&s->zero, &s->local, &s->correct, &s->add, &s->acc_gamma, &s->acc_beta};
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) pn_node_release(inner, nodes[i]);
    pn_buffer_free(&s->small);
    free(s->reduced);
    free(s->host);
    free(s);
}

/* Grows the shared scratch to hold a tensor like t (at prepare time; nodes read its address when they run). */
static pn_status scratch_for(sync_ctx *c, const pn_tensor *t) {
    size_t need = pn_backend_storage_bytes(c->inner, t);
    if (c->scratch.backend && c->scratch.bytes >= need) return PN_OK;
    pn_buffer_free(&c->scratch);
    return pn_buffer_alloc(c->inner, &c->scratch, need);
}

static void bn_bwd_wire(bn_bwd_state *s, const pn_node *node, int64_t ch) {
    int64_t pad = (ch + 15) / 16 * 16;
    s->sum_dy_xhat = vec_view(&s->small, 0, ch, "sum dy*xhat");
    s->sum_dy = vec_view(&s->small, pad, ch, "sum dy");
    s->sums = vec_view(&s->small, 0, 2 * pad, "sums");
    s->coef_b = vec_view(&s->small, 2 * pad, ch, "xhat coefficient");
    s->coef_a = vec_view(&s->small, 3 * pad, ch, "constant");
    pn_op_params none = {0}, zero = {.fill = {0.0f}}, one = {.axpy = {1.0f}};
    pn_op_params apply = {.batchnorm_apply = node->p.batchnorm_bwd};
    s->zero = sub_node(PN_OP_FILL, zero, node->label);
    s->zero.out[0] = &s->sums;
    s->local = *node;
    s->local.state = NULL;
    s->local.out[1] = &s->sum_dy_xhat;
    s->local.out[2] = &s->sum_dy;
    s->correct = sub_node(PN_OP_BATCHNORM_APPLY, apply, node->label);
    s->correct.out[0] = &s->tmp;
    pn_tensor *ins[] = {node->in[1], &s->coef_b, &s->coef_a, node->in[3], node->in[4]};
    memcpy(s->correct.in, ins, sizeof ins);
    s->add = sub_node(PN_OP_ADD, none, node->label);
    s->add.out[0] = node->out[0];
    s->add.in[0] = node->out[0];
    s->add.in[1] = &s->tmp;
    s->acc_gamma = sub_node(PN_OP_AXPY, one, node->label);
    s->acc_gamma.out[0] = node->out[1];
    s->acc_gamma.in[0] = &s->sum_dy_xhat;
    s->acc_beta = sub_node(PN_OP_AXPY, one, node->label);
    s->acc_beta.out[0] = node->out[2];
    s->acc_beta.in[0] = &s->sum_dy;
}

static pn_status bn_bwd_prepare(sync_ctx *c, pn_node *node) {
    const pn_tensor *x = node->in[1];
    int64_t ch = x->shape[1];
    bn_bwd_state *s = calloc(1, sizeof *s);
    if (!s) return pn_error(PN_ERR_NOMEM, "out of memory");
    s->reduced = malloc((size_t)(2 * ch + 1) * sizeof(double));
    s->host = malloc((size_t)(6 * ch) * sizeof(float));
    pn_status st = s->reduced && s->host ? PN_OK : pn_error(PN_ERR_NOMEM, "out of memory");
    if (st == PN_OK) st = pn_buffer_alloc(c->inner, &s->small, (size_t)(4 * ((ch + 15) / 16 * 16)) * sizeof(float));
    if (st == PN_OK) st = scratch_for(c, x);
    if (st == PN_OK) {
        s->tmp = *x;
        s->tmp.buf = &c->scratch;
        s->tmp.offset = 0;
        s->tmp.name = "sync-bn correction";
        bn_bwd_wire(s, node, ch);
        pn_node *nodes[] = {&s->zero, &s->local, &s->correct, &s->add, &s->acc_gamma, &s->acc_beta};
        for (size_t i = 0; st == PN_OK && i < sizeof nodes / sizeof nodes[0]; i++)
            st = pn_node_prepare(c->inner, nodes[i]);
    }
    if (st != PN_OK) {
        bn_bwd_free(c->inner, s);
        return st;
    }
    node->state = s;
    return PN_OK;
}

/* dx = gamma * invstd * (dy - S1 / n - xhat * S2 / n) with S1 = sum dy, S2 = sum dy * xhat over the global batch;
 * the local op used this rank's S1_r / n_r and S2_r / n_r, so dx += a + b * xhat with
 * a = gamma * invstd * (S1_r / n_r - S1 / n), b = gamma * invstd * (S2_r / n_r - S2 / n). */
static pn_status bn_bwd_compute(sync_ctx *c, pn_node *node) {
    bn_bwd_state *s = node->state;
    const pn_tensor *x = node->in[1];
    int64_t ch = x->shape[1];
    double n_r = (double)(x->shape[0] * x->shape[2] * x->shape[3]);
    float *s2 = s->host, *s1 = s->host + ch, *gamma = s->host + 2 * ch, *invstd = s->host + 3 * ch;
    PN_TRY(pn_node_compute(c->inner, &s->zero));
    PN_TRY(pn_node_compute(c->inner, &s->local));
    PN_TRY(pn_tensor_get(&s->sum_dy_xhat, s2));
    PN_TRY(pn_tensor_get(&s->sum_dy, s1));
    PN_TRY(pn_tensor_get(node->in[2], gamma));
    PN_TRY(pn_tensor_get(node->in[4], invstd));
    double *r = s->reduced;
    r[0] = n_r;
    for (int64_t k = 0; k < ch; k++) r[1 + k] = s1[k], r[1 + ch + k] = s2[k];
    PN_TRY(c->comm->sum_f64(c->comm, r, 2 * ch + 1));
    double n = r[0];
    float *coef_b = s->host + 4 * ch, *coef_a = s->host + 5 * ch;
    for (int64_t k = 0; k < ch; k++) {
        double g = (double)gamma[k] * invstd[k];
        double a = g * (s1[k] / n_r - r[1 + k] / n), b = g * (s2[k] / n_r - r[1 + ch + k] / n);
        coef_a[k] = (float)a, coef_b[k] = (float)b;
    }
    PN_TRY(pn_tensor_set(&s->coef_b, coef_b));
    PN_TRY(pn_tensor_set(&s->coef_a, coef_a));
    PN_TRY(pn_node_compute(c->inner, &s->correct));
    PN_TRY(pn_node_compute(c->inner, &s->add));
    PN_TRY(pn_node_compute(c->inner, &s->acc_gamma));
    return pn_node_compute(c->inner, &s->acc_beta);
}

/* ---------------- ComboLoss ---------------- */

static void loss_free(loss_state *s) {
    free(s->x);
    free(s->t);
    free(s->dx);
    free(s);
}

static pn_status loss_prepare(pn_node *node) {
    size_t n = (size_t)pn_tensor_numel(node->in[0]);
    loss_state *s = calloc(1, sizeof *s);
    if (!s) return pn_error(PN_ERR_NOMEM, "out of memory");
    s->x = malloc(n * sizeof(float));
    s->t = malloc(n * sizeof(float));
    s->dx = node->op == PN_OP_COMBO_LOSS_BWD ? malloc(n * sizeof(float)) : NULL;
    if (!s->x || !s->t || (node->op == PN_OP_COMBO_LOSS_BWD && !s->dx)) {
        loss_free(s);
        return pn_error(PN_ERR_NOMEM, "out of memory for the synchronised loss (%zu pixels)", n);
    }
    node->state = s;
    return PN_OK;
}

/* The sums of this rank's pixels, added over every rank. */
static pn_status global_sums(sync_ctx *c, pn_node *node, pn_combo_sums *a) {
    loss_state *s = node->state;
    int64_t n = pn_tensor_numel(node->in[0]);
    PN_TRY(pn_tensor_get(node->in[0], s->x));
    PN_TRY(pn_tensor_get(node->in[1], s->t));
    *a = pn_combo_accumulate(s->x, s->t, n);
    double v[6] = {a->bce, a->focal, a->inter, a->sum_s, a->sum_t, a->count};
    PN_TRY(c->comm->sum_f64(c->comm, v, 6));
    a->bce = v[0], a->focal = v[1], a->inter = v[2], a->sum_s = v[3], a->sum_t = v[4], a->count = v[5];
    return PN_OK;
}

static pn_status loss_fwd_compute(sync_ctx *c, pn_node *node) {
    pn_combo_sums a;
    PN_TRY(global_sums(c, node, &a));
    float loss = (float)pn_combo_loss_value(&a, &node->p.combo_loss_fwd);
    return pn_tensor_set(node->out[0], &loss);
}

static pn_status loss_bwd_compute(sync_ctx *c, pn_node *node) {
    loss_state *s = node->state;
    const pn_combo_loss_params *p = &node->p.combo_loss_bwd;
    pn_combo_sums a;
    PN_TRY(global_sums(c, node, &a));
    bool floored = pn_combo_total(&a, p) < PN_COMBO_LOSS_FLOOR;
    int64_t n = pn_tensor_numel(node->in[0]);
    for (int64_t i = 0; i < n; i++) s->dx[i] = pn_combo_grad(s->x[i], s->t[i], &a, p, floored);
    return pn_tensor_set(node->out[0], s->dx);
}

/* ---------------- the vtable: synchronised ops here, everything else to the inner backend ---------------- */

static pn_status w_prepare(pn_backend *be, pn_node *node) {
    sync_ctx *c = ctx_of(be);
    switch (node->op) {
    case PN_OP_BATCHNORM_TRAIN_FWD: return bn_fwd_prepare(c, node);
    case PN_OP_BATCHNORM_BWD: return bn_bwd_prepare(c, node);
    case PN_OP_COMBO_LOSS_FWD:
    case PN_OP_COMBO_LOSS_BWD: return loss_prepare(node);
    default: return c->inner->prepare ? c->inner->prepare(c->inner, node) : PN_OK;
    }
}

static pn_status w_compute(pn_backend *be, pn_node *node) {
    sync_ctx *c = ctx_of(be);
    switch (node->op) {
    case PN_OP_BATCHNORM_TRAIN_FWD: return bn_fwd_compute(c, node);
    case PN_OP_BATCHNORM_BWD: return bn_bwd_compute(c, node);
    case PN_OP_COMBO_LOSS_FWD: return loss_fwd_compute(c, node);
    case PN_OP_COMBO_LOSS_BWD: return loss_bwd_compute(c, node);
    default: return c->inner->compute(c->inner, node);
    }
}

static void w_release(pn_backend *be, pn_node *node) {
    sync_ctx *c = ctx_of(be);
    if (!synced(node->op)) {
        if (c->inner->release) c->inner->release(c->inner, node);
        return;
    }
    if (!node->state) return; /* not prepared (release is called for every node) */
    if (node->op == PN_OP_BATCHNORM_TRAIN_FWD)
        bn_fwd_free(c->inner, node->state);
    else if (node->op == PN_OP_BATCHNORM_BWD)
        bn_bwd_free(c->inner, node->state);
    else
        loss_free(node->state);
}

static pn_status w_buffer_alloc(pn_backend *be, pn_buffer *buf, size_t bytes) {
    pn_backend *in = ctx_of(be)->inner;
    return in->buffer_alloc(in, buf, bytes);
}
static void w_buffer_free(pn_backend *be, pn_buffer *buf) {
    pn_backend *in = ctx_of(be)->inner;
    in->buffer_free(in, buf);
}
static pn_status w_tensor_set(pn_backend *be, const pn_tensor *t, const float *src) {
    pn_backend *in = ctx_of(be)->inner;
    return in->tensor_set(in, t, src);
}
static pn_status w_tensor_get(pn_backend *be, const pn_tensor *t, float *dst) {
    pn_backend *in = ctx_of(be)->inner;
    return in->tensor_get(in, t, dst);
}
static size_t w_storage_bytes(pn_backend *be, const pn_tensor *t) {
    return pn_backend_storage_bytes(ctx_of(be)->inner, t);
}
static const char *w_supports_op(pn_backend *be, const pn_node *node) {
    return pn_node_unsupported(ctx_of(be)->inner, node);
}
static pn_status w_synchronize(pn_backend *be) { return pn_backend_synchronize(ctx_of(be)->inner); }
static pn_status w_set_threads(pn_backend *be, int threads) {
    pn_backend *in = ctx_of(be)->inner;
    return in->set_threads(in, threads);
}
static pn_status w_set_precision(pn_backend *be, const char *precision) {
    pn_backend *in = ctx_of(be)->inner;
    return in->set_precision(in, precision);
}
static pn_status w_set_deterministic(pn_backend *be, bool deterministic) {
    pn_backend *in = ctx_of(be)->inner;
    return in->set_deterministic(in, deterministic);
}
static bool w_channel_view(pn_backend *be, const pn_tensor *parent, int64_t c0, const pn_tensor *view, size_t *offset) {
    return pn_backend_channel_view(ctx_of(be)->inner, parent, c0, view, offset);
}

static void w_destroy(pn_backend *be) {
    sync_ctx *c = ctx_of(be);
    pn_buffer_free(&c->scratch);
    pn_backend_close(c->inner);
    free(c);
    free(be);
}

pn_status pn_dist_sync_backend(pn_backend *inner, pn_comm *comm, pn_backend **out) {
    *out = NULL;
    pn_backend *be = calloc(1, sizeof *be);
    sync_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return pn_error(PN_ERR_NOMEM, "out of memory");
    }
    c->inner = inner;
    c->comm = comm;
    be->name = inner->name;
    be->api_version = inner->api_version;
    be->host_memory = inner->host_memory;
    be->ctx = c;
    be->buffer_alloc = w_buffer_alloc;
    be->buffer_free = w_buffer_free;
    be->tensor_set = w_tensor_set;
    be->tensor_get = w_tensor_get;
    be->storage_bytes = w_storage_bytes;
    be->supports_op = w_supports_op;
    be->prepare = w_prepare;
    be->compute = w_compute;
    be->release = w_release;
    be->synchronize = w_synchronize;
    be->set_threads = inner->set_threads ? w_set_threads : NULL;
    be->destroy = w_destroy;
    be->set_precision = inner->set_precision ? w_set_precision : NULL;
    be->set_deterministic = inner->set_deterministic ? w_set_deterministic : NULL;
    be->channel_view = inner->channel_view ? w_channel_view : NULL;
    *out = be;
    return PN_OK;
}
