/* test_cpu_ops: every op of the cpu backend against ref (NMSE <= 1e-7 per output), with batch 1, odd
 * spatial sizes, 1 and many channels, strides, groups, and accumulating gradients. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"
#include "backends/ref/ref.h"
#include "check.h"
#include "core/rng.h"

#define MAXT 10

/* Input kinds: random normal, positive (statistics), a binary target. */
enum { IN_NORMAL, IN_POSITIVE, IN_BINARY };

typedef struct spec {
    const char *what;
    pn_op op;
    pn_op_params p;
    int nin, nout;
    pn_tensor in[PN_OP_MAX_IO], out[PN_OP_MAX_IO];
    bool in_none[PN_OP_MAX_IO], out_none[PN_OP_MAX_IO];
    int kind[PN_OP_MAX_IO], okind[PN_OP_MAX_IO];
} spec;

typedef struct run {
    pn_buffer bufs[2 * PN_OP_MAX_IO];
    pn_tensor t[2 * PN_OP_MAX_IO];
    pn_node node;
} run;

static float *random_data(int64_t n, int kind, uint64_t seed) {
    float *v = malloc((size_t)n * sizeof *v);
    pn_rng r = pn_rng_make(seed, 7, 0, 0);
    for (int64_t i = 0; i < n; i++) {
        float x = pn_rng_normal(&r);
        v[i] = kind == IN_POSITIVE ? 0.5f + fabsf(x) : kind == IN_BINARY ? (x > 0.8f ? 1.0f : 0.0f) : x;
    }
    return v;
}

/* Builds the node on backend `be` with the same seeded data for every slot; returns the status of prepare. */
static pn_status run_setup(pn_backend *be, const spec *s, run *r) {
    memset(r, 0, sizeof *r);
    r->node.op = s->op;
    r->node.p = s->p;
    for (int i = 0; i < s->nout + s->nin; i++) {
        bool out = i < s->nout;
        int slot = out ? i : i - s->nout;
        if (out ? s->out_none[slot] : s->in_none[slot]) continue;
        r->t[i] = out ? s->out[slot] : s->in[slot];
        r->t[i].dtype = PN_F32;
        int64_t n = pn_tensor_numel(&r->t[i]);
        PN_TRY(pn_buffer_alloc(be, &r->bufs[i], pn_tensor_bytes(&r->t[i])));
        r->t[i].buf = &r->bufs[i];
        float *v = random_data(n, out ? s->okind[slot] : s->kind[slot], 1000 + (uint64_t)i);
        pn_tensor_set(&r->t[i], v);
        free(v);
        if (out)
            r->node.out[slot] = &r->t[i];
        else
            r->node.in[slot] = &r->t[i];
    }
    PN_TRY(pn_node_prepare(be, &r->node));
    return pn_node_compute(be, &r->node);
}

static void run_free(pn_backend *be, run *r) {
    pn_node_release(be, &r->node);
    for (int i = 0; i < 2 * PN_OP_MAX_IO; i++) pn_buffer_free(&r->bufs[i]);
}

