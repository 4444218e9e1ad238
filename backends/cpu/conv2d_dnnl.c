/* cpu conv2d through oneDNN 2.6: one primitive per node built in prepare with format_tag_any, plus the
 * reorders between the node's tensors and the layouts the primitive chose (none when they match).
 * Reordered copies and the primitive's scratchpad live in the node's work area (its spare arena region, else the
 * backend's shared scratch area); an int8 convolution keeps its s8 weights and scales in memory of its own.
 * Inference fusion: an in-place BATCHNORM_INFER_FWD, RELU_FWD or ADD prepared right after a forward conv on
 * its output joins the conv: BN is folded into the weights and bias, ReLU and the residual add become
 * oneDNN post-ops, and the joined nodes' compute only checks that they run in the same order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv2d.h"

/* One primitive argument: the node's tensor, its plain memory, and the primitive's memory if different. */
typedef struct dnnl_arg_map {
    int arg;
    const pn_tensor *t; /* NULL: the plain data is at work + user_off (folded weights and bias) */
    size_t user_off;
    bool is_out;
    dnnl_memory_t user, prim; /* prim == user when no reorder is needed */
    dnnl_primitive_t reorder; /* user -> prim for inputs, prim -> user (+= when accumulating) for outputs */
    dnnl_memory_t scales;     /* non-NULL: the reorder multiplies output channel o by scales[o] (folded BN, int8) */
    size_t scales_off;        /* where those scales are in the node's work area */
    size_t off;               /* prim's offset in the node's work area */
} dnnl_arg_map;

/* An offset into the state's kept area (conv_state.keep) instead of the node's work area. */
#define KEPT ((size_t)1 << 62)

/* What an inference conv has absorbed from the nodes after it. */
typedef struct conv_fuse {
    const pn_tensor *gamma, *beta, *mean, *var; /* a folded BatchNorm (gamma NULL: none) */
    float eps;
    int n_post;
    struct {
        const pn_tensor *addend; /* NULL: ReLU, else y += addend */
    } post[4];
} conv_fuse;

typedef struct conv_state {
    pn_node *node;
    pn_conv_dims d;
    conv_fuse f;
    dnnl_primitive_t prim;
    dnnl_primitive_desc_t pd; /* until the first run makes prim from it: fusion and int8 links rebuild a convolution
                                 several times while the graph is prepared, and only the last build runs */
    dnnl_arg_map a[8];
    int na;
    dnnl_memory_t scratch;
    size_t scratch_off;
    bool work_spare; /* the node's work area (the offsets above and below) is its spare arena region (pn_node), else
                        ctx->work */
    size_t fold_w_off, fold_b_off; /* folded weights (the weight tensor's layout) and bias in the work area */
    size_t scales_off;             /* BN scales per output channel in the work area */
    bool fold_in_reorder;          /* the weight reorder applies the scales: no separate folded copy */
    dnnl_alg_kind_t alg;           /* direct or Winograd */
    bool int8;                     /* u8/s8 input, s8 weights, float32 output (see conv2d_int8.c) */
    float q_lo, q_hi;              /* int8: the input's calibrated range */
    size_t bn_off, src_scale_off, oscale_off; /* int8: BN scales, the input's scale, output scales (kept) */
    float *q_oscale;                          /* int8: the output scales the primitive was made with */
    /* int8: the scales, the bias and the s8 weights in the primitive's layout stay here between forwards (offsets
     * marked KEPT), made again only when a buffer they come from has a new version (pn_buffer.version) */
    char *keep;
    uint64_t kept_from[6]; /* the versions of the weights', bias' and BatchNorm parameters' buffers they came from */
    bool kept_valid;
    /* int8 chains (link_quantized): q_out is not undef when the output's only reader is the next int8 convolution,
     * which then takes it as stored here: quantized to q_out with that convolution's input scale q_out_scale, in
     * the layout both primitives use (nhwc), inside the output tensor's memory; q_from is set in that reader */
    dnnl_data_type_t q_out;
    float q_out_scale;
    const pn_node *q_from, *q_to; /* the node the input comes quantized from (a convolution, an upsample or a concat),
                                     the convolution the output goes to (q_out) */
    /* int8 with a float32 output in channel blocks: pn_cpu_int8_output moves it there from the primitive's nhwc,
     * adding own_addend and applying the ReLU after it (own_relu) on the way, instead of a oneDNN reorder and a sum
     * post-op; no_own_out: the primitive's output is not nhwc float32, so oneDNN's reorder it is; own_in_place: the
     * output is one channel block, whose layout nhwc is, so the primitive writes the tensor itself */
    bool own_out, own_relu, no_own_out, own_in_place;
    const pn_tensor *own_addend;
    const pn_tensor *sum_addend; /* Winograd's and int8's residual add: put into the destination before the conv */
    int sum_dst;                 /* the destination's argument */
    dnnl_memory_t sum_mem;       /* the addend, when the destination has another layout: reordered into it */
    dnnl_primitive_t sum_reorder;
    bool cout1; /* one output channel: conv2d_cout1.c's kernel, no primitive, no fusion */
    /* int8 Winograd (conv2d_wino8.c) runs in place of the primitive, on the primitive's input and output memory: its
     * transformed weights (made again with the kept values), its scratch in the work area, the ReLU it applies */
    bool wino8, wino8_relu;
    pn_wino8 *w8;
    size_t w8_off;
    int w8_threads; /* the threads its scratch was sized for */
} conv_state;

/* The state of a node that a conv absorbed: which conv, and its place in the chain (1, 2, ...). */
typedef struct fused_marker {
    int magic;
    pn_node *conv;
    int step;
} fused_marker;
#define FUSED_MAGIC 0x46555345

static size_t align64(size_t v) { return (v + 63) & ~(size_t)63; }

/* Where offset `off` of the state points: its kept area, or the work area of this run. */
static char *at(const conv_state *s, char *work, size_t off) {
    return off & KEPT ? s->keep + (off & ~KEPT) : work + off;
}

/* Frees the oneDNN objects of a state (not the state). */
static void conv_state_clear(conv_state *s) {
    for (int i = 0; i < s->na; i++) {
        if (s->a[i].reorder) dnnl_primitive_destroy(s->a[i].reorder);
        if (s->a[i].scales) dnnl_memory_destroy(s->a[i].scales);
        if (s->a[i].prim && s->a[i].prim != s->a[i].user) dnnl_memory_destroy(s->a[i].prim);
        if (s->a[i].user) dnnl_memory_destroy(s->a[i].user);
    }
    if (s->scratch) dnnl_memory_destroy(s->scratch);
    if (s->prim) dnnl_primitive_destroy(s->prim);
    if (s->pd) dnnl_primitive_desc_destroy(s->pd);
    s->pd = NULL;
    memset(s->a, 0, sizeof s->a);
    s->na = 0;
    s->scratch = NULL;
    s->prim = NULL;
    if (s->sum_reorder) dnnl_primitive_destroy(s->sum_reorder);
    if (s->sum_mem) dnnl_memory_destroy(s->sum_mem);
    free(s->keep);
    s->keep = NULL;
    s->kept_valid = false;
    pn_cpu_wino8_free(s->w8);
    s->w8 = NULL;
    s->wino8 = false;
    s->sum_addend = NULL;
    s->sum_reorder = NULL;
    s->sum_mem = NULL;
}

static void conv_state_free(conv_state *s) {
    if (!s) return;
    conv_state_clear(s);
    free(s->q_oscale);
    free(s);
}

/* Makes a reorder from `src` to `dst`; with `accumulate` it adds into dst (sum post-op); with scale_mask >= 0
 * it multiplies by per-channel scales given at run time (DNNL_ARG_ATTR_OUTPUT_SCALES). */
