/* int8_file: what makes a weights file an int8 model: the calibrated input range of each quantized convolution,
 * kept in the safetensors metadata next to the float32 weights; and applying it to a backend. */
#define _POSIX_C_SOURCE 200809L
#include "int8_file.h"

#include "data/pth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/options.h"
#include "data/pth.h"

/* The value: "v1;<label>:<lo>:<hi>;..." (labels hold neither ':' nor ';'). */
pn_status pn_int8_meta_write(pn_st_writer *w, int n, const char *const *labels, const float *lo, const float *hi,
                             const char *calibration) {
    size_t cap = 16;
    for (int i = 0; i < n; i++) cap += strlen(labels[i]) + 40;
    char *text = malloc(cap);
    if (!text) return pn_error(PN_ERR_NOMEM, "out of memory");
    size_t len = (size_t)snprintf(text, cap, "v1");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, ";%s:%.9g:%.9g", labels[i], lo[i], hi[i]);
    pn_status st = pn_st_writer_meta(w, PN_INT8_META_KEY, text);
    if (st == PN_OK) st = pn_st_writer_meta(w, PN_INT8_META_KEY ".calibration", calibration);
    free(text);
    return st;
}

typedef struct int8_table {
    char *storage; /* the labels point into it */
    char **labels;
    float *lo, *hi;
    int n;
} int8_table;

static void table_free(int8_table *t) {
    free(t->storage);
    free(t->labels);
    free(t->lo);
    free(t->hi);
}

/* Parses the metadata value; false if it is not "v1;label:lo:hi;...". */
static bool parse(const char *value, int8_table *t) {
    memset(t, 0, sizeof *t);
    if (strncmp(value, "v1", 2) != 0 || (value[2] != 0 && value[2] != ';')) return false;
    int n = 0;
    for (const char *c = value; *c; c++) n += *c == ';';
    t->storage = pn_strdup(value);
    t->labels = calloc((size_t)n + 1, sizeof *t->labels);
    t->lo = malloc(((size_t)n + 1) * sizeof *t->lo);
    t->hi = malloc(((size_t)n + 1) * sizeof *t->hi);
    if (!t->storage || !t->labels || !t->lo || !t->hi) return false;
    char *save = NULL;
    strtok_r(t->storage, ";", &save); /* "v1" */
    for (char *item = strtok_r(NULL, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
        char *a = strchr(item, ':'), *b = a ? strchr(a + 1, ':') : NULL, *end1, *end2;
        if (!a || !b || a == item) return false;
        *a = *b = 0;
        t->lo[t->n] = strtof(a + 1, &end1);
        t->hi[t->n] = strtof(b + 1, &end2);
        if (*end1 || *end2 || end1 == a + 1 || end2 == b + 1) return false;
        t->labels[t->n++] = item;
    }
    return t->n == n;
}

/* Says how many convolutions run in int8, and what this CPU changes of that. */
static void log_applied(pn_backend *be, const char *weights, const int8_table *t) {
    int below0 = 0;
    for (int i = 0; i < t->n; i++) below0 += t->lo[i] < 0;
    if (pn_backend_int8_full(be))
        pn_log_info("%s: int8 model, %d convolutions in int8", weights, t->n);
    else if (below0 == 0)
        pn_log_info("%s: int8 model, %d convolutions in int8 with 7-bit weights: this CPU has no AVX512_VNNI", weights,
                    t->n);
    else
        pn_log_info("%s: int8 model, %d convolutions in int8 with 7-bit weights and %d whose input goes below 0 (the "
                    "stem) in float32: this CPU has no AVX512_VNNI",
                    weights, t->n - below0, below0);
}

pn_status pn_int8_apply(pn_backend *be, const char *weights, bool *is_int8) {
    *is_int8 = false;
    if (pn_pth_sniff(weights)) /* a PyTorch checkpoint (loaded through the key map) is a float32 model */
        return pn_backend_has_int8(be) ? pn_backend_int8_set(be, 0, NULL, NULL, NULL) : PN_OK;
    pn_st_file *f;
    PN_TRY(pn_st_open_header(weights, &f));
    const char *value = pn_st_meta(f, PN_INT8_META_KEY);
    pn_status st = PN_OK;
    if (!value && pn_backend_has_int8(be))
        st = pn_backend_int8_set(be, 0, NULL, NULL, NULL); /* a float32 model: none of an earlier model's ranges */
    if (value) {
        *is_int8 = true;
        int8_table t;
        bool ok = parse(value, &t);
        if (!ok)
            st = pn_error(PN_ERR_FORMAT, "%s: metadata %s does not parse (expected v1;label:lo:hi;...)", weights,
                          PN_INT8_META_KEY);
        else if (!pn_backend_has_int8(be))
            st = pn_error(PN_ERR_UNSUPPORTED,
                          "%s is an int8 model (pneumoseg quantize) and the %s backend%s has no "
                          "int8 convolutions; run it with --backend cpu, or use the float32 weights it was made from",
                          weights, be->name, strcmp(be->name, "cpu") == 0 ? " of this build (no oneDNN)" : "");
        else
            st = pn_backend_int8_set(be, t.n, (const char *const *)t.labels, t.lo, t.hi);
        if (st == PN_OK) log_applied(be, weights, &t);
        table_free(&t);
    }
    if (f) pn_st_close(f);
    return st;
}
