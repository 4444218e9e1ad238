/* dist: what core knows of data-parallel training. A process communicator (pn_comm: implemented outside core, over
 * MPI by the CLI), a backend's own collectives (pn_collectives_i: NCCL in the cuda module), and the synchronised
 * backend: a wrapper that makes BatchNorm's batch statistics and ComboLoss's batch sums those of the global batch
 * spread over the ranks, so N ranks with a share each compute what one process computes on the whole batch. */
#ifndef PN_DIST_H
#define PN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The processes of one training job. Every rank makes the same calls in the same order. */
typedef struct pn_comm {
    int rank, size;
    void *ctx;
    /* Sums n doubles over the ranks, in place; every rank gets the same values. */
    pn_status (*sum_f64)(struct pn_comm *c, double *x, int64_t n);
} pn_comm;

/* A backend's own collective library on its device buffers (pn_backend.collectives returns it). Rank 0 makes an
 * id of id_bytes, the caller sends it to every rank (over pn_comm's transport), and each rank opens with it. */
typedef struct pn_collectives_i {
    const char *name; /* "nccl" */
    size_t id_bytes;
    pn_status (*make_id)(pn_backend *be, void *id);
    pn_status (*open)(pn_backend *be, const void *id, int rank, int size, void **comm);
    /* Sums float32 tensor t (its storage as flat floats: the flat gradient buffer) over the ranks in place; returns
     * when the sum is in t. */
    pn_status (*sum_f32)(pn_backend *be, void *comm, const pn_tensor *t);
    void (*close)(pn_backend *be, void *comm);
} pn_collectives_i;

/* Wraps `inner` for synchronised training over `comm` (which must outlive it): BATCHNORM_TRAIN_FWD normalises with
 * the mean and variance of the global batch (each rank's mean and variance combined in double) and updates
 * the running statistics with them; BATCHNORM_BWD uses the global sums of dy and dy * xhat; COMBO_LOSS_FWD/BWD
 * compute the loss and its gradient from the global sums (BCE and focal means over every pixel of every rank, one
 * Dice over the whole global batch). Parameter gradients stay this rank's part: their sum over the ranks is the
 * global batch's gradient. Every other call goes to inner unchanged (the name too). The wrapper owns inner:
 * pn_backend_close closes both. */
pn_status pn_dist_sync_backend(pn_backend *inner, pn_comm *comm, pn_backend **out);

#ifdef __cplusplus
}
#endif

#endif