static pn_status make_reorder(cpu_ctx *ctx, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                              bool accumulate, int scale_mask, dnnl_primitive_t *out) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success && scale_mask >= 0)
        st = dnnl_primitive_attr_set_output_scales(attr, 1, scale_mask, &DNNL_RUNTIME_F32_VAL);
    if (st == dnnl_success && accumulate) {
        st = dnnl_post_ops_create(&ops);
        if (st == dnnl_success) st = dnnl_post_ops_append_sum(ops, 1.0f);
        if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, ops);
    }
    if (st == dnnl_success) st = dnnl_reorder_primitive_desc_create(&pd, src, ctx->engine, dst, ctx->engine, attr);
    if (st == dnnl_success) st = dnnl_primitive_create(out, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st == dnnl_success ? PN_OK : pn_cpu_dnnl_check(st, "creating a reorder");
}

/* Adds argument `arg` bound to tensor t (plain layout user_md) to the state; the primitive wants prim_md.
 * Outputs that accumulate always go through a scratch copy and an adding reorder. */
static pn_status add_arg_scaled(cpu_ctx *ctx, conv_state *s, int arg, const pn_tensor *t,
                                const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *prim_md, bool is_out,
                                bool accumulate, int scale_mask, size_t scales_off, size_t *work);

static pn_status add_arg(cpu_ctx *ctx, conv_state *s, int arg, const pn_tensor *t, const dnnl_memory_desc_t *user_md,
                         const dnnl_memory_desc_t *prim_md, bool is_out, bool accumulate, size_t *work) {
    return add_arg_scaled(ctx, s, arg, t, user_md, prim_md, is_out, accumulate, -1, 0, work);
}

/* add_arg whose input reorder also scales (scale_mask >= 0: always reordered): 0 one scale (an int8 input), else one
 * per output channel (folded BN, int8 weights); the scales are read at the work area + scales_off when it runs. */
static pn_status add_arg_scaled(cpu_ctx *ctx, conv_state *s, int arg, const pn_tensor *t,
                                const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *prim_md, bool is_out,
                                bool accumulate, int scale_mask, size_t scales_off, size_t *work) {
    PN_ASSERT(s->na < 8);
    dnnl_arg_map *m = &s->a[s->na++];
    m->arg = arg;
    m->t = t;
    if (!t) m->user_off = arg == DNNL_ARG_BIAS ? s->fold_b_off : s->fold_w_off;
    m->is_out = is_out;
    DNNL_TRY(dnnl_memory_create(&m->user, user_md, ctx->engine, DNNL_MEMORY_NONE));
    if (!accumulate && scale_mask < 0 && dnnl_memory_desc_equal(user_md, prim_md)) {
        m->prim = m->user;
        return PN_OK;
    }
    DNNL_TRY(dnnl_memory_create(&m->prim, prim_md, ctx->engine, DNNL_MEMORY_NONE));
    m->off = *work;
    *work = align64(*work + dnnl_memory_desc_get_size(prim_md));
    if (is_out) return make_reorder(ctx, prim_md, user_md, accumulate, -1, &m->reorder);
    PN_TRY(make_reorder(ctx, user_md, prim_md, false, scale_mask, &m->reorder));
    if (scale_mask >= 0) {
        dnnl_dims_t n = {scale_mask == 0 ? 1 : s->d.cout};
        m->scales_off = scales_off;
        dnnl_memory_desc_t smd;
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&smd, 1, n, dnnl_f32, dnnl_x));
        DNNL_TRY(dnnl_memory_create(&m->scales, &smd, ctx->engine, DNNL_MEMORY_NONE));
    }
    return PN_OK;
}

typedef struct conv_mds {
    dnnl_memory_desc_t src, wei, bias, dst;       /* plain: nchw, (g)oihw, x */
    dnnl_memory_desc_t any_src, any_wei, any_dst; /* format_tag_any */
    dnnl_dims_t strides, pad;
    bool src_blocked, dst_blocked; /* the tensors are stored channel-blocked (nChw16c / nChw8c) */
    bool wino_ok;                  /* a 3x3 stride-1 convolution, the shapes Winograd F(4x4, 3x3) applies to */
    bool int8, int8_signed;        /* an int8 forward convolution, with an s8 (else u8) input */
    const float *int8_oscale;      /* its output scales, one per output channel */
} conv_mds;

/* The md of an activation stored with channel block b (1 = nchw). */
static pn_status act_md(dnnl_memory_desc_t *md, const dnnl_dims_t dims, int64_t b) {
    dnnl_format_tag_t tag = b == 16 ? dnnl_aBcd16b : b == 8 ? dnnl_aBcd8b : dnnl_nchw;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag));
    return PN_OK;
}

/* The md of the weights as the backend stores them: (Cout, Cin/g, k, k) with channel block b on dim 1;
 * for groups, the same bytes seen as (g, Cout/g, Cin/g, k, k). */
static pn_status weight_md(dnnl_memory_desc_t *md, const pn_conv_dims *d, int64_t b) {
    if (d->groups == 1) {
        dnnl_dims_t wei = {d->cout, d->cin_g, d->k, d->k};
        return act_md(md, wei, b);
    }
    dnnl_dims_t gwei = {d->groups, d->cout_g, d->cin_g, d->k, d->k};
    DNNL_TRY(dnnl_memory_desc_init_by_tag(md, 5, gwei, dnnl_f32, dnnl_goihw));
    if (b > 1) { /* the input-channel dim is blocked by b: strides of (g, o, i/b, h, w), inner block b on dim 2 */
        dnnl_blocking_desc_t *bd = &md->format_desc.blocking;
        int64_t kk = d->k * d->k;
        bd->strides[4] = b;
        bd->strides[3] = d->k * b;
        bd->strides[2] = kk * b;
        bd->strides[1] = d->cin_g * kk;
        bd->strides[0] = d->cout_g * d->cin_g * kk;
        bd->inner_nblks = 1;
        bd->inner_blks[0] = b;
        bd->inner_idxs[0] = 2;
    }
    return PN_OK;
}

static pn_status init_mds(cpu_ctx *ctx, const pn_node *node, const pn_conv_dims *d, conv_mds *m) {
    dnnl_dims_t src = {d->n, d->cin, d->h, d->w}, dst = {d->n, d->cout, d->oh, d->ow}, bias = {d->cout};
    dnnl_dims_t wei = {d->cout, d->cin_g, d->k, d->k}, gwei = {d->groups, d->cout_g, d->cin_g, d->k, d->k};
    const pn_tensor *tx = node->op == PN_OP_CONV2D_BWD_DATA ? node->out[0]
                          : node->op == PN_OP_CONV2D_FWD    ? node->in[0]
                                                            : node->in[1];
    const pn_tensor *ty = node->op == PN_OP_CONV2D_FWD ? node->out[0] : node->in[0];
    const pn_tensor *tw = node->op == PN_OP_CONV2D_BWD_WEIGHTS ? node->out[0] : node->in[1];
    bool grouped = d->groups > 1;
    m->src_blocked = cpu_blk(ctx, tx) > 1, m->dst_blocked = cpu_blk(ctx, ty) > 1;
    PN_TRY(act_md(&m->src, src, cpu_blk(ctx, tx)));
    PN_TRY(act_md(&m->dst, dst, cpu_blk(ctx, ty)));
    PN_TRY(weight_md(&m->wei, d, cpu_blk(ctx, tw)));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->bias, 1, bias, dnnl_f32, dnnl_x));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->any_src, 4, src, dnnl_f32, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->any_dst, 4, dst, dnnl_f32, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->any_wei, grouped ? 5 : 4, grouped ? gwei : wei, dnnl_f32,
                                          dnnl_format_tag_any));
    m->strides[0] = m->strides[1] = d->stride;
    m->pad[0] = m->pad[1] = d->pad;
    m->wino_ok = d->k == 3 && d->stride == 1 && d->groups == 1;
    return PN_OK;
}

