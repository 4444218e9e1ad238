/* run_util: fold split, validation, triplet grid options, training-state checkpoints, file helpers. */
#define _DEFAULT_SOURCE
#include "validate.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/postprocess.h"
#include "core/safetensors.h"
#include "data/csv.h"
#include "tools/checks.h"
#include "tools/cli.h"

static int cmp_str(const void *a, const void *b);

/* Each id once: an id in two rows is in two folds (or twice in one), which would leak validation images. */
static pn_status check_unique(const char *path, const pn_csv *csv, int ci) {
    const char **ids = malloc(((size_t)csv->nrows + 1) * sizeof *ids);
    if (!ids) return pn_error(PN_ERR_NOMEM, "out of memory");
    for (int r = 0; r < csv->nrows; r++) ids[r] = pn_csv_get(csv, r, ci);
    qsort(ids, (size_t)csv->nrows, sizeof *ids, cmp_str);
    char list[1024] = "";
    int dups = 0;
    for (int r = 1; r < csv->nrows; r++)
        if (!strcmp(ids[r], ids[r - 1]) && (r < 2 || strcmp(ids[r], ids[r - 2]))) {
            if (dups++ < 5)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", dups > 1 ? ", " : "", ids[r]);
        }
    free(ids);
    if (!dups) return PN_OK;
    return pn_error(PN_ERR_FORMAT,
                    "%s: %d ImageId%s in more than one row (each image belongs to exactly one fold): %s%s", path, dups,
                    dups > 1 ? "s are" : " is", list, dups > 5 ? ", ..." : "");
}

volatile sig_atomic_t pn_tool_stop = 0;

pn_status pn_split_read(const char *path, int fold, pn_split *out) {
    memset(out, 0, sizeof *out);
    pn_csv csv;
    PN_TRY(pn_csv_read(path, &csv));
    int ci = pn_csv_column(&csv, "ImageId"), cm = pn_csv_column(&csv, "has_mask"), cf = pn_csv_column(&csv, "kfold");
    pn_status st = PN_OK;
    if (ci < 0 || cm < 0 || cf < 0)
        st = pn_error(PN_ERR_FORMAT, "%s: expected the columns ImageId,has_mask,kfold (pneumoseg folds output)", path);
    size_t bytes = 0;
    for (int r = 0; st == PN_OK && r < csv.nrows; r++) bytes += strlen(pn_csv_get(&csv, r, ci)) + 1;
    out->storage = malloc(bytes + 1);
    out->train_ids = calloc((size_t)csv.nrows + 1, sizeof(char *));
    out->val_ids = calloc((size_t)csv.nrows + 1, sizeof(char *));
    out->train_pos = calloc((size_t)csv.nrows + 1, sizeof(bool));
    out->val_pos = calloc((size_t)csv.nrows + 1, sizeof(bool));
    if (st == PN_OK && (!out->storage || !out->train_ids || !out->val_ids || !out->train_pos || !out->val_pos))
        st = pn_error(PN_ERR_NOMEM, "out of memory reading %s", path);
    char *p = out->storage;
    bool any_fold = false;
    for (int r = 0; st == PN_OK && r < csv.nrows; r++) {
        char *end;
        const char *fs = pn_csv_get(&csv, r, cf), *ms = pn_csv_get(&csv, r, cm);
        long k = strtol(fs, &end, 10);
        if (*fs == 0 || *end) {
            st = pn_error(PN_ERR_FORMAT, "%s line %d: kfold '%s' is not an integer", path, csv.lines[r], fs);
            break;
        }
        bool pos = strcmp(ms, "1") == 0 || strcmp(ms, "True") == 0 || strcmp(ms, "true") == 0;
        char where[600];
        snprintf(where, sizeof where, "%s line %d", path, csv.lines[r]);
        st = pn_check_file_id(pn_csv_get(&csv, r, ci), where);
        if (st != PN_OK) break;
        strcpy(p, pn_csv_get(&csv, r, ci));
        if (k == fold) {
            out->val_pos[out->n_val] = pos;
            out->val_ids[out->n_val++] = p;
            any_fold = true;
        } else {
            out->train_pos[out->n_train] = pos;
            out->train_ids[out->n_train++] = p;
        }
        p += strlen(p) + 1;
    }
    if (st == PN_OK && !any_fold) st = pn_error(PN_ERR_USAGE, "%s: no image is in fold %d", path, fold);
    if (st == PN_OK) st = check_unique(path, &csv, ci);
    pn_csv_free(&csv);
    if (st != PN_OK) pn_split_free(out);
    return st;
}

