/* prepare: the reference's prepare_png.py in C: decode, union the RLE rows, resize, write PNGs, in threads. */
#define _POSIX_C_SOURCE 200809L
#include "prepare.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/csv.h"
#include "data/dicom.h"
#include "data/file_list.h"
#include "data/png.h"

static const char *reason_names[PN_PREP_FAIL_COUNT] = {"unreadable DICOM", "unsupported (transfer syntax or build)",
                                                       "bad ImageId", "bad RLE row", "write error"};

const char *pn_prepare_reason_name(int reason) {
    return reason >= 0 && reason < PN_PREP_FAIL_COUNT ? reason_names[reason] : "?";
}

bool pn_prepare_id_valid(const char *id, const char *where) {
    size_t n = strlen(id);
    if (n == 0 || n > 64) {
        pn_error(PN_ERR_FORMAT, "%s: ImageId '%.80s' must be 1..64 characters", where, id);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        bool digit = id[i] >= '0' && id[i] <= '9';
        if (!digit && id[i] != '.') {
            pn_error(PN_ERR_FORMAT, "%s: ImageId '%.80s' may hold only digits and '.' (a SOPInstanceUID)", where, id);
            return false;
        }
        if (id[i] == '.' && (i == 0 || i + 1 == n || id[i + 1] == '.')) {
            pn_error(PN_ERR_FORMAT, "%s: ImageId '%.80s' has an empty component (leading, trailing or double '.')",
                     where, id);
            return false;
        }
    }
    return true;
}

/* Per-axis sampling of scipy's zoom(order=1, grid_mode=True): x = (o + 0.5) * in/out - 0.5. */
typedef struct {
    int i0, i1;
    double w0, w1;
} axis_tap;

static void make_taps(int in, int out, axis_tap *taps) {
    double zoom = (double)in / (double)out;
    for (int o = 0; o < out; o++) {
        double x = ((double)o + 0.5) * zoom - 0.5;
        double f = floor(x);
        double t = x - f;
        int i0 = (int)f, i1 = i0 + 1;
        if (i0 < 0) i0 = 0;
        if (i1 < 0) i1 = 0;
        if (i0 > in - 1) i0 = in - 1;
        if (i1 > in - 1) i1 = in - 1;
        taps[o] = (axis_tap){i0, i1, 1.0 - t, 1.0 - (1.0 - t)}; /* scipy: the last weight is 1 - the others */
    }
}

/* The exact halving (1024 -> 512): every weight is 0.5, so value * 0.5 * 0.5 is value * 0.25 exactly and
 * the sum in scipy's order gives the same doubles as the general loop, with fewer operations. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* Four outputs at a time with AVX2: the same IEEE operations in the same order (v * (1/255) [* 255 for
 * masks is 1], * 0.25, three adds, min/max clip, * scale, round to nearest even), so the bytes equal the
 * scalar loop's. Returns the number of outputs of the row done. */
__attribute__((target("avx2"))) static int halve_row_avx2(const uint8_t *r0, const uint8_t *r1, uint8_t *out, int dw,
                                                          double unit, double lo, double hi, double scale) {
    const __m256d vlo = _mm256_set1_pd(lo), vhi = _mm256_set1_pd(hi), vs = _mm256_set1_pd(scale);
    const __m256d vu = _mm256_set1_pd(unit), vq = _mm256_set1_pd(0.25);
    const __m256i split = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    int x = 0;
    for (; x + 4 <= dw; x += 4) {
        __m256i t =
            _mm256_permutevar8x32_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(r0 + 2 * x))), split);
        __m256i u =
            _mm256_permutevar8x32_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(r1 + 2 * x))), split);
        __m256d a = _mm256_mul_pd(_mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(t)), vu), vq);
        __m256d b = _mm256_mul_pd(_mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(t, 1)), vu), vq);
        __m256d c = _mm256_mul_pd(_mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(u)), vu), vq);
        __m256d d = _mm256_mul_pd(_mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(u, 1)), vu), vq);
        __m256d v = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(a, b), c), d);
        v = _mm256_min_pd(_mm256_max_pd(v, vlo), vhi);
        v = _mm256_round_pd(_mm256_mul_pd(v, vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m128i r = _mm256_cvtpd_epi32(v); /* 0..255 after the clip */
        r = _mm_packus_epi32(r, r);
        r = _mm_packus_epi16(r, r);
        int32_t four = _mm_cvtsi128_si32(r);
        memcpy(out + x, &four, 4);
    }
    return x;
}
#endif

