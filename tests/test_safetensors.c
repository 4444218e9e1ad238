/* test_safetensors: writer/reader round trip, a file from the Python package, malformed files, bit flips. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/rng.h"
#include "core/safetensors.h"
#include "tests/check.h"

static char g_dir[2048] = "."; /* where temporary files go (argv[1]: the build directory) */

/* ---- helpers --------------------------------------------------------------------------------- */

static uint32_t f2u(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float u2f(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* Writes `n` bytes to a fresh temporary file; its name goes to `path`. */
static int write_temp(const void *bytes, size_t n, char *path, size_t cap) {
    snprintf(path, cap, "%s/st_case_XXXXXX", g_dir);
    int fd = mkstemp(path);
    if (fd < 0) return 0;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        return 0;
    }
    int ok = fwrite(bytes, 1, n, f) == n;
    return (fclose(f) == 0) && ok;
}

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    *n = b && fread(b, 1, (size_t)len, f) == (size_t)len ? (size_t)len : 0;
    fclose(f);
    return b;
}

/* A file: little-endian header length, the header text, then `data_len` bytes (0x11, 0x22, ...). */
static uint8_t *make_file(const char *header, uint64_t header_len, size_t data_len, size_t *n) {
    size_t h = strlen(header);
    *n = 8 + h + data_len;
    uint8_t *b = malloc(*n);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(header_len >> (8 * i));
    memcpy(b + 8, header, h);
    for (size_t i = 0; i < data_len; i++) b[8 + h + i] = (uint8_t)(0x11 * (i + 1));
    return b;
}

/* Opens `bytes` as a file; returns the status and keeps the message in `msg`. */
static pn_status open_bytes(const void *bytes, size_t n, pn_st_file **out, char *path, size_t cap) {
    *out = NULL;
    if (!write_temp(bytes, n, path, cap)) {
        fprintf(stderr, "cannot write a temporary file in %s\n", g_dir);
        return PN_ERR_IO;
    }
    return pn_st_open(path, out);
}

/* The file must fail with PN_ERR_FORMAT and a one-line message that names the file. */
static void expect_bad_bytes(const char *label, const void *bytes, size_t n) {
    char path[4096];
    pn_st_file *f = (pn_st_file *)1;
    pn_status st = open_bytes(bytes, n, &f, path, sizeof path);
    const char *msg = pn_last_error();
    CHECK_MSG(st == PN_ERR_FORMAT, "%s: status %d (%s)", label, (int)st, msg);
    CHECK_MSG(f == NULL, "%s: output not NULL", label);
    CHECK_MSG(msg[0] && strstr(msg, path) && !strchr(msg, '\n'), "%s: message \"%s\"", label, msg);
    if (st == PN_OK) pn_st_close(f);
    remove(path);
}

static void expect_bad(const char *label, const char *header, size_t data_len) {
    size_t n;
    uint8_t *b = make_file(header, strlen(header), data_len, &n);
    expect_bad_bytes(label, b, n);
    free(b);
}

/* The message for `header` must name `needle` (e.g. the tensor). */
static void expect_bad_naming(const char *label, const char *header, size_t data_len, const char *needle) {
    expect_bad(label, header, data_len);
    CHECK_MSG(strstr(pn_last_error(), needle) != NULL, "%s: \"%s\" does not name %s", label, pn_last_error(), needle);
}

/* ---- (1) round trip ----------------------------------------------------------------------------- */

