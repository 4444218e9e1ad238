/* test_ops: every op of core/ops.def on every available backend against ref (NMSE, NaN/Inf parity, guard bytes,
 * untouched inputs, in-place variants), a fused conv+BN(+add)+ReLU inference chain on every backend but ref, plus
 * ref self-checks (ref vs ref exact, sanity properties, accumulation). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/register.h"
#include "core/backend.h"
#include "core/rng.h"
#include "data/npy.h"
#include "tests/check.h"

#define SEED 20261128u
#define NMSE_TOL 1e-7   /* default fp32 tolerance against ref */
#define GUARD_FLOATS 16 /* sentinel floats before and after every tensor */
#define GUARD_BYTES (GUARD_FLOATS * sizeof(float))
#define PREFILL_REF 1234.5f   /* what overwritten outputs hold before the op, on ref ... */
#define PREFILL_TEST -777.25f /* ... and on the backend under test (so an unwritten element shows) */
#define MAX_BACKENDS 8

/* One tensor slot of a case: its shape, and its host values (inputs; the starting values of outputs that are
 * updated in place or accumulated; NULL for outputs the op overwrites). alias: the input an output shares. */
typedef struct slot {
    int present;
    pn_tensor desc;
    float *data;
    int alias;
} slot;

typedef struct op_case {
    char label[160];
    pn_op op;
    pn_op_params p;
    slot in[PN_OP_MAX_IO], out[PN_OP_MAX_IO];
    double tol; /* NMSE tolerance against ref for other backends */
} op_case;

static const char *g_op_filter, *g_backend_filter;
static uint32_t g_stream;           /* the next PN_RNG_TEST stream */
static int g_ran[PN_OP_COUNT];      /* cases of each op compared on the backend under test (run_cases counts) */
static int g_left_out[PN_OP_COUNT]; /* cases of each op the backend under test skipped as an op it leaves out */

/* ---------------- host arrays ---------------- */

static float *host_new(int64_t n) {
    float *v = calloc((size_t)(n > 0 ? n : 1), sizeof *v);
    PN_ASSERT(v);
    return v;
}

static float *host_copy(const float *src, int64_t n) {
    float *v = host_new(n);
    memcpy(v, src, (size_t)n * sizeof *v);
    return v;
}

/* mean + scale * N(0, 1), from a fresh PN_RNG_TEST stream. */
static float *host_normal(int64_t n, float scale, float mean) {
    pn_rng r = pn_rng_make(SEED, PN_RNG_TEST, g_stream++, 0);
    float *v = host_new(n);
    for (int64_t i = 0; i < n; i++) v[i] = mean + scale * pn_rng_normal(&r);
    return v;
}

static float *host_uniform(int64_t n, float lo, float hi) {
    pn_rng r = pn_rng_make(SEED, PN_RNG_TEST, g_stream++, 0);
    float *v = host_new(n);
    for (int64_t i = 0; i < n; i++) v[i] = pn_rng_uniform_range(&r, lo, hi);
    return v;
}

static float *host_const(int64_t n, float value) {
    float *v = host_new(n);
    for (int64_t i = 0; i < n; i++) v[i] = value;
    return v;
}

/* 0/1 values with P(1) = p. */
static float *host_binary(int64_t n, float p) {
    float *v = host_uniform(n, 0.0f, 1.0f);
    for (int64_t i = 0; i < n; i++) v[i] = v[i] < p ? 1.0f : 0.0f;
    return v;
}

/* NaN, +Inf and -Inf (or only NaN) at spread-out positions. */
static void host_inject_nonfinite(float *v, int64_t n, int with_inf) {
    v[n / 3] = NAN;
    if (with_inf && n >= 4) {
        v[n / 2] = INFINITY;
        v[(3 * n) / 4] = -INFINITY;
    }
}

/* ---------------- cases ---------------- */

static op_case *g_cases;
static int g_ncases, g_capcases;

static op_case *case_add(pn_op op, const char *label) {
    if (g_ncases == g_capcases) {
        g_capcases = g_capcases ? 2 * g_capcases : 64;
        g_cases = realloc(g_cases, (size_t)g_capcases * sizeof *g_cases);
        PN_ASSERT(g_cases);
    }
    op_case *c = &g_cases[g_ncases++];
    memset(c, 0, sizeof *c);
    c->op = op;
    c->tol = NMSE_TOL;
    snprintf(c->label, sizeof c->label, "%s", label);
    for (int i = 0; i < PN_OP_MAX_IO; i++) c->in[i].alias = c->out[i].alias = -1;
    return c;
}

static void case_in(op_case *c, int i, pn_tensor desc, float *data) { c->in[i] = (slot){1, desc, data, -1}; }

/* An output: init = starting values (accumulated / in-place updated outputs) or NULL (overwritten). */
static void case_out(op_case *c, int i, pn_tensor desc, float *init) { c->out[i] = (slot){1, desc, init, -1}; }

static void case_free(op_case *c) {
    for (int i = 0; i < PN_OP_MAX_IO; i++) {
        free(c->in[i].data);
        free(c->out[i].data);
    }
}

/* ---------------- running a case on a backend ---------------- */

/* A tensor in its own buffer between two guard regions. */
typedef struct dev_tensor {
    pn_buffer buf;
    pn_tensor t;
    int made;
} dev_tensor;

static float guard_value(int i) { return -98765.5f - (float)i; }

static pn_tensor guard_view(dev_tensor *d, int trailing) {
    pn_tensor g = pn_tensor_vec(GUARD_FLOATS);
    g.buf = &d->buf;
    g.offset = trailing ? GUARD_BYTES + pn_tensor_bytes(&d->t) : 0;
    return g;
}

static pn_status dev_tensor_make(pn_backend *be, dev_tensor *d, const pn_tensor *desc, const float *data,
                                 float prefill) {
    size_t bytes = pn_tensor_bytes(desc);
    PN_TRY(pn_buffer_alloc(be, &d->buf, bytes + 2 * GUARD_BYTES));
    d->made = 1;
    d->t = *desc;
    d->t.buf = &d->buf;
    d->t.offset = GUARD_BYTES;
    int64_t n = pn_tensor_numel(desc);
    float *fill = NULL;
    if (!data) data = fill = host_const(n, prefill);
    pn_status st = pn_tensor_set(&d->t, data);
    free(fill);
    PN_TRY(st);
    float guard[GUARD_FLOATS];
    for (int i = 0; i < GUARD_FLOATS; i++) guard[i] = guard_value(i);
    for (int side = 0; side < 2; side++) {
        pn_tensor g = guard_view(d, side);
        PN_TRY(pn_tensor_set(&g, guard));
    }
    return PN_OK;
}

/* 1 when both guard regions still hold the sentinel pattern. */
static int dev_tensor_guards_ok(dev_tensor *d) {
    float got[GUARD_FLOATS];
    for (int side = 0; side < 2; side++) {
        pn_tensor g = guard_view(d, side);
        if (pn_tensor_get(&g, got) != PN_OK) return 0;
        for (int i = 0; i < GUARD_FLOATS; i++) {
            float want = guard_value(i);
            if (memcmp(&got[i], &want, sizeof want) != 0) return 0;
        }
    }
    return 1;
}

typedef enum run_rc { RUN_OK, RUN_SKIP, RUN_FAIL } run_rc;

static void results_free(float *res[PN_OP_MAX_IO]) {
    for (int i = 0; i < PN_OP_MAX_IO; i++) {
        free(res[i]);
        res[i] = NULL;
    }
}

/* Runs case c on be. Outputs that alias an input share its tensor when use_alias, else get their own.
 * Fills res[o] (host copies, caller frees). Guard and untouched-input failures are counted here.
 * On RUN_SKIP / RUN_FAIL, `why` says why. */
static run_rc case_run(pn_backend *be, const op_case *c, int use_alias, float prefill, float *res[PN_OP_MAX_IO],
                       char *why, size_t nwhy) {
    dev_tensor in[PN_OP_MAX_IO], out[PN_OP_MAX_IO];
    memset(in, 0, sizeof in);
    memset(out, 0, sizeof out);
    memset(res, 0, sizeof(float *) * PN_OP_MAX_IO);
    pn_node node;
    memset(&node, 0, sizeof node);
    node.op = c->op;
    node.p = c->p;
    node.label = c->label;
    run_rc rc = RUN_FAIL;
    why[0] = 0;
    for (int i = 0; i < PN_OP_MAX_IO; i++) {
        if (!c->in[i].present) continue;
        if (dev_tensor_make(be, &in[i], &c->in[i].desc, c->in[i].data, 0.0f) != PN_OK) goto fail;
        node.in[i] = &in[i].t;
    }
    for (int o = 0; o < PN_OP_MAX_IO; o++) {
        const slot *s = &c->out[o];
        if (!s->present) continue;
        if (use_alias && s->alias >= 0) {
            node.out[o] = &in[s->alias].t;
            continue;
        }
        if (dev_tensor_make(be, &out[o], &s->desc, s->data, prefill) != PN_OK) goto fail;
        node.out[o] = &out[o].t;
    }
    if (pn_node_check(&node) != PN_OK) goto fail;
    const char *unsupported = pn_node_unsupported(be, &node);
    if (unsupported) {
        snprintf(why, nwhy, "%s", unsupported);
        rc = RUN_SKIP;
        goto done;
    }
    if (pn_node_prepare(be, &node) != PN_OK || pn_node_compute(be, &node) != PN_OK ||
        pn_backend_synchronize(be) != PN_OK)
        goto fail;
    for (int o = 0; o < PN_OP_MAX_IO; o++) {
        if (!node.out[o]) continue;
        res[o] = host_new(pn_tensor_numel(node.out[o]));
        if (pn_tensor_get(node.out[o], res[o]) != PN_OK) goto fail;
    }
    for (int i = 0; i < PN_OP_MAX_IO; i++) {
        if (in[i].made)
            CHECK_MSG(dev_tensor_guards_ok(&in[i]), "%s on %s: guard bytes of input %d overwritten", c->label, be->name,
                      i);
        if (out[i].made)
            CHECK_MSG(dev_tensor_guards_ok(&out[i]), "%s on %s: guard bytes of output %d overwritten", c->label,
                      be->name, i);
    }
    for (int i = 0; i < PN_OP_MAX_IO; i++) {
        if (!in[i].made) continue;
        int written = 0;
        for (int o = 0; o < PN_OP_MAX_IO; o++) written |= node.out[o] == &in[i].t;
        if (written) continue;
        int64_t n = pn_tensor_numel(&in[i].t);
        float *now = host_new(n);
        if (pn_tensor_get(&in[i].t, now) != PN_OK) {
            free(now);
            goto fail;
        }
        CHECK_MSG(memcmp(now, c->in[i].data, (size_t)n * sizeof *now) == 0, "%s on %s: input %d was modified", c->label,
                  be->name, i);
        free(now);
    }
    rc = RUN_OK;
    goto done;
fail:
    snprintf(why, nwhy, "%s", pn_last_error());
    results_free(res);
done:
    pn_node_release(be, &node);
    for (int i = 0; i < PN_OP_MAX_IO; i++) {
        if (in[i].made) pn_buffer_free(&in[i].buf);
        if (out[i].made) pn_buffer_free(&out[i].buf);
    }
    return rc;
}

/* ---------------- comparison ---------------- */

/* got against want: NaN where want is NaN, the same infinity where want is infinite, finite elsewhere; then
 * exact equality (exact) or NMSE = sum((got-want)^2) / max(sum(want^2), tiny) <= tol over the finite part.
 * Returns 1 if it holds, else 0 with a description in msg. */
static int compare(const float *got, const float *want, int64_t n, double tol, int exact, char *msg, size_t nmsg) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float g = got[i], w = want[i];
        if (isnan(w) || isinf(w) || !isfinite(g)) {
            int same = isnan(w) ? isnan(g) : g == w;
            if (!same) {
                snprintf(msg, nmsg, "element %lld is %g, expected %g (NaN/Inf parity)", (long long)i, (double)g,
                         (double)w);
                return 0;
            }
            continue;
        }
        if (exact && g != w) {
            snprintf(msg, nmsg, "element %lld is %.9g, expected exactly %.9g", (long long)i, (double)g, (double)w);
            return 0;
        }
        num += ((double)g - w) * ((double)g - w);
        den += (double)w * w;
    }
    double nmse = num / (den > 1e-30 ? den : 1e-30);
    if (nmse > tol) {
        snprintf(msg, nmsg, "NMSE %.3g > %.3g", nmse, tol);
        return 0;
    }
    return 1;
}

static int op_selected(pn_op op) { return !g_op_filter || strcmp(g_op_filter, pn_op_name(op)) == 0; }

/* Runs every case on ref (the oracle) and on `be`, and compares every output. */
static void run_cases(pn_backend *ref, pn_backend *be) {
    int is_ref = strcmp(be->name, "ref") == 0;
    char why[512], msg[256];
    for (int k = 0; k < g_ncases; k++) {
        const op_case *c = &g_cases[k];
        if (!op_selected(c->op)) continue;
        float *want[PN_OP_MAX_IO], *got[PN_OP_MAX_IO];
        if (case_run(ref, c, 0, PREFILL_REF, want, why, sizeof why) != RUN_OK) {
            CHECK_MSG(0, "%s on ref: %s", c->label, why);
            continue;
        }
        run_rc rc = case_run(be, c, 1, PREFILL_TEST, got, why, sizeof why);
        if (rc == RUN_SKIP) {
            SKIP("%s %s: %s [%s]", pn_op_name(c->op), be->name, why, c->label);
            if (strcmp(why, PN_OP_LEFT_OUT) == 0) g_left_out[c->op]++;
        } else if (rc == RUN_FAIL) {
            CHECK_MSG(0, "%s on %s: %s", c->label, be->name, why);
        } else {
            g_ran[c->op]++;
            for (int o = 0; o < PN_OP_MAX_IO; o++) {
                if (!c->out[o].present) continue;
                int ok = compare(got[o], want[o], pn_tensor_numel(&c->out[o].desc), c->tol, is_ref, msg, sizeof msg);
                CHECK_MSG(ok, "%s on %s, output %d: %s", c->label, be->name, o, msg);
            }
        }
        results_free(want);
        results_free(got);
    }
}

/* ---------------- the cases, op by op ---------------- */

/* NCHW shapes the flat ops (fill, scale, axpy, sum_squares, adam_step) and the loss also run on: odd sizes
 * (630 values), a tiny plane (9), and a large one (131072, several threads' worth). */
static const int64_t flat_shapes[][4] = {{2, 5, 7, 9}, {1, 1, 3, 3}, {2, 16, 64, 64}};
#define N_FLAT_SHAPES (int)(sizeof flat_shapes / sizeof flat_shapes[0])

/* fill, scale, axpy and sum_squares on one NCHW shape. */
static void add_blas1_nchw_cases(const int64_t sh[4]) {
    pn_tensor t = pn_tensor_nchw(sh[0], sh[1], sh[2], sh[3]);
    int64_t n = pn_tensor_numel(&t);
    char label[160], s[64];
    pn_shape_str(&t, s, sizeof s);
    snprintf(label, sizeof label, "fill nchw %s value=0.25", s);
    op_case *c = case_add(PN_OP_FILL, label);
    c->p.fill.value = 0.25f;
    case_out(c, 0, t, NULL);
    snprintf(label, sizeof label, "scale nchw %s alpha=-1.5", s);
    c = case_add(PN_OP_SCALE, label);
    c->p.scale.alpha = -1.5f;
    case_in(c, 0, t, host_normal(n, 1.0f, 0.0f));
    case_out(c, 0, t, NULL);
    snprintf(label, sizeof label, "axpy nchw %s alpha=-1.5", s);
    c = case_add(PN_OP_AXPY, label);
    c->p.axpy.alpha = -1.5f;
    case_in(c, 0, t, host_normal(n, 1.0f, 0.0f));
    case_out(c, 0, t, host_normal(n, 1.0f, 0.0f));
    snprintf(label, sizeof label, "sum_squares nchw %s", s);
    c = case_add(PN_OP_SUM_SQUARES, label);
    case_in(c, 0, t, host_normal(n, 1.0f, 0.0f));
    case_out(c, 0, pn_tensor_vec(1), NULL);
}

