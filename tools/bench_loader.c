/* bench_loader: times the batch loader on a prepared PNG folder, or on synthetic PNGs it writes first. */
#define _XOPEN_SOURCE 700
#include "tools/bench_loader.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/loader.h"
#include "data/png.h"
#include "data/synth.h"
#include "tools/checks.h"
#include "tools/cli.h"

/* Writes n synthetic image/mask PNG pairs at size into dir/train and dir/mask. */
static pn_status write_synthetic(const char *dir, int n, int size, char ids[][32], bool *has_mask) {
    char path[4200];
    snprintf(path, sizeof path, "%s/train", dir);
    if (mkdir(path, 0777) != 0) return pn_error(PN_ERR_IO, "%s: cannot create", path);
    snprintf(path, sizeof path, "%s/mask", dir);
    if (mkdir(path, 0777) != 0) return pn_error(PN_ERR_IO, "%s: cannot create", path);
    size_t px = (size_t)size * size;
    uint8_t *buf = malloc(px * 2);
    if (!buf) return pn_error(PN_ERR_NOMEM, "bench loader: no memory");
    pn_status st = PN_OK;
    for (int i = 0; i < n && st == PN_OK; i++) {
        pn_synth_sample s = {buf, buf + px, {NULL, NULL, NULL}, 0};
        pn_synth_render(1, false, (uint32_t)i, size, 0.22, &PN_SYNTH_LOOK_DEFAULT, &s);
        snprintf(ids[i], 32, "bench%04d", i);
        has_mask[i] = false;
        for (size_t p = 0; p < px && !has_mask[i]; p++) has_mask[i] = s.mask[p] != 0;
        snprintf(path, sizeof path, "%s/train/%s.png", dir, ids[i]);
        st = pn_png_write(path, size, size, 1, 8, s.image);
        snprintf(path, sizeof path, "%s/mask/%s.png", dir, ids[i]);
        if (st == PN_OK) st = pn_png_write(path, size, size, 1, 8, s.mask);
    }
    free(buf);
    return st;
}

/* Lists up to max ids (*.png names without the extension) of dir/train. */
static int list_ids(const char *dir, char ids[][32], int max) {
    char path[4200];
    snprintf(path, sizeof path, "%s/train", dir);
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t len = strlen(e->d_name);
        if (len > 4 && len - 4 < 32 && !strcmp(e->d_name + len - 4, ".png")) {
            memcpy(ids[n], e->d_name, len - 4);
            ids[n][len - 4] = 0;
            n++;
        }
    }
    closedir(d);
    return n;
}