/* Appends `id` to a bounded list of names; counts every one. */
static void list_add(char *list, size_t cap, int *count, const char *id) {
    if ((*count)++ < 10) snprintf(list + strlen(list), cap - strlen(list), "%s%s", *count > 1 ? ", " : "", id);
}

pn_status pn_split_check_files(const pn_split *s, const char *data, bool train_too) {
    char missing[2048] = "", masks[2048] = "", path[4400];
    int n_missing = 0, n_masks = 0;
    for (int pass = train_too ? 0 : 1; pass < 2; pass++) {
        char **ids = pass ? s->val_ids : s->train_ids;
        bool *pos = pass ? s->val_pos : s->train_pos;
        int n = pass ? s->n_val : s->n_train;
        for (int i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/train/%s.png", data, ids[i]);
            if (!pn_file_exists(path)) list_add(missing, sizeof missing, &n_missing, ids[i]);
            snprintf(path, sizeof path, "%s/mask/%s.png", data, ids[i]);
            if (pos[i] && !pn_file_exists(path)) list_add(masks, sizeof masks, &n_masks, ids[i]);
        }
    }
    if (n_missing)
        return pn_error(PN_ERR_IO, "%d image%s of the fold split %s not in %s/train: %s%s", n_missing,
                        n_missing > 1 ? "s" : "", n_missing > 1 ? "are" : "is", data, missing,
                        n_missing > 10 ? ", ..." : "");
    if (n_masks)
        return pn_error(PN_ERR_IO, "%d image%s marked has_mask %s no mask in %s/mask: %s%s", n_masks,
                        n_masks > 1 ? "s" : "", n_masks > 1 ? "have" : "has", data, masks, n_masks > 10 ? ", ..." : "");
    return PN_OK;
}

void pn_split_free(pn_split *s) {
    free(s->train_ids);
    free(s->val_ids);
    free(s->train_pos);
    free(s->val_pos);
    free(s->storage);
    memset(s, 0, sizeof *s);
}

pn_status pn_parse_doubles(const char *text, const char *what, double *out, int cap, int *count) {
    *count = 0;
    const char *p = text;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || (*end && *end != ',') || !isfinite(v))
            return pn_error(PN_ERR_USAGE, "%s: '%s' is not a comma-separated list of numbers", what, text);
        if (*count == cap) return pn_error(PN_ERR_USAGE, "%s: at most %d values", what, cap);
        out[(*count)++] = v;
        p = *end ? end + 1 : end;
    }
    if (*count == 0) return pn_error(PN_ERR_USAGE, "%s: empty list", what);
    return PN_OK;
}

int64_t pn_area_at_size(int64_t area_1024, int size) {
    return (int64_t)llround((double)area_1024 * size * size / (1024.0 * 1024.0));
}

static pn_status check_share(const char *what, double v) {
    if (v > 0 && v <= 1) return PN_OK;
    return pn_error(PN_ERR_USAGE, "%s: %g is outside (0, 1]", what, v);
}

static pn_status check_area(const char *what, double v) {
    if (v >= 0 && v <= 1e12 && v == floor(v)) return PN_OK;
    return pn_error(PN_ERR_USAGE, "%s: %g is not a whole number >= 0 of pixels of a 1024 image", what, v);
}

