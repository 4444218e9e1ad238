/* test_graph: the graph's memory features on ref and cpu: channel views (a concatenation written in place equals
 * CONCAT exactly, and views are refused where the layout cannot hold them), in-place ReLU/ADD and recomputed
 * activations in training (the gradients of the plain program up to float rounding, with a smaller arena; on cpu, with
 * 3- and 16-channel tensors, those of ref). Channel counts are whole blocks of the cpu layout on AVX2 and AVX-512.
 * And an op a backend leaves out (a NULL slot of its dispatch table): supports_op names it and planning a graph that
 * needs it fails with one line naming the backend and the op, where the full table plans and runs. And each node's
 * spare region (arena bytes no tensor alive at the node uses): filled with NaN before every op, training is unchanged.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"
#include "backends/ref/ref.h"
#include "backends/register.h"
#include "check.h"
#include "core/graph.h"
#include "core/rng.h"

#define MAX_EXT 16

/* External tensors (parameters, their gradients, running statistics) of one graph, each in its own buffer. */
typedef struct externals {
    pn_buffer bufs[MAX_EXT];
    int n;
} externals;

static float *random_values(int64_t n, uint32_t stream, float mean) {
    float *v = malloc((size_t)n * sizeof *v);
    pn_rng r = pn_rng_make(0, PN_RNG_TEST, stream, 0);
    for (int64_t i = 0; i < n; i++) v[i] = mean + pn_rng_normal(&r);
    return v;
}

static void set_random(pn_tensor *t, uint32_t stream, float mean) {
    float *v = random_values(pn_tensor_numel(t), stream, mean);
    CHECK(pn_tensor_set(t, v) == PN_OK);
    free(v);
}

/* A tensor of `shape` in a fresh buffer of ex (zeroed, or random from `stream` when stream > 0). */
static pn_tensor ext_tensor(pn_backend *be, externals *ex, pn_tensor shape, uint32_t stream, float mean) {
    PN_ASSERT(ex->n < MAX_EXT);
    pn_buffer *b = &ex->bufs[ex->n++];
    PN_ASSERT(pn_buffer_alloc(be, b, pn_tensor_bytes(&shape)) == PN_OK);
    shape.buf = b;
    shape.offset = 0;
    if (stream) set_random(&shape, stream, mean);
    return shape;
}

static void ext_free(externals *ex) {
    for (int i = 0; i < ex->n; i++) pn_buffer_free(&ex->bufs[i]);
    ex->n = 0;
}

static float *get_all(const pn_tensor *t) {
    float *v = malloc((size_t)pn_tensor_numel(t) * sizeof *v);
    CHECK(pn_tensor_get(t, v) == PN_OK);
    return v;
}

static int64_t count_differences(const float *a, const float *b, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += memcmp(&a[i], &b[i], sizeof *a) != 0;
    return bad;
}

/* sum((a-b)^2) / sum(b^2) */
static double nmse(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return num / (den > 0 ? den : 1e-300);
}

/* ---------------- channel views ---------------- */

/* The channel block of the cpu backend's activation layout (8 with AVX2, 16 with AVX-512; 1 when plain or another
 * backend): channel slices are views only on multiples of it. */
static int64_t channel_block(pn_backend *be) {
    if (strcmp(be->name, "cpu") != 0) return 1;
    int blk = ((cpu_ctx *)be->ctx)->blk;
    return blk > 1 ? blk : 1;
}

/* cat(upsample(x), skip) once with CONCAT and once with the upsample and a copy writing into channel views. The
 * channel counts are whole blocks (x 2B, skip B, cat 3B, B the block or 8 on a plain layout), so the views hold
 * on every layout. */
