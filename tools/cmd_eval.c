/* cmd_eval: scores weights on a fold (Kaggle score, dice on positives, accuracy on empties, best triplet),
 * or a submission CSV against a truth CSV at full resolution. */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "core/metrics.h"
#include "data/csv.h"
#include "data/rle.h"
#include "int8_file.h"
#include "run_util.h"

typedef struct eval_args {
    const char *weights, *data, *folds, *tta, *tops, *areas, *bottoms, *backend, *encoder, *norm, *loss, *submission,
        *truth, *precision, *conv_algo;
    int fold, size, batch, threads, loader_threads, width;
} eval_args;

static pn_status parse_w(const char *text, double w[3]) {
    if (sscanf(text, "bce=%lf,dice=%lf,focal=%lf", &w[0], &w[1], &w[2]) != 3)
        return pn_error(PN_ERR_ARG, "--loss: expected bce=B,dice=D,focal=F, got '%s'", text);
    return PN_OK;
}

static pn_status eval_fold(const eval_args *a) {
    bool tta = false;
    if (!strcmp(a->tta, "hflip")) tta = true;
    else if (strcmp(a->tta, "none")) return pn_error(PN_ERR_ARG, "--tta must be none or hflip, got '%s'", a->tta);
    if (!a->weights || !a->data || !a->folds)
        return pn_error(PN_ERR_ARG, "--weights, --data and --folds are needed (or --submission with --truth)");
    if (a->size < 32 || a->size % 32) return pn_error(PN_ERR_ARG, "--size must be a multiple of 32");
    double w[3];
    PN_TRY(parse_w(a->loss, w));
    pn_norm_mode norm;
    PN_TRY(pn_norm_parse(a->norm, &norm));
    pn_triplet_grid grid;
    PN_TRY(pn_tool_grid(a->tops, a->areas, a->bottoms, a->size, &grid));
    pn_split split;
    PN_TRY(pn_split_read(a->folds, a->fold, &split));
    char img[4096], msk[4096];
    snprintf(img, sizeof img, "%s/train", a->data);
    snprintf(msk, sizeof msk, "%s/mask", a->data);
    pn_loader_config cfg = {.image_dir = img, .mask_dir = msk, .ids = (const char *const *)split.val_ids,
                            .has_mask = split.val_pos, .n_ids = split.n_val, .batch_size = a->batch, .size = a->size,
                            .norm = norm, .seed = 0, .threads = a->loader_threads};
    pn_backend *be = NULL;
    pn_unet *m = NULL;
    pn_val_result v;
    pn_status st = pn_tool_open_backend(a->backend, a->threads, &be);
    if (st == PN_OK) st = pn_tool_set_precision(be, a->precision);
    if (st == PN_OK) st = pn_tool_set_conv_algo(be, a->conv_algo);
    bool int8 = false;
    if (st == PN_OK) st = pn_int8_apply(be, a->weights, &int8);
    if (st == PN_OK) st = pn_tool_load_model(a->encoder, a->weights, be, &m);
    if (st == PN_OK) st = pn_tool_validate(m, &cfg, tta, w, true, &grid, &v);
    if (be) pn_tool_conv_algo_done(be);
    if (st == PN_OK) {
        printf("eval %s fold %d: %lld images (%lld with pneumothorax) at %d, tta %s\n", a->weights, a->fold,
               (long long)v.images, (long long)v.positives, a->size, a->tta);
        printf("triplet (top, min_area, bottom)      kaggle   dice+    empty-acc\n");
        int n = grid.n_top * grid.n_area * grid.n_bottom, best = pn_grid_best(&grid);
        for (int i = 0; i < n; i++) {
            pn_triplet t = pn_grid_triplet(&grid, i);
            double s, d, e;
            pn_grid_means(&grid, i, &s, &d, &e);
            printf("(%.2f, %6lld, %.2f)%s            %.4f   %.4f   %.4f\n", t.top, (long long)t.min_area, t.bottom,
                   i == best ? " *" : "  ", s, d, e);
        }
        printf("val loss %.4f\nkaggle %.4f\ndice_pos %.4f\nempty_acc %.4f\nbest_triplet %.2f,%lld,%.2f\n", v.loss,
               v.score, v.pos_dice, v.empty_acc, v.best.top, (long long)v.best.min_area, v.best.bottom);
        /* the all-empty baseline: every image predicted empty scores 1 on empties, 0 on positives */
        printf("all_empty_baseline %.4f\n", v.images ? (double)(v.images - v.positives) / (double)v.images : 0.0);
    }
    pn_unet_free(m);
    if (be) pn_backend_close(be);
    pn_split_free(&split);
    return st;
}

