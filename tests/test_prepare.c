/* test_prepare: the resize rule against skimage (tests/ref/resize_golden.txt), ImageId rules, and a tiny end-to-end
 * prepare. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dicom.h"
#include "data/png.h"
#include "data/prepare.h"
#include "data/rle.h"
#include "tests/check.h"

static int hexval(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

static void check_resize_golden(void) {
    enum { W = 64, H = 48 };
    uint8_t image[W * H], mask[W * H];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            image[y * W + x] = (uint8_t)((x * 37 + y * 101 + (x * y) % 13) % 256);
            mask[y * W + x] = (x - 30) * (x - 30) + (y - 20) * (y - 20) < 15 * 15 ? 255 : 0;
        }
    FILE *f = fopen("ref/resize_golden.txt", "r");
    CHECK_MSG(f != NULL, "tests/ref/resize_golden.txt missing");
    if (!f) return;
    static char head[128], hex[65536];
    int cases = 0;
    while (fgets(head, sizeof head, f)) {
        char name[16];
        int dw, dh;
        if (head[0] == '#' || sscanf(head, "%15s %d %d", name, &dw, &dh) != 3) continue;
        if (!fgets(hex, sizeof hex, f)) break;
        uint8_t *out = malloc((size_t)dw * dh);
        bool is_mask = strcmp(name, "mask") == 0;
        if (strcmp(name, "small") == 0) {
            uint8_t small[46 * 30];
            for (int y = 0; y < 30; y++) memcpy(small + y * 46, image + y * W, 46);
            CHECK(pn_prepare_resize(small, 46, 30, out, dw, dh, false) == PN_OK);
        } else {
            CHECK(pn_prepare_resize(is_mask ? mask : image, W, H, out, dw, dh, is_mask) == PN_OK);
        }
        int bad = 0;
        for (int i = 0; i < dw * dh; i++) bad += out[i] != hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]);
        CHECK_MSG(bad == 0, "%s %dx%d: %d of %d pixels differ from skimage", name, dw, dh, bad, dw * dh);
        free(out);
        cases++;
    }
    fclose(f);
    CHECK(cases == 17);
    /* The same size gives the pixels back (the golden's 64x48 case shows the reference does too). */
    uint8_t same[W * H];
    CHECK(pn_prepare_resize(image, W, H, same, W, H, false) == PN_OK);
    CHECK(memcmp(same, image, sizeof same) == 0);
    /* An exact halving is the rounded (half to even) 2x2 mean; soft mask edges are 64/128/191. */
    uint8_t m4[16] = {255, 255, 0, 0, 255, 0, 0, 0, 255, 255, 0, 0, 0, 0, 0, 255}, m2[4];
    CHECK(pn_prepare_resize(m4, 4, 4, m2, 2, 2, true) == PN_OK);
    CHECK(m2[0] == 191 && m2[1] == 0 && m2[2] == 128 && m2[3] == 64);
}

static void check_ids(void) {
    CHECK(pn_prepare_id_valid("1.2.276.0.7230010.3.1.4.8323329.5597.1517875188.959090", "x"));
    CHECK(!pn_prepare_id_valid("", "x"));
    CHECK(!pn_prepare_id_valid("../etc", "x"));
    CHECK(!pn_prepare_id_valid("1..2", "x"));
    CHECK(!pn_prepare_id_valid("1/2", "x"));
    CHECK(!pn_prepare_id_valid(".1", "x"));
    CHECK(!pn_prepare_id_valid("1.", "x"));
    CHECK(!pn_prepare_id_valid("1.2a", "csv line 3") && strstr(pn_last_error(), "csv line 3"));
    CHECK(!pn_prepare_id_valid("11111111111111111111111111111111111111111111111111111111111111111", "x"));
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void copy_file(const char *from, const char *to, long limit) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    CHECK(a && b);
    if (!a || !b) return;
    int c;
    long n = 0;
    while ((c = fgetc(a)) != EOF && (limit < 0 || n < limit)) fputc(c, b), n++;
    fclose(a);
    fclose(b);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static bool read_png_gray(const char *dir, const char *sub, const char *id, pn_image *im) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s/%s.png", dir, sub, id);
    return pn_png_read(p, im) == PN_OK && im->channels == 1 && im->bit_depth == 8;
}

