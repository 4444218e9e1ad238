/* graph: a straight-line program of nodes over tensors, reverse-mode differentiation of it, and one
 * planned activation arena (tensors whose lifetimes do not overlap share memory). */
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A tensor plus what the graph knows about it. `t` comes first so a pn_tensor* converts back. */
typedef struct gtensor {
    pn_tensor t;
    char name[96];
    bool in_arena, keep, requires_grad;
    bool recompute;         /* backward recomputes it from its producers instead of keeping it (pn_graph_recompute) */
    pn_tensor *remat;       /* during pn_graph_backward: the recomputed copy, once made ... */
    int remat_step;         /* ... while differentiating forward node remat_step */
    int grad_refs;          /* during pn_graph_backward: how many tensors' dgrad this gradient tensor is */
    struct gtensor *parent; /* a channel view (pn_graph_channel_view): stored inside parent, view_offset on */
    size_t view_offset;
    int first, last;  /* node indices of first and last use (arena tensors) */
    size_t bytes;     /* storage bytes (arena tensors) */
    pn_tensor *grad;  /* external tensors: where gradients accumulate */
    pn_tensor *dgrad; /* during pn_graph_backward: the current gradient of this tensor */
} gtensor;

struct pn_graph {
    pn_backend *be;
    gtensor **tensors;
    int n_tensors, cap_tensors;
    pn_node *nodes;
    int n_nodes, cap_nodes;
    int n_prepared;
    int fwd_end;   /* during pn_graph_backward: the forward program is nodes [0, fwd_end) */
    int bwd_step;  /* during pn_graph_backward: the forward node being differentiated */
    char **labels; /* the graph's copies of the node labels (callers build them in buffers of their own) */
    int n_labels, cap_labels;
    pn_buffer arena;
    size_t arena_bytes, unshared_bytes, peak_live_bytes;
    /* PN_ERR_NOMEM once a tensor record could not be allocated; from then on every call that returns a status
     * returns it, and the calls that return a tensor hand out `placeholder` (never NULL, never run) */
    pn_status status;
    gtensor placeholder;
};

static gtensor *gt(pn_tensor *t) { return (gtensor *)t; }

pn_graph *pn_graph_new(pn_backend *be) {
    pn_graph *g = calloc(1, sizeof *g);
    if (!g) {
        pn_error(PN_ERR_NOMEM, "out of memory creating a graph");
        return NULL;
    }
    g->be = be;
    return g;
}

void pn_graph_free(pn_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_prepared; i++) pn_node_release(g->be, &g->nodes[i]);
    pn_buffer_free(&g->arena);
    for (int i = 0; i < g->n_tensors; i++) free(g->tensors[i]);
    free(g->tensors);
    free(g->nodes);
    for (int i = 0; i < g->n_labels; i++) free(g->labels[i]);
    free(g->labels);
    free(g);
}

/* The graph's error after memory ran out, its message set again (a later call may have replaced it). */
static pn_status failed(const pn_graph *g) { return pn_error(g->status, "out of memory building the graph"); }

/* Remembers that memory ran out and hands out the placeholder, so a builder can go on to its next call that
 * returns a status, which reports the failure. */
static gtensor *out_of_memory(pn_graph *g, pn_tensor view) {
    g->status = PN_ERR_NOMEM;
    failed(g);
    memset(&g->placeholder, 0, sizeof g->placeholder);
    g->placeholder.t = view;
    g->placeholder.t.name = "(out of memory)";
    g->placeholder.first = g->placeholder.last = -1;
    return &g->placeholder;
}

