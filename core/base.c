/* base: status codes, errors, logging, progress bars, aligned memory, timing and peak RSS. */
#define _POSIX_C_SOURCE 200809L
#include "base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char last_error[1024];
static int log_level = 1;

pn_status pn_error(pn_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

const char *pn_last_error(void) { return last_error; }

const char *pn_status_name(pn_status st) {
    switch (st) {
    case PN_OK: return "ok";
    case PN_ERR_ARG: return "bad argument";
    case PN_ERR_IO: return "I/O error";
    case PN_ERR_FORMAT: return "malformed input";
    case PN_ERR_UNSUPPORTED: return "unsupported";
    case PN_ERR_NOMEM: return "out of memory";
    case PN_ERR_BACKEND: return "backend error";
    case PN_ERR_NUMERIC: return "non-finite value";
    case PN_ERR_USAGE: return "usage error";
    }
    return "unknown error";
}

void pn_assert_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "pneumoseg: internal error at %s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}

void pn_log_set_level(int level) { log_level = level; }
int pn_log_level(void) { return log_level; }

static void log_at(int level, const char *prefix, const char *fmt, va_list ap) {
    if (log_level < level) return;
    fputs(prefix, stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void pn_log_info(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_at(1, "", fmt, ap);
    va_end(ap);
}

void pn_log_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_at(0, "warning: ", fmt, ap);
    va_end(ap);
}

void pn_log_debug(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_at(2, "debug: ", fmt, ap);
    va_end(ap);
}

void *pn_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes) {
        pn_error(PN_ERR_NOMEM, "allocation of %zu bytes overflows", bytes);
        return NULL;
    }
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        pn_error(PN_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void pn_free(void *p) { free(p); }

bool pn_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b;
    return true;
}

double pn_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The process's own high-water mark (VmHWM in /proc/self/status). getrusage's ru_maxrss is no substitute on Linux:
 * it survives fork and exec, so a program started from a large parent reports the parent's peak. */
size_t pn_peak_rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0 && sscanf(line + 6, "%lld", &kib) == 1) break;
    if (f) fclose(f);
    if (kib >= 0) return (size_t)kib * 1024;
    struct rusage ru; /* no /proc: the best there is */
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (size_t)ru.ru_maxrss * 1024; /* Linux reports KiB */
}

static void format_eta(double seconds, char *buf, size_t n) {
    if (seconds < 0 || seconds > 1e7) {
        snprintf(buf, n, "--:--");
        return;
    }
    int s = (int)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, n, "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
    else
        snprintf(buf, n, "%02d:%02d", s / 60, s % 60);
}

static void progress_print(pn_progress *p, bool final) {
    double now = pn_now();
    double elapsed = now - p->t0;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0.0;
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : -1.0;
    char eta_s[32], el_s[32];
    format_eta(eta, eta_s, sizeof eta_s);
    format_eta(elapsed, el_s, sizeof el_s);
    if (p->tty) {
        int width = 24;
        int filled = p->total > 0 ? (int)((double)width * (double)p->done / (double)p->total) : 0;
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r%s [%s] %lld/%lld %.1f/s %s<%s %s\033[K", p->label, bar, (long long)p->done,
                (long long)p->total, rate, el_s, final ? "00:00" : eta_s, p->extra);
        if (final) fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s: %lld/%lld %.1f/s elapsed %s eta %s %s\n", p->label, (long long)p->done,
                (long long)p->total, rate, el_s, final ? "00:00" : eta_s, p->extra);
    }
    fflush(stderr);
    p->last_print = now;
}

void pn_progress_begin(pn_progress *p, const char *label, int64_t total) {
    memset(p, 0, sizeof *p);
    p->label = label;
    p->total = total;
    p->t0 = pn_now();
    p->last_print = p->t0;
    p->tty = isatty(2) && log_level >= 1;
}

void pn_progress_step(pn_progress *p, int64_t n, const char *extra) {
    p->done += n;
    if (extra) snprintf(p->extra, sizeof p->extra, "%s", extra);
    if (log_level < 1) return;
    double now = pn_now();
    double interval = p->tty ? 0.1 : 10.0;
    if (now - p->last_print >= interval) progress_print(p, false);
}

void pn_progress_end(pn_progress *p) {
    if (log_level < 1) return;
    progress_print(p, true);
}

char *pn_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}
