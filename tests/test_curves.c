/* test_curves: the 5x7 font draws known glyphs to known pixels, and the training-curves PNG decodes at
 * its size, carries its labels (legend, tick values, axis titles) and puts each curve where its values
 * say. Usage: test_curves SCRATCH_DIR */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "data/png.h"
#include "tools/curves.h"
#include "tools/font5x7.h"

static const uint8_t INK[3] = {1, 2, 3};

static int64_t count_color(const uint8_t *img, int w, int h, int x0, int y0, int x1, int y1, const uint8_t c[3]) {
    int64_t n = 0;
    for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < h; y++)
        for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < w; x++) n += memcmp(img + 3 * ((size_t)y * w + x), c, 3) == 0;
    return n;
}

static void test_font(void) {
    enum { FW = 64, FH = 20 };
    static uint8_t img[FW * FH * 3];
    memset(img, 255, sizeof img);
    /* "0" is .###. #...# #..## #.#.# ##..# #...# .###. : 19 pixels, 4x as many at scale 2 */
    CHECK(pn_font_draw(img, FW, FH, 0, 0, "0", 1, INK) == 19);
    CHECK(count_color(img, FW, FH, 0, 0, FW - 1, FH - 1, INK) == 19);
    CHECK(count_color(img, FW, FH, 0, 0, 0, 6, INK) == 5); /* left column: rows 1-5 */
    CHECK(count_color(img, FW, FH, 1, 0, 3, 0, INK) == 3); /* top row: the middle three */
    memset(img, 255, sizeof img);
    CHECK(pn_font_draw(img, FW, FH, 2, 3, "0", 2, INK) == 76);
    CHECK(count_color(img, FW, FH, 2, 3, 11, 16, INK) == 76); /* all inside its 10x14 box */
    memset(img, 255, sizeof img);
    /* "-" is one full middle row, "." a 2x2 dot, " " nothing: 5 + 4 + 0 */
    CHECK(pn_font_draw(img, FW, FH, 0, 0, "- .", 1, INK) == 9);
    CHECK(count_color(img, FW, FH, 0, 3, 4, 3, INK) == 5);
    CHECK(count_color(img, FW, FH, 12, 0, 16, 6, INK) == 4);
    CHECK(pn_font_text_width("abc", 1) == 17 && pn_font_text_width("abc", 2) == 34 && pn_font_text_width("", 2) == 0);
    /* an unknown character is drawn as '?'; clipping at the border counts only what is drawn */
    CHECK(pn_font_glyph('~') == pn_font_glyph('?') && pn_font_glyph('a') != pn_font_glyph('?'));
    memset(img, 255, sizeof img);
    CHECK(pn_font_draw(img, FW, FH, -1, 0, "0", 1, INK) == 19 - 5);
    /* every letter and digit has a glyph of its own */
    const char *all = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-+()%";
    int own = 0;
    for (const char *p = all; *p; p++) own += pn_font_glyph(*p) != pn_font_glyph('?');
    CHECK(own == (int)strlen(all));
}

enum { COLS = 5, C_TRAIN = 1, C_VAL = 2, C_SCORE = 3, C_DICE = 4, ROWS = 8 };
static const uint8_t RED[3] = {220, 40, 40}, BLUE[3] = {40, 80, 220}, GREEN[3] = {30, 160, 60},
                     ORANGE[3] = {240, 140, 20}, TEXT[3] = {30, 30, 30};

static bool pixel_is(const uint8_t *img, int x, int y, const uint8_t c[3]) {
    return memcmp(img + 3 * ((size_t)y * PN_CURVES_W + x), c, 3) == 0;
}

