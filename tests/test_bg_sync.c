/* test_bg_sync: the background folder sync and the fsync switch of atomic files: files committed with fsync
 * off are complete and in place at once, syncs start and finish cleanly, a missing folder is one clear error.
 * Usage: test_bg_sync SCRATCH_DIR */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "core/atomic_file.h"
#include "tools/bg_sync.h"

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "scratch_bg_sync";
    mkdir(dir, 0777);
    char path[4096], missing[4200];
    snprintf(path, sizeof path, "%s/a.bin", dir);
    snprintf(missing, sizeof missing, "%s/no/such/folder", dir);

    pn_bg_sync s;
    CHECK(pn_bg_sync_open(&s, dir) == PN_OK);
    pn_atomic_set_fsync(false);
    for (int round = 0; round < 3; round++) {
        pn_atomic_file af;
        CHECK(pn_atomic_open(&af, path) == PN_OK);
        for (int i = 0; i < 1000 * (round + 1); i++) fputs("0123456789", af.f);
        CHECK(pn_atomic_commit(&af) == PN_OK);
        CHECK_MSG(file_size(path) == 10000L * (round + 1), "round %d: %ld bytes in place", round, file_size(path));
        CHECK(pn_bg_sync_start(&s) == PN_OK); /* waits for the previous one */
    }
    CHECK(pn_bg_sync_finish(&s) == PN_OK);
    CHECK(!s.running);
    pn_bg_sync_close(&s);
    pn_atomic_set_fsync(true);

    pn_bg_sync bad;
    CHECK(pn_bg_sync_open(&bad, missing) == PN_ERR_IO && strstr(pn_last_error(), "no/such/folder") &&
          strstr(pn_last_error(), "cannot open"));
    return check_report("test_bg_sync");
}
