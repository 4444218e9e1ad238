/* cpu int8 inference: which forward convolutions run in int8 and at what input range (from calibration), the
 * calibration itself (the range of every forward convolution's input while float32 inference runs), the
 * per-forward scales of an int8 convolution: u8/s8 input with one scale, s8 weights with one scale per output
 * channel (symmetric, after BatchNorm folding), float32 output, and that output from oneDNN's nhwc into the
 * backend's channel blocks with the residual add and ReLU on the way. */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conv2d.h"

struct cpu_int8 {
    /* the int8 convolutions (set by the caller) */
    char **labels;
    float *lo, *hi;
    int n;
    /* calibration: the range seen at every forward convolution's input, by node label, and a histogram of |x| */
    bool calibrating;
    char **c_labels;
    float *c_lo, *c_hi;
    uint64_t **c_hist; /* HIST_BINS counts each */
    int c_n, c_cap;
};

/* |x| in 64 bins per octave from 2^-HIST_LOW to 2^HIST_HIGH (bin 0: below, including 0; the last: above). */
#define HIST_PER_OCTAVE 64
#define HIST_LOW 24
#define HIST_HIGH 24
#define HIST_BINS ((HIST_LOW + HIST_HIGH) * HIST_PER_OCTAVE + 2)

static int hist_bin(float v) {
    float a = fabsf(v);
    if (!(a >= 0x1p-24f)) return 0; /* also NaN */
    if (a >= 0x1p24f) return HIST_BINS - 1;
    int e;
    float m = frexpf(a, &e); /* a = m * 2^e, m in [0.5, 1) */
    int k = (int)((m - 0.5f) * (2 * HIST_PER_OCTAVE));
    return 1 + (e - 1 + HIST_LOW) * HIST_PER_OCTAVE + (k < HIST_PER_OCTAVE ? k : HIST_PER_OCTAVE - 1);
}

/* The upper edge of bin b (b >= 1). */
static float hist_edge(int b) {
    if (b >= HIST_BINS - 1) return 0x1p24f;
    int o = (b - 1) / HIST_PER_OCTAVE, k = (b - 1) % HIST_PER_OCTAVE;
    return ldexpf(1.0f + (float)(k + 1) / HIST_PER_OCTAVE, o - HIST_LOW);
}

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

void pn_cpu_int8_free(cpu_ctx *ctx) {
    struct cpu_int8 *q = ctx->int8;
    if (!q) return;
    free_names(q->labels, q->n);
    free(q->lo);
    free(q->hi);
    free_names(q->c_labels, q->c_n);
    for (int i = 0; i < q->c_n; i++) free(q->c_hist[i]);
    free(q->c_hist);
    free(q->c_lo);
    free(q->c_hi);
    free(q);
    ctx->int8 = NULL;
}

static pn_status ensure(cpu_ctx *ctx) {
    if (!ctx->int8) ctx->int8 = calloc(1, sizeof *ctx->int8);
    return ctx->int8 ? PN_OK : pn_error(PN_ERR_NOMEM, "out of memory");
}

static cpu_ctx *cpu_of(pn_backend *be, const char *what) {
    if (!be || strcmp(be->name, "cpu") != 0) {
        pn_error(PN_ERR_UNSUPPORTED, "%s: int8 convolutions are a cpu backend feature; the %s backend has none", what,
                 be ? be->name : "(none)");
        return NULL;
    }
    return be->ctx;
}

bool pn_cpu_int8_available(void) {
#ifdef PN_HAVE_ONEDNN
    return true;
#else
    return false;
#endif
}

bool pn_cpu_int8_vnni(void) {
#ifdef PN_HAVE_ONEDNN
    return cpu_isa_has(dnnl_cpu_isa_avx512_core_vnni);
#else
    return false;
#endif
}

int pn_cpu_int8_weight_max(void) { return pn_cpu_int8_vnni() ? 127 : 63; }

#ifndef PN_HAVE_ONEDNN
bool pn_cpu_conv_takes_quantized(const pn_node *node) {
    (void)node;
    return false;
}

bool pn_cpu_conv_reads_quantized_from(const pn_node *conv, const pn_node *from) {
    (void)conv, (void)from;
    return false;
}
#endif

