/* cmd_eval: scores weights on a fold (Kaggle score, dice on positives, accuracy on empties, best triplet),
 * or a submission CSV against a truth CSV at full resolution. */
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
#include "fold_split.h"
#include "triplet_grid.h"
#include "validate.h"
#include "files.h"
#include "core/metrics.h"
#include "core/postprocess.h"
#include "data/csv.h"
#include "data/image_limit.h"
#include "data/png.h"
#include "data/rle.h"
#include "int8_file.h"
#include "weights.h"

typedef struct eval_args {
    const char *weights, *data, *folds, *tta, *tops, *areas, *bottoms, *norm, *loss, *submission, *truth, *save_masks;
    pn_compute_opts compute;
    pn_arch_opts arch;
    int fold, size, batch, loader_threads, width, out_size;
    double max_image_mb;
    bool force;
} eval_args;

static pn_status parse_w(const char *text, double w[3]) {
    int used = 0;
    if (sscanf(text, "bce=%lf,dice=%lf,focal=%lf%n", &w[0], &w[1], &w[2], &used) != 3 || text[used] || w[0] < 0 ||
        w[1] < 0 || w[2] < 0 || !isfinite(w[0] + w[1] + w[2]))
        return pn_error(PN_ERR_USAGE, "--loss: expected bce=B,dice=D,focal=F with weights >= 0, got '%s'", text);
    return PN_OK;
}

/* Prints the grid (min areas in 1024-pixels), the best triplet as predict --triplet takes it, and the baseline. */
static void print_result(const eval_args *a, const pn_run_settings *rs, const pn_run_grid *grid,
                         const pn_val_result *v) {
    char text[64];
    printf("eval %s fold %d: %lld images (%lld with pneumothorax) at %d, tta %s, input normalisation %s\n", a->weights,
           a->fold, (long long)v->images, (long long)v->positives, rs->size, a->tta, rs->norm);
    printf("triplet (top, min_area in 1024-pixels, bottom)   kaggle   dice+    empty-acc\n");
    int n = grid->g.n_top * grid->g.n_area * grid->g.n_bottom;
    for (int i = 0; i < n; i++) {
        pn_triplet t = pn_tool_grid_triplet(grid, i);
        double sc, d, e;
        pn_grid_means(&grid->g, i, &sc, &d, &e);
        printf("%-24s%s                        %.4f   %.4f   %.4f\n", pn_triplet_text(&t, text, sizeof text),
               i == v->best_index ? " *" : "  ", sc, d, e);
    }
    printf("val loss %.4f\nkaggle %.4f\ndice_pos %.4f\nempty_acc %.4f\n", v->loss, v->score, v->pos_dice, v->empty_acc);
    printf(
        "best_triplet %s   (top,min_area,bottom; min_area in pixels of a 1024 image, as predict --triplet takes it)\n",
        pn_triplet_text(&v->best_1024, text, sizeof text));
    /* the all-empty baseline: every image predicted empty scores 1 on empties, 0 on positives */
    printf("all_empty_baseline %.4f\n", v->images ? (double)(v->images - v->positives) / (double)v->images : 0.0);
}

/* --save-masks: the validation images' masks under the best triplet, as predict writes them (the rule at the working
 * size, resized to --out-size): a second pass over the fold. */
static pn_status save_masks(const eval_args *a, pn_unet *m, const pn_loader_config *cfg_in, bool tta,
                            const pn_triplet *best, int s) {
    pn_loader_config cfg = *cfg_in;
    cfg.sampler = PN_SAMPLER_SEQUENTIAL;
    PN_TRY(pn_mkdirs(a->save_masks));
    pn_loader_t *ld = NULL;
    PN_TRY(pn_loader_create(&cfg, &ld));
    int n = cfg.batch_size, os = a->out_size;
    int64_t px = (int64_t)s * s;
    float *input = calloc((size_t)(3 * n * px), sizeof(float)), *scratch = malloc((size_t)(3 * n * px) * sizeof(float));
    float *probs = malloc((size_t)(n * px) * sizeof(float));
    uint8_t *mask = malloc((size_t)px), *big = malloc((size_t)os * os);
    pn_status st = input && scratch && probs && mask && big ? pn_loader_start_epoch(ld, 0)
                                                            : pn_error(PN_ERR_NOMEM, "out of memory");
    while (st == PN_OK) {
        pn_batch b;
        bool done;
        st = pn_loader_next(ld, &b, &done);
        if (st != PN_OK || done) break;
        memset(input, 0, (size_t)(3 * n * px) * sizeof *input);
        memcpy(input, b.image, (size_t)(3 * b.n * px) * sizeof *input);
        st = pn_tool_predict_batch(m, input, n, s, tta, probs, NULL, scratch);
        for (int i = 0; st == PN_OK && i < b.n; i++) {
            char path[4400];
            pn_pp_triplet(probs + i * px, s, s, best->top, best->min_area, best->bottom, 0, mask);
            pn_pp_upscale_mask(mask, s, s, big, os, os);
            snprintf(path, sizeof path, "%s/%s.png", a->save_masks, cfg.ids[b.ids[i]]);
            st = pn_png_write(path, os, os, 1, 8, big);
        }
    }
    pn_loader_destroy(ld);
    free(input), free(scratch), free(probs), free(mask), free(big);
    if (st == PN_OK) pn_log_info("wrote the masks of the best triplet to %s (%dx%d PNGs)", a->save_masks, os, os);
    return st;
}

