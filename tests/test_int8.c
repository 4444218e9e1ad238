/* test_int8: the cpu backend's int8 inference against its float32 inference on Unet-resnet34 (seeded initialised
 * weights with BatchNorm statistics that are not the identity, ranges calibrated on seeded inputs): the int8 logits
 * stay within a stated bound of the float32 ones, and calibration records every convolution. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/conv2d.h"
#include "backends/cpu/cpu.h"
#include "backends/register.h"
#include "core/rng.h"
#include "core/unet.h"
#include "tests/check.h"

#define SIZE 128
#ifndef PERCENTILE
#define PERCENTILE 99.99 /* the input range: as pneumoseg quantize's default */
#endif
#define CALIB 4
/* int8 against float32 on the whole model: the largest |logit difference| over the root mean square of the float32
 * logits, and the same with the mean |difference|. On this untrained model (its inputs grow to ~900 by the decoder,
 * float32 logit rms 78) 46 int8 convolutions (all but the head) measured max 0.23 and mean 0.032 of rms (AMD EPYC
 * Zen 4, oneDNN 2.6 brgconv:avx512_core_vnni), 0.28 and 0.047 with 25 of them in the int8 Winograd (conv-algo auto);
 * the bounds leave about 2x and 1.3x room. The per-convolution arithmetic is
 * checked exactly above; quality on a trained model (Kaggle score, dice) is measured in bench/README.md. */
#define INT8_MAX_REL 0.5
#define INT8_MEAN_REL 0.06
/* The int8 Winograd (backends/cpu/conv2d_wino8.c, --conv-algo auto) against the direct int8 arithmetic in double: its
 * input transformed per tile and requantized to 8 bits adds error the direct convolution does not have; measured max
 * 0.06-0.11 of the output rms on these convolutions (tests/test_wino8.c checks the kernel itself more tightly). */
#define WINO8_MAX_REL 0.2

static void fill_input(float *x, int64_t n, uint32_t stream) {
    pn_rng r = pn_rng_make(7, PN_RNG_TEST, stream, 0);
    for (int64_t i = 0; i < n; i++) x[i] = pn_rng_normal(&r);
}

/* Running statistics that a trained model would have (means and variances away from 0 and 1), so folding matters. */
static void perturb_bn(pn_unet *m) {
    pn_rng r = pn_rng_make(9, PN_RNG_TEST, 99, 0);
    for (int i = 0; i < pn_unet_num_bns(m); i++) {
        pn_unet_bn *b = pn_unet_bn_at(m, i);
        int64_t c = pn_tensor_numel(&b->running_mean);
        float *mean = malloc((size_t)c * sizeof *mean), *var = malloc((size_t)c * sizeof *var);
        for (int64_t k = 0; k < c; k++) {
            mean[k] = 0.1f * pn_rng_normal(&r);
            var[k] = 0.5f + pn_rng_uniform(&r);
        }
        CHECK(pn_tensor_set(&b->running_mean, mean) == PN_OK);
        CHECK(pn_tensor_set(&b->running_var, var) == PN_OK);
        free(mean);
        free(var);
    }
}

typedef struct tens {
    pn_buffer buf;
    pn_tensor t;
    float *v; /* host values */
} tens;

static void tens_make(pn_backend *be, tens *x, pn_tensor shape, uint32_t stream, float lo, float hi) {
    x->t = shape;
    CHECK(pn_buffer_alloc(be, &x->buf, pn_tensor_bytes(&shape)) == PN_OK);
    x->t.buf = &x->buf;
    int64_t n = pn_tensor_numel(&shape);
    x->v = malloc((size_t)n * sizeof *x->v);
    pn_rng r = pn_rng_make(11, PN_RNG_TEST, stream, 0);
    for (int64_t i = 0; i < n; i++) x->v[i] = pn_rng_uniform_range(&r, lo, hi);
    CHECK(pn_tensor_set(&x->t, x->v) == PN_OK);
}

/* A 3x3 int8 convolution (stride 1, pad 1) with its BatchNorm, as the backend is given them. */
typedef struct qconv {
    int cin, cout;
    tens w, g, bt, mu, var;
} qconv;

