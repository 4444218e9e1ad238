/* common: small helpers the subcommands share (opening a backend, reporting memory). */
#ifndef PN_TOOLS_COMMON_H
#define PN_TOOLS_COMMON_H

#include "core/backend.h"
#include "core/metrics.h"
#include "core/unet.h"
#include "data/augment.h"

/* Opens the backend named by --backend (default "auto") with --threads (0 = all cores) and logs it. */
pn_status pn_tool_open_backend(const char *name, int threads, pn_backend **out);
/* Creates the model and loads `weights` into it: our safetensors (the architecture it records, else recognised
 * from its tensor names and shapes) or a whole model's PyTorch .pth (smp or AlbuNet names, any wrapper; see
 * weights.h; the architecture from the flags). `encoder` (NULL = none given) must agree with the file. */
pn_status pn_tool_load_model(const char *encoder, const char *weights, pn_backend *be, pn_unet **out);
/* The same with --decoder and --attention too (each NULL when not given). */
pn_status pn_tool_load_model_arch(const char *encoder, const char *decoder, const char *attention, const char *weights,
                                  pn_backend *be, pn_unet **out);
/* The two halves of pn_tool_load_model_arch: the model the file holds (created, not loaded), then its weights. */
pn_status pn_tool_create_model_arch(const char *encoder, const char *decoder, const char *attention,
                                    const char *weights, pn_backend *be, pn_unet **out);
pn_status pn_tool_load_into(pn_unet *m, const char *weights);
/* The architecture of a weights file for training from it (--init): what our safetensors record or show; the flags'
 * for a .pth or an encoder alone. Flags given must agree with the file. */
pn_status pn_tool_arch_of_weights(const char *encoder, const char *decoder, const char *attention, const char *weights,
                                  pn_arch *out);
/* The architecture named by --encoder/--decoder/--attention (NULL = resnet34 / unet / none). */
pn_status pn_tool_arch(const char *encoder, const char *decoder, const char *attention, pn_arch *out);
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

/* How eval and predict run a weights file: what the user gave, else what the file's card records (pneumoseg
 * train writes it), else the defaults of a file without one (e.g. written by PyTorch): 256, imagenet, 0.75,2000,0.3.
 * min_area in 1024-pixels. The architecture is not here: pn_tool_load_model_arch takes it from the file. */
typedef enum pn_setting_source { PN_FROM_DEFAULT, PN_FROM_FILE, PN_FROM_OPTION } pn_setting_source;
typedef struct pn_run_settings {
    int size;
    char norm[16];
    pn_setting_source norm_from;
    pn_triplet triplet;
    double score; /* the file's validation score at its triplet (NaN if none) */
} pn_run_settings;
/* The options as given (NULL / 0: not given; triplet NULL: the command has none or it was not given). Reads the
 * cards of every safetensors weights file; logs which values came from the first file, warns for each option that
 * overrides its value and for later files that record another size or triplet. Later files that record another
 * normalisation, with no --norm, are an error. Bad option values are usage errors. */
pn_status pn_tool_settings(const char *const *weights, int n_weights, int size, const char *norm, const char *triplet,
                           bool uses_triplet, pn_run_settings *out);
/* After loading `weights` into `m`: the normalisation a PyTorch checkpoint implies (known only once its names are
 * mapped) when nothing else chose one; an error when it contradicts the one the other files chose. */
pn_status pn_tool_settings_from_model(pn_run_settings *rs, pn_unet *m, const char *weights);
/* The canonical name of a normalisation ("imagenet", "unit", "none"), as cards record it. */
const char *pn_tool_norm_name(pn_norm_mode mode);

#endif
