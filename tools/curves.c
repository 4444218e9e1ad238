/* curves: a tiny line-plot rasteriser for the training curves PNG. */
#include "curves.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/png.h"

enum { W = 800, H = 360, PANEL = 400, MARGIN = 30 };

static void put(uint8_t *img, int x, int y, const uint8_t c[3]) {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    memcpy(img + 3 * ((size_t)y * W + x), c, 3);
}

static void line(uint8_t *img, int x0, int y0, int x1, int y1, const uint8_t c[3]) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    for (;;) {
        put(img, x0, y0, c);
        put(img, x0, y0 + 1, c);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

/* Plots column `col` of history in the panel starting at x `left`, values 0..vmax. */
static void series(uint8_t *img, int left, const float *h, int rows, int cols, int col, double vmax, const uint8_t c[3]) {
    int pw = PANEL - 2 * MARGIN, ph = H - 2 * MARGIN, px = 0, py = 0;
    for (int r = 0; r < rows; r++) {
        double v = h[(size_t)r * cols + col];
        if (!isfinite(v)) v = 0;
        int x = left + MARGIN + (rows > 1 ? (int)lround((double)r * pw / (rows - 1)) : pw / 2);
        int y = H - MARGIN - (int)lround(fmin(fmax(v / vmax, 0), 1) * ph);
        if (r > 0) line(img, px, py, x, y, c);
        for (int d = -2; d <= 2; d++) put(img, x + d, y, c), put(img, x, y + d, c);
        px = x;
        py = y;
    }
}

static void frame(uint8_t *img, int left) {
    static const uint8_t axis[3] = {90, 90, 90}, grid[3] = {225, 225, 225};
    for (int k = 1; k <= 4; k++) {
        int y = H - MARGIN - k * (H - 2 * MARGIN) / 5;
        line(img, left + MARGIN, y, left + PANEL - MARGIN, y, grid);
    }
    line(img, left + MARGIN, MARGIN, left + MARGIN, H - MARGIN, axis);
    line(img, left + MARGIN, H - MARGIN, left + PANEL - MARGIN, H - MARGIN, axis);
}

pn_status pn_curves_png(const char *path, const float *history, int rows, int cols, int c_train, int c_val,
                        int c_score, int c_dice) {
    static const uint8_t red[3] = {220, 40, 40}, blue[3] = {40, 80, 220}, green[3] = {30, 160, 60},
                         orange[3] = {240, 140, 20};
    uint8_t *img = malloc((size_t)W * H * 3);
    if (!img) return pn_error(PN_ERR_NOMEM, "out of memory");
    memset(img, 255, (size_t)W * H * 3);
    frame(img, 0);
    frame(img, PANEL);
    double lmax = 1e-6;
    for (int r = 0; r < rows; r++) {
        double a = history[(size_t)r * cols + c_train], b = history[(size_t)r * cols + c_val];
        if (isfinite(a)) lmax = fmax(lmax, a);
        if (isfinite(b)) lmax = fmax(lmax, b);
    }
    series(img, 0, history, rows, cols, c_train, lmax * 1.05, red);
    series(img, 0, history, rows, cols, c_val, lmax * 1.05, blue);
    series(img, PANEL, history, rows, cols, c_score, 1.0, green);
    series(img, PANEL, history, rows, cols, c_dice, 1.0, orange);
    pn_status st = pn_png_write(path, W, H, 3, 8, img);
    free(img);
    return st;
}