static float *run_concat(pn_backend *be, bool views, const float *xv, const float *sv) {
    int64_t b = channel_block(be) > 1 ? channel_block(be) : 8, cx = 2 * b, cs = b, cc = cx + cs;
    pn_graph *g = pn_graph_new(be);
    pn_tensor *x = pn_graph_activation(g, pn_tensor_nchw(1, cx, 4, 4), "x");
    pn_tensor *skip = pn_graph_activation(g, pn_tensor_nchw(1, cs, 8, 8), "skip");
    pn_tensor *cat = pn_graph_activation(g, pn_tensor_nchw(1, cc, 8, 8), "cat");
    pn_graph_keep(g, x), pn_graph_keep(g, skip), pn_graph_keep(g, cat);
    pn_op_params none = {0}, one = {.scale = {1.0f}};
    if (views) {
        pn_tensor *up = pn_graph_channel_view(g, cat, 0, cx, "up"), *sk = pn_graph_channel_view(g, cat, cx, cs, "sk");
        CHECK_MSG(up && sk, "%s: channel views at block boundaries of a batch-1 tensor (%lld + %lld channels)",
                  be->name, (long long)cx, (long long)cs);
        if (!up || !sk) {
            pn_graph_free(g);
            return NULL;
        }
        pn_tensor *uo[] = {up}, *ui[] = {x}, *so[] = {sk}, *si[] = {skip};
        CHECK(pn_graph_add(g, PN_OP_UPSAMPLE2X_FWD, none, uo, ui, "up") == PN_OK);
        CHECK(pn_graph_add(g, PN_OP_SCALE, one, so, si, "copy") == PN_OK);
    } else {
        pn_tensor *u = pn_graph_activation(g, pn_tensor_nchw(1, cx, 8, 8), "u");
        pn_tensor *uo[] = {u}, *ui[] = {x}, *co[] = {cat}, *ci[] = {u, skip};
        CHECK(pn_graph_add(g, PN_OP_UPSAMPLE2X_FWD, none, uo, ui, "up") == PN_OK);
        CHECK(pn_graph_add(g, PN_OP_CONCAT, none, co, ci, "concat") == PN_OK);
    }
    CHECK(pn_graph_plan(g) == PN_OK);
    CHECK(pn_tensor_set(x, xv) == PN_OK);
    CHECK(pn_tensor_set(skip, sv) == PN_OK);
    CHECK(pn_graph_run(g, 0, pn_graph_size(g)) == PN_OK);
    if (views) /* x, skip and cat only: the views add nothing */
        CHECK_MSG(pn_graph_arena_bytes(g) <= (size_t)(cx * 16 + cs * 64 + cc * 64) * sizeof(float),
                  "%s: arena %zu bytes", be->name, pn_graph_arena_bytes(g));
    float *out = get_all(cat);
    pn_graph_free(g);
    return out;
}

static void test_views(pn_backend *be) {
    int64_t b = channel_block(be) > 1 ? channel_block(be) : 8;
    float *xv = random_values(2 * b * 16, 1, 0.0f), *sv = random_values(b * 64, 2, 0.0f);
    float *want = run_concat(be, false, xv, sv), *got = run_concat(be, true, xv, sv);
    if (got)
        CHECK_MSG(count_differences(got, want, 3 * b * 64) == 0, "%s: in-place concat differs from CONCAT", be->name);
    free(got), free(want), free(xv), free(sv);

    pn_graph *g = pn_graph_new(be);
    pn_tensor *two = pn_graph_activation(g, pn_tensor_nchw(2, 32, 4, 4), "batch 2");
    pn_tensor *one = pn_graph_activation(g, pn_tensor_nchw(1, 32, 4, 4), "batch 1");
    CHECK_MSG(!pn_graph_channel_view(g, two, 0, 16, "v"), "%s: a channel slice of a batch-2 tensor is no view",
              be->name);
    CHECK_MSG(!pn_graph_channel_view(g, one, 24, 16, "v"), "%s: a slice past the channels is no view", be->name);
    pn_tensor *off = pn_graph_channel_view(g, one, 4, 8, "v"); /* channels 4..11: inside the first block */
    if (channel_block(be) > 1)
        CHECK_MSG(!off, "cpu: a slice that splits a channel block is no view");
    else
        CHECK_MSG(off != NULL, "%s: NCHW batch 1 allows any channel slice", be->name);
    /* 24 = 16 + 8 channels: plain with 16-blocks, so a 16-channel slice of it (blocked) is no view there */
    pn_tensor *odd = pn_graph_activation(g, pn_tensor_nchw(1, 24, 4, 4), "24 channels");
    pn_tensor *head = pn_graph_channel_view(g, odd, 0, 16, "v");
    if (channel_block(be) == 16)
        CHECK_MSG(!head, "cpu: a blocked slice of a plain tensor is no view");
    else
        CHECK_MSG(head != NULL, "%s: channels 0..15 of 24 are a view with 8-blocks or a plain layout", be->name);
    pn_graph_free(g);
}

