/* test_rle: data/rle against the reference mask_functions.py (tests/ref/rle_golden.txt), round trips, errors. */
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "data/rle.h"
#include "tests/check.h"

typedef struct {
    long long count, s1, s2;
} sums;

/* count, sum of column-major indices, sum of index^2 mod 1000003, as the golden script computes. */
static sums mask_sums(const uint8_t *m, int w, int h) {
    sums s = {0, 0, 0};
    for (int x = 0; x < w; x++)
        for (int y = 0; y < h; y++)
            if (m[y * w + x]) {
                long long i = (long long)x * h + y;
                s.count++;
                s.s1 += i;
                s.s2 += i * i % 1000003;
            }
    return s;
}

static bool sums_eq(sums a, long long c, long long s1, long long s2) {
    return a.count == c && a.s1 == s1 && a.s2 == s2;
}

/* Splits s in place at each '|' into up to n parts, trimming spaces and the newline. */
static int split_bars(char *s, char **parts, int n) {
    int k = 0;
    char *p = s;
    while (k < n) {
        char *bar = strchr(p, '|');
        if (bar) *bar = 0;
        while (*p == ' ') p++;
        size_t l = strlen(p);
        while (l && (p[l - 1] == '\n' || p[l - 1] == ' ')) p[--l] = 0;
        parts[k++] = p;
        if (!bar) break;
        p = bar + 1;
    }
    return k;
}

static void check_golden(void) {
    FILE *f = fopen("ref/rle_golden.txt", "r");
    CHECK_MSG(f != NULL, "tests/ref/rle_golden.txt missing");
    if (!f) return;
    static char line[1 << 20];
    int cases = 0, tails = 0, unions = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        char *parts[4];
        if (line[0] == 'U') {
            int w, h, n;
            sscanf(line, "U %d %d %n", &w, &h, &n);
            if (split_bars(line + n, parts, 3) != 3) {
                CHECK_MSG(false, "bad union line");
                continue;
            }
            long long c, s1, s2;
            sscanf(parts[2], "%lld %lld %lld", &c, &s1, &s2);
            uint8_t *m = calloc((size_t)w * h, 1);
            CHECK(pn_rle_decode(parts[0], w, h, PN_RLE_RELATIVE, m, "a") == PN_OK);
            CHECK(pn_rle_decode(parts[1], w, h, PN_RLE_RELATIVE, m, "b") == PN_OK);
            CHECK_MSG(sums_eq(mask_sums(m, w, h), c, s1, s2), "union of two rows differs from the reference");
            free(m);
            unions++;
            continue;
        }
        int w, h, tail, n;
        long long c, s1, s2, dc, ds1, ds2;
        if (sscanf(line, "%d %d %d %lld %lld %lld%n", &w, &h, &tail, &c, &s1, &s2, &n) != 6) continue;
        if (split_bars(line + n, parts, 4) != 4) {
            CHECK_MSG(false, "bad golden line");
            continue;
        }
        const char *ref = parts[1], *fixed = parts[2];
        sscanf(parts[3], "%lld %lld %lld", &dc, &ds1, &ds2);
        uint8_t *m = calloc((size_t)w * h, 1);
        /* Decoding the reference's own string gives the reference rle2mask result. */
        CHECK(pn_rle_decode(ref, w, h, PN_RLE_RELATIVE, m, "ref") == PN_OK);
        CHECK_MSG(sums_eq(mask_sums(m, w, h), dc, ds1, ds2), "case %d (%dx%d): decode differs from rle2mask", cases, w,
                  h);
        /* The fixed string decodes to the full mask, and our encoder writes exactly it. */
        memset(m, 0, (size_t)w * h);
        CHECK(pn_rle_decode(fixed, w, h, PN_RLE_RELATIVE, m, "fixed") == PN_OK);
        CHECK_MSG(sums_eq(mask_sums(m, w, h), c, s1, s2), "case %d (%dx%d): decode of the fixed RLE is not the mask",
                  cases, w, h);
        char *enc = NULL;
        CHECK(pn_rle_encode(m, w, h, &enc) == PN_OK);
        CHECK_MSG(enc && strcmp(enc, fixed) == 0, "case %d (%dx%d): encode '%.60s' vs '%.60s'", cases, w, h,
                  enc ? enc : "(none)", fixed);
        /* Without a run at the last pixel the reference and we agree exactly (empty: "" vs "-1"). */
        if (tail == 0 && c > 0) CHECK_MSG(enc && strcmp(enc, ref) == 0, "case %d: encode differs from mask2rle", cases);
        if (tail > 0) tails++;
        free(enc);
        free(m);
        cases++;
    }
    fclose(f);
    CHECK(cases >= 200 && tails > 10 && unions >= 1);
    printf("rle golden: %d masks (%d with a run at the last pixel), %d unions\n", cases, tails, unions);
}

