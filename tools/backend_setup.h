/* backend_setup: opening the backend a command runs on and applying --precision, --deterministic and --conv-algo;
 * the peak-memory line at the end of a run. */
#ifndef PN_TOOLS_BACKEND_SETUP_H
#define PN_TOOLS_BACKEND_SETUP_H

#include <stdbool.h>

#include "core/backend.h"

/* Opens the backend named by --backend (default "auto") with --threads (0 = all cores) and logs it. */
pn_status pn_tool_open_backend(const char *name, int threads, pn_backend **out);
/* Applies --precision (fp32, bf16 or fp16; NULL = fp32) to the backend before the model is planned: through its
 * set_precision slot when it has one; else fp32 only, anything else one clear error naming the reason. */
pn_status pn_tool_set_precision(pn_backend *be, const char *precision);
/* Applies --deterministic (deterministic algorithms only) before the model is planned. */
pn_status pn_tool_set_deterministic(pn_backend *be, bool deterministic);
#define PN_CONV_ALGO_HELP                                                                                              \
    "3x3 convolutions on the cpu backend: direct, winograd, or auto (default: the faster per "                         \
    "layer shape, measured once and remembered)"

/* Applies --conv-algo (direct, winograd or auto; NULL = auto) before the model is planned: the cpu backend's choice
 * of 3x3 convolution algorithm; auto also reads the choices measured by earlier runs on this machine. Other backends
 * accept direct and auto (they pick their own algorithms) and refuse winograd. */
pn_status pn_tool_set_conv_algo(pn_backend *be, const char *algo);
/* After the run: keeps what auto measured for the next runs (a cache file; failures to write it are only logged). */
void pn_tool_conv_algo_done(pn_backend *be);
/* Prints "peak RSS N MB" to stderr. */
void pn_tool_report_memory(void);

#endif