/* Backward refuses a program with views (they are for inference). */
static void test_views_no_backward(pn_backend *be) {
    pn_graph *g = pn_graph_new(be);
    pn_tensor *x = pn_graph_activation(g, pn_tensor_nchw(1, 16, 4, 4), "x");
    pn_tensor *cat = pn_graph_activation(g, pn_tensor_nchw(1, 32, 4, 4), "cat");
    pn_tensor *v = pn_graph_channel_view(g, cat, 0, 16, "v");
    if (v) {
        pn_op_params p = {0};
        pn_tensor *o[] = {v}, *i[] = {x};
        CHECK(pn_graph_add(g, PN_OP_RELU_FWD, p, o, i, "relu") == PN_OK);
        pn_tensor *d = pn_graph_activation(g, pn_tensor_nchw(1, 32, 4, 4), "dcat");
        CHECK_MSG(pn_graph_backward(g, pn_graph_size(g), cat, d) == PN_ERR_ARG, "%s: backward over views", be->name);
    }
    pn_graph_free(g);
}

/* ---------------- in place and recomputed in training ---------------- */

enum { W1, G1, B1, W2, G2, B2, N_PARAMS };

typedef struct train_result {
    float *grads[N_PARAMS];
    size_t arena;
} train_result;

/* Channels of the training program: whole 8- and 16-blocks, so on cpu every activation but x is blocked on both CPU
 * kinds (AVX2 and AVX-512), and x (3 channels, plain) meets them as the U-Net's input does. */
#define TRAIN_C 16
#define TRAIN_CX 3

static int64_t param_numel(int i) {
    return i == W1 ? TRAIN_C * TRAIN_CX * 9 : i == W2 ? TRAIN_C * TRAIN_C * 9 : TRAIN_C;
}

/* y = relu(bn2(conv2(h)) + h), h = relu(bn1(conv1(x))), backward from a random dy. `memory`: ReLU and ADD in place
 * and h recomputed in backward (as the U-Net trains), else every activation its own tensor, all kept. */
