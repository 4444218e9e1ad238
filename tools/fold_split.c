/* fold_split: the ids of one fold split, and the check that their images and masks are there. */
#include "fold_split.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/csv.h"
#include "tools/checks.h"
#include "tools/files.h"

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

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