static void test_round_trip(void) {
    float w[6] = {
        1.5f,       -0.0f, u2f(0x00000001u) /* smallest subnormal */, INFINITY, u2f(0x7fc01234u) /* nan payload */,
        3.14159274f};
    int64_t ids[3] = {INT64_MIN, -1, INT64_MAX}, scalar = 42;
    int64_t sw[2] = {2, 3}, si[1] = {3}, sz[2] = {0, 5};
    const char *odd = "odd \"name\"\\ with\nnewline \xc3\xa9\xe2\x9c\x93";
    pn_st_writer *wr = pn_st_writer_new();
    CHECK(pn_st_writer_add(wr, "dec.w", PN_ST_F32, 2, sw, w) == PN_OK);
    CHECK(pn_st_writer_add(wr, "ids", PN_ST_I64, 1, si, ids) == PN_OK);
    CHECK(pn_st_writer_add(wr, "scalar", PN_ST_I64, 0, NULL, &scalar) == PN_OK);
    CHECK(pn_st_writer_add(wr, odd, PN_ST_F32, 2, sz, NULL) == PN_OK);
    CHECK(pn_st_writer_meta(wr, "epoch", "7") == PN_OK);
    CHECK(pn_st_writer_meta(wr, "quote\"\t", "va\\lue\x01") == PN_OK);
    CHECK(pn_st_writer_meta(wr, "epoch", "8") == PN_OK); /* replaces */
    /* bad arguments */
    CHECK(pn_st_writer_add(wr, "ids", PN_ST_I64, 1, si, ids) == PN_ERR_ARG);
    CHECK(pn_st_writer_add(wr, "x", PN_ST_F16, 1, si, ids) == PN_ERR_ARG);
    CHECK(pn_st_writer_add(wr, "__metadata__", PN_ST_F32, 1, si, w) == PN_ERR_ARG);
    CHECK(pn_st_writer_add(wr, "bad\xff", PN_ST_F32, 1, si, w) == PN_ERR_ARG);
    CHECK(pn_st_writer_add(wr, "neg", PN_ST_F32, 1, (int64_t[]){-1}, w) == PN_ERR_ARG);
    CHECK(pn_st_writer_add(wr, "nine", PN_ST_F32, 9, (int64_t[9]){1, 1, 1, 1, 1, 1, 1, 1, 1}, w) == PN_ERR_ARG);

    char path[4096];
    snprintf(path, sizeof path, "%s/st_roundtrip.safetensors", g_dir);
    CHECK(pn_st_writer_save(wr, path) == PN_OK);
    pn_st_writer_free(wr);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmp, F_OK) != 0); /* the temporary was renamed away */

    size_t n;
    uint8_t *bytes = read_all(path, &n);
    CHECK(bytes && n >= 8);
    if (!bytes || n < 8) {
        free(bytes);
        return;
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | bytes[i];
    CHECK(hl % 8 == 0);
    CHECK(n == 8 + hl + 6 * 4 + 3 * 8 + 8);
    CHECK(bytes[8] == '{' && bytes[8 + hl - 1] != '\n');
    /* data in the order added, little-endian */
    CHECK(memcmp(bytes + 8 + hl, (uint8_t[]){0, 0, 0xc0, 0x3f}, 4) == 0); /* 1.5f */
    CHECK(bytes[8 + hl + 24 + 7] == 0x80 && bytes[8 + hl + 24] == 0);     /* INT64_MIN */
    free(bytes);

    pn_st_file *f = NULL;
    pn_status st = pn_st_open(path, &f);
    CHECK_MSG(st == PN_OK, "%s", pn_last_error());
    if (st != PN_OK) return;
    CHECK(f->count == 4);
    CHECK(strcmp(f->entries[0].name, "dec.w") == 0 && strcmp(f->entries[3].name, odd) == 0);
    const pn_st_entry *e = pn_st_find(f, "dec.w");
    CHECK(e && e->dtype == PN_ST_F32 && e->ndim == 2 && e->shape[0] == 2 && e->shape[1] == 3 && e->begin == 0 &&
          e->end == 24);
    float back[6];
    CHECK(e && pn_st_read_f32(f, e, back, 6) == PN_OK);
    for (int i = 0; i < 6; i++) CHECK_MSG(f2u(back[i]) == f2u(w[i]), "w[%d] %08x vs %08x", i, f2u(back[i]), f2u(w[i]));
    e = pn_st_find(f, "ids");
    int64_t ib[3];
    CHECK(e && e->begin == 24 && e->end == 48 && pn_st_read_i64(f, e, ib, 3) == PN_OK);
    CHECK(ib[0] == INT64_MIN && ib[1] == -1 && ib[2] == INT64_MAX);
    e = pn_st_find(f, "scalar");
    CHECK(e && e->ndim == 0 && pn_st_numel(e) == 1 && pn_st_read_i64(f, e, ib, 1) == PN_OK && ib[0] == 42);
    e = pn_st_find(f, odd);
    CHECK(e && e->ndim == 2 && e->shape[0] == 0 && e->shape[1] == 5 && pn_st_numel(e) == 0 && e->begin == e->end);
    CHECK(e && pn_st_read_f32(f, e, back, 0) == PN_OK);
    CHECK(f->meta_count == 2);
    CHECK(pn_st_meta(f, "epoch") && strcmp(pn_st_meta(f, "epoch"), "8") == 0);
    CHECK(pn_st_meta(f, "quote\"\t") && strcmp(pn_st_meta(f, "quote\"\t"), "va\\lue\x01") == 0);
    CHECK(pn_st_meta(f, "missing") == NULL && pn_st_find(f, "missing") == NULL);
    /* wrong count or dtype names the tensor */
    e = pn_st_find(f, "ids");
    CHECK(pn_st_read_i64(f, e, ib, 2) == PN_ERR_FORMAT && strstr(pn_last_error(), "\"ids\""));
    CHECK(pn_st_read_f32(f, e, back, 3) == PN_ERR_FORMAT && strstr(pn_last_error(), "\"ids\""));
    e = pn_st_find(f, "dec.w");
    CHECK(pn_st_read_i64(f, e, ib, 6) == PN_ERR_FORMAT && strstr(pn_last_error(), "\"dec.w\""));
    CHECK(pn_st_read_f32(f, e, back, 5) == PN_ERR_FORMAT && strstr(pn_last_error(), "\"dec.w\""));
    pn_st_close(f);

    /* an empty writer makes a valid empty file */
    wr = pn_st_writer_new();
    CHECK(pn_st_writer_save(wr, path) == PN_OK);
    pn_st_writer_free(wr);
    CHECK(pn_st_open(path, &f) == PN_OK && f && f->count == 0 && f->data_len == 0);
    pn_st_close(f);
    remove(path);
}