static train_result run_train(pn_backend *be, bool memory) {
    const int64_t n = 2, c = TRAIN_C, s = 6;
    externals ex = {0};
    pn_graph *g = pn_graph_new(be);
    pn_tensor shapes[N_PARAMS] = {pn_tensor_nchw(c, TRAIN_CX, 3, 3), pn_tensor_vec(c), pn_tensor_vec(c),
                                  pn_tensor_nchw(c, c, 3, 3),        pn_tensor_vec(c), pn_tensor_vec(c)};
    const float means[N_PARAMS] = {0, 1, 0, 0, 1, 0};
    pn_tensor *param[N_PARAMS], grad_t[N_PARAMS];
    for (int i = 0; i < N_PARAMS; i++) {
        pn_tensor v = ext_tensor(be, &ex, shapes[i], 10 + (uint32_t)i, means[i]);
        grad_t[i] = ext_tensor(be, &ex, shapes[i], 0, 0.0f);
        param[i] = pn_graph_external(g, v, &grad_t[i]);
    }
    pn_tensor *stats[4];
    for (int i = 0; i < 4; i++) stats[i] = pn_graph_external(g, ext_tensor(be, &ex, pn_tensor_vec(c), 0, 0), NULL);

    pn_tensor *x = pn_graph_activation(g, pn_tensor_nchw(n, TRAIN_CX, s, s), "x");
    pn_graph_keep(g, x), pn_graph_no_grad(g, x);
    pn_tensor *h = x;
    pn_op_params conv = {.conv2d_fwd = {1, 1, 1}}, bn = {.batchnorm_train_fwd = {1e-5f, 0.1f}}, none = {0};
    for (int layer = 0; layer < 2; layer++) {
        pn_tensor *w = param[3 * layer], *gamma = param[3 * layer + 1], *beta = param[3 * layer + 2];
        pn_tensor *y = pn_graph_activation(g, pn_tensor_nchw(n, c, s, s), "conv");
        pn_tensor *z = pn_graph_activation(g, pn_tensor_nchw(n, c, s, s), "bn");
        pn_tensor *sm = pn_graph_activation(g, pn_tensor_vec(c), "save_mean");
        pn_tensor *si = pn_graph_activation(g, pn_tensor_vec(c), "save_invstd");
        pn_tensor *co[] = {y}, *ci[] = {h, w, NULL};
        pn_tensor *bo[] = {z, sm, si, stats[2 * layer], stats[2 * layer + 1]}, *bi[] = {y, gamma, beta};
        CHECK(pn_graph_add(g, PN_OP_CONV2D_FWD, conv, co, ci, "conv") == PN_OK);
        CHECK(pn_graph_add(g, PN_OP_BATCHNORM_TRAIN_FWD, bn, bo, bi, "bn") == PN_OK);
        if (layer == 1) { /* the residual add */
            pn_tensor *sum = memory ? z : pn_graph_activation(g, pn_tensor_nchw(n, c, s, s), "sum");
            pn_tensor *ao[] = {sum}, *ai[] = {z, h};
            CHECK(pn_graph_add(g, PN_OP_ADD, none, ao, ai, "add") == PN_OK);
            z = sum;
        }
        pn_tensor *r = memory ? z : pn_graph_activation(g, pn_tensor_nchw(n, c, s, s), "relu");
        pn_tensor *ro[] = {r}, *ri[] = {z};
        CHECK(pn_graph_add(g, PN_OP_RELU_FWD, none, ro, ri, "relu") == PN_OK);
        if (memory && layer == 0) pn_graph_recompute(g, r);
        h = r;
    }
    pn_graph_keep(g, h);
    int fwd_end = pn_graph_size(g);
    pn_tensor *dy = pn_graph_activation(g, pn_tensor_nchw(n, c, s, s), "dy");
    pn_graph_keep(g, dy);
    CHECK(pn_graph_backward(g, fwd_end, h, dy) == PN_OK);
    CHECK(pn_graph_plan(g) == PN_OK);
    set_random(x, 1, 0.0f);
    set_random(dy, 2, 0.0f);
    CHECK(pn_graph_run(g, 0, pn_graph_size(g)) == PN_OK);
    train_result res;
    for (int i = 0; i < N_PARAMS; i++) res.grads[i] = get_all(&grad_t[i]);
    res.arena = pn_graph_arena_bytes(g);
    pn_graph_free(g);
    ext_free(&ex);
    return res;
}

/* The lean program's gradients on ref, kept to compare cpu's with (NULL until ref ran). */
static float *ref_grads[N_PARAMS];

