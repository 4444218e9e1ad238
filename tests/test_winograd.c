/* test_winograd: the cpu backend's Winograd convolutions against its direct ones on every 3x3 stride-1 layer shape of
 * Unet-resnet34 at 512x512 (forward, backward-data, backward-weights), and both against float64 at sampled points. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"
#include "backends/register.h"
#include "core/model/arch.h"
#include "core/rng.h"
#include "tests/check.h"

/* The bounds. An error is the largest |error| over the elements compared divided by the root mean square of the
 * reference there, so it does not depend on the data's scale. Measured on these shapes (AMD EPYC Zen 4, oneDNN 2.6
 * jit_wino_4x3:avx512_core, F(4x4, 3x3)): against float64, forward and backward-data 2.5e-6 to 8.7e-6 (direct:
 * 0.8e-6 to 1.5e-6), weight gradients 1.1e-6 to 3.7e-6 (direct: 1e-6 to 3.3e-5, its sums over 262144 pixels are
 * the worse ones); against direct over every element, 4.4e-6 to 3.9e-5. The bounds leave 2.5x to 3.5x room. */
#define WINO_VS_F64 3e-5    /* sampled elements against float64 */
#define WINO_VS_DIRECT 1e-4 /* every element against the direct convolution */
#define SAMPLES 2048

typedef struct tens {
    pn_buffer buf;
    pn_tensor t;
    float *host; /* NCHW copy */
} tens;

static void tens_make(pn_backend *be, tens *x, pn_tensor shape, uint32_t stream, float scale, bool normal) {
    memset(x, 0, sizeof *x);
    x->t = shape;
    CHECK(pn_buffer_alloc(be, &x->buf, pn_tensor_bytes(&x->t)) == PN_OK);
    x->t.buf = &x->buf;
    int64_t n = pn_tensor_numel(&x->t);
    x->host = malloc((size_t)n * sizeof *x->host);
    pn_rng r = pn_rng_make(42, PN_RNG_TEST, stream, 0);
    for (int64_t i = 0; i < n; i++)
        x->host[i] = scale * (normal ? pn_rng_normal(&r) : pn_rng_uniform_range(&r, -1.0f, 1.0f));
    CHECK(pn_tensor_set(&x->t, x->host) == PN_OK);
}

static void tens_free(tens *x) {
    pn_buffer_free(&x->buf);
    free(x->host);
}

/* Runs one conv node with algorithm `algo` on the tensors' host values and returns its first output (NCHW, caller
 * frees). */
static float *run(pn_backend *be, pn_node *node, tens *all[4], const char *algo) {
    for (int i = 0; i < 4; i++) CHECK(pn_tensor_set(&all[i]->t, all[i]->host) == PN_OK);
    CHECK(pn_cpu_set_conv_algo(be, algo) == PN_OK);
    pn_status st = pn_node_prepare(be, node);
    CHECK_MSG(st != PN_OK || pn_cpu_conv_is_winograd(node) == (strcmp(algo, "winograd") == 0),
              "%s: --conv-algo %s did not run %s", node->label, algo, algo);
    for (int i = 0; i < 2 && st == PN_OK && node->op == PN_OP_CONV2D_BWD_WEIGHTS; i++) { /* gradients accumulate */
        if (!node->out[i]) continue;
        int64_t n = pn_tensor_numel(node->out[i]);
        float *zero = calloc((size_t)n, sizeof *zero);
        st = pn_tensor_set(node->out[i], zero);
        free(zero);
    }
    if (st == PN_OK) st = pn_node_compute(be, node);
    CHECK_MSG(st == PN_OK, "%s %s: %s", node->label, algo, pn_last_error());
    int64_t n = pn_tensor_numel(node->out[0]);
    float *out = malloc((size_t)n * sizeof *out);
    CHECK(pn_tensor_get(node->out[0], out) == PN_OK);
    pn_node_release(be, node);
    return out;
}