static void remove_synthetic(const char *dir, int n, char ids[][32]) {
    char path[4200];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/train/%s.png", dir, ids[i]);
        unlink(path);
        snprintf(path, sizeof path, "%s/mask/%s.png", dir, ids[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/train", dir);
    rmdir(path);
    snprintf(path, sizeof path, "%s/mask", dir);
    rmdir(path);
    rmdir(dir);
}

int pn_bench_loader(int argc, char **argv) {
    const char *data = NULL, *aug_spec = "blog", *norm_s = "imagenet";
    int size = 512, batch = 8, threads = 2, n = 64, batches = 64;
    const pn_opt opts[] = {
        {"data", PN_OPT_STR, &data, "DIR",
         "a prepared folder with train/ and mask/ PNGs (default: write synthetic ones)", false},
        {"size", PN_OPT_INT, &size, "S", "image side (default 512)", false},
        {"batch", PN_OPT_INT, &batch, "N", "batch size (default 8)", false},
        {"threads", PN_OPT_INT, &threads, "N", "loader worker threads (default 2)", false},
        {"aug", PN_OPT_STR, &aug_spec, "SPEC", "augmentation: none, blog, winner or a spec (default blog)", false},
        {"normalize", PN_OPT_STR, &norm_s, "MODE", "none, unit or imagenet (default imagenet)", false},
        {"n", PN_OPT_INT, &n, "N", "synthetic images to write without --data (default 64)", false},
        {"batches", PN_OPT_INT, &batches, "N", "batches to time (default 64)", false},
        {NULL, 0, NULL, NULL, NULL, false},
    };
    const pn_command_help help = {
        "pneumoseg bench loader [--data DIR] [--size 512] [--batch 8] [--threads 2] [--aug blog]",
        "Times the training loader: PNG decode, augmentation, normalisation into float NCHW batches, on worker\n"
        "threads ahead of a consumer that only takes the batches. Without --data it first writes --n synthetic\n"
        "image/mask pairs at --size into a temporary folder (removed afterwards). Prints images/s."};
    const pn_opt_range ranges[] = {PN_BETWEEN("size", 8, 4096), PN_AT_LEAST("batch", 1),   PN_AT_LEAST("threads", 1),
                                   PN_BETWEEN("n", 1, 100000),  PN_AT_LEAST("batches", 1), {NULL, 0, 0, false, false}};
    int rc = pn_cli_parse_ranged(argc, argv, opts, ranges, &help);
    if (rc) return rc < 0 ? 0 : rc;
    threads = pn_cap_threads("--threads", threads);
    pn_norm_mode norm;
    pn_aug_pipeline *aug = NULL;
    if (pn_norm_parse(norm_s, &norm) != PN_OK || pn_aug_parse(aug_spec, PN_BORDER_CONSTANT, &aug) != PN_OK)
        return pn_cli_exit("bench loader", PN_ERR_USAGE);
    char(*ids)[32] = calloc(100000, 32);
    bool *has_mask = calloc(100000, sizeof(bool));
    const char **id_ptrs = calloc(100000, sizeof(char *));
    char tmpl[4096], dir[4096];
    bool synthetic = data == NULL;
    int count = 0; /* rc is 0 here: the options parsed */
    if (!ids || !has_mask || !id_ptrs) {
        pn_error(PN_ERR_NOMEM, "out of memory");
        rc = pn_cli_fail("bench loader");
    } else if (synthetic) {
        const char *t = getenv("TMPDIR");
        snprintf(tmpl, sizeof tmpl, "%s/pneumoseg-bench-XXXXXX", t && *t ? t : ".");
        if (!mkdtemp(tmpl)) {
            fprintf(stderr, "pneumoseg bench loader: cannot create a folder from %s\n", tmpl);
            rc = 1;
        } else {
            snprintf(dir, sizeof dir, "%s", tmpl);
            double t0 = pn_now();
            if (write_synthetic(dir, n, size, ids, has_mask) != PN_OK) {
                remove_synthetic(dir, n, ids);
                rc = pn_cli_fail("bench loader");
            }
            count = n;
            if (!rc) printf("wrote %d synthetic %dx%d image/mask PNG pairs in %.2f s\n", n, size, size, pn_now() - t0);
        }
    } else {
        snprintf(dir, sizeof dir, "%s", data);
        count = list_ids(dir, ids, 100000);
        if (count <= 0) {
            fprintf(stderr, "pneumoseg bench loader: %s/train has no .png files\n", dir);
            rc = 1;
        }
    }
    if (rc) {
        pn_aug_free(aug);
        free(ids), free(has_mask), free(id_ptrs);
        return rc;
    }
    for (int i = 0; i < count; i++) id_ptrs[i] = ids[i];
    char img_dir[4200], mask_dir[4200];
    snprintf(img_dir, sizeof img_dir, "%s/train", dir);
    snprintf(mask_dir, sizeof mask_dir, "%s/mask", dir);
    pn_loader_config cfg = {.image_dir = img_dir,
                            .mask_dir = mask_dir,
                            .ids = id_ptrs,
                            .has_mask = has_mask,
                            .n_ids = count,
                            .batch_size = batch,
                            .size = size,
                            .aug = aug,
                            .norm = norm,
                            .seed = 1,
                            .threads = threads,
                            .shuffle = true};
    pn_loader_t *ld = NULL;
    pn_status st = pn_loader_create(&cfg, &ld);
    int done_batches = 0;
    int64_t images = 0, warm_images = 0;
    double t_warm = 0, t_end = 0;
    for (uint32_t epoch = 0; st == PN_OK && done_batches < batches + 2; epoch++) {
        st = pn_loader_start_epoch(ld, epoch);
        for (bool done = false; st == PN_OK && done_batches < batches + 2;) {
            pn_batch b;
            st = pn_loader_next(ld, &b, &done);
            if (st != PN_OK || done) break;
            done_batches++;
            images += b.n;
            if (done_batches == 2) t_warm = pn_now(), warm_images = images; /* the ring is filling until here */
        }
    }
    t_end = pn_now();
    pn_loader_destroy(ld);
    if (synthetic) remove_synthetic(dir, n, ids);
    pn_aug_free(aug);
    free(ids), free(has_mask), free(id_ptrs);
    if (st != PN_OK) return pn_cli_fail("bench loader");
    double rate = (images - warm_images) / (t_end - t_warm);
    printf("loader: %.1f images/s (%d batches of %d at %dx%d, aug %s, normalize %s, %d threads)\n", rate, batches,
           batch, size, size, aug_spec, norm_s, threads);
    return 0;
}
