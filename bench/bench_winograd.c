/* bench_winograd: an experiment, Winograd F(4x4, 3x3) for the U-Net's stride-1 3x3 convolutions (fp32, NCHW,
 * transforms on OpenMP threads, the 36 products as OpenBLAS sgemm with its own threads off inside the OpenMP
 * region), timed against the cpu backend's oneDNN direct convolution on the same shapes, with its error
 * against the ref backend. Not used by the engine: see bench/README.md for what it measured. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef PN_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "backends/register.h"
#include "tools/conv_layers.h"
#include "core/rng.h"

#define T 6 /* tile side: 4 outputs + 3 - 1 */

/* U[e][k][c] = (G g G^T)[e] for every output channel k and input channel c. */
static void transform_weights(float *u, const float *w, int64_t k_out, int64_t c_in) {
    static const float g[6][3] = {{1.0f / 4, 0, 0},
                                  {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                  {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                                  {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                  {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                  {0, 0, 1}};
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t k = 0; k < k_out; k++)
        for (int64_t c = 0; c < c_in; c++) {
            const float *gw = w + (k * c_in + c) * 9;
            float tmp[6][3];
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 3; j++) tmp[i][j] = g[i][0] * gw[j] + g[i][1] * gw[3 + j] + g[i][2] * gw[6 + j];
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++)
                    u[((i * 6 + j) * k_out + k) * c_in + c] =
                        tmp[i][0] * g[j][0] + tmp[i][1] * g[j][1] + tmp[i][2] * g[j][2];
        }
}

/* B^T d B for one 6x6 patch d (rows then columns). */
static void input_tile(float out[36], float d[6][6]) {
    float t[6][6];
    for (int j = 0; j < 6; j++) {
        float d0 = d[0][j], d1 = d[1][j], d2 = d[2][j], d3 = d[3][j], d4 = d[4][j], d5 = d[5][j];
        t[0][j] = 4 * d0 - 5 * d2 + d4;
        t[1][j] = -4 * d1 - 4 * d2 + d3 + d4;
        t[2][j] = 4 * d1 - 4 * d2 - d3 + d4;
        t[3][j] = -2 * d1 - d2 + 2 * d3 + d4;
        t[4][j] = 2 * d1 - d2 - 2 * d3 + d4;
        t[5][j] = 4 * d1 - 5 * d3 + d5;
    }
    for (int i = 0; i < 6; i++) {
        float d0 = t[i][0], d1 = t[i][1], d2 = t[i][2], d3 = t[i][3], d4 = t[i][4], d5 = t[i][5];
        out[i * 6 + 0] = 4 * d0 - 5 * d2 + d4;
        out[i * 6 + 1] = -4 * d1 - 4 * d2 + d3 + d4;
        out[i * 6 + 2] = 4 * d1 - 4 * d2 - d3 + d4;
        out[i * 6 + 3] = -2 * d1 - d2 + 2 * d3 + d4;
        out[i * 6 + 4] = 2 * d1 - d2 - 2 * d3 + d4;
        out[i * 6 + 5] = 4 * d1 - 5 * d3 + d5;
    }
}

/* A^T m A: 6x6 -> 4x4. */
static void output_tile(float y[4][4], const float m[36]) {
    float t[4][6];
    for (int j = 0; j < 6; j++) {
        float m0 = m[j], m1 = m[6 + j], m2 = m[12 + j], m3 = m[18 + j], m4 = m[24 + j], m5 = m[30 + j];
        t[0][j] = m0 + m1 + m2 + m3 + m4;
        t[1][j] = m1 - m2 + 2 * m3 - 2 * m4;
        t[2][j] = m1 + m2 + 4 * m3 + 4 * m4;
        t[3][j] = m1 - m2 + 8 * m3 - 8 * m4 + m5;
    }
    for (int i = 0; i < 4; i++) {
        float m0 = t[i][0], m1 = t[i][1], m2 = t[i][2], m3 = t[i][3], m4 = t[i][4], m5 = t[i][5];
        y[i][0] = m0 + m1 + m2 + m3 + m4;
        y[i][1] = m1 - m2 + 2 * m3 - 2 * m4;
        y[i][2] = m1 + m2 + 4 * m3 + 4 * m4;
        y[i][3] = m1 - m2 + 8 * m3 - 8 * m4 + m5;
    }
}

/* y (1, K, H, W) = conv3x3(x (1, C, H, W), pad 1) by F(4x4, 3x3); u from transform_weights; v, m scratch. */
static void winograd_fwd(float *y, const float *x, const float *u, float *v, float *m, int64_t c_in, int64_t k_out,
                         int64_t h, int64_t w) {
    int64_t th = (h + 3) / 4, tw = (w + 3) / 4, p = th * tw;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t c = 0; c < c_in; c++)
        for (int64_t ty = 0; ty < th; ty++) {
            const float *xc = x + c * h * w;
            for (int64_t tx = 0; tx < tw; tx++) {
                float d[6][6], out[36];
                for (int i = 0; i < 6; i++) {
                    int64_t iy = ty * 4 - 1 + i;
                    for (int j = 0; j < 6; j++) {
                        int64_t ix = tx * 4 - 1 + j;
                        d[i][j] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? xc[iy * w + ix] : 0.0f;
                    }
                }
                input_tile(out, d);
                for (int e = 0; e < 36; e++) v[(e * c_in + c) * p + ty * tw + tx] = out[e];
            }
        }
#pragma omp parallel for schedule(dynamic, 1)
    for (int e = 0; e < 36; e++) {
#ifdef PN_HAVE_OPENBLAS
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)k_out, (blasint)p, (blasint)c_in, 1.0f,
                    u + e * k_out * c_in, (blasint)c_in, v + e * c_in * p, (blasint)p, 0.0f, m + e * k_out * p,
                    (blasint)p);
