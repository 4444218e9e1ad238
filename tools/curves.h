/* curves: the training curves as a PNG (losses on the left panel, validation scores on the right). */
#ifndef PN_TOOLS_CURVES_H
#define PN_TOOLS_CURVES_H

#include "core/base.h"

/* history: rows x cols floats, rows are epochs; the columns plotted are given by index. Left panel:
 * train loss (red) and val loss (blue) scaled to their maximum; right panel: Kaggle score (green) and
 * dice on positives (orange) on 0..1, with grid lines at 0.2 steps. Written atomically. */
pn_status pn_curves_png(const char *path, const float *history, int rows, int cols, int c_train, int c_val,
                        int c_score, int c_dice);

#endif
