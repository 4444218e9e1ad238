/* unet: segmentation_models_pytorch's Unet(encoder, classes=1, activation=None) built as a graph:
 * parameters, gradients and Adam moments in one shared flat layout; forward, ComboLoss, backward, Adam. */
#include "unet.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define MAX_PARAMS 512
#define MAX_BNS 192
#define NAME_LEN 96

typedef enum { INIT_ENCODER_CONV, INIT_DECODER_CONV, INIT_HEAD_CONV, INIT_ZERO, INIT_ONE } init_rule;

typedef struct param_decl {
    char name[NAME_LEN];
    int ndim;
    int64_t shape[4];
    init_rule rule;
    int64_t offset; /* in floats, into the flat buffers */
} param_decl;

typedef struct bn_decl {
    char prefix[NAME_LEN];
    int64_t channels, offset; /* running_mean at offset, running_var at offset + channels (state buffer) */
    int gamma, beta;          /* param indices */
} bn_decl;

struct pn_unet {
    pn_backend *be;
    char encoder[32];
    pn_model_card card;
    const int *blocks; /* BasicBlocks per encoder stage */
    param_decl decl[MAX_PARAMS];
    pn_unet_param params[MAX_PARAMS];
    int n_params;
    bn_decl bn_decl[MAX_BNS];
    pn_unet_bn bns[MAX_BNS];
    int n_bns;
    int64_t n_scalars, n_state;
    pn_buffer pbuf, gbuf, mbuf, vbuf, sbuf, scratch;
    pn_tensor flat_p, flat_g, flat_m, flat_v, norm_out;
    /* the planned program */
    pn_graph *g;
    pn_unet_mode mode;
    int n, h, w;
    pn_tensor **param_t; /* graph views of each parameter, made per plan */
    pn_tensor **rstat_t; /* graph views of running stats: [2*i] mean, [2*i+1] var */
    pn_tensor *input, *logits, *target, *loss, *dlogits;
    int fwd_end, loss_fwd_node, loss_bwd_node, bwd_end;
};

static const int resnet34_blocks[4] = {3, 4, 6, 3};
static const int resnet18_blocks[4] = {2, 2, 2, 2};
static const int stage_channels[4] = {64, 128, 256, 512};
static const int decoder_channels[5] = {256, 128, 64, 32, 16};

/* ---------------- parameter declaration (state_dict order) ---------------- */

/* printf into a NAME_LEN buffer; names are short by construction, so truncation is a bug. */
static void set_name(char *dst, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, NAME_LEN, fmt, ap);
    va_end(ap);
    PN_ASSERT(n >= 0 && n < NAME_LEN);
}

static int declare_param(pn_unet *m, const char *name, int ndim, const int64_t *shape, init_rule rule) {
    PN_ASSERT(m->n_params < MAX_PARAMS);
    param_decl *d = &m->decl[m->n_params];
    set_name(d->name, "%s", name);
    d->ndim = ndim;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        d->shape[i] = shape[i];
        numel *= shape[i];
    }
    d->rule = rule;
    d->offset = m->n_scalars;
    m->n_scalars += (numel + 15) / 16 * 16; /* 64-byte aligned views */
    return m->n_params++;
}

static void declare_conv(pn_unet *m, const char *name, int64_t cout, int64_t cin, int64_t k, bool bias,
                         init_rule rule) {
    char full[NAME_LEN];
    int64_t shape[4] = {cout, cin, k, k};
    set_name(full, "%s.weight", name);
    declare_param(m, full, 4, shape, rule);
    if (bias) {
        set_name(full, "%s.bias", name);
        declare_param(m, full, 1, shape, INIT_ZERO);
    }
}

static void declare_bn(pn_unet *m, const char *prefix, int64_t c) {
    PN_ASSERT(m->n_bns < MAX_BNS);
    bn_decl *b = &m->bn_decl[m->n_bns++];
    set_name(b->prefix, "%s", prefix);
    char full[NAME_LEN];
    set_name(full, "%s.weight", prefix);
    b->gamma = declare_param(m, full, 1, &c, INIT_ONE);
    set_name(full, "%s.bias", prefix);
    b->beta = declare_param(m, full, 1, &c, INIT_ZERO);
    b->channels = c;
    b->offset = m->n_state;
    m->n_state += (2 * c + 15) / 16 * 16;
}

