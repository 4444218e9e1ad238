/* common: small helpers the subcommands share (opening a backend, reporting memory). */
#include "model_load.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/cpu/cpu.h"
#include "data/pth.h"
#include "weights.h"
#include "checks.h"
#include "cli.h"
#include "validate.h"

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

pn_status pn_tool_arch(const char *encoder, const char *decoder, const char *attention, pn_arch *out) {
    return pn_arch_make(encoder ? encoder : "resnet34", decoder, attention, out);
}

/* Whether a flag given on the command line (NULL = not given) disagrees with the file's value. */
static bool differs(const char *flag, const char *file) {
    if (!flag) return false;
    if (strcmp(flag, "none") == 0) flag = "";
    return strcmp(flag, file) != 0;
}

static bool last_was_training_state;
/* Whether the last arch_of_file failed because the file is a training state. */
static bool was_training_state(pn_status st) { return st != PN_OK && last_was_training_state; }

/* The architecture of a weights file: recorded in its metadata, else recognised from its tensors. */
static pn_status arch_of_file(const char *weights, pn_arch *out, bool *recorded) {
    pn_st_file *f;
    PN_TRY(pn_st_open(weights, &f));
    pn_model_card card;
    const char *producer = pn_st_meta(f, "producer");
    last_was_training_state = producer && strcmp(producer, "pneumoseg train") == 0;
    if (last_was_training_state) {
        pn_status st = pn_error(PN_ERR_FORMAT,
                                "%s is a training state (what --resume reads), not a weights file: use "
                                "the run's last.safetensors or best.safetensors",
                                weights);
        pn_st_close(f);
        return st;
    }
    pn_status st = pn_model_card_read(f, &card);
    *recorded = st == PN_OK && card.encoder[0];
    if (st == PN_OK && *recorded)
        st = pn_arch_make(card.encoder, card.decoder, card.attention, out);
    else if (st == PN_OK)
        st = pn_arch_from_file(f, out);
    pn_st_close(f);
    return st;
}

/* The architecture of a weights file (see pn_tool_arch_of_weights); `partial_ok`: a safetensors file that is no
 * whole model (an encoder alone) takes the flags' architecture instead of being an error. */
static pn_status resolve_arch(const char *encoder, const char *decoder, const char *attention, const char *weights,
                              bool partial_ok, pn_arch *out) {
    if (pn_pth_sniff(weights)) return pn_tool_arch(encoder, decoder, attention, out); /* mapped onto the flags' model */
    bool recorded = false;
    pn_status st = arch_of_file(weights, out, &recorded);
    if (partial_ok && st != PN_OK && !recorded && !was_training_state(st))
        return pn_tool_arch(encoder, decoder, attention, out);
    PN_TRY(st);
    char text[96];
    pn_arch_text(out, text, sizeof text);
    if (differs(encoder, out->encoder) || differs(decoder, out->decoder) || differs(attention, out->attention))
        return pn_error(PN_ERR_ARG,
                        "%s holds a %s model (%s); leave out --encoder/--decoder/--attention or make them match",
                        weights, text, recorded ? "recorded in the file" : "recognised from its tensors");
    pn_log_info("model: %s (%s)", text, recorded ? "from the weights file" : "recognised from the tensor names");
    return PN_OK;
}

pn_status pn_tool_arch_of_weights(const char *encoder, const char *decoder, const char *attention, const char *weights,
                                  pn_arch *out) {
    return resolve_arch(encoder, decoder, attention, weights, true, out);
}

pn_status pn_tool_create_model_arch(const char *encoder, const char *decoder, const char *attention,
                                    const char *weights, pn_backend *be, pn_unet **out) {
    pn_arch arch;
    PN_TRY(resolve_arch(encoder, decoder, attention, weights, false, &arch));
    return pn_unet_create_arch(&arch, be, out);
}

