/* arch: naming, listing and recognising the architectures (see arch.h). */
#include "arch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builder.h"

pn_status pn_arch_make(const char *encoder, const char *decoder, const char *attention, pn_arch *out) {
    memset(out, 0, sizeof *out);
    if (!decoder || !decoder[0]) decoder = "unet";
    if (!attention || strcmp(attention, "none") == 0) attention = "";
    if (!encoder || !pn_encoder_find(encoder))
        return pn_error(PN_ERR_UNSUPPORTED, "encoder '%s' is not available (available: %s)", encoder ? encoder : "",
                        pn_arch_encoder_names());
    if (strcmp(decoder, "unet") != 0 && strcmp(decoder, "albunet") != 0)
        return pn_error(PN_ERR_UNSUPPORTED, "decoder '%s' is not available (available: unet, albunet)", decoder);
    if (attention[0] && strcmp(attention, "scse") != 0)
        return pn_error(PN_ERR_UNSUPPORTED, "decoder attention '%s' is not available (available: none, scse)",
                        attention);
    if (strcmp(decoder, "albunet") == 0 && (strcmp(encoder, "resnet34") != 0 || attention[0]))
        return pn_error(PN_ERR_UNSUPPORTED, "AlbuNet is defined on the resnet34 encoder without attention (got %s%s%s)",
                        encoder, attention[0] ? " with " : "", attention);
    snprintf(out->encoder, sizeof out->encoder, "%s", encoder);
    snprintf(out->decoder, sizeof out->decoder, "%s", decoder);
    snprintf(out->attention, sizeof out->attention, "%s", attention);
    return PN_OK;
}

const char *pn_arch_text(const pn_arch *a, char *buf, size_t n) {
    snprintf(buf, n, "%s %s%s%s", a->encoder, a->decoder, a->attention[0] ? "+" : "", a->attention);
    return buf;
}

const char *pn_arch_pytorch_call(const pn_arch *a, char *buf, size_t n) {
    if (strcmp(a->decoder, "albunet") == 0)
        snprintf(buf, n, "AlbuNet(num_classes=1, num_filters=32, pretrained=False, is_deconv=False)");
    else if (a->attention[0])
        snprintf(buf, n, "smp.Unet('%s', encoder_weights=None, classes=1, decoder_attention_type='%s')", a->encoder,
                 a->attention);
    else
        snprintf(buf, n, "smp.Unet('%s', encoder_weights=None, classes=1)", a->encoder);
    return buf;
}

int pn_arch_input_multiple(const pn_arch *a) { return strcmp(a->decoder, "albunet") == 0 ? 64 : 32; }

bool pn_arch_at(int i, pn_arch *out) {
    int n_enc = 0;
    while (pn_encoder_at(n_enc)) n_enc++;
    if (i < 0 || i > 2 * n_enc) return false;
    if (i == 2 * n_enc) return pn_arch_make("resnet34", "albunet", NULL, out) == PN_OK;
    return pn_arch_make(pn_encoder_at(i / 2)->name, "unet", i % 2 ? "scse" : NULL, out) == PN_OK;
}

const char *pn_arch_encoder_names(void) {
    static char names[256];
    if (names[0]) return names;
    size_t used = 0;
    for (int i = 0; pn_encoder_at(i); i++)
        used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", pn_encoder_at(i)->name);
    return names;
}

/* ---------------- recognising a file ---------------- */

bool pn_is_bn_buffer(const char *name, const char *bn_prefix) {
    size_t len = strlen(bn_prefix);
    if (strncmp(name, bn_prefix, len) != 0 || name[len] != '.') return false;
    const char *tail = name + len + 1;
    return strcmp(tail, "running_mean") == 0 || strcmp(tail, "running_var") == 0 ||
           strcmp(tail, "num_batches_tracked") == 0;
}

/* Tensors an AlbuNet checkpoint holds besides its parameters: the same encoder modules again under the names the
 * winner's model registered them a second time (conv1.0/conv1.1 = encoder.conv1/bn1, conv2..conv5 =
 * encoder.layer1..4), and the unused classifier encoder.fc. */
bool pn_arch_is_set_aside(const pn_arch *a, const char *name) {
    if (strcmp(a->decoder, "albunet") != 0) return false;
    name = pn_st_unprefixed(name);
    if (strncmp(name, "encoder.fc.", 11) == 0) return true;
    return strncmp(name, "conv", 4) == 0 && name[4] >= '1' && name[4] <= '5' && name[5] == '.';
}

/* How many of the model's tensors the file has with the right shape, and the first misfit (in why). */
static int match(const pn_model_desc *d, const pn_st_file *f, char *why, size_t n) {
    int good = 0;
    why[0] = 0;
    for (int i = 0; i < d->n_params; i++) {
        const pn_param_decl *p = &d->params[i];
        const pn_st_entry *e = pn_st_find_unprefixed(f, p->name);
        if (e && pn_st_has_shape(e, p->ndim, p->shape)) {
            good++;
            continue;
        }
        if (why[0]) continue;
        char want[64], got[64];
        pn_shape_text(p->ndim, p->shape, want, sizeof want);
        if (!e)
            snprintf(why, n, "it has no tensor '%s'", p->name);
        else {
            pn_shape_text(e->ndim, e->shape, got, sizeof got);
            snprintf(why, n, "its '%s' has shape %s, not %s", p->name, got, want);
        }
    }
    for (int i = 0; i < f->count && !why[0]; i++) {
        const char *name = pn_st_unprefixed(f->entries[i].name);
        if (pn_arch_is_set_aside(&d->arch, name)) continue;
        bool known = false;
        for (int k = 0; !known && k < d->n_params; k++) known = strcmp(d->params[k].name, name) == 0;
        for (int k = 0; !known && k < d->n_bns; k++) {
            known = pn_is_bn_buffer(name, d->bns[k].prefix);
        }
        if (!known) snprintf(why, n, "its tensor '%s' is not part of that model", f->entries[i].name);
    }
    return good;
}

pn_status pn_arch_from_file(const pn_st_file *f, pn_arch *out) {
    pn_arch a, best;
    int best_good = -1;
    char best_why[256] = "", why[256];
    for (int i = 0; pn_arch_at(i, &a); i++) {
        pn_model_desc d;
        PN_TRY(pn_model_describe(&a, &d));
        int good = match(&d, f, why, sizeof why);
        pn_model_desc_free(&d);
        if (!why[0]) {
            *out = a;
            return PN_OK;
        }
        if (good > best_good) {
            best_good = good, best = a;
            snprintf(best_why, sizeof best_why, "%s", why);
        }
    }
    char text[96];
    return pn_error(PN_ERR_FORMAT, "%s is none of the architectures pneumoseg builds (closest: %s, but %s)", f->path,
                    pn_arch_text(&best, text, sizeof text), best_why);
}
