/* The cpu backend's int8 Winograd F(2x2, 3x3) kernel (backends/cpu/conv2d_wino8.c) against the convolution in double:
 * odd sides (edge tiles), input channels that are not a multiple of 32 or of 4, 16 and 32 output channel blocks,
 * float32, u8 and s8 outputs, ReLU; the input holds zero tiles, small values (scaled up when requantized) and large
 * ones (scaled down). The nodes that run it (int8 convolutions with --conv-algo auto) are checked in test_int8.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/conv2d.h"
#include "core/rng.h"
#include "tests/check.h"

/* The kernel's error against double, over the output's root mean square, measured on these cases (AMD EPYC Zen 4):
 * rms 0.005-0.012, max 0.04-0.11. It comes from the transformed input brought back to 8 bits per tile and position
 * (about 7 bits where a tile's values use the whole u8 range) and the transformed weights' 8 bits. The kernel's
 * integer and float steps are the same on every CPU that runs it, so the bounds sit close (about 1.3x): a scale 2%
 * off, or an input offset of 127 for 128, fails them. */
#define RMS_BOUND 0.015
#define MAX_BOUND 0.15

typedef struct wcase {
    int n, cin, h, w, cout;
    bool relu;
    int out_type;
} wcase;

/* u8 nhwc input: the first rows of image 0 zero (all-zero tiles), the next small (below 20), the rest half zeros
 * (a ReLU's output) and half anything up to 255. */
static uint8_t *make_input(const wcase *c, uint32_t stream) {
    int64_t count = (int64_t)c->n * c->h * c->w * c->cin;
    uint8_t *x = malloc((size_t)count);
    pn_rng r = pn_rng_make(3, PN_RNG_TEST, stream, 0);
    for (int64_t i = 0; i < count; i++) {
        int64_t row = i / ((int64_t)c->w * c->cin); /* image-major: rows of image 0 come first */
        double u = pn_rng_uniform(&r);
        x[i] = row < 2 ? 0 : row < 4 ? (uint8_t)(u * 20) : u < 0.5 ? 0 : (uint8_t)(pn_rng_uniform(&r) * 255.99);
    }
    return x;
}

/* y (nhwc, double) = conv3x3 pad 1 of x / scale with weights w (cout x cin x 3 x 3) times bn, plus bias. */
static void conv_ref(const wcase *c, const uint8_t *x, float scale, const float *w, const float *bn, const float *bias,
                     double *y) {
    for (int i = 0; i < c->n; i++)
        for (int yy = 0; yy < c->h; yy++)
            for (int xx = 0; xx < c->w; xx++)
                for (int o = 0; o < c->cout; o++) {
                    double acc = 0;
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int iy = yy + ky - 1, ix = xx + kx - 1;
                            if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) continue;
                            const uint8_t *px = x + (((int64_t)i * c->h + iy) * c->w + ix) * c->cin;
                            for (int ci = 0; ci < c->cin; ci++)
                                acc += px[ci] * (double)w[((o * c->cin + ci) * 3 + ky) * 3 + kx];
                        }
                    y[(((int64_t)i * c->h + yy) * c->w + xx) * c->cout + o] = acc * bn[o] / scale + bias[o];
                }
}

/* What the kernel should store for a reference value: ReLU, then float32, or 8 bits of v * mul saturated, given back
 * in the float32 scale. */
static double expected(const wcase *c, double v, float mul) {
    if (c->relu) v = fmax(v, 0.0);
    if (c->out_type == PN_WINO8_F32) return v;
    double lo = c->out_type == PN_WINO8_U8 ? 0 : -128, hi = c->out_type == PN_WINO8_U8 ? 255 : 127;
    return fmin(fmax(v * mul, lo), hi) / mul;
}

static double got_value(const wcase *c, const void *y, int64_t i, float mul) {
    if (c->out_type == PN_WINO8_F32) return ((const float *)y)[i];
    if (c->out_type == PN_WINO8_U8) return ((const uint8_t *)y)[i] / (double)mul;
    return ((const int8_t *)y)[i] / (double)mul;
}

