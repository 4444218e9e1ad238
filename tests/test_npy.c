/* test_npy: .npy files written by NumPy read correctly; wrong dtype, Fortran order, rank and truncation
 * are refused with a message; our writer's files read back (and NumPy reads them: see test_cli.sh). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/npy.h"
#include "tests/check.h"

#define DIR "ref/golden/npy/"

static void expect_error(const char *path, int min_rank, int max_rank, const char *needle) {
    pn_npy a;
    pn_status st = pn_npy_read(path, min_rank, max_rank, &a);
    CHECK_MSG(st != PN_OK, "%s should be refused", path);
    CHECK_MSG(strstr(pn_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", path, pn_last_error(), needle);
    CHECK(strstr(pn_last_error(), path) != NULL);
    CHECK(a.data == NULL);
}

static void expect_arange(const char *path) {
    pn_npy a;
    CHECK_MSG(pn_npy_read(path, 4, 4, &a) == PN_OK, "%s: %s", path, pn_last_error());
    CHECK(a.ndim == 4 && a.shape[0] == 2 && a.shape[1] == 3 && a.shape[2] == 4 && a.shape[3] == 5);
    int ok = 1;
    for (int i = 0; a.data && i < 120; i++) ok &= a.data[i] == (float)i;
    CHECK(ok);
    pn_free(a.data);
}

int main(int argc, char **argv) {
    const char *tmpdir = argc > 1 ? argv[1] : ".";
    expect_arange(DIR "c_f4.npy");
    expect_arange(DIR "c_f4_v2.npy");
    expect_error(DIR "fortran_f4.npy", 4, 4, "Fortran");
    expect_error(DIR "c_f8.npy", 4, 4, "<f8");
    expect_error(DIR "c_be_f4.npy", 4, 4, ">f4");
    expect_error(DIR "rank3_f4.npy", 4, 4, "4-d");
    expect_error(DIR "does_not_exist.npy", 4, 4, "cannot open");

    /* Round trip through our writer, then every truncation of the file is refused. */
    char path[600], cut[640];
    snprintf(path, sizeof path, "%s/npy_roundtrip.npy", tmpdir);
    float v[120];
    for (int i = 0; i < 120; i++) v[i] = (float)i;
    int64_t shape[4] = {2, 3, 4, 5};
    CHECK(pn_npy_write(path, 4, shape, v) == PN_OK);
    expect_arange(path);
    FILE *f = fopen(path, "rb");
    unsigned char buf[1024];
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK(len == 128 + 480);
    snprintf(cut, sizeof cut, "%s/npy_cut.npy", tmpdir);
    int refused = 0;
    for (size_t n = 0; n < len; n++) {
        FILE *g = fopen(cut, "wb");
        fwrite(buf, 1, n, g);
        fclose(g);
        pn_npy a;
        refused += pn_npy_read(cut, 4, 4, &a) != PN_OK;
    }
    CHECK_MSG(refused == (int)len, "%d of %zu truncations refused", refused, len);
    return check_report("test_npy");
}
