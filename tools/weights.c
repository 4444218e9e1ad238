/* weights: any checkpoint into the model by smp names, and --norm from the weights' metadata (see weights.h). */
#include "weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "data/checkpoint.h"
#include "data/keymap.h"

/* One tensor of the model: a parameter, a running statistic or a batch counter. */
typedef struct target {
    char name[208];
    const pn_tensor *t; /* NULL for num_batches_tracked */
    int64_t *counter;
    bool encoder;
    int src; /* checkpoint tensor, -1 = none */
} target;

typedef struct loader {
    pn_unet *m;
    const char *path;
    pn_load_mode mode;
    pn_ckpt *ck;
    pn_keymap map;
    target *targets;
    int n_targets;
    const char *decoder;
} loader;

static bool is_encoder(const char *name) { return strncmp(name, "encoder.", 8) == 0; }

static target *add_target(loader *l, const char *name, const pn_tensor *t, int64_t *counter) {
    target *x = &l->targets[l->n_targets++];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->t = t;
    x->counter = counter;
    x->encoder = is_encoder(name);
    x->src = -1;
    return x;
}

static pn_status list_targets(loader *l) {
    pn_unet *m = l->m;
    int n = pn_unet_num_params(m) + 3 * pn_unet_num_bns(m);
    l->targets = calloc((size_t)n + 1, sizeof *l->targets);
    if (!l->targets) return pn_error(PN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < pn_unet_num_params(m); i++)
        add_target(l, pn_unet_param_at(m, i)->name, &pn_unet_param_at(m, i)->value, NULL);
    char name[200];
    for (int i = 0; i < pn_unet_num_bns(m); i++) {
        pn_unet_bn *b = pn_unet_bn_at(m, i);
        snprintf(name, sizeof name, "%s.running_mean", b->prefix);
        add_target(l, name, &b->running_mean, NULL);
        snprintf(name, sizeof name, "%s.running_var", b->prefix);
        add_target(l, name, &b->running_var, NULL);
        snprintf(name, sizeof name, "%s.num_batches_tracked", b->prefix);
        add_target(l, name, NULL, &b->num_batches_tracked);
    }
    return PN_OK;
}

static target *find_target(loader *l, const char *name) {
    for (int i = 0; i < l->n_targets; i++)
        if (!strcmp(l->targets[i].name, name)) return &l->targets[i];
    return NULL;
}

static bool is_counter(const target *t) { return t->counter != NULL; }
static bool wanted(const loader *l, const target *t) { return l->mode != PN_LOAD_ENCODER || t->encoder; }

static void shape_text(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
}

/* The source tensor of each model tensor; a file tensor the model does not have is an error (a dropped classifier
 * or alias is not), except the decoder and head of a file whose encoder alone is wanted. */
static pn_status match(loader *l, pn_load_result *r) {
    for (int i = 0; i < l->map.n; i++) {
        const pn_keymap_item *it = &l->map.items[i];
        if (!it->target[0]) {
            r->dropped++;
            continue;
        }
        if (l->mode == PN_LOAD_ENCODER && !is_encoder(it->target)) {
            r->dropped++;
            continue;
        }
        const char *src = l->ck->tensors[i].name;
        target *t = find_target(l, it->target);
        if (!t) {
            char as[200] = "";
            if (strcmp(it->target, src)) snprintf(as, sizeof as, " (as '%s')", it->target);
            return pn_error(PN_ERR_FORMAT,
                            "%s: tensor '%s'%s is not part of this %s %s model (wrong --encoder, "
                            "--decoder or --from?)",
                            l->path, src, as, pn_unet_card(l->m)->encoder, l->decoder);
        }
        if (t->src >= 0)
            return pn_error(PN_ERR_FORMAT, "%s: both '%s' and '%s' give the model's '%s'", l->path,
                            l->ck->tensors[t->src].name, l->ck->tensors[i].name, t->name);
        const pn_ckpt_tensor *s = &l->ck->tensors[i];
        bool same = is_counter(t) ? pn_ckpt_numel(s) == 1 : s->ndim == t->t->ndim;
        for (int d = 0; !is_counter(t) && same && d < s->ndim; d++) same = s->shape[d] == t->t->shape[d];
        if (!same) {
            char got[96], want[96];
            shape_text(s->ndim, s->shape, got, sizeof got);
            if (is_counter(t))
                snprintf(want, sizeof want, "[] (one value)");
            else
                shape_text(t->t->ndim, t->t->shape, want, sizeof want);
            return pn_error(PN_ERR_FORMAT, "%s: tensor '%s' (the model's '%s') has shape %s, the model expects %s",
                            l->path, s->name, t->name, got, want);
        }
        t->src = i;
    }
    return PN_OK;
}