/* The post-op chain of a fused conv: ReLU as eltwise, residual adds as binary add on the addend's layout, or as a
 * sum into the destination (`sum`: Winograd, which has no binary post-op; run copies the addend there first). */
static dnnl_status_t set_post_ops(cpu_ctx *ctx, dnnl_primitive_attr_t attr, const conv_fuse *f, bool sum) {
    if (f->n_post == 0) return dnnl_success;
    dnnl_post_ops_t ops = NULL;
    dnnl_status_t st = dnnl_post_ops_create(&ops);
    for (int i = 0; i < f->n_post && st == dnnl_success; i++) {
        const pn_tensor *t = f->post[i].addend;
        if (!t) {
            st = dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
            continue;
        }
        if (sum) {
            st = dnnl_post_ops_append_sum(ops, 1.0f);
            continue;
        }
        dnnl_dims_t dims = {t->shape[0], t->shape[1], t->shape[2], t->shape[3]};
        dnnl_memory_desc_t md;
        int64_t b = cpu_blk(ctx, t);
        st = dnnl_memory_desc_init_by_tag(&md, 4, dims, dnnl_f32,
                                          b == 16  ? dnnl_aBcd16b
                                          : b == 8 ? dnnl_aBcd8b
                                                   : dnnl_nchw);
        if (st == dnnl_success) st = dnnl_post_ops_append_binary(ops, dnnl_binary_add, &md);
    }
    if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, ops);
    if (ops) dnnl_post_ops_destroy(ops);
    return st;
}

/* One primitive descriptor with algorithm `alg`. oneDNN 2.6's Winograd exists only as forward_training (it then
 * also serves inference) and takes ReLU and sum post-ops but no binary add; its int8 kernels leave a binary add on
 * an addend in another layout to the reference kernel: for both, a residual add becomes a sum into a destination
 * that holds the addend (see build and run). */
static pn_status make_pd_layout(cpu_ctx *ctx, pn_op op, conv_mds *m, bool bias, const conv_fuse *f, dnnl_alg_kind_t alg,
                                int blocked, dnnl_primitive_desc_t *pd) {
    dnnl_convolution_desc_t fwd_desc, desc;
    dnnl_primitive_desc_t hint = NULL;
    dnnl_primitive_attr_t attr = NULL;
    bool inference = (f->gamma || f->n_post || m->int8) && alg != dnnl_convolution_winograd;
    /* blocked (bit 0: src, bit 1: dst): that activation in the tensor's own channel-blocked layout (no reorder), else
     * the primitive's choice */
    dnnl_memory_desc_t src = (blocked & 1) ? m->src : m->any_src;
    dnnl_memory_desc_t dst = (blocked & 2) ? m->dst : m->any_dst, wei = m->any_wei;
    if (m->int8) src.data_type = m->int8_signed ? dnnl_s8 : dnnl_u8, wei.data_type = dnnl_s8;
    DNNL_TRY(dnnl_convolution_forward_desc_init(&fwd_desc, inference ? dnnl_forward_inference : dnnl_forward_training,
                                                alg, &src, &wei, bias ? &m->bias : NULL, &dst, m->strides, m->pad,
                                                m->pad));
    DNNL_TRY(dnnl_primitive_attr_create(&attr));
    dnnl_status_t st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success && m->int8) /* per output channel (dim 1), given at run time */
        st = dnnl_primitive_attr_set_output_scales(attr, m->any_dst.dims[1], 1 << 1, m->int8_oscale);
    if (st == dnnl_success && op == PN_OP_CONV2D_FWD)
        st = set_post_ops(ctx, attr, f, alg == dnnl_convolution_winograd || m->int8);
    if (st == dnnl_success && op == PN_OP_CONV2D_FWD) {
        st = dnnl_primitive_desc_create(pd, &fwd_desc, attr, ctx->engine, NULL);
    } else if (st == dnnl_success) {
        st = dnnl_primitive_desc_create(&hint, &fwd_desc, NULL, ctx->engine, NULL);
        if (st == dnnl_success && op == PN_OP_CONV2D_BWD_DATA)
            st = dnnl_convolution_backward_data_desc_init(&desc, alg, &src, &m->any_wei, &dst, m->strides, m->pad,
                                                          m->pad);
        else if (st == dnnl_success)
            st = dnnl_convolution_backward_weights_desc_init(&desc, alg, &src, &m->any_wei, bias ? &m->bias : NULL,
                                                             &dst, m->strides, m->pad, m->pad);
        if (st == dnnl_success) st = dnnl_primitive_desc_create(pd, &desc, attr, ctx->engine, hint);
    }
    if (hint) dnnl_primitive_desc_destroy(hint);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success && alg == dnnl_convolution_winograd)
        return pn_error(PN_ERR_UNSUPPORTED,
                        "oneDNN has no Winograd convolution for this shape on this CPU (status %d; "
                        "oneDNN 2.6 implements it for AVX-512 only)",
                        (int)st);
    return st == dnnl_success ? PN_OK : pn_cpu_dnnl_check(st, "creating a convolution primitive descriptor");
}

/* Whether a primitive descriptor is oneDNN's reference (unoptimised) kernel. */
static bool is_reference(dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl) return false;
    return strncmp(impl, "ref", 3) == 0;
}

/* make_pd_layout, first with the activations in the tensors' own blocked layout: on AVX-512, oneDNN 2.6 given
 * format_tag_any picks brgconv kernels on nhwc for most shapes, and reordering every input and output between nChw16c
 * and nhwc costs time and scratch memory. Falls back to the primitive's own choice where no optimised kernel takes
 * the blocked layout (or PN_CPU_CONV_LAYOUT=any asks for it). */
static pn_status make_pd_alg(cpu_ctx *ctx, pn_op op, conv_mds *m, bool bias, const conv_fuse *f, dnnl_alg_kind_t alg,
                             dnnl_primitive_desc_t *pd) {
    int have = (m->src_blocked ? 1 : 0) | (m->dst_blocked ? 2 : 0);
    static const int tries[] = {3, 1, 2}; /* both activations as stored, then one of them */
    for (int i = 0; ctx->conv_blocked && i < 3; i++) {
        if ((tries[i] & have) != tries[i]) continue;
        if (make_pd_layout(ctx, op, m, bias, f, alg, tries[i], pd) == PN_OK) {
            if (!is_reference(*pd)) return PN_OK;
            dnnl_primitive_desc_destroy(*pd);
            *pd = NULL;
        }
    }
    return make_pd_layout(ctx, op, m, bias, f, alg, 0, pd);
}

/* auto's memory rule: Winograd only where its scratchpad fits in the node's spare arena region (free while the node
 * runs, so it costs nothing) or is no larger than the convolution's own input and output. oneDNN 2.6's F(4x4, 3x3)
 * keeps the transformed weights and tiles there: up to 4-45x the activations on the encoder's deep layers and the
 * decoder's wide ones; direct needs next to none. */
static bool wino_scratch_fits(dnnl_primitive_desc_t pd, const pn_node *node, const pn_conv_dims *d) {
    size_t scratch = pn_cpu_scratchpad_bytes(pd) + pn_tensor_bytes(node->in[1]); /* and a folded copy of the weights */
    size_t acts = (size_t)(d->n * (d->cin * d->h * d->w + d->cout * d->oh * d->ow)) * sizeof(float);
    return scratch <= node->spare_bytes || scratch <= acts;
}

/* Whether Winograd serves this node: never for shapes it does not apply to or with --conv-algo direct; always where
 * oneDNN has it with --conv-algo winograd; with auto, when it ran faster than direct on this shape (measured once
 * per shape, without the fused post-ops, on the graph's arena while it is empty). */