static void test_curves(const char *dir) {
    float h[ROWS * COLS];
    /* train loss falls linearly 2.8 -> 0.7, val loss stays 1.5, the score stays 0.5, dice rises 0 -> 0.7 */
    for (int r = 0; r < ROWS; r++) {
        h[r * COLS] = (float)(r + 1);
        h[r * COLS + C_TRAIN] = 2.8f - 0.3f * (float)r;
        h[r * COLS + C_VAL] = 1.5f;
        h[r * COLS + C_SCORE] = 0.5f;
        h[r * COLS + C_DICE] = 0.1f * (float)r;
    }
    pn_curves_panel p[2];
    pn_curves_layout(h, ROWS, COLS, C_TRAIN, C_VAL, p);
    CHECK_NEAR(p[0].vmax, 3.0, 1e-12); /* the round number above 2.8 with a step of 0.5 */
    CHECK_NEAR(p[0].step, 0.5, 1e-12);
    CHECK_NEAR(p[1].vmax, 1.0, 0);
    CHECK(p[0].x1 < p[1].x0); /* two panels side by side */
    static uint8_t img[PN_CURVES_W * PN_CURVES_H * 3];
    pn_curves_render(img, h, ROWS, COLS, C_TRAIN, C_VAL, C_SCORE, C_DICE);
    /* each curve passes through its points; the straight ones also half way between two points */
    int bad = 0;
    for (int r = 0; r < ROWS; r++) {
        int x = pn_curves_x(&p[0], ROWS, r);
        bad += !pixel_is(img, x, pn_curves_y(&p[0], h[r * COLS + C_TRAIN]), RED);
        bad += !pixel_is(img, x, pn_curves_y(&p[0], 1.5), BLUE);
        bad += !pixel_is(img, pn_curves_x(&p[1], ROWS, r), pn_curves_y(&p[1], h[r * COLS + C_DICE]), ORANGE);
        if (r + 1 < ROWS) {
            int xm = (pn_curves_x(&p[1], ROWS, r) + pn_curves_x(&p[1], ROWS, r + 1)) / 2;
            bad += !pixel_is(img, xm, pn_curves_y(&p[1], 0.5), GREEN);
        }
    }
    CHECK_MSG(bad == 0, "%d curve points off", bad);
    /* the green line is horizontal: one band of at most 2 rows + the 5-pixel markers */
    int64_t green = count_color(img, PN_CURVES_W, PN_CURVES_H, p[1].x0, p[1].y0, p[1].x1, p[1].y1, GREEN);
    int y5 = pn_curves_y(&p[1], 0.5);
    CHECK(count_color(img, PN_CURVES_W, PN_CURVES_H, p[1].x0, y5 - 2, p[1].x1, y5 + 2, GREEN) == green && green > 0);
    /* text: the legend and title above the plot areas hold the labels' pixels; tick values left of
     * the y axes; epoch numbers and "epoch" below the x axes */
    int64_t want = 0;
    static uint8_t scratch[PN_CURVES_W * PN_CURVES_H * 3];
    const char *top[] = {"loss", "train loss", "val loss", "score", "Kaggle score", "dice on positives"};
    for (int i = 0; i < 6; i++) want += pn_font_draw(scratch, PN_CURVES_W, PN_CURVES_H, 0, 0, top[i], 2, INK);
    CHECK_MSG(count_color(img, PN_CURVES_W, PN_CURVES_H, 0, 0, PN_CURVES_W - 1, p[0].y0 - 8, TEXT) == want,
              "legend text pixels %lld, want %lld",
              (long long)count_color(img, PN_CURVES_W, PN_CURVES_H, 0, 0, PN_CURVES_W - 1, p[0].y0 - 8, TEXT),
              (long long)want);
    int64_t yticks = 0;
    const char *ticks[] = {"0", "0.5", "1", "1.5", "2", "2.5", "3"};
    for (int i = 0; i < 7; i++) yticks += pn_font_draw(scratch, PN_CURVES_W, PN_CURVES_H, 0, 0, ticks[i], 2, INK);
    CHECK(count_color(img, PN_CURVES_W, PN_CURVES_H, 0, p[0].y0 - 8, p[0].x0 - 6, p[0].y1 + 8, TEXT) == yticks);
    int64_t xticks = pn_font_draw(scratch, PN_CURVES_W, PN_CURVES_H, 0, 0, "12345678epoch", 2, INK);
    CHECK(count_color(img, PN_CURVES_W, PN_CURVES_H, p[0].x0, p[0].y1 + 6, p[0].x1, PN_CURVES_H - 1, TEXT) == xticks);
    /* written and read back: an RGB PNG of the expected size with the same pixels */
    mkdir(dir, 0777);
    char path[4096];
    snprintf(path, sizeof path, "%s/curves.png", dir);
    CHECK(pn_curves_png(path, h, ROWS, COLS, C_TRAIN, C_VAL, C_SCORE, C_DICE) == PN_OK);
    pn_image im;
    if (pn_png_read(path, &im) != PN_OK) {
        SKIP("cannot read PNGs in this build: %s", pn_last_error());
        return;
    }
    CHECK(im.width == PN_CURVES_W && im.height == PN_CURVES_H && im.channels == 3);
    CHECK(im.width == PN_CURVES_W && im.bit_depth == 8 && memcmp(im.pixels, img, sizeof img) == 0);
    pn_image_free(&im);
    /* no rows yet, or non-finite values: still a labelled, valid plot */
    float nan_rows[2 * COLS] = {1, NAN, NAN, NAN, NAN, 2, INFINITY, 1, 0.5f, 0.5f};
    snprintf(path, sizeof path, "%s/curves_edge.png", dir);
    CHECK(pn_curves_png(path, nan_rows, 2, COLS, C_TRAIN, C_VAL, C_SCORE, C_DICE) == PN_OK);
    CHECK(pn_curves_png(path, NULL, 0, COLS, C_TRAIN, C_VAL, C_SCORE, C_DICE) == PN_OK);
}

int main(int argc, char **argv) {
    test_font();
    test_curves(argc > 1 ? argv[1] : "scratch_curves");
    return check_report("test_curves");
}
