/* unet: segmentation_models_pytorch's Unet(encoder, classes=1, activation=None) built as a graph:
 * parameters, gradients and Adam moments in one shared flat layout; forward, ComboLoss, backward, Adam. */
#include "unet.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/builder.h"
#include "rng.h"

struct pn_unet {
    pn_backend *be;
    pn_model_card card;
    pn_model_desc desc;    /* every parameter and BatchNorm, from the architecture's description */
    pn_unet_param *params; /* desc.n_params views */
    pn_unet_bn *bns;       /* desc.n_bns */
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

static pn_status reset_running_stats(pn_unet *m);

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
    size_t pbytes = (size_t)m->desc.n_scalars * sizeof(float);
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
    size_t pbytes = (size_t)m->desc.n_scalars * sizeof(float);
    PN_TRY(pn_buffer_alloc(m->be, &m->pbuf, pbytes));
    /* gradients and Adam moments are allocated when first needed (ensure_train_buffers): inference never
     * pays for them */
    PN_TRY(pn_buffer_alloc(m->be, &m->sbuf, (size_t)(m->desc.n_state ? m->desc.n_state : 1) * sizeof(float)));
    PN_TRY(pn_buffer_alloc(m->be, &m->scratch, 64));
    for (int i = 0; i < m->desc.n_params; i++) {
        pn_param_decl *d = &m->desc.params[i];
        pn_unet_param *p = &m->params[i];
        p->name = d->name;
        p->value = view_of(&m->pbuf, d->offset, d->ndim, d->shape, d->name);
        p->grad = view_of(&m->gbuf, d->offset, d->ndim, d->shape, d->name);
        p->m = view_of(&m->mbuf, d->offset, d->ndim, d->shape, d->name);
        p->v = view_of(&m->vbuf, d->offset, d->ndim, d->shape, d->name);
    }
    for (int i = 0; i < m->desc.n_bns; i++) {
        pn_bn_decl *d = &m->desc.bns[i];
        pn_unet_bn *b = &m->bns[i];
        b->prefix = d->prefix;
        b->running_mean = view_of(&m->sbuf, d->offset, 1, &d->channels, d->prefix);
        b->running_var = view_of(&m->sbuf, d->offset + d->channels, 1, &d->channels, d->prefix);
    }
    int64_t total = m->desc.n_scalars;
    m->flat_p = view_of(&m->pbuf, 0, 1, &total, "parameters");
    m->flat_g = view_of(&m->gbuf, 0, 1, &total, "gradients");
    m->flat_m = view_of(&m->mbuf, 0, 1, &total, "adam m");
    m->flat_v = view_of(&m->vbuf, 0, 1, &total, "adam v");
    int64_t one = 1;
    m->norm_out = view_of(&m->scratch, 0, 1, &one, "norm");
    return PN_OK;
}

pn_status pn_unet_create_arch(const pn_arch *arch, pn_backend *be, pn_unet **out) {
    *out = NULL;
    pn_unet *m = calloc(1, sizeof *m);
    if (!m) return pn_error(PN_ERR_NOMEM, "out of memory creating the model");
    m->be = be;
    pn_model_card_clear(&m->card);
    snprintf(m->card.encoder, sizeof m->card.encoder, "%s", arch->encoder);
    snprintf(m->card.decoder, sizeof m->card.decoder, "%s", arch->decoder);
    snprintf(m->card.attention, sizeof m->card.attention, "%s", arch->attention);
    pn_status st = pn_model_describe(arch, &m->desc);
    if (st == PN_OK) {
        m->params = calloc((size_t)m->desc.n_params, sizeof *m->params);
        m->bns = calloc((size_t)(m->desc.n_bns ? m->desc.n_bns : 1), sizeof *m->bns);
        if (!m->params || !m->bns) st = pn_error(PN_ERR_NOMEM, "out of memory creating the model");
    }
    if (st == PN_OK) st = allocate_buffers(m);
    if (st == PN_OK) st = reset_running_stats(m);
    if (st != PN_OK) {
        pn_unet_free(m);
        return st;
    }
    *out = m;
    return PN_OK;
}

pn_status pn_unet_create(const char *encoder, pn_backend *be, pn_unet **out) {
    pn_arch arch;
    *out = NULL;
    PN_TRY(pn_arch_make(encoder, "unet", NULL, &arch));
    return pn_unet_create_arch(&arch, be, out);
}

const pn_arch *pn_unet_arch(const pn_unet *m) { return &m->desc.arch; }

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
    pn_model_desc_free(&m->desc);
    free(m->params);
    free(m->bns);
    free(m);
}

/* ---------------- initialisation ---------------- */

