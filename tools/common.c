/* common: small helpers the subcommands share (opening a backend, reporting memory). */
#include "common.h"

#include <stdio.h>
#include <string.h>

#include "backends/cpu/cpu.h"
#include "data/pth.h"
#include "weights.h"

pn_status pn_tool_open_backend(const char *name, int threads, pn_backend **out) {
    PN_TRY(pn_backend_open(name ? name : "auto", threads, out));
    pn_log_info("backend: %s", (*out)->name);
    return PN_OK;
}

pn_status pn_tool_set_precision(pn_backend *be, const char *precision) {
    if (!precision) precision = "fp32";
    if (strcmp(precision, "fp32") && strcmp(precision, "bf16") && strcmp(precision, "fp16"))
        return pn_error(PN_ERR_ARG, "--precision must be fp32, bf16 or fp16, got '%s'", precision);
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

pn_status pn_tool_load_model_arch(const char *encoder, const char *decoder, const char *attention, const char *weights,
                                  pn_backend *be, pn_unet **out) {
    pn_arch arch;
    PN_TRY(resolve_arch(encoder, decoder, attention, weights, false, &arch));
    PN_TRY(pn_unet_create_arch(&arch, be, out));
    pn_load_result r;
    /* a PyTorch checkpoint goes through the key map; our safetensors load directly */
    pn_status st = pn_pth_sniff(weights) ? pn_tool_load_weights(*out, weights, PN_LOAD_WHOLE, NULL, &r)
                                         : pn_unet_load(*out, weights);
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
