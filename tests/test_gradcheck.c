/* test_gradcheck: every backward op of the ref backend against central finite differences of its forward op. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/register.h"
#include "core/backend.h"
#include "core/rng.h"
#include "tests/check.h"

#define SEED 777u
#define MAX_COORDS 160 /* tensors larger than this are checked on a seeded sample of coordinates */

static pn_backend *g_ref;
static uint32_t g_stream;

/* A tensor in ref (host) memory; `h` is its host pointer. */
typedef struct ht {
    pn_buffer buf;
    pn_tensor t;
    float *h;
    int64_t n;
} ht;

static ht *ht_new(pn_tensor desc) {
    ht *a = calloc(1, sizeof *a);
    PN_ASSERT(a);
    PN_ASSERT(pn_buffer_alloc(g_ref, &a->buf, pn_tensor_bytes(&desc)) == PN_OK);
    a->t = desc;
    a->t.buf = &a->buf;
    a->h = pn_tensor_host_f32(&a->t);
    a->n = pn_tensor_numel(&desc);
    return a;
}

static void ht_free(ht *a) {
    if (!a) return;
    pn_buffer_free(&a->buf);
    free(a);
}

static ht *ht_normal(pn_tensor desc, float scale, float mean) {
    ht *a = ht_new(desc);
    pn_rng r = pn_rng_make(SEED, PN_RNG_TEST, g_stream++, 0);
    for (int64_t i = 0; i < a->n; i++) a->h[i] = mean + scale * pn_rng_normal(&r);
    return a;
}

/* Parameter-gradient ops accumulate (+=), so their outputs must start at zero. */
static ht *ht_zeros(pn_tensor desc) {
    ht *a = ht_new(desc);
    memset(a->h, 0, (size_t)a->n * sizeof *a->h);
    return a;
}

/* Runs one op on ref; outs/ins are NULL-terminated-free arrays of PN_OP_MAX_IO slots. */
static void run_op(pn_op op, const pn_op_params *p, ht *const outs[PN_OP_MAX_IO], ht *const ins[PN_OP_MAX_IO]) {
    pn_node node;
    memset(&node, 0, sizeof node);
    node.op = op;
    node.p = *p;
    for (int i = 0; i < PN_OP_MAX_IO; i++) {
        node.out[i] = outs[i] ? &outs[i]->t : NULL;
        node.in[i] = ins[i] ? &ins[i]->t : NULL;
    }
    pn_status st = pn_node_prepare(g_ref, &node);
    if (st == PN_OK) st = pn_node_compute(g_ref, &node);
    if (st != PN_OK) {
        fprintf(stderr, "%s failed: %s\n", pn_op_name(op), pn_last_error());
        abort(); /* a harness bug, not a numeric result */
    }
    pn_node_release(g_ref, &node);
}

/* ---- the finite-difference check ---- */

/* L = sum(r * out[proj]) in double, for a forward op whose inputs the check perturbs in place. */
typedef struct fwd_ctx {
    pn_op op;
    pn_op_params p;
    ht *out[PN_OP_MAX_IO], *in[PN_OP_MAX_IO];
    const float *r; /* projection, out[0]->n values; NULL = the output is a scalar loss taken as is */
} fwd_ctx;

static double fwd_loss(fwd_ctx *c) {
    run_op(c->op, &c->p, c->out, c->in);
    const ht *y = c->out[0];
    if (!c->r) return y->h[0];
    double s = 0.0;
    for (int64_t i = 0; i < y->n; i++) s += (double)c->r[i] * y->h[i];
    return s;
}

/* Compares analytic[i] with (L(v + h e_i) - L(v - h e_i)) / (actual step) for all coordinates of v (or a seeded
 * sample when there are more than MAX_COORDS). Passes when max_i |fd - analytic| <= tol * max|analytic| + noise,
 * where noise is the finite-difference error that float32 rounding of L alone can cause (0 when L is a sum of
 * outputs whose rounding cancels exactly). */