pn_status pn_cpu_int8_set(pn_backend *be, int n, const char *const *labels, const float *lo, const float *hi) {
    cpu_ctx *ctx = cpu_of(be, "int8 inference");
    if (!ctx) return PN_ERR_UNSUPPORTED;
    if (!pn_cpu_int8_available())
        return pn_error(PN_ERR_UNSUPPORTED,
                        "int8 inference needs oneDNN's int8 convolutions and this build has no oneDNN");
    PN_TRY(ensure(ctx));
    struct cpu_int8 *q = ctx->int8;
    free_names(q->labels, q->n);
    free(q->lo);
    free(q->hi);
    q->labels = calloc((size_t)(n > 0 ? n : 1), sizeof *q->labels);
    q->lo = malloc((size_t)(n > 0 ? n : 1) * sizeof *q->lo);
    q->hi = malloc((size_t)(n > 0 ? n : 1) * sizeof *q->hi);
    q->n = 0;
    if (!q->labels || !q->lo || !q->hi) return pn_error(PN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        if (!(hi[i] > 0) || !(lo[i] <= hi[i]) || !isfinite(lo[i]) || !isfinite(hi[i]))
            return pn_error(PN_ERR_ARG, "int8 range of %s: [%g, %g] is not a finite range above 0", labels[i], lo[i],
                            hi[i]);
        q->labels[i] = pn_strdup(labels[i]);
        if (!q->labels[i]) return pn_error(PN_ERR_NOMEM, "out of memory");
        q->lo[i] = lo[i], q->hi[i] = hi[i];
        q->n = i + 1;
    }
    return PN_OK;
}

bool pn_cpu_int8_find(const cpu_ctx *ctx, const char *label, float *lo, float *hi) {
    const struct cpu_int8 *q = ctx->int8;
    for (int i = 0; q && label && i < q->n; i++)
        if (strcmp(q->labels[i], label) == 0) {
            *lo = q->lo[i], *hi = q->hi[i];
            return true;
        }
    return false;
}

pn_status pn_cpu_calibrate(pn_backend *be, bool on) {
    cpu_ctx *ctx = cpu_of(be, "calibration");
    if (!ctx) return PN_ERR_UNSUPPORTED;
    PN_TRY(ensure(ctx));
    ctx->int8->calibrating = on;
    return PN_OK;
}

int pn_cpu_calibration(pn_backend *be, const char *const **labels, const float **lo, const float **hi) {
    cpu_ctx *ctx = be && strcmp(be->name, "cpu") == 0 ? be->ctx : NULL;
    if (!ctx || !ctx->int8) return 0;
    *labels = (const char *const *)ctx->int8->c_labels;
    *lo = ctx->int8->c_lo, *hi = ctx->int8->c_hi;
    return ctx->int8->c_n;
}

pn_status pn_cpu_calib_observe(cpu_ctx *ctx, const pn_node *node) {
    struct cpu_int8 *q = ctx->int8;
    if (!q || !q->calibrating || node->op != PN_OP_CONV2D_FWD || !node->label) return PN_OK;
    const float *x = cpu_ptr(node->in[0]);
    int64_t n = pn_tensor_numel(node->in[0]);
    int k = 0;
    while (k < q->c_n && strcmp(q->c_labels[k], node->label) != 0) k++;
    if (k == q->c_n) {
        if (q->c_n == q->c_cap) {
            int cap = q->c_cap ? 2 * q->c_cap : 64;
            char **l = realloc(q->c_labels, (size_t)cap * sizeof *l);
            if (l) q->c_labels = l;
            float *a = realloc(q->c_lo, (size_t)cap * sizeof *a);
            if (a) q->c_lo = a;
            float *b = realloc(q->c_hi, (size_t)cap * sizeof *b);
            if (b) q->c_hi = b;
            uint64_t **h = realloc(q->c_hist, (size_t)cap * sizeof *h);
            if (h) q->c_hist = h;
            if (!l || !a || !b || !h) return pn_error(PN_ERR_NOMEM, "out of memory recording a calibration range");
            q->c_cap = cap;
        }
        q->c_labels[k] = pn_strdup(node->label);
        q->c_hist[k] = calloc(HIST_BINS, sizeof **q->c_hist);
        if (!q->c_labels[k] || !q->c_hist[k]) {
            free(q->c_labels[k]);
            free(q->c_hist[k]);
            return pn_error(PN_ERR_NOMEM, "out of memory recording a calibration range");
        }
        q->c_lo[k] = FLT_MAX, q->c_hi[k] = -FLT_MAX;
        q->c_n++;
    }
    float lo = q->c_lo[k], hi = q->c_hi[k];
    uint64_t *hist = q->c_hist[k];
#pragma omp parallel reduction(min : lo) reduction(max : hi)
    {
        uint32_t local[HIST_BINS];
        memset(local, 0, sizeof local);
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            lo = fminf(lo, x[i]);
            hi = fmaxf(hi, x[i]);
            local[hist_bin(x[i])]++;
        }
#pragma omp critical
        for (int b = 0; b < HIST_BINS; b++) hist[b] += local[b];
    }
    q->c_lo[k] = lo, q->c_hi[k] = hi;
    return PN_OK;
}