/* What prepare reported about skipped files: one line each, through opts.on_skip. */
typedef struct skips {
    int count;
    char text[4096];
} skips;

static void on_skip(void *user, const char *message) {
    skips *k = user;
    size_t used = strlen(k->text);
    k->count++;
    snprintf(k->text + used, sizeof k->text - used, "%s\n", message);
}

static void check_end_to_end(void) {
    char root[512], p[1024], q[1024], out[1024];
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/pn_test_prepare_XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
    CHECK(mkdtemp(root) != NULL);
    const char *dirs[] = {"train", "train/a", "train/a/b", "test"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
        mkdir(p, 0777);
    }
    const char *id1 = "1.2.3.1", *id2 = "1.2.3.2";
    snprintf(p, sizeof p, "%s/train/a/b/%s.dcm", root, id1);
    copy_file("ref/dcm/jpeg.dcm", p, -1);
    snprintf(p, sizeof p, "%s/train/a/%s.dcm", root, id2);
    copy_file("ref/dcm/raw.dcm", p, -1);
    snprintf(p, sizeof p, "%s/train/1.2.3.3.dcm", root);
    copy_file("ref/dcm/raw.dcm", p, 900); /* truncated: header only */
    snprintf(p, sizeof p, "%s/train/1.2..4.dcm", root);
    copy_file("ref/dcm/raw.dcm", p, -1); /* a bad ImageId */
    snprintf(p, sizeof p, "%s/test/1.2.3.9.dcm", root);
    copy_file("ref/dcm/rle.dcm", p, -1);
    /* id1: two regions (relative RLE, column-major, 64x64), id2 empty, 1.2.3.5 has no DICOM. */
    snprintf(q, sizeof q, "%s/train-rle.csv", root);
    write_text(q, "ImageId, EncodedPixels\n1.2.3.1, 130 20 44 20\n1.2.3.2, -1\n1.2.3.1, 2000 100\n1.2.3.5, 1 1\n"
                  "1.2.3.3, -1\n");
    snprintf(out, sizeof out, "%s/out", root);
    char train[1024], test[1024];
    snprintf(train, sizeof train, "%s/train", root);
    snprintf(test, sizeof test, "%s/test", root);
    skips sk = {0};
    pn_prepare_opts o = {.train_dir = train,
                         .test_dir = test,
                         .rle_csv = q,
                         .out_dir = out,
                         .size = 64,
                         .threads = 2,
                         .on_skip = on_skip,
                         .user = &sk};
    pn_prepare_summary s;
    pn_status st = pn_prepare_run(&o, &s);
    CHECK_MSG(sk.count == s.failures, "%d skip lines for %lld failures", sk.count, (long long)s.failures);
#if !defined(PN_TEST_HAVE_DCMTK)
    CHECK(st == PN_OK && s.failures == 5 && s.fail_by_reason[PN_PREP_FAIL_SYNTAX] == 4);
    SKIP("prepare end-to-end: built without DCMTK");
    (void)read_png_gray;
#elif !defined(PN_TEST_HAVE_PNG)
    CHECK(st == PN_OK && s.failures == 5 && s.fail_by_reason[PN_PREP_FAIL_WRITE] == 3);
    SKIP("prepare end-to-end: built without libpng");
    (void)read_png_gray;
#else
    CHECK_MSG(st == PN_OK, "%s", pn_last_error());
    CHECK(s.train_images == 2 && s.test_images == 1 && s.positives == 1);
    CHECK(s.failures == 2 && s.fail_by_reason[PN_PREP_FAIL_DICOM] == 1 && s.fail_by_reason[PN_PREP_FAIL_ID] == 1);
    CHECK_MSG(strstr(sk.text, "1.2.3.3.dcm") && strstr(sk.text, "1.2..4"), "skip lines name each file:\n%s", sk.text);
    CHECK(s.csv_ids_without_dicom == 1 && s.dicoms_without_row == 0);
    /* At the DICOM size the PNG pixels are the decoded pixels, the mask is the union of the rows. */
    uint8_t mask[64 * 64] = {0};
    CHECK(pn_rle_decode("130 20 44 20", 64, 64, PN_RLE_RELATIVE, mask, "a") == PN_OK);
    CHECK(pn_rle_decode("2000 100", 64, 64, PN_RLE_RELATIVE, mask, "b") == PN_OK);
    pn_image im, mk;
    pn_dicom_image d;
    snprintf(p, sizeof p, "%s/train/a/b/%s.dcm", root, id1);
    CHECK(pn_dicom_read(p, 8, &d, NULL) == PN_OK);
    CHECK(read_png_gray(out, "train", id1, &im) && im.width == 64 && memcmp(im.pixels, d.pixels, 64 * 64) == 0);
    CHECK(read_png_gray(out, "mask", id1, &mk) && memcmp(mk.pixels, mask, 64 * 64) == 0);
    pn_image_free(&im), pn_image_free(&mk);
    CHECK(read_png_gray(out, "mask", id2, &mk));
    for (int i = 0; i < 64 * 64 && mk.pixels; i++) CHECK(((uint8_t *)mk.pixels)[i] == 0);
    pn_image_free(&mk);
    CHECK(read_png_gray(out, "test", "1.2.3.9", &im));
    pn_image_free(&im);
    /* A non-empty output folder is refused without --force. */
    o.size = 32;
    CHECK(pn_prepare_run(&o, &s) == PN_ERR_ARG && strstr(pn_last_error(), "--force"));
    /* At 32: the reference resize rule for image and soft mask; binary masks threshold the soft one. */
    o.force = true;
    o.threads = 1;
    CHECK(pn_prepare_run(&o, &s) == PN_OK && s.failures == 2);
    uint8_t small[32 * 32], soft[32 * 32];
    CHECK(pn_prepare_resize(d.pixels, 64, 64, small, 32, 32, false) == PN_OK);
    CHECK(pn_prepare_resize(mask, 64, 64, soft, 32, 32, true) == PN_OK);
    CHECK(read_png_gray(out, "train", id1, &im) && im.width == 32 && memcmp(im.pixels, small, 32 * 32) == 0);
    CHECK(read_png_gray(out, "mask", id1, &mk) && memcmp(mk.pixels, soft, 32 * 32) == 0);
    int edges = 0;
    for (int i = 0; i < 32 * 32; i++) edges += soft[i] == 128 || soft[i] == 64 || soft[i] == 191;
    CHECK(edges > 0);
    pn_image_free(&im), pn_image_free(&mk);
    o.binary_masks = true;
    CHECK(pn_prepare_run(&o, &s) == PN_OK);
    CHECK(read_png_gray(out, "mask", id1, &mk));
    int bad = 0;
    for (int i = 0; i < 32 * 32 && mk.pixels; i++) bad += ((uint8_t *)mk.pixels)[i] != (soft[i] >= 128 ? 255 : 0);
    CHECK(bad == 0);
    pn_image_free(&mk);
    pn_dicom_image_free(&d);
    /* A CSV row with a bad RLE fails that image only. */
    write_text(q, "ImageId,EncodedPixels\n1.2.3.1,0 99999\n1.2.3.2,-1\n");
    o.test_dir = NULL;
    CHECK(pn_prepare_run(&o, &s) == PN_OK && s.fail_by_reason[PN_PREP_FAIL_RLE] == 1 && s.train_images == 1);
    CHECK(pn_prepare_run(&(pn_prepare_opts){.train_dir = train, .out_dir = out, .size = 8}, &s) == PN_ERR_ARG);
#endif
    (void)st;
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
    check_resize_golden();
    check_ids();
    check_end_to_end();
    return check_report("test_prepare");
}