static void add_blas1_cases(void) {
    const int64_t sizes[] = {1, 7, 1001, 4099};
    const float values[] = {0.0f, -1.5f, 3.25f, 1e30f};
    char label[160];
    for (int i = 0; i < 4; i++) {
        snprintf(label, sizeof label, "fill n=%lld value=%g", (long long)sizes[i], (double)values[i]);
        op_case *c = case_add(PN_OP_FILL, label);
        c->p.fill.value = values[i];
        case_out(c, 0, pn_tensor_vec(sizes[i]), NULL);
    }
    op_case *c = case_add(PN_OP_FILL, "fill nchw 2x3x7x9 value=0.5");
    c->p.fill.value = 0.5f;
    case_out(c, 0, pn_tensor_nchw(2, 3, 7, 9), NULL);
    c = case_add(PN_OP_FILL, "fill NaN");
    c->p.fill.value = NAN;
    case_out(c, 0, pn_tensor_vec(33), NULL);
    c = case_add(PN_OP_FILL, "fill -Inf");
    c->p.fill.value = -INFINITY;
    case_out(c, 0, pn_tensor_vec(33), NULL);

    const float alphas[] = {0.5f, -2.0f, 0.0f, 1e-3f};
    for (int i = 0; i < 4; i++) {
        for (int inplace = 0; inplace < 2; inplace++) {
            snprintf(label, sizeof label, "scale n=%lld alpha=%g%s", (long long)sizes[i], (double)alphas[i],
                     inplace ? " in-place y==x" : "");
            c = case_add(PN_OP_SCALE, label);
            c->p.scale.alpha = alphas[i];
            case_in(c, 0, pn_tensor_vec(sizes[i]), host_normal(sizes[i], 1.0f, 0.0f));
            case_out(c, 0, pn_tensor_vec(sizes[i]), NULL);
            if (inplace) c->out[0].alias = 0;
        }
        snprintf(label, sizeof label, "axpy n=%lld alpha=%g", (long long)sizes[i], (double)alphas[i]);
        c = case_add(PN_OP_AXPY, label);
        c->p.axpy.alpha = alphas[i];
        case_in(c, 0, pn_tensor_vec(sizes[i]), host_normal(sizes[i], 1.0f, 0.0f));
        case_out(c, 0, pn_tensor_vec(sizes[i]), host_normal(sizes[i], 2.0f, 1.0f));

        snprintf(label, sizeof label, "sum_squares n=%lld", (long long)sizes[i]);
        c = case_add(PN_OP_SUM_SQUARES, label);
        case_in(c, 0, pn_tensor_vec(sizes[i]), host_normal(sizes[i], 3.0f, 0.5f));
        case_out(c, 0, pn_tensor_vec(1), NULL);
    }
    c = case_add(PN_OP_SUM_SQUARES, "sum_squares nchw 2x16x17x17 (large sum)");
    case_in(c, 0, pn_tensor_nchw(2, 16, 17, 17), host_normal(2 * 16 * 17 * 17, 100.0f, 0.0f));
    case_out(c, 0, pn_tensor_vec(1), NULL);

    /* NaN / Inf parity. */
    c = case_add(PN_OP_SCALE, "scale NaN/Inf inputs");
    c->p.scale.alpha = -3.0f;
    case_in(c, 0, pn_tensor_vec(101), host_normal(101, 1.0f, 0.0f));
    host_inject_nonfinite(c->in[0].data, 101, 1);
    case_out(c, 0, pn_tensor_vec(101), NULL);
    c = case_add(PN_OP_AXPY, "axpy NaN/Inf inputs");
    c->p.axpy.alpha = 0.5f;
    case_in(c, 0, pn_tensor_vec(101), host_normal(101, 1.0f, 0.0f));
    host_inject_nonfinite(c->in[0].data, 101, 1);
    case_out(c, 0, pn_tensor_vec(101), host_normal(101, 1.0f, 0.0f));
    c = case_add(PN_OP_SUM_SQUARES, "sum_squares NaN input");
    case_in(c, 0, pn_tensor_vec(101), host_normal(101, 1.0f, 0.0f));
    host_inject_nonfinite(c->in[0].data, 101, 0);
    case_out(c, 0, pn_tensor_vec(1), NULL);
    c = case_add(PN_OP_SUM_SQUARES, "sum_squares -Inf input");
    case_in(c, 0, pn_tensor_vec(101), host_normal(101, 1.0f, 0.0f));
    c->in[0].data[50] = -INFINITY;
    case_out(c, 0, pn_tensor_vec(1), NULL);
    for (int i = 0; i < N_FLAT_SHAPES; i++) add_blas1_nchw_cases(flat_shapes[i]);
}

typedef struct conv_cfg {
    int64_t n, cin, cout, h, w, k;
    int stride, pad, groups, bias;
} conv_cfg;

static const conv_cfg conv_cfgs[] = {
    {1, 1, 1, 7, 9, 3, 1, 1, 1, 1},     /* batch 1, one channel, odd sizes */
    {2, 3, 8, 13, 11, 3, 2, 1, 1, 0},   /* stride 2, no bias */
    {2, 16, 4, 9, 7, 1, 1, 0, 1, 1},    /* 1x1 */
    {1, 3, 5, 17, 15, 7, 2, 3, 1, 1},   /* 7x7 stride 2 pad 3 (a ResNet stem) */
    {2, 8, 8, 7, 9, 3, 1, 1, 2, 1},     /* groups 2 */
    {1, 8, 8, 9, 7, 3, 2, 1, 8, 0},     /* depthwise, stride 2 */
    {2, 16, 16, 5, 5, 3, 1, 0, 4, 1},   /* groups 4, pad 0 */
    {1, 4, 6, 6, 7, 3, 1, 3, 1, 0},     /* pad 3 > k/2 */
    {2, 4, 4, 8, 8, 1, 2, 0, 1, 1},     /* 1x1 stride 2 (downsample) */
    {1, 1, 16, 16, 16, 3, 1, 1, 1, 1},  /* 1 -> many channels */
    {2, 12, 1, 11, 13, 3, 1, 1, 1, 1},  /* many -> 1 channel (a head) */
    {2, 17, 24, 17, 17, 3, 1, 1, 1, 1}, /* channel counts off any SIMD block (tails) */
    {2, 32, 16, 9, 9, 3, 2, 1, 1, 0},   /* a ResNet downsampling conv, in miniature */
    {1, 16, 48, 5, 7, 1, 1, 0, 1, 1},   /* 1x1 expansion */
    {2, 64, 64, 7, 7, 3, 1, 1, 32, 1},  /* ResNeXt-style grouped conv (32 groups of 2) */
    {1, 3, 8, 17, 19, 7, 2, 3, 1, 0},   /* the stem on a non-square input, no bias */
    {2, 16, 16, 9, 11, 3, 1, 1, 1, 0},  /* one channel block in and out, non-square */
    {1, 24, 40, 13, 13, 3, 2, 1, 1, 0}, /* 3x3 stride 2 across partial channel blocks */
    {2, 16, 32, 9, 9, 1, 2, 0, 1, 0},   /* a blocked 1x1 stride-2 downsample */
    {1, 16, 1, 15, 15, 3, 1, 1, 1, 1},  /* a blocked input to one output channel (a head) */
    {3, 1, 5, 7, 6, 3, 1, 1, 1, 1},     /* batch 3, one input channel */
    {1, 32, 32, 5, 5, 3, 1, 1, 4, 0},   /* groups 4 of 8 channels, pad 1 */
    {1, 64, 64, 32, 32, 3, 1, 1, 1, 0}, /* a ResNet layer1 conv at 32x32 */
    {2, 8, 8, 4, 4, 1, 1, 0, 1, 1},     /* 1x1 stride 1 on a tiny plane */
};

static int64_t conv_out_size(int64_t in, int64_t k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

static void conv_cfg_label(char *buf, size_t n, const char *op, const conv_cfg *g, const char *extra) {
    snprintf(buf, n, "%s x=%lldx%lldx%lldx%lld cout=%lld k=%lld s=%d p=%d g=%d bias=%d%s", op, (long long)g->n,
             (long long)g->cin, (long long)g->h, (long long)g->w, (long long)g->cout, (long long)g->k, g->stride,
             g->pad, g->groups, g->bias, extra);
}

static void add_conv_case_set(const conv_cfg *g, int nonfinite) {
    pn_tensor x = pn_tensor_nchw(g->n, g->cin, g->h, g->w);
    pn_tensor w = pn_tensor_nchw(g->cout, g->cin / g->groups, g->k, g->k);
    pn_tensor y = pn_tensor_nchw(g->n, g->cout, conv_out_size(g->h, g->k, g->stride, g->pad),
                                 conv_out_size(g->w, g->k, g->stride, g->pad));
    pn_tensor b = pn_tensor_vec(g->cout);
    pn_conv2d_params p = {g->stride, g->pad, g->groups};
    const char *extra = nonfinite ? " NaN/Inf" : "";
    float wscale = 1.0f / sqrtf((float)(w.shape[1] * g->k * g->k));
    char label[160];

    conv_cfg_label(label, sizeof label, "conv2d_fwd", g, extra);
    op_case *c = case_add(PN_OP_CONV2D_FWD, label);
    c->p.conv2d_fwd = p;
    case_in(c, 0, x, host_normal(pn_tensor_numel(&x), 1.0f, 0.0f));
    case_in(c, 1, w, host_normal(pn_tensor_numel(&w), wscale, 0.0f));
    if (g->bias) case_in(c, 2, b, host_normal(g->cout, 0.5f, 0.0f));
    case_out(c, 0, y, NULL);
    if (nonfinite) host_inject_nonfinite(c->in[0].data, pn_tensor_numel(&x), 1);

    conv_cfg_label(label, sizeof label, "conv2d_bwd_data", g, extra);
    c = case_add(PN_OP_CONV2D_BWD_DATA, label);
    c->p.conv2d_bwd_data = p;
    case_in(c, 0, y, host_normal(pn_tensor_numel(&y), 1.0f, 0.0f));
    case_in(c, 1, w, host_normal(pn_tensor_numel(&w), wscale, 0.0f));
    case_out(c, 0, x, NULL);
    if (nonfinite) host_inject_nonfinite(c->in[0].data, pn_tensor_numel(&y), 1);

    conv_cfg_label(label, sizeof label, "conv2d_bwd_weights", g, extra);
    c = case_add(PN_OP_CONV2D_BWD_WEIGHTS, label);
    c->p.conv2d_bwd_weights = p;
    case_in(c, 0, y, host_normal(pn_tensor_numel(&y), 1.0f, 0.0f));
    case_in(c, 1, x, host_normal(pn_tensor_numel(&x), 1.0f, 0.0f));
    case_out(c, 0, w, host_normal(pn_tensor_numel(&w), 0.1f, 0.0f)); /* accumulated into */
    if (g->bias) case_out(c, 1, b, host_normal(g->cout, 0.1f, 0.0f));
    if (nonfinite) host_inject_nonfinite(c->in[1].data, pn_tensor_numel(&x), 1);
}

static void add_conv_cases(void) {
    int n = (int)(sizeof conv_cfgs / sizeof conv_cfgs[0]);
    for (int i = 0; i < n; i++) add_conv_case_set(&conv_cfgs[i], 0);
    add_conv_case_set(&conv_cfgs[1], 1);
    add_conv_case_set(&conv_cfgs[4], 1);
}

/* Convolutions added after the others, so the random inputs of every earlier case stay as they were. */
static const conv_cfg late_conv_cfgs[] = {
    {2, 32, 1, 7, 45, 3, 1, 1, 1, 1}, /* a wide head: whole vectors of pixels, the edges and a tail */
};

static void add_late_conv_cases(void) {
    int n = (int)(sizeof late_conv_cfgs / sizeof late_conv_cfgs[0]);
    for (int i = 0; i < n; i++) add_conv_case_set(&late_conv_cfgs[i], 0);
    add_conv_case_set(&late_conv_cfgs[0], 1);
}

/* Per-channel batch mean and 1/sqrt(var + eps) of x, as BATCHNORM_TRAIN_FWD saves them. */
static void bn_stats(const float *x, const pn_tensor *t, float eps, float *mean, float *invstd) {
    int64_t n = t->shape[0], ch = t->shape[1], hw = t->shape[2] * t->shape[3];
    for (int64_t c = 0; c < ch; c++) {
        double s = 0.0, s2 = 0.0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) s += x[(i * ch + c) * hw + j];
        double m = s / (double)(n * hw);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) s2 += (x[(i * ch + c) * hw + j] - m) * (x[(i * ch + c) * hw + j] - m);
        mean[c] = (float)m;
        invstd[c] = (float)(1.0 / sqrt(s2 / (double)(n * hw) + eps));
    }
}

static void add_batchnorm_case_set(int64_t n, int64_t ch, int64_t h, int64_t w, int nonfinite) {
    pn_tensor x = pn_tensor_nchw(n, ch, h, w), v = pn_tensor_vec(ch);
    int64_t nx = pn_tensor_numel(&x);
    pn_batchnorm_params p = {1e-5f, 0.1f};
    char label[160];
    const char *extra = nonfinite ? " NaN/Inf" : "";

    snprintf(label, sizeof label, "batchnorm_train_fwd %lldx%lldx%lldx%lld%s", (long long)n, (long long)ch,
             (long long)h, (long long)w, extra);
    op_case *c = case_add(PN_OP_BATCHNORM_TRAIN_FWD, label);
    c->p.batchnorm_train_fwd = p;
    case_in(c, 0, x, host_normal(nx, 2.0f, 3.0f)); /* an offset mean stresses the variance */
    case_in(c, 1, v, host_normal(ch, 0.5f, 1.0f));
    case_in(c, 2, v, host_normal(ch, 0.5f, 0.0f));
    case_out(c, 0, x, NULL);
    case_out(c, 1, v, NULL);
    case_out(c, 2, v, NULL);
    case_out(c, 3, v, host_normal(ch, 0.2f, 0.0f));  /* running mean, updated in place */
    case_out(c, 4, v, host_uniform(ch, 0.5f, 2.0f)); /* running var */
    if (nonfinite) host_inject_nonfinite(c->in[0].data, nx, 1);

    snprintf(label, sizeof label, "batchnorm_infer_fwd %lldx%lldx%lldx%lld%s", (long long)n, (long long)ch,
             (long long)h, (long long)w, extra);
    c = case_add(PN_OP_BATCHNORM_INFER_FWD, label);
    c->p.batchnorm_infer_fwd = p;
    case_in(c, 0, x, host_normal(nx, 2.0f, 1.0f));
    case_in(c, 1, v, host_normal(ch, 0.5f, 1.0f));
    case_in(c, 2, v, host_normal(ch, 0.5f, 0.0f));
    case_in(c, 3, v, host_normal(ch, 0.5f, 1.0f));
    case_in(c, 4, v, host_uniform(ch, 0.5f, 4.0f));
    case_out(c, 0, x, NULL);
    if (nonfinite) host_inject_nonfinite(c->in[0].data, nx, 1);

    for (int inplace = 0; inplace < 2; inplace++) {
        snprintf(label, sizeof label, "batchnorm_apply %lldx%lldx%lldx%lld%s%s", (long long)n, (long long)ch,
                 (long long)h, (long long)w, extra, inplace ? " in-place" : "");
        c = case_add(PN_OP_BATCHNORM_APPLY, label);
        c->p.batchnorm_apply = p;
        case_in(c, 0, x, host_normal(nx, 2.0f, 3.0f));
        case_in(c, 1, v, host_normal(ch, 0.5f, 1.0f));
        case_in(c, 2, v, host_normal(ch, 0.5f, 0.0f));
        case_in(c, 3, v, host_new(ch));
        case_in(c, 4, v, host_new(ch));
        bn_stats(c->in[0].data, &x, p.eps, c->in[3].data, c->in[4].data);
        case_out(c, 0, x, NULL);
        if (inplace) c->out[0].alias = 0;
        if (nonfinite) host_inject_nonfinite(c->in[0].data, nx, 1);
    }

    snprintf(label, sizeof label, "batchnorm_bwd %lldx%lldx%lldx%lld%s", (long long)n, (long long)ch, (long long)h,
             (long long)w, extra);
    c = case_add(PN_OP_BATCHNORM_BWD, label);
    c->p.batchnorm_bwd = p;
    case_in(c, 0, x, host_normal(nx, 1.0f, 0.0f));
    case_in(c, 1, x, host_normal(nx, 2.0f, 3.0f));
    case_in(c, 2, v, host_normal(ch, 0.5f, 1.0f));
    case_in(c, 3, v, host_new(ch));
    case_in(c, 4, v, host_new(ch));
    bn_stats(c->in[1].data, &x, p.eps, c->in[3].data, c->in[4].data);
    case_out(c, 0, x, NULL);
    case_out(c, 1, v, host_normal(ch, 0.1f, 0.0f)); /* dgamma, accumulated */
    case_out(c, 2, v, host_normal(ch, 0.1f, 0.0f)); /* dbeta, accumulated */
    if (nonfinite) host_inject_nonfinite(c->in[0].data, nx, 1);
}

