/* test_fuzz_data: truncated and bit-flipped DICOM, PNG, CSV and RLE inputs never crash or hang and fail with a clear
 * message. */
#define _XOPEN_SOURCE 700
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/rng.h"
#include "data/csv.h"
#include "data/dicom.h"
#include "data/png.h"
#include "data/rle.h"
#include "tests/check.h"

typedef struct {
    uint8_t *data;
    size_t size;
} blob;

static blob read_blob(const char *path) {
    blob b = {NULL, 0};
    FILE *f = fopen(path, "rb");
    if (!f) return b;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b.data = malloc((size_t)n + 1);
    b.size = fread(b.data, 1, (size_t)n, f);
    fclose(f);
    return b;
}

/* Case i of a seed: the first half are truncations at spread-out lengths, the rest flip 1..8 random bits. */
static size_t mutate(const blob *seed, int i, int cases, uint8_t *out, pn_rng *r) {
    memcpy(out, seed->data, seed->size);
    if (i < cases / 2) return (size_t)((double)seed->size * i / (cases / 2));
    int flips = 1 + (int)pn_rng_below(r, 8);
    for (int k = 0; k < flips; k++) {
        uint32_t at = pn_rng_below(r, (uint32_t)seed->size);
        out[at] ^= (uint8_t)(1u << pn_rng_below(r, 8));
    }
    return seed->size;
}

/* A failure is clear when it is one non-empty line that names `name`. */
static bool clear_error(const char *name) {
    const char *e = pn_last_error();
    return e[0] && strstr(e, name) != NULL && strchr(e, '\n') == NULL;
}

static void fuzz_dicom(const char *tmpdir) {
#ifndef PN_TEST_HAVE_DCMTK
    SKIP("DICOM fuzz: built without DCMTK");
    return;
#endif
    const char *seeds[] = {"ref/dcm/jpeg.dcm", "ref/dcm/raw.dcm", "ref/dcm/rle.dcm", "ref/dcm/ct16.dcm"};
    char path[512];
    snprintf(path, sizeof path, "%s/pn_fuzz_%d.dcm", tmpdir, (int)getpid());
    int total = 0, ok = 0, failed = 0;
    for (int s = 0; s < 4; s++) {
        blob b = read_blob(seeds[s]);
        CHECK_MSG(b.data != NULL, "%s missing", seeds[s]);
        if (!b.data) continue;
        uint8_t *buf = malloc(b.size);
        pn_rng r = pn_rng_make(11, PN_RNG_TEST, (uint32_t)s, 1);
        int cases = 150;
        for (int i = 0; i < cases; i++) {
            size_t n = mutate(&b, i, cases, buf, &r);
            FILE *f = fopen(path, "wb");
            fwrite(buf, 1, n, f);
            fclose(f);
            pn_dicom_image im;
            pn_dicom_set_fast_jpeg(i % 4 < 2); /* the JPEG seed goes through libjpeg directly and through dcmtk */
            pn_status st = pn_dicom_read(path, i % 2 ? 16 : 8, &im, NULL);
            total++;
            if (st == PN_OK) {
                ok++;
                CHECK(im.width > 0 && im.height > 0 && im.pixels != NULL);
                pn_dicom_image_free(&im);
            } else {
                failed++;
                CHECK_MSG(clear_error(path), "DICOM %s case %d: unclear error '%s'", seeds[s], i, pn_last_error());
            }
        }
        free(buf);
        free(b.data);
    }
    remove(path);
    printf("dicom: %d mutated files, %d decoded, %d failed cleanly\n", total, ok, failed);
    CHECK(total >= 600 && failed > total / 4);
}

