/* pixel_mul: y = x * s with one factor per (image, pixel) (scSE's spatial gate; y may be x), and the factor's
 * gradient ds = sum over channels of dy * x, one thread per (image, pixel) adding in double in channel order, as
 * ref (bit for bit: same products, same order). */
#include "cuda.h"

/* y may be x: each element is read before it is written, by the same thread. */
__global__ void pixel_mul_kernel(float *y, const float *x, const float *s, size_t n, size_t c, size_t hw) {
    CUDA_GRID_LOOP(i, n) y[i] = x[i] * s[(i / (c * hw)) * hw + i % hw];
}

__global__ void pixel_mul_bwd_scale_kernel(float *ds, const float *dy, const float *x, size_t images, size_t c,
                                           size_t hw) {
    CUDA_GRID_LOOP(j, images * hw) {
        size_t b = j / hw, i = j % hw;
        double sum = 0.0;
        for (size_t ch = 0; ch < c; ch++) {
            size_t at = (b * c + ch) * hw + i;
            sum += (double)dy[at] * (double)x[at];
        }
        ds[j] = (float)sum;
    }
}

pn_status pn_cuda_pixel_mul(cuda_ctx *ctx, pn_node *node) {
    const pn_tensor *x = node->in[0];
    size_t n = cuda_numel(x), c = (size_t)x->shape[1], hw = (size_t)(x->shape[2] * x->shape[3]);
    pixel_mul_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(node->out[0]), cuda_ptr(x),
                                                                       cuda_ptr(node->in[1]), n, c, hw);
    CUDA_LAUNCHED(pixel_mul_kernel);
    return PN_OK;
}

pn_status pn_cuda_pixel_mul_bwd_scale(cuda_ctx *ctx, pn_node *node) {
    const pn_tensor *x = node->in[1];
    size_t images = (size_t)x->shape[0], c = (size_t)x->shape[1], hw = (size_t)(x->shape[2] * x->shape[3]);
    pixel_mul_bwd_scale_kernel<<<cuda_blocks(images * hw), CUDA_THREADS, 0, ctx->stream>>>(
        cuda_ptr(node->out[0]), cuda_ptr(node->in[0]), cuda_ptr(x), images, c, hw);
    CUDA_LAUNCHED(pixel_mul_bwd_scale_kernel);
    return PN_OK;
}
