/* test_nomem: out of memory is an error, not a crash. The test is linked with the linker's --wrap for malloc,
 * calloc, realloc, aligned_alloc and posix_memalign, so it can make the k-th allocation of the library fail; for
 * each k in turn it runs a job (build, differentiate, plan and run a graph; augment with every transform; resize;
 * prepare a tiny data set; parse a CSV, encode RLE, split folds) and checks that the job either succeeds or
 * returns PN_ERR_NOMEM with an "out of memory"-style message, and leaves nothing leaked (under ASan).
 * Usage: test_nomem SCRATCH_DIR (run from tests/: it reads ref/dcm). */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/register.h"
#include "check.h"
#include "core/graph.h"
#include "data/augment.h"
#include "data/csv.h"
#include "data/folds.h"
#include "data/prepare.h"
#include "data/rle.h"
#include "data/synth.h"

/* ---- the allocation hook ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);

static atomic_long alloc_count;  /* allocations since arm() */
static atomic_long fail_at = -1; /* the allocation to fail (0-based), -1 = none */
static atomic_bool fail_all;     /* fail every allocation from fail_at on */
static atomic_bool injected;     /* a failure was injected since arm() */

static void arm(long k, bool all) {
    alloc_count = 0;
    injected = false;
    fail_all = all;
    fail_at = k;
}

static void disarm(void) { fail_at = -1; }

static bool fail_now(void) {
    long k = fail_at;
    if (k < 0) return false;
    long i = alloc_count++;
    if (i == k || (fail_all && i > k)) {
        injected = true;
        return true;
    }
    return false;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return fail_now() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return fail_now() ? NULL : __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t align, size_t n) { return fail_now() ? NULL : __real_aligned_alloc(align, n); }
int __wrap_posix_memalign(void **p, size_t align, size_t n) {
    return fail_now() ? 12 /* ENOMEM */ : __real_posix_memalign(p, align, n);
}

/* A job returns its status; it must clean up after itself whatever happens. */
typedef pn_status (*job_fn)(void *arg);

/* Runs `job` once with the k-th allocation failing, for k = 0, 1, ... until a run sees no injected failure (then the
 * job ran through). Every run must return PN_OK or PN_ERR_NOMEM (with a message that says so); `must_fail`: a run
 * with an injected failure must not claim PN_OK (every allocation of the job matters). Returns the allocations the
 * job makes. */
static long sweep(const char *name, job_fn job, void *arg, bool must_fail) {
    long k = 0;
    for (;; k++) {
        arm(k, false);
        pn_status st = job(arg);
        disarm();
        if (!injected) {
            CHECK_MSG(st == PN_OK, "%s: without a failure it returns %d: %s", name, (int)st, pn_last_error());
            break;
        }
        if (st == PN_ERR_NOMEM)
            CHECK_MSG(strstr(pn_last_error(), "memory") != NULL, "%s: allocation %ld failed; message \"%s\"", name, k,
                      pn_last_error());
        else
            CHECK_MSG(st == PN_OK && !must_fail, "%s: allocation %ld failed and it returned %d (%s)", name, k, (int)st,
                      pn_last_error());
        if (k > 100000) {
            CHECK_MSG(false, "%s: more than 100000 allocations", name);
            break;
        }
    }
    printf("%s: %ld allocations, each failed once\n", name, k);
    return k;
}

/* ---- jobs ---- */

/* A small training-shaped program on ref: conv (+bias) -> train BN -> ReLU -> add -> max-pool -> upsample -> concat
 * -> conv -> sigmoid, differentiated, planned and run forward and backward. */
