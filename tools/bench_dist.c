/* bench_dist: `pneumoseg bench dist`, the data-parallel training step timed (alone, or as one rank under mpirun):
 * forward, ComboLoss and backward on this rank's share of the global batch, the gradient all-reduce, Adam; and the
 * all-reduce of a gradient-sized float buffer on its own. Rank 0 prints medians. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "cli.h"
#include "backend_setup.h"
#include "model_load.h"
#include "core/rng.h"
#include "mpi_comm.h"
#include "train_dist.h"

typedef struct dist_args {
    pn_compute_opts compute;
    pn_arch_opts arch;
    int size, batch, runs, warmup;
    bool sync_bn;
} dist_args;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static pn_status set_batch(pn_unet *m, int n, int size, int rank) {
    int64_t px = (int64_t)n * size * size;
    float *v = malloc((size_t)(3 * px) * sizeof *v);
    if (!v) return pn_error(PN_ERR_NOMEM, "out of memory");
    pn_rng r = pn_rng_make((uint64_t)rank, PN_RNG_TEST, 1, 0);
    for (int64_t i = 0; i < 3 * px; i++) v[i] = pn_rng_normal(&r);
    pn_status st = pn_tensor_set(pn_unet_input(m), v);
    for (int64_t i = 0; i < px; i++) v[i] = (float)(pn_rng_uniform(&r) < 0.2f);
    if (st == PN_OK) st = pn_tensor_set(pn_unet_target(m), v);
    free(v);
    return st;
}

/* One step; *reduce gets the gradient all-reduce's seconds. */
static pn_status step(pn_train_dist *d, pn_unet *m, int64_t k, double *reduce) {
    float loss;
    pn_adam_params ap = {1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, k};
    PN_TRY(pn_unet_zero_grad(m));
    PN_TRY(pn_unet_forward(m));
    PN_TRY(pn_unet_loss(m, 3.0f, 1.0f, 4.0f, &loss));
    PN_TRY(pn_unet_backward(m, 1.0f));
    PN_TRY(pn_backend_synchronize(pn_unet_backend(m)));
    pn_dist_times a, b;
    pn_train_dist_times(d, &a);
    PN_TRY(pn_train_dist_grads(d, m));
    pn_train_dist_times(d, &b);
    *reduce = b.grad_seconds - a.grad_seconds;
    PN_TRY(pn_unet_adam_step(m, &ap));
    return pn_backend_synchronize(pn_unet_backend(m));
}

static pn_status run(const dist_args *a, pn_train_dist *d, pn_backend **be, pn_unet **m) {
    int ranks = pn_train_dist_size(d);
    if (a->batch % ranks)
        return pn_error(PN_ERR_USAGE, "--batch %d (global) must be a multiple of %d ranks", a->batch, ranks);
    PN_TRY(pn_tool_open_backend(a->compute.backend, pn_train_dist_threads(d, a->compute.threads), be));
    PN_TRY(pn_train_dist_wrap(d, a->sync_bn, be));
    PN_TRY(pn_tool_apply_compute(*be, &a->compute));
    pn_arch arch;
    PN_TRY(pn_tool_arch(&a->arch, &arch));
    PN_TRY(pn_unet_create_arch(&arch, *be, m));
    PN_TRY(pn_unet_init_weights(*m, 0)); /* seeded weights, as bench infer/train */
    PN_TRY(pn_unet_plan(*m, a->batch / ranks, a->size, a->size, PN_UNET_TRAIN));
    PN_TRY(set_batch(*m, a->batch / ranks, a->size, pn_train_dist_rank(d)));
    PN_TRY(pn_train_dist_start(d));
    double *steps = calloc((size_t)a->runs, sizeof(double)), *reduces = calloc((size_t)a->runs, sizeof(double));
    pn_status st = steps && reduces ? PN_OK : pn_error(PN_ERR_NOMEM, "out of memory");
    double r;
    for (int i = 0; st == PN_OK && i < a->warmup; i++) st = step(d, *m, i + 1, &r);
    pn_dist_times t0, t1;
    pn_train_dist_times(d, &t0);
    for (int i = 0; st == PN_OK && i < a->runs; i++) {
        double s0 = pn_now();
        st = step(d, *m, a->warmup + i + 1, &reduces[i]);
        steps[i] = pn_now() - s0;
    }
    pn_train_dist_times(d, &t1);
    if (st == PN_OK && pn_train_dist_root(d)) {
        int64_t params = pn_unet_param_count(*m);
        printf("bench dist backend=%s encoder=%s global batch=%d ranks=%d size=%d sync-bn=%s runs=%d warmup=%d\n",
               (*be)->name, pn_unet_card(*m)->encoder, a->batch, ranks, a->size, a->sync_bn ? "yes" : "no", a->runs,
               a->warmup);
        double ms = median_of(steps, a->runs), mr = median_of(reduces, a->runs);
        printf("step median %.4f s (%.2f images/s), of which gradient all-reduce %.4f s (%.1f%%, %.1f M floats)\n", ms,
               a->batch / ms, mr, 100.0 * mr / ms, (double)params / 1e6);
        printf("small all-reduces (BatchNorm and loss statistics): %.1f per step, %.4f s per step\n",
               (double)(t1.stats_calls - t0.stats_calls) / a->runs, (t1.stats_seconds - t0.stats_seconds) / a->runs);
    }
    free(steps);
    free(reduces);
    return st;
}

