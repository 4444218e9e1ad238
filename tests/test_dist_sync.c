/* test_dist_sync: the synchronised backend (core/dist.h) without MPI: two ranks as two threads of this process,
 * joined by a communicator over a barrier, each run a small training graph (conv, BatchNorm, ReLU recomputed in
 * backward, conv, BatchNorm, ReLU, 1x1 conv with bias, ComboLoss) on half of a batch. The loss, the logits, the
 * running statistics and the sum of the two ranks' parameter gradients must equal one graph's on the whole batch
 * (float rounding only), on every backend built in; unsynchronised ranks must not (so the test can fail). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backends/register.h"
#include "check.h"
#include "core/dist.h"
#include "core/graph.h"
#include "core/rng.h"

#define RANKS 2
#define BATCH 4
#define SIDE 8
#define CH 16
#define N_PARAMS 8
#define N_STATS 4

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

/* ---- the network ---- */

static const int64_t param_shapes[N_PARAMS][4] = {
    {CH, 3, 3, 3}, {CH}, {CH}, {CH, CH, 3, 3}, {CH}, {CH}, {1, CH, 1, 1}, {1},
};
static const int param_dims[N_PARAMS] = {4, 1, 1, 4, 1, 1, 4, 1};

/* What one run produces, on the host. */
typedef struct result {
    float loss;
    float *logits, *grads[N_PARAMS], *stats[N_STATS];
    pn_status st;
    char error[256];
} result;

/* Parameters, their gradients and the running statistics: one buffer each. */
typedef struct net {
    pn_buffer bufs[2 * N_PARAMS + N_STATS];
    pn_tensor param[N_PARAMS], grad[N_PARAMS], stat[N_STATS];
} net;

static pn_tensor shaped(int p) {
    pn_tensor t = param_dims[p] == 4
                      ? pn_tensor_nchw(param_shapes[p][0], param_shapes[p][1], param_shapes[p][2], param_shapes[p][3])
                      : pn_tensor_vec(param_shapes[p][0]);
    return t;
}

static pn_status fill(const pn_tensor *t, uint32_t stream, float mean, float scale) {
    int64_t n = pn_tensor_numel(t);
    float *v = malloc((size_t)n * sizeof *v);
    pn_rng r = pn_rng_make(5, PN_RNG_TEST, stream, 0);
    for (int64_t i = 0; i < n; i++) v[i] = mean + scale * pn_rng_normal(&r);
    pn_status st = pn_tensor_set(t, v);
    free(v);
    return st;
}

static pn_status net_alloc(pn_backend *be, net *nt) {
    memset(nt, 0, sizeof *nt);
    int b = 0;
    for (int p = 0; p < N_PARAMS; p++) {
        pn_tensor *ts[2] = {&nt->param[p], &nt->grad[p]};
        for (int k = 0; k < 2; k++, b++) {
            *ts[k] = shaped(p);
            PN_TRY(pn_buffer_alloc(be, &nt->bufs[b], pn_backend_storage_bytes(be, ts[k])));
            ts[k]->buf = &nt->bufs[b];
        }
        bool gamma = p == 1 || p == 4, beta = p == 2 || p == 5 || p == 7;
        PN_TRY(fill(&nt->param[p], 10 + (uint32_t)p, gamma ? 1.0f : 0.0f, beta ? 0.1f : gamma ? 0.2f : 0.3f));
    }
    for (int s = 0; s < N_STATS; s++, b++) {
        nt->stat[s] = pn_tensor_vec(CH);
        PN_TRY(pn_buffer_alloc(be, &nt->bufs[b], CH * sizeof(float)));
        nt->stat[s].buf = &nt->bufs[b];
        PN_TRY(fill(&nt->stat[s], 30 + (uint32_t)s, s % 2 ? 1.0f : 0.0f, 0.1f)); /* running mean ~0, var ~1 */
    }
    return PN_OK;
}

static void net_free(net *nt) {
    for (int i = 0; i < 2 * N_PARAMS + N_STATS; i++) pn_buffer_free(&nt->bufs[i]);
}

static pn_tensor *conv_bn_relu(pn_graph *g, pn_tensor *x, pn_tensor **p, pn_tensor *rm, pn_tensor *rv, int pad,
                               const char *label) {
    int64_t n = x->shape[0];
    pn_tensor *c = pn_graph_activation(g, pn_tensor_nchw(n, CH, SIDE, SIDE), label);
    pn_tensor *y = pn_graph_activation(g, pn_tensor_nchw(n, CH, SIDE, SIDE), label);
    pn_tensor *mean = pn_graph_activation(g, pn_tensor_vec(CH), "mean"),
              *inv = pn_graph_activation(g, pn_tensor_vec(CH), "inv");
    pn_op_params cp = {.conv2d_fwd = {1, pad, 1}}, bp = {.batchnorm_train_fwd = {1e-5f, 0.1f}}, none = {0};
    pn_tensor *co[] = {c}, *ci[] = {x, p[0], NULL}, *bo[] = {y, mean, inv, rm, rv}, *bi[] = {c, p[1], p[2]};
    pn_tensor *ro[] = {y}, *ri[] = {y};
    pn_graph_add(g, PN_OP_CONV2D_FWD, cp, co, ci, label);
    pn_graph_add(g, PN_OP_BATCHNORM_TRAIN_FWD, bp, bo, bi, label);
    pn_graph_add(g, PN_OP_RELU_FWD, none, ro, ri, label);
    pn_graph_recompute(g, y); /* backward runs BATCHNORM_APPLY with the saved (here: global) statistics */
    return y;
}

