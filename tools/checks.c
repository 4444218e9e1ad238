/* checks: outputs checked before the work (writable, no overwrite without --force, never an input), thread caps, ids.
 */
#define _GNU_SOURCE
#include "checks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/model/arch.h"

/* The folder part of `path` ("." when it has none). */
static void parent_of(const char *path, char *dir, size_t cap) {
    snprintf(dir, cap, "%s", path);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') dir[--n] = 0; /* "a/b/" names b */
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, cap, ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
}

/* The absolute form of `path` with its existing part resolved (symbolic links, "..") and the rest appended, so
 * that two spellings of one new file compare equal. */
static void canonical(const char *path, char *out, size_t cap) {
    char resolved[PATH_MAX];
    if (realpath(path, resolved)) {
        snprintf(out, cap, "%s", resolved);
        return;
    }
    char dir[PATH_MAX];
    parent_of(path, dir, sizeof dir);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strcmp(dir, path) != 0 && realpath(dir, resolved))
        snprintf(out, cap, "%s/%s", resolved, base);
    else
        snprintf(out, cap, "%s", path);
}

bool pn_same_place(const char *a, const char *b) {
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char ca[PATH_MAX + 256], cb[PATH_MAX + 256];
    canonical(a, ca, sizeof ca);
    canonical(b, cb, sizeof cb);
    return strcmp(ca, cb) == 0;
}

static pn_status is_an_input(const char *option, const char *path, const pn_named_path *inputs, int n) {
    for (int i = 0; i < n; i++)
        if (inputs[i].path && pn_same_place(path, inputs[i].path))
            return pn_error(PN_ERR_IO, "%s %s is also the input %s %s: refusing to write over it (choose another name)",
                            option, path, inputs[i].option, inputs[i].path);
    return PN_OK;
}

/* Creates and removes a file in `dir`: the only test of writability that also holds for root and read-only mounts. */
static pn_status probe_dir(const char *option, const char *path, const char *dir) {
    char probe[PATH_MAX + 64];
    snprintf(probe, sizeof probe, "%s/.pneumoseg-write-check.%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 && errno == EEXIST) { /* left by a killed run of the same pid: retry once */
        unlink(probe);
        fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
    }
    if (fd < 0) {
        if (strcmp(dir, path) == 0)
            return pn_error(PN_ERR_IO, "%s %s: cannot write in it (%s)", option, path, strerror(errno));
        return pn_error(PN_ERR_IO, "%s %s: cannot write in its folder %s (%s)", option, path, dir, strerror(errno));
    }
    close(fd);
    unlink(probe);
    return PN_OK;
}

pn_status pn_check_out_file(const char *option, const char *path, bool force, const pn_named_path *inputs,
                            int n_inputs) {
    if (!path) return PN_OK;
    if (!*path) return pn_error(PN_ERR_USAGE, "%s: empty path", option);
    PN_TRY(is_an_input(option, path, inputs, n_inputs));
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) return pn_error(PN_ERR_IO, "%s %s is a folder; expected a file name", option, path);
        if (!force) return pn_error(PN_ERR_IO, "%s %s exists (--force to overwrite it)", option, path);
    }
    char dir[PATH_MAX];
    parent_of(path, dir, sizeof dir);
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return pn_error(PN_ERR_IO, "%s %s: its folder %s does not exist", option, path, dir);
    return probe_dir(option, path, dir);
}

static bool dir_is_empty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return true;
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d))) empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

