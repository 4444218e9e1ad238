/* cpu conv2d: forward, backward-data and backward-weights; oneDNN primitives when built with oneDNN,
 * im2col + sgemm otherwise. */
#include "conv2d.h"

pn_conv_dims pn_cpu_conv_dims(const pn_node *node) {
    const pn_tensor *x, *w, *y;
    if (node->op == PN_OP_CONV2D_FWD) {
        y = node->out[0], x = node->in[0], w = node->in[1];
    } else if (node->op == PN_OP_CONV2D_BWD_DATA) {
        x = node->out[0], y = node->in[0], w = node->in[1];
    } else {
        w = node->out[0], y = node->in[0], x = node->in[1];
    }
    const pn_conv2d_params *p = &node->p.conv2d_fwd;
    pn_conv_dims d = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], y->shape[1],
                      y->shape[2], y->shape[3], w->shape[2], w->shape[1], y->shape[1] / p->groups,
                      p->groups,   p->stride,   p->pad};
    return d;
}

pn_status pn_cpu_conv2d_prepare(cpu_ctx *ctx, pn_node *node) {
    pn_conv_dims d = pn_cpu_conv_dims(node);
#ifdef PN_HAVE_ONEDNN
    return pn_cpu_conv2d_dnnl_prepare(ctx, node, &d);
#else
    return pn_cpu_work_reserve(ctx, pn_cpu_conv2d_gemm_work(&d));
#endif
}

void pn_cpu_conv2d_release(cpu_ctx *ctx, pn_node *node) {
    (void)ctx;
#ifdef PN_HAVE_ONEDNN
    pn_cpu_conv2d_dnnl_release(node);
#else
    (void)node;
#endif
}

pn_status pn_cpu_conv2d_fwd(cpu_ctx *ctx, pn_node *node) {
#ifdef PN_HAVE_ONEDNN
    return pn_cpu_conv2d_dnnl_run(ctx, node);
#else
    pn_conv_dims d = pn_cpu_conv_dims(node);
    pn_cpu_conv2d_gemm_fwd(ctx, &d, cpu_ptr(node->out[0]), cpu_ptr(node->in[0]), cpu_ptr(node->in[1]),
                           cpu_ptr(node->in[2]));
    return PN_OK;
#endif
}

pn_status pn_cpu_conv2d_bwd_data(cpu_ctx *ctx, pn_node *node) {
#ifdef PN_HAVE_ONEDNN
    return pn_cpu_conv2d_dnnl_run(ctx, node);
#else
    pn_conv_dims d = pn_cpu_conv_dims(node);
    pn_cpu_conv2d_gemm_bwd_data(ctx, &d, cpu_ptr(node->out[0]), cpu_ptr(node->in[0]), cpu_ptr(node->in[1]));
    return PN_OK;
#endif
}

pn_status pn_cpu_conv2d_bwd_weights(cpu_ctx *ctx, pn_node *node) {
#ifdef PN_HAVE_ONEDNN
    return pn_cpu_conv2d_dnnl_run(ctx, node);
#else
    pn_conv_dims d = pn_cpu_conv_dims(node);
    pn_cpu_conv2d_gemm_bwd_weights(ctx, &d, cpu_ptr(node->out[0]), cpu_ptr(node->out[1]), cpu_ptr(node->in[0]),
                                   cpu_ptr(node->in[1]));
    return PN_OK;
#endif
}