static double rms(const float *v, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s / (double)(n > 0 ? n : 1));
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* Float64 forward (out = conv(x, w)) or backward-data (out = conv_transpose(dy, w)) at one output element. */
static double ref_at(bool bwd_data, const float *in, const float *w, const float *bias, int64_t cin, int64_t cout,
                     int64_t h, int64_t wd, int64_t c, int64_t y, int64_t x) {
    double s = bias && !bwd_data ? bias[c] : 0;
    int64_t n_in = bwd_data ? cout : cin; /* channels summed over */
    for (int64_t j = 0; j < n_in; j++)
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
                int64_t iy = bwd_data ? y + 1 - ky : y + ky - 1, ix = bwd_data ? x + 1 - kx : x + kx - 1;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                double wv = bwd_data ? w[((j * cin + c) * 3 + ky) * 3 + kx] : w[((c * cin + j) * 3 + ky) * 3 + kx];
                s += wv * in[(j * h + iy) * wd + ix];
            }
    return s;
}

/* Float64 weight gradient dw[k][c][ky][kx] = sum over pixels of dy[k] * x[c] shifted. */
static double ref_dw(const float *dy, const float *x, int64_t cin, int64_t h, int64_t wd, int64_t k, int64_t c, int ky,
                     int kx) {
    double s = 0;
    for (int64_t y = 0; y < h; y++)
        for (int64_t xx = 0; xx < wd; xx++) {
            int64_t iy = y + ky - 1, ix = xx + kx - 1;
            if (iy >= 0 && iy < h && ix >= 0 && ix < wd)
                s += (double)dy[(k * h + y) * wd + xx] * x[(c * h + iy) * wd + ix];
        }
    (void)cin;
    return s;
}

static double sampled_dw_error(const float *got, const float *dy, const float *x, int64_t cin, int64_t cout, int64_t h,
                               int64_t wd, uint32_t stream) {
    pn_rng r = pn_rng_make(44, PN_RNG_TEST, stream, 0);
    double worst = 0, sq = 0;
    for (int i = 0; i < SAMPLES / 32; i++) {
        int64_t k = pn_rng_below(&r, (uint32_t)cout), c = pn_rng_below(&r, (uint32_t)cin);
        int ky = (int)pn_rng_below(&r, 3), kx = (int)pn_rng_below(&r, 3);
        double want = ref_dw(dy, x, cin, h, wd, k, c, ky, kx);
        worst = fmax(worst, fabs(got[((k * cin + c) * 3 + ky) * 3 + kx] - want));
        sq += want * want;
    }
    return worst / sqrt(sq / (SAMPLES / 32));
}

/* Largest error of `got` at SAMPLES sampled elements against float64, over the rms of those references. */
static double sampled_error(bool bwd_data, const float *got, const float *in, const float *w, const float *bias,
                            int64_t cin, int64_t cout, int64_t h, int64_t wd, uint32_t stream) {
    pn_rng r = pn_rng_make(43, PN_RNG_TEST, stream, 0);
    int64_t channels = bwd_data ? cin : cout;
    double worst = 0, sq = 0;
    for (int i = 0; i < SAMPLES; i++) {
        int64_t c = pn_rng_below(&r, (uint32_t)channels), y = pn_rng_below(&r, (uint32_t)h),
                x = pn_rng_below(&r, (uint32_t)wd);
        if (i < 16) y = i % 2 ? h - 1 : 0; /* borders and tile edges too */
        double want = ref_at(bwd_data, in, w, bias, cin, cout, h, wd, c, y, x);
        worst = fmax(worst, fabs(got[(c * h + y) * wd + x] - want));
        sq += want * want;
    }
    return worst / sqrt(sq / SAMPLES);
}