static void declare_encoder(pn_unet *m) {
    declare_conv(m, "encoder.conv1", 64, 3, 7, false, INIT_ENCODER_CONV);
    declare_bn(m, "encoder.bn1", 64);
    int64_t cin = 64;
    for (int s = 0; s < 4; s++) {
        int64_t c = stage_channels[s];
        for (int b = 0; b < m->blocks[s]; b++) {
            char p[NAME_LEN], q[NAME_LEN + 16];
            set_name(p, "encoder.layer%d.%d", s + 1, b);
            set_name(q, "%s.conv1", p);
            declare_conv(m, q, c, b == 0 ? cin : c, 3, false, INIT_ENCODER_CONV);
            set_name(q, "%s.bn1", p);
            declare_bn(m, q, c);
            set_name(q, "%s.conv2", p);
            declare_conv(m, q, c, c, 3, false, INIT_ENCODER_CONV);
            set_name(q, "%s.bn2", p);
            declare_bn(m, q, c);
            if (b == 0 && s > 0) {
                set_name(q, "%s.downsample.0", p);
                declare_conv(m, q, c, cin, 1, false, INIT_ENCODER_CONV);
                set_name(q, "%s.downsample.1", p);
                declare_bn(m, q, c);
            }
        }
        cin = c;
    }
}

/* Decoder block i: upsample, concat skip, (conv3x3 + BN + ReLU) twice. */
static void declare_decoder(pn_unet *m) {
    const int64_t skip[5] = {256, 128, 64, 64, 0};
    int64_t cin = 512;
    for (int i = 0; i < 5; i++) {
        char p[NAME_LEN];
        int64_t c = decoder_channels[i];
        set_name(p, "decoder.blocks.%d.conv1.0", i);
        declare_conv(m, p, c, cin + skip[i], 3, false, INIT_DECODER_CONV);
        set_name(p, "decoder.blocks.%d.conv1.1", i);
        declare_bn(m, p, c);
        set_name(p, "decoder.blocks.%d.conv2.0", i);
        declare_conv(m, p, c, c, 3, false, INIT_DECODER_CONV);
        set_name(p, "decoder.blocks.%d.conv2.1", i);
        declare_bn(m, p, c);
        cin = c;
    }
    declare_conv(m, "segmentation_head.0", 1, 16, 3, true, INIT_HEAD_CONV);
}

static pn_tensor view_of(pn_buffer *buf, int64_t offset, int ndim, const int64_t *shape, const char *name) {
    pn_tensor t;
    memset(&t, 0, sizeof t);
    t.buf = buf;
    t.offset = (size_t)offset * sizeof(float);
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
    t.name = name;
    return t;
}

/* Allocates the (zeroed) gradient and Adam-moment buffers on first use. */
static pn_status ensure_train_buffers(pn_unet *m) {
    if (m->gbuf.backend) return PN_OK;
    size_t pbytes = (size_t)m->n_scalars * sizeof(float);
    pn_status st = pn_buffer_alloc(m->be, &m->gbuf, pbytes);
    if (st == PN_OK) st = pn_buffer_alloc(m->be, &m->mbuf, pbytes);
    if (st == PN_OK) st = pn_buffer_alloc(m->be, &m->vbuf, pbytes);
    if (st != PN_OK) {
        pn_buffer_free(&m->gbuf);
        pn_buffer_free(&m->mbuf);
        pn_buffer_free(&m->vbuf);
        return pn_error(PN_ERR_NOMEM, "out of memory allocating gradients and Adam moments (3 x %.1f MB)",
                        (double)pbytes / 1e6);
    }
    return PN_OK;
}