static void add_batchnorm_cases(void) {
    add_batchnorm_case_set(2, 3, 7, 9, 0);
    add_batchnorm_case_set(1, 16, 5, 5, 0);
    add_batchnorm_case_set(2, 1, 13, 11, 0);
    add_batchnorm_case_set(4, 8, 1, 1, 0);
    add_batchnorm_case_set(1, 2, 1, 2, 0);  /* two values per channel: the smallest train batch */
    add_batchnorm_case_set(2, 17, 9, 7, 0); /* a channel count off any SIMD block */
    add_batchnorm_case_set(2, 16, 7, 9, 0); /* one channel block */
    add_batchnorm_case_set(1, 1, 5, 3, 0);
    add_batchnorm_case_set(4, 64, 16, 16, 0); /* many channels and pixels */
    add_batchnorm_case_set(2, 3, 7, 9, 1);
}

static const int64_t ew_shapes[][4] = {{1, 1, 1, 1}, {2, 3, 7, 9}, {1, 16, 13, 11}, {2, 5, 17, 16},
                                       {2, 5, 7, 9}, {1, 1, 3, 3}, {2, 16, 64, 64}};
#define N_EW_SHAPES (int)(sizeof ew_shapes / sizeof ew_shapes[0])

static pn_tensor ew_shape(int i) {
    return pn_tensor_nchw(ew_shapes[i][0], ew_shapes[i][1], ew_shapes[i][2], ew_shapes[i][3]);
}

static void add_elementwise_cases(void) {
    char label[160];
    char s[64];
    for (int i = 0; i < N_EW_SHAPES; i++) {
        pn_tensor t = ew_shape(i);
        int64_t n = pn_tensor_numel(&t);
        pn_shape_str(&t, s, sizeof s);
        for (int inplace = 0; inplace < 2; inplace++) {
            const char *ip = inplace ? " in-place" : "";
            snprintf(label, sizeof label, "relu_fwd %s%s", s, ip);
            op_case *c = case_add(PN_OP_RELU_FWD, label);
            case_in(c, 0, t, host_normal(n, 1.0f, 0.0f));
            c->in[0].data[n / 2] = 0.0f;
            case_out(c, 0, t, NULL);
            if (inplace) c->out[0].alias = 0;

            snprintf(label, sizeof label, "relu_bwd %s%s", s, ip);
            c = case_add(PN_OP_RELU_BWD, label);
            case_in(c, 0, t, host_normal(n, 1.0f, 0.0f));
            case_in(c, 1, t, host_normal(n, 1.0f, 0.0f));
            for (int64_t j = 0; j < n; j++) c->in[1].data[j] = c->in[1].data[j] < 0 ? 0.0f : c->in[1].data[j];
            case_out(c, 0, t, NULL);
            if (inplace) c->out[0].alias = 0;
        }
        for (int alias = -1; alias < 2; alias++) {
            snprintf(label, sizeof label, "add %s%s", s,
                     alias < 0    ? ""
                     : alias == 0 ? " in-place y==a"
                                  : " in-place y==b");
            op_case *c = case_add(PN_OP_ADD, label);
            case_in(c, 0, t, host_normal(n, 1.0f, 0.0f));
            case_in(c, 1, t, host_normal(n, 2.0f, 0.5f));
            case_out(c, 0, t, NULL);
            c->out[0].alias = alias;
        }
        snprintf(label, sizeof label, "sigmoid %s", s);
        op_case *c = case_add(PN_OP_SIGMOID, label);
        case_in(c, 0, t, host_normal(n, 4.0f, 0.0f));
        case_out(c, 0, t, NULL);
    }
    op_case *c = case_add(PN_OP_SIGMOID, "sigmoid extreme values");
    case_in(c, 0, pn_tensor_vec(9), host_new(9));
    const float extreme[9] = {-100.0f, -30.0f, -17.0f, -1e-6f, 0.0f, 1e-6f, 17.0f, 30.0f, 100.0f};
    memcpy(c->in[0].data, extreme, sizeof extreme);
    case_out(c, 0, pn_tensor_vec(9), NULL);

    pn_tensor t = ew_shape(1);
    int64_t n = pn_tensor_numel(&t);
    c = case_add(PN_OP_RELU_FWD, "relu_fwd NaN/Inf");
    case_in(c, 0, t, host_normal(n, 1.0f, 0.0f));
    host_inject_nonfinite(c->in[0].data, n, 1);
    case_out(c, 0, t, NULL);
    c = case_add(PN_OP_RELU_BWD, "relu_bwd NaN/Inf in dy");
    case_in(c, 0, t, host_normal(n, 1.0f, 0.0f));
    case_in(c, 1, t, host_uniform(n, 0.0f, 1.0f));
    host_inject_nonfinite(c->in[0].data, n, 1);
    case_out(c, 0, t, NULL);
    c = case_add(PN_OP_ADD, "add NaN/Inf");
    case_in(c, 0, t, host_normal(n, 1.0f, 0.0f));
    case_in(c, 1, t, host_normal(n, 1.0f, 0.0f));
    host_inject_nonfinite(c->in[0].data, n, 1);
    c->in[1].data[n / 2 + 1] = INFINITY;
    c->in[1].data[(3 * n) / 4] = INFINITY; /* -Inf + Inf = NaN */
    case_out(c, 0, t, NULL);
    c = case_add(PN_OP_SIGMOID, "sigmoid NaN/Inf");
    case_in(c, 0, t, host_normal(n, 1.0f, 0.0f));
    host_inject_nonfinite(c->in[0].data, n, 1);
    case_out(c, 0, t, NULL);
}

typedef struct pool_cfg {
    int64_t n, c, h, w;
    int kernel, stride, pad;
    int ties; /* quantized inputs with many equal values in a window */
} pool_cfg;

static void add_pool_cases(void) {
    const pool_cfg cfgs[] = {
        {1, 1, 7, 9, 3, 2, 1, 0}, /* the ResNet stem pool on odd sizes */
        {2, 3, 13, 11, 3, 2, 1, 0},  {2, 16, 8, 8, 3, 2, 1, 0}, {1, 4, 1, 1, 3, 2, 1, 0}, /* 1x1 input */
        {2, 3, 8, 10, 2, 2, 0, 0},   {1, 5, 7, 9, 2, 2, 0, 0},                            /* floor on odd sizes */
        {2, 3, 7, 9, 3, 1, 1, 0},    {2, 4, 9, 9, 3, 2, 1, 1}, /* ties: the gradient goes to the first maximum */
        {1, 2, 7, 7, 7, 1, 3, 0},                              /* large window */
        {2, 17, 17, 16, 3, 2, 1, 0},                           /* channel count off any SIMD block */
        {2, 8, 17, 16, 3, 2, 1, 0},                            /* an 8-channel block, odd height */
        {1, 1, 5, 5, 2, 2, 0, 0},                              /* 2/2/0 dropping the last row and column */
    };
    char label[160];
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        const pool_cfg *g = &cfgs[i];
        for (int nonfinite = 0; nonfinite < 2; nonfinite++) {
            if (nonfinite && i != 1) continue;
            pn_tensor x = pn_tensor_nchw(g->n, g->c, g->h, g->w);
            pn_tensor y = pn_tensor_nchw(g->n, g->c, conv_out_size(g->h, g->kernel, g->stride, g->pad),
                                         conv_out_size(g->w, g->kernel, g->stride, g->pad));
            int64_t nx = pn_tensor_numel(&x);
            pn_pool_params p = {g->kernel, g->stride, g->pad, 0};
            float *xs[2];
            for (int k = 0; k < 2; k++) {
                xs[k] = host_normal(nx, 1.0f, 0.0f);
                if (g->ties)
                    for (int64_t j = 0; j < nx; j++) xs[k][j] = roundf(xs[k][j] * 1.5f) / 1.5f;
                if (nonfinite) host_inject_nonfinite(xs[k], nx, 1);
            }
            snprintf(label, sizeof label, "maxpool_fwd x=%lldx%lldx%lldx%lld k=%d s=%d p=%d%s%s", (long long)g->n,
                     (long long)g->c, (long long)g->h, (long long)g->w, g->kernel, g->stride, g->pad,
                     g->ties ? " ties" : "", nonfinite ? " NaN/Inf" : "");
            op_case *c = case_add(PN_OP_MAXPOOL_FWD, label);
            c->p.maxpool_fwd = p;
            case_in(c, 0, x, xs[0]);
            case_out(c, 0, y, NULL);
            memcpy(label, "maxpool_bwd", 11);
            c = case_add(PN_OP_MAXPOOL_BWD, label);
            c->p.maxpool_bwd = p;
            case_in(c, 0, y, host_normal(pn_tensor_numel(&y), 1.0f, 0.0f));
            case_in(c, 1, x, xs[1]);
            case_out(c, 0, x, NULL);
        }
    }
}

static void add_shape_cases(void) {
    const int64_t up[][4] = {{1, 1, 1, 1}, {2, 3, 7, 9}, {1, 16, 4, 5},  {2, 2, 8, 8},
                             {2, 5, 7, 9}, {1, 1, 3, 3}, {2, 16, 64, 64}};
    char label[160];
    for (size_t i = 0; i < sizeof up / sizeof up[0]; i++) {
        for (int nonfinite = 0; nonfinite < 2; nonfinite++) {
            if (nonfinite && i != 1) continue;
            pn_tensor s = pn_tensor_nchw(up[i][0], up[i][1], up[i][2], up[i][3]);
            pn_tensor b = pn_tensor_nchw(up[i][0], up[i][1], 2 * up[i][2], 2 * up[i][3]);
            const char *extra = nonfinite ? " NaN/Inf" : "";
            snprintf(label, sizeof label, "upsample2x_fwd %lldx%lldx%lldx%lld%s", (long long)up[i][0],
                     (long long)up[i][1], (long long)up[i][2], (long long)up[i][3], extra);
            op_case *c = case_add(PN_OP_UPSAMPLE2X_FWD, label);
            case_in(c, 0, s, host_normal(pn_tensor_numel(&s), 1.0f, 0.0f));
            case_out(c, 0, b, NULL);
            if (nonfinite) host_inject_nonfinite(c->in[0].data, pn_tensor_numel(&s), 1);
            memcpy(label + 11, "bwd", 3);
            c = case_add(PN_OP_UPSAMPLE2X_BWD, label);
            case_in(c, 0, b, host_normal(pn_tensor_numel(&b), 1.0f, 0.0f));
            case_out(c, 0, s, NULL);
            if (nonfinite) host_inject_nonfinite(c->in[0].data, pn_tensor_numel(&b), 1);
        }
    }
    const int64_t cat[][5] = {{1, 1, 3, 7, 9}, {2, 16, 8, 5, 5}, {2, 3, 1, 13, 11}, {1, 32, 64, 4, 4},
                              {2, 5, 3, 7, 9}, {1, 1, 3, 3, 3},  {2, 16, 3, 64, 64}};
    for (size_t i = 0; i < sizeof cat / sizeof cat[0]; i++) {
        int64_t n = cat[i][0], ca = cat[i][1], cb = cat[i][2], h = cat[i][3], w = cat[i][4];
        pn_tensor a = pn_tensor_nchw(n, ca, h, w), b = pn_tensor_nchw(n, cb, h, w),
                  y = pn_tensor_nchw(n, ca + cb, h, w);
        snprintf(label, sizeof label, "concat n=%lld ca=%lld cb=%lld %lldx%lld", (long long)n, (long long)ca,
                 (long long)cb, (long long)h, (long long)w);
        op_case *c = case_add(PN_OP_CONCAT, label);
        case_in(c, 0, a, host_normal(pn_tensor_numel(&a), 1.0f, 0.0f));
        case_in(c, 1, b, host_normal(pn_tensor_numel(&b), 1.0f, 0.0f));
        if (i == 0) host_inject_nonfinite(c->in[1].data, pn_tensor_numel(&b), 1);
        case_out(c, 0, y, NULL);
        for (int with_b = 0; with_b < 2; with_b++) {
            snprintf(label, sizeof label, "split n=%lld ca=%lld cb=%lld %lldx%lld%s", (long long)n, (long long)ca,
                     (long long)cb, (long long)h, (long long)w, with_b ? "" : " (db absent)");
            c = case_add(PN_OP_SPLIT, label);
            case_in(c, 0, y, host_normal(pn_tensor_numel(&y), 1.0f, 0.0f));
            if (i == 0) host_inject_nonfinite(c->in[0].data, pn_tensor_numel(&y), 1);
            case_out(c, 0, a, NULL);
            if (with_b) case_out(c, 1, b, NULL);
        }
    }
}

typedef enum target_kind { T_BINARY, T_ZEROS, T_ONES, T_SOFT } target_kind;
static const char *const target_names[] = {"binary", "all-zero", "all-one", "soft"};

static float *combo_target(int64_t n, target_kind k) {
    switch (k) {
    case T_BINARY: return host_binary(n, 0.3f);
    case T_ZEROS: return host_const(n, 0.0f);
    case T_ONES: return host_const(n, 1.0f);
    default: return host_uniform(n, 0.0f, 1.0f);
    }
}

static void add_combo_case(pn_tensor t, pn_combo_loss_params p, target_kind tk, float logit_scale, float logit_mean,
                           int nonfinite, const char *what) {
    char label[160];
    int64_t n = pn_tensor_numel(&t);
    for (int bwd = 0; bwd < 2; bwd++) {
        snprintf(label, sizeof label, "combo_loss_%s w=(%g,%g,%g) scale=%g targets=%s%s%s", bwd ? "bwd" : "fwd",
                 (double)p.w_bce, (double)p.w_dice, (double)p.w_focal, (double)p.grad_scale, target_names[tk],
                 what ? " " : "", what ? what : "");
        op_case *c = case_add(bwd ? PN_OP_COMBO_LOSS_BWD : PN_OP_COMBO_LOSS_FWD, label);
        c->p.combo_loss_fwd = p;
        case_in(c, 0, t, host_normal(n, logit_scale, logit_mean));
        case_in(c, 1, t, combo_target(n, tk));
        if (nonfinite) host_inject_nonfinite(c->in[0].data, n, 0);
        case_out(c, 0, bwd ? t : pn_tensor_vec(1), NULL);
    }
}

static void add_combo_cases(void) {
    pn_tensor big = pn_tensor_nchw(2, 1, 16, 16), small = pn_tensor_nchw(1, 1, 7, 9);
    const pn_combo_loss_params weights[] = {
        {3, 1, 4, 1}, {0, 1, 4, 1}, {3, 0, 4, 1}, {3, 1, 0, 1}, {1, 0, 0, 1}, {0, 1, 0, 1}, {0, 0, 1, 1},
    };
    for (size_t i = 0; i < sizeof weights / sizeof weights[0]; i++)
        for (int tk = 0; tk < 4; tk++) add_combo_case(big, weights[i], (target_kind)tk, 2.0f, 0.0f, 0, NULL);
    add_combo_case(small, (pn_combo_loss_params){3, 1, 4, 0.25f}, T_BINARY, 3.0f, 0.0f, 0, "small");
    add_combo_case(small, (pn_combo_loss_params){3, 1, 4, 1}, T_SOFT, 12.0f, 0.0f, 0, "saturated logits");
    /* All-zero targets with very negative logits and no Dice: the loss sits on its 1e-5 floor. */
    add_combo_case(small, (pn_combo_loss_params){3, 0, 4, 1}, T_ZEROS, 1.0f, -25.0f, 0, "floor");
    add_combo_case(small, (pn_combo_loss_params){3, 1, 4, 1}, T_BINARY, 2.0f, 0.0f, 1, "NaN");
    for (int i = 0; i < N_FLAT_SHAPES; i++) { /* equal weights, half the gradient, on odd, tiny and large maps */
        pn_tensor t = pn_tensor_nchw(flat_shapes[i][0], 1, flat_shapes[i][2], flat_shapes[i][3]);
        char s[64];
        pn_shape_str(&t, s, sizeof s);
        add_combo_case(t, (pn_combo_loss_params){1, 1, 1, 0.5f}, T_BINARY, 1.0f, 0.0f, 0, s);
    }
}

static void add_adam_case(int64_t n, float wd, int64_t step, int nonfinite) {
    char label[160];
    snprintf(label, sizeof label, "adam_step n=%lld wd=%g step=%lld%s", (long long)n, (double)wd, (long long)step,
             nonfinite ? " NaN/Inf" : "");
    op_case *c = case_add(PN_OP_ADAM_STEP, label);
    c->p.adam_step = (pn_adam_params){1e-3f, 0.9f, 0.999f, 1e-8f, wd, step};
    pn_tensor t = pn_tensor_vec(n);
    case_in(c, 0, t, host_normal(n, 0.1f, 0.0f));
    case_out(c, 0, t, host_normal(n, 1.0f, 0.0f));
    case_out(c, 1, t, step == 1 ? host_new(n) : host_normal(n, 0.01f, 0.0f));
    case_out(c, 2, t, step == 1 ? host_new(n) : host_uniform(n, 0.0f, 1e-3f));
    if (nonfinite) host_inject_nonfinite(c->in[0].data, n, 1);
}