static void check_layer(pn_backend *be, const pn_conv_shape *l, uint32_t id) {
    int64_t h = l->h;
    tens x, w, y;
    tens_make(be, &x, pn_tensor_nchw(1, l->cin, h, h), 3 * id, 1.0f, false);
    tens_make(be, &w, pn_tensor_nchw(l->cout, l->cin, 3, 3), 3 * id + 1, sqrtf(2.0f / (9.0f * (float)l->cin)), true);
    tens_make(be, &y, pn_tensor_nchw(1, l->cout, h, h), 3 * id + 2, 1.0f, false);
    tens b; /* the head's bias */
    tens_make(be, &b, pn_tensor_vec(l->cout), 3 * id + 3, 0.1f, false);
    pn_tensor *bias = l->bias ? &b.t : NULL;
    const char *kind[3] = {"fwd", "bwd_data", "bwd_weights"};
    for (int k = 0; k < 3; k++) {
        pn_node node;
        memset(&node, 0, sizeof node);
        node.label = l->name;
        pn_conv2d_params p = {1, 1, 1};
        if (k == 0) {
            node.op = PN_OP_CONV2D_FWD, node.p.conv2d_fwd = p;
            node.out[0] = &y.t, node.in[0] = &x.t, node.in[1] = &w.t, node.in[2] = bias;
        } else if (k == 1) {
            node.op = PN_OP_CONV2D_BWD_DATA, node.p.conv2d_bwd_data = p;
            node.out[0] = &x.t, node.in[0] = &y.t, node.in[1] = &w.t;
        } else {
            node.op = PN_OP_CONV2D_BWD_WEIGHTS, node.p.conv2d_bwd_weights = p;
            node.out[0] = &w.t, node.out[1] = bias, node.in[0] = &y.t, node.in[1] = &x.t;
        }
        int64_t n = pn_tensor_numel(node.out[0]);
        tens *all[4] = {&x, &w, &y, &b};
        float *direct = run(be, &node, all, "direct"), *wino = run(be, &node, all, "winograd");
        double scale = rms(direct, n), vs_direct = max_diff(wino, direct, n) / scale;
        printf("  %-18s %4d->%-4d @%-3lld %-11s Winograd vs direct %.2e", l->name, l->cin, l->cout, (long long)h,
               kind[k], vs_direct);
        CHECK_MSG(vs_direct <= WINO_VS_DIRECT, "%s %s: Winograd vs direct %.3g > %.3g", l->name, kind[k], vs_direct,
                  WINO_VS_DIRECT);
        if (k < 2) {
            const float *in = k == 0 ? x.host : y.host;
            const float *bh = l->bias ? b.host : NULL;
            double e_w = sampled_error(k == 1, wino, in, w.host, bh, l->cin, l->cout, h, h, id);
            double e_d = sampled_error(k == 1, direct, in, w.host, bh, l->cin, l->cout, h, h, id);
            printf(", vs float64: Winograd %.2e, direct %.2e", e_w, e_d);
            CHECK_MSG(e_w <= WINO_VS_F64, "%s %s: Winograd vs float64 %.3g > %.3g", l->name, kind[k], e_w, WINO_VS_F64);
        } else {
            double e_w = sampled_dw_error(wino, y.host, x.host, l->cin, l->cout, h, h, id);
            double e_d = sampled_dw_error(direct, y.host, x.host, l->cin, l->cout, h, h, id);
            printf(", vs float64: Winograd %.2e, direct %.2e", e_w, e_d);
            CHECK_MSG(e_w <= WINO_VS_F64, "%s %s: Winograd vs float64 %.3g > %.3g", l->name, kind[k], e_w, WINO_VS_F64);
        }
        printf("\n");
        free(direct);
        free(wino);
        /* the weights tensor was overwritten by bwd_weights last: nothing reads it afterwards */
    }
    tens_free(&x);
    tens_free(&w);
    tens_free(&y);
    tens_free(&b);
}

int main(void) {
    pn_register_builtin_backends();
    pn_backend *be = NULL;
    if (pn_backend_open("cpu", 0, &be) != PN_OK) {
        SKIP("Winograd: no cpu backend (%s)", pn_last_error());
        return check_report("test_winograd");
    }
    if (!pn_cpu_winograd_available()) {
        SKIP("Winograd: %s", pn_cpu_winograd_why());
        /* what the user gets instead: one clear refusal */
        CHECK(pn_cpu_set_conv_algo(be, "winograd") == PN_ERR_UNSUPPORTED);
        pn_backend_close(be);
        return check_report("test_winograd");
    }
    CHECK(pn_cpu_set_conv_algo(be, "fastest") == PN_ERR_ARG);
    /* every dense 3x3 stride-1 shape of the resnet34 U-Net at 512 (from the model's description) */
    pn_arch arch;
    pn_conv_shape layers[128];
    int n = 0;
    CHECK(pn_arch_make("resnet34", "unet", "none", &arch) == PN_OK);
    CHECK(pn_arch_conv_shapes(&arch, 512, 512, layers, 128, &n) == PN_OK);
    CHECK_MSG(n > 10, "the resnet34 U-Net has %d convolution shapes", n);
    for (int i = 0; i < n; i++)
        if (layers[i].k == 3 && layers[i].stride == 1 && layers[i].groups == 1)
            check_layer(be, &layers[i], (uint32_t)i);
    pn_backend_close(be);
    return check_report("test_winograd");
}