static gtensor *new_tensor(pn_graph *g, pn_tensor view, const char *name) {
    if (g->status != PN_OK) return out_of_memory(g, view);
    if (g->n_tensors == g->cap_tensors) {
        int cap = g->cap_tensors ? 2 * g->cap_tensors : 256;
        gtensor **grown = realloc(g->tensors, (size_t)cap * sizeof *grown);
        if (!grown) return out_of_memory(g, view);
        g->tensors = grown;
        g->cap_tensors = cap;
    }
    gtensor *t = calloc(1, sizeof *t);
    if (!t) return out_of_memory(g, view);
    t->t = view;
    snprintf(t->name, sizeof t->name, "%s", name ? name : "");
    t->t.name = t->name;
    t->first = -1;
    t->last = -1;
    t->requires_grad = true;
    g->tensors[g->n_tensors++] = t;
    return t;
}

pn_tensor *pn_graph_activation(pn_graph *g, pn_tensor shape, const char *name) {
    gtensor *t = new_tensor(g, shape, name);
    t->in_arena = true;
    t->t.buf = NULL;
    t->t.offset = 0;
    return &t->t;
}

pn_tensor *pn_graph_channel_view(pn_graph *g, pn_tensor *parent, int64_t c0, int64_t channels, const char *name) {
    if (g->status != PN_OK) return NULL;
    gtensor *p = gt(parent);
    PN_ASSERT(p->in_arena && !p->parent);
    pn_tensor shape = pn_tensor_nchw(parent->shape[0], channels, parent->shape[2], parent->shape[3]);
    shape.dtype = parent->dtype;
    size_t offset;
    if (!pn_backend_channel_view(g->be, parent, c0, &shape, &offset)) return NULL;
    gtensor *t = gt(pn_graph_activation(g, shape, name));
    t->parent = p;
    t->view_offset = offset;
    return &t->t;
}

pn_tensor *pn_graph_external(pn_graph *g, pn_tensor view, pn_tensor *grad) {
    gtensor *t = new_tensor(g, view, view.name);
    t->requires_grad = grad != NULL;
    if (grad) { /* every tensor a node holds is the graph's own, the gradient view too */
        gtensor *d = new_tensor(g, *grad, grad->name);
        d->requires_grad = false;
        t->grad = &d->t;
    }
    return &t->t;
}

void pn_graph_keep(pn_graph *g, pn_tensor *t) {
    if (g->status != PN_OK) return;
    gt(t)->keep = true;
}

void pn_graph_no_grad(pn_graph *g, pn_tensor *t) {
    if (g->status != PN_OK) return;
    gt(t)->requires_grad = false;
}

void pn_graph_recompute(pn_graph *g, pn_tensor *t) {
    if (g->status != PN_OK) return;
    PN_ASSERT(gt(t)->in_arena && !gt(t)->keep);
    gt(t)->recompute = true;
}

int pn_graph_size(const pn_graph *g) { return g->n_nodes; }

pn_node *pn_graph_node(pn_graph *g, int i) { return &g->nodes[i]; }

/* A copy of `label` the graph owns; NULL when memory runs out. */
static const char *own_label(pn_graph *g, const char *label) {
    if (g->n_labels == g->cap_labels) {
        int cap = g->cap_labels ? 2 * g->cap_labels : 256;
        char **grown = realloc(g->labels, (size_t)cap * sizeof *grown);
        if (!grown) return NULL;
        g->labels = grown;
        g->cap_labels = cap;
    }
    size_t n = strlen(label) + 1;
    char *copy = malloc(n);
    if (!copy) return NULL;
    memcpy(copy, label, n);
    g->labels[g->n_labels++] = copy;
    return copy;
}

pn_status pn_graph_add(pn_graph *g, pn_op op, pn_op_params p, pn_tensor *const *outs, pn_tensor *const *ins,
                       const char *label) {
    if (g->status != PN_OK) return failed(g);
    const char *owned = label ? own_label(g, label) : NULL;
    if (label && !owned) {
        g->status = PN_ERR_NOMEM;
        return failed(g);
    }
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 256;
        pn_node *grown = realloc(g->nodes, (size_t)cap * sizeof *grown);
        if (!grown) {
            g->status = PN_ERR_NOMEM;
            return failed(g);
        }
        g->nodes = grown;
        g->cap_nodes = cap;
    }
    pn_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->p = p;
    n->label = owned;
    bool any_grad = false;
    for (int i = 0; i < pn_op_num_inputs(op); i++) {
        n->in[i] = ins[i];
        if (ins[i] && gt(ins[i])->requires_grad) any_grad = true;
    }
    for (int i = 0; i < pn_op_num_outputs(op); i++) {
        n->out[i] = outs[i];
        if (outs[i] && gt(outs[i])->in_arena) gt(outs[i])->requires_grad = any_grad;
    }
    g->n_nodes++;
    return PN_OK;
}