/* What the mode needs must be there; *encoder_only when the file holds nothing of the model but the encoder. */
static pn_status check_missing(loader *l, pn_load_result *r) {
    int enc_missing = 0, rest_missing = 0, rest_total = 0;
    const char *first_enc = NULL, *first_rest = NULL;
    for (int i = 0; i < l->n_targets; i++) {
        const target *t = &l->targets[i];
        if (is_counter(t) || !wanted(l, t)) continue; /* batch counters are optional (old checkpoints lack them) */
        if (!t->encoder) rest_total++;
        if (t->src >= 0) continue;
        if (t->encoder)
            enc_missing++, first_enc = first_enc ? first_enc : t->name;
        else
            rest_missing++, first_rest = first_rest ? first_rest : t->name;
    }
    r->missing = enc_missing + rest_missing;
    r->encoder_only = rest_total > 0 && rest_missing == rest_total;
    if (enc_missing)
        return pn_error(PN_ERR_FORMAT, "%s lacks %d encoder tensor(s) of this %s model, e.g. '%s' (another encoder?)",
                        l->path, enc_missing, pn_unet_card(l->m)->encoder, first_enc);
    if (l->mode == PN_LOAD_WHOLE && r->encoder_only)
        return pn_error(PN_ERR_FORMAT,
                        "%s holds encoder weights only: start from it with `pneumoseg init --encoder-weights` "
                        "or `train --init`",
                        l->path);
    if (rest_missing && !r->encoder_only)
        return pn_error(PN_ERR_FORMAT, "%s lacks %d of the decoder and head tensors, e.g. '%s'", l->path, rest_missing,
                        first_rest);
    return PN_OK;
}

static pn_status copy_values(loader *l, pn_load_result *r) {
    int64_t most = 1;
    for (int i = 0; i < l->n_targets; i++)
        if (l->targets[i].src >= 0 && l->targets[i].t && pn_tensor_numel(l->targets[i].t) > most)
            most = pn_tensor_numel(l->targets[i].t);
    float *buf = malloc((size_t)most * sizeof *buf);
    if (!buf) return pn_error(PN_ERR_NOMEM, "out of memory");
    pn_status st = PN_OK;
    for (int i = 0; st == PN_OK && i < l->n_targets; i++) {
        target *t = &l->targets[i];
        if (t->src < 0 || !wanted(l, t)) continue;
        if (is_counter(t)) {
            if (l->ck->tensors[t->src].is_float) {
                st = pn_ckpt_read_f32(l->ck, t->src, buf, 1);
                *t->counter = (int64_t)buf[0];
            } else {
                st = pn_ckpt_read_i64(l->ck, t->src, t->counter, 1);
            }
        } else {
            int64_t n = pn_tensor_numel(t->t);
            st = pn_ckpt_read_f32(l->ck, t->src, buf, n);
            if (st == PN_OK) st = pn_tensor_set(t->t, buf);
        }
        r->loaded += st == PN_OK;
    }
    free(buf);
    return st;
}

/* A file with our metadata must be for this architecture; its normalisation is what the weights expect. */
static pn_status check_card(loader *l, pn_load_result *r) {
    if (!l->ck->st) return PN_OK;
    pn_model_card file;
    PN_TRY(pn_model_card_read(l->ck->st, &file));
    const pn_model_card *mine = pn_unet_card(l->m);
    bool other = file.encoder[0] && strcmp(file.encoder, mine->encoder);
    if (l->mode != PN_LOAD_ENCODER && file.decoder[0])
        other |= strcmp(file.decoder, mine->decoder) || strcmp(file.attention, mine->attention);
    if (other)
        return pn_error(PN_ERR_FORMAT, "%s holds a %s %s model, not the %s %s asked for", l->path, file.encoder,
                        file.decoder[0] ? file.decoder : "", mine->encoder, mine->decoder);
    snprintf(r->normalize, sizeof r->normalize, "%s", file.normalize);
    return PN_OK;
}

/* A mapped tensor that init --encoder-weights leaves out. */
static bool not_encoder(const loader *l, const char *target) {
    return l->mode == PN_LOAD_ENCODER && target[0] && !is_encoder(target);
}

