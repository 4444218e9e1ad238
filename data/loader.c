/* loader: samplers, the worker threads and the batch ring (pthreads). */
#include "loader.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/rng.h"
#include "data/png.h"

typedef struct slot {
    float *image, *target;
    int *ids;
    int n;
    int64_t ready; /* batch index this slot holds when filled, -1 otherwise */
} slot;

struct pn_loader {
    pn_loader_config cfg;
    char **ids;
    bool *has_mask;
    int n_pos, n_neg;
    int64_t epoch_samples;
    /* epoch state, guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t *workers;
    int n_workers;
    uint32_t epoch;
    int *order;
    int64_t n_batches, claim, consume, released;
    bool holding, stop, running;
    pn_status err;
    char err_msg[512];
    int ring;
    slot *slots;
};

/* ---------------------------------------------------------------- samplers */

static void permute(int *v, int64_t n, pn_rng *rng) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = pn_rng_below(rng, (uint32_t)(i + 1));
        int t = v[i];
        v[i] = v[j], v[j] = t;
    }
}

static int64_t pos_share_negatives(int n_pos, double p) { return (int64_t)(n_pos * (1 - p) / p); }

pn_status pn_loader_epoch_order(const pn_loader_config *cfg, uint32_t epoch, int **order, int64_t *count) {
    *order = NULL, *count = 0;
    if (cfg->sampler == PN_SAMPLER_SEQUENTIAL) {
        int *v = malloc(sizeof(int) * (size_t)(cfg->n_ids ? cfg->n_ids : 1));
        if (!v) return pn_error(PN_ERR_NOMEM, "loader: no memory for the sample order");
        for (int i = 0; i < cfg->n_ids; i++) v[i] = i;
        if (cfg->shuffle) {
            pn_rng rng = pn_rng_make(cfg->seed, PN_RNG_SHUFFLE, epoch, 0);
            permute(v, cfg->n_ids, &rng);
        }
        *order = v, *count = cfg->n_ids;
        return PN_OK;
    }
    if (!cfg->has_mask) return pn_error(PN_ERR_ARG, "loader: the positive-share sampler needs has_mask flags");
    int n_pos = 0;
    for (int i = 0; i < cfg->n_ids; i++) n_pos += cfg->has_mask[i];
    int n_negs_avail = cfg->n_ids - n_pos;
    int64_t n_neg = pos_share_negatives(n_pos, cfg->pos_share);
    if (n_neg > 0 && n_negs_avail == 0)
        return pn_error(PN_ERR_ARG, "loader: the positive-share sampler needs negatives, and there are none");
    int *neg = malloc(sizeof(int) * (size_t)(n_negs_avail + 1));
    int *v = malloc(sizeof(int) * (size_t)(n_neg + n_pos + 1));
    if (!neg || !v) {
        free(neg), free(v);
        return pn_error(PN_ERR_NOMEM, "loader: no memory for the sample order");
    }
    int k = 0;
    for (int i = 0; i < cfg->n_ids; i++)
        if (!cfg->has_mask[i]) neg[k++] = i;
    pn_rng rng = pn_rng_make(cfg->seed, PN_RNG_SAMPLER, epoch, 0);
    int64_t m = 0;
    for (int64_t i = 0; i < n_neg; i++) v[m++] = neg[pn_rng_below(&rng, (uint32_t)n_negs_avail)];
    for (int i = 0; i < cfg->n_ids; i++)
        if (cfg->has_mask[i]) v[m++] = i;
    permute(v, m, &rng);
    free(neg);
    *order = v, *count = m;
    return PN_OK;
}

