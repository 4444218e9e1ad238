/* test_folds: data/folds against scikit-learn StratifiedKFold fold ids (tests/ref/folds_golden.txt), and grouping. */
#define _XOPEN_SOURCE 700
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "data/folds.h"
#include "tests/check.h"

static int digit(char c) { return c >= '0' && c <= '9' ? c - '0' : c - 'a' + 10; }

static void check_golden(void) {
    FILE *f = fopen("ref/folds_golden.txt", "r");
    CHECK_MSG(f != NULL, "tests/ref/folds_golden.txt missing");
    if (!f) return;
    static char head[256], ys[20000], fs[20000];
    int cases = 0;
    while (fgets(head, sizeof head, f)) {
        int n, k;
        if (sscanf(head, "case %d %d", &n, &k) != 2) continue;
        if (!fgets(ys, sizeof ys, f) || !fgets(fs, sizeof fs, f)) break;
        int *y = malloc((size_t)n * sizeof *y), *fold = malloc((size_t)n * sizeof *fold);
        for (int i = 0; i < n; i++) y[i] = ys[i] - '0';
        CHECK(pn_folds_stratified(y, n, k, false, 0, fold) == PN_OK);
        int bad = 0;
        for (int i = 0; i < n; i++) bad += fold[i] != digit(fs[i]);
        CHECK_MSG(bad == 0, "case %d (n=%d, k=%d): %d samples in another fold than scikit-learn's", cases, n, k, bad);
        /* Shuffling keeps each class's per-fold counts. */
        int *sh = malloc((size_t)n * sizeof *sh);
        CHECK(pn_folds_stratified(y, n, k, true, 42, sh) == PN_OK);
        int diff_counts = 0, moved = 0;
        for (int c = 0; c < 10; c++)
            for (int fo = 0; fo < k; fo++) {
                int a = 0, b = 0;
                for (int i = 0; i < n; i++) {
                    a += y[i] == c && fold[i] == fo;
                    b += y[i] == c && sh[i] == fo;
                }
                diff_counts += a != b;
            }
        for (int i = 0; i < n; i++) moved += sh[i] != fold[i];
        CHECK_MSG(diff_counts == 0, "case %d: shuffle changed the allocation", cases);
        if (n >= 100) CHECK_MSG(moved > 0, "case %d: shuffle moved nothing", cases);
        free(y), free(fold), free(sh);
        cases++;
    }
    fclose(f);
    CHECK(cases >= 40);
    printf("folds golden: %d label vectors match scikit-learn exactly\n", cases);
}

static void check_groups_and_errors(void) {
    /* 60 images of 20 patients (3 each), a third of the patients positive. */
    int n = 60, y[60], g[60], fold[60];
    for (int i = 0; i < n; i++) {
        g[i] = (i * 7) % 20;
        y[i] = g[i] % 3 == 0 && i % 2 == 0;
    }
    CHECK(pn_folds_grouped(y, g, n, 5, false, 0, fold) == PN_OK);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (g[i] == g[j]) CHECK(fold[i] == fold[j]);
    int per[5] = {0};
    for (int i = 0; i < n; i++) per[fold[i]]++;
    for (int f = 0; f < 5; f++) CHECK(per[f] == 12);
    int yy[3] = {0, 1, 0}, ff[8];
    CHECK(pn_folds_stratified(yy, 3, 5, false, 0, ff) == PN_ERR_ARG);
    CHECK(pn_folds_stratified(yy, 3, 1, false, 0, ff) == PN_ERR_ARG);
    int y2[4] = {0, 1, 0, 1};
    CHECK(pn_folds_stratified(y2, 4, 3, false, 0, ff) == PN_ERR_ARG); /* each class has 2 < 3 members */
}

