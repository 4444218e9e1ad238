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

pn_status pn_tool_load_model(const char *encoder, const char *weights, pn_backend *be, pn_unet **out) {
    PN_TRY(pn_unet_create(encoder, be, out));
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

void pn_tool_report_memory(void) { pn_log_info("peak RSS %.1f MB", (double)pn_peak_rss_bytes() / 1e6); }
