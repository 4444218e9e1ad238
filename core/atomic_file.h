/* atomic_file: write to "<path>.tmp.<pid>", then rename over <path>, so no reader sees half a file. */
#ifndef PN_ATOMIC_FILE_H
#define PN_ATOMIC_FILE_H

#include <stdbool.h>
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
 * write error removes the temporary and fails. Without fsync (pn_atomic_set_fsync) it only flushes and renames. */
pn_status pn_atomic_commit(pn_atomic_file *af);
/* Whether commits and links fsync (default true). The trainer turns it off while it writes checkpoints and makes
 * them durable itself off its training thread (tools/bg_sync.h); the rename stays atomic for readers and for a
 * killed process either way. Process-wide. */
void pn_atomic_set_fsync(bool on);
/* Gives up: closes and removes the temporary. */
void pn_atomic_abort(pn_atomic_file *af);
/* fsyncs the folder that holds `path` (after a rename or link in it); nothing while fsync is off. */
pn_status pn_atomic_sync_dir(const char *path);
/* Makes `path` a hard link to the complete file `from` (same contents, no copy): links a temporary name,
 * renames it over `path` and syncs the folder. Fails where hard links are not supported. */
pn_status pn_atomic_link(const char *from, const char *path);

#endif
