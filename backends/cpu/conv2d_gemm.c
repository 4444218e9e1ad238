/* cpu conv2d by im2col + sgemm: the path used without oneDNN. OpenBLAS does the GEMMs when built with it
 * (its own threads, called outside OpenMP regions), else a plain OpenMP GEMM. */
#include <string.h>

#include "conv2d.h"

#ifdef PN_HAVE_OPENBLAS
#include <cblas.h>
#endif

/* C (m x n) = alpha * op(A) * op(B) + beta * C, row-major; op(A) is m x k, op(B) is k x n. */
static void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                  int64_t ldb, float beta, float *c, int64_t ldc) {
#ifdef PN_HAVE_OPENBLAS
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n,
                (blasint)k, 1.0f, a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
#else
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m; i++) {
        float *crow = c + i * ldc;
        for (int64_t j = 0; j < n; j++) crow[j] = beta == 0.0f ? 0.0f : beta * crow[j];
        for (int64_t p = 0; p < k; p++) {
            float av = ta ? a[p * lda + i] : a[i * lda + p];
            if (!tb) {
                const float *brow = b + p * ldb;
                for (int64_t j = 0; j < n; j++) crow[j] += av * brow[j];
            } else {
                for (int64_t j = 0; j < n; j++) crow[j] += av * b[j * ldb + p];
            }
        }
    }
#endif
}

/* True when the convolution is a plain matrix product (1x1, stride 1, no padding): no im2col needed. */
static bool is_pointwise(const pn_conv_dims *d) { return d->k == 1 && d->stride == 1 && d->pad == 0; }

/* col (cin_g*k*k rows, oh*ow columns) from one group of one image. */
static void im2col(float *col, const float *x, const pn_conv_dims *d) {
    int64_t rows = d->cin_g * d->k * d->k, p = d->oh * d->ow;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t c = r / (d->k * d->k), ky = (r / d->k) % d->k, kx = r % d->k;
        const float *xp = x + c * d->h * d->w;
        float *out = col + r * p;
        for (int64_t oy = 0; oy < d->oh; oy++) {
            int64_t iy = oy * d->stride - d->pad + ky;
            float *o = out + oy * d->ow;
            if (iy < 0 || iy >= d->h) {
                memset(o, 0, (size_t)d->ow * sizeof(float));
                continue;
            }
            for (int64_t ox = 0; ox < d->ow; ox++) {
                int64_t ix = ox * d->stride - d->pad + kx;
                o[ox] = (ix < 0 || ix >= d->w) ? 0.0f : xp[iy * d->w + ix];
            }
        }
    }
}

/* dx (one group of one image) = the sum of col's entries at their source pixels; dx is overwritten. */
static void col2im(float *dx, const float *col, const pn_conv_dims *d) {
    int64_t p = d->oh * d->ow, kk = d->k * d->k;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < d->cin_g; c++) {
        float *dxp = dx + c * d->h * d->w;
        memset(dxp, 0, (size_t)(d->h * d->w) * sizeof(float));
        for (int64_t q = 0; q < kk; q++) {
            int64_t ky = q / d->k, kx = q % d->k;
            const float *in = col + (c * kk + q) * p;
            for (int64_t oy = 0; oy < d->oh; oy++) {
                int64_t iy = oy * d->stride - d->pad + ky;
                if (iy < 0 || iy >= d->h) continue;
                for (int64_t ox = 0; ox < d->ow; ox++) {
                    int64_t ix = ox * d->stride - d->pad + kx;
                    if (ix >= 0 && ix < d->w) dxp[iy * d->w + ix] += in[oy * d->ow + ox];
                }
            }
        }
    }
}

size_t pn_cpu_conv2d_gemm_work(const pn_conv_dims *d) {
    return (size_t)(d->cin_g * d->k * d->k) * (size_t)(d->oh * d->ow) * sizeof(float);
}

void pn_cpu_conv2d_gemm_fwd(cpu_ctx *ctx, const pn_conv_dims *d, float *y, const float *x, const float *w,
                            const float *b) {
    int64_t kdim = d->cin_g * d->k * d->k, p = d->oh * d->ow;
    float *col = ctx->work;
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t g = 0; g < d->groups; g++) {
            const float *xg = x + (n * d->cin + g * d->cin_g) * d->h * d->w;
            float *yg = y + (n * d->cout + g * d->cout_g) * p;
            const float *src = xg;
            if (!is_pointwise(d)) {
                im2col(col, xg, d);
                src = col;
            }
            sgemm(false, false, d->cout_g, p, kdim, w + g * d->cout_g * kdim, kdim, src, p, 0.0f, yg, p);
            if (b) {
#pragma omp parallel for schedule(static)
                for (int64_t co = 0; co < d->cout_g; co++)
                    for (int64_t i = 0; i < p; i++) yg[co * p + i] += b[g * d->cout_g + co];
            }
        }
}

void pn_cpu_conv2d_gemm_bwd_data(cpu_ctx *ctx, const pn_conv_dims *d, float *dx, const float *dy, const float *w) {
    int64_t kdim = d->cin_g * d->k * d->k, p = d->oh * d->ow;
    float *col = ctx->work;
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t g = 0; g < d->groups; g++) {
            float *dxg = dx + (n * d->cin + g * d->cin_g) * d->h * d->w;
            const float *dyg = dy + (n * d->cout + g * d->cout_g) * p;
            const float *wg = w + g * d->cout_g * kdim;
            if (is_pointwise(d)) {
                sgemm(true, false, kdim, p, d->cout_g, wg, kdim, dyg, p, 0.0f, dxg, p);
            } else {
                sgemm(true, false, kdim, p, d->cout_g, wg, kdim, dyg, p, 0.0f, col, p);
                col2im(dxg, col, d);
            }
        }
}

void pn_cpu_conv2d_gemm_bwd_weights(cpu_ctx *ctx, const pn_conv_dims *d, float *dw, float *db, const float *dy,
                                    const float *x) {
    int64_t kdim = d->cin_g * d->k * d->k, p = d->oh * d->ow;
    float *col = ctx->work;
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t g = 0; g < d->groups; g++) {
            const float *xg = x + (n * d->cin + g * d->cin_g) * d->h * d->w;
            const float *dyg = dy + (n * d->cout + g * d->cout_g) * p;
            const float *src = xg;
            if (!is_pointwise(d)) {
                im2col(col, xg, d);
                src = col;
            }
            sgemm(false, true, d->cout_g, kdim, p, dyg, p, src, p, 1.0f, dw + g * d->cout_g * kdim, kdim);
        }
    if (db) {
#pragma omp parallel for schedule(static)
        for (int64_t co = 0; co < d->cout; co++) {
            double sum = 0.0;
            for (int64_t n = 0; n < d->n; n++) {
                const float *dyp = dy + (n * d->cout + co) * p;
                for (int64_t i = 0; i < p; i++) sum += dyp[i];
            }
            db[co] += (float)sum;
        }
    }
}
