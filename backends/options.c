/* options: backend settings behind one neutral interface; each checks which backend it was handed. Messages name
 * the pneumoseg option that sets each (as the cpu backend's own do). */
#include "options.h"

#include <string.h>

#include "backends/cpu/cpu.h"

static bool is_cpu(const pn_backend *be) { return be && strcmp(be->name, "cpu") == 0; }

pn_status pn_backend_set_precision(pn_backend *be, const char *precision) {
    if (strcmp(precision, "fp32") && strcmp(precision, "bf16") && strcmp(precision, "fp16"))
        return pn_error(PN_ERR_ARG, "--precision must be fp32, bf16 or fp16, got '%s'", precision);
    if (be->set_precision) return be->set_precision(be, precision);
    if (strcmp(precision, "fp32") == 0) return PN_OK;
    if (is_cpu(be) && strcmp(precision, "bf16") == 0) {
        char why[256];
        pn_cpu_bf16_unavailable(why, sizeof why);
        return pn_error(PN_ERR_UNSUPPORTED, "--precision bf16: %s", why);
    }
    return pn_error(PN_ERR_UNSUPPORTED, "--precision %s: the %s backend computes in float32 only", precision, be->name);
}

pn_status pn_backend_set_deterministic(pn_backend *be, bool deterministic) {
    if (!deterministic || !be->set_deterministic) return PN_OK; /* the built-in backends are deterministic */
    return be->set_deterministic(be, true);
}

pn_status pn_backend_set_conv_algo(pn_backend *be, const char *algo) {
    if (strcmp(algo, "direct") && strcmp(algo, "winograd") && strcmp(algo, "auto"))
        return pn_error(PN_ERR_ARG, "--conv-algo must be direct, winograd or auto, got '%s'", algo);
    if (is_cpu(be)) return pn_cpu_set_conv_algo(be, algo);
    if (strcmp(algo, "winograd") == 0)
        return pn_error(PN_ERR_UNSUPPORTED,
                        "--conv-algo winograd applies to the cpu backend only (this run uses the %s backend)",
                        be->name);
    return PN_OK;
}

pn_status pn_backend_conv_algo_load(pn_backend *be, const char *path) {
    return is_cpu(be) ? pn_cpu_conv_algo_load(be, path) : PN_OK;
}

pn_status pn_backend_conv_algo_save(pn_backend *be, const char *path, bool only_if_new) {
    return is_cpu(be) ? pn_cpu_conv_algo_save(be, path, only_if_new) : PN_OK;
}

void pn_backend_stats_get(pn_backend *be, pn_backend_stats *out) {
    memset(out, 0, sizeof *out);
    if (!is_cpu(be)) return;
    pn_cpu_stats s;
    pn_cpu_stats_get(be, &s);
    out->kept = true;
    out->prepare_seconds = s.prepare_seconds;
    out->algo_seconds = s.algo_seconds;
    out->algo_shapes = s.algo_shapes;
    out->algo_winograd = s.algo_winograd;
    out->weight_prep_seconds = s.weight_prep_seconds;
}

bool pn_backend_has_int8(pn_backend *be) { return is_cpu(be) && pn_cpu_int8_available(); }

bool pn_backend_int8_full(pn_backend *be) { return pn_backend_has_int8(be) && pn_cpu_int8_vnni(); }

pn_status pn_backend_int8_set(pn_backend *be, int n, const char *const *labels, const float *lo, const float *hi) {
    if (!is_cpu(be)) return pn_error(PN_ERR_UNSUPPORTED, "the %s backend has no int8 convolutions", be->name);
    return pn_cpu_int8_set(be, n, labels, lo, hi);
}

pn_status pn_backend_calibrate(pn_backend *be, bool on) {
    if (!is_cpu(be)) return pn_error(PN_ERR_UNSUPPORTED, "the %s backend has no int8 calibration", be->name);
    return pn_cpu_calibrate(be, on);
}

int pn_backend_calibration(pn_backend *be, const char *const **labels, const float **lo, const float **hi) {
    return is_cpu(be) ? pn_cpu_calibration(be, labels, lo, hi) : 0;
}

void pn_backend_calibration_range(pn_backend *be, int i, double percentile, float *lo, float *hi) {
    if (is_cpu(be))
        pn_cpu_calibration_range(be, i, percentile, lo, hi);
    else
        *lo = *hi = 0;
}