static void fuzz_png(const char *tmpdir) {
#ifndef PN_TEST_HAVE_PNG
    SKIP("PNG fuzz: built without libpng");
    return;
#endif
    /* Seeds: Pillow's files and one of ours (with real zlib content). */
    char ours[512];
    snprintf(ours, sizeof ours, "%s/pn_fuzz_%d.png", tmpdir, (int)getpid());
    uint8_t px[48 * 40];
    for (int i = 0; i < 48 * 40; i++) px[i] = (uint8_t)(i * 7 + i / 48);
    CHECK(pn_png_write(ours, 48, 40, 1, 8, px) == PN_OK);
    const char *seeds[] = {ours, "ref/png/rgb8.png", "ref/png/grey16.png", "ref/png/palette.png"};
    int total = 0, failed = 0;
    for (int s = 0; s < 4; s++) {
        blob b = read_blob(seeds[s]);
        if (!b.data) continue;
        uint8_t *buf = malloc(b.size);
        pn_rng r = pn_rng_make(12, PN_RNG_TEST, (uint32_t)s, 2);
        int cases = 100;
        for (int i = 0; i < cases; i++) {
            size_t n = mutate(&b, i, cases, buf, &r);
            pn_image im;
            total++;
            if (pn_png_read_memory(buf, n, "fuzz.png", &im) == PN_OK)
                pn_image_free(&im);
            else {
                failed++;
                CHECK_MSG(clear_error("fuzz.png"), "PNG case %d: unclear error '%s'", i, pn_last_error());
            }
        }
        free(buf);
        free(b.data);
    }
    remove(ours);
    printf("png: %d mutated files, %d failed cleanly\n", total, failed);
    CHECK(total >= 400 && failed > total / 2);
}

static void fuzz_csv(void) {
    const char *text =
        "ImageId, EncodedPixels\r\n1.2.3, -1\r\n\"1.2.4\", \"5 10 3 2\"\r\n1.2.5,\"a \"\"q\"\" b\"\n1.2.6, 7 1\n";
    blob b = {(uint8_t *)text, strlen(text)};
    uint8_t buf[256];
    pn_rng r = pn_rng_make(13, PN_RNG_TEST, 0, 3);
    int total = 0, failed = 0, cases = 500;
    for (int i = 0; i < cases; i++) {
        size_t n = mutate(&b, i, cases, buf, &r);
        pn_csv c;
        total++;
        if (pn_csv_parse((const char *)buf, n, "fuzz.csv", &c) == PN_OK) {
            for (int row = 0; row < c.nrows; row++)
                for (int col = 0; col < c.ncols; col++) CHECK(pn_csv_get(&c, row, col) != NULL);
            pn_csv_free(&c);
        } else {
            failed++;
            CHECK_MSG(clear_error("fuzz.csv"), "CSV case %d: unclear error '%s'", i, pn_last_error());
        }
    }
    printf("csv: %d mutated texts, %d failed cleanly\n", total, failed);
    CHECK(failed > 20);
}

static void fuzz_rle(void) {
    const char *text = "12 5 3 7 100 20 1 1 0 4";
    blob b = {(uint8_t *)text, strlen(text)};
    uint8_t buf[64], mask[32 * 32];
    char str[80];
    pn_rng r = pn_rng_make(14, PN_RNG_TEST, 0, 4);
    int total = 0, failed = 0, cases = 500;
    for (int i = 0; i < cases; i++) {
        size_t n = mutate(&b, i, cases, buf, &r);
        memcpy(str, buf, n);
        str[n] = 0;
        total++;
        pn_rle_format fmt = (pn_rle_format)(i % 3);
        if (pn_rle_decode(str, 32, 32, fmt, mask, "fuzz row") != PN_OK) {
            failed++;
            CHECK_MSG(clear_error("fuzz row"), "RLE case %d: unclear error '%s'", i, pn_last_error());
        }
    }
    printf("rle: %d mutated strings, %d failed cleanly\n", total, failed);
    CHECK(failed > 20);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    const char *tmpdir = tmp && *tmp ? tmp : P_tmpdir;
    fuzz_dicom(tmpdir);
    fuzz_png(tmpdir);
    fuzz_csv();
    fuzz_rle();
    return check_report("test_fuzz_data");
}
