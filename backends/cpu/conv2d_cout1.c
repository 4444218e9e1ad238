/* cpu conv2d forward with one output channel on a channel-blocked input (the segmentation head, 16 -> 1): per output
 * pixel, a dot product over the input's channel blocks and the kernel taps. oneDNN 2.6 computes it as 16 output
 * channels (15 of them padding) into a scratch copy 16 times the output's size and then reorders it; this writes the
 * plain output directly. With AVX-512 (blocks of 16) or AVX2 (blocks of 8), the pixels whose taps all lie inside the
 * row go a vector of pixels at a time: one accumulator per pixel, summed across its lanes all together at the end.
 * Not used with --conv-algo winograd. */
#include "conv2d.h"

bool pn_cpu_conv_cout1_applies(const cpu_ctx *ctx, const pn_node *node, const pn_conv_dims *d) {
    /* --conv-algo winograd asks for oneDNN's Winograd wherever it exists, this shape included */
    return node->op == PN_OP_CONV2D_FWD && ctx->conv_algo != PN_CPU_CONV_WINOGRAD && d->cout == 1 && d->groups == 1 &&
           ctx->blk > 1 && cpu_blk(ctx, node->in[0]) == ctx->blk && cpu_blk(ctx, node->in[1]) == ctx->blk &&
           cpu_blk(ctx, node->out[0]) == 1;
}

/* Output pixels [x0, x1) of one row, one at a time; B (the channel block) is a constant in each caller so the inner
 * loop vectorises. */
