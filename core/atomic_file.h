/* atomic_file: write to "<path>.tmp.<pid>", then rename over <path>, so no reader sees half a file. */
#ifndef PN_ATOMIC_FILE_H
#define PN_ATOMIC_FILE_H

#include <stdio.h>

#include "base.h"

typedef struct pn_atomic_file {
    FILE *f;
    char path[4096];
    char tmp[4200];
} pn_atomic_file;

/* Opens the temporary file for writing. */
pn_status pn_atomic_open(pn_atomic_file *af, const char *path);
/* Flushes, fsyncs and renames into place; on any write error removes the temporary and fails. */
pn_status pn_atomic_commit(pn_atomic_file *af);
/* Gives up: closes and removes the temporary. */
void pn_atomic_abort(pn_atomic_file *af);

#endif