static void qconv_make(pn_backend *be, qconv *c, int cin, int cout, uint32_t stream) {
    c->cin = cin, c->cout = cout;
    tens_make(be, &c->w, pn_tensor_nchw(cout, cin, 3, 3), stream, -0.1f, 0.1f);
    tens_make(be, &c->g, pn_tensor_vec(cout), stream + 1, -1.5f, 1.5f); /* negative gammas too: the weights' signs
                                                                          flip */
    tens_make(be, &c->bt, pn_tensor_vec(cout), stream + 2, -0.5f, 0.5f);
    tens_make(be, &c->mu, pn_tensor_vec(cout), stream + 3, -0.2f, 0.2f);
    tens_make(be, &c->var, pn_tensor_vec(cout), stream + 4, 0.3f, 2.0f);
}

static void tens_free(tens *t) {
    pn_buffer_free(&t->buf);
    free(t->v);
}

static void qconv_free(qconv *c) {
    tens *all[] = {&c->w, &c->g, &c->bt, &c->mu, &c->var};
    for (int i = 0; i < 5; i++) tens_free(all[i]);
}

/* Conv + BN + ReLU nodes on x -> y, fused as in inference. */
static void qconv_nodes(qconv *c, pn_node n[3], const char *label, tens *x, tens *y) {
    memset(n, 0, 3 * sizeof *n);
    n[0].op = PN_OP_CONV2D_FWD, n[0].p.conv2d_fwd = (pn_conv2d_params){1, 1, 1}, n[0].label = label;
    n[0].out[0] = &y->t, n[0].in[0] = &x->t, n[0].in[1] = &c->w.t;
    n[1].op = PN_OP_BATCHNORM_INFER_FWD, n[1].p.batchnorm_infer_fwd = (pn_batchnorm_params){1e-5f, 0.1f};
    n[1].out[0] = &y->t, n[1].in[0] = &y->t, n[1].in[1] = &c->g.t, n[1].in[2] = &c->bt.t, n[1].in[3] = &c->mu.t,
    n[1].in[4] = &c->var.t;
    n[2].op = PN_OP_RELU_FWD, n[2].out[0] = &y->t, n[2].in[0] = &y->t;
}

/* The same arithmetic in double: u8 input rne(x * a) with a = 255 / hi (values above hi saturate at 255), or with a
 * range below 0 (lo < 0) s8 input with a = 127 / max(hi, -lo) saturating at -128 and 127; weights rne(w * s_bn * b)
 * with b = Q / max|w * s_bn| per output channel (Q: pn_cpu_int8_weight_max), y = relu((sum q_x q_w + folded bias * a *
 * b) / (a * b) + addend) (addend NULL: none). What oneDNN adds is only its own float rounding. */
static void qconv_ref(const qconv *c, const double *x, int h, double lo, double hi, const float *addend, double *y) {
    bool is_signed = lo < 0;
    double a = is_signed ? 127.0 / fmax(hi, -lo) : 255.0 / hi, qmin = is_signed ? -128.0 : 0.0,
           qmax = is_signed ? 127.0 : 255.0;
    const float *w = c->w.v;
    int C = c->cin;
    for (int k = 0; k < c->cout; k++) {
        double s = c->g.v[k] / sqrt((double)c->var.v[k] + 1e-5), fb = c->bt.v[k] - c->mu.v[k] * s, amax = 0;
        for (int i = 0; i < C * 9; i++) amax = fmax(amax, fabs(w[k * C * 9 + i] * s));
        double b = pn_cpu_int8_weight_max() / amax;
        for (int yy = 0; yy < h; yy++)
            for (int xx = 0; xx < h; xx++) {
                double acc = 0;
                for (int ci = 0; ci < C; ci++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int iy = yy + ky - 1, ix = xx + kx - 1;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= h) continue;
                            double qx = fmax(fmin(nearbyint(x[(ci * h + iy) * h + ix] * a), qmax), qmin);
                            acc += qx * nearbyint(w[((k * C + ci) * 3 + ky) * 3 + kx] * s * b);
                        }
                int at = (k * h + yy) * h + xx;
                y[at] = fmax(0.0, (acc + fb * a * b) / (a * b) + (addend ? addend[at] : 0.0));
            }
    }
}

/* The largest |got - want| over the root mean square of want, printed with `what`. */
static double rel_error(const char *what, const float *got, const double *want, int64_t n) {
    double worst = 0, sq = 0;
    for (int64_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(got[i] - want[i]));
        sq += want[i] * want[i];
    }
    double rms = sqrt(sq / (double)n);
    printf("  %s against the same arithmetic in double: max |diff| %.2e (output rms %.3f)\n", what, worst, rms);
    return worst / rms;
}

