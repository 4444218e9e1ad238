/* bg_sync: makes the files written into a folder durable (syncfs) on a background thread, one sync at a time. */
#ifndef PN_BG_SYNC_H
#define PN_BG_SYNC_H

#include <pthread.h>
#include <stdbool.h>

#include "core/base.h"

typedef struct pn_bg_sync {
    char dir[4096];
    int fd;
    pthread_t tid;
    bool running;
    int err; /* errno of the last failed sync, 0 if none */
} pn_bg_sync;

/* Opens `dir` (the folder whose file system is synced). */
pn_status pn_bg_sync_open(pn_bg_sync *s, const char *dir);
/* Waits for the previous sync (failing if it failed), then starts syncing what was written so far. */
pn_status pn_bg_sync_start(pn_bg_sync *s);
/* Waits for the running sync, then syncs once more on this thread: everything written before is durable. */
pn_status pn_bg_sync_finish(pn_bg_sync *s);
/* Waits for a running sync and closes the folder (no error reported: the error path's cleanup). */
void pn_bg_sync_close(pn_bg_sync *s);

#endif