/* ---- (2) a file written by the Python package --------------------------------------------------- */

#define GOLDEN "ref/golden/st_python.safetensors"
#define GOLDEN_SMALL "ref/golden/st_python_small.safetensors"

static void check_floats(const pn_st_file *f, const char *name, const double *expect, int n, int ndim,
                         const int64_t *shape, pn_st_dtype dt) {
    const pn_st_entry *e = pn_st_find(f, name);
    CHECK_MSG(e != NULL, "%s missing", name);
    if (!e) return;
    CHECK_MSG(e->dtype == dt && e->ndim == ndim && pn_st_numel(e) == n, "%s: dtype/shape", name);
    for (int d = 0; d < ndim && d < e->ndim; d++) CHECK(e->shape[d] == shape[d]);
    float got[16];
    CHECK(pn_st_read_f32(f, e, got, n) == PN_OK);
    for (int i = 0; i < n; i++) {
        float want = (float)expect[i];
        if (isnan(want))
            CHECK_MSG(isnan(got[i]), "%s[%d] = %g, want nan", name, i, got[i]);
        else
            CHECK_MSG(f2u(got[i]) == f2u(want), "%s[%d] = %.9g (%08x), want %.9g (%08x)", name, i, got[i], f2u(got[i]),
                      want, f2u(want));
    }
}