static void add_adam_cases(void) {
    const int64_t sizes[] = {1, 1000, 4097};
    for (int i = 0; i < 3; i++) {
        add_adam_case(sizes[i], 0.0f, 1, 0);
        add_adam_case(sizes[i], 0.0f, 7, 0);
        add_adam_case(sizes[i], 1e-2f, 1, 0);
        add_adam_case(sizes[i], 5e-6f, 1000, 0);
    }
    add_adam_case(101, 1e-2f, 3, 1);
    for (int i = 0; i < N_FLAT_SHAPES; i++) {
        int64_t n = flat_shapes[i][0] * flat_shapes[i][1] * flat_shapes[i][2] * flat_shapes[i][3];
        add_adam_case(n, 1e-4f, 3, 0);
        add_adam_case(n, 0.0f, 3, 0);
    }
}

/* ---------------- the SE / scSE / AlbuNet ops: sigmoid backward, global pooling, gates, bilinear x2, ceil pool ---- */

/* Batch 1 and > 1, 1 and many channels, channel counts that are and are not multiples of 8 and 16 (the cpu
 * backend's channel blocks), odd spatial sizes, single pixels. */
static const int64_t
    gate_shapes[][4] =
        {
            {1, 1, 1, 1},  {2, 3, 7, 9},    {1, 8, 9, 7},   {1, 16, 13, 11}, {2, 17, 5, 6},
            {3, 24, 3, 5}, {2, 32, 4, 4},   {2, 48, 1, 1},  {1, 64, 17, 15}, {2, 5, 7, 9},
            {1, 1, 3, 3},  {2, 16, 64, 64}, {2, 256, 8, 8}, /* the last: an SE shape, with every gate op */
};
/* SE-shaped: many channels on few pixels (se_resnext50's gates at small inputs), 1x1 gate tensors. */
static const int64_t se_shapes[][4] = {{1, 512, 4, 4}, {2, 1024, 2, 2}, {1, 2048, 1, 1}, {2, 2048, 3, 3}};
#define N_GATE_SHAPES (int)(sizeof gate_shapes / sizeof gate_shapes[0])
#define N_SE_SHAPES (int)(sizeof se_shapes / sizeof se_shapes[0])

static pn_tensor shape4(const int64_t s[4]) { return pn_tensor_nchw(s[0], s[1], s[2], s[3]); }

static void add_sigmoid_bwd_case(pn_tensor t, int inplace, int nonfinite) {
    char label[160], s[64];
    int64_t n = pn_tensor_numel(&t);
    pn_shape_str(&t, s, sizeof s);
    snprintf(label, sizeof label, "sigmoid_bwd %s%s%s", s, inplace ? " in-place dx==dy" : "",
             nonfinite ? " NaN/Inf" : "");
    op_case *c = case_add(PN_OP_SIGMOID_BWD, label);
    case_in(c, 0, t, host_normal(n, 1.0f, 0.0f));
    case_in(c, 1, t, host_uniform(n, 0.0f, 1.0f)); /* y: a sigmoid output */
    c->in[1].data[n - 1] = 1.0f;                   /* saturated */
    c->in[1].data[n / 2] = 0.0f;
    case_out(c, 0, t, NULL);
    if (inplace) c->out[0].alias = 0;
    if (nonfinite) {
        host_inject_nonfinite(c->in[0].data, n, 1);
        c->in[1].data[n / 5] = NAN;
    }
}

static void add_global_avg_pool_case(const int64_t sh[4], int nonfinite) {
    char label[160], s[64];
    pn_tensor x = shape4(sh), y = pn_tensor_nchw(sh[0], sh[1], 1, 1);
    int64_t nx = pn_tensor_numel(&x), ny = pn_tensor_numel(&y);
    const char *extra = nonfinite ? " NaN/Inf" : "";
    pn_shape_str(&x, s, sizeof s);
    snprintf(label, sizeof label, "global_avg_pool_fwd %s%s", s, extra);
    op_case *c = case_add(PN_OP_GLOBAL_AVG_POOL_FWD, label);
    case_in(c, 0, x, host_normal(nx, 1.0f, 0.5f)); /* an offset mean */
    case_out(c, 0, y, NULL);
    if (nonfinite) host_inject_nonfinite(c->in[0].data, nx, 1);
    snprintf(label, sizeof label, "global_avg_pool_bwd %s%s", s, extra);
    c = case_add(PN_OP_GLOBAL_AVG_POOL_BWD, label);
    case_in(c, 0, y, host_normal(ny, 1.0f, 0.0f));
    case_out(c, 0, x, NULL);
    if (nonfinite) host_inject_nonfinite(c->in[0].data, ny, ny >= 4);
}

/* CHANNEL_MUL (y = x * s, s per channel) or PIXEL_MUL (s per pixel), plain and in place, and the op's
 * BWD_SCALE. The factors are sigmoid outputs, as in the gates. */
static void add_gate_mul_case(pn_op op, const int64_t sh[4], int nonfinite) {
    int per_pixel = op == PN_OP_PIXEL_MUL;
    pn_op bwd = per_pixel ? PN_OP_PIXEL_MUL_BWD_SCALE : PN_OP_CHANNEL_MUL_BWD_SCALE;
    pn_tensor x = shape4(sh),
              sd = per_pixel ? pn_tensor_nchw(sh[0], 1, sh[2], sh[3]) : pn_tensor_nchw(sh[0], sh[1], 1, 1);
    int64_t nx = pn_tensor_numel(&x), ns = pn_tensor_numel(&sd);
    char label[160], s[64];
    const char *extra = nonfinite ? " NaN/Inf" : "";
    pn_shape_str(&x, s, sizeof s);
    for (int inplace = 0; inplace < 2; inplace++) {
        snprintf(label, sizeof label, "%s %s%s%s", pn_op_name(op), s, inplace ? " in-place y==x" : "", extra);
        op_case *c = case_add(op, label);
        case_in(c, 0, x, host_normal(nx, 1.0f, 0.0f));
        case_in(c, 1, sd, host_uniform(ns, 0.0f, 1.0f));
        case_out(c, 0, x, NULL);
        if (inplace) c->out[0].alias = 0;
        if (nonfinite) {
            host_inject_nonfinite(c->in[0].data, nx, 1);
            c->in[1].data[ns - 1] = NAN;
            if (ns >= 3) c->in[1].data[ns / 2] = INFINITY;
        }
    }
    snprintf(label, sizeof label, "%s %s%s", pn_op_name(bwd), s, extra);
    op_case *c = case_add(bwd, label);
    case_in(c, 0, x, host_normal(nx, 1.0f, 0.0f));
    case_in(c, 1, x, host_normal(nx, 1.0f, 0.3f));
    case_out(c, 0, sd, NULL);
    if (nonfinite) host_inject_nonfinite(c->in[0].data, nx, 1);
}

static void add_bilinear_case(const int64_t sh[4], int nonfinite) {
    char label[160], s[64];
    pn_tensor small = shape4(sh), big = pn_tensor_nchw(sh[0], sh[1], 2 * sh[2], 2 * sh[3]);
    int64_t ns = pn_tensor_numel(&small), nb = pn_tensor_numel(&big);
    const char *extra = nonfinite ? " NaN/Inf" : "";
    pn_shape_str(&small, s, sizeof s);
    snprintf(label, sizeof label, "bilinear2x_fwd %s%s", s, extra);
    op_case *c = case_add(PN_OP_BILINEAR2X_FWD, label);
    case_in(c, 0, small, host_normal(ns, 1.0f, 0.0f));
    case_out(c, 0, big, NULL);
    if (nonfinite) host_inject_nonfinite(c->in[0].data, ns, 1);
    snprintf(label, sizeof label, "bilinear2x_bwd %s%s", s, extra);
    c = case_add(PN_OP_BILINEAR2X_BWD, label);
    case_in(c, 0, big, host_normal(nb, 1.0f, 0.0f));
    case_out(c, 0, small, NULL);
    if (nonfinite) host_inject_nonfinite(c->in[0].data, nb, 1);
}

typedef struct ceil_pool_cfg {
    int64_t n, c, h, w;
    int kernel, stride, pad, ceil_mode, ties;
} ceil_pool_cfg;

static const ceil_pool_cfg ceil_pool_cfgs[] = {
    {1, 64, 112, 112, 3, 2, 0, 1, 0}, /* SENet's stem pool at 224 (112 -> 56) */
    {1, 1, 7, 7, 3, 2, 0, 1, 0},      /* ceil changes nothing (3) */
    {2, 16, 8, 8, 3, 2, 0, 1, 1},     /* a partial last window (4, floor 3), ties */
    {1, 3, 9, 9, 3, 2, 0, 1, 0},      /* exact fit (4) */
    {2, 17, 8, 6, 3, 2, 1, 1, 0},     /* padded, 5 x 4 */
    {1, 2, 5, 5, 2, 2, 1, 1, 0},      /* the window starting past the input is dropped (3) */
    {1, 4, 2, 2, 3, 2, 0, 1, 0},      /* input smaller than the window (1) */
    {2, 8, 7, 9, 2, 2, 0, 1, 0},      /* 2/2/0 ceil on odd sizes (4 x 5) */
    {2, 64, 16, 16, 2, 2, 0, 0, 0},   /* AlbuNet's pool after the stem: 2/2/0, floor */
    {1, 32, 9, 7, 2, 2, 0, 0, 1},     /* the same on odd sizes, ties */
    {2, 5, 7, 9, 3, 2, 0, 1, 0},      /* SENet's stem pool on odd sizes (3 x 4) */
    {1, 1, 3, 3, 3, 2, 0, 1, 0},      /* one window (1) */
    {2, 16, 64, 64, 3, 2, 0, 1, 0},   /* a partial last window (32, floor 31), one channel block */
    {2, 256, 8, 8, 3, 2, 0, 1, 0},    /* many channels (4) */
};
#define N_CEIL_POOL_CFGS (int)(sizeof ceil_pool_cfgs / sizeof ceil_pool_cfgs[0])

static void add_pool_ceil_case(const ceil_pool_cfg *g, int nonfinite) {
    pn_pool_params p = {g->kernel, g->stride, g->pad, g->ceil_mode};
    pn_tensor x = pn_tensor_nchw(g->n, g->c, g->h, g->w);
    pn_tensor y = pn_tensor_nchw(g->n, g->c, pn_pool_out_size(g->h, &p), pn_pool_out_size(g->w, &p));
    int64_t nx = pn_tensor_numel(&x), ny = pn_tensor_numel(&y);
    char label[160];
    for (int bwd = 0; bwd < 2; bwd++) {
        snprintf(label, sizeof label, "maxpool_%s x=%lldx%lldx%lldx%lld k=%d s=%d p=%d %s%s%s", bwd ? "bwd" : "fwd",
                 (long long)g->n, (long long)g->c, (long long)g->h, (long long)g->w, g->kernel, g->stride, g->pad,
                 g->ceil_mode ? "ceil" : "floor", g->ties ? " ties" : "", nonfinite ? " NaN/Inf" : "");
        op_case *c = case_add(bwd ? PN_OP_MAXPOOL_BWD : PN_OP_MAXPOOL_FWD, label);
        c->p.maxpool_fwd = p;
        float *xv = host_normal(nx, 1.0f, 0.0f);
        if (g->ties)
            for (int64_t j = 0; j < nx; j++) xv[j] = roundf(xv[j] * 1.5f) / 1.5f;
        if (nonfinite) host_inject_nonfinite(xv, nx, 1);
        if (bwd) case_in(c, 0, y, host_normal(ny, 1.0f, 0.0f));
        case_in(c, bwd, x, xv);
        case_out(c, 0, bwd ? x : y, NULL);
    }
}

static void add_se_albunet_cases(void) {
    for (int i = 0; i < N_GATE_SHAPES; i++) {
        pn_tensor t = shape4(gate_shapes[i]);
        add_sigmoid_bwd_case(t, 0, 0);
        add_sigmoid_bwd_case(t, 1, 0);
        add_global_avg_pool_case(gate_shapes[i], 0);
        add_gate_mul_case(PN_OP_CHANNEL_MUL, gate_shapes[i], 0);
        add_gate_mul_case(PN_OP_PIXEL_MUL, gate_shapes[i], 0);
        add_bilinear_case(gate_shapes[i], 0);
    }
    for (int i = 0; i < N_SE_SHAPES; i++) {
        add_global_avg_pool_case(se_shapes[i], 0);
        add_gate_mul_case(PN_OP_CHANNEL_MUL, se_shapes[i], 0);
    }
    const int64_t large[4] = {1, 16, 64, 64}, blocked_odd[4] = {1, 16, 5, 7}, plain_odd[4] = {2, 3, 7, 9};
    add_global_avg_pool_case(large, 0); /* 4096 values per mean */
    add_gate_mul_case(PN_OP_CHANNEL_MUL, large, 0);
    add_gate_mul_case(PN_OP_PIXEL_MUL, large, 0);
    add_bilinear_case(large, 0);
    for (int k = 0; k < 2; k++) { /* NaN/Inf parity on the plain and the blocked layout */
        const int64_t *sh = k ? blocked_odd : plain_odd;
        add_sigmoid_bwd_case(shape4(sh), k, 1);
        add_global_avg_pool_case(sh, 1);
        add_gate_mul_case(PN_OP_CHANNEL_MUL, sh, 1);
        add_gate_mul_case(PN_OP_PIXEL_MUL, sh, 1);
        add_bilinear_case(sh, 1);
    }
    for (int i = 0; i < N_CEIL_POOL_CFGS; i++) add_pool_ceil_case(&ceil_pool_cfgs[i], 0);
    add_pool_ceil_case(&ceil_pool_cfgs[2], 1);
}

/* ---------------- sanity properties (any backend; exact on ref) ---------------- */

/* Runs c on be, aliases honoured; 1 with res filled, else 0 (SKIP printed, or a failure counted). */
static int prop_run(pn_backend *be, const op_case *c, float *res[PN_OP_MAX_IO]) {
    char why[512];
    run_rc rc = case_run(be, c, 1, PREFILL_TEST, res, why, sizeof why);
    if (rc == RUN_SKIP) SKIP("%s %s: %s [%s]", pn_op_name(c->op), be->name, why, c->label);
    if (rc == RUN_FAIL) CHECK_MSG(0, "%s on %s: %s", c->label, be->name, why);
    return rc == RUN_OK;
}

/* got ~ want: exactly on ref (when exact_on_ref), else NMSE <= NMSE_TOL. */
static void prop_expect(pn_backend *be, const char *what, const float *got, const float *want, int64_t n,
                        int exact_on_ref) {
    char msg[256];
    int exact = exact_on_ref && strcmp(be->name, "ref") == 0;
    int ok = compare(got, want, n, NMSE_TOL, exact, msg, sizeof msg);
    CHECK_MSG(ok, "%s on %s: %s", what, be->name, msg);
}