static pn_status pick_winograd(cpu_ctx *ctx, const pn_node *node, conv_mds *m, bool bias, const pn_conv_dims *d,
                               bool *wino) {
    pn_op op = node->op;
    *wino = m->wino_ok && !m->int8 && ctx->conv_algo != PN_CPU_CONV_DIRECT;
    if (!*wino || ctx->conv_algo == PN_CPU_CONV_WINOGRAD) return PN_OK;
    int choice = pn_cpu_conv_algo_cached(ctx, (int)op, d);
    if (choice < 0) {
        const conv_fuse plain = {0};
        dnnl_primitive_desc_t pd[2] = {NULL, NULL};
        pn_status st = make_pd_alg(ctx, op, m, bias, &plain, dnnl_convolution_direct, &pd[0]);
        bool fits = false;
        if (st == PN_OK && make_pd_alg(ctx, op, m, bias, &plain, dnnl_convolution_winograd, &pd[1]) != PN_OK)
            st = pn_cpu_conv_algo_record(ctx, (int)op, d, 0, 0, 0); /* no Winograd here: direct, nothing to time */
        else if (st == PN_OK && (fits = wino_scratch_fits(pd[1], node, d)))
            st = pn_cpu_conv_algo_measure(ctx, node, d, pd[0], pd[1]);
        for (int i = 0; i < 2; i++)
            if (pd[i]) dnnl_primitive_desc_destroy(pd[i]);
        PN_TRY(st);
        choice = pn_cpu_conv_algo_cached(ctx, (int)op, d);
        if (choice < 0 && !fits)
            choice = 0; /* Winograd's memory does not fit at this node: nothing to time here (a
                            node of this shape with more room measures it) */
    }
    *wino = choice == 1;
    return PN_OK;
}

static pn_status make_pd(cpu_ctx *ctx, const pn_node *node, conv_mds *m, bool bias, const conv_fuse *f,
                         const pn_conv_dims *d, dnnl_alg_kind_t *alg, dnnl_primitive_desc_t *pd) {
    bool wino;
    pn_op op = node->op;
    PN_TRY(pick_winograd(ctx, node, m, bias, d, &wino));
    *alg = dnnl_convolution_winograd;
    if (wino && make_pd_alg(ctx, op, m, bias, f, *alg, pd) == PN_OK) {
        if (ctx->conv_algo != PN_CPU_CONV_AUTO || wino_scratch_fits(*pd, node, d)) return PN_OK;
        dnnl_primitive_desc_destroy(*pd);
        *pd = NULL;
    }
    *alg = dnnl_convolution_direct; /* also where Winograd lacks a fused post-op or a layout */
    return make_pd_alg(ctx, op, m, bias, f, *alg, pd);
}