static void test_train_memory(pn_backend *be) {
    train_result plain = run_train(be, false), lean = run_train(be, true);
    static const char *names[N_PARAMS] = {"w1", "gamma1", "beta1", "w2", "gamma2", "beta2"};
    bool is_ref = strcmp(be->name, "ref") == 0;
    double worst_vs_ref = 0;
    for (int i = 0; i < N_PARAMS; i++) {
        /* BATCHNORM_APPLY reproduces the BN output up to the rounding of the saved float statistics */
        double e = nmse(lean.grads[i], plain.grads[i], param_numel(i));
        CHECK_MSG(e <= 1e-10,
                  "%s: gradient of %s with in-place ReLU/ADD and recompute: NMSE %.3g against the plain "
                  "program",
                  be->name, names[i], e);
        /* the same program on another backend: float32 rounding apart (no ReLU input of this seed lies that close
         * to 0), whatever layout the cpu backend picked for 3 and 16 channels */
        if (!is_ref && ref_grads[i]) {
            double r = nmse(lean.grads[i], ref_grads[i], param_numel(i));
            worst_vs_ref = r > worst_vs_ref ? r : worst_vs_ref;
            CHECK_MSG(r <= 1e-10, "%s: gradient of %s with in-place ReLU/ADD and recompute: NMSE %.3g against ref",
                      be->name, names[i], r);
        }
        free(plain.grads[i]);
        if (is_ref)
            free(ref_grads[i]), ref_grads[i] = lean.grads[i];
        else
            free(lean.grads[i]);
    }
    CHECK_MSG(lean.arena < plain.arena, "%s: arena %zu bytes in place and recomputed, %zu plain", be->name, lean.arena,
              plain.arena);
    printf("%s: arena %zu bytes plain, %zu with in-place ReLU/ADD and recompute", be->name, plain.arena, lean.arena);
    if (!is_ref) printf("; gradients against ref: worst NMSE %.3g", worst_vs_ref);
    printf("\n");
}

/* A ref backend that fills each node's spare region with NaN around every op (the graph promises no tensor alive at
 * the node is there, so a backend may use it as scratch): training through it must give ref's gradients exactly. */
static pn_ref_op_fn plain_ops[PN_OP_COUNT];
static int64_t spare_nodes, spare_bytes_total;

static void fill_spare_with_nan(const pn_node *node) {
    float *at = (float *)((char *)node->spare_buf->host + node->spare_offset);
    for (size_t i = 0; i < node->spare_bytes / sizeof(float); i++) at[i] = NAN;
}

/* NaN in the spare region before the op (no input may be there) and after it (no output may be there). */
static pn_status scribble_spare_around_run(pn_node *node) {
    if (!node->spare_bytes) return plain_ops[node->op](node);
    CHECK_MSG(node->spare_buf && node->spare_offset + node->spare_bytes <= node->spare_buf->bytes,
              "node %s: spare region [%zu, +%zu) outside the arena of %zu bytes", node->label, node->spare_offset,
              node->spare_bytes, node->spare_buf ? node->spare_buf->bytes : 0);
    fill_spare_with_nan(node);
    pn_status st = plain_ops[node->op](node);
    fill_spare_with_nan(node);
    spare_nodes++, spare_bytes_total += (int64_t)node->spare_bytes;
    return st;
}

static void test_spare_regions(void) {
    static pn_ref_op_fn ops[PN_OP_COUNT];
    memcpy(plain_ops, pn_ref_ops, sizeof plain_ops);
    for (int op = 0; op < PN_OP_COUNT; op++) ops[op] = plain_ops[op] ? scribble_spare_around_run : NULL;
    pn_backend *be = NULL;
    CHECK(pn_ref_backend_create_with_ops(ops, &be) == PN_OK);
    if (!be) return;
    static const char *names[N_PARAMS] = {"w1", "gamma1", "beta1", "w2", "gamma2", "beta2"};
    for (int memory = 0; memory < 2; memory++) {
        train_result scribbled = run_train(be, memory);
        pn_backend *ref = NULL;
        CHECK(pn_backend_open("ref", 1, &ref) == PN_OK);
        train_result clean = run_train(ref, memory);
        pn_backend_close(ref);
        for (int i = 0; i < N_PARAMS; i++) {
            int64_t bad = count_differences(scribbled.grads[i], clean.grads[i], param_numel(i));
            CHECK_MSG(bad == 0, "NaN in the spare regions changed %lld values of the gradient of %s (%s program)",
                      (long long)bad, names[i], memory ? "lean" : "plain");
            free(scribbled.grads[i]), free(clean.grads[i]);
        }
    }
    /* not vacuous: most nodes had room (the in-place program's arena is smaller than the plain one's) */
    CHECK_MSG(spare_nodes > 10, "only %lld nodes had a spare region", (long long)spare_nodes);
    printf("spare regions: %lld nodes ran between NaN in their spare regions (%.1f kB on average); gradients "
           "unchanged\n",
           (long long)spare_nodes, spare_nodes ? (double)spare_bytes_total / (double)spare_nodes / 1e3 : 0.0);
    pn_backend_close(be);
}

