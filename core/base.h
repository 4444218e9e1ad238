/* base: status codes, errors, logging, progress bars, aligned memory, timing and peak RSS. */
#ifndef PN_BASE_H
#define PN_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Everything a user can cause returns one of these; the message is in pn_last_error(). */
typedef enum pn_status {
    PN_OK = 0,
    PN_ERR_ARG,         /* a bad argument or option */
    PN_ERR_IO,          /* a file could not be opened, read or written */
    PN_ERR_FORMAT,      /* a file is malformed */
    PN_ERR_UNSUPPORTED, /* valid input we do not handle (e.g. a transfer syntax) */
    PN_ERR_NOMEM,       /* out of memory */
    PN_ERR_BACKEND,     /* a backend is missing or failed */
    PN_ERR_NUMERIC,     /* NaN or Inf where a finite value was needed */
    PN_ERR_USAGE,       /* a command line that cannot work: a bad option value or combination (exit 2) */
} pn_status;

/* Sets the thread-local error message (printf format) and returns `st`. */
pn_status pn_error(pn_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last message set by pn_error on this thread ("" if none). */
const char *pn_last_error(void);
/* A short name for a status ("I/O error", ...). */
const char *pn_status_name(pn_status st);

#ifdef __cplusplus
#define PN_NORETURN [[noreturn]]
#else
#define PN_NORETURN __attribute__((noreturn)) /* C11's _Noreturn, spelled so static analysis (cppcheck) sees it */
#endif

/* Programming errors: stays on in release builds, aborts with file:line:expr. */
#define PN_ASSERT(cond)                                                                                                \
    do {                                                                                                               \
        if (!(cond)) pn_assert_fail(__FILE__, __LINE__, #cond);                                                        \
    } while (0)
PN_NORETURN void pn_assert_fail(const char *file, int line, const char *expr);

/* Propagate a non-OK status to the caller. */
#define PN_TRY(expr)                                                                                                   \
    do {                                                                                                               \
        pn_status pn_try_st_ = (expr);                                                                                 \
        if (pn_try_st_ != PN_OK) return pn_try_st_;                                                                    \
    } while (0)

/* Logging to stderr. Level 0 = quiet, 1 = info (default), 2 = debug. */
void pn_log_set_level(int level);
int pn_log_level(void);
void pn_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pn_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pn_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Memory: 64-byte aligned, zeroed; NULL on failure (sets the error). Free with pn_free. */
void *pn_alloc(size_t bytes);
void pn_free(void *p);
/* A malloc'ed copy of `s` (free with free); NULL when out of memory. The project's one strdup (C11 has none). */
char *pn_strdup(const char *s);
/* Overflow-checked a*b; returns false if it overflows. */
bool pn_mul_size(size_t a, size_t b, size_t *out);

/* Wall clock in seconds (monotonic). */
double pn_now(void);
/* Peak resident set size of this process in bytes: its own high-water mark (VmHWM), 0 if unknown. */
size_t pn_peak_rss_bytes(void);

/* A progress bar on a terminal (done/total, rate, ETA, a free text), plain log lines otherwise. */
typedef struct pn_progress {
    const char *label;
    int64_t total, done;
    double t0, last_print;
    bool tty;
    char extra[96];
} pn_progress;
void pn_progress_begin(pn_progress *p, const char *label, int64_t total);
/* Advance by `n`; `extra` (may be NULL) is shown after the rate, e.g. "loss 0.41". */
void pn_progress_step(pn_progress *p, int64_t n, const char *extra);
void pn_progress_end(pn_progress *p);

#ifdef __cplusplus
}
#endif

#endif