/* Images [first, first + n) of the batch through the network on `be` (owned; closed here). */
static void run_net(pn_backend *be, const float *input, const float *target, int first, int n, result *out) {
    int64_t px = (int64_t)SIDE * SIDE;
    net nt;
    pn_graph *g = pn_graph_new(be);
    pn_status st = net_alloc(be, &nt);
    pn_tensor *p[N_PARAMS], *s[N_STATS];
    for (int i = 0; i < N_PARAMS; i++) p[i] = pn_graph_external(g, nt.param[i], &nt.grad[i]);
    for (int i = 0; i < N_STATS; i++) s[i] = pn_graph_external(g, nt.stat[i], NULL);
    pn_tensor *x = pn_graph_activation(g, pn_tensor_nchw(n, 3, SIDE, SIDE), "x");
    pn_tensor *t = pn_graph_activation(g, pn_tensor_nchw(n, 1, SIDE, SIDE), "target");
    pn_graph_keep(g, x), pn_graph_keep(g, t), pn_graph_no_grad(g, x), pn_graph_no_grad(g, t);
    pn_tensor *y = conv_bn_relu(g, x, p, s[0], s[1], 1, "block1");
    y = conv_bn_relu(g, y, p + 3, s[2], s[3], 1, "block2");
    pn_tensor *logits = pn_graph_activation(g, pn_tensor_nchw(n, 1, SIDE, SIDE), "logits");
    pn_graph_keep(g, logits);
    pn_op_params hp = {.conv2d_fwd = {1, 0, 1}}, lp = {.combo_loss_fwd = {3.0f, 1.0f, 4.0f, 1.0f}};
    pn_tensor *ho[] = {logits}, *hi[] = {y, p[6], p[7]};
    pn_graph_add(g, PN_OP_CONV2D_FWD, hp, ho, hi, "head");
    int fwd_end = pn_graph_size(g);
    pn_tensor *loss = pn_graph_activation(g, pn_tensor_vec(1), "loss");
    pn_tensor *dlogits = pn_graph_activation(g, pn_tensor_nchw(n, 1, SIDE, SIDE), "dlogits");
    pn_graph_keep(g, loss);
    pn_tensor *lo[] = {loss}, *li[] = {logits, t}, *bo[] = {dlogits};
    pn_graph_add(g, PN_OP_COMBO_LOSS_FWD, lp, lo, li, "loss");
    pn_graph_add(g, PN_OP_COMBO_LOSS_BWD, lp, bo, li, "loss");
    if (st == PN_OK) st = pn_graph_backward(g, fwd_end, logits, dlogits);
    if (st == PN_OK) st = pn_graph_plan(g);
    if (st == PN_OK) st = pn_tensor_set(x, input + first * 3 * px);
    if (st == PN_OK) st = pn_tensor_set(t, target + first * px);
    if (st == PN_OK) st = pn_graph_run(g, 0, pn_graph_size(g));
    if (st == PN_OK) st = pn_tensor_get(loss, &out->loss);
    out->logits = malloc((size_t)(n * px) * sizeof(float));
    if (st == PN_OK) st = pn_tensor_get(logits, out->logits);
    for (int i = 0; i < N_PARAMS; i++) {
        out->grads[i] = malloc((size_t)pn_tensor_numel(&nt.grad[i]) * sizeof(float));
        if (st == PN_OK) st = pn_tensor_get(&nt.grad[i], out->grads[i]);
    }
    for (int i = 0; i < N_STATS; i++) {
        out->stats[i] = malloc(CH * sizeof(float));
        if (st == PN_OK) st = pn_tensor_get(&nt.stat[i], out->stats[i]);
    }
    out->st = st;
    if (st != PN_OK) snprintf(out->error, sizeof out->error, "%s", pn_last_error());
    pn_graph_free(g);
    net_free(&nt);
    pn_backend_close(be);
}

/* ---- ranks ---- */

static const char *backend_name;
static float input_all[BATCH * 3 * SIDE * SIDE], target_all[BATCH * SIDE * SIDE];

typedef struct rank_job {
    pn_comm comm;
    bool sync;
    result res;
} rank_job;

