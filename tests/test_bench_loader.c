/* test_bench_loader: `bench loader` runs end to end on a few small synthetic PNGs and leaves nothing behind.
 * With arguments it runs the benchmark with them (e.g. --size 512 --threads 2) instead. Scratch: $TMPDIR. */
#include <stdlib.h>

#include "data/png.h"
#include "tests/check.h"
#include "tools/bench_loader.h"

int main(int argc, char **argv) {
    if (argc > 1) return pn_bench_loader(argc, argv);
    uint8_t px[4] = {0};
    char probe[4096];
    const char *tmp = getenv("TMPDIR"); /* ctest points it at the build folder */
    snprintf(probe, sizeof probe, "%s/bench_probe.png", tmp && *tmp ? tmp : ".");
    if (pn_png_write(probe, 2, 2, 1, 8, px) == PN_ERR_UNSUPPORTED) {
        SKIP("bench loader needs PNG support: %s", pn_last_error());
        return check_report("test_bench_loader");
    }
    remove(probe);
    char *args[] = {"loader", "--size", "64", "--n", "12", "--batch", "4", "--batches", "6", "--aug", "winner", NULL};
    CHECK(pn_bench_loader(11, args) == 0);
    char *bad[] = {"loader", "--aug", "hflip:2", NULL};
    CHECK(pn_bench_loader(3, bad) != 0);
    return check_report("test_bench_loader");
}