pn_status pn_tool_grid(const char *tops, const char *areas, const char *bottoms, int size, pn_run_grid *g) {
    double t[PN_GRID_MAX], a[PN_GRID_MAX], b[PN_GRID_MAX];
    int nt, na, nb;
    PN_TRY(pn_parse_doubles(tops ? tops : "0.6,0.75", "--tops", t, PN_GRID_MAX, &nt));
    PN_TRY(pn_parse_doubles(areas ? areas : "1000,2000,3000", "--areas", a, PN_GRID_MAX, &na));
    PN_TRY(pn_parse_doubles(bottoms ? bottoms : "0.3,0.4", "--bottoms", b, PN_GRID_MAX, &nb));
    float tf[PN_GRID_MAX], bf[PN_GRID_MAX];
    int64_t ai[PN_GRID_MAX];
    for (int i = 0; i < nt; i++) {
        PN_TRY(check_share("--tops", t[i]));
        tf[i] = (float)t[i];
    }
    for (int i = 0; i < nb; i++) {
        PN_TRY(check_share("--bottoms", b[i]));
        bf[i] = (float)b[i];
    }
    for (int i = 0; i < na; i++) {
        PN_TRY(check_area("--areas", a[i]));
        g->area_1024[i] = (int64_t)a[i];
        ai[i] = pn_area_at_size(g->area_1024[i], size);
    }
    return pn_as_usage(pn_grid_init(&g->g, tf, nt, ai, na, bf, nb));
}

pn_triplet pn_tool_grid_triplet(const pn_run_grid *g, int index) {
    pn_triplet t = pn_grid_triplet(&g->g, index);
    t.min_area = g->area_1024[(index / g->g.n_bottom) % g->g.n_area];
    return t;
}

pn_status pn_parse_triplet(const char *text, const char *what, pn_triplet *t) {
    double v[3];
    int n;
    PN_TRY(pn_parse_doubles(text, what, v, 3, &n));
    if (n != 3)
        return pn_error(PN_ERR_USAGE, "%s: expected top,min_area,bottom (e.g. 0.75,2000,0.3), got '%s'", what, text);
    PN_TRY(check_share(what, v[0]));
    PN_TRY(check_area(what, v[1]));
    PN_TRY(check_share(what, v[2]));
    *t = (pn_triplet){(float)v[0], (int64_t)v[1], (float)v[2]};
    return PN_OK;
}

/* The shortest %g form of f that reads back to the same float. */
static void float_text(float f, char *buf, size_t cap) {
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, cap, "%.*g", digits, (double)f);
        if (strtof(buf, NULL) == f) return;
    }
}

const char *pn_triplet_text(const pn_triplet *t, char *buf, size_t cap) {
    char top[32], bottom[32];
    float_text(t->top, top, sizeof top);
    float_text(t->bottom, bottom, sizeof bottom);
    snprintf(buf, cap, "%s,%lld,%s", top, (long long)t->min_area, bottom);
    return buf;
}

static void hflip_nchw(float *x, int planes, int s) {
    for (int p = 0; p < planes; p++) pn_pp_hflip_f32(x + (int64_t)p * s * s, s, s);
}

pn_status pn_tool_predict_batch(pn_unet *m, const float *input, int n, int s, bool tta, float *probs, float *logits,
                                float *scratch) {
    int64_t px = (int64_t)n * s * s;
    PN_TRY(pn_tensor_set(pn_unet_input(m), input));
    PN_TRY(pn_unet_forward(m));
    PN_TRY(pn_tensor_get(pn_unet_logits(m), probs));
    if (logits) memcpy(logits, probs, (size_t)px * sizeof *probs);
    for (int64_t i = 0; i < px; i++) probs[i] = 1.0f / (1.0f + expf(-probs[i]));
    if (!tta) return PN_OK;
    memcpy(scratch, input, (size_t)(3 * px) * sizeof *scratch);
    hflip_nchw(scratch, 3 * n, s);
    PN_TRY(pn_tensor_set(pn_unet_input(m), scratch));
    PN_TRY(pn_unet_forward(m));
    PN_TRY(pn_tensor_get(pn_unet_logits(m), scratch));
    hflip_nchw(scratch, n, s);
    for (int64_t i = 0; i < px; i++) probs[i] = 0.5f * (probs[i] + 1.0f / (1.0f + expf(-scratch[i])));
    return PN_OK;
}

