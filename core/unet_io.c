/* unet_io: the model's weights as safetensors under smp's state_dict names (load and save). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "unet.h"

#define KEY_LEN 256

/* pn_unet_read_tensor through `scratch` (at least the tensor's size in floats). */
static pn_status read_tensor_via(const pn_st_file *f, const char *key, const pn_tensor *t, float *scratch) {
    const pn_st_entry *e = pn_st_find_unprefixed(f, key);
    if (!e) return pn_error(PN_ERR_FORMAT, "%s: missing tensor '%s'", f->path, key);
    if (!pn_st_has_shape(e, t->ndim, t->shape)) {
        char want[96], got[96];
        pn_shape_text(t->ndim, t->shape, want, sizeof want);
        pn_shape_text(e->ndim, e->shape, got, sizeof got);
        return pn_error(PN_ERR_FORMAT, "%s: tensor '%s' has shape %s, the model expects %s", f->path, key, got, want);
    }
    int64_t n = pn_tensor_numel(t);
    PN_TRY(pn_st_read_f32(f, e, scratch, n));
    return pn_tensor_set(t, scratch);
}

pn_status pn_unet_read_tensor(const pn_st_file *f, const char *key, const pn_tensor *t) {
    float *v = malloc((size_t)pn_tensor_numel(t) * sizeof *v);
    if (!v) return pn_error(PN_ERR_NOMEM, "out of memory loading %s", key);
    pn_status st = read_tensor_via(f, key, t, v);
    free(v);
    return st;
}

static pn_status load_counter(const pn_st_file *f, const char *key, int64_t *out) {
    const pn_st_entry *e = pn_st_find_unprefixed(f, key);
    if (!e) return pn_error(PN_ERR_FORMAT, "%s: missing tensor '%s'", f->path, key);
    if (pn_st_numel(e) != 1) return pn_error(PN_ERR_FORMAT, "%s: tensor '%s' must hold one value", f->path, key);
    return pn_st_read_i64(f, e, out, 1);
}

/* Every entry of the file must be a tensor the model has (or one its architecture sets aside: AlbuNet's aliases). */
static pn_status check_no_extra(pn_unet *m, const pn_st_file *f) {
    for (int i = 0; i < f->count; i++) {
        const char *name = pn_st_unprefixed(f->entries[i].name);
        bool known = pn_arch_is_set_aside(pn_unet_arch(m), name);
        for (int p = 0; !known && p < pn_unet_num_params(m); p++)
            known = strcmp(pn_unet_param_at(m, p)->name, name) == 0;
        for (int b = 0; !known && b < pn_unet_num_bns(m); b++)
            known = pn_is_bn_buffer(name, pn_unet_bn_at(m, b)->prefix);
        if (!known)
            return pn_error(PN_ERR_FORMAT, "%s: unexpected tensor '%s' (not part of this model)", f->path,
                            f->entries[i].name);
    }
    return PN_OK;
}

/* Every parameter and BatchNorm statistic of `m` from f (names after `prefix`), through one scratch buffer. */
static pn_status read_weights_via(pn_unet *m, const pn_st_file *f, const char *prefix, float *scratch) {
    char key[KEY_LEN];
    for (int i = 0; i < pn_unet_num_params(m); i++) {
        pn_unet_param *p = pn_unet_param_at(m, i);
        snprintf(key, sizeof key, "%s%s", prefix, p->name);
        PN_TRY(read_tensor_via(f, key, &p->value, scratch));
    }
    for (int i = 0; i < pn_unet_num_bns(m); i++) {
        pn_unet_bn *b = pn_unet_bn_at(m, i);
        snprintf(key, sizeof key, "%s%s.running_mean", prefix, b->prefix);
        PN_TRY(read_tensor_via(f, key, &b->running_mean, scratch));
        snprintf(key, sizeof key, "%s%s.running_var", prefix, b->prefix);
        PN_TRY(read_tensor_via(f, key, &b->running_var, scratch));
        snprintf(key, sizeof key, "%s%s.num_batches_tracked", prefix, b->prefix);
        if (pn_st_find_unprefixed(f, key)) PN_TRY(load_counter(f, key, &b->num_batches_tracked));
    }
    return PN_OK;
}