/* How many 32-bit words of the parameter's stream each value of `rule` draws. */
static int words_per_value(pn_init_rule rule) {
    return rule == PN_INIT_ENCODER_CONV ? 2 : rule == PN_INIT_DECODER_CONV || rule == PN_INIT_HEAD_CONV ? 1 : 0;
}

/* Values [begin, end) of parameter `index`: value i draws words [i * w, (i + 1) * w) of its stream, so any split of
 * the range gives the same values. */
static void init_range(const pn_param_decl *d, int index, uint64_t seed, float *v, int64_t begin, int64_t end) {
    int64_t cout = d->shape[0], fan_in = 1, fan_out = 1;
    if (d->ndim == 4) {
        fan_in = d->shape[1] * d->shape[2] * d->shape[3];
        fan_out = cout * d->shape[2] * d->shape[3];
    }
    pn_rng r = pn_rng_make(seed, PN_RNG_INIT, (uint32_t)index, 0);
    pn_rng_seek(&r, (uint64_t)(begin * words_per_value(d->rule)));
    for (int64_t i = begin; i < end; i++) {
        switch (d->rule) {
        case PN_INIT_ENCODER_CONV: v[i] = (float)sqrt(2.0 / (double)fan_out) * pn_rng_normal(&r); break;
        case PN_INIT_DECODER_CONV: {
            float bound = (float)sqrt(6.0 / (double)fan_in);
            v[i] = pn_rng_uniform_range(&r, -bound, bound);
            break;
        }
        case PN_INIT_HEAD_CONV: {
            float bound = (float)sqrt(6.0 / (double)(fan_in + fan_out));
            v[i] = pn_rng_uniform_range(&r, -bound, bound);
            break;
        }
        case PN_INIT_ZERO: v[i] = 0.0f; break;
        case PN_INIT_ONE: v[i] = 1.0f; break;
        }
    }
}

/* A parameter's values, in chunks over the cores where OpenMP is there (Box-Muller's log and cos are most of the
 * time of `pneumoseg init`). */
static void init_values(const pn_param_decl *d, int index, uint64_t seed, float *v, int64_t numel) {
    enum { CHUNK = 1 << 16 };
    int64_t chunks = (numel + CHUNK - 1) / CHUNK;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic) if (chunks > 1)
#endif
    for (int64_t c = 0; c < chunks; c++)
        init_range(d, index, seed, v, c * CHUNK, c + 1 < chunks ? (c + 1) * CHUNK : numel);
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

/* Running mean 0, running variance 1, no batches seen (as a new torch BatchNorm2d). */
static pn_status reset_running_stats(pn_unet *m) {
    for (int i = 0; i < m->desc.n_bns; i++) {
        PN_TRY(fill_tensor(&m->bns[i].running_mean, 0.0f));
        PN_TRY(fill_tensor(&m->bns[i].running_var, 1.0f));
        m->bns[i].num_batches_tracked = 0;
    }
    return PN_OK;
}

pn_status pn_unet_init_weights(pn_unet *m, uint64_t seed) {
    int64_t most = 0;
    for (int i = 0; i < m->desc.n_params; i++)
        if (pn_tensor_numel(&m->params[i].value) > most) most = pn_tensor_numel(&m->params[i].value);
    float *v = malloc((size_t)(most ? most : 1) * sizeof *v); /* one buffer: its pages fault in once */
    if (!v) return pn_error(PN_ERR_NOMEM, "out of memory");
    pn_status st = PN_OK;
    for (int i = 0; i < m->desc.n_params && st == PN_OK; i++) {
        init_values(&m->desc.params[i], i, seed, v, pn_tensor_numel(&m->params[i].value));
        st = pn_tensor_set(&m->params[i].value, v);
    }
    free(v);
    PN_TRY(st);
    PN_TRY(reset_running_stats(m));
    if (!m->gbuf.backend) return PN_OK; /* not allocated yet: they start zeroed */
    PN_TRY(fill_tensor(&m->flat_m, 0.0f));
    PN_TRY(fill_tensor(&m->flat_v, 0.0f));
    return pn_unet_zero_grad(m);
}

/* ---------------- the program ---------------- */

static pn_status make_graph_views(pn_unet *m, pn_graph *g) {
    free(m->param_t);
    free(m->rstat_t);
    m->param_t = calloc((size_t)m->desc.n_params, sizeof *m->param_t);
    m->rstat_t = calloc((size_t)(2 * m->desc.n_bns + 1), sizeof *m->rstat_t);
    if (!m->param_t || !m->rstat_t) return pn_error(PN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->desc.n_params; i++)
        m->param_t[i] = pn_graph_external(g, m->params[i].value, m->mode == PN_UNET_TRAIN ? &m->params[i].grad : NULL);
    for (int i = 0; i < m->desc.n_bns; i++) {
        m->rstat_t[2 * i] = pn_graph_external(g, m->bns[i].running_mean, NULL);
        m->rstat_t[2 * i + 1] = pn_graph_external(g, m->bns[i].running_var, NULL);
    }
    return PN_OK;
}

