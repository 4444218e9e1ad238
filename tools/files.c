/* files: whether a file exists, making folders. */
#define _DEFAULT_SOURCE
#include "files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool pn_file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

pn_status pn_mkdirs(const char *path) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) return pn_error(PN_ERR_ARG, "path too long: %s", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return pn_error(PN_ERR_IO, "%s: cannot create: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return pn_error(PN_ERR_IO, "%s: cannot create: %s", buf, strerror(errno));
    return PN_OK;
}
