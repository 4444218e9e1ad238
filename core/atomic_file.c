/* atomic_file: write to "<path>.tmp.<pid>", then rename over <path>, so no reader sees half a file. */
#define _POSIX_C_SOURCE 200809L
#include "atomic_file.h"

#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

pn_status pn_atomic_open(pn_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    if (strlen(path) >= sizeof af->path) return pn_error(PN_ERR_ARG, "path too long: %s", path);
    snprintf(af->path, sizeof af->path, "%s", path);
    snprintf(af->tmp, sizeof af->tmp, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp, "wb");
    if (!af->f) return pn_error(PN_ERR_IO, "%s: cannot create (%s)", af->tmp, strerror(errno));
    return PN_OK;
}

pn_status pn_atomic_commit(pn_atomic_file *af) {
    int failed = ferror(af->f) || fflush(af->f) != 0 || fsync(fileno(af->f)) != 0;
    int saved = errno;
    failed |= fclose(af->f) != 0;
    af->f = NULL;
    if (failed) {
        remove(af->tmp);
        return pn_error(PN_ERR_IO, "%s: write failed (%s)", af->path, strerror(saved));
    }
    if (rename(af->tmp, af->path) != 0) {
        saved = errno;
        remove(af->tmp);
        return pn_error(PN_ERR_IO, "%s: cannot rename into place (%s)", af->path, strerror(saved));
    }
    return PN_OK;
}

void pn_atomic_abort(pn_atomic_file *af) {
    if (af->f) fclose(af->f);
    af->f = NULL;
    remove(af->tmp);
}
