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
/* Flushes, fsyncs and renames into place, then fsyncs the folder (so the rename survives a crash); on any
 * write error removes the temporary and fails. */
pn_status pn_atomic_commit(pn_atomic_file *af);
/* Gives up: closes and removes the temporary. */
void pn_atomic_abort(pn_atomic_file *af);
/* fsyncs the folder that holds `path` (after a rename or link in it). */
pn_status pn_atomic_sync_dir(const char *path);
/* Makes `path` a hard link to the complete file `from` (same contents, no copy): links a temporary name,
 * renames it over `path` and syncs the folder. Fails where hard links are not supported. */
pn_status pn_atomic_link(const char *from, const char *path);

#endif