static void halve(const uint8_t *src, int sw, uint8_t *dst, int dw, int dh, const double *lut, double unit, double lo,
                  double hi, double scale) {
    double q[256];
    for (int v = 0; v < 256; v++) q[v] = lut[v] * 0.25;
#if defined(__x86_64__) && defined(__GNUC__)
    bool avx2 = __builtin_cpu_supports("avx2");
#endif
    for (int y = 0; y < dh; y++) {
        const uint8_t *r0 = src + (size_t)(2 * y) * (size_t)sw, *r1 = r0 + sw;
        uint8_t *out = dst + (size_t)y * (size_t)dw;
        int x0 = 0;
#if defined(__x86_64__) && defined(__GNUC__)
        if (avx2) x0 = halve_row_avx2(r0, r1, out, dw, unit, lo, hi, scale);
#endif
        for (int x = x0; x < dw; x++) {
            int a = r0[2 * x], b = r0[2 * x + 1], c = r1[2 * x], d = r1[2 * x + 1], sum = a + b + c + d;
            /* The exact mean is sum/4. Unless it ends in .5 it is at least 0.25 from a rounding boundary,
             * far beyond the doubles' error, so the reference's result is the rounded mean: (sum+1)/4. */
            if ((sum & 3) != 2) {
                out[x] = (uint8_t)((sum + 1) >> 2);
                continue;
            }
            double v = ((q[a] + q[b]) + q[c]) + q[d];
            v = v < lo ? lo : (v > hi ? hi : v);
            double r = (v * scale + 6755399441055744.0) - 6755399441055744.0;
            out[x] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
        }
    }
}

pn_status pn_prepare_resize(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, bool mask) {
    if (sw == dw && sh == dh) {
        memcpy(dst, src, (size_t)sw * (size_t)sh);
        return PN_OK;
    }
    /* The image goes through skimage's img_as_float (v * (1/255)) and back (* 255); the reference's mask
     * is already float 0/255, which skimage leaves as it is. */
    double lut[256];
    for (int v = 0; v < 256; v++) lut[v] = mask ? (double)v : (double)v * (1.0 / 255.0);
    double scale = mask ? 1.0 : 255.0;
    uint8_t lo = 255, hi = 0;
    for (size_t i = 0; i < (size_t)sw * (size_t)sh; i++) {
        if (src[i] < lo) lo = src[i];
        if (src[i] > hi) hi = src[i];
    }
    if (sw == 2 * dw && sh == 2 * dh) {
        halve(src, sw, dst, dw, dh, lut, mask ? 1.0 : 1.0 / 255.0, lut[lo], lut[hi], scale);
        return PN_OK;
    }
    axis_tap *tx = malloc((size_t)dw * sizeof *tx), *ty = malloc((size_t)dh * sizeof *ty);
    if (!tx || !ty) {
        free(tx), free(ty);
        return pn_error(PN_ERR_NOMEM, "out of memory resizing %dx%d to %dx%d", sw, sh, dw, dh);
    }
    make_taps(sw, dw, tx);
    make_taps(sh, dh, ty);
    for (int y = 0; y < dh; y++) {
        const uint8_t *r0 = src + (size_t)ty[y].i0 * (size_t)sw, *r1 = src + (size_t)ty[y].i1 * (size_t)sw;
        double wy0 = ty[y].w0, wy1 = ty[y].w1;
        for (int x = 0; x < dw; x++) {
            const axis_tap *t = &tx[x];
            /* The order of scipy's kernel loop: value * wy * wx, summed row by row. */
            double v = 0.0;
            v += lut[r0[t->i0]] * wy0 * t->w0;
            v += lut[r0[t->i1]] * wy0 * t->w1;
            v += lut[r1[t->i0]] * wy1 * t->w0;
            v += lut[r1[t->i1]] * wy1 * t->w1;
            if (v < lut[lo]) v = lut[lo];
            if (v > lut[hi]) v = lut[hi];
            /* cv2.imwrite of a float array: saturate_cast, i.e. round half to even (rint; here by adding
             * and subtracting 1.5 * 2^52, exact for 0..255 in the default rounding mode, and inline). */
            double r = (v * scale + 6755399441055744.0) - 6755399441055744.0;
            dst[(size_t)y * (size_t)dw + (size_t)x] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
        }
    }
    free(tx);
    free(ty);
    return PN_OK;
}