static double dot(const float *a, const float *b, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* A one-hot kernel moves pixels: with the single 1 at tap (ky, kx) of w[co][src(co)],
 * y[n, co, oy, ox] = x[n, src(co), oy*s - p + ky, ox*s - p + kx] (0 outside), PyTorch's cross-correlation.
 * The centre tap copies (stride 1) or subsamples (stride 2); the off-centre tap (0, 2) pins the kernel's
 * orientation; src(co) = co + 1 mod C (groups 1) pins the weight layout (cout, cin/groups, k, k). */
static void prop_conv_delta(pn_backend *be) {
    if (!op_selected(PN_OP_CONV2D_FWD)) return;
    const int64_t n = 2, ch = 4, h = 7, w = 9;
    for (int variant = 0; variant < 6; variant++) {
        int depthwise = variant % 2, stride = 1 + (variant / 2) % 2, off_centre = variant >= 4;
        int64_t ky = off_centre ? 0 : 1, kx = off_centre ? 2 : 1;
        int64_t oh = conv_out_size(h, 3, stride, 1), ow = conv_out_size(w, 3, stride, 1);
        op_case c;
        memset(&c, 0, sizeof c);
        snprintf(c.label, sizeof c.label, "conv2d_fwd one-hot kernel tap (%lld,%lld) stride %d%s", (long long)ky,
                 (long long)kx, stride, depthwise ? " depthwise" : " channel shift");
        c.op = PN_OP_CONV2D_FWD;
        c.p.conv2d_fwd = (pn_conv2d_params){stride, 1, depthwise ? (int)ch : 1};
        pn_tensor x = pn_tensor_nchw(n, ch, h, w), wt = pn_tensor_nchw(ch, depthwise ? 1 : ch, 3, 3);
        case_in(&c, 0, x, host_normal(n * ch * h * w, 1.0f, 0.0f));
        case_in(&c, 1, wt, host_new(pn_tensor_numel(&wt)));
        for (int64_t co = 0; co < ch; co++) {
            int64_t ci = depthwise ? 0 : (co + 1) % ch;
            c.in[1].data[((co * wt.shape[1] + ci) * 3 + ky) * 3 + kx] = 1.0f;
        }
        case_out(&c, 0, pn_tensor_nchw(n, ch, oh, ow), NULL);
        float *res[PN_OP_MAX_IO];
        if (prop_run(be, &c, res)) {
            float *want = host_new(n * ch * oh * ow);
            for (int64_t b = 0; b < n; b++)
                for (int64_t co = 0; co < ch; co++) {
                    int64_t src = depthwise ? co : (co + 1) % ch;
                    for (int64_t oy = 0; oy < oh; oy++)
                        for (int64_t ox = 0; ox < ow; ox++) {
                            int64_t iy = oy * stride - 1 + ky, ix = ox * stride - 1 + kx;
                            int inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                            want[((b * ch + co) * oh + oy) * ow + ox] =
                                inside ? c.in[0].data[((b * ch + src) * h + iy) * w + ix] : 0.0f;
                        }
                }
            prop_expect(be, c.label, res[0], want, n * ch * oh * ow, 1);
            free(want);
            results_free(res);
        }
        case_free(&c);
    }
}

/* The three conv ops are adjoint: <conv(x,w)+b, r> = <x, bwd_data(r,w)> + sum b*db = <w, dw(r,x)> + ... */
static void prop_conv_adjoint(pn_backend *be) {
    if (!op_selected(PN_OP_CONV2D_FWD) && !op_selected(PN_OP_CONV2D_BWD_DATA) && !op_selected(PN_OP_CONV2D_BWD_WEIGHTS))
        return;
    const conv_cfg g = {2, 6, 4, 9, 7, 3, 2, 1, 2, 1};
    pn_tensor x = pn_tensor_nchw(g.n, g.cin, g.h, g.w), w = pn_tensor_nchw(g.cout, g.cin / g.groups, g.k, g.k);
    pn_tensor y =
        pn_tensor_nchw(g.n, g.cout, conv_out_size(g.h, g.k, g.stride, g.pad), conv_out_size(g.w, g.k, g.stride, g.pad));
    pn_tensor b = pn_tensor_vec(g.cout);
    pn_conv2d_params p = {g.stride, g.pad, g.groups};
    int64_t nx = pn_tensor_numel(&x), nw = pn_tensor_numel(&w), ny = pn_tensor_numel(&y);
    float *xv = host_normal(nx, 1.0f, 0.0f), *wv = host_normal(nw, 1.0f, 0.0f), *r = host_normal(ny, 1.0f, 0.0f);
    op_case fwd, bd, bw;
    memset(&fwd, 0, sizeof fwd);
    memset(&bd, 0, sizeof bd);
    memset(&bw, 0, sizeof bw);
    snprintf(fwd.label, sizeof fwd.label, "conv2d adjoint: fwd");
    snprintf(bd.label, sizeof bd.label, "conv2d adjoint: bwd_data");
    snprintf(bw.label, sizeof bw.label, "conv2d adjoint: bwd_weights");
    fwd.op = PN_OP_CONV2D_FWD, bd.op = PN_OP_CONV2D_BWD_DATA, bw.op = PN_OP_CONV2D_BWD_WEIGHTS;
    fwd.p.conv2d_fwd = bd.p.conv2d_bwd_data = bw.p.conv2d_bwd_weights = p;
    case_in(&fwd, 0, x, host_copy(xv, nx));
    case_in(&fwd, 1, w, host_copy(wv, nw));
    case_out(&fwd, 0, y, NULL);
    case_in(&bd, 0, y, host_copy(r, ny));
    case_in(&bd, 1, w, host_copy(wv, nw));
    case_out(&bd, 0, x, NULL);
    case_in(&bw, 0, y, host_copy(r, ny));
    case_in(&bw, 1, x, host_copy(xv, nx));
    case_out(&bw, 0, w, host_new(nw));
    case_out(&bw, 1, b, host_new(g.cout));
    float *ry[PN_OP_MAX_IO], *rd[PN_OP_MAX_IO], *rw[PN_OP_MAX_IO];
    if (prop_run(be, &fwd, ry) && prop_run(be, &bd, rd) && prop_run(be, &bw, rw)) {
        double lhs = dot(ry[0], r, ny), via_dx = dot(xv, rd[0], nx), via_dw = dot(wv, rw[0], nw);
        double sum_r = 0.0, sum_db = 0.0;
        for (int64_t i = 0; i < ny; i++) sum_r += r[i];
        for (int64_t i = 0; i < g.cout; i++) sum_db += rw[1][i];
        double scale = sqrt(dot(ry[0], ry[0], ny) * dot(r, r, ny)); /* Cauchy-Schwarz bound of the sums */
        CHECK_MSG(fabs(lhs - via_dx) <= 1e-5 * scale, "conv adjoint on %s: <y,r>=%.9g, <x,dx>=%.9g", be->name, lhs,
                  via_dx);
        CHECK_MSG(fabs(lhs - via_dw) <= 1e-5 * scale, "conv adjoint on %s: <y,r>=%.9g, <w,dw>=%.9g", be->name, lhs,
                  via_dw);
        CHECK_MSG(fabs(sum_r - sum_db) <= 1e-5 * (1.0 + fabs(sum_r)), "conv db on %s: sum(db)=%.9g, sum(dy)=%.9g",
                  be->name, sum_db, sum_r);
        results_free(ry);
        results_free(rd);
        results_free(rw);
    }
    free(xv), free(wv), free(r);
    case_free(&fwd), case_free(&bd), case_free(&bw);
}

/* upsample2x_bwd(upsample2x_fwd(x)) == 4x. */
static void prop_upsample(pn_backend *be) {
    if (!op_selected(PN_OP_UPSAMPLE2X_FWD) && !op_selected(PN_OP_UPSAMPLE2X_BWD)) return;
    pn_tensor s = pn_tensor_nchw(2, 3, 7, 9), b = pn_tensor_nchw(2, 3, 14, 18);
    int64_t n = pn_tensor_numel(&s);
    op_case up, down;
    memset(&up, 0, sizeof up);
    memset(&down, 0, sizeof down);
    snprintf(up.label, sizeof up.label, "upsample2x_fwd then bwd");
    snprintf(down.label, sizeof down.label, "upsample2x_bwd of upsample2x_fwd");
    up.op = PN_OP_UPSAMPLE2X_FWD, down.op = PN_OP_UPSAMPLE2X_BWD;
    case_in(&up, 0, s, host_normal(n, 1.0f, 0.0f));
    case_out(&up, 0, b, NULL);
    float *ru[PN_OP_MAX_IO], *rd[PN_OP_MAX_IO];
    if (prop_run(be, &up, ru)) {
        case_in(&down, 0, b, ru[0]);
        ru[0] = NULL;
        case_out(&down, 0, s, NULL);
        if (prop_run(be, &down, rd)) {
            float *want = host_new(n);
            for (int64_t i = 0; i < n; i++) want[i] = 4.0f * up.in[0].data[i];
            prop_expect(be, down.label, rd[0], want, n, 1);
            free(want);
            results_free(rd);
        }
        results_free(ru);
    }
    case_free(&up), case_free(&down);
}

/* split(concat(a, b)) == (a, b), exactly on every backend (these ops only copy). */
static void prop_concat_split(pn_backend *be) {
    if (!op_selected(PN_OP_CONCAT) && !op_selected(PN_OP_SPLIT)) return;
    pn_tensor a = pn_tensor_nchw(2, 3, 5, 7), b = pn_tensor_nchw(2, 5, 5, 7), y = pn_tensor_nchw(2, 8, 5, 7);
    op_case cat, split;
    memset(&cat, 0, sizeof cat);
    memset(&split, 0, sizeof split);
    snprintf(cat.label, sizeof cat.label, "concat then split");
    snprintf(split.label, sizeof split.label, "split of concat");
    cat.op = PN_OP_CONCAT, split.op = PN_OP_SPLIT;
    case_in(&cat, 0, a, host_normal(pn_tensor_numel(&a), 1.0f, 0.0f));
    case_in(&cat, 1, b, host_normal(pn_tensor_numel(&b), 1.0f, 0.0f));
    case_out(&cat, 0, y, NULL);
    float *rc[PN_OP_MAX_IO], *rs[PN_OP_MAX_IO];
    char msg[256];
    if (prop_run(be, &cat, rc)) {
        case_in(&split, 0, y, rc[0]);
        rc[0] = NULL;
        case_out(&split, 0, a, NULL);
        case_out(&split, 1, b, NULL);
        if (prop_run(be, &split, rs)) {
            CHECK_MSG(compare(rs[0], cat.in[0].data, pn_tensor_numel(&a), 0.0, 1, msg, sizeof msg),
                      "split(concat) a on %s: %s", be->name, msg);
            CHECK_MSG(compare(rs[1], cat.in[1].data, pn_tensor_numel(&b), 0.0, 1, msg, sizeof msg),
                      "split(concat) b on %s: %s", be->name, msg);
            results_free(rs);
        }
        results_free(rc);
    }
    case_free(&cat), case_free(&split);
}

/* Adam's first step moves each parameter by about lr * sign(g + wd * p) (m_hat = g, v_hat = g^2). */
static void prop_adam_first_step(pn_backend *be) {
    if (!op_selected(PN_OP_ADAM_STEP)) return;
    const int64_t n = 500;
    for (int with_wd = 0; with_wd < 2; with_wd++) {
        op_case c;
        memset(&c, 0, sizeof c);
        snprintf(c.label, sizeof c.label, "adam_step first step%s", with_wd ? " with weight decay" : "");
        c.op = PN_OP_ADAM_STEP;
        const float lr = 1e-2f, wd = with_wd ? 0.5f : 0.0f;
        c.p.adam_step = (pn_adam_params){lr, 0.9f, 0.999f, 1e-8f, wd, 1};
        pn_tensor t = pn_tensor_vec(n);
        float *g = host_normal(n, 1.0f, 0.0f), *p0 = host_normal(n, 1.0f, 0.0f);
        for (int64_t i = 0; i < n; i++) /* keep |g + wd p| >= 1e-2 >> eps */
            if (fabsf(g[i] + wd * p0[i]) < 1e-2f) g[i] += 0.1f;
        case_in(&c, 0, t, g);
        case_out(&c, 0, t, p0);
        case_out(&c, 1, t, host_new(n));
        case_out(&c, 2, t, host_new(n));
        float *res[PN_OP_MAX_IO];
        if (prop_run(be, &c, res)) {
            int bad = 0;
            for (int64_t i = 0; i < n; i++) {
                double ge = (double)g[i] + (double)wd * p0[i];
                double moved = (double)p0[i] - res[0][i], want = ge > 0 ? lr : -lr;
                /* 1e-3 relative: eps/|g| <= 1e-6, and rounding p - step costs <= ulp(|p| <= 5) ~ 5e-7 = 5e-5 lr */
                if (fabs(moved - want) > 1e-3 * lr) bad++;
                if (fabs(res[1][i] - 0.1 * ge) > 1e-6 * fabs(ge) + 1e-12) bad++;
                if (fabs(res[2][i] - 0.001 * ge * ge) > 1e-5 * ge * ge + 1e-15) bad++;
            }
            CHECK_MSG(bad == 0, "%s on %s: %d elements off", c.label, be->name, bad);
            results_free(res);
        }
        case_free(&c);
    }
}

/* Parameter-gradient outputs ACCUMULATE: starting from K gives (result from 0) + K. */
static void prop_accumulate(pn_backend *be, pn_op op) {
    if (!op_selected(op)) return;
    op_case c;
    memset(&c, 0, sizeof c);
    c.op = op;
    int first_acc;
    if (op == PN_OP_CONV2D_BWD_WEIGHTS) {
        const conv_cfg g = {2, 4, 6, 7, 9, 3, 1, 1, 2, 1};
        pn_tensor x = pn_tensor_nchw(g.n, g.cin, g.h, g.w), w = pn_tensor_nchw(g.cout, g.cin / g.groups, g.k, g.k);
        pn_tensor y = pn_tensor_nchw(g.n, g.cout, g.h, g.w);
        c.p.conv2d_bwd_weights = (pn_conv2d_params){g.stride, g.pad, g.groups};
        case_in(&c, 0, y, host_normal(pn_tensor_numel(&y), 1.0f, 0.0f));
        case_in(&c, 1, x, host_normal(pn_tensor_numel(&x), 1.0f, 0.0f));
        case_out(&c, 0, w, NULL);
        case_out(&c, 1, pn_tensor_vec(g.cout), NULL);
        first_acc = 0;
    } else {
        pn_tensor x = pn_tensor_nchw(2, 3, 5, 7), v = pn_tensor_vec(3);
        c.p.batchnorm_bwd = (pn_batchnorm_params){1e-5f, 0.1f};
        case_in(&c, 0, x, host_normal(pn_tensor_numel(&x), 1.0f, 0.0f));
        case_in(&c, 1, x, host_normal(pn_tensor_numel(&x), 1.0f, 0.5f));
        case_in(&c, 2, v, host_normal(3, 0.5f, 1.0f));
        case_in(&c, 3, v, host_new(3));
        case_in(&c, 4, v, host_new(3));
        bn_stats(c.in[1].data, &x, 1e-5f, c.in[3].data, c.in[4].data);
        case_out(&c, 0, x, NULL);
        case_out(&c, 1, v, NULL);
        case_out(&c, 2, v, NULL);
        first_acc = 1;
    }
    snprintf(c.label, sizeof c.label, "%s accumulates into its parameter gradients", pn_op_name(op));
    float *r0[PN_OP_MAX_IO], *rk[PN_OP_MAX_IO];
    for (int o = first_acc; o < PN_OP_MAX_IO; o++)
        if (c.out[o].present) c.out[o].data = host_new(pn_tensor_numel(&c.out[o].desc));
    int ok0 = prop_run(be, &c, r0);
    for (int o = first_acc; o < PN_OP_MAX_IO; o++) {
        if (!c.out[o].present) continue;
        free(c.out[o].data);
        c.out[o].data = host_normal(pn_tensor_numel(&c.out[o].desc), 2.0f, 1.0f); /* the known prefill K */
    }
    if (ok0 && prop_run(be, &c, rk)) {
        for (int o = first_acc; o < PN_OP_MAX_IO; o++) {
            if (!c.out[o].present) continue;
            int64_t n = pn_tensor_numel(&c.out[o].desc);
            float *want = host_new(n);
            for (int64_t i = 0; i < n; i++) want[i] = r0[o][i] + c.out[o].data[i];
            prop_expect(be, c.label, rk[o], want, n, 1);
            free(want);
        }
        results_free(rk);
    }
    if (ok0) results_free(r0);
    case_free(&c);
}

/* relu_fwd = max(x, 0); relu_bwd(dy, relu(x)) = dy * (x > 0). */
static void prop_relu(pn_backend *be) {
    if (!op_selected(PN_OP_RELU_FWD) && !op_selected(PN_OP_RELU_BWD)) return;
    pn_tensor t = pn_tensor_nchw(2, 3, 7, 9);
    int64_t n = pn_tensor_numel(&t);
    op_case f, b;
    memset(&f, 0, sizeof f);
    memset(&b, 0, sizeof b);
    snprintf(f.label, sizeof f.label, "relu_fwd = max(x, 0)");
    snprintf(b.label, sizeof b.label, "relu_bwd = dy * (x > 0)");
    f.op = PN_OP_RELU_FWD, b.op = PN_OP_RELU_BWD;
    case_in(&f, 0, t, host_normal(n, 1.0f, 0.0f));
    case_out(&f, 0, t, NULL);
    float *rf[PN_OP_MAX_IO], *rb[PN_OP_MAX_IO];
    if (prop_run(be, &f, rf)) {
        float *want = host_new(n);
        for (int64_t i = 0; i < n; i++) want[i] = f.in[0].data[i] > 0 ? f.in[0].data[i] : 0.0f;
        prop_expect(be, f.label, rf[0], want, n, 1);
        case_in(&b, 0, t, host_normal(n, 1.0f, 0.0f));
        case_in(&b, 1, t, rf[0]);
        rf[0] = NULL;
        case_out(&b, 0, t, NULL);
        if (prop_run(be, &b, rb)) {
            for (int64_t i = 0; i < n; i++) want[i] = f.in[0].data[i] > 0 ? b.in[0].data[i] : 0.0f;
            prop_expect(be, b.label, rb[0], want, n, 1);
            results_free(rb);
        }
        free(want);
        results_free(rf);
    }
    case_free(&f), case_free(&b);
}

/* maxpool_fwd equals a brute-force window maximum; maxpool_bwd routes each dy to the FIRST maximum of its window
 * (row-major, PyTorch's rule), checked on inputs with many ties; the gradient's sum is conserved. */
static void prop_maxpool(pn_backend *be) {
    if (!op_selected(PN_OP_MAXPOOL_FWD) && !op_selected(PN_OP_MAXPOOL_BWD)) return;
    const int64_t n = 2, ch = 3, h = 9, w = 7;
    const pn_pool_params p = {3, 2, 1, 0};
    int64_t oh = conv_out_size(h, 3, 2, 1), ow = conv_out_size(w, 3, 2, 1);
    pn_tensor x = pn_tensor_nchw(n, ch, h, w), y = pn_tensor_nchw(n, ch, oh, ow);
    int64_t nx = pn_tensor_numel(&x), ny = pn_tensor_numel(&y);
    op_case f, b;
    memset(&f, 0, sizeof f);
    memset(&b, 0, sizeof b);
    snprintf(f.label, sizeof f.label, "maxpool_fwd = window maximum (ties)");
    snprintf(b.label, sizeof b.label, "maxpool_bwd routes to the first maximum (ties)");
    f.op = PN_OP_MAXPOOL_FWD, b.op = PN_OP_MAXPOOL_BWD;
    f.p.maxpool_fwd = b.p.maxpool_bwd = p;
    float *xv = host_normal(nx, 1.0f, 0.0f);
    for (int64_t i = 0; i < nx; i++) xv[i] = roundf(xv[i]); /* values in {-3..3}: most windows hold ties */
    case_in(&f, 0, x, xv);
    case_out(&f, 0, y, NULL);
    case_in(&b, 0, y, host_normal(ny, 1.0f, 0.0f));
    case_in(&b, 1, x, host_copy(xv, nx));
    case_out(&b, 0, x, NULL);
    float *want_y = host_new(ny), *want_dx = host_new(nx);
    for (int64_t pl = 0; pl < n * ch; pl++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t best = -1;
                for (int64_t iy = oy * 2 - 1; iy <= oy * 2 + 1; iy++)
                    for (int64_t ix = ox * 2 - 1; ix <= ox * 2 + 1; ix++) {
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                        int64_t at = (pl * h + iy) * w + ix;
                        if (best < 0 || xv[at] > xv[best]) best = at;
                    }
                int64_t o = (pl * oh + oy) * ow + ox;
                want_y[o] = xv[best];
                want_dx[best] += b.in[0].data[o];
            }
    float *rf[PN_OP_MAX_IO], *rb[PN_OP_MAX_IO];
    if (op_selected(PN_OP_MAXPOOL_FWD) && prop_run(be, &f, rf)) {
        prop_expect(be, f.label, rf[0], want_y, ny, 1);
        results_free(rf);
    }
    if (op_selected(PN_OP_MAXPOOL_BWD) && prop_run(be, &b, rb)) {
        prop_expect(be, b.label, rb[0], want_dx, nx, 1);
        results_free(rb);
    }
    free(want_y), free(want_dx);
    case_free(&f), case_free(&b);
}

/* ref only: in a window holding several NaNs the gradient goes to the LAST NaN, as in PyTorch
 * (max_pool2d of [[NaN, 1], [NaN, 0.5]] gives NaN and routes dy to the second NaN). Other backends need only
 * match ref's NaN positions, which the NaN/Inf cases check. */
static void prop_maxpool_nan_ref(pn_backend *be) {
    if (strcmp(be->name, "ref") != 0 || !op_selected(PN_OP_MAXPOOL_BWD)) return;
    op_case c;
    memset(&c, 0, sizeof c);
    snprintf(c.label, sizeof c.label, "maxpool_bwd routes to the last NaN of a window (PyTorch)");
    c.op = PN_OP_MAXPOOL_BWD;
    c.p.maxpool_bwd = (pn_pool_params){2, 2, 0, 0};
    case_in(&c, 0, pn_tensor_nchw(1, 1, 1, 1), host_const(1, 3.0f));
    case_in(&c, 1, pn_tensor_nchw(1, 1, 2, 2), host_new(4));
    const float x[4] = {NAN, 1.0f, NAN, 0.5f};
    memcpy(c.in[1].data, x, sizeof x);
    case_out(&c, 0, pn_tensor_nchw(1, 1, 2, 2), NULL);
    float *res[PN_OP_MAX_IO];
    if (prop_run(be, &c, res)) {
        const float want[4] = {0.0f, 0.0f, 3.0f, 0.0f};
        prop_expect(be, c.label, res[0], want, 4, 1);
        results_free(res);
    }
    case_free(&c);
}

/* add = a + b, one float addition per element (exact on every backend, required exact on ref). */
static void prop_add(pn_backend *be) {
    if (!op_selected(PN_OP_ADD)) return;
    const int64_t n = 333;
    op_case c;
    memset(&c, 0, sizeof c);
    snprintf(c.label, sizeof c.label, "add = a + b");
    c.op = PN_OP_ADD;
    case_in(&c, 0, pn_tensor_vec(n), host_normal(n, 1.0f, 0.0f));
    case_in(&c, 1, pn_tensor_vec(n), host_normal(n, 3.0f, 0.0f));
    case_out(&c, 0, pn_tensor_vec(n), NULL);
    float *res[PN_OP_MAX_IO];
    if (prop_run(be, &c, res)) {
        float *want = host_new(n);
        for (int64_t i = 0; i < n; i++) want[i] = c.in[0].data[i] + c.in[1].data[i];
        prop_expect(be, c.label, res[0], want, n, 1);
        free(want);
        results_free(res);
    }
    case_free(&c);
}

/* BATCHNORM_APPLY with the statistics a train forward `t` saved (results rt) gives that forward's y up to the
 * rounding of the float statistics (NMSE 1e-10): the graph recomputes BN outputs in backward with it. */
static void prop_batchnorm_apply(pn_backend *be, const op_case *t, float *const *rt) {
    if (!op_selected(PN_OP_BATCHNORM_APPLY)) return;
    const pn_tensor x = t->in[0].desc, v = t->in[1].desc;
    int64_t nx = pn_tensor_numel(&x), ch = pn_tensor_numel(&v);
    op_case a;
    memset(&a, 0, sizeof a);
    snprintf(a.label, sizeof a.label, "batchnorm_apply with saved statistics = train output");
    a.op = PN_OP_BATCHNORM_APPLY;
    a.p.batchnorm_apply = t->p.batchnorm_train_fwd;
    case_in(&a, 0, x, host_copy(t->in[0].data, nx));
    case_in(&a, 1, v, host_copy(t->in[1].data, ch));
    case_in(&a, 2, v, host_copy(t->in[2].data, ch));
    case_in(&a, 3, v, host_copy(rt[1], ch));
    case_in(&a, 4, v, host_copy(rt[2], ch));
    case_out(&a, 0, x, NULL);
    float *ra[PN_OP_MAX_IO];
    if (prop_run(be, &a, ra)) {
        char msg[256];
        CHECK_MSG(compare(ra[0], rt[0], nx, 1e-10, 0, msg, sizeof msg), "%s on %s: %s", a.label, be->name, msg);
        results_free(ra);
    }
    case_free(&a);
}

/* Train forward: save_mean is the batch mean, each output channel has mean beta and variance
 * gamma^2 * var / (var + eps), the running statistics follow PyTorch's update, and the inference forward with
 * running statistics equal to the batch statistics (biased variance) reproduces the train output. */
static void prop_batchnorm(pn_backend *be) {
    if (!op_selected(PN_OP_BATCHNORM_TRAIN_FWD) && !op_selected(PN_OP_BATCHNORM_INFER_FWD) &&
        !op_selected(PN_OP_BATCHNORM_APPLY))
        return;
    const int64_t n = 2, ch = 3, h = 5, w = 7, hw = h * w, m = n * hw;
    const float eps = 1e-5f, mom = 0.1f;
    pn_tensor x = pn_tensor_nchw(n, ch, h, w), v = pn_tensor_vec(ch);
    op_case t, inf;
    memset(&t, 0, sizeof t);
    memset(&inf, 0, sizeof inf);
    snprintf(t.label, sizeof t.label, "batchnorm_train_fwd statistics");
    snprintf(inf.label, sizeof inf.label, "batchnorm_infer_fwd with batch statistics = train output");
    t.op = PN_OP_BATCHNORM_TRAIN_FWD, inf.op = PN_OP_BATCHNORM_INFER_FWD;
    t.p.batchnorm_train_fwd = inf.p.batchnorm_infer_fwd = (pn_batchnorm_params){eps, mom};
    case_in(&t, 0, x, host_normal(n * ch * hw, 3.0f, -2.0f));
    case_in(&t, 1, v, host_normal(ch, 0.5f, 1.0f));
    case_in(&t, 2, v, host_normal(ch, 0.5f, 0.0f));
    case_out(&t, 0, x, NULL);
    case_out(&t, 1, v, NULL);
    case_out(&t, 2, v, NULL);
    case_out(&t, 3, v, host_normal(ch, 0.2f, 0.0f));
    case_out(&t, 4, v, host_uniform(ch, 0.5f, 2.0f));
    float *rt[PN_OP_MAX_IO], *ri[PN_OP_MAX_IO];
    if (!prop_run(be, &t, rt)) {
        case_free(&t);
        return;
    }
    const float *xv = t.in[0].data, *gamma = t.in[1].data, *beta = t.in[2].data;
    float *var_b = host_new(ch);
    int bad = 0;
    for (int64_t c = 0; c < ch; c++) {
        double s = 0, s2 = 0, ys = 0, ys2 = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) s += xv[(i * ch + c) * hw + j];
        double mean = s / (double)m;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                double d = xv[(i * ch + c) * hw + j] - mean, yv = rt[0][(i * ch + c) * hw + j];
                s2 += d * d, ys += yv, ys2 += yv * yv;
            }
        double var = s2 / (double)m, ymean = ys / (double)m, yvar = ys2 / (double)m - ymean * ymean;
        var_b[c] = (float)var;
        double want_yvar = (double)gamma[c] * gamma[c] * var / (var + eps);
        if (fabs(ymean - beta[c]) > 1e-5 * (1 + fabs(beta[c]))) bad++;
        if (fabs(yvar - want_yvar) > 1e-4 * want_yvar) bad++;
        if (fabs(rt[1][c] - mean) > 1e-6 * (1 + fabs(mean))) bad++;
        if (fabs(rt[2][c] - 1.0 / sqrt(var + eps)) > 1e-6 / sqrt(var + eps)) bad++;
        double rm = (1 - mom) * t.out[3].data[c] + mom * mean;
        double rv = (1 - mom) * t.out[4].data[c] + mom * var * (double)m / (double)(m - 1);
        if (fabs(rt[3][c] - rm) > 1e-6 * (1 + fabs(rm))) bad++;
        if (fabs(rt[4][c] - rv) > 1e-6 * (1 + fabs(rv))) bad++;
    }
    CHECK_MSG(bad == 0, "%s on %s: %d statistics off", t.label, be->name, bad);
    case_in(&inf, 0, x, host_copy(xv, n * ch * hw));
    case_in(&inf, 1, v, host_copy(gamma, ch));
    case_in(&inf, 2, v, host_copy(beta, ch));
    case_in(&inf, 3, v, host_copy(rt[1], ch));
    case_in(&inf, 4, v, var_b);
    case_out(&inf, 0, x, NULL);
    if (prop_run(be, &inf, ri)) {
        char msg[256];
        /* save_mean is rounded to float: NMSE 1e-10 allows for it */
        CHECK_MSG(compare(ri[0], rt[0], n * ch * hw, 1e-10, 0, msg, sizeof msg), "%s on %s: %s", inf.label, be->name,
                  msg);
        results_free(ri);
    }
    prop_batchnorm_apply(be, &t, rt);
    results_free(rt);
    case_free(&t), case_free(&inf);
}

