/* augment: OpenCV-exact warps, albumentations-style transforms and the text-spec pipeline parser. */
#include "augment.h"

#include <stdarg.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

/* OpenCV's fixed-point geometry: 1/32 pixel sub-positions, 15-bit weights, 10-bit affine steps. */
#define INTER_BITS 5
#define INTER_TAB 32
#define COEF_BITS 15
#define AB_BITS 10
#define AB_SCALE 1024

/* ---------------------------------------------------------------- sampling */

/* cv::saturate_cast<int>(double): round half to even, clamp. */
static int sat_int(double v) {
    if (!(v > (double)INT_MIN)) return INT_MIN;
    if (v >= (double)INT_MAX) return INT_MAX;
    return (int)lrint(v);
}

/* cv::saturate_cast<short>(int). */
static int sat_short(int v) { return v < SHRT_MIN ? SHRT_MIN : v > SHRT_MAX ? SHRT_MAX : v; }

/* cv::borderInterpolate for BORDER_REFLECT_101; -1 for a constant border outside the image. */
static int border_index(int p, int len, pn_border border) {
    if ((unsigned)p < (unsigned)len) return p;
    if (border == PN_BORDER_CONSTANT) return -1;
    if (len == 1) return 0;
    do {
        if (p < 0)
            p = -p;
        else
            p = len - 1 - (p - len) - 1;
    } while ((unsigned)p >= (unsigned)len);
    return p;
}

static int fetch(const uint8_t *src, int sw, int sh, int x, int y, pn_border border) {
    int xi = border_index(x, sw, border), yi = border_index(y, sh, border);
    if (xi < 0 || yi < 0) return 0;
    return src[(size_t)yi * sw + xi];
}

