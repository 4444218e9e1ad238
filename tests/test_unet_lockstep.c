/* test_unet_lockstep: the U-Net's training program (forward, loss, backward: in-place ReLU/ADD, recomputed BN
 * outputs, max-pool, upsample, concat/split, 3- and 1-channel tensors next to blocked ones) run on cpu and ref node
 * by node. After each node the cpu outputs are compared with ref's and then overwritten with them, so every node
 * starts from the same inputs and only its own rounding counts: no float32 chaos (a ReLU input near 0 rounded to the
 * other side) builds up, and the bound can be tight on any CPU, whatever channel block the cpu backend picked. The
 * cpu backend's ReLU joins are off for that (PN_CPU_FUSE=0); a whole step with them is then checked against one
 * without. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backends/register.h"
#include "core/rng.h"
#include "core/unet.h"
#include "tests/check.h"

#define N 2
#define S 64
#define SEED 99
#define TOL 1e-5 /* normalized error sqrt(sum (cpu - ref)^2 / sum ref^2) of one node's output */

static void set_input(pn_unet *m) {
    int64_t nx = N * 3 * S * S, nt = N * S * S;
    float *x = malloc((size_t)nx * sizeof *x), *t = malloc((size_t)nt * sizeof *t);
    pn_rng r = pn_rng_make(SEED, PN_RNG_TEST, 1, 0);
    for (int64_t i = 0; i < nx; i++) x[i] = pn_rng_normal(&r);
    for (int64_t i = 0; i < nt; i++) { /* a disc per image */
        int64_t n = i / (S * S), y = i / S % S, xx = i % S;
        t[i] = (float)((y - 20 - 10 * n) * (y - 20 - 10 * n) + (xx - 30) * (xx - 30) < 100);
    }
    CHECK(pn_tensor_set(pn_unet_input(m), x) == PN_OK);
    CHECK(pn_tensor_set(pn_unet_target(m), t) == PN_OK);
    free(x), free(t);
}

/* The model with seeded weights, planned for training, inputs set, gradients zeroed; NULL (and a FAIL) if not. */
static pn_unet *make_model(pn_backend *be) {
    pn_unet *m = NULL;
    bool ok = pn_unet_create("resnet18", be, &m) == PN_OK && pn_unet_init_weights(m, SEED) == PN_OK &&
              pn_unet_plan(m, N, S, S, PN_UNET_TRAIN) == PN_OK;
    CHECK_MSG(ok, "%s: the U-Net planned for training: %s", be->name, pn_last_error());
    if (!ok) {
        pn_unet_free(m);
        return NULL;
    }
    set_input(m);
    CHECK(pn_unet_zero_grad(m) == PN_OK);
    return m;
}

/* Normalized error of `got` against `want` (0 when both are 0). */
static double norm_error(const float *got, const float *want, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        num += d * d;
        den += (double)want[i] * want[i];
    }
    return num == 0 ? 0 : sqrt(num / fmax(den, 1e-300));
}

/* Runs node i on both programs, checks every output of it, then gives cpu ref's values. Returns the worst error. */
static double step(pn_graph *gr, pn_graph *gc, int i) {
    pn_node *nr = pn_graph_node(gr, i), *nc = pn_graph_node(gc, i);
    CHECK(nr->op == nc->op);
    CHECK(pn_graph_run(gr, i, i + 1) == PN_OK);
    CHECK(pn_graph_run(gc, i, i + 1) == PN_OK);
    double worst = 0;
    for (int o = 0; o < PN_OP_MAX_IO; o++) {
        if (!nr->out[o]) continue;
        int64_t n = pn_tensor_numel(nr->out[o]);
        float *want = malloc((size_t)n * sizeof *want), *got = malloc((size_t)n * sizeof *got);
        CHECK(pn_tensor_get(nr->out[o], want) == PN_OK && pn_tensor_get(nc->out[o], got) == PN_OK);
        double e = norm_error(got, want, n);
        CHECK_MSG(e <= TOL, "node %d %s, output %d (%s): cpu against ref: normalized error %.3g > %g", i,
                  pn_op_name(nr->op), o, nr->out[o]->name ? nr->out[o]->name : "", e, TOL);
        worst = fmax(worst, e);
        CHECK(pn_tensor_set(nc->out[o], want) == PN_OK);
        free(want), free(got);
    }
    return worst;
}