static void fd_check(const char *label, const char *what, fwd_ctx *c, float *v, int64_t n, const float *analytic,
                     double h, double tol, double noise) {
    double amax = 0.0, err = 0.0;
    int64_t worst = -1;
    for (int64_t i = 0; i < n; i++) amax = fmax(amax, fabs(analytic[i]));
    pn_rng rng = pn_rng_make(SEED, PN_RNG_TEST, 100000 + g_stream++, 0);
    int64_t count = n <= MAX_COORDS ? n : MAX_COORDS;
    double fd_worst = 0.0;
    for (int64_t k = 0; k < count; k++) {
        int64_t i = n <= MAX_COORDS ? k : (int64_t)pn_rng_below(&rng, (uint32_t)n);
        float save = v[i];
        float up = (float)(save + h), down = (float)(save - h); /* the steps actually taken in float32 */
        v[i] = up;
        double lp = fwd_loss(c);
        v[i] = down;
        double lm = fwd_loss(c);
        v[i] = save;
        double fd = (lp - lm) / ((double)up - (double)down);
        double e = fabs(fd - analytic[i]);
        if (e > err) err = e, worst = i, fd_worst = fd;
    }
    double bound = tol * amax + noise;
    const char *note = noise > tol * amax ? "  [gradient below the loss's float32 resolution]" : "";
    int ok = err <= bound && amax > 0.0;
    printf("%-58s %-6s max|grad| %.3e  max err %.2e  rel %.2e  (tol %.0e, %lld coords)%s\n", label, what, amax, err,
           amax > 0 ? err / amax : 0.0, tol, (long long)count, note);
    CHECK_MSG(ok, "%s %s: at %lld analytic %.9g vs finite difference %.9g (err %.3g > %.3g, max|grad| %.3g)", label,
              what, (long long)worst, worst >= 0 ? (double)analytic[worst] : 0.0, fd_worst, err, bound, amax);
}

/* ---- conv2d: dx from bwd_data, dw and db from bwd_weights ---- */

typedef struct conv_cfg {
    int64_t n, cin, cout, h, w, k;
    int stride, pad, groups, bias;
} conv_cfg;