/* ---------------- reverse-mode differentiation ---------------- */

static pn_tensor *like(pn_graph *g, pn_tensor *t, const char *prefix) {
    char name[112];
    snprintf(name, sizeof name, "%s%s", prefix, t->name ? t->name : "");
    pn_tensor shape = *t;
    shape.name = NULL;
    pn_tensor *d = pn_graph_activation(g, shape, name);
    gt(d)->requires_grad = false;
    return d;
}

/* Whether gradient tensor d is the gradient of one tensor only, so the node consuming it may overwrite it. */
static bool owned(pn_tensor *d) { return gt(d)->grad_refs == 1 && !gt(d)->keep; }

/* Adds `contribution` to the gradient of `t`: into the current gradient tensor when no other tensor shares it,
 * else into a new tensor. */
static pn_status accumulate(pn_graph *g, pn_tensor *t, pn_tensor *contribution) {
    gtensor *x = gt(t);
    if (!x->requires_grad) return PN_OK;
    if (!x->dgrad) {
        x->dgrad = contribution;
        gt(contribution)->grad_refs++;
        return PN_OK;
    }
    pn_tensor *sum = x->dgrad;
    if (!owned(sum) || sum == contribution) {
        gt(x->dgrad)->grad_refs--;
        sum = like(g, t, "d+");
        gt(sum)->grad_refs = 1;
    }
    pn_op_params p = {0};
    pn_tensor *outs[] = {sum}, *ins[] = {x->dgrad, contribution};
    PN_TRY(pn_graph_add(g, PN_OP_ADD, p, outs, ins, "grad accumulate"));
    x->dgrad = sum;
    return PN_OK;
}

/* Backward nodes share a recomputed copy while they differentiate forward nodes at most this far apart (a
 * conv's input and the ReLU before it); a later reader (the skip of a U-Net, read again by the encoder's
 * backward) recomputes it rather than keep it alive in between. */
#define REMAT_REUSE_SPAN 4

/* A forward tensor as a backward node reads it: the tensor itself, or for one marked with pn_graph_recompute a
 * copy recomputed by re-running the forward nodes that wrote it (a train BN as BATCHNORM_APPLY with the
 * statistics it saved), shared with nearby readers. */
static pn_status saved(pn_graph *g, pn_tensor *t, pn_tensor **out) {
    *out = t;
    if (!t || !gt(t)->recompute) return PN_OK;
    if (gt(t)->remat && gt(t)->remat_step - g->bwd_step <= REMAT_REUSE_SPAN) {
        *out = gt(t)->remat;
        return PN_OK;
    }
    pn_tensor *r = like(g, t, "r");
    for (int i = 0; i < g->fwd_end; i++) {
        pn_node f = g->nodes[i]; /* copy: adding nodes may move the array */
        if (f.out[0] != t) continue;
        pn_op op = f.op;
        pn_tensor *ins[PN_OP_MAX_IO] = {0}, *outs[PN_OP_MAX_IO] = {r};
        for (int k = 0; k < pn_op_num_inputs(op); k++) {
            if (f.in[k] == t)
                ins[k] = r;
            else
                PN_TRY(saved(g, f.in[k], &ins[k]));
        }
        if (op == PN_OP_BATCHNORM_TRAIN_FWD) {
            op = PN_OP_BATCHNORM_APPLY;
            ins[3] = f.out[1], ins[4] = f.out[2];
        }
        PN_TRY(pn_graph_add(g, op, f.p, outs, ins, f.label));
    }
    gt(t)->remat = r;
    gt(t)->remat_step = g->bwd_step;
    *out = r;
    return PN_OK;
}

