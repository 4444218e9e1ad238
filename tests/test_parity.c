/* test_parity: the U-Net on every available backend against PyTorch + smp (golden made by
 * tests/ref/make_parity_golden.py from weights that `pneumoseg init --seed 1234` writes). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"
#include "backends/register.h"
#include "core/safetensors.h"
#include "core/unet.h"
#include "tests/check.h"
#include "tests/golden.h"

#define GOLDEN "ref/golden/parity_resnet34.safetensors"
#define SEED 1234
#define SAMPLE 1024

static pn_st_file *golden;

/* Max |ours - golden| for logits; checks it against max(1e-4, 4 x PyTorch's own float32 error). The golden's float32
 * errors are the worst over several PyTorch float32 runs (see its script: one run is one draw of float32 luck). */
static void compare_logits(const char *be, pn_unet *m, const char *key) {
    int64_t n = 0;
    double *want = golden_get(golden, key, &n);
    char errkey[64];
    snprintf(errkey, sizeof errkey, "%s_err32", key);
    double err32 = golden_scalar(golden, errkey), tol = fmax(1e-4, 4 * err32);
    float *got = malloc((size_t)n * sizeof *got);
    CHECK(pn_tensor_get(pn_unet_logits(m), got) == PN_OK);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(got[i] - want[i]));
    printf("  %s %s: max |diff| %.3g (PyTorch f32 %.3g, tolerance %.3g)\n", be, key, worst, err32, tol);
    CHECK_MSG(worst <= tol, "%s %s max abs diff %g > %g", be, key, worst, tol);
    free(got);
    free(want);
}

/* Checks a step that the rest depends on; false (after a FAIL line) stops the caller. */
static bool step_ok(const char *be, const char *what, pn_status st) {
    CHECK_MSG(st == PN_OK, "%s: %s: %s", be, what, pn_last_error());
    return st == PN_OK;
}

static void run_eval(const char *be, pn_unet *m, int n, int s, const char *xkey, const char *key) {
    if (!step_ok(be, "eval plan", pn_unet_plan(m, n, s, s, PN_UNET_EVAL))) return;
    CHECK(golden_set(golden, pn_unet_input(m), xkey) == PN_OK);
    CHECK(pn_unet_forward(m) == PN_OK);
    compare_logits(be, m, key);
}

/* Normalized error of every parameter's gradient sample. A float32 backend's gradients are one draw of float32
 * chaos (ReLU masks flipped by rounding): tolerance max(1e-3, 4 x the worst of PyTorch's float32 draws). ref, the
 * oracle, accumulates in double and lands ~1e-5 from float64, so it is held to 1e-3: the graph's backward rules
 * stay checked tightly against PyTorch (the float32 backends are held to ref node by node in test_unet_lockstep). */
static void compare_grads(const char *be, pn_unet *m) {
    bool oracle = strcmp(be, "ref") == 0;
    double worst = 0, worst_ratio = 0;
    const char *worst_name = "";
    for (int i = 0; i < pn_unet_num_params(m); i++) {
        pn_unet_param *p = pn_unet_param_at(m, i);
        char key[160];
        snprintf(key, sizeof key, "grad_err32/%s", p->name);
        double tol = oracle ? 1e-3 : fmax(1e-3, 4 * golden_scalar(golden, key)), err = INFINITY;
        bool found = golden_grad_error(golden, p->name, &p->grad, &err);
        CHECK_MSG(found && err <= tol, "%s gradient of %s: normalized error %.3g > %.3g", be, p->name, err, tol);
        if (err > worst) worst = err, worst_name = p->name;
        worst_ratio = fmax(worst_ratio, err / tol);
    }
    printf("  %s gradients: worst normalized error %.3g (%s), worst error/tolerance %.2f\n", be, worst, worst_name,
           worst_ratio);
}

