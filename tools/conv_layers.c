/* conv_layers: a per-layer GFLOP/s benchmark of any architecture's convolutions on any backend. */
#include "conv_layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/options.h"
#include "core/rng.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct conv_bufs {
    pn_buffer bx, bw, by, bb;
    pn_tensor x, w, y, b;
} conv_bufs;

static pn_status alloc_tensor(pn_backend *be, pn_buffer *buf, pn_tensor *t, pn_tensor shape, uint32_t seed) {
    *t = shape;
    PN_TRY(pn_buffer_alloc(be, buf, pn_tensor_bytes(t)));
    t->buf = buf;
    int64_t n = pn_tensor_numel(t);
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return pn_error(PN_ERR_NOMEM, "bench: out of memory");
    pn_rng r = pn_rng_make(7, 99, seed, 0);
    for (int64_t i = 0; i < n; i++) v[i] = pn_rng_uniform_range(&r, -1.0f, 1.0f);
    pn_status st = pn_tensor_set(t, v);
    free(v);
    return st;
}

static void free_bufs(conv_bufs *c) {
    pn_buffer_free(&c->bx);
    pn_buffer_free(&c->bw);
    pn_buffer_free(&c->by);
    pn_buffer_free(&c->bb);
}

/* Median/min/max milliseconds of `reps` runs of the node after `warmup` runs. */
static pn_status time_node(pn_backend *be, pn_node *node, int warmup, int reps, double ms[3]) {
    PN_TRY(pn_node_prepare(be, node));
    double *t = calloc((size_t)reps, sizeof *t);
    pn_status st = PN_OK;
    for (int i = 0; i < warmup + reps && st == PN_OK; i++) {
        double t0 = pn_now();
        st = pn_node_compute(be, node);
        if (st == PN_OK) st = pn_backend_synchronize(be);
        if (i >= warmup) t[i - warmup] = (pn_now() - t0) * 1e3;
    }
    pn_node_release(be, node);
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    ms[0] = t[reps / 2], ms[1] = t[0], ms[2] = t[reps - 1];
    free(t);
    return st;
}

pn_status pn_bench_conv_layers(pn_backend *be, const pn_arch *arch, int size, int batch, int warmup, int reps,
                               int backward, FILE *to) {
    pn_conv_shape layers[128];
    int n;
    PN_TRY(pn_arch_conv_shapes(arch, size, size, layers, 128, &n));
    const char *kinds[3] = {"fwd", "bwd_data", "bwd_weights"};
    double total[3] = {0, 0, 0};
    fprintf(to, "%-34s %5s %5s %4s %3s %5s %3s %-11s %9s %9s %9s %8s\n", "layer", "cin", "cout", "k", "g", "in", "x",
            "pass", "med_ms", "min_ms", "max_ms", "GFLOP/s");
    for (int i = 0; i < n; i++) {
        pn_conv_shape *l = &layers[i];
        int oh = (l->h + 2 * l->pad - l->k) / l->stride + 1, ow = (l->w + 2 * l->pad - l->k) / l->stride + 1;
        conv_bufs c;
        memset(&c, 0, sizeof c);
        pn_status st = alloc_tensor(be, &c.bx, &c.x, pn_tensor_nchw(batch, l->cin, l->h, l->w), 1);
        if (!st) st = alloc_tensor(be, &c.bw, &c.w, pn_tensor_nchw(l->cout, l->cin / l->groups, l->k, l->k), 2);
        if (!st) st = alloc_tensor(be, &c.by, &c.y, pn_tensor_nchw(batch, l->cout, oh, ow), 3);
        if (!st) st = alloc_tensor(be, &c.bb, &c.b, pn_tensor_vec(l->cout), 4);
        double flops = 2.0 * batch * (l->cin / l->groups) * l->cout * l->k * l->k * (double)oh * ow;
        for (int kind = 0; kind < (backward ? 3 : 1) && st == PN_OK; kind++) {
            pn_node node;
            memset(&node, 0, sizeof node);
            node.label = l->name;
            pn_conv2d_params p = {l->stride, l->pad, l->groups};
            if (kind == 0) {
                node.op = PN_OP_CONV2D_FWD, node.p.conv2d_fwd = p;
                node.out[0] = &c.y, node.in[0] = &c.x, node.in[1] = &c.w, node.in[2] = l->bias ? &c.b : NULL;
            } else if (kind == 1) {
                node.op = PN_OP_CONV2D_BWD_DATA, node.p.conv2d_bwd_data = p;
                node.out[0] = &c.x, node.in[0] = &c.y, node.in[1] = &c.w;
            } else {
                node.op = PN_OP_CONV2D_BWD_WEIGHTS, node.p.conv2d_bwd_weights = p;
                node.out[0] = &c.w, node.out[1] = l->bias ? &c.b : NULL, node.in[0] = &c.y, node.in[1] = &c.x;
            }
            double ms[3];
            st = time_node(be, &node, warmup, reps, ms);
            if (st) break;
            total[kind] += ms[0] * l->count;
            fprintf(to, "%-34s %5d %5d %4d %3d %5d %3d %-11s %9.3f %9.3f %9.3f %8.1f\n", l->name, l->cin, l->cout, l->k,
                    l->groups, l->h, l->count, kinds[kind], ms[0], ms[1], ms[2], flops / (ms[0] * 1e-3) / 1e9);
        }
        free_bufs(&c);
        if (st) return st;
    }
    for (int kind = 0; kind < (backward ? 3 : 1); kind++)
        fprintf(to, "all convs of the model, %s, batch %d, size %d: %.1f ms (sum of medians x count)\n", kinds[kind],
                batch, size, total[kind]);
    return PN_OK;
}

