/* cmd_folds: `pneumoseg folds`: a scikit-learn-identical stratified k-fold split of the unique ImageIds. */
#include <stdio.h>
#include <string.h>

#include "data/folds.h"
#include "tools/checks.h"
#include "tools/cli.h"

int pn_cmd_folds(int argc, char **argv) {
    const char *rle = NULL, *out = NULL, *group_by = NULL, *dicom = NULL;
    int k = 5, seed = 0;
    bool shuffle = false, force = false;
    const pn_opt opts[] = {
        {"rle", PN_OPT_STR, &rle, "CSV", "train-rle.csv (ImageId, EncodedPixels)", true},
        {"out", PN_OPT_STR, &out, "CSV", "output: ImageId,has_mask,kfold", true},
        {"k", PN_OPT_INT, &k, "N", "number of folds (default 5)", false},
        {"shuffle", PN_OPT_FLAG, &shuffle, NULL, "shuffle each class's fold ids (seeded; not numpy's stream)", false},
        {"seed", PN_OPT_INT, &seed, "N", "seed for --shuffle (default 0)", false},
        {"group-by", PN_OPT_STR, &group_by, "patient", "keep all images of one PatientID in one fold", false},
        {"dicom", PN_OPT_STR, &dicom, "DIR", "train DICOMs (for --group-by patient)", false},
        {"force", PN_OPT_FLAG, &force, NULL, "overwrite --out", false},
        {NULL, 0, NULL, NULL, NULL, false},
    };
    const pn_opt_range ranges[] = {PN_BETWEEN("k", 2, 64), PN_AT_LEAST("seed", 0), {NULL, 0, 0, false, false}};
    const pn_command_help help = {
        "pneumoseg folds --rle train-rle.csv --out folds.csv [--k 5] [--shuffle --seed N] [--group-by patient --dicom "
        "D]",
        "Splits the unique ImageIds (in order of first appearance, has_mask = any non-empty RLE row) into k folds\n"
        "exactly as scikit-learn's StratifiedKFold(n_splits=k, shuffle=False) does, so an image never lands in two\n"
        "folds. --group-by patient reads PatientID from the DICOMs and keeps each patient in one fold."};
    int rc = pn_cli_parse_ranged(argc, argv, opts, ranges, &help);
    if (rc) return rc < 0 ? 0 : rc;
    if (group_by && strcmp(group_by, "patient") != 0) {
        fprintf(stderr, "pneumoseg folds: --group-by accepts only 'patient', got '%s'\n", group_by);
        return 2;
    }
    pn_folds_opts o = {.rle_csv = rle,
                       .out_csv = out,
                       .k = k,
                       .shuffle = shuffle,
                       .seed = (uint64_t)(int64_t)seed,
                       .group_by_patient = group_by != NULL,
                       .dicom_dir = dicom,
                       .force = force};
    if (group_by && !dicom) {
        fprintf(stderr, "pneumoseg folds: --group-by patient needs --dicom (the train DICOM folder)\n");
        return 2;
    }
    const pn_named_path inputs[] = {{"--rle", rle}, {"--dicom", dicom}};
    pn_status st = pn_check_out_file("--out", out, force, inputs, 2);
    if (st != PN_OK) return pn_cli_exit("folds", st);
    pn_folds_summary s;
    if (pn_folds_run(&o, &s) != PN_OK) return pn_cli_fail("folds");
    printf("folds: %lld images (%lld positive) in %d folds", (long long)s.images, (long long)s.positives, k);
    if (o.group_by_patient) printf(", %lld patients", (long long)s.patients);
    printf("\n");
    for (int f = 0; f < k; f++)
        printf("  fold %d: %lld images, %lld positive\n", f, (long long)s.per_fold[f],
               (long long)s.positives_per_fold[f]);
    if (s.images_without_patient_id)
        printf("  note: %lld images have no PatientID; each is its own group\n",
               (long long)s.images_without_patient_id);
    return 0;
}