static const dnnl_memory_desc_t *query(dnnl_primitive_desc_t pd, dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

static pn_status int8_values(const conv_state *s, float *v, float *src_scale);

/* Whether a memory descriptor is a plain nhwc activation of data type `dt`. */
static bool is_nhwc(const dnnl_memory_desc_t *md, dnnl_data_type_t dt) {
    dnnl_memory_desc_t nhwc;
    return md && md->ndims == 4 && dnnl_memory_desc_init_by_tag(&nhwc, 4, md->dims, dt, dnnl_acdb) == dnnl_success &&
           dnnl_memory_desc_equal(md, &nhwc);
}

/* Whether our int8 Winograd is the faster on these sizes (measured layer by layer in bench/README: from 128 input and
 * 64 output channels; with fewer, the tile transforms cost about what the products save). */
static bool wino8_pays(const pn_conv_dims *d) { return d->cin >= 128 && d->cout >= 64; }

/* Whether int8 convolution `s` (primitive `pd`, doing `fp` after it) runs as our int8 Winograd: VNNI as oneDNN sees
 * it too (ONEDNN_MAX_CPU_ISA caps both), a 3x3 stride-1 shape it pays on, a u8 nhwc input, an nhwc output of float32
 * (for pn_cpu_int8_output) or of the next convolution's type, and nothing but a ReLU after it. */
static bool wino8_suits(const cpu_ctx *ctx, const conv_state *s, const conv_fuse *fp, dnnl_primitive_desc_t pd) {
    if (!s->int8 || s->q_lo < 0 || ctx->conv_algo == PN_CPU_CONV_DIRECT || !pn_cpu_int8_vnni() ||
        !pn_cpu_wino8_applies(&s->d) || !wino8_pays(&s->d))
        return false;
    for (int i = 0; i < fp->n_post; i++)
        if (fp->post[i].addend) return false;
    return is_nhwc(query(pd, dnnl_query_src_md), dnnl_u8) &&
           is_nhwc(query(pd, dnnl_query_dst_md), s->q_out ? s->q_out : dnnl_f32);
}

static pn_status build(cpu_ctx *ctx, pn_node *node, const pn_conv_dims *d, conv_state *s) {
    conv_mds m;
    PN_TRY(init_mds(ctx, node, d, &m));
    /* an input below 0 needs s8, whose oneDNN kernels without VNNI change the weights on their own: float32 there */
    s->int8 = node->op == PN_OP_CONV2D_FWD && d->groups == 1 &&
              pn_cpu_int8_find(ctx, node->label, &s->q_lo, &s->q_hi) && (s->q_lo >= 0 || pn_cpu_int8_vnni());
    m.int8 = s->int8;
    s->cout1 = !s->int8 && pn_cpu_conv_cout1_applies(ctx, node, d);
    if (s->cout1) return PN_OK; /* no primitive: conv2d_cout1.c */
    m.int8_signed = s->q_lo < 0;
    float *oscale = NULL; /* int8: the primitive's output scales, until it is made */
    if (s->int8) {        /* the output scales are part of the primitive */
        float *v = malloc((size_t)(4 * d->cout) * sizeof *v), src_scale;
        free(s->q_oscale);
        s->q_oscale = malloc((size_t)d->cout * sizeof *s->q_oscale);
        if (!v || !s->q_oscale) {
            free(v);
            return pn_error(PN_ERR_NOMEM, "out of memory preparing an int8 convolution");
        }
        pn_status made = int8_values(s, v, &src_scale);
        if (made != PN_OK) {
            free(v);
            return made;
        }
        memcpy(s->q_oscale, v + 2 * d->cout, (size_t)d->cout * sizeof *v);
        m.int8_oscale = s->q_oscale;
        if (s->q_out) { /* quantized for the next convolution: its input scale joins the output scales */
            for (int64_t o = 0; o < d->cout; o++) v[o] = s->q_oscale[o] * s->q_out_scale;
            m.int8_oscale = v;
            m.any_dst.data_type = s->q_out;
            m.dst_blocked = false;
        }
        m.src_blocked = m.src_blocked && !s->q_from;
        oscale = v;
    }
    conv_fuse fp = s->f; /* what the primitive does of the fused chain */
    s->own_out = s->int8 && !s->q_out && !s->no_own_out && cpu_blk(ctx, node->out[0]) > 1;
    s->own_in_place = s->own_out && d->cout == cpu_blk(ctx, node->out[0]);
    s->own_addend = NULL, s->own_relu = false;
    for (int i = 0; s->own_out && i < fp.n_post; i++)
        if (fp.post[i].addend) { /* the residual add and what follows it: pn_cpu_int8_output */
            s->own_addend = fp.post[i].addend;
            s->own_relu = i + 1 < fp.n_post;
            fp.n_post = i;
        }
    bool folded = s->f.gamma != NULL;
    bool bias = node->op == PN_OP_CONV2D_FWD           ? (node->in[2] != NULL || folded || s->int8)
                : node->op == PN_OP_CONV2D_BWD_WEIGHTS ? node->out[1] != NULL
                                                       : false;
    dnnl_primitive_desc_t pd = NULL;
    pn_status made = make_pd(ctx, node, &m, bias, &fp, d, &s->alg, &pd);
    free(oscale);
    PN_TRY(made);
    if (s->own_out && !is_nhwc(query(pd, dnnl_query_dst_md), dnnl_f32)) {
        dnnl_primitive_desc_destroy(pd);
        s->no_own_out = true;
        return build(ctx, node, d, s);
    }
    size_t work = 0, keep = 0;
    pn_status st = PN_OK;
    s->wino8 = wino8_suits(ctx, s, &fp, pd);
    s->wino8_relu = s->wino8 && fp.n_post > 0;
    if (s->wino8) {
        s->w8_off = work;
        s->w8_threads = ctx->threads > 0 ? ctx->threads : 1;
        work = align64(work + pn_cpu_wino8_scratch_bytes(d->cin, d->n, d->h, d->w, s->w8_threads));
    }
    if (s->int8) { /* kept: bias (accumulator scale), weight scales, output scales, BN scales; the input's scale */
        size_t c = (size_t)d->cout * sizeof(float);
        s->fold_b_off = KEPT, s->scales_off = KEPT | c, s->oscale_off = KEPT | 2 * c, s->bn_off = KEPT | 3 * c;
        s->src_scale_off = KEPT | align64(4 * c);
        keep = align64(align64(4 * c) + sizeof(float));
    } else if (folded) {
        s->fold_b_off = work;
        work = align64(work + (size_t)d->cout * sizeof(float));
        s->scales_off = work;
        work = align64(work + (size_t)d->cout * sizeof(float));
        if (!s->fold_in_reorder) {
            s->fold_w_off = work;
            work = align64(work + pn_tensor_bytes(node->in[1]));
        }
    }
    if (node->op == PN_OP_CONV2D_FWD) {
        bool in_reorder = s->int8 || (folded && s->fold_in_reorder);
        const pn_tensor *wt = folded && !in_reorder ? NULL : node->in[1], *bt = folded || s->int8 ? NULL : node->in[2];
        int mask = in_reorder ? (d->groups > 1 ? 3 : 1) : -1;
        const dnnl_memory_desc_t *src_md = query(pd, dnnl_query_src_md), *dst_md = query(pd, dnnl_query_dst_md);
        st = add_arg_scaled(ctx, s, DNNL_ARG_SRC, node->in[0], s->q_from ? src_md : &m.src, src_md, false, false,
                            s->int8 && !s->q_from ? 0 : -1, s->src_scale_off, &work);
        if (!st)
            st = add_arg_scaled(ctx, s, DNNL_ARG_WEIGHTS, wt, &m.wei, query(pd, dnnl_query_weights_md), false, false,
                                mask, s->scales_off, s->int8 ? &keep : &work);
        if (!st && s->int8) s->a[s->na - 1].off |= KEPT; /* the s8 weights */
        if (!st && bias) st = add_arg(ctx, s, DNNL_ARG_BIAS, bt, &m.bias, &m.bias, false, false, &work);
        if (!st)
            st = add_arg(ctx, s, DNNL_ARG_DST, node->out[0], s->q_out || s->own_in_place ? dst_md : &m.dst, dst_md,
                         true, false, &work);
        for (int i = 0; i < fp.n_post && !st; i++) {
            const pn_tensor *t = fp.post[i].addend;
            if (!t) continue;
            if (s->alg == dnnl_convolution_winograd || s->int8) { /* a sum post-op: run puts t into the destination */
                s->sum_addend = t;
                s->sum_dst = s->na - 1;
                const dnnl_arg_map *dm = &s->a[s->sum_dst];
                if (!dm->reorder) continue; /* the destination is the output tensor: a copy */
                dnnl_memory_desc_t amd;
                dnnl_dims_t dims = {t->shape[0], t->shape[1], t->shape[2], t->shape[3]};
                PN_TRY(act_md(&amd, dims, cpu_blk(ctx, t)));
                DNNL_TRY(dnnl_memory_create(&s->sum_mem, &amd, ctx->engine, DNNL_MEMORY_NONE));
                st = make_reorder(ctx, &amd, query(pd, dnnl_query_dst_md), false, -1, &s->sum_reorder);
                continue;
            }
            dnnl_memory_desc_t amd;
            dnnl_dims_t dims = {t->shape[0], t->shape[1], t->shape[2], t->shape[3]};
            PN_TRY(act_md(&amd, dims, cpu_blk(ctx, t)));
            st =
                add_arg(ctx, s, DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1, t, &amd, &amd, false, false, &work);
        }
    } else if (node->op == PN_OP_CONV2D_BWD_DATA) {
        st = add_arg(ctx, s, DNNL_ARG_DIFF_DST, node->in[0], &m.dst, query(pd, dnnl_query_diff_dst_md), false, false,
                     &work);
        if (!st)
            st = add_arg(ctx, s, DNNL_ARG_WEIGHTS, node->in[1], &m.wei, query(pd, dnnl_query_weights_md), false, false,
                         &work);
        if (!st)
            st = add_arg(ctx, s, DNNL_ARG_DIFF_SRC, node->out[0], &m.src, query(pd, dnnl_query_diff_src_md), true,
                         false, &work);
    } else {
        st = add_arg(ctx, s, DNNL_ARG_DIFF_DST, node->in[0], &m.dst, query(pd, dnnl_query_diff_dst_md), false, false,
                     &work);
        if (!st)
            st = add_arg(ctx, s, DNNL_ARG_SRC, node->in[1], &m.src, query(pd, dnnl_query_src_md), false, false, &work);
        if (!st)
            st = add_arg(ctx, s, DNNL_ARG_DIFF_WEIGHTS, node->out[0], &m.wei, query(pd, dnnl_query_diff_weights_md),
                         true, true, &work);
        if (!st && bias) st = add_arg(ctx, s, DNNL_ARG_DIFF_BIAS, node->out[1], &m.bias, &m.bias, true, true, &work);
    }
    const dnnl_memory_desc_t *smd = query(pd, dnnl_query_scratchpad_md);
    size_t scratch = pn_cpu_scratchpad_bytes(pd);
    if (!st && scratch > 0) {
        s->scratch_off = work;
        work = align64(work + scratch);
        if (dnnl_memory_create(&s->scratch, smd, ctx->engine, DNNL_MEMORY_NONE) != dnnl_success)
            st = pn_error(PN_ERR_BACKEND, "oneDNN: could not create the scratchpad memory");
    }
    if (!st)
        s->pd = pd;
    else
        dnnl_primitive_desc_destroy(pd);
    if (!st && keep > 0 && !(s->keep = malloc(keep)))
        st = pn_error(PN_ERR_NOMEM, "out of memory for an int8 convolution's weights");
    s->work_spare = node->spare_buf && node->spare_buf->host && work <= node->spare_bytes;
    if (!st && !s->work_spare) st = pn_cpu_work_reserve(ctx, work);
    return st;
}

/* The primitive memory of a state's argument `arg`. */
static const dnnl_memory_desc_t *arg_md(const conv_state *s, int arg) {
    const dnnl_memory_desc_t *md = NULL;
    for (int i = 0; i < s->na; i++)
        if (s->a[i].arg == arg && dnnl_memory_get_memory_desc(s->a[i].prim, &md) == dnnl_success) return md;
    return NULL;
}

/* Whether the output of int8 chain link `prev` is stored as `s` reads its input (same type, layout and size). */
static bool link_agrees(const pn_node *prev, const conv_state *s) {
    const conv_state *p = prev->state;
    const dnnl_memory_desc_t *out = arg_md(p, DNNL_ARG_DST), *in = arg_md(s, DNNL_ARG_SRC);
    return out && in && dnnl_memory_desc_equal(out, in) &&
           dnnl_memory_desc_get_size(out) <= pn_tensor_bytes(prev->out[0]);
}

/* Whether the state's input is an 8-bit nhwc tensor of the input's shape, as a linked upsample or concat writes it. */
static bool src_is_nhwc_int8(const pn_node *node, const conv_state *s) {
    const dnnl_memory_desc_t *in = arg_md(s, DNNL_ARG_SRC);
    return is_nhwc(in, s->q_lo < 0 ? dnnl_s8 : dnnl_u8) &&
           dnnl_memory_desc_get_size(in) <= pn_tensor_bytes(node->in[0]);
}

/* Whether a state whose input comes quantized reads what the node before it writes. */
static bool input_link_agrees(const pn_node *node, const conv_state *s) {
    return s->q_from->op != PN_OP_CONV2D_FWD ? src_is_nhwc_int8(node, s) : link_agrees(s->q_from, s);
}

/* Whether both ends of the int8 chain links of a state are still prepared as linked (a node prepared again on its
 * own would write or read float32). */
static bool links_intact(const pn_node *node, const conv_state *s) {
    bool from_writer = s->q_from && s->q_from->op != PN_OP_CONV2D_FWD; /* an upsample or a concat */
    const conv_state *from = s->q_from && !from_writer ? s->q_from->state : NULL;
    const conv_state *to = s->q_out ? s->q_to->state : NULL;
    bool in_ok = !s->q_from || (from_writer ? s->q_from->state != NULL : from && from->q_out && from->q_to == node);
    return in_ok && (!s->q_out || (to && to->q_from == node));
}

/* Whether int8 convolution `prev`, whose chain of fused nodes ends right before `node`, can hand `node` its output
 * quantized: both int8, prev's output is node's input and nobody else's (no residual add in prev's chain, no later
 * reader, not kept by the graph). */
static bool can_link_quantized(const pn_node *prev, const pn_node *node) {
    const conv_state *p = prev && prev->op == PN_OP_CONV2D_FWD ? prev->state : NULL, *s = node->state;
    if (!p || !s || !p->int8 || !s->int8 || p->cout1 || p->sum_addend || p->q_out || s->q_from) return false;
    for (int i = 0; i < p->f.n_post; i++)
        if (p->f.post[i].addend) return false;
    return prev->out[0] == node->in[0] && node->in_last_use[0];
}

/* An int8 chain: `prev` writes its output in node's input type, scale and layout, so neither the float32 output
 * reorder of prev nor the quantizing input reorder of node runs. Where oneDNN's primitives do not agree on the
 * layout, both are made again as they were. */
static pn_status link_quantized(cpu_ctx *ctx, pn_node *prev, pn_node *node) {
    if (!can_link_quantized(prev, node)) return PN_OK;
    conv_state *p = prev->state, *s = node->state;
    bool is_signed;
    p->q_out = s->q_lo < 0 ? dnnl_s8 : dnnl_u8;
    p->q_out_scale = pn_cpu_int8_src_scale(s->q_lo, s->q_hi, &is_signed);
    s->q_from = prev;
    p->q_to = node;
    conv_state_clear(p);
    conv_state_clear(s);
    pn_status st = build(ctx, prev, &p->d, p);
    if (st == PN_OK) st = build(ctx, node, &s->d, s);
    if (st == PN_OK && link_agrees(prev, s)) return PN_OK;
    s->q_from = p->q_to = NULL;
    p->q_out = dnnl_data_type_undef;
    conv_state_clear(p);
    conv_state_clear(s);
    PN_TRY(build(ctx, prev, &p->d, p));
    return build(ctx, node, &s->d, s);
}

/* Whether `w`, the node prepared right before int8 convolution `node`, can write node's 8-bit nhwc input itself: an
 * upsample or a concat of inputs in channel blocks, whose output only node reads. */
static bool can_write_quantized(cpu_ctx *ctx, const pn_node *w, const pn_node *node) {
    const conv_state *s = node->state;
    if (!w || w->state || !s->int8 || s->q_from || w->out[0] != node->in[0] || !node->in_last_use[0]) return false;
    if (w->op == PN_OP_UPSAMPLE2X_FWD) return cpu_blk(ctx, w->in[0]) > 1;
    return w->op == PN_OP_CONCAT && cpu_blk(ctx, w->in[0]) > 1 && cpu_blk(ctx, w->in[1]) > 1;
}

/* An upsample or concat right before int8 convolution `node` writes node's input quantized (can_write_quantized), so
 * no float32 copy is written and quantized again. */
static pn_status link_writer(cpu_ctx *ctx, pn_node *w, pn_node *node) {
    if (!can_write_quantized(ctx, w, node)) return PN_OK;
    conv_state *s = node->state;
    bool is_signed;
    float scale = pn_cpu_int8_src_scale(s->q_lo, s->q_hi, &is_signed);
    s->q_from = w;
    conv_state_clear(s);
    pn_status st = build(ctx, node, &s->d, s);
    if (st == PN_OK && src_is_nhwc_int8(node, s)) return pn_cpu_quantized_out_set(w, node, scale, is_signed);
    s->q_from = NULL;
    conv_state_clear(s);
    return build(ctx, node, &s->d, s);
}

pn_status pn_cpu_conv2d_dnnl_prepare(cpu_ctx *ctx, pn_node *node, const pn_conv_dims *d) {
    pn_node *prev = ctx->chain; /* the convolution whose fused chain the node comes right after, if any */
    pn_cpu_conv2d_dnnl_release(node);
    ctx->chain = NULL;
    conv_state *s = calloc(1, sizeof *s);
    if (!s) return pn_error(PN_ERR_NOMEM, "out of memory preparing a convolution");
    s->node = node;
    s->d = *d;
    pn_status st = build(ctx, node, d, s);
    if (st != PN_OK) {
        conv_state_free(s);
        return st;
    }
    node->state = s;
    if (node->op != PN_OP_CONV2D_FWD) return PN_OK;
    ctx->chain = node;
    PN_TRY(link_quantized(ctx, prev, node));
    return link_writer(ctx, ctx->prev_prepared, node);
}

bool pn_cpu_conv_is_winograd(const pn_node *node) {
    const conv_state *s = node->state;
    bool conv =
        node->op == PN_OP_CONV2D_FWD || node->op == PN_OP_CONV2D_BWD_DATA || node->op == PN_OP_CONV2D_BWD_WEIGHTS;
    return conv && s && s->alg == dnnl_convolution_winograd;
}

bool pn_cpu_conv_is_int8_winograd(const pn_node *node) {
    const conv_state *s = node->op == PN_OP_CONV2D_FWD ? node->state : NULL;
    return s && s->wino8;
}

bool pn_cpu_conv_reads_quantized_from(const pn_node *conv, const pn_node *from) {
    const conv_state *s = conv->op == PN_OP_CONV2D_FWD ? conv->state : NULL;
    return s && from && s->q_from == from;
}

bool pn_cpu_conv_takes_quantized(const pn_node *node) {
    const conv_state *s = node->op == PN_OP_CONV2D_FWD ? node->state : NULL;
    return s && s->q_from;
}

void pn_cpu_conv2d_dnnl_release(pn_node *node) {
    conv_state_free(node->state);
    node->state = NULL;
}

/* ---------------- inference fusion ---------------- */

static bool same_memory(const pn_tensor *a, const pn_tensor *b) {
    return a && b && a->buf == b->buf && a->offset == b->offset && pn_tensor_same_shape(a, b);
}

/* Which fusion step `node` would be for the conv chain head `conv`, or 0 if it cannot join. */
static bool can_join(const conv_state *s, const pn_node *node) {
    const pn_tensor *y = s->node->out[0];
    const conv_fuse *f = &s->f;
    if (s->cout1 || !same_memory(node->out[0], y) || f->n_post >= 4) return false;
    switch (node->op) {
    case PN_OP_BATCHNORM_INFER_FWD: return same_memory(node->in[0], y) && !f->gamma && f->n_post == 0;
    case PN_OP_RELU_FWD: return same_memory(node->in[0], y) && (f->n_post == 0 || f->post[f->n_post - 1].addend);
    case PN_OP_ADD: {
        bool first = same_memory(node->in[0], y), second = same_memory(node->in[1], y);
        const pn_tensor *other = first ? node->in[1] : node->in[0];
        for (int i = 0; i < f->n_post; i++)
            if (f->post[i].addend) return false;
        return first != second && other->buf && !same_memory(other, y);
    }
    default: return false;
    }
}

pn_status pn_cpu_fuse_prepare(cpu_ctx *ctx, pn_node *node, bool *fused) {
    *fused = false;
    pn_node *head = ctx->chain;
    ctx->chain = NULL;
    if (!head || !head->state || !ctx->fuse) return PN_OK;
    conv_state *s = head->state;
    if (!can_join(s, node)) return PN_OK;
    fused_marker *mk = calloc(1, sizeof *mk);
    if (!mk) return pn_error(PN_ERR_NOMEM, "out of memory preparing a fused node");
    conv_fuse saved = s->f;
    if (node->op == PN_OP_BATCHNORM_INFER_FWD) {
        s->f.gamma = node->in[1], s->f.beta = node->in[2], s->f.mean = node->in[3], s->f.var = node->in[4];
        s->f.eps = node->p.batchnorm_infer_fwd.eps;
    } else if (node->op == PN_OP_RELU_FWD) {
        s->f.post[s->f.n_post++].addend = NULL;
    } else {
        s->f.post[s->f.n_post++].addend = same_memory(node->in[0], head->out[0]) ? node->in[1] : node->in[0];
    }
    conv_state_clear(s);
    if (node->op == PN_OP_BATCHNORM_INFER_FWD) s->fold_in_reorder = true;
    pn_status st = build(ctx, head, &s->d, s);
    if (st != PN_OK && node->op == PN_OP_BATCHNORM_INFER_FWD) { /* no scaling reorder: fold into a copy */
        conv_state_clear(s);
        s->fold_in_reorder = false;
        st = build(ctx, head, &s->d, s);
    }
    if (st != PN_OK) { /* this fusion is not available: rebuild without it and run the node on its own */
        free(mk);
        s->f = saved;
        conv_state_clear(s);
        return build(ctx, head, &s->d, s);
    }
    if (s->q_from && !input_link_agrees(head, s)) {
        free(mk);
        return pn_error(PN_ERR_BACKEND, "%s: its int8 input layout changed when %s joined it",
                        head->label ? head->label : "conv", pn_op_name(node->op));
    }
    int steps = (s->f.gamma ? 1 : 0) + s->f.n_post;
    mk->magic = FUSED_MAGIC;
    mk->conv = head;
    mk->step = steps;
    node->state = mk;
    *fused = true;
    ctx->chain = head;
    return PN_OK;
}

bool pn_cpu_fused_node(const pn_node *node) {
    const fused_marker *mk = node->state;
    return mk && mk->magic == FUSED_MAGIC;
}

pn_status pn_cpu_fused_compute(cpu_ctx *ctx, pn_node *node) {
    fused_marker *mk = node->state;
    if (ctx->ran_conv != mk->conv || ctx->ran_step + 1 != mk->step)
        return pn_error(PN_ERR_BACKEND,
                        "%s %s: this node was fused into the convolution before it, which must run "
                        "immediately before it",
                        pn_op_name(node->op), node->label ? node->label : "");
    ctx->ran_step++;
    return PN_OK;
}

void pn_cpu_fused_release(pn_node *node) {
    free(node->state);
    node->state = NULL;
}

/* Folded BatchNorm: w' = w * s and b' = b * s + beta - mean * s per output channel, s = gamma / sqrt(var + eps),
 * written to the scratch area (the weights keep their own layout: each output channel is one run). */
/* BatchNorm folded into output channel o: scale sc[o] = gamma / sqrt(var + eps) and bias fb[o] = b * sc + beta -
 * mean * sc (no BatchNorm: sc = 1, fb = b). */
static void bn_fold_values(const conv_state *s, float *sc, float *fb) {
    const conv_fuse *f = &s->f;
    const float *b = cpu_ptr(s->node->in[2]);
    const float *gamma = cpu_ptr(f->gamma), *beta = cpu_ptr(f->beta), *mean = cpu_ptr(f->mean), *var = cpu_ptr(f->var);
    for (int64_t o = 0; o < s->d.cout; o++) {
        double scale = gamma ? gamma[o] / sqrt((double)var[o] + f->eps) : 1.0;
        sc[o] = (float)scale;
        fb[o] = (float)((b ? b[o] : 0.0) * scale + (gamma ? beta[o] - mean[o] * scale : 0.0));
    }
}

/* Folded BatchNorm: w' = w * s and b' = b * s + beta - mean * s per output channel, s = gamma / sqrt(var + eps),
 * written to the scratch area (the weights keep their own layout: each output channel is one run). */
static void fold_bn(char *work, conv_state *s) {
    const float *w = cpu_ptr(s->node->in[1]);
    float *fb = (float *)(work + s->fold_b_off), *sc = (float *)(work + s->scales_off);
    int64_t cout = s->d.cout, per = s->d.cin_g * s->d.k * s->d.k;
    bn_fold_values(s, sc, fb);
    if (s->fold_in_reorder) return; /* the weight reorder multiplies by sc */
    float *fw = (float *)(work + s->fold_w_off);
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < cout; o++)
        for (int64_t i = 0; i < per; i++) fw[o * per + i] = w[o * per + i] * sc[o];
}

