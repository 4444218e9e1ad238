/* train_dist: `pneumoseg train` as one rank of a data-parallel job: joining it, the rank's GPU and threads, the
 * synchronised backend, the gradient all-reduce (the backend's NCCL or MPI), sharded validation, failure. */
#define _GNU_SOURCE
#include "train_dist.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dist.h"
#include "mpi_comm.h"

struct pn_train_dist {
    pn_comm comm; /* MPI's, its sum timed (timed_sum) */
    pn_comm mpi;
    int local_rank, local_size;
    bool sync_bn;
    pn_backend *inner;            /* the backend as opened (the trainer may hold the synchronised wrapper) */
    const pn_collectives_i *coll; /* the backend's own collectives (NCCL), when they opened */
    void *coll_comm;
    float *stage;                  /* host copy of the gradients (device memory without collectives) */
    pn_dist_times times, reported; /* so far, and at the last epoch line */
};

/* The communicator the trainer and the synchronised backend use: MPI's sum, timed. */
static pn_status timed_sum(pn_comm *c, double *x, int64_t n) {
    pn_train_dist *d = c->ctx;
    double t0 = pn_now();
    pn_status st = d->mpi.sum_f64(&d->mpi, x, n);
    d->times.stats_seconds += pn_now() - t0;
    d->times.stats_calls++;
    return st;
}

int pn_train_dist_launch_size(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0) return atoi(v);
    }
    return 0;
}

static int launch_rank(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v) return atoi(v);
    }
    return 0;
}

/* One GPU per rank where several ranks share a machine: CUDA_VISIBLE_DEVICES becomes the local rank's entry of
 * its list (the local rank itself when unset). A list shorter than the ranks on the machine is left alone: a
 * launcher that binds one GPU per rank has set it already. */
static void pick_gpu(int local_rank, int local_size) {
    if (local_size < 2) return;
    const char *vis = getenv("CUDA_VISIBLE_DEVICES");
    char pick[64];
    if (!vis) {
        snprintf(pick, sizeof pick, "%d", local_rank);
    } else {
        int entries = 1, at = 0;
        for (const char *p = vis; *p; p++) entries += *p == ',';
        if (entries < local_size) return;
        const char *p = vis;
        while (at < local_rank) at += *p++ == ',';
        size_t len = strcspn(p, ",");
        snprintf(pick, sizeof pick, "%.*s", (int)(len < sizeof pick ? len : sizeof pick - 1), p);
    }
    setenv("CUDA_VISIBLE_DEVICES", pick, 1);
}

pn_status pn_train_dist_open(pn_train_dist **out) {
    *out = NULL;
    int size = pn_train_dist_launch_size();
    if (size == 0) return PN_OK;
    char desc[256];
    if (!pn_mpi_built_in(desc, sizeof desc)) {
        if (size == 1) return PN_OK;
        return pn_error(PN_ERR_ARG,
                        "launched as one of %d MPI ranks, but this pneumoseg has no MPI: install libopenmpi-dev and "
                        "openmpi-bin (tools/setup.sh) and rebuild with -DPN_MPI=ON, or run one process without mpirun",
                        size);
    }
    pn_train_dist *d = calloc(1, sizeof *d);
    if (!d) return pn_error(PN_ERR_NOMEM, "out of memory");
    pn_status st = pn_mpi_init(&d->mpi, &d->local_rank, &d->local_size);
    if (st != PN_OK) {
        free(d);
        return st;
    }
    d->comm = d->mpi;
    d->comm.ctx = d;
    d->comm.sum_f64 = timed_sum;
    if (d->comm.rank != 0) pn_log_set_level(0);
    pick_gpu(d->local_rank, d->local_size);
    pn_log_info("data-parallel: %d ranks (%d on this machine) over %s", d->comm.size, d->local_size, desc);
    *out = d;
    return PN_OK;
}

int pn_train_dist_open_failed(pn_status st, const char *cmd) {
    if (launch_rank() == 0) fprintf(stderr, "pneumoseg %s: %s\n", cmd, pn_last_error()); /* one line for the job */
    return st == PN_ERR_ARG ? 2 : 1;
}

int pn_train_dist_rank(const pn_train_dist *d) { return d ? d->comm.rank : 0; }
int pn_train_dist_size(const pn_train_dist *d) { return d ? d->comm.size : 1; }
bool pn_train_dist_root(const pn_train_dist *d) { return !d || d->comm.rank == 0; }

