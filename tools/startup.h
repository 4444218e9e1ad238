/* startup: where a command's start-up time goes (process start, weights, planning, primitives, first forward),
 * printed by --verbose. */
#ifndef PN_TOOLS_STARTUP_H
#define PN_TOOLS_STARTUP_H

#include <stdbool.h>

#include "core/backend.h"
#include "core/unet.h"
#include "tools/model_load.h"

#define PN_STARTUP_MAX 16

typedef struct pn_startup {
    bool on;
    double before_main; /* seconds from the exec to pn_startup_begin (loader, libraries, argument parsing) */
    double last;
    int n;
    struct {
        const char *what;
        double seconds, rss_mb;
        char detail[160];
    } lap[PN_STARTUP_MAX];
} pn_startup;

/* Starts the clock (does nothing more when `on` is false). */
void pn_startup_begin(pn_startup *c, bool on);
/* Records the time since the previous lap under `what`. */
void pn_startup_lap(pn_startup *c, const char *what);
/* Laps that add what the backend reports: planning (node preparation, algorithm measurement) and the forward
 * pass (BatchNorm folding and weight reorders). */
void pn_startup_plan(pn_startup *c, pn_backend *be);
void pn_startup_forward(pn_startup *c, pn_backend *be);
/* Creates the model the weights file holds (lap "model create") and loads the weights (lap "weights read"), as
 * pn_tool_load_model does. */
pn_status pn_startup_load_model(pn_startup *c, const pn_arch_opts *arch, const char *weights, pn_backend *be,
                                pn_unet **out);
/* Prints the laps and their total. */
void pn_startup_end(const pn_startup *c);

#endif