/* x -> SCALE -> RELU_FWD -> y on `be`: the status of planning it; on success also runs it and checks y. */
static pn_status plan_scale_relu(pn_backend *be) {
    pn_graph *g = pn_graph_new(be);
    pn_tensor *x = pn_graph_activation(g, pn_tensor_nchw(1, 2, 3, 3), "x");
    pn_tensor *s = pn_graph_activation(g, pn_tensor_nchw(1, 2, 3, 3), "s");
    pn_tensor *y = pn_graph_activation(g, pn_tensor_nchw(1, 2, 3, 3), "y");
    pn_graph_keep(g, x), pn_graph_keep(g, y);
    pn_op_params half = {.scale = {0.5f}}, none = {0};
    pn_tensor *so[] = {s}, *si[] = {x}, *yo[] = {y}, *yi[] = {s};
    CHECK(pn_graph_add(g, PN_OP_SCALE, half, so, si, "half") == PN_OK);
    CHECK(pn_graph_add(g, PN_OP_RELU_FWD, none, yo, yi, "decoder.relu") == PN_OK);
    pn_status st = pn_graph_plan(g);
    if (st == PN_OK) {
        float xv[18], yv[18];
        for (int i = 0; i < 18; i++) xv[i] = (float)(i - 9);
        CHECK(pn_tensor_set(x, xv) == PN_OK);
        CHECK(pn_graph_run(g, 0, pn_graph_size(g)) == PN_OK);
        CHECK(pn_tensor_get(y, yv) == PN_OK);
        int bad = 0;
        for (int i = 0; i < 18; i++) bad += yv[i] != (xv[i] > 0 ? 0.5f * xv[i] : 0.0f);
        CHECK_MSG(bad == 0, "%s: scale + relu wrong in %d of 18 values", be->name, bad);
    }
    pn_graph_free(g);
    return st;
}

/* pn_node.in_last_use: relu x in place; s = x / 2; t = s / 2; y = t + x; relu y in place, y kept. Only the last
 * reader of a tensor sees it dead (t's scale for s, the add for t and x), never one read later (x by relu and the
 * first scale) nor a kept one (y). */
static void test_last_use(pn_backend *be) {
    pn_graph *g = pn_graph_new(be);
    pn_tensor *x = pn_graph_activation(g, pn_tensor_nchw(1, 2, 3, 3), "x");
    pn_tensor *s = pn_graph_activation(g, pn_tensor_nchw(1, 2, 3, 3), "s");
    pn_tensor *t = pn_graph_activation(g, pn_tensor_nchw(1, 2, 3, 3), "t");
    pn_tensor *y = pn_graph_activation(g, pn_tensor_nchw(1, 2, 3, 3), "y");
    pn_graph_keep(g, y);
    pn_op_params half = {.scale = {0.5f}}, none = {0};
    pn_tensor *ro[] = {x}, *ri[] = {x}, *so[] = {s}, *si[] = {x}, *to[] = {t}, *ti[] = {s}, *ao[] = {y}, *ai[] = {t, x},
              *yo[] = {y}, *yi[] = {y};
    CHECK(pn_graph_add(g, PN_OP_RELU_FWD, none, ro, ri, "relu") == PN_OK);
    CHECK(pn_graph_add(g, PN_OP_SCALE, half, so, si, "half") == PN_OK);
    CHECK(pn_graph_add(g, PN_OP_SCALE, half, to, ti, "quarter") == PN_OK);
    CHECK(pn_graph_add(g, PN_OP_ADD, none, ao, ai, "add") == PN_OK);
    CHECK(pn_graph_add(g, PN_OP_RELU_FWD, none, yo, yi, "relu y") == PN_OK);
    CHECK(pn_graph_plan(g) == PN_OK);
    const bool want[][2] = {{false}, {false}, {true}, {true, true}, {false}};
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 2; k++)
            CHECK_MSG(pn_graph_node(g, i)->in_last_use[k] == want[i][k], "%s: node %d input %d: in_last_use %d",
                      be->name, i, k, !want[i][k]);
    pn_graph_free(g);
}

