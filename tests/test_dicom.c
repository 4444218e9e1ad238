/* test_dicom: data/dicom against pydicom's pixels on pydicom's own test DICOMs (golden in tests/ref), plus tags. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dicom.h"
#include "tests/check.h"

/* Tolerances (grey levels): exact-coded files vs lossy JPEG (DCMTK's libijg vs Pillow's libjpeg-turbo). */
#define TOL8_LOSSLESS 1
#define TOL16_LOSSLESS 258
#define TOL8_LOSSY 6
#define TOL16_LOSSY (6 * 257)

static const char *default_folder = "/usr/lib/python3/dist-packages/pydicom/data/test_files";

static bool is_dir(const char *p) {
    struct stat sb;
    return p && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

typedef struct {
    double min, max, mean;
    int s[16];
} summary;

static int parse_summary(const char *p, summary *s) {
    int used = 0, n;
    if (sscanf(p, "%lf %lf %lf%n", &s->min, &s->max, &s->mean, &n) != 3) return -1;
    used += n;
    for (int i = 0; i < 16; i++) {
        if (sscanf(p + used, "%d%n", &s->s[i], &n) != 1) return -1;
        used += n;
    }
    return used;
}

static double pixel(const pn_dicom_image *im, int x, int y) {
    size_t i = (size_t)y * (size_t)im->width + (size_t)x;
    return im->bits == 8 ? ((const uint8_t *)im->pixels)[i] : ((const uint16_t *)im->pixels)[i];
}

/* Compares a decoded image with the golden summary; returns the largest sample difference. */
static double compare(const char *name, const pn_dicom_image *im, const summary *g, int tol) {
    double lo = 1e9, hi = -1e9, sum = 0, worst = 0;
    int w = im->width, h = im->height;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double v = pixel(im, x, y);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            sum += v;
        }
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 4; i++) {
            double d = fabs(pixel(im, (2 * i + 1) * w / 8, (2 * j + 1) * h / 8) - g->s[j * 4 + i]);
            worst = d > worst ? d : worst;
        }
    CHECK_MSG(worst <= tol, "%s %d-bit: sampled pixel off by %g (tolerance %d)", name, im->bits, worst, tol);
    CHECK_MSG(fabs(lo - g->min) <= tol && fabs(hi - g->max) <= tol, "%s %d-bit: range %g..%g, pydicom %g..%g", name,
              im->bits, lo, hi, g->min, g->max);
    CHECK_MSG(fabs(sum / ((double)w * h) - g->mean) <= tol * 0.5 + 0.01, "%s %d-bit: mean %.3f, pydicom %.3f", name,
              im->bits, sum / ((double)w * h), g->mean);
    return worst;
}

static void check_file(const char *folder, char *line, int *n_match, int *n_fail_clean) {
    char name[256], status[32], syntax[80];
    int lossy, n;
    if (sscanf(line, "%255s %31s %79s %d%n", name, status, syntax, &lossy, &n) != 4) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        SKIP("%s: not in this pydicom installation", name);
        return;
    }
    pn_dicom_image im8, im16;
    pn_dicom_info info;
    pn_status st8 = pn_dicom_read(path, 8, &im8, &info);
    char msg8[512];
    snprintf(msg8, sizeof msg8, "%s", pn_last_error());
    pn_status st16 = pn_dicom_read(path, 16, &im16, NULL);
    CHECK_MSG((st8 == PN_OK) == (st16 == PN_OK), "%s: 8-bit and 16-bit reads disagree", name);
    if (st8 != PN_OK) {
        /* A failure must be one line naming the file. */
        CHECK_MSG(strstr(msg8, name) != NULL && strchr(msg8, '\n') == NULL, "%s: unclear error '%s'", name, msg8);
        bool j2k = strncmp(syntax, "1.2.840.10008.1.2.4.9", 21) == 0;
        if (j2k)
            CHECK_MSG(strstr(msg8, syntax) != NULL, "%s: JPEG 2000 error does not name the syntax: %s", name, msg8);
        printf("  %-44s fails cleanly%s: %s\n", name, strcmp(status, "ok") == 0 ? " (pydicom decodes it)" : "", msg8);
        (*n_fail_clean)++;
        return;
    }
    if (strcmp(status, "ok") == 0) {
        int W, H, used;
        summary g8, g16;
        const char *p = line + n;
        if (sscanf(p, "%d %d%n", &W, &H, &used) == 2) {
            p += used;
            int u8 = parse_summary(p, &g8);
            int u16 = u8 > 0 ? parse_summary(p + u8, &g16) : -1;
            CHECK_MSG(u8 > 0 && u16 > 0, "%s: bad golden line", name);
            CHECK_MSG(im8.width == W && im8.height == H, "%s: %dx%d, pydicom %dx%d", name, im8.width, im8.height, W, H);
            if (u16 > 0 && im8.width == W && im8.height == H) {
                double d8 = compare(name, &im8, &g8, lossy ? TOL8_LOSSY : TOL8_LOSSLESS);
                double d16 = compare(name, &im16, &g16, lossy ? TOL16_LOSSY : TOL16_LOSSLESS);
                printf("  %-44s matches pydicom: max sample diff %g (8-bit), %g (16-bit)%s\n", name, d8, d16,
                       lossy ? " [lossy JPEG]" : "");
                (*n_match)++;
            }
        }
    } else {
        printf("  %-44s decodes (pydicom cannot here: no reference)\n", name);
    }
    pn_dicom_image_free(&im8);
    pn_dicom_image_free(&im16);
}