static pn_status allocate_buffers(pn_unet *m) {
    size_t pbytes = (size_t)m->n_scalars * sizeof(float);
    PN_TRY(pn_buffer_alloc(m->be, &m->pbuf, pbytes));
    /* gradients and Adam moments are allocated when first needed (ensure_train_buffers): inference never
     * pays for them */
    PN_TRY(pn_buffer_alloc(m->be, &m->sbuf, (size_t)(m->n_state ? m->n_state : 1) * sizeof(float)));
    PN_TRY(pn_buffer_alloc(m->be, &m->scratch, 64));
    for (int i = 0; i < m->n_params; i++) {
        param_decl *d = &m->decl[i];
        pn_unet_param *p = &m->params[i];
        p->name = d->name;
        p->value = view_of(&m->pbuf, d->offset, d->ndim, d->shape, d->name);
        p->grad = view_of(&m->gbuf, d->offset, d->ndim, d->shape, d->name);
        p->m = view_of(&m->mbuf, d->offset, d->ndim, d->shape, d->name);
        p->v = view_of(&m->vbuf, d->offset, d->ndim, d->shape, d->name);
    }
    for (int i = 0; i < m->n_bns; i++) {
        bn_decl *d = &m->bn_decl[i];
        pn_unet_bn *b = &m->bns[i];
        b->prefix = d->prefix;
        b->running_mean = view_of(&m->sbuf, d->offset, 1, &d->channels, d->prefix);
        b->running_var = view_of(&m->sbuf, d->offset + d->channels, 1, &d->channels, d->prefix);
    }
    int64_t total = m->n_scalars;
    m->flat_p = view_of(&m->pbuf, 0, 1, &total, "parameters");
    m->flat_g = view_of(&m->gbuf, 0, 1, &total, "gradients");
    m->flat_m = view_of(&m->mbuf, 0, 1, &total, "adam m");
    m->flat_v = view_of(&m->vbuf, 0, 1, &total, "adam v");
    int64_t one = 1;
    m->norm_out = view_of(&m->scratch, 0, 1, &one, "norm");
    return PN_OK;
}

pn_status pn_unet_create(const char *encoder, pn_backend *be, pn_unet **out) {
    *out = NULL;
    const int *blocks = NULL;
    if (strcmp(encoder, "resnet34") == 0) blocks = resnet34_blocks;
    if (strcmp(encoder, "resnet18") == 0) blocks = resnet18_blocks;
    if (!blocks)
        return pn_error(PN_ERR_UNSUPPORTED, "encoder '%s' is not available (available: resnet34, resnet18)", encoder);
    pn_unet *m = calloc(1, sizeof *m);
    if (!m) return pn_error(PN_ERR_NOMEM, "out of memory creating the model");
    m->be = be;
    m->blocks = blocks;
    set_name(m->encoder, "%s", encoder);
    pn_model_card_clear(&m->card);
    snprintf(m->card.encoder, sizeof m->card.encoder, "%s", encoder);
    snprintf(m->card.decoder, sizeof m->card.decoder, "unet");
    declare_encoder(m);
    declare_decoder(m);
    pn_status st = allocate_buffers(m);
    if (st == PN_OK) st = pn_unet_init_weights(m, 0);
    if (st != PN_OK) {
        pn_unet_free(m);
        return st;
    }
    *out = m;
    return PN_OK;
}

void pn_unet_free(pn_unet *m) {
    if (!m) return;
    pn_graph_free(m->g);
    free(m->param_t);
    free(m->rstat_t);
    pn_buffer_free(&m->pbuf);
    pn_buffer_free(&m->gbuf);
    pn_buffer_free(&m->mbuf);
    pn_buffer_free(&m->vbuf);
    pn_buffer_free(&m->sbuf);
    pn_buffer_free(&m->scratch);
    free(m);
}

/* ---------------- initialisation ---------------- */

static void init_values(const param_decl *d, int index, uint64_t seed, float *v, int64_t numel) {
    int64_t cout = d->shape[0], fan_in = 1, fan_out = 1;
    if (d->ndim == 4) {
        fan_in = d->shape[1] * d->shape[2] * d->shape[3];
        fan_out = cout * d->shape[2] * d->shape[3];
    }
    pn_rng r = pn_rng_make(seed, PN_RNG_INIT, (uint32_t)index, 0);
    for (int64_t i = 0; i < numel; i++) {
        switch (d->rule) {
        case INIT_ENCODER_CONV: v[i] = (float)sqrt(2.0 / (double)fan_out) * pn_rng_normal(&r); break;
        case INIT_DECODER_CONV: {
            float bound = (float)sqrt(6.0 / (double)fan_in);
            v[i] = pn_rng_uniform_range(&r, -bound, bound);
            break;
        }
        case INIT_HEAD_CONV: {
            float bound = (float)sqrt(6.0 / (double)(fan_in + fan_out));
            v[i] = pn_rng_uniform_range(&r, -bound, bound);
            break;
        }
        case INIT_ZERO: v[i] = 0.0f; break;
        case INIT_ONE: v[i] = 1.0f; break;
        }
    }
}

