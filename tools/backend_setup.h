/* backend_setup: opening the backend a command runs on and applying --precision, --deterministic and --conv-algo;
 * the peak-memory line at the end of a run. */
#ifndef PN_TOOLS_BACKEND_SETUP_H
#define PN_TOOLS_BACKEND_SETUP_H

#include <stdbool.h>

#include "core/backend.h"
#include "tools/cli.h"

/* The compute options of every command that runs the model: --backend, --threads, --precision, --deterministic and
 * --conv-algo. A command sets its defaults in the struct before parsing. */
typedef struct pn_compute_opts {
    const char *backend; /* auto, ref, cpu, cuda or a module's name */
    int threads;         /* 0 = all cores */
    const char *precision, *conv_algo;
    bool deterministic;
} pn_compute_opts;

/* The pn_opt entries of those options over `c` (a pn_compute_opts *), for a command's option table; `conv_algo_default`
 * is a string literal that says the command's default --conv-algo (and why, if it helps). */
/* One option per line, as the tables write them: */
/* clang-format off */
#define PN_COMPUTE_OPTIONS(c, conv_algo_default)                                                                       \
    {"backend", PN_OPT_STR, &(c)->backend, "NAME", "auto (default), ref, cpu or cuda", false},                         \
    {"threads", PN_OPT_INT, &(c)->threads, "N",                                                                        \
     "compute threads (default 0 = all cores; under mpirun, per rank: the cores shared among the ranks)", false},      \
    {"precision", PN_OPT_STR, &(c)->precision, "fp32|bf16|fp16",                                                       \
     "convolution arithmetic: fp32 (default), bf16 or fp16 (cuda; train scales an fp16 loss dynamically)", false},     \
    {"deterministic", PN_OPT_FLAG, &(c)->deterministic, NULL, "deterministic algorithms only (cuda)", false},          \
    {"conv-algo", PN_OPT_STR, &(c)->conv_algo, "direct|winograd|auto",                                                 \
     "3x3 convolutions on the cpu backend: direct, winograd, or auto (the faster per layer shape, measured once "      \
     "and remembered; an int8 model's winograd/auto: our int8 Winograd where it pays, with AVX-512 VNNI); "           \
     "default " conv_algo_default, false}
/* clang-format on */

/* Opens the backend named by --backend (default "auto") with --threads (0 = all cores) and logs it. */
pn_status pn_tool_open_backend(const char *name, int threads, pn_backend **out);
/* Opens the backend of `c` (pn_tool_open_backend) and applies the rest of `c` (pn_tool_apply_compute). */
pn_status pn_tool_setup_backend(const pn_compute_opts *c, pn_backend **out);
/* Applies --precision, --deterministic and --conv-algo of `c`, in that order, before the model is planned. */
pn_status pn_tool_apply_compute(pn_backend *be, const pn_compute_opts *c);
/* Applies --precision (fp32, bf16 or fp16; NULL = fp32) to the backend before the model is planned: through its
 * set_precision slot when it has one; else fp32 only, anything else one clear error naming the reason. */
pn_status pn_tool_set_precision(pn_backend *be, const char *precision);
/* Applies --deterministic (deterministic algorithms only) before the model is planned. */
pn_status pn_tool_set_deterministic(pn_backend *be, bool deterministic);
/* Applies --conv-algo (direct, winograd or auto; NULL = auto) before the model is planned: the cpu backend's choice
 * of 3x3 convolution algorithm; auto also reads the choices measured by earlier runs on this machine. Other backends
 * accept direct and auto (they pick their own algorithms) and refuse winograd. */
pn_status pn_tool_set_conv_algo(pn_backend *be, const char *algo);
/* After the run: keeps what auto measured for the next runs (a cache file; failures to write it are only logged). */
void pn_tool_conv_algo_done(pn_backend *be);
/* A run's own record of auto's choices (train's run folder), so that a resumed run runs the algorithms it ran: load
 * (before the model is planned; sets auto) takes the file's choices before the machine's cache can add any; save
 * updates the cache and writes every choice known to the file. */
pn_status pn_tool_conv_algo_load_run(pn_backend *be, const char *path);
pn_status pn_tool_conv_algo_save_run(pn_backend *be, const char *path);
/* Prints "peak RSS N MB" to stderr. */
void pn_tool_report_memory(void);

#endif