/* One training step (forward, loss, backward) of a fresh model: the loss, the logits' sum and the gradient norm. */
static void train_step(pn_backend *be, double out[3]) {
    pn_unet *m = make_model(be);
    if (!m) return;
    float loss = 0;
    CHECK(pn_unet_forward(m) == PN_OK && pn_unet_loss(m, 1.0f, 1.0f, 0.0f, &loss) == PN_OK &&
          pn_unet_backward(m, 1.0f) == PN_OK && pn_unet_grad_norm(m, &out[2]) == PN_OK);
    int64_t n = pn_tensor_numel(pn_unet_logits(m));
    float *y = malloc((size_t)n * sizeof *y);
    CHECK(pn_tensor_get(pn_unet_logits(m), y) == PN_OK);
    out[0] = loss, out[1] = 0;
    for (int64_t i = 0; i < n; i++) out[1] += y[i];
    free(y);
    pn_unet_free(m);
}

/* The cpu backend joins a ReLU to the BatchNorm / add next to it (PN_CPU_FUSE, on by default), which node by node
 * cannot see: the same step with and without the joins gives the same bits (the same arithmetic in one pass). */
static void check_joins(pn_backend *unjoined) {
    pn_backend *joined = NULL;
    unsetenv("PN_CPU_FUSE");
    CHECK(pn_backend_open("cpu", 2, &joined) == PN_OK);
    if (!joined) return;
    double a[3] = {0}, b[3] = {0};
    train_step(unjoined, a);
    train_step(joined, b);
    CHECK_MSG(a[0] == b[0] && a[1] == b[1] && a[2] == b[2],
              "ReLU joins change the step: loss %.9g / %.9g, logit sum %.9g / %.9g, grad norm %.9g / %.9g", a[0], b[0],
              a[1], b[1], a[2], b[2]);
    printf("one training step with and without ReLU joins: loss %.9g, logit sum %.9g, grad norm %.9g (identical)\n",
           b[0], b[1], b[2]);
    pn_backend_close(joined);
}

int main(void) {
    pn_register_builtin_backends();
    pn_backend *ref = NULL, *cpu = NULL;
    CHECK_MSG(pn_backend_open("ref", 2, &ref) == PN_OK, "ref: %s", pn_last_error());
    if (!ref) return check_report("test_unet_lockstep");
    setenv("PN_CPU_FUSE", "0", 1); /* node by node: no node may do another's work */
    if (pn_backend_open("cpu", 2, &cpu) != PN_OK) {
        SKIP("cpu: backend not built (%s)", pn_last_error());
        pn_backend_close(ref);
        return check_report("test_unet_lockstep");
    }
    pn_unet *mr = make_model(ref), *mc = make_model(cpu);
    pn_graph *gr = mr ? pn_unet_graph(mr) : NULL, *gc = mc ? pn_unet_graph(mc) : NULL;
    CHECK_MSG(gr && gc && pn_graph_size(gr) == pn_graph_size(gc), "the same program planned on ref and cpu");
    if (gr && gc && pn_graph_size(gr) == pn_graph_size(gc)) {
        int nodes = pn_graph_size(gr), worst_node = 0;
        double worst = 0;
        for (int i = 0; i < nodes; i++) {
            double e = step(gr, gc, i);
            if (e > worst) worst = e, worst_node = i;
        }
        printf("cpu against ref over %d nodes of the resnet18 U-Net's training program (%dx3x%dx%d): worst normalized "
               "error %.3g (node %d, %s)\n",
               nodes, N, S, S, worst, worst_node, pn_op_name(pn_graph_node(gr, worst_node)->op));
    }
    pn_unet_free(mr), pn_unet_free(mc);
    check_joins(cpu);
    pn_backend_close(ref), pn_backend_close(cpu);
    return check_report("test_unet_lockstep");
}
