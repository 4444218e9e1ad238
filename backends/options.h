/* options: the settings a program chooses for whichever backend it opened, without knowing the backend's internals:
 * arithmetic precision and determinism (the pn_backend slots), and what only the cpu backend has today (the choice of
 * 3x3 convolution algorithm with its per-machine cache, int8 convolutions and their calibration, the time spent
 * preparing). Each checks the backend it is handed: a setting that backend lacks is PN_ERR_UNSUPPORTED with the
 * reason, or, where the comment says so, nothing happens. */
#ifndef PN_BACKENDS_OPTIONS_H
#define PN_BACKENDS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/backend.h"

/* Arithmetic of the nodes prepared from now on: "fp32", "bf16" or "fp16" (anything else is PN_ERR_ARG). Through the
 * backend's set_precision slot; a backend without one computes in float32 only, and anything else is
 * PN_ERR_UNSUPPORTED with the reason (on the cpu backend, why this machine cannot do bf16). */
pn_status pn_backend_set_precision(pn_backend *be, const char *precision);
/* Deterministic algorithms only for the nodes prepared from now on (a backend without the slot is deterministic
 * anyway: nothing happens). */
pn_status pn_backend_set_deterministic(pn_backend *be, bool deterministic);

/* The 3x3 convolution algorithm: "direct", "winograd" or "auto" (the faster per layer shape, measured once). The cpu
 * backend applies it (winograd where this CPU and build have it, else PN_ERR_UNSUPPORTED with the reason); other
 * backends pick their own algorithms: direct and auto change nothing, winograd is PN_ERR_UNSUPPORTED. */
pn_status pn_backend_set_conv_algo(pn_backend *be, const char *algo);
/* The per-shape choices of auto across runs in a file: load adds what the file holds for this machine (a missing file
 * is fine; choices already known stay), save rewrites it atomically with every choice known (only_if_new: only when
 * something was measured since the last load or such save; for a cache). Nothing happens on a backend without such
 * choices. */
pn_status pn_backend_conv_algo_load(pn_backend *be, const char *path);
pn_status pn_backend_conv_algo_save(pn_backend *be, const char *path, bool only_if_new);

/* Where a backend's time went outside the ops proper, for start-up breakdowns (all zero where it keeps none). */
typedef struct pn_backend_stats {
    bool kept;                      /* whether the backend keeps these figures (the cpu backend does) */
    double prepare_seconds;         /* preparing nodes: primitive creation, reorders, fusion, algorithm choice */
    double algo_seconds;            /* of which: timing direct against Winograd (auto) */
    int algo_shapes, algo_winograd; /* shapes with a choice, and how many of them run Winograd */
    double weight_prep_seconds;     /* forward passes: folding BatchNorm into the weights and reordering them */
} pn_backend_stats;
void pn_backend_stats_get(pn_backend *be, pn_backend_stats *out);

/* int8 convolutions (the cpu backend built with oneDNN): whether `be` has them, and whether they run at full
 * precision here (AVX512_VNNI); without it the weights are 7-bit and convolutions with an input below 0 stay
 * float32 (docs/ARCHITECTURE.md). */
bool pn_backend_has_int8(pn_backend *be);
bool pn_backend_int8_full(pn_backend *be);
/* The forward convolutions named by `labels` (node labels, e.g. "encoder.layer1.0.conv1") run with an 8-bit input
 * quantized over [lo, hi], for nodes prepared from now on; n = 0 clears an earlier model's list. */
pn_status pn_backend_int8_set(pn_backend *be, int n, const char *const *labels, const float *lo, const float *hi);
/* Calibration: while on, every forward convolution records the range of its input. */
pn_status pn_backend_calibrate(pn_backend *be, bool on);
/* The ranges recorded so far (pointers valid until the next forward or the backend closes); returns their count
 * (0 on a backend without calibration). */
int pn_backend_calibration(pn_backend *be, const char *const **labels, const float **lo, const float **hi);
/* Entry i's range with the values beyond the `percentile`-th percentile of |x| clipped (100: min and max). */
void pn_backend_calibration_range(pn_backend *be, int i, double percentile, float *lo, float *hi);

#endif