static bool all_zero(const uint8_t *p, size_t n) {
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) acc |= p[i]; /* vectorizes; no early exit needed for 1 MB */
    return acc == 0;
}

/* ---- the job list ---- */

typedef struct {
    char *path;
    char *id;
    bool test;
    int *rows; /* CSV rows of this id (train only) */
    int nrows;
} job;

typedef struct {
    job *v;
    size_t n, cap;
} job_list;

static bool jobs_push(job_list *l, const char *path, const char *id, bool test) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        job *v = realloc(l->v, cap * sizeof *v);
        if (!v) return false;
        l->v = v;
        l->cap = cap;
    }
    job *j = &l->v[l->n];
    memset(j, 0, sizeof *j);
    j->path = pn_strdup(path);
    j->id = pn_strdup(id);
    j->test = test;
    if (!j->path || !j->id) {
        free(j->path);
        free(j->id);
        return false;
    }
    l->n++;
    return true;
}

/* Appends every *.dcm under `dir` (recursively) to `l`; the ImageId is the file name without ".dcm". */
static pn_status scan_dir(const char *dir, bool test, job_list *l) {
    char **files = NULL;
    int n = 0;
    PN_TRY(pn_list_files(dir, ".dcm", true, &files, &n));
    pn_status st = PN_OK;
    for (int i = 0; i < n && st == PN_OK; i++) {
        const char *slash = strrchr(files[i], '/'), *name = slash ? slash + 1 : files[i];
        char id[256];
        snprintf(id, sizeof id, "%.*s", (int)(strlen(name) - 4), name);
        if (!jobs_push(l, files[i], id, test)) st = pn_error(PN_ERR_NOMEM, "out of memory scanning %s", dir);
    }
    pn_free_list(files, n);
    return st;
}

static int cmp_job(const void *a, const void *b) {
    const job *x = a, *y = b;
    if (x->test != y->test) return x->test ? 1 : -1;
    return strcmp(x->id, y->id);
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

/* ---- output folder ---- */

static pn_status make_dir(const char *path) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return PN_OK;
        return pn_error(PN_ERR_IO, "%s: exists and is not a folder", path);
    }
    return pn_error(PN_ERR_IO, "%s: cannot create the folder: %s", path, strerror(errno));
}

static pn_status check_out_dir(const char *out, bool force) {
    DIR *d = opendir(out);
    if (!d)
        return errno == ENOENT ? PN_OK : pn_error(PN_ERR_IO, "%s: cannot open the folder: %s", out, strerror(errno));
    bool empty = true;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = false;
    closedir(d);
    if (!empty && !force)
        return pn_error(PN_ERR_ARG, "%s: the output folder is not empty; use --force to write into it", out);
    return PN_OK;
}

/* ---- the workers ---- */

typedef struct {
    const pn_prepare_opts *opts;
    const pn_csv *csv;
    int col_rle;
    job_list *jobs;
    size_t next;
    pthread_mutex_t lock;
    pn_progress progress;
    pn_prepare_summary *sum;
} shared_state;

static int reason_of(pn_status st) { return st == PN_ERR_UNSUPPORTED ? PN_PREP_FAIL_SYNTAX : PN_PREP_FAIL_DICOM; }

