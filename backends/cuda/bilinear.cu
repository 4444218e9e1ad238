/* bilinear2x: F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False) and its transpose, with ref's
 * formulas (no FMA contraction in this module, so each float operation rounds as ref's C). The backward gathers,
 * one thread per input element, the terms ref scatters to it, in ref's (output row, output column, tap) order: no
 * atomics, and the same sums bit for bit. */
#include "cuda.h"

/* Output position o of 2n reads input i0 with weight 1 - l and i1 with weight l (ref's source()). */
static __device__ void bilinear_source(long long o, long long n, long long *i0, long long *i1, float *l) {
    float src = ((float)o + 0.5f) * 0.5f - 0.5f;
    if (src < 0.0f) src = 0.0f;
    *i0 = (long long)src;
    *i1 = *i0 + 1 < n ? *i0 + 1 : n - 1;
    *l = src - (float)*i0;
}

/* y (planes, 2h, 2w) from x (planes, h, w): one thread per output element. */
__global__ void bilinear2x_fwd_kernel(float *y, const float *x, size_t planes, long long h, long long w) {
    size_t ow = (size_t)(2 * w), plane = (size_t)(4 * h * w);
    CUDA_GRID_LOOP(i, planes * plane) {
        size_t pl = i / plane, r = i % plane;
        long long y0, y1, x0, x1;
        float ly, lx;
        bilinear_source((long long)(r / ow), h, &y0, &y1, &ly);
        bilinear_source((long long)(r % ow), w, &x0, &x1, &lx);
        const float *p = x + pl * (size_t)(h * w);
        float top = (1.0f - lx) * p[y0 * w + x0] + lx * p[y0 * w + x1];
        float bottom = (1.0f - lx) * p[y1 * w + x0] + lx * p[y1 * w + x1];
        y[i] = (1.0f - ly) * top + ly * bottom;
    }
}

/* dx (planes, h, w) from dy (planes, 2h, 2w). Along an axis, outputs 2i-1 .. 2i+2 read input i; output 0 also
 * names input 1 with weight 0, which ref adds too (0 * Inf is NaN), hence candidates from 2i-2. */
__global__ void bilinear2x_bwd_kernel(float *dx, const float *dy, size_t planes, long long h, long long w) {
    size_t in_plane = (size_t)(h * w);
    CUDA_GRID_LOOP(i, planes * in_plane) {
        size_t pl = i / in_plane;
        long long iy = (long long)(i % in_plane) / w, ix = (long long)(i % in_plane) % w;
        const float *g = dy + pl * 4 * in_plane;
        float acc = 0.0f;
        for (long long oy = 2 * iy - 2; oy <= 2 * iy + 2; oy++) {
            if (oy < 0 || oy >= 2 * h) continue;
            long long y0, y1;
            float ly;
            bilinear_source(oy, h, &y0, &y1, &ly);
            if (y0 != iy && y1 != iy) continue;
            for (long long ox = 2 * ix - 2; ox <= 2 * ix + 2; ox++) {
                if (ox < 0 || ox >= 2 * w) continue;
                long long x0, x1;
                float lx;
                bilinear_source(ox, w, &x0, &x1, &lx);
                float v = g[oy * 2 * w + ox];
                /* ref's four terms of output (oy, ox), in its order, where they land on (iy, ix) */
                if (y0 == iy && x0 == ix) acc += (1.0f - ly) * (1.0f - lx) * v;
                if (y0 == iy && x1 == ix) acc += (1.0f - ly) * lx * v;
                if (y1 == iy && x0 == ix) acc += ly * (1.0f - lx) * v;
                if (y1 == iy && x1 == ix) acc += ly * lx * v;
            }
        }
        dx[i] = acc;
    }
}

pn_status pn_cuda_bilinear2x_fwd(cuda_ctx *ctx, pn_node *node) {
    const pn_tensor *x = node->in[0];
    size_t planes = (size_t)(x->shape[0] * x->shape[1]);
    long long h = x->shape[2], w = x->shape[3];
    bilinear2x_fwd_kernel<<<cuda_blocks(planes * (size_t)(4 * h * w)), CUDA_THREADS, 0, ctx->stream>>>(
        cuda_ptr(node->out[0]), cuda_ptr(x), planes, h, w);
    CUDA_LAUNCHED(bilinear2x_fwd_kernel);
    return PN_OK;
}

pn_status pn_cuda_bilinear2x_bwd(cuda_ctx *ctx, pn_node *node) {
    const pn_tensor *dx = node->out[0];
    size_t planes = (size_t)(dx->shape[0] * dx->shape[1]);
    long long h = dx->shape[2], w = dx->shape[3];
    bilinear2x_bwd_kernel<<<cuda_blocks(planes * (size_t)(h * w)), CUDA_THREADS, 0, ctx->stream>>>(
        cuda_ptr(dx), cuda_ptr(node->in[0]), planes, h, w);
    CUDA_LAUNCHED(bilinear2x_bwd_kernel);
    return PN_OK;
}
