/* builder: one walk over an architecture that declares its parameters or builds its graph (see builder.h). */
#include "builder.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pn_builder {
    pn_model_desc *desc;        /* declaring: parameters are appended here */
    const pn_model_desc *model; /* building: parameters are taken from here, in the same order */
    pn_graph *g;                /* building only */
    const pn_builder_views *views;
    bool train;
    int next_param, next_bn;
    pn_status st;
    pn_tensor **shapes; /* declaring: the shape-only tensors of the walk */
    int n_shapes, cap_shapes;
    pn_tensor dummy; /* handed out after an allocation failed, so the walk can finish and report it */
    double macs;
    pn_conv_shape *convs; /* when listing convolutions */
    int n_convs, max_convs;
};

void pn_b_name(char *dst, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, PN_NAME_LEN, fmt, ap);
    va_end(ap);
    PN_ASSERT(n >= 0 && n < PN_NAME_LEN);
}

bool pn_b_training(const pn_builder *b) { return b->train; }

static void fail(pn_builder *b, pn_status st) {
    if (b->st == PN_OK) b->st = st;
}

static pn_tensor *failed_tensor(pn_builder *b, pn_tensor shape) {
    fail(b, pn_error(PN_ERR_NOMEM, "out of memory building the model"));
    b->dummy = shape;
    return &b->dummy;
}

/* A new activation of shape (n, c, h, w): a graph tensor when building, a shape-only one when declaring. */
static pn_tensor *act(pn_builder *b, int64_t n, int64_t c, int64_t h, int64_t w, const char *name) {
    pn_tensor shape = pn_tensor_nchw(n, c, h, w);
    if (b->g) {
        pn_tensor *t = pn_graph_activation(b->g, shape, name);
        return t ? t : failed_tensor(b, shape);
    }
    if (b->n_shapes == b->cap_shapes) {
        int cap = b->cap_shapes ? 2 * b->cap_shapes : 256;
        pn_tensor **grown = realloc(b->shapes, (size_t)cap * sizeof *grown);
        if (!grown) return failed_tensor(b, shape);
        b->shapes = grown;
        b->cap_shapes = cap;
    }
    pn_tensor *t = malloc(sizeof *t);
    if (!t) return failed_tensor(b, shape);
    *t = shape;
    b->shapes[b->n_shapes++] = t;
    return t;
}

static void add_node(pn_builder *b, pn_op op, pn_op_params p, pn_tensor *const *outs, pn_tensor *const *ins,
                     const char *label) {
    if (b->g && b->st == PN_OK) fail(b, pn_graph_add(b->g, op, p, outs, ins, label));
}

/* ---------------- parameters ---------------- */

static bool grow(void **items, int *cap, int need, size_t size) {
    if (need <= *cap) return true;
    int cap2 = *cap ? 2 * *cap : 256;
    void *grown = realloc(*items, (size_t)cap2 * size);
    if (!grown) return false;
    *items = grown;
    *cap = cap2;
    return true;
}

/* Declares a parameter (declaring) or takes the next one, which must be the same (building); its index. */
static int param(pn_builder *b, const char *name, int ndim, const int64_t *shape, pn_init_rule rule) {
    if (b->model) {
        int i = b->next_param++;
        PN_ASSERT(i < b->model->n_params && strcmp(b->model->params[i].name, name) == 0);
        return i;
    }
    pn_model_desc *d = b->desc;
    if (!grow((void **)&d->params, &d->cap_params, d->n_params + 1, sizeof *d->params)) {
        fail(b, pn_error(PN_ERR_NOMEM, "out of memory describing the model"));
        return -1;
    }
    pn_param_decl *p = &d->params[d->n_params];
    memset(p, 0, sizeof *p);
    pn_b_name(p->name, "%s", name);
    p->ndim = ndim;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (p->shape[i] = shape[i]);
    p->rule = rule;
    p->offset = d->n_scalars;
    d->n_scalars += (numel + 15) / 16 * 16; /* 64-byte aligned views */
    return d->n_params++;
}