void pn_cpu_calibration_range(pn_backend *be, int i, double percentile, float *lo, float *hi) {
    cpu_ctx *ctx = be->ctx;
    const struct cpu_int8 *q = ctx->int8;
    *lo = q->c_lo[i], *hi = q->c_hi[i];
    if (percentile >= 100) return;
    uint64_t total = 0, seen = 0;
    for (int b = 0; b < HIST_BINS; b++) total += q->c_hist[i][b];
    double want = percentile / 100.0 * (double)total;
    int b = 0;
    while (b < HIST_BINS - 1 && (double)(seen + q->c_hist[i][b]) < want) seen += q->c_hist[i][b++];
    float edge = b == 0 ? 0x1p-24f : hist_edge(b);
    if (edge < *hi) *hi = edge; /* |x| below edge for that share of the values: clip the rest */
    if (*lo < 0 && -edge > *lo) *lo = -edge;
}

float pn_cpu_int8_src_scale(float lo, float hi, bool *is_signed) {
    *is_signed = lo < 0;
    float amax = fmaxf(hi, -lo);
    return (*is_signed ? 127.0f : 255.0f) / amax;
}

/* max |w[i]|: the largest of the values' bit patterns with the sign cleared, which orders finite values and
 * infinities as their magnitudes do (an integer maximum, which the compiler vectorises); NaN, whose patterns lie above
 * infinity's, comes out as NaN. */
static float abs_max(const float *w, int64_t n) {
    uint32_t top = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &w[i], sizeof b);
        b &= 0x7fffffffu;
        top = b > top ? b : top;
    }
    float m;
    memcpy(&m, &top, sizeof m);
    return m;
}

bool pn_cpu_int8_scales(const float *w, int64_t cout, int64_t per, const float *bn_scale, float src_scale,
                        float *wei_scale, float *out_scale, float *bias) {
    double qmax = pn_cpu_int8_weight_max();
    int64_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad)
    for (int64_t o = 0; o < cout; o++) {
        float amax = abs_max(w + o * per, per);
        double s = bn_scale ? bn_scale[o] : 1.0; /* the folded weights are w * s */
        bad += !isfinite(amax) || !isfinite(s);
        double b = amax > 0 && s != 0 ? qmax / (amax * fabs(s)) : 1.0; /* q = round(w * s * b) */
        wei_scale[o] = (float)(s * b);
        out_scale[o] = (float)(1.0 / (src_scale * b));        /* y = out_scale * (sum q_x q_w + bias') */
        if (bias) bias[o] = (float)(bias[o] * src_scale * b); /* oneDNN 2.x adds the bias before the output scale */
    }
    return bad == 0;
}

/* pn_cpu_int8_output for pixels [p0, p1) of image img. */
CPU_SIMD_CLONES static void output_pixels(float *y, const float *x, const float *addend, bool relu, int64_t c,
                                          int64_t hw, int64_t b, int64_t img, int64_t p0, int64_t p1) {
    int64_t blocks = c / b;
    for (int64_t p = p0; p < p1; p++) { /* one pixel: its c channels are one run of x */
        const float *from = x + (img * hw + p) * c;
        for (int64_t cb = 0; cb < blocks; cb++) {
            int64_t at = ((img * blocks + cb) * hw + p) * b;
            float *to = y + at;
            const float *add = addend ? addend + at : NULL;
            for (int64_t i = 0; i < b; i++) {
                float v = from[cb * b + i] + (add ? add[i] : 0.0f);
                to[i] = relu && v < 0.0f ? 0.0f : v;
            }
        }
    }
}

#define OUTPUT_PIXELS 256
void pn_cpu_int8_output(float *y, const float *x, const float *addend, bool relu, int64_t n, int64_t c, int64_t hw,
                        int64_t b) {
    int64_t runs = (hw + OUTPUT_PIXELS - 1) / OUTPUT_PIXELS;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t img = 0; img < n; img++)
        for (int64_t r = 0; r < runs; r++) {
            int64_t p0 = r * OUTPUT_PIXELS, p1 = p0 + OUTPUT_PIXELS < hw ? p0 + OUTPUT_PIXELS : hw;
            output_pixels(y, x, addend, relu, c, hw, b, img, p0, p1);
        }
}