static double *to_double(const float *v, int64_t n) {
    double *d = malloc((size_t)n * sizeof *d);
    for (int64_t i = 0; i < n; i++) d[i] = v[i];
    return d;
}

/* The reader of a link prepared again on its own reads float32: the writer refuses to run. */
static void check_broken_link(pn_backend *be, pn_node *writer, pn_node *reader, const char *what) {
    reader->in_last_use[0] = false;
    CHECK(pn_node_prepare(be, reader) == PN_OK);
    CHECK_MSG(pn_node_compute(be, writer) == PN_ERR_BACKEND, "a broken %s ran", what);
}

/* Releases nodes n[count - 1] .. n[0] and forgets the int8 convolutions. */
static void release_nodes(pn_backend *be, pn_node *n, int count) {
    for (int i = count - 1; i >= 0; i--) pn_node_release(be, &n[i]);
    CHECK(pn_cpu_int8_set(be, 0, NULL, NULL, NULL) == PN_OK);
}

/* One int8 conv + BN + ReLU against qconv_ref; then again after the weights and the BatchNorm statistics changed
 * (pn_tensor_set): the int8 weights the convolution keeps between forwards are made anew, not reused stale; and a
 * change that moves the weights' scales, fixed when the primitive was made, is an error. */
static void check_one_conv(pn_backend *be) {
    enum { C = 48, K = 32, H = 20 };
    tens x, y;
    qconv c;
    tens_make(be, &x, pn_tensor_nchw(1, C, H, H), 1, 0.0f, 2.0f);
    tens_make(be, &y, pn_tensor_nchw(1, K, H, H), 3, 0.0f, 0.0f);
    qconv_make(be, &c, C, K, 4);
    const float hi = 1.5f; /* the calibrated range: inputs above it saturate */
    const char *label = "probe.weight";
    float lo0 = 0;
    CHECK(pn_cpu_int8_set(be, 1, &label, &lo0, &hi) == PN_OK);
    pn_node n[3];
    qconv_nodes(&c, n, label, &x, &y);
    for (int i = 0; i < 3; i++) CHECK(pn_node_prepare(be, &n[i]) == PN_OK);
    float *got = malloc(K * H * H * sizeof *got);
    double *xd = to_double(x.v, C * H * H), *want = malloc(K * H * H * sizeof *want);
    for (int round = 0; round < 3; round++) {
        if (round == 2) { /* new weights and statistics with the same per-channel scales: the same max |w * s_bn| */
            for (int k = 0; k < K; k++) {
                float *wk = c.w.v + k * C * 9, amax = 0;
                for (int i = 0; i < C * 9; i++) amax = fmaxf(amax, fabsf(wk[i]));
                for (int i = k % 7; i < C * 9; i += 7)
                    if (fabsf(wk[i]) < amax) wk[i] *= 0.5f;
            }
            for (int k = 0; k < K; k++) c.mu.v[k] += 0.25f;
            CHECK(pn_tensor_set(&c.w.t, c.w.v) == PN_OK);
            CHECK(pn_tensor_set(&c.mu.t, c.mu.v) == PN_OK);
        }
        for (int i = 0; i < 3; i++) CHECK(pn_node_compute(be, &n[i]) == PN_OK);
        CHECK(pn_tensor_get(&y.t, got) == PN_OK);
        qconv_ref(&c, xd, H, lo0, hi, NULL, want);
        const char *what[] = {"one int8 conv + BN + ReLU", "the same, run again (weights kept)",
                              "the same after new weights and BN statistics"};
        double rel = rel_error(what[round], got, want, K * H * H);
        CHECK_MSG(rel <= 1e-3, "%s: max |diff| %.3g x rms > 1e-3", what[round], rel);
    }
    for (int i = 0; i < K * C * 9; i++) c.w.v[i] *= 2.0f; /* new scales */
    CHECK(pn_tensor_set(&c.w.t, c.w.v) == PN_OK);
    CHECK_MSG(pn_node_compute(be, &n[0]) == PN_ERR_ARG, "weights with new scales ran on the old int8 primitive");
    c.w.v[5] = NAN; /* nothing to scale by: an error, not a wrong output */
    CHECK(pn_tensor_set(&c.w.t, c.w.v) == PN_OK);
    CHECK_MSG(pn_node_compute(be, &n[0]) == PN_ERR_NUMERIC, "a NaN weight ran in int8");
    release_nodes(be, n, 3);
    qconv_free(&c);
    tens_free(&x);
    tens_free(&y);
    free(got);
    free(xd);
    free(want);
}