static pn_tensor *param_grad(pn_tensor *t) { return t ? gt(t)->grad : NULL; }

/* ---- backward builders: one per differentiable op, named in its ops.def row (backward column) ----
 * Each appends the nodes that turn dy, the gradient of forward node f's first output, into the gradients of f's
 * inputs (accumulate). `own`: no other tensor shares dy, so a node may overwrite it in place. */

typedef pn_status (*backward_builder)(pn_graph *g, const pn_node *f, pn_tensor *dy, bool own);

/* Weights first: a recomputed x is then gone before dx exists. */
static pn_status bwd_conv2d(pn_graph *g, const pn_node *f, pn_tensor *dy, bool own) {
    (void)own;
    pn_tensor *x = f->in[0];
    pn_tensor *gw = param_grad(f->in[1]), *gb = param_grad(f->in[2]);
    if (gw) {
        pn_tensor *xs;
        PN_TRY(saved(g, x, &xs));
        pn_tensor *outs[] = {gw, gb}, *ins[] = {dy, xs};
        PN_TRY(pn_graph_add(g, PN_OP_CONV2D_BWD_WEIGHTS, f->p, outs, ins, f->label));
    }
    if (gt(x)->requires_grad) {
        pn_tensor *dx = like(g, x, "d");
        pn_tensor *outs[] = {dx}, *ins[] = {dy, f->in[1]};
        PN_TRY(pn_graph_add(g, PN_OP_CONV2D_BWD_DATA, f->p, outs, ins, f->label));
        PN_TRY(accumulate(g, x, dx));
    }
    return PN_OK;
}

static pn_status bwd_batchnorm_train(pn_graph *g, const pn_node *f, pn_tensor *dy, bool own) {
    (void)own;
    pn_tensor *x = f->in[0];
    pn_tensor *dx = like(g, x, "d"), *xs;
    PN_TRY(saved(g, x, &xs));
    pn_tensor *outs[] = {dx, param_grad(f->in[1]), param_grad(f->in[2])};
    pn_tensor *ins[] = {dy, xs, f->in[1], f->out[1], f->out[2]};
    if (!outs[1] || !outs[2]) return pn_error(PN_ERR_ARG, "batchnorm %s: gamma/beta have no gradient", f->label);
    PN_TRY(pn_graph_add(g, PN_OP_BATCHNORM_BWD, f->p, outs, ins, f->label));
    return accumulate(g, x, dx);
}

/* dx = bwd(dy, y) with y the forward output; dx may be dy: written in place when no other tensor shares dy. */
static pn_status from_output(pn_graph *g, const pn_node *f, pn_tensor *dy, bool own, pn_op bwd) {
    pn_tensor *x = f->in[0];
    pn_tensor *dx = own ? dy : like(g, x, "d"), *ys;
    PN_TRY(saved(g, f->out[0], &ys));
    pn_tensor *outs[] = {dx}, *ins[] = {dy, ys};
    PN_TRY(pn_graph_add(g, bwd, f->p, outs, ins, f->label));
    return accumulate(g, x, dx);
}

static pn_status bwd_relu(pn_graph *g, const pn_node *f, pn_tensor *dy, bool own) {
    return from_output(g, f, dy, own, PN_OP_RELU_BWD);
}

static pn_status bwd_sigmoid(pn_graph *g, const pn_node *f, pn_tensor *dy, bool own) {
    return from_output(g, f, dy, own, PN_OP_SIGMOID_BWD);
}

