/* bg_sync: makes the files written into a folder durable (syncfs) on a background thread, one sync at a time. */
#define _GNU_SOURCE
#include "bg_sync.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

pn_status pn_bg_sync_open(pn_bg_sync *s, const char *dir) {
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (s->fd < 0) return pn_error(PN_ERR_IO, "%s: cannot open the folder (%s)", dir, strerror(errno));
    return PN_OK;
}

static void *sync_thread(void *arg) {
    pn_bg_sync *s = arg;
    if (syncfs(s->fd) != 0) s->err = errno;
    return NULL;
}

static pn_status wait_running(pn_bg_sync *s) {
    if (s->running) pthread_join(s->tid, NULL);
    s->running = false;
    if (s->err) return pn_error(PN_ERR_IO, "%s: cannot make the files durable (syncfs: %s)", s->dir, strerror(s->err));
    return PN_OK;
}

pn_status pn_bg_sync_start(pn_bg_sync *s) {
    PN_TRY(wait_running(s));
    if (pthread_create(&s->tid, NULL, sync_thread, s) == 0)
        s->running = true;
    else
        sync_thread(s); /* no thread: sync here */
    return s->err ? wait_running(s) : PN_OK;
}

pn_status pn_bg_sync_finish(pn_bg_sync *s) {
    PN_TRY(wait_running(s));
    sync_thread(s);
    return wait_running(s);
}

void pn_bg_sync_close(pn_bg_sync *s) {
    if (s->running) pthread_join(s->tid, NULL);
    s->running = false;
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
}
