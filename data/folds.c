/* folds: scikit-learn's StratifiedKFold._make_test_folds, transcribed, plus seeded shuffle and grouping. */
#include "folds.h"

#include <stdlib.h>

#include "core/rng.h"

pn_status pn_folds_stratified(const int *y, int64_t n, int k, bool shuffle, uint64_t seed, int *fold) {
    if (k < 2) return pn_error(PN_ERR_ARG, "k must be at least 2, got %d", k);
    if (n < k) return pn_error(PN_ERR_ARG, "%lld samples cannot be split into %d folds", (long long)n, k);
    /* Classes encoded by order of first appearance, as scikit-learn does. */
    int *enc = malloc((size_t)n * sizeof *enc);
    int *labels = malloc((size_t)n * sizeof *labels);
    int64_t *counts = calloc((size_t)n, sizeof *counts);
    if (!enc || !labels || !counts) {
        free(enc), free(labels), free(counts);
        return pn_error(PN_ERR_NOMEM, "out of memory");
    }
    int nclasses = 0;
    for (int64_t i = 0; i < n; i++) {
        int c = 0;
        while (c < nclasses && labels[c] != y[i]) c++;
        if (c == nclasses) labels[nclasses++] = y[i];
        enc[i] = c;
        counts[c]++;
    }
    bool all_small = true;
    for (int c = 0; c < nclasses; c++)
        if (counts[c] >= k) all_small = false;
    if (all_small) {
        free(enc), free(labels), free(counts);
        return pn_error(PN_ERR_ARG, "k=%d cannot be greater than the number of members in each class", k);
    }
    /* allocation[f][c] = bincount(y_order[f::k]) where y_order = sorted encoded labels. */
    int64_t *alloc = calloc((size_t)k * (size_t)nclasses, sizeof *alloc);
    if (!alloc) {
        free(enc), free(labels), free(counts);
        return pn_error(PN_ERR_NOMEM, "out of memory");
    }
    int64_t idx = 0;
    for (int c = 0; c < nclasses; c++)
        for (int64_t j = 0; j < counts[c]; j++, idx++) alloc[(idx % k) * nclasses + c]++;
    /* Each class gets the block of fold ids [0]*a0 + [1]*a1 + ..., in sample order. */
    int64_t *blk = malloc((size_t)n * sizeof *blk);
    if (!blk) {
        free(enc), free(labels), free(counts), free(alloc);
        return pn_error(PN_ERR_NOMEM, "out of memory");
    }
    for (int c = 0; c < nclasses; c++) {
        int64_t m = 0;
        for (int f = 0; f < k; f++)
            for (int64_t j = 0; j < alloc[f * nclasses + c]; j++) blk[m++] = f;
        if (shuffle) {
            /* Keyed apart from the epoch shuffles: a counts down from the top of the range. */
            pn_rng rng = pn_rng_make(seed, PN_RNG_SHUFFLE, 0xFFFFFFFFu - (uint32_t)c, 0xF01D);
            for (int64_t j = m - 1; j > 0; j--) {
                int64_t r = (int64_t)pn_rng_below(&rng, (uint32_t)(j + 1));
                int64_t t = blk[j];
                blk[j] = blk[r];
                blk[r] = t;
            }
        }
        int64_t used = 0;
        for (int64_t i = 0; i < n; i++)
            if (enc[i] == c) fold[i] = (int)blk[used++];
    }
    free(enc), free(labels), free(counts), free(alloc), free(blk);
    return PN_OK;
}

pn_status pn_folds_grouped(const int *y, const int *group, int64_t n, int k, bool shuffle, uint64_t seed, int *fold) {
    if (n < 1) return pn_error(PN_ERR_ARG, "no samples");
    int ngroups = 0;
    for (int64_t i = 0; i < n; i++) {
        if (group[i] < 0) return pn_error(PN_ERR_ARG, "sample %lld has no group", (long long)i);
        if (group[i] + 1 > ngroups) ngroups = group[i] + 1;
    }
    int *gy = calloc((size_t)ngroups, sizeof *gy);
    int *pos = calloc((size_t)ngroups, sizeof *pos);
    int *gfold = calloc((size_t)ngroups, sizeof *gfold);
    if (!gy || !pos || !gfold) {
        free(gy), free(pos), free(gfold);
        return pn_error(PN_ERR_NOMEM, "out of memory");
    }
    for (int g = 0; g < ngroups; g++) pos[g] = -1;
    int seen = 0;
    for (int64_t i = 0; i < n; i++) {
        int g = group[i];
        if (pos[g] < 0) {
            pos[g] = seen;
            gy[seen] = y[i];
            seen++;
        } else if (y[i] > gy[pos[g]]) {
            gy[pos[g]] = y[i];
        }
    }
    pn_status st = pn_folds_stratified(gy, seen, k, shuffle, seed, gfold);
    if (st == PN_OK)
        for (int64_t i = 0; i < n; i++) fold[i] = gfold[pos[group[i]]];
    free(gy), free(pos), free(gfold);
    return st;
}