/* dx = bwd(dy[, x]) into a new tensor: the resampling ops (reads_x: the backward op also reads the input). */
static pn_status resampled(pn_graph *g, const pn_node *f, pn_tensor *dy, pn_op bwd, bool reads_x) {
    pn_tensor *x = f->in[0];
    pn_tensor *dx = like(g, x, "d"), *xs = NULL;
    if (reads_x) PN_TRY(saved(g, x, &xs));
    pn_tensor *outs[] = {dx}, *ins[] = {dy, xs};
    PN_TRY(pn_graph_add(g, bwd, f->p, outs, ins, f->label));
    return accumulate(g, x, dx);
}

static pn_status bwd_maxpool(pn_graph *g, const pn_node *f, pn_tensor *dy, bool own) {
    (void)own;
    return resampled(g, f, dy, PN_OP_MAXPOOL_BWD, true);
}

static pn_status bwd_upsample2x(pn_graph *g, const pn_node *f, pn_tensor *dy, bool own) {
    (void)own;
    return resampled(g, f, dy, PN_OP_UPSAMPLE2X_BWD, false);
}

static pn_status bwd_bilinear2x(pn_graph *g, const pn_node *f, pn_tensor *dy, bool own) {
    (void)own;
    return resampled(g, f, dy, PN_OP_BILINEAR2X_BWD, false);
}

static pn_status bwd_global_avg_pool(pn_graph *g, const pn_node *f, pn_tensor *dy, bool own) {
    (void)own;
    return resampled(g, f, dy, PN_OP_GLOBAL_AVG_POOL_BWD, false);
}

/* y = x * s (CHANNEL_MUL, PIXEL_MUL): ds = reduce(dy * x) first (it reads dy), then dx = dy * s, in dy if owned. */
static pn_status gate(pn_graph *g, const pn_node *f, pn_tensor *dy, bool own, pn_op bwd_scale) {
    pn_tensor *x = f->in[0], *s = f->in[1];
    if (f->out[0] == x)
        return pn_error(PN_ERR_ARG, "%s: an in-place gate has no backward (x is overwritten)", f->label);
    if (gt(s)->requires_grad) {
        pn_tensor *ds = like(g, s, "d"), *xs;
        PN_TRY(saved(g, x, &xs));
        pn_tensor *outs[] = {ds}, *ins[] = {dy, xs};
        PN_TRY(pn_graph_add(g, bwd_scale, f->p, outs, ins, f->label));
        PN_TRY(accumulate(g, s, ds));
    }
    if (!gt(x)->requires_grad) return PN_OK;
    pn_tensor *dx = own ? dy : like(g, x, "d"), *ss;
    PN_TRY(saved(g, s, &ss));
    pn_tensor *outs[] = {dx}, *ins[] = {dy, ss};
    PN_TRY(pn_graph_add(g, f->op, f->p, outs, ins, f->label));
    return accumulate(g, x, dx);
}

static pn_status bwd_channel_mul(pn_graph *g, const pn_node *f, pn_tensor *dy, bool own) {
    return gate(g, f, dy, own, PN_OP_CHANNEL_MUL_BWD_SCALE);
}

static pn_status bwd_pixel_mul(pn_graph *g, const pn_node *f, pn_tensor *dy, bool own) {
    return gate(g, f, dy, own, PN_OP_PIXEL_MUL_BWD_SCALE);
}

/* y = a + b: both inputs get dy. */
static pn_status bwd_add(pn_graph *g, const pn_node *f, pn_tensor *dy, bool own) {
    (void)own;
    PN_TRY(accumulate(g, f->in[0], dy));
    return accumulate(g, f->in[1], dy);
}

/* The inverse of CONCAT splits dy. */
static pn_status bwd_concat(pn_graph *g, const pn_node *f, pn_tensor *dy, bool own) {
    (void)own;
    pn_tensor *a = f->in[0], *b = f->in[1];
    pn_tensor *da = like(g, a, "d"), *db = gt(b)->requires_grad ? like(g, b, "d") : NULL;
    pn_tensor *outs[] = {da, db}, *ins[] = {dy};
    PN_TRY(pn_graph_add(g, PN_OP_SPLIT, f->p, outs, ins, f->label));
    PN_TRY(accumulate(g, a, da));
    return db ? accumulate(g, b, db) : PN_OK;
}

