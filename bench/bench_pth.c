/* bench_pth: time and peak memory of reading a PyTorch checkpoint: open (pickle, storages) and every tensor
 * converted to float32 through one scratch buffer, as loading a model does. Prints the median of the runs.
 * Usage: bench_pth FILE.pth [RUNS] */
#include <stdio.h>
#include <stdlib.h>

#include "data/pth.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_pth FILE.pth [RUNS]\n");
        return 2;
    }
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (runs < 1 || runs > 100) runs = 5;
    double times[100] = {0}, checksum = 0;
    int64_t scalars = 0;
    int tensors = 0;
    const char *format = "";
    for (int r = 0; r < runs; r++) {
        double t0 = pn_now();
        pn_pth_file *f;
        if (pn_pth_open(argv[1], &f) != PN_OK) {
            fprintf(stderr, "bench_pth: %s\n", pn_last_error());
            return 1;
        }
        int64_t most = 1;
        for (int i = 0; i < f->count; i++)
            if (pn_pth_numel(&f->tensors[i]) > most) most = pn_pth_numel(&f->tensors[i]);
        float *buf = malloc((size_t)most * sizeof *buf);
        scalars = 0;
        checksum = 0;
        for (int i = 0; buf && i < f->count; i++) {
            int64_t n = pn_pth_numel(&f->tensors[i]);
            if (pn_pth_read_f32(f, &f->tensors[i], buf, n) != PN_OK) {
                fprintf(stderr, "bench_pth: %s\n", pn_last_error());
                return 1;
            }
            scalars += n;
            checksum += n ? buf[n - 1] : 0;
        }
        tensors = f->count;
        format = f->format[0] == 'z' ? "zip" : "legacy";
        free(buf);
        pn_pth_close(f);
        times[r] = pn_now() - t0;
    }
    qsort(times, (size_t)runs, sizeof times[0], cmp_double);
    printf("%s (%s): %d tensors, %lld scalars; read in %.3f s (median of %d, min %.3f, max %.3f); peak RSS %.1f MB "
           "(checksum %.6g)\n",
           argv[1], format, tensors, (long long)scalars, times[runs / 2], runs, times[0], times[runs - 1],
           (double)pn_peak_rss_bytes() / 1e6, checksum);
    return 0;
}