/* Hands one line about a skipped file or row to the caller's on_skip (the caller serialises the calls). */
static void report_skip(const pn_prepare_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report_skip(const pn_prepare_opts *o, const char *fmt, ...) {
    if (!o->on_skip) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->on_skip(o->user, line);
}

/* Processes one job; returns -1 on success or the failure reason (message in pn_last_error()). */
static int run_job(shared_state *s, const job *j, bool *positive) {
    const pn_prepare_opts *o = s->opts;
    *positive = false;
    if (!pn_prepare_id_valid(j->id, j->path)) return PN_PREP_FAIL_ID;
    pn_dicom_image img;
    pn_status st = pn_dicom_read(j->path, 8, &img, NULL);
    if (st != PN_OK) return reason_of(st);
    int w = img.width, h = img.height, size = o->size;
    size_t npx = (size_t)w * (size_t)h, nout = (size_t)size * (size_t)size;
    uint8_t *mask = NULL, *out = malloc(nout), *mout = NULL;
    int reason = -1;
    if (!out) {
        pn_error(PN_ERR_NOMEM, "%s: out of memory", j->path);
        reason = PN_PREP_FAIL_DICOM;
        goto done;
    }
    if (!j->test) {
        bool any_runs = false;
        for (int r = 0; r < j->nrows && !any_runs; r++)
            any_runs = !pn_rle_is_empty(pn_csv_get(s->csv, j->rows[r], s->col_rle));
        mout = calloc(nout, 1);
        mask = any_runs ? calloc(npx, 1) : NULL;
        if (!mout || (any_runs && !mask)) {
            pn_error(PN_ERR_NOMEM, "%s: out of memory", j->path);
            reason = PN_PREP_FAIL_DICOM;
            goto done;
        }
        for (int r = 0; r < j->nrows; r++) {
            char what[128];
            snprintf(what, sizeof what, "%s line %d (ImageId %s)", s->csv->name, s->csv->lines[j->rows[r]], j->id);
            if (pn_rle_decode(pn_csv_get(s->csv, j->rows[r], s->col_rle), w, h, o->rle_format, mask, what) != PN_OK) {
                reason = PN_PREP_FAIL_RLE;
                goto done;
            }
        }
        *positive = mask && !all_zero(mask, npx);
        if (*positive) { /* an empty mask stays all zero at any size */
            if (pn_prepare_resize(mask, w, h, mout, size, size, true) != PN_OK) {
                reason = PN_PREP_FAIL_WRITE;
                goto done;
            }
            if (o->binary_masks)
                for (size_t i = 0; i < nout; i++) mout[i] = mout[i] >= 128 ? 255 : 0;
        }
    }
    if (pn_prepare_resize(img.pixels, w, h, out, size, size, false) != PN_OK) {
        reason = PN_PREP_FAIL_WRITE;
        goto done;
    }
    size_t plen = strlen(o->out_dir) + strlen(j->id) + 16;
    char *path = malloc(plen);
    if (!path) {
        pn_error(PN_ERR_NOMEM, "%s: out of memory", j->path);
        reason = PN_PREP_FAIL_WRITE;
        goto done;
    }
    if (!j->test) {
        snprintf(path, plen, "%s/mask/%s.png", o->out_dir, j->id);
        if (pn_png_write(path, size, size, 1, 8, mout) != PN_OK) reason = PN_PREP_FAIL_WRITE;
    }
    if (reason < 0) {
        snprintf(path, plen, "%s/%s/%s.png", o->out_dir, j->test ? "test" : "train", j->id);
        if (pn_png_write(path, size, size, 1, 8, out) != PN_OK) reason = PN_PREP_FAIL_WRITE;
    }
    free(path);
done:
    pn_dicom_image_free(&img);
    free(mask);
    free(mout);
    free(out);
    return reason;
}

static void *worker(void *arg) {
    shared_state *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        size_t i = s->next++;
        pthread_mutex_unlock(&s->lock);
        if (i >= s->jobs->n) break;
        const job *j = &s->jobs->v[i];
        bool positive;
        int reason = run_job(s, j, &positive);
        pthread_mutex_lock(&s->lock);
        if (reason >= 0) {
            s->sum->failures++;
            s->sum->fail_by_reason[reason]++;
            report_skip(s->opts, "%s", pn_last_error());
        } else if (j->test) {
            s->sum->test_images++;
        } else {
            s->sum->train_images++;
            s->sum->positives += positive;
        }
        if (s->opts->progress) pn_progress_step(&s->progress, 1, NULL);
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

static int default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Attaches the CSV rows to the train jobs (jobs sorted by id) and counts ids on either side only. */
static pn_status attach_rows(const pn_prepare_opts *o, const pn_csv *csv, int col_id, job_list *jobs, size_t ntrain,
                             pn_prepare_summary *sum) {
    /* Sort row indices by id, then walk both sorted lists. */
    int n = csv->nrows;
    const char ***keys = malloc((size_t)(n ? n : 1) * sizeof *keys);
    const char **ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
    if (!keys || !ids) {
        free(keys), free(ids);
        return pn_error(PN_ERR_NOMEM, "out of memory");
    }
    for (int r = 0; r < n; r++) {
        ids[r] = pn_csv_get(csv, r, col_id);
        keys[r] = &ids[r];
    }
    qsort(keys, (size_t)n, sizeof *keys, cmp_str_ptr);
    size_t j = 0;
    int r = 0;
    pn_status st = PN_OK;
    while (r < n && st == PN_OK) {
        const char *id = *keys[r];
        int r2 = r;
        while (r2 < n && strcmp(*keys[r2], id) == 0) r2++;
        while (j < ntrain && strcmp(jobs->v[j].id, id) < 0) j++;
        if (j < ntrain && strcmp(jobs->v[j].id, id) == 0) {
            job *jb = &jobs->v[j];
            jb->rows = malloc((size_t)(r2 - r) * sizeof *jb->rows);
            if (!jb->rows)
                st = pn_error(PN_ERR_NOMEM, "out of memory");
            else {
                for (int k = r; k < r2; k++) jb->rows[k - r] = (int)(keys[k] - ids);
                /* Keep the rows in file order. */
                for (int a = 1; a < r2 - r; a++)
                    for (int b = a; b > 0 && jb->rows[b - 1] > jb->rows[b]; b--) {
                        int t = jb->rows[b];
                        jb->rows[b] = jb->rows[b - 1];
                        jb->rows[b - 1] = t;
                    }
                jb->nrows = r2 - r;
            }
        } else if (!pn_prepare_id_valid(id, csv->name)) {
            report_skip(o, "%s line %d: %s", csv->name, csv->lines[keys[r] - ids], pn_last_error());
            sum->failures++;
            sum->fail_by_reason[PN_PREP_FAIL_ID]++;
        } else {
            sum->csv_ids_without_dicom++;
        }
        r = r2;
    }
    for (size_t k = 0; k < ntrain; k++)
        if (jobs->v[k].nrows == 0 && pn_prepare_id_valid(jobs->v[k].id, jobs->v[k].path)) sum->dicoms_without_row++;
    free(keys);
    free(ids);
    return st;
}

static void free_jobs(job_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].path);
        free(l->v[i].id);
        free(l->v[i].rows);
    }
    free(l->v);
}