/* Unions the masks of every row per id into masks[i] (width^2 bytes). */
static pn_status read_masks(const char *path, int width, char ***ids_out, uint8_t ***masks_out, int *n_out) {
    pn_csv csv;
    PN_TRY(pn_csv_read(path, &csv));
    int ci = pn_csv_column(&csv, "ImageId"), ce = pn_csv_column(&csv, "EncodedPixels");
    pn_status st = ci < 0 || ce < 0 ? pn_error(PN_ERR_FORMAT, "%s: expected the columns ImageId,EncodedPixels", path)
                                    : PN_OK;
    char **ids = calloc((size_t)csv.nrows + 1, sizeof *ids);
    uint8_t **masks = calloc((size_t)csv.nrows + 1, sizeof *masks);
    int n = 0;
    if (st == PN_OK && (!ids || !masks)) st = pn_error(PN_ERR_NOMEM, "out of memory");
    for (int r = 0; st == PN_OK && r < csv.nrows; r++) {
        const char *id = pn_csv_get(&csv, r, ci);
        int k = 0;
        while (k < n && strcmp(ids[k], id)) k++;
        if (k == n) {
            ids[n] = strdup(id);
            masks[n] = calloc((size_t)width * width, 1);
            if (!ids[n] || !masks[n]) st = pn_error(PN_ERR_NOMEM, "out of memory");
            n++;
        }
        char what[512];
        snprintf(what, sizeof what, "%s line %d", path, csv.lines[r]);
        if (st == PN_OK) st = pn_rle_decode(pn_csv_get(&csv, r, ce), width, width, PN_RLE_RELATIVE, masks[k], what);
    }
    pn_csv_free(&csv);
    *ids_out = ids;
    *masks_out = masks;
    *n_out = n;
    return st;
}

static void free_masks(char **ids, uint8_t **masks, int n) {
    for (int i = 0; i < n; i++) {
        free(ids[i]);
        free(masks[i]);
    }
    free(ids);
    free(masks);
}

static pn_status eval_submission(const eval_args *a) {
    if (!a->truth) return pn_error(PN_ERR_ARG, "--submission needs --truth (a CSV of ImageId,EncodedPixels)");
    char **tid = NULL, **sid = NULL;
    uint8_t **tm = NULL, **sm = NULL;
    int nt = 0, ns = 0;
    pn_status st = read_masks(a->truth, a->width, &tid, &tm, &nt);
    if (st == PN_OK) st = read_masks(a->submission, a->width, &sid, &sm, &ns);
    double sum = 0, pos_sum = 0;
    int64_t pos = 0, empty_ok = 0, empties = 0;
    int64_t px = (int64_t)a->width * a->width;
    for (int i = 0; st == PN_OK && i < nt; i++) {
        int k = 0;
        while (k < ns && strcmp(sid[k], tid[i])) k++;
        if (k == ns) {
            st = pn_error(PN_ERR_FORMAT, "%s: no row for ImageId %s of %s", a->submission, tid[i], a->truth);
            break;
        }
        double s = pn_kaggle_dice(sm[k], tm[i], px);
        bool positive = false;
        for (int64_t p = 0; p < px && !positive; p++) positive = tm[i][p] != 0;
        sum += s;
        if (positive) pos_sum += s, pos++;
        else empties++, empty_ok += s == 1.0;
    }
    if (st == PN_OK) {
        printf("submission %s vs %s: %d images (%lld with pneumothorax) at %dx%d\n", a->submission, a->truth, nt,
               (long long)pos, a->width, a->width);
        printf("kaggle %.4f\ndice_pos %.4f\nempty_acc %.4f\nall_empty_baseline %.4f\n", nt ? sum / nt : 0,
               pos ? pos_sum / (double)pos : 0, empties ? (double)empty_ok / (double)empties : 0,
               nt ? (double)empties / nt : 0);
    }
    free_masks(tid, tm, nt);
    free_masks(sid, sm, ns);
    return st;
}