static int64_t out_size(int64_t in, int64_t k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

/* Conv is linear in each of x, w, b, so the difference quotient has no truncation error at any step; only the
 * float32 rounding of the outputs the step touches remains (~6e-8 relative each, divided by 2h). With h = 1e-2
 * that measured up to 3.5e-5 relative to max|grad|; h = 0.1 (inputs of scale 1) cuts it tenfold, so the 1e-4
 * tolerance has a wide margin and still catches any wrong index (errors of order 1). */
static void check_conv(const conv_cfg *g) {
    char label[128];
    snprintf(label, sizeof label, "conv2d x=%lldx%lldx%lldx%lld cout=%lld k=%lld s=%d p=%d g=%d%s", (long long)g->n,
             (long long)g->cin, (long long)g->h, (long long)g->w, (long long)g->cout, (long long)g->k, g->stride,
             g->pad, g->groups, g->bias ? " bias" : "");
    pn_tensor xd = pn_tensor_nchw(g->n, g->cin, g->h, g->w),
              wd = pn_tensor_nchw(g->cout, g->cin / g->groups, g->k, g->k);
    pn_tensor yd =
        pn_tensor_nchw(g->n, g->cout, out_size(g->h, g->k, g->stride, g->pad), out_size(g->w, g->k, g->stride, g->pad));
    ht *x = ht_normal(xd, 1.0f, 0.0f), *w = ht_normal(wd, 1.0f / sqrtf((float)(wd.shape[1] * g->k * g->k)), 0.0f);
    ht *b = g->bias ? ht_normal(pn_tensor_vec(g->cout), 0.5f, 0.0f) : NULL;
    ht *y = ht_zeros(yd), *r = ht_normal(yd, 1.0f, 0.0f);
    ht *dx = ht_zeros(xd), *dw = ht_zeros(wd), *db = g->bias ? ht_zeros(pn_tensor_vec(g->cout)) : NULL;
    pn_op_params p;
    p.conv2d_fwd = (pn_conv2d_params){g->stride, g->pad, g->groups};
    run_op(PN_OP_CONV2D_BWD_DATA, &p, (ht *[PN_OP_MAX_IO]){dx}, (ht *[PN_OP_MAX_IO]){r, w});
    run_op(PN_OP_CONV2D_BWD_WEIGHTS, &p, (ht *[PN_OP_MAX_IO]){dw, db}, (ht *[PN_OP_MAX_IO]){r, x});
    fwd_ctx c = {PN_OP_CONV2D_FWD, p, {y}, {x, w, b}, r->h};
    fd_check(label, "dx", &c, x->h, x->n, dx->h, 0.1, 1e-4, 0.0);
    fd_check(label, "dw", &c, w->h, w->n, dw->h, 0.1, 1e-4, 0.0);
    if (b) fd_check(label, "db", &c, b->h, b->n, db->h, 0.1, 1e-4, 0.0);
    ht_free(x), ht_free(w), ht_free(b), ht_free(y), ht_free(r), ht_free(dx), ht_free(dw), ht_free(db);
}

/* ---- batchnorm: bwd against the TRAIN forward (batch statistics depend on x) ---- */

/* L is smooth in x, gamma, beta. At h = 1e-2 (inputs of scale 1) the central difference's truncation error is
 * ~h^2/6 |L'''| ~ 1e-5 relative, and the rounding of all M outputs of the perturbed channel (which all move,
 * through the mean and variance) adds ~sqrt(M) * 6e-8 * |y| / 2h ~ 2e-5. Tolerance 1e-3. */
static void check_batchnorm(int64_t n, int64_t ch, int64_t h, int64_t w, float x_mean, float x_scale) {
    char label[128];
    snprintf(label, sizeof label, "batchnorm train %lldx%lldx%lldx%lld x~N(%g,%g)", (long long)n, (long long)ch,
             (long long)h, (long long)w, (double)x_mean, (double)x_scale);
    pn_tensor xd = pn_tensor_nchw(n, ch, h, w), vd = pn_tensor_vec(ch);
    ht *x = ht_normal(xd, x_scale, x_mean), *gamma = ht_normal(vd, 0.5f, 1.0f), *beta = ht_normal(vd, 0.5f, 0.0f);
    ht *y = ht_zeros(xd), *mean = ht_zeros(vd), *invstd = ht_zeros(vd), *rmean = ht_zeros(vd), *rvar = ht_zeros(vd);
    ht *r = ht_normal(xd, 1.0f, 0.0f), *dx = ht_zeros(xd), *dgamma = ht_zeros(vd), *dbeta = ht_zeros(vd);
    pn_op_params p;
    p.batchnorm_train_fwd = (pn_batchnorm_params){1e-5f, 0.1f};
    fwd_ctx c = {PN_OP_BATCHNORM_TRAIN_FWD, p, {y, mean, invstd, rmean, rvar}, {x, gamma, beta}, r->h};
    fwd_loss(&c); /* saves the batch statistics of the unperturbed x */
    run_op(PN_OP_BATCHNORM_BWD, &p, (ht *[PN_OP_MAX_IO]){dx, dgamma, dbeta},
           (ht *[PN_OP_MAX_IO]){r, x, gamma, mean, invstd});
    double hx = 1e-2 * x_scale;
    fd_check(label, "dx", &c, x->h, x->n, dx->h, hx, 1e-3, 0.0);
    fd_check(label, "dgamma", &c, gamma->h, gamma->n, dgamma->h, 1e-2, 1e-3, 0.0);
    fd_check(label, "dbeta", &c, beta->h, beta->n, dbeta->h, 1e-2, 1e-3, 0.0);
    ht_free(x), ht_free(gamma), ht_free(beta), ht_free(y), ht_free(mean), ht_free(invstd), ht_free(rmean);
    ht_free(rvar), ht_free(r), ht_free(dx), ht_free(dgamma), ht_free(dbeta);
}

/* ---- piecewise-linear and linear ops: relu, maxpool, upsample, concat/split ---- */

/* These outputs are exact copies (or sums of 4 copies) of inputs, so with inputs kept away from kinks the
 * difference quotient is exact up to the double sum: tolerance 1e-6. */

static void check_relu(void) {
    pn_tensor d = pn_tensor_nchw(2, 3, 5, 7);
    ht *x = ht_normal(d, 1.0f, 0.0f), *y = ht_zeros(d), *r = ht_normal(d, 1.0f, 0.0f), *dx = ht_zeros(d);
    for (int64_t i = 0; i < x->n; i++) x->h[i] = x->h[i] < 0 ? x->h[i] - 0.1f : x->h[i] + 0.1f; /* |x| >= 0.1 > h */
    pn_op_params p;
    memset(&p, 0, sizeof p);
    run_op(PN_OP_RELU_FWD, &p, (ht *[PN_OP_MAX_IO]){y}, (ht *[PN_OP_MAX_IO]){x});
    run_op(PN_OP_RELU_BWD, &p, (ht *[PN_OP_MAX_IO]){dx}, (ht *[PN_OP_MAX_IO]){r, y});
    fwd_ctx c = {PN_OP_RELU_FWD, p, {y}, {x}, r->h};
    fd_check("relu 2x3x5x7", "dx", &c, x->h, x->n, dx->h, 1e-2, 1e-6, 0.0);
    ht_free(x), ht_free(y), ht_free(r), ht_free(dx);
}

static void check_maxpool(int64_t n, int64_t ch, int64_t h, int64_t w, int k, int s, int pad, int ceil_mode) {
    char label[128];
    snprintf(label, sizeof label, "maxpool %lldx%lldx%lldx%lld k=%d s=%d p=%d%s", (long long)n, (long long)ch,
             (long long)h, (long long)w, k, s, pad, ceil_mode ? " ceil" : "");
    pn_pool_params pp = {k, s, pad, ceil_mode};
    pn_tensor xd = pn_tensor_nchw(n, ch, h, w),
              yd = pn_tensor_nchw(n, ch, pn_pool_out_size(h, &pp), pn_pool_out_size(w, &pp));
    ht *x = ht_zeros(xd), *y = ht_zeros(yd), *r = ht_normal(yd, 1.0f, 0.0f), *dx = ht_zeros(xd);
    /* Distinct values 0.1 apart in a seeded random order: a step of h = 1e-2 never changes a window's argmax. */
    pn_rng rng = pn_rng_make(SEED, PN_RNG_TEST, g_stream++, 0);
    for (int64_t i = 0; i < x->n; i++) x->h[i] = 0.1f * (float)(i - x->n / 2);
    for (int64_t i = x->n - 1; i > 0; i--) {
        int64_t j = pn_rng_below(&rng, (uint32_t)(i + 1));
        float t = x->h[i];
        x->h[i] = x->h[j], x->h[j] = t;
    }
    pn_op_params p;
    p.maxpool_fwd = pp;
    run_op(PN_OP_MAXPOOL_BWD, &p, (ht *[PN_OP_MAX_IO]){dx}, (ht *[PN_OP_MAX_IO]){r, x});
    fwd_ctx c = {PN_OP_MAXPOOL_FWD, p, {y}, {x}, r->h};
    fd_check(label, "dx", &c, x->h, x->n, dx->h, 1e-2, 1e-6, 0.0);
    ht_free(x), ht_free(y), ht_free(r), ht_free(dx);
}

static void check_upsample(void) {
    pn_tensor sd = pn_tensor_nchw(2, 3, 5, 4), bd = pn_tensor_nchw(2, 3, 10, 8);
    ht *x = ht_normal(sd, 1.0f, 0.0f), *y = ht_zeros(bd), *r = ht_normal(bd, 1.0f, 0.0f), *dx = ht_zeros(sd);
    pn_op_params p;
    memset(&p, 0, sizeof p);
    run_op(PN_OP_UPSAMPLE2X_BWD, &p, (ht *[PN_OP_MAX_IO]){dx}, (ht *[PN_OP_MAX_IO]){r});
    fwd_ctx c = {PN_OP_UPSAMPLE2X_FWD, p, {y}, {x}, r->h};
    fd_check("upsample2x 2x3x5x4", "dx", &c, x->h, x->n, dx->h, 1e-2, 1e-6, 0.0);
    ht_free(x), ht_free(y), ht_free(r), ht_free(dx);
}

static void check_split(int64_t n, int64_t ca, int64_t cb, int64_t h, int64_t w) {
    char label[128];
    snprintf(label, sizeof label, "split vs concat n=%lld ca=%lld cb=%lld %lldx%lld", (long long)n, (long long)ca,
             (long long)cb, (long long)h, (long long)w);
    pn_tensor ad = pn_tensor_nchw(n, ca, h, w), bd = pn_tensor_nchw(n, cb, h, w), yd = pn_tensor_nchw(n, ca + cb, h, w);
    ht *a = ht_normal(ad, 1.0f, 0.0f), *b = ht_normal(bd, 1.0f, 0.0f), *y = ht_zeros(yd),
       *r = ht_normal(yd, 1.0f, 0.0f);
    ht *da = ht_zeros(ad), *db = ht_zeros(bd);
    pn_op_params p;
    memset(&p, 0, sizeof p);
    run_op(PN_OP_SPLIT, &p, (ht *[PN_OP_MAX_IO]){da, db}, (ht *[PN_OP_MAX_IO]){r});
    fwd_ctx c = {PN_OP_CONCAT, p, {y}, {a, b}, r->h};
    fd_check(label, "da", &c, a->h, a->n, da->h, 1e-2, 1e-6, 0.0);
    fd_check(label, "db", &c, b->h, b->n, db->h, 1e-2, 1e-6, 0.0);
    ht_free(a), ht_free(b), ht_free(y), ht_free(r), ht_free(da), ht_free(db);
}

/* ---- the SE / scSE / AlbuNet ops: sigmoid, global average pool, per-channel and per-pixel gates, bilinear x2 ---- */

static pn_op_params no_params(void) {
    pn_op_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* Smooth: at h = 1e-2 the truncation error h^2/6 |sigmoid's third derivative| <= 2e-6 and the rounding of the one
 * output a step moves (<= 6e-8 / 2h ~ 3e-6 of |r|) stay far below 1e-3 of max|grad| (~0.25 max|r|). The backward
 * takes the forward's output y, as the graph saves it. */
static void check_sigmoid(int64_t n, int64_t ch, int64_t h, int64_t w) {
    char label[128];
    snprintf(label, sizeof label, "sigmoid %lldx%lldx%lldx%lld", (long long)n, (long long)ch, (long long)h,
             (long long)w);
    pn_tensor d = pn_tensor_nchw(n, ch, h, w);
    ht *x = ht_normal(d, 2.0f, 0.0f), *y = ht_zeros(d), *r = ht_normal(d, 1.0f, 0.0f), *dx = ht_zeros(d);
    pn_op_params p = no_params();
    run_op(PN_OP_SIGMOID, &p, (ht *[PN_OP_MAX_IO]){y}, (ht *[PN_OP_MAX_IO]){x});
    run_op(PN_OP_SIGMOID_BWD, &p, (ht *[PN_OP_MAX_IO]){dx}, (ht *[PN_OP_MAX_IO]){r, y});
    fwd_ctx c = {PN_OP_SIGMOID, p, {y}, {x}, r->h};
    fd_check(label, "dx", &c, x->h, x->n, dx->h, 1e-2, 1e-3, 0.0);
    ht_free(x), ht_free(y), ht_free(r), ht_free(dx);
}

/* The remaining ops are linear in each input (no truncation error): as for conv, h = 0.1 and tolerance 1e-4 leave
 * only the float32 rounding of the outputs a step moves, and any wrong index is an error of order 1. */

static void check_global_avg_pool(int64_t n, int64_t ch, int64_t h, int64_t w) {
    char label[128];
    snprintf(label, sizeof label, "global_avg_pool %lldx%lldx%lldx%lld", (long long)n, (long long)ch, (long long)h,
             (long long)w);
    pn_tensor xd = pn_tensor_nchw(n, ch, h, w), yd = pn_tensor_nchw(n, ch, 1, 1);
    ht *x = ht_normal(xd, 1.0f, 0.5f), *y = ht_zeros(yd), *r = ht_normal(yd, 1.0f, 0.0f), *dx = ht_zeros(xd);
    pn_op_params p = no_params();
    run_op(PN_OP_GLOBAL_AVG_POOL_BWD, &p, (ht *[PN_OP_MAX_IO]){dx}, (ht *[PN_OP_MAX_IO]){r});
    fwd_ctx c = {PN_OP_GLOBAL_AVG_POOL_FWD, p, {y}, {x}, r->h};
    fd_check(label, "dx", &c, x->h, x->n, dx->h, 0.1, 1e-4, 0.0);
    ht_free(x), ht_free(y), ht_free(r), ht_free(dx);
}

/* y = x * s for CHANNEL_MUL (s per image and channel) or PIXEL_MUL (s per image and pixel), with the graph's
 * backward rule: dx = the same op on (dy, s), ds = the op's BWD_SCALE on (dy, x). */
static void check_gate_mul(pn_op op, int64_t n, int64_t ch, int64_t h, int64_t w) {
    int per_pixel = op == PN_OP_PIXEL_MUL;
    char label[128];
    snprintf(label, sizeof label, "%s %lldx%lldx%lldx%lld", pn_op_name(op), (long long)n, (long long)ch, (long long)h,
             (long long)w);
    pn_tensor xd = pn_tensor_nchw(n, ch, h, w);
    pn_tensor sd = per_pixel ? pn_tensor_nchw(n, 1, h, w) : pn_tensor_nchw(n, ch, 1, 1);
    ht *x = ht_normal(xd, 1.0f, 0.0f), *s = ht_normal(sd, 0.3f, 0.5f), *y = ht_zeros(xd);
    ht *r = ht_normal(xd, 1.0f, 0.0f), *dx = ht_zeros(xd), *ds = ht_zeros(sd);
    pn_op_params p = no_params();
    run_op(op, &p, (ht *[PN_OP_MAX_IO]){dx}, (ht *[PN_OP_MAX_IO]){r, s});
    run_op(per_pixel ? PN_OP_PIXEL_MUL_BWD_SCALE : PN_OP_CHANNEL_MUL_BWD_SCALE, &p, (ht *[PN_OP_MAX_IO]){ds},
           (ht *[PN_OP_MAX_IO]){r, x});
    fwd_ctx c = {op, p, {y}, {x, s}, r->h};
    fd_check(label, "dx", &c, x->h, x->n, dx->h, 0.1, 1e-4, 0.0);
    fd_check(label, "ds", &c, s->h, s->n, ds->h, 0.1, 1e-4, 0.0);
    ht_free(x), ht_free(s), ht_free(y), ht_free(r), ht_free(dx), ht_free(ds);
}

static void check_bilinear(int64_t n, int64_t ch, int64_t h, int64_t w) {
    char label[128];
    snprintf(label, sizeof label, "bilinear2x %lldx%lldx%lldx%lld", (long long)n, (long long)ch, (long long)h,
             (long long)w);
    pn_tensor sd = pn_tensor_nchw(n, ch, h, w), bd = pn_tensor_nchw(n, ch, 2 * h, 2 * w);
    ht *x = ht_normal(sd, 1.0f, 0.0f), *y = ht_zeros(bd), *r = ht_normal(bd, 1.0f, 0.0f), *dx = ht_zeros(sd);
    pn_op_params p = no_params();
    run_op(PN_OP_BILINEAR2X_BWD, &p, (ht *[PN_OP_MAX_IO]){dx}, (ht *[PN_OP_MAX_IO]){r});
    fwd_ctx c = {PN_OP_BILINEAR2X_FWD, p, {y}, {x}, r->h};
    fd_check(label, "dx", &c, x->h, x->n, dx->h, 0.1, 1e-4, 0.0);
    ht_free(x), ht_free(y), ht_free(r), ht_free(dx);
}

/* ---- combo loss: d(loss)/d(logits) ---- */

typedef enum target_kind { T_BINARY, T_SOFT, T_ZEROS, T_ONES } target_kind;
static const char *const target_names[] = {"binary", "soft", "all-zero", "all-one"};

/* The loss is a float32 scalar, so L itself carries a rounding error of up to half an ulp of |L|; the difference
 * quotient inherits up to ulp(L) / 2h of noise, which the check adds to its bound. With few pixels (12) each
 * gradient is large next to that noise. Logits stay in [-4, 4] so that the focal clamp at 1e-8 never binds; at
 * h = 2e-2 the truncation error ~h^2/6 |L'''| is ~1e-4 of the gradient. Tolerance 1e-3 (2e-3 for 128 pixels). */
static void check_combo(pn_tensor d, pn_combo_loss_params w, target_kind tk, double tol) {
    char label[128];
    snprintf(label, sizeof label, "combo_loss %lldx%lldx%lldx%lld w=(%g,%g,%g) %s", (long long)d.shape[0],
             (long long)d.shape[1], (long long)d.shape[2], (long long)d.shape[3], (double)w.w_bce, (double)w.w_dice,
             (double)w.w_focal, target_names[tk]);
    ht *x = ht_normal(d, 1.5f, 0.0f), *t = ht_zeros(d), *loss = ht_zeros(pn_tensor_vec(1)), *dx = ht_zeros(d);
    pn_rng rng = pn_rng_make(SEED, PN_RNG_TEST, g_stream++, 0);
    for (int64_t i = 0; i < x->n; i++) {
        x->h[i] = fminf(4.0f, fmaxf(-4.0f, x->h[i]));
        float u = pn_rng_uniform(&rng);
        t->h[i] = tk == T_BINARY ? (float)(u < 0.4f) : tk == T_SOFT ? u : tk == T_ONES ? 1.0f : 0.0f;
    }
    if (tk == T_BINARY) t->h[0] = 1.0f, t->h[1] = 0.0f; /* both classes present */
    pn_op_params p;
    p.combo_loss_fwd = w;
    p.combo_loss_fwd.grad_scale = 1.0f;
    run_op(PN_OP_COMBO_LOSS_BWD, &p, (ht *[PN_OP_MAX_IO]){dx}, (ht *[PN_OP_MAX_IO]){x, t});
    fwd_ctx c = {PN_OP_COMBO_LOSS_FWD, p, {loss}, {x, t}, NULL};
    double h = 2e-2, l0 = fwd_loss(&c);
    CHECK_MSG(l0 > 1e-4, "%s: loss %.3g is on or near its floor; the check would be vacuous", label, l0);
    double noise = 2.0 * FLT_EPSILON * fabs(l0) / (2.0 * h);
    fd_check(label, "dlogit", &c, x->h, x->n, dx->h, h, tol, noise);
    ht_free(x), ht_free(t), ht_free(loss), ht_free(dx);
}

int main(void) {
    pn_register_builtin_backends();
    if (pn_backend_open("ref", 1, &g_ref) != PN_OK) {
        fprintf(stderr, "test_gradcheck: %s\n", pn_last_error());
        return 1;
    }
    const conv_cfg convs[] = {
        {1, 1, 1, 5, 6, 3, 1, 1, 1, 1},    /* batch 1, one channel */
        {2, 3, 4, 7, 5, 3, 2, 1, 1, 1},    /* stride 2 */
        {1, 4, 4, 6, 7, 3, 1, 1, 2, 0},    /* groups 2, no bias */
        {1, 2, 3, 9, 8, 7, 2, 3, 1, 1},    /* 7x7 stride 2 pad 3 */
        {2, 4, 4, 5, 5, 1, 1, 0, 4, 1},    /* depthwise 1x1 */
        {2, 6, 3, 4, 5, 3, 1, 3, 3, 1},    /* pad 3 > k/2, groups 3 */
        {1, 64, 64, 5, 5, 3, 2, 1, 32, 1}, /* ResNeXt's grouped 3x3 (32 groups of 2), stride 2, bias */
        {2, 32, 2, 1, 1, 1, 1, 0, 1, 1},   /* an SE squeeze: 1x1 conv with bias on a 1x1 map */
    };
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) check_conv(&convs[i]);

    check_batchnorm(2, 3, 4, 5, 0.0f, 1.0f);
    check_batchnorm(1, 2, 3, 3, 3.0f, 2.0f);
    check_batchnorm(4, 2, 1, 1, -1.0f, 0.5f); /* 4 values per channel */

    check_relu();
    check_maxpool(1, 2, 7, 9, 3, 2, 1, 0);
    check_maxpool(2, 3, 6, 8, 2, 2, 0, 0);
    check_maxpool(1, 2, 5, 5, 3, 1, 1, 0);
    check_maxpool(1, 2, 8, 8, 3, 2, 0, 1); /* SENet's stem pool: a partial last window */
    check_maxpool(2, 3, 7, 9, 2, 2, 0, 1); /* 2/2/0 ceil on odd sizes */
    check_maxpool(1, 2, 8, 6, 3, 2, 1, 1); /* padded, ceil */
    check_maxpool(1, 3, 2, 2, 3, 2, 0, 1); /* input smaller than the window */
    check_upsample();
    check_split(1, 1, 3, 4, 5);
    check_split(2, 5, 2, 3, 3);

    check_sigmoid(2, 3, 4, 5);
    check_global_avg_pool(2, 3, 5, 7);
    check_global_avg_pool(1, 16, 1, 1);
    check_gate_mul(PN_OP_CHANNEL_MUL, 2, 3, 5, 4);
    check_gate_mul(PN_OP_CHANNEL_MUL, 1, 32, 2, 2); /* an SE gate on few pixels */
    check_gate_mul(PN_OP_PIXEL_MUL, 2, 3, 5, 4);
    check_gate_mul(PN_OP_PIXEL_MUL, 1, 1, 3, 7);
    check_bilinear(2, 3, 5, 4);
    check_bilinear(1, 2, 1, 3); /* one row: both vertical taps are the same pixel */
    check_bilinear(1, 1, 1, 1);

    const pn_combo_loss_params weights[] = {{1, 0, 0, 1}, {0, 1, 0, 1}, {0, 0, 1, 1}, {3, 1, 4, 1}};
    pn_tensor small = pn_tensor_nchw(1, 1, 3, 4), big = pn_tensor_nchw(2, 1, 8, 8);
    for (int wi = 0; wi < 4; wi++)
        for (int tk = 0; tk < 4; tk++) check_combo(small, weights[wi], (target_kind)tk, 1e-3);
    check_combo(big, weights[3], T_BINARY, 2e-3);
    check_combo(big, weights[3], T_SOFT, 2e-3);

    pn_backend_close(g_ref);
    return check_report("test_gradcheck");
}