static void check_round_trip(void) {
    pn_rng r = pn_rng_make(7, PN_RNG_TEST, 1, 0);
    for (int t = 0; t < 300; t++) {
        int w = 1 + (int)pn_rng_below(&r, 80), h = 1 + (int)pn_rng_below(&r, 80);
        float p = pn_rng_uniform(&r);
        uint8_t *m = malloc((size_t)w * h), *back = calloc((size_t)w * h, 1);
        for (int i = 0; i < w * h; i++) m[i] = pn_rng_uniform(&r) < p ? 255 : 0;
        char *enc = NULL;
        CHECK(pn_rle_encode(m, w, h, &enc) == PN_OK);
        CHECK(pn_rle_decode(enc, w, h, PN_RLE_AUTO, back, "rt") == PN_OK);
        CHECK_MSG(memcmp(m, back, (size_t)w * h) == 0, "round trip %dx%d p=%.2f", w, h, p);
        free(enc), free(m), free(back);
    }
}

static void check_formats_and_errors(void) {
    uint8_t m[12], e[12];
    /* 4x3 image (w=4, h=3): column-major index = x*3 + y. Runs at 1..2 and 6..8. */
    memset(m, 0, sizeof m);
    CHECK(pn_rle_decode("1 2 3 3", 4, 3, PN_RLE_RELATIVE, m, "rel") == PN_OK);
    memset(e, 0, sizeof e);
    int on[] = {1, 2, 6, 7, 8};
    for (int i = 0; i < 5; i++) e[(on[i] % 3) * 4 + on[i] / 3] = 255;
    CHECK(memcmp(m, e, sizeof m) == 0);
    /* The same mask in absolute form reads explicitly; auto keeps relative while it fits. */
    memset(m, 0, sizeof m);
    CHECK(pn_rle_decode("1 2 6 3", 4, 3, PN_RLE_ABSOLUTE, m, "abs") == PN_OK);
    CHECK(memcmp(m, e, sizeof m) == 0);
    memset(m, 0, sizeof m);
    CHECK(pn_rle_decode(" 1 2 3 3 ", 4, 3, PN_RLE_AUTO, m, "auto") == PN_OK);
    CHECK(memcmp(m, e, sizeof m) == 0);
    /* Runs at 1..2 and 7..9: relative would end at 13 > 12, so auto reads it as absolute. */
    memset(m, 0, sizeof m);
    memset(e, 0, sizeof e);
    int on2[] = {1, 2, 7, 8, 9};
    for (int i = 0; i < 5; i++) e[(on2[i] % 3) * 4 + on2[i] / 3] = 255;
    CHECK(pn_rle_decode("1 2 7 3", 4, 3, PN_RLE_AUTO, m, "auto") == PN_OK);
    CHECK(memcmp(m, e, sizeof m) == 0);
    /* Empty forms leave the mask alone. */
    memset(m, 0, sizeof m);
    CHECK(pn_rle_decode(" -1", 4, 3, PN_RLE_AUTO, m, "e") == PN_OK &&
          pn_rle_decode("", 4, 3, PN_RLE_AUTO, m, "e") == PN_OK);
    for (int i = 0; i < 12; i++) CHECK(m[i] == 0);
    char *s = NULL;
    CHECK(pn_rle_encode(m, 4, 3, &s) == PN_OK && strcmp(s, "-1") == 0);
    free(s);
    /* A full mask writes its one run, last pixel included. */
    memset(m, 255, sizeof m);
    CHECK(pn_rle_encode(m, 4, 3, &s) == PN_OK && strcmp(s, "0 12") == 0);
    free(s);
    /* Errors name the row. */
    CHECK(pn_rle_decode("0 13", 4, 3, PN_RLE_RELATIVE, m, "train-rle.csv line 9") == PN_ERR_FORMAT);
    CHECK(strstr(pn_last_error(), "train-rle.csv line 9") != NULL);
    CHECK(pn_rle_decode("5 5 5 5", 4, 3, PN_RLE_AUTO, m, "row") == PN_ERR_FORMAT);
    CHECK(pn_rle_decode("1 2 3", 4, 3, PN_RLE_AUTO, m, "row") == PN_ERR_FORMAT);
    CHECK(pn_rle_decode("1 x", 4, 3, PN_RLE_AUTO, m, "row") == PN_ERR_FORMAT);
    CHECK(pn_rle_decode("1 -2", 4, 3, PN_RLE_AUTO, m, "row") == PN_ERR_FORMAT);
    CHECK(pn_rle_decode("6 3 1 2", 4, 3, PN_RLE_ABSOLUTE, m, "row") == PN_ERR_FORMAT); /* starts must increase */
    CHECK(pn_rle_decode("99999999999999999999 1", 4, 3, PN_RLE_AUTO, m, "row") == PN_ERR_FORMAT);
    pn_rle_format fmt;
    CHECK(pn_rle_format_parse("absolute", &fmt) == PN_OK && fmt == PN_RLE_ABSOLUTE);
    CHECK(pn_rle_format_parse("rel", &fmt) == PN_ERR_ARG);
}

int main(void) {
    check_golden();
    check_round_trip();
    check_formats_and_errors();
    return check_report("test_rle");
}