static void test_python_file(void) {
    pn_st_file *f = NULL;
    pn_status st = pn_st_open(GOLDEN, &f);
    CHECK_MSG(st == PN_OK, "%s", pn_last_error());
    if (st != PN_OK) return;
    CHECK(f->count == 8);
    double v[16];
    for (int i = 0; i < 6; i++) v[i] = i * 0.5 - 1;
    check_floats(f, "enc.weight", v, 6, 2, (int64_t[]){2, 3}, PN_ST_F32);
    const double half[12] = {
        0.0,      -0.0,      1.0, -2.5, 65504.0, ldexp(1, -14), ldexp(1, -24), 3 * ldexp(1, -24), 1023 * ldexp(1, -24),
        INFINITY, -INFINITY, NAN};
    check_floats(f, "half", half, 12, 1, (int64_t[]){12}, PN_ST_F16);
    const double brain[8] = {
        1.0, -3.0, ldexp(1, -126), ldexp(1, -133), (2 - ldexp(1, -7)) * ldexp(1, 127), INFINITY, -INFINITY, NAN};
    check_floats(f, "brain", brain, 8, 2, (int64_t[]){2, 4}, PN_ST_BF16);
    for (int i = 0; i < 4; i++) v[i] = i / 3.0;
    check_floats(f, "dbl", v, 4, 2, (int64_t[]){2, 2}, PN_ST_F64);
    check_floats(f, "empty", v, 0, 2, (int64_t[]){0, 3}, PN_ST_F32);
    /* the sign of -0 survives F16 */
    float h[12];
    const pn_st_entry *e = pn_st_find(f, "half");
    if (e && pn_st_read_f32(f, e, h, 12) == PN_OK) CHECK(signbit(h[1]) && !signbit(h[0]));

    int64_t iv[3];
    e = pn_st_find(f, "step");
    CHECK(e && e->dtype == PN_ST_I64 && e->ndim == 0 && pn_st_numel(e) == 1);
    CHECK(e && pn_st_read_i64(f, e, iv, 1) == PN_OK && iv[0] == -((int64_t)1 << 40) - 7);
    e = pn_st_find(f, "pair");
    CHECK(e && e->ndim == 1 && e->shape[0] == 2 && pn_st_read_i64(f, e, iv, 2) == PN_OK);
    CHECK(iv[0] == (int64_t)1 << 62 && iv[1] == -5);
    e = pn_st_find(f, "idx32");
    CHECK(e && e->dtype == PN_ST_I32 && pn_st_read_i64(f, e, iv, 3) == PN_OK);
    CHECK(iv[0] == INT32_MIN && iv[1] == 0 && iv[2] == INT32_MAX);
    CHECK(f->meta_count == 2);
    CHECK(pn_st_meta(f, "format") && strcmp(pn_st_meta(f, "format"), "pt") == 0);
    CHECK(pn_st_meta(f, "note") && strcmp(pn_st_meta(f, "note"), "pneumoseg fixture \xc3\xa9\xe2\x9c\x93") == 0);
    pn_st_close(f);

    /* our writer produces the Python package's bytes exactly */
    int64_t a[2] = {7, -1}, sa[1] = {2}, sw[2] = {2, 3};
    float w[6];
    for (int i = 0; i < 6; i++) w[i] = i * 0.25f;
    pn_st_writer *wr = pn_st_writer_new();
    pn_st_writer_add(wr, "a", PN_ST_I64, 1, sa, a);
    pn_st_writer_add(wr, "w", PN_ST_F32, 2, sw, w);
    pn_st_writer_meta(wr, "format", "pt");
    char path[4096];
    snprintf(path, sizeof path, "%s/st_small.safetensors", g_dir);
    CHECK(pn_st_writer_save(wr, path) == PN_OK);
    pn_st_writer_free(wr);
    size_t n1 = 0, n2 = 0;
    uint8_t *ours = read_all(path, &n1), *theirs = read_all(GOLDEN_SMALL, &n2);
    CHECK_MSG(ours && theirs && n1 == n2 && n1 > 0 && memcmp(ours, theirs, n1) == 0,
              "writer bytes differ from the package's (%zu vs %zu)", n1, n2);
    free(ours);
    free(theirs);
    remove(path);
}

/* ---- (3) malformed files ------------------------------------------------------------------------- */

static const char *VALID = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                           "\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}";

