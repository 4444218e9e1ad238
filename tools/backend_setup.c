/* backend_setup: opens the backend, applies the compute options, keeps auto's conv-algorithm choices. */
#include "backend_setup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/options.h"
#include "tools/checks.h"

pn_status pn_tool_open_backend(const char *name, int threads, pn_backend **out) {
    pn_status st = pn_backend_open(name ? name : "auto", pn_cap_threads("--threads", threads), out);
    if (st == PN_ERR_ARG) return PN_ERR_USAGE; /* a --backend that names nothing here: a usage error */
    PN_TRY(st);
    pn_log_info("backend: %s", (*out)->name);
    return PN_OK;
}

pn_status pn_tool_setup_backend(const pn_compute_opts *c, pn_backend **out) {
    PN_TRY(pn_tool_open_backend(c->backend, c->threads, out));
    return pn_tool_apply_compute(*out, c);
}

pn_status pn_tool_apply_compute(pn_backend *be, const pn_compute_opts *c) {
    PN_TRY(pn_tool_set_precision(be, c->precision));
    PN_TRY(pn_tool_set_deterministic(be, c->deterministic));
    return pn_tool_set_conv_algo(be, c->conv_algo);
}

pn_status pn_tool_set_precision(pn_backend *be, const char *precision) {
    if (!precision) precision = "fp32";
    if (strcmp(precision, "fp32") && strcmp(precision, "bf16") && strcmp(precision, "fp16"))
        return pn_error(PN_ERR_USAGE, "--precision must be fp32, bf16 or fp16, got '%s'", precision);
    PN_TRY(pn_backend_set_precision(be, precision));
    if (strcmp(precision, "fp32")) pn_log_info("precision: %s convolutions, float32 everything else", precision);
    return PN_OK;
}

pn_status pn_tool_set_deterministic(pn_backend *be, bool deterministic) {
    return pn_backend_set_deterministic(be, deterministic);
}

void pn_tool_report_memory(void) { pn_log_info("peak RSS %.1f MB", (double)pn_peak_rss_bytes() / 1e6); }

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
    PN_TRY(pn_backend_set_conv_algo(be, algo));
    if (strcmp(algo, "auto") != 0) return PN_OK;
    char path[1100];
    conv_algo_cache_path(path, sizeof path);
    if (path[0] && pn_backend_conv_algo_load(be, path) != PN_OK) pn_log_debug("%s", pn_last_error());
    return PN_OK;
}

void pn_tool_conv_algo_done(pn_backend *be) {
    if (!be) return;
    pn_backend_stats cs;
    pn_backend_stats_get(be, &cs);
    if (cs.algo_shapes == 0) return;
    pn_log_debug("conv algorithms: Winograd for %d of %d shapes (%.3f s measuring)", cs.algo_winograd, cs.algo_shapes,
                 cs.algo_seconds);
    char path[1100];
    conv_algo_cache_path(path, sizeof path);
    if (path[0] && pn_backend_conv_algo_save(be, path, true) != PN_OK)
        pn_log_debug("%s", pn_last_error()); /* only a cache */
}

pn_status pn_tool_conv_algo_load_run(pn_backend *be, const char *path) {
    PN_TRY(pn_backend_set_conv_algo(be, "auto"));
    return pn_backend_conv_algo_load(be, path);
}

pn_status pn_tool_conv_algo_save_run(pn_backend *be, const char *path) {
    pn_tool_conv_algo_done(be);
    return pn_backend_conv_algo_save(be, path, false);
}