pn_status pn_tool_load_into(pn_unet *m, const char *weights) {
    pn_load_result r;
    /* a PyTorch checkpoint goes through the key map; our safetensors load directly */
    return pn_pth_sniff(weights) ? pn_tool_load_weights(m, weights, PN_LOAD_WHOLE, NULL, &r) : pn_unet_load(m, weights);
}

pn_status pn_tool_load_model_arch(const char *encoder, const char *decoder, const char *attention, const char *weights,
                                  pn_backend *be, pn_unet **out) {
    PN_TRY(pn_tool_create_model_arch(encoder, decoder, attention, weights, be, out));
    pn_status st = pn_tool_load_into(*out, weights);
    if (st != PN_OK) {
        pn_unet_free(*out);
        *out = NULL;
    }
    return st;
}

pn_status pn_tool_load_model(const char *encoder, const char *weights, pn_backend *be, pn_unet **out) {
    return pn_tool_load_model_arch(encoder, NULL, NULL, weights, be, out);
}

void pn_tool_report_memory(void) { pn_log_info("peak RSS %.1f MB", (double)pn_peak_rss_bytes() / 1e6); }

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

/* The file that keeps auto's per-shape choices across runs: $PN_CACHE_DIR (empty or "none": no file), else
 * $XDG_CACHE_HOME/pneumoseg, else $HOME/.cache/pneumoseg; the folder is made if missing. Empty when none. */
static void conv_algo_cache_path(char *path, size_t n) {
    path[0] = 0;
    const char *dir = getenv("PN_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char d[1024];
    if (dir) {
        if (!dir[0] || strcmp(dir, "none") == 0) return;
        snprintf(d, sizeof d, "%s", dir);
    } else if (xdg && xdg[0]) {
        snprintf(d, sizeof d, "%s/pneumoseg", xdg);
    } else if (home && home[0]) {
        char parent[1024];
        snprintf(parent, sizeof parent, "%s/.cache", home);
        if (mkdir(parent, 0755) != 0 && errno != EEXIST) return;
        snprintf(d, sizeof d, "%s/.cache/pneumoseg", home);
    } else {
        return;
    }
    if (mkdir(d, 0755) != 0 && errno != EEXIST) return;
    if (snprintf(path, n, "%s/conv-algo.txt", d) >= (int)n) path[0] = 0;
}

pn_status pn_tool_set_conv_algo(pn_backend *be, const char *algo) {
    if (!algo) algo = "auto";
    if (strcmp(algo, "direct") && strcmp(algo, "winograd") && strcmp(algo, "auto"))
        return pn_error(PN_ERR_ARG, "--conv-algo must be direct, winograd or auto, got '%s'", algo);
    if (strcmp(be->name, "cpu") != 0) {
        if (strcmp(algo, "winograd") == 0)
            return pn_error(PN_ERR_UNSUPPORTED,
                            "--conv-algo winograd applies to the cpu backend only (this run uses "
                            "the %s backend)",
                            be->name);
        return PN_OK;
    }
    PN_TRY(pn_cpu_set_conv_algo(be, algo));
    if (strcmp(algo, "auto") != 0) return PN_OK;
    char path[1100];
    conv_algo_cache_path(path, sizeof path);
    if (path[0] && pn_cpu_conv_algo_load(be, path) != PN_OK) pn_log_debug("%s", pn_last_error());
    return PN_OK;
}

void pn_tool_conv_algo_done(pn_backend *be) {
    if (!be || strcmp(be->name, "cpu") != 0) return;
    pn_cpu_stats cs;
    pn_cpu_stats_get(be, &cs);
    if (cs.algo_shapes == 0) return;
    pn_log_debug("conv algorithms: Winograd for %d of %d shapes (%.3f s measuring)", cs.algo_winograd, cs.algo_shapes,
                 cs.algo_seconds);
    char path[1100];
    conv_algo_cache_path(path, sizeof path);
    if (path[0] && pn_cpu_conv_algo_save(be, path) != PN_OK) pn_log_debug("%s", pn_last_error()); /* only a cache */
}
