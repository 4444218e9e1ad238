/* model_load: the architecture from options or a weights file, and loading weights into the model. */
#include "model_load.h"

#include <stdbool.h>
#include <string.h>

#include "core/model_card.h"
#include "core/safetensors.h"
#include "data/pth.h"
#include "tools/weights.h"

pn_status pn_tool_arch(const pn_arch_opts *o, pn_arch *out) {
    return pn_arch_make(o->encoder ? o->encoder : "resnet34", o->decoder, o->attention, out);
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
static pn_status resolve_arch(const pn_arch_opts *o, const char *weights, bool partial_ok, pn_arch *out) {
    if (pn_pth_sniff(weights)) return pn_tool_arch(o, out); /* mapped onto the flags' model */
    bool recorded = false;
    pn_status st = arch_of_file(weights, out, &recorded);
    if (partial_ok && st != PN_OK && !recorded && !was_training_state(st)) return pn_tool_arch(o, out);
    PN_TRY(st);
    char text[96];
    pn_arch_text(out, text, sizeof text);
    if (differs(o->encoder, out->encoder) || differs(o->decoder, out->decoder) || differs(o->attention, out->attention))
        return pn_error(PN_ERR_ARG,
                        "%s holds a %s model (%s); leave out --encoder/--decoder/--attention or make them match",
                        weights, text, recorded ? "recorded in the file" : "recognised from its tensors");
    pn_log_info("model: %s (%s)", text, recorded ? "from the weights file" : "recognised from the tensor names");
    return PN_OK;
}

pn_status pn_tool_arch_of_weights(const pn_arch_opts *o, const char *weights, pn_arch *out) {
    return resolve_arch(o, weights, true, out);
}

pn_status pn_tool_create_model(const pn_arch_opts *o, const char *weights, pn_backend *be, pn_unet **out) {
    pn_arch arch;
    PN_TRY(resolve_arch(o, weights, false, &arch));
    return pn_unet_create_arch(&arch, be, out);
}

pn_status pn_tool_load_into(pn_unet *m, const char *weights) {
    pn_load_result r;
    /* a PyTorch checkpoint goes through the key map; our safetensors load directly */
    return pn_pth_sniff(weights) ? pn_tool_load_weights(m, weights, PN_LOAD_WHOLE, NULL, &r) : pn_unet_load(m, weights);
}

pn_status pn_tool_load_model(const pn_arch_opts *o, const char *weights, pn_backend *be, pn_unet **out) {
    PN_TRY(pn_tool_create_model(o, weights, be, out));
    pn_status st = pn_tool_load_into(*out, weights);
    if (st != PN_OK) {
        pn_unet_free(*out);
        *out = NULL;
    }
    return st;
}