/* Each op's backward builder, named in its ops.def row (`none`: not differentiated). */
#define bwd_none NULL
static const backward_builder backward_rules[PN_OP_COUNT] = {
#define OP(E, name, P, nin, nout, opt_in, opt_out, shape, backward, ...) [PN_OP_##E] = bwd_##backward,
#include "ops.def"
#undef OP
};
#undef bwd_none

static pn_status backward_node(pn_graph *g, const pn_node *f) {
    pn_tensor *dy = gt(f->out[0])->dgrad;
    if (!dy) return PN_OK;
    /* dy is consumed here: an in-place node (out[0] == an input) then gets the gradient of its input */
    gt(f->out[0])->dgrad = NULL;
    bool own = owned(dy);
    gt(dy)->grad_refs--;
    backward_builder rule = backward_rules[f->op];
    if (!rule) return pn_error(PN_ERR_ARG, "no backward rule for %s", pn_op_name(f->op));
    return rule(g, f, dy, own);
}

pn_status pn_graph_backward(pn_graph *g, int fwd_end, pn_tensor *y, pn_tensor *dy) {
    if (g->status != PN_OK) return failed(g);
    for (int i = 0; i < g->n_tensors; i++) {
        g->tensors[i]->dgrad = NULL;
        g->tensors[i]->remat = NULL;
        g->tensors[i]->grad_refs = 0;
    }
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i]->parent)
            return pn_error(PN_ERR_ARG, "graph: %s is a channel view, and views are for programs without backward",
                            g->tensors[i]->name);
    g->fwd_end = fwd_end;
    gt(y)->dgrad = dy;
    gt(dy)->grad_refs = 1;
    for (int i = fwd_end - 1; i >= 0; i--) {
        pn_node f = g->nodes[i]; /* copy: adding nodes may move the array */
        g->bwd_step = i;
        PN_TRY(backward_node(g, &f));
    }
    return PN_OK;
}

/* ---------------- arena planning ---------------- */

static void compute_lifetimes(pn_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        pn_node *n = &g->nodes[i];
        for (int s = 0; s < 2 * PN_OP_MAX_IO; s++) {
            pn_tensor *t = s < PN_OP_MAX_IO ? n->out[s] : n->in[s - PN_OP_MAX_IO];
            if (!t || !gt(t)->in_arena) continue;
            if (gt(t)->first < 0) gt(t)->first = i;
            gt(t)->last = i;
        }
    }
    for (int i = 0; i < g->n_tensors; i++) {
        gtensor *t = g->tensors[i];
        if (t->in_arena && t->keep) {
            t->first = 0;
            t->last = g->n_nodes;
        }
    }
    for (int i = 0; i < g->n_tensors; i++) { /* a parent lives while any of its views is used */
        gtensor *t = g->tensors[i], *p = t->parent;
        if (!p || t->first < 0) continue;
        if (p->first < 0 || t->first < p->first) p->first = t->first;
        if (t->last > p->last) p->last = t->last;
    }
}

/* pn_node.in_last_use: an arena tensor (no channel view) that no later node uses and the graph does not keep. */
static void mark_last_uses(pn_graph *g) {
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < PN_OP_MAX_IO; k++) {
            gtensor *t = g->nodes[i].in[k] ? gt(g->nodes[i].in[k]) : NULL;
            g->nodes[i].in_last_use[k] = t && t->in_arena && !t->keep && !t->parent && t->last == i;
        }
}

static int by_size_desc(const void *a, const void *b) {
    const gtensor *x = *(gtensor *const *)a, *y = *(gtensor *const *)b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return x->first - y->first;
}

static int by_lifetime_desc(const void *a, const void *b) {
    const gtensor *x = *(gtensor *const *)a, *y = *(gtensor *const *)b;
    int lx = x->last - x->first, ly = y->last - y->first;
    if (lx != ly) return ly - lx;
    return by_size_desc(a, b);
}