static pn_status graph_job(void *arg) {
    (void)arg;
    pn_backend *be = NULL;
    PN_TRY(pn_backend_open("ref", 1, &be));
    pn_buffer params = {0};
    pn_graph *g = NULL;
    pn_status st = pn_buffer_alloc(be, &params, 4096 * sizeof(float));
    if (st == PN_OK) {
        g = pn_graph_new(be);
        if (!g) st = PN_ERR_NOMEM;
    }
    if (st == PN_OK) {
        /* parameters and their gradients, views into one buffer */
        int64_t sizes[] = {4 * 3 * 3 * 3, 4, 4, 4, 4, 4, 1 * 8 * 3 * 3};
        pn_tensor pv[7], gv[7];
        size_t off = 0;
        for (int i = 0; i < 7; i++) {
            pv[i] = pn_tensor_vec(sizes[i]);
            if (i == 0) pv[i] = pn_tensor_nchw(4, 3, 3, 3);
            if (i == 6) pv[i] = pn_tensor_nchw(1, 8, 3, 3);
            pv[i].buf = &params, pv[i].offset = off;
            gv[i] = pv[i];
            gv[i].offset = off + 2048 * sizeof(float);
            off += (size_t)sizes[i] * sizeof(float);
        }
        pn_tensor *w1 = pn_graph_external(g, pv[0], &gv[0]), *b1 = pn_graph_external(g, pv[1], &gv[1]);
        pn_tensor *gamma = pn_graph_external(g, pv[2], &gv[2]), *beta = pn_graph_external(g, pv[3], &gv[3]);
        pn_tensor *rm = pn_graph_external(g, pv[4], NULL), *rv = pn_graph_external(g, pv[5], NULL);
        pn_tensor *w2 = pn_graph_external(g, pv[6], &gv[6]);
        pn_tensor *x = pn_graph_activation(g, pn_tensor_nchw(2, 3, 8, 8), "x");
        pn_graph_keep(g, x);
        pn_graph_no_grad(g, x);
        pn_tensor *c = pn_graph_activation(g, pn_tensor_nchw(2, 4, 8, 8), "conv");
        pn_tensor *bn = pn_graph_activation(g, pn_tensor_nchw(2, 4, 8, 8), "bn");
        pn_tensor *mean = pn_graph_activation(g, pn_tensor_vec(4), "mean");
        pn_tensor *invstd = pn_graph_activation(g, pn_tensor_vec(4), "invstd");
        pn_tensor *sum = pn_graph_activation(g, pn_tensor_nchw(2, 4, 8, 8), "sum");
        pn_tensor *pool = pn_graph_activation(g, pn_tensor_nchw(2, 4, 4, 4), "pool");
        pn_tensor *up = pn_graph_activation(g, pn_tensor_nchw(2, 4, 8, 8), "up");
        pn_tensor *cat = pn_graph_activation(g, pn_tensor_nchw(2, 8, 8, 8), "cat");
        pn_tensor *y = pn_graph_activation(g, pn_tensor_nchw(2, 1, 8, 8), "y");
        pn_tensor *s = pn_graph_activation(g, pn_tensor_nchw(2, 1, 8, 8), "s");
        pn_tensor *ds = pn_graph_activation(g, pn_tensor_nchw(2, 1, 8, 8), "ds");
        pn_graph_keep(g, s);
        pn_graph_keep(g, ds);
        pn_graph_no_grad(g, ds);
        pn_graph_recompute(g, bn);
        pn_op_params conv = {.conv2d_fwd = {1, 1, 1}}, bnp = {.batchnorm_train_fwd = {1e-5f, 0.1f}}, none = {0};
        pn_op_params mp = {.maxpool_fwd = {2, 2, 0, 0}};
        st = pn_graph_add(g, PN_OP_CONV2D_FWD, conv, (pn_tensor *[]){c}, (pn_tensor *[]){x, w1, b1}, "conv1");
        if (st == PN_OK)
            st = pn_graph_add(g, PN_OP_BATCHNORM_TRAIN_FWD, bnp, (pn_tensor *[]){bn, mean, invstd, rm, rv},
                              (pn_tensor *[]){c, gamma, beta}, "bn1");
        if (st == PN_OK) st = pn_graph_add(g, PN_OP_RELU_FWD, none, (pn_tensor *[]){bn}, (pn_tensor *[]){bn}, "relu");
        if (st == PN_OK) st = pn_graph_add(g, PN_OP_ADD, none, (pn_tensor *[]){sum}, (pn_tensor *[]){bn, c}, "add");
        if (st == PN_OK)
            st = pn_graph_add(g, PN_OP_MAXPOOL_FWD, mp, (pn_tensor *[]){pool}, (pn_tensor *[]){sum}, "pool");
        if (st == PN_OK)
            st = pn_graph_add(g, PN_OP_UPSAMPLE2X_FWD, none, (pn_tensor *[]){up}, (pn_tensor *[]){pool}, "up");
        if (st == PN_OK)
            st = pn_graph_add(g, PN_OP_CONCAT, none, (pn_tensor *[]){cat}, (pn_tensor *[]){up, sum}, "cat");
        if (st == PN_OK)
            st = pn_graph_add(g, PN_OP_CONV2D_FWD, conv, (pn_tensor *[]){y}, (pn_tensor *[]){cat, w2, NULL}, "conv2");
        if (st == PN_OK) st = pn_graph_add(g, PN_OP_SIGMOID, none, (pn_tensor *[]){s}, (pn_tensor *[]){y}, "sigmoid");
        int fwd_end = pn_graph_size(g);
        if (st == PN_OK) st = pn_graph_backward(g, fwd_end, s, ds);
        if (st == PN_OK) st = pn_graph_plan(g);
        if (st == PN_OK) st = pn_graph_run(g, 0, pn_graph_size(g));
    }
    pn_graph_free(g);
    pn_buffer_free(&params);
    pn_backend_close(be);
    return st;
}