/* One bilinear sample at integer (sx, sy) plus sub-position (fx, fy) in 1/32 (cv::remapBilinear, 8U). */
static uint8_t sample_bilinear(const uint8_t *src, int sw, int sh, int sx, int sy, int fx, int fy, pn_border border) {
    int w0 = (INTER_TAB - fx) * (INTER_TAB - fy) * INTER_TAB, w1 = fx * (INTER_TAB - fy) * INTER_TAB;
    int w2 = (INTER_TAB - fx) * fy * INTER_TAB, w3 = fx * fy * INTER_TAB;
    int v0, v1, v2, v3;
    if ((unsigned)sx < (unsigned)(sw - 1) && (unsigned)sy < (unsigned)(sh - 1)) {
        const uint8_t *s0 = src + (size_t)sy * sw + sx, *s1 = s0 + sw;
        v0 = s0[0], v1 = s0[1], v2 = s1[0], v3 = s1[1];
    } else if (border == PN_BORDER_CONSTANT && (sx >= sw || sx + 1 < 0 || sy >= sh || sy + 1 < 0)) {
        return 0;
    } else {
        v0 = fetch(src, sw, sh, sx, sy, border), v1 = fetch(src, sw, sh, sx + 1, sy, border);
        v2 = fetch(src, sw, sh, sx, sy + 1, border), v3 = fetch(src, sw, sh, sx + 1, sy + 1, border);
    }
    int v = (v0 * w0 + v1 * w1 + v2 * w2 + v3 * w3 + (1 << (COEF_BITS - 1))) >> COEF_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static uint8_t sample_nearest(const uint8_t *src, int sw, int sh, int sx, int sy, pn_border border) {
    return (uint8_t)fetch(src, sw, sh, sx, sy, border);
}

void pn_aug_rotation_matrix(double cx, double cy, double angle_deg, double scale, double m[6]) {
    double a = angle_deg * 3.14159265358979323846 / 180.0;
    double alpha = cos(a) * scale, beta = sin(a) * scale;
    cx = (float)cx, cy = (float)cy; /* OpenCV takes the centre as Point2f */
    m[0] = alpha, m[1] = beta, m[2] = (1 - alpha) * cx - beta * cy;
    m[3] = -beta, m[4] = alpha, m[5] = beta * cx + (1 - alpha) * cy;
}

pn_status pn_aug_warp_affine_u8(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, const double m_in[6],
                                bool nearest, pn_border border) {
    /* Invert the src->dst matrix as cv::warpAffine does (dst -> src). */
    double m[6];
    memcpy(m, m_in, sizeof m);
    double d = m[0] * m[4] - m[1] * m[3];
    d = d != 0 ? 1.0 / d : 0;
    double a11 = m[4] * d, a22 = m[0] * d;
    m[0] = a11, m[1] *= -d, m[3] *= -d, m[4] = a22;
    double b1 = -m[0] * m[2] - m[1] * m[5], b2 = -m[3] * m[2] - m[4] * m[5];
    m[2] = b1, m[5] = b2;
    int round_delta = nearest ? AB_SCALE / 2 : AB_SCALE / INTER_TAB / 2;
    int shift = nearest ? AB_BITS : AB_BITS - INTER_BITS;
    int *buf = malloc(sizeof(int) * 4 * (size_t)(dw > 0 ? dw : 1));
    if (!buf) return pn_error(PN_ERR_NOMEM, "augment: no memory for a warp of width %d", dw);
    int *adelta = buf, *bdelta = buf + dw, *xs = buf + 2 * dw, *ys = buf + 3 * dw;
    for (int x = 0; x < dw; x++) {
        adelta[x] = sat_int(m[0] * x * AB_SCALE);
        bdelta[x] = sat_int(m[3] * x * AB_SCALE);
    }
    for (int y = 0; y < dh; y++) {
        int x0 = sat_int((m[1] * y + m[2]) * AB_SCALE) + round_delta;
        int y0 = sat_int((m[4] * y + m[5]) * AB_SCALE) + round_delta;
        uint8_t *out = dst + (size_t)y * dw;
        /* First the fixed-point source positions of the whole row (a loop the compiler vectorises). */
        for (int x = 0; x < dw; x++) xs[x] = (x0 + adelta[x]) >> shift, ys[x] = (y0 + bdelta[x]) >> shift;
        if (nearest) {
            for (int x = 0; x < dw; x++) {
                int X = xs[x], Y = ys[x];
                out[x] = (unsigned)X < (unsigned)sw && (unsigned)Y < (unsigned)sh
                             ? src[(size_t)Y * sw + X]
                             : sample_nearest(src, sw, sh, sat_short(X), sat_short(Y), border);
            }
            continue;
        }
        for (int x = 0; x < dw; x++) {
            int X = xs[x], Y = ys[x];
            int sx = X >> INTER_BITS, sy = Y >> INTER_BITS; /* saturating to short cannot move a value into range */
            int fx = X & (INTER_TAB - 1), fy = Y & (INTER_TAB - 1);
            if ((unsigned)sx < (unsigned)(sw - 1) && (unsigned)sy < (unsigned)(sh - 1)) {
                /* interior fast path: the same arithmetic as sample_bilinear */
                const uint8_t *s0 = src + (size_t)sy * sw + sx, *s1 = s0 + sw;
                int top = s0[0] * (INTER_TAB - fx) + s0[1] * fx, bot = s1[0] * (INTER_TAB - fx) + s1[1] * fx;
                out[x] =
                    (uint8_t)(((top * (INTER_TAB - fy) + bot * fy) * INTER_TAB + (1 << (COEF_BITS - 1))) >> COEF_BITS);
            } else {
                out[x] = sample_bilinear(src, sw, sh, sat_short(sx), sat_short(sy), fx, fy, border);
            }
        }
    }
    free(buf);
    return PN_OK;
}

/* cvRound for |v| < 2^22: round half to even by the float magic number, without a libm call. */
static inline int round_even(float v) {
    volatile float magic = 12582912.0f; /* 1.5 * 2^23; volatile keeps the compiler from folding (v+m)-m */
    float m = magic;
    return (int)((v + m) - m);
}

void pn_aug_remap_u8(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, const float *map_x,
                     const float *map_y, bool nearest, pn_border border) {
    const float lim = 65536.0f; /* far outside any image; keeps lim * 32 inside round_even's range */
    for (size_t i = 0; i < (size_t)dw * dh; i++) {
        float mx = map_x[i], my = map_y[i];
        mx = mx >= -lim ? (mx <= lim ? mx : lim) : -lim; /* also maps NaN to -lim */
        my = my >= -lim ? (my <= lim ? my : lim) : -lim;
        if (nearest) {
            int X = round_even(mx), Y = round_even(my);
            dst[i] = (unsigned)X < (unsigned)sw && (unsigned)Y < (unsigned)sh
                         ? src[(size_t)Y * sw + X]
                         : sample_nearest(src, sw, sh, X, Y, border);
            continue;
        }
        int X = round_even(mx * INTER_TAB), Y = round_even(my * INTER_TAB);
        int sx = X >> INTER_BITS, sy = Y >> INTER_BITS, fx = X & (INTER_TAB - 1), fy = Y & (INTER_TAB - 1);
        if ((unsigned)sx < (unsigned)(sw - 1) && (unsigned)sy < (unsigned)(sh - 1)) {
            const uint8_t *s0 = src + (size_t)sy * sw + sx, *s1 = s0 + sw;
            int top = s0[0] * (INTER_TAB - fx) + s0[1] * fx, bot = s1[0] * (INTER_TAB - fx) + s1[1] * fx;
            dst[i] = (uint8_t)(((top * (INTER_TAB - fy) + bot * fy) * INTER_TAB + (1 << (COEF_BITS - 1))) >> COEF_BITS);
        } else {
            dst[i] = sample_bilinear(src, sw, sh, sx, sy, fx, fy, border);
        }
    }
}

void pn_aug_resize_u8(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, bool nearest) {
    double fx = (double)sw / dw, fy = (double)sh / dh;
    for (int y = 0; y < dh; y++) {
        if (nearest) {
            int sy = (int)floor(y * fy);
            sy = sy < sh - 1 ? sy : sh - 1;
            for (int x = 0; x < dw; x++) {
                int sx = (int)floor(x * fx);
                dst[(size_t)y * dw + x] = src[(size_t)sy * sw + (sx < sw - 1 ? sx : sw - 1)];
            }
            continue;
        }
        double syf = (y + 0.5) * fy - 0.5;
        if (syf < 0) syf = 0;
        int y0 = (int)syf;
        if (y0 > sh - 1) y0 = sh - 1;
        int y1 = y0 + 1 < sh ? y0 + 1 : sh - 1;
        float wy = (float)(syf - y0);
        for (int x = 0; x < dw; x++) {
            double sxf = (x + 0.5) * fx - 0.5;
            if (sxf < 0) sxf = 0;
            int x0 = (int)sxf;
            if (x0 > sw - 1) x0 = sw - 1;
            int x1 = x0 + 1 < sw ? x0 + 1 : sw - 1;
            float wx = (float)(sxf - x0);
            const uint8_t *r0 = src + (size_t)y0 * sw, *r1 = src + (size_t)y1 * sw;
            float top = r0[x0] + wx * (r0[x1] - r0[x0]), bot = r1[x0] + wx * (r1[x1] - r1[x0]);
            float v = top + wy * (bot - top);
            dst[(size_t)y * dw + x] = (uint8_t)lrintf(fminf(fmaxf(v, 0.f), 255.f));
        }
    }
}

void pn_aug_hflip_u8(uint8_t *img, int w, int h) {
    uint8_t tmp[4096];
    for (int y = 0; y < h; y++) {
        uint8_t *r = img + (size_t)y * w;
        if (w > (int)sizeof tmp) { /* wider than any image we train on: swap in place */
            for (int a = 0, b = w - 1; a < b; a++, b--) {
                uint8_t t = r[a];
                r[a] = r[b], r[b] = t;
            }
            continue;
        }
        memcpy(tmp, r, (size_t)w);
        for (int x = 0; x < w; x++) r[x] = tmp[w - 1 - x]; /* a reversed copy vectorises; in-place swaps do not */
    }
}

static void vflip_u8(uint8_t *img, int w, int h) {
    for (int a = 0, b = h - 1; a < b; a++, b--)
        for (int x = 0; x < w; x++) {
            uint8_t t = img[(size_t)a * w + x];
            img[(size_t)a * w + x] = img[(size_t)b * w + x], img[(size_t)b * w + x] = t;
        }
}

void pn_aug_normalize(const uint8_t *img, int w, int h, pn_norm_mode mode, float *chw) {
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
    size_t n = (size_t)w * h;
    for (int c = 0; c < 3; c++) {
        float scale = 1.f, shift = 0.f;
        if (mode == PN_NORM_UNIT) scale = 1.f / 255.f;
        if (mode == PN_NORM_IMAGENET) scale = 1.f / (stdv[c] * 255.f), shift = mean[c] * 255.f;
        float lut[256];
        for (int i = 0; i < 256; i++) lut[i] = ((float)i - shift) * scale;
        float *o = chw + c * n;
        for (size_t i = 0; i < n; i++) o[i] = lut[img[i]];
    }
}

pn_status pn_norm_parse(const char *s, pn_norm_mode *out) {
    if (!strcmp(s, "none"))
        *out = PN_NORM_NONE;
    else if (!strcmp(s, "unit") || !strcmp(s, "01"))
        *out = PN_NORM_UNIT;
    else if (!strcmp(s, "imagenet"))
        *out = PN_NORM_IMAGENET;
    else
        return pn_error(PN_ERR_ARG, "normalize '%s': expected none, unit or imagenet", s);
    return PN_OK;
}

/* ---------------------------------------------------------------- transforms */

enum {
    T_HFLIP,
    T_VFLIP,
    T_ROTATE,
    T_SSR,
    T_CONTRAST,
    T_BRIGHTNESS,
    T_GAMMA,
    T_ELASTIC,
    T_GRID,
    T_OPTICAL,
    T_ONEOF,
    T_COUNT
};

typedef struct kind_info {
    const char *name;
    int nkeys;
    const char *keys[3];
    double defs[3], lo[3], hi[3];
} kind_info;

static const kind_info KINDS[T_COUNT] = {
    [T_HFLIP] = {"hflip", 0, {0}, {0}, {0}, {0}},
    [T_VFLIP] = {"vflip", 0, {0}, {0}, {0}, {0}},
    [T_ROTATE] = {"rotate", 1, {"limit"}, {90}, {0}, {360}},
    [T_SSR] = {"ssr", 3, {"shift", "scale", "rotate"}, {0.0625, 0.1, 45}, {0, 0, 0}, {1, 0.99, 360}},
    [T_CONTRAST] = {"contrast", 1, {"limit"}, {0.2}, {0}, {10}},
    [T_BRIGHTNESS] = {"brightness", 1, {"limit"}, {0.2}, {0}, {1}},
    [T_GAMMA] = {"gamma", 2, {"lo", "hi"}, {80, 120}, {1, 1}, {1000, 1000}},
    [T_ELASTIC] = {"elastic", 3, {"alpha", "sigma", "affine"}, {1, 50, 50}, {0, 0.1, 0}, {10000, 200, 1000}},
    [T_GRID] = {"grid", 2, {"steps", "limit"}, {5, 0.3}, {1, 0}, {64, 1}},
    [T_OPTICAL] = {"optical", 2, {"k", "shift"}, {0.05, 0.05}, {0, 0}, {10, 1000}},
    [T_ONEOF] = {"oneof", 0, {0}, {0}, {0}, {0}},
};

typedef struct tf {
    int kind;
    double p;
    double a[3];
    pn_border border;
    int nchild;
    struct tf *child;
} tf;

struct pn_aug_pipeline {
    int n;
    tf *items;
};

/* Scratch for one geometric transform: a copy of the source image and mask. */
typedef struct work {
    uint8_t *img, *mask;
    int w, h;
    bool soft_mask;
    uint8_t *tmp;
} work;

/* numpy: a float32 arange times / plus a Python float is computed in float32 after rounding the operand. */
void pn_aug_lut_contrast(double alpha, uint8_t lut[256]) {
    float a = (float)alpha;
    for (int i = 0; i < 256; i++) lut[i] = (uint8_t)fminf(fmaxf((float)i * a, 0.f), 255.f);
}

void pn_aug_lut_brightness(double beta, uint8_t lut[256]) {
    float b = (float)(beta * 255.0);
    for (int i = 0; i < 256; i++) lut[i] = (uint8_t)fminf(fmaxf((float)i + b, 0.f), 255.f);
}

void pn_aug_lut_gamma(double gamma, uint8_t lut[256]) {
    for (int i = 0; i < 256; i++) lut[i] = (uint8_t)fmin(pow(i * (1.0 / 255), gamma) * 255, 255);
}

static void lut_apply(uint8_t *img, size_t n, const uint8_t lut[256]) {
    for (size_t i = 0; i < n; i++) img[i] = lut[img[i]];
}

/* Warps image and mask with one affine matrix (src -> dst). */
static pn_status warp_both(work *k, const double m[6], pn_border border) {
    size_t n = (size_t)k->w * k->h;
    memcpy(k->tmp, k->img, n);
    PN_TRY(pn_aug_warp_affine_u8(k->tmp, k->w, k->h, k->img, k->w, k->h, m, false, border));
    if (!k->mask) return PN_OK;
    memcpy(k->tmp, k->mask, n);
    return pn_aug_warp_affine_u8(k->tmp, k->w, k->h, k->mask, k->w, k->h, m, !k->soft_mask, border);
}

static void remap_both(work *k, const float *mx, const float *my, pn_border border) {
    size_t n = (size_t)k->w * k->h;
    memcpy(k->tmp, k->img, n);
    pn_aug_remap_u8(k->tmp, k->w, k->h, k->img, k->w, k->h, mx, my, false, border);
    if (k->mask) {
        memcpy(k->tmp, k->mask, n);
        pn_aug_remap_u8(k->tmp, k->w, k->h, k->mask, k->w, k->h, mx, my, !k->soft_mask, border);
    }
}

/* scipy's mode 'reflect' (half-sample symmetric) index into [0, len). */
static int reflect_index(int q, int len) {
    while (q < 0 || q >= len) q = q < 0 ? -q - 1 : 2 * len - q - 1;
    return q;
}

/* scipy.ndimage.gaussian_filter1d(truncate=4, mode='reflect') along rows (axis 1) or columns (axis 0).
 * Taps are the outer loop so the inner loops run over contiguous memory and vectorise; float sums
 * differ from scipy's double ones by about 1e-7 relative. */
static pn_status gauss_1d(const float *in, float *out, int w, int h, double sigma, int axis) {
    int r = (int)(4.0 * sigma + 0.5), len = axis == 1 ? w : h;
    float *kw = malloc(sizeof(float) * (2 * r + 1));
    float *acc = malloc(sizeof(float) * (size_t)(w + 2 * r)), *pad = malloc(sizeof(float) * (size_t)(w + 2 * r));
    double sum = 0, *kd = malloc(sizeof(double) * (2 * r + 1));
    if (!kw || !acc || !pad || !kd) {
        free(kw), free(acc), free(pad), free(kd);
        return pn_error(PN_ERR_NOMEM, "augment: no memory for a gaussian filter of sigma %g", sigma);
    }
    for (int i = -r; i <= r; i++) sum += kd[i + r] = exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * r; i++) kw[i] = (float)(kd[i] / sum);
    free(kd);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) acc[x] = 0;
        if (axis == 1) {
            const float *row = in + (size_t)y * w;
            for (int j = 0; j < w + 2 * r; j++) pad[j] = row[reflect_index(j - r, len)];
            for (int i = 0; i <= 2 * r; i++) {
                float k = kw[i];
                const float *src = pad + i;
                for (int x = 0; x < w; x++) acc[x] += k * src[x];
            }
        } else {
            for (int i = -r; i <= r; i++) {
                const float *row = in + (size_t)reflect_index(y + i, len) * w;
                float k = kw[i + r];
                for (int x = 0; x < w; x++) acc[x] += k * row[x];
            }
        }
        memcpy(out + (size_t)y * w, acc, sizeof(float) * (size_t)w);
    }
    free(kw), free(acc), free(pad);
    return PN_OK;
}