static bool lifetimes_overlap(const gtensor *a, const gtensor *b) { return a->first <= b->last && b->first <= a->last; }

/* Greedy, in list order: each at the lowest offset that clashes with no placed tensor alive at once. */
static size_t place_tensors(gtensor **list, int n) {
    size_t arena = 0;
    for (int i = 0; i < n; i++) {
        gtensor *t = list[i];
        size_t offset = 0;
        bool moved = true;
        while (moved) {
            moved = false;
            for (int j = 0; j < i; j++) {
                gtensor *o = list[j];
                if (!lifetimes_overlap(t, o)) continue;
                if (offset < o->t.offset + o->bytes && o->t.offset < offset + t->bytes) {
                    offset = o->t.offset + o->bytes;
                    moved = true;
                }
            }
        }
        t->t.offset = offset;
        if (offset + t->bytes > arena) arena = offset + t->bytes;
    }
    return arena;
}

static size_t live_bytes_at(gtensor **list, int n, int node) {
    size_t live = 0;
    for (int j = 0; j < n; j++)
        if (list[j]->first <= node && node <= list[j]->last) live += list[j]->bytes;
    return live;
}

/* PN_GRAPH_PEAK=1: which tensors over 100 kB are alive at the node where the most bytes are (the info log). */
static void print_peak(const pn_graph *g, gtensor **list, int n, size_t peak) {
    for (int i = 0; i <= g->n_nodes; i++) {
        if (live_bytes_at(list, n, i) != peak) continue;
        const pn_node *nd = i < g->n_nodes ? &g->nodes[i] : NULL;
        pn_log_info("graph: %.1f MB alive at node %d of %d (%s %s)", (double)peak / 1e6, i, g->n_nodes,
                    nd ? pn_op_name(nd->op) : "end", nd && nd->label ? nd->label : "");
        for (int j = 0; j < n; j++) {
            const gtensor *t = list[j];
            if (t->first > i || i > t->last || t->bytes < 100000) continue;
            pn_log_info("  %8.2f MB  %-40s nodes %d..%d", (double)t->bytes / 1e6, t->name, t->first, t->last);
        }
        return;
    }
}

/* The largest sum of the sizes of the tensors alive at one node: no placement can beat it. */
static size_t peak_live(const pn_graph *g, gtensor **list, int n) {
    size_t peak = 0;
    for (int i = 0; i <= g->n_nodes; i++) {
        size_t live = live_bytes_at(list, n, i);
        if (live > peak) peak = live;
    }
    const char *dump = getenv("PN_GRAPH_PEAK");
    if (dump && strcmp(dump, "1") == 0) print_peak(g, list, n, peak);
    return peak;
}

static int by_offset(const void *a, const void *b) {
    const gtensor *x = *(gtensor *const *)a, *y = *(gtensor *const *)b;
    return x->t.offset < y->t.offset ? -1 : x->t.offset > y->t.offset;
}

/* Gives every node the largest stretch of the arena that no tensor alive at it occupies (its spare region); returns
 * the average spare bytes per node. `alive` has room for n tensors. */
static size_t find_spare_regions(pn_graph *g, gtensor **list, int n, gtensor **alive) {
    size_t total = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        int k = 0;
        for (int j = 0; j < n; j++)
            if (list[j]->first <= i && i <= list[j]->last) alive[k++] = list[j];
        qsort(alive, (size_t)k, sizeof *alive, by_offset);
        size_t at = 0, best = 0, best_at = 0;
        for (int j = 0; j <= k; j++) {
            size_t end = j < k ? alive[j]->t.offset : g->arena_bytes;
            if (end > at && end - at > best) best = end - at, best_at = at;
            if (j < k && alive[j]->t.offset + alive[j]->bytes > at) at = alive[j]->t.offset + alive[j]->bytes;
        }
        pn_node *nd = &g->nodes[i];
        nd->spare_buf = best ? &g->arena : NULL;
        nd->spare_offset = best_at;
        nd->spare_bytes = best;
        total += best;
    }
    return g->n_nodes ? total / (size_t)g->n_nodes : 0;
}

