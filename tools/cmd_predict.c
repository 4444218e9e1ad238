/* cmd_predict: PNG or DICOM images -> Kaggle submission: checkpoint ensemble, hflip TTA, triplet rule,
 * small-region removal, bilinear resize to 1024, relative column-major RLE; optional probabilities and overlays. */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "cli.h"
#include "backend_setup.h"
#include "model_load.h"
#include "run_settings.h"
#include "triplet_grid.h"
#include "validate.h"
#include "files.h"
#include "core/atomic_file.h"
#include "core/postprocess.h"
#include "data/augment.h"
#include "data/csv.h"
#include "data/dicom.h"
#include "data/image_limit.h"
#include "data/png.h"
#include "data/prepare.h"
#include "data/rle.h"
#include "int8_file.h"
#include "weights.h"

typedef struct predict_args {
    pn_str_list weights;
    const char *images, *dicom, *out, *sample, *tta, *triplet, *save_probs, *save_masks, *overlays, *norm;
    pn_compute_opts compute;
    pn_arch_opts arch;
    int size, batch, out_size, n_overlays;
    double min_region, max_image_mb;
    bool force;
} predict_args;

typedef struct predictor {
    const predict_args *a;
    pn_run_settings rs; /* size, normalisation, triplet: given, else from the weights file, else the defaults */
    pn_backend *be;
    pn_unet **models;
    int n_models;
    bool tta;
    pn_norm_mode norm;
    float top, bottom;
    int64_t min_area;
    double min_region;
    char **files;
    int n_files;
    char **ids; /* per file */
    char **rle; /* per file, malloc'ed */
} predictor;

/* "<dir>/<id>.<ext>" -> id */
static char *id_of(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char *id = pn_strdup(base);
    if (!id) return NULL;
    char *dot = strrchr(id, '.');
    if (dot) *dot = 0;
    return id;
}

/* Reads one image as 8-bit grey at size x size (the prepare step's resize). */
static pn_status read_image(const predictor *p, const char *path, uint8_t *out) {
    int s = p->rs.size;
    if (p->a->dicom) {
        pn_dicom_image img;
        PN_TRY(pn_dicom_read(path, 8, &img, NULL));
        pn_status st = pn_prepare_resize(img.pixels, img.width, img.height, out, s, s, false);
        pn_dicom_image_free(&img);
        return st;
    }
    return pn_prepare_read_png(path, s, out);
}