/* ---------------------------------------------------------------- one sample */

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Reads, augments, resizes and normalises sample `idx` (epoch position `pos`) into img/target. */
static pn_status load_sample(pn_loader_t *ld, int idx, int64_t pos, float *img, float *target) {
    const pn_loader_config *c = &ld->cfg;
    char path[4096];
    uint8_t *im = NULL, *mk = NULL, *ri = NULL, *rm = NULL;
    int w, h, mw = 0, mh = 0;
    snprintf(path, sizeof path, "%s/%s.png", c->image_dir, ld->ids[idx]);
    pn_status st = pn_png_read_grey(path, &im, &w, &h);
    if (st == PN_OK && c->mask_dir) {
        snprintf(path, sizeof path, "%s/%s.png", c->mask_dir, ld->ids[idx]);
        if (file_exists(path) || (ld->has_mask && ld->has_mask[idx])) {
            st = pn_png_read_grey(path, &mk, &mw, &mh);
            if (st == PN_OK && (mw != w || mh != h))
                st = pn_error(PN_ERR_FORMAT, "%s: mask is %dx%d but its image is %dx%d", path, mw, mh, w, h);
        }
    }
    if (st == PN_OK && !mk) {
        mk = pn_alloc((size_t)w * h);
        if (!mk) st = pn_error(PN_ERR_NOMEM, "loader: no memory");
    }
    if (st == PN_OK) st = pn_aug_apply(c->aug, im, mk, w, h, c->seed, ld->epoch, (uint32_t)pos);
    int s = c->size;
    if (st == PN_OK && (w != s || h != s)) {
        ri = pn_alloc((size_t)s * s), rm = pn_alloc((size_t)s * s);
        if (!ri || !rm) {
            st = pn_error(PN_ERR_NOMEM, "loader: no memory");
        } else {
            pn_aug_resize_u8(im, w, h, ri, s, s, false);
            pn_aug_resize_u8(mk, w, h, rm, s, s, true);
            pn_free(im), pn_free(mk);
            im = ri, mk = rm, ri = rm = NULL;
        }
    }
    if (st == PN_OK) {
        pn_aug_normalize(im, s, s, c->norm, img);
        for (size_t i = 0; i < (size_t)s * s; i++) target[i] = mk[i] * (1.0f / 255.0f);
    }
    pn_free(im), pn_free(mk), pn_free(ri), pn_free(rm);
    return st;
}

/* ---------------------------------------------------------------- workers and ring */

static int64_t shards_of(const pn_loader_config *c) { return c->shards > 1 ? c->shards : 1; }

