/* postprocess: triplet rule, 8-connected components, small-region removal, flips and bilinear resizes. */
#include "postprocess.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int pn_pp_components(const uint8_t *mask, int w, int h, int32_t *labels) {
    int64_t n = (int64_t)w * h;
    int32_t *stack = malloc((size_t)(n > 0 ? n : 1) * sizeof *stack);
    if (!stack) return -1;
    memset(labels, 0, (size_t)n * sizeof *labels);
    int count = 0;
    for (int64_t start = 0; start < n; start++) {
        if (!mask[start] || labels[start]) continue;
        int32_t label = ++count;
        int64_t top = 0;
        stack[top++] = (int32_t)start;
        labels[start] = label;
        while (top > 0) {
            int32_t p = stack[--top];
            int x = p % w, y = p / w;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int xx = x + dx, yy = y + dy;
                    if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
                    int32_t q = yy * w + xx;
                    if (mask[q] && !labels[q]) {
                        labels[q] = label;
                        stack[top++] = q;
                    }
                }
        }
    }
    free(stack);
    return count;
}

/* Chain-code steps as OpenCV numbers them: 0 right, then counter-clockwise on screen (y grows down). */
static const int DX[8] = {1, 1, 0, -1, -1, -1, 0, 1};
static const int DY[8] = {0, -1, -1, -1, 0, 1, 1, 1};

static bool is_on(const uint8_t *m, int w, int h, int x, int y) {
    return x >= 0 && y >= 0 && x < w && y < h && m[(int64_t)y * w + x];
}

double pn_pp_contour_area(const uint8_t *mask, int w, int h, int x0, int y0) {
    /* Suzuki-Abe outer border following as OpenCV's findContours: the first neighbour clockwise from the
     * left one, then around each border point counter-clockwise from the one after the way back. */
    int s = 4;
    do s = (s - 1) & 7;
    while (!is_on(mask, w, h, x0 + DX[s], y0 + DY[s]) && s != 4);
    if (s == 4) return 0; /* a single pixel */
    int x1 = x0 + DX[s], y1 = y0 + DY[s], x3 = x0, y3 = y0, px = x0, py = y0;
    double twice = 0;
    for (int64_t guard = 8 * (int64_t)w * h + 8; guard > 0; guard--) {
        int k = 1;
        while (k < 8 && !is_on(mask, w, h, x3 + DX[(s + k) & 7], y3 + DY[(s + k) & 7])) k++;
        s = (s + k) & 7;
        int x4 = x3 + DX[s], y4 = y3 + DY[s];
        twice += (double)px * y3 - (double)py * x3; /* shoelace term of the edge into (x3, y3) */
        px = x3;
        py = y3;
        if (x4 == x0 && y4 == y0 && x3 == x1 && y3 == y1) break;
        x3 = x4;
        y3 = y4;
        s = (s + 4) & 7;
    }
    twice += (double)px * y0 - (double)py * x0; /* closing edge back to the start */
    return fabs(twice) / 2;
}

int pn_pp_region_areas(const uint8_t *mask, int w, int h, const int32_t *labels, int count, double *areas) {
    int next = 1;
    for (int64_t i = 0; i < (int64_t)w * h && next <= count; i++)
        if (labels[i] == next) {
            areas[next] = pn_pp_contour_area(mask, w, h, (int)(i % w), (int)(i / w));
            next++;
        }
    areas[0] = 0;
    return next - 1;
}

int64_t pn_pp_remove_small(uint8_t *mask, int w, int h, double min_area) {
    int64_t n = (int64_t)w * h, removed = 0;
    int32_t *labels = malloc((size_t)(n > 0 ? n : 1) * sizeof *labels);
    if (!labels) return -1;
    int count = pn_pp_components(mask, w, h, labels);
    double *areas = count >= 0 ? malloc(((size_t)count + 1) * sizeof *areas) : NULL;
    if (!areas) {
        free(labels);
        return -1;
    }
    pn_pp_region_areas(mask, w, h, labels, count, areas);
    for (int64_t i = 0; i < n; i++)
        if (labels[i] && !(areas[labels[i]] > min_area)) {
            mask[i] = 0;
            removed++;
        }
    free(areas);
    free(labels);
    return removed;
}

int64_t pn_pp_triplet(const float *prob, int w, int h, float top, int64_t min_area, float bottom, double min_region,
                      uint8_t *mask) {
    int64_t n = (int64_t)w * h, above = 0, on = 0;
    for (int64_t i = 0; i < n; i++) above += prob[i] > top;
    if (above < min_area) {
        memset(mask, 0, (size_t)n);
        return 0;
    }
    for (int64_t i = 0; i < n; i++) mask[i] = prob[i] > bottom ? 255 : 0;
    if (min_region > 0) pn_pp_remove_small(mask, w, h, min_region);
    for (int64_t i = 0; i < n; i++) on += mask[i] != 0;
    return on;
}

void pn_pp_hflip_f32(float *map, int w, int h) {
    for (int y = 0; y < h; y++) {
        float *row = map + (int64_t)y * w;
        for (int a = 0, b = w - 1; a < b; a++, b--) {
            float t = row[a];
            row[a] = row[b];
            row[b] = t;
        }
    }
}

/* Source index and weight of destination coordinate d for a half-pixel-centre resize. */
static void src_coord(int d, double scale, int sn, int *i0, int *i1, float *frac) {
    double s = (d + 0.5) * scale - 0.5;
    if (s < 0) s = 0;
    int i = (int)floor(s);
    if (i > sn - 1) i = sn - 1;
    *i0 = i;
    *i1 = i + 1 < sn ? i + 1 : sn - 1;
    *frac = (float)(s - i);
    if (*i0 == *i1) *frac = 0;
}

void pn_pp_resize_f32(const float *src, int sw, int sh, float *dst, int dw, int dh) {
    double sx = (double)sw / dw, sy = (double)sh / dh;
    for (int y = 0; y < dh; y++) {
        int y0, y1;
        float fy;
        src_coord(y, sy, sh, &y0, &y1, &fy);
        const float *r0 = src + (int64_t)y0 * sw, *r1 = src + (int64_t)y1 * sw;
        for (int x = 0; x < dw; x++) {
            int x0, x1;
            float fx;
            src_coord(x, sx, sw, &x0, &x1, &fx);
            float top = r0[x0] + (r0[x1] - r0[x0]) * fx, bot = r1[x0] + (r1[x1] - r1[x0]) * fx;
            dst[(int64_t)y * dw + x] = top + (bot - top) * fy;
        }
    }
}

void pn_pp_upscale_mask(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh) {
    if (sw == dw && sh == dh) {
        for (int64_t i = 0; i < (int64_t)dw * dh; i++) dst[i] = src[i] ? 255 : 0;
        return;
    }
    double sx = (double)sw / dw, sy = (double)sh / dh;
    for (int y = 0; y < dh; y++) {
        int y0, y1;
        float fy;
        src_coord(y, sy, sh, &y0, &y1, &fy);
        const uint8_t *r0 = src + (int64_t)y0 * sw, *r1 = src + (int64_t)y1 * sw;
        for (int x = 0; x < dw; x++) {
            int x0, x1;
            float fx;
            src_coord(x, sx, sw, &x0, &x1, &fx);
            float a = r0[x0] != 0, b = r0[x1] != 0, c = r1[x0] != 0, d = r1[x1] != 0;
            float top = a + (b - a) * fx, bot = c + (d - c) * fx;
            dst[(int64_t)y * dw + x] = top + (bot - top) * fy > 0.5f ? 255 : 0;
        }
    }
}