/* cv::getAffineTransform from three point pairs (Cramer's rule in double). */
static void affine_from_points(const float src[6], const float dst[6], double m[6]) {
    double x0 = src[0], y0 = src[1], x1 = src[2], y1 = src[3], x2 = src[4], y2 = src[5];
    double det = x0 * (y1 - y2) - y0 * (x1 - x2) + (x1 * y2 - x2 * y1);
    for (int r = 0; r < 2; r++) {
        double u0 = dst[r], u1 = dst[2 + r], u2 = dst[4 + r];
        double a = (u0 * (y1 - y2) - y0 * (u1 - u2) + (u1 * y2 - u2 * y1)) / det;
        double b = (x0 * (u1 - u2) - u0 * (x1 - x2) + (x1 * u2 - x2 * u1)) / det;
        double c = (x0 * (y1 * u2 - y2 * u1) - y0 * (x1 * u2 - x2 * u1) + u0 * (x1 * y2 - x2 * y1)) / det;
        m[3 * r] = a, m[3 * r + 1] = b, m[3 * r + 2] = c;
    }
}

/* ElasticTransform on the work images with its random inputs given. */
static pn_status elastic(work *k, double alpha, double sigma, const double offsets[6], const float *rand_x,
                         const float *rand_y, pn_border border) {
    int w = k->w, h = k->h;
    /* Random affine on three points around the centre (albumentations' alpha_affine; its centre is
     * (h/2, w/2) used as (x, y), which we keep). */
    float cx = (float)(h / 2), cy = (float)(w / 2), sq = (float)((w < h ? w : h) / 3);
    float p1[6] = {cx + sq, cy + sq, cx + sq, cy - sq, cx - sq, cy - sq}, p2[6];
    for (int i = 0; i < 6; i++) p2[i] = p1[i] + (float)offsets[i];
    double m[6];
    affine_from_points(p1, p2, m);
    PN_TRY(warp_both(k, m, border));
    /* Smoothed displacement fields (scipy.ndimage.gaussian_filter, truncate 4, mode reflect). */
    size_t n = (size_t)w * h;
    float *dx = malloc(sizeof(float) * n * 3);
    if (!dx) return pn_error(PN_ERR_NOMEM, "augment: no memory for a %dx%d displacement field", w, h);
    float *dy = dx + n, *tmp = dy + n;
    for (size_t i = 0; i < n; i++) tmp[i] = rand_x[i] * 2 - 1;
    pn_status st = gauss_1d(tmp, dx, w, h, sigma, 0);
    if (st == PN_OK) st = gauss_1d(dx, tmp, w, h, sigma, 1);
    memcpy(dx, tmp, sizeof(float) * n);
    for (size_t i = 0; i < n; i++) tmp[i] = rand_y[i] * 2 - 1;
    if (st == PN_OK) st = gauss_1d(tmp, dy, w, h, sigma, 0);
    if (st == PN_OK) st = gauss_1d(dy, tmp, w, h, sigma, 1);
    if (st != PN_OK) {
        free(dx);
        return st;
    }
    memcpy(dy, tmp, sizeof(float) * n);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            dx[i] = (float)(x + dx[i] * alpha), dy[i] = (float)(y + dy[i] * alpha);
        }
    remap_both(k, dx, dy, border);
    free(dx);
    return PN_OK;
}