/* A copy of ref's table with RELU_FWD cleared: a backend that leaves that op out. */
static void test_left_out_op(void) {
    static pn_ref_op_fn ops[PN_OP_COUNT];
    memcpy(ops, pn_ref_ops, sizeof ops);
    pn_backend *full = NULL, *lacking = NULL;
    CHECK(pn_ref_backend_create_with_ops(ops, &full) == PN_OK);
    CHECK(plan_scale_relu(full) == PN_OK);
    pn_backend_close(full);

    ops[PN_OP_RELU_FWD] = NULL;
    CHECK(pn_ref_backend_create_with_ops(ops, &lacking) == PN_OK);
    pn_node relu = {.op = PN_OP_RELU_FWD}, scale = {.op = PN_OP_SCALE};
    const char *why = pn_node_unsupported(lacking, &relu);
    CHECK_MSG(why && strcmp(why, PN_OP_LEFT_OUT) == 0, "supports_op of a NULL slot: %s", why ? why : "(runs)");
    CHECK(pn_node_unsupported(lacking, &scale) == NULL);
    CHECK(plan_scale_relu(lacking) == PN_ERR_UNSUPPORTED);
    const char *msg = pn_last_error();
    CHECK_MSG(strstr(msg, "backend ref") && strstr(msg, "relu_fwd") && strstr(msg, "decoder.relu") &&
                  strstr(msg, PN_OP_LEFT_OUT) && !strchr(msg, '\n'),
              "one line naming the backend, the op and the node: %s", msg);
    pn_backend_close(lacking);
}

/* ref, the oracle, implements every op of ops.def, OPTIONAL ones too: no slot of its table is NULL (a bare node of
 * each op is enough: ref judges it by the table and the dtypes of its tensors). */
static void test_ref_table_complete(pn_backend *be) {
    for (int op = 0; op < PN_OP_COUNT; op++) {
        pn_node n = {.op = (pn_op)op};
        const char *why = pn_node_unsupported(be, &n);
        CHECK_MSG(!why || strcmp(why, PN_OP_LEFT_OUT) != 0, "%s leaves out %s", be->name, pn_op_name((pn_op)op));
    }
}

/* The per-op facts of ops.def as core reads them. */
static void test_op_facts(void) {
    CHECK(pn_op_slot_optional(PN_OP_CONV2D_FWD, false, 2));        /* the bias */
    CHECK(!pn_op_slot_optional(PN_OP_CONV2D_FWD, false, 1));       /* the weight */
    CHECK(pn_op_slot_optional(PN_OP_CONV2D_BWD_WEIGHTS, true, 1)); /* db */
    CHECK(pn_op_slot_optional(PN_OP_SPLIT, true, 1));              /* db */
    CHECK(!pn_op_slot_optional(PN_OP_SPLIT, true, 0));             /* da */
    CHECK(!pn_op_optional(PN_OP_CONV2D_FWD) && pn_op_optional(PN_OP_CHANNEL_MUL));
}

int main(void) {
    pn_register_builtin_backends();
    test_op_facts();
    test_left_out_op();
    test_spare_regions();
    const char *names[] = {"ref", "cpu"};
    for (int i = 0; i < 2; i++) {
        pn_backend *be = NULL;
        if (pn_backend_open(names[i], 2, &be) != PN_OK) {
            SKIP("%s: backend not built (%s)", names[i], pn_last_error());
            continue;
        }
        if (i == 0) test_ref_table_complete(be);
        test_views(be);
        test_views_no_backward(be);
        test_last_use(be);
        test_train_memory(be);
        pn_backend_close(be);
    }
    for (int i = 0; i < N_PARAMS; i++) free(ref_grads[i]);
    return check_report("test_graph");
}