static pn_status eval_fold(const eval_args *a) {
    bool tta = false;
    if (!strcmp(a->tta, "hflip"))
        tta = true;
    else if (strcmp(a->tta, "none"))
        return pn_error(PN_ERR_USAGE, "--tta must be none or hflip, got '%s'", a->tta);
    if (!a->weights || !a->data || !a->folds)
        return pn_error(PN_ERR_USAGE, "--weights, --data and --folds are needed (or --submission with --truth)");
    PN_TRY(pn_check_model_flags(a->arch.encoder, a->arch.decoder, a->arch.attention, a->compute.conv_algo));
    PN_TRY(pn_check_precision(a->compute.precision));
    double w[3];
    PN_TRY(parse_w(a->loss, w));
    pn_run_grid grid;
    PN_TRY(pn_tool_grid(a->tops, a->areas, a->bottoms, 1024, &grid)); /* the lists checked before any file is read */
    pn_run_settings rs;
    PN_TRY(pn_tool_settings(&a->weights, 1, a->size, a->norm, NULL, false, &rs));
    PN_TRY(pn_tool_grid(a->tops, a->areas, a->bottoms, rs.size, &grid));
    char img[4096], msk[4096];
    snprintf(img, sizeof img, "%s/train", a->data);
    snprintf(msk, sizeof msk, "%s/mask", a->data);
    /* the image and mask folders too: masks written there would replace the files of the same name */
    const pn_named_path inputs[] = {{"--weights", a->weights},
                                    {"--data", a->data},
                                    {"--folds", a->folds},
                                    {"--data (its train/)", img},
                                    {"--data (its mask/)", msk}};
    PN_TRY(pn_check_out_dir("--save-masks", a->save_masks, a->force, inputs, 5));
    pn_split split;
    PN_TRY(pn_split_read(a->folds, a->fold, &split));
    pn_loader_config cfg = {.image_dir = img,
                            .mask_dir = msk,
                            .ids = (const char *const *)split.val_ids,
                            .has_mask = split.val_pos,
                            .n_ids = split.n_val,
                            .batch_size = a->batch,
                            .size = rs.size,
                            .seed = 0,
                            .threads = pn_cap_threads("--loader-threads", a->loader_threads)};
    pn_backend *be = NULL;
    pn_unet *m = NULL;
    pn_val_result v;
    pn_status st = pn_split_check_files(&split, a->data, false);
    if (st == PN_OK) st = pn_tool_setup_backend(&a->compute, &be);
    bool int8 = false;
    if (st == PN_OK) st = pn_int8_apply(be, a->weights, &int8);
    if (st == PN_OK) st = pn_tool_load_model(&a->arch, a->weights, be, &m);
    if (st == PN_OK) st = pn_tool_settings_from_model(&rs, m, a->weights);
    if (st == PN_OK) st = pn_norm_parse(rs.norm, &cfg.norm);
    if (st == PN_OK) st = pn_tool_validate(m, &cfg, tta, w, true, &grid, &v);
    if (be) pn_tool_conv_algo_done(be);
    if (st == PN_OK) print_result(a, &rs, &grid, &v);
    if (st == PN_OK && a->save_masks) st = save_masks(a, m, &cfg, tta, &v.best, rs.size);
    pn_unet_free(m);
    if (be) pn_backend_close(be);
    pn_split_free(&split);
    return st;
}

/* A run-length CSV (ImageId,EncodedPixels) with its rows indexed by id: masks are decoded one image at a time, so
 * memory stays at two masks whatever the number of rows. */
typedef struct rle_table {
    pn_csv csv;
    int ci, ce;
    int *order; /* row numbers sorted by ImageId (then row) */
    const char *path;
} rle_table;

static const rle_table *sort_table; /* qsort has no context argument */

static int cmp_rows(const void *a, const void *b) {
    int ra = *(const int *)a, rb = *(const int *)b;
    int c = strcmp(pn_csv_get(&sort_table->csv, ra, sort_table->ci), pn_csv_get(&sort_table->csv, rb, sort_table->ci));
    return c ? c : (ra > rb) - (ra < rb);
}

