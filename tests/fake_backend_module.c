/* fake_backend_module: a loadable backend module for tests of the module path (dlopen, score, init,
 * API version, fallback). It wraps the ref backend found in the host binary, so it proves that a module
 * shares the host's one copy of core. PN_FAKE_SCORE=0 makes it report "no device"; PN_FAKE_API=N makes
 * it claim API version N. It has a set_precision slot that accepts fp32, bf16 and fp16 (and computes in float32
 * anyway), so the trainer's fp16 loss scaling can be tested without a GPU; PN_FAKE_INF_SUMSQ=K makes the K-th
 * sum of squares (the gradient norm) come out +inf, as a step whose fp16 gradients overflowed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/ref/ref.h"
#include "core/backend.h"

int pn_backend_score(char *reason, size_t n);
pn_status pn_backend_init(int api_version, int threads, pn_backend **out);

int pn_backend_score(char *reason, size_t n) {
    const char *s = getenv("PN_FAKE_SCORE");
    if (s && atoi(s) <= 0) {
        snprintf(reason, n, "no fake device (PN_FAKE_SCORE=%s)", s);
        return 0;
    }
    return 1;
}

static pn_status (*ref_compute)(pn_backend *be, pn_node *node);
static long sum_squares_calls;

static pn_status fake_compute(pn_backend *be, pn_node *node) {
    PN_TRY(ref_compute(be, node));
    const char *k = getenv("PN_FAKE_INF_SUMSQ");
    if (node->op == PN_OP_SUM_SQUARES && k && ++sum_squares_calls == atol(k)) {
        float inf = INFINITY;
        return pn_tensor_set(node->out[0], &inf);
    }
    return PN_OK;
}

static pn_status fake_set_precision(pn_backend *be, const char *precision) {
    (void)be;
    if (strcmp(precision, "fp32") && strcmp(precision, "bf16") && strcmp(precision, "fp16"))
        return pn_error(PN_ERR_ARG, "fake: unknown precision '%s'", precision);
    return PN_OK;
}

pn_status pn_backend_init(int api_version, int threads, pn_backend **out) {
    (void)api_version;
    PN_TRY(pn_ref_backend_create(threads, out));
    (*out)->name = "fake";
    ref_compute = (*out)->compute;
    (*out)->compute = fake_compute;
    (*out)->set_precision = fake_set_precision;
    const char *api = getenv("PN_FAKE_API");
    if (api) (*out)->api_version = atoi(api);
    return PN_OK;
}