static void *worker_main(void *arg) {
    pn_loader_t *ld = arg;
    const pn_loader_config *c = &ld->cfg;
    size_t per_img = (size_t)3 * c->size * c->size, per_tgt = (size_t)c->size * c->size;
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        while (!ld->stop && ld->claim < ld->n_batches && ld->claim >= ld->released + ld->ring)
            pthread_cond_wait(&ld->cv, &ld->mu);
        if (ld->stop || ld->claim >= ld->n_batches) break;
        int64_t b = ld->claim++;
        pthread_mutex_unlock(&ld->mu);
        slot *sl = &ld->slots[b % ld->ring];
        int64_t first = (b * shards_of(c) + c->shard) * c->batch_size, n = ld->epoch_samples - first;
        if (n > c->batch_size) n = c->batch_size;
        pn_status st = PN_OK;
        for (int64_t j = 0; j < n && st == PN_OK; j++) {
            int idx = ld->order[first + j];
            sl->ids[j] = idx;
            st = load_sample(ld, idx, first + j, sl->image + j * per_img, sl->target + j * per_tgt);
        }
        sl->n = (int)n;
        pthread_mutex_lock(&ld->mu);
        if (st != PN_OK && ld->err == PN_OK) {
            ld->err = st;
            snprintf(ld->err_msg, sizeof ld->err_msg, "%s", pn_last_error());
        }
        sl->ready = b;
        pthread_cond_broadcast(&ld->cv);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

static void stop_workers(pn_loader_t *ld) {
    if (!ld->running) return;
    pthread_mutex_lock(&ld->mu);
    ld->stop = true;
    pthread_cond_broadcast(&ld->cv);
    pthread_mutex_unlock(&ld->mu);
    for (int i = 0; i < ld->n_workers; i++) pthread_join(ld->workers[i], NULL);
    ld->n_workers = 0, ld->running = false;
}

pn_status pn_loader_create(const pn_loader_config *cfg, pn_loader_t **out) {
    *out = NULL;
    const pn_loader_config *c = cfg;
    if (!c->image_dir || !c->ids || c->n_ids <= 0) return pn_error(PN_ERR_ARG, "loader: no images");
    if (c->batch_size <= 0 || c->size <= 0 || c->size > 8192 || c->threads <= 0 || c->threads > 256)
        return pn_error(PN_ERR_ARG,
                        "loader: batch size %d, size %d, threads %d (expected positive, size <= 8192, threads <= 256)",
                        c->batch_size, c->size, c->threads);
    if (c->shard < 0 || c->shard >= shards_of(c) || (c->shards > 1 && !c->drop_last))
        return pn_error(PN_ERR_ARG, "loader: shard %d of %d (needs 0 <= shard < shards and drop_last)", c->shard,
                        c->shards);
    if (c->sampler == PN_SAMPLER_POS_SHARE && !(c->pos_share > 0 && c->pos_share <= 1))
        return pn_error(PN_ERR_ARG, "loader: positive share %g is outside (0, 1]", c->pos_share);
    pn_loader_t *ld = calloc(1, sizeof *ld);
    if (!ld) return pn_error(PN_ERR_NOMEM, "loader: no memory");
    ld->cfg = *c;
    ld->ids = calloc((size_t)c->n_ids, sizeof(char *));
    ld->has_mask = calloc((size_t)c->n_ids, sizeof(bool));
    pn_status st = ld->ids && ld->has_mask ? PN_OK : pn_error(PN_ERR_NOMEM, "loader: no memory");
    for (int i = 0; i < c->n_ids && st == PN_OK; i++) {
        ld->ids[i] = pn_strdup(c->ids[i]);
        if (!ld->ids[i]) st = pn_error(PN_ERR_NOMEM, "loader: no memory");
        ld->has_mask[i] = c->has_mask ? c->has_mask[i] : false;
        ld->n_pos += ld->has_mask[i];
    }
    ld->cfg.ids = (const char *const *)ld->ids;
    ld->cfg.has_mask = c->has_mask ? ld->has_mask : NULL;
    ld->n_neg = c->n_ids - ld->n_pos;
    ld->epoch_samples =
        c->sampler == PN_SAMPLER_SEQUENTIAL ? c->n_ids : ld->n_pos + pos_share_negatives(ld->n_pos, c->pos_share);
    if (st == PN_OK && c->sampler == PN_SAMPLER_POS_SHARE && !c->has_mask)
        st = pn_error(PN_ERR_ARG, "loader: the positive-share sampler needs has_mask flags");
    if (st == PN_OK && c->sampler == PN_SAMPLER_POS_SHARE && ld->n_pos == 0)
        st = pn_error(PN_ERR_ARG, "loader: the positive-share sampler needs at least one positive image");
    ld->ring = c->prefetch > 0 ? c->prefetch : 2 * c->threads + 1;
    ld->slots = calloc((size_t)ld->ring, sizeof(slot));
    ld->workers = calloc((size_t)c->threads, sizeof(pthread_t));
    if (st == PN_OK && (!ld->slots || !ld->workers)) st = pn_error(PN_ERR_NOMEM, "loader: no memory");
    size_t px = (size_t)c->size * c->size, nimg, ntgt;
    if (st == PN_OK && (!pn_mul_size(px, (size_t)3 * c->batch_size * sizeof(float), &nimg) ||
                        !pn_mul_size(px, (size_t)c->batch_size * sizeof(float), &ntgt)))
        st = pn_error(PN_ERR_ARG, "loader: batch %d of %d^2 is too large", c->batch_size, c->size);
    for (int i = 0; i < ld->ring && st == PN_OK; i++) {
        slot *s = &ld->slots[i];
        s->image = pn_alloc(nimg), s->target = pn_alloc(ntgt), s->ids = calloc((size_t)c->batch_size, sizeof(int));
        s->ready = -1;
        if (!s->image || !s->target || !s->ids)
            st = pn_error(PN_ERR_NOMEM, "loader: no memory for %d batches of %d x %d^2", ld->ring, c->batch_size,
                          c->size);
    }
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->cv, NULL);
    if (st != PN_OK) {
        pn_loader_destroy(ld);
        return st;
    }
    *out = ld;
    return PN_OK;
}