static pn_status table_read(const char *path, rle_table *t) {
    memset(t, 0, sizeof *t);
    t->path = path;
    PN_TRY(pn_csv_read(path, &t->csv));
    t->ci = pn_csv_column(&t->csv, "ImageId");
    t->ce = pn_csv_column(&t->csv, "EncodedPixels");
    if (t->ci < 0 || t->ce < 0) return pn_error(PN_ERR_FORMAT, "%s: expected the columns ImageId,EncodedPixels", path);
    t->order = malloc(((size_t)t->csv.nrows + 1) * sizeof *t->order);
    if (!t->order) return pn_error(PN_ERR_NOMEM, "out of memory");
    for (int r = 0; r < t->csv.nrows; r++) t->order[r] = r;
    sort_table = t;
    qsort(t->order, (size_t)t->csv.nrows, sizeof *t->order, cmp_rows);
    return PN_OK;
}

static void table_free(rle_table *t) {
    pn_csv_free(&t->csv);
    free(t->order);
}

static const char *table_id(const rle_table *t, int k) { return pn_csv_get(&t->csv, t->order[k], t->ci); }

/* The first index in the sorted order whose id is `id`, or -1. */
static int table_find(const rle_table *t, const char *id) {
    int lo = 0, hi = t->csv.nrows;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (strcmp(table_id(t, mid), id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < t->csv.nrows && !strcmp(table_id(t, lo), id) ? lo : -1;
}

/* The union of the rows of the id at sorted index k into mask; *next = the index after them. */
static pn_status table_mask(const rle_table *t, int k, int width, uint8_t *mask, int *next) {
    memset(mask, 0, (size_t)width * width);
    const char *id = table_id(t, k);
    for (; k < t->csv.nrows && !strcmp(table_id(t, k), id); k++) {
        char what[512];
        int r = t->order[k];
        snprintf(what, sizeof what, "%s line %d", t->path, t->csv.lines[r]);
        PN_TRY(pn_rle_decode(pn_csv_get(&t->csv, r, t->ce), width, width, PN_RLE_RELATIVE, mask, what));
    }
    *next = k;
    return PN_OK;
}

static pn_status eval_submission(const eval_args *a) {
    if (!a->truth) return pn_error(PN_ERR_USAGE, "--submission needs --truth (a CSV of ImageId,EncodedPixels)");
    rle_table truth, sub;
    memset(&truth, 0, sizeof truth);
    memset(&sub, 0, sizeof sub);
    int64_t px = (int64_t)a->width * a->width;
    uint8_t *tm = malloc((size_t)px), *sm = malloc((size_t)px);
    pn_status st = tm && sm ? table_read(a->truth, &truth) : pn_error(PN_ERR_NOMEM, "out of memory");
    if (st == PN_OK) st = table_read(a->submission, &sub);
    double sum = 0, pos_sum = 0;
    int64_t n = 0, pos = 0, empty_ok = 0, empties = 0;
    for (int k = 0, next; st == PN_OK && k < truth.csv.nrows; k = next) {
        const char *id = table_id(&truth, k);
        int j = table_find(&sub, id), unused;
        if (j < 0) {
            st = pn_error(PN_ERR_FORMAT, "%s: no row for ImageId %s of %s", a->submission, id, a->truth);
            break;
        }
        st = table_mask(&truth, k, a->width, tm, &next);
        if (st == PN_OK) st = table_mask(&sub, j, a->width, sm, &unused);
        if (st != PN_OK) break;
        double s = pn_kaggle_dice(sm, tm, px);
        bool positive = false;
        for (int64_t p = 0; p < px && !positive; p++) positive = tm[p] != 0;
        sum += s;
        n++;
        if (positive)
            pos_sum += s, pos++;
        else
            empties++, empty_ok += s == 1.0;
    }
    if (st == PN_OK) {
        printf("submission %s vs %s: %lld images (%lld with pneumothorax) at %dx%d\n", a->submission, a->truth,
               (long long)n, (long long)pos, a->width, a->width);
        printf("kaggle %.4f\ndice_pos %.4f\nempty_acc %.4f\nall_empty_baseline %.4f\n", n ? sum / (double)n : 0,
               pos ? pos_sum / (double)pos : 0, empties ? (double)empty_ok / (double)empties : 0,
               n ? (double)empties / (double)n : 0);
    }
    table_free(&truth);
    table_free(&sub);
    free(tm), free(sm);
    return st;
}

int pn_cmd_eval(int argc, char **argv) {
    eval_args a = {.tta = "none",
                   .compute = {.backend = "auto", .precision = "fp32", .conv_algo = "auto"},
                   .loss = "bce=3,dice=1,focal=4",
                   .batch = 8,
                   .loader_threads = 2,
                   .width = 1024,
                   .out_size = 1024,
                   .max_image_mb = PN_IMAGE_LIMIT_DEFAULT_MB};
    const pn_opt opts[] = {
        {"weights", PN_OPT_STR, &a.weights, "W", "model weights (safetensors with smp names, or a whole model's .pth)",
         false},
        {"data", PN_OPT_STR, &a.data, "DIR", "prepared data (DIR/train, DIR/mask)", false},
        {"folds", PN_OPT_STR, &a.folds, "CSV", "folds.csv from pneumoseg folds", false},
        {"fold", PN_OPT_INT, &a.fold, "K", "the fold to evaluate (default 0)", false},
        {"size", PN_OPT_INT, &a.size, "S",
         "evaluation side, a multiple of 32 (default: the size W was trained at, "
         "else 256)",
         false},
        {"batch", PN_OPT_INT, &a.batch, "N", "batch size (default 8)", false},
        {"tta", PN_OPT_STR, &a.tta, "MODE", "none | hflip (default none)", false},
        {"tops", PN_OPT_STR, &a.tops, "LIST", "triplet grid tops in (0, 1] (default 0.6,0.75)", false},
        {"areas", PN_OPT_STR, &a.areas, "LIST", "triplet grid min areas in 1024-pixels (default 1000,2000,3000)",
         false},
        {"bottoms", PN_OPT_STR, &a.bottoms, "LIST", "triplet grid bottoms in (0, 1] (default 0.3,0.4)", false},
        {"loss", PN_OPT_STR, &a.loss, "SPEC", "ComboLoss weights for the val loss (default bce=3,dice=1,focal=4)",
         false},
        {"norm", PN_OPT_STR, &a.norm, "MODE",
         "input scaling: imagenet | unit | none (default: what W was trained with, else imagenet)", false},
        PN_ARCH_OPTIONS_OF_WEIGHTS(&a.arch),
        PN_COMPUTE_OPTIONS(&a.compute, "auto"),
        {"loader-threads", PN_OPT_INT, &a.loader_threads, "N", "loader threads (default 2)", false},
        {"save-masks", PN_OPT_STR, &a.save_masks, "DIR",
         "write the fold's masks under the best triplet (as predict "
         "--save-masks does)",
         false},
        {"out-size", PN_OPT_INT, &a.out_size, "S", "side of the --save-masks PNGs (default 1024)", false},
        {"force", PN_OPT_FLAG, &a.force, NULL, "write --save-masks into a folder that is not empty", false},
        {"max-image-mb", PN_OPT_FLOAT, &a.max_image_mb, "MB", "largest decoded image accepted (default 256)", false},
        {"submission", PN_OPT_STR, &a.submission, "CSV", "instead: score this submission against --truth", false},
        {"truth", PN_OPT_STR, &a.truth, "CSV", "ImageId,EncodedPixels truth (e.g. synth's test-rle.csv)", false},
        {"width", PN_OPT_INT, &a.width, "W", "mask side of --submission/--truth RLE (default 1024)", false},
        {NULL, 0, NULL, NULL, NULL, false},
    };
    const pn_opt_range ranges[] = {
        PN_AT_LEAST("fold", 0),        PN_AT_LEAST("size", 32),          PN_AT_LEAST("batch", 1),
        PN_AT_LEAST("threads", 0),     PN_AT_LEAST("loader-threads", 1), PN_BETWEEN("out-size", 1, 16384),
        PN_BETWEEN("width", 1, 16384), PN_AT_LEAST("max-image-mb", 1),   {NULL, 0, 0, false, false},
    };
    const pn_command_help help = {
        "pneumoseg eval --weights W --data D --folds F [--fold K] [--tta hflip]\n"
        "       pneumoseg eval --submission S.csv --truth T.csv",
        "Scores weights on fold K: for every triplet of the grid (top, min_area, bottom) the Kaggle score (mean\n"
        "per-image dice, 1 when truth and prediction are both empty), dice on images with pneumothorax and\n"
        "accuracy on empty images; prints the grid, the best triplet, and the all-empty baseline's score. Min areas\n"
        "are in pixels of a 1024 image everywhere, so best_triplet goes to predict --triplet as printed. Size,\n"
        "normalisation and encoder default to what W records (pneumoseg train writes them into every checkpoint).\n"
        "With --submission, scores a submission's masks against a truth CSV at full resolution instead."};
    int rc = pn_cli_parse_ranged(argc, argv, opts, ranges, &help);
    if (rc) return rc < 0 ? 0 : rc;
    pn_image_set_limit_mb(a.max_image_mb);
    pn_status st = a.submission ? eval_submission(&a) : eval_fold(&a);
    return pn_cli_exit("eval", st);
}