int pn_cmd_eval(int argc, char **argv) {
    eval_args a = {.tta = "none", .backend = "auto", .encoder = "resnet34", .norm = "imagenet",
                   .loss = "bce=3,dice=1,focal=4", .size = 256, .batch = 8, .loader_threads = 2, .width = 1024};
    const pn_opt opts[] = {
        {"weights", PN_OPT_STR, &a.weights, "W", "model weights (safetensors, smp names)", false},
        {"data", PN_OPT_STR, &a.data, "DIR", "prepared data (DIR/train, DIR/mask)", false},
        {"folds", PN_OPT_STR, &a.folds, "CSV", "folds.csv from pneumoseg folds", false},
        {"fold", PN_OPT_INT, &a.fold, "K", "the fold to evaluate (default 0)", false},
        {"size", PN_OPT_INT, &a.size, "S", "evaluation side, a multiple of 32 (default 256)", false},
        {"batch", PN_OPT_INT, &a.batch, "N", "batch size (default 8)", false},
        {"tta", PN_OPT_STR, &a.tta, "MODE", "none | hflip (default none)", false},
        {"tops", PN_OPT_STR, &a.tops, "LIST", "triplet grid tops (default 0.6,0.75)", false},
        {"areas", PN_OPT_STR, &a.areas, "LIST", "triplet grid min areas in 1024-pixels (default 1000,2000,3000)", false},
        {"bottoms", PN_OPT_STR, &a.bottoms, "LIST", "triplet grid bottoms (default 0.3,0.4)", false},
        {"loss", PN_OPT_STR, &a.loss, "SPEC", "ComboLoss weights for the val loss (default bce=3,dice=1,focal=4)", false},
        {"norm", PN_OPT_STR, &a.norm, "MODE", "input scaling (default imagenet)", false},
        {"encoder", PN_OPT_STR, &a.encoder, "NAME", "encoder (default resnet34)", false},
        {"backend", PN_OPT_STR, &a.backend, "NAME", "auto | ref | cpu | cuda (default auto)", false},
        {"precision", PN_OPT_STR, &a.precision, "P", "fp32 (default) | bf16 | fp16 convolutions (cuda)", false},
        {"conv-algo", PN_OPT_STR, &a.conv_algo, "direct|winograd|auto", PN_CONV_ALGO_HELP, false},
        {"threads", PN_OPT_INT, &a.threads, "N", "compute threads (default: all cores)", false},
        {"loader-threads", PN_OPT_INT, &a.loader_threads, "N", "loader threads (default 2)", false},
        {"submission", PN_OPT_STR, &a.submission, "CSV", "instead: score this submission against --truth", false},
        {"truth", PN_OPT_STR, &a.truth, "CSV", "ImageId,EncodedPixels truth (e.g. synth's test-rle.csv)", false},
        {"width", PN_OPT_INT, &a.width, "W", "mask side of --submission/--truth RLE (default 1024)", false},
        {NULL, 0, NULL, NULL, NULL, false},
    };
    const pn_command_help help = {
        "pneumoseg eval --weights W --data D --folds F [--fold K] [--tta hflip]\n"
        "       pneumoseg eval --submission S.csv --truth T.csv",
        "Scores weights on fold K: for every triplet of the grid (top, min_area, bottom) the Kaggle score (mean\n"
        "per-image dice, 1 when truth and prediction are both empty), dice on images with pneumothorax and\n"
        "accuracy on empty images; prints the grid, the best triplet, and the all-empty baseline's score.\n"
        "With --submission, scores a submission's masks against a truth CSV at full resolution instead."};
    int rc = pn_cli_parse(argc, argv, opts, &help);
    if (rc) return rc < 0 ? 0 : rc;
    pn_status st = a.submission ? eval_submission(&a) : eval_fold(&a);
    return st == PN_OK ? 0 : pn_cli_fail("eval");
}