/* "fc.weight, fc.bias (classifier); decoder.x, decoder.y, ... (not the encoder) x60" */
static void describe_dropped(const loader *l, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = 0;
    const char *seen[16];
    int n_seen = 0;
    for (int i = 0; i < l->map.n && used < cap; i++) {
        const pn_keymap_item *it = &l->map.items[i];
        const char *why = it->why ? it->why : not_encoder(l, it->target) ? "not the encoder" : NULL;
        if (!why) continue;
        bool done = false;
        for (int k = 0; k < n_seen; k++) done |= seen[k] == why;
        if (done || n_seen == 16) continue;
        seen[n_seen++] = why;
        int count = 0;
        char names[160] = "";
        for (int j = i; j < l->map.n; j++) {
            const pn_keymap_item *o = &l->map.items[j];
            const char *w = o->why ? o->why : not_encoder(l, o->target) ? "not the encoder" : NULL;
            if (w != why) continue;
            if (count < 2)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", count ? ", " : "",
                         l->ck->tensors[j].name);
            count++;
        }
        used += (size_t)snprintf(buf + used, cap - used, "%s%s%s (%s)", used ? "; " : "", names,
                                 count > 2 ? ", ..." : "", why);
        if (count > 2 && used < cap) used += (size_t)snprintf(buf + used, cap - used, " x%d", count);
    }
}

pn_status pn_tool_load_weights(pn_unet *m, const char *path, pn_load_mode mode, const char *from, pn_load_result *r) {
    memset(r, 0, sizeof *r);
    pn_keymap_from f = PN_FROM_AUTO;
    if (from) PN_TRY(pn_keymap_from_parse(from, &f));
    loader l = {.m = m, .path = path, .mode = mode, .decoder = pn_unet_card(m)->decoder};
    PN_TRY(pn_ckpt_open(path, &l.ck));
    const char **paths = calloc((size_t)l.ck->count + 1, sizeof *paths),
               **names = calloc((size_t)l.ck->count + 1, sizeof *names);
    pn_status st = paths && names ? PN_OK : pn_error(PN_ERR_NOMEM, "out of memory");
    for (int i = 0; st == PN_OK && i < l.ck->count; i++)
        paths[i] = l.ck->tensors[i].path, names[i] = l.ck->tensors[i].name;
    if (st == PN_OK) st = pn_keymap_make(paths, names, l.ck->count, f, pn_unet_card(m)->encoder, l.decoder, &l.map);
    if (st != PN_OK && !strstr(pn_last_error(), path)) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", pn_last_error());
        st = pn_error(st, "%s: %s", path, msg);
    }
    free(paths);
    free(names);
    if (st == PN_OK) st = check_card(&l, r);
    if (st == PN_OK) st = list_targets(&l);
    if (st == PN_OK) st = match(&l, r);
    if (st == PN_OK) st = check_missing(&l, r);
    if (st == PN_OK) st = copy_values(&l, r);
    if (st == PN_OK) {
        snprintf(r->from, sizeof r->from, "%s", pn_keymap_from_name(l.map.from));
        const char *norm = pn_keymap_normalize(l.map.from);
        if (!r->normalize[0] && norm) snprintf(r->normalize, sizeof r->normalize, "%s", norm);
        if (r->normalize[0])
            snprintf(pn_unet_card(m)->normalize, sizeof pn_unet_card(m)->normalize, "%s", r->normalize);
        char dropped[600];
        describe_dropped(&l, dropped, sizeof dropped);
        pn_log_info("%s: %s, %s names%s%s%s: %d tensors loaded%s%s%s%s", path, l.ck->format, r->from,
                    l.map.detected ? " (detected)" : "", l.map.group[0] ? " under " : "", l.map.group, r->loaded,
                    dropped[0] ? ", dropped: " : "", dropped,
                    r->encoder_only && mode != PN_LOAD_ENCODER ? "; no decoder or head "
                                                                 "in the file: the model's own are kept"
                                                               : "",
                    r->normalize[0] ? "" : "; input normalisation not recorded");
    }
    pn_keymap_free(&l.map);
    free(l.targets);
    pn_ckpt_close(l.ck);
    return st;
}

pn_status pn_tool_resolve_norm(const char *option, const char *recorded, const char *what, const char **norm,
                               const char **how) {
    pn_norm_mode mode;
    if (recorded && recorded[0] && pn_norm_parse(recorded, &mode) != PN_OK)
        return pn_error(PN_ERR_FORMAT, "%s records the input normalisation '%s', which is not none, unit or imagenet",
                        what, recorded);
    if (option) {
        PN_TRY(pn_norm_parse(option, &mode));
        if (recorded && recorded[0] && strcmp(option, recorded))
            pn_log_warn("--norm %s, but %s was trained with '%s' input normalisation", option, what, recorded);
        *norm = option;
        *how = "--norm";
        return PN_OK;
    }
    if (recorded && recorded[0]) {
        *norm = recorded;
        *how = "the weights' metadata";
        return PN_OK;
    }
    *norm = "imagenet";
    *how = "the default";
    return PN_OK;
}
