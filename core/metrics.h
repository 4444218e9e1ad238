/* metrics: the Kaggle SIIM score, dice on positives, accuracy on empties, a host ComboLoss, and the
 * validation search over post-processing triplets; pure functions on float / uint8 arrays. */
#ifndef PN_METRICS_H
#define PN_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "base.h"

/* Kaggle's per-image score of a predicted mask against the truth (n pixels each, nonzero = foreground):
 * 2|X∩Y| / (|X| + |Y|), and 1 when both are empty (so any pixel predicted on an empty image scores 0). */
double pn_kaggle_dice(const uint8_t *pred, const uint8_t *truth, int64_t n);
/* The same from counts: |X|, |Y| and |X∩Y|. */
double pn_kaggle_dice_counts(int64_t pred, int64_t truth, int64_t inter);

/* ComboLoss (docs/REFERENCE.md, "Loss") of n logits against targets in [0, 1], computed in double on the host:
 * w_bce * BCE + w_dice * soft Dice (over all n) + w_focal * focal (gamma 2), clamped below at 1e-5.
 * Used for the validation loss; matches what pn_unet_loss computes on one batch. */
double pn_combo_loss_host(const float *logits, const float *target, int64_t n, double w_bce, double w_dice,
                          double w_focal);

/* A grid of post-processing triplets (top, min_area, bottom) and what each scored so far. */
#define PN_GRID_MAX 8
typedef struct pn_triplet {
    float top;        /* an image is empty unless at least min_area pixels have P > top */
    int64_t min_area; /* in pixels of the evaluated resolution */
    float bottom;     /* otherwise the mask is P > bottom */
} pn_triplet;

typedef struct pn_triplet_grid {
    int n_top, n_area, n_bottom;
    float tops[PN_GRID_MAX], bottoms[PN_GRID_MAX];
    int64_t areas[PN_GRID_MAX];
    /* sums per triplet, index [t][a][b] flattened as (t * n_area + a) * n_bottom + b */
    double score[PN_GRID_MAX * PN_GRID_MAX * PN_GRID_MAX];     /* Kaggle score summed over images */
    double pos_dice[PN_GRID_MAX * PN_GRID_MAX * PN_GRID_MAX];  /* dice summed over positive images */
    int64_t empty_ok[PN_GRID_MAX * PN_GRID_MAX * PN_GRID_MAX]; /* empty images predicted empty */
    int64_t images, positives;
} pn_triplet_grid;

/* Sets up a grid from lists (each 1..PN_GRID_MAX long) with zeroed sums. PN_ERR_ARG on bad sizes. */
pn_status pn_grid_init(pn_triplet_grid *g, const float *tops, int n_top, const int64_t *areas, int n_area,
                       const float *bottoms, int n_bottom);
/* Adds one image: probabilities `prob` and truth (nonzero = foreground), n pixels each. */
void pn_grid_add(pn_triplet_grid *g, const float *prob, const uint8_t *truth, int64_t n);
/* The flat index of the best triplet: highest mean score; ties go to the first in grid order. */
int pn_grid_best(const pn_triplet_grid *g);
/* The triplet at a flat index. */
pn_triplet pn_grid_triplet(const pn_triplet_grid *g, int index);
/* Means at a flat index: Kaggle score, dice on positives (NaN-free: 0 without positives), accuracy on
 * empty images (0 without empties). */
void pn_grid_means(const pn_triplet_grid *g, int index, double *score, double *pos_dice, double *empty_acc);

#endif