/* int8 from the current weights and BN statistics: the input's scale, the weights' per-channel reorder scales (BN
 * folded in), the output scales and the bias in the accumulator's scale; `v` holds 4 x cout floats (bias, weight
 * scales, output scales, BN scales). */
static pn_status int8_values(const conv_state *s, float *v, float *src_scale) {
    int64_t c = s->d.cout;
    bool is_signed;
    bn_fold_values(s, v + 3 * c, v);
    *src_scale = pn_cpu_int8_src_scale(s->q_lo, s->q_hi, &is_signed);
    if (!pn_cpu_int8_scales(cpu_ptr(s->node->in[1]), c, s->d.cin_g * s->d.k * s->d.k, v + 3 * c, *src_scale, v + c,
                            v + 2 * c, v))
        return pn_error(PN_ERR_NUMERIC,
                        "%s: its weights or BatchNorm statistics hold NaN or infinity; int8 has no scale for them",
                        s->node->label ? s->node->label : "conv");
    return PN_OK;
}

/* Per forward: the values into the scratch area. oneDNN 2.6's int8 convolutions take their output scales when they
 * are created, so weights or statistics that changed since then are an error (plan the model again). */
static pn_status int8_prepare(char *work, conv_state *s) {
    float *v = (float *)at(s, work, s->fold_b_off);
    PN_TRY(int8_values(s, v, (float *)at(s, work, s->src_scale_off)));
    if (memcmp(v + 2 * s->d.cout, s->q_oscale, (size_t)s->d.cout * sizeof *v) != 0)
        return pn_error(PN_ERR_ARG,
                        "%s: the weights or BatchNorm statistics of this int8 convolution changed after "
                        "the model was planned; plan it again",
                        s->node->label ? s->node->label : "conv");
    return PN_OK;
}