int pn_train_dist_threads(const pn_train_dist *d, int threads) {
    if (!d || threads > 0 || d->local_size < 2) return threads;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int share = cores > d->local_size ? (int)(cores / d->local_size) : 1;
    cpu_set_t mask;
    if (sched_getaffinity(0, sizeof mask, &mask) == 0 && CPU_COUNT(&mask) < share) {
        pn_log_info("each rank is bound to %d core(s) (mpirun binds ranks to cores): with mpirun --bind-to none each "
                    "could use %d threads",
                    CPU_COUNT(&mask), share);
        share = CPU_COUNT(&mask) > 0 ? CPU_COUNT(&mask) : 1;
    }
    return share;
}

pn_status pn_train_dist_wrap(pn_train_dist *d, bool sync_bn, pn_backend **be) {
    if (!d) return PN_OK;
    d->inner = *be;
    d->sync_bn = sync_bn && d->comm.size > 1;
    if (!d->sync_bn) return PN_OK;
    return pn_dist_sync_backend(*be, &d->comm, be);
}

/* Every rank must compute alike: the same backend on every rank (a rank without a GPU would fall back to the CPU). */
static pn_status check_same_backend(pn_train_dist *d) {
    const char *names[] = {"ref", "cpu", "cuda"};
    double count[4] = {0};
    int mine = 3;
    for (int i = 0; i < 3; i++)
        if (strcmp(d->inner->name, names[i]) == 0) mine = i;
    count[mine] = 1;
    PN_TRY(d->comm.sum_f64(&d->comm, count, 4));
    if (count[mine] == d->comm.size) return PN_OK;
    return pn_error(
        PN_ERR_BACKEND,
        "the ranks run different backends (ref %.0f, cpu %.0f, cuda %.0f, other %.0f); this one runs %s: give "
        "every rank a GPU (CUDA_VISIBLE_DEVICES) or name one --backend",
        count[0], count[1], count[2], count[3], d->inner->name);
}

/* The backend's collectives (NCCL), where every rank can load them: rank 0 makes the id and sends it over MPI with
 * whether that worked, so every rank takes the same way; otherwise the gradients go over MPI through host copies. */
static pn_status open_collectives(pn_train_dist *d) {
    const pn_collectives_i *coll = NULL;
    char why[300] = "the backend has no collectives";
    if (d->inner->collectives && d->inner->collectives(d->inner, &coll) != PN_OK)
        snprintf(why, sizeof why, "%s", pn_last_error());
    double have = coll != NULL;
    PN_TRY(d->comm.sum_f64(&d->comm, &have, 1));
    unsigned char msg[1 + 1024] = {0};
    if (have == d->comm.size && d->comm.rank == 0) {
        if (coll->id_bytes > sizeof msg - 1) return pn_error(PN_ERR_BACKEND, "the %s id is too large", coll->name);
        pn_status st = coll->make_id(d->inner, msg + 1);
        msg[0] = st == PN_OK;
        if (st != PN_OK) snprintf(why, sizeof why, "%s", pn_last_error());
    }
    if (have == d->comm.size) PN_TRY(pn_mpi_broadcast(msg, sizeof msg));
    if (!msg[0]) {
        if (coll && have < d->comm.size) snprintf(why, sizeof why, "%s is missing on some rank", coll->name);
        pn_log_info("gradients: MPI all-reduce through host copies (%s)", why);
        return PN_OK;
    }
    PN_TRY(coll->open(d->inner, msg + 1, d->comm.rank, d->comm.size, &d->coll_comm));
    d->coll = coll;
    pn_log_info("gradients: %s all-reduce on device buffers", coll->name);
    return PN_OK;
}

pn_status pn_train_dist_start(pn_train_dist *d) {
    if (!d) return PN_OK;
    PN_TRY(check_same_backend(d));
    pn_log_info("BatchNorm: %s", d->sync_bn ? "batch statistics and loss sums over the global batch (--sync-bn)"
                                            : "each rank normalises its share; running statistics averaged per epoch");
    if (!d->inner->host_memory) return open_collectives(d);
    pn_log_info("gradients: MPI all-reduce in host memory");
    return PN_OK;
}

/* The gradients of every parameter as one flat tensor: the model keeps them in one buffer (the grad views of
 * pn_unet_param point into it, padding between them zero); checked here. */
