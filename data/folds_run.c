/* folds_run: the `pneumoseg folds` job: unique ImageIds from the RLE CSV, optional patient groups, CSV out. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "data/csv.h"
#include "data/dicom.h"
#include "data/file_list.h"
#include "data/folds.h"
#include "data/prepare.h"

static bool rle_is_empty(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    return *s == 0 || strcmp(s, "-1") == 0;
}

typedef struct {
    char *id, *path;
} id_path;

static int cmp_id_path(const void *a, const void *b) {
    return strcmp(((const id_path *)a)->id, ((const id_path *)b)->id);
}

typedef struct {
    id_path *v;
    size_t n, cap;
} id_path_list;

/* Collects every <id>.dcm under dir. */
static pn_status scan(const char *dir, id_path_list *l) {
    char **files = NULL;
    int n = 0;
    PN_TRY(pn_list_files(dir, ".dcm", true, &files, &n));
    l->v = calloc((size_t)n + 1, sizeof *l->v);
    pn_status st = l->v ? PN_OK : pn_error(PN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && st == PN_OK; i++) {
        const char *slash = strrchr(files[i], '/'), *name = slash ? slash + 1 : files[i];
        l->v[i].id = pn_strdup(name);
        if (!l->v[i].id) {
            st = pn_error(PN_ERR_NOMEM, "out of memory");
            break;
        }
        l->v[i].id[strlen(name) - 4] = 0; /* without ".dcm" */
        l->v[i].path = files[i];          /* the path moves from the list into the entry */
        files[i] = NULL;
        l->n = (size_t)i + 1;
    }
    pn_free_list(files, n);
    return st;
}

static void free_list(id_path_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i].id), free(l->v[i].path);
    free(l->v);
}

/* group[i] = an index per distinct PatientID of ids[i] (read from its DICOM). */
static pn_status patient_groups(const pn_folds_opts *o, char **ids, int64_t n, int *group, pn_folds_summary *sum) {
    id_path_list files = {0};
    pn_status scanned = scan(o->dicom_dir, &files);
    if (scanned != PN_OK) {
        free_list(&files);
        return scanned;
    }
    qsort(files.v, files.n, sizeof *files.v, cmp_id_path);
    char **names = calloc((size_t)n + 1, sizeof *names);
    int ngroups = 0;
    pn_status st = names ? PN_OK : pn_error(PN_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n && st == PN_OK; i++) {
        id_path key = {ids[i], NULL};
        id_path *f = bsearch(&key, files.v, files.n, sizeof *files.v, cmp_id_path);
        if (!f) {
            st = pn_error(PN_ERR_IO, "%s: no DICOM named %s.dcm under %s to read its PatientID", o->rle_csv, ids[i],
                          o->dicom_dir);
            break;
        }
        pn_dicom_info info;
        st = pn_dicom_read_info(f->path, &info);
        if (st != PN_OK) break;
        char patient[96];
        if (info.patient_id[0])
            snprintf(patient, sizeof patient, "P:%s", info.patient_id);
        else {
            snprintf(patient, sizeof patient, "I:%s", ids[i]);
            sum->images_without_patient_id++;
        }
        int g = -1;
        for (int k = 0; k < ngroups && g < 0; k++)
            if (strcmp(names[k], patient) == 0) g = k;
        if (g < 0) {
            names[ngroups] = pn_strdup(patient);
            if (!names[ngroups]) {
                st = pn_error(PN_ERR_NOMEM, "out of memory");
                break;
            }
            g = ngroups++;
        }
        group[i] = g;
    }
    sum->patients = ngroups;
    for (int k = 0; k < ngroups; k++) free(names[k]);
    free(names);
    free_list(&files);
    return st;
}