/* The versions of the buffers an int8 convolution's kept values come from (0: no such input). */
static void kept_sources(const conv_state *s, uint64_t v[6]) {
    const pn_tensor *t[6] = {s->node->in[1], s->node->in[2], s->f.gamma, s->f.beta, s->f.mean, s->f.var};
    for (int i = 0; i < 6; i++) v[i] = t[i] && t[i]->buf ? t[i]->buf->version : 0;
}

/* Whether the kept int8 values and weights were made from what the inputs hold now. */
static bool kept_current(const conv_state *s) {
    uint64_t v[6];
    kept_sources(s, v);
    return s->kept_valid && memcmp(v, s->kept_from, sizeof v) == 0;
}

static void copy_floats(float *dst, const float *src, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) dst[i] = src[i];
}

/* The int8 Winograd weights from the current weights and BatchNorm (the float bias and BN scales, the input's scale).
 */
static pn_status wino8_weights(const cpu_ctx *ctx, conv_state *s) {
    int64_t c = s->d.cout;
    float *sc = malloc((size_t)(2 * c) * sizeof *sc);
    if (!sc) return pn_error(PN_ERR_NOMEM, "out of memory for int8 Winograd weights");
    bool is_signed;
    bn_fold_values(s, sc, sc + c);
    pn_cpu_wino8_free(s->w8);
    s->w8 = NULL;
    const pn_tensor *w = s->node->in[1];
    pn_status st = pn_cpu_wino8_make(&s->w8, cpu_ptr(w), cpu_blk(ctx, w), c, s->d.cin, sc, sc + c,
                                     pn_cpu_int8_src_scale(s->q_lo, s->q_hi, &is_signed));
    free(sc);
    return st;
}

