/* st_compare: compares the float tensors of two safetensors files (the same names and shapes): for each tensor the
 * largest |a - b| over its largest |b|; prints the worst and exits 1 when it exceeds TOL (or a tensor is missing).
 * Usage: st_compare A B TOL */
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

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: st_compare A B TOL\n");
        return 2;
    }
    double tol = atof(argv[3]), worst = 0;
    const char *worst_name = "";
    pn_st_file *fa = NULL, *fb = NULL;
    if (pn_st_open(argv[1], &fa) != PN_OK || pn_st_open(argv[2], &fb) != PN_OK) {
        fprintf(stderr, "st_compare: %s\n", pn_last_error());
        return 1;
    }
    int compared = 0, bad = 0;
    for (int i = 0; i < fa->count; i++) {
        const pn_st_entry *ea = &fa->entries[i], *eb = pn_st_find(fb, ea->name);
        if (ea->dtype != PN_ST_F32) continue;
        int64_t n = pn_st_numel(ea);
        if (!eb || pn_st_numel(eb) != n) {
            fprintf(stderr, "st_compare: %s is missing or has another size in %s\n", ea->name, argv[2]);
            bad = 1;
            continue;
        }
        float *a = malloc((size_t)n * sizeof *a + 1), *b = malloc((size_t)n * sizeof *b + 1);
        if (!a || !b || pn_st_read_f32(fa, ea, a, n) != PN_OK || pn_st_read_f32(fb, eb, b, n) != PN_OK) {
            fprintf(stderr, "st_compare: cannot read %s\n", ea->name);
            bad = 1;
        } else {
            double d = tensor_diff(a, b, n);
            if (d > worst || d != d) worst = d, worst_name = ea->name;
            compared++;
        }
        free(a);
        free(b);
    }
    printf("st_compare: %d tensors, worst relative difference %.3g (%s)\n", compared, worst, worst_name);
    bool ok = !bad && compared > 0 && worst <= tol;
    pn_st_close(fa);
    pn_st_close(fb);
    return ok ? 0 : 1;
}
