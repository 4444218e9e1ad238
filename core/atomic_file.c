/* atomic_file: write to "<path>.tmp.<pid>", then rename over <path>, so no reader sees half a file. */
#define _POSIX_C_SOURCE 200809L
#include "atomic_file.h"

#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static bool fsync_on = true;

void pn_atomic_set_fsync(bool on) { fsync_on = on; }

pn_status pn_atomic_open(pn_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    if (strlen(path) >= sizeof af->path) return pn_error(PN_ERR_ARG, "path too long: %s", path);
    snprintf(af->path, sizeof af->path, "%s", path);
    snprintf(af->tmp, sizeof af->tmp, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp, "wb");
    if (!af->f) return pn_error(PN_ERR_IO, "%s: cannot write there (%s)", path, strerror(errno));
    return PN_OK;
}

pn_status pn_atomic_commit(pn_atomic_file *af) {
    int failed = ferror(af->f) || fflush(af->f) != 0 || (fsync_on && fsync(fileno(af->f)) != 0);
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
    return pn_atomic_sync_dir(af->path);
}

pn_status pn_atomic_sync_dir(const char *path) {
    if (!fsync_on) return PN_OK;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = 0;
    else if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return PN_OK; /* not every file system lets a folder be opened; the rename stands */
    int failed = fsync(fd) != 0 && errno != EINVAL && errno != EROFS;
    int saved = errno;
    close(fd);
    if (failed) return pn_error(PN_ERR_IO, "%s: cannot sync its folder (%s)", path, strerror(saved));
    return PN_OK;
}

pn_status pn_atomic_link(const char *from, const char *path) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    remove(tmp);
    if (link(from, tmp) != 0) return pn_error(PN_ERR_IO, "%s: cannot link to %s (%s)", path, from, strerror(errno));
    if (rename(tmp, path) != 0) {
        int saved = errno;
        remove(tmp);
        return pn_error(PN_ERR_IO, "%s: cannot rename into place (%s)", path, strerror(saved));
    }
    return pn_atomic_sync_dir(path);
}

void pn_atomic_abort(pn_atomic_file *af) {
    if (af->f) fclose(af->f);
    af->f = NULL;
    remove(af->tmp);
}
