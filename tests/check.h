/* check: a minimal test harness: CHECK macros, SKIP lines, and the closing "N passed, N failed" line. */
#ifndef PN_TESTS_CHECK_H
#define PN_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed, check_skipped;

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (cond) {                                                                                                    \
            check_passed++;                                                                                            \
        } else {                                                                                                       \
            check_failed++;                                                                                            \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                            \
        }                                                                                                              \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                                           \
    do {                                                                                                               \
        if (cond) {                                                                                                    \
            check_passed++;                                                                                            \
        } else {                                                                                                       \
            check_failed++;                                                                                            \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                            \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
        }                                                                                                              \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                                          \
    CHECK_MSG(fabs((double)(a) - (double)(b)) <= (tol), "%.9g vs %.9g (tol %g)", (double)(a), (double)(b),             \
              (double)(tol))

#define SKIP(...)                                                                                                      \
    do {                                                                                                               \
        check_skipped++;                                                                                               \
        printf("SKIP ");                                                                                               \
        printf(__VA_ARGS__);                                                                                           \
        printf("\n");                                                                                                  \
    } while (0)

/* What CTest reads as "skipped" (SKIP_RETURN_CODE in tests/CMakeLists.txt). */
#define CHECK_EXIT_SKIPPED 77

/* Prints the closing line and returns the process exit code: 1 if a check failed or none ran at all, the skip code
 * if every case skipped (so a test cannot pass by skipping), else 0. */
static inline int check_report(const char *name) {
    printf("%s: %d passed, %d failed, %d skipped\n", name, check_passed, check_failed, check_skipped);
    if (check_failed) return 1;
    if (check_passed == 0 && check_skipped == 0) {
        printf("%s: no check ran\n", name);
        return 1;
    }
    return check_passed == 0 ? CHECK_EXIT_SKIPPED : 0;
}

#endif