static pn_status fill_tensor(const pn_tensor *t, float value) {
    int64_t n = pn_tensor_numel(t);
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return pn_error(PN_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) v[i] = value;
    pn_status st = pn_tensor_set(t, v);
    free(v);
    return st;
}

pn_status pn_unet_init_weights(pn_unet *m, uint64_t seed) {
    for (int i = 0; i < m->n_params; i++) {
        int64_t n = pn_tensor_numel(&m->params[i].value);
        float *v = malloc((size_t)n * sizeof *v);
        if (!v) return pn_error(PN_ERR_NOMEM, "out of memory");
        init_values(&m->decl[i], i, seed, v, n);
        pn_status st = pn_tensor_set(&m->params[i].value, v);
        free(v);
        PN_TRY(st);
    }
    for (int i = 0; i < m->n_bns; i++) {
        PN_TRY(fill_tensor(&m->bns[i].running_mean, 0.0f));
        PN_TRY(fill_tensor(&m->bns[i].running_var, 1.0f));
        m->bns[i].num_batches_tracked = 0;
    }
    if (!m->gbuf.backend) return PN_OK; /* not allocated yet: they start zeroed */
    PN_TRY(fill_tensor(&m->flat_m, 0.0f));
    PN_TRY(fill_tensor(&m->flat_v, 0.0f));
    return pn_unet_zero_grad(m);
}

/* ---------------- the program ---------------- */

typedef struct builder {
    pn_unet *m;
    pn_graph *g;
    pn_status st;
} builder;

static pn_tensor *act(builder *b, int64_t n, int64_t c, int64_t h, int64_t w, const char *name) {
    return pn_graph_activation(b->g, pn_tensor_nchw(n, c, h, w), name);
}

static void add_node(builder *b, pn_op op, pn_op_params p, pn_tensor *const *outs, pn_tensor *const *ins,
                     const char *label) {
    if (b->st == PN_OK) b->st = pn_graph_add(b->g, op, p, outs, ins, label);
}

static int find_param(pn_unet *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->decl[i].name, name) == 0) return i;
    return -1;
}

static pn_tensor *conv(builder *b, pn_tensor *x, const char *name, int stride, int pad) {
    char key[NAME_LEN];
    set_name(key, "%s.weight", name);
    int wi = find_param(b->m, key);
    PN_ASSERT(wi >= 0);
    set_name(key, "%s.bias", name);
    int bi = find_param(b->m, key);
    const param_decl *w = &b->m->decl[wi];
    int64_t k = w->shape[2];
    int64_t oh = (x->shape[2] + 2 * pad - k) / stride + 1, ow = (x->shape[3] + 2 * pad - k) / stride + 1;
    pn_tensor *y = act(b, x->shape[0], w->shape[0], oh, ow, w->name);
    pn_op_params p = {.conv2d_fwd = {stride, pad, 1}};
    pn_tensor *outs[] = {y}, *ins[] = {x, b->m->param_t[wi], bi >= 0 ? b->m->param_t[bi] : NULL};
    add_node(b, PN_OP_CONV2D_FWD, p, outs, ins, w->name);
    return y;
}

static pn_tensor *batchnorm(builder *b, pn_tensor *x, const char *prefix) {
    pn_unet *m = b->m;
    int bi = 0;
    while (bi < m->n_bns && strcmp(m->bn_decl[bi].prefix, prefix) != 0) bi++;
    PN_ASSERT(bi < m->n_bns);
    const bn_decl *d = &m->bn_decl[bi];
    /* eval: in place (a backend may then fold it into the conv before it) */
    pn_tensor *y = m->mode == PN_UNET_TRAIN ? act(b, x->shape[0], x->shape[1], x->shape[2], x->shape[3], d->prefix) : x;
    pn_tensor *gamma = m->param_t[d->gamma], *beta = m->param_t[d->beta];
    pn_tensor *rmean = m->rstat_t[2 * bi], *rvar = m->rstat_t[2 * bi + 1];
    pn_op_params p = {.batchnorm_train_fwd = {1e-5f, 0.1f}};
    if (m->mode == PN_UNET_TRAIN) {
        pn_tensor *save_mean = pn_graph_activation(b->g, pn_tensor_vec(d->channels), "save_mean");
        pn_tensor *save_invstd = pn_graph_activation(b->g, pn_tensor_vec(d->channels), "save_invstd");
        pn_tensor *outs[] = {y, save_mean, save_invstd, rmean, rvar}, *ins[] = {x, gamma, beta};
        add_node(b, PN_OP_BATCHNORM_TRAIN_FWD, p, outs, ins, d->prefix);
    } else {
        pn_tensor *outs[] = {y}, *ins[] = {x, gamma, beta, rmean, rvar};
        add_node(b, PN_OP_BATCHNORM_INFER_FWD, p, outs, ins, d->prefix);
    }
    return y;
}