static double nmse(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

static void compare(pn_backend *ref, pn_backend *cpu, const spec *s) {
    run rr, rc;
    pn_status st1 = run_setup(ref, s, &rr);
    pn_status st2 = run_setup(cpu, s, &rc);
    CHECK_MSG(st1 == PN_OK && st2 == PN_OK, "%s: %s", s->what, pn_last_error());
    if (st1 == PN_OK && st2 == PN_OK) {
        /* outputs, and inputs (in-place outputs such as running statistics are compared as outputs) */
        for (int i = 0; i < s->nout; i++) {
            if (s->out_none[i]) continue;
            int64_t n = pn_tensor_numel(&rr.t[i]);
            float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
            pn_tensor_get(&rc.t[i], a);
            pn_tensor_get(&rr.t[i], b);
            double e = nmse(a, b, n);
            CHECK_MSG(e <= 1e-7, "%s output %d: NMSE %.3g", s->what, i, e);
            free(a);
            free(b);
        }
    }
    run_free(ref, &rr);
    run_free(cpu, &rc);
}

static pn_tensor T4(int64_t n, int64_t c, int64_t h, int64_t w) { return pn_tensor_nchw(n, c, h, w); }
static pn_tensor V(int64_t n) { return pn_tensor_vec(n); }
static int64_t co(int64_t in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

static void test_conv(pn_backend *ref, pn_backend *cpu, int n, int cin, int cout, int h, int w, int k, int stride,
                      int pad, int groups, bool bias) {
    int oh = co(h, k, stride, pad), ow = co(w, k, stride, pad);
    pn_conv2d_params cp = {stride, pad, groups};
    char what[128];
    snprintf(what, sizeof what, "conv n%d %d->%d %dx%d k%d s%d p%d g%d%s", n, cin, cout, h, w, k, stride, pad, groups,
             bias ? " bias" : "");
    spec s = {0};
    s.what = what;
    s.op = PN_OP_CONV2D_FWD;
    s.p.conv2d_fwd = cp;
    s.nin = 3, s.nout = 1;
    s.out[0] = T4(n, cout, oh, ow);
    s.in[0] = T4(n, cin, h, w);
    s.in[1] = T4(cout, cin / groups, k, k);
    s.in[2] = V(cout);
    s.in_none[2] = !bias;
    compare(ref, cpu, &s);

    spec d = {0};
    d.what = what;
    d.op = PN_OP_CONV2D_BWD_DATA;
    d.p.conv2d_bwd_data = cp;
    d.nin = 2, d.nout = 1;
    d.out[0] = T4(n, cin, h, w);
    d.in[0] = T4(n, cout, oh, ow);
    d.in[1] = T4(cout, cin / groups, k, k);
    compare(ref, cpu, &d);

    spec g = {0};
    g.what = what;
    g.op = PN_OP_CONV2D_BWD_WEIGHTS;
    g.p.conv2d_bwd_weights = cp;
    g.nin = 2, g.nout = 2;
    g.out[0] = T4(cout, cin / groups, k, k);
    g.out[1] = V(cout);
    g.out_none[1] = !bias;
    g.in[0] = T4(n, cout, oh, ow);
    g.in[1] = T4(n, cin, h, w);
    compare(ref, cpu, &g);
}

static void test_bn(pn_backend *ref, pn_backend *cpu, int n, int c, int h, int w) {
    char what[64];
    snprintf(what, sizeof what, "batchnorm %dx%dx%dx%d", n, c, h, w);
    pn_batchnorm_params bp = {1e-5f, 0.1f};
    spec t = {0};
    t.what = what;
    t.op = PN_OP_BATCHNORM_TRAIN_FWD;
    t.p.batchnorm_train_fwd = bp;
    t.nin = 3, t.nout = 5;
    t.out[0] = T4(n, c, h, w);
    for (int i = 1; i < 5; i++) t.out[i] = V(c);
    t.in[0] = T4(n, c, h, w);
    t.in[1] = V(c), t.in[2] = V(c);
    compare(ref, cpu, &t);

    spec f = {0};
    f.what = what;
    f.op = PN_OP_BATCHNORM_INFER_FWD;
    f.p.batchnorm_infer_fwd = bp;
    f.nin = 5, f.nout = 1;
    f.out[0] = T4(n, c, h, w);
    f.in[0] = T4(n, c, h, w);
    for (int i = 1; i < 5; i++) f.in[i] = V(c);
    f.kind[4] = IN_POSITIVE;
    compare(ref, cpu, &f);

    spec b = {0};
    b.what = what;
    b.op = PN_OP_BATCHNORM_BWD;
    b.p.batchnorm_bwd = bp;
    b.nin = 5, b.nout = 3;
    b.out[0] = T4(n, c, h, w);
    b.out[1] = V(c), b.out[2] = V(c);
    b.in[0] = T4(n, c, h, w), b.in[1] = T4(n, c, h, w);
    b.in[2] = V(c), b.in[3] = V(c), b.in[4] = V(c);
    b.kind[4] = IN_POSITIVE;
    compare(ref, cpu, &b);
}

static void test_pool(pn_backend *ref, pn_backend *cpu, int n, int c, int h, int w, int k, int stride, int pad) {
    char what[64];
    snprintf(what, sizeof what, "maxpool %dx%dx%dx%d k%d s%d p%d", n, c, h, w, k, stride, pad);
    pn_pool_params pp = {k, stride, pad, 0};
    int oh = co(h, k, stride, pad), ow = co(w, k, stride, pad);
    spec f = {0};
    f.what = what;
    f.op = PN_OP_MAXPOOL_FWD;
    f.p.maxpool_fwd = pp;
    f.nin = 1, f.nout = 1;
    f.out[0] = T4(n, c, oh, ow);
    f.in[0] = T4(n, c, h, w);
    compare(ref, cpu, &f);
    spec b = f;
    b.op = PN_OP_MAXPOOL_BWD;
    b.nin = 2;
    b.out[0] = T4(n, c, h, w);
    b.in[0] = T4(n, c, oh, ow);
    b.in[1] = T4(n, c, h, w);
    compare(ref, cpu, &b);
}

/* Ops whose tensors all share one shape. */
static void test_same_shape(pn_backend *ref, pn_backend *cpu, pn_op op, int nin, int nout, pn_tensor shape) {
    spec s = {0};
    s.what = pn_op_name(op);
    s.op = op;
    s.nin = nin, s.nout = nout;
    for (int i = 0; i < nin; i++) s.in[i] = shape;
    for (int i = 0; i < nout; i++) s.out[i] = shape;
    if (op == PN_OP_FILL) s.p.fill.value = 0.25f;
    if (op == PN_OP_SCALE || op == PN_OP_AXPY) s.p.scale.alpha = -1.5f;
    if (op == PN_OP_ADAM_STEP) {
        pn_adam_params ap = {1e-3f, 0.9f, 0.999f, 1e-8f, 1e-4f, 3};
        s.p.adam_step = ap;
        s.okind[2] = IN_POSITIVE;
    }
    compare(ref, cpu, &s);
    if (op == PN_OP_ADAM_STEP) { /* and without weight decay */
        s.p.adam_step.weight_decay = 0.0f;
        compare(ref, cpu, &s);
    }
}

static void test_shapes_misc(pn_backend *ref, pn_backend *cpu, int n, int c, int h, int w) {
    spec u = {0};
    u.what = "upsample2x_fwd";
    u.op = PN_OP_UPSAMPLE2X_FWD;
    u.nin = 1, u.nout = 1;
    u.out[0] = T4(n, c, 2 * h, 2 * w), u.in[0] = T4(n, c, h, w);
    compare(ref, cpu, &u);
    u.what = "upsample2x_bwd";
    u.op = PN_OP_UPSAMPLE2X_BWD;
    u.out[0] = T4(n, c, h, w), u.in[0] = T4(n, c, 2 * h, 2 * w);
    compare(ref, cpu, &u);

    spec cc = {0};
    cc.what = "concat";
    cc.op = PN_OP_CONCAT;
    cc.nin = 2, cc.nout = 1;
    cc.out[0] = T4(n, c + 3, h, w), cc.in[0] = T4(n, c, h, w), cc.in[1] = T4(n, 3, h, w);
    compare(ref, cpu, &cc);
    spec sp = {0};
    sp.what = "split";
    sp.op = PN_OP_SPLIT;
    sp.nin = 1, sp.nout = 2;
    sp.in[0] = T4(n, c + 3, h, w), sp.out[0] = T4(n, c, h, w), sp.out[1] = T4(n, 3, h, w);
    compare(ref, cpu, &sp);
    sp.out_none[1] = true;
    compare(ref, cpu, &sp);

    pn_combo_loss_params lp = {1.0f, 1.0f, 1.0f, 0.5f};
    spec l = {0};
    l.what = "combo_loss";
    l.op = PN_OP_COMBO_LOSS_FWD;
    l.p.combo_loss_fwd = lp;
    l.nin = 2, l.nout = 1;
    l.in[0] = T4(n, 1, h, w), l.in[1] = T4(n, 1, h, w);
    l.kind[1] = IN_BINARY;
    l.out[0] = V(1);
    compare(ref, cpu, &l);
    l.op = PN_OP_COMBO_LOSS_BWD;
    l.out[0] = T4(n, 1, h, w);
    compare(ref, cpu, &l);

    spec ss = {0};
    ss.what = "sum_squares";
    ss.op = PN_OP_SUM_SQUARES;
    ss.nin = 1, ss.nout = 1;
    ss.in[0] = T4(n, c, h, w), ss.out[0] = V(1);
    compare(ref, cpu, &ss);

    pn_op same[][3] = {{PN_OP_FILL, 0, 1},     {PN_OP_SCALE, 1, 1}, {PN_OP_AXPY, 1, 1},    {PN_OP_RELU_FWD, 1, 1},
                       {PN_OP_RELU_BWD, 2, 1}, {PN_OP_ADD, 2, 1},   {PN_OP_SIGMOID, 1, 1}, {PN_OP_ADAM_STEP, 1, 3}};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        test_same_shape(ref, cpu, same[i][0], (int)same[i][1], (int)same[i][2], T4(n, c, h, w));
}

/* The SE / scSE / AlbuNet ops: sigmoid backward, global average pool, per-channel and per-pixel gates (x blocked
 * when c is a multiple of the channel block, the gates (N,C,1,1) and (N,1,H,W)), bilinear x2, ceil-mode max-pool. */
static void test_se_albunet_ops(pn_backend *ref, pn_backend *cpu, int n, int c, int h, int w) {
    test_same_shape(ref, cpu, PN_OP_SIGMOID_BWD, 2, 1, T4(n, c, h, w));
    const struct {
        pn_op op;
        int nin;
        pn_tensor out, in0, in1;
    } specs[] = {
        {PN_OP_GLOBAL_AVG_POOL_FWD, 1, T4(n, c, 1, 1), T4(n, c, h, w), {0}},
        {PN_OP_GLOBAL_AVG_POOL_BWD, 1, T4(n, c, h, w), T4(n, c, 1, 1), {0}},
        {PN_OP_CHANNEL_MUL, 2, T4(n, c, h, w), T4(n, c, h, w), T4(n, c, 1, 1)},
        {PN_OP_CHANNEL_MUL_BWD_SCALE, 2, T4(n, c, 1, 1), T4(n, c, h, w), T4(n, c, h, w)},
        {PN_OP_PIXEL_MUL, 2, T4(n, c, h, w), T4(n, c, h, w), T4(n, 1, h, w)},
        {PN_OP_PIXEL_MUL_BWD_SCALE, 2, T4(n, 1, h, w), T4(n, c, h, w), T4(n, c, h, w)},
        {PN_OP_BILINEAR2X_FWD, 1, T4(n, c, 2 * h, 2 * w), T4(n, c, h, w), {0}},
        {PN_OP_BILINEAR2X_BWD, 1, T4(n, c, h, w), T4(n, c, 2 * h, 2 * w), {0}},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        spec s = {0};
        s.what = pn_op_name(specs[i].op);
        s.op = specs[i].op;
        s.nin = specs[i].nin, s.nout = 1;
        s.out[0] = specs[i].out, s.in[0] = specs[i].in0, s.in[1] = specs[i].in1;
        compare(ref, cpu, &s);
    }
    pn_pool_params pp = {3, 2, 0, 1}; /* SENet's stem pool */
    spec f = {0};
    f.what = "maxpool ceil_mode k3 s2";
    f.op = PN_OP_MAXPOOL_FWD;
    f.p.maxpool_fwd = pp;
    f.nin = 1, f.nout = 1;
    f.out[0] = T4(n, c, pn_pool_out_size(h, &pp), pn_pool_out_size(w, &pp));
    f.in[0] = T4(n, c, h, w);
    compare(ref, cpu, &f);
    spec b = f;
    b.op = PN_OP_MAXPOOL_BWD;
    b.nin = 2;
    b.out[0] = f.in[0];
    b.in[0] = f.out[0];
    b.in[1] = f.in[0];
    compare(ref, cpu, &b);
}

/* An inference chain conv -> BN (in place) -> ADD (in place) -> ReLU (in place), prepared and run in order: the
 * cpu backend fuses it into one conv; the result must match ref's four separate ops. Running a fused node
 * out of order must fail with a message instead of computing garbage. */
typedef struct chain {
    pn_buffer bx, bw, by, br, bp;
    pn_tensor x, w, y, r, gamma, beta, mean, var;
    pn_node nodes[4];
} chain;

static void chain_setup(pn_backend *be, chain *c, int n, int cin, int cout, int hw, bool with_add) {
    memset(c, 0, sizeof *c);
    c->x = T4(n, cin, hw, hw), c->w = T4(cout, cin, 3, 3), c->y = T4(n, cout, hw, hw), c->r = c->y;
    pn_tensor *ts[] = {&c->x, &c->w, &c->y, &c->r};
    pn_buffer *bs[] = {&c->bx, &c->bw, &c->by, &c->br};
    for (int i = 0; i < 4; i++) {
        pn_buffer_alloc(be, bs[i], pn_tensor_bytes(ts[i]));
        ts[i]->buf = bs[i];
        float *v = random_data(pn_tensor_numel(ts[i]), IN_NORMAL, 50 + (uint64_t)i);
        pn_tensor_set(ts[i], v);
        free(v);
    }
    pn_buffer_alloc(be, &c->bp, 4 * (size_t)cout * sizeof(float));
    pn_tensor *ps[] = {&c->gamma, &c->beta, &c->mean, &c->var};
    for (int i = 0; i < 4; i++) {
        *ps[i] = V(cout);
        ps[i]->buf = &c->bp;
        ps[i]->offset = (size_t)i * cout * sizeof(float);
        float *v = random_data(cout, i == 3 ? IN_POSITIVE : IN_NORMAL, 60 + (uint64_t)i);
        pn_tensor_set(ps[i], v);
        free(v);
    }
    pn_node *nd = c->nodes;
    nd[0].op = PN_OP_CONV2D_FWD, nd[0].p.conv2d_fwd = (pn_conv2d_params){1, 1, 1};
    nd[0].out[0] = &c->y, nd[0].in[0] = &c->x, nd[0].in[1] = &c->w;
    nd[1].op = PN_OP_BATCHNORM_INFER_FWD, nd[1].p.batchnorm_infer_fwd = (pn_batchnorm_params){1e-5f, 0.1f};
    nd[1].out[0] = &c->y, nd[1].in[0] = &c->y, nd[1].in[1] = &c->gamma, nd[1].in[2] = &c->beta;
    nd[1].in[3] = &c->mean, nd[1].in[4] = &c->var;
    int k = 2;
    if (with_add) {
        nd[k].op = PN_OP_ADD, nd[k].out[0] = &c->y, nd[k].in[0] = &c->y, nd[k].in[1] = &c->r;
        k++;
    }
    nd[k].op = PN_OP_RELU_FWD, nd[k].out[0] = &c->y, nd[k].in[0] = &c->y;
}

static int chain_len(bool with_add) { return with_add ? 4 : 3; }

static void chain_free(pn_backend *be, chain *c, bool with_add) {
    for (int i = 0; i < chain_len(with_add); i++) pn_node_release(be, &c->nodes[i]);
    pn_buffer *bs[] = {&c->bx, &c->bw, &c->by, &c->br, &c->bp};
    for (int i = 0; i < 5; i++) pn_buffer_free(bs[i]);
}

static void test_fused_chain(pn_backend *ref, pn_backend *cpu, int n, int cin, int cout, int hw, bool with_add) {
    chain a, b;
    chain_setup(ref, &a, n, cin, cout, hw, with_add);
    chain_setup(cpu, &b, n, cin, cout, hw, with_add);
    bool ok = true;
    for (int i = 0; i < chain_len(with_add); i++)
        ok = ok && pn_node_prepare(ref, &a.nodes[i]) == PN_OK && pn_node_prepare(cpu, &b.nodes[i]) == PN_OK;
    for (int i = 0; i < chain_len(with_add); i++)
        ok = ok && pn_node_compute(ref, &a.nodes[i]) == PN_OK && pn_node_compute(cpu, &b.nodes[i]) == PN_OK;
    CHECK_MSG(ok, "fused chain: %s", pn_last_error());
    int64_t cnt = pn_tensor_numel(&a.y);
    float *ya = malloc((size_t)cnt * 4), *yb = malloc((size_t)cnt * 4);
    pn_tensor_get(&a.y, ya);
    pn_tensor_get(&b.y, yb);
    double e = nmse(yb, ya, cnt);
    CHECK_MSG(e <= 1e-7, "fused conv+bn%s+relu %d->%d %dx%d: NMSE %.3g", with_add ? "+add" : "", cin, cout, hw, hw, e);
#ifdef PN_HAVE_ONEDNN
    /* the BN node alone, without its conv just before: refused when it was fused */
    const char *fuse = getenv("PN_CPU_FUSE");
    if (!fuse || strcmp(fuse, "0") != 0) CHECK(pn_node_compute(cpu, &b.nodes[1]) != PN_OK);
#endif
    free(ya);
    free(yb);
    chain_free(ref, &a, with_add);
    chain_free(cpu, &b, with_add);
}

int main(void) {
    pn_backend *ref = NULL, *cpu = NULL;
    if (pn_ref_backend_create(1, &ref) != PN_OK || pn_cpu_backend_create(2, &cpu) != PN_OK) {
        fprintf(stderr, "could not create backends: %s\n", pn_last_error());
        return 1;
    }
    /* convolutions: the model's kinds (7x7/2 stem, 3x3, 1x1/2 downsample, head with bias) and edge cases */
    test_conv(ref, cpu, 1, 3, 8, 17, 19, 7, 2, 3, 1, false);
    test_conv(ref, cpu, 2, 16, 16, 9, 11, 3, 1, 1, 1, false);
    test_conv(ref, cpu, 1, 24, 40, 13, 13, 3, 2, 1, 1, false);
    test_conv(ref, cpu, 2, 16, 32, 9, 9, 1, 2, 0, 1, false);
    test_conv(ref, cpu, 1, 16, 1, 15, 15, 3, 1, 1, 1, true);
    test_conv(ref, cpu, 3, 1, 5, 7, 6, 3, 1, 1, 1, true);
    test_conv(ref, cpu, 1, 32, 32, 5, 5, 3, 1, 1, 4, false);
    test_conv(ref, cpu, 1, 64, 64, 32, 32, 3, 1, 1, 1, false);
    test_conv(ref, cpu, 2, 8, 8, 4, 4, 1, 1, 0, 1, true);
    test_fused_chain(ref, cpu, 1, 16, 16, 9, false);
    test_fused_chain(ref, cpu, 2, 8, 24, 7, true);
    test_fused_chain(ref, cpu, 1, 3, 5, 6, true);
    test_bn(ref, cpu, 2, 16, 7, 9);
    test_bn(ref, cpu, 1, 1, 5, 3);
    test_bn(ref, cpu, 4, 64, 16, 16);
    test_pool(ref, cpu, 2, 8, 17, 16, 3, 2, 1);
    test_pool(ref, cpu, 1, 1, 5, 5, 2, 2, 0);
    test_shapes_misc(ref, cpu, 2, 5, 7, 9);
    test_shapes_misc(ref, cpu, 1, 1, 3, 3);
    test_shapes_misc(ref, cpu, 2, 16, 64, 64);
    test_se_albunet_ops(ref, cpu, 2, 5, 7, 9);
    test_se_albunet_ops(ref, cpu, 1, 1, 3, 3);
    test_se_albunet_ops(ref, cpu, 2, 16, 64, 64);
    test_se_albunet_ops(ref, cpu, 2, 256, 8, 8);
    pn_backend_close(ref);
    pn_backend_close(cpu);
    return check_report("test_cpu_ops");
}