/* sigmoid(x) + sigmoid(-x) == 1 and sigmoid(0) == 0.5. */
static void prop_sigmoid(pn_backend *be) {
    if (!op_selected(PN_OP_SIGMOID)) return;
    const int64_t n = 200;
    op_case c;
    memset(&c, 0, sizeof c);
    snprintf(c.label, sizeof c.label, "sigmoid symmetry");
    c.op = PN_OP_SIGMOID;
    float *x = host_normal(n, 5.0f, 0.0f);
    for (int64_t i = 0; i < n / 2; i++) x[n / 2 + i] = -x[i];
    x[0] = x[n / 2] = 0.0f;
    case_in(&c, 0, pn_tensor_vec(n), x);
    case_out(&c, 0, pn_tensor_vec(n), NULL);
    float *res[PN_OP_MAX_IO];
    if (prop_run(be, &c, res)) {
        int bad = res[0][0] != 0.5f;
        for (int64_t i = 0; i < n / 2; i++) bad += fabs((double)res[0][i] + res[0][n / 2 + i] - 1.0) > 1.2e-7;
        CHECK_MSG(bad == 0, "%s on %s: %d values off", c.label, be->name, bad);
        results_free(res);
    }
    case_free(&c);
}

/* SPEC.md's ComboLoss written out independently, in double. */
static double combo_loss_spec(const float *x, const float *t, int64_t n, pn_combo_loss_params p) {
    double bce = 0, focal = 0, inter = 0, ss = 0, st = 0;
    for (int64_t i = 0; i < n; i++) {
        double s = 1.0 / (1.0 + exp(-(double)x[i]));
        bce += fmax(x[i], 0.0) - (double)x[i] * t[i] + log(1.0 + exp(-fabs((double)x[i])));
        double sc = fmin(fmax(s, 1e-8), 1 - 1e-8), tc = fmin(fmax(t[i], 1e-8), 1 - 1e-8);
        double pt = (1 - tc) * (1 - sc) + tc * sc;
        focal += -(1 - pt) * (1 - pt) * log(pt);
        inter += s * t[i], ss += s, st += t[i];
    }
    double dice = 1.0 - (2.0 * inter + 1e-6) / (ss + st + 1e-6);
    double loss = p.w_bce * bce / (double)n + p.w_dice * dice + p.w_focal * focal / (double)n;
    return loss < 1e-5 ? 1e-5 : loss;
}

/* combo_loss_fwd matches SPEC.md; combo_loss_bwd is linear in grad_scale; on the floor the gradient is 0. */
static void prop_combo(pn_backend *be) {
    if (!op_selected(PN_OP_COMBO_LOSS_FWD) && !op_selected(PN_OP_COMBO_LOSS_BWD)) return;
    pn_tensor t = pn_tensor_nchw(2, 1, 8, 8);
    const int64_t n = 128;
    for (int tk = 0; tk < 4; tk++) {
        pn_combo_loss_params p = {3, 1, 4, 1};
        op_case c;
        memset(&c, 0, sizeof c);
        snprintf(c.label, sizeof c.label, "combo_loss_fwd = SPEC.md formula, targets %s", target_names[tk]);
        c.op = PN_OP_COMBO_LOSS_FWD;
        c.p.combo_loss_fwd = p;
        case_in(&c, 0, t, host_normal(n, 2.0f, 0.0f));
        case_in(&c, 1, t, combo_target(n, (target_kind)tk));
        case_out(&c, 0, pn_tensor_vec(1), NULL);
        float *res[PN_OP_MAX_IO];
        if (op_selected(PN_OP_COMBO_LOSS_FWD) && prop_run(be, &c, res)) {
            double want = combo_loss_spec(c.in[0].data, c.in[1].data, n, p);
            /* focal clamps at 1 - 1e-8, which is 1 in float32 but not in double: a relative 1e-5 absorbs it */
            CHECK_MSG(fabs(res[0][0] - want) <= 1e-5 * want, "%s on %s: %.9g vs %.9g", c.label, be->name,
                      (double)res[0][0], want);
            results_free(res);
        }
        if (op_selected(PN_OP_COMBO_LOSS_BWD)) {
            float *r1[PN_OP_MAX_IO], *r2[PN_OP_MAX_IO];
            c.op = PN_OP_COMBO_LOSS_BWD;
            c.out[0].desc = t;
            snprintf(c.label, sizeof c.label, "combo_loss_bwd linear in grad_scale, targets %s", target_names[tk]);
            if (prop_run(be, &c, r1)) {
                c.p.combo_loss_bwd.grad_scale = -2.0f; /* a power of two: exact on ref */
                if (prop_run(be, &c, r2)) {
                    float *want = host_new(n);
                    for (int64_t i = 0; i < n; i++) want[i] = -2.0f * r1[0][i];
                    prop_expect(be, c.label, r2[0], want, n, 1);
                    free(want);
                    results_free(r2);
                }
                results_free(r1);
            }
        }
        case_free(&c);
    }
    /* On the 1e-5 floor: loss == 1e-5 and a zero gradient. */
    op_case c;
    memset(&c, 0, sizeof c);
    snprintf(c.label, sizeof c.label, "combo_loss on its floor");
    c.p.combo_loss_fwd = (pn_combo_loss_params){3, 0, 4, 1};
    case_in(&c, 0, t, host_const(n, -30.0f));
    case_in(&c, 1, t, host_const(n, 0.0f));
    float *res[PN_OP_MAX_IO];
    if (op_selected(PN_OP_COMBO_LOSS_FWD)) {
        c.op = PN_OP_COMBO_LOSS_FWD;
        case_out(&c, 0, pn_tensor_vec(1), NULL);
        if (prop_run(be, &c, res)) {
            CHECK_MSG(res[0][0] == 1e-5f, "%s on %s: loss %.9g", c.label, be->name, (double)res[0][0]);
            results_free(res);
        }
    }
    if (op_selected(PN_OP_COMBO_LOSS_BWD)) {
        c.op = PN_OP_COMBO_LOSS_BWD;
        case_out(&c, 0, t, NULL);
        if (prop_run(be, &c, res)) {
            int nonzero = 0;
            for (int64_t i = 0; i < n; i++) nonzero += res[0][i] != 0.0f;
            CHECK_MSG(nonzero == 0, "%s on %s: %d nonzero gradients", c.label, be->name, nonzero);
            results_free(res);
        }
    }
    case_free(&c);
}