pn_status pn_check_out_dir(const char *option, const char *dir, bool force, const pn_named_path *inputs, int n_inputs) {
    if (!dir) return PN_OK;
    if (!*dir) return pn_error(PN_ERR_USAGE, "%s: empty path", option);
    PN_TRY(is_an_input(option, dir, inputs, n_inputs));
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode)) return pn_error(PN_ERR_IO, "%s %s is a file; expected a folder", option, dir);
        if (!force && !dir_is_empty(dir))
            return pn_error(PN_ERR_IO, "%s %s is not empty (--force to write into it)", option, dir);
        return probe_dir(option, dir, dir);
    }
    /* Absent: the nearest existing folder above it must be writable (the folders are made later). */
    char up[PATH_MAX];
    snprintf(up, sizeof up, "%s", dir);
    do {
        char next[PATH_MAX];
        parent_of(up, next, sizeof next);
        if (strcmp(next, up) == 0) break;
        snprintf(up, sizeof up, "%s", next);
    } while (stat(up, &sb) != 0);
    if (stat(up, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return pn_error(PN_ERR_IO, "%s %s: %s is not a folder", option, dir, up);
    return probe_dir(option, dir, up);
}

pn_status pn_check_distinct_outputs(const pn_named_path *outputs, int n) {
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (outputs[i].path && outputs[j].path && pn_same_place(outputs[i].path, outputs[j].path))
                return pn_error(PN_ERR_USAGE, "%s and %s both name %s; give each its own place", outputs[i].option,
                                outputs[j].option, outputs[i].path);
    return PN_OK;
}

int pn_cores(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int pn_cap_threads(const char *option, int n) {
    int cores = pn_cores();
    if (n <= cores) return n;
    pn_log_info("note: %s %d is more than the %d cores this process may use; using %d", option, n, cores, cores);
    return cores;
}

pn_status pn_check_file_id(const char *id, const char *where) {
    size_t n = strlen(id);
    if (n == 0 || n > 200) return pn_error(PN_ERR_FORMAT, "%s: ImageId '%.60s' must be 1..200 characters", where, id);
    if (!strcmp(id, ".") || !strcmp(id, ".."))
        return pn_error(PN_ERR_FORMAT, "%s: ImageId '%s' is not a file name", where, id);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c == '/' || c == '\\')
            return pn_error(PN_ERR_FORMAT, "%s: ImageId '%.60s' holds a path ('%c')", where, id, c);
        if (c < 0x20 || c == 0x7f)
            return pn_error(PN_ERR_FORMAT, "%s: ImageId '%.60s' holds a control character", where, id);
    }
    if (id[0] == ' ' || id[n - 1] == ' ')
        return pn_error(PN_ERR_FORMAT, "%s: ImageId '%.60s' starts or ends with a blank", where, id);
    return PN_OK;
}

pn_status pn_check_csv_id(const char *id, const char *where) {
    size_t n = strlen(id);
    if (n == 0) return pn_error(PN_ERR_FORMAT, "%s: empty ImageId", where);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c == ',' || c == '"' || c < 0x20 || c == 0x7f)
            return pn_error(PN_ERR_FORMAT, "%s: ImageId '%.80s' holds %s, which a submission row cannot carry", where,
                            id,
                            c == ','   ? "a comma"
                            : c == '"' ? "a quote"
                                       : "a control character");
    }
    if (id[0] == ' ' || id[0] == '\t' || id[n - 1] == ' ' || id[n - 1] == '\t')
        return pn_error(PN_ERR_FORMAT, "%s: ImageId '%.80s' starts or ends with a blank, which a CSV reader trims",
                        where, id);
    return PN_OK;
}

pn_status pn_check_model_flags(const char *encoder, const char *decoder, const char *attention, const char *conv_algo) {
    pn_arch arch;
    if (decoder && !decoder[0]) return pn_error(PN_ERR_USAGE, "--decoder is empty (expected unet or albunet)");
    if ((encoder || decoder || attention) && pn_arch_make(encoder ? encoder : "resnet34", decoder, attention, &arch)) {
        char why[512];
        snprintf(why, sizeof why, "%s", pn_last_error());
        return pn_error(PN_ERR_USAGE, "%s", why);
    }
    if (conv_algo && strcmp(conv_algo, "direct") && strcmp(conv_algo, "winograd") && strcmp(conv_algo, "auto"))
        return pn_error(PN_ERR_USAGE, "--conv-algo must be direct, winograd or auto, got '%s'", conv_algo);
    return PN_OK;
}

pn_status pn_check_precision(const char *precision) {
    if (precision && strcmp(precision, "fp32") && strcmp(precision, "bf16") && strcmp(precision, "fp16"))
        return pn_error(PN_ERR_USAGE, "--precision must be fp32, bf16 or fp16, got '%s'", precision);
    return PN_OK;
}
