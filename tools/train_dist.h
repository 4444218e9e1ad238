/* train_dist: `pneumoseg train` as one rank of a data-parallel job (mpirun -np N): joining the job, this rank's GPU
 * and threads, the synchronised backend for --sync-bn, the gradient all-reduce (NCCL on cuda ranks when the backend
 * has it, else MPI), sharded and reduced validation, and stopping every rank when one fails. A NULL pn_train_dist is
 * a plain single-process run, and every function here then does what one process does. */
#ifndef PN_TOOLS_TRAIN_DIST_H
#define PN_TOOLS_TRAIN_DIST_H

#include <stdbool.h>

#include "core/unet.h"
#include "triplet_grid.h"
#include "validate.h"

typedef struct pn_train_dist pn_train_dist;

/* The job size an MPI launcher announced in the environment (OMPI_COMM_WORLD_SIZE, PMI_SIZE), 0 when there is none. */
int pn_train_dist_launch_size(void);
/* Joins the job this process was launched in: *out = NULL when no launcher started it. Without MPI built in and
 * launched as one of several ranks: PN_ERR_ARG saying how to build with MPI (the caller exits 2). Ranks other than 0
 * stop logging (rank 0 alone prints). Before the backend opens, a rank that is one of several on its machine gets
 * its own GPU (CUDA_VISIBLE_DEVICES, see README). */
pn_status pn_train_dist_open(pn_train_dist **out);
/* Prints pn_train_dist_open's error (launcher rank 0 only) and returns the exit code: 2 for PN_ERR_ARG, else 1. */
int pn_train_dist_open_failed(pn_status st, const char *cmd);
int pn_train_dist_rank(const pn_train_dist *d); /* 0 for NULL */
int pn_train_dist_size(const pn_train_dist *d); /* 1 for NULL */
bool pn_train_dist_root(const pn_train_dist *d);
/* --threads for this rank: 0 (all cores) becomes the cores divided among the ranks on this machine. */
int pn_train_dist_threads(const pn_train_dist *d, int threads);
/* Adopts the opened backend: with sync_bn (and more than one rank) *be becomes the synchronised wrapper around it
 * (core/dist.h), which then owns it. No communication. */
pn_status pn_train_dist_wrap(pn_train_dist *d, bool sync_bn, pn_backend **be);
/* Collective, once after setup: checks every rank runs the same backend and opens the backend's own collectives
 * (NCCL) where it has them; logs how gradients travel. */
pn_status pn_train_dist_start(pn_train_dist *d);

/* After the last batch of an optimizer step: the gradients of every rank summed (--sync-bn: each rank's part of
 * the global batch's gradient) or averaged (otherwise: each rank's own loss, as DDP). */
pn_status pn_train_dist_grads(pn_train_dist *d, pn_unet *m);
/* Seconds and calls so far in the gradient all-reduce and in the small all-reduces (the synchronised backend's
 * statistics, validation, the epoch's loss). Zero for NULL. */
typedef struct pn_dist_times {
    double grad_seconds, stats_seconds;
    int64_t grad_calls, stats_calls;
} pn_dist_times;
void pn_train_dist_times(const pn_train_dist *d, pn_dist_times *out);
/* Sums n doubles over the ranks, in place (nothing for NULL). */
pn_status pn_train_dist_sum(pn_train_dist *d, double *x, int n);
/* `pneumoseg bench dist`: data-parallel training steps and the gradient all-reduce, timed (bench_dist.c). */
int pn_bench_dist(int argc, char **argv);
/* At the end of an epoch: the loss sum and batch count added over the ranks, and the BatchNorm running statistics
 * averaged over them unless synchronised (then they are equal already), so that validation and the checkpoint see one
 * model (PyTorch's DDP keeps rank 0's; the average uses every rank's data). */
pn_status pn_train_dist_epoch_end(pn_train_dist *d, pn_unet *m, double *loss_sum, double *batches);
/* pn_tool_validate over the ranks: rank r takes the global batches r, r + N, ... of cfg (whole batches of
 * cfg->batch_size, so the loss per batch is one process's), and the losses and the triplet grid are summed, so
 * every rank gets what one process computes. Progress on rank 0 only. */
pn_status pn_train_dist_validate(pn_train_dist *d, pn_unet *m, const pn_loader_config *cfg, bool tta, const double w[3],
                                 bool progress, pn_run_grid *grid, pn_val_result *out);
/* Stops the whole job after a failure on this rank: one line "pneumoseg CMD: rank R of N: <error>" and MPI_Abort
 * (the other ranks are ended by the launcher). Ranks other than 0 wait a second first, so a failure that every rank
 * meets (a NaN loss in a synchronised run) is reported once, by rank 0. */
PN_NORETURN void pn_train_dist_fail(pn_train_dist *d, const char *cmd);
/* Closes the collectives and leaves the job (MPI_Finalize). */
void pn_train_dist_close(pn_train_dist *d);
/* "MPI: <library>" or why it is not built in, for `pneumoseg version`. */
void pn_train_dist_describe(char *buf, size_t n);

#endif