static void check_case(const wcase *c, uint32_t stream) {
    int64_t nx = (int64_t)c->n * c->h * c->w, ny = nx * c->cout, nw = (int64_t)c->cout * c->cin * 9;
    uint8_t *x = make_input(c, stream);
    float *w = malloc((size_t)nw * sizeof *w), *bn = malloc((size_t)c->cout * sizeof *bn),
          *bias = malloc((size_t)c->cout * sizeof *bias);
    pn_rng r = pn_rng_make(5, PN_RNG_TEST, stream, 0);
    for (int64_t i = 0; i < nw; i++) w[i] = (float)(pn_rng_normal(&r) / sqrt(9.0 * c->cin));
    for (int o = 0; o < c->cout; o++) {
        bn[o] = (float)pn_rng_uniform_range(&r, -1.5f, 1.5f); /* negative: the weights' signs flip */
        bias[o] = (float)(0.2 * pn_rng_normal(&r));
    }
    const float scale = 255.0f / 4.0f; /* the input's u8 = x * scale */
    double *want = malloc((size_t)ny * sizeof *want);
    conv_ref(c, x, scale, w, bn, bias, want);
    double sq = 0;
    for (int64_t i = 0; i < ny; i++) sq += want[i] * want[i];
    double rms = sqrt(sq / (double)ny);
    float mul = (float)(60.0 / rms); /* 8-bit outputs: a step of 1/60 of the rms, saturating above about 4 x rms */
    pn_wino8 *k = NULL;
    CHECK(pn_cpu_wino8_make(&k, w, 1, c->cout, c->cin, bn, bias, scale) == PN_OK);
    int threads = 2;
    char *scratch = malloc(pn_cpu_wino8_scratch_bytes(c->cin, c->n, c->h, c->w, threads));
    void *y = malloc((size_t)ny * sizeof(float));
    memset(y, 0xAA, (size_t)ny * sizeof(float));
    pn_cpu_wino8_run(k, x, c->n, c->h, c->w, y, c->out_type, mul, c->relu, threads, scratch);
    double err = 0, worst = 0;
    for (int64_t i = 0; i < ny; i++) {
        double d = fabs(got_value(c, y, i, mul) - expected(c, want[i], mul));
        err += d * d;
        worst = fmax(worst, d);
    }
    err = sqrt(err / (double)ny) / rms, worst /= rms;
    const char *type[] = {"float32", "u8", "s8"};
    printf("  %d x %d x %dx%d -> %d, %s%s: error rms %.4f, max %.4f of the output rms %.3f\n", c->n, c->cin, c->h, c->w,
           c->cout, type[c->out_type], c->relu ? ", ReLU" : "", err, worst, rms);
    CHECK_MSG(err <= RMS_BOUND && worst <= MAX_BOUND, "int8 Winograd %dx%dx%dx%d->%d: error rms %.4f, max %.4f", c->n,
              c->cin, c->h, c->w, c->cout, err, worst);
    pn_cpu_wino8_free(k);
    free(x);
    free(w);
    free(bn);
    free(bias);
    free(want);
    free(scratch);
    free(y);
}

/* A weight that is not finite has no scale: an error, nothing made. */
static void check_nan_weight(void) {
    float w[2 * 16 * 9] = {0}, bn[16];
    for (int o = 0; o < 16; o++) bn[o] = 1.0f;
    w[40] = NAN;
    pn_wino8 *k = (pn_wino8 *)&w; /* anything but NULL: make sets it */
    CHECK(pn_cpu_wino8_make(&k, w, 1, 16, 2, bn, NULL, 1.0f) == PN_ERR_NUMERIC);
    CHECK_MSG(k == NULL, "a failed make left a kernel behind");
}

int main(void) {
    check_nan_weight();
    if (!pn_cpu_wino8_supported()) {
        SKIP("int8 Winograd: this CPU has no AVX-512 VNNI, so the kernel never runs here (the int8 convolutions run "
             "oneDNN's direct ones; test_int8 checks that)");
        return check_report("test_wino8");
    }
    const wcase cases[] = {
        {2, 40, 13, 11, 48, false, PN_WINO8_F32}, /* 40: a 32-channel run and a tail; 48: blocks of 32 and 16 */
        {1, 6, 7, 9, 16, true, PN_WINO8_F32},     /* 6: not a multiple of 4 */
        {2, 64, 10, 10, 32, true, PN_WINO8_U8},   /* the next int8 convolution's input */
        {1, 32, 5, 6, 16, false, PN_WINO8_S8},
        /* the channels of every 3x3 stride-1 convolution --conv-algo auto gives it (from 128 inputs and 64 outputs)
         * in the U-Nets on resnet34 and resnet50, at small sides: encoder layers 2-4 and the decoder blocks' second
         * convolutions; the decoder blocks' first (upsampled input + skip -> out) */
        {1, 128, 9, 9, 128, true, PN_WINO8_U8},
        {1, 256, 7, 7, 256, true, PN_WINO8_F32},
        {1, 512, 5, 5, 512, true, PN_WINO8_U8},
        {1, 768, 5, 5, 256, true, PN_WINO8_U8},  /* resnet34 decoder 0: 512 + 256 -> 256 */
        {1, 384, 6, 6, 128, true, PN_WINO8_U8},  /* resnet34 decoder 1: 256 + 128 -> 128 */
        {1, 192, 8, 8, 64, true, PN_WINO8_U8},   /* resnet34 decoder 2: 128 + 64 -> 64 */
        {1, 3072, 4, 4, 256, true, PN_WINO8_U8}, /* resnet50 decoder 0: 2048 + 1024 -> 256 */
        {1, 768, 5, 5, 128, true, PN_WINO8_U8},  /* resnet50 decoder 1: 256 + 512 -> 128 */
        {1, 384, 6, 6, 64, true, PN_WINO8_U8},   /* resnet50 decoder 2: 128 + 256 -> 64 */
        {1, 128, 8, 8, 64, true, PN_WINO8_F32},  /* the smallest channels it takes, float32 out */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], (uint32_t)i);
    return check_report("test_wino8");
}
