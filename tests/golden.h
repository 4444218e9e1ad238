/* golden: reading PyTorch golden files (safetensors of float32/float64 tensors) in the parity tests. */
#ifndef PN_TESTS_GOLDEN_H
#define PN_TESTS_GOLDEN_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "core/tensor.h"

/* Tensor `name` of golden file g as doubles (caller frees), or NULL with a message; n gets its length. */
static inline double *golden_get(const pn_st_file *g, const char *name, int64_t *n) {
    const pn_st_entry *e = pn_st_find(g, name);
    *n = 0;
    if (!e) {
        fprintf(stderr, "golden %s lacks %s\n", g->path, name);
        return NULL;
    }
    *n = pn_st_numel(e);
    double *d = malloc((size_t)*n * sizeof *d);
    if (e->dtype == PN_ST_F64) { /* little-endian doubles, exactly as written */
        memcpy(d, g->data + e->begin, (size_t)*n * sizeof *d);
        return d;
    }
    if (e->dtype == PN_ST_I64) {
        int64_t *v = malloc((size_t)*n * sizeof *v);
        pn_status st = pn_st_read_i64(g, e, v, *n);
        for (int64_t i = 0; i < *n; i++) d[i] = st == PN_OK ? (double)v[i] : NAN;
        free(v);
        return d;
    }
    float *f = malloc((size_t)*n * sizeof *f);
    pn_status st = pn_st_read_f32(g, e, f, *n);
    for (int64_t i = 0; st == PN_OK && i < *n; i++) d[i] = f[i];
    free(f);
    if (st != PN_OK) {
        free(d);
        return NULL;
    }
    return d;
}

/* The first value of golden tensor `name`, NaN if absent. */
static inline double golden_scalar(const pn_st_file *g, const char *name) {
    int64_t n;
    double *v = golden_get(g, name, &n);
    double s = v ? v[0] : NAN;
    free(v);
    return s;
}

/* Sets tensor t (host NCHW floats) from golden tensor `name` of the same size. */
static inline pn_status golden_set(const pn_st_file *g, pn_tensor *t, const char *name) {
    int64_t n;
    double *d = golden_get(g, name, &n);
    if (!d || n != pn_tensor_numel(t)) {
        free(d);
        return pn_error(PN_ERR_FORMAT, "golden %s has the wrong size", name);
    }
    float *f = malloc((size_t)n * sizeof *f);
    for (int64_t i = 0; i < n; i++) f[i] = (float)d[i];
    pn_status st = pn_tensor_set(t, f);
    free(f);
    free(d);
    return st;
}

/* The normalized error (root of summed squares of differences over that of the golden) of gradient `grad` against
 * golden tensor "grad/<param>", which holds an evenly spaced sample of it (element j of k is the gradient's
 * element j*n/k). A gradient PyTorch has as exactly zero is held to zero (the plain root sum of squares). Returns
 * false (a message printed) when the golden lacks it or the gradient cannot be read. */
static inline bool golden_grad_error(const pn_st_file *g, const char *param, const pn_tensor *grad, double *err) {
    char key[160];
    snprintf(key, sizeof key, "grad/%s", param);
    int64_t k = 0, n = pn_tensor_numel(grad);
    double *want = golden_get(g, key, &k);
    float *got = malloc((size_t)n * sizeof *got);
    bool ok = want && got && pn_tensor_get(grad, got) == PN_OK;
    double num = 0, den = 0;
    for (int64_t j = 0; ok && j < k; j++) {
        double d = got[(j * n) / k] - want[j];
        num += d * d;
        den += want[j] * want[j];
    }
    *err = den > 0 ? sqrt(num / den) : sqrt(num);
    free(got);
    free(want);
    return ok;
}

#endif