pn_status pn_aug_elastic_u8(uint8_t *img, uint8_t *mask, int w, int h, double alpha, double sigma,
                            const double offsets[6], const float *rand_x, const float *rand_y, bool mask_nearest,
                            pn_border border) {
    work k = {img, mask, w, h, !mask_nearest, malloc((size_t)w * h)};
    if (!k.tmp) return pn_error(PN_ERR_NOMEM, "augment: no memory for a %dx%d image", w, h);
    pn_status st = elastic(&k, alpha, sigma, offsets, rand_x, rand_y, border);
    free(k.tmp);
    return st;
}

/* n successive pn_rng_uniform(r) draws (the stream computes each Philox block once for its four words). */
static void fill_uniform(pn_rng *r, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = pn_rng_uniform(r);
}

static pn_status do_elastic(work *k, const tf *t, pn_rng *rng) {
    double offsets[6];
    for (int i = 0; i < 6; i++) offsets[i] = pn_rng_uniform_range(rng, (float)-t->a[2], (float)t->a[2]);
    size_t n = (size_t)k->w * k->h;
    float *r = malloc(sizeof(float) * 2 * n);
    if (!r) return pn_error(PN_ERR_NOMEM, "augment: no memory for a %dx%d displacement field", k->w, k->h);
    fill_uniform(rng, r, 2 * n);
    pn_status st = elastic(k, t->a[0], t->a[1], offsets, r, r + n, t->border);
    free(r);
    return st;
}

