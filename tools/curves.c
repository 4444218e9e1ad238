/* curves: a small line-plot rasteriser for the training curves PNG, labelled with the 5x7 font. */
#include "curves.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/png.h"
#include "font5x7.h"

enum { W = PN_CURVES_W, H = PN_CURVES_H, PANEL = W / 2, SCALE = 2, TEXT_H = PN_FONT_H * SCALE };
static const uint8_t TEXT[3] = {30, 30, 30}, AXIS[3] = {90, 90, 90}, GRID[3] = {228, 228, 228};
static const uint8_t RED[3] = {220, 40, 40}, BLUE[3] = {40, 80, 220}, GREEN[3] = {30, 160, 60},
                     ORANGE[3] = {240, 140, 20};

static void put(uint8_t *img, int x, int y, const uint8_t c[3]) {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    memcpy(img + 3 * ((size_t)y * W + x), c, 3);
}

static void rect(uint8_t *img, int x0, int y0, int x1, int y1, const uint8_t c[3]) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) put(img, x, y, c);
}

/* Bresenham line, `thick` pixels wide (a square brush). */
static void line(uint8_t *img, int x0, int y0, int x1, int y1, int thick, const uint8_t c[3]) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    int lo = -(thick - 1) / 2, hi = thick / 2;
    for (;;) {
        rect(img, x0 + lo, y0 + lo, x0 + hi, y0 + hi, c);
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

static void text(uint8_t *img, int x, int y, const char *s) { pn_font_draw(img, W, H, x, y, s, SCALE, TEXT); }

/* A round tick step giving at most 6 intervals up to vmax: 1, 2, 2.5 or 5 times a power of ten. */
static double nice_step(double vmax) {
    double raw = vmax / 6, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

void pn_curves_layout(const float *history, int rows, int cols, int c_train, int c_val, pn_curves_panel out[2]) {
    double lmax = 0;
    for (int r = 0; r < rows; r++) {
        double a = history[(size_t)r * cols + c_train], b = history[(size_t)r * cols + c_val];
        if (isfinite(a)) lmax = fmax(lmax, a);
        if (isfinite(b)) lmax = fmax(lmax, b);
    }
    if (!(lmax > 0)) lmax = 1;
    for (int p = 0; p < 2; p++) {
        out[p].x0 = p * PANEL + 84;
        out[p].x1 = p * PANEL + PANEL - 24;
        out[p].y0 = 64;
        out[p].y1 = H - 64;
    }
    out[0].step = nice_step(lmax);
    out[0].vmax = ceil(lmax / out[0].step - 1e-9) * out[0].step;
    out[1].step = 0.2;
    out[1].vmax = 1.0;
}

int pn_curves_x(const pn_curves_panel *p, int rows, int r) {
    return p->x0 + (int)lround((r + 0.5) * (p->x1 - p->x0) / (rows > 0 ? rows : 1));
}

int pn_curves_y(const pn_curves_panel *p, double v) {
    double f = fmin(fmax(v / p->vmax, 0), 1);
    return p->y1 - (int)lround(f * (p->y1 - p->y0));
}

/* Labels every 1, 2, 5, 10, 20, 50, ... epochs: at most 10 labels. */
static int epoch_step(int rows) {
    static const int base[3] = {1, 2, 5};
    for (int mag = 1;; mag *= 10)
        for (int i = 0; i < 3; i++)
            if (rows / (base[i] * mag) <= 10) return base[i] * mag;
}

/* Axes, grid, y tick values, epoch ticks and labels, the panel title and the legend. */
static void frame(uint8_t *img, const pn_curves_panel *p, int rows, const char *title, const char *names[2],
                  const uint8_t *colors[2]) {
    char buf[32];
    int ticks = (int)lround(p->vmax / p->step);
    for (int k = 0; k <= ticks; k++) {
        double v = k * p->step;
        int y = pn_curves_y(p, v);
        if (k > 0) line(img, p->x0 + 1, y, p->x1, y, 1, GRID);
        line(img, p->x0 - 5, y, p->x0, y, 1, AXIS);
        snprintf(buf, sizeof buf, "%.3g", v);
        text(img, p->x0 - 9 - pn_font_text_width(buf, SCALE), y - TEXT_H / 2, buf);
    }
    int every = epoch_step(rows);
    for (int r = 0; r < rows; r++) {
        if ((r + 1) % every != 0 && every > 1) continue;
        int x = pn_curves_x(p, rows, r);
        line(img, x, p->y1, x, p->y1 + 5, 1, AXIS);
        snprintf(buf, sizeof buf, "%d", r + 1);
        text(img, x - pn_font_text_width(buf, SCALE) / 2, p->y1 + 10, buf);
    }
    line(img, p->x0, p->y0, p->x0, p->y1, 2, AXIS);
    line(img, p->x0, p->y1, p->x1, p->y1, 2, AXIS);
    text(img, (p->x0 + p->x1 - pn_font_text_width("epoch", SCALE)) / 2, p->y1 + 34, "epoch");
    text(img, p->x0 - 70, 8, title);
    for (int i = 0; i < 2; i++) { /* the legend: one row per curve */
        int y = 8 + i * (TEXT_H + 8);
        line(img, p->x0 + 10, y + TEXT_H / 2, p->x0 + 34, y + TEXT_H / 2, 3, colors[i]);
        text(img, p->x0 + 44, y, names[i]);
    }
}

/* Plots column `col` of history: a 2-pixel line through the finite values and a square at each. */
static void series(uint8_t *img, const pn_curves_panel *p, const float *h, int rows, int cols, int col,
                   const uint8_t c[3]) {
    int px = 0, py = 0;
    bool have = false;
    for (int r = 0; r < rows; r++) {
        double v = h[(size_t)r * cols + col];
        if (!isfinite(v)) {
            have = false;
            continue;
        }
        int x = pn_curves_x(p, rows, r), y = pn_curves_y(p, v);
        if (have) line(img, px, py, x, y, 2, c);
        rect(img, x - 2, y - 2, x + 2, y + 2, c);
        px = x;
        py = y;
        have = true;
    }
}

void pn_curves_render(uint8_t *rgb, const float *history, int rows, int cols, int c_train, int c_val, int c_score,
                      int c_dice) {
    memset(rgb, 255, (size_t)W * H * 3);
    pn_curves_panel p[2];
    pn_curves_layout(history, rows, cols, c_train, c_val, p);
    const char *loss_names[2] = {"train loss", "val loss"}, *score_names[2] = {"Kaggle score", "dice on positives"};
    const uint8_t *loss_colors[2] = {RED, BLUE}, *score_colors[2] = {GREEN, ORANGE};
    frame(rgb, &p[0], rows, "loss", loss_names, loss_colors);
    frame(rgb, &p[1], rows, "score", score_names, score_colors);
    series(rgb, &p[0], history, rows, cols, c_train, RED);
    series(rgb, &p[0], history, rows, cols, c_val, BLUE);
    series(rgb, &p[1], history, rows, cols, c_score, GREEN);
    series(rgb, &p[1], history, rows, cols, c_dice, ORANGE);
}

pn_status pn_curves_png(const char *path, const float *history, int rows, int cols, int c_train, int c_val, int c_score,
                        int c_dice) {
    uint8_t *img = malloc((size_t)W * H * 3);
    if (!img) return pn_error(PN_ERR_NOMEM, "out of memory");
    pn_curves_render(img, history, rows, cols, c_train, c_val, c_score, c_dice);
    pn_status st = pn_png_write(path, W, H, 3, 8, img);
    free(img);
    return st;
}
