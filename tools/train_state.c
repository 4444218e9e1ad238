/* train_state: writes and reads the training state as one safetensors file. */
#include "train_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"

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
