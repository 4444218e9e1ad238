/* test_loader: batches equal direct reads, results do not depend on the thread count, samplers count right,
 * data-parallel shards are their parts of the global batches, drop_last / resize / errors / epoch restarts behave.
 * Arg 1: a scratch folder. */
#include <stdlib.h>
#include <sys/stat.h>

#include "data/loader.h"
#include "data/png.h"
#include "data/synth.h"
#include "tests/check.h"

#define S 48
#define N 22

static char img_dir[1024], mask_dir[1024];
static char ids_buf[N][32];
static const char *ids[N];
static bool has_mask[N];

static int make_set(const char *scratch) {
    snprintf(img_dir, sizeof img_dir, "%s/train", scratch);
    snprintf(mask_dir, sizeof mask_dir, "%s/mask", scratch);
    mkdir(scratch, 0777), mkdir(img_dir, 0777), mkdir(mask_dir, 0777);
    static uint8_t buf[5 * S * S];
    size_t n = S * S;
    for (int i = 0; i < N; i++) {
        snprintf(ids_buf[i], sizeof ids_buf[i], "img%02d", i);
        ids[i] = ids_buf[i];
        pn_synth_sample s = {buf, buf + n, {NULL, NULL, NULL}, 0};
        pn_synth_render(5, false, (uint32_t)i, S, 0.4, &PN_SYNTH_LOOK_DEFAULT, &s);
        has_mask[i] = false;
        for (size_t p = 0; p < n; p++) has_mask[i] |= s.mask[p] != 0;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s.png", img_dir, ids[i]);
        if (pn_png_write(path, S, S, 1, 8, s.image) != PN_OK) return -1;
        snprintf(path, sizeof path, "%s/%s.png", mask_dir, ids[i]);
        if (pn_png_write(path, S, S, 1, 8, s.mask) != PN_OK) return -1;
    }
    return 0;
}

static pn_loader_config base_config(void) {
    pn_loader_config c = {.image_dir = img_dir,
                          .mask_dir = mask_dir,
                          .ids = ids,
                          .has_mask = has_mask,
                          .n_ids = N,
                          .batch_size = 4,
                          .size = S,
                          .norm = PN_NORM_UNIT,
                          .seed = 9,
                          .threads = 3};
    return c;
}

/* Runs one epoch and returns all images and targets concatenated (malloc'ed), and the sample count. */
static float *run_epoch(const pn_loader_config *c, uint32_t epoch, int64_t *samples, int *batches, int *last_n) {
    pn_loader_t *ld;
    if (pn_loader_create(c, &ld) != PN_OK) return NULL;
    size_t per = (size_t)4 * c->size * c->size;
    float *all = malloc(per * sizeof(float) * (size_t)(pn_loader_epoch_samples(ld) + 1));
    *samples = 0, *batches = 0;
    CHECK(pn_loader_start_epoch(ld, epoch) == PN_OK);
    for (;;) {
        pn_batch b;
        bool done;
        pn_status st = pn_loader_next(ld, &b, &done);
        CHECK_MSG(st == PN_OK, "%s", pn_last_error());
        if (st != PN_OK || done) break;
        for (int j = 0; j < b.n; j++) {
            memcpy(all + (*samples) * per, b.image + (size_t)j * 3 * c->size * c->size,
                   sizeof(float) * 3 * c->size * c->size);
            memcpy(all + (*samples) * per + 3 * c->size * c->size, b.target + (size_t)j * c->size * c->size,
                   sizeof(float) * c->size * c->size);
            (*samples)++;
        }
        (*batches)++, *last_n = b.n;
    }
    pn_loader_destroy(ld);
    return all;
}

