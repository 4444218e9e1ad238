/* maxpool: k x k windows with -inf padding; the backward routes dy to each window's first maximum (PyTorch's
 * rule: a NaN wins, a later NaN over an earlier one), gathered per input pixel so no atomics are needed. The output
 * size comes from y's shape, so ceil_mode (pn_pool_out_size) needs nothing more: windows running past the input are
 * clipped to the pixels they cover, and the backward's window range is bounded by that output size. */
#include <math.h>

#include "cuda.h"

typedef struct pool_dims {
    long long h, w, oh, ow, k, stride, pad;
} pool_dims;

/* Index in the plane of the window's first maximum (ref's window_argmax), -1 for an empty window. */
__device__ long long window_argmax(const float *plane, const pool_dims &d, long long oy, long long ox) {
    long long best = -1;
    float best_v = -INFINITY;
    for (long long ky = 0; ky < d.k; ky++) {
        long long iy = oy * d.stride - d.pad + ky;
        if (iy < 0 || iy >= d.h) continue;
        for (long long kx = 0; kx < d.k; kx++) {
            long long ix = ox * d.stride - d.pad + kx;
            if (ix < 0 || ix >= d.w) continue;
            float v = plane[iy * d.w + ix];
            if (best < 0 || v > best_v || isnan(v)) {
                best = iy * d.w + ix;
                best_v = v;
            }
        }
    }
    return best;
}

__global__ void maxpool_fwd_kernel(float *y, const float *x, size_t planes, pool_dims d) {
    size_t out_plane = (size_t)(d.oh * d.ow);
    CUDA_GRID_LOOP(i, planes * out_plane) {
        size_t pl = i / out_plane, r = i % out_plane;
        const float *xp = x + pl * (size_t)(d.h * d.w);
        long long at = window_argmax(xp, d, (long long)r / d.ow, (long long)r % d.ow);
        y[i] = at >= 0 ? xp[at] : -INFINITY;
    }
}

/* First output index o with o * stride - pad + k - 1 >= i, i.e. whose window can reach input index i. */
__device__ long long first_window(long long i, const pool_dims &d) {
    long long num = i + d.pad - d.k + 1;
    return num <= 0 ? 0 : (num + d.stride - 1) / d.stride;
}

/* dx[i] = the sum, in (oy, ox) order as ref adds them, of dy over the windows whose argmax is i. */
__global__ void maxpool_bwd_kernel(float *dx, const float *dy, const float *x, size_t planes, pool_dims d) {
    size_t in_plane = (size_t)(d.h * d.w);
    CUDA_GRID_LOOP(i, planes * in_plane) {
        size_t pl = i / in_plane;
        long long r = (long long)(i % in_plane), iy = r / d.w, ix = r % d.w;
        const float *xp = x + pl * in_plane;
        const float *dyp = dy + pl * (size_t)(d.oh * d.ow);
        long long oy_end = (iy + d.pad) / d.stride + 1, ox_end = (ix + d.pad) / d.stride + 1;
        if (oy_end > d.oh) oy_end = d.oh;
        if (ox_end > d.ow) ox_end = d.ow;
        float acc = 0.0f;
        for (long long oy = first_window(iy, d); oy < oy_end; oy++)
            for (long long ox = first_window(ix, d); ox < ox_end; ox++)
                if (window_argmax(xp, d, oy, ox) == r) acc += dyp[oy * d.ow + ox];
        dx[i] = acc;
    }
}

static pool_dims dims_of(const pn_tensor *x, const pn_tensor *y, const pn_pool_params *p) {
    pool_dims d = {x->shape[2], x->shape[3], y->shape[2], y->shape[3], p->kernel, p->stride, p->pad};
    return d;
}

pn_status pn_cuda_maxpool_fwd(cuda_ctx *ctx, pn_node *node) {
    const pn_tensor *x = node->in[0], *y = node->out[0];
    pool_dims d = dims_of(x, y, &node->p.maxpool_fwd);
    size_t planes = (size_t)(x->shape[0] * x->shape[1]);
    maxpool_fwd_kernel<<<cuda_blocks(cuda_numel(y)), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(y), cuda_ptr(x), planes,
                                                                                     d);
    CUDA_LAUNCHED(maxpool_fwd_kernel);
    return PN_OK;
}

pn_status pn_cuda_maxpool_bwd(cuda_ctx *ctx, pn_node *node) {
    const pn_tensor *dx = node->out[0], *dy = node->in[0], *x = node->in[1];
    pool_dims d = dims_of(x, dy, &node->p.maxpool_bwd);
    size_t planes = (size_t)(x->shape[0] * x->shape[1]);
    maxpool_bwd_kernel<<<cuda_blocks(cuda_numel(dx)), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(dx), cuda_ptr(dy),
                                                                                      cuda_ptr(x), planes, d);
    CUDA_LAUNCHED(maxpool_bwd_kernel);
    return PN_OK;
}