/* fill, scale, axpy and sum_squares against their one-line definitions. */
static void prop_blas1(pn_backend *be) {
    const int64_t n = 777;
    float *res[PN_OP_MAX_IO];
    op_case c;
    if (op_selected(PN_OP_FILL)) {
        memset(&c, 0, sizeof c);
        snprintf(c.label, sizeof c.label, "fill = value");
        c.op = PN_OP_FILL;
        c.p.fill.value = -0.375f;
        case_out(&c, 0, pn_tensor_vec(n), NULL);
        if (prop_run(be, &c, res)) {
            float *want = host_const(n, -0.375f);
            prop_expect(be, c.label, res[0], want, n, 1);
            free(want);
            results_free(res);
        }
        case_free(&c);
    }
    if (op_selected(PN_OP_SCALE) || op_selected(PN_OP_AXPY)) {
        for (int axpy = 0; axpy < 2; axpy++) {
            memset(&c, 0, sizeof c);
            c.op = axpy ? PN_OP_AXPY : PN_OP_SCALE;
            if (!op_selected(c.op)) continue;
            snprintf(c.label, sizeof c.label, "%s = definition", pn_op_name(c.op));
            c.p.scale.alpha = 0.7f;
            case_in(&c, 0, pn_tensor_vec(n), host_normal(n, 1.0f, 0.0f));
            case_out(&c, 0, pn_tensor_vec(n), axpy ? host_normal(n, 1.0f, 0.0f) : NULL);
            if (prop_run(be, &c, res)) {
                float *want = host_new(n);
                for (int64_t i = 0; i < n; i++)
                    want[i] = (float)((axpy ? (double)c.out[0].data[i] : 0.0) + 0.7 * (double)c.in[0].data[i]);
                prop_expect(be, c.label, res[0], want, n, 0);
                free(want);
                results_free(res);
            }
            case_free(&c);
        }
    }
    if (op_selected(PN_OP_SUM_SQUARES)) {
        memset(&c, 0, sizeof c);
        snprintf(c.label, sizeof c.label, "sum_squares = sum(x^2) in double");
        c.op = PN_OP_SUM_SQUARES;
        case_in(&c, 0, pn_tensor_vec(100000), host_normal(100000, 1.0f, 10.0f));
        case_out(&c, 0, pn_tensor_vec(1), NULL);
        if (prop_run(be, &c, res)) {
            double want = dot(c.in[0].data, c.in[0].data, 100000);
            /* float32 output: 1 ulp; a float accumulator would miss by far more at this length */
            CHECK_MSG(fabs(res[0][0] - want) <= 1.2e-7 * want, "%s on %s: %.9g vs %.9g", c.label, be->name,
                      (double)res[0][0], want);
            results_free(res);
        }
        case_free(&c);
    }
}

/* ---- properties of the SE / scSE / AlbuNet ops ---- */

/* Runs op on be with copies of the inputs and one overwritten output of shape `out`. Returns the output (caller
 * frees), or NULL after a SKIP line or a counted failure. */
static float *prop_op(pn_backend *be, const char *label, pn_op op, pn_op_params p, pn_tensor out, int nin,
                      const pn_tensor *in, float *const *data) {
    op_case c;
    memset(&c, 0, sizeof c);
    snprintf(c.label, sizeof c.label, "%s", label);
    c.op = op;
    c.p = p;
    for (int i = 0; i < nin; i++) case_in(&c, i, in[i], host_copy(data[i], pn_tensor_numel(&in[i])));
    case_out(&c, 0, out, NULL);
    float *res[PN_OP_MAX_IO], *r = NULL;
    if (prop_run(be, &c, res)) {
        r = res[0];
        res[0] = NULL;
        results_free(res);
    }
    case_free(&c);
    return r;
}

/* <a, b> == <c, d> (an op and its adjoint) up to float rounding: within 1e-5 of the Cauchy-Schwarz bound. */
static void expect_adjoint(pn_backend *be, const char *what, const float *a, const float *b, int64_t nab,
                           const float *c, const float *d, int64_t ncd) {
    double lhs = dot(a, b, nab), rhs = dot(c, d, ncd), scale = sqrt(dot(a, a, nab) * dot(b, b, nab));
    CHECK_MSG(fabs(lhs - rhs) <= 1e-5 * scale, "%s on %s: %.9g vs %.9g", what, be->name, lhs, rhs);
}

/* global_avg_pool_fwd = the plane means; global_avg_pool_bwd is its adjoint. Blocked channels (16). */
static void prop_global_avg_pool(pn_backend *be) {
    if (!op_selected(PN_OP_GLOBAL_AVG_POOL_FWD) && !op_selected(PN_OP_GLOBAL_AVG_POOL_BWD)) return;
    const int64_t n = 2, ch = 16, hw = 35;
    pn_tensor x = pn_tensor_nchw(n, ch, 5, 7), s = pn_tensor_nchw(n, ch, 1, 1);
    pn_op_params p;
    memset(&p, 0, sizeof p);
    float *xv = host_normal(n * ch * hw, 2.0f, 1.0f), *r = host_normal(n * ch, 1.0f, 0.0f);
    float *y = prop_op(be, "global_avg_pool_fwd = plane means", PN_OP_GLOBAL_AVG_POOL_FWD, p, s, 1, &x, &xv);
    float *dx = prop_op(be, "global_avg_pool_bwd", PN_OP_GLOBAL_AVG_POOL_BWD, p, x, 1, &s, &r);
    if (y) {
        float *want = host_new(n * ch);
        for (int64_t pl = 0; pl < n * ch; pl++) {
            double sum = 0.0;
            for (int64_t i = 0; i < hw; i++) sum += xv[pl * hw + i];
            want[pl] = (float)(sum / (double)hw);
        }
        prop_expect(be, "global_avg_pool_fwd = plane means", y, want, n * ch, 1);
        free(want);
    }
    if (y && dx)
        expect_adjoint(be, "global_avg_pool adjoint: <pool(x), r> = <x, pool_bwd(r)>", y, r, n * ch, xv, dx,
                       n * ch * hw);
    free(y), free(dx), free(xv), free(r);
}

/* CHANNEL_MUL / PIXEL_MUL: y = x * s exactly (one float product); the gradient rules the graph uses are adjoints:
 * <x * s, r> = <x, mul(r, s)> (dx) = <s, bwd_scale(r, x)> (ds). Blocked channels (16) against plain gates. */
static void prop_gate_mul(pn_backend *be, pn_op op) {
    int per_pixel = op == PN_OP_PIXEL_MUL;
    pn_op bwd = per_pixel ? PN_OP_PIXEL_MUL_BWD_SCALE : PN_OP_CHANNEL_MUL_BWD_SCALE;
    if (!op_selected(op) && !op_selected(bwd)) return;
    const int64_t n = 2, ch = 16, h = 5, w = 7, nx = n * ch * h * w;
    pn_tensor x = pn_tensor_nchw(n, ch, h, w),
              sd = per_pixel ? pn_tensor_nchw(n, 1, h, w) : pn_tensor_nchw(n, ch, 1, 1);
    int64_t ns = pn_tensor_numel(&sd);
    pn_op_params p;
    memset(&p, 0, sizeof p);
    float *xv = host_normal(nx, 1.0f, 0.0f), *sv = host_uniform(ns, 0.0f, 1.0f), *r = host_normal(nx, 1.0f, 0.0f);
    char what[160];
    snprintf(what, sizeof what, "%s = x * s", pn_op_name(op));
    float *y = prop_op(be, what, op, p, x, 2, (pn_tensor[]){x, sd}, (float *[]){xv, sv});
    float *dx = prop_op(be, what, op, p, x, 2, (pn_tensor[]){x, sd}, (float *[]){r, sv});
    float *ds = prop_op(be, what, bwd, p, sd, 2, (pn_tensor[]){x, x}, (float *[]){r, xv});
    if (y) {
        float *want = host_new(nx);
        for (int64_t b = 0; b < n; b++)
            for (int64_t c = 0; c < ch; c++)
                for (int64_t i = 0; i < h * w; i++) {
                    int64_t at = (b * ch + c) * h * w + i;
                    want[at] = xv[at] * sv[per_pixel ? b * h * w + i : b * ch + c];
                }
        prop_expect(be, what, y, want, nx, 1);
        free(want);
    }
    snprintf(what, sizeof what, "%s adjoint: <x * s, r> = <x, dx>", pn_op_name(op));
    if (y && dx) expect_adjoint(be, what, y, r, nx, xv, dx, nx);
    snprintf(what, sizeof what, "%s adjoint: <x * s, r> = <s, ds>", pn_op_name(bwd));
    if (y && ds) expect_adjoint(be, what, y, r, nx, sv, ds, ns);
    free(y), free(dx), free(ds), free(xv), free(sv), free(r);
}

/* The source coordinate of align_corners=False x2 along an axis of n, clamped to the input: (o + 0.5) / 2 - 0.5. */
static double bilinear_coord(int64_t o, int64_t n) { return fmin(fmax((o + 0.5) / 2.0 - 0.5, 0.0), (double)(n - 1)); }

/* bilinear2x_fwd reproduces a plane a*y + b*x + c at the clamped align_corners=False coordinates (PyTorch's
 * rule, written out independently); bilinear2x_bwd is its adjoint. Blocked channels (16), odd sizes. */
static void prop_bilinear(pn_backend *be) {
    if (!op_selected(PN_OP_BILINEAR2X_FWD) && !op_selected(PN_OP_BILINEAR2X_BWD)) return;
    const int64_t n = 1, ch = 16, h = 5, w = 7, ns = n * ch * h * w, nb = 4 * ns;
    pn_tensor small = pn_tensor_nchw(n, ch, h, w), big = pn_tensor_nchw(n, ch, 2 * h, 2 * w);
    pn_op_params p;
    memset(&p, 0, sizeof p);
    float *coef = host_normal(3 * ch, 1.0f, 0.0f), *ramp = host_new(ns), *want = host_new(nb);
    for (int64_t c = 0; c < ch; c++)
        for (int64_t y = 0; y < 2 * h; y++)
            for (int64_t x = 0; x < 2 * w; x++) {
                const float *k = coef + 3 * c;
                if (y < h && x < w) ramp[(c * h + y) * w + x] = k[0] * (float)y + k[1] * (float)x + k[2];
                want[(c * 2 * h + y) * 2 * w + x] =
                    (float)(k[0] * bilinear_coord(y, h) + k[1] * bilinear_coord(x, w) + k[2]);
            }
    float *up = prop_op(be, "bilinear2x_fwd of a plane", PN_OP_BILINEAR2X_FWD, p, big, 1, &small, &ramp);
    if (up)
        prop_expect(be, "bilinear2x_fwd of a plane = the plane at align_corners=False coordinates", up, want, nb, 0);
    float *xv = host_normal(ns, 1.0f, 0.0f), *r = host_normal(nb, 1.0f, 0.0f);
    float *y = prop_op(be, "bilinear2x_fwd", PN_OP_BILINEAR2X_FWD, p, big, 1, &small, &xv);
    float *dx = prop_op(be, "bilinear2x_bwd", PN_OP_BILINEAR2X_BWD, p, small, 1, &big, &r);
    if (y && dx) expect_adjoint(be, "bilinear2x adjoint: <up(x), r> = <x, up_bwd(r)>", y, r, nb, xv, dx, ns);
    free(coef), free(ramp), free(want), free(up), free(xv), free(r), free(y), free(dx);
}

/* Ceil-mode max-pool against a brute-force window maximum over the clipped windows, and the gradient routed to
 * each window's first maximum (ties), as prop_maxpool does for floor mode. */
static void prop_maxpool_ceil(pn_backend *be) {
    if (!op_selected(PN_OP_MAXPOOL_FWD) && !op_selected(PN_OP_MAXPOOL_BWD)) return;
    const int64_t n = 2, ch = 16, h = 8, w = 9;
    const pn_pool_params pp = {3, 2, 0, 1};
    const int64_t oh = pn_pool_out_size(h, &pp), ow = pn_pool_out_size(w, &pp), nx = n * ch * h * w,
                  ny = n * ch * oh * ow;
    pn_tensor x = pn_tensor_nchw(n, ch, h, w), y = pn_tensor_nchw(n, ch, oh, ow);
    pn_op_params p;
    p.maxpool_fwd = pp;
    float *xv = host_normal(nx, 1.0f, 0.0f), *r = host_normal(ny, 1.0f, 0.0f);
    for (int64_t i = 0; i < nx; i++) xv[i] = roundf(xv[i]); /* values in {-3..3}: most windows hold ties */
    float *want_y = host_new(ny), *want_dx = host_new(nx);
    for (int64_t pl = 0; pl < n * ch; pl++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t best = -1;
                for (int64_t iy = oy * 2; iy < oy * 2 + 3 && iy < h; iy++)
                    for (int64_t ix = ox * 2; ix < ox * 2 + 3 && ix < w; ix++) {
                        int64_t at = (pl * h + iy) * w + ix;
                        if (best < 0 || xv[at] > xv[best]) best = at;
                    }
                int64_t o = (pl * oh + oy) * ow + ox;
                want_y[o] = xv[best];
                want_dx[best] += r[o];
            }
    float *got_y = prop_op(be, "maxpool_fwd ceil", PN_OP_MAXPOOL_FWD, p, y, 1, &x, &xv);
    float *got_dx =
        prop_op(be, "maxpool_bwd ceil", PN_OP_MAXPOOL_BWD, p, x, 2, (pn_tensor[]){y, x}, (float *[]){r, xv});
    if (got_y) prop_expect(be, "maxpool_fwd ceil 8x9 k3 s2 = clipped window maximum (ties)", got_y, want_y, ny, 1);
    if (got_dx)
        prop_expect(be, "maxpool_bwd ceil 8x9 k3 s2 routes to the first maximum (ties)", got_dx, want_dx, nx, 1);
    free(xv), free(r), free(want_y), free(want_dx), free(got_y), free(got_dx);
}

/* Bilinear x2 against PyTorch's F.interpolate(..., align_corners=False) and its autograd gradient
 * (tests/ref/make_ops_golden.py). */