static void *rank_main(void *arg) {
    rank_job *job = arg;
    pn_backend *be = NULL;
    job->res.st = pn_backend_open(backend_name, 1, &be);
    if (job->res.st == PN_OK && job->sync) job->res.st = pn_dist_sync_backend(be, &job->comm, &be);
    int share = BATCH / RANKS;
    if (job->res.st == PN_OK)
        run_net(be, input_all, target_all, job->comm.rank * share, share, &job->res);
    else
        snprintf(job->res.error, sizeof job->res.error, "%s", pn_last_error());
    return NULL;
}

static void result_free(result *r) {
    free(r->logits);
    for (int i = 0; i < N_PARAMS; i++) free(r->grads[i]);
    for (int i = 0; i < N_STATS; i++) free(r->stats[i]);
}

/* Largest |a - b| over the largest |b|. */
static double rel_diff(const float *a, const float *b, int64_t n) {
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > diff || d != d) diff = d;
        if (fabs((double)b[i]) > scale) scale = fabs((double)b[i]);
    }
    return scale > 0 ? diff / scale : diff;
}

typedef struct diffs {
    double loss, logits, grads, stats;
} diffs;

/* Two ranks (synchronised or not) against one graph on the whole batch. */
static diffs compare_ranks(bool sync) {
    diffs d = {1, 1, 1, 1};
    result one = {0};
    pn_backend *be = NULL;
    CHECK(pn_backend_open(backend_name, 1, &be) == PN_OK);
    run_net(be, input_all, target_all, 0, BATCH, &one);
    CHECK_MSG(one.st == PN_OK, "one graph: %s", one.error);
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
    bool ran = one.st == PN_OK;
    for (int r = 0; r < RANKS; r++) {
        CHECK_MSG(jobs[r].res.st == PN_OK, "rank %d: %s", r, jobs[r].res.error);
        ran = ran && jobs[r].res.st == PN_OK;
    }
    if (ran) {
        int64_t half = (int64_t)(BATCH / RANKS) * SIDE * SIDE;
        d.loss = fmax(fabs(jobs[0].res.loss - one.loss), fabs(jobs[1].res.loss - one.loss)) / one.loss;
        d.logits =
            fmax(rel_diff(jobs[0].res.logits, one.logits, half), rel_diff(jobs[1].res.logits, one.logits + half, half));
        d.grads = d.stats = 0;
        for (int p = 0; p < N_PARAMS; p++) {
            int64_t n = 1;
            for (int k = 0; k < param_dims[p]; k++) n *= param_shapes[p][k];
            float *sum = malloc((size_t)n * sizeof *sum);
            for (int64_t i = 0; i < n; i++) sum[i] = jobs[0].res.grads[p][i] + jobs[1].res.grads[p][i];
            d.grads = fmax(d.grads, rel_diff(sum, one.grads[p], n));
            free(sum);
        }
        for (int s = 0; s < N_STATS; s++)
            for (int r = 0; r < RANKS; r++) d.stats = fmax(d.stats, rel_diff(jobs[r].res.stats[s], one.stats[s], CH));
        printf("%s, %s ranks against one graph: loss %.2e, logits %.2e, summed gradients %.2e, running statistics "
               "%.2e (largest relative differences)\n",
               backend_name, sync ? "synchronised" : "independent", d.loss, d.logits, d.grads, d.stats);
    }
    result_free(&one);
    for (int r = 0; r < RANKS; r++) result_free(&jobs[r].res);
    return d;
}

static void make_batch(void) {
    pn_rng r = pn_rng_make(7, PN_RNG_TEST, 1, 0);
    for (int i = 0; i < BATCH * 3 * SIDE * SIDE; i++) input_all[i] = 0.5f + pn_rng_normal(&r);
    for (int b = 0; b < BATCH; b++) /* foreground in images 1 and 2 (one per rank), soft edges, empty elsewhere */
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++) {
                float v = (b == 1 || b == 2) && x >= 2 && x < 6 && y >= b && y < b + 4 ? 1.0f : 0.0f;
                target_all[(b * SIDE + y) * SIDE + x] = v > 0 && x == 2 ? 0.5f : v;
            }
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
        diffs s = compare_ranks(true);
        CHECK_MSG(s.loss < 1e-6, "%s: synchronised loss off by %.3g", names[i], s.loss);
        CHECK_MSG(s.logits < 1e-5, "%s: synchronised logits off by %.3g", names[i], s.logits);
        CHECK_MSG(s.grads < 1e-5, "%s: summed gradients off by %.3g", names[i], s.grads);
        CHECK_MSG(s.stats < 1e-6, "%s: running statistics off by %.3g", names[i], s.stats);
        /* each rank normalising its own half must differ, or the synchronised result proves nothing */
        diffs u = compare_ranks(false);
        CHECK_MSG(u.loss > 1e-3 && u.logits > 1e-2 && u.grads > 1e-2 && u.stats > 1e-2,
                  "%s: independent ranks match one graph (loss %.3g, logits %.3g, gradients %.3g, statistics %.3g)",
                  names[i], u.loss, u.logits, u.grads, u.stats);
    }
    return check_report("test_dist_sync");
}