static pn_status write_overlay(const char *dir, const char *id, const uint8_t *grey, const uint8_t *mask, int s) {
    uint8_t *rgb = malloc((size_t)s * s * 3);
    if (!rgb) return pn_error(PN_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < (int64_t)s * s; i++) {
        uint8_t g = grey[i];
        rgb[3 * i] = mask[i] ? (uint8_t)(g / 2 + 127) : g;
        rgb[3 * i + 1] = mask[i] ? (uint8_t)(g / 2) : g;
        rgb[3 * i + 2] = mask[i] ? (uint8_t)(g / 2) : g;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.png", dir, id);
    pn_status st = pn_png_write(path, s, s, 3, 8, rgb);
    free(rgb);
    return st;
}

/* Predicts one batch of files [first, first + n) and stores their RLE strings. */
static pn_status predict_batch(predictor *p, int first, int n, float *input, float *probs, float *sum, float *scratch,
                               uint8_t *greys, uint8_t *mask, uint8_t *big, int *overlays_left) {
    const predict_args *a = p->a;
    int s = p->rs.size, B = a->batch;
    int64_t px = (int64_t)s * s;
    memset(input, 0, (size_t)(3 * B * px) * sizeof *input);
    for (int i = 0; i < n; i++) {
        PN_TRY(read_image(p, p->files[first + i], greys + i * px));
        pn_aug_normalize(greys + i * px, s, s, p->norm, input + 3 * i * px);
    }
    memset(sum, 0, (size_t)(B * px) * sizeof *sum);
    for (int k = 0; k < p->n_models; k++) {
        PN_TRY(pn_tool_predict_batch(p->models[k], input, B, s, p->tta, probs, NULL, scratch));
        for (int64_t i = 0; i < B * px; i++) sum[i] += probs[i] / (float)p->n_models;
    }
    int os = a->out_size;
    for (int i = 0; i < n; i++) {
        int f = first + i;
        pn_pp_triplet(sum + i * px, s, s, p->top, p->min_area, p->bottom, p->min_region, mask);
        pn_pp_upscale_mask(mask, s, s, big, os, os);
        PN_TRY(pn_rle_encode(big, os, os, &p->rle[f]));
        char path[4096];
        if (a->save_masks) {
            snprintf(path, sizeof path, "%s/%s.png", a->save_masks, p->ids[f]);
            PN_TRY(pn_png_write(path, os, os, 1, 8, big));
        }
        if (a->save_probs) {
            for (int64_t j = 0; j < px; j++) mask[j] = (uint8_t)lrintf(sum[i * px + j] * 255.0f);
            snprintf(path, sizeof path, "%s/%s.png", a->save_probs, p->ids[f]);
            PN_TRY(pn_png_write(path, s, s, 1, 8, mask));
            pn_pp_triplet(sum + i * px, s, s, p->top, p->min_area, p->bottom, p->min_region, mask);
        }
        if (a->overlays && *overlays_left > 0) {
            PN_TRY(write_overlay(a->overlays, p->ids[f], greys + i * px, mask, s));
            (*overlays_left)--;
        }
    }
    return PN_OK;
}

static pn_status predict_all(predictor *p) {
    const predict_args *a = p->a;
    int s = p->rs.size, B = a->batch;
    int64_t px = (int64_t)s * s;
    float *input = malloc((size_t)(3 * B * px) * sizeof(float)),
          *scratch = malloc((size_t)(3 * B * px) * sizeof(float));
    float *probs = malloc((size_t)(B * px) * sizeof(float)), *sum = malloc((size_t)(B * px) * sizeof(float));
    uint8_t *greys = malloc((size_t)(B * px)), *mask = malloc((size_t)px);
    uint8_t *big = malloc((size_t)a->out_size * a->out_size);
    pn_status st =
        input && scratch && probs && sum && greys && mask && big ? PN_OK : pn_error(PN_ERR_NOMEM, "out of memory");
    pn_progress bar;
    pn_progress_begin(&bar, "predict", p->n_files);
    int overlays_left = a->n_overlays;
    for (int f = 0; st == PN_OK && f < p->n_files; f += B) {
        int n = p->n_files - f < B ? p->n_files - f : B;
        st = predict_batch(p, f, n, input, probs, sum, scratch, greys, mask, big, &overlays_left);
        pn_progress_step(&bar, n, NULL);
    }
    pn_progress_end(&bar);
    free(input);
    free(scratch);
    free(probs);
    free(sum);
    free(greys);
    free(mask);
    free(big);
    return st;
}

static int find_id(const predictor *p, const char *id) {
    for (int i = 0; i < p->n_files; i++)
        if (!strcmp(p->ids[i], id)) return i;
    return -1;
}

static pn_status write_submission(const predictor *p) {
    const predict_args *a = p->a;
    pn_csv sample = {0};
    int *order = malloc(((size_t)p->n_files + 1) * sizeof *order), n = 0;
    if (!order) return pn_error(PN_ERR_NOMEM, "out of memory");
    pn_status st = PN_OK;
    if (a->sample) {
        st = pn_csv_read(a->sample, &sample);
        int ci = st == PN_OK ? pn_csv_column(&sample, "ImageId") : 0;
        if (st == PN_OK && ci < 0) st = pn_error(PN_ERR_FORMAT, "%s: no ImageId column", a->sample);
        for (int r = 0; st == PN_OK && r < sample.nrows; r++) {
            const char *id = pn_csv_get(&sample, r, ci);
            int k = find_id(p, id);
            if (k < 0) st = pn_error(PN_ERR_IO, "%s line %d: no image for ImageId %s", a->sample, sample.lines[r], id);
            bool seen = false;
            for (int j = 0; j < n && !seen; j++) seen = order[j] == k;
            if (st == PN_OK && !seen) order[n++] = k;
        }
        if (st == PN_OK && n < p->n_files)
            pn_log_warn("%d images are not in %s and are left out", p->n_files - n, a->sample);
    } else {
        for (int i = 0; i < p->n_files; i++) order[n++] = i;
    }
    pn_atomic_file af;
    if (st == PN_OK) st = pn_atomic_open(&af, a->out);
    if (st == PN_OK) {
        fputs("ImageId,EncodedPixels\n", af.f);
        int64_t positive = 0;
        for (int i = 0; i < n; i++) {
            fprintf(af.f, "%s,%s\n", p->ids[order[i]], p->rle[order[i]]);
            positive += strcmp(p->rle[order[i]], "-1") != 0;
        }
        st = pn_atomic_commit(&af);
        char text[64];
        if (st == PN_OK)
            pn_log_info(
                "wrote %s: %d rows, %lld with a mask (triplet %s in 1024-pixels, at %d, input normalisation %s)",
                a->out, n, (long long)positive, pn_triplet_text(&p->rs.triplet, text, sizeof text), p->rs.size,
                p->rs.norm);
    }
    if (a->sample) pn_csv_free(&sample);
    free(order);
    return st;
}

/* Every output is checked before the work: never an input (the image folder above all: masks there would replace
 * the images of the same name), never two outputs in one place, nothing overwritten without --force. */
static pn_status check_outputs(const predict_args *a) {
    pn_named_path inputs[PN_MAX_LIST + 3];
    int n = 0;
    inputs[n++] = (pn_named_path){"--images", a->images};
    inputs[n++] = (pn_named_path){"--dicom", a->dicom};
    inputs[n++] = (pn_named_path){"--sample-submission", a->sample};
    for (int k = 0; k < a->weights.count; k++) inputs[n++] = (pn_named_path){"--weights", a->weights.items[k]};
    const pn_named_path outputs[] = {{"--out", a->out},
                                     {"--save-probs", a->save_probs},
                                     {"--save-masks", a->save_masks},
                                     {"--overlays", a->overlays}};
    PN_TRY(pn_check_distinct_outputs(outputs, 4));
    PN_TRY(pn_check_out_file("--out", a->out, a->force, inputs, n));
    PN_TRY(pn_check_out_dir("--save-probs", a->save_probs, a->force, inputs, n));
    PN_TRY(pn_check_out_dir("--save-masks", a->save_masks, a->force, inputs, n));
    return pn_check_out_dir("--overlays", a->overlays, a->force, inputs, n);
}

static pn_status setup(predictor *p) {
    const predict_args *a = p->a;
    if (!!a->images == !!a->dicom) return pn_error(PN_ERR_USAGE, "give exactly one of --images DIR or --dicom DIR");
    if (!strcmp(a->tta, "hflip"))
        p->tta = true;
    else if (strcmp(a->tta, "none"))
        return pn_error(PN_ERR_USAGE, "--tta must be none or hflip, got '%s'", a->tta);
    PN_TRY(pn_check_model_flags(a->arch.encoder, a->arch.decoder, a->arch.attention, a->compute.conv_algo));
    PN_TRY(pn_check_precision(a->compute.precision));
    PN_TRY(pn_tool_settings(a->weights.items, a->weights.count, a->size, a->norm, a->triplet, true, &p->rs));
    int s = p->rs.size;
    p->top = p->rs.triplet.top;
    p->min_area = pn_area_at_size(p->rs.triplet.min_area, s);
    p->bottom = p->rs.triplet.bottom;
    p->min_region = a->min_region * (double)s * s / (1024.0 * 1024.0);
    PN_TRY(check_outputs(a));
    PN_TRY(pn_list_files(a->images ? a->images : a->dicom, a->images ? ".png" : ".dcm", a->dicom != NULL, &p->files,
                         &p->n_files));
    if (p->n_files == 0)
        return pn_error(PN_ERR_IO, "%s: no %s files", a->images ? a->images : a->dicom, a->images ? ".png" : ".dcm");
    p->ids = calloc((size_t)p->n_files, sizeof *p->ids);
    p->rle = calloc((size_t)p->n_files, sizeof *p->rle);
    if (!p->ids || !p->rle) return pn_error(PN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->n_files; i++) {
        if (!(p->ids[i] = id_of(p->files[i]))) return pn_error(PN_ERR_NOMEM, "out of memory");
        PN_TRY(pn_check_csv_id(p->ids[i], p->files[i])); /* the id goes into a submission row as it is */
    }
    if (a->save_probs) PN_TRY(pn_mkdirs(a->save_probs));
    if (a->overlays) PN_TRY(pn_mkdirs(a->overlays));
    if (a->save_masks) PN_TRY(pn_mkdirs(a->save_masks));
    PN_TRY(pn_tool_setup_backend(&a->compute, &p->be));
    p->models = calloc((size_t)a->weights.count, sizeof *p->models);
    if (!p->models) return pn_error(PN_ERR_NOMEM, "out of memory");
    for (int k = 0; k < a->weights.count; k++) {
        bool int8 = false; /* an int8 model's ranges hold for the nodes planned next: this model's */
        PN_TRY(pn_int8_apply(p->be, a->weights.items[k], &int8));
        PN_TRY(pn_tool_load_model(&a->arch, a->weights.items[k], p->be, &p->models[k]));
        p->n_models++;
        PN_TRY(pn_tool_settings_from_model(&p->rs, p->models[k], a->weights.items[k]));
        PN_TRY(pn_unet_plan(p->models[k], a->batch, s, s, PN_UNET_EVAL));
    }
    pn_tool_conv_algo_done(p->be);
    PN_TRY(pn_norm_parse(p->rs.norm, &p->norm));
    char text[64];
    pn_log_info("%d images, %d checkpoint(s), size %d, tta %s, triplet %s (min area in 1024-pixels), input "
                "normalisation %s",
                p->n_files, p->n_models, s, a->tta, pn_triplet_text(&p->rs.triplet, text, sizeof text), p->rs.norm);
    return PN_OK;
}

static void cleanup(predictor *p) {
    for (int k = 0; k < p->n_models; k++) pn_unet_free(p->models[k]);
    free(p->models);
    if (p->be) pn_backend_close(p->be);
    for (int i = 0; i < p->n_files; i++) {
        if (p->ids) free(p->ids[i]);
        if (p->rle) free(p->rle[i]);
    }
    free(p->ids);
    free(p->rle);
    pn_free_list(p->files, p->n_files);
}

int pn_cmd_predict(int argc, char **argv) {
    predict_args a = {.tta = "none",
                      .compute = {.backend = "auto", .precision = "fp32", .conv_algo = "auto"},
                      .batch = 4,
                      .out_size = 1024,
                      .n_overlays = 8,
                      .max_image_mb = PN_IMAGE_LIMIT_DEFAULT_MB};
    const pn_opt opts[] = {
        {"weights", PN_OPT_STRS, &a.weights, "W..",
         "one or more checkpoints (safetensors or .pth); probabilities are averaged", true},
        {"images", PN_OPT_STR, &a.images, "DIR", "PNG images <ImageId>.png (e.g. prepared DIR/test)", false},
        {"dicom", PN_OPT_STR, &a.dicom, "DIR", "DICOM files, searched recursively (no prepare step needed)", false},
        {"out", PN_OPT_STR, &a.out, "CSV", "submission: ImageId,EncodedPixels", true},
        {"sample-submission", PN_OPT_STR, &a.sample, "CSV", "write rows in this file's ImageId order", false},
        {"size", PN_OPT_INT, &a.size, "S",
         "model input side, a multiple of 32 (default: the size the first W was "
         "trained at, else 256)",
         false},
        {"batch", PN_OPT_INT, &a.batch, "N", "batch size (default 4)", false},
        {"tta", PN_OPT_STR, &a.tta, "MODE", "none | hflip (default none)", false},
        {"triplet", PN_OPT_STR, &a.triplet, "T,A,B",
         "top, min_area (pixels of a 1024 image), bottom, as eval prints "
         "it (default: the first W's, else 0.75,2000,0.3)",
         false},
        {"min-region", PN_OPT_FLOAT, &a.min_region, "PX",
         "drop regions whose contour area (as cv2.contourArea of its outer "
         "border, in 1024-pixels) is not above PX, as the winner's "
         "MIN_CONTOUR_AREA (default 0 = keep all)",
         false},
        {"out-size", PN_OPT_INT, &a.out_size, "S", "mask side of the RLE (default 1024)", false},
        {"save-probs", PN_OPT_STR, &a.save_probs, "DIR", "write the probability maps as 8-bit PNGs", false},
        {"save-masks", PN_OPT_STR, &a.save_masks, "DIR", "write the submitted masks (out-size PNGs, 0/255)", false},
        {"overlays", PN_OPT_STR, &a.overlays, "DIR", "write image + predicted mask overlays (red)", false},
        {"overlays-n", PN_OPT_INT, &a.n_overlays, "N", "how many overlays (default 8)", false},
        {"norm", PN_OPT_STR, &a.norm, "MODE",
         "input scaling: imagenet | unit | none (default: the first W's, else imagenet)", false},
        PN_ARCH_OPTIONS_OF_WEIGHTS(&a.arch),
        PN_COMPUTE_OPTIONS(&a.compute, "auto"),
        {"max-image-mb", PN_OPT_FLOAT, &a.max_image_mb, "MB", "largest decoded image accepted (default 256)", false},
        {"force", PN_OPT_FLAG, &a.force, NULL, "overwrite --out and write into output folders that are not empty",
         false},
        {NULL, 0, NULL, NULL, NULL, false},
    };
    const pn_opt_range ranges[] = {
        PN_AT_LEAST("size", 32),          PN_AT_LEAST("batch", 1),      PN_AT_LEAST("min-region", 0),
        PN_BETWEEN("out-size", 1, 16384), PN_AT_LEAST("overlays-n", 0), PN_AT_LEAST("threads", 0),
        PN_AT_LEAST("max-image-mb", 1),   {NULL, 0, 0, false, false},
    };
    const pn_command_help help = {
        "pneumoseg predict --weights W1 [W2 ...] (--images DIR | --dicom DIR) --out submission.csv [options]",
        "Predicts every image with each checkpoint (and its horizontal flip with --tta hflip), averages the\n"
        "probabilities, applies the triplet rule (empty unless min_area pixels exceed top; else P > bottom),\n"
        "optionally drops small regions, resizes the mask to 1024 (bilinear, > 0.5) and writes relative\n"
        "column-major RLE (-1 for empty) under the header ImageId,EncodedPixels. Size, normalisation, triplet\n"
        "and encoder default to what the first checkpoint records (pneumoseg train writes them); a flag that\n"
        "overrides one says so. Nothing is overwritten without --force, and no output may be an input."};
    int rc = pn_cli_parse_ranged(argc, argv, opts, ranges, &help);
    if (rc) return rc < 0 ? 0 : rc;
    pn_image_set_limit_mb(a.max_image_mb);
    predictor p;
    memset(&p, 0, sizeof p);
    p.a = &a;
    pn_status st = setup(&p);
    if (st == PN_OK) st = predict_all(&p);
    if (st == PN_OK) st = write_submission(&p);
    cleanup(&p);
    return pn_cli_exit("predict", st);
}
