/* cmd_synth: `pneumoseg synth`: writes a SIIM-shaped synthetic data set (DICOMs, train-rle.csv, submission). */
#include <stdio.h>

#include "data/synth.h"
#include "tools/checks.h"
#include "tools/cli.h"

int pn_cmd_synth(int argc, char **argv) {
    const char *out = NULL;
    int n = 400, n_test = -1, size = 1024, seed = 0, quality = 90, threads = 0;
    double pos_rate = 0.22, contrast = 1, depth = 1;
    bool uncompressed = false, force = false;
    const pn_opt opts[] = {
        {"out", PN_OPT_STR, &out, "DIR", "output folder (must be empty unless --force)", true},
        {"n", PN_OPT_INT, &n, "N", "train images (default 400)", false},
        {"n-test", PN_OPT_INT, &n_test, "N", "test images (default: n * 3205 / 12047, as in SIIM stage 2)", false},
        {"size", PN_OPT_INT, &size, "S", "image side in pixels (default 1024, as SIIM)", false},
        {"seed", PN_OPT_INT, &seed, "N", "seed: the same seed gives the same files (default 0)", false},
        {"pos-rate", PN_OPT_FLOAT, &pos_rate, "P", "share of images with a finding (default 0.22)", false},
        {"finding-contrast", PN_OPT_FLOAT, &contrast, "K",
         "multiplies how much darker a finding is, and its pleural line (default 1)", false},
        {"finding-depth", PN_OPT_FLOAT, &depth, "K", "multiplies how deep a finding reaches into the lung (default 1)",
         false},
        {"quality", PN_OPT_INT, &quality, "Q",
         "JPEG baseline quality 1..100 (default 90: about 150 KB per 1024 image, as SIIM)", false},
        {"uncompressed", PN_OPT_FLAG, &uncompressed, NULL, "write Explicit VR Little Endian instead of JPEG", false},
        {"threads", PN_OPT_INT, &threads, "N", "worker threads (default: all cores)", false},
        {"force", PN_OPT_FLAG, &force, NULL, "write into a non-empty --out", false},
        {NULL, 0, NULL, NULL, NULL, false},
    };
    const pn_opt_range ranges[] = {
        PN_BETWEEN("n", 1, 1e7),
        PN_BETWEEN("n-test", 0, 1e7),
        PN_BETWEEN("size", 32, 4096),
        PN_AT_LEAST("seed", 0),
        PN_BETWEEN("pos-rate", 0, 1),
        {"finding-contrast", 0, 10, true, false},
        {"finding-depth", 0, 10, true, false},
        PN_BETWEEN("quality", 1, 100),
        PN_AT_LEAST("threads", 0),
        {NULL, 0, 0, false, false},
    };
    const pn_command_help help = {
        "pneumoseg synth --out DIR [--n 400] [--size 1024] [--seed S]",
        "Writes a synthetic data set shaped like SIIM-ACR: DIR/dicom-images-train/<study>/<series>/<id>.dcm and\n"
        "DIR/dicom-images-test/... (8-bit MONOCHROME2, JPEG baseline), DIR/train-rle.csv with SIIM's quirks\n"
        "(header 'ImageId, EncodedPixels', a leading space before values, -1 for no finding, one row per region),\n"
        "DIR/sample_submission.csv, and DIR/test-rle.csv (the test truth, which SIIM does not give). The images\n"
        "look like chest radiographs (body, lung fields, heart, ribs, clavicles, noise); about 22% carry one to\n"
        "three pneumothorax-like regions along a lung edge: a darker band without lung markings bounded by a\n"
        "thin pleural line. Everything is a pure function of --seed."};
    int rc = pn_cli_parse_ranged(argc, argv, opts, ranges, &help);
    if (rc) return rc < 0 ? 0 : rc;
    threads = pn_cap_threads("--threads", threads);
    pn_status checked = pn_check_out_dir("--out", out, force, NULL, 0);
    if (checked != PN_OK) return pn_cli_exit("synth", checked);
    if (n_test < 0) { /* the default: SIIM stage 2's test/train ratio, at least one image */
        n_test = (int)((long long)n * 3205 / 12047);
        if (n_test == 0) n_test = 1;
    }
    pn_synth_opts o = {.out_dir = out,
                       .n_train = n,
                       .n_test = n_test,
                       .size = size,
                       .seed = (uint64_t)(uint32_t)seed,
                       .pos_rate = pos_rate,
                       .look = {(float)contrast, (float)depth},
                       .jpeg_quality = uncompressed ? 0 : quality,
                       .threads = threads,
                       .force = force,
                       .progress = true};
    if (!uncompressed && (quality < 1 || quality > 100)) {
        fprintf(stderr, "pneumoseg synth: --quality %d (expected 1..100)\n", quality);
        return 2;
    }
    double t0 = pn_now();
    int64_t pos = 0;
    if (pn_synth_write(&o, &pos) != PN_OK) return pn_cli_fail("synth");
    double dt = pn_now() - t0;
    printf("synth: %d train images (%lld positive), %d test images at %dx%d in %.1f s (%.1f images/s) -> %s\n", n,
           (long long)pos, n_test, size, size, dt, (n + n_test) / (dt > 0 ? dt : 1e-9), out);
    return 0;
}