/* The all-reduce of n floats in host memory on its own (MPI), median of runs; rank 0 prints. */
static pn_status time_allreduce(pn_train_dist *d, int64_t n, int runs) {
    float *x = malloc((size_t)n * sizeof *x);
    double *t = calloc((size_t)runs, sizeof *t);
    pn_status st = x && t ? PN_OK : pn_error(PN_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; st == PN_OK && i < n; i++) x[i] = 1e-3f * (float)(i % 1000);
    for (int i = -1; st == PN_OK && i < runs; i++) { /* one untimed */
        double barrier = 0, t0;
        st = pn_train_dist_sum(d, &barrier, 1); /* every rank starts together */
        t0 = pn_now();
        if (st == PN_OK) st = pn_mpi_sum_f32(x, n);
        if (i >= 0) t[i] = pn_now() - t0;
    }
    if (st == PN_OK && pn_train_dist_root(d)) {
        double m = median_of(t, runs);
        int ranks = pn_train_dist_size(d);
        printf(
            "all-reduce of %lld floats (%.3f MB) over %d ranks: median %.3f ms, min %.3f ms; bus bandwidth %.2f GB/s "
            "(2(N-1)/N x bytes / time)\n",
            (long long)n, (double)n * 4 / 1e6, ranks, 1e3 * m, 1e3 * t[0],
            2.0 * (ranks - 1) / ranks * (double)n * 4 / m / 1e9);
    }
    free(x);
    free(t);
    return st;
}

/* Without mpirun: the backend's own collectives as a 1-rank communicator, on a device buffer of n floats (NCCL on one
 * GPU: the device path of a data-parallel run, as a smoke test and a timing); a sum over one rank must leave the
 * buffer unchanged. */
static pn_status device_allreduce(pn_backend *be, int64_t n, int runs) {
    const pn_collectives_i *coll = NULL;
    if (!be->collectives)
        return pn_error(PN_ERR_UNSUPPORTED,
                        "the %s backend has no collectives: --allreduce-only without mpirun needs "
                        "--backend cuda built with NCCL",
                        be->name);
    PN_TRY(be->collectives(be, &coll));
    unsigned char id[1024];
    if (coll->id_bytes > sizeof id) return pn_error(PN_ERR_BACKEND, "the %s id is too large", coll->name);
    void *comm = NULL;
    PN_TRY(coll->make_id(be, id));
    PN_TRY(coll->open(be, id, 0, 1, &comm));
    pn_buffer buf = {0};
    pn_tensor t = pn_tensor_vec(n);
    float *want = malloc((size_t)n * sizeof *want), *got = malloc((size_t)n * sizeof *got);
    double *times = calloc((size_t)runs, sizeof *times);
    pn_status st = want && got && times ? pn_buffer_alloc(be, &buf, (size_t)n * sizeof(float))
                                        : pn_error(PN_ERR_NOMEM, "out of memory");
    t.buf = &buf;
    for (int64_t i = 0; st == PN_OK && i < n; i++) want[i] = 1e-3f * (float)(i % 1000) - 0.25f;
    if (st == PN_OK) st = pn_tensor_set(&t, want);
    for (int i = -1; st == PN_OK && i < runs; i++) { /* one untimed */
        double t0 = pn_now();
        st = coll->sum_f32(be, comm, &t);
        if (i >= 0) times[i] = pn_now() - t0;
    }
    if (st == PN_OK) st = pn_tensor_get(&t, got);
    if (st == PN_OK && memcmp(want, got, (size_t)n * sizeof *got) != 0)
        st = pn_error(PN_ERR_BACKEND, "%s: the 1-rank all-reduce changed the values", coll->name);
    if (st == PN_OK) {
        double m = median_of(times, runs);
        printf("%s all-reduce of %lld floats (%.3f MB) on 1 rank (device buffer): median %.3f ms, min %.3f ms; values "
               "unchanged\n",
               coll->name, (long long)n, (double)n * 4 / 1e6, 1e3 * m, 1e3 * times[0]);
    }
    pn_buffer_free(&buf);
    coll->close(be, comm);
    free(want);
    free(got);
    free(times);
    return st;
}

