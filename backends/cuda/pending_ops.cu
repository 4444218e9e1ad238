/* cuda pending_ops: placeholders for the ops added for SE/scSE encoders and the AlbuNet decoder, until the cuda
 * kernels land (each answers PN_ERR_UNSUPPORTED). */
#include "cuda.h"

#define PENDING(name)                                                                                      \
    pn_status pn_cuda_##name(cuda_ctx *ctx, pn_node *node) {                                                 \
        (void)ctx;                                                                                         \
        return pn_error(PN_ERR_UNSUPPORTED, "cuda backend: %s is not implemented yet", pn_op_name(node->op)); \
    }
PENDING(sigmoid_bwd)
PENDING(global_avg_pool_fwd)
PENDING(global_avg_pool_bwd)
PENDING(channel_mul)
PENDING(channel_mul_bwd_scale)
PENDING(pixel_mul)
PENDING(pixel_mul_bwd_scale)
PENDING(bilinear2x_fwd)
PENDING(bilinear2x_bwd)