static pn_status write_folds(const pn_folds_opts *o, char **ids, const int *y, const int *fold, int64_t n) {
    if (!o->force && access(o->out_csv, F_OK) == 0)
        return pn_error(PN_ERR_ARG, "%s: already exists; use --force to overwrite it", o->out_csv);
    pn_atomic_file af;
    PN_TRY(pn_atomic_open(&af, o->out_csv));
    fprintf(af.f, "ImageId,has_mask,kfold\n");
    for (int64_t i = 0; i < n; i++) fprintf(af.f, "%s,%d,%d\n", ids[i], y[i], fold[i]);
    return pn_atomic_commit(&af);
}

pn_status pn_folds_run(const pn_folds_opts *o, pn_folds_summary *sum) {
    memset(sum, 0, sizeof *sum);
    if (o->k < 2 || o->k > 64) return pn_error(PN_ERR_ARG, "--k must be in 2..64, got %d", o->k);
    if (o->group_by_patient && !o->dicom_dir)
        return pn_error(PN_ERR_ARG, "--group-by patient needs --dicom (the train DICOM folder)");
    pn_csv csv;
    PN_TRY(pn_csv_read(o->rle_csv, &csv));
    int cid = pn_csv_column(&csv, "ImageId"), crle = pn_csv_column(&csv, "EncodedPixels");
    if (cid < 0 || crle < 0) {
        pn_csv_free(&csv);
        return pn_error(PN_ERR_FORMAT, "%s: expected the columns ImageId and EncodedPixels", o->rle_csv);
    }
    int64_t n = 0;
    char **ids = malloc(((size_t)csv.nrows + 1) * sizeof *ids);
    int *y = malloc(((size_t)csv.nrows + 1) * sizeof *y), *fold = malloc(((size_t)csv.nrows + 1) * sizeof *fold);
    int *group = malloc(((size_t)csv.nrows + 1) * sizeof *group);
    id_path *index = malloc(((size_t)csv.nrows + 1) * sizeof *index);
    pn_status st = ids && y && fold && group && index ? PN_OK : pn_error(PN_ERR_NOMEM, "out of memory");
    /* Unique ids in order of first appearance: a sorted index of (id, position) found by bsearch. */
    size_t nindex = 0;
    for (int r = 0; r < csv.nrows && st == PN_OK; r++) {
        const char *id = pn_csv_get(&csv, r, cid);
        char where[256];
        snprintf(where, sizeof where, "%s line %d", o->rle_csv, csv.lines[r]);
        if (!pn_prepare_id_valid(id, where)) {
            st = PN_ERR_FORMAT;
            break;
        }
        bool pos = !rle_is_empty(pn_csv_get(&csv, r, crle));
        id_path key = {(char *)id, NULL};
        id_path *hit = bsearch(&key, index, nindex, sizeof *index, cmp_id_path);
        if (hit) {
            int64_t at = (int64_t)(intptr_t)hit->path;
            if (pos) y[at] = 1;
            continue;
        }
        ids[n] = (char *)id;
        y[n] = pos;
        /* Insert into the sorted index (memmove; CSVs here are ~13k rows). */
        size_t lo = 0, hi = nindex;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (strcmp(index[mid].id, id) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        memmove(index + lo + 1, index + lo, (nindex - lo) * sizeof *index);
        index[lo] = (id_path){(char *)id, (char *)(intptr_t)n};
        nindex++;
        n++;
    }
    if (st == PN_OK && n == 0) st = pn_error(PN_ERR_FORMAT, "%s: no rows", o->rle_csv);
    if (st == PN_OK && o->group_by_patient) st = patient_groups(o, ids, n, group, sum);
    if (st == PN_OK)
        st = o->group_by_patient ? pn_folds_grouped(y, group, n, o->k, o->shuffle, o->seed, fold)
                                 : pn_folds_stratified(y, n, o->k, o->shuffle, o->seed, fold);
    if (st == PN_OK) st = write_folds(o, ids, y, fold, n);
    if (st == PN_OK) {
        sum->images = n;
        for (int64_t i = 0; i < n; i++) {
            sum->positives += y[i];
            sum->per_fold[fold[i]]++;
            sum->positives_per_fold[fold[i]] += y[i];
        }
    }
    free(ids), free(y), free(fold), free(group), free(index);
    pn_csv_free(&csv);
    return st;
}