typedef struct image_job {
    const pn_aug_pipeline *pipe;
    int w, h;
} image_job;

/* Every transform once (p = 1) on an image and a soft mask. */
static pn_status augment_job(void *arg) {
    const image_job *a = arg;
    size_t n = (size_t)a->w * a->h;
    uint8_t *img = __real_malloc(n), *mask = __real_malloc(n);
    for (size_t i = 0; i < n; i++) img[i] = (uint8_t)(i * 13), mask[i] = (i % (size_t)a->w) < 20 ? 255 : 128;
    pn_status st = pn_aug_apply(a->pipe, img, mask, a->w, a->h, 7, 1, 2);
    free(img), free(mask);
    return st;
}

static pn_status parse_job(void *arg) {
    (void)arg;
    pn_aug_pipeline *p = NULL;
    pn_status st = pn_aug_parse("winner", PN_BORDER_CONSTANT, &p);
    pn_aug_free(p);
    return st;
}

/* The general (not 1/1, not 1/2) resize, which needs scratch. */
static pn_status resize_job(void *arg) {
    (void)arg;
    uint8_t src[64 * 48], dst[40 * 30];
    for (int i = 0; i < 64 * 48; i++) src[i] = (uint8_t)(i * 7);
    return pn_prepare_resize(src, 64, 48, dst, 40, 30, false);
}

static pn_status csv_job(void *arg) {
    (void)arg;
    const char *text = "ImageId, EncodedPixels\n1.2.3, 1 2 3 4\n1.2.4, -1\n\"1.2.5\",\" 5 6\"\n";
    pn_csv c;
    PN_TRY(pn_csv_parse(text, strlen(text), "t.csv", &c));
    pn_csv_free(&c);
    return PN_OK;
}

static pn_status rle_job(void *arg) {
    (void)arg;
    uint8_t m[32 * 32] = {0};
    for (int i = 0; i < 32 * 32; i += 3) m[i] = 255;
    char *rle = NULL;
    pn_status st = pn_rle_encode(m, 32, 32, &rle);
    free(rle);
    return st;
}

static pn_status folds_job(void *arg) {
    (void)arg;
    int y[40], group[40], fold[40];
    for (int i = 0; i < 40; i++) y[i] = i % 3 == 0, group[i] = i / 2;
    PN_TRY(pn_folds_stratified(y, 40, 5, true, 3, fold));
    return pn_folds_grouped(y, group, 40, 5, false, 0, fold);
}

