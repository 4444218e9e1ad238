/* run_util: what train, eval and predict share: the fold split, validation over a loader, the triplet
 * grid from options, training-state checkpoints and small file helpers. */
#ifndef PN_TOOLS_RUN_UTIL_H
#define PN_TOOLS_RUN_UTIL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/metrics.h"
#include "core/unet.h"
#include "data/loader.h"

/* Set (to the signal number) by a command's SIGINT/SIGTERM handler: long loops (validation, training) stop at the
 * next batch. */
extern volatile sig_atomic_t pn_tool_stop;

/* The ids of one fold split read from `pneumoseg folds` output (ImageId,has_mask,kfold). */
typedef struct pn_split {
    char **train_ids, **val_ids;
    bool *train_pos, *val_pos;
    int n_train, n_val;
    char *storage;
} pn_split;
/* Reads folds.csv; validation = rows with kfold == fold, training = the rest. Every ImageId must be a plain file
 * name (no path) and appear in one row only; a fold with no image is a usage error. */
pn_status pn_split_read(const char *path, int fold, pn_split *out);
/* Checks that every image of the split (validation only unless train_too) is in DATA/train and every positive one
 * has its DATA/mask; one error lists the missing ids (the first ten and the count). */
pn_status pn_split_check_files(const pn_split *s, const char *data, bool train_too);
void pn_split_free(pn_split *s);

/* Triplets have one unit wherever a user reads or writes them: min_area in pixels of a 1024 image (the
 * competition's). Only the rule itself counts pixels at the working size: this is the one conversion. */
int64_t pn_area_at_size(int64_t area_1024, int size);

/* The triplet grid of a run: the core grid (min areas at the evaluated size) and the same areas as given. */
typedef struct pn_run_grid {
    pn_triplet_grid g;
    int64_t area_1024[PN_GRID_MAX];
} pn_run_grid;
/* The grid from comma lists (NULL = SPEC.md's {0.6,0.75} x {1000,2000,3000} x {0.3,0.4}): tops and bottoms in
 * (0, 1], areas whole numbers >= 0 of 1024-pixels; anything else is a usage error. */
pn_status pn_tool_grid(const char *tops, const char *areas, const char *bottoms, int size, pn_run_grid *g);
/* The triplet at a flat index of the grid with its min area in 1024-pixels. */
pn_triplet pn_tool_grid_triplet(const pn_run_grid *g, int index);
/* Parses "top,min_area,bottom" (min area in 1024-pixels) with the grid's ranges; a usage error naming `what`. */
pn_status pn_parse_triplet(const char *text, const char *what, pn_triplet *t);
/* "top,min_area,bottom" as the user writes it (the shortest decimals that read back to the same floats). */
const char *pn_triplet_text(const pn_triplet *t, char *buf, size_t cap);
/* Parses "a,b,c" of up to `cap` finite numbers (a usage error naming `what` otherwise). */
pn_status pn_parse_doubles(const char *text, const char *what, double *out, int cap, int *count);

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

bool pn_file_exists(const char *path);
/* Creates a directory (and parents); fine if it exists. */
pn_status pn_mkdirs(const char *path);
/* Sorted list of the files in `dir` whose names end with `suffix` (full paths), recursive or not. */
pn_status pn_list_files(const char *dir, const char *suffix, bool recursive, char ***out, int *count);
void pn_free_list(char **list, int count);

#endif
