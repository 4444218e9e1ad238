/* common: small helpers the subcommands share (opening a backend, reporting memory). */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backends/cpu/cpu.h"
#include "checks.h"
#include "cli.h"
#include "run_util.h"

pn_status pn_tool_open_backend(const char *name, int threads, pn_backend **out) {
    pn_status st = pn_backend_open(name ? name : "auto", pn_cap_threads("--threads", threads), out);
    if (st == PN_ERR_ARG) return PN_ERR_USAGE; /* a --backend that names nothing here: a usage error */
    PN_TRY(st);
    pn_log_info("backend: %s", (*out)->name);
    return PN_OK;
}

pn_status pn_tool_set_precision(pn_backend *be, const char *precision) {
    if (!precision) precision = "fp32";
    if (strcmp(precision, "fp32") && strcmp(precision, "bf16") && strcmp(precision, "fp16"))
        return pn_error(PN_ERR_USAGE, "--precision must be fp32, bf16 or fp16, got '%s'", precision);
    if (be->set_precision) {
        PN_TRY(be->set_precision(be, precision));
        if (strcmp(precision, "fp32")) pn_log_info("precision: %s convolutions, float32 everything else", precision);
        return PN_OK;
    }
    if (strcmp(precision, "fp32") == 0) return PN_OK;
    char why[256];
    if (strcmp(be->name, "cpu") == 0 && strcmp(precision, "bf16") == 0) {
        pn_cpu_bf16_unavailable(why, sizeof why);
        return pn_error(PN_ERR_UNSUPPORTED, "--precision bf16: %s", why);
    }
    return pn_error(PN_ERR_UNSUPPORTED, "--precision %s: the %s backend computes in float32 only", precision, be->name);
}

pn_status pn_tool_set_deterministic(pn_backend *be, bool deterministic) {
    if (!deterministic || !be->set_deterministic) return PN_OK; /* the built-in backends are deterministic */
    return be->set_deterministic(be, true);
}

pn_status pn_tool_load_model(const char *encoder, const char *weights, pn_backend *be, pn_unet **out) {
    PN_TRY(pn_unet_create(encoder, be, out));
    pn_status st = pn_unet_load(*out, weights);
    if (st != PN_OK) {
        pn_unet_free(*out);
        *out = NULL;
    }
    return st;
}

void pn_tool_report_memory(void) { pn_log_info("peak RSS %.1f MB", (double)pn_peak_rss_bytes() / 1e6); }

const char *pn_tool_norm_name(pn_norm_mode mode) {
    return mode == PN_NORM_IMAGENET ? "imagenet" : mode == PN_NORM_UNIT ? "unit" : "none";
}

static pn_status read_card(const char *path, pn_model_card *card) {
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

pn_status pn_tool_settings(const char *const *weights, int n_weights, const char *encoder, int size, const char *norm,
                           const char *triplet, bool uses_triplet, pn_run_settings *out) {
    /* The options first: a usage error is one whatever the files are. */
    pn_norm_mode mode;
    pn_triplet given;
    if (encoder && strlen(encoder) >= sizeof out->encoder)
        return pn_error(PN_ERR_USAGE, "--encoder '%.40s...' is not an encoder", encoder);
    if (size && (size < 32 || size % 32)) return pn_error(PN_ERR_USAGE, "--size %d: expected a multiple of 32", size);
    if (norm) PN_TRY(pn_as_usage(pn_norm_parse(norm, &mode)));
    if (uses_triplet && triplet) PN_TRY(pn_parse_triplet(triplet, "--triplet", &given));
    pn_model_card first;
    PN_TRY(read_card(weights[0], &first));
    const pn_model_card *c = &first;
    char from_file[512] = "", text[64];
    /* encoder */
    const char *enc = encoder ? encoder : c->encoder[0] ? c->encoder : "resnet34";
    memcpy(out->encoder, enc, strlen(enc) + 1); /* the card's field and the check above bound it */
    if (!encoder && c->encoder[0]) note(from_file, sizeof from_file, "encoder", c->encoder);
    /* size */
    out->size = size ? size : c->train_size ? c->train_size : 256;
    if (out->size % 32) return pn_error(PN_ERR_FORMAT, "%s records training size %d, not a multiple of 32", weights[0], out->size);
    if (!size && c->train_size) snprintf(text, sizeof text, "%d", c->train_size), note(from_file, sizeof from_file, "size", text);
    if (size && c->train_size && size != c->train_size)
        pn_log_warn("--size %d overrides the size %d that %s was trained at", size, c->train_size, weights[0]);
    /* normalisation */
    const char *nm = norm ? norm : c->normalize[0] ? c->normalize : "imagenet";
    PN_TRY(pn_norm_parse(nm, &mode));
    snprintf(out->norm, sizeof out->norm, "%s", pn_tool_norm_name(mode));
    if (!norm && c->normalize[0]) note(from_file, sizeof from_file, "normalisation", out->norm);
    if (norm && c->normalize[0] && strcmp(out->norm, c->normalize))
        pn_log_warn("--norm %s overrides the normalisation %s that %s was trained with", out->norm, c->normalize,
                    weights[0]);
    /* triplet */
    pn_triplet recorded = {c->top, c->min_area, c->bottom};
    out->score = c->score;
    if (uses_triplet) {
        if (triplet) out->triplet = given;
        else out->triplet = c->has_triplet ? recorded : (pn_triplet){0.75f, 2000, 0.3f};
        if (!triplet && c->has_triplet) {
            char with_score[96];
            pn_triplet_text(&recorded, text, sizeof text);
            if (isfinite(c->score)) snprintf(with_score, sizeof with_score, "%s (val kaggle %.4f)", text, c->score);
            else snprintf(with_score, sizeof with_score, "%s", text);
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
        pn_log_info("%s records no training settings (not written by pneumoseg train): %s at %d, %s normalisation%s%s",
                    weights[0], out->encoder, out->size, out->norm, uses_triplet ? ", triplet " : "",
                    uses_triplet ? pn_triplet_text(&out->triplet, text, sizeof text) : "");
    /* Later files of an ensemble: their records should agree with what is used. */
    for (int k = 1; k < n_weights; k++) {
        pn_model_card other;
        PN_TRY(read_card(weights[k], &other));
        if (other.train_size && other.train_size != out->size)
            pn_log_warn("%s was trained at %d; it runs at %d with the others", weights[k], other.train_size, out->size);
        if (other.normalize[0] && strcmp(other.normalize, out->norm))
            pn_log_warn("%s was trained with %s normalisation; it gets %s with the others", weights[k], other.normalize,
                        out->norm);
        pn_triplet t = {other.top, other.min_area, other.bottom};
        if (uses_triplet && other.has_triplet &&
            (t.top != out->triplet.top || t.min_area != out->triplet.min_area || t.bottom != out->triplet.bottom))
        {
            char used[64];
            pn_log_info("note: %s records the triplet %s; the ensemble uses %s", weights[k],
                        pn_triplet_text(&t, text, sizeof text), pn_triplet_text(&out->triplet, used, sizeof used));
        }
    }
    return PN_OK;
}