/* The int8 Winograd on the memory of the primitive's input and output arguments (its u8 nhwc input, its nhwc output:
 * float32, or the next convolution's 8 bits at that convolution's input scale). */
static pn_status wino8_run(const conv_state *s, char *work) {
    void *src = NULL, *dst = NULL;
    for (int i = 0; i < s->na; i++) {
        if (s->a[i].arg == DNNL_ARG_SRC) DNNL_TRY(dnnl_memory_get_data_handle(s->a[i].prim, &src));
        if (s->a[i].arg == DNNL_ARG_DST) DNNL_TRY(dnnl_memory_get_data_handle(s->a[i].prim, &dst));
    }
    if (!src || !dst || !s->w8) return pn_error(PN_ERR_BACKEND, "int8 Winograd: its input or output is not set");
    int type = s->q_out == dnnl_u8 ? PN_WINO8_U8 : s->q_out == dnnl_s8 ? PN_WINO8_S8 : PN_WINO8_F32;
    pn_cpu_wino8_run(s->w8, src, s->d.n, s->d.h, s->d.w, dst, type, s->q_out ? s->q_out_scale : 1.0f, s->wino8_relu,
                     s->w8_threads, work + s->w8_off);
    return PN_OK;
}

static pn_status run_reorder(cpu_ctx *ctx, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to,
                             dnnl_memory_t scales) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}, {DNNL_ARG_ATTR_OUTPUT_SCALES, scales}};
    DNNL_TRY(dnnl_primitive_execute(r, ctx->stream, scales ? 3 : 2, args));
    return PN_OK;
}

pn_status pn_cpu_conv2d_dnnl_run(cpu_ctx *ctx, pn_node *node) {
    conv_state *s = node->state;
    if (!s) return pn_error(PN_ERR_BACKEND, "%s: compute before prepare", pn_op_name(node->op));
    dnnl_exec_arg_t args[sizeof s->a / sizeof s->a[0] + 2]; /* every mapped argument, output scales, scratchpad */
    int nargs = 0;
    char *work = s->work_spare ? (char *)node->spare_buf->host + node->spare_offset : ctx->work;
    double t0 = pn_now();
    if (s->cout1) {
        pn_cpu_conv_cout1_fwd(ctx, &s->d, cpu_ptr(node->out[0]), cpu_ptr(node->in[0]), cpu_ptr(node->in[1]),
                              cpu_ptr(node->in[2]));
        ctx->ran_conv = node;
        ctx->ran_step = 0;
        return PN_OK;
    }
    if ((s->q_from || s->q_out) && !links_intact(node, s))
        return pn_error(PN_ERR_BACKEND,
                        "%s: the int8 convolution next to this one in an int8 chain was prepared again on its own; "
                        "plan the graph again",
                        node->label ? node->label : "conv");
    bool kept = s->int8 && kept_current(s);
    if (s->int8 && !kept) {
        s->kept_valid = false;
        PN_TRY(int8_prepare(work, s));
    } else if (!s->int8 && s->f.gamma) {
        fold_bn(work, s);
    }
    for (int i = 0; i < s->na; i++) {
        dnnl_arg_map *m = &s->a[i];
        DNNL_TRY(dnnl_memory_set_data_handle(m->user, m->t ? (void *)cpu_ptr(m->t) : at(s, work, m->user_off)));
        if (m->reorder) DNNL_TRY(dnnl_memory_set_data_handle(m->prim, at(s, work, m->off)));
        if (m->scales) DNNL_TRY(dnnl_memory_set_data_handle(m->scales, at(s, work, m->scales_off)));
        bool up_to_date = kept && (m->off & KEPT), unused = s->wino8 && m->arg == DNNL_ARG_WEIGHTS;
        if (m->reorder && !m->is_out && !up_to_date && !unused)
            PN_TRY(run_reorder(ctx, m->reorder, m->user, m->prim, m->scales));
        if (m->arg == DNNL_ARG_WEIGHTS && node->op == PN_OP_CONV2D_FWD) ctx->weight_prep_seconds += pn_now() - t0;
        args[nargs].arg = m->arg;
        args[nargs++].memory = m->prim;
    }
    if (s->wino8 && !kept) PN_TRY(wino8_weights(ctx, s));
    if (s->int8 && !kept) {
        kept_sources(s, s->kept_from);
        s->kept_valid = true;
    }
    if (s->scratch) {
        DNNL_TRY(dnnl_memory_set_data_handle(s->scratch, work + s->scratch_off));
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs++].memory = s->scratch;
    }
    if (s->sum_reorder) {
        DNNL_TRY(dnnl_memory_set_data_handle(s->sum_mem, cpu_ptr(s->sum_addend)));
        PN_TRY(run_reorder(ctx, s->sum_reorder, s->sum_mem, s->a[s->sum_dst].prim, NULL));
    } else if (s->sum_addend) {
        copy_floats(cpu_ptr(s->node->out[0]), cpu_ptr(s->sum_addend), pn_tensor_numel(s->sum_addend));
    }
    if (s->wino8) {
        PN_TRY(wino8_run(s, work));
    } else {
        if (!s->prim) {
            if (dnnl_primitive_create(&s->prim, s->pd) != dnnl_success)
                return pn_error(PN_ERR_BACKEND, "oneDNN: could not create the convolution primitive");
            dnnl_primitive_desc_destroy(s->pd);
            s->pd = NULL;
        }
        DNNL_TRY(dnnl_primitive_execute(s->prim, ctx->stream, nargs, args));
    }
    for (int i = 0; i < s->na; i++) {
        dnnl_arg_map *m = &s->a[i];
        if (s->own_out && m->arg == DNNL_ARG_DST) {
            const pn_tensor *y = node->out[0];
            const float *from = s->own_in_place ? cpu_ptr(y) : (const float *)at(s, work, m->off);
            if (!s->own_in_place || s->own_addend || s->own_relu)
                pn_cpu_int8_output(cpu_ptr(y), from, cpu_ptr(s->own_addend), s->own_relu, y->shape[0], y->shape[1],
                                   y->shape[2] * y->shape[3], cpu_blk(ctx, y));
        } else if (m->reorder && m->is_out) {
            PN_TRY(run_reorder(ctx, m->reorder, m->prim, m->user, NULL));
        }
    }
    DNNL_TRY(dnnl_stream_wait(ctx->stream));
    ctx->ran_conv = node;
    ctx->ran_step = 0;
    return PN_OK;
}
