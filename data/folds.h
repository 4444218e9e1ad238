/* folds: stratified k-fold assignment identical to scikit-learn's StratifiedKFold(shuffle=False). */
#ifndef PN_FOLDS_H
#define PN_FOLDS_H

#include <stdint.h>

#include "core/base.h"

/* Assigns fold[i] in [0, k) to each of the n samples with class labels y[i] (any ints), exactly as
 * sklearn.model_selection.StratifiedKFold(n_splits=k, shuffle=False).split(X, y) puts sample i in the
 * test set of fold[i]. With shuffle, each class's block of fold ids is shuffled with the project's
 * Philox generator keyed by `seed` (the same allocation as scikit-learn, not its numpy RNG stream).
 * Fails when k < 2 or k exceeds the size of every class (as scikit-learn does). */
pn_status pn_folds_stratified(const int *y, int64_t n, int k, bool shuffle, uint64_t seed, int *fold);

/* Group-aware split: samples sharing group[i] (ids 0..ngroups-1) land in one fold. Each group gets the
 * label max(y) over its samples, groups are split with pn_folds_stratified in order of first
 * appearance, and each sample takes its group's fold. */
pn_status pn_folds_grouped(const int *y, const int *group, int64_t n, int k, bool shuffle, uint64_t seed, int *fold);

/* What `pneumoseg folds` does: read the RLE CSV (ImageId, EncodedPixels), take the unique ImageIds in
 * order of first appearance with has_mask = any row not "-1"/empty, split them, and write
 * `ImageId,has_mask,kfold` atomically. With group_by_patient, PatientID is read from
 * dicom_dir/.../<ImageId>.dcm (an image without PatientID is its own group). */
typedef struct pn_folds_opts {
    const char *rle_csv, *out_csv;
    int k;
    bool shuffle;
    uint64_t seed;
    bool group_by_patient;
    const char *dicom_dir; /* needed with group_by_patient */
    bool force;            /* overwrite out_csv */
} pn_folds_opts;

typedef struct pn_folds_summary {
    int64_t images, positives, patients, images_without_patient_id;
    int64_t per_fold[64], positives_per_fold[64];
} pn_folds_summary;

pn_status pn_folds_run(const pn_folds_opts *opts, pn_folds_summary *summary);
#endif