static void test_plain(void) {
    pn_loader_config c = base_config();
    int64_t samples;
    int batches, last_n;
    float *all = run_epoch(&c, 0, &samples, &batches, &last_n);
    CHECK(all && samples == N && batches == 6 && last_n == 2);
    size_t n = S * S, per = 4 * n;
    for (int i = 0; all && i < N; i++) {
        char path[2048];
        pn_image im, mk;
        snprintf(path, sizeof path, "%s/%s.png", img_dir, ids[i]);
        CHECK(pn_png_read(path, &im) == PN_OK);
        snprintf(path, sizeof path, "%s/%s.png", mask_dir, ids[i]);
        CHECK(pn_png_read(path, &mk) == PN_OK);
        int bad = 0;
        for (size_t p = 0; p < n; p++) {
            float v = ((uint8_t *)im.pixels)[p] / 255.0f, t = ((uint8_t *)mk.pixels)[p] / 255.0f;
            for (int ch = 0; ch < 3; ch++) bad += fabsf(all[i * per + ch * n + p] - v) > 1e-6f;
            bad += all[i * per + 3 * n + p] != t;
        }
        CHECK_MSG(bad == 0, "sample %d: %d values differ from the PNGs", i, bad);
        pn_image_free(&im), pn_image_free(&mk);
    }
    free(all);
    c.drop_last = true;
    all = run_epoch(&c, 0, &samples, &batches, &last_n);
    CHECK(samples == 20 && batches == 5 && last_n == 4);
    free(all);
    /* Test images: no mask folder gives zero targets. */
    c.drop_last = false, c.mask_dir = NULL, c.has_mask = NULL;
    all = run_epoch(&c, 0, &samples, &batches, &last_n);
    int nonzero = 0;
    for (int i = 0; all && i < N; i++)
        for (size_t p = 0; p < n; p++) nonzero += all[i * per + 3 * n + p] != 0;
    CHECK(all && samples == N && nonzero == 0);
    free(all);
    c = base_config();
    c.drop_last = true;
    /* Resize on the fly: 48 -> 32. */
    c.size = 32;
    all = run_epoch(&c, 0, &samples, &batches, &last_n);
    CHECK(all && samples == 20);
    free(all);
}

/* Augmented, shuffled epochs are identical for 1 and 3 threads and differ between epochs. */
static void test_threads(void) {
    pn_aug_pipeline *aug;
    CHECK(pn_aug_parse("winner", PN_BORDER_CONSTANT, &aug) == PN_OK);
    pn_loader_config c = base_config();
    c.aug = aug, c.shuffle = true, c.norm = PN_NORM_IMAGENET;
    int64_t s1, s3, s4;
    int b1, b3, b4, l;
    c.threads = 1;
    float *one = run_epoch(&c, 2, &s1, &b1, &l);
    c.threads = 3, c.prefetch = 2;
    float *three = run_epoch(&c, 2, &s3, &b3, &l);
    float *next = run_epoch(&c, 3, &s4, &b4, &l);
    size_t bytes = sizeof(float) * 4 * S * S * N;
    CHECK(one && three && s1 == s3 && memcmp(one, three, bytes) == 0);
    CHECK(next && memcmp(one, next, bytes) != 0);
    free(one), free(three), free(next);
    pn_aug_free(aug);
}

static void test_samplers(void) {
    pn_loader_config c = base_config();
    int npos = 0;
    for (int i = 0; i < N; i++) npos += has_mask[i];
    CHECK(npos > 2 && npos < N - 2);
    c.sampler = PN_SAMPLER_POS_SHARE, c.pos_share = 0.6;
    int *o0, *o1;
    int64_t n0, n1;
    CHECK(pn_loader_epoch_order(&c, 0, &o0, &n0) == PN_OK && pn_loader_epoch_order(&c, 1, &o1, &n1) == PN_OK);
    int64_t want = npos + (int64_t)(npos * (1 - 0.6) / 0.6);
    CHECK(n0 == want && n1 == want);
    int seen[N] = {0};
    for (int64_t i = 0; i < n0; i++) seen[o0[i]]++;
    int negs = 0;
    for (int i = 0; i < N; i++) {
        if (has_mask[i])
            CHECK(seen[i] == 1);
        else
            negs += seen[i];
    }
    CHECK(negs == want - npos);
    CHECK(memcmp(o0, o1, sizeof(int) * n0) != 0);
    free(o0), free(o1);
    pn_loader_t *ld;
    CHECK(pn_loader_create(&c, &ld) == PN_OK);
    CHECK(pn_loader_epoch_samples(ld) == want && pn_loader_epoch_batches(ld) == (want + 3) / 4);
    pn_loader_destroy(ld);
    /* Plain shuffle is a permutation. */
    c.sampler = PN_SAMPLER_SEQUENTIAL, c.shuffle = true;
    CHECK(pn_loader_epoch_order(&c, 4, &o0, &n0) == PN_OK && n0 == N);
    int hits[N] = {0}, moved = 0;
    for (int i = 0; i < N; i++) hits[o0[i]]++, moved += o0[i] != i;
    for (int i = 0; i < N; i++) CHECK(hits[i] == 1);
    CHECK(moved > N / 2);
    free(o0);
    c.pos_share = 1.5, c.sampler = PN_SAMPLER_POS_SHARE;
    CHECK(pn_loader_create(&c, &ld) == PN_ERR_ARG);
}