int64_t pn_loader_epoch_samples(const pn_loader_t *ld) { return ld->epoch_samples; }

int64_t pn_loader_epoch_batches(const pn_loader_t *ld) {
    int64_t b = ld->cfg.batch_size * shards_of(&ld->cfg);
    return ld->cfg.drop_last ? ld->epoch_samples / b : (ld->epoch_samples + b - 1) / b;
}

pn_status pn_loader_start_epoch(pn_loader_t *ld, uint32_t epoch) {
    stop_workers(ld);
    free(ld->order);
    ld->order = NULL;
    int64_t count;
    PN_TRY(pn_loader_epoch_order(&ld->cfg, epoch, &ld->order, &count));
    PN_ASSERT(count == ld->epoch_samples);
    ld->epoch = epoch;
    ld->n_batches = pn_loader_epoch_batches(ld);
    ld->claim = ld->consume = ld->released = 0;
    ld->holding = ld->stop = false;
    ld->err = PN_OK;
    ld->err_msg[0] = 0;
    for (int i = 0; i < ld->ring; i++) ld->slots[i].ready = -1;
    int want = ld->cfg.threads;
    for (int i = 0; i < want; i++) {
        if (pthread_create(&ld->workers[i], NULL, worker_main, ld) != 0) {
            ld->running = true;
            stop_workers(ld);
            return pn_error(PN_ERR_NOMEM, "loader: cannot start worker thread %d: %s", i, strerror(errno));
        }
        ld->n_workers = i + 1;
    }
    ld->running = true;
    return PN_OK;
}

pn_status pn_loader_next(pn_loader_t *ld, pn_batch *batch, bool *done) {
    *done = false;
    if (!ld->running) return pn_error(PN_ERR_ARG, "loader: pn_loader_next before pn_loader_start_epoch");
    pthread_mutex_lock(&ld->mu);
    if (ld->holding) {
        ld->released++, ld->holding = false;
        pthread_cond_broadcast(&ld->cv);
    }
    if (ld->consume >= ld->n_batches) {
        pthread_mutex_unlock(&ld->mu);
        *done = true;
        return PN_OK;
    }
    slot *sl = &ld->slots[ld->consume % ld->ring];
    while (sl->ready != ld->consume && ld->err == PN_OK) pthread_cond_wait(&ld->cv, &ld->mu);
    if (ld->err != PN_OK) {
        pn_status st = ld->err;
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ld->err_msg);
        pthread_mutex_unlock(&ld->mu);
        return pn_error(st, "%s", msg);
    }
    ld->consume++, ld->holding = true;
    pthread_mutex_unlock(&ld->mu);
    batch->n = sl->n, batch->size = ld->cfg.size;
    batch->image = sl->image, batch->target = sl->target, batch->ids = sl->ids;
    return PN_OK;
}

void pn_loader_destroy(pn_loader_t *ld) {
    if (!ld) return;
    stop_workers(ld);
    for (int i = 0; ld->slots && i < ld->ring; i++) {
        pn_free(ld->slots[i].image), pn_free(ld->slots[i].target);
        free(ld->slots[i].ids);
    }
    for (int i = 0; ld->ids && i < ld->cfg.n_ids; i++) free(ld->ids[i]);
    free(ld->ids), free(ld->has_mask), free(ld->slots), free(ld->workers), free(ld->order);
    pthread_mutex_destroy(&ld->mu);
    pthread_cond_destroy(&ld->cv);
    free(ld);
}
