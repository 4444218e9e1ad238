/* test_folds: data/folds against scikit-learn StratifiedKFold fold ids (tests/ref/folds_golden.txt), and grouping. */
#include <stdlib.h>
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

int main(void) {
    check_golden();
    check_groups_and_errors();
    return check_report("test_folds");
}