static pn_status flat_grads(pn_unet *m, pn_tensor *flat) {
    pn_buffer *buf = pn_unet_param_at(m, 0)->grad.buf;
    for (int i = 1; i < pn_unet_num_params(m); i++)
        if (pn_unet_param_at(m, i)->grad.buf != buf)
            return pn_error(PN_ERR_ARG, "data-parallel training needs the gradients in one buffer");
    *flat = pn_tensor_vec((int64_t)(buf->bytes / sizeof(float)));
    flat->buf = buf;
    flat->name = "gradients";
    return PN_OK;
}

/* The flat gradients summed over the ranks (the backend's collectives, MPI in host memory, or MPI through a host
 * copy), then divided by the ranks unless synchronised. */
static pn_status reduce_grads(pn_train_dist *d, pn_unet *m) {
    pn_tensor flat;
    PN_TRY(flat_grads(m, &flat));
    int64_t n = pn_tensor_numel(&flat);
    if (d->coll) {
        PN_TRY(d->coll->sum_f32(d->inner, d->coll_comm, &flat));
        pn_buffer_touch(flat.buf);
    } else if (flat.buf->host) {
        PN_TRY(pn_mpi_sum_f32(pn_tensor_host_f32(&flat), n));
        pn_buffer_touch(flat.buf);
    } else {
        if (!d->stage && !(d->stage = malloc((size_t)n * sizeof(float))))
            return pn_error(PN_ERR_NOMEM, "out of memory for the host copy of the gradients");
        PN_TRY(pn_tensor_get(&flat, d->stage));
        PN_TRY(pn_mpi_sum_f32(d->stage, n));
        PN_TRY(pn_tensor_set(&flat, d->stage));
    }
    if (d->sync_bn || d->comm.size == 1) return PN_OK;
    return pn_unet_scale_grad(m, 1.0 / d->comm.size);
}

pn_status pn_train_dist_grads(pn_train_dist *d, pn_unet *m) {
    if (!d) return PN_OK;
    double t0 = pn_now();
    pn_status st = reduce_grads(d, m);
    d->times.grad_seconds += pn_now() - t0;
    d->times.grad_calls++;
    return st;
}

void pn_train_dist_times(const pn_train_dist *d, pn_dist_times *out) {
    memset(out, 0, sizeof *out);
    if (d) *out = d->times;
}

/* The running mean and variance of every BatchNorm averaged over the ranks. */
static pn_status average_running_stats(pn_train_dist *d, pn_unet *m) {
    int64_t total = 0;
    for (int i = 0; i < pn_unet_num_bns(m); i++) total += 2 * pn_tensor_numel(&pn_unet_bn_at(m, i)->running_mean);
    float *f = malloc((size_t)(total + 1) * sizeof *f);
    double *v = malloc((size_t)(total + 1) * sizeof *v);
    pn_status st = f && v ? PN_OK : pn_error(PN_ERR_NOMEM, "out of memory");
    for (int pass = 0; pass < 2 && st == PN_OK; pass++) { /* 0: gather and reduce, 1: write back */
        int64_t at = 0;
        for (int i = 0; i < pn_unet_num_bns(m) && st == PN_OK; i++) {
            pn_unet_bn *b = pn_unet_bn_at(m, i);
            const pn_tensor *ts[2] = {&b->running_mean, &b->running_var};
            for (int k = 0; k < 2 && st == PN_OK; k++) {
                if (pass == 1)
                    st = pn_tensor_set(ts[k], f + at);
                else
                    st = pn_tensor_get(ts[k], f + at);
                at += pn_tensor_numel(ts[k]);
            }
        }
        if (pass == 1 || st != PN_OK) break;
        for (int64_t i = 0; i < total; i++) v[i] = f[i];
        st = d->comm.sum_f64(&d->comm, v, total);
        for (int64_t i = 0; i < total; i++) f[i] = (float)(v[i] / d->comm.size);
    }
    free(f);
    free(v);
    return st;
}

pn_status pn_train_dist_epoch_end(pn_train_dist *d, pn_unet *m, double *loss_sum, double *batches) {
    if (!d) return PN_OK;
    double v[2] = {*loss_sum, *batches};
    PN_TRY(d->comm.sum_f64(&d->comm, v, 2));
    *loss_sum = v[0], *batches = v[1];
    pn_dist_times now = d->times, was = d->reported;
    d->reported = now;
    pn_log_info("data-parallel: %lld gradient all-reduces %.2f s, %lld small all-reduces (statistics, sums) %.2f s",
                (long long)(now.grad_calls - was.grad_calls), now.grad_seconds - was.grad_seconds,
                (long long)(now.stats_calls - was.stats_calls), now.stats_seconds - was.stats_seconds);
    return d->sync_bn || d->comm.size == 1 ? PN_OK : average_running_stats(d, m);
}