pn_status pn_tool_validate(pn_unet *m, const pn_loader_config *cfg_in, bool tta, const double w[3], bool progress,
                           pn_run_grid *rg, pn_val_result *out) {
    pn_triplet_grid *grid = &rg->g;
    pn_loader_config cfg = *cfg_in;
    cfg.aug = NULL;
    cfg.sampler = PN_SAMPLER_SEQUENTIAL;
    cfg.shuffle = false;
    cfg.drop_last = false;
    int n = cfg.batch_size, s = cfg.size;
    memset(out, 0, sizeof *out);
    PN_TRY(pn_unet_plan(m, n, s, s, PN_UNET_EVAL));
    pn_loader_t *ld = NULL;
    PN_TRY(pn_loader_create(&cfg, &ld));
    int64_t px = (int64_t)n * s * s;
    float *input = calloc((size_t)(3 * px), sizeof(float)), *scratch = malloc((size_t)(3 * px) * sizeof(float));
    float *probs = malloc((size_t)px * sizeof(float)), *logits = malloc((size_t)px * sizeof(float));
    uint8_t *truth = malloc((size_t)s * s);
    pn_status st = input && scratch && probs && logits && truth ? pn_loader_start_epoch(ld, 0)
                                                                : pn_error(PN_ERR_NOMEM, "out of memory");
    pn_progress bar;
    if (progress) pn_progress_begin(&bar, "validate", pn_loader_epoch_samples(ld));
    double loss_sum = 0;
    int64_t batches = 0;
    while (st == PN_OK) {
        pn_batch b;
        bool done;
        st = pn_loader_next(ld, &b, &done);
        if (st != PN_OK || done) break;
        if (pn_tool_stop) {
            st = pn_error(PN_ERR_IO, "validation interrupted");
            break;
        }
        memset(input, 0, (size_t)(3 * px) * sizeof *input);
        memcpy(input, b.image, (size_t)(3 * (int64_t)b.n * s * s) * sizeof *input);
        st = pn_tool_predict_batch(m, input, n, s, tta, probs, logits, scratch);
        if (st != PN_OK) break;
        int64_t real = (int64_t)b.n * s * s;
        loss_sum += pn_combo_loss_host(logits, b.target, real, w[0], w[1], w[2]);
        batches++;
        for (int i = 0; i < b.n; i++) {
            const float *t = b.target + (int64_t)i * s * s;
            for (int64_t k = 0; k < (int64_t)s * s; k++) truth[k] = t[k] >= 0.5f;
            pn_grid_add(grid, probs + (int64_t)i * s * s, truth, (int64_t)s * s);
        }
        if (progress) pn_progress_step(&bar, b.n, NULL);
    }
    if (progress) pn_progress_end(&bar);
    pn_loader_destroy(ld);
    free(input);
    free(scratch);
    free(probs);
    free(logits);
    free(truth);
    if (st != PN_OK) return st;
    int best = pn_grid_best(grid);
    out->loss = batches ? loss_sum / (double)batches : 0;
    out->best = pn_grid_triplet(grid, best);
    out->best_1024 = pn_tool_grid_triplet(rg, best);
    out->best_index = best;
    pn_grid_means(grid, best, &out->score, &out->pos_dice, &out->empty_acc);
    out->images = grid->images;
    out->positives = grid->positives;
    return PN_OK;
}

/* ---- training-state checkpoints ---- */

#define KEY_LEN 192

/* "<prefix><name>" into key (the optimizer moments' keys). */
static const char *moment_key(char *key, const char *prefix, const char *name) {
    snprintf(key, KEY_LEN, "%s%s", prefix, name);
    return key;
}

static pn_status meta_num(pn_st_writer *w, const char *key, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", v);
    return pn_st_writer_meta(w, key, buf);
}

