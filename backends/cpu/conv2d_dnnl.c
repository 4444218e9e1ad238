/* cpu conv2d through oneDNN 2.6: one primitive per node built in prepare with format_tag_any, plus the
 * reorders between the node's NCHW tensors and the layouts the primitive chose (none when they match).
 * Reordered copies and the primitive's scratchpad live in the backend's shared scratch area. */
#include <stdlib.h>

#include "conv2d.h"

/* One primitive argument: the node's tensor, its plain memory, and the primitive's memory if different. */
typedef struct dnnl_arg_map {
    int arg;
    const pn_tensor *t;
    bool is_out;
    dnnl_memory_t user, prim; /* prim == user when no reorder is needed */
    dnnl_primitive_t reorder; /* user -> prim for inputs, prim -> user (+= when accumulating) for outputs */
    size_t off;               /* prim's offset in ctx->work */
} dnnl_arg_map;

typedef struct conv_state {
    dnnl_primitive_t prim;
    dnnl_arg_map a[4];
    int na;
    dnnl_memory_t scratch;
    size_t scratch_off;
} conv_state;

static size_t align64(size_t v) { return (v + 63) & ~(size_t)63; }

static void conv_state_free(conv_state *s) {
    if (!s) return;
    for (int i = 0; i < s->na; i++) {
        if (s->a[i].reorder) dnnl_primitive_destroy(s->a[i].reorder);
        if (s->a[i].prim && s->a[i].prim != s->a[i].user) dnnl_memory_destroy(s->a[i].prim);
        if (s->a[i].user) dnnl_memory_destroy(s->a[i].user);
    }
    if (s->scratch) dnnl_memory_destroy(s->scratch);
    if (s->prim) dnnl_primitive_destroy(s->prim);
    free(s);
}

/* Makes a reorder from `src` to `dst`; with `accumulate` it adds into dst (sum post-op). */
static pn_status make_reorder(cpu_ctx *ctx, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                              bool accumulate, dnnl_primitive_t *out) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_primitive_attr_create(&attr);
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
static pn_status add_arg(cpu_ctx *ctx, conv_state *s, int arg, const pn_tensor *t, const dnnl_memory_desc_t *user_md,
                         const dnnl_memory_desc_t *prim_md, bool is_out, bool accumulate, size_t *work) {
    dnnl_arg_map *m = &s->a[s->na++];
    m->arg = arg;
    m->t = t;
    m->is_out = is_out;
    DNNL_TRY(dnnl_memory_create(&m->user, user_md, ctx->engine, DNNL_MEMORY_NONE));
    if (!accumulate && dnnl_memory_desc_equal(user_md, prim_md)) {
        m->prim = m->user;
        return PN_OK;
    }
    DNNL_TRY(dnnl_memory_create(&m->prim, prim_md, ctx->engine, DNNL_MEMORY_NONE));
    m->off = *work;
    *work = align64(*work + dnnl_memory_desc_get_size(prim_md));
    if (is_out) return make_reorder(ctx, prim_md, user_md, accumulate, &m->reorder);
    return make_reorder(ctx, user_md, prim_md, false, &m->reorder);
}

typedef struct conv_mds {
    dnnl_memory_desc_t src, wei, bias, dst;         /* plain: nchw, (g)oihw, x */
    dnnl_memory_desc_t any_src, any_wei, any_dst;   /* format_tag_any */
    dnnl_dims_t strides, pad;
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
    const pn_tensor *tx = node->op == PN_OP_CONV2D_BWD_DATA ? node->out[0] : node->op == PN_OP_CONV2D_FWD ? node->in[0] : node->in[1];
    const pn_tensor *ty = node->op == PN_OP_CONV2D_FWD ? node->out[0] : node->in[0];
    const pn_tensor *tw = node->op == PN_OP_CONV2D_BWD_WEIGHTS ? node->out[0] : node->in[1];
    bool grouped = d->groups > 1;
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
    return PN_OK;
}

