/* bench_convs: per-layer conv GFLOP/s of Unet-resnet34 on a backend: the layers `pneumoseg bench ops` times, as a
 * standalone binary for experiments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/register.h"
#include "tools/conv_layers.h"

int main(int argc, char **argv) {
    const char *backend = "cpu";
    int threads = 0, size = 512, batch = 1, reps = 5, warmup = 2, backward = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--backend"))
            backend = v, i++;
        else if (!strcmp(a, "--threads"))
            threads = atoi(v), i++;
        else if (!strcmp(a, "--size"))
            size = atoi(v), i++;
        else if (!strcmp(a, "--batch"))
            batch = atoi(v), i++;
        else if (!strcmp(a, "--reps"))
            reps = atoi(v), i++;
        else if (!strcmp(a, "--warmup"))
            warmup = atoi(v), i++;
        else if (!strcmp(a, "--backward"))
            backward = 1;
        else {
            fprintf(stderr, "usage: bench_convs [--backend B] [--threads N] [--size S] [--batch N] [--reps N] "
                            "[--warmup N] [--backward]\n");
            return 2;
        }
    }
    if (reps < 1 || size < 32 || batch < 1) {
        fprintf(stderr, "bench_convs: need --reps >= 1, --size >= 32, --batch >= 1\n");
        return 2;
    }
    pn_register_builtin_backends();
    pn_backend *be = NULL;
    pn_arch arch;
    if (pn_backend_open(backend, threads, &be) != PN_OK || pn_arch_make("resnet34", "unet", NULL, &arch) != PN_OK ||
        pn_bench_conv_layers(be, &arch, size, batch, warmup, reps, backward, stdout) != PN_OK) {
        fprintf(stderr, "bench_convs: %s\n", pn_last_error());
        pn_backend_close(be);
        return 1;
    }
    pn_backend_close(be);
    return 0;
}
