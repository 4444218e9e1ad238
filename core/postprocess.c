/* postprocess: triplet rule, 8-connected components, small-region removal, flips and bilinear resizes. */
#include "postprocess.h"

#include <math.h>
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

int64_t pn_pp_remove_small(uint8_t *mask, int w, int h, int64_t min_pixels) {
    int64_t n = (int64_t)w * h, removed = 0;
    int32_t *labels = malloc((size_t)(n > 0 ? n : 1) * sizeof *labels);
    if (!labels) return -1;
    int count = pn_pp_components(mask, w, h, labels);
    int64_t *sizes = count >= 0 ? calloc((size_t)count + 1, sizeof *sizes) : NULL;
    if (!sizes) {
        free(labels);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) sizes[labels[i]]++;
    for (int64_t i = 0; i < n; i++)
        if (labels[i] && sizes[labels[i]] < min_pixels) {
            mask[i] = 0;
            removed++;
        }
    free(sizes);
    free(labels);
    return removed;
}

int64_t pn_pp_triplet(const float *prob, int w, int h, float top, int64_t min_area, float bottom,
                      int64_t min_region, uint8_t *mask) {
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
