/* test_dist_sync: the synchronised backend (core/dist.h) without MPI: two ranks as two threads of this process,
 * joined by a communicator over a barrier, each train a U-Net step on half of a batch; the loss, the logits, the
 * BatchNorm running statistics and the sum of the two ranks' gradients must equal one model's on the whole batch
 * (float rounding only), on every backend built in. Unsynchronised ranks must not (the test can fail). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backends/register.h"
#include "check.h"
#include "core/dist.h"
#include "core/rng.h"
#include "core/unet.h"

#define RANKS 2
#define BATCH 4
#define SIDE 32

/* ---- a communicator of threads: each rank posts its vector, all wait, each sums the posts in rank order ---- */

typedef struct thread_comm {
    pthread_barrier_t barrier;
    double *posted[RANKS];
} thread_comm;

static pn_status thread_sum(pn_comm *c, double *x, int64_t n) {
    thread_comm *tc = c->ctx;
    double *sum = calloc((size_t)n, sizeof *sum);
    tc->posted[c->rank] = x;
    pthread_barrier_wait(&tc->barrier);
    for (int r = 0; r < c->size; r++)
        for (int64_t i = 0; i < n; i++) sum[i] += tc->posted[r][i];
    pthread_barrier_wait(&tc->barrier); /* everyone has read every post */
    memcpy(x, sum, (size_t)n * sizeof *x);
    free(sum);
    return PN_OK;
}

/* ---- one training step ---- */

typedef struct step_result {
    float loss;
    float *logits, *grads, *running; /* host copies: logits (n * SIDE^2), every gradient, every running statistic */
    int64_t n_grads, n_running;
    pn_status st;
} step_result;

static const char *backend_name;
static float *input_all, *target_all;

static void make_batch(void) {
    int64_t px = (int64_t)SIDE * SIDE;
    input_all = malloc((size_t)(BATCH * 3 * px) * sizeof(float));
    target_all = malloc((size_t)(BATCH * px) * sizeof(float));
    pn_rng r = pn_rng_make(7, PN_RNG_TEST, 1, 0);
    for (int64_t i = 0; i < BATCH * 3 * px; i++) input_all[i] = pn_rng_normal(&r);
    for (int b = 0; b < BATCH; b++) /* a disc of foreground in images 1 and 2, empty masks otherwise */
        for (int64_t y = 0; y < SIDE; y++)
            for (int64_t x = 0; x < SIDE; x++)
                target_all[b * px + y * SIDE + x] = (b == 1 || b == 2) && (x - 20 - 4 * b) * (x - 20 - 4 * b) + (y - 30) * (y - 30) < 100;
}

static pn_status read_state(pn_unet *m, step_result *out) {
    out->n_grads = out->n_running = 0;
    for (int i = 0; i < pn_unet_num_params(m); i++) out->n_grads += pn_tensor_numel(&pn_unet_param_at(m, i)->grad);
    for (int i = 0; i < pn_unet_num_bns(m); i++) out->n_running += 2 * pn_tensor_numel(&pn_unet_bn_at(m, i)->running_mean);
    out->grads = malloc((size_t)out->n_grads * sizeof(float));
    out->running = malloc((size_t)out->n_running * sizeof(float));
    int64_t at = 0;
    for (int i = 0; i < pn_unet_num_params(m); i++) {
        const pn_tensor *g = &pn_unet_param_at(m, i)->grad;
        PN_TRY(pn_tensor_get(g, out->grads + at));
        at += pn_tensor_numel(g);
    }
    at = 0;
    for (int i = 0; i < pn_unet_num_bns(m); i++) {
        pn_unet_bn *b = pn_unet_bn_at(m, i);
        PN_TRY(pn_tensor_get(&b->running_mean, out->running + at));
        at += pn_tensor_numel(&b->running_mean);
        PN_TRY(pn_tensor_get(&b->running_var, out->running + at));
        at += pn_tensor_numel(&b->running_var);
    }
    return PN_OK;
}

/* Images [first, first + n) of the batch: forward, ComboLoss, backward on `be` (owned; closed here). */
static pn_status train_step(pn_backend *be, int first, int n, step_result *out) {
    int64_t px = (int64_t)SIDE * SIDE;
    pn_unet *m = NULL;
    pn_status st = pn_unet_create("resnet18", be, &m);
    if (st == PN_OK) st = pn_unet_init_weights(m, 11);
    if (st == PN_OK) st = pn_unet_plan(m, n, SIDE, SIDE, PN_UNET_TRAIN);
    if (st == PN_OK) st = pn_unet_zero_grad(m);
    if (st == PN_OK) st = pn_tensor_set(pn_unet_input(m), input_all + first * 3 * px);
    if (st == PN_OK) st = pn_tensor_set(pn_unet_target(m), target_all + first * px);
    if (st == PN_OK) st = pn_unet_forward(m);
    if (st == PN_OK) st = pn_unet_loss(m, 3, 1, 4, &out->loss);
    if (st == PN_OK) st = pn_unet_backward(m, 1.0f);
    out->logits = malloc((size_t)(n * px) * sizeof(float));
    if (st == PN_OK) st = pn_tensor_get(pn_unet_logits(m), out->logits);
    if (st == PN_OK) st = read_state(m, out);
    pn_unet_free(m);
    pn_backend_close(be);
    return st;
}

