/* cpu bilinear2x: F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False) and its transpose, on the
 * tensor's own layout (x and y have the same channel count, hence the same channel block b; all b lanes of a
 * pixel are done together). Both follow ref's formulas and order of additions: the backward gathers, for each
 * input pixel, the terms ref scatters to it, in ref's (output row, output column, tap) order. */
#include "cpu.h"

#define MAXB 16

/* Output position o of 2n reads input i0 with weight 1 - l and i1 with weight l (ref's source()). */
static void source(int64_t o, int64_t n, int64_t *i0, int64_t *i1, float *l) {
    float src = ((float)o + 0.5f) * 0.5f - 0.5f;
    if (src < 0.0f) src = 0.0f;
    *i0 = (int64_t)src;
    *i1 = *i0 + 1 < n ? *i0 + 1 : n - 1;
    *l = src - (float)*i0;
}

pn_status pn_cpu_bilinear2x_fwd(cpu_ctx *ctx, pn_node *node) {
    const pn_tensor *tx = node->in[0];
    int64_t b = cpu_blk(ctx, tx), blocks = tx->shape[0] * tx->shape[1] / b, h = tx->shape[2], w = tx->shape[3];
    const float *x = cpu_ptr(tx);
    float *y = cpu_ptr(node->out[0]);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t k = 0; k < blocks; k++)
        for (int64_t oy = 0; oy < 2 * h; oy++) {
            int64_t y0, y1;
            float ly;
            source(oy, h, &y0, &y1, &ly);
            const float *r0 = x + (k * h + y0) * w * b, *r1 = x + (k * h + y1) * w * b;
            float *out = y + (k * 2 * h + oy) * 2 * w * b;
            for (int64_t ox = 0; ox < 2 * w; ox++) {
                int64_t x0, x1;
                float lx;
                source(ox, w, &x0, &x1, &lx);
#pragma omp simd
                for (int64_t l = 0; l < b; l++) {
                    float top = (1.0f - lx) * r0[x0 * b + l] + lx * r0[x1 * b + l];
                    float bottom = (1.0f - lx) * r1[x0 * b + l] + lx * r1[x1 * b + l];
                    out[ox * b + l] = (1.0f - ly) * top + ly * bottom;
                }
            }
        }
    return PN_OK;
}

/* The outputs along one axis whose taps reach input i, in increasing o: their source taps and weight. Returns
 * how many. Only o in [2i-1, 2i+2] give i a nonzero weight; o = 0 also names input 1 as its second source with
 * weight 0, which ref adds too (0 * Inf is NaN), hence the range [2i-2, 2i+2]. */
typedef struct tap {
    int64_t o;
    int hit0, hit1; /* i is the output's first / second source */
    float l;
} tap;

static int taps_to(int64_t i, int64_t n, tap t[5]) {
    int count = 0;
    for (int64_t o = 2 * i - 2; o <= 2 * i + 2; o++) {
        if (o < 0 || o >= 2 * n) continue;
        int64_t i0, i1;
        float l;
        source(o, n, &i0, &i1, &l);
        if (i0 != i && i1 != i) continue;
        t[count++] = (tap){o, i0 == i, i1 == i, l};
    }
    return count;
}

/* acc[l] += wy * wx * g[l], rounded as ref's (wy * wx) * g. */
static inline void add_term(float *acc, const float *g, float wy, float wx, int64_t b) {
    float wt = wy * wx;
#pragma omp simd
    for (int64_t l = 0; l < b; l++) acc[l] += wt * g[l];
}

pn_status pn_cpu_bilinear2x_bwd(cpu_ctx *ctx, pn_node *node) {
    const pn_tensor *tdx = node->out[0];
    int64_t b = cpu_blk(ctx, tdx), blocks = tdx->shape[0] * tdx->shape[1] / b, h = tdx->shape[2], w = tdx->shape[3];
    const float *dy = cpu_ptr(node->in[0]);
    float *dx = cpu_ptr(tdx);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t k = 0; k < blocks; k++)
        for (int64_t iy = 0; iy < h; iy++) {
            tap ty[5], tx[5];
            int ny = taps_to(iy, h, ty);
            for (int64_t ix = 0; ix < w; ix++) {
                int nx = taps_to(ix, w, tx);
                float acc[MAXB];
                for (int64_t l = 0; l < b; l++) acc[l] = 0.0f;
                for (int a = 0; a < ny; a++) {
                    const float *row = dy + (k * 2 * h + ty[a].o) * 2 * w * b;
                    float ly = ty[a].l;
                    for (int c = 0; c < nx; c++) {
                        const float *g = row + tx[c].o * b;
                        float lx = tx[c].l;
                        /* ref's four terms of output (oy, ox), in its order, where they land on (iy, ix) */
                        if (ty[a].hit0 && tx[c].hit0) add_term(acc, g, 1.0f - ly, 1.0f - lx, b);
                        if (ty[a].hit0 && tx[c].hit1) add_term(acc, g, 1.0f - ly, lx, b);
                        if (ty[a].hit1 && tx[c].hit0) add_term(acc, g, ly, 1.0f - lx, b);
                        if (ty[a].hit1 && tx[c].hit1) add_term(acc, g, ly, lx, b);
                    }
                }
                float *out = dx + ((k * h + iy) * w + ix) * b;
                for (int64_t l = 0; l < b; l++) out[l] = acc[l];
            }
        }
    return PN_OK;
}