/* albumentations' grid_distortion axis: piecewise-linear cell edges scaled by steps[]. */
static void grid_axis(float *xx, int len, int nsteps, const double *steps) {
    int step = len / nsteps;
    double prev = 0;
    for (int idx = 0; idx <= nsteps; idx++) {
        int start = idx * step, end = start + step;
        double cur;
        if (end > len)
            end = len, cur = len;
        else
            cur = prev + step * steps[idx];
        int cnt = end - start;
        for (int i = 0; i < cnt; i++)
            xx[start + i] =
                (float)(i == cnt - 1 && cnt > 1 ? cur : prev + (cnt > 1 ? i * (cur - prev) / (cnt - 1) : 0));
        prev = cur;
    }
}

pn_status pn_aug_grid_map(int w, int h, int steps, const double *xsteps, const double *ysteps, float *map_x,
                          float *map_y) {
    float *xx = malloc(sizeof(float) * (size_t)(w + h));
    if (!xx) return pn_error(PN_ERR_NOMEM, "augment: no memory for a %dx%d grid map", w, h);
    float *yy = xx + w;
    grid_axis(xx, w, steps, xsteps), grid_axis(yy, h, steps, ysteps);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) map_x[(size_t)y * w + x] = xx[x], map_y[(size_t)y * w + x] = yy[y];
    free(xx);
    return PN_OK;
}

static pn_status do_grid(work *k, const tf *t, pn_rng *rng) {
    int w = k->w, h = k->h, ns = (int)t->a[0];
    double xs[65], ys[65];
    for (int i = 0; i <= ns; i++) xs[i] = 1 + pn_rng_uniform_range(rng, (float)-t->a[1], (float)t->a[1]);
    for (int i = 0; i <= ns; i++) ys[i] = 1 + pn_rng_uniform_range(rng, (float)-t->a[1], (float)t->a[1]);
    if (w < ns || h < ns) return PN_OK;
    size_t n = (size_t)w * h;
    float *mx = malloc(sizeof(float) * 2 * n);
    if (!mx) return pn_error(PN_ERR_NOMEM, "augment: no memory for a %dx%d grid map", w, h);
    pn_status st = pn_aug_grid_map(w, h, ns, xs, ys, mx, mx + n);
    if (st == PN_OK) remap_both(k, mx, mx + n, t->border);
    free(mx);
    return st;
}