typedef struct prepare_job_args {
    char train[1024], csv[1024], out[1024];
} prepare_job_args;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* prepare on two DICOMs (a missing one counts as a skipped file, not as an error), one thread; the output folder
 * is removed after each run. */
static pn_status prepare_job(void *arg) {
    const prepare_job_args *a = arg;
    pn_prepare_opts o = {.train_dir = a->train, .rle_csv = a->csv, .out_dir = a->out, .size = 40, .threads = 1};
    pn_prepare_summary s;
    pn_status st = pn_prepare_run(&o, &s);
    disarm(); /* cleaning up is not under test */
    nftw(a->out, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return st;
}

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    CHECK(a && b);
    int c;
    while (a && b && (c = fgetc(a)) != EOF) fputc(c, b);
    if (a) fclose(a);
    if (b) fclose(b);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_nomem SCRATCH_DIR\n");
        return 2;
    }
    pn_register_builtin_backends();
    pn_log_set_level(0);

    CHECK(sweep("graph", graph_job, NULL, true) > 20);

    pn_aug_pipeline *pipe = NULL;
    CHECK(pn_aug_parse("hflip:1,vflip:1,rotate:1,ssr:1,contrast:1,elastic:1:alpha=20:sigma=3:affine=2,grid:1,"
                       "optical:1:k=0.5",
                       PN_BORDER_CONSTANT, &pipe) == PN_OK);
    image_job img = {pipe, 48, 40};
    CHECK(sweep("augment", augment_job, &img, true) >= 8);
    pn_aug_free(pipe);
    sweep("augment parse", parse_job, NULL, true);
    CHECK(sweep("resize", resize_job, NULL, true) == 2);
    sweep("csv", csv_job, NULL, true);
    sweep("rle", rle_job, NULL, true);
    sweep("folds", folds_job, NULL, true);

    /* synth renders without allocating: with every allocation failing it still draws the image. */
    uint8_t *buf = __real_calloc(5 * 64 * 64, 1);
    pn_synth_sample smp = {buf, buf + 64 * 64, {buf + 2 * 64 * 64, buf + 3 * 64 * 64, buf + 4 * 64 * 64}, 0};
    arm(0, true);
    pn_synth_render(3, false, 1, 64, 1.0, &PN_SYNTH_LOOK_DEFAULT, &smp);
    disarm();
    CHECK(!injected);
    long lit = 0;
    for (int i = 0; i < 64 * 64; i++) lit += buf[i] > 0;
    CHECK(lit > 64 * 64 / 2);
    free(buf);

    /* prepare: each failing allocation fails the run or skips a file, never crashes */
    prepare_job_args pa;
    snprintf(pa.train, sizeof pa.train, "%s/train", argv[1]);
    snprintf(pa.csv, sizeof pa.csv, "%s/train-rle.csv", argv[1]);
    snprintf(pa.out, sizeof pa.out, "%s/out", argv[1]);
    nftw(argv[1], rm_one, 16, FTW_DEPTH | FTW_PHYS);
    mkdir(argv[1], 0777);
    mkdir(pa.train, 0777);
    char p[1200];
    snprintf(p, sizeof p, "%s/1.2.3.1.dcm", pa.train);
    copy_file("ref/dcm/jpeg.dcm", p);
    snprintf(p, sizeof p, "%s/1.2.3.2.dcm", pa.train);
    copy_file("ref/dcm/raw.dcm", p);
    FILE *f = fopen(pa.csv, "w");
    CHECK(f != NULL);
    if (f) fputs("ImageId, EncodedPixels\n1.2.3.1, 130 20 44 20\n1.2.3.2, -1\n1.2.3.5, 1 1\n", f), fclose(f);
    sweep("prepare", prepare_job, &pa, false);
    nftw(argv[1], rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return check_report("test_nomem");
}
