/* metrics: Kaggle score, host ComboLoss and the triplet grid search of validation. */
#include "metrics.h"

#include "combo_loss.h"

#include <math.h>
#include <string.h>

double pn_kaggle_dice_counts(int64_t pred, int64_t truth, int64_t inter) {
    if (pred + truth == 0) return 1.0;
    return 2.0 * (double)inter / (double)(pred + truth);
}

double pn_kaggle_dice(const uint8_t *pred, const uint8_t *truth, int64_t n) {
    int64_t p = 0, t = 0, i2 = 0;
    for (int64_t i = 0; i < n; i++) {
        bool a = pred[i] != 0, b = truth[i] != 0;
        p += a;
        t += b;
        i2 += a && b;
    }
    return pn_kaggle_dice_counts(p, t, i2);
}

double pn_combo_loss_host(const float *logits, const float *target, int64_t n, double w_bce, double w_dice,
                          double w_focal) {
    pn_combo_sums a = pn_combo_accumulate(logits, target, n);
    pn_combo_loss_params p = {(float)w_bce, (float)w_dice, (float)w_focal, 1.0f};
    return pn_combo_loss_value(&a, &p);
}

pn_status pn_grid_init(pn_triplet_grid *g, const float *tops, int n_top, const int64_t *areas, int n_area,
                       const float *bottoms, int n_bottom) {
    if (n_top < 1 || n_top > PN_GRID_MAX || n_area < 1 || n_area > PN_GRID_MAX || n_bottom < 1 ||
        n_bottom > PN_GRID_MAX)
        return pn_error(PN_ERR_ARG, "triplet grid: each list needs 1 to %d values (got %d tops, %d areas, %d bottoms)",
                        PN_GRID_MAX, n_top, n_area, n_bottom);
    memset(g, 0, sizeof *g);
    g->n_top = n_top;
    g->n_area = n_area;
    g->n_bottom = n_bottom;
    memcpy(g->tops, tops, (size_t)n_top * sizeof *tops);
    memcpy(g->areas, areas, (size_t)n_area * sizeof *areas);
    memcpy(g->bottoms, bottoms, (size_t)n_bottom * sizeof *bottoms);
    return PN_OK;
}

void pn_grid_add(pn_triplet_grid *g, const float *prob, const uint8_t *truth, int64_t n) {
    int64_t above_top[PN_GRID_MAX] = {0}, above_bottom[PN_GRID_MAX] = {0}, inter[PN_GRID_MAX] = {0}, t = 0;
    for (int64_t i = 0; i < n; i++) {
        float p = prob[i];
        bool y = truth[i] != 0;
        t += y;
        for (int k = 0; k < g->n_top; k++) above_top[k] += p > g->tops[k];
        for (int k = 0; k < g->n_bottom; k++) {
            bool on = p > g->bottoms[k];
            above_bottom[k] += on;
            inter[k] += on && y;
        }
    }
    bool positive = t > 0;
    g->images++;
    g->positives += positive;
    for (int a = 0; a < g->n_top; a++)
        for (int r = 0; r < g->n_area; r++)
            for (int b = 0; b < g->n_bottom; b++) {
                int idx = (a * g->n_area + r) * g->n_bottom + b;
                bool empty = above_top[a] < g->areas[r];
                double s = empty ? pn_kaggle_dice_counts(0, t, 0) : pn_kaggle_dice_counts(above_bottom[b], t, inter[b]);
                g->score[idx] += s;
                if (positive)
                    g->pos_dice[idx] += s;
                else
                    g->empty_ok[idx] += s == 1.0;
            }
}

int pn_grid_best(const pn_triplet_grid *g) {
    int n = g->n_top * g->n_area * g->n_bottom, best = 0;
    for (int i = 1; i < n; i++)
        if (g->score[i] > g->score[best]) best = i;
    return best;
}

pn_triplet pn_grid_triplet(const pn_triplet_grid *g, int index) {
    int b = index % g->n_bottom, r = (index / g->n_bottom) % g->n_area, a = index / (g->n_bottom * g->n_area);
    pn_triplet t = {g->tops[a], g->areas[r], g->bottoms[b]};
    return t;
}

void pn_grid_means(const pn_triplet_grid *g, int index, double *score, double *pos_dice, double *empty_acc) {
    int64_t empties = g->images - g->positives;
    if (score) *score = g->images ? g->score[index] / (double)g->images : 0.0;
    if (pos_dice) *pos_dice = g->positives ? g->pos_dice[index] / (double)g->positives : 0.0;
    if (empty_acc) *empty_acc = empties ? (double)g->empty_ok[index] / (double)empties : 0.0;
}