#else
        for (int64_t k = 0; k < k_out; k++) {
            float *mr = m + (e * k_out + k) * p;
            memset(mr, 0, (size_t)p * sizeof(float));
            for (int64_t c = 0; c < c_in; c++) {
                float uv = u[(e * k_out + k) * c_in + c];
                const float *vr = v + (e * c_in + c) * p;
                for (int64_t i = 0; i < p; i++) mr[i] += uv * vr[i];
            }
        }
#endif
    }
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t k = 0; k < k_out; k++)
        for (int64_t ty = 0; ty < th; ty++)
            for (int64_t tx = 0; tx < tw; tx++) {
                float mt[36], yt[4][4];
                for (int e = 0; e < 36; e++) mt[e] = m[(e * k_out + k) * p + ty * tw + tx];
                output_tile(yt, mt);
                for (int i = 0; i < 4 && ty * 4 + i < h; i++)
                    for (int j = 0; j < 4 && tx * 4 + j < w; j++) y[(k * h + ty * 4 + i) * w + tx * 4 + j] = yt[i][j];
            }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Times the backend's CONV2D_FWD on (1, c, h, h) -> (1, k, h, h); returns the median ms; y gets NCHW output. */
static double time_backend(pn_backend *be, const float *x, const float *w, float *y, int64_t c, int64_t k, int64_t h,
                           int reps) {
    pn_buffer bx, bw, by;
    pn_tensor tx = pn_tensor_nchw(1, c, h, h), tw = pn_tensor_nchw(k, c, 3, 3), ty = pn_tensor_nchw(1, k, h, h);
    pn_buffer_alloc(be, &bx, pn_tensor_bytes(&tx));
    pn_buffer_alloc(be, &bw, pn_tensor_bytes(&tw));
    pn_buffer_alloc(be, &by, pn_tensor_bytes(&ty));
    tx.buf = &bx, tw.buf = &bw, ty.buf = &by;
    pn_tensor_set(&tx, x);
    pn_tensor_set(&tw, w);
    pn_node node;
    memset(&node, 0, sizeof node);
    node.op = PN_OP_CONV2D_FWD;
    node.p.conv2d_fwd = (pn_conv2d_params){1, 1, 1};
    node.out[0] = &ty, node.in[0] = &tx, node.in[1] = &tw;
    double t[64] = {0}, med = -1;
    if (pn_node_prepare(be, &node) == PN_OK) {
        for (int i = 0; i < reps + 2; i++) {
            double t0 = pn_now();
            pn_node_compute(be, &node);
            if (i >= 2) t[i - 2] = (pn_now() - t0) * 1e3;
        }
        qsort(t, (size_t)reps, sizeof *t, cmp_double);
        med = t[reps / 2];
        pn_tensor_get(&ty, y);
    }
    pn_node_release(be, &node);
    pn_buffer_free(&bx);
    pn_buffer_free(&bw);
    pn_buffer_free(&by);
    return med;
}