static inline void cout1_pixels(const pn_conv_dims *d, int64_t B, float *yr, const float *xn, const float *w,
                                float bias, int64_t oy, int64_t x0, int64_t x1) {
    int64_t cb_n = d->cin / B, hw = d->h * d->w, kk = d->k * d->k;
    for (int64_t ox = x0; ox < x1; ox++) {
        float acc[16] = {0};
        for (int64_t cb = 0; cb < cb_n; cb++)
            for (int64_t ky = 0; ky < d->k; ky++) {
                int64_t iy = oy * d->stride - d->pad + ky;
                if (iy < 0 || iy >= d->h) continue;
                for (int64_t kx = 0; kx < d->k; kx++) {
                    int64_t ix = ox * d->stride - d->pad + kx;
                    if (ix < 0 || ix >= d->w) continue;
                    const float *xp = xn + (cb * hw + iy * d->w + ix) * B;
                    const float *wp = w + (cb * kk + ky * d->k + kx) * B;
                    for (int64_t l = 0; l < B; l++) acc[l] += xp[l] * wp[l];
                }
            }
        float sum = bias;
        for (int64_t l = 0; l < B; l++) sum += acc[l];
        yr[ox] = sum;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define COUT1_SIMD 1

/* r[j] = the sum of the 16 lanes of a[j], for 16 vectors at once: pairs, then quads within each 128-bit lane, then
 * the four 128-bit lanes. */
__attribute__((target("avx512f"))) static inline __m512 lane_sums16(const __m512 a[16]) {
    __m512 b[8], c[4];
    for (int j = 0; j < 8; j++) /* 128-bit lane k: a[2j] (4k+0, +2), a[2j+1] (4k+0, +2), a[2j] (+1, +3), ... */
        b[j] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * j], a[2 * j + 1]), _mm512_unpackhi_ps(a[2 * j], a[2 * j + 1]));
    for (int j = 0; j < 4; j++) { /* 128-bit lane k: the sums over lane k of a[4j], a[4j+1], a[4j+2], a[4j+3] */
        __m512d lo = _mm512_unpacklo_pd(_mm512_castps_pd(b[2 * j]), _mm512_castps_pd(b[2 * j + 1]));
        __m512d hi = _mm512_unpackhi_pd(_mm512_castps_pd(b[2 * j]), _mm512_castps_pd(b[2 * j + 1]));
        c[j] = _mm512_add_ps(_mm512_castpd_ps(lo), _mm512_castpd_ps(hi));
    }
    /* 128-bit lane j of the result: the four lanes of c[j] added */
    __m512 e01 = _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                               _mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
    __m512 e23 = _mm512_add_ps(_mm512_shuffle_f32x4(c[2], c[3], _MM_SHUFFLE(2, 0, 2, 0)),
                               _mm512_shuffle_f32x4(c[2], c[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(e01, e23, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(e01, e23, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Stride 1, blocks of 16: pixels x0, x0 + 16, ... while 16 fit before x1, all of whose taps are inside the row;
 * returns the first pixel not done. */
__attribute__((target("avx512f"))) static int64_t cout1_pixels16(const pn_conv_dims *d, float *yr, const float *xn,
                                                                 const float *w, float bias, int64_t oy, int64_t x0,
                                                                 int64_t x1) {
    int64_t cb_n = d->cin / 16, hw = d->h * d->w, kk = d->k * d->k, ox = x0;
    for (; ox + 16 <= x1; ox += 16) {
        __m512 acc[16];
        for (int j = 0; j < 16; j++) acc[j] = _mm512_setzero_ps();
        for (int64_t cb = 0; cb < cb_n; cb++)
            for (int64_t ky = 0; ky < d->k; ky++) {
                int64_t iy = oy - d->pad + ky;
                if (iy < 0 || iy >= d->h) continue;
                const float *xr = xn + (cb * hw + iy * d->w + ox - d->pad) * 16, *wr = w + (cb * kk + ky * d->k) * 16;
                for (int64_t kx = 0; kx < d->k; kx++) {
                    __m512 wv = _mm512_loadu_ps(wr + kx * 16);
#pragma GCC unroll 16
                    for (int j = 0; j < 16; j++)
                        acc[j] = _mm512_fmadd_ps(_mm512_loadu_ps(xr + (j + kx) * 16), wv, acc[j]);
                }
            }
        _mm512_storeu_ps(yr + ox, _mm512_add_ps(lane_sums16(acc), _mm512_set1_ps(bias)));
    }
    return ox;
}

/* r[j] = the sum of the 8 lanes of a[j], for 8 vectors at once. */
__attribute__((target("avx2,fma"))) static inline __m256 lane_sums8(const __m256 a[8]) {
    __m256 b0 = _mm256_hadd_ps(a[0], a[1]), b1 = _mm256_hadd_ps(a[2], a[3]);
    __m256 b2 = _mm256_hadd_ps(a[4], a[5]), b3 = _mm256_hadd_ps(a[6], a[7]);
    __m256 c0 = _mm256_hadd_ps(b0, b1), c1 = _mm256_hadd_ps(b2, b3); /* 128-bit lane k of a[0..3], a[4..7] */
    return _mm256_add_ps(_mm256_permute2f128_ps(c0, c1, 0x20), _mm256_permute2f128_ps(c0, c1, 0x31));
}

/* cout1_pixels16 for blocks of 8 with AVX2. */
__attribute__((target("avx2,fma"))) static int64_t cout1_pixels8(const pn_conv_dims *d, float *yr, const float *xn,
                                                                 const float *w, float bias, int64_t oy, int64_t x0,
                                                                 int64_t x1) {
    int64_t cb_n = d->cin / 8, hw = d->h * d->w, kk = d->k * d->k, ox = x0;
    for (; ox + 8 <= x1; ox += 8) {
        __m256 acc[8];
        for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
        for (int64_t cb = 0; cb < cb_n; cb++)
            for (int64_t ky = 0; ky < d->k; ky++) {
                int64_t iy = oy - d->pad + ky;
                if (iy < 0 || iy >= d->h) continue;
                const float *xr = xn + (cb * hw + iy * d->w + ox - d->pad) * 8, *wr = w + (cb * kk + ky * d->k) * 8;
                for (int64_t kx = 0; kx < d->k; kx++) {
                    __m256 wv = _mm256_loadu_ps(wr + kx * 8);
#pragma GCC unroll 8
                    for (int j = 0; j < 8; j++)
                        acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(xr + (j + kx) * 8), wv, acc[j]);
                }
            }
        _mm256_storeu_ps(yr + ox, _mm256_add_ps(lane_sums8(acc), _mm256_set1_ps(bias)));
    }
    return ox;
}
#endif

/* Pixels [x0, x1) one at a time, with the block as a constant. */
static void cout1_scalar(const pn_conv_dims *d, int64_t B, float *yr, const float *xn, const float *w, float bias,
                         int64_t oy, int64_t x0, int64_t x1) {
    if (B == 16)
        cout1_pixels(d, 16, yr, xn, w, bias, oy, x0, x1);
    else
        cout1_pixels(d, 8, yr, xn, w, bias, oy, x0, x1);
}

/* One output row: pixels [lo, done) a vector at a time where they apply, the rest one at a time. */
static void cout1_row(const pn_conv_dims *d, int64_t B, bool simd, float *yr, const float *xn, const float *w,
                      float bias, int64_t oy) {
    int64_t lo = 0, done = 0;
#ifdef COUT1_SIMD
    int64_t hi = d->w - d->k + d->pad + 1 < d->ow ? d->w - d->k + d->pad + 1 : d->ow;
    if (simd && d->pad < hi) { /* stride 1: pixel ox reads ox - pad .. ox - pad + k - 1 */
        lo = d->pad;
        done = B == 16 ? cout1_pixels16(d, yr, xn, w, bias, oy, lo, hi) : cout1_pixels8(d, yr, xn, w, bias, oy, lo, hi);
    }
#else
    (void)simd;
#endif
    cout1_scalar(d, B, yr, xn, w, bias, oy, 0, lo);
    cout1_scalar(d, B, yr, xn, w, bias, oy, done, d->ow);
}

void pn_cpu_conv_cout1_fwd(const cpu_ctx *ctx, const pn_conv_dims *d, float *y, const float *x, const float *w,
                           const float *b) {
    int64_t B = ctx->blk;
    float bias = b ? b[0] : 0.0f;
    bool simd = false;
#ifdef COUT1_SIMD
    simd = d->stride == 1 && (B == 16 ? __builtin_cpu_supports("avx512f")
                                      : B == 8 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
#endif
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t oy = 0; oy < d->oh; oy++)
            cout1_row(d, B, simd, y + (n * d->oh + oy) * d->ow, x + n * d->cin * d->h * d->w, w, bias, oy);
}
