/* rle: decode and encode the SIIM run-length format (docs/REFERENCE.md, "Run-length masks"). */
#include "rle.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pn_status pn_rle_format_parse(const char *s, pn_rle_format *fmt) {
    if (strcmp(s, "auto") == 0)
        *fmt = PN_RLE_AUTO;
    else if (strcmp(s, "relative") == 0)
        *fmt = PN_RLE_RELATIVE;
    else if (strcmp(s, "absolute") == 0)
        *fmt = PN_RLE_ABSOLUTE;
    else
        return pn_error(PN_ERR_ARG, "RLE format '%s' is not one of auto, relative, absolute", s);
    return PN_OK;
}

/* Reads the whitespace-separated non-negative integers of `text` into a malloc'ed array. */
static pn_status parse_numbers(const char *text, const char *what, int64_t **nums, size_t *count) {
    size_t cap = 0, n = 0;
    int64_t *a = NULL;
    const char *p = text;
    for (;;) {
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p) break;
        if (!isdigit((unsigned char)*p)) {
            free(a);
            return pn_error(PN_ERR_FORMAT, "%s: RLE has '%.12s' where a non-negative integer was expected", what, p);
        }
        errno = 0;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (errno || v > ((int64_t)1 << 40) || (*end && !isspace((unsigned char)*end))) {
            free(a);
            return pn_error(PN_ERR_FORMAT, "%s: RLE has '%.12s' where a non-negative integer was expected", what, p);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            int64_t *b = realloc(a, cap * sizeof *a);
            if (!b) {
                free(a);
                return pn_error(PN_ERR_NOMEM, "%s: out of memory reading the RLE", what);
            }
            a = b;
        }
        a[n++] = v;
        p = end;
    }
    *nums = a;
    *count = n;
    return PN_OK;
}

/* True when the pairs read with `fmt` (not AUTO) stay inside [0, total); sets the failing pair index. */
static bool runs_fit(const int64_t *a, size_t pairs, int64_t total, pn_rle_format fmt, size_t *bad) {
    int64_t pos = 0;
    for (size_t i = 0; i < pairs; i++) {
        int64_t start = fmt == PN_RLE_RELATIVE ? pos + a[2 * i] : a[2 * i];
        int64_t end = start + a[2 * i + 1];
        if (end > total || (fmt == PN_RLE_ABSOLUTE && i > 0 && start < pos)) {
            *bad = i;
            return false;
        }
        pos = end;
    }
    return true;
}

bool pn_rle_is_empty(const char *text) {
    const char *p = text;
    while (*p && isspace((unsigned char)*p)) p++;
    if (!*p) return true;
    if (p[0] == '-' && p[1] == '1') {
        p += 2;
        while (*p && isspace((unsigned char)*p)) p++;
        return *p == 0;
    }
    return false;
}

pn_status pn_rle_decode(const char *text, int width, int height, pn_rle_format fmt, uint8_t *mask, const char *what) {
    if (width <= 0 || height <= 0) return pn_error(PN_ERR_ARG, "%s: bad mask size %dx%d", what, width, height);
    if (pn_rle_is_empty(text)) return PN_OK;
    int64_t *a = NULL;
    size_t n = 0;
    PN_TRY(parse_numbers(text, what, &a, &n));
    if (n % 2) {
        free(a);
        return pn_error(PN_ERR_FORMAT, "%s: RLE has %zu numbers; expected start/length pairs", what, n);
    }
    int64_t total = (int64_t)width * height;
    size_t pairs = n / 2, bad = 0;
    if (fmt == PN_RLE_AUTO) {
        size_t bad_abs = 0;
        if (runs_fit(a, pairs, total, PN_RLE_RELATIVE, &bad))
            fmt = PN_RLE_RELATIVE;
        else if (runs_fit(a, pairs, total, PN_RLE_ABSOLUTE, &bad_abs))
            fmt = PN_RLE_ABSOLUTE;
        else
            fmt = PN_RLE_RELATIVE;
    }
    if (!runs_fit(a, pairs, total, fmt, &bad)) {
        pn_error(PN_ERR_FORMAT,
                 "%s: RLE run %zu (start %lld, length %lld) goes past the %dx%d image or overlaps (%s starts)", what,
                 bad + 1, (long long)a[2 * bad], (long long)a[2 * bad + 1], width, height,
                 fmt == PN_RLE_RELATIVE ? "relative" : "absolute");
        free(a);
        return PN_ERR_FORMAT;
    }
    int64_t pos = 0;
    for (size_t i = 0; i < pairs; i++) {
        int64_t start = fmt == PN_RLE_RELATIVE ? pos + a[2 * i] : a[2 * i];
        int64_t end = start + a[2 * i + 1];
        for (int64_t k = start; k < end; k++) {
            int64_t x = k / height, y = k % height;
            mask[y * width + x] = 255;
        }
        pos = end;
    }
    free(a);
    return PN_OK;
}

/* Appends " %lld" (without the space when first) to a growing buffer. */
static bool append_num(char **buf, size_t *len, size_t *cap, long long v) {
    if (*len + 24 > *cap) {
        size_t ncap = *cap * 2 + 64;
        char *b = realloc(*buf, ncap);
        if (!b) return false;
        *buf = b;
        *cap = ncap;
    }
    *len += (size_t)snprintf(*buf + *len, *cap - *len, *len ? " %lld" : "%lld", v);
    return true;
}

pn_status pn_rle_encode(const uint8_t *mask, int width, int height, char **out) {
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int64_t total = (int64_t)width * height, last_end = 0, run_start = -1;
    for (int64_t k = 0; k <= total; k++) {
        bool on = k < total && mask[(k % height) * width + k / height] != 0;
        if (on && run_start < 0) run_start = k;
        if (!on && run_start >= 0) {
            if (!append_num(&buf, &len, &cap, run_start - last_end) || !append_num(&buf, &len, &cap, k - run_start)) {
                free(buf);
                return pn_error(PN_ERR_NOMEM, "out of memory encoding an RLE mask");
            }
            last_end = k;
            run_start = -1;
        }
    }
    if (!buf) {
        buf = malloc(3);
        if (!buf) return pn_error(PN_ERR_NOMEM, "out of memory encoding an RLE mask");
        memcpy(buf, "-1", 3);
    }
    *out = buf;
    return PN_OK;
}