static pn_status state_fill(pn_unet *m, const pn_train_state *s, pn_st_writer *w) {
    char key[KEY_LEN];
    PN_TRY(pn_unet_add_weights(m, w, "model."));
    for (int i = 0; i < pn_unet_num_params(m); i++) {
        pn_unet_param *p = pn_unet_param_at(m, i);
        if (!p->m.buf || !p->v.buf) return pn_error(PN_ERR_ARG, "checkpoint: the optimizer moments are not allocated");
        PN_TRY(pn_unet_add_tensor(w, moment_key(key, "optimizer.m.", p->name), &p->m));
        PN_TRY(pn_unet_add_tensor(w, moment_key(key, "optimizer.v.", p->name), &p->v));
    }
    if (s->hist_rows > 0) {
        int64_t shape[2] = {s->hist_rows, s->hist_cols};
        PN_TRY(pn_st_writer_add(w, "train.history", PN_ST_F32, 2, shape, s->history));
    }
    PN_TRY(pn_st_writer_meta(w, "producer", "pneumoseg train"));
    PN_TRY(meta_num(w, "epoch", s->epoch));
    PN_TRY(meta_num(w, "step", (double)s->step));
    PN_TRY(meta_num(w, "sched_lr", s->sched_lr));
    PN_TRY(meta_num(w, "sched_best", s->sched_best));
    PN_TRY(meta_num(w, "sched_bad", s->sched_bad));
    PN_TRY(meta_num(w, "best_score", s->best_score));
    PN_TRY(meta_num(w, "best_epoch", s->best_epoch));
    PN_TRY(meta_num(w, "hist_cols", s->hist_cols));
    if (s->loss_scale > 0) {
        PN_TRY(meta_num(w, "loss_scale", s->loss_scale));
        PN_TRY(meta_num(w, "loss_scale_good_steps", (double)s->scale_good));
        PN_TRY(meta_num(w, "skipped_steps", (double)s->skipped_steps));
    }
    if (s->frozen_steps > 0) PN_TRY(meta_num(w, "frozen_steps", (double)s->frozen_steps));
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed);
    PN_TRY(pn_st_writer_meta(w, "seed", seed));
    /* Every random draw is a pure function of (seed, purpose, epoch, sample): no generator state to save. */
    PN_TRY(pn_st_writer_meta(w, "rng", "philox(seed, purpose, epoch, sample)"));
    return PN_OK;
}

pn_status pn_state_save(pn_unet *m, const pn_train_state *s, const char *path) {
    pn_st_writer *w = pn_st_writer_new();
    pn_status st = w ? state_fill(m, s, w) : pn_error(PN_ERR_NOMEM, "out of memory");
    if (st == PN_OK) st = pn_st_writer_save(w, path);
    pn_st_writer_free(w);
    return st;
}

static pn_status meta_get(const pn_st_file *f, const char *key, double *v) {
    const char *s = pn_st_meta(f, key);
    if (!s) return pn_error(PN_ERR_FORMAT, "%s: metadata '%s' missing (not a pneumoseg training state)", f->path, key);
    *v = strtod(s, NULL);
    return PN_OK;
}