/* An int8 conv whose input range goes below 0 (a stem on the normalised image): s8 input, saturating on both sides. */
static void check_signed_input(pn_backend *be) {
    enum { C = 16, K = 32, H = 14 };
    tens x, y;
    qconv c;
    tens_make(be, &x, pn_tensor_nchw(1, C, H, H), 71, -2.0f, 2.0f);
    tens_make(be, &y, pn_tensor_nchw(1, K, H, H), 72, 0.0f, 0.0f);
    qconv_make(be, &c, C, K, 80);
    const char *label = "probe.signed";
    float lo = -1.2f, hi = 1.5f; /* scale 127 / 1.5: values below -1.5 and above 1.5 saturate */
    CHECK(pn_cpu_int8_set(be, 1, &label, &lo, &hi) == PN_OK);
    pn_node n[3];
    qconv_nodes(&c, n, label, &x, &y);
    for (int i = 0; i < 3; i++) CHECK(pn_node_prepare(be, &n[i]) == PN_OK);
    for (int i = 0; i < 3; i++) CHECK(pn_node_compute(be, &n[i]) == PN_OK);
    float *got = malloc(K * H * H * sizeof *got);
    double *xd = to_double(x.v, C * H * H), *want = malloc(K * H * H * sizeof *want);
    CHECK(pn_tensor_get(&y.t, got) == PN_OK);
    if (pn_cpu_int8_vnni()) {
        qconv_ref(&c, xd, H, lo, hi, NULL, want);
        double rel = rel_error("one int8 conv with an s8 input + BN + ReLU", got, want, K * H * H);
        CHECK_MSG(rel <= 1e-3, "s8 input: max |diff| %.3g x rms > 1e-3", rel);
    } else { /* float32 there: the same output as with no int8 convolution at all */
        float *f32 = malloc(K * H * H * sizeof *f32);
        release_nodes(be, n, 3);
        for (int i = 0; i < 3; i++) CHECK(pn_node_prepare(be, &n[i]) == PN_OK);
        for (int i = 0; i < 3; i++) CHECK(pn_node_compute(be, &n[i]) == PN_OK);
        CHECK(pn_tensor_get(&y.t, f32) == PN_OK);
        CHECK_MSG(memcmp(got, f32, K * H * H * sizeof *f32) == 0, "an s8-input conv without VNNI did not run float32");
        SKIP("s8 input in int8: this CPU has no VNNI, so a convolution with an input below 0 stays float32 "
             "(checked: its output is float32's)");
        free(f32);
    }
    release_nodes(be, n, 3);
    qconv_free(&c);
    tens_free(&x);
    tens_free(&y);
    free(got);
    free(xd);
    free(want);
}

/* Whether int8 convolutions may run the int8 Winograd here: the CPU has AVX-512 VNNI, and oneDNN runs with it (not
 * capped by ONEDNN_MAX_CPU_ISA). */
static bool wino8_runs(void) { return pn_cpu_wino8_supported() && pn_cpu_int8_vnni(); }

/* One int8 conv + BN + ReLU, or + BN + residual add + ReLU (a ResNet block's second convolution), C -> K channels on
 * H x H, against qconv_ref, with --conv-algo auto and direct. The add and the ReLU after it happen while the output
 * moves from the primitive's nhwc into the tensor's channel blocks, or, with K one channel block (16 on AVX-512), in
 * place in the tensor, which the primitive wrote itself. From 128 input and 64 output channels auto takes the int8
 * Winograd on a CPU with AVX-512 VNNI (an odd H puts tiles across the edge); otherwise, and with direct, never. */
