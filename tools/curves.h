/* curves: the training curves as a PNG (losses on the left panel, validation scores on the right). */
#ifndef PN_TOOLS_CURVES_H
#define PN_TOOLS_CURVES_H

#include <stdint.h>

#include "core/base.h"

enum { PN_CURVES_W = 1000, PN_CURVES_H = 440 };

/* One panel's plot area in image pixels: x0..x1 left to right, y0 (value vmax) .. y1 (value 0). */
typedef struct pn_curves_panel {
    int x0, y0, x1, y1;
    double vmax, step; /* axis top and tick step */
} pn_curves_panel;

/* The two panels for this history: [0] losses, 0 .. a round number above the largest finite train or
 * val loss; [1] scores, 0 .. 1 in steps of 0.2. */
void pn_curves_layout(const float *history, int rows, int cols, int c_train, int c_val, pn_curves_panel out[2]);
/* Pixel column of 0-based epoch r of `rows` (epoch r + 1 at the centre of its 1/rows of the width). */
int pn_curves_x(const pn_curves_panel *p, int rows, int r);
/* Pixel row of value v (clamped to the panel). */
int pn_curves_y(const pn_curves_panel *p, double v);

/* Draws the plot into rgb (PN_CURVES_W x PN_CURVES_H x 3). history: rows x cols floats, rows are epochs;
 * the columns plotted are given by index. Left panel: train loss (red) and val loss (blue); right
 * panel: Kaggle score (green) and dice on positives (orange); each with a legend naming its curves,
 * tick values on the y axis and epochs on the x axis, light grid lines at the ticks. */
void pn_curves_render(uint8_t *rgb, const float *history, int rows, int cols, int c_train, int c_val, int c_score,
                      int c_dice);
/* pn_curves_render written as an RGB PNG, atomically. */
pn_status pn_curves_png(const char *path, const float *history, int rows, int cols, int c_train, int c_val, int c_score,
                        int c_dice);

#endif