/* pn_folds_run: unique ids in order of first appearance, has_mask from any row, CSV out, --force. */
static void check_run(void) {
    char dir[512], csv[600], out[600];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/pn_test_folds_XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
    CHECK(mkdtemp(dir) != NULL);
    snprintf(csv, sizeof csv, "%s/train-rle.csv", dir);
    snprintf(out, sizeof out, "%s/folds.csv", dir);
    FILE *f = fopen(csv, "w");
    fputs("ImageId, EncodedPixels\n", f);
    /* 20 ids; id k positive when k % 4 == 0; positives have two rows, one of them " -1" first. */
    for (int k = 0; k < 20; k++) {
        if (k % 4 == 0)
            fprintf(f, "1.2.%d, -1\n1.2.%d, 5 3\n", k, k);
        else
            fprintf(f, "1.2.%d, -1\n", k);
    }
    fclose(f);
    pn_folds_opts o = {.rle_csv = csv, .out_csv = out, .k = 5};
    pn_folds_summary s;
    CHECK(pn_folds_run(&o, &s) == PN_OK && s.images == 20 && s.positives == 5);
    int y[20], expect[20];
    for (int k = 0; k < 20; k++) y[k] = k % 4 == 0;
    CHECK(pn_folds_stratified(y, 20, 5, false, 0, expect) == PN_OK);
    f = fopen(out, "r");
    char line[256];
    CHECK(f && fgets(line, sizeof line, f) && strcmp(line, "ImageId,has_mask,kfold\n") == 0);
    for (int k = 0; k < 20 && f; k++) {
        char want[64];
        snprintf(want, sizeof want, "1.2.%d,%d,%d\n", k, y[k], expect[k]);
        CHECK(fgets(line, sizeof line, f) && strcmp(line, want) == 0);
    }
    if (f) fclose(f);
    CHECK(pn_folds_run(&o, &s) == PN_ERR_ARG && strstr(pn_last_error(), "--force"));
    o.force = true;
    CHECK(pn_folds_run(&o, &s) == PN_OK);
    o.group_by_patient = true;
    CHECK(pn_folds_run(&o, &s) == PN_ERR_ARG); /* needs the DICOM folder */
    f = fopen(csv, "w");
    fputs("ImageId,EncodedPixels\n../x,-1\n", f);
    fclose(f);
    o.group_by_patient = false;
    CHECK(pn_folds_run(&o, &s) == PN_ERR_FORMAT && strstr(pn_last_error(), "line 2"));
    remove(csv), remove(out);
#ifdef PN_TEST_HAVE_DCMTK
    /* --group-by patient: the seeds' PatientIDs are PA (jpeg, raw), PB (rle), PC (ct16). */
    const char *seeds[] = {"jpeg", "raw", "rle", "ct16"};
    f = fopen(csv, "w");
    fputs("ImageId,EncodedPixels\n", f);
    for (int k = 0; k < 4; k++) {
        char from[64], to[700];
        snprintf(from, sizeof from, "ref/dcm/%s.dcm", seeds[k]);
        snprintf(to, sizeof to, "%s/9.%d.dcm", dir, k);
        FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
        int c;
        while (a && b && (c = fgetc(a)) != EOF) fputc(c, b);
        if (a) fclose(a);
        if (b) fclose(b);
        fprintf(f, "9.%d,%s\n", k, k == 2 ? "1 2" : "-1");
    }
    fclose(f);
    o = (pn_folds_opts){.rle_csv = csv, .out_csv = out, .k = 2, .group_by_patient = true, .dicom_dir = dir};
    CHECK_MSG(pn_folds_run(&o, &s) == PN_OK, "%s", pn_last_error());
    CHECK(s.patients == 3 && s.images == 4);
    int fold[4] = {-1, -1, -1, -1};
    f = fopen(out, "r");
    if (f && fgets(line, sizeof line, f))
        for (int k = 0; k < 4 && fgets(line, sizeof line, f); k++) sscanf(line, "9.%*d,%*d,%d", &fold[k]);
    if (f) fclose(f);
    CHECK(fold[0] == fold[1] && fold[0] >= 0 && fold[2] >= 0 && fold[3] >= 0);
    for (int k = 0; k < 4; k++) {
        char p[700];
        snprintf(p, sizeof p, "%s/9.%d.dcm", dir, k);
        remove(p);
    }
    remove(csv), remove(out);
#endif
    rmdir(dir);
}

int main(void) {
    check_golden();
    check_groups_and_errors();
    check_run();
    return check_report("test_folds");
}
