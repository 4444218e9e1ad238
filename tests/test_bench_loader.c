/* test_bench_loader: `bench loader` runs end to end on a few small synthetic PNGs and leaves nothing behind (its
 * temporary folder under $TMPDIR is gone afterwards, checked in an empty folder of our own).
 * With arguments it runs the benchmark with them (e.g. --size 512 --threads 2) instead. Scratch: $TMPDIR. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/png.h"
#include "tests/check.h"
#include "tools/bench_loader.h"

/* The entries of `dir` other than . and .. (-1 if it cannot be opened); the first one's name into `first`. */
static int count_entries(const char *dir, char *first, size_t cap) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    first[0] = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (n++ == 0) snprintf(first, cap, "%s", e->d_name);
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv) {
    if (argc > 1) return pn_bench_loader(argc, argv);
    const char *tmp = getenv("TMPDIR"); /* ctest points it at the build folder */
    char scratch[4096], probe[4200], left[256];
    snprintf(scratch, sizeof scratch, "%s/test_bench_loader_XXXXXX", tmp && *tmp ? tmp : ".");
    if (!mkdtemp(scratch)) {
        CHECK_MSG(false, "cannot create a folder from %s", scratch);
        return check_report("test_bench_loader");
    }
    uint8_t px[4] = {0};
    snprintf(probe, sizeof probe, "%s/bench_probe.png", scratch);
    if (pn_png_write(probe, 2, 2, 1, 8, px) == PN_ERR_UNSUPPORTED) {
        SKIP("bench loader needs PNG support: %s", pn_last_error());
        rmdir(scratch);
        return check_report("test_bench_loader");
    }
    remove(probe);
    setenv("TMPDIR", scratch, 1); /* the bench makes its temporary folder here */
    char *args[] = {"loader", "--size", "64", "--n", "12", "--batch", "4", "--batches", "6", "--aug", "winner", NULL};
    CHECK(pn_bench_loader(11, args) == 0);
    int n = count_entries(scratch, left, sizeof left);
    CHECK_MSG(n == 0, "the bench left %d entries in its TMPDIR (the first: %s)", n, left);
    char *bad[] = {"loader", "--aug", "hflip:2", NULL};
    CHECK(pn_bench_loader(3, bad) != 0);
    char *bad_size[] = {"loader", "--size",    "64", "--n",         "2", "--batch",
                        "4",      "--batches", "1",  "--normalize", "x", NULL};
    CHECK(pn_bench_loader(11, bad_size) != 0);
    n = count_entries(scratch, left, sizeof left);
    CHECK_MSG(n == 0, "a failed bench left %d entries in its TMPDIR (the first: %s)", n, left);
    CHECK(rmdir(scratch) == 0);
    return check_report("test_bench_loader");
}