static pn_status state_read(pn_unet *m, const pn_st_file *f, pn_train_state *s) {
    char key[KEY_LEN];
    double v = 0;
    memset(s, 0, sizeof *s);
    PN_TRY(meta_get(f, "epoch", &v));
    s->epoch = (int)v;
    PN_TRY(meta_get(f, "step", &v));
    s->step = (int64_t)v;
    PN_TRY(meta_get(f, "sched_lr", &s->sched_lr));
    PN_TRY(meta_get(f, "sched_best", &s->sched_best));
    PN_TRY(meta_get(f, "sched_bad", &v));
    s->sched_bad = (int)v;
    PN_TRY(meta_get(f, "best_score", &s->best_score));
    PN_TRY(meta_get(f, "best_epoch", &v));
    s->best_epoch = (int)v;
    PN_TRY(meta_get(f, "hist_cols", &v));
    s->hist_cols = (int)v;
    const char *seed = pn_st_meta(f, "seed");
    s->seed = seed ? strtoull(seed, NULL, 10) : 0;
    const char *frozen = pn_st_meta(f, "frozen_steps"); /* only in runs with --freeze-encoder */
    s->frozen_steps = frozen ? strtoll(frozen, NULL, 10) : 0;
    const char *scale = pn_st_meta(f, "loss_scale"); /* only in fp16 runs */
    if (scale) {
        s->loss_scale = strtod(scale, NULL);
        PN_TRY(meta_get(f, "loss_scale_good_steps", &v));
        s->scale_good = (int64_t)v;
        PN_TRY(meta_get(f, "skipped_steps", &v));
        s->skipped_steps = (int64_t)v;
    }
    PN_TRY(pn_unet_read_weights(m, f, "model."));
    for (int i = 0; i < pn_unet_num_params(m); i++) {
        pn_unet_param *p = pn_unet_param_at(m, i);
        PN_TRY(pn_unet_read_tensor(f, moment_key(key, "optimizer.m.", p->name), &p->m));
        PN_TRY(pn_unet_read_tensor(f, moment_key(key, "optimizer.v.", p->name), &p->v));
    }
    const pn_st_entry *h = pn_st_find(f, "train.history");
    if (h) {
        if (h->ndim != 2 || h->shape[1] != s->hist_cols)
            return pn_error(PN_ERR_FORMAT, "%s: train.history has an unexpected shape", f->path);
        s->hist_rows = (int)h->shape[0];
        s->history = malloc((size_t)pn_st_numel(h) * sizeof(float) + 1);
        if (!s->history) return pn_error(PN_ERR_NOMEM, "out of memory");
        PN_TRY(pn_st_read_f32(f, h, s->history, pn_st_numel(h)));
    }
    return PN_OK;
}

pn_status pn_state_load(pn_unet *m, const char *path, pn_train_state *s) {
    pn_st_file *f;
    PN_TRY(pn_st_open(path, &f));
    pn_status st = state_read(m, f, s);
    pn_st_close(f);
    return st;
}

/* ---- files ---- */

bool pn_file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

pn_status pn_mkdirs(const char *path) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) return pn_error(PN_ERR_ARG, "path too long: %s", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return pn_error(PN_ERR_IO, "%s: cannot create: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return pn_error(PN_ERR_IO, "%s: cannot create: %s", buf, strerror(errno));
    return PN_OK;
}

typedef struct str_vec {
    char **v;
    int n, cap;
} str_vec;

static pn_status vec_push(str_vec *s, const char *text) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        char **nv = realloc(s->v, (size_t)cap * sizeof *nv);
        if (!nv) return pn_error(PN_ERR_NOMEM, "out of memory");
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n] = strdup(text);
    if (!s->v[s->n]) return pn_error(PN_ERR_NOMEM, "out of memory");
    s->n++;
    return PN_OK;
}

static pn_status walk(const char *dir, const char *suffix, bool recursive, str_vec *out) {
    DIR *d = opendir(dir);
    if (!d) return pn_error(PN_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    pn_status st = PN_OK;
    struct dirent *e;
    size_t ls = strlen(suffix);
    while (st == PN_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) {
            if (recursive) st = walk(path, suffix, recursive, out);
            continue;
        }
        size_t ln = strlen(e->d_name);
        if (ln > ls && strcmp(e->d_name + ln - ls, suffix) == 0) st = vec_push(out, path);
    }
    closedir(d);
    return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

pn_status pn_list_files(const char *dir, const char *suffix, bool recursive, char ***out, int *count) {
    str_vec v = {0};
    pn_status st = walk(dir, suffix, recursive, &v);
    if (st != PN_OK) {
        pn_free_list(v.v, v.n);
        return st;
    }
    if (v.n) qsort(v.v, (size_t)v.n, sizeof *v.v, cmp_str);
    *out = v.v;
    *count = v.n;
    return PN_OK;
}

void pn_free_list(char **list, int count) {
    for (int i = 0; i < count; i++) free(list[i]);
    free(list);
}