static pn_tensor *unary(builder *b, pn_op op, pn_op_params p, pn_tensor *x, int64_t h, int64_t w, const char *label) {
    pn_tensor *y = act(b, x->shape[0], x->shape[1], h, w, label);
    pn_tensor *outs[] = {y}, *ins[] = {x};
    add_node(b, op, p, outs, ins, label);
    return y;
}

/* ReLU and ADD work in place (y = x, z = x): in eval a backend can fuse them into the conv before; in training
 * every x here is a BN output that no backward node reads (BN backward reads BN's input, ReLU backward its
 * output, ADD backward nothing), so the graph needs no second copy. */
static pn_tensor *relu(builder *b, pn_tensor *x, const char *label) {
    pn_op_params p = {0};
    pn_tensor *outs[] = {x}, *ins[] = {x};
    add_node(b, PN_OP_RELU_FWD, p, outs, ins, label);
    return x;
}

static pn_tensor *add(builder *b, pn_tensor *x, pn_tensor *y, const char *label) {
    pn_tensor *z = x;
    pn_op_params p = {0};
    pn_tensor *outs[] = {z}, *ins[] = {x, y};
    add_node(b, PN_OP_ADD, p, outs, ins, label);
    return z;
}

/* In training, backward recomputes t (BN + ReLU, upsample, concat: cheap passes) instead of keeping it. */
static pn_tensor *recomputed(builder *b, pn_tensor *t) {
    if (b->m->mode == PN_UNET_TRAIN) pn_graph_recompute(b->g, t);
    return t;
}

/* conv -> BN -> ReLU, as smp's Conv2dReLU and torchvision's conv/bn/relu. In training only the conv output (BN's
 * input) is kept for backward; the ReLU output is recomputed from it. */
static pn_tensor *conv_bn_relu(builder *b, pn_tensor *x, const char *conv_name, const char *bn_name, int stride,
                               int pad) {
    pn_tensor *y = batchnorm(b, conv(b, x, conv_name, stride, pad), bn_name);
    return recomputed(b, relu(b, y, bn_name));
}

/* torchvision BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)). */
static pn_tensor *basic_block(builder *b, pn_tensor *x, int stage, int index) {
    char p[NAME_LEN], c1[NAME_LEN + 16], b1[NAME_LEN + 16], c2[NAME_LEN + 16], b2[NAME_LEN + 16];
    set_name(p, "encoder.layer%d.%d", stage + 1, index);
    set_name(c1, "%s.conv1", p);
    set_name(b1, "%s.bn1", p);
    set_name(c2, "%s.conv2", p);
    set_name(b2, "%s.bn2", p);
    int stride = (index == 0 && stage > 0) ? 2 : 1;
    pn_tensor *y = conv_bn_relu(b, x, c1, b1, stride, 1);
    y = batchnorm(b, conv(b, y, c2, 1, 1), b2);
    pn_tensor *shortcut = x;
    if (index == 0 && stage > 0) {
        char dc[NAME_LEN], db[NAME_LEN + 16];
        set_name(dc, "%s.downsample.0", p);
        set_name(db, "%s.downsample.1", p);
        shortcut = batchnorm(b, conv(b, x, dc, 2, 0), db);
        /* eval: the sum goes into the downsample branch, the conv computed last */
        return relu(b, add(b, shortcut, y, p), p);
    }
    return relu(b, add(b, y, shortcut, p), p);
}