static void check_conv(pn_backend *be, int C, int K, int H, bool residual, uint32_t seed) {
    tens x, y, r;
    qconv c;
    tens_make(be, &x, pn_tensor_nchw(1, C, H, H), seed, 0.0f, 2.0f);
    tens_make(be, &y, pn_tensor_nchw(1, K, H, H), seed + 1, 0.0f, 0.0f);
    tens_make(be, &r, pn_tensor_nchw(1, K, H, H), seed + 2, -1.0f, 1.0f);
    qconv_make(be, &c, C, K, seed + 3);
    const char *label = "probe.conv";
    float lo = 0, hi = 1.5f;
    CHECK(pn_cpu_int8_set(be, 1, &label, &lo, &hi) == PN_OK);
    pn_node n[4];
    qconv_nodes(&c, n, label, &x, &y);
    int count = 3;
    if (residual) {
        n[3] = n[2]; /* relu after the add */
        memset(&n[2], 0, sizeof n[2]);
        n[2].op = PN_OP_ADD, n[2].out[0] = &y.t, n[2].in[0] = &y.t, n[2].in[1] = &r.t;
        count = 4;
    }
    size_t out_n = (size_t)K * H * H;
    float *got = malloc(out_n * sizeof *got);
    double *xd = to_double(x.v, C * H * H), *want = malloc(out_n * sizeof *want);
    qconv_ref(&c, xd, H, lo, hi, residual ? r.v : NULL, want);
    bool wino_shape = C >= 128 && K >= 64;
    const char *algos[] = {"auto", "direct"};
    for (int a = 0; a < 2; a++) {
        CHECK(pn_cpu_set_conv_algo(be, algos[a]) == PN_OK);
        for (int i = 0; i < count; i++) CHECK(pn_node_prepare(be, &n[i]) == PN_OK);
        bool wino = a == 0 && wino_shape && wino8_runs();
        CHECK_MSG(pn_cpu_conv_is_int8_winograd(&n[0]) == wino, "%d -> %d, conv-algo %s: int8 Winograd %s", C, K,
                  algos[a], wino ? "not taken" : "taken");
        for (int i = 0; i < count; i++) CHECK(pn_node_compute(be, &n[i]) == PN_OK);
        CHECK(pn_tensor_get(&y.t, got) == PN_OK);
        char what[128];
        snprintf(what, sizeof what, "%d -> %d int8 conv + BN%s + ReLU, %s", C, K, residual ? " + residual add" : "",
                 wino ? "int8 Winograd" : algos[a]);
        double rel = rel_error(what, got, want, (int)out_n), bound = wino ? WINO8_MAX_REL : 1e-3;
        CHECK_MSG(rel <= bound, "%s: max |diff| %.3g x rms > %g", what, rel, bound);
        if (a == 0 && wino_shape && !wino)
            SKIP("int8 Winograd nodes: no AVX-512 VNNI here, or oneDNN capped below it (checked: auto runs the direct "
                 "int8 convolution)");
        for (int i = count - 1; i >= 0; i--) pn_node_release(be, &n[i]);
    }
    release_nodes(be, n, count);
    qconv_free(&c);
    tens *all[] = {&x, &y, &r};
    for (int i = 0; i < 3; i++) tens_free(all[i]);
    free(got);
    free(xd);
    free(want);
}

/* Nearest-neighbour x2 of a c x h x h tensor in double. */
static double *upsample_ref(const float *x, int c, int h) {
    double *y = malloc((size_t)(c * 4 * h * h) * sizeof *y);
    for (int k = 0; k < c; k++)
        for (int yy = 0; yy < 2 * h; yy++)
            for (int xx = 0; xx < 2 * h; xx++) y[(k * 2 * h + yy) * 2 * h + xx] = x[(k * h + yy / 2) * h + xx / 2];
    return y;
}

/* a (ca channels) then b (cb channels), each h x h, in double. */
static double *concat_ref(const float *a, int ca, const float *b, int cb, int h) {
    double *y = malloc((size_t)((ca + cb) * h * h) * sizeof *y);
    for (int i = 0; i < ca * h * h; i++) y[i] = a[i];
    for (int i = 0; i < cb * h * h; i++) y[ca * h * h + i] = b[i];
    return y;
}

/* An upsample or a concat whose output only an int8 conv reads (decoder blocks without and with a skip): with
 * pn_node.in_last_use it writes the conv's 8-bit input itself, without it float32 as always; both against the same
 * arithmetic in double. */