static void test_malformed(void) {
    /* the valid base loads, with whitespace, escapes and padding variations */
    size_t n;
    char path[4096];
    pn_st_file *f;
    uint8_t *b = make_file(VALID, strlen(VALID), 16, &n);
    CHECK(open_bytes(b, n, &f, path, sizeof path) == PN_OK && f && f->count == 2);
    pn_st_close(f);
    remove(path);
    /* every truncation of it fails cleanly */
    int trunc_ok = 0;
    for (size_t len = 0; len < n; len++) {
        char label[64];
        snprintf(label, sizeof label, "truncated to %zu of %zu bytes", len, n);
        int before = check_failed;
        expect_bad_bytes(label, b, len);
        trunc_ok += check_failed == before;
    }
    CHECK(trunc_ok == (int)n);
    free(b);

    const char *spaced =
        " {\n\t\"a\\/\\u00e9\\ud83d\\ude00\" : { \"shape\" : [ 2 ] , \"dtype\":\"F32\",\"data_offsets\":[0,8]} }   ";
    b = make_file(spaced, strlen(spaced), 8, &n);
    CHECK_MSG(open_bytes(b, n, &f, path, sizeof path) == PN_OK, "%s", pn_last_error());
    CHECK(f && pn_st_find(f, "a/\xc3\xa9\xf0\x9f\x98\x80") != NULL);
    pn_st_close(f);
    remove(path);
    free(b);
    b = make_file("{}", 2, 0, &n);
    CHECK(open_bytes(b, n, &f, path, sizeof path) == PN_OK && f && f->count == 0);
    pn_st_close(f);
    remove(path);
    free(b);

    /* header lengths */
    b = make_file(VALID, (uint64_t)1 << 63, 16, &n);
    expect_bad_bytes("header length 2^63", b, n);
    free(b);
    b = make_file(VALID, UINT64_MAX, 16, &n);
    expect_bad_bytes("header length 2^64-1", b, n);
    free(b);
    b = make_file(VALID, 100000001, 16, &n);
    expect_bad_bytes("header length 100 MB", b, n);
    free(b);
    b = make_file(VALID, strlen(VALID) + 17, 16, &n);
    expect_bad_bytes("header length just past the end", b, n);
    free(b);
    b = make_file("", 0, 16, &n);
    expect_bad_bytes("header length 0", b, n);
    free(b);
    expect_bad_bytes("empty file", "", 0);
    expect_bad_bytes("7 bytes", "\x02\0\0\0\0\0\0", 7);

    /* offsets */
    expect_bad_naming("overlapping offsets",
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                      12, "\"b\"");
    expect_bad("same offsets twice",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
               8);
    expect_bad_naming("end past the data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
                      "\"a\"");
    expect_bad_naming(
        "huge offsets",
        "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[9223372036854775806,9223372036854775807]}}", 4,
        "\"a\"");
    expect_bad("offset beyond int64",
               "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,18446744073709551617]}}", 1);
    expect_bad_naming("begin > end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, "\"a\"");
    expect_bad_naming("gap in data",
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                      12, "\"b\"");
    expect_bad("hole at the start", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    expect_bad("trailing uncovered bytes", VALID, 20);
    expect_bad("data but no tensors", "{}", 4);
    expect_bad("negative offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[-4,0]}}", 0);
    expect_bad("three offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,4]}}", 4);
    expect_bad("fractional offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", 4);

    /* shapes and dtypes */
    expect_bad_naming("shape overflow",
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1000000000000,1000000000000],\"data_offsets\":[0,4]}}", 4,
                      "\"a\"");
    expect_bad("shape byte size overflow",
               "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 8);
    expect_bad("shape 1e12 (not integer)", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e12,1e12],\"data_offsets\":[0,4]}}",
               4);
    expect_bad_naming("negative shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1,2],\"data_offsets\":[0,8]}}", 8,
                      "\"a\"");
    expect_bad("shape as string", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8);
    expect_bad("shape not an array", "{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8);
    expect_bad_naming("nine dims", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
                      "\"a\"");
    expect_bad_naming("unknown dtype", "{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16,
                      "F128");
    expect_bad("dtype lower case", "{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_bad("dtype not a string", "{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_bad_naming("missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"a\"");
    expect_bad("missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4);
    expect_bad("missing offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4);
    expect_bad_naming("wrong byte count", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                      "\"a\"");
    expect_bad("unexpected key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4);
    expect_bad("tensor not an object", "{\"a\":[1,2]}", 0);
    expect_bad_naming("duplicate names",
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                      8, "\"a\"");
    expect_bad("duplicate names via escapes",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"\\u0061\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8);
    expect_bad("duplicate dtype key",
               "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_bad("NUL in a name", "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_bad("metadata not an object", "{\"__metadata__\":[]}", 0);
    expect_bad("metadata value a number", "{\"__metadata__\":{\"k\":1}}", 0);

    /* bad JSON */
    static const char *bad_json[] = {
        "[]",
        "\"x\"",
        "12",
        "null",
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "{,}",
        "{\"a\":1,}",
        "{'a':1}",
        "{\"a\":[1,]}",
        "{\"a\":tru}",
        "{\"a\":NaN}",
        "{\"a\":01}",
        "{\"a\":-}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":1e}",
        "{\"a\":+1}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\udc00\"}",
        "{\"a\":\"\\ud800\\u0041\"}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":\"\xff\"}",
        "{\"a\":\"\xc0\x80\"}",
        "{\"a\":\"\xed\xa0\x80\"}",
        "{\"a\":\"\xe2\x9c\"}",
        "{\"a\":\"unterminated}",
        "{}x",
        "{}{}",
        "{} \x01",
        "{\"a\" 1}",
        "\xef\xbb\xbf{}",
    };
    for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
        char label[96];
        snprintf(label, sizeof label, "bad JSON #%zu", i);
        expect_bad(label, bad_json[i], 0);
    }
    /* nesting far past the depth limit (a million levels would overflow the stack without it) */
    size_t depth = 1000000;
    char *deep = malloc(depth + 64);
    int k = snprintf(deep, 64, "{\"__metadata__\":{\"k\":");
    memset(deep + k, '[', depth);
    deep[(size_t)k + depth] = '\0';
    expect_bad_naming("deep nesting", deep, 0, "deep");
    free(deep);
}

/* ---- (4) bit flips --------------------------------------------------------------------------------- */

/* Opens a damaged file: it either loads and every entry reads within bounds, or fails cleanly. */
static void flip_case(const uint8_t *bytes, size_t n, int *loaded, int *failed) {
    char path[4096];
    pn_st_file *f;
    pn_status st = open_bytes(bytes, n, &f, path, sizeof path);
    remove(path);
    if (st != PN_OK) {
        (*failed)++;
        CHECK_MSG(st == PN_ERR_FORMAT && f == NULL && pn_last_error()[0] && !strchr(pn_last_error(), '\n'),
                  "status %d: %s", (int)st, pn_last_error());
        return;
    }
    (*loaded)++;
    size_t covered = 0;
    for (int i = 0; i < f->count; i++) {
        const pn_st_entry *e = &f->entries[i];
        int64_t numel = pn_st_numel(e);
        CHECK(e->begin <= e->end && e->end <= f->data_len && numel >= 0);
        CHECK((size_t)numel * pn_st_dtype_size(e) == e->end - e->begin);
        covered += e->end - e->begin;
        void *buf = malloc((size_t)numel * 8 + 8);
        if (e->dtype == PN_ST_F32 || e->dtype == PN_ST_F16 || e->dtype == PN_ST_BF16 || e->dtype == PN_ST_F64)
            CHECK(pn_st_read_f32(f, e, buf, numel) == PN_OK);
        else if (e->dtype == PN_ST_I64 || e->dtype == PN_ST_I32)
            CHECK(pn_st_read_i64(f, e, buf, numel) == PN_OK);
        free(buf);
    }
    CHECK(covered == f->data_len);
    pn_st_close(f);
}

static void test_bit_flips(void) {
    size_t n = 0;
    uint8_t *orig = read_all(GOLDEN, &n);
    CHECK(orig && n > 64);
    if (!orig || n <= 64) return;
    uint8_t *b = malloc(n);
    int loaded = 0, failed = 0;
    pn_rng r = pn_rng_make(2024, PN_RNG_TEST, 77, 0);
    for (int v = 0; v < 400; v++) {
        memcpy(b, orig, n);
        int flips = 1 + (int)pn_rng_below(&r, 3);
        for (int j = 0; j < flips; j++) {
            /* three quarters of the flips land in the length and header, the rest anywhere */
            uint32_t limit = pn_rng_below(&r, 4) ? (uint32_t)(n - 140) : (uint32_t)n;
            uint32_t bit = pn_rng_below(&r, limit * 8);
            b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        flip_case(b, n, &loaded, &failed);
    }
    printf("bit flips (golden file, %zu bytes): 400 variants, %d loaded, %d rejected\n", n, loaded, failed);
    CHECK(loaded > 0 && failed > 0);
    free(orig);
    /* every single-bit flip of the small file */
    orig = read_all(GOLDEN_SMALL, &n);
    uint8_t *grown = realloc(b, n);
    if (grown) b = grown;
    CHECK(grown != NULL);
    loaded = failed = 0;
    for (size_t bit = 0; orig && grown && bit < n * 8; bit++) {
        memcpy(b, orig, n);
        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        flip_case(b, n, &loaded, &failed);
    }
    printf("bit flips (small file, %zu bytes): %zu variants, %d loaded, %d rejected\n", n, n * 8, loaded, failed);
    free(orig);
    free(b);
}

/* pn_st_writer_add_fill: the same bytes as pn_st_writer_add; a failing fill leaves no file behind. */
static int fill_calls;
static pn_status fill_ramp(void *ctx, void *dst) {
    int n = *(int *)ctx;
    for (int i = 0; i < n; i++) ((float *)dst)[i] = 0.5f * (float)i - 3.0f;
    fill_calls++;
    return PN_OK;
}
static pn_status fill_fail(void *ctx, void *dst) {
    (void)ctx;
    (void)dst;
    return pn_error(PN_ERR_IO, "fill failed on purpose");
}

static size_t slurp(const char *path, uint8_t *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void test_fill(void) {
    enum { N = 300, M = 7 };
    float ramp[N], small[M];
    int n = N, m = M;
    for (int i = 0; i < N; i++) ramp[i] = 0.5f * (float)i - 3.0f;
    for (int i = 0; i < M; i++) small[i] = 0.5f * (float)i - 3.0f;
    int64_t shape[2] = {3, 100}, sm[1] = {M};
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/st_direct.safetensors", g_dir);
    snprintf(b, sizeof b, "%s/st_fill.safetensors", g_dir);
    pn_st_writer *wa = pn_st_writer_new(), *wb = pn_st_writer_new();
    CHECK(pn_st_writer_add(wa, "big", PN_ST_F32, 2, shape, ramp) == PN_OK);
    CHECK(pn_st_writer_add(wa, "small", PN_ST_F32, 1, sm, small) == PN_OK);
    CHECK(pn_st_writer_add_fill(wb, "big", PN_ST_F32, 2, shape, fill_ramp, &n) == PN_OK);
    CHECK(pn_st_writer_add_fill(wb, "small", PN_ST_F32, 1, sm, fill_ramp, &m) == PN_OK);
    CHECK(pn_st_writer_add_fill(wb, "none", PN_ST_F32, 1, sm, NULL, &m) == PN_ERR_ARG);
    CHECK(pn_st_writer_save(wa, a) == PN_OK && pn_st_writer_save(wb, b) == PN_OK);
    CHECK(fill_calls == 2);
    static uint8_t ba[8192], bb[8192];
    size_t na = slurp(a, ba, sizeof ba), nb = slurp(b, bb, sizeof bb);
    CHECK(na > N * 4 && na == nb && memcmp(ba, bb, na) == 0);
    pn_st_writer_free(wa);
    pn_st_writer_free(wb);
    /* a fill error fails the save with its message, and neither the file nor a temporary is left */
    snprintf(b, sizeof b, "%s/st_fill_fail.safetensors", g_dir);
    remove(b);
    wb = pn_st_writer_new();
    CHECK(pn_st_writer_add_fill(wb, "big", PN_ST_F32, 2, shape, fill_fail, NULL) == PN_OK);
    CHECK(pn_st_writer_save(wb, b) == PN_ERR_IO && strstr(pn_last_error(), "on purpose"));
    CHECK(access(b, F_OK) != 0);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", b, (long)getpid());
    CHECK(access(tmp, F_OK) != 0);
    pn_st_writer_free(wb);
}

int main(int argc, char **argv) {
    if (argc > 1) snprintf(g_dir, sizeof g_dir, "%s", argv[1]);
    test_round_trip();
    test_python_file();
    test_malformed();
    test_bit_flips();
    test_fill();
    return check_report("test_safetensors");
}