/* Running statistics against the golden's `prefix` ("stat1/" after the first forward, "stat/" at the end). */
static void compare_stats(const char *be, pn_unet *m, const char *prefix, double tol) {
    double worst = 0;
    for (int i = 0; i < pn_unet_num_bns(m); i++) {
        pn_unet_bn *b = pn_unet_bn_at(m, i);
        for (int which = 0; which < 2; which++) {
            char key[160];
            snprintf(key, sizeof key, "%s%s.%s", prefix, b->prefix, which ? "running_var" : "running_mean");
            int64_t n = 0;
            double *want = golden_get(golden, key, &n);
            pn_tensor *t = which ? &b->running_var : &b->running_mean;
            float *got = malloc((size_t)n * sizeof *got);
            CHECK(want && n == pn_tensor_numel(t) && pn_tensor_get(t, got) == PN_OK);
            for (int64_t j = 0; want && j < n; j++)
                worst = fmax(worst, fabs(got[j] - want[j]) / fmax(1.0, fabs(want[j])));
            free(got);
            free(want);
        }
    }
    printf("  %s running statistics (%s): worst relative error %.3g (tolerance %.3g)\n", be, prefix, worst, tol);
    CHECK_MSG(worst <= tol, "%s running stats (%s) error %g > %g", be, prefix, worst, tol);
}

/* Copies every parameter gradient to host memory (save) or back (restore). */
static void copy_grads(pn_unet *m, float **saved, bool save) {
    for (int i = 0; i < pn_unet_num_params(m); i++) {
        pn_tensor *g = &pn_unet_param_at(m, i)->grad;
        if (save) saved[i] = malloc((size_t)pn_tensor_numel(g) * sizeof(float));
        CHECK((save ? pn_tensor_get(g, saved[i]) : pn_tensor_set(g, saved[i])) == PN_OK);
        if (!save) free(saved[i]);
    }
}

/* The global gradient norm matches PyTorch's; clip_grad_norm_ to half of it halves it. The gradients are
 * restored afterwards (the sequence must stay the golden's). */
static void check_clip(const char *be, pn_unet *m) {
    double want = golden_scalar(golden, "grad_norm"), err32 = golden_scalar(golden, "grad_norm_err32"), norm = 0,
           clipped = 0;
    double tol = fmax(1e-4, 4 * err32);
    float **saved = calloc((size_t)pn_unet_num_params(m), sizeof *saved);
    copy_grads(m, saved, true);
    CHECK(pn_unet_grad_norm(m, &norm) == PN_OK);
    printf(
        "  %s global gradient norm %.6f (PyTorch f64 %.6f), relative error %.2g (PyTorch f32 %.2g, tolerance %.2g)\n",
        be, norm, want, fabs(norm - want) / want, err32, tol);
    CHECK_MSG(fabs(norm - want) <= tol * want, "%s gradient norm %g vs %g", be, norm, want);
    CHECK(pn_unet_clip_grad_norm(m, want / 2, &norm) == PN_OK);
    CHECK(pn_unet_grad_norm(m, &clipped) == PN_OK);
    CHECK_MSG(fabs(clipped - want / 2) <= tol * want, "%s clipped norm %g, wanted %g", be, clipped, want / 2);
    copy_grads(m, saved, false);
    free(saved);
}