int pn_bench_dist(int argc, char **argv) {
    dist_args a = {.compute = {.backend = "auto", .precision = "fp32", .conv_algo = "direct"},
                   .size = 256,
                   .batch = 4,
                   .runs = 5,
                   .warmup = 1};
    int floats = 0;
    const pn_opt opts[] = {
        {"size", PN_OPT_INT, &a.size, "S", "image side, a multiple of 32 (default 256)", false},
        {"batch", PN_OPT_INT, &a.batch, "N", "global batch, split over the ranks (default 4)", false},
        {"runs", PN_OPT_INT, &a.runs, "N", "timed steps (default 5)", false},
        {"warmup", PN_OPT_INT, &a.warmup, "N", "untimed steps first (default 1)", false},
        PN_ARCH_OPTIONS(&a.arch, "resnet34", "unet", "none"),
        PN_COMPUTE_OPTIONS(&a.compute, "direct"),
        {"sync-bn", PN_OPT_FLAG, &a.sync_bn, NULL, "BatchNorm and loss over the global batch", false},
        {"allreduce-only", PN_OPT_INT, &floats, "FLOATS",
         "time only the MPI all-reduce of FLOATS host floats "
         "(24436369 = resnet34's gradient)",
         false},
        {0},
    };
    const pn_command_help help = {
        "[mpirun -np N] pneumoseg bench dist [--batch 4] [--size 256] [--sync-bn] [--allreduce-only FLOATS]",
        "Times data-parallel training steps: each rank's forward, ComboLoss and backward on its share of the global\n"
        "batch, the gradient all-reduce (its share of the step printed), Adam. Without mpirun: one process, no\n"
        "all-reduce. --allreduce-only times the MPI all-reduce of a host float buffer alone; without mpirun, the\n"
        "backend's own all-reduce (NCCL for cuda) on a device buffer as a 1-rank communicator, checking the values."};
    int rc = pn_cli_parse(argc, argv, opts, &help);
    if (rc) return rc < 0 ? 0 : rc;
    if (a.runs < 1 || a.warmup < 0 || a.batch < 1 || floats < 0 || a.compute.threads < 0 || a.size < 32 ||
        a.size % 32) {
        fprintf(stderr, "pneumoseg bench dist: need --runs >= 1, --warmup >= 0, --batch >= 1, --allreduce-only >= 0, "
                        "--threads >= 0 and --size a multiple of 32 (see --help)\n");
        return 2;
    }
    pn_status flags = pn_check_model_flags(a.arch.encoder, a.arch.decoder, a.arch.attention, a.compute.conv_algo);
    if (flags == PN_OK) flags = pn_check_precision(a.compute.precision);
    if (flags != PN_OK) return pn_cli_exit("bench", flags);
    pn_train_dist *d = NULL;
    pn_status st = pn_train_dist_open(&d);
    if (st != PN_OK) return pn_train_dist_open_failed(st, "bench");
    pn_backend *be = NULL;
    pn_unet *m = NULL;
    if (floats > 0 && !d) { /* one process: the backend's device all-reduce as a 1-rank communicator */
        st = pn_tool_setup_backend(&a.compute, &be);
        if (st == PN_OK) st = device_allreduce(be, floats, a.runs);
    } else {
        st = floats > 0 ? time_allreduce(d, floats, a.runs) : run(&a, d, &be, &m);
    }
    bool usage = st == PN_ERR_USAGE, quiet = usage && !pn_train_dist_root(d); /* every rank has it: rank 0 says */
    if (st != PN_OK && !usage && d) pn_train_dist_fail(d, "bench");
    pn_unet_free(m);
    pn_train_dist_close(d);
    pn_backend_close(be);
    return quiet ? 2 : pn_cli_exit("bench", st);
}
