/* model_card: the metadata a weights file carries about how to use it (see model_card.h). */
#include "model_card.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_ENCODER "pneumoseg.encoder"
#define KEY_DECODER "pneumoseg.decoder"
#define KEY_ATTENTION "pneumoseg.decoder_attention"
#define KEY_SIZE "pneumoseg.train_size"
#define KEY_NORMALIZE "pneumoseg.normalize"
#define KEY_TRIPLET "pneumoseg.triplet" /* "top,min_area,bottom", min area in pixels of a 1024 image */
#define KEY_SCORE "pneumoseg.val_score"

void pn_model_card_clear(pn_model_card *c) {
    memset(c, 0, sizeof *c);
    c->score = NAN;
}

static pn_status put(pn_st_writer *w, const char *key, const char *value) {
    return value[0] ? pn_st_writer_meta(w, key, value) : PN_OK;
}

pn_status pn_model_card_write(const pn_model_card *c, pn_st_writer *w) {
    char buf[96];
    PN_TRY(put(w, KEY_ENCODER, c->encoder));
    PN_TRY(put(w, KEY_DECODER, c->decoder));
    PN_TRY(put(w, KEY_ATTENTION, c->attention));
    PN_TRY(put(w, KEY_NORMALIZE, c->normalize));
    if (c->train_size > 0) {
        snprintf(buf, sizeof buf, "%d", c->train_size);
        PN_TRY(put(w, KEY_SIZE, buf));
    }
    if (c->has_triplet) {
        snprintf(buf, sizeof buf, "%.9g,%d,%.9g", c->top, c->min_area, c->bottom);
        PN_TRY(put(w, KEY_TRIPLET, buf));
    }
    if (isfinite(c->score)) {
        snprintf(buf, sizeof buf, "%.17g", c->score);
        PN_TRY(put(w, KEY_SCORE, buf));
    }
    return PN_OK;
}

static pn_status copy_text(const pn_st_file *f, const char *key, char *dst, size_t n) {
    const char *v = pn_st_meta(f, key);
    if (!v) return PN_OK;
    if (strlen(v) >= n) return pn_error(PN_ERR_FORMAT, "%s: metadata '%s' is too long ('%.40s...')", f->path, key, v);
    memcpy(dst, v, strlen(v) + 1);
    return PN_OK;
}

static pn_status bad_value(const pn_st_file *f, const char *key, const char *v, const char *expected) {
    return pn_error(PN_ERR_FORMAT, "%s: metadata '%s' is '%.60s', expected %s", f->path, key, v, expected);
}

pn_status pn_model_card_read(const pn_st_file *f, pn_model_card *c) {
    pn_model_card_clear(c);
    PN_TRY(copy_text(f, KEY_ENCODER, c->encoder, sizeof c->encoder));
    PN_TRY(copy_text(f, KEY_DECODER, c->decoder, sizeof c->decoder));
    PN_TRY(copy_text(f, KEY_ATTENTION, c->attention, sizeof c->attention));
    PN_TRY(copy_text(f, KEY_NORMALIZE, c->normalize, sizeof c->normalize));
    const char *v = pn_st_meta(f, KEY_SIZE);
    if (v) {
        char *end;
        long size = strtol(v, &end, 10);
        if (*end || end == v || size < 32 || size > 65536) return bad_value(f, KEY_SIZE, v, "a size in pixels");
        c->train_size = (int)size;
    }
    v = pn_st_meta(f, KEY_TRIPLET);
    if (v) {
        float top, bottom;
        int area, used = 0;
        if (sscanf(v, "%f,%d,%f%n", &top, &area, &bottom, &used) != 3 || v[used] || !(top > 0 && top <= 1) ||
            area < 0 || !(bottom > 0 && bottom <= 1))
            return bad_value(f, KEY_TRIPLET, v, "top,min_area,bottom (e.g. 0.75,2000,0.3)");
        c->has_triplet = true;
        c->top = top, c->min_area = area, c->bottom = bottom;
    }
    v = pn_st_meta(f, KEY_SCORE);
    if (v) {
        char *end;
        double s = strtod(v, &end);
        if (*end || end == v || !isfinite(s)) return bad_value(f, KEY_SCORE, v, "a number");
        c->score = s;
    }
    return PN_OK;
}