/* Prepares `node` with the cpu backend's algorithm `algo`. */
static pn_status prepare_with(pn_backend *be, pn_node *node, const char *algo) {
    PN_TRY(pn_backend_set_conv_algo(be, algo));
    return pn_node_prepare(be, node);
}

/* Largest |a - b| over n floats, relative to the largest |b|. */
static double rel_max_diff(const float *a, const float *b, int64_t n) {
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(a[i] - (double)b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return scale > 0 ? worst / scale : worst;
}

pn_status pn_bench_conv_algos(pn_backend *be, const pn_arch *arch, int size, int batch, int warmup, int reps,
                              int backward, FILE *to) {
    if (strcmp(be->name, "cpu") != 0) return pn_error(PN_ERR_ARG, "--algos compares the cpu backend's algorithms");
    pn_conv_shape layers[128];
    int n;
    PN_TRY(pn_arch_conv_shapes(arch, size, size, layers, 128, &n));
    const char *kinds[3] = {"fwd", "bwd_data", "bwd_weights"};
    double total[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
    fprintf(to, "%-34s %5s %5s %5s %3s %-11s %10s %10s %8s %10s\n", "layer", "cin", "cout", "in", "x", "pass",
            "direct_ms", "wino_ms", "speedup", "rel_diff");
    for (int i = 0; i < n; i++) {
        pn_conv_shape *l = &layers[i];
        if (l->k != 3 || l->stride != 1 || l->groups != 1) continue; /* Winograd: dense 3x3 stride-1 only */
        conv_bufs c[2];
        memset(c, 0, sizeof c);
        pn_status st = PN_OK;
        for (int a = 0; a < 2 && st == PN_OK; a++) { /* same seeds: both algorithms see the same data */
            st = alloc_tensor(be, &c[a].bx, &c[a].x, pn_tensor_nchw(batch, l->cin, l->h, l->w), 1);
            if (!st) st = alloc_tensor(be, &c[a].bw, &c[a].w, pn_tensor_nchw(l->cout, l->cin, 3, 3), 2);
            if (!st) st = alloc_tensor(be, &c[a].by, &c[a].y, pn_tensor_nchw(batch, l->cout, l->h, l->w), 3);
            if (!st) st = alloc_tensor(be, &c[a].bb, &c[a].b, pn_tensor_vec(l->cout), 4);
        }
        for (int kind = 0; kind < (backward ? 3 : 1) && st == PN_OK; kind++) {
            pn_node node[2];
            double *t = calloc((size_t)(2 * reps), sizeof *t);
            if (!t) st = pn_error(PN_ERR_NOMEM, "bench: out of memory");
            for (int a = 0; a < 2 && st == PN_OK; a++) {
                pn_node *nd = &node[a];
                memset(nd, 0, sizeof *nd);
                nd->label = l->name;
                pn_conv2d_params p = {1, 1, 1};
                if (kind == 0) {
                    nd->op = PN_OP_CONV2D_FWD, nd->p.conv2d_fwd = p;
                    nd->out[0] = &c[a].y, nd->in[0] = &c[a].x, nd->in[1] = &c[a].w,
                    nd->in[2] = l->bias ? &c[a].b : NULL;
                } else if (kind == 1) {
                    nd->op = PN_OP_CONV2D_BWD_DATA, nd->p.conv2d_bwd_data = p;
                    nd->out[0] = &c[a].x, nd->in[0] = &c[a].y, nd->in[1] = &c[a].w;
                } else {
                    nd->op = PN_OP_CONV2D_BWD_WEIGHTS, nd->p.conv2d_bwd_weights = p;
                    nd->out[0] = &c[a].w, nd->out[1] = l->bias ? &c[a].b : NULL, nd->in[0] = &c[a].y,
                    nd->in[1] = &c[a].x;
                }
                st = prepare_with(be, nd, a ? "winograd" : "direct");
            }
            for (int r = 0; r < warmup + reps && st == PN_OK; r++)
                for (int a = 0; a < 2 && st == PN_OK; a++) {
                    double t0 = pn_now();
                    st = pn_node_compute(be, &node[a]);
                    if (st == PN_OK) st = pn_backend_synchronize(be);
                    if (r >= warmup) t[a * reps + r - warmup] = (pn_now() - t0) * 1e3;
                }
            double diff = 0;
            if (st == PN_OK && kind < 2) { /* the outputs of the last run (bwd_weights accumulated: not compared) */
                pn_tensor *o0 = node[0].out[0], *o1 = node[1].out[0];
                int64_t numel = pn_tensor_numel(o0);
                float *v0 = malloc((size_t)numel * sizeof *v0), *v1 = malloc((size_t)numel * sizeof *v1);
                if (v0 && v1 && pn_tensor_get(o0, v0) == PN_OK && pn_tensor_get(o1, v1) == PN_OK)
                    diff = rel_max_diff(v1, v0, numel);
                free(v0);
                free(v1);
            }
            for (int a = 0; a < 2; a++)
                if (node[a].state) pn_node_release(be, &node[a]);
            if (st == PN_OK) {
                qsort(t, (size_t)reps, sizeof *t, cmp_double);
                qsort(t + reps, (size_t)reps, sizeof *t, cmp_double);
                double md = t[reps / 2], mw = t[reps + reps / 2];
                total[kind][0] += md * l->count, total[kind][1] += mw * l->count;
                total[kind][2] += fmin(md, mw) * l->count;
                fprintf(to, "%-34s %5d %5d %5d %3d %-11s %10.3f %10.3f %8.2f %10.2e\n", l->name, l->cin, l->cout, l->h,
                        l->count, kinds[kind], md, mw, md / mw, diff);
            }
            free(t);
        }
        for (int a = 0; a < 2; a++) free_bufs(&c[a]);
        if (st) return st;
    }
    for (int kind = 0; kind < (backward ? 3 : 1); kind++)
        fprintf(to,
                "3x3 stride-1 convs of the model x count, %s, batch %d, size %d: direct %.1f ms, Winograd %.1f ms, "
                "per-layer best %.1f ms\n",
                kinds[kind], batch, size, total[kind][0], total[kind][1], total[kind][2]);
    return PN_OK;
}