static void run_train(const char *be, pn_unet *m) {
    if (!step_ok(be, "train plan", pn_unet_plan(m, 2, 64, 64, PN_UNET_TRAIN))) return;
    CHECK(golden_set(golden, pn_unet_input(m), "x64") == PN_OK);
    CHECK(golden_set(golden, pn_unet_target(m), "t64") == PN_OK);
    int64_t nl = 0;
    double *losses = golden_get(golden, "losses", &nl), *losses_err32 = golden_get(golden, "losses_err32", &nl);
    CHECK_MSG(losses && losses_err32, "the golden lacks the losses or their float32 errors (an old file?)");
    if (!losses || !losses_err32) {
        free(losses), free(losses_err32);
        return;
    }
    double drift32 = 0;
    for (int it = 0; it < 6; it++) {
        float loss = NAN;
        CHECK(pn_unet_zero_grad(m) == PN_OK);
        CHECK(pn_unet_forward(m) == PN_OK);
        CHECK(pn_unet_loss(m, 3.0f, 1.0f, 4.0f, &loss) == PN_OK);
        double rel = fabs(loss - losses[it]) / fabs(losses[it]);
        /* PyTorch float32's drift from float64 so far (chaos grows with steps, so the running maximum) */
        drift32 = fmax(drift32, losses_err32[it]);
        double tol = it == 0 ? 1e-5 : fmax(1e-4, 4 * drift32);
        printf(
            "  %s iteration %d: loss %.7f (PyTorch f64 %.7f), relative error %.2g (PyTorch f32 %.2g, tolerance %.2g)\n",
            be, it, loss, losses[it], rel, drift32, tol);
        CHECK_MSG(rel <= tol, "%s loss at iteration %d off by %g", be, it, rel);
        if (it == 0) {
            compare_logits(be, m, "train64");
            compare_stats(be, m, "stat1/", 1e-4);
        }
        if (it == 5) break;
        CHECK(pn_unet_backward(m, 1.0f) == PN_OK);
        if (it == 0) {
            compare_grads(be, m);
            check_clip(be, m);
        }
        pn_adam_params ap = {1e-4f, 0.9f, 0.999f, 1e-3f, 1e-4f, it + 1}; /* as the golden: see its script */
        CHECK(pn_unet_adam_step(m, &ap) == PN_OK);
    }
    free(losses);
    free(losses_err32);
    compare_stats(be, m, "stat/", fmax(1e-4, 4 * golden_scalar(golden, "stat_err32")));
}

/* Runs the parity checks on backend `name`; `conv_algo` (cpu only, else NULL) picks its convolution algorithm. */
static void run_backend(const char *name, const char *conv_algo) {
    pn_backend *be;
    if (pn_backend_open(name, 0, &be) != PN_OK) {
        SKIP("parity on %s: %s", name, pn_last_error());
        return;
    }
    if (conv_algo && !pn_cpu_winograd_available()) {
        SKIP("parity on %s with --conv-algo %s: the same as direct here (%s)", name, conv_algo, pn_cpu_winograd_why());
        pn_backend_close(be);
        return;
    }
    if (conv_algo && pn_cpu_set_conv_algo(be, conv_algo) != PN_OK) {
        SKIP("parity on %s with --conv-algo %s: %s", name, conv_algo, pn_last_error());
        pn_backend_close(be);
        return;
    }
    if (conv_algo) printf("  %s with --conv-algo %s:\n", name, conv_algo);
    pn_unet *m = NULL;
    if (!step_ok(name, "creating the model", pn_unet_create("resnet34", be, &m)) ||
        !step_ok(name, "initialising the weights", pn_unet_init_weights(m, SEED))) {
        pn_unet_free(m);
        pn_backend_close(be);
        return;
    }
    double t0 = pn_now();
    run_eval(name, m, 2, 64, "x64", "eval64");
    run_eval(name, m, 1, 128, "x128", "eval128");
    run_train(name, m);
    printf("  %s: %.1f s\n", name, pn_now() - t0);
    pn_unet_free(m);
    pn_backend_close(be);
}

int main(int argc, char **argv) {
    const char *only = argc > 2 && strcmp(argv[1], "-b") == 0 ? argv[2] : NULL;
    pn_register_builtin_backends();
    if (pn_st_open(GOLDEN, &golden) != PN_OK) {
        fprintf(stderr, "%s\n", pn_last_error());
        return 1;
    }
    char names[128];
    snprintf(names, sizeof names, "%s,cuda", pn_backend_builtin_names());
    for (char *save = NULL, *b = strtok_r(names, ",", &save); b; b = strtok_r(NULL, ",", &save))
        if (!only || strcmp(only, b) == 0) run_backend(b, NULL);
    /* auto on the cpu backend: Winograd where it measured faster and its memory fits in the arena's spare room; and
     * Winograd on every 3x3 stride-1 layer, forward and backward, working in spare room where it fits (without
     * Winograd on this CPU: SKIP, both are direct) */
    if (!only || strcmp(only, "cpu") == 0) run_backend("cpu", "auto");
    if (!only || strcmp(only, "cpu") == 0) run_backend("cpu", "winograd");
    pn_st_close(golden);
    return check_report("test_parity");
}