/* A missing image comes back from pn_loader_next naming the file; restarting an epoch midway is fine. */
/* Data-parallel shards: with 2 shards of batch 2, batch b of shard r is images 2r, 2r+1 of global batch b of one
 * loader with batch 4 (augmentation included: it is keyed by the stream position), and the partial batch is dropped. */
static void test_shards(void) {
    pn_aug_pipeline *aug;
    CHECK(pn_aug_parse("winner", PN_BORDER_CONSTANT, &aug) == PN_OK);
    pn_loader_config c = base_config();
    c.aug = aug, c.shuffle = true, c.drop_last = true, c.sampler = PN_SAMPLER_POS_SHARE, c.pos_share = 0.5;
    int64_t n_all, n_part[2];
    int b_all, b_part[2], l;
    float *all = run_epoch(&c, 1, &n_all, &b_all, &l), *part[2];
    c.batch_size = 2, c.shards = 2;
    for (int r = 0; r < 2; r++) {
        c.shard = r;
        part[r] = run_epoch(&c, 1, &n_part[r], &b_part[r], &l);
    }
    size_t per = (size_t)4 * S * S;
    CHECK(all && part[0] && part[1] && b_part[0] == b_all && b_part[1] == b_all && n_part[0] + n_part[1] == n_all);
    int bad = 0;
    for (int b = 0; all && part[0] && part[1] && b < b_all; b++)
        for (int r = 0; r < 2; r++)
            bad += memcmp(part[r] + (size_t)2 * b * per, all + (size_t)(4 * b + 2 * r) * per,
                          2 * per * sizeof(float)) != 0;
    CHECK_MSG(bad == 0, "%d shard batches differ from their part of the global batch", bad);
    free(all), free(part[0]), free(part[1]);
    pn_loader_t *ld;
    c.shard = 2;
    CHECK(pn_loader_create(&c, &ld) != PN_OK && strstr(pn_last_error(), "shard 2 of 2"));
    c.shard = 1, c.drop_last = false;
    CHECK(pn_loader_create(&c, &ld) != PN_OK);
    pn_aug_free(aug);
}

static void test_errors(void) {
    const char *bad_ids[3] = {"img00", "nope", "img01"};
    pn_loader_config c = base_config();
    c.ids = bad_ids, c.n_ids = 3, c.has_mask = NULL, c.batch_size = 1, c.threads = 2;
    pn_loader_t *ld;
    CHECK(pn_loader_create(&c, &ld) == PN_OK);
    CHECK(pn_loader_start_epoch(ld, 0) == PN_OK);
    pn_batch b;
    bool done = false;
    pn_status st = PN_OK;
    for (int i = 0; i < 4 && st == PN_OK && !done; i++) st = pn_loader_next(ld, &b, &done);
    CHECK(st != PN_OK && strstr(pn_last_error(), "nope.png"));
    pn_loader_destroy(ld);
    c = base_config();
    c.batch_size = 2;
    CHECK(pn_loader_create(&c, &ld) == PN_OK);
    for (uint32_t e = 0; e < 3; e++) {
        CHECK(pn_loader_start_epoch(ld, e) == PN_OK);
        CHECK(pn_loader_next(ld, &b, &done) == PN_OK && !done && b.n == 2);
    }
    pn_loader_destroy(ld);
}

int main(int argc, char **argv) {
    const char *scratch = argc > 1 ? argv[1] : "scratch_loader";
    if (make_set(scratch) != 0) {
        SKIP("cannot write PNGs: %s", pn_last_error());
        return check_report("test_loader");
    }
    test_plain();
    test_threads();
    test_samplers();
    test_shards();
    test_errors();
    return check_report("test_loader");
}