static pn_tensor *activation(pn_graph *g, int64_t n, int64_t c, int64_t h, int64_t w, const char *name) {
    return pn_graph_activation(g, pn_tensor_nchw(n, c, h, w), name);
}

static pn_status build_program(pn_unet *m, pn_graph *g) {
    PN_TRY(make_graph_views(m, g));
    m->input = activation(g, m->n, 3, m->h, m->w, "input");
    pn_graph_keep(g, m->input);
    pn_graph_no_grad(g, m->input);
    pn_builder_views views = {m->param_t, m->rstat_t};
    PN_TRY(pn_model_build(&m->desc, g, &views, m->mode == PN_UNET_TRAIN, m->input, &m->logits));
    pn_graph_keep(g, m->logits);
    m->fwd_end = pn_graph_size(g);
    if (m->mode != PN_UNET_TRAIN) return PN_OK;

    m->target = activation(g, m->n, 1, m->h, m->w, "target");
    pn_graph_keep(g, m->target);
    pn_graph_no_grad(g, m->target);
    m->loss = pn_graph_activation(g, pn_tensor_vec(1), "loss");
    pn_graph_keep(g, m->loss);
    m->dlogits = activation(g, m->n, 1, m->h, m->w, "dlogits");
    pn_op_params lp = {.combo_loss_fwd = {3.0f, 1.0f, 4.0f, 1.0f}};
    pn_tensor *lo[] = {m->loss}, *bo[] = {m->dlogits}, *li[] = {m->logits, m->target};
    m->loss_fwd_node = pn_graph_size(g);
    PN_TRY(pn_graph_add(g, PN_OP_COMBO_LOSS_FWD, lp, lo, li, "combo loss"));
    m->loss_bwd_node = pn_graph_size(g);
    PN_TRY(pn_graph_add(g, PN_OP_COMBO_LOSS_BWD, lp, bo, li, "combo loss"));
    PN_TRY(pn_graph_backward(g, m->fwd_end, m->logits, m->dlogits));
    m->bwd_end = pn_graph_size(g);
    return PN_OK;
}

pn_status pn_unet_plan(pn_unet *m, int n, int h, int w, pn_unet_mode mode) {
    int mult = pn_arch_input_multiple(&m->desc.arch);
    if (n < 1 || h < mult || w < mult || h % mult || w % mult)
        return pn_error(PN_ERR_ARG,
                        "input %dx3x%dx%d: batch must be >= 1 and height and width positive multiples of %d "
                        "(the model downsamples %d times); resize or pad the image",
                        n, h, w, mult, mult == 64 ? 6 : 5);
    if (mode == PN_UNET_TRAIN && n == 1 && h == mult && w == mult)
        return pn_error(PN_ERR_ARG,
                        "training needs more than one value per BatchNorm channel: use batch >= 2 or a larger image");
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
        for (int i = 0; i < m->desc.n_bns; i++) m->bns[i].num_batches_tracked++;
    return PN_OK;
}

static pn_status need_train(pn_unet *m, const char *what) {
    if (!m->g || m->mode != PN_UNET_TRAIN)
        return pn_error(PN_ERR_ARG, "%s needs a program planned in train mode", what);
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
int pn_unet_num_params(const pn_unet *m) { return m->desc.n_params; }
pn_unet_param *pn_unet_param_at(pn_unet *m, int i) { return &m->params[i]; }
int pn_unet_num_bns(const pn_unet *m) { return m->desc.n_bns; }
pn_unet_bn *pn_unet_bn_at(pn_unet *m, int i) { return &m->bns[i]; }
pn_backend *pn_unet_backend(pn_unet *m) { return m->be; }
pn_graph *pn_unet_graph(pn_unet *m) { return m->g; }
size_t pn_unet_arena_bytes(const pn_unet *m) { return m->g ? pn_graph_arena_bytes(m->g) : 0; }
size_t pn_unet_unshared_bytes(const pn_unet *m) { return m->g ? pn_graph_unshared_bytes(m->g) : 0; }
size_t pn_unet_peak_live_bytes(const pn_unet *m) { return m->g ? pn_graph_peak_live_bytes(m->g) : 0; }

int64_t pn_unet_param_count(const pn_unet *m) {
    int64_t total = 0;
    for (int i = 0; i < m->desc.n_params; i++) total += pn_tensor_numel(&m->params[i].value);
    return total;
}