void pn_aug_optical_map(int w, int h, double k, double dx, double dy, float *map_x, float *map_y) {
    /* With no new camera matrix OpenCV rectifies onto getDefaultNewCameraMatrix(A, size, true): the
     * same focal lengths, principal point ((w-1)/2, (h-1)/2). */
    double fx = w, fy = h, cx = w * 0.5 + dx, cy = h * 0.5 + dy, ncx = (w - 1) * 0.5, ncy = (h - 1) * 0.5;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double u = (x - ncx) / fx, v = (y - ncy) / fy, r2 = u * u + v * v;
            double kr = 1 + k * r2 + k * r2 * r2;
            map_x[(size_t)y * w + x] = (float)(fx * u * kr + cx), map_y[(size_t)y * w + x] = (float)(fy * v * kr + cy);
        }
}

static pn_status do_optical(work *k, const tf *t, pn_rng *rng) {
    int w = k->w, h = k->h;
    double kk = pn_rng_uniform_range(rng, (float)-t->a[0], (float)t->a[0]);
    double sx = rint(pn_rng_uniform_range(rng, (float)-t->a[1], (float)t->a[1]));
    double sy = rint(pn_rng_uniform_range(rng, (float)-t->a[1], (float)t->a[1]));
    size_t n = (size_t)w * h;
    float *mx = malloc(sizeof(float) * 2 * n);
    if (!mx) return pn_error(PN_ERR_NOMEM, "augment: no memory for a %dx%d distortion map", w, h);
    float *my = mx + n;
    pn_aug_optical_map(w, h, kk, sx, sy, mx, my);
    remap_both(k, mx, my, t->border);
    free(mx);
    return PN_OK;
}

/* Draws the parameters of `t` and applies it (its probability was already decided). */
static pn_status apply_one(work *k, const tf *t, pn_rng *rng) {
    size_t n = (size_t)k->w * k->h;
    uint8_t lut[256];
    double m[6];
    double cx = (k->w - 1) * 0.5, cy = (k->h - 1) * 0.5;
    switch (t->kind) {
    case T_HFLIP:
        pn_aug_hflip_u8(k->img, k->w, k->h);
        if (k->mask) pn_aug_hflip_u8(k->mask, k->w, k->h);
        return PN_OK;
    case T_VFLIP:
        vflip_u8(k->img, k->w, k->h);
        if (k->mask) vflip_u8(k->mask, k->w, k->h);
        return PN_OK;
    case T_ROTATE: {
        double angle = pn_rng_uniform_range(rng, (float)-t->a[0], (float)t->a[0]);
        pn_aug_rotation_matrix(cx, cy, angle, 1.0, m);
        return warp_both(k, m, t->border);
    }
    case T_SSR: {
        double angle = pn_rng_uniform_range(rng, (float)-t->a[2], (float)t->a[2]);
        double scale = pn_rng_uniform_range(rng, (float)(1 - t->a[1]), (float)(1 + t->a[1]));
        double dx = pn_rng_uniform_range(rng, (float)-t->a[0], (float)t->a[0]);
        double dy = pn_rng_uniform_range(rng, (float)-t->a[0], (float)t->a[0]);
        pn_aug_rotation_matrix(cx, cy, angle, scale, m);
        m[2] += dx * k->w, m[5] += dy * k->h;
        return warp_both(k, m, t->border);
    }
    case T_CONTRAST:
        pn_aug_lut_contrast(1 + pn_rng_uniform_range(rng, (float)-t->a[0], (float)t->a[0]), lut);
        lut_apply(k->img, n, lut);
        return PN_OK;
    case T_BRIGHTNESS:
        pn_aug_lut_brightness(pn_rng_uniform_range(rng, (float)-t->a[0], (float)t->a[0]), lut);
        lut_apply(k->img, n, lut);
        return PN_OK;
    case T_GAMMA:
        pn_aug_lut_gamma(pn_rng_uniform_range(rng, (float)t->a[0], (float)t->a[1]) / 100.0, lut);
        lut_apply(k->img, n, lut);
        return PN_OK;
    case T_ELASTIC: return do_elastic(k, t, rng);
    case T_GRID: return do_grid(k, t, rng);
    case T_OPTICAL: return do_optical(k, t, rng);
    case T_ONEOF: {
        double total = 0;
        for (int i = 0; i < t->nchild; i++) total += t->child[i].p;
        double u = pn_rng_uniform(rng) * total, acc = 0;
        int pick = t->nchild - 1;
        for (int i = 0; i < t->nchild; i++)
            if (u < (acc += t->child[i].p)) {
                pick = i;
                break;
            }
        return apply_one(k, &t->child[pick], rng);
    }
    }
    return PN_OK;
}

/* Classifies a mask: *empty (all zero: every transform keeps it so, so it need not be warped) and
 * soft (more than one nonzero value: resampled bilinearly). */
static void mask_kind(const uint8_t *mask, size_t n, bool *empty, bool *soft) {
    int other = -1;
    *empty = true, *soft = false;
    for (size_t i = 0; i < n; i++) {
        if (!mask[i]) continue;
        *empty = false;
        if (other < 0)
            other = mask[i];
        else if (mask[i] != other) {
            *soft = true;
            return;
        }
    }
}