/* Tags and errors on files whose content we know from pydicom's documentation of its corpus. */
static void check_tags(const char *folder) {
    char path[1024];
    snprintf(path, sizeof path, "%s/CT_small.dcm", folder);
    pn_dicom_info info;
    if (pn_dicom_read_info(path, &info) != PN_OK) {
        SKIP("CT_small.dcm: %s", pn_last_error());
        return;
    }
    CHECK_MSG(strcmp(info.patient_id, "1CT1") == 0, "CT_small PatientID '%s'", info.patient_id);
    CHECK_MSG(strcmp(info.sex, "O") == 0, "CT_small PatientSex '%s'", info.sex);
    CHECK_MSG(info.age_years == 0, "CT_small PatientAge 000Y read as %d", info.age_years);
    CHECK(info.rows == 128 && info.cols == 128 && info.bits_stored == 16 && info.pixel_signed == 1);
    CHECK(strcmp(info.transfer_syntax, "1.2.840.10008.1.2.1") == 0);
}

/* The SIIM fast path (libjpeg straight) and dcmtk's decoder give the same pixels, MONOCHROME1 and 16-bit too. */
static void check_fast_jpeg(void) {
    pn_dicom_image a, b;
    for (int bits = 8; bits <= 16; bits += 8) {
        pn_dicom_set_fast_jpeg(true);
        CHECK(pn_dicom_read("ref/dcm/jpeg.dcm", bits, &a, NULL) == PN_OK);
        pn_dicom_set_fast_jpeg(false);
        CHECK(pn_dicom_read("ref/dcm/jpeg.dcm", bits, &b, NULL) == PN_OK);
        pn_dicom_set_fast_jpeg(true);
        CHECK(a.pixels && b.pixels && a.width == b.width && a.height == b.height &&
              memcmp(a.pixels, b.pixels, (size_t)a.width * a.height * (bits / 8)) == 0);
        pn_dicom_image_free(&a);
        pn_dicom_image_free(&b);
    }
}

static void check_errors(void) {
    pn_dicom_image im;
    CHECK(pn_dicom_read("no-such-file.dcm", 8, &im, NULL) != PN_OK);
    CHECK(strstr(pn_last_error(), "no-such-file.dcm") != NULL);
    CHECK(pn_dicom_read("no-such-file.dcm", 12, &im, NULL) == PN_ERR_ARG);
}

int main(int argc, char **argv) {
    const char *folder = argc > 1 && is_dir(argv[1]) ? argv[1] : default_folder;
    check_errors();
#ifndef PN_TEST_HAVE_DCMTK
    pn_dicom_image im;
    CHECK(pn_dicom_read("x.dcm", 8, &im, NULL) == PN_ERR_UNSUPPORTED);
    SKIP("built without DCMTK");
    return check_report("test_dicom");
#endif
    check_fast_jpeg();
    char line[8192];
    int n_match = 0, n_fail_clean = 0, seeds_match = 0, seeds_fail = 0;
    FILE *g = fopen("ref/dicom_seeds_golden.txt", "r");
    CHECK_MSG(g != NULL, "tests/ref/dicom_seeds_golden.txt is missing");
    while (g && fgets(line, sizeof line, g))
        if (line[0] != '#') check_file("ref/dcm", line, &seeds_match, &seeds_fail);
    if (g) fclose(g);
    CHECK(seeds_match == 4 && seeds_fail == 0);
    if (!is_dir(folder)) {
        SKIP("pydicom's test DICOMs not found (install python3-pydicom); looked in %s", folder);
        return check_report("test_dicom");
    }
    g = fopen("ref/dicom_golden.txt", "r");
    CHECK_MSG(g != NULL, "tests/ref/dicom_golden.txt is missing");
    if (!g) return check_report("test_dicom");
    while (fgets(line, sizeof line, g))
        if (line[0] != '#') check_file(folder, line, &n_match, &n_fail_clean);
    fclose(g);
    check_tags(folder);
    printf("pydicom corpus: %d files match pydicom, %d fail with a clear message\n", n_match, n_fail_clean);
    return check_report("test_dicom");
}