/* Returns the five encoder features f1..f5 (64@H/2, 64@H/4, 128@H/8, 256@H/16, 512@H/32). */
static void encoder(builder *b, pn_tensor *x, pn_tensor *features[5]) {
    pn_tensor *y = conv_bn_relu(b, x, "encoder.conv1", "encoder.bn1", 2, 3);
    features[0] = y;
    pn_op_params pool = {.maxpool_fwd = {3, 2, 1, 0}};
    y = unary(b, PN_OP_MAXPOOL_FWD, pool, y, y->shape[2] / 2, y->shape[3] / 2, "encoder.maxpool");
    for (int s = 0; s < 4; s++) {
        for (int i = 0; i < b->m->blocks[s]; i++) y = basic_block(b, y, s, i);
        features[s + 1] = y;
    }
}

/* Eval: the concatenation of upsample(x) and skip with the upsample writing straight into the first channels
 * and the skip copied behind it (SCALE by 1), when the backend can address both channel slices (batch 1, slices
 * on channel-block boundaries); NULL otherwise. */
static pn_tensor *concat_in_place(builder *b, pn_tensor *x, pn_tensor *skip, const char *label) {
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

static pn_tensor *decoder_block(builder *b, pn_tensor *x, pn_tensor *skip, int i) {
    pn_op_params none = {0};
    char c1[NAME_LEN], b1[NAME_LEN], c2[NAME_LEN], b2[NAME_LEN];
    set_name(c1, "decoder.blocks.%d.conv1.0", i);
    set_name(b1, "decoder.blocks.%d.conv1.1", i);
    set_name(c2, "decoder.blocks.%d.conv2.0", i);
    set_name(b2, "decoder.blocks.%d.conv2.1", i);
    if (skip && b->m->mode != PN_UNET_TRAIN) {
        pn_tensor *cat = concat_in_place(b, x, skip, c1);
        if (cat) return conv_bn_relu(b, conv_bn_relu(b, cat, c1, b1, 1, 1), c2, b2, 1, 1);
    }
    pn_tensor *y = recomputed(b, unary(b, PN_OP_UPSAMPLE2X_FWD, none, x, 2 * x->shape[2], 2 * x->shape[3], c1));
    if (skip) {
        pn_tensor *cat = act(b, y->shape[0], y->shape[1] + skip->shape[1], y->shape[2], y->shape[3], c1);
        pn_tensor *outs[] = {cat}, *ins[] = {y, skip};
        add_node(b, PN_OP_CONCAT, none, outs, ins, c1);
        y = recomputed(b, cat);
    }
    y = conv_bn_relu(b, y, c1, b1, 1, 1);
    return conv_bn_relu(b, y, c2, b2, 1, 1);
}

static pn_status make_graph_views(pn_unet *m, pn_graph *g) {
    free(m->param_t);
    free(m->rstat_t);
    m->param_t = calloc((size_t)m->n_params, sizeof *m->param_t);
    m->rstat_t = calloc((size_t)(2 * m->n_bns + 1), sizeof *m->rstat_t);
    if (!m->param_t || !m->rstat_t) return pn_error(PN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->n_params; i++)
        m->param_t[i] = pn_graph_external(g, m->params[i].value, m->mode == PN_UNET_TRAIN ? &m->params[i].grad : NULL);
    for (int i = 0; i < m->n_bns; i++) {
        m->rstat_t[2 * i] = pn_graph_external(g, m->bns[i].running_mean, NULL);
        m->rstat_t[2 * i + 1] = pn_graph_external(g, m->bns[i].running_var, NULL);
    }
    return PN_OK;
}

static pn_status build_program(pn_unet *m, pn_graph *g) {
    builder b = {m, g, PN_OK};
    PN_TRY(make_graph_views(m, g));
    m->input = act(&b, m->n, 3, m->h, m->w, "input");
    pn_graph_keep(g, m->input);
    pn_graph_no_grad(g, m->input);
    pn_tensor *f[5];
    encoder(&b, m->input, f);
    pn_tensor *skips[5] = {f[3], f[2], f[1], f[0], NULL};
    pn_tensor *y = f[4];
    for (int i = 0; i < 5; i++) y = decoder_block(&b, y, skips[i], i);
    m->logits = conv(&b, y, "segmentation_head.0", 1, 1);
    pn_graph_keep(g, m->logits);
    m->fwd_end = pn_graph_size(g);
    if (b.st != PN_OK || m->mode != PN_UNET_TRAIN) return b.st;

    m->target = act(&b, m->n, 1, m->h, m->w, "target");
    pn_graph_keep(g, m->target);
    pn_graph_no_grad(g, m->target);
    m->loss = pn_graph_activation(g, pn_tensor_vec(1), "loss");
    pn_graph_keep(g, m->loss);
    m->dlogits = act(&b, m->n, 1, m->h, m->w, "dlogits");
    pn_op_params lp = {.combo_loss_fwd = {3.0f, 1.0f, 4.0f, 1.0f}};
    pn_tensor *lo[] = {m->loss}, *bo[] = {m->dlogits}, *li[] = {m->logits, m->target};
    m->loss_fwd_node = pn_graph_size(g);
    add_node(&b, PN_OP_COMBO_LOSS_FWD, lp, lo, li, "combo loss");
    m->loss_bwd_node = pn_graph_size(g);
    add_node(&b, PN_OP_COMBO_LOSS_BWD, lp, bo, li, "combo loss");
    PN_TRY(b.st);
    PN_TRY(pn_graph_backward(g, m->fwd_end, m->logits, m->dlogits));
    m->bwd_end = pn_graph_size(g);
    return PN_OK;
}

pn_status pn_unet_plan(pn_unet *m, int n, int h, int w, pn_unet_mode mode) {
    if (n < 1 || h < 32 || w < 32 || h % 32 || w % 32)
        return pn_error(PN_ERR_ARG,
                        "input %dx3x%dx%d: batch must be >= 1 and height and width positive multiples of 32 "
                        "(the encoder downsamples 5 times); resize or pad the image",
                        n, h, w);
    if (mode == PN_UNET_TRAIN && n == 1 && h == 32 && w == 32)
        return pn_error(PN_ERR_ARG, "training needs more than one value per BatchNorm channel: use batch >= 2 or a larger image");
    if (mode == PN_UNET_TRAIN) PN_TRY(ensure_train_buffers(m));
    pn_graph_free(m->g);
    m->g = pn_graph_new(m->be);
    if (!m->g) return PN_ERR_NOMEM;
    if (mode == PN_UNET_TRAIN) PN_TRY(ensure_train_buffers(m));
    m->n = n, m->h = h, m->w = w, m->mode = mode;
    m->target = m->loss = m->dlogits = NULL;
    pn_status st = build_program(m, m->g);
    if (st == PN_OK) st = pn_graph_plan(m->g);
    if (st != PN_OK) {
        pn_graph_free(m->g);
        m->g = NULL;
    }
    return st;
}

pn_tensor *pn_unet_input(pn_unet *m) { return m->input; }
pn_tensor *pn_unet_logits(pn_unet *m) { return m->logits; }
pn_tensor *pn_unet_target(pn_unet *m) { return m->target; }
pn_tensor *pn_unet_loss_tensor(pn_unet *m) { return m->loss; }

pn_status pn_unet_forward(pn_unet *m) {
    if (!m->g) return pn_error(PN_ERR_ARG, "the model has no planned program (call pn_unet_plan)");
    PN_TRY(pn_graph_run(m->g, 0, m->fwd_end));
    if (m->mode == PN_UNET_TRAIN)
        for (int i = 0; i < m->n_bns; i++) m->bns[i].num_batches_tracked++;
    return PN_OK;
}

static pn_status need_train(pn_unet *m, const char *what) {
    if (!m->g || m->mode != PN_UNET_TRAIN) return pn_error(PN_ERR_ARG, "%s needs a program planned in train mode", what);
    return PN_OK;
}

pn_status pn_unet_loss(pn_unet *m, float w_bce, float w_dice, float w_focal, float *loss) {
    PN_TRY(need_train(m, "the loss"));
    pn_combo_loss_params lp = {w_bce, w_dice, w_focal, 1.0f};
    pn_graph_node(m->g, m->loss_fwd_node)->p.combo_loss_fwd = lp;
    pn_graph_node(m->g, m->loss_bwd_node)->p.combo_loss_bwd = lp;
    PN_TRY(pn_graph_run(m->g, m->loss_fwd_node, m->loss_fwd_node + 1));
    return pn_tensor_get(m->loss, loss);
}

pn_status pn_unet_backward(pn_unet *m, float grad_scale) {
    PN_TRY(need_train(m, "backward"));
    pn_graph_node(m->g, m->loss_bwd_node)->p.combo_loss_bwd.grad_scale = grad_scale;
    return pn_graph_run(m->g, m->loss_bwd_node, m->bwd_end);
}

/* Runs one op on flat tensors outside the graph (optimizer, norms). */
static pn_status run_flat(pn_unet *m, pn_op op, pn_op_params p, pn_tensor *const *outs, pn_tensor *const *ins) {
    pn_node node;
    memset(&node, 0, sizeof node);
    node.op = op;
    node.p = p;
    node.label = "optimizer";
    for (int i = 0; i < pn_op_num_outputs(op); i++) node.out[i] = outs[i];
    for (int i = 0; i < pn_op_num_inputs(op); i++) node.in[i] = ins[i];
    pn_status st = pn_node_prepare(m->be, &node);
    if (st == PN_OK) st = pn_node_compute(m->be, &node);
    pn_node_release(m->be, &node);
    return st;
}

pn_status pn_unet_zero_grad(pn_unet *m) {
    PN_TRY(ensure_train_buffers(m));
    pn_op_params p = {.fill = {0.0f}};
    pn_tensor *outs[] = {&m->flat_g};
    return run_flat(m, PN_OP_FILL, p, outs, NULL);
}

pn_status pn_unet_grad_norm(pn_unet *m, double *norm) {
    PN_TRY(ensure_train_buffers(m));
    pn_op_params p = {0};
    pn_tensor *outs[] = {&m->norm_out}, *ins[] = {&m->flat_g};
    PN_TRY(run_flat(m, PN_OP_SUM_SQUARES, p, outs, ins));
    float s;
    PN_TRY(pn_tensor_get(&m->norm_out, &s));
    *norm = sqrt((double)s);
    return PN_OK;
}

pn_status pn_unet_clip_grad_norm(pn_unet *m, double max_norm, double *norm) {
    PN_TRY(pn_unet_grad_norm(m, norm));
    if (!isfinite(*norm)) return pn_error(PN_ERR_NUMERIC, "the gradient norm is %g", *norm);
    double coef = max_norm / (*norm + 1e-6);
    if (coef >= 1.0) return PN_OK;
    return pn_unet_scale_grad(m, coef);
}

pn_status pn_unet_scale_grad(pn_unet *m, double factor) {
    PN_TRY(ensure_train_buffers(m));
    pn_op_params p = {.scale = {(float)factor}};
    pn_tensor *outs[] = {&m->flat_g}, *ins[] = {&m->flat_g};
    return run_flat(m, PN_OP_SCALE, p, outs, ins);
}

pn_status pn_unet_adam_step(pn_unet *m, const pn_adam_params *ap) {
    PN_TRY(ensure_train_buffers(m));
    pn_op_params p = {.adam_step = *ap};
    pn_tensor *outs[] = {&m->flat_p, &m->flat_m, &m->flat_v}, *ins[] = {&m->flat_g};
    return run_flat(m, PN_OP_ADAM_STEP, p, outs, ins);
}

pn_model_card *pn_unet_card(pn_unet *m) { return &m->card; }
int pn_unet_num_params(const pn_unet *m) { return m->n_params; }
pn_unet_param *pn_unet_param_at(pn_unet *m, int i) { return &m->params[i]; }
int pn_unet_num_bns(const pn_unet *m) { return m->n_bns; }
pn_unet_bn *pn_unet_bn_at(pn_unet *m, int i) { return &m->bns[i]; }
pn_backend *pn_unet_backend(pn_unet *m) { return m->be; }
pn_graph *pn_unet_graph(pn_unet *m) { return m->g; }
size_t pn_unet_arena_bytes(const pn_unet *m) { return m->g ? pn_graph_arena_bytes(m->g) : 0; }
size_t pn_unet_unshared_bytes(const pn_unet *m) { return m->g ? pn_graph_unshared_bytes(m->g) : 0; }
size_t pn_unet_peak_live_bytes(const pn_unet *m) { return m->g ? pn_graph_peak_live_bytes(m->g) : 0; }

int64_t pn_unet_param_count(const pn_unet *m) {
    int64_t total = 0;
    for (int i = 0; i < m->n_params; i++) total += pn_tensor_numel(&m->params[i].value);
    return total;
}