pn_status pn_aug_apply(const pn_aug_pipeline *p, uint8_t *img, uint8_t *mask, int w, int h, uint64_t seed,
                       uint32_t epoch, uint32_t sample) {
    if (!p || p->n == 0) return PN_OK;
    if (w <= 0 || h <= 0) return pn_error(PN_ERR_ARG, "augment: bad image size %dx%d", w, h);
    size_t n = (size_t)w * h;
    bool empty = true, soft = false;
    if (mask) mask_kind(mask, n, &empty, &soft);
    work k = {img, empty ? NULL : mask, w, h, soft, malloc(n)};
    if (!k.tmp) return pn_error(PN_ERR_NOMEM, "augment: no memory for a %dx%d image", w, h);
    pn_rng rng = pn_rng_make(seed, PN_RNG_AUGMENT, epoch, sample);
    pn_status st = PN_OK;
    for (int i = 0; i < p->n && st == PN_OK; i++) {
        const tf *t = &p->items[i];
        if (pn_rng_uniform(&rng) < t->p) st = apply_one(&k, t, &rng);
    }
    free(k.tmp);
    return st;
}

/* ---------------------------------------------------------------- parser */

static const char *const NAMED[][2] = {
    {"none", ""},
    {"blog", "hflip:0.5,rotate:0.5:limit=10"},
    {"winner", "hflip:0.5,"
               "oneof:0.3[contrast:limit=0.2|gamma:lo=80:hi=120|brightness:limit=0.2],"
               "oneof:0.3[elastic:alpha=120:sigma=6:affine=3.6|grid:steps=5:limit=0.3|optical:k=2:shift=0.5],"
               "ssr:0.5:shift=0.0625:scale=0.1:rotate=45"},
};

typedef struct parser {
    const char *s;
    size_t pos;
    pn_border border;
    int depth;
} parser;

static void skip_ws(parser *ps) {
    while (ps->s[ps->pos] == ' ' || ps->s[ps->pos] == '\t') ps->pos++;
}

/* Reads a token up to one of ":,|[]=" or the end into buf (at most cap-1 chars, else an error). */
static pn_status read_token(parser *ps, char *buf, size_t cap, const char *what) {
    skip_ws(ps);
    size_t n = 0;
    while (ps->s[ps->pos] && !strchr(":,|[]=", ps->s[ps->pos])) {
        if (n + 1 >= cap) return pn_error(PN_ERR_ARG, "augment spec: %s too long at offset %zu", what, ps->pos);
        buf[n++] = ps->s[ps->pos++];
    }
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t')) n--;
    buf[n] = 0;
    if (n == 0) return pn_error(PN_ERR_ARG, "augment spec: expected a %s at offset %zu", what, ps->pos);
    return PN_OK;
}

static pn_status parse_number(const char *tok, double *out, const char *item) {
    char *end;
    double v = strtod(tok, &end);
    if (end == tok || *end || !isfinite(v))
        return pn_error(PN_ERR_ARG, "augment spec: item '%s': '%s' is not a number", item, tok);
    *out = v;
    return PN_OK;
}

static void free_tf(tf *t) {
    for (int i = 0; i < t->nchild; i++) free_tf(&t->child[i]);
    free(t->child);
    t->child = NULL, t->nchild = 0;
}

static pn_status parse_list(parser *ps, char sep, char end, tf **items, int *count);

static pn_status parse_item(parser *ps, tf *t) {
    char name[32], tok[64];
    memset(t, 0, sizeof *t);
    PN_TRY(read_token(ps, name, sizeof name, "transform name"));
    t->kind = -1;
    for (int i = 0; i < T_COUNT; i++)
        if (!strcmp(name, KINDS[i].name)) t->kind = i;
    if (t->kind < 0)
        return pn_error(PN_ERR_ARG,
                        "augment spec: unknown transform '%s' (expected hflip, vflip, rotate, ssr, "
                        "contrast, brightness, gamma, elastic, grid, optical or oneof)",
                        name);
    const kind_info *ki = &KINDS[t->kind];
    t->p = 0.5, t->border = ps->border;
    for (int i = 0; i < ki->nkeys; i++) t->a[i] = ki->defs[i];
    while (ps->s[ps->pos] == ':') {
        ps->pos++;
        PN_TRY(read_token(ps, tok, sizeof tok, "probability or key=value"));
        if (ps->s[ps->pos] != '=') {
            PN_TRY(parse_number(tok, &t->p, name));
            continue;
        }
        ps->pos++;
        char val[64];
        PN_TRY(read_token(ps, val, sizeof val, "value"));
        if (!strcmp(tok, "border")) {
            if (!strcmp(val, "constant"))
                t->border = PN_BORDER_CONSTANT;
            else if (!strcmp(val, "reflect101"))
                t->border = PN_BORDER_REFLECT101;
            else
                return pn_error(PN_ERR_ARG, "augment spec: item '%s': border '%s' (expected constant or reflect101)",
                                name, val);
            continue;
        }
        if (!strcmp(tok, "p")) {
            PN_TRY(parse_number(val, &t->p, name));
            continue;
        }
        int key = -1;
        for (int i = 0; i < ki->nkeys; i++)
            if (!strcmp(tok, ki->keys[i])) key = i;
        if (key < 0) return pn_error(PN_ERR_ARG, "augment spec: item '%s' has no key '%s'", name, tok);
        PN_TRY(parse_number(val, &t->a[key], name));
        if (t->a[key] < ki->lo[key] || t->a[key] > ki->hi[key])
            return pn_error(PN_ERR_ARG, "augment spec: item '%s': %s=%g is outside [%g, %g]", name, tok, t->a[key],
                            ki->lo[key], ki->hi[key]);
    }
    if (!(t->p >= 0 && t->p <= 1))
        return pn_error(PN_ERR_ARG, "augment spec: item '%s': probability %g is outside [0, 1]", name, t->p);
    if (t->kind == T_GRID && t->a[0] != floor(t->a[0]))
        return pn_error(PN_ERR_ARG, "augment spec: item 'grid': steps must be an integer");
    if (t->kind == T_GAMMA && t->a[1] < t->a[0])
        return pn_error(PN_ERR_ARG, "augment spec: item 'gamma': hi must be >= lo");
    skip_ws(ps);
    if (t->kind == T_ONEOF) {
        if (ps->s[ps->pos] != '[')
            return pn_error(PN_ERR_ARG, "augment spec: oneof needs a [a|b|...] list at offset %zu", ps->pos);
        if (ps->depth >= 4) return pn_error(PN_ERR_ARG, "augment spec: oneof nested too deeply");
        ps->pos++, ps->depth++;
        pn_status st = parse_list(ps, '|', ']', &t->child, &t->nchild);
        ps->depth--;
        PN_TRY(st);
        ps->pos++; /* the ']' */
        double total = 0;
        for (int i = 0; i < t->nchild; i++) total += t->child[i].p;
        if (!(total > 0)) return pn_error(PN_ERR_ARG, "augment spec: oneof whose children all have p=0");
    }
    return PN_OK;
}