static pn_tensor *param_view(pn_builder *b, int i) { return b->model && i >= 0 ? b->views->param[i] : NULL; }

/* ---------------- counting ---------------- */

static void count_conv(pn_builder *b, const char *name, const pn_tensor *x, const pn_tensor *y, int k, int stride,
                       int pad, int groups, bool bias) {
    int64_t cin = x->shape[1], cout = y->shape[1];
    b->macs +=
        (double)y->shape[0] * (double)cout * (double)(y->shape[2] * y->shape[3]) * (double)(cin / groups) * k * k;
    if (!b->convs) return;
    for (int i = 0; i < b->n_convs; i++) {
        pn_conv_shape *c = &b->convs[i];
        if (c->cin == cin && c->cout == cout && c->k == k && c->stride == stride && c->pad == pad &&
            c->groups == groups && c->h == x->shape[2] && c->w == x->shape[3] && c->bias == bias) {
            c->count++;
            return;
        }
    }
    if (b->n_convs == b->max_convs) {
        fail(b, pn_error(PN_ERR_ARG, "the model has more than %d distinct convolutions", b->max_convs));
        return;
    }
    pn_conv_shape *c = &b->convs[b->n_convs++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->cin = (int)cin, c->cout = (int)cout, c->k = k, c->stride = stride, c->pad = pad, c->groups = groups;
    c->h = (int)x->shape[2], c->w = (int)x->shape[3], c->count = 1, c->bias = bias;
}

/* ---------------- layers ---------------- */

pn_tensor *pn_b_conv(pn_builder *b, pn_tensor *x, const char *name, int cout, int k, int stride, int pad, int groups,
                     bool bias, pn_init_rule rule) {
    char key[PN_NAME_LEN + 8];
    int64_t shape[4] = {cout, x->shape[1] / groups, k, k};
    snprintf(key, sizeof key, "%s.weight", name);
    int wi = param(b, key, 4, shape, rule);
    int bi = -1;
    if (bias) {
        snprintf(key, sizeof key, "%s.bias", name);
        bi = param(b, key, 1, shape, PN_INIT_ZERO);
    }
    int64_t oh = (x->shape[2] + 2 * pad - k) / stride + 1, ow = (x->shape[3] + 2 * pad - k) / stride + 1;
    pn_tensor *y = act(b, x->shape[0], cout, oh, ow, name);
    count_conv(b, name, x, y, k, stride, pad, groups, bias);
    pn_op_params p = {.conv2d_fwd = {stride, pad, groups}};
    pn_tensor *outs[] = {y}, *ins[] = {x, param_view(b, wi), param_view(b, bi)};
    add_node(b, PN_OP_CONV2D_FWD, p, outs, ins, name);
    return y;
}

void pn_b_unused_scse(pn_builder *b, int channels, const char *prefix) {
    struct {
        const char *name;
        int64_t cout, cin;
    } convs[3] = {{"cSE.1", channels / 16, channels}, {"cSE.3", channels, channels / 16}, {"sSE.0", 1, channels}};
    for (int i = 0; i < 3; i++) {
        char key[2 * PN_NAME_LEN];
        int64_t shape[4] = {convs[i].cout, convs[i].cin, 1, 1};
        snprintf(key, sizeof key, "%s.%s.weight", prefix, convs[i].name);
        param(b, key, 4, shape, PN_INIT_DECODER_CONV);
        snprintf(key, sizeof key, "%s.%s.bias", prefix, convs[i].name);
        param(b, key, 1, shape, PN_INIT_ZERO);
    }
}

static int bn_index(pn_builder *b, const char *prefix, int64_t c) {
    char key[PN_NAME_LEN + 8];
    snprintf(key, sizeof key, "%s.weight", prefix);
    int gamma = param(b, key, 1, &c, PN_INIT_ONE);
    snprintf(key, sizeof key, "%s.bias", prefix);
    int beta = param(b, key, 1, &c, PN_INIT_ZERO);
    if (b->model) {
        int i = b->next_bn++;
        PN_ASSERT(i < b->model->n_bns && b->model->bns[i].gamma == gamma);
        return i;
    }
    pn_model_desc *d = b->desc;
    if (!grow((void **)&d->bns, &d->cap_bns, d->n_bns + 1, sizeof *d->bns)) {
        fail(b, pn_error(PN_ERR_NOMEM, "out of memory describing the model"));
        return -1;
    }
    pn_bn_decl *bn = &d->bns[d->n_bns];
    pn_b_name(bn->prefix, "%s", prefix);
    bn->channels = c;
    bn->offset = d->n_state;
    bn->gamma = gamma, bn->beta = beta;
    d->n_state += (2 * c + 15) / 16 * 16;
    return d->n_bns++;
}

/* A per-channel statistics vector of a train BatchNorm (building only). */
static pn_tensor *stats(pn_builder *b, int64_t channels, const char *name) {
    pn_tensor *t = pn_graph_activation(b->g, pn_tensor_vec(channels), name);
    return t ? t : failed_tensor(b, pn_tensor_vec(channels));
}

pn_tensor *pn_b_batchnorm(pn_builder *b, pn_tensor *x, const char *prefix) {
    int i = bn_index(b, prefix, x->shape[1]);
    if (!b->model) return x;
    const pn_bn_decl *d = &b->model->bns[i];
    pn_tensor *y = b->train ? act(b, x->shape[0], x->shape[1], x->shape[2], x->shape[3], prefix) : x;
    pn_tensor *gamma = b->views->param[d->gamma], *beta = b->views->param[d->beta];
    pn_tensor *rmean = b->views->running[2 * i], *rvar = b->views->running[2 * i + 1];
    pn_op_params p = {.batchnorm_train_fwd = {1e-5f, 0.1f}};
    if (b->train) {
        pn_tensor *save_mean = stats(b, d->channels, "save_mean"), *save_invstd = stats(b, d->channels, "save_invstd");
        pn_tensor *outs[] = {y, save_mean, save_invstd, rmean, rvar}, *ins[] = {x, gamma, beta};
        add_node(b, PN_OP_BATCHNORM_TRAIN_FWD, p, outs, ins, d->prefix);
    } else {
        pn_tensor *outs[] = {y}, *ins[] = {x, gamma, beta, rmean, rvar};
        add_node(b, PN_OP_BATCHNORM_INFER_FWD, p, outs, ins, d->prefix);
    }
    return y;
}

pn_tensor *pn_b_relu(pn_builder *b, pn_tensor *x, const char *label) {
    pn_op_params p = {0};
    pn_tensor *outs[] = {x}, *ins[] = {x};
    add_node(b, PN_OP_RELU_FWD, p, outs, ins, label);
    return x;
}

pn_tensor *pn_b_add(pn_builder *b, pn_tensor *x, pn_tensor *y, const char *label) {
    pn_op_params p = {0};
    pn_tensor *outs[] = {x}, *ins[] = {x, y};
    add_node(b, PN_OP_ADD, p, outs, ins, label);
    return x;
}

pn_tensor *pn_b_recomputed(pn_builder *b, pn_tensor *t) {
    if (b->g && b->train && b->st == PN_OK) pn_graph_recompute(b->g, t);
    return t;
}

pn_tensor *pn_b_conv_bn_relu(pn_builder *b, pn_tensor *x, const char *conv, const char *bn, int cout, int k, int stride,
                             int pad, int groups, pn_init_rule rule) {
    pn_tensor *y = pn_b_batchnorm(b, pn_b_conv(b, x, conv, cout, k, stride, pad, groups, false, rule), bn);
    return pn_b_recomputed(b, pn_b_relu(b, y, bn));
}

static pn_tensor *unary(pn_builder *b, pn_op op, pn_op_params p, pn_tensor *x, int64_t c, int64_t h, int64_t w,
                        const char *label) {
    pn_tensor *y = act(b, x->shape[0], c, h, w, label);
    pn_tensor *outs[] = {y}, *ins[] = {x};
    add_node(b, op, p, outs, ins, label);
    return y;
}

pn_tensor *pn_b_maxpool(pn_builder *b, pn_tensor *x, int k, int stride, int pad, bool ceil_mode, const char *label) {
    pn_op_params p = {.maxpool_fwd = {k, stride, pad, ceil_mode ? 1 : 0}};
    int64_t oh = pn_pool_out_size(x->shape[2], &p.maxpool_fwd), ow = pn_pool_out_size(x->shape[3], &p.maxpool_fwd);
    return unary(b, PN_OP_MAXPOOL_FWD, p, x, x->shape[1], oh, ow, label);
}

pn_tensor *pn_b_global_avg_pool(pn_builder *b, pn_tensor *x, const char *label) {
    pn_op_params p = {0};
    return unary(b, PN_OP_GLOBAL_AVG_POOL_FWD, p, x, x->shape[1], 1, 1, label);
}

pn_tensor *pn_b_sigmoid(pn_builder *b, pn_tensor *x, const char *label) {
    pn_op_params p = {0};
    return unary(b, PN_OP_SIGMOID, p, x, x->shape[1], x->shape[2], x->shape[3], label);
}

pn_tensor *pn_b_gate(pn_builder *b, pn_tensor *x, pn_tensor *s, const char *label) {
    pn_op op = s->shape[1] == 1 && x->shape[1] != 1 ? PN_OP_PIXEL_MUL : PN_OP_CHANNEL_MUL;
    if (s->shape[2] == 1 && s->shape[3] == 1 && x->shape[1] == s->shape[1]) op = PN_OP_CHANNEL_MUL;
    pn_tensor *y = act(b, x->shape[0], x->shape[1], x->shape[2], x->shape[3], label);
    pn_op_params p = {0};
    pn_tensor *outs[] = {y}, *ins[] = {x, s};
    add_node(b, op, p, outs, ins, label);
    return y;
}

pn_tensor *pn_b_bilinear2x(pn_builder *b, pn_tensor *x, const char *label) {
    pn_op_params p = {0};
    return unary(b, PN_OP_BILINEAR2X_FWD, p, x, x->shape[1], 2 * x->shape[2], 2 * x->shape[3], label);
}

pn_tensor *pn_b_concat(pn_builder *b, pn_tensor *x, pn_tensor *y, const char *label) {
    pn_tensor *cat = act(b, x->shape[0], x->shape[1] + y->shape[1], x->shape[2], x->shape[3], label);
    pn_op_params p = {0};
    pn_tensor *outs[] = {cat}, *ins[] = {x, y};
    add_node(b, PN_OP_CONCAT, p, outs, ins, label);
    return cat;
}

/* Eval: upsample(x) written straight into the first channels of the concatenation and the skip copied behind it
 * (SCALE by 1), when the backend can address both channel slices (batch 1, slices on channel-block boundaries);
 * NULL otherwise. */
static pn_tensor *concat_in_place(pn_builder *b, pn_tensor *x, pn_tensor *skip, const char *label) {
    int64_t ca = x->shape[1], cb = skip->shape[1];
    pn_tensor *cat = act(b, x->shape[0], ca + cb, 2 * x->shape[2], 2 * x->shape[3], label);
    pn_tensor *up = pn_graph_channel_view(b->g, cat, 0, ca, label);
    pn_tensor *sk = pn_graph_channel_view(b->g, cat, ca, cb, label);
    if (!up || !sk) return NULL; /* unused views and cat: never placed */
    pn_op_params none = {0}, one = {.scale = {1.0f}};
    pn_tensor *uo[] = {up}, *ui[] = {x}, *so[] = {sk}, *si[] = {skip};
    add_node(b, PN_OP_UPSAMPLE2X_FWD, none, uo, ui, label);
    add_node(b, PN_OP_SCALE, one, so, si, label);
    return cat;
}

pn_tensor *pn_b_upsample_concat(pn_builder *b, pn_tensor *x, pn_tensor *skip, const char *label) {
    if (skip && b->g && !b->train && b->st == PN_OK) {
        pn_tensor *cat = concat_in_place(b, x, skip, label);
        if (cat) return cat;
    }
    pn_op_params none = {0};
    pn_tensor *y = pn_b_recomputed(
        b, unary(b, PN_OP_UPSAMPLE2X_FWD, none, x, x->shape[1], 2 * x->shape[2], 2 * x->shape[3], label));
    return skip ? pn_b_recomputed(b, pn_b_concat(b, y, skip, label)) : y;
}

/* ---------------- walks ---------------- */

static pn_tensor *walk(pn_builder *b, const pn_arch *a, pn_tensor *x) {
    const pn_encoder_desc *e = pn_encoder_find(a->encoder);
    PN_ASSERT(e); /* pn_arch_make validated it */
    if (strcmp(a->decoder, "albunet") == 0) return pn_decoder_albunet(b, e, x);
    return pn_decoder_unet(b, e, a, x);
}

static void builder_free(pn_builder *b) {
    for (int i = 0; i < b->n_shapes; i++) free(b->shapes[i]);
    free(b->shapes);
}

void pn_model_desc_free(pn_model_desc *d) {
    free(d->params);
    free(d->bns);
    memset(d, 0, sizeof *d);
}

/* A declaring walk at input 1 x 3 x h x w into d (which the caller frees), optionally listing convolutions. */
static pn_status declare(const pn_arch *a, int h, int w, pn_model_desc *d, double *macs, pn_conv_shape *convs,
                         int max_convs, int *n_convs) {
    memset(d, 0, sizeof *d);
    d->arch = *a;
    pn_builder b = {.desc = d, .convs = convs, .max_convs = max_convs};
    pn_tensor *x = act(&b, 1, 3, h, w, "input");
    walk(&b, a, x);
    builder_free(&b);
    if (macs) *macs = b.macs;
    if (n_convs) *n_convs = b.n_convs;
    return b.st;
}

pn_status pn_model_describe(const pn_arch *a, pn_model_desc *out) {
    pn_status st = declare(a, 64, 64, out, NULL, NULL, 0, NULL);
    if (st != PN_OK) pn_model_desc_free(out);
    return st;
}

pn_status pn_model_build(const pn_model_desc *d, pn_graph *g, const pn_builder_views *v, bool train, pn_tensor *x,
                         pn_tensor **logits) {
    pn_builder b = {.model = d, .g = g, .views = v, .train = train};
    *logits = walk(&b, &d->arch, x);
    PN_ASSERT(b.st != PN_OK || (b.next_param == d->n_params && b.next_bn == d->n_bns));
    return b.st;
}

pn_status pn_arch_count(const pn_arch *a, int h, int w, int64_t *params, double *macs) {
    pn_model_desc d;
    pn_status st = declare(a, h, w, &d, macs, NULL, 0, NULL);
    int64_t total = 0;
    for (int i = 0; i < d.n_params; i++) {
        int64_t n = 1;
        for (int k = 0; k < d.params[i].ndim; k++) n *= d.params[i].shape[k];
        total += n;
    }
    if (params) *params = total;
    pn_model_desc_free(&d);
    return st;
}

pn_status pn_arch_conv_shapes(const pn_arch *a, int h, int w, pn_conv_shape *out, int max, int *n) {
    pn_model_desc d;
    pn_status st = declare(a, h, w, &d, NULL, out, max, n);
    pn_model_desc_free(&d);
    return st;
}
