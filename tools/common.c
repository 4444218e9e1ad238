/* common: small helpers the subcommands share (opening a backend, reporting memory). */
#include "common.h"

#include <stdio.h>

pn_status pn_tool_open_backend(const char *name, int threads, pn_backend **out) {
    PN_TRY(pn_backend_open(name ? name : "auto", threads, out));
    pn_log_info("backend: %s", (*out)->name);
    return PN_OK;
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