static void check_writer_link(pn_backend *be, pn_op op, bool last_use) {
    enum { CA = 32, CB = 16, K = 16, H = 8 };
    bool up = op == PN_OP_UPSAMPLE2X_FWD;
    int C = up ? CA : CA + CB, S = up ? 2 * H : H; /* the conv's input channels and side */
    tens a, b, u, y;
    qconv c;
    tens_make(be, &a, pn_tensor_nchw(1, CA, H, H), 71, 0.0f, 2.0f);
    tens_make(be, &b, pn_tensor_nchw(1, CB, H, H), 74, 0.0f, 2.0f);
    tens_make(be, &u, pn_tensor_nchw(1, C, S, S), 72, 0.0f, 0.0f);
    tens_make(be, &y, pn_tensor_nchw(1, K, S, S), 73, 0.0f, 0.0f);
    qconv_make(be, &c, C, K, 80);
    const char *label = "probe.writer";
    float lo = 0, hi = 1.5f;
    CHECK(pn_cpu_int8_set(be, 1, &label, &lo, &hi) == PN_OK);
    pn_node n[4];
    memset(n, 0, sizeof n[0]);
    n[0].op = op, n[0].out[0] = &u.t, n[0].in[0] = &a.t, n[0].in[1] = up ? NULL : &b.t;
    qconv_nodes(&c, n + 1, label, &u, &y);
    n[1].in_last_use[0] = last_use;
    for (int i = 0; i < 4; i++) CHECK(pn_node_prepare(be, &n[i]) == PN_OK);
    CHECK_MSG(pn_cpu_conv_reads_quantized_from(&n[1], &n[0]) == last_use, "%s link %s", pn_op_name(op),
              last_use ? "not made" : "made");
    for (int i = 0; i < 4; i++) CHECK(pn_node_compute(be, &n[i]) == PN_OK);
    float *got = malloc((size_t)(K * S * S) * sizeof *got);
    double *ud = up ? upsample_ref(a.v, CA, H) : concat_ref(a.v, CA, b.v, CB, H);
    double *want = malloc((size_t)(K * S * S) * sizeof *want);
    CHECK(pn_tensor_get(&y.t, got) == PN_OK);
    qconv_ref(&c, ud, S, lo, hi, NULL, want);
    char what[96];
    snprintf(what, sizeof what, "%s -> int8 conv, %s", pn_op_name(op), last_use ? "linked" : "float32 between");
    double rel = rel_error(what, got, want, K * S * S);
    CHECK_MSG(rel <= 1e-3, "%s: max |diff| %.3g x rms > 1e-3", what, rel);
    if (last_use) check_broken_link(be, &n[0], &n[1], what);
    release_nodes(be, n, 4);
    qconv_free(&c);
    tens *all[] = {&a, &b, &u, &y};
    for (int i = 0; i < 4; i++) tens_free(all[i]);
    free(got);
    free(ud);
    free(want);
}

/* Two int8 convs in a row, the first one's output read by the second only: with pn_node.in_last_use the first
 * writes its output quantized for the second (an int8 chain), without it float32 as always; both against the
 * same arithmetic in double. wide: 128 -> 128 -> 64 channels on an odd side with --conv-algo auto, both the int8
 * Winograd where the CPU has it (the first writing the second's u8 input). */
static void check_chain(pn_backend *be, bool last_use, bool wide) {
    const int C = wide ? 128 : 48, K1 = wide ? 128 : 32, K2 = wide ? 64 : 40, H = wide ? 9 : 16;
    bool wino = wide && wino8_runs();
    CHECK(pn_cpu_set_conv_algo(be, wide ? "auto" : "direct") == PN_OK);
    tens x, y1, y2;
    qconv c1, c2;
    tens_make(be, &x, pn_tensor_nchw(1, C, H, H), 21, 0.0f, 2.0f);
    tens_make(be, &y1, pn_tensor_nchw(1, K1, H, H), 22, 0.0f, 0.0f);
    tens_make(be, &y2, pn_tensor_nchw(1, K2, H, H), 23, 0.0f, 0.0f);
    qconv_make(be, &c1, C, K1, 30);
    qconv_make(be, &c2, K1, K2, 40);
    double *xd = to_double(x.v, C * H * H), *mid = malloc((size_t)(K1 * H * H) * sizeof *mid),
           *want = malloc((size_t)(K2 * H * H) * sizeof *want);
    const double hi1 = 1.5;
    qconv_ref(&c1, xd, H, 0.0, hi1, NULL, mid);
    double top = 0;
    for (int i = 0; i < K1 * H * H; i++) top = fmax(top, mid[i]);
    const char *labels[] = {"probe.a", "probe.b"};
    float lo[] = {0, 0}, hi[] = {(float)hi1, (float)(0.8 * top)}; /* the second input saturates at its top 20% */
    qconv_ref(&c2, mid, H, lo[1], hi[1], NULL, want);
    CHECK(pn_cpu_int8_set(be, 2, labels, lo, hi) == PN_OK);
    pn_node n[6];
    qconv_nodes(&c1, n, labels[0], &x, &y1);
    qconv_nodes(&c2, n + 3, labels[1], &y1, &y2);
    n[3].in_last_use[0] = last_use;
    for (int i = 0; i < 6; i++) CHECK(pn_node_prepare(be, &n[i]) == PN_OK);
    CHECK_MSG(pn_cpu_conv_takes_quantized(&n[3]) == last_use, "int8 chain %s", last_use ? "not made" : "made");
    CHECK_MSG(pn_cpu_conv_is_int8_winograd(&n[0]) == wino && pn_cpu_conv_is_int8_winograd(&n[3]) == wino,
              "int8 Winograd %s", wino ? "not taken" : "taken");
    float *got = malloc((size_t)(K2 * H * H) * sizeof *got);
    for (int i = 0; i < 6; i++) CHECK(pn_node_compute(be, &n[i]) == PN_OK);
    CHECK(pn_tensor_get(&y2.t, got) == PN_OK);
    char what[96];
    snprintf(what, sizeof what, "two int8 convs, %s%s", last_use ? "chained" : "float32 between",
             wino ? ", int8 Winograd" : "");
    double rel = rel_error(what, got, want, K2 * H * H), bound = wino ? WINO8_MAX_REL : 1e-3;
    CHECK_MSG(rel <= bound, "%s: max |diff| %.3g x rms > %g", what, rel, bound);
    if (last_use) check_broken_link(be, &n[0], &n[3], "int8 chain");
    release_nodes(be, n, 6);
    qconv_free(&c1);
    qconv_free(&c2);
    tens *all[] = {&x, &y1, &y2};
    for (int i = 0; i < 3; i++) tens_free(all[i]);
    free(got);
    free(xd);
    free(mid);
    free(want);
}