int main(int argc, char **argv) {
    int size = argc > 1 ? atoi(argv[1]) : 512, threads = argc > 2 ? atoi(argv[2]) : 2, reps = 5;
    pn_register_builtin_backends();
    pn_backend *cpu = NULL, *ref = NULL;
    if (pn_backend_open("cpu", threads, &cpu) != PN_OK || pn_backend_open("ref", 1, &ref) != PN_OK) {
        fprintf(stderr, "bench_winograd: %s\n", pn_last_error());
        return 1;
    }
#ifdef PN_HAVE_OPENBLAS
    openblas_set_num_threads(1); /* the 36 products run in parallel on the OpenMP threads */
#endif
    pn_conv_shape layers[64];
    pn_arch arch;
    int n = 0;
    if (pn_arch_make("resnet34", "unet", NULL, &arch) != PN_OK ||
        pn_arch_conv_shapes(&arch, size, size, layers, 64, &n) != PN_OK) {
        fprintf(stderr, "bench_winograd: %s\n", pn_last_error());
        return 1;
    }
    double total_direct = 0, total_wino = 0;
    printf("Winograd F(4x4,3x3) vs the cpu backend's oneDNN direct conv, batch 1, input %d, %d threads, median of %d\n",
           size, threads, reps);
    printf("%-20s %5s %5s %5s %10s %10s %8s %10s\n", "layer", "cin", "cout", "in", "direct_ms", "wino_ms", "speedup",
           "wino_NMSE");
    for (int li = 0; li < n; li++) {
        pn_conv_shape *l = &layers[li];
        if (l->k != 3 || l->stride != 1) continue;
        int64_t c = l->cin, k = l->cout, h = l->h, p = ((h + 3) / 4) * ((h + 3) / 4);
        float *x = malloc((size_t)(c * h * h) * 4), *w = malloc((size_t)(k * c * 9) * 4);
        float *yd = malloc((size_t)(k * h * h) * 4), *yw = malloc((size_t)(k * h * h) * 4);
        float *yr = malloc((size_t)(k * h * h) * 4), *u = malloc((size_t)(36 * k * c) * 4);
        float *v = malloc((size_t)(36 * c * p) * 4), *m = malloc((size_t)(36 * k * p) * 4);
        pn_rng r = pn_rng_make(3, 99, (uint32_t)li, 0);
        for (int64_t i = 0; i < c * h * h; i++) x[i] = pn_rng_uniform_range(&r, -1, 1);
        for (int64_t i = 0; i < k * c * 9; i++) w[i] = pn_rng_uniform_range(&r, -1, 1) / sqrtf((float)(9 * c));
        double direct = time_backend(cpu, x, w, yd, c, k, h, reps);
        time_backend(ref, x, w, yr, c, k, h, 1);
        double t[16] = {0};
        for (int i = 0; i < reps + 2; i++) {
            double t0 = pn_now();
            transform_weights(u, w, k, c); /* per call: the weights may change between calls */
            winograd_fwd(yw, x, u, v, m, c, k, h, h);
            if (i >= 2) t[i - 2] = (pn_now() - t0) * 1e3;
        }
        qsort(t, (size_t)reps, sizeof *t, cmp_double);
        double num = 0, den = 0;
        for (int64_t i = 0; i < k * h * h; i++) {
            num += ((double)yw[i] - yr[i]) * ((double)yw[i] - yr[i]);
            den += (double)yr[i] * yr[i];
        }
        total_direct += direct * l->count;
        total_wino += t[reps / 2] * l->count;
        printf("%-20s %5lld %5lld %5lld %10.2f %10.2f %8.2f %10.2e\n", l->name, (long long)c, (long long)k,
               (long long)h, direct, t[reps / 2], direct / t[reps / 2], num / den);
        free(x), free(w), free(yd), free(yw), free(yr), free(u), free(v), free(m);
    }
    printf("all stride-1 3x3 convs (x count): direct %.1f ms, Winograd %.1f ms\n", total_direct, total_wino);
    pn_backend_close(cpu);
    pn_backend_close(ref);
    return 0;
}