static pn_status make_pd(cpu_ctx *ctx, pn_op op, conv_mds *m, bool bias, dnnl_primitive_desc_t *pd) {
    dnnl_convolution_desc_t fwd_desc, desc;
    dnnl_primitive_desc_t hint = NULL;
    dnnl_primitive_attr_t attr = NULL;
    DNNL_TRY(dnnl_convolution_forward_desc_init(&fwd_desc, dnnl_forward_training, dnnl_convolution_direct,
                                                &m->any_src, &m->any_wei, bias ? &m->bias : NULL, &m->any_dst,
                                                m->strides, m->pad, m->pad));
    DNNL_TRY(dnnl_primitive_attr_create(&attr));
    dnnl_status_t st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success && op == PN_OP_CONV2D_FWD) {
        st = dnnl_primitive_desc_create(pd, &fwd_desc, attr, ctx->engine, NULL);
    } else if (st == dnnl_success) {
        st = dnnl_primitive_desc_create(&hint, &fwd_desc, NULL, ctx->engine, NULL);
        if (st == dnnl_success && op == PN_OP_CONV2D_BWD_DATA)
            st = dnnl_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &m->any_src, &m->any_wei,
                                                          &m->any_dst, m->strides, m->pad, m->pad);
        else if (st == dnnl_success)
            st = dnnl_convolution_backward_weights_desc_init(&desc, dnnl_convolution_direct, &m->any_src,
                                                             &m->any_wei, bias ? &m->bias : NULL, &m->any_dst,
                                                             m->strides, m->pad, m->pad);
        if (st == dnnl_success) st = dnnl_primitive_desc_create(pd, &desc, attr, ctx->engine, hint);
    }
    if (hint) dnnl_primitive_desc_destroy(hint);
    dnnl_primitive_attr_destroy(attr);
    return st == dnnl_success ? PN_OK : pn_cpu_dnnl_check(st, "creating a convolution primitive descriptor");
}