pn_status pn_train_dist_sum(pn_train_dist *d, double *x, int n) { return d ? d->comm.sum_f64(&d->comm, x, n) : PN_OK; }

/* Sums the validation results of every rank into *grid and *out (the loss as a sum over batches). */
static pn_status reduce_validation(pn_train_dist *d, int batch, pn_run_grid *run_grid, pn_val_result *out) {
    pn_triplet_grid *grid = &run_grid->g;
    int cells = grid->n_top * grid->n_area * grid->n_bottom;
    double *v = malloc((size_t)(3 * cells + 4) * sizeof *v);
    if (!v) return pn_error(PN_ERR_NOMEM, "out of memory");
    double batches = (double)((out->images + batch - 1) / batch);
    v[0] = out->loss * batches, v[1] = batches, v[2] = (double)grid->images, v[3] = (double)grid->positives;
    for (int i = 0; i < cells; i++)
        v[4 + i] = grid->score[i], v[4 + cells + i] = grid->pos_dice[i],
              v[4 + 2 * cells + i] = (double)grid->empty_ok[i];
    pn_status st = d->comm.sum_f64(&d->comm, v, 3 * cells + 4);
    if (st == PN_OK) {
        grid->images = (int64_t)v[2], grid->positives = (int64_t)v[3];
        for (int i = 0; i < cells; i++)
            grid->score[i] = v[4 + i], grid->pos_dice[i] = v[4 + cells + i],
            grid->empty_ok[i] = (int64_t)v[4 + 2 * cells + i];
        int best = pn_grid_best(grid);
        out->loss = v[1] > 0 ? v[0] / v[1] : 0;
        out->best = pn_grid_triplet(grid, best);
        out->best_1024 = pn_tool_grid_triplet(run_grid, best);
        out->best_index = best;
        pn_grid_means(grid, best, &out->score, &out->pos_dice, &out->empty_acc);
        out->images = grid->images;
        out->positives = grid->positives;
    }
    free(v);
    return st;
}

pn_status pn_train_dist_validate(pn_train_dist *d, pn_unet *m, const pn_loader_config *cfg, bool tta, const double w[3],
                                 bool progress, pn_run_grid *grid, pn_val_result *out) {
    if (!d || d->comm.size == 1) return pn_tool_validate(m, cfg, tta, w, progress, grid, out);
    int b = cfg->batch_size, n = cfg->n_ids, size = d->comm.size, mine = 0;
    const char **ids = malloc(sizeof(char *) * (size_t)(n + 1));
    bool *pos = malloc(sizeof(bool) * (size_t)(n + 1));
    if (!ids || !pos) {
        free(ids), free(pos);
        return pn_error(PN_ERR_NOMEM, "out of memory");
    }
    for (int j = d->comm.rank; (int64_t)j * b < n; j += size)
        for (int i = j * b; i < n && i < (j + 1) * b; i++, mine++) {
            ids[mine] = cfg->ids[i];
            pos[mine] = cfg->has_mask ? cfg->has_mask[i] : false;
        }
    memset(out, 0, sizeof *out);
    pn_status st = PN_OK;
    if (mine > 0) {
        pn_loader_config part = *cfg;
        part.ids = ids, part.has_mask = pos, part.n_ids = mine;
        st = pn_tool_validate(m, &part, tta, w, progress && d->comm.rank == 0, grid, out);
    }
    free(ids);
    free(pos);
    return st == PN_OK ? reduce_validation(d, b, grid, out) : st;
}

void pn_train_dist_fail(pn_train_dist *d, const char *cmd) {
    if (d->comm.size > 1 && d->comm.rank != 0) sleep(1);
    fprintf(stderr, "pneumoseg %s: rank %d of %d: %s\n", cmd, d->comm.rank, d->comm.size, pn_last_error());
    fflush(stderr);
    pn_mpi_abort(1);
}

void pn_train_dist_close(pn_train_dist *d) {
    if (!d) return;
    if (d->coll) d->coll->close(d->inner, d->coll_comm);
    free(d->stage);
    pn_mpi_finalize();
    free(d);
}

void pn_train_dist_describe(char *buf, size_t n) {
    char desc[256];
    pn_mpi_built_in(desc, sizeof desc);
    snprintf(buf, n, "MPI: %s", desc);
}