static void prop_bilinear_torch(pn_backend *be) {
    if (!op_selected(PN_OP_BILINEAR2X_FWD) && !op_selected(PN_OP_BILINEAR2X_BWD)) return;
    pn_npy sm, lg;
    if (pn_npy_read("golden/ops_bilinear_small.npy", 5, 5, &sm) != PN_OK) {
        CHECK_MSG(0, "golden: %s", pn_last_error());
        return;
    }
    if (pn_npy_read("golden/ops_bilinear_large.npy", 5, 5, &lg) != PN_OK) {
        CHECK_MSG(0, "golden: %s", pn_last_error());
        pn_free(sm.data);
        return;
    }
    pn_tensor small = pn_tensor_nchw(sm.shape[1], sm.shape[2], sm.shape[3], sm.shape[4]);
    pn_tensor big = pn_tensor_nchw(lg.shape[1], lg.shape[2], lg.shape[3], lg.shape[4]);
    int64_t ns = pn_tensor_numel(&small), nb = pn_tensor_numel(&big);
    CHECK_MSG(sm.shape[0] == 2 && lg.shape[0] == 2 && big.shape[2] == 2 * small.shape[2], "golden bilinear shapes");
    pn_op_params p;
    memset(&p, 0, sizeof p);
    float *x = sm.data, *dx_torch = sm.data + ns, *y_torch = lg.data, *dy = lg.data + nb;
    float *y = prop_op(be, "bilinear2x_fwd vs PyTorch", PN_OP_BILINEAR2X_FWD, p, big, 1, &small, &x);
    float *dx = prop_op(be, "bilinear2x_bwd vs PyTorch", PN_OP_BILINEAR2X_BWD, p, small, 1, &big, &dy);
    char msg[256];
    if (y)
        CHECK_MSG(compare(y, y_torch, nb, 1e-12, 0, msg, sizeof msg), "bilinear2x_fwd vs PyTorch on %s: %s", be->name,
                  msg);
    if (dx)
        CHECK_MSG(compare(dx, dx_torch, ns, 1e-12, 0, msg, sizeof msg), "bilinear2x_bwd vs PyTorch on %s: %s", be->name,
                  msg);
    free(y), free(dx);
    pn_free(sm.data), pn_free(lg.data);
}

static void run_se_albunet_properties(pn_backend *be) {
    prop_global_avg_pool(be);
    prop_gate_mul(be, PN_OP_CHANNEL_MUL);
    prop_gate_mul(be, PN_OP_PIXEL_MUL);
    prop_bilinear(be);
    prop_bilinear_torch(be);
    prop_maxpool_ceil(be);
}

/* ---------------- a fused inference chain (every backend but ref) ---------------- */

/* conv -> BN (in place) -> ADD (in place, optional) -> ReLU (in place), prepared and run in order as an inference
 * graph runs them: the cpu backend fuses the chain into one conv, and the result must match ref's separate ops.
 * On cpu with oneDNN and fusion on, the fused BN node run on its own must fail with a message, not compute garbage. */
typedef struct chain_cfg {
    int64_t n, cin, cout, hw;
    int with_add;
} chain_cfg;

static const chain_cfg chain_cfgs[] = {
    {1, 16, 16, 9, 0}, /* conv+BN+ReLU, one channel block */
    {2, 8, 24, 7, 1},  /* with a residual add, partial channel blocks */
    {1, 3, 5, 6, 1},   /* a tiny one off any block */
};
#define N_CHAIN_CFGS (int)(sizeof chain_cfgs / sizeof chain_cfgs[0])

typedef struct chain {
    pn_buffer bx, bw, by, br, bp;
    pn_tensor x, w, y, r, gamma, beta, mean, var;
    pn_node nodes[4];
    int len;
} chain;

/* The chain's host values: x, w, y's starting values, the addend r, and gamma, beta, mean, var one after another. */
typedef struct chain_data {
    float *v[5];
} chain_data;

static void chain_data_make(const chain_cfg *g, chain_data *d) {
    int64_t nx = g->n * g->cin * g->hw * g->hw, ny = g->n * g->cout * g->hw * g->hw, cout = g->cout;
    d->v[0] = host_normal(nx, 1.0f, 0.0f);
    d->v[1] = host_normal(cout * g->cin * 9, 1.0f / sqrtf((float)(g->cin * 9)), 0.0f);
    d->v[2] = host_normal(ny, 1.0f, 0.0f);
    d->v[3] = host_normal(ny, 1.0f, 0.0f);
    d->v[4] = host_normal(4 * cout, 0.5f, 0.0f);
    float *var = host_uniform(cout, 0.5f, 2.0f); /* a positive running variance */
    memcpy(d->v[4] + 3 * cout, var, (size_t)cout * sizeof *var);
    free(var);
}

static void chain_data_free(chain_data *d) {
    for (int i = 0; i < 5; i++) free(d->v[i]);
}

/* Builds the chain's tensors and nodes on be (nothing prepared yet). */
static pn_status chain_setup(pn_backend *be, chain *c, const chain_cfg *g, const chain_data *d) {
    memset(c, 0, sizeof *c);
    c->x = pn_tensor_nchw(g->n, g->cin, g->hw, g->hw), c->w = pn_tensor_nchw(g->cout, g->cin, 3, 3);
    c->y = pn_tensor_nchw(g->n, g->cout, g->hw, g->hw), c->r = c->y;
    pn_tensor *ts[] = {&c->x, &c->w, &c->y, &c->r};
    pn_buffer *bs[] = {&c->bx, &c->bw, &c->by, &c->br};
    for (int i = 0; i < 4; i++) {
        PN_TRY(pn_buffer_alloc(be, bs[i], pn_tensor_bytes(ts[i])));
        ts[i]->buf = bs[i];
        PN_TRY(pn_tensor_set(ts[i], d->v[i]));
    }
    PN_TRY(pn_buffer_alloc(be, &c->bp, 4 * (size_t)g->cout * sizeof(float)));
    pn_tensor *ps[] = {&c->gamma, &c->beta, &c->mean, &c->var};
    for (int i = 0; i < 4; i++) {
        *ps[i] = pn_tensor_vec(g->cout);
        ps[i]->buf = &c->bp;
        ps[i]->offset = (size_t)i * (size_t)g->cout * sizeof(float);
        PN_TRY(pn_tensor_set(ps[i], d->v[4] + i * g->cout));
    }
    pn_node *nd = c->nodes;
    nd[0].op = PN_OP_CONV2D_FWD, nd[0].p.conv2d_fwd = (pn_conv2d_params){1, 1, 1};
    nd[0].out[0] = &c->y, nd[0].in[0] = &c->x, nd[0].in[1] = &c->w;
    nd[1].op = PN_OP_BATCHNORM_INFER_FWD, nd[1].p.batchnorm_infer_fwd = (pn_batchnorm_params){1e-5f, 0.1f};
    nd[1].out[0] = &c->y, nd[1].in[0] = &c->y, nd[1].in[1] = &c->gamma, nd[1].in[2] = &c->beta;
    nd[1].in[3] = &c->mean, nd[1].in[4] = &c->var;
    int k = 2;
    if (g->with_add) {
        nd[k].op = PN_OP_ADD, nd[k].out[0] = &c->y, nd[k].in[0] = &c->y, nd[k].in[1] = &c->r;
        k++;
    }
    nd[k].op = PN_OP_RELU_FWD, nd[k].out[0] = &c->y, nd[k].in[0] = &c->y;
    c->len = k + 1;
    return PN_OK;
}

static void chain_free(pn_backend *be, chain *c) {
    for (int i = 0; i < 4; i++) pn_node_release(be, &c->nodes[i]);
    pn_buffer *bs[] = {&c->bx, &c->bw, &c->by, &c->br, &c->bp};
    for (int i = 0; i < 5; i++) pn_buffer_free(bs[i]);
}

/* Prepares every node of the chain, then computes every node, in order. */
static pn_status chain_run(pn_backend *be, chain *c) {
    for (int i = 0; i < c->len; i++) PN_TRY(pn_node_prepare(be, &c->nodes[i]));
    for (int i = 0; i < c->len; i++) PN_TRY(pn_node_compute(be, &c->nodes[i]));
    return pn_backend_synchronize(be);
}

/* The chain's output on be, or NULL after a SKIP line (an op be cannot run) or a counted failure. */
static float *chain_output(pn_backend *be, chain *c, const chain_cfg *g, const chain_data *d, const char *what) {
    float *y = NULL;
    if (chain_setup(be, c, g, d) != PN_OK) {
        CHECK_MSG(0, "%s on %s: %s", what, be->name, pn_last_error());
        return NULL;
    }
    for (int i = 0; i < c->len; i++) {
        const char *unsupported = pn_node_unsupported(be, &c->nodes[i]);
        if (unsupported) {
            SKIP("fused chain %s: %s [%s]", be->name, unsupported, what);
            return NULL;
        }
    }
    y = host_new(pn_tensor_numel(&c->y));
    if (chain_run(be, c) != PN_OK || pn_tensor_get(&c->y, y) != PN_OK) {
        CHECK_MSG(0, "%s on %s: %s", what, be->name, pn_last_error());
        free(y);
        return NULL;
    }
    return y;
}

static void run_fused_chain(pn_backend *ref, pn_backend *be, const chain_cfg *g) {
    char what[128], msg[256];
    snprintf(what, sizeof what, "fused conv+bn%s+relu n=%lld %lld->%lld %lldx%lld", g->with_add ? "+add" : "",
             (long long)g->n, (long long)g->cin, (long long)g->cout, (long long)g->hw, (long long)g->hw);
    chain_data d;
    chain_data_make(g, &d);
    chain a, b;
    float *want = chain_output(ref, &a, g, &d, what);
    float *got = want ? chain_output(be, &b, g, &d, what) : NULL;
    if (want && got) {
        int ok = compare(got, want, pn_tensor_numel(&a.y), NMSE_TOL, 0, msg, sizeof msg);
        CHECK_MSG(ok, "%s on %s: %s", what, be->name, msg);
#ifdef PN_HAVE_ONEDNN
        /* the BN node alone, without its conv just before: refused when it was fused */
        const char *fuse = getenv("PN_CPU_FUSE");
        if (strcmp(be->name, "cpu") == 0 && (!fuse || strcmp(fuse, "0") != 0))
            CHECK_MSG(pn_node_compute(be, &b.nodes[1]) != PN_OK, "%s on cpu: the fused BN node ran on its own", what);
#endif
    }
    free(want);
    free(got);
    chain_free(ref, &a);
    if (want) chain_free(be, &b);
    chain_data_free(&d);
}

static void run_fused_chains(pn_backend *ref, pn_backend *be) {
    if (!op_selected(PN_OP_CONV2D_FWD) && !op_selected(PN_OP_BATCHNORM_INFER_FWD) && !op_selected(PN_OP_ADD) &&
        !op_selected(PN_OP_RELU_FWD))
        return;
    for (int i = 0; i < N_CHAIN_CFGS; i++) run_fused_chain(ref, be, &chain_cfgs[i]);
}

/* ---------------- coverage: every op of core/ops.def has cases, and they ran on every backend ---------------- */

static const pn_op all_ops[] = {
#define OP(E, name, P, nin, nout, ...) PN_OP_##E,
#include "core/ops.def"
#undef OP
};
#define N_ALL_OPS (int)(sizeof all_ops / sizeof all_ops[0])

/* An op added to ops.def without a case here fails this. */
static void check_cases_cover_ops(void) {
    for (int i = 0; i < N_ALL_OPS; i++) {
        int n = 0;
        for (int k = 0; k < g_ncases; k++) n += g_cases[k].op == all_ops[i];
        CHECK_MSG(n > 0, "coverage: op %s of core/ops.def has no case in test_ops", pn_op_name(all_ops[i]));
    }
}

/* A backend that skipped (or failed) every case of an op fails this, unless the op is OPTIONAL in ops.def and the
 * backend leaves it out (a NULL slot of its table: every case skipped for that reason, said in a SKIP line). */
static void check_ops_ran(const pn_backend *be) {
    for (int i = 0; i < N_ALL_OPS; i++) {
        pn_op op = all_ops[i];
        if (!op_selected(op)) continue;
        if (g_ran[op] == 0 && pn_op_optional(op) && g_left_out[op] > 0)
            SKIP("coverage: %s leaves out the optional op %s", be->name, pn_op_name(op));
        else
            CHECK_MSG(g_ran[op] > 0, "coverage: no case of op %s ran on %s", pn_op_name(op), be->name);
    }
}

/* pn_pool_out_size against the output lengths of PyTorch's max_pool2d, floor and ceil mode
 * (tests/ref/make_ops_golden.py; 0 where PyTorch refuses an empty output). */
static void check_pool_sizes_torch(void) {
    pn_npy g;
    if (pn_npy_read("golden/ops_pool_sizes.npy", 2, 2, &g) != PN_OK) {
        CHECK_MSG(0, "golden: %s", pn_last_error());
        return;
    }
    int bad = 0;
    for (int64_t r = 0; g.shape[1] == 6 && r < g.shape[0]; r++) {
        const float *row = g.data + r * 6;
        pn_pool_params p = {(int)row[1], (int)row[2], (int)row[3], (int)row[4]};
        int64_t got = pn_pool_out_size((int64_t)row[0], &p), want = (int64_t)row[5];
        if (got != want && bad++ < 5)
            fprintf(stderr, "pool size: in %g k %g s %g p %g ceil %g: %lld, PyTorch %lld\n", (double)row[0],
                    (double)row[1], (double)row[2], (double)row[3], (double)row[4], (long long)got, (long long)want);
    }
    CHECK_MSG(g.shape[1] == 6 && g.shape[0] > 100 && bad == 0, "pn_pool_out_size vs PyTorch: %d of %lld rows differ",
              bad, (long long)g.shape[0]);
    pn_free(g.data);
}

static void run_properties(pn_backend *be) {
    prop_blas1(be);
    prop_conv_delta(be);
    prop_conv_adjoint(be);
    prop_accumulate(be, PN_OP_CONV2D_BWD_WEIGHTS);
    prop_accumulate(be, PN_OP_BATCHNORM_BWD);
    prop_batchnorm(be);
    prop_relu(be);
    prop_maxpool(be);
    prop_maxpool_nan_ref(be);
    prop_add(be);
    prop_upsample(be);
    prop_concat_split(be);
    prop_sigmoid(be);
    prop_combo(be);
    prop_adam_first_step(be);
    run_se_albunet_properties(be);
}

/* ---------------- main ---------------- */

static int usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s [-o OP] [-b BACKEND]\n  -o OP       only this op (e.g. conv2d_fwd)\n"
            "  -b BACKEND  only this backend (ref is still the oracle)\n",
            argv0);
    return 2;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            g_op_filter = argv[++i];
        } else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) {
            g_backend_filter = argv[++i];
        } else {
            return usage(argv[0]);
        }
    }
    if (g_op_filter && pn_op_from_name(g_op_filter) == PN_OP_COUNT) {
        fprintf(stderr, "test_ops: unknown op '%s' (see core/ops.def)\n", g_op_filter);
        return 2;
    }
    pn_register_builtin_backends();
    pn_backend *ref = NULL;
    if (pn_backend_open("ref", 1, &ref) != PN_OK) {
        fprintf(stderr, "test_ops: cannot open ref: %s\n", pn_last_error());
        return 1;
    }

    /* Backends to test: the built-in ones, then cuda (a module). */
    char names[256];
    snprintf(names, sizeof names, "%s", pn_backend_builtin_names());
    const char *list[MAX_BACKENDS];
    int nlist = 0;
    for (char *tok = names; *tok && nlist < MAX_BACKENDS - 1;) {
        char *comma = strchr(tok, ',');
        if (comma) *comma = 0;
        list[nlist++] = tok;
        if (!comma) break;
        tok = comma + 1;
    }
    int has_cuda = 0;
    for (int i = 0; i < nlist; i++) has_cuda |= strcmp(list[i], "cuda") == 0;
    if (!has_cuda) list[nlist++] = "cuda";

    add_blas1_cases();
    add_conv_cases();
    add_batchnorm_cases();
    add_elementwise_cases();
    add_pool_cases();
    add_shape_cases();
    add_combo_cases();
    add_adam_cases();
    add_se_albunet_cases();
    add_late_conv_cases();
    check_cases_cover_ops();
    check_pool_sizes_torch();

    int tested = 0;
    for (int i = 0; i < nlist; i++) {
        if (g_backend_filter && strcmp(g_backend_filter, list[i]) != 0) continue;
        tested++;
        pn_backend *be = NULL;
        if (pn_backend_open(list[i], 0, &be) != PN_OK) {
            SKIP("%s %s: %s", g_op_filter ? g_op_filter : "all-ops", list[i], pn_last_error());
            continue;
        }
        double t0 = pn_now();
        int before = check_passed + check_failed + check_skipped;
        memset(g_ran, 0, sizeof g_ran);
        memset(g_left_out, 0, sizeof g_left_out);
        run_cases(ref, be);
        check_ops_ran(be);
        run_properties(be);
        if (strcmp(be->name, "ref") != 0) run_fused_chains(ref, be);
        printf("backend %s: %d checks in %.2f s\n", be->name, check_passed + check_failed + check_skipped - before,
               pn_now() - t0);
        pn_backend_close(be);
    }
    if (g_backend_filter && !tested) {
        fprintf(stderr, "test_ops: unknown backend '%s' (built in: %s, or cuda)\n", g_backend_filter,
                pn_backend_builtin_names());
        pn_backend_close(ref);
        return 2;
    }
    for (int k = 0; k < g_ncases; k++) case_free(&g_cases[k]);
    free(g_cases);
    pn_backend_close(ref);
    return check_report("test_ops");
}
