/* cmd_prepare: `pneumoseg prepare`: SIIM DICOMs + train-rle.csv -> OUT/train, OUT/mask, OUT/test PNGs. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "data/image_limit.h"
#include "data/prepare.h"
#include "tools/checks.h"
#include "tools/cli.h"

/* One line per skipped file, clearing a progress bar drawn on the terminal first. */
static void print_skip(void *bar_on_tty, const char *message) {
    fprintf(stderr, "%sskipped: %s\n", *(const bool *)bar_on_tty ? "\r\033[K" : "", message);
}

int pn_cmd_prepare(int argc, char **argv) {
    const char *train = NULL, *test = NULL, *rle = NULL, *out = NULL, *mask_mode = "soft", *rle_format = "auto";
    int size = 1024, threads = 0;
    double max_image_mb = PN_IMAGE_LIMIT_DEFAULT_MB;
    bool force = false, quiet = false;
    const pn_opt opts[] = {
        {"train-dicom", PN_OPT_STR, &train, "DIR", "train DICOMs, searched recursively for *.dcm", false},
        {"test-dicom", PN_OPT_STR, &test, "DIR", "test DICOMs, searched recursively for *.dcm", false},
        {"rle", PN_OPT_STR, &rle, "CSV", "train-rle.csv (ImageId, EncodedPixels); needed with --train-dicom", false},
        {"out", PN_OPT_STR, &out, "DIR", "output folder: train/, mask/, test/ of <ImageId>.png", true},
        {"size", PN_OPT_INT, &size, "N", "output side in pixels (default 1024 = the DICOM pixels unchanged)", false},
        {"mask-mode", PN_OPT_STR, &mask_mode, "soft|binary",
         "soft = resized like the image, as the reference (default); binary = 255 where soft >= 128", false},
        {"rle-format", PN_OPT_STR, &rle_format, "auto|relative|absolute", "how RLE starts are read (default auto)",
         false},
        {"threads", PN_OPT_INT, &threads, "N", "worker threads (default: all cores)", false},
        {"force", PN_OPT_FLAG, &force, NULL,
         "write into a non-empty output folder (files of the same name are replaced, others stay)", false},
        {"quiet", PN_OPT_FLAG, &quiet, NULL, "no progress bar", false},
        {"max-image-mb", PN_OPT_FLOAT, &max_image_mb, "MB", "largest decoded image accepted (default 256)", false},
        {NULL, 0, NULL, NULL, NULL, false},
    };
    const pn_opt_range ranges[] = {PN_BETWEEN("size", 1, 16384),
                                   PN_AT_LEAST("threads", 0),
                                   PN_AT_LEAST("max-image-mb", 1),
                                   {NULL, 0, 0, false, false}};
    const pn_command_help help = {
        "pneumoseg prepare --train-dicom D --rle train-rle.csv [--test-dicom D] --out DIR [--size 512] [options]",
        "Decodes every DICOM to 8-bit grey, unites the RLE rows of each train image into a mask, resizes both as the\n"
        "reference prepare_png.py does (skimage bilinear, rounded as cv2.imwrite rounds floats) and writes "
        "OUT/train/<id>.png,\n"
        "OUT/mask/<id>.png and OUT/test/<id>.png. A failing file is reported and skipped; the summary counts them.\n"
        "Exit status: 0 all written, 1 setup error (nothing written), 2 usage error, 3 some files failed."};
    int rc = pn_cli_parse_ranged(argc, argv, opts, ranges, &help);
    if (rc) return rc < 0 ? 0 : rc;
    bool bar_on_tty = !quiet && isatty(2);
    pn_image_set_limit_mb(max_image_mb);
    threads = pn_cap_threads("--threads", threads);
    if (!train && !test) {
        fprintf(stderr, "pneumoseg prepare: give --train-dicom and/or --test-dicom (see --help)\n");
        return 2;
    }
    if (train && !rle) {
        fprintf(stderr, "pneumoseg prepare: --train-dicom needs --rle (the train-rle.csv) (see --help)\n");
        return 2;
    }
    const pn_named_path inputs[] = {{"--train-dicom", train}, {"--test-dicom", test}, {"--rle", rle}};
    pn_status checked = pn_check_out_dir("--out", out, force, inputs, 3);
    if (checked != PN_OK) return pn_cli_exit("prepare", checked);
    pn_prepare_opts o = {.train_dir = train,
                         .test_dir = test,
                         .rle_csv = rle,
                         .out_dir = out,
                         .size = size,
                         .force = force,
                         .threads = threads,
                         .progress = !quiet,
                         .on_skip = print_skip,
                         .user = &bar_on_tty};
    if (strcmp(mask_mode, "soft") == 0)
        o.binary_masks = false;
    else if (strcmp(mask_mode, "binary") == 0)
        o.binary_masks = true;
    else {
        fprintf(stderr, "pneumoseg prepare: --mask-mode must be soft or binary, got '%s'\n", mask_mode);
        return 2;
    }
    if (pn_rle_format_parse(rle_format, &o.rle_format) != PN_OK) {
        fprintf(stderr, "pneumoseg prepare: --rle-format: %s\n", pn_last_error());
        return 2;
    }
    pn_prepare_summary s;
    if (pn_prepare_run(&o, &s) != PN_OK) return pn_cli_fail("prepare");
    double n = (double)(s.train_images + s.test_images + s.failures);
    printf("prepare: %lld train images (%lld positive), %lld test images, %lld failed, in %.1f s (%.1f images/s)\n",
           (long long)s.train_images, (long long)s.positives, (long long)s.test_images, (long long)s.failures,
           s.seconds, s.seconds > 0 ? n / s.seconds : 0.0);
    for (int r = 0; r < PN_PREP_FAIL_COUNT; r++)
        if (s.fail_by_reason[r])
            printf("  failed, %s: %lld\n", pn_prepare_reason_name(r), (long long)s.fail_by_reason[r]);
    if (s.csv_ids_without_dicom)
        printf("  note: %lld ImageIds in the CSV have no DICOM under --train-dicom (not written)\n",
               (long long)s.csv_ids_without_dicom);
    if (s.dicoms_without_row)
        printf("  note: %lld train DICOMs have no CSV row (an empty mask for each that decodes)\n",
               (long long)s.dicoms_without_row);
    return s.failures ? 3 : 0;
}
