/* validate: a model's validation pass over a loader (loss, triplet grid, best triplet) and the batch prediction
 * it shares with predict (sigmoid, optional hflip TTA). */
#ifndef PN_TOOLS_VALIDATE_H
#define PN_TOOLS_VALIDATE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/metrics.h"
#include "core/unet.h"
#include "data/loader.h"
#include "tools/triplet_grid.h"

/* Set (to the signal number) by a command's SIGINT/SIGTERM handler: long loops (validation, training) stop at the
 * next batch. */
extern volatile sig_atomic_t pn_tool_stop;

typedef struct pn_val_result {
    double loss, score, pos_dice, empty_acc;
    pn_triplet best;      /* min area at the evaluated size (what the rule counts) */
    pn_triplet best_1024; /* the same triplet, min area in 1024-pixels (what is printed and stored) */
    int best_index;
    int64_t images, positives;
} pn_val_result;

/* Evaluates the model (EVAL mode at cfg->batch_size x cfg->size) on cfg's ids in order without
 * augmentation: mean ComboLoss per batch (weights w[3]), the grid (filled), and the best triplet's
 * Kaggle score, dice on positives and accuracy on empties. tta: average with the hflipped prediction.
 * The model is left planned for EVAL. */
pn_status pn_tool_validate(pn_unet *m, const pn_loader_config *cfg, bool tta, const double w[3], bool progress,
                           pn_run_grid *grid, pn_val_result *out);
/* Runs the planned EVAL model on a (n,3,s,s) input already set, with optional hflip TTA, and writes
 * n*s*s probabilities (and, if logits != NULL, the plain logits). `scratch` holds n*3*s*s floats. */
pn_status pn_tool_predict_batch(pn_unet *m, const float *input, int n, int s, bool tta, float *probs, float *logits,
                                float *scratch);

#endif