pn_status pn_graph_plan(pn_graph *g) {
    if (g->status != PN_OK) return failed(g);
    compute_lifetimes(g);
    mark_last_uses(g);
    gtensor **list = malloc((size_t)(2 * g->n_tensors + 1) * sizeof *list); /* the tensors, then room for those
                                                                               alive at one node */
    if (!list) return pn_error(PN_ERR_NOMEM, "out of memory planning the arena");
    int n = 0;
    g->unshared_bytes = 0;
    for (int i = 0; i < g->n_tensors; i++) {
        gtensor *t = g->tensors[i];
        if (!t->in_arena || t->first < 0 || t->parent) continue;
        t->bytes = (pn_backend_storage_bytes(g->be, &t->t) + 63) & ~(size_t)63;
        g->unshared_bytes += t->bytes;
        list[n++] = t;
    }
    g->peak_live_bytes = peak_live(g, list, n);
    /* the greedy placement biggest first and longest-lived first (training at 256: 231.8 MB and 223.4 MB; inference at
     * 512: 58.7 MB and 62.9 MB); the smaller arena wins unless the other is at most 1/8 larger and leaves more spare
     * bytes at the average node, which the backend then needs for scratch of its own no more (inference: 16.8 MB
     * and 31 MB, room for Winograd's transformed tiles on the encoder's layers) */
    int (*const orders[])(const void *, const void *) = {by_size_desc, by_lifetime_desc};
    size_t arena[2], spare[2];
    for (int k = 0; k < 2; k++) {
        qsort(list, (size_t)n, sizeof *list, orders[k]);
        arena[k] = place_tensors(list, n);
        g->arena_bytes = arena[k];
        spare[k] = find_spare_regions(g, list, n, list + n);
    }
    int small = arena[1] < arena[0], other = !small;
    int best = arena[other] - arena[small] <= arena[small] / 8 && spare[other] > spare[small] ? other : small;
    qsort(list, (size_t)n, sizeof *list, orders[best]);
    g->arena_bytes = place_tensors(list, n);
    find_spare_regions(g, list, n, list + n);
    free(list);
    PN_TRY(pn_buffer_alloc(g->be, &g->arena, g->arena_bytes ? g->arena_bytes : 64));
    for (int i = 0; i < g->n_tensors; i++) {
        gtensor *t = g->tensors[i];
        if (!t->in_arena) continue;
        t->t.buf = &g->arena;
        if (t->parent) t->t.offset = t->parent->t.offset + t->view_offset;
    }
    /* every node the backend cannot run (an op it leaves out, a case it does not handle) refuses the plan before
     * any node is prepared */
    for (int i = 0; i < g->n_nodes; i++) PN_TRY(pn_node_supported(g->be, &g->nodes[i]));
    for (int i = 0; i < g->n_nodes; i++) {
        pn_status st = pn_node_prepare(g->be, &g->nodes[i]);
        if (st != PN_OK) return st;
        g->n_prepared = i + 1;
    }
    return PN_OK;
}

size_t pn_graph_arena_bytes(const pn_graph *g) { return g->arena_bytes; }
size_t pn_graph_unshared_bytes(const pn_graph *g) { return g->unshared_bytes; }
size_t pn_graph_peak_live_bytes(const pn_graph *g) { return g->peak_live_bytes; }

pn_status pn_graph_run(pn_graph *g, int from, int to) {
    PN_ASSERT(from >= 0 && to <= g->n_prepared && from <= to);
    for (int i = from; i < to; i++) {
        pn_status st = pn_node_compute(g->be, &g->nodes[i]);
        if (st != PN_OK) return st;
    }
    return PN_OK;
}