static float *forward(pn_unet *m, const float *x) {
    CHECK(pn_tensor_set(pn_unet_input(m), x) == PN_OK);
    CHECK(pn_unet_forward(m) == PN_OK);
    float *y = malloc(SIZE * SIZE * sizeof *y);
    CHECK(pn_tensor_get(pn_unet_logits(m), y) == PN_OK);
    return y;
}

/* int8 logits y8 against float32 ones y32 of the whole model: within INT8_MAX_REL and INT8_MEAN_REL of their rms. */
static void check_logits(const float *y8, const float *y32, int q, int n, const char *algo) {
    double sq = 0, worst = 0, sum = 0;
    for (int64_t i = 0; i < SIZE * SIZE; i++) {
        double d = fabs((double)y8[i] - y32[i]);
        sq += (double)y32[i] * y32[i];
        worst = fmax(worst, d);
        sum += d;
    }
    double rms = sqrt(sq / (SIZE * SIZE)), max_rel = worst / rms, mean_rel = sum / (SIZE * SIZE) / rms;
    printf("  int8 (%d of %d convolutions, %s) vs float32 logits at %dx%d: max |diff| %.4f, mean %.5f, float32 rms "
           "%.4f -> %.4f and %.5f of rms (bounds %.3f, %.3f)\n",
           q, n, algo, SIZE, SIZE, worst, sum / (SIZE * SIZE), rms, max_rel, mean_rel, INT8_MAX_REL, INT8_MEAN_REL);
    CHECK_MSG(max_rel <= INT8_MAX_REL, "int8 logits (%s): max |diff| / rms %.4f > %.4f", algo, max_rel, INT8_MAX_REL);
    CHECK_MSG(mean_rel <= INT8_MEAN_REL, "int8 logits (%s): mean |diff| / rms %.5f > %.5f", algo, mean_rel,
              INT8_MEAN_REL);
    CHECK_MSG(worst > 0, "int8 logits equal float32 ones exactly: the int8 path did not run");
}

