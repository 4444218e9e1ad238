/* st_diff: compares the float tensors of two safetensors files whose names contain a substring: for each, the
 * largest |a - b| over its largest |b|; prints the worst and the median over the tensors and exits 1 when the worst
 * exceeds MAX or the median exceeds MEDIAN (or a tensor is missing, or none matched).
 * Usage: st_diff A B SUBSTRING MAX MEDIAN   (SUBSTRING "" = every float tensor) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"

static double tensor_diff(const float *a, const float *b, int64_t n) {
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > diff || d != d) diff = d;
        if (fabs((double)b[i]) > scale) scale = fabs((double)b[i]);
    }
    return scale > 0 ? diff / scale : diff;
}

static int by_value(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* The relative difference of entry ea of fa against its namesake in fb, or -1 (message printed) if it cannot. */
static double entry_diff(const pn_st_file *fa, const pn_st_entry *ea, const pn_st_file *fb) {
    const pn_st_entry *eb = pn_st_find(fb, ea->name);
    int64_t n = pn_st_numel(ea);
    if (!eb || pn_st_numel(eb) != n) {
        fprintf(stderr, "st_diff: %s is missing or has another size in %s\n", ea->name, fb->path);
        return -1;
    }
    float *a = malloc((size_t)n * sizeof *a + 1), *b = malloc((size_t)n * sizeof *b + 1);
    double d = -1;
    if (a && b && pn_st_read_f32(fa, ea, a, n) == PN_OK && pn_st_read_f32(fb, eb, b, n) == PN_OK)
        d = tensor_diff(a, b, n);
    else
        fprintf(stderr, "st_diff: cannot read %s\n", ea->name);
    free(a);
    free(b);
    return d;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: st_diff A B SUBSTRING MAX MEDIAN\n");
        return 2;
    }
    const char *sub = argv[3];
    double max_tol = atof(argv[4]), median_tol = atof(argv[5]);
    pn_st_file *fa = NULL, *fb = NULL;
    if (pn_st_open(argv[1], &fa) != PN_OK || pn_st_open(argv[2], &fb) != PN_OK) {
        fprintf(stderr, "st_diff: %s\n", pn_last_error());
        return 1;
    }
    double *diffs = malloc(sizeof(double) * (size_t)(fa->count + 1)), worst = 0;
    const char *worst_name = "";
    int n = 0, bad = 0;
    for (int i = 0; i < fa->count; i++) {
        const pn_st_entry *ea = &fa->entries[i];
        if (ea->dtype != PN_ST_F32 || !strstr(ea->name, sub)) continue;
        double d = entry_diff(fa, ea, fb);
        if (d < 0) {
            bad = 1;
            continue;
        }
        if (d > worst || d != d) worst = d, worst_name = ea->name;
        diffs[n++] = d;
    }
    qsort(diffs, (size_t)n, sizeof *diffs, by_value);
    double median = n ? diffs[n / 2] : 0;
    printf("st_diff '%s': %d tensors, relative difference worst %.3g (%s), median %.3g\n", sub, n, worst, worst_name,
           median);
    int rc = !bad && n > 0 && worst <= max_tol && median <= median_tol ? 0 : 1;
    free(diffs);
    pn_st_close(fa);
    pn_st_close(fb);
    return rc;
}