/* Items separated by `sep` until `end` (']' or 0); leaves pos on `end`. */
static pn_status parse_list(parser *ps, char sep, char end, tf **items, int *count) {
    *items = NULL, *count = 0;
    int cap = 0;
    skip_ws(ps);
    if (ps->s[ps->pos] == end) {
        if (end == ']') return pn_error(PN_ERR_ARG, "augment spec: empty oneof list");
        return PN_OK;
    }
    for (;;) {
        if (*count == cap) {
            cap = cap ? cap * 2 : 4;
            if (cap > 256) return pn_error(PN_ERR_ARG, "augment spec: more than 256 items in one list");
            tf *grown = realloc(*items, sizeof(tf) * cap);
            if (!grown) return pn_error(PN_ERR_NOMEM, "augment spec: no memory");
            *items = grown;
        }
        pn_status st = parse_item(ps, &(*items)[*count]);
        if (st != PN_OK) {
            free_tf(&(*items)[*count]);
            return st;
        }
        (*count)++;
        skip_ws(ps);
        char c = ps->s[ps->pos];
        if (c == end) return PN_OK;
        if (c != sep)
            return pn_error(PN_ERR_ARG, "augment spec: expected '%c' or '%s' at offset %zu, found '%c'", sep,
                            end ? "]" : "end", ps->pos, c ? c : '?');
        ps->pos++;
    }
}

pn_status pn_aug_parse(const char *spec, pn_border border, pn_aug_pipeline **out) {
    *out = NULL;
    if (!spec) spec = "none";
    for (size_t i = 0; i < sizeof NAMED / sizeof NAMED[0]; i++)
        if (!strcmp(spec, NAMED[i][0])) spec = NAMED[i][1];
    pn_aug_pipeline *p = calloc(1, sizeof *p);
    if (!p) return pn_error(PN_ERR_NOMEM, "augment spec: no memory");
    parser ps = {spec, 0, border, 0};
    pn_status st = parse_list(&ps, ',', 0, &p->items, &p->n);
    if (st != PN_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", pn_last_error());
        pn_aug_free(p);
        return pn_error(st, "%s (in \"%.80s\")", msg, spec);
    }
    *out = p;
    return PN_OK;
}

void pn_aug_free(pn_aug_pipeline *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) free_tf(&p->items[i]);
    free(p->items);
    free(p);
}

typedef struct sbuf {
    char *buf;
    size_t cap, len;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->len < b->cap ? b->buf + b->len : NULL, b->len < b->cap ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0) b->len += (size_t)n;
}

static void describe_tf(sbuf *b, const tf *t) {
    const kind_info *ki = &KINDS[t->kind];
    sb_printf(b, "%s:%g", ki->name, t->p);
    for (int i = 0; i < ki->nkeys; i++) sb_printf(b, ":%s=%g", ki->keys[i], t->a[i]);
    if (t->border == PN_BORDER_REFLECT101) sb_printf(b, ":border=reflect101");
    if (t->kind == T_ONEOF) {
        sb_printf(b, "[");
        for (int i = 0; i < t->nchild; i++) {
            if (i) sb_printf(b, "|");
            describe_tf(b, &t->child[i]);
        }
        sb_printf(b, "]");
    }
}

size_t pn_aug_describe(const pn_aug_pipeline *p, char *buf, size_t cap) {
    sbuf b = {buf, cap, 0};
    if (cap) buf[0] = 0;
    if (!p || p->n == 0) {
        sb_printf(&b, "none");
        return b.len;
    }
    for (int i = 0; i < p->n; i++) {
        if (i) sb_printf(&b, ",");
        describe_tf(&b, &p->items[i]);
    }
    return b.len;
}