pn_status pn_unet_read_weights(pn_unet *m, const pn_st_file *f, const char *prefix) {
    int64_t largest = 0; /* one buffer for all: a fresh one per tensor pays page faults for the model's size again */
    for (int i = 0; i < pn_unet_num_params(m); i++) {
        int64_t n = pn_tensor_numel(&pn_unet_param_at(m, i)->value);
        largest = n > largest ? n : largest;
    }
    for (int i = 0; i < pn_unet_num_bns(m); i++) {
        int64_t n = pn_tensor_numel(&pn_unet_bn_at(m, i)->running_mean);
        largest = n > largest ? n : largest;
    }
    float *scratch = malloc((size_t)(largest > 0 ? largest : 1) * sizeof *scratch);
    if (!scratch) return pn_error(PN_ERR_NOMEM, "out of memory loading %s", f->path);
    pn_status st = read_weights_via(m, f, prefix, scratch);
    free(scratch);
    return st;
}

/* The file's card must name the model's architecture where it names one; its other fields replace the model's. */
static pn_status read_card(pn_unet *m, const pn_st_file *f) {
    pn_model_card file;
    PN_TRY(pn_model_card_read(f, &file));
    pn_model_card *mine = pn_unet_card(m);
    if ((file.encoder[0] && strcmp(file.encoder, mine->encoder) != 0) ||
        (file.decoder[0] && strcmp(file.decoder, mine->decoder) != 0) ||
        (file.decoder[0] && strcmp(file.attention, mine->attention) != 0))
        return pn_error(PN_ERR_FORMAT, "%s holds a %s%s%s %s model, not the %s%s%s %s asked for", f->path, file.encoder,
                        file.attention[0] ? "/" : "", file.attention, file.decoder[0] ? file.decoder : "?",
                        mine->encoder, mine->attention[0] ? "/" : "", mine->attention, mine->decoder);
    memcpy(file.encoder, mine->encoder, sizeof file.encoder);
    memcpy(file.decoder, mine->decoder, sizeof file.decoder);
    memcpy(file.attention, mine->attention, sizeof file.attention);
    *mine = file;
    return PN_OK;
}

pn_status pn_unet_load(pn_unet *m, const char *path) {
    pn_st_file *f;
    PN_TRY(pn_st_open(path, &f));
    pn_status st = read_card(m, f);
    if (st == PN_OK) st = check_no_extra(m, f);
    if (st == PN_OK) st = pn_unet_read_weights(m, f, "");
    pn_st_close(f);
    return st;
}

static pn_status fill_from_tensor(void *ctx, void *dst) { return pn_tensor_get((const pn_tensor *)ctx, dst); }

pn_status pn_unet_add_tensor(pn_st_writer *w, const char *key, const pn_tensor *t) {
    return pn_st_writer_add_fill(w, key, PN_ST_F32, t->ndim, t->shape, fill_from_tensor, (void *)t);
}

pn_status pn_unet_add_weights(pn_unet *m, pn_st_writer *w, const char *prefix) {
    char key[KEY_LEN];
    for (int i = 0; i < pn_unet_num_params(m); i++) {
        pn_unet_param *p = pn_unet_param_at(m, i);
        snprintf(key, sizeof key, "%s%s", prefix, p->name);
        PN_TRY(pn_unet_add_tensor(w, key, &p->value));
    }
    for (int i = 0; i < pn_unet_num_bns(m); i++) {
        pn_unet_bn *b = pn_unet_bn_at(m, i);
        snprintf(key, sizeof key, "%s%s.running_mean", prefix, b->prefix);
        PN_TRY(pn_unet_add_tensor(w, key, &b->running_mean));
        snprintf(key, sizeof key, "%s%s.running_var", prefix, b->prefix);
        PN_TRY(pn_unet_add_tensor(w, key, &b->running_var));
        snprintf(key, sizeof key, "%s%s.num_batches_tracked", prefix, b->prefix);
        PN_TRY(pn_st_writer_add(w, key, PN_ST_I64, 0, NULL, &b->num_batches_tracked));
    }
    return PN_OK;
}

static pn_status save_weights(pn_unet *m, pn_st_writer *w, const char *path) {
    PN_TRY(pn_unet_add_weights(m, w, ""));
    PN_TRY(pn_st_writer_meta(w, "format", "pt"));
    PN_TRY(pn_st_writer_meta(w, "producer", "pneumoseg"));
    PN_TRY(pn_model_card_write(pn_unet_card(m), w));
    return pn_st_writer_save(w, path);
}

pn_status pn_unet_save(pn_unet *m, const char *path) {
    pn_st_writer *w = pn_st_writer_new();
    pn_status st = w ? save_weights(m, w, path) : pn_error(PN_ERR_NOMEM, "out of memory");
    pn_st_writer_free(w);
    return st;
}
