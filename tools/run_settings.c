/* run_settings: resolves a run's settings from options and the weights' model cards. */
#include "run_settings.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/model_card.h"
#include "core/safetensors.h"
#include "data/pth.h"
#include "tools/cli.h"
#include "tools/triplet_grid.h"

const char *pn_tool_norm_name(pn_norm_mode mode) {
    return mode == PN_NORM_IMAGENET ? "imagenet" : mode == PN_NORM_UNIT ? "unit" : "none";
}

/* The card of a weights file; a PyTorch checkpoint has none (an empty card). */
static pn_status read_card(const char *path, pn_model_card *card) {
    if (pn_pth_sniff(path)) {
        pn_model_card_clear(card);
        return PN_OK;
    }
    pn_st_file *f;
    PN_TRY(pn_st_open_header(path, &f));
    pn_status st = pn_model_card_read(f, card);
    pn_st_close(f);
    return st;
}

/* Appends "what value" to the list of values taken from the file. */
static void note(char *buf, size_t cap, const char *what, const char *value) {
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n, "%s%s %s", n ? ", " : "", what, value);
}

pn_status pn_tool_settings(const char *const *weights, int n_weights, int size, const char *norm, const char *triplet,
                           bool uses_triplet, pn_run_settings *out) {
    /* The options first: a usage error is one whatever the files are. */
    pn_norm_mode mode;
    pn_triplet given;
    if (size && (size < 32 || size % 32)) return pn_error(PN_ERR_USAGE, "--size %d: expected a multiple of 32", size);
    if (norm) PN_TRY(pn_as_usage(pn_norm_parse(norm, &mode)));
    if (uses_triplet && triplet) PN_TRY(pn_parse_triplet(triplet, "--triplet", &given));
    pn_model_card first;
    PN_TRY(read_card(weights[0], &first));
    const pn_model_card *c = &first;
    char from_file[512] = "", text[64];
    /* size */
    out->size = size ? size : c->train_size ? c->train_size : 256;
    if (out->size % 32)
        return pn_error(PN_ERR_FORMAT, "%s records training size %d, not a multiple of 32", weights[0], out->size);
    if (!size && c->train_size)
        snprintf(text, sizeof text, "%d", c->train_size), note(from_file, sizeof from_file, "size", text);
    if (size && c->train_size && size != c->train_size)
        pn_log_warn("--size %d overrides the size %d that %s was trained at", size, c->train_size, weights[0]);
    /* normalisation */
    const char *nm = norm ? norm : c->normalize[0] ? c->normalize : "imagenet";
    PN_TRY(pn_norm_parse(nm, &mode));
    snprintf(out->norm, sizeof out->norm, "%s", pn_tool_norm_name(mode));
    out->norm_from = norm ? PN_FROM_OPTION : c->normalize[0] ? PN_FROM_FILE : PN_FROM_DEFAULT;
    if (!norm && c->normalize[0]) note(from_file, sizeof from_file, "normalisation", out->norm);
    if (norm && c->normalize[0] && strcmp(out->norm, c->normalize))
        pn_log_warn("--norm %s overrides the normalisation %s that %s was trained with", out->norm, c->normalize,
                    weights[0]);
    /* triplet */
    pn_triplet recorded = {c->top, c->min_area, c->bottom};
    out->score = c->score;
    if (uses_triplet) {
        if (triplet)
            out->triplet = given;
        else
            out->triplet = c->has_triplet ? recorded : (pn_triplet){0.75f, 2000, 0.3f};
        if (!triplet && c->has_triplet) {
            char with_score[96];
            pn_triplet_text(&recorded, text, sizeof text);
            if (isfinite(c->score))
                snprintf(with_score, sizeof with_score, "%s (val kaggle %.4f)", text, c->score);
            else
                snprintf(with_score, sizeof with_score, "%s", text);
            note(from_file, sizeof from_file, "triplet", with_score);
        }
        if (triplet && c->has_triplet &&
            (recorded.top != out->triplet.top || recorded.min_area != out->triplet.min_area ||
             recorded.bottom != out->triplet.bottom))
            pn_log_warn("--triplet %s overrides the triplet %s that %s records", triplet,
                        pn_triplet_text(&recorded, text, sizeof text), weights[0]);
    }
    if (from_file[0]) pn_log_info("from %s: %s", weights[0], from_file);
    if (!c->train_size && !c->normalize[0] && !c->has_triplet)
        pn_log_info("%s records no training settings (not written by pneumoseg train): %d, %s normalisation%s%s",
                    weights[0], out->size, out->norm, uses_triplet ? ", triplet " : "",
                    uses_triplet ? pn_triplet_text(&out->triplet, text, sizeof text) : "");
    /* Later files of an ensemble: their records should agree with what is used. */
    for (int k = 1; k < n_weights; k++) {
        pn_model_card other;
        PN_TRY(read_card(weights[k], &other));
        if (other.train_size && other.train_size != out->size)
            pn_log_warn("%s was trained at %d; it runs at %d with the others", weights[k], other.train_size, out->size);
        if (other.normalize[0] && strcmp(other.normalize, out->norm)) {
            if (!norm)
                return pn_error(PN_ERR_ARG,
                                "the checkpoints expect different input normalisations (%s: '%s', %s: '%s'); "
                                "pass --norm",
                                weights[0], out->norm, weights[k], other.normalize);
            pn_log_warn("%s was trained with %s normalisation; it gets %s with the others", weights[k], other.normalize,
                        out->norm);
        }
        pn_triplet t = {other.top, other.min_area, other.bottom};
        if (uses_triplet && other.has_triplet &&
            (t.top != out->triplet.top || t.min_area != out->triplet.min_area || t.bottom != out->triplet.bottom)) {
            char used[64];
            pn_log_info("note: %s records the triplet %s; the ensemble uses %s", weights[k],
                        pn_triplet_text(&t, text, sizeof text), pn_triplet_text(&out->triplet, used, sizeof used));
        }
    }
    return PN_OK;
}

pn_status pn_tool_settings_from_model(pn_run_settings *rs, pn_unet *m, const char *weights) {
    const char *recorded = pn_unet_card(m)->normalize;
    if (!recorded[0] || rs->norm_from == PN_FROM_OPTION) return PN_OK;
    pn_norm_mode mode;
    if (pn_norm_parse(recorded, &mode) != PN_OK)
        return pn_error(PN_ERR_FORMAT, "%s records the input normalisation '%s', which is not none, unit or imagenet",
                        weights, recorded);
    const char *name = pn_tool_norm_name(mode);
    if (rs->norm_from == PN_FROM_DEFAULT) {
        snprintf(rs->norm, sizeof rs->norm, "%s", name);
        rs->norm_from = PN_FROM_FILE;
        pn_log_info("from %s: normalisation %s", weights, name);
        return PN_OK;
    }
    if (strcmp(name, rs->norm))
        return pn_error(PN_ERR_ARG,
                        "the checkpoints expect different input normalisations ('%s', and %s: '%s'); pass --norm",
                        rs->norm, weights, name);
    return PN_OK;
}