/* Marks later duplicates of an id (jobs sorted) as failures. */
static size_t drop_duplicates(const pn_prepare_opts *o, job_list *l, pn_prepare_summary *sum) {
    size_t w = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (w > 0 && l->v[w - 1].test == l->v[i].test && strcmp(l->v[w - 1].id, l->v[i].id) == 0) {
            report_skip(o, "%s: ImageId %s also comes from %s", l->v[i].path, l->v[i].id, l->v[w - 1].path);
            sum->failures++;
            sum->fail_by_reason[PN_PREP_FAIL_ID]++;
            free(l->v[i].path);
            free(l->v[i].id);
            free(l->v[i].rows);
            continue;
        }
        l->v[w++] = l->v[i];
    }
    size_t dropped = l->n - w;
    l->n = w;
    return dropped;
}

pn_status pn_prepare_run(const pn_prepare_opts *o, pn_prepare_summary *sum) {
    memset(sum, 0, sizeof *sum);
    double t0 = pn_now();
    if (!o->out_dir) return pn_error(PN_ERR_ARG, "an output folder is required");
    if (!o->train_dir && !o->test_dir) return pn_error(PN_ERR_ARG, "give a train and/or a test DICOM folder");
    if (o->train_dir && !o->rle_csv) return pn_error(PN_ERR_ARG, "the train folder needs the RLE CSV (--rle)");
    if (o->size < 1 || o->size > 16384) return pn_error(PN_ERR_ARG, "--size must be in 1..16384, got %d", o->size);
    PN_TRY(check_out_dir(o->out_dir, o->force));

    pn_csv csv = {0};
    int col_id = -1, col_rle = -1;
    if (o->train_dir) {
        PN_TRY(pn_csv_read(o->rle_csv, &csv));
        col_id = pn_csv_column(&csv, "ImageId");
        col_rle = pn_csv_column(&csv, "EncodedPixels");
        if (col_id < 0 || col_rle < 0) {
            pn_csv_free(&csv);
            return pn_error(PN_ERR_FORMAT, "%s: expected the columns ImageId and EncodedPixels", o->rle_csv);
        }
    }
    job_list jobs = {0};
    pn_status st = PN_OK;
    if (o->train_dir) st = scan_dir(o->train_dir, false, &jobs);
    if (st == PN_OK && o->test_dir) st = scan_dir(o->test_dir, true, &jobs);
    if (st == PN_OK && jobs.n == 0) st = pn_error(PN_ERR_ARG, "no .dcm files found under the given folders");
    if (st == PN_OK) {
        qsort(jobs.v, jobs.n, sizeof *jobs.v, cmp_job);
        drop_duplicates(o, &jobs, sum);
        size_t ntrain = 0;
        while (ntrain < jobs.n && !jobs.v[ntrain].test) ntrain++;
        if (o->train_dir) st = attach_rows(o, &csv, col_id, &jobs, ntrain, sum);
        if (st == PN_OK) st = make_dir(o->out_dir);
        if (st == PN_OK && o->train_dir) {
            char p[4200];
            snprintf(p, sizeof p, "%s/train", o->out_dir);
            st = make_dir(p);
            snprintf(p, sizeof p, "%s/mask", o->out_dir);
            if (st == PN_OK) st = make_dir(p);
        }
        if (st == PN_OK && o->test_dir) {
            char p[4200];
            snprintf(p, sizeof p, "%s/test", o->out_dir);
            st = make_dir(p);
        }
    }
    if (st == PN_OK) {
        pn_dicom_init();
        shared_state s = {.opts = o, .csv = &csv, .col_rle = col_rle, .jobs = &jobs, .sum = sum};
        pthread_mutex_init(&s.lock, NULL);
        if (o->progress) pn_progress_begin(&s.progress, "prepare", (int64_t)jobs.n);
        int nt = o->threads > 0 ? o->threads : default_threads();
        if ((size_t)nt > jobs.n) nt = (int)jobs.n;
        pthread_t *tid = malloc((size_t)nt * sizeof *tid);
        int started = 0;
        for (int t = 0; tid && t < nt; t++)
            if (pthread_create(&tid[t], NULL, worker, &s) == 0) started++;
        if (started == 0) worker(&s);
        for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
        free(tid);
        if (o->progress) pn_progress_end(&s.progress);
        pthread_mutex_destroy(&s.lock);
    }
    free_jobs(&jobs);
    pn_csv_free(&csv);
    sum->seconds = pn_now() - t0;
    return st;
}

pn_status pn_prepare_read_png(const char *path, int s, uint8_t *dst) {
    uint8_t *grey;
    int w, h;
    PN_TRY(pn_png_read_grey(path, &grey, &w, &h));
    pn_status st = pn_prepare_resize(grey, w, h, dst, s, s, false);
    pn_free(grey);
    return st;
}
