/* common: small helpers the subcommands share (opening a backend, reporting memory). */
#ifndef PN_TOOLS_COMMON_H
#define PN_TOOLS_COMMON_H

#include "core/backend.h"
#include "core/unet.h"

/* Opens the backend named by --backend (default "auto") with --threads (0 = all cores) and logs it. */
pn_status pn_tool_open_backend(const char *name, int threads, pn_backend **out);
/* Creates the model and loads `weights` (safetensors) into it. */
pn_status pn_tool_load_model(const char *encoder, const char *weights, pn_backend *be, pn_unet **out);
/* Checks --precision ("fp32" or NULL: fine; "bf16": only where the backend can, else one clear error). */
pn_status pn_tool_check_precision(pn_backend *be, const char *precision);
/* Prints "peak RSS N MB" to stderr. */
void pn_tool_report_memory(void);

#endif