typedef struct rank_job {
    pn_comm comm;
    bool sync;
    step_result result;
} rank_job;

static void *rank_main(void *arg) {
    rank_job *job = arg;
    pn_backend *be = NULL;
    job->result.st = pn_backend_open(backend_name, 1, &be);
    if (job->result.st == PN_OK && job->sync) job->result.st = pn_dist_sync_backend(be, &job->comm, &be);
    int share = BATCH / RANKS;
    if (job->result.st == PN_OK) job->result.st = train_step(be, job->comm.rank * share, share, &job->result);
    return NULL;
}

static void free_result(step_result *r) {
    free(r->logits);
    free(r->grads);
    free(r->running);
}

/* Largest |a - b| over the largest |b| (0 when b is all zero and a equals it). */
static double rel_diff(const float *a, const float *b, int64_t n) {
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > diff || d != d) diff = d;
        if (fabs((double)b[i]) > scale) scale = fabs((double)b[i]);
    }
    return scale > 0 ? diff / scale : diff;
}

/* Two ranks (synchronised or not) against one process on the whole batch: the largest relative differences. */
static void compare_ranks(bool sync, double *d_loss, double *d_logits, double *d_grads, double *d_running) {
    step_result one = {0};
    pn_backend *be = NULL;
    CHECK(pn_backend_open(backend_name, 1, &be) == PN_OK);
    CHECK(train_step(be, 0, BATCH, &one) == PN_OK);
    thread_comm tc;
    pthread_barrier_init(&tc.barrier, NULL, RANKS);
    rank_job jobs[RANKS];
    pthread_t threads[RANKS];
    memset(jobs, 0, sizeof jobs);
    for (int r = 0; r < RANKS; r++) {
        jobs[r].comm = (pn_comm){.rank = r, .size = RANKS, .ctx = &tc, .sum_f64 = thread_sum};
        jobs[r].sync = sync;
        pthread_create(&threads[r], NULL, rank_main, &jobs[r]);
    }
    for (int r = 0; r < RANKS; r++) pthread_join(threads[r], NULL);
    pthread_barrier_destroy(&tc.barrier);
    for (int r = 0; r < RANKS; r++) CHECK_MSG(jobs[r].result.st == PN_OK, "rank %d: %s", r, pn_last_error());
    if (jobs[0].result.st != PN_OK || jobs[1].result.st != PN_OK) return;
    int64_t half = (int64_t)(BATCH / RANKS) * SIDE * SIDE;
    float *summed = malloc((size_t)one.n_grads * sizeof(float));
    for (int64_t i = 0; i < one.n_grads; i++) summed[i] = jobs[0].result.grads[i] + jobs[1].result.grads[i];
    *d_loss = fabs(jobs[0].result.loss - one.loss) / one.loss;
    *d_logits = fmax(rel_diff(jobs[0].result.logits, one.logits, half), rel_diff(jobs[1].result.logits, one.logits + half, half));
    *d_grads = rel_diff(sync ? summed : jobs[0].result.grads, one.grads, one.n_grads);
    *d_running = fmax(rel_diff(jobs[0].result.running, one.running, one.n_running),
                      rel_diff(jobs[1].result.running, jobs[0].result.running, one.n_running));
    printf("%s, %s ranks: loss %.2e, logits %.2e, gradients %.2e, running statistics %.2e (relative)\n", backend_name,
           sync ? "synchronised" : "independent", *d_loss, *d_logits, *d_grads, *d_running);
    free(summed);
    free_result(&one);
    for (int r = 0; r < RANKS; r++) free_result(&jobs[r].result);
}

int main(void) {
    pn_register_builtin_backends();
    make_batch();
    const char *names[] = {"ref", "cpu"};
    for (int i = 0; i < 2; i++) {
        pn_backend *probe = NULL;
        if (pn_backend_open(names[i], 1, &probe) != PN_OK) {
            SKIP("%s: not built in", names[i]);
            continue;
        }
        pn_backend_close(probe);
        backend_name = names[i];
        double loss = 1, logits = 1, grads = 1, running = 1;
        compare_ranks(true, &loss, &logits, &grads, &running);
        CHECK_MSG(loss < 1e-6, "%s: synchronised loss off by %.3g", names[i], loss);
        CHECK_MSG(logits < 1e-5, "%s: synchronised logits off by %.3g", names[i], logits);
        CHECK_MSG(grads < 1e-4, "%s: summed gradients off by %.3g", names[i], grads);
        CHECK_MSG(running < 1e-6, "%s: running statistics off by %.3g", names[i], running);
        /* without synchronisation each rank normalises its own half: the results must differ, or the test proves nothing */
        compare_ranks(false, &loss, &logits, &grads, &running);
        CHECK_MSG(loss > 1e-4 && logits > 1e-3, "%s: independent ranks match one process (loss %.3g, logits %.3g)",
                  names[i], loss, logits);
    }
    free(input_all);
    free(target_all);
    return check_report("test_dist_sync");
}