static const dnnl_memory_desc_t *query(dnnl_primitive_desc_t pd, dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

static pn_status build(cpu_ctx *ctx, pn_node *node, const pn_conv_dims *d, conv_state *s) {
    conv_mds m;
    PN_TRY(init_mds(ctx, node, d, &m));
    bool bias = node->op == PN_OP_CONV2D_FWD ? node->in[2] != NULL
                : node->op == PN_OP_CONV2D_BWD_WEIGHTS ? node->out[1] != NULL : false;
    dnnl_primitive_desc_t pd = NULL;
    PN_TRY(make_pd(ctx, node->op, &m, bias, &pd));
    size_t work = 0;
    pn_status st = PN_OK;
    if (node->op == PN_OP_CONV2D_FWD) {
        st = add_arg(ctx, s, DNNL_ARG_SRC, node->in[0], &m.src, query(pd, dnnl_query_src_md), false, false, &work);
        if (!st) st = add_arg(ctx, s, DNNL_ARG_WEIGHTS, node->in[1], &m.wei, query(pd, dnnl_query_weights_md), false, false, &work);
        if (!st && bias) st = add_arg(ctx, s, DNNL_ARG_BIAS, node->in[2], &m.bias, &m.bias, false, false, &work);
        if (!st) st = add_arg(ctx, s, DNNL_ARG_DST, node->out[0], &m.dst, query(pd, dnnl_query_dst_md), true, false, &work);
    } else if (node->op == PN_OP_CONV2D_BWD_DATA) {
        st = add_arg(ctx, s, DNNL_ARG_DIFF_DST, node->in[0], &m.dst, query(pd, dnnl_query_diff_dst_md), false, false, &work);
        if (!st) st = add_arg(ctx, s, DNNL_ARG_WEIGHTS, node->in[1], &m.wei, query(pd, dnnl_query_weights_md), false, false, &work);
        if (!st) st = add_arg(ctx, s, DNNL_ARG_DIFF_SRC, node->out[0], &m.src, query(pd, dnnl_query_diff_src_md), true, false, &work);
    } else {
        st = add_arg(ctx, s, DNNL_ARG_DIFF_DST, node->in[0], &m.dst, query(pd, dnnl_query_diff_dst_md), false, false, &work);
        if (!st) st = add_arg(ctx, s, DNNL_ARG_SRC, node->in[1], &m.src, query(pd, dnnl_query_src_md), false, false, &work);
        if (!st) st = add_arg(ctx, s, DNNL_ARG_DIFF_WEIGHTS, node->out[0], &m.wei, query(pd, dnnl_query_diff_weights_md), true, true, &work);
        if (!st && bias) st = add_arg(ctx, s, DNNL_ARG_DIFF_BIAS, node->out[1], &m.bias, &m.bias, true, true, &work);
    }
    const dnnl_memory_desc_t *smd = query(pd, dnnl_query_scratchpad_md);
    if (!st && smd && dnnl_memory_desc_get_size(smd) > 0) {
        s->scratch_off = work;
        work = align64(work + dnnl_memory_desc_get_size(smd));
        if (dnnl_memory_create(&s->scratch, smd, ctx->engine, DNNL_MEMORY_NONE) != dnnl_success)
            st = pn_error(PN_ERR_BACKEND, "oneDNN: could not create the scratchpad memory");
    }
    if (!st && dnnl_primitive_create(&s->prim, pd) != dnnl_success)
        st = pn_error(PN_ERR_BACKEND, "oneDNN: could not create the convolution primitive");
    dnnl_primitive_desc_destroy(pd);
    if (!st) st = pn_cpu_work_reserve(ctx, work);
    return st;
}

pn_status pn_cpu_conv2d_dnnl_prepare(cpu_ctx *ctx, pn_node *node, const pn_conv_dims *d) {
    pn_cpu_conv2d_dnnl_release(node);
    conv_state *s = calloc(1, sizeof *s);
    if (!s) return pn_error(PN_ERR_NOMEM, "out of memory preparing a convolution");
    pn_status st = build(ctx, node, d, s);
    if (st != PN_OK) {
        conv_state_free(s);
        return st;
    }
    node->state = s;
    return PN_OK;
}

void pn_cpu_conv2d_dnnl_release(pn_node *node) {
    conv_state_free(node->state);
    node->state = NULL;
}

static pn_status run_reorder(cpu_ctx *ctx, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    DNNL_TRY(dnnl_primitive_execute(r, ctx->stream, 2, args));
    return PN_OK;
}

pn_status pn_cpu_conv2d_dnnl_run(cpu_ctx *ctx, pn_node *node) {
    conv_state *s = node->state;
    if (!s) return pn_error(PN_ERR_BACKEND, "%s: compute before prepare", pn_op_name(node->op));
    dnnl_exec_arg_t args[5];
    int nargs = 0;
    char *work = ctx->work;
    for (int i = 0; i < s->na; i++) {
        dnnl_arg_map *m = &s->a[i];
        DNNL_TRY(dnnl_memory_set_data_handle(m->user, cpu_ptr(m->t)));
        if (m->reorder) DNNL_TRY(dnnl_memory_set_data_handle(m->prim, work + m->off));
        if (m->reorder && !m->is_out) PN_TRY(run_reorder(ctx, m->reorder, m->user, m->prim));
        args[nargs].arg = m->arg;
        args[nargs++].memory = m->prim;
    }
    if (s->scratch) {
        DNNL_TRY(dnnl_memory_set_data_handle(s->scratch, work + s->scratch_off));
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs++].memory = s->scratch;
    }
    DNNL_TRY(dnnl_primitive_execute(s->prim, ctx->stream, nargs, args));
    for (int i = 0; i < s->na; i++) {
        dnnl_arg_map *m = &s->a[i];
        if (m->reorder && m->is_out) PN_TRY(run_reorder(ctx, m->reorder, m->prim, m->user));
    }
    DNNL_TRY(dnnl_stream_wait(ctx->stream));
    return PN_OK;
}
