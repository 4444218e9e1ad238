/* train_state: the training state next to a checkpoint (model, Adam's moments, schedule, history): what --resume reads.
 */
#ifndef PN_TOOLS_TRAIN_STATE_H
#define PN_TOOLS_TRAIN_STATE_H

#include <stdint.h>

#include "core/unet.h"

/* Training state next to a checkpoint: everything --resume needs. */
typedef struct pn_train_state {
    int epoch;    /* epochs completed */
    int64_t step; /* optimizer steps taken */
    double sched_lr, sched_best;
    int sched_bad;
    double best_score;
    int best_epoch;
    int hist_rows, hist_cols;
    float *history; /* hist_rows x hist_cols, malloc'ed */
    uint64_t seed;
    /* fp16 dynamic loss scaling (0 when off; then nothing of it is saved): the scale, the good steps since it
     * last changed, and the optimizer steps skipped for non-finite gradients so far */
    double loss_scale;
    int64_t scale_good, skipped_steps;
    int64_t frozen_steps; /* optimizer steps taken with the encoder frozen (--freeze-encoder; 0 = none saved) */
} pn_train_state;
/* Writes the model (as "model.<smp name>"), Adam's moments ("optimizer.m.<name>", "optimizer.v.<name>")
 * and the state (metadata, "train.history") into one safetensors file, atomically. */
pn_status pn_state_save(pn_unet *m, const pn_train_state *s, const char *path);
/* Reads it back into a model planned for TRAIN (moments allocated) and *s (history malloc'ed). */
pn_status pn_state_load(pn_unet *m, const char *path, pn_train_state *s);

#endif