int main(void) {
    pn_register_builtin_backends();
    pn_backend *be = NULL;
    if (pn_backend_open("cpu", 0, &be) != PN_OK || !pn_cpu_int8_available()) {
        SKIP("int8: %s", be ? "this build has no oneDNN" : pn_last_error());
        if (be) CHECK(pn_cpu_int8_set(be, 0, NULL, NULL, NULL) == PN_ERR_UNSUPPORTED);
        pn_backend_close(be);
        return check_report("test_int8");
    }
    check_one_conv(be);
    check_signed_input(be);
    check_conv(be, 32, 48, 12, true, 57);
    check_conv(be, 32, 16, 12, true, 57);
    check_chain(be, false, false);
    check_chain(be, true, false);
    check_conv(be, 128, 64, 9, false, 91);
    check_conv(be, 128, 64, 9, true, 91);
    check_chain(be, false, true);
    check_chain(be, true, true);
    CHECK(pn_cpu_set_conv_algo(be, "direct") == PN_OK);
    check_writer_link(be, PN_OP_UPSAMPLE2X_FWD, false);
    check_writer_link(be, PN_OP_UPSAMPLE2X_FWD, true);
    check_writer_link(be, PN_OP_CONCAT, false);
    check_writer_link(be, PN_OP_CONCAT, true);
    pn_unet *m = NULL;
    CHECK(pn_unet_create("resnet34", be, &m) == PN_OK);
    CHECK(pn_unet_init_weights(m, 1234) == PN_OK);
    perturb_bn(m);
    CHECK(pn_unet_plan(m, 1, SIZE, SIZE, PN_UNET_EVAL) == PN_OK);
    int64_t n_in = 3 * SIZE * SIZE;
    float *x = malloc((size_t)n_in * sizeof *x);

    /* calibration: ranges of every forward convolution's input over CALIB inputs */
    CHECK(pn_cpu_calibrate(be, true) == PN_OK);
    for (int i = 0; i < CALIB; i++) {
        fill_input(x, n_in, (uint32_t)i);
        free(forward(m, x));
    }
    CHECK(pn_cpu_calibrate(be, false) == PN_OK);
    const char *const *labels;
    const float *lo, *hi;
    int n = pn_cpu_calibration(be, &labels, &lo, &hi);
    CHECK_MSG(n == 47, "calibration saw %d convolutions, the model has 47", n);
    const char **ql = malloc((size_t)n * sizeof *ql);
    float *qlo = malloc((size_t)n * sizeof *qlo), *qhi = malloc((size_t)n * sizeof *qhi);
    int q = 0, unsigned_inputs = 0;
    for (int i = 0; i < n; i++) { /* all but the head, as pneumoseg quantize's default */
        if (!strcmp(labels[i], "segmentation_head.0")) continue;
        ql[q] = labels[i];
        pn_cpu_calibration_range(be, i, PERCENTILE, &qlo[q], &qhi[q]);
        bool after_relu = lo[i] >= 0 && qlo[q] >= 0; /* inputs after a ReLU: u8 */
        bool stem = !strcmp(labels[i], "encoder.conv1");
        if (after_relu == stem) printf("  %s: input range [%g, %g]\n", labels[i], lo[i], hi[i]);
        unsigned_inputs += after_relu && !stem;
        q++;
    }
    CHECK_MSG(unsigned_inputs == q - 1, "%d of %d quantized convolutions after the stem have inputs below 0",
              q - 1 - unsigned_inputs, q - 1);

    /* float32, then int8 on another input */
    fill_input(x, n_in, 100);
    float *y32 = forward(m, x);
    CHECK(pn_cpu_int8_set(be, q, ql, qlo, qhi) == PN_OK);
    pn_status st = pn_unet_plan(m, 1, SIZE, SIZE, PN_UNET_EVAL);
    CHECK_MSG(st == PN_OK, "planning the int8 model: %s", pn_last_error());
    if (st != PN_OK) return check_report("test_int8");
    float *y8 = forward(m, x);
    check_logits(y8, y32, q, n, "direct");
    free(y8);
    CHECK(pn_cpu_set_conv_algo(be, "auto") == PN_OK); /* the int8 Winograd where it pays, on a CPU with VNNI */
    st = pn_unet_plan(m, 1, SIZE, SIZE, PN_UNET_EVAL);
    CHECK_MSG(st == PN_OK, "planning the int8 model with conv-algo auto: %s", pn_last_error());
    if (st != PN_OK) return check_report("test_int8");
    y8 = forward(m, x);
    check_logits(y8, y32, q, n, wino8_runs() ? "auto, int8 Winograd" : "auto, no VNNI: direct");

    /* a bad range is refused */
    const char *bad_label = "encoder.layer1.0.conv1";
    float bad_lo = 0, bad_hi = 0;
    CHECK(pn_cpu_int8_set(be, 1, &bad_label, &bad_lo, &bad_hi) == PN_ERR_ARG);

    free(y32);
    free(y8);
    free(ql);
    free(qlo);
    free(qhi);
    free(x);
    pn_unet_free(m);
    pn_backend_close(be);
    return check_report("test_int8");
}
